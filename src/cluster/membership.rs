//! Membership of one Kafka consumer group, the standard way (FindCoordinator, JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup with the `consumer` protocol), so the cluster's group
//! coordinator decides who is in and our members split a topic's partitions. The member
//! the coordinator names leader computes the assignment ([`super::assign`]) and hands
//! every member the whole map, so any node can show who owns what.
//!
//! Revocation is eager: from the moment a rebalance starts until the new assignment
//! arrives, this member owns nothing (a device is never polled by two nodes at once; the
//! price is a pause of one join/sync round trip).
//!
//! The group runs on connections of its own: a JoinGroup may wait for the rebalance
//! timeout, which must not hold up the pipeline's produce and fetch requests.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::assign::{assign, Member};
use crate::kafka::client::Connection;
use crate::kafka::ClientSecurity;

/// What a member group needs to know.
#[derive(Clone)]
pub struct GroupConfig {
    pub bootstrap: Vec<String>,
    pub security: ClientSecurity,
    pub group: String,
    /// The topic whose partitions are split.
    pub topic: String,
    /// This node: its id and HTTP address.
    pub node: String,
    pub http: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
}

/// Where the membership stands, published on every change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Membership {
    pub group: String,
    pub topic: String,
    /// `joining`, `stable`, or `lost` (the coordinator is unreachable).
    pub state: &'static str,
    pub member_id: String,
    pub generation: i32,
    pub leader: bool,
    /// Partitions this node owns now (empty while joining).
    pub partitions: Vec<u32>,
    /// Partitions of the topic.
    pub topic_partitions: u32,
    /// Every member and what it owns, as the leader assigned it.
    pub members: Vec<Member>,
    pub rebalances: u64,
    pub last_error: Option<String>,
}

/// What one member tells the others when it joins (the subscription's user data).
#[derive(Serialize, Deserialize)]
struct Hello {
    node: String,
    http: String,
}

/// What the leader hands every member (the assignment's user data).
#[derive(Serialize, Deserialize)]
struct Map {
    partitions: u32,
    members: Vec<Member>,
}

const PROTOCOL: &str = "panoptes-balanced";

/// Kafka error codes the loop reacts to.
mod code {
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
}

