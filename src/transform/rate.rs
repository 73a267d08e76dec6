//! The `rate` transform: counters become per-second gauges, from the previous sample kept
//! in storage under `<partition key>|<metric>` with a TTL of 3 x interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use smallvec::SmallVec;

use crate::config::TransformSpec;
use crate::model::{CounterWidth, MetricType, MetricValue, MetricsGroup, ModelError, Name};

/// A counter's value and its timestamp, as stored between polls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub value: MetricValue,
    pub ts: f64,
}

/// Why previous samples could not be read or the new ones stored.
#[derive(Debug, thiserror::Error)]
pub enum RateStateError {
    #[error(transparent)]
    Store(#[from] super::rate_store::RateStoreError),
    #[error("rate state lock poisoned")]
    Poisoned,
}

/// Why the rate transform dropped a metrics group.
#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error(transparent)]
    State(#[from] RateStateError),
    /// A computed gauge that the metrics group does not accept.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Where previous samples live. `get_set` must be atomic: store the new sample and return
/// the previous one. The spec's key is `<partition key>|<metric>` and its value
/// `<value>|<timestamp>`.
pub trait RateState {
    fn get_set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<String>, RateStateError>;

    /// Stores the samples of one metrics group (partition key `group_key`) in order, as
    /// `get_set` of each would, and returns the previous live sample of each (`None`: no
    /// previous sample, or an unreadable one). A store may do the whole group in one step:
    /// the node's [`RateStore`](super::RateStore) does, without strings.
    fn get_set_group(
        &self,
        group_key: &str,
        samples: &[(&str, Sample)],
        ttl: Duration,
    ) -> Result<Vec<Option<Sample>>, RateStateError> {
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
    fn get_set(
        &self,
        key: &str,
        value: &str,
        _ttl: Duration,
    ) -> Result<Option<String>, RateStateError> {
        let mut map = self.0.lock().map_err(|_| RateStateError::Poisoned)?;
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
    /// Samples taken in a poll whose sysUpTime says the device restarted since the previous one.
    pub skipped_restart: usize,
    /// Polls in which the device's sysUpTime showed a restart.
    pub device_restarts: usize,
    pub wraps: usize,
    pub dropped_groups: usize,
    pub state_errors: usize,
}

/// Applies the plugin's transforms to each group of one poll: groups without a transform
/// pass through, a transform of an unknown kind drops its groups (as the original does),
/// `rate` adds gauges. `uptime` is the device's sysUpTime (TimeTicks) when the poll read
/// it: if it shows a restart since the previous poll, every counter starts afresh (new
/// samples stored, no gauges) instead of giving a rate across the restart.
///
/// Each group comes with its partition key where the rate transform built it (a rate adds
/// gauges, never dimensions, so the key still holds): publishing needs the same key, and
/// building it twice was ≈1.5% of a poll.
pub fn apply_transforms(
    transforms: &[TransformSpec],
    groups: Vec<MetricsGroup>,
    state: &dyn RateState,
    now: f64,
    uptime: Option<u32>,
    report: &mut TransformReport,
) -> Vec<(MetricsGroup, Option<String>)> {
    let restarted = match (uptime, rated_group(transforms, &groups)) {
        (Some(ticks), Some(group)) => match device_restarted(state, group, ticks, now) {
            Ok(restarted) => restarted,
            Err(e) => {
                tracing::warn!(resource = %group.resource.id, error = %e, "rate state: sysUpTime not stored");
                report.state_errors += 1;
                false
            }
        },
        _ => false,
    };
    if restarted {
        tracing::info!(resource = %groups[0].resource.id, "device restarted (sysUpTime went back): no rates this poll");
        report.device_restarts += 1;
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut layout = Layout::default();
    for group in groups {
        let Some(spec) = transforms
            .iter()
            .find(|t| t.group_type == group.metrics_group_type)
        else {
            out.push((group, None));
            continue;
        };
        if spec.kind != "rate" {
            tracing::warn!(transform = %spec.name, kind = %spec.kind, group = %group.metrics_group_type,
                "unknown transform kind: metrics group dropped");
            report.dropped_groups += 1;
            continue;
        }
        match rate(spec, group, state, now, restarted, &mut layout, report) {
            Ok((g, key)) => out.push((g, Some(key))),
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

/// The first group a `rate` transform applies to, if any.
fn rated_group<'a>(
    transforms: &[TransformSpec],
    groups: &'a [MetricsGroup],
) -> Option<&'a MetricsGroup> {
    groups.iter().find(|g| {
        transforms
            .iter()
            .any(|t| t.kind == "rate" && t.group_type == g.metrics_group_type)
    })
}

/// The metric name under which a device's last sysUpTime is kept in the rate state, beside
/// its groups' counters (`<resource_id>|sysUpTime|sysUpTime`).
const UPTIME: &str = "sysUpTime";

/// Stores the device's sysUpTime and says whether it restarted since the previous sample:
/// the uptime went back (and not by a TimeTicks wrap after 497 days), or it is shorter than
/// the time since the previous poll.
fn device_restarted(
    state: &dyn RateState,
    group: &MetricsGroup,
    ticks: u32,
    now: f64,
) -> Result<bool, RateStateError> {
    let key = format!("{}|{UPTIME}", group.resource.id);
    let ttl = Duration::from_secs(group.metrics_group_interval.saturating_mul(3));
    let sample = Sample {
        value: MetricValue::Int(i128::from(ticks)),
        ts: now,
    };
    let previous = state.get_set_group(&key, &[(UPTIME, sample)], ttl)?;
    let Some(Some(Sample {
        value: MetricValue::Int(prev),
        ts: prev_ts,
    })) = previous.into_iter().next()
    else {
        return Ok(false);
    };
    Ok(uptime_shows_restart(prev, i128::from(ticks), now - prev_ts))
}

/// `prev` and `cur` in hundredths of a second, `dt` in seconds of our clock. A restart
/// shows as an uptime shorter than the time since the previous sample (with a little slack
/// for the two clocks), unless the counter wrapped at 2^32 in between.
pub(super) fn uptime_shows_restart(prev: i128, cur: i128, dt: f64) -> bool {
    let slack = 2.0 + dt * 0.01;
    if cur < prev {
        let wrapped =
            prev >= TWO_POW_32 / 2 && ((cur + TWO_POW_32 - prev) as f64 / 100.0) <= dt + slack;
        return !wrapped;
    }
    (cur as f64 / 100.0) + slack < dt
}

/// Which of a group's metrics a transform rates, and which of those already have a gauge
/// of their name, for the metrics' names and types in order: a poll's groups are alike
/// (48 interface groups of the same 22 metrics), so this is worked out once a poll, not
/// once a group (≈900 name comparisons a group).
#[derive(Default)]
struct Layout {
    /// The transform (its address) and the metrics' names and types this is for.
    spec: usize,
    metrics: Vec<(Name, MetricType)>,
    /// The inputs' places among the metrics, and whether a gauge of the input's name is
    /// among the metrics.
    inputs: SmallVec<[(usize, bool); 32]>,
}

impl Layout {
    fn matches(&self, spec: &TransformSpec, group: &MetricsGroup) -> bool {
        self.spec == std::ptr::from_ref(spec) as usize
            && self.metrics.len() == group.metrics.len()
            && self
                .metrics
                .iter()
                .zip(&group.metrics)
                .all(|((name, kind), m)| *kind == m.metric_type && *name == m.metric_name)
    }

    fn of(spec: &TransformSpec, group: &MetricsGroup) -> Layout {
        let inputs = (0..group.metrics.len())
            .filter(|&i| {
                spec.inputs
                    .iter()
                    .any(|n| *n == group.metrics[i].metric_name)
            })
            .map(|i| {
                let name = &group.metrics[i].metric_name;
                (i, group.metric(name, MetricType::Gauge).is_some())
            })
            .collect();
        Layout {
            spec: std::ptr::from_ref(spec) as usize,
            metrics: group
                .metrics
                .iter()
                .map(|m| (m.metric_name.clone(), m.metric_type))
                .collect(),
            inputs,
        }
    }
}

fn rate(
    spec: &TransformSpec,
    mut group: MetricsGroup,
    state: &dyn RateState,
    now: f64,
    restarted: bool,
    layout: &mut Layout,
    report: &mut TransformReport,
) -> Result<(MetricsGroup, String), RateError> {
    let interval = group.metrics_group_interval as f64;
    let ttl = Duration::from_secs(group.metrics_group_interval.saturating_mul(3));
    let prefix = group.partition_key();
    if !layout.matches(spec, &group) {
        *layout = Layout::of(spec, &group);
    }
    let inputs = &layout.inputs;
    let samples: SmallVec<[(&str, Sample); 24]> = inputs
        .iter()
        .map(|&(i, _)| {
            let m = &group.metrics[i];
            let sample = Sample {
                value: m.metric_value,
                ts: m.metric_creation_timestamp,
            };
            (m.metric_name.as_ref(), sample)
        })
        .collect();
    let previous = state.get_set_group(&prefix, &samples, ttl)?;
    drop(samples);
    // Exactly, and at most once: doubling the list for the gauges left a third of it
    // unused in every group (a plugin that sized its groups for them pays nothing here).
    group.metrics.reserve_exact(inputs.len());
    let given = group.metrics.len();
    for (&(i, has_gauge), previous) in inputs.iter().zip(previous) {
        let metric = &group.metrics[i];
        let Some(Sample {
            value: prev_value,
            ts: prev_ts,
        }) = previous
        else {
            report.skipped_first_sample += 1;
            continue;
        };
        if restarted {
            report.skipped_restart += 1;
            continue;
        }
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
        let Some(diff) = counter_delta(
            prev_value,
            metric.metric_value,
            metric.counter_width,
            report,
        ) else {
            report.skipped_reset += 1;
            continue;
        };
        let per_second = (diff / dt).trunc();
        // One gauge per name: a gauge already there (the group's own, or the rate of an
        // input of the same name and another type) wins.
        if has_gauge
            || group.metrics[given..]
                .iter()
                .any(|g| g.metric_name == metric.metric_name)
        {
            continue;
        }
        let gauge =
            metric.with_value(MetricValue::Int(per_second as i128), MetricType::Gauge, now)?;
        // No name check again: none of this type was there a moment ago.
        group.metrics.push(gauge);
        report.rates += 1;
    }
    Ok((group, prefix))
}

/// The increase since the previous sample. A decrease of a Counter32 whose previous value
/// was in its upper half is a wrap (a deliberate improvement on the original, which drops
/// every decrease); any other decrease, of a Counter64 or of a value of unknown origin
/// above all, is a reset: no rate.
fn counter_delta(
    prev: MetricValue,
    cur: MetricValue,
    width: CounterWidth,
    report: &mut TransformReport,
) -> Option<f64> {
    match (prev, cur) {
        (MetricValue::Int(p), MetricValue::Int(c)) => {
            if c >= p {
                return Some((c - p) as f64);
            }
            if width == CounterWidth::Bits32
                && (0..TWO_POW_32).contains(&p)
                && (0..TWO_POW_32).contains(&c)
                && p >= TWO_POW_32 / 2
            {
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
    use crate::model::{CreationTimestamp, Dimension, Metric, Resource};
    use crate::transform::RateStore;

    fn spec(kind: &str) -> Vec<TransformSpec> {
        vec![TransformSpec {
            name: "t".into(),
            kind: kind.into(),
            group_type: "g".into(),
            inputs: vec!["c".into()],
        }]
    }

    fn group_of(value: i128, ts: f64, width: CounterWidth) -> MetricsGroup {
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
        g.add_metric(
            Metric::new("c", MetricValue::Int(value), MetricType::Counter, ts)
                .unwrap()
                .with_counter_width(width),
        )
        .unwrap();
        g
    }

    fn group(value: i128, ts: f64) -> MetricsGroup {
        group_of(value, ts, CounterWidth::Unknown)
    }

    fn gauge(g: &MetricsGroup) -> Option<MetricValue> {
        g.metric("c", MetricType::Gauge).map(|m| m.metric_value)
    }

    /// One poll of one group through the transform, without sysUpTime.
    fn step(st: &dyn RateState, r: &mut TransformReport, g: MetricsGroup) -> Option<MetricValue> {
        let out = apply_transforms(&spec("rate"), vec![g], st, 0.0, None, r);
        gauge(&out[0].0)
    }

    /// Both rate states: the one-key-per-sample layout of the spec, and the node's store.
    fn states() -> [(&'static str, Box<dyn RateState>); 2] {
        [
            ("memory", Box::new(MemoryRateState::default())),
            ("RateStore", Box::new(RateStore::new())),
        ]
    }

    #[test]
    fn first_sample_then_rate_then_reset() {
        for (name, st) in states() {
            let mut r = TransformReport::default();
            assert_eq!(step(&*st, &mut r, group(100, 1000.0)), None, "{name}");
            let out = apply_transforms(
                &spec("rate"),
                vec![group(700, 1060.0)],
                &*st,
                0.0,
                None,
                &mut r,
            );
            assert_eq!(gauge(&out[0].0), Some(MetricValue::Int(10)), "{name}");
            assert!(
                out[0].0.metric("c", MetricType::Counter).is_some(),
                "counter stays beside the gauge"
            );
            assert_eq!(
                step(&*st, &mut r, group(50, 1120.0)),
                None,
                "{name}: a reset gives no spike"
            );
            assert_eq!(r.skipped_reset, 1, "{name}");
            // The stored sample key follows the spec.
            let prev = st
                .get_set("id|g|d|v|c", "1|1", Duration::from_secs(60))
                .unwrap();
            assert_eq!(prev.as_deref(), Some("50|1120"), "{name}");
        }
    }

    #[test]
    fn only_a_counter32_wraps() {
        for (name, st) in states() {
            let mut r = TransformReport::default();
            let w32 = CounterWidth::Bits32;
            step(&*st, &mut r, group_of(4_294_967_000, 0.5, w32));
            let got = step(&*st, &mut r, group_of(304, 10.5, w32));
            assert_eq!(
                got,
                Some(MetricValue::Int(60)),
                "{name}: (2^32 - 4294967000 + 304) / 10"
            );
            assert_eq!(r.wraps, 1, "{name}");
        }
        // The same values from a Counter64 (ifHCInOctets reset from 3 GB) or from a value of
        // unknown origin: a reset, not a 4 GB spike.
        for width in [CounterWidth::Bits64, CounterWidth::Unknown] {
            for (name, st) in states() {
                let mut r = TransformReport::default();
                step(&*st, &mut r, group_of(3_000_000_000, 0.5, width));
                let got = step(&*st, &mut r, group_of(304, 10.5, width));
                assert_eq!(got, None, "{name} {width:?}");
                assert_eq!((r.wraps, r.skipped_reset), (0, 1), "{name} {width:?}");
            }
        }
        // A Counter32 that falls from its lower half was reset, not wrapped.
        let st = MemoryRateState::default();
        let mut r = TransformReport::default();
        step(&st, &mut r, group_of(1_000_000, 0.5, CounterWidth::Bits32));
        assert_eq!(
            step(&st, &mut r, group_of(5, 10.5, CounterWidth::Bits32)),
            None
        );
        assert_eq!((r.wraps, r.skipped_reset), (0, 1));
    }

    #[test]
    fn values_near_the_top_of_64_bits_give_exact_rates() {
        for (name, st) in states() {
            let mut r = TransformReport::default();
            let top = i128::from(u64::MAX);
            // bits = octets x 8 of a Counter64 near its maximum: past 2^64.
            let start = (top - 10_000) * 8;
            step(&*st, &mut r, group_of(start, 100.0, CounterWidth::Bits64));
            let got = step(
                &*st,
                &mut r,
                group_of(start + 80_000, 110.0, CounterWidth::Bits64),
            );
            assert_eq!(got, Some(MetricValue::Int(8_000)), "{name}");
            let back = step(&*st, &mut r, group_of(1 << 63, 120.0, CounterWidth::Bits64));
            assert_eq!(back, None, "{name}: a 64-bit decrease is a reset");
        }
    }

    #[test]
    fn a_device_restart_gives_no_rates_for_that_poll() {
        for (name, st) in states() {
            let mut r = TransformReport::default();
            let t = spec("rate");
            let poll = |st: &dyn RateState, r: &mut TransformReport, v, ts, up| {
                let out = apply_transforms(
                    &t,
                    vec![group_of(v, ts, CounterWidth::Bits32)],
                    st,
                    ts,
                    Some(up),
                    r,
                );
                gauge(&out[0].0)
            };
            assert_eq!(poll(&*st, &mut r, 1_000, 1000.0, 500_000), None, "{name}");
            assert_eq!(
                poll(&*st, &mut r, 1_600, 1060.0, 506_000),
                Some(MetricValue::Int(10)),
                "{name}"
            );
            // Rebooted 30 s ago: uptime 3,000 ticks. The counter rose past its old value
            // after the reboot; without sysUpTime that would be a plausible rate.
            assert_eq!(poll(&*st, &mut r, 2_000, 1120.0, 3_000), None, "{name}");
            assert_eq!((r.device_restarts, r.skipped_restart), (1, 1), "{name}");
            // The next poll rates from the sample taken after the restart.
            assert_eq!(
                poll(&*st, &mut r, 2_600, 1180.0, 9_000),
                Some(MetricValue::Int(10)),
                "{name}"
            );
            assert_eq!(r.device_restarts, 1, "{name}");
        }
    }

    #[test]
    fn uptime_wraps_are_not_restarts() {
        let top = 1i128 << 32;
        assert!(
            !uptime_shows_restart(top - 3_000, 3_000, 60.0),
            "wrapped after 497 days"
        );
        assert!(
            uptime_shows_restart(top - 3_000, 3_000, 10.0),
            "60 s of ticks in 10 s: no wrap"
        );
        assert!(uptime_shows_restart(900_000, 1_000, 60.0), "went back");
        assert!(
            uptime_shows_restart(1_000, 2_000, 60.0),
            "up for 20 s, last poll 60 s ago"
        );
        assert!(!uptime_shows_restart(1_000, 7_000, 60.0), "up 60 s more");
        assert!(
            !uptime_shows_restart(1_000, 6_900, 60.0),
            "a second of clock difference"
        );
    }

    #[test]
    fn a_rated_group_comes_with_its_partition_key_and_a_passing_one_without() {
        let st = RateStore::new();
        let mut r = TransformReport::default();
        let mut other = group(1, 1.0);
        other.metrics_group_type = "h".into();
        for (poll, ts) in [(0, 1000.0), (1, 1060.0)] {
            let mut rated = group(100 + 60 * poll, ts);
            rated
                .add_dimension(Dimension::new("interface_name", "Gi1/0/1").unwrap())
                .unwrap();
            let groups = vec![rated, other.clone()];
            let out = apply_transforms(&spec("rate"), groups, &st, ts, None, &mut r);
            assert_eq!(out.len(), 2);
            let (rated, key) = &out[0];
            // The key as the group would build it now, gauge and all (a rate adds no
            // dimension, so the key built before the gauges is still the group's).
            assert_eq!(key.as_deref(), Some(rated.partition_key().as_str()));
            assert_eq!(rated.partition_key(), "id|g|d|v|interface_name|Gi1/0/1");
            assert_eq!(gauge(rated), (poll == 1).then_some(MetricValue::Int(1)));
            assert_eq!(
                (out[1].0.metrics_group_type.as_str(), &out[1].1),
                ("h", &None)
            );
        }
    }

    /// Groups of one type but different metrics in one poll (the inputs in other places,
    /// one missing, a gauge of an input's name given) are rated each as it would be alone:
    /// the layout worked out for one group is not used for another.
    #[test]
    fn groups_of_other_layouts_in_one_poll_are_rated_as_alone() {
        /// A group's metrics (name, type, growth a poll) and its dimension's value.
        type Shape = (&'static [(&'static str, MetricType, i128)], &'static str);
        let spec = vec![TransformSpec {
            name: "t".into(),
            kind: "rate".into(),
            group_type: "g".into(),
            inputs: vec!["a".into(), "b".into()],
        }];
        // (metrics in order, dimension value): each metric's value grows by `step` a poll.
        let layouts: [Shape; 4] = [
            (
                &[
                    ("a", MetricType::Counter, 60),
                    ("b", MetricType::Counter, 180),
                ],
                "1",
            ),
            (
                &[
                    ("b", MetricType::Counter, 240),
                    ("x", MetricType::Counter, 6),
                ],
                "2",
            ),
            (
                &[
                    ("a", MetricType::Counter, 300),
                    ("a", MetricType::Gauge, 0),
                    ("b", MetricType::Counter, 360),
                ],
                "3",
            ),
            (
                &[
                    ("a", MetricType::Counter, 420),
                    ("b", MetricType::Counter, 480),
                ],
                "4",
            ),
        ];
        let build = |(metrics, dim): Shape, poll: i128, ts: f64| {
            let mut g = group(0, ts);
            g.metrics.clear();
            g.dimensions[0].dimension_value = dim.to_owned();
            for &(name, kind, step) in metrics {
                g.add_metric(
                    Metric::new(name, MetricValue::Int(100 + step * poll), kind, ts).unwrap(),
                )
                .unwrap();
            }
            g
        };
        let gauges = |g: &MetricsGroup| -> Vec<(String, MetricValue)> {
            g.metrics
                .iter()
                .filter(|m| m.metric_type == MetricType::Gauge)
                .map(|m| (m.metric_name.to_string(), m.metric_value))
                .collect()
        };
        let together = RateStore::new();
        let alone: Vec<RateStore> = layouts.iter().map(|_| RateStore::new()).collect();
        let mut r = TransformReport::default();
        for (poll, ts) in [(0, 1000.0), (1, 1060.0)] {
            let groups = layouts.iter().map(|&l| build(l, poll, ts)).collect();
            let out = apply_transforms(&spec, groups, &together, ts, None, &mut r);
            let got: Vec<_> = out.iter().map(|(g, _)| gauges(g)).collect();
            let expected: Vec<_> = layouts
                .iter()
                .zip(&alone)
                .map(|(&l, st)| {
                    let out =
                        apply_transforms(&spec, vec![build(l, poll, ts)], st, ts, None, &mut r);
                    gauges(&out[0].0)
                })
                .collect();
            assert_eq!(got, expected, "poll {poll}");
        }
        let int = |v| MetricValue::Int(v);
        let s = |n: &str| n.to_string();
        assert_eq!(
            layouts
                .iter()
                .map(|&l| {
                    let out = apply_transforms(
                        &spec,
                        vec![build(l, 2, 1120.0)],
                        &together,
                        1120.0,
                        None,
                        &mut r,
                    );
                    gauges(&out[0].0)
                })
                .collect::<Vec<_>>(),
            vec![
                vec![(s("a"), int(1)), (s("b"), int(3))],
                vec![(s("b"), int(4))],
                vec![(s("a"), int(100)), (s("b"), int(6))],
                vec![(s("a"), int(7)), (s("b"), int(8))],
            ],
        );
    }

    #[test]
    fn unknown_kinds_drop_and_other_groups_pass() {
        let st = MemoryRateState::default();
        let mut r = TransformReport::default();
        let out = apply_transforms(&spec("foobar"), vec![group(1, 1.0)], &st, 0.0, None, &mut r);
        assert!(out.is_empty());
        let mut other = group(1, 1.0);
        other.metrics_group_type = "h".into();
        let out = apply_transforms(&spec("foobar"), vec![other], &st, 0.0, None, &mut r);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.metrics_group_type, "h");
    }

    fn width_strategy() -> impl proptest::strategy::Strategy<Value = CounterWidth> {
        proptest::prop_oneof![
            proptest::strategy::Just(CounterWidth::Unknown),
            proptest::strategy::Just(CounterWidth::Bits32),
            proptest::strategy::Just(CounterWidth::Bits64),
        ]
    }

    proptest::proptest! {
        /// Any increasing counter sampled within 3 intervals gives trunc(diff / dt), never
        /// negative; a decrease gives a gauge only for a Counter32 falling from its upper
        /// half (the wrap), and then (next + 2^32 - prev) / dt. Values start around 2^31,
        /// 2^32 and 2^63 as well as anywhere, and every case runs against both states.
        #[test]
        fn rates_follow_the_arithmetic(
            base in proptest::prop_oneof![
                0i128..(1i128 << 62),
                ((1i128 << 31) - 1000)..((1i128 << 31) + 1000),
                ((1i128 << 32) - 1000)..((1i128 << 32) + 1000),
                ((1i128 << 63) - 1000)..((1i128 << 63) + 1000),
            ],
            width in width_strategy(),
            steps in proptest::collection::vec((-(1i128 << 33)..(1i128 << 33), 1u32..17_900u32), 1..20),
        ) {
            for (name, st) in states() {
                let mut r = TransformReport::default();
                let clamp = |v: i128| if width == CounterWidth::Bits32 { v.rem_euclid(TWO_POW_32) } else { v.max(0) };
                let (mut value, mut ts) = (clamp(base), 1_000_000.0f64);
                step(&*st, &mut r, group_of(value, ts, width));
                for &(delta, dt_centis) in &steps {
                    let next = clamp(value + delta);
                    let dt = f64::from(dt_centis) / 100.0;
                    let prev_ts = ts;
                    ts = crate::model::round3(ts + dt);
                    let g = step(&*st, &mut r, group_of(next, ts, width));
                    let real_dt = ts - prev_ts;
                    let want = if next >= value {
                        Some(((next - value) as f64 / real_dt).trunc() as i128)
                    } else if width == CounterWidth::Bits32 && value >= TWO_POW_32 / 2 {
                        Some(((next + TWO_POW_32 - value) as f64 / real_dt).trunc() as i128)
                    } else {
                        None
                    };
                    proptest::prop_assert_eq!(g, want.map(MetricValue::Int), "{}", name);
                    value = next;
                }
            }
        }
    }
}
