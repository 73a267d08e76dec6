//! Produce and InitProducerId. Records are acknowledged only once `Topic::append` returns
//! (they are in the partition's segment file, and with `storage.durability = "fsync"`
//! covered by an `fdatasync`), for acks=1 and acks=-1 alike. An append the store refuses
//! (disk full, I/O error, the store failed) is answered KAFKA_STORAGE_ERROR with the
//! store's message for that partition, and nothing of it is kept: the client retries.
//!
//! A request is served in two passes: every partition's batches are first authorized
//! and decoded (all of them sharing the request's inflation limit and the listener's
//! memory budget), and only then appended. A request refused as a whole (its records
//! inflate past `kafka.max_inflated_bytes`, or the memory budget stayed full) stores
//! nothing.
//!
//! Idempotent producers: a batch whose producer id, epoch and first sequence equal one of
//! the last five batches of that producer on that partition is a retry; it is answered
//! with the first offset it got, and not stored again. Other sequence gaps are accepted
//! (the state is kept in memory, so after a restart nothing would match anyway). At most
//! `kafka.max_producer_states` producer-partition states are kept; past that the oldest
//! is forgotten (a retry of its last batches would then be stored twice).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use panoptes_storage::{Keyspace, Store, Topic};

use super::acl::{Operation, Resource};
use super::batch::{decode_batches, Batch, BatchError, Inflation};
use super::broker::{blocking, code, partition, Broker, Caller, HandleError};
use crate::events::{KafkaBadFrame, KafkaRefusal};

/// Batches remembered per producer and partition (Kafka keeps five).
const REMEMBERED: usize = 5;

type DedupKey = (i64, String, u32);
/// `(producer epoch, first sequence, first offset)` of a remembered batch.
type Remembered = VecDeque<(i16, i32, u64)>;

/// The recent batches of each idempotent producer on each partition, oldest state first.
#[derive(Default)]
struct Recent {
    batches: HashMap<DedupKey, Remembered>,
    order: VecDeque<DedupKey>,
}

/// Producer ids handed out, and the recent batches of each idempotent producer.
pub struct ProducerState {
    next_id: AtomicI64,
    ids: Option<Keyspace>,
    recent: Mutex<Recent>,
    max_states: usize,
}

const NEXT_ID_KEY: &[u8] = b"next_producer_id";

impl ProducerState {
    /// Ids continue from the last one stored, so a restart never hands one out twice.
    /// At most `max_states` producer-partition states are remembered.
    pub fn new(store: &Store, max_states: usize) -> ProducerState {
        let ids = store.keyspace("kafka").ok();
        let stored = ids
            .as_ref()
            .and_then(|k| k.get(NEXT_ID_KEY).ok().flatten())
            .and_then(|raw| <[u8; 8]>::try_from(raw.as_slice()).ok())
            .map(i64::from_be_bytes)
            .unwrap_or(1000);
        ProducerState {
            next_id: AtomicI64::new(stored),
            ids,
            recent: Mutex::default(),
            max_states: max_states.max(1),
        }
    }

    fn allocate(&self) -> Result<i64, HandleError> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        if let Some(k) = &self.ids {
            k.put(NEXT_ID_KEY, &(id + 1).to_be_bytes(), None)
                .map_err(HandleError::ProducerId)?;
        }
        Ok(id)
    }

    fn duplicate(&self, key: &DedupKey, epoch: i16, sequence: i32) -> Option<u64> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .batches
            .get(key)?
            .iter()
            .find(|(e, s, _)| *e == epoch && *s == sequence)
            .map(|(_, _, offset)| *offset)
    }

    /// Remembers a batch; returns the state forgotten to make room, if one was.
    fn remember(&self, key: DedupKey, epoch: i16, sequence: i32, offset: u64) -> Option<DedupKey> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let mut forgotten = None;
        if !recent.batches.contains_key(&key) {
            if recent.batches.len() >= self.max_states {
                if let Some(oldest) = recent.order.pop_front() {
                    recent.batches.remove(&oldest);
                    forgotten = Some(oldest);
                }
            }
            recent.order.push_back(key.clone());
        }
        let q = recent.batches.entry(key).or_default();
        if q.len() == REMEMBERED {
            q.pop_front();
        }
        q.push_back((epoch, sequence, offset));
        forgotten
    }
}

