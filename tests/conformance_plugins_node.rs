//! The device-metrics plugins in the running node: `panoptes run` with the original's
//! style of plugin files (Juniper device-metrics enrichment, Generic SNMP polling, the
//! heartbeat pair) on a recorded Juniper QFX served by the node's demo device. The
//! enrichment stores the DSL document, polling reads it and the metrics groups reach
//! the `local-processed` topic.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{conformance, NodeEnv};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn juniper_device_metrics_flow_from_enrichment_to_the_topic() {
    let mut env = NodeEnv::demo(2);
    let root = env.dir.path().join("device-metrics");
    let (discovery, enrichment, polling) = (
        root.join("discovery"),
        root.join("enrichment"),
        root.join("polling"),
    );
    write(
        &discovery,
        "from_json_file.panoptes-plugin",
        "[Core]\nName = Discovery\nModule = plugin_discovery_from_json_file\n[main]\nexecute_frequency = 60\nconfig_file = devices.json\n",
    );
    write(
        &discovery,
        "devices.json",
        &serde_json::json!([
            {"resource_plugin": "Discovery", "resource_site": "local", "resource_class": "network",
             "resource_subclass": "switch", "resource_type": "juniper", "resource_id": "qfx1",
             "resource_endpoint": "127.0.0.1", "resource_creation_timestamp": 0,
             "resource_metadata": {"_resource_ttl": "900", "model": "QFX10002-36Q",
                                   "snmp_port": env.snmp_port.to_string()}},
            {"resource_plugin": "Discovery", "resource_site": "local", "resource_class": "system",
             "resource_subclass": "internal", "resource_type": "heartbeat", "resource_id": "heartbeat",
             "resource_endpoint": "localhost", "resource_creation_timestamp": 0,
             "resource_metadata": {"_resource_ttl": "900"}}
        ])
        .to_string(),
    );
    write(
        &enrichment,
        "juniper_device_metrics.panoptes-plugin",
        "[Core]\nName = Juniper Device Metrics Enrichment Plugin\nModule = plugin_enrichment_juniper_device_metrics\n[main]\nexecute_frequency = 60\nenrichment_ttl = 900\nresource_filter = resource_class = \"network\" AND resource_type = \"juniper\"\npolling_frequency = 300\n[snmp]\ntimeout = 5\nretries = 1\n",
    );
    write(
        &enrichment,
        "heartbeat.panoptes-plugin",
        "[Core]\nName = Heartbeat Enrichment Plugin\nModule = plugin_enrichment_heartbeat\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"system\" AND resource_subclass = \"internal\" AND resource_type = \"heartbeat\"\nenrichment_ttl = 300\n",
    );
    write(
        &polling,
        "device_metrics.panoptes-plugin",
        "[Core]\nName = Device Metrics Polling Plugin\nModule = plugin_polling_generic_snmp\n[main]\nexecute_frequency = 2\nresource_filter = resource_class = \"network\"\nnamespace = metrics\npolling_status_metric_name = polling_status\n[snmp]\ntimeout = 5\nretries = 1\n[enrichment]\npreload = self:metrics\n",
    );
    write(
        &polling,
        "heartbeat.panoptes-plugin",
        "[Core]\nName = Heartbeat Polling Plugin\nModule = plugin_polling_heartbeat\n[main]\nexecute_frequency = 2\nresource_filter = resource_class = \"system\" AND resource_subclass = \"internal\" AND resource_type = \"heartbeat\"\n[enrichment]\npreload = self:heartbeat_ns\n",
    );
    for (kind, dir) in [
        ("DISCOVERY", &discovery),
        ("ENRICHMENT", &enrichment),
        ("POLLING", &polling),
    ] {
        env.set(&format!("PANOPTES__PLUGINS__{kind}"), dir.to_str().unwrap());
    }
    let recording = conformance("generic_polling/juniper_qfx/device.snmprec");
    env.set("PANOPTES__DEMO__RECORDING", recording.to_str().unwrap());
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(30), &mut node);

    // Read until a poll with the stored document shows up (the first polls may run
    // before the enrichment is stored, and then report ENRICHMENT_FAILURE).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut cpu, mut temperature, mut heartbeat, mut ok_status) = (false, false, false, false);
    let mut seen = 0;
    while !(cpu && temperature && heartbeat && ok_status) {
        assert!(
            Instant::now() < deadline,
            "no complete poll within 60 s (cpu {cpu}, temperature {temperature}, heartbeat {heartbeat}, status ok {ok_status}); log:\n{}",
            node.log_text()
        );
        seen += 40;
        for g in env.tail("local-processed", seen, Duration::from_secs(60)) {
            let kind = g["metrics_group_type"].as_str().unwrap_or("");
            let names: Vec<&str> = g["metrics"]
                .as_array()
                .map(|m| m.iter().filter_map(|x| x["metric_name"].as_str()).collect())
                .unwrap_or_default();
            let value = |n: &str| -> Option<&Value> {
                g["metrics"]
                    .as_array()?
                    .iter()
                    .find(|m| m["metric_name"] == n)
                    .map(|m| &m["metric_value"])
            };
            match kind {
                "cpu" => {
                    assert_eq!(g["resource"]["resource_id"], "qfx1");
                    cpu |= names.contains(&"cpu_utilization");
                }
                "environment" => temperature |= names.contains(&"temperature_fahrenheit"),
                "heartbeat" => {
                    heartbeat |= value("heartbeat_enrichment_timestamp")
                        .and_then(Value::as_i64)
                        .is_some_and(|t| t > 1_500_000_000)
                }
                "status" => ok_status |= value("polling_status") == Some(&Value::from(0)),
                _ => {}
            }
        }
    }
    node.stop();
}
