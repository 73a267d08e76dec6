//! Hooks for tests of this crate only (corrupting stored bytes, looking at chunks). Not
//! part of the API.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::memory::MemoryEngine;
use crate::{Keyspace, Leases, StorageError, Store, Topic};

/// A frame of a partition (a piece of an append, the unit retention removes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    pub base_offset: u64,
    pub records: u64,
    /// Bytes of the frame, header included: what retention by bytes counts.
    pub bytes: u64,
    /// (base offset, records) of the frame (one entry; kept as a list for tests written
    /// when a batch held several chunks).
    pub chunks: Vec<(u64, u64)>,
}

/// The frames of `partition` from its log start, in offset order.
pub fn batches(topic: &Topic, partition: u32) -> Result<Vec<BatchInfo>, StorageError> {
    topic.batch_infos(partition)
}

/// (base offset, records) of every frame of `partition`, in offset order.
pub fn chunks(topic: &Topic, partition: u32) -> Result<Vec<(u64, u64)>, StorageError> {
    Ok(batches(topic, partition)?
        .into_iter()
        .flat_map(|b| b.chunks)
        .collect())
}

/// Overwrites bytes of the frame holding `offset`, `at` bytes into it (0 is the start of
/// its header; its payload starts at [`FRAME_HEADER_BYTES`]).
pub fn write_raw_frame(
    topic: &Topic,
    partition: u32,
    offset: u64,
    at: u64,
    raw: &[u8],
) -> Result<(), StorageError> {
    topic.write_raw_frame(partition, offset, at, raw)
}

/// Replaces the stored bytes of a partition's meta entry (its log start) with `raw`.
pub fn write_raw_meta(topic: &Topic, partition: u32, raw: &[u8]) -> Result<(), StorageError> {
    topic.write_raw_meta(partition, raw)
}

/// The base offsets of the segment files of `partition`.
pub fn segments(topic: &Topic, partition: u32) -> Result<Vec<u64>, StorageError> {
    topic.segment_bases(partition)
}

/// The same store with segment files of `bytes` (call before opening any topic).
pub fn with_segment_bytes(store: Store, bytes: u64) -> Store {
    store.with_segment_bytes(bytes)
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

/// Framing limits, for models of the topic log that mirror how appends are cut.
pub const FRAME_MAX_RECORDS: usize = crate::topic::layout::MAX_FRAME_RECORDS;
pub const FRAME_MAX_BYTES: usize = crate::topic::layout::MAX_FRAME_BYTES;
pub const FRAME_RECORD_OVERHEAD: usize = crate::topic::layout::RECORD_OVERHEAD;
pub const FRAME_HEADER_BYTES: usize = crate::topic::layout::HEADER_BYTES;
