//! The sink against a real InfluxDB 1.6 (Debian package `influxdb`) through `/write`:
//! the demo's points read back with `/query`; points InfluxDB refuses are skipped and
//! counted while the rest are written; a 30-second outage and a killed-and-restarted
//! binary lose no point and double none.

mod influx_support;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use influx_support::node::{
    check_against_topic, high_watermark, node_env, read_topic, wait_metrics, written,
};
use influx_support::{expected_rows, metric_value, missing_or_different, Server};
use panoptes::bus::{Bus, Message, TopicSource};
use panoptes::config::Settings;
use panoptes::sink::{consumer_config, writer, InfluxSink, GROUP};
use panoptes::telemetry::Telemetry;
use panoptes_actors::{Consumer, GetConsumerStats};
use serde_json::{json, Value};

const DB: &str = "panoptes";
const DEMO_GROUPS_PER_POLL: f64 = 49.0;

fn stored(
    server: &Server,
) -> std::collections::BTreeMap<(String, i64), std::collections::BTreeMap<String, f64>> {
    let mut rows = server.influx_rows(DB, "interface");
    rows.extend(server.influx_rows(DB, "status"));
    rows
}

#[test]
fn demo_to_influxdb_1_6_through_write() {
    let influx = Server::influxdb();
    let mut env = node_env(&influx, "v1", 2);
    // InfluxDB here runs without authentication and ignores the credentials; the
    // request still carries them (see influx_golden.rs), and they must not be printed.
    env.set("PANOPTES__INFLUXDB__USERNAME", "panoptes");
    env.set("PANOPTES__INFLUXDB__PASSWORD", "sekret-password");
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    wait_metrics(
        &env,
        &mut node,
        Duration::from_secs(90),
        "two polls written",
        |m| metric_value(m, "panoptes_influxdb_points_written_total") >= 2.0 * DEMO_GROUPS_PER_POLL,
    );

    // The database did not exist: the sink created it, as the original does.
    let measurements = influx.query(DB, "SHOW MEASUREMENTS");
    let names: Vec<&str> = measurements["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{measurements}"))
        .iter()
        .map(|v| v[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["interface", "status"]);
    let endpoint = influx.query(
        DB,
        "SELECT bits_in__counter, oper_state__gauge FROM interface \
         WHERE resource_endpoint = '127.0.0.1' AND interface_name = 'Gi0/1'",
    );
    let rows = endpoint["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{endpoint}"));
    assert!(rows.len() >= 2, "{endpoint}");
    // The shipped Grafana dashboard's queries all find data.
    for (what, q) in influx_support::dashboard_queries() {
        let answer = influx.query(DB, &q);
        let result = &answer["results"][0];
        assert!(result.get("error").is_none(), "{what}: {q}\n{answer}");
        assert!(
            result["series"].as_array().is_some_and(|s| !s.is_empty()),
            "{what} found nothing: {q}\n{answer}"
        );
    }
    let m = influx_support::node::metrics(&env);
    let log = node.log_text();
    assert!(
        !m.contains("sekret") && !log.contains("sekret"),
        "the password leaked"
    );
    node.stop();

    let (groups, committed) = read_topic(&env);
    assert!(committed as f64 >= 2.0 * DEMO_GROUPS_PER_POLL);
    check_against_topic(&groups, committed, &stored(&influx));
}

fn group(interface: &str, description: &str, ts: f64) -> Value {
    json!({
        "metrics_group_type": "interface",
        "metrics_group_interval": 60,
        "metrics_group_creation_timestamp": ts,
        "metrics_group_schema_version": "0.2",
        "resource": {
            "resource_site": "local", "resource_class": "network", "resource_subclass": "switch",
            "resource_type": "test", "resource_id": "sw1", "resource_endpoint": "10.0.0.1",
            "resource_metadata": {"_resource_ttl": "604800"}, "resource_plugin": "p",
            "resource_creation_timestamp": 1.0
        },
        "dimensions": [
            {"dimension_name": "interface_name", "dimension_value": interface},
            {"dimension_name": "description", "dimension_value": description},
        ],
        "metrics": [
            {"metric_name": "bits_in", "metric_type": "counter", "metric_value": 1234,
             "metric_creation_timestamp": ts},
            {"metric_name": "bits_in", "metric_type": "gauge", "metric_value": 16.5,
             "metric_creation_timestamp": ts},
        ],
    })
}

