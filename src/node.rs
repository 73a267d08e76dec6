//! `panoptes run`: loads configuration and plugins (refusing to start on any error), opens
//! the store, starts the demo device, the schedulers, the poller pool, the resource
//! manager's consumer, the InfluxDB sink (when configured) and the HTTP server, and shuts them down cleanly on SIGINT/SIGTERM.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Arbiter};
use anyhow::{Context, Result};
use panoptes_actors::{
    Consumer, ConsumerConfig, Drain, GetConsumerStats, GetSchedulerStats, Job, PollerPool,
    PoolConfig, PoolStats, Scheduler, SchedulerConfig,
};
use panoptes_storage::Store;

use crate::agent::discovery::DiscoveryPlanner;
use crate::agent::enrichment::EnrichmentJob;
use crate::agent::polling::PollingJob;
use crate::agent::resources::{ReconcileSink, GROUP};
use crate::agent::{ResourcePlanner, Shared};
use crate::bus::Bus;
use crate::config::{load_plugin_dir, PluginConfig, PluginKind, Settings};
use crate::events::KeysExpired;
use crate::http::{AppState, MetricsSection};
use crate::plugins::BuiltIn;
use crate::resource_manager::ResourceStore;
use crate::simulate::{
    CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig, SimulatorHandle,
};
use crate::telemetry::{render_family, render_gauge, Telemetry};

/// The demo switch's recording, built in so `panoptes run` works from anywhere.
const DEMO_RECORDING: &str = include_str!("../resources/demo/switch48.snmprec");

/// Every plugin, loaded and checked before anything starts.
pub struct Plugins {
    pub discovery: Vec<Arc<PluginConfig>>,
    pub enrichment: Vec<Arc<PluginConfig>>,
    pub polling: Vec<Arc<PluginConfig>>,
}

impl Plugins {
    pub fn load(settings: &Settings) -> Result<Plugins> {
        let load = |dirs: &[PathBuf], kind: PluginKind| -> Result<Vec<Arc<PluginConfig>>> {
            let mut out = Vec::new();
            for dir in dirs {
                for plugin in load_plugin_dir(dir, kind)? {
                    BuiltIn::resolve(&plugin)?;
                    if plugin.execute_frequency == 0 {
                        tracing::warn!(plugin = %plugin.name, file = %plugin.path.display(),
                            "execute_frequency is 0: plugin not scheduled");
                    }
                    out.push(Arc::new(plugin));
                }
            }
            Ok(out)
        };
        Ok(Plugins {
            discovery: load(&settings.plugins.discovery, PluginKind::Discovery)?,
            enrichment: load(&settings.plugins.enrichment, PluginKind::Enrichment)?,
            polling: load(&settings.plugins.polling, PluginKind::Polling)?,
        })
    }
}

/// Wraps each job the node builds (the benchmark times polls this way).
pub type JobWrapper = Arc<dyn Fn(Arc<dyn Job>) -> Arc<dyn Job> + Send + Sync>;

/// Wrappers of the node's polling and enrichment jobs, for a caller embedding the node.
#[derive(Clone, Default)]
pub struct JobWrappers {
    pub polling: Option<JobWrapper>,
    pub enrichment: Option<JobWrapper>,
}

fn wrapped(wrap: &Option<JobWrapper>, job: Arc<dyn Job>) -> Arc<dyn Job> {
    match wrap {
        Some(wrap) => wrap(job),
        None => job,
    }
}

/// What a caller embedding the node (`panoptes bench`) may watch while it runs.
#[derive(Clone)]
pub struct NodeView {
    pub pool: Arc<PoolStats>,
    pub discovery: Addr<Scheduler>,
    pub enrichment: Addr<Scheduler>,
    pub polling: Addr<Scheduler>,
    pub telemetry: Arc<Telemetry>,
    pub bus: Bus,
}

pub fn run(settings: Settings) -> Result<()> {
    run_until(settings, JobWrappers::default(), |_| wait_for_shutdown())
}

