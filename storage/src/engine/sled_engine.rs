//! The on-disk engine: sled 0.34.7. The only file that names sled.
//!
//! Measured sled 0.34 caveats that shape the callers: a value is durable only after
//! `flush` (sled also flushes every 500 ms by itself); tiny values cost several times
//! their size on disk; a tree page (a leaf holds up to ~16 entries) bigger than a quarter
//! of a segment (128 KiB) is written to a separate blob file that sled does not fsync, and
//! huge batches balloon the resident memory. So batches are kept bounded, and topic
//! records live in segment files instead (see `topic::layout`).

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::{Batch, Bytes, KvEngine, KvTree, RangeIter};
use crate::files::{DiskFiles, Files};
use crate::{Durability, StorageError};

/// Page cache size. sled's default is 1 GiB, far more than a collector needs resident.
/// At 10,000 devices (`panoptes bench`, 3 minutes) 8 MiB instead of 64 held 15 MB less
/// heap at the same CPU per poll: the keyspaces read on every poll (enrichments, ≈3 KB
/// compressed each) are read from the OS page cache as cheaply. Again with jemalloc
/// (`panoptes bench --devices 10000 --interval 30s --duration 150s`, RSS averaged over
/// the steady part, 10 s samples from 60 s on): 4 MiB instead of 8 held 4.8 MB less
/// (149.6 against 154.4 MB) at 2.04 against 2.08 ms a poll; side by side, 5,000 devices
/// each, 2.08 against 2.24 ms and 93.9 against 96.5 MB. 2 MiB held no less (151.0 MB) and
/// cost 5% more CPU. (An earlier reading that 4 MiB held more came from one sample at a
/// run's end, which moves ±10 MB with the polls in flight at that moment.)
const CACHE_CAPACITY_BYTES: u64 = 4 * 1024 * 1024;

/// The file in which sled keeps its log (and so every tree), inside the directory.
const SLED_LOG_FILE: &str = "db";

/// How often sled flushes on its own, so keyspace writes are lost at most this long after
/// a crash even when nobody calls `flush`.
const FLUSH_EVERY_MS: u64 = 500;

/// The text sled puts in the I/O error when its lock file is held (sled gives no error
/// kind for it).
const LOCK_ERROR_TEXT: &str = "could not acquire lock";

/// How long `open` keeps trying while the lock is held. sled's background threads may
/// hold the database file for a moment after the last handle of a previous open (in
/// this process) is dropped; a process killed a moment ago releases it at once.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// glibc serves allocations from this size up with `mmap` (see [`tune_allocator`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 4 * 1024 * 1024;

/// Keeps glibc's malloc from serving sled's log buffers with `mmap`.
///
/// sled allocates a fresh 512 KiB aligned buffer for every log buffer it seals (at least
/// one per flush) and frees it once written. glibc serves allocations that size with
/// `mmap` and returns them with `munmap`, so every buffer costs a map, an unmap and a
/// page fault per 4 KiB touched: measured, 35-40% of the CPU time of appending 1 KB
/// records. Raising the mmap threshold to 4 MiB, once per process, serves them from the
/// heap instead. It is process-wide, but only changes where blocks between 128 KiB and
/// 4 MiB come from. No-op on other platforms and allocators.
fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallopt only sets a malloc parameter; glibc documents it as safe to
            // call at any time, from any thread.
            let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
            if ok != 1 {
                tracing::debug!("glibc refused to raise the mmap threshold");
            }
        }
    });
}

/// Directories opened by this process and still in use, so that a second open of one of
/// them is refused at once instead of after [`LOCK_WAIT`].
fn open_dirs() -> &'static Mutex<HashMap<PathBuf, Weak<sled::Db>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<sled::Db>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// The directory, under the store's, that holds the topics' segment files.
const TOPICS_DIR: &str = "topics";

/// Bytes kept allocated past the end of sled's log file (see [`SledEngine::reserve_space`]).
const LOG_RESERVE_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) struct SledEngine {
    db: Arc<sled::Db>,
    /// The configuration the database was opened with: it shares sled's global error
    /// (see [`KvEngine::failure`]).
    config: sled::Config,
    /// sled's log file, opened again so that `flush` can `fdatasync` it (see `flush`)
    /// with [`Durability::PowerLoss`], and to keep space reserved ahead of it. `None`
    /// for a temporary store.
    log_file: Option<std::fs::File>,
    durability: Durability,
    /// Whether the last `reserve_space` succeeded, to log changes only.
    reserved: std::sync::atomic::AtomicBool,
    files: Arc<DiskFiles>,
    /// Removes a temporary store's directory; last, so it goes after the database.
    _temporary: Option<TemporaryDir>,
}

