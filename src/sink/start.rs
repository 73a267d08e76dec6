//! Starting the sink with the node: one consumer per partition of `<site>-processed` in
//! the original's consumer group, and its `/metrics` section.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use panoptes_actors::{Consumer, ConsumerConfig, GetConsumerStats};
use panoptes_storage::Topic;

use super::points_sink::InfluxSink;
use super::v1::V1Writer;
use super::v2::V2Writer;
use super::writer::LineWriter;
use crate::bus::{Bus, Item};
use crate::config::{InfluxApi, InfluxSettings};
use crate::http::MetricsSection;
use crate::telemetry::{render_gauge, Telemetry};

/// The original InfluxDB consumer's group: a node that replaces it resumes where it was.
pub const GROUP: &str = "panoptes_influxdb_consumer_raw_metrics";

/// The writer the settings ask for.
pub fn writer(settings: &InfluxSettings) -> Result<Arc<dyn LineWriter>, String> {
    let url = settings.url.trim();
    let timeout = Duration::from_secs(settings.timeout);
    let ca = settings.tls_ca.trim();
    let ca = (!ca.is_empty()).then(|| std::path::Path::new(ca));
    let https = url.starts_with("https://");
    let has_secret = !settings.token.is_empty() || !settings.password.is_empty();
    if !https && has_secret && !plain_host_is_loopback(url) {
        tracing::warn!(url = %crate::secret::redact_url(url), "the InfluxDB token or password goes over plain http: use https:// (influxdb.url)");
    }
    Ok(match settings.api {
        InfluxApi::V1 => {
            let tls = if https {
                Some(
                    crate::tls::client_config(crate::tls::Trust::Public(
                        ca.map(|path| ("influxdb.tls_ca", path)),
                    ))
                    .map_err(|e| e.to_string())?,
                )
            } else {
                None
            };
            Arc::new(V1Writer::new(
                url,
                &settings.database,
                &settings.username,
                &settings.password,
                timeout,
                tls,
            ))
        }
        InfluxApi::V2 => {
            let roots = match ca {
                Some(path) => crate::tls::certificates("influxdb.tls_ca", path)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|c| c.to_vec())
                    .collect(),
                None => Vec::new(),
            };
            Arc::new(V2Writer::new(
                url,
                &settings.org,
                &settings.bucket,
                &settings.token,
                timeout,
                &roots,
            )?)
        }
    })
}

/// Whether an http URL's host is a loopback name or address (secrets sent there do not
/// cross a network).
fn plain_host_is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(
            || host.rsplit_once(':').map_or(host, |(h, _)| h),
            |(h, _)| h,
        );
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The consumer settings for the sink: the original's batching, our retry policy.
pub fn consumer_config(settings: &InfluxSettings) -> ConsumerConfig {
    let timeout = Duration::from_secs(settings.timeout);
    ConsumerConfig {
        batch_size: settings.batch_size,
        max_emit_interval: Duration::from_secs(settings.max_emit_interval),
        retry_backoff_min: Duration::from_millis(250),
        retry_backoff_max: Duration::from_secs(settings.retry_backoff_max),
        // A delivery may write a refused batch point by point: give it room.
        op_timeout: timeout * 3 + Duration::from_secs(60),
        ..ConsumerConfig::default()
    }
}

/// Starts one consumer per partition of `topic` when the sink is configured; says so
/// either way.
pub async fn start(
    settings: &InfluxSettings,
    bus: &Bus,
    topic: &str,
    telemetry: &Arc<Telemetry>,
) -> anyhow::Result<Running> {
    if !settings.enabled() {
        tracing::info!(
            "InfluxDB sink is off (set influxdb.url or PANOPTES__INFLUXDB__URL to turn it on)"
        );
        return Ok(Running::default());
    }
    let writer = writer(settings).map_err(anyhow::Error::msg)?;
    let sources = bus
        .sources(topic, GROUP)
        .await
        .map_err(anyhow::Error::msg)?;
    // The embedded log's topic, for the lag gauge (the external cluster has its own tools).
    let log = if bus.is_external() {
        None
    } else {
        Some(bus.topic(topic)?)
    };
    let mut consumers = Vec::new();
    for (partition, source) in sources.into_iter().enumerate() {
        let sink = InfluxSink::new(Arc::clone(&writer), Arc::clone(telemetry));
        let consumer = Consumer::new(
            format!("influxdb:{topic}:{partition}"),
            source,
            sink,
            consumer_config(settings),
        );
        consumers.push(consumer.start());
    }
    tracing::info!(
        target_db = %writer.target(),
        topic,
        group = GROUP,
        partitions = consumers.len(),
        batch_size = settings.batch_size,
        max_emit_interval_s = settings.max_emit_interval,
        "InfluxDB sink is on"
    );
    Ok(Running {
        topic: log,
        consumers,
    })
}

/// The running sink: its topic and one consumer per partition (index = partition).
#[derive(Clone, Default)]
pub struct Running {
    pub topic: Option<Topic>,
    pub consumers: Vec<Addr<Consumer<Item>>>,
}

/// `/metrics`: whether the sink runs, and its consumer lag per partition: the topic's
/// high watermark minus the group's committed offset. (Not the source's own lag figure,
/// which is only refreshed when the consumer reads, so it stands still while a batch is
/// being retried in an outage, exactly when the lag matters.) Points written, batches,
/// refused points and write errors are counters.
pub fn metrics_section(running: Running) -> MetricsSection {
    Box::new(move || {
        let running = running.clone();
        Box::pin(async move {
            let mut lag = Vec::new();
            let mut failures = Vec::new();
            if let Some(topic) = &running.topic {
                for (partition, addr) in running.consumers.iter().enumerate() {
                    let Ok(stats) = addr.send(GetConsumerStats).await else {
                        continue;
                    };
                    let (t, p) = (topic.clone(), partition as u32);
                    let high = tokio::task::spawn_blocking(move || t.high_watermark(p))
                        .await
                        .ok()
                        .and_then(Result::ok);
                    let labels = vec![
                        ("topic", topic.name().to_string()),
                        ("partition", partition.to_string()),
                    ];
                    if let (Some(high), Some(committed)) = (high, stats.committed) {
                        lag.push((labels.clone(), high.saturating_sub(committed) as f64));
                    }
                    failures.push((labels, stats.delivery_failures as f64));
                }
            }
            let mut out = String::new();
            render_gauge(
                &mut out,
                "panoptes_influxdb_sink_enabled",
                "1 when the InfluxDB sink runs.",
                &[(
                    vec![],
                    if running.consumers.is_empty() {
                        0.0
                    } else {
                        1.0
                    },
                )],
            );
            render_gauge(
                &mut out,
                "panoptes_influxdb_consumer_lag",
                "Metrics groups on the topic not yet committed by the InfluxDB sink, per partition.",
                &lag,
            );
            crate::telemetry::render_family(
                &mut out,
                "panoptes_influxdb_delivery_failures_total",
                "Batches the sink could not write (each is retried), per partition.",
                "counter",
                &failures,
            );
            out
        })
    })
}
