//! `/metrics/devices` from the real binary polling the demo switch: the text parses with
//! the Python `prometheus_client` parser and holds the interface metrics with interface
//! names as labels, typed; `?resource_id=` picks one device; a real VictoriaMetrics
//! scraping it (with the node's token) stores the series. Both shipped Grafana dashboards
//! only name series the node writes: the InfluxDB one measurements and fields the sink
//! writes for the demo switch, the Prometheus one series of a real scrape.

mod influx_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::NodeEnv;

const INTERFACES: usize = 48;
const TOKEN: &str = "scrape-token-for-tests";

/// What the Python parser made of an exposition: per family (name, type), its samples
/// as (sample name, labels, value).
type Families = BTreeMap<(String, String), Vec<(String, BTreeMap<String, String>, f64)>>;

/// Parses `text` with `prometheus_client.parser.text_string_to_metric_families`. Fails
/// when a family shows up twice (families interleaved) or the parser refuses the text.
fn parse_with_prometheus_client(text: &str) -> Families {
    let python = support::program(
        "python3",
        "`pip install prometheus_client` (./scripts/test.sh installs it)",
    );
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = text.to_owned();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client refused the exposition: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let mut families = Families::new();
    for f in parsed {
        let key = (
            f["name"].as_str().unwrap().to_owned(),
            f["type"].as_str().unwrap().to_owned(),
        );
        let samples = f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                (
                    s["name"].as_str().unwrap().to_owned(),
                    labels,
                    s["value"].as_f64().unwrap(),
                )
            })
            .collect();
        assert!(
            families.insert(key.clone(), samples).is_none(),
            "family {key:?} appears twice: families are interleaved"
        );
    }
    families
}

