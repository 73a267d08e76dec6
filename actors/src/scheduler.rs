//! The scheduler: keeps a schedule of work items (from a `Planner`) and hands each key to
//! the poller pool when it is due.
//!
//! Cadence: a new key's first run is spread over `[0, min(interval, first_run_spread)]`
//! with random jitter (so keys planned together do not all fire at once; when the spread
//! covers the interval, on the key's own place, see "Phases"), and never before its
//! `hold_until`. After that a run is due `interval` after the previous run's START (or
//! a little sooner, see "Phases" below). A key whose run is still in flight is never
//! submitted again; if a run overran its interval, the next one starts as soon as it
//! finishes. A run the pool shed (its queue was full) is retried after a fresh first-run
//! jitter. A key held (waiting for its enrichment) when it was planned runs within
//! [`LIFT_SPREAD`] of the plan that sees the hold lifted, not on its place: a device is
//! then first polled right after its first enrichment, within the interval it was
//! discovered in (waiting for the place cost half the fleet a whole interval), and moves
//! to its place over its next two runs like any key. (Unless `run_lifted_at_once` is off,
//! as in a cluster: there a held key may be a device that moved here, polled by its
//! previous owner this interval, so it waits for its place.)
//!
//! Phases: runs that start together (a fleet planned at once with a short
//! `first_run_spread`, held keys lifted together) would stay together forever, a burst at
//! every interval boundary. So each key has its own place in the interval (a hash of its
//! key), and each run brings the next one toward it: the next run is due up to half an
//! interval early (never late), so a key reaches its place within two runs and the fleet's
//! runs spread evenly over the interval whatever the first-run spread. A run that starts on
//! its place (the steady state) is due exactly `interval` later. Places are counted from
//! midnight UTC (see [`Origin`]): the same in every process.
//!
//! Planning is synchronous work on the scheduler's thread (a big fleet costs tens of ms),
//! and rescans are asked for by every new enrichment that lands: a plan starts at most once
//! per [`PLAN_GAP_FACTOR`] times the cost of the previous one, so planning takes a bounded
//! share of a core however often it is asked for.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::Rng;

use crate::job::{Planner, WorkItem, WorkKey};
use crate::pool::{Completed, Execute, Outcome, PollerPool};
use crate::stats::{Overload, SchedulerStats};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The shortest gap between two looks for due keys: keys that come due within it are
    /// handed over together. The scheduler sleeps until the earliest key is due (an idle
    /// schedule costs no wakeups), and looks again at most once per `tick`.
    pub tick: Duration,
    /// How often the planner is asked for a fresh schedule.
    pub rescan_interval: Duration,
    /// The first runs of new keys are spread over at most this long.
    pub first_run_spread: Duration,
    /// A held key whose hold lifts runs within [`LIFT_SPREAD`] (true), or on its place in
    /// the interval like a new key (false: in a cluster, where the key may be a device that
    /// moved here and was polled by its previous owner this interval).
    pub run_lifted_at_once: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: Duration::from_millis(250),
            rescan_interval: Duration::from_secs(60),
            first_run_spread: Duration::from_secs(2),
            run_lifted_at_once: true,
        }
    }
}

/// Ask the planner for a new schedule now.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Rescan;

/// A held key whose hold lifts (its enrichment just landed) runs within this long of the
/// plan that saw it: the lifts of one plan are that plan's share of the enrichments, which
/// are spread already, so a short spread keeps a burst from one plan off the pool without
/// pushing a new device's first poll out of the interval it was discovered in.
pub const LIFT_SPREAD: Duration = Duration::from_secs(2);

/// A plan starts no sooner than this many times the previous plan's cost after it ended.
pub const PLAN_GAP_FACTOR: u32 = 9;
/// ...and never waits longer than this for it.
const MAX_PLAN_GAP: Duration = Duration::from_secs(5);

#[derive(Message, Debug)]
#[rtype(result = "SchedulerStats")]
pub struct GetSchedulerStats;

/// One key of the schedule and what we know of its runs.
struct Entry {
    item: WorkItem,
    /// When the first run would be due without `hold_until` (now + jitter when planned).
    first_due: Instant,
    next_due: Instant,
    last_start: Option<Instant>,
    in_flight: bool,
    /// `next_due` passed while in flight (so `skipped_in_flight` counts it once).
    overran: bool,
}

