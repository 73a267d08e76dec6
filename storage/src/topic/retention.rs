//! Removing old chunks from the front of partitions.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::layout::{self, PartitionMeta};
use super::{summaries, Cursor, PartitionState, TopicShared, LOST_CHUNK};
use crate::clock::millis;
use crate::codec;
use crate::engine::Batch;
use crate::StorageError;

/// At most this many chunks are removed per engine batch, to keep batches bounded.
const CHUNKS_PER_BATCH: usize = 500;

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
    let mut states = topic.lock_writer();
    let mut removed = 0;
    for (partition, (state, cursor)) in (0u32..).zip(states.iter_mut().zip(&topic.cursors)) {
        // Never past what readers may see (chunks whose flush failed stay).
        let high = cursor.high.load(Ordering::Acquire);
        let mut batch = Batch::default();
        let mut in_batch = 0;
        let mut pending = *state;
        for entry in summaries(&topic.tree, &topic.name, partition) {
            let (base, summary) = entry?;
            // Start-up rebuilt every summary whose chunk was readable; one still corrupt
            // stands for lost records, counted as start-up counted them.
            let summary = summary.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "retention removes a corrupt chunk");
                LOST_CHUNK
            });
            let too_old =
                max_age_ms.is_some_and(|age| now_ms.saturating_sub(summary.appended_at_ms) > age);
            let too_big = max_bytes.is_some_and(|max| pending.bytes > max);
            if base + summary.records > high || !(too_old || too_big) {
                break;
            }
            batch.remove(&layout::summary_key(partition, base));
            batch.remove(&layout::chunk_key(partition, base));
            pending.log_start = base + summary.records;
            pending.bytes = pending.bytes.saturating_sub(summary.bytes);
            removed += summary.records;
            in_batch += 1;
            if in_batch == CHUNKS_PER_BATCH {
                let full = std::mem::take(&mut batch);
                commit(topic, partition, full, (state, cursor), pending)?;
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            commit(topic, partition, batch, (state, cursor), pending)?;
        }
    }
    Ok(removed)
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
