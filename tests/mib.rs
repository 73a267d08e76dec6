//! MIB names against net-snmp: `panoptes mib translate` prints what `snmptranslate`
//! prints, `panoptes walk` what `snmpbulkwalk` (and `snmpwalk -v1`) print without `-On`,
//! on the same MIB files (the built-in `resources/mibs` and the test vendor's
//! `tests/mibs`); `mib check` and `config check` list a broken module without losing the
//! rest; a DSL document written with names polls the demo device as the numeric one does.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::json;
use support::{panoptes_logging, run_tool, stdout_ok};

fn vendor_mibs() -> PathBuf {
    support::repo().join("tests/mibs")
}

/// net-snmp's search path holding exactly the MIBs panoptes has with `-M tests/mibs`.
fn net_snmp_mibs() -> String {
    format!(
        "{}:{}",
        support::repo().join("resources/mibs").display(),
        vendor_mibs().display()
    )
}

fn panoptes(args: &[&str]) -> Output {
    panoptes_logging("error", args)
}

/// snmptranslate with the same MIBs.
async fn snmptranslate(args: &[&str]) -> String {
    let dirs = net_snmp_mibs();
    let mut all = vec!["-M", dirs.as_str(), "-m", "ALL"];
    all.extend_from_slice(args);
    run_tool("snmptranslate", &all).await
}

#[tokio::test]
async fn translate_prints_what_snmptranslate_prints() {
    let vendor = vendor_mibs();
    let vendor = vendor.to_str().unwrap();
    // Names to numbers (snmptranslate -On).
    for name in [
        "IF-MIB::ifHCInOctets",
        "IF-MIB::ifXTable",
        "IF-MIB::ifDescr.3",
        "SNMPv2-MIB::sysUpTime.0",
        "IANAifType-MIB::ianaifType",
        "SNMPv2-SMI::enterprises",
        "ACME-SENSOR-MIB::acmeSensorCelsius.2",
        "ACME-SENSOR-MIB::acmeSensorFailed",
        "ACME-SMI::acmeProducts",
        "ACME-SENSOR-MIB::acmeUserLogins.\"alice\"",
        "ACME-SENSOR-MIB::acmeUserLogins.\"x\".7",
        "ACME-SENSOR-MIB::acmePeerState.10.0.0.1.'core'",
    ] {
        let theirs = snmptranslate(&["-On", name]).await;
        let ours = stdout_ok(
            &panoptes(&["mib", "translate", "-M", vendor, name]),
            "mib translate",
        );
        assert_eq!(ours, theirs, "{name}");
        let ours = stdout_ok(
            &panoptes(&["mib", "translate", "-M", vendor, "-On", name]),
            "mib translate -On",
        );
        assert_eq!(ours, theirs, "-On {name}");
    }
    // Numbers to names, short (MODULE::name.suffix) and full (-Of).
    for oid in [
        ".1.3.6.1.2.1.31.1.1.1.6.3",
        ".1.3.6.1.2.1.2.2.1.8",
        ".1.3.6.1.2.1.1.3.0",
        ".1.3.6.1.4.1.99999.2.1.1.2.1.4.2",
        ".1.3.6.1.4.1.99999.1.5",
        ".1.3.6.1.4.1.99999.2.1.2.1",
        ".1.3.6.1.4.1.99999.2.1.1.3.1.2.5.97.108.105.99.101",
        ".1.3.6.1.4.1.99999.2.1.1.4.1.3.10.0.0.2.101.100.103.101",
        ".1.3.6.1.9.1",
    ] {
        let theirs = snmptranslate(&[oid]).await;
        let ours = stdout_ok(
            &panoptes(&["mib", "translate", "-M", vendor, oid]),
            "mib translate",
        );
        assert_eq!(ours, theirs, "{oid}");
        let theirs = snmptranslate(&["-Of", oid]).await;
        let ours = stdout_ok(
            &panoptes(&["mib", "translate", "-M", vendor, "-Of", oid]),
            "mib translate -Of",
        );
        assert_eq!(ours, theirs, "-Of {oid}");
    }
    // Several at once, in order.
    let ours = stdout_ok(
        &panoptes(&["mib", "translate", "ifHCInOctets", ".1.3.6.1.2.1.2.2.1.2.7"]),
        "mib translate",
    );
    assert_eq!(ours, ".1.3.6.1.2.1.31.1.1.1.6\nIF-MIB::ifDescr.7\n");
    // An unknown name: what, why and where was looked.
    let out = panoptes(&["mib", "translate", "-M", vendor, "IF-MIB::ifHCInOctet"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "panoptes: `IF-MIB::ifHCInOctet` is not a numeric OID nor a name in the loaded MIBs: \
             node not found: IF-MIB::ifHCInOctet (MIB search path: {vendor}, built-in)\n"
        )
    );
}

