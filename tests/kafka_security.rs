//! The attacks found against `panoptes run` on defaults, replayed with real clients
//! against real node processes (loopback only, bounded in count and time), each now
//! failing to do harm; and SASL, TLS and ACLs with kcat, kafka-python and
//! confluent-kafka.

mod support;

use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::{program, repo, NodeEnv};

fn kcat() -> std::path::PathBuf {
    program("kcat", "install kcat (Debian: `apt-get install -y kcat`)")
}

/// Runs a command with a time limit (no stdin).
fn run(cmd: Command, limit: Duration) -> Output {
    support::run_limited(cmd, b"", limit)
}

/// Runs tests/kafka/secure.py; returns its JSON report.
fn secure(
    broker: &str,
    client: &str,
    step: &str,
    config: serde_json::Value,
    args: &[&str],
) -> serde_json::Value {
    let python = program("python3", "install Python 3");
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tests/kafka/secure.py"))
        .args([broker, client, step, &config.to_string()])
        .args(args);
    let out = run(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "secure.py {client} {step} printed no report ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

fn started(env: &NodeEnv) -> support::Node {
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    node
}

fn metric(env: &NodeEnv, series: &str) -> f64 {
    let (_, metrics) = env.http_get("/metrics").unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map_or(0.0, |v| v.parse().unwrap())
}

fn refused(env: &NodeEnv, reason: &str) -> f64 {
    metric(
        env,
        &format!("panoptes_kafka_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// A resource set like discovery's, for a "device" at `port` on loopback: polled, it
/// would receive SNMP requests carrying the site's community.
fn forged_resource_set(port: u16) -> String {
    serde_json::json!({
        "resources": [{
            "resource_site": "local",
            "resource_class": "network",
            "resource_subclass": "switch",
            "resource_type": "generic",
            "resource_id": "forged-1",
            "resource_endpoint": "127.0.0.1",
            "resource_plugin": "forged",
            "resource_creation_timestamp": 0,
            "resource_metadata": {"_resource_ttl": "900", "snmp_port": port.to_string()}
        }],
        "resource_set_creation_timestamp": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    })
    .to_string()
}

/// Whether anything arrives on `socket` within `wait`.
fn received(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2048];
    socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

#[test]
fn a_forged_resource_set_and_foreign_commits_are_refused_and_the_forged_endpoint_never_polled() {
    let env = NodeEnv::demo(2);
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let trap = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = trap.local_addr().unwrap().port();

    let r = secure(
        &broker,
        "kafka-python",
        "produce",
        serde_json::json!({}),
        &["local-resources", "forged:1:x", &forged_resource_set(port)],
    );
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error_type"], "TopicAuthorizationFailedError", "{r}");
    for step in ["commit", "join"] {
        let r = secure(
            &broker,
            "kafka-python",
            step,
            serde_json::json!({}),
            &["resource_manager_group", "local-resources"],
        );
        assert_eq!(r["ok"], false, "{step}: {r}");
        assert_eq!(
            r["error_type"], "GroupAuthorizationFailedError",
            "{step}: {r}"
        );
    }
    // Three poll intervals and more: nothing reaches the forged endpoint.
    assert_eq!(received(&trap, Duration::from_secs(8)), None);
    let (_, resources) = env.http_get("/api/resources").unwrap();
    assert!(!resources.contains("forged-1"), "{resources}");
    assert!(resources.contains("demo-switch-48"), "{resources}");
    assert_eq!(refused(&env, "topic_authorization"), 1.0);
    assert!(refused(&env, "group_authorization") >= 2.0);
    let log = node.log_text();
    assert!(
        log.contains(
            "Kafka listener refused: User:ANONYMOUS may not produce on topic \"local-resources\""
        ),
        "{log}"
    );
    node.stop();
}

#[test]
fn create_topics_with_2147483647_partitions_is_refused_and_the_node_restarts_cleanly() {
    let env = NodeEnv::demo(60);
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let r = secure(
        &broker,
        "kafka-python",
        "create",
        serde_json::json!({}),
        &["huge", "2147483647"],
    );
    assert_eq!(r["error_type"], "InvalidPartitionsError", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains(
            "topic_errors=[(topic='huge', error_code=37, error_message='2147483647 partitions: \
             a topic has 1 to 1024 (kafka.max_partitions_per_topic)')]"
        ),
        "{r}"
    );
    // /metrics keeps answering; SIGTERM stops the node.
    assert_eq!(refused(&env, "partitions_per_topic"), 1.0);
    assert_eq!(node.stop().code(), Some(0));
    // The same data dir: up and ready, without the topic.
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    let (_, topics) = env.http_get("/api/topics").unwrap();
    assert!(!topics.contains("huge"), "{topics}");
    assert!(topics.contains("local-processed"), "{topics}");
    assert_eq!(node.stop().code(), Some(0));
}

/// Bytes of a Produce with `batches` zstd batches of `each` zero bytes, to `topic`/0.
fn bomb(topic: &str, batches: usize, each: usize) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::records::Compression;
    let zeros = "\0".repeat(each);
    let one = support::kafka::batch(&[("k", &zeros)], -1, 0, Compression::Zstd);
    let mut all = bytes::BytesMut::new();
    for _ in 0..batches {
        all.extend_from_slice(&one);
    }
    let mut r = support::kafka::produce_request(topic, 0, all.freeze(), -1);
    r.timeout_ms = 30_000;
    r
}

/// 8 connections, each sending Produce requests whose 100 zstd batches would inflate to
/// 400 MiB: all refused within the per-request budget, and the node's memory stays
/// within a generous bound (a size, not a time).
#[test]
fn zstd_bombs_spread_over_many_batches_are_refused_and_memory_stays_bounded() {
    let env = NodeEnv::demo(60);
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let pid = node.child.id();
    let before = support::rss_kb(pid);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let codes = rt.block_on(async {
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::StrBytes;
        let mut admin = panoptes::kafka::client::Connection::connect(
            &broker,
            "bomber",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = TopicName(StrBytes::from_static_str("bombs"));
        t.num_partitions = 1;
        t.replication_factor = 1;
        let mut create = CreateTopicsRequest::default();
        create.topics = vec![t];
        create.timeout_ms = 5000;
        assert_eq!(admin.call(create, 7).await.unwrap().topics[0].error_code, 0);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let broker = broker.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = panoptes::kafka::client::Connection::connect(
                    &broker,
                    &format!("bomb{i}"),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
                let mut codes = Vec::new();
                for _ in 0..3 {
                    let answer = c.call(bomb("bombs", 100, 4 << 20), 9).await.unwrap();
                    let p = &answer.responses[0].partition_responses[0];
                    codes.push((
                        p.error_code,
                        p.error_message.as_ref().map(|m| m.to_string()),
                    ));
                }
                codes
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let after = support::rss_kb(pid);
    for (code, message) in &codes {
        // MESSAGE_TOO_LARGE, or REQUEST_TIMED_OUT if the memory budget stayed full.
        assert!(*code == 10 || *code == 7, "{code} {message:?}");
        if *code == 10 {
            assert_eq!(
                message.as_deref(),
                Some("Produce refused: the records of this request inflate to more than 16777216 bytes (kafka.max_inflated_bytes)")
            );
        }
    }
    assert!(codes.iter().any(|(c, _)| *c == 10));
    let peak = support::peak_rss_kb(pid);
    println!("zstd bombs: RSS {before} kB before, {after} kB after, {peak} kB at the peak");
    // The requests in flight may hold kafka.max_bytes_in_flight (64 MiB) at once; what
    // they freed goes back to the OS when they are answered.
    assert!(
        after < before + 200_000,
        "RSS grew from {before} kB to {after} kB"
    );
    assert!(
        peak < before + 200_000,
        "RSS peaked at {peak} kB, from {before} kB"
    );
    let mut read = Command::new(kcat());
    read.args([
        "-b",
        &broker,
        "-C",
        "-t",
        "bombs",
        "-o",
        "beginning",
        "-e",
        "-q",
    ]);
    let out = run(read, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing stored");
    assert!(refused(&env, "inflate_budget") >= 1.0);
    node.stop();
}

/// 2,000 connections from ten loopback addresses, half left silent and half fed a byte
/// every half second: kcat and kafka-python, connecting from 127.0.0.1 meanwhile, are
/// served.
#[test]
fn two_thousand_slow_connections_leave_real_clients_served() {
    panoptes::simulate::fdlimit::raise_open_files(8192);
    let env = NodeEnv::demo(60);
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let addr: std::net::SocketAddr = broker.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = rt.block_on(async {
        let mut sockets = Vec::new();
        for i in 0..2000u32 {
            let from: std::net::IpAddr = format!("127.0.0.{}", 2 + i % 10).parse().unwrap();
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
            if let Ok(s) = socket.connect(addr).await {
                sockets.push(s);
            }
        }
        sockets
    });
    assert!(slow.len() >= 1900, "{} connections opened", slow.len());
    // Half of them dribble a frame's header, a byte at a time.
    let dribblers = {
        let stop = std::sync::Arc::clone(&stop);
        let mut streams = slow;
        let dribbling: Vec<_> = streams.drain(..streams.len() / 2).collect();
        let handle = rt.spawn(async move {
            let mut dribbling = dribbling;
            let header = (8i32 << 20).to_be_bytes();
            for step in 0..40 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for s in dribbling.iter_mut() {
                    let byte = header[step % 4];
                    let _ = tokio::io::AsyncWriteExt::write_all(s, &[byte]).await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            dribbling
        });
        (handle, streams)
    };
    let mut list = Command::new(kcat());
    list.args(["-b", &broker, "-L", "-m", "20"]);
    let out = run(list, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("topic \"local-processed\""),
        "kcat -L: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = secure(
        &broker,
        "kafka-python",
        "metadata",
        serde_json::json!({}),
        &[],
    );
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["topics"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("local-processed")));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (handle, silent) = dribblers;
    let dribbling = rt.block_on(handle).unwrap();
    assert!(metric(&env, "panoptes_kafka_open_connections") <= 1024.0);
    assert!(refused(&env, "evicted") > 0.0);
    drop((silent, dribbling));
    node.stop();
}

/// A node with SASL and an ACL: users `ingest` (may produce to the pipeline's topics) and
/// `reader` (may not).
fn sasl_node(dir: &Path, protocol: &str, tls: Option<(&Path, &Path)>) -> NodeEnv {
    let mut env = NodeEnv::demo(2);
    let secrets = support::kafka_secrets(
        dir,
        &[("ingest", "ingest pass"), ("reader", "reader pass")],
        None,
    );
    let tls_keys = tls
        .map(|(cert, key)| format!("tls_cert = {:?}\ntls_key = {:?}\n", cert, key))
        .unwrap_or_default();
    let config = dir.join("secure.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
security = "{protocol}"
{tls_keys}
[[kafka.acl]]
principal = "ingest"
operations = ["produce"]
topics = ["local-processed", "local-resources"]
"#
        ),
    )
    .unwrap();
    env.set("PANOPTES_CONFIG", config.to_str().unwrap());
    env.set("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap());
    env
}

fn kcat_sasl(
    broker: &str,
    protocol: &str,
    mechanism: &str,
    user: &str,
    password: &str,
    ca: Option<&Path>,
) -> Output {
    let mut cmd = Command::new(kcat());
    cmd.args(["-b", broker, "-L", "-m", "10"])
        .args(["-X", &format!("security.protocol={protocol}")])
        .args(["-X", &format!("sasl.mechanisms={mechanism}")])
        .args(["-X", &format!("sasl.username={user}")])
        .args(["-X", &format!("sasl.password={password}")]);
    if let Some(ca) = ca {
        cmd.args(["-X", &format!("ssl.ca.location={}", ca.display())]);
    }
    run(cmd, Duration::from_secs(60))
}

fn sasl_config(
    mechanism: &str,
    user: &str,
    password: &str,
    protocol: &str,
    ca: Option<&Path>,
) -> serde_json::Value {
    let mut c = serde_json::json!({
        "protocol": protocol, "mechanism": mechanism, "username": user, "password": password
    });
    if let Some(ca) = ca {
        c["cafile"] = serde_json::json!(ca.to_str().unwrap());
    }
    c
}

#[test]
fn sasl_and_acls_with_kcat_kafka_python_and_confluent_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let env = sasl_node(dir.path(), "sasl_plaintext", None);
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let failed = |mechanism: &str| {
        format!("Authentication failed: invalid username or password (SASL mechanism {mechanism})")
    };

    // kcat (librdkafka 2.0): SCRAM-SHA-256 and PLAIN.
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let out = kcat_sasl(
            &broker,
            "sasl_plaintext",
            mechanism,
            "reader",
            "reader pass",
            None,
        );
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("local-processed"),
            "{mechanism}: {} {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = kcat_sasl(
            &broker,
            "sasl_plaintext",
            mechanism,
            "reader",
            "wrong",
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && stderr.contains(&format!("SASL authentication error: {}", failed(mechanism))),
            "{mechanism}: {stderr}"
        );
    }
    // kafka-python 2.x: SCRAM-SHA-512 and SCRAM-SHA-256.
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256"] {
        let ok = secure(
            &broker,
            "kafka-python",
            "metadata",
            sasl_config(mechanism, "reader", "reader pass", "SASL_PLAINTEXT", None),
            &[],
        );
        assert_eq!(ok["ok"], true, "{mechanism}: {ok}");
        let mut wrong = sasl_config(mechanism, "reader", "wrong", "SASL_PLAINTEXT", None);
        wrong["limit"] = serde_json::json!(6);
        let bad = secure(&broker, "kafka-python", "metadata", wrong, &[]);
        assert_eq!(bad["ok"], false, "{bad}");
        let log = bad["log"].as_str().unwrap();
        assert!(
            log.contains(&format!(
                "SaslAuthenticationFailedError ({})",
                failed(mechanism)
            )),
            "{mechanism}: {log}"
        );
    }
    // confluent-kafka (librdkafka 2.x): PLAIN and SCRAM-SHA-512.
    for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
        let ok = secure(
            &broker,
            "confluent-kafka",
            "metadata",
            sasl_config(mechanism, "reader", "reader pass", "SASL_PLAINTEXT", None),
            &[],
        );
        assert_eq!(ok["ok"], true, "{mechanism}: {ok}");
        let mut wrong = sasl_config(mechanism, "reader", "wrong", "SASL_PLAINTEXT", None);
        wrong["limit"] = serde_json::json!(8);
        let bad = secure(&broker, "confluent-kafka", "metadata", wrong, &[]);
        assert_eq!(bad["ok"], false, "{bad}");
        let log = bad["log"].as_str().unwrap();
        assert!(log.contains(&failed(mechanism)), "{mechanism}: {log}");
    }
    // Without SASL: nothing (kafka-python reports a disconnected socket and no topics).
    let anonymous = secure(
        &broker,
        "kafka-python",
        "metadata",
        serde_json::json!({"limit": 6}),
        &[],
    );
    assert!(
        anonymous["ok"] == false || anonymous["topics"] == serde_json::json!([]),
        "{anonymous}"
    );
    assert!(refused(&env, "sasl_required") >= 1.0);

    // The ACL: ingest may produce to local-processed, reader may not.
    let as_ingest = sasl_config(
        "SCRAM-SHA-512",
        "ingest",
        "ingest pass",
        "SASL_PLAINTEXT",
        None,
    );
    let r = secure(
        &broker,
        "kafka-python",
        "produce",
        as_ingest.clone(),
        &["local-processed", "k", "from ingest"],
    );
    assert_eq!(r["ok"], true, "{r}");
    let r = secure(
        &broker,
        "confluent-kafka",
        "produce",
        sasl_config("PLAIN", "reader", "reader pass", "SASL_PLAINTEXT", None),
        &["local-processed", "k", "from reader"],
    );
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("TOPIC_AUTHORIZATION_FAILED"),
        "{r}"
    );
    // ingest may also write resource sets: the same forged set the anonymous attack sent
    // is then polled, with the site's community (so that attack was a real one).
    let trap = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = trap.local_addr().unwrap().port();
    let r = secure(
        &broker,
        "kafka-python",
        "produce",
        as_ingest,
        &["local-resources", "forged:1:x", &forged_resource_set(port)],
    );
    assert_eq!(r["ok"], true, "{r}");
    let packet =
        received(&trap, Duration::from_secs(40)).expect("the allowed resource set is polled");
    assert!(
        packet.windows(6).any(|w| w == b"public"),
        "an SNMP request with the community"
    );
    assert!(refused(&env, "sasl_authentication") >= 8.0);
    assert!(refused(&env, "topic_authorization") >= 1.0);
    node.stop();
}

#[test]
fn tls_with_kcat_kafka_python_and_confluent_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = support::tls_files(dir.path(), "node");
    let (other_ca, _, _) = support::tls_files(dir.path(), "other");
    let env = sasl_node(dir.path(), "sasl_ssl", Some((&cert, &key)));
    let node = started(&env);
    let broker = format!("127.0.0.1:{}", env.kafka_port());
    let out = kcat_sasl(
        &broker,
        "sasl_ssl",
        "SCRAM-SHA-512",
        "reader",
        "reader pass",
        Some(&ca),
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("local-processed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kcat_sasl(
        &broker,
        "sasl_ssl",
        "SCRAM-SHA-512",
        "reader",
        "reader pass",
        Some(&other_ca),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("certificate verify failed"),
        "{stderr}"
    );
    let r = secure(
        &broker,
        "kafka-python",
        "metadata",
        sasl_config("PLAIN", "reader", "reader pass", "SASL_SSL", Some(&ca)),
        &[],
    );
    assert_eq!(r["ok"], true, "{r}");
    let r = secure(
        &broker,
        "confluent-kafka",
        "metadata",
        sasl_config(
            "SCRAM-SHA-256",
            "reader",
            "reader pass",
            "SASL_SSL",
            Some(&ca),
        ),
        &[],
    );
    assert_eq!(r["ok"], true, "{r}");
    let r = secure(
        &broker,
        "kafka-python",
        "produce",
        sasl_config(
            "SCRAM-SHA-256",
            "ingest",
            "ingest pass",
            "SASL_SSL",
            Some(&ca),
        ),
        &["local-processed", "k", "over tls"],
    );
    assert_eq!(r["ok"], true, "{r}");
    // Plaintext against the TLS listener: a refused handshake, counted.
    let mut plain = Command::new(kcat());
    plain.args(["-b", &broker, "-L", "-m", "3"]);
    let out = run(plain, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(refused(&env, "tls_handshake") >= 1.0);
    node.stop();
}

#[test]
fn a_listener_off_loopback_without_authentication_refuses_to_start() {
    let mut env = NodeEnv::demo(60);
    // Refused before anything binds: any port shows it, 0 takes none from other tests.
    let port = 0;
    env.set("PANOPTES__KAFKA__LISTEN", &format!("0.0.0.0:{port}"));
    let out = env.cli(&["run"], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "configuration key `kafka.listen`: kafka.listen = 0.0.0.0:{port} is not a loopback address, \
             and kafka.security = \"plaintext\" authenticates nobody: anyone who can reach it could read \
             this node's metrics and write to its topics. Set kafka.security = \"sasl_ssl\" (or \
             \"sasl_plaintext\") with users in the secrets file, bind kafka.listen to 127.0.0.1, or set \
             kafka.allow_insecure = true to accept the risk"
        )),
        "{stderr}"
    );
    // SASL without users is refused too.
    env.set("PANOPTES__KAFKA__LISTEN", &format!("127.0.0.1:{port}"));
    env.set("PANOPTES__KAFKA__SECURITY", "sasl_plaintext");
    let out = env.cli(&["run"], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("\"sasl_plaintext\" authenticates users, and there are none: add a [local.kafka_users] table"),
        "{stderr}"
    );
    let _ = std::io::stderr().flush();
}
