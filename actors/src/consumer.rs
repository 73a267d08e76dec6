//! The topic consumer: reads a `Source` in batches, delivers them to a `Sink`, and commits
//! only after the sink accepted a batch.
//!
//! Delivery is at-least-once and in order: a batch the sink refused is retried, the very
//! same batch, with exponential backoff and jitter, and nothing after it is read until it
//! is accepted and committed. One operation (read, deliver or commit) is in flight at a
//! time, so there are never two deliveries at once. Each operation has a deadline
//! (`op_timeout`); a timed-out one is dropped and counts as a failure.
//!
//! Batching follows the original InfluxDB consumer: a batch goes out when it is full, or
//! when the log has nothing more and `max_emit_interval` has passed since the last one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::Rng;

use crate::job::{BoxFuture, JobError, Sink, Source};
use crate::stats::ConsumerStats;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Items per delivery, at most (at least 1).
    pub batch_size: usize,
    /// How long to wait before reading again once the log has nothing new: with a source
    /// that tells when records arrive ([`Source::until_more`]), the shortest gap between
    /// two reads (records arriving together are read together), else the polling period.
    pub poll_interval: Duration,
    /// A partial batch is held until this long after the previous delivery (zero = deliver
    /// whatever there is). The first batch goes out at once.
    pub max_emit_interval: Duration,
    /// Backoff after a failure: doubles from min to max, with jitter.
    pub retry_backoff_min: Duration,
    pub retry_backoff_max: Duration,
    /// Deadline of one fetch, delivery or commit.
    pub op_timeout: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            batch_size: 200,
            poll_interval: Duration::from_millis(250),
            max_emit_interval: Duration::from_secs(1),
            retry_backoff_min: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(30),
            op_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Message, Debug)]
#[rtype(result = "ConsumerStats")]
pub struct GetConsumerStats;

/// Stops the consumer; an operation in flight is dropped (what was delivered and not yet
/// committed is delivered again by the next consumer of that position). A supervised
/// consumer is restarted from the committed position.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Stop;

/// The operations a consumer runs, one at a time.
#[derive(Debug, Clone, Copy)]
enum Op {
    Position,
    Fetch,
    Deliver,
    Commit,
}

/// What was fetched and not yet committed.
#[derive(Default)]
enum Pending<I> {
    #[default]
    Nothing,
    /// Items read, waiting to make up a batch.
    Buffer(Vec<I>),
    /// A batch the sink has not accepted yet, and the position that commits it.
    Batch(Arc<[I]>, u64),
    /// A batch the sink accepted, not yet committed.
    Commit(u64),
}

pub struct Consumer<I: Send + Sync + Unpin + 'static> {
    name: String,
    source: Box<dyn Source<Item = I>>,
    sink: Box<dyn Sink<I>>,
    config: ConsumerConfig,
    /// Offset of the next item to read; `None` until the committed position is known.
    next: Option<u64>,
    pending: Pending<I>,
    last_emit: Option<Instant>,
    failures_in_row: u32,
    /// An operation is in flight: the only guard against two at once.
    busy: bool,
    stats: ConsumerStats,
}

