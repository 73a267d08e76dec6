//! Typed events: each logs through `tracing` and counts for `/metrics` in one place.

use std::time::Duration;

use crate::resource_manager::ReconcileReport;
use crate::telemetry::Telemetry;
use crate::transform::TransformReport;

/// How a plugin run ended, as the scheduler and pool saw it.
#[derive(Debug, Clone, Copy)]
pub enum RunOutcome<'a> {
    Succeeded,
    Failed(&'a crate::agent::RunError),
    TimedOut,
    Shed,
}

impl RunOutcome<'_> {
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
    pub outcome: RunOutcome<'a>,
    pub duration: Duration,
}

impl PluginRunFinished<'_> {
    pub fn emit(self, t: &Telemetry) {
        // Run outcomes are counted by the scheduler (which also sees deadlines and shed
        // work); the job records when the plugin last ran and logs why a run failed.
        if !matches!(self.outcome, RunOutcome::Shed) {
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
    pub error: &'a crate::agent::publisher::PublishError,
}

impl PublishFailed<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_publish_errors_total", &[("topic", self.topic)]);
        tracing::error!(
            topic = self.topic,
            error = %self.error,
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
        static LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
        t.inc(
            "panoptes_http_requests_rejected_total",
            &[("reason", self.reason)],
        );
        if let Some(suppressed) = LOG.admit(self.reason, std::time::Instant::now()) {
            tracing::warn!(reason = self.reason, path = self.path, peer = ?self.peer, suppressed,
                "HTTP request refused (further refusals in the next 10 s are only counted)");
        }
    }
}

/// A scrape of `/metrics/devices` ended: sent whole (or until the client left), failed
/// part way (the client sees the connection cut), or refused for lack of room.
pub enum DeviceScrapeFinished<'a> {
    Done {
        stats: &'a crate::http::devices::ScrapeStats,
        duration: Duration,
    },
    Failed {
        error: &'a crate::http::devices::ScrapeError,
    },
    Refused,
}

impl DeviceScrapeFinished<'_> {
    pub fn emit(self, t: &Telemetry) {
        static LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
        match self {
            DeviceScrapeFinished::Done { stats, duration } => {
                t.inc("panoptes_device_scrapes_total", &[("outcome", "done")]);
                t.add(
                    crate::telemetry::Series::new("panoptes_device_scrape_bytes_total", &[]),
                    stats.bytes as f64,
                );
                tracing::debug!(
                    devices = stats.devices,
                    groups = stats.groups,
                    skipped = stats.skipped,
                    gone = stats.gone,
                    conflicting = stats.conflicting,
                    bytes = stats.bytes,
                    ms = duration.as_millis() as u64,
                    "/metrics/devices scraped"
                );
            }
            DeviceScrapeFinished::Failed { error } => {
                t.inc("panoptes_device_scrapes_total", &[("outcome", "failed")]);
                tracing::warn!(%error, "/metrics/devices scrape failed part way: connection cut");
            }
            DeviceScrapeFinished::Refused => {
                t.inc("panoptes_device_scrapes_total", &[("outcome", "refused")]);
                if let Some(suppressed) = LOG.admit("refused", std::time::Instant::now()) {
                    tracing::warn!(suppressed, max = crate::http::devices::MAX_SCRAPES,
                        "/metrics/devices scrape refused: others are running (further refusals in the next 10 s are only counted)");
                }
            }
        }
    }
}

/// A request of our client of the external Kafka cluster failed (the broker's error
/// included). Counted always, logged at most once per operation per 10 s.
pub struct KafkaClientFailed<'a> {
    pub op: &'static str,
    pub error: &'a crate::kafka::ExternalError,
}

impl KafkaClientFailed<'_> {
    pub fn emit(self, t: Option<&Telemetry>) {
        static LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
        if let Some(t) = t {
            t.inc("panoptes_kafka_client_errors_total", &[("op", self.op)]);
        }
        if let Some(left_out) = LOG.admit(self.op, std::time::Instant::now()) {
            tracing::warn!(op = self.op, error = %self.error, left_out,
                "external Kafka cluster (kafka.brokers): request failed; retrying (more failures of this kind in the next 10 s are only counted)");
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
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_influxdb_batches_rejected_total", &[]);
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
    pub error: &'a crate::sink::writer::WriteFailure,
}

impl InfluxWriteFailed<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_influxdb_write_errors_total", &[]);
        // Debug: the consumer already warns about the failed delivery, with this error
        // and when it retries.
        tracing::debug!(
            target_db = self.target,
            points = self.points,
            error = %self.error,
            "writing to InfluxDB failed: the points stay in the topic log and are retried"
        );
    }
}

