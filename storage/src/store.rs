//! The store: one database per process, handing out keyspaces, topics and offsets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::codec;
use crate::commit::Committer;
use crate::engine::memory::MemoryEngine;
use crate::engine::sled_engine::SledEngine;
use crate::engine::{Engine, KvEngine, Tree};
use crate::health::{Health, HealthState};
use crate::keyspace::{expiry, stripes::Stripes, KeyspaceShared, KEYSPACE_TREE_PREFIX};
use crate::lease::{Leases, LeasesShared};
use crate::stats::{KeyspaceStats, PartitionStats, StoreStats};
use crate::topic::{LogConfig, TopicShared};
use crate::{ConsumerOffsets, Keyspace, StorageError, Topic};

/// Internal trees. Keyspace and topic trees are prefixed `keyspace/` and `topic/`, so
/// no user-chosen name can reach these.
const EXPIRY_TREE: &str = "panoptes/expiry";
const TOPICS_TREE: &str = "panoptes/topics";
const OFFSETS_TREE: &str = "panoptes/consumer_offsets";
const LEASES_TREE: &str = "panoptes/leases";

/// The most partitions a topic may have, when created and when opened: each costs an
/// open log and its index in memory, so a count stored by a bad request (or an older
/// version that did not check) is refused with an error instead of allocating for it.
pub const MAX_PARTITIONS: u32 = 65_536;

/// Keyspace and topic names are at most this long (the expiry index stores the length
/// in one byte).
const MAX_NAME_BYTES: usize = 255;

/// What an acknowledged write (an append, an offset commit, a lease change,
/// `Store::flush`) survives. The node's `storage.durability`: `process` / `fsync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash of the process (kill -9, panic, OOM kill), which the crash test
    /// checks: the write is in the OS (appends: the page cache; sled: on its way to the
    /// disk, `sync_file_range`) before it is acknowledged. A power loss or a kernel crash
    /// can still take the last writes. (Kafka's default, no fsync per message, is the
    /// same and relies on replicas.)
    #[default]
    Process,
    /// Also survives a power loss: an `fdatasync` of the segment files written and of
    /// sled's log, and an `fsync` of the directories of new files, before the write is
    /// acknowledged; shared by group commit. A failed one fails the store (`health`).
    /// Measured on the reference machine: 0.1 to 1 ms more per flush, depending on the
    /// disk's load.
    PowerLoss,
}

/// The stored description of a topic.
#[derive(Debug, Serialize, Deserialize)]
struct TopicMeta {
    partitions: u32,
}

/// The storage of one process. Cheap to clone; clones share everything. Handles
/// (`Keyspace`, `Topic`, `ConsumerOffsets`) are `Send + Sync + Clone` and all calls are
/// blocking: from async code, call them inside `tokio::task::spawn_blocking`.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
}

struct Shared {
    engine: Engine,
    committer: Arc<Committer>,
    expiry: Tree,
    topic_meta: Tree,
    offsets: Tree,
    leases: Arc<LeasesShared>,
    stripes: Arc<Stripes>,
    /// Where and how topics keep their records.
    log: LogConfig,
    /// One writer state per topic in the process, whatever the number of handles.
    topics: Mutex<HashMap<String, Arc<TopicShared>>>,
    /// One set of counts per keyspace in the process.
    keyspaces: Mutex<HashMap<String, Arc<KeyspaceShared>>>,
}

