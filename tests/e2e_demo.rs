//! End to end: the real binary on the demo device. Start, wait for `/ready`, read the
//! metrics groups with `topic tail`, see rates on the next interval, restart, and check
//! that topic offsets and resources survived.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{json_lines, NodeEnv};

const SWITCH: &str = "demo-switch-48";

fn metric<'a>(group: &'a Value, name: &str, kind: &str) -> Option<&'a Value> {
    group["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["metric_name"] == name && m["metric_type"] == kind)
        .map(|m| &m["metric_value"])
}

fn dimension<'a>(group: &'a Value, name: &str) -> Option<&'a str> {
    group["dimensions"]
        .as_array()?
        .iter()
        .find(|d| d["dimension_name"] == name)?["dimension_value"]
        .as_str()
}

/// Interface name -> ifIndex, from the demo recording.
fn if_indices() -> std::collections::HashMap<String, u32> {
    let text = std::fs::read_to_string(support::resource("demo/switch48.snmprec")).unwrap();
    text.lines()
        .filter_map(|l| {
            let (oid, rest) = l.split_once('|')?;
            let index = oid.strip_prefix("1.3.6.1.2.1.31.1.1.1.1.")?;
            Some((rest.split_once('|')?.1.to_string(), index.parse().ok()?))
        })
        .collect()
}

