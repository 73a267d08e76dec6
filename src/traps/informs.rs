//! Informs retransmitted by their sender are one event, not several.
//!
//! A sender sends an inform again when its acknowledgement is late or lost (net-snmp:
//! after 1 s, 5 times), with the same request-id from the same address (for v3 under a
//! new msgID). The first copy is published; copies that come while it is still waiting
//! are not queued again, and whichever copy came last is the one answered once it is
//! stored (a v3 sender only takes the answer to its latest msgID); copies that come after
//! it was stored are answered at once, and published no more. Bounded: entries live
//! [`REMEMBER`], and at most [`MAX_ENTRIES`] are kept (the oldest go first).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an inform is remembered after it arrived.
const REMEMBER: Duration = Duration::from_secs(60);
/// Informs remembered at once.
const MAX_ENTRIES: usize = 10_000;

/// Which inform: its sender and request-id.
pub type InformKey = (SocketAddr, i32);

enum State {
    /// Queued, not yet stored: the latest copy's acknowledgement.
    Waiting(Vec<u8>),
    Stored,
}

struct Entry {
    state: State,
    first_seen: Instant,
}

/// What to do with an inform that just arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// A new inform: publish it.
    New,
    /// A copy of one still waiting to be stored: its answer will go out then.
    Waiting,
    /// A copy of one already stored: answer now.
    Stored,
}

#[derive(Default)]
pub struct InformLedger {
    entries: Mutex<HashMap<InformKey, Entry>>,
}

impl InformLedger {
    /// Records an inform that arrived at `now`, with the acknowledgement to send for it.
    pub fn arrived(&self, key: InformKey, ack: &[u8], now: Instant) -> Arrival {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get_mut(&key) {
            if now.saturating_duration_since(e.first_seen) < REMEMBER {
                return match &mut e.state {
                    State::Waiting(latest) => {
                        *latest = ack.to_vec();
                        Arrival::Waiting
                    }
                    State::Stored => Arrival::Stored,
                };
            }
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.saturating_duration_since(e.first_seen) < REMEMBER);
            if entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.first_seen)
                    .map(|(k, _)| *k)
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                state: State::Waiting(ack.to_vec()),
                first_seen: now,
            },
        );
        Arrival::New
    }

    /// The inform is stored: the acknowledgement to send (the latest copy's).
    pub fn stored(&self, key: InformKey) -> Option<Vec<u8>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(&key)?;
        match std::mem::replace(&mut entry.state, State::Stored) {
            State::Waiting(ack) => Some(ack),
            State::Stored => None,
        }
    }

    /// The inform was not stored (publishing failed): forget it, so a copy is published.
    pub fn failed(&self, key: InformKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_answered_not_published() {
        let ledger = InformLedger::default();
        let key = ("127.0.0.1:5000".parse().unwrap(), 7);
        let t0 = Instant::now();
        assert_eq!(ledger.arrived(key, b"ack-1", t0), Arrival::New);
        assert_eq!(ledger.arrived(key, b"ack-2", t0), Arrival::Waiting);
        // The latest copy's answer goes out once stored, once.
        assert_eq!(ledger.stored(key).as_deref(), Some(&b"ack-2"[..]));
        assert_eq!(ledger.stored(key), None);
        assert_eq!(ledger.arrived(key, b"ack-3", t0), Arrival::Stored);
        // Another request-id, or another sender, is another inform.
        assert_eq!(ledger.arrived((key.0, 8), b"x", t0), Arrival::New);
        assert_eq!(
            ledger.arrived(("127.0.0.1:5001".parse().unwrap(), 7), b"x", t0),
            Arrival::New
        );
        // Forgotten after REMEMBER, or when publishing failed.
        assert_eq!(ledger.arrived(key, b"ack-4", t0 + REMEMBER), Arrival::New);
        ledger.failed(key);
        assert_eq!(ledger.arrived(key, b"ack-5", t0 + REMEMBER), Arrival::New);
    }

    #[test]
    fn bounded() {
        let ledger = InformLedger::default();
        let t0 = Instant::now();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        for id in 0..(MAX_ENTRIES as i32 + 10) {
            ledger.arrived((addr, id), b"a", t0 + Duration::from_millis(id as u64));
        }
        let entries = ledger.entries.lock().unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert!(!entries.contains_key(&(addr, 0)), "the oldest went first");
    }
}
