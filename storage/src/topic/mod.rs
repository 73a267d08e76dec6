//! Topics: append-only partitioned logs with offsets (what Kafka's log did).
//!
//! See [`layout`] for how a topic sits in its segment files and its engine tree. Offsets
//! of a partition start at 0 and are consecutive. Writers (appends, retention) of a
//! partition are serialized by its log's lock; readers hold it only to find the frames
//! they want and read them unlocked, seeing records up to the *published* high
//! watermark, which moves only once the records are as durable as the store promises
//! (see [`Topic::append`]), so a consumer never sees a record that a crash could take
//! back (and whose offset could then be reused).

mod append;
mod chunk;
pub(crate) mod layout;
mod legacy;
mod log;
mod read;
mod retention;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::codec;
use crate::commit::Committer;
use crate::engine::{Engine, Tree};
use crate::files::Files;
use crate::health::HealthState;
use crate::{Durability, Record, StorageError, StoredRecord};
use layout::PartitionMeta;

/// The engine tree holding topic `name`'s partition metadata.
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

/// Where and how a store keeps its topics' records.
#[derive(Clone)]
pub(crate) struct LogConfig {
    pub files: Arc<dyn Files>,
    pub durability: Durability,
    /// Write failures and fault counts, shared by the whole store.
    pub health: Arc<HealthState>,
    /// A segment takes no more frames past this size.
    pub segment_bytes: u64,
    /// Called after every successful append (see [`crate::Store::on_append`]).
    pub appended: Arc<AppendHooks>,
}

/// A callback run after each successful append with the topic's name.
pub type AppendHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Callbacks run after each successful append, on the appending thread: they must be
/// quick (wake a waiter, bump a counter).
#[derive(Default)]
pub(crate) struct AppendHooks(std::sync::RwLock<Vec<AppendHook>>);

impl AppendHooks {
    pub fn add(&self, hook: AppendHook) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(hook);
    }

    fn run(&self, topic: &str) {
        for hook in self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            hook(topic);
        }
    }
}

/// State of one topic shared by all its handles.
pub(crate) struct TopicShared {
    name: String,
    /// Partition metadata (the log start).
    tree: Tree,
    config: LogConfig,
    committer: Arc<Committer>,
    /// What readers may see, published by the writers; lock-free for stats.
    cursors: Vec<Cursor>,
    logs: Vec<RwLock<log::Log>>,
    /// Set by `Store::delete_topic`: handles still held read nothing, append nothing.
    deleted: AtomicBool,
}

/// The published watermarks of a partition, and its size for `Store::stats`.
struct Cursor {
    low: AtomicU64,
    high: AtomicU64,
    /// Bytes of the partition's frames from the log start (`Log::bytes`, copied).
    bytes: AtomicU64,
}

impl TopicShared {
    /// Opens every partition's segments (see [`log::open`] for the start-up checks), and
    /// moves a log of the first builds out of the engine tree first (see [`legacy`]).
    pub(crate) fn open(
        engine: &Engine,
        config: LogConfig,
        committer: Arc<Committer>,
        name: &str,
        partitions: u32,
    ) -> Result<TopicShared, StorageError> {
        let tree = engine.tree(&topic_tree_name(name))?;
        let dir = layout::topic_dir(name);
        let mut logs = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            let meta = load_meta(&tree, name, p)?;
            let place = || format!("topic {name:?} partition {p}");
            let (log, repairs) =
                log::open(&*config.files, layout::partition_dir(&dir, p), meta, place)?;
            for (path, pos, cut, why) in &repairs.truncated {
                tracing::warn!(topic = name, partition = p, segment = %layout::shown(path), position = pos, bytes = cut, reason = %why,
                    "cut a torn tail off the topic log (a write a crash interrupted: never acknowledged)");
            }
            for q in &repairs.quarantined {
                config.health.count_quarantine(q.bytes);
                tracing::error!(
                    topic = name,
                    partition = p,
                    segment = %layout::shown(&q.segment),
                    position = q.position,
                    bytes = q.bytes,
                    side_file = %layout::shown(&q.side_file),
                    offsets = %format!("{}..{}", q.from_offset, q.skipped_until),
                    reason = %q.reason,
                    "corrupt frame in a segment of the topic log: moved the segment from it to its end \
                     into a side file; the records before it stay readable, the offsets of what was \
                     moved are not used again"
                );
            }
            logs.push(log);
        }
        let cursors = logs
            .iter()
            .map(|l| Cursor {
                low: AtomicU64::new(l.log_start),
                high: AtomicU64::new(l.next_offset),
                bytes: AtomicU64::new(l.bytes),
            })
            .collect();
        let topic = TopicShared {
            name: name.to_owned(),
            tree,
            config,
            committer,
            cursors,
            logs: logs.into_iter().map(RwLock::new).collect(),
            deleted: AtomicBool::new(false),
        };
        for p in 0..partitions {
            legacy::migrate(&topic, p)?;
        }
        Ok(topic)
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

