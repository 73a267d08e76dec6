//! The HTTP listener's security, with real peers: curl over HTTPS with and without the
//! bearer token, the node's own CLI over HTTPS, a refused non-loopback bind, and the
//! bounded long polls of the records API.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::NodeEnv;

const TOKEN: &str = "t0ken-for-the-api-4711";

/// curl's status code and body for `path` over HTTPS, with extra arguments.
fn curl(port: u16, cert: &Path, path: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new(support::program("curl", "curl"))
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(cert)
        .args(extra)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn wait_ready(env: &NodeEnv, cert: &Path, node: &mut support::Node) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if curl(env.http_port(), cert, "/ready", &[]).0 == 200 {
            return;
        }
        if let Some(exit) = node.child.try_wait().unwrap() {
            panic!("node exited ({exit}):\n{}", node.log_text());
        }
        assert!(Instant::now() < deadline, "not ready:\n{}", node.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn https_with_a_bearer_token() {
    let mut env = NodeEnv::demo(2);
    let (cert, key) = support::self_signed(env.dir.path());
    env.set("PANOPTES__HTTP__TOKEN", TOKEN);
    env.set("PANOPTES__HTTP__TLS_CERT", cert.to_str().unwrap());
    env.set("PANOPTES__HTTP__TLS_KEY", key.to_str().unwrap());
    let mut node = env.start();
    wait_ready(&env, &cert, &mut node);
    let port = env.http_port();

    // Probes stay open.
    let (code, body) = curl(port, &cert, "/health", &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    // Everything else needs the token, and says so without echoing what was sent.
    let bearer = format!("Authorization: Bearer {TOKEN}");
    for path in ["/metrics", "/api/topics", "/api/resources"] {
        let (code, body) = curl(port, &cert, path, &[]);
        assert_eq!(code, 401, "{path}: {body}");
        assert!(
            body.contains("needs `Authorization: Bearer <http.token>`"),
            "{body}"
        );
        let (code, body) = curl(port, &cert, path, &["-H", "Authorization: Bearer guess"]);
        assert_eq!(code, 401, "{path}: {body}");
        assert!(!body.contains("guess"), "{body}");
        let (code, _) = curl(port, &cert, path, &["-H", &bearer]);
        assert_eq!(code, 200, "{path} with the token");
    }
    let headers = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-D", "-", "--cacert"])
        .arg(&cert)
        .arg(format!("https://localhost:{port}/metrics"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&headers.stdout)
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"panoptes\""),
        "{}",
        String::from_utf8_lossy(&headers.stdout)
    );
    let (_, metrics) = curl(port, &cert, "/metrics", &["-H", &bearer]);
    assert!(
        metrics.contains("panoptes_http_requests_rejected_total{reason=\"no_token\"} 4")
            && metrics.contains("panoptes_http_requests_rejected_total{reason=\"wrong_token\"} 3"),
        "{metrics}"
    );

    // Plain HTTP on the HTTPS port gets nothing useful.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{port}/health"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");

    // The node's own CLI finds the token and trusts the node's certificate.
    let records = env.tail("local-processed", 2, Duration::from_secs(30));
    assert_eq!(records.len(), 2);

    // Nothing the node wrote holds the token.
    let log = node.log_text();
    assert!(!log.contains(TOKEN), "the log holds the token");
    assert!(node.stop().success());
}

#[test]
fn an_open_listener_beyond_loopback_is_refused_unless_asked_for() {
    let mut env = NodeEnv::demo(2);
    env.set("PANOPTES__HTTP__LISTEN", "0.0.0.0:0");
    let out = env.cli(&["run"], Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "configuration key `http.listen`: 0.0.0.0:0 is not a loopback address and no http.token is set"
        ),
        "{err}"
    );

    env.set("PANOPTES__HTTP__ALLOW_INSECURE", "true");
    let mut node = env.start();
    env.wait_for("/health", 200, Duration::from_secs(30), &mut node);
    assert!(
        node.log_text()
            .contains("the HTTP API listens beyond loopback with no token"),
        "{}",
        node.log_text()
    );
    assert!(node.stop().success());
}

/// A long poll waits for an append and answers as soon as one lands; past
/// `http.max_long_polls` waiting requests, more are answered at once and counted.
#[test]
fn long_polls_are_woken_by_appends_and_bounded() {
    let mut env = NodeEnv::demo(3);
    env.set("PANOPTES__HTTP__MAX_LONG_POLLS", "1");
    let mut node = env.start();
    env.wait_for("/ready", 200, Duration::from_secs(60), &mut node);
    let (_, page) = env
        .http_get("/api/topics/local-processed/records?offset=end")
        .unwrap();
    let end: serde_json::Value = serde_json::from_str(&page).unwrap();
    let end = end["next_offset"].as_u64().unwrap();
    let port = env.http_port();
    let waiter = std::thread::spawn(move || {
        ureq::get(&format!(
            "http://127.0.0.1:{port}/api/topics/local-processed/records?offset={end}&wait_ms=20000"
        ))
        .call()
        .unwrap()
        .into_json::<serde_json::Value>()
        .unwrap()
    });
    // While it waits, a second long poll finds no room and is answered at once.
    std::thread::sleep(Duration::from_millis(500));
    let (code, second) = env
        .http_get(&format!(
            "/api/topics/local-processed/records?offset={end}&wait_ms=20000"
        ))
        .unwrap();
    assert_eq!(code, 200);
    let woke = waiter.join().unwrap();
    assert!(
        !woke["records"].as_array().unwrap().is_empty(),
        "the next poll's records: {woke}"
    );
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert!(second["records"].as_array().is_some());
    let (_, metrics) = env.http_get("/metrics").unwrap();
    assert!(
        metrics.contains("panoptes_http_requests_rejected_total{reason=\"long_polls\"} 1"),
        "{metrics}"
    );
    assert!(node.stop().success());
}
