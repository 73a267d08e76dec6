//! Running the real binary with the sink on, and checking what reached the server
//! against the topic itself (read from the node's store once the node is stopped).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{expected_rows, metric_value, Rows, Server};
use crate::support::NodeEnv;

pub const TOPIC: &str = "local-processed";
pub const GROUP: &str = "panoptes_influxdb_consumer_raw_metrics";

/// The demo node polling every `poll_every` s, its sink pointed at `server`.
pub fn node_env(server: &Server, api: &str, poll_every: u64) -> NodeEnv {
    let mut env = NodeEnv::demo(poll_every);
    env.set("PANOPTES__INFLUXDB__URL", &server.url());
    env.set("PANOPTES__INFLUXDB__API", api);
    env.set("PANOPTES__INFLUXDB__DATABASE", "panoptes");
    env.set("PANOPTES__INFLUXDB__ORG", "panoptes-org");
    env.set("PANOPTES__INFLUXDB__BUCKET", "panoptes");
    env.set("PANOPTES__INFLUXDB__MAX_EMIT_INTERVAL", "1");
    env.set("PANOPTES__INFLUXDB__TIMEOUT", "5");
    env.set("PANOPTES__INFLUXDB__RETRY_BACKOFF_MAX", "4");
    env
}

/// The node's `/metrics` text.
pub fn metrics(env: &NodeEnv) -> String {
    env.http_get("/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default()
}

pub fn written(env: &NodeEnv) -> f64 {
    metric_value(&metrics(env), "panoptes_influxdb_points_written_total")
}

pub fn high_watermark(env: &NodeEnv) -> f64 {
    metric_value(
        &metrics(env),
        &format!("panoptes_topic_high_watermark{{topic=\"{TOPIC}\",partition=\"0\"}}"),
    )
}

/// Waits until `check(metrics text)` holds; panics with the node's log otherwise.
pub fn wait_metrics(
    env: &NodeEnv,
    node: &mut crate::support::Node,
    limit: Duration,
    what: &str,
    check: impl Fn(&str) -> bool,
) {
    let start = Instant::now();
    loop {
        let text = metrics(env);
        if check(&text) {
            return;
        }
        if let Ok(Some(status)) = node.child.try_wait() {
            panic!(
                "node exited ({status}) waiting for {what}; log:\n{}",
                node.log_text()
            );
        }
        if start.elapsed() > limit {
            let ours: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("influxdb") && !l.starts_with('#'))
                .collect();
            panic!(
                "{what}: not within {limit:?}; sink metrics:\n{}\nlog tail:\n{}",
                ours.join("\n"),
                tail(&node.log_text(), 40)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The topic as the stopped node left it: every metrics group, and the sink's committed
/// offset.
pub fn read_topic(env: &NodeEnv) -> (Vec<Value>, u64) {
    let store = panoptes_storage::Store::open(&env.dir.path().join("data")).unwrap();
    let topic = store.topic(TOPIC, 1).unwrap();
    let (low, high) = (
        topic.low_watermark(0).unwrap(),
        topic.high_watermark(0).unwrap(),
    );
    let mut groups = Vec::new();
    let mut next = low;
    while next < high {
        let records = topic.read(0, next, 1000, 64 << 20).unwrap();
        assert!(!records.is_empty(), "no record at offset {next} of {high}");
        for r in records {
            assert_eq!(
                r.offset,
                next + groups.len() as u64 - (next - low),
                "offsets are dense"
            );
            groups.push(serde_json::from_slice(&r.record.value).unwrap());
        }
        next = low + groups.len() as u64;
    }
    let committed = store
        .consumer_offsets()
        .unwrap()
        .committed(GROUP, TOPIC, 0)
        .unwrap()
        .unwrap_or(0);
    (groups, committed)
}

/// Checks stored rows against the topic: every group before the committed offset is
/// stored with exactly its fields, and nothing is stored that no group on the topic
/// says (so nothing invented, nothing doubled: a series holds one row per second).
pub fn check_against_topic(groups: &[Value], committed: u64, stored: &Rows) {
    let must = expected_rows(&groups[..committed as usize]);
    let may = expected_rows(groups);
    let missing = super::missing_or_different(&must, stored);
    assert!(
        missing.is_empty(),
        "{} of {} committed points missing or different; first:\n{}",
        missing.len(),
        must.len(),
        missing
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let foreign: Vec<String> = stored
        .iter()
        .filter(|(key, fields)| may.get(*key) != Some(*fields))
        .map(|(key, fields)| format!("{key:?}: {fields:?} (topic: {:?})", may.get(key)))
        .collect();
    assert!(
        foreign.is_empty(),
        "{} stored rows match no metrics group on the topic; first:\n{}",
        foreign.len(),
        foreign
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
