//! Puts a scrape's samples in family order while memory stays bounded.
//!
//! Why: the exposition format wants every sample of a family in one group after its HELP
//! and TYPE, but the samples come device by device (each device's groups are read from
//! the topic log once). Holding a whole 10,000-device scrape to reorder it would take
//! gigabytes; reading every device's groups once per family would parse them dozens of
//! times. So each device's samples are written, grouped by family, to a spool (in memory
//! while small, then an unlinked file in the data directory), with an index of where each
//! family's run is; the answer is then read back family by family. Memory holds the index
//! (16 bytes per device and family) and one device's samples.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::model::MetricType;

use super::exposition::{write_help, Samples};

/// Bytes kept in memory before the spool moves to a file.
const IN_MEMORY: usize = 8 << 20;

enum Storage {
    Memory(Vec<u8>),
    File(io::BufWriter<File>),
}

/// What was spooled, to read back.
enum Written {
    Memory(Vec<u8>),
    File(File),
}

struct Family {
    name: Box<[u8]>,
    kind: MetricType,
    help: String,
}

/// One device's samples of one family: bytes `offset..offset + len` of the spool.
struct Run {
    family: u32,
    offset: u64,
    len: u32,
}

pub struct Spool {
    dir: PathBuf,
    storage: Storage,
    len: u64,
    families: Vec<Family>,
    ids: HashMap<Box<[u8]>, u32>,
    runs: Vec<Run>,
    /// The current device's samples: (family, range in `text`).
    pending: Vec<(u32, u32, u32)>,
    text: Vec<u8>,
    /// Samples left out because their family name already has the other type.
    pub conflicting: u64,
}

impl Spool {
    /// A spool that moves to an unlinked file in `dir` past [`IN_MEMORY`] bytes.
    pub fn new(dir: PathBuf) -> Spool {
        Spool {
            dir,
            storage: Storage::Memory(Vec::new()),
            len: 0,
            families: Vec::new(),
            ids: HashMap::new(),
            runs: Vec::new(),
            pending: Vec::new(),
            text: Vec::new(),
            conflicting: 0,
        }
    }

    /// Bytes of samples spooled so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the current device's samples, grouped by family, and starts the next device.
    pub fn end_device(&mut self) -> io::Result<()> {
        // Stable: a family's samples keep the order of the groups and fields.
        self.pending.sort_by_key(|&(family, _, _)| family);
        let mut i = 0;
        while i < self.pending.len() {
            let family = self.pending[i].0;
            let offset = self.len;
            let mut len = 0u32;
            while i < self.pending.len() && self.pending[i].0 == family {
                let (_, start, end) = self.pending[i];
                self.write(start as usize..end as usize)?;
                len += end - start;
                i += 1;
            }
            self.runs.push(Run {
                family,
                offset,
                len,
            });
        }
        self.pending.clear();
        self.text.clear();
        Ok(())
    }

    fn write(&mut self, range: std::ops::Range<usize>) -> io::Result<()> {
        let bytes = &self.text[range];
        if let Storage::Memory(buffer) = &mut self.storage {
            if buffer.len() + bytes.len() > IN_MEMORY {
                let mut file = io::BufWriter::with_capacity(
                    256 << 10,
                    tempfile::tempfile_in(&self.dir).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "cannot create a scrape spool file in {}: {e}",
                                self.dir.display()
                            ),
                        )
                    })?,
                );
                file.write_all(buffer)?;
                self.storage = Storage::File(file);
            }
        }
        match &mut self.storage {
            Storage::Memory(buffer) => buffer.extend_from_slice(bytes),
            Storage::File(file) => file.write_all(bytes)?,
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Sends the exposition, family by family (sorted by name), in pieces of about
    /// `piece` bytes; stops early when `send` returns false (the client went away).
    pub fn finish(mut self, piece: usize, mut send: impl FnMut(Vec<u8>) -> bool) -> io::Result<()> {
        self.end_device()?;
        let written = match self.storage {
            Storage::Memory(buffer) => Written::Memory(buffer),
            Storage::File(file) => {
                Written::File(file.into_inner().map_err(io::IntoInnerError::into_error)?)
            }
        };
        let mut order: Vec<u32> = (0..self.families.len() as u32).collect();
        order.sort_by(|&a, &b| {
            self.families[a as usize]
                .name
                .cmp(&self.families[b as usize].name)
        });
        let mut rank = vec![0u32; order.len()];
        for (r, &family) in order.iter().enumerate() {
            rank[family as usize] = r as u32;
        }
        // Stable: within a family, devices in the order they were added.
        self.runs.sort_by_key(|run| rank[run.family as usize]);
        let mut out = Vec::with_capacity(piece + (64 << 10));
        let mut current = None;
        for run in &self.runs {
            if current != Some(run.family) {
                current = Some(run.family);
                let family = &self.families[run.family as usize];
                out.extend_from_slice(b"# HELP ");
                out.extend_from_slice(&family.name);
                out.push(b' ');
                write_help(&family.help, &mut out);
                out.extend_from_slice(b"\n# TYPE ");
                out.extend_from_slice(&family.name);
                out.push(b' ');
                out.extend_from_slice(family.kind.as_str().as_bytes());
                out.push(b'\n');
            }
            let start = out.len();
            out.resize(start + run.len as usize, 0);
            match &written {
                Written::Memory(buffer) => out[start..].copy_from_slice(
                    &buffer[run.offset as usize..run.offset as usize + run.len as usize],
                ),
                Written::File(file) => file.read_exact_at(&mut out[start..], run.offset)?,
            }
            if out.len() >= piece
                && !send(std::mem::replace(
                    &mut out,
                    Vec::with_capacity(piece + (64 << 10)),
                ))
            {
                return Ok(());
            }
        }
        if !out.is_empty() {
            send(out);
        }
        Ok(())
    }
}

