//! The scheduler with a real pool: cadence, no overlap, hold_until, rescans, stats.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use common::{eventually, SleepJob, Tracker};
use panoptes_actors::{
    BoxFuture, GetSchedulerStats, Job, Planner, PollerPool, PoolConfig, Rescan, Scheduler,
    SchedulerConfig, SchedulerStats, WorkItem,
};

/// Plans whatever the test put in the shared list.
struct ListPlanner {
    items: Arc<Mutex<Vec<WorkItem>>>,
    plans: Arc<AtomicUsize>,
}

impl Planner for ListPlanner {
    fn plan(&mut self) -> BoxFuture<Vec<WorkItem>> {
        let items = self.items.lock().unwrap().clone();
        self.plans.fetch_add(1, SeqCst);
        Box::pin(async move { items })
    }
}

fn item(key: &str, device: &str, interval: Duration, job: Arc<dyn Job>) -> WorkItem {
    WorkItem {
        key: key.into(),
        group: key.split(':').next().unwrap_or(key).into(),
        device: device.into(),
        interval,
        hold_until: None,
        job,
    }
}

fn fast_config() -> SchedulerConfig {
    SchedulerConfig {
        tick: Duration::from_millis(10),
        rescan_interval: Duration::from_secs(3600),
        first_run_spread: Duration::from_millis(50),
        run_lifted_at_once: true,
    }
}

fn start(items: Vec<WorkItem>, pool: PoolConfig) -> (Addr<Scheduler>, Arc<Mutex<Vec<WorkItem>>>) {
    let pool = PollerPool::new(pool, Vec::new()).start();
    let shared = Arc::new(Mutex::new(items));
    let planner = ListPlanner {
        items: Arc::clone(&shared),
        plans: Arc::default(),
    };
    let scheduler = Scheduler::new("test", planner, pool, fast_config()).start();
    (scheduler, shared)
}

async fn stats(scheduler: &Addr<Scheduler>) -> SchedulerStats {
    scheduler.send(GetSchedulerStats).await.unwrap()
}

#[actix_rt::test]
async fn runs_each_key_about_every_interval() {
    let interval = Duration::from_millis(100);
    let a = Arc::new(Tracker::default());
    let b = Arc::new(Tracker::default());
    let (scheduler, _) = start(
        vec![
            item("p:a", "a", interval, SleepJob::new(&[&a], Duration::ZERO)),
            item("p:b", "b", interval, SleepJob::new(&[&b], Duration::ZERO)),
        ],
        PoolConfig::default(),
    );
    assert!(eventually(|| a.started() >= 5 && b.started() >= 5).await);
    // The scheduler submits a key `interval` after its previous submission; the job's own
    // start may lag its submission by a varying delay, hence the halved lower bound on
    // each gap. Above, the mean gap as a ratio of the interval: a busy machine may be late
    // by some, a key scheduled at a multiple of its interval (or never again) is not.
    for tracker in [&a, &b] {
        let starts = tracker.starts.lock().unwrap().clone();
        for pair in starts.windows(2) {
            assert!(
                pair[1] - pair[0] >= interval / 2,
                "{:?} apart",
                pair[1] - pair[0]
            );
        }
        let n = starts.len() as u32;
        let mean = (starts[starts.len() - 1] - starts[0]) / (n - 1);
        let ratio = mean.as_secs_f64() / interval.as_secs_f64();
        assert!(
            (0.5..=5.0).contains(&ratio),
            "mean gap {mean:?} over {n} starts: {ratio:.2} intervals"
        );
    }
    let s = stats(&scheduler).await;
    assert_eq!(s.keys, 2);
    assert!(s.submitted >= 10);
    assert!(s.runs.succeeded >= 8);
    assert_eq!(s.runs.failed, 0);
}

