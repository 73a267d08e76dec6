//! Our SNMP client against a real net-snmp `snmpd`, compared with what
//! net-snmp's own tools read from the same agent; plus timeouts and late replies
//! against our simulator.
//!
//! Needs net-snmp (`snmpd`, `snmpget`, `snmpgetnext`, `snmpbulkget`,
//! `snmpbulkwalk`); the tests fail, saying what to install, when it is missing.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
use panoptes::snmp::{Community, Oid, SnmpClient, SnmpError, SnmpTarget, SnmpValue, Varbind};
use support::{is_volatile, normalise, parse_output, run_tool, Printed, NO_MIBS, NUMERIC_OUTPUT};

/// A private snmpd on 127.0.0.1, killed when dropped.
struct Snmpd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Snmpd {
    async fn start() -> Snmpd {
        let program = support::net_snmp("snmpd");
        let dir = tempfile::tempdir().unwrap();
        // Ask the kernel for a free port, then hand it to snmpd.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("snmpd.conf");
        std::fs::write(
            &config,
            // The listening address comes from the command line; naming it here
            // as well would make snmpd bind it twice and exit.
            "rocommunity public 127.0.0.1\n\
             sysLocation panoptes test lab\n\
             sysContact tests@localhost\n",
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("snmpd.log")).unwrap();
        let child = Command::new(&program)
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(&config)
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", dir.path())
            .env("MIBS", "")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut snmpd = Snmpd {
            child,
            port,
            _dir: dir,
        };
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
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self._dir.path().join("snmpd.log")).unwrap_or_default();
                panic!("snmpd exited with {status} before answering:\n{log}");
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

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
async fn duplicated_replies_are_skipped_without_using_retries() {
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
    let mut client = SnmpClient::connect(&target).await.unwrap();
    let names: Vec<Oid> = (1..=6)
        .map(|i| oid(&format!("1.3.6.1.2.1.2.2.1.2.{i}")))
        .collect();
    for name in &names {
        let got = client.get(std::slice::from_ref(name)).await.unwrap();
        assert_eq!(&got[0].oid, name);
        assert_eq!(Some(&got[0].value), recording.get(name));
    }
    // Each stale copy cost one extra request, not a failure.
    assert!(
        client.requests_sent() > names.len() as u64,
        "{}",
        client.requests_sent()
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn client_reads_every_recorded_value_from_the_simulator() {
    let recording = Arc::new(
        Recording::load(support::shared(
            "conformance/interface_enrichment/juniper_mx/device.snmprec",
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
