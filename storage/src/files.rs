//! Where topic segment files live: a directory on disk beside sled's database, or a map
//! in memory for the memory engine. The topic log (`topic::log`) reads and writes
//! through these two small traits only, so every test of the log runs against both.
//!
//! Paths are relative to the topics' root (`topics/` in the store's directory),
//! `/`-separated, and built by the topic log from names it has escaped (see
//! `topic::layout::topic_dir`), never from raw input.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// A directory tree of segment files.
pub(crate) trait Files: Send + Sync {
    /// The names of the files directly in `dir` (empty if it does not exist).
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;

    /// Opens `path` for reading and writing, creating it (and its directories) if
    /// `create`; `NotFound` otherwise when it does not exist.
    fn open(&self, path: &str, create: bool) -> io::Result<Arc<dyn SegmentFile>>;

    /// Removes the file `path`. Handles already open on it keep working until dropped.
    fn remove(&self, path: &str) -> io::Result<()>;

    /// Removes `dir` and everything under it; nothing if it does not exist.
    fn remove_all(&self, dir: &str) -> io::Result<()>;

    /// `fsync` of the directory `dir` (`""`: the root): the names created, renamed or
    /// removed in it survive a power loss. A file's own `fdatasync` does not cover its
    /// name.
    fn sync_dir(&self, dir: &str) -> io::Result<()>;

    /// Bytes of every file, for `Store::stats` (0 in memory: nothing is on disk).
    fn size_on_disk(&self) -> u64;

    /// Whether the files are on disk (their sizes count as disk use).
    fn on_disk(&self) -> bool;
}

/// One segment file: positioned reads and writes, no shared cursor, so readers and the
/// one writer of a partition never disturb each other.
pub(crate) trait SegmentFile: Send + Sync {
    fn write_at(&self, pos: u64, bytes: &[u8]) -> io::Result<()>;
    /// Writes `parts` one after another from `pos`, all of them or an error (after which
    /// any part of them may be in the file).
    fn write_parts_at(&self, pos: u64, parts: &[&[u8]]) -> io::Result<()> {
        let mut at = pos;
        for part in parts {
            self.write_at(at, part)?;
            at += part.len() as u64;
        }
        Ok(())
    }
    /// Fills `buf` from `pos`; `UnexpectedEof` if the file ends first.
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: the written bytes survive a power loss.
    fn sync(&self) -> io::Result<()>;
}

/// The file [`probe`] writes, under the topics' root: no topic's directory can have
/// this name (`topic::layout::topic_dir` writes `~` as `%7E`).
const PROBE_FILE: &str = "~write-probe";

/// As large as the largest frame (header included): a probe that fits says a frame does.
const PROBE_BYTES: usize =
    crate::topic::layout::MAX_FRAME_BYTES + crate::topic::layout::HEADER_BYTES;

/// Whether a frame can be written now: writes [`PROBE_BYTES`] to a file of their own,
/// then removes it. What ends "writes failing" (see `health`): a small write can succeed
/// on a full disk (into the last, partly used block of a file), so it alone does not.
pub(crate) fn probe(files: &dyn Files) -> io::Result<()> {
    let bytes = vec![0u8; PROBE_BYTES];
    let result = files
        .open(PROBE_FILE, true)
        .and_then(|f| f.write_at(0, &bytes).and_then(|()| f.truncate(0)));
    let _ = files.remove(PROBE_FILE);
    result
}

/// Segment files in a directory on disk (`topics/` in the store's directory).
pub(crate) struct DiskFiles {
    root: PathBuf,
}