/// Records published straight to a topic, consumed by the sink's consumer in this
/// process: InfluxDB refuses the point with an empty tag value (HTTP 400, "missing tag
/// value", as it would have for the original); that point is skipped and counted, a
/// record that is not JSON is skipped and counted, and every other point is stored and
/// the offsets committed past all of them.
#[test]
fn refused_points_are_skipped_and_the_others_written() {
    let influx = Server::influxdb();
    let store = panoptes_storage::Store::temporary().unwrap();
    let bus = Bus::new(store.clone(), 1);
    let now = 1_700_000_000.0;
    let good: Vec<Value> = (0..5)
        .map(|i| group(&format!("eth{i}"), "to core, rack=1", now + i as f64))
        .collect();
    let mut messages: Vec<Message> = good
        .iter()
        .map(|g| Message {
            key: "network:switch:test".into(),
            partition_key: "x".into(),
            value: serde_json::to_vec(g).unwrap(),
        })
        .collect();
    let bad_point = group("eth9", "", now);
    messages.insert(
        2,
        Message {
            key: "network:switch:test".into(),
            partition_key: "x".into(),
            value: serde_json::to_vec(&bad_point).unwrap(),
        },
    );
    messages.insert(
        4,
        Message {
            key: "network:switch:test".into(),
            partition_key: "x".into(),
            value: b"{not a metrics group".to_vec(),
        },
    );
    bus.publish("local-processed", messages, 0).unwrap();

    let mut settings = Settings::load(None).unwrap().influxdb;
    settings.url = influx.url();
    settings.api = panoptes::config::InfluxApi::V1;
    settings.batch_size = 200;
    let telemetry = Arc::new(Telemetry::default());
    let sink_telemetry = Arc::clone(&telemetry);
    let offsets = store.consumer_offsets().unwrap();
    let topic = bus.topic("local-processed").unwrap();
    let system = actix::System::new();
    let stats = system.block_on(async move {
        let consumer = Consumer::new(
            "influxdb:test",
            TopicSource {
                topic,
                partition: 0,
                group: GROUP.into(),
                offsets,
                committed: Arc::default(),
                appended: None,
            },
            InfluxSink::new(writer(&settings).unwrap(), sink_telemetry),
            consumer_config(&settings),
        )
        .start();
        let start = Instant::now();
        loop {
            let stats = consumer.send(GetConsumerStats).await.unwrap();
            if stats.committed == Some(7) || start.elapsed() > Duration::from_secs(60) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(stats.committed, Some(7), "{stats:?}");
    let count = |name: &'static str| telemetry.get(name, &[]);
    // Each delivery of the batch is refused whole and then written point by point, where
    // the bad point is refused and skipped. Once, unless a delivery failed on the way (a
    // write error or timeout with the server slow under load): then the consumer delivers
    // the batch again, and the retry counts its refusals again.
    let retries = stats.delivery_failures as f64;
    let deliveries = 1.0 + retries;
    let rejected_batches = count("panoptes_influxdb_batches_rejected_total");
    assert!(
        (1.0..=deliveries).contains(&rejected_batches),
        "{rejected_batches} batches rejected in {deliveries} deliveries"
    );
    let rejected_points = count("panoptes_influxdb_points_rejected_total");
    assert!(
        (1.0..=rejected_batches).contains(&rejected_points),
        "{rejected_points} points rejected after {rejected_batches} batch rejections"
    );
    if retries == 0.0 {
        assert_eq!((rejected_batches, rejected_points), (1.0, 1.0));
        assert_eq!(count("panoptes_influxdb_points_written_total"), 5.0);
    } else {
        assert!(count("panoptes_influxdb_points_written_total") >= 5.0);
    }
    // Encoding happens before the write: a record that is not a group is skipped once per
    // delivery.
    assert!(
        (1.0..=deliveries).contains(&count("panoptes_influxdb_records_skipped_total")),
        "{deliveries} deliveries"
    );
    // The server answered 204 for these writes; give its query side a moment under load.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let rows = influx.influx_rows(DB, "interface");
        if rows.len() >= 5 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert!(missing_or_different(&expected_rows(&good), &stored).is_empty());
}

/// InfluxDB stops for 30 s while the demo keeps polling (every 2 s): writes fail, the
/// lag grows on /metrics, nothing is committed; when InfluxDB is back the backlog drains
/// in order. Then every committed point is stored exactly as published, and nothing else.
/// (InfluxDB keeps one row per series and second, so a replayed point cannot double: the
/// check is that the stored rows are exactly the topic's.)
#[test]
fn an_influxdb_outage_loses_nothing() {
    let mut influx = Server::influxdb();
    let env = node_env(&influx, "v1", 2);
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    wait_metrics(
        &env,
        &mut node,
        Duration::from_secs(60),
        "first poll written",
        |m| metric_value(m, "panoptes_influxdb_points_written_total") >= DEMO_GROUPS_PER_POLL,
    );

    influx.stop();
    let down_at = Instant::now();
    let written_before = written(&env);
    let mut max_lag: f64 = 0.0;
    while down_at.elapsed() < Duration::from_secs(30) {
        let m = influx_support::node::metrics(&env);
        max_lag = max_lag.max(metric_value(&m, "panoptes_influxdb_consumer_lag"));
        std::thread::sleep(Duration::from_millis(500));
    }
    let m = influx_support::node::metrics(&env);
    assert!(
        metric_value(&m, "panoptes_influxdb_write_errors_total") >= 1.0,
        "no write error during the outage"
    );
    assert!(
        written(&env) - written_before < DEMO_GROUPS_PER_POLL,
        "points were written while InfluxDB was down"
    );
    // Nothing is committed while InfluxDB is down, so the lag grows with every poll.
    assert!(
        max_lag >= 5.0 * DEMO_GROUPS_PER_POLL,
        "lag reached only {max_lag} during the outage"
    );
    let backlog_end = high_watermark(&env);
    assert!(backlog_end >= written_before + 5.0 * DEMO_GROUPS_PER_POLL);

    influx.start();
    wait_metrics(
        &env,
        &mut node,
        Duration::from_secs(120),
        "backlog drained",
        |m| {
            metric_value(m, "panoptes_influxdb_points_written_total") >= backlog_end
                && metric_value(m, "panoptes_influxdb_consumer_lag") == 0.0
        },
    );
    // Let the last partial batch go out (max_emit_interval is 1 s here) and commit.
    std::thread::sleep(Duration::from_secs(3));
    node.stop();

    let (groups, committed) = read_topic(&env);
    assert!(
        committed as f64 >= backlog_end,
        "committed {committed}, backlog ended at {backlog_end}"
    );
    check_against_topic(&groups, committed, &stored(&influx));
}

/// The binary is killed (SIGKILL) mid-run and started again on the same data directory:
/// the sink resumes from its committed offset; no point is lost, and replayed points
/// overwrite themselves.
#[test]
fn a_killed_and_restarted_binary_loses_nothing() {
    let influx = Server::influxdb();
    let env = node_env(&influx, "v1", 2);
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    wait_metrics(
        &env,
        &mut node,
        Duration::from_secs(60),
        "two polls written",
        |m| metric_value(m, "panoptes_influxdb_points_written_total") >= 2.0 * DEMO_GROUPS_PER_POLL,
    );
    std::thread::sleep(Duration::from_millis(1300));
    let before_kill = high_watermark(&env);
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    drop(node);

    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    wait_metrics(
        &env,
        &mut node,
        Duration::from_secs(90),
        "caught up after restart",
        |m| {
            metric_value(m, "panoptes_influxdb_points_written_total") >= 1.0
                && metric_value(m, "panoptes_influxdb_consumer_lag") == 0.0
                && metric_value(
                    m,
                    "panoptes_topic_high_watermark{topic=\"local-processed\",partition=\"0\"}",
                ) >= before_kill + DEMO_GROUPS_PER_POLL
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    node.stop();

    let (groups, committed) = read_topic(&env);
    assert!(
        committed as f64 >= before_kill,
        "committed {committed} < {before_kill}"
    );
    check_against_topic(&groups, committed, &stored(&influx));
}

/// With `influxdb.traps`, a trap sent by net-snmp's `snmptrap` to the node's receiver is
/// written to a real InfluxDB 1.x as one point of measurement `trap`: tags from the event
/// (the matched demo switch among them), `count`, `agent_uptime` and the varbinds as JSON.
#[test]
fn traps_are_written_as_measurement_trap() {
    let influx = Server::influxdb();
    let mut env = node_env(&influx, "v1", 60);
    env.set("PANOPTES__TRAPS__LISTEN", "127.0.0.1:0");
    env.set("PANOPTES__INFLUXDB__TRAPS", "true");
    let mut node = env.start();
    // Ready: the demo switch was discovered (and polled), so the trap matches it.
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    let mut trap = std::process::Command::new(support::net_snmp("snmptrap"));
    trap.args(["-v", "2c", "-c", "public"])
        .arg(env.traps_addr().to_string())
        .args([
            "4242",
            "1.3.6.1.6.3.1.1.5.3",
            "1.3.6.1.2.1.2.2.1.1.3",
            "i",
            "3",
        ])
        .env("MIBS", "")
        .env("MIBDIRS", "/nonexistent");
    let out = support::run_limited(trap, b"", Duration::from_secs(30));
    assert!(
        out.status.success(),
        "snmptrap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    let rows = loop {
        let answer = influx.query(DB, "SELECT * FROM \"trap\"");
        if let Some(values) = answer["results"][0]["series"][0]["values"].as_array() {
            let columns: Vec<String> = answer["results"][0]["series"][0]["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
            break values
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .cloned()
                        .zip(row.as_array().unwrap().iter().cloned())
                        .collect::<std::collections::BTreeMap<String, Value>>()
                })
                .collect::<Vec<_>>();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no trap point in InfluxDB: {answer}\nnode log:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["trap_name"], "linkDown");
    assert_eq!(row["trap_oid"], "1.3.6.1.6.3.1.1.5.3");
    assert_eq!(row["version"], "v2c");
    assert_eq!(row["kind"], "trap");
    assert_eq!(row["source"], "127.0.0.1");
    assert_eq!(row["resource_id"], "demo-switch-48");
    assert_eq!(row["resource_site"], "local");
    assert_eq!(row["count"], 1);
    assert_eq!(row["agent_uptime"], 4242);
    let varbinds: Value = serde_json::from_str(row["varbinds"].as_str().unwrap()).unwrap();
    assert_eq!(varbinds[0]["oid"], "1.3.6.1.2.1.2.2.1.1.3");
    assert_eq!(varbinds[0]["name"], "IF-MIB::ifIndex.3");
    assert_eq!(varbinds[0]["value"], 3);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let time = row["time"].as_i64().unwrap();
    assert!((now - 120..=now).contains(&time), "time {time}, now {now}");
    node.stop();
}