/// The simulator moves every counter at a fixed per-OID speed
/// (`simulate::counters::rate_in`): each rate the node publishes must be that speed
/// (bits = 8 x octets), within the few percent that the poll's own timing adds.
fn check_rates_against_the_simulators_slopes(groups: &[Value]) {
    use panoptes::simulate::counters::{rate_in, OCTET_RATE, OTHER_RATE};
    let indices = if_indices();
    let mut checked = 0;
    for g in groups {
        let name = dimension(g, "interface_name").unwrap();
        let index = indices[name];
        for (metric_name, column, factor, range) in [
            ("bits_in", 6, 8, OCTET_RATE),
            ("bits_out", 10, 8, OCTET_RATE),
            ("unicast_packets_in", 7, 1, OTHER_RATE),
            ("broadcast_packets_out", 13, 1, OTHER_RATE),
        ] {
            let oid = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, column, index];
            let want = (factor * rate_in(&oid, range)) as f64;
            let got = metric(g, metric_name, "gauge")
                .and_then(Value::as_f64)
                .unwrap_or_else(|| panic!("{name}: no {metric_name} rate in {g}"));
            let error = (got - want).abs() / want;
            assert!(
                error < 0.05,
                "{name} {metric_name}: published {got}/s, the simulator moves it {want}/s"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} rates checked");
}

#[test]
fn demo_switch_end_to_end_and_restart() {
    let env = NodeEnv::demo(2);
    let mut node = env.start();
    let started = node.started;
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let to_health = started.elapsed();
    env.wait_for("/ready", 200, Duration::from_secs(30), &mut node);
    eprintln!(
        "start -> /health {:?}, start -> /ready {:?}",
        to_health,
        started.elapsed()
    );

    // The first metrics groups: 48 interfaces plus the status group of one poll.
    let groups = env.tail("local-processed", 49, Duration::from_secs(60));
    eprintln!(
        "start -> first 49 metrics groups read {:?}",
        started.elapsed()
    );
    assert_eq!(groups.len(), 49);
    let interfaces: Vec<&Value> = groups
        .iter()
        .filter(|g| g["metrics_group_type"] == "interface")
        .collect();
    assert_eq!(
        interfaces.len(),
        48,
        "one group per interface of the demo switch"
    );
    for g in &groups {
        assert_eq!(g["resource"]["resource_id"], SWITCH);
        assert_eq!(g["metrics_group_schema_version"], "0.2");
        assert_eq!(g["metrics_group_interval"], 2);
        assert!(g["metrics_group_creation_timestamp"].is_f64());
    }
    let status = groups
        .iter()
        .find(|g| g["metrics_group_type"] == "status")
        .expect("status group");
    assert_eq!(
        metric(status, "interface_polling_status", "gauge"),
        Some(&Value::from(0))
    );
    let first = interfaces[0];
    for name in [
        "bits_in",
        "bits_out",
        "total_packets_in",
        "errors_in",
        "discards_out",
        "errors_crc",
    ] {
        assert!(
            metric(first, name, "counter").is_some_and(Value::is_i64),
            "{name} counter in {first}"
        );
    }
    for name in [
        "admin_state",
        "oper_state",
        "mtu",
        "configured_speed",
        "oper_admin_state_mismatch",
    ] {
        assert!(metric(first, name, "gauge").is_some(), "{name} gauge");
    }
    for name in [
        "interface_name",
        "alias",
        "description",
        "media_type",
        "configured_speed",
        "port_speed",
        "parent_interface_name",
    ] {
        assert!(dimension(first, name).is_some(), "{name} dimension");
    }
    assert!(interfaces
        .iter()
        .any(|g| dimension(g, "interface_name") == Some("Gi0/1")));
    assert_eq!(dimension(first, "media_type"), Some("ethernetCsmacd"));

    // One interval later: rates (gauges next to the counters), growing with the counters.
    let deadline = Instant::now() + Duration::from_secs(60);
    let with_rates = loop {
        let groups = env.tail("local-processed", 147, Duration::from_secs(60));
        let rated: Vec<Value> = groups
            .into_iter()
            .filter(|g| metric(g, "bits_in", "gauge").is_some())
            .collect();
        if !rated.is_empty() {
            break rated;
        }
        assert!(Instant::now() < deadline, "no rates within 60 s");
    };
    eprintln!("start -> first rates {:?}", started.elapsed());
    let busy = with_rates
        .iter()
        .filter(|g| {
            metric(g, "bits_in", "gauge")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        })
        .count();
    assert!(
        busy > 0,
        "the simulated counters advance, so some bits_in rate is positive"
    );
    check_rates_against_the_simulators_slopes(&with_rates);

    let resources = env.cli(&["resources", "list", "--json"], Duration::from_secs(20));
    let listed = json_lines(&resources.stdout);
    assert!(
        listed.iter().any(|r| r["resource_id"] == SWITCH),
        "{listed:?}"
    );

    let (code, metrics) = env.http_get("/metrics").unwrap();
    assert_eq!(code, 200);
    for needle in [
        "panoptes_polls_total{outcome=\"succeeded\"}",
        "panoptes_metrics_groups_published_total{topic=\"local-processed\"}",
        "panoptes_plugin_last_run_age_seconds{kind=\"polling\"",
        "panoptes_pool_queue_depth",
        "panoptes_keyspace_keys{keyspace=\"resources\"}",
        "panoptes_topic_bytes{topic=\"local-processed\",partition=\"0\"}",
        "panoptes_snmp_sockets",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle}:\n{metrics}"
        );
    }
    // Where the memory goes, from the node's own counts: the parts add up as documented,
    // and the rate state holds the demo switch's counters.
    let part = |name: &str| -> f64 {
        let prefix = format!("panoptes_memory_bytes{{part=\"{name}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("/metrics lacks memory part {name}:\n{metrics}"))
    };
    let (rss, anon, file) = (part("rss"), part("rss_anon"), part("rss_file"));
    assert!(rss > 1e6 && anon + file <= rss + 1e6, "{rss} {anon} {file}");
    let (heap, rates, other) = (part("heap_in_use"), part("rate_state"), part("heap_other"));
    assert!(rates > 1000.0, "the demo's rate state: {rates}");
    assert_eq!(heap, rates + other);
    assert!(part("allocator_committed") > 0.0);
    assert!(part("allocator_retained") >= 0.0);
    // Bad requests get a clear 4xx and are counted; nothing is stored.
    for (path, code, needle) in [
        (
            "/api/topics/local-processed/records?offset=soon",
            400,
            "offset",
        ),
        (
            "/api/topics/local-processed/records?partition=7",
            400,
            "partition 7",
        ),
        (
            "/api/topics/local-processed/records?max=-1",
            400,
            "bad query string",
        ),
        ("/api/topics/no-such-topic/records", 404, "no topic named"),
    ] {
        let (got, body) = env.http_get(path).unwrap();
        assert_eq!(got, code, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
    }
    let (_, metrics) = env.http_get("/metrics").unwrap();
    assert!(
        metrics.contains("panoptes_http_requests_rejected_total{reason=\"offset\"} 1"),
        "{metrics}"
    );

    let (_, topics) = env.http_get("/api/topics").unwrap();
    let before = high_watermark(&topics, "local-processed");
    assert!(before >= 147);
    // The binary's jemalloc settings are in effect: its background purging thread runs.
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", node.child.id()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(
        threads.iter().any(|t| t == "jemalloc_bg_thd"),
        "no jemalloc background thread among {threads:?}"
    );
    let rss =
        std::fs::read_to_string(format!("/proc/{}/status", node.child.id())).unwrap_or_default();
    eprintln!(
        "node {}",
        rss.lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("VmRSS: ?")
    );
    assert!(node.stop().success(), "clean exit on SIGTERM");

    // Restart without discovery: what it shows comes from the store, not a new discovery.
    let mut env = env;
    let empty = env.dir.path().join("no-discovery");
    std::fs::create_dir_all(&empty).unwrap();
    env.set("PANOPTES__PLUGINS__DISCOVERY", empty.to_str().unwrap());
    env.set("PANOPTES__DEMO__ENABLED", "false");
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let (_, topics) = env.http_get("/api/topics").unwrap();
    let after = high_watermark(&topics, "local-processed");
    assert!(
        after >= before,
        "offsets survived the restart ({after} >= {before})"
    );
    let resources = env.cli(&["resources", "list", "--json"], Duration::from_secs(20));
    assert!(
        json_lines(&resources.stdout)
            .iter()
            .any(|r| r["resource_id"] == SWITCH),
        "resources survived"
    );
    assert_eq!(
        env.tail("local-processed", 49, Duration::from_secs(20))
            .len(),
        49,
        "old records are still readable"
    );
    assert!(node.stop().success());
}

