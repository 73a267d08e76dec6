//! The broker's shared state and the dispatch of one decoded request to its handler.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};
use panoptes_storage::{Store, Topic};
use tokio::sync::Notify;

use super::coordinator::Coordinator;
use super::produce::ProducerState;
use crate::telemetry::Telemetry;

/// What the broker is told at start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Host and port written into Metadata and FindCoordinator answers: where clients
    /// connect next.
    pub advertised_host: String,
    pub advertised_port: u16,
    pub auto_create_topics: bool,
    /// Partitions of a topic created by Metadata/Produce auto-creation or by a
    /// CreateTopics request with `num_partitions = -1`.
    pub default_partitions: u32,
    pub max_frame_bytes: usize,
    /// Topics the node's own pipeline reads: DeleteTopics refuses them.
    pub protected_topics: Vec<String>,
    /// `cluster_id` in Metadata answers.
    pub cluster_id: String,
    /// How long a connection may stay silent between requests before it is closed.
    pub idle_timeout: Duration,
    /// How long one frame may take to arrive once it has started.
    pub frame_timeout: Duration,
    pub max_connections: usize,
}

/// Our one broker's id in every answer.
pub const NODE_ID: i32 = 0;

/// The broker: cheap to share (`Arc`), used by every connection task.
pub struct Broker {
    pub config: BrokerConfig,
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    pub groups: Coordinator,
    pub producers: ProducerState,
    /// Woken by every produce, so waiting fetches answer at once.
    pub appended: Notify,
    pub connections: AtomicUsize,
}

impl Broker {
    pub fn new(config: BrokerConfig, store: Store, telemetry: Arc<Telemetry>) -> Broker {
        Broker {
            producers: ProducerState::new(&store),
            config,
            store,
            telemetry,
            groups: Coordinator::default(),
            appended: Notify::new(),
            connections: AtomicUsize::new(0),
        }
    }

    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The topic `name`: existing, or created when auto-creation is on and `create` says
    /// the request allows it. `Ok(None)`: unknown (the answer is UNKNOWN_TOPIC_OR_PARTITION).
    pub fn topic(&self, name: &str, create: bool) -> Result<Option<Topic>, String> {
        if let Some(t) = self.store.existing_topic(name).map_err(|e| e.to_string())? {
            return Ok(Some(t));
        }
        if !(create && self.config.auto_create_topics) {
            return Ok(None);
        }
        if super::topics::invalid_name(name).is_some() {
            return Ok(None);
        }
        let t = self
            .store
            .topic(name, self.config.default_partitions)
            .map_err(|e| e.to_string())?;
        tracing::info!(
            topic = name,
            partitions = t.partitions(),
            "created topic on first use"
        );
        Ok(Some(t))
    }

    /// Answers one request; `None` for a Produce with acks=0, which gets no answer.
    pub async fn handle(
        self: &Arc<Self>,
        header: &RequestHeader,
        request: RequestKind,
    ) -> Result<Option<ResponseKind>, String> {
        let version = header.request_api_version;
        let client_id = header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Ok(Some(match request {
            RequestKind::ApiVersions(_) => {
                ResponseKind::ApiVersions(super::api_versions::answer(0))
            }
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(super::topics::metadata(self, r, version).await?)
            }
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(super::topics::create(self, r).await?)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(super::topics::delete(self, r, version).await?)
            }
            RequestKind::Produce(r) => {
                return Ok(super::produce::produce(self, r)
                    .await?
                    .map(ResponseKind::Produce))
            }
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(super::produce::init_producer_id(self, r).await?)
            }
            RequestKind::Fetch(r) => ResponseKind::Fetch(super::fetch::fetch(self, r).await?),
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(super::fetch::list_offsets(self, r, version).await?)
            }
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(super::groups::find_coordinator(self, r, version))
            }
            RequestKind::JoinGroup(r) => {
                ResponseKind::JoinGroup(super::groups::join(self, r, version, client_id).await)
            }
            RequestKind::SyncGroup(r) => {
                ResponseKind::SyncGroup(super::groups::sync(self, r).await)
            }
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(super::groups::heartbeat(self, r)),
            RequestKind::LeaveGroup(r) => {
                ResponseKind::LeaveGroup(super::groups::leave(self, r, version))
            }
            RequestKind::ListGroups(r) => ResponseKind::ListGroups(super::groups::list(self, r)),
            RequestKind::DescribeGroups(r) => {
                ResponseKind::DescribeGroups(super::groups::describe(self, r, version))
            }
            RequestKind::OffsetCommit(r) => {
                ResponseKind::OffsetCommit(super::groups::offset_commit(self, r).await?)
            }
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(super::groups::offset_fetch(self, r, version).await?)
            }
            // The server dispatches only the APIs in `versions::SUPPORTED`.
            _ => return Err(format!("no handler for API key {}", header.request_api_key)),
        }))
    }
}

pub use crate::agent::blocking;

/// Partition `index` of `topic`, if the topic exists and has it: what every API checks
/// before touching a partition a client named.
pub fn partition(topic: Option<&Topic>, index: i32) -> Option<(&Topic, u32)> {
    let topic = topic?;
    let p = u32::try_from(index).ok()?;
    (p < topic.partitions()).then_some((topic, p))
}

/// Kafka error codes used by the broker.
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REQUEST: i16 = 42;
    /// The log cannot be written (Kafka: a disk failed); retriable.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
}
