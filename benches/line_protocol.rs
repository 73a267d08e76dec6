//! The InfluxDB sink's hot paths, with figures printed:
//!
//! - line-protocol encoding, points per second on one core (target: >= 1,000,000), for the
//!   conformance interface group (40 fields, 15 tags, integers) and the same group with
//!   float values (rates), from a parsed record and from the record's JSON bytes;
//! - end to end, topic log -> consumer -> gzip -> HTTP -> VictoriaMetrics, points per second,
//!   through `/write` (v1) and `/api/v2/write` (v2), with a VictoriaMetrics started here on a
//!   free loopback port (Debian package `victoria-metrics`; the end-to-end part fails with
//!   the install command when it is missing).
//!
//! `cargo bench --bench line_protocol`; `-- --quick` for a shorter run.

use std::sync::Arc;
use std::time::{Duration, Instant};

// The tests' servers: one way to start VictoriaMetrics.
#[path = "../tests/influx_support/mod.rs"]
mod influx_support;
#[path = "../tests/support/mod.rs"]
mod support;

use actix::Actor;
use criterion::{black_box, Criterion, Throughput};
use panoptes::bus::{Bus, Message, TopicSource};
use panoptes::config::{InfluxApi, Settings};
use panoptes::sink::{consumer_config, writer, Encoder, GroupRecord, InfluxSink, GROUP};
use panoptes::telemetry::Telemetry;
use panoptes_actors::{Consumer, GetConsumerStats};
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance/influxdb_consumer/basic/metrics_group.json"
);

fn fixture() -> Value {
    let text = std::fs::read_to_string(FIXTURE)
        .unwrap_or_else(|e| panic!("{FIXTURE}: {e} (shared/ must sit beside the clone)"));
    serde_json::from_str(&text).unwrap()
}

/// The fixture with every metric value a float, as rates are.
fn with_floats(mut group: Value) -> Value {
    for (i, m) in group["metrics"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        m["metric_value"] = (1234.5678 * (i as f64 + 1.0) / 7.0).into();
    }
    group
}

/// Points per second of `f` on this thread, over about `for_how_long`.
fn rate(for_how_long: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < for_how_long {
        for _ in 0..1000 {
            f();
        }
        n += 1000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn encoding(c: &mut Criterion) {
    let mut figures = Vec::new();
    for (name, group) in [("integers", fixture()), ("floats", with_floats(fixture()))] {
        let json = serde_json::to_vec(&group).unwrap();
        let record = GroupRecord::parse(&json).unwrap();
        let mut encoder = Encoder::new();
        let mut out = Vec::with_capacity(4096);
        let mut g = c.benchmark_group(format!("line_protocol/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                encoder.encode(black_box(&record), &mut out).unwrap();
                black_box(out.len())
            })
        });
        g.bench_function("parse_and_encode", |b| {
            b.iter(|| {
                out.clear();
                let record = GroupRecord::parse(black_box(&json)).unwrap();
                encoder.encode(&record, &mut out).unwrap();
                black_box(out.len())
            })
        });
        g.finish();
        let encode = rate(Duration::from_secs(2), || {
            out.clear();
            encoder.encode(black_box(&record), &mut out).unwrap();
        });
        let both = rate(Duration::from_secs(2), || {
            out.clear();
            let record = GroupRecord::parse(black_box(&json)).unwrap();
            encoder.encode(&record, &mut out).unwrap();
        });
        figures.push(format!(
            "encode ({name}, {} bytes/point): {:>10.0} points/s; parse JSON + encode: {:>9.0} points/s",
            out.len(),
            encode,
            both
        ));
    }
    println!("\n== line protocol on one core ==");
    for f in figures {
        println!("{f}");
    }
}

/// `points` distinct interface groups (48 interfaces x N polls) on a fresh topic.
fn fill_topic(bus: &Bus, points: usize) {
    let base = fixture();
    let mut messages = Vec::with_capacity(1000);
    for i in 0..points {
        let mut g = base.clone();
        g["metrics_group_creation_timestamp"] = (1_700_000_000.0 + (i / 48) as f64 * 60.0).into();
        for d in g["dimensions"].as_array_mut().unwrap() {
            if d["dimension_name"] == "interface_name" {
                d["dimension_value"] = format!("Ethernet1/{}", i % 48).into();
            }
        }
        messages.push(Message {
            key: "network:switch:cisco".into(),
            partition_key: String::new(),
            value: serde_json::to_vec(&g).unwrap(),
        });
        if messages.len() == 1000 {
            bus.publish("bench-processed", std::mem::take(&mut messages), 0)
                .unwrap();
        }
    }
    bus.publish("bench-processed", messages, 0).unwrap();
}

/// Topic -> VictoriaMetrics through the sink's consumer; returns points/s.
fn end_to_end(
    vm: &influx_support::Server,
    api: InfluxApi,
    batch_size: usize,
    points: usize,
) -> f64 {
    let store = panoptes_storage::Store::temporary().unwrap();
    let bus = Bus::new(store.clone(), 1);
    fill_topic(&bus, points);
    let mut settings = Settings::load(None).unwrap().influxdb;
    settings.url = format!("http://127.0.0.1:{}", vm.port);
    settings.api = api;
    settings.batch_size = batch_size;
    // Measure the drain: the last partial batch goes out at once instead of waiting for
    // max_emit_interval.
    settings.max_emit_interval = 0;
    let topic = bus.topic("bench-processed").unwrap();
    let offsets = store.consumer_offsets().unwrap();
    actix::System::new().block_on(async move {
        let started = Instant::now();
        let consumer = Consumer::new(
            "bench",
            TopicSource {
                topic,
                partition: 0,
                group: GROUP.into(),
                offsets,
                committed: Arc::default(),
                appended: None,
            },
            InfluxSink::new(writer(&settings).unwrap(), Arc::new(Telemetry::default())),
            consumer_config(&settings),
        )
        .start();
        loop {
            let stats = consumer.send(GetConsumerStats).await.unwrap();
            if stats.committed == Some(points as u64) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "end to end stalled: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        points as f64 / started.elapsed().as_secs_f64()
    })
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    encoding(&mut c);
    c.final_summary();
    // `cargo test --benches` runs bench targets in test mode: skip the server part there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let vm = influx_support::Server::victoria_metrics();
    let points = 48 * 200;
    println!("\n== end to end: topic -> sink -> VictoriaMetrics ({points} points, 1 partition) ==");
    for (api, label) in [
        (InfluxApi::V1, "v1 /write"),
        (InfluxApi::V2, "v2 /api/v2/write"),
    ] {
        for batch in [200, 1000] {
            let r = end_to_end(&vm, api, batch, points);
            println!("{label:<18} batch_size {batch:>4}: {r:>8.0} points/s");
        }
    }
}
