//! Reloading a running node: SIGHUP (and `POST /api/reload`) re-reads the plugin files and
//! the secrets file; the schedule follows the new files and the rate state stays (the
//! first poll after a reload still has its rates). A broken file changes nothing.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{json_lines, Node, NodeEnv};

fn polling_file(env: &NodeEnv) -> std::path::PathBuf {
    env.dir
        .path()
        .join("plugins/polling/interface.panoptes-plugin")
}

fn set_interval(env: &NodeEnv, from: u64, to: u64) {
    let path = polling_file(env);
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replace(
        &format!("execute_frequency = {from}"),
        &format!("execute_frequency = {to}"),
    );
    assert_ne!(text, changed, "the plugin file names its interval");
    std::fs::write(&path, changed).unwrap();
}

fn hangup(node: &Node) {
    let pid = node.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
}

/// Waits until the node's log holds `needle` `times` times.
fn wait_for_log(node: &Node, needle: &str, times: usize) -> String {
    let start = Instant::now();
    loop {
        let log = node.log_text();
        if log.matches(needle).count() >= times {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no `{needle}` (x{times}) in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next `n` metrics groups published.
fn next_groups(env: &NodeEnv, n: usize) -> Vec<Value> {
    let out = env.cli(
        &["topic", "tail", "local-processed", "--max", &n.to_string()],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

fn has_rate(g: &Value) -> bool {
    g["metrics"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["metric_name"] == "bits_in"))
}

fn reloads(env: &NodeEnv, result: &str) -> String {
    let (_, metrics) = env.http_get("/metrics").unwrap();
    let prefix = format!("panoptes_config_reloads_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("none")
        .to_string()
}

#[test]
fn sighup_applies_a_changed_plugin_file_and_keeps_rates_and_a_broken_one_changes_nothing() {
    let env = NodeEnv::demo(2);
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(30), &mut node);
    // Two polls: the second has rates.
    let before = next_groups(&env, 98);
    assert!(
        before
            .iter()
            .any(|g| g["metrics_group_type"] == "interface" && has_rate(g)),
        "rates before the reload"
    );

    set_interval(&env, 2, 3);
    hangup(&node);
    wait_for_log(
        &node,
        "configuration reloaded: 1 discovery, 1 enrichment and 1 polling plugins; discovery runs now",
        1,
    );
    // Polls after the reload follow the new file, and the first of them has its rates:
    // the counters' previous samples were kept.
    let after: Vec<Value> = next_groups(&env, 147)
        .into_iter()
        .filter(|g| g["metrics_group_type"] == "interface" && g["metrics_group_interval"] == 3)
        .collect();
    assert!(
        after.len() >= 48,
        "{} groups on the new schedule",
        after.len()
    );
    let without: Vec<&Value> = after.iter().filter(|g| !has_rate(g)).collect();
    assert!(
        without.is_empty(),
        "{} interface groups after the reload lack their rates, e.g. {}",
        without.len(),
        without[0]
    );
    assert_eq!(reloads(&env, "ok"), "1");

    // A broken file: the reload says why and the node keeps its configuration.
    let path = polling_file(&env);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("resource_class = \"network\"", "resource_class = \"network"),
    )
    .unwrap();
    hangup(&node);
    let log = wait_for_log(&node, "configuration reload failed", 1);
    assert!(
        log.contains("reload refused, the running configuration stays: plugin file"),
        "{log}"
    );
    assert!(log.contains("[main] resource_filter"), "{log}");
    let still: Vec<Value> = next_groups(&env, 49);
    assert!(
        still
            .iter()
            .filter(|g| g["metrics_group_type"] == "interface")
            .all(|g| g["metrics_group_interval"] == 3 && has_rate(g)),
        "the running configuration stays"
    );
    assert_eq!(reloads(&env, "failed"), "1");
    assert_eq!(reloads(&env, "ok"), "1");
    node.stop();
}

fn post(env: &NodeEnv, path: &str, token: Option<&str>) -> (u16, String) {
    let url = format!("http://127.0.0.1:{}{path}", env.http_port());
    let mut request = ureq::post(&url).timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    match request.call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("POST {path}: {e}"),
    }
}

#[test]
fn post_api_reload_needs_the_token() {
    // Without http.token: refused, SIGHUP named instead.
    let env = NodeEnv::demo(60);
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let (code, body) = post(&env, "/api/reload", None);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "reloading over HTTP needs http.token to be set; send the node SIGHUP instead"
    );
    node.stop();

    let mut env = NodeEnv::demo(60);
    env.set("PANOPTES__HTTP__TOKEN", "a-long-test-token");
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let (code, _) = post(&env, "/api/reload", None);
    assert_eq!(code, 401);
    let (code, body) = post(&env, "/api/reload", Some("a-long-test-token"));
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["reloaded"], true);
    assert_eq!(
        answer["summary"],
        "configuration reloaded: 1 discovery, 1 enrichment and 1 polling plugins; discovery runs now"
    );
    node.stop();
}

#[test]
fn sighup_rereads_the_secrets_file() {
    let mut env = NodeEnv::demo(2);
    let secrets = env.dir.path().join("secrets.toml");
    std::fs::write(&secrets, "[local]\ncommunity = \"not-the-demo-one\"\n").unwrap();
    env.set("PANOPTES__SNMP__SECRETS_FILE", secrets.to_str().unwrap());
    // Quick timeouts (the demo drops requests with another community than "public"), and
    // enrichment every 3 s, so that it runs again soon after the reload.
    for kind in ["enrichment", "polling"] {
        let path = env
            .dir
            .path()
            .join(format!("plugins/{kind}/interface.panoptes-plugin"));
        let text = std::fs::read_to_string(&path).unwrap();
        let quick: String = text
            .lines()
            .map(|l| match l.split_once(" = ") {
                Some(("timeout", _)) => "timeout = 1".to_string(),
                Some(("retries", _)) => "retries = 0".to_string(),
                Some(("execute_frequency", _)) if kind == "enrichment" => {
                    "execute_frequency = 3".to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(text, quick);
        std::fs::write(&path, quick).unwrap();
    }
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    let log = wait_for_log(&node, "plugin run failed", 1);
    assert!(
        !log.contains("not-the-demo-one"),
        "the community is never logged"
    );
    std::fs::write(&secrets, "[local]\ncommunity = \"public\"\n").unwrap();
    hangup(&node);
    wait_for_log(&node, "configuration reloaded", 1);
    let groups = next_groups(&env, 49);
    assert!(
        groups
            .iter()
            .any(|g| g["metrics_group_type"] == "interface"),
        "interfaces polled with the community of the reloaded secrets file"
    );
    node.stop();
}
