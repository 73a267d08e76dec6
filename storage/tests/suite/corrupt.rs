//! Corrupt stored bytes are reported, never returned as data, never a panic.

use crate::fixture::{engine_tests, record, records, Fixture, Kind};
use panoptes_storage::{testing, StorageError};

engine_tests!(
    a_corrupt_keyspace_value_is_reported_by_get_and_skipped_by_scans,
    a_truncated_value_with_a_valid_version_is_corrupt_too,
    a_corrupt_frame_is_skipped_by_reads,
    a_damaged_frame_header_is_skipped_by_reads,
    a_torn_last_frame_is_cut_off_at_start_up,
    a_bit_flipped_in_the_middle_of_the_last_segment_quarantines_the_rest,
    a_bit_flipped_in_the_middle_of_an_older_segment_quarantines_the_rest,
    a_corrupt_frame_in_an_older_segment_is_skipped_after_start_up,
    a_corrupt_partition_meta_does_not_stop_start_up,
    a_corrupt_frame_is_removed_by_retention,
);

fn a_corrupt_keyspace_value_is_reported_by_get_and_skipped_by_scans(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let ks = store.keyspace("state").unwrap();
    ks.put(b"a", b"fine", None).unwrap();
    ks.put(b"c", b"fine too", None).unwrap();
    testing::write_raw_value(&ks, b"b", b"\xde\xad\xbe\xef garbage").unwrap();
    testing::write_raw_value(&ks, b"v9", &[9, 0, 1, 2]).unwrap();

    match ks.get(b"b") {
        Err(StorageError::Corrupt { place, reason }) => {
            assert!(
                place.contains("\"state\"") && place.contains("key \"b\""),
                "{place}"
            );
            assert!(reason.contains("unknown format version 222"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        ks.ttl_remaining(b"v9"),
        Err(StorageError::Corrupt { .. })
    ));
    // Operations that must read the old value refuse; the value is left alone.
    assert!(matches!(
        ks.get_set(b"b", b"x", None),
        Err(StorageError::Corrupt { .. })
    ));
    assert!(matches!(
        ks.compare_and_swap(b"b", None, Some(b"x"), None),
        Err(StorageError::Corrupt { .. })
    ));
    let live: Vec<Vec<u8>> = ks
        .scan_prefix(b"")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(live, vec![b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(ks.len().unwrap(), 2);

    // put repairs, delete removes.
    ks.put(b"b", b"repaired", None).unwrap();
    assert_eq!(ks.get(b"b").unwrap(), Some(b"repaired".to_vec()));
    assert!(
        !ks.delete(b"v9").unwrap(),
        "a corrupt value was not a live value"
    );
    assert_eq!(ks.get(b"v9").unwrap(), None);
    assert_eq!(store.sweep_expired().unwrap(), 0);
}

fn a_truncated_value_with_a_valid_version_is_corrupt_too(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let ks = store.keyspace("state").unwrap();
    // Version 1, "has expiry" tag, then nothing.
    testing::write_raw_value(&ks, b"t", &[1, 1]).unwrap();
    assert!(matches!(ks.get(b"t"), Err(StorageError::Corrupt { .. })));
}

/// Bytes into a frame where its payload starts.
const PAYLOAD: u64 = testing::FRAME_HEADER_BYTES as u64;

fn a_corrupt_frame_is_skipped_by_reads(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("metrics", 1).unwrap();
    topic.append(0, &records(0, 5, 0)).unwrap();
    topic.append(0, &records(5, 5, 0)).unwrap();
    topic.append(0, &records(10, 5, 0)).unwrap();
    testing::write_raw_frame(&topic, 0, 5, PAYLOAD, b"not a chunk").unwrap();

    let read = topic.read(0, 0, 100, usize::MAX).unwrap();
    let offsets: Vec<u64> = read.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
    for stored in &read {
        assert_eq!(stored.record, record(stored.offset, 0));
    }
    // Starting inside the corrupt frame continues after it.
    let read = topic.read(0, 7, 100, usize::MAX).unwrap();
    assert_eq!(read.first().map(|r| r.offset), Some(10));
    // Watermarks and appends are unaffected.
    assert_eq!(topic.high_watermark(0).unwrap(), 15);
    assert_eq!(topic.append(0, &records(15, 1, 0)).unwrap(), 15);
    // Retention still removes it (the index is in memory).
    assert_eq!(topic.apply_retention(None, Some(0)).unwrap(), 16);
}

fn a_damaged_frame_header_is_skipped_by_reads(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("metrics", 1).unwrap();
    topic.append(0, &records(0, 2, 0)).unwrap();
    topic.append(0, &records(2, 2, 0)).unwrap();
    topic.append(0, &records(4, 2, 0)).unwrap();
    // The record count of the middle frame.
    testing::write_raw_frame(&topic, 0, 2, 20, &[9]).unwrap();
    assert_eq!(offsets_of(&topic, 0), vec![0, 1, 4, 5]);
}

fn offsets_of(topic: &panoptes_storage::Topic, partition: u32) -> Vec<u64> {
    topic
        .read(partition, 0, usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect()
}

/// What a crash in the middle of a write leaves: the last frame cut short, or (after a
/// power loss) zeros where it should be. It was never acknowledged; start-up cuts it off
/// and its offsets are used again.
fn a_torn_last_frame_is_cut_off_at_start_up(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    {
        let topic = fixture.store().topic("t", 1).unwrap();
        topic.append(0, &records(0, 5, 100)).unwrap();
        topic.append(0, &records(5, 5, 100)).unwrap();
        testing::cut_partition_end(&topic, 0, 40).unwrap();
    }
    let topic = fixture.reopen().topic("t", 1).unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 5);
    assert_eq!(offsets_of(&topic, 0), (0..5).collect::<Vec<_>>());
    assert_eq!(topic.append(0, &records(5, 2, 0)).unwrap(), 5);
    assert_eq!(offsets_of(&topic, 0), (0..7).collect::<Vec<_>>());
    for stored in topic.read(0, 5, 10, usize::MAX).unwrap() {
        assert_eq!(stored.record, record(stored.offset, 0));
    }
    let zeros = testing::raw_frame(&topic, 0, 5).unwrap().len();
    testing::write_raw_frame(&topic, 0, 5, 0, &vec![0; zeros]).unwrap();
    drop(topic);
    let store = fixture.reopen();
    let topic = store.topic("t", 1).unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 5);
    assert_eq!(offsets_of(&topic, 0), (0..5).collect::<Vec<_>>());
    assert_eq!(store.stats().unwrap().quarantined_segments, 0);
    assert_eq!(
        testing::partition_files(&topic, 0).unwrap(),
        vec!["00000000000000000000.log"]
    );
}

/// One bit flipped in a frame in the middle of the last segment (disk rot, not a torn
/// write): the frames before it stay readable, the segment from the bad frame to its
/// end is moved to a side file (the records after it are kept there, not dropped), and
/// the offsets of what was moved are never handed out again.
fn a_bit_flipped_in_the_middle_of_the_last_segment_quarantines_the_rest(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    let (segment, tail) = {
        let store = fixture.store();
        let topic = store.topic("t", 1).unwrap();
        for i in 0..4 {
            topic.append(0, &records(i * 5, 5, 50)).unwrap();
        }
        store
            .consumer_offsets()
            .unwrap()
            .commit("g", "t", 0, 20)
            .unwrap();
        let segment = testing::read_partition_file(&topic, 0, "00000000000000000000.log").unwrap();
        let moved: usize = [5, 10, 15]
            .iter()
            .map(|&o| testing::raw_frame(&topic, 0, o).unwrap().len())
            .sum();
        let at = segment.len() - moved;
        // A bit in a record's value in the frame at offset 5.
        testing::flip_frame_bit(&topic, 0, 5, PAYLOAD + 30, 3).unwrap();
        let mut tail = segment[at..].to_vec();
        tail[PAYLOAD as usize + 30] ^= 1 << 3;
        (segment, tail)
    };
    let store = fixture.reopen();
    let topic = store.topic("t", 1).unwrap();
    assert_eq!(offsets_of(&topic, 0), (0..5).collect::<Vec<_>>());
    for stored in topic.read(0, 0, 10, usize::MAX).unwrap() {
        assert_eq!(stored.record, record(stored.offset, 50));
    }
    // Offsets 5..20 were handed out: the log carries on at 20, and the group that had
    // read them all is not moved back.
    assert_eq!(topic.high_watermark(0).unwrap(), 20);
    assert_eq!(
        store
            .consumer_offsets()
            .unwrap()
            .committed("g", "t", 0)
            .unwrap(),
        Some(20)
    );
    assert_eq!(
        testing::partition_files(&topic, 0).unwrap(),
        vec![
            "00000000000000000000.log",
            "00000000000000000000.log.quarantined-00000000000000000005",
            "00000000000000000020.log",
        ]
    );
    let side = testing::read_partition_file(
        &topic,
        0,
        "00000000000000000000.log.quarantined-00000000000000000005",
    )
    .unwrap();
    assert!(
        side == tail,
        "the side file holds the moved bytes, damage included"
    );
    assert!(
        contains(&side, b"record-17"),
        "later records are in the side file"
    );
    assert!(
        testing::read_partition_file(&topic, 0, "00000000000000000000.log").unwrap()
            == segment[..segment.len() - tail.len()],
        "the segment keeps its bytes before the bad frame"
    );
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.quarantined_segments, stats.quarantined_bytes),
        (1, tail.len() as u64)
    );
    assert_eq!(topic.append(0, &records(20, 1, 0)).unwrap(), 20);
    drop(topic);
    // A second restart finds nothing more to repair and keeps the offsets moving on.
    let store = fixture.reopen();
    let topic = store.topic("t", 1).unwrap();
    assert_eq!(store.stats().unwrap().quarantined_segments, 0);
    assert_eq!(offsets_of(&topic, 0), vec![0, 1, 2, 3, 4, 20]);
    assert_eq!(topic.append(0, &records(21, 1, 0)).unwrap(), 21);
}

/// A damaged header in the middle of an older segment (here: a flipped bit in a frame's
/// record count, which shifts every offset after it) is found at start-up: that segment
/// is quarantined from the bad frame on, its offsets are a gap up to the next segment,
/// and every other segment reads as before. A flipped bit in an older segment's payload
/// is found by the read that reaches it: that frame alone is skipped, and counted.
fn a_bit_flipped_in_the_middle_of_an_older_segment_quarantines_the_rest(kind: Kind) {
    // Segments of three frames of five records.
    let frame_bytes = {
        let (store, _) = kind.manual_store(0);
        let topic = store.topic("t", 1).unwrap();
        topic.append(0, &records(0, 5, 50)).unwrap();
        testing::raw_frame(&topic, 0, 0).unwrap().len() as u64
    };
    let mut fixture = Fixture::new(kind, 0).with_segment_bytes(2 * frame_bytes + 1);
    let moved = {
        let topic = fixture.store().topic("t", 1).unwrap();
        for i in 0..7 {
            topic.append(0, &records(i * 5, 5, 50)).unwrap();
        }
        assert_eq!(testing::segments(&topic, 0).unwrap(), vec![0, 15, 30]);
        // The record count of the frame at offset 5 (5 -> 7).
        testing::flip_frame_bit(&topic, 0, 5, 20, 1).unwrap();
        testing::read_partition_file(&topic, 0, "00000000000000000000.log")
            .unwrap()
            .len() as u64
            - frame_bytes
    };
    let store = fixture.reopen();
    let topic = store.topic("t", 1).unwrap();
    let mut want: Vec<u64> = (0..5).collect();
    want.extend(15..35);
    assert_eq!(offsets_of(&topic, 0), want);
    assert_eq!(topic.high_watermark(0).unwrap(), 35);
    assert_eq!(
        testing::partition_files(&topic, 0).unwrap(),
        vec![
            "00000000000000000000.log",
            "00000000000000000000.log.quarantined-00000000000000000005",
            "00000000000000000015.log",
            "00000000000000000030.log",
        ]
    );
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.quarantined_segments, stats.quarantined_bytes),
        (1, moved)
    );

    // A payload bit in the middle of the next (older) segment.
    testing::flip_frame_bit(&topic, 0, 20, PAYLOAD + 30, 0).unwrap();
    let mut want: Vec<u64> = (0..5).collect();
    want.extend(15..20);
    want.extend(25..35);
    assert_eq!(offsets_of(&topic, 0), want);
    assert_eq!(store.stats().unwrap().corrupt_frames_read, 1);
    assert_eq!(topic.append(0, &records(35, 1, 0)).unwrap(), 35);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A frame damaged in an older segment (not one a crash can tear) is kept, skipped by
