//! The `rate` transform: counters become per-second gauges, from the previous sample kept
//! in storage under `<partition key>|<metric>` with a TTL of 3 x interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::TransformSpec;
use crate::model::{Metric, MetricType, MetricValue, MetricsGroup};

/// A counter's value and its timestamp, as stored between polls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub value: MetricValue,
    pub ts: f64,
}

/// Where previous samples live. `get_set` must be atomic: store the new sample and return
/// the previous one. The spec's key is `<partition key>|<metric>` and its value
/// `<value>|<timestamp>`.
pub trait RateState {
    fn get_set(&self, key: &str, value: &str, ttl: Duration) -> Result<Option<String>, String>;

    /// Stores the samples of one metrics group (partition key `group_key`) in order, as
    /// `get_set` of each would, and returns the previous live sample of each (`None`: no
    /// previous sample, or an unreadable one). A store may do the whole group in one step:
    /// the node's [`RateStore`](super::RateStore) does, without strings.
    fn get_set_group(
        &self,
        group_key: &str,
        samples: &[(&str, Sample)],
        ttl: Duration,
    ) -> Result<Vec<Option<Sample>>, String> {
        samples
            .iter()
            .map(|(name, sample)| {
                let key = format!("{group_key}|{name}");
                let value = format_sample(sample);
                Ok(self.get_set(&key, &value, ttl)?.and_then(|previous| {
                    let parsed = parse_sample(&previous);
                    if parsed.is_none() {
                        tracing::warn!(key = %key, stored = %previous, "unreadable previous sample: no rate this time");
                    }
                    parsed
                }))
            })
            .collect()
    }
}

/// For tests and one-shot runs.
#[derive(Default)]
pub struct MemoryRateState(Mutex<HashMap<String, String>>);

impl RateState for MemoryRateState {
    fn get_set(&self, key: &str, value: &str, _ttl: Duration) -> Result<Option<String>, String> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| "rate state lock poisoned".to_string())?;
        Ok(map.insert(key.to_string(), value.to_string()))
    }
}

/// What happened to a batch, for counters and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransformReport {
    pub rates: usize,
    pub skipped_first_sample: usize,
    pub skipped_bad_interval: usize,
    pub skipped_reset: usize,
    pub wraps: usize,
    pub dropped_groups: usize,
    pub state_errors: usize,
}

/// Applies the plugin's transforms to each group: groups without a transform pass through,
/// a transform of an unknown kind drops its groups (as the original does), `rate` adds gauges.
pub fn apply_transforms(
    transforms: &[TransformSpec],
    groups: Vec<MetricsGroup>,
    state: &dyn RateState,
    now: f64,
    report: &mut TransformReport,
) -> Vec<MetricsGroup> {
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let Some(spec) = transforms
            .iter()
            .find(|t| t.group_type == group.metrics_group_type)
        else {
            out.push(group);
            continue;
        };
        if spec.kind != "rate" {
            tracing::warn!(transform = %spec.name, kind = %spec.kind, group = %group.metrics_group_type,
                "unknown transform kind: metrics group dropped");
            report.dropped_groups += 1;
            continue;
        }
        match rate(spec, group, state, now, report) {
            Ok(g) => out.push(g),
            Err(e) => {
                tracing::warn!(transform = %spec.name, error = %e, "rate transform failed: metrics group dropped");
                report.state_errors += 1;
                report.dropped_groups += 1;
            }
        }
    }
    out
}

const TWO_POW_32: i128 = 1 << 32;