/// A device with IF-MIB rows and the test vendor's objects: enums, hints, units, BITS, tables
/// indexed by strings (one with a byte that does not print) and by an address and an
/// IMPLIED string.
const ACME_DEVICE: &str = "\
1.3.6.1.2.1.1.1.0|4|Acme box
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99999.1.5
1.3.6.1.2.1.1.3.0|67|12345
1.3.6.1.2.1.1.4.0|4|
1.3.6.1.2.1.1.5.0|4x|636166c3a9
1.3.6.1.2.1.2.2.1.1.1|2|1
1.3.6.1.2.1.2.2.1.1.2|2|2
1.3.6.1.2.1.2.2.1.2.1|4|lo
1.3.6.1.2.1.2.2.1.2.2|4|eth0 \"x\"
1.3.6.1.2.1.2.2.1.3.1|2|24
1.3.6.1.2.1.2.2.1.3.2|2|6
1.3.6.1.2.1.2.2.1.6.1|4|
1.3.6.1.2.1.2.2.1.6.2|4x|000c29abcd0e
1.3.6.1.2.1.2.2.1.7.1|2|1
1.3.6.1.2.1.2.2.1.7.2|2|2
1.3.6.1.2.1.2.2.1.8.1|2|1
1.3.6.1.2.1.2.2.1.8.2|2|7
1.3.6.1.2.1.2.2.1.8.3|2|99
1.3.6.1.2.1.31.1.1.1.1.1|4|lo
1.3.6.1.2.1.31.1.1.1.6.1|70|123
1.3.6.1.2.1.31.1.1.1.6.2|70|18446744073709551615
1.3.6.1.2.1.31.1.1.1.15.2|66|1000
1.3.6.1.2.1.31.1.1.1.17.2|2|1
1.3.6.1.4.1.99999.2.1.1.1.0|4x|0102030405
1.3.6.1.4.1.99999.2.1.1.2.1.2.1|4|cpu
1.3.6.1.4.1.99999.2.1.1.2.1.3.1|2|2
1.3.6.1.4.1.99999.2.1.1.2.1.4.1|2|235
1.3.6.1.4.1.99999.2.1.1.2.1.4.2|2|-5
1.3.6.1.4.1.99999.2.1.1.2.1.5.1|66|42
1.3.6.1.4.1.99999.2.1.1.3.1.2.3.98.1.98|2|4
1.3.6.1.4.1.99999.2.1.1.3.1.2.5.97.108.105.99.101|2|3
1.3.6.1.4.1.99999.2.1.1.4.1.3.10.0.0.1.99.111.114.101|2|6
1.3.6.1.4.1.99999.2.1.1.4.1.3.10.0.0.2.101.100.103.101|2|1
1.3.6.1.4.1.99999.2.1.1.5.0|4x|6040
1.3.6.1.4.1.99999.2.1.1.5.1|4x|00
1.3.6.1.4.1.99999.2.1.1.5.2|4x|
1.3.6.1.4.1.99999.2.1.1.5.3|4x|ff
1.3.6.1.4.1.99999.2.1.1.6.0|66|123
1.3.6.1.4.1.99999.2.1.1.6.1|65|7
1.3.6.1.4.1.99999.2.1.1.6.2|2|-4
";

/// An agent answering with types its MIBs do not define for the objects.
const WRONG_TYPES: &str = "\
1.3.6.1.2.1.1.1.0|2|5
1.3.6.1.2.1.1.2.0|4|x
1.3.6.1.2.1.1.3.0|66|5
1.3.6.1.2.1.2.2.1.1.1|65|1
1.3.6.1.2.1.2.2.1.8.1|4|up
1.3.6.1.2.1.2.2.1.10.1|66|1
1.3.6.1.2.1.31.1.1.1.6.1|65|1
1.3.6.1.2.1.31.1.1.1.15.1|2|3
1.3.6.1.4.1.99999.2.1.1.5.0|2|1
1.3.6.1.4.1.99999.2.1.1.6.0|70|5
";