impl DiskFiles {
    pub(crate) fn new(root: PathBuf) -> DiskFiles {
        DiskFiles { root }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

impl Files for DiskFiles {
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(self.path(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, path: &str, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let path = self.path(path);
        if create {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(DiskFile(file)))
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn remove_all(&self, dir: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.path(dir)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn sync_dir(&self, dir: &str) -> io::Result<()> {
        std::fs::File::open(self.path(dir))?.sync_all()
    }

    fn size_on_disk(&self) -> u64 {
        dir_size(&self.root)
    }

    fn on_disk(&self) -> bool {
        true
    }
}

/// Bytes of the files under `dir`; what cannot be read counts 0.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

struct DiskFile(std::fs::File);

impl SegmentFile for DiskFile {
    fn write_at(&self, pos: u64, bytes: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, bytes, pos)
    }

    /// One `writev` for a frame's header and payload parts (std has no positioned
    /// vectored write on stable: the file's own position is set first). Only a
    /// partition's one writer, under its lock, writes a segment file; readers read at
    /// positions, so the file position is this writer's alone.
    fn write_parts_at(&self, pos: u64, parts: &[&[u8]]) -> io::Result<()> {
        use std::io::{IoSlice, Seek, SeekFrom, Write};
        let mut file = &self.0;
        file.seek(SeekFrom::Start(pos))?;
        let mut slices: Vec<IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| IoSlice::new(p))
            .collect();
        let mut left: &mut [IoSlice<'_>] = &mut slices;
        // A short write leaves the rest: `advance_slices` drops what was written.
        while !left.is_empty() {
            match file.write_vectored(left) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => IoSlice::advance_slices(&mut left, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, pos)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// Segment files in memory, kept by the memory engine so that a "restart" of a memory
/// store (`testing::reopen`) finds them again.
#[derive(Default)]
pub(crate) struct MemFiles {
    files: Mutex<BTreeMap<String, Arc<MemFile>>>,
}

impl MemFiles {
    fn files(&self) -> MutexGuard<'_, BTreeMap<String, Arc<MemFile>>> {
        // Only inserted into and removed from whole: a panic cannot leave it half-changed.
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Files for MemFiles {
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let prefix = format!("{dir}/");
        Ok(self
            .files()
            .keys()
            .filter_map(|path| path.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    fn open(&self, path: &str, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let mut files = self.files();
        match files.get(path) {
            Some(file) => Ok(Arc::clone(file) as Arc<dyn SegmentFile>),
            None if create => {
                let file = Arc::new(MemFile::default());
                files.insert(path.to_owned(), Arc::clone(&file));
                Ok(file)
            }
            None => Err(io::Error::new(io::ErrorKind::NotFound, path.to_owned())),
        }
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.files().remove(path);
        Ok(())
    }

    fn remove_all(&self, dir: &str) -> io::Result<()> {
        let prefix = format!("{dir}/");
        self.files().retain(|path, _| !path.starts_with(&prefix));
        Ok(())
    }

    fn sync_dir(&self, _dir: &str) -> io::Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        0
    }

    fn on_disk(&self) -> bool {
        false
    }
}

#[derive(Default)]
struct MemFile {
    bytes: RwLock<Vec<u8>>,
}

impl SegmentFile for MemFile {
    fn write_at(&self, pos: u64, bytes: &[u8]) -> io::Result<()> {
        let mut data = self
            .bytes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let start = usize::try_from(pos).map_err(io::Error::other)?;
        let end = start + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = self
            .bytes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let start = usize::try_from(pos).map_err(io::Error::other)?;
        match data.get(start..start.saturating_add(buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        }
    }

    fn len(&self) -> io::Result<u64> {
        let data = self
            .bytes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(data.len() as u64)
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut data = self
            .bytes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        data.resize(usize::try_from(len).map_err(io::Error::other)?, 0);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(files: &dyn Files) {
        assert!(files.list("t/0").unwrap().is_empty());
        // Both engines say NotFound (the callers add the path to the message).
        assert_eq!(
            files.open("t/0/a.log", false).err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
        let f = files.open("t/0/a.log", true).unwrap();
        f.write_at(0, b"hello").unwrap();
        f.write_at(3, b"p!").unwrap();
        let mut buf = [0u8; 5];
        f.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"help!");
        assert_eq!(f.len().unwrap(), 5);
        assert_eq!(
            f.read_at(3, &mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        f.truncate(2).unwrap();
        assert_eq!(f.len().unwrap(), 2);
        // More parts than one writev takes (IOV_MAX is 1024), empty ones among them,
        // written after a gap and read back in order.
        let parts: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        f.write_parts_at(10, &refs).unwrap();
        let whole = parts.concat();
        let mut back = vec![0u8; whole.len()];
        f.read_at(10, &mut back).unwrap();
        assert_eq!(back, whole);
        assert_eq!(f.len().unwrap(), 10 + whole.len() as u64);
        f.write_parts_at(0, &[b"he", b"", b"l"]).unwrap();
        let mut head = [0u8; 3];
        f.read_at(0, &mut head).unwrap();
        assert_eq!(&head, b"hel");
        f.truncate(2).unwrap();
        files.open("t/0/b.log", true).unwrap();
        files.open("t/1/c.log", true).unwrap();
        let mut names = files.list("t/0").unwrap();
        names.sort();
        assert_eq!(names, vec!["a.log", "b.log"]);
        files.remove("t/0/a.log").unwrap();
        assert_eq!(files.list("t/0").unwrap(), vec!["b.log"]);
        files.sync_dir("t/0").unwrap();
        files.sync_dir("").unwrap();
        files.remove_all("t").unwrap();
        assert!(files.list("t/0").unwrap().is_empty());
        assert!(files.list("t/1").unwrap().is_empty());
    }

    #[test]
    fn memory_files_behave_as_files_on_disk() {
        exercise(&MemFiles::default());
        let dir = tempfile::tempdir().unwrap();
        exercise(&DiskFiles::new(dir.path().to_path_buf()));
    }
}