fn rate(
    spec: &TransformSpec,
    mut group: MetricsGroup,
    state: &dyn RateState,
    now: f64,
    report: &mut TransformReport,
) -> Result<MetricsGroup, String> {
    let interval = group.metrics_group_interval as f64;
    let ttl = Duration::from_secs(group.metrics_group_interval.saturating_mul(3));
    let prefix = group.partition_key();
    let inputs: Vec<usize> = (0..group.metrics.len())
        .filter(|&i| spec.inputs.contains(&group.metrics[i].metric_name))
        .collect();
    let samples: Vec<(&str, Sample)> = inputs
        .iter()
        .map(|&i| {
            let m = &group.metrics[i];
            let sample = Sample {
                value: m.metric_value,
                ts: m.metric_creation_timestamp,
            };
            (m.metric_name.as_str(), sample)
        })
        .collect();
    let previous = state.get_set_group(&prefix, &samples, ttl)?;
    drop(samples);
    let mut gauges: Vec<Metric> = Vec::new();
    for (&i, previous) in inputs.iter().zip(previous) {
        let metric = &group.metrics[i];
        let Some(Sample {
            value: prev_value,
            ts: prev_ts,
        }) = previous
        else {
            report.skipped_first_sample += 1;
            continue;
        };
        let dt = metric.metric_creation_timestamp - prev_ts;
        if dt <= 0.0 || dt > 3.0 * interval {
            report.skipped_bad_interval += 1;
            continue;
        }
        let confidence = ((interval / dt) * 100.0).round() / 100.0;
        if confidence < 0.33 {
            tracing::warn!(key = %format!("{prefix}|{}", metric.metric_name), confidence,
                "rate computed over a much longer time than the interval");
        }
        let Some(diff) = counter_delta(prev_value, metric.metric_value, report) else {
            report.skipped_reset += 1;
            continue;
        };
        let per_second = (diff / dt).trunc();
        let name = metric.metric_name.as_str();
        if group.metric(name, MetricType::Gauge).is_some()
            || gauges.iter().any(|g| g.metric_name == name)
        {
            continue;
        }
        let gauge = Metric::new(
            name,
            MetricValue::Int(per_second as i128),
            MetricType::Gauge,
            now,
        )
        .map_err(|e| e.to_string())?;
        gauges.push(gauge);
        report.rates += 1;
    }
    // Exactly: doubling the list for the gauges left a third of it unused in every group.
    group.metrics.reserve_exact(gauges.len());
    for gauge in gauges {
        group.add_metric(gauge).map_err(|e| e.to_string())?;
    }
    Ok(group)
}

/// The increase since the previous sample. A decrease is a wrap when both samples fit a
/// 32-bit counter and the previous one was in its upper half (a deliberate improvement on
/// the original, which drops every decrease); any other decrease is a reset: no rate.
fn counter_delta(prev: MetricValue, cur: MetricValue, report: &mut TransformReport) -> Option<f64> {
    match (prev, cur) {
        (MetricValue::Int(p), MetricValue::Int(c)) => {
            if c >= p {
                return Some((c - p) as f64);
            }
            if (0..TWO_POW_32).contains(&p) && (0..TWO_POW_32).contains(&c) && p >= TWO_POW_32 / 2 {
                report.wraps += 1;
                return Some((c + TWO_POW_32 - p) as f64);
            }
            None
        }
        (p, c) => {
            let d = c.as_f64() - p.as_f64();
            (d >= 0.0).then_some(d)
        }
    }
}

/// A sample as the spec's rate state stores it: `<value>|<timestamp>`.
pub(super) fn format_sample(sample: &Sample) -> String {
    format!("{}|{}", sample.value, sample.ts)
}

