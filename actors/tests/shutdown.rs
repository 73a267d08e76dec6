//! Stopping the System stops every actor, including a job that would hang forever.

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use common::{SleepJob, Tracker, PATIENCE};
use panoptes_actors::{
    BoxFuture, Consumer, ConsumerConfig, JobError, Planner, PollerPool, PoolConfig, Scheduler,
    SchedulerConfig, Sink, Source, WorkItem,
};

struct Fixed(Vec<WorkItem>);

impl Planner for Fixed {
    fn plan(&mut self) -> BoxFuture<Vec<WorkItem>> {
        let items = self.0.clone();
        Box::pin(async move { items })
    }
}

/// An endless source of numbers and a sink that takes its time.
struct Endless;

impl Source for Endless {
    type Item = u64;
    fn committed(&mut self) -> BoxFuture<Result<u64, JobError>> {
        Box::pin(async { Ok(0) })
    }
    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Vec<(u64, u64)>, JobError>> {
        let items = (from..from + max as u64).map(|o| (o, o)).collect();
        Box::pin(async move { Ok(items) })
    }
    fn commit(&mut self, _: u64) -> BoxFuture<Result<(), JobError>> {
        Box::pin(async { Ok(()) })
    }
}

struct Slow;

impl Sink<u64> for Slow {
    fn deliver(&mut self, _: Arc<[u64]>) -> BoxFuture<Result<(), JobError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        })
    }
}

#[test]
fn all_actors_stop_with_the_system() {
    let tracker = Arc::new(Tracker::default());
    let seen = Arc::clone(&tracker);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let sys = System::new();
        let worker = Arbiter::new();
        let handle = worker.handle();
        sys.block_on(async move {
            let pool = PollerPool::new(PoolConfig::default(), vec![handle]).start();
            let items = vec![WorkItem {
                key: "p:hang".into(),
                group: "p".into(),
                device: "d".into(),
                interval: Duration::from_secs(3600), // also its deadline: it would hang
                hold_until: None,
                job: SleepJob::new(&[&tracker], Duration::from_secs(3600)),
            }];
            let config = SchedulerConfig {
                tick: Duration::from_millis(10),
                first_run_spread: Duration::ZERO,
                ..SchedulerConfig::default()
            };
            Scheduler::new("s", Fixed(items), pool, config).start();
            Consumer::new("c", Endless, Slow, ConsumerConfig::default()).start();
            actix::spawn(async move {
                while tracker.started() == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                System::current().stop();
            });
        });
        let result = sys.run();
        let joined = worker.join();
        let _ = done_tx.send((result.is_ok(), joined.is_ok()));
    });
    let (ran, joined) = done_rx
        .recv_timeout(PATIENCE)
        .expect("the system did not stop");
    assert!(ran && joined);
    assert_eq!(seen.started(), 1);
    assert_eq!(
        seen.current(),
        0,
        "the hanging job was dropped with its arbiter"
    );
}