/// A directory removed on drop.
struct TemporaryDir(PathBuf);

impl Drop for TemporaryDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl SledEngine {
    /// Opens (creating if needed) the database in `dir`.
    pub(crate) fn open(dir: &Path, durability: Durability) -> Result<SledEngine, StorageError> {
        tune_allocator();
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let mut open = open_dirs()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        open.retain(|_, db| db.strong_count() > 0);
        if open.contains_key(&key) {
            return Err(StorageError::Locked {
                path: dir.to_path_buf(),
                reason: "it is already open in this process".into(),
            });
        }
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .flush_every_ms(Some(FLUSH_EVERY_MS));
        let started = Instant::now();
        let db = loop {
            match config.open() {
                Ok(db) => break Arc::new(db),
                Err(sled::Error::Io(e))
                    if e.to_string().contains(LOCK_ERROR_TEXT) && started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(sled::Error::Io(e)) if e.to_string().contains(LOCK_ERROR_TEXT) => {
                    return Err(StorageError::Locked {
                        path: dir.to_path_buf(),
                        reason: e.to_string(),
                    })
                }
                Err(sled::Error::Io(source)) => {
                    return Err(StorageError::Directory {
                        path: dir.to_path_buf(),
                        source,
                    })
                }
                Err(e) => return Err(engine_error("open the database", dir.display(), e)),
            }
        };
        let log_path = dir.join(SLED_LOG_FILE);
        let log_file = std::fs::OpenOptions::new()
            .write(true)
            .open(&log_path)
            .map_err(|source| StorageError::Directory {
                path: log_path,
                source,
            })?;
        let topics = dir.join(TOPICS_DIR);
        std::fs::create_dir_all(&topics).map_err(|source| StorageError::Directory {
            path: topics.clone(),
            source,
        })?;
        if durability == Durability::PowerLoss {
            // The names of the directory, of `topics/` and of sled's files, which the
            // open may just have created: later `fsync`s of files do not cover them.
            // Canonical: the parent of a relative `data` is `""`, not a directory.
            let full = dir
                .canonicalize()
                .map_err(|source| StorageError::Directory {
                    path: dir.to_path_buf(),
                    source,
                })?;
            for d in [Some(full.as_path()), full.parent()].into_iter().flatten() {
                sync_dir(d)?;
            }
        }
        open.insert(key, Arc::downgrade(&db));
        let engine = SledEngine {
            db,
            config,
            log_file: Some(log_file),
            durability,
            reserved: std::sync::atomic::AtomicBool::new(true),
            files: Arc::new(DiskFiles::new(topics)),
            _temporary: None,
        };
        engine.reserve_space();
        Ok(engine)
    }

    /// A database in a temporary directory that is removed on drop.
    pub(crate) fn temporary() -> Result<SledEngine, StorageError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        tune_allocator();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("panoptes-store-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| StorageError::Directory {
            path: dir.clone(),
            source,
        })?;
        let guard = TemporaryDir(dir.clone());
        let config = sled::Config::new()
            .temporary(true)
            .path(dir.join("db"))
            .cache_capacity(CACHE_CAPACITY_BYTES);
        config
            .open()
            .map(|db| SledEngine {
                db: Arc::new(db),
                config: config.clone(),
                log_file: None,
                durability: Durability::Process,
                reserved: std::sync::atomic::AtomicBool::new(true),
                files: Arc::new(DiskFiles::new(dir.join(TOPICS_DIR))),
                _temporary: Some(guard),
            })
            .map_err(|e| engine_error("open a temporary database", "(temporary)", e))
    }
}

impl KvEngine for SledEngine {
    fn open_tree(&self, name: &str) -> Result<Arc<dyn KvTree>, StorageError> {
        let tree = self
            .db
            .open_tree(name)
            .map_err(|e| engine_error("open the tree", name, e))?;
        Ok(Arc::new(SledTree {
            tree,
            name: Arc::from(name),
        }))
    }

