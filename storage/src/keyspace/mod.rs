//! Keyspaces: named maps from bytes to bytes with an optional time to live (what Redis
//! did for Panoptes).
//!
//! Each keyspace is one engine tree. Values are envelopes carrying their absolute expiry,
//! so reads treat an expired key as absent on their own; `Store::sweep_expired` removes
//! expired keys through the expiry index without reading anything else.

pub(crate) mod expiry;
pub(crate) mod stripes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{deadline_ms, Clock};
use crate::codec::{self, ByteBuf, BytesRef};
use crate::engine::{Bytes, Engine, Tree};
use crate::StorageError;
use stripes::Stripes;

/// Engine trees of keyspaces are named this, then the keyspace name.
pub(crate) const KEYSPACE_TREE_PREFIX: &str = "keyspace/";

/// The engine tree holding keyspace `name`.
pub(crate) fn keyspace_tree_name(name: &str) -> String {
    format!("{KEYSPACE_TREE_PREFIX}{name}")
}

/// Where a value lives, for error messages and logs.
pub(crate) fn place(keyspace: &str, key: &[u8]) -> String {
    format!("keyspace {keyspace:?} key \"{}\"", key.escape_ascii())
}

/// A handle on one keyspace. Cheap to clone; all clones see the same data.
///
/// Writes are not flushed: they become durable with the next `Store::flush` or sled's own
/// flush (every 500 ms), like Redis with `appendfsync everysec`.
#[derive(Clone)]
pub struct Keyspace {
    shared: Arc<KeyspaceShared>,
    index: Tree,
    stripes: Arc<Stripes>,
    clock: Arc<dyn Clock>,
}

/// The data of one keyspace and its running counts, shared by every handle on it in the
/// process (the `Store` hands out one per name).
///
/// The counts are kept by every write (each engine write returns the value it replaced,
/// so the change in keys and bytes is exact), counted once when the keyspace is first
/// opened, and read by `Store::stats` without touching the engine.
pub(crate) struct KeyspaceShared {
    name: Arc<str>,
    data: Tree,
    /// Stored keys, expired ones not yet swept included.
    keys: AtomicU64,
    /// Stored bytes: keys plus encoded values.
    bytes: AtomicU64,
}

