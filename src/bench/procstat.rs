//! CPU, memory, threads and open files of a process, read from Linux `/proc`.
//!
//! The benchmark reads its own process and the simulator's separately, so the CPU the
//! simulated fleet burns is reported next to ours instead of being counted as ours.

use std::path::PathBuf;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`: USER_HZ, fixed at 100
/// on every Linux ABI, whatever the kernel's internal HZ.
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU since the process started, in seconds.
    pub cpu_s: f64,
    /// Resident set size, in MiB.
    pub rss_mb: f64,
    pub threads: u64,
    pub open_fds: u64,
}

/// Reads process `pid` (None: this process); None when `/proc` cannot tell (not Linux,
/// or the process is gone).
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}")),
        None => PathBuf::from("/proc/self"),
    };
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let mut sample = parse(&stat, &status)?;
    sample.open_fds = std::fs::read_dir(dir.join("fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(sample)
}

/// CPU and threads from `stat`, RSS from `status` (`VmRSS`, in kB).
fn parse(stat: &str, status: &str) -> Option<ProcSample> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted
    // from the last ')'. After it, index 0 is field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let threads: u64 = fields.get(17)?.parse().ok()?;
    let rss_kb = crate::memory::status_kib(status, "VmRSS:").unwrap_or(0) as f64;
    Some(ProcSample {
        cpu_s: (utime + stime) / USER_HZ,
        rss_mb: rss_kb / 1024.0,
        threads,
        open_fds: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_name() {
        let stat = "1234 (pan (o) tes) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 1000000 2000 18446744073709551615";
        let status = "Name:\tpanoptes\nVmRSS:\t   20480 kB\nThreads:\t7\n";
        let s = parse(stat, status).unwrap();
        assert!((s.cpu_s - 3.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.threads, 7);
        assert!((s.rss_mb - 20.0).abs() < 1e-9);
        assert!(parse("garbage", status).is_none());
    }

    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            let s = sample(None).unwrap();
            assert!(s.threads >= 1 && s.rss_mb > 0.0 && s.open_fds >= 3, "{s:?}");
        }
    }
}