    /// A partition's log for reading. Poisoning is ignored: the log is updated only
    /// after the file writes it describes succeeded.
    fn read_log(&self, partition: u32) -> RwLockReadGuard<'_, log::Log> {
        self.logs[partition as usize]
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_log(&self, partition: u32) -> RwLockWriteGuard<'_, log::Log> {
        self.logs[partition as usize]
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// (records, bytes, low watermark, high watermark) of every partition, from the
    /// published counters: no file access, no lock.
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

    /// Bytes of the topic's segment files, from the index (no file system call).
    pub(crate) fn disk_bytes(&self) -> u64 {
        (0..self.partition_count())
            .map(|p| {
                let log = self.read_log(p);
                log.segments.iter().map(|s| s.end).sum::<u64>()
            })
            .sum()
    }

    /// Marks the topic deleted (`Store::delete_topic`): handles still held read
    /// nothing from now on, and their appends fail.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    fn frame_place(&self, partition: u32, base_offset: u64) -> String {
        format!(
            "topic {:?} partition {partition} frame at offset {base_offset}",
            self.name
        )
    }
}

fn meta_place(topic: &str, partition: u32) -> String {
    format!("topic {topic:?} partition {partition} meta")
}

/// The stored log start of a partition; a corrupt entry is logged and ignored (the log
/// start is then the first frame's offset).
fn load_meta(tree: &Tree, topic: &str, partition: u32) -> Result<Option<u64>, StorageError> {
    Ok(match tree.get(&layout::meta_key(partition))? {
        Some(raw) => match codec::decode::<PartitionMeta>(&raw, || meta_place(topic, partition)) {
            Ok(meta) => Some(meta.payload.log_start),
            Err(e) => {
                tracing::error!(error = %e, "ignoring a corrupt partition meta entry at start-up");
                None
            }
        },
        None => None,
    })
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
    /// the first one (the high watermark if `records` is empty). Before this returns, the
    /// records are written to the partition's segment file, which a crash of the process
    /// cannot take back (they are in the OS); with [`Durability::PowerLoss`] they are also
    /// synced to the disk, by an `fdatasync` shared with every other append, offset commit
    /// and lease change waiting at the same time (group commit). The records of one call
    /// stay together and in order; concurrent appends to one partition get offsets in the
    /// order they reach the partition's lock.
    ///
    /// On error none of the records are kept: a write that fails (disk full, I/O error:
    /// [`StorageError::Write`], also reported by [`Store::health`](crate::Store::health)
    /// until a write succeeds again) is cut off the files before the partition's lock is
    /// released, so a retry does not duplicate them. After a failed `fdatasync` the
    /// store has failed ([`StorageError::Failed`]): the records may or may not be on
    /// disk, and nothing more is acknowledged until the process restarts.
    pub fn append(&self, partition: u32, records: &[Record]) -> Result<u64, StorageError> {
        let base = append::append(&self.shared, &*self.clock, partition, records)?;
        self.shared.config.appended.run(&self.shared.name);
        Ok(base)
    }

    /// Records of `partition` from `from_offset` on: at most `max_records`, and at most
    /// `max_bytes` by [`Record::size_bytes`], except that the first record is returned
    /// whatever its size, so a consumer can always make progress. Empty if
    /// `max_records` is 0 or nothing is at or after `from_offset`. Reading below the low
    /// watermark starts at the low watermark (the first offset returned tells). A corrupt
    /// frame (CRC mismatch) is logged and skipped.
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

    /// Removes whole frames (the pieces appends were cut into) from the front of every
    /// partition while the oldest was appended more than `max_age` ago or the partition
    /// holds more than `max_bytes_per_partition` (frame bytes, headers included). Returns
    /// how many records were removed. The newest frame is not spared: an old enough
    /// partition is emptied, and its offsets carry on from where they were. Readers stop
    /// seeing the frames at once; a segment file is deleted once all its frames are gone
    /// (never the one being appended to), so the disk follows a segment at a time.
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

    /// The frames of a partition from its log start, for tests (see [`crate::testing`]).
    pub(crate) fn batch_infos(
        &self,
        partition: u32,
    ) -> Result<Vec<crate::testing::BatchInfo>, StorageError> {
        self.shared.cursor(partition)?;
        let log = self.shared.read_log(partition);
        Ok(log
            .live_frames()
            .map(|(_, f)| crate::testing::BatchInfo {
                base_offset: f.base,
                records: u64::from(f.records),
                bytes: f.bytes(),
                chunks: vec![(f.base, u64::from(f.records))],
            })
            .collect())
    }

    /// The topics' files and `partition`'s directory among them, for tests.
    pub(crate) fn partition_dir(
        &self,
        partition: u32,
    ) -> Result<(Arc<dyn Files>, String), StorageError> {
        self.shared.cursor(partition)?;
        let dir = self.shared.read_log(partition).dir.clone();
        Ok((Arc::clone(&self.shared.config.files), dir))
    }

    /// The base offsets of a partition's segment files, for tests.
    pub(crate) fn segment_bases(&self, partition: u32) -> Result<Vec<u64>, StorageError> {
        self.shared.cursor(partition)?;
        Ok(self
            .shared
            .read_log(partition)
            .segments
            .iter()
            .map(|s| s.base)
            .collect())
    }

    /// Overwrites the partition meta entry with raw bytes, for tests of corruption.
    pub(crate) fn write_raw_meta(&self, partition: u32, raw: &[u8]) -> Result<(), StorageError> {
        self.shared.cursor(partition)?;
        self.shared
            .tree
            .insert(&layout::meta_key(partition), raw.to_vec())?;
        Ok(())
    }

    /// The segment file and frame holding `offset`, for tests of corruption.
    fn frame_holding(
        &self,
        partition: u32,
        offset: u64,
    ) -> Result<(String, Arc<dyn crate::files::SegmentFile>, log::Frame), StorageError> {
        self.shared.cursor(partition)?;
        let log = self.shared.read_log(partition);
        log.segments
            .iter()
            .flat_map(|s| s.frames.iter().map(move |f| (s, f)))
            .find(|(_, f)| f.base <= offset && offset < f.end())
            .map(|(s, f)| (s.path.clone(), Arc::clone(&s.file), *f))
            .ok_or_else(|| StorageError::InvalidArgument {
                what: format!("offset {offset}"),
                reason: "no frame holds it".into(),
            })
    }

    /// Overwrites bytes of the frame holding `offset`, from `at` bytes into it (its
    /// header starts at 0), for tests of corruption.
    pub(crate) fn write_raw_frame(
        &self,
        partition: u32,
        offset: u64,
        at: u64,
        raw: &[u8],
    ) -> Result<(), StorageError> {
        let (path, file, frame) = self.frame_holding(partition, offset)?;
        file.write_at(frame.pos + at, raw)
            .map_err(|e| append::write_error(&path, e))
    }

    /// The bytes of the frame holding `offset`, header first, for tests of corruption.
    pub(crate) fn read_raw_frame(
        &self,
        partition: u32,
        offset: u64,
    ) -> Result<Vec<u8>, StorageError> {
        let (path, file, frame) = self.frame_holding(partition, offset)?;
        let mut buf = vec![0u8; usize::try_from(frame.bytes()).unwrap_or(0)];
        file.read_at(frame.pos, &mut buf)
            .map_err(|e| StorageError::Engine {
                op: "read",
                tree: layout::shown(&path),
                source: Box::new(e),
            })?;
        Ok(buf)
    }
}
