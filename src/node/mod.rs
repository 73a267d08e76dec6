//! `panoptes run`: loads configuration and plugins (refusing to start on any error), opens
//! the store, starts the demo device, the schedulers, the poller pool, the resource
//! manager's consumer, the trap receiver and the InfluxDB sink (when configured) and the
//! HTTP server, and shuts them down cleanly on SIGINT/SIGTERM.
//!
//! [`run_node`] is the list of steps, in order; each step lives in the file named after
//! what it builds: `kafka` (the embedded listener, or the external cluster, and the bus),
//! `pipeline` (shared state, poller pool, schedulers, resource manager), `demo`, `web`
//! (the HTTP listener and `/ready`), `metrics` (the `/metrics` sections), `chores`
//! (housekeeping, signals).

mod chores;
mod demo;
mod kafka;
mod metrics;
mod pipeline;
mod reload;
mod status;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use anyhow::{Context, Result};
use panoptes_actors::{Drain, Job, PoolStats, Scheduler};
use panoptes_storage::Store;

use crate::bus::Bus;
use crate::cluster::{ClusterView, Joined, Ownership};
use crate::config::{load_plugin_dir, PluginConfig, PluginKind, Settings};
use crate::http::AppState;
use crate::plugins::BuiltIn;
use crate::simulate::SimulatorHandle;
use crate::telemetry::Telemetry;
use pipeline::{Pool, Schedulers};

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
        let p = &settings.plugins;
        if [&p.discovery, &p.enrichment, &p.polling]
            .iter()
            .any(|dirs| dirs.iter().any(|d| crate::config::embedded::is_embedded(d)))
        {
            tracing::info!(
                cwd = %std::env::current_dir().unwrap_or_default().display(),
                "conf/plugins is not in the current directory: using the plugin files built into the binary (set plugins.discovery/enrichment/polling to use your own)"
            );
        }
        Ok(Plugins {
            discovery: load(&settings.plugins.discovery, PluginKind::Discovery)?,
            enrichment: load(&settings.plugins.enrichment, PluginKind::Enrichment)?,
            polling: load(&settings.plugins.polling, PluginKind::Polling)?,
        })
    }
}

/// Wraps each job the node builds, given the id of the resource it runs for (the
/// benchmark times polls this way).
pub type JobWrapper = Arc<dyn Fn(&str, Arc<dyn Job>) -> Arc<dyn Job> + Send + Sync>;

/// Wrappers of the node's polling and enrichment jobs, for a caller embedding the node.
#[derive(Clone, Default)]
pub struct JobWrappers {
    pub polling: Option<JobWrapper>,
    pub enrichment: Option<JobWrapper>,
}

fn wrapped(wrap: &Option<JobWrapper>, resource_id: &str, job: Arc<dyn Job>) -> Arc<dyn Job> {
    match wrap {
        Some(wrap) => wrap(resource_id, job),
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
    /// The rate state, for its size in the memory breakdown.
    pub rates: Arc<crate::transform::RateStore>,
}

pub fn run(settings: Settings) -> Result<()> {
    run_until(settings, JobWrappers::default(), |_| {
        chores::wait_for_shutdown()
    })
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
    web::listener(&settings.http)?;
    let system = actix::System::new();
    let result = system.block_on(async move {
        run_node(settings, plugins, store, started, wrappers, until).await
    });
    result
}

/// The node, step by step; then, once `until` completes (or the store fails), the
/// shutdown in the reverse order of need.
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
    let telemetry = Arc::new(Telemetry::default());
    let pipeline = Pipeline::start(&settings, &plugins, &store, &telemetry, wrappers).await?;
    let reloader = Arc::new(reload::Reloader::new(
        &settings,
        Arc::clone(&pipeline.shared),
        pipeline.schedulers.clone(),
        pipeline.traps.as_ref().map(|t| t.credentials()),
    ));
    let on_sighup = actix::spawn(reload::on_sighup(Arc::clone(&reloader)));
    let (http, http_addr) = serve_http(&settings, &pipeline, &store, &telemetry, reloader)?;
    let housekeeping = actix::spawn(chores::housekeeping(
        store.clone(),
        Arc::clone(&pipeline.shared.rates),
        pipeline.bus.clone(),
        settings.clone(),
        Arc::clone(&telemetry),
    ));
    tracing::info!(
        http = %http_addr,
        site = %settings.site,
        data_dir = %settings.data_dir.display(),
        demo = ?pipeline.demo.as_ref().map(|d| d.local_addrs()),
        kafka = ?pipeline.kafka.as_ref().map(|k| k.local_addr),
        traps = ?pipeline.traps.as_ref().map(|t| t.local_addr),
        startup_ms = started.elapsed().as_millis() as u64,
        "panoptes is running"
    );
    crate::sd_notify::notify("READY=1");
    let view = NodeView {
        pool: Arc::clone(&pipeline.pool.stats),
        discovery: pipeline.schedulers.discovery.clone(),
        enrichment: pipeline.schedulers.enrichment.clone(),
        polling: pipeline.schedulers.polling.clone(),
        telemetry: Arc::clone(&telemetry),
        bus: pipeline.bus.clone(),
        rates: Arc::clone(&pipeline.shared.rates),
    };
    let failed = tokio::select! {
        () = until(view) => None,
        failed = crate::store_watch::watch(store.clone()) => Some(failed),
    };
    on_sighup.abort();
    crate::sd_notify::notify("STOPPING=1");
    pipeline.stop(http, housekeeping, store).await;
    match failed {
        Some(failed) => Err(failed.into()),
        None => Ok(()),
    }
}

