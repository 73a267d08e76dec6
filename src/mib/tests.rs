use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use crate::snmp::{SnmpValue, Varbind};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mibs")
}

fn oid(text: &str) -> Oid {
    text.trim_start_matches('.').parse().unwrap()
}

#[test]
fn builtin_modules_load_without_problems() {
    let mibs = Mibs::builtin();
    assert_eq!(mibs.problems(), &[] as &[ModuleProblem]);
    for module in [
        "SNMPv2-SMI",
        "SNMPv2-TC",
        "SNMPv2-MIB",
        "IF-MIB",
        "IANAifType-MIB",
        "SNMP-FRAMEWORK-MIB",
        "HOST-RESOURCES-MIB",
        "HOST-RESOURCES-TYPES",
        "ENTITY-MIB",
        "EtherLike-MIB",
    ] {
        assert!(
            mibs.module_names().iter().any(|m| m == module),
            "{module} missing from {:?}",
            mibs.module_names()
        );
    }
}

#[test]
fn names_resolve_to_numbers_and_back() {
    let mibs = Mibs::builtin();
    let cases = [
        ("IF-MIB::ifHCInOctets", ".1.3.6.1.2.1.31.1.1.1.6"),
        ("ifHCInOctets.3", ".1.3.6.1.2.1.31.1.1.1.6.3"),
        ("IF-MIB::ifXTable", ".1.3.6.1.2.1.31.1.1"),
        ("sysDescr.0", ".1.3.6.1.2.1.1.1.0"),
        (".1.3.6.1.2.1.2.2.1.8", ".1.3.6.1.2.1.2.2.1.8"),
        ("1.3.6", ".1.3.6"),
    ];
    for (name, numeric) in cases {
        assert_eq!(mibs.resolve(name).unwrap(), oid(numeric), "{name}");
    }
    assert_eq!(
        mibs.name(&oid(".1.3.6.1.2.1.31.1.1.1.6.3")),
        "IF-MIB::ifHCInOctets.3"
    );
    assert_eq!(
        mibs.name(&oid(".1.3.6.1.2.1.1.3.0")),
        "SNMPv2-MIB::sysUpTime.0"
    );
    assert_eq!(
        mibs.full_name(&oid(".1.3.6.1.2.1.2.2.1.2.7")),
        ".iso.org.dod.internet.mgmt.mib-2.interfaces.ifTable.ifEntry.ifDescr.7"
    );
}

#[test]
fn unknown_names_say_what_and_where() {
    let mibs = Mibs::load(&[fixtures()]);
    let e = mibs.resolve("IF-MIB::ifNoSuchThing").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "`IF-MIB::ifNoSuchThing` is not a numeric OID nor a name in the loaded MIBs: \
             node not found: IF-MIB::ifNoSuchThing (MIB search path: {}, built-in)",
            fixtures().display()
        )
    );
    let e = Mibs::builtin().resolve("NO-SUCH-MIB::x").unwrap_err();
    assert_eq!(e.reason, "module not found: NO-SUCH-MIB");
    assert_eq!(e.search_path, "built-in");
    let e = Mibs::builtin().resolve("1.3.x").unwrap_err();
    assert_eq!(e.text, "1.3.x");
}

#[test]
fn vendor_modules_import_each_other() {
    let mibs = Mibs::load(&[fixtures()]);
    assert_eq!(mibs.problems(), &[] as &[ModuleProblem]);
    assert_eq!(
        mibs.resolve("ACME-SENSOR-MIB::acmeSensorCelsius.2")
            .unwrap(),
        oid(".1.3.6.1.4.1.99999.2.1.1.2.1.4.2")
    );
    assert_eq!(
        mibs.name(&oid(".1.3.6.1.4.1.99999.2.1.2.1")),
        "ACME-SENSOR-MIB::acmeSensorFailed"
    );
    assert_eq!(
        mibs.name(&oid(".1.3.6.1.4.1.99999.1.5")),
        "ACME-SMI::acmeProducts.5"
    );
}

#[test]
fn values_render_with_enums_hints_and_units() {
    let mibs = Mibs::load(&[fixtures()]);
    let line = |options: OutputOptions, o: &str, value: SnmpValue| {
        Renderer::new(Some(&mibs), options).line(&Varbind::new(oid(o), value))
    };
    let names = OutputOptions::default();
    let cases = [
        (
            ".1.3.6.1.2.1.2.2.1.8.1",
            SnmpValue::Integer(1),
            "IF-MIB::ifOperStatus.1 = INTEGER: up(1)",
        ),
        (
            ".1.3.6.1.2.1.2.2.1.8.1",
            SnmpValue::Integer(9),
            "IF-MIB::ifOperStatus.1 = INTEGER: 9",
        ),
        (
            ".1.3.6.1.2.1.2.2.1.6.1",
            SnmpValue::OctetString(vec![0, 0x0c, 0x29, 0xab, 0xcd, 0xef]),
            "IF-MIB::ifPhysAddress.1 = STRING: 0:c:29:ab:cd:ef",
        ),
        (
            ".1.3.6.1.2.1.2.2.1.2.1",
            SnmpValue::OctetString(b"eth0".to_vec()),
            "IF-MIB::ifDescr.1 = STRING: eth0",
        ),
        (
            ".1.3.6.1.4.1.99999.2.1.1.2.1.4.1",
            SnmpValue::Integer(235),
            "ACME-SENSOR-MIB::acmeSensorCelsius.1 = INTEGER: 23.5",
        ),
        (
            ".1.3.6.1.4.1.99999.2.1.1.2.1.5.1",
            SnmpValue::Gauge32(42),
            "ACME-SENSOR-MIB::acmeSensorLoad.1 = Gauge32: 42 percent",
        ),
        (
            ".1.3.6.1.2.1.1.2.0",
            SnmpValue::ObjectIdentifier(oid(".1.3.6.1.4.1.99999.1.5")),
            "SNMPv2-MIB::sysObjectID.0 = OID: ACME-SMI::acmeProducts.5",
        ),
        (
            ".1.3.6.1.9.1",
            SnmpValue::OctetString(b"x".to_vec()),
            "SNMPv2-SMI::internet.9.1 = STRING: \"x\"",
        ),
    ];
    for (o, value, expected) in cases {
        assert_eq!(line(names, o, value), expected);
    }
    let numeric = OutputOptions::parse("ne").unwrap();
    assert_eq!(
        line(numeric, ".1.3.6.1.2.1.2.2.1.8.1", SnmpValue::Integer(1)),
        ".1.3.6.1.2.1.2.2.1.8.1 = INTEGER: 1"
    );
    assert_eq!(
        OutputOptions::parse("q").unwrap_err(),
        "-Oq is not supported (supported: -On numeric OIDs, -Oe numeric enums)"
    );
}

