//! Kafka wire benchmark: produce and consume throughput of the embedded broker (1 KB
//! messages, acks=all, on the store on disk: segment files) and end-to-end
//! latency produce -> consume, through the Kafka protocol over loopback TCP.
//!
//! Prints figures; it is not a timed test. Run:
//!     cargo bench --bench kafka_throughput
//! Environment: KAFKA_BENCH_MESSAGES (default 200000), KAFKA_BENCH_BATCH (default 500),
//! KAFKA_BENCH_PRODUCERS (default 4), KAFKA_BENCH_LATENCY_SAMPLES (default 2000).

// The tests' Kafka helpers: one record batch builder for both.
#[allow(dead_code)]
#[path = "../tests/support/kafka.rs"]
mod kafka_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use panoptes::kafka::client::Connection;
use panoptes::kafka::{Broker, BrokerConfig, KafkaServer};
use panoptes::telemetry::Telemetry;
use panoptes_storage::Store;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// `n` records of `size` bytes, keyed `key-<first + i>`.
fn batch(first: usize, n: usize, size: usize) -> Bytes {
    let value = "x".repeat(size);
    let keys: Vec<String> = (first..first + n).map(|i| format!("key-{i}")).collect();
    let records: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), value.as_str())).collect();
    kafka_support::batch(&records, -1, 0, Compression::None)
}

fn produce(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    let mut r = kafka_support::produce_request(topic, partition, records, -1);
    r.timeout_ms = 30_000;
    r
}

fn fetch(topic: &str, partition: i32, offset: i64, wait_ms: i32) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 4 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(s(topic));
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.max_wait_ms = wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 16 << 20;
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    r
}

fn count(records: Option<Bytes>) -> (usize, usize) {
    let mut bytes = records.unwrap_or_default();
    let mut n = 0;
    let mut size = 0;
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for r in set.records {
            n += 1;
            size += r.value.map_or(0, |v| v.len());
        }
    }
    (n, size)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let messages = env_number("KAFKA_BENCH_MESSAGES", 200_000);
    let per_batch = env_number("KAFKA_BENCH_BATCH", 500);
    let producers = env_number("KAFKA_BENCH_PRODUCERS", 4);
    let samples = env_number("KAFKA_BENCH_LATENCY_SAMPLES", 2000);
    let store = Store::temporary().unwrap();
    let config = BrokerConfig {
        auto_create_topics: true,
        default_partitions: producers as u32,
        cluster_id: "bench".into(),
        ..BrokerConfig::default()
    };
    let broker = Broker::new(config, store.clone(), Arc::new(Telemetry::default()));
    let server = KafkaServer::start("127.0.0.1:0".parse().unwrap(), broker).unwrap();
    let addr = server.local_addr.to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "kafka_throughput: {messages} x 1 KB messages, batches of {per_batch}, acks=all, {producers} producers (one partition each), store on disk"
    );
    rt.block_on(async {
        // Produce.
        let started = Instant::now();
        let per_producer = messages / producers;
        let mut tasks = Vec::new();
        for p in 0..producers {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = Connection::connect(&addr, "bench-producer", Duration::from_secs(30)).await.unwrap();
                let mut sent = 0;
                while sent < per_producer {
                    let n = per_batch.min(per_producer - sent);
                    let a = c.call(produce("bench", p as i32, batch(sent, n, 1024)), 9).await.unwrap();
                    assert_eq!(a.responses[0].partition_responses[0].error_code, 0);
                    sent += n;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let produced = per_producer * producers;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  produce: {:.0} messages/s, {:.1} MB/s ({produced} messages in {secs:.2} s)",
            produced as f64 / secs,
            produced as f64 * 1024.0 / secs / 1e6
        );
        // Consume everything back, one connection per partition.
        let started = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..producers {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = Connection::connect(&addr, "bench-consumer", Duration::from_secs(30)).await.unwrap();
                let (mut offset, mut bytes) = (0usize, 0usize);
                while offset < per_producer {
                    let a = c.call(fetch("bench", p as i32, offset as i64, 500), 12).await.unwrap();
                    let (n, size) = count(a.responses[0].partitions[0].records.clone());
                    offset += n;
                    bytes += size;
                }
                bytes
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  consume: {:.0} messages/s, {:.1} MB/s",
            produced as f64 / secs,
            total as f64 / secs / 1e6
        );
        // End-to-end latency: one message at a time, a consumer long-polling.
        let mut producer = Connection::connect(&addr, "lat-producer", Duration::from_secs(30)).await.unwrap();
        let mut consumer = Connection::connect(&addr, "lat-consumer", Duration::from_secs(30)).await.unwrap();
        let _ = consumer.call(fetch("latency", 0, 0, 0), 12).await;
        let _ = producer.call(produce("latency", 0, batch(0, 1, 1024)), 9).await.unwrap();
        let mut lat = Vec::with_capacity(samples);
        for (offset, i) in (1i64..).zip(0..samples) {
            let waiter = {
                let mut c = consumer;
                tokio::spawn(async move {
                    loop {
                        let a = c.call(fetch("latency", 0, offset, 1000), 12).await.unwrap();
                        if count(a.responses[0].partitions[0].records.clone()).0 > 0 {
                            return (c, Instant::now());
                        }
                    }
                })
            };
            tokio::time::sleep(Duration::from_micros(200)).await;
            let sent = Instant::now();
            producer.call(produce("latency", 0, batch(i, 1, 1024)), 9).await.unwrap();
            let (c, got) = waiter.await.unwrap();
            consumer = c;
            lat.push(got.duration_since(sent).as_secs_f64() * 1000.0);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "  end-to-end produce(acks=all) -> fetch: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({samples} messages)",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    });
    server.stop();
}
