//! Behaviour of the sled engine alone: the directory lock, directory creation, and what
//! an abort right after acknowledged writes leaves on disk.

use std::path::Path;
use std::process::{Command, Stdio};

use panoptes_storage::{Durability, Record, StorageError, Store};

fn record(i: u64) -> Record {
    Record {
        key: Some(i.to_be_bytes().to_vec()),
        value: format!("record-{i}").into_bytes(),
        timestamp_ms: i,
        headers: vec![("h".into(), vec![1])],
    }
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
fn a_directory_can_be_reopened_at_once_after_its_store_is_dropped() {
    // sled's background threads may still hold the lock file for a moment after the
    // last handle is dropped; `open` waits for them instead of failing.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let store = Store::open(dir.path()).unwrap();
        let topic = store.topic("t", 1).unwrap();
        assert_eq!(topic.append(0, &[record(i)]).unwrap(), i);
    }
}

#[test]
fn a_power_loss_durable_store_writes_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with(dir.path(), Durability::PowerLoss).unwrap();
        let topic = store.topic("t", 1).unwrap();
        assert_eq!(topic.append(0, &[record(0), record(1)]).unwrap(), 0);
        store
            .consumer_offsets()
            .unwrap()
            .commit("g", "t", 0, 1)
            .unwrap();
        let stats = store.stats().unwrap();
        assert!(stats.flushes >= 2, "{stats:?}");
    }
    let store = Store::open(dir.path()).unwrap();
    let read = store
        .topic("t", 1)
        .unwrap()
        .read(0, 0, 10, usize::MAX)
        .unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].record, record(1));
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
    assert_eq!(read[2].record, record(2));
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
    topic.append(0, &[record(0), record(1), record(2)]).unwrap();
    std::process::abort();
}
