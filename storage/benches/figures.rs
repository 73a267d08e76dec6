//! The storage figures the README quotes: append throughput (one producer and many, with
//! group commit), read throughput, keyspace and lease operations per second, and disk
//! bytes per stored byte. Prints a table; takes about two minutes.
//!
//! Run: `cargo bench -p panoptes-storage --bench figures`. Every store lives in a
//! temporary directory under `TMPDIR` (put it on the disk you want to measure), on disk:
//! appends write segment files (and with `PowerLoss` wait for a shared `fdatasync`;
//! "appends/flush" counts how many one flush served, and is meaningful only there). `FIGURES_SECONDS` sets the time spent
//! per measurement (default 1.5). Sections: `append group reads keyspace stats space`;
//! name some after `--` to run only those.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use panoptes_storage::{Durability, Record, Store, StoreStats, Topic};

/// Retention keeps a benchmark's log from filling the disk; it runs between timed appends.
const RETAIN_BYTES: u64 = 48 * 1024 * 1024;

fn seconds() -> Duration {
    let secs = std::env::var("FIGURES_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.5);
    Duration::from_secs_f64(secs)
}

/// A record whose key, value and header come to `size` bytes (as `Record::size_bytes`
/// counts them), like a metrics group keyed by its device.
fn record(i: u64, size: usize) -> Record {
    let key = format!("device-{:06}", i % 100_000).into_bytes();
    let header = ("schema".to_owned(), b"v1".to_vec());
    let overhead = key.len() + header.0.len() + header.1.len();
    Record {
        key: Some(key),
        value: vec![b'x'; size.saturating_sub(overhead)],
        timestamp_ms: 1_700_000_000_000 + i,
        headers: vec![header],
    }
}

fn batch(size: usize, count: usize) -> Vec<Record> {
    (0..count as u64).map(|i| record(i, size)).collect()
}

fn open() -> (tempfile::TempDir, Store) {
    open_with(Durability::Process)
}

fn open_with(durability: Durability) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_with(dir.path(), durability).expect("open store");
    (dir, store)
}

fn mb(bytes: f64) -> f64 {
    bytes / 1_000_000.0
}

/// What a timed run of appends did.
struct Appended {
    records: u64,
    appends: u64,
    bytes: u64,
    elapsed: Duration,
    flushes: u64,
}

impl Appended {
    fn line(&self, label: &str) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{label:<44} {:>10.0} rec/s {:>7.1} MB/s {:>8.0} appends/s {:>6.2} appends/flush",
            self.records as f64 / secs,
            mb(self.bytes as f64 / secs),
            self.appends as f64 / secs,
            self.appends as f64 / self.flushes.max(1) as f64,
        );
    }
}

/// `producers` threads append `batch_records` records of `size` bytes per call for
/// `duration`, to their own partition or all to partition 0.
fn append_run(
    store: &Store,
    topic: &Topic,
    producers: usize,
    shared_partition: bool,
    size: usize,
    batch_records: usize,
    duration: Duration,
) -> Appended {
    let records = Arc::new(batch(size, batch_records));
    let bytes_per_batch: u64 = records.iter().map(|r| r.size_bytes() as u64).sum();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(producers + 1));
    let flushes_before = store.stats().expect("stats").flushes;
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let (topic, records, stop, start) = (
                topic.clone(),
                Arc::clone(&records),
                Arc::clone(&stop),
                Arc::clone(&start),
            );
            let partition = if shared_partition { 0 } else { p as u32 };
            std::thread::spawn(move || {
                start.wait();
                let mut appends = 0u64;
                let mut since_retention = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    topic.append(partition, &records).expect("append");
                    appends += 1;
                    since_retention += bytes_per_batch;
                    if since_retention > RETAIN_BYTES / 4 {
                        topic
                            .apply_retention(None, Some(RETAIN_BYTES))
                            .expect("retention");
                        since_retention = 0;
                    }
                }
                appends
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let appends: u64 = threads.into_iter().map(|t| t.join().expect("join")).sum();
    let elapsed = began.elapsed();
    Appended {
        records: appends * batch_records as u64,
        appends,
        bytes: appends * bytes_per_batch,
        elapsed,
        flushes: store.stats().expect("stats").flushes - flushes_before,
    }
}

fn single_producer(duration: Duration) {
    println!("\n== Append, one producer, acknowledged after flush ==");
    for size in [200, 1024, 2048] {
        for batch_records in [1, 100, 1000] {
            let (_dir, store) = open();
            let topic = store.topic("bench", 1).expect("topic");
            append_run(&store, &topic, 1, false, size, batch_records, duration)
                .line(&format!("{size} B records, batch {batch_records}"));
        }
    }
}

