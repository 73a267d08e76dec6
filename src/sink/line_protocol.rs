//! The original consumer's mapping of one metrics group to one InfluxDB line-protocol
//! point (spec §6), byte for byte:
//!
//! ```text
//! <measurement>,<tag>=<value>,... <metric>__<type>=<value>,... <seconds>
//! ```
//!
//! - measurement: `metrics_group_type`, each run of characters outside `[0-9a-zA-Z_]`
//!   replaced by one `_`;
//! - tags: the dimensions plus `resource_class`, `resource_subclass`, `resource_type`,
//!   `resource_endpoint` and `resource_site` (which win over same-named dimensions),
//!   sorted by key; values escape `,`, `=` and whitespace (Python's `\s`) with `\`, keys
//!   are written as they are;
//! - fields: `<metric_name>__<metric_type>` for gauges and counters, sorted by key, later
//!   duplicates winning; values as Python's `repr` (no `i` suffix, so InfluxDB stores
//!   floats);
//! - timestamp: whole seconds, truncated (written with precision `s`).
//!
//! The encoder keeps its scratch space between points, so encoding allocates nothing once
//! warm: it is the sink's hot path.

use super::py_repr;
use super::record::{GroupRecord, MetricRecord};
use crate::model::MetricValue;

/// Why a metrics group gives no point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("metrics group has an empty metrics_group_type: no measurement name")]
    NoMeasurement,
    #[error("metrics group `{group_type}` has no gauge or counter metric: no field to write")]
    NoFields { group_type: String },
}

/// Resource fields that become tags, in the order the original adds them (after the
/// dimensions, so they win).
const RESOURCE_TAGS: [&str; 5] = [
    "resource_class",
    "resource_subclass",
    "resource_type",
    "resource_endpoint",
    "resource_site",
];

/// Encodes points, reusing its scratch buffers.
#[derive(Default)]
pub struct Encoder {
    /// Tags as (key prefix, reference): the reference indexes the dimensions, or past them
    /// `RESOURCE_TAGS`.
    tags: Vec<(u64, u32)>,
    /// Field keys (`name__type`) laid end to end.
    keys: Vec<u8>,
    /// One per kept metric.
    fields: Vec<FieldRef>,
    /// What the sorted `tags` and `fields` were computed for: the dimension names, and the
    /// metric names and types, in input order. Groups from one plugin share them, so the
    /// sorting is done once per shape rather than once per point.
    tag_shape: Vec<u8>,
    field_shape: Vec<u8>,
    scratch: Vec<u8>,
}

/// A field key in `Encoder::keys` and the metric it comes from.
#[derive(Clone, Copy)]
struct FieldRef {
    prefix: u64,
    start: u32,
    end: u32,
    metric: u32,
}

/// A metrics group as the mapping sees it: what [`Encoder::map`] returns.
pub struct Mapped<'e, 'g, 'a> {
    encoder: &'e Encoder,
    group: &'g GroupRecord<'a>,
}

/// One field of a mapped group: its key (`<metric>__<gauge|counter>`) and the metric.
pub struct Field<'m> {
    pub key: &'m [u8],
    pub metric: &'m MetricRecord<'m>,
}

impl<'g, 'a> Mapped<'_, 'g, 'a> {
    pub fn group(&self) -> &'g GroupRecord<'a> {
        self.group
    }

    /// The tags, sorted by key: the dimensions and the resource fields (which win over
    /// same-named dimensions), each key once.
    pub fn tags(&self) -> impl Iterator<Item = (&'g str, &'g str)> + '_ {
        self.encoder
            .tags
            .iter()
            .map(|&(_, tag)| tag_at(self.group, tag))
    }

    /// The gauges and counters, sorted by key, each key once (the last metric of that name
    /// and type wins).
    pub fn fields(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        self.encoder.fields.iter().map(|f| Field {
            key: &self.encoder.keys[f.start as usize..f.end as usize],
            metric: &self.group.metrics[f.metric as usize],
        })
    }
}

