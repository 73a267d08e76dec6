//! The trap receiver with real senders: net-snmp's `snmptrap` (v1, v2c, v3 authPriv) and
//! `snmpinform` (v2c, v3 authPriv, which must get their acknowledgement), read back from
//! `<site>-traps` with kcat; refused and garbage datagrams counted on `/metrics`, with
//! nothing published.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{net_snmp, program, run_limited, Node, NodeEnv};

const AUTH: &str = "trap-auth-pass";
const PRIV: &str = "trap-priv-pass";
/// `-v 3` as user `ops` at authPriv (SHA-256, AES) with the secrets file's passphrases,
/// then `rest`.
fn ops_auth_priv<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-v", "3", "-u", "ops", "-l", "authPriv", "-a", "SHA-256", "-A", AUTH, "-x", "AES", "-X",
        PRIV,
    ];
    args.extend_from_slice(rest);
    args
}

/// The engine ID our v3 traps claim (a trap's sender is its authoritative engine).
const SENDER_ENGINE: &str = "0x80001f8805747261707465737431";

/// A demo node with the trap receiver on a free port, community `public` only and v3
/// user `ops` (SHA-256 / AES), ready (its demo switch, 127.0.0.1, is a known resource).
fn start() -> (NodeEnv, Node) {
    start_with("")
}

/// [`start`], with more of the secrets file (tables after `[local.trap_users.ops]`).
fn start_with(more_secrets: &str) -> (NodeEnv, Node) {
    let mut env = NodeEnv::demo(60);
    let secrets = env.dir.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        format!(
            "[local]\ntrap_communities = [\"public\"]\n\
             [local.trap_users.ops]\nauth_protocol = \"SHA-256\"\nauth_passphrase = \"{AUTH}\"\n\
             priv_protocol = \"AES\"\npriv_passphrase = \"{PRIV}\"\n{more_secrets}"
        ),
    )
    .unwrap();
    env.set("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap());
    env.set("PANOPTES__TRAPS__LISTEN", "127.0.0.1:0");
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    (env, node)
}