fn high_watermark(topics_json: &str, name: &str) -> u64 {
    let v: Value = serde_json::from_str(topics_json).unwrap();
    v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .map(|t| {
            t["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["high_watermark"].as_u64().unwrap())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn bad_plugin_file_stops_the_node_with_its_name() {
    let env = NodeEnv::demo(2);
    let bad = env
        .dir
        .path()
        .join("plugins/polling/broken.panoptes-plugin");
    std::fs::write(&bad, "[Core]\nName = Broken\nModule = plugin_polling_device_interface_metrics\n[main]\nexecute_frequency = often\nresource_filter = resource_class = \"network\"\n").unwrap();
    let out = env.cli(&["run"], Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.panoptes-plugin")
            && err.contains("execute_frequency")
            && err.contains("often"),
        "{err}"
    );
}

#[test]
fn cli_without_a_node_says_how_to_fix_it() {
    let env = NodeEnv::demo(2);
    let out = env.cli(&["resources", "list"], Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the panoptes node") && err.contains("PANOPTES__HTTP__LISTEN"),
        "{err}"
    );
}

/// With port 0 the node binds a free port itself and says which in its start-up line (in
/// plain text: the log is a file here, not a terminal): a caller (or a test) hands it no
/// port it picked in advance. Every `NodeEnv` node starts so; here the line itself.
#[test]
fn port_zero_listeners_report_the_ports_they_bound() {
    let mut env = NodeEnv::demo(60);
    env.set("PANOPTES__HTTP__LISTEN", "127.0.0.1:0");
    env.set("PANOPTES__KAFKA__LISTEN", "127.0.0.1:0");
    let node = env.start();
    let log = node.log_text();
    let line = support::running_line(&log).unwrap_or_else(|| panic!("no start-up line: {log}"));
    // A log file gets plain text: colours are for terminals.
    assert!(
        !line.contains('\u{1b}'),
        "escape codes in the log file: {line:?}"
    );
    let support::Listening { http, kafka, traps } = support::listening(line);
    assert_eq!(traps, None, "traps are off by default: {line}");
    let kafka = kafka.unwrap_or_else(|| panic!("no Kafka listener in {line:?}"));
    assert!(http.port() != 0 && kafka.port() != 0, "{line}");
    assert_eq!(
        env.listening(),
        support::Listening {
            http,
            kafka: Some(kafka),
            traps: None,
        }
    );
    let health = ureq::get(&format!("http://{http}/health"))
        .timeout(Duration::from_secs(5))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    std::net::TcpStream::connect_timeout(&kafka, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the Kafka listener at {kafka}: {e}"));
    node.stop();
}

/// With the global topic on, a poll's groups go to the site's topic and to the global
/// one, the same groups in the same order (the poll's topics are worked out once and
/// each group is written to each of them).
#[test]
fn with_the_global_topic_on_each_group_goes_to_both_topics() {
    let mut env = NodeEnv::demo(60);
    env.set("PANOPTES__KAFKA__PUBLISH_TO_GLOBAL_TOPIC", "true");
    env.set("PANOPTES__KAFKA__GLOBAL_TOPIC_NAME", "all-sites");
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let site = env.tail("local-processed", 49, Duration::from_secs(60));
    let global = env.tail("all-sites", 49, Duration::from_secs(60));
    assert_eq!(site.len(), 49);
    assert_eq!(global, site);
    assert_eq!(global[0]["resource"]["resource_id"], SWITCH);
}
