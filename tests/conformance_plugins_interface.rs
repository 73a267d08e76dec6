//! interface_enrichment/{arista,cisco,juniper_mx,juniper_qfx}: the vendor variants of interface
//! enrichment against the original's recordings, compared with expected.json
//! order-insensitively (timestamps frozen, nothing removed).

mod replay;

use std::sync::Arc;
use std::time::Duration;

use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::{canonical, Resource};
use panoptes::plugins::interface::enrichment::{run_vendor, Vendor};
use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
use panoptes::snmp::{Community, SnmpClient, SnmpTarget};
use replay::{case, FROZEN};
use serde_json::{json, Value};

fn resource(subclass: &str, kind: &str, id: &str, plugin: &str, model: &str) -> Resource {
    Resource::from_json(&json!({"resource_site": "dc1", "resource_class": "network",
        "resource_subclass": subclass, "resource_type": kind, "resource_id": id,
        "resource_endpoint": "127.0.0.1", "resource_plugin": plugin,
        "resource_creation_timestamp": FROZEN,
        "resource_metadata": {"_resource_ttl": "604800", "model": model}}))
    .unwrap()
}

async fn check(dir: &str, vendor: Vendor, resource: Resource) {
    let plugin =
        PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Enrichment).unwrap();
    let text = std::fs::read_to_string(case(&format!("{dir}/device.snmprec"))).unwrap();
    let recording = Arc::new(Recording::parse(&text, dir).unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    let sim = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    target.timeout = Duration::from_secs(10);
    target.retries = 1;
    target.max_repetitions = plugin.snmp.max_repetitions.unwrap_or(25);
    let mut client = SnmpClient::connect(&target).await.unwrap();
    let set = run_vendor(
        &mut client,
        &resource,
        vendor,
        plugin.enrichment_ttl.unwrap(),
        plugin.execute_frequency,
        FROZEN,
    )
    .await
    .unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    let actual = canonical(&set.to_json());
    let expected = canonical(&expected);
    if actual != expected {
        let rows = |v: &Value| -> Vec<String> {
            v["enrichment"][0]["data"]
                .as_array()
                .map(|a| a.iter().map(Value::to_string).collect())
                .unwrap_or_default()
        };
        let (a, e) = (rows(&actual), rows(&expected));
        let missing: Vec<&String> = e.iter().filter(|x| !a.contains(x)).collect();
        let extra: Vec<&String> = a.iter().filter(|x| !e.contains(x)).collect();
        panic!("{dir}: differs\nmissing: {missing:#?}\nunexpected: {extra:#?}\nactual: {actual}");
    }
}

#[tokio::test]
async fn arista_interface_enrichment_matches_expected() {
    check(
        "interface_enrichment/arista",
        Vendor::Arista,
        resource(
            "switch",
            "arista",
            "switch1",
            "switch_discovery_plugin",
            "model",
        ),
    )
    .await;
}

#[tokio::test]
async fn cisco_interface_enrichment_matches_expected() {
    check(
        "interface_enrichment/cisco",
        Vendor::Cisco,
        resource(
            "switch",
            "cisco",
            "switch1",
            "switch_discovery_plugin",
            "model",
        ),
    )
    .await;
}

#[tokio::test]
async fn juniper_mx_interface_enrichment_matches_expected() {
    check(
        "interface_enrichment/juniper_mx",
        Vendor::Juniper,
        resource(
            "router",
            "juniper",
            "router1",
            "router_discovery_plugin",
            "QFX5200",
        ),
    )
    .await;
}

#[tokio::test]
async fn juniper_qfx_interface_enrichment_matches_expected() {
    check(
        "interface_enrichment/juniper_qfx",
        Vendor::Juniper,
        resource(
            "router",
            "juniper",
            "router1",
            "router_discovery_plugin",
            "QFX5200",
        ),
    )
    .await;
}
