use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::kafka::acl::{AclEntry, Operation};
use crate::kafka::sasl::Mechanism;
use crate::kafka::security::SecurityProtocol;

use crate::snmp::{Community, EngineConfig, Secret, SnmpVersion, UserPartsError, UsmUser};

/// Environment variables whose values are strings whatever they look like.
const VERBATIM_ENV: [(&str, &str); 19] = [
    ("PANOPTES__SITE", "site"),
    ("PANOPTES__DATA_DIR", "data_dir"),
    ("PANOPTES__SNMP__COMMUNITY", "snmp.community"),
    ("PANOPTES__DEMO__COMMUNITY", "demo.community"),
    ("PANOPTES__DEMO__RECORDING", "demo.recording"),
    (
        "PANOPTES__KAFKA__GLOBAL_TOPIC_NAME",
        "kafka.global_topic_name",
    ),
    ("PANOPTES__LOG__LEVEL", "log.level"),
    ("PANOPTES__INFLUXDB__TOKEN", "influxdb.token"),
    (
        "PANOPTES__SNMP__V3_AUTH_PASSPHRASE",
        "snmp.v3_auth_passphrase",
    ),
    (
        "PANOPTES__SNMP__V3_PRIV_PASSPHRASE",
        "snmp.v3_priv_passphrase",
    ),
    ("PANOPTES__SNMP__V3_USER", "snmp.v3_user"),
    ("PANOPTES__HTTP__TOKEN", "http.token"),
    ("PANOPTES__INFLUXDB__PASSWORD", "influxdb.password"),
    ("PANOPTES__INFLUXDB__USERNAME", "influxdb.username"),
    ("PANOPTES__INFLUXDB__DATABASE", "influxdb.database"),
    ("PANOPTES__INFLUXDB__ORG", "influxdb.org"),
    ("PANOPTES__INFLUXDB__BUCKET", "influxdb.bucket"),
    ("PANOPTES__KAFKA__CLIENT_USERNAME", "kafka.client_username"),
    (
        "PANOPTES__KAFKA__AUTO_CREATE_PREFIX",
        "kafka.auto_create_prefix",
    ),
];

/// A TOML error by line and column, without the text of the line: the file may hold
/// secrets, and the error goes to logs and terminals.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

/// The defaults, embedded so the binary runs from any directory.
pub const DEFAULT_CONFIG: &str = include_str!("../../conf/panoptes.toml");

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration {source_name}: {message}")]
    Load {
        source_name: String,
        message: String,
    },
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub site: crate::model::Site,
    /// More sites this node serves beside `site` (the original's `[main] sites`).
    pub sites: Vec<crate::model::Site>,
    pub data_dir: PathBuf,
    pub http: HttpSettings,
    pub demo: DemoSettings,
    pub plugins: PluginDirs,
    pub snmp: SnmpSettings,
    pub scheduler: SchedulerSettings,
    pub kafka: KafkaSettings,
    pub storage: StorageSettings,
    pub retention: RetentionSettings,
    pub log: LogSettings,
    pub influxdb: InfluxSettings,
    pub cluster: ClusterSettings,
    pub mibs: MibSettings,
    pub traps: TrapSettings,
    /// Where each value came from (not a key of the file).
    #[serde(skip)]
    pub origins: super::origin::Origins,
    /// The `[snmp]` settings of each of `sites`, with that site's secrets (not a key of
    /// the file): `snmp` is `site`'s.
    #[serde(skip)]
    pub site_snmp: std::collections::BTreeMap<crate::model::Site, SnmpSettings>,
}

/// `[traps]`: the SNMP trap and inform receiver (see [`crate::traps`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrapSettings {
    /// The UDP address to receive on; empty: no receiver.
    pub listen: String,
    /// v1/v2c communities accepted (empty: any). The secrets file's `trap_communities`
    /// replaces them.
    pub communities: Vec<Community>,
    /// Varbinds one notification may carry; more: refused (`too_many_varbinds`).
    pub max_varbinds: usize,
    /// Notifications waiting to be published; more: refused (`queue_full`).
    pub queue_capacity: usize,
    /// The v3 users notifications may come from: the secrets file's
    /// `[<site>.trap_users.<name>]` tables.
    #[serde(skip)]
    pub users: Vec<UsmUser>,
}

/// `traps.listen` is not a socket address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("traps.listen = {listen:?} is not an address like 127.0.0.1:10162: {source}")]
pub struct TrapListenError {
    pub listen: String,
    pub source: std::net::AddrParseError,
}

impl TrapSettings {
    /// The receiver's address, if it is on.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, TrapListenError> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some).map_err(|source| TrapListenError {
            listen: listen.to_owned(),
            source,
        })
    }
}

/// One `[<site>.trap_users.<name>]` table of the secrets file: a v3 user traps and
/// informs may come from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrapUserSecrets {
    /// MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512; absent: noAuthNoPriv.
    pub auth_protocol: Option<String>,
    pub auth_passphrase: Option<Secret>,
    /// DES, AES, AES-192, AES-256; absent: no privacy.
    pub priv_protocol: Option<String>,
    pub priv_passphrase: Option<Secret>,
}

impl TrapUserSecrets {
    fn user<'a>(&'a self, site: &str, name: &str) -> Result<UsmUser, String> {
        let at = format!("[{site}.trap_users.{name}]");
        let level = |protocol: &'a Option<String>, passphrase: &Option<Secret>| {
            protocol.as_deref().map(|p| (p, passphrase.clone()))
        };
        UsmUser::from_parts(
            name,
            level(&self.auth_protocol, &self.auth_passphrase),
            level(&self.priv_protocol, &self.priv_passphrase),
        )
        .map_err(|e| match e {
            UserPartsError::AuthPassphraseMissing => {
                format!("{at}: auth_protocol needs auth_passphrase")
            }
            UserPartsError::PrivacyWithoutAuth => {
                format!("{at}: privacy needs authentication: set auth_protocol too")
            }
            UserPartsError::PrivPassphraseMissing => {
                format!("{at}: priv_protocol needs priv_passphrase")
            }
            other => format!("{at}: {other}"),
        })
    }
}

/// `[cluster]`: nodes of one site sharing its fleet through the external Kafka cluster's
/// consumer groups (see [`crate::cluster`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    pub enabled: bool,
    /// This node's id in the group (empty: the host name); stable across restarts.
    pub node_id: String,
    /// Partitions of `<site>-work` when the node creates it: the units the fleet is split
    /// into (more than nodes, for balance).
    pub partitions: u32,
    /// Partitions of `<site>-processed` when the node creates it: the units the InfluxDB
    /// sink's work is split into.
    pub sink_partitions: u32,
    /// Seconds without a heartbeat before the group drops a member (its devices move).
    pub session_timeout: u64,
    pub heartbeat_interval: u64,
    /// Seconds the members have to rejoin during a rebalance.
    pub rebalance_timeout: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Bearer token asked of every request but `/health` and `/ready`; empty: none, which
    /// is allowed on a loopback address only (unless `allow_insecure`). The secrets file's
    /// `http_token` overrides it.
    pub token: Secret,
    /// PEM certificate chain and private key: when both are set the listener speaks HTTPS.
    pub tls_cert: String,
    pub tls_key: String,
    /// Allows a non-loopback `listen` without a token (warned about at start).
    pub allow_insecure: bool,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests waiting for new records (`wait_ms`) at once; more are answered at once.
    pub max_long_polls: usize,
}

