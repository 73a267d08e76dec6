//! Group commit: concurrent appends share flushes, and keep their order per partition.

use std::collections::HashMap;
use std::time::Duration;

use panoptes_storage::{testing, Durability, Record, Store};

use crate::fixture::{engine_tests, Kind};

engine_tests!(concurrent_producers_share_flushes_and_keep_their_order);

/// A store whose appends wait for flushes slow enough that concurrent producers overlap:
/// sled with `Durability::PowerLoss` (an `fdatasync` per flush), or the memory engine
/// with a 2 ms flush. (With `Durability::Process`, appends are acknowledged once written
/// to their segment file and never wait for a flush.)
fn store(kind: Kind) -> (Store, Option<tempfile::TempDir>) {
    match kind {
        Kind::Sled => {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_with(dir.path(), Durability::PowerLoss).unwrap();
            (store, Some(dir))
        }
        Kind::Memory => (
            testing::memory_with_flush_delay(Duration::from_millis(2)),
            None,
        ),
    }
}

fn tagged(producer: u64, seq: u64) -> Record {
    Record {
        key: Some(producer.to_be_bytes().to_vec()),
        value: seq.to_be_bytes().to_vec(),
        timestamp_ms: 0,
        headers: vec![],
    }
}

fn tag(record: &Record) -> (u64, u64) {
    let producer = u64::from_be_bytes(record.key.as_deref().unwrap().try_into().unwrap());
    let seq = u64::from_be_bytes(record.value.as_slice().try_into().unwrap());
    (producer, seq)
}

fn concurrent_producers_share_flushes_and_keep_their_order(kind: Kind) {
    const PRODUCERS: u64 = 8;
    const APPENDS: u64 = 25;
    const BATCH: u64 = 3;
    let (store, _dir) = store(kind);
    let topic = store.topic("t", 2).unwrap();
    let before = store.stats().unwrap();
    let threads: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let topic = topic.clone();
            std::thread::spawn(move || {
                let partition = (p % 2) as u32;
                let mut acks = Vec::new();
                for a in 0..APPENDS {
                    let batch: Vec<Record> = (0..BATCH).map(|i| tagged(p, a * BATCH + i)).collect();
                    let base = topic.append(partition, &batch).unwrap();
                    // Acknowledged: readable at once, at the offsets given.
                    assert!(topic.high_watermark(partition).unwrap() >= base + BATCH);
                    acks.push((partition, base, a * BATCH));
                }
                acks
            })
        })
        .collect();
    let acks: Vec<(u32, u64, u64)> = threads
        .into_iter()
        .enumerate()
        .flat_map(|(p, t)| {
            t.join()
                .unwrap()
                .into_iter()
                .map(move |(part, base, seq)| (part, base, seq + (p as u64) * 1_000_000))
        })
        .collect();

    let stats = store.stats().unwrap();
    let appends = PRODUCERS * APPENDS;
    assert_eq!(stats.durable_writes - before.durable_writes, appends);
    let flushes = stats.flushes - before.flushes;
    eprintln!("{kind:?}: {appends} appends acknowledged with {flushes} flushes");
    assert!(flushes >= 1 && flushes <= appends);
    if kind == Kind::Memory {
        // Eight producers, each flush 2 ms long: followers queue behind every flush.
        assert!(flushes < appends, "no flush was shared");
    }

    for partition in 0..2u32 {
        let all = topic.read(partition, 0, usize::MAX, usize::MAX).unwrap();
        let expected = (PRODUCERS / 2) * APPENDS * BATCH;
        assert_eq!(topic.high_watermark(partition).unwrap(), expected);
        let offsets: Vec<u64> = all.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..expected).collect::<Vec<_>>());
        // Each producer's records are in its order, none lost or repeated.
        let mut next: HashMap<u64, u64> = HashMap::new();
        for stored in &all {
            let (producer, seq) = tag(&stored.record);
            let want = next.entry(producer).or_insert(0);
            assert_eq!(
                seq, *want,
                "producer {producer} at offset {}",
                stored.offset
            );
            *want += 1;
        }
        assert!(next.values().all(|&n| n == APPENDS * BATCH));
    }
    // Every acknowledged base offset holds the batch it acknowledged.
    for (partition, base, seq) in acks {
        let (producer, seq) = (seq / 1_000_000, seq % 1_000_000);
        let got = topic
            .read(partition, base, BATCH as usize, usize::MAX)
            .unwrap();
        let tags: Vec<(u64, u64)> = got.iter().map(|s| tag(&s.record)).collect();
        let want: Vec<(u64, u64)> = (0..BATCH).map(|i| (producer, seq + i)).collect();
        assert_eq!(tags, want);
    }
}
