//! Counters behind `/metrics`. Every observable happening goes through a typed event in
//! [`crate::events`], which logs and counts together so logs and metrics never drift apart.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// One series: metric name plus its labels, rendered `name{a="x",b="y"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
}

impl Series {
    pub fn new(name: &'static str, labels: &[(&'static str, &str)]) -> Series {
        Series {
            name,
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    fn render(&self, out: &mut String, value: f64) {
        out.push_str(self.name);
        if !self.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let escaped = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(out, "{k}=\"{escaped}\"");
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
}

/// Counters and last-seen times, shared by every stage of the node.
pub struct Telemetry {
    pub started: Instant,
    counters: Mutex<BTreeMap<Series, f64>>,
    /// (kind, plugin) -> Instant of the last finished run.
    last_run: Mutex<BTreeMap<(String, String), Instant>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            started: Instant::now(),
            counters: Mutex::default(),
            last_run: Mutex::default(),
        }
    }
}

/// HELP and TYPE of every counter we emit; `/metrics` prints them even before the first
/// increment, so dashboards and alerts see a 0, not a missing series.
pub const COUNTERS: &[(&str, &str)] = &[
    (
        "panoptes_metrics_groups_published_total",
        "Metrics groups appended to a topic.",
    ),
    (
        "panoptes_publish_errors_total",
        "Appends to a topic that failed.",
    ),
    (
        "panoptes_resources_changed_total",
        "Resources added, updated or deleted by the resource manager.",
    ),
    (
        "panoptes_resources_rejected_total",
        "Resources or messages refused as invalid.",
    ),
    (
        "panoptes_config_reloads_total",
        "Configuration reloads (SIGHUP, POST /api/reload) by result: ok, or failed (nothing changed).",
    ),
    (
        "panoptes_enrichments_stored_total",
        "Enrichment groups stored.",
    ),
    (
        "panoptes_rate_samples_total",
        "Rate transform samples by result.",
    ),
    ("panoptes_keys_expired_total", "Keys removed by TTL expiry."),
    (
        "panoptes_kafka_client_errors_total",
        "Requests of the client of the external Kafka cluster (kafka.brokers) that failed, by operation.",
    ),
    (
        "panoptes_ping_errors_total",
        "Pings that could not tell whether a host answers, by reason (missing: no ping program).",
    ),
    (
        "panoptes_device_restarts_total",
        "Polls whose sysUpTime showed the device restarted since the previous poll (no rates that poll).",
    ),
    (
        "panoptes_http_requests_rejected_total",
        "HTTP API requests refused as invalid.",
    ),
    (
        "panoptes_influxdb_points_written_total",
        "Points InfluxDB accepted.",
    ),
    (
        "panoptes_influxdb_batches_total",
        "Writes InfluxDB accepted.",
    ),
    (
        "panoptes_influxdb_points_rejected_total",
        "Points InfluxDB refused as invalid (skipped).",
    ),
    (
        "panoptes_influxdb_write_errors_total",
        "Writes to InfluxDB that failed and were retried.",
    ),
    (
        "panoptes_kafka_connections_total",
        "Connections accepted by the Kafka listener.",
    ),
    (
        "panoptes_kafka_requests_total",
        "Kafka requests served, by API.",
    ),
    (
        "panoptes_kafka_bad_frames_total",
        "Kafka frames and requests that could not be read or served (oversized, malformed, unsupported, corrupt batch, timeout).",
    ),
    (
        "panoptes_traps_received_total",
        "SNMP notifications accepted by the trap receiver, by version (v1, v2c, v3) and kind (trap, inform).",
    ),
    (
        "panoptes_traps_rejected_total",
        "Datagrams the trap receiver refused, by reason (malformed, not_a_notification, community, unknown_user, security_level, authentication, decryption, time_window, too_many_varbinds, queue_full).",
    ),
    (
        "panoptes_traps_reports_total",
        "SNMPv3 Reports the trap receiver sent to inform senders, by usmStats reason (unknown_engine_id during discovery, not_in_time_window, ...).",
    ),
    (
        "panoptes_traps_duplicates_total",
        "Copies of informs already received (retransmitted by their sender): answered, not published again.",
    ),
    (
        "panoptes_traps_published_total",
        "Trap events appended to the traps topic.",
    ),
    (
        "panoptes_kafka_refused_total",
        "Kafka connections and requests refused by policy or by a bound (authorization, authentication, connection, memory, data, topic, group and request limits), by reason.",
    ),
    (
        "panoptes_kafka_records_produced_total",
        "Records Kafka producers appended to the topic log.",
    ),
    (
        "panoptes_kafka_produce_refused_total",
        "Kafka Produce requests answered with an error because the topic log could not be written, by reason.",
    ),
    (
        "panoptes_influxdb_batches_rejected_total",
        "Batches InfluxDB refused as invalid (then written point by point to skip the bad ones).",
    ),
    (
        "panoptes_device_scrapes_total",
        "Scrapes of /metrics/devices, by outcome (done, failed part way, refused: too many at once).",
    ),
    (
        "panoptes_device_scrape_bytes_total",
        "Bytes of Prometheus text sent by /metrics/devices.",
    ),
    (
        "panoptes_influxdb_records_skipped_total",
        "Topic records that gave no point (not a metrics group, or no field).",
    ),
];