/// Runs the node as `panoptes run` does, but stops when the future `until` makes (given a
/// view of the running node) completes, instead of on a signal; `wrappers` wrap every
/// polling and enrichment job.
pub fn run_until<F, Fut>(settings: Settings, wrappers: JobWrappers, until: F) -> Result<()>
where
    F: FnOnce(NodeView) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let plugins = Plugins::load(&settings).context("loading plugins")?;
    tracing::info!(
        discovery = plugins.discovery.len(),
        enrichment = plugins.enrichment.len(),
        polling = plugins.polling.len(),
        "plugins loaded"
    );
    let durability = settings.storage.durability.durability();
    let store = Store::open_with(&settings.data_dir, durability)
        .with_context(|| format!("opening the store in {}", settings.data_dir.display()))?;
    // Fail before anything starts when the HTTPS files are unusable.
    http_listener(&settings.http)?;
    let system = actix::System::new();
    let result = system.block_on(async move {
        run_node(settings, plugins, store, started, wrappers, until).await
    });
    result
}

async fn run_node<F, Fut>(
    settings: Settings,
    plugins: Plugins,
    store: Store,
    started: Instant,
    wrappers: JobWrappers,
    until: F,
) -> Result<()>
where
    F: FnOnce(NodeView) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Every append (pipeline or Kafka producer) wakes the HTTP API's long polls.
    let appended = Arc::new(tokio::sync::Notify::new());
    {
        let appended = Arc::clone(&appended);
        store.on_append(Arc::new(move || appended.notify_waiters()));
    }
    let snmp = crate::snmp::SnmpEngine::init_global(settings.snmp.engine_config())
        .context("starting the SNMP engine")?;
    tracing::debug!(config = ?snmp.config(), "SNMP engine started");
    let telemetry = Arc::new(Telemetry::default());
    // Listeners are bound before any actor starts: a taken port is then a plain error,
    // not an error while the actors are being torn down.
    let kafka = start_kafka(&settings, &plugins, &store, &telemetry)?;
    let node_id = crate::cluster::node_id(&settings.cluster.node_id);
    let ownership = Arc::new(if settings.cluster.enabled {
        crate::cluster::Ownership::member()
    } else {
        crate::cluster::Ownership::alone()
    });
    let bus = if settings.kafka.brokers.is_empty() {
        Bus::new(store.clone(), settings.kafka.partitions)
    } else {
        tracing::info!(brokers = ?settings.kafka.brokers, security = settings.kafka.client_security.name(), "topics are on an external Kafka cluster (kafka.brokers)");
        let cluster = crate::kafka::ExternalCluster::start(
            settings.kafka.brokers.clone(),
            &format!("panoptes-{}", settings.site),
            kafka_client_security(&settings.kafka)?,
            Some(Arc::clone(&telemetry)),
        )?;
        Bus::external(store.clone(), settings.kafka.partitions, cluster)
    };
    if !bus.is_external() {
        // The pipeline's topics exist from the start, so a Kafka consumer can subscribe
        // before the first poll (auto-creation is off, and the pipeline's names are
        // protected from clients anyway).
        let (b, topics) = (bus.clone(), published_topics(&settings, &plugins));
        tokio::task::spawn_blocking(move || topics.iter().try_for_each(|t| b.topic(t).map(drop)))
            .await
            .context("creating the pipeline's topics")?
            .context("creating the pipeline's topics")?;
    }
    let shared = Arc::new(Shared {
        bus: bus.clone(),
        resources: ResourceStore::new(store.keyspace("resources")?),
        enrichments: store.keyspace("enrichments")?,
        rate_state: store.keyspace("rate_state")?,
        rates: Arc::default(),
        publisher: crate::agent::publisher::Publisher::start(bus.clone())
            .context("starting the publisher thread")?,
        telemetry: Arc::clone(&telemetry),
        fleet: Arc::default(),
        ownership: Arc::clone(&ownership),
        ready: Arc::new(AtomicBool::new(plugins.polling.is_empty())),
        enrichment_scheduler: OnceLock::new(),
        polling_scheduler: OnceLock::new(),
        settings: settings.clone(),
    });

    let rate_state = shared.rate_state.clone();
    let rates = Arc::clone(&shared.rates);
    match tokio::task::spawn_blocking(move || rates.load(&rate_state)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(groups)) => tracing::info!(groups, "rate state of the previous run loaded"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not load the saved rate state"),
        Err(e) => tracing::warn!(error = %e, "loading the saved rate state failed"),
    }

    let demo = if settings.demo.enabled {
        Some(start_demo(&settings).await?)
    } else {
        None
    };

    // Poller pool: jobs run on one arbiter per core, off the schedulers' thread.
    let workers = match settings.scheduler.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    let arbiters: Vec<Arbiter> = (0..workers).map(|_| Arbiter::new()).collect();
    // Each poller thread reads the replies to its own requests: no hop through the
    // engine's thread (and no wake-up of it) per reply.
    for arbiter in &arbiters {
        let engine = snmp.clone();
        arbiter.spawn(async move {
            if let Err(e) = engine.serve_this_thread() {
                tracing::warn!(error = %e, "poller thread keeps using the SNMP engine's shared sockets");
            }
        });
    }
    let pool = PollerPool::new(
        PoolConfig {
            max_in_flight: settings.scheduler.max_in_flight,
            per_device: settings.scheduler.per_device,
            deadline: None,
            queue_capacity: settings.scheduler.queue_capacity,
            ..PoolConfig::default()
        },
        arbiters.iter().map(|a| a.handle()).collect(),
    );
    let pool_stats = pool.stats();
    let pool = pool.start();

    let scheduler_config = SchedulerConfig {
        rescan_interval: Duration::from_secs(settings.plugins.scan_interval),
        first_run_spread: Duration::from_secs(settings.scheduler.first_run_spread),
        ..SchedulerConfig::default()
    };
    let enrichment_factory = {
        let shared = Arc::clone(&shared);
        let wrap = wrappers.enrichment.clone();
        Arc::new(move |plugin, resource| -> Arc<dyn panoptes_actors::Job> {
            let job = Arc::new(EnrichmentJob {
                shared: Arc::clone(&shared),
                plugin,
                resource,
            });
            wrapped(&wrap, job)
        })
    };
    let polling_factory = {
        let shared = Arc::clone(&shared);
        Arc::new(
            move |plugin: Arc<PluginConfig>, resource| -> Arc<dyn panoptes_actors::Job> {
                let include_interface_index = plugin.flag("dimension", "include_interface_index");
                let job: Arc<dyn Job> = Arc::new(PollingJob {
                    shared: Arc::clone(&shared),
                    plugin,
                    resource,
                    include_interface_index,
                });
                wrapped(&wrappers.polling, job)
            },
        )
    };
    let enrichment = Scheduler::new(
        "enrichment",
        ResourcePlanner::new(
            Arc::clone(&shared),
            plugins.enrichment.clone(),
            enrichment_factory,
        ),
        pool.clone(),
        scheduler_config.clone(),
    )
    .start();
    let polling = Scheduler::new(
        "polling",
        ResourcePlanner::new(
            Arc::clone(&shared),
            plugins.polling.clone(),
            polling_factory,
        ),
        pool.clone(),
        SchedulerConfig {
            // In a cluster a device that moves here is first polled on its place in the
            // interval, where its previous owner polled it: one interval after its last
            // poll, never twice in one.
            first_run_spread: if ownership.is_cluster() {
                Duration::from_secs(86_400)
            } else {
                scheduler_config.first_run_spread
            },
            ..scheduler_config.clone()
        },
    )
    .start();
    let _ = shared
        .enrichment_scheduler
        .set(enrichment.clone().recipient());
    let _ = shared.polling_scheduler.set(polling.clone().recipient());
    let discovery = Scheduler::new(
        "discovery",
        DiscoveryPlanner {
            shared: Arc::clone(&shared),
            plugins: plugins.discovery.clone(),
        },
        pool.clone(),
        // Discovery starts at once: everything else waits for its resources.
        SchedulerConfig {
            first_run_spread: Duration::ZERO,
            ..scheduler_config
        },
    )
    .start();

    // A node of a cluster joins its site's groups: what it owns follows the assignment.
    let joined = match bus.external_cluster() {
        Some(cluster) if ownership.is_cluster() => {
            let schedulers = [discovery.clone(), enrichment.clone(), polling.clone()];
            Some(
                crate::cluster::start(
                    crate::cluster::Joining {
                        settings: &settings,
                        cluster: &cluster,
                        security: kafka_client_security(&settings.kafka)?,
                        node: node_id.clone(),
                        ownership: Arc::clone(&ownership),
                        on_change: Box::new(move || {
                            for s in &schedulers {
                                s.do_send(panoptes_actors::Rescan);
                            }
                        }),
                    },
                    settings.influxdb.enabled(),
                )
                .await
                .context("joining the site's cluster")?,
            )
        }
        _ => None,
    };

    // The resource manager: one consumer per partition of `<site>-resources`. Every node
    // of a cluster reads every resource set, so each has a group of its own.
    let resource_group = if ownership.is_cluster() {
        format!("{GROUP}.{node_id}")
    } else {
        GROUP.to_owned()
    };
    let mut consumers = Vec::new();
    let sources = bus
        .sources(&settings.resources_topic(), &resource_group)
        .await
        .map_err(anyhow::Error::msg)
        .context("opening the resources topic")?;
    for (partition, source) in sources.into_iter().enumerate() {
        let consumer = Consumer::new(
            format!("resource_manager:{partition}"),
            source,
            ReconcileSink {
                shared: Arc::clone(&shared),
            },
            ConsumerConfig {
                max_emit_interval: Duration::ZERO,
                ..ConsumerConfig::default()
            },
        );
        consumers.push(consumer.start());
    }

    // The InfluxDB sink: one consumer per partition of `<site>-processed`, when configured.
    let influx = crate::sink::start(
        &settings.influxdb,
        &bus,
        &settings.processed_topic(),
        &telemetry,
        joined.as_ref().and_then(|j| j.sink.clone()),
    )
    .await
    .context("starting the InfluxDB sink")?;
    let cluster_view = crate::cluster::ClusterView {
        node: node_id.clone(),
        ownership: Arc::clone(&ownership),
        resources: shared.resources.clone(),
        work: joined.as_ref().map(|j| j.work.clone()),
        sink: joined.as_ref().and_then(|j| j.sink.clone()),
        sink_running: influx.clone(),
    };

    let mut sections = metrics_sections(
        &pool_stats,
        &[discovery.clone(), enrichment.clone(), polling.clone()],
        &consumers,
        &influx,
        &shared,
        &store,
    );
    sections.push(crate::sink::metrics_section(influx));
    {
        let view = cluster_view.clone();
        sections.push(Box::new(move || {
            let view = view.clone();
            Box::pin(async move {
                let mut out = String::new();
                view.render_metrics(&mut out).await;
                out
            })
        }));
    }
    if let Some(k) = &kafka {
        sections.push(kafka_metrics_section(Arc::clone(&k.broker)));
    }
    let state = Arc::new(AppState {
        version: env!("CARGO_PKG_VERSION"),
        site: settings.site.clone(),
        bus: bus.clone(),
        resources: shared.resources.clone(),
        telemetry: Arc::clone(&telemetry),
        readiness: vec![
            first_poll_readiness(Arc::clone(&shared.ready)),
            crate::store_watch::readiness(store.clone()),
            external_readiness(&bus),
        ],
        metrics_sections: sections,
        token: settings.http.token.clone(),
        appended: Arc::clone(&appended),
        long_polls: Arc::new(tokio::sync::Semaphore::new(settings.http.max_long_polls)),
        cluster: cluster_view,
    });
    let server = crate::http::serve(state, http_listener(&settings.http)?)?;
    let http = server.handle();
    actix::spawn(server);
    let housekeeping = actix::spawn(housekeeping(
        store.clone(),
        Arc::clone(&shared.rates),
        bus.clone(),
        settings.clone(),
        Arc::clone(&telemetry),
    ));
    tracing::info!(
        http = %settings.http.listen,
        site = %settings.site,
        data_dir = %settings.data_dir.display(),
        demo = ?demo.as_ref().map(|d| d.local_addrs()),
        kafka = ?kafka.as_ref().map(|k| k.local_addr),
        startup_ms = started.elapsed().as_millis() as u64,
        "panoptes is running"
    );

    let view = NodeView {
        pool: Arc::clone(&pool_stats),
        discovery: discovery.clone(),
        enrichment: enrichment.clone(),
        polling: polling.clone(),
        telemetry: Arc::clone(&telemetry),
        bus: bus.clone(),
    };
    let failed = tokio::select! {
        () = until(view) => None,
        failed = crate::store_watch::watch(store.clone(), Arc::clone(&telemetry)) => Some(failed),
    };
    tracing::info!("shutting down: letting running plugin runs finish");
    if let Some(j) = joined {
        // First: the other nodes take this one's devices while it finishes its runs.
        j.leave().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), pool.send(Drain)).await;
    http.stop(true).await;
    if let Some(k) = kafka {
        // Joins the listener's thread: off the node's own runtime.
        let _ = tokio::task::spawn_blocking(move || k.stop()).await;
    }
    housekeeping.abort();
    let (rates, rate_state) = (Arc::clone(&shared.rates), shared.rate_state.clone());
    let flushed = tokio::task::spawn_blocking(move || {
        match rates.save(&rate_state) {
            Ok(groups) => tracing::info!(groups, "rate state saved"),
            Err(e) => tracing::warn!(error = %e, "could not save the rate state"),
        }
        store.flush()
    })
    .await;
    if let Ok(Err(e)) = flushed {
        tracing::error!(error = %e, "final flush of the store failed");
    }
    if let Some(d) = demo {
        d.shutdown().await;
    }
    for a in arbiters {
        a.stop();
    }
    actix::System::current().stop();
    tracing::info!("stopped");
    match failed {
        Some(failed) => Err(failed.into()),
        None => Ok(()),
    }
}

