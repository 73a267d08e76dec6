//! The small traits the runtime is generic over: what to run (`Job`), what to schedule
//! (`Planner`, `WorkItem`), and where a consumer reads from and writes to (`Source`, `Sink`).
//!
//! Every method that takes `&self`/`&mut self` returns a `'static` future: the future must
//! not borrow its implementor, so implementors clone what they need into it (usually `Arc`
//! handles). We chose this over futures that borrow `self` because the actors can then drop
//! (cancel) a future at any time — at a deadline, on `Stop`, on a supervised restart —
//! without losing the implementor, which stays owned by the actor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A boxed, sendable, `'static` future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a job's run, a source's read or commit, or a sink's delivery failed.
///
/// The runtime does nothing with a failure but count it, log it and retry, so it keeps
/// the implementor's own typed error as it is (boxed: the runtime is generic over its
/// implementors, and a caller that knows the implementor can downcast it) and adds only
/// the failure it causes itself, the deadline.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The runtime dropped the operation at its deadline.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The implementor's error.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl JobError {
    /// The implementor's `error`, as the runtime carries it.
    pub fn failed(error: impl std::error::Error + Send + Sync + 'static) -> JobError {
        JobError::Failed(Box::new(error))
    }

    /// The implementor's error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            JobError::Failed(e) => e.downcast_ref(),
            JobError::TimedOut(_) => None,
        }
    }
}

/// Items read from a `Source`, each with its offset.
pub type Fetched<T> = Vec<(u64, T)>;

/// One scheduled unit of work: one plugin on one resource.
pub trait Job: Send + Sync + 'static {
    /// Runs once. `Err` means the run failed; the job has already logged why.
    ///
    /// The future may be dropped at any await point when its deadline expires, so it must
    /// leave nothing half-done that a later run cannot cope with.
    fn run(&self) -> BoxFuture<Result<(), JobError>>;
}

/// A work item's key, `<prefix>:<subject>` (just `<subject>` when the prefix is empty),
/// held in its two parts so that keys can share them: a planner makes a key per plugin and
/// resource, and gives every key of one plugin the same prefix and every key of one
/// resource the same subject. At 10,000 devices the text form, ≈170 bytes, was held once
/// per scheduler and device (two schedulers: 3.8 MB); in parts, one copy of each subject
/// serves both.
///
/// Keys compare by prefix, then subject (not as their text would: no one relies on the
/// order); they are equal when their text forms are, except that `"a:b"` alone and `"a"` +
/// `"b"` differ (a planner makes its keys one way).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkKey {
    prefix: Arc<str>,
    subject: Arc<str>,
}

impl WorkKey {
    pub fn new(prefix: Arc<str>, subject: Arc<str>) -> WorkKey {
        WorkKey { prefix, subject }
    }

    pub fn prefix(&self) -> &Arc<str> {
        &self.prefix
    }

    pub fn subject(&self) -> &Arc<str> {
        &self.subject
    }

    /// The bytes of the text form, in order.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        let sep: &[u8] = if self.prefix.is_empty() { b"" } else { b":" };
        [self.prefix.as_bytes(), sep, self.subject.as_bytes()].into_iter()
    }

    /// Both parts are the same allocations as `other`'s.
    pub fn shares(&self, other: &WorkKey) -> bool {
        Arc::ptr_eq(&self.prefix, &other.prefix) && Arc::ptr_eq(&self.subject, &other.subject)
    }
}

/// A key that is all subject (tests, one-off work such as discovery).
impl From<&str> for WorkKey {
    fn from(key: &str) -> WorkKey {
        WorkKey {
            prefix: Arc::from(""),
            subject: Arc::from(key),
        }
    }
}

impl std::fmt::Display for WorkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.subject)
        } else {
            write!(f, "{}:{}", self.prefix, self.subject)
        }
    }
}

impl std::fmt::Debug for WorkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// Whether `text` is this key's text form.
impl PartialEq<str> for WorkKey {
    fn eq(&self, text: &str) -> bool {
        if self.prefix.is_empty() {
            return *self.subject == *text;
        }
        text.strip_prefix(&*self.prefix)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| rest == &*self.subject)
    }
}

impl PartialEq<&str> for WorkKey {
    fn eq(&self, text: &&str) -> bool {
        *self == **text
    }
}

/// A job that does nothing and succeeds: for tests and for work whose effect is only its
/// schedule.
pub struct NoopJob;