impl Telemetry {
    pub fn add(&self, series: Series, n: f64) {
        // A counter not in `COUNTERS` would be counted and never shown.
        debug_assert!(
            COUNTERS.iter().any(|(name, _)| *name == series.name),
            "counter {} is not registered in telemetry::COUNTERS",
            series.name
        );
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry(series).or_insert(0.0) += n;
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(Series::new(name, labels), 1.0);
    }

    pub fn get(&self, name: &'static str, labels: &[(&'static str, &str)]) -> f64 {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        c.get(&Series::new(name, labels)).copied().unwrap_or(0.0)
    }

    pub fn mark_run(&self, kind: &str, plugin: &str) {
        let mut m = self.last_run.lock().unwrap_or_else(|p| p.into_inner());
        m.insert((kind.to_string(), plugin.to_string()), Instant::now());
    }

    /// Seconds since the last finished run of each plugin.
    pub fn last_run_ages(&self) -> Vec<(String, String, f64)> {
        let m = self.last_run.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|((k, p), t)| (k.clone(), p.clone(), t.elapsed().as_secs_f64()))
            .collect()
    }

    /// Prometheus text for the counters.
    pub fn render_counters(&self, out: &mut String) {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let mut any = false;
            for (series, value) in c.iter().filter(|(s, _)| s.name == *name) {
                series.render(out, *value);
                any = true;
            }
            if !any {
                let _ = writeln!(out, "{name} 0");
            }
        }
    }
}

/// Appends one gauge with HELP and TYPE lines.
pub fn render_gauge(
    out: &mut String,
    name: &'static str,
    help: &str,
    series: &[(Vec<(&'static str, String)>, f64)],
) {
    render_family(out, name, help, "gauge", series);
}

/// Appends one metric family (`gauge` or `counter`) with HELP and TYPE lines.
pub fn render_family(
    out: &mut String,
    name: &'static str,
    help: &str,
    kind: &str,
    series: &[(Vec<(&'static str, String)>, f64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in series {
        Series {
            name,
            labels: labels.clone(),
        }
        .render(out, *value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let t = Telemetry::default();
        t.inc("panoptes_publish_errors_total", &[("topic", "x")]);
        t.inc("panoptes_publish_errors_total", &[("topic", "x")]);
        t.inc("panoptes_keys_expired_total", &[("plugin", "a\"b")]);
        let mut s = String::new();
        t.render_counters(&mut s);
        assert!(
            s.contains("panoptes_publish_errors_total{topic=\"x\"} 2\n"),
            "{s}"
        );
        assert!(s.contains("plugin=\"a\\\"b\""), "{s}");
        assert!(s.contains("panoptes_resources_rejected_total 0\n"));
        assert_eq!(
            t.get("panoptes_publish_errors_total", &[("topic", "x")]),
            2.0
        );
    }
}
