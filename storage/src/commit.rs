//! Group commit: many writers, one flush.
//!
//! A writer that needs durability applies its writes to the engine, then calls
//! [`Committer::wait_durable`], which returns only after a flush that *started after*
//! those writes completed. Writers that arrive while a flush is running wait for the
//! next one, which one of them (the leader) runs for all: leader/follower batching, no
//! committer thread. Under load, each flush serves every writer that arrived during the
//! previous one; alone, a writer pays exactly one flush and no waiting.
//!
//! Topic appends write segment files, not the engine: with `Durability::PowerLoss` they
//! hand their files to [`Committer::wait_synced`], and the leader `fdatasync`s every file
//! handed in since the last flush after flushing the engine, so one flush still serves
//! every kind of writer.
//!
//! A flush that fails (the engine's, or an `fdatasync`) fails the store for good (see
//! `health`): no waiting writer is acknowledged, nothing is retried, and every later
//! wait returns the same error until the process restarts.
//!
//! Why the ticket is taken *after* the writes: the leader reads the highest ticket before
//! it starts flushing, and every ticket up to that one belongs to writes that had already
//! completed, so the flush covers them all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::engine::Engine;
use crate::files::SegmentFile;
use crate::health::HealthState;
use crate::StorageError;

/// A segment file to sync, with its path for the error message.
pub(crate) type Unsynced = (String, Arc<dyn SegmentFile>);

pub(crate) struct Committer {
    engine: Engine,
    health: Arc<HealthState>,
    /// The last ticket handed out.
    issued: AtomicU64,
    state: Mutex<State>,
    flushed: Condvar,
    /// Flushes run.
    flushes: AtomicU64,
    /// Segment files written since the last flush, to sync with it.
    unsynced: Mutex<Vec<Unsynced>>,
}

#[derive(Default)]
struct State {
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A leader is flushing.
    flushing: bool,
}

/// What the committer has done so far, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CommitCounts {
    /// Flushes of the engine.
    pub flushes: u64,
    /// Acknowledged writes that waited for a flush (appends, offset commits, leases,
    /// explicit `Store::flush` calls).
    pub durable_writes: u64,
}

impl Committer {
    pub(crate) fn new(engine: Engine, health: Arc<HealthState>) -> Committer {
        Committer {
            engine,
            health,
            issued: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            flushed: Condvar::new(),
            flushes: AtomicU64::new(0),
            unsynced: Mutex::new(Vec::new()),
        }
    }

    /// [`Committer::wait_durable`] for writes to segment files: returns once `files`
    /// (and the engine) were synced by a flush that began after the call.
    pub(crate) fn wait_synced(&self, files: Vec<Unsynced>) -> Result<(), StorageError> {
        {
            let mut unsynced = lock_files(&self.unsynced);
            for file in files {
                if !unsynced.iter().any(|(_, f)| Arc::ptr_eq(f, &file.1)) {
                    unsynced.push(file);
                }
            }
        }
        self.wait_durable()
    }

    /// Counts a write acknowledged without a flush: an append with
    /// `Durability::Process`, durable once written to its file.
    pub(crate) fn count_durable_write(&self) {
        self.issued.fetch_add(1, Ordering::SeqCst);
    }

    /// The leader's flush: the engine, then every segment file handed in so far.
    ///
    /// A failure of either fails the store for good (see `health`): after a failed
    /// `fsync` the kernel may have dropped the pages it could not write and cleared the
    /// error, so trying again could "succeed" without the data. Nothing is retried.
    fn flush(&self) -> Result<(), StorageError> {
        if let Err(e) = self.engine.flush() {
            // The engine's own account first: sled's says a restart is needed.
            let reason = self
                .engine
                .failure()
                .unwrap_or_else(|| format!("flushing the database: {e}"));
            return Err(self.health.fail(reason));
        }
        let files = std::mem::take(&mut *lock_files(&self.unsynced));
        for (path, file) in &files {
            if let Err(e) = file.sync() {
                return Err(self.health.fail_io(format!("fdatasync of {path}"), &e));
            }
            self.health.count_fsync();
        }
        Ok(())
    }

    /// Returns once every write this thread completed before the call is durable.
    ///
    /// If the flush this call led fails, the store has failed (see [`Committer::flush`]):
    /// this call and every waiting or later one return [`StorageError::Failed`], so
    /// nothing the flush should have covered is acknowledged.
    pub(crate) fn wait_durable(&self) -> Result<(), StorageError> {
        self.health.check_failed()?;
        let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.lock();
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            self.health.check_failed()?;
            if !state.flushing {
                state.flushing = true;
                let covers = self.issued.load(Ordering::SeqCst);
                drop(state);
                let result = self.flush();
                state = self.lock();
                state.flushing = false;
                if result.is_ok() {
                    state.durable = state.durable.max(covers);
                    self.flushes.fetch_add(1, Ordering::Relaxed);
                }
                self.flushed.notify_all();
                result?;
                continue;
            }
            state = self
                .flushed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    pub(crate) fn counts(&self) -> CommitCounts {
        CommitCounts {
            flushes: self.flushes.load(Ordering::Relaxed),
            durable_writes: self.issued.load(Ordering::Relaxed),
        }
    }

    /// The state is two plain fields updated together; a panic cannot happen while they
    /// are half-written, so a poisoned lock is taken anyway.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The list is only pushed to and taken whole: a poisoned lock is taken anyway.
fn lock_files(m: &Mutex<Vec<Unsynced>>) -> MutexGuard<'_, Vec<Unsynced>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use std::time::Duration;

    #[test]
    fn a_lone_writer_pays_one_flush_per_wait() {
        let committer = Committer::new(Engine::new(Arc::new(MemoryEngine::new())), Arc::default());
        for _ in 0..3 {
            committer.wait_durable().unwrap();
        }
        assert_eq!(
            committer.counts(),
            CommitCounts {
                flushes: 3,
                durable_writes: 3
            }
        );
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let engine = MemoryEngine::with_flush_delay(Duration::from_millis(5));
        let committer = Arc::new(Committer::new(
            Engine::new(Arc::new(engine)),
            Arc::default(),
        ));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let committer = Arc::clone(&committer);
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        committer.wait_durable().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let counts = committer.counts();
        assert_eq!(counts.durable_writes, 80);
        // Each flush takes 5 ms while seven other writers queue up behind it.
        assert!(counts.flushes < 80, "{counts:?}");
    }
}