#[actix_rt::test]
async fn never_overlaps_a_slow_key() {
    let slow = Arc::new(Tracker::default());
    let all = Arc::new(Tracker::default());
    let pool = PoolConfig {
        deadline: Some(Duration::from_secs(30)), // let the slow job overrun its interval
        per_device: 4,
        ..PoolConfig::default()
    };
    let interval = Duration::from_millis(50);
    let (scheduler, _) = start(
        vec![
            item(
                "p:slow",
                "d",
                interval,
                SleepJob::new(&[&slow, &all], Duration::from_millis(200)),
            ),
            item(
                "p:other",
                "d",
                interval,
                SleepJob::new(&[&all], Duration::from_millis(200)),
            ),
        ],
        pool,
    );
    assert!(eventually(|| slow.started() >= 4).await);
    assert_eq!(slow.max(), 1, "runs of one key overlapped");
    assert_eq!(all.max(), 2, "different keys do run side by side");
    let s = stats(&scheduler).await;
    assert!(s.skipped_in_flight >= 1, "{s:?}");
    assert!(s.missed >= 1, "{s:?}");
}

#[actix_rt::test]
async fn first_run_waits_for_hold_until() {
    let tracker = Arc::new(Tracker::default());
    let hold_until = Instant::now() + Duration::from_millis(500);
    let mut held = item(
        "p:held",
        "d",
        Duration::from_millis(20),
        SleepJob::new(&[&tracker], Duration::ZERO),
    );
    held.hold_until = Some(hold_until);
    let free = Arc::new(Tracker::default());
    let (scheduler, _) = start(
        vec![
            held,
            item(
                "p:free",
                "e",
                Duration::from_millis(20),
                SleepJob::new(&[&free], Duration::ZERO),
            ),
        ],
        PoolConfig::default(),
    );
    assert!(eventually(|| tracker.started() >= 3).await);
    let first = tracker.starts.lock().unwrap()[0];
    assert!(
        first >= hold_until,
        "started {:?} early",
        hold_until - first
    );
    // The hold is only for the first run: afterwards the key keeps its interval.
    assert!(free.started() >= 3);
    assert_eq!(stats(&scheduler).await.held, 0);
}

#[actix_rt::test]
async fn held_keys_are_reported() {
    let tracker = Arc::new(Tracker::default());
    let mut held = item(
        "p:held",
        "d",
        Duration::from_millis(20),
        SleepJob::new(&[&tracker], Duration::ZERO),
    );
    held.hold_until = Some(Instant::now() + Duration::from_secs(3600));
    let (scheduler, _) = start(vec![held], PoolConfig::default());
    let mut s = stats(&scheduler).await;
    for _ in 0..100 {
        if s.plans > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        s = stats(&scheduler).await;
    }
    assert_eq!((s.plans, s.keys, s.held), (1, 1, 1));
    assert_eq!(tracker.started(), 0);
}

#[actix_rt::test]
async fn rescan_adds_and_removes_keys() {
    let interval = Duration::from_millis(30);
    let a = Arc::new(Tracker::default());
    let b = Arc::new(Tracker::default());
    let c = Arc::new(Tracker::default());
    let job = |t: &Arc<Tracker>| SleepJob::new(&[t], Duration::ZERO);
    let (scheduler, plan) = start(
        vec![
            item("p:a", "a", interval, job(&a)),
            item("p:b", "b", interval, job(&b)),
        ],
        PoolConfig::default(),
    );
    assert!(eventually(|| a.started() >= 2 && b.started() >= 2).await);
    *plan.lock().unwrap() = vec![
        item("p:b", "b", interval, job(&b)),
        item("q:c", "c", interval, job(&c)),
    ];
    scheduler.send(Rescan).await.unwrap();
    assert!(eventually(|| c.started() >= 1).await);
    let a_runs = a.started();
    let b_runs = b.started();
    assert!(eventually(|| c.started() >= 5 && b.started() >= b_runs + 3).await);
    assert_eq!(a.started(), a_runs, "a removed key ran again");
    let s = stats(&scheduler).await;
    assert_eq!(s.keys, 2);
    assert_eq!(s.plans, 2);
    assert_eq!(s.groups["q"].keys, 1);
    assert_eq!(s.groups["p"].keys, 1);
    assert!(s.groups["q"].runs.succeeded >= 4);
}

