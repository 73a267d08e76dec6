//! Every run's duration, outcome and CPU, recorded by wrapping the node's jobs (one log
//! for polls, one for enrichments).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use panoptes_actors::{BoxFuture, Job, JobError};

use crate::agent::RunError;

/// What the polls did since the benchmark started.
#[derive(Debug)]
pub struct PollLog {
    started: Instant,
    pub polls: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    /// One run in this many is metered (see [`Metered`]): reading a thread's CPU clock is
    /// a system call, two per poll of the future, and would cost the collector ≈5% at
    /// 10,000 devices if every poll paid it.
    meter_every: u64,
    started_runs: AtomicU64,
    /// CPU time spent inside the metered runs' futures, on the poller threads.
    job_cpu_ns: AtomicU64,
    metered_runs: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Durations of the finished polls, in microseconds, to three significant digits: the
    /// same ≈94 KB however long the run (a list of every poll grew by 2.4 MB over 30
    /// minutes at 10,000 devices every 60 s, and the bench reports its own RSS).
    latencies_us: Histogram<u32>,
    /// The longest poll exactly (the histogram's highest value is rounded up).
    max_us: u32,
    /// Polls finished in each second since `started`.
    per_second: Vec<u64>,
    /// The first few distinct error messages, to show the user.
    samples: Vec<String>,
    /// Every device a job was wrapped for: one copy of its name for the jobs of every plan
    /// (a plan wraps a job per plugin and device), and when its first run finished, in
    /// milliseconds since `started` ([`NOT_RUN`] before).
    devices: HashMap<Arc<str>, u32>,
}

/// [`Inner::devices`]' mark of a device not run yet.
const NOT_RUN: u32 = u32::MAX;

/// Microsecond latencies from 1 µs to `u32::MAX` (71 minutes; longer ones are counted as
/// that), to three significant digits.
fn latency_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, u64::from(u32::MAX), 3)
        .expect("1 < u32::MAX and three significant digits are valid bounds")
}

const ERROR_SAMPLES: usize = 5;

/// CPU time in metered runs and how many runs that was.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JobCpu {
    pub ns: u64,
    pub runs: u64,
}

impl JobCpu {
    /// Milliseconds per metered run, between an earlier reading and this one.
    pub fn ms_per_run_since(self, earlier: JobCpu) -> Option<f64> {
        let runs = self.runs.saturating_sub(earlier.runs);
        (runs > 0).then(|| self.ns.saturating_sub(earlier.ns) as f64 / 1e6 / runs as f64)
    }
}

