//! The embedded Kafka broker with real clients: kcat (librdkafka), kafka-python and
//! confluent-kafka, against `panoptes run`.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::Duration;

use support::{program, repo, NodeEnv};

fn kcat() -> std::path::PathBuf {
    program("kcat", "install kcat (Debian: `apt-get install -y kcat`)")
}

use support::run_limited as run;

fn started(env: &NodeEnv) -> support::Node {
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    node
}

#[test]
fn kcat_lists_produces_and_reads_back_10000_keyed_messages_with_every_codec() {
    let mut env = NodeEnv::demo(60);
    // Auto-created topics get 3 partitions, so keys spread and order is per partition.
    env.set("PANOPTES__KAFKA__PARTITIONS", "3");
    env.set("PANOPTES__KAFKA__AUTO_CREATE_TOPICS", "true");
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kcat-{codec}");
        let sent: Vec<(String, String)> = (0..10_000)
            .map(|i| {
                (
                    format!("key{}", i % 61),
                    format!("{codec} message {i} {}", "x".repeat(i % 200)),
                )
            })
            .collect();
        let input: String = sent.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        let mut produce = Command::new(kcat());
        produce.args([
            "-b", &broker, "-P", "-t", &topic, "-K", "\t", "-z", codec, "-X", "acks=all",
        ]);
        let out = run(produce, input.as_bytes(), Duration::from_secs(60));
        assert!(
            out.status.success(),
            "kcat -P {codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let mut consume = Command::new(kcat());
        consume.args([
            "-b",
            &broker,
            "-C",
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p\t%o\t%k\t%s\n",
        ]);
        let out = run(consume, b"", Duration::from_secs(60));
        assert!(
            out.status.success(),
            "kcat -C {codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut per_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        let mut per_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut partitions_of_key: BTreeMap<String, HashSet<u32>> = BTreeMap::new();
        for line in text.lines() {
            let mut f = line.splitn(4, '\t');
            let (p, o, k, v) = (
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
            );
            let p: u32 = p.parse().unwrap();
            per_partition.entry(p).or_default().push(o.parse().unwrap());
            per_key
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
            partitions_of_key
                .entry(k.to_string())
                .or_default()
                .insert(p);
        }
        assert_eq!(
            per_key.values().map(Vec::len).sum::<usize>(),
            10_000,
            "{codec}: every message read once"
        );
        assert!(
            per_partition.len() > 1,
            "{codec}: keys spread over partitions"
        );
        for (p, offsets) in &per_partition {
            let expected: Vec<u64> = (0..offsets.len() as u64).collect();
            assert_eq!(
                offsets, &expected,
                "{codec}: partition {p} offsets in order, no gap"
            );
        }
        // Byte-exact, and in the order sent for each key (a key stays on one partition).
        let mut sent_per_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &sent {
            sent_per_key.entry(k.clone()).or_default().push(v.clone());
        }
        assert_eq!(
            per_key, sent_per_key,
            "{codec}: values byte-exact and in order per key"
        );
        assert!(partitions_of_key.values().all(|ps| ps.len() == 1));
    }
    let mut list = Command::new(kcat());
    list.args(["-b", &broker, "-L"]);
    let out = run(list, b"", Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    for topic in [
        "kcat-none",
        "kcat-zstd",
        "local-processed",
        "local-resources",
    ] {
        assert!(
            text.contains(&format!("topic \"{topic}\" with")),
            "{topic} listed:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("broker 0 at 127.0.0.1:{}", env.kafka_port())),
        "{text}"
    );
    let (_, metrics) = env.http_get("/metrics").unwrap();
    // Each codec arrived compressed (old librdkafka sends uncompressed batches to a broker
    // it judges unable to read them; any librdkafka sends a batch uncompressed when that is
    // smaller, so a few records may be counted under "none").
    let produced = |codec: &str| -> f64 {
        let prefix = format!("panoptes_kafka_records_produced_total{{compression=\"{codec}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    assert_eq!(
        codecs.iter().map(|c| produced(c)).sum::<f64>(),
        50_000.0,
        "{metrics}"
    );
    for codec in &codecs[1..] {
        assert!(
            produced(codec) >= 9_000.0,
            "{codec} batches arrived compressed:\n{metrics}"
        );
    }
    node.stop();
}

/// Runs tests/kafka/clients.py; returns its JSON report.
fn clients(args: &[&str]) -> serde_json::Value {
    let python = program("python3", "install Python 3");
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tests/kafka/clients.py")).args(args);
    let out = run(cmd, b"", Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "clients.py {args:?} printed no report ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(
        report["ok"],
        true,
        "clients.py {args:?}: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// A group of two splits the partitions, one leaves, the other takes over, nothing lost
/// or read twice; after a restart of the broker the group resumes from its commits.
fn group_then_restart(client: &str) {
    let env = NodeEnv::demo(60);
    let (topic, group) = (format!("{client}-topic"), format!("{client}-group"));
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let report = clients(&[&broker, client, "group", &topic, &group, "1000"]);
    let split = report["split"].as_array().unwrap();
    assert!(
        split.iter().all(|s| s.as_array().unwrap().len() == 2),
        "{report}"
    );
    assert_eq!(node.stop().code(), Some(0));

    // The restarted broker listens on a port of its own: the clients follow it there.
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    clients(&[&broker, client, "resume", &topic, &group, "500"]);
    // The admin APIs see the group (now empty) and its commits: 2,000 + 500 records.
    let admin = clients(&[&broker, client, "admin", &topic, &group]);
    assert!(
        admin["groups"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(group)),
        "{admin}"
    );
    assert_eq!(admin["state"], "Empty", "{admin}");
    assert_eq!(admin["committed"], 2500, "{admin}");
    assert_eq!(admin["partitions"], 4, "{admin}");
    node.stop();
}

#[test]
fn kafka_python_group_splits_takes_over_and_resumes_after_restart() {
    group_then_restart("kafka-python");
}

#[test]
fn confluent_kafka_group_splits_takes_over_and_resumes_after_restart() {
    group_then_restart("confluent-kafka");
}

#[test]
fn a_kafka_python_consumer_receives_the_demos_metrics_groups() {
    let env = NodeEnv::demo(2);
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let report = clients(&[
        &broker,
        "kafka-python",
        "tail",
        "local-processed",
        "demo-reader",
    ]);
    let value = &report["value"];
    assert_eq!(value["metrics_group_type"], "interface", "{report}");
    assert_eq!(value["resource"]["resource_id"], "demo-switch-48");
    assert!(
        value["metrics"].as_array().is_some_and(|m| !m.is_empty()),
        "{report}"
    );
    assert!(
        value["dimensions"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{report}"
    );
    assert_eq!(
        report["key"], "network:switch:generic",
        "the spec's message key"
    );
    node.stop();
}
