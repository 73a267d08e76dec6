//! generic_polling/*: every case's recording served by our simulator (frozen counters),
//! the DSL document loaded from `enrichment_data.kv` or the case's enrichment file, our
//! Generic SNMP polling plugin run once, and the output compared with expected.json
//! order-insensitively after removing what the original test removed (group, metric and
//! resource creation timestamps).

mod replay;

use std::time::Duration;

use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::{canonical, Resource};
use panoptes::plugins::enrichment_cache::{EnrichmentCache, MapSource};
use panoptes::plugins::generic_snmp::polling::{self, Options};
use panoptes::snmp::{Community, SnmpClient, SnmpTarget};
use replay::{case, serve, strip_volatile, test_resource, FROZEN};
use serde_json::{json, Value};

/// Runs one case and returns (actual, expected), both canonical.
async fn run_case(name: &str) -> (Value, Value) {
    let dir = format!("generic_polling/{name}");
    let plugin =
        PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Polling).unwrap();
    let options = Options::from_plugin(&plugin);
    let sim = serve(&dir).await;
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    target.timeout = Duration::from_secs(plugin.snmp.timeout.unwrap_or(10));
    target.retries = plugin.snmp.retries.unwrap_or(1);
    let mut client = SnmpClient::connect(&target).await.unwrap();
    let kv_path = case(&format!("{dir}/enrichment_data.kv"));
    let source = if kv_path.exists() {
        MapSource::parse_kv(&std::fs::read_to_string(kv_path).unwrap())
    } else {
        MapSource::default()
    };
    let cache = EnrichmentCache::load(&source, &plugin.preload, "test_id").unwrap();
    let resource = test_resource();
    let document = polling::load_document(&options, Ok(&cache), &resource);
    let groups = polling::run(Ok(&mut client), &resource, document, &options, FROZEN)
        .await
        .unwrap();
    let mut actual = serde_json::to_value(&groups).unwrap();
    strip_volatile(&mut actual);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    (canonical(&actual), canonical(&expected))
}

async fn check(name: &str) {
    let (actual, expected) = run_case(name).await;
    replay::assert_same_groups(name, &actual, &expected);
}

macro_rules! cases {
    ($($test:ident => $dir:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                check($dir).await;
            }
        )*
    };
}

cases! {
    cisco_ios_3560g_48ts_s => "cisco_ios_3560G-48TS-S",
    cisco_ios_3560g_48ts_s_from_file => "cisco_ios_3560G-48TS-S_from_file",
    cisco_ios_4900m => "cisco_ios_4900M",
    cisco_ios_4948e => "cisco_ios_4948E",
    cisco_ios_6509_e => "cisco_ios_6509-E",
    cisco_ios_enrichment_both_present => "cisco_ios_enrichment_both_present",
    cisco_ios_enrichment_file_bad => "cisco_ios_enrichment_file_bad",
    cisco_ios_enrichment_missing => "cisco_ios_enrichment_missing",
    cisco_nxos_3048 => "cisco_nxos_3048",
    cisco_nxos_n3k_3048t => "cisco_nxos_n3k_3048T",
    features_basic => "features_basic",
    features_enrichment_from_file => "features_enrichment_from_file",
    features_missing_cpu_oids => "features_missing_cpu_oids",
    juniper_bgp => "juniper_bgp",
    juniper_ex => "juniper_ex",
    juniper_mx960 => "juniper_mx960",
    juniper_mx2020_with_the_disk_group => "juniper_mx2020",
    juniper_qfx => "juniper_qfx",
    juniper_srx1400 => "juniper_srx1400",
    juniper_srx_functional_metrics => "juniper_srx_functional_metrics",
    aruba_wap => "aruba_wap",
    ciena_waveserver_device => "ciena_waveserver_device",
    ciena_waveserver_light => "ciena_waveserver_light",
}

/// The device does not answer (a silent socket stands in for 192.0.2.1, 1 s timeout in
/// the original) and does not answer ping either: the static parts of the document
/// still produce their groups and the status is PING_FAILURE (7).
#[tokio::test]
async fn features_enrichment_from_file_no_service_active() {
    use panoptes::plugins::ping::{PingError, PingFuture, PingStats};
    use panoptes::plugins::status::{confirm_with_ping, Ping};

    /// A host that never answers: every echo request times out.
    struct NoReply;
    impl Ping for NoReply {
        fn probe<'a>(
            &'a self,
            host: &'a str,
            _: u32,
            deadline: Duration,
        ) -> PingFuture<'a, PingStats> {
            Box::pin(async move {
                Err(PingError::TimedOut {
                    host: host.to_string(),
                    after: deadline,
                })
            })
        }
    }

    let dir = "generic_polling/features_enrichment_from_file";
    let plugin =
        PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Polling).unwrap();
    let options = Options::from_plugin(&plugin);
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = silent.local_addr().unwrap().port();
    target.timeout = Duration::from_millis(200);
    target.retries = 0;
    let mut client = SnmpClient::connect(&target).await.unwrap();
    let mut resource = serde_json::to_value(test_resource()).unwrap();
    resource["resource_endpoint"] = json!("192.0.2.1");
    let resource = Resource::from_json(&resource).unwrap();
    let cache = EnrichmentCache::default();
    let document = polling::load_document(&options, Ok(&cache), &resource);
    let mut groups = polling::run(Ok(&mut client), &resource, document, &options, FROZEN)
        .await
        .unwrap();
    confirm_with_ping(&mut groups, &resource.endpoint, &NoReply).await;
    let mut actual = serde_json::to_value(&groups).unwrap();
    strip_volatile(&mut actual);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected_no_service_active.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        replay::summary(&canonical(&actual)),
        replay::summary(&canonical(&expected))
    );
    assert_eq!(canonical(&actual), canonical(&expected));
}

/// The original's Ciena light-level polling example preloads `self:lightlevel_metrics`
/// but reads namespace `metrics`: its cache loads a namespace it is asked for on a miss,
/// and so does ours, with the same output as the case (which preloads `metrics`).
#[tokio::test]
async fn the_namespace_read_is_loaded_even_when_preload_names_another() {
    use panoptes::plugins::runner::{self, RunContext};
    use panoptes::plugins::status::NoPing;
    use panoptes::plugins::BuiltIn;
    let dir = "generic_polling/ciena_waveserver_light";
    let tmp = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(case(&format!("{dir}/plugin.conf"))).unwrap();
    let conf = original.replace(
        "preload = self:metrics",
        "preload = self:lightlevel_metrics",
    );
    assert_ne!(conf, original);
    let path = tmp.path().join("plugin.panoptes-plugin");
    std::fs::write(&path, conf).unwrap();
    let plugin = PluginConfig::load(&path, PluginKind::Polling).unwrap();
    let sim = serve(dir).await;
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    let source = MapSource::parse_kv(
        &std::fs::read_to_string(case(&format!("{dir}/enrichment_data.kv"))).unwrap(),
    );
    let resource = test_resource();
    let polled = runner::poll(RunContext {
        plugin: &plugin,
        builtin: BuiltIn::resolve(&plugin).unwrap(),
        resource: &resource,
        target: Ok(target),
        enrichments: &source,
        ping: &NoPing,
        now: FROZEN,
    })
    .await
    .unwrap();
    let mut actual = serde_json::to_value(&polled.groups).unwrap();
    strip_volatile(&mut actual);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(canonical(&actual), canonical(&expected));
}
