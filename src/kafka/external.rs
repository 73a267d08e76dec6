//! Publishing to and consuming from an external Kafka cluster (`kafka.brokers`), the way
//! a deployment scales past one machine. Built on our own `client::Connection` (the
//! `kafka-protocol` wire format we already serve) rather than rdkafka, which needs a
//! newer librdkafka than Debian ships (so a cmake build of it in CI), or rskafka, which
//! has no committed offsets: what the pipeline needs is Metadata, Produce (acks=all),
//! Fetch, ListOffsets, FindCoordinator and OffsetFetch/OffsetCommit, all already spoken.
//!
//! Messages are keyed and partitioned exactly like the embedded log (murmur2 of the
//! partition key), so consumers written for the original keep working. Consumers commit
//! offsets to the cluster's group coordinator as "simple" commits (no group membership):
//! each node reads every partition of its own site's topics.
//!
//! With `kafka.client_security` every connection is TLS (verified against
//! `kafka.client_tls_ca`) and/or authenticated with SASL PLAIN or SCRAM, as the
//! cluster's listeners require.
//!
//! The client runs on a runtime thread of its own; calls from any runtime (or a blocking
//! thread) are sent to it. One lock serializes requests: fetches hardly wait on the
//! broker (max_wait 1 ms), the pipeline's consumers poll instead; only a fetch that came
//! back empty though the partition has records is asked again allowing the broker 500 ms.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use panoptes_storage::{Record, StoredRecord};
use tokio::sync::Mutex;

use super::batch::{encode_records, EncodeRecordsError};
use super::client::{ClientError, ClientSecurity, Connection};
use crate::bus::{partition_for, Item, Message};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A handle on the external cluster. Cheap to clone.
#[derive(Clone)]
pub struct ExternalCluster {
    inner: Arc<Mutex<Inner>>,
    pub health: Arc<ClientHealth>,
    telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    handle: tokio::runtime::Handle,
    _runtime: Arc<RuntimeThread>,
}

struct RuntimeThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

struct Inner {
    bootstrap: Vec<String>,
    client_id: String,
    /// TLS and SASL for every connection (`kafka.client_security`).
    security: ClientSecurity,
    /// Broker id -> "host:port", from Metadata.
    brokers: HashMap<i32, String>,
    connections: HashMap<String, Connection>,
    /// Topic -> leader of each partition.
    leaders: HashMap<String, Vec<i32>>,
    coordinators: HashMap<String, String>,
    /// The highest version of an API a broker answered usefully, once it answered a
    /// higher one with an error or nothing (see [`Inner::fetch_once`]).
    ceilings: HashMap<(String, i16), i16>,
    /// The newest Fetch version to ask any broker (see [`ExternalCluster::cap_fetch_version`]).
    fetch_cap: i16,
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// Why a request to the external cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// Connecting to a broker, or a request on the connection, failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The broker answered with an error code.
    #[error("{asked}: {}", KafkaCode(*.code))]
    Broker { asked: Asked, code: i16 },
    #[error("kafka.brokers is empty")]
    NoBrokers,
    #[error("no connection to {addr}")]
    NoConnection { addr: String },
    #[error("no metadata for topic {topic:?}")]
    NoMetadata { topic: String },
    #[error("topic {topic:?} has no partition {partition}")]
    NoSuchPartition { topic: String, partition: u32 },
    #[error("partition {partition} of {topic:?} has no live leader (broker {broker})")]
    NoLeader {
        topic: String,
        partition: u32,
        broker: i32,
    },
    #[error("no offsets for {topic}/{partition}")]
    NoOffsets { topic: String, partition: u32 },
    /// The broker's Fetch answer left out the partition asked for (`top_level`: the
    /// answer's own error code, when it had one).
    #[error(
        "fetching {topic}/{partition}: the broker's Fetch v{version} answer has no such partition{}",
        top_level.map(|code| format!(" (top-level error: {})", KafkaCode(code))).unwrap_or_default()
    )]
    FetchMissingPartition {
        topic: String,
        partition: u32,
        version: i16,
        top_level: Option<i16>,
    },
    #[error("fetching {topic}/{partition}: no Fetch version to ask")]
    NoFetchVersion { topic: String, partition: u32 },
    #[error(transparent)]
    Records(#[from] EncodeRecordsError),
    #[error("decoding fetched records: {0:#}")]
    Decode(anyhow::Error),
    /// The client's task did not return (it panicked, or its runtime stopped).
    #[error("Kafka client task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("Kafka client stopped")]
    Stopped,
    /// The client's runtime answered an operation with the reply of another (a bug).
    #[error("Kafka client: unexpected reply {0}")]
    UnexpectedReply(&'static str),
}

impl ExternalError {
    /// The broker's error code, when the broker answered with one.
    pub fn code(&self) -> Option<i16> {
        match self {
            ExternalError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What the cluster was asked, as an error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    Metadata {
        topic: String,
    },
    Produce {
        topic: String,
        partition: u32,
    },
    Fetch {
        topic: String,
        partition: u32,
    },
    ListOffsets {
        topic: String,
        partition: u32,
    },
    CreateTopic {
        topic: String,
    },
    FindCoordinator {
        group: String,
    },
    Commit {
        group: String,
        topic: String,
        partition: u32,
    },
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Asked::Metadata { topic } => write!(f, "metadata for topic {topic:?}"),
            Asked::Produce { topic, partition } => write!(f, "producing to {topic}/{partition}"),
            Asked::Fetch { topic, partition } => write!(f, "fetching {topic}/{partition}"),
            Asked::ListOffsets { topic, partition } => {
                write!(f, "listing offsets of {topic}/{partition}")
            }
            Asked::CreateTopic { topic } => write!(f, "creating topic {topic:?}"),
            Asked::FindCoordinator { group } => {
                write!(f, "finding the coordinator of group {group:?}")
            }
            Asked::Commit {
                group,
                topic,
                partition,
            } => write!(f, "committing {group:?} at {topic}/{partition}"),
        }
    }
}

/// The broker's answer to what was `asked`: fine when every error code in it is 0, else
/// the first error, naming the request.
fn answered(
    codes: impl IntoIterator<Item = i16>,
    asked: impl FnOnce() -> Asked,
) -> Result<(), ExternalError> {
    match codes.into_iter().find(|&code| code != 0) {
        None => Ok(()),
        Some(code) => Err(ExternalError::Broker {
            asked: asked(),
            code,
        }),
    }
}

/// A broker's error code with its name and Kafka's description of it.
struct KafkaCode(i16);

impl std::fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.0;
        match kafka_protocol::error::ResponseError::try_from_code(code) {
            Some(e) => write!(f, "{e:?} ({code}): {e}"),
            None => write!(f, "Kafka error code {code}"),
        }
    }
}

