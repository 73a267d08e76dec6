//! The schedule of enrichment and polling plugins: every plugin x every resource its
//! `resource_filter` matches, re-read from the resource store on each plan.

use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes_actors::{BoxFuture, Job, Planner, WorkItem, WorkKey};

use super::Shared;
use crate::config::PluginConfig;
use crate::model::Resource;
use crate::resource_manager::KeyedResource;

/// Builds the job of one plugin on one resource.
pub type JobFactory = Arc<dyn Fn(Arc<PluginConfig>, Arc<Resource>) -> Arc<dyn Job> + Send + Sync>;

/// How long a polling run may wait for its `self` enrichment before it runs anyway (and
/// reports ENRICHMENT_FAILURE, as the original would).
const ENRICHMENT_HOLD: Duration = Duration::from_secs(60);

/// The plugins of one kind: replaced as a whole when the node reloads its configuration,
/// read by the planner at every plan.
#[derive(Clone, Default)]
pub struct PluginList(Arc<std::sync::RwLock<Arc<Vec<Arc<PluginConfig>>>>>);

impl PluginList {
    pub fn new(plugins: Vec<Arc<PluginConfig>>) -> PluginList {
        PluginList(Arc::new(std::sync::RwLock::new(Arc::new(plugins))))
    }

    pub fn get(&self) -> Arc<Vec<Arc<PluginConfig>>> {
        match self.0.read() {
            Ok(list) => Arc::clone(&list),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn set(&self, plugins: Vec<Arc<PluginConfig>>) {
        let plugins = Arc::new(plugins);
        match self.0.write() {
            Ok(mut list) => *list = plugins,
            Err(poisoned) => *poisoned.into_inner() = plugins,
        }
    }
}

pub struct ResourcePlanner {
    shared: Arc<Shared>,
    plugins: PluginList,
    factory: JobFactory,
}

impl ResourcePlanner {
    pub fn new(shared: Arc<Shared>, plugins: PluginList, factory: JobFactory) -> Self {
        ResourcePlanner {
            shared,
            plugins,
            factory,
        }
    }
}

impl Planner for ResourcePlanner {
    fn plan(&mut self) -> BoxFuture<Vec<WorkItem>> {
        let resources = match self.shared.resources.shared_with_keys() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read resources: keeping no schedule this round");
                return Box::pin(async { Vec::new() });
            }
        };
        // One copy of each resource this node owns, shared by every job made for it (a job
        // per plugin) and by the other schedulers' jobs.
        let ownership = &self.shared.ownership;
        let resources: Vec<KeyedResource> = resources
            .into_iter()
            .filter(|(_, r)| ownership.owns(&r.id))
            .collect();
        let now = Instant::now();
        let mut items = Vec::new();
        let plugins = self.plugins.get();
        let plugins: Vec<_> = plugins
            .iter()
            .filter(|p| p.execute_frequency > 0)
            .filter_map(|p| {
                let filter = p.resource_filter.as_ref()?;
                // Every key of the plugin shares its prefix, `<kind>:<name>`.
                let prefix = Arc::<str>::from(format!("{}:{}", p.kind.as_str(), p.name));
                Some((p, filter, Arc::<str>::from(p.name.as_str()), prefix))
            })
            .collect();
        for (serialization_key, resource) in &resources {
            // Made once for all the resource's plugins.
            let mut device: Option<Arc<str>> = None;
            for (plugin, filter, group, prefix) in &plugins {
                if !filter.matches(&**resource) {
                    continue;
                }
                let device = device.get_or_insert_with(|| {
                    let port = resource
                        .metadata
                        .get("snmp_port")
                        .map(String::as_str)
                        .unwrap_or("");
                    format!("{}:{port}", resource.endpoint).into()
                });
                // Held at most ENRICHMENT_HOLD from the key's first plan: the scheduler
                // keeps the soonest hold a key was given.
                let hold_until = self
                    .waits_for_enrichment(plugin, resource)
                    .then_some(now + ENRICHMENT_HOLD);
                items.push(WorkItem {
                    // `<kind>:<name>:<serialization key>`, in two shared parts.
                    key: WorkKey::new(Arc::clone(prefix), Arc::clone(serialization_key)),
                    group: Arc::clone(group),
                    device: Arc::clone(device),
                    interval: Duration::from_secs(plugin.execute_frequency),
                    hold_until,
                    job: (self.factory)(Arc::clone(plugin), Arc::clone(resource)),
                });
            }
        }
        Box::pin(async move { items })
    }
}

impl ResourcePlanner {
    /// True when the plugin preloads its own enrichment and none is stored yet.
    fn waits_for_enrichment(&self, plugin: &PluginConfig, resource: &Resource) -> bool {
        plugin
            .preload
            .iter()
            .filter(|p| p.resource == "self" && p.namespace != "*")
            .any(|p| {
                let key = format!("{}:{}", resource.id, p.namespace);
                !super::enrichment_stored(&self.shared.enrichments, &key)
            })
    }
}
