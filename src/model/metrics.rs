use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{is_identifier, round3, ModelError, Resource};

pub const METRICS_GROUP_SCHEMA_VERSION: &str = "0.2";

/// `gauge` or `counter`, lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Gauge,
    Counter,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Counter => "counter",
        }
    }
}

/// A metric value keeps the JSON number kind: the fixtures tell `1` from `1.0`. Integers are
/// 128-bit because `bits_in` (octets x 8 of a 64-bit counter) outgrows `u64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Int(i128),
    Float(f64),
}

impl MetricValue {
    pub fn as_f64(self) -> f64 {
        match self {
            MetricValue::Int(i) => i as f64,
            MetricValue::Float(f) => f,
        }
    }
}

impl fmt::Display for MetricValue {
    /// Python's `str()`: `123` for ints, `1.5` / `2.0` for floats.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricValue::Int(i) => write!(f, "{i}"),
            MetricValue::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 => {
                write!(f, "{x:.1}")
            }
            MetricValue::Float(x) => write!(f, "{x}"),
        }
    }
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            MetricValue::Int(i) => match i64::try_from(i) {
                Ok(small) => s.serialize_i64(small),
                Err(_) => s.serialize_i128(i),
            },
            MetricValue::Float(f) => s.serialize_f64(f),
        }
    }
}