#[test]
fn a_broken_module_is_reported_and_the_rest_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mibs-broken");
    let mibs = Mibs::load(&[dir.clone(), fixtures()]);
    // IF-MIB and the vendor's good modules are still there.
    assert!(mibs.resolve("IF-MIB::ifHCInOctets").is_ok());
    assert!(mibs.resolve("ACME-SENSOR-MIB::acmeSensorName").is_ok());
    let broken: Vec<&ModuleProblem> = mibs
        .problems()
        .iter()
        .filter(|p| p.module == "ACME-BROKEN-MIB")
        .collect();
    assert_eq!(broken.len(), 1, "{:?}", mibs.problems());
    assert_eq!(
        broken[0].file,
        dir.join("ACME-BROKEN-MIB.txt").display().to_string()
    );
    assert!(
        broken[0].reasons.contains(
            &"unresolved import: \"acmeWidgets\" from \"ACME-NOWHERE-MIB\" (module_not_found)"
                .to_string()
        ),
        "{:?}",
        broken[0].reasons
    );
    let checked = Mibs::check_dir(&dir);
    let modules: Vec<&str> = checked.iter().map(|p| p.module.as_str()).collect();
    assert_eq!(modules, ["ACME-BROKEN-MIB", "GARBAGE.txt"]);
    assert_eq!(
        checked[1].reasons,
        ["no MIB module found in it (expected `NAME DEFINITIONS ::= BEGIN`)"]
    );
    // Notes beside the modules are not modules.
    let notes = tempfile::tempdir().unwrap();
    std::fs::write(notes.path().join("README.md"), "# vendor MIBs").unwrap();
    std::fs::write(notes.path().join(".hidden"), "x").unwrap();
    std::fs::write(notes.path().join("NOTES"), "not a module").unwrap();
    let checked = Mibs::check_dir(notes.path());
    let modules: Vec<&str> = checked.iter().map(|p| p.module.as_str()).collect();
    assert_eq!(modules, ["NOTES"]);
    let missing = Mibs::load(&[PathBuf::from("/nonexistent/mibs")]);
    assert_eq!(missing.problems().len(), 1);
    assert!(missing.problems()[0]
        .to_string()
        .starts_with("/nonexistent/mibs (/nonexistent/mibs): cannot read the MIB directory:"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever a MIB directory holds, loading it never panics and IF-MIB stays usable.
    #[test]
    fn arbitrary_text_never_panics(
        body in "[ -~\n\t]{0,400}",
        damaged in proptest::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..3000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("RANDOM-MIB.txt"),
            format!("RANDOM-MIB DEFINITIONS ::= BEGIN\n{body}\nEND\n")).unwrap();
        std::fs::write(dir.path().join("BYTES-MIB.txt"), &damaged).unwrap();
        // A real module cut short at an arbitrary point.
        let sensor = std::fs::read(fixtures().join("ACME-SENSOR-MIB.txt")).unwrap();
        std::fs::write(dir.path().join("ACME-SENSOR-MIB.txt"), &sensor[..cut.min(sensor.len())]).unwrap();
        let mibs = Mibs::load(&[dir.path().to_path_buf()]);
        prop_assert!(mibs.resolve("IF-MIB::ifHCInOctets").is_ok());
        let _ = Mibs::check_dir(dir.path());
    }
}

#[test]
fn quoted_string_indexes_resolve_like_net_snmp_reads_them() {
    let mibs = Mibs::load(&[fixtures()]);
    assert_eq!(
        mibs.resolve("acmeUserLogins.\"alice\"").unwrap(),
        oid(".1.3.6.1.4.1.99999.2.1.1.3.1.2.5.97.108.105.99.101")
    );
    assert_eq!(
        mibs.resolve("ACME-SENSOR-MIB::acmePeerState.10.0.0.1.'core'")
            .unwrap(),
        oid(".1.3.6.1.4.1.99999.2.1.1.4.1.3.10.0.0.1.99.111.114.101")
    );
    // And back.
    assert_eq!(
        mibs.name(&oid(".1.3.6.1.4.1.99999.2.1.1.3.1.2.5.97.108.105.99.101")),
        "ACME-SENSOR-MIB::acmeUserLogins.\"alice\""
    );
    assert_eq!(
        mibs.resolve("acmeUserLogins.\"x").unwrap_err().reason,
        "unclosed \" in the index"
    );
    assert_eq!(
        mibs.resolve("acmeUserLogins.\"x\"y").unwrap_err().reason,
        "expected `.` before `y` in the index"
    );
    assert_eq!(
        mibs.resolve("acmeUserLogins.\"x\".z").unwrap_err().reason,
        "`z` is not a number in the index"
    );
}