impl Job for NoopJob {
    fn run(&self) -> BoxFuture<Result<(), JobError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A job with the facts the scheduler and the pool need about it.
#[derive(Clone)]
pub struct WorkItem {
    /// Unique key, `"<plugin>:<resource>"`. Runs of one key never overlap. Shared (the
    /// schedule, the pool's messages and the planner hold the one copy of each part).
    pub key: WorkKey,
    /// Plugin name, for per-plugin statistics.
    pub group: Arc<str>,
    /// Endpoint; the per-device concurrency limit applies across keys.
    pub device: Arc<str>,
    /// Execute frequency: a run is due this long after the previous run's start. Also the
    /// run's deadline unless the pool has its own (a run should not outlive its period).
    pub interval: Duration,
    /// Do not start the FIRST run before this (e.g. while waiting for enrichment). A key
    /// planned again before its first run keeps the soonest hold it was given, so a
    /// planner may give "now + the longest wait" at every plan.
    pub hold_until: Option<Instant>,
    /// What to run.
    pub job: Arc<dyn Job>,
}

impl std::fmt::Debug for WorkItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkItem")
            .field("key", &self.key)
            .field("group", &self.group)
            .field("device", &self.device)
            .field("interval", &self.interval)
            .field("hold_until", &self.hold_until)
            .finish_non_exhaustive()
    }
}

/// Produces the full schedule. Called when the scheduler starts, every rescan interval and
/// on a `Rescan` message; never twice at once.
pub trait Planner: Send + 'static {
    fn plan(&mut self) -> BoxFuture<Vec<WorkItem>>;
}

/// Where a consumer reads from: e.g. one topic-log partition and a consumer group's
/// committed offset. The consumer owns the read position; the source only reads at a given
/// offset and stores commits, so it keeps no cursor that could drift from the consumer's.
///
/// The consumer calls at most one method at a time and may drop a returned future
/// unfinished (deadline, stop, restart).
pub trait Source: Send + 'static {
    type Item: Send + Sync + 'static;
    /// The committed position: the offset of the next item to read. Called at start and
    /// after a restart.
    fn committed(&mut self) -> BoxFuture<Result<u64, JobError>>;
    /// Up to `max` items with offset `>= from`, in offset order. Empty when caught up.
    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Fetched<Self::Item>, JobError>>;
    /// Durably records that every item before `next_offset` was delivered.
    fn commit(&mut self, next_offset: u64) -> BoxFuture<Result<(), JobError>>;
    /// Items behind the end of the log, as last known. Must be cheap (no I/O).
    fn lag(&self) -> Option<u64> {
        None
    }
    /// Resolves once the log may hold an item at or past `from` (one was appended), so
    /// a consumer that has read everything sleeps until then instead of fetching every
    /// `poll_interval`. It must not miss an append made before it was called. `None` (the
    /// default): the source cannot tell, and the consumer polls.
    fn until_more(&self, _from: u64) -> Option<BoxFuture<()>> {
        None
    }
}

/// Where a consumer delivers to, e.g. InfluxDB.
///
/// The batch is shared (`Arc<[I]>`) because after a failure the consumer retries the very
/// same batch: the sink reads it and nothing is copied per attempt.
pub trait Sink<I>: Send + 'static {
    /// Accepts the whole batch (`Ok`) or none of it (`Err`: it will be delivered again;
    /// a sink that may have written part of it must be idempotent).
    fn deliver(&mut self, batch: Arc<[I]>) -> BoxFuture<Result<(), JobError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_as_its_text() {
        let k = WorkKey::new("polling:if".into(), "plugin||id|sw1".into());
        assert_eq!(k.to_string(), "polling:if:plugin||id|sw1");
        assert_eq!(format!("{k:?}"), r#""polling:if:plugin||id|sw1""#);
        assert!(k == "polling:if:plugin||id|sw1");
        for other in [
            "polling:if",
            "polling:ifplugin||id|sw1",
            "polling:if:plugin||id|sw",
            "",
        ] {
            assert!(k != other, "{other}");
        }
        let bare = WorkKey::from("discovery:json");
        assert_eq!(bare.to_string(), "discovery:json");
        assert!(bare == "discovery:json" && bare != "discovery");
        let parts: Vec<&[u8]> = bare.parts().collect();
        assert_eq!(parts.concat(), b"discovery:json");
    }

    #[test]
    fn keys_compare_by_both_parts_and_clones_share_them() {
        let a = WorkKey::new("p".into(), "b".into());
        let b = WorkKey::new("p".into(), "c".into());
        let c = WorkKey::new("q".into(), "a".into());
        assert!(a < b && b < c);
        assert_eq!(a, WorkKey::new("p".into(), "b".into()));
        assert!(a.clone().shares(&a));
        assert!(
            !a.shares(&WorkKey::new("p".into(), "b".into())),
            "equal, not shared"
        );
    }
}