impl HttpSettings {
    pub fn tls(&self) -> bool {
        !self.tls_cert.trim().is_empty() || !self.tls_key.trim().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub community: String,
    pub recording: String,
    /// The trap receiver's address while the demo runs and `traps.listen` is empty
    /// (empty: no receiver in the demo either).
    pub traps_listen: String,
}

/// `[mibs]`: MIB modules to read besides the built-in ones (see [`crate::mib`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MibSettings {
    /// Directories of MIB files (any name; a file's `NAME DEFINITIONS ::= BEGIN` names its
    /// module), searched in order, before the built-in modules.
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDirs {
    pub discovery: Vec<PathBuf>,
    pub enrichment: Vec<PathBuf>,
    pub polling: Vec<PathBuf>,
    pub scan_interval: u64,
}

/// The `[snmp]` section. Secrets are typed so `Debug` prints `***`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpSettings {
    /// "1", "2c" or "3".
    pub version: SnmpVersion,
    pub community: Community,
    pub port: u16,
    pub timeout: u64,
    pub retries: u32,
    pub non_repeaters: u32,
    pub max_repetitions: u32,
    /// v3 user name; empty unless `version = "3"`.
    pub v3_user: String,
    /// MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512; empty: noAuthNoPriv.
    pub v3_auth_protocol: String,
    pub v3_auth_passphrase: Secret,
    /// DES, AES, AES-192, AES-256; empty: no privacy.
    pub v3_priv_protocol: String,
    pub v3_priv_passphrase: Secret,
    /// The node's secrets file: a TOML file with a table per site holding `community`,
    /// `v3_auth_passphrase` and/or `v3_priv_passphrase` (which override the values
    /// above for this node's site), and the Kafka listener's users and the Kafka
    /// client's password (see [`SiteSecrets`]). Empty: none.
    pub secrets_file: String,
    /// UDP sockets the SNMP engine shares among all devices.
    pub sockets: usize,
    /// SNMP requests in flight at once, over all devices.
    pub max_in_flight: usize,
    /// SNMP requests in flight at once to one device.
    pub per_device: usize,
    /// Credential profiles of this site (and `[default]`) from the secrets file, which
    /// resources name in their metadata (see [`super::profiles`]).
    #[serde(skip)]
    pub profiles: super::profiles::Profiles,
}

impl SnmpSettings {
    /// The v3 user these settings describe (`None` unless version 3).
    pub fn usm_user<'a>(&'a self) -> Result<Option<UsmUser>, SettingsError> {
        if self.version != SnmpVersion::V3 {
            return Ok(None);
        }
        let invalid = |key: &'static str, problem: String| SettingsError::Invalid { key, problem };
        if self.v3_user.trim().is_empty() {
            return Err(invalid(
                "snmp.v3_user",
                "must be set when snmp.version is \"3\"".into(),
            ));
        }
        let level = |protocol: &'a str, passphrase: &Secret| {
            let protocol = protocol.trim();
            (!protocol.is_empty()).then(|| (protocol, Some(passphrase.clone())))
        };
        let user = UsmUser::from_parts(
            self.v3_user.trim(),
            level(&self.v3_auth_protocol, &self.v3_auth_passphrase),
            level(&self.v3_priv_protocol, &self.v3_priv_passphrase),
        )
        .map_err(|e| match e {
            UserPartsError::AuthProtocol(e) => invalid("snmp.v3_auth_protocol", e.to_string()),
            UserPartsError::PrivacyWithoutAuth => invalid(
                "snmp.v3_priv_protocol",
                "privacy needs authentication: set snmp.v3_auth_protocol too".into(),
            ),
            UserPartsError::PrivProtocol(e) => invalid("snmp.v3_priv_protocol", e.to_string()),
            other => invalid("snmp.v3_auth_passphrase", other.to_string()),
        })?;
        Ok(Some(user))
    }

    /// A site's SNMP secrets and credential profiles from the secrets file `file`.
    fn apply_site_secrets(
        &mut self,
        site: &str,
        secrets: &SiteSecrets,
        default_profiles: &DefaultProfiles,
        file: &str,
    ) -> Result<(), SettingsError> {
        self.apply_secrets(secrets);
        self.profiles = super::profiles::Profiles::build(
            site,
            secrets.snmp_profiles.as_ref(),
            Some(default_profiles),
            self,
        )
        .map_err(|problems| SettingsError::Load {
            source_name: file.to_owned(),
            message: problems.join("\n"),
        })?;
        Ok(())
    }

    /// Overrides secrets with those of this site's table of the secrets file.
    fn apply_secrets(&mut self, secrets: &SiteSecrets) {
        if let Some(community) = &secrets.community {
            self.community = community.clone();
        }
        if let Some(pass) = &secrets.v3_auth_passphrase {
            self.v3_auth_passphrase = pass.clone();
        }
        if let Some(pass) = &secrets.v3_priv_passphrase {
            self.v3_priv_passphrase = pass.clone();
        }
    }

    /// The SNMP engine these settings ask for.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            sockets: self.sockets,
            max_in_flight: self.max_in_flight,
            per_device: self.per_device,
            ..EngineConfig::default()
        }
    }
}

/// One site's table of the secrets file (`snmp.secrets_file`):
///
/// ```toml
/// [local]
/// community = "..."
/// v3_auth_passphrase = "..."
/// v3_priv_passphrase = "..."
/// kafka_client_password = "..."   # our client's password on an external cluster
///
/// [local.kafka_users]             # who may authenticate to the Kafka listener
/// ingest = "..."
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSecrets {
    pub community: Option<Community>,
    pub v3_auth_passphrase: Option<Secret>,
    pub v3_priv_passphrase: Option<Secret>,
    pub kafka_client_password: Option<Secret>,
    pub kafka_users: Option<std::collections::BTreeMap<String, Secret>>,
    /// The HTTP API's bearer token (`http.token`).
    pub http_token: Option<Secret>,
    /// SNMP credential profiles by name (`[<site>.snmp_profiles.<name>]`).
    pub snmp_profiles: Option<std::collections::BTreeMap<String, super::profiles::ProfileSpec>>,
    /// v1/v2c communities the trap receiver accepts (`traps.communities`).
    pub trap_communities: Option<Vec<Community>>,
    /// v3 users the trap receiver accepts notifications from.
    pub trap_users: Option<std::collections::BTreeMap<String, TrapUserSecrets>>,
}

/// The secrets file at `path`, read and parsed once: a `[site]` table per site.
fn read_secrets(path: &Path) -> Result<HashMap<String, SiteSecrets>, SettingsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| secrets_error(path, format!("cannot read the secrets file: {e}")))?;
    toml::from_str(&text).map_err(|e| {
        secrets_error(
            path,
            format!(
                "not a valid secrets file (a [site] table per site): {}",
                toml_error(&text, &e)
            ),
        )
    })
}

fn secrets_error(path: &Path, message: String) -> SettingsError {
    SettingsError::Load {
        source_name: path.display().to_string(),
        message,
    }
}