/// Runs a net-snmp tool with its persistent state in `dir` (not shared with other tests)
/// and no MIBs.
fn net_snmp_tool(dir: &Path, tool: &str, args: &[&str]) -> Output {
    let mut c = Command::new(net_snmp(tool));
    c.args(args)
        .env("MIBS", "")
        .env("MIBDIRS", "/nonexistent")
        .env("SNMP_PERSISTENT_DIR", dir.join("net-snmp"))
        .env("SNMPCONFPATH", dir.join("net-snmp"));
    run_limited(c, b"", Duration::from_secs(60))
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The topic's messages as (key, event), once there are at least `n` (60 s at most).
fn read_traps(env: &NodeEnv, n: usize) -> Vec<(String, Value)> {
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let start = Instant::now();
    loop {
        let mut c = Command::new(program(
            "kcat",
            "install kcat (Debian: `apt-get install -y kcat`)",
        ));
        c.args([
            "-b",
            &broker,
            "-C",
            "-t",
            "local-traps",
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .args(["-f", "%k\t%s\n"]);
        let out = run_limited(c, b"", Duration::from_secs(60));
        ok(&out, "kcat -C -t local-traps");
        let messages: Vec<(String, Value)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let (key, value) = line.split_once('\t').unwrap_or_else(|| panic!("{line}"));
                let event = serde_json::from_str(value).unwrap_or_else(|e| panic!("{e}: {value}"));
                (key.to_string(), event)
            })
            .collect();
        if messages.len() >= n {
            return messages;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {n} trap events after 60 s: {messages:?}",
            messages.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The one event with this trap OID.
fn event<'a>(events: &'a [(String, Value)], trap_oid: &str) -> &'a (String, Value) {
    let found: Vec<_> = events
        .iter()
        .filter(|(_, e)| e["trap_oid"] == trap_oid)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "events with trap_oid {trap_oid}: {events:?}"
    );
    found[0]
}

/// `value` of a counter series on `/metrics` (0 when absent).
fn counter(env: &NodeEnv, series: &str) -> f64 {
    let (code, text) = env.http_get("/metrics").unwrap();
    assert_eq!(code, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

fn assert_common(key: &str, e: &Value, version: &str, kind: &str) {
    assert_eq!(key, "demo-switch-48", "{e}");
    assert_eq!(e["version"], version, "{e}");
    assert_eq!(e["kind"], kind, "{e}");
    assert_eq!(e["resource"]["resource_id"], "demo-switch-48", "{e}");
    assert_eq!(e["resource"]["resource_endpoint"], "127.0.0.1", "{e}");
    let source: SocketAddr = e["source"].as_str().unwrap().parse().unwrap();
    assert_eq!(source.ip().to_string(), "127.0.0.1");
    let received = e["received_at"].as_f64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        received <= now && received > now - 300.0,
        "received_at {received}"
    );
    assert!(
        e.get("community").is_none(),
        "the community is a secret: {e}"
    );
}

#[test]
fn traps_and_informs_of_every_version_reach_the_topic() {
    let (env, node) = start();
    let dir = env.dir.path();
    let to = env.traps_addr().to_string();

    // v2c linkDown with a varbind of each type.
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &[
            "-v",
            "2c",
            "-c",
            "public",
            &to,
            "4242",
            "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.3",
            "i",
            "3",
            "1.3.6.1.2.1.2.2.1.2.3",
            "s",
            "eth3 down",
            "1.3.6.1.2.1.2.2.1.10.3",
            "c",
            "4294967295",
            "1.3.6.1.2.1.2.2.1.5.3",
            "u",
            "1000000000",
            "1.3.6.1.2.1.1.3.0",
            "t",
            "12345",
            "1.3.6.1.2.1.1.2.0",
            "o",
            "1.3.6.1.4.1.8072.3.2.10",
            "1.3.6.1.2.1.4.20.1.1.10.0.0.1",
            "a",
            "10.0.0.1",
            "1.3.6.1.2.1.2.2.1.6.3",
            "x",
            "00 1B FF 7F",
        ],
    );
    ok(&out, "snmptrap -v 2c");
    // v1 enterpriseSpecific: enterprise.0.specific.
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &[
            "-v",
            "1",
            "-c",
            "public",
            &to,
            "1.3.6.1.4.1.8072.2.3",
            "192.0.2.7",
            "6",
            "17",
            "777",
            "1.3.6.1.2.1.2.2.1.1.3",
            "i",
            "3",
        ],
    );
    ok(&out, "snmptrap -v 1");
    // v2c inform: exit 0 only once acknowledged.
    let out = net_snmp_tool(
        dir,
        "snmpinform",
        &[
            "-v",
            "2c",
            "-c",
            "public",
            "-r",
            "0",
            "-t",
            "10",
            &to,
            "99",
            "1.3.6.1.6.3.1.1.5.4",
            "1.3.6.1.2.1.2.2.1.1.4",
            "i",
            "4",
        ],
    );
    ok(&out, "snmpinform -v 2c");
    // v3 authPriv trap from its own engine.
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &ops_auth_priv(&[
            "-e",
            SENDER_ENGINE,
            &to,
            "500",
            "1.3.6.1.6.3.1.1.5.1",
            "1.3.6.1.2.1.1.5.0",
            "s",
            "router-1",
        ]),
    );
    ok(&out, "snmptrap -v 3");
    // v3 authPriv inform: discovers our engine, then must be acknowledged.
    let out = net_snmp_tool(
        dir,
        "snmpinform",
        &ops_auth_priv(&[
            "-r",
            "0",
            "-t",
            "10",
            &to,
            "600",
            "1.3.6.1.6.3.1.1.5.2",
            "1.3.6.1.2.1.1.5.0",
            "s",
            "router-2",
        ]),
    );
    ok(&out, "snmpinform -v 3");

    let events = read_traps(&env, 5);
    assert_eq!(events.len(), 5, "{events:?}");

    let (key, e) = event(&events, "1.3.6.1.6.3.1.1.5.3");
    assert_common(key, e, "v2c", "trap");
    assert_eq!(e["trap_name"], "linkDown");
    assert_eq!(e["agent_uptime"], 4242);
    assert_eq!(e["v3_user"], Value::Null);
    assert_eq!(e["v1"], Value::Null);
    assert_eq!(
        without_names(&e["varbinds"]),
        json!([
            {"oid": "1.3.6.1.2.1.2.2.1.1.3", "type": "INTEGER", "value": 3},
            {"oid": "1.3.6.1.2.1.2.2.1.2.3", "type": "STRING", "value": "eth3 down"},
            {"oid": "1.3.6.1.2.1.2.2.1.10.3", "type": "Counter32", "value": 4294967295u32},
            {"oid": "1.3.6.1.2.1.2.2.1.5.3", "type": "Gauge32", "value": 1000000000},
            {"oid": "1.3.6.1.2.1.1.3.0", "type": "Timeticks", "value": 12345},
            {"oid": "1.3.6.1.2.1.1.2.0", "type": "OID", "value": "1.3.6.1.4.1.8072.3.2.10"},
            {"oid": "1.3.6.1.2.1.4.20.1.1.10.0.0.1", "type": "IpAddress", "value": "10.0.0.1"},
            {"oid": "1.3.6.1.2.1.2.2.1.6.3", "type": "STRING", "value": "00:1b:ff:7f", "encoding": "hex"},
        ])
    );

    // Names from the built-in MIBs, as net-snmp prints them with the same modules.
    let names: Vec<&str> = e["varbinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(
        names,
        [
            "IF-MIB::ifIndex.3",
            "IF-MIB::ifDescr.3",
            "IF-MIB::ifInOctets.3",
            "IF-MIB::ifSpeed.3",
            "SNMPv2-MIB::sysUpTime.0",
            "SNMPv2-MIB::sysObjectID.0",
            "SNMPv2-SMI::mib-2.4.20.1.1.10.0.0.1",
            "IF-MIB::ifPhysAddress.3",
        ]
    );

    let (key, e) = event(&events, "1.3.6.1.4.1.8072.2.3.0.17");
    assert_common(key, e, "v1", "trap");
    assert_eq!(e["trap_name"], "1.3.6.1.4.1.8072.2.3.0.17");
    assert_eq!(e["agent_uptime"], 777);
    assert_eq!(
        e["v1"],
        json!({"enterprise": "1.3.6.1.4.1.8072.2.3", "agent_addr": "192.0.2.7",
               "generic_trap": 6, "specific_trap": 17})
    );
    assert_eq!(
        without_names(&e["varbinds"]),
        json!([
            {"oid": "1.3.6.1.2.1.2.2.1.1.3", "type": "INTEGER", "value": 3},
            {"oid": "1.3.6.1.6.3.18.1.3.0", "type": "IpAddress", "value": "192.0.2.7"},
            {"oid": "1.3.6.1.6.3.1.1.4.3.0", "type": "OID", "value": "1.3.6.1.4.1.8072.2.3"},
        ])
    );

    let (key, e) = event(&events, "1.3.6.1.6.3.1.1.5.4");
    assert_common(key, e, "v2c", "inform");
    assert_eq!(e["trap_name"], "linkUp");
    assert_eq!(e["agent_uptime"], 99);
    assert_eq!(
        without_names(&e["varbinds"]),
        json!([{"oid": "1.3.6.1.2.1.2.2.1.1.4", "type": "INTEGER", "value": 4}])
    );

    let (key, e) = event(&events, "1.3.6.1.6.3.1.1.5.1");
    assert_common(key, e, "v3", "trap");
    assert_eq!(e["trap_name"], "coldStart");
    assert_eq!(e["v3_user"], "ops");
    assert_eq!(e["agent_uptime"], 500);
    assert_eq!(
        without_names(&e["varbinds"]),
        json!([{"oid": "1.3.6.1.2.1.1.5.0", "type": "STRING", "value": "router-1"}])
    );

    let (key, e) = event(&events, "1.3.6.1.6.3.1.1.5.2");
    assert_common(key, e, "v3", "inform");
    assert_eq!(e["trap_name"], "warmStart");
    assert_eq!(e["v3_user"], "ops");
    assert_eq!(
        without_names(&e["varbinds"]),
        json!([{"oid": "1.3.6.1.2.1.1.5.0", "type": "STRING", "value": "router-2"}])
    );

    for (version, kind) in [
        ("v1", "trap"),
        ("v2c", "trap"),
        ("v2c", "inform"),
        ("v3", "trap"),
        ("v3", "inform"),
    ] {
        let series =
            format!("panoptes_traps_received_total{{version=\"{version}\",kind=\"{kind}\"}}");
        assert_eq!(counter(&env, &series), 1.0, "{series}");
    }
    assert_eq!(counter(&env, "panoptes_traps_published_total"), 5.0);
    assert_eq!(
        counter(
            &env,
            "panoptes_traps_reports_total{reason=\"unknown_engine_id\"}"
        ),
        1.0
    );
    let log = node.log_text();
    assert!(log.contains("trap receiver is up"), "{log}");
    assert!(
        !log.contains(AUTH) && !log.contains(PRIV),
        "a passphrase in the log"
    );
    node.stop();
}