/// The schedule: its entries sorted by key, found by binary search.
///
/// Why not a `HashMap<Arc<str>, Entry>`: at 10,000 keys that was 16,384 slots of 184
/// bytes (3 MiB a scheduler, the key held twice); sorted, it is 10,000 entries of 168
/// bytes. A plan replaces the whole list at once (one sort), and a run's start and end
/// each find their entry in ≈14 key compares.
#[derive(Default)]
struct Entries(Vec<Entry>);

impl Entries {
    fn get(&self, key: &WorkKey) -> Option<&Entry> {
        let at = self.find(key).ok()?;
        self.0.get(at)
    }

    fn get_mut(&mut self, key: &WorkKey) -> Option<&mut Entry> {
        let at = self.find(key).ok()?;
        self.0.get_mut(at)
    }

    fn find(&self, key: &WorkKey) -> Result<usize, usize> {
        self.0.binary_search_by(|e| e.item.key.cmp(key))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.0.iter()
    }

    fn iter_mut(&mut self) -> std::slice::IterMut<'_, Entry> {
        self.0.iter_mut()
    }
}

pub struct Scheduler {
    name: String,
    planner: Box<dyn Planner>,
    pool: Addr<PollerPool>,
    config: SchedulerConfig,
    entries: Entries,
    /// Keys dropped from the schedule while a run was in flight. If one comes back before
    /// that run reports, it must still count as in flight, or its runs could overlap.
    orphans: HashSet<WorkKey>,
    planning: bool,
    /// A rescan was asked for while planning: plan again when that plan lands.
    replan: bool,
    /// The earliest start of the next plan (see [`PLAN_GAP_FACTOR`]).
    next_plan_at: Option<Instant>,
    /// A plan is set to start at `next_plan_at`.
    plan_deferred: bool,
    stats: SchedulerStats,
    overload: Overload,
    /// Where the keys' phases are counted from (see [`toward_phase`]).
    origin: Origin,
    /// The next look for due keys, when one is set.
    wake: Option<Wake>,
    /// When due keys were last looked for.
    last_scan: Option<Instant>,
}

/// A look for due keys set for `at`.
struct Wake {
    at: Instant,
    handle: SpawnHandle,
}

impl Scheduler {
    pub fn new(
        name: impl Into<String>,
        planner: impl Planner,
        pool: Addr<PollerPool>,
        config: SchedulerConfig,
    ) -> Self {
        let name = name.into();
        Scheduler {
            stats: SchedulerStats {
                name: name.clone(),
                ..SchedulerStats::default()
            },
            name,
            planner: Box::new(planner),
            pool,
            config,
            entries: Entries::default(),
            orphans: HashSet::new(),
            planning: false,
            replan: false,
            next_plan_at: None,
            plan_deferred: false,
            overload: Overload::default(),
            origin: Origin::wall_clock(),
            wake: None,
            last_scan: None,
        }
    }

    fn plan(&mut self, ctx: &mut Context<Self>) {
        if self.planning {
            self.replan = true;
            return;
        }
        let now = Instant::now();
        if let Some(at) = self.next_plan_at.filter(|&at| at > now) {
            if !self.plan_deferred {
                self.plan_deferred = true;
                ctx.run_later(at - now, |act, ctx| {
                    act.plan_deferred = false;
                    act.plan(ctx);
                });
            }
            return;
        }
        self.planning = true;
        let plan = self.planner.plan();
        let cost = now.elapsed();
        ctx.spawn(plan.into_actor(self).map(move |items, act, ctx| {
            act.planning = false;
            let started = Instant::now();
            act.apply_plan(items, started);
            if let Some(due) = act.earliest_due() {
                act.wake_at(due, ctx);
            }
            let cost = cost + started.elapsed();
            act.stats.plan_us = act
                .stats
                .plan_us
                .saturating_add(u64::try_from(cost.as_micros()).unwrap_or(u64::MAX));
            act.next_plan_at = Some(Instant::now() + (cost * PLAN_GAP_FACTOR).min(MAX_PLAN_GAP));
            if std::mem::take(&mut act.replan) {
                act.plan(ctx);
            }
        }));
    }

