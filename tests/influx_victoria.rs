//! The sink against a real VictoriaMetrics (Debian package `victoria-metrics`), written
//! through the v1 `/write` endpoint and through the v2 API (the `influxdb2` crate), from
//! the real binary polling the demo switch; read back with VictoriaMetrics' export API.
//! Every metric of every metrics group the node published must be there, under the
//! original's measurement, tag and field names.

mod influx_support;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use influx_support::node::{metrics, node_env, read_topic, wait_metrics, TOPIC};
use influx_support::{eventually, expected_rows, metric_value, missing_or_different, Server};
use support::json_lines;

const DEMO_GROUPS_PER_POLL: usize = 49;

fn demo_reaches_victoria_metrics(api: &str) {
    demo_reaches(Server::victoria_metrics(), api, &[]);
}

/// The same over HTTPS: VictoriaMetrics with a self-signed certificate the node trusts
/// through `influxdb.tls_ca`.
fn demo_reaches_victoria_metrics_over_https(api: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = support::self_signed(dir.path());
    let vm = Server::victoria_metrics_tls(&cert, &key);
    assert!(vm.url().starts_with("https://localhost:"));
    demo_reaches(
        vm,
        api,
        &[("PANOPTES__INFLUXDB__TLS_CA", cert.to_str().unwrap())],
    );
}

fn demo_reaches(vm: Server, api: &str, extra: &[(&str, &str)]) {
    let mut env = node_env(&vm, api, 2);
    for (k, v) in extra {
        env.set(k, v);
    }
    env.set("PANOPTES__INFLUXDB__TOKEN", "sekret-token-do-not-print");
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    // Two polls: the second carries the rates (gauges) next to the counters.
    let two_polls = (2 * DEMO_GROUPS_PER_POLL) as f64;
    wait_metrics(
        &env,
        &mut node,
        Duration::from_secs(90),
        "two polls written",
        |m| metric_value(m, "panoptes_influxdb_points_written_total") >= two_polls,
    );
    let out = env.cli(
        &[
            "topic",
            "tail",
            TOPIC,
            "--from-beginning",
            "--max",
            &two_polls.to_string(),
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let groups = json_lines(&out.stdout);
    assert_eq!(groups.len(), 2 * DEMO_GROUPS_PER_POLL);
    let expected = expected_rows(&groups);

    // The demo device's whole vocabulary is there: 48 interfaces, their counters and
    // (second poll) rates, and the polling status.
    let interfaces: BTreeSet<&String> = expected
        .keys()
        .filter(|(k, _)| k.starts_with("interface,"))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(interfaces.len(), 48, "one series per interface");
    let fields: BTreeSet<&String> = expected.values().flat_map(|f| f.keys()).collect();
    for name in [
        "bits_in__counter",
        "bits_in__gauge",
        "bits_out__gauge",
        "errors_in__gauge",
        "oper_state__gauge",
        "admin_state__gauge",
        "interface_polling_status__gauge",
    ] {
        assert!(
            fields.iter().any(|f| *f == name),
            "no field {name}: {fields:?}"
        );
    }
    assert!(interfaces
        .iter()
        .all(|k| k.contains(",interface_name=") && k.contains(",resource_endpoint=")));

    eventually(Duration::from_secs(60), "points in VictoriaMetrics", || {
        let (stored, _) = vm.vm_rows(&["interface", "status"]);
        missing_or_different(&expected, &stored)
    });

    let m = metrics(&env);
    assert_eq!(metric_value(&m, "panoptes_influxdb_sink_enabled"), 1.0);
    assert_eq!(
        metric_value(&m, "panoptes_influxdb_points_rejected_total"),
        0.0
    );
    assert!(metric_value(&m, "panoptes_influxdb_batches_total") >= 1.0);
    let log = node.log_text();
    assert!(log.contains("InfluxDB sink is on"), "{log}");
    assert!(
        !m.contains("sekret") && !log.contains("sekret"),
        "the token leaked"
    );
    node.stop();

    // The topic the node left behind agrees: every committed record is in
    // VictoriaMetrics.
    let (groups, committed) = read_topic(&env);
    assert!(committed as usize >= 2 * DEMO_GROUPS_PER_POLL);
    let (stored, _) = vm.vm_rows(&["interface", "status"]);
    let problems = missing_or_different(&expected_rows(&groups[..committed as usize]), &stored);
    assert!(
        problems.is_empty(),
        "{:?}",
        &problems[..problems.len().min(5)]
    );
}

#[test]
fn demo_to_victoria_metrics_through_v1_write() {
    demo_reaches_victoria_metrics("v1");
}

#[test]
fn demo_to_victoria_metrics_through_v2_api() {
    demo_reaches_victoria_metrics("v2");
}

#[test]
fn demo_to_victoria_metrics_over_https_through_v1_write() {
    demo_reaches_victoria_metrics_over_https("v1");
}

#[test]
fn demo_to_victoria_metrics_over_https_through_v2_api() {
    demo_reaches_victoria_metrics_over_https("v2");
}

#[test]
fn sink_is_off_without_a_url_and_says_so() {
    let env = support::NodeEnv::demo(2);
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let m = metrics(&env);
    assert!(m.contains("panoptes_influxdb_sink_enabled 0"), "{m}");
    assert!(
        m.contains("panoptes_influxdb_points_written_total 0"),
        "{m}"
    );
    let log_file = node.log.clone();
    node.stop();
    // The start message is in the log (written before /health answers).
    let log = std::fs::read_to_string(log_file).unwrap_or_default();
    assert!(log.contains("InfluxDB sink is off"), "{log}");
}