#[test]
fn refused_and_garbage_datagrams_are_counted_and_never_published() {
    let (env, node) = start();
    let dir = env.dir.path();
    let to = env.traps_addr();
    let to_text = to.to_string();

    // A community not in trap_communities.
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &[
            "-v",
            "2c",
            "-c",
            "private",
            &to_text,
            "1",
            "1.3.6.1.6.3.1.1.5.3",
        ],
    );
    ok(&out, "snmptrap -c private");
    // A v3 trap with the wrong authentication passphrase.
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &[
            "-v",
            "3",
            "-u",
            "ops",
            "-l",
            "authPriv",
            "-a",
            "SHA-256",
            "-A",
            "not-the-passphrase",
            "-x",
            "AES",
            "-X",
            PRIV,
            "-e",
            SENDER_ENGINE,
            &to_text,
            "1",
            "1.3.6.1.6.3.1.1.5.1",
        ],
    );
    ok(&out, "snmptrap -v 3 with a wrong passphrase");
    // A v3 inform from an unknown user is refused (snmpinform reports the failure).
    let out = net_snmp_tool(
        dir,
        "snmpinform",
        &[
            "-v",
            "3",
            "-u",
            "eve",
            "-l",
            "noAuthNoPriv",
            "-r",
            "0",
            "-t",
            "5",
            &to_text,
            "1",
            "1.3.6.1.6.3.1.1.5.2",
        ],
    );
    assert!(
        !out.status.success(),
        "an unknown user's inform was acknowledged"
    );
    // Garbage, and a GET sent to the trap port.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"\x30\x82\xff\xffnot BER at all", to)
        .unwrap();
    socket.send_to(&[0xff; 2000], to).unwrap();
    let get = [
        0x30, 0x1a, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x0d,
        0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x02, 0x30, 0x00,
    ];
    socket.send_to(&get[..get.len() - 2], to).unwrap();
    socket.send_to(&get, to).unwrap();
    // A good trap last: once it is on the topic, the refused ones before it were handled.
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &[
            "-v",
            "2c",
            "-c",
            "public",
            &to_text,
            "1",
            "1.3.6.1.6.3.1.1.5.5",
        ],
    );
    ok(&out, "snmptrap -c public");

    let events = read_traps(&env, 1);
    assert_eq!(events.len(), 1, "refused traps were published: {events:?}");
    assert_eq!(events[0].1["trap_name"], "authenticationFailure");

    let rejected = |reason: &str| {
        counter(
            &env,
            &format!("panoptes_traps_rejected_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejected("community"), 1.0);
    assert_eq!(rejected("authentication"), 1.0);
    assert_eq!(rejected("unknown_user"), 1.0);
    assert_eq!(rejected("malformed"), 3.0);
    assert_eq!(rejected("not_a_notification"), 1.0);
    assert_eq!(counter(&env, "panoptes_traps_published_total"), 1.0);
    let log = node.log_text();
    assert!(
        log.contains("trap refused: the community is not in traps.communities"),
        "{log}"
    );
    assert!(
        log.contains(
            "trap refused: v3 user \"ops\": wrong authentication (protocol or passphrase)"
        ),
        "{log}"
    );
    assert!(
        !log.contains("private"),
        "the refused community is in the log"
    );
    node.stop();
}

#[test]
fn a_retransmitted_inform_is_answered_every_time_and_published_once() {
    use panoptes::snmp::message::{community_message, Message, PDU_INFORM, PDU_RESPONSE};
    use panoptes::snmp::notification::v2_notification_pdu;

    let (env, node) = start();
    let to = env.traps_addr();
    let pdu = v2_notification_pdu(
        PDU_INFORM,
        31337,
        5,
        &"1.3.6.1.6.3.1.1.5.4".parse().unwrap(),
        &[],
    )
    .unwrap();
    let inform = community_message(1, b"public", &pdu);
    // One socket: the same sender, as a retransmitting agent.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for copy in 1..=3 {
        socket.send_to(&inform, to).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no answer to copy {copy}: {e}"));
        assert_eq!(from, to);
        let Message::Community {
            version,
            community,
            pdu,
        } = Message::decode(&buf[..n]).unwrap()
        else {
            panic!("not a v2c answer")
        };
        assert_eq!(
            (version, community, pdu.tag, pdu.request_id),
            (1, &b"public"[..], PDU_RESPONSE, 31337)
        );
    }
    let events = read_traps(&env, 1);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1["kind"], "inform");
    assert_eq!(counter(&env, "panoptes_traps_duplicates_total"), 2.0);
    assert_eq!(
        counter(
            &env,
            "panoptes_traps_received_total{version=\"v2c\",kind=\"inform\"}"
        ),
        1.0
    );
    node.stop();
}

