//! Runs one plugin once on one resource, whichever built-in it is: the node's agents and
//! `panoptes plugin run` both come through here, so they behave the same.

use crate::config::{PluginConfig, Preload};
use crate::model::{EnrichmentGroupSet, Resource};
use crate::snmp::{SnmpClient, SnmpTarget};

use super::enrichment_cache::{EnrichmentCache, EnrichmentSource};
use super::status::{confirm_with_ping, Ping};
use super::{
    device_metrics, device_polling, generic_snmp, heartbeat, interface, BuiltIn, PluginError,
    Polled,
};

/// Used when a plugin file gives no `enrichment_ttl`.
pub const DEFAULT_ENRICHMENT_TTL: u64 = 900;

/// Everything one run needs.
pub struct RunContext<'a> {
    pub plugin: &'a PluginConfig,
    pub builtin: BuiltIn,
    pub resource: &'a Resource,
    /// How to reach the device (an error if its address or port is unusable).
    pub target: Result<SnmpTarget, PluginError>,
    /// The stored enrichments (`<resource_id>:<namespace>` -> stored JSON).
    pub enrichments: &'a (dyn EnrichmentSource + Sync),
    /// Checks a device that timed out (spec §2.4).
    pub ping: &'a dyn Ping,
    /// Every timestamp the run produces.
    pub now: f64,
}

impl RunContext<'_> {
    async fn client(&self) -> Result<SnmpClient, PluginError> {
        match &self.target {
            Ok(t) => Ok(SnmpClient::connect(t).await?),
            Err(PluginError::Credentials(e)) => Err(PluginError::Credentials(e.clone())),
            Err(e) => Err(PluginError::Config(e.to_string())),
        }
    }

    /// The enrichment cache the plugin's `[enrichment] preload` names.
    fn cache(&self) -> Result<EnrichmentCache, PluginError> {
        self.cache_with(None)
    }

    /// The preloaded cache, plus `also` when the preload does not name it: the original's
    /// cache loads a namespace it is asked for on a miss (the Ciena light-level example
    /// preloads one namespace and reads another).
    fn cache_with(&self, also: Option<Preload>) -> Result<EnrichmentCache, PluginError> {
        let mut preload = self.plugin.preload.clone();
        if let Some(p) = also {
            if !preload.contains(&p) {
                preload.push(p);
            }
        }
        let cache = EnrichmentCache::load(self.enrichments, &preload, &self.resource.id)
            .map_err(|e| PluginError::Enrichment(e.to_string()))?;
        for key in &cache.missing {
            tracing::debug!(plugin = %self.plugin.name, key = %key, "preloaded enrichment not found");
        }
        Ok(cache)
    }
}

