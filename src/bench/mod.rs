//! `panoptes bench`: runs the real pipeline (discovery, enrichment, interface polling with
//! rates, topic publishing) against a simulated fleet in a child process, and reports
//! throughput, CPU, latency and memory.

mod fleet;
mod polls;
mod procstat;
mod report;
mod simulator;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::config::Settings;
use crate::node::{JobWrapper, JobWrappers, NodeView};

pub use fleet::{if_mib_document, switch_recording, write_plugins, BenchPlugin};
pub use polls::{JobCpu, PollLog};
pub use procstat::{sample, ProcSample};
pub use report::{EnrichmentCost, Latency, Planning, Report, RssMb, Steady};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Simulated devices to poll.
    #[arg(long, value_name = "N")]
    pub devices: u32,
    /// Interfaces per simulated device (the built-in 48-port switch, resized); ignored
    /// with --recording.
    #[arg(long, default_value_t = 48, value_name = "N")]
    pub interfaces: u32,
    /// Polling interval, e.g. 60s, 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long to measure, e.g. 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Serve this .snmprec recording instead of the built-in switch.
    #[arg(long, value_name = "FILE.snmprec")]
    pub recording: Option<PathBuf>,
    /// Print the report as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
    /// Stop early (and fail) when the benchmark's data directory grows past this many
    /// MiB, so a run cannot fill the disk.
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    pub max_data_mb: u64,
    /// Topic retention during the run, MiB per partition (the node's
    /// `[retention] max_partition_mib`): a 48-port poll publishes ≈200 KB, so 10,000
    /// devices append ≈35 MB/s.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub retention_mb: u64,
    /// What to poll: `interface` (the interface plugins with enrichment and rates), or
    /// `if-mib` (every ifTable/ifXTable column, as snmp_exporter's if_mib module reads
    /// them, by a Generic SNMP document: for like-for-like comparisons).
    #[arg(long, value_enum, default_value_t = BenchPlugin::Interface)]
    pub plugin: BenchPlugin,
    /// Worker threads of the simulator process.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub simulator_threads: usize,
}

/// A duration argument that is not one (`text` as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{text:?}: expected a number with a unit, e.g. 60s or 5m")]
    NoNumber { text: String },
    #[error("{text:?}: unknown unit {unit:?} (ms, s, m or h)")]
    UnknownUnit { text: String, unit: String },
}

/// `90`, `90s`, `500ms`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| DurationError::NoNumber {
        text: text.to_owned(),
    })?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(DurationError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            })
        }
    };
    Ok(d)
}

/// Devices per simulator process (see `measure`).
const SIMULATOR_DEVICES: u32 = 10_000;

/// The simulated fleet's community: a fixed one, so the configured (real) community never
/// appears on the simulator's command line.
const BENCH_COMMUNITY: &str = "bench";

/// A data directory removed when the benchmark ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("panoptes-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("creating the benchmark's directory {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the benchmark and prints its report (human text, or JSON with `--json`).
pub fn run(args: BenchArgs, settings: Settings) -> Result<()> {
    let report = measure(&args, settings)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    if let Some(reason) = &report.aborted {
        bail!("the benchmark stopped early: {reason}");
    }
    Ok(())
}