#[test]
fn a_reload_replaces_the_communities_and_v3_users() {
    let (env, node) = start();
    let dir = env.dir.path();
    let to = env.traps_addr().to_string();
    let trap = |community: &str, oid: &str| {
        let out = net_snmp_tool(
            dir,
            "snmptrap",
            &["-v", "2c", "-c", community, &to, "1", oid],
        );
        ok(&out, "snmptrap -v 2c");
    };
    trap("public", "1.3.6.1.6.3.1.1.5.1");
    read_traps(&env, 1);

    std::fs::write(
        dir.join("secrets.toml"),
        "[local]\ntrap_communities = [\"rotated\"]\n",
    )
    .unwrap();
    let pid = node.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    while !node
        .log_text()
        .contains("trap receiver: communities and v3 users reloaded")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no reload:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    trap("public", "1.3.6.1.6.3.1.1.5.2");
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &ops_auth_priv(&["-e", SENDER_ENGINE, &to, "1", "1.3.6.1.6.3.1.1.5.2"]),
    );
    ok(&out, "snmptrap -v 3");
    trap("rotated", "1.3.6.1.6.3.1.1.5.3");

    let events = read_traps(&env, 2);
    let oids: Vec<&str> = events
        .iter()
        .map(|(_, e)| e["trap_oid"].as_str().unwrap())
        .collect();
    assert_eq!(oids, ["1.3.6.1.6.3.1.1.5.1", "1.3.6.1.6.3.1.1.5.3"]);
    assert_eq!(
        counter(&env, "panoptes_traps_rejected_total{reason=\"community\"}"),
        1.0
    );
    assert_eq!(
        counter(
            &env,
            "panoptes_traps_rejected_total{reason=\"unknown_user\"}"
        ),
        1.0
    );
    node.stop();
}

