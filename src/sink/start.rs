//! Starting the sink with the node: one consumer per partition of `<site>-processed` in
//! the original's consumer group, and its `/metrics` section.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Addr};
use panoptes_actors::{Consumer, ConsumerConfig, GetConsumerStats, Stop};
use panoptes_storage::Topic;
use tokio::sync::watch;

use super::points_sink::{InfluxSink, Records};
use super::v1::V1Writer;
use super::v2::{V2SetupError, V2Writer};
use super::writer::LineWriter;
use crate::bus::{Bus, ExternalSource, Item, PartitionSource};
use crate::cluster::Membership;
use crate::config::{InfluxApi, InfluxSettings};
use crate::http::MetricsSection;
use crate::telemetry::{render_gauge, Telemetry};

/// The original InfluxDB consumer's group: a node that replaces it resumes where it was.
pub const GROUP: &str = "panoptes_influxdb_consumer_raw_metrics";
/// The group the sink reads `<site>-traps` in (`influxdb.traps`).
pub const TRAPS_GROUP: &str = "panoptes_influxdb_consumer_traps";

/// Why the writer the settings ask for could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WriterSetupError {
    /// `influxdb.tls_ca` could not be read, or the TLS configuration not built.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    V2(#[from] V2SetupError),
}

/// The writer the settings ask for.
pub fn writer(settings: &InfluxSettings) -> Result<Arc<dyn LineWriter>, WriterSetupError> {
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
                Some(crate::tls::client_config(crate::tls::Trust::Public(
                    ca.map(|path| ("influxdb.tls_ca", path)),
                ))?)
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
                Some(path) => crate::tls::certificates("influxdb.tls_ca", path)?
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

/// Starts the sink when it is configured (says so either way): one consumer per
/// partition of `topic`, or, on a node of a cluster (`group`), one per partition the
/// sink's consumer group assigns to this node, following every rebalance.
pub async fn start(
    settings: &InfluxSettings,
    bus: &Bus,
    topics: &[String],
    trap_topics: &[String],
    telemetry: &Arc<Telemetry>,
    group: Option<watch::Receiver<Membership>>,
) -> anyhow::Result<Running> {
    let Some((first, rest)) = topics.split_first() else {
        return Ok(Running::default());
    };
    let mut running = start_topic(settings, bus, first, Records::Groups, telemetry, group).await?;
    // The node's other sites (never in a cluster: one site per cluster).
    for topic in rest {
        let more = start_topic(settings, bus, topic, Records::Groups, telemetry, None).await?;
        running.also.push(more);
    }
    if running.enabled {
        for topic in trap_topics {
            let traps = start_topic(settings, bus, topic, Records::Traps, telemetry, None).await?;
            running.also.push(traps);
        }
    }
    Ok(running)
}

/// The sink of one topic.
async fn start_topic(
    settings: &InfluxSettings,
    bus: &Bus,
    topic: &str,
    records: Records,
    telemetry: &Arc<Telemetry>,
    group: Option<watch::Receiver<Membership>>,
) -> anyhow::Result<Running> {
    if !settings.enabled() {
        tracing::info!(
            "InfluxDB sink is off (set influxdb.url or PANOPTES__INFLUXDB__URL to turn it on)"
        );
        return Ok(Running::default());
    }
    let writer = writer(settings)?;
    let group_name = match records {
        Records::Groups => GROUP,
        Records::Traps => TRAPS_GROUP,
    };
    let running = Running {
        enabled: true,
        // The embedded log's topic, for the lag gauge; the external cluster answers it
        // with its high watermarks.
        topic: if bus.is_external() {
            None
        } else {
            Some(bus.topic(topic)?)
        },
        name: topic.to_owned(),
        external: bus.external_cluster(),
        consumers: Arc::default(),
        also: Vec::new(),
    };
    let start_one = {
        let (writer, telemetry, config) = (
            Arc::clone(&writer),
            Arc::clone(telemetry),
            consumer_config(settings),
        );
        let topic = topic.to_owned();
        move |partition: u32, source: PartitionSource| {
            let sink = InfluxSink::of(records, Arc::clone(&writer), Arc::clone(&telemetry));
            Consumer::new(
                format!("influxdb:{topic}:{partition}"),
                source,
                sink,
                config.clone(),
            )
            .start()
        }
    };
    match (group, bus.external_cluster()) {
        (Some(membership), Some(cluster)) => {
            actix::spawn(follow_assignment(
                membership,
                cluster,
                topic.to_owned(),
                running.clone(),
                start_one,
            ));
        }
        _ => {
            let sources = bus.sources(topic, group_name).await?;
            let mut consumers = running.lock();
            for (partition, source) in sources.into_iter().enumerate() {
                consumers.insert(partition as u32, start_one(partition as u32, source));
            }
        }
    }
    tracing::info!(
        target_db = %writer.target(),
        topic,
        group = group_name,
        partitions = %match running.lock().len() { 0 => "as the group assigns them".to_owned(), n => n.to_string() },
        batch_size = settings.batch_size,
        max_emit_interval_s = settings.max_emit_interval,
        "InfluxDB sink is on"
    );
    Ok(running)
}

/// Keeps one consumer per partition the sink's group assigns to this node: stops the
/// consumers of partitions taken away (the batch they were writing is written again by the
/// new owner, from the last commit: at least once), starts consumers for partitions gained
/// (from the group's committed offsets).
async fn follow_assignment(
    mut membership: watch::Receiver<Membership>,
    cluster: crate::kafka::ExternalCluster,
    topic: String,
    consumers: Running,
    start_one: impl Fn(u32, PartitionSource) -> Addr<Consumer<Item>>,
) {
    loop {
        let wanted: BTreeSet<u32> = {
            let m = membership.borrow_and_update();
            if m.state == "stable" {
                m.partitions.iter().copied().collect()
            } else {
                BTreeSet::new()
            }
        };
        {
            let mut running = consumers.lock();
            let gone: Vec<u32> = running
                .keys()
                .filter(|p| !wanted.contains(p))
                .copied()
                .collect();
            for p in gone {
                if let Some(addr) = running.remove(&p) {
                    addr.do_send(Stop);
                }
            }
            for &p in &wanted {
                running.entry(p).or_insert_with(|| {
                    start_one(
                        p,
                        PartitionSource::External(ExternalSource {
                            cluster: cluster.clone(),
                            topic: topic.clone(),
                            partition: p,
                            group: GROUP.to_owned(),
                            member: Some(membership.clone()),
                        }),
                    )
                });
            }
            tracing::info!(topic = %topic, partitions = ?wanted, "InfluxDB sink follows its group's assignment");
        }
        if membership.changed().await.is_err() {
            // The membership ended (the node is stopping): so do the consumers.
            let mut running = consumers.lock();
            for (_, addr) in std::mem::take(&mut *running) {
                addr.do_send(Stop);
            }
            return;
        }
    }
}

/// The running sink: its topic and its consumers, by partition.
#[derive(Clone, Default)]
pub struct Running {
    pub enabled: bool,
    /// The embedded log's topic (None on an external cluster).
    pub topic: Option<Topic>,
    pub name: String,
    pub external: Option<crate::kafka::ExternalCluster>,
    pub consumers: Arc<Mutex<BTreeMap<u32, Addr<Consumer<Item>>>>>,
    /// The sinks of the node's other sites' topics (`sites`).
    pub also: Vec<Running>,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Addr<Consumer<Item>>>> {
        self.consumers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The consumers running now, by partition (those of every site's topic).
    pub fn current(&self) -> Vec<(u32, Addr<Consumer<Item>>)> {
        let mut all: Vec<_> = self.lock().iter().map(|(p, a)| (*p, a.clone())).collect();
        for more in &self.also {
            all.extend(more.lock().iter().map(|(p, a)| (*p, a.clone())));
        }
        all
    }

    /// Each running consumer's lag: the partition's high watermark minus the group's
    /// committed offset (not the source's own lag figure, which is only refreshed when
    /// the consumer reads, so it stands still while a batch is being retried in an
    /// outage, exactly when the lag matters), with its delivery failures.
    pub async fn lag(&self) -> Vec<PartitionLag> {
        let mut out = self.own_lag().await;
        for more in &self.also {
            out.extend(more.own_lag().await);
        }
        out
    }

    async fn own_lag(&self) -> Vec<PartitionLag> {
        let mut out = Vec::new();
        let own: Vec<_> = self.lock().iter().map(|(p, a)| (*p, a.clone())).collect();
        for (partition, addr) in own {
            let Ok(stats) = addr.send(GetConsumerStats).await else {
                continue;
            };
            let high = if let Some(t) = &self.topic {
                let t = t.clone();
                tokio::task::spawn_blocking(move || t.high_watermark(partition))
                    .await
                    .ok()
                    .and_then(Result::ok)
            } else if let Some(c) = &self.external {
                c.high_watermark(&self.name, partition).await.ok()
            } else {
                None
            };
            out.push(PartitionLag {
                topic: self.name.clone(),
                partition,
                lag: high.zip(stats.committed).map(|(h, c)| h.saturating_sub(c)),
                delivery_failures: stats.delivery_failures,
            });
        }
        out
    }
}

/// One sink partition's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    pub lag: Option<u64>,
    pub delivery_failures: u64,
}

/// `/metrics`: whether the sink runs, and its consumer lag per partition (see
/// [`Running::lag`]). Points written, batches, refused points and write errors are
/// counters.
pub fn metrics_section(running: Running) -> MetricsSection {
    Box::new(move || {
        let running = running.clone();
        Box::pin(async move {
            let mut lag = Vec::new();
            let mut failures = Vec::new();
            for p in running.lag().await {
                let labels = vec![
                    ("topic", p.topic.clone()),
                    ("partition", p.partition.to_string()),
                ];
                if let Some(l) = p.lag {
                    lag.push((labels.clone(), l as f64));
                }
                failures.push((labels, p.delivery_failures as f64));
            }
            let mut out = String::new();
            render_gauge(
                &mut out,
                "panoptes_influxdb_sink_enabled",
                "1 when the InfluxDB sink runs.",
                &[(vec![], if running.enabled { 1.0 } else { 0.0 })],
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