/// The sample of a stored `<value>|<timestamp>`.
pub(super) fn parse_sample(s: &str) -> Option<Sample> {
    let (v, ts) = s.split_once('|')?;
    let value = match v.parse::<i128>() {
        Ok(i) => MetricValue::Int(i),
        Err(_) => MetricValue::Float(v.parse::<f64>().ok()?),
    };
    Some(Sample {
        value,
        ts: ts.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CreationTimestamp, Dimension, Resource};

    fn spec(kind: &str) -> Vec<TransformSpec> {
        vec![TransformSpec {
            name: "t".into(),
            kind: kind.into(),
            group_type: "g".into(),
            inputs: vec!["c".into()],
        }]
    }

    fn group(value: i128, ts: f64) -> MetricsGroup {
        let r = Resource::new(
            "s",
            "n",
            "x",
            "t",
            "id",
            "e",
            Some("p"),
            CreationTimestamp::Number(1.0),
            60,
        )
        .unwrap();
        let mut g = MetricsGroup::new(r, "g", 60, ts).unwrap();
        g.add_dimension(Dimension::new("d", "v").unwrap()).unwrap();
        g.add_metric(Metric::new("c", MetricValue::Int(value), MetricType::Counter, ts).unwrap())
            .unwrap();
        g
    }

    fn gauge(g: &MetricsGroup) -> Option<MetricValue> {
        g.metric("c", MetricType::Gauge).map(|m| m.metric_value)
    }

    #[test]
    fn first_sample_then_rate_then_reset() {
        let st = MemoryRateState::default();
        let mut r = TransformReport::default();
        let t = spec("rate");
        let out = apply_transforms(&t, vec![group(100, 1000.0)], &st, 0.0, &mut r);
        assert_eq!(gauge(&out[0]), None);
        let out = apply_transforms(&t, vec![group(700, 1060.0)], &st, 0.0, &mut r);
        assert_eq!(gauge(&out[0]), Some(MetricValue::Int(10)));
        assert!(
            out[0].metric("c", MetricType::Counter).is_some(),
            "counter stays beside the gauge"
        );
        let out = apply_transforms(&t, vec![group(50, 1120.0)], &st, 0.0, &mut r);
        assert_eq!(gauge(&out[0]), None, "a reset gives no spike");
        assert_eq!(r.skipped_reset, 1);
        // The stored sample key follows the spec.
        let prev = st.get_set("id|g|d|v|c", "x", Duration::ZERO).unwrap();
        assert_eq!(prev.as_deref(), Some("50|1120"));
    }

    #[test]
    fn a_32_bit_wrap_is_recovered() {
        let st = MemoryRateState::default();
        let mut r = TransformReport::default();
        let t = spec("rate");
        apply_transforms(&t, vec![group(4_294_967_000, 0.5)], &st, 0.0, &mut r);
        let out = apply_transforms(&t, vec![group(304, 10.5)], &st, 0.0, &mut r);
        assert_eq!(gauge(&out[0]), Some(MetricValue::Int(60)));
        assert_eq!(r.wraps, 1);
    }

    #[test]
    fn unknown_kinds_drop_and_other_groups_pass() {
        let st = MemoryRateState::default();
        let mut r = TransformReport::default();
        let out = apply_transforms(&spec("foobar"), vec![group(1, 1.0)], &st, 0.0, &mut r);
        assert!(out.is_empty());
        let mut other = group(1, 1.0);
        other.metrics_group_type = "h".into();
        let out = apply_transforms(&spec("foobar"), vec![other], &st, 0.0, &mut r);
        assert_eq!(out.len(), 1);
    }

    proptest::proptest! {
        /// Any increasing counter sampled within 3 intervals gives trunc(diff / dt), never
        /// negative; any decrease outside the 32-bit wrap window gives no gauge at all.
        #[test]
        fn rates_follow_the_arithmetic(
            start in 0i128..(1i128 << 62),
            steps in proptest::collection::vec((-(1i128 << 40)..(1i128 << 40), 1u32..17_900u32), 1..20),
        ) {
            let st = MemoryRateState::default();
            let mut r = TransformReport::default();
            let t = spec("rate");
            let (mut value, mut ts) = (start, 1_000_000.0f64);
            apply_transforms(&t, vec![group(value, ts)], &st, 0.0, &mut r);
            for (delta, dt_centis) in steps {
                let next = (value + delta).max(0);
                let dt = f64::from(dt_centis) / 100.0;
                let prev_ts = ts;
                ts = crate::model::round3(ts + dt);
                let out = apply_transforms(&t, vec![group(next, ts)], &st, 0.0, &mut r);
                let g = gauge(&out[0]);
                let real_dt = ts - prev_ts;
                if next >= value {
                    let want = ((next - value) as f64 / real_dt).trunc() as i128;
                    proptest::prop_assert_eq!(g, Some(MetricValue::Int(want)));
                } else if value >= TWO_POW_32 {
                    proptest::prop_assert_eq!(g, None);
                }
                if let Some(MetricValue::Int(v)) = g {
                    proptest::prop_assert!(v >= 0);
                }
                value = next;
            }
        }
    }
}
