//! Fleet benchmark: walk IF-MIB (ifTable + ifXTable of a 48-port switch) on
//! 1,000 simulated devices with 64, 256 and 1,024 walks in flight, and compare
//! with net-snmp's `snmpbulkwalk` on the same devices in the same run.
//!
//! The simulator runs as a separate process (`panoptes simulate --devices
//! 1000 --threads 1`), so the CPU each side spends is measured apart: the
//! client's from this process, the simulator's from `/proc/<pid>/stat`.
//!
//! Prints figures; it is not a timed test. Run:
//!     cargo bench --bench walk_fleet
//! Environment: WALK_FLEET_DEVICES (default 1000), WALK_FLEET_NETSNMP_DEVICES
//! (default 200), WALK_FLEET_INFLIGHT (default "64,256,1024").

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use panoptes::snmp::{Community, EngineConfig, Oid, SnmpClient, SnmpEngine, SnmpTarget};

const IF_TABLE: &str = "1.3.6.1.2.1.2.2";
const IF_X_TABLE: &str = "1.3.6.1.2.1.31.1.1";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at ") ".
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second
}

struct Simulator {
    child: Child,
    addrs: Vec<SocketAddr>,
}

impl Simulator {
    fn start(devices: usize) -> Simulator {
        let recording = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/resources/demo/switch48.snmprec"
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_panoptes"))
            .args([
                "--log-format",
                "human",
                "simulate",
                "--listen",
                "127.0.0.1:0",
            ])
            .args([
                "--devices",
                &devices.to_string(),
                "--threads",
                "1",
                "--print-addresses",
            ])
            .arg(recording)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start panoptes simulate");
        let stdout = child.stdout.take().expect("simulator stdout");
        let mut addrs = Vec::with_capacity(devices);
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("simulator output");
            if line == "ready" {
                break;
            }
            addrs.push(line.parse().expect("simulator printed a bad address"));
        }
        assert_eq!(
            addrs.len(),
            devices,
            "the simulator did not start every device"
        );
        Simulator { child, addrs }
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(&self.child.id().to_string())
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Figures {
    walks: usize,
    wall: Duration,
    client_cpu: f64,
    simulator_cpu: f64,
    requests: u64,
    p50: Duration,
    p99: Duration,
}

async fn walk_device(engine: &SnmpEngine, addr: SocketAddr, roots: &[Oid]) -> usize {
    let mut target = SnmpTarget::new(addr.ip().to_string(), Community::from("public"));
    target.port = addr.port();
    target.timeout = Duration::from_secs(5);
    target.retries = 2;
    let mut client = SnmpClient::connect_with(engine, &target)
        .await
        .expect("connect");
    let mut rows = 0;
    for root in roots {
        rows += client.bulk_walk(root).await.expect("walk failed").len();
    }
    rows
}

async fn run_ours(engine: &SnmpEngine, simulator: &Simulator, in_flight: usize) -> Figures {
    let roots: Arc<Vec<Oid>> =
        Arc::new(vec![IF_TABLE.parse().unwrap(), IF_X_TABLE.parse().unwrap()]);
    let limit = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let requests_before = engine.stats().requests_sent;
    let (client_before, simulator_before) = (cpu_seconds("self"), simulator.cpu());
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for &addr in &simulator.addrs {
        let (engine, roots, limit) = (engine.clone(), Arc::clone(&roots), Arc::clone(&limit));
        set.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let begun = Instant::now();
            let rows = walk_device(&engine, addr, &roots).await;
            (begun.elapsed(), rows)
        });
    }
    let mut latencies = Vec::with_capacity(simulator.addrs.len());
    while let Some(done) = set.join_next().await {
        let (took, rows) = done.expect("walk task");
        assert!(rows >= 1_800, "a walk returned only {rows} rows");
        latencies.push(took);
    }
    let wall = started.elapsed();
    latencies.sort();
    Figures {
        walks: latencies.len(),
        wall,
        client_cpu: cpu_seconds("self") - client_before,
        simulator_cpu: simulator.cpu() - simulator_before,
        requests: engine.stats().requests_sent - requests_before,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

/// `snmpbulkwalk` of both tables for each of `addrs`, `parallel` processes at a time.
fn run_net_snmp(simulator: &Simulator, addrs: &[SocketAddr], parallel: usize) -> Option<Figures> {
    let program = ["/usr/bin/snmpbulkwalk", "/usr/local/bin/snmpbulkwalk"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let simulator_before = simulator.cpu();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut children_cpu = 0.0;
    for chunk in addrs.chunks(parallel) {
        let mut running = Vec::new();
        for addr in chunk {
            let addr = addr.to_string();
            let begun = Instant::now();
            // Both tables in one process, as one device walk.
            let child = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "{program} -v2c -c public -Cr25 -On -t 5 -r 2 {addr} {IF_TABLE} && \
                     {program} -v2c -c public -Cr25 -On -t 5 -r 2 {addr} {IF_X_TABLE}"
                ))
                .env("MIBS", "")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            running.push((begun, child));
        }
        for (begun, mut child) in running {
            let status = child.wait().ok()?;
            assert!(status.success(), "snmpbulkwalk failed");
            latencies.push(begun.elapsed());
        }
    }
    // Children's CPU, from this process's rusage of reaped children.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } == 0 {
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        children_cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    }
    let wall = started.elapsed();
    latencies.sort();
    Some(Figures {
        walks: latencies.len(),
        wall,
        client_cpu: children_cpu,
        simulator_cpu: simulator.cpu() - simulator_before,
        requests: 0,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    })
}

