//! Our simulator, queried by net-snmp's own command-line tools.
//!
//! Needs net-snmp (`snmpbulkwalk`, `snmpwalk`, `snmpget`, `snmpbulkget`); the
//! tests fail, with a message saying what to install, when it is missing.

mod support;

use std::sync::Arc;

use panoptes::simulate::{
    CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig, SimulatorHandle,
};
use panoptes::snmp::{
    AuthProtocol, Community, Oid, PrivProtocol, SnmpClient, SnmpTarget, SnmpValue, SnmpVersion,
    UsmUser, Varbind,
};
use support::{normalise, parse_output, run_tool, run_tool_raw, Printed, NO_MIBS, NUMERIC_OUTPUT};

const GENERIC: &str = "interface_enrichment/generic/device.snmprec";

fn load(path: &std::path::Path) -> Arc<Recording> {
    Arc::new(Recording::load(path).unwrap())
}

async fn serve(
    recording: Arc<Recording>,
    max_response: Option<usize>,
) -> (SimulatorHandle, String) {
    let mut config = SimulatorConfig::new(CounterMode::Frozen).with_device(DeviceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        recording,
        "public",
    ));
    if let Some(max) = max_response {
        config.max_response_bytes = max;
    }
    let handle = Simulator::spawn(config).await.unwrap();
    let addr = handle.local_addrs()[0].to_string();
    (handle, addr)
}

/// What net-snmp should print for a full walk of `recording`, in order.
fn expected(recording: &Recording, keep: impl Fn(&SnmpValue) -> bool) -> Vec<Printed> {
    recording
        .iter()
        .filter(|(_, v)| keep(v))
        .map(|(oid, value)| {
            let (kind, value) = normalise(value);
            Printed {
                oid: oid.clone(),
                kind,
                value,
            }
        })
        .collect()
}

/// Runs a walking tool over `.1` and returns the varbinds it printed, checking
/// that it ended on endOfMibView (v2c) rather than an error.
async fn walk(tool: &str, version: &str, addr: &str, extra: &[&str]) -> Vec<Printed> {
    let mut args = vec![version, "-c", "public", "-t", "5", "-r", "1"];
    args.extend(NUMERIC_OUTPUT);
    args.push(NO_MIBS);
    args.extend(extra);
    args.extend([addr, ".1"]);
    let mut printed = parse_output(&run_tool(tool, &args).await);
    if version == "-v2c" {
        let last = printed.pop().expect("no output at all");
        assert_eq!(
            last.kind, "endOfMibView",
            "walk did not end at the end of the MIB"
        );
    }
    printed
}

fn assert_same(got: &[Printed], want: &[Printed], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: first difference at varbind {i}");
    }
    assert_eq!(got.len(), want.len(), "{what}: varbind count differs");
}

#[tokio::test]
async fn snmpbulkwalk_returns_generic_recording_in_order() {
    let recording = load(&support::conformance(GENERIC));
    let (handle, addr) = serve(Arc::clone(&recording), None).await;
    let got = walk("snmpbulkwalk", "-v2c", &addr, &["-Cr25"]).await;
    assert_same(
        &got,
        &expected(&recording, |_| true),
        "snmpbulkwalk generic",
    );
    let counters = handle.total_counters();
    assert_eq!(counters.malformed + counters.unsupported, 0, "{counters:?}");
    assert!(counters.served > 0);
}

#[tokio::test]
async fn demo_switch_walks_with_getnext_and_getbulk() {
    let recording = load(&support::resource("demo/switch48.snmprec"));
    let (_handle, addr) = serve(Arc::clone(&recording), None).await;
    let all = expected(&recording, |_| true);
    let bulk = walk("snmpbulkwalk", "-v2c", &addr, &["-Cr25"]).await;
    assert_same(&bulk, &all, "snmpbulkwalk switch48");
    let next = walk("snmpwalk", "-v2c", &addr, &[]).await;
    assert_same(&next, &all, "snmpwalk (GETNEXT) switch48");
    // v1 has no Counter64: the agent skips those rows.
    let v1 = walk("snmpwalk", "-v1", &addr, &[]).await;
    let without_64 = expected(&recording, |v| !matches!(v, SnmpValue::Counter64(_)));
    assert_same(&v1, &without_64, "snmpwalk -v1 switch48");
}

