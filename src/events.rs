//! Typed events: each logs through `tracing` and counts for `/metrics` in one place.

use std::time::Duration;

use crate::resource_manager::ReconcileReport;
use crate::telemetry::Telemetry;
use crate::transform::TransformReport;

/// How a plugin run ended, as the scheduler and pool saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed(String),
    TimedOut,
    Shed,
}

impl RunOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed(_) => "failed",
            RunOutcome::TimedOut => "timed_out",
            RunOutcome::Shed => "shed",
        }
    }
}

pub struct PluginRunFinished<'a> {
    pub kind: &'a str,
    pub plugin: &'a str,
    pub work: &'a str,
    pub outcome: RunOutcome,
    pub duration: Duration,
}

impl PluginRunFinished<'_> {
    pub fn emit(self, t: &Telemetry) {
        // Run outcomes are counted by the scheduler (which also sees deadlines and shed
        // work); the job records when the plugin last ran and logs why a run failed.
        if self.outcome != RunOutcome::Shed {
            t.mark_run(self.kind, self.plugin);
        }
        let ms = self.duration.as_millis() as u64;
        match &self.outcome {
            RunOutcome::Succeeded => {
                tracing::debug!(
                    kind = self.kind,
                    plugin = self.plugin,
                    work = self.work,
                    ms,
                    "plugin run done"
                )
            }
            RunOutcome::Failed(e) => {
                tracing::warn!(kind = self.kind, plugin = self.plugin, work = self.work, ms, error = %e, "plugin run failed")
            }
            RunOutcome::TimedOut => {
                tracing::warn!(
                    kind = self.kind,
                    plugin = self.plugin,
                    work = self.work,
                    ms,
                    "plugin run hit its deadline"
                )
            }
            RunOutcome::Shed => {
                tracing::warn!(
                    kind = self.kind,
                    plugin = self.plugin,
                    work = self.work,
                    "plugin run shed: poller queue full"
                )
            }
        }
    }
}

pub struct MetricsGroupsPublished<'a> {
    pub topic: &'a str,
    pub count: usize,
}

impl MetricsGroupsPublished<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.add(
            crate::telemetry::Series::new(
                "panoptes_metrics_groups_published_total",
                &[("topic", self.topic)],
            ),
            self.count as f64,
        );
        tracing::debug!(
            topic = self.topic,
            count = self.count,
            "metrics groups published"
        );
    }
}

pub struct PublishFailed<'a> {
    pub topic: &'a str,
    pub error: &'a str,
}

impl PublishFailed<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_publish_errors_total", &[("topic", self.topic)]);
        tracing::error!(
            topic = self.topic,
            error = self.error,
            "publishing to the topic log failed"
        );
    }
}

pub struct ResourcesReconciled<'a> {
    pub message_key: &'a str,
    pub report: &'a ReconcileReport,
}

impl ResourcesReconciled<'_> {
    pub fn emit(self, t: &Telemetry) {
        let r = self.report;
        for (change, n) in [
            ("added", r.added),
            ("updated", r.updated),
            ("deleted", r.deleted),
        ] {
            t.add(
                crate::telemetry::Series::new(
                    "panoptes_resources_changed_total",
                    &[("change", change)],
                ),
                n as f64,
            );
        }
        if r.added + r.deleted > 0 {
            tracing::info!(
                from = self.message_key,
                added = r.added,
                updated = r.updated,
                deleted = r.deleted,
                kept_newer = r.kept_newer,
                "resources reconciled"
            );
        } else {
            tracing::debug!(
                from = self.message_key,
                updated = r.updated,
                kept_newer = r.kept_newer,
                "resources reconciled"
            );
        }
    }
}

pub struct InputRejected<'a> {
    pub source: &'a str,
    pub reason: &'a str,
}

impl InputRejected<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc(
            "panoptes_resources_rejected_total",
            &[("source", self.source)],
        );
        tracing::warn!(source = self.source, reason = self.reason, "input rejected");
    }
}

pub struct EnrichmentStored<'a> {
    pub resource: &'a str,
    pub namespace: &'a str,
    pub entries: usize,
}

impl EnrichmentStored<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc(
            "panoptes_enrichments_stored_total",
            &[("namespace", self.namespace)],
        );
        tracing::debug!(
            resource = self.resource,
            namespace = self.namespace,
            entries = self.entries,
            "enrichment stored"
        );
    }
}

/// A ping that could not tell whether the host answers (no `ping` program, a spawn
/// error, ...). A missing program is logged at `warn` once per process.
pub struct PingFailed<'a> {
    pub error: &'a crate::plugins::ping::PingError,
}

impl PingFailed<'_> {
    pub fn emit(self, t: Option<&Telemetry>) {
        use crate::plugins::ping::PingError;
        use std::sync::atomic::{AtomicBool, Ordering};
        static MISSING_LOGGED: AtomicBool = AtomicBool::new(false);
        if let Some(t) = t {
            t.inc(
                "panoptes_ping_errors_total",
                &[("reason", self.error.reason())],
            );
        }
        match self.error {
            PingError::Missing { .. } if !MISSING_LOGGED.swap(true, Ordering::Relaxed) => {
                tracing::warn!(error = %self.error, "install iputils-ping (or put `ping` on the node's PATH): until then devices that time out are reported PING_FAILURE, and the ping plugin reports only ping_status 7");
            }
            _ => tracing::debug!(error = %self.error, "ping did not run"),
        }
    }
}

/// An HTTP request refused before any handler ran (no or a wrong token), or a long poll
/// refused for lack of room. Never logs what the client sent.
pub struct HttpRequestRefused<'a> {
    pub reason: &'static str,
    pub path: &'a str,
    pub peer: Option<std::net::SocketAddr>,
}

