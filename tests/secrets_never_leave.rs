//! Secrets never leave the node: run it with a secret in every place one can be set (SNMP
//! community and v3 passphrases, the HTTP token, the InfluxDB token), let it poll and write,
//! then read everything it wrote and served (logs at debug, /metrics, every API answer,
//! every topic record, every file of its data directory, its argv) and look for each.

mod influx_support;
mod support;

use std::time::Duration;

use influx_support::{metric_value, Server};
use support::NodeEnv;

const COMMUNITY: &str = "c0mmunity-S3CRET-one";
const V3_AUTH: &str = "v3auth-S3CRET-two";
const V3_PRIV: &str = "v3priv-S3CRET-three";
const HTTP_TOKEN: &str = "http-t0ken-S3CRET-four";
const INFLUX_TOKEN: &str = "influx-t0ken-S3CRET-five";
const TRAP_COMMUNITY: &str = "trap-c0mmunity-S3CRET-six";
const TRAP_AUTH: &str = "trap-auth-S3CRET-seven";
const TRAP_PRIV: &str = "trap-priv-S3CRET-eight";
const SECRETS: [&str; 8] = [
    COMMUNITY,
    V3_AUTH,
    V3_PRIV,
    HTTP_TOKEN,
    INFLUX_TOKEN,
    TRAP_COMMUNITY,
    TRAP_AUTH,
    TRAP_PRIV,
];

/// Sends a trap with net-snmp's `snmptrap`; it must succeed.
fn snmptrap(env: &NodeEnv, args: &[&str]) {
    let mut c = std::process::Command::new(support::net_snmp("snmptrap"));
    c.args(args)
        .env("MIBS", "")
        .env("SNMP_PERSISTENT_DIR", env.dir.path().join("net-snmp"));
    let out = support::run_limited(c, b"", Duration::from_secs(30));
    assert!(out.status.success(), "snmptrap {args:?}: {out:?}");
}

fn get(env: &NodeEnv, path: &str) -> String {
    let url = format!("http://127.0.0.1:{}{path}", env.http_port());
    match ureq::get(&url)
        .set("Authorization", &format!("Bearer {HTTP_TOKEN}"))
        .timeout(Duration::from_secs(10))
        .call()
    {
        Ok(r) => r.into_string().unwrap(),
        Err(e) => panic!("{path}: {e}"),
    }
}

#[test]
fn no_secret_in_anything_the_node_writes_or_serves() {
    let vm = Server::victoria_metrics();
    let mut env = NodeEnv::demo(2);
    let secrets_file = env.dir.path().join("secrets.toml");
    std::fs::write(
        &secrets_file,
        format!(
            "[local]\ncommunity = \"{COMMUNITY}\"\nv3_auth_passphrase = \"{V3_AUTH}\"\n\
             v3_priv_passphrase = \"{V3_PRIV}\"\nhttp_token = \"{HTTP_TOKEN}\"\n\
             trap_communities = [\"{TRAP_COMMUNITY}\"]\n\
             [local.trap_users.ops]\nauth_protocol = \"SHA-256\"\nauth_passphrase = \"{TRAP_AUTH}\"\n\
             priv_protocol = \"AES\"\npriv_passphrase = \"{TRAP_PRIV}\"\n"
        ),
    )
    .unwrap();
    env.set(
        "PANOPTES__SNMP__SECRETS_FILE",
        secrets_file.to_str().unwrap(),
    );
    env.set("PANOPTES__DEMO__COMMUNITY", COMMUNITY);
    env.set("PANOPTES__INFLUXDB__URL", &vm.url());
    env.set("PANOPTES__INFLUXDB__API", "v2");
    env.set("PANOPTES__INFLUXDB__ORG", "o");
    env.set("PANOPTES__INFLUXDB__BUCKET", "panoptes");
    env.set("PANOPTES__INFLUXDB__TOKEN", INFLUX_TOKEN);
    env.set("PANOPTES__INFLUXDB__MAX_EMIT_INTERVAL", "1");
    env.set("PANOPTES__LOG__LEVEL", "debug");
    env.set("PANOPTES__TRAPS__LISTEN", "127.0.0.1:0");
    let mut node = env.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // /ready is open; the rest needs the token.
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    // The demo was polled with the secret community (it answers no other), and points
    // reached VictoriaMetrics with the token.
    loop {
        let m = get(&env, "/metrics");
        if metric_value(&m, "panoptes_influxdb_points_written_total") >= 98.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no writes:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Traps: accepted (v2c with the secret community, v3 authPriv) and refused (the
    // secret community of the SNMP side, which is not a trap community).
    let to = env.listening().traps.expect("no trap receiver").to_string();
    snmptrap(
        &env,
        &[
            "-v",
            "2c",
            "-c",
            TRAP_COMMUNITY,
            &to,
            "1",
            "1.3.6.1.6.3.1.1.5.3",
        ],
    );
    snmptrap(
        &env,
        &["-v", "2c", "-c", COMMUNITY, &to, "1", "1.3.6.1.6.3.1.1.5.3"],
    );
    snmptrap(
        &env,
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
            TRAP_AUTH,
            "-x",
            "AES",
            "-X",
            TRAP_PRIV,
            "-e",
            "0x8000000001020304",
            &to,
            "1",
            "1.3.6.1.6.3.1.1.5.1",
        ],
    );
    loop {
        let m = get(&env, "/metrics");
        if metric_value(&m, "panoptes_traps_published_total") >= 2.0
            && metric_value(&m, "panoptes_traps_rejected_total{reason=\"community\"}") >= 1.0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "traps not handled:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut served = Vec::new();
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/api/resources",
        "/api/topics",
    ] {
        served.push((path.to_string(), get(&env, path)));
    }
    let topics: serde_json::Value = serde_json::from_str(&get(&env, "/api/topics")).unwrap();
    for t in topics["topics"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        for p in t["partitions"].as_array().unwrap() {
            let partition = p["partition"].as_u64().unwrap();
            let path = format!(
                "/api/topics/{name}/records?partition={partition}&offset=beginning&max=1000"
            );
            served.push((path.clone(), get(&env, &path)));
        }
    }
    let argv = std::fs::read(format!("/proc/{}/cmdline", node.child.id())).unwrap();
    let log_path = node.log.clone();
    assert!(node.stop().success());

    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(log.contains("DEBUG"), "the log ran at debug level");
    for secret in SECRETS {
        assert!(!log.contains(secret), "the log holds {secret}");
        for (path, body) in &served {
            assert!(!body.contains(secret), "{path} holds {secret}");
        }
        assert!(
            !String::from_utf8_lossy(&argv).contains(secret),
            "argv holds {secret}"
        );
    }
    // Every file the node keeps, bytes as they are (topic segments, sled's log).
    let mut files = 0;
    let mut stack = vec![env.dir.path().join("data")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            for secret in SECRETS {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds {secret}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 3, "the data directory was read ({files} files)");
}
