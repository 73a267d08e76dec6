//! What survives closing and reopening the store, and a crash right after an append.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{record, records};
use panoptes_storage::{ManualClock, StorageError, Store};

#[test]
fn topics_keyspaces_and_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(50_000));
    {
        let store = Store::open(dir.path()).unwrap().with_clock(clock.clone());
        let topic = store.topic("metrics", 2).unwrap();
        topic.append(0, &records(0, 1500, 0)).unwrap();
        topic.append(1, &records(0, 3, 0)).unwrap();
        let ks = store.keyspace("state").unwrap();
        ks.put(b"plain", b"v", None).unwrap();
        ks.put(b"ttl", b"t", Some(Duration::from_secs(10))).unwrap();
        let offsets = store.consumer_offsets().unwrap();
        offsets.commit("influx", "metrics", 0, 1200).unwrap();
        offsets.commit("influx", "metrics", 0, 1300).unwrap();
        offsets.commit("other", "metrics", 1, 2).unwrap();
    }
    let store = Store::open(dir.path()).unwrap().with_clock(clock.clone());
    let topic = store.topic("metrics", 5).unwrap();
    assert_eq!(topic.partitions(), 2, "the stored partition count wins");
    assert_eq!(topic.high_watermark(0).unwrap(), 1500);
    assert_eq!(topic.high_watermark(1).unwrap(), 3);
    let all = topic.read(0, 0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(all.len(), 1500);
    for stored in &all {
        assert_eq!(stored.record, record(stored.offset, 0));
    }
    // New appends carry on from the old high watermark.
    assert_eq!(topic.append(0, &records(1500, 1, 0)).unwrap(), 1500);
    assert_eq!(store.topic_names().unwrap(), vec!["metrics"]);

    let ks = store.keyspace("state").unwrap();
    assert_eq!(ks.get(b"plain").unwrap(), Some(b"v".to_vec()));
    assert_eq!(
        ks.ttl_remaining(b"ttl").unwrap(),
        Some(Duration::from_secs(10))
    );
    // The expiry index survived too: the sweep finds the key after the restart.
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.sweep_expired().unwrap(), 1);

    let offsets = store.consumer_offsets().unwrap();
    assert_eq!(
        offsets.committed("influx", "metrics", 0).unwrap(),
        Some(1300)
    );
    assert_eq!(offsets.committed("other", "metrics", 1).unwrap(), Some(2));
    assert_eq!(offsets.committed("influx", "metrics", 1).unwrap(), None);
    assert_eq!(offsets.committed("nobody", "metrics", 0).unwrap(), None);
}

#[test]
fn watermarks_survive_retention_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let topic = store.topic("t", 2).unwrap();
        topic.append(0, &records(0, 10, 0)).unwrap();
        topic.append(0, &records(10, 10, 0)).unwrap();
        // Bigger records: this chunk alone is over the limit below.
        topic.append(1, &records(0, 7, 500)).unwrap();
        // Partition 0 keeps its newest chunk, partition 1 is emptied.
        let newest = panoptes_storage::testing::chunks(&topic, 0).unwrap()[1].bytes;
        assert_eq!(topic.apply_retention(None, Some(newest)).unwrap(), 10 + 7);
    }
    let store = Store::open(dir.path()).unwrap();
    let topic = store.topic("t", 2).unwrap();
    assert_eq!(topic.low_watermark(0).unwrap(), 10);
    assert_eq!(topic.high_watermark(0).unwrap(), 20);
    assert_eq!(topic.low_watermark(1).unwrap(), 7);
    assert_eq!(
        topic.high_watermark(1).unwrap(),
        7,
        "offsets do not restart from 0"
    );
    assert_eq!(topic.append(1, &records(7, 1, 0)).unwrap(), 7);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    match Store::open(dir.path()) {
        Err(e @ StorageError::Locked { .. }) => {
            assert!(e.to_string().contains(&dir.path().display().to_string()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c");
    Store::open(&nested).unwrap();
    assert!(nested.is_dir());
}

/// Set in the child process of `an_acknowledged_append_survives_a_crash`.
const CRASH_DIR_ENV: &str = "PANOPTES_STORAGE_CRASH_TEST_DIR";

/// In the child: write, then abort without any destructor or
/// flush-on-drop running. In the parent (a normal test run): run the child, then check.
#[test]
fn an_acknowledged_append_survives_a_crash() {
    if let Some(dir) = std::env::var_os(CRASH_DIR_ENV) {
        crash_after_writes(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_acknowledged_append_survives_a_crash",
            "--nocapture",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was expected to abort");

    let store = Store::open(dir.path()).unwrap();
    let topic = store.topic("t", 1).unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 3);
    let read = topic.read(0, 0, 10, usize::MAX).unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(read[2].record, record(2, 0));
    let offsets = store.consumer_offsets().unwrap();
    assert_eq!(offsets.committed("g", "t", 0).unwrap(), Some(2));
    assert_eq!(
        store.keyspace("k").unwrap().get(b"key").unwrap(),
        Some(b"v".to_vec())
    );
}

fn crash_after_writes(dir: &Path) -> ! {
    let store = Store::open(dir).unwrap();
    let topic = store.topic("t", 1).unwrap();
    store
        .keyspace("k")
        .unwrap()
        .put(b"key", b"v", None)
        .unwrap();
    store.flush().unwrap();
    store
        .consumer_offsets()
        .unwrap()
        .commit("g", "t", 0, 2)
        .unwrap();
    // Last, so that only its own flush can have saved it.
    topic.append(0, &records(0, 3, 0)).unwrap();
    std::process::abort();
}
