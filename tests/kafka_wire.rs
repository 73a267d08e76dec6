//! The embedded Kafka broker, byte for byte and under bad input: oversized, malformed,
//! unknown and stalled requests get an error or a closed connection and a counter, never
//! a panic or a stuck listener; idempotent retries, acks=0 and mid-batch fetches.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use panoptes::kafka::acl::Authorizer;
use panoptes::kafka::client::Connection;
use panoptes::kafka::{Broker, BrokerConfig, KafkaServer, Limits};
use panoptes::telemetry::Telemetry;
use panoptes_storage::Store;

fn config() -> BrokerConfig {
    BrokerConfig {
        auto_create_topics: true,
        default_partitions: 2,
        cluster_id: "test".into(),
        limits: Limits {
            max_frame_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(30),
            frame_timeout: Duration::from_millis(500),
            max_connections: 400,
            max_connections_per_ip: 400,
            ..Limits::default()
        },
        authorizer: Authorizer::open(
            vec!["local-processed".into(), "local-resources".into()],
            vec!["resource_manager_group".into()],
        ),
        ..BrokerConfig::default()
    }
}

struct Fixture {
    server: KafkaServer,
    telemetry: Arc<Telemetry>,
    store: Store,
}

fn start(config: BrokerConfig) -> Fixture {
    let store = Store::memory();
    let telemetry = Arc::new(Telemetry::default());
    let broker = Broker::new(config, store.clone(), Arc::clone(&telemetry));
    let server = KafkaServer::start("127.0.0.1:0".parse().unwrap(), broker).unwrap();
    Fixture {
        server,
        telemetry,
        store,
    }
}

impl Fixture {
    async fn connect(&self) -> Connection {
        Connection::connect(
            &self.server.local_addr.to_string(),
            "wire-test",
            Duration::from_secs(5),
        )
        .await
        .unwrap()
    }

    fn bad(&self, reason: &str) -> f64 {
        self.telemetry
            .get("panoptes_kafka_bad_frames_total", &[("reason", reason)])
    }

