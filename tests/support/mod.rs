//! Helpers shared by the tests that talk to net-snmp: locating fixtures and
//! tools, running the tools, and reading their output.

#![allow(dead_code)]

pub mod kafka;
pub mod tansu;

use std::cell::Cell;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use std::time::Instant;

use panoptes::snmp::{Oid, SnmpValue};

/// A file under the project's conformance fixtures (`tests/conformance/`).
pub fn conformance(relative: &str) -> PathBuf {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance")).join(relative);
    assert!(path.exists(), "fixture {} is missing", path.display());
    path
}

/// A file under this crate's `resources/`.
pub fn resource(relative: &str) -> PathBuf {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/resources")).join(relative);
    assert!(path.exists(), "resource {} is missing", path.display());
    path
}

/// The path of a net-snmp program. Fails the test (never skips it) when net-snmp
/// is not installed.
pub fn net_snmp(program: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| {
        panic!(
            "net-snmp program `{program}` not found: install net-snmp \
             (Debian/Ubuntu: `apt-get install -y snmp snmpd`) to run these tests"
        )
    })
}

/// `name` on the PATH or in /usr/sbin, /usr/bin.
fn find_program(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A program the tests need from the system (kcat, python3): its path, or the test
/// fails (never skips) saying how to install it.
pub fn program(name: &str, install: &str) -> PathBuf {
    find_program(name)
        .unwrap_or_else(|| panic!("`{name}` not found: {install} (./scripts/test.sh installs it)"))
}

/// Runs a net-snmp client tool and returns its stdout; fails the test with
/// stderr on a non-zero exit. Bounded to 60 s.
pub async fn run_tool(program: &str, args: &[&str]) -> String {
    let output = run_tool_raw(program, args).await;
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub async fn run_tool_raw(program: &str, args: &[&str]) -> std::process::Output {
    let path = net_snmp(program);
    let mut command = tokio::process::Command::new(&path);
    command
        .args(args)
        // No MIB files: output must depend only on what the agent sent.
        .env("MIBS", "")
        .env("MIBDIRS", "/nonexistent")
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(60), command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot run {}: {e}", path.display()),
        Err(_) => panic!("{program} {args:?} did not finish within 60 s"),
    }
}

/// Output options making net-snmp print numeric OIDs, numeric enums and every
/// string in hex, so values compare exactly.
pub const NUMERIC_OUTPUT: [&str; 4] = ["-On", "-Oe", "-Ox", "-m"];
/// The argument of the trailing `-m` in [`NUMERIC_OUTPUT`].
pub const NO_MIBS: &str = "";

/// One line of net-snmp output, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    pub oid: Oid,
    pub kind: String,
    pub value: String,
}

/// Reads `-On -Ox` output: `.OID = TYPE: value`, where long hex strings wrap
/// onto continuation lines (which never start with a dot).
pub fn parse_output(text: &str) -> Vec<Printed> {
    let mut lines: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        // SNMPv1 snmpwalk ends a walk that reached the end of the MIB with this line.
        if line == "End of MIB" {
            continue;
        }
        match line.split_once(" = ") {
            Some((oid, value)) if oid.starts_with('.') && !oid.contains(' ') => {
                lines.push((oid.to_string(), value.to_string()));
            }
            _ => match lines.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line);
                }
                None => panic!("unexpected net-snmp output line {line:?}"),
            },
        }
    }
    lines
        .into_iter()
        .map(|(oid, value)| {
            let (kind, value) = classify(value.trim());
            Printed {
                oid: oid
                    .parse()
                    .unwrap_or_else(|e| panic!("net-snmp printed a bad OID {oid}: {e}")),
                kind,
                value,
            }
        })
        .collect()
}

