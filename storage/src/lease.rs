//! Leases: named, owned, expiring locks (what ZooKeeper's ephemeral lock nodes did).
//!
//! A lease is held by one owner until it expires (by the store's [`Clock`]) or is
//! released; the holder keeps it by renewing before the expiry, and loses it by stopping.
//! Used for "only one run of plugin P on resource R at a time" and, later, leader
//! election.
//!
//! Layout: one tree, `panoptes/leases`. `l<name>` holds an envelope whose expiry is the
//! lease's and whose payload is the owner and the fencing token; `t` holds the last token
//! handed out, written in the same atomic batch as the lease that took it, so a token is
//! never handed out twice, even across a crash.
//!
//! All operations of one store are serialized by one mutex (they are a read and a write
//! each, and rare next to the work they guard); acquire, renew and release return only
//! after a flush that covers them (group commit), as ZooKeeper acknowledges after its log
//! is synced.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{deadline_ms, Clock};
use crate::codec;
use crate::commit::Committer;
use crate::engine::{Batch, Tree};
use crate::StorageError;

const LEASE_PREFIX: u8 = b'l';
const TOKEN_KEY: &[u8] = b"t";

/// A lease as held: who holds `name` until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub owner: String,
    /// Fencing token: a number that grows every time the lease is taken by a new holder
    /// (or retaken after it lapsed) and is never reused, so work stamped with it can be
    /// told apart from a previous holder's late writes. Renewals keep it.
    pub token: u64,
    /// Store clock time (ms since the epoch) at which the lease lapses unless renewed.
    pub expires_at_ms: u64,
}

/// What is stored per lease.
#[derive(Debug, Serialize, Deserialize)]
struct Held {
    owner: String,
    token: u64,
}

/// A handle on the leases of a store. Cheap to clone.
#[derive(Clone)]
pub struct Leases {
    shared: Arc<LeasesShared>,
    clock: Arc<dyn Clock>,
}

pub(crate) struct LeasesShared {
    tree: Tree,
    committer: Arc<Committer>,
    lock: Mutex<()>,
}

impl LeasesShared {
    pub(crate) fn new(tree: Tree, committer: Arc<Committer>) -> LeasesShared {
        LeasesShared {
            tree,
            committer,
            lock: Mutex::new(()),
        }
    }
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").finish_non_exhaustive()
    }
}

fn lease_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(LEASE_PREFIX);
    key.extend_from_slice(name.as_bytes());
    key
}

fn place(name: &str) -> String {
    format!("lease {name:?}")
}

impl Leases {
    pub(crate) fn new(shared: Arc<LeasesShared>, clock: Arc<dyn Clock>) -> Leases {
        Leases { shared, clock }
    }

    /// Takes the lease `name` for `owner` for `ttl`, if nobody else holds it (unexpired).
    /// `None` if another owner holds it. If `owner` already holds it, this renews it
    /// (same token).
    pub fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StorageError> {
        check("lease", name)?;
        check("lease owner", owner)?;
        let lease = {
            let _guard = self.lock();
            let now = self.clock.now_ms();
            let current = self.current(name, now)?;
            let (token, new_token) = match current {
                Some(held) if held.owner != owner => return Ok(None),
                Some(held) => (held.token, false),
                None => (self.next_token()?, true),
            };
            let lease = Lease {
                name: name.to_owned(),
                owner: owner.to_owned(),
                token,
                expires_at_ms: deadline_ms(now, ttl),
            };
            self.store(&lease, new_token)?;
            lease
        };
        self.shared.committer.wait_durable()?;
        Ok(Some(lease))
    }

    /// Extends `lease` to `ttl` from now, if it is still held by its owner with its token
    /// and has not expired. `None` if it was lost (expired, released, or taken by another
    /// owner since): the caller must stop the work the lease guarded.
    pub fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StorageError> {
        let renewed = {
            let _guard = self.lock();
            let now = self.clock.now_ms();
            match self.current(&lease.name, now)? {
                Some(held) if held.owner == lease.owner && held.token == lease.token => {}
                _ => return Ok(None),
            }
            let renewed = Lease {
                expires_at_ms: deadline_ms(now, ttl),
                ..lease.clone()
            };
            self.store(&renewed, false)?;
            renewed
        };
        self.shared.committer.wait_durable()?;
        Ok(Some(renewed))
    }