/// Everything that runs, from the Kafka listener to the InfluxDB sink.
struct Pipeline {
    kafka: Option<crate::kafka::KafkaServer>,
    bus: Bus,
    shared: Arc<crate::agent::Shared>,
    demo: Option<SimulatorHandle>,
    pool: Pool,
    schedulers: Schedulers,
    joined: Option<Joined>,
    consumers: Vec<Addr<panoptes_actors::Consumer<crate::agent::resources::Item>>>,
    traps: Option<crate::traps::TrapReceiver>,
    sink: crate::sink::Running,
    cluster: ClusterView,
}

impl Pipeline {
    /// Starts every stage, in the order each needs the one before.
    async fn start(
        settings: &Settings,
        plugins: &Plugins,
        store: &Store,
        telemetry: &Arc<Telemetry>,
        wrappers: JobWrappers,
    ) -> Result<Pipeline> {
        let snmp = crate::snmp::SnmpEngine::init_global(settings.snmp.engine_config())
            .context("starting the SNMP engine")?;
        tracing::debug!(config = ?snmp.config(), "SNMP engine started");
        // Listeners are bound before any actor starts: a taken port is then a plain
        // error, not an error while the actors are being torn down.
        let kafka = kafka::start_listener(settings, plugins, store, telemetry)?;
        let trap_socket = crate::traps::bind(&settings.traps)?;
        let bus = kafka::open_bus(settings, plugins, store, telemetry).await?;
        let node_id = crate::cluster::node_id(&settings.cluster.node_id);
        let ownership = Arc::new(if settings.cluster.enabled {
            Ownership::member()
        } else {
            Ownership::alone()
        });
        let shared =
            pipeline::shared_state(settings, plugins, &bus, store, telemetry, &ownership).await?;
        let demo = demo::start_if_enabled(settings).await?;
        let pool = Pool::start(settings, snmp);
        let schedulers = Schedulers::start(settings, plugins, &shared, &pool.addr, wrappers);
        let joined = join_cluster(settings, &bus, &ownership, &node_id, &schedulers).await?;
        let consumers = pipeline::start_resource_manager(settings, &bus, &shared, &node_id).await?;
        let traps = match trap_socket {
            Some(socket) => Some(start_traps(socket, settings, store, &shared).await?),
            None => None,
        };
        let sink = crate::sink::start(
            &settings.influxdb,
            &bus,
            &settings.processed_topics(),
            &settings.influx_trap_topics(),
            telemetry,
            joined.as_ref().and_then(|j| j.sink.clone()),
        )
        .await
        .context("starting the InfluxDB sink")?;
        let cluster = ClusterView {
            node: node_id,
            ownership,
            resources: shared.resources.clone(),
            work: joined.as_ref().map(|j| j.work.clone()),
            sink: joined.as_ref().and_then(|j| j.sink.clone()),
            sink_running: sink.clone(),
        };
        Ok(Pipeline {
            kafka,
            bus,
            shared,
            demo,
            pool,
            schedulers,
            joined,
            consumers,
            traps,
            sink,
            cluster,
        })
    }

    /// Leaves the cluster first (the other nodes take this one's devices while it
    /// finishes its runs), lets running plugin runs finish, stops the listeners, saves
    /// the rate state and flushes the store, then stops the demo device and the threads.
    async fn stop(
        self,
        http: actix_web::dev::ServerHandle,
        housekeeping: tokio::task::JoinHandle<()>,
        store: Store,
    ) {
        tracing::info!("shutting down: letting running plugin runs finish");
        if let Some(j) = self.joined {
            j.leave().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.pool.addr.send(Drain)).await;
        http.stop(true).await;
        if let Some(t) = self.traps {
            // Publishes (and acknowledges) what it accepted before the store's last flush.
            t.stop().await;
        }
        if let Some(k) = self.kafka {
            // Joins the listener's thread: off the node's own runtime.
            let _ = tokio::task::spawn_blocking(move || k.stop()).await;
        }
        housekeeping.abort();
        let (rates, rate_state) = (
            Arc::clone(&self.shared.rates),
            self.shared.rate_state.clone(),
        );
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
        if let Some(d) = self.demo {
            d.shutdown().await;
        }
        self.pool.stop();
        actix::System::current().stop();
        tracing::info!("stopped");
    }
}