/// Why a round of the loop ended.
#[derive(Debug, thiserror::Error)]
enum Round {
    #[error("the group is rebalancing")]
    Rebalance,
    #[error("the coordinator forgot this member ({0})")]
    Forgotten(String),
    #[error("the coordinator moved ({0})")]
    CoordinatorMoved(String),
    #[error("{0}")]
    Failed(String),
    #[error("stopping")]
    Stop,
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn named(what: &str, code: i16) -> String {
    match kafka_protocol::error::ResponseError::try_from_code(code) {
        Some(e) => format!("{what}: {e:?} ({code})"),
        None => format!("{what}: error {code}"),
    }
}

/// Runs the membership until `stop` fires, publishing every change on `out`.
pub async fn run(
    config: GroupConfig,
    out: watch::Sender<Membership>,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = Membership {
        group: config.group.clone(),
        topic: config.topic.clone(),
        state: "joining",
        ..Membership::default()
    };
    out.send_replace(state.clone());
    let mut member_id = String::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        if *stop.borrow() {
            return;
        }
        let result = tokio::select! {
            r = session(&config, &mut member_id, &mut state, &out) => r,
            _ = stop.changed() => Err(Round::Stop),
        };
        // Whatever ended the round, this member owns nothing until it has joined again.
        let had = !state.partitions.is_empty();
        state.partitions.clear();
        state.state = "joining";
        match result {
            Ok(()) | Err(Round::Stop) => {
                out.send_replace(state.clone());
                leave(&config, &member_id).await;
                return;
            }
            Err(Round::Rebalance) => {
                backoff = Duration::from_millis(200);
                state.last_error = None;
            }
            Err(e @ Round::Forgotten(_)) => {
                member_id.clear();
                state.last_error = Some(e.to_string());
            }
            Err(e) => {
                state.state = "lost";
                state.last_error = Some(e.to_string());
                tracing::warn!(group = %config.group, error = %e, "consumer group membership interrupted; joining again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        if had {
            state.rebalances += 1;
        }
        out.send_replace(state.clone());
    }
}

/// One membership: find the coordinator, join, sync, heartbeat until something ends it.
async fn session(
    config: &GroupConfig,
    member_id: &mut String,
    state: &mut Membership,
    out: &watch::Sender<Membership>,
) -> Result<(), Round> {
    let topic_partitions = partitions_of(config).await?;
    let mut c = coordinator(config).await?;
    let joined = join(&mut c, config, member_id).await?;
    let members = if joined.leader.as_str() == member_id.as_str() {
        let mut members = members_of(&joined)?;
        assign(&mut members, topic_partitions);
        Some(members)
    } else {
        None
    };
    let map = sync(&mut c, config, member_id, joined.generation_id, members).await?;
    let mine = map
        .members
        .iter()
        .find(|m| m.member_id == *member_id)
        .map(|m| m.partitions.clone())
        .unwrap_or_default();
    *state = Membership {
        group: config.group.clone(),
        topic: config.topic.clone(),
        state: "stable",
        member_id: member_id.clone(),
        generation: joined.generation_id,
        leader: joined.leader.as_str() == member_id.as_str(),
        partitions: mine,
        topic_partitions: map.partitions,
        members: map.members,
        rebalances: state.rebalances,
        last_error: None,
    };
    tracing::info!(group = %config.group, generation = state.generation, leader = state.leader,
        members = state.members.len(), partitions = ?state.partitions, "joined the consumer group");
    out.send_replace(state.clone());
    // A member the coordinator cannot hear from is dropped after the session timeout and
    // its partitions go to others: this one must stop owning them by then too.
    let limit = config
        .session_timeout
        .saturating_sub(config.heartbeat_interval)
        .max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(config.heartbeat_interval).await;
        match tokio::time::timeout(
            limit,
            heartbeat(&mut c, config, member_id, state.generation),
        )
        .await
        {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(Round::Failed(format!(
                    "no answer to a heartbeat within {} s: owning nothing until joined again",
                    limit.as_secs()
                )))
            }
        }
    }
}

async fn connect(addr: &str, config: &GroupConfig) -> Result<Connection, Round> {
    // A JoinGroup may wait for the whole rebalance.
    let timeout = config.rebalance_timeout + Duration::from_secs(10);
    Connection::connect_with(addr, &config.node, timeout, &config.security)
        .await
        .map_err(|e| Round::Failed(e.to_string()))
}

