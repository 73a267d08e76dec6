//! Group commit: many writers, one flush.
//!
//! A writer that needs durability applies its writes to the engine, then calls
//! [`Committer::wait_durable`], which returns only after a flush that *started after*
//! those writes completed. Writers that arrive while a flush is running wait for the
//! next one, which one of them (the leader) runs for all: leader/follower batching, no
//! committer thread. Under load, each flush serves every writer that arrived during the
//! previous one; alone, a writer pays exactly one flush and no waiting.
//!
//! Why the ticket is taken *after* the writes: the leader reads the highest ticket before
//! it starts flushing, and every ticket up to that one belongs to writes that had already
//! completed, so the flush covers them all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::engine::Engine;
use crate::StorageError;

pub(crate) struct Committer {
    engine: Engine,
    /// The last ticket handed out.
    issued: AtomicU64,
    state: Mutex<State>,
    flushed: Condvar,
    /// Flushes run.
    flushes: AtomicU64,
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
    pub(crate) fn new(engine: Engine) -> Committer {
        Committer {
            engine,
            issued: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            flushed: Condvar::new(),
            flushes: AtomicU64::new(0),
        }
    }

    /// Returns once every write this thread completed before the call is durable.
    ///
    /// If the flush this call led fails, the error is returned and the writes may or may
    /// not be durable (a later flush may still save them). Waiting followers then retry
    /// with a flush of their own, so each caller sees the result of a flush that covers it.
    pub(crate) fn wait_durable(&self) -> Result<(), StorageError> {
        let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.lock();
        loop {
            if state.durable >= ticket {
                return Ok(());
            }
            if !state.flushing {
                state.flushing = true;
                let covers = self.issued.load(Ordering::SeqCst);
                drop(state);
                let result = self.engine.flush();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_lone_writer_pays_one_flush_per_wait() {
        let committer = Committer::new(Engine::new(Arc::new(MemoryEngine::new())));
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
        let committer = Arc::new(Committer::new(Engine::new(Arc::new(engine))));
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
