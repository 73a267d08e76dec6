//! `panoptes plugin run` as a user runs it: the real binary on conformance cases, its
//! stdout compared with the recorded output, and its exit status on bad input.

mod replay;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use panoptes::model::canonical;
use replay::{case, strip_volatile};
use serde_json::{json, Value};

const FROZEN: &str = "1512629517.03121";

fn write_resource(dir: &Path, resource: &Value) -> PathBuf {
    let path = dir.join("resource.json");
    std::fs::write(&path, resource.to_string()).unwrap();
    path
}

fn test_resource(id: &str, extra_meta: Value) -> Value {
    replay::resource_json(id, extra_meta)
}

fn panoptes(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn polls_a_recording_with_kv_enrichment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = "generic_polling/juniper_bgp";
    let resource = write_resource(tmp.path(), &test_resource("test_id", json!({})));
    let out = panoptes(&[
        "plugin",
        "run",
        "--plugin",
        case(&format!("{dir}/plugin.conf")).to_str().unwrap(),
        "--resource",
        resource.to_str().unwrap(),
        "--snmprec",
        case(&format!("{dir}/device.snmprec")).to_str().unwrap(),
        "--enrichment",
        case(&format!("{dir}/enrichment_data.kv")).to_str().unwrap(),
        "--now",
        FROZEN,
    ]);
    let mut actual = stdout_json(&out);
    // The clock was frozen: every timestamp is the frozen one, rounded as the original.
    for g in actual.as_array().unwrap() {
        assert_eq!(g["metrics_group_creation_timestamp"], json!(1512629517.031));
    }
    strip_volatile(&mut actual);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(canonical(&actual), canonical(&expected));
}

#[test]
fn enriches_a_recording_with_frozen_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = "interface_enrichment/juniper_qfx";
    let mut r = test_resource("router1", json!({"model": "QFX5200"}));
    r["resource_site"] = json!("dc1");
    r["resource_subclass"] = json!("router");
    r["resource_type"] = json!("juniper");
    r["resource_plugin"] = json!("router_discovery_plugin");
    let resource = write_resource(tmp.path(), &r);
    let out = panoptes(&[
        "plugin",
        "run",
        "--plugin",
        case(&format!("{dir}/plugin.conf")).to_str().unwrap(),
        "--resource",
        resource.to_str().unwrap(),
        "--snmprec",
        case(&format!("{dir}/device.snmprec")).to_str().unwrap(),
        "--now",
        FROZEN,
    ]);
    let actual = stdout_json(&out);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(canonical(&actual), canonical(&expected));
}

#[test]
fn failures_exit_non_zero_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let resource = write_resource(tmp.path(), &test_resource("test_id", json!({})));
    let bad_plugin = tmp.path().join("bad.panoptes-plugin");
    std::fs::write(
        &bad_plugin,
        "[Core]\nName = X\nModule = plugin_polling_nosuch\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\n",
    )
    .unwrap();
    let out = panoptes(&[
        "plugin",
        "run",
        "--plugin",
        bad_plugin.to_str().unwrap(),
        "--resource",
        resource.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plugin_polling_nosuch") && err.contains("bad.panoptes-plugin"),
        "{err}"
    );

    // An enrichment plugin whose device does not answer: an error, not empty output.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let plugin = tmp.path().join("if.panoptes-plugin");
    std::fs::write(
        &plugin,
        "[Core]\nName = If\nModule = plugin_enrichment_interface_cisco\n[main]\nexecute_frequency = 60\nenrichment_ttl = 300\nresource_filter = resource_class = \"network\"\n[snmp]\ntimeout = 1\nretries = 0\n",
    )
    .unwrap();
    let out = panoptes(&[
        "plugin",
        "run",
        "--plugin",
        plugin.to_str().unwrap(),
        "--resource",
        resource.to_str().unwrap(),
        "--agent",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out"), "{err}");

    // Both device options at once are refused by the argument parser.
    let out = panoptes(&[
        "plugin",
        "run",
        "--plugin",
        plugin.to_str().unwrap(),
        "--resource",
        resource.to_str().unwrap(),
        "--agent",
        "127.0.0.1:1",
        "--snmprec",
        "x.snmprec",
    ]);
    assert!(!out.status.success());
}

/// An interface whose 64-bit octet counter is near its top: `bits_in` (octets x 8) passes
/// 64 bits and is printed as the exact integer, and the poll keeps every other metric.
#[test]
fn counters_past_64_bits_are_printed_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = "interface_polling/default";
    let recording = std::fs::read_to_string(case(&format!("{dir}/device.snmprec")))
        .unwrap()
        .replace(
            "1.3.6.1.2.1.31.1.1.1.6.5|70|0",
            "1.3.6.1.2.1.31.1.1.1.6.5|70|18446744073709551000",
        );
    assert!(recording.contains("18446744073709551000"));
    let rec_path = tmp.path().join("big.snmprec");
    std::fs::write(&rec_path, recording).unwrap();
    let resource = write_resource(tmp.path(), &test_resource("test_id", json!({})));
    let out = panoptes(&[
        "plugin",
        "run",
        "--plugin",
        case(&format!("{dir}/plugin.conf")).to_str().unwrap(),
        "--resource",
        resource.to_str().unwrap(),
        "--snmprec",
        rec_path.to_str().unwrap(),
        "--enrichment",
        case(&format!("{dir}/enrichment_data.kv")).to_str().unwrap(),
        "--now",
        FROZEN,
    ]);
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // 18446744073709551000 x 8, as an integer (a float would print 1.4757395258967641e20).
    assert!(
        text.contains("\"metric_value\": 147573952589676408000"),
        "{text}"
    );
    let groups: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        groups.as_array().unwrap().len(),
        expected.as_array().unwrap().len(),
        "every group is there"
    );
}
