//! The benchmark's report: one JSON object for scripts, or text for people.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl From<[f64; 4]> for Latency {
    /// From `PollLog::latency_ms`'s p50, p90, p99, max.
    fn from([p50, p90, p99, max]: [f64; 4]) -> Latency {
        Latency { p50, p90, p99, max }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct RssMb {
    pub start: f64,
    pub peak: f64,
    pub end: f64,
}

/// The window after the first interval, when it is in the run: the first interval carries
/// every device's enrichment and the rates' first samples, so this is the steady cost.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Steady {
    /// Seconds into the window where this part starts (one interval).
    pub from_s: u64,
    pub device_polls: u64,
    pub device_polls_per_s: f64,
    pub collector_cpu_cores: f64,
    pub cpu_ms_per_poll: Option<f64>,
    /// CPU inside the polling jobs on the poller threads, per poll (the rest of
    /// `cpu_ms_per_poll` is the store's appends and flushes, the SNMP receiver, timers).
    pub poller_thread_ms_per_poll: Option<f64>,
    /// Varbinds received in the window (enrichment too, if it ran again in it).
    pub snmp_varbinds: u64,
    /// Collector CPU in the window per varbind received, in microseconds.
    pub cpu_us_per_varbind: Option<f64>,
    /// The collector's RSS over the window (10 s samples): mean and highest, MB. A single
    /// sample (`rss_mb.end`) moves by several MB with the polls in flight at that moment.
    pub rss_mb_mean: Option<f64>,
    pub rss_mb_max: Option<f64>,
    /// Least-squares trend of the collector's RSS over the window, MB per hour.
    pub rss_slope_mb_per_h: Option<f64>,
    /// Least-squares trend of its CPU (cores, 10 s averages) over the window, per hour.
    pub cpu_slope_cores_per_h: Option<f64>,
}

/// What enrichment cost, apart from polling: its runs are spread like polls, and their CPU
/// is measured inside the jobs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EnrichmentCost {
    pub runs: u64,
    pub errors: u64,
    /// CPU inside the enrichment jobs on the poller threads.
    pub poller_thread_cpu_s: f64,
    pub poller_thread_ms_per_run: Option<f64>,
    pub latency_ms: Latency,
    /// Enrichment runs finished in each second since the node started.
    pub runs_per_second: Vec<u64>,
}

/// The schedulers' planning over the window (each reads every resource and rebuilds the
/// schedule: on every rescan interval and when resources or new enrichments land).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Planning {
    pub plans: u64,
    /// Time spent building and applying them (on the schedulers' thread: CPU of the node).
    pub cpu_s: f64,
}

