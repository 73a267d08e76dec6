//! The entry points of the fuzz targets in `fuzz/`, one function per target, kept here so
//! that the replay tests (`tests/fuzz_corpora.rs`) feed the checked-in corpora to exactly
//! the code the fuzzer ran. Not part of the API.
//!
//! Each function takes arbitrary bytes and does what the program does with such input
//! from outside (a datagram, a Kafka connection's bytes, a plugin file, a filter, a DSL
//! document), then looks at the result the way a caller would (formats errors, encodes
//! values). It asserts nothing: a target fails only by panicking, hanging or allocating
//! without bound, which is what the fuzzer looks for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::RequestKind;

use crate::config::{PluginConfig, PluginKind};
use crate::filter::ResourceFilter;
use crate::kafka::acl::Authorizer;
use crate::kafka::{read_frame, respond_adjusted, Broker, BrokerConfig, FrameLimits};
use crate::model::Resource;
use crate::plugins::generic_snmp::document::TableSource;
use crate::plugins::generic_snmp::expr::{
    compile, compile_lambda, Env, EvalContext, Names, Table, Value,
};
use crate::plugins::generic_snmp::polling::{self, Fetched, Options};
use crate::plugins::generic_snmp::{Document, SchemaVersion};
use crate::plugins::group_set::GroupSet;
use crate::plugins::status::StatusTracker;
use crate::simulate::{Agent, CounterMode, DeviceSecurity, Recording, ResponseBuffer, Scratch};
use crate::snmp::message::{peek_message_id, Message, Pdu, ScopedPdu};
use crate::snmp::usm::{KeyCache, LocalizedKeys};
use crate::snmp::{AuthProtocol, PrivProtocol, UsmUser};
use crate::telemetry::Telemetry;

// ---------------------------------------------------------------------------------------
// SNMP

/// The engine ID of the simulated agent, and the one the client-side keys are localized
/// to: seed replies from the agent then carry valid HMACs and decrypt.
pub const SNMP_ENGINE_ID: &[u8] = b"\x80\x00\x1f\x88\x05fuzz-engine";

/// The v1/v2c community of the simulated agent.
pub const SNMP_COMMUNITY: &str = "public";

/// The agent's v3 users: every security level, both privacy families, and MD5/SHA-1/SHA-2.
pub fn snmp_users() -> Vec<UsmUser> {
    vec![
        UsmUser::no_auth("fuzz-none"),
        UsmUser::no_auth("fuzz-auth").with_auth(AuthProtocol::Sha256, "fuzz-auth-pass"),
        UsmUser::no_auth("fuzz-aes")
            .with_auth(AuthProtocol::Sha1, "fuzz-auth-pass")
            .with_privacy(PrivProtocol::Aes128, "fuzz-priv-pass"),
        UsmUser::no_auth("fuzz-aes256")
            .with_auth(AuthProtocol::Sha512, "fuzz-auth-pass")
            .with_privacy(PrivProtocol::Aes256, "fuzz-priv-pass"),
        UsmUser::no_auth("fuzz-des")
            .with_auth(AuthProtocol::Md5, "fuzz-auth-pass")
            .with_privacy(PrivProtocol::Des, "fuzz-priv-pass"),
    ]
}

/// Passphrases are hashed (a megabyte each) once per process.
fn snmp_key_cache() -> &'static KeyCache {
    static KEYS: OnceLock<KeyCache> = OnceLock::new();
    KEYS.get_or_init(KeyCache::default)
}

/// The users' keys localized to [`SNMP_ENGINE_ID`], as the client holds them.
pub fn snmp_client_keys() -> &'static [(UsmUser, LocalizedKeys)] {
    static KEYS: OnceLock<Vec<(UsmUser, LocalizedKeys)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        snmp_users()
            .into_iter()
            .map(|user| {
                let keys = snmp_key_cache().localize(&user, SNMP_ENGINE_ID);
                (user, keys)
            })
            .collect()
    })
}

/// A datagram arriving at the client: what the shared socket's receiver and the client's
/// reply reading do with it (demultiplex by ID, decode, authenticate and decrypt with
/// every key held, decode the varbinds and turn their values into text).
pub fn snmp_response(data: &[u8]) {
    let keys: Vec<&LocalizedKeys> = snmp_client_keys().iter().map(|(_, k)| k).collect();
    snmp_response_with(data, &keys);
}

