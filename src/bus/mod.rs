//! The in-process message bus: named, partitioned topics on the embedded topic log.
//! Producers here are the pipeline's own stages; the Kafka wire listener (a later layer)
//! serves the same topics to outside clients.

mod partition;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use panoptes_storage::{Record, StorageError, Store, Topic};

pub use partition::{murmur2, partition_for};
pub use source::{Item, TopicSource};

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Message {
    /// The Kafka message key (for metrics groups `<class>:<subclass>:<type>`).
    pub key: String,
    /// What selects the partition (for metrics groups `<rid>|<group>|<dims>...`).
    pub partition_key: String,
    pub value: Vec<u8>,
}

#[derive(Clone)]
pub struct Bus {
    store: Store,
    partitions: u32,
    topics: Arc<Mutex<HashMap<String, Topic>>>,
}

impl Bus {
    pub fn new(store: Store, partitions: u32) -> Bus {
        Bus {
            store,
            partitions: partitions.max(1),
            topics: Arc::default(),
        }
    }

    /// Opens (creating on first use, like the original's auto-created topics) a topic.
    pub fn topic(&self, name: &str) -> Result<Topic, StorageError> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = topics.get(name) {
            return Ok(t.clone());
        }
        let t = self.store.topic(name, self.partitions)?;
        topics.insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// Appends messages to a topic, one durable append per partition. Blocking: call it
    /// from `spawn_blocking` in async code.
    pub fn publish(
        &self,
        topic: &str,
        messages: &[Message],
        now_ms: u64,
    ) -> Result<(), StorageError> {
        let t = self.topic(topic)?;
        let mut by_partition: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
        for m in messages {
            by_partition
                .entry(partition_for(m.partition_key.as_bytes(), t.partitions()))
                .or_default()
                .push(Record {
                    key: Some(m.key.as_bytes().to_vec()),
                    value: m.value.clone(),
                    timestamp_ms: now_ms,
                    headers: Vec::new(),
                });
        }
        for (partition, records) in by_partition {
            t.append(partition, &records)?;
        }
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}