/// Runs a polling plugin. Device trouble is reported in the status group, not as an
/// error; an error means the plugin could not produce metrics groups at all.
pub async fn poll(ctx: RunContext<'_>) -> Result<Polled, PluginError> {
    let model = |e: crate::model::ModelError| PluginError::Internal(e.to_string());
    let mut polled: Polled = match ctx.builtin {
        BuiltIn::InterfacePolling => {
            let options = interface::polling::Options {
                interval: ctx.plugin.execute_frequency,
                include_interface_index: ctx.plugin.flag("dimension", "include_interface_index"),
            };
            // Only `self:interface` is read (the original's cache would load it on a miss
            // whatever the preload says).
            let stored =
                interface::stored::StoredInterfaces::load(ctx.enrichments, &ctx.resource.id);
            let mut client = ctx.client().await;
            interface::polling::run(
                client.as_mut().map_err(take_error),
                ctx.resource,
                stored
                    .as_ref()
                    .map(Option::as_ref)
                    .map_err(|e| PluginError::Enrichment(e.to_string())),
                options,
                ctx.now,
            )
            .await
            .map_err(model)?
        }
        BuiltIn::GenericSnmpPolling => {
            let options = generic_snmp::polling::Options::from_plugin(ctx.plugin);
            let cache = if options.from_store {
                ctx.cache_with(Some(Preload {
                    resource: "self".into(),
                    namespace: options.namespace.clone(),
                }))
            } else {
                Ok(EnrichmentCache::default())
            };
            let document = generic_snmp::polling::load_document(
                &options,
                cache
                    .as_ref()
                    .map_err(|e| PluginError::Enrichment(e.to_string())),
                ctx.resource,
            );
            let mut client = ctx.client().await;
            generic_snmp::polling::run(
                client.as_mut().map_err(take_error),
                ctx.resource,
                document,
                &options,
                ctx.now,
            )
            .await
            .map_err(model)?
            .into()
        }
        BuiltIn::HeartbeatPolling => {
            let cache = ctx.cache().ok();
            heartbeat::polling(
                ctx.resource,
                cache.as_ref(),
                ctx.plugin.execute_frequency,
                ctx.now,
            )
            .map_err(model)?
            .into()
        }
        BuiltIn::PingPolling => super::ping::polling(ctx.plugin, ctx.resource, ctx.ping, ctx.now)
            .await?
            .into(),
        BuiltIn::AristaDevicePolling => {
            let options = device_polling::arista::Options::from_plugin(ctx.plugin);
            let mut client = ctx.client().await;
            device_polling::arista::poll(
                client.as_mut().map_err(take_error),
                ctx.resource,
                &options,
                ctx.now,
            )
            .await
            .map_err(model)?
            .groups
            .into()
        }
        BuiltIn::AsrDevicePolling => {
            // A missing status metric name fails before anything is polled, as in the
            // original (and already when the plugin file is loaded).
            let options = device_polling::asr::Options::from_plugin(ctx.plugin)
                .map_err(|e| PluginError::Config(e.to_string()))?;
            let mut client = ctx.client().await;
            device_polling::asr::poll(
                client.as_mut().map_err(take_error),
                ctx.resource,
                &options,
                ctx.now,
            )
            .await
            .map_err(model)?
            .groups
            .into()
        }
        other => {
            return Err(PluginError::Config(format!(
                "plugin `{}`: {other:?} is not a polling plugin",
                ctx.plugin.name
            )))
        }
    };
    confirm_with_ping(&mut polled.groups, &ctx.resource.endpoint, ctx.ping).await;
    Ok(polled)
}

/// Runs an enrichment plugin and returns what it found for the resource.
pub async fn enrich(ctx: RunContext<'_>) -> Result<EnrichmentGroupSet, PluginError> {
    let ttl = ctx.plugin.enrichment_ttl.unwrap_or(DEFAULT_ENRICHMENT_TTL);
    let frequency = ctx.plugin.execute_frequency;
    match ctx.builtin {
        BuiltIn::InterfaceEnrichment(vendor) => {
            let mut client = ctx.client().await?;
            interface::enrichment::run_vendor(
                &mut client,
                ctx.resource,
                vendor,
                ttl,
                frequency,
                ctx.now,
            )
            .await
        }
        BuiltIn::HeartbeatEnrichment => {
            heartbeat::enrichment(ctx.resource, ttl, frequency, ctx.now)
                .map_err(|e| PluginError::Internal(e.to_string()))
        }
        BuiltIn::DeviceMetricsEnrichment(_) | BuiltIn::DeviceMetricsFromFile => {
            let definition = match ctx.builtin {
                BuiltIn::DeviceMetricsEnrichment(i) => device_metrics::embedded_definition(i)?,
                _ => device_metrics::definition_from_plugin(ctx.plugin)?,
            };
            let mut client = ctx.client().await?;
            device_metrics::run(
                &definition,
                &mut client,
                device_metrics::Run {
                    plugin: ctx.plugin,
                    resource: ctx.resource,
                    ttl,
                    now: ctx.now,
                },
            )
            .await
        }
        BuiltIn::GenericSnmpEnrichment => Ok(device_metrics::empty(ctx.resource, ctx.now)),
        other => Err(PluginError::Config(format!(
            "plugin `{}`: {other:?} is not an enrichment plugin",
            ctx.plugin.name
        ))),
    }
}

/// Moves a plugin error out of a `Result<&mut _, PluginError>` view without cloning.
fn take_error(e: &mut PluginError) -> PluginError {
    std::mem::replace(e, PluginError::Internal(String::new()))
}