    fn tree_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(self
            .db
            .tree_names()
            .iter()
            .filter_map(|name| String::from_utf8(name.to_vec()).ok())
            .collect())
    }

    /// sled's flush writes its log buffers and waits for them with `sync_file_range`,
    /// which survives a crash of the process (the data is in the OS) but does not ask
    /// the device to empty its write cache, nor write the file's size: on power loss a
    /// flushed write could still be lost. With [`Durability::PowerLoss`], `fdatasync` on
    /// the log file afterwards does both; its cost is shared by every writer of the
    /// flush (group commit).
    fn flush(&self) -> Result<(), StorageError> {
        self.db
            .flush()
            .map_err(|e| engine_error("flush", "the database", e))?;
        if let (Some(file), Durability::PowerLoss) = (&self.log_file, self.durability) {
            file.sync_data().map_err(|e| StorageError::Engine {
                op: "fdatasync",
                tree: format!("'{SLED_LOG_FILE}'"),
                source: Box::new(e),
            })?;
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.db
            .size_on_disk()
            .map_err(|e| engine_error("measure the size on disk", "the database", e))
    }

    fn kind(&self) -> &'static str {
        "sled"
    }

    fn files(&self) -> Arc<dyn Files> {
        Arc::clone(&self.files) as Arc<dyn Files>
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    /// sled 0.34.7 keeps the first error of a write to its log (disk full, I/O error) as
    /// a "global error" (`Config::set_global_error` in `pagecache/iobuf.rs`): from then
    /// on every write, flush and log reservation returns it, and only a new open
    /// (`PageCache::start` resets it) clears it, even once space is back. So this is
    /// a failure of the process, not a condition to wait out. `Config::global_error` is
    /// hidden from sled's documentation but public, and our `Config` shares the error
    /// with the open database.
    fn failure(&self) -> Option<String> {
        self.config.global_error().err().map(|e| {
            format!(
                "the database (sled) refuses every write since one to its log failed ({e}); \
                 sled keeps that error until the database is reopened"
            )
        })
    }

    /// Keeps [`LOG_RESERVE_BYTES`] allocated past the end of sled's log file
    /// (`fallocate` with `FALLOC_FL_KEEP_SIZE`: the file's size does not change, sled
    /// sees nothing). sled writes its log ahead into new blocks, and one failed write
    /// stops it for good (see [`KvEngine::failure`]); the topic log, which fills the disk
    /// far faster, then meets the full disk first and is refused and retried, while
    /// sled's writes (offsets, rate state, leases) land in the reserve. Renewed by
    /// `Store::check`, since sled shrinks its file when its last segments empty. A
    /// no-op where `fallocate` is missing.
    fn reserve_space(&self) {
        let Some(file) = &self.log_file else {
            return;
        };
        let result = reserve_after_end(file, LOG_RESERVE_BYTES);
        let was = self
            .reserved
            .swap(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
        match result {
            Err(e) if was => tracing::warn!(error = %e, bytes = LOG_RESERVE_BYTES,
                "cannot keep space reserved ahead of the database log: a full disk may stop the database"),
            Ok(()) if !was => tracing::info!("space reserved ahead of the database log again"),
            _ => {}
        }
    }
}

/// `fsync` of a directory.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Directory {
            path: dir.to_path_buf(),
            source,
        })
}

/// Allocates `bytes` past the end of `file` without changing its size.
#[cfg(target_os = "linux")]
fn reserve_after_end(file: &std::fs::File, bytes: u64) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let len = file.metadata()?.len();
    let (Ok(offset), Ok(bytes)) = (libc::off_t::try_from(len), libc::off_t::try_from(bytes)) else {
        return Ok(());
    };
    // SAFETY: `fallocate` on a descriptor `file` keeps open for the call; no memory is
    // passed to the kernel.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, bytes) };
    if rc == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        // A file system without `fallocate`: nothing to reserve with.
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Ok(()),
            _ => Err(e),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve_after_end(_file: &std::fs::File, _bytes: u64) -> std::io::Result<()> {
    Ok(())
}

struct SledTree {
    tree: sled::Tree,
    name: Arc<str>,
}

impl SledTree {
    #[cold]
    fn error(&self, op: &'static str, e: sled::Error) -> StorageError {
        engine_error(op, &*self.name, e)
    }
}

impl KvTree for SledTree {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.tree
            .get(key)
            .map(|v| v.map(Bytes::Sled))
            .map_err(|e| self.error("read", e))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<Option<Bytes>, StorageError> {
        self.tree
            .insert(key, value)
            .map(|v| v.map(Bytes::Sled))
            .map_err(|e| self.error("write", e))
    }

    fn remove(&self, key: &[u8]) -> Result<Option<Bytes>, StorageError> {
        self.tree
            .remove(key)
            .map(|v| v.map(Bytes::Sled))
            .map_err(|e| self.error("delete", e))
    }

    fn apply(&self, batch: Batch) -> Result<(), StorageError> {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in batch.writes {
            match value {
                Some(value) => sled_batch.insert(key, value),
                None => sled_batch.remove(key),
            }
        }
        self.tree
            .apply_batch(sled_batch)
            .map_err(|e| self.error("apply a batch", e))
    }

    fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> RangeIter<'_> {
        Box::new(self.tree.range((lower, upper)).map(move |r| {
            r.map(|(k, v)| (Bytes::Sled(k), Bytes::Sled(v)))
                .map_err(|e| self.error("iterate", e))
        }))
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