/// [`snmp_response`] with the keys of the caller's choosing.
pub fn snmp_response_with(data: &[u8], keys: &[&LocalizedKeys]) {
    let _ = peek_message_id(data);
    match Message::decode(data) {
        Ok(Message::Community { pdu, .. }) => read_pdu(&pdu),
        Ok(Message::V3(message)) => {
            let _ = (message.level(), message.reportable());
            for keys in keys {
                let _ = message.authentic(data, keys);
                match message.plaintext(keys) {
                    Ok(plain) => match ScopedPdu::decode(&plain) {
                        Ok(scoped) => read_pdu(&scoped.pdu),
                        Err(e) => drop(e.to_string()),
                    },
                    Err(e) => drop(e.to_string()),
                }
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

fn read_pdu(pdu: &Pdu<'_>) {
    match pdu.decode_varbinds() {
        Ok(varbinds) => {
            for varbind in varbinds {
                let _ = varbind.oid.to_string();
                let _ = varbind.value.to_display_string();
                let _ = polling::snmp_text(&varbind.value);
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// Every SMI type, a table to walk, a counter and sysUpTime (which advance).
const SNMP_RECORDING: &str = "\
1.3.6.1.2.1.1.1.0|4|fuzz switch
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.9.1.1
1.3.6.1.2.1.1.3.0|67|1000
1.3.6.1.2.1.1.5.0|4x|66757a7a00ff
1.3.6.1.2.1.2.2.1.2.1|4|eth1
1.3.6.1.2.1.2.2.1.2.2|4|eth2
1.3.6.1.2.1.2.2.1.5.1|66|1000000000
1.3.6.1.2.1.2.2.1.10.1|65|100
1.3.6.1.2.1.2.2.1.10.2|65|4294967295
1.3.6.1.2.1.4.20.1.1.10.0.0.1|64|10.0.0.1
1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615
1.3.6.1.2.1.31.1.1.1.6.2|70|2000
1.3.6.1.4.1.9.1|2|-7
1.3.6.1.4.1.9.2|68|0102
1.3.6.1.4.1.9.3|5|
";

/// Two agents on one recording: one answering up to the largest datagram, one up to the
/// smallest message every SNMP agent must accept (484 bytes), which trims GETBULK answers
/// and answers tooBig.
fn snmp_agents() -> &'static [Agent; 2] {
    static AGENTS: OnceLock<[Agent; 2]> = OnceLock::new();
    AGENTS.get_or_init(|| {
        let recording = match Recording::parse(SNMP_RECORDING, "fuzz") {
            Ok(recording) => Arc::new(recording),
            Err(e) => panic!("the fuzz recording does not parse: {e}"),
        };
        let security = Arc::new(DeviceSecurity::new(
            SNMP_ENGINE_ID.to_vec(),
            &snmp_users(),
            snmp_key_cache(),
        ));
        let agent = |max| {
            Agent::new(
                Arc::clone(&recording),
                SNMP_COMMUNITY,
                CounterMode::Advancing,
                max,
            )
            .with_security(Arc::clone(&security))
        };
        [agent(crate::simulate::MAX_UDP_PAYLOAD), agent(484)]
    })
}

/// A datagram arriving at the simulator: the agent's answer to it (v1, v2c or v3), and
/// the client's reading of that answer.
pub fn snmp_agent(data: &[u8]) {
    for agent in snmp_agents() {
        let mut scratch = Scratch::default();
        let mut out = ResponseBuffer::new(agent.community_len(), 0);
        if agent.handle(data, Duration::from_secs(90), &mut scratch, &mut out)
            == crate::simulate::Outcome::Reply
        {
            snmp_response(out.message());
        }
    }
}

/// The trap receiver's checks: community `public`, the [`snmp_users`] as v3 trap users,
/// [`SNMP_ENGINE_ID`] as its own engine (so seed informs to it authenticate).
fn trap_decoder() -> &'static crate::traps::receive::Decoder {
    static DECODER: OnceLock<crate::traps::receive::Decoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        crate::traps::receive::Decoder::new(
            vec![crate::snmp::Community::new(SNMP_COMMUNITY)],
            128,
            crate::traps::v3::V3Security::new(&snmp_users(), SNMP_ENGINE_ID.to_vec(), 1),
        )
    })
}

/// A datagram arriving at the trap receiver: its decision (decode, community, v3 USM as
/// either engine, varbind cap), and for an accepted notification the JSON event.
pub fn trap_datagram(data: &[u8]) {
    use crate::traps::event::{Received, TrapEvent};
    use crate::traps::receive::Handled;
    match trap_decoder().handle(data) {
        Handled::Accepted(accepted) => {
            let event = TrapEvent::new(
                &accepted.notification,
                Received {
                    version: accepted.version,
                    source: std::net::SocketAddr::from(([127, 0, 0, 1], 162)),
                    v3_user: accepted.v3_user.clone(),
                    received_at: 0.0,
                    resource: None,
                    names: &crate::traps::names::WellKnown,
                },
            );
            let _ = serde_json::to_vec(&event);
            if let Some(ack) = &accepted.ack {
                snmp_response(ack);
            }
        }
        Handled::Discovery { report } => snmp_response(&report),
        Handled::Rejected { detail, report, .. } => {
            drop(detail);
            if let Some(report) = report {
                snmp_response(&report);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Kafka

/// A Kafka connection's bytes: size-prefixed frames, read by the listener's framing and
/// answered in order by a broker of its own (in memory), until the bytes end or the
/// broker closes the connection.
///
/// Two waits are Kafka's and not hangs, and are cut short here: a Fetch waits up to its
/// `max_wait_ms` for records (sent with 0 here), and a JoinGroup or SyncGroup waits for
/// the other members of its group, which on one connection can only end by the group's
/// deadline (the listener's ticker ends it; here time jumps ahead instead).
pub fn kafka_request(data: &[u8]) {
    let broker = Arc::new(Broker::new(
        kafka_config(),
        panoptes_storage::Store::memory(),
        Arc::new(Telemetry::default()),
    ));
    let limits = &broker.config.limits;
    let frame_limits = FrameLimits {
        max: limits.max_frame_bytes,
        max_setting: "kafka.max_frame_bytes",
        min: 8,
        idle: Duration::from_secs(1),
        body: Duration::from_secs(1),
        budget_wait: Duration::from_millis(10),
    };
    kafka_runtime().block_on(async {
        let mut rest = data;
        while let Ok(frame) = read_frame(&mut rest, &frame_limits, &broker.budget).await {
            let answer = respond_adjusted(&broker, frame.bytes, |request| {
                if let RequestKind::Fetch(fetch) = request {
                    fetch.max_wait_ms = 0;
                }
            });
            tokio::pin!(answer);
            let answered = loop {
                match tokio::time::timeout(Duration::from_millis(20), &mut answer).await {
                    Ok(answered) => break answered,
                    // Past every session and rebalance timeout a request can ask for.
                    Err(_) => broker
                        .groups
                        .tick(Instant::now() + Duration::from_millis(i32::MAX as u64)),
                }
            };
            if answered.is_err() {
                break;
            }
        }
    });
}

/// The listener's defaults (its bounds as shipped), with auto-creation on and one
/// protected pipeline topic, so that those paths run too.
fn kafka_config() -> BrokerConfig {
    BrokerConfig {
        advertised_host: "127.0.0.1".into(),
        advertised_port: 9092,
        auto_create_topics: true,
        default_partitions: 2,
        cluster_id: "fuzz".into(),
        authorizer: Authorizer::open(vec!["local-processed".into()], Vec::new()),
        ..BrokerConfig::default()
    }
}

fn kafka_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => panic!("cannot start the fuzz target's runtime: {e}"),
        }
    })
}

// ---------------------------------------------------------------------------------------
// Resource filters, the DSL's expressions and documents

/// Resources to evaluate filters against: with and without metadata.
fn resources() -> &'static [Resource] {
    static RESOURCES: OnceLock<Vec<Resource>> = OnceLock::new();
    RESOURCES.get_or_init(|| {
        [
            serde_json::json!({"resource_site": "dc1", "resource_class": "network",
                "resource_subclass": "switch", "resource_type": "cisco", "resource_id": "sw1.dc1",
                "resource_endpoint": "10.0.0.1", "resource_plugin": "discovery",
                "resource_creation_timestamp": 1.0, "resource_metadata": {
                    "os_name": "CISCO IOS", "os_version": "15.2(4)E", "model": "WS-C3560G-48TS-S",
                    "snmp_community": "public", "_resource_ttl": "604800"}}),
            serde_json::json!({"resource_site": "é-site", "resource_class": "network",
                "resource_subclass": "router", "resource_type": "juniper", "resource_id": "mx1",
                "resource_endpoint": "2001:db8::1", "resource_plugin": "p",
                "resource_creation_timestamp": 2.5, "resource_metadata": {}}),
        ]
        .iter()
        .filter_map(|json| Resource::from_json(json).ok())
        .collect()
    })
}

/// A resource filter as a plugin file gives it: parsed, printed, evaluated against
/// resources; a refused one has its error message (with the quoted line) formatted.
pub fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match ResourceFilter::parse(&text) {
        Ok(filter) => {
            let _ = filter.expr().to_string();
            for resource in resources() {
                let _ = filter.matches(resource);
            }
        }
        Err(e) => {
            let _ = e.line_column();
            let _ = e.to_string();
        }
    }
}

/// The tables and scalars the expression target's names stand for.
struct FuzzNames;

const TABLE_NAMES: [&str; 4] = ["t", "u", "descr", "empty"];
const SCALAR_NAMES: [&str; 1] = ["uptime"];

impl Names for FuzzNames {
    fn table(&self, name: &str) -> Option<usize> {
        TABLE_NAMES.iter().position(|t| *t == name)
    }
    fn scalar(&self, name: &str) -> Option<usize> {
        SCALAR_NAMES.iter().position(|s| *s == name)
    }
}

fn expression_tables() -> Vec<Table> {
    let table = |rows: &[(&str, Value)]| -> Table {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let s = |text: &str| Value::Str(text.into());
    vec![
        table(&[
            ("1", s("2")),
            ("2", s("45")),
            ("3", s("-3")),
            ("10", s("0")),
        ]),
        table(&[
            ("1", Value::Int(7)),
            ("2", Value::Float(0.5)),
            ("3", Value::None),
            ("10", Value::Bool(true)),
        ]),
        table(&[
            ("1", s("Routing Engine 0")),
            ("2", s("FPC 1 CPU")),
            ("3", s("")),
            ("10", s("Fan Tray 0 Fan 1")),
        ]),
        Table::new(),
    ]
}

/// One value expression of the DSL: compiled against a few tables, evaluated at each
/// index and at none (as vendor definitions do, with `config()` and `meta()`), and as a
/// transform applied to a few values when it is a `lambda`.
pub fn expression(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let tables = expression_tables();
    let scalars = [Value::Str("12345".into())];
    let context = EvalContext {
        config: BTreeMap::from([(
            "main".to_string(),
            BTreeMap::from([("polling_frequency".to_string(), "300".to_string())]),
        )]),
        metadata: crate::model::Metadata::from_iter([(
            "model".to_string(),
            "EX4300-48T".to_string(),
        )]),
    };
    match compile(src, &FuzzNames) {
        Ok(expr) => {
            for index in [Some("1"), Some("10"), Some("missing"), None] {
                let env = Env {
                    tables: &tables,
                    scalars: &scalars,
                    index,
                    context: index.is_none().then_some(&context),
                };
                if let Ok(value) = env.eval(&expr) {
                    let _ = value.to_string();
                }
            }
        }
        Err(e) => drop(e.to_string()),
    }
    match compile_lambda(src) {
        Ok(lambda) => {
            let env = Env {
                tables: &tables,
                scalars: &scalars,
                index: None,
                context: None,
            };
            for x in [Value::Int(42), Value::Float(-0.5), Value::Str("7".into())] {
                if let Ok(value) = env.apply(&lambda, x) {
                    let _ = value.to_string();
                }
            }
        }
        Err(e) => drop(e.to_string()),
    }
}

/// What a bulk walk returns for every table of a fuzzed document: walked values are
/// strings, the indices those of the conformance documents' lists.
const WALKED: [(&str, &str); 5] = [
    ("1", "1"),
    ("2", "45"),
    ("2.1.1.0", "Routing Engine 0"),
    ("4.1.1.0", "2"),
    ("7.1.0.0", ""),
];

/// A Generic SNMP DSL document as the enrichment store holds it: JSON parsed, compiled
/// under both schema versions, and run over tables filled as a device would, producing
/// metrics groups that are then serialized as they would be published.
pub fn dsl_document(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Some(resource) = resources().first() else {
        return;
    };
    for schema in [SchemaVersion::V01, SchemaVersion::V02] {
        let doc = match Document::compile(&json, schema) {
            Ok(doc) => doc,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        let tables = doc
            .tables
            .iter()
            .enumerate()
            .map(|(slot, t)| match &t.source {
                TableSource::Static(values) => values.clone(),
                TableSource::BulkWalk {
                    index_transform, ..
                } => {
                    let rows = WALKED
                        .iter()
                        .skip(slot % 2)
                        .map(|(index, value)| (index.to_string(), Value::Str(value.to_string())))
                        .collect();
                    polling::transform_indices(rows, index_transform)
                        .into_iter()
                        .collect()
                }
            })
            .collect();
        let scalars = doc
            .scalars
            .iter()
            .map(|_| Value::Str("12345".into()))
            .collect();
        let fetched = Fetched { tables, scalars };
        let options = Options {
            plugin_name: "fuzz".into(),
            interval: 60,
            schema,
            namespace: "metrics".into(),
            status_metric: "polling_status".into(),
            non_repeaters: None,
            max_repetitions: None,
            from_store: true,
            file: None,
        };
        let mut status = StatusTracker::default();
        let mut out = GroupSet::default();
        match polling::assemble(
            &doc,
            &fetched,
            resource,
            &options,
            1.0,
            &mut status,
            &mut out,
        ) {
            Ok(()) => {
                for group in out.into_vec() {
                    let _ = serde_json::to_vec(&group);
                }
            }
            Err(e) => drop(e.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Plugin files

/// A plugin file, written to a temporary file and loaded as INI (`.panoptes-plugin`)
/// and as TOML, as each kind of plugin; a loaded polling plugin's options are read.
pub fn plugin_file(data: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("panoptes-fuzz-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    for extension in ["panoptes-plugin", "toml"] {
        let path = dir.join(format!("{n}.{extension}"));
        if std::fs::write(&path, data).is_err() {
            continue;
        }
        for kind in [
            PluginKind::Discovery,
            PluginKind::Enrichment,
            PluginKind::Polling,
        ] {
            match PluginConfig::load(&path, kind) {
                Ok(plugin) => {
                    let _ = plugin.normalized_name();
                    let _ = Options::from_plugin(&plugin);
                }
                Err(e) => drop(e.to_string()),
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

// ---------------------------------------------------------------------------------------
// MIB files

/// A MIB file in a `[mibs] dirs` directory of its own, loaded with the built-in modules
/// as the node loads them; names and numbers looked up both ways, a value rendered under
/// whatever the file defines, and the directory checked as `panoptes mib check` does.
pub fn mib_module(data: &[u8]) {
    use crate::mib::{Mibs, OutputOptions, Renderer};
    use crate::snmp::{Oid, SnmpValue, Varbind};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("panoptes-fuzz-mib-{}-{n}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    if std::fs::write(dir.join("FUZZ-MIB.txt"), data).is_ok() {
        let mibs = Mibs::load(std::slice::from_ref(&dir));
        for problem in mibs.problems() {
            drop(problem.to_string());
        }
        let _ = mibs.resolve("IF-MIB::ifHCInOctets.1");
        let render = Renderer::new(Some(&mibs), OutputOptions::default());
        for numeric in [
            ".1.3.6.1.4.1.99999.1.1.0",
            ".1.3.6.1.4.1.99999.2.1.1.2.1.4.5",
        ] {
            if let Ok(oid) = numeric.parse::<Oid>() {
                let _ = mibs.full_name(&oid);
                for value in [
                    SnmpValue::Integer(-5),
                    SnmpValue::OctetString(data.iter().take(16).copied().collect()),
                    SnmpValue::Gauge32(7),
                ] {
                    drop(render.line(&Varbind::new(oid.clone(), value)));
                }
            }
        }
        for name in mibs.module_names() {
            let _ = mibs.resolve(&format!("{name}::nothing"));
        }
        drop(Mibs::check_dir(&dir));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
