//! Credentials per device: one node polls devices of a real net-snmp `snmpd` that answer
//! different communities, SNMP versions and a v3 user, each device naming its profile in
//! its metadata (`snmp_profile`, or the original's `community_string_key`); profiles come
//! from the secrets file, the site's table first, then `[default]`. A wrong or missing
//! profile shows on that device alone, as AUTHENTICATION_FAILURE, never as a timeout.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::NodeEnv;

/// snmpd's communities and v3 user, beside `public`.
const SNMPD_EXTRA: &str = "rocommunity core-ro 127.0.0.1\n\
     rocommunity legacy-ro 127.0.0.1\n\
     createUser monitor SHA-256 authpass-123 AES privpass-123\n\
     rouser monitor priv\n";

const SECRETS: &str = r#"
[local]
community = "public"

[local.snmp_profiles.core]
community = "core-ro"

[local.snmp_profiles.secure]
v3_user = "monitor"
v3_auth_protocol = "SHA-256"
v3_auth_passphrase = "authpass-123"
v3_priv_protocol = "AES"
v3_priv_passphrase = "privpass-123"
timeout = 2

[local.snmp_profiles.wrongpass]
v3_user = "monitor"
v3_auth_protocol = "SHA-256"
v3_auth_passphrase = "not-the-pass-1"
v3_priv_protocol = "AES"
v3_priv_passphrase = "privpass-123"
timeout = 2

[default.snmp_profiles.legacy]
version = "1"
community = "legacy-ro"
"#;

/// (resource id, metadata key, profile, expected polling status).
const DEVICES: [(&str, &str, &str, i64); 6] = [
    ("dev-site", "", "", 0),
    ("dev-core", "snmp_profile", "core", 0),
    ("dev-legacy", "community_string_key", "legacy", 0),
    ("dev-secure", "snmp_profile", "secure", 0),
    ("dev-wrongpass", "snmp_profile", "wrongpass", 1),
    ("dev-missing", "snmp_profile", "nope", 1),
];

/// The value of `status_interface_polling_status` in `/metrics/devices` for `id`.
fn polling_status(env: &NodeEnv, id: &str) -> Option<i64> {
    let (code, text) = env
        .http_get(&format!("/metrics/devices?resource_id={id}"))
        .ok()?;
    if code != 200 {
        return None;
    }
    text.lines()
        .find(|l| l.starts_with("status_interface_polling_status{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as i64)
}

#[test]
fn each_device_is_polled_with_its_own_profile_and_a_wrong_one_fails_alone() {
    let snmpd = support::SnmpdProcess::spawn(SNMPD_EXTRA);
    let mut env = NodeEnv::demo(5);
    let secrets = env.dir.path().join("secrets.toml");
    std::fs::write(&secrets, SECRETS).unwrap();
    env.set("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap());
    env.set("PANOPTES__SNMP__TIMEOUT", "2");
    let resources: Vec<Value> = DEVICES
        .iter()
        .map(|(id, key, profile, _)| {
            let mut metadata = json!({"snmp_port": snmpd.port.to_string()});
            if !key.is_empty() {
                metadata[*key] = json!(profile);
            }
            json!({"resource_plugin": "From_JSON_File_Discovery_Plugin", "resource_site": "local",
                "resource_class": "network", "resource_subclass": "switch",
                "resource_type": "generic", "resource_id": id, "resource_endpoint": "127.0.0.1",
                "resource_creation_timestamp": 0, "resource_metadata": metadata})
        })
        .collect();
    std::fs::write(
        env.dir.path().join("plugins/discovery/localhost.json"),
        serde_json::to_string_pretty(&resources).unwrap(),
    )
    .unwrap();
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);

    let start = Instant::now();
    let mut seen: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    loop {
        for (id, ..) in DEVICES {
            seen.insert(id, polling_status(&env, id));
        }
        let want: BTreeMap<&str, Option<i64>> = DEVICES
            .iter()
            .map(|(id, _, _, s)| (*id, Some(*s)))
            .collect();
        if seen == want {
            break;
        }
        assert!(
            // A device without its enrichment is first polled when the planner stops
            // holding it for one (agent::planner::ENRICHMENT_HOLD, 60 s): room beyond that.
            start.elapsed() < Duration::from_secs(150),
            "polling statuses {seen:?}, want {want:?}\nnode log:\n{}\nsnmpd log:\n{}",
            node.log_text(),
            snmpd.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The good devices have their interfaces: lo at least.
    for id in ["dev-site", "dev-core", "dev-legacy", "dev-secure"] {
        let (_, text) = env
            .http_get(&format!("/metrics/devices?resource_id={id}"))
            .unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("interface_oper_state{")
                    && l.contains("interface_name=\"lo\"")),
            "{id}: no interface lo in\n{text}"
        );
    }

    // The failures say why, per device, and never print a secret.
    let log = node.log_text();
    assert!(
        log.contains(
            "resource `dev-missing`: SNMP profile `nope` (resource metadata `snmp_profile`) is not in the secrets file: \
             neither [local.snmp_profiles.nope] nor [default.snmp_profiles.nope], known: core, legacy, secure, wrongpass"
        ),
        "{log}"
    );
    assert!(
        log.contains("rejected the authentication of user \"monitor\""),
        "{log}"
    );
    for secret in [
        "core-ro",
        "legacy-ro",
        "authpass-123",
        "privpass-123",
        "not-the-pass-1",
    ] {
        assert!(!log.contains(secret), "the log shows `{secret}`:\n{log}");
    }

    // And the status page shows it on that device.
    let (code, page) = env.http_get("/device?id=dev-wrongpass").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("AUTHENTICATION_FAILURE"), "{page}");
    node.stop();
}

#[test]
fn a_broken_profile_stops_the_start_and_config_check_names_it() {
    let mut env = NodeEnv::demo(60);
    let secrets = env.dir.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        "[local]\n[local.snmp_profiles.half]\nversion = \"3\"\nv3_auth_protocol = \"SHA\"\n\
         v3_auth_passphrase = \"secret-pass-1\"\n",
    )
    .unwrap();
    env.set("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap());
    let out = env.cli(&["config", "check"], Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let text = format!("{stdout}{stderr}");
    assert!(
        text.contains("[local.snmp_profiles.half]: v3_user must be set for version \"3\""),
        "{text}"
    );
    assert!(!text.contains("secret-pass-1"), "{text}");
}