/// The first 8 bytes of a key, big-endian, zero-padded: comparing these orders keys as
/// comparing the bytes would, except that equal prefixes need the full comparison. Most
/// sorting comparisons end here.
fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Maps `group` (spec §6): its tags and fields, sorted and de-duplicated as the
    /// original's dicts did. The InfluxDB point and the Prometheus exposition of
    /// `/metrics/devices` are both written from this, so the two never disagree on which
    /// tag or field a group has.
    pub fn map<'e, 'g, 'a>(
        &'e mut self,
        group: &'g GroupRecord<'a>,
    ) -> Result<Mapped<'e, 'g, 'a>, EncodeError> {
        if group.metrics_group_type.is_empty() {
            return Err(EncodeError::NoMeasurement);
        }
        self.collect_fields(group);
        if self.fields.is_empty() {
            return Err(EncodeError::NoFields {
                group_type: group.metrics_group_type.to_string(),
            });
        }
        self.collect_tags(group);
        Ok(Mapped {
            encoder: self,
            group,
        })
    }

    /// Appends the point for `group` to `out` (no trailing newline). On error `out` is left
    /// as it was.
    pub fn encode(
        &mut self,
        group: &GroupRecord<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let mapped = self.map(group)?;
        write_measurement(&group.metrics_group_type, out);
        for (key, value) in mapped.tags() {
            out.push(b',');
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            write_tag_value(value, out);
        }
        out.push(b' ');
        for (i, field) in mapped.fields().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(field.key);
            out.push(b'=');
            match field.metric.metric_value {
                MetricValue::Int(v) => py_repr::write_int(v, out),
                MetricValue::Float(v) => py_repr::write_float(v, out),
            }
        }
        out.push(b' ');
        // Python's int(): truncation toward zero (`as` saturates out-of-range values).
        py_repr::write_int(
            group.metrics_group_creation_timestamp.trunc() as i64 as i128,
            out,
        );
        Ok(())
    }

    /// Sorted, de-duplicated tags: for equal keys the one added last wins, as in the
    /// original's dict.
    fn collect_tags(&mut self, group: &GroupRecord<'_>) {
        self.scratch.clear();
        for d in &group.dimensions {
            // 0xFF never occurs in UTF-8: an unambiguous separator.
            self.scratch.extend_from_slice(d.dimension_name.as_bytes());
            self.scratch.push(0xFF);
        }
        if !self.tags.is_empty() && self.scratch == self.tag_shape {
            return;
        }
        std::mem::swap(&mut self.scratch, &mut self.tag_shape);
        let total = group.dimensions.len() + RESOURCE_TAGS.len();
        self.tags.clear();
        self.tags
            .extend((0..total as u32).map(|tag| (prefix(tag_at(group, tag).0.as_bytes()), tag)));
        // Ties (same key) sort by insertion order, so the last of a run is the winner.
        self.tags.sort_unstable_by(|&(pa, a), &(pb, b)| {
            pa.cmp(&pb)
                .then_with(|| tag_at(group, a).0.cmp(tag_at(group, b).0))
                .then(a.cmp(&b))
        });
        keep_last_of_runs(&mut self.tags, |&(pa, a), &(pb, b)| {
            pa == pb && tag_at(group, a).0 == tag_at(group, b).0
        });
    }

    /// Sorted, de-duplicated `name__type` fields of gauges and counters.
    fn collect_fields(&mut self, group: &GroupRecord<'_>) {
        self.scratch.clear();
        for m in &group.metrics {
            self.scratch.extend_from_slice(m.metric_name.as_bytes());
            self.scratch.push(0xFF);
            self.scratch.extend_from_slice(m.metric_type.as_bytes());
            self.scratch.push(0xFF);
        }
        if !self.fields.is_empty() && self.scratch == self.field_shape {
            return;
        }
        std::mem::swap(&mut self.scratch, &mut self.field_shape);
        self.keys.clear();
        self.fields.clear();
        for (i, m) in group.metrics.iter().enumerate() {
            if !matches!(m.metric_type.as_ref(), "gauge" | "counter") {
                continue;
            }
            let start = self.keys.len();
            self.keys.extend_from_slice(m.metric_name.as_bytes());
            self.keys.extend_from_slice(b"__");
            self.keys.extend_from_slice(m.metric_type.as_bytes());
            self.fields.push(FieldRef {
                prefix: prefix(&self.keys[start..]),
                start: start as u32,
                end: self.keys.len() as u32,
                metric: i as u32,
            });
        }
        let keys = &self.keys;
        let key = |f: &FieldRef| &keys[f.start as usize..f.end as usize];
        self.fields.sort_unstable_by(|a, b| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| key(a).cmp(key(b)))
                .then(a.metric.cmp(&b.metric))
        });
        keep_last_of_runs(&mut self.fields, |a, b| {
            a.prefix == b.prefix && key(a) == key(b)
        });
    }
}

