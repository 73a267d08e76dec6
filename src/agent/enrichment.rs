//! Enrichment agent: runs an enrichment plugin on a resource and stores each group under
//! `<resource_id>:<namespace>` with the plugin's `enrichment_ttl`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes_actors::{BoxFuture, Job, JobError};

use super::{finish_run, owned_run, RunError, Shared};
use crate::config::PluginConfig;
use crate::events::EnrichmentStored;
use crate::model::Resource;
use crate::plugins::runner;
use crate::plugins::status::NoPing;
use crate::plugins::{BuiltIn, PluginError};

pub use crate::plugins::runner::DEFAULT_ENRICHMENT_TTL;

pub struct EnrichmentJob {
    pub shared: Arc<Shared>,
    pub plugin: Arc<PluginConfig>,
    pub resource: Arc<Resource>,
}

impl Job for EnrichmentJob {
    fn run(&self) -> BoxFuture<Result<(), JobError>> {
        owned_run(
            &self.shared,
            &self.plugin,
            &self.resource,
            |shared, plugin, resource| async move {
                let started = Instant::now();
                let result = enrich(&shared, &plugin, &resource)
                    .await
                    .map_err(RunError::Plugin);
                let new = matches!(result, Ok(true));
                let result = result.map(|_| ());
                finish_run(
                    &shared,
                    "enrichment",
                    &plugin.name,
                    &resource.id,
                    started,
                    &result,
                );
                // Only a new enrichment can lift a polling run's hold: a re-run (the usual
                // case, every execute_frequency) changes no schedule, and at 10,000 devices a
                // plan per re-run cost ≈10% of a core while the re-runs came in.
                if new {
                    Shared::rescan(&shared.polling_scheduler);
                }
                result.map_err(JobError::failed)
            },
        )
    }
}

/// Runs the plugin and stores its groups; `true` when one of them was not stored before.
async fn enrich(
    shared: &Shared,
    plugin: &PluginConfig,
    resource: &Resource,
) -> Result<bool, PluginError> {
    let builtin = BuiltIn::resolve(plugin).map_err(|e| PluginError::Config(e.to_string()))?;
    let set = runner::enrich(shared.run_context(plugin, builtin, resource, &NoPing)).await?;
    let ttl = plugin.enrichment_ttl.unwrap_or(DEFAULT_ENRICHMENT_TTL);
    let mut new = false;
    for group in set.groups {
        let key = format!("{}:{}", resource.id, group.namespace);
        let value = crate::model::encode_stored_enrichment(&group.stored_json());
        let entries = group.data.len();
        // On this thread: one put of a few compressed KB is an insert into the store's
        // memory (its log is written by the store's flusher). Through `spawn_blocking`,
        // enrichments spread over the interval kept a dozen extra threads alive, each
        // with its own allocator heap.
        new |= !super::enrichment_stored(&shared.enrichments, &key);
        shared
            .enrichments
            .put(key.as_bytes(), &value, Some(Duration::from_secs(ttl)))
            .map_err(|e| PluginError::Internal(format!("storing enrichment {key}: {e}")))?;
        EnrichmentStored {
            resource: &resource.id,
            namespace: &group.namespace,
            entries,
        }
        .emit(&shared.telemetry);
    }
    Ok(new)
}
