//! A few Kafka requests for tests that talk to a running node's embedded broker with
//! the project's own client (`panoptes::kafka::client`): produce one record, fetch a
//! partition's values.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    fetch_request, produce_request, BrokerId, FetchRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use panoptes::kafka::client::Connection;

/// The one record batch builder of the tests and benchmarks: a v2 batch of `(key,
/// value)` records as a client produces it, from `producer_id` (-1: not idempotent) at
/// `sequence`, timestamped 2023-11-14.
pub fn batch(
    records: &[(&str, &str)],
    producer_id: i64,
    sequence: i32,
    compression: Compression,
) -> Bytes {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if producer_id >= 0 {
                sequence + i as i32
            } else {
                -1 + i as i32
            },
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(k.to_string())),
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    encode(&recs, compression)
}

/// A batch of one record without a key.
fn keyless(value: &str) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from(value.to_owned())),
        headers: Default::default(),
    };
    encode(&[record], Compression::None)
}

fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

/// A request frame as a client sends it: size, header (client id `raw`) and body, encoded
/// at `version`.
pub fn frame<R: kafka_protocol::protocol::Request>(
    request: &R,
    version: i16,
    correlation: i32,
) -> Vec<u8> {
    use bytes::BufMut;
    use kafka_protocol::protocol::Encodable;
    let mut header = kafka_protocol::messages::RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some(StrBytes::from_static_str("raw"));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.put_slice(&body);
    out.to_vec()
}

/// A Produce of `records` to `topic`/`partition` with `acks`.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_owned()));
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 10_000;
    r.topic_data = vec![t];
    r
}

/// The answer to one produce of one record to partition 0: (error code, base offset,
/// error message).
pub type Produced = (i16, i64, Option<String>);

pub async fn connect(port: u16) -> Connection {
    Connection::connect(
        &format!("127.0.0.1:{port}"),
        "test",
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot connect to the node's Kafka listener: {e}"))
}

/// Produces `value` to partition 0 of `topic` with acks=all; `Err` if the connection
/// failed (the node went away).
pub async fn produce(c: &mut Connection, topic: &str, value: &str) -> Result<Produced, String> {
    let r = produce_request(topic, 0, keyless(value), -1);
    let answer = c.call(r, 9).await.map_err(|e| e.to_string())?;
    let p = answer
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or("an answer without the partition")?;
    Ok((
        p.error_code,
        p.base_offset,
        p.error_message.as_ref().map(|m| m.to_string()),
    ))
}

/// (offset, value) of the records of partition 0 of `topic` from offset 0 (up to 1 MiB).
pub async fn fetch(c: &mut Connection, topic: &str) -> Vec<(i64, String)> {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_owned()));
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.max_wait_ms = 100;
    r.min_bytes = 1;
    r.max_bytes = 1 << 20;
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    let answer = c.call(r, 11).await.unwrap();
    let mut bytes = answer.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for r in set.records {
            let value = r.value.map(|v| String::from_utf8_lossy(&v).into_owned());
            out.push((r.offset, value.unwrap_or_default()));
        }
    }
    out
}
