//! The poller pool: limits, deadlines, shedding, draining.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use common::{collector, eventually, SleepJob, Tracker};
use panoptes_actors::{Drain, Execute, Job, Outcome, PollerPool, PoolConfig};

fn execute(
    key: &str,
    device: &str,
    deadline: Duration,
    job: Arc<dyn Job>,
    reply_to: &Recipient<panoptes_actors::Completed>,
) -> Execute {
    Execute {
        key: key.into(),
        group: "test".into(),
        device: device.into(),
        deadline,
        job,
        reply_to: reply_to.clone(),
    }
}

fn workers(n: usize) -> (Vec<Arbiter>, Vec<actix::ArbiterHandle>) {
    let arbiters: Vec<Arbiter> = (0..n).map(|_| Arbiter::new()).collect();
    let handles = arbiters.iter().map(|a| a.handle()).collect();
    (arbiters, handles)
}

const LONG: Duration = Duration::from_secs(30);

#[actix_rt::test]
async fn global_limit_caps_concurrency() {
    let (arbiters, handles) = workers(2);
    let config = PoolConfig {
        max_in_flight: 3,
        per_device: 10,
        ..PoolConfig::default()
    };
    let pool = PollerPool::new(config, handles);
    let stats = pool.stats();
    let pool = pool.start();
    let (reply_to, replies) = collector();
    let tracker = Arc::new(Tracker::default());
    for i in 0..12 {
        let job = SleepJob::new(&[&tracker], Duration::from_millis(150));
        pool.send(execute(
            &format!("k{i}"),
            &format!("d{i}"),
            LONG,
            job,
            &reply_to,
        ))
        .await
        .unwrap();
    }
    assert!(eventually(|| replies.lock().unwrap().len() == 12).await);
    assert!(replies
        .lock()
        .unwrap()
        .iter()
        .all(|c| c.outcome == Outcome::Succeeded));
    assert_eq!(
        tracker.max(),
        3,
        "never more than the global limit, and it is reached"
    );
    let s = stats.snapshot();
    assert_eq!((s.submitted, s.completed, s.succeeded), (12, 12, 12));
    assert_eq!((s.running, s.queued, s.shed), (0, 0, 0));
    assert_eq!(s.duration_buckets.iter().sum::<u64>(), 12);
    arbiters.iter().for_each(|a| {
        a.stop();
    });
}

#[actix_rt::test]
async fn one_job_per_device_while_devices_run_in_parallel() {
    let (arbiters, handles) = workers(2);
    let config = PoolConfig {
        max_in_flight: 10,
        per_device: 1,
        ..PoolConfig::default()
    };
    let pool = PollerPool::new(config, handles).start();
    let (reply_to, replies) = collector();
    let all = Arc::new(Tracker::default());
    let per_device = [Arc::new(Tracker::default()), Arc::new(Tracker::default())];
    for i in 0..6 {
        for (d, device) in per_device.iter().enumerate() {
            let job = SleepJob::new(&[&all, device], Duration::from_millis(100));
            pool.send(execute(
                &format!("k{i}-{d}"),
                &format!("dev{d}"),
                LONG,
                job,
                &reply_to,
            ))
            .await
            .unwrap();
        }
    }
    assert!(eventually(|| replies.lock().unwrap().len() == 12).await);
    assert_eq!(per_device[0].max(), 1);
    assert_eq!(per_device[1].max(), 1);
    assert_eq!(all.max(), 2, "the two devices ran side by side");
    arbiters.iter().for_each(|a| {
        a.stop();
    });
}

#[actix_rt::test]
async fn deadline_cancels_a_hanging_job_without_delaying_other_devices() {
    let (arbiters, handles) = workers(1);
    let pool = PollerPool::new(PoolConfig::default(), handles);
    let stats = pool.stats();
    let pool = pool.start();
    let (reply_to, replies) = collector();
    let dead = Arc::new(Tracker::default());
    let alive = Arc::new(Tracker::default());
    let hanging = SleepJob::new(&[&dead], Duration::from_secs(3600));
    pool.send(execute(
        "hang",
        "dead",
        Duration::from_millis(300),
        hanging,
        &reply_to,
    ))
    .await
    .unwrap();
    let fast = SleepJob::new(&[&alive], Duration::from_millis(1));
    pool.send(execute("fast", "alive", LONG, fast, &reply_to))
        .await
        .unwrap();

    assert!(eventually(|| replies.lock().unwrap().len() == 2).await);
    let replies = replies.lock().unwrap().clone();
    assert_eq!(
        replies[0].key.to_string(),
        "fast",
        "the live device did not wait for the dead one"
    );
    assert_eq!(replies[0].outcome, Outcome::Succeeded);
    assert_eq!(replies[1].key.to_string(), "hang");
    assert_eq!(replies[1].outcome, Outcome::TimedOut);
    assert_eq!(dead.current(), 0, "the hanging job's future was dropped");
    let s = stats.snapshot();
    assert_eq!((s.completed, s.succeeded, s.timed_out), (2, 1, 1));
    arbiters.iter().for_each(|a| {
        a.stop();
    });
}

