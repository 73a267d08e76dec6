//! The entry point of the segment-scanning fuzz target (`fuzz/fuzz_targets/segment_scan.rs`),
//! kept here so that the replay test (`tests/fuzz_corpus.rs`) feeds the checked-in corpus
//! to exactly the code the fuzzer ran. Not part of the API.
//!
//! An input is a partition as a crash, a bad disk or a hand left it: up to two segment
//! files of arbitrary bytes and, optionally, arbitrary bytes as the partition's stored
//! log start. [`segment_scan`] opens the store on them (the start-up scan, its repairs),
//! reads every record, appends one, applies retention and opens the store again. It
//! asserts nothing: the target fails only by panicking, hanging or allocating without
//! bound.
//!
//! Layout of an input (integers little-endian):
//!
//! ```text
//! flags u8                     bit 0: a meta entry follows; bit 1: a second segment
//! [meta length u8, meta bytes] if bit 0
//! first segment's base u64
//! [second base u64, first segment's length u32] if bit 1
//! segment bytes                the first segment, then the second
//! ```

use std::time::Duration;

use crate::topic::layout::{self, PartitionMeta};
use crate::{codec, testing, Record, Store, Topic};

const TOPIC: &str = "fuzz";
const META: u8 = 1;
const SECOND: u8 = 2;

/// A partition's stored state, as [`segment_scan`] reads it from an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInput {
    /// The raw bytes of the partition's meta entry (its log start).
    pub meta: Option<Vec<u8>>,
    /// (base offset, bytes) of one or two segment files.
    pub segments: Vec<(u64, Vec<u8>)>,
}

impl SegmentInput {
    /// Reads an input; `None` when it is too short for its own header.
    pub fn parse(data: &[u8]) -> Option<SegmentInput> {
        let (&flags, mut rest) = data.split_first()?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let meta = if flags & META != 0 {
            let len = take(1)?[0];
            Some(take(usize::from(len))?.to_vec())
        } else {
            None
        };
        let u64_at = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
        let first_base = u64_at(take(8)?)?;
        let second = if flags & SECOND != 0 {
            let base = u64_at(take(8)?)?;
            let len = u32::from_le_bytes(take(4)?.try_into().ok()?);
            Some((base, len as usize))
        } else {
            None
        };
        let bytes = rest;
        let segments = match second {
            None => vec![(first_base, bytes.to_vec())],
            Some((base, len)) => {
                let (a, b) = bytes.split_at(len.min(bytes.len()));
                vec![(first_base, a.to_vec()), (base, b.to_vec())]
            }
        };
        Some(SegmentInput { meta, segments })
    }

    /// The input [`SegmentInput::parse`] reads back as `self` (at most two segments are
    /// written, and a meta entry of at most 255 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8];
        if let Some(meta) = &self.meta {
            out[0] |= META;
            let meta = &meta[..meta.len().min(255)];
            out.push(meta.len() as u8);
            out.extend_from_slice(meta);
        }
        let first = self.segments.first().map_or((0, &[][..]), |(b, s)| (*b, s));
        out.extend_from_slice(&first.0.to_le_bytes());
        if let Some((base, bytes)) = self.segments.get(1) {
            out[0] |= SECOND;
            out.extend_from_slice(&base.to_le_bytes());
            out.extend_from_slice(&(first.1.len() as u32).to_le_bytes());
            out.extend_from_slice(first.1);
            out.extend_from_slice(bytes);
        } else {
            out.extend_from_slice(first.1);
        }
        out
    }

    /// The segments and meta entry of partition 0 of a memory store's topic `fuzz` after
    /// `appends` (each one append call) and, if given, retention down to `keep_bytes`:
    /// seeds for the fuzzer, written by the store itself.
    pub fn written(appends: &[Vec<Record>], keep_bytes: Option<u64>) -> SegmentInput {
        let store = testing::with_segment_bytes(Store::memory(), 256);
        let mut log_start = None;
        if let Ok(topic) = store.topic(TOPIC, 1) {
            for records in appends {
                let _ = topic.append(0, records);
            }
            if keep_bytes.is_some() {
                let _ = topic.apply_retention(None, keep_bytes);
                log_start = topic.low_watermark(0).ok();
            }
        }
        let files = store.engine().files();
        let dir = partition_dir();
        let mut names = files.list(&dir).unwrap_or_default();
        names.sort();
        let segments = names
            .iter()
            .rev()
            .take(2)
            .rev()
            .filter_map(|name| {
                let base = layout::segment_base(name)?;
                let file = files.open(&format!("{dir}/{name}"), false).ok()?;
                let mut bytes = vec![0u8; usize::try_from(file.len().ok()?).ok()?];
                file.read_at(0, &mut bytes).ok()?;
                Some((base, bytes))
            })
            .collect();
        let meta = log_start.and_then(|log_start| {
            codec::encode(None, &PartitionMeta { log_start }, String::new).ok()
        });
        SegmentInput { meta, segments }
    }
}

fn partition_dir() -> String {
    layout::partition_dir(&layout::topic_dir(TOPIC), 0)
}

/// Opens a store on the partition `data` describes, and uses it. See the module docs.
pub fn segment_scan(data: &[u8]) {
    let Some(input) = SegmentInput::parse(data) else {
        return;
    };
    let store = Store::memory();
    // The topic's metadata, then the partition's state under it.
    match store.topic(TOPIC, 1) {
        Ok(topic) => {
            if let Some(meta) = &input.meta {
                let _ = testing::write_raw_meta(&topic, 0, meta);
            }
        }
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    }
    let files = store.engine().files();
    for (base, bytes) in &input.segments {
        let path = format!("{}/{}", partition_dir(), layout::segment_name(*base));
        if let Ok(file) = files.open(&path, true) {
            let _ = file.write_at(0, bytes);
        }
    }
    let Some(store) = reopen_and_read(store) else {
        return;
    };
    if let Ok(topic) = store.topic(TOPIC, 1) {
        let record = Record {
            key: Some(b"k".to_vec()),
            value: b"after the scan".to_vec(),
            timestamp_ms: 1_700_000_000_000,
            headers: vec![("h".into(), b"v".to_vec())],
        };
        if let Err(e) = topic.append(0, &[record]) {
            let _ = e.to_string();
        }
        if let Ok(high) = topic.high_watermark(0) {
            let _ = topic.read(0, high.saturating_sub(1), 10, 1 << 20);
        }
        if let Err(e) = topic.apply_retention(Some(Duration::from_secs(3600)), Some(4096)) {
            let _ = e.to_string();
        }
    }
    reopen_and_read(store);
}

/// A restart: the store opened again on its engine (the start-up scan of every segment),
/// then every record read. `None` when the store or the topic does not open.
fn reopen_and_read(store: Store) -> Option<Store> {
    let store = match testing::reopen(store) {
        Ok(store) => store,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    match store.topic(TOPIC, 1) {
        Ok(topic) => read_all(&topic),
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    }
    let _ = store.stats();
    Some(store)
}

/// Reads the partition from its low watermark to its high one, as a consumer would.
fn read_all(topic: &Topic) {
    let (Ok(mut from), Ok(high)) = (topic.low_watermark(0), topic.high_watermark(0)) else {
        return;
    };
    // Every read that returns records moves `from` past one at least; a corrupt or
    // lying frame ends the loop with an empty read.
    while from < high {
        match topic.read(0, from, 100, 1 << 16) {
            Ok(records) => match records.last() {
                Some(last) if last.offset >= from => from = last.offset.saturating_add(1),
                _ => break,
            },
            Err(e) => return drop(e.to_string()),
        }
    }
}
