//! Our simulator, queried by net-snmp's own command-line tools.
//!
//! Needs net-snmp (`snmpbulkwalk`, `snmpwalk`, `snmpget`, `snmpbulkget`); the
//! tests fail, with a message saying what to install, when it is missing.

mod support;

use std::sync::Arc;

use panoptes::simulate::{
    CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig, SimulatorHandle,
};
use panoptes::snmp::SnmpValue;
use support::{normalise, parse_output, run_tool, run_tool_raw, Printed, NO_MIBS, NUMERIC_OUTPUT};

const GENERIC: &str = "conformance/interface_enrichment/generic/device.snmprec";

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
    let recording = load(&support::shared(GENERIC));
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
    let recording = load(&support::shared(GENERIC));
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
    let recording = load(&support::shared(GENERIC));
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