    /// Replaces the schedule, keeping what we know of the keys that remain.
    fn apply_plan(&mut self, mut items: Vec<WorkItem>, now: Instant) {
        // Both sorted by key (the sort is stable: of a key listed twice, the plan's first
        // comes first), so the old entries are matched by walking both lists together.
        items.sort_by(|a, b| a.key.cmp(&b.key));
        let mut old = std::mem::take(&mut self.entries.0).into_iter().peekable();
        let mut entries: Vec<Entry> = Vec::with_capacity(items.len());
        for mut item in items {
            if entries.last().is_some_and(|e| e.item.key == item.key) {
                tracing::warn!(scheduler = %self.name, key = %item.key,
                    "the plan lists this key twice; keeping the first");
                continue;
            }
            // Old keys before this one are gone from the schedule.
            while let Some(gone) = old.next_if(|e| e.item.key < item.key) {
                if gone.in_flight {
                    self.orphans.insert(gone.item.key);
                }
            }
            let entry = match old.next_if(|e| e.item.key == item.key) {
                Some(mut entry) => {
                    match entry.last_start {
                        // Held when planned and lifted now: a fresh first run from now (see
                        // the module's doc).
                        None if entry.item.hold_until.is_some() && item.hold_until.is_none() => {
                            entry.first_due = now + self.lift_delay(&item.key, item.interval, now);
                            entry.next_due = entry.first_due;
                        }
                        // Not run yet: a changed hold_until still applies to the first run,
                        // but never later than the hold it was first planned with (a planner
                        // may give "now + the longest wait" at every plan; the wait counts
                        // from the first).
                        None => {
                            if let (Some(was), Some(now_held)) =
                                (entry.item.hold_until, &mut item.hold_until)
                            {
                                *now_held = was.min(*now_held);
                            }
                            entry.next_due = hold(entry.first_due, item.hold_until);
                        }
                        Some(start) => {
                            entry.next_due =
                                due_after(&self.origin, &item.key, item.interval, start)
                        }
                    }
                    // The names the schedule already holds stay (each plan makes its own
                    // copies: kept, they would be long-lived blocks allocated among a
                    // plan's short-lived ones). But a key's subject is the plan's: a
                    // planner hands out a long-lived copy it shares (the resource store's
                    // serialization key, made again only when the resource changes), and
                    // keeping the old one would hold both.
                    item.key = WorkKey::new(
                        Arc::clone(entry.item.key.prefix()),
                        Arc::clone(item.key.subject()),
                    );
                    if item.device == entry.item.device {
                        item.device = Arc::clone(&entry.item.device);
                    }
                    if item.group == entry.item.group {
                        item.group = Arc::clone(&entry.item.group);
                    }
                    entry.item = item;
                    entry
                }
                None => {
                    let first_due = now + self.first_delay(&item.key, item.interval, now);
                    Entry {
                        first_due,
                        next_due: hold(first_due, item.hold_until),
                        last_start: None,
                        in_flight: self.orphans.remove(&item.key),
                        overran: false,
                        item,
                    }
                }
            };
            entries.push(entry);
        }
        self.orphans
            .extend(old.filter(|e| e.in_flight).map(|e| e.item.key));
        self.entries = Entries(entries);
        self.stats.plans += 1;
        tracing::debug!(scheduler = %self.name, keys = self.entries.len(), "schedule replaced");
    }

    /// When a new key's first run is due after `now`: on the key's place in the interval
    /// when the first runs may spread over a whole interval (so they start where they will
    /// stay), else a random moment within `first_run_spread` (and the runs after it move
    /// to the key's place).
    fn first_delay(&self, key: &WorkKey, interval: Duration, now: Instant) -> Duration {
        let spread = self.config.first_run_spread;
        if spread < interval {
            return jitter(interval, spread);
        }
        // Now is `past` beyond the key's place: the place comes again after the rest of
        // the interval.
        let past = past_place(key_hash(key), interval, self.origin.since(now));
        if past.is_zero() {
            Duration::ZERO
        } else {
            interval - past
        }
    }

