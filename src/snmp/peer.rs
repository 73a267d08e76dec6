//! What we learnt about each v3 agent: its engine ID, boots and time (RFC 3414
//! discovery and time synchronisation) and our keys localized to it. Kept per
//! (device, user) for the engine's lifetime, so a poll every minute costs no
//! discovery round trip and no key derivation after the first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::credentials::UsmUser;
use super::usm::LocalizedKeys;

#[derive(Clone, Debug)]
pub(crate) struct PeerState {
    pub engine_id: Vec<u8>,
    pub boots: u32,
    /// snmpEngineTime when last heard, and when that was.
    pub time: u32,
    pub heard_at: Instant,
    pub keys: Arc<LocalizedKeys>,
    /// The credentials the keys were made from: a changed passphrase makes
    /// the entry useless.
    pub user: UsmUser,
}

impl PeerState {
    /// The agent's engine time now, by our clock since we last heard it.
    pub fn time_now(&self) -> u32 {
        let elapsed = u32::try_from(self.heard_at.elapsed().as_secs()).unwrap_or(u32::MAX);
        self.time.saturating_add(elapsed).min(i32::MAX as u32)
    }

    /// RFC 3414 3.2 7b, as a non-authoritative receiver: take newer boots/time
    /// from an authentic message. False when the message is from an older
    /// boot (a replay), which the caller drops.
    pub fn observe(&mut self, boots: u32, time: u32) -> bool {
        if boots < self.boots {
            return false;
        }
        if boots > self.boots || time >= self.time_now() {
            self.boots = boots;
            self.time = time;
            self.heard_at = Instant::now();
        }
        true
    }
}

/// Bounded: beyond `MAX_PEERS` entries the cache starts over (each device then
/// pays one discovery again), so memory cannot grow without limit.
#[derive(Default)]
pub(crate) struct PeerCache {
    map: Mutex<HashMap<(SocketAddr, String), PeerState>>,
}

const MAX_PEERS: usize = 200_000;

impl PeerCache {
    pub fn get(&self, peer: SocketAddr, user: &UsmUser) -> Option<PeerState> {
        let map = self.map.lock().ok()?;
        map.get(&(peer, user.name.clone()))
            .filter(|state| state.user == *user)
            .cloned()
    }

    pub fn put(&self, peer: SocketAddr, state: PeerState) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_PEERS {
                map.clear();
            }
            map.insert((peer, state.user.name.clone()), state);
        }
    }

    pub fn forget(&self, peer: SocketAddr, user: &UsmUser) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&(peer, user.name.clone()));
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }
}