    fn refused(&self, reason: &str) -> f64 {
        self.telemetry
            .get("panoptes_kafka_refused_total", &[("reason", reason)])
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn metadata(topic: &str) -> MetadataRequest {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(s(topic)));
    let mut r = MetadataRequest::default();
    r.topics = Some(vec![t]);
    r.allow_auto_topic_creation = true;
    r
}

fn batch(
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
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

fn produce(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(s(topic));
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 5000;
    r.topic_data = vec![t];
    r
}

fn fetch(topic: &str, partition: i32, offset: i64) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(s(topic));
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.max_wait_ms = 100;
    r.min_bytes = 1;
    r.max_bytes = 1 << 20;
    r.replica_id = BrokerId(-1);
    r.topics = vec![t];
    r
}

fn values(records: Option<Bytes>) -> Vec<(i64, String)> {
    let mut bytes = records.unwrap_or_default();
    let mut out = Vec::new();
    for set in kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for r in set.records {
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

/// A request frame with header and body, encoded at `version`.
fn frame<R: kafka_protocol::protocol::Request>(
    request: &R,
    version: i16,
    correlation: i32,
) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some(s("raw"));
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

#[tokio::test]
async fn produce_then_fetch_from_the_middle_of_a_batch() {
    let f = start(config());
    let mut c = f.connect().await;
    let md = c.call(metadata("mid"), 12).await.unwrap();
    assert_eq!(
        md.topics[0].partitions.len(),
        2,
        "auto-created with the default partitions"
    );
    let recs: Vec<(String, String)> = (0..10)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = recs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = c
        .call(
            produce("mid", 1, batch(&refs, -1, 0, Compression::Lz4), -1),
            9,
        )
        .await
        .unwrap();
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let got = c.call(fetch("mid", 1, 5), 12).await.unwrap();
    let part = &got.responses[0].partitions[0];
    assert_eq!(part.high_watermark, 10);
    let read = values(part.records.clone());
    assert_eq!(read.first(), Some(&(5, "v5".to_string())), "{read:?}");
    assert_eq!(read.len(), 5);
    // Past the end: OFFSET_OUT_OF_RANGE, and the consumer can reset with ListOffsets.
    let got = c.call(fetch("mid", 1, 11), 12).await.unwrap();
    assert_eq!(got.responses[0].partitions[0].error_code, 1);
}

#[tokio::test]
async fn an_idempotent_retry_is_stored_once_and_acks_0_gets_no_answer() {
    let f = start(config());
    let mut c = f.connect().await;
    let pid = c
        .call(
            InitProducerIdRequest::default().with_transaction_timeout_ms(1000),
            4,
        )
        .await
        .unwrap();
    assert_eq!(pid.error_code, 0);
    let id = pid.producer_id.0;
    let b = batch(&[("k", "once")], id, 0, Compression::None);
    for _ in 0..2 {
        let a = c.call(produce("idem", 0, b.clone(), -1), 9).await.unwrap();
        assert_eq!(
            a.responses[0].partition_responses[0].base_offset, 0,
            "the retry gets the first offset"
        );
    }
    let next = batch(&[("k", "twice")], id, 1, Compression::None);
    let a = c.call(produce("idem", 0, next, -1), 9).await.unwrap();
    assert_eq!(a.responses[0].partition_responses[0].base_offset, 1);
    // acks=0: no answer; the next request's answer is its own.
    let silent = frame(
        &produce(
            "idem",
            0,
            batch(&[("k", "quiet")], -1, 0, Compression::None),
            0,
        ),
        9,
        77,
    );
    let md = frame(&metadata("idem"), 12, 78);
    let both = [silent, md].concat();
    let answer = c
        .raw(&both)
        .await
        .unwrap()
        .expect("an answer to the metadata request");
    assert_eq!(i32::from_be_bytes(answer[..4].try_into().unwrap()), 78);
    let topic = f.store.existing_topic("idem").unwrap().unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 3, "once + twice + quiet");
}

#[tokio::test]
async fn corrupt_batches_are_refused_and_store_nothing() {
    let f = start(config());
    let mut c = f.connect().await;
    let mut bytes = batch(&[("k", "v")], -1, 0, Compression::Gzip).to_vec();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    let a = c
        .call(produce("corrupt", 0, Bytes::from(bytes), -1), 9)
        .await
        .unwrap();
    let p = &a.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 2, "CORRUPT_MESSAGE");
    let message = p
        .error_message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(message.contains("Cyclic redundancy check"), "{message}");
    let a = c
        .call(
            produce(
                "corrupt",
                7,
                batch(&[("k", "v")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    assert_eq!(
        a.responses[0].partition_responses[0].error_code, 3,
        "no partition 7"
    );
    let topic = f.store.existing_topic("corrupt").unwrap().unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 0);
    assert_eq!(f.bad("corrupt_batch"), 1.0);
}

#[tokio::test]
async fn bad_frames_close_or_answer_and_the_listener_keeps_serving() {
    let f = start(config());
    // Oversized: closed, counted.
    let mut c = f.connect().await;
    let mut huge = BytesMut::new();
    huge.put_i32(2 << 20);
    huge.put_slice(&[0; 64]);
    assert!(matches!(c.raw(&huge).await, Ok(None) | Err(_)));
    assert_eq!(f.bad("oversized"), 1.0);
    // Unknown API key: an UNSUPPORTED_VERSION answer, and the connection stays usable.
    let mut c = f.connect().await;
    let mut unknown = BytesMut::new();
    unknown.put_i32(12);
    unknown.put_i16(999);
    unknown.put_i16(0);
    unknown.put_i32(41);
    unknown.put_i16(-1);
    unknown.put_i16(0);
    let answer = c.raw(&unknown).await.unwrap().unwrap();
    assert_eq!(&answer[..], &[0, 0, 0, 41, 0, 35]);
    // A version we do not serve: UNSUPPORTED_VERSION too.
    let answer = c
        .raw(&frame(&metadata("x"), 13, 42))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i32::from_be_bytes(answer[..4].try_into().unwrap()), 42);
    assert!(c.call(metadata("still-ok"), 12).await.is_ok());
    // A served API with a body that does not decode: closed, counted.
    let mut garbage = frame(&metadata("x"), 9, 43);
    garbage.truncate(20);
    garbage[..4].copy_from_slice(&16i32.to_be_bytes());
    assert!(matches!(c.raw(&garbage).await, Ok(None) | Err(_)));
    assert_eq!(f.bad("malformed"), 1.0);
    assert_eq!(f.bad("unknown_api"), 1.0);
    assert_eq!(f.bad("unsupported_version"), 1.0, "Metadata v13");
    // A newer ApiVersions than served is negotiation, not a bad request: answered, uncounted.
    let mut c = f.connect().await;
    let answer = c
        .raw(&frame(&ApiVersionsRequest::default(), 4, 44))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer[..6], &[0, 0, 0, 44, 0, 35]);
    assert_eq!(f.bad("unsupported_version"), 1.0);
}

#[tokio::test]
async fn a_stalled_client_does_not_hold_up_three_hundred_others() {
    let f = start(config());
    let addr = f.server.local_addr;
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &[0, 0, 1])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut c =
                Connection::connect(&addr, &format!("c{i}"), Duration::from_secs(20)).await?;
            c.call(metadata("many"), 12).await.map(|m| m.topics.len())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 1);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut buf = [0u8; 8];
    let n = tokio::io::AsyncReadExt::read(&mut stalled, &mut buf)
        .await
        .unwrap_or(0);
    assert_eq!(n, 0, "the stalled connection was closed");
    assert_eq!(f.bad("timeout"), 1.0);
}