    /// When a key whose hold just lifted first runs: within [`LIFT_SPREAD`] (and no later
    /// than a new key's first run would be), or as a new key when the scheduler is told
    /// not to run lifted keys at once.
    fn lift_delay(&self, key: &WorkKey, interval: Duration, now: Instant) -> Duration {
        if self.config.run_lifted_at_once {
            jitter(interval, self.config.first_run_spread.min(LIFT_SPREAD))
        } else {
            self.first_delay(key, interval, now)
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.last_scan = Some(now);
        self.stats.scans += 1;
        let mut due = Vec::new();
        for entry in self.entries.iter_mut() {
            if entry.next_due > now {
                continue;
            }
            if !entry.in_flight {
                due.push((entry.next_due, entry.item.key.clone()));
            } else if !entry.overran {
                entry.overran = true;
                self.stats.skipped_in_flight += 1;
            }
        }
        // Oldest first, so a backlog drains fairly.
        due.sort_unstable();
        for (_, key) in due {
            if !self.submit(&key, now, ctx) {
                break; // the pool refuses; the rest are retried next tick
            }
        }
        if let Some(next) = self.earliest_due() {
            self.wake_at(next, ctx);
        }
    }

    /// The earliest `next_due` of the keys not in flight (a key in flight is looked at
    /// again when its run reports).
    fn earliest_due(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| !e.in_flight)
            .map(|e| e.next_due)
            .min()
    }

    /// Makes sure due keys are looked for by `due`, or one `tick` after the last look if
    /// that is later (keys coming due close together are handed over together). A look
    /// already set for that moment or sooner stands.
    fn wake_at(&mut self, due: Instant, ctx: &mut Context<Self>) {
        let tick = self.config.tick.max(Duration::from_millis(1));
        let at = self.last_scan.map_or(due, |last| due.max(last + tick));
        if let Some(wake) = &self.wake {
            if wake.at <= at {
                return;
            }
            ctx.cancel_future(wake.handle);
        }
        let handle = ctx.run_later(at.saturating_duration_since(Instant::now()), |act, ctx| {
            act.wake = None;
            act.tick(ctx);
        });
        self.wake = Some(Wake { at, handle });
    }

    /// Hands a key to the pool. `false` when the pool's mailbox refused it.
    fn submit(&mut self, key: &WorkKey, now: Instant, ctx: &mut Context<Self>) -> bool {
        let Some(entry) = self.entries.get_mut(key) else {
            return true;
        };
        let next_due = due_after(&self.origin, key, entry.item.interval, now);
        let msg = Execute {
            key: entry.item.key.clone(),
            group: entry.item.group.clone(),
            device: entry.item.device.clone(),
            deadline: entry.item.interval,
            job: entry.item.job.clone(),
            reply_to: ctx.address().recipient(),
        };
        let why = match self.pool.try_send(msg) {
            Ok(()) => {
                entry.in_flight = true;
                entry.overran = false;
                entry.last_start = Some(now);
                entry.next_due = next_due;
                self.stats.submitted += 1;
                self.overload.relieved(&self.name, "poller pool mailbox");
                return true;
            }
            Err(SendError::Full(_)) => "poller pool mailbox full",
            Err(SendError::Closed(_)) => "poller pool stopped",
        };
        self.stats.pool_full += 1;
        self.overload.shed(&self.name, why, key);
        false
    }

    fn snapshot(&self) -> SchedulerStats {
        let mut stats = self.stats.clone();
        stats.keys = self.entries.len();
        stats.in_flight = self.entries.iter().filter(|e| e.in_flight).count();
        let now = Instant::now();
        stats.held = self
            .entries
            .iter()
            .filter(|e| e.last_start.is_none() && e.item.hold_until.is_some_and(|h| h > now))
            .count();
        for entry in self.entries.iter() {
            group_stats(&mut stats.groups, &entry.item.group).keys += 1;
        }
        stats
    }
}

/// The statistics of plugin `name`, made on first use (the name is copied only then).
fn group_stats<'a>(
    groups: &'a mut std::collections::BTreeMap<String, crate::stats::GroupStats>,
    name: &str,
) -> &'a mut crate::stats::GroupStats {
    if !groups.contains_key(name) {
        return groups.entry(name.to_owned()).or_default();
    }
    groups.get_mut(name).expect("present: looked up just above")
}

/// A uniformly random delay in `[0, min(interval, spread)]`.
fn jitter(interval: Duration, spread: Duration) -> Duration {
    interval
        .min(spread)
        .mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

/// Where phases are counted from: the last midnight UTC, so every scheduler (another
/// process, a restarted node, another member of a cluster) puts a key on the same place
/// of its interval, for every interval that divides a day (60 s, 300 s, ...). A device
/// that moves to another node, or a node that restarts, then polls it one interval after
/// the last poll, not sooner (with the clocks in sync, as NTP keeps them).
#[derive(Debug, Clone, Copy)]
struct Origin {
    at: Instant,
    /// How long after midnight UTC `at` was.
    offset: Duration,
}

impl Origin {
    fn wall_clock() -> Origin {
        const DAY_US: u128 = 86_400_000_000;
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Origin {
            at: Instant::now(),
            offset: Duration::from_micros((since_epoch.as_micros() % DAY_US) as u64),
        }
    }

    /// How long after the origin `t` is.
    fn since(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.at) + self.offset
    }
}

