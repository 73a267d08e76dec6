//! The topic consumer against an in-memory log and sink.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use common::eventually;
use panoptes_actors::{
    BoxFuture, Consumer, ConsumerConfig, ConsumerStats, GetConsumerStats, JobError, Sink, Source,
    Stop,
};

/// The log, its committed position and what the sink accepted, shared by both ends so the
/// source can check every commit against what was delivered.
#[derive(Default)]
struct World {
    /// (offset, item); items equal their offsets, so checks are easy.
    log: Vec<(u64, u64)>,
    committed: u64,
    commits: Vec<u64>,
    /// Items the sink accepted, in order.
    accepted: Vec<u64>,
    attempts: usize,
    /// The sink refuses this many next attempts.
    fail_next: usize,
    /// The sink hangs on this many next attempts.
    hang_next: usize,
    /// Commits that covered an item the sink had not accepted.
    violations: usize,
    delivering: usize,
    max_delivering: usize,
}

type Shared = Arc<Mutex<World>>;

fn world(items: impl IntoIterator<Item = u64>) -> Shared {
    let world = World {
        log: items.into_iter().map(|o| (o, o)).collect(),
        ..World::default()
    };
    Arc::new(Mutex::new(world))
}

fn append(world: &Shared, items: impl IntoIterator<Item = u64>) {
    world
        .lock()
        .unwrap()
        .log
        .extend(items.into_iter().map(|o| (o, o)));
}

struct MemSource(Shared);

impl Source for MemSource {
    type Item = u64;

    fn committed(&mut self) -> BoxFuture<Result<u64, JobError>> {
        let committed = self.0.lock().unwrap().committed;
        Box::pin(async move { Ok(committed) })
    }

    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Vec<(u64, u64)>, JobError>> {
        let items: Vec<_> = self
            .0
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(o, _)| *o >= from)
            .take(max)
            .cloned()
            .collect();
        Box::pin(async move { Ok(items) })
    }

    fn commit(&mut self, next_offset: u64) -> BoxFuture<Result<(), JobError>> {
        let mut w = self.0.lock().unwrap();
        let covered_but_not_accepted = w
            .log
            .iter()
            .filter(|(o, _)| *o < next_offset)
            .any(|(_, item)| !w.accepted.contains(item));
        if covered_but_not_accepted {
            w.violations += 1;
        }
        w.committed = next_offset;
        w.commits.push(next_offset);
        Box::pin(async { Ok(()) })
    }

    fn lag(&self) -> Option<u64> {
        let w = self.0.lock().unwrap();
        Some(w.log.iter().filter(|(o, _)| *o >= w.committed).count() as u64)
    }
}

struct MemSink(Shared);

#[derive(Debug, thiserror::Error)]
#[error("sink refused the batch")]
struct Refused;

/// Counts a delivery out even when its future is dropped at the deadline.
struct Delivering(Shared);

impl Drop for Delivering {
    fn drop(&mut self) {
        self.0.lock().unwrap().delivering -= 1;
    }
}

impl Sink<u64> for MemSink {
    fn deliver(&mut self, batch: Arc<[u64]>) -> BoxFuture<Result<(), JobError>> {
        let world = Arc::clone(&self.0);
        Box::pin(async move {
            let (fail, hang) = {
                let mut w = world.lock().unwrap();
                w.attempts += 1;
                w.delivering += 1;
                w.max_delivering = w.max_delivering.max(w.delivering);
                let fail = w.fail_next > 0;
                let hang = !fail && w.hang_next > 0;
                w.fail_next = w.fail_next.saturating_sub(1);
                w.hang_next -= usize::from(hang);
                (fail, hang)
            };
            let _guard = Delivering(Arc::clone(&world));
            tokio::time::sleep(Duration::from_millis(2)).await;
            if hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if fail {
                return Err(JobError::failed(Refused));
            }
            world.lock().unwrap().accepted.extend(batch.iter().copied());
            Ok(())
        })
    }
}

fn config(batch_size: usize) -> ConsumerConfig {
    ConsumerConfig {
        batch_size,
        poll_interval: Duration::from_millis(10),
        max_emit_interval: Duration::ZERO,
        retry_backoff_min: Duration::from_millis(5),
        retry_backoff_max: Duration::from_millis(40),
        op_timeout: Duration::from_secs(30),
    }
}

