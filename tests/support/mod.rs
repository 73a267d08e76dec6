//! Helpers for tests that run the real `panoptes` binary.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_panoptes");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A node's environment: its own data dir, ports and plugin directories.
pub struct NodeEnv {
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub snmp_port: u16,
    pub vars: Vec<(String, String)>,
}

impl NodeEnv {
    /// The shipped plugin files, with the polling interval set to `poll_every` seconds and
    /// the demo switch on a free port.
    pub fn demo(poll_every: u64) -> NodeEnv {
        let dir = tempfile::tempdir().unwrap();
        let http_port = free_tcp_port();
        let snmp_port = free_udp_port();
        let plugins = dir.path().join("plugins");
        for kind in ["discovery", "enrichment", "polling"] {
            let from = repo().join("conf/plugins").join(kind);
            let to = plugins.join(kind);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let path = entry.unwrap().path();
                let mut text = std::fs::read_to_string(&path).unwrap();
                if kind == "polling" {
                    text = text.replace("execute_frequency = 15", &format!("execute_frequency = {poll_every}"));
                }
                text = text.replace("\"snmp_port\": \"10161\"", &format!("\"snmp_port\": \"{snmp_port}\""));
                std::fs::write(to.join(path.file_name().unwrap()), text).unwrap();
            }
        }
        let mut env = NodeEnv { dir, http_port, snmp_port, vars: Vec::new() };
        env.set("PANOPTES__DATA_DIR", env.dir.path().join("data").to_str().unwrap());
        env.set("PANOPTES__HTTP__LISTEN", &format!("127.0.0.1:{http_port}"));
        env.set("PANOPTES__DEMO__LISTEN", &format!("127.0.0.1:{snmp_port}"));
        for kind in ["discovery", "enrichment", "polling"] {
            let var = format!("PANOPTES__PLUGINS__{}", kind.to_uppercase());
            env.set(&var, plugins.join(kind).to_str().unwrap());
        }
        env
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_string(), value.to_string()));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(repo()).env_remove("RUST_LOG");
        for (k, v) in std::env::vars() {
            if k.starts_with("PANOPTES") {
                c.env_remove(k);
            }
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    pub fn start(&self) -> Node {
        let log = std::fs::File::create(self.dir.path().join(format!("node-{}.log", self.http_port))).unwrap();
        let child = self
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn panoptes run");
        Node { child, started: Instant::now(), log: self.dir.path().join(format!("node-{}.log", self.http_port)) }
    }

    /// Runs a CLI command with a time limit; returns its output.
    pub fn cli(&self, args: &[&str], limit: Duration) -> Output {
        let mut child = self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                child.kill().ok();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "`panoptes {}` did not finish within {limit:?}; stdout: {} stderr: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn http_get(&self, path: &str) -> Result<(u16, String), String> {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        match ureq::get(&url).timeout(Duration::from_secs(5)).call() {
            Ok(r) => Ok((r.status(), r.into_string().unwrap_or_default())),
            Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string().unwrap_or_default())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Polls `path` until it answers `status`, returning how long that took.
    pub fn wait_for(&self, path: &str, status: u16, limit: Duration, node: &mut Node) -> Duration {
        let start = Instant::now();
        loop {
            if let Ok((code, _)) = self.http_get(path) {
                if code == status {
                    return start.elapsed();
                }
            }
            if let Some(exit) = node.child.try_wait().unwrap() {
                panic!("node exited early ({exit}); log:\n{}", node.log_text());
            }
            if start.elapsed() > limit {
                panic!("{path} did not answer {status} within {limit:?}; log:\n{}", node.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub struct Node {
    pub child: Child,
    pub started: Instant,
    pub log: PathBuf,
}

impl Node {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                panic!("node did not stop within 15 s of SIGTERM; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared").join(rel)
}