/// GET with the token; (status, body).
fn get(env: &NodeEnv, path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{}{path}", env.http_port());
    match ureq::get(&url)
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .timeout(Duration::from_secs(30))
        .call()
    {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// A node polling the demo switch every 2 s, with a token.
fn demo_node() -> (NodeEnv, support::Node) {
    let mut env = NodeEnv::demo(2);
    env.set("PANOPTES__HTTP__TOKEN", TOKEN);
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    (env, node)
}

/// Scrapes until the rates (second poll on) are there.
fn scrape_with_rates(env: &NodeEnv, node: &mut support::Node) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = get(env, "/metrics/devices");
        if status == 200 && body.contains("\ninterface_bits_in{") {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no rates in /metrics/devices after 60 s ({status}):\n{body}\nlog:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The series names (metric names as scraped) and label names of an exposition.
fn series_names(families: &Families) -> (BTreeSet<String>, BTreeSet<String>) {
    let samples = families.values().flatten();
    let names = samples.clone().map(|(n, _, _)| n.clone()).collect();
    let labels = samples.flat_map(|(_, l, _)| l.keys().cloned()).collect();
    (names, labels)
}

/// Every PromQL expression of the Prometheus dashboard (panels and variables), with its
/// variables filled in for "everything".
fn prometheus_dashboard_queries() -> Vec<(String, String)> {
    let path = support::resource("grafana/panoptes-interfaces-prometheus.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fill = |q: &str| {
        q.replace("$site", ".*")
            .replace("$device", ".*")
            .replace("$interface", ".*")
    };
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["type"], "prometheus");
        for t in panel["targets"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap().to_owned();
            queries.push((title, fill(t["expr"].as_str().unwrap())));
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap();
            queries.push((format!("variable {}", v["name"]), fill(q)));
        }
    }
    assert!(queries.len() >= 12, "{queries:?}");
    queries
}

/// The metric and label names a dashboard expression uses: `name{label=~"..",...}` and
/// `label_values(name{...}, label)`.
fn names_in(expr: &str) -> (String, Vec<String>) {
    let inner = expr
        .strip_prefix("label_values(")
        .and_then(|e| e.strip_suffix(')'));
    let (selector, extra) = match inner {
        Some(inner) => {
            let (selector, label) = inner.rsplit_once(',').unwrap();
            (selector.trim(), Some(label.trim().to_owned()))
        }
        None => (expr, None),
    };
    let (name, matchers) = selector.split_once('{').unwrap_or((selector, "}"));
    let mut labels: Vec<String> = matchers
        .trim_end_matches('}')
        .split(',')
        .filter(|m| !m.is_empty())
        .map(|m| m.split(['=', '!']).next().unwrap().trim().to_owned())
        .collect();
    labels.extend(extra);
    (name.to_owned(), labels)
}

#[test]
fn demo_scrape_parses_with_prometheus_client_and_filters_by_resource() {
    let (env, mut node) = demo_node();
    // The same token as every other path.
    assert_eq!(env.http_get("/metrics/devices").unwrap().0, 401);
    let text = scrape_with_rates(&env, &mut node);
    let started = Instant::now();
    let (_, again) = get(&env, "/metrics/devices");
    eprintln!(
        "demo switch: {} bytes of /metrics/devices in {:.1} ms",
        again.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let families = parse_with_prometheus_client(&text);

    // Each family's HELP and TYPE once, before its samples.
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let distinct: BTreeSet<&str> = types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
    assert_eq!(types.len(), distinct.len(), "{types:?}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("# HELP ")).count(),
        types.len()
    );

    // Rates are gauges, raw counters are counters (`_total`), named `<measurement>_<metric>`.
    let family = |name: &str, kind: &str| {
        families
            .get(&(name.to_owned(), kind.to_owned()))
            .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", families.keys()))
    };
    for (name, kind, sample) in [
        ("interface_bits_in", "gauge", "interface_bits_in"),
        ("interface_bits_out", "gauge", "interface_bits_out"),
        ("interface_errors_in", "gauge", "interface_errors_in"),
        ("interface_oper_state", "gauge", "interface_oper_state"),
        ("interface_admin_state", "gauge", "interface_admin_state"),
        ("interface_bits_in", "counter", "interface_bits_in_total"),
        ("interface_bits_out", "counter", "interface_bits_out_total"),
    ] {
        let samples = family(name, kind);
        assert_eq!(samples.len(), INTERFACES, "{name} {kind}");
        let interfaces: BTreeSet<&str> = samples
            .iter()
            .map(|(n, labels, _)| {
                assert_eq!(n, sample);
                assert_eq!(labels["resource_endpoint"], "127.0.0.1");
                assert_eq!(labels["resource_site"], "local");
                assert_eq!(labels["resource_class"], "network");
                labels["interface_name"].as_str()
            })
            .collect();
        assert_eq!(interfaces.len(), INTERFACES, "{name}: {interfaces:?}");
        assert!(interfaces.contains("Gi0/1"), "{interfaces:?}");
    }
    let status = family("status_interface_polling_status", "gauge");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].2, 0.0, "SUCCESS");
    let bits = family("interface_bits_in", "gauge");
    assert!(bits.iter().all(|(_, _, v)| *v > 0.0), "{bits:?}");

    // One device: the same families; an unknown one: a 404 that says why.
    let (_, resources) = get(&env, "/api/resources");
    let resources: Value = serde_json::from_str(&resources).unwrap();
    let id = resources["resources"][0]["resource_id"].as_str().unwrap();
    let (status, one) = get(&env, &format!("/metrics/devices?resource_id={id}"));
    assert_eq!(status, 200);
    let one = parse_with_prometheus_client(&one);
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        families.keys().collect::<Vec<_>>()
    );
    let (status, body) = get(&env, "/metrics/devices?resource_id=no-such-device");
    assert_eq!(status, 404);
    assert!(
        body.starts_with("no metrics for resource_id `no-such-device`: this node does not poll it"),
        "{body}"
    );

    // The Prometheus dashboard names series and labels of this scrape.
    let (names, labels) = series_names(&families);
    for (what, expr) in prometheus_dashboard_queries() {
        let (name, used) = names_in(&expr);
        assert!(
            names.contains(&name),
            "{what}: `{name}` is not scraped ({expr})"
        );
        for label in used {
            assert!(
                labels.contains(&label),
                "{what}: no label `{label}` ({expr})"
            );
        }
    }

    // The InfluxDB dashboard names measurements, fields and tags the sink writes for the
    // demo switch: mapped by the sink's own mapping from the records of the topic.
    let records = env.tail("local-processed", 98, Duration::from_secs(60));
    let mut written: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut encoder = panoptes::sink::Encoder::new();
    for record in &records {
        let bytes = serde_json::to_vec(record).unwrap();
        let group = panoptes::sink::GroupRecord::parse(&bytes).unwrap();
        let mapped = encoder.map(&group).unwrap();
        let mut measurement = Vec::new();
        panoptes::sink::line_protocol::write_measurement(
            &group.metrics_group_type,
            &mut measurement,
        );
        let (tags, fields) = written
            .entry(String::from_utf8(measurement).unwrap())
            .or_default();
        tags.extend(mapped.tags().map(|(k, _)| k.to_owned()));
        fields.extend(
            mapped
                .fields()
                .map(|f| String::from_utf8(f.key.to_vec()).unwrap()),
        );
    }
    for (what, query) in influx_support::dashboard_queries() {
        let quoted: Vec<&str> = query.split('"').skip(1).step_by(2).collect();
        let measurement = query
            .split("FROM \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("{what}: no FROM in {query}"));
        let (tags, fields) = written
            .get(measurement)
            .unwrap_or_else(|| panic!("{what}: measurement `{measurement}` is not written"));
        for name in quoted.into_iter().filter(|n| *n != measurement) {
            // Quoted names are fields, tags, or the aliases after AS.
            let alias = query.contains(&format!("AS \"{name}\""));
            assert!(
                alias || tags.contains(name) || fields.contains(name),
                "{what}: `{name}` is neither a field nor a tag of `{measurement}` ({query})"
            );
        }
    }
    node.stop();
}

