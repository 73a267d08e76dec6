//! The external Kafka client against a broker that is not ours: Tansu 0.6 (memory
//! storage). Produce, fetch at every Fetch version the client may pick (from the start
//! and from the middle of a batch), committed offsets, topic creation, high watermarks;
//! and a node whose cluster fails says so on `/ready`, in `/metrics` and in its log.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use panoptes::bus::Message;
use panoptes::kafka::ExternalCluster;
use support::tansu::Tansu;

fn client(tansu: &Tansu) -> ExternalCluster {
    ExternalCluster::start(vec![tansu.addr()], "tansu-test", Default::default(), None).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Every record of `topic`, by partition, read from offset 0 in fetches of at most `max`.
/// Under load Tansu sometimes answers a fetch with no records though they are there: an
/// empty answer below the partition's high watermark is asked again (at most 100 times).
fn read_all(
    c: &ExternalCluster,
    topic: &str,
    max: usize,
) -> BTreeMap<u32, Vec<(u64, String, String)>> {
    let n = block_on(c.partitions(topic)).unwrap();
    let mut out = BTreeMap::new();
    for p in 0..n {
        let mut records = Vec::new();
        let mut from = 0;
        let hw = block_on(c.high_watermark(topic, p)).unwrap();
        let mut empty = 0;
        loop {
            let items = block_on(c.fetch(topic, p, from, max)).unwrap();
            let Some((last, _)) = items.last() else {
                empty += 1;
                if from < hw && empty < 100 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                break;
            };
            from = last + 1;
            for (offset, (key, value)) in items {
                records.push((
                    offset,
                    String::from_utf8(key.unwrap()).unwrap(),
                    String::from_utf8(value).unwrap(),
                ));
            }
        }
        out.insert(p, records);
    }
    out
}

#[test]
fn the_external_client_produces_and_consumes_through_tansu_at_every_fetch_version() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start(dir.path());
    let producer = client(&tansu);
    assert_eq!(
        block_on(producer.ensure_topic("interop", 3)).unwrap(),
        3,
        "CreateTopics"
    );
    assert_eq!(
        block_on(producer.ensure_topic("interop", 8)).unwrap(),
        3,
        "an existing topic keeps its partitions"
    );
    // Three produce calls of 40 messages: one batch per partition per call.
    let mut sent = Vec::new();
    for round in 0..3 {
        let messages: Vec<Message> = (0..40)
            .map(|i| Message {
                key: format!("k{round}-{i}"),
                partition_key: format!("device-{i}"),
                value: format!("v{round}-{i}").into_bytes(),
            })
            .collect();
        producer
            .publish_blocking("interop", &messages, 1_700_000_000_000)
            .unwrap();
        sent.extend(
            messages
                .into_iter()
                .map(|m| (m.key, String::from_utf8(m.value).unwrap())),
        );
    }
    sent.sort();
    for version in [12, 11, 7, 4] {
        let reader = client(&tansu);
        block_on(reader.cap_fetch_version(version));
        for max in [1000, 7] {
            let read = read_all(&reader, "interop", max);
            let mut got: Vec<(String, String)> = Vec::new();
            for (p, records) in &read {
                let offsets: Vec<u64> = records.iter().map(|r| r.0).collect();
                assert_eq!(
                    offsets,
                    (0..records.len() as u64).collect::<Vec<_>>(),
                    "Fetch v{version}, {max} at a time: partition {p}'s offsets"
                );
                // Tansu 0.6 answers ListOffsets(latest) with its last batch's base offset
                // plus one (kafka-python sees the same), not the offset after its last
                // record: within the last batch, never past the end.
                let hw = block_on(reader.high_watermark("interop", *p)).unwrap();
                assert!(
                    hw > 0 && hw <= records.len() as u64 && records.len() as u64 - hw < 40,
                    "partition {p}'s high watermark {hw}, {} records",
                    records.len()
                );
                got.extend(records.iter().map(|(_, k, v)| (k.clone(), v.clone())));
            }
            got.sort();
            assert_eq!(
                got, sent,
                "Fetch v{version}, {max} at a time: every record once"
            );
        }
        // From the middle of a batch: the records from that offset on.
        let p = (0..3)
            .find(|&p| block_on(reader.high_watermark("interop", p)).unwrap() > 5)
            .unwrap();
        let items = block_on(reader.fetch("interop", p, 3, 2)).unwrap();
        let offsets: Vec<u64> = items.iter().map(|i| i.0).collect();
        assert_eq!(
            offsets,
            vec![3, 4],
            "Fetch v{version} from offset 3 of partition {p}"
        );
    }
    // Committed offsets of a group, as a simple (memberless) commit.
    let c = client(&tansu);
    assert_eq!(
        block_on(c.committed("interop-group", "interop", 1)).unwrap(),
        0,
        "nothing committed: the earliest offset"
    );
    block_on(c.commit("interop-group", "interop", 1, 5, None)).unwrap();
    assert_eq!(
        block_on(c.committed("interop-group", "interop", 1)).unwrap(),
        5
    );
    // Past the end: nothing yet, no error.
    assert!(block_on(c.fetch("interop", 0, 10_000, 10))
        .unwrap()
        .is_empty());
}

/// A node whose topics are on Tansu runs its whole pipeline there (the demo device is
/// polled, `/ready` says 200); when the broker goes away, `/ready` turns 503 naming the
/// external cluster, the failures are counted by operation on `/metrics`, and the log
/// says what failed.
#[test]
fn a_node_on_tansu_is_ready_and_says_so_when_the_broker_dies() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start(dir.path());
    let mut env = support::NodeEnv::demo(2);
    env.set("PANOPTES__KAFKA__LISTEN", "");
    env.set("PANOPTES__KAFKA__BROKERS", &tansu.addr());
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    // The demo device's metrics are on Tansu, under the spec's topic.
    let reader = client(&tansu);
    let deadline = Instant::now() + Duration::from_secs(30);
    let groups = loop {
        let groups: Vec<String> = read_all(&reader, "local-processed", 100)
            .into_values()
            .flatten()
            .map(|(_, _, value)| value)
            .collect();
        if !groups.is_empty() || Instant::now() > deadline {
            break groups;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        groups
            .iter()
            .any(|g| g.contains("\"metrics_group_type\":\"interface\"")),
        "interface metrics of the demo device on local-processed: {groups:?}; log:\n{}",
        node.log_text()
    );

    drop(tansu);
    let took = env.wait_for("/ready", 503, Duration::from_secs(40), &mut node);
    let (_, body) = env.http_get("/ready").unwrap();
    assert!(
        body.contains("external Kafka (kafka.brokers) failing for"),
        "/ready names the cluster: {body}"
    );
    assert!(
        took >= Duration::from_secs(9),
        "not before 10 s of failures: {took:?}"
    );
    let metrics = env.http_get("/metrics").unwrap().1;
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("panoptes_kafka_client_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failures > 0.0, "failures counted: {metrics}");
    let log = node.log_text();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("external Kafka cluster (kafka.brokers): request failed")),
        "the log says what failed:\n{log}"
    );
    node.stop();
}
