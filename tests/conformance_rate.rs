//! rate_transform/*: the original's 8-step counter sequence through our rate transform,
//! against both rate states: the spec's one-key-per-sample layout and the node's store.

use std::path::PathBuf;

use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::{MetricType, MetricValue, MetricsGroup};
use panoptes::transform::{
    apply_transforms, MemoryRateState, RateState, RateStore, TransformReport,
};

fn case(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance/rate_transform")
        .join(rel)
}

fn input(step: usize) -> MetricsGroup {
    let text = std::fs::read_to_string(case(&format!(
        "interface_counter_sequence/input_{step}.json"
    )))
    .unwrap();
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    MetricsGroup::from_json(&list[0]).unwrap()
}

fn value(g: &MetricsGroup, name: &str, kind: MetricType) -> Option<MetricValue> {
    g.metric(name, kind).map(|m| m.metric_value)
}

/// (step, expected gauges (uptime, extra), expected counters (uptime, extra)).
type Step = (usize, Option<(i128, i128)>, (i128, i128));

fn states() -> [(&'static str, Box<dyn RateState>); 2] {
    [
        ("MemoryRateState", Box::new(MemoryRateState::default())),
        ("RateStore", Box::new(RateStore::new())),
    ]
}

#[test]
fn interface_counter_sequence_matches_the_readme_table() {
    for (name, state) in states() {
        sequence(name, &*state);
    }
}

fn sequence(name: &str, state: &dyn RateState) {
    let plugin = PluginConfig::load(
        &case("interface_counter_sequence/plugin.conf"),
        PluginKind::Polling,
    )
    .unwrap();
    let mut report = TransformReport::default();
    // (step, expected gauges (uptime, extra), expected counters (uptime, extra))
    let table: [Step; 8] = [
        (1, None, (0, 0)),
        (2, Some((0, 1)), (60, 120)),
        (3, Some((0, 1)), (120, 240)),
        (4, None, (120, 240)),
        (5, None, (120, 240)),
        (6, None, (500, 1000)),
        (7, Some((0, 0)), (500, 1000)),
        (8, None, (400, 900)),
    ];
    for (step, gauges, counters) in table {
        let out = apply_transforms(
            &plugin.transforms,
            vec![input(step)],
            state,
            1.0,
            None,
            &mut report,
        );
        assert_eq!(out.len(), 1, "{name} step {step}: one message published");
        let (g, _) = &out[0];
        let c = (
            value(g, "test_system_uptime", MetricType::Counter),
            value(g, "extra_test_metric", MetricType::Counter),
        );
        assert_eq!(
            c,
            (
                Some(MetricValue::Int(counters.0)),
                Some(MetricValue::Int(counters.1))
            ),
            "{name} step {step} counters"
        );
        let got = (
            value(g, "test_system_uptime", MetricType::Gauge),
            value(g, "extra_test_metric", MetricType::Gauge),
        );
        let want = gauges
            .map(|(a, b)| (Some(MetricValue::Int(a)), Some(MetricValue::Int(b))))
            .unwrap_or((None, None));
        assert_eq!(got, want, "{name} step {step} gauges");
    }
    assert_eq!(report.rates, 6, "{name}");
}

#[test]
fn unknown_transform_type_publishes_nothing() {
    let plugin = PluginConfig::load(
        &case("unknown_transform_type/plugin.conf"),
        PluginKind::Polling,
    )
    .unwrap();
    let state = MemoryRateState::default();
    let mut report = TransformReport::default();
    for step in 1..=8 {
        let out = apply_transforms(
            &plugin.transforms,
            vec![input(step)],
            &state,
            1.0,
            None,
            &mut report,
        );
        assert!(out.is_empty(), "step {step}");
    }
    assert_eq!(report.dropped_groups, 8);
}
