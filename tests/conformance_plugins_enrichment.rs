//! generic_enrichment/*: the device-metrics enrichment plugins (vendor definitions in
//! resources/vendors/) against the original's recordings; the whole enrichment group set,
//! DSL document included, compared with expected.json (timestamps frozen, nothing
//! removed; sets in any order, the document's `metrics_groups` in the original's order).

mod replay;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::{canonical, Resource};
use panoptes::plugins::enrichment_cache::MapSource;
use panoptes::plugins::runner::{self, RunContext};
use panoptes::plugins::status::NoPing;
use panoptes::plugins::BuiltIn;
use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
use panoptes::snmp::{Community, SnmpTarget};
use replay::{case, FROZEN};
use serde_json::{json, Value};

fn resource(id: &str, model: &str, backplane: bool) -> Resource {
    let mut meta = json!({"model": model});
    if backplane {
        meta["backplane"] = json!("backplane");
    }
    Resource::from_json(&replay::resource_json(id, meta)).unwrap()
}

/// Every document's rows (oids tables, groups) that differ, for a readable failure.
fn differences(actual: &Value, expected: &Value) -> String {
    let doc = |v: &Value| v["enrichment"][0]["data"][0]["127.0.0.1"].clone();
    let (a, e) = (doc(actual), doc(expected));
    let mut out = String::new();
    for (k, ev) in e["oids"].as_object().into_iter().flatten() {
        let av = &a["oids"][k];
        if canonical(av) != canonical(ev) {
            out.push_str(&format!("oids.{k}:\n  expected {ev}\n  actual   {av}\n"));
        }
    }
    for (k, av) in a["oids"].as_object().into_iter().flatten() {
        if e["oids"].get(k).is_none() {
            out.push_str(&format!("oids.{k} unexpected: {av}\n"));
        }
    }
    let groups = |v: &Value| -> Vec<String> {
        v["metrics_groups"]
            .as_array()
            .map(|g| g.iter().map(|x| canonical(x).to_string()).collect())
            .unwrap_or_default()
    };
    let (ag, eg) = (groups(&a), groups(&e));
    for g in eg.iter().filter(|g| !ag.contains(g)) {
        out.push_str(&format!("missing group {g}\n"));
    }
    for g in ag.iter().filter(|g| !eg.contains(g)) {
        out.push_str(&format!("unexpected group {g}\n"));
    }
    if out.is_empty() && ag != eg {
        out.push_str(&format!(
            "metrics_groups in another order:\n  expected {eg:#?}\n  actual   {ag:#?}\n"
        ));
    }
    out
}

async fn check(name: &str, resource: Resource) {
    let dir = format!("generic_enrichment/{name}");
    let plugin =
        PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Enrichment).unwrap();
    let builtin = BuiltIn::resolve(&plugin).unwrap();
    let text = std::fs::read_to_string(case(&format!("{dir}/device.snmprec"))).unwrap();
    let recording = Arc::new(Recording::parse(&text, &dir).unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    let sim = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    target.timeout = Duration::from_secs(10);
    target.retries = 1;
    let set = runner::enrich(RunContext {
        plugin: &plugin,
        builtin,
        resource: &resource,
        target: Ok(target),
        enrichments: &MapSource::default(),
        ping: &NoPing,
        now: FROZEN,
    })
    .await
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let actual = set.to_json();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    if canonical(&actual) != canonical(&expected) {
        panic!(
            "{name}: output differs\n{}\nwhole: {actual}",
            differences(&actual, &expected)
        );
    }
}

#[tokio::test]
async fn cisco_ios_3560g_48ts_s() {
    check(
        "cisco_ios_3560G-48TS-S",
        resource("3560G-48TS-S", "3560G-48TS-S", true),
    )
    .await;
}

#[tokio::test]
async fn cisco_ios_4900m() {
    check("cisco_ios_4900M", resource("4900M", "4900M", true)).await;
}

#[tokio::test]
async fn cisco_ios_4948e() {
    check("cisco_ios_4948E", resource("4948E", "4948E", true)).await;
}

#[tokio::test]
async fn cisco_ios_6509_e() {
    check("cisco_ios_6509-E", resource("6509-E", "6509-E", true)).await;
}