/// A record that gives no point (not a metrics group, or nothing to write): skipped.
pub struct InfluxRecordSkipped<'a> {
    pub key: &'a str,
    pub reason: &'a crate::sink::points_sink::Skipped,
}

impl InfluxRecordSkipped<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_influxdb_records_skipped_total", &[]);
        tracing::warn!(
            key = self.key,
            reason = %self.reason,
            "record skipped by the InfluxDB sink"
        );
    }
}

/// The store's health changed, as the node's watch saw it (`store_watch`). The store
/// logs the failures themselves and counts every change (`StoreStats::health_changes`,
/// on `/metrics`); this is what they mean for the node.
pub struct StoreHealthChanged<'a> {
    pub to: &'a panoptes_storage::Health,
}

impl StoreHealthChanged<'_> {
    pub fn emit(self) {
        use panoptes_storage::Health;
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

/// At most one log line per key per window, so a client that repeats a refused request
/// thousands of times a second costs a counter, not the disk the logs are on. The line
/// that opens a new window says how many lines the last one left out. Counters are never
/// throttled: `/metrics` always has the whole count.
pub struct LogThrottle {
    window: Duration,
    keys: std::sync::Mutex<std::collections::BTreeMap<&'static str, LogWindow>>,
}

struct LogWindow {
    opened: std::time::Instant,
    suppressed: u64,
}

impl LogThrottle {
    pub const fn new(window: Duration) -> LogThrottle {
        LogThrottle {
            window,
            keys: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// `Some(lines left out since the last one)` when a line for `key` may be written at
    /// `now`, `None` when it is to be left out.
    pub fn admit(&self, key: &'static str, now: std::time::Instant) -> Option<u64> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.get_mut(key) {
            Some(w) if now.saturating_duration_since(w.opened) < self.window => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                let left_out = w.suppressed;
                *w = LogWindow {
                    opened: now,
                    suppressed: 0,
                };
                Some(left_out)
            }
            None => {
                keys.insert(
                    key,
                    LogWindow {
                        opened: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

/// One line per reason per 10 s for the Kafka listener's refusals and bad frames.
static KAFKA_REFUSALS_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));
static KAFKA_BAD_FRAMES_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// Why the Kafka listener refused a connection or a request: the `reason` label of
/// `panoptes_kafka_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaRefusal {
    /// Produce, CreateTopics or DeleteTopics on a topic the principal may not write
    /// (TOPIC_AUTHORIZATION_FAILED).
    TopicAuthorization,
    /// A group API or offset commit on a group the principal may not use
    /// (GROUP_AUTHORIZATION_FAILED).
    GroupAuthorization,
    /// A cluster-wide write (InitProducerId) by a principal that may produce nowhere
    /// (CLUSTER_AUTHORIZATION_FAILED).
    ClusterAuthorization,
    /// Wrong user name or password, or a malformed SASL exchange
    /// (SASL_AUTHENTICATION_FAILED).
    SaslAuthentication,
    /// A SASL mechanism the listener does not offer (UNSUPPORTED_SASL_MECHANISM).
    SaslMechanism,
    /// A request other than ApiVersions or SASL before authentication: the connection
    /// is closed, as Kafka does.
    SaslRequired,
    /// A TLS handshake that failed or did not finish in time.
    TlsHandshake,
    /// `kafka.max_connections` reached and no connection still on probation to evict.
    TooManyConnections,
    /// `kafka.max_connections_per_ip` reached for the client's address.
    TooManyConnectionsFromAddress,
    /// A connection that had not yet completed a request (or authenticated) was closed
    /// to make room for a new one at `kafka.max_connections`.
    Evicted,
    /// No complete first request (and authentication) within
    /// `kafka.first_request_timeout`.
    FirstRequestTimeout,
    /// `kafka.max_bytes_in_flight` stayed exhausted for longer than a request may wait.
    MemoryBudget,
    /// A Produce request's batches inflate to more than `kafka.max_inflated_bytes`.
    InflateBudget,
    /// The data directory is over `kafka.max_data_bytes` (POLICY_VIOLATION).
    DataBudget,
    /// `kafka.max_topics` reached.
    TooManyTopics,
    /// `kafka.max_partitions` (all topics together) reached.
    TooManyPartitions,
    /// More partitions than `kafka.max_partitions_per_topic` asked (INVALID_PARTITIONS).
    PartitionsPerTopic,
    /// A topic a client asked for (Metadata, Produce) was not auto-created: auto-creation
    /// is off or the name is outside `kafka.auto_create_prefix`.
    AutoCreate,
    /// `kafka.max_groups` reached.
    TooManyGroups,
    /// `kafka.max_members_per_group` reached (GROUP_MAX_SIZE_REACHED).
    GroupFull,
    /// The oldest idempotent producer's state was dropped at `kafka.max_producer_states`.
    ProducerStateEvicted,
    /// A request naming more partitions or topics than `kafka.max_request_partitions`.
    RequestTooLarge,
}

impl KafkaRefusal {
    pub fn label(self) -> &'static str {
        match self {
            KafkaRefusal::TopicAuthorization => "topic_authorization",
            KafkaRefusal::GroupAuthorization => "group_authorization",
            KafkaRefusal::ClusterAuthorization => "cluster_authorization",
            KafkaRefusal::SaslAuthentication => "sasl_authentication",
            KafkaRefusal::SaslMechanism => "sasl_mechanism",
            KafkaRefusal::SaslRequired => "sasl_required",
            KafkaRefusal::TlsHandshake => "tls_handshake",
            KafkaRefusal::TooManyConnections => "too_many_connections",
            KafkaRefusal::TooManyConnectionsFromAddress => "too_many_connections_from_address",
            KafkaRefusal::Evicted => "evicted",
            KafkaRefusal::FirstRequestTimeout => "first_request_timeout",
            KafkaRefusal::MemoryBudget => "memory_budget",
            KafkaRefusal::InflateBudget => "inflate_budget",
            KafkaRefusal::DataBudget => "data_budget",
            KafkaRefusal::TooManyTopics => "too_many_topics",
            KafkaRefusal::TooManyPartitions => "too_many_partitions",
            KafkaRefusal::PartitionsPerTopic => "partitions_per_topic",
            KafkaRefusal::AutoCreate => "auto_create",
            KafkaRefusal::TooManyGroups => "too_many_groups",
            KafkaRefusal::GroupFull => "group_full",
            KafkaRefusal::ProducerStateEvicted => "producer_state_evicted",
            KafkaRefusal::RequestTooLarge => "request_too_large",
        }
    }
}

/// The Kafka listener refused a connection or a request (or dropped state to stay within
/// a bound): counted in `panoptes_kafka_refused_total{reason}` and logged at most once
/// per reason per 10 s.
pub struct KafkaRefused<'a> {
    pub refusal: KafkaRefusal,
    pub peer: Option<std::net::SocketAddr>,
    /// The authenticated user, `ANONYMOUS`, or `None` before the connection got that far.
    pub principal: Option<&'a str>,
    /// What was refused and why, naming the setting that decided it. Never a secret.
    pub detail: &'a str,
}

impl KafkaRefused<'_> {
    pub fn emit(self, t: &Telemetry) {
        let reason = self.refusal.label();
        t.inc("panoptes_kafka_refused_total", &[("reason", reason)]);
        if let Some(suppressed) = KAFKA_REFUSALS_LOG.admit(reason, std::time::Instant::now()) {
            let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
            tracing::warn!(
                reason,
                peer,
                principal = self.principal.unwrap_or(""),
                suppressed_since_last = suppressed,
                "Kafka listener refused: {}",
                self.detail
            );
        }
    }
}

/// A frame or request the Kafka listener could not read or serve (oversized, malformed,
/// unsupported, corrupt batch, stalled): counted in
/// `panoptes_kafka_bad_frames_total{reason}`, logged at most once per reason per 10 s.
pub struct KafkaBadFrame<'a> {
    pub reason: &'static str,
    pub peer: Option<std::net::SocketAddr>,
    pub error: &'a dyn std::fmt::Display,
}