// The simulator answers on one worker while the test waits for panoptes on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_prints_names_like_snmpbulkwalk() {
    let dir = tempfile::tempdir().unwrap();
    let acme = dir.path().join("acme.snmprec");
    std::fs::write(&acme, ACME_DEVICE).unwrap();
    let wrong = dir.path().join("wrong.snmprec");
    std::fs::write(&wrong, WRONG_TYPES).unwrap();
    let recordings = [
        acme,
        wrong,
        support::resource("demo/switch48.snmprec"),
        support::conformance("interface_enrichment/juniper_mx/device.snmprec"),
    ];
    let dirs = net_snmp_mibs();
    let vendor = vendor_mibs();
    let vendor = vendor.to_str().unwrap();
    for path in recordings {
        let (handle, addr) = support::serve_recording(&path).await;
        let what = path.display();
        for root in [".1", "IF-MIB::ifXTable", "ifOperStatus"] {
            for output in [None, Some("-On"), Some("-Oe")] {
                let mut theirs = vec!["-v2c", "-c", "public", "-M", &dirs, "-m", "ALL"];
                let mut ours = vec!["walk", "-M", vendor];
                theirs.extend(output);
                ours.extend(output);
                theirs.extend([addr.as_str(), root]);
                ours.extend([addr.as_str(), root]);
                let theirs = run_tool("snmpbulkwalk", &theirs).await;
                let ours = stdout_ok(&panoptes(&ours), "panoptes walk");
                assert_eq!(ours, theirs, "{what} {root} {output:?}");
                assert!(!ours.is_empty(), "{what} {root}");
            }
            // v1: GETNEXT, as snmpwalk prints it.
            let theirs = run_tool(
                "snmpwalk",
                &["-v1", "-c", "public", "-M", &dirs, "-m", "ALL", &addr, root],
            )
            .await;
            let ours = stdout_ok(
                &panoptes(&["walk", "-v", "1", "-M", vendor, &addr, root]),
                "panoptes walk -v 1",
            );
            assert_eq!(ours, theirs, "v1 {what} {root}");
        }
        handle.shutdown().await;
    }
}