fn classify(value: &str) -> (String, String) {
    if value.starts_with("No more variables") {
        return ("endOfMibView".into(), String::new());
    }
    if value.starts_with("No Such Object") {
        return ("noSuchObject".into(), String::new());
    }
    if value.starts_with("No Such Instance") {
        return ("noSuchInstance".into(), String::new());
    }
    if value == "\"\"" {
        return ("STRING".into(), String::new());
    }
    if value == "NULL" {
        return ("NULL".into(), String::new());
    }
    let Some((kind, rest)) = value.split_once(": ") else {
        panic!("cannot read net-snmp value {value:?}");
    };
    let rest = rest.trim();
    match kind {
        "Hex-STRING" => ("STRING".into(), hex_words(rest)),
        "STRING" => {
            let unquoted = rest.trim_matches('"');
            ("STRING".into(), hex(unquoted.as_bytes()))
        }
        // "(12345) 0:02:03.45": the number in parentheses.
        "Timeticks" => {
            let ticks = rest
                .trim_start_matches('(')
                .split(')')
                .next()
                .unwrap_or_default();
            ("Timeticks".into(), ticks.to_string())
        }
        "OID" => ("OID".into(), rest.trim_start_matches('.').to_string()),
        _ => (kind.to_string(), rest.to_string()),
    }
}

fn hex_words(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Our value in the same normal form as [`parse_output`].
pub fn normalise(value: &SnmpValue) -> (String, String) {
    match value {
        SnmpValue::OctetString(bytes) => ("STRING".into(), hex(bytes)),
        SnmpValue::Opaque(bytes) => ("OPAQUE".into(), hex(bytes)),
        SnmpValue::Null
        | SnmpValue::NoSuchObject
        | SnmpValue::NoSuchInstance
        | SnmpValue::EndOfMibView => (value.type_name().into(), String::new()),
        other => (other.type_name().into(), other.to_display_string()),
    }
}

/// Types whose values move between two reads of a live agent.
pub fn is_volatile(kind: &str) -> bool {
    matches!(kind, "Counter32" | "Counter64" | "Timeticks")
}

// ---- running the panoptes binary ----

pub const BIN: &str = env!("CARGO_BIN_EXE_panoptes");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free loopback port, for a server whose port must be known before it starts: one
/// that cannot bind port 0 and report what it got, or one named in another process's
/// configuration written beforehand (the demo switch in the plugin files, an external
/// broker's advertised address). A `panoptes run` node binds port 0 instead, see
/// [`NodeEnv`].
///
/// Picked at random below Linux's ephemeral range (32768-60999), where binding port 0
/// would land: a port from port 0 is also what other tests' outgoing connections get
/// from the kernel, and one of them could take it between this check and the server's
/// bind. Here two tests running at once pick the same port about once in 12,000.
fn free_port(free: impl Fn(u16) -> bool) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let seed = std::collections::hash_map::RandomState::new();
    for attempt in 0u64..1000 {
        let mut h = seed.build_hasher();
        h.write_u64(attempt);
        let port = 20_000 + (h.finish() % 12_000) as u16;
        if free(port) {
            return port;
        }
    }
    panic!("no free loopback port in 20000-31999 after 1000 tries");
}

