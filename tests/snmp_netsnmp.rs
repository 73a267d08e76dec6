//! Our SNMP client against a real net-snmp `snmpd`, compared with what
//! net-snmp's own tools read from the same agent; plus timeouts and late replies
//! against our simulator.
//!
//! Needs net-snmp (`snmpd`, `snmpget`, `snmpgetnext`, `snmpbulkget`,
//! `snmpbulkwalk`); the tests fail, saying what to install, when it is missing.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
use panoptes::snmp::{
    AuthProtocol, Community, EngineConfig, Oid, PrivProtocol, SnmpClient, SnmpEngine, SnmpError,
    SnmpTarget, SnmpValue, SnmpVersion, UsmUser, Varbind,
};
use support::{is_volatile, normalise, parse_output, run_tool, Printed, NO_MIBS, NUMERIC_OUTPUT};

/// A private snmpd on 127.0.0.1, killed when dropped.
struct Snmpd {
    process: support::SnmpdProcess,
    port: u16,
}

impl Snmpd {
    async fn start() -> Snmpd {
        Snmpd::start_with("").await
    }

    /// snmpd with `extra` appended to its configuration (v3 users, ...).
    async fn start_with(extra: &str) -> Snmpd {
        let process = support::SnmpdProcess::spawn(extra);
        let port = process.port;
        let mut snmpd = Snmpd { process, port };
        snmpd.wait_until_answering().await;
        snmpd
    }

