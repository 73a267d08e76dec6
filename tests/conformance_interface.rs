//! interface_enrichment/generic and interface_polling/*: the original's recordings served
//! by our simulator (frozen counters), polled by our plugins, compared with the expected
//! JSON order-insensitively (volatile timestamps removed where the original removed them).

mod replay;
mod support;

use std::time::Duration;

use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::canonical;
use panoptes::plugins::enrichment_cache::MapSource;
use panoptes::plugins::interface::stored::StoredInterfaces;
use panoptes::plugins::interface::{enrichment, polling};
use panoptes::plugins::PluginError;
use panoptes::simulate::SimulatorHandle;
use panoptes::snmp::{Community, SnmpClient, SnmpTarget};
use replay::{case, kv, serve, strip_volatile, test_resource, FROZEN};
use serde_json::Value;

async fn client(sim: &SimulatorHandle, plugin: &PluginConfig) -> SnmpClient {
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    target.timeout = Duration::from_secs(plugin.snmp.timeout.unwrap_or(10));
    target.retries = plugin.snmp.retries.unwrap_or(1);
    target.max_repetitions = plugin.snmp.max_repetitions.unwrap_or(25);
    SnmpClient::connect(&target).await.unwrap()
}

#[tokio::test]
async fn generic_interface_enrichment_matches_expected() {
    let dir = "interface_enrichment/generic";
    let plugin =
        PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Enrichment).unwrap();
    let sim = serve(dir).await;
    let mut c = client(&sim, &plugin).await;
    let set = enrichment::run(
        &mut c,
        &test_resource(),
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
    assert_eq!(canonical(&set.to_json()), canonical(&expected));
}

#[tokio::test]
async fn enrichment_against_a_closed_port_is_an_error() {
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = support::free_udp_port();
    target.timeout = Duration::from_millis(300);
    target.retries = 0;
    let mut c = SnmpClient::connect(&target).await.unwrap();
    assert!(enrichment::run(&mut c, &test_resource(), 300, 60, FROZEN)
        .await
        .is_err());
}

/// One interface poll of the test resource with `stored` as its enrichment.
async fn poll(
    client: Result<&mut SnmpClient, PluginError>,
    stored: &Option<StoredInterfaces>,
    options: polling::Options,
) -> panoptes::plugins::Polled {
    polling::run(
        client,
        &test_resource(),
        Ok(stored.as_ref()),
        options,
        FROZEN,
    )
    .await
    .unwrap()
}

async fn poll_case(dir: &str) {
    let plugin =
        PluginConfig::load(&case(&format!("{dir}/plugin.conf")), PluginKind::Polling).unwrap();
    let sim = serve(dir).await;
    let mut c = client(&sim, &plugin).await;
    let kv = kv(dir);
    let cache = StoredInterfaces::load(&kv, "test_id").unwrap();
    let options = polling::Options {
        interval: plugin.execute_frequency,
        include_interface_index: plugin.flag("dimension", "include_interface_index"),
    };
    let groups = poll(Ok(&mut c), &cache, options).await.groups;
    let mut actual = serde_json::to_value(&groups).unwrap();
    strip_volatile(&mut actual);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case(&format!("{dir}/expected.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(canonical(&actual), canonical(&expected), "{dir}");
}

#[tokio::test]
async fn interface_polling_default_matches_expected() {
    poll_case("interface_polling/default").await;
}

#[tokio::test]
async fn interface_polling_without_a_dimension_section_matches_expected() {
    poll_case("interface_polling/dimension_section_absent").await;
}

#[tokio::test]
async fn interface_polling_with_index_dimension_matches_expected() {
    poll_case("interface_polling/index_dimension_enabled").await;
}

#[tokio::test]
async fn unreachable_device_yields_only_the_status_group() {
    // A socket that never answers: every request times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = silent.local_addr().unwrap().port();
    target.timeout = Duration::from_millis(300);
    target.retries = 0;
    let mut c = SnmpClient::connect(&target).await.unwrap();
    let cache = StoredInterfaces::load(&MapSource::default(), "test_id").unwrap();
    // No enrichment stored: the failure is ENRICHMENT_FAILURE (8), reported in the status group.
    let options = polling::Options {
        interval: 60,
        include_interface_index: false,
    };
    let groups = poll(Ok(&mut c), &cache, options).await.groups;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].metrics_group_type, "status");
    assert_eq!(
        groups[0].metrics[0].metric_value,
        panoptes::model::MetricValue::Int(8)
    );
    // With enrichment but a dead agent: TIMEOUT (3).
    let kv = kv("interface_polling/default");
    let cache = StoredInterfaces::load(&kv, "test_id").unwrap();
    let groups = poll(Ok(&mut c), &cache, options).await.groups;
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].metrics[0].metric_value,
        panoptes::model::MetricValue::Int(3)
    );
    // An endpoint that is not an address: NETWORK_FAILURE (2), still one group.
    let groups = poll(
        Err(PluginError::Snmp(
            panoptes::snmp::SnmpError::InvalidAddress {
                target: "127.0.0.257".into(),
                reason: "bad".into(),
            },
        )),
        &cache,
        options,
    )
    .await
    .groups;
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].metrics[0].metric_value,
        panoptes::model::MetricValue::Int(2)
    );
}

/// A device without any ifXTable row: only the status group, and the poll is a success
/// (the original reports SUCCESS when there is nothing to poll).
#[tokio::test]
async fn a_device_without_interfaces_is_polled_successfully() {
    use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
    use std::sync::Arc;
    let recording = Arc::new(Recording::parse("1.3.6.1.2.1.1.3.0|67|100\n", "empty").unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    let sim = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    let mut c = SnmpClient::connect(&target).await.unwrap();
    let kv = kv("interface_polling/default");
    let cache = StoredInterfaces::load(&kv, "test_id").unwrap();
    let options = polling::Options {
        interval: 60,
        include_interface_index: false,
    };
    let polled = poll(Ok(&mut c), &cache, options).await;
    assert_eq!(polled.sys_uptime, Some(100));
    assert_eq!(polled.groups.len(), 1);
    assert_eq!(polled.groups[0].metrics_group_type, "status");
    assert_eq!(
        polled.groups[0].metrics[0].metric_value,
        panoptes::model::MetricValue::Int(0)
    );
}