impl HttpRequestRefused<'_> {
    pub fn emit(self, t: &Telemetry) {
        static LIMIT: crate::log_limit::LogLimiter = crate::log_limit::LogLimiter::new(10);
        t.inc(
            "panoptes_http_requests_rejected_total",
            &[("reason", self.reason)],
        );
        if let Some(suppressed) = LIMIT.allow(crate::model::now_ms() / 1000) {
            tracing::warn!(reason = self.reason, path = self.path, peer = ?self.peer, suppressed,
                "HTTP request refused (further refusals in the next 10 s are only counted)");
        }
    }
}

pub struct RatesComputed<'a> {
    pub report: &'a TransformReport,
}

impl RatesComputed<'_> {
    pub fn emit(self, t: &Telemetry) {
        let r = self.report;
        for (result, n) in [
            ("rate", r.rates),
            ("first_sample", r.skipped_first_sample),
            ("bad_interval", r.skipped_bad_interval),
            ("reset", r.skipped_reset),
            ("wrap", r.wraps),
            ("state_error", r.state_errors),
            ("device_restart", r.skipped_restart),
        ] {
            if n > 0 {
                t.add(
                    crate::telemetry::Series::new(
                        "panoptes_rate_samples_total",
                        &[("result", result)],
                    ),
                    n as f64,
                );
            }
        }
        if r.device_restarts > 0 {
            t.add(
                crate::telemetry::Series::new("panoptes_device_restarts_total", &[]),
                r.device_restarts as f64,
            );
        }
    }
}

pub struct KeysExpired {
    pub count: usize,
}

impl KeysExpired {
    pub fn emit(self, t: &Telemetry) {
        if self.count > 0 {
            t.add(
                crate::telemetry::Series::new("panoptes_keys_expired_total", &[]),
                self.count as f64,
            );
            tracing::debug!(count = self.count, "expired keys swept");
        }
    }
}

/// A write InfluxDB accepted.
pub struct InfluxPointsWritten<'a> {
    pub target: &'a str,
    pub points: usize,
    pub bytes: usize,
}

impl InfluxPointsWritten<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.add(
            crate::telemetry::Series::new("panoptes_influxdb_points_written_total", &[]),
            self.points as f64,
        );
        t.inc("panoptes_influxdb_batches_total", &[]);
        tracing::debug!(
            target_db = self.target,
            points = self.points,
            gzip_bytes = self.bytes,
            "points written to InfluxDB"
        );
    }
}

/// InfluxDB refused a whole batch as invalid: its points are written one by one next.
pub struct InfluxBatchRejected<'a> {
    pub target: &'a str,
    pub points: usize,
    pub reason: &'a str,
}

impl InfluxBatchRejected<'_> {
    pub fn emit(self, _t: &Telemetry) {
        tracing::warn!(
            target_db = self.target,
            points = self.points,
            reason = self.reason,
            "InfluxDB refused a batch: writing its points one by one to skip the bad ones"
        );
    }
}

/// One point InfluxDB refused as invalid: skipped for good.
pub struct InfluxPointRejected<'a> {
    pub reason: &'a str,
    pub point: &'a str,
}

impl InfluxPointRejected<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_influxdb_points_rejected_total", &[]);
        let point: String = self.point.chars().take(300).collect();
        tracing::warn!(
            reason = self.reason,
            point = %point,
            "InfluxDB refused a point: skipped"
        );
    }
}

/// A write that failed for a reason that may pass (server down, timeout, 5xx): the batch
/// stays uncommitted and is retried.
pub struct InfluxWriteFailed<'a> {
    pub target: &'a str,
    pub points: usize,
    pub error: &'a str,
}

impl InfluxWriteFailed<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_influxdb_write_errors_total", &[]);
        // Debug: the consumer already warns about the failed delivery, with this error
        // and when it retries.
        tracing::debug!(
            target_db = self.target,
            points = self.points,
            error = self.error,
            "writing to InfluxDB failed: the points stay in the topic log and are retried"
        );
    }
}

/// A record that gives no point (not a metrics group, or nothing to write): skipped.
pub struct InfluxRecordSkipped<'a> {
    pub key: &'a str,
    pub reason: &'a str,
}

impl InfluxRecordSkipped<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_influxdb_records_skipped_total", &[]);
        tracing::warn!(
            key = self.key,
            reason = self.reason,
            "record skipped by the InfluxDB sink"
        );
    }
}

/// The store's health changed, as the node's watch saw it (`store_watch`). The store
/// logs the failures themselves; this is what they mean for the node.
pub struct StoreHealthChanged<'a> {
    pub to: &'a panoptes_storage::Health,
}

impl StoreHealthChanged<'_> {
    pub fn emit(self, t: &Telemetry) {
        use panoptes_storage::Health;
        let state = match self.to {
            Health::Ok => "ok",
            Health::WritesFailing { .. } => "writes_failing",
            Health::Failed { .. } => "failed",
        };
        t.inc("panoptes_store_health_changes_total", &[("to", state)]);
        match self.to {
            Health::Ok => {
                tracing::info!("storage writes succeed again: ready as far as storage goes")
            }
            Health::WritesFailing { reason } => tracing::warn!(reason = %reason,
                "storage writes fail: /ready answers 503 until one succeeds (the node keeps running)"),
            Health::Failed { reason } => tracing::error!(reason = %reason,
                exit_status = crate::store_watch::EXIT_STORAGE_FAILED,
                "storage failed: stopping the node for its service manager to restart it"),
        }
    }
}