/// Locks one of the handle maps. They are only ever inserted into, after the value is
/// fully built, so a poisoned lock is taken anyway.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir` on the sled engine, creating the directory if needed.
    /// A database left by a crash is recovered by sled (every flushed write is there);
    /// each topic is then checked as it is opened (a corrupt chunk summary is logged and
    /// skipped). Fails with [`StorageError::Locked`] if another process (or another
    /// `Store` of this process) has it open.
    pub fn open(dir: &Path) -> Result<Store, StorageError> {
        Store::open_with(dir, Durability::default())
    }

    /// [`Store::open`] with a choice of how durable an acknowledged write is.
    pub fn open_with(dir: &Path, durability: Durability) -> Result<Store, StorageError> {
        Store::with_engine(Arc::new(SledEngine::open(dir, durability)?))
    }

    /// A sled store in a temporary directory, removed when the last clone is dropped.
    pub fn temporary() -> Result<Store, StorageError> {
        Store::with_engine(Arc::new(SledEngine::temporary()?))
    }

    /// A store in memory (the memory engine): same behaviour as on sled, nothing on disk,
    /// gone when the last clone is dropped. For tests and throwaway runs.
    pub fn memory() -> Store {
        // Opening the internal trees of a fresh memory engine cannot fail.
        match Store::with_engine(Arc::new(MemoryEngine::new())) {
            Ok(store) => store,
            Err(e) => unreachable!("the memory engine failed to open: {e}"),
        }
    }

    pub(crate) fn with_engine(engine: Arc<dyn KvEngine>) -> Result<Store, StorageError> {
        Store::with_engine_handle(Engine::new(engine))
    }

    pub(crate) fn with_engine_handle(engine: Engine) -> Result<Store, StorageError> {
        let health = Arc::new(HealthState::default());
        let committer = Arc::new(Committer::new(engine.clone(), Arc::clone(&health)));
        let shared = Shared {
            expiry: engine.tree(EXPIRY_TREE)?,
            topic_meta: engine.tree(TOPICS_TREE)?,
            offsets: engine.tree(OFFSETS_TREE)?,
            leases: Arc::new(LeasesShared::new(
                engine.tree(LEASES_TREE)?,
                Arc::clone(&committer),
            )),
            committer,
            log: LogConfig {
                files: engine.files(),
                durability: engine.durability(),
                health,
                segment_bytes: crate::topic::layout::SEGMENT_BYTES,
                appended: Arc::default(),
            },
            engine,
            stripes: Arc::new(Stripes::new()),
            topics: Mutex::new(HashMap::new()),
            keyspaces: Mutex::new(HashMap::new()),
        };
        let store = Store {
            shared: Arc::new(shared),
            clock: Arc::new(SystemClock),
        };
        store.clamp_committed_offsets()?;
        Ok(store)
    }

    /// Moves every committed offset that is past its partition's high watermark back to
    /// it, and says so in the log.
    ///
    /// Why: the log can end before a committed offset after a restart (a torn tail cut
    /// off, a power loss that took the last writes with `Durability::Process`). The next
    /// records appended get the offsets from the log's end, and a group left past them
    /// would skip them without a trace. Run at open, before any handle is handed out;
    /// offsets of topics that do not exist are left alone.
    fn clamp_committed_offsets(&self) -> Result<(), StorageError> {
        let mut batch = crate::engine::Batch::default();
        let mut topics: HashMap<String, Option<Topic>> = HashMap::new();
        for commit in crate::offsets::all(&self.shared.offsets)? {
            let topic = match topics.get(&commit.topic) {
                Some(topic) => topic.clone(),
                None => {
                    let topic = match self.existing_topic(&commit.topic) {
                        Ok(topic) => topic,
                        Err(e) => {
                            tracing::warn!(topic = %commit.topic, error = %e,
                                "cannot open a topic to check the offsets committed on it");
                            None
                        }
                    };
                    topics.insert(commit.topic.clone(), topic.clone());
                    topic
                }
            };
            let Some(high) = topic.and_then(|t| t.high_watermark(commit.partition).ok()) else {
                continue;
            };
            if commit.offset > high {
                tracing::warn!(
                    group = %commit.group,
                    topic = %commit.topic,
                    partition = commit.partition,
                    committed = commit.offset,
                    high_watermark = high,
                    "a committed offset was past the end of its partition (the log lost its \
                     tail): moved back to the end, so the group reads what is appended next"
                );
                batch.insert(&commit.key, crate::offsets::encode(&commit, high)?);
            }
        }
        if !batch.is_empty() {
            self.shared.offsets.apply(batch)?;
            self.shared.committer.wait_durable()?;
        }
        Ok(())
    }

    /// The same store with segments of `bytes` (before any topic is opened), for tests
    /// of segment rolling and deletion.
    pub(crate) fn with_segment_bytes(self, bytes: u64) -> Store {
        let mut shared = match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared,
            Err(shared) => return Store { shared, ..self },
        };
        shared.log.segment_bytes = bytes;
        Store {
            shared: Arc::new(shared),
            clock: self.clock,
        }
    }

    /// The same store with its topic log's configuration changed by `change`, for
    /// `testing` (fault injection). Refused once the store is shared or a topic is open:
    /// they would keep the old configuration.
    pub(crate) fn with_log(
        self,
        change: impl FnOnce(&mut LogConfig),
    ) -> Result<Store, StorageError> {
        let refused = |reason: &str| StorageError::InvalidArgument {
            what: "changing the topic log of a store".into(),
            reason: reason.into(),
        };
        let mut shared =
            Arc::try_unwrap(self.shared).map_err(|_| refused("the store has other handles"))?;
        if !lock(&shared.topics).is_empty() {
            return Err(refused("topics are open"));
        }
        change(&mut shared.log);
        Ok(Store {
            shared: Arc::new(shared),
            clock: self.clock,
        })
    }

    /// The engine, for `testing` (which builds a new store on it: a restart of a
    /// memory store).
    pub(crate) fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// The same store reading time from `clock`: handles made from it afterwards (and
    /// `sweep_expired` on it) use that clock.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Store {
        Store { clock, ..self }
    }

    /// The keyspace `name`, created on first use.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace, StorageError> {
        check_name("keyspace", name)?;
        Ok(Keyspace::new(
            self.keyspace_shared(name)?,
            self.shared.expiry.clone(),
            Arc::clone(&self.shared.stripes),
            Arc::clone(&self.clock),
        ))
    }

    /// The shared state of keyspace `name`, opened (and counted) on first use.
    fn keyspace_shared(&self, name: &str) -> Result<Arc<KeyspaceShared>, StorageError> {
        let mut keyspaces = lock(&self.shared.keyspaces);
        if let Some(shared) = keyspaces.get(name) {
            return Ok(Arc::clone(shared));
        }
        let shared = Arc::new(KeyspaceShared::open(&self.shared.engine, name)?);
        keyspaces.insert(name.to_owned(), Arc::clone(&shared));
        Ok(shared)
    }

    /// The topic `name`, created with `partitions` partitions if it does not exist. An
    /// existing topic keeps its partition count, whatever `partitions` says: read it
    /// from [`Topic::partitions`].
    ///
    /// A new topic's metadata is saved only after its partitions were opened: a creation
    /// that fails leaves nothing behind. At most [`MAX_PARTITIONS`] partitions, whether
    /// asked for or stored.
    pub fn topic(&self, name: &str, partitions: u32) -> Result<Topic, StorageError> {
        check_name("topic", name)?;
        let count = |partitions: u32, stored: bool| {
            if (1..=MAX_PARTITIONS).contains(&partitions) {
                return Ok(partitions);
            }
            Err(StorageError::InvalidArgument {
                what: format!("topic {name:?}"),
                reason: if stored {
                    format!(
                        "its metadata says {partitions} partitions, not 1 to {MAX_PARTITIONS}: it is not opened (delete the topic, or its entry in the data directory)"
                    )
                } else {
                    format!("{partitions} partitions: a topic has 1 to {MAX_PARTITIONS}")
                },
            })
        };
        let mut topics = lock(&self.shared.topics);
        if let Some(shared) = topics.get(name) {
            return Ok(Topic::new(Arc::clone(shared), Arc::clone(&self.clock)));
        }
        let place = || format!("metadata of topic {name:?}");
        let (partitions, new) = match self.shared.topic_meta.get(name.as_bytes())? {
            Some(raw) => (
                count(
                    codec::decode::<TopicMeta>(&raw, place)?.payload.partitions,
                    true,
                )?,
                false,
            ),
            None => (count(partitions, false)?, true),
        };
        let shared = Arc::new(TopicShared::open(
            &self.shared.engine,
            self.shared.log.clone(),
            Arc::clone(&self.shared.committer),
            name,
            partitions,
        )?);
        if new {
            let meta = codec::encode(None, &TopicMeta { partitions }, place)?;
            self.shared.topic_meta.insert(name.as_bytes(), meta)?;
            // Creating a topic is rare and a producer may be told it exists: make it last.
            self.shared.committer.wait_durable()?;
        }
        topics.insert(name.to_owned(), Arc::clone(&shared));
        Ok(Topic::new(shared, Arc::clone(&self.clock)))
    }

    /// The topic `name` if it exists (a Kafka Metadata request must not create topics
    /// when auto-creation is off).
    pub fn existing_topic(&self, name: &str) -> Result<Option<Topic>, StorageError> {
        check_name("topic", name)?;
        let known = lock(&self.shared.topics).contains_key(name)
            || self.shared.topic_meta.get(name.as_bytes())?.is_some();
        if !known {
            return Ok(None);
        }
        // Its stored partition count wins over the 1 passed here.
        self.topic(name, 1).map(Some)
    }

    /// Deletes topic `name`: its records, its metadata and the committed offsets of every
    /// group on it. Returns whether it existed. Handles opened before keep pointing at the
    /// deleted state (their reads come back empty): callers that keep handles (the
    /// pipeline's own consumers) must not have their topics deleted under them. A topic
    /// created again with the same name starts at offset 0.
    pub fn delete_topic(&self, name: &str) -> Result<bool, StorageError> {
        check_name("topic", name)?;
        let mut topics = lock(&self.shared.topics);
        let open = topics.remove(name);
        if let Some(shared) = &open {
            shared.mark_deleted();
        }
        let existed = open.is_some() | self.shared.topic_meta.get(name.as_bytes())?.is_some();
        if !existed {
            return Ok(false);
        }
        self.shared.topic_meta.remove(name.as_bytes())?;
        let dir = crate::topic::layout::topic_dir(name);
        self.shared
            .log
            .files
            .remove_all(&dir)
            .map_err(|e| StorageError::Engine {
                op: "delete the segment files",
                tree: format!("topic {name:?}"),
                source: Box::new(e),
            })?;
        if self.shared.log.durability == Durability::PowerLoss {
            // Or a power loss could bring the files back under a topic created anew.
            if let Err(e) = self.shared.log.files.sync_dir("") {
                let what = format!("fsync of directory {}", crate::topic::layout::shown(""));
                return Err(self.shared.log.health.fail_io(what, &e));
            }
            self.shared.log.health.count_fsync();
        }
        let tree = self
            .shared
            .engine
            .tree(&crate::topic::topic_tree_name(name))?;
        clear_tree(&tree)?;
        crate::offsets::forget_topic(&self.shared.offsets, name)?;
        drop(topics);
        self.shared.committer.wait_durable()?;
        Ok(true)
    }

    /// The names of every topic, sorted.
    pub fn topic_names(&self) -> Result<Vec<String>, StorageError> {
        let mut names = Vec::new();
        for entry in self.shared.topic_meta.iter() {
            let (key, _) = entry?;
            match String::from_utf8(key.to_vec()) {
                Ok(name) => names.push(name),
                Err(_) => tracing::warn!(
                    key = %key.escape_ascii(),
                    "skipping a topic whose stored name is not UTF-8"
                ),
            }
        }
        Ok(names)
    }

    pub fn consumer_offsets(&self) -> Result<ConsumerOffsets, StorageError> {
        Ok(ConsumerOffsets::new(
            self.shared.offsets.clone(),
            Arc::clone(&self.shared.committer),
        ))
    }

    /// The leases of this store (see [`Leases`]). Every handle shares one lock.
    pub fn leases(&self) -> Leases {
        Leases::new(Arc::clone(&self.shared.leases), Arc::clone(&self.clock))
    }

    /// Removes every expired key of every keyspace, and every expired lease, and returns
    /// how many. Costs O(expired keys) for keyspaces (it walks the expiry index only up
    /// to now) plus O(leases stored).
    pub fn sweep_expired(&self) -> Result<usize, StorageError> {
        let keys = expiry::sweep(
            &self.shared.expiry,
            &self.shared.stripes,
            self.clock.now_ms(),
            |name| self.keyspace_shared(name),
        )?;
        Ok(keys + self.leases().sweep_expired()?)
    }

    /// Runs `hook` with the topic's name after every successful append to any topic of
    /// this store, on the appending thread (so it must be quick: waking waiters of new
    /// records, say).
    pub fn on_append(&self, hook: crate::topic::AppendHook) {
        self.shared.log.appended.add(hook);
    }

    /// Makes every write so far durable (keyspace writes included), sharing the flush
    /// with concurrent appends.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.shared.committer.wait_durable()
    }

    /// What the store can do now: [`Health::Ok`], writes to the topic log failing (with
    /// the error and the file, until one succeeds), or failed for good (restart the
    /// process). Cheap: for every `/ready`.
    pub fn health(&self) -> Health {
        self.shared.log.health.health(self.shared.engine.failure())
    }

    /// Housekeeping for a timer (the node runs it every second): keeps the engine's
    /// space reserved ahead of a full disk, and while writes are failing, writes a probe
    /// as large as the largest frame (then removes it), so that the condition clears once
    /// space is back even if nothing else writes. Returns the health after.
    pub fn check(&self) -> Health {
        self.shared.engine.reserve_space();
        if self.shared.log.health.writes_failing() {
            self.probe_write();
        }
        self.health()
    }

    /// See [`Store::check`]. A failing probe leaves the reason as the real write gave it.
    fn probe_write(&self) {
        match crate::files::probe(&*self.shared.log.files) {
            Ok(()) => self.shared.log.health.write_succeeded(),
            Err(e) => tracing::debug!(error = %e, "the write probe still fails"),
        }
    }

    /// Bytes on disk: the database and the topics' segment files.
    pub fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(self.shared.engine.size_on_disk()? + self.shared.log.files.size_on_disk())
    }

    /// Sizes of every keyspace and topic partition, disk use and flush counts.
    ///
    /// Cheap enough for every `/metrics` scrape: the sizes are counters kept by the
    /// writers. The first call in a process opens every keyspace and topic not opened yet
    /// (which counts a keyspace's keys once, and reads a topic's chunk summaries once).
    pub fn stats(&self) -> Result<StoreStats, StorageError> {
        let mut names = Vec::new();
        for tree in self.shared.engine.tree_names()? {
            if let Some(name) = tree.strip_prefix(KEYSPACE_TREE_PREFIX) {
                names.push(name.to_owned());
            }
        }
        names.extend(lock(&self.shared.keyspaces).keys().cloned());
        names.sort_unstable();
        names.dedup();
        let mut keyspaces = Vec::with_capacity(names.len());
        for name in names {
            let shared = self.keyspace_shared(&name)?;
            let (keys, bytes) = shared.counts();
            keyspaces.push(KeyspaceStats {
                name: shared.name().to_owned(),
                keys,
                bytes,
            });
        }

        let mut topics = Vec::new();
        let mut segment_bytes = 0;
        for name in self.topic_names()? {
            // Opening an existing topic keeps its partition count; `1` is not used.
            let topic = self.topic(&name, 1)?;
            segment_bytes += topic.shared().disk_bytes();
            for (partition, (records, bytes, low, high)) in
                (0u32..).zip(topic.shared().partition_stats())
            {
                topics.push(PartitionStats {
                    topic: topic.shared().name().to_owned(),
                    partition,
                    records,
                    bytes,
                    low,
                    high,
                });
            }
        }

        let commits = self.shared.committer.counts();
        let faults = self.shared.log.health.counts();
        Ok(StoreStats {
            engine: self.shared.engine.kind(),
            keyspaces,
            topics,
            // Every topic is open here: its segment sizes come from the index, not from a
            // walk of the directory (160 partitions: 1 ms a walk, per /metrics scrape).
            disk_bytes: self.shared.engine.size_on_disk()?
                + if self.shared.log.files.on_disk() {
                    segment_bytes
                } else {
                    0
                },
            flushes: commits.flushes,
            durable_writes: commits.durable_writes,
            durability: self.shared.log.durability,
            write_errors: faults.write_errors,
            quarantined_segments: faults.quarantined_segments,
            quarantined_bytes: faults.quarantined_bytes,
            corrupt_frames_read: faults.corrupt_frames_read,
            fsyncs: faults.fsyncs,
            health_changes: faults.health_changes,
        })
    }
}

