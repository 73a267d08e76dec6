//! Appending records to a partition.
//!
//! Three steps, so that concurrent producers overlap everything but the engine writes:
//! encode the chunks (no lock: a chunk's bytes do not depend on its offset), write them
//! under the topic's writer lock (which assigns the offsets), then wait for a flush
//! shared with every other durable writer of the store (group commit) and publish the new
//! high watermark.

use std::sync::atomic::Ordering;

use super::layout::{self, ChunkSummary, MAX_BATCH_BYTES};
use super::{chunk, TopicShared};
use crate::clock::Clock;
use crate::codec;
use crate::engine::Batch;
use crate::{Record, StorageError};

/// See [`super::Topic::append`].
pub(super) fn append(
    topic: &TopicShared,
    clock: &dyn Clock,
    partition: u32,
    records: &[Record],
) -> Result<u64, StorageError> {
    let cursor = topic.cursor(partition)?;
    if records.is_empty() {
        return Ok(cursor.high.load(Ordering::Acquire));
    }
    let place = || format!("append to topic {:?} partition {partition}", topic.name);
    chunk::check_sizes(records, place)?;
    let chunks = chunk::split(records)
        .into_iter()
        .map(|records| Ok((records.len() as u64, chunk::encode(records, place)?)))
        .collect::<Result<Vec<_>, StorageError>>()?;

    let (base, end) = {
        let mut states = topic.lock_writer();
        // `cursor` succeeded, so the index is in range.
        let state = &mut states[partition as usize];
        let base = state.next_offset;
        let now_ms = clock.now_ms();
        // Several chunks (each with its summary) per atomic engine batch, up to a bound:
        // fewer batches are cheaper, bounded ones keep sled's memory in check. The writer
        // state follows each applied batch, so it always matches the tree even if a later
        // batch or the flush fails.
        let mut pending = *state;
        let mut batch = Batch::default();
        let mut batch_bytes = 0;
        for (count, encoded) in chunks {
            let offset = pending.next_offset;
            let summary = ChunkSummary {
                records: count,
                bytes: encoded.len() as u64,
                appended_at_ms: now_ms,
            };
            batch_bytes += encoded.len();
            batch.insert(
                &layout::summary_key(partition, offset),
                codec::encode(None, &summary, || topic.chunk_place(partition, offset))?,
            );
            batch.insert(&layout::chunk_key(partition, offset), encoded);
            pending.next_offset += summary.records;
            pending.bytes += summary.bytes;
            if batch_bytes >= MAX_BATCH_BYTES {
                topic.tree.apply(std::mem::take(&mut batch))?;
                batch_bytes = 0;
                *state = pending;
                cursor.bytes.store(state.bytes, Ordering::Relaxed);
            }
        }
        topic.tree.apply(batch)?;
        *state = pending;
        cursor.bytes.store(state.bytes, Ordering::Relaxed);
        (base, state.next_offset)
    };

    topic.committer.wait_durable()?;
    // Publishing after the flush: readers never see what a crash could take back. An
    // append that got its offsets later may have published already: its flush covered
    // these records too, hence `fetch_max`.
    cursor.high.fetch_max(end, Ordering::Release);
    Ok(base)
}