pub fn free_tcp_port() -> u16 {
    free_port(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

pub fn free_udp_port() -> u16 {
    free_port(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// Runs `cmd` with `input` on its stdin and a time limit; its output. Past the limit the
/// process is killed through its handle (never by PID: it is not reaped yet, so its PID
/// cannot belong to another process) and the test fails with what it printed.
pub fn run_limited(mut cmd: Command, input: &[u8], limit: Duration) -> Output {
    use std::io::{Read, Write};
    let program = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.read_to_end(&mut buf);
            buf
        })
    };
    let out_reader = drain(Box::new(child.stdout.take().unwrap()));
    let err_reader = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "{program} did not finish within {limit:?}; {} stdout lines; stderr: {}",
                String::from_utf8_lossy(&stdout).lines().count(),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Where a running node listens, as its start-up line ("panoptes is running") reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub http: SocketAddr,
    /// The embedded Kafka broker; `None` when it is off (`kafka.listen` empty, or the
    /// topics on an external cluster).
    pub kafka: Option<SocketAddr>,
    /// The trap receiver; `None` when it is off (`traps.listen` empty).
    pub traps: Option<SocketAddr>,
}

/// The start-up line of a node's log, once it is there.
pub fn running_line(log: &str) -> Option<&str> {
    log.lines().find(|l| l.contains("panoptes is running"))
}

/// The addresses a start-up line reports: `http=ADDR ... kafka=Some(ADDR)` in the human
/// log format, `"http":"ADDR", ... "kafka":"Some(ADDR)"` in JSON.
pub fn listening(line: &str) -> Listening {
    let field = |name: &str| -> &str {
        let (_, rest) = line
            .split_once(&format!("{name}="))
            .or_else(|| line.split_once(&format!("\"{name}\":\"")))
            .unwrap_or_else(|| panic!("no {name} in the start-up line {line:?}"));
        rest.split(|c: char| c.is_whitespace() || c == '"')
            .next()
            .unwrap_or_default()
    };
    let addr = |text: &str| -> SocketAddr {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} in the start-up line {line:?}: {e}"))
    };
    let optional = |text: &str| match text {
        "None" => None,
        some => Some(addr(
            some.strip_prefix("Some(")
                .and_then(|a| a.strip_suffix(')'))
                .unwrap_or(some),
        )),
    };
    Listening {
        http: addr(field("http")),
        kafka: optional(field("kafka")),
        traps: optional(field("traps")),
    }
}

/// A node's environment: its own data dir, ports and plugin directories.
///
/// The node binds its HTTP API and its Kafka listener on port 0 and reports the ports it
/// got (see [`NodeEnv::start`]), so no test hands it a port that something else could
/// take in between. Only the demo switch's port is picked beforehand ([`free_udp_port`]):
/// the discovery plugin files name it, and they are written before the node starts.
pub struct NodeEnv {
    pub dir: tempfile::TempDir,
    pub snmp_port: u16,
    pub vars: Vec<(String, String)>,
    /// What the node last started from here reported; `None` before that, or when it
    /// exited before reporting.
    reported: Cell<Option<Listening>>,
    starts: Cell<u32>,
}

