//! The embedded Kafka broker, byte for byte and under bad input: oversized, malformed,
//! unknown and stalled requests get an error or a closed connection and a counter, never
//! a panic or a stuck listener; idempotent retries, acks=0 and mid-batch fetches; a full
//! disk or a failed fsync answered with KAFKA_STORAGE_ERROR.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use panoptes::kafka::acl::Authorizer;
use panoptes::kafka::client::Connection;
use panoptes::kafka::{Broker, BrokerConfig, KafkaServer, Limits};
use panoptes::telemetry::Telemetry;
use panoptes_storage::{Durability, Store};
use support::kafka::{batch, frame, produce_request as produce};

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
    start_on(Store::memory(), config)
}

fn start_on(store: Store, config: BrokerConfig) -> Fixture {
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

/// A produce the store cannot write (disk full, injected under the topic log) is
/// answered KAFKA_STORAGE_ERROR (56, retriable) with the store's message, on the same
/// connection; nothing of it is kept, and once space is back the retry lands at the
/// offset the refused produce would have had. After a failed fsync (`fsync`
/// durability) the answer is the same error, for good.
#[tokio::test]
async fn a_produce_the_store_cannot_write_is_answered_with_a_storage_error() {
    let (store, faults) =
        panoptes_storage::testing::with_faults(Store::memory(), Durability::PowerLoss).unwrap();
    let f = start_on(store, config());
    let mut c = f.connect().await;
    // Produce v8 and later carry the error message.
    let ok = c
        .call(
            produce(
                "full",
                0,
                batch(&[("k", "v0")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    assert_eq!(ok.responses[0].partition_responses[0].error_code, 0);

    faults.fail_writes(28);
    let refused = c
        .call(
            produce(
                "full",
                0,
                batch(&[("k", "v1")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    let p = &refused.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (56, -1));
    assert_eq!(
        p.error_message.as_ref().map(|m| m.to_string()).as_deref(),
        Some(
            "No space left on device (os error 28) writing topics/full/0/00000000000000000000.log"
        )
    );
    assert_eq!(
        f.telemetry.get(
            "panoptes_kafka_produce_refused_total",
            &[("reason", "storage")]
        ),
        1.0
    );

    faults.heal();
    let retried = c
        .call(
            produce(
                "full",
                0,
                batch(&[("k", "v1")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    let p = &retried.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 1));
    let fetched = c.call(fetch("full", 0, 0), 11).await.unwrap();
    assert_eq!(
        values(fetched.responses[0].partitions[0].records.clone()),
        vec![(0, "v0".to_string()), (1, "v1".to_string())]
    );

    faults.fail_syncs(5);
    for value in ["v2", "v3"] {
        let failed = c
            .call(
                produce(
                    "full",
                    0,
                    batch(&[("k", value)], -1, 0, Compression::None),
                    -1,
                ),
                9,
            )
            .await
            .unwrap();
        let p = &failed.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 56);
        let message = p
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        assert!(
            message.starts_with("storage failed and acknowledges no more writes (restart the process): fdatasync of topics/full/0/00000000000000000000.log failed: Input/output error (os error 5)"),
            "{message}"
        );
        faults.heal();
    }
    assert!(matches!(
        f.store.health(),
        panoptes_storage::Health::Failed { .. }
    ));
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

/// A fetch waiting at the end of a topic is answered by the node's own append (the
/// pipeline writes the store, not the listener): the store's append hook wakes it. It
/// does not look again until then, so without the wake it would wait out its 25 s and
/// this test's 10 s bound would fail.
#[tokio::test]
async fn a_waiting_fetch_is_woken_by_the_nodes_own_append() {
    let f = start(config());
    let topic = f.store.topic("local-processed", 1).unwrap();
    let mut c = Connection::connect(
        &f.server.local_addr.to_string(),
        "wire-test",
        Duration::from_secs(40),
    )
    .await
    .unwrap();
    let appender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let record = panoptes_storage::Record {
            key: Some(b"network:switch:generic".to_vec()),
            value: b"{\"group\":1}".to_vec(),
            timestamp_ms: 1,
            headers: vec![],
        };
        tokio::task::spawn_blocking(move || topic.append(0, &[record]))
            .await
            .unwrap()
            .unwrap()
    });
    let mut request = fetch("local-processed", 0, 0);
    request.max_wait_ms = 25_000;
    let got = tokio::time::timeout(Duration::from_secs(10), c.call(request, 12))
        .await
        .expect("the append woke the waiting fetch")
        .unwrap();
    assert_eq!(appender.await.unwrap(), 0);
    let part = &got.responses[0].partitions[0];
    assert_eq!((part.error_code, part.high_watermark), (0, 1));
    assert_eq!(
        values(part.records.clone()),
        vec![(0, "{\"group\":1}".to_string())]
    );
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

fn creatable(name: &str, partitions: i32) -> create_topics_request::CreatableTopic {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(s(name));
    t.num_partitions = partitions;
    t.replication_factor = 1;
    t
}

fn create(topics: Vec<create_topics_request::CreatableTopic>) -> CreateTopicsRequest {
    let mut r = CreateTopicsRequest::default();
    r.topics = topics;
    r.timeout_ms = 1000;
    r
}

fn message(m: &Option<StrBytes>) -> String {
    m.as_ref().map(|m| m.to_string()).unwrap_or_default()
}

/// 2^31-1 partitions, a topic past `max_topics`, partitions past `max_partitions`: each
/// refused with Kafka's error and a message naming the limit, and nothing stored.
#[tokio::test]
async fn topic_caps_are_checked_before_anything_is_written() {
    let mut cfg = config();
    cfg.limits.max_topics = 3;
    cfg.limits.max_partitions_per_topic = 8;
    cfg.limits.max_partitions = 10;
    let f = start(cfg);
    let mut c = f.connect().await;
    let answer = c
        .call(create(vec![creatable("huge", i32::MAX)]), 7)
        .await
        .unwrap();
    assert_eq!(answer.topics[0].error_code, 37, "INVALID_PARTITIONS");
    assert_eq!(
        message(&answer.topics[0].error_message),
        "2147483647 partitions: a topic has 1 to 8 (kafka.max_partitions_per_topic)"
    );
    assert!(f.store.topic_names().unwrap().is_empty(), "nothing stored");
    let answer = c
        .call(
            create(vec![
                creatable("a", 4),
                creatable("b", 4),
                creatable("c", 4),
            ]),
            7,
        )
        .await
        .unwrap();
    let codes: Vec<i16> = answer.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        vec![0, 0, 44],
        "POLICY_VIOLATION past kafka.max_partitions"
    );
    assert_eq!(
        message(&answer.topics[2].error_message),
        "4 more partitions would make 12 in all, over kafka.max_partitions = 10"
    );
    let answer = c
        .call(create(vec![creatable("c", 1), creatable("d", 1)]), 7)
        .await
        .unwrap();
    let codes: Vec<i16> = answer.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, 44]);
    assert_eq!(
        message(&answer.topics[1].error_message),
        "there are 3 topics, the most kafka.max_topics allows"
    );
    assert_eq!(f.store.topic_names().unwrap(), vec!["a", "b", "c"]);
    // Auto-creation obeys the same caps.
    let md = c.call(metadata("e"), 12).await.unwrap();
    assert_eq!(md.topics[0].error_code, 3);
    assert_eq!(f.store.topic_names().unwrap().len(), 3);
    assert_eq!(f.refused("partitions_per_topic"), 1.0);
    assert_eq!(f.refused("too_many_partitions"), 1.0);
    assert_eq!(f.refused("too_many_topics"), 2.0);
}

#[tokio::test]
async fn auto_creation_is_off_by_default_and_limited_to_its_prefix() {
    let mut cfg = config();
    cfg.auto_create_topics = false;
    let f = start(cfg);
    let mut c = f.connect().await;
    let md = c.call(metadata("auto-x"), 12).await.unwrap();
    assert_eq!(md.topics[0].error_code, 3);
    let answer = c
        .call(
            produce(
                "auto-x",
                0,
                batch(&[("k", "v")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 3);
    assert!(f.store.topic_names().unwrap().is_empty());

    let mut cfg = config();
    cfg.auto_create_prefix = "scratch-".into();
    let f = start(cfg);
    let mut c = f.connect().await;
    let md = c.call(metadata("other"), 12).await.unwrap();
    assert_eq!(md.topics[0].error_code, 3, "outside the prefix");
    let md = c.call(metadata("scratch-1"), 12).await.unwrap();
    assert_eq!(
        (md.topics[0].error_code, md.topics[0].partitions.len()),
        (0, 2)
    );
    assert_eq!(f.store.topic_names().unwrap(), vec!["scratch-1"]);
    assert_eq!(f.refused("auto_create"), 1.0);
}

/// A zstd bomb spread over many small batches of one Produce: each batch is far under
/// the limit, their sum is not. Refused as a whole, within the budget, nothing stored.
#[tokio::test]
async fn a_compression_bomb_spread_over_batches_is_refused_within_the_request_budget() {
    let mut cfg = config();
    cfg.limits.max_inflated_bytes = 1 << 20;
    let f = start(cfg);
    let mut c = f.connect().await;
    let zeros = "0".repeat(64 * 1024);
    let one = batch(&[("k", zeros.as_str())], -1, 0, Compression::Zstd);
    assert!(one.len() < 200, "{} bytes compressed", one.len());
    let mut many = BytesMut::new();
    for _ in 0..64 {
        many.extend_from_slice(&one);
    }
    let mut request = produce("bomb", 0, many.freeze(), -1);
    // A second partition of the request, which would fit on its own: refused too.
    let mut p1 = produce_request::PartitionProduceData::default();
    p1.index = 1;
    p1.records = Some(batch(&[("k", "small")], -1, 0, Compression::None));
    request.topic_data[0].partition_data.push(p1);
    let answer = c.call(request, 9).await.unwrap();
    for p in &answer.responses[0].partition_responses {
        assert_eq!(p.error_code, 10, "MESSAGE_TOO_LARGE");
        assert_eq!(
            message(&p.error_message),
            "Produce refused: the records of this request inflate to more than 1048576 bytes (kafka.max_inflated_bytes)"
        );
    }
    let topic = f.store.existing_topic("bomb").unwrap().unwrap();
    assert_eq!(
        (
            topic.high_watermark(0).unwrap(),
            topic.high_watermark(1).unwrap()
        ),
        (0, 0)
    );
    assert_eq!(f.refused("inflate_budget"), 1.0);
    // The frame's bytes are given back right after its answer is written.
    let given_back = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while f.server.broker.budget.in_use() != 0 && std::time::Instant::now() < given_back {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(f.server.broker.budget.in_use(), 0, "all given back");
    // The connection is still good.
    assert!(c.call(metadata("bomb"), 12).await.is_ok());
}

#[tokio::test]
async fn the_data_budget_refuses_produce_creation_and_commits() {
    let mut cfg = config();
    cfg.limits.max_data_bytes = 1;
    let store = Store::temporary().unwrap();
    store.topic("before", 1).unwrap();
    let telemetry = Arc::new(Telemetry::default());
    let broker = Broker::new(cfg, store.clone(), Arc::clone(&telemetry));
    let server = KafkaServer::start("127.0.0.1:0".parse().unwrap(), broker).unwrap();
    server.broker.measure_data();
    let f = Fixture {
        server,
        telemetry,
        store,
    };
    let mut c = f.connect().await;
    let answer = c
        .call(
            produce(
                "before",
                0,
                batch(&[("k", "v")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 44, "POLICY_VIOLATION");
    let text = message(&p.error_message);
    assert!(
        text.starts_with("the data directory holds ")
            && text.contains("bytes and kafka.max_data_bytes is 1: nothing more is written"),
        "{text}"
    );
    let answer = c.call(create(vec![creatable("new", 1)]), 7).await.unwrap();
    assert_eq!(answer.topics[0].error_code, 44);
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(s("g"));
    commit.generation_id_or_member_epoch = -1;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s("before"));
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    t.partitions = vec![p];
    commit.topics = vec![t];
    let answer = c.call(commit, 8).await.unwrap();
    assert_eq!(answer.topics[0].partitions[0].error_code, 44);
    assert_eq!(f.refused("data_budget"), 3.0);
    assert_eq!(
        f.store
            .existing_topic("before")
            .unwrap()
            .unwrap()
            .high_watermark(0)
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_request_naming_too_many_partitions_closes_its_connection() {
    let mut cfg = config();
    cfg.limits.max_request_partitions = 10;
    let f = start(cfg);
    let mut c = f.connect().await;
    let mut r = fetch("many", 0, 0);
    r.topics[0].partitions = (0..11)
        .map(|i| {
            let mut p = fetch_request::FetchPartition::default();
            p.partition = i;
            p
        })
        .collect();
    assert!(matches!(c.raw(&frame(&r, 12, 9)).await, Ok(None) | Err(_)));
    assert_eq!(f.refused("request_too_large"), 1.0);
    let mut c = f.connect().await;
    r.topics[0].partitions.truncate(10);
    assert!(c.call(r, 12).await.is_ok());
}

fn join_request(group: &str) -> JoinGroupRequest {
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(s(group));
    join.session_timeout_ms = 10_000;
    join.rebalance_timeout_ms = 60_000;
    join.protocol_type = s("consumer");
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"\x00\x01");
    join.protocols = vec![p];
    join
}

/// Members past `max_members_per_group` get GROUP_MAX_SIZE_REACHED; a group past
/// `max_groups` (none of them empty) is refused.
#[tokio::test]
async fn groups_and_their_members_are_capped() {
    let mut cfg = config();
    cfg.limits.max_groups = 2;
    cfg.limits.max_members_per_group = 2;
    let f = start(cfg);
    let mut a = f.connect().await;
    let first = a.call(join_request("g1"), 7).await.unwrap();
    assert_eq!((first.error_code, first.generation_id), (0, 1));
    // The second member makes the group rebalance: its join waits for the first one.
    let addr = f.server.local_addr.to_string();
    let waiting = tokio::spawn(async move {
        let mut b = Connection::connect(&addr, "b", Duration::from_secs(90))
            .await
            .unwrap();
        b.call(join_request("g1"), 7).await.map(|r| r.error_code)
    });
    // Once the second member is in (its join waits for the first to rejoin), a third is
    // one too many.
    let mut c = f.connect().await;
    for _ in 0..500 {
        let mut d = DescribeGroupsRequest::default();
        d.groups = vec![GroupId(s("g1"))];
        let described = c.call(d, 5).await.unwrap();
        if described.groups[0].members.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third = c.call(join_request("g1"), 7).await.unwrap();
    assert_eq!(
        (third.error_code, third.generation_id),
        (81, -1),
        "GROUP_MAX_SIZE_REACHED"
    );
    assert_eq!(a.call(join_request("g2"), 7).await.unwrap().error_code, 0);
    let r = c.call(join_request("g3"), 7).await.unwrap();
    assert_eq!(
        r.error_code, 15,
        "COORDINATOR_NOT_AVAILABLE: no room for a group"
    );
    assert_eq!(f.refused("too_many_groups"), 1.0);
    assert!(f.refused("group_full") >= 1.0);
    waiting.abort();
}

/// The pipeline's topics and groups are read by anyone but written by nobody without an
/// ACL; the refusals carry Kafka's codes and are counted.
#[tokio::test]
async fn anonymous_clients_cannot_write_the_pipelines_topics_or_use_its_groups() {
    let f = start(config());
    f.store.topic("local-resources", 1).unwrap();
    let mut c = f.connect().await;
    let answer = c
        .call(
            produce(
                "local-resources",
                0,
                batch(&[("k", "forged")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 29, "TOPIC_AUTHORIZATION_FAILED");
    assert_eq!(
        message(&p.error_message),
        "User:ANONYMOUS may not produce on topic \"local-resources\": it belongs to this node's \
         pipeline, and only a user named in a [[kafka.acl]] entry allowing produce on it may"
    );
    assert_eq!(
        f.store
            .existing_topic("local-resources")
            .unwrap()
            .unwrap()
            .high_watermark(0)
            .unwrap(),
        0
    );
    // Reading it is fine.
    let got = c.call(fetch("local-resources", 0, 0), 12).await.unwrap();
    assert_eq!(got.responses[0].partitions[0].error_code, 0);
    // The resource manager's group: no join, no commit.
    let r = c
        .call(join_request("resource_manager_group"), 7)
        .await
        .unwrap();
    assert_eq!(r.error_code, 30, "GROUP_AUTHORIZATION_FAILED");
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(s("resource_manager_group"));
    commit.generation_id_or_member_epoch = -1;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s("local-resources"));
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 99;
    t.partitions = vec![p];
    commit.topics = vec![t];
    let answer = c.call(commit, 8).await.unwrap();
    assert_eq!(answer.topics[0].partitions[0].error_code, 30);
    let offsets = f.store.consumer_offsets().unwrap();
    assert_eq!(
        offsets
            .committed("resource_manager_group", "local-resources", 0)
            .unwrap(),
        None
    );
    assert_eq!(f.refused("topic_authorization"), 1.0);
    assert_eq!(f.refused("group_authorization"), 2.0);
    // Other topics and groups are open.
    let answer = c
        .call(
            produce(
                "mine",
                0,
                batch(&[("k", "v")], -1, 0, Compression::None),
                -1,
            ),
            9,
        )
        .await
        .unwrap();
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(c.call(join_request("mine"), 7).await.unwrap().error_code, 0);
}

#[tokio::test]
async fn a_principal_that_may_produce_nowhere_gets_no_producer_id() {
    let mut cfg = config();
    cfg.authorizer.default_operations = vec![panoptes::kafka::acl::Operation::Consume];
    let f = start(cfg);
    let mut c = f.connect().await;
    let pid = c
        .call(
            InitProducerIdRequest::default().with_transaction_timeout_ms(1000),
            4,
        )
        .await
        .unwrap();
    assert_eq!(
        (pid.error_code, pid.producer_id.0),
        (31, -1),
        "CLUSTER_AUTHORIZATION_FAILED"
    );
    let answer = c
        .call(
            produce("x", 0, batch(&[("k", "v")], -1, 0, Compression::None), -1),
            9,
        )
        .await
        .unwrap();
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 29);
    assert_eq!(
        message(&p.error_message),
        "User:ANONYMOUS may not produce on topic \"x\": kafka.default_operations does not include produce and no [[kafka.acl]] entry allows it"
    );
    assert_eq!(f.refused("cluster_authorization"), 1.0);
}

/// Fifty connections each claiming an 8 MiB frame and sending ten bytes of it hold about
/// those bytes of the memory budget, not 400 MiB; a real client is served meanwhile.
#[tokio::test]
async fn frames_hold_the_bytes_that_arrived_not_the_size_they_claim() {
    let mut cfg = config();
    cfg.limits.max_frame_bytes = 8 << 20;
    cfg.limits.frame_timeout = Duration::from_secs(60);
    let f = start(cfg);
    let mut liars = Vec::new();
    for _ in 0..50 {
        let mut t = tokio::net::TcpStream::connect(f.server.local_addr)
            .await
            .unwrap();
        let mut head = (8i32 << 20).to_be_bytes().to_vec();
        head.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0]);
        tokio::io::AsyncWriteExt::write_all(&mut t, &head)
            .await
            .unwrap();
        liars.push(t);
    }
    let budget = &f.server.broker.budget;
    for _ in 0..500 {
        if budget.in_use() >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(budget.in_use(), 500, "ten bytes each");
    let mut c = f.connect().await;
    assert!(c.call(metadata("served"), 12).await.is_ok());
    drop(liars);
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
