//! Hot paths of the storage: topic append (flushed per call) and keyspace put/get.
//!
//! Run: `cargo bench -p panoptes-storage --bench topic_append`. The store lives in a
//! temporary directory on the disk that holds `TMPDIR`, so append figures include a
//! real flush.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use panoptes_storage::{Record, Store};

/// Retention keeps the benchmark's log from filling the disk; it runs outside the timer.
const RETAIN_BYTES: u64 = 32 * 1024 * 1024;

fn records(count: usize, value_bytes: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            key: Some(format!("device-{i}").into_bytes()),
            value: vec![b'x'; value_bytes],
            timestamp_ms: i as u64,
            headers: vec![],
        })
        .collect()
}

fn topic_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(dir.path()).expect("open store");
    let topic = store.topic("bench", 1).expect("topic");
    let mut group = c.benchmark_group("topic_append");
    for (count, value_bytes) in [(1, 500), (100, 500), (1000, 500)] {
        let batch = records(count, value_bytes);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(format!("{count}x{value_bytes}B"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    topic.append(0, &batch).expect("append");
                    timed += start.elapsed();
                    if topic.high_watermark(0).expect("hw") % 50_000 < count as u64 {
                        topic
                            .apply_retention(None, Some(RETAIN_BYTES))
                            .expect("retention");
                    }
                }
                timed
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("topic_read");
    topic.append(0, &records(1000, 500)).expect("append");
    let from = topic.high_watermark(0).expect("hw") - 1000;
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000x500B", |b| {
        b.iter(|| topic.read(0, from, 1000, usize::MAX).expect("read"))
    });
    group.finish();
}

fn keyspace_put(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(dir.path()).expect("open store");
    let keyspace = store.keyspace("bench").expect("keyspace");
    let value = vec![b'v'; 100];
    let mut group = c.benchmark_group("keyspace");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("put 100B", |b| {
        b.iter(|| {
            i += 1;
            keyspace
                .put(format!("key-{}", i % 10_000).as_bytes(), &value, None)
                .expect("put")
        })
    });
    group.bench_function("put 100B with ttl", |b| {
        b.iter(|| {
            i += 1;
            keyspace
                .put(
                    format!("key-{}", i % 10_000).as_bytes(),
                    &value,
                    Some(Duration::from_secs(600)),
                )
                .expect("put")
        })
    });
    group.bench_function("get 100B", |b| {
        b.iter(|| {
            i += 1;
            keyspace
                .get(format!("key-{}", i % 10_000).as_bytes())
                .expect("get")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = topic_append, keyspace_put
}
criterion_main!(benches);