/// How the client is doing, for `/ready` and `/metrics`: the first failure of the current
/// run of failures (cleared by any success).
#[derive(Default)]
pub struct ClientHealth {
    failing: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

/// How long the client may fail before the node says it is not ready: a broker that
/// fails over, or a rebalance, is seconds.
pub const NOT_READY_AFTER: Duration = Duration::from_secs(10);

impl ClientHealth {
    fn ok(&self) {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn failed(&self, error: &ExternalError) {
        let mut f = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match f.as_mut() {
            Some((_, last)) => *last = error.to_string(),
            None => *f = Some((std::time::Instant::now(), error.to_string())),
        }
    }

    /// Why the pipeline cannot use the cluster, once it has failed for `NOT_READY_AFTER`.
    pub fn not_ready(&self) -> Option<String> {
        let f = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let (since, error) = f.as_ref()?;
        (since.elapsed() >= NOT_READY_AFTER).then(|| {
            format!(
                "external Kafka (kafka.brokers) failing for {}s: {error}",
                since.elapsed().as_secs()
            )
        })
    }
}

impl ExternalCluster {
    /// Starts the client's runtime thread; connects lazily, with `security`. Failures
    /// are counted in `telemetry` when given.
    pub fn start(
        bootstrap: Vec<String>,
        client_id: &str,
        security: ClientSecurity,
        telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    ) -> anyhow::Result<ExternalCluster> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kafka-client")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("kafka-client".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = rx.await;
                });
            })?;
        Ok(ExternalCluster {
            inner: Arc::new(Mutex::new(Inner {
                bootstrap,
                client_id: client_id.to_owned(),
                security,
                brokers: HashMap::new(),
                connections: HashMap::new(),
                leaders: HashMap::new(),
                coordinators: HashMap::new(),
                ceilings: HashMap::new(),
                fetch_cap: FETCH_VERSIONS[0],
            })),
            health: Arc::default(),
            telemetry,
            handle,
            _runtime: Arc::new(RuntimeThread { stop: Some(tx) }),
        })
    }

    /// Runs `op` on the client's runtime, under the lock; an error drops the cached
    /// connections and metadata so the next call starts over.
    fn spawn(&self, op: Op) -> tokio::task::JoinHandle<Result<Reply, ExternalError>> {
        let inner = Arc::clone(&self.inner);
        let health = Arc::clone(&self.health);
        let telemetry = self.telemetry.clone();
        self.handle.spawn(async move {
            let name = op.name();
            let mut inner = inner.lock().await;
            let result = inner.exec(op).await;
            match &result {
                Ok(_) => health.ok(),
                Err(e) => {
                    inner.forget();
                    health.failed(e);
                    crate::events::KafkaClientFailed { op: name, error: e }
                        .emit(telemetry.as_deref());
                }
            }
            result
        })
    }

    /// `op` from async code of any runtime.
    async fn call(&self, op: Op) -> Result<Reply, ExternalError> {
        self.spawn(op).await?
    }

    /// Publishes messages to `topic` (created by the cluster on first use if it allows),
    /// acks=all. Blocking: call it from a blocking thread, not from async code.
    pub fn publish_blocking(
        &self,
        topic: &str,
        messages: &[Message],
        now_ms: u64,
    ) -> Result<(), ExternalError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let task = self.spawn(Op::Publish(topic.to_owned(), messages.to_vec(), now_ms));
        self.handle.spawn(async move {
            let _ = tx.send(task.await);
        });
        match rx.recv() {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(e)) => Err(ExternalError::Task(e)),
            Err(_) => Err(ExternalError::Stopped),
        }
    }

    pub async fn partitions(&self, topic: &str) -> Result<u32, ExternalError> {
        self.call(Op::Partitions(topic.to_owned())).await?.count()
    }

    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, Item)>, ExternalError> {
        self.call(Op::Fetch(topic.to_owned(), partition, from, max))
            .await?
            .items()
    }

    /// The group's committed offset, or the partition's earliest offset if none.
    pub async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<u64, ExternalError> {
        self.call(Op::Committed(group.to_owned(), topic.to_owned(), partition))
            .await?
            .offset()
    }

    /// Commits `next` for `group` at `topic`/`partition`: as a member of the group's
    /// generation when given (a group with members refuses other commits, and a member
    /// the group has moved on from is refused: the partition is someone else's now), else
    /// as a simple commit.
    pub async fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
        member: Option<Generation>,
    ) -> Result<(), ExternalError> {
        self.call(Op::Commit(
            group.to_owned(),
            topic.to_owned(),
            partition,
            next,
            member,
        ))
        .await
        .map(|_| ())
    }

    /// Asks no broker a Fetch newer than `version` (one of 12, 11, 7, 4; the newest both
    /// sides serve otherwise): for a broker that misbehaves at newer versions, and for the
    /// interop tests, which read at each version the client may pick.
    pub async fn cap_fetch_version(&self, version: i16) {
        let mut inner = self.inner.lock().await;
        inner.fetch_cap = version;
        inner
            .ceilings
            .retain(|(_, key), _| *key != FetchRequest::KEY);
    }

    /// Creates `topic` with `partitions` partitions unless it exists; returns how many
    /// partitions it has (an existing topic keeps its own count).
    pub async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<u32, ExternalError> {
        self.call(Op::EnsureTopic(topic.to_owned(), partitions))
            .await?
            .count()
    }

    /// The offset the next record of `topic`/`partition` will get (its end).
    pub async fn high_watermark(&self, topic: &str, partition: u32) -> Result<u64, ExternalError> {
        self.call(Op::HighWatermark(topic.to_owned(), partition))
            .await?
            .offset()
    }
}

