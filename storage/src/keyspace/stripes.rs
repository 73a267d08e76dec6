//! Striped locks that serialize writers of the same key.
//!
//! A keyspace write touches two trees (the value and the expiry index), so two writers of
//! one key must not interleave, or an index entry could be removed under a live value.
//! A lock per key would be unbounded; one lock per keyspace would serialize unrelated
//! keys. A fixed array of mutexes chosen by a hash of (keyspace, key) bounds memory and
//! only rarely makes unrelated keys wait. Readers take no lock. The guarded data is `()`,
//! so a poisoned lock (a panic while held) carries no broken state and is taken anyway.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

const STRIPES: usize = 64;

pub(crate) struct Stripes {
    locks: Vec<Mutex<()>>,
}

impl Stripes {
    pub(crate) fn new() -> Stripes {
        Stripes {
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub(crate) fn lock(&self, keyspace: &str, key: &[u8]) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        keyspace.hash(&mut hasher);
        key.hash(&mut hasher);
        // The remainder is < STRIPES, so the cast cannot truncate.
        let index = (hasher.finish() % STRIPES as u64) as usize;
        self.locks[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