#[tokio::test]
async fn cisco_nxos_3048() {
    check("cisco_nxos_3048", resource("3048", "3048", true)).await;
}

#[tokio::test]
async fn cisco_nxos_n3k_3048t() {
    check("cisco_nxos_n3k_3048T", resource("n3k_3048T", "3048T", true)).await;
}

#[tokio::test]
async fn juniper_bgp() {
    check("juniper_bgp", resource("test_id", "model", false)).await;
}

#[tokio::test]
async fn juniper_ex() {
    check("juniper_ex", resource("test_id", "model", false)).await;
}

#[tokio::test]
async fn juniper_ex4300() {
    check("juniper_ex4300", resource("test_id", "EX4300-48P", false)).await;
}

#[tokio::test]
async fn juniper_mx960() {
    check("juniper_mx960", resource("test_id", "model", false)).await;
}

#[tokio::test]
async fn juniper_mx2020_with_the_disk_group() {
    check("juniper_mx2020", resource("test_id", "model", false)).await;
}

#[tokio::test]
async fn juniper_qfx() {
    check("juniper_qfx", resource("test_id", "model", false)).await;
}

#[tokio::test]
async fn juniper_srx1400() {
    check("juniper_srx1400", resource("test_id", "model", false)).await;
}

#[tokio::test]
async fn juniper_srx_functional_metrics() {
    check(
        "juniper_srx_functional_metrics",
        resource("test_id", "model", false),
    )
    .await;
}

#[tokio::test]
async fn aruba_wap() {
    check("aruba_wap", resource("test_id", "model", false)).await;
}

#[tokio::test]
async fn ciena_waveserver_device() {
    check(
        "ciena_waveserver_device",
        resource("test_id", "model", false),
    )
    .await;
}

#[tokio::test]
async fn ciena_waveserver_light() {
    check(
        "ciena_waveserver_light",
        resource("test_id", "model", false),
    )
    .await;
}

#[tokio::test]
async fn juniper_srx_functional_base_class_enriches_nothing() {
    check("juniper_srx_functional", resource("test_id", "model", true)).await;
}

/// A vendor definition read from a file (`Module = plugin_enrichment_device_metrics`,
/// `[main] vendor_definition`): the built-in Juniper file, copied elsewhere, gives the
/// same document as the built-in plugin.
#[tokio::test]
async fn vendor_definition_from_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let builtin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("resources/vendors/juniper.json");
    std::fs::copy(&builtin, tmp.path().join("my_juniper.json")).unwrap();
    let original =
        std::fs::read_to_string(case("generic_enrichment/juniper_qfx/plugin.conf")).unwrap();
    let conf = original
        .replace(
            "Module = plugin_enrichment_juniper_device_metrics",
            "Module = plugin_enrichment_device_metrics",
        )
        .replace("[main]\n", "[main]\nvendor_definition = my_juniper.json\n");
    std::fs::write(tmp.path().join("plugin.conf"), conf).unwrap();
    let dir = "generic_enrichment/juniper_qfx";
    std::fs::copy(
        case(&format!("{dir}/device.snmprec")),
        tmp.path().join("device.snmprec"),
    )
    .unwrap();
    std::fs::copy(
        case(&format!("{dir}/expected.json")),
        tmp.path().join("expected.json"),
    )
    .unwrap();
    let plugin =
        PluginConfig::load(&tmp.path().join("plugin.conf"), PluginKind::Enrichment).unwrap();
    assert_eq!(
        BuiltIn::resolve(&plugin).unwrap(),
        BuiltIn::DeviceMetricsFromFile
    );
    let set = enrich_with(
        &plugin,
        &tmp.path().join("device.snmprec"),
        resource("test_id", "model", false),
    )
    .await
    .unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("expected.json")).unwrap())
            .unwrap();
    assert_eq!(canonical(&set.to_json()), canonical(&expected));
}

