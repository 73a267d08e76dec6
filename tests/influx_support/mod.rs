//! Real InfluxDB 1.x and VictoriaMetrics servers for the sink's tests, each on a free
//! loopback port with its data in a temporary directory, started and stopped by the test.
//! A missing server binary fails the test with the command that installs it.
//!
//! Also: what the topic says InfluxDB must hold, computed from the metrics-group JSON
//! without the sink's encoder, so the tests check the encoder rather than repeat it.

#![allow(dead_code)]

pub mod node;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Stored or expected points: (series key, seconds) -> field values.
pub type Rows = BTreeMap<(String, i64), BTreeMap<String, f64>>;

/// The path of a server program; fails the test with how to install it.
pub fn program(name: &str, package: &str) -> PathBuf {
    crate::support::program(
        name,
        &format!("these tests need a real server: `apt-get install -y {package}` (Debian/Ubuntu)"),
    )
}

use crate::support::free_tcp_port as free_port;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    InfluxDb1,
    VictoriaMetrics,
}

/// One server process; killed on drop.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
    /// HTTPS with this certificate and key (VictoriaMetrics only).
    pub tls: Option<(PathBuf, PathBuf)>,
    agent: ureq::Agent,
}

impl Server {
    pub fn victoria_metrics() -> Server {
        Server::new(Kind::VictoriaMetrics)
    }

    pub fn influxdb() -> Server {
        Server::new(Kind::InfluxDb1)
    }

    /// VictoriaMetrics serving HTTPS with `cert` and `key` (for `localhost`).
    pub fn victoria_metrics_tls(cert: &std::path::Path, key: &std::path::Path) -> Server {
        Server::with(
            Kind::VictoriaMetrics,
            Some((cert.to_path_buf(), key.to_path_buf())),
        )
    }

    fn new(kind: Kind) -> Server {
        Server::with(kind, None)
    }

