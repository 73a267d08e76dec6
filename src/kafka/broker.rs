//! The broker's shared state and the dispatch of one decoded request to its handler.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use panoptes_storage::{StorageError, Store, Topic};
use tokio::sync::Notify;

use super::acl::{Authorizer, Denied, Operation, Principal, Resource};
use super::admission::Admission;
use super::batch::EncodeRecordsError;
use super::budget::Budget;
use super::coordinator::Coordinator;
use super::frame::TooLargeToFrame;
use super::produce::ProducerState;
use super::security::ListenerSecurity;
use crate::events::{KafkaRefusal, KafkaRefused};
use crate::telemetry::Telemetry;

/// Every bound on what clients may make the broker hold or do. The defaults are those of
/// `conf/panoptes.toml`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request frame.
    pub max_frame_bytes: usize,
    /// Bytes of requests (frames and inflated records) held at once, all connections
    /// together.
    pub max_bytes_in_flight: usize,
    /// Most one Produce request's records may inflate to, all batches together.
    pub max_inflated_bytes: usize,
    /// How long a request may wait for room in the memory budget before it is refused.
    pub budget_wait: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Time from accepting a connection to its first complete request (and, on a SASL
    /// listener, its authentication).
    pub first_request_timeout: Duration,
    /// How long a connection may stay silent between requests before it is closed.
    pub idle_timeout: Duration,
    /// How long one frame may take to arrive once it has started.
    pub frame_timeout: Duration,
    pub max_topics: usize,
    pub max_partitions_per_topic: u32,
    /// Partitions of all topics together.
    pub max_partitions: u64,
    /// Bytes in the data directory past which topic creation, produce and offset commits
    /// over the wire are refused (0: no limit).
    pub max_data_bytes: u64,
    pub max_groups: usize,
    pub max_members_per_group: usize,
    /// Idempotent producer states (one per producer id and partition) remembered; the oldest is forgotten past it.
    pub max_producer_states: usize,
    /// Partitions (or topics, or groups) one request may name.
    pub max_request_partitions: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 8 << 20,
            max_bytes_in_flight: 64 << 20,
            max_inflated_bytes: 16 << 20,
            budget_wait: Duration::from_secs(5),
            max_connections: 1024,
            max_connections_per_ip: 256,
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            frame_timeout: Duration::from_secs(30),
            max_topics: 1000,
            max_partitions_per_topic: 1024,
            max_partitions: 10_000,
            max_data_bytes: 10 << 30,
            max_groups: 1000,
            max_members_per_group: 100,
            max_producer_states: 10_000,
            max_request_partitions: 10_000,
        }
    }
}

/// What the broker is told at start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Host and port written into Metadata and FindCoordinator answers: where clients
    /// connect next.
    pub advertised_host: String,
    pub advertised_port: u16,
    pub auto_create_topics: bool,
    /// Auto-creation makes only topics whose names start with this (empty: any name).
    pub auto_create_prefix: String,
    /// Partitions of a topic created by Metadata/Produce auto-creation or by a
    /// CreateTopics request with `num_partitions = -1`.
    pub default_partitions: u32,
    /// `cluster_id` in Metadata answers.
    pub cluster_id: String,
    pub limits: Limits,
    /// Who may do what; also names the pipeline's own (protected) topics and groups.
    pub authorizer: Authorizer,
    pub security: ListenerSecurity,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            advertised_host: String::new(),
            advertised_port: 0,
            auto_create_topics: false,
            auto_create_prefix: String::new(),
            default_partitions: 1,
            cluster_id: "panoptes".into(),
            limits: Limits::default(),
            authorizer: Authorizer::open(Vec::new(), Vec::new()),
            security: ListenerSecurity::default(),
        }
    }
}

/// Our one broker's id in every answer.
pub const NODE_ID: i32 = 0;

/// Who sent a request: what authorization and the refusal events need.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub peer: Option<SocketAddr>,
}

impl Caller {
    /// A caller with no connection (tests, `respond`).
    pub fn anonymous() -> Caller {
        Caller {
            principal: Principal::Anonymous,
            peer: None,
        }
    }
}

