//! Where a topic keeps things inside its engine tree.
//!
//! One tree per topic. Per partition, three kinds of entry, all keyed by the partition
//! (u32 big-endian) then a kind byte, so a partition's entries of one kind are one
//! contiguous, ordered range:
//!
//! - `[partition][0]` → [`PartitionMeta`]: the log start offset, kept because retention
//!   may remove every chunk and the offsets must not restart from 0.
//! - `[partition][1][base offset u64 BE]` → [`BatchSummary`]: one small index entry per
//!   *batch* of chunks, so that opening a topic and applying retention read a few bytes
//!   per batch instead of the records.
//! - `[partition][2][base offset u64 BE]` → a chunk: up to [`MAX_CHUNK_RECORDS`] records
//!   (and about [`MAX_CHUNK_BYTES`]) with consecutive offsets from the base offset.
//!
//! An append cuts its records into chunks and writes them in batches of about
//! [`MAX_BATCH_BYTES`]: each batch (its chunks and its summary) is one atomic engine
//! write, and the unit that retention removes. A retention step removes batches and
//! updates the meta in one atomic engine write.
//!
//! Why batches: the chunks must be small for sled (see [`MAX_CHUNK_BYTES`]), and a
//! summary per chunk would mean ~150 summaries per MB of log for start-up to read and
//! retention to walk; one per batch is ~4. (Measured: it does not change the CPU cost of
//! an append, which is dominated by copying the bytes through sled and the kernel.)

use serde::{Deserialize, Serialize};

const KIND_META: u8 = 0;
const KIND_SUMMARY: u8 = 1;
const KIND_CHUNK: u8 = 2;

/// At most this many records per chunk.
pub(crate) const MAX_CHUNK_RECORDS: usize = 1000;

/// A chunk is closed before its records would pass this many bytes, counting each record
/// as [`Record::size_bytes`](crate::Record::size_bytes) plus [`RECORD_OVERHEAD`]; a single
/// bigger record gets a chunk of its own.
///
/// Why so small: sled keeps up to ~17 entries in a leaf page and writes a page bigger
/// than 128 KiB (a quarter of its 512 KiB segment) to a blob file of its own, which it
/// does not fsync and which costs ~2.9x the data on disk (measured). 17 chunks of 7 KiB
/// stay under that, inline in sled's log, which `flush` does sync. Measured on this
/// machine, sled writes 8 KiB values as fast as 100 KiB ones (~300 MB/s with a flush per
/// MB), so small chunks cost little; the per-chunk overhead (key, summary) is ~2%.
pub(crate) const MAX_CHUNK_BYTES: usize = 7 * 1024;

/// What a record is counted for beyond its payload when filling a chunk: bincode's
/// length prefixes, option tag, timestamp and header count (at most ~25 bytes; the
/// typical record needs fewer).
pub(crate) const RECORD_OVERHEAD: usize = 16;

/// An append writes its chunks in atomic engine batches of about this many bytes (a batch
/// closes after the chunk that reaches it).
pub(crate) const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Persistent state of a partition that cannot be derived from its chunks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct PartitionMeta {
    pub log_start: u64,
}

/// What retention and start-up need to know about a batch of chunks without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchSummary {
    pub records: u64,
    /// Encoded size of the batch's chunks.
    pub bytes: u64,
    /// Store clock when the batch was appended; retention by age uses it rather than the
    /// producers' timestamps, so a device with a wrong clock cannot have its data removed
    /// at once or kept forever.
    pub appended_at_ms: u64,
    /// Records per chunk, in offset order: the chunk keys follow without reading them.
    pub chunk_records: Vec<u32>,
}

impl BatchSummary {
    /// The base offsets of the batch's chunks, given the batch's own.
    pub fn chunk_bases(&self, base: u64) -> impl Iterator<Item = u64> + '_ {
        self.chunk_records.iter().scan(base, |next, &records| {
            let this = *next;
            *next += u64::from(records);
            Some(this)
        })
    }
}

/// The summary format of the first builds, one per chunk; still read (as a batch of one
/// chunk) so that their logs open without a migration.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct LegacyChunkSummary {
    pub records: u64,
    pub bytes: u64,
    pub appended_at_ms: u64,
}

pub(crate) fn meta_key(partition: u32) -> Vec<u8> {
    let mut key = partition.to_be_bytes().to_vec();
    key.push(KIND_META);
    key
}

pub(crate) fn summary_key(partition: u32, base_offset: u64) -> Vec<u8> {
    offset_key(partition, KIND_SUMMARY, base_offset)
}

pub(crate) fn chunk_key(partition: u32, base_offset: u64) -> Vec<u8> {
    offset_key(partition, KIND_CHUNK, base_offset)
}

fn offset_key(partition: u32, kind: u8, offset: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.extend_from_slice(&partition.to_be_bytes());
    key.push(kind);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// The base offset of a summary or chunk key; `None` if the key has another shape.
pub(crate) fn base_offset(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(5..)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_partition_kind_then_offset() {
        assert!(meta_key(0) < summary_key(0, 0));
        assert!(summary_key(0, u64::MAX) < chunk_key(0, 0));
        assert!(chunk_key(0, 255) < chunk_key(0, 256));
        assert!(chunk_key(0, u64::MAX) < meta_key(1));
        assert_eq!(base_offset(&chunk_key(3, 1234)), Some(1234));
        assert_eq!(base_offset(&meta_key(3)), None);
    }
}