impl KafkaBadFrame<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc(
            "panoptes_kafka_bad_frames_total",
            &[("reason", self.reason)],
        );
        if let Some(suppressed) = KAFKA_BAD_FRAMES_LOG.admit(self.reason, std::time::Instant::now())
        {
            let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
            tracing::warn!(
                reason = self.reason,
                peer,
                suppressed_since_last = suppressed,
                "bad Kafka request: {}",
                self.error
            );
        }
    }
}

/// An HTTP API request refused as invalid (a bad query string, partition or offset).
pub struct HttpRequestRejected<'a> {
    /// The `reason` label: `query`, `partition`, `offset`.
    pub reason: &'static str,
    pub message: &'a str,
}

impl HttpRequestRejected<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc(
            "panoptes_http_requests_rejected_total",
            &[("reason", self.reason)],
        );
        tracing::debug!(
            reason = self.reason,
            message = self.message,
            "HTTP request refused"
        );
    }
}

/// A connection the Kafka listener accepted.
pub struct KafkaConnectionAccepted {
    pub peer: std::net::SocketAddr,
}

impl KafkaConnectionAccepted {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_kafka_connections_total", &[]);
        tracing::debug!(peer = %self.peer, "Kafka connection accepted");
    }
}

/// A Kafka request about to be served.
pub struct KafkaRequestServed<'a> {
    /// The API's name (`Produce`, `Fetch`, ...).
    pub api: &'a str,
    pub version: i16,
}

