//! Metrics groups as Prometheus text exposition (format 0.0.4), named and labelled by the
//! InfluxDB mapping ([`Encoder::map`](crate::sink::Encoder::map)) so a Prometheus series
//! and an InfluxDB field of one group correspond one to one:
//!
//! - metric name: `<measurement>_<metric>`, `_total` appended for a counter (a field
//!   `bits_in__counter` of measurement `interface` is `interface_bits_in_total`, the gauge
//!   `bits_in__gauge` is `interface_bits_in`), made a valid name
//!   (`[a-zA-Z_:][a-zA-Z0-9_:]*`): runs of other characters become one `_` (as the
//!   measurement's do), a leading digit gets a `_` before it;
//! - labels: the tags (dimensions and resource fields, sorted, each once), names made valid
//!   label names the same way (`[a-zA-Z_][a-zA-Z0-9_]*`, and no leading `__`, which
//!   Prometheus keeps for itself), values escaped (`\`, `"`, newline);
//! - value: as the InfluxDB point writes it (Python's `repr`); no timestamp, as
//!   `snmp_exporter` (Prometheus stamps the scrape).

use crate::model::{MetricType, MetricValue};
use crate::sink::line_protocol::write_measurement;
use crate::sink::{py_repr, Mapped};

/// Appends the metric name of `metric` of a group of type `group_type`.
pub fn write_metric_name(group_type: &str, metric: &str, kind: MetricType, out: &mut Vec<u8>) {
    let start = out.len();
    write_measurement(group_type, out);
    out.push(b'_');
    write_measurement(metric, out);
    if kind == MetricType::Counter {
        out.extend_from_slice(b"_total");
    }
    if out[start].is_ascii_digit() {
        out.insert(start, b'_');
    }
}

/// Appends a tag key as a label name.
pub fn write_label_name(name: &str, out: &mut Vec<u8>) {
    let start = out.len();
    write_measurement(name, out);
    if out.len() == start {
        out.push(b'_');
    }
    if out[start].is_ascii_digit() {
        out.insert(start, b'_');
    }
    // `__name__` and the like belong to Prometheus: keep one leading underscore.
    let underscores = out[start..].iter().take_while(|&&b| b == b'_').count();
    if underscores > 1 && out.len() - start > underscores {
        out.drain(start..start + underscores - 1);
    } else if underscores > 1 {
        out.truncate(start + 1);
    }
}

/// Appends a label value with `\`, `"` and newline escaped.
pub fn write_label_value(value: &str, out: &mut Vec<u8>) {
    write_escaped(value, true, out);
}

/// Appends HELP text with `\` and newline escaped.
pub fn write_help(text: &str, out: &mut Vec<u8>) {
    write_escaped(text, false, out);
}

/// The exposition format's escapes: `\` and newline always, `"` in label values.
fn write_escaped(text: &str, quotes: bool, out: &mut Vec<u8>) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' if quotes => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Appends a sample value: as the InfluxDB point writes it, and Prometheus' spelling of
/// the values JSON cannot carry anyway.
pub fn write_value(value: MetricValue, out: &mut Vec<u8>) {
    match value {
        MetricValue::Int(v) => py_repr::write_int(v, out),
        MetricValue::Float(v) if v.is_nan() => out.extend_from_slice(b"NaN"),
        MetricValue::Float(v) if v.is_infinite() => {
            out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" })
        }
        MetricValue::Float(v) => py_repr::write_float(v, out),
    }
}

/// Appends `{name="value",...}` for a mapped group's tags. A label name that two tag keys
/// sanitize to is written once (the first, in tag order).
pub fn write_labels(mapped: &Mapped<'_, '_, '_>, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut names: Vec<std::ops::Range<usize>> = Vec::new();
    for (key, value) in mapped.tags() {
        let start = out.len();
        if !names.is_empty() {
            out.push(b',');
        }
        let name_start = out.len();
        write_label_name(key, out);
        let name = name_start..out.len();
        if names.iter().any(|n| out[n.clone()] == out[name.clone()]) {
            out.truncate(start);
            continue;
        }
        names.push(name);
        out.extend_from_slice(b"=\"");
        write_label_value(value, out);
        out.push(b'"');
    }
    out.push(b'}');
}

/// Where a group's samples go: each with its family's name and type.
pub trait Samples {
    /// One sample line of family `name` (`line` starts with the name and ends with a
    /// newline); `help` makes the family's HELP text when it is new.
    fn sample(
        &mut self,
        name: &[u8],
        kind: MetricType,
        help: &dyn Fn() -> String,
        line: &[u8],
    ) -> std::io::Result<()>;
}

/// Reused buffers of [`write_group`].
#[derive(Default)]
pub struct Scratch {
    labels: Vec<u8>,
    line: Vec<u8>,
}

