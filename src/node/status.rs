//! What the status page's pipeline view shows, gathered from the running stages: plugins
//! and their runs, topics and consumer lag, the InfluxDB sink, storage, the cluster.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use panoptes_actors::{Consumer, GetConsumerStats, GetSchedulerStats, Scheduler};
use panoptes_storage::{Health, Store};

use super::pipeline::PluginLists;
use crate::cluster::ClusterView;
use crate::http::status::{PipelineSource, Table};

pub(super) struct Pipeline {
    pub schedulers: Vec<Addr<Scheduler>>,
    pub plugins: PluginLists,
    pub consumers: Vec<Addr<Consumer<crate::agent::resources::Item>>>,
    pub sink: crate::sink::Running,
    pub influx_url: String,
    pub store: Store,
    pub cluster: ClusterView,
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Pipeline {
    async fn plugins(&self) -> Table {
        let mut rows = Vec::new();
        let lists = [
            &self.plugins.discovery,
            &self.plugins.enrichment,
            &self.plugins.polling,
        ];
        for addr in &self.schedulers {
            let Ok(stats) = addr.send(GetSchedulerStats).await else {
                continue;
            };
            for (plugin, g) in &stats.groups {
                let interval = lists
                    .iter()
                    .flat_map(|l| l.get().iter().cloned().collect::<Vec<_>>())
                    .find(|p| &p.name == plugin)
                    .map_or("–".into(), |p| format!("{} s", p.execute_frequency));
                rows.push(vec![
                    stats.name.clone(),
                    plugin.clone(),
                    interval,
                    g.keys.to_string(),
                    g.runs.completed.to_string(),
                    g.runs.failed.to_string(),
                    g.runs.timed_out.to_string(),
                    g.runs.shed.to_string(),
                    ms(g.runs.mean_duration()),
                    ms(g.runs.last_duration),
                ]);
            }
        }
        Table {
            title: "Plugins".into(),
            note: String::new(),
            headers: vec![
                "kind",
                "plugin",
                "every",
                "scheduled",
                "runs",
                "failed",
                "timed out",
                "shed",
                "mean time",
                "last time",
            ],
            rows,
        }
    }

    async fn consumers(&self) -> Table {
        let mut rows = Vec::new();
        for addr in &self.consumers {
            if let Ok(s) = addr.send(GetConsumerStats).await {
                rows.push(vec![
                    s.name.clone(),
                    s.committed.map_or("–".into(), |c| c.to_string()),
                    s.lag.map_or("–".into(), |l| l.to_string()),
                    s.delivered.to_string(),
                    (s.fetch_failures + s.delivery_failures + s.commit_failures).to_string(),
                ]);
            }
        }
        Table {
            title: "Consumer groups".into(),
            note: String::new(),
            headers: vec!["consumer", "committed", "lag", "delivered", "failures"],
            rows,
        }
    }

    async fn sink(&self) -> Table {
        if !self.sink.enabled {
            return Table {
                title: "InfluxDB sink".into(),
                note: "off (set influxdb.url to write metrics to InfluxDB)".into(),
                ..Table::default()
            };
        }
        let lag = self.sink.lag().await;
        let behind: u64 = lag.iter().filter_map(|p| p.lag).sum();
        let failures: u64 = lag.iter().map(|p| p.delivery_failures).sum();
        Table {
            title: "InfluxDB sink".into(),
            note: format!(
                "writing to {}: behind by {behind} metrics groups, {failures} failed writes (retried)",
                crate::secret::redact_url(&self.influx_url)
            ),
            headers: vec!["topic", "partition", "behind", "failed writes"],
            rows: lag
                .iter()
                .map(|p| {
                    vec![
                        p.topic.clone(),
                        p.partition.to_string(),
                        p.lag.map_or("–".into(), |l| l.to_string()),
                        p.delivery_failures.to_string(),
                    ]
                })
                .collect(),
        }
    }

    async fn storage(&self) -> Vec<Table> {
        let store = self.store.clone();
        let Ok((Ok(stats), health)) =
            tokio::task::spawn_blocking(move || (store.stats(), store.health())).await
        else {
            return vec![Table {
                title: "Storage".into(),
                note: "cannot read the store's figures".into(),
                ..Table::default()
            }];
        };
        let logical: u64 = stats.topics.iter().map(|p| p.bytes).sum::<u64>()
            + stats.keyspaces.iter().map(|k| k.bytes).sum::<u64>();
        let health = match health {
            Health::Ok => "writes succeed".to_string(),
            Health::WritesFailing { reason } => format!("writes failing: {reason}"),
            Health::Failed { reason } => format!("failed: {reason}"),
        };
        let amplification = if logical > 0 && stats.disk_bytes > 0 {
            format!("{:.2}", stats.disk_bytes as f64 / logical as f64)
        } else {
            "–".into()
        };
        vec![
            Table {
                title: "Topics".into(),
                note: String::new(),
                headers: vec!["topic", "partition", "records", "size", "low", "high"],
                rows: stats
                    .topics
                    .iter()
                    .map(|p| {
                        vec![
                            p.topic.clone(),
                            p.partition.to_string(),
                            p.records.to_string(),
                            mib(p.bytes),
                            p.low.to_string(),
                            p.high.to_string(),
                        ]
                    })
                    .collect(),
            },
            Table {
                title: "Storage".into(),
                note: format!(
                    "{} engine, {health}; {} on disk for {} of data (space amplification {amplification}); {} write errors",
                    stats.engine,
                    mib(stats.disk_bytes),
                    mib(logical),
                    stats.write_errors
                ),
                headers: vec!["keyspace", "keys", "size"],
                rows: stats
                    .keyspaces
                    .iter()
                    .map(|k| vec![k.name.clone(), k.keys.to_string(), mib(k.bytes)])
                    .collect(),
            },
        ]
    }

    async fn cluster(&self) -> Table {
        let status = self.cluster.status().await;
        if !status.enabled {
            return Table {
                title: "Cluster".into(),
                note: format!(
                    "not in a cluster: this node polls all {} resources",
                    status.devices_total
                ),
                ..Table::default()
            };
        }
        let mut rows = Vec::new();
        for group in [&status.work, &status.sink].into_iter().flatten() {
            for m in &group.members {
                rows.push(vec![
                    group.group.clone(),
                    m.node.clone(),
                    m.http.clone(),
                    format!("{:?}", m.partitions),
                    m.devices.map_or("–".into(), |d| d.to_string()),
                ]);
            }
        }
        Table {
            title: "Cluster".into(),
            note: format!(
                "node {}: owns {} of {} resources{}",
                status.node,
                status.devices_owned,
                status.devices_total,
                if status.runs_discovery {
                    ", runs discovery"
                } else {
                    ""
                }
            ),
            headers: vec!["group", "member", "http", "partitions", "devices"],
            rows,
        }
    }
}

impl PipelineSource for Pipeline {
    fn tables(&self) -> Pin<Box<dyn Future<Output = Vec<Table>> + '_>> {
        Box::pin(async move {
            let mut tables = vec![self.plugins().await, self.consumers().await];
            tables.extend(self.storage().await);
            tables.push(self.sink().await);
            tables.push(self.cluster().await);
            tables
        })
    }
}

/// The status page's sources for the node's HTTP state.
pub(super) fn sources(
    p: &super::Pipeline,
    store: &Store,
    settings: &crate::config::Settings,
) -> crate::http::status::StatusSources {
    let influx_url = settings.influxdb.url.as_str();
    crate::http::status::StatusSources {
        fleet: Arc::clone(&p.shared.fleet),
        topics: settings.processed_topics(),
        enrichments: p.shared.enrichments.clone(),
        pipeline: Arc::new(Pipeline {
            schedulers: p.schedulers.all(),
            plugins: p.schedulers.plugins.clone(),
            consumers: p.consumers.clone(),
            sink: p.sink.clone(),
            influx_url: influx_url.to_owned(),
            store: store.clone(),
            cluster: p.cluster.clone(),
        }),
    }
}