impl KafkaRequestServed<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_kafka_requests_total", &[("api", self.api)]);
        tracing::trace!(api = self.api, version = self.version, "Kafka request");
    }
}

/// A Produce partition refused because the topic log cannot be written (disk full, I/O
/// error): answered KAFKA_STORAGE_ERROR, which clients retry.
pub struct KafkaProduceRefused<'a> {
    pub topic: &'a str,
    pub partition: u32,
    pub error: &'a dyn std::fmt::Display,
}

impl KafkaProduceRefused<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc(
            "panoptes_kafka_produce_refused_total",
            &[("reason", "storage")],
        );
        tracing::warn!(topic = self.topic, partition = self.partition, error = %self.error,
            "refused a produce: the topic log cannot be written");
    }
}

/// A reload (SIGHUP, `POST /api/reload`) applied new plugin files and secrets.
pub struct ConfigReloaded<'a> {
    pub summary: &'a str,
}

impl ConfigReloaded<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_config_reloads_total", &[("result", "ok")]);
        tracing::info!("{}", self.summary);
    }
}

/// A reload found a problem and changed nothing.
pub struct ReloadFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl ReloadFailed<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_config_reloads_total", &[("result", "failed")]);
        tracing::error!(error = %self.error, "configuration reload failed");
    }
}

/// A MIB module (or directory) that could not be loaded at start: its names are missing,
/// the rest of the MIBs are used. Logged only: it happens once, before telemetry exists.
pub struct MibModuleFailed<'a> {
    pub problem: &'a crate::mib::ModuleProblem,
}

impl MibModuleFailed<'_> {
    pub fn emit(self) {
        tracing::warn!(
            module = %self.problem.module,
            file = %self.problem.file,
            reason = %self.problem.summary(),
            "MIB module not loaded; `panoptes mib check DIR` lists why"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_throttled_key_logs_once_per_window_and_counts_what_it_left_out() {
        let t = LogThrottle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.admit("a", t0), Some(0));
        assert_eq!(t.admit("a", t0 + Duration::from_secs(1)), None);
        assert_eq!(t.admit("a", t0 + Duration::from_secs(9)), None);
        assert_eq!(
            t.admit("b", t0 + Duration::from_secs(9)),
            Some(0),
            "keys apart"
        );
        assert_eq!(t.admit("a", t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(t.admit("a", t0 + Duration::from_secs(25)), Some(0));
    }

    #[test]
    fn refusals_are_counted_even_when_their_log_line_is_left_out() {
        let t = Telemetry::default();
        for _ in 0..5 {
            KafkaRefused {
                refusal: KafkaRefusal::GroupFull,
                peer: None,
                principal: Some("ANONYMOUS"),
                detail: "test",
            }
            .emit(&t);
        }
        assert_eq!(
            t.get("panoptes_kafka_refused_total", &[("reason", "group_full")]),
            5.0
        );
    }
}

/// One line per reason per 10 s for the trap receiver's refusals.
static TRAPS_REJECTED_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(10));

/// Why the trap receiver refused a datagram: the `reason` label of
/// `panoptes_traps_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapRejection {
    /// Not BER, not SNMP, or a notification PDU missing its mandatory parts.
    Malformed,
    /// An SNMP message, but not a trap or an inform (a GET sent to the trap port).
    NotANotification,
    /// A v1/v2c community not in `traps.communities`.
    Community,
    /// A v3 user not in the secrets file's `trap_users`.
    UnknownUser,
    /// A v3 message at another security level than its user's.
    SecurityLevel,
    /// A v3 message whose HMAC does not match its user's key.
    Authentication,
    /// A v3 message that does not decrypt with its user's key.
    Decryption,
    /// A v3 message outside the time window (a replay, or a clock gone back).
    TimeWindow,
    /// More varbinds than `traps.max_varbinds`.
    TooManyVarbinds,
    /// `traps.queue_capacity` notifications already waiting to be published.
    QueueFull,
}

