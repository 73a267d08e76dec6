//! Hooks for tests of this crate only (corrupting stored bytes, looking at chunks). Not
//! part of the API.

use crate::{Keyspace, StorageError, Topic};

/// A chunk of a partition as its summary describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    pub base_offset: u64,
    pub records: u64,
    /// Encoded size, what retention by bytes counts.
    pub bytes: u64,
}

/// The chunks of `partition`, in offset order.
pub fn chunks(topic: &Topic, partition: u32) -> Result<Vec<ChunkInfo>, StorageError> {
    topic.chunk_infos(partition)
}

/// Replaces the stored bytes of the chunk at `base_offset` with `raw`.
pub fn write_raw_chunk(
    topic: &Topic,
    partition: u32,
    base_offset: u64,
    raw: &[u8],
) -> Result<(), StorageError> {
    topic.write_raw_chunk(partition, base_offset, raw)
}

/// Stores `raw` as the stored bytes of `key`, bypassing the envelope.
pub fn write_raw_value(keyspace: &Keyspace, key: &[u8], raw: &[u8]) -> Result<(), StorageError> {
    keyspace.write_raw(key, raw)
}