impl PollLog {
    /// A log that meters the CPU of one run in `meter_every` (1: every run).
    pub fn new(meter_every: u64) -> Arc<PollLog> {
        Arc::new(PollLog {
            started: Instant::now(),
            polls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            meter_every: meter_every.max(1),
            started_runs: AtomicU64::new(0),
            job_cpu_ns: AtomicU64::new(0),
            metered_runs: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                latencies_us: latency_histogram(),
                max_us: 0,
                per_second: Vec::new(),
                samples: Vec::new(),
                devices: HashMap::new(),
            }),
        })
    }

    pub fn job_cpu(&self) -> JobCpu {
        JobCpu {
            ns: self.job_cpu_ns.load(Relaxed),
            runs: self.metered_runs.load(Relaxed),
        }
    }

    /// Wraps a job of `device` so its runs are recorded here.
    pub fn wrap(self: &Arc<Self>, device: &str, job: Arc<dyn Job>) -> Arc<dyn Job> {
        let device = {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match inner.devices.get_key_value(device) {
                Some((name, _)) => Arc::clone(name),
                None => {
                    let name: Arc<str> = Arc::from(device);
                    inner.devices.insert(Arc::clone(&name), NOT_RUN);
                    name
                }
            }
        };
        Arc::new(TimedJob {
            inner: job,
            log: Arc::clone(self),
            device,
        })
    }

    /// Devices whose first run finished within `secs` of the start.
    pub fn devices_first_run_within(&self, secs: f64) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let limit = (secs * 1000.0) as u64;
        inner
            .devices
            .values()
            .filter(|&&ms| ms != NOT_RUN && u64::from(ms) <= limit)
            .count() as u64
    }

    /// Seconds from the start until `devices` distinct devices had finished a run (None
    /// if fewer ever did).
    pub fn all_devices_run_by_s(&self, devices: u64) -> Option<f64> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let run = || inner.devices.values().filter(|&&ms| ms != NOT_RUN);
        let n = run().count() as u64;
        (n >= devices && n > 0).then(|| f64::from(run().copied().max().unwrap_or(0)) / 1000.0)
    }

    fn record(&self, device: &Arc<str>, took: Duration, result: &Result<(), JobError>) {
        self.polls.fetch_add(1, Relaxed);
        if let Err(e) = result {
            if is_timeout(e) {
                self.timeouts.fetch_add(1, Relaxed);
            } else {
                self.errors.fetch_add(1, Relaxed);
            }
        }
        let since = self.started.elapsed();
        let second = since.as_secs() as usize;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Held below NOT_RUN (49 days).
        let ms = u32::try_from(since.as_millis()).map_or(NOT_RUN - 1, |ms| ms.min(NOT_RUN - 1));
        match inner.devices.get_mut(&**device) {
            Some(first) if *first == NOT_RUN => *first = ms,
            Some(_) => {}
            None => {
                inner.devices.insert(Arc::clone(device), ms);
            }
        }
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        inner.latencies_us.saturating_record(u64::from(us));
        inner.max_us = inner.max_us.max(us);
        if inner.per_second.len() <= second {
            inner.per_second.resize(second + 1, 0);
        }
        inner.per_second[second] += 1;
        if let Err(e) = result {
            let e = e.to_string();
            if inner.samples.len() < ERROR_SAMPLES && !inner.samples.contains(&e) {
                inner.samples.push(e);
            }
        }
    }

    /// Polls finished in the last `window` seconds (whole seconds, the current one too).
    pub fn finished_within(&self, window: u64) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = inner.per_second.len();
        let from = n.saturating_sub(usize::try_from(window).unwrap_or(usize::MAX));
        inner.per_second[from..].iter().sum()
    }

    /// Latency percentiles (p50, p90, p99, max) in milliseconds, None before any poll.
    pub fn latency_ms(&self) -> Option<[f64; 4]> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        percentiles(&inner.latencies_us, inner.max_us)
    }

    pub fn per_second(&self) -> Vec<u64> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .per_second
            .clone()
    }

    pub fn error_samples(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .samples
            .clone()
    }
}

/// A timed-out device: an SNMP request without an answer, or the status the polling job
/// reports for it (TIMEOUT, or PING_FAILURE when the device then did not answer a ping
/// either).
fn is_timeout(error: &JobError) -> bool {
    error
        .downcast_ref::<RunError>()
        .is_some_and(RunError::is_device_timeout)
}

/// Nearest-rank percentiles (p50, p90, p99) of microsecond samples, each the highest
/// value of its sample's three-digit bucket (at most 0.1% over, never over `max_us`), and
/// `max_us`; in milliseconds.
fn percentiles(samples: &Histogram<u32>, max_us: u32) -> Option<[f64; 4]> {
    if samples.is_empty() {
        return None;
    }
    let rank = |q: f64| samples.value_at_quantile(q).min(u64::from(max_us)) as f64 / 1000.0;
    Some([
        rank(0.50),
        rank(0.90),
        rank(0.99),
        f64::from(max_us) / 1000.0,
    ])
}

struct TimedJob {
    inner: Arc<dyn Job>,
    log: Arc<PollLog>,
    device: Arc<str>,
}

impl Job for TimedJob {
    fn run(&self) -> BoxFuture<Result<(), JobError>> {
        let run = self.inner.run();
        let log = Arc::clone(&self.log);
        let device = Arc::clone(&self.device);
        let meter = log
            .started_runs
            .fetch_add(1, Relaxed)
            .is_multiple_of(log.meter_every);
        Box::pin(async move {
            let started = Instant::now();
            let result = if meter {
                let mut metered = Metered {
                    inner: run,
                    cpu_ns: 0,
                };
                let result = (&mut metered).await;
                log.job_cpu_ns.fetch_add(metered.cpu_ns, Relaxed);
                log.metered_runs.fetch_add(1, Relaxed);
                result
            } else {
                run.await
            };
            log.record(&device, started.elapsed(), &result);
            result
        })
    }
}

/// A job's future, timed on the thread's CPU clock around each `poll`: the CPU the job
/// itself costs on its poller thread, whatever else that thread runs in between. Work the
/// job hands to other threads (the store's appends on the blocking pool, the SNMP
/// engine's receiver, sled's flushers) is not in it; the process's total is.
struct Metered {
    inner: BoxFuture<Result<(), JobError>>,
    cpu_ns: u64,
}

