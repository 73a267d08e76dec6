//! Bounded logging: an event that a client can cause at will (a refused request, a bad
//! frame) logs at most one line per window, and that line says how many were not logged.

use std::sync::atomic::{AtomicU64, Ordering};

/// At most one line per `window` seconds for a kind of event; the others are counted and
/// reported with the next line.
pub struct LogLimiter {
    window_secs: u64,
    next_at: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub const fn new(window_secs: u64) -> LogLimiter {
        LogLimiter {
            window_secs,
            next_at: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)`: log now, mentioning `n` events not logged since the last line.
    pub fn allow(&self, now_secs: u64) -> Option<u64> {
        let next = self.next_at.load(Ordering::Relaxed);
        if now_secs >= next
            && self
                .next_at
                .compare_exchange(
                    next,
                    now_secs + self.window_secs,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_lets_one_line_through_per_window_and_counts_the_rest() {
        let l = LogLimiter::new(10);
        assert_eq!(l.allow(100), Some(0));
        assert_eq!(l.allow(101), None);
        assert_eq!(l.allow(109), None);
        assert_eq!(l.allow(110), Some(2));
        assert_eq!(l.allow(111), None);
    }
}
