//! A full disk for real (a tmpfs of the test's own, filled up), on the sled engine:
//! the topic log refuses appends with the error and recovers by itself once space is
//! back, while sled keeps working in the space reserved ahead of its log; and what
//! sled 0.34.7 does once one of its own writes fails (it refuses every write until the
//! database is reopened), reported as a failure that needs a restart.
//!
//! These tests mount a tmpfs: they need root (or CAP_SYS_ADMIN) and fail otherwise.

use panoptes_storage::testing::Tmpfs;
use panoptes_storage::{Health, HealthChanges, Record, StorageError, Store};

fn record(i: u64, bytes: usize) -> Record {
    let mut value = format!("record-{i}-").into_bytes();
    value.resize(bytes, b'#');
    Record {
        key: None,
        value,
        timestamp_ms: i,
        headers: vec![],
    }
}

#[test]
fn a_full_disk_refuses_appends_keeps_the_database_working_and_recovers() {
    let fs = Tmpfs::mount(64);
    let dir = fs.path().join("data");
    {
        let store = Store::open(&dir).unwrap();
        let topic = store.topic("t", 1).unwrap();
        let offsets = store.consumer_offsets().unwrap();
        let state = store.keyspace("state").unwrap();
        topic
            .append(0, &[record(0, 1000), record(1, 1000)])
            .unwrap();

        let filler = fs.fill("filler");
        let big: Vec<Record> = (2..300).map(|i| record(i, 1000)).collect();
        let err = topic.append(0, &big).unwrap_err();
        match &err {
            StorageError::Write { path, source } => {
                assert_eq!(path, "topics/t/0/00000000000000000000.log");
                assert_eq!(source.raw_os_error(), Some(28));
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        assert_eq!(
            store.health(),
            Health::WritesFailing {
                reason: "No space left on device (os error 28) writing \
                         topics/t/0/00000000000000000000.log"
                    .into()
            }
        );
        // The database writes into the space kept ahead of its log: offsets, keyspaces
        // and flushes go on while the disk is full.
        for i in 0..200u64 {
            state.put(&i.to_be_bytes(), &[7u8; 200], None).unwrap();
        }
        offsets.commit("g", "t", 0, 2).unwrap();
        store.flush().unwrap();
        assert_eq!(
            store.check(),
            store.health(),
            "the probe cannot write either"
        );
        assert!(matches!(store.health(), Health::WritesFailing { .. }));

        // Failing once, however many writes failed.
        let changes = |store: &Store| store.stats().unwrap().health_changes;
        assert_eq!(
            changes(&store),
            HealthChanges {
                writes_failing: 1,
                ok: 0,
                failed: 0
            }
        );

        // Space back: the periodic probe clears the condition with nothing else writing.
        std::fs::remove_file(filler).unwrap();
        assert_eq!(store.check(), Health::Ok);
        assert_eq!(
            changes(&store),
            HealthChanges {
                writes_failing: 1,
                ok: 1,
                failed: 0
            }
        );
        assert_eq!(topic.append(0, &big).unwrap(), 2);
    }
    let store = Store::open(&dir).unwrap();
    let read = store
        .topic("t", 1)
        .unwrap()
        .read(0, 0, 1000, usize::MAX)
        .unwrap();
    assert_eq!(read.len(), 300);
    for (i, stored) in read.iter().enumerate() {
        assert_eq!(stored.offset, i as u64);
        assert_eq!(stored.record, record(i as u64, 1000));
    }
    assert_eq!(
        store
            .consumer_offsets()
            .unwrap()
            .committed("g", "t", 0)
            .unwrap(),
        Some(2)
    );
    assert_eq!(store.keyspace("state").unwrap().len().unwrap(), 200);
}

/// What sled does when one of its writes meets a full disk: every later write fails,
/// even once space is back, until the database is reopened. The store reports it as a
/// failure (restart the process), and a reopen brings back everything flushed before.
#[test]
fn sled_refuses_every_write_after_a_failed_one_until_reopened() {
    let fs = Tmpfs::mount(64);
    let dir = fs.path().join("data");
    let flushed = {
        let store = Store::open(&dir).unwrap();
        let state = store.keyspace("state").unwrap();
        let filler = fs.fill("filler");
        // Past the space reserved ahead of sled's log (16 MiB), a few MiB at a time.
        let value = vec![3u8; 1000];
        let mut flushed = 0u64;
        let mut failed = None;
        'fill: for round in 0..100u64 {
            for i in 0..4096u64 {
                if let Err(e) = state.put(&(round * 4096 + i).to_be_bytes(), &value, None) {
                    failed = Some(e);
                    break 'fill;
                }
            }
            if let Err(e) = store.flush() {
                failed = Some(e);
                break;
            }
            flushed = (round + 1) * 4096;
        }
        let failed = failed.expect("sled never met the full disk");
        assert!(
            failed.to_string().contains("No space left on device"),
            "{failed}"
        );
        let Health::Failed { reason } = store.health() else {
            panic!("expected Failed, got {:?}", store.health());
        };
        assert!(
            reason
                .starts_with("the database (sled) refuses every write since one to its log failed")
                && reason.contains("No space left on device")
                && reason.ends_with("sled keeps that error until the database is reopened"),
            "{reason}"
        );
        // Space back: sled still refuses (with the error it kept), and so does the store.
        std::fs::remove_file(filler).unwrap();
        let again = state.put(b"after", b"x", None).unwrap_err();
        assert!(
            again.to_string().contains("No space left on device"),
            "{again}"
        );
        let commit = store.consumer_offsets().unwrap().commit("g", "t", 0, 1);
        assert!(
            commit
                .as_ref()
                .is_err_and(|e| e.to_string().contains("No space left on device")),
            "{commit:?}"
        );
        assert!(matches!(store.check(), Health::Failed { .. }));
        assert!(matches!(store.flush(), Err(StorageError::Failed { .. })));
        assert_eq!(store.stats().unwrap().health_changes.failed, 1);
        flushed
    };
    // A new open (what a restart does) works again, with every flushed write.
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.health(), Health::Ok);
    let state = store.keyspace("state").unwrap();
    assert!(state.len().unwrap() as u64 >= flushed);
    state.put(b"after", b"x", None).unwrap();
    store.flush().unwrap();
}