impl NodeEnv {
    /// The shipped plugin files, with the polling interval set to `poll_every` seconds and
    /// the demo switch on a free port.
    pub fn demo(poll_every: u64) -> NodeEnv {
        let dir = tempfile::tempdir().unwrap();
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
                    text = text.replace(
                        "execute_frequency = 15",
                        &format!("execute_frequency = {poll_every}"),
                    );
                }
                text = text.replace(
                    "\"snmp_port\": \"10161\"",
                    &format!("\"snmp_port\": \"{snmp_port}\""),
                );
                std::fs::write(to.join(path.file_name().unwrap()), text).unwrap();
            }
        }
        let mut env = NodeEnv {
            dir,
            snmp_port,
            vars: Vec::new(),
            reported: Cell::new(None),
            starts: Cell::new(0),
        };
        env.set(
            "PANOPTES__DATA_DIR",
            env.dir.path().join("data").to_str().unwrap(),
        );
        env.set("PANOPTES__HTTP__LISTEN", "127.0.0.1:0");
        env.set("PANOPTES__DEMO__LISTEN", &format!("127.0.0.1:{snmp_port}"));
        env.set("PANOPTES__KAFKA__LISTEN", "127.0.0.1:0");
        // No trap receiver on the demo's fixed port: tests that want one set traps.listen.
        env.set("PANOPTES__DEMO__TRAPS_LISTEN", "");
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

    /// Where the node started from here listens (the last one started, after a restart).
    pub fn listening(&self) -> Listening {
        self.reported
            .get()
            .expect("the node has not reported its addresses: start it first (NodeEnv::start)")
    }

    /// The HTTP API's port, as the running node reported it.
    pub fn http_port(&self) -> u16 {
        self.listening().http.port()
    }

    /// The embedded Kafka broker's port, as the running node reported it.
    pub fn kafka_port(&self) -> u16 {
        self.listening()
            .kafka
            .expect("the node reported no Kafka listener")
            .port()
    }

    /// The trap receiver's address, as the running node reported it.
    pub fn traps_addr(&self) -> SocketAddr {
        self.listening()
            .traps
            .expect("the node reported no trap receiver")
    }

    /// `panoptes <args>` in this environment. A command other than `run` (a CLI call)
    /// reaches the node where it reported its HTTP API.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(repo()).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("PANOPTES") {
                c.env_remove(k);
            }
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        if let (Some(listening), false) = (self.reported.get(), args.first() == Some(&"run")) {
            c.env("PANOPTES__HTTP__LISTEN", listening.http.to_string());
        }
        c
    }

    /// Starts `panoptes run` and returns once it reports where it listens (or has exited
    /// before that: a test of a failing start then reads its status and log). Each start
    /// logs to its own file.
    pub fn start(&self) -> Node {
        let n = self.starts.get() + 1;
        self.starts.set(n);
        self.reported.set(None);
        let log = self.dir.path().join(format!("node-{n}.log"));
        let child = self
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn panoptes run");
        let mut node = Node {
            child,
            started: Instant::now(),
            log,
        };
        let limit = Duration::from_secs(60);
        loop {
            if let Some(line) = running_line(&node.log_text()) {
                self.reported.set(Some(listening(line)));
                return node;
            }
            if node.child.try_wait().unwrap().is_some() {
                return node;
            }
            if node.started.elapsed() > limit {
                panic!(
                    "the node did not report its addresses within {limit:?}; log:\n{}",
                    node.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a CLI command with a time limit; returns its output. Output is drained while
    /// the command runs, so a large one never blocks on a full pipe.
    pub fn cli(&self, args: &[&str], limit: Duration) -> Output {
        run_limited(self.command(args), b"", limit)
    }

    /// `panoptes topic tail TOPIC --from-beginning --max MAX` against the node: the first
    /// `max` records as JSON values (fails the test when the command fails).
    pub fn tail(&self, topic: &str, max: usize, limit: Duration) -> Vec<serde_json::Value> {
        let max = max.to_string();
        let out = self.cli(
            &["topic", "tail", topic, "--from-beginning", "--max", &max],
            limit,
        );
        assert!(
            out.status.success(),
            "topic tail {topic} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout)
    }

    pub fn http_get(&self, path: &str) -> Result<(u16, String), String> {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port());
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
            if let Some(exit) = node.child.try_wait().unwrap() {
                panic!("node exited early ({exit}); log:\n{}", node.log_text());
            }
            if let Ok((code, _)) = self.http_get(path) {
                if code == status {
                    return start.elapsed();
                }
            }
            if start.elapsed() > limit {
                panic!(
                    "{path} did not answer {status} within {limit:?}; log:\n{}",
                    node.log_text()
                );
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
                panic!(
                    "node did not stop within 15 s of SIGTERM; log:\n{}",
                    self.log_text()
                );
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

/// A server certificate for `localhost` / 127.0.0.1 signed by a throwaway CA, and its
/// key, in `dir`: (chain.pem: the certificate then the CA, key.pem). The chain is what a
/// server serves and what a client may trust (it holds the CA).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (ca, cert, key) = tls_files(dir, "server");
    let chain = dir.join("chain.pem");
    let text = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&ca).unwrap();
    std::fs::write(&chain, text).unwrap();
    (chain, key)
}

// ---- Kafka security fixtures ----

/// A throwaway CA and a broker certificate for `127.0.0.1` and `localhost`, written as PEM
/// files into `dir`: `(ca.pem, broker.pem, broker.key)`. `tag` names the CA, so two CAs
/// of one test differ.
pub fn tls_files(dir: &Path, tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("panoptes test CA {tag}"));
    ca.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join(format!("ca-{tag}.pem")),
        dir.join(format!("broker-{tag}.pem")),
        dir.join(format!("broker-{tag}.key")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A secrets file for site `local` with these Kafka users (and optionally our client's
/// password); returns its path.
pub fn kafka_secrets(dir: &Path, users: &[(&str, &str)], client_password: Option<&str>) -> PathBuf {
    let mut text = String::from("[local]\n");
    if let Some(p) = client_password {
        text.push_str(&format!("kafka_client_password = {p:?}\n"));
    }
    text.push_str("[local.kafka_users]\n");
    for (user, password) in users {
        text.push_str(&format!("{user:?} = {password:?}\n"));
    }
    let path = dir.join("secrets.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `VmRSS` of a process, in kB, from /proc.
pub fn rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmRSS")
}

/// The most the process has had resident since it started.
pub fn peak_rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmHWM")
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A real net-snmp `snmpd` on a free loopback UDP port, with `rocommunity public
/// 127.0.0.1` and `extra` appended to its configuration (more communities, v3 users);
/// killed on drop. Callers wait for it to answer in their own way.
pub struct SnmpdProcess {
    pub child: std::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl SnmpdProcess {
    pub fn spawn(extra: &str) -> SnmpdProcess {
        SnmpdProcess::spawn_config(&format!(
            "rocommunity public 127.0.0.1\n\
             sysLocation panoptes test lab\n\
             sysContact tests@localhost\n{extra}"
        ))
    }

    /// snmpd with exactly `config` (no `public` community unless it names one).
    pub fn spawn_config(config_text: &str) -> SnmpdProcess {
        let program = net_snmp("snmpd");
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let config = dir.path().join("snmpd.conf");
        // The listening address comes from the command line; naming it in the file as
        // well would make snmpd bind it twice and exit.
        std::fs::write(&config, config_text).unwrap();
        let log = std::fs::File::create(dir.path().join("snmpd.log")).unwrap();
        let child = Command::new(&program)
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(&config)
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", dir.path())
            .env("MIBS", "")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        SnmpdProcess { child, port, dir }
    }

    /// What snmpd has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("snmpd.log")).unwrap_or_default()
    }
}

impl Drop for SnmpdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `panoptes simulate` serving `devices` small switches of `interfaces` ports, each on its
/// own loopback address from `first` (port 0: each binds a free port and prints its
/// address; InfluxDB series are told apart by endpoint, not by port); killed on drop.
pub struct Simulator {
    child: Child,
    pub addrs: Vec<SocketAddr>,
}

impl Simulator {
    pub fn start(dir: &Path, first: &str, devices: usize, interfaces: u32) -> Simulator {
        let recording = dir.join(format!("switch{interfaces}.snmprec"));
        std::fs::write(&recording, panoptes::bench::switch_recording(interfaces)).unwrap();
        let mut child = Command::new(BIN)
            .args([
                "simulate",
                "--listen",
                &format!("{first}:0"),
                "--spread-addresses",
            ])
            .args(["--devices", &devices.to_string(), "--print-addresses"])
            .args(["--threads", "1"])
            .arg(&recording)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn panoptes simulate");
        let mut addrs = Vec::new();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
            child.stdout.take().expect("the simulator's stdout"),
        ));
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.trim() == "ready" {
                break;
            }
            addrs.push(line.trim().parse().expect("a device address"));
        }
        assert_eq!(addrs.len(), devices, "the simulator's devices");
        // Keep draining stdout so the simulator never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Simulator { child, addrs }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `panoptes ARGS` outside any node environment (no `PANOPTES*` variables), logging at
/// `level`; waits for it.
pub fn panoptes_logging(level: &str, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env("RUST_LOG", level);
    for (key, _) in std::env::vars() {
        if key.starts_with("PANOPTES") {
            command.env_remove(key);
        }
    }
    command.output().unwrap()
}

/// Standard output of a command that must have succeeded (`what` names it on failure).
pub fn stdout_ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One device answering v1/v2c community `public` from `recording`, frozen counters, on
/// a free port of 127.0.0.1: the handle (the device lives as long as it) and its address.
pub async fn serve_recording(recording: &Path) -> (panoptes::simulate::SimulatorHandle, String) {
    use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
    let recording = std::sync::Arc::new(Recording::load(recording).unwrap());
    let config = SimulatorConfig::new(CounterMode::Frozen).with_device(DeviceConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        recording,
        "public",
    ));
    let handle = Simulator::spawn(config).await.unwrap();
    let addr = handle.local_addrs()[0].to_string();
    (handle, addr)
}
