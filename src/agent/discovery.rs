//! Discovery agent: runs a discovery plugin and publishes its resource set to
//! `<site>-resources`, one message per site, keyed `<plugin>:<version>:<signature>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes_actors::{BoxFuture, Job, JobError, Planner, WorkItem, WorkKey};

use super::{finish_run, now_ms, signature, RunError, Shared};
use crate::blocking::blocking;
use crate::bus::Message;
use crate::config::PluginConfig;
use crate::events::InputRejected;
use crate::model::{now_epoch, Resource, ResourceSet, Site};
use crate::plugins::discovery_json;

pub struct DiscoveryJob {
    shared: Arc<Shared>,
    plugin: Arc<PluginConfig>,
}

impl DiscoveryJob {
    pub fn new(shared: Arc<Shared>, plugin: Arc<PluginConfig>) -> DiscoveryJob {
        DiscoveryJob { shared, plugin }
    }
}

impl Job for DiscoveryJob {
    fn run(&self) -> BoxFuture<Result<(), JobError>> {
        let shared = Arc::clone(&self.shared);
        let plugin = Arc::clone(&self.plugin);
        Box::pin(async move {
            if !shared.ownership.runs_discovery() {
                return Ok(());
            }
            let started = Instant::now();
            let result = discover_and_publish(&shared, &plugin).await;
            finish_run(
                &shared,
                "discovery",
                &plugin.name,
                &plugin.name,
                started,
                &result,
            );
            result.map_err(JobError::failed)
        })
    }
}

async fn discover_and_publish(shared: &Shared, plugin: &PluginConfig) -> Result<(), RunError> {
    let path = discovery_json::config_file(plugin)?;
    let now = now_epoch();
    let (set, rejected) =
        blocking(move || Ok::<_, RunError>(discovery_json::discover(&path, now)?)).await?;
    for reason in &rejected {
        InputRejected {
            source: "discovery",
            reason,
        }
        .emit(&shared.telemetry);
    }
    let normalized = plugin.normalized_name();
    let key = format!(
        "{normalized}:{}:{}",
        plugin.version,
        signature(&normalized, None)
    );
    let mut by_site: BTreeMap<Site, Vec<Resource>> = BTreeMap::new();
    for r in set.resources {
        by_site.entry(r.site.clone()).or_default().push(r);
    }
    for (site, resources) in by_site {
        let count = resources.len();
        let message = ResourceSet::new(resources, set.resource_set_creation_timestamp);
        let value = serde_json::to_vec(&message).map_err(|source| RunError::Json {
            what: "a resource set",
            source,
        })?;
        let topic = format!("{site}-resources");
        let bus = shared.bus.clone();
        let msg = Message {
            key: key.clone(),
            partition_key: key.clone(),
            value,
        };
        let t = topic.clone();
        blocking(move || Ok::<_, RunError>(bus.publish(&t, vec![msg], now_ms())?)).await?;
        tracing::debug!(plugin = %plugin.name, topic = %topic, resources = count, "resource set published");
    }
    Ok(())
}

/// One work item per scheduled discovery plugin, on the node that runs its site's discovery
/// (every node alone; in a cluster, the owner of work partition 0).
pub struct DiscoveryPlanner {
    pub shared: Arc<Shared>,
    pub plugins: super::PluginList,
}

impl Planner for DiscoveryPlanner {
    fn plan(&mut self) -> BoxFuture<Vec<WorkItem>> {
        if !self.shared.ownership.runs_discovery() {
            return Box::pin(async { Vec::new() });
        }
        let items = self
            .plugins
            .get()
            .iter()
            .filter(|p| p.execute_frequency > 0)
            .map(|p| {
                // The key doubles as the plugin's device name.
                let key: Arc<str> = format!("discovery:{}", p.name).into();
                WorkItem {
                    key: WorkKey::from(&*key),
                    device: key,
                    group: p.name.as_str().into(),
                    interval: Duration::from_secs(p.execute_frequency),
                    hold_until: None,
                    job: Arc::new(DiscoveryJob::new(Arc::clone(&self.shared), Arc::clone(p))),
                }
            })
            .collect();
        Box::pin(async move { items })
    }
}