async fn any_broker(config: &GroupConfig) -> Result<Connection, Round> {
    let mut last = Round::Failed("kafka.brokers is empty".into());
    for addr in &config.bootstrap {
        match connect(addr, config).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The partitions of the split topic (from Metadata).
async fn partitions_of(config: &GroupConfig) -> Result<u32, Round> {
    let mut c = any_broker(config).await?;
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(s(&config.topic)));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    let answer = c
        .call(req, 9)
        .await
        .map_err(|e| Round::Failed(e.to_string()))?;
    let topic = answer
        .topics
        .first()
        .ok_or_else(|| Round::Failed(format!("no metadata for topic {:?}", config.topic)))?;
    if topic.error_code != 0 || topic.partitions.is_empty() {
        return Err(Round::Failed(named(
            &format!("metadata of topic {:?}", config.topic),
            topic.error_code,
        )));
    }
    Ok(topic.partitions.len() as u32)
}

async fn coordinator(config: &GroupConfig) -> Result<Connection, Round> {
    let mut c = any_broker(config).await?;
    let mut req = FindCoordinatorRequest::default();
    req.key = s(&config.group);
    let answer = c
        .call(req, 3)
        .await
        .map_err(|e| Round::Failed(e.to_string()))?;
    if answer.error_code != 0 {
        return Err(Round::Failed(named(
            &format!("finding the coordinator of group {:?}", config.group),
            answer.error_code,
        )));
    }
    let addr = format!("{}:{}", answer.host.as_str(), answer.port);
    if addr == c.addr() {
        return Ok(c);
    }
    connect(&addr, config).await
}

async fn join(
    c: &mut Connection,
    config: &GroupConfig,
    member_id: &mut String,
) -> Result<JoinGroupResponse, Round> {
    let hello = serde_json::to_vec(&Hello {
        node: config.node.clone(),
        http: config.http.clone(),
    })
    .map_err(|e| Round::Failed(e.to_string()))?;
    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = vec![s(&config.topic)];
    sub.user_data = Some(Bytes::from(hello));
    let metadata = versioned(&sub, 0)?;
    for _ in 0..2 {
        let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
        protocol.name = s(PROTOCOL);
        protocol.metadata = metadata.clone();
        let mut req = JoinGroupRequest::default();
        req.group_id = GroupId(s(&config.group));
        req.session_timeout_ms = millis(config.session_timeout);
        req.rebalance_timeout_ms = millis(config.rebalance_timeout);
        req.member_id = s(member_id);
        req.protocol_type = s("consumer");
        req.protocols = vec![protocol];
        let answer = c
            .call(req, 5)
            .await
            .map_err(|e| Round::Failed(e.to_string()))?;
        match answer.error_code {
            0 => {
                *member_id = answer.member_id.to_string();
                return Ok(answer);
            }
            // KIP-394: the coordinator hands out the member id, then the member joins with it.
            code::MEMBER_ID_REQUIRED => *member_id = answer.member_id.to_string(),
            code::UNKNOWN_MEMBER_ID => {
                member_id.clear();
                return Err(Round::Forgotten(named("JoinGroup", answer.error_code)));
            }
            code::NOT_COORDINATOR
            | code::COORDINATOR_NOT_AVAILABLE
            | code::COORDINATOR_LOAD_IN_PROGRESS => {
                return Err(Round::CoordinatorMoved(named(
                    "JoinGroup",
                    answer.error_code,
                )))
            }
            other => return Err(Round::Failed(named("JoinGroup", other))),
        }
    }
    Err(Round::Failed(
        "JoinGroup: the coordinator kept asking for a member id".into(),
    ))
}

/// The members of a join, from their subscriptions (the leader's view).
fn members_of(joined: &JoinGroupResponse) -> Result<Vec<Member>, Round> {
    joined
        .members
        .iter()
        .map(|m| {
            let mut meta = m.metadata.clone();
            if meta.remaining() < 2 {
                return Err(Round::Failed("a member's subscription is empty".into()));
            }
            let version = meta.get_i16();
            let sub = ConsumerProtocolSubscription::decode(&mut meta, version.clamp(0, 3))
                .map_err(|e| Round::Failed(format!("a member's subscription: {e:#}")))?;
            let hello: Hello = sub
                .user_data
                .as_deref()
                .and_then(|d| serde_json::from_slice(d).ok())
                .unwrap_or(Hello {
                    node: m.member_id.to_string(),
                    http: String::new(),
                });
            Ok(Member {
                member_id: m.member_id.to_string(),
                node: hello.node,
                http: hello.http,
                partitions: Vec::new(),
            })
        })
        .collect()
}

async fn sync(
    c: &mut Connection,
    config: &GroupConfig,
    member_id: &str,
    generation: i32,
    members: Option<Vec<Member>>,
) -> Result<Map, Round> {
    let mut req = SyncGroupRequest::default();
    req.group_id = GroupId(s(&config.group));
    req.generation_id = generation;
    req.member_id = s(member_id);
    req.protocol_type = Some(s("consumer"));
    req.protocol_name = Some(s(PROTOCOL));
    if let Some(members) = members {
        let partitions = members.iter().map(|m| m.partitions.len() as u32).sum();
        let map = serde_json::to_vec(&Map {
            partitions,
            members: members.clone(),
        })
        .map_err(|e| Round::Failed(e.to_string()))?;
        for m in &members {
            let mut tp = consumer_protocol_assignment::TopicPartition::default();
            tp.topic = TopicName(s(&config.topic));
            tp.partitions = m.partitions.iter().map(|&p| p as i32).collect();
            let mut a = ConsumerProtocolAssignment::default();
            a.assigned_partitions = vec![tp];
            a.user_data = Some(Bytes::from(map.clone()));
            let mut one = sync_group_request::SyncGroupRequestAssignment::default();
            one.member_id = s(&m.member_id);
            one.assignment = versioned(&a, 0)?;
            req.assignments.push(one);
        }
    }
    let answer = c
        .call(req, 3)
        .await
        .map_err(|e| Round::Failed(e.to_string()))?;
    match answer.error_code {
        0 => {}
        code::REBALANCE_IN_PROGRESS => return Err(Round::Rebalance),
        code::UNKNOWN_MEMBER_ID | code::ILLEGAL_GENERATION => {
            return Err(Round::Forgotten(named("SyncGroup", answer.error_code)))
        }
        code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE => {
            return Err(Round::CoordinatorMoved(named(
                "SyncGroup",
                answer.error_code,
            )))
        }
        other => return Err(Round::Failed(named("SyncGroup", other))),
    }
    let mut bytes = answer.assignment;
    if bytes.remaining() < 2 {
        // An empty assignment: the leader gave this member nothing (no map either).
        return Ok(Map {
            partitions: 0,
            members: Vec::new(),
        });
    }
    let version = bytes.get_i16();
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3))
        .map_err(|e| Round::Failed(format!("the assignment: {e:#}")))?;
    let mut map: Map = a
        .user_data
        .as_deref()
        .and_then(|d| serde_json::from_slice(d).ok())
        .unwrap_or(Map {
            partitions: 0,
            members: Vec::new(),
        });
    // The partitions are what the assignment itself says; the map is for showing.
    let mine: Vec<u32> = a
        .assigned_partitions
        .iter()
        .filter(|tp| tp.topic.0.as_str() == config.topic)
        .flat_map(|tp| tp.partitions.iter().filter_map(|&p| u32::try_from(p).ok()))
        .collect();
    match map.members.iter_mut().find(|m| m.member_id == member_id) {
        Some(m) => m.partitions = mine,
        None => map.members.push(Member {
            member_id: member_id.to_owned(),
            node: config.node.clone(),
            http: config.http.clone(),
            partitions: mine,
        }),
    }
    Ok(map)
}

