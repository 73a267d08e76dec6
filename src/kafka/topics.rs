//! Metadata, CreateTopics and DeleteTopics: topics of the embedded log as Kafka sees them
//! (one broker, leader of every partition, replication factor 1).

use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::acl::{Operation, Resource};
use super::broker::{
    blocking, code, each_topic, Broker, Caller, CreateRefused, HandleError, NODE_ID,
};

/// Why `name` cannot be a topic (Kafka's rules: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or
/// `..`), or `None` if it can.
pub fn invalid_name(name: &str) -> Option<String> {
    if name.is_empty() || name == "." || name == ".." {
        return Some(format!("{name:?} is not a valid topic name"));
    }
    if name.len() > 249 {
        return Some(format!(
            "topic names are at most 249 characters, {} given",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "topic name {name:?} has {c:?}; only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    None
}

/// A stable topic id derived from the name (clients of Metadata v10+ read one).
pub fn topic_id(name: &str) -> Uuid {
    use md5::{Digest, Md5};
    let digest: [u8; 16] = Md5::digest(name.as_bytes()).into();
    uuid::Builder::from_md5_bytes(digest).into_uuid()
}

/// ACL operation bits (Kafka's `AclOperation` numbers) of a topic, as Metadata v8+
/// reports them for the caller: READ (3) with consume, WRITE (4) with produce, CREATE (5),
/// DELETE (6), ALTER (7) and ALTER_CONFIGS (11) with admin; DESCRIBE (8) and
/// DESCRIBE_CONFIGS (10) always.
fn topic_operations(broker: &Broker, caller: &Caller, topic: &str) -> i32 {
    let may = |op| {
        broker
            .config
            .authorizer
            .check(&caller.principal, op, Resource::Topic(topic))
            .is_ok()
    };
    let mut bits = (1 << 8) | (1 << 10);
    if may(Operation::Consume) {
        bits |= 1 << 3;
    }
    if may(Operation::Produce) {
        bits |= 1 << 4;
    }
    if may(Operation::Admin) {
        bits |= (1 << 5) | (1 << 6) | (1 << 7) | (1 << 11);
    }
    bits
}

/// ACL operation bits of the cluster: CREATE (5), ALTER (7), DESCRIBE (8),
/// CLUSTER_ACTION (9), DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11), IDEMPOTENT_WRITE (12).
const CLUSTER_OPERATIONS: i32 = 0b1_1111_1010_0000;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub async fn metadata(
    broker: &Arc<Broker>,
    request: MetadataRequest,
    version: i16,
    caller: &Caller,
) -> Result<MetadataResponse, HandleError> {
    let b = Arc::clone(broker);
    // v0: an empty list means every topic; v1+: a null list does.
    let wanted: Option<Vec<String>> = match request.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(
            list.into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        ),
    };
    // Before v4 a request could not say; the broker's setting decides.
    let allow_create = request.allow_auto_topic_creation || version < 4;
    let caller = caller.clone();
    let topics = blocking(move || {
        let names = match wanted {
            Some(names) => names,
            None => b.store.topic_names()?,
        };
        names
            .into_iter()
            .map(|name| {
                let mut t = MetadataResponseTopic::default();
                t.name = Some(TopicName(str_bytes(&name)));
                t.topic_id = topic_id(&name);
                if version >= 8 {
                    // Given even unasked: kafka-python's admin client decodes the field
                    // anyway.
                    t.topic_authorized_operations = topic_operations(&b, &caller, &name);
                }
                if let Some(reason) = invalid_name(&name) {
                    tracing::debug!(reason, "metadata for an invalid topic name");
                    t.error_code = code::INVALID_TOPIC_EXCEPTION;
                    return Ok(t);
                }
                // A topic the store refuses to open (a partition count past its bound,
                // from an older data directory) is reported, not fatal to the answer.
                let found = match b.topic(&name, allow_create.then_some(&caller)) {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(topic = name, error = %e, "topic cannot be opened");
                        t.error_code = code::UNKNOWN_SERVER_ERROR;
                        return Ok(t);
                    }
                };
                match found {
                    Some(topic) => {
                        t.partitions = (0..topic.partitions())
                            .map(|p| {
                                let mut m = MetadataResponsePartition::default();
                                m.partition_index = p as i32;
                                m.leader_id = BrokerId(NODE_ID);
                                m.leader_epoch = 0;
                                m.replica_nodes = vec![BrokerId(NODE_ID)];
                                m.isr_nodes = vec![BrokerId(NODE_ID)];
                                m
                            })
                            .collect();
                    }
                    None => t.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                }
                Ok(t)
            })
            .collect::<Result<Vec<_>, HandleError>>()
    })
    .await?;
    let mut r = MetadataResponse::default();
    let mut me = MetadataResponseBroker::default();
    me.node_id = BrokerId(NODE_ID);
    me.host = str_bytes(&broker.config.advertised_host);
    me.port = i32::from(broker.config.advertised_port);
    r.brokers = vec![me];
    r.cluster_id = Some(str_bytes(&broker.config.cluster_id));
    r.controller_id = BrokerId(NODE_ID);
    r.topics = topics;
    if (8..=10).contains(&version) {
        r.cluster_authorized_operations = CLUSTER_OPERATIONS;
    }
    Ok(r)
}

pub async fn create(
    broker: &Arc<Broker>,
    request: CreateTopicsRequest,
    caller: &Caller,
) -> Result<CreateTopicsResponse, HandleError> {
    let validate_only = request.validate_only;
    let topics = each_topic(broker, caller, request.topics, move |b, caller, wanted| {
        let name = wanted.name.0.to_string();
        let mut t = CreatableTopicResult::default();
        t.name = wanted.name.clone();
        t.topic_id = topic_id(&name);
        let fail = |mut t: CreatableTopicResult, code: i16, message: String| {
            t.error_code = code;
            t.error_message = Some(StrBytes::from_string(message));
            Ok(t)
        };
        if let Err(denied) = b.authorize(caller, Operation::Admin, Resource::Topic(&name)) {
            return fail(t, code::TOPIC_AUTHORIZATION_FAILED, denied.to_string());
        }
        let partitions = match wanted.num_partitions {
            -1 => b.config.default_partitions,
            n => u32::try_from(n).unwrap_or(0),
        };
        if !matches!(wanted.replication_factor, -1 | 1) || !wanted.assignments.is_empty() {
            return fail(
                t,
                code::INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {}: this broker keeps one copy (use 1 or -1)",
                    wanted.replication_factor
                ),
            );
        }
        if let Err(refused) = b.create_topic(&name, partitions, validate_only) {
            if let Some(refusal) = refused.refusal() {
                b.refuse(
                    caller,
                    refusal,
                    &format!("CreateTopics {name:?}: {refused}"),
                );
            }
            if let CreateRefused::Store(e) = &refused {
                tracing::error!(topic = name, error = %e, "creating a topic failed");
            }
            return fail(t, refused.code(), refused.to_string());
        }
        t.num_partitions = partitions as i32;
        t.replication_factor = 1;
        if !validate_only {
            tracing::info!(
                topic = name,
                partitions,
                principal = %caller.principal,
                "topic created by a CreateTopics request"
            );
        }
        Ok(t)
    })
    .await?;
    let mut r = CreateTopicsResponse::default();
    r.topics = topics;
    Ok(r)
}