#[tokio::test]
async fn topics_are_created_listed_and_deleted_with_kafkas_errors() {
    let mut cfg = config();
    cfg.auto_create_topics = false;
    let f = start(cfg);
    let mut c = f.connect().await;
    let md = c.call(metadata("nope"), 12).await.unwrap();
    assert_eq!(
        md.topics[0].error_code, 3,
        "no auto-creation when it is off"
    );
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(s("made"));
    t.num_partitions = 3;
    t.replication_factor = 1;
    let mut bad = t.clone();
    bad.name = TopicName(s("bad name"));
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t.clone(), bad];
    r.timeout_ms = 1000;
    let answer = c.call(r.clone(), 7).await.unwrap();
    assert_eq!(answer.topics[0].error_code, 0);
    assert_eq!(answer.topics[1].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    r.topics = vec![t];
    assert_eq!(
        c.call(r, 7).await.unwrap().topics[0].error_code,
        36,
        "already exists"
    );
    let md = c.call(metadata("made"), 1).await.unwrap();
    assert_eq!(md.topics[0].partitions.len(), 3, "Metadata v1 too");
    f.store.topic("local-processed", 1).unwrap();
    let mut d = DeleteTopicsRequest::default();
    d.topic_names = vec![
        TopicName(s("made")),
        TopicName(s("local-processed")),
        TopicName(s("never")),
    ];
    let answer = c.call(d, 5).await.unwrap();
    let codes: Vec<i16> = answer.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![0, 29, 3],
        "TOPIC_AUTHORIZATION_FAILED for the pipeline's topic"
    );
    assert_eq!(
        answer.responses[1]
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .as_deref(),
        Some(
            "User:ANONYMOUS may not admin on topic \"local-processed\": it belongs to this \
             node's pipeline, and only a user named in a [[kafka.acl]] entry allowing admin on \
             it may"
        )
    );
    assert!(f.store.existing_topic("made").unwrap().is_none());
    assert!(f.store.existing_topic("local-processed").unwrap().is_some());
    assert_eq!(f.refused("topic_authorization"), 1.0);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn broker() -> Arc<Broker> {
        Arc::new(Broker::new(
            config(),
            Store::memory(),
            Arc::new(Telemetry::default()),
        ))
    }

    /// Valid requests of several APIs, to mutate.
    fn seeds() -> Vec<Vec<u8>> {
        let mut join = JoinGroupRequest::default();
        join.group_id = GroupId(s("g"));
        join.session_timeout_ms = 10_000;
        join.protocol_type = s("consumer");
        let mut p = join_group_request::JoinGroupRequestProtocol::default();
        p.name = s("range");
        p.metadata = Bytes::from_static(b"\x00\x01");
        join.protocols = vec![p];
        vec![
            frame(&metadata("fz"), 12, 1),
            frame(&metadata("fz"), 0, 1),
            frame(
                &produce("fz", 0, batch(&[("k", "v")], -1, 0, Compression::Zstd), 1),
                9,
                2,
            ),
            frame(
                &produce("fz", 0, batch(&[("k", "v")], -1, 0, Compression::Snappy), 1),
                3,
                2,
            ),
            frame(&fetch("fz", 0, 0), 12, 3),
            frame(&fetch("fz", 0, 0), 4, 3),
            frame(&join, 7, 4),
            frame(&ApiVersionsRequest::default(), 3, 5),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any bytes after a valid size: an answer or an error, never a panic.
        #[test]
        fn arbitrary_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 8..300)) {
            let b = broker();
            let _ = runtime().block_on(panoptes::kafka::respond(&b, Bytes::from(body)));
        }

        /// Valid requests with bytes changed or cut: never a panic.
        #[test]
        fn damaged_requests_never_panic(seed in 0usize..8, at in any::<usize>(), to in any::<u8>(), cut in any::<bool>()) {
            let mut bytes = seeds()[seed].clone();
            bytes.drain(..4);
            let i = at % bytes.len();
            if cut {
                bytes.truncate(i.max(8));
            } else {
                bytes[i] = to;
            }
            let b = broker();
            let rt = runtime();
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), panoptes::kafka::respond(&b, Bytes::from(bytes))).await
            });
        }
    }
}