/// Starts the fleet and the node, measures, and stops both.
pub fn measure(args: &BenchArgs, mut settings: Settings) -> Result<Report> {
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if args.interval < Duration::from_secs(1) {
        bail!("--interval must be at least 1s (plugins run on whole seconds)");
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    if args.recording.is_none() && args.interfaces == 0 {
        bail!("--interfaces must be at least 1");
    }
    let dir = TempDir::new()?;
    let recording = match &args.recording {
        Some(path) => path.clone(),
        None => {
            let path = dir.0.join("switch.snmprec");
            std::fs::write(&path, switch_recording(args.interfaces))
                .with_context(|| format!("writing {}", path.display()))?;
            path
        }
    };
    eprintln!(
        "bench: starting {} simulated devices (separate process)...",
        args.devices
    );
    // One simulator process per SIMULATOR_DEVICES devices, each on a loopback address of
    // its own (127.0.0.1, 127.0.0.2, ...): each device is a socket with its own port, a
    // process may open only so many files (20,000 on the development VM, a hard limit
    // only root can raise), and one address has ≈28,000 ephemeral ports.
    let mut fleets = Vec::new();
    let mut left = args.devices;
    while left > 0 {
        let devices = left.min(SIMULATOR_DEVICES);
        let ready_within = Duration::from_secs(30 + u64::from(devices) / 100);
        let host = u8::try_from(fleets.len() + 1).context("too many simulated devices")?;
        fleets.push(simulator::FleetProcess::start(
            devices,
            &recording,
            BENCH_COMMUNITY,
            args.simulator_threads,
            std::net::Ipv4Addr::new(127, 0, 0, host),
            ready_within,
        )?);
        left -= devices;
    }
    let addrs: Vec<std::net::SocketAddr> = fleets
        .iter()
        .flat_map(|f| f.addrs.iter().copied())
        .collect();
    let interval_s = args.interval.as_secs();
    let [discovery, enrichment, polling] = fleet::write_plugins(
        &dir.0.join("plugins"),
        &settings.site,
        &addrs,
        interval_s,
        args.plugin,
    )?;
    settings.data_dir = dir.0.join("data");
    settings.demo.enabled = false;
    settings.snmp.community = BENCH_COMMUNITY.into();
    settings.http.listen = ([127, 0, 0, 1], 0).into();
    // No Kafka listener or trap receiver: the benchmark measures the pipeline, and runs
    // beside a node.
    settings.kafka.listen = String::new();
    settings.traps.listen = String::new();
    settings.plugins.discovery = vec![discovery];
    settings.plugins.enrichment = match args.plugin {
        BenchPlugin::Interface => vec![enrichment],
        BenchPlugin::IfMib => Vec::new(),
    };
    settings.plugins.polling = vec![polling];
    settings.retention.max_partition_mib = args.retention_mb.max(1);
    // Spread first polls over the interval, as a long-running node's would be.
    settings.scheduler.first_run_spread = interval_s;

    // Polls are many and alike: one in 8 metered is plenty. Enrichments: every one.
    let log = PollLog::new(8);
    let enrichment_log = PollLog::new(1);
    let wrapper = |log: &Arc<PollLog>| -> JobWrapper {
        let log = Arc::clone(log);
        Arc::new(move |device: &str, job| log.wrap(device, job))
    };
    let wrappers = JobWrappers {
        polling: Some(wrapper(&log)),
        enrichment: Some(wrapper(&enrichment_log)),
    };
    let out: Arc<Mutex<Option<Report>>> = Arc::default();
    let (args2, out2, log2, sim_pids) = (
        args.clone(),
        Arc::clone(&out),
        Arc::clone(&log),
        fleets.iter().map(|f| f.pid()).collect::<Vec<u32>>(),
    );
    let logs = Logs {
        polls: log2,
        enrichments: Arc::clone(&enrichment_log),
    };
    let site_topic = settings.processed_topic();
    let data_dir = settings.data_dir.clone();
    eprintln!(
        "bench: polling {} devices every {interval_s}s for {:?}",
        args.devices, args.duration
    );
    crate::node::run_until(settings, wrappers, move |view| async move {
        let report = watch(&args2, view, &logs, &sim_pids, &site_topic, &data_dir).await;
        if let Ok(mut slot) = out2.lock() {
            *slot = Some(report);
        }
    })
    .context("running the node")?;
    drop(fleets);
    let report = out
        .lock()
        .ok()
        .and_then(|mut r| r.take())
        .context("the benchmark ended without a report")?;
    Ok(report)
}

/// Bytes of the files under `dir` (the store's log, snapshots and blobs).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// How often progress is printed.
fn progress_every(duration: Duration) -> Duration {
    if duration <= Duration::from_secs(30) {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    }
}

const TREND_EVERY: Duration = Duration::from_secs(10);

/// (seconds into the run, RSS MB, CPU cores over the last 10 s) every 10 s.
#[derive(Default)]
struct Trend {
    samples: Vec<(f64, f64, f64)>,
}

impl Trend {
    fn push(&mut self, at_s: f64, rss_mb: f64, cores: f64) {
        self.samples.push((at_s, rss_mb, cores));
    }

    /// (seconds, figure) of the samples at or after `from_s`.
    fn after(&self, from_s: f64, figure: impl Fn(&(f64, f64, f64)) -> f64) -> Vec<(f64, f64)> {
        self.samples
            .iter()
            .filter(|t| t.0 >= from_s)
            .map(|t| (t.0, figure(t)))
            .collect()
    }

    /// The mean of one figure over the samples after `from_s`; None without any.
    fn mean(&self, from_s: f64, figure: impl Fn(&(f64, f64, f64)) -> f64) -> Option<f64> {
        let pts = self.after(from_s, figure);
        (!pts.is_empty()).then(|| pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64)
    }

    /// The highest value of one figure over the samples after `from_s`.
    fn max(&self, from_s: f64, figure: impl Fn(&(f64, f64, f64)) -> f64) -> Option<f64> {
        self.after(from_s, figure)
            .into_iter()
            .map(|p| p.1)
            .reduce(f64::max)
    }

    /// Least-squares slope per hour of one figure over the samples after `from_s`; None
    /// with fewer than 3 samples.
    fn slope(&self, from_s: f64, figure: impl Fn(&(f64, f64, f64)) -> f64) -> Option<f64> {
        let pts = self.after(from_s, figure);
        if pts.len() < 3 {
            return None;
        }
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        (sxx > 0.0).then(|| sxy / sxx * 3600.0)
    }
}

/// What the wrapped jobs recorded.
struct Logs {
    polls: Arc<PollLog>,
    enrichments: Arc<PollLog>,
}

/// Plans made by the node's schedulers so far and the time they took (µs).
async fn planning(view: &NodeView) -> (u64, u64) {
    let mut total = (0, 0);
    for addr in [&view.discovery, &view.enrichment, &view.polling] {
        if let Ok(s) = addr.send(panoptes_actors::GetSchedulerStats).await {
            total.0 += s.plans;
            total.1 += s.plan_us;
        }
    }
    total
}

/// CPU seconds of each simulator process; one gone (Ctrl-C reaches them too) counts as
/// having used nothing more than `before`.
fn simulators_cpu_s(pids: &[u32], before: &[f64]) -> Vec<f64> {
    pids.iter()
        .enumerate()
        .map(|(i, &pid)| {
            sample(Some(pid))
                .map(|s| s.cpu_s)
                .unwrap_or_else(|| before.get(i).copied().unwrap_or(0.0))
        })
        .collect()
}

/// Resolves on SIGTERM; never, if the handler could not be installed.
async fn terminated(term: &mut Option<tokio::signal::unix::Signal>) {
    match term {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Samples once a second while the node runs, prints progress, and builds the report.
async fn watch(
    args: &BenchArgs,
    view: NodeView,
    logs: &Logs,
    sim_pids: &[u32],
    site_topic: &str,
    data_dir: &Path,
) -> Report {
    let log = &*logs.polls;
    let started = Instant::now();
    let me0 = sample(None).unwrap_or_default();
    let sim0 = simulators_cpu_s(sim_pids, &[]);
    let engine = || {
        crate::snmp::SnmpEngine::global()
            .map(|e| e.stats())
            .unwrap_or_default()
    };
    let engine0 = engine();
    let varbinds0 = crate::snmp::varbinds_received();
    let groups = |view: &NodeView| {
        view.telemetry.get(
            "panoptes_metrics_groups_published_total",
            &[("topic", site_topic)],
        )
    };
    let points = |view: &NodeView| {
        view.telemetry
            .get("panoptes_influxdb_points_written_total", &[])
    };
    let (groups0, points0) = (groups(&view), points(&view));
    let planning0 = planning(&view).await;
    let mut peak = me0;
    let every = progress_every(args.duration);
    let mut next_progress = started + every;
    let mut last_cpu = (started, me0.cpu_s);
    let interval_s = args.interval.as_secs();
    // CPU, polls and in-job CPU when the first interval ends: the first interval carries
    // the enrichment of every device and the rates' first samples; after it is steady state.
    let mut steady_start: Option<(f64, u64, JobCpu, u64)> = None;
    // RSS and CPU every 10 s, for the flatness figures.
    let mut trend = Trend::default();
    let mut next_trend = started + TREND_EVERY;
    let mut trend_cpu = (started, me0.cpu_s);
    let mut aborted = None;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    // The sampling below runs in the collector's process: its CPU (reading /proc, sizing
    // the data directory: ≈0.3 ms a second) is counted here and left out of the
    // collector's.
    let mut sampler_ns: u64 = 0;
    let mut sampling_since: Option<u64> = None;
    loop {
        if let Some(t0) = sampling_since.take() {
            sampler_ns += polls::thread_cpu_ns().saturating_sub(t0);
        }
        let elapsed = started.elapsed();
        if elapsed >= args.duration {
            break;
        }
        let tick = tokio::time::sleep((args.duration - elapsed).min(Duration::from_secs(1)));
        // Ctrl-C or SIGTERM (a script stopping it) ends the run with a report, and the
        // temporary data and the simulator are cleaned up (the default actions would leave
        // the data directory and the simulator process behind).
        tokio::select! {
            _ = tick => {}
            _ = tokio::signal::ctrl_c() => {
                aborted = Some("interrupted (Ctrl-C)".to_string());
                eprintln!("bench: interrupted, stopping");
                break;
            }
            _ = terminated(&mut term) => {
                aborted = Some("terminated (SIGTERM)".to_string());
                eprintln!("bench: terminated, stopping");
                break;
            }
        }
        sampling_since = Some(polls::thread_cpu_ns());
        let now = sample(None).unwrap_or_default();
        if steady_start.is_none() && started.elapsed() >= args.interval {
            steady_start = Some((
                now.cpu_s - sampler_ns as f64 / 1e9,
                log.polls.load(Relaxed),
                log.job_cpu(),
                crate::snmp::varbinds_received(),
            ));
        }
        if Instant::now() >= next_trend {
            next_trend += TREND_EVERY;
            let secs = trend_cpu.0.elapsed().as_secs_f64().max(1e-3);
            trend.push(
                started.elapsed().as_secs_f64(),
                now.rss_mb,
                (now.cpu_s - trend_cpu.1) / secs,
            );
            trend_cpu = (Instant::now(), now.cpu_s);
        }
        peak.rss_mb = peak.rss_mb.max(now.rss_mb);
        peak.threads = peak.threads.max(now.threads);
        peak.open_fds = peak.open_fds.max(now.open_fds);
        if Instant::now() >= next_progress {
            next_progress += every;
            let data_mb = dir_bytes(data_dir) as f64 / (1024.0 * 1024.0);
            if data_mb > args.max_data_mb as f64 {
                aborted = Some(format!(
                    "the data directory holds {data_mb:.0} MiB, more than --max-data-mb {}",
                    args.max_data_mb
                ));
                eprintln!("bench: {}", aborted.as_deref().unwrap_or_default());
                break;
            }
            let pool = view.pool.snapshot();
            let cpu = (now.cpu_s - last_cpu.1) / last_cpu.0.elapsed().as_secs_f64().max(1e-3);
            last_cpu = (Instant::now(), now.cpu_s);
            eprintln!(
                "bench: {:>5}s  polls in the last {interval_s}s {} ({} devices)  running {}  \
                 queued {}  errors {}  timeouts {}  cpu {:.0}%  rss {:.0} MB  data {data_mb:.0} MB",
                started.elapsed().as_secs(),
                // Over the devices while first runs move to their place in the interval:
                // runs of a key then come as close as half an interval.
                log.finished_within(interval_s),
                args.devices,
                pool.running,
                pool.queued,
                log.errors.load(Relaxed),
                log.timeouts.load(Relaxed),
                cpu * 100.0,
                now.rss_mb,
            );
        }
    }
    if let Some(t0) = sampling_since {
        sampler_ns += polls::thread_cpu_ns().saturating_sub(t0);
    }
    let sampler_cpu_s = sampler_ns as f64 / 1e9;
    let wall = started.elapsed().as_secs_f64();
    let me1 = sample(None).unwrap_or_default();
    let sim1 = simulators_cpu_s(sim_pids, &sim0);
    let engine1 = engine();
    let polling = view
        .polling
        .send(panoptes_actors::GetSchedulerStats)
        .await
        .unwrap_or_default();
    let enrichment = view
        .enrichment
        .send(panoptes_actors::GetSchedulerStats)
        .await
        .unwrap_or_default();
    let polls = log.polls.load(Relaxed);
    let cpu = me1.cpu_s - me0.cpu_s - sampler_cpu_s;
    let latency = log.latency_ms().map(Latency::from);
    let steady = steady_start
        .filter(|_| wall > args.interval.as_secs_f64() + 1.0)
        .map(|(cpu0, polls0, job0, varbinds0)| {
            let (cpu, polls) = (me1.cpu_s - sampler_cpu_s - cpu0, polls - polls0);
            let secs = wall - args.interval.as_secs_f64();
            let snmp_varbinds = crate::snmp::varbinds_received() - varbinds0;
            Steady {
                from_s: interval_s,
                device_polls: polls,
                device_polls_per_s: polls as f64 / secs,
                collector_cpu_cores: cpu / secs,
                cpu_ms_per_poll: (polls > 0).then(|| cpu * 1000.0 / polls as f64),
                poller_thread_ms_per_poll: log.job_cpu().ms_per_run_since(job0),
                snmp_varbinds,
                cpu_us_per_varbind: (snmp_varbinds > 0).then(|| cpu * 1e6 / snmp_varbinds as f64),
                rss_mb_mean: trend.mean(args.interval.as_secs_f64(), |t| t.1),
                rss_mb_max: trend.max(args.interval.as_secs_f64(), |t| t.1),
                rss_slope_mb_per_h: trend.slope(args.interval.as_secs_f64(), |t| t.1),
                cpu_slope_cores_per_h: trend.slope(args.interval.as_secs_f64(), |t| t.2),
            }
        });
    let enrichment_cost = {
        let e = &logs.enrichments;
        let runs = e.polls.load(Relaxed);
        let cpu_s = e.job_cpu().ns as f64 / 1e9;
        EnrichmentCost {
            runs,
            errors: e.errors.load(Relaxed) + e.timeouts.load(Relaxed),
            poller_thread_cpu_s: cpu_s,
            poller_thread_ms_per_run: (runs > 0).then(|| cpu_s * 1000.0 / runs as f64),
            latency_ms: e.latency_ms().map(Latency::from).unwrap_or_default(),
            runs_per_second: e.per_second(),
        }
    };
    let planning1 = planning(&view).await;
    let sim_cpu: f64 = sim1.iter().zip(&sim0).map(|(b, a)| b - a).sum();
    let varbinds = crate::snmp::varbinds_received() - varbinds0;
    Report {
        steady,
        aborted,
        planning: Planning {
            plans: planning1.0 - planning0.0,
            cpu_s: (planning1.1 - planning0.1) as f64 / 1e6,
        },
        data_mb: dir_bytes(data_dir) as f64 / (1024.0 * 1024.0),
        devices: args.devices,
        interval_s,
        duration_s: wall,
        device_polls: polls,
        device_polls_per_s: polls as f64 / wall,
        collector_cpu_s: cpu,
        bench_sampler_cpu_s: sampler_cpu_s,
        cpu_ms_per_poll: (polls > 0).then(|| cpu * 1000.0 / polls as f64),
        collector_cpu_cores: cpu / wall,
        latency_ms: latency.unwrap_or_default(),
        missed_intervals: polling.missed + polling.skipped_in_flight,
        timeouts: log.timeouts.load(Relaxed),
        errors: log.errors.load(Relaxed),
        error_samples: log.error_samples(),
        snmp_requests: engine1.requests_sent - engine0.requests_sent,
        snmp_varbinds: varbinds,
        cpu_us_per_varbind: (varbinds > 0).then(|| cpu * 1e6 / varbinds as f64),
        first_interval_devices_polled: log.devices_first_run_within(args.interval.as_secs_f64()),
        all_devices_polled_by_s: log.all_devices_run_by_s(u64::from(args.devices)),
        snmp_timeouts: engine1.timeouts - engine0.timeouts,
        shed: polling.runs.shed,
        enrichment_runs: enrichment.runs.completed,
        enrichment: enrichment_cost,
        poller_thread_ms_per_poll: log.job_cpu().ms_per_run_since(JobCpu::default()),
        metrics_groups_published: (groups(&view) - groups0) as u64,
        metrics_groups_per_s: (groups(&view) - groups0) / wall,
        influxdb_points_per_s: (points(&view) - points0) / wall,
        rss_mb: RssMb {
            start: me0.rss_mb,
            peak: peak.rss_mb.max(me1.rss_mb),
            end: me1.rss_mb,
        },
        memory_bytes: crate::memory::Breakdown::now(view.rates.heap_bytes()),
        open_fds: me1.open_fds,
        open_fds_peak: peak.open_fds.max(me1.open_fds),
        threads: me1.threads,
        simulator_cpu_s: sim_cpu,
        simulator_cpu_cores: sim_cpu / wall,
        polls_per_second: log.per_second(),
        every_10s: trend.samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steady window's RSS figures read only the samples from its start on.
    #[test]
    fn steady_figures_read_the_samples_after_the_first_interval() {
        let mut trend = Trend::default();
        for (at, rss) in [
            (10.0, 500.0),
            (20.0, 90.0),
            (30.0, 100.0),
            (40.0, 110.0),
            (50.0, 120.0),
        ] {
            trend.push(at, rss, 0.5);
        }
        assert_eq!(trend.mean(30.0, |t| t.1), Some(110.0));
        assert_eq!(trend.max(30.0, |t| t.1), Some(120.0));
        // 10 MB every 10 s: 3,600 MB an hour.
        let slope = trend.slope(30.0, |t| t.1).unwrap();
        assert!((slope - 3600.0).abs() < 1e-6, "{slope}");
        assert_eq!(trend.mean(60.0, |t| t.1), None);
        assert_eq!(trend.max(60.0, |t| t.1), None);
        assert_eq!(trend.slope(40.0, |t| t.1), None, "two samples");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            parse_duration("5 minutes"),
            Err(DurationError::UnknownUnit {
                text: "5 minutes".into(),
                unit: " minutes".into()
            })
        );
        assert_eq!(
            parse_duration("m").unwrap_err().to_string(),
            "\"m\": expected a number with a unit, e.g. 60s or 5m"
        );
    }
}
