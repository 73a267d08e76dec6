//! The poller pool: runs jobs under a global and a per-device concurrency limit, each with
//! a hard deadline, on worker arbiters.
//!
//! The pool's own thread only does bookkeeping; job futures run on the worker arbiters
//! (round-robin), so a CPU-heavy job does not stall admission. A request that finds no
//! free slot waits in a bounded FIFO queue; overflow is shed and answered with
//! `Outcome::Shed`. Every accepted request gets exactly one `Completed` reply.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::ArbiterHandle;
use tokio::sync::oneshot;

use crate::job::{Job, WorkKey};
use crate::stats::{Overload, PoolStats};

/// Limits of a poller pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Jobs running at once, over all devices (at least 1).
    pub max_in_flight: usize,
    /// Jobs running at once against one device (at least 1).
    pub per_device: usize,
    /// Hard deadline of every job; `None` = the deadline given in each `Execute`.
    pub deadline: Option<Duration>,
    /// Requests that may wait for a free slot; beyond that they are shed.
    pub queue_capacity: usize,
    /// The pool's mailbox; a sender's `try_send` fails beyond it. A scheduler on the same
    /// arbiter hands over at most this many runs per tick (the pool cannot read its mailbox
    /// while the scheduler's tick runs), so it bounds submissions to `capacity / tick`.
    pub mailbox_capacity: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_in_flight: 256,
            per_device: 1,
            deadline: None,
            queue_capacity: 10_000,
            mailbox_capacity: 4096,
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// The job returned an error (it logged it); its message, for reports.
    Failed(String),
    /// The deadline expired and the job's future was dropped.
    TimedOut,
    /// Never ran: the queue was full, or the pool was draining.
    Shed,
}

/// The reply to an `Execute`, sent to its `reply_to`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Completed {
    pub key: WorkKey,
    pub outcome: Outcome,
    /// How long the run took (zero when shed).
    pub duration: Duration,
}

/// Run a job once, when the limits allow.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Execute {
    pub key: WorkKey,
    pub group: Arc<str>,
    pub device: Arc<str>,
    /// Hard deadline, unless `PoolConfig::deadline` is set.
    pub deadline: Duration,
    pub job: Arc<dyn Job>,
    pub reply_to: Recipient<Completed>,
}

/// Graceful stop: shed what waits, refuse new work, and resolve once no job is running
/// (each is bounded by its deadline). Send it before stopping the System to let running
/// jobs finish; without it, stopping the System drops (cancels) them.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Drain;

/// Sent by a job's task back to the pool when the run is over.
#[derive(Message)]
#[rtype(result = "()")]
struct Finished {
    key: WorkKey,
    device: Arc<str>,
    reply_to: Recipient<Completed>,
    outcome: Outcome,
    duration: Duration,
}

pub struct PollerPool {
    config: PoolConfig,
    workers: Vec<ArbiterHandle>,
    next_worker: usize,
    stats: Arc<PoolStats>,
    running: usize,
    /// Running jobs per device; a device leaves the map when its count drops to zero so
    /// the map stays as small as the work in flight.
    per_device: HashMap<Arc<str>, usize>,
    queue: VecDeque<Execute>,
    draining: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
    overload: Overload,
}

impl PollerPool {
    /// `workers`: arbiters the jobs run on, round-robin (one per core, made by the caller
    /// with `Arbiter::new()`); empty = run jobs on the pool's own arbiter. Limits of 0 are
    /// raised to 1 (a pool that can run nothing would queue forever).
    pub fn new(mut config: PoolConfig, workers: Vec<ArbiterHandle>) -> Self {
        if config.max_in_flight == 0 || config.per_device == 0 {
            tracing::warn!(
                max_in_flight = config.max_in_flight,
                per_device = config.per_device,
                "poller pool limits must be at least 1; raising them to 1"
            );
            config.max_in_flight = config.max_in_flight.max(1);
            config.per_device = config.per_device.max(1);
        }
        PollerPool {
            config,
            workers,
            next_worker: 0,
            stats: Arc::default(),
            running: 0,
            per_device: HashMap::new(),
            queue: VecDeque::new(),
            draining: false,
            drain_waiters: Vec::new(),
            overload: Overload::default(),
        }
    }

    /// The live counters; clone the `Arc` before starting the actor.
    pub fn stats(&self) -> Arc<PoolStats> {
        Arc::clone(&self.stats)
    }

    fn has_room(&self, device: &str) -> bool {
        self.running < self.config.max_in_flight
            && self.per_device.get(device).copied().unwrap_or(0) < self.config.per_device
    }