/// Why a request could not be answered: the connection closes.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StorageError),
    /// The blocking task serving the request did not return.
    #[error(transparent)]
    Task(#[from] TaskFailed),
    /// The next producer id could not be stored (InitProducerId).
    #[error("storing the next producer id: {0}")]
    ProducerId(#[source] StorageError),
    #[error("frame shorter than a request header")]
    ShortFrame,
    #[error("malformed {api:?} v{version} request: {reason:#}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: anyhow::Error,
    },
    #[error("encoding the response header: {0:#}")]
    EncodeHeader(anyhow::Error),
    #[error("encoding the {api:?} v{version} answer: {reason:#}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: anyhow::Error,
    },
    /// Fetched records could not be encoded as a record batch.
    #[error(transparent)]
    Records(#[from] EncodeRecordsError),
    #[error(transparent)]
    Frame(#[from] TooLargeToFrame),
    /// A decoded request of an API no handler serves (the listener dispatches only those
    /// of `versions::SUPPORTED`).
    #[error("no handler for API key {0}")]
    NoHandler(i16),
    /// A SASL request outside a connection (`respond`): SASL is the connection's.
    #[error("SASL is the connection's")]
    Sasl,
    /// Refused by a bound that has no error answer in the protocol (a request naming
    /// more partitions than any client can have, a memory budget exhausted); counted as
    /// a refusal by the connection.
    #[error("{detail}")]
    Refused {
        refusal: KafkaRefusal,
        detail: String,
    },
}

/// The data directory is at or over `kafka.max_data_bytes`: nothing more is written
/// over the Kafka protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the data directory holds {used} bytes and kafka.max_data_bytes is {limit}: \
     nothing more is written over the Kafka protocol until retention frees space \
     (the node's own pipeline keeps writing)"
)]
pub struct DataBudgetFull {
    pub used: u64,
    pub limit: u64,
}

