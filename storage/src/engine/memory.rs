//! The memory engine: one `BTreeMap` per tree behind a `RwLock`. For tests and stores
//! that need not outlive the process; every test of the crate runs against it and sled.
//!
//! It keeps sled's observable behaviour where callers could depend on it: batches are
//! atomic, iterators are lazy and not snapshots (each step looks up the next key after
//! the last one returned, so writes during iteration are seen or not, never a panic),
//! and `flush` is a no-op that succeeds. A test hook can make `flush` slow, to exercise
//! group commit without a disk.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use super::{Batch, Bytes, KeyValue, KvEngine, KvTree, RangeIter};
use crate::files::{Files, MemFiles};
use crate::{Durability, StorageError};

type Map = BTreeMap<Vec<u8>, Arc<[u8]>>;

#[derive(Default)]
pub(crate) struct MemoryEngine {
    trees: Mutex<HashMap<String, Arc<MemoryTree>>>,
    /// How long each flush takes (tests of group commit).
    flush_delay: Option<Duration>,
    /// The topics' segment files.
    files: Arc<MemFiles>,
}

impl MemoryEngine {
    pub(crate) fn new() -> MemoryEngine {
        MemoryEngine::default()
    }

    /// An engine whose every flush sleeps for `delay`, like a slow disk.
    pub(crate) fn with_flush_delay(delay: Duration) -> MemoryEngine {
        MemoryEngine {
            flush_delay: Some(delay),
            ..MemoryEngine::default()
        }
    }

    fn trees(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<MemoryTree>>> {
        // The map is only ever inserted into; a panic elsewhere cannot leave it broken.
        self.trees
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KvEngine for MemoryEngine {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn KvTree>, StorageError> {
        let tree = Arc::clone(self.trees().entry(name.to_owned()).or_default());
        Ok(tree)
    }

    fn tree_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.trees().keys().cloned().collect())
    }

    fn flush(&self) -> Result<(), StorageError> {
        if let Some(delay) = self.flush_delay {
            std::thread::sleep(delay);
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn files(&self) -> Arc<dyn Files> {
        Arc::clone(&self.files) as Arc<dyn Files>
    }

    /// An engine with a slow flush stands for a disk that syncs: appends then wait for
    /// flushes, as with `Durability::PowerLoss` on disk (tests of group commit).
    fn durability(&self) -> Durability {
        if self.flush_delay.is_some() {
            Durability::PowerLoss
        } else {
            Durability::Process
        }
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[derive(Default)]
pub(crate) struct MemoryTree {
    map: Arc<RwLock<Map>>,
}

/// A poisoned lock is taken anyway: every write below is one `BTreeMap` call or a batch
/// applied in a loop that cannot panic half-way (inserts and removes of owned data).
fn read(map: &RwLock<Map>) -> RwLockReadGuard<'_, Map> {
    map.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write(map: &RwLock<Map>) -> RwLockWriteGuard<'_, Map> {
    map.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KvTree for MemoryTree {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        Ok(read(&self.map).get(key).cloned().map(Bytes::Shared))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<Option<Bytes>, StorageError> {
        Ok(write(&self.map)
            .insert(key.to_vec(), Arc::from(value))
            .map(Bytes::Shared))
    }

    fn remove(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        Ok(write(&self.map).remove(key).map(Bytes::Shared))
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        let mut map = write(&self.map);
        for (key, value) in batch.writes {
            match value {
                Some(value) => map.insert(key, Arc::from(value)),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> RangeIter<'_> {
        Box::new(Cursor {
            map: Arc::clone(&self.map),
            lower,
            upper,
        })
    }
}

/// A lazy iterator over a key range: each step takes the read lock and finds the first
/// (or last) entry strictly inside the bounds left, then narrows them past it.
struct Cursor {
    map: Arc<RwLock<Map>>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
}

impl Cursor {
    fn empty(&self) -> bool {
        match (&self.lower, &self.upper) {
            (Bound::Included(l), Bound::Included(u)) => l > u,
            (Bound::Included(l), Bound::Excluded(u))
            | (Bound::Excluded(l), Bound::Included(u))
            | (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
            _ => false,
        }
    }

    fn step(&mut self, from_front: bool) -> Option<KeyValue> {
        // BTreeMap::range panics on inverted bounds; an exhausted cursor has them.
        if self.empty() {
            return None;
        }
        let map = read(&self.map);
        let mut range = map.range::<Vec<u8>, _>((self.lower.clone(), self.upper.clone()));
        let (key, value) = if from_front {
            range.next()?
        } else {
            range.next_back()?
        };
        let found = (
            Bytes::Shared(Arc::from(key.as_slice())),
            Bytes::Shared(Arc::clone(value)),
        );
        if from_front {
            self.lower = Bound::Excluded(key.clone());
        } else {
            self.upper = Bound::Excluded(key.clone());
        }
        Some(found)
    }
}

impl Iterator for Cursor {
    type Item = Result<KeyValue, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(true).map(Ok)
    }
}

impl DoubleEndedIterator for Cursor {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(false).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(iter: RangeIter<'_>) -> Vec<Vec<u8>> {
        iter.map(|r| r.unwrap().0.to_vec()).collect()
    }

    #[test]
    fn ranges_are_ordered_reversible_and_bounded() {
        let tree = MemoryTree::default();
        for k in [b"a", b"b", b"c", b"d"] {
            tree.insert(k, k.to_vec()).unwrap();
        }
        let all = keys(tree.range(Bound::Unbounded, Bound::Unbounded));
        assert_eq!(all, vec![b"a", b"b", b"c", b"d"]);
        let mid = keys(tree.range(
            Bound::Excluded(b"a".to_vec()),
            Bound::Included(b"c".to_vec()),
        ));
        assert_eq!(mid, vec![b"b", b"c"]);
        let mut both = tree.range(Bound::Unbounded, Bound::Excluded(b"d".to_vec()));
        assert_eq!(&*both.next_back().unwrap().unwrap().0, b"c");
        assert_eq!(&*both.next().unwrap().unwrap().0, b"a");
        assert_eq!(&*both.next().unwrap().unwrap().0, b"b");
        assert!(both.next().is_none() && both.next_back().is_none());
        // Inverted and empty bounds yield nothing rather than panic.
        let none = keys(tree.range(
            Bound::Included(b"c".to_vec()),
            Bound::Excluded(b"a".to_vec()),
        ));
        assert!(none.is_empty());
    }

    #[test]
    fn writes_during_iteration_are_tolerated() {
        let tree = MemoryTree::default();
        tree.insert(b"a", vec![]).unwrap();
        tree.insert(b"c", vec![]).unwrap();
        let mut iter = tree.range(Bound::Unbounded, Bound::Unbounded);
        assert_eq!(&*iter.next().unwrap().unwrap().0, b"a");
        tree.insert(b"b", vec![]).unwrap();
        tree.remove(b"c").unwrap();
        assert_eq!(&*iter.next().unwrap().unwrap().0, b"b");
        assert!(iter.next().is_none());
    }

    #[test]
    fn batches_apply_in_order() {
        let tree = MemoryTree::default();
        let mut batch = Batch::default();
        batch.insert(b"k", b"1".to_vec());
        batch.remove(b"k");
        batch.insert(b"j", b"2".to_vec());
        tree.apply(batch).unwrap();
        assert!(tree.get(b"k").unwrap().is_none());
        assert_eq!(&*tree.get(b"j").unwrap().unwrap(), b"2");
    }
}
