//! How a topic is laid out: segment files for the records, one engine tree for what
//! cannot be derived from them.
//!
//! # Records: segment files
//!
//! Each partition is a directory `topics/<topic>/<partition>/` (under the store's
//! directory) of segment files named by
//! the offset of their first record (`00000000000000000042.log`). A segment is a run of
//! *frames*, one per piece of an append, written at its end and never rewritten:
//!
//! ```text
//! magic "PL" | format 1 | 0 | payload length u32 | crc32 u32 |
//! base offset u64 | records u32 | appended at (ms) u64 | payload
//! ```
//!
//! (little-endian, [`HEADER_BYTES`] of header; the CRC covers everything after itself,
//! header fields and payload). The payload is the records in the versioned envelope of
//! `codec`. An append is cut into frames of at most [`MAX_FRAME_RECORDS`] records and
//! about [`MAX_FRAME_BYTES`]; a new segment starts once the current one reaches the
//! store's segment size ([`SEGMENT_BYTES`] by default).
//!
//! Why files and not engine entries: an append is one `pwrite` into the OS page cache,
//! and retention deletes whole files. The same log in sled (the first builds) rewrote
//! leaf pages on every merge and split and paid for deletes as much as for inserts:
//! measured at 10,000 polled devices, 6-10x the bytes published written to disk and a
//! third of the collector's CPU.
//!
//! # Engine tree `topic/<name>`
//!
//! - `[partition u32 BE][0]` → [`PartitionMeta`]: the log start offset, which retention
//!   moves frame by frame (the files follow a segment at a time).
//! - `[partition][1][offset]` and `[partition][2][offset]`: batch summaries and chunks of
//!   the first builds' log in sled; a topic still holding them is moved into segment
//!   files when it is opened (see `legacy`).

use serde::{Deserialize, Serialize};

const KIND_META: u8 = 0;
const KIND_SUMMARY: u8 = 1;
const KIND_CHUNK: u8 = 2;

/// At most this many records per frame.
pub(crate) const MAX_FRAME_RECORDS: usize = 4096;

/// A frame is closed before its records would pass this many bytes, counting each record
/// as [`Record::size_bytes`](crate::Record::size_bytes) plus [`RECORD_OVERHEAD`]; a single
/// bigger record gets a frame of its own. Bounds what a read decodes to reach one record.
pub(crate) const MAX_FRAME_BYTES: usize = 256 * 1024;

/// What a record is counted for beyond its payload when filling a frame: bincode's
/// length prefixes, option tag, timestamp and header count.
pub(crate) const RECORD_OVERHEAD: usize = 16;

/// A segment takes no more frames once it holds this many bytes (unless it has none).
pub(crate) const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

/// Bytes of a frame header.
pub(crate) const HEADER_BYTES: usize = 32;

/// Persistent state of a partition that cannot be derived from its segments.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct PartitionMeta {
    pub log_start: u64,
}

pub(crate) fn meta_key(partition: u32) -> Vec<u8> {
    let mut key = partition.to_be_bytes().to_vec();
    key.push(KIND_META);
    key
}

/// The first key of the first builds' entries (summaries, then chunks) of `partition`,
/// and the last.
pub(crate) fn legacy_range(partition: u32) -> (Vec<u8>, Vec<u8>) {
    (
        offset_key(partition, KIND_SUMMARY, 0),
        offset_key(partition, KIND_CHUNK, u64::MAX),
    )
}

/// The key of a chunk of the first builds.
#[cfg(test)]
pub(crate) fn legacy_chunk_key(partition: u32, base_offset: u64) -> Vec<u8> {
    offset_key(partition, KIND_CHUNK, base_offset)
}