/// When the run after one of `key` that started at `start` is due (`origin`: the
/// scheduler's, where phases are counted from).
fn due_after(origin: &Origin, key: &WorkKey, interval: Duration, start: Instant) -> Instant {
    start + interval - toward_phase(key_hash(key), interval, origin.since(start))
}

/// How much sooner than `interval` the next run of the key whose [`key_hash`] is `hash`
/// should be due, when this one started `since_origin` after the scheduler's origin:
/// enough to land the next run on the key's own place in the interval (its hash), at most
/// half an interval, so a key moves to its place within two runs and runs never come
/// closer than half an interval.
fn toward_phase(hash: u64, interval: Duration, since_origin: Duration) -> Duration {
    // A run that starts a little early is far past its place.
    past_place(hash, interval, since_origin).min(interval / 2)
}

/// How far a moment `since_origin` after the scheduler's origin is past the place in the
/// interval of the key whose [`key_hash`] is `hash` (the place: the hash modulo the
/// interval, counted from the origin), in `[0, interval)`.
fn past_place(hash: u64, interval: Duration, since_origin: Duration) -> Duration {
    let period = interval.as_micros();
    if period < 2 {
        return Duration::ZERO;
    }
    let place = u128::from(hash) % period;
    let now = since_origin.as_micros() % period;
    let past = (now + period - place) % period;
    Duration::from_micros(u64::try_from(past).unwrap_or(u64::MAX))
}

/// FNV-1a, 64 bits (the `fnv` crate's, as `panoptes::hash`), of the key's text form: a
/// key's place must not change between plans, restarts or nodes (std's hasher is seeded
/// per process), nor with how the key is held (FNV-1a of the parts in turn is that of the
/// whole text).
fn key_hash(key: &WorkKey) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    for part in key.parts() {
        h.write(part);
    }
    h.finish()
}

fn hold(due: Instant, hold_until: Option<Instant>) -> Instant {
    hold_until.map_or(due, |h| due.max(h))
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A zero period would spin (and tokio rejects it).
        let tick = self.config.tick.max(Duration::from_millis(1));
        let rescan = self.config.rescan_interval.max(tick);
        self.plan(ctx);
        // After a restart the schedule is still here: look for what is due at once.
        if let Some(due) = self.earliest_due() {
            self.wake_at(due, ctx);
        }
        ctx.run_interval(rescan, |act, ctx| act.plan(ctx));
    }
}

/// A restart cancels the context's futures, including a plan in progress, so the flags
/// that said one was running must go. The schedule and in-flight marks stay: the pool
/// still reports those runs to this same mailbox.
impl Supervised for Scheduler {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.planning = false;
        self.replan = false;
        self.plan_deferred = false;
        self.overload = Overload::default();
        self.wake = None;
    }
}

impl Handler<Rescan> for Scheduler {
    type Result = ();

    fn handle(&mut self, _: Rescan, ctx: &mut Self::Context) {
        self.plan(ctx);
    }
}

impl Handler<Completed> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: Completed, ctx: &mut Self::Context) {
        let now = Instant::now();
        self.stats.runs.record(&msg.outcome, msg.duration);
        let Some(entry) = self.entries.get_mut(&msg.key).filter(|e| e.in_flight) else {
            // A run of a key that has left the schedule.
            self.orphans.remove(&msg.key);
            return;
        };
        entry.in_flight = false;
        group_stats(&mut self.stats.groups, &entry.item.group)
            .runs
            .record(&msg.outcome, msg.duration);
        if msg.outcome == Outcome::Shed {
            // The pool's queue was full (typically a burst of first runs). Waiting a whole
            // interval would leave the pool idle once the burst drains, and retrying at once
            // would feed the overload: spread the retry like a first run.
            entry.next_due = now + jitter(entry.item.interval, self.config.first_run_spread);
        } else if entry.next_due <= now {
            if !entry.overran {
                // Came due while in flight, with no look for due keys in between.
                self.stats.skipped_in_flight += 1;
            }
            self.stats.missed += 1;
            self.submit(&msg.key, now, ctx);
        }
        // Not in flight any more (or refused by the pool): look again when it is due.
        if let Some(entry) = self.entries.get(&msg.key).filter(|e| !e.in_flight) {
            let due = entry.next_due;
            self.wake_at(due, ctx);
        }
    }
}

