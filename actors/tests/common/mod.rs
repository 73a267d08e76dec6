//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_actors::{BoxFuture, Completed, Job, JobError};

/// Generous bound for anything the tests wait for: a loaded CI machine is slow, and the
/// tests assert what happened, never how fast.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `cond` until it holds or `PATIENCE` runs out.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Counts runs and how many overlap. The count is taken down by a guard's `Drop`, so a
/// run cancelled at its deadline leaves too.
#[derive(Default)]
pub struct Tracker {
    pub current: AtomicUsize,
    pub max: AtomicUsize,
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
    pub starts: Mutex<Vec<Instant>>,
}

pub struct Running(Arc<Tracker>);

impl Tracker {
    pub fn enter(self: &Arc<Self>) -> Running {
        let now = self.current.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        self.started.fetch_add(1, SeqCst);
        self.starts.lock().unwrap().push(Instant::now());
        Running(Arc::clone(self))
    }
    pub fn max(&self) -> usize {
        self.max.load(SeqCst)
    }
    pub fn started(&self) -> usize {
        self.started.load(SeqCst)
    }
    pub fn current(&self) -> usize {
        self.current.load(SeqCst)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, SeqCst);
        self.0.finished.fetch_add(1, SeqCst);
    }
}

/// A job that sleeps, then succeeds or fails, tracked by every tracker it is given.
pub struct SleepJob {
    pub trackers: Vec<Arc<Tracker>>,
    pub sleep: Duration,
    pub fail: bool,
}

impl SleepJob {
    pub fn new(trackers: &[&Arc<Tracker>], sleep: Duration) -> Arc<Self> {
        Arc::new(SleepJob {
            trackers: trackers.iter().map(|t| Arc::clone(t)).collect(),
            sleep,
            fail: false,
        })
    }
    pub fn failing(trackers: &[&Arc<Tracker>]) -> Arc<Self> {
        Arc::new(SleepJob {
            trackers: trackers.iter().map(|t| Arc::clone(t)).collect(),
            sleep: Duration::ZERO,
            fail: true,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed on purpose")]
struct OnPurpose;

impl Job for SleepJob {
    fn run(&self) -> BoxFuture<Result<(), JobError>> {
        let guards: Vec<Running> = self.trackers.iter().map(|t| t.enter()).collect();
        let (sleep, fail) = (self.sleep, self.fail);
        Box::pin(async move {
            let _guards = guards;
            tokio::time::sleep(sleep).await;
            if fail {
                Err(JobError::failed(OnPurpose))
            } else {
                Ok(())
            }
        })
    }
}

/// Collects the pool's replies, in arrival order.
pub struct Collector(pub Arc<Mutex<Vec<Completed>>>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Completed> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Completed, _: &mut Self::Context) {
        self.0.lock().unwrap().push(msg);
    }
}

pub fn collector() -> (Recipient<Completed>, Arc<Mutex<Vec<Completed>>>) {
    let replies = Arc::new(Mutex::new(Vec::new()));
    let addr = Collector(Arc::clone(&replies)).start();
    (addr.recipient(), replies)
}
