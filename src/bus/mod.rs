//! The in-process message bus: named, partitioned topics on the embedded topic log.
//! Producers here are the pipeline's own stages; the Kafka wire listener (a later layer)
//! serves the same topics to outside clients.

mod partition;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use panoptes_storage::{Record, StorageError, Store, Topic};

use crate::blocking::TaskFailed;
use crate::kafka::ExternalError;

pub use partition::{murmur2, partition_for};
pub use source::{ExternalSource, Item, PartitionSource, TopicSource};

/// Why the bus could not publish, read or commit.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The embedded log or the consumer offsets failed.
    #[error(transparent)]
    Store(#[from] StorageError),
    /// The external cluster did not take messages published to `topic`.
    #[error("publishing to topic {topic:?} on the external Kafka cluster: {source}")]
    ExternalPublish {
        topic: String,
        #[source]
        source: ExternalError,
    },
    /// A request to the external cluster failed.
    #[error(transparent)]
    External(#[from] ExternalError),
    /// A member of a consumer group may commit only the partitions assigned to it: this
    /// one is someone else's now, and its new owner commits from now on.
    #[error("partition {partition} of {topic} is no longer assigned to this node (generation {generation}): not committing")]
    NotAssigned {
        topic: String,
        partition: u32,
        generation: i32,
    },
    /// The blocking task reading or committing did not return.
    #[error(transparent)]
    Task(#[from] TaskFailed),
}

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
    /// Set when `kafka.brokers` names a cluster: the pipeline's topics live there.
    external: Option<crate::kafka::ExternalCluster>,
    /// Wakes the consumers of a topic on the embedded log when records are appended.
    appends: Arc<Appends>,
}

/// One wake-up per topic waited on, woken by the store's append hook: a consumer or an
/// HTTP long poll that has read everything sleeps until its topic grows.
#[derive(Default)]
struct Appends(std::sync::RwLock<HashMap<String, Arc<tokio::sync::Notify>>>);

impl Appends {
    fn appended(&self, topic: &str) {
        let waiting = self.0.read().unwrap_or_else(|p| p.into_inner());
        if let Some(notify) = waiting.get(topic) {
            notify.notify_waiters();
        }
    }

    /// The wake-up of `topic` (one per topic waited on: the store bounds topics).
    fn of(&self, topic: &str) -> Arc<tokio::sync::Notify> {
        let mut waiting = self.0.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(waiting.entry(topic.to_owned()).or_default())
    }
}

impl Bus {
    pub fn new(store: Store, partitions: u32) -> Bus {
        let appends = Arc::<Appends>::default();
        let hook = Arc::clone(&appends);
        store.on_append(Arc::new(move |topic| hook.appended(topic)));
        Bus {
            store,
            partitions: partitions.max(1),
            topics: Arc::default(),
            external: None,
            appends,
        }
    }

    /// A bus whose topics are on an external Kafka cluster (the store keeps the rest).
    pub fn external(store: Store, partitions: u32, cluster: crate::kafka::ExternalCluster) -> Bus {
        Bus {
            external: Some(cluster),
            ..Bus::new(store, partitions)
        }
    }

    /// Woken by every append to `topic` on the embedded log (`notify_waiters`: listen
    /// with `enable()` before reading, or an append in between is missed).
    pub fn appended(&self, topic: &str) -> Arc<tokio::sync::Notify> {
        self.appends.of(topic)
    }

    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }

    /// The external cluster, if the bus is on one.
    pub fn external_cluster(&self) -> Option<crate::kafka::ExternalCluster> {
        self.external.clone()
    }

    /// The external cluster client's health, if the bus is on one.
    pub fn external_health(&self) -> Option<Arc<crate::kafka::ClientHealth>> {
        self.external.as_ref().map(|c| Arc::clone(&c.health))
    }

    /// One consumer-group source per partition of `topic`, on the embedded log or the
    /// external cluster.
    pub async fn sources(
        &self,
        topic: &str,
        group: &str,
    ) -> Result<Vec<PartitionSource>, BusError> {
        if let Some(cluster) = &self.external {
            let n = cluster.partitions(topic).await?;
            return Ok((0..n)
                .map(|partition| {
                    PartitionSource::External(ExternalSource {
                        cluster: cluster.clone(),
                        topic: topic.to_owned(),
                        partition,
                        group: group.to_owned(),
                        member: None,
                    })
                })
                .collect());
        }
        let log = self.topic(topic)?;
        let offsets = self.store.consumer_offsets()?;
        let appended = self.appended(topic);
        Ok((0..log.partitions())
            .map(|partition| {
                PartitionSource::Local(TopicSource {
                    topic: log.clone(),
                    partition,
                    group: group.to_owned(),
                    offsets: offsets.clone(),
                    committed: Arc::default(),
                    appended: Some(Arc::clone(&appended)),
                })
            })
            .collect())
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
    /// Appends `messages` to `topic`, each to the partition its partition key picks, and
    /// returns where each landed (partition, offset), in the order given; `None` for every
    /// message on an external cluster (its offsets are not tracked here).
    pub fn publish(
        &self,
        topic: &str,
        messages: Vec<Message>,
        now_ms: u64,
    ) -> Result<Vec<Option<(u32, u64)>>, BusError> {
        if let Some(cluster) = &self.external {
            cluster
                .publish_blocking(topic, &messages, now_ms)
                .map_err(|source| BusError::ExternalPublish {
                    topic: topic.to_owned(),
                    source,
                })?;
            return Ok(vec![None; messages.len()]);
        }
        let t = self.topic(topic)?;
        let count = messages.len();
        let mut by_partition: BTreeMap<u32, (Vec<Record>, Vec<usize>)> = BTreeMap::new();
        // The messages are moved into the records: a poll's ≈200 KB of JSON is not copied.
        for (i, m) in messages.into_iter().enumerate() {
            let (records, indices) = by_partition
                .entry(partition_for(m.partition_key.as_bytes(), t.partitions()))
                .or_default();
            records.push(Record {
                key: Some(m.key.into_bytes()),
                value: m.value,
                timestamp_ms: now_ms,
                headers: Vec::new(),
            });
            indices.push(i);
        }
        let mut landed = vec![None; count];
        for (partition, (records, indices)) in by_partition {
            let base = t.append(partition, &records)?;
            for (j, i) in indices.into_iter().enumerate() {
                landed[i] = Some((partition, base + j as u64));
            }
        }
        Ok(landed)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}