impl KeyspaceShared {
    /// Opens the keyspace tree and counts what it holds: O(keys), once per process.
    pub(crate) fn open(engine: &Engine, name: &str) -> Result<KeyspaceShared, StorageError> {
        let data = engine.tree(&keyspace_tree_name(name))?;
        let (mut keys, mut bytes) = (0u64, 0u64);
        for entry in data.iter() {
            let (key, value) = entry?;
            keys += 1;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok(KeyspaceShared {
            name: Arc::from(name),
            data,
            keys: AtomicU64::new(keys),
            bytes: AtomicU64::new(bytes),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// (stored keys, stored bytes).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.keys.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn get_raw(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.data.get(key)
    }

    /// Stores `value` under `key` and counts it.
    pub(crate) fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        let added = (key.len() + value.len()) as u64;
        let previous = self.data.insert(key, value)?;
        match previous {
            Some(old) => self.sub_bytes((key.len() + old.len()) as u64),
            None => {
                self.keys.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
        Ok(())
    }

    /// Removes `key` and uncounts it.
    pub(crate) fn remove(&self, key: &[u8]) -> Result<(), StorageError> {
        if let Some(old) = self.data.remove(key)? {
            self.sub_bytes((key.len() + old.len()) as u64);
            // Only decremented for a key that was there, so it cannot go below 0.
            self.keys.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn sub_bytes(&self, n: u64) {
        // Saturating, in case a count started from a tree another handle was writing.
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.shared.name)
            .finish()
    }
}

/// A key and its value, as `scan_prefix` returns them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A stored value, decoded.
type Value = codec::Decoded<ByteBuf>;

impl Keyspace {
    pub(crate) fn new(
        shared: Arc<KeyspaceShared>,
        index: Tree,
        stripes: Arc<Stripes>,
        clock: Arc<dyn Clock>,
    ) -> Keyspace {
        Keyspace {
            shared,
            index,
            stripes,
            clock,
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The value of `key`, or `None` if it is absent or expired.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let now = self.clock.now_ms();
        Ok(self
            .stored(key)?
            .filter(|v| is_live(v, now))
            .map(|v| v.payload.0))
    }

    /// Sets `key` to `value`, expiring after `ttl` if given (no expiry otherwise; an
    /// existing expiry is replaced, as with Redis `SET`). A corrupt previous value is
    /// overwritten.
    pub fn put(&self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<(), StorageError> {
        let now = self.clock.now_ms();
        let expires_at_ms = ttl.map(|ttl| deadline_ms(now, ttl));
        let encoded = self.encode(key, value, expires_at_ms)?;
        let _guard = self.stripes.lock(&self.shared.name, key);
        let previous = self.shared.get_raw(key)?;
        let previous_expiry = self.expiry_or_warn(key, previous.as_ref());
        self.write(key, encoded, expires_at_ms, previous_expiry)
    }

    /// Sets `key` like `put` and returns the previous live value, atomically with respect
    /// to every other write of this key.
    pub fn get_set(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let now = self.clock.now_ms();
        let expires_at_ms = ttl.map(|ttl| deadline_ms(now, ttl));
        let encoded = self.encode(key, value, expires_at_ms)?;
        let _guard = self.stripes.lock(&self.shared.name, key);
        let previous = self.stored(key)?;
        let previous_expiry = previous.as_ref().and_then(|v| v.expires_at_ms);
        self.write(key, encoded, expires_at_ms, previous_expiry)?;
        Ok(previous.filter(|v| is_live(v, now)).map(|v| v.payload.0))
    }

    /// If the live value of `key` equals `expected` (`None`: absent or expired), sets it
    /// to `new` (`None`: deletes it) with `ttl`, and returns `true`; otherwise changes
    /// nothing and returns `false`. A corrupt current value is an error, not a mismatch.
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, StorageError> {
        let now = self.clock.now_ms();
        let expires_at_ms = ttl.map(|ttl| deadline_ms(now, ttl));
        let encoded = new
            .map(|value| self.encode(key, value, expires_at_ms))
            .transpose()?;
        let _guard = self.stripes.lock(&self.shared.name, key);
        let current = self.stored(key)?;
        let live = current
            .as_ref()
            .filter(|v| is_live(v, now))
            .map(|v| v.payload.0.as_slice());
        if live != expected {
            return Ok(false);
        }
        let current_expiry = current.as_ref().and_then(|v| v.expires_at_ms);
        match encoded {
            Some(encoded) => self.write(key, encoded, expires_at_ms, current_expiry)?,
            None if current.is_some() => self.remove(key, current_expiry)?,
            None => {}
        }
        Ok(true)
    }

    /// Removes `key`. Returns whether a live value was removed (an expired or corrupt
    /// value is removed too, and counts as absent).
    pub fn delete(&self, key: &[u8]) -> Result<bool, StorageError> {
        let now = self.clock.now_ms();
        let _guard = self.stripes.lock(&self.shared.name, key);
        let Some(previous) = self.shared.get_raw(key)? else {
            return Ok(false);
        };
        let decoded = codec::decode_expiry(&previous, || place(&self.shared.name, key));
        if let Err(e) = &decoded {
            tracing::warn!(error = %e, "deleting a corrupt value");
        }
        let previous_expiry = decoded.as_ref().ok().copied().flatten();
        self.remove(key, previous_expiry)?;
        Ok(matches!(decoded, Ok(expiry) if unexpired(expiry, now)))
    }

    /// The live entries whose key starts with `prefix`, in key order. A corrupt value is
    /// logged and left out rather than failing the whole scan.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StorageError> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        for entry in self.shared.data.scan_prefix(prefix) {
            let (key, raw) = entry?;
            match codec::decode::<ByteBuf>(&raw, || place(&self.shared.name, &key)) {
                Ok(v) if is_live(&v, now) => out.push((key.to_vec(), v.payload.0)),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "scan skipped a corrupt value"),
            }
        }
        Ok(out)
    }

    /// How long `key` has left to live: `None` if it is absent, expired, or has no expiry.
    pub fn ttl_remaining(&self, key: &[u8]) -> Result<Option<Duration>, StorageError> {
        let now = self.clock.now_ms();
        let Some(raw) = self.shared.get_raw(key)? else {
            return Ok(None);
        };
        let expiry = codec::decode_expiry(&raw, || place(&self.shared.name, key))?;
        Ok(expiry
            .filter(|&at| unexpired(Some(at), now))
            .map(|at| Duration::from_millis(at - now)))
    }

    /// The number of live keys. Reads every key: O(keys in the keyspace).
    pub fn len(&self) -> Result<usize, StorageError> {
        let now = self.clock.now_ms();
        let mut count = 0;
        for entry in self.shared.data.iter() {
            let (key, raw) = entry?;
            match codec::decode_expiry(&raw, || place(&self.shared.name, &key)) {
                Ok(expiry) if unexpired(expiry, now) => count += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "len skipped a corrupt value"),
            }
        }
        Ok(count)
    }

    /// Whether the keyspace has no live key. Stops at the first live key found.
    pub fn is_empty(&self) -> Result<bool, StorageError> {
        let now = self.clock.now_ms();
        for entry in self.shared.data.iter() {
            let (key, raw) = entry?;
            if let Ok(expiry) = codec::decode_expiry(&raw, || place(&self.shared.name, &key)) {
                if unexpired(expiry, now) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Stores raw bytes without an envelope, for tests of corruption.
    pub(crate) fn write_raw(&self, key: &[u8], raw: &[u8]) -> Result<(), StorageError> {
        self.shared.insert(key, raw.to_vec())
    }

    /// The stored (possibly expired) value of `key`, decoded.
    fn stored(&self, key: &[u8]) -> Result<Option<Value>, StorageError> {
        self.shared
            .get_raw(key)?
            .map(|raw| codec::decode(&raw, || place(&self.shared.name, key)))
            .transpose()
    }

    fn encode(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at_ms: Option<u64>,
    ) -> Result<Vec<u8>, StorageError> {
        codec::encode(expires_at_ms, &BytesRef(value), || {
            place(&self.shared.name, key)
        })
    }

    /// The expiry of a value about to be replaced. A corrupt value's expiry is unknown:
    /// its index entry (if any) stays behind, and the sweep drops it as stale.
    fn expiry_or_warn(&self, key: &[u8], raw: Option<&Bytes>) -> Option<u64> {
        let raw = raw?;
        codec::decode_expiry(raw, || place(&self.shared.name, key))
            .inspect_err(|e| tracing::warn!(error = %e, "overwriting a corrupt value"))
            .ok()
            .flatten()
    }

    /// Stores `encoded` under `key`, keeping the expiry index in step. Caller holds the
    /// stripe lock of `key`.
    ///
    /// The index needs an entry at or *before* the value's expiry (see `expiry`). When
    /// the previous value's expiry was no later than the new one, its entry already
    /// qualifies and the index is not written at all: renewing a TTL (a rate state or a
    /// lease-like key rewritten every poll) costs one engine write instead of three, and
    /// the sweep moves the entry forward once when it reaches it.
    fn write(
        &self,
        key: &[u8],
        encoded: Vec<u8>,
        expires_at_ms: Option<u64>,
        previous_expiry: Option<u64>,
    ) -> Result<(), StorageError> {
        if let Some(at) = expires_at_ms {
            if previous_expiry.is_none_or(|old| old > at) {
                // Index first: a crash in between leaves a stale index entry, never a
                // value with an expiry that no sweep would find.
                self.index
                    .insert(&expiry::index_key(at, &self.shared.name, key), Vec::new())?;
            }
        }
        // A previous entry that no longer applies (the value now has no expiry, or a
        // later one written above) is left for the sweep, which drops it when due.
        self.shared.insert(key, encoded)
    }

    /// Removes `key` and its index entry (if the entry was moved earlier than the expiry,
    /// the sweep drops it instead). Caller holds the stripe lock of `key`.
    fn remove(&self, key: &[u8], previous_expiry: Option<u64>) -> Result<(), StorageError> {
        self.shared.remove(key)?;
        if let Some(old) = previous_expiry {
            self.index
                .remove(&expiry::index_key(old, &self.shared.name, key))?;
        }
        Ok(())
    }
}

fn is_live(value: &Value, now: u64) -> bool {
    unexpired(value.expires_at_ms, now)
}

/// A value is live until the millisecond of its expiry: at `expires_at_ms` it is gone.
fn unexpired(expires_at_ms: Option<u64>, now: u64) -> bool {
    expires_at_ms.is_none_or(|at| at > now)
}