    fn target(&self) -> SnmpTarget {
        let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
        target.port = self.port;
        target.timeout = Duration::from_secs(2);
        target.retries = 1;
        target
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn wait_until_answering(&mut self) {
        let mut target = self.target();
        target.timeout = Duration::from_millis(300);
        target.retries = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.process.child.try_wait() {
                panic!(
                    "snmpd exited with {status} before answering:\n{}",
                    self.process.log()
                );
            }
            if let Ok(mut client) = SnmpClient::connect(&target).await {
                if client.get(&[oid("1.3.6.1.2.1.1.1.0")]).await.is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "snmpd did not answer within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn oid(text: &str) -> Oid {
    text.parse().unwrap()
}

/// Runs a net-snmp tool against `addr` with numeric output.
async fn net_snmp(tool: &str, addr: &str, extra: &[&str], oids: &[&str]) -> Vec<Printed> {
    let mut args = vec!["-v2c", "-c", "public", "-t", "2", "-r", "1"];
    args.extend(NUMERIC_OUTPUT);
    args.push(NO_MIBS);
    args.extend(extra);
    args.push(addr);
    args.extend(oids);
    parse_output(&run_tool(tool, &args).await)
}

/// Compares our varbinds with net-snmp's, read from the same live agent
/// *before* ours: OIDs and types must be equal; values equal too, except
/// counters and ticks, which may only have moved forwards (or wrapped).
fn assert_matches(ours: &[Varbind], theirs: &[Printed], what: &str) {
    let ours_oids: Vec<String> = ours.iter().map(|v| v.oid.to_string()).collect();
    let their_oids: Vec<String> = theirs.iter().map(|p| p.oid.to_string()).collect();
    assert_eq!(ours_oids, their_oids, "{what}: OIDs differ");
    for (our, their) in ours.iter().zip(theirs) {
        let (kind, value) = normalise(&our.value);
        assert_eq!(kind, their.kind, "{what}: type of {}", our.oid);
        if is_volatile(&kind) {
            let now: u128 = value.parse().unwrap();
            let before: u128 = their.value.parse().unwrap();
            let wrapped = before > now && before - now > (1 << 31);
            assert!(
                now >= before || wrapped,
                "{what}: {} went backwards from {before} to {now}",
                our.oid
            );
        } else {
            assert_eq!(value, their.value, "{what}: value of {}", our.oid);
        }
    }
}

#[tokio::test]
async fn get_and_get_next_match_net_snmp() {
    let snmpd = Snmpd::start().await;
    let addr = snmpd.addr();
    let mut client = SnmpClient::connect(&snmpd.target()).await.unwrap();

    let scalars = [
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.2.1.1.3.0",
        "1.3.6.1.2.1.1.6.0",
    ];
    let theirs = net_snmp("snmpget", &addr, &[], &scalars).await;
    let ours = client.get(&scalars.map(oid)).await.unwrap();
    assert_matches(&ours, &theirs, "GET system scalars");
    assert_eq!(
        ours[2].value,
        SnmpValue::OctetString(b"panoptes test lab".to_vec())
    );

    let missing = client
        .get(&[oid("1.3.6.1.2.1.1.1.7"), oid("1.3.6.1.9.9.9")])
        .await
        .unwrap();
    let theirs = net_snmp(
        "snmpget",
        &addr,
        &[],
        &["1.3.6.1.2.1.1.1.7", "1.3.6.1.9.9.9"],
    )
    .await;
    assert_matches(&missing, &theirs, "GET of missing objects");
    assert!(missing.iter().all(|v| v.value.is_exception()));

    // One OID (a real GETNEXT) and several (sent as GETBULK with non-repeaters).
    for starts in [
        &["1.3.6.1.2.1.1.1"][..],
        &["1.3.6.1.2.1.1.4", "1.3.6.1.2.1.2.2.1.2"][..],
    ] {
        let theirs = net_snmp("snmpgetnext", &addr, &[], starts).await;
        let ours = client
            .get_next(&starts.iter().map(|s| oid(s)).collect::<Vec<_>>())
            .await
            .unwrap();
        assert_matches(&ours, &theirs, "GETNEXT");
    }
    assert!(client.requests_sent() >= 4);
}

#[tokio::test]
async fn get_bulk_matches_snmpbulkget() {
    let snmpd = Snmpd::start().await;
    let addr = snmpd.addr();
    let mut client = SnmpClient::connect(&snmpd.target()).await.unwrap();
    let starts = [
        "1.3.6.1.2.1.1.5",
        "1.3.6.1.2.1.2.2.1.2",
        "1.3.6.1.2.1.2.2.1.3",
    ];
    let theirs = net_snmp("snmpbulkget", &addr, &["-Cn1", "-Cr4"], &starts).await;
    let ours = client.get_bulk(&starts.map(oid), 1, 4).await.unwrap();
    assert_matches(&ours, &theirs, "GETBULK n=1 r=4");
    assert_eq!(ours[0].oid, oid("1.3.6.1.2.1.1.5.0"));
}

#[tokio::test]
async fn bulk_walk_matches_snmpbulkwalk() {
    let snmpd = Snmpd::start().await;
    let addr = snmpd.addr();
    for (root, repetitions) in [
        ("1.3.6.1.2.1.1", 25),
        ("1.3.6.1.2.1.2.2", 25),
        ("1.3.6.1.2.1.2.2", 3),
    ] {
        let mut target = snmpd.target();
        target.max_repetitions = repetitions;
        let mut client = SnmpClient::connect(&target).await.unwrap();
        let cr = format!("-Cr{repetitions}");
        let theirs = net_snmp("snmpbulkwalk", &addr, &[&cr], &[root]).await;
        let ours = client.bulk_walk(&oid(root)).await.unwrap();
        assert!(!ours.is_empty(), "walk of {root} returned nothing");
        assert_matches(
            &ours,
            &theirs,
            &format!("bulk walk of {root} with {repetitions} repetitions"),
        );
        assert!(client.requests_sent() >= 1);
    }
}

/// Columns walked together (one GETBULK asking for every column still going) read what
/// `snmpbulkwalk` reads of each, subtree by subtree: tables of different lengths, a
/// subtree of scalars and a table, one with nothing under it; in fewer requests than
/// walking them one after another.
#[tokio::test]
async fn columns_walked_together_match_snmpbulkwalk_of_each() {
    let snmpd = Snmpd::start().await;
    let addr = snmpd.addr();
    let roots = [
        "1.3.6.1.2.1.1",
        "1.3.6.1.2.1.2.2.1.2",
        "1.3.6.1.2.1.2.2.1.10",
        "1.3.6.1.2.1.4.20.1.1",
        "1.3.6.1.2.1.99999",
        "1.3.6.1.2.1.2.2.1.7",
    ];
    for repetitions in [25, 3] {
        let mut target = snmpd.target();
        target.max_repetitions = repetitions;
        let cr = format!("-Cr{repetitions}");
        let mut theirs = Vec::new();
        for root in roots {
            theirs.push(net_snmp("snmpbulkwalk", &addr, &[&cr], &[root]).await);
        }
        let mut one_by_one = SnmpClient::connect(&target).await.unwrap();
        for root in roots {
            one_by_one.bulk_walk(&oid(root)).await.unwrap();
        }
        let mut client = SnmpClient::connect(&target).await.unwrap();
        let ours = client
            .walk_together(&roots.map(oid), repetitions, 100_000, true)
            .await
            .unwrap()
            .expect("snmpd answers GETBULKs of several columns");
        assert_eq!(ours.len(), roots.len());
        for ((root, ours), theirs) in roots.iter().zip(&ours).zip(&theirs) {
            let what = format!("{root} walked with the others, {repetitions} repetitions");
            if root.ends_with("99999") {
                assert!(ours.is_empty(), "{what}: {ours:?}");
            } else {
                assert!(!ours.is_empty(), "{what}: nothing");
                assert_matches(ours, theirs, &what);
            }
        }
        assert!(
            client.requests_sent() < one_by_one.requests_sent(),
            "{repetitions} repetitions: {} requests together, {} one by one",
            client.requests_sent(),
            one_by_one.requests_sent()
        );
    }
}

#[tokio::test]
async fn walk_limit_is_an_error_naming_the_target() {
    let snmpd = Snmpd::start().await;
    let mut client = SnmpClient::connect(&snmpd.target())
        .await
        .unwrap()
        .with_walk_limit(5);
    match client.bulk_walk(&oid("1.3.6.1.2.1")).await {
        Err(e @ SnmpError::WalkLimit { .. }) => {
            assert!(e.to_string().contains(&snmpd.addr()), "{e}")
        }
        other => panic!("expected WalkLimit, got {other:?}"),
    }
}

#[tokio::test]
async fn timeout_when_nothing_answers() {
    // A socket that receives but never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
    target.port = silent.local_addr().unwrap().port();
    target.timeout = Duration::from_millis(200);
    target.retries = 2;
    let mut client = SnmpClient::connect(&target).await.unwrap();
    let started = Instant::now();
    let result = client.get(&[oid("1.3.6.1.2.1.1.1.0")]).await;
    let took = started.elapsed();
    match result {
        Err(e @ SnmpError::Timeout { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&target.label()), "{message}");
            assert!(!message.contains("public"), "{message}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(client.requests_sent(), 3);
    // timeout x attempts plus a generous margin: a hang would blow far past this.
    assert!(
        took < Duration::from_millis(600) + Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test]
async fn closed_port_is_an_error_naming_the_target() {
    // Nothing listens there any more: the kernel answers ICMP port unreachable.
    let port = support::free_udp_port();
    let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
    target.port = port;
    target.timeout = Duration::from_millis(300);
    target.retries = 1;
    let mut client = SnmpClient::connect(&target).await.unwrap();
    match client.get(&[oid("1.3.6.1.2.1.1.1.0")]).await {
        Err(e @ (SnmpError::Network { .. } | SnmpError::Timeout { .. })) => {
            assert!(e.to_string().contains(&target.label()), "{e}");
        }
        other => panic!("expected a network error or a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn late_reply_does_not_break_the_next_request() {
    let recording = Arc::new(Recording::load(support::resource("demo/switch48.snmprec")).unwrap());
    let device = DeviceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&recording),
        "public",
    );
    let handle = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
    target.port = handle.local_addrs()[0].port();
    target.timeout = Duration::from_millis(250);
    target.retries = 0;
    let mut client = SnmpClient::connect(&target).await.unwrap();

    let names = [
        "1.3.6.1.2.1.1.5.0",
        "1.3.6.1.2.1.1.6.0",
        "1.3.6.1.2.1.2.2.1.2.7",
        "1.3.6.1.2.1.2.2.1.2.9",
    ];
    for round in 0..3 {
        // This answer comes 400 ms late, after we gave up at 250 ms ...
        handle.set_reply_delay(0, Duration::from_millis(400));
        let late = client.get(&[oid(names[round])]).await;
        assert!(matches!(late, Err(SnmpError::Timeout { .. })), "{late:?}");
        // ... and is in flight while we ask the next question.
        handle.set_reply_delay(0, Duration::ZERO);
        for asked in [names[round + 1], names[round]] {
            let got = client.get(&[oid(asked)]).await.unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(
                got[0].oid,
                oid(asked),
                "round {round}: answer to another question"
            );
            assert_eq!(Some(&got[0].value), recording.get(&oid(asked)));
        }
    }
    // Let the late replies land, then check the client is still in step.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let walk = client.bulk_walk(&oid("1.3.6.1.2.1.1")).await.unwrap();
    let want: Vec<_> = recording
        .iter()
        .filter(|(o, _)| o.starts_with(&oid("1.3.6.1.2.1.1")))
        .map(|(o, v)| Varbind::new(o.clone(), v.clone()))
        .collect();
    assert_eq!(walk, want);
    handle.shutdown().await;
}

#[tokio::test]
async fn duplicated_replies_are_dropped_and_counted() {
    let recording = Arc::new(Recording::load(support::resource("demo/switch48.snmprec")).unwrap());
    let device = DeviceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&recording),
        "public",
    );
    let handle = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    handle.set_duplicate_replies(0, true);
    let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
    target.port = handle.local_addrs()[0].port();
    target.timeout = Duration::from_secs(2);
    target.retries = 0;
    let engine = SnmpEngine::new(EngineConfig::default()).unwrap();
    let mut client = SnmpClient::connect_with(&engine, &target).await.unwrap();
    let names: Vec<Oid> = (1..=6)
        .map(|i| oid(&format!("1.3.6.1.2.1.2.2.1.2.{i}")))
        .collect();
    for name in &names {
        let got = client.get(std::slice::from_ref(name)).await.unwrap();
        assert_eq!(&got[0].oid, name);
        assert_eq!(Some(&got[0].value), recording.get(name));
    }
    // Each copy is dropped as stale by the shared receiver: no extra request.
    assert_eq!(client.requests_sent(), names.len() as u64);
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine.stats().stale_replies < names.len() as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.stats().stale_replies, names.len() as u64);
    handle.shutdown().await;
}

#[tokio::test]
async fn client_reads_every_recorded_value_from_the_simulator() {
    let recording = Arc::new(
        Recording::load(support::conformance(
            "interface_enrichment/juniper_mx/device.snmprec",
        ))
        .unwrap(),
    );
    let device = DeviceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&recording),
        "public",
    );
    let handle = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
    target.port = handle.local_addrs()[0].port();
    target.timeout = Duration::from_secs(2);
    let mut client = SnmpClient::connect(&target).await.unwrap();
    let walk = client.bulk_walk(&oid("1")).await.unwrap();
    let want: Vec<_> = recording
        .iter()
        .map(|(o, v)| Varbind::new(o.clone(), v.clone()))
        .collect();
    assert_eq!(walk, want);
    handle.shutdown().await;
}

/// Answers cut short to fit a small message size (as agents cut them) leave the columns
/// they did not reach where they were: every column of the 48-port switch still reads
/// exactly what its own walk reads, and the last column ends at the end of the MIB.
#[tokio::test]
async fn columns_walked_together_survive_answers_cut_short() {
    let recording =
        Arc::new(Recording::parse(&panoptes::bench::switch_recording(48), "switch48").unwrap());
    let last = recording.iter().last().unwrap().0.clone();
    let mut roots: Vec<Oid> = [
        "1.3.6.1.2.1.2.2.1.2",
        "1.3.6.1.2.1.31.1.1.1.6",
        "1.3.6.1.2.1.2.2.1.8",
        "1.3.6.1.2.1.31.1.1.1.18",
        "1.3.6.1.2.1.2.2.1.14",
    ]
    .map(oid)
    .to_vec();
    // A subtree holding only the last entry: its walk ends with endOfMibView.
    let text = last.to_string();
    roots.push(oid(&text[..text.rfind('.').unwrap()]));
    for max_response in [65_507, 1_400, 300] {
        let mut config = SimulatorConfig::new(CounterMode::Frozen).with_device(DeviceConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&recording),
            "public",
        ));
        config.max_response_bytes = max_response;
        let handle = Simulator::spawn(config).await.unwrap();
        let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
        target.port = handle.local_addrs()[0].port();
        target.timeout = Duration::from_secs(2);
        let mut one_by_one = SnmpClient::connect(&target).await.unwrap();
        let mut want = Vec::new();
        for root in &roots {
            want.push(one_by_one.bulk_walk(root).await.unwrap());
        }
        let mut client = SnmpClient::connect(&target).await.unwrap();
        let got = client
            .walk_together(&roots, 25, 100_000, true)
            .await
            .unwrap()
            .expect("the simulator answers GETBULKs of several columns");
        assert_eq!(got, want, "answers of at most {max_response} bytes");
        // Room for fewer, as many or more rows than the columns hold: the same rows.
        for expected_rows in [1, 48, 1000] {
            let mut sized = SnmpClient::connect(&target).await.unwrap();
            let got = sized
                .walk_together_sized(&roots, 25, 100_000, true, expected_rows)
                .await
                .unwrap()
                .expect("the simulator answers GETBULKs of several columns");
            assert_eq!(
                got, want,
                "room for {expected_rows} rows, answers of at most {max_response} bytes"
            );
        }
        assert_eq!(want[0].len(), 48);
        assert_eq!(want.last().unwrap().last().unwrap().oid, last);
        // Cut to a few hundred bytes, either way takes about as many answers as the rows
        // need messages; with room, one answer serves every column.
        if max_response == 65_507 {
            assert_eq!(
                (client.requests_sent(), one_by_one.requests_sent()),
                (2, 11)
            );
        }
        handle.shutdown().await;
    }
}

