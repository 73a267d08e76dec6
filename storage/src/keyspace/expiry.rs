//! The expiry index: which key of which keyspace expires when, so that sweeping costs
//! O(expired keys), not O(all keys).
//!
//! Index key: `expires_at_ms` (u64 big-endian, so keys sort by time), the keyspace name
//! (one length byte, then the name), then the key. The index value is empty.
//!
//! Invariant (kept by the keyspace writers under their stripe lock): every stored value
//! with an expiry has an index entry at or *before* its expiry. Entries may be stale (the
//! value was removed, lost its expiry, or got a later one): the sweep, which reads every
//! value whose entry is due, removes the value if it has expired, moves the entry to the
//! value's expiry if that is later, and drops the entry otherwise. So a writer that only
//! pushes an expiry back does not touch the index, and an entry written before its value
//! (as writers do) is at worst stale after a crash.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use super::stripes::Stripes;
use super::{place, KeyspaceShared};
use crate::codec;
use crate::engine::Tree;
use crate::StorageError;

/// The index key of `key` in `keyspace` expiring at `expires_at_ms`. Keyspace names are
/// at most 255 bytes (checked when a keyspace is opened).
pub(crate) fn index_key(expires_at_ms: u64, keyspace: &str, key: &[u8]) -> Vec<u8> {
    let name = keyspace.as_bytes();
    let mut out = Vec::with_capacity(8 + 1 + name.len() + key.len());
    out.extend_from_slice(&expires_at_ms.to_be_bytes());
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(key);
    out
}

/// The parts of an index key; `None` if it is not one.
fn parse_index_key(raw: &[u8]) -> Option<(u64, &str, &[u8])> {
    let expires_at_ms = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    let name_len = usize::from(*raw.get(8)?);
    let name = std::str::from_utf8(raw.get(9..9 + name_len)?).ok()?;
    Some((expires_at_ms, name, raw.get(9 + name_len..)?))
}

/// Removes every value whose expiry is at or before `now_ms`, with its index entry, moves
/// the due entries of values that expire later to their expiry, and drops stale entries.
/// Returns how many values were removed.
/// `keyspace` finds the shared state of a keyspace by name, so that its counts follow.
pub(crate) fn sweep(
    index: &Tree,
    stripes: &Stripes,
    now_ms: u64,
    mut keyspace: impl FnMut(&str) -> Result<Arc<KeyspaceShared>, StorageError>,
) -> Result<usize, StorageError> {
    let upper = match now_ms.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    let mut found: HashMap<String, Arc<KeyspaceShared>> = HashMap::new();
    let mut removed = 0;
    for entry in index.range((Bound::Unbounded, upper)) {
        let (index_entry, _) = entry?;
        let Some((_, keyspace_name, key)) = parse_index_key(&index_entry) else {
            tracing::warn!(
                entry = %index_entry.escape_ascii(),
                "dropping a malformed entry of the expiry index"
            );
            index.remove(&index_entry)?;
            continue;
        };
        let _guard = stripes.lock(keyspace_name, key);
        let data = match found.get(keyspace_name) {
            Some(shared) => shared,
            None => found
                .entry(keyspace_name.to_owned())
                .or_insert(keyspace(keyspace_name)?),
        };
        if let Some(raw) = data.get_raw(key)? {
            match codec::decode_expiry(&raw, || place(keyspace_name, key)) {
                Ok(Some(at)) if at <= now_ms => {
                    data.remove(key)?;
                    removed += 1;
                }
                // Its expiry was pushed back since the entry was written: move the entry
                // there (past `now_ms`, so this walk does not meet it again).
                Ok(Some(at)) => {
                    index.insert(&index_key(at, keyspace_name, key), Vec::new())?;
                }
                // No expiry any more: a stale entry.
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiry sweep left a corrupt value in place"),
            }
        }
        index.remove(&index_entry)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_round_trip_and_sort_by_time() {
        let a = index_key(5, "rates", b"k1");
        let b = index_key(256, "a", b"");
        assert_eq!(parse_index_key(&a), Some((5, "rates", &b"k1"[..])));
        assert_eq!(parse_index_key(&b), Some((256, "a", &b""[..])));
        assert!(a < b);
    }

    #[test]
    fn malformed_index_keys_are_rejected() {
        assert_eq!(parse_index_key(b"short"), None);
        let mut bad = 1u64.to_be_bytes().to_vec();
        bad.push(10);
        bad.extend_from_slice(b"abc");
        assert_eq!(parse_index_key(&bad), None);
    }
}