    /// Gives `lease` up, if it is still held by its owner with its token. Returns whether
    /// it was (an expired lease is not held any more, and returns `false`).
    pub fn release(&self, lease: &Lease) -> Result<bool, StorageError> {
        {
            let _guard = self.lock();
            let now = self.clock.now_ms();
            match self.current(&lease.name, now)? {
                Some(held) if held.owner == lease.owner && held.token == lease.token => {}
                _ => return Ok(false),
            }
            self.shared.tree.remove(&lease_key(&lease.name))?;
        }
        self.shared.committer.wait_durable()?;
        Ok(true)
    }

    /// Who holds `name` now, if anyone.
    pub fn holder(&self, name: &str) -> Result<Option<Lease>, StorageError> {
        let now = self.clock.now_ms();
        let Some(raw) = self.shared.tree.get(&lease_key(name))? else {
            return Ok(None);
        };
        let decoded = codec::decode::<Held>(&raw, || place(name))?;
        Ok(decoded
            .expires_at_ms
            .filter(|&at| at > now)
            .map(|expires_at_ms| Lease {
                name: name.to_owned(),
                owner: decoded.payload.owner,
                token: decoded.payload.token,
                expires_at_ms,
            }))
    }

    /// The live holder of `name`. A corrupt entry is logged and treated as free: a lease
    /// nobody could ever take again would stop the work it guards for good.
    fn current(&self, name: &str, now: u64) -> Result<Option<Held>, StorageError> {
        let Some(raw) = self.shared.tree.get(&lease_key(name))? else {
            return Ok(None);
        };
        match codec::decode::<Held>(&raw, || place(name)) {
            Ok(d) if d.expires_at_ms.is_some_and(|at| at > now) => Ok(Some(d.payload)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "treating a corrupt lease as free");
                Ok(None)
            }
        }
    }

    fn next_token(&self) -> Result<u64, StorageError> {
        let last = match self.shared.tree.get(TOKEN_KEY)? {
            Some(raw) => codec::decode::<u64>(&raw, || "the last lease token".into())?.payload,
            None => 0,
        };
        Ok(last + 1)
    }

    /// Writes `lease`, and the token counter with it if the token is new. Caller holds
    /// the lock.
    fn store(&self, lease: &Lease, new_token: bool) -> Result<(), StorageError> {
        let held = Held {
            owner: lease.owner.clone(),
            token: lease.token,
        };
        let mut batch = Batch::default();
        batch.insert(
            &lease_key(&lease.name),
            codec::encode(Some(lease.expires_at_ms), &held, || place(&lease.name))?,
        );
        if new_token {
            batch.insert(
                TOKEN_KEY,
                codec::encode(None, &lease.token, || "the last lease token".into())?,
            );
        }
        self.shared.tree.apply(batch)
    }

    /// Removes leases that expired before now and returns how many. O(leases stored).
    pub(crate) fn sweep_expired(&self) -> Result<usize, StorageError> {
        let _guard = self.lock();
        let now = self.clock.now_ms();
        let mut batch = Batch::default();
        let mut removed = 0;
        for entry in self.shared.tree.scan_prefix(&[LEASE_PREFIX]) {
            let (key, raw) = entry?;
            match codec::decode_expiry(&raw, || format!("lease {:?}", key.escape_ascii())) {
                Ok(Some(at)) if at > now => {}
                Ok(_) => {
                    batch.remove(&key);
                    removed += 1;
                }
                Err(e) => tracing::warn!(error = %e, "lease sweep left a corrupt lease in place"),
            }
        }
        self.shared.tree.apply(batch)?;
        Ok(removed)
    }

    /// Serializes lease operations. Nothing is half-updated under it (each operation is
    /// one engine batch), so a poisoned lock is taken anyway.
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.shared
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores raw bytes as lease `name`, for tests of corruption.
    pub(crate) fn write_raw(&self, name: &str, raw: &[u8]) -> Result<(), StorageError> {
        self.shared.tree.insert(&lease_key(name), raw.to_vec())?;
        Ok(())
    }
}

fn check(kind: &'static str, name: &str) -> Result<(), StorageError> {
    if name.is_empty() {
        return Err(StorageError::InvalidName {
            kind,
            name: String::new(),
            reason: "it is empty".into(),
        });
    }
    Ok(())
}