fn start(world: &Shared, config: ConsumerConfig) -> Addr<Consumer<u64>> {
    Consumer::new(
        "test",
        MemSource(world.clone()),
        MemSink(world.clone()),
        config,
    )
    .start()
}

async fn wait_stats(
    consumer: &Addr<Consumer<u64>>,
    cond: impl Fn(&ConsumerStats) -> bool,
) -> ConsumerStats {
    let mut stats = consumer.send(GetConsumerStats).await.unwrap();
    for _ in 0..2000 {
        if cond(&stats) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = consumer.send(GetConsumerStats).await.unwrap();
    }
    stats
}

#[actix_rt::test]
async fn delivers_everything_in_order_and_follows_the_log() {
    // A gap in the offsets (as retention or compaction leaves) is not a problem.
    let w = world((0..500).chain(510..1000));
    let consumer = start(&w, config(64));
    let s = wait_stats(&consumer, |s| s.committed == Some(1000)).await;
    assert_eq!(s.committed, Some(1000));
    append(&w, 1000..1010);
    let s = wait_stats(&consumer, |s| s.committed == Some(1010)).await;
    assert_eq!(s.committed, Some(1010));

    let w = w.lock().unwrap();
    let expected: Vec<u64> = (0..500).chain(510..1010).collect();
    assert_eq!(w.accepted, expected);
    assert_eq!(w.violations, 0);
    assert_eq!(w.max_delivering, 1, "two deliveries at once");
    assert!(
        w.commits.windows(2).all(|p| p[0] < p[1]),
        "commits went back"
    );
    assert_eq!(s.delivered, 1000);
    assert!(
        s.batches >= 990u64.div_ceil(64),
        "batches larger than batch_size"
    );
    assert_eq!(s.lag, Some(0));
    assert_eq!(
        s.delivery_failures + s.fetch_failures + s.commit_failures,
        0
    );
}

#[actix_rt::test]
async fn a_failing_sink_loses_nothing_and_duplicates_nothing() {
    let w = world(0..100);
    w.lock().unwrap().fail_next = usize::MAX;
    let consumer = start(&w, config(30));
    let s = wait_stats(&consumer, |s| s.delivery_failures >= 3).await;
    assert!(s.delivery_failures >= 3);
    assert_eq!(
        s.last_error.as_deref(),
        Some("delivery: sink refused the batch")
    );
    // Nothing is committed while the sink refuses, and the lag shows it.
    assert_eq!(s.committed, Some(0));
    assert_eq!(s.lag, Some(100));
    assert!(w.lock().unwrap().commits.is_empty());

    w.lock().unwrap().fail_next = 0;
    let s = wait_stats(&consumer, |s| s.committed == Some(100)).await;
    assert_eq!(s.committed, Some(100));
    assert_eq!(s.lag, Some(0));
    let w = w.lock().unwrap();
    assert_eq!(w.accepted, (0..100).collect::<Vec<_>>());
    assert_eq!(w.violations, 0);
    assert_eq!(w.max_delivering, 1);
    assert_eq!(w.attempts as u64, s.batches + s.delivery_failures);
}

#[actix_rt::test]
async fn a_hanging_delivery_times_out_and_is_retried() {
    let w = world(0..10);
    w.lock().unwrap().hang_next = 1;
    let consumer = start(
        &w,
        ConsumerConfig {
            op_timeout: Duration::from_millis(100),
            ..config(50)
        },
    );
    let s = wait_stats(&consumer, |s| s.committed == Some(10)).await;
    assert_eq!(s.committed, Some(10));
    assert_eq!(s.delivery_failures, 1);
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("delivery: timed out after ")),
        "{:?}",
        s.last_error
    );
    let w = w.lock().unwrap();
    assert_eq!(w.accepted, (0..10).collect::<Vec<_>>());
    assert_eq!(
        w.max_delivering, 1,
        "the hung delivery was dropped before the retry"
    );
}