/// Everything measured over the benchmark's window (the node's startup is not counted).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    pub devices: u32,
    pub interval_s: u64,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// Polling plugin runs that finished, whatever their outcome.
    pub device_polls: u64,
    pub device_polls_per_s: f64,
    /// User + system CPU of the collector's process over the window (enrichment included),
    /// less `bench_sampler_cpu_s`.
    pub collector_cpu_s: f64,
    /// CPU the benchmark's own once-a-second sampling (reading /proc, sizing the data
    /// directory) took inside the collector's process: measured on its thread and left
    /// out of the collector's figures, as an outside observer of the process would.
    pub bench_sampler_cpu_s: f64,
    /// None (JSON null) before any poll finished.
    pub cpu_ms_per_poll: Option<f64>,
    /// Average cores the collector used.
    pub collector_cpu_cores: f64,
    /// Per poll: from the pool starting the job to its metrics being on the topic.
    pub latency_ms: Latency,
    /// Polls that came due while the previous poll of the device was still running, or
    /// started late because it overran.
    pub missed_intervals: u64,
    /// Polls that ended because the device did not answer.
    pub timeouts: u64,
    /// Polls that failed for any other reason.
    pub errors: u64,
    /// The first few distinct failure messages.
    pub error_samples: Vec<String>,
    pub snmp_requests: u64,
    /// Varbinds received in accepted answers (polls and enrichment).
    pub snmp_varbinds: u64,
    pub snmp_timeouts: u64,
    /// Collector CPU per varbind received, whole run, in microseconds.
    pub cpu_us_per_varbind: Option<f64>,
    /// Devices whose first poll finished within the first interval.
    pub first_interval_devices_polled: u64,
    /// Seconds until every device had been polled once (None if some never was).
    pub all_devices_polled_by_s: Option<f64>,
    /// Polls the pool refused because its queue was full.
    pub shed: u64,
    pub enrichment_runs: u64,
    pub enrichment: EnrichmentCost,
    pub planning: Planning,
    /// CPU inside the polling jobs on the poller threads, per poll, whole run.
    pub poller_thread_ms_per_poll: Option<f64>,
    pub metrics_groups_published: u64,
    pub metrics_groups_per_s: f64,
    /// Points InfluxDB accepted per second (0 unless `[influxdb] url` is set).
    pub influxdb_points_per_s: f64,
    pub rss_mb: RssMb,
    /// Where the memory went at the end of the run, bytes by part (see
    /// `panoptes::memory::Breakdown`).
    pub memory_bytes: crate::memory::Breakdown,
    pub open_fds: u64,
    pub open_fds_peak: u64,
    pub threads: u64,
    /// User + system CPU of the simulator process over the window.
    pub simulator_cpu_s: f64,
    pub simulator_cpu_cores: f64,
    /// Polls finished in each second since the node started: shows how evenly they spread.
    pub polls_per_second: Vec<u64>,
    /// (seconds, RSS MB, CPU cores over the last 10 s) every 10 s.
    pub every_10s: Vec<(f64, f64, f64)>,
    /// None (JSON null) when the run is not longer than one interval.
    pub steady: Option<Steady>,
    /// Size of the node's data directory at the end, in MiB.
    pub data_mb: f64,
    /// Why the run stopped before `--duration`, if it did.
    pub aborted: Option<String>,
}

