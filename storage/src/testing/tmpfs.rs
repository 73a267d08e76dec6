//! A small file system of its own for a test: a tmpfs mounted on a fresh directory, to
//! fill up for real. Mounting needs root (or CAP_SYS_ADMIN); a test that cannot mount
//! fails, saying so, rather than passing without having run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted (and its directory removed) on drop.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB on a new directory under the system's temporary
    /// directory. Panics, with what `mount` said, if it cannot.
    pub fn mount(mib: u64) -> Tmpfs {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("panoptes-tmpfs-{}-{n}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create the mount point {}: {e}", dir.display());
        }
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir)
            .output();
        match output {
            Ok(o) if o.status.success() => Tmpfs { dir },
            Ok(o) => {
                let _ = std::fs::remove_dir(&dir);
                panic!(
                    "this test needs a small file system of its own and cannot mount one: \
                     `mount -t tmpfs -o size={mib}m tmpfs {}` failed ({}): {} \
                     (run the tests as root, or with CAP_SYS_ADMIN)",
                    dir.display(),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                panic!("this test needs `mount` to make a tmpfs: {e}")
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `name` in the file system until it is full (to the last 4 KiB page), and
    /// returns its path: delete it to free the space again.
    pub fn fill(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        let mut file = match std::fs::File::create(&path) {
            Ok(file) => file,
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        };
        for chunk in [1 << 20, 4096] {
            let bytes = vec![0xA5u8; chunk];
            while file.write_all(&bytes).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still has a file open there (a child process being killed):
            // detach it now, the kernel frees it when the last user goes.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