pub async fn init_producer_id(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
    caller: &Caller,
) -> Result<InitProducerIdResponse, HandleError> {
    let mut r = InitProducerIdResponse::default();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.0.is_empty())
    {
        // Transactions are not served: a transactional producer gets a clear refusal.
        r.error_code = code::INVALID_REQUEST;
        return Ok(r);
    }
    if !broker
        .config
        .authorizer
        .may_produce_somewhere(&caller.principal)
    {
        broker.refuse(
            caller,
            KafkaRefusal::ClusterAuthorization,
            &format!(
                "InitProducerId: {} may produce to no topic (kafka.default_operations, [[kafka.acl]])",
                caller.principal
            ),
        );
        r.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
        return Ok(r);
    }
    let b = Arc::clone(broker);
    let id = blocking(move || b.producers.allocate()).await?;
    r.producer_id = ProducerId(id);
    r.producer_epoch = 0;
    Ok(r)
}

/// A request that inflated this much gives the memory back to the OS when answered
/// (below it, the allocator's own reuse is cheaper).
const GIVE_BACK_AFTER_BYTES: usize = 1 << 20;

/// What the second pass does with a partition.
enum Plan {
    /// Answered already (an error).
    Answered,
    Append(Topic, u32, Vec<Batch>),
    /// Not decoded: the request was refused as a whole first.
    Undecoded,
}

