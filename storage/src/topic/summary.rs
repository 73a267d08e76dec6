//! Batch summaries: reading them (the current format and the first builds' per-chunk
//! one), and rebuilding a corrupt one from its chunks.

use super::chunk;
use super::layout::{self, BatchSummary, LegacyChunkSummary};
use crate::codec;
use crate::engine::Tree;
use crate::StorageError;

/// A summary as stored: its base offset and its decoded value, or why it could not be
/// decoded.
pub(crate) type SummaryEntry = (u64, Result<BatchSummary, StorageError>);

/// The summaries of a partition in offset order. The outer error is the engine's; a
/// summary that does not decode comes as an inner error, with its base offset.
pub(crate) fn summaries<'a>(
    tree: &'a Tree,
    topic: &str,
    partition: u32,
) -> impl Iterator<Item = Result<SummaryEntry, StorageError>> + 'a {
    let topic = topic.to_owned();
    let range = layout::summary_key(partition, 0)..=layout::summary_key(partition, u64::MAX);
    tree.range(range).map(move |entry| {
        let (key, raw) = entry?;
        let base = layout::base_offset(&key).unwrap_or_default();
        let place =
            || format!("topic {topic:?} partition {partition} batch summary at offset {base}");
        Ok((base, decode(&raw, place)))
    })
}

fn decode(raw: &[u8], place: impl Fn() -> String) -> Result<BatchSummary, StorageError> {
    let error = match codec::decode::<BatchSummary>(raw, &place) {
        Ok(decoded) => return Ok(decoded.payload),
        Err(e) => e,
    };
    // A summary of the first builds: one chunk per summary.
    match codec::decode::<LegacyChunkSummary>(raw, &place) {
        Ok(legacy) => {
            let legacy = legacy.payload;
            Ok(BatchSummary {
                records: legacy.records,
                bytes: legacy.bytes,
                appended_at_ms: legacy.appended_at_ms,
                chunk_records: vec![u32::try_from(legacy.records).map_err(|_| error)?],
            })
        }
        Err(_) => Err(error),
    }
}

/// Rebuilds the summary of the batch at `base` from its chunks (the chunk keys from
/// `base` up to `next_base`, the next summary's base offset, if any), and stores it.
///
/// A chunk's record count is the distance to the next chunk; only the batch's last
/// chunk has to be decoded, and when it cannot be (or there is no chunk at all), the
/// batch counts one record, so that no later append can reuse its base offset. The
/// append time is unknown and set to 0, so retention by age removes the batch first.
pub(crate) fn rebuild(
    tree: &Tree,
    topic: &str,
    partition: u32,
    base: u64,
    next_base: Option<u64>,
) -> Result<BatchSummary, StorageError> {
    let end = layout::chunk_key(partition, next_base.unwrap_or(u64::MAX));
    let mut chunks: Vec<(u64, usize)> = Vec::new();
    let mut last_count = None;
    let range = layout::chunk_key(partition, base)..end;
    let mut entries = tree.range(range).peekable();
    while let Some(entry) = entries.next() {
        let (key, raw) = entry?;
        let Some(chunk_base) = layout::base_offset(&key) else {
            continue;
        };
        chunks.push((chunk_base, raw.len()));
        if entries.peek().is_none() && next_base.is_none() {
            let place =
                || format!("topic {topic:?} partition {partition} chunk at offset {chunk_base}");
            last_count = match chunk::decode(&raw, place) {
                Ok(records) => Some(records.len() as u64),
                Err(e) => {
                    tracing::error!(error = %e, "the last chunk of a partition is corrupt too: its records are lost");
                    None
                }
            };
        }
    }
    let end_offset = match (next_base, chunks.last()) {
        (Some(next), _) => next,
        (None, Some(&(last, _))) => last + last_count.unwrap_or(1).max(1),
        (None, None) => base + 1,
    };
    let chunk_records = chunks
        .iter()
        .enumerate()
        .map(|(i, &(chunk_base, _))| {
            let next = chunks.get(i + 1).map_or(end_offset, |&(b, _)| b);
            u32::try_from(next.saturating_sub(chunk_base)).unwrap_or(u32::MAX)
        })
        .collect();
    let summary = BatchSummary {
        records: end_offset.saturating_sub(base).max(1),
        bytes: chunks.iter().map(|&(_, len)| len as u64).sum(),
        appended_at_ms: 0,
        chunk_records,
    };
    let place = || format!("topic {topic:?} partition {partition} batch summary at offset {base}");
    tree.insert(
        &layout::summary_key(partition, base),
        codec::encode(None, &summary, place)?,
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_summaries_read_as_batches_of_one_chunk() {
        let legacy = LegacyChunkSummary {
            records: 7,
            bytes: 300,
            appended_at_ms: 42,
        };
        let raw = codec::encode(None, &legacy, String::new).unwrap();
        let summary = decode(&raw, String::new).unwrap();
        assert_eq!(
            summary,
            BatchSummary {
                records: 7,
                bytes: 300,
                appended_at_ms: 42,
                chunk_records: vec![7],
            }
        );
        let current = codec::encode(None, &summary, String::new).unwrap();
        assert_eq!(decode(&current, String::new).unwrap(), summary);
        assert!(decode(b"\x01garbage", String::new).is_err());
    }
}