/// reads after a restart, and the segments after it still read.
fn a_corrupt_frame_in_an_older_segment_is_skipped_after_start_up(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0).with_segment_bytes(1);
    {
        let topic = fixture.store().topic("t", 1).unwrap();
        for i in 0..4 {
            topic.append(0, &records(i * 3, 3, 0)).unwrap();
        }
        // One frame per segment at this segment size.
        assert_eq!(testing::batches(&topic, 0).unwrap().len(), 4);
        testing::write_raw_frame(&topic, 0, 3, PAYLOAD, b"rot").unwrap();
        testing::write_raw_frame(&topic, 0, 6, 0, b"XX").unwrap();
    }
    let topic = fixture.reopen().topic("t", 1).unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 12);
    assert_eq!(offsets_of(&topic, 0), vec![0, 1, 2, 9, 10, 11]);
    assert_eq!(topic.append(0, &records(12, 1, 0)).unwrap(), 12);
}

fn a_corrupt_partition_meta_does_not_stop_start_up(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    {
        let topic = fixture.store().topic("t", 1).unwrap();
        topic.append(0, &records(0, 5, 0)).unwrap();
        topic.append(0, &records(5, 5, 0)).unwrap();
        let newest = testing::batches(&topic, 0).unwrap()[1].bytes;
        assert_eq!(topic.apply_retention(None, Some(newest)).unwrap(), 5);
        testing::write_raw_meta(&topic, 0, &[1]).unwrap();
    }
    let topic = fixture.reopen().topic("t", 1).unwrap();
    // The log start comes from the first frame still on disk instead: what retention
    // had hidden but not yet deleted (it shares the segment) is back, nothing is lost,
    // and the next pass hides it again.
    assert_eq!(topic.low_watermark(0).unwrap(), 0);
    assert_eq!(topic.high_watermark(0).unwrap(), 10);
    assert_eq!(offsets_of(&topic, 0), (0..10).collect::<Vec<_>>());
    let newest = testing::batches(&topic, 0).unwrap()[1].bytes;
    assert_eq!(topic.apply_retention(None, Some(newest)).unwrap(), 5);
    assert_eq!(offsets_of(&topic, 0), (5..10).collect::<Vec<_>>());
}

fn a_corrupt_frame_is_removed_by_retention(kind: Kind) {
    let (store, clock) = kind.manual_store(1_700_000_000_000);
    let topic = store.topic("t", 1).unwrap();
    topic.append(0, &records(0, 5, 0)).unwrap();
    clock.advance(std::time::Duration::from_secs(7200));
    topic.append(0, &records(5, 5, 0)).unwrap();
    testing::write_raw_frame(&topic, 0, 0, PAYLOAD, b"garbage").unwrap();
    // An unreadable frame at the front does not block retention: it goes first.
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(topic.apply_retention(Some(hour), None).unwrap(), 5);
    assert_eq!(testing::batches(&topic, 0).unwrap().len(), 1);
    assert_eq!(offsets_of(&topic, 0), (5..10).collect::<Vec<_>>());
}
