//! Scale-out: three nodes of one site share a simulated fleet of 300 devices through a
//! real Kafka cluster, by its consumer-group membership. Each scenario runs real
//! processes on loopback: the broker, `panoptes simulate`, and three `panoptes run`.
//!
//! What is checked, from the `<site>-processed` topic the nodes publish to (every metrics
//! group is one series' sample; a device's series are polled together):
//! - steady state: every series is sampled once per interval, never twice (no two samples
//!   of a series closer than half an interval, over the whole run);
//! - `kill -9` of the node running discovery: within one session timeout plus an interval
//!   or two every device is polled again, by one node, and another node runs discovery;
//! - restart of that node: it gets its share back, and still nothing is polled twice;
//! - the InfluxDB sink (Tansu run): the three nodes' sinks write every point once, to one
//!   VictoriaMetrics: the series and samples of a steady window are exactly the topic's.

mod influx_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::tansu::Tansu;
use support::{Node, NodeEnv, Simulator};

const DEVICES: usize = 300;
const INTERFACES: u32 = 2;
/// Polling interval, seconds.
const INTERVAL: u64 = 5;
const SESSION: u64 = 6;
const HEARTBEAT: u64 = 2;
/// Work partitions (`cluster.partitions`).
const PARTITIONS: u32 = 32;
const SITE: &str = "local";

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A member node: no demo device, no embedded broker, the fleet's plugins, cluster on.
fn member(name: &str, brokers: &str, plugins: &[PathBuf; 3]) -> NodeEnv {
    let mut env = NodeEnv::demo(INTERVAL);
    env.set("PANOPTES__DEMO__ENABLED", "false");
    env.set("PANOPTES__KAFKA__LISTEN", "");
    env.set("PANOPTES__KAFKA__BROKERS", brokers);
    env.set("PANOPTES__CLUSTER__ENABLED", "true");
    env.set("PANOPTES__CLUSTER__NODE_ID", name);
    env.set("PANOPTES__CLUSTER__PARTITIONS", &PARTITIONS.to_string());
    env.set("PANOPTES__CLUSTER__SINK_PARTITIONS", "6");
    env.set("PANOPTES__CLUSTER__SESSION_TIMEOUT", &SESSION.to_string());
    env.set(
        "PANOPTES__CLUSTER__HEARTBEAT_INTERVAL",
        &HEARTBEAT.to_string(),
    );
    env.set("PANOPTES__CLUSTER__REBALANCE_TIMEOUT", &SESSION.to_string());
    env.set("PANOPTES__PLUGINS__SCAN_INTERVAL", "30");
    for (kind, dir) in ["DISCOVERY", "ENRICHMENT", "POLLING"].iter().zip(plugins) {
        env.set(&format!("PANOPTES__PLUGINS__{kind}"), dir.to_str().unwrap());
    }
    env
}

/// The node's `/api/cluster` (Null while it is not answering yet).
fn cluster_status(env: &NodeEnv) -> Value {
    match env.http_get("/api/cluster") {
        Ok((200, body)) => serde_json::from_str(&body).unwrap(),
        Ok((code, body)) => panic!("/api/cluster answered {code}: {body}"),
        Err(_) => Value::Null,
    }
}

