//! Appending records to a partition.
//!
//! Three steps, so that concurrent producers overlap everything but the engine writes:
//! encode the chunks (no lock: a chunk's bytes do not depend on its offset), write them
//! under the topic's writer lock (which assigns the offsets), then wait for a flush
//! shared with every other durable writer of the store (group commit) and publish the new
//! high watermark.

use std::sync::atomic::Ordering;

use super::layout::{self, BatchSummary, MAX_BATCH_BYTES};
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
        .map(|records| {
            // A chunk holds at most MAX_CHUNK_RECORDS records.
            let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
            Ok((count, chunk::encode(records, place)?))
        })
        .collect::<Result<Vec<_>, StorageError>>()?;

    let (base, end) = {
        let mut states = topic.lock_writer();
        // `cursor` succeeded, so the index is in range.
        let state = &mut states[partition as usize];
        let base = state.next_offset;
        let now_ms = clock.now_ms();
        // Chunks go to the engine in batches of about MAX_BATCH_BYTES, each with one
        // summary and applied atomically: few engine entries, bounded engine writes. The
        // writer state follows each applied batch, so it always matches the tree even if
        // a later batch or the flush fails.
        let mut chunks = chunks.into_iter().peekable();
        while chunks.peek().is_some() {
            let batch_base = state.next_offset;
            let mut batch = Batch::default();
            let mut summary = BatchSummary {
                records: 0,
                bytes: 0,
                appended_at_ms: now_ms,
                chunk_records: Vec::new(),
            };
            while let Some((count, encoded)) =
                chunks.next_if(|_| summary.bytes < MAX_BATCH_BYTES as u64)
            {
                summary.bytes += encoded.len() as u64;
                summary.chunk_records.push(count);
                batch.insert(
                    &layout::chunk_key(partition, batch_base + summary.records),
                    encoded,
                );
                summary.records += u64::from(count);
            }
            batch.insert(
                &layout::summary_key(partition, batch_base),
                codec::encode(None, &summary, || topic.chunk_place(partition, batch_base))?,
            );
            topic.tree.apply(batch)?;
            state.next_offset += summary.records;
            state.bytes += summary.bytes;
            cursor.bytes.store(state.bytes, Ordering::Relaxed);
        }
        (base, state.next_offset)
    };

    topic.committer.wait_durable()?;
    // Publishing after the flush: readers never see what a crash could take back. An
    // append that got its offsets later may have published already: its flush covered
    // these records too, hence `fetch_max`.
    cursor.high.fetch_max(end, Ordering::Release);
    Ok(base)
}
