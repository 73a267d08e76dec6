//! The embedded broker's SASL (PLAIN, SCRAM-SHA-256/512, both handshake framings), TLS
//! and ACLs, byte for byte with our own client: right and wrong passwords, requests
//! before authentication, a named user allowed what another is not, certificates checked.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use panoptes::kafka::acl::{AclEntry, Authorizer};
use panoptes::kafka::client::{ClientError, Connection};
use panoptes::kafka::sasl::{Mechanism, SaslServer};
use panoptes::kafka::security::{ListenerSecurity, SecurityProtocol};
use panoptes::kafka::{Broker, BrokerConfig, ClientSasl, ClientSecurity, KafkaServer, Limits};
use panoptes::secret::Secret;
use panoptes::telemetry::Telemetry;
use panoptes_storage::Store;
use support::kafka::frame;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

struct Fixture {
    server: KafkaServer,
    telemetry: Arc<Telemetry>,
    store: Store,
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
}

const USERS: &[(&str, &str)] = &[("ingest", "ingest-secret"), ("reader", "reader secret, 2")];

fn acl() -> Vec<AclEntry> {
    // As an operator writes it in panoptes.toml.
    #[derive(serde::Deserialize)]
    struct File {
        acl: Vec<AclEntry>,
    }
    let file: File = toml::from_str(
        r#"
        [[acl]]
        principal = "ingest"
        operations = ["produce"]
        topics = ["local-processed"]
        "#,
    )
    .unwrap();
    file.acl
}

fn start(protocol: SecurityProtocol, limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = support::tls_files(dir.path(), "good");
    let users: BTreeMap<String, Secret> = USERS
        .iter()
        .map(|(u, p)| (u.to_string(), Secret::new(*p)))
        .collect();
    let security = ListenerSecurity {
        protocol,
        tls: protocol.tls().then(|| {
            panoptes::tls::server_config(&cert, &key, ("kafka.tls_cert", "kafka.tls_key")).unwrap()
        }),
        sasl: protocol.sasl().then(|| {
            Arc::new(SaslServer::new(
                vec![
                    Mechanism::Plain,
                    Mechanism::ScramSha256,
                    Mechanism::ScramSha512,
                ],
                &users,
            ))
        }),
    };
    let mut authorizer = Authorizer::open(
        vec!["local-processed".into(), "local-resources".into()],
        vec!["resource_manager_group".into()],
    );
    authorizer.acl = acl();
    let config = BrokerConfig {
        auto_create_topics: true,
        limits,
        authorizer,
        security,
        ..BrokerConfig::default()
    };
    let store = Store::memory();
    store.topic("local-processed", 1).unwrap();
    let telemetry = Arc::new(Telemetry::default());
    let broker = Broker::new(config, store.clone(), Arc::clone(&telemetry));
    let server = KafkaServer::start("127.0.0.1:0".parse().unwrap(), broker).unwrap();
    Fixture {
        server,
        telemetry,
        store,
        _dir: dir,
        ca,
    }
}

impl Fixture {
    fn addr(&self) -> String {
        self.server.local_addr.to_string()
    }

    fn refused(&self, reason: &str) -> f64 {
        self.telemetry
            .get("panoptes_kafka_refused_total", &[("reason", reason)])
    }

    async fn connect(&self, security: &ClientSecurity) -> Result<Connection, ClientError> {
        Connection::connect_with(&self.addr(), "auth-test", Duration::from_secs(10), security).await
    }

    fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        Some(panoptes::tls::client_config(panoptes::tls::Trust::Only("ca", &self.ca)).unwrap())
    }
}

fn sasl(mechanism: Mechanism, user: &str, password: &str) -> Option<ClientSasl> {
    Some(ClientSasl {
        mechanism,
        username: user.into(),
        password: Secret::new(password),
    })
}

fn metadata(topic: &str) -> MetadataRequest {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(s(topic)));
    let mut r = MetadataRequest::default();
    r.topics = Some(vec![t]);
    r
}