    fn start(&mut self, msg: Execute, ctx: &mut Context<Self>) {
        self.running += 1;
        *self.per_device.entry(msg.device.clone()).or_insert(0) += 1;
        self.stats.running.store(self.running as u64, Relaxed);

        let deadline = self.config.deadline.unwrap_or(msg.deadline);
        let pool = ctx.address();
        let Execute {
            key,
            device,
            job,
            reply_to,
            ..
        } = msg;
        // Built afresh per attempt: `ArbiterHandle::spawn` consumes the future even when the
        // arbiter is gone, and then we try the next one.
        let task = move || {
            let (pool, key, device, job, reply_to) = (
                pool.clone(),
                key.clone(),
                device.clone(),
                Arc::clone(&job),
                reply_to.clone(),
            );
            run_job(deadline, job, move |outcome, duration| {
                pool.do_send(Finished {
                    key,
                    device,
                    reply_to,
                    outcome,
                    duration,
                })
            })
        };
        for _ in 0..self.workers.len() {
            let worker = &self.workers[self.next_worker % self.workers.len()];
            self.next_worker = self.next_worker.wrapping_add(1);
            if worker.spawn(task()) {
                return;
            }
            tracing::warn!("poller pool: a worker arbiter has stopped; trying the next one");
        }
        // No workers (or all stopped): run on our own arbiter, outside the actor's context
        // so that a supervised restart does not cancel it and lose its `Finished`.
        actix::spawn(task());
    }

    fn shed(&mut self, msg: Execute, why: &str) {
        self.stats.shed.fetch_add(1, Relaxed);
        tracing::debug!(key = %msg.key, device = %msg.device, "poller pool shed a request: {why}");
        self.overload.shed("poller pool", why, &msg.key);
        // `do_send`: replies are bounded by the requests we accepted, one each.
        msg.reply_to.do_send(Completed {
            key: msg.key,
            outcome: Outcome::Shed,
            duration: Duration::ZERO,
        });
    }

    /// Starts waiting requests that now fit, oldest first. Requests for a device at its
    /// limit stay queued without blocking those behind them for other devices.
    fn start_queued(&mut self, ctx: &mut Context<Self>) {
        let mut i = 0;
        while i < self.queue.len() && self.running < self.config.max_in_flight {
            if self.has_room(&self.queue[i].device) {
                if let Some(msg) = self.queue.remove(i) {
                    self.start(msg, ctx);
                }
            } else {
                i += 1;
            }
        }
        self.stats.queued.store(self.queue.len() as u64, Relaxed);
    }
}

/// Runs one job under its deadline and reports how it went.
async fn run_job(
    deadline: Duration,
    job: Arc<dyn Job>,
    report: impl FnOnce(Outcome, Duration) + Send + 'static,
) {
    let started = Instant::now();
    // `job.run()` is called here, on the worker, so its synchronous part runs there too.
    let outcome = match tokio::time::timeout(deadline, job.run()).await {
        Ok(Ok(())) => Outcome::Succeeded,
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
        Err(_) => Outcome::TimedOut,
    };
    report(outcome, started.elapsed());
}

impl Actor for PollerPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.config.mailbox_capacity);
    }
}

/// Nothing to reset: job tasks live outside the actor's context and report to the same
/// mailbox after a restart, so the counters of running jobs and the queue stay true.
impl Supervised for PollerPool {}

impl Handler<Execute> for PollerPool {
    type Result = ();

    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) {
        self.stats.submitted.fetch_add(1, Relaxed);
        if self.draining {
            return self.shed(msg, "pool is draining");
        }
        if self.has_room(&msg.device) {
            self.start(msg, ctx);
        } else if self.queue.len() < self.config.queue_capacity {
            self.queue.push_back(msg);
            self.stats.queued.store(self.queue.len() as u64, Relaxed);
        } else {
            return self.shed(msg, "queue full");
        }
        self.overload.relieved("poller pool", "queue");
    }
}

impl Handler<Finished> for PollerPool {
    type Result = ();

    fn handle(&mut self, msg: Finished, ctx: &mut Self::Context) {
        self.running = self.running.saturating_sub(1);
        if let Some(n) = self.per_device.get_mut(&msg.device) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_device.remove(&msg.device);
            }
        }
        self.stats.running.store(self.running as u64, Relaxed);
        self.stats.record_run(&msg.outcome, msg.duration);
        if msg.outcome == Outcome::TimedOut {
            tracing::warn!(key = %msg.key, device = %msg.device, after = ?msg.duration,
                "job hit its deadline and was cancelled");
        }
        // `do_send`: one reply per accepted request, so bounded by in-flight work.
        msg.reply_to.do_send(Completed {
            key: msg.key,
            outcome: msg.outcome,
            duration: msg.duration,
        });
        self.start_queued(ctx);
        if self.running == 0 {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl Handler<Drain> for PollerPool {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        self.draining = true;
        while let Some(msg) = self.queue.pop_front() {
            self.shed(msg, "pool is draining");
        }
        self.stats.queued.store(0, Relaxed);
        if self.running == 0 {
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        self.drain_waiters.push(tx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
