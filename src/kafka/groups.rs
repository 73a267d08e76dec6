//! The group APIs: FindCoordinator (always this broker), JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, ListGroups, DescribeGroups, and the committed offsets
//! (OffsetCommit, OffsetFetch) kept durably in the store, so a group resumes from them
//! after a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::acl::{Operation, Resource};
use super::broker::{blocking, code, partition, Broker, Caller, HandleError, NODE_ID};
use super::coordinator::{Join, Outcome, State};
use crate::events::KafkaRefusal;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub fn find_coordinator(
    broker: &Broker,
    request: FindCoordinatorRequest,
    _version: i16,
) -> FindCoordinatorResponse {
    let mut r = FindCoordinatorResponse::default();
    if request.key_type != 0 {
        // Transaction coordinators are not served.
        r.error_code = code::COORDINATOR_NOT_AVAILABLE;
        r.error_message = Some(s("transactions are not supported by this broker"));
        r.node_id = BrokerId(-1);
        r.host = s("");
        r.port = -1;
        return r;
    }
    r.node_id = BrokerId(NODE_ID);
    r.host = s(&broker.config.advertised_host);
    r.port = i32::from(broker.config.advertised_port);
    r
}

/// Whether `caller` may use group `group`: GROUP_AUTHORIZATION_FAILED otherwise.
fn may_use(broker: &Broker, caller: &Caller, group: &str) -> Result<(), i16> {
    broker
        .authorize(caller, Operation::Consume, Resource::Group(group))
        .map_err(|_| code::GROUP_AUTHORIZATION_FAILED)
}

pub async fn join(
    broker: &Broker,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
    caller: &Caller,
) -> JoinGroupResponse {
    if let Err(error) = may_use(broker, caller, &request.group_id.0) {
        let mut r = JoinGroupResponse::default();
        r.error_code = error;
        r.generation_id = -1;
        r.member_id = request.member_id;
        return r;
    }
    let session_timeout = millis(request.session_timeout_ms);
    let rebalance_timeout = if version == 0 {
        session_timeout
    } else {
        millis(request.rebalance_timeout_ms)
    };
    let join = Join {
        group: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        client_id,
        client_host: caller
            .peer
            .map_or_else(|| "/127.0.0.1".into(), |p| format!("/{}", p.ip())),
        session_timeout,
        rebalance_timeout,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
    };
    let group = join.group.clone();
    let joined = match broker.groups.join(join, Instant::now()) {
        Outcome::Now(j) => {
            let refusal = match j.error {
                code::GROUP_MAX_SIZE_REACHED => Some((
                    KafkaRefusal::GroupFull,
                    format!(
                        "JoinGroup {group:?}: the group has kafka.max_members_per_group = {} members, or the groups' state reached its memory bound",
                        broker.config.limits.max_members_per_group
                    ),
                )),
                code::COORDINATOR_NOT_AVAILABLE => Some((
                    KafkaRefusal::TooManyGroups,
                    format!(
                        "JoinGroup {group:?}: there are kafka.max_groups = {} groups, none of them empty",
                        broker.config.limits.max_groups
                    ),
                )),
                _ => None,
            };
            if let Some((refusal, detail)) = refusal {
                broker.refuse(caller, refusal, &detail);
            }
            j
        }
        Outcome::Later(rx) => match rx.await {
            Ok(j) => j,
            Err(_) => super::coordinator::Joined {
                error: code::REBALANCE_IN_PROGRESS,
                generation: -1,
                ..Default::default()
            },
        },
    };
    tracing::debug!(
        group = %request.group_id.0.as_str(),
        member = joined.member_id,
        error = joined.error,
        generation = joined.generation,
        leader = joined.leader,
        "JoinGroup answered"
    );
    let mut r = JoinGroupResponse::default();
    r.error_code = joined.error;
    r.generation_id = joined.generation;
    r.protocol_type = Some(s(&joined.protocol_type));
    r.protocol_name = Some(s(joined.protocol.as_deref().unwrap_or("")));
    r.leader = s(&joined.leader);
    r.member_id = s(&joined.member_id);
    r.members = joined
        .members
        .into_iter()
        .map(|(id, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = s(&id);
            m.metadata = metadata;
            m
        })
        .collect();
    r
}