/// Writes a mapped group's gauges and counters, one sample each.
pub fn write_group(
    mapped: &Mapped<'_, '_, '_>,
    scratch: &mut Scratch,
    to: &mut dyn Samples,
) -> std::io::Result<()> {
    scratch.labels.clear();
    write_labels(mapped, &mut scratch.labels);
    let group_type = &mapped.group().metrics_group_type;
    for field in mapped.fields() {
        let kind = match field.metric.metric_type.as_ref() {
            "counter" => MetricType::Counter,
            _ => MetricType::Gauge,
        };
        let line = &mut scratch.line;
        line.clear();
        write_metric_name(group_type, &field.metric.metric_name, kind, line);
        let name_len = line.len();
        line.extend_from_slice(&scratch.labels);
        line.push(b' ');
        write_value(field.metric.metric_value, line);
        line.push(b'\n');
        let help = || {
            format!(
                "Panoptes metric {} ({}) of metrics group {} (InfluxDB field {}).",
                field.metric.metric_name,
                kind.as_str(),
                group_type,
                String::from_utf8_lossy(field.key),
            )
        };
        to.sample(&line[..name_len], kind, &help, line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Encoder, GroupRecord};

    fn name(group_type: &str, metric: &str, kind: MetricType) -> String {
        let mut out = Vec::new();
        write_metric_name(group_type, metric, kind, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn metric_names_are_measurement_and_metric_with_total_for_counters() {
        use MetricType::{Counter, Gauge};
        for (group_type, metric, kind, want) in [
            ("interface", "bits_in", Gauge, "interface_bits_in"),
            ("interface", "bits_in", Counter, "interface_bits_in_total"),
            ("cpu.load avg", "x", Gauge, "cpu_load_avg_x"),
            ("a..--b", "c", Gauge, "a_b_c"),
            ("5min", "load", Gauge, "_5min_load"),
            ("über", "ünï", Counter, "_ber__n__total"),
            ("-x-", "é_b", Gauge, "_x____b"),
        ] {
            assert_eq!(
                name(group_type, metric, kind),
                want,
                "{group_type} {metric}"
            );
        }
    }

    #[test]
    fn label_names_are_valid_and_never_reserved() {
        for (key, want) in [
            ("interface_name", "interface_name"),
            ("resource_site", "resource_site"),
            ("é_b", "_b"),
            ("__name__", "_name__"),
            ("___", "_"),
            ("9lives", "_9lives"),
            ("a-b.c", "a_b_c"),
        ] {
            let mut out = Vec::new();
            write_label_name(key, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{key}");
        }
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        for (value, want) in [
            ("Gi0/1", "Gi0/1"),
            (r#"say "hi""#, r#"say \"hi\""#),
            (r"C:\temp", r"C:\\temp"),
            ("two\nlines", r"two\nlines"),
            ("tab\tstays, = too", "tab\tstays, = too"),
            ("ünï", "ünï"),
        ] {
            let mut out = Vec::new();
            write_label_value(value, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{value:?}");
        }
        let mut help = Vec::new();
        write_help("a \"b\" \\ c\nd", &mut help);
        assert_eq!(String::from_utf8(help).unwrap(), "a \"b\" \\\\ c\\nd");
    }

    #[test]
    fn values_are_written_as_the_influxdb_point_writes_them() {
        for (value, want) in [
            (
                MetricValue::Int(147573952589676412928),
                "147573952589676412928",
            ),
            (MetricValue::Int(-3), "-3"),
            (MetricValue::Float(2.0), "2.0"),
            (MetricValue::Float(164.5), "164.5"),
            (MetricValue::Float(1e16), "1e+16"),
            (MetricValue::Float(f64::INFINITY), "+Inf"),
            (MetricValue::Float(f64::NEG_INFINITY), "-Inf"),
            (MetricValue::Float(f64::NAN), "NaN"),
        ] {
            let mut out = Vec::new();
            write_value(value, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    /// Collects what [`write_group`] writes.
    #[derive(Default)]
    struct Lines(Vec<(String, MetricType, String, String)>);

    impl Samples for Lines {
        fn sample(
            &mut self,
            name: &[u8],
            kind: MetricType,
            help: &dyn Fn() -> String,
            line: &[u8],
        ) -> std::io::Result<()> {
            self.0.push((
                String::from_utf8(name.to_vec()).unwrap(),
                kind,
                help(),
                String::from_utf8(line.to_vec()).unwrap(),
            ));
            Ok(())
        }
    }

    #[test]
    fn a_group_gives_one_sample_per_influxdb_field_with_its_tags_as_labels() {
        let json = r#"{"metrics_group_type": "interface", "metrics_group_creation_timestamp": 1,
            "resource": {"resource_site": "s1", "resource_class": "network",
              "resource_subclass": "switch", "resource_type": "cisco", "resource_id": "id1",
              "resource_endpoint": "sw1"},
            "dimensions": [{"dimension_name": "interface_name", "dimension_value": "Gi0/1"},
                           {"dimension_name": "description", "dimension_value": "to \"core\"\n"},
                           {"dimension_name": "resource_site", "dimension_value": "ignored"}],
            "metrics": [
              {"metric_name": "bits_in", "metric_type": "counter", "metric_value": 800},
              {"metric_name": "bits_in", "metric_type": "gauge", "metric_value": 12.5},
              {"metric_name": "x", "metric_type": "histogram", "metric_value": 1}]}"#;
        let group = GroupRecord::parse(json.as_bytes()).unwrap();
        let mut encoder = Encoder::new();
        let mapped = encoder.map(&group).unwrap();
        let mut lines = Lines::default();
        write_group(&mapped, &mut Scratch::default(), &mut lines).unwrap();
        let labels = r#"{description="to \"core\"\n",interface_name="Gi0/1",resource_class="network",resource_endpoint="sw1",resource_site="s1",resource_subclass="switch",resource_type="cisco"}"#;
        assert_eq!(
            lines.0,
            [
                (
                    "interface_bits_in_total".to_string(),
                    MetricType::Counter,
                    "Panoptes metric bits_in (counter) of metrics group interface (InfluxDB field bits_in__counter).".to_string(),
                    format!("interface_bits_in_total{labels} 800\n"),
                ),
                (
                    "interface_bits_in".to_string(),
                    MetricType::Gauge,
                    "Panoptes metric bits_in (gauge) of metrics group interface (InfluxDB field bits_in__gauge).".to_string(),
                    format!("interface_bits_in{labels} 12.5\n"),
                ),
            ]
        );
    }
}