fn print(label: &str, f: &Figures) {
    let walks = f.walks as f64;
    let requests = if f.requests > 0 {
        format!(
            " | {:>7.0} PDUs/s served, {:>7.0} PDUs per simulator CPU-second",
            f.requests as f64 / f.wall.as_secs_f64(),
            f.requests as f64 / f.simulator_cpu
        )
    } else {
        String::new()
    };
    println!(
        "{label:<28} {:>5} walks in {:>6.2} s = {:>7.1} walks/s | CPU per walk: client {:>6.2} ms, simulator {:>6.2} ms | p50 {:>7.1} ms, p99 {:>7.1} ms{requests}",
        f.walks,
        f.wall.as_secs_f64(),
        walks / f.wall.as_secs_f64(),
        f.client_cpu / walks * 1e3,
        f.simulator_cpu / walks * 1e3,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let devices = env_number("WALK_FLEET_DEVICES", 1_000);
    let net_snmp_devices = env_number("WALK_FLEET_NETSNMP_DEVICES", 200).min(devices);
    let levels: Vec<usize> = std::env::var("WALK_FLEET_INFLIGHT")
        .unwrap_or_else(|_| "64,256,1024".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let simulator = Simulator::start(devices);
    println!(
        "walk_fleet: IF-MIB (ifTable + ifXTable, 48 interfaces, 1,968 rows, max-repetitions 25) \
         on {devices} simulated devices; simulator: separate process, 1 thread; client: 1 runtime \
         thread + the engine's receive thread; {} CPU cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let engine = SnmpEngine::new(EngineConfig {
            max_in_flight: 4_096,
            ..EngineConfig::default()
        })
        .expect("engine");
        // Warm-up: every device once (first contact, page faults).
        let warm = run_ours(&engine, &simulator, 256).await;
        print("panoptes warm-up", &warm);
        for &in_flight in &levels {
            let figures = run_ours(&engine, &simulator, in_flight).await;
            print(&format!("panoptes, {in_flight} in flight"), &figures);
        }
        let stats = engine.stats();
        println!(
            "engine: {} sockets, {} open fds, {} requests, {} retries, {} timeouts, {} stale replies",
            stats.sockets, stats.open_fds, stats.requests_sent, stats.retries, stats.timeouts, stats.stale_replies
        );
    });
    let parallel = 16;
    match run_net_snmp(&simulator, &simulator.addrs[..net_snmp_devices], parallel) {
        Some(figures) => print(&format!("net-snmp snmpbulkwalk x{parallel}"), &figures),
        None => println!("net-snmp snmpbulkwalk not found: no comparison"),
    }
}