pub async fn sync(
    broker: &Broker,
    request: SyncGroupRequest,
    caller: &Caller,
) -> SyncGroupResponse {
    if let Err(error) = may_use(broker, caller, &request.group_id.0) {
        let mut r = SyncGroupResponse::default();
        r.error_code = error;
        return r;
    }
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let outcome = broker.groups.sync(
        &request.group_id.0,
        request.generation_id,
        &request.member_id,
        assignments,
        Instant::now(),
    );
    let (error, assignment) = match outcome {
        Outcome::Now(v) => v,
        Outcome::Later(rx) => rx
            .await
            .unwrap_or((code::REBALANCE_IN_PROGRESS, Default::default())),
    };
    tracing::debug!(
        group = %request.group_id.0.as_str(),
        member = %request.member_id.as_str(),
        generation = request.generation_id,
        error,
        assignment_bytes = assignment.len(),
        "SyncGroup answered"
    );
    let mut r = SyncGroupResponse::default();
    r.error_code = error;
    r.assignment = assignment;
    r.protocol_type = request.protocol_type;
    r.protocol_name = request.protocol_name;
    r
}

pub fn heartbeat(broker: &Broker, request: HeartbeatRequest, caller: &Caller) -> HeartbeatResponse {
    let mut r = HeartbeatResponse::default();
    if let Err(error) = may_use(broker, caller, &request.group_id.0) {
        r.error_code = error;
        return r;
    }
    r.error_code = broker.groups.heartbeat(
        &request.group_id.0,
        request.generation_id,
        &request.member_id,
        Instant::now(),
    );
    tracing::trace!(
        group = %request.group_id.0.as_str(),
        member = %request.member_id.as_str(),
        generation = request.generation_id,
        error = r.error_code,
        "Heartbeat answered"
    );
    r
}

pub fn leave(
    broker: &Broker,
    request: LeaveGroupRequest,
    version: i16,
    caller: &Caller,
) -> LeaveGroupResponse {
    let mut r = LeaveGroupResponse::default();
    if let Err(error) = may_use(broker, caller, &request.group_id.0) {
        r.error_code = error;
        return r;
    }
    if version < 3 {
        let errors = broker.groups.leave(
            &request.group_id.0,
            &[request.member_id.to_string()],
            Instant::now(),
        );
        r.error_code = errors.first().copied().unwrap_or(code::NONE);
        return r;
    }
    let ids: Vec<String> = request
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    let errors = broker
        .groups
        .leave(&request.group_id.0, &ids, Instant::now());
    r.members = request
        .members
        .into_iter()
        .zip(errors)
        .map(|(m, error)| {
            let mut out = MemberResponse::default();
            out.member_id = m.member_id;
            out.group_instance_id = m.group_instance_id;
            out.error_code = error;
            out
        })
        .collect();
    r
}

pub fn list(broker: &Broker, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut r = ListGroupsResponse::default();
    r.groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|f| f.as_str() == state.name())
        })
        .map(|(name, protocol_type, state)| {
            let mut g = ListedGroup::default();
            g.group_id = GroupId(s(&name));
            g.protocol_type = s(&protocol_type);
            g.group_state = s(state.name());
            g.group_type = s("classic");
            g
        })
        .collect();
    r
}

pub fn describe(
    broker: &Broker,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut r = DescribeGroupsResponse::default();
    r.groups = request
        .groups
        .into_iter()
        .map(|id| {
            let mut g = DescribedGroup::default();
            match broker.groups.describe(&id.0) {
                // Kafka describes an unknown group as Dead, without an error.
                None => g.group_state = s("Dead"),
                Some(view) => {
                    g.group_state = s(view.state.name());
                    g.protocol_type = s(&view.protocol_type);
                    g.protocol_data = s(
                        if view.state == State::Stable || view.state == State::CompletingRebalance {
                            &view.protocol
                        } else {
                            ""
                        },
                    );
                    g.members = view
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut out = DescribedGroupMember::default();
                            out.member_id = s(&m.member_id);
                            out.client_id = s(&m.client_id);
                            out.client_host = s(&m.client_host);
                            out.member_metadata = m.metadata;
                            out.member_assignment = m.assignment;
                            out
                        })
                        .collect();
                }
            }
            g.group_id = id;
            // No authorizer: everything a group allows. Given even unasked, as
            // kafka-python's admin client decodes the field anyway.
            if version >= 3 {
                g.authorized_operations = GROUP_OPERATIONS;
            }
            g
        })
        .collect();
    r
}