#[actix_rt::test]
async fn failures_and_timeouts_are_counted_per_plugin() {
    let t = Arc::new(Tracker::default());
    let interval = Duration::from_millis(30);
    let pool = PoolConfig {
        deadline: Some(Duration::from_millis(20)),
        ..PoolConfig::default()
    };
    let (scheduler, _) = start(
        vec![
            item("bad:x", "x", interval, SleepJob::failing(&[&t])),
            item(
                "slow:y",
                "y",
                interval,
                SleepJob::new(&[&t], Duration::from_secs(3600)),
            ),
            item(
                "good:z",
                "z",
                interval,
                SleepJob::new(&[&t], Duration::ZERO),
            ),
        ],
        pool,
    );
    let mut s = stats(&scheduler).await;
    for _ in 0..2000 {
        if s.groups.values().all(|g| g.runs.completed >= 2) && s.groups.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        s = stats(&scheduler).await;
    }
    let g = |name: &str| s.groups[name].runs.clone();
    assert!(g("bad").failed >= 2 && g("bad").succeeded == 0 && g("bad").timed_out == 0);
    assert!(g("slow").timed_out >= 2 && g("slow").succeeded == 0 && g("slow").failed == 0);
    assert!(g("good").succeeded >= 2 && g("good").failed == 0 && g("good").timed_out == 0);
    assert_eq!(
        s.runs.completed,
        s.groups.values().map(|g| g.runs.completed).sum::<u64>()
    );
}

#[actix_rt::test]
async fn a_run_shed_by_the_pool_is_retried_soon() {
    // One slot and no queue: of keys due together, all but one are shed at first. With an
    // interval of an hour, every key still runs within the test only through the retry.
    let pool = PoolConfig {
        max_in_flight: 1,
        queue_capacity: 0,
        ..PoolConfig::default()
    };
    let trackers: Vec<Arc<Tracker>> = (0..4).map(|_| Arc::new(Tracker::default())).collect();
    let items = trackers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let job = SleepJob::new(&[t], Duration::from_millis(300));
            item(
                &format!("p:{i}"),
                &format!("d{i}"),
                Duration::from_secs(3600),
                job,
            )
        })
        .collect();
    let (scheduler, _) = start(items, pool);
    assert!(eventually(|| trackers.iter().all(|t| t.started() == 1)).await);
    let mut s = stats(&scheduler).await;
    for _ in 0..2000 {
        if s.runs.completed == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        s = stats(&scheduler).await;
    }
    assert_eq!(s.runs.succeeded, 4, "{s:?}");
    assert!(s.runs.shed >= 1, "{s:?}");
}

#[actix_rt::test]
async fn an_idle_schedule_sleeps_until_a_key_is_due() {
    // One key, due again in an hour: after its first run the scheduler has nothing to look
    // for, so it must not wake every tick (10 ms here: ~50 looks in half a second).
    let a = Arc::new(Tracker::default());
    let b = Arc::new(Tracker::default());
    let hour = Duration::from_secs(3600);
    let (scheduler, plan) = start(
        vec![item("p:a", "a", hour, SleepJob::new(&[&a], Duration::ZERO))],
        PoolConfig::default(),
    );
    assert!(eventually(|| a.started() == 1).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = stats(&scheduler).await;
    assert_eq!((s.submitted, a.started()), (1, 1));
    assert!(s.scans <= 2, "looked for due keys {} times", s.scans);

    // A key planned while it sleeps is not left waiting for the hour: the plan sets the
    // next look for its first run (within first_run_spread, 50 ms).
    let planned = Instant::now();
    *plan.lock().unwrap() = vec![
        item("p:a", "a", hour, SleepJob::new(&[&a], Duration::ZERO)),
        item("p:b", "b", hour, SleepJob::new(&[&b], Duration::ZERO)),
    ];
    scheduler.send(Rescan).await.unwrap();
    assert!(eventually(|| b.started() == 1).await);
    let waited = b.starts.lock().unwrap()[0] - planned;
    assert!(
        waited < Duration::from_secs(5),
        "first run {waited:?} after the plan"
    );
    let s = stats(&scheduler).await;
    assert_eq!((s.submitted, a.started(), b.started()), (2, 1, 1));
    assert!(s.scans <= 4, "looked for due keys {} times", s.scans);
}