/// victoria-metrics scraping `/metrics/devices` every second with the node's token;
/// killed on drop.
struct Scraper {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Scraper {
    fn start(target_port: u16) -> Scraper {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("scrape.yml");
        std::fs::write(
            &config,
            format!(
                "scrape_configs:\n\
                 - job_name: panoptes-devices\n\
                 \x20 scrape_interval: 1s\n\
                 \x20 metrics_path: /metrics/devices\n\
                 \x20 authorization:\n\
                 \x20   credentials: {TOKEN}\n\
                 \x20 static_configs:\n\
                 \x20 - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = support::free_tcp_port();
        let log = std::fs::File::create(dir.path().join("vm.log")).unwrap();
        let child = Command::new(influx_support::program(
            "victoria-metrics",
            "victoria-metrics",
        ))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!(
            "-storageDataPath={}",
            dir.path().join("data").display()
        ))
        .arg(format!("-promscrape.config={}", config.display()))
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache")
        .arg("-loggerLevel=ERROR")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
        Scraper {
            child,
            port,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("vm.log")).unwrap_or_default()
    }

    /// `/api/v1/<what>` with `params`: the `data` of the answer.
    fn api(&self, what: &str, params: &[(&str, &str)]) -> Option<Value> {
        let mut request = ureq::get(&format!("http://127.0.0.1:{}/api/v1/{what}", self.port))
            .timeout(Duration::from_secs(10));
        for (k, v) in params {
            request = request.query(k, v);
        }
        let _ = ureq::get(&format!(
            "http://127.0.0.1:{}/internal/force_flush",
            self.port
        ))
        .timeout(Duration::from_secs(10))
        .call();
        let answer: Value = request.call().ok()?.into_json().ok()?;
        Some(answer["data"].clone())
    }

    /// The series matching `selector`, as label maps.
    fn series(&self, selector: &str) -> Vec<Value> {
        self.api("series", &[("match[]", selector), ("start", "0")])
            .and_then(|d| d.as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn victoria_metrics_scrapes_the_demo_switch() {
    let (env, mut node) = demo_node();
    scrape_with_rates(&env, &mut node);
    let vm = Scraper::start(env.http_port());
    let start = Instant::now();
    let want = [
        "interface_bits_in",
        "interface_bits_in_total",
        "interface_oper_state",
        "status_interface_polling_status",
    ];
    loop {
        let counts: Vec<usize> = want
            .iter()
            .map(|name| {
                vm.series(&format!("{name}{{job=\"panoptes-devices\"}}"))
                    .len()
            })
            .collect();
        if counts == [INTERFACES, INTERFACES, INTERFACES, 1] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "VictoriaMetrics holds {counts:?} series of {want:?}; its log:\n{}",
            vm.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let series = vm.series("interface_bits_in{interface_name=\"Gi0/1\"}");
    assert_eq!(series.len(), 1, "{series:?}");
    let labels = &series[0];
    assert_eq!(labels["resource_endpoint"], "127.0.0.1");
    assert_eq!(labels["instance"], format!("127.0.0.1:{}", env.http_port()));

    // Every query of the Prometheus dashboard finds data there (the latest samples may
    // take a moment to become searchable).
    for (what, expr) in prometheus_dashboard_queries() {
        let start = Instant::now();
        loop {
            let answer = match expr.strip_prefix("label_values(") {
                Some(_) => {
                    let (name, labels) = names_in(&expr);
                    let label = labels.last().unwrap();
                    let series = vm.series(&name);
                    let found = series
                        .iter()
                        .any(|s| s[label].as_str().is_some_and(|v| !v.is_empty()));
                    found.then_some(()).ok_or(Value::from(series))
                }
                None => vm
                    .api("query", &[("query", &expr)])
                    .map_or(Err(Value::Null), |d| {
                        match d["result"].as_array().is_some_and(|r| !r.is_empty()) {
                            true => Ok(()),
                            false => Err(d),
                        }
                    }),
            };
            match answer {
                Ok(()) => break,
                Err(answer) if start.elapsed() > Duration::from_secs(30) => {
                    panic!("{what}: `{expr}` finds nothing in VictoriaMetrics: {answer}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
    node.stop();
}

/// The scrape of a large fleet, in process: `PROM_SCRAPE_DEVICES` (default 1000) devices of
/// 48 interfaces each (49 groups a poll, as the demo switch's), appended to a topic log,
/// scraped whole. Prints the time, the bytes and the peak RSS.
/// `cargo nextest run --release --test prometheus_devices --run-ignored only`
#[test]
#[ignore = "a benchmark: prints figures"]
fn large_fleet_scrape_bytes_and_time() {
    use panoptes::bus::{Bus, Message};
    use panoptes::fleet::Location;
    use std::sync::Arc;

    let devices: usize = std::env::var("PROM_SCRAPE_DEVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = panoptes_storage::Store::open(&dir.path().join("data")).unwrap();
    let bus = Bus::new(store, 1);
    let topic = "local-processed";
    let metric_names = [
        "bits_in",
        "bits_out",
        "total_packets_in",
        "total_packets_out",
        "unicast_packets_in",
        "unicast_packets_out",
        "multicast_packets_in",
        "multicast_packets_out",
        "broadcast_packets_in",
        "broadcast_packets_out",
        "errors_in",
        "errors_out",
        "discards_in",
        "discards_out",
        "errors_frame",
        "errors_crc",
        "errors_giants",
    ];
    let resource = |d: usize| {
        serde_json::json!({"resource_site": "local", "resource_class": "network",
            "resource_subclass": "switch", "resource_type": "cisco",
            "resource_id": format!("sw{d:05}"), "resource_endpoint": format!("10.0.{}.{}", d / 250, d % 250),
            "resource_metadata": {}, "resource_plugin": "p", "resource_creation_timestamp": 1.0})
    };
    let group = |d: usize, i: usize| {
        let mut metrics = Vec::new();
        for (n, name) in metric_names.iter().enumerate() {
            metrics.push(serde_json::json!({"metric_name": name, "metric_type": "counter",
                "metric_value": 1_000_000_000u64 * (n as u64 + 1) + i as u64, "metric_creation_timestamp": 1.0}));
            metrics.push(
                serde_json::json!({"metric_name": name, "metric_type": "gauge",
                "metric_value": 1234.5 + n as f64, "metric_creation_timestamp": 1.0}),
            );
        }
        for name in [
            "admin_state",
            "oper_state",
            "oper_admin_state_mismatch",
            "speed",
            "mtu",
        ] {
            metrics.push(
                serde_json::json!({"metric_name": name, "metric_type": "gauge",
                "metric_value": 1, "metric_creation_timestamp": 1.0}),
            );
        }
        serde_json::json!({"metrics_group_type": "interface", "metrics_group_interval": 60,
            "metrics_group_creation_timestamp": 1.0, "metrics_group_schema_version": "0.2",
            "resource": resource(d),
            "dimensions": [
                {"dimension_name": "interface_name", "dimension_value": format!("Gi0/{i}")},
                {"dimension_name": "alias", "dimension_value": format!("port {i}")},
                {"dimension_name": "description", "dimension_value": format!("GigabitEthernet0/{i}")},
                {"dimension_name": "media", "dimension_value": "ethernetCsmacd"}],
            "metrics": metrics})
    };
    let mut fleet: Vec<(Arc<str>, Vec<Location>)> = Vec::new();
    let mut topic_bytes = 0;
    for d in 0..devices {
        let mut messages = Vec::new();
        for i in 0..=48 {
            let value = if i == 48 {
                serde_json::json!({"metrics_group_type": "status", "metrics_group_interval": 60,
                    "metrics_group_creation_timestamp": 1.0, "metrics_group_schema_version": "0.2",
                    "resource": resource(d), "dimensions": [],
                    "metrics": [{"metric_name": "interface_polling_status", "metric_type": "gauge",
                        "metric_value": 0, "metric_creation_timestamp": 1.0}]})
            } else {
                group(d, i)
            };
            let value = serde_json::to_vec(&value).unwrap();
            topic_bytes += value.len();
            messages.push(Message {
                key: format!("sw{d:05}"),
                partition_key: format!("sw{d:05}"),
                value,
            });
        }
        let landed = bus.publish(topic, messages, 0).unwrap();
        let (partition, first_offset) = landed[0].unwrap();
        fleet.push((
            Arc::from(format!("sw{d:05}")),
            vec![Location {
                topic: Arc::from(topic),
                partition,
                first_offset,
                count: 49,
            }],
        ));
    }
    let rss_before = support::rss_kb(std::process::id());
    let spool = panoptes::http::devices::spool::Spool::new(dir.path().to_path_buf());
    let started = Instant::now();
    let mut first_byte = None;
    let mut bytes = 0u64;
    let stats =
        panoptes::http::devices::scrape(&bus, &[topic.to_owned()], &fleet, spool, |piece| {
            first_byte.get_or_insert_with(|| started.elapsed());
            bytes += piece.len() as u64;
            true
        })
        .unwrap();
    let took = started.elapsed();
    assert_eq!(stats.groups, 49 * devices as u64);
    assert_eq!(stats.bytes, bytes);
    eprintln!(
        "scrape of {devices} devices ({} MB of groups in the log): {} MB of text in {:.2} s \
         (first byte after {:.2} s), {:.1} MB/s; RSS {} MB before, peak {} MB",
        topic_bytes >> 20,
        bytes >> 20,
        took.as_secs_f64(),
        first_byte.unwrap_or_default().as_secs_f64(),
        bytes as f64 / 1e6 / took.as_secs_f64(),
        rss_before >> 10,
        support::peak_rss_kb(std::process::id()) >> 10,
    );
}