// ---- SNMP v1 and v3 against snmpd ----

#[tokio::test]
async fn v1_walk_matches_snmpwalk_v1() {
    let snmpd = Snmpd::start().await;
    let addr = snmpd.addr();
    let mut target = snmpd.target();
    target.version = SnmpVersion::V1;
    let mut client = SnmpClient::connect(&target).await.unwrap();
    for root in ["1.3.6.1.2.1.1", "1.3.6.1.2.1.2.2.1.2"] {
        let mut args = vec!["-v1", "-c", "public", "-t", "2", "-r", "1"];
        args.extend(NUMERIC_OUTPUT);
        args.push(NO_MIBS);
        args.extend([addr.as_str(), root]);
        let theirs = parse_output(&run_tool("snmpwalk", &args).await);
        let ours = client.bulk_walk(&oid(root)).await.unwrap();
        assert!(!ours.is_empty());
        assert_matches(&ours, &theirs, &format!("v1 walk of {root}"));
    }
    // v1 reports a missing object as an error status, not an exception value.
    match client.get(&[oid("1.3.6.1.2.1.1.1.7")]).await {
        Err(SnmpError::ErrorStatus { status: 2, .. }) => {}
        other => panic!("expected noSuchName, got {other:?}"),
    }
}

const AUTH_PASS: &str = "authpass-1";
const PRIV_PASS: &str = "privpass-1";