/// A definition whose document polling could not run is refused when the enrichment is
/// made, with the group and metric named, so nothing unusable is ever stored.
#[tokio::test]
async fn a_bad_generated_document_is_refused_before_it_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("bad.json"),
        r#"{"steps": [{"let": "n", "value": "3"}],
            "document": {"oids": {"t": {"method": "static", "values": {"1": 5}}},
                         "metrics_groups": [{"group_name": "cpu", "dimensions": {},
                             "metrics": {"load": {"value": "t.$index"},
                                         "bad": {"value": "__import__('os').getcwd()"}}}]}}"#,
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("plugin.conf"),
        "[Core]\nName = Bad Vendor\nModule = plugin_enrichment_device_metrics\n[main]\nexecute_frequency = 60\nenrichment_ttl = 300\nresource_filter = resource_class = \"network\"\nvendor_definition = bad.json\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("empty.snmprec"), "").unwrap();
    let plugin =
        PluginConfig::load(&tmp.path().join("plugin.conf"), PluginKind::Enrichment).unwrap();
    let err = enrich_with(
        &plugin,
        &tmp.path().join("empty.snmprec"),
        resource("test_id", "model", false),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Bad Vendor")
            && err.contains("(cpu) metric `bad`")
            && err.contains("unsupported expression"),
        "{err}"
    );
}

async fn enrich_with(
    plugin: &PluginConfig,
    recording: &std::path::Path,
    resource: Resource,
) -> Result<panoptes::model::EnrichmentGroupSet, panoptes::plugins::PluginError> {
    let text = std::fs::read_to_string(recording).unwrap();
    let recording = Arc::new(Recording::parse(&text, "test").unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    let sim = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    target.timeout = Duration::from_secs(10);
    runner::enrich(RunContext {
        plugin,
        builtin: BuiltIn::resolve(plugin).unwrap(),
        resource: &resource,
        target: Ok(target),
        enrichments: &MapSource::default(),
        ping: &NoPing,
        now: FROZEN,
    })
    .await
}

/// Cisco ASA has no recorded output; a small recording built here checks the
/// definition's choices: CPUs only for entities of class 12, memory from the enhanced
/// mempool (used + free), and that the generated document polls the same device.
#[tokio::test]
async fn cisco_asa_definition_on_a_synthetic_device() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = [
        "1.3.6.1.2.1.47.1.1.1.1.5.1|2|3",
        "1.3.6.1.2.1.47.1.1.1.1.5.2|2|12",
        "1.3.6.1.2.1.47.1.1.1.1.6.1|2|-1",
        "1.3.6.1.2.1.47.1.1.1.1.6.2|2|0",
        "1.3.6.1.2.1.47.1.1.1.1.7.1|4|Chassis",
        "1.3.6.1.2.1.47.1.1.1.1.7.2|4|CPU 0 of module 1",
        "1.3.6.1.4.1.9.9.109.1.1.1.1.8.1|66|7",
        "1.3.6.1.4.1.9.9.109.1.1.1.1.8.2|66|12",
        "1.3.6.1.4.1.9.9.221.1.1.1.1.3.1.1|4|System memory",
        "1.3.6.1.4.1.9.9.221.1.1.1.1.18.1.1|66|1000",
        "1.3.6.1.4.1.9.9.221.1.1.1.1.20.1.1|66|3000",
    ]
    .join("\n");
    std::fs::write(tmp.path().join("asa.snmprec"), rec).unwrap();
    std::fs::write(
        tmp.path().join("plugin.conf"),
        "[Core]\nName = ASA\nModule = plugin_enrichment_cisco_asa_device_metrics\n[main]\nexecute_frequency = 60\nenrichment_ttl = 300\nresource_filter = resource_class = \"network\"\npolling_frequency = 300\n",
    )
    .unwrap();
    let plugin =
        PluginConfig::load(&tmp.path().join("plugin.conf"), PluginKind::Enrichment).unwrap();
    let set = enrich_with(
        &plugin,
        &tmp.path().join("asa.snmprec"),
        resource("asa1", "ASA5525", false),
    )
    .await
    .unwrap();
    let doc = &set.to_json()["enrichment"][0]["data"][0]["127.0.0.1"];
    assert_eq!(
        doc["oids"]["cpu_name"]["values"],
        json!({"2": "CPU 0 of module 1"})
    );
    assert_eq!(doc["oids"]["cpu_no"]["values"], json!({"2": "Module 2"}));
    assert_eq!(
        doc["oids"]["cpu_util"]["oid"],
        ".1.3.6.1.4.1.9.9.109.1.1.1.1.8"
    );
    assert_eq!(doc["oids"]["memory_total"]["values"], json!({"1": 4000}));
    assert_eq!(
        doc["oids"]["memory_name"]["values"],
        json!({"1": "System memory"})
    );
    assert_eq!(set.groups[0].namespace, "metrics");
}

