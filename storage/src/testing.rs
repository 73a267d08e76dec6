//! Hooks for tests of this crate only (corrupting stored bytes, looking at chunks). Not
//! part of the API.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::memory::MemoryEngine;
use crate::{Keyspace, Leases, StorageError, Store, Topic};

/// A batch of chunks of a partition (the unit retention removes), as its summary
/// describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    pub base_offset: u64,
    pub records: u64,
    /// Encoded size of its chunks, what retention by bytes counts.
    pub bytes: u64,
    /// (base offset, records) of each of its chunks.
    pub chunks: Vec<(u64, u64)>,
}

/// The batches of `partition`, in offset order.
pub fn batches(topic: &Topic, partition: u32) -> Result<Vec<BatchInfo>, StorageError> {
    topic.batch_infos(partition)
}

/// (base offset, records) of every chunk of `partition`, in offset order.
pub fn chunks(topic: &Topic, partition: u32) -> Result<Vec<(u64, u64)>, StorageError> {
    Ok(batches(topic, partition)?
        .into_iter()
        .flat_map(|b| b.chunks)
        .collect())
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

/// Replaces the stored bytes of the summary of the batch at `base_offset` with `raw`.
pub fn write_raw_summary(
    topic: &Topic,
    partition: u32,
    base_offset: u64,
    raw: &[u8],
) -> Result<(), StorageError> {
    topic.write_raw_summary(partition, base_offset, raw)
}

/// Replaces the stored bytes of a partition's meta entry (its log start) with `raw`.
pub fn write_raw_meta(topic: &Topic, partition: u32, raw: &[u8]) -> Result<(), StorageError> {
    topic.write_raw_meta(partition, raw)
}

/// Stores `raw` as the stored bytes of `key`, bypassing the envelope.
pub fn write_raw_value(keyspace: &Keyspace, key: &[u8], raw: &[u8]) -> Result<(), StorageError> {
    keyspace.write_raw(key, raw)
}

/// Stores `raw` as the stored bytes of lease `name`, bypassing the envelope.
pub fn write_raw_lease(leases: &Leases, name: &str, raw: &[u8]) -> Result<(), StorageError> {
    leases.write_raw(name, raw)
}

/// A new store on the engine of `store`, as after a restart: every handle of the old
/// store must be dropped first (the old and new stores would otherwise both write).
/// For the memory engine this is the only way to "reopen"; for sled, reopen the
/// directory with `Store::open` instead, which also exercises sled's recovery.
pub fn reopen(store: Store) -> Result<Store, StorageError> {
    let engine = store.engine().clone();
    drop(store);
    Store::with_engine_handle(engine)
}

/// A memory store whose every flush takes `delay`, like a slow disk: for tests of group
/// commit.
pub fn memory_with_flush_delay(delay: Duration) -> Store {
    match Store::with_engine(Arc::new(MemoryEngine::with_flush_delay(delay))) {
        Ok(store) => store,
        Err(e) => unreachable!("the memory engine failed to open: {e}"),
    }
}

/// Chunking limits, for models of the topic log that mirror how appends are cut.
pub const CHUNK_MAX_RECORDS: usize = crate::topic::layout::MAX_CHUNK_RECORDS;
pub const CHUNK_MAX_BYTES: usize = crate::topic::layout::MAX_CHUNK_BYTES;
pub const CHUNK_RECORD_OVERHEAD: usize = crate::topic::layout::RECORD_OVERHEAD;
pub const BATCH_MAX_BYTES: usize = crate::topic::layout::MAX_BATCH_BYTES;