/// A consumer group member's credentials for a commit: its generation and member id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub id: i32,
    pub member_id: String,
}

/// What the client's runtime is asked to do.
enum Op {
    Publish(String, Vec<Message>, u64),
    Partitions(String),
    Fetch(String, u32, u64, usize),
    /// group, topic, partition
    Committed(String, String, u32),
    Commit(String, String, u32, u64, Option<Generation>),
    /// topic, partitions
    EnsureTopic(String, u32),
    HighWatermark(String, u32),
}

impl Op {
    /// The `op` label of `panoptes_kafka_client_errors_total`.
    fn name(&self) -> &'static str {
        match self {
            Op::Publish(..) => "produce",
            Op::Partitions(..) => "metadata",
            Op::Fetch(..) => "fetch",
            Op::Committed(..) => "offset_fetch",
            Op::Commit(..) => "offset_commit",
            Op::EnsureTopic(..) => "create_topics",
            Op::HighWatermark(..) => "list_offsets",
        }
    }
}

#[derive(Debug)]
enum Reply {
    Done,
    Count(u32),
    Items(Vec<(u64, Item)>),
    Offset(u64),
}

impl Reply {
    fn count(self) -> Result<u32, ExternalError> {
        match self {
            Reply::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    fn items(self) -> Result<Vec<(u64, Item)>, ExternalError> {
        match self {
            Reply::Items(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    fn offset(self) -> Result<u64, ExternalError> {
        match self {
            Reply::Offset(o) => Ok(o),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Reply) -> ExternalError {
    ExternalError::UnexpectedReply(match reply {
        Reply::Done => "Done",
        Reply::Count(_) => "Count",
        Reply::Items(_) => "Items",
        Reply::Offset(_) => "Offset",
    })
}

impl Inner {
    async fn exec(&mut self, op: Op) -> Result<Reply, ExternalError> {
        Ok(match op {
            Op::Publish(topic, messages, now_ms) => {
                self.publish(&topic, &messages, now_ms).await?;
                Reply::Done
            }
            Op::Partitions(topic) => Reply::Count(self.leaders_of(&topic).await?.len() as u32),
            Op::Fetch(topic, p, from, max) => Reply::Items(self.fetch(&topic, p, from, max).await?),
            Op::Committed(group, topic, p) => {
                Reply::Offset(self.committed(&group, &topic, p).await?)
            }
            Op::Commit(group, topic, p, next, member) => {
                self.commit(&group, &topic, p, next, member).await?;
                Reply::Done
            }
            Op::EnsureTopic(topic, partitions) => {
                Reply::Count(self.ensure_topic(&topic, partitions).await?)
            }
            Op::HighWatermark(topic, p) => Reply::Offset(self.list_offset(&topic, p, -1).await?),
        })
    }

    /// Drops cached connections and metadata after an error: the next call starts over.
    fn forget(&mut self) {
        self.connections.clear();
        self.leaders.clear();
        self.coordinators.clear();
    }

    async fn connection(&mut self, addr: &str) -> Result<&mut Connection, ExternalError> {
        if !self.connections.contains_key(addr) {
            let c =
                Connection::connect_with(addr, &self.client_id, TIMEOUT, &self.security).await?;
            self.connections.insert(addr.to_owned(), c);
        }
        self.connections
            .get_mut(addr)
            .ok_or_else(|| ExternalError::NoConnection {
                addr: addr.to_owned(),
            })
    }

    /// `request` to the broker at `addr`, at the highest common version up to `ours`.
    async fn call<R: kafka_protocol::protocol::Request>(
        &mut self,
        addr: &str,
        request: R,
        ours: i16,
    ) -> Result<R::Response, ExternalError> {
        Ok(self.connection(addr).await?.call(request, ours).await?)
    }

    /// Any reachable bootstrap broker.
    async fn any(&mut self) -> Result<String, ExternalError> {
        let mut last = ExternalError::NoBrokers;
        for addr in self.bootstrap.clone() {
            match self.connection(&addr).await {
                Ok(_) => return Ok(addr),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn leaders_of(&mut self, topic: &str) -> Result<Vec<i32>, ExternalError> {
        if let Some(l) = self.leaders.get(topic) {
            return Ok(l.clone());
        }
        let addr = self.any().await?;
        let mut t = metadata_request::MetadataRequestTopic::default();
        t.name = Some(TopicName(s(topic)));
        let mut req = MetadataRequest::default();
        req.topics = Some(vec![t]);
        req.allow_auto_topic_creation = true;
        let answer = self.call(&addr, req, 12).await?;
        for b in &answer.brokers {
            self.brokers
                .insert(b.node_id.0, format!("{}:{}", b.host.as_str(), b.port));
        }
        let Some(md) = answer.topics.first() else {
            return Err(ExternalError::NoMetadata {
                topic: topic.to_owned(),
            });
        };
        if md.error_code != 0 || md.partitions.is_empty() {
            return Err(ExternalError::Broker {
                asked: Asked::Metadata {
                    topic: topic.to_owned(),
                },
                code: md.error_code,
            });
        }
        let mut leaders = vec![-1; md.partitions.len()];
        for p in &md.partitions {
            if let Some(slot) = usize::try_from(p.partition_index)
                .ok()
                .and_then(|i| leaders.get_mut(i))
            {
                *slot = p.leader_id.0;
            }
        }
        self.leaders.insert(topic.to_owned(), leaders.clone());
        Ok(leaders)
    }

    async fn leader(&mut self, topic: &str, partition: u32) -> Result<String, ExternalError> {
        let leaders = self.leaders_of(topic).await?;
        let id = leaders.get(partition as usize).copied().ok_or_else(|| {
            ExternalError::NoSuchPartition {
                topic: topic.to_owned(),
                partition,
            }
        })?;
        self.brokers
            .get(&id)
            .cloned()
            .ok_or_else(|| ExternalError::NoLeader {
                topic: topic.to_owned(),
                partition,
                broker: id,
            })
    }

    async fn publish(
        &mut self,
        topic: &str,
        messages: &[Message],
        now_ms: u64,
    ) -> Result<(), ExternalError> {
        let n = self.leaders_of(topic).await?.len() as u32;
        let mut by_partition: HashMap<u32, Vec<StoredRecord>> = HashMap::new();
        for m in messages {
            let p = partition_for(m.partition_key.as_bytes(), n);
            let records = by_partition.entry(p).or_default();
            records.push(StoredRecord {
                offset: records.len() as u64,
                record: Record {
                    key: Some(m.key.as_bytes().to_vec()),
                    value: m.value.clone(),
                    timestamp_ms: now_ms,
                    headers: Vec::new(),
                },
            });
        }
        for (partition, records) in by_partition {
            // The same encoder the embedded broker answers fetches with.
            let batch = encode_records(&records)?;
            let mut pd = produce_request::PartitionProduceData::default();
            pd.index = partition as i32;
            pd.records = Some(batch);
            let mut td = produce_request::TopicProduceData::default();
            td.name = TopicName(s(topic));
            td.partition_data = vec![pd];
            let mut req = ProduceRequest::default();
            req.acks = -1;
            req.timeout_ms = TIMEOUT.as_millis() as i32;
            req.topic_data = vec![td];
            let addr = self.leader(topic, partition).await?;
            let answer = self.call(&addr, req, 9).await?;
            let codes = answer.responses.iter().flat_map(|t| &t.partition_responses);
            answered(codes.map(|p| p.error_code), || Asked::Produce {
                topic: topic.to_owned(),
                partition,
            })?;
        }
        Ok(())
    }

    async fn fetch(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, Item)>, ExternalError> {
        let mut from = from;
        let mut moved_to_earliest = false;
        let mut skips = 0;
        loop {
            match self.fetch_once(topic, partition, from, max).await? {
                Some(Fetched::Items(items)) => return Ok(items),
                // Only control records (a transaction's markers): nothing to hand on, but
                // the read must move past them, or a broker that answers one batch a
                // fetch would give the same markers to every fetch from here.
                Some(Fetched::Past(next)) if next > from && skips < MAX_CONTROL_SKIPS => {
                    tracing::trace!(topic, partition, from, next, "skipping control records");
                    skips += 1;
                    from = next;
                }
                Some(Fetched::Past(_)) => return Ok(Vec::new()),
                None if !moved_to_earliest => {
                    moved_to_earliest = true;
                    // Out of range: below the log start (retention removed it) the read
                    // resumes at the earliest offset still there; past the end there is
                    // nothing yet.
                    let earliest = self.list_offset(topic, partition, -2).await?;
                    if from >= earliest {
                        return Ok(Vec::new());
                    }
                    tracing::warn!(
                        topic,
                        partition,
                        from,
                        earliest,
                        "offsets were removed by retention; skipping ahead"
                    );
                    from = earliest;
                }
                None => return Ok(Vec::new()),
            }
        }
    }

    /// `None`: OFFSET_OUT_OF_RANGE. Asks at the highest Fetch version both sides serve;
    /// a broker that answers that version without the partition asked for (or refuses
    /// it) is asked again at older versions, and the one that worked is kept for it.
    async fn fetch_once(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Option<Fetched>, ExternalError> {
        let Some((fetched, end)) = self
            .fetch_waiting(topic, partition, from, max, POLL_WAIT)
            .await?
        else {
            return Ok(None);
        };
        match fetched {
            Fetched::Items(items) if items.is_empty() && from < end => {}
            fetched => return Ok(Some(fetched)),
        }
        // Records are there but did not come: a broker may give up gathering them within
        // 1 ms (Tansu under load does, many answers in a row). Asked again allowing it to
        // wait, it answers as soon as it has them.
        let again = self
            .fetch_waiting(topic, partition, from, max, CATCH_UP_WAIT)
            .await?;
        Ok(again.map(|(fetched, _)| fetched))
    }

    /// [`Self::fetch_once`] letting the broker wait `wait`, with the partition's high
    /// watermark as the broker gave it.
    async fn fetch_waiting(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Option<(Fetched, u64)>, ExternalError> {
        let addr = self.leader(topic, partition).await?;
        let ceiling = self
            .ceilings
            .get(&(addr.clone(), FetchRequest::KEY))
            .copied()
            .unwrap_or(FETCH_VERSIONS[0])
            .min(self.fetch_cap);
        let mut last_problem = None;
        for &version in FETCH_VERSIONS.iter().filter(|&&v| v <= ceiling) {
            let answer = match self
                .fetch_request(&addr, topic, partition, from, version, wait)
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    last_problem = Some(e);
                    continue;
                }
            };
            let part = answer
                .responses
                .iter()
                .filter(|t| t.topic.0.as_str() == topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == partition as i32);
            let Some(part) = part else {
                last_problem = Some(ExternalError::FetchMissingPartition {
                    topic: topic.to_owned(),
                    partition,
                    version,
                    top_level: (answer.error_code != 0).then_some(answer.error_code),
                });
                continue;
            };
            if version != ceiling {
                tracing::info!(broker = %addr, version, "the broker answers Fetch at this version: using it from now on");
                self.ceilings
                    .insert((addr.clone(), FetchRequest::KEY), version);
            }
            if part.error_code == 1 {
                return Ok(None);
            }
            answered([part.error_code], || Asked::Fetch {
                topic: topic.to_owned(),
                partition,
            })?;
            let end = u64::try_from(part.high_watermark).unwrap_or(0);
            return Ok(Some((decode_fetched(part, from, max)?, end)));
        }
        Err(
            last_problem.unwrap_or_else(|| ExternalError::NoFetchVersion {
                topic: topic.to_owned(),
                partition,
            }),
        )
    }

    async fn fetch_request(
        &mut self,
        addr: &str,
        topic: &str,
        partition: u32,
        from: u64,
        version: i16,
        wait: Duration,
    ) -> Result<FetchResponse, ExternalError> {
        let mut p = fetch_request::FetchPartition::default();
        p.partition = partition as i32;
        p.fetch_offset = from as i64;
        p.partition_max_bytes = 8 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(s(topic));
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = wait.as_millis() as i32;
        req.min_bytes = 1;
        req.max_bytes = 8 << 20;
        req.topics = vec![t];
        let connection = self.connection(addr).await?;
        let version = connection.version::<FetchRequest>(version)?;
        Ok(connection.send(req, version).await?)
    }

    async fn list_offset(
        &mut self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<u64, ExternalError> {
        let addr = self.leader(topic, partition).await?;
        let mut p = list_offsets_request::ListOffsetsPartition::default();
        p.partition_index = partition as i32;
        p.timestamp = timestamp;
        let mut t = list_offsets_request::ListOffsetsTopic::default();
        t.name = TopicName(s(topic));
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t];
        let answer = self.call(&addr, req, 7).await?;
        let p = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ExternalError::NoOffsets {
                topic: topic.to_owned(),
                partition,
            })?;
        answered([p.error_code], || Asked::ListOffsets {
            topic: topic.to_owned(),
            partition,
        })?;
        Ok(u64::try_from(p.offset).unwrap_or(0))
    }

    async fn ensure_topic(&mut self, topic: &str, partitions: u32) -> Result<u32, ExternalError> {
        const TOPIC_ALREADY_EXISTS: i16 = 36;
        let addr = self.any().await?;
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = TopicName(s(topic));
        t.num_partitions = i32::try_from(partitions).unwrap_or(i32::MAX);
        // The broker's default replication.
        t.replication_factor = -1;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 10_000;
        let answer = self.call(&addr, req, 7).await?;
        let code = answer.topics.first().map_or(0, |t| t.error_code);
        let code = (code != TOPIC_ALREADY_EXISTS).then_some(code);
        answered(code, || Asked::CreateTopic {
            topic: topic.to_owned(),
        })?;
        self.leaders.remove(topic);
        Ok(self.leaders_of(topic).await?.len() as u32)
    }

    async fn coordinator(&mut self, group: &str) -> Result<String, ExternalError> {
        if let Some(addr) = self.coordinators.get(group) {
            return Ok(addr.clone());
        }
        let addr = self.any().await?;
        let mut req = FindCoordinatorRequest::default();
        req.key = s(group);
        let answer = self.call(&addr, req, 3).await?;
        answered([answer.error_code], || Asked::FindCoordinator {
            group: group.to_owned(),
        })?;
        let coordinator = format!("{}:{}", answer.host.as_str(), answer.port);
        self.coordinators
            .insert(group.to_owned(), coordinator.clone());
        Ok(coordinator)
    }

    async fn committed(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<u64, ExternalError> {
        let addr = self.coordinator(group).await?;
        let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partition_indexes = vec![partition as i32];
        let mut req = OffsetFetchRequest::default();
        req.group_id = GroupId(s(group));
        req.topics = Some(vec![t]);
        let answer = self.call(&addr, req, 7).await?;
        let committed = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .map(|p| p.committed_offset)
            .unwrap_or(-1);
        match u64::try_from(committed) {
            Ok(o) => Ok(o),
            Err(_) => self.list_offset(topic, partition, -2).await,
        }
    }

    async fn commit(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
        member: Option<Generation>,
    ) -> Result<(), ExternalError> {
        let addr = self.coordinator(group).await?;
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = partition as i32;
        p.committed_offset = next as i64;
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partitions = vec![p];
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(s(group));
        match member {
            Some(m) => {
                req.generation_id_or_member_epoch = m.id;
                req.member_id = s(&m.member_id);
            }
            None => req.generation_id_or_member_epoch = -1,
        }
        req.topics = vec![t];
        let answer = self.call(&addr, req, 8).await?;
        let codes = answer.topics.iter().flat_map(|t| &t.partitions);
        answered(codes.map(|p| p.error_code), || Asked::Commit {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        })
    }
}

/// How long a fetch lets the broker wait for records: 1 ms, not 0 (Tansu answers a Fetch
/// that may not wait with no partitions at all). The pipeline's consumers poll.
const POLL_WAIT: Duration = Duration::from_millis(1);

/// How long a fetch below the partition's high watermark that came back empty lets the
/// broker wait when it is asked again. A broker answers as soon as it has the records.
const CATCH_UP_WAIT: Duration = Duration::from_millis(500);

/// Fetch versions tried from the newest down: 12 (names, KIP-227 sessions off), 11, 7
/// and 4, each a layout brokers have served for years.
const FETCH_VERSIONS: [i16; 4] = [12, 11, 7, 4];

/// Fetches in a row that may find only control records before one gives up (and the
/// next fetch goes on from where it stopped).
const MAX_CONTROL_SKIPS: usize = 16;

/// What a fetch found.
#[derive(Debug, PartialEq)]
enum Fetched {
    /// The records from `from` on, at most `max` (none: nothing there yet).
    Items(Vec<(u64, Item)>),
    /// Only control records (transaction markers), up to this offset (exclusive).
    Past(u64),
}

/// The records of a fetched partition from `from` on, at most `max`.
fn decode_fetched(
    part: &fetch_response::PartitionData,
    from: u64,
    max: usize,
) -> Result<Fetched, ExternalError> {
    let mut bytes = part.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut past = from;
    for set in RecordBatchDecoder::decode_all(&mut bytes).map_err(ExternalError::Decode)? {
        for r in set.records {
            let Ok(offset) = u64::try_from(r.offset) else {
                continue;
            };
            if offset < from || out.len() >= max {
                continue;
            }
            if r.control {
                past = past.max(offset + 1);
                continue;
            }
            out.push((
                offset,
                (
                    r.key.map(|k| k.to_vec()),
                    r.value.map(|v| v.to_vec()).unwrap_or_default(),
                ),
            ));
        }
    }
    Ok(if out.is_empty() && past > from {
        Fetched::Past(past)
    } else {
        Fetched::Items(out)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use bytes::{Buf, Bytes, BytesMut};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::kafka::acl::Authorizer;
    use crate::kafka::broker::{Broker, BrokerConfig};
    use crate::telemetry::Telemetry;

    /// Our embedded broker behind a listener that hands every Fetch answer to `rewrite`
    /// (with the request and its version) before sending it.
    async fn broker_behind(
        rewrite: impl Fn(&FetchRequest, Bytes, i16) -> Bytes + Send + Sync + 'static,
    ) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = Arc::new(Broker::new(
            BrokerConfig {
                advertised_host: "127.0.0.1".into(),
                advertised_port: port,
                auto_create_topics: true,
                default_partitions: 1,
                cluster_id: "behind".into(),
                authorizer: Authorizer::open(Vec::new(), Vec::new()),
                ..BrokerConfig::default()
            },
            panoptes_storage::Store::memory(),
            Arc::new(Telemetry::default()),
        ));
        let rewrite = Arc::new(rewrite);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let broker = Arc::clone(&broker);
                let rewrite = Arc::clone(&rewrite);
                tokio::spawn(async move {
                    while let Ok(size) = socket.read_i32().await {
                        let mut frame = vec![0; size as usize];
                        socket.read_exact(&mut frame).await.unwrap();
                        let frame = Bytes::from(frame);
                        let api = i16::from_be_bytes([frame[0], frame[1]]);
                        let version = i16::from_be_bytes([frame[2], frame[3]]);
                        let fetch = (api == FetchRequest::KEY).then(|| {
                            let mut buf = frame.clone();
                            RequestHeader::decode(
                                &mut buf,
                                ApiKey::Fetch.request_header_version(version),
                            )
                            .unwrap();
                            FetchRequest::decode(&mut buf, version).unwrap()
                        });
                        let answer = crate::kafka::connection::respond(&broker, frame)
                            .await
                            .unwrap()
                            .unwrap();
                        let answer = match &fetch {
                            Some(request) => rewrite(request, answer, version),
                            None => answer,
                        };
                        socket.write_all(&answer).await.unwrap();
                    }
                });
            }
        });
        format!("127.0.0.1:{port}")
    }

    /// [`broker_behind`] answering every Fetch allowed to wait at most 1 ms without its
    /// records (keeping the high watermark), the way Tansu does under load; the waits the
    /// client asked for are recorded.
    async fn forgetful_broker() -> (String, Arc<StdMutex<Vec<i32>>>) {
        let waits = Arc::new(StdMutex::new(Vec::new()));
        let seen = Arc::clone(&waits);
        let addr = broker_behind(move |request, answer, version| {
            seen.lock().unwrap().push(request.max_wait_ms);
            if request.max_wait_ms <= 1 {
                with_records(answer, version, Bytes::new())
            } else {
                answer
            }
        })
        .await;
        (addr, waits)
    }

    /// A framed Fetch answer with every partition's records replaced by `records`.
    fn with_records(framed: Bytes, version: i16, records: Bytes) -> Bytes {
        let mut buf = framed.slice(4..);
        let header_version = ApiKey::Fetch.response_header_version(version);
        let header = ResponseHeader::decode(&mut buf, header_version).unwrap();
        let mut answer = FetchResponse::decode(&mut buf, version).unwrap();
        assert!(!buf.has_remaining());
        for p in answer
            .responses
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            p.records = Some(records.clone());
        }
        let mut body = BytesMut::new();
        header.encode(&mut body, header_version).unwrap();
        answer.encode(&mut body, version).unwrap();
        crate::kafka::frame::framed(&body).unwrap()
    }

    /// One batch holding a transaction's commit marker at `offset`, as a broker stores it.
    fn commit_marker(offset: i64) -> Bytes {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let marker = Record {
            transactional: true,
            control: true,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 7,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: 1_000,
            // Control record key: version 0, type 1 (commit); value: version 0,
            // coordinator epoch 0.
            key: Some(Bytes::from_static(&[0, 0, 0, 1])),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, [&marker], &options).unwrap();
        buf.freeze()
    }

    /// A client of the broker at `addr`, with records "v0".. "v{n-1}" in topic "t".
    async fn cluster_with_records(addr: String, n: u32) -> ExternalCluster {
        let cluster =
            ExternalCluster::start(vec![addr], "behind-test", ClientSecurity::default(), None)
                .unwrap();
        assert_eq!(cluster.ensure_topic("t", 1).await.unwrap(), 1);
        let publisher = cluster.clone();
        let messages: Vec<Message> = (0..n).map(message).collect();
        tokio::task::spawn_blocking(move || publisher.publish_blocking("t", &messages, 1_000))
            .await
            .unwrap()
            .unwrap();
        cluster
    }

    /// Fetched records as (offset, value).
    fn values(items: Vec<(u64, Item)>) -> Vec<(u64, String)> {
        items
            .into_iter()
            .map(|(offset, (_, value))| (offset, String::from_utf8(value).unwrap()))
            .collect()
    }

    fn message(n: u32) -> Message {
        Message {
            key: format!("k{n}"),
            partition_key: "p".into(),
            value: format!("v{n}").into_bytes(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_answer_below_the_high_watermark_is_asked_again_allowing_a_wait() {
        let (addr, waits) = forgetful_broker().await;
        let cluster = cluster_with_records(addr, 3).await;

        let got = values(cluster.fetch("t", 0, 1, 100).await.unwrap());
        assert_eq!(got, vec![(1, "v1".to_owned()), (2, "v2".to_owned())]);
        assert_eq!(*waits.lock().unwrap(), vec![1, 500]);

        // At the end there is nothing to wait for: one quick fetch, empty.
        waits.lock().unwrap().clear();
        assert!(cluster.fetch("t", 0, 3, 100).await.unwrap().is_empty());
        assert_eq!(*waits.lock().unwrap(), vec![1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fetch_finding_only_transaction_markers_reads_on_past_them() {
        // Offsets 1 and 2 read as commit markers, one batch an answer (as a broker that
        // answers one batch a fetch gives them); 0 and 3..5 are records.
        let asked = Arc::new(StdMutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        let addr = broker_behind(move |request, answer, version| {
            let from = request.topics[0].partitions[0].fetch_offset;
            seen.lock().unwrap().push(from);
            match from {
                1 | 2 => with_records(answer, version, commit_marker(from)),
                _ => answer,
            }
        })
        .await;
        let cluster = cluster_with_records(addr, 5).await;

        let got = values(cluster.fetch("t", 0, 1, 100).await.unwrap());
        assert_eq!(got, vec![(3, "v3".to_owned()), (4, "v4".to_owned())]);
        // Past each marker at once: no second ask at the same offset.
        assert_eq!(*asked.lock().unwrap(), vec![1, 2, 3]);

        // Records before a marker come as records (the marker is left for the next read).
        asked.lock().unwrap().clear();
        let items = cluster.fetch("t", 0, 0, 100).await.unwrap();
        let offsets: Vec<u64> = items.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
        assert_eq!(*asked.lock().unwrap(), vec![0]);
    }

    #[test]
    fn control_records_alone_move_the_read_past_them_and_never_come_out() {
        let part = |records: Bytes| {
            let mut p = fetch_response::PartitionData::default();
            p.records = Some(records);
            p
        };
        assert_eq!(
            decode_fetched(&part(commit_marker(5)), 5, 10).unwrap(),
            Fetched::Past(6)
        );
        // A marker below `from` (the batch holding `from` starts earlier) moves nothing.
        assert_eq!(
            decode_fetched(&part(commit_marker(5)), 6, 10).unwrap(),
            Fetched::Items(Vec::new())
        );
        assert_eq!(
            decode_fetched(&part(Bytes::new()), 6, 10).unwrap(),
            Fetched::Items(Vec::new())
        );
    }
}
