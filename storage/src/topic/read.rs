//! Reading records of a partition from an offset.

use std::sync::atomic::Ordering;

use super::{chunk, layout, TopicShared};
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
    // Below the low watermark, start at it (retention removes the chunks there, but a
    // read racing with it could otherwise see some of them).
    let from_offset = from_offset.max(cursor.low.load(Ordering::Acquire));
    let mut out = Vec::new();
    if from_offset >= high || max_records == 0 {
        return Ok(out);
    }
    // The chunk holding `from_offset` is the last one starting at or before it.
    let containing = topic
        .tree
        .range(layout::chunk_key(partition, 0)..=layout::chunk_key(partition, from_offset))
        .next_back()
        .transpose()?;
    let start = match containing {
        Some((key, _)) => key.to_vec(),
        None => layout::chunk_key(partition, from_offset),
    };
    let end = layout::chunk_key(partition, u64::MAX);

    let mut bytes = 0usize;
    for entry in topic.tree.range(start..=end) {
        let (key, raw) = entry?;
        let Some(base) = layout::base_offset(&key) else {
            continue;
        };
        if base >= high {
            break;
        }
        let records = match chunk::decode(&raw, || topic.chunk_place(partition, base)) {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "read skipped a corrupt chunk");
                continue;
            }
        };
        for (offset, record) in (base..).zip(records) {
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
    Ok(out)
}