/// (key, value) of tag reference `tag`.
fn tag_at<'g>(group: &'g GroupRecord<'_>, tag: u32) -> (&'g str, &'g str) {
    let tag = tag as usize;
    let dims = &group.dimensions;
    if let Some(d) = dims.get(tag) {
        return (&d.dimension_name, &d.dimension_value);
    }
    let r = &group.resource;
    let value: &str = match tag - dims.len() {
        0 => &r.resource_class,
        1 => &r.resource_subclass,
        2 => &r.resource_type,
        3 => &r.resource_endpoint,
        _ => &r.resource_site,
    };
    (RESOURCE_TAGS[(tag - dims.len()).min(4)], value)
}

/// In a sorted vector, keeps only the last element of each run of equal ones.
fn keep_last_of_runs<T>(items: &mut Vec<T>, same: impl Fn(&T, &T) -> bool) {
    if items.len() < 2 {
        return;
    }
    let mut write = 0;
    for read in 0..items.len() {
        let last_of_run = read + 1 == items.len() || !same(&items[read], &items[read + 1]);
        if last_of_run {
            items.swap(write, read);
            write += 1;
        }
    }
    items.truncate(write);
}

/// `metrics_group_type` with each run of characters outside `[0-9a-zA-Z_]` made one `_`.
pub fn write_measurement(group_type: &str, out: &mut Vec<u8>) {
    let mut in_run = false;
    for c in group_type.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c as u8);
            in_run = false;
        } else if !in_run {
            out.push(b'_');
            in_run = true;
        }
    }
}

/// ASCII bytes the original escapes: `,`, `=` and what Python's `\s` matches
/// (space, `\t\n\v\f\r` and the separators `\x1c`..`\x1f`).
const ESCAPE: [bool; 128] = {
    let mut t = [false; 128];
    t[b',' as usize] = true;
    t[b'=' as usize] = true;
    t[b' ' as usize] = true;
    let mut c = 0x09;
    while c <= 0x0d {
        t[c] = true;
        c += 1;
    }
    let mut c = 0x1c;
    while c <= 0x1f {
        t[c] = true;
        c += 1;
    }
    t
};

