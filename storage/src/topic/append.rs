//! Appending records to a partition.
//!
//! Three steps, so that concurrent producers overlap everything but the file writes:
//! encode the frames' payloads and their CRCs (no lock: a payload does not depend on its
//! offset), write them under the partition's lock (which assigns the offsets), then make
//! them as durable as the store promises and publish the new high watermark.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::layout::HEADER_BYTES;
use super::log::{self, Frame, Log, Segment};
use super::{chunk, layout, TopicShared};
use crate::clock::Clock;
use crate::files::SegmentFile;
use crate::{Durability, Record, StorageError};

/// A frame ready to be written but for its offsets.
struct Encoded {
    records: u32,
    payload: Vec<u8>,
    payload_len: u32,
    crc: crc32fast::Hasher,
}

/// See [`super::Topic::append`].
pub(super) fn append(
    topic: &TopicShared,
    clock: &dyn Clock,
    partition: u32,
    records: &[Record],
) -> Result<u64, StorageError> {
    let cursor = topic.cursor(partition)?;
    if topic.is_deleted() {
        return Err(deleted(topic));
    }
    if records.is_empty() {
        return Ok(cursor.high.load(Ordering::Acquire));
    }
    let place = || format!("append to topic {:?} partition {partition}", topic.name);
    chunk::check_sizes(records, place)?;
    let frames = encode_frames(records, place)?;
    let (base, end, written) = write(topic, partition, None, clock.now_ms(), frames)?;
    if topic.config.durability == Durability::PowerLoss {
        topic.committer.wait_synced(written)?;
    } else {
        topic.committer.count_durable_write();
    }
    // Publishing after the write (and sync): readers never see what a crash could take
    // back. An append that got its offsets later may have published already: its write
    // came after these, hence `fetch_max`.
    cursor.high.fetch_max(end, Ordering::Release);
    Ok(base)
}

fn deleted(topic: &TopicShared) -> StorageError {
    StorageError::InvalidArgument {
        what: format!("topic {:?}", topic.name),
        reason: "it was deleted; open it again to create it anew".into(),
    }
}

/// Cuts `records` into frames and encodes each, with its payload's CRC.
fn encode_frames(
    records: &[Record],
    place: impl Fn() -> String,
) -> Result<Vec<Encoded>, StorageError> {
    chunk::split(records)
        .into_iter()
        .map(|piece| {
            let payload = chunk::encode(piece, &place)?;
            let payload_len = u32::try_from(payload.len()).map_err(|_| StorageError::Encode {
                place: place(),
                reason: "a frame payload over 4 GiB".into(),
            })?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&payload);
            Ok(Encoded {
                // A frame holds at most MAX_FRAME_RECORDS records.
                records: u32::try_from(piece.len()).unwrap_or(u32::MAX),
                payload,
                payload_len,
                crc,
            })
        })
        .collect()
}

/// (first offset, end offset, the files written) of a write.
type Written = (u64, u64, Vec<Arc<dyn SegmentFile>>);

/// Writes `frames` at the end of `partition` (at offset `at`, leaving a gap, if given and
/// past the end: the migration of a first-builds log with a lost chunk) and indexes
/// them. Returns (first offset, end offset, files written). The log follows each frame
/// written, so it always matches the files even if a later frame fails.
fn write(
    topic: &TopicShared,
    partition: u32,
    at: Option<u64>,
    now_ms: u64,
    frames: Vec<Encoded>,
) -> Result<Written, StorageError> {
    let cursor = topic.cursor(partition)?;
    let mut log = topic.write_log(partition);
    if let Some(at) = at {
        log.next_offset = log.next_offset.max(at);
    }
    let base = log.next_offset;
    let mut written: Vec<Arc<dyn SegmentFile>> = Vec::new();
    for frame in frames {
        let segment = segment_for(topic, &mut log)?;
        let offset = log.next_offset;
        let segment = &mut log.segments[segment];
        let indexed = Frame {
            base: offset,
            records: frame.records,
            pos: segment.end,
            payload_len: frame.payload_len,
            appended_at_ms: now_ms,
        };
        let header = log::header(&indexed, &frame.crc);
        let pos = indexed.pos;
        let result = segment.file.write_at(pos, &header).and_then(|()| {
            segment
                .file
                .write_at(pos + HEADER_BYTES as u64, &frame.payload)
        });
        if let Err(e) = result {
            // Best effort: the next append writes over whatever part got there anyway.
            let _ = segment.file.truncate(pos);
            return Err(io_error("write", &segment.path, e));
        }
        segment.end += indexed.bytes();
        segment.frames.push(indexed);
        if !written.iter().any(|f| Arc::ptr_eq(f, &segment.file)) {
            written.push(Arc::clone(&segment.file));
        }
        log.next_offset = indexed.end();
        log.bytes += indexed.bytes();
        cursor.bytes.store(log.bytes, Ordering::Relaxed);
    }
    Ok((base, log.next_offset, written))
}

/// The index of the segment the next frame goes to: the last one, or a new one starting
/// at the next offset when there is none, the last is full, or the log moved past it
/// (an emptied log whose offsets carry on, a gap).
fn segment_for(topic: &TopicShared, log: &mut Log) -> Result<usize, StorageError> {
    let next = log.next_offset;
    if let Some(last) = log.segments.last() {
        let follows = last.frames.last().map_or(last.base, |f| f.end()) == next;
        let full = !last.frames.is_empty() && last.end >= topic.config.segment_bytes;
        if follows && !full {
            return Ok(log.segments.len() - 1);
        }
    }
    let path = format!("{}/{}", log.dir, layout::segment_name(next));
    let file = topic
        .config
        .files
        .open(&path, true)
        .map_err(|e| io_error("create", &path, e))?;
    // A file left by a failed earlier attempt at this offset holds nothing indexed.
    file.truncate(0).map_err(|e| io_error("create", &path, e))?;
    log.segments.push(Segment {
        base: next,
        path,
        file,
        end: 0,
        frames: Vec::new(),
    });
    Ok(log.segments.len() - 1)
}

pub(super) fn io_error(op: &'static str, path: &str, e: std::io::Error) -> StorageError {
    StorageError::Engine {
        op,
        tree: format!("segment file '{path}'"),
        source: Box::new(e),
    }
}

/// Appends records of the first builds' log at their own offsets (see `legacy`): the
/// partition must hold nothing at or after `base`.
pub(super) fn append_at(
    topic: &TopicShared,
    partition: u32,
    base: u64,
    appended_at_ms: u64,
    records: &[Record],
) -> Result<(), StorageError> {
    let frames = encode_frames(records, || topic.frame_place(partition, base))?;
    let (_, end, _) = write(topic, partition, Some(base), appended_at_ms, frames)?;
    let cursor = topic.cursor(partition)?;
    cursor.high.fetch_max(end, Ordering::Release);
    Ok(())
}
