//! `panoptes bench` through the real binary: a small fleet, a short run, the JSON report.

use std::process::Command;

#[test]
fn bench_polls_a_small_fleet_and_reports_json() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .args([
            "bench",
            "--devices",
            "20",
            "--interval",
            "2s",
            "--duration",
            "6s",
            "--json",
        ])
        // Keep the user's environment out of it; temp files go under our own directory.
        .env_remove("PANOPTES_CONFIG")
        .env("TMPDIR", data.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    for key in [
        "devices",
        "interval_s",
        "duration_s",
        "device_polls",
        "device_polls_per_s",
        "collector_cpu_s",
        "cpu_ms_per_poll",
        "latency_ms",
        "missed_intervals",
        "timeouts",
        "errors",
        "rss_mb",
        "simulator_cpu_s",
        "metrics_groups_per_s",
        "open_fds",
        "threads",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    for key in ["p50", "p90", "p99", "max"] {
        assert!(report["latency_ms"][key].is_number(), "latency_ms.{key}");
    }
    for key in ["start", "peak", "end"] {
        assert!(report["rss_mb"][key].is_number(), "rss_mb.{key}");
    }
    assert_eq!(report["devices"], 20);
    assert_eq!(report["interval_s"], 2);
    assert!(report["device_polls"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["metrics_groups_per_s"].as_f64().unwrap() > 0.0);
    // CPU per varbind, where the memory went, and when every device was first polled.
    let per_varbind = report["cpu_us_per_varbind"].as_f64().unwrap();
    assert!(per_varbind > 0.0 && per_varbind < 1e4, "{report}");
    let memory = &report["memory_bytes"];
    for part in [
        "rss",
        "rss_anon",
        "heap_in_use",
        "rate_state",
        "allocator_committed",
    ] {
        assert!(
            memory[part].as_u64().unwrap() > 0,
            "memory_bytes.{part}: {report}"
        );
    }
    assert_eq!(
        memory["heap_in_use"].as_u64().unwrap(),
        memory["rate_state"].as_u64().unwrap() + memory["heap_other"].as_u64().unwrap()
    );
    let first = report["first_interval_devices_polled"].as_u64().unwrap();
    assert!(first <= 20, "{report}");
    let by = report["all_devices_polled_by_s"].as_f64().unwrap();
    assert!(
        by > 0.0 && by < 6.0,
        "every device polled within the run: {report}"
    );
    assert!(
        stderr.contains("polls in the last 2s"),
        "live progress on stderr: {stderr}"
    );
    // The benchmark cleans up its data directory.
    let left: Vec<_> = std::fs::read_dir(data.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Runs `panoptes bench ARGS --json` with its temporary files under `tmp`.
fn bench(tmp: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panoptes"));
    cmd.arg("bench")
        .args(args)
        .arg("--json")
        .env_remove("PANOPTES_CONFIG")
        .env("TMPDIR", tmp);
    cmd
}

/// Starts a 5-device, 10-minute bench under `tmp` and reads its standard error until the
/// first progress line: it is polling. Returns it and the rest of its standard error.
fn start_polling(
    tmp: &std::path::Path,
    stdout: std::process::Stdio,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) {
    use std::io::BufRead;
    let mut child = bench(tmp, &["--devices", "5", "--duration", "10m"])
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("polls in the last") {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("polls in the last")),
        "{seen:?}"
    );
    (child, lines)
}

/// Command lines of the running processes that name `tmp` (the bench's files, and its
/// simulator's recording, are under it) and contain `also`.
fn running_under(tmp: &std::path::Path, also: &str) -> Vec<String> {
    let ours = tmp.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&ours) && c.contains(also))
        .collect()
}

/// Waits (at most `within`) until no process runs under `tmp`.
fn wait_until_none_under(tmp: &std::path::Path, also: &str, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let alive = running_under(tmp, also);
        if alive.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {alive:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_if_mib_plugin_reads_the_39_columns_snmp_exporter_reads() {
    let data = tempfile::tempdir().unwrap();
    let args = [
        "--devices",
        "4",
        "--interval",
        "2s",
        "--duration",
        "5s",
        "--plugin",
        "if-mib",
    ];
    let out = bench(data.path(), &args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(
        report["enrichment_runs"], 0,
        "no enrichment in this mode: {report}"
    );
    let polls = report["device_polls"].as_u64().unwrap();
    assert!(polls >= 4, "{report}");
    // 39 columns x 48 rows, plus each walk's one varbind past its column.
    let per_poll = report["snmp_varbinds"].as_u64().unwrap() / polls;
    assert!(
        (39 * 48..39 * 48 + 39 * 25).contains(&per_poll),
        "{per_poll}: {report}"
    );
}

#[test]
fn sigterm_ends_a_run_with_its_report_and_leaves_nothing_behind() {
    let data = tempfile::tempdir().unwrap();
    let (child, lines) = start_polling(data.path(), std::process::Stdio::piped());
    // SAFETY: kill() sends a signal to the child we started and still own.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a stopped run fails: {rest:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["aborted"], "terminated (SIGTERM)", "{report}");
    assert!(
        rest.iter()
            .any(|l| l.contains("the benchmark stopped early: terminated (SIGTERM)")),
        "{rest:?}"
    );
    // The data directory is gone, and so is the simulator (its command line names the
    // recording under our TMPDIR).
    let left: Vec<_> = std::fs::read_dir(data.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    wait_until_none_under(data.path(), "", std::time::Duration::from_secs(5));
}

/// A bench killed outright (SIGKILL: no handler runs) leaves no simulator behind: the
/// simulator stops when its standard input, a pipe from the bench, closes.
#[test]
fn a_killed_bench_leaves_no_simulator_running() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, _) = start_polling(data.path(), std::process::Stdio::null());
    assert_eq!(
        running_under(data.path(), " simulate ").len(),
        1,
        "the simulator runs beside the bench"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until_none_under(
        data.path(),
        " simulate ",
        std::time::Duration::from_secs(20),
    );
}