/// `site`'s table of the secrets file at `path` (parsed: `sites`), and the `[default]`
/// table's profiles. A site without a table of its own takes `[default]` whole, as the
/// original falls back from `panoptes:secrets:<key>:<site>` to `...:default`.
fn site_secrets<'s>(
    path: &Path,
    sites: &'s HashMap<String, SiteSecrets>,
    site: &str,
) -> Result<(&'s SiteSecrets, DefaultProfiles), SettingsError> {
    let default_profiles = sites
        .get("default")
        .and_then(|d| d.snmp_profiles.clone())
        .unwrap_or_default();
    let secrets = sites
        .get(site)
        .or_else(|| sites.get("default"))
        .ok_or_else(|| {
            secrets_error(
                path,
                format!("no [{site}] table for this node's site, and no [default] table"),
            )
        })?;
    if let Some(bad) = secrets
        .kafka_users
        .iter()
        .flatten()
        .map(|(name, _)| name)
        .find(|name| name.is_empty() || name.chars().any(|c| c.is_control() || c == ','))
    {
        return Err(secrets_error(
            path,
            format!(
                "[{site}.kafka_users]: user name {bad:?} must be non-empty, without commas or control characters"
            ),
        ));
    }
    Ok((secrets, default_profiles))
}

/// `[default.snmp_profiles]`: profiles every site may name.
type DefaultProfiles = std::collections::BTreeMap<String, super::profiles::ProfileSpec>;
/// The trap receiver's v3 users from this site's `trap_users` tables.
fn trap_users(
    path: &Path,
    site: &str,
    secrets: &SiteSecrets,
) -> Result<Vec<UsmUser>, SettingsError> {
    secrets
        .trap_users
        .iter()
        .flatten()
        .map(|(name, table)| {
            if name.is_empty() || name.len() > 32 {
                return Err(format!(
                    "[{site}.trap_users]: user name {name:?} must be 1 to 32 characters (RFC 3414 SnmpAdminString)"
                ));
            }
            table.user(site, name)
        })
        .collect::<Result<_, String>>()
        .map_err(|message| SettingsError::Load {
            source_name: path.display().to_string(),
            message,
        })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    pub max_in_flight: usize,
    pub per_device: usize,
    pub queue_capacity: usize,
    pub first_run_spread: u64,
    pub workers: usize,
}

/// The `[kafka]` section: topics, the embedded listener, its security and bounds, and
/// our client of an external cluster. Passwords come from the secrets file only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub publish_to_site_topic: bool,
    pub publish_to_global_topic: bool,
    pub global_topic_name: String,
    pub partitions: u32,
    /// The embedded broker's address; empty: no listener.
    pub listen: String,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub auto_create_topics: bool,
    /// Auto-creation makes only topics whose names start with this (empty: any).
    pub auto_create_prefix: String,
    pub max_frame_bytes: usize,
    pub max_bytes_in_flight: usize,
    pub max_inflated_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Seconds.
    pub first_request_timeout: u64,
    /// Seconds.
    pub idle_timeout: u64,
    pub max_topics: usize,
    pub max_partitions_per_topic: u32,
    pub max_partitions: u64,
    /// 0: no limit.
    pub max_data_bytes: u64,
    pub max_groups: usize,
    pub max_members_per_group: usize,
    pub max_producer_states: usize,
    pub max_request_partitions: usize,
    /// The listener's `security.protocol`.
    pub security: SecurityProtocol,
    pub sasl_mechanisms: Vec<Mechanism>,
    /// PEM files of the listener's certificate chain and private key (`ssl`, `sasl_ssl`).
    pub tls_cert: String,
    pub tls_key: String,
    /// Allows a listener off loopback that authenticates nobody.
    pub allow_insecure: bool,
    /// What every admitted principal may do on topics and groups that are not the
    /// pipeline's own.
    pub default_operations: Vec<Operation>,
    pub acl: Vec<AclEntry>,
    /// An external cluster's bootstrap brokers; empty: the embedded log.
    pub brokers: Vec<String>,
    /// Our client's `security.protocol` towards `brokers`.
    pub client_security: SecurityProtocol,
    pub client_sasl_mechanism: Mechanism,
    pub client_username: String,
    /// PEM file of the CA certificates the external brokers' certificates are checked
    /// against.
    pub client_tls_ca: String,
    /// The listener's users, from the secrets file's `[<site>.kafka_users]`.
    #[serde(skip)]
    pub users: std::collections::BTreeMap<String, Secret>,
    /// Our client's password, from the secrets file's `kafka_client_password`.
    #[serde(skip)]
    pub client_password: Secret,
}

/// `kafka.listen` is not a socket address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kafka.listen = {listen:?} is not an address like 127.0.0.1:9092: {source}")]
pub struct ListenAddrError {
    pub listen: String,
    pub source: std::net::AddrParseError,
}

impl KafkaSettings {
    /// The embedded broker's address, if it is on.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ListenAddrError> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some).map_err(|source| ListenAddrError {
            listen: listen.to_owned(),
            source,
        })
    }
}

/// The `[storage]` section: how the embedded store keeps what it acknowledges.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub durability: DurabilitySetting,
}

/// `storage.durability`: what a write must survive before it is acknowledged (a Kafka
/// Produce answered, a poll's metrics groups published, an offset committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DurabilitySetting {
    /// A crash of the process: acknowledged once the write is in the OS (the page
    /// cache). A power loss can take the last seconds of acknowledged writes.
    Process,
    /// Also a power loss: acknowledged after an `fsync` (`fdatasync`) that covers it,
    /// shared by every writer waiting at the same time.
    Fsync,
}

/// A `storage.durability` that is neither `process` nor `fsync`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected \"process\" or \"fsync\"")]
pub struct UnknownDurability(pub String);

impl TryFrom<String> for DurabilitySetting {
    type Error = UnknownDurability;

    fn try_from(value: String) -> Result<Self, UnknownDurability> {
        match value.trim() {
            "process" => Ok(DurabilitySetting::Process),
            "fsync" => Ok(DurabilitySetting::Fsync),
            other => Err(UnknownDurability(other.to_owned())),
        }
    }
}

impl DurabilitySetting {
    /// The store's name for it.
    pub fn durability(self) -> panoptes_storage::Durability {
        match self {
            DurabilitySetting::Process => panoptes_storage::Durability::Process,
            DurabilitySetting::Fsync => panoptes_storage::Durability::PowerLoss,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub max_age_hours: u64,
    pub max_partition_mib: u64,
}

/// Which InfluxDB write API the sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfluxApi {
    /// `/write?db=...` (InfluxDB 1.x, VictoriaMetrics).
    V1,
    /// `/api/v2/write?org=...&bucket=...` with a token (InfluxDB 2.x).
    V2,
}

/// The InfluxDB sink (`[influxdb]`): off unless `url` is set. Token and password are
/// [`Secret`]s: they print as `***`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxSettings {
    pub url: String,
    pub api: InfluxApi,
    pub org: String,
    pub bucket: String,
    pub token: Secret,
    pub database: String,
    pub username: String,
    pub password: Secret,
    /// Also write received traps (`<site>-traps`) as measurement `trap`.
    pub traps: bool,
    /// Points per write, at most (1..1000).
    pub batch_size: usize,
    /// Seconds a partial batch may wait for more points.
    pub max_emit_interval: u64,
    /// Seconds one HTTP request may take.
    pub timeout: u64,
    /// Longest pause (seconds) between retries while InfluxDB is unreachable.
    pub retry_backoff_max: u64,
    /// A PEM file of certificates trusted for an https `url` besides the public roots (a
    /// private CA, a self-signed server). Empty: the public roots only.
    pub tls_ca: String,
}