impl Samples for Spool {
    fn sample(
        &mut self,
        name: &[u8],
        kind: MetricType,
        help: &dyn Fn() -> String,
        line: &[u8],
    ) -> io::Result<()> {
        let family = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = self.families.len() as u32;
                self.families.push(Family {
                    name: name.into(),
                    kind,
                    help: help(),
                });
                self.ids.insert(name.into(), id);
                id
            }
        };
        if self.families[family as usize].kind != kind {
            self.conflicting += 1;
            return Ok(());
        }
        let start = self.text.len() as u32;
        self.text.extend_from_slice(line);
        self.pending.push((family, start, self.text.len() as u32));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool_of(devices: &[&[(&str, MetricType, &str)]], dir: &std::path::Path) -> String {
        let mut spool = Spool::new(dir.to_path_buf());
        for device in devices {
            for (name, kind, line) in *device {
                let help = || format!("help of {name}");
                spool
                    .sample(name.as_bytes(), *kind, &help, line.as_bytes())
                    .unwrap();
            }
            spool.end_device().unwrap();
        }
        let mut out = Vec::new();
        spool
            .finish(7, |piece| {
                out.extend_from_slice(&piece);
                true
            })
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn families_come_out_whole_sorted_by_name_devices_in_order() {
        use MetricType::{Counter, Gauge};
        let dir = tempfile::tempdir().unwrap();
        let a: &[(&str, MetricType, &str)] = &[
            ("m_b", Gauge, "m_b{d=\"a\",i=\"1\"} 1\n"),
            ("m_a_total", Counter, "m_a_total{d=\"a\",i=\"1\"} 2\n"),
            ("m_b", Gauge, "m_b{d=\"a\",i=\"2\"} 3\n"),
        ];
        let b: &[(&str, MetricType, &str)] = &[
            ("m_a_total", Counter, "m_a_total{d=\"b\"} 4\n"),
            // Same name, other type: left out.
            ("m_b", Counter, "m_b{d=\"b\"} 5\n"),
            ("m_b", Gauge, "m_b{d=\"b\"} 6\n"),
        ];
        assert_eq!(
            spool_of(&[a, b], dir.path()),
            "# HELP m_a_total help of m_a_total\n# TYPE m_a_total counter\n\
             m_a_total{d=\"a\",i=\"1\"} 2\nm_a_total{d=\"b\"} 4\n\
             # HELP m_b help of m_b\n# TYPE m_b gauge\n\
             m_b{d=\"a\",i=\"1\"} 1\nm_b{d=\"a\",i=\"2\"} 3\nm_b{d=\"b\"} 6\n"
        );
        assert_eq!(spool_of(&[], dir.path()), "");
    }

    #[test]
    fn a_spool_past_its_memory_goes_to_a_file_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let line = format!("big{{x=\"{}\"}} 1\n", "y".repeat(1000));
        let mut spool = Spool::new(dir.path().to_path_buf());
        let devices = IN_MEMORY / line.len() + 10;
        for _ in 0..devices {
            for name in ["big", "also"] {
                let l = line.replacen("big", name, 1);
                spool
                    .sample(
                        name.as_bytes(),
                        MetricType::Gauge,
                        &String::new,
                        l.as_bytes(),
                    )
                    .unwrap();
            }
            spool.end_device().unwrap();
        }
        assert!(matches!(spool.storage, Storage::File(_)));
        let mut out = Vec::new();
        spool
            .finish(1 << 16, |piece| {
                out.extend_from_slice(&piece);
                true
            })
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let also = line.replacen("big", "also", 1);
        let want = format!(
            "# HELP also \n# TYPE also gauge\n{}# HELP big \n# TYPE big gauge\n{}",
            also.repeat(devices),
            line.repeat(devices)
        );
        assert!(text == want, "{} bytes, want {}", text.len(), want.len());
        // The spool file was never linked in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
