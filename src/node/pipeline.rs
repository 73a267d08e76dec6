//! The pipeline's pieces, built from the settings: the state every stage shares, the
//! poller pool, the three schedulers (discovery, enrichment, polling) and the resource
//! manager's consumers.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::{Actor, Addr, Arbiter};
use anyhow::{Context, Result};
use panoptes_actors::{
    Consumer, ConsumerConfig, Job, PollerPool, PoolConfig, PoolStats, Scheduler, SchedulerConfig,
};
use panoptes_storage::Store;

use super::{wrapped, JobWrappers, Plugins};
use crate::agent::discovery::DiscoveryPlanner;
use crate::agent::enrichment::EnrichmentJob;
use crate::agent::polling::PollingJob;
use crate::agent::resources::{ReconcileSink, GROUP};
use crate::agent::{JobFactory, PluginList, ResourcePlanner, Shared};
use crate::bus::Bus;
use crate::cluster::Ownership;
use crate::config::{PluginConfig, Settings};
use crate::resource_manager::ResourceStore;
use crate::telemetry::Telemetry;

/// The state every stage shares; the rate state of the previous run is loaded into it.
pub(super) async fn shared_state(
    settings: &Settings,
    plugins: &Plugins,
    bus: &Bus,
    store: &Store,
    telemetry: &Arc<Telemetry>,
    ownership: &Arc<Ownership>,
) -> Result<Arc<Shared>> {
    let shared = Arc::new(Shared {
        bus: bus.clone(),
        resources: ResourceStore::new(store.keyspace("resources")?),
        enrichments: store.keyspace("enrichments")?,
        rate_state: store.keyspace("rate_state")?,
        rates: Arc::default(),
        publisher: crate::agent::publisher::Publisher::start(bus.clone())
            .context("starting the publisher thread")?,
        telemetry: Arc::clone(telemetry),
        fleet: Arc::default(),
        ownership: Arc::clone(ownership),
        ready: Arc::new(AtomicBool::new(plugins.polling.is_empty())),
        enrichment_scheduler: OnceLock::new(),
        polling_scheduler: OnceLock::new(),
        snmp: std::sync::RwLock::new(Arc::new(crate::agent::SiteSnmp::of(settings))),
        settings: settings.clone(),
    });
    let (rates, rate_state) = (Arc::clone(&shared.rates), shared.rate_state.clone());
    match tokio::task::spawn_blocking(move || rates.load(&rate_state)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(groups)) => tracing::info!(groups, "rate state of the previous run loaded"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not load the saved rate state"),
        Err(e) => tracing::warn!(error = %e, "loading the saved rate state failed"),
    }
    Ok(shared)
}

/// The poller pool: jobs run on one arbiter per core (`scheduler.workers`), off the
/// schedulers' thread.
pub(super) struct Pool {
    pub addr: Addr<PollerPool>,
    pub stats: Arc<PoolStats>,
    pub arbiters: Vec<Arbiter>,
}

