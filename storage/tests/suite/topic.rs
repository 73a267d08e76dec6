//! Topics: offsets, reads across chunks and from mid-chunk, limits, retention.

use std::time::Duration;

use crate::fixture::{engine_tests, record, records, Fixture, Kind};
use panoptes_storage::{testing, StorageError, StoredRecord};

engine_tests!(
    appends_get_consecutive_offsets_per_partition,
    an_existing_topic_keeps_its_partition_count_and_state,
    an_absurd_partition_count_is_refused_before_anything_is_stored,
    large_appends_are_chunked_and_read_across_chunk_boundaries,
    chunks_are_cut_by_bytes_too,
    max_bytes_and_max_records_bound_a_read,
    a_read_over_many_small_frames_fills_its_byte_limit,
    retention_by_age_removes_whole_old_chunks_from_the_front,
    retention_by_bytes_keeps_each_partition_under_the_limit,
    segments_roll_and_retention_deletes_the_ones_it_empties,
    concurrent_appends_never_share_an_offset,
);

fn offsets(read: &[StoredRecord]) -> Vec<u64> {
    read.iter().map(|r| r.offset).collect()
}

fn appends_get_consecutive_offsets_per_partition(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("metrics", 3).unwrap();
    assert_eq!((topic.name(), topic.partitions()), ("metrics", 3));
    assert_eq!(topic.high_watermark(1).unwrap(), 0);
    assert_eq!(topic.append(1, &records(0, 5, 0)).unwrap(), 0);
    assert_eq!(topic.append(1, &records(5, 2, 0)).unwrap(), 5);
    assert_eq!(topic.append(2, &records(0, 1, 0)).unwrap(), 0);
    assert_eq!(
        topic.append(1, &[]).unwrap(),
        7,
        "an empty append writes nothing"
    );
    assert_eq!(topic.high_watermark(1).unwrap(), 7);
    assert_eq!(topic.high_watermark(0).unwrap(), 0);
    assert_eq!(topic.low_watermark(1).unwrap(), 0);

    let read = topic.read(1, 0, 100, usize::MAX).unwrap();
    assert_eq!(offsets(&read), (0..7).collect::<Vec<_>>());
    for (i, stored) in read.iter().enumerate() {
        assert_eq!(stored.record, record(i as u64, 0));
    }
    assert!(topic.read(1, 7, 100, usize::MAX).unwrap().is_empty());
    assert!(topic.read(0, 0, 100, usize::MAX).unwrap().is_empty());

    assert!(matches!(
        topic.append(3, &records(0, 1, 0)),
        Err(StorageError::NoSuchPartition {
            partition: 3,
            partitions: 3,
            ..
        })
    ));
    let no_partition = |n| {
        format!("topic \"metrics\" has no partition {n} (it has 3 partitions, numbered from 0)")
    };
    assert_eq!(
        topic.read(7, 0, 1, 1).err().map(|e| e.to_string()),
        Some(no_partition(7))
    );
    assert_eq!(
        topic.high_watermark(3).unwrap_err().to_string(),
        no_partition(3)
    );
}

fn an_existing_topic_keeps_its_partition_count_and_state(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let first = store.topic("t", 2).unwrap();
    first.append(0, &records(0, 3, 0)).unwrap();
    let second = store.topic("t", 8).unwrap();
    assert_eq!(second.partitions(), 2);
    // Both handles share one writer: offsets continue, never overlap.
    assert_eq!(second.append(0, &records(3, 1, 0)).unwrap(), 3);
    assert_eq!(first.append(0, &records(4, 1, 0)).unwrap(), 4);
    store.topic("a-first", 1).unwrap();
    assert_eq!(store.topic_names().unwrap(), vec!["a-first", "t"]);
    assert!(matches!(
        store.topic("zero", 0),
        Err(StorageError::InvalidArgument { .. })
    ));
    assert!(matches!(
        store.topic("", 1),
        Err(StorageError::InvalidName { .. })
    ));
}

