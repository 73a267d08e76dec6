//! The built-in plugins, found by the original's module names so its plugin files load
//! unchanged, and the context they run in.

pub mod device_metrics;
pub mod device_polling;
pub mod discovery_json;
pub mod enrichment_cache;
pub mod generic_snmp;
pub mod group_set;
pub mod heartbeat;
pub mod interface;
pub mod one_shot;
pub mod ping;
pub mod runner;
pub mod status;

use std::time::Duration;

use crate::config::{PluginConfig, PluginFileError, PluginKind, SnmpSettings};
use crate::model::Resource;
use crate::snmp::SnmpTarget;

/// The plugins this binary carries, by the original's module name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    DiscoveryFromJsonFile,
    InterfaceEnrichment(interface::enrichment::Vendor),
    InterfacePolling,
    GenericSnmpPolling,
    HeartbeatEnrichment,
    HeartbeatPolling,
    /// `plugin_polling_ping`: packet loss and round-trip times from the system's `ping`.
    PingPolling,
    /// A built-in vendor definition (its position in `device_metrics::embedded()`).
    DeviceMetricsEnrichment(usize),
    /// `plugin_enrichment_device_metrics`: the definition named by `[main] vendor_definition`.
    DeviceMetricsFromFile,
    /// `plugin_enrichment_generic_snmp`: the original's base class, which enriches nothing.
    GenericSnmpEnrichment,
    /// `plugin_polling_arista_device_metrics`: Arista EOS CPU, memory, environment, storage.
    AristaDevicePolling,
    /// `plugin_polling_asr_device_metrics`: Cisco ASR 1000 CPU, memory, environment,
    /// crypto engines, QFP load.
    AsrDevicePolling,
}

/// `[Core] Module` names (the original's, then ours) for each built-in.
const REGISTRY: &[(PluginKind, &[&str], BuiltIn)] = {
    use interface::enrichment::Vendor;
    use BuiltIn::*;
    use PluginKind::*;
    &[
        (
            Discovery,
            &[
                "plugin_discovery_from_json_file",
                "discovery_from_json_file",
            ],
            DiscoveryFromJsonFile,
        ),
        (
            Enrichment,
            &["plugin_enrichment_interface", "interface_enrichment"],
            InterfaceEnrichment(Vendor::Generic),
        ),
        (
            Enrichment,
            &[
                "plugin_enrichment_interface_arista",
                "interface_enrichment_arista",
            ],
            InterfaceEnrichment(Vendor::Arista),
        ),
        (
            Enrichment,
            &[
                "plugin_enrichment_interface_cisco",
                "interface_enrichment_cisco",
            ],
            InterfaceEnrichment(Vendor::Cisco),
        ),
        (
            Enrichment,
            &[
                "plugin_enrichment_interface_juniper",
                "interface_enrichment_juniper",
            ],
            InterfaceEnrichment(Vendor::Juniper),
        ),
        (
            Enrichment,
            &["plugin_enrichment_heartbeat", "heartbeat_enrichment"],
            HeartbeatEnrichment,
        ),
        (
            Enrichment,
            &[
                "plugin_enrichment_device_metrics",
                "device_metrics_enrichment",
            ],
            DeviceMetricsFromFile,
        ),
        (
            Enrichment,
            &["plugin_enrichment_generic_snmp", "generic_snmp_enrichment"],
            GenericSnmpEnrichment,
        ),
        (
            Polling,
            &[
                "plugin_polling_device_interface_metrics",
                "interface_polling",
            ],
            InterfacePolling,
        ),
        (
            Polling,
            &["plugin_polling_generic_snmp", "generic_snmp_polling"],
            GenericSnmpPolling,
        ),
        (
            Polling,
            &["plugin_polling_heartbeat", "heartbeat_polling"],
            HeartbeatPolling,
        ),
        (
            Polling,
            &["plugin_polling_ping", "ping_polling"],
            PingPolling,
        ),
        (
            Polling,
            &[
                "plugin_polling_arista_device_metrics",
                "arista_device_polling",
            ],
            AristaDevicePolling,
        ),
        (
            Polling,
            &["plugin_polling_asr_device_metrics", "asr_device_polling"],
            AsrDevicePolling,
        ),
    ]
};

impl BuiltIn {
    /// Resolves `[Core] Module` (already reduced to its base name) for a plugin kind.
    pub fn resolve(plugin: &PluginConfig) -> Result<BuiltIn, PluginFileError> {
        let vendor = || match plugin.kind {
            PluginKind::Enrichment => {
                device_metrics::find_embedded(&plugin.module).map(BuiltIn::DeviceMetricsEnrichment)
            }
            _ => None,
        };
        let builtin = REGISTRY
            .iter()
            .find(|(kind, names, _)| {
                *kind == plugin.kind && names.contains(&plugin.module.as_str())
            })
            .map(|(_, _, b)| *b)
            .or_else(vendor)
            .ok_or_else(|| {
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
            })?;
        builtin.check(plugin)?;
        Ok(builtin)
    }