fn check_name(kind: &'static str, name: &str) -> Result<(), StorageError> {
    let reason = if name.is_empty() {
        "it is empty".to_owned()
    } else if name.len() > MAX_NAME_BYTES {
        format!(
            "{} bytes long, at most {MAX_NAME_BYTES} allowed",
            name.len()
        )
    } else if name.chars().any(char::is_control) {
        "it contains control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidName {
        kind,
        name: name.chars().take(64).collect(),
        reason,
    })
}

/// Removes every entry of `tree`, a bounded batch at a time.
fn clear_tree(tree: &Tree) -> Result<(), StorageError> {
    loop {
        let mut batch = crate::engine::Batch::default();
        for entry in tree.iter().take(1024) {
            let (key, _) = entry?;
            batch.remove(&key);
        }
        if batch.is_empty() {
            return Ok(());
        }
        tree.apply(batch)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory from before the bound, holding a topic with 2^32-1 partitions: it
    /// is listed, and refused with an error when opened, not allocated for.
    #[test]
    fn a_stored_absurd_partition_count_is_refused_on_open() {
        let store = Store::memory();
        let place = || "test".to_string();
        let meta = codec::encode(
            None,
            &TopicMeta {
                partitions: u32::MAX,
            },
            place,
        )
        .unwrap();
        store.shared.topic_meta.insert(b"old", meta).unwrap();
        assert_eq!(store.topic_names().unwrap(), vec!["old"]);
        let err = store.existing_topic("old").err().unwrap().to_string();
        assert_eq!(
            err,
            "invalid argument for topic \"old\": its metadata says 4294967295 partitions, not 1 to 65536: it is not opened (delete the topic, or its entry in the data directory)"
        );
        assert_eq!(
            store.stats().err().map(|e| e.to_string()),
            Some(err),
            "reported, not opened"
        );
        assert!(store.delete_topic("old").unwrap(), "and it can be deleted");
        assert!(store.topic_names().unwrap().is_empty());
    }
}

#[cfg(test)]
mod append_hook_tests {
    use super::*;
    use crate::Record;
    use std::sync::Mutex;

    fn record(value: &[u8]) -> Record {
        Record {
            key: None,
            value: value.to_vec(),
            timestamp_ms: 1,
            headers: Vec::new(),
        }
    }

    /// Each successful append runs every hook once, with the name of the topic appended to.
    #[test]
    fn append_hooks_hear_which_topic_grew() {
        let store = Store::memory();
        let heard = Arc::new(Mutex::new(Vec::<String>::new()));
        let h = Arc::clone(&heard);
        store.on_append(Arc::new(move |topic| {
            h.lock().unwrap().push(topic.to_owned())
        }));
        let (a, b) = (store.topic("a", 2).unwrap(), store.topic("b", 1).unwrap());
        a.append(1, &[record(b"1"), record(b"2")]).unwrap();
        b.append(0, &[record(b"3")]).unwrap();
        a.append(0, &[record(b"4")]).unwrap();
        assert_eq!(*heard.lock().unwrap(), ["a", "b", "a"]);
    }
}