impl Pool {
    pub fn start(settings: &Settings, snmp: &'static crate::snmp::SnmpEngine) -> Pool {
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
            arbiter.spawn(async move {
                if let Err(e) = snmp.serve_this_thread() {
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
        let stats = pool.stats();
        Pool {
            addr: pool.start(),
            stats,
            arbiters,
        }
    }

    pub fn stop(self) {
        for a in self.arbiters {
            a.stop();
        }
    }
}

/// The three schedulers.
#[derive(Clone)]
pub(super) struct Schedulers {
    pub discovery: Addr<Scheduler>,
    pub enrichment: Addr<Scheduler>,
    pub polling: Addr<Scheduler>,
    /// The plugins each plans with (a reload replaces them).
    pub plugins: PluginLists,
}

/// The plugins the schedulers plan with, by kind.
#[derive(Clone)]
pub(super) struct PluginLists {
    pub discovery: PluginList,
    pub enrichment: PluginList,
    pub polling: PluginList,
}

impl Schedulers {
    pub fn start(
        settings: &Settings,
        plugins: &Plugins,
        shared: &Arc<Shared>,
        pool: &Addr<PollerPool>,
        wrappers: JobWrappers,
    ) -> Schedulers {
        let config = SchedulerConfig {
            rescan_interval: Duration::from_secs(settings.plugins.scan_interval),
            first_run_spread: Duration::from_secs(settings.scheduler.first_run_spread),
            ..SchedulerConfig::default()
        };
        let lists = PluginLists {
            discovery: PluginList::new(plugins.discovery.clone()),
            enrichment: PluginList::new(plugins.enrichment.clone()),
            polling: PluginList::new(plugins.polling.clone()),
        };
        let planner = |plugins: &PluginList, factory| {
            ResourcePlanner::new(Arc::clone(shared), plugins.clone(), factory)
        };
        let enrichment = Scheduler::new(
            "enrichment",
            planner(
                &lists.enrichment,
                enrichment_jobs(shared, wrappers.enrichment),
            ),
            pool.clone(),
            SchedulerConfig {
                // A new device's first poll waits for its first enrichment and runs right
                // after it (see panoptes_actors::scheduler): enrichments of a new fleet
                // spread over the first three quarters of the spread leave the polls
                // waiting for them room to start within it too.
                first_run_spread: config.first_run_spread * 3 / 4,
                ..config.clone()
            },
        )
        .start();
        let polling = Scheduler::new(
            "polling",
            planner(&lists.polling, polling_jobs(shared, wrappers.polling)),
            pool.clone(),
            SchedulerConfig {
                // In a cluster a device that moves here is first polled on its place in
                // the interval, where its previous owner polled it: one interval after
                // its last poll, never twice in one.
                first_run_spread: if shared.ownership.is_cluster() {
                    Duration::from_secs(86_400)
                } else {
                    config.first_run_spread
                },
                // A device that moves here waits for its enrichment here too: it must not
                // then be polled at once, its previous owner may have polled it this
                // interval.
                run_lifted_at_once: !shared.ownership.is_cluster(),
                ..config.clone()
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
                shared: Arc::clone(shared),
                plugins: lists.discovery.clone(),
            },
            pool.clone(),
            // Discovery starts at once: everything else waits for its resources.
            SchedulerConfig {
                first_run_spread: Duration::ZERO,
                ..config
            },
        )
        .start();
        Schedulers {
            discovery,
            enrichment,
            polling,
            plugins: lists,
        }
    }

    pub fn all(&self) -> Vec<Addr<Scheduler>> {
        vec![
            self.discovery.clone(),
            self.enrichment.clone(),
            self.polling.clone(),
        ]
    }
}

fn enrichment_jobs(shared: &Arc<Shared>, wrap: Option<super::JobWrapper>) -> JobFactory {
    let shared = Arc::clone(shared);
    Arc::new(move |plugin, resource: Arc<crate::model::Resource>| {
        let job = Arc::new(EnrichmentJob {
            shared: Arc::clone(&shared),
            plugin,
            resource: Arc::clone(&resource),
        });
        wrapped(&wrap, &resource.id, job)
    })
}

fn polling_jobs(shared: &Arc<Shared>, wrap: Option<super::JobWrapper>) -> JobFactory {
    let shared = Arc::clone(shared);
    Arc::new(move |plugin: Arc<PluginConfig>, resource| {
        let include_interface_index = plugin.flag("dimension", "include_interface_index");
        let job: Arc<dyn Job> = Arc::new(PollingJob {
            shared: Arc::clone(&shared),
            plugin,
            resource: Arc::clone(&resource),
            include_interface_index,
        });
        wrapped(&wrap, &resource.id, job)
    })
}

/// The resource manager: one consumer per partition of each served site's
/// `<site>-resources`. Every node of a cluster reads every resource set, so each has a
/// group of its own.
pub(super) async fn start_resource_manager(
    settings: &Settings,
    bus: &Bus,
    shared: &Arc<Shared>,
    node_id: &str,
) -> Result<Vec<Addr<Consumer<crate::agent::resources::Item>>>> {
    let group = if shared.ownership.is_cluster() {
        format!("{GROUP}.{node_id}")
    } else {
        GROUP.to_owned()
    };
    let mut consumers = Vec::new();
    for topic in settings.resources_topics() {
        let sources = bus
            .sources(&topic, &group)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("opening the resources topic {topic}"))?;
        for (partition, source) in sources.into_iter().enumerate() {
            let consumer = Consumer::new(
                format!("resource_manager:{topic}:{partition}"),
                source,
                ReconcileSink {
                    shared: Arc::clone(shared),
                },
                ConsumerConfig {
                    max_emit_interval: Duration::ZERO,
                    ..ConsumerConfig::default()
                },
            )
            .start();
            consumers.push(consumer);
        }
    }
    Ok(consumers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use panoptes_actors::{Job, NoopJob, Planner};

    /// The embedded defaults' enrichment and polling plans of one switch: each key reads
    /// `<kind>:<plugin>:<serialization key>` (the text logs show and phases hash), and the
    /// two schedulers' keys of the switch hold one copy of its serialization key.
    #[actix::test]
    async fn work_keys_name_kind_plugin_and_resource_and_share_the_resource_part() {
        let settings = Settings::load(None).unwrap();
        let plugins = Plugins::load(&settings).unwrap();
        let store = Store::memory();
        let bus = Bus::new(store.clone(), 1);
        let telemetry = Arc::new(Telemetry::default());
        let ownership = Arc::new(Ownership::alone());
        let shared = shared_state(&settings, &plugins, &bus, &store, &telemetry, &ownership)
            .await
            .unwrap();
        let switch = crate::model::test_switch();
        shared.resources.put(&switch).unwrap();
        let factory: JobFactory = Arc::new(|_, _| Arc::new(NoopJob) as Arc<dyn Job>);
        let mut plans = Vec::new();
        for list in [&plugins.enrichment, &plugins.polling] {
            let mut planner = ResourcePlanner::new(
                Arc::clone(&shared),
                PluginList::new(list.clone()),
                Arc::clone(&factory),
            );
            plans.push(planner.plan().await);
        }
        let [enrichment, polling] = &plans[..] else {
            unreachable!()
        };
        assert!(!enrichment.is_empty() && !polling.is_empty());
        let serialization_key = switch.serialization_key();
        for (items, kind) in [(enrichment, "enrichment"), (polling, "polling")] {
            for item in items {
                let text = format!("{kind}:{}:{serialization_key}", item.group);
                assert_eq!(item.key.to_string(), text);
                assert!(item.key == text.as_str());
                assert_eq!(&**item.key.subject(), serialization_key);
            }
        }
        assert!(Arc::ptr_eq(
            enrichment[0].key.subject(),
            polling[0].key.subject()
        ));
    }
}
