//! Topics: append-only partitioned logs with offsets (what Kafka's log did).
//!
//! See [`layout`] for how a topic sits in its engine tree. Offsets of a partition start at
//! 0 and are consecutive. Writers (appends, retention) of a topic are serialized by one
//! mutex; readers take no lock and see records up to the *published* high watermark,
//! which moves only after the records are flushed, so a consumer never sees a record that
//! a crash could take back (and whose offset could then be reused).

mod append;
mod chunk;
pub(crate) mod layout;
mod read;
mod retention;
mod summary;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::codec;
use crate::commit::Committer;
use crate::engine::{Engine, Tree};
use crate::{Record, StorageError, StoredRecord};
use layout::PartitionMeta;

/// The engine tree holding topic `name`.
pub(crate) fn topic_tree_name(name: &str) -> String {
    format!("topic/{name}")
}

/// A handle on one topic. Cheap to clone; every handle on a topic in this process shares
/// one writer state (the `Store` hands out the same one).
#[derive(Clone)]
pub struct Topic {
    shared: Arc<TopicShared>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.shared.name)
            .field("partitions", &self.partitions())
            .finish()
    }
}

/// State of one topic shared by all its handles.
pub(crate) struct TopicShared {
    name: String,
    tree: Tree,
    committer: Arc<Committer>,
    /// What readers may see; written only by writers holding `writer` (or, for `high`,
    /// by appenders after their flush, with `fetch_max`).
    cursors: Vec<Cursor>,
    writer: Mutex<Vec<PartitionState>>,
}

/// The published watermarks of a partition, and its size for `Store::stats`.
struct Cursor {
    low: AtomicU64,
    high: AtomicU64,
    /// Encoded bytes of the partition's chunks (`PartitionState::bytes`, copied).
    bytes: AtomicU64,
}

/// The writer's view of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionState {
    /// The offset the next appended record gets.
    next_offset: u64,
    log_start: u64,
    /// Sum of the encoded sizes of the partition's chunks.
    bytes: u64,
}

impl TopicShared {
    /// Loads the state of every partition from the tree.
    pub(crate) fn open(
        engine: &Engine,
        committer: Arc<Committer>,
        name: &str,
        partitions: u32,
    ) -> Result<TopicShared, StorageError> {
        let tree = engine.tree(&topic_tree_name(name))?;
        let states = (0..partitions)
            .map(|p| load_partition(&tree, name, p))
            .collect::<Result<Vec<_>, _>>()?;
        let cursors = states
            .iter()
            .map(|s| Cursor {
                low: AtomicU64::new(s.log_start),
                high: AtomicU64::new(s.next_offset),
                bytes: AtomicU64::new(s.bytes),
            })
            .collect();
        Ok(TopicShared {
            name: name.to_owned(),
            tree,
            committer,
            cursors,
            writer: Mutex::new(states),
        })
    }

    fn cursor(&self, partition: u32) -> Result<&Cursor, StorageError> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.cursors.get(p))
            .ok_or_else(|| StorageError::NoSuchPartition {
                topic: self.name.clone(),
                partition,
                partitions: self.partition_count(),
            })
    }

    fn partition_count(&self) -> u32 {
        // The count came in as a u32.
        u32::try_from(self.cursors.len()).unwrap_or(u32::MAX)
    }

    /// The writer lock. Poisoning is ignored: writer state is updated only after the
    /// engine writes it describes succeeded, so a panic cannot leave it ahead of the tree.
    fn lock_writer(&self) -> MutexGuard<'_, Vec<PartitionState>> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// (records, bytes, low watermark, high watermark) of every partition, from the
    /// published counters: no engine access, no lock.
    pub(crate) fn partition_stats(&self) -> Vec<(u64, u64, u64, u64)> {
        self.cursors
            .iter()
            .map(|c| {
                let high = c.high.load(Ordering::Acquire);
                let low = c.low.load(Ordering::Acquire).min(high);
                (high - low, c.bytes.load(Ordering::Relaxed), low, high)
            })
            .collect()
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn chunk_place(&self, partition: u32, base_offset: u64) -> String {
        format!(
            "topic {:?} partition {partition} chunk at offset {base_offset}",
            self.name
        )
    }
}

fn meta_place(topic: &str, partition: u32) -> String {
    format!("topic {topic:?} partition {partition} meta")
}

/// Reads a partition's state: the log start from its meta entry, the high watermark and
/// size from its batch summaries. These are the start-up checks of the log:
///
/// - a corrupt meta entry is logged and the log start taken from the first batch;
/// - a corrupt summary is rebuilt from its chunks and written back (see
///   [`summary::rebuild`]), so neither reads nor retention ever stop at it.
fn load_partition(
    tree: &Tree,
    topic: &str,
    partition: u32,
) -> Result<PartitionState, StorageError> {
    let log_start = match tree.get(&layout::meta_key(partition))? {
        Some(raw) => match codec::decode::<PartitionMeta>(&raw, || meta_place(topic, partition)) {
            Ok(meta) => meta.payload.log_start,
            Err(e) => {
                tracing::error!(error = %e, "ignoring a corrupt partition meta entry at start-up");
                0
            }
        },
        None => 0,
    };
    let mut state = PartitionState {
        next_offset: log_start,
        log_start,
        bytes: 0,
    };
    let mut first = true;
    let mut entries = summary::summaries(tree, topic, partition).peekable();
    while let Some(entry) = entries.next() {
        let (base, decoded) = entry?;
        let batch = match decoded {
            Ok(batch) => batch,
            Err(e) => {
                let next_base = match entries.peek() {
                    Some(Ok((next, _))) => Some(*next),
                    _ => None,
                };
                let rebuilt = summary::rebuild(tree, topic, partition, base, next_base)?;
                tracing::warn!(
                    error = %e,
                    records = rebuilt.records,
                    "rebuilt a corrupt batch summary from its chunks"
                );
                rebuilt
            }
        };
        if first {
            state.log_start = base;
            first = false;
        }
        state.next_offset = state.next_offset.max(base + batch.records);
        state.bytes += batch.bytes;
    }
    Ok(state)
}