/// Python 3's `str.isspace()`: Unicode White_Space plus the ASCII separators
/// `\x1c`..`\x1f`, which Python also counts.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// A tag value with `,`, `=` and whitespace escaped by a backslash.
pub fn write_tag_value(value: &str, out: &mut Vec<u8>) {
    let bytes = value.as_bytes();
    let clean = bytes.iter().all(|&b| b < 0x80 && !ESCAPE[b as usize]);
    if clean {
        return out.extend_from_slice(bytes);
    }
    let mut buf = [0u8; 4];
    for c in value.chars() {
        if c == ',' || c == '=' || python_space(c) {
            out.push(b'\\');
        }
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> Result<String, EncodeError> {
        let record = GroupRecord::parse(json.as_bytes()).unwrap();
        let mut out = Vec::new();
        Encoder::new().encode(&record, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn group(group_type: &str, dims: &str, metrics: &str, ts: &str) -> String {
        format!(
            r#"{{"metrics_group_type": {group_type}, "metrics_group_creation_timestamp": {ts},
            "resource": {{"resource_site": "s1", "resource_class": "network",
              "resource_subclass": "switch", "resource_type": "cisco", "resource_id": "id1",
              "resource_endpoint": "sw1"}},
            "dimensions": [{dims}], "metrics": [{metrics}]}}"#
        )
    }

    const GAUGE_1: &str = r#"{"metric_name": "m", "metric_type": "gauge", "metric_value": 1, "metric_creation_timestamp": 1}"#;

    #[test]
    fn measurement_runs_become_one_underscore() {
        for (group_type, measurement) in [
            ("interface", "interface"),
            ("cpu.load avg", "cpu_load_avg"),
            ("a..--b", "a_b"),
            ("-x-", "_x_"),
            ("über", "_ber"),
            ("a_b9", "a_b9"),
        ] {
            let mut out = Vec::new();
            write_measurement(group_type, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), measurement);
        }
    }

    #[test]
    fn tag_values_escape_commas_equals_and_whitespace() {
        for (value, escaped) in [
            ("plain", "plain"),
            ("a b", "a\\ b"),
            ("a,b=c", "a\\,b\\=c"),
            ("tab\there", "tab\\\there"),
            ("nl\nx", "nl\\\nx"),
            ("back\\slash", "back\\slash"),
            ("nbsp\u{a0}x", "nbsp\\\u{a0}x"),
            ("sep\u{1f}x", "sep\\\u{1f}x"),
            ("ünï", "ünï"),
            ("\"quoted\"", "\"quoted\""),
        ] {
            let mut out = Vec::new();
            write_tag_value(value, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), escaped, "{value:?}");
        }
    }

    #[test]
    fn resource_fields_win_over_dimensions_and_tags_sort() {
        let json = group(
            r#""interface""#,
            r#"{"dimension_name": "resource_site", "dimension_value": "dim"},
               {"dimension_name": "zz", "dimension_value": "a=b"},
               {"dimension_name": "aa", "dimension_value": "x y,z"}"#,
            GAUGE_1,
            "1535497112.999",
        );
        assert_eq!(
            line(&json).unwrap(),
            "interface,aa=x\\ y\\,z,resource_class=network,resource_endpoint=sw1,\
             resource_site=s1,resource_subclass=switch,resource_type=cisco,zz=a\\=b m__gauge=1 1535497112"
        );
    }

    #[test]
    fn fields_sort_by_full_key_and_later_duplicates_win() {
        // "a___gauge" < "a__gauge" byte-wise although "a_" > "a": the key is what sorts.
        let metrics = r#"
            {"metric_name": "a", "metric_type": "gauge", "metric_value": 1},
            {"metric_name": "a_", "metric_type": "gauge", "metric_value": 2.5},
            {"metric_name": "a", "metric_type": "counter", "metric_value": 3},
            {"metric_name": "x", "metric_type": "histogram", "metric_value": 4},
            {"metric_name": "a", "metric_type": "gauge", "metric_value": 5.0}"#;
        let json = group(r#""t""#, "", metrics, "10");
        assert_eq!(
            line(&json).unwrap(),
            "t,resource_class=network,resource_endpoint=sw1,resource_site=s1,\
             resource_subclass=switch,resource_type=cisco a___gauge=2.5,a__counter=3,a__gauge=5.0 10"
        );
    }

    #[test]
    fn groups_without_a_point_are_errors() {
        let json = group(r#""""#, "", GAUGE_1, "1");
        assert_eq!(line(&json), Err(EncodeError::NoMeasurement));
        let histogram = r#"{"metric_name": "x", "metric_type": "histogram", "metric_value": 4}"#;
        let json = group(r#""t""#, "", histogram, "1");
        assert!(matches!(line(&json), Err(EncodeError::NoFields { .. })));
        // A dimension value that is not a string fails the transform, as in the original.
        let json = group(
            r#""t""#,
            r#"{"dimension_name": "d", "dimension_value": 5}"#,
            GAUGE_1,
            "1",
        );
        let err = GroupRecord::parse(json.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid type: integer `5`, expected a string at line "),
            "{err}"
        );
    }

    #[test]
    fn shapes_switching_between_points_encode_like_a_fresh_encoder() {
        let a = group(
            r#""interface""#,
            r#"{"dimension_name": "b", "dimension_value": "1"}, {"dimension_name": "a", "dimension_value": "2"}"#,
            r#"{"metric_name": "z", "metric_type": "gauge", "metric_value": 1},
               {"metric_name": "y", "metric_type": "counter", "metric_value": 2}"#,
            "1",
        );
        let b = group(
            r#""interface""#,
            r#"{"dimension_name": "a", "dimension_value": "3"}"#,
            r#"{"metric_name": "y", "metric_type": "counter", "metric_value": 2},
               {"metric_name": "x", "metric_type": "gauge", "metric_value": 5.5}"#,
            "2",
        );
        let mut shared = Encoder::new();
        for json in [&a, &a, &b, &a, &b, &b] {
            let record = GroupRecord::parse(json.as_bytes()).unwrap();
            let mut out = Vec::new();
            shared.encode(&record, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), line(json).unwrap());
        }
    }

    #[test]
    fn timestamps_truncate_to_seconds() {
        for (ts, text) in [("1535497112.999", "1535497112"), ("7", "7"), ("0.5", "0")] {
            let out = line(&group(r#""t""#, "", GAUGE_1, ts)).unwrap();
            assert!(out.ends_with(&format!(" {text}")), "{out}");
        }
    }
}
