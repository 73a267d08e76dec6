//! The plugin agents: what the original ran as Celery tasks. Each plugin kind has a
//! `Job` (one plugin on one resource, run by the poller pool) and a `Planner` (the
//! schedule: every plugin x every resource its filter matches).

pub mod discovery;
pub mod enrichment;
mod planner;
pub mod polling;
pub mod publisher;
pub mod resources;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Recipient;
use md5::{Digest, Md5};
use panoptes_actors::{BoxFuture, JobError, Rescan};
use panoptes_storage::Keyspace;

use crate::blocking::TaskFailed;
use crate::bus::Bus;
use crate::config::{PluginConfig, PluginFileError, Settings};
use crate::model::Resource;
use crate::plugins::PluginError;
use crate::resource_manager::ResourceStore;
use crate::telemetry::Telemetry;
use crate::transform::RateStore;

pub use planner::{JobFactory, PluginList, ResourcePlanner};

/// Everything the agents share: storage handles, the bus, counters, and who to tell when
/// resources or enrichments change.
pub struct Shared {
    pub settings: Settings,
    /// Each served site's `[snmp]`, with the secrets file's credentials: replaced by a
    /// reload.
    pub snmp: std::sync::RwLock<Arc<SiteSnmp>>,
    pub bus: Bus,
    pub resources: ResourceStore,
    pub enrichments: Keyspace,
    /// Where the rate state is saved across a clean restart (see [`RateStore`]).
    pub rate_state: Keyspace,
    /// Every counter's previous sample.
    pub rates: Arc<RateStore>,
    /// Appends what polls publish, batched (see [`publisher`]).
    pub publisher: publisher::Publisher,
    pub telemetry: Arc<Telemetry>,
    /// Every device's recent polls, for the status page.
    pub fleet: Arc<crate::fleet::Fleet>,
    /// Which resources this node enriches and polls (all, unless it shares its site's
    /// fleet with other nodes).
    pub ownership: Arc<crate::cluster::Ownership>,
    /// Set once the first poll finished: `/ready`.
    pub ready: Arc<AtomicBool>,
    pub enrichment_scheduler: OnceLock<Recipient<Rescan>>,
    pub polling_scheduler: OnceLock<Recipient<Rescan>>,
}

/// The `[snmp]` settings of every site the node serves, each with its site's secrets.
pub struct SiteSnmp {
    own: crate::config::SnmpSettings,
    others: std::collections::BTreeMap<crate::model::Site, crate::config::SnmpSettings>,
}

impl SiteSnmp {
    pub fn of(settings: &Settings) -> SiteSnmp {
        SiteSnmp {
            own: settings.snmp.clone(),
            others: settings.site_snmp.clone(),
        }
    }

    /// The settings a resource of `site` is polled with (the node's own site's for a
    /// site it does not serve).
    pub fn for_site(&self, site: &str) -> &crate::config::SnmpSettings {
        self.others.get(site).unwrap_or(&self.own)
    }
}

