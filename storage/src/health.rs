//! What the store can still do, for `/ready`, `/metrics` and the node's decision to
//! restart.
//!
//! Two kinds of trouble, kept apart because they call for opposite answers:
//!
//! - **Writes failing** (disk full, an I/O error on a write): the write is refused with
//!   its error, nothing of it is kept or acknowledged, and the store carries on. The
//!   condition clears once a frame-sized write succeeds: the probe that
//!   [`Store::check`](crate::Store::check) writes while it lasts, or that an append
//!   which succeeded writes after itself (a small write can succeed on a full disk, into
//!   a file's last, partly used block), so a node recovers by itself once space is back.
//! - **Failed** (an `fsync` that failed, the engine refusing every write, a failed
//!   write that could not be cut off again): the store no longer knows what reached the
//!   disk. After a failed `fsync` Linux may drop the dirty pages and clear the error, so
//!   a retry that succeeds proves nothing (PostgreSQL's "fsyncgate", 2018). The store
//!   acknowledges nothing from then on, and the process must restart, which reads back
//!   what really is on disk.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::StorageError;

/// The store's state, as [`Store::health`](crate::Store::health) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Writes succeed.
    Ok,
    /// The last write to the topic log failed (its error is the reason, with the file):
    /// appends are refused until one succeeds again. Clears by itself.
    WritesFailing { reason: String },
    /// Nothing more will be acknowledged until the process restarts (the reason says
    /// what failed: an `fsync`, the engine).
    Failed { reason: String },
}

impl Health {
    pub fn is_ok(&self) -> bool {
        *self == Health::Ok
    }

    /// Why the store is not healthy; `None` when it is.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Health::Ok => None,
            Health::WritesFailing { reason } | Health::Failed { reason } => Some(reason),
        }
    }
}

/// Counts of faults met, for [`StoreStats`](crate::StoreStats).
#[derive(Default)]
struct Counters {
    write_errors: AtomicU64,
    quarantined_segments: AtomicU64,
    quarantined_bytes: AtomicU64,
    corrupt_frames_read: AtomicU64,
    fsyncs: AtomicU64,
    became_writes_failing: AtomicU64,
    became_ok: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FaultCounts {
    pub write_errors: u64,
    pub quarantined_segments: u64,
    pub quarantined_bytes: u64,
    pub corrupt_frames_read: u64,
    pub fsyncs: u64,
    pub health_changes: HealthChanges,
}

/// Changes of [`Health`] since the store was opened, by the state changed to: counted
/// where they happen, so they agree with [`Store::health`](crate::Store::health) the
/// moment it answers (a watcher sampling it would miss a change or lag behind it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthChanges {
    pub writes_failing: u64,
    pub ok: u64,
    /// 0 or 1: a store fails once.
    pub failed: u64,
}

/// The shared state behind [`Health`]: one per store, read lock-free on the hot path.
#[derive(Default)]
pub(crate) struct HealthState {
    /// The first unrecoverable failure; never cleared.
    failed: OnceLock<String>,
    /// Set while writes fail, so that a successful write costs one atomic load.
    failing: AtomicBool,
    failing_reason: Mutex<Option<String>>,
    counters: Counters,
}

impl HealthState {
    /// Marks the store failed for good (the first reason is kept) and returns the error
    /// for the caller to hand back.
    pub(crate) fn fail(&self, reason: String) -> StorageError {
        let mut first = false;
        let kept = self.failed.get_or_init(|| {
            first = true;
            reason.clone()
        });
        if first {
            tracing::error!(reason = %kept,
                "storage failed: nothing more is acknowledged; the process must restart");
        }
        self.failed_error(kept)
    }

    /// [`HealthState::fail`] for an I/O error of `what` (an `fsync` of a file): the log
    /// line carries the OS error number.
    pub(crate) fn fail_io(&self, what: String, e: &std::io::Error) -> StorageError {
        if self.failed.get().is_none() {
            tracing::error!(what = %what, error = %e, errno = e.raw_os_error(), "storage I/O failed");
        }
        self.fail(format!("{what} failed: {e}"))
    }

    fn failed_error(&self, reason: &str) -> StorageError {
        StorageError::Failed {
            reason: reason.to_owned(),
        }
    }

    /// `Err(Failed)` once the store has failed: every acknowledgement checks this first.
    pub(crate) fn check_failed(&self) -> Result<(), StorageError> {
        match self.failed.get() {
            Some(reason) => Err(self.failed_error(reason)),
            None => Ok(()),
        }
    }

