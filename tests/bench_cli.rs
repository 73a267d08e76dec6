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
    assert!(
        stderr.contains("polled"),
        "live progress on stderr: {stderr}"
    );
    // The benchmark cleans up its data directory.
    let left: Vec<_> = std::fs::read_dir(data.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