impl Handler<GetSchedulerStats> for Scheduler {
    type Result = MessageResult<GetSchedulerStats>;

    fn handle(&mut self, _: GetSchedulerStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{BoxFuture, NoopJob};
    use crate::pool::PoolConfig;
    use std::sync::Arc;

    struct NoPlan;
    impl Planner for NoPlan {
        fn plan(&mut self) -> BoxFuture<Vec<WorkItem>> {
            Box::pin(async { Vec::new() })
        }
    }

    fn item(key: &str, interval: Duration, hold_until: Option<Instant>) -> WorkItem {
        WorkItem {
            key: key.into(),
            group: "g".into(),
            device: "d".into(),
            interval,
            hold_until,
            job: Arc::new(NoopJob),
        }
    }

    #[actix_rt::test]
    async fn first_runs_are_spread_and_held() {
        let pool = PollerPool::new(PoolConfig::default(), Vec::new()).start();
        let config = SchedulerConfig {
            first_run_spread: Duration::from_secs(2),
            ..SchedulerConfig::default()
        };
        let mut s = Scheduler::new("t", NoPlan, pool, config);
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        s.apply_plan(
            vec![
                item("a", Duration::from_secs(60), None),
                item("b", Duration::from_millis(500), None),
                item("c", Duration::from_secs(60), Some(later)),
            ],
            now,
        );
        let due = |k: &str| s.entries.get(&k.into()).unwrap().next_due;
        assert!(due("a") >= now && due("a") <= now + Duration::from_secs(2));
        assert!(due("b") >= now && due("b") <= now + Duration::from_millis(500));
        assert_eq!(due("c"), later);

        // Replanning keeps the key's jitter; a lifted hold gets a fresh one from then.
        let first_a = due("a");
        let lifted = now + Duration::from_millis(1);
        s.apply_plan(
            vec![
                item("a", Duration::from_secs(60), None),
                item("c", Duration::from_secs(60), None),
            ],
            lifted,
        );
        assert_eq!(s.entries.get(&"a".into()).unwrap().next_due, first_a);
        let c = s.entries.get(&"c".into()).unwrap().next_due;
        assert!(c >= lifted && c <= lifted + Duration::from_secs(2));
        assert!(s.entries.get(&"b".into()).is_none());
    }

    /// A plan in any order: the schedule is sorted and found by key, a key listed twice
    /// keeps its first item, and a key dropped while in flight still counts as in flight
    /// when it comes back (its runs must not overlap); dropped while idle, it comes back
    /// as a new key.
    #[actix_rt::test]
    async fn a_plan_in_any_order_keeps_the_first_of_a_key_and_its_runs_in_flight() {
        let pool = PollerPool::new(PoolConfig::default(), Vec::new()).start();
        let mut s = Scheduler::new("t", NoPlan, pool, SchedulerConfig::default());
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let held = now + Duration::from_secs(3600);
        s.apply_plan(
            vec![
                item("m", minute, None),
                item("z", minute, None),
                item("a", minute, Some(held)),
                item("m", minute, Some(held)),
                item("q", minute, None),
            ],
            now,
        );
        let keys: Vec<String> = s.entries.iter().map(|e| e.item.key.to_string()).collect();
        assert_eq!(keys, ["a", "m", "q", "z"]);
        assert_eq!(s.entries.get(&"a".into()).unwrap().next_due, held);
        // The first "m" (not held) was kept.
        assert_eq!(s.entries.get(&"m".into()).unwrap().item.hold_until, None);
        assert!(s.entries.get(&"b".into()).is_none() && s.entries.get(&"zz".into()).is_none());

        s.entries.get_mut(&"q".into()).unwrap().in_flight = true;
        let m = s.entries.get(&"m".into()).unwrap().item.clone();
        let again = item("m", minute, None);
        let planned_subject = Arc::clone(again.key.subject());
        s.apply_plan(vec![again], now);
        assert_eq!(s.entries.len(), 1);
        // The schedule keeps its own copies of a planned-again key's names, but takes the
        // plan's subject (a planner's long-lived, shared copy).
        let kept = &s.entries.get(&"m".into()).unwrap().item;
        assert!(Arc::ptr_eq(kept.key.prefix(), m.key.prefix()));
        assert!(Arc::ptr_eq(kept.key.subject(), &planned_subject));
        assert!(Arc::ptr_eq(&kept.device, &m.device));
        assert!(Arc::ptr_eq(&kept.group, &m.group));
        assert_eq!(
            s.orphans.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            ["q"]
        );
        s.apply_plan(
            vec![
                item("z", minute, None),
                item("q", minute, None),
                item("m", minute, None),
            ],
            now,
        );
        assert!(s.entries.get(&"q".into()).unwrap().in_flight);
        assert!(!s.entries.get(&"z".into()).unwrap().in_flight);
        assert!(s.orphans.is_empty());
    }

    /// Runs of a fleet planned together, each started the moment it is due: where in the
    /// interval each run falls, run after run.
    fn phases_of_runs(keys: usize, interval: Duration, runs: usize) -> Vec<Vec<Duration>> {
        let origin = Origin {
            at: Instant::now(),
            offset: Duration::ZERO,
        };
        let period = interval.as_micros();
        let mut starts: Vec<Instant> = vec![origin.at + Duration::from_millis(3); keys];
        let mut out = Vec::new();
        for _ in 0..runs {
            let mut phases = Vec::new();
            for (k, start) in starts.iter_mut().enumerate() {
                let key = format!("polling:interface:10.0.{}.{}", k / 256, k % 256);
                let next = due_after(&origin, &key.as_str().into(), interval, *start);
                let gap = next - *start;
                assert!(gap >= interval / 2 && gap <= interval, "{key}: gap {gap:?}");
                let phase = (*start - origin.at).as_micros() % period;
                phases.push(Duration::from_micros(phase as u64));
                *start = next;
            }
            out.push(phases);
        }
        out
    }

    #[test]
    fn runs_started_together_spread_over_the_interval_within_two_runs() {
        let interval = Duration::from_secs(60);
        let runs = phases_of_runs(1000, interval, 5);
        // Each tenth of the interval holds ≈100 of the 1,000 runs.
        let deciles = |phases: &[Duration]| {
            let mut n = [0usize; 10];
            for p in phases {
                n[(p.as_secs_f64() / 6.0) as usize] += 1;
            }
            n
        };
        assert_eq!(deciles(&runs[0])[0], 1000, "all started together");
        for run in &runs[2..] {
            let n = deciles(run);
            assert!(n.iter().all(|&c| (60..=140).contains(&c)), "{n:?}");
        }
        // In place, a key stays there: the runs after the second are a whole interval apart.
        assert_eq!(runs[3], runs[4]);
    }

    #[actix_rt::test]
    async fn first_runs_spread_over_a_whole_interval_start_on_their_place() {
        let pool = PollerPool::new(PoolConfig::default(), Vec::new()).start();
        let interval = Duration::from_secs(60);
        let config = SchedulerConfig {
            first_run_spread: interval,
            ..SchedulerConfig::default()
        };
        let mut s = Scheduler::new("t", NoPlan, pool, config);
        let now = s.origin.at + Duration::from_millis(1234);
        let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        s.apply_plan(keys.iter().map(|k| item(k, interval, None)).collect(), now);
        for k in &keys {
            let due = s.entries.get(&k.as_str().into()).unwrap().next_due;
            assert!(due >= now && due < now + interval, "{k}");
            // On its place: a run started then is due exactly one interval later.
            assert_eq!(
                due_after(&s.origin, &k.as_str().into(), interval, due),
                due + interval,
                "{k}"
            );
        }
        // A held key whose hold lifts (its enrichment landed) runs at once, within
        // LIFT_SPREAD, whatever its place: a new device is polled in the interval it was
        // discovered in. Its runs after that move to its place like any key's.
        let held = "held";
        let later = now + Duration::from_secs(600);
        s.apply_plan(vec![item(held, interval, Some(later))], now);
        assert_eq!(s.entries.get(&held.into()).unwrap().next_due, later);
        // Planned again still held, with a later hold: the first hold stands; a sooner
        // one applies.
        s.apply_plan(vec![item(held, interval, Some(later + interval))], now);
        assert_eq!(s.entries.get(&held.into()).unwrap().next_due, later);
        assert_eq!(
            s.entries.get(&held.into()).unwrap().item.hold_until,
            Some(later)
        );
        let sooner = now + Duration::from_secs(300);
        s.apply_plan(vec![item(held, interval, Some(sooner))], now);
        assert_eq!(s.entries.get(&held.into()).unwrap().next_due, sooner);
        s.apply_plan(vec![item(held, interval, Some(later))], now);
        let lifted = now + Duration::from_millis(7);
        s.apply_plan(vec![item(held, interval, None)], lifted);
        let due = s.entries.get(&held.into()).unwrap().next_due;
        assert!(due >= lifted && due <= lifted + LIFT_SPREAD, "{due:?}");
        let second = due_after(&s.origin, &held.into(), interval, due);
        assert!(second >= due + interval / 2 && second <= due + interval);
        let third = due_after(&s.origin, &held.into(), interval, second);
        assert_eq!(
            due_after(&s.origin, &held.into(), interval, third),
            third + interval
        );

        // In a cluster a lifted key waits for its place: it may be a device that moved
        // here, polled by its previous owner this interval.
        s.config.run_lifted_at_once = false;
        s.apply_plan(vec![item("moved", interval, Some(later))], now);
        s.apply_plan(vec![item("moved", interval, None)], lifted);
        let due = s.entries.get(&"moved".into()).unwrap().next_due;
        assert!(due >= lifted && due < lifted + interval);
        assert_eq!(
            due_after(&s.origin, &"moved".into(), interval, due),
            due + interval
        );
    }

    #[test]
    fn a_run_on_its_place_is_due_a_whole_interval_later() {
        let interval = Duration::from_millis(500);
        let hash = key_hash(&"k".into());
        let place = Duration::from_micros(hash % 500_000);
        assert_eq!(toward_phase(hash, interval, place), Duration::ZERO);
        assert_eq!(
            toward_phase(hash, interval, place + interval * 3),
            Duration::ZERO
        );
        // Late by 10 ms (the tick): the next run makes it up.
        assert_eq!(
            toward_phase(hash, interval, place + Duration::from_millis(10)),
            Duration::from_millis(10)
        );
        // Never more than half the interval; nothing for intervals too short to matter.
        assert!(toward_phase(hash, interval, place + Duration::from_millis(499)) <= interval / 2);
        assert_eq!(
            toward_phase(hash, Duration::from_micros(1), place),
            Duration::ZERO
        );
    }

    /// A key held in two parts has the place its text form had as one string.
    #[test]
    fn a_key_in_parts_keeps_the_place_of_its_text() {
        use std::hash::Hasher;
        let text = "polling:Interface Polling Plugin:plugin||site|s|id|sw1|endpoint|10.0.0.1";
        let mut whole = fnv::FnvHasher::default();
        whole.write(text.as_bytes());
        let parts = WorkKey::new(
            "polling:Interface Polling Plugin".into(),
            "plugin||site|s|id|sw1|endpoint|10.0.0.1".into(),
        );
        assert_eq!(key_hash(&parts), whole.finish());
        assert_eq!(parts.to_string(), text);
        assert_eq!(key_hash(&WorkKey::from(text)), whole.finish());
        assert_ne!(
            key_hash(&WorkKey::from("polling:x")),
            key_hash(&"polling".into())
        );
    }

    #[test]
    fn schedulers_started_apart_put_a_key_on_the_same_place() {
        // Another node (or this one restarted) must poll a device on the same place of
        // its interval, or a device that moves between nodes could be polled twice in one.
        let interval = Duration::from_secs(60);
        let first = Origin::wall_clock();
        std::thread::sleep(Duration::from_millis(40));
        let second = Origin::wall_clock();
        let now = Instant::now();
        for key in ["k", "polling:Interface Polling Plugin:sw1.example.net"] {
            let a = past_place(key_hash(&key.into()), interval, first.since(now));
            let b = past_place(key_hash(&key.into()), interval, second.since(now));
            let apart = a.abs_diff(b).min(interval - a.abs_diff(b));
            assert!(apart < Duration::from_millis(10), "{key}: {a:?} vs {b:?}");
        }
        // ... and the place is counted from midnight UTC, not from when each started.
        assert!(
            second.offset >= first.offset + Duration::from_millis(40)
                || second.offset < first.offset
        );
    }
}