#[tokio::test]
async fn small_response_limit_still_walks_everything() {
    // 600 bytes holds a few varbinds: GETBULK answers must shrink, not fail.
    let recording = load(&support::resource("demo/switch48.snmprec"));
    let (handle, addr) = serve(Arc::clone(&recording), Some(600)).await;
    let got = walk("snmpbulkwalk", "-v2c", &addr, &["-Cr100"]).await;
    assert_same(
        &got,
        &expected(&recording, |_| true),
        "bulkwalk under 600 bytes",
    );
    assert_eq!(handle.total_counters().malformed, 0);
}

#[tokio::test]
async fn snmpget_exact_values_and_exceptions() {
    let recording = load(&support::conformance(GENERIC));
    let (_handle, addr) = serve(Arc::clone(&recording), None).await;
    let present: Vec<_> = recording.iter().step_by(37).take(10).collect();
    let mut args = vec!["-v2c", "-c", "public", "-t", "5", "-r", "1"];
    args.extend(NUMERIC_OUTPUT);
    args.push(NO_MIBS);
    args.push(&addr);
    let dotted: Vec<String> = present.iter().map(|(o, _)| o.to_dotted_leading()).collect();
    args.extend(dotted.iter().map(String::as_str));
    // ifDescr exists, index 999999 does not; 1.3.6.1.9 is nothing at all.
    args.extend([".1.3.6.1.2.1.2.2.1.2.999999", ".1.3.6.1.9.1.0"]);
    let got = parse_output(&run_tool("snmpget", &args).await);
    let mut want: Vec<Printed> = present
        .iter()
        .map(|(oid, value)| {
            let (kind, value) = normalise(value);
            Printed {
                oid: (*oid).clone(),
                kind,
                value,
            }
        })
        .collect();
    for (oid, kind) in [
        ("1.3.6.1.2.1.2.2.1.2.999999", "noSuchInstance"),
        ("1.3.6.1.9.1.0", "noSuchObject"),
    ] {
        want.push(Printed {
            oid: oid.parse().unwrap(),
            kind: kind.into(),
            value: String::new(),
        });
    }
    assert_same(&got, &want, "snmpget");
}

#[tokio::test]
async fn snmpbulkget_honours_non_repeaters_and_repetitions() {
    let recording = load(&support::resource("demo/switch48.snmprec"));
    let (_handle, addr) = serve(Arc::clone(&recording), None).await;
    let mut args = vec!["-v2c", "-c", "public", "-Cn1", "-Cr3"];
    args.extend(NUMERIC_OUTPUT);
    args.push(NO_MIBS);
    args.extend([
        addr.as_str(),
        ".1.3.6.1.2.1.1.1.0",
        ".1.3.6.1.2.1.2.2.1.2",
        ".1.3.6.1.2.1.2.2.1.10",
    ]);
    let got = parse_output(&run_tool("snmpbulkget", &args).await);
    let names: Vec<String> = got.iter().map(|p| p.oid.to_string()).collect();
    assert_eq!(
        names,
        [
            "1.3.6.1.2.1.1.2.0",
            "1.3.6.1.2.1.2.2.1.2.1",
            "1.3.6.1.2.1.2.2.1.10.1",
            "1.3.6.1.2.1.2.2.1.2.2",
            "1.3.6.1.2.1.2.2.1.10.2",
            "1.3.6.1.2.1.2.2.1.2.3",
            "1.3.6.1.2.1.2.2.1.10.3",
        ]
    );
    for printed in &got {
        let value = recording.get(&printed.oid).unwrap();
        assert_eq!(
            (printed.kind.clone(), printed.value.clone()),
            normalise(value)
        );
    }
}

