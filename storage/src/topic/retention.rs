//! Removing old frames from the front of partitions, and the segment files they leave
//! empty.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::layout::{self, PartitionMeta};
use super::TopicShared;
use crate::clock::millis;
use crate::codec;
use crate::StorageError;

/// See [`super::Topic::apply_retention`].
pub(super) fn apply(
    topic: &TopicShared,
    now_ms: u64,
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
) -> Result<u64, StorageError> {
    if max_age.is_none() && max_bytes.is_none() || topic.is_deleted() {
        return Ok(0);
    }
    let max_age_ms = max_age.map(millis);
    let mut removed = 0;
    for partition in 0..topic.partition_count() {
        removed += apply_partition(topic, partition, now_ms, max_age_ms, max_bytes)?;
    }
    Ok(removed)
}

fn apply_partition(
    topic: &TopicShared,
    partition: u32,
    now_ms: u64,
    max_age_ms: Option<u64>,
    max_bytes: Option<u64>,
) -> Result<u64, StorageError> {
    let cursor = topic.cursor(partition)?;
    // Moving the log start is a walk over the index in memory: the lock is held for
    // microseconds, whatever is removed.
    let (log_start, removed) = {
        let mut log = topic.write_log(partition);
        // Never past what readers may see (frames whose append failed stay).
        let high = cursor.high.load(Ordering::Acquire);
        let (mut start, mut bytes, mut removed) = (log.log_start, log.bytes, 0u64);
        for (_, frame) in log.live_frames() {
            let too_old =
                max_age_ms.is_some_and(|age| now_ms.saturating_sub(frame.appended_at_ms) > age);
            let too_big = max_bytes.is_some_and(|max| bytes > max);
            if frame.end() > high || !(too_old || too_big) {
                break;
            }
            start = frame.end();
            bytes = bytes.saturating_sub(frame.bytes());
            removed += u64::from(frame.records);
        }
        if removed == 0 {
            return Ok(0);
        }
        log.log_start = start;
        log.bytes = bytes;
        cursor.low.store(start, Ordering::Release);
        cursor.bytes.store(bytes, Ordering::Relaxed);
        (start, removed)
    };

    // The new log start is stored (and flushed) before any file goes, so a restart never
    // finds the log starting before a deleted segment.
    let place = || super::meta_place(&topic.name, partition);
    topic.tree.insert(
        &layout::meta_key(partition),
        codec::encode(None, &PartitionMeta { log_start }, place)?,
    )?;
    topic.committer.wait_durable()?;

    // Segments all of whose frames are gone, except the last (appends go there).
    let doomed: Vec<_> = {
        let mut log = topic.write_log(partition);
        let keep_from = log
            .segments
            .iter()
            .position(|s| s.frames.last().is_some_and(|f| f.end() > log_start))
            .unwrap_or(log.segments.len())
            .min(log.segments.len().saturating_sub(1));
        log.segments.drain(..keep_from).collect()
    };
    for segment in doomed {
        if let Err(e) = topic.config.files.remove(&segment.path) {
            tracing::warn!(error = %e, segment = %segment.path, "could not delete a segment file retention emptied");
        }
    }
    Ok(removed)
}
