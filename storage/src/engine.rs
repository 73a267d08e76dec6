//! The ordered key-value engine under everything: sled 0.34.7.
//!
//! This is the only file that names sled. Keyspaces, topics and offsets use the few
//! operations below (ordered trees, atomic batches on one tree, a global flush), which is
//! what a memory engine will have to provide when this becomes a trait.
//!
//! Measured sled 0.34 caveats that shape the callers: a value is durable only after
//! `flush` (sled also flushes every 500 ms by itself); tiny values cost ~6x their size on
//! disk; huge batches balloon the resident memory, so callers keep batches bounded.

use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use crate::StorageError;

/// Bytes handed out by the engine (cheap to clone, derefs to `[u8]`).
pub(crate) type Bytes = sled::IVec;

/// Page cache size. sled's default is 1 GiB, far more than a collector needs resident.
const CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// How often sled flushes on its own, so keyspace writes are lost at most this long after
/// a crash even when nobody calls `flush`.
const FLUSH_EVERY_MS: u64 = 500;

/// The text sled puts in the I/O error when its lock file is held (sled gives no error
/// kind for it).
const LOCK_ERROR_TEXT: &str = "could not acquire lock";

/// One database: a set of named ordered trees.
#[derive(Clone)]
pub(crate) struct Engine {
    db: sled::Db,
}

impl Engine {
    /// Opens (creating if needed) the database in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Engine, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .flush_every_ms(Some(FLUSH_EVERY_MS));
        match config.open() {
            Ok(db) => Ok(Engine { db }),
            Err(sled::Error::Io(e)) if e.to_string().contains(LOCK_ERROR_TEXT) => {
                Err(StorageError::Locked {
                    path: dir.to_path_buf(),
                    reason: e.to_string(),
                })
            }
            Err(sled::Error::Io(source)) => Err(StorageError::Directory {
                path: dir.to_path_buf(),
                source,
            }),
            Err(e) => Err(engine_error("open the database", dir.display(), e)),
        }
    }

    /// A database in a temporary directory that is removed on drop.
    pub(crate) fn temporary() -> Result<Engine, StorageError> {
        sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .open()
            .map(|db| Engine { db })
            .map_err(|e| engine_error("open a temporary database", "(temporary)", e))
    }

    /// Opens (creating if needed) a tree.
    pub(crate) fn tree(&self, name: &str) -> Result<Tree, StorageError> {
        let tree = self
            .db
            .open_tree(name)
            .map_err(|e| engine_error("open the tree", name, e))?;
        Ok(Tree {
            tree,
            name: Arc::from(name),
        })
    }

    /// Makes every write so far durable.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| engine_error("flush", "the database", e))
    }

    pub(crate) fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.db
            .size_on_disk()
            .map_err(|e| engine_error("measure the size on disk", "the database", e))
    }
}

/// An ordered map from bytes to bytes.
#[derive(Clone)]
pub(crate) struct Tree {
    tree: sled::Tree,
    name: Arc<str>,
}

/// Writes applied to one tree atomically.
#[derive(Default)]
pub(crate) struct Batch {
    batch: sled::Batch,
}

impl Batch {
    pub(crate) fn insert(&mut self, key: &[u8], value: Vec<u8>) {
        self.batch.insert(key, value);
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.batch.remove(key);
    }
}

impl Tree {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.tree.get(key).map_err(|e| self.error("read", e))
    }

    /// Inserts and returns the previous value.
    pub(crate) fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<Option<Bytes>, StorageError> {
        self.tree
            .insert(key, value)
            .map_err(|e| self.error("write", e))
    }

    /// Removes and returns the previous value.
    pub(crate) fn remove(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.tree.remove(key).map_err(|e| self.error("delete", e))
    }

    /// Applies all writes of `batch` or none of them (also across a crash).
    pub(crate) fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        self.tree
            .apply_batch(batch.batch)
            .map_err(|e| self.error("apply a batch", e))
    }

    /// Entries with keys in `range`, in key order (reversible).
    pub(crate) fn range<K, R>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = Result<(Bytes, Bytes), StorageError>> + '_
    where
        K: AsRef<[u8]>,
        R: RangeBounds<K>,
    {
        self.tree
            .range(range)
            .map(move |r| r.map_err(|e| self.error("iterate", e)))
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub(crate) fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(Bytes, Bytes), StorageError>> + '_ {
        self.tree
            .scan_prefix(prefix)
            .map(move |r| r.map_err(|e| self.error("iterate", e)))
    }

    /// Every entry, in key order.
    pub(crate) fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = Result<(Bytes, Bytes), StorageError>> + '_ {
        self.tree
            .iter()
            .map(move |r| r.map_err(|e| self.error("iterate", e)))
    }

    #[cold]
    fn error(&self, op: &'static str, e: sled::Error) -> StorageError {
        engine_error(op, &*self.name, e)
    }
}

#[cold]
fn engine_error(op: &'static str, tree: impl std::fmt::Display, e: sled::Error) -> StorageError {
    StorageError::Engine {
        op,
        tree: format!("'{tree}'"),
        source: Box::new(e),
    }
}