#[tokio::test]
async fn wrong_community_is_ignored_and_counted() {
    let recording = load(&support::conformance(GENERIC));
    let (handle, addr) = serve(recording, None).await;
    let output = run_tool_raw(
        "snmpget",
        &[
            "-v2c",
            "-c",
            "private",
            "-t",
            "1",
            "-r",
            "0",
            &addr,
            ".1.3.6.1.2.1.2.2.1.1.1",
        ],
    )
    .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Timeout"), "{stderr}");
    let counters = handle.total_counters();
    assert_eq!(counters.wrong_community, 1, "{counters:?}");
    assert_eq!(counters.served, 0);
}

#[tokio::test]
async fn many_devices_in_one_process() {
    let recording = load(&support::resource("demo/switch48.snmprec"));
    let mut config = SimulatorConfig::new(CounterMode::Advancing);
    for _ in 0..16 {
        config = config.with_device(DeviceConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&recording),
            "public",
        ));
    }
    let handle = Simulator::spawn(config).await.unwrap();
    let addrs = handle.local_addrs();
    assert_eq!(addrs.len(), 16);
    for (i, addr) in addrs.iter().enumerate() {
        let addr = addr.to_string();
        let mut args = vec!["-v2c", "-c", "public"];
        args.extend(NUMERIC_OUTPUT);
        args.push(NO_MIBS);
        args.extend([addr.as_str(), ".1.3.6.1.2.1.1.5.0"]);
        let got = parse_output(&run_tool("snmpget", &args).await);
        assert_eq!(
            got[0].value, "73 69 6D 2D 73 77 69 74 63 68 2D 34 38",
            "device {i}"
        );
        assert_eq!(handle.counters(i).unwrap().served, 1);
    }
    handle.shutdown().await;
}

// ---- every conformance recording, every version ----

const V3_USER: &str = "sim:SHA-256:authpass-1:AES:privpass-1";

/// net-snmp's arguments for one SNMP version against the simulator.
fn version_args(version: SnmpVersion) -> Vec<&'static str> {
    match version {
        SnmpVersion::V1 => vec!["-v1", "-c", "public"],
        SnmpVersion::V2c => vec!["-v2c", "-c", "public"],
        SnmpVersion::V3 => vec![
            "-v3",
            "-l",
            "authPriv",
            "-u",
            "sim",
            "-a",
            "SHA-256",
            "-A",
            "authpass-1",
            "-x",
            "AES",
            "-X",
            "privpass-1",
        ],
    }
}

async fn tool(
    program: &str,
    version: SnmpVersion,
    addr: &str,
    extra: &[&str],
    oids: &[String],
) -> Vec<Printed> {
    let mut args = version_args(version);
    args.extend(["-t", "5", "-r", "1"]);
    args.extend(NUMERIC_OUTPUT);
    args.push(NO_MIBS);
    args.extend(extra);
    args.push(addr);
    args.extend(oids.iter().map(String::as_str));
    parse_output(&run_tool(program, &args).await)
}

/// Every distinct non-empty recording under tests/conformance.
fn conformance_recordings() -> Vec<std::path::PathBuf> {
    let root = support::conformance("");
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for case in std::fs::read_dir(&root).unwrap().flatten() {
        for variant in std::fs::read_dir(case.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = variant.path().join("device.snmprec");
            let Ok(text) = std::fs::read(&file) else {
                continue;
            };
            if !text.is_empty() && seen.insert(text) {
                found.push(file);
            }
        }
    }
    found.sort();
    assert!(
        found.len() >= 15,
        "only {} recordings under {}",
        found.len(),
        root.display()
    );
    found
}