impl std::future::Future for Metered {
    type Output = Result<(), JobError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let t0 = thread_cpu_ns();
        let out = self.inner.as_mut().poll(cx);
        self.cpu_ns += thread_cpu_ns().saturating_sub(t0);
        out
    }
}

/// This thread's CPU time, in nanoseconds (0 if the clock cannot be read).
pub(super) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::PluginError;
    use crate::snmp::SnmpError;

    #[test]
    fn nearest_rank_percentiles() {
        let of = |samples: &[u32]| {
            let mut h = latency_histogram();
            for &s in samples {
                h.saturating_record(u64::from(s));
            }
            percentiles(&h, samples.iter().copied().max().unwrap_or(0))
        };
        assert_eq!(of(&[]), None);
        // 1..100 ms: nearest ranks 50, 90, 99 ms, each at most 0.1% over; the max exact.
        let s: Vec<u32> = (1..=100).rev().map(|i| i * 1000).collect();
        let [p50, p90, p99, max] = of(&s).unwrap();
        for (got, want) in [(p50, 50.0), (p90, 90.0), (p99, 99.0)] {
            assert!(got >= want && got <= want * 1.001, "{got} for {want}");
        }
        assert_eq!(max, 100.0);
        // Up to 2,048 µs the buckets are 1 µs wide: exact.
        let s: Vec<u32> = (1..=2000).collect();
        assert_eq!(of(&s), Some([1.0, 1.8, 1.98, 2.0]));
        assert_eq!(of(&[7000]), Some([7.0; 4]));
        // Longer than the histogram's bound: counted at the bound, not lost.
        assert_eq!(of(&[u32::MAX, 3]).unwrap()[3], f64::from(u32::MAX) / 1000.0);
    }

    /// Every plan wraps a job per plugin and device: the device's name is kept once.
    #[test]
    fn wrapped_jobs_share_their_device_name() {
        let log = PollLog::new(1);
        for device in ["sw1", "sw2", "sw1", "sw1"] {
            let _job = log.wrap(device, Arc::new(panoptes_actors::NoopJob));
        }
        let inner = log.inner.lock().unwrap();
        let mut names: Vec<(&str, u32)> = inner.devices.iter().map(|(n, &ms)| (&**n, ms)).collect();
        names.sort_unstable();
        assert_eq!(names, [("sw1", NOT_RUN), ("sw2", NOT_RUN)]);
        let sw1 = Arc::clone(inner.devices.get_key_value("sw1").unwrap().0);
        drop(inner);
        assert_eq!(log.devices_first_run_within(3600.0), 0, "wrapped, not run");
        log.record(&sw1, Duration::from_millis(2), &Ok(()));
        assert_eq!(log.devices_first_run_within(3600.0), 1);
        assert_eq!(log.all_devices_run_by_s(2), None, "sw2 has not run");
        assert!(log.all_devices_run_by_s(1).is_some());
    }

    #[test]
    fn outcomes_are_counted_apart() {
        let log = PollLog::new(1);
        let failed = |e: RunError| Err(JobError::failed(e));
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        log.record(&a, Duration::from_millis(3), &Ok(()));
        log.record(
            &a,
            Duration::from_millis(5),
            &failed(RunError::Plugin(PluginError::Snmp(SnmpError::Timeout {
                target: "x".into(),
                after: Duration::from_secs(5),
            }))),
        );
        log.record(
            &a,
            Duration::from_millis(1),
            &failed(RunError::Plugin(PluginError::Config("refused".into()))),
        );
        assert_eq!(
            log.all_devices_run_by_s(2),
            None,
            "one device of two so far"
        );
        log.record(
            &b,
            Duration::from_millis(1),
            &failed(RunError::DeviceStatus { code: 7 }),
        );
        assert_eq!(log.polls.load(Relaxed), 4);
        assert_eq!(log.timeouts.load(Relaxed), 2);
        assert_eq!(log.errors.load(Relaxed), 1);
        assert_eq!(log.finished_within(60), 4);
        assert_eq!(log.error_samples().len(), 3);
        assert_eq!(log.latency_ms().unwrap()[3], 5.0);
        // Both devices ran within the first minute, each counted once.
        assert_eq!(log.devices_first_run_within(60.0), 2);
        let by = log.all_devices_run_by_s(2).unwrap();
        assert!((0.0..60.0).contains(&by), "{by}");
    }
}
