//! The original's `PanoptesMetricsGroupSet`: a Python set of metrics groups, so a group
//! equal to one already present is not added again. Every polling plugin that builds its
//! output with `set.add(group)` in the original collects it here.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::model::{Metric, MetricValue, MetricsGroup};

/// Metrics groups in the order first added, without equal duplicates.
///
/// Equality is the original's: same resource, same metrics (name, value, type) and same
/// dimensions, in any order; the group type and the timestamps do not count, and `32`
/// equals `32.0` as in Python. Groups are bucketed by a hash of what equality looks at, so
/// adding stays linear in the number of groups (a device can have hundreds of sensors).
#[derive(Debug, Default)]
pub struct GroupSet {
    groups: Vec<MetricsGroup>,
    buckets: HashMap<u64, Vec<usize>>,
}

impl GroupSet {
    /// Adds `g` unless an equal group is already in; says whether it was added.
    pub fn add(&mut self, g: MetricsGroup) -> bool {
        let key = fingerprint(&g);
        let bucket = self.buckets.entry(key).or_default();
        if bucket.iter().any(|&i| same_group(&self.groups[i], &g)) {
            return false;
        }
        bucket.push(self.groups.len());
        self.groups.push(g);
        true
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn into_vec(self) -> Vec<MetricsGroup> {
        self.groups
    }
}

/// A hash that equal groups share: order-independent over metrics and dimensions (a
/// wrapping sum of each one's hash), numbers hashed by their float value so `32` and
/// `32.0` land together.
fn fingerprint(g: &MetricsGroup) -> u64 {
    let one = |f: &dyn Fn(&mut DefaultHasher)| {
        let mut h = DefaultHasher::new();
        f(&mut h);
        h.finish()
    };
    let metrics = g.metrics.iter().fold(0u64, |acc, m| {
        acc.wrapping_add(one(&|h| {
            m.metric_name.hash(h);
            m.metric_type.hash(h);
            // 0.0 and -0.0 are equal: hash them alike.
            let v = m.metric_value.as_f64();
            (if v == 0.0 { 0.0f64 } else { v }).to_bits().hash(h);
        }))
    });
    let dimensions = g.dimensions.iter().fold(0u64, |acc, d| {
        acc.wrapping_add(one(&|h| {
            d.dimension_name.hash(h);
            d.dimension_value.hash(h);
        }))
    });
    one(&|h| {
        g.metrics.len().hash(h);
        g.dimensions.len().hash(h);
        metrics.hash(h);
        dimensions.hash(h);
    })
}

fn same_group(a: &MetricsGroup, b: &MetricsGroup) -> bool {
    let same_metric = |x: &Metric, y: &Metric| {
        x.metric_name == y.metric_name
            && x.metric_type == y.metric_type
            && match (x.metric_value, y.metric_value) {
                (MetricValue::Int(i), MetricValue::Int(j)) => i == j,
                (p, q) => p.as_f64() == q.as_f64(),
            }
    };
    a.resource == b.resource
        && a.metrics.len() == b.metrics.len()
        && a.dimensions.len() == b.dimensions.len()
        && a.metrics
            .iter()
            .all(|m| b.metrics.iter().any(|n| same_metric(m, n)))
        && a.dimensions.iter().all(|d| b.dimensions.contains(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dimension, MetricType, Resource};

    fn resource() -> Resource {
        crate::model::test_switch()
    }

    fn group(kind: &str, value: MetricValue, dims: &[(&str, &str)], now: f64) -> MetricsGroup {
        let mut g = MetricsGroup::new(resource(), kind, 60, now).unwrap();
        g.add_metric(Metric::new("t", value, MetricType::Gauge, now).unwrap())
            .unwrap();
        for (n, v) in dims {
            g.add_dimension(Dimension::new(n, v).unwrap()).unwrap();
        }
        g
    }

    #[test]
    fn equal_groups_collapse_whatever_their_type_and_time() {
        let mut set = GroupSet::default();
        let dims = [("a", "1"), ("b", "2")];
        let swapped = [("b", "2"), ("a", "1")];
        assert!(set.add(group("environment", MetricValue::Int(32), &dims, 1.0)));
        assert!(!set.add(group("other", MetricValue::Float(32.0), &swapped, 2.0)));
        assert!(set.add(group("environment", MetricValue::Int(33), &dims, 1.0)));
        assert!(set.add(group("environment", MetricValue::Int(32), &dims[..1], 1.0)));
        assert_eq!(set.len(), 3);
        let kinds: Vec<String> = set
            .into_vec()
            .into_iter()
            .map(|g| g.metrics_group_type)
            .collect();
        assert_eq!(kinds, ["environment", "environment", "environment"]);
    }

    #[test]
    fn zero_and_negative_zero_are_one_value() {
        let mut set = GroupSet::default();
        assert!(set.add(group("e", MetricValue::Float(0.0), &[], 1.0)));
        assert!(!set.add(group("e", MetricValue::Float(-0.0), &[], 1.0)));
        assert!(!set.add(group("e", MetricValue::Int(0), &[], 1.0)));
    }
}
