//! The node's sections of `/metrics`: each gathers one part's typed stats (the SNMP
//! engine, the poller pool, the schedulers, the consumers, the store, the Kafka listener,
//! the cluster) and hands them to its renderer in `crate::http::metrics`.

use std::sync::Arc;

use actix::Addr;
use panoptes_actors::{Consumer, GetConsumerStats, GetSchedulerStats, PoolStats, Scheduler};
use panoptes_storage::Store;

use crate::agent::Shared;
use crate::http::metrics as render;
use crate::http::MetricsSection;

/// A section from a function that renders into a string, asked on every scrape.
fn section<F, Fut>(make: F) -> MetricsSection
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + 'static,
{
    Box::new(move || Box::pin(make()))
}

/// The SNMP engine's sockets, requests and replies.
pub(super) fn snmp_engine() -> MetricsSection {
    section(|| async {
        let mut out = String::new();
        if let Ok(engine) = crate::snmp::SnmpEngine::global() {
            render::render_snmp_engine(&mut out, &engine.stats());
        }
        out
    })
}

/// Where the process's memory goes (see [`crate::memory::Breakdown`]).
pub(super) fn memory(rates: &Arc<crate::transform::RateStore>) -> MetricsSection {
    let rates = Arc::clone(rates);
    section(move || {
        let breakdown = crate::memory::Breakdown::now(rates.heap_bytes());
        async move {
            let mut out = String::new();
            render::render_memory(&mut out, &breakdown);
            out
        }
    })
}

/// The poller pool.
pub(super) fn pool(stats: &Arc<PoolStats>) -> MetricsSection {
    let stats = Arc::clone(stats);
    section(move || {
        let snapshot = stats.snapshot();
        async move {
            let mut out = String::new();
            render::render_pool(&mut out, &snapshot);
            out
        }
    })
}

/// The schedulers' runs, polls, scheduled work and planning.
pub(super) fn schedulers(schedulers: Vec<Addr<Scheduler>>) -> MetricsSection {
    section(move || {
        let schedulers = schedulers.clone();
        async move {
            let mut stats = Vec::new();
            for addr in schedulers {
                if let Ok(s) = addr.send(GetSchedulerStats).await {
                    stats.push(s);
                }
            }
            let mut out = String::new();
            render::render_schedulers(&mut out, &stats);
            out
        }
    })
}

/// Consumer lag: the resource manager's consumers and the InfluxDB sink's (which change
/// with its group's assignment).
pub(super) fn consumer_lag(
    consumers: Vec<Addr<Consumer<crate::agent::resources::Item>>>,
    sink: crate::sink::Running,
) -> MetricsSection {
    section(move || {
        let resource_manager = consumers.clone();
        let sink: Vec<_> = sink.current().into_iter().map(|(_, a)| a).collect();
        async move {
            let mut stats = Vec::new();
            for addr in resource_manager {
                if let Ok(s) = addr.send(GetConsumerStats).await {
                    stats.push(s);
                }
            }
            for addr in sink {
                if let Ok(s) = addr.send(GetConsumerStats).await {
                    stats.push(s);
                }
            }
            let mut out = String::new();
            render::render_consumer_lag(&mut out, &stats);
            out
        }
    })
}

/// Resources held, and the store's sizes, counters and health.
pub(super) fn store(shared: &Arc<Shared>, store: &Store) -> MetricsSection {
    let (shared, store) = (Arc::clone(shared), store.clone());
    section(move || {
        let (shared, store) = (Arc::clone(&shared), store.clone());
        async move {
            let stats = tokio::task::spawn_blocking(move || {
                let resources = shared.resources.shared().map(|r| r.len()).unwrap_or(0);
                (resources, store.stats(), store.health())
            })
            .await;
            let mut out = String::new();
            if let Ok((resources, Ok(stats), health)) = stats {
                render::render_resources(&mut out, resources);
                crate::http::render_store(&mut out, &stats, &health);
            }
            out
        }
    })
}

/// The embedded Kafka listener's connections and memory (its counters are in the
/// telemetry section).
pub(super) fn kafka_listener(broker: Arc<crate::kafka::Broker>) -> MetricsSection {
    section(move || {
        let (open, in_flight) = (broker.open_connections(), broker.budget.in_use());
        async move {
            let mut out = String::new();
            render::render_kafka_listener(&mut out, open, in_flight);
            out
        }
    })
}

/// The cluster's members, partitions and devices.
pub(super) fn cluster(view: crate::cluster::ClusterView) -> MetricsSection {
    section(move || {
        let view = view.clone();
        async move {
            let mut out = String::new();
            view.render_metrics(&mut out).await;
            out
        }
    })
}
