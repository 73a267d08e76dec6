//! Fetch and ListOffsets.
//!
//! A fetch waits (up to its `max_wait_ms`) until `min_bytes` are there: woken at once by a
//! produce through this broker, and every few milliseconds for records our own pipeline
//! appends in process. Records go back as one batch per partition starting exactly at the
//! requested offset.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use panoptes_storage::{StorageError, Topic};

use super::acl::{Denied, Operation, Resource};
use super::batch::encode_records;
use super::broker::{blocking, code, each_topic, partition, Broker, Caller, HandleError};

/// Longest a fetch waits, whatever it asks (clients ask 100–500 ms).
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Records per partition per fetch, at most.
const MAX_RECORDS: usize = 10_000;

struct Wanted {
    topic: String,
    /// Why the caller may not read it, if it may not.
    denied: Option<Denied>,
    partitions: Vec<(i32, i64, usize)>,
}

pub async fn fetch(
    broker: &Arc<Broker>,
    request: FetchRequest,
    caller: &Caller,
) -> Result<FetchResponse, HandleError> {
    let wanted: Vec<Wanted> = request
        .topics
        .iter()
        .map(|t| Wanted {
            topic: t.topic.0.to_string(),
            denied: broker
                .authorize(caller, Operation::Consume, Resource::Topic(&t.topic.0))
                .err(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition,
                        p.fetch_offset,
                        usize::try_from(p.partition_max_bytes).unwrap_or(0),
                    )
                })
                .collect(),
        })
        .collect();
    let wanted = Arc::new(wanted);
    // An answer is at most one frame's worth, whatever the client asks (it asks again).
    let max_bytes = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .clamp(1, broker.config.limits.max_frame_bytes);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let topics: Arc<Vec<Option<Topic>>> = {
        let (b, w) = (Arc::clone(broker), Arc::clone(&wanted));
        Arc::new(
            blocking(move || -> Result<_, HandleError> {
                w.iter()
                    .map(|t| match t.denied {
                        Some(_) => Ok(None),
                        None => Ok(b.topic(&t.topic, None)?),
                    })
                    .collect()
            })
            .await?,
        )
    };
    loop {
        let notified = broker.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Cheap look at the watermarks (no I/O) before reading anything.
        let waiting = available(&wanted, &topics) < min_bytes.max(1);
        if !waiting || Instant::now() >= deadline {
            let (w, t) = (Arc::clone(&wanted), Arc::clone(&topics));
            let responses = blocking(move || read_all(&w, &t, max_bytes)).await?;
            let mut r = FetchResponse::default();
            r.responses = responses;
            return Ok(r);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // Woken by the store's append hook (see `Broker::appended`); listening began
        // before the watermarks were read, so no append in between is missed.
        let _ = tokio::time::timeout(left, notified).await;
    }
}

/// Records available to the request (counted as 1 byte each: enough to decide whether
/// `min_bytes`, which clients set to 1, is met), or "plenty" when an error is to report.
fn available(wanted: &[Wanted], topics: &[Option<Topic>]) -> usize {
    let mut n = 0usize;
    for (w, topic) in wanted.iter().zip(topics) {
        let Some(topic) = topic else {
            return usize::MAX;
        };
        for &(p, offset, _) in &w.partitions {
            let Ok(p) = u32::try_from(p) else {
                return usize::MAX;
            };
            let (Ok(high), Ok(low)) = (topic.high_watermark(p), topic.low_watermark(p)) else {
                return usize::MAX;
            };
            let Ok(offset) = u64::try_from(offset) else {
                return usize::MAX;
            };
            if offset > high || offset < low {
                return usize::MAX;
            }
            n = n.saturating_add((high - offset) as usize);
        }
    }
    n
}

