//! Fault injection through the store's [`Files`]: a wrapper that makes writes, syncs,
//! directory syncs or truncations fail with a chosen OS error, and records what was
//! done, so that tests of disk-full, I/O-error and fsync-failure handling run against
//! both engines without a broken disk.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::files::{Files, SegmentFile};

/// The faults to inject, shared by the wrapper and the test. Every method takes effect
/// at once for every file, open or not.
#[derive(Default)]
pub struct Faults {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    write_errno: Option<i32>,
    /// Bytes writes may still take before `write_errno` applies; `None`: at once.
    write_budget: Option<u64>,
    sync_errno: Option<i32>,
    dir_sync_errno: Option<i32>,
    truncate_errno: Option<i32>,
    events: Vec<String>,
}

impl Faults {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes, and the creation of files, fail with OS error `errno` (28: no space left
    /// on device, 5: I/O error) until [`Faults::heal`].
    pub fn fail_writes(&self, errno: i32) {
        let mut s = self.state();
        s.write_errno = Some(errno);
        s.write_budget = None;
    }

    /// Writes take `bytes` more bytes (the write that crosses the limit is cut there),
    /// then fail with `errno`: a disk filling up in the middle of an append.
    pub fn fail_writes_after(&self, bytes: u64, errno: i32) {
        let mut s = self.state();
        s.write_errno = Some(errno);
        s.write_budget = Some(bytes);
    }

    /// `fdatasync` of files fails with `errno`.
    pub fn fail_syncs(&self, errno: i32) {
        self.state().sync_errno = Some(errno);
    }

    /// `fsync` of directories fails with `errno`.
    pub fn fail_dir_syncs(&self, errno: i32) {
        self.state().dir_sync_errno = Some(errno);
    }

    /// Truncation of files fails with `errno`.
    pub fn fail_truncates(&self, errno: i32) {
        self.state().truncate_errno = Some(errno);
    }

    /// Every fault off: the disk works again.
    pub fn heal(&self) {
        let mut s = self.state();
        let events = std::mem::take(&mut s.events);
        *s = State {
            events,
            ..State::default()
        };
    }

    /// What was done since the last call, in order: `create <path>`, `sync <path>`,
    /// `sync_dir <dir>`, `truncate <path> <len>`, `remove <path>` (paths under the
    /// topics' root; `""` is the root).
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut self.state().events)
    }

    fn record(&self, event: String) {
        self.state().events.push(event);
    }

    /// How many bytes of a write of `len` may go through, and the error after them.
    fn write_allowance(&self, len: u64) -> (u64, Option<io::Error>) {
        let mut s = self.state();
        let Some(errno) = s.write_errno else {
            return (len, None);
        };
        match s.write_budget {
            Some(budget) if budget >= len => {
                s.write_budget = Some(budget - len);
                (len, None)
            }
            Some(budget) => {
                s.write_budget = Some(0);
                (budget, Some(io::Error::from_raw_os_error(errno)))
            }
            None => (0, Some(io::Error::from_raw_os_error(errno))),
        }
    }

    fn creation_error(&self) -> Option<io::Error> {
        let s = self.state();
        match (s.write_errno, s.write_budget) {
            (Some(errno), None | Some(0)) => Some(io::Error::from_raw_os_error(errno)),
            _ => None,
        }
    }
}

/// [`Files`] with [`Faults`] injected.
pub(crate) struct FaultyFiles {
    pub inner: Arc<dyn Files>,
    pub faults: Arc<Faults>,
}

impl Files for FaultyFiles {
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open(&self, path: &str, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        if create {
            if let Some(e) = self.faults.creation_error() {
                return Err(e);
            }
            self.faults.record(format!("create {path}"));
        }
        Ok(Arc::new(FaultyFile {
            inner: self.inner.open(path, create)?,
            path: path.to_owned(),
            faults: Arc::clone(&self.faults),
        }))
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.faults.record(format!("remove {path}"));
        self.inner.remove(path)
    }

    fn remove_all(&self, dir: &str) -> io::Result<()> {
        self.inner.remove_all(dir)
    }

    fn sync_dir(&self, dir: &str) -> io::Result<()> {
        if let Some(errno) = self.faults.state().dir_sync_errno {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.faults.record(format!("sync_dir {dir}"));
        self.inner.sync_dir(dir)
    }

    fn size_on_disk(&self) -> u64 {
        self.inner.size_on_disk()
    }

    fn on_disk(&self) -> bool {
        self.inner.on_disk()
    }
}

struct FaultyFile {
    inner: Arc<dyn SegmentFile>,
    path: String,
    faults: Arc<Faults>,
}

impl SegmentFile for FaultyFile {
    fn write_at(&self, pos: u64, bytes: &[u8]) -> io::Result<()> {
        let (allowed, error) = self.faults.write_allowance(bytes.len() as u64);
        let allowed = usize::try_from(allowed).unwrap_or(bytes.len());
        if allowed > 0 {
            self.inner.write_at(pos, &bytes[..allowed])?;
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(pos, buf)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        if let Some(errno) = self.faults.state().truncate_errno {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.faults.record(format!("truncate {} {len}", self.path));
        self.inner.truncate(len)
    }

    fn sync(&self) -> io::Result<()> {
        if let Some(errno) = self.faults.state().sync_errno {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.faults.record(format!("sync {}", self.path));
        self.inner.sync()
    }
}
