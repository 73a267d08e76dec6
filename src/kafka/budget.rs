//! The listener's memory budget: bytes of requests held in memory at once, over every
//! connection (`kafka.max_bytes_in_flight`). A frame's bytes are taken from it as they
//! arrive, and a Produce request's inflated records as they are decompressed; both are
//! given back when the request has been answered. A request that cannot get its bytes
//! within a short wait is refused and its connection closed, so a flood of large
//! requests costs time, never memory.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why bytes could not be taken from the budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{wanted} bytes more would exceed kafka.max_bytes_in_flight = {total} bytes (in use by requests in flight) for longer than {waited:?}"
)]
pub struct OverBudget {
    pub wanted: usize,
    pub total: usize,
    pub waited: Duration,
}

/// Shared by every connection of a listener. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes taken from the budget, given back when dropped.
#[derive(Debug, Default)]
pub struct Held {
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Gives back all but `bytes` of what is held.
    pub fn shrink_to(&mut self, bytes: usize) {
        if let Some(p) = &mut self.permit {
            let extra = p.num_permits().saturating_sub(bytes);
            if extra > 0 {
                drop(p.split(extra));
            }
        }
    }

    fn merge(&mut self, more: OwnedSemaphorePermit) {
        match &mut self.permit {
            Some(p) => p.merge(more),
            None => self.permit = Some(more),
        }
    }
}

impl Budget {
    /// A budget of `total` bytes (at most `u32::MAX`: tokio counts permits in `u32`s).
    pub fn new(total: usize) -> Budget {
        let total = total.min(u32::MAX as usize);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes held by requests in flight now.
    pub fn in_use(&self) -> usize {
        self.total.saturating_sub(self.bytes.available_permits())
    }

    /// Adds `n` bytes to `held`, waiting at most `wait` for them.
    pub async fn take(&self, held: &mut Held, n: usize, wait: Duration) -> Result<(), OverBudget> {
        if n == 0 {
            return Ok(());
        }
        let over = || OverBudget {
            wanted: n,
            total: self.total,
            waited: wait,
        };
        let n32 = u32::try_from(n).map_err(|_| over())?;
        if n > self.total {
            return Err(over());
        }
        if let Ok(p) = Arc::clone(&self.bytes).try_acquire_many_owned(n32) {
            held.merge(p);
            return Ok(());
        }
        match tokio::time::timeout(wait, Arc::clone(&self.bytes).acquire_many_owned(n32)).await {
            Ok(Ok(p)) => {
                held.merge(p);
                Ok(())
            }
            _ => Err(over()),
        }
    }

    /// [`Budget::take`] from a blocking thread (a `spawn_blocking` closure, where request
    /// decoding runs): it waits on the runtime that spawned the thread.
    pub fn take_blocking(
        &self,
        held: &mut Held,
        n: usize,
        wait: Duration,
    ) -> Result<(), OverBudget> {
        if let Ok(p) = u32::try_from(n)
            .ok()
            .and_then(|n32| Arc::clone(&self.bytes).try_acquire_many_owned(n32).ok())
            .ok_or(())
        {
            held.merge(p);
            return Ok(());
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.block_on(self.take(held, n, wait)),
            Err(_) => Err(OverBudget {
                wanted: n,
                total: self.total,
                waited: Duration::ZERO,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_are_held_until_dropped_and_an_overdraft_is_refused() {
        let b = Budget::new(100);
        let mut a = Held::default();
        b.take(&mut a, 60, Duration::ZERO).await.unwrap();
        b.take(&mut a, 30, Duration::ZERO).await.unwrap();
        assert_eq!((a.bytes(), b.in_use()), (90, 90));
        let mut c = Held::default();
        let err = b
            .take(&mut c, 20, Duration::from_millis(1))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "20 bytes more would exceed kafka.max_bytes_in_flight = 100 bytes (in use by requests in flight) for longer than 1ms"
        );
        assert_eq!(
            b.take(&mut c, 101, Duration::ZERO)
                .await
                .unwrap_err()
                .wanted,
            101,
            "never fits"
        );
        drop(a);
        assert_eq!(b.in_use(), 0);
        b.take(&mut c, 100, Duration::ZERO).await.unwrap();
        let blocking = {
            let b = b.clone();
            tokio::task::spawn_blocking(move || {
                let mut d = Held::default();
                b.take_blocking(&mut d, 10, Duration::from_millis(1))
            })
        };
        assert_eq!(blocking.await.unwrap().unwrap_err().total, 100);
        drop(c);
        let b2 = b.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let mut d = Held::default();
            b2.take_blocking(&mut d, 10, Duration::ZERO)
                .map(|_| d.bytes())
        });
        assert_eq!(ok.await.unwrap(), Ok(10));
    }
}
