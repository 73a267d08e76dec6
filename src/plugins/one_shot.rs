//! `panoptes plugin run`: one plugin, once, against one device, output on stdout as the
//! original's JSON (the metrics groups of a polling plugin, the enrichment group set of an
//! enrichment plugin). For people trying a plugin file, and for tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::Value;

use super::enrichment_cache::MapSource;
use super::runner::{self, RunContext};
use super::status::SystemPing;
use super::{snmp_target, BuiltIn};
use crate::config::{PluginConfig, PluginKind, SnmpSettings};
use crate::model::{now_epoch, Resource};
use crate::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
use crate::snmp::Community;

#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("device").args(["agent", "snmprec"])))]
pub struct PluginRunArgs {
    /// The plugin file (.panoptes-plugin INI or .toml), as the node would load it.
    #[arg(long, value_name = "FILE")]
    pub plugin: PathBuf,
    /// The resource to run on: one resource object as JSON (`resource_id`,
    /// `resource_endpoint`, ...).
    #[arg(long, value_name = "FILE.json")]
    pub resource: PathBuf,
    /// Poll this SNMP agent instead of the resource's endpoint.
    #[arg(long, value_name = "HOST:PORT")]
    pub agent: Option<String>,
    /// Serve this recording on an ephemeral loopback port and poll it.
    #[arg(long, value_name = "FILE")]
    pub snmprec: Option<PathBuf>,
    /// Stored enrichments the plugin may read: `.kv` lines (`<resource_id>:<namespace>=><json>`),
    /// a JSON object of such keys, or one stored group (`{"data": ..., "metadata": ...}`)
    /// for the plugin's first `[enrichment] preload` entry.
    #[arg(long, value_name = "FILE")]
    pub enrichment: Option<PathBuf>,
    /// SNMP v2c community (default: the site's, `public` in the shipped configuration).
    #[arg(long, value_name = "C")]
    pub community: Option<String>,
    /// Freeze the clock: every timestamp of the run is this Unix time.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<f64>,
}

/// Loads a plugin file as whichever kind its module is a built-in of.
pub fn load_plugin(path: &Path) -> anyhow::Result<(PluginConfig, BuiltIn)> {
    let mut last = None;
    for kind in [PluginKind::Polling, PluginKind::Enrichment] {
        match PluginConfig::load(path, kind) {
            Ok(p) => match BuiltIn::resolve(&p) {
                Ok(b) => return Ok((p, b)),
                Err(e) => last = Some(anyhow::Error::new(e)),
            },
            Err(e) => last = Some(anyhow::Error::new(e)),
        }
    }
    if let Ok(p) = PluginConfig::load(path, PluginKind::Discovery) {
        if BuiltIn::resolve(&p).is_ok() {
            bail!(
                "plugin file {}: `{}` is a discovery plugin; `plugin run` runs polling and enrichment plugins on a resource",
                path.display(),
                p.module
            );
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("plugin file {}: not loadable", path.display())))
}

fn load_resource(path: &Path) -> anyhow::Result<Resource> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading resource file {}", path.display()))?;
    let json: Value = serde_json::from_str(&text)
        .with_context(|| format!("resource file {} is not JSON", path.display()))?;
    Resource::from_json(&json).with_context(|| format!("resource file {}", path.display()))
}

/// Reads `--enrichment` into the store the plugin reads from.
fn load_enrichments(
    path: &Path,
    plugin: &PluginConfig,
    resource: &Resource,
) -> anyhow::Result<MapSource> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading enrichment file {}", path.display()))?;
    let json: Option<Value> = serde_json::from_str(&text).ok();
    match json {
        Some(Value::Object(map)) if map.contains_key("data") => {
            let Some(first) = plugin.preload.first() else {
                bail!(
                    "enrichment file {} holds one stored group, but plugin {} has no [enrichment] preload to say which resource and namespace it is",
                    path.display(),
                    plugin.path.display()
                );
            };
            let resource_id = if first.resource == "self" {
                resource.id.as_str()
            } else {
                first.resource.as_str()
            };
            let mut m = std::collections::BTreeMap::new();
            m.insert(
                format!("{resource_id}:{}", first.namespace),
                Value::Object(map).to_string(),
            );
            Ok(MapSource(m))
        }
        Some(Value::Object(map)) => Ok(MapSource(
            map.into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect(),
        )),
        Some(_) => bail!(
            "enrichment file {}: expected a JSON object or `key=>json` lines",
            path.display()
        ),
        None => {
            let kv = MapSource::parse_kv(&text);
            if kv.0.is_empty() && !text.trim().is_empty() {
                bail!(
                    "enrichment file {}: neither JSON nor `<resource_id>:<namespace>=><json>` lines",
                    path.display()
                );
            }
            Ok(kv)
        }
    }
}