impl Report {
    /// The report as text.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let l = &self.latency_ms;
        let _ = writeln!(
            o,
            "panoptes bench: {} devices, {} s interval, {:.1} s measured",
            self.devices, self.interval_s, self.duration_s
        );
        let _ = writeln!(
            o,
            "  device polls        {} ({:.1}/s), missed intervals {}, timeouts {}, errors {}, shed {}",
            self.device_polls,
            self.device_polls_per_s,
            self.missed_intervals,
            self.timeouts,
            self.errors,
            self.shed
        );
        for e in &self.error_samples {
            let _ = writeln!(o, "    e.g. {e}");
        }
        let per_poll = self
            .cpu_ms_per_poll
            .map_or("-".to_string(), |c| format!("{c:.2} ms"));
        let _ = writeln!(
            o,
            "  collector CPU       {:.2} s ({:.1}% of a core), {per_poll} per poll \
             (the benchmark's own sampling, {:.2} s, left out)",
            self.collector_cpu_s,
            self.collector_cpu_cores * 100.0,
            self.bench_sampler_cpu_s
        );
        if let Some(s) = &self.steady {
            let per_poll = s
                .cpu_ms_per_poll
                .map_or("-".to_string(), |c| format!("{c:.2} ms"));
            let in_jobs = s
                .poller_thread_ms_per_poll
                .map_or("-".to_string(), |c| format!("{c:.2} ms"));
            let _ = writeln!(
                o,
                "  after {} s (steady) {} polls ({:.1}/s), {:.1}% of a core, {per_poll} per poll \
                 ({in_jobs} of it in the polling jobs)",
                s.from_s,
                s.device_polls,
                s.device_polls_per_s,
                s.collector_cpu_cores * 100.0
            );
        }
        if let Some(s) = &self.steady {
            if let (Some(mean), Some(max)) = (s.rss_mb_mean, s.rss_mb_max) {
                let _ = writeln!(
                    o,
                    "  RSS (steady)        {mean:.1} MB mean, {max:.1} MB highest (10 s samples)"
                );
            }
            if let (Some(rss), Some(cpu)) = (s.rss_slope_mb_per_h, s.cpu_slope_cores_per_h) {
                let _ = writeln!(
                    o,
                    "  flatness (steady)   RSS {rss:+.1} MB/h, CPU {cpu:+.3} cores/h (least squares, 10 s samples)"
                );
            }
        }
        let by = self
            .all_devices_polled_by_s
            .map_or("not every device was polled".to_string(), |s| {
                format!("every device polled by {s:.1} s")
            });
        let _ = writeln!(
            o,
            "  first interval      {} of {} devices polled; {by}",
            self.first_interval_devices_polled, self.devices
        );
        let _ = writeln!(
            o,
            "  poll latency        p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.p50, l.p90, l.p99, l.max
        );
        let _ = writeln!(
            o,
            "  published           {} metrics groups ({:.1}/s); InfluxDB points {:.1}/s",
            self.metrics_groups_published, self.metrics_groups_per_s, self.influxdb_points_per_s
        );
        let per_varbind = self
            .steady
            .and_then(|s| s.cpu_us_per_varbind)
            .or(self.cpu_us_per_varbind)
            .map_or("-".to_string(), |c| format!("{c:.2} µs"));
        let _ = writeln!(
            o,
            "  SNMP                {} requests, {} varbinds, {} timed out; {per_varbind} CPU per varbind{}",
            self.snmp_requests,
            self.snmp_varbinds,
            self.snmp_timeouts,
            if self.steady.is_some() { " (steady)" } else { "" }
        );
        let e = &self.enrichment;
        let _ = writeln!(
            o,
            "  enrichment          {} runs, {} failed, {:.2} s CPU in the jobs ({} per run), \
             latency p50 {:.0} ms, p99 {:.0} ms",
            e.runs,
            e.errors,
            e.poller_thread_cpu_s,
            e.poller_thread_ms_per_run
                .map_or("-".to_string(), |c| format!("{c:.1} ms")),
            e.latency_ms.p50,
            e.latency_ms.p99
        );
        let _ = writeln!(
            o,
            "  planning            {} schedules built, {:.2} s",
            self.planning.plans, self.planning.cpu_s
        );
        let _ = writeln!(
            o,
            "  collector RSS       start {:.1} MB, peak {:.1} MB, end {:.1} MB; {} fds (peak {}), {} threads",
            self.rss_mb.start,
            self.rss_mb.peak,
            self.rss_mb.end,
            self.open_fds,
            self.open_fds_peak,
            self.threads
        );
        let m = &self.memory_bytes;
        let mb = |v: u64| v as f64 / (1024.0 * 1024.0);
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{:.1}", mb(v)));
        let _ = writeln!(
            o,
            "  memory at the end   RSS {:.1} MB = files {:.1} + anonymous {:.1}; anonymous = \
             heap in use {} + retained by the allocator {}; heap = rate state {:.1} + other {} \
             (allocator committed {:.1})",
            mb(m.rss),
            mb(m.rss_file),
            mb(m.rss_anon),
            opt(m.heap_in_use),
            opt(m.allocator_retained),
            mb(m.rate_state),
            opt(m.heap_other),
            mb(m.allocator_committed)
        );
        let _ = writeln!(o, "  data directory      {:.0} MB", self.data_mb);
        if let Some(reason) = &self.aborted {
            let _ = writeln!(o, "  STOPPED EARLY       {reason}");
        }
        let _ = writeln!(
            o,
            "  simulator CPU       {:.2} s ({:.1}% of a core)",
            self.simulator_cpu_s,
            self.simulator_cpu_cores * 100.0
        );
        let from = self.steady.map_or_else(
            || {
                self.polls_per_second
                    .iter()
                    .position(|&n| n > 0)
                    .unwrap_or(0)
            },
            |s| usize::try_from(s.from_s).unwrap_or(usize::MAX),
        );
        // The last second is partial: left out.
        let end = self.polls_per_second.len().saturating_sub(1);
        if let Some(window) = self
            .polls_per_second
            .get(from..end)
            .filter(|w| !w.is_empty())
        {
            o.push_str(&histogram(window, from));
        }
        if let Some(min) = self.min_polls_per_interval() {
            let _ = writeln!(
                o,
                "  polls per interval  min {min} of {} devices over each full interval after the first",
                self.devices
            );
        }
        o
    }
}

