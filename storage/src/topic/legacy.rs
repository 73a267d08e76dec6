//! Moving a partition log of the first builds (chunks in the engine tree, see
//! [`layout`](super::layout)) into segment files, when its topic is opened: the records
//! keep their offsets, a chunk that cannot be decoded is logged and left as a gap, and the
//! tree entries are removed once the records are in the files.

use super::layout::{self, MAX_FRAME_BYTES};
use super::{append, chunk, TopicShared};
use crate::clock::{Clock, SystemClock};
use crate::engine::Batch;
use crate::{Record, StorageError};

/// Engine entries removed per batch once moved.
const REMOVE_PER_BATCH: usize = 1024;

pub(super) fn migrate(topic: &TopicShared, partition: u32) -> Result<(), StorageError> {
    let (first, last) = layout::legacy_range(partition);
    if topic
        .tree
        .range(first.clone()..=last.clone())
        .next()
        .is_none()
    {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let (mut moved, mut lost) = (0u64, 0u64);
    // Records waiting to be written, and the offset of the first of them.
    let mut pending: (u64, Vec<Record>, usize) = (0, Vec::new(), 0);
    let now_ms = SystemClock.now_ms();
    for entry in topic.tree.range(first.clone()..=last.clone()) {
        let (key, raw) = entry?;
        let Some((kind, base)) = layout::legacy_key(&key) else {
            continue;
        };
        if !layout::is_legacy_chunk(kind) {
            continue;
        }
        let records = match chunk::decode(&raw, || topic.frame_place(partition, base)) {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "a chunk of the old topic log is corrupt: its offsets are skipped");
                lost += 1;
                continue;
            }
        };
        let follows = pending.0 + pending.1.len() as u64 == base;
        if !follows || pending.2 >= MAX_FRAME_BYTES {
            if !pending.1.is_empty() {
                append::append_at(topic, partition, pending.0, now_ms, &pending.1)?;
                moved += pending.1.len() as u64;
            }
            pending = (base, Vec::new(), 0);
        }
        pending.2 += records.iter().map(Record::size_bytes).sum::<usize>();
        pending.1.extend(records);
    }
    if !pending.1.is_empty() {
        append::append_at(topic, partition, pending.0, now_ms, &pending.1)?;
        moved += pending.1.len() as u64;
    }
    // The log starts where the old one did (its meta, if any, was read at open).
    {
        let mut log = topic.write_log(partition);
        let first = log
            .segments
            .iter()
            .find_map(|s| s.frames.first().map(|f| f.base));
        if let Some(first) = first {
            log.log_start = log.log_start.max(first);
            log.bytes = log.live_frames().map(|(_, f)| f.bytes()).sum();
            let cursor = topic.cursor(partition)?;
            cursor
                .low
                .store(log.log_start, std::sync::atomic::Ordering::Release);
            cursor
                .bytes
                .store(log.bytes, std::sync::atomic::Ordering::Relaxed);
        }
    }
    // The files hold the records: the old entries can go.
    // (synced whatever the store's durability: the only other copy is about to go).
    let files: Vec<_> = {
        let log = topic.read_log(partition);
        log.segments
            .iter()
            .map(|s| (s.path.clone(), std::sync::Arc::clone(&s.file)))
            .collect()
    };
    for (path, file) in files {
        if let Err(e) = file.sync() {
            let what = format!("fdatasync of {}", layout::shown(&path));
            return Err(topic.config.health.fail_io(what, &e));
        }
        topic.config.health.count_fsync();
    }
    loop {
        let mut batch = Batch::default();
        for entry in topic
            .tree
            .range(first.clone()..=last.clone())
            .take(REMOVE_PER_BATCH)
        {
            let (key, _) = entry?;
            batch.remove(&key);
        }
        if batch.is_empty() {
            break;
        }
        topic.tree.apply(batch)?;
    }
    topic.committer.wait_durable()?;
    tracing::info!(
        topic = topic.name(),
        partition,
        records = moved,
        corrupt_chunks = lost,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "moved the topic log of an older version into segment files"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::codec;
    use crate::{Record, Store};

    fn record(i: u8) -> Record {
        Record {
            key: Some(vec![i]),
            value: vec![i; 3],
            timestamp_ms: u64::from(i),
            headers: vec![],
        }
    }

    #[test]
    fn a_first_builds_log_moves_into_segment_files_with_its_offsets() {
        let store = Store::memory();
        let tree = store
            .engine()
            .tree(&super::super::topic_tree_name("t"))
            .unwrap();
        let chunk = |records: &[Record]| codec::encode(None, records, String::new).unwrap();
        // Offsets 10..13, a corrupt chunk at 13..15, then 15..17.
        tree.insert(
            &super::layout::legacy_chunk_key(0, 10),
            chunk(&[record(0), record(1), record(2)]),
        )
        .unwrap();
        tree.insert(&super::layout::legacy_chunk_key(0, 13), b"garbage".to_vec())
            .unwrap();
        tree.insert(
            &super::layout::legacy_chunk_key(0, 15),
            chunk(&[record(5), record(6)]),
        )
        .unwrap();
        let topic = store.topic("t", 1).unwrap();
        let read = topic.read(0, 0, 100, usize::MAX).unwrap();
        let offsets: Vec<u64> = read.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![10, 11, 12, 15, 16]);
        assert_eq!(read[3].record, record(5));
        assert_eq!(topic.low_watermark(0).unwrap(), 10);
        assert_eq!(topic.high_watermark(0).unwrap(), 17);
        let (first, last) = super::layout::legacy_range(0);
        assert!(
            tree.range(first..=last).next().is_none(),
            "old entries removed"
        );
        assert_eq!(topic.append(0, &[record(7)]).unwrap(), 17);
    }
}