    /// A write to the topic log failed with `reason` (its error and file).
    pub(crate) fn write_failed(&self, reason: String) {
        self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
        let mut current = self.reason();
        if current.is_none() {
            self.counters
                .became_writes_failing
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(reason = %reason, "writes to the topic log fail: appends are refused until one succeeds");
        }
        *current = Some(reason);
        self.failing.store(true, Ordering::Release);
    }

    /// A write to the topic log succeeded: writes failing before is over.
    pub(crate) fn write_succeeded(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut current = self.reason();
        if let Some(reason) = current.take() {
            self.counters.became_ok.fetch_add(1, Ordering::Relaxed);
            tracing::info!(after = %reason, "writes to the topic log succeed again");
        }
        self.failing.store(false, Ordering::Release);
    }

    pub(crate) fn writes_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// The state now; `engine_failure` is what the engine itself reports (sled refusing
    /// every write), which also fails the store.
    pub(crate) fn health(&self, engine_failure: Option<String>) -> Health {
        if let Some(reason) = engine_failure {
            self.fail(reason);
        }
        if let Some(reason) = self.failed.get() {
            return Health::Failed {
                reason: reason.clone(),
            };
        }
        if self.failing.load(Ordering::Acquire) {
            if let Some(reason) = self.reason().clone() {
                return Health::WritesFailing { reason };
            }
        }
        Health::Ok
    }

    /// A segment's tail moved to a side file at start-up.
    pub(crate) fn count_quarantine(&self, bytes: u64) {
        self.counters
            .quarantined_segments
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .quarantined_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// A read skipped a frame whose CRC or header did not match.
    pub(crate) fn count_corrupt_read(&self) {
        self.counters
            .corrupt_frames_read
            .fetch_add(1, Ordering::Relaxed);
    }

    /// An `fsync`/`fdatasync` of a segment file or directory succeeded.
    pub(crate) fn count_fsync(&self) {
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> FaultCounts {
        let c = &self.counters;
        FaultCounts {
            write_errors: c.write_errors.load(Ordering::Relaxed),
            quarantined_segments: c.quarantined_segments.load(Ordering::Relaxed),
            quarantined_bytes: c.quarantined_bytes.load(Ordering::Relaxed),
            corrupt_frames_read: c.corrupt_frames_read.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            health_changes: HealthChanges {
                writes_failing: c.became_writes_failing.load(Ordering::Relaxed),
                ok: c.became_ok.load(Ordering::Relaxed),
                failed: u64::from(self.failed.get().is_some()),
            },
        }
    }

    /// The reason is replaced whole: a poisoned lock is taken anyway.
    fn reason(&self) -> MutexGuard<'_, Option<String>> {
        self.failing_reason
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_writes_clear_and_a_failure_stays() {
        let h = HealthState::default();
        assert_eq!(h.health(None), Health::Ok);
        h.write_failed("disk full writing topics/t/0/x.log".into());
        assert_eq!(
            h.health(None),
            Health::WritesFailing {
                reason: "disk full writing topics/t/0/x.log".into()
            }
        );
        h.write_succeeded();
        assert_eq!(h.health(None), Health::Ok);
        assert_eq!(h.counts().write_errors, 1);

        let e = h.fail("fdatasync of topics/t/0/x.log failed: EIO".into());
        assert_eq!(
            e.to_string(),
            "storage failed and acknowledges no more writes (restart the process): \
             fdatasync of topics/t/0/x.log failed: EIO"
        );
        // The first reason is kept; a success later does not clear it.
        h.fail("something else".into());
        h.write_succeeded();
        assert_eq!(
            h.health(None).reason(),
            Some("fdatasync of topics/t/0/x.log failed: EIO")
        );
        assert_eq!(
            h.check_failed().unwrap_err().to_string(),
            "storage failed and acknowledges no more writes (restart the process): \
             fdatasync of topics/t/0/x.log failed: EIO"
        );
    }

    #[test]
    fn an_engine_failure_fails_the_store() {
        let h = HealthState::default();
        let health = h.health(Some("sled refuses writes".into()));
        assert_eq!(
            health,
            Health::Failed {
                reason: "sled refuses writes".into()
            }
        );
        // Remembered even once the engine is no longer asked.
        assert_eq!(h.health(None), health);
    }
}
