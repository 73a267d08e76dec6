//! Appending records to a partition.
//!
//! Three steps, so that concurrent producers overlap everything but the file writes:
//! encode the frames' payloads and their CRCs (no lock: a payload does not depend on its
//! offset), write them under the partition's lock (which assigns the offsets), then make
//! them as durable as the store promises and publish the new high watermark.
//!
//! A write that fails (disk full, I/O error) is undone before the lock is released: the
//! frames of the append already written are cut off their files and the index, so
//! nothing of a refused append is kept, and its producer's retry does not duplicate it.
//! The store reports the failure (`health`) until a write succeeds again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::log::{self, Frame, Log, Segment};
use super::{chunk, layout, TopicShared};
use crate::clock::Clock;
use crate::commit::Unsynced;
use crate::{codec, Durability, Record, StorageError};

/// A frame ready to be written but for its offsets: its payload in parts, the long
/// values still in the records (see `codec::Parts`).
struct Encoded<'a> {
    records: u32,
    payload: Vec<&'a [u8]>,
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
    topic.config.health.check_failed()?;
    if records.is_empty() {
        return Ok(cursor.high.load(Ordering::Acquire));
    }
    let place = || format!("append to topic {:?} partition {partition}", topic.name);
    chunk::check_sizes(records, place)?;
    let pieces = pieces(records);
    let frames = encode_frames(&pieces, place)?;
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

/// The records of a frame and their encoding.
type Piece<'a> = (&'a [Record], codec::Parts<'a>);

/// Cuts `records` into frames' pieces.
fn pieces(records: &[Record]) -> Vec<Piece<'_>> {
    chunk::split(records)
        .into_iter()
        .map(|piece| (piece, chunk::encode_parts(piece)))
        .collect()
}