fn an_absurd_partition_count_is_refused_before_anything_is_stored(kind: Kind) {
    let mut f = Fixture::new(kind, 0);
    let err = f
        .store()
        .topic("huge", i32::MAX as u32)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("invalid argument for topic \"huge\": 2147483647 partitions: a topic has 1 to 65536")
    );
    assert!(f.store().topic_names().unwrap().is_empty());
    f.store()
        .topic("ok", panoptes_storage::MAX_PARTITIONS)
        .unwrap();
    f.reopen();
    assert_eq!(f.store().topic_names().unwrap(), vec!["ok"]);
    assert_eq!(
        f.store()
            .existing_topic("ok")
            .unwrap()
            .unwrap()
            .partitions(),
        panoptes_storage::MAX_PARTITIONS
    );
}

fn large_appends_are_chunked_and_read_across_chunk_boundaries(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("t", 1).unwrap();
    topic.append(0, &records(0, 10_000, 0)).unwrap();
    topic.append(0, &records(10_000, 10, 0)).unwrap();
    let chunks = testing::chunks(&topic, 0).unwrap();
    assert!(chunks.len() > 3, "{chunks:?}");
    // Consecutive, covering every offset once; an append starts a chunk of its own.
    let mut next = 0;
    for &(base, records) in &chunks {
        assert_eq!(base, next);
        assert!(records >= 1 && records as usize <= testing::FRAME_MAX_RECORDS);
        next += records;
    }
    assert_eq!(next, 10_010);
    assert_eq!(chunks.last(), Some(&(10_000, 10)));

    // From the middle of a chunk, across two boundaries.
    let second = chunks[1].0;
    let fourth = chunks[3].0;
    let read = topic.read(0, second - 1, usize::MAX, usize::MAX).unwrap();
    assert_eq!(offsets(&read), (second - 1..10_010).collect::<Vec<_>>());
    let read = topic
        .read(0, second - 1, (fourth - second + 2) as usize, usize::MAX)
        .unwrap();
    assert_eq!(offsets(&read), (second - 1..=fourth).collect::<Vec<_>>());
    for stored in &read {
        assert_eq!(stored.record, record(stored.offset, 0));
    }
    // Exactly at a boundary, and the last record.
    assert_eq!(
        offsets(&topic.read(0, second, 1, usize::MAX).unwrap()),
        vec![second]
    );
    assert_eq!(
        offsets(&topic.read(0, 10_009, 10, usize::MAX).unwrap()),
        vec![10_009]
    );
    // Everything.
    let all = topic.read(0, 0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(offsets(&all), (0..10_010).collect::<Vec<_>>());
}

fn chunks_are_cut_by_bytes_too(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("t", 1).unwrap();
    // Three of these fit in a chunk, four do not.
    let quarter = testing::FRAME_MAX_BYTES / 4;
    topic.append(0, &records(0, 5, quarter)).unwrap();
    // A record bigger than a chunk gets one of its own.
    let huge = 3 * testing::FRAME_MAX_BYTES;
    topic.append(0, &records(5, 2, huge)).unwrap();
    let per_chunk: Vec<u64> = testing::chunks(&topic, 0)
        .unwrap()
        .iter()
        .map(|&(_, records)| records)
        .collect();
    assert_eq!(per_chunk, vec![3, 2, 1, 1]);
    let read = topic.read(0, 2, 10, usize::MAX).unwrap();
    assert_eq!(offsets(&read), vec![2, 3, 4, 5, 6]);
    assert_eq!(read[0].record, record(2, quarter));
    assert_eq!(read[4].record, record(6, huge));
}

fn max_bytes_and_max_records_bound_a_read(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("t", 1).unwrap();
    let batch = records(0, 10, 100);
    topic.append(0, &batch).unwrap();

    // Records are returned while their sizes fit in max_bytes.
    let fits_three: usize = batch[..3].iter().map(|r| r.size_bytes()).sum();
    assert_eq!(
        offsets(&topic.read(0, 0, 100, fits_three).unwrap()),
        vec![0, 1, 2]
    );
    assert_eq!(
        offsets(&topic.read(0, 0, 100, fits_three - 1).unwrap()),
        vec![0, 1]
    );
    // The first record comes back even if it alone is over the limit.
    assert_eq!(offsets(&topic.read(0, 4, 100, 1).unwrap()), vec![4]);
    assert_eq!(offsets(&topic.read(0, 4, 100, 0).unwrap()), vec![4]);
    // max_records.
    assert_eq!(
        offsets(&topic.read(0, 4, 2, usize::MAX).unwrap()),
        vec![4, 5]
    );
    assert!(topic.read(0, 4, 0, usize::MAX).unwrap().is_empty());
}

/// Frame payloads carry encoding on top of the records' own bytes; a read across many
/// small frames must still return every record its byte limit allows (found by the model
/// test: the frame listing stopped early on payload bytes and the read came back short).
fn a_read_over_many_small_frames_fills_its_byte_limit(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("t", 1).unwrap();
    for i in 0..40 {
        topic.append(0, &records(i, 1, 2)).unwrap();
    }
    let all = topic.read(0, 0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(all.len(), 40);
    let sizes: Vec<usize> = all.iter().map(|r| r.record.size_bytes()).collect();
    let fits_35: usize = sizes[..35].iter().sum();
    assert_eq!(
        offsets(&topic.read(0, 0, 100, fits_35).unwrap()),
        (0..35).collect::<Vec<u64>>()
    );
    assert_eq!(
        offsets(&topic.read(0, 3, 100, usize::MAX).unwrap()),
        (3..40).collect::<Vec<u64>>()
    );
}

fn retention_by_age_removes_whole_old_chunks_from_the_front(kind: Kind) {
    let (store, clock) = kind.manual_store(1_000_000);
    let topic = store.topic("t", 2).unwrap();
    topic.append(0, &records(0, 10, 0)).unwrap();
    clock.advance(Duration::from_secs(60));
    topic.append(0, &records(10, 5, 0)).unwrap();
    topic.append(1, &records(0, 3, 0)).unwrap();
    clock.advance(Duration::from_secs(30));

    let hour = Duration::from_secs(3600);
    assert_eq!(topic.apply_retention(Some(hour), None).unwrap(), 0);
    // The first chunk is 90 s old, the others 30 s.
    assert_eq!(
        topic
            .apply_retention(Some(Duration::from_secs(60)), None)
            .unwrap(),
        10
    );
    assert_eq!(topic.low_watermark(0).unwrap(), 10);
    assert_eq!(topic.high_watermark(0).unwrap(), 15);
    assert_eq!(topic.low_watermark(1).unwrap(), 0);
    // Reading below the low watermark starts at it.
    assert_eq!(
        offsets(&topic.read(0, 0, 100, usize::MAX).unwrap()),
        (10..15).collect::<Vec<_>>()
    );

    // Old enough: a partition is emptied, and offsets carry on.
    clock.advance(hour);
    assert_eq!(topic.apply_retention(Some(hour), None).unwrap(), 8);
    assert_eq!(topic.low_watermark(0).unwrap(), 15);
    assert_eq!(topic.high_watermark(0).unwrap(), 15);
    assert!(topic.read(0, 0, 100, usize::MAX).unwrap().is_empty());
    assert_eq!(topic.append(0, &records(15, 1, 0)).unwrap(), 15);
    assert_eq!(topic.low_watermark(0).unwrap(), 15);
    assert_eq!(topic.apply_retention(None, None).unwrap(), 0);
}

fn retention_by_bytes_keeps_each_partition_under_the_limit(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("t", 1).unwrap();
    for i in 0..6 {
        topic.append(0, &records(i * 4, 4, 1000)).unwrap();
    }
    let chunks = testing::batches(&topic, 0).unwrap();
    let total: u64 = chunks.iter().map(|c| c.bytes).sum();
    assert_eq!(topic.apply_retention(None, Some(total)).unwrap(), 0);
    // One byte too many: the oldest chunk goes, nothing more.
    assert_eq!(topic.apply_retention(None, Some(total - 1)).unwrap(), 4);
    // Room for the newest two chunks exactly.
    let last_two = chunks[4].bytes + chunks[5].bytes;
    assert_eq!(topic.apply_retention(None, Some(last_two)).unwrap(), 12);
    assert_eq!(topic.low_watermark(0).unwrap(), 16);
    let left = testing::batches(&topic, 0).unwrap();
    assert_eq!(left, chunks[4..].to_vec());
    assert_eq!(
        offsets(&topic.read(0, 16, 100, usize::MAX).unwrap()),
        (16..24).collect::<Vec<_>>()
    );
    // A limit smaller than any chunk empties the partition.
    assert_eq!(topic.apply_retention(None, Some(0)).unwrap(), 8);
    assert_eq!(topic.low_watermark(0).unwrap(), 24);
    assert!(testing::batches(&topic, 0).unwrap().is_empty());
}

fn segments_roll_and_retention_deletes_the_ones_it_empties(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0).with_segment_bytes(2048);
    {
        let store = fixture.store();
        let topic = store.topic("t", 1).unwrap();
        for i in 0..10 {
            topic.append(0, &records(i * 2, 2, 500)).unwrap();
        }
        // ~1 KB frames: two per segment.
        assert_eq!(testing::segments(&topic, 0).unwrap(), vec![0, 4, 8, 12, 16]);
        let disk = store.size_on_disk().unwrap();
        // Hide the first three frames: the first segment goes, the second stays (one of
        // its frames is still live).
        let frames = testing::batches(&topic, 0).unwrap();
        let keep: u64 = frames[3..].iter().map(|f| f.bytes).sum();
        assert_eq!(topic.apply_retention(None, Some(keep)).unwrap(), 6);
        assert_eq!(testing::segments(&topic, 0).unwrap(), vec![4, 8, 12, 16]);
        if kind == Kind::Sled {
            assert!(store.size_on_disk().unwrap() < disk);
        }
        // Emptied: every segment but the last goes; offsets carry on after a restart.
        assert_eq!(topic.apply_retention(None, Some(0)).unwrap(), 14);
        assert_eq!(testing::segments(&topic, 0).unwrap(), vec![16]);
    }
    let topic = fixture.reopen().topic("t", 1).unwrap();
    assert_eq!(topic.low_watermark(0).unwrap(), 20);
    assert_eq!(topic.append(0, &records(20, 1, 0)).unwrap(), 20);
    assert_eq!(
        offsets(&topic.read(0, 0, 10, usize::MAX).unwrap()),
        vec![20]
    );
    // (The default segment size after the reopen: the last segment takes it.)
    assert_eq!(testing::segments(&topic, 0).unwrap(), vec![16]);
}

fn concurrent_appends_never_share_an_offset(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let topic = store.topic("t", 1).unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let topic = topic.clone();
            std::thread::spawn(move || {
                (0..20u64)
                    .map(|i| topic.append(0, &records(t * 1000 + i * 3, 3, 0)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut bases: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    bases.sort_unstable();
    assert_eq!(bases, (0..80).map(|i| i * 3).collect::<Vec<_>>());
    let all = topic.read(0, 0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(offsets(&all), (0..240).collect::<Vec<_>>());
    // Each append's records stayed together and in order.
    for group in all.chunks(3) {
        let first = &group[0].record;
        for (j, stored) in group.iter().enumerate() {
            assert_eq!(
                stored.record.value,
                record(first.timestamp_ms - 1000 + j as u64, 0).value
            );
        }
    }
}