/// ACL operation bits of a group: READ (3), DELETE (6), DESCRIBE (8).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub async fn offset_commit(
    broker: &Arc<Broker>,
    request: OffsetCommitRequest,
    caller: &Caller,
) -> Result<OffsetCommitResponse, HandleError> {
    let group = request.group_id.0.to_string();
    // Authorization first: a refused caller learns nothing of the group's members.
    let allowed = match may_use(broker, caller, &group) {
        Err(error) => error,
        Ok(()) => match broker.data_room(0) {
            Err(full) => {
                broker.refuse(caller, KafkaRefusal::DataBudget, &full.to_string());
                code::POLICY_VIOLATION
            }
            Ok(()) => broker.groups.may_commit(
                &group,
                request.generation_id_or_member_epoch,
                &request.member_id,
                Instant::now(),
            ),
        },
    };
    let b = Arc::clone(broker);
    let caller = caller.clone();
    let topics = blocking(move || {
        let offsets = b.store.consumer_offsets()?;
        request
            .topics
            .into_iter()
            .map(|wanted| {
                let readable = allowed != code::NONE
                    || b.authorize(&caller, Operation::Consume, Resource::Topic(&wanted.name.0))
                        .is_ok();
                let topic = if readable {
                    b.topic(&wanted.name.0, None)?
                } else {
                    None
                };
                let mut t = OffsetCommitResponseTopic::default();
                t.name = wanted.name.clone();
                for p in wanted.partitions {
                    let mut out = OffsetCommitResponsePartition::default();
                    out.partition_index = p.partition_index;
                    let named = partition(topic.as_ref(), p.partition_index);
                    out.error_code = match (allowed, named, u64::try_from(p.committed_offset)) {
                        (code::NONE, Some((topic, partition)), Ok(offset)) => {
                            offsets.commit(&group, topic.name(), partition, offset)?;
                            code::NONE
                        }
                        (code::NONE, None, _) if !readable => code::TOPIC_AUTHORIZATION_FAILED,
                        (code::NONE, None, _) => code::UNKNOWN_TOPIC_OR_PARTITION,
                        (code::NONE, Some(_), Err(_)) => code::OFFSET_OUT_OF_RANGE,
                        (error, _, _) => error,
                    };
                    t.partitions.push(out);
                }
                Ok(t)
            })
            .collect::<Result<Vec<_>, HandleError>>()
    })
    .await?;
    let mut r = OffsetCommitResponse::default();
    r.topics = topics;
    Ok(r)
}

pub async fn offset_fetch(
    broker: &Arc<Broker>,
    request: OffsetFetchRequest,
    _version: i16,
) -> Result<OffsetFetchResponse, HandleError> {
    let group = request.group_id.0.to_string();
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let b = Arc::clone(broker);
    let topics = blocking(move || -> Result<_, HandleError> {
        let offsets = b.store.consumer_offsets()?;
        let answer = |index: i32, offset: Option<u64>, error: i16| {
            let mut p = OffsetFetchResponsePartition::default();
            p.partition_index = index;
            p.committed_offset = offset.map_or(-1, |o| o as i64);
            p.committed_leader_epoch = -1;
            p.metadata = Some(s(""));
            p.error_code = error;
            p
        };
        let mut out = Vec::new();
        match wanted {
            // Null topics (v2+): every offset the group committed.
            None => {
                let mut by_topic: std::collections::BTreeMap<String, Vec<_>> = Default::default();
                for (topic, p, offset) in offsets.group_offsets(&group)? {
                    by_topic.entry(topic).or_default().push(answer(
                        p as i32,
                        Some(offset),
                        code::NONE,
                    ));
                }
                for (name, partitions) in by_topic {
                    let mut t = OffsetFetchResponseTopic::default();
                    t.name = TopicName(s(&name));
                    t.partitions = partitions;
                    out.push(t);
                }
            }
            Some(topics) => {
                for (name, indexes) in topics {
                    let mut t = OffsetFetchResponseTopic::default();
                    t.name = TopicName(s(&name));
                    let topic = b.topic(&name, None)?;
                    for index in indexes {
                        let committed = match partition(topic.as_ref(), index) {
                            Some((topic, p)) => offsets.committed(&group, topic.name(), p)?,
                            // Kafka answers -1 (nothing committed) for unknown partitions.
                            None => None,
                        };
                        t.partitions.push(answer(index, committed, code::NONE));
                    }
                    out.push(t);
                }
            }
        }
        Ok(out)
    })
    .await?;
    let mut r = OffsetFetchResponse::default();
    r.topics = topics;
    Ok(r)
}
