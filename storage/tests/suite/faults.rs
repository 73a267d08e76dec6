//! I/O faults injected under the topic log (`testing::Faults`): a full disk or an I/O
//! error on a write is refused with its error, leaves nothing behind, is reported by
//! `Store::health` and clears with the next write that succeeds; a failed `fsync` fails
//! the store for good; with `PowerLoss` an append returns only after the syncs that
//! cover it, names of new files included.

use crate::fixture::{engine_tests, record, records, Fixture, Kind};
use panoptes_storage::{testing, Durability, Health, StorageError, Topic};

engine_tests!(
    a_failed_write_is_refused_kept_nowhere_and_cleared_by_the_next_success,
    a_disk_filling_up_in_the_middle_of_an_append_leaves_nothing_of_it,
    the_probe_clears_the_condition_once_space_is_back_when_nothing_writes,
    a_failed_fdatasync_fails_the_store_for_good,
    a_failed_directory_fsync_fails_the_store,
    a_failed_write_that_cannot_be_cut_back_fails_the_store,
    with_power_loss_durability_appends_return_after_their_syncs_and_new_names_are_synced,
    with_process_durability_nothing_is_synced,
);

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

fn offsets_and_values(topic: &Topic) -> Vec<(u64, Vec<u8>)> {
    topic
        .read(0, 0, usize::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| (r.offset, r.record.value))
        .collect()
}

fn expected(from: u64, count: u64, pad: usize) -> Vec<(u64, Vec<u8>)> {
    (from..from + count)
        .map(|i| (i, record(i, pad).value))
        .collect()
}

fn a_failed_write_is_refused_kept_nowhere_and_cleared_by_the_next_success(kind: Kind) {
    for (errno, text) in [
        (ENOSPC, "No space left on device (os error 28)"),
        (EIO, "Input/output error (os error 5)"),
    ] {
        let (fixture, faults) = Fixture::new(kind, 0).with_faults(Durability::Process);
        let store = fixture.store();
        let topic = store.topic("t", 1).unwrap();
        topic.append(0, &records(0, 5, 0)).unwrap();

        faults.fail_writes(errno);
        let reason = format!("{text} writing topics/t/0/00000000000000000000.log");
        match topic.append(0, &records(5, 5, 0)) {
            Err(e @ StorageError::Write { .. }) => assert_eq!(e.to_string(), reason),
            other => panic!("expected a write error, got {other:?}"),
        }
        assert_eq!(
            store.health(),
            Health::WritesFailing {
                reason: reason.clone()
            }
        );
        // Refused again while the disk stays full; nothing of either attempt is seen.
        assert!(matches!(
            topic.append(0, &records(5, 5, 0)),
            Err(StorageError::Write { .. })
        ));
        assert_eq!(topic.high_watermark(0).unwrap(), 5);
        assert_eq!(offsets_and_values(&topic), expected(0, 5, 0));
        assert_eq!(store.stats().unwrap().write_errors, 2);

        // Space is back: the retry gets the offsets the refused append would have had.
        faults.heal();
        assert_eq!(topic.append(0, &records(5, 5, 0)).unwrap(), 5);
        assert_eq!(store.health(), Health::Ok);
        assert_eq!(offsets_and_values(&topic), expected(0, 10, 0));
    }
}

