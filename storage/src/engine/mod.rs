//! The ordered key-value engine under everything, behind a trait with two engines:
//!
//! - [`sled_engine`]: sled 0.34.7, on disk, the default. The only file that names sled.
//! - [`memory`]: ordered maps in memory, for tests and throwaway stores.
//!
//! Keyspaces, topics, offsets and leases use only what [`KvEngine`] and [`KvTree`] offer
//! (named ordered trees, atomic batches on one tree, a global flush), through the cheap
//! handles [`Engine`] and [`Tree`]. The trait is object-safe and dispatched dynamically:
//! one virtual call is nothing next to a B-tree lookup, and it keeps every caller free
//! of generics.

pub(crate) mod memory;
pub(crate) mod sled_engine;

use std::ops::{Bound, Deref, RangeBounds};
use std::sync::Arc;

use crate::StorageError;

/// Bytes handed out by an engine: cheap to clone, derefs to `[u8]`, no copy out of the
/// engine's own buffers.
#[derive(Clone)]
pub(crate) enum Bytes {
    Sled(::sled::IVec),
    Shared(Arc<[u8]>),
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Sled(v) => v,
            Bytes::Shared(v) => v,
        }
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.escape_ascii())
    }
}

/// A key and its value, as iterators yield them.
pub(crate) type KeyValue = (Bytes, Bytes);

/// An iterator over a key range, in key order, reversible.
pub(crate) type RangeIter<'a> =
    Box<dyn DoubleEndedIterator<Item = Result<KeyValue, StorageError>> + Send + 'a>;

/// One database: a set of named ordered trees and a way to make writes durable.
pub(crate) trait KvEngine: Send + Sync {
    /// Opens (creating if needed) the tree `name`. Every call for one name returns a
    /// handle on the same data.
    fn open_tree(&self, name: &str) -> Result<Arc<dyn KvTree>, StorageError>;

    /// The names of every tree that exists, in no particular order.
    fn tree_names(&self) -> Result<Vec<String>, StorageError>;

    /// Makes every write that completed before the call durable.
    fn flush(&self) -> Result<(), StorageError>;

    /// Bytes the engine holds on disk (0 for the memory engine).
    fn size_on_disk(&self) -> Result<u64, StorageError>;

    /// A short name for logs and `/metrics` ("sled", "memory").
    fn kind(&self) -> &'static str;

    /// Where the topics' segment files go: beside the database on disk, or in memory.
    fn files(&self) -> Arc<dyn crate::files::Files>;

    /// How far an acknowledged write must be durable.
    fn durability(&self) -> crate::Durability;

    /// Why the engine refuses every write from now on, if it does (sled after a failed
    /// write to its log, until the database is reopened). Cheap: read on every `/ready`.
    fn failure(&self) -> Option<String> {
        None
    }

    /// Keeps the engine's room to write ahead of a full disk (see the sled engine);
    /// called by `Store::check`.
    fn reserve_space(&self) {}
}

/// An ordered map from bytes to bytes.
pub(crate) trait KvTree: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError>;

    /// Inserts and returns the previous value.
    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<Option<Bytes>, StorageError>;

    /// Removes and returns the previous value.
    fn remove(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError>;

    /// Applies all writes of `batch` or none of them (also across a crash).
    fn apply(&self, batch: Batch) -> Result<(), StorageError>;

    /// Entries with keys between the bounds, in key order. Not a snapshot: writes made
    /// while iterating may or may not be seen, as with sled.
    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> RangeIter<'_>;
}

/// A database handle. Cheap to clone; clones share the database.
#[derive(Clone)]
pub(crate) struct Engine {
    inner: Arc<dyn KvEngine>,
}

impl Engine {
    pub(crate) fn new(inner: Arc<dyn KvEngine>) -> Engine {
        Engine { inner }
    }

    /// Opens (creating if needed) a tree.
    pub(crate) fn tree(&self, name: &str) -> Result<Tree, StorageError> {
        Ok(Tree {
            inner: self.inner.open_tree(name)?,
        })
    }

    pub(crate) fn tree_names(&self) -> Result<Vec<String>, StorageError> {
        self.inner.tree_names()
    }

    /// Makes every write so far durable. Callers go through `commit::Committer`, which
    /// shares one flush between concurrent writers.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }

    pub(crate) fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.inner.size_on_disk()
    }

    pub(crate) fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    pub(crate) fn files(&self) -> Arc<dyn crate::files::Files> {
        self.inner.files()
    }

    pub(crate) fn durability(&self) -> crate::Durability {
        self.inner.durability()
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.inner.failure()
    }

    pub(crate) fn reserve_space(&self) {
        self.inner.reserve_space()
    }
}

/// An ordered map handle. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Tree {
    inner: Arc<dyn KvTree>,
}

/// Writes applied to one tree atomically: `(key, Some(value))` inserts, `(key, None)`
/// removes, in order.
#[derive(Default, Debug)]
pub(crate) struct Batch {
    pub(crate) writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    pub(crate) fn insert(&mut self, key: &[u8], value: Vec<u8>) {
        self.writes.push((key.to_vec(), Some(value)));
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.writes.push((key.to_vec(), None));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

impl Tree {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.inner.get(key)
    }

    /// Inserts and returns the previous value.
    pub(crate) fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<Option<Bytes>, StorageError> {
        self.inner.insert(key, value)
    }

    /// Removes and returns the previous value.
    pub(crate) fn remove(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.inner.remove(key)
    }

    /// Applies all writes of `batch` or none of them (also across a crash).
    pub(crate) fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.inner.apply(batch)
    }

    /// Entries with keys in `range`, in key order (reversible).
    pub(crate) fn range<K, R>(&self, range: R) -> RangeIter<'_>
    where
        K: AsRef<[u8]>,
        R: RangeBounds<K>,
    {
        let owned = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.inner
            .range(owned(range.start_bound()), owned(range.end_bound()))
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> RangeIter<'_> {
        self.inner
            .range(Bound::Included(prefix.to_vec()), prefix_end(prefix))
    }

    /// Every entry, in key order.
    pub(crate) fn iter(&self) -> RangeIter<'_> {
        self.inner.range(Bound::Unbounded, Bound::Unbounded)
    }
}

/// The exclusive upper bound of the keys starting with `prefix`: the prefix with its last
/// byte below 0xFF incremented (and what followed dropped); unbounded if every byte is 0xFF.
fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Bound::Excluded(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Bound::Excluded(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), Bound::Unbounded);
        assert_eq!(prefix_end(b""), Bound::Unbounded);
    }
}