#[test]
fn v3_traps_at_every_security_level() {
    let (env, node) = start_with(&format!(
        "[local.trap_users.monitor]\n\
         [local.trap_users.legacy]\nauth_protocol = \"MD5\"\nauth_passphrase = \"{AUTH}\"\n\
         priv_protocol = \"DES\"\npriv_passphrase = \"{PRIV}\"\n\
         [local.trap_users.audit]\nauth_protocol = \"SHA-512\"\nauth_passphrase = \"{AUTH}\"\n"
    ));
    let dir = env.dir.path();
    let to = env.traps_addr().to_string();
    let sends: [(&str, &[&str], &str); 3] = [
        ("monitor", &["-l", "noAuthNoPriv"], "1.3.6.1.4.1.99.0.1"),
        (
            "legacy",
            &[
                "-l", "authPriv", "-a", "MD5", "-A", AUTH, "-x", "DES", "-X", PRIV,
            ],
            "1.3.6.1.4.1.99.0.2",
        ),
        (
            "audit",
            &["-l", "authNoPriv", "-a", "SHA-512", "-A", AUTH],
            "1.3.6.1.4.1.99.0.3",
        ),
    ];
    // A noAuthNoPriv trap naming a user with keys proves nothing: refused. Sent first, so it
    // is handled once the others are on the topic.
    let out = net_snmp_tool(
        dir,
        "snmptrap",
        &[
            "-v",
            "3",
            "-u",
            "audit",
            "-l",
            "noAuthNoPriv",
            "-e",
            SENDER_ENGINE,
            &to,
            "1",
            "1.3.6.1.4.1.99.0.4",
        ],
    );
    ok(&out, "snmptrap -u audit -l noAuthNoPriv");
    for (user, security, trap_oid) in sends {
        let mut args = vec!["-v", "3", "-u", user, "-e", SENDER_ENGINE];
        args.extend_from_slice(security);
        args.extend([to.as_str(), "1", trap_oid, "1.3.6.1.2.1.1.5.0", "s", user]);
        ok(
            &net_snmp_tool(dir, "snmptrap", &args),
            &format!("snmptrap -u {user}"),
        );
    }
    let events = read_traps(&env, 3);
    let got: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|(_, e)| {
            (
                e["v3_user"].as_str().unwrap(),
                e["trap_oid"].as_str().unwrap(),
                e["varbinds"][0]["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("monitor", "1.3.6.1.4.1.99.0.1", "monitor"),
            ("legacy", "1.3.6.1.4.1.99.0.2", "legacy"),
            ("audit", "1.3.6.1.4.1.99.0.3", "audit"),
        ]
    );
    assert_eq!(
        counter(
            &env,
            "panoptes_traps_rejected_total{reason=\"security_level\"}"
        ),
        1.0
    );
    assert_eq!(
        counter(
            &env,
            "panoptes_traps_received_total{version=\"v3\",kind=\"trap\"}"
        ),
        3.0
    );
    node.stop();
}

/// Varbinds without the `name` the MIBs give (checked on their own).
fn without_names(varbinds: &Value) -> Value {
    let mut out = varbinds.clone();
    for v in out.as_array_mut().into_iter().flatten() {
        if let Some(o) = v.as_object_mut() {
            o.remove("name");
        }
    }
    out
}