/// `None` when the producer asked for no answer (acks=0).
pub async fn produce(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    caller: &Caller,
) -> Result<Option<ProduceResponse>, HandleError> {
    let acks = request.acks;
    let b = Arc::clone(broker);
    let caller = caller.clone();
    let responses = blocking(move || -> Result<_, HandleError> {
        let now_ms = crate::model::now_ms();
        let limits = &b.config.limits;
        let mut inflation = Inflation::new(
            limits.max_inflated_bytes,
            Some((b.budget.clone(), limits.budget_wait)),
        );
        let sent: u64 = request
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .map(|p| p.records.as_ref().map_or(0, |r| r.len() as u64))
            .sum();
        let room = b.data_room(sent);
        if let Err(full) = &room {
            b.refuse(&caller, KafkaRefusal::DataBudget, &full.to_string());
        }
        // First pass: authorize and decode everything.
        let mut refused: Option<(i16, String)> = None;
        let mut plans: Vec<(TopicProduceResponse, Vec<(PartitionProduceResponse, Plan)>)> =
            Vec::new();
        for topic_data in request.topic_data {
            let name = topic_data.name.0.to_string();
            let mut t = TopicProduceResponse::default();
            t.name = topic_data.name.clone();
            let allowed = b.authorize(&caller, Operation::Produce, Resource::Topic(&name));
            let topic = match (&allowed, &room) {
                (Ok(()), Ok(())) => b.topic(&name, Some(&caller))?,
                _ => None,
            };
            let mut parts = Vec::new();
            for part in topic_data.partition_data {
                let mut p = PartitionProduceResponse::default();
                p.index = part.index;
                p.log_append_time_ms = -1;
                let error = |p: &mut PartitionProduceResponse, code: i16, message: &str| {
                    p.error_code = code;
                    p.error_message = Some(StrBytes::from_string(message.to_owned()));
                };
                if let Err(denied) = &allowed {
                    error(&mut p, code::TOPIC_AUTHORIZATION_FAILED, &denied.to_string());
                    parts.push((p, Plan::Answered));
                    continue;
                }
                if let Err(full) = &room {
                    error(&mut p, code::POLICY_VIOLATION, &full.to_string());
                    parts.push((p, Plan::Answered));
                    continue;
                }
                let Some((topic, partition)) = partition(topic.as_ref(), part.index) else {
                    p.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                    parts.push((p, Plan::Answered));
                    continue;
                };
                if refused.is_some() {
                    parts.push((p, Plan::Undecoded));
                    continue;
                }
                match decode_batches(part.records.unwrap_or_default(), &mut inflation, now_ms) {
                    Ok(batches) => parts.push((p, Plan::Append(topic.clone(), partition, batches))),
                    Err(e @ BatchError::Invalid { .. }) => {
                        KafkaBadFrame {
                            reason: "corrupt_batch",
                            peer: caller.peer,
                            error: &format_args!("topic {name:?} partition {partition}: {e}"),
                        }
                        .emit(&b.telemetry);
                        error(&mut p, code::CORRUPT_MESSAGE, &e.to_string());
                        parts.push((p, Plan::Answered));
                    }
                    Err(e) => {
                        let (refusal, code) = match e {
                            BatchError::OverBudget(_) => {
                                (KafkaRefusal::MemoryBudget, code::REQUEST_TIMED_OUT)
                            }
                            _ => (KafkaRefusal::InflateBudget, code::MESSAGE_TOO_LARGE),
                        };
                        let text = format!("Produce refused: {e}");
                        b.refuse(&caller, refusal, &text);
                        refused = Some((code, text));
                        parts.push((p, Plan::Undecoded));
                    }
                }
            }
            plans.push((t, parts));
        }
        inflation.release_unused();
        let inflated_much = inflation.used() >= GIVE_BACK_AFTER_BYTES;
        // Second pass: append, unless the request was refused as a whole.
        let mut appended: Vec<(&'static str, u64)> = Vec::new();
        let mut appended_bytes = 0u64;
        let mut out = Vec::new();
        for (mut t, parts) in plans {
            for (mut p, plan) in parts {
                match (plan, &refused) {
                    (Plan::Answered, _) => {}
                    (_, Some((code, message))) => {
                        p.error_code = *code;
                        p.error_message = Some(StrBytes::from_string(message.clone()));
                    }
                    (Plan::Undecoded, None) => p.error_code = code::UNKNOWN_SERVER_ERROR,
                    (Plan::Append(topic, partition, batches), None) => {
                        let name = topic.name().to_owned();
                        let mut base: Option<u64> = None;
                        let mut storage_error = None;
                        for batch in batches {
                            let dedup_key = (batch.producer_id, name.clone(), partition);
                            if batch.producer_id >= 0 {
                                if let Some(offset) = b.producers.duplicate(
                                    &dedup_key,
                                    batch.producer_epoch,
                                    batch.base_sequence,
                                ) {
                                    base.get_or_insert(offset);
                                    continue;
                                }
                            }
                            let n = batch.records.len() as u64;
                            appended_bytes += batch
                                .records
                                .iter()
                                .map(|r| (r.value.len() + r.key.as_ref().map_or(0, Vec::len)) as u64)
                                .sum::<u64>();
                            let offset = match topic.append(partition, &batch.records) {
                                Ok(offset) => offset,
                                Err(e) => {
                                    storage_error = Some(e);
                                    break;
                                }
                            };
                            appended.push((compression_name(batch.compression), n));
                            if batch.producer_id >= 0 {
                                let forgotten = b.producers.remember(
                                    dedup_key,
                                    batch.producer_epoch,
                                    batch.base_sequence,
                                    offset,
                                );
                                if let Some((id, topic, part)) = forgotten {
                                    b.refuse(
                                        &caller,
                                        KafkaRefusal::ProducerStateEvicted,
                                        &format!("forgot the recent batches of producer {id} on {topic}/{part}: kafka.max_producer_states = {} reached", limits.max_producer_states),
                                    );
                                }
                            }
                            base.get_or_insert(offset);
                        }
                        if let Some(e) = storage_error {
                            // Kafka's answer for a log that cannot be written: retriable, so a
                            // client retries (and the node recovers by itself once space is
                            // back), on the same connection.
                            crate::events::KafkaProduceRefused {
                                topic: &name,
                                partition,
                                error: &e,
                            }
                            .emit(&b.telemetry);
                            p.error_code = code::KAFKA_STORAGE_ERROR;
                            p.error_message = Some(StrBytes::from_string(e.to_string()));
                            p.base_offset = -1;
                            t.partition_responses.push(p);
                            continue;
                        }
                        p.base_offset = match base {
                            Some(o) => o as i64,
                            None => topic.high_watermark(partition)? as i64,
                        };
                        p.log_start_offset = topic.low_watermark(partition)? as i64;
                    }
                }
                t.partition_responses.push(p);
            }
            out.push(t);
        }
        b.note_appended(appended_bytes);
        // The inflated records are freed by now: give their pages back before their
        // share of the memory budget, so the next request's inflation does not come on
        // top of them.
        if inflated_much {
            crate::memory::give_back_freed();
        }
        drop(inflation);
        Ok((out, appended))
    })
    .await;
    let (responses, appended) = responses?;
    if !appended.is_empty() {
        for (compression, n) in appended {
            broker.telemetry.add(
                crate::telemetry::Series::new(
                    "panoptes_kafka_records_produced_total",
                    &[("compression", compression)],
                ),
                n as f64,
            );
        }
    }
    if acks == 0 {
        return Ok(None);
    }
    let mut r = ProduceResponse::default();
    r.responses = responses;
    Ok(Some(r))
}

fn compression_name(c: kafka_protocol::records::Compression) -> &'static str {
    use kafka_protocol::records::Compression;
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}