impl Topic {
    pub(crate) fn new(shared: Arc<TopicShared>, clock: Arc<dyn Clock>) -> Topic {
        Topic { shared, clock }
    }

    pub(crate) fn shared(&self) -> &TopicShared {
        &self.shared
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn partitions(&self) -> u32 {
        self.shared.partition_count()
    }

    /// Appends `records` to `partition` with consecutive offsets and returns the offset of
    /// the first one (the high watermark if `records` is empty). The records are flushed
    /// to disk before this returns, by a flush shared with every other append, offset
    /// commit and lease change waiting at the same time (group commit). The records of
    /// one call stay together and in order; concurrent appends to one partition get
    /// offsets in the order they reach the writer lock.
    ///
    /// On error, none of the records are visible to readers; some may become visible with
    /// a later successful append (the producer's retry then duplicates them:
    /// at-least-once, as with Kafka without idempotence).
    pub fn append(&self, partition: u32, records: &[Record]) -> Result<u64, StorageError> {
        append::append(&self.shared, &*self.clock, partition, records)
    }

    /// Records of `partition` from `from_offset` on: at most `max_records`, and at most
    /// `max_bytes` by [`Record::size_bytes`], except that the first record is returned
    /// whatever its size, so a consumer can always make progress. Empty if
    /// `max_records` is 0 or nothing is at or after `from_offset`. Reading below the low
    /// watermark starts at the low watermark (the first offset returned tells). A corrupt
    /// chunk is logged and skipped.
    pub fn read(
        &self,
        partition: u32,
        from_offset: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, StorageError> {
        read::read(&self.shared, partition, from_offset, max_records, max_bytes)
    }

    /// The offset the next appended record will get.
    pub fn high_watermark(&self, partition: u32) -> Result<u64, StorageError> {
        Ok(self.shared.cursor(partition)?.high.load(Ordering::Acquire))
    }

    /// The first offset still stored (equal to the high watermark when the partition is
    /// empty).
    pub fn low_watermark(&self, partition: u32) -> Result<u64, StorageError> {
        Ok(self.shared.cursor(partition)?.low.load(Ordering::Acquire))
    }

    /// Removes whole chunks from the front of every partition while the oldest chunk was
    /// appended more than `max_age` ago or the partition holds more than
    /// `max_bytes_per_partition` (encoded size). Returns how many records were removed.
    /// The newest chunk is not spared: an old enough partition is emptied, and its offsets
    /// carry on from where they were.
    pub fn apply_retention(
        &self,
        max_age: Option<Duration>,
        max_bytes_per_partition: Option<u64>,
    ) -> Result<u64, StorageError> {
        retention::apply(
            &self.shared,
            self.clock.now_ms(),
            max_age,
            max_bytes_per_partition,
        )
    }

    /// The batches of a partition as their summaries describe them, for tests (see
    /// [`crate::testing`]).
    pub(crate) fn batch_infos(
        &self,
        partition: u32,
    ) -> Result<Vec<crate::testing::BatchInfo>, StorageError> {
        self.shared.cursor(partition)?;
        summary::summaries(&self.shared.tree, &self.shared.name, partition)
            .map(|entry| {
                let (base_offset, batch) = entry?;
                let batch = batch?;
                Ok(crate::testing::BatchInfo {
                    base_offset,
                    records: batch.records,
                    bytes: batch.bytes,
                    chunks: batch
                        .chunk_bases(base_offset)
                        .zip(&batch.chunk_records)
                        .map(|(base, &records)| (base, u64::from(records)))
                        .collect(),
                })
            })
            .collect()
    }

    /// Overwrites a batch summary with raw bytes, for tests of corruption.
    pub(crate) fn write_raw_summary(
        &self,
        partition: u32,
        base_offset: u64,
        raw: &[u8],
    ) -> Result<(), StorageError> {
        self.shared.cursor(partition)?;
        self.shared
            .tree
            .insert(&layout::summary_key(partition, base_offset), raw.to_vec())?;
        Ok(())
    }

    /// Overwrites the partition meta entry with raw bytes, for tests of corruption.
    pub(crate) fn write_raw_meta(&self, partition: u32, raw: &[u8]) -> Result<(), StorageError> {
        self.shared.cursor(partition)?;
        self.shared
            .tree
            .insert(&layout::meta_key(partition), raw.to_vec())?;
        Ok(())
    }

    /// Overwrites a chunk value with raw bytes, for tests of corruption.
    pub(crate) fn write_raw_chunk(
        &self,
        partition: u32,
        base_offset: u64,
        raw: &[u8],
    ) -> Result<(), StorageError> {
        self.shared.cursor(partition)?;
        self.shared
            .tree
            .insert(&layout::chunk_key(partition, base_offset), raw.to_vec())?;
        Ok(())
    }
}
