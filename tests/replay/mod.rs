//! What the conformance tests share: locating a case, the resource the original's tests
//! handed to plugins, serving a case's recording with frozen counters, and removing what
//! the original's tests removed before comparing.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use panoptes::model::Resource;
use panoptes::plugins::enrichment_cache::MapSource;
use panoptes::simulate::{
    CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig, SimulatorHandle,
};
use serde_json::{json, Value};

/// The original tests' frozen clock.
pub const FROZEN: f64 = 1512629517.03121;

/// A file of a conformance case (`tests/conformance/`).
pub fn case(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(rel)
}

/// The resource the original's plugin tests built, with extra metadata merged in.
pub fn resource_json(id: &str, extra_meta: Value) -> Value {
    let mut meta = json!({"_resource_ttl": "604800", "model": "model"});
    for (k, v) in extra_meta.as_object().into_iter().flatten() {
        meta[k] = v.clone();
    }
    json!({"resource_site": "test_site", "resource_class": "network",
        "resource_subclass": "test_subclass", "resource_type": "test_type", "resource_id": id,
        "resource_endpoint": "127.0.0.1", "resource_plugin": "dummy",
        "resource_creation_timestamp": FROZEN, "resource_metadata": meta})
}

/// `test_id` with the default metadata: the resource of most cases.
pub fn test_resource() -> Resource {
    Resource::from_json(&resource_json("test_id", json!({}))).unwrap()
}

/// Serves `<dir>/device.snmprec` on an ephemeral loopback port, counters as recorded.
pub async fn serve(dir: &str) -> SimulatorHandle {
    let text = std::fs::read_to_string(case(&format!("{dir}/device.snmprec"))).unwrap();
    let recording = Arc::new(Recording::parse(&text, dir).unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap()
}

/// `<dir>/enrichment_data.kv`, as the original test wrote it into Redis.
pub fn kv(dir: &str) -> MapSource {
    MapSource::parse_kv(
        &std::fs::read_to_string(case(&format!("{dir}/enrichment_data.kv"))).unwrap(),
    )
}

/// Drops the group, metric and resource creation timestamps, as the original tests did.
pub fn strip_volatile(groups: &mut Value) {
    for g in groups.as_array_mut().unwrap() {
        let g = g.as_object_mut().unwrap();
        g.remove("metrics_group_creation_timestamp");
        if let Some(r) = g.get_mut("resource").and_then(Value::as_object_mut) {
            r.remove("resource_creation_timestamp");
        }
        for m in g.get_mut("metrics").and_then(Value::as_array_mut).unwrap() {
            m.as_object_mut()
                .unwrap()
                .remove("metric_creation_timestamp");
        }
    }
}

/// One line per metrics group (type, dimensions, metrics), sorted: what a failure shows,
/// and what a comparison that ignores the order of the groups compares.
pub fn summary(groups: &Value) -> Vec<String> {
    let mut lines: Vec<String> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{} {} {}",
                g["metrics_group_type"], g["dimensions"], g["metrics"]
            )
        })
        .collect();
    lines.sort();
    lines
}

/// `actual` equals `expected` (values and order); otherwise the test fails naming `case`
/// and the groups missing and unexpected.
pub fn assert_same_groups(case: &str, actual: &Value, expected: &Value) {
    if actual != expected {
        let (a, e) = (summary(actual), summary(expected));
        let missing: Vec<&String> = e.iter().filter(|l| !a.contains(l)).collect();
        let extra: Vec<&String> = a.iter().filter(|l| !e.contains(l)).collect();
        panic!("{case}: output differs\nmissing: {missing:#?}\nunexpected: {extra:#?}");
    }
}