fn produce(topic: &str, value: &str) -> ProduceRequest {
    support::kafka::produce_request(
        topic,
        0,
        support::kafka::batch(&[("k", value)], -1, 0, Compression::None),
        -1,
    )
}

fn bare(token: &[u8]) -> Vec<u8> {
    let mut out = (token.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(token);
    out
}

#[tokio::test]
async fn every_mechanism_authenticates_the_right_password_and_refuses_a_wrong_one() {
    let f = start(SecurityProtocol::SaslPlaintext, Limits::default());
    for mechanism in [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ] {
        let ok = ClientSecurity {
            tls: None,
            sasl: sasl(mechanism, "reader", "reader secret, 2"),
        };
        let mut c = f
            .connect(&ok)
            .await
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        let md = c.call(metadata("local-processed"), 12).await.unwrap();
        assert_eq!(md.topics[0].error_code, 0);
        for (user, password) in [("reader", "wrong"), ("nobody", "reader secret, 2")] {
            let bad = ClientSecurity {
                tls: None,
                sasl: sasl(mechanism, user, password),
            };
            let err = f.connect(&bad).await.err().unwrap().to_string();
            assert_eq!(
                err,
                format!(
                    "Kafka broker {}: SASL {mechanism} authentication as {user:?} failed: error 58: \
                     Authentication failed: invalid username or password (SASL mechanism {mechanism})",
                    f.addr()
                )
            );
        }
    }
    assert_eq!(f.refused("sasl_authentication"), 6.0);
}

#[tokio::test]
async fn before_authentication_only_api_versions_and_sasl_are_served() {
    let f = start(SecurityProtocol::SaslPlaintext, Limits::default());
    // ApiVersions lists the SASL APIs (a plaintext broker does not: see below).
    let mut c = f.connect(&ClientSecurity::default()).await.unwrap();
    let versions = c.call(ApiVersionsRequest::default(), 3).await.unwrap();
    let range = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
    // Anything else closes the connection.
    assert!(matches!(
        c.raw(&frame(&metadata("x"), 12, 5)).await,
        Ok(None) | Err(_)
    ));
    assert_eq!(f.refused("sasl_required"), 1.0);
    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the offered list.
    let mut c = f.connect(&ClientSecurity::default()).await.unwrap();
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = s("GSSAPI");
    let answer = c.send(hs, 1).await.unwrap();
    assert_eq!(answer.error_code, 33);
    let offered: Vec<String> = answer.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(offered, vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert_eq!(f.refused("sasl_mechanism"), 1.0);

    let plain = start(SecurityProtocol::Plaintext, Limits::default());
    let mut c = plain.connect(&ClientSecurity::default()).await.unwrap();
    let versions = c.call(ApiVersionsRequest::default(), 3).await.unwrap();
    assert!(!versions
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::SaslHandshake as i16
            || k.api_key == ApiKey::SaslAuthenticate as i16));
}

/// SaslHandshake v0, then bare size-prefixed tokens (KIP-43), as older clients do.
#[tokio::test]
async fn the_legacy_handshake_takes_bare_tokens() {
    let f = start(SecurityProtocol::SaslPlaintext, Limits::default());
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = s("PLAIN");
    let mut c = f.connect(&ClientSecurity::default()).await.unwrap();
    let answer = c.raw(&frame(&hs, 0, 7)).await.unwrap().unwrap();
    assert_eq!(&answer[..6], &[0, 0, 0, 7, 0, 0], "correlation 7, no error");
    let reply = c
        .raw(&bare(b"\0ingest\0ingest-secret"))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.is_empty(), "PLAIN ends with an empty token");
    let md = c.call(metadata("local-processed"), 12).await.unwrap();
    assert_eq!(md.topics[0].error_code, 0, "authenticated");
    // A wrong password: the connection closes (v0 has no error answer).
    let mut c = f.connect(&ClientSecurity::default()).await.unwrap();
    c.raw(&frame(&hs, 0, 8)).await.unwrap().unwrap();
    assert!(matches!(
        c.raw(&bare(b"\0ingest\0nope")).await,
        Ok(None) | Err(_)
    ));
    assert_eq!(f.refused("sasl_authentication"), 1.0);
    // SCRAM over bare tokens too.
    let mut c = f.connect(&ClientSecurity::default()).await.unwrap();
    hs.mechanism = s("SCRAM-SHA-256");
    c.raw(&frame(&hs, 0, 9)).await.unwrap().unwrap();
    let (mut exchange, first) = panoptes::kafka::scram::ClientExchange::start(
        panoptes::kafka::scram::ScramHash::Sha256,
        "reader",
        "reader secret, 2",
    );
    let server_first = c.raw(&bare(&first)).await.unwrap().unwrap();
    let last = exchange.respond(&server_first).unwrap();
    let server_final = c.raw(&bare(&last)).await.unwrap().unwrap();
    exchange.verify(&server_final).unwrap();
    assert!(c.call(metadata("local-processed"), 12).await.is_ok());
}