/// The v3 users snmpd gets: one per authentication x privacy combination
/// net-snmp supports, plus one without authentication.
fn v3_users() -> Vec<UsmUser> {
    let mut users = vec![UsmUser::no_auth("noauth")];
    for auth in AuthProtocol::ALL {
        let base = UsmUser::no_auth(format!("u-{}", auth.name())).with_auth(auth, AUTH_PASS);
        users.push(base.clone());
        for privacy in PrivProtocol::ALL {
            let mut user = base.clone().with_privacy(privacy, PRIV_PASS);
            user.name = format!("u-{}-{}", auth.name(), privacy.name());
            users.push(user);
        }
    }
    users
}

fn snmpd_user_lines(users: &[UsmUser]) -> String {
    let mut text = String::new();
    for user in users {
        let mut create = format!("createUser {}", user.name);
        if let Some((auth, pass)) = &user.auth {
            create.push_str(&format!(" {} \"{}\"", auth.name(), pass.expose()));
        }
        if let Some((privacy, pass)) = &user.privacy {
            create.push_str(&format!(" {} \"{}\"", privacy.name(), pass.expose()));
        }
        let level = match (&user.auth, &user.privacy) {
            (None, _) => "noauth",
            (Some(_), None) => "auth",
            _ => "priv",
        };
        text.push_str(&format!("{create}\nrouser {} {level}\n", user.name));
    }
    text
}