fn group_commit(duration: Duration) {
    println!("\n== Append, many producers, group commit (1 KB records) ==");
    for (batch_records, producers) in [(1, [1, 4, 16]), (100, [1, 4, 16]), (1000, [1, 2, 4])] {
        for producers in producers {
            let (_dir, store) = open();
            let topic = store.topic("bench", 16).expect("topic");
            append_run(
                &store,
                &topic,
                producers,
                false,
                1024,
                batch_records,
                duration,
            )
            .line(&format!(
                "{producers:>2} producers, own partitions, batch {batch_records}"
            ));
        }
    }
    for batch_records in [1, 100] {
        let (_dir, store) = open();
        let topic = store.topic("bench", 1).expect("topic");
        append_run(&store, &topic, 16, true, 1024, batch_records, duration).line(&format!(
            "16 producers, one partition, batch {batch_records}"
        ));
    }
    println!("\n== Same, Durability::PowerLoss (fdatasync per flush) ==");
    for (batch_records, producers) in [(1, [1, 16]), (1000, [1, 4])] {
        for producers in producers {
            let (_dir, store) = open_with(Durability::PowerLoss);
            let topic = store.topic("bench", 16).expect("topic");
            append_run(
                &store,
                &topic,
                producers,
                false,
                1024,
                batch_records,
                duration,
            )
            .line(&format!(
                "{producers:>2} producers, own partitions, batch {batch_records}"
            ));
        }
    }
}

fn reads(duration: Duration) {
    println!("\n== Read (1 KB records, 1000 per read, warm cache) ==");
    let (_dir, store) = open();
    let topic = store.topic("bench", 1).expect("topic");
    let records = batch(1024, 1000);
    for _ in 0..40 {
        topic.append(0, &records).expect("append");
    }
    let high = topic.high_watermark(0).expect("high");
    let began = Instant::now();
    let (mut read, mut bytes, mut from) = (0u64, 0u64, 0u64);
    while began.elapsed() < duration {
        let got = topic.read(0, from, 1000, 4 << 20).expect("read");
        read += got.len() as u64;
        bytes += got
            .iter()
            .map(|r| r.record.size_bytes() as u64)
            .sum::<u64>();
        from = got.last().map_or(high, |r| r.offset + 1);
        if from >= high {
            from = 0;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>10.0} rec/s {:>7.1} MB/s",
        "sequential reads",
        read as f64 / secs,
        mb(bytes as f64 / secs)
    );
}

fn ops(label: &str, duration: Duration, mut op: impl FnMut(u64)) {
    let began = Instant::now();
    let mut n = 0u64;
    while began.elapsed() < duration {
        for _ in 0..100 {
            op(n);
            n += 1;
        }
    }
    println!(
        "{label:<44} {:>10.0} ops/s",
        n as f64 / began.elapsed().as_secs_f64()
    );
}