#[tokio::test]
async fn a_named_user_with_an_acl_writes_the_pipeline_topic_and_another_user_cannot() {
    let f = start(SecurityProtocol::SaslPlaintext, Limits::default());
    let as_user = |user: &str, password: &str| ClientSecurity {
        tls: None,
        sasl: sasl(Mechanism::ScramSha512, user, password),
    };
    let mut ingest = f
        .connect(&as_user("ingest", "ingest-secret"))
        .await
        .unwrap();
    let answer = ingest
        .call(produce("local-processed", "from ingest"), 9)
        .await
        .unwrap();
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
    let mut reader = f
        .connect(&as_user("reader", "reader secret, 2"))
        .await
        .unwrap();
    let answer = reader
        .call(produce("local-processed", "from reader"), 9)
        .await
        .unwrap();
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 29);
    assert_eq!(
        p.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        "User:reader may not produce on topic \"local-processed\": it belongs to this node's \
         pipeline, and only a user named in a [[kafka.acl]] entry allowing produce on it may"
    );
    // ingest's entry names local-processed only.
    let answer = ingest
        .call(produce("local-resources", "forged"), 9)
        .await
        .unwrap();
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 29);
    let topic = f.store.existing_topic("local-processed").unwrap().unwrap();
    assert_eq!(topic.high_watermark(0).unwrap(), 1, "only ingest's record");
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_no_one_else() {
    let f = start(SecurityProtocol::SaslSsl, Limits::default());
    let good = ClientSecurity {
        tls: f.tls(),
        sasl: sasl(Mechanism::ScramSha256, "reader", "reader secret, 2"),
    };
    let mut c = f.connect(&good).await.unwrap();
    assert_eq!(
        c.call(metadata("local-processed"), 12)
            .await
            .unwrap()
            .topics[0]
            .error_code,
        0
    );
    // A client trusting another CA refuses the broker.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = support::tls_files(other.path(), "other");
    let wrong = ClientSecurity {
        tls: Some(
            panoptes::tls::client_config(panoptes::tls::Trust::Only("ca", &other_ca)).unwrap(),
        ),
        sasl: good.sasl.clone(),
    };
    let err = f.connect(&wrong).await.err().unwrap().to_string();
    assert!(err.contains("TLS: invalid peer certificate"), "{err}");
    // A plaintext client gets nowhere, and the failed handshakes are counted.
    let err = f
        .connect(&ClientSecurity::default())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&f.addr()), "{err}");
    for _ in 0..100 {
        if f.refused("tls_handshake") >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.refused("tls_handshake"), 2.0);
}

#[tokio::test]
async fn a_connection_that_never_authenticates_is_closed_after_the_first_request_timeout() {
    let limits = Limits {
        first_request_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let f = start(SecurityProtocol::SaslPlaintext, limits);
    // ApiVersions is answered, but authentication never comes.
    let mut c = f.connect(&ClientSecurity::default()).await.unwrap();
    for _ in 0..500 {
        if f.refused("first_request_timeout") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.refused("first_request_timeout"), 1.0);
    let closed = c.call(metadata("x"), 12).await.unwrap_err().to_string();
    assert!(
        closed.starts_with(&format!("Kafka broker {}: ", f.addr())),
        "{closed}"
    );
}
