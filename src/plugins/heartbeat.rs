//! Heartbeat (spec §8.3): the enrichment plugin stores "now" under
//! `heartbeat_ns`/`heartbeat`; the polling plugin reports `status` = 1 and the stored
//! timestamp, so a dashboard sees both that polling runs and that enrichment runs.
//! Neither talks to a device.

use serde_json::{Map, Value};

use crate::model::{
    EnrichmentGroup, EnrichmentGroupSet, Metric, MetricType, MetricValue, MetricsGroup, ModelError,
    Resource,
};
use crate::plugins::enrichment_cache::EnrichmentCache;

pub const NAMESPACE: &str = "heartbeat_ns";
pub const KEY: &str = "heartbeat";
pub const GROUP_TYPE: &str = "heartbeat";

/// `plugin_enrichment_heartbeat`: one set `heartbeat` = `{"timestamp": now}`.
pub fn enrichment(
    resource: &Resource,
    ttl: u64,
    execute_frequency: u64,
    now: f64,
) -> Result<EnrichmentGroupSet, ModelError> {
    let mut group = EnrichmentGroup::new(NAMESPACE, ttl, execute_frequency, now);
    let mut fields = Map::new();
    fields.insert("timestamp".into(), Value::from(now));
    group.upsert_set(KEY, fields);
    let mut set = EnrichmentGroupSet::new(resource.clone(), now);
    set.add_group(group)?;
    Ok(set)
}

/// `plugin_polling_heartbeat`: one `heartbeat` group with gauges `status` = 1 and
/// `heartbeat_enrichment_timestamp` = the stored timestamp as whole seconds, or -1 when
/// there is none (or it is not a number).
pub fn polling(
    resource: &Resource,
    cache: Option<&EnrichmentCache>,
    interval: u64,
    now: f64,
) -> Result<Vec<MetricsGroup>, ModelError> {
    let stored = cache
        .and_then(|c| c.value("self", NAMESPACE, KEY))
        .and_then(|v| v.get("timestamp"))
        .and_then(whole_seconds);
    if stored.is_none() {
        tracing::warn!(resource = %resource.id, "no heartbeat enrichment timestamp: reporting -1");
    }
    let mut g = MetricsGroup::new(resource.clone(), GROUP_TYPE, interval, now)?;
    g.add_metric(Metric::new(
        "status",
        MetricValue::Int(1),
        MetricType::Gauge,
        now,
    )?)?;
    g.add_metric(Metric::new(
        "heartbeat_enrichment_timestamp",
        MetricValue::Int(stored.unwrap_or(-1)),
        MetricType::Gauge,
        now,
    )?)?;
    Ok(vec![g])
}

/// Python's `int()` of a stored timestamp: floats truncate, integer strings parse.
fn whole_seconds(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i128)
        }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preload;
    use crate::plugins::enrichment_cache::MapSource;

    fn resource() -> Resource {
        Resource::from_json(
            &serde_json::json!({"resource_site": "local", "resource_class": "system",
            "resource_subclass": "internal", "resource_type": "heartbeat", "resource_id": "hb",
            "resource_endpoint": "localhost", "resource_plugin": "p",
            "resource_creation_timestamp": 1.0, "resource_metadata": {}}),
        )
        .unwrap()
    }

    fn preload() -> Vec<Preload> {
        vec![Preload {
            resource: "self".into(),
            namespace: NAMESPACE.into(),
        }]
    }

    #[test]
    fn enrichment_then_polling_round_trip_through_the_store() {
        let set = enrichment(&resource(), 300, 60, 1512629517.731).unwrap();
        let json = set.to_json();
        assert_eq!(json["enrichment"][0]["namespace"], NAMESPACE);
        assert_eq!(
            json["enrichment"][0]["data"][0][KEY]["timestamp"],
            1512629517.731
        );
        assert_eq!(json["enrichment"][0]["metadata"]["_enrichment_ttl"], 300);
        // Stored as the enrichment agent stores it, read back as polling reads it.
        let mut store = std::collections::BTreeMap::new();
        store.insert(
            format!("hb:{NAMESPACE}"),
            set.groups[0].to_stored().to_sorted_json(),
        );
        let cache = EnrichmentCache::load(&MapSource(store), &preload(), "hb").unwrap();
        let groups = polling(&resource(), Some(&cache), 60, 1512629577.0).unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.metrics_group_type, GROUP_TYPE);
        assert_eq!(g.metrics_group_interval, 60);
        assert!(g.dimensions.is_empty());
        assert_eq!(
            g.metric("status", MetricType::Gauge).unwrap().metric_value,
            MetricValue::Int(1)
        );
        assert_eq!(
            g.metric("heartbeat_enrichment_timestamp", MetricType::Gauge)
                .unwrap()
                .metric_value,
            MetricValue::Int(1512629517)
        );
    }

    #[test]
    fn missing_or_bad_enrichment_reports_minus_one() {
        let ts = |groups: Vec<MetricsGroup>| {
            groups[0]
                .metric("heartbeat_enrichment_timestamp", MetricType::Gauge)
                .unwrap()
                .metric_value
        };
        assert_eq!(
            ts(polling(&resource(), None, 60, 1.0).unwrap()),
            MetricValue::Int(-1)
        );
        let empty = EnrichmentCache::load(&MapSource::default(), &preload(), "hb").unwrap();
        assert_eq!(
            ts(polling(&resource(), Some(&empty), 60, 1.0).unwrap()),
            MetricValue::Int(-1)
        );
        let mut store = std::collections::BTreeMap::new();
        store.insert(
            format!("hb:{NAMESPACE}"),
            r#"{"data": {"heartbeat": {"timestamp": "soon"}}}"#.to_string(),
        );
        let bad = EnrichmentCache::load(&MapSource(store), &preload(), "hb").unwrap();
        assert_eq!(
            ts(polling(&resource(), Some(&bad), 60, 1.0).unwrap()),
            MetricValue::Int(-1)
        );
        assert_eq!(whole_seconds(&serde_json::json!(-2.7)), Some(-2));
        assert_eq!(whole_seconds(&serde_json::json!("42")), Some(42));
    }
}
