//! Hooks for tests of this crate only (corrupting stored bytes, looking at chunks,
//! injecting I/O faults). Not part of the API.

mod faults;
mod tmpfs;

use std::sync::Arc;
use std::time::Duration;

pub use faults::Faults;
pub use tmpfs::Tmpfs;

use crate::engine::memory::MemoryEngine;
use crate::{Durability, Keyspace, Leases, StorageError, Store, Topic};

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

/// The bytes of the frame holding `offset` (header and payload) as its file holds them.
pub fn raw_frame(topic: &Topic, partition: u32, offset: u64) -> Result<Vec<u8>, StorageError> {
    topic.read_raw_frame(partition, offset)
}

/// Flips bit `bit` of the byte `at` bytes into the frame holding `offset`: damage a
/// disk or a cosmic ray could do.
pub fn flip_frame_bit(
    topic: &Topic,
    partition: u32,
    offset: u64,
    at: u64,
    bit: u8,
) -> Result<(), StorageError> {
    let raw = raw_frame(topic, partition, offset)?;
    let Some(byte) = usize::try_from(at).ok().and_then(|i| raw.get(i)) else {
        return Err(StorageError::InvalidArgument {
            what: format!("byte {at} of the frame holding offset {offset}"),
            reason: format!("the frame has {} bytes", raw.len()),
        });
    };
    write_raw_frame(topic, partition, offset, at, &[byte ^ (1 << (bit % 8))])
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

/// The same store with its topic files behind [`Faults`] and appends acknowledged as
/// `durability` says (`PowerLoss`: after an `fdatasync`, even on the memory engine).
/// Call before opening any topic, with no other handle on the store.
pub fn with_faults(
    store: Store,
    durability: Durability,
) -> Result<(Store, Arc<Faults>), StorageError> {
    let faults = Arc::new(Faults::default());
    let store = store.with_log(|log| {
        log.files = Arc::new(faults::FaultyFiles {
            inner: Arc::clone(&log.files),
            faults: Arc::clone(&faults),
        });
        log.durability = durability;
    })?;
    Ok((store, faults))
}

/// The names of the files in `partition`'s directory (segments, side files), sorted.
pub fn partition_files(topic: &Topic, partition: u32) -> Result<Vec<String>, StorageError> {
    let (files, dir) = topic.partition_dir(partition)?;
    let mut names = files.list(&dir).map_err(|e| io_error("list", &dir, e))?;
    names.sort();
    Ok(names)
}

/// The bytes of the file `name` in `partition`'s directory.
pub fn read_partition_file(
    topic: &Topic,
    partition: u32,
    name: &str,
) -> Result<Vec<u8>, StorageError> {
    let (files, dir) = topic.partition_dir(partition)?;
    let path = format!("{dir}/{name}");
    let read = || -> std::io::Result<Vec<u8>> {
        let file = files.open(&path, false)?;
        let mut buf = vec![0u8; usize::try_from(file.len()?).map_err(std::io::Error::other)?];
        file.read_at(0, &mut buf)?;
        Ok(buf)
    };
    read().map_err(|e| io_error("read", &path, e))
}

/// Cuts `bytes` off the end of `partition`'s last segment file (not the index): what a
/// crash in the middle of a write leaves.
pub fn cut_partition_end(topic: &Topic, partition: u32, bytes: u64) -> Result<(), StorageError> {
    let (files, dir) = topic.partition_dir(partition)?;
    let mut names = files.list(&dir).map_err(|e| io_error("list", &dir, e))?;
    names.retain(|n| n.ends_with(".log"));
    names.sort();
    let Some(last) = names.last() else {
        return Err(StorageError::InvalidArgument {
            what: format!("partition {partition}"),
            reason: "it has no segment".into(),
        });
    };
    let path = format!("{dir}/{last}");
    let cut = || -> std::io::Result<()> {
        let file = files.open(&path, false)?;
        file.truncate(file.len()?.saturating_sub(bytes))
    };
    cut().map_err(|e| io_error("truncate", &path, e))
}

fn io_error(op: &'static str, path: &str, e: std::io::Error) -> StorageError {
    StorageError::Engine {
        op,
        tree: path.to_owned(),
        source: Box::new(e),
    }
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
