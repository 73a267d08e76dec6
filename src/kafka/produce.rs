//! Produce and InitProducerId. Records are acknowledged only once `Topic::append` returns
//! (they are in the partition's segment file, and with `storage.durability = "fsync"`
//! covered by an `fdatasync`), for acks=1 and acks=-1 alike. An append the store refuses
//! (disk full, I/O error, the store failed) is answered KAFKA_STORAGE_ERROR with the
//! store's message for that partition, and nothing of it is kept: the client retries.
//!
//! Idempotent producers: a batch whose producer id, epoch and first sequence equal one of
//! the last five batches of that producer on that partition is a retry; it is answered
//! with the first offset it got, and not stored again. Other sequence gaps are accepted
//! (the state is kept in memory, so after a restart nothing would match anyway).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use panoptes_storage::{Keyspace, Store};

use super::batch::decode_batches;
use super::broker::{blocking, code, partition, Broker};

/// Batches remembered per producer and partition (Kafka keeps five).
const REMEMBERED: usize = 5;

type DedupKey = (i64, String, u32);
/// `(producer epoch, first sequence, first offset)` of a remembered batch.
type Remembered = VecDeque<(i16, i32, u64)>;

/// Producer ids handed out, and the recent batches of each idempotent producer.
pub struct ProducerState {
    next_id: AtomicI64,
    ids: Option<Keyspace>,
    recent: Mutex<HashMap<DedupKey, Remembered>>,
}

const NEXT_ID_KEY: &[u8] = b"next_producer_id";

impl ProducerState {
    /// Ids continue from the last one stored, so a restart never hands one out twice.
    pub fn new(store: &Store) -> ProducerState {
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
        }
    }

    fn allocate(&self) -> Result<i64, String> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        if let Some(k) = &self.ids {
            k.put(NEXT_ID_KEY, &(id + 1).to_be_bytes(), None)
                .map_err(|e| format!("storing the next producer id: {e}"))?;
        }
        Ok(id)
    }

    fn duplicate(&self, key: &DedupKey, epoch: i16, sequence: i32) -> Option<u64> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(key)?
            .iter()
            .find(|(e, s, _)| *e == epoch && *s == sequence)
            .map(|(_, _, offset)| *offset)
    }

    fn remember(&self, key: DedupKey, epoch: i16, sequence: i32, offset: u64) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let q = recent.entry(key).or_default();
        if q.len() == REMEMBERED {
            q.pop_front();
        }
        q.push_back((epoch, sequence, offset));
    }
}

pub async fn init_producer_id(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, String> {
    let mut r = InitProducerIdResponse::default();
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.0.is_empty())
    {
        // Transactions are not served: a transactional producer gets a clear refusal.
        r.error_code = code::INVALID_REQUEST;
        r.producer_id = ProducerId(-1);
        r.producer_epoch = -1;
        return Ok(r);
    }
    let b = Arc::clone(broker);
    let id = blocking(move || b.producers.allocate()).await?;
    r.producer_id = ProducerId(id);
    r.producer_epoch = 0;
    Ok(r)
}

/// `None` when the producer asked for no answer (acks=0).
pub async fn produce(
    broker: &Arc<Broker>,
    request: ProduceRequest,
) -> Result<Option<ProduceResponse>, String> {
    let acks = request.acks;
    let b = Arc::clone(broker);
    let responses = blocking(move || {
        let now_ms = crate::model::now_ms();
        let mut appended: Vec<(&'static str, u64)> = Vec::new();
        let mut out = Vec::new();
        for topic_data in request.topic_data {
            let name = topic_data.name.0.to_string();
            let topic = b.topic(&name, true)?;
            let mut t = TopicProduceResponse::default();
            t.name = topic_data.name.clone();
            for part in topic_data.partition_data {
                let mut p = PartitionProduceResponse::default();
                p.index = part.index;
                p.log_append_time_ms = -1;
                let Some((topic, partition)) = partition(topic.as_ref(), part.index) else {
                    p.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                    t.partition_responses.push(p);
                    continue;
                };
                let batches = match decode_batches(
                    part.records.unwrap_or_default(),
                    b.config.max_frame_bytes,
                    now_ms,
                ) {
                    Ok(batches) => batches,
                    Err(e) => {
                        tracing::warn!(topic = name, partition, error = %e, "refused a corrupt record batch");
                        b.telemetry.inc("panoptes_kafka_bad_frames_total", &[("reason", "corrupt_batch")]);
                        p.error_code = code::CORRUPT_MESSAGE;
                        p.error_message = Some(StrBytes::from_string(e.to_string()));
                        t.partition_responses.push(p);
                        continue;
                    }
                };
                let mut base: Option<u64> = None;
                let mut refused = None;
                for batch in batches {
                    let dedup_key = (batch.producer_id, name.clone(), partition);
                    if batch.producer_id >= 0 {
                        if let Some(offset) =
                            b.producers.duplicate(&dedup_key, batch.producer_epoch, batch.base_sequence)
                        {
                            base.get_or_insert(offset);
                            continue;
                        }
                    }
                    let n = batch.records.len() as u64;
                    let offset = match topic.append(partition, &batch.records) {
                        Ok(offset) => offset,
                        Err(e) => {
                            refused = Some(e);
                            break;
                        }
                    };
                    appended.push((compression_name(batch.compression), n));
                    if batch.producer_id >= 0 {
                        b.producers.remember(dedup_key, batch.producer_epoch, batch.base_sequence, offset);
                    }
                    base.get_or_insert(offset);
                }
                if let Some(e) = refused {
                    // Kafka's answer for a log that cannot be written: retriable, so a
                    // client retries (and the node recovers by itself once space is back).
                    tracing::warn!(topic = name, partition, error = %e, "refused a produce: the topic log cannot be written");
                    b.telemetry.inc("panoptes_kafka_produce_refused_total", &[("reason", "storage")]);
                    p.error_code = code::KAFKA_STORAGE_ERROR;
                    p.error_message = Some(StrBytes::from_string(e.to_string()));
                    p.base_offset = -1;
                    t.partition_responses.push(p);
                    continue;
                }
                p.base_offset = match base {
                    Some(o) => o as i64,
                    None => topic.high_watermark(partition).map_err(|e| e.to_string())? as i64,
                };
                p.log_start_offset = topic.low_watermark(partition).map_err(|e| e.to_string())? as i64;
                t.partition_responses.push(p);
            }
            out.push(t);
        }
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
        broker.appended.notify_waiters();
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
