//! Appending records to a partition.

use std::sync::atomic::Ordering;

use super::layout::{self, ChunkSummary};
use super::{chunk, TopicShared};
use crate::codec;
use crate::engine::Batch;
use crate::{Record, StorageError};

/// See [`super::Topic::append`].
pub(super) fn append(
    topic: &TopicShared,
    now_ms: u64,
    partition: u32,
    records: &[Record],
) -> Result<u64, StorageError> {
    let cursor = topic.cursor(partition)?;
    let mut states = topic.lock_writer();
    // `cursor` succeeded, so the index is in range.
    let state = &mut states[partition as usize];
    let base = state.next_offset;
    if records.is_empty() {
        return Ok(base);
    }
    chunk::check_sizes(records, || topic.chunk_place(partition, base))?;

    // One atomic batch per chunk (chunk + summary) keeps every engine batch bounded; the
    // writer state follows each applied batch, so it always matches the tree even if a
    // later chunk or the flush fails.
    for records in chunk::split(records) {
        let offset = state.next_offset;
        let place = || topic.chunk_place(partition, offset);
        let encoded = chunk::encode(records, place)?;
        let summary = ChunkSummary {
            records: records.len() as u64,
            bytes: encoded.len() as u64,
            appended_at_ms: now_ms,
        };
        let mut batch = Batch::default();
        batch.insert(
            &layout::summary_key(partition, offset),
            codec::encode(None, &summary, place)?,
        );
        batch.insert(&layout::chunk_key(partition, offset), encoded);
        topic.tree.apply(batch)?;
        state.next_offset += summary.records;
        state.bytes += summary.bytes;
    }
    topic.engine.flush()?;
    // Publishing after the flush: readers never see what a crash could take back.
    cursor.high.store(state.next_offset, Ordering::Release);
    Ok(base)
}