#[actix_rt::test]
async fn a_partial_batch_waits_for_the_emit_interval() {
    let w = world(0..5);
    let consumer = start(
        &w,
        ConsumerConfig {
            max_emit_interval: Duration::from_secs(3600),
            ..config(20)
        },
    );
    // The first batch goes out at once, however small.
    let s = wait_stats(&consumer, |s| s.committed == Some(5)).await;
    assert_eq!((s.committed, s.batches), (Some(5), 1));
    append(&w, 5..10);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = consumer.send(GetConsumerStats).await.unwrap();
    assert_eq!(
        (s.batches, s.buffered),
        (1, 5),
        "a partial batch went out early"
    );
    append(&w, 10..25);
    let s = wait_stats(&consumer, |s| s.committed == Some(25)).await;
    assert_eq!((s.committed, s.batches), (Some(25), 2));
    assert_eq!(w.lock().unwrap().accepted, (0..25).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn a_supervised_consumer_resumes_from_the_committed_position() {
    let w = world(0..50);
    let (source, sink) = (w.clone(), w.clone());
    let consumer = Supervisor::start(move |_| {
        Consumer::new(
            "test",
            MemSource(source.clone()),
            MemSink(sink.clone()),
            config(16),
        )
    });
    let s = wait_stats(&consumer, |s| s.committed == Some(50)).await;
    assert_eq!(s.committed, Some(50));
    consumer.send(Stop).await.unwrap();
    append(&w, 50..80);
    let s = wait_stats(&consumer, |s| s.committed == Some(80)).await;
    assert_eq!(s.committed, Some(80));
    let mut accepted = w.lock().unwrap().accepted.clone();
    accepted.dedup();
    assert_eq!(accepted, (0..80).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn stop_ends_an_unsupervised_consumer() {
    let w = world(0..3);
    let consumer = start(&w, config(16));
    wait_stats(&consumer, |s| s.committed == Some(3)).await;
    consumer.send(Stop).await.unwrap();
    assert!(eventually(|| !consumer.connected()).await);
}

/// A `MemSource` that tells when records arrive, and counts its fetches.
struct NotifyingSource {
    inner: MemSource,
    appended: Arc<tokio::sync::Notify>,
    fetches: Arc<std::sync::atomic::AtomicUsize>,
}

impl Source for NotifyingSource {
    type Item = u64;

    fn committed(&mut self) -> BoxFuture<Result<u64, JobError>> {
        self.inner.committed()
    }

    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Vec<(u64, u64)>, JobError>> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.fetch(from, max)
    }

    fn commit(&mut self, next_offset: u64) -> BoxFuture<Result<(), JobError>> {
        self.inner.commit(next_offset)
    }

    fn until_more(&self, from: u64) -> Option<BoxFuture<()>> {
        let (world, appended) = (self.inner.0.clone(), Arc::clone(&self.appended));
        Some(Box::pin(async move {
            loop {
                let notified = appended.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if world.lock().unwrap().log.iter().any(|(o, _)| *o >= from) {
                    return;
                }
                notified.await;
            }
        }))
    }
}

#[actix_rt::test]
async fn a_caught_up_consumer_sleeps_until_records_arrive() {
    let w = world(0..5);
    let appended = Arc::new(tokio::sync::Notify::new());
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fetched = || fetches.load(std::sync::atomic::Ordering::SeqCst);
    let consumer = Consumer::new(
        "test",
        NotifyingSource {
            inner: MemSource(w.clone()),
            appended: Arc::clone(&appended),
            fetches: Arc::clone(&fetches),
        },
        MemSink(w.clone()),
        config(20),
    )
    .start();
    let s = wait_stats(&consumer, |s| s.committed == Some(5)).await;
    assert_eq!(s.committed, Some(5));
    // Polling every 10 ms would fetch ~50 times in half a second; it sleeps instead.
    let before = fetched();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        fetched() <= before + 1,
        "fetched {} times while idle",
        fetched() - before
    );

    // An append wakes it: the records are delivered without a poll.
    append(&w, 5..8);
    appended.notify_waiters();
    let s = wait_stats(&consumer, |s| s.committed == Some(8)).await;
    assert_eq!((s.committed, s.delivered), (Some(8), 8));
    assert_eq!(w.lock().unwrap().accepted, (0..8).collect::<Vec<_>>());
}
