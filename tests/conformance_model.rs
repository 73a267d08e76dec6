//! The Panoptes JSON in tests/conformance round-trips through our model unchanged.

use std::path::PathBuf;

use panoptes::model::{canonical, MetricsGroup, Resource, ResourceSet};
use serde_json::Value;

fn load(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn metrics_groups_round_trip() {
    let mut inputs = vec![load("influxdb_consumer/basic/metrics_group.json")];
    for step in 1..=8 {
        inputs.push(
            load(&format!(
                "rate_transform/interface_counter_sequence/input_{step}.json"
            ))[0]
                .clone(),
        );
    }
    inputs.push(load("kafka_topics/site_and_global/metrics_group_set.json")[0].clone());
    for original in inputs {
        assert!(original.is_object());
        let group = MetricsGroup::from_json(&original).unwrap();
        let back = serde_json::to_value(&group).unwrap();
        assert_eq!(canonical(&back), canonical(&original));
    }
}

#[test]
fn resource_sets_round_trip_including_string_timestamps() {
    for rel in [
        "discovery/from_json_file/results.json",
        "resource_manager/reconcile/resource_one.json",
        "resource_manager/reconcile/resource_two.json",
    ] {
        let original = load(rel);
        let set = ResourceSet::from_json(&original).unwrap();
        let mut back = serde_json::to_value(&set).unwrap();
        if original.get("resource_set_schema_version").is_none() {
            back.as_object_mut()
                .unwrap()
                .remove("resource_set_schema_version");
        }
        assert_eq!(canonical(&back), canonical(&original), "{rel}");
    }
}

#[test]
fn enrichment_fixture_resources_parse() {
    for case in ["generic", "cisco", "juniper_mx", "juniper_qfx"] {
        let v = load(&format!("interface_enrichment/{case}/expected.json"));
        let r = Resource::from_json(&v["resource"]).unwrap();
        assert_eq!(
            canonical(&serde_json::to_value(&r).unwrap()),
            canonical(&v["resource"]),
            "{case}"
        );
    }
}