fn a_disk_filling_up_in_the_middle_of_an_append_leaves_nothing_of_it(kind: Kind) {
    // Segments of one frame each: the failed append has already rolled to a new segment.
    let (mut fixture, faults) = Fixture::new(kind, 0)
        .with_segment_bytes(1)
        .with_faults(Durability::Process);
    let pad = 1000;
    // Three frames of ~256 KiB: the append is cut into pieces.
    let big = records(3, 600, pad);
    {
        let topic = fixture.store().topic("t", 1).unwrap();
        topic.append(0, &records(0, 3, pad)).unwrap();
        let before = testing::partition_files(&topic, 0).unwrap();
        assert_eq!(before, vec!["00000000000000000000.log"]);

        // Room for the first frame and a half of the second.
        let frame = testing::FRAME_MAX_BYTES as u64;
        faults.fail_writes_after(frame + frame / 2, ENOSPC);
        match topic.append(0, &big) {
            Err(StorageError::Write { path, source }) => {
                assert_eq!(source.raw_os_error(), Some(ENOSPC));
                assert!(path.starts_with("topics/t/0/0000000000000000"), "{path}");
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        // The segments the append created are gone, the one before is as it was.
        assert_eq!(testing::partition_files(&topic, 0).unwrap(), before);
        assert_eq!(testing::segments(&topic, 0).unwrap(), vec![0]);
        assert_eq!(topic.high_watermark(0).unwrap(), 3);
        assert!(matches!(
            store_health(&fixture),
            Health::WritesFailing { .. }
        ));

        faults.heal();
        assert_eq!(topic.append(0, &big).unwrap(), 3);
        assert_eq!(offsets_and_values(&topic), expected(0, 603, pad));
    }
    // And on disk: a restart finds exactly the acknowledged records.
    let topic = fixture.reopen().topic("t", 1).unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 603);
    assert_eq!(offsets_and_values(&topic), expected(0, 603, pad));
}

fn store_health(fixture: &Fixture) -> Health {
    fixture.store().health()
}

fn the_probe_clears_the_condition_once_space_is_back_when_nothing_writes(kind: Kind) {
    let (fixture, faults) = Fixture::new(kind, 0).with_faults(Durability::Process);
    let store = fixture.store();
    let topic = store.topic("t", 1).unwrap();
    faults.fail_writes(ENOSPC);
    let reason =
        "No space left on device (os error 28) writing topics/t/0/00000000000000000000.log";
    assert_eq!(
        topic.append(0, &records(0, 1, 0)).unwrap_err().to_string(),
        reason
    );
    let failing = Health::WritesFailing {
        reason: reason.into(),
    };
    // The probe fails too: the reason stays the real write's.
    assert_eq!(store.check(), failing);
    assert_eq!(store.health(), failing);
    faults.heal();
    assert_eq!(store.check(), Health::Ok);
    // The probe left no file behind.
    faults.take_events();
    assert_eq!(store.check(), Health::Ok);
    assert!(faults.take_events().is_empty(), "no probe while healthy");
    assert_eq!(store.topic_names().unwrap(), vec!["t"]);
}

fn a_failed_fdatasync_fails_the_store_for_good(kind: Kind) {
    let (fixture, faults) = Fixture::new(kind, 0).with_faults(Durability::PowerLoss);
    let store = fixture.store();
    let topic = store.topic("t", 1).unwrap();
    topic.append(0, &records(0, 5, 0)).unwrap();

    faults.fail_syncs(EIO);
    let reason = "fdatasync of topics/t/0/00000000000000000000.log failed: \
                  Input/output error (os error 5)";
    match topic.append(0, &records(5, 5, 0)) {
        Err(e @ StorageError::Failed { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "storage failed and acknowledges no more writes (restart the process): {reason}"
            )
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(
        store.health(),
        Health::Failed {
            reason: reason.into()
        }
    );
    // Not acknowledged, not published.
    assert_eq!(topic.high_watermark(0).unwrap(), 5);
    // A later sync that "succeeds" proves nothing: everything stays refused.
    faults.heal();
    for result in [
        topic.append(0, &records(5, 1, 0)).map(|_| ()),
        store.consumer_offsets().unwrap().commit("g", "t", 0, 5),
        store.flush(),
    ] {
        match result {
            Err(StorageError::Failed { reason: r }) => assert_eq!(r, reason),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
    assert_eq!(
        store.check(),
        Health::Failed {
            reason: reason.into()
        }
    );
    assert_eq!(offsets_and_values(&topic), expected(0, 5, 0));
}

fn a_failed_directory_fsync_fails_the_store(kind: Kind) {
    let (fixture, faults) = Fixture::new(kind, 0).with_faults(Durability::PowerLoss);
    faults.fail_dir_syncs(EIO);
    let topic = fixture.store().topic("t", 1).unwrap();
    match topic.append(0, &records(0, 1, 0)) {
        Err(StorageError::Failed { reason }) => assert_eq!(
            reason,
            "fsync of directory topics/t/0 failed: Input/output error (os error 5)"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(topic.high_watermark(0).unwrap(), 0);
}

fn a_failed_write_that_cannot_be_cut_back_fails_the_store(kind: Kind) {
    let (fixture, faults) = Fixture::new(kind, 0).with_faults(Durability::Process);
    let topic = fixture.store().topic("t", 1).unwrap();
    topic.append(0, &records(0, 1, 0)).unwrap();
    faults.fail_writes_after(10, EIO);
    faults.fail_truncates(EIO);
    match topic.append(0, &records(1, 1, 0)) {
        Err(StorageError::Failed { reason }) => assert_eq!(
            reason,
            "cutting back topics/t/0/00000000000000000000.log after a failed write failed: \
             Input/output error (os error 5)"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(matches!(fixture.store().health(), Health::Failed { .. }));
}

fn with_power_loss_durability_appends_return_after_their_syncs_and_new_names_are_synced(
    kind: Kind,
) {
    let (fixture, faults) = Fixture::new(kind, 0)
        .with_segment_bytes(1)
        .with_faults(Durability::PowerLoss);
    let store = fixture.store();
    let topic = store.topic("t", 1).unwrap();
    topic.append(0, &records(0, 2, 0)).unwrap();
    // A partition's first segment: its name, its directory's and the topic's are made
    // durable before the records are, and the append returns after the last sync.
    assert_eq!(
        faults.take_events(),
        vec![
            "create t/0/00000000000000000000.log",
            "truncate t/0/00000000000000000000.log 0",
            "sync_dir t/0",
            "sync_dir t",
            "sync_dir ",
            "sync t/0/00000000000000000000.log",
        ]
    );
    // A new segment (segments of one frame here): its directory only.
    topic.append(0, &records(2, 2, 0)).unwrap();
    assert_eq!(
        faults.take_events(),
        vec![
            "create t/0/00000000000000000002.log",
            "truncate t/0/00000000000000000002.log 0",
            "sync_dir t/0",
            "sync t/0/00000000000000000002.log",
        ]
    );
    let stats = store.stats().unwrap();
    assert_eq!((stats.durability, stats.fsyncs), (Durability::PowerLoss, 6));
    // Deleting a topic makes its disappearance durable too.
    assert!(store.delete_topic("t").unwrap());
    assert_eq!(faults.take_events(), vec!["sync_dir "]);
}

fn with_process_durability_nothing_is_synced(kind: Kind) {
    let (fixture, faults) = Fixture::new(kind, 0).with_faults(Durability::Process);
    let store = fixture.store();
    let topic = store.topic("t", 1).unwrap();
    topic.append(0, &records(0, 2, 0)).unwrap();
    topic.append(0, &records(2, 2, 0)).unwrap();
    assert_eq!(
        faults.take_events(),
        vec![
            "create t/0/00000000000000000000.log",
            "truncate t/0/00000000000000000000.log 0",
        ]
    );
    let stats = store.stats().unwrap();
    assert_eq!((stats.durability, stats.fsyncs), (Durability::Process, 0));
}