/// `/ready` before the first poll finished (a node with no polling plugin is ready at
/// once).
/// Not ready while the external cluster (if any) keeps failing.
fn external_readiness(bus: &Bus) -> crate::http::Readiness {
    let health = bus.external_health();
    Box::new(move || health.as_ref().and_then(|h| h.not_ready()))
}

fn first_poll_readiness(done: Arc<AtomicBool>) -> crate::http::Readiness {
    Box::new(move || {
        (!done.load(std::sync::atomic::Ordering::Acquire))
            .then(|| "first poll cycle not completed yet".to_owned())
    })
}

/// The embedded Kafka broker on `kafka.listen`, unless it is empty.
fn start_kafka(
    settings: &Settings,
    plugins: &Plugins,
    store: &Store,
    telemetry: &Arc<Telemetry>,
) -> Result<Option<crate::kafka::KafkaServer>> {
    let Some(listen) = settings.kafka.listen_addr().map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    if !settings.kafka.brokers.is_empty() {
        tracing::info!(
            listen = %listen,
            "no embedded Kafka listener: the topics are on the external cluster (kafka.brokers)"
        );
        return Ok(None);
    }
    let k = &settings.kafka;
    // Every connection is a file descriptor: room for all of them, and for the store's.
    let wanted = k.max_connections as u64 + 1024;
    let limit = crate::simulate::fdlimit::raise_open_files(wanted);
    if limit < wanted {
        tracing::warn!(
            limit,
            wanted,
            "the open-files limit is below kafka.max_connections + 1024: connections past it fail to be accepted"
        );
    }
    let security = kafka_listener_security(k)?;
    for warning in crate::kafka::security::check_exposure(
        listen,
        k.security,
        &k.sasl_mechanisms,
        k.allow_insecure,
    )
    .map_err(anyhow::Error::new)?
    {
        tracing::warn!("{warning}");
    }
    let config = crate::kafka::BrokerConfig {
        advertised_host: k.advertised_host.clone(),
        advertised_port: k.advertised_port,
        auto_create_topics: k.auto_create_topics,
        auto_create_prefix: k.auto_create_prefix.clone(),
        default_partitions: k.partitions,
        cluster_id: format!("panoptes-{}", settings.site),
        limits: crate::kafka::Limits {
            max_frame_bytes: k.max_frame_bytes,
            max_bytes_in_flight: k.max_bytes_in_flight,
            max_inflated_bytes: k.max_inflated_bytes,
            budget_wait: Duration::from_secs(5),
            max_connections: k.max_connections,
            max_connections_per_ip: k.max_connections_per_ip,
            first_request_timeout: Duration::from_secs(k.first_request_timeout),
            idle_timeout: Duration::from_secs(k.idle_timeout),
            frame_timeout: Duration::from_secs(30),
            max_topics: k.max_topics,
            max_partitions_per_topic: k.max_partitions_per_topic,
            max_partitions: k.max_partitions,
            max_data_bytes: k.max_data_bytes,
            max_groups: k.max_groups,
            max_members_per_group: k.max_members_per_group,
            max_producer_states: k.max_producer_states,
            max_request_partitions: k.max_request_partitions,
        },
        authorizer: crate::kafka::acl::Authorizer {
            acl: k.acl.clone(),
            default_operations: k.default_operations.clone(),
            protected_topics: pipeline_topics(settings, plugins),
            protected_groups: vec![
                crate::agent::resources::GROUP.to_owned(),
                crate::sink::GROUP.to_owned(),
            ],
        },
        security,
    };
    tracing::debug!(
        protected_topics = ?config.authorizer.protected_topics,
        protected_groups = ?config.authorizer.protected_groups,
        "Kafka authorization"
    );
    let broker = crate::kafka::Broker::new(config, store.clone(), Arc::clone(telemetry));
    let server = crate::kafka::KafkaServer::start(listen, broker)?;
    tracing::info!(listen = %server.local_addr, security = k.security.name(), "Kafka listener started");
    Ok(Some(server))
}