/// Aruba has no recorded output either: enrich a small recording, then poll the same
/// recording with the stored document through the Generic SNMP polling plugin, and check
/// the metrics the original's document would give (its temperature is text, "41 C").
#[tokio::test]
async fn aruba_definition_enriches_then_polls_a_synthetic_device() {
    use panoptes::plugins::generic_snmp::polling::{self, Options};
    let tmp = tempfile::tempdir().unwrap();
    let rec = [
        "1.3.6.1.4.1.14823.2.2.1.1.1.11.1.2.1|66|4096000",
        "1.3.6.1.4.1.14823.2.2.1.1.1.11.1.3.1|66|1024000",
        "1.3.6.1.4.1.14823.2.2.1.2.1.10.0|4|41 C",
        "1.3.6.1.4.1.14823.2.2.1.2.1.13.1.2.1|4|MIPS",
        "1.3.6.1.4.1.14823.2.2.1.2.1.13.1.3.1|2|17",
        "1.3.6.1.4.1.14823.2.2.1.2.1.17.1.2.1|2|1",
        "1.3.6.1.4.1.14823.2.2.1.2.1.17.1.2.2|2|2",
        "1.3.6.1.4.1.14823.2.2.1.2.1.18.1.2.1|2|1",
    ]
    .join("\n");
    let rec_path = tmp.path().join("aruba.snmprec");
    std::fs::write(&rec_path, &rec).unwrap();
    std::fs::write(
        tmp.path().join("plugin.conf"),
        "[Core]\nName = Aruba\nModule = plugin_enrichment_aruba_device_metrics\n[main]\nexecute_frequency = 60\nenrichment_ttl = 300\nresource_filter = resource_class = \"network\"\n",
    )
    .unwrap();
    let plugin =
        PluginConfig::load(&tmp.path().join("plugin.conf"), PluginKind::Enrichment).unwrap();
    let r = resource("aruba1", "7210", false);
    let set = enrich_with(&plugin, &rec_path, r.clone()).await.unwrap();
    let doc = set.to_json()["enrichment"][0]["data"][0]["127.0.0.1"].clone();
    assert_eq!(doc["oids"]["cpu_name"]["values"], json!({"1": "MIPS"}));

    // Poll with it, as the polling agent would after the enrichment was stored.
    std::fs::write(tmp.path().join("doc.json"), doc.to_string()).unwrap();
    std::fs::write(
        tmp.path().join("polling.conf"),
        "[Core]\nName = Aruba Polling\nModule = plugin_polling_generic_snmp\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\nnamespace = metrics\npolling_status_metric_name = polling_status\nenrichment_schema_version = 0.2\n[enrichment]\nfile = doc.json\n",
    )
    .unwrap();
    let polling_plugin =
        PluginConfig::load(&tmp.path().join("polling.conf"), PluginKind::Polling).unwrap();
    let options = Options::from_plugin(&polling_plugin);
    let recording = Arc::new(Recording::parse(&rec, "aruba").unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    let sim = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    let mut client = panoptes::snmp::SnmpClient::connect(&target).await.unwrap();
    let document = polling::load_document(&options, Ok(&Default::default()), &r);
    let groups = polling::run(Ok(&mut client), &r, document, &options, FROZEN)
        .await
        .unwrap();
    let value = |group: &str, metric: &str| -> Option<Value> {
        groups
            .iter()
            .filter(|g| g.metrics_group_type == group)
            .flat_map(|g| g.metrics.iter())
            .find(|m| m.metric_name == metric)
            .map(|m| serde_json::to_value(m.metric_value).unwrap())
    };
    assert_eq!(value("cpu", "cpu_utilization"), Some(json!(17)));
    assert_eq!(value("memory", "memory_used"), Some(json!(1024000)));
    assert_eq!(value("memory", "memory_total"), Some(json!(4096000)));
    assert_eq!(
        value("environment", "temperature_fahrenheit"),
        Some(json!(105.8))
    );
    assert_eq!(value("environment", "fans_ok"), Some(json!(1)));
    assert_eq!(value("environment", "fans_total"), Some(json!(2)));
    assert_eq!(value("environment", "power_units_total"), Some(json!(1)));
    assert_eq!(value("status", "polling_status"), Some(json!(0)));
}

/// `[main] enrichment_namespace`: the original's Juniper (like its IOS and NX-OS) plugin
/// stores under `metrics` whatever it says; plugins built on the base class (ASA, Aruba,
/// BGP) honour it.
#[tokio::test]
async fn enrichment_namespace_is_honoured_only_where_the_original_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = "generic_enrichment/juniper_qfx";
    let conf = std::fs::read_to_string(case(&format!("{dir}/plugin.conf")))
        .unwrap()
        .replace("[main]\n", "[main]\nenrichment_namespace = custom\n");
    std::fs::write(tmp.path().join("juniper.conf"), conf).unwrap();
    let plugin =
        PluginConfig::load(&tmp.path().join("juniper.conf"), PluginKind::Enrichment).unwrap();
    assert_eq!(plugin.get("main", "enrichment_namespace"), Some("custom"));
    let set = enrich_with(
        &plugin,
        &case(&format!("{dir}/device.snmprec")),
        resource("test_id", "model", false),
    )
    .await
    .unwrap();
    assert_eq!(set.groups[0].namespace, "metrics");

    std::fs::write(
        tmp.path().join("asa.snmprec"),
        "1.3.6.1.2.1.47.1.1.1.1.5.2|2|12\n1.3.6.1.2.1.47.1.1.1.1.7.2|4|CPU 0\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("asa.conf"),
        "[Core]\nName = ASA\nModule = plugin_enrichment_cisco_asa_device_metrics\n[main]\nexecute_frequency = 60\nenrichment_ttl = 300\nresource_filter = resource_class = \"network\"\npolling_frequency = 300\nenrichment_namespace = custom\n",
    )
    .unwrap();
    let plugin = PluginConfig::load(&tmp.path().join("asa.conf"), PluginKind::Enrichment).unwrap();
    let set = enrich_with(
        &plugin,
        &tmp.path().join("asa.snmprec"),
        resource("asa1", "ASA5525", false),
    )
    .await
    .unwrap();
    assert_eq!(set.groups[0].namespace, "custom");
}