/// Encodes each piece as a frame, with its payload's CRC.
fn encode_frames<'a>(
    pieces: &'a [Piece<'a>],
    place: impl Fn() -> String,
) -> Result<Vec<Encoded<'a>>, StorageError> {
    pieces
        .iter()
        .map(|(piece, parts)| {
            let payload = parts.slices(&place)?;
            let payload_len = u32::try_from(parts.len()).map_err(|_| StorageError::Encode {
                place: place(),
                reason: "a frame payload over 4 GiB".into(),
            })?;
            let mut crc = crc32fast::Hasher::new();
            for part in &payload {
                crc.update(part);
            }
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

/// (first offset, end offset, the files written: with `PowerLoss`, to sync) of a write.
type Written = (u64, u64, Vec<Unsynced>);

/// Where a partition's log stood before an append, to undo it.
struct Mark {
    segments: usize,
    /// (end, frames) of the last segment, if there was one.
    last: Option<(u64, usize)>,
    next_offset: u64,
    bytes: u64,
}

impl Mark {
    fn of(log: &Log) -> Mark {
        Mark {
            segments: log.segments.len(),
            last: log.segments.last().map(|s| (s.end, s.frames.len())),
            next_offset: log.next_offset,
            bytes: log.bytes,
        }
    }
}

/// Writes `frames` at the end of `partition` (at offset `at`, leaving a gap, if given and
/// past the end: the migration of a first-builds log with a lost chunk) and indexes
/// them. Returns (first offset, end offset, files written). On error nothing of it is
/// left (see the module's doc).
fn write(
    topic: &TopicShared,
    partition: u32,
    at: Option<u64>,
    now_ms: u64,
    frames: Vec<Encoded<'_>>,
) -> Result<Written, StorageError> {
    let cursor = topic.cursor(partition)?;
    let mut log = topic.write_log(partition);
    let mark = Mark::of(&log);
    if let Some(at) = at {
        log.next_offset = log.next_offset.max(at);
    }
    let base = log.next_offset;
    let mut written: Vec<Unsynced> = Vec::new();
    for frame in frames {
        if let Err(e) = write_frame(topic, &mut log, now_ms, &frame, &mut written) {
            if let StorageError::Write { path, source } = &e {
                topic
                    .config
                    .health
                    .write_failed(format!("{source} writing {path}"));
            }
            undo(topic, &mut log, &mark)?;
            return Err(e);
        }
    }
    // While writes fail, a write that succeeds (a small one can, into a file's last
    // block, on a full disk) ends the condition only if a frame-sized probe does too.
    let health = &topic.config.health;
    if health.writes_failing() && crate::files::probe(&*topic.config.files).is_ok() {
        health.write_succeeded();
    }
    cursor.bytes.store(log.bytes, Ordering::Relaxed);
    Ok((base, log.next_offset, written))
}

/// Writes one frame at the end of the log and indexes it.
fn write_frame(
    topic: &TopicShared,
    log: &mut Log,
    now_ms: u64,
    frame: &Encoded<'_>,
    written: &mut Vec<Unsynced>,
) -> Result<(), StorageError> {
    let segment = segment_for(topic, log)?;
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
    let mut parts = Vec::with_capacity(frame.payload.len() + 1);
    parts.push(&header[..]);
    parts.extend_from_slice(&frame.payload);
    segment
        .file
        .write_parts_at(pos, &parts)
        .map_err(|e| write_error(&segment.path, e))?;
    segment.end += indexed.bytes();
    segment.frames.push(indexed);
    // Only `PowerLoss` syncs them: `Process` appends skip the path's allocation.
    let to_sync = topic.config.durability == Durability::PowerLoss;
    if to_sync && !written.iter().any(|(_, f)| Arc::ptr_eq(f, &segment.file)) {
        written.push((layout::shown(&segment.path), Arc::clone(&segment.file)));
    }
    log.next_offset = indexed.end();
    log.bytes += indexed.bytes();
    Ok(())
}

/// Puts the log and its files back where `mark` found them: segments the append created
/// are dropped (their files removed), the last one before it is cut back to its end.
///
/// If a file cannot be cut back, the frames the append wrote stay in it, past what the
/// index knows: the next append would write over them in part, and a restart could not
/// tell the rest from data. The store fails instead (see `health`); the restart then
/// finds them whole (never acknowledged, never read: at worst a duplicate of a retry).
fn undo(topic: &TopicShared, log: &mut Log, mark: &Mark) -> Result<(), StorageError> {
    for segment in log.segments.drain(mark.segments..) {
        if let Err(e) = topic.config.files.remove(&segment.path) {
            if let Err(e) = segment.file.truncate(0) {
                let what = format!(
                    "cutting back {} after a failed write",
                    layout::shown(&segment.path)
                );
                return Err(topic.config.health.fail_io(what, &e));
            }
            tracing::warn!(error = %e, segment = %layout::shown(&segment.path),
                "could not remove a segment file of a failed write (emptied instead)");
        }
    }
    if let (Some((end, frames)), Some(segment)) = (mark.last, log.segments.last_mut()) {
        // Also when the index did not move: the failed write may have left part of a
        // frame past its end.
        if let Err(e) = segment.file.truncate(end) {
            let what = format!(
                "cutting back {} after a failed write",
                layout::shown(&segment.path)
            );
            return Err(topic.config.health.fail_io(what, &e));
        }
        segment.end = end;
        segment.frames.truncate(frames);
    }
    log.next_offset = mark.next_offset;
    log.bytes = mark.bytes;
    Ok(())
}

/// The index of the segment the next frame goes to: the last one, or a new one starting
/// at the next offset when there is none, the last is full, or the log moved past it
/// (an emptied log whose offsets carry on, a gap).
///
/// With [`Durability::PowerLoss`] a new segment's name is made durable before any frame
/// in it can be acknowledged: the directory is synced (and, for a partition's first
/// segment, the directories above it, which may be new too). A failed sync fails the
/// store, as a failed `fdatasync` does.
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
        .map_err(|e| write_error(&path, e))?;
    // A file left by a failed earlier attempt at this offset holds nothing indexed.
    file.truncate(0).map_err(|e| write_error(&path, e))?;
    if topic.config.durability == Durability::PowerLoss {
        let first = log.segments.is_empty();
        let mut dirs = vec![log.dir.clone()];
        if first {
            dirs.extend(layout::parent_dirs(&log.dir));
        }
        for dir in dirs {
            if let Err(e) = topic.config.files.sync_dir(&dir) {
                let what = format!("fsync of directory {}", layout::shown(&dir));
                return Err(topic.config.health.fail_io(what, &e));
            }
            topic.config.health.count_fsync();
        }
    }
    log.segments.push(Segment {
        base: next,
        path,
        file,
        end: 0,
        frames: Vec::new(),
    });
    Ok(log.segments.len() - 1)
}

/// A failed write or creation of a segment file.
pub(super) fn write_error(path: &str, source: std::io::Error) -> StorageError {
    StorageError::Write {
        path: layout::shown(path),
        source,
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
    let pieces = pieces(records);
    let frames = encode_frames(&pieces, || topic.frame_place(partition, base))?;
    let (_, end, _) = write(topic, partition, Some(base), appended_at_ms, frames)?;
    let cursor = topic.cursor(partition)?;
    cursor.high.fetch_max(end, Ordering::Release);
    Ok(())
}