/// The trap receiver on its socket (bound with the other listeners), publishing through
/// the pipeline's producer and naming resources from its keyspace.
async fn start_traps(
    socket: std::net::UdpSocket,
    settings: &Settings,
    store: &Store,
    shared: &crate::agent::Shared,
) -> Result<crate::traps::TrapReceiver> {
    let wiring = crate::traps::Wiring {
        topic: settings.traps_topic(),
        site_topics: settings
            .served_sites()
            .into_iter()
            .map(|site| {
                let topic = format!("{site}-traps");
                (site.into_string(), topic)
            })
            .collect(),
        publisher: shared.publisher.clone(),
        resources: shared.resources.clone(),
        store: store.clone(),
        telemetry: Arc::clone(&shared.telemetry),
        // Names from the node's MIBs (built in, and [mibs] dirs).
        names: Arc::new(crate::traps::names::MibNames(crate::mib::installed())),
    };
    crate::traps::TrapReceiver::start(socket, &settings.traps, wiring)
        .await
        .context("starting the trap receiver")
}

/// The HTTP server: health, readiness, the `/metrics` sections of every stage, the API.
fn serve_http(
    settings: &Settings,
    p: &Pipeline,
    store: &Store,
    telemetry: &Arc<Telemetry>,
    reloader: Arc<reload::Reloader>,
) -> Result<(actix_web::dev::ServerHandle, std::net::SocketAddr)> {
    let mut sections = vec![
        metrics::snmp_engine(),
        metrics::pool(&p.pool.stats),
        metrics::schedulers(p.schedulers.all()),
        metrics::consumer_lag(p.consumers.clone(), p.sink.clone()),
        metrics::store(&p.shared, store),
        metrics::memory(&p.shared.rates),
        crate::sink::metrics_section(p.sink.clone()),
        metrics::cluster(p.cluster.clone()),
    ];
    if let Some(k) = &p.kafka {
        sections.push(metrics::kafka_listener(Arc::clone(&k.broker)));
    }
    let state = AppState {
        version: env!("CARGO_PKG_VERSION"),
        site: settings.site.clone(),
        sites: settings.served_sites(),
        bus: p.bus.clone(),
        resources: p.shared.resources.clone(),
        telemetry: Arc::clone(telemetry),
        readiness: vec![
            web::first_poll_readiness(Arc::clone(&p.shared.ready)),
            crate::store_watch::readiness(store.clone()),
            web::external_readiness(&p.bus),
        ],
        metrics_sections: sections,
        token: settings.http.token.clone(),
        long_polls: Arc::new(tokio::sync::Semaphore::new(settings.http.max_long_polls)),
        cluster: p.cluster.clone(),
        reload: Some(reloader),
        status: Some(status::sources(p, store, settings)),
        device_metrics: crate::http::devices::DeviceMetrics::new(
            Arc::clone(&p.shared.fleet),
            settings.processed_topics(),
            settings.data_dir.clone(),
        ),
    };
    let (server, bound) = crate::http::serve(Arc::new(state), web::listener(&settings.http)?)?;
    let handle = server.handle();
    actix::spawn(server);
    Ok((handle, bound))
}

/// A node of a cluster joins its site's groups: what it owns follows the assignment, and
/// every change of it makes the schedulers plan again.
async fn join_cluster(
    settings: &Settings,
    bus: &Bus,
    ownership: &Arc<Ownership>,
    node_id: &str,
    schedulers: &Schedulers,
) -> Result<Option<Joined>> {
    let Some(cluster) = bus.external_cluster().filter(|_| ownership.is_cluster()) else {
        return Ok(None);
    };
    let schedulers = schedulers.all();
    let joining = crate::cluster::Joining {
        settings,
        cluster: &cluster,
        security: kafka::client_security(&settings.kafka)?,
        node: node_id.to_owned(),
        ownership: Arc::clone(ownership),
        on_change: Box::new(move || {
            for s in &schedulers {
                s.do_send(panoptes_actors::Rescan);
            }
        }),
    };
    let joined = crate::cluster::start(joining, settings.influxdb.enabled())
        .await
        .context("joining the site's cluster")?;
    Ok(Some(joined))
}
