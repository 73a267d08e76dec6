//! The real node under storage faults, on a real file system:
//!
//! - its data directory on a small tmpfs that the test fills up: `/ready` turns 503
//!   with the store's reason while `/health` stays 200 and the node runs on, producers
//!   get KAFKA_STORAGE_ERROR, the pipeline counts its failed publishes, and once the
//!   test frees the space the node is ready again by itself, with every acknowledged
//!   record intact;
//! - `storage.durability = "fsync"` with `fdatasync` made to fail (a preloaded shim that
//!   fails it with EIO for files under `topics/` once a flag file exists): the node logs
//!   the path and errno and exits with status 74 instead of acknowledging anything more;
//!   restarted, it has every record acknowledged before.
//!
//! These tests mount a tmpfs and build a shared object with `cc`: they need root and a C
//! compiler, and fail (never skip) without them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use panoptes_storage::testing::Tmpfs;
use support::kafka;
use support::NodeEnv;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `/ready` until `want(status, body)`, failing with the log if the node exits or
/// the limit passes.
fn wait_ready(
    env: &NodeEnv,
    node: &mut support::Node,
    limit: Duration,
    what: &str,
    want: impl Fn(u16, &str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        if let Ok((status, body)) = env.http_get("/ready") {
            if want(status, &body) {
                return body;
            }
        }
        if let Some(exit) = node.child.try_wait().unwrap() {
            panic!(
                "node exited ({exit}) waiting for {what}; log:\n{}",
                node.log_text()
            );
        }
        assert!(
            start.elapsed() < limit,
            "no {what} within {limit:?}; log:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of an unlabelled series on `/metrics`.
fn metric(env: &NodeEnv, name: &str) -> f64 {
    let (_, text) = env.http_get("/metrics").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} on /metrics"))
}

/// The value of one labelled series (`name{label="value"}`) on `/metrics`, 0 if absent.
fn labelled(env: &NodeEnv, series: &str) -> f64 {
    let (_, text) = env.http_get("/metrics").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every series of `name` on `/metrics`, whatever its labels.
fn metric_sum(env: &NodeEnv, name: &str) -> f64 {
    let (_, text) = env.http_get("/metrics").unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_full_disk_makes_the_node_not_ready_until_space_is_back() {
    let fs = Tmpfs::mount(64);
    let mut env = NodeEnv::demo(1);
    // The tests produce to a topic of their own, created on first use.
    env.set("PANOPTES__KAFKA__AUTO_CREATE_TOPICS", "true");
    env.set(
        "PANOPTES__DATA_DIR",
        fs.path().join("data").to_str().unwrap(),
    );
    let mut node = env.start();
    wait_ready(
        &env,
        &mut node,
        Duration::from_secs(60),
        "/ready 200",
        |s, _| s == 200,
    );
    let rt = runtime();
    let mut c = rt.block_on(kafka::connect(env.kafka_port()));
    let mut acked = Vec::new();
    for i in 0..3 {
        let value = format!("before-{i}");
        let (code, offset, _) = rt
            .block_on(kafka::produce(&mut c, "acked", &value))
            .unwrap();
        assert_eq!((code, offset), (0, i));
        acked.push((i, value));
    }
    // `process` durability: nothing is fsynced for an acknowledgement.
    assert_eq!(metric(&env, "panoptes_store_fsyncs_total"), 0.0);

    let filler = fs.fill("filler");
    let body = wait_ready(
        &env,
        &mut node,
        Duration::from_secs(30),
        "/ready 503",
        |s, _| s == 503,
    );
    let reason: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reason = reason["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.starts_with("storage: No space left on device (os error 28) writing topics/"),
        "{body}"
    );
    assert_eq!(env.http_get("/health").unwrap().0, 200);
    // Larger than what is left of the segment's last page.
    let refused = "refused".repeat(20_000);
    let (code, offset, message) = rt
        .block_on(kafka::produce(&mut c, "acked", &refused))
        .unwrap();
    assert_eq!((code, offset), (56, -1), "{message:?}");
    assert_eq!(
        message.as_deref(),
        Some(
            "No space left on device (os error 28) writing topics/acked/0/00000000000000000000.log"
        )
    );
    assert!(metric_sum(&env, "panoptes_publish_errors_total") >= 1.0);
    assert!(metric(&env, "panoptes_store_write_errors_total") >= 2.0);
    // Still failing a few checks later, and still alive.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(env.http_get("/ready").unwrap().0, 503);
    assert!(
        node.child.try_wait().unwrap().is_none(),
        "{}",
        node.log_text()
    );

    std::fs::remove_file(filler).unwrap();
    wait_ready(
        &env,
        &mut node,
        Duration::from_secs(30),
        "/ready 200 again",
        |s, _| s == 200,
    );
    let (code, offset, _) = rt
        .block_on(kafka::produce(&mut c, "acked", "after"))
        .unwrap();
    assert_eq!((code, offset), (0, 3));
    acked.push((3, "after".to_owned()));
    assert_eq!(rt.block_on(kafka::fetch(&mut c, "acked")), acked);
    // Both changes of health are counted by the time /ready says so (counted where they
    // happen: failing may happen more than once while the disk fills, a small write can
    // still fit), and the refused produce.
    for series in [
        "panoptes_store_health_changes_total{to=\"writes_failing\"}",
        "panoptes_store_health_changes_total{to=\"ok\"}",
        "panoptes_kafka_produce_refused_total{reason=\"storage\"}",
    ] {
        assert!(labelled(&env, series) >= 1.0, "{series} on /metrics");
    }
    drop(c);
    let status = node.stop();
    assert!(status.success(), "{status}");
    // After a restart too.
    let mut node = env.start();
    wait_ready(
        &env,
        &mut node,
        Duration::from_secs(60),
        "/ready 200",
        |s, _| s == 200,
    );
    let mut c = rt.block_on(kafka::connect(env.kafka_port()));
    assert_eq!(rt.block_on(kafka::fetch(&mut c, "acked")), acked);
    drop(c);
    node.stop();
}

/// Fails `fdatasync` with EIO for files under `topics/` while the file named by
/// `PANOPTES_TEST_FAIL_FSYNC_FLAG` exists.
const FSYNC_SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fdatasync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *flag = getenv("PANOPTES_TEST_FAIL_FSYNC_FLAG");
    if (flag && access(flag, F_OK) == 0) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        if (n > 0) {
            path[n] = 0;
            if (strstr(path, "/topics/")) {
                errno = EIO;
                return -1;
            }
        }
    }
    return real(fd);
}
"#;

/// The log without its terminal colour codes (`ESC [ ... m`).
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn build_fsync_shim(dir: &Path) -> PathBuf {
    let source = dir.join("failfsync.c");
    let shim = dir.join("libfailfsync.so");
    std::fs::write(&source, FSYNC_SHIM).unwrap();
    let cc = support::program(
        "cc",
        "install a C compiler (Debian: `apt-get install -y gcc`)",
    );
    let output = Command::new(cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&shim)
        .arg(&source)
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cc failed to build the fsync shim: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    shim
}

#[test]
fn a_failed_fsync_stops_the_node_with_exit_status_74() {
    let mut env = NodeEnv::demo(1);
    // The tests produce to a topic of their own, created on first use.
    env.set("PANOPTES__KAFKA__AUTO_CREATE_TOPICS", "true");
    let shim = build_fsync_shim(env.dir.path());
    let flag = env.dir.path().join("fail-fsync");
    env.set("PANOPTES__STORAGE__DURABILITY", "fsync");
    env.set("LD_PRELOAD", shim.to_str().unwrap());
    env.set("PANOPTES_TEST_FAIL_FSYNC_FLAG", flag.to_str().unwrap());
    let mut node = env.start();
    wait_ready(
        &env,
        &mut node,
        Duration::from_secs(60),
        "/ready 200",
        |s, _| s == 200,
    );
    let rt = runtime();
    let mut c = rt.block_on(kafka::connect(env.kafka_port()));
    let (code, offset, _) = rt
        .block_on(kafka::produce(&mut c, "acked", "before"))
        .unwrap();
    assert_eq!((code, offset), (0, 0));
    // `fsync` durability: the acknowledgements waited for fdatasyncs.
    assert!(metric(&env, "panoptes_store_fsyncs_total") >= 1.0);

    std::fs::write(&flag, b"").unwrap();
    // The produce (or the pipeline's next publish) meets the failed fdatasync: the
    // produce is answered with the error, or not at all if the node is already gone.
    match rt.block_on(kafka::produce(&mut c, "acked", "refused")) {
        Ok((code, _, message)) => assert_eq!(code, 56, "{message:?}"),
        Err(e) => eprintln!("the node closed the connection: {e}"),
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the node did not stop after a failed fdatasync; log:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = without_colours(&node.log_text());
    assert_eq!(status.code(), Some(74), "{log}");
    assert!(
        log.contains("fdatasync of topics/") && log.contains("Input/output error (os error 5)"),
        "the log names the file and the error:\n{log}"
    );
    assert!(log.contains("errno=5"), "the log carries the errno:\n{log}");
    assert!(
        log.contains("panoptes: storage failed, restart needed (exit status 74)"),
        "{log}"
    );
    drop(c);

    // Restarted (as a service manager would) with fsync working again: what was
    // acknowledged is there.
    std::fs::remove_file(&flag).unwrap();
    let mut node = env.start();
    wait_ready(
        &env,
        &mut node,
        Duration::from_secs(60),
        "/ready 200",
        |s, _| s == 200,
    );
    let mut c = rt.block_on(kafka::connect(env.kafka_port()));
    let records = rt.block_on(kafka::fetch(&mut c, "acked"));
    assert_eq!(
        records.first(),
        Some(&(0, "before".to_owned())),
        "{records:?}"
    );
    drop(c);
    let status = node.stop();
    assert!(status.success(), "{status}");
}
