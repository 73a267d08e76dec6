//! ping_polling/*: the original's `plugin_polling_ping` test, with `ping`'s output given
//! by a stand-in as the original mocked its subprocess call; the whole `ping` group is
//! compared, timestamps included (nothing was removed in the original test), numbers by
//! value (the original compared with Python's `==`, where 0 == 0.0).

mod replay;

use std::time::Duration;

use panoptes::config::{PluginConfig, PluginKind};
use panoptes::model::{canonical, Resource};
use panoptes::plugins::ping::{self, parse_stats, Ping, PingError, PingFuture, PingStats};
use panoptes::plugins::PluginError;
use replay::{case, FROZEN};
use serde_json::{json, Value};

const DIR: &str = "ping_polling/mocked_ping_output";

/// What the original's mocked `check_output` did: return a text, or raise.
enum Mock {
    Output(&'static str),
    Raises,
}

impl Ping for Mock {
    fn probe<'a>(
        &'a self,
        host: &'a str,
        count: u32,
        deadline: Duration,
    ) -> PingFuture<'a, PingStats> {
        // The original's defaults when the plugin file sets neither: 10 packets, 10 s.
        assert_eq!((count, deadline), (10, Duration::from_secs(10)));
        assert_eq!(host, "test_endpoint");
        Box::pin(async move {
            match self {
                Mock::Output(file) => {
                    let text = std::fs::read_to_string(case(&format!("{DIR}/{file}"))).unwrap();
                    parse_stats(&text).ok_or(PingError::Unparsable {
                        host: host.to_string(),
                    })
                }
                Mock::Raises => Err(PingError::Spawn {
                    host: host.to_string(),
                    reason: "mocked".into(),
                }),
            }
        })
    }
}

fn resource() -> Resource {
    Resource::from_json(
        &json!({"resource_site": "test_site", "resource_class": "test_class",
        "resource_subclass": "test_subclass", "resource_type": "test_type",
        "resource_id": "test_id", "resource_endpoint": "test_endpoint",
        "resource_plugin": "test_plugin", "resource_creation_timestamp": FROZEN,
        "resource_metadata": {"_resource_ttl": "604800"}}),
    )
    .unwrap()
}

/// Every number as f64, so 0 and 0.0 compare equal as in the original's test.
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_floats).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn run(conf: &str, mock: Mock) -> Result<Value, PluginError> {
    let plugin = PluginConfig::load(&case(&format!("{DIR}/{conf}")), PluginKind::Polling).unwrap();
    let groups = ping::polling(&plugin, &resource(), &mock, FROZEN).await?;
    assert_eq!(groups.len(), 1, "one ping group");
    Ok(serde_json::to_value(&groups[0]).unwrap())
}

async fn check(mock: Mock, expected: &str) {
    let actual = run("plugin.conf", mock).await.unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(case(&format!("{DIR}/{expected}"))).unwrap())
            .unwrap();
    assert_eq!(
        canonical(&numbers_as_floats(&actual)),
        canonical(&numbers_as_floats(&expected)),
        "{expected}"
    );
}

#[tokio::test]
async fn every_packet_answered() {
    check(
        Mock::Output("ping_output_success.txt"),
        "expected_success.json",
    )
    .await;
}

#[tokio::test]
async fn every_packet_lost() {
    check(
        Mock::Output("ping_output_failure.txt"),
        "expected_failure.json",
    )
    .await;
}

#[tokio::test]
async fn ping_itself_fails() {
    check(Mock::Raises, "expected_exception.json").await;
}

#[tokio::test]
async fn count_and_timeout_must_be_integers() {
    for (conf, key) in [
        ("plugin_bad_count.conf", "count"),
        ("plugin_bad_timeout.conf", "timeout"),
    ] {
        let err = run(conf, Mock::Raises).await.unwrap_err();
        assert!(matches!(err, PluginError::Config(_)), "{conf}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "plugin `Test Plugin`: for device test_endpoint, configured {key} is not a positive integer: `string`"
            )
        );
    }
}

/// The system's `ping` against loopback (the test script installs iputils-ping): every
/// packet answered, status 0, loss 0.0.
#[tokio::test]
async fn the_system_ping_answers_for_loopback() {
    let (plugin, resource) = loopback_plugin();
    let system = ping::SystemPing::new(None);
    let groups = ping::polling(&plugin, &resource, &system, FROZEN)
        .await
        .unwrap();
    let value = |name: &str| {
        groups[0]
            .metrics
            .iter()
            .find(|m| m.metric_name == name)
            .map(|m| serde_json::to_value(m.metric_value).unwrap())
    };
    assert_eq!(value("ping_status"), Some(json!(0)), "{groups:?}");
    assert_eq!(value("packet_loss_percent"), Some(json!(0.0)));
    assert_eq!(groups[0].metrics.len(), 6);
}

/// Without a `ping` program the plugin reports the failure (status 7, nothing else) and
/// the error is counted; the status check never takes "no ping" for "the host answered".
#[tokio::test]
async fn a_missing_ping_program_is_a_failure_never_an_answer() {
    let (plugin, resource) = loopback_plugin();
    let telemetry = std::sync::Arc::new(panoptes::telemetry::Telemetry::default());
    let missing = ping::SystemPing {
        program: "/nonexistent/ping".into(),
        telemetry: Some(telemetry.clone()),
    };
    let groups = ping::polling(&plugin, &resource, &missing, FROZEN)
        .await
        .unwrap();
    assert_eq!(groups[0].metrics.len(), 1);
    assert_eq!(groups[0].metrics[0].metric_name, "ping_status");
    assert_eq!(
        serde_json::to_value(groups[0].metrics[0].metric_value).unwrap(),
        json!(7)
    );
    let answered = missing.answers("127.0.0.1", Duration::from_secs(1)).await;
    assert!(
        matches!(answered, Err(PingError::Missing { .. })),
        "{answered:?}"
    );
    assert_eq!(
        telemetry.get("panoptes_ping_errors_total", &[("reason", "missing")]),
        2.0
    );
}

fn loopback_plugin() -> (PluginConfig, Resource) {
    let tmp = tempfile::tempdir().unwrap();
    let conf = std::fs::read_to_string(case(&format!("{DIR}/plugin.conf"))).unwrap()
        + "count = 2\ntimeout = 3\n";
    let path = tmp.path().join("ping.panoptes-plugin");
    std::fs::write(&path, conf).unwrap();
    let plugin = PluginConfig::load(&path, PluginKind::Polling).unwrap();
    let mut resource = serde_json::to_value(resource()).unwrap();
    resource["resource_endpoint"] = json!("127.0.0.1");
    (plugin, Resource::from_json(&resource).unwrap())
}