impl Shared {
    /// The SNMP settings polls use now.
    pub fn snmp(&self) -> Arc<SiteSnmp> {
        match self.snmp.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn set_snmp(&self, settings: &Settings) {
        let snmp = Arc::new(SiteSnmp::of(settings));
        match self.snmp.write() {
            Ok(mut s) => *s = snmp,
            Err(poisoned) => *poisoned.into_inner() = snmp,
        }
    }

    /// Asks a scheduler to re-plan now (new resources, new enrichment). `try_send`: if its
    /// mailbox is full a rescan is already queued, which is as good.
    pub fn rescan(slot: &OnceLock<Recipient<Rescan>>) {
        if let Some(r) = slot.get() {
            let _ = r.try_send(Rescan);
        }
    }
}

/// Whether an enrichment is stored under `key` (an unreadable store counts as stored, so
/// nothing waits on it forever). Stored enrichments carry a TTL: reading it touches only
/// the value's header, where `get` would copy and decode a whole enrichment (KBs per
/// device).
pub fn enrichment_stored(enrichments: &Keyspace, key: &str) -> bool {
    match enrichments.ttl_remaining(key.as_bytes()) {
        Ok(Some(_)) => true,
        _ => !matches!(enrichments.get(key.as_bytes()), Ok(None)),
    }
}

/// Why a plugin run (discovery, enrichment or polling) failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plugin could not run, or produced nothing.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The plugin file names no plugin this binary has.
    #[error(transparent)]
    PluginFile(#[from] PluginFileError),
    /// The poll ran, and the device status it reports (one of the original's codes) is
    /// not OK.
    #[error("device status {code} ({}), see the status metrics group", crate::fleet::status_name(*.code))]
    DeviceStatus { code: u8 },
    /// What the run produced could not be encoded as JSON.
    #[error("encoding {what} as JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The polls' publisher did not append the metrics groups.
    #[error(transparent)]
    Publish(#[from] publisher::PublishError),
    /// Publishing a resource set failed.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    #[error(transparent)]
    Task(#[from] TaskFailed),
}

impl RunError {
    /// Whether the device timed out: an SNMP request without an answer, or a poll whose
    /// status says TIMEOUT or PING_FAILURE (a device that then did not answer a ping
    /// either).
    pub fn is_device_timeout(&self) -> bool {
        use crate::plugins::status::DeviceStatus;
        match self {
            RunError::Plugin(e) => DeviceStatus::of_error(e) == DeviceStatus::Timeout,
            RunError::DeviceStatus { code } => [DeviceStatus::Timeout, DeviceStatus::PingFailure]
                .iter()
                .any(|s| *s as i128 == i128::from(*code)),
            _ => false,
        }
    }
}

impl Shared {
    /// What a plugin run on `resource` needs from this node: the device's SNMP target
    /// from the node's settings, the stored enrichments, and now as its timestamp.
    pub fn run_context<'a>(
        &'a self,
        plugin: &'a PluginConfig,
        builtin: crate::plugins::BuiltIn,
        resource: &'a Resource,
        ping: &'a dyn crate::plugins::status::Ping,
    ) -> crate::plugins::runner::RunContext<'a> {
        crate::plugins::runner::RunContext {
            plugin,
            builtin,
            resource,
            target: crate::plugins::snmp_target(
                self.snmp().for_site(&resource.site),
                plugin,
                resource,
            ),
            enrichments: &self.enrichments,
            ping,
            now: crate::model::now_epoch(),
        }
    }
}

/// A job's run on one resource: `work`, given its own handles on the shared state, the
/// plugin and the resource, or nothing at all when another cluster member owns the
/// resource (ownership moves between runs, so it is asked at each).
pub fn owned_run<Fut>(
    shared: &Arc<Shared>,
    plugin: &Arc<PluginConfig>,
    resource: &Arc<Resource>,
    work: impl FnOnce(Arc<Shared>, Arc<PluginConfig>, Arc<Resource>) -> Fut + Send + 'static,
) -> BoxFuture<Result<(), JobError>>
where
    Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
{
    let (shared, plugin, resource) = (Arc::clone(shared), Arc::clone(plugin), resource.clone());
    Box::pin(async move {
        if !shared.ownership.may_run(&resource.id) {
            return Ok(());
        }
        work(shared, plugin, resource).await
    })
}

/// Logs how a plugin run ended and records when the plugin last ran.
pub fn finish_run(
    shared: &Shared,
    kind: &str,
    plugin: &str,
    work: &str,
    started: std::time::Instant,
    result: &Result<(), RunError>,
) {
    crate::events::PluginRunFinished {
        kind,
        plugin,
        work,
        outcome: match result {
            Ok(()) => crate::events::RunOutcome::Succeeded,
            Err(e) => crate::events::RunOutcome::Failed(e),
        },
        duration: started.elapsed(),
    }
    .emit(&shared.telemetry);
}

pub use crate::model::now_ms;

/// The original's plugin signature: hex MD5 of the normalised name and the Python repr of
/// the plugin data (the resource's serialization key, or `None` for discovery).
pub fn signature(normalized_name: &str, data: Option<&str>) -> String {
    let mut h = Md5::new();
    h.update(normalized_name.as_bytes());
    h.update(data.unwrap_or("None").as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A plugin run's hard deadline: 1.25 x its interval, as the original's task time limit.
pub fn deadline(execute_frequency: u64) -> Duration {
    Duration::from_millis(execute_frequency.saturating_mul(1250).max(1000))
}
