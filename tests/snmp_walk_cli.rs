//! `panoptes walk -m ""` prints what `snmpbulkwalk -On` (and `snmpwalk -v1 -On`) print,
//! byte for byte, against the same agent. (With MIB names: tests/mib.rs.)

mod support;

use std::sync::Arc;

use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
use panoptes::snmp::UsmUser;
use support::run_tool_raw;

/// Values chosen for their printing: long and binary strings, quotes and
/// backslashes, control characters, every type.
const FORMATS: &str = "\
1.3.6.1.9.1|4x|000102030405060708090a0b0c0d0e0f
1.3.6.1.9.2|4x|000102030405060708090a0b0c0d0e0f1011121314
1.3.6.1.9.3|4|say \"hi\" \\ there
1.3.6.1.9.4|4x|6162090a63
1.3.6.1.9.5|4x|61626300
1.3.6.1.9.6|64|10.1.2.3
1.3.6.1.9.7|68x|c0ffee
1.3.6.1.9.8|5|
1.3.6.1.9.9|2|-42
1.3.6.1.9.10|70|18446744073709551615
1.3.6.1.9.11|67|0
1.3.6.1.9.12|67|8640000
1.3.6.1.9.13|67|17280000
1.3.6.1.9.14|6|1.3.6
1.3.6.1.9.15|4x|000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f
1.3.6.1.9.16|4|
1.3.6.1.9.17|4x|c3a9
1.3.6.1.9.18|68x|9f780442f60000
1.3.6.1.9.19|65|4294967295
1.3.6.1.9.20|66|0
";

const V3: [&str; 11] = [
    "-v",
    "3",
    "-u",
    "ops",
    "-l",
    "authPriv",
    "-a",
    "SHA-512",
    "-A",
    "authpass-1",
    "-x",
];

fn stdout_of(output: &std::process::Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn ours(args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(support::BIN);
    // No MIBs: this machine's net-snmp has none of the IETF modules we build in, so
    // numbers on both sides.
    command
        .args(["walk", "-m", ""])
        .args(args)
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("PANOPTES") {
            command.env_remove(key);
        }
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("panoptes walk did not finish within 60 s")
        .unwrap();
    stdout_of(&output, &format!("panoptes walk {args:?}"))
}

#[tokio::test]
async fn panoptes_walk_prints_like_snmpbulkwalk() {
    let dir = tempfile::tempdir().unwrap();
    let formats = dir.path().join("formats.snmprec");
    std::fs::write(&formats, FORMATS).unwrap();
    let recordings = [
        formats,
        support::resource("demo/switch48.snmprec"),
        support::conformance("interface_enrichment/juniper_mx/device.snmprec"),
    ];
    let user = UsmUser::parse_spec("ops:SHA-512:authpass-1:AES-256:privpass-1").unwrap();
    for path in recordings {
        let recording = Arc::new(Recording::load(&path).unwrap());
        let config = SimulatorConfig::new(CounterMode::Frozen).with_device(
            DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public")
                .with_v3_users(Arc::new(vec![user.clone()])),
        );
        let handle = Simulator::spawn(config).await.unwrap();
        let addr = handle.local_addrs()[0].to_string();
        let what = path.display();
        for root in [".1", ".1.3.6.1.2.1.2.2.1.2", ".1.3.6.1.9"] {
            // v2c: GETBULK walks.
            let theirs = run_tool_raw(
                "snmpbulkwalk",
                &["-v2c", "-c", "public", "-On", &addr, root],
            )
            .await;
            let theirs = stdout_of(&theirs, "snmpbulkwalk");
            assert_eq!(
                ours(&["-v", "2c", "-c", "public", &addr, root]).await,
                theirs,
                "v2c {what} {root}"
            );
            // v3, same output.
            let mut args = V3.to_vec();
            args.extend(["AES-256", "-X", "privpass-1", "-On", &addr, root]);
            let theirs_v3 = stdout_of(&run_tool_raw("snmpbulkwalk", &args).await, "v3");
            let mut ours_args = V3.to_vec();
            ours_args.extend(["AES-256", "-X", "privpass-1", &addr, root]);
            assert_eq!(ours(&ours_args).await, theirs_v3, "v3 {what} {root}");
            // v1: GETNEXT walks, as snmpwalk prints them.
            let theirs_v1 =
                run_tool_raw("snmpwalk", &["-v1", "-c", "public", "-On", &addr, root]).await;
            assert_eq!(
                ours(&["-v", "1", "-c", "public", &addr, root]).await,
                stdout_of(&theirs_v1, "snmpwalk -v1"),
                "v1 {what} {root}"
            );
        }
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn panoptes_walk_errors_are_clear() {
    let output = tokio::process::Command::new(support::BIN)
        .args([
            "walk",
            "-v",
            "3",
            "-u",
            "ops",
            "-a",
            "SHA",
            "127.0.0.1:9",
            ".1",
        ])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("-A"), "{stderr}");
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let output = tokio::process::Command::new(support::BIN)
        .args(["walk", "-c", "s3cret", "-t", "0.2", "-r", "0", &addr, ".1"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("timed out") && stderr.contains(&addr),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

/// `panoptes walk ... | head -1`: the walk stops when its reader goes away, quietly, with
/// the status of a process killed by SIGPIPE (141), as snmpbulkwalk's pipelines do.
#[tokio::test]
async fn a_walk_into_a_closed_pipe_stops_quietly() {
    let (handle, addr) =
        support::serve_recording(&support::resource("demo/switch48.snmprec")).await;
    // More than a pipe holds (64 KiB on Linux): the walk is still writing when head exits.
    let whole = ours(&["-v", "2c", "-c", "public", &addr, ".1"]).await;
    assert!(whole.len() > 64 << 10, "{} bytes", whole.len());
    let shell = format!(
        "'{}' walk -m '' -v 2c -c public {addr} .1 | head -n 1; echo \"status ${{PIPESTATUS[0]}}\"",
        support::BIN
    );
    let mut command = tokio::process::Command::new("bash");
    command.args(["-c", &shell]).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("PANOPTES") {
            command.env_remove(key);
        }
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("the pipeline did not finish within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(".1.3.6.1.2.1.1.1.0 = STRING: "),
        "{stdout}"
    );
    assert_eq!(lines[1], "status 141", "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "nothing on stderr"
    );
    handle.shutdown().await;
}
