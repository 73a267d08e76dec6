//! Installed and run as a service would be: from a directory with no config (the built-in
//! defaults), and from the Debian package (`dpkg -i`, the unit checked by
//! `systemd-analyze verify`, the binary started as the unit starts it: the package's
//! user, the packaged config, from `/`), then removed with its config kept.
//!
//! Both run the demo switch on its default address (127.0.0.1:10161, which the shipped
//! discovery file names): nextest runs this file's tests one at a time (test group
//! `demo-port`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_panoptes");

/// A node started by a test, with the addresses it reported.
struct Started {
    child: Child,
    http: String,
    log: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Started {
    /// Spawns `cmd` (its stderr is the log) and waits for "panoptes is running".
    fn spawn(mut cmd: Command) -> Started {
        cmd.env_remove("RUST_LOG")
            .env("PANOPTES__HTTP__LISTEN", "127.0.0.1:0")
            .env("PANOPTES__KAFKA__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the node");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut started = Started {
            child,
            http: String::new(),
            log: rx,
            lines: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while started.http.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match started.log.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("panoptes is running") {
                        started.http = field(&line, "http=");
                    }
                    started.lines.push(line);
                }
                Err(_) => panic!(
                    "no \"panoptes is running\" within 30 s:\n{}",
                    started.lines.join("\n")
                ),
            }
        }
        started
    }

    fn log_text(&mut self) -> String {
        while let Ok(line) = self.log.try_recv() {
            self.lines.push(line);
        }
        self.lines.join("\n")
    }

    fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.http);
        match ureq::get(&url).timeout(Duration::from_secs(5)).call() {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while self.get("/ready").0 != 200 {
            if let Some(exit) = self.child.try_wait().unwrap() {
                panic!("the node exited ({exit}):\n{}", self.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "/ready not 200 within 60 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first metrics groups on `local-processed`, read through the node's CLI.
    fn first_groups(&self, cli: &Path, n: usize) -> Vec<Value> {
        self.first_records(cli, "local-processed", n)
    }

    /// The first `n` records of `topic`, read with `panoptes topic tail` from `/`.
    fn first_records(&self, cli: &Path, topic: &str, n: usize) -> Vec<Value> {
        let mut tail = Command::new(cli);
        tail.args([
            "topic",
            "tail",
            topic,
            "--from-beginning",
            "--max",
            &n.to_string(),
        ])
        .env("PANOPTES__HTTP__LISTEN", &self.http)
        .current_dir("/");
        let out = run_bounded(tail, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log_text();
                assert!(status.success(), "{status}:\n{log}");
                return log;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("no clean stop within 30 s:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key=value` of a log line.
fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_default()
        .to_string()
}

fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Output is drained while the command runs: a large one never blocks on a full pipe.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

fn assert_interface_groups(groups: &[Value]) {
    let interfaces = groups
        .iter()
        .filter(|g| g["metrics_group_type"] == "interface")
        .count();
    assert_eq!(interfaces, 48, "one group per port of the demo switch");
    assert!(groups
        .iter()
        .all(|g| g["resource"]["resource_site"] == "local"));
}

#[test]
fn runs_from_an_empty_directory_on_the_built_in_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("run").current_dir(dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("PANOPTES") {
            cmd.env_remove(k);
        }
    }
    let mut node = Started::spawn(cmd);
    node.wait_ready();
    let groups = node.first_groups(Path::new(BIN), 49);
    assert_interface_groups(&groups);
    // The demo listens for traps too, on its documented port.
    let mut trap = Command::new("snmptrap");
    trap.args([
        "-v",
        "2c",
        "-c",
        "public",
        "127.0.0.1:10162",
        "",
        "1.3.6.1.6.3.1.1.5.3",
    ])
    .args(["1.3.6.1.2.1.2.2.1.1.3", "i", "3"])
    .env("MIBS", "")
    .env("MIBDIRS", "/nonexistent");
    let sent = run_bounded(trap, Duration::from_secs(30));
    assert!(
        sent.status.success(),
        "snmptrap: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let traps = node.first_records(Path::new(BIN), "local-traps", 1);
    assert_eq!(traps[0]["trap_name"], "linkDown", "{traps:?}");
    assert_eq!(traps[0]["resource"]["resource_id"], "demo-switch-48");
    let log = node.stop();
    assert!(
        log.contains("conf/plugins is not in the current directory: using the plugin files built into the binary"),
        "{log}"
    );
    // The store went where the defaults say: `data` in the working directory.
    assert!(dir.path().join("data").is_dir());
}

fn dpkg(args: &[&str]) -> String {
    let out = Command::new("dpkg").args(args).output().expect("dpkg");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dpkg {args:?}:\n{text}");
    text
}

/// Purges the package whatever happens to the test (it installs into the real system).
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["-P", "panoptes"]).output();
    }
}

#[test]
fn the_debian_package_installs_runs_as_its_user_and_removes_cleanly() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = tempfile::tempdir().unwrap();
    let build = Command::new(repo.join("packaging/build-deb.sh"))
        .args(["--binary", BIN, "--out"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let deb = String::from_utf8_lossy(&build.stdout).trim().to_string();
    assert!(
        deb.ends_with("_amd64.deb") || deb.ends_with(".deb"),
        "{deb}"
    );

    let _purge = Purge;
    dpkg(&["-i", &deb]);
    for path in [
        "/usr/bin/panoptes",
        "/lib/systemd/system/panoptes.service",
        "/etc/panoptes/panoptes.toml",
        "/etc/panoptes/plugins/polling/interface.panoptes-plugin",
        "/usr/share/man/man1/panoptes.1.gz",
        "/usr/share/bash-completion/completions/panoptes",
    ] {
        assert!(Path::new(path).exists(), "{path} installed");
    }
    let conffiles = dpkg(&["--status", "panoptes"]);
    assert!(
        conffiles.contains(" /etc/panoptes/panoptes.toml "),
        "{conffiles}"
    );
    assert!(
        conffiles.contains(" /etc/panoptes/secrets.toml "),
        "{conffiles}"
    );
    // The data directory and the secrets file belong to the package's user.
    let stat = |path: &str| {
        let out = Command::new("stat")
            .args(["-c", "%U:%G %a", path])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(stat("/var/lib/panoptes"), "panoptes:panoptes 750");
    assert_eq!(stat("/etc/panoptes/secrets.toml"), "root:panoptes 640");

    let verify = Command::new("systemd-analyze")
        .args(["verify", "/lib/systemd/system/panoptes.service"])
        .output()
        .expect("systemd-analyze");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "systemd-analyze verify:\n{said}");
    assert!(!said.contains("panoptes.service"), "{said}");

    // As the unit runs it: the package's user, the packaged config, from /; the demo
    // turned on (the packaged config has it off) so that there is a device to poll.
    // setpriv execs the binary as the user, as systemd's User= does (no session process
    // in between, so the signals reach the node).
    let as_user = [
        "--reuid=panoptes",
        "--regid=panoptes",
        "--init-groups",
        "--",
    ];
    let check = Command::new("setpriv")
        .args(as_user)
        .args(["/usr/bin/panoptes", "--config"])
        .args(["/etc/panoptes/panoptes.toml", "config", "check"])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(as_user)
        .args(["/usr/bin/panoptes", "--config"])
        .args(["/etc/panoptes/panoptes.toml", "run"])
        .current_dir("/")
        .env("PANOPTES__DEMO__ENABLED", "true");
    for (k, _) in std::env::vars() {
        if k.starts_with("PANOPTES") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PANOPTES__DEMO__ENABLED", "true");
    let mut node = Started::spawn(cmd);
    node.wait_ready();
    let groups = node.first_groups(Path::new("/usr/bin/panoptes"), 49);
    assert_interface_groups(&groups);
    let log = node.stop();
    assert!(log.contains("data_dir=/var/lib/panoptes"), "{log}");
    let owner = stat("/var/lib/panoptes/db");
    assert!(owner.starts_with("panoptes:panoptes"), "{owner}");

    // Removed: the binary goes, the configuration stays (as Debian does until a purge).
    dpkg(&["-r", "panoptes"]);
    assert!(!Path::new("/usr/bin/panoptes").exists());
    assert!(!Path::new("/lib/systemd/system/panoptes.service").exists());
    assert!(Path::new("/etc/panoptes/panoptes.toml").exists());
    dpkg(&["-P", "panoptes"]);
    assert!(!Path::new("/etc/panoptes").exists());
    assert!(!Path::new("/var/lib/panoptes").exists());
}