fn keyspaces_and_leases(duration: Duration) {
    println!("\n== Keyspace (100 B values, 100k keys) and leases ==");
    let (_dir, store) = open();
    let ks = store.keyspace("bench").expect("keyspace");
    let value = vec![b'v'; 100];
    let key = |n: u64| format!("resource-{:06}", n % 100_000).into_bytes();
    ops("put", duration, |n| {
        ks.put(&key(n), &value, None).expect("put")
    });
    ops("put with TTL", duration, |n| {
        ks.put(&key(n), &value, Some(Duration::from_secs(600)))
            .expect("put")
    });
    ops("get", duration, |n| {
        ks.get(&key(n * 7919)).expect("get");
    });
    ops("compare_and_swap (absent -> value)", duration, |n| {
        let k = format!("cas-{n}").into_bytes();
        ks.compare_and_swap(&k, None, Some(&value), None)
            .expect("cas");
    });
    let leases = store.leases();
    ops("lease acquire + release, 1 thread", duration, |n| {
        let name = format!("plugin/resource-{}", n % 1000);
        let lease = leases
            .acquire(&name, "bench", Duration::from_secs(60))
            .expect("acquire")
            .expect("free");
        leases.release(&lease).expect("release");
    });
    let began = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let leases = store.leases();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while began.elapsed() < duration {
                    let name = format!("plugin/resource-{t}-{}", n % 1000);
                    let lease = leases
                        .acquire(&name, "bench", Duration::from_secs(60))
                        .expect("acquire")
                        .expect("free");
                    leases.release(&lease).expect("release");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let n: u64 = threads.into_iter().map(|t| t.join().expect("join")).sum();
    println!(
        "{:<44} {:>10.0} ops/s",
        "lease acquire + release, 8 threads",
        n as f64 / began.elapsed().as_secs_f64()
    );
}

fn stats_cost(duration: Duration) {
    println!("\n== Store::stats (what /metrics calls on every scrape) ==");
    let (_dir, store) = open();
    for k in 0..10 {
        let ks = store.keyspace(&format!("keyspace-{k}")).expect("keyspace");
        for n in 0..1000u32 {
            ks.put(&n.to_be_bytes(), b"value", None).expect("put");
        }
    }
    for t in 0..10 {
        let topic = store.topic(&format!("topic-{t}"), 16).expect("topic");
        for p in 0..16 {
            topic.append(p, &batch(200, 10)).expect("append");
        }
    }
    let began = Instant::now();
    let mut calls = 0u64;
    while began.elapsed() < duration {
        std::hint::black_box(store.stats().expect("stats"));
        calls += 1;
    }
    println!(
        "{:<44} {:>10.1} us per call",
        "10 keyspaces, 10 topics x 16 partitions",
        began.elapsed().as_secs_f64() * 1e6 / calls as f64
    );
}

fn amplification_line(label: &str, stats: &StoreStats) {
    println!(
        "{label:<44} {:>8.1} MB logical {:>8.1} MB disk {:>6.2} disk/logical",
        mb(stats.logical_bytes() as f64),
        mb(stats.disk_bytes as f64),
        stats.space_amplification().unwrap_or(0.0)
    );
}

fn space() {
    println!("\n== Disk bytes per stored byte (sled) ==");
    for (label, keys, value_bytes, ttl) in [
        ("keyspace, 200k keys, 8 B values", 200_000, 8, None),
        ("keyspace, 200k keys, 100 B values", 200_000, 100, None),
        (
            "keyspace, 200k keys, 100 B values, TTL",
            200_000,
            100,
            Some(Duration::from_secs(3600)),
        ),
        ("keyspace, 50k keys, 1 KB values", 50_000, 1000, None),
    ] {
        let (_dir, store) = open();
        let ks = store.keyspace("bench").expect("keyspace");
        let value = vec![b'v'; value_bytes];
        for n in 0..keys {
            ks.put(format!("resource-{n:08}").as_bytes(), &value, ttl)
                .expect("put");
        }
        store.flush().expect("flush");
        amplification_line(label, &store.stats().expect("stats"));
        for round in 0..3 {
            for n in 0..keys {
                let mut v = value.clone();
                v[0] = round;
                ks.put(format!("resource-{n:08}").as_bytes(), &v, ttl)
                    .expect("put");
            }
        }
        store.flush().expect("flush");
        amplification_line(
            "  after overwriting every key 3 times",
            &store.stats().expect("stats"),
        );
    }
    for size in [200, 1024] {
        let records = batch(size, 1000);
        let per_batch: u64 = records.iter().map(|r| r.size_bytes() as u64).sum();
        let (_dir, store) = open();
        let topic = store.topic("bench", 1).expect("topic");
        let mut written = 0;
        while written < 64 << 20 {
            topic.append(0, &records).expect("append");
            written += per_batch;
        }
        amplification_line(
            &format!("topic, 64 MB of {size} B records"),
            &store.stats().expect("stats"),
        );
        // Steady state: retention at 32 MB after every append, 10 times that written.
        let (_dir, store) = open();
        let topic = store.topic("bench", 1).expect("topic");
        let mut written = 0;
        while written < 320 << 20 {
            topic.append(0, &records).expect("append");
            written += per_batch;
            topic
                .apply_retention(None, Some(32 << 20))
                .expect("retention");
        }
        amplification_line(
            "  retention 32 MB, after 320 MB written",
            &store.stats().expect("stats"),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no argument
    // and should not take minutes.
    if !std::env::args().any(|a| a == "--bench") {
        println!("figures: run with `cargo bench -p panoptes-storage --bench figures`");
        return;
    }
    let duration = seconds();
    println!(
        "panoptes-storage figures ({} cores, {:.1} s per line, store in {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        duration.as_secs_f64(),
        std::env::temp_dir().display()
    );
    // `cargo bench -p panoptes-storage --bench figures -- reads stats` runs only those.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    if run("append") {
        single_producer(duration);
    }
    if run("group") {
        group_commit(duration);
    }
    if run("reads") {
        reads(duration);
    }
    if run("keyspace") {
        keyspaces_and_leases(duration);
    }
    if run("stats") {
        stats_cost(duration);
    }
    if run("space") {
        space();
    }
}