impl InfluxSettings {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

impl Settings {
    /// Embedded defaults, then `file` (if any), then `PANOPTES__SECTION__KEY` variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Self::load_with_env(file, Self::env_vars())
    }

    fn env_vars() -> HashMap<String, String> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with("PANOPTES"))
            .collect()
    }

    /// [`Settings::load`] without the checks of the values ([`Settings::problems`]): what
    /// `config check` reads before it lists every problem.
    pub fn load_unchecked(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Self::read_with_env(file, Self::env_vars())
    }

    /// `vars`: the environment (only `PANOPTES…` variables matter).
    fn load_with_env(
        file: Option<&Path>,
        vars: HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let settings = Self::read_with_env(file, vars)?;
        settings.validate()?;
        Ok(settings)
    }

    fn read_with_env(
        file: Option<&Path>,
        vars: HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_CONFIG, FileFormat::Toml));
        let mut origin = "defaults".to_string();
        let mut file_table = None;
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError::Load {
                    source_name: path.display().to_string(),
                    message: "no such file".into(),
                });
            }
            origin = path.display().to_string();
            // Checked here first: the `config` crate's TOML errors quote the offending
            // line, which may hold a secret.
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Load {
                source_name: origin.clone(),
                message: format!("cannot read: {e}"),
            })?;
            match toml::from_str::<toml::Table>(&text) {
                Ok(table) => file_table = Some(table),
                Err(e) => {
                    return Err(SettingsError::Load {
                        source_name: origin,
                        message: format!("not valid TOML: {}", toml_error(&text, &e)),
                    })
                }
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        let origins = super::origin::Origins::new(file.zip(file_table.as_ref()), &vars);
        // Names and secrets stay exactly as given: parsing would make a password `0123`
        // the number 123.
        let verbatim: Vec<(&str, String)> = VERBATIM_ENV
            .iter()
            .filter_map(|(var, key)| vars.get(*var).map(|v| (*key, v.clone())))
            .collect();
        let env = Environment::with_prefix("PANOPTES")
            .source(Some(vars))
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("plugins.discovery")
            .with_list_parse_key("plugins.enrichment")
            .with_list_parse_key("plugins.polling")
            .with_list_parse_key("mibs.dirs")
            .with_list_parse_key("kafka.brokers")
            .with_list_parse_key("sites")
            .with_list_parse_key("kafka.sasl_mechanisms")
            .with_list_parse_key("kafka.default_operations")
            .with_list_parse_key("traps.communities");
        builder = builder.add_source(env);
        for (key, value) in verbatim {
            builder = builder
                .set_override(key, value)
                .map_err(|e| SettingsError::Load {
                    source_name: "environment".into(),
                    message: e.to_string(),
                })?;
        }
        let merged = builder.build().map_err(|e| SettingsError::Load {
            source_name: origin.clone(),
            message: e.to_string(),
        })?;
        let mut settings: Settings = merged.try_deserialize().map_err(|e| SettingsError::Load {
            source_name: format!("{origin} (+ PANOPTES__* environment)"),
            message: e.to_string(),
        })?;
        origins.resolve_paths(&mut settings);
        settings.origins = origins;
        if settings.demo.enabled && settings.traps.listen.trim().is_empty() {
            // The demo shows traps too: `snmptrap ... 127.0.0.1:10162` works at once.
            settings.traps.listen = settings.demo.traps_listen.trim().to_owned();
        }
        let site = settings.site.clone();
        let secrets_file = settings.snmp.secrets_file.trim().to_owned();
        let path = Path::new(&secrets_file);
        let sites = match secrets_file.is_empty() {
            true => None,
            false => Some(read_secrets(path)?),
        };
        let base = settings.snmp.clone();
        for other in settings.sites.iter().filter(|s| **s != site) {
            let mut snmp = base.clone();
            if let Some(sites) = &sites {
                let (secrets, default_profiles) = site_secrets(path, sites, other)?;
                snmp.apply_site_secrets(other, secrets, &default_profiles, &secrets_file)?;
            }
            settings.site_snmp.insert(other.clone(), snmp);
        }
        if let Some(sites) = &sites {
            let (secrets, default_profiles) = site_secrets(path, sites, &site)?;
            settings
                .snmp
                .apply_site_secrets(&site, secrets, &default_profiles, &secrets_file)?;
            settings.traps.users = trap_users(path, &site, secrets)?;
            settings.kafka.users = secrets.kafka_users.clone().unwrap_or_default();
            if let Some(password) = &secrets.kafka_client_password {
                settings.kafka.client_password = password.clone();
            }
            if let Some(communities) = &secrets.trap_communities {
                settings.traps.communities = communities.clone();
            }
            if let Some(token) = &secrets.http_token {
                settings.http.token = token.clone();
            }
        }
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        match self.problems().into_iter().next() {
            Some(first) => Err(first),
            None => Ok(()),
        }
    }

    /// Every problem of the settings (one per key at most): `config check` lists them all.
    pub fn problems(&self) -> Vec<SettingsError> {
        let mut out = Vec::new();
        let topic_safe = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        if !topic_safe(&self.site) {
            out.push(SettingsError::Invalid {
                key: "site",
                problem: format!(
                    "`{}` must be non-empty and hold only letters, digits, `.`, `_` or `-` (it names topics)",
                    self.site
                ),
            });
        }
        for other in &self.sites {
            if !topic_safe(other) {
                out.push(SettingsError::Invalid {
                    key: "sites",
                    problem: format!(
                        "`{other}` must be non-empty and hold only letters, digits, `.`, `_` or `-` (it names topics)"
                    ),
                });
            }
        }
        if self.cluster.enabled && self.served_sites().len() > 1 {
            out.push(SettingsError::Invalid {
                key: "sites",
                problem: "a cluster shares one site's fleet: run one group of nodes per site (leave sites empty with cluster.enabled)".into(),
            });
        }
        if !self.kafka.publish_to_site_topic && !self.kafka.publish_to_global_topic {
            out.push(SettingsError::Invalid {
                key: "kafka.publish_to_site_topic",
                problem: "publish_to_site_topic and publish_to_global_topic cannot both be false"
                    .into(),
            });
        }
        if !topic_safe(&self.kafka.global_topic_name) {
            out.push(SettingsError::Invalid {
                key: "kafka.global_topic_name",
                problem: format!(
                    "`{}` is not a valid topic name",
                    self.kafka.global_topic_name
                ),
            });
        }
        let mut push_err = |r: Result<_, SettingsError>| {
            if let Err(e) = r {
                out.push(e);
            }
        };
        push_err(self.snmp.usm_user().map(drop));
        push_err(self.validate_http());
        push_err(self.validate_cluster());
        if let Err(problem) = self.traps.listen_addr() {
            out.push(SettingsError::Invalid {
                key: "traps.listen",
                problem: problem.to_string(),
            });
        }
        if !(1..=4096).contains(&self.traps.max_varbinds) {
            out.push(SettingsError::Invalid {
                key: "traps.max_varbinds",
                problem: "must be 1..4096".into(),
            });
        }
        if !(1..=1_000_000).contains(&self.traps.queue_capacity) {
            out.push(SettingsError::Invalid {
                key: "traps.queue_capacity",
                problem: "must be 1..1000000".into(),
            });
        }
        if let Err(problem) = self.kafka.listen_addr() {
            out.push(SettingsError::Invalid {
                key: "kafka.listen",
                problem: problem.to_string(),
            });
        }
        if let Some(bad) = self.kafka.brokers.iter().find(|b| {
            b.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            out.push(SettingsError::Invalid {
                key: "kafka.brokers",
                problem: format!("`{bad}` is not host:port"),
            });
        }
        if let Err(e) = self.validate_kafka_security() {
            out.push(e);
        }
        let k = &self.kafka;
        let checks: &[(&'static str, bool, &str)] = &[
            (
                "kafka.max_frame_bytes",
                (1024..=1 << 30).contains(&k.max_frame_bytes),
                "must be 1 KiB..1 GiB",
            ),
            (
                "kafka.max_bytes_in_flight",
                k.max_bytes_in_flight >= k.max_frame_bytes
                    && k.max_bytes_in_flight <= u32::MAX as usize,
                "must be at least kafka.max_frame_bytes (a frame must fit) and at most 4 GiB",
            ),
            (
                "kafka.max_inflated_bytes",
                k.max_inflated_bytes >= 1024
                    && k.max_inflated_bytes + (8 << 20) <= k.max_bytes_in_flight,
                "must be at least 1 KiB, and 8 MiB (a zstd window) less than kafka.max_bytes_in_flight at most",
            ),
            (
                "kafka.max_connections",
                k.max_connections >= 1,
                "must be at least 1",
            ),
            (
                "kafka.max_connections_per_ip",
                k.max_connections_per_ip >= 1,
                "must be at least 1",
            ),
            (
                "kafka.first_request_timeout",
                k.first_request_timeout >= 1,
                "must be at least 1 second",
            ),
            (
                "kafka.idle_timeout",
                k.idle_timeout >= 1,
                "must be at least 1 second",
            ),
            ("kafka.max_topics", k.max_topics >= 1, "must be at least 1"),
            (
                "kafka.max_partitions_per_topic",
                (1..=panoptes_storage::MAX_PARTITIONS).contains(&k.max_partitions_per_topic),
                "must be 1..65536 (the most the topic log opens)",
            ),
            (
                "kafka.max_partitions",
                k.max_partitions >= u64::from(k.max_partitions_per_topic),
                "must be at least kafka.max_partitions_per_topic",
            ),
            (
                "kafka.partitions",
                (1..=k.max_partitions_per_topic).contains(&k.partitions),
                "must be 1..kafka.max_partitions_per_topic",
            ),
            ("kafka.max_groups", k.max_groups >= 1, "must be at least 1"),
            (
                "kafka.max_members_per_group",
                k.max_members_per_group >= 1,
                "must be at least 1",
            ),
            (
                "kafka.max_producer_states",
                k.max_producer_states >= 1,
                "must be at least 1",
            ),
            (
                "kafka.max_request_partitions",
                k.max_request_partitions >= 1,
                "must be at least 1",
            ),
            (
                "snmp.timeout",
                (1..=120).contains(&self.snmp.timeout),
                "must be 1..120 seconds",
            ),
            ("snmp.retries", self.snmp.retries <= 10, "must be 0..10"),
            (
                "snmp.sockets",
                (1..=64).contains(&self.snmp.sockets),
                "must be 1..64",
            ),
            (
                "snmp.max_in_flight",
                self.snmp.max_in_flight >= 1,
                "must be at least 1",
            ),
            (
                "snmp.per_device",
                self.snmp.per_device >= 1,
                "must be at least 1",
            ),
            (
                "snmp.max_repetitions",
                self.snmp.max_repetitions >= 1,
                "must be at least 1",
            ),
            (
                "scheduler.max_in_flight",
                self.scheduler.max_in_flight >= 1,
                "must be at least 1",
            ),
            (
                "scheduler.per_device",
                self.scheduler.per_device >= 1,
                "must be at least 1",
            ),
            (
                "plugins.scan_interval",
                self.plugins.scan_interval >= 1,
                "must be at least 1 second",
            ),
        ];
        for &(key, ok, problem) in checks {
            if !ok {
                out.push(SettingsError::Invalid {
                    key,
                    problem: problem.into(),
                });
            }
        }
        if let Err(e) = self.validate_influxdb() {
            out.push(e);
        }
        if !matches!(self.log.format.as_str(), "human" | "json") {
            out.push(SettingsError::Invalid {
                key: "log.format",
                problem: format!("`{}`: expected \"human\" or \"json\"", self.log.format),
            });
        }
        out
    }

    fn validate_cluster(&self) -> Result<(), SettingsError> {
        let c = &self.cluster;
        let invalid = |key, problem: String| Err(SettingsError::Invalid { key, problem });
        if !c.enabled {
            return Ok(());
        }
        if self.kafka.brokers.is_empty() {
            return invalid(
                "cluster.enabled",
                "a cluster shares its fleet through an external Kafka cluster: set kafka.brokers"
                    .into(),
            );
        }
        if !(1..=10_000).contains(&c.partitions) {
            return invalid("cluster.partitions", "must be 1..10000".into());
        }
        if !(1..=1_000).contains(&c.sink_partitions) {
            return invalid("cluster.sink_partitions", "must be 1..1000".into());
        }
        if c.heartbeat_interval == 0 || c.heartbeat_interval * 3 > c.session_timeout {
            return invalid(
                "cluster.heartbeat_interval",
                format!(
                    "must be at least 1 s and at most a third of cluster.session_timeout ({} s)",
                    c.session_timeout
                ),
            );
        }
        if c.rebalance_timeout < c.session_timeout {
            return invalid(
                "cluster.rebalance_timeout",
                "must be at least cluster.session_timeout".into(),
            );
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), SettingsError> {
        let h = &self.http;
        let invalid = |key, problem: String| Err(SettingsError::Invalid { key, problem });
        if h.tls_cert.trim().is_empty() != h.tls_key.trim().is_empty() {
            return invalid(
                "http.tls_cert",
                "set both http.tls_cert and http.tls_key for HTTPS, or neither".into(),
            );
        }
        if !h.listen.ip().is_loopback() && h.token.is_empty() && !h.allow_insecure {
            return invalid(
                "http.listen",
                format!(
                    "{} is not a loopback address and no http.token is set: anyone who reaches it \
                     could read the node's API. Set http.token (or http_token in the secrets file), \
                     or http.allow_insecure = true to serve it open anyway",
                    h.listen
                ),
            );
        }
        if h.max_connections == 0 || h.max_long_polls == 0 {
            return invalid(
                "http.max_connections",
                "http.max_connections and http.max_long_polls must be at least 1".into(),
            );
        }
        Ok(())
    }

    /// The listener's and the client's security settings hang together, and the
    /// listener does not face the network without authentication unless told to.
    fn validate_kafka_security(&self) -> Result<(), SettingsError> {
        let k = &self.kafka;
        let invalid =
            |key: &'static str, problem: String| Err(SettingsError::Invalid { key, problem });
        let listener = match k.listen_addr() {
            Ok(Some(addr)) if k.brokers.is_empty() => Some(addr),
            _ => None,
        };
        if let Some(listen) = listener {
            if let Err(exposed) = crate::kafka::security::check_exposure(
                listen,
                k.security,
                &k.sasl_mechanisms,
                k.allow_insecure,
            ) {
                return invalid("kafka.listen", exposed.to_string());
            }
        }
        if k.security.sasl() {
            if k.sasl_mechanisms.is_empty() {
                return invalid(
                    "kafka.sasl_mechanisms",
                    format!(
                        "kafka.security = \"{}\" needs at least one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                        k.security.name()
                    ),
                );
            }
            if k.users.is_empty() {
                return invalid(
                    "kafka.security",
                    format!(
                        "\"{}\" authenticates users, and there are none: add a [{}.kafka_users] table (name = \"password\") to the secrets file (snmp.secrets_file)",
                        k.security.name(),
                        self.site
                    ),
                );
            }
        }
        if k.security.tls() && (k.tls_cert.trim().is_empty() || k.tls_key.trim().is_empty()) {
            return invalid(
                "kafka.tls_cert",
                format!(
                    "kafka.security = \"{}\" needs kafka.tls_cert and kafka.tls_key (PEM files)",
                    k.security.name()
                ),
            );
        }
        if !k.brokers.is_empty() {
            if k.client_security.sasl()
                && (k.client_username.trim().is_empty() || k.client_password.is_empty())
            {
                return invalid(
                    "kafka.client_username",
                    format!(
                        "kafka.client_security = \"{}\" needs kafka.client_username and a kafka_client_password in the [{}] table of the secrets file (snmp.secrets_file)",
                        k.client_security.name(),
                        self.site
                    ),
                );
            }
            if k.client_security.tls() && k.client_tls_ca.trim().is_empty() {
                return invalid(
                    "kafka.client_tls_ca",
                    format!(
                        "kafka.client_security = \"{}\" needs the CA certificates to check the brokers against (a PEM file)",
                        k.client_security.name()
                    ),
                );
            }
        }
        Ok(())
    }

    fn validate_influxdb(&self) -> Result<(), SettingsError> {
        let i = &self.influxdb;
        let invalid = |key, problem: &str| {
            Err(SettingsError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        // The original allowed up to 1000; larger batches would also outgrow what one
        // read of the topic log returns (8 MiB), which the consumer takes for "caught up".
        if !(1..=1000).contains(&i.batch_size) {
            return invalid("influxdb.batch_size", "must be 1..1000 points");
        }
        if i.max_emit_interval > 3600 {
            return invalid("influxdb.max_emit_interval", "must be 0..3600 seconds");
        }
        if !(1..=300).contains(&i.timeout) {
            return invalid("influxdb.timeout", "must be 1..300 seconds");
        }
        if !(1..=3600).contains(&i.retry_backoff_max) {
            return invalid("influxdb.retry_backoff_max", "must be 1..3600 seconds");
        }
        if !i.enabled() {
            return Ok(());
        }
        let url = i.url.trim();
        let shown = crate::secret::redact_url(url);
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .unwrap_or_default();
        if host.is_empty() || host.starts_with('/') {
            return invalid(
                "influxdb.url",
                &format!("`{shown}`: expected http://HOST:PORT or https://HOST:PORT, e.g. http://127.0.0.1:8086"),
            );
        }
        if !i.tls_ca.trim().is_empty() && !url.starts_with("https://") {
            return invalid(
                "influxdb.tls_ca",
                &format!("is set but influxdb.url `{shown}` is not https"),
            );
        }
        match i.api {
            InfluxApi::V1 if i.database.is_empty() => invalid(
                "influxdb.database",
                "must be set when influxdb.api = \"v1\"",
            ),
            InfluxApi::V2 if i.org.is_empty() => {
                invalid("influxdb.org", "must be set when influxdb.api = \"v2\"")
            }
            InfluxApi::V2 if i.bucket.is_empty() => {
                invalid("influxdb.bucket", "must be set when influxdb.api = \"v2\"")
            }
            _ => Ok(()),
        }
    }

    /// The topic metrics groups of this site go to.
    pub fn processed_topic(&self) -> String {
        format!("{}-processed", self.site)
    }

    /// The topic discovery publishes resource sets of this site to.
    pub fn resources_topic(&self) -> String {
        format!("{}-resources", self.site)
    }

    /// Every site this node serves: `site` first, then `sites` (each once).
    pub fn served_sites(&self) -> Vec<crate::model::Site> {
        let mut all = vec![self.site.clone()];
        for s in &self.sites {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        all
    }

    /// `<site>-processed` of every served site.
    pub fn processed_topics(&self) -> Vec<String> {
        self.served_sites()
            .iter()
            .map(|s| format!("{s}-processed"))
            .collect()
    }

    /// `<site>-resources` of every served site.
    pub fn resources_topics(&self) -> Vec<String> {
        self.served_sites()
            .iter()
            .map(|s| format!("{s}-resources"))
            .collect()
    }

    /// The `[snmp]` settings for a resource of `site`: that site's secrets when the node
    /// serves it, else `site`'s (the node's own).
    pub fn snmp_for(&self, site: &str) -> &SnmpSettings {
        self.site_snmp.get(site).unwrap_or(&self.snmp)
    }

    /// The traps topics the InfluxDB sink writes (`influxdb.traps` with the receiver on):
    /// every served site's.
    pub fn influx_trap_topics(&self) -> Vec<String> {
        match self.influxdb.traps {
            true => self.traps_topics(),
            false => Vec::new(),
        }
    }

    /// `<site>-traps` of every served site while the trap receiver is on; else none.
    pub fn traps_topics(&self) -> Vec<String> {
        if self.traps.listen.trim().is_empty() {
            return Vec::new();
        }
        self.served_sites()
            .iter()
            .map(|s| format!("{s}-traps"))
            .collect()
    }

    /// The topic received traps and informs go to.
    pub fn traps_topic(&self) -> String {
        format!("{}-traps", self.site)
    }

    /// The topic whose partitions a cluster's nodes split the site's fleet by (no
    /// messages: its partitions are the units of work).
    pub fn work_topic(&self) -> String {
        format!("{}-work", self.site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::SecurityLevel;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.site, "local");
        assert_eq!(s.http.listen.to_string(), "127.0.0.1:8080");
        assert!(s.demo.enabled);
        assert_eq!(s.processed_topic(), "local-processed");
    }

    #[test]
    fn string_keys_from_the_environment_stay_verbatim() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__SNMP__COMMUNITY", "0123"),
                ("PANOPTES__SITE", "007"),
            ]),
        )
        .unwrap();
        assert_eq!(s.snmp.community.expose(), "0123");
        assert_eq!(s.site, "007");
    }

    #[test]
    fn env_and_file_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "site = \"dc1\"\n[http]\nlisten = \"127.0.0.1:9\"\n").unwrap();
        let s = Settings::load_with_env(
            Some(&path),
            env(&[
                ("PANOPTES__HTTP__LISTEN", "127.0.0.1:7"),
                ("PANOPTES__DATA_DIR", "/tmp/x"),
                ("PANOPTES__PLUGINS__POLLING", "a,b"),
                ("PANOPTES__DEMO__ENABLED", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(s.site, "dc1");
        assert_eq!(s.http.listen.port(), 7);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            s.plugins.polling,
            vec![PathBuf::from("a"), PathBuf::from("b")]
        );
        assert!(!s.demo.enabled);
    }

    #[test]
    fn influxdb_is_off_by_default_and_configurable_from_the_environment() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert!(!s.influxdb.enabled());
        assert_eq!(s.influxdb.api, InfluxApi::V2);
        assert_eq!(s.influxdb.batch_size, 200);
        assert_eq!(s.influxdb.max_emit_interval, 15);
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__INFLUXDB__URL", "http://127.0.0.1:8086"),
                ("PANOPTES__INFLUXDB__API", "v1"),
                ("PANOPTES__INFLUXDB__DATABASE", "metrics"),
                ("PANOPTES__INFLUXDB__TOKEN", "s3cr3t-t0ken"),
                ("PANOPTES__INFLUXDB__BATCH_SIZE", "50"),
            ]),
        )
        .unwrap();
        assert!(s.influxdb.enabled());
        assert_eq!(s.influxdb.api, InfluxApi::V1);
        assert_eq!(s.influxdb.database, "metrics");
        assert_eq!(s.influxdb.batch_size, 50);
        assert_eq!(s.influxdb.token.expose(), "s3cr3t-t0ken");
        for secret in ["0123", "1e5", "true", "12.50"] {
            let s = Settings::load_with_env(None, env(&[("PANOPTES__INFLUXDB__PASSWORD", secret)]))
                .unwrap();
            assert_eq!(s.influxdb.password.expose(), secret);
        }
        let printed = format!("{s:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        for (vars, key) in [
            (
                vec![
                    ("PANOPTES__INFLUXDB__URL", "http://x:8086"),
                    ("PANOPTES__INFLUXDB__TLS_CA", "/ca.pem"),
                ],
                "influxdb.tls_ca",
            ),
            (
                vec![("PANOPTES__INFLUXDB__URL", "127.0.0.1:8086")],
                "influxdb.url",
            ),
            (
                vec![
                    ("PANOPTES__INFLUXDB__URL", "http://x:8086"),
                    ("PANOPTES__INFLUXDB__ORG", ""),
                ],
                "influxdb.org",
            ),
            (
                vec![("PANOPTES__INFLUXDB__BATCH_SIZE", "0")],
                "influxdb.batch_size",
            ),
            (vec![("PANOPTES__INFLUXDB__API", "v3")], "api"),
        ] {
            let e = Settings::load_with_env(None, env(&vars))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{vars:?}: {e}");
        }
    }

    #[test]
    fn storage_durability_is_process_by_default_and_fsync_on_request() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.storage.durability, DurabilitySetting::Process);
        assert_eq!(
            s.storage.durability.durability(),
            panoptes_storage::Durability::Process
        );
        let s = Settings::load_with_env(None, env(&[("PANOPTES__STORAGE__DURABILITY", "fsync")]))
            .unwrap();
        assert_eq!(
            s.storage.durability.durability(),
            panoptes_storage::Durability::PowerLoss
        );
        let e = Settings::load_with_env(None, env(&[("PANOPTES__STORAGE__DURABILITY", "always")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "configuration defaults (+ PANOPTES__* environment): \"always\": expected \"process\" \
             or \"fsync\" for key `storage.durability`"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Settings::load_with_env(None, env(&[("PANOPTES__HTTP__LISTEN", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("http.listen") || e.contains("listen"), "{e}");
        let e = Settings::load_with_env(None, env(&[("PANOPTES__SITE", "a b")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("site"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[http]\nlisten_typo = 1\n").unwrap();
        let e = Settings::load_with_env(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_typo") && e.contains("p.toml"), "{e}");
        let e = Settings::load_with_env(Some(Path::new("/nonexistent.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent.toml"), "{e}");
    }

    #[test]
    fn http_listen_off_loopback_needs_a_token_or_allow_insecure() {
        let e = Settings::load_with_env(None, env(&[("PANOPTES__HTTP__LISTEN", "0.0.0.0:8080")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("configuration key `http.listen`: 0.0.0.0:8080 is not a loopback address and no http.token is set"),
            "{e}"
        );
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__HTTP__LISTEN", "0.0.0.0:8080"),
                ("PANOPTES__HTTP__TOKEN", "0042"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.http.token.expose(),
            "0042",
            "taken verbatim, not as a number"
        );
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__HTTP__LISTEN", "0.0.0.0:8080"),
                ("PANOPTES__HTTP__ALLOW_INSECURE", "true"),
            ]),
        )
        .unwrap();
        assert!(s.http.allow_insecure && s.http.token.is_empty());
        let e = Settings::load_with_env(None, env(&[("PANOPTES__HTTP__TLS_CERT", "/x.pem")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("set both http.tls_cert and http.tls_key"), "{e}");
    }

    /// A TOML error names the file, line and column, never the text of the line: it may
    /// hold a secret.
    #[test]
    fn toml_errors_name_the_line_not_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(&secrets, "[local]\ncommunity = \"hunter2-secret\" extra\n").unwrap();
        let e = Settings::load_with_env(
            None,
            env(&[("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            e.contains("secrets.toml") && e.contains("line 2, column"),
            "{e}"
        );

        let config = dir.path().join("panoptes.toml");
        std::fs::write(
            &config,
            "site = \"dc1\"\n[snmp]\ncommunity = \"hunter2-secret\n",
        )
        .unwrap();
        let e = Settings::load_with_env(Some(&config), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            e.contains("panoptes.toml") && e.contains("not valid TOML: line 3, column"),
            "{e}"
        );

        std::fs::write(
            &secrets,
            "[local]\nhttp_token = \"t0k3n\"\ncommunity = \"c\"\n",
        )
        .unwrap();
        let s = Settings::load_with_env(
            None,
            env(&[("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(s.http.token.expose(), "t0k3n");
        assert_eq!(s.snmp.community.expose(), "c");
    }

    /// v3 passphrases from the environment are taken as written, even when they look
    /// like numbers.
    #[test]
    fn v3_passphrases_from_the_environment_are_verbatim() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__SNMP__VERSION", "3"),
                ("PANOPTES__SNMP__V3_USER", "0001"),
                ("PANOPTES__SNMP__V3_AUTH_PROTOCOL", "SHA"),
                ("PANOPTES__SNMP__V3_AUTH_PASSPHRASE", "00012345678"),
                ("PANOPTES__SNMP__V3_PRIV_PROTOCOL", "AES"),
                ("PANOPTES__SNMP__V3_PRIV_PASSPHRASE", "1e100000"),
            ]),
        )
        .unwrap();
        assert_eq!(s.snmp.v3_user, "0001");
        assert_eq!(s.snmp.v3_auth_passphrase.expose(), "00012345678");
        assert_eq!(s.snmp.v3_priv_passphrase.expose(), "1e100000");
    }

    #[test]
    fn trap_settings_and_users_from_the_secrets_file() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(
            s.traps.listen_addr().unwrap(),
            Some(([127, 0, 0, 1], 10162).into()),
            "the demo listens for traps"
        );
        let off =
            Settings::load_with_env(None, env(&[("PANOPTES__DEMO__ENABLED", "false")])).unwrap();
        assert_eq!(
            off.traps.listen_addr().unwrap(),
            None,
            "traps are off without the demo"
        );
        let quiet =
            Settings::load_with_env(None, env(&[("PANOPTES__DEMO__TRAPS_LISTEN", "")])).unwrap();
        assert_eq!(quiet.traps.listen_addr().unwrap(), None);
        let chosen =
            Settings::load_with_env(None, env(&[("PANOPTES__TRAPS__LISTEN", "127.0.0.1:0")]))
                .unwrap();
        assert_eq!(
            chosen.traps.listen_addr().unwrap(),
            Some(([127, 0, 0, 1], 0).into()),
            "traps.listen wins over the demo's"
        );
        assert_eq!((s.traps.max_varbinds, s.traps.queue_capacity), (128, 4096));
        assert!(s.traps.communities.is_empty() && s.traps.users.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.toml");
        let load = |text: &str| {
            std::fs::write(&secrets, text).unwrap();
            Settings::load_with_env(
                None,
                env(&[
                    ("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap()),
                    ("PANOPTES__TRAPS__LISTEN", "127.0.0.1:10162"),
                ]),
            )
        };
        let s = load(
            "[local]\ntrap_communities = [\"0123\", \"public\"]\n\
             [local.trap_users.ops]\nauth_protocol = \"SHA-256\"\nauth_passphrase = \"authpass123\"\n\
             priv_protocol = \"AES\"\npriv_passphrase = \"privpass123\"\n\
             [local.trap_users.monitor]\n",
        )
        .unwrap();
        assert_eq!(
            s.traps.listen_addr().unwrap(),
            Some("127.0.0.1:10162".parse().unwrap())
        );
        let communities: Vec<&str> = s.traps.communities.iter().map(|c| c.expose()).collect();
        assert_eq!(communities, ["0123", "public"]);
        let users: Vec<(String, SecurityLevel)> = s
            .traps
            .users
            .iter()
            .map(|u| (u.name.clone(), u.level()))
            .collect();
        assert_eq!(
            users,
            [
                ("monitor".to_string(), SecurityLevel::NoAuthNoPriv),
                ("ops".to_string(), SecurityLevel::AuthPriv)
            ]
        );
        assert!(!format!("{:?}", s.traps).contains("authpass123"));

        let err = |text: &str| load(text).unwrap_err().to_string();
        assert!(err("[local.trap_users.ops]\nauth_protocol = \"SHA-256\"\n")
            .ends_with("[local.trap_users.ops]: auth_protocol needs auth_passphrase"),);
        assert!(err("[local.trap_users.ops]\nauth_protocol = \"SHA-256\"\nauth_passphrase = \"short\"\n")
            .ends_with("[local.trap_users.ops]: v3 user \"ops\": passphrases must be at least 8 characters (RFC 3414 11.2)"));
        assert!(err(
            "[local.trap_users.ops]\npriv_protocol = \"AES\"\npriv_passphrase = \"privpass123\"\n"
        )
        .ends_with("[local.trap_users.ops]: privacy needs authentication: set auth_protocol too"));
        let e = Settings::load_with_env(None, env(&[("PANOPTES__TRAPS__LISTEN", "localhost:162")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "configuration key `traps.listen`: traps.listen = \"localhost:162\" is not an address like 127.0.0.1:10162: invalid socket address syntax"
        );
    }

    #[test]
    fn kafka_security_settings_hang_together() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(
            &secrets,
            "[local]\nkafka_client_password = \"client-s3cret\"\n[local.kafka_users]\ningest = \"ingest-s3cret\"\n",
        )
        .unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            "[kafka]\nsecurity = \"sasl_plaintext\"\nsasl_mechanisms = [\"SCRAM-SHA-256\"]\n\n[[kafka.acl]]\nprincipal = \"ingest\"\noperations = [\"produce\"]\ntopics = [\"local-*\"]\n",
        )
        .unwrap();
        let path = secrets.to_str().unwrap();
        let s =
            Settings::load_with_env(Some(&file), env(&[("PANOPTES__SNMP__SECRETS_FILE", path)]))
                .unwrap();
        assert_eq!(s.kafka.security, SecurityProtocol::SaslPlaintext);
        assert_eq!(s.kafka.sasl_mechanisms, vec![Mechanism::ScramSha256]);
        assert_eq!(s.kafka.users["ingest"].expose(), "ingest-s3cret");
        assert_eq!(s.kafka.client_password.expose(), "client-s3cret");
        assert_eq!(s.kafka.acl.len(), 1);
        assert!(!s.kafka.auto_create_topics, "off by default");
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");

        let refused = |vars: &[(&str, &str)]| {
            Settings::load_with_env(None, env(vars))
                .unwrap_err()
                .to_string()
        };
        let e = refused(&[("PANOPTES__KAFKA__LISTEN", "0.0.0.0:9092")]);
        assert!(
            e.starts_with("configuration key `kafka.listen`: kafka.listen = 0.0.0.0:9092 is not a loopback address"),
            "{e}"
        );
        Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__KAFKA__LISTEN", "0.0.0.0:9092"),
                ("PANOPTES__KAFKA__ALLOW_INSECURE", "true"),
            ]),
        )
        .unwrap();
        let e = refused(&[("PANOPTES__KAFKA__SECURITY", "sasl_ssl")]);
        assert!(
            e.contains("there are none: add a [local.kafka_users] table"),
            "{e}"
        );
        let e = refused(&[("PANOPTES__KAFKA__SECURITY", "ssl")]);
        assert!(e.contains("needs kafka.tls_cert and kafka.tls_key"), "{e}");
        let e = refused(&[
            ("PANOPTES__KAFKA__BROKERS", "k1:9092"),
            ("PANOPTES__KAFKA__CLIENT_SECURITY", "sasl_ssl"),
        ]);
        assert!(e.contains("kafka.client_username"), "{e}");
        let e = refused(&[("PANOPTES__KAFKA__SASL_MECHANISMS", "GSSAPI")]);
        assert!(
            e.contains("expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            "{e}"
        );
        let e = refused(&[("PANOPTES__KAFKA__MAX_PARTITIONS_PER_TOPIC", "2147483647")]);
        assert!(e.contains("kafka.max_partitions_per_topic"), "{e}");
        let e = refused(&[("PANOPTES__KAFKA__MAX_FRAME_BYTES", "134217728")]);
        assert!(e.contains("kafka.max_bytes_in_flight"), "{e}");
    }

    #[test]
    fn snmp_v3_settings_and_secrets_file() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(
            &secrets,
            "[dc1]\ncommunity = \"s3cret\"\nv3_auth_passphrase = \"auth-from-file\"\n\n[other]\ncommunity = \"x\"\n",
        )
        .unwrap();
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__SITE", "dc1"),
                ("PANOPTES__SNMP__VERSION", "3"),
                ("PANOPTES__SNMP__V3_USER", "ops"),
                ("PANOPTES__SNMP__V3_AUTH_PROTOCOL", "SHA-256"),
                ("PANOPTES__SNMP__V3_PRIV_PROTOCOL", "AES"),
                ("PANOPTES__SNMP__V3_PRIV_PASSPHRASE", "priv-from-env"),
                ("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert_eq!(s.snmp.community.expose(), "s3cret");
        let user = s.snmp.usm_user().unwrap().unwrap();
        assert_eq!(user.auth.as_ref().unwrap().1.expose(), "auth-from-file");
        assert_eq!(user.privacy.as_ref().unwrap().1.expose(), "priv-from-env");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("auth-from-file"),
            "{shown}"
        );

        let e = Settings::load_with_env(
            None,
            env(&[
                ("PANOPTES__SNMP__VERSION", "3"),
                ("PANOPTES__SNMP__V3_USER", "ops"),
                ("PANOPTES__SNMP__V3_AUTH_PROTOCOL", "SHA3"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("snmp.v3_auth_protocol") && e.contains("SHA3"),
            "{e}"
        );
        let e = Settings::load_with_env(
            None,
            env(&[("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[local]") && e.contains("secrets.toml"), "{e}");
    }
}
