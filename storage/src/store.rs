//! The store: one database per process, handing out keyspaces, topics and offsets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::codec;
use crate::engine::{Engine, Tree};
use crate::keyspace::{expiry, keyspace_tree_name, stripes::Stripes};
use crate::topic::TopicShared;
use crate::{ConsumerOffsets, Keyspace, StorageError, Topic};

/// Internal trees. Keyspace and topic trees are prefixed `keyspace/` and `topic/`, so
/// no user-chosen name can reach these.
const EXPIRY_TREE: &str = "panoptes/expiry";
const TOPICS_TREE: &str = "panoptes/topics";
const OFFSETS_TREE: &str = "panoptes/consumer_offsets";

/// Keyspace and topic names are at most this long (the expiry index stores the length
/// in one byte).
const MAX_NAME_BYTES: usize = 255;

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
    expiry: Tree,
    topic_meta: Tree,
    offsets: Tree,
    stripes: Arc<Stripes>,
    /// One writer state per topic in the process, whatever the number of handles.
    topics: Mutex<HashMap<String, Arc<TopicShared>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir`, creating the directory if needed. Fails with
    /// [`StorageError::Locked`] if another process (or another `Store` of this process)
    /// has it open.
    pub fn open(dir: &Path) -> Result<Store, StorageError> {
        Store::with_engine(Engine::open(dir)?)
    }

    /// A store in a temporary directory, removed when the last clone is dropped.
    pub fn temporary() -> Result<Store, StorageError> {
        Store::with_engine(Engine::temporary()?)
    }

    fn with_engine(engine: Engine) -> Result<Store, StorageError> {
        let shared = Shared {
            expiry: engine.tree(EXPIRY_TREE)?,
            topic_meta: engine.tree(TOPICS_TREE)?,
            offsets: engine.tree(OFFSETS_TREE)?,
            engine,
            stripes: Arc::new(Stripes::new()),
            topics: Mutex::new(HashMap::new()),
        };
        Ok(Store {
            shared: Arc::new(shared),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same store reading time from `clock`: handles made from it afterwards (and
    /// `sweep_expired` on it) use that clock.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Store {
        Store { clock, ..self }
    }

    /// The keyspace `name`, created on first use.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace, StorageError> {
        check_name("keyspace", name)?;
        let data = self.shared.engine.tree(&keyspace_tree_name(name))?;
        Ok(Keyspace::new(
            name,
            data,
            self.shared.expiry.clone(),
            Arc::clone(&self.shared.stripes),
            Arc::clone(&self.clock),
        ))
    }

    /// The topic `name`, created with `partitions` partitions if it does not exist. An
    /// existing topic keeps its partition count, whatever `partitions` says: read it
    /// from [`Topic::partitions`].
    pub fn topic(&self, name: &str, partitions: u32) -> Result<Topic, StorageError> {
        check_name("topic", name)?;
        if partitions == 0 {
            return Err(StorageError::InvalidArgument {
                what: format!("topic {name:?}"),
                reason: "a topic needs at least 1 partition".into(),
            });
        }
        let mut topics = self
            .shared
            .topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(shared) = topics.get(name) {
            return Ok(Topic::new(Arc::clone(shared), Arc::clone(&self.clock)));
        }
        let place = || format!("metadata of topic {name:?}");
        let partitions = match self.shared.topic_meta.get(name.as_bytes())? {
            Some(raw) => codec::decode::<TopicMeta>(&raw, place)?.payload.partitions,
            None => {
                let meta = codec::encode(None, &TopicMeta { partitions }, place)?;
                self.shared.topic_meta.insert(name.as_bytes(), meta)?;
                // Creating a topic is rare and a producer may be told it exists: make it last.
                self.shared.engine.flush()?;
                partitions
            }
        };
        let shared = Arc::new(TopicShared::open(&self.shared.engine, name, partitions)?);
        topics.insert(name.to_owned(), Arc::clone(&shared));
        Ok(Topic::new(shared, Arc::clone(&self.clock)))
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
            self.shared.engine.clone(),
        ))
    }

    /// Removes every expired key of every keyspace and returns how many. Costs
    /// O(expired keys): it walks the expiry index only up to now.
    pub fn sweep_expired(&self) -> Result<usize, StorageError> {
        expiry::sweep(
            &self.shared.engine,
            &self.shared.expiry,
            &self.shared.stripes,
            self.clock.now_ms(),
        )
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.shared.engine.flush()
    }

    pub fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.shared.engine.size_on_disk()
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