    /// Settings a built-in cannot run without, checked when the plugin file is loaded so
    /// a bad file stops the node at start rather than failing every poll.
    fn check(self, plugin: &PluginConfig) -> Result<(), PluginFileError> {
        match self {
            BuiltIn::AsrDevicePolling => {
                device_polling::asr::Options::from_plugin(plugin).map(drop)
            }
            _ => Ok(()),
        }
    }

    /// The original's module names of every built-in of a kind.
    pub fn known(kind: PluginKind) -> Vec<String> {
        let mut names: Vec<String> = REGISTRY
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, names, _)| names[0].to_string())
            .collect();
        if kind == PluginKind::Enrichment {
            names.extend(device_metrics::embedded_modules());
        }
        names
    }
}

/// Why a plugin run produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Config(String),
    /// The device's credentials cannot be had (a profile its metadata names is missing).
    #[error("{0}")]
    Credentials(String),
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
/// plugin's `[snmp]`, then by the credential profile the resource's metadata names
/// (`snmp_profile` or `community_string_key`: credentials, port, timeout, retries), and
/// the port by the resource's `snmp_port` metadata (our addition, so a simulated fleet can
/// live on one address).
pub fn snmp_target(
    site: &SnmpSettings,
    plugin: &PluginConfig,
    resource: &Resource,
) -> Result<SnmpTarget, PluginError> {
    let profile = site
        .profiles
        .for_metadata(&resource.metadata)
        .map_err(|e| PluginError::Credentials(format!("resource `{}`: {e}", resource.id)))?;
    let port = match resource.metadata.get("snmp_port") {
        Some(p) => p.parse::<u16>().map_err(|_| {
            PluginError::Config(format!(
                "resource `{}`: metadata snmp_port `{p}` is not a port number",
                resource.id
            ))
        })?,
        None => profile
            .and_then(|p| p.port)
            .or(plugin.snmp.port)
            .unwrap_or(site.port),
    };
    let (version, community, usm, context) = match profile {
        Some(p) => (
            p.version,
            p.community.clone(),
            p.usm.clone(),
            p.context.clone(),
        ),
        None => (
            site.version,
            site.community.clone(),
            site.usm_user()
                .map_err(|e| PluginError::Config(e.to_string()))?,
            String::new(),
        ),
    };
    let timeout = profile.and_then(|p| p.timeout).or(plugin.snmp.timeout);
    let retries = profile.and_then(|p| p.retries).or(plugin.snmp.retries);
    Ok(SnmpTarget {
        host: resource.endpoint.clone(),
        port,
        version,
        community,
        usm,
        context,
        timeout: Duration::from_secs(timeout.unwrap_or(site.timeout)),
        retries: retries.unwrap_or(site.retries),
        max_repetitions: plugin.snmp.max_repetitions.unwrap_or(site.max_repetitions),
        non_repeaters: plugin.snmp.non_repeaters.unwrap_or(site.non_repeaters),
    })
}

/// What a polling plugin returns: its metrics groups and, when it read it, the device's
/// sysUpTime (hundredths of a second), by which the rate transform tells a restart.
#[derive(Debug, Default)]
pub struct Polled {
    pub groups: Vec<crate::model::MetricsGroup>,
    pub sys_uptime: Option<u32>,
}

impl From<Vec<crate::model::MetricsGroup>> for Polled {
    fn from(groups: Vec<crate::model::MetricsGroup>) -> Polled {
        Polled {
            groups,
            sys_uptime: None,
        }
    }
}

/// SNMPv2-MIB::sysUpTime.0.
const SYS_UP_TIME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];

/// The device's sysUpTime, or `None` when it has none (an agent answering noSuchName or a
/// value that is not TimeTicks). A timeout or network failure is the poll's failure.
pub async fn sys_uptime(
    client: &mut crate::snmp::SnmpClient,
) -> Result<Option<u32>, crate::snmp::SnmpError> {
    let oid = crate::snmp::Oid::from(&SYS_UP_TIME[..]);
    match client.get(std::slice::from_ref(&oid)).await {
        Ok(varbinds) => Ok(varbinds.first().and_then(|vb| match vb.value {
            crate::snmp::SnmpValue::TimeTicks(t) => Some(t),
            _ => None,
        })),
        Err(crate::snmp::SnmpError::ErrorStatus { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
