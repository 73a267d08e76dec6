//! The line protocol for the conformance metrics group, byte for byte (spec §6,
//! `tests/conformance/influxdb_consumer/basic`), and the exact HTTP requests the v1 and
//! v2 writers send, captured by a tiny loopback HTTP server: the body after gzip, the
//! query string, the headers. Also the fixture's second scenario: the first POST answered
//! 400, then the point written alone.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes::bus::Item;
use panoptes::model::MetricsGroup;
use panoptes::sink::{Encoder, GroupRecord, InfluxSink, LineWriter, Secret, V1Writer, V2Writer};
use panoptes::telemetry::Telemetry;
use panoptes_actors::Sink;

/// The record and the expected request body. The file ends with one newline (the
/// fixture's README says it has none; the bytes say otherwise): the body itself has no
/// trailing newline, so that one is not part of the expectation.
fn fixture() -> (Vec<u8>, String) {
    let dir = support::conformance("influxdb_consumer/basic");
    let expected = std::fs::read_to_string(dir.join("expected_line.txt")).unwrap();
    let expected = expected.strip_suffix('\n').unwrap_or(&expected).to_string();
    assert!(!expected.contains('\n'), "one line expected");
    (
        std::fs::read(dir.join("metrics_group.json")).unwrap(),
        expected,
    )
}

fn encode(record: &GroupRecord<'_>) -> String {
    let mut out = Vec::new();
    Encoder::new().encode(record, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn conformance_line_is_byte_identical() {
    let (json, expected) = fixture();
    let record = GroupRecord::parse(&json).unwrap();
    assert_eq!(encode(&record), expected);

    // Through the model too (a group built in memory, no JSON round trip).
    let group = MetricsGroup::from_json(&serde_json::from_slice(&json).unwrap()).unwrap();
    assert_eq!(encode(&GroupRecord::of(&group)), expected);
}

#[test]
fn escaping_of_spaces_commas_and_equals_in_tags() {
    let (json, _) = fixture();
    let mut group: serde_json::Value = serde_json::from_slice(&json).unwrap();
    group["metrics_group_type"] = "interface stats/v2".into();
    group["dimensions"] = serde_json::json!([
        {"dimension_name": "description", "dimension_value": "uplink, to core=1 (a b)"},
        {"dimension_name": "resource_site", "dimension_value": "overridden"},
    ]);
    group["metrics"] = serde_json::json!([
        {"metric_name": "rate", "metric_type": "gauge", "metric_value": 0.00001,
         "metric_creation_timestamp": 1.0},
        {"metric_name": "octets", "metric_type": "counter", "metric_value": 12,
         "metric_creation_timestamp": 1.0},
        {"metric_name": "ratio", "metric_type": "gauge", "metric_value": 2.0,
         "metric_creation_timestamp": 1.0},
    ]);
    let bytes = serde_json::to_vec(&group).unwrap();
    let line = encode(&GroupRecord::parse(&bytes).unwrap());
    assert_eq!(
        line,
        "interface_stats_v2,description=uplink\\,\\ to\\ core\\=1\\ (a\\ b),\
         resource_class=network,resource_endpoint=switch1.example.com,resource_site=site1,\
         resource_subclass=switch,resource_type=cisco \
         octets__counter=12,rate__gauge=1e-05,ratio__gauge=2.0 1535497112"
    );
}

/// One captured HTTP request.
#[derive(Debug, Clone)]
struct Request {
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn unzipped(&self) -> String {
        assert_eq!(self.header("content-encoding"), Some("gzip"), "{self:?}");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&self.body[..])
            .read_to_string(&mut out)
            .unwrap();
        out
    }
}

/// A loopback HTTP/1.1 server answering each request with the next scripted status (204
/// once the script is used up) and recording it.
fn capture_server(script: Vec<u16>) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script.into_iter()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (record, script) = (Arc::clone(&record), Arc::clone(&script));
            std::thread::spawn(move || {
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                    let length: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    record.lock().unwrap().push(Request {
                        target,
                        headers,
                        body,
                    });
                    let status = script.lock().unwrap().next().unwrap_or(204);
                    let (reason, text) = match status {
                        204 => ("No Content", ""),
                        _ => ("Bad Request", "{\"error\":\"unable to parse: scripted\"}"),
                    };
                    let response = format!(
                        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if writer.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn batch() -> Arc<[Item]> {
    let (json, _) = fixture();
    vec![(Some(b"key:foo:foo".to_vec()), json)].into()
}

#[tokio::test]
async fn v1_posts_the_line_gzipped_with_precision_seconds_and_basic_auth() {
    let (_, expected) = fixture();
    let (url, seen) = capture_server(vec![]);
    let writer = V1Writer::new(
        &url,
        "panoptes",
        "root",
        &Secret::new("root"),
        Duration::from_secs(5),
        None,
    );
    let telemetry = Arc::new(Telemetry::default());
    let mut sink = InfluxSink::new(Arc::new(writer), Arc::clone(&telemetry));
    sink.deliver(batch()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.target, "/write?db=panoptes&precision=s");
    assert_eq!(r.header("authorization"), Some("Basic cm9vdDpyb290"));
    assert_eq!(r.unzipped(), expected);
    assert_eq!(
        telemetry.get("panoptes_influxdb_points_written_total", &[]),
        1.0
    );
}

#[tokio::test]
async fn v1_after_a_400_writes_the_point_alone() {
    let (_, expected) = fixture();
    let (url, seen) = capture_server(vec![400]);
    let writer = V1Writer::new(
        &url,
        "panoptes",
        "",
        &Secret::default(),
        Duration::from_secs(5),
        None,
    );
    let telemetry = Arc::new(Telemetry::default());
    let mut sink = InfluxSink::new(Arc::new(writer), Arc::clone(&telemetry));
    sink.deliver(batch()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "the batch, then the point alone");
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(seen[1].unzipped(), expected);
    assert_eq!(
        telemetry.get("panoptes_influxdb_points_written_total", &[]),
        1.0
    );
    assert_eq!(
        telemetry.get("panoptes_influxdb_points_rejected_total", &[]),
        0.0
    );
}

#[tokio::test]
async fn v2_posts_through_influxdb2_with_token_org_bucket_and_gzip() {
    let (_, expected) = fixture();
    let (url, seen) = capture_server(vec![]);
    let writer = V2Writer::new(
        &url,
        "my-org",
        "my bucket",
        &Secret::new("t0ken"),
        Duration::from_secs(5),
        &[],
    )
    .unwrap();
    assert!(!writer.target().contains("t0ken"));
    let mut sink = InfluxSink::new(Arc::new(writer), Arc::new(Telemetry::default()));
    sink.deliver(batch()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(
        r.target,
        "/api/v2/write?bucket=my+bucket&org=my-org&precision=s"
    );
    assert_eq!(r.header("authorization"), Some("Token t0ken"));
    assert_eq!(r.unzipped(), expected);
}

/// Field values as Python's `repr` wrote them, checked against a table CPython 3.11
/// produced (random bit patterns, random magnitudes, rounded decimals, and large values
/// with a few fractional bits, where shortest-digit ties must go to the even digit).
#[test]
fn floats_match_a_cpython_repr_table() {
    let table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/influx_support/python_float_repr.txt"
    ))
    .unwrap();
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let (bits, python) = line.split_once(' ').unwrap();
        let x = f64::from_bits(bits.parse().unwrap());
        let mut out = Vec::new();
        panoptes::sink::py_repr::write_float(x, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), python, "repr of {x:?}");
        checked += 1;
    }
    assert!(checked > 2000);
}