pub async fn delete(
    broker: &Arc<Broker>,
    request: DeleteTopicsRequest,
    version: i16,
    caller: &Caller,
) -> Result<DeleteTopicsResponse, HandleError> {
    let names: Vec<String> = if version >= 6 {
        request
            .topics
            .into_iter()
            .filter_map(|t| t.name.map(|n| n.0.to_string()))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| n.0.to_string())
            .collect()
    };
    let responses = each_topic(broker, caller, names, |b, caller, name| {
                let mut t = DeletableTopicResult::default();
                t.name = Some(TopicName(str_bytes(&name)));
                t.topic_id = topic_id(&name);
                if let Err(denied) = b.authorize(caller, Operation::Admin, Resource::Topic(&name)) {
                    t.error_code = code::TOPIC_AUTHORIZATION_FAILED;
                    t.error_message = Some(str_bytes(&denied.to_string()));
                    return Ok(t);
                }
                if b.config.authorizer.is_protected_topic(&name) {
                    t.error_code = code::TOPIC_DELETION_DISABLED;
                    t.error_message = Some(str_bytes(&format!(
                        "topic {name:?} is read by this node's pipeline and cannot be deleted while it runs"
                    )));
                    return Ok(t);
                }
                if invalid_name(&name).is_some()
                    || !b.store.delete_topic(&name)?
                {
                    t.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                } else {
                    tracing::info!(topic = name, principal = %caller.principal, "topic deleted by a DeleteTopics request");
                }
                Ok(t)
    })
    .await?;
    let mut r = DeleteTopicsResponse::default();
    r.responses = responses;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(invalid_name("local-processed").is_none());
        assert!(invalid_name("a.b_c-D9").is_none());
        for bad in ["", ".", "..", "a b", "a/b", "é"] {
            assert!(invalid_name(bad).is_some(), "{bad:?}");
        }
        assert!(invalid_name(&"x".repeat(250)).is_some());
        assert_ne!(topic_id("a"), topic_id("b"));
        assert_eq!(topic_id("a"), topic_id("a"));
    }
}
