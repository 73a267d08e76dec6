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
    /// User + system CPU of the collector's process over the window (enrichment included).
    pub collector_cpu_s: f64,
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
    pub snmp_timeouts: u64,
    /// Polls the pool refused because its queue was full.
    pub shed: u64,
    pub enrichment_runs: u64,
    pub metrics_groups_published: u64,
    pub metrics_groups_per_s: f64,
    /// Points InfluxDB accepted per second (0 unless `[influxdb] url` is set).
    pub influxdb_points_per_s: f64,
    pub rss_mb: RssMb,
    pub open_fds: u64,
    pub open_fds_peak: u64,
    pub threads: u64,
    /// User + system CPU of the simulator process over the window.
    pub simulator_cpu_s: f64,
    pub simulator_cpu_cores: f64,
    /// Polls finished in each second since the node started: shows how evenly they spread.
    pub polls_per_second: Vec<u64>,
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
            "  collector CPU       {:.2} s ({:.1}% of a core), {per_poll} per poll",
            self.collector_cpu_s,
            self.collector_cpu_cores * 100.0
        );
        if let Some(s) = &self.steady {
            let per_poll = s
                .cpu_ms_per_poll
                .map_or("-".to_string(), |c| format!("{c:.2} ms"));
            let _ = writeln!(
                o,
                "  after {} s (steady) {} polls ({:.1}/s), {:.1}% of a core, {per_poll} per poll",
                s.from_s,
                s.device_polls,
                s.device_polls_per_s,
                s.collector_cpu_cores * 100.0
            );
        }
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
        let _ = writeln!(
            o,
            "  SNMP                {} requests, {} timed out; enrichment runs {}",
            self.snmp_requests, self.snmp_timeouts, self.enrichment_runs
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
        let busy: Vec<u64> = self
            .polls_per_second
            .iter()
            .copied()
            .skip_while(|n| *n == 0)
            .collect();
        if let (Some(min), Some(max)) = (busy.iter().min(), busy.iter().max()) {
            let _ = writeln!(
                o,
                "  polls per second    min {min}, max {max} (from the first poll; --json has each second)"
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_keys() {
        let r = Report {
            devices: 3,
            device_polls: 6,
            polls_per_second: vec![0, 2, 4],
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
            "cpu_ms_per_poll",
            "missed_intervals",
            "timeouts",
            "errors",
            "simulator_cpu_s",
        ] {
            assert!(v.get(key).is_some(), "{key}");
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
    }
}