/// `n3k_models` as the original's tests wrote it (a Python list) gives the same document
/// as the comma list: models are matched exactly, brackets and quotes ignored.
#[tokio::test]
async fn n3k_models_may_be_written_as_a_list() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = "generic_enrichment/cisco_nxos_n3k_3048T";
    let original = std::fs::read_to_string(case(&format!("{dir}/plugin.conf"))).unwrap();
    let conf = original.replace(
        "n3k_models = 3048T, 3064-X, 3064",
        "n3k_models = [\"3048T\", '3064-X', \"3064\"]",
    );
    assert_ne!(conf, original);
    std::fs::write(tmp.path().join("plugin.conf"), conf).unwrap();
    let plugin =
        PluginConfig::load(&tmp.path().join("plugin.conf"), PluginKind::Enrichment).unwrap();
    let set = enrich_with(
        &plugin,
        &case(&format!("{dir}/device.snmprec")),
        resource("n3k_3048T", "3048T", true),
    )
    .await
    .unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(canonical(&set.to_json()), canonical(&expected));
}

/// The original reads no temperature sensors on the 3560 models: a sensor row there that
/// could not be scaled (no entSensorScale) changes nothing.
#[tokio::test]
async fn cisco_3560_ignores_temperature_sensors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = "generic_enrichment/cisco_ios_3560G-48TS-S";
    let mut rec = std::fs::read_to_string(case(&format!("{dir}/device.snmprec"))).unwrap();
    assert!(!rec.contains("1.3.6.1.4.1.9.9.91.1.1.1.1.1.999|"));
    rec.push_str("1.3.6.1.4.1.9.9.91.1.1.1.1.1.999|2|8\n");
    let path = tmp.path().join("device.snmprec");
    std::fs::write(&path, rec).unwrap();
    let plugin =
        PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Enrichment).unwrap();
    let set = enrich_with(
        &plugin,
        &path,
        resource("3560G-48TS-S", "3560G-48TS-S", true),
    )
    .await
    .unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(canonical(&set.to_json()), canonical(&expected));
}