async fn check_recording(path: std::path::PathBuf) {
    let recording = load(&path);
    let what = path.display().to_string();
    let user = UsmUser::parse_spec(V3_USER).unwrap();
    let config = SimulatorConfig::new(CounterMode::Frozen).with_device(
        DeviceConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&recording),
            "public",
        )
        .with_v3_users(Arc::new(vec![user])),
    );
    let handle = Simulator::spawn(config).await.unwrap();
    let addr = handle.local_addrs()[0].to_string();
    let all = expected(&recording, |_| true);
    let no_64 = expected(&recording, |v| !matches!(v, SnmpValue::Counter64(_)));
    for version in [SnmpVersion::V1, SnmpVersion::V2c, SnmpVersion::V3] {
        let want = if version == SnmpVersion::V1 {
            &no_64
        } else {
            &all
        };
        // Walk: GETBULK in v2c/v3, GETNEXT in v1.
        let (program, extra) = if version == SnmpVersion::V1 {
            ("snmpwalk", vec![])
        } else {
            ("snmpbulkwalk", vec!["-Cr20"])
        };
        let mut got = tool(program, version, &addr, &extra, &[".1".to_string()]).await;
        if version == SnmpVersion::V1 {
            // v1 ends a walk with noSuchName, which snmpwalk reports on a line
            // of its own that the parser joins to the last value.
            if let Some(last) = got.last_mut() {
                if let Some(value) = last.value.strip_suffix(" End of MIB") {
                    last.value = value.to_string();
                }
            }
        } else {
            let last = got.pop().expect("no output");
            assert_eq!(last.kind, "endOfMibView", "{what} {version}");
        }
        assert_same(&got, want, &format!("{program} {version} {what}"));
        // GET of every OID, and GETNEXT of every OID's predecessor.
        let names: Vec<String> = want.iter().map(|p| p.oid.to_dotted_leading()).collect();
        for (chunk_index, chunk) in names.chunks(80).enumerate() {
            let got = tool("snmpget", version, &addr, &[], chunk).await;
            let start = chunk_index * 80;
            assert_same(
                &got,
                &want[start..start + chunk.len()],
                &format!("snmpget {version} {what}"),
            );
            let before: Vec<String> = (start..start + chunk.len())
                .map(|i| {
                    if i == 0 {
                        ".1".to_string()
                    } else {
                        names[i - 1].clone()
                    }
                })
                .collect();
            let got = tool("snmpgetnext", version, &addr, &[], &before).await;
            assert_same(
                &got,
                &want[start..start + chunk.len()],
                &format!("snmpgetnext {version} {what}"),
            );
        }
    }
    let counters = handle.total_counters();
    assert_eq!(
        counters.malformed + counters.unsupported,
        0,
        "{what}: {counters:?}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_snmp_reads_every_conformance_recording_over_v1_v2c_and_v3() {
    let mut tasks = tokio::task::JoinSet::new();
    for path in conformance_recordings() {
        tasks.spawn(check_recording(path));
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn v3_users_of_every_protocol_and_reports_net_snmp_understands() {
    let recording = load(&support::resource("demo/switch48.snmprec"));
    let mut users = vec![UsmUser::no_auth("plain")];
    for auth in AuthProtocol::ALL {
        users.push(UsmUser::no_auth(format!("a-{}", auth.name())).with_auth(auth, "authpass-1"));
    }
    for privacy in PrivProtocol::ALL {
        users.push(
            UsmUser::no_auth(format!("p-{}", privacy.name()))
                .with_auth(AuthProtocol::Md5, "authpass-1")
                .with_privacy(privacy, "privpass-1"),
        );
    }
    let config = SimulatorConfig::new(CounterMode::Frozen).with_device(
        DeviceConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&recording),
            "public",
        )
        .with_v3_users(Arc::new(users.clone())),
    );
    let handle = Simulator::spawn(config).await.unwrap();
    let addr = handle.local_addrs()[0].to_string();
    let want = recording
        .get(&"1.3.6.1.2.1.1.5.0".parse().unwrap())
        .unwrap()
        .clone();
    for user in &users {
        let mut args: Vec<String> = vec!["-v3".into(), "-u".into(), user.name.clone()];
        let level = match (&user.auth, &user.privacy) {
            (None, _) => "noAuthNoPriv",
            (Some(_), None) => "authNoPriv",
            _ => "authPriv",
        };
        args.extend(["-l".into(), level.into()]);
        if let Some((p, pass)) = &user.auth {
            args.extend([
                "-a".into(),
                p.name().into(),
                "-A".into(),
                pass.expose().into(),
            ]);
        }
        if let Some((p, pass)) = &user.privacy {
            args.extend([
                "-x".into(),
                p.name().into(),
                "-X".into(),
                pass.expose().into(),
            ]);
        }
        args.extend(NUMERIC_OUTPUT.iter().map(|s| s.to_string()));
        args.push(NO_MIBS.into());
        args.extend([addr.clone(), ".1.3.6.1.2.1.1.5.0".into()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let got = parse_output(&run_tool("snmpget", &refs).await);
        assert_eq!(
            (got[0].kind.clone(), got[0].value.clone()),
            normalise(&want),
            "{}",
            user.name
        );

        // Our client too, walking the interface table.
        let mut target = SnmpTarget::v3("127.0.0.1", user.clone());
        target.port = handle.local_addrs()[0].port();
        let mut client = SnmpClient::connect(&target).await.unwrap();
        let root: Oid = "1.3.6.1.2.1.2.2.1.2".parse().unwrap();
        let walk = client.bulk_walk(&root).await.unwrap();
        let want_walk: Vec<Varbind> = recording
            .iter()
            .filter(|(o, _)| o.starts_with(&root))
            .map(|(o, v)| Varbind::new(o.clone(), v.clone()))
            .collect();
        assert_eq!(walk, want_walk, "{}", user.name);
    }
    // Refusals come back as the Reports net-snmp turns into its messages.
    let cases = [
        (
            vec!["-u", "nobody", "-l", "noAuthNoPriv"],
            "Unknown user name",
        ),
        (
            vec![
                "-u",
                "a-SHA",
                "-l",
                "authNoPriv",
                "-a",
                "SHA",
                "-A",
                "wrong-pass",
            ],
            "Authentication failure",
        ),
        (
            vec![
                "-u",
                "a-SHA",
                "-l",
                "authPriv",
                "-a",
                "SHA",
                "-A",
                "authpass-1",
                "-x",
                "AES",
                "-X",
                "privpass-1",
            ],
            "Unsupported security level",
        ),
        (
            vec![
                "-u",
                "p-AES",
                "-l",
                "authPriv",
                "-a",
                "MD5",
                "-A",
                "authpass-1",
                "-x",
                "AES",
                "-X",
                "wrong-pass",
            ],
            "Decryption error",
        ),
    ];
    for (user_args, message) in cases {
        let mut args = vec!["-v3", "-t", "2", "-r", "0"];
        args.extend(user_args);
        args.extend([addr.as_str(), ".1.3.6.1.2.1.1.5.0"]);
        let output = run_tool_raw("snmpget", &args).await;
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn devices_have_their_own_counter_phase_and_32_bit_counters_wrap() {
    let recording = load(&support::resource("demo/switch48.snmprec"));
    let mut config = SimulatorConfig::new(CounterMode::Advancing);
    for index in 0..8 {
        config = config.with_device(
            DeviceConfig::new(
                "127.0.0.1:0".parse().unwrap(),
                Arc::clone(&recording),
                "public",
            )
            .with_counter_phase(panoptes::simulate::phase_of(index)),
        );
    }
    let handle = Simulator::spawn(config).await.unwrap();
    let in_octets: Oid = "1.3.6.1.2.1.2.2.1.10.1".parse().unwrap();
    let mut values = Vec::new();
    for addr in handle.local_addrs() {
        let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
        target.port = addr.port();
        let mut client = SnmpClient::connect(&target).await.unwrap();
        let got = client.get(std::slice::from_ref(&in_octets)).await.unwrap();
        let SnmpValue::Counter32(n) = got[0].value else {
            panic!("ifInOctets is {:?}", got[0].value)
        };
        values.push(u64::from(n));
    }
    let distinct: std::collections::HashSet<_> = values.iter().collect();
    assert_eq!(distinct.len(), values.len(), "{values:?}");
    // A phase of hours at millions of octets a second has wrapped 2^32 for some:
    // a counter is below what it would be without wrapping.
    let per_second = panoptes::simulate::counters::rate_in(
        in_octets.components(),
        panoptes::simulate::counters::OCTET_RATE,
    );
    let wrapped = (1..8u32).any(|i| {
        let unwrapped = per_second * panoptes::simulate::phase_of(i).as_secs();
        unwrapped >= 1 << 32 && values[i as usize] < unwrapped
    });
    assert!(wrapped, "rate {per_second}/s, values {values:?}");
    handle.shutdown().await;
}