fn read_all(
    wanted: &[Wanted],
    topics: &[Option<Topic>],
    max_bytes: usize,
) -> Result<Vec<FetchableTopicResponse>, HandleError> {
    let mut budget = max_bytes;
    let mut first = true;
    let mut out = Vec::new();
    for (w, topic) in wanted.iter().zip(topics) {
        let mut t = FetchableTopicResponse::default();
        t.topic = kafka_protocol::messages::TopicName(
            kafka_protocol::protocol::StrBytes::from_string(w.topic.clone()),
        );
        for &(index, offset, partition_max) in &w.partitions {
            let mut p = PartitionData::default();
            p.partition_index = index;
            p.preferred_read_replica = BrokerId(-1);
            p.records = Some(Default::default());
            if let Some(denied) = &w.denied {
                p.error_code = code::TOPIC_AUTHORIZATION_FAILED;
                p.high_watermark = -1;
                p.last_stable_offset = -1;
                p.log_start_offset = -1;
                tracing::trace!(topic = w.topic, reason = %denied, "fetch refused");
                t.partitions.push(p);
                continue;
            }
            let Some((topic, partition)) = partition(topic.as_ref(), index) else {
                p.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                p.high_watermark = -1;
                p.last_stable_offset = -1;
                p.log_start_offset = -1;
                t.partitions.push(p);
                continue;
            };
            let high = topic.high_watermark(partition)?;
            let low = topic.low_watermark(partition)?;
            p.high_watermark = high as i64;
            p.last_stable_offset = high as i64;
            p.log_start_offset = low as i64;
            match u64::try_from(offset) {
                Ok(o) if o >= low && o <= high => {
                    // The first partition with data gets at least one record, whatever
                    // the limits, so a consumer always progresses (as Kafka does).
                    let limit = partition_max.min(budget);
                    if o < high && (limit > 0 || first) {
                        let records = topic.read(partition, o, MAX_RECORDS, limit.max(1))?;
                        if !records.is_empty() {
                            let bytes = encode_records(&records)?;
                            budget = budget.saturating_sub(bytes.len());
                            first = false;
                            p.records = Some(bytes);
                        }
                    }
                }
                _ => p.error_code = code::OFFSET_OUT_OF_RANGE,
            }
            t.partitions.push(p);
        }
        out.push(t);
    }
    Ok(out)
}

pub async fn list_offsets(
    broker: &Arc<Broker>,
    request: ListOffsetsRequest,
    version: i16,
    caller: &Caller,
) -> Result<ListOffsetsResponse, HandleError> {
    let topics = each_topic(broker, caller, request.topics, move |b, caller, wanted| {
        let allowed = b
            .authorize(caller, Operation::Consume, Resource::Topic(&wanted.name.0))
            .is_ok();
        let topic = if allowed {
            b.topic(&wanted.name.0, None)?
        } else {
            None
        };
        let mut t = ListOffsetsTopicResponse::default();
        t.name = wanted.name.clone();
        for q in wanted.partitions {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = q.partition_index;
            p.timestamp = -1;
            p.offset = -1;
            match partition(topic.as_ref(), q.partition_index) {
                None if !allowed => p.error_code = code::TOPIC_AUTHORIZATION_FAILED,
                None => p.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                Some((topic, partition)) => {
                    let (offset, timestamp) = lookup(topic, partition, q.timestamp)?;
                    p.offset = offset;
                    p.timestamp = timestamp;
                    if version >= 4 {
                        p.leader_epoch = 0;
                    }
                }
            }
            t.partitions.push(p);
        }
        Ok(t)
    })
    .await?;
    let mut r = ListOffsetsResponse::default();
    r.topics = topics;
    Ok(r)
}

/// `(offset, timestamp)` for a ListOffsets query: -1 latest, -2 earliest, -3 the record
/// with the largest timestamp, otherwise the first record at or after that time (-1, -1
/// if none).
fn lookup(topic: &Topic, partition: u32, timestamp: i64) -> Result<(i64, i64), StorageError> {
    let high = topic.high_watermark(partition)?;
    let low = topic.low_watermark(partition)?;
    match timestamp {
        -1 => return Ok((high as i64, -1)),
        -2 => return Ok((low as i64, -1)),
        _ => {}
    }
    let mut best: Option<(u64, u64)> = None;
    let mut from = low;
    while from < high {
        let records = topic.read(partition, from, 1000, usize::MAX)?;
        let Some(last) = records.last() else { break };
        from = last.offset + 1;
        for r in &records {
            let ts = r.record.timestamp_ms;
            if timestamp == -3 {
                if best.is_none_or(|(_, t)| ts > t) {
                    best = Some((r.offset, ts));
                }
            } else if i64::try_from(ts).is_ok_and(|t| t >= timestamp) {
                return Ok((r.offset as i64, ts as i64));
            }
        }
    }
    Ok(best.map_or((-1, -1), |(o, t)| (o as i64, t as i64)))
}