impl Report {
    /// The fewest polls finished in any full interval after the first (None if the run
    /// holds no such interval).
    pub fn min_polls_per_interval(&self) -> Option<u64> {
        let n = usize::try_from(self.interval_s).ok().filter(|&n| n > 0)?;
        let after = self.polls_per_second.get(n..)?;
        after.chunks_exact(n).map(|c| c.iter().sum()).min()
    }
}

/// Polls per second as a histogram: how many seconds of `window` saw each count, in ten
/// buckets, with mean and coefficient of variation. Even spreading shows as one tall
/// bucket around the mean; a thundering herd as seconds near 0 and a few huge ones.
fn histogram(window: &[u64], from_s: usize) -> String {
    let mut o = String::new();
    let n = window.len() as f64;
    let mean = window.iter().sum::<u64>() as f64 / n;
    let var = window
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let (min, max) = (
        window.iter().copied().min().unwrap_or(0),
        window.iter().copied().max().unwrap_or(0),
    );
    let _ = writeln!(
        o,
        "  polls per second    from {from_s} s: mean {mean:.1}, min {min}, max {max}, \
         coefficient of variation {:.2}",
        if mean > 0.0 { var.sqrt() / mean } else { 0.0 }
    );
    let width = (max - min) / 10 + 1;
    let mut buckets = [0u64; 10];
    for &x in window {
        let b = usize::try_from((x - min) / width).unwrap_or(9).min(9);
        buckets[b] += 1;
    }
    let tallest = buckets.iter().copied().max().unwrap_or(1).max(1);
    for (i, &count) in buckets.iter().enumerate() {
        let lo = min + i as u64 * width;
        if lo > max {
            break;
        }
        let bar = "#".repeat(usize::try_from(count * 40 / tallest).unwrap_or(40));
        let _ = writeln!(
            o,
            "    {lo:>6}-{:<6} polls/s  {count:>5} s  {bar}",
            lo + width - 1
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_keys() {
        let r = Report {
            devices: 3,
            device_polls: 9,
            first_interval_devices_polled: 3,
            all_devices_polled_by_s: Some(41.5),
            // The last second is partial and left out of the histogram.
            polls_per_second: vec![0, 2, 4, 3],
            ..Report::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "devices",
            "interval_s",
            "duration_s",
            "device_polls",
            "device_polls_per_s",
            "collector_cpu_s",
            "bench_sampler_cpu_s",
            "cpu_ms_per_poll",
            "missed_intervals",
            "timeouts",
            "errors",
            "simulator_cpu_s",
            "cpu_us_per_varbind",
            "first_interval_devices_polled",
            "all_devices_polled_by_s",
            "memory_bytes",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in [
            "rss",
            "rss_anon",
            "rss_file",
            "allocator_committed",
            "heap_in_use",
            "allocator_retained",
            "rate_state",
            "heap_other",
        ] {
            assert!(v["memory_bytes"].get(key).is_some(), "{key}");
        }
        for key in ["p50", "p90", "p99", "max"] {
            assert!(v["latency_ms"].get(key).is_some(), "{key}");
        }
        for key in ["start", "peak", "end"] {
            assert!(v["rss_mb"].get(key).is_some(), "{key}");
        }
        let text = r.render();
        assert!(
            text.contains("3 devices") && text.contains("min 2, max 4"),
            "{text}"
        );
        assert!(
            text.contains("3 of 3 devices polled; every device polled by 41.5 s"),
            "{text}"
        );
    }

    #[test]
    fn histogram_and_intervals() {
        let r = Report {
            devices: 10,
            interval_s: 2,
            polls_per_second: vec![0, 3, 5, 5, 6, 4, 9],
            ..Report::default()
        };
        assert_eq!(r.min_polls_per_interval(), Some(10));
        let h = histogram(&[5, 5, 6, 4], 2);
        assert!(h.contains("mean 5.0, min 4, max 6"), "{h}");
        assert!(h.contains("     5-5      polls/s      2 s"), "{h}");
    }
}
