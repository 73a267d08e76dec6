//! Removing old chunks from the front of partitions.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::layout::{self, PartitionMeta};
use super::summary;
use super::{Cursor, PartitionState, TopicShared};
use crate::clock::millis;
use crate::codec;
use crate::engine::Batch;
use crate::StorageError;

/// About this many engine entries are removed per engine batch, to keep batches bounded.
const ENTRIES_PER_BATCH: usize = 2000;

/// See [`super::Topic::apply_retention`].
pub(super) fn apply(
    topic: &TopicShared,
    now_ms: u64,
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
) -> Result<u64, StorageError> {
    if max_age.is_none() && max_bytes.is_none() {
        return Ok(0);
    }
    let max_age_ms = max_age.map(millis);
    let mut removed = 0;
    for partition in 0..topic.partition_count() {
        // One bounded batch per turn of the writer lock: appends to the partition's end
        // wait for one batch at most, not for the whole pass (measured: a pass removing
        // ~350 MB under one lock stopped every producer for 1-2 s).
        while let Some(n) = step(topic, partition, now_ms, max_age_ms, max_bytes)? {
            removed += n;
        }
    }
    Ok(removed)
}

/// Removes up to about [`ENTRIES_PER_BATCH`] entries from the front of `partition`, under
/// the writer lock; `None` when nothing more is due.
fn step(
    topic: &TopicShared,
    partition: u32,
    now_ms: u64,
    max_age_ms: Option<u64>,
    max_bytes: Option<u64>,
) -> Result<Option<u64>, StorageError> {
    let mut states = topic.lock_writer();
    let cursor = topic.cursor(partition)?;
    // `cursor` succeeded, so the index is in range.
    let state = &mut states[partition as usize];
    // Never past what readers may see (batches whose flush failed stay).
    let high = cursor.high.load(Ordering::Acquire);
    let mut batch = Batch::default();
    let mut pending = *state;
    let mut removed = 0;
    let mut entries = summary::summaries(&topic.tree, &topic.name, partition).peekable();
    while let Some(entry) = entries.next() {
        let (base, decoded) = entry?;
        let summary = match decoded {
            Ok(summary) => summary,
            // Corrupted since start-up (which rebuilt every corrupt summary): rebuild it
            // from its chunks too, so that they are found and removed.
            Err(e) => {
                tracing::warn!(error = %e, "retention rebuilds a corrupt batch summary");
                let next_base = match entries.peek() {
                    Some(Ok((next, _))) => Some(*next),
                    _ => None,
                };
                summary::rebuild(&topic.tree, &topic.name, partition, base, next_base)?
            }
        };
        let too_old =
            max_age_ms.is_some_and(|age| now_ms.saturating_sub(summary.appended_at_ms) > age);
        let too_big = max_bytes.is_some_and(|max| pending.bytes > max);
        if base + summary.records > high || !(too_old || too_big) {
            break;
        }
        batch.remove(&layout::summary_key(partition, base));
        for chunk_base in summary.chunk_bases(base) {
            batch.remove(&layout::chunk_key(partition, chunk_base));
        }
        pending.log_start = base + summary.records;
        pending.bytes = pending.bytes.saturating_sub(summary.bytes);
        removed += summary.records;
        if batch.writes.len() >= ENTRIES_PER_BATCH {
            break;
        }
    }
    if batch.is_empty() {
        return Ok(None);
    }
    commit(topic, partition, batch, (state, cursor), pending)?;
    Ok(Some(removed))
}

/// Applies one removal batch together with the new log start, then moves the writer
/// state to `pending` and publishes the new low watermark.
fn commit(
    topic: &TopicShared,
    partition: u32,
    mut batch: Batch,
    (state, cursor): (&mut PartitionState, &Cursor),
    pending: PartitionState,
) -> Result<(), StorageError> {
    let meta = PartitionMeta {
        log_start: pending.log_start,
    };
    let place = || super::meta_place(&topic.name, partition);
    batch.insert(
        &layout::meta_key(partition),
        codec::encode(None, &meta, place)?,
    );
    topic.tree.apply(batch)?;
    *state = pending;
    cursor.low.store(state.log_start, Ordering::Release);
    cursor.bytes.store(state.bytes, Ordering::Relaxed);
    Ok(())
}