// The simulator answers on one worker while the test waits for panoptes on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_shows_enums_hints_and_units_from_the_mibs() {
    let dir = tempfile::tempdir().unwrap();
    let acme = dir.path().join("acme.snmprec");
    std::fs::write(&acme, ACME_DEVICE).unwrap();
    let (handle, addr) = support::serve_recording(&acme).await;
    let vendor = vendor_mibs();
    let out = stdout_ok(
        &panoptes(&["walk", "-M", vendor.to_str().unwrap(), &addr, ".1"]),
        "walk",
    );
    let lines: Vec<&str> = out.lines().collect();
    for expected in [
        "SNMPv2-MIB::sysObjectID.0 = OID: ACME-SMI::acmeProducts.5",
        "SNMPv2-MIB::sysName.0 = STRING: café",
        "IF-MIB::ifType.1 = INTEGER: softwareLoopback(24)",
        "IF-MIB::ifPhysAddress.2 = STRING: 0:c:29:ab:cd:e",
        "IF-MIB::ifOperStatus.2 = INTEGER: lowerLayerDown(7)",
        "IF-MIB::ifOperStatus.3 = INTEGER: 99",
        "IF-MIB::ifDescr.2 = STRING: eth0 \"x\"",
        "ACME-SENSOR-MIB::acmeChassisSerial.0 = STRING: 102-304-500",
        "ACME-SENSOR-MIB::acmeSensorStatus.1 = INTEGER: warning(2)",
        "ACME-SENSOR-MIB::acmeSensorCelsius.1 = INTEGER: 23.5",
        "ACME-SENSOR-MIB::acmeSensorLoad.1 = Gauge32: 42 percent",
        "ACME-SENSOR-MIB::acmeUserLogins.\"b.b\" = INTEGER: 4",
        "ACME-SENSOR-MIB::acmeUserLogins.\"alice\" = INTEGER: 3",
        "ACME-SENSOR-MIB::acmePeerState.10.0.0.1.'core' = INTEGER: established(6)",
        "ACME-SENSOR-MIB::acmeChassisAlarms.0 = BITS: 60 40 psu(1) temperature(2) door(9) ",
        "ACME-SENSOR-MIB::acmeChassisAlarms.3 = BITS: FF fan(0) psu(1) temperature(2) 3 4 5 6 7 ",
        "ACME-SENSOR-MIB::acmeBoardVolts.0 = Gauge32: 12.3 volts",
        "ACME-SENSOR-MIB::acmeBoardVolts.1 = Wrong Type (should be Gauge32 or Unsigned32): Counter32: 7",
    ] {
        assert!(lines.contains(&expected), "{expected} not in\n{out}");
    }
    // Without the vendor's MIBs its objects are numbers under enterprises.
    let out = stdout_ok(&panoptes(&["walk", "-Oe", &addr, "ifOperStatus"]), "walk");
    assert_eq!(
        out,
        "IF-MIB::ifOperStatus.1 = INTEGER: 1\nIF-MIB::ifOperStatus.2 = INTEGER: 7\n\
         IF-MIB::ifOperStatus.3 = INTEGER: 99\n"
    );
    let out = stdout_ok(
        &panoptes(&["walk", &addr, ".1.3.6.1.4.1.99999.2.1.1.2.1.4"]),
        "walk",
    );
    assert_eq!(
        out,
        "SNMPv2-SMI::enterprises.99999.2.1.1.2.1.4.1 = INTEGER: 235\n\
         SNMPv2-SMI::enterprises.99999.2.1.1.2.1.4.2 = INTEGER: -5\n"
    );
    let out = panoptes(&["walk", &addr, "IF-MIB::ifNoSuchColumn"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "`IF-MIB::ifNoSuchColumn` is not a numeric OID nor a name in the loaded MIBs"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = panoptes(&["walk", "-Oq", &addr]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "panoptes: -Oq is not supported (supported: -On numeric OIDs, -Oe numeric enums)\n"
    );
    handle.shutdown().await;
}

#[test]
fn mib_check_lists_what_fails_and_why() {
    let broken = support::repo().join("tests/mibs-broken");
    let out = panoptes(&["mib", "check", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let file = broken.join("ACME-BROKEN-MIB.txt");
    let file = file.display();
    let garbage = broken.join("GARBAGE.txt");
    let garbage = garbage.display();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{file}: ACME-BROKEN-MIB: expected OID component\n\
             {file}: ACME-BROKEN-MIB: unresolved import: \"acmeWidgets\" from \"ACME-NOWHERE-MIB\" (module_not_found)\n\
             {file}: ACME-BROKEN-MIB: unresolved OID: \"acmeBrokenValue\" references unknown parent \"acmeWidgets\"\n\
             {garbage}: GARBAGE.txt: no MIB module found in it (expected `NAME DEFINITIONS ::= BEGIN`)\n"
        )
    );
    let out = panoptes(&["mib", "check", vendor_mibs().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let out = panoptes(&["mib", "check", "/nonexistent/mibs"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "panoptes: /nonexistent/mibs is not a directory\n"
    );
}

#[test]
fn config_check_reports_a_broken_module_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let broken = support::repo().join("tests/mibs-broken");
    let config = dir.path().join("panoptes.toml");
    std::fs::write(
        &config,
        format!(
            "[mibs]\ndirs = [{:?}, {:?}]\n",
            broken.display().to_string(),
            vendor_mibs().display().to_string()
        ),
    )
    .unwrap();
    let out = panoptes(&["--config", config.to_str().unwrap(), "config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [format!(
            "{}: mibs.dirs: MIB module ACME-BROKEN-MIB: expected OID component (and 2 more problems)",
            broken.join("ACME-BROKEN-MIB.txt").display()
        )],
    );
    // The same from the environment, a comma-separated list.
    let out = std::process::Command::new(support::BIN)
        .args(["config", "check"])
        .env(
            "PANOPTES__MIBS__DIRS",
            format!("{},{}", broken.display(), vendor_mibs().display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    // The good vendor module beside it still resolves, with the same configuration.
    let out = panoptes(&[
        "--config",
        config.to_str().unwrap(),
        "mib",
        "translate",
        "ACME-SENSOR-MIB::acmeSensorLoad",
    ]);
    assert_eq!(
        stdout_ok(&out, "mib translate"),
        ".1.3.6.1.4.1.99999.2.1.1.2.1.5\n"
    );
}

/// A Generic SNMP plugin reading its DSL document from `doc.json`.
fn write_plugin(dir: &std::path::Path, doc: &serde_json::Value) -> PathBuf {
    std::fs::write(dir.join("doc.json"), doc.to_string()).unwrap();
    let plugin = dir.join("p.panoptes-plugin");
    std::fs::write(
        &plugin,
        "[Core]\nName = MIB Names\nModule = plugin_polling_generic_snmp\n\n\
         [main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\n\
         namespace = metrics\npolling_status_metric_name = polling_status\n\n\
         [snmp]\ntimeout = 5\nretries = 1\nmax_repetitions = 25\n\n\
         [enrichment]\nfile = doc.json\n",
    )
    .unwrap();
    plugin
}

fn interface_document(
    in_octets: &str,
    descr: &str,
    status: &str,
    uptime: &str,
) -> serde_json::Value {
    json!({
        "oids": {
            "in_octets": {"method": "bulk_walk", "oid": in_octets},
            "descr": {"method": "bulk_walk", "oid": descr},
            "status": {"method": "bulk_walk", "oid": status},
            "uptime": {"method": "get", "oid": uptime}
        },
        "metrics_groups": [
            {"group_name": "interface",
             "dimensions": {"interface": "descr.$index", "status": "status.$index"},
             "metrics": {"bytes_in": {"metric_type": "counter", "value": "in_octets.$index"}}},
            {"group_name": "device", "dimensions": {},
             "metrics": {"uptime": {"metric_type": "gauge", "value": "uptime"}}}
        ]
    })
}

#[test]
fn a_dsl_document_with_mib_names_polls_as_the_numeric_one() {
    let resource = json!({"resource_site": "test_site", "resource_class": "network",
        "resource_subclass": "switch", "resource_type": "demo", "resource_id": "demo",
        "resource_endpoint": "127.0.0.1", "resource_plugin": "dummy",
        "resource_creation_timestamp": 1512629517.03121,
        "resource_metadata": {"_resource_ttl": "604800", "model": "demo"}});
    let dir = tempfile::tempdir().unwrap();
    let run = |doc: &serde_json::Value| {
        let plugin = write_plugin(dir.path(), doc);
        let resource_file = dir.path().join("resource.json");
        std::fs::write(&resource_file, resource.to_string()).unwrap();
        let demo = support::resource("demo/switch48.snmprec");
        panoptes_logging(
            "warn",
            &[
                "plugin",
                "run",
                "--plugin",
                plugin.to_str().unwrap(),
                "--resource",
                resource_file.to_str().unwrap(),
                "--snmprec",
                demo.to_str().unwrap(),
                "--now",
                "1512629517.03121",
            ],
        )
    };
    let numeric = interface_document(
        ".1.3.6.1.2.1.31.1.1.1.6",
        ".1.3.6.1.2.1.2.2.1.2",
        ".1.3.6.1.2.1.2.2.1.8",
        ".1.3.6.1.2.1.1.3.0",
    );
    let named = interface_document(
        "IF-MIB::ifHCInOctets",
        "ifDescr",
        "IF-MIB::ifOperStatus",
        "SNMPv2-MIB::sysUpTime.0",
    );
    let numeric_out: serde_json::Value =
        serde_json::from_str(&stdout_ok(&run(&numeric), "numeric document")).unwrap();
    let named_out: serde_json::Value =
        serde_json::from_str(&stdout_ok(&run(&named), "named document")).unwrap();
    assert_eq!(named_out, numeric_out);
    // The demo switch's 48 ports and more were polled, not an empty result.
    let interfaces = numeric_out
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["metrics_group_type"] == "interface")
        .count();
    assert!(interfaces >= 48, "{numeric_out}");
    // An unknown name stops the plugin before any request, naming file, entry and path.
    let bad = interface_document(
        "IF-MIB::ifHCInOctetz",
        "ifDescr",
        "IF-MIB::ifOperStatus",
        "SNMPv2-MIB::sysUpTime.0",
    );
    let out = run(&bad);
    let stdout: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout[0]["metrics_group_type"], "status");
    assert_eq!(stdout[0]["metrics"][0]["metric_value"], 5);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "plugin `MIB Names`: DSL document {}: oids.in_octets: `IF-MIB::ifHCInOctetz` is not a \
         numeric OID nor a name in the loaded MIBs: node not found: IF-MIB::ifHCInOctetz \
         (MIB search path: built-in)",
        dir.path().join("doc.json").display()
    );
    assert!(stderr.contains(&expected), "{expected}\nnot in\n{stderr}");
}