impl<I: Send + Sync + Unpin + 'static> Consumer<I> {
    pub fn new(
        name: impl Into<String>,
        source: impl Source<Item = I>,
        sink: impl Sink<I>,
        mut config: ConsumerConfig,
    ) -> Self {
        let name = name.into();
        config.batch_size = config.batch_size.max(1);
        Consumer {
            stats: ConsumerStats {
                name: name.clone(),
                ..ConsumerStats::default()
            },
            name,
            source: Box::new(source),
            sink: Box::new(sink),
            config,
            next: None,
            pending: Pending::Nothing,
            last_emit: None,
            failures_in_row: 0,
            busy: false,
        }
    }

    /// Starts the next operation. Every operation ends by scheduling exactly one more
    /// `step`, so there is a single chain of them.
    fn step(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let Some(next) = self.next else {
            let op = self.source.committed();
            return self.run(Op::Position, op, ctx, |act, ctx, position| {
                act.next = Some(position);
                act.stats.committed = Some(position);
                act.stats.lag = act.source.lag();
                act.step(ctx);
            });
        };
        match &self.pending {
            Pending::Commit(position) => {
                let position = *position;
                let op = self.source.commit(position);
                self.run(Op::Commit, op, ctx, move |act, ctx, ()| {
                    act.pending = Pending::Nothing;
                    act.stats.committed = Some(position);
                    act.stats.lag = act.source.lag();
                    act.step(ctx);
                });
            }
            Pending::Batch(batch, position) => {
                let (items, position) = (batch.len() as u64, *position);
                let op = self.sink.deliver(Arc::clone(batch));
                self.run(Op::Deliver, op, ctx, move |act, ctx, ()| {
                    act.pending = Pending::Commit(position);
                    act.last_emit = Some(Instant::now());
                    act.stats.delivered += items;
                    act.stats.batches += 1;
                    act.stats.buffered = 0;
                    act.step(ctx);
                });
            }
            Pending::Nothing | Pending::Buffer(_) => {
                let max = self
                    .config
                    .batch_size
                    .saturating_sub(self.buffered())
                    .max(1);
                let op = self.source.fetch(next, max);
                self.run(Op::Fetch, op, ctx, move |act, ctx, items| {
                    act.fetched(items, max, ctx)
                });
            }
        }
    }

    fn buffered(&self) -> usize {
        match &self.pending {
            Pending::Buffer(items) => items.len(),
            _ => 0,
        }
    }

    fn fetched(&mut self, items: Vec<(u64, I)>, asked: usize, ctx: &mut Context<Self>) {
        // A source that returns more than asked must not make batches bigger than allowed.
        let got = items.len().min(asked);
        let mut buffer = match std::mem::take(&mut self.pending) {
            Pending::Buffer(buffer) => buffer,
            _ => Vec::new(),
        };
        let mut next = self.next.unwrap_or(0);
        for (offset, item) in items.into_iter().take(asked) {
            // Gaps are fine (retention); going back would duplicate or reorder.
            if offset < next {
                tracing::warn!(consumer = %self.name, offset, expected_at_least = next,
                    "source returned an item before the read position; skipped");
                continue;
            }
            next = offset.saturating_add(1);
            buffer.push(item);
        }
        self.next = Some(next);
        self.stats.buffered = buffer.len();
        self.stats.lag = self.source.lag();

        let caught_up = got < asked;
        let since_emit = self.last_emit.map(|t| t.elapsed());
        let emit_due = since_emit.is_none_or(|d| d >= self.config.max_emit_interval);
        if !buffer.is_empty() && (buffer.len() >= self.config.batch_size || caught_up && emit_due) {
            self.pending = Pending::Batch(buffer.into(), next);
            return self.step(ctx);
        }
        if !buffer.is_empty() {
            self.pending = Pending::Buffer(buffer);
        }
        if !caught_up {
            return self.step(ctx);
        }
        // Wait for new items, or until the held partial batch is due.
        let gap = tokio::time::sleep(self.config.poll_interval);
        let more = self.source.until_more(next);
        let emit = match (since_emit, &self.pending) {
            (Some(since), Pending::Buffer(_)) => {
                Some(self.config.max_emit_interval.saturating_sub(since))
            }
            _ => None,
        };
        let wake = async move {
            let ready = async move {
                match more {
                    // Sleeps until an append, then keeps the gap between reads.
                    Some(more) => tokio::join!(more, gap).0,
                    None => gap.await,
                }
            };
            match emit {
                Some(emit) => tokio::select! {
                    () = ready => {}
                    () = tokio::time::sleep(emit) => {}
                },
                None => ready.await,
            }
        };
        ctx.spawn(wake.into_actor(self).map(|(), act, ctx| act.step(ctx)));
    }

    /// Runs one operation under the deadline; on success `then` continues, on failure the
    /// same step is retried after a backoff.
    fn run<T: 'static>(
        &mut self,
        kind: Op,
        op: BoxFuture<Result<T, JobError>>,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>, T) + 'static,
    ) {
        self.busy = true;
        let deadline = self.config.op_timeout;
        let op = async move {
            match tokio::time::timeout(deadline, op).await {
                Ok(result) => result,
                Err(_) => Err(JobError::TimedOut(deadline)),
            }
        };
        ctx.spawn(op.into_actor(self).map(move |result, act, ctx| {
            act.busy = false;
            match result {
                Ok(value) => {
                    act.failures_in_row = 0;
                    then(act, ctx, value);
                }
                Err(error) => act.failed(kind, error, ctx),
            }
        }));
    }

    fn failed(&mut self, kind: Op, error: JobError, ctx: &mut Context<Self>) {
        let what = match kind {
            Op::Position => {
                self.stats.fetch_failures += 1;
                "reading the committed position"
            }
            Op::Fetch => {
                self.stats.fetch_failures += 1;
                "fetch"
            }
            Op::Deliver => {
                self.stats.delivery_failures += 1;
                "delivery"
            }
            Op::Commit => {
                self.stats.commit_failures += 1;
                "commit"
            }
        };
        let delay = backoff(
            self.failures_in_row,
            self.config.retry_backoff_min,
            self.config.retry_backoff_max,
        );
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        tracing::warn!(consumer = %self.name, error = %error, retry_in = ?delay, "{what} failed");
        self.stats.last_error = Some(format!("{what}: {error}"));
        ctx.run_later(delay, |act, ctx| act.step(ctx));
    }
}

/// Exponential backoff with "equal jitter": half the delay is fixed and half random, so
/// retries neither synchronise nor collapse to zero.
fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let exp = min.saturating_mul(2u32.saturating_pow(failures.min(31)));
    let delay = exp.min(max).max(min);
    delay / 2 + (delay / 2).mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

impl<I: Send + Sync + Unpin + 'static> Actor for Consumer<I> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.step(ctx);
    }
}

/// A restart cancelled the operation in flight: start over from the committed position
/// (what was delivered and not committed is delivered again: at-least-once).
impl<I: Send + Sync + Unpin + 'static> Supervised for Consumer<I> {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.busy = false;
        self.next = None;
        self.pending = Pending::Nothing;
        self.failures_in_row = 0;
        self.stats.buffered = 0;
    }
}

impl<I: Send + Sync + Unpin + 'static> Handler<GetConsumerStats> for Consumer<I> {
    type Result = MessageResult<GetConsumerStats>;

    fn handle(&mut self, _: GetConsumerStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats.clone())
    }
}

impl<I: Send + Sync + Unpin + 'static> Handler<Stop> for Consumer<I> {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        for failures in 0..40 {
            let d = backoff(failures, min, max);
            let cap = min
                .saturating_mul(2u32.saturating_pow(failures.min(31)))
                .min(max);
            assert!(
                d >= cap / 2 && d <= cap,
                "{failures}: {d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
    }
}
