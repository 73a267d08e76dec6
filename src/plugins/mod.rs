//! The built-in plugins, found by the original's module names so its plugin files load
//! unchanged, and the context they run in.

pub mod discovery_json;
pub mod enrichment_cache;
pub mod generic_snmp;
pub mod interface;
pub mod status;

use std::time::Duration;

use crate::config::{PluginConfig, PluginFileError, PluginKind, SnmpSettings};
use crate::model::Resource;
use crate::snmp::{Community, SnmpTarget};

/// The plugins this binary carries, by the original's module name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    DiscoveryFromJsonFile,
    InterfaceEnrichment,
    InterfacePolling,
}

impl BuiltIn {
    /// Resolves `[Core] Module` (already reduced to its base name) for a plugin kind.
    pub fn resolve(plugin: &PluginConfig) -> Result<BuiltIn, PluginFileError> {
        let found = match (plugin.kind, plugin.module.as_str()) {
            (
                PluginKind::Discovery,
                "plugin_discovery_from_json_file" | "discovery_from_json_file",
            ) => Some(BuiltIn::DiscoveryFromJsonFile),
            (PluginKind::Enrichment, "plugin_enrichment_interface" | "interface_enrichment") => {
                Some(BuiltIn::InterfaceEnrichment)
            }
            (
                PluginKind::Polling,
                "plugin_polling_device_interface_metrics" | "interface_polling",
            ) => Some(BuiltIn::InterfacePolling),
            _ => None,
        };
        found.ok_or_else(|| {
            plugin.error(
                "Core",
                "Module",
                format!(
                    "`{}` is not a built-in {} plugin (known: {})",
                    plugin.module,
                    plugin.kind.as_str(),
                    Self::known(plugin.kind).join(", ")
                ),
            )
        })
    }

    fn known(kind: PluginKind) -> Vec<&'static str> {
        match kind {
            PluginKind::Discovery => vec!["plugin_discovery_from_json_file"],
            PluginKind::Enrichment => vec!["plugin_enrichment_interface"],
            PluginKind::Polling => vec!["plugin_polling_device_interface_metrics"],
        }
    }
}

/// Why a plugin run produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Discovery(String),
    #[error(transparent)]
    Snmp(#[from] crate::snmp::SnmpError),
    #[error("{0}")]
    Enrichment(String),
    #[error("{0}")]
    Internal(String),
}

/// Where and how to reach a resource over SNMP: the site's `[snmp]`, overridden by the
/// plugin's `[snmp]`, and the port by the resource's `snmp_port` metadata (our addition,
/// so a simulated fleet can live on one address).
pub fn snmp_target(
    site: &SnmpSettings,
    plugin: &PluginConfig,
    resource: &Resource,
) -> Result<SnmpTarget, PluginError> {
    let port = match resource.metadata.get("snmp_port") {
        Some(p) => p.parse::<u16>().map_err(|_| {
            PluginError::Config(format!(
                "resource `{}`: metadata snmp_port `{p}` is not a port number",
                resource.id
            ))
        })?,
        None => plugin.snmp.port.unwrap_or(site.port),
    };
    Ok(SnmpTarget {
        host: resource.endpoint.clone(),
        port,
        community: Community::new(site.community.clone()),
        timeout: Duration::from_secs(plugin.snmp.timeout.unwrap_or(site.timeout)),
        retries: plugin.snmp.retries.unwrap_or(site.retries),
        max_repetitions: plugin.snmp.max_repetitions.unwrap_or(site.max_repetitions),
        non_repeaters: plugin.snmp.non_repeaters.unwrap_or(site.non_repeaters),
    })
}