/// Runs the command; the JSON goes to `out`.
pub async fn run_cli(
    args: PluginRunArgs,
    site_snmp: &SnmpSettings,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let (plugin, builtin) = load_plugin(&args.plugin)?;
    let resource = load_resource(&args.resource)?;
    let enrichments = match &args.enrichment {
        Some(p) => load_enrichments(p, &plugin, &resource)?,
        None => MapSource::default(),
    };
    let community = args
        .community
        .clone()
        .unwrap_or_else(|| site_snmp.community.expose().to_string());
    // Keep the simulator alive for the whole run.
    let mut _simulator = None;
    let mut target = snmp_target(site_snmp, &plugin, &resource);
    if let Ok(t) = target.as_mut() {
        t.community = Community::new(community.clone());
        if let Some(agent) = &args.agent {
            let (host, port) = split_host_port(agent)?;
            t.host = host;
            t.port = port;
        }
        if let Some(path) = &args.snmprec {
            let recording = Arc::new(
                Recording::load(path)
                    .with_context(|| format!("loading recording {}", path.display()))?,
            );
            let listen: SocketAddr = "127.0.0.1:0".parse()?;
            let sim = Simulator::spawn(
                SimulatorConfig::new(CounterMode::Frozen).with_device(DeviceConfig::new(
                    listen,
                    recording,
                    community.clone(),
                )),
            )
            .await
            .context("starting the simulator for --snmprec")?;
            let port = sim
                .local_addrs()
                .first()
                .map(SocketAddr::port)
                .context("the simulator has no address")?;
            t.host = "127.0.0.1".into();
            t.port = port;
            _simulator = Some(sim);
        }
    }
    let now = args.now.unwrap_or_else(now_epoch);
    let ping = SystemPing::new(None);
    let ctx = RunContext {
        plugin: &plugin,
        builtin,
        resource: &resource,
        target,
        enrichments: &enrichments,
        ping: &ping,
        now,
    };
    match plugin.kind {
        PluginKind::Polling => {
            let groups = runner::poll(ctx)
                .await
                .with_context(|| format!("plugin `{}` failed", plugin.name))?
                .groups;
            if let Some(code) = status_code(&groups) {
                if code != 0 {
                    eprintln!(
                        "panoptes: plugin `{}`: device status {code} ({}), see the status group",
                        plugin.name,
                        status_name(code)
                    );
                }
            }
            // Straight from the groups, not through `serde_json::Value`, which cannot hold
            // an integer past 64 bits (bits_in of a Counter64 near its top).
            serde_json::to_writer_pretty(&mut *out, &groups)?;
        }
        _ => {
            let json = runner::enrich(ctx)
                .await
                .with_context(|| format!("plugin `{}` failed", plugin.name))?
                .to_json();
            serde_json::to_writer_pretty(&mut *out, &json)?;
        }
    }
    writeln!(out)?;
    Ok(())
}

fn split_host_port(agent: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = agent
        .rsplit_once(':')
        .with_context(|| format!("--agent `{agent}`: expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("--agent `{agent}`: the host is empty");
    }
    let port = port
        .parse::<u16>()
        .with_context(|| format!("--agent `{agent}`: `{port}` is not a port number"))?;
    Ok((host.to_string(), port))
}

fn status_code(groups: &[crate::model::MetricsGroup]) -> Option<i128> {
    groups
        .iter()
        .find(|g| g.metrics_group_type == "status")
        .and_then(|g| g.metrics.first())
        .and_then(|m| match m.metric_value {
            crate::model::MetricValue::Int(i) => Some(i),
            crate::model::MetricValue::Float(_) => None,
        })
}

fn status_name(code: i128) -> &'static str {
    match code {
        0 => "SUCCESS",
        1 => "AUTHENTICATION_FAILURE",
        2 => "NETWORK_FAILURE",
        3 => "TIMEOUT",
        4 => "PARTIAL_METRIC_FAILURE",
        5 => "INTERNAL_FAILURE",
        6 => "MISSING_METRICS",
        7 => "PING_FAILURE",
        8 => "ENRICHMENT_FAILURE",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_addresses() {
        assert_eq!(
            split_host_port("127.0.0.1:1161").unwrap(),
            ("127.0.0.1".into(), 1161)
        );
        assert_eq!(split_host_port("[::1]:161").unwrap(), ("::1".into(), 161));
        let refused = |agent| split_host_port(agent).unwrap_err().to_string();
        assert_eq!(refused("host"), "--agent `host`: expected HOST:PORT");
        assert_eq!(
            refused("host:x"),
            "--agent `host:x`: `x` is not a port number"
        );
        assert_eq!(refused(":161"), "--agent `:161`: the host is empty");
    }
}
