//! `Store::stats`: sizes kept by the writers, equal to what a scan would find.

use std::time::Duration;

use panoptes_storage::{testing, PartitionStats, Store};

use crate::fixture::{engine_tests, records, Fixture, Kind};

engine_tests!(
    keyspace_counts_follow_every_kind_of_write,
    topic_partitions_show_records_bytes_and_watermarks,
    counts_are_rebuilt_after_a_restart,
    disk_use_and_flushes_are_reported,
);

const SEC: Duration = Duration::from_secs(1);

fn keyspace(store: &Store, name: &str) -> (u64, u64) {
    let stats = store.stats().unwrap();
    let ks = stats.keyspaces.iter().find(|k| k.name == name).unwrap();
    (ks.keys, ks.bytes)
}

fn keyspace_counts_follow_every_kind_of_write(kind: Kind) {
    let (store, clock) = kind.manual_store(0);
    let ks = store.keyspace("state").unwrap();
    assert_eq!(keyspace(&store, "state"), (0, 0));
    ks.put(b"a", b"0123456789", None).unwrap();
    let (keys, one) = keyspace(&store, "state");
    assert_eq!(keys, 1);
    assert!(one > 11, "key, value and envelope: {one}");
    // Same size again: same bytes; a longer value: more.
    ks.put(b"a", b"9876543210", None).unwrap();
    assert_eq!(keyspace(&store, "state"), (1, one));
    ks.put(b"b", b"0123456789", None).unwrap();
    assert_eq!(keyspace(&store, "state"), (2, 2 * one));
    ks.get_set(b"b", b"01234567890123456789", None).unwrap();
    assert_eq!(keyspace(&store, "state"), (2, 2 * one + 10));
    assert!(ks
        .compare_and_swap(b"b", Some(b"01234567890123456789"), None, None)
        .unwrap());
    assert_eq!(keyspace(&store, "state"), (1, one));
    assert!(ks
        .compare_and_swap(b"c", None, Some(b"x"), Some(SEC))
        .unwrap());
    assert_eq!(keyspace(&store, "state").0, 2);
    assert!(ks.delete(b"a").unwrap());
    assert!(!ks.delete(b"a").unwrap());
    assert_eq!(keyspace(&store, "state").0, 1);
    // Expired keys count until swept.
    clock.advance(SEC);
    assert_eq!(ks.len().unwrap(), 0);
    assert_eq!(keyspace(&store, "state").0, 1);
    assert_eq!(store.sweep_expired().unwrap(), 1);
    assert_eq!(keyspace(&store, "state"), (0, 0));
    // Raw writes (corruption tests) are counted too.
    testing::write_raw_value(&ks, b"raw", b"xyz").unwrap();
    assert_eq!(keyspace(&store, "state"), (1, 6));
    // Keyspaces are listed by name, opened or not.
    store.keyspace("another").unwrap();
    let names: Vec<String> = store
        .stats()
        .unwrap()
        .keyspaces
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, vec!["another", "state"]);
}

fn topic_partitions_show_records_bytes_and_watermarks(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let metrics = store.topic("metrics", 2).unwrap();
    store.topic("empty", 1).unwrap();
    metrics.append(0, &records(0, 10, 100)).unwrap();
    metrics.append(0, &records(10, 10, 100)).unwrap();
    metrics.append(1, &records(0, 3, 0)).unwrap();
    let chunk_bytes = |p| -> u64 {
        testing::batches(&metrics, p)
            .unwrap()
            .iter()
            .map(|c| c.bytes)
            .sum()
    };
    let expected = |bytes0: u64, low0: u64| {
        vec![
            PartitionStats {
                topic: "empty".into(),
                partition: 0,
                records: 0,
                bytes: 0,
                low: 0,
                high: 0,
            },
            PartitionStats {
                topic: "metrics".into(),
                partition: 0,
                records: 20 - low0,
                bytes: bytes0,
                low: low0,
                high: 20,
            },
            PartitionStats {
                topic: "metrics".into(),
                partition: 1,
                records: 3,
                bytes: chunk_bytes(1),
                low: 0,
                high: 3,
            },
        ]
    };
    assert_eq!(store.stats().unwrap().topics, expected(chunk_bytes(0), 0));
    let newest = testing::batches(&metrics, 0).unwrap()[1].bytes;
    metrics.apply_retention(None, Some(newest)).unwrap();
    assert_eq!(chunk_bytes(0), newest);
    assert_eq!(store.stats().unwrap().topics, expected(newest, 10));
}

fn counts_are_rebuilt_after_a_restart(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    {
        let store = fixture.store();
        let ks = store.keyspace("k").unwrap();
        for i in 0..50u32 {
            ks.put(&i.to_be_bytes(), &vec![1; i as usize], None)
                .unwrap();
        }
        store
            .topic("t", 3)
            .unwrap()
            .append(2, &records(0, 40, 50))
            .unwrap();
    }
    let before = fixture.store().stats().unwrap();
    let after = fixture.reopen().stats().unwrap();
    assert_eq!(after.keyspaces, before.keyspaces);
    assert_eq!(after.topics, before.topics);
    assert_eq!(after.keyspaces[0].keys, 50);
}

fn disk_use_and_flushes_are_reported(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("t", 1).unwrap();
    let before = store.stats().unwrap();
    topic.append(0, &records(0, 100, 1000)).unwrap();
    store.keyspace("k").unwrap().put(b"k", b"v", None).unwrap();
    store.flush().unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.durable_writes, before.durable_writes + 2);
    assert!(stats.flushes > before.flushes);
    assert!(stats.logical_bytes() > 100_000);
    match kind {
        Kind::Sled => {
            assert_eq!(stats.engine, "sled");
            assert!(stats.disk_bytes >= stats.logical_bytes(), "{stats:?}");
            assert!(stats.space_amplification().unwrap() >= 1.0);
        }
        Kind::Memory => {
            assert_eq!(stats.engine, "memory");
            assert_eq!(stats.disk_bytes, 0);
            assert_eq!(stats.space_amplification(), None);
        }
    }
}
