//! `kafka.brokers`: a node publishes to and consumes from an external Kafka cluster,
//! here a second instance of our binary acting as the cluster, secured as a real one
//! would be: SASL_SSL, SCRAM, and an ACL that lets the polling node's user (and no one
//! else) write the site's topics and commit for its groups. The demo's resources go to
//! the cluster, the polling node reads them back from it (its resource manager), polls,
//! and publishes metrics groups there with the spec's keys.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{program, NodeEnv};

#[test]
fn a_node_runs_its_pipeline_through_a_second_instance_acting_as_the_cluster() {
    // The "cluster": no demo device, no plugins, only its embedded broker.
    let mut cluster = NodeEnv::demo(60);
    cluster.set("PANOPTES__DEMO__ENABLED", "false");
    let empty = cluster.dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).unwrap();
    for kind in ["DISCOVERY", "ENRICHMENT", "POLLING"] {
        cluster.set(
            &format!("PANOPTES__PLUGINS__{kind}"),
            empty.to_str().unwrap(),
        );
    }
    let (ca, cert, key) = support::tls_files(cluster.dir.path(), "cluster");
    let secrets = support::kafka_secrets(
        cluster.dir.path(),
        &[("poller", "poller pass"), ("reader", "reader pass")],
        None,
    );
    let config = cluster.dir.path().join("cluster.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
security = "sasl_ssl"
tls_cert = {cert:?}
tls_key = {key:?}
auto_create_topics = true

[[kafka.acl]]
principal = "poller"
operations = ["produce", "consume", "admin"]
topics = ["local-*"]
groups = ["resource_manager_group", "panoptes_influxdb_consumer_raw_metrics"]
"#
        ),
    )
    .unwrap();
    cluster.set("PANOPTES_CONFIG", config.to_str().unwrap());
    cluster.set("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap());
    let mut cluster_node = cluster.start();
    cluster.wait_for("/health", 200, Duration::from_secs(30), &mut cluster_node);
    let broker = format!("127.0.0.1:{}", cluster.kafka_port());

    // The polling node, its topics on the cluster, as user `poller` over TLS.
    let mut poller = NodeEnv::demo(2);
    let client_dir = poller.dir.path().to_path_buf();
    let client_secrets = support::kafka_secrets(&client_dir, &[], Some("poller pass"));
    poller.set("PANOPTES__KAFKA__BROKERS", &broker);
    poller.set("PANOPTES__KAFKA__CLIENT_SECURITY", "sasl_ssl");
    poller.set("PANOPTES__KAFKA__CLIENT_SASL_MECHANISM", "SCRAM-SHA-512");
    poller.set("PANOPTES__KAFKA__CLIENT_USERNAME", "poller");
    poller.set("PANOPTES__KAFKA__CLIENT_TLS_CA", ca.to_str().unwrap());
    poller.set(
        "PANOPTES__SNMP__SECRETS_FILE",
        client_secrets.to_str().unwrap(),
    );
    let mut node = poller.start();
    poller.wait_for("/ready", 200, Duration::from_secs(60), &mut node);

    // The cluster holds the metrics groups, keyed class:subclass:type.
    let kcat = program("kcat", "install kcat (Debian: `apt-get install -y kcat`)");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (resources, processed) = loop {
        let read = |topic: &str| {
            let out = Command::new(&kcat)
                .args([
                    "-b",
                    &broker,
                    "-X",
                    "security.protocol=sasl_ssl",
                    "-X",
                    "sasl.mechanisms=SCRAM-SHA-256",
                    "-X",
                    "sasl.username=reader",
                    "-X",
                    "sasl.password=reader pass",
                    "-X",
                    &format!("ssl.ca.location={}", ca.display()),
                    "-C",
                    "-t",
                    topic,
                    "-o",
                    "beginning",
                    "-e",
                    "-q",
                    "-f",
                    "%k\t%s\n",
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let (r, p) = (read("local-resources"), read("local-processed"));
        if !p.is_empty() || Instant::now() > deadline {
            break (r, p);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        resources.contains("demo-switch-48"),
        "resources on the cluster:\n{resources}\n{}",
        node.log_text()
    );
    let line = processed.lines().next().unwrap_or_else(|| {
        panic!(
            "no metrics groups on the cluster; poller log:\n{}",
            node.log_text()
        )
    });
    let (key, value) = line.split_once('\t').unwrap();
    assert_eq!(key, "network:switch:generic");
    let group: serde_json::Value = serde_json::from_str(value).unwrap();
    assert_eq!(group["resource"]["resource_id"], "demo-switch-48");
    // The resource manager committed its offset on the cluster's coordinator, as
    // `poller`, which authenticated and was allowed everything it did.
    let (_, metrics) = cluster.http_get("/metrics").unwrap();
    assert!(
        metrics.contains("panoptes_kafka_requests_total{api=\"OffsetCommit\"}")
            && metrics.contains("panoptes_kafka_requests_total{api=\"SaslAuthenticate\"}"),
        "{metrics}"
    );
    for reason in [
        "sasl_authentication",
        "group_authorization",
        "tls_handshake",
    ] {
        assert!(
            !metrics.contains(&format!(
                "panoptes_kafka_refused_total{{reason=\"{reason}\"}}"
            )),
            "{metrics}"
        );
    }
    // The poller kept nothing in its own log.
    let (_, topics) = poller.http_get("/api/topics").unwrap();
    let topics: serde_json::Value = serde_json::from_str(&topics).unwrap();
    assert_eq!(topics["topics"], serde_json::json!([]), "{topics}");
    node.stop();
    cluster_node.stop();
}