/// The topics this node's pipeline writes and reads: only a named principal with an ACL
/// may write to them over the wire.
fn pipeline_topics(settings: &Settings, plugins: &Plugins) -> Vec<String> {
    let mut topics = vec![
        settings.resources_topic(),
        settings.processed_topic(),
        settings.kafka.global_topic_name.clone(),
    ];
    for plugin in &plugins.polling {
        for suffix in &plugin.processed_topics {
            let topic = format!("{}-{suffix}", settings.site);
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
    }
    topics
}

/// The topics this node's pipeline publishes to (as `agent::polling::topics_for` picks
/// them for this site), and the resources topic.
fn published_topics(settings: &Settings, plugins: &Plugins) -> Vec<String> {
    let mut topics = vec![settings.resources_topic()];
    for plugin in &plugins.polling {
        for t in crate::agent::polling::topics_for(&settings.kafka, plugin, &settings.site) {
            if !topics.contains(&t) {
                topics.push(t);
            }
        }
    }
    topics
}

/// The listener's TLS and SASL, from the settings and the secrets file.
fn kafka_listener_security(
    k: &crate::config::KafkaSettings,
) -> Result<crate::kafka::security::ListenerSecurity> {
    let tls = if k.security.tls() {
        Some(crate::tls::server_config(
            std::path::Path::new(k.tls_cert.trim()),
            std::path::Path::new(k.tls_key.trim()),
            ("kafka.tls_cert", "kafka.tls_key"),
        )?)
    } else {
        None
    };
    let sasl = k.security.sasl().then(|| {
        Arc::new(crate::kafka::sasl::SaslServer::new(
            k.sasl_mechanisms.clone(),
            &k.users,
        ))
    });
    Ok(crate::kafka::security::ListenerSecurity {
        protocol: k.security,
        tls,
        sasl,
    })
}

/// Our client's TLS and SASL towards `kafka.brokers`.
fn kafka_client_security(k: &crate::config::KafkaSettings) -> Result<crate::kafka::ClientSecurity> {
    let tls = if k.client_security.tls() {
        Some(crate::tls::client_config(crate::tls::Trust::Only(
            "kafka.client_tls_ca",
            std::path::Path::new(k.client_tls_ca.trim()),
        ))?)
    } else {
        None
    };
    let sasl = k.client_security.sasl().then(|| crate::kafka::ClientSasl {
        mechanism: k.client_sasl_mechanism,
        username: k.client_username.trim().to_owned(),
        password: k.client_password.clone(),
    });
    Ok(crate::kafka::ClientSecurity { tls, sasl })
}

/// `/metrics`: open Kafka connections (the counters are in the telemetry section).
fn kafka_metrics_section(broker: Arc<crate::kafka::Broker>) -> MetricsSection {
    Box::new(move || {
        let open = broker.open_connections() as f64;
        let in_flight = broker.budget.in_use() as f64;
        Box::pin(async move {
            let mut out = String::new();
            crate::telemetry::render_gauge(
                &mut out,
                "panoptes_kafka_open_connections",
                "Client connections open on the Kafka listener.",
                &[(vec![], open)],
            );
            crate::telemetry::render_gauge(
                &mut out,
                "panoptes_kafka_bytes_in_flight",
                "Bytes of Kafka requests held in memory (frames and inflated records), of kafka.max_bytes_in_flight.",
                &[(vec![], in_flight)],
            );
            out
        })
    })
}

async fn start_demo(settings: &Settings) -> Result<SimulatorHandle> {
    let (text, source) = if settings.demo.recording.is_empty() {
        (
            DEMO_RECORDING.to_string(),
            "built-in demo switch48.snmprec".to_string(),
        )
    } else {
        let path = &settings.demo.recording;
        (
            std::fs::read_to_string(path).with_context(|| format!("demo.recording {path}"))?,
            path.clone(),
        )
    };
    let recording = Arc::new(Recording::parse(&text, &source)?);
    let device = DeviceConfig::new(
        settings.demo.listen,
        recording,
        settings.demo.community.clone(),
    );
    let handle = Simulator::spawn(SimulatorConfig::new(CounterMode::Advancing).with_device(device))
        .await
        .with_context(|| {
            format!(
                "starting the demo SNMP device on {} (set demo.enabled = false or PANOPTES__DEMO__LISTEN)",
                settings.demo.listen
            )
        })?;
    tracing::info!(listen = ?handle.local_addrs(), "demo device (simulated 48-port switch) is up");
    Ok(handle)
}

/// TTL sweeps every 5 s; topic retention every 10 s (a big fleet appends tens of MB a
/// second); the rate state's sweep every minute.
async fn housekeeping(
    store: Store,
    rates: Arc<crate::transform::RateStore>,
    bus: Bus,
    settings: Settings,
    telemetry: Arc<Telemetry>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut rounds: u64 = 0;
    loop {
        tick.tick().await;
        rounds += 1;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.sweep_expired()).await {
            Ok(Ok(count)) => KeysExpired { count }.emit(&telemetry),
            Ok(Err(e)) => tracing::warn!(error = %e, "TTL sweep failed"),
            Err(e) => tracing::warn!(error = %e, "TTL sweep task failed"),
        }
        if rounds % 12 == 0 {
            let rates = Arc::clone(&rates);
            let _ = tokio::task::spawn_blocking(move || {
                rates.sweep();
            })
            .await;
        }
        if rounds % 2 == 0 {
            let (bus, retention) = (bus.clone(), settings.retention.clone());
            let _ = tokio::task::spawn_blocking(move || {
                let age = (retention.max_age_hours > 0).then(|| Duration::from_secs(retention.max_age_hours * 3600));
                let bytes = (retention.max_partition_mib > 0).then_some(retention.max_partition_mib << 20);
                for name in bus.store().topic_names().unwrap_or_default() {
                    match bus.topic(&name).and_then(|t| t.apply_retention(age, bytes)) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(topic = %name, records = n, "retention removed old records"),
                        Err(e) => tracing::warn!(topic = %name, error = %e, "retention failed"),
                    }
                }
            })
            .await;
        }
    }
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `/metrics` sections for the pool, the schedulers, the consumers and the store.
fn metrics_sections(
    pool: &Arc<panoptes_actors::PoolStats>,
    schedulers: &[Addr<Scheduler>],
    consumers: &[Addr<Consumer<crate::agent::resources::Item>>],
    sink: &crate::sink::Running,
    shared: &Arc<Shared>,
    store: &Store,
) -> Vec<MetricsSection> {
    let mut sections: Vec<MetricsSection> = Vec::new();
    sections.push(Box::new(|| {
        Box::pin(async move {
            let mut out = String::new();
            if let Ok(engine) = crate::snmp::SnmpEngine::global() {
                for (name, help, is_counter, value) in engine.stats().metrics() {
                    let kind = if is_counter { "counter" } else { "gauge" };
                    let full = format!("panoptes_{name}");
                    let _ = writeln!(
                        out,
                        "# HELP {full} {help}\n# TYPE {full} {kind}\n{full} {value}"
                    );
                }
            }
            out
        })
    }));
    let pool = Arc::clone(pool);
    sections.push(Box::new(move || {
        let s = pool.snapshot();
        Box::pin(async move {
            let mut out = String::new();
            render_gauge(
                &mut out,
                "panoptes_pool_in_flight",
                "Plugin runs executing now.",
                &[(vec![], s.running as f64)],
            );
            render_gauge(
                &mut out,
                "panoptes_pool_queue_depth",
                "Plugin runs waiting for a free slot.",
                &[(vec![], s.queued as f64)],
            );
            render_family(
                &mut out,
                "panoptes_pool_shed_total",
                "Plugin runs shed because the queue was full.",
                "counter",
                &[(vec![], s.shed as f64)],
            );
            out
        })
    }));
    let schedulers = schedulers.to_vec();
    sections.push(Box::new(move || {
        let schedulers = schedulers.clone();
        Box::pin(async move {
            let mut runs = Vec::new();
            let mut polls = Vec::new();
            let mut keys = Vec::new();
            let mut plans = Vec::new();
            let mut plan_seconds = Vec::new();
            for addr in schedulers {
                let Ok(stats) = addr.send(GetSchedulerStats).await else {
                    continue;
                };
                keys.push((vec![("kind", stats.name.clone())], stats.keys as f64));
                plans.push((vec![("kind", stats.name.clone())], stats.plans as f64));
                plan_seconds.push((
                    vec![("kind", stats.name.clone())],
                    stats.plan_us as f64 / 1e6,
                ));
                for (plugin, g) in &stats.groups {
                    for (outcome, n) in [
                        ("succeeded", g.runs.succeeded),
                        ("failed", g.runs.failed),
                        ("timed_out", g.runs.timed_out),
                        ("shed", g.runs.shed),
                    ] {
                        runs.push((
                            vec![
                                ("kind", stats.name.clone()),
                                ("plugin", plugin.clone()),
                                ("outcome", outcome.to_string()),
                            ],
                            n as f64,
                        ));
                    }
                }
                if stats.name == "polling" {
                    let r = &stats.runs;
                    for (outcome, n) in [
                        ("succeeded", r.succeeded),
                        ("failed", r.failed),
                        ("timed_out", r.timed_out),
                        ("shed", r.shed),
                    ] {
                        polls.push((vec![("outcome", outcome.to_string())], n as f64));
                    }
                }
            }
            let mut out = String::new();
            render_family(
                &mut out,
                "panoptes_plugin_runs_total",
                "Plugin runs by kind, plugin and outcome.",
                "counter",
                &runs,
            );
            render_family(
                &mut out,
                "panoptes_polls_total",
                "Polls (polling plugin runs) by outcome.",
                "counter",
                &polls,
            );
            render_gauge(
                &mut out,
                "panoptes_scheduled_work",
                "Plugin x resource pairs scheduled, by kind.",
                &keys,
            );
            render_family(
                &mut out,
                "panoptes_scheduler_plans_total",
                "Schedules built from the resource store (periodic rescans and changes).",
                "counter",
                &plans,
            );
            render_family(
                &mut out,
                "panoptes_scheduler_plan_seconds_total",
                "Time spent building and applying schedules, by kind.",
                "counter",
                &plan_seconds,
            );
            out
        })
    }));
    let (consumers, sink) = (consumers.to_vec(), sink.clone());
    sections.push(Box::new(move || {
        // The sink's consumers change with its group's assignment.
        let consumers: Vec<_> = consumers
            .iter()
            .cloned()
            .chain(sink.current().into_iter().map(|(_, a)| a))
            .collect();
        Box::pin(async move {
            let mut lag = Vec::new();
            for addr in consumers {
                if let Ok(stats) = addr.send(GetConsumerStats).await {
                    lag.push((
                        vec![("consumer", stats.name.clone())],
                        stats.lag.unwrap_or(0) as f64,
                    ));
                }
            }
            let mut out = String::new();
            render_gauge(
                &mut out,
                "panoptes_consumer_lag",
                "Records behind the end of the topic, per consumer.",
                &lag,
            );
            out
        })
    }));
    let (shared, store) = (Arc::clone(shared), store.clone());
    sections.push(Box::new(move || {
        let (shared, store) = (Arc::clone(&shared), store.clone());
        Box::pin(async move {
            let stats = tokio::task::spawn_blocking(move || {
                let resources = shared.resources.all().map(|r| r.len()).unwrap_or(0);
                (resources, store.stats(), store.health())
            })
            .await;
            let mut out = String::new();
            let Ok((resources, Ok(stats), health)) = stats else {
                return out;
            };
            render_gauge(
                &mut out,
                "panoptes_resources",
                "Resources held by the resource manager.",
                &[(vec![], resources as f64)],
            );
            crate::http::render_store(&mut out, &stats, &health);
            out
        })
    }));
    sections
}

/// How the HTTP listener is served, from `http.*`; warns about an open non-loopback one.
fn http_listener(http: &crate::config::HttpSettings) -> Result<crate::http::Listener> {
    let tls = if http.tls() {
        Some(Arc::unwrap_or_clone(crate::tls::server_config(
            std::path::Path::new(http.tls_cert.trim()),
            std::path::Path::new(http.tls_key.trim()),
            ("http.tls_cert", "http.tls_key"),
        )?))
    } else {
        None
    };
    if !http.listen.ip().is_loopback() && http.token.is_empty() {
        tracing::warn!(listen = %http.listen, "the HTTP API listens beyond loopback with no token (http.allow_insecure): anyone who reaches it can read it");
    }
    Ok(crate::http::Listener {
        listen: http.listen,
        tls,
        max_connections: http.max_connections,
    })
}