fn offset_key(partition: u32, kind: u8, offset: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.extend_from_slice(&partition.to_be_bytes());
    key.push(kind);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// The kind byte and offset of a first-builds key; `None` for another shape.
pub(crate) fn legacy_key(key: &[u8]) -> Option<(u8, u64)> {
    let kind = *key.get(4)?;
    let bytes: [u8; 8] = key.get(5..)?.try_into().ok()?;
    Some((kind, u64::from_be_bytes(bytes)))
}

pub(crate) fn is_legacy_chunk(kind: u8) -> bool {
    kind == KIND_CHUNK
}

/// The directory of topic `name` among the topics: the name with every byte outside `[A-Za-z0-9._-]`
/// written `%XX`, so any stored name maps to one safe directory name; a name too long
/// for a file name keeps a prefix and a hash of the whole.
pub(crate) fn topic_dir(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    // `.` and `..` are names a topic may have but not a directory.
    if escaped.chars().all(|c| c == '.') {
        escaped = escaped.replace('.', "%2E");
    }
    if escaped.len() > 200 {
        // FNV-1a (the `fnv` crate's, as `panoptes::hash`): stable across versions,
        // since it names a directory on disk.
        let hash = {
            use std::hash::Hasher;
            let mut h = fnv::FnvHasher::default();
            h.write(name.as_bytes());
            h.finish()
        };
        escaped.truncate(180);
        while escaped.ends_with('%') || escaped.as_bytes()[escaped.len() - 2] == b'%' {
            escaped.pop();
        }
        escaped.push_str(&format!("~{hash:016x}"));
    }
    escaped
}

pub(crate) fn partition_dir(topic_dir: &str, partition: u32) -> String {
    format!("{topic_dir}/{partition}")
}

/// How a path under the topics' root is shown in errors and logs: as under the store's
/// directory (`topics/<topic>/<partition>/<segment>`), where an operator finds it.
pub(crate) fn shown(path: &str) -> String {
    if path.is_empty() {
        "topics".to_owned()
    } else {
        format!("topics/{path}")
    }
}

/// The directories above `dir` up to the root (`""`), nearest first: for a partition's
/// directory, its topic's directory and the root.
pub(crate) fn parent_dirs(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dir;
    while let Some((parent, _)) = rest.rsplit_once('/') {
        out.push(parent.to_owned());
        rest = parent;
    }
    out.push(String::new());
    out
}

pub(crate) fn segment_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

/// The largest offset a record may have: Kafka's offsets are `i64`. A frame, segment
/// name or log start past it is damage, never something this store wrote, and the
/// offset arithmetic of the log stays within `u64` because of it.
pub(crate) const MAX_OFFSET: u64 = i64::MAX as u64;

/// The base offset of a segment file name; `None` for any other file (a name past
/// [`MAX_OFFSET`] included).
pub(crate) fn segment_base(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&base| base <= MAX_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_partition_kind_then_offset() {
        let (first, last) = legacy_range(0);
        assert!(meta_key(0) < first);
        assert!(legacy_chunk_key(0, 255) < legacy_chunk_key(0, 256));
        assert!(last < meta_key(1));
        assert_eq!(
            legacy_key(&legacy_chunk_key(3, 1234)),
            Some((KIND_CHUNK, 1234))
        );
        assert_eq!(legacy_key(&meta_key(3)), None);
    }

    #[test]
    fn topic_dirs_are_safe_and_distinct() {
        assert_eq!(topic_dir("site-processed"), "site-processed");
        assert_eq!(topic_dir("a/b"), "a%2Fb");
        assert_eq!(topic_dir(".."), "%2E%2E");
        assert_eq!(topic_dir("%"), "%25");
        let long_a = "é".repeat(120);
        let long_b = format!("{}x", "é".repeat(119));
        let (a, b) = (topic_dir(&long_a), topic_dir(&long_b));
        assert!(a.len() < 230 && b.len() < 230, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn paths_are_shown_under_the_store_and_parents_listed_nearest_first() {
        assert_eq!(shown("t/0/x.log"), "topics/t/0/x.log");
        assert_eq!(shown(""), "topics");
        assert_eq!(parent_dirs("t/0"), vec!["t".to_owned(), String::new()]);
        assert_eq!(parent_dirs("t"), vec![String::new()]);
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.log");
        assert_eq!(segment_base(&segment_name(MAX_OFFSET)), Some(MAX_OFFSET));
        assert_eq!(segment_base(&segment_name(MAX_OFFSET + 1)), None);
        assert_eq!(segment_base(&segment_name(u64::MAX)), None);
        assert_eq!(segment_base("42.log"), None);
        assert_eq!(segment_base("0000000000000000004x.log"), None);
        assert_eq!(segment_base("00000000000000000042.tmp"), None);
    }
}
