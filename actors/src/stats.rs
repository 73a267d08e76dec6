//! Statistics of the actors, and the log discipline for shed work.
//!
//! The pool's counters are atomics behind an `Arc` so `/metrics` can read them from any
//! thread without a message round trip (the pool is the busiest mailbox). The scheduler and
//! the consumer answer a message with a plain snapshot instead: they are read rarely.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::pool::Outcome;

/// Upper bounds of the run-duration histogram buckets; one more bucket holds the rest.
pub const DURATION_BUCKETS: [Duration; 10] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

/// Live counters of a poller pool. Gauges (`running`, `queued`) are set by the pool; the
/// rest only grow.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub(crate) submitted: AtomicU64,
    pub(crate) running: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) shed: AtomicU64,
    pub(crate) last_duration_us: AtomicU64,
    pub(crate) duration_sum_us: AtomicU64,
    /// Non-cumulative counts, one per `DURATION_BUCKETS` entry plus the overflow bucket.
    pub(crate) buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
}

/// A consistent-enough copy of `PoolStats` (each counter is read atomically on its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStatsSnapshot {
    /// `Execute` requests received.
    pub submitted: u64,
    /// Jobs running now.
    pub running: u64,
    /// Requests waiting for a free slot now.
    pub queued: u64,
    /// Runs that finished, whatever their outcome (shed requests never ran: not counted).
    pub completed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    /// Requests refused because the queue was full or the pool was draining.
    pub shed: u64,
    pub last_duration: Duration,
    pub duration_sum: Duration,
    /// Non-cumulative counts per `DURATION_BUCKETS` bound, then the overflow bucket.
    pub duration_buckets: Vec<u64>,
}

impl PoolStats {
    pub fn snapshot(&self) -> PoolStatsSnapshot {
        PoolStatsSnapshot {
            submitted: self.submitted.load(Relaxed),
            running: self.running.load(Relaxed),
            queued: self.queued.load(Relaxed),
            completed: self.completed.load(Relaxed),
            succeeded: self.succeeded.load(Relaxed),
            failed: self.failed.load(Relaxed),
            timed_out: self.timed_out.load(Relaxed),
            shed: self.shed.load(Relaxed),
            last_duration: Duration::from_micros(self.last_duration_us.load(Relaxed)),
            duration_sum: Duration::from_micros(self.duration_sum_us.load(Relaxed)),
            duration_buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
        }
    }

    pub(crate) fn record_run(&self, outcome: &Outcome, duration: Duration) {
        let counter = match outcome {
            Outcome::Succeeded => &self.succeeded,
            Outcome::Failed(_) => &self.failed,
            Outcome::TimedOut => &self.timed_out,
            Outcome::Shed => return,
        };
        counter.fetch_add(1, Relaxed);
        self.completed.fetch_add(1, Relaxed);
        let us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.last_duration_us.store(us, Relaxed);
        self.duration_sum_us.fetch_add(us, Relaxed);
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| duration <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
    }
}

/// Run results counted by outcome; used for a scheduler's totals and for each plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Runs that finished, whatever their outcome (shed requests never ran: not counted).
    pub completed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    /// Requests the pool refused (its queue was full).
    pub shed: u64,
    pub last_duration: Option<Duration>,
    /// Time of every completed run together: `total_duration / completed` is the mean.
    pub total_duration: Duration,
}

impl RunCounts {
    /// The mean time of a completed run.
    pub fn mean_duration(&self) -> Option<Duration> {
        u32::try_from(self.completed)
            .ok()
            .filter(|&n| n > 0)
            .map(|n| self.total_duration / n)
    }

    pub(crate) fn record(&mut self, outcome: &Outcome, duration: Duration) {
        match outcome {
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::Shed => {
                self.shed += 1;
                return;
            }
        }
        self.completed += 1;
        self.last_duration = Some(duration);
        self.total_duration = self.total_duration.saturating_add(duration);
    }
}

/// A scheduler's state, answered to `GetSchedulerStats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    pub name: String,
    /// Keys in the current schedule.
    pub keys: usize,
    /// Keys whose first run still waits for `hold_until`.
    pub held: usize,
    /// Keys with a run in flight now.
    pub in_flight: usize,
    /// Plans applied.
    pub plans: u64,
    /// Time spent planning (building and applying plans), in microseconds: it runs on the
    /// scheduler's thread, so this is CPU time of the node.
    pub plan_us: u64,
    /// Runs handed to the pool.
    pub submitted: u64,
    /// Looks for due keys (the scheduler wakes only when a key is due, at most once per
    /// tick).
    pub scans: u64,
    /// Submissions refused because the pool's mailbox was full (retried next tick).
    pub pool_full: u64,
    /// Times a key came due while its previous run was still in flight.
    pub skipped_in_flight: u64,
    /// Runs started late because the previous run of their key overran its interval.
    pub missed: u64,
    pub runs: RunCounts,
    /// Per plugin (`WorkItem::group`).
    pub groups: BTreeMap<String, GroupStats>,
}

/// One plugin's share of a scheduler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub keys: usize,
    pub runs: RunCounts,
}

/// A consumer's state, answered to `GetConsumerStats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub name: String,
    /// Items the sink accepted (an item redelivered after a failed commit counts twice).
    pub delivered: u64,
    /// Batches the sink accepted.
    pub batches: u64,
    /// Failed (or timed-out) deliveries; each is retried.
    pub delivery_failures: u64,
    /// Failed fetches, including reading the committed position at start.
    pub fetch_failures: u64,
    pub commit_failures: u64,
    /// The last committed position (next offset to read), once known.
    pub committed: Option<u64>,
    /// From `Source::lag`.
    pub lag: Option<u64>,
    /// Items fetched and not yet delivered.
    pub buffered: usize,
    pub last_error: Option<String>,
}

/// How often a continuing overload is reported again.
const OVERLOAD_REWARN: Duration = Duration::from_secs(10);

/// Logs shed work without flooding the log: a warning when shedding starts, again every
/// `OVERLOAD_REWARN` while it goes on (with the count), and a line when it stops. The
/// counters that go with it live in the stats above.
#[derive(Debug, Default)]
pub(crate) struct Overload {
    /// Shed since the last warning, and when that warning was.
    current: Option<(Instant, u64)>,
    total_in_episode: u64,
}

impl Overload {
    pub(crate) fn shed(&mut self, actor: &str, what: &str, detail: &dyn std::fmt::Display) {
        self.total_in_episode += 1;
        match &mut self.current {
            Some((warned_at, n)) if warned_at.elapsed() < OVERLOAD_REWARN => *n += 1,
            Some((warned_at, n)) => {
                tracing::warn!(
                    actor,
                    shed = *n + 1,
                    "{what}: still shedding work (latest: {detail})"
                );
                *warned_at = Instant::now();
                *n = 0;
            }
            None => {
                tracing::warn!(actor, "{what}: shedding work ({detail})");
                self.current = Some((Instant::now(), 0));
            }
        }
    }

    pub(crate) fn relieved(&mut self, actor: &str, what: &str) {
        if self.current.take().is_some() {
            tracing::info!(
                actor,
                shed = self.total_in_episode,
                "{what}: no longer shedding work"
            );
            self.total_in_episode = 0;
        }
    }
}