/// net-snmp's v3 command-line arguments for `user`.
fn net_snmp_v3_args(user: &UsmUser) -> Vec<String> {
    let mut args = vec!["-v3".to_string(), "-u".to_string(), user.name.clone()];
    let level = match (&user.auth, &user.privacy) {
        (None, _) => "noAuthNoPriv",
        (Some(_), None) => "authNoPriv",
        _ => "authPriv",
    };
    args.extend(["-l".to_string(), level.to_string()]);
    if let Some((auth, pass)) = &user.auth {
        args.extend([
            "-a".into(),
            auth.name().into(),
            "-A".into(),
            pass.expose().into(),
        ]);
    }
    if let Some((privacy, pass)) = &user.privacy {
        args.extend([
            "-x".into(),
            privacy.name().into(),
            "-X".into(),
            pass.expose().into(),
        ]);
    }
    args
}

fn v3_target(snmpd: &Snmpd, user: UsmUser) -> SnmpTarget {
    let mut target = SnmpTarget::v3("127.0.0.1", user);
    target.port = snmpd.port;
    target.timeout = Duration::from_secs(2);
    target.retries = 1;
    target
}

#[tokio::test]
async fn v3_walks_match_snmpbulkwalk_for_every_auth_and_privacy_protocol() {
    let users = v3_users();
    let snmpd = Snmpd::start_with(&snmpd_user_lines(&users)).await;
    let addr = snmpd.addr();
    let root = "1.3.6.1.2.1.1";
    for user in users {
        let mut args = net_snmp_v3_args(&user);
        args.extend([
            "-t".into(),
            "2".into(),
            "-r".into(),
            "1".into(),
            "-Cr10".into(),
        ]);
        args.extend(NUMERIC_OUTPUT.iter().map(|s| s.to_string()));
        args.push(NO_MIBS.to_string());
        args.extend([addr.clone(), root.to_string()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = parse_output(&run_tool("snmpbulkwalk", &refs).await);
        let mut target = v3_target(&snmpd, user.clone());
        target.max_repetitions = 10;
        let mut client = SnmpClient::connect(&target).await.unwrap();
        let ours = client
            .bulk_walk(&oid(root))
            .await
            .unwrap_or_else(|e| panic!("user {}: {e}", user.name));
        assert!(ours.len() > 5, "user {}: {} rows", user.name, ours.len());
        assert_matches(&ours, &theirs, &format!("v3 walk as {}", user.name));
        // A second request reuses the discovered engine: no new discovery.
        let before = client.requests_sent();
        client.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap();
        assert_eq!(client.requests_sent(), before + 1, "user {}", user.name);
    }
}

#[tokio::test]
async fn v3_errors_say_what_is_wrong() {
    let good = UsmUser::no_auth("ops")
        .with_auth(AuthProtocol::Sha256, AUTH_PASS)
        .with_privacy(PrivProtocol::Aes128, PRIV_PASS);
    let auth_only = UsmUser::no_auth("authonly").with_auth(AuthProtocol::Sha256, AUTH_PASS);
    let snmpd = Snmpd::start_with(&snmpd_user_lines(&[good.clone(), auth_only])).await;
    let sys_name = [oid("1.3.6.1.2.1.1.5.0")];

    let mut client = SnmpClient::connect(&v3_target(&snmpd, good.clone()))
        .await
        .unwrap();
    let answer = client.get(&sys_name).await.unwrap();
    assert!(matches!(answer[0].value, SnmpValue::OctetString(_)));

    let mut unknown = good.clone();
    unknown.name = "nobody".into();
    let mut wrong_auth = good.clone();
    wrong_auth.auth = Some((AuthProtocol::Sha256, "not-the-pass".into()));
    let mut wrong_auth_protocol = good.clone();
    wrong_auth_protocol.auth = Some((AuthProtocol::Sha1, AUTH_PASS.into()));
    let mut wrong_priv = good.clone();
    wrong_priv.privacy = Some((PrivProtocol::Aes128, "not-the-pass".into()));
    // A user without privacy asked for authPriv: no such level for it.
    let mut wrong_level = UsmUser::no_auth("authonly").with_auth(AuthProtocol::Sha256, AUTH_PASS);
    wrong_level.privacy = Some((PrivProtocol::Aes128, PRIV_PASS.into()));
    let cases: [(UsmUser, ErrorCheck, &str); 5] = [
        (
            unknown,
            |e| matches!(e, SnmpError::UnknownUser { .. }),
            "nobody",
        ),
        (
            wrong_auth,
            |e| matches!(e, SnmpError::WrongAuth { .. }),
            "passphrase",
        ),
        (
            wrong_auth_protocol,
            |e| matches!(e, SnmpError::WrongAuth { .. }),
            "authentication protocol",
        ),
        (
            wrong_priv,
            |e| matches!(e, SnmpError::WrongPriv { .. }),
            "privacy",
        ),
        (
            wrong_level,
            |e| matches!(e, SnmpError::UnsupportedSecurityLevel { .. }),
            "authPriv",
        ),
    ];
    for (case, (user, expected, words)) in cases.into_iter().enumerate() {
        let name = format!("case {case} ({})", user.name);
        let mut client = SnmpClient::connect(&v3_target(&snmpd, user)).await.unwrap();
        let err = client.get(&sys_name).await.unwrap_err();
        assert!(expected(&err), "{name}: unexpected error {err:?}");
        let message = err.to_string();
        assert!(message.contains(words), "{message}");
        assert!(message.contains(&snmpd.addr()), "{message}");
        assert!(
            !message.contains(AUTH_PASS) && !message.contains("not-the-pass"),
            "{message}"
        );
    }
}

/// Whether an error is the expected kind.
type ErrorCheck = fn(&SnmpError) -> bool;

/// A fake agent whose discovery answer carries no engine ID.
#[tokio::test]
async fn v3_discovery_without_an_engine_id_is_an_unknown_engine() {
    let agent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = agent.local_addr().unwrap().port();
    let responder = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let (len, from) = agent.recv_from(&mut buf).await.unwrap();
            // Echo the request: a v3 message with an empty engine ID.
            agent.send_to(&buf[..len], from).await.unwrap();
        }
    });
    let user = UsmUser::no_auth("ops").with_auth(AuthProtocol::Md5, AUTH_PASS);
    let mut target = SnmpTarget::v3("127.0.0.1", user);
    target.port = port;
    target.timeout = Duration::from_millis(300);
    target.retries = 0;
    let mut client = SnmpClient::connect(&target).await.unwrap();
    let err = client.get(&[oid("1.3.6.1.2.1.1.5.0")]).await.unwrap_err();
    assert!(matches!(err, SnmpError::UnknownEngine { .. }), "{err:?}");
    assert!(err.to_string().contains("engine"), "{err}");
    responder.abort();
}