    fn with(kind: Kind, tls: Option<(PathBuf, PathBuf)>) -> Server {
        let mut agent = ureq::AgentBuilder::new();
        if let Some((cert, _)) = &tls {
            let config =
                panoptes::tls::client_config(panoptes::tls::Trust::Public(Some(("ca", cert))))
                    .unwrap();
            agent = agent.tls_config(config);
        }
        let mut server = Server {
            kind,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            starts: 0,
            tls,
            agent: agent.build(),
        };
        server.start();
        server
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.starts))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts (or restarts) the server on its port and data directory; returns once it
    /// answers.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "server already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let mut command = match self.kind {
            Kind::VictoriaMetrics => {
                let mut c = Command::new(program("victoria-metrics", "victoria-metrics"));
                c.arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
                    .arg(format!(
                        "-storageDataPath={}",
                        self.dir.path().join("data").display()
                    ))
                    // The conformance fixture is from 2018.
                    .arg("-retentionPeriod=100y")
                    // Read what was just written: no query latency offset, no cache.
                    .arg("-search.latencyOffset=0s")
                    .arg("-search.disableCache")
                    .arg("-loggerLevel=ERROR");
                if let Some((cert, key)) = &self.tls {
                    c.arg("-tls")
                        .arg(format!("-tlsCertFile={}", cert.display()))
                        .arg(format!("-tlsKeyFile={}", key.display()));
                }
                c
            }
            Kind::InfluxDb1 => {
                let config = self.dir.path().join("influxdb.conf");
                if !config.exists() {
                    std::fs::write(&config, influxdb_config(self.dir.path(), self.port)).unwrap();
                }
                let mut c = Command::new(program("influxd", "influxdb"));
                c.arg("run").arg("-config").arg(&config);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.kind));
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60));
    }

    fn wait_ready(&mut self, limit: Duration) {
        let path = match self.kind {
            Kind::VictoriaMetrics => "/health",
            Kind::InfluxDb1 => "/ping",
        };
        let start = Instant::now();
        loop {
            let answered = self
                .agent
                .get(&format!("{}{path}", self.url()))
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok();
            if answered {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{:?} exited at start ({status}):\n{}",
                        self.kind,
                        self.log()
                    );
                }
            }
            if start.elapsed() > limit {
                panic!(
                    "{:?} did not answer within {limit:?}:\n{}",
                    self.kind,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM and wait (bounded) for the process to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// VictoriaMetrics: make what was written visible to exports.
    pub fn flush(&self) {
        if self.kind == Kind::VictoriaMetrics {
            let _ = self
                .agent
                .get(&format!("{}/internal/force_flush", self.url()))
                .timeout(Duration::from_secs(10))
                .call();
        }
    }

    /// InfluxQL query (`epoch=s`), the `results` JSON.
    pub fn query(&self, db: &str, q: &str) -> Value {
        let r = self
            .agent
            .get(&format!("{}/query", self.url()))
            .query("db", db)
            .query("epoch", "s")
            .query("q", q)
            .timeout(Duration::from_secs(30))
            .call()
            .unwrap_or_else(|e| panic!("query `{q}` failed: {e}"));
        r.into_json().unwrap()
    }

    /// InfluxDB 1.x: every row of a measurement as (series key, timestamp) -> fields.
    pub fn influx_rows(&self, db: &str, measurement: &str) -> Rows {
        let v = self.query(db, &format!("SELECT * FROM \"{measurement}\" GROUP BY *"));
        let mut rows = BTreeMap::new();
        let Some(series) = v["results"][0]["series"].as_array() else {
            return rows;
        };
        for s in series {
            let mut tags: Vec<(String, String)> = s["tags"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| v.as_str().is_some_and(|v| !v.is_empty()))
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            tags.sort();
            let key = series_key(measurement, &tags);
            let columns: Vec<&str> = s["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            for row in s["values"].as_array().unwrap() {
                let row = row.as_array().unwrap();
                let time = row[0].as_i64().unwrap();
                let fields: BTreeMap<String, f64> = columns
                    .iter()
                    .zip(row)
                    .skip(1)
                    .filter_map(|(c, v)| v.as_f64().map(|f| (c.to_string(), f)))
                    .collect();
                rows.insert((key.clone(), time), fields);
            }
        }
        rows
    }

    /// VictoriaMetrics: every sample of metrics named `<measurement>_...` as
    /// (series key, timestamp) -> fields, plus how many samples there were (to see
    /// duplicates).
    pub fn vm_rows(&self, measurements: &[&str]) -> (Rows, usize) {
        self.vm_rows_between(measurements, 0.0, None)
    }

    /// [`Self::vm_rows`] of the samples from `start` to `end` (seconds, both included).
    pub fn vm_rows_between(
        &self,
        measurements: &[&str],
        start: f64,
        end: Option<f64>,
    ) -> (Rows, usize) {
        self.flush();
        let pattern = measurements
            .iter()
            .map(|m| format!("{m}_.*"))
            .collect::<Vec<_>>()
            .join("|");
        let mut form = vec![
            ("match[]", format!("{{__name__=~\"{pattern}\"}}")),
            ("start", format!("{start}")),
        ];
        if let Some(end) = end {
            form.push(("end", format!("{end}")));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut body = String::new();
        std::io::Read::read_to_string(
            &mut self
                .agent
                .post(&format!("{}/api/v1/export", self.url()))
                .timeout(Duration::from_secs(30))
                .send_form(&form)
                .unwrap()
                .into_reader(),
            &mut body,
        )
        .unwrap();
        let mut rows: Rows = BTreeMap::new();
        let mut samples = 0;
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let metric = v["metric"].as_object().unwrap();
            let name = metric["__name__"].as_str().unwrap();
            let (measurement, field) = measurements
                .iter()
                .find_map(|m| {
                    name.strip_prefix(&format!("{m}_"))
                        .map(|f| (m.to_string(), f.to_string()))
                })
                .unwrap();
            // `db` is VictoriaMetrics' own label for the v1 database.
            let mut tags: Vec<(String, String)> = metric
                .iter()
                .filter(|(k, _)| *k != "__name__" && *k != "db")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            tags.sort();
            let key = series_key(&measurement, &tags);
            let values = v["values"].as_array().unwrap();
            let stamps = v["timestamps"].as_array().unwrap();
            for (value, ms) in values.iter().zip(stamps) {
                samples += 1;
                let time = ms.as_i64().unwrap() / 1000;
                rows.entry((key.clone(), time))
                    .or_default()
                    .insert(field.clone(), value.as_f64().unwrap());
            }
        }
        (rows, samples)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// InfluxDB 1.x: loopback only, data under `dir`, no usage reporting, quiet.
fn influxdb_config(dir: &Path, port: u16) -> String {
    let rpc = free_port();
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
  logging-enabled = false
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
[continuous_queries]
  enabled = false
"#,
        dir = dir.display()
    )
}

/// `measurement,k=v,...`: how a series is named in these tests (not line protocol).
pub fn series_key(measurement: &str, tags: &[(String, String)]) -> String {
    let mut key = measurement.to_string();
    for (k, v) in tags {
        key.push_str(&format!(",{k}={v}"));
    }
    key
}

/// What InfluxDB must hold for one metrics-group JSON, by spec §6 read independently:
/// ((series key, seconds), fields). Assumes measurement-safe group types (`interface`,
/// `status`).
pub fn expected_point(group: &Value) -> ((String, i64), BTreeMap<String, f64>) {
    let measurement = group["metrics_group_type"].as_str().unwrap();
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for d in group["dimensions"].as_array().unwrap() {
        tags.insert(
            d["dimension_name"].as_str().unwrap().into(),
            d["dimension_value"].as_str().unwrap().into(),
        );
    }
    for k in [
        "resource_class",
        "resource_subclass",
        "resource_type",
        "resource_endpoint",
        "resource_site",
    ] {
        tags.insert(k.into(), group["resource"][k].as_str().unwrap().into());
    }
    let tags: Vec<(String, String)> = tags.into_iter().collect();
    let mut fields = BTreeMap::new();
    for m in group["metrics"].as_array().unwrap() {
        let kind = m["metric_type"].as_str().unwrap();
        if kind == "gauge" || kind == "counter" {
            fields.insert(
                format!("{}__{kind}", m["metric_name"].as_str().unwrap()),
                m["metric_value"].as_f64().unwrap(),
            );
        }
    }
    let time = group["metrics_group_creation_timestamp"]
        .as_f64()
        .unwrap()
        .trunc() as i64;
    ((series_key(measurement, &tags), time), fields)
}

/// The expected rows of many groups; a later group with the same series and second
/// overwrites fields, as InfluxDB does.
pub fn expected_rows<'a>(groups: impl IntoIterator<Item = &'a Value>) -> Rows {
    let mut rows: Rows = BTreeMap::new();
    for g in groups {
        let (key, fields) = expected_point(g);
        rows.entry(key).or_default().extend(fields);
    }
    rows
}

/// Compares stored rows with expected ones; returns a description of the differences
/// (empty when `stored` holds every expected row with the same fields).
pub fn missing_or_different(expected: &Rows, stored: &Rows) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, fields) in expected {
        match stored.get(key) {
            None => problems.push(format!("missing {key:?}")),
            Some(got) if got != fields => problems.push(format!(
                "different {key:?}: expected {fields:?}, stored {got:?}"
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Polls `check` until it returns an empty problem list; panics with the last problems.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> Vec<String>) {
    let start = Instant::now();
    loop {
        let problems = check();
        if problems.is_empty() {
            return;
        }
        if start.elapsed() > limit {
            panic!(
                "{what}: still {} problems after {limit:?}; first ones:\n{}",
                problems.len(),
                problems
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A value from Prometheus text (`name` or `name{labels}` exactly), summed over series
/// when `name` has no labels and several match.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| *series == name || series.starts_with(&format!("{name}{{")))
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// Every InfluxQL query of the shipped Grafana dashboard (panels and variables), with
/// Grafana's macros and variables filled in for "all of the last hour".
pub fn dashboard_queries() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/resources/grafana/panoptes-interfaces.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let fill = |q: &str| {
        q.replace("$timeFilter", "time > now() - 1h")
            .replace("$__interval", "10s")
            .replace("$site", ".*")
            .replace("$device", ".*")
            .replace("$interface", ".*")
    };
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap().to_string();
            queries.push((title, fill(t["query"].as_str().unwrap())));
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let name = format!("variable {}", v["name"].as_str().unwrap());
            queries.push((name, fill(v["query"].as_str().unwrap())));
        }
    }
    queries
}