async fn heartbeat(
    c: &mut Connection,
    config: &GroupConfig,
    member_id: &str,
    generation: i32,
) -> Result<(), Round> {
    let mut req = HeartbeatRequest::default();
    req.group_id = GroupId(s(&config.group));
    req.generation_id = generation;
    req.member_id = s(member_id);
    let answer = c
        .call(req, 3)
        .await
        .map_err(|e| Round::Failed(e.to_string()))?;
    match answer.error_code {
        0 => Ok(()),
        code::REBALANCE_IN_PROGRESS => Err(Round::Rebalance),
        code::UNKNOWN_MEMBER_ID | code::ILLEGAL_GENERATION => {
            Err(Round::Forgotten(named("Heartbeat", answer.error_code)))
        }
        code::NOT_COORDINATOR | code::COORDINATOR_NOT_AVAILABLE => Err(Round::CoordinatorMoved(
            named("Heartbeat", answer.error_code),
        )),
        other => Err(Round::Failed(named("Heartbeat", other))),
    }
}

/// Leaves the group so the others rebalance at once instead of after the session
/// timeout. Best effort, bounded in time.
async fn leave(config: &GroupConfig, member_id: &str) {
    if member_id.is_empty() {
        return;
    }
    let attempt = async {
        let mut c = coordinator(config).await?;
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(s(&config.group));
        req.member_id = s(member_id);
        let mut one = leave_group_request::MemberIdentity::default();
        one.member_id = s(member_id);
        req.members = vec![one];
        c.call(req, 3)
            .await
            .map_err(|e| Round::Failed(e.to_string()))?;
        Ok::<(), Round>(())
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(())) => tracing::info!(group = %config.group, "left the consumer group"),
        Ok(Err(e)) => {
            tracing::debug!(group = %config.group, error = %e, "leaving the group failed")
        }
        Err(_) => tracing::debug!(group = %config.group, "leaving the group timed out"),
    }
}

/// A consumer-protocol message as the protocol frames it: its version, then itself.
fn versioned<M: Encodable>(message: &M, version: i16) -> Result<Bytes, Round> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .map_err(|e| Round::Failed(format!("encoding the group metadata: {e:#}")))?;
    Ok(buf.freeze())
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