#[actix_rt::test]
async fn pool_deadline_overrides_the_request() {
    let config = PoolConfig {
        deadline: Some(Duration::from_millis(100)),
        ..PoolConfig::default()
    };
    // No workers: jobs run on the pool's own arbiter.
    let pool = PollerPool::new(config, Vec::new()).start();
    let (reply_to, replies) = collector();
    let tracker = Arc::new(Tracker::default());
    let job = SleepJob::new(&[&tracker], Duration::from_secs(3600));
    pool.send(execute("k", "d", LONG, job, &reply_to))
        .await
        .unwrap();
    assert!(eventually(|| replies.lock().unwrap().len() == 1).await);
    assert_eq!(replies.lock().unwrap()[0].outcome, Outcome::TimedOut);
}

#[actix_rt::test]
async fn queue_overflow_is_shed_and_answered() {
    let config = PoolConfig {
        max_in_flight: 1,
        queue_capacity: 2,
        ..PoolConfig::default()
    };
    let pool = PollerPool::new(config, Vec::new());
    let stats = pool.stats();
    let pool = pool.start();
    let (reply_to, replies) = collector();
    let tracker = Arc::new(Tracker::default());
    for i in 0..5 {
        let job = SleepJob::new(&[&tracker], Duration::from_millis(100));
        pool.send(execute(
            &format!("k{i}"),
            &format!("d{i}"),
            LONG,
            job,
            &reply_to,
        ))
        .await
        .unwrap();
    }
    assert!(eventually(|| replies.lock().unwrap().len() == 5).await);
    let replies = replies.lock().unwrap().clone();
    let outcome = |key: &str| {
        replies
            .iter()
            .find(|c| c.key == key)
            .unwrap()
            .outcome
            .clone()
    };
    // k0 runs, k1 and k2 wait, k3 and k4 do not fit.
    assert_eq!(outcome("k0"), Outcome::Succeeded);
    assert_eq!(outcome("k1"), Outcome::Succeeded);
    assert_eq!(outcome("k2"), Outcome::Succeeded);
    assert_eq!(outcome("k3"), Outcome::Shed);
    assert_eq!(outcome("k4"), Outcome::Shed);
    assert_eq!(tracker.started(), 3);
    let s = stats.snapshot();
    assert_eq!((s.submitted, s.completed, s.shed), (5, 3, 2));
}

#[actix_rt::test]
async fn drain_lets_running_jobs_finish_and_sheds_the_rest() {
    let config = PoolConfig {
        max_in_flight: 1,
        ..PoolConfig::default()
    };
    let pool = PollerPool::new(config, Vec::new()).start();
    let (reply_to, replies) = collector();
    let tracker = Arc::new(Tracker::default());
    for i in 0..3 {
        let job = SleepJob::new(&[&tracker], Duration::from_millis(200));
        pool.send(execute(&format!("k{i}"), "d", LONG, job, &reply_to))
            .await
            .unwrap();
    }
    pool.send(Drain).await.unwrap();
    // Drain resolved: the running job is done, the waiting ones were refused.
    assert_eq!(tracker.current(), 0);
    assert_eq!(tracker.started(), 1);
    let late = SleepJob::new(&[&tracker], Duration::ZERO);
    pool.send(execute("late", "d", LONG, late, &reply_to))
        .await
        .unwrap();
    assert!(eventually(|| replies.lock().unwrap().len() == 4).await);
    let replies = replies.lock().unwrap().clone();
    let shed = replies
        .iter()
        .filter(|c| c.outcome == Outcome::Shed)
        .count();
    assert_eq!(shed, 3);
    assert!(replies
        .iter()
        .any(|c| c.key == "k0" && c.outcome == Outcome::Succeeded));
}
