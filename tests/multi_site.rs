//! Several sites in one process (the original's `[main] sites`): a node with `site =
//! "local"` and `sites = ["dc2"]` polls the demo switch of `local` with `local`'s
//! community and a real `snmpd` of `dc2` that answers only `dc2`'s community (from the
//! secrets file's `[dc2]` table); each site's groups go to its own `<site>-processed`, its
//! resources to its own `<site>-resources`; a resource of a site the node does not serve
//! is published for that site's nodes and never polled here.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::NodeEnv;

const SECRETS: &str = "[local]\ncommunity = \"public\"\n\n[dc2]\ncommunity = \"dc2-only\"\n";

/// The values of every record of `topic`, read through `/api/topics` (up to 1,000 per
/// partition: more than these tests write).
fn records(env: &NodeEnv, topic: &str) -> Vec<Value> {
    let (code, listed) = env.http_get("/api/topics").unwrap();
    assert_eq!(code, 200, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let partitions = listed["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == topic)
        .unwrap_or_else(|| panic!("no topic {topic} in {listed}"))["partitions"]
        .as_array()
        .unwrap()
        .len();
    let mut out = Vec::new();
    for p in 0..partitions {
        let (code, page) = env
            .http_get(&format!(
                "/api/topics/{topic}/records?partition={p}&offset=beginning&max=1000"
            ))
            .unwrap();
        assert_eq!(code, 200, "{page}");
        let page: Value = serde_json::from_str(&page).unwrap();
        for r in page["records"].as_array().unwrap() {
            out.push(r["value"].clone());
        }
    }
    out
}

#[test]
fn one_node_serves_two_sites_each_with_its_own_secrets_and_topics() {
    let snmpd = support::SnmpdProcess::spawn_config(
        "rocommunity dc2-only 127.0.0.1\nsysLocation dc2 lab\n",
    );
    let mut env = NodeEnv::demo(5);
    let secrets = env.dir.path().join("secrets.toml");
    std::fs::write(&secrets, SECRETS).unwrap();
    env.set("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap());
    env.set("PANOPTES__SITES", "dc2");
    env.set("PANOPTES__SNMP__TIMEOUT", "2");
    env.set("PANOPTES__TRAPS__LISTEN", "127.0.0.1:0");
    let discovery = env.dir.path().join("plugins/discovery/localhost.json");
    let mut resources: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&discovery).unwrap()).unwrap();
    let demo = resources[0].clone();
    for (id, site) in [("dc2-router", "dc2"), ("dc3-router", "dc3")] {
        let mut r = demo.clone();
        r["resource_id"] = json!(id);
        r["resource_site"] = json!(site);
        r["resource_metadata"]["snmp_port"] = json!(snmpd.port.to_string());
        resources.push(r);
    }
    std::fs::write(&discovery, serde_json::to_string(&resources).unwrap()).unwrap();
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let (_, health) = env.http_get("/health").unwrap();
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["site"], "local");
    assert_eq!(health["sites"], json!(["local", "dc2"]));

    // Both served sites' devices are polled, each with its site's community: dc2's
    // snmpd answers nothing else.
    let start = Instant::now();
    let status = |id: &str| -> Option<String> {
        let (code, text) = env
            .http_get(&format!("/metrics/devices?resource_id={id}"))
            .ok()?;
        (code == 200).then_some(())?;
        text.lines()
            .find(|l| l.starts_with("status_interface_polling_status{"))
            .map(str::to_owned)
    };
    loop {
        let (local, dc2) = (status("demo-switch-48"), status("dc2-router"));
        let done = |s: &Option<String>, site: &str| {
            s.as_deref().is_some_and(|l| {
                l.ends_with(" 0") && l.contains(&format!("resource_site=\"{site}\""))
            })
        };
        if done(&local, "local") && done(&dc2, "dc2") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "polling status lines: local {local:?}, dc2 {dc2:?}\nlog:\n{}\nsnmpd:\n{}",
            node.log_text(),
            snmpd.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Each site's groups on its own topic, and only there.
    let sites_of = |records: &[Value]| -> std::collections::BTreeSet<String> {
        records
            .iter()
            .filter_map(|r| r["resource"]["resource_site"].as_str().map(str::to_owned))
            .collect()
    };
    let local = records(&env, "local-processed");
    let dc2 = records(&env, "dc2-processed");
    assert_eq!(
        sites_of(&local),
        ["local".to_owned()].into(),
        "{} records",
        local.len()
    );
    assert_eq!(
        sites_of(&dc2),
        ["dc2".to_owned()].into(),
        "{} records",
        dc2.len()
    );
    assert!(dc2
        .iter()
        .any(|g| g["resource"]["resource_id"] == "dc2-router"
            && g["metrics_group_type"] == "interface"));

    // dc3's resource set went to dc3-resources for its nodes; this node holds no dc3
    // resource and polls nothing of it.
    let dc3 = records(&env, "dc3-resources");
    assert_eq!(dc3.len(), 1, "{dc3:?}");
    assert_eq!(dc3[0]["resources"][0]["resource_id"], "dc3-router");
    let (_, listed) = env.http_get("/api/resources").unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let mut ids: Vec<&str> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["resource_id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["dc2-router", "demo-switch-48"]);
    assert_eq!(
        env.http_get("/metrics/devices?resource_id=dc3-router")
            .unwrap()
            .0,
        404
    );
    let log = node.log_text();
    assert!(
        !log.contains("dc2-only"),
        "the log shows dc2's community:\n{log}"
    );
    node.stop();
}

#[test]
fn a_cluster_node_refuses_several_sites() {
    let mut env = NodeEnv::demo(60);
    env.set("PANOPTES__SITES", "dc2,dc3");
    env.set("PANOPTES__CLUSTER__ENABLED", "true");
    env.set("PANOPTES__KAFKA__BROKERS", "127.0.0.1:9");
    let out = env.cli(&["config", "check"], Duration::from_secs(30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("a cluster shares one site's fleet: run one group of nodes per site"),
        "{text}"
    );
}