impl<'de> Deserialize<'de> for MetricValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MetricValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number (booleans are not metric values)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MetricValue, E> {
                Ok(MetricValue::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MetricValue, E> {
                Ok(MetricValue::Int(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<MetricValue, E> {
                Ok(MetricValue::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<MetricValue, E> {
                i128::try_from(v)
                    .map(MetricValue::Int)
                    .map_err(|_| E::custom("metric value out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MetricValue, E> {
                Ok(MetricValue::Float(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The width of the SNMP counter a metric was read from, which decides what a decrease
/// means to the rate transform: only a Counter32 wraps (at 2^32); a Counter64 or a value of
/// unknown origin that goes down was reset. Not part of the JSON: it travels with the metric
/// from the poll to the transform, in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CounterWidth {
    /// Not read straight from an SNMP counter (computed, or parsed from JSON).
    #[default]
    Unknown,
    Bits32,
    Bits64,
}

/// A metric or dimension name: borrowed when it is one of a plugin's fixed names (an
/// interface group's 22 metrics and 10 dimensions are, in every poll), owned otherwise.
pub type Name = std::borrow::Cow<'static, str>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metric {
    pub metric_name: Name,
    pub metric_value: MetricValue,
    pub metric_type: MetricType,
    pub metric_creation_timestamp: f64,
    #[serde(skip)]
    pub counter_width: CounterWidth,
}

impl Metric {
    pub fn new(
        name: &str,
        value: MetricValue,
        kind: MetricType,
        created: f64,
    ) -> Result<Metric, ModelError> {
        if !is_identifier(name) {
            return Err(ModelError::invalid(
                format!("metric `{name}`"),
                "name must start with a letter or `_` and hold only letters, digits and `_`",
            ));
        }
        Metric::checked_value(name, &value)?;
        Ok(Metric::unchecked(
            Name::Owned(name.to_string()),
            value,
            kind,
            created,
        ))
    }

    /// [`Metric::new`] for a fixed name, which is not copied. The name must be an
    /// identifier: plugins' fixed names are checked by their tests.
    pub fn named(
        name: &'static str,
        value: MetricValue,
        kind: MetricType,
        created: f64,
    ) -> Result<Metric, ModelError> {
        debug_assert!(is_identifier(name), "{name}");
        Metric::checked_value(name, &value)?;
        Ok(Metric::unchecked(
            Name::Borrowed(name),
            value,
            kind,
            created,
        ))
    }

    /// A metric of the same name as `self` (not copied when it is a fixed name).
    pub fn with_value(
        &self,
        value: MetricValue,
        kind: MetricType,
        created: f64,
    ) -> Result<Metric, ModelError> {
        Metric::checked_value(&self.metric_name, &value)?;
        Ok(Metric::unchecked(
            self.metric_name.clone(),
            value,
            kind,
            created,
        ))
    }

    fn checked_value(name: &str, value: &MetricValue) -> Result<(), ModelError> {
        if let MetricValue::Float(f) = value {
            if !f.is_finite() {
                return Err(ModelError::invalid(
                    format!("metric `{name}`"),
                    "value must be finite",
                ));
            }
        }
        Ok(())
    }

    fn unchecked(name: Name, value: MetricValue, kind: MetricType, created: f64) -> Metric {
        Metric {
            metric_name: name,
            metric_value: value,
            metric_type: kind,
            metric_creation_timestamp: round3(created),
            counter_width: CounterWidth::Unknown,
        }
    }

    /// The same metric, marked as read from an SNMP counter of this width.
    pub fn with_counter_width(mut self, width: CounterWidth) -> Metric {
        self.counter_width = width;
        self
    }
}

/// Equality is name + value + type; the timestamp does not count (spec §2.3).
impl PartialEq for Metric {
    fn eq(&self, o: &Self) -> bool {
        self.metric_name == o.metric_name
            && self.metric_value == o.metric_value
            && self.metric_type == o.metric_type
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    pub dimension_name: Name,
    pub dimension_value: String,
}

impl Dimension {
    pub fn new(name: &str, value: &str) -> Result<Dimension, ModelError> {
        if !is_identifier(name) {
            return Err(ModelError::invalid(
                format!("dimension `{name}`"),
                "name must start with a letter or `_` and hold only letters, digits and `_`",
            ));
        }
        if value.is_empty() {
            return Err(ModelError::invalid(
                format!("dimension `{name}`"),
                "value must be non-empty",
            ));
        }
        Ok(Dimension {
            dimension_name: Name::Owned(name.into()),
            dimension_value: value.into(),
        })
    }

    /// [`Dimension::new`] for a fixed name (not copied) and a value it keeps. The name
    /// must be an identifier: plugins' fixed names are checked by their tests.
    pub fn named(name: &'static str, value: String) -> Result<Dimension, ModelError> {
        debug_assert!(is_identifier(name), "{name}");
        if value.is_empty() {
            return Err(ModelError::invalid(
                format!("dimension `{name}`"),
                "value must be non-empty",
            ));
        }
        Ok(Dimension {
            dimension_name: Name::Borrowed(name),
            dimension_value: value,
        })
    }
}

/// One Kafka message body: a set of metrics about one resource, sharing dimensions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsGroup {
    pub metrics_group_type: String,
    pub metrics_group_interval: u64,
    pub metrics_group_creation_timestamp: f64,
    pub metrics_group_schema_version: String,
    /// Shared by every group of a poll (one device's dozens of interface groups).
    pub resource: std::sync::Arc<Resource>,
    pub metrics: Vec<Metric>,
    pub dimensions: Vec<Dimension>,
}

impl PartialEq for MetricsGroup {
    fn eq(&self, o: &Self) -> bool {
        fn same<T: PartialEq>(a: &[T], b: &[T]) -> bool {
            a.len() == b.len() && a.iter().all(|x| b.contains(x))
        }
        self.resource == o.resource
            && same(&self.metrics, &o.metrics)
            && same(&self.dimensions, &o.dimensions)
    }
}

impl MetricsGroup {
    pub fn new(
        resource: impl Into<std::sync::Arc<Resource>>,
        group_type: &str,
        interval: u64,
        created: f64,
    ) -> Result<MetricsGroup, ModelError> {
        if group_type.is_empty() {
            return Err(ModelError::invalid(
                "metrics_group_type",
                "must be non-empty",
            ));
        }
        if interval == 0 {
            return Err(ModelError::invalid(
                "metrics_group_interval",
                "must be a positive integer",
            ));
        }
        Ok(MetricsGroup {
            metrics_group_type: group_type.into(),
            metrics_group_interval: interval,
            metrics_group_creation_timestamp: round3(created),
            metrics_group_schema_version: METRICS_GROUP_SCHEMA_VERSION.into(),
            resource: resource.into(),
            metrics: Vec::new(),
            dimensions: Vec::new(),
        })
    }

    /// Adds a metric; a name may appear once per metric type.
    pub fn add_metric(&mut self, metric: Metric) -> Result<(), ModelError> {
        if self
            .metric(&metric.metric_name, metric.metric_type)
            .is_some()
        {
            return Err(ModelError::Duplicate {
                group: self.metrics_group_type.clone(),
                what: "metric",
                name: format!("{} ({})", metric.metric_name, metric.metric_type.as_str()),
            });
        }
        self.metrics.push(metric);
        Ok(())
    }

    /// Adds a dimension; names are unique within a group.
    pub fn add_dimension(&mut self, dimension: Dimension) -> Result<(), ModelError> {
        if self.dimension(&dimension.dimension_name).is_some() {
            return Err(ModelError::Duplicate {
                group: self.metrics_group_type.clone(),
                what: "dimension",
                name: dimension.dimension_name.into_owned(),
            });
        }
        self.dimensions.push(dimension);
        Ok(())
    }

    pub fn metric(&self, name: &str, kind: MetricType) -> Option<&Metric> {
        self.metrics
            .iter()
            .find(|m| m.metric_type == kind && m.metric_name == name)
    }

    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|d| d.dimension_name == name)
            .map(|d| d.dimension_value.as_str())
    }

    /// `<resource_id>|<group_type>|<dim>|<value>|...`, dimensions sorted by name: the Kafka
    /// partitioning key, and the prefix of rate-state keys (spec §4.6).
    pub fn partition_key(&self) -> String {
        // Built in one buffer: it is computed twice per group and poll (rates, publish).
        // The dimensions' order is sorted on the stack for the usual group (a Vec of them
        // was one more allocation a call).
        let mut stack = [0usize; 16];
        let mut heap = Vec::new();
        let order: &mut [usize] = match stack.get_mut(..self.dimensions.len()) {
            Some(order) => order,
            None => {
                heap.resize(self.dimensions.len(), 0);
                &mut heap
            }
        };
        for (i, slot) in order.iter_mut().enumerate() {
            *slot = i;
        }
        let dim = |i: usize| &self.dimensions[i];
        order.sort_by(|&a, &b| dim(a).dimension_name.cmp(&dim(b).dimension_name));
        let dims = order.iter().map(|&i| dim(i));
        let len = dims
            .clone()
            .map(|d| d.dimension_name.len() + d.dimension_value.len() + 2)
            .sum::<usize>()
            + self.resource.id.len()
            + self.metrics_group_type.len()
            + 2;
        let mut key = String::with_capacity(len);
        key.push_str(&self.resource.id);
        key.push('|');
        key.push_str(&self.metrics_group_type);
        key.push('|');
        for (i, d) in dims.enumerate() {
            if i > 0 {
                key.push('|');
            }
            key.push_str(&d.dimension_name);
            key.push('|');
            key.push_str(&d.dimension_value);
        }
        key
    }

    /// `<class>:<subclass>:<type>`: the Kafka message key.
    pub fn message_key(&self) -> String {
        // Sized up front: `format!` guessed short and grew it (three allocations a group).
        let r = &self.resource;
        let mut key = String::with_capacity(r.class.len() + r.subclass.len() + r.kind.len() + 2);
        for (i, part) in [&r.class, &r.subclass, &r.kind].into_iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(part);
        }
        key
    }

    /// Appends the group's JSON (what `serde_json::to_writer` writes, byte for byte) to
    /// `out`, with its resource already written as `resource`
    /// (`serde_json::value::to_raw_value` of `self.resource`): a poll's groups share one
    /// resource, written once for all of them. Written by hand: an interface group holds
    /// ~40 metrics whose keys need no escaping and whose timestamps are all the same, which
    /// the serializer would escape and format again for each.
    pub fn write_json(
        &self,
        out: &mut Vec<u8>,
        resource: &serde_json::value::RawValue,
    ) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"metrics_group_type\":");
        write_json_str(out, &self.metrics_group_type)?;
        out.extend_from_slice(b",\"metrics_group_interval\":");
        out.extend_from_slice(
            itoa::Buffer::new()
                .format(self.metrics_group_interval)
                .as_bytes(),
        );
        out.extend_from_slice(b",\"metrics_group_creation_timestamp\":");
        serde_json::to_writer(&mut *out, &self.metrics_group_creation_timestamp)?;
        out.extend_from_slice(b",\"metrics_group_schema_version\":");
        write_json_str(out, &self.metrics_group_schema_version)?;
        out.extend_from_slice(b",\"resource\":");
        out.extend_from_slice(resource.get().as_bytes());
        out.extend_from_slice(b",\"metrics\":[");
        // The last timestamp written, and its JSON.
        let mut last_ts: Option<(u64, Vec<u8>)> = None;
        for (i, m) in self.metrics.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"metric_name\":");
            write_json_str(out, &m.metric_name)?;
            out.extend_from_slice(b",\"metric_value\":");
            match m.metric_value {
                MetricValue::Int(v) => match i64::try_from(v) {
                    Ok(small) => {
                        out.extend_from_slice(itoa::Buffer::new().format(small).as_bytes())
                    }
                    Err(_) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
                },
                MetricValue::Float(f) => serde_json::to_writer(&mut *out, &f)?,
            }
            out.extend_from_slice(match m.metric_type {
                MetricType::Gauge => b",\"metric_type\":\"gauge\"",
                MetricType::Counter => b",\"metric_type\":\"counter\"",
            });
            out.extend_from_slice(b",\"metric_creation_timestamp\":");
            let bits = m.metric_creation_timestamp.to_bits();
            match &last_ts {
                Some((b, json)) if *b == bits => out.extend_from_slice(json),
                _ => {
                    let json = serde_json::to_vec(&m.metric_creation_timestamp)?;
                    out.extend_from_slice(&json);
                    last_ts = Some((bits, json));
                }
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"dimensions\":[");
        for (i, d) in self.dimensions.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"dimension_name\":");
            write_json_str(out, &d.dimension_name)?;
            out.extend_from_slice(b",\"dimension_value\":");
            write_json_str(out, &d.dimension_value)?;
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    /// Parses a metrics group, validating names the way the constructors do.
    pub fn from_json(value: &serde_json::Value) -> Result<MetricsGroup, ModelError> {
        let raw: MetricsGroup = serde_json::from_value(value.clone())
            .map_err(|e| ModelError::invalid("metrics group", e.to_string()))?;
        let resource =
            Resource::from_json(value.get("resource").unwrap_or(&serde_json::Value::Null))?;
        let mut group = MetricsGroup::new(
            resource,
            &raw.metrics_group_type,
            raw.metrics_group_interval,
            raw.metrics_group_creation_timestamp,
        )?;
        for m in raw.metrics {
            group.add_metric(Metric::new(
                &m.metric_name,
                m.metric_value,
                m.metric_type,
                m.metric_creation_timestamp,
            )?)?;
        }
        for d in raw.dimensions {
            group.add_dimension(Dimension::new(&d.dimension_name, &d.dimension_value)?)?;
        }
        Ok(group)
    }
}

/// A JSON string as serde_json writes it: as it is when nothing in it needs escaping (a
/// metric name always), escaped by serde_json otherwise.
fn write_json_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if !needs_escape(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// Whether JSON needs any of `bytes` escaped: a control byte, `"` or `\`. Eight bytes
/// at a time (the byte-by-byte test was ≈3% of a poll: every name and value of ≈50 groups
/// goes through it); a word holds such a byte exactly when the test below is not zero.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Some byte of `w` is below `n` (n <= 0x80): its high bit set by the subtraction and
    // not set in the byte itself.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS;
    let has = |w: u64, b: u8| below(w ^ (ONES * u64::from(b)), 1);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let w = u64::from_le_bytes(le);
        if below(w, 0x20) | has(w, b'"') | has(w, b'\\') != 0 {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The word-at-a-time test says what a byte-by-byte one says, for any bytes (the
        /// ones that need escaping made common).
        #[test]
        fn needs_escape_is_the_byte_test(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::sample::select(vec![0x00u8, 0x1f, 0x20, b'"', b'\\', 0x7f, 0x80, 0xff, b'a']),
                ],
                0..40,
            )
        ) {
            let bytewise = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escape(&bytes), bytewise);
        }
    }

    fn resource() -> Resource {
        crate::model::test_switch()
    }

    #[test]
    fn keys_follow_the_spec() {
        let mut g = MetricsGroup::new(resource(), "interface", 60, 1535497112.0754).unwrap();
        assert_eq!(g.partition_key(), "sw1|interface|");
        g.add_dimension(Dimension::new("z", "1").unwrap()).unwrap();
        g.add_dimension(Dimension::new("a", "2").unwrap()).unwrap();
        assert_eq!(g.partition_key(), "sw1|interface|a|2|z|1");
        assert_eq!(g.message_key(), "network:switch:generic");
        assert_eq!(g.metrics_group_creation_timestamp, 1535497112.075);
    }

    /// Sixteen dimensions are sorted on the stack, more in a list: both by name.
    #[test]
    fn partition_keys_sort_any_number_of_dimensions() {
        for n in [15usize, 16, 17, 40] {
            let mut g = MetricsGroup::new(resource(), "t", 60, 0.0).unwrap();
            for i in (0..n).rev() {
                g.add_dimension(Dimension::new(&format!("d{i:02}"), &i.to_string()).unwrap())
                    .unwrap();
            }
            let dims: Vec<String> = (0..n).map(|i| format!("d{i:02}|{i}")).collect();
            assert_eq!(
                g.partition_key(),
                format!("sw1|t|{}", dims.join("|")),
                "{n}"
            );
        }
    }

    /// The JSON written with a pre-written resource is serde's, byte for byte.
    #[test]
    fn write_json_is_the_derived_json() {
        let mut r = resource();
        r.metadata.insert("a \"quoted\" é".into(), "x\ny".into());
        let mut g = MetricsGroup::new(r, "inter\"face", 60, 1535497112.0754).unwrap();
        let metrics = [
            (
                "bits_in",
                MetricValue::Int(1 << 70),
                MetricType::Counter,
                1.5,
            ),
            ("low", MetricValue::Int(i128::MIN), MetricType::Counter, 1.5),
            ("neg", MetricValue::Int(-7), MetricType::Gauge, 1.5),
            ("x", MetricValue::Float(0.1), MetricType::Gauge, 2.0),
            ("y", MetricValue::Float(1e21), MetricType::Gauge, 2.0),
            ("z", MetricValue::Float(-0.0), MetricType::Gauge, 1.5),
        ];
        for (name, value, kind, ts) in metrics {
            g.add_metric(Metric::new(name, value, kind, ts).unwrap())
                .unwrap();
        }
        g.add_dimension(Dimension::named("alias", "to \"core\" \\ \u{1} é".into()).unwrap())
            .unwrap();
        g.add_dimension(Dimension::new("d", "plain").unwrap())
            .unwrap();
        let raw = serde_json::value::to_raw_value(&g.resource).unwrap();
        let mut written = b"[".to_vec();
        g.write_json(&mut written, &raw).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            format!("[{}", serde_json::to_string(&g).unwrap())
        );
        // Without any metric or dimension too.
        let empty = MetricsGroup::new(resource(), "status", 300, 0.0).unwrap();
        let raw = serde_json::value::to_raw_value(&empty.resource).unwrap();
        let mut written = Vec::new();
        empty.write_json(&mut written, &raw).unwrap();
        assert_eq!(written, serde_json::to_vec(&empty).unwrap());
    }

    proptest::proptest! {
        /// Any names (control characters, quotes, backslashes among them), values and
        /// timestamps: the same bytes as serde's.
        #[test]
        fn write_json_matches_serde_for_any_group(
            kind in proptest::prelude::any::<String>(),
            metrics in proptest::collection::vec(
                (proptest::prelude::any::<String>(), proptest::prelude::any::<i128>(), proptest::prelude::any::<f64>(),
                 proptest::prelude::any::<bool>(), proptest::prelude::any::<bool>(), 0u8..3),
                0..8,
            ),
            dimensions in proptest::collection::vec(
                (proptest::prelude::any::<String>(), "[ -~\\x00-\\x1f\\\\\"é]{0,10}"), 0..4),
        ) {
            let mut g = MetricsGroup::new(resource(), "x", 60, 1.0).unwrap();
            g.metrics_group_type = kind;
            let timestamps = [1700000000.123, 1.0e-7, 42.0];
            for (name, int, float, is_int, gauge, ts) in metrics {
                g.metrics.push(Metric {
                    metric_name: name.into(),
                    metric_value: if is_int { MetricValue::Int(int) } else { MetricValue::Float(float) },
                    metric_type: if gauge { MetricType::Gauge } else { MetricType::Counter },
                    metric_creation_timestamp: timestamps[usize::from(ts)],
                    counter_width: CounterWidth::Unknown,
                });
            }
            for (name, value) in dimensions {
                g.dimensions.push(Dimension { dimension_name: name.into(), dimension_value: value });
            }
            let raw = serde_json::value::to_raw_value(&g.resource).unwrap();
            let mut written = Vec::new();
            g.write_json(&mut written, &raw).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&g).unwrap()
            );
        }
    }

    #[test]
    fn duplicates_are_refused_per_type() {
        let mut g = MetricsGroup::new(resource(), "interface", 60, 1.0).unwrap();
        let m = |t| Metric::new("bits_in", MetricValue::Int(1), t, 1.0).unwrap();
        g.add_metric(m(MetricType::Counter)).unwrap();
        g.add_metric(m(MetricType::Gauge)).unwrap();
        assert_eq!(
            g.add_metric(m(MetricType::Gauge)).unwrap_err().to_string(),
            "metrics group `interface`: duplicate metric `bits_in (gauge)`"
        );
        g.add_dimension(Dimension::new("a", "x").unwrap()).unwrap();
        assert_eq!(
            g.add_dimension(Dimension::new("a", "y").unwrap())
                .unwrap_err()
                .to_string(),
            "metrics group `interface`: duplicate dimension `a`"
        );
        assert_eq!(
            Dimension::new("a", "").unwrap_err().to_string(),
            "dimension `a`: value must be non-empty"
        );
        assert_eq!(
            Metric::new("1x", MetricValue::Int(1), MetricType::Gauge, 1.0)
                .unwrap_err()
                .to_string(),
            "metric `1x`: name must start with a letter or `_` and hold only letters, digits and `_`"
        );
    }

    #[test]
    fn values_keep_their_number_kind() {
        let v: Vec<MetricValue> = serde_json::from_str("[1, 1.0, 18446744073709551615]").unwrap();
        assert_eq!(
            v,
            vec![
                MetricValue::Int(1),
                MetricValue::Float(1.0),
                MetricValue::Int(u64::MAX.into())
            ]
        );
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            "[1,1.0,18446744073709551615]"
        );
        // Octets x 8 of a 64-bit counter can pass u64: still written as a JSON integer.
        let big = MetricValue::Int(237_543_529_719_488_000_000);
        assert_eq!(
            serde_json::to_string(&big).unwrap(),
            "237543529719488000000"
        );
        assert_eq!(MetricValue::Float(2.0).to_string(), "2.0");
        assert_eq!(
            serde_json::from_str::<MetricValue>("true")
                .unwrap_err()
                .to_string(),
            "invalid type: boolean `true`, expected a number (booleans are not metric values) \
             at line 1 column 4"
        );
    }
}