/// Why a topic was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateRefused {
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    Partitions(String),
    #[error("topic {0:?} already exists")]
    Exists(String),
    #[error("{0}")]
    TooManyTopics(String),
    #[error("{0}")]
    TooManyPartitions(String),
    #[error(transparent)]
    DataBudget(#[from] DataBudgetFull),
    #[error(transparent)]
    Store(#[from] StorageError),
}

impl CreateRefused {
    /// The Kafka error code of a CreateTopics answer.
    pub fn code(&self) -> i16 {
        match self {
            CreateRefused::InvalidName(_) => code::INVALID_TOPIC_EXCEPTION,
            CreateRefused::Partitions(_) => code::INVALID_PARTITIONS,
            CreateRefused::Exists(_) => code::TOPIC_ALREADY_EXISTS,
            CreateRefused::TooManyTopics(_)
            | CreateRefused::TooManyPartitions(_)
            | CreateRefused::DataBudget(_) => code::POLICY_VIOLATION,
            CreateRefused::Store(_) => code::UNKNOWN_SERVER_ERROR,
        }
    }

    /// The refusal it counts as, if it is one (a bad name or an existing topic is not).
    pub fn refusal(&self) -> Option<KafkaRefusal> {
        match self {
            CreateRefused::Partitions(_) => Some(KafkaRefusal::PartitionsPerTopic),
            CreateRefused::TooManyTopics(_) => Some(KafkaRefusal::TooManyTopics),
            CreateRefused::TooManyPartitions(_) => Some(KafkaRefusal::TooManyPartitions),
            CreateRefused::DataBudget(_) => Some(KafkaRefusal::DataBudget),
            _ => None,
        }
    }
}

/// The broker: cheap to share (`Arc`), used by every connection task.
pub struct Broker {
    pub config: BrokerConfig,
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    pub groups: Coordinator,
    pub producers: ProducerState,
    /// Woken by every append to the store (a produce or the node's own pipeline), so
    /// waiting fetches answer at once and do not look for records until then.
    pub appended: Arc<Notify>,
    /// Who holds a connection, and who may get one next.
    pub admission: Admission,
    /// Bytes of requests in memory (`kafka.max_bytes_in_flight`).
    pub budget: Budget,
    /// The data directory's size as last measured, plus what was produced since.
    data_bytes: AtomicU64,
    /// Topic creation is checked and done one at a time, so two creations cannot both
    /// pass a cap that only one fits under.
    creating: Mutex<()>,
}

impl Broker {
    pub fn new(config: BrokerConfig, store: Store, telemetry: Arc<Telemetry>) -> Broker {
        let limits = &config.limits;
        let appended = Arc::new(Notify::new());
        let wake = Arc::clone(&appended);
        store.on_append(Arc::new(move |_topic: &str| wake.notify_waiters()));
        Broker {
            producers: ProducerState::new(&store, limits.max_producer_states),
            groups: Coordinator::new(limits.max_groups, limits.max_members_per_group),
            admission: Admission::new(limits.max_connections, limits.max_connections_per_ip),
            budget: Budget::new(limits.max_bytes_in_flight),
            store,
            telemetry,
            appended,
            data_bytes: AtomicU64::new(0),
            creating: Mutex::new(()),
            config,
        }
    }

    pub fn open_connections(&self) -> usize {
        self.admission.open()
    }

    /// Counts and logs a refusal.
    pub fn refuse(&self, caller: &Caller, refusal: KafkaRefusal, detail: &str) {
        KafkaRefused {
            refusal,
            peer: caller.peer,
            principal: Some(caller.principal.name()),
            detail,
        }
        .emit(&self.telemetry);
    }

    /// Whether `caller` may do `operation` on `resource`; a denial is counted and logged
    /// here, and its text is what the client is told.
    pub fn authorize(
        &self,
        caller: &Caller,
        operation: Operation,
        resource: Resource<'_>,
    ) -> Result<(), Denied> {
        self.config
            .authorizer
            .check(&caller.principal, operation, resource)
            .inspect_err(|denied| {
                let refusal = match resource {
                    Resource::Topic(_) => KafkaRefusal::TopicAuthorization,
                    Resource::Group(_) => KafkaRefusal::GroupAuthorization,
                };
                self.refuse(caller, refusal, &denied.to_string());
            })
    }

    /// Measures the data directory again (blocking: it may walk the topic files). Called
    /// every second by the listener.
    pub fn measure_data(&self) {
        match self.store.size_on_disk() {
            Ok(bytes) => self.data_bytes.store(bytes, Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "measuring the data directory failed"),
        }
    }

    /// Counts bytes just appended, until the next measurement.
    pub fn note_appended(&self, bytes: u64) {
        self.data_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Refuses adding `more` bytes to a data directory at or over `kafka.max_data_bytes`.
    pub fn data_room(&self, more: u64) -> Result<(), DataBudgetFull> {
        let limit = self.config.limits.max_data_bytes;
        let used = self.data_bytes.load(Ordering::Relaxed);
        if limit == 0 || used.saturating_add(more) <= limit {
            return Ok(());
        }
        Err(DataBudgetFull { used, limit })
    }

    /// Creates topic `name` with `partitions` partitions after every check passed: its
    /// name, `kafka.max_partitions_per_topic`, `kafka.max_topics`, `kafka.max_partitions`
    /// and the data budget. Nothing is written before all of them pass; with `dry_run`
    /// nothing is written at all.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        dry_run: bool,
    ) -> Result<Option<Topic>, CreateRefused> {
        if let Some(reason) = super::topics::invalid_name(name) {
            return Err(CreateRefused::InvalidName(reason));
        }
        let limits = &self.config.limits;
        if partitions == 0 || partitions > limits.max_partitions_per_topic {
            return Err(CreateRefused::Partitions(format!(
                "{partitions} partitions: a topic has 1 to {} (kafka.max_partitions_per_topic)",
                limits.max_partitions_per_topic
            )));
        }
        let _one_at_a_time = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if self.store.existing_topic(name)?.is_some() {
            return Err(CreateRefused::Exists(name.to_owned()));
        }
        let names = self.store.topic_names()?;
        if names.len() >= limits.max_topics {
            return Err(CreateRefused::TooManyTopics(format!(
                "there are {} topics, the most kafka.max_topics allows",
                names.len()
            )));
        }
        let mut total: u64 = 0;
        for other in &names {
            // A topic that cannot be opened (refused by the store) holds no partitions.
            if let Ok(Some(t)) = self.store.existing_topic(other) {
                total += u64::from(t.partitions());
            }
        }
        if total + u64::from(partitions) > limits.max_partitions {
            return Err(CreateRefused::TooManyPartitions(format!(
                "{partitions} more partitions would make {} in all, over kafka.max_partitions = {}",
                total + u64::from(partitions),
                limits.max_partitions
            )));
        }
        self.data_room(0)?;
        if dry_run {
            return Ok(None);
        }
        Ok(Some(self.store.topic(name, partitions)?))
    }

    /// The topic `name`: existing, or created when `create` says the request allows it,
    /// auto-creation is on, the name has `kafka.auto_create_prefix` and the caller may
    /// create it. `Ok(None)`: unknown (the answer is UNKNOWN_TOPIC_OR_PARTITION).
    pub fn topic(
        &self,
        name: &str,
        create: Option<&Caller>,
    ) -> Result<Option<Topic>, StorageError> {
        if super::topics::invalid_name(name).is_some() {
            return Ok(None);
        }
        if let Some(t) = self.store.existing_topic(name)? {
            return Ok(Some(t));
        }
        let Some(caller) = create else {
            return Ok(None);
        };
        let prefix = &self.config.auto_create_prefix;
        if !self.config.auto_create_topics || !name.starts_with(prefix.as_str()) {
            let why = if self.config.auto_create_topics {
                format!("topic {name:?} was not created: auto-creation makes only topics named {prefix:?}... (kafka.auto_create_prefix)")
            } else {
                format!("topic {name:?} does not exist and kafka.auto_create_topics is off: create it with CreateTopics")
            };
            self.refuse(caller, KafkaRefusal::AutoCreate, &why);
            return Ok(None);
        }
        if self
            .authorize(caller, Operation::Admin, Resource::Topic(name))
            .is_err()
        {
            return Ok(None);
        }
        match self.create_topic(name, self.config.default_partitions, false) {
            Ok(t) => {
                tracing::info!(
                    topic = name,
                    partitions = self.config.default_partitions,
                    "created topic on first use"
                );
                Ok(t)
            }
            // Created meanwhile by another request.
            Err(CreateRefused::Exists(_)) => self.store.existing_topic(name),
            Err(e) => {
                if let Some(refusal) = e.refusal() {
                    self.refuse(caller, refusal, &e.to_string());
                }
                match e {
                    CreateRefused::Store(e) => Err(e),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Refuses a request naming more partitions (or topics, or groups) than
    /// `kafka.max_request_partitions`: no client has that many, and each costs a lookup.
    fn check_size(&self, request: &RequestKind) -> Result<(), HandleError> {
        let named: usize = match request {
            RequestKind::Produce(r) => r.topic_data.iter().map(|t| t.partition_data.len()).sum(),
            RequestKind::Fetch(r) => {
                r.topics.iter().map(|t| t.partitions.len()).sum::<usize>()
                    + r.forgotten_topics_data
                        .iter()
                        .map(|t| t.partitions.len())
                        .sum::<usize>()
            }
            RequestKind::ListOffsets(r) => r.topics.iter().map(|t| t.partitions.len()).sum(),
            RequestKind::OffsetCommit(r) => r.topics.iter().map(|t| t.partitions.len()).sum(),
            RequestKind::OffsetFetch(r) => r
                .topics
                .iter()
                .flatten()
                .map(|t| t.partition_indexes.len())
                .sum(),
            RequestKind::Metadata(r) => r.topics.as_ref().map_or(0, Vec::len),
            RequestKind::CreateTopics(r) => r.topics.len(),
            RequestKind::DeleteTopics(r) => r.topics.len() + r.topic_names.len(),
            RequestKind::DescribeGroups(r) => r.groups.len(),
            RequestKind::LeaveGroup(r) => r.members.len(),
            _ => 0,
        };
        let limit = self.config.limits.max_request_partitions;
        if named > limit {
            return Err(HandleError::Refused {
                refusal: KafkaRefusal::RequestTooLarge,
                detail: format!(
                    "a request naming {named} partitions, topics or groups, over kafka.max_request_partitions = {limit}: closing the connection"
                ),
            });
        }
        Ok(())
    }

    /// Answers one request; `None` for a Produce with acks=0, which gets no answer.
    pub async fn handle(
        self: &Arc<Self>,
        header: &RequestHeader,
        request: RequestKind,
        caller: &Caller,
    ) -> Result<Option<ResponseKind>, HandleError> {
        self.check_size(&request)?;
        let version = header.request_api_version;
        let client_id = header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Ok(Some(match request {
            RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(super::api_versions::answer(
                0,
                self.config.security.protocol.sasl(),
            )),
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(super::topics::metadata(self, r, version, caller).await?)
            }
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(super::topics::create(self, r, caller).await?)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(super::topics::delete(self, r, version, caller).await?)
            }
            RequestKind::Produce(r) => {
                return Ok(super::produce::produce(self, r, caller)
                    .await?
                    .map(ResponseKind::Produce))
            }
            RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(
                super::produce::init_producer_id(self, r, caller).await?,
            ),
            RequestKind::Fetch(r) => {
                ResponseKind::Fetch(super::fetch::fetch(self, r, caller).await?)
            }
            RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(
                super::fetch::list_offsets(self, r, version, caller).await?,
            ),
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(super::groups::find_coordinator(self, r, version))
            }
            RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(
                super::groups::join(self, r, version, client_id, caller).await,
            ),
            RequestKind::SyncGroup(r) => {
                ResponseKind::SyncGroup(super::groups::sync(self, r, caller).await)
            }
            RequestKind::Heartbeat(r) => {
                ResponseKind::Heartbeat(super::groups::heartbeat(self, r, caller))
            }
            RequestKind::LeaveGroup(r) => {
                ResponseKind::LeaveGroup(super::groups::leave(self, r, version, caller))
            }
            RequestKind::ListGroups(r) => ResponseKind::ListGroups(super::groups::list(self, r)),
            RequestKind::DescribeGroups(r) => {
                ResponseKind::DescribeGroups(super::groups::describe(self, r, version))
            }
            RequestKind::OffsetCommit(r) => {
                ResponseKind::OffsetCommit(super::groups::offset_commit(self, r, caller).await?)
            }
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(super::groups::offset_fetch(self, r, version).await?)
            }
            // The server dispatches only the APIs in `versions::SUPPORTED`; SASL is the
            // connection's.
            _ => return Err(HandleError::NoHandler(header.request_api_key)),
        }))
    }
}

pub use crate::blocking::{blocking, TaskFailed};

/// Answers the topics a request names, one by one, on a blocking thread (the store may
/// flush) and in the caller's name: every answer, or the first storage error. The APIs
/// that name topics (ListOffsets, CreateTopics, DeleteTopics) differ only in `answer`.
pub async fn each_topic<W, T>(
    broker: &Arc<Broker>,
    caller: &Caller,
    wanted: Vec<W>,
    mut answer: impl FnMut(&Broker, &Caller, W) -> Result<T, HandleError> + Send + 'static,
) -> Result<Vec<T>, HandleError>
where
    W: Send + 'static,
    T: Send + 'static,
{
    let (broker, caller) = (Arc::clone(broker), caller.clone());
    blocking(move || {
        wanted
            .into_iter()
            .map(|w| answer(&broker, &caller, w))
            .collect()
    })
    .await
}

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
    pub const POLICY_VIOLATION: i16 = 44;
    /// The log cannot be written (Kafka: a disk failed); retriable.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
}
