//! Reading records of a partition from an offset.

use std::sync::atomic::Ordering;

use super::{chunk, log, TopicShared};
use crate::{StorageError, StoredRecord};

/// See [`super::Topic::read`].
pub(super) fn read(
    topic: &TopicShared,
    partition: u32,
    from_offset: u64,
    max_records: usize,
    max_bytes: usize,
) -> Result<Vec<StoredRecord>, StorageError> {
    let cursor = topic.cursor(partition)?;
    let high = cursor.high.load(Ordering::Acquire);
    // Below the low watermark, start at it (retention hides the frames there at once).
    let from_offset = from_offset.max(cursor.low.load(Ordering::Acquire));
    let mut out = Vec::new();
    if from_offset >= high || max_records == 0 || topic.is_deleted() {
        return Ok(out);
    }
    // The lock is held only to find the frames; the reads go to the files unlocked (a
    // segment deleted meanwhile stays readable through the open handle). The listing
    // guesses from frame sizes where the limits will fall; the records decide, so when a
    // round ends before either limit is reached the next round lists on from there.
    let mut bytes = 0usize;
    let mut next = from_offset;
    while next < high {
        let frames = topic.read_log(partition).frames_from(
            next,
            high,
            max_records - out.len(),
            max_bytes.saturating_sub(bytes),
        );
        let Some((_, last)) = frames.last() else {
            break;
        };
        next = last.end();
        for (file, frame) in frames {
            let place = || topic.frame_place(partition, frame.base);
            let records = match log::read_frame(&*file, &frame)
                .map_err(|e| StorageError::Corrupt {
                    place: place(),
                    reason: e.to_string(),
                })
                .and_then(|payload| chunk::decode(&payload, place))
            {
                Ok(records) => records,
                Err(e) => {
                    topic.config.health.count_corrupt_read();
                    tracing::error!(error = %e, "read skipped a corrupt frame");
                    continue;
                }
            };
            for (offset, record) in (frame.base..).zip(records) {
                if offset < from_offset {
                    continue;
                }
                if offset >= high {
                    return Ok(out);
                }
                let size = record.size_bytes();
                if !out.is_empty() && bytes.saturating_add(size) > max_bytes {
                    return Ok(out);
                }
                bytes = bytes.saturating_add(size);
                out.push(StoredRecord { offset, record });
                if out.len() >= max_records {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}