impl TrapRejection {
    pub fn label(self) -> &'static str {
        match self {
            TrapRejection::Malformed => "malformed",
            TrapRejection::NotANotification => "not_a_notification",
            TrapRejection::Community => "community",
            TrapRejection::UnknownUser => "unknown_user",
            TrapRejection::SecurityLevel => "security_level",
            TrapRejection::Authentication => "authentication",
            TrapRejection::Decryption => "decryption",
            TrapRejection::TimeWindow => "time_window",
            TrapRejection::TooManyVarbinds => "too_many_varbinds",
            TrapRejection::QueueFull => "queue_full",
        }
    }
}

/// The trap receiver refused a datagram: counted in
/// `panoptes_traps_rejected_total{reason}`, logged at most once per reason per 10 s.
pub struct TrapRejected<'a> {
    pub rejection: TrapRejection,
    pub source: std::net::SocketAddr,
    /// What was wrong, naming the field or setting. Never a secret (no community).
    pub detail: &'a dyn std::fmt::Display,
}

impl TrapRejected<'_> {
    pub fn emit(self, t: &Telemetry) {
        let reason = self.rejection.label();
        t.inc("panoptes_traps_rejected_total", &[("reason", reason)]);
        if let Some(suppressed) = TRAPS_REJECTED_LOG.admit(reason, std::time::Instant::now()) {
            tracing::warn!(
                reason,
                source = %self.source,
                suppressed_since_last = suppressed,
                "trap refused: {}",
                self.detail
            );
        }
    }
}

/// The trap receiver accepted a notification (and queued it for the traps topic).
pub struct TrapReceived<'a> {
    pub version: &'static str,
    pub kind: &'static str,
    pub source: std::net::SocketAddr,
    pub trap_oid: &'a str,
}

impl TrapReceived<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.inc(
            "panoptes_traps_received_total",
            &[("version", self.version), ("kind", self.kind)],
        );
        tracing::debug!(
            version = self.version,
            kind = self.kind,
            source = %self.source,
            trap_oid = self.trap_oid,
            "trap received"
        );
    }
}

/// The trap receiver answered a v3 inform sender with a Report (engine discovery, time
/// synchronisation, or a refusal the sender asked to hear about).
pub struct TrapReportSent {
    pub reason: &'static str,
    pub source: std::net::SocketAddr,
}

impl TrapReportSent {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_traps_reports_total", &[("reason", self.reason)]);
        tracing::debug!(reason = self.reason, source = %self.source, "SNMPv3 report sent to an inform sender");
    }
}

/// Trap events appended to the traps topic.
pub struct TrapsPublished<'a> {
    pub topic: &'a str,
    pub count: usize,
}

impl TrapsPublished<'_> {
    pub fn emit(self, t: &Telemetry) {
        t.add(
            crate::telemetry::Series::new("panoptes_traps_published_total", &[]),
            self.count as f64,
        );
        tracing::debug!(
            topic = self.topic,
            count = self.count,
            "trap events published"
        );
    }
}

/// A copy of an inform already received (its sender did not have the answer yet): not
/// published again; answered now if the first copy is stored, else once it is.
pub struct InformRetransmitted {
    pub source: std::net::SocketAddr,
    pub request_id: i32,
}

impl InformRetransmitted {
    pub fn emit(self, t: &Telemetry) {
        t.inc("panoptes_traps_duplicates_total", &[]);
        tracing::debug!(source = %self.source, request_id = self.request_id, "inform retransmitted: not published again");
    }
}