/// Waits until every node sees the same stable work group of `n` members that together
/// own every device; returns the statuses.
fn wait_stable(
    envs: &[&NodeEnv],
    nodes: &mut [&mut Node],
    n: usize,
    devices: usize,
    limit: Duration,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let statuses: Vec<Value> = envs.iter().map(|e| cluster_status(e)).collect();
        let generations: BTreeSet<i64> = statuses
            .iter()
            .map(|s| s["work"]["generation"].as_i64().unwrap_or(-1))
            .collect();
        let stable = statuses.iter().all(|s| {
            s["work"]["state"] == "stable"
                && s["work"]["members"].as_array().map_or(0, Vec::len) == n
                && s["devices_total"] == devices
        });
        let owned: u64 = statuses
            .iter()
            .map(|s| s["devices_owned"].as_u64().unwrap_or(0))
            .sum();
        if stable && generations.len() == 1 && owned == devices as u64 {
            return statuses;
        }
        for node in nodes.iter_mut() {
            if let Some(exit) = node.child.try_wait().unwrap() {
                panic!("a node exited ({exit}); log:\n{}", node.log_text());
            }
        }
        assert!(
            start.elapsed() < limit,
            "the work group did not settle with {n} members owning all {devices} devices within {limit:?}: {}",
            serde_json::to_string_pretty(&statuses).unwrap()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every metrics group the nodes published, read from the cluster as it grows.
struct Processed {
    runtime: tokio::runtime::Runtime,
    cluster: panoptes::kafka::ExternalCluster,
    next: Vec<u64>,
    groups: Vec<Value>,
}

impl Processed {
    fn new(brokers: &str) -> Processed {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cluster = panoptes::kafka::ExternalCluster::start(
            vec![brokers.to_owned()],
            "cluster-test-reader",
            Default::default(),
            None,
        )
        .unwrap();
        Processed {
            runtime,
            cluster,
            next: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Reads what was added since the last call: every partition up to its high
    /// watermark at the time. (Under load Tansu answers many Fetches that may wait 1 ms
    /// with no records though they are there; the client then asks again allowing a
    /// wait, and a read that still comes back empty is tried again here.)
    fn read(&mut self) {
        let topic = format!("{SITE}-processed");
        let Ok(n) = self.runtime.block_on(self.cluster.partitions(&topic)) else {
            return;
        };
        self.next.resize(n as usize, 0);
        for p in 0..n {
            let end = self
                .runtime
                .block_on(self.cluster.high_watermark(&topic, p))
                .unwrap_or_else(|e| panic!("the end of {topic}/{p}: {e}"));
            let mut empty = 0;
            while self.next[p as usize] < end {
                let from = self.next[p as usize];
                let items = self
                    .runtime
                    .block_on(self.cluster.fetch(&topic, p, from, 5_000))
                    .unwrap_or_else(|e| panic!("reading {topic}/{p} from {from}: {e}"));
                let Some((last, _)) = items.last() else {
                    empty += 1;
                    assert!(
                        empty < 100,
                        "{topic}/{p} answers nothing at {from} (its end: {end})"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                self.next[p as usize] = last + 1;
                for (_, (_, value)) in items {
                    self.groups.push(serde_json::from_slice(&value).unwrap());
                }
            }
        }
    }

    /// Each series' sample times (seconds), sorted, by device.
    fn series(&self) -> BTreeMap<String, BTreeMap<String, Vec<f64>>> {
        let mut out: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
        for g in &self.groups {
            let device = g["resource"]["resource_id"].as_str().unwrap().to_owned();
            let mut dims: Vec<String> = g["dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    format!(
                        "{}={}",
                        d["dimension_name"].as_str().unwrap(),
                        d["dimension_value"].as_str().unwrap()
                    )
                })
                .collect();
            dims.sort();
            let key = format!(
                "{}|{}",
                g["metrics_group_type"].as_str().unwrap(),
                dims.join(",")
            );
            out.entry(device)
                .or_default()
                .entry(key)
                .or_default()
                .push(g["metrics_group_creation_timestamp"].as_f64().unwrap());
        }
        for series in out.values_mut() {
            for times in series.values_mut() {
                times.sort_by(f64::total_cmp);
            }
        }
        out
    }

    /// Waits (at most `limit`) until each of the `devices` has a sample from the last two
    /// intervals.
    fn wait_all_polled(&mut self, devices: usize, limit: Duration) {
        wait_until(limit, "every device polled", || {
            self.read();
            self.polled_after(now_s() - INTERVAL as f64 * 2.0).len() == devices
        });
    }

    /// Devices with a sample after `t` (seconds).
    fn polled_after(&self, t: f64) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|g| g["metrics_group_creation_timestamp"].as_f64().unwrap() > t)
            .map(|g| g["resource"]["resource_id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// No series was sampled twice in one interval: every two consecutive samples are at
/// least half an interval apart.
fn never_twice(processed: &Processed) {
    let mut problems = Vec::new();
    for (device, series) in processed.series() {
        for (key, times) in series {
            for w in times.windows(2) {
                if w[1] - w[0] < INTERVAL as f64 / 2.0 {
                    problems.push(format!(
                        "{device} {key}: samples at {:.3} and {:.3}",
                        w[0], w[1]
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} samples closer than half an interval (a device polled twice); first: {:?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
}

/// In `[from, to)`, every device's every series has between `min` and `max` samples.
fn samples_between(processed: &Processed, from: f64, to: f64, min: usize, max: usize) {
    let series = processed.series();
    assert_eq!(series.len(), DEVICES, "devices in the topic");
    let mut problems = Vec::new();
    let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
    for (device, series) in &series {
        for (key, times) in series {
            let n = times.iter().filter(|&&t| t >= from && t < to).count();
            *histogram.entry(n).or_default() += 1;
            if n < min || n > max {
                let near: Vec<String> = times
                    .iter()
                    .filter(|&&t| t >= from - 10.0 && t < to + 10.0)
                    .map(|t| format!("{:+.1}", t - from))
                    .collect();
                problems.push(format!(
                    "{device} {}: {n} samples, at {near:?} s from the start",
                    &key[..key.len().min(40)]
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "between {from:.1} and {to:.1} ({:.1} intervals) every series should have {min}..={max} samples; \
         series by samples: {histogram:?}; {} do not: {:?}",
        (to - from) / INTERVAL as f64,
        problems.len(),
        &problems[..problems.len().min(6)]
    );
}

/// For each device in the partitions `lost`, its first sample after `t`.
fn first_polls_after(processed: &Processed, lost: &BTreeSet<u32>, t: f64) -> Vec<f64> {
    processed
        .series()
        .into_iter()
        .filter(|(device, _)| lost.contains(&panoptes::cluster::partition_of(device, PARTITIONS)))
        .filter_map(|(_, series)| {
            series
                .values()
                .flatten()
                .copied()
                .filter(|&x| x > t)
                .reduce(f64::min)
        })
        .collect()
}

/// A process's CPU time so far (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    ticks
        / String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .unwrap()
}

/// Successful polls a node has made, from its `/metrics`.
fn polls(env: &NodeEnv) -> f64 {
    let metrics = env.http_get("/metrics").unwrap().1;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("panoptes_polls_total{outcome=\"succeeded\"} "))
        .map_or(0.0, |v| v.parse().unwrap())
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    start.elapsed()
}

/// The benchmark's plugins (discovery of `addrs`, interface enrichment and polling)
/// under `dir`.
fn bench_plugins(dir: &std::path::Path, addrs: &[std::net::SocketAddr]) -> [std::path::PathBuf; 3] {
    panoptes::bench::write_plugins(
        dir,
        SITE,
        addrs,
        INTERVAL,
        panoptes::bench::BenchPlugin::Interface,
    )
    .unwrap()
}

/// The whole scenario against the cluster at `brokers`; with `sink`, every node's
/// InfluxDB sink writes to it.
fn three_nodes_share_the_fleet(brokers: &str, sink: Option<&influx_support::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(dir.path(), "127.1.0.1", DEVICES, INTERFACES);
    let plugins = bench_plugins(dir.path(), &sim.addrs);
    let mut envs: Vec<NodeEnv> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| member(n, brokers, &plugins))
        .collect();
    if let Some(server) = sink {
        for env in &mut envs {
            env.set("PANOPTES__INFLUXDB__URL", &server.url());
            env.set("PANOPTES__INFLUXDB__DATABASE", "panoptes");
            env.set("PANOPTES__INFLUXDB__MAX_EMIT_INTERVAL", "1");
        }
    }
    let mut nodes: Vec<Node> = envs.iter().map(NodeEnv::start).collect();
    let settle = Duration::from_secs(90);
    let statuses = {
        let (a, b) = nodes.split_at_mut(1);
        let (b, c) = b.split_at_mut(1);
        wait_stable(
            &envs.iter().collect::<Vec<_>>(),
            &mut [&mut a[0], &mut b[0], &mut c[0]],
            3,
            DEVICES,
            settle,
        )
    };
    let discovering: Vec<usize> = (0..3)
        .filter(|&i| statuses[i]["runs_discovery"] == true)
        .collect();
    assert_eq!(
        discovering.len(),
        1,
        "exactly one node runs discovery: {statuses:?}"
    );
    for s in &statuses {
        let owned = s["devices_owned"].as_u64().unwrap();
        assert!(
            (50..=150).contains(&owned),
            "a fair share of 300 devices: {s}"
        );
    }

    // Steady state: every device polled, then a window of four intervals.
    let mut processed = Processed::new(brokers);
    processed.wait_all_polled(DEVICES, Duration::from_secs(60));
    let steady_from = now_s() + 0.5;
    std::thread::sleep(Duration::from_secs(INTERVAL * 4 + 1));
    let steady_to = steady_from + (INTERVAL * 4) as f64;
    processed.read();
    samples_between(&processed, steady_from, steady_to, 3, 5);
    never_twice(&processed);
    if let Some(server) = sink {
        sink_wrote_each_point_once(server, &processed, steady_from, steady_to);
    }

    // kill -9 the node running discovery.
    let victim = discovering[0];
    let killed_at = now_s();
    let pid = nodes[victim].child.id().to_string();
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    let _ = nodes[victim].child.wait();
    let bound = SESSION + INTERVAL * 2 + 10;
    let took = wait_until(
        Duration::from_secs(bound),
        "every device polled again after the kill",
        || {
            processed.read();
            processed.polled_after(killed_at + SESSION as f64).len() == DEVICES
        },
    );
    // The victim's devices: those in the partitions it owned.
    let lost: BTreeSet<u32> = statuses[victim]["work"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect();
    let taken_over = first_polls_after(&processed, &lost, killed_at);
    assert!(!taken_over.is_empty(), "the victim owned devices: {lost:?}");
    println!(
        "failover: the victim's {} devices first polled by another node {:.1} to {:.1} s after kill -9; \
         every device polled again {:.1} s after it (session timeout {SESSION} s, heartbeat {HEARTBEAT} s, interval {INTERVAL} s)",
        taken_over.len(),
        taken_over.iter().copied().reduce(f64::min).unwrap() - killed_at,
        taken_over.iter().copied().reduce(f64::max).unwrap() - killed_at,
        took.as_secs_f64()
    );
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    {
        let envs2: Vec<&NodeEnv> = survivors.iter().map(|&i| &envs[i]).collect();
        let (lo, hi) = nodes.split_at_mut(survivors[1]);
        let statuses = wait_stable(
            &envs2,
            &mut [&mut lo[survivors[0]], &mut hi[0]],
            2,
            DEVICES,
            settle,
        );
        let discovering = statuses
            .iter()
            .filter(|s| s["runs_discovery"] == true)
            .count();
        assert_eq!(
            discovering, 1,
            "one survivor took discovery over: {statuses:?}"
        );
    }
    never_twice(&processed);

    // Restart it (same data directory and node id): it gets its share back.
    nodes[victim] = envs[victim].start();
    let restarted_at = now_s();
    {
        let (a, b) = nodes.split_at_mut(1);
        let (b, c) = b.split_at_mut(1);
        let statuses = wait_stable(
            &envs.iter().collect::<Vec<_>>(),
            &mut [&mut a[0], &mut b[0], &mut c[0]],
            3,
            DEVICES,
            settle,
        );
        let back = statuses[victim]["devices_owned"].as_u64().unwrap();
        assert!(
            back >= 50,
            "the restarted node owns its share again: {}",
            statuses[victim]
        );
    }
    let rejoined_at = now_s();
    std::thread::sleep(Duration::from_secs(INTERVAL * 4 + 1));
    processed.read();
    // After the rebalance has settled: once per interval again.
    let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        samples_between(
            &processed,
            rejoined_at + INTERVAL as f64 * 2.0,
            rejoined_at + (INTERVAL * 4) as f64,
            1,
            3,
        )
    }));
    if let Err(e) = settled {
        diagnose(&processed, &nodes);
        std::panic::resume_unwind(e);
    }
    never_twice(&processed);
    println!(
        "restart: the node rejoined {:.1} s after it started",
        rejoined_at - restarted_at
    );
    let metrics = envs[victim].http_get("/metrics").unwrap().1;
    for name in [
        "panoptes_cluster_members{group=\"panoptes-local\"} 3",
        "panoptes_cluster_stable{group=\"panoptes-local\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == name),
            "/metrics lacks {name:?}"
        );
    }
    for node in nodes {
        node.stop();
    }
}

/// On a failure: how far each partition of the processed topic was read, and the tail of
/// every node's log, so a CI failure can be understood without rerunning it.
fn diagnose(processed: &Processed, nodes: &[Node]) {
    let topic = format!("{SITE}-processed");
    for (p, next) in processed.next.iter().enumerate() {
        let hw = processed
            .runtime
            .block_on(processed.cluster.high_watermark(&topic, p as u32));
        eprintln!("partition {p}: read up to {next}, high watermark {hw:?}");
    }
    for node in nodes {
        let log = node.log_text();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!(
            "---- {}:\n{}",
            node.log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// The sinks of the three nodes wrote every point of `[from, to)` exactly once: the
/// server holds the topic's series and samples for that window, no more.
fn sink_wrote_each_point_once(
    server: &influx_support::Server,
    processed: &Processed,
    from: f64,
    to: f64,
) {
    let window: Vec<&Value> = processed
        .groups
        .iter()
        .filter(|g| {
            let t = g["metrics_group_creation_timestamp"].as_f64().unwrap();
            t >= from.ceil() && t < to.floor()
        })
        .collect();
    let expected = influx_support::expected_rows(window.iter().copied());
    let fields: usize = expected.values().map(BTreeMap::len).sum();
    let in_window = |rows: &influx_support::Rows| -> influx_support::Rows {
        rows.iter()
            .filter(|((_, t), _)| (*t as f64) >= from.ceil() && (*t as f64) < to.floor())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    // The window's whole seconds, both ends included by the export.
    let (first, last) = (from.ceil(), to.floor() - 1.0);
    let stored = || server.vm_rows_between(&["interface", "status"], first, Some(last + 0.999));
    influx_support::eventually(
        Duration::from_secs(60),
        "the window's points in VictoriaMetrics",
        || influx_support::missing_or_different(&expected, &in_window(&stored().0)),
    );
    let (rows, samples) = stored();
    let rows = in_window(&rows);
    let series = |rows: &influx_support::Rows| -> BTreeSet<String> {
        rows.keys().map(|(s, _)| s.clone()).collect()
    };
    assert_eq!(series(&rows), series(&expected), "series in the window");
    assert_eq!(
        samples, fields,
        "samples VictoriaMetrics holds for the window vs the topic's fields: more means a point written twice"
    );
    println!(
        "sink: {} series, {} points, {fields} samples in {:.0} s, each written once",
        series(&expected).len(),
        expected.len(),
        to.floor() - from.ceil()
    );
}

/// Benchmark (prints figures; asserts only that nothing is polled twice): the CPU a
/// member spends on group membership, polls/s and CPU per node with 1, 2 and 3 nodes
/// sharing one fleet (CPU-bound on a small machine: the point is that the sum holds),
/// and the failover time (kill -9 to the first poll of the dead node's devices by
/// another). Run it on a release build:
///
/// `cargo nextest run --release --test cluster --run-ignored only --no-capture`
/// (`PANOPTES_BENCH_DEVICES`, default 1000 devices of 2 interfaces every 5 s).
#[test]
#[ignore = "benchmark: cargo nextest run --release --test cluster --run-ignored only --no-capture"]
fn benchmark_one_two_three_nodes() {
    let devices: usize = std::env::var("PANOPTES_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(dir.path(), "127.1.0.1", devices, INTERFACES);
    let plugins = bench_plugins(dir.path(), &sim.addrs);

    // Membership's own CPU: two nodes with no devices, one a member of the groups.
    let idle_dir = dir.path().join("idle");
    let empty = bench_plugins(&idle_dir, &[]);
    let idle_cpu = |cluster: bool| -> f64 {
        let tansu = Tansu::start(dir.path());
        let mut env = member("idle", &tansu.addr(), &empty);
        env.set("PANOPTES__CLUSTER__ENABLED", &cluster.to_string());
        let mut node = env.start();
        env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
        std::thread::sleep(Duration::from_secs(SESSION));
        let (c0, t0) = (cpu_seconds(node.child.id()), Instant::now());
        std::thread::sleep(Duration::from_secs(30));
        let used = (cpu_seconds(node.child.id()) - c0) / t0.elapsed().as_secs_f64();
        node.stop();
        used * 1000.0
    };
    let (on, off) = (idle_cpu(true), idle_cpu(false));
    println!(
        "membership: an idle member uses {on:.2} ms CPU/s, the same node outside a cluster {off:.2} ms/s: \
         {:.2} ms/s for two groups' heartbeats (every {HEARTBEAT} s)",
        on - off
    );

    let window = INTERVAL * 6;
    let mut table = Vec::new();
    for n in 1..=3 {
        let tansu = Tansu::start(dir.path());
        let envs: Vec<NodeEnv> = (1..=n)
            .map(|i| member(&format!("n{i}"), &tansu.addr(), &plugins))
            .collect();
        let mut nodes: Vec<Node> = envs.iter().map(NodeEnv::start).collect();
        let statuses = wait_stable(
            &envs.iter().collect::<Vec<_>>(),
            &mut nodes.iter_mut().collect::<Vec<_>>(),
            n,
            devices,
            Duration::from_secs(120),
        );
        let mut processed = Processed::new(&tansu.addr());
        processed.wait_all_polled(devices, Duration::from_secs(120));
        let (p0, t0) = (envs.iter().map(polls).sum::<f64>(), Instant::now());
        let c0: Vec<f64> = nodes.iter().map(|n| cpu_seconds(n.child.id())).collect();
        std::thread::sleep(Duration::from_secs(window));
        let elapsed = t0.elapsed().as_secs_f64();
        let rate = (envs.iter().map(polls).sum::<f64>() - p0) / elapsed;
        let cpu: Vec<String> = nodes
            .iter()
            .zip(&c0)
            .map(|(n, c)| format!("{:.2}", (cpu_seconds(n.child.id()) - c) / elapsed))
            .collect();
        processed.read();
        never_twice(&processed);
        table.push(format!(
            "| {n} | {rate:.1} | {:.1} | {} |",
            devices as f64 / INTERVAL as f64,
            cpu.join(", ")
        ));
        if n == 3 {
            let victim = 2;
            let lost: BTreeSet<u32> = statuses[victim]["work"]["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap() as u32)
                .collect();
            let killed_at = now_s();
            let pid = nodes[victim].child.id().to_string();
            Command::new("kill").args(["-KILL", &pid]).status().unwrap();
            let _ = nodes[victim].child.wait();
            wait_until(
                Duration::from_secs(120),
                "the dead node's devices polled",
                || {
                    processed.read();
                    first_polls_after(&processed, &lost, killed_at).len()
                        == statuses[victim]["devices_owned"].as_u64().unwrap() as usize
                },
            );
            let firsts = first_polls_after(&processed, &lost, killed_at);
            println!(
                "failover: the dead node's {} devices first polled by another node {:.1} to {:.1} s after kill -9 \
                 (session timeout {SESSION} s, heartbeat {HEARTBEAT} s, interval {INTERVAL} s)",
                firsts.len(),
                firsts.iter().copied().reduce(f64::min).unwrap() - killed_at,
                firsts.iter().copied().reduce(f64::max).unwrap() - killed_at,
            );
            never_twice(&processed);
        }
        drop(nodes);
    }
    println!("{devices} devices, 2 interfaces each, every {INTERVAL} s, over {window} s:");
    println!("| nodes | polls/s | polls/s asked | CPU per node (cores) |\n|---|---|---|---|");
    for row in table {
        println!("{row}");
    }
}

#[test]
fn three_nodes_share_a_fleet_through_tansu_and_write_each_point_once() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start(dir.path());
    let vm = influx_support::Server::victoria_metrics();
    three_nodes_share_the_fleet(&tansu.addr(), Some(&vm));
    // The broker saw the groups: it is alive, and it is not ours.
    assert!(
        !tansu.log_text().contains("panicked"),
        "{}",
        tansu.log_text()
    );
}

#[test]
fn three_nodes_share_a_fleet_through_a_fourth_nodes_embedded_broker() {
    // The cluster: a node of another site with no plugins, only its broker.
    let mut hub = NodeEnv::demo(60);
    hub.set("PANOPTES__SITE", "hub");
    hub.set("PANOPTES__DEMO__ENABLED", "false");
    let empty = hub.dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).unwrap();
    for kind in ["DISCOVERY", "ENRICHMENT", "POLLING"] {
        hub.set(
            &format!("PANOPTES__PLUGINS__{kind}"),
            empty.to_str().unwrap(),
        );
    }
    hub.set("PANOPTES__KAFKA__AUTO_CREATE_TOPICS", "true");
    let mut hub_node = hub.start();
    hub.wait_for("/health", 200, Duration::from_secs(30), &mut hub_node);
    three_nodes_share_the_fleet(&format!("127.0.0.1:{}", hub.kafka_port()), None);
    hub_node.stop();
}
