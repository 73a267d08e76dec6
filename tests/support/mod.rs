//! Helpers shared by the tests that talk to net-snmp: locating fixtures and
//! tools, running the tools, and reading their output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use panoptes::snmp::{Oid, SnmpValue};

/// A file under the shared fixtures, which sit beside the crate (`../shared`).
pub fn shared(relative: &str) -> PathBuf {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join(relative);
    assert!(
        path.exists(),
        "fixture {} is missing: the shared/ folder must sit beside the repository clone",
        path.display()
    );
    path
}

/// A file under this crate's `resources/`.
pub fn resource(relative: &str) -> PathBuf {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/resources")).join(relative);
    assert!(path.exists(), "resource {} is missing", path.display());
    path
}

/// The path of a net-snmp program. Fails the test (never skips it) when net-snmp
/// is not installed.
pub fn net_snmp(program: &str) -> PathBuf {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = dirs
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file());
    match found {
        Some(path) => path,
        None => panic!(
            "net-snmp program `{program}` not found: install net-snmp \
             (Debian/Ubuntu: `apt-get install -y snmp snmpd`) to run these tests"
        ),
    }
}

/// Runs a net-snmp client tool and returns its stdout; fails the test with
/// stderr on a non-zero exit. Bounded to 60 s.
pub async fn run_tool(program: &str, args: &[&str]) -> String {
    let output = run_tool_raw(program, args).await;
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub async fn run_tool_raw(program: &str, args: &[&str]) -> std::process::Output {
    let path = net_snmp(program);
    let mut command = tokio::process::Command::new(&path);
    command
        .args(args)
        // No MIB files: output must depend only on what the agent sent.
        .env("MIBS", "")
        .env("MIBDIRS", "/nonexistent")
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(60), command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot run {}: {e}", path.display()),
        Err(_) => panic!("{program} {args:?} did not finish within 60 s"),
    }
}

/// Output options making net-snmp print numeric OIDs, numeric enums and every
/// string in hex, so values compare exactly.
pub const NUMERIC_OUTPUT: [&str; 4] = ["-On", "-Oe", "-Ox", "-m"];
/// The argument of the trailing `-m` in [`NUMERIC_OUTPUT`].
pub const NO_MIBS: &str = "";

/// One line of net-snmp output, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    pub oid: Oid,
    pub kind: String,
    pub value: String,
}

/// Reads `-On -Ox` output: `.OID = TYPE: value`, where long hex strings wrap
/// onto continuation lines (which never start with a dot).
pub fn parse_output(text: &str) -> Vec<Printed> {
    let mut lines: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        match line.split_once(" = ") {
            Some((oid, value)) if oid.starts_with('.') && !oid.contains(' ') => {
                lines.push((oid.to_string(), value.to_string()));
            }
            _ => match lines.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line);
                }
                None => panic!("unexpected net-snmp output line {line:?}"),
            },
        }
    }
    lines
        .into_iter()
        .map(|(oid, value)| {
            let (kind, value) = classify(value.trim());
            Printed {
                oid: oid
                    .parse()
                    .unwrap_or_else(|e| panic!("net-snmp printed a bad OID {oid}: {e}")),
                kind,
                value,
            }
        })
        .collect()
}

fn classify(value: &str) -> (String, String) {
    if value.starts_with("No more variables") {
        return ("endOfMibView".into(), String::new());
    }
    if value.starts_with("No Such Object") {
        return ("noSuchObject".into(), String::new());
    }
    if value.starts_with("No Such Instance") {
        return ("noSuchInstance".into(), String::new());
    }
    if value == "\"\"" {
        return ("STRING".into(), String::new());
    }
    if value == "NULL" {
        return ("NULL".into(), String::new());
    }
    let Some((kind, rest)) = value.split_once(": ") else {
        panic!("cannot read net-snmp value {value:?}");
    };
    let rest = rest.trim();
    match kind {
        "Hex-STRING" => ("STRING".into(), hex_words(rest)),
        "STRING" => {
            let unquoted = rest.trim_matches('"');
            ("STRING".into(), hex(unquoted.as_bytes()))
        }
        // "(12345) 0:02:03.45": the number in parentheses.
        "Timeticks" => {
            let ticks = rest
                .trim_start_matches('(')
                .split(')')
                .next()
                .unwrap_or_default();
            ("Timeticks".into(), ticks.to_string())
        }
        "OID" => ("OID".into(), rest.trim_start_matches('.').to_string()),
        _ => (kind.to_string(), rest.to_string()),
    }
}

fn hex_words(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Our value in the same normal form as [`parse_output`].
pub fn normalise(value: &SnmpValue) -> (String, String) {
    match value {
        SnmpValue::OctetString(bytes) => ("STRING".into(), hex(bytes)),
        SnmpValue::Opaque(bytes) => ("OPAQUE".into(), hex(bytes)),
        SnmpValue::Null
        | SnmpValue::NoSuchObject
        | SnmpValue::NoSuchInstance
        | SnmpValue::EndOfMibView => (value.type_name().into(), String::new()),
        other => (other.type_name().into(), other.to_display_string()),
    }
}

/// Types whose values move between two reads of a live agent.
pub fn is_volatile(kind: &str) -> bool {
    matches!(kind, "Counter32" | "Counter64" | "Timeticks")
}
