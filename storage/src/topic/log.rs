//! One partition's log: its segments, the index of their frames (in memory), and the
//! frame format (see [`layout`](super::layout)).

use std::sync::Arc;

use super::layout::{self, HEADER_BYTES};
use crate::files::{Files, SegmentFile};
use crate::StorageError;

const MAGIC: [u8; 2] = *b"PL";
const FORMAT: u8 = 1;

/// A frame longer than this is not one of ours: a corrupt header.
const MAX_PAYLOAD_BYTES: u32 = 64 * 1024 * 1024;

/// Where a frame is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub base: u64,
    pub records: u32,
    /// Position of the header in its segment.
    pub pos: u64,
    pub payload_len: u32,
    pub appended_at_ms: u64,
}

impl Frame {
    /// The offset after its last record.
    pub fn end(&self) -> u64 {
        self.base + u64::from(self.records)
    }

    /// Header and payload.
    pub fn bytes(&self) -> u64 {
        HEADER_BYTES as u64 + u64::from(self.payload_len)
    }
}

/// One segment file and its frames.
pub(crate) struct Segment {
    pub base: u64,
    pub path: String,
    pub file: Arc<dyn SegmentFile>,
    /// Where the next frame goes.
    pub end: u64,
    pub frames: Vec<Frame>,
}

/// A partition's log as the writer sees it.
pub(crate) struct Log {
    pub dir: String,
    pub segments: Vec<Segment>,
    /// The offset the next appended record gets.
    pub next_offset: u64,
    /// The first offset readers may see; frames wholly below it are gone for readers
    /// and their segment files are deleted once every frame of one is.
    pub log_start: u64,
    /// Bytes (headers included) of the frames at or after `log_start`.
    pub bytes: u64,
}

/// The header of `frame`, with the CRC of its fields added to its payload's.
pub(crate) fn header(frame: &Frame, payload_crc: &crc32fast::Hasher) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0..2].copy_from_slice(&MAGIC);
    h[2] = FORMAT;
    h[4..8].copy_from_slice(&frame.payload_len.to_le_bytes());
    h[12..20].copy_from_slice(&frame.base.to_le_bytes());
    h[20..24].copy_from_slice(&frame.records.to_le_bytes());
    h[24..32].copy_from_slice(&frame.appended_at_ms.to_le_bytes());
    let mut crc = payload_crc.clone();
    crc.update(&h[12..32]);
    h[8..12].copy_from_slice(&crc.finalize().to_le_bytes());
    h
}

/// Why a frame on disk is not one the log can use.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("no frame header (bytes {found:02x?}, expected format {FORMAT})")]
    NoHeader { found: [u8; 3] },
    #[error("frame claims a {0}-byte payload")]
    PayloadTooLarge(u32),
    #[error("frame holds no records")]
    NoRecords,
    #[error("frame's offsets {base}+{records} pass the largest Kafka offset")]
    PastLargestOffset { base: u64, records: u32 },
    #[error("short header")]
    ShortHeader,
    #[error("reading {bytes} bytes: {source}")]
    Read {
        bytes: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("header {found:?} is not the indexed {indexed:?}")]
    NotIndexed { found: Frame, indexed: Frame },
    #[error("CRC mismatch (stored {stored:08x}, computed {computed:08x})")]
    Crc { stored: u32, computed: u32 },
}

/// A header's fields, if it looks like one of ours.
fn parse_header(h: &[u8; HEADER_BYTES], pos: u64) -> Result<(Frame, u32), FrameError> {
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(b)
    };
    if h[0..2] != MAGIC || h[2] != FORMAT {
        return Err(FrameError::NoHeader {
            found: [h[0], h[1], h[2]],
        });
    }
    let payload_len = u32_at(4);
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(FrameError::PayloadTooLarge(payload_len));
    }
    let frame = Frame {
        base: u64_at(12),
        records: u32_at(20),
        pos,
        payload_len,
        appended_at_ms: u64_at(24),
    };
    if frame.records == 0 {
        return Err(FrameError::NoRecords);
    }
    if frame.base > layout::MAX_OFFSET - u64::from(frame.records) {
        return Err(FrameError::PastLargestOffset {
            base: frame.base,
            records: frame.records,
        });
    }
    Ok((frame, u32_at(8)))
}

/// Reads and checks the frame `frame` of `file` (header fields as indexed, CRC) and
/// returns its payload.
pub(crate) fn read_frame(file: &dyn SegmentFile, frame: &Frame) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; HEADER_BYTES + frame.payload_len as usize];
    file.read_at(frame.pos, &mut buf)
        .map_err(|source| FrameError::Read {
            bytes: buf.len(),
            source,
        })?;
    let (h, payload) = buf
        .split_first_chunk::<HEADER_BYTES>()
        .ok_or(FrameError::ShortHeader)?;
    let (found, crc) = parse_header(h, frame.pos)?;
    if found != *frame {
        return Err(FrameError::NotIndexed {
            found,
            indexed: *frame,
        });
    }
    check_crc(h, payload, crc)?;
    buf.drain(..HEADER_BYTES);
    Ok(buf)
}

fn check_crc(h: &[u8; HEADER_BYTES], payload: &[u8], crc: u32) -> Result<(), FrameError> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(payload);
    hasher.update(&h[12..32]);
    let actual = hasher.finalize();
    if actual == crc {
        Ok(())
    } else {
        Err(FrameError::Crc {
            stored: crc,
            computed: actual,
        })
    }
}

/// What opening a partition found wrong, for the caller to log and count.
#[derive(Debug, Default)]
pub(crate) struct Repairs {
    /// (segment path, position, bytes cut, why) of torn tails cut off the last segment.
    pub truncated: Vec<(String, u64, u64, String)>,
    /// Segment tails moved to side files.
    pub quarantined: Vec<Quarantined>,
}

/// A segment's tail, from a bad frame to its end, moved to a side file.
#[derive(Debug)]
pub(crate) struct Quarantined {
    pub segment: String,
    pub side_file: String,
    /// Where the bad frame starts in the segment, and the bytes moved from there.
    pub position: u64,
    pub bytes: u64,
    /// The offset the bad frame should have started at.
    pub from_offset: u64,
    /// Offsets `from_offset..skipped_until` may have been handed out for the records
    /// moved: the log never uses them again (see [`offsets_moved`]).
    pub skipped_until: u64,
    pub reason: String,
}

/// Opens a partition's segments and indexes their frames.
///
/// Every frame header is checked (magic, format, lengths, offsets following on); the
/// last segment, the only one a crash can have cut short, also has every frame's CRC
/// checked (an older one has, once its headers show a problem, to find the first bad
/// frame: a damaged record count looks fine but shifts every later offset).
///
/// At the first bad frame of a segment:
/// - a **torn tail** of the last segment (a header cut short, a frame cut short, or
///   zeros, with no readable frame after them: what a crash or a power loss leaves of
///   a write never acknowledged) is cut off;
/// - anything else (a bit flipped in a frame with readable frames after it, a damaged
///   header, a complete frame failing its CRC) is **quarantined**: the bytes from the bad
///   frame to the segment's end are moved to a side file next to it
///   (`<segment>.quarantined-<offset>`, synced with its directory before the segment is
///   cut), the frames before it stay readable, and the offsets the moved records may
///   have had are never used again: in an older segment they are a gap up to the next
///   segment; in the last one the log continues after them (an empty segment file named
///   by the next offset keeps that across restarts). The side file stays for an
///   operator (retention does not delete it).
pub(crate) fn open(
    files: &dyn Files,
    dir: String,
    meta_log_start: Option<u64>,
    place: impl Fn() -> String,
) -> Result<(Log, Repairs), StorageError> {
    let io_error = |what: &str, e: std::io::Error| StorageError::Engine {
        op: "open the topic log",
        tree: format!("{} ({what})", place()),
        source: Box::new(e),
    };
    let mut bases: Vec<u64> = files
        .list(&dir)
        .map_err(|e| io_error(&dir, e))?
        .iter()
        .filter_map(|name| layout::segment_base(name))
        .collect();
    bases.sort_unstable();
    let mut repairs = Repairs::default();
    let mut segments = Vec::with_capacity(bases.len());
    let count = bases.len();
    // Where the offsets continue after a quarantine in the last segment.
    let mut continue_at = None;
    for (i, base) in bases.into_iter().enumerate() {
        let path = format!("{dir}/{}", layout::segment_name(base));
        let file = files.open(&path, false).map_err(|e| io_error(&path, e))?;
        let len = file.len().map_err(|e| io_error(&path, e))?;
        let last = i + 1 == count;
        let (mut frames, mut end, mut problem) = scan(&*file, base, len, last);
        if problem.is_some() && !last {
            (frames, end, problem) = scan(&*file, base, len, true);
        }
        if let Some(why) = problem {
            let expected = frames.last().map_or(base, Frame::end);
            let after = valid_frames_after(&*file, end + 1, len, expected)
                .map_err(|e| io_error(&path, e))?;
            let torn = last
                && after.is_empty()
                && is_torn(&*file, end, len, expected).map_err(|e| io_error(&path, e))?;
            if torn {
                file.truncate(end).map_err(|e| io_error(&path, e))?;
                repairs.truncated.push((path.clone(), end, len - end, why));
            } else {
                let bad =
                    plausible_header(&*file, end, len, expected).map_err(|e| io_error(&path, e))?;
                let skipped_until = offsets_moved(bad, &after, end, len, expected);
                let side_file =
                    side_file_name(files, &dir, base, expected).map_err(|e| io_error(&dir, e))?;
                let next = (last && skipped_until > expected).then_some(skipped_until);
                let created = quarantine(files, &dir, &*file, end, len, &side_file, next)
                    .map_err(|e| io_error(&format!("quarantining {path}"), e))?;
                if let Some(next) = next {
                    continue_at = Some((next, created));
                }
                repairs.quarantined.push(Quarantined {
                    segment: path.clone(),
                    side_file,
                    position: end,
                    bytes: len - end,
                    from_offset: expected,
                    skipped_until,
                    reason: why,
                });
            }
        }
        segments.push(Segment {
            base,
            path,
            file,
            end,
            frames,
        });
    }
    let continue_offset = continue_at.as_ref().map_or(0, |(next, _)| *next);
    if let Some((next, Some((path, file)))) = continue_at {
        segments.push(Segment {
            base: next,
            path,
            file,
            end: 0,
            frames: Vec::new(),
        });
    }
    let frames_end = segments
        .iter()
        .rev()
        .find_map(|s| s.frames.last().map(Frame::end))
        .unwrap_or(0);
    let last_base = segments.last().map_or(0, |s| s.base);
    let first_base = segments
        .iter()
        .find_map(|s| s.frames.first().map(|f| f.base));
    // A damaged meta entry may claim any log start: never past the largest offset.
    let meta_log_start = meta_log_start.map(|m| m.min(layout::MAX_OFFSET));
    let next_offset = frames_end
        .max(last_base)
        .max(meta_log_start.unwrap_or(0))
        .max(continue_offset);
    let log_start = match (meta_log_start, first_base) {
        (Some(meta), Some(first)) => meta.max(first),
        (Some(meta), None) => meta.min(next_offset),
        (None, Some(first)) => first,
        (None, None) => next_offset,
    };
    let mut log = Log {
        dir,
        segments,
        next_offset,
        log_start,
        bytes: 0,
    };
    log.bytes = log.live_frames().map(|(_, f)| f.bytes()).sum();
    Ok((log, repairs))
}

/// Bytes read at a time when searching or copying a segment's tail.
const WINDOW_BYTES: usize = 1 << 20;

/// The smallest a record can be in a payload (bincode: key tag, value length, timestamp
/// and header count, one byte each): bytes of unknown content hold at most this many
/// records per byte.
const MIN_RECORD_BYTES: u64 = 4;

/// The frame whose header is at `pos`, if that header is ours, continues the offsets
/// (`expected`) and holds a possible record count (its payload may be cut short or fail
/// its CRC): the offsets of such a frame were handed out.
fn plausible_header(
    file: &dyn SegmentFile,
    pos: u64,
    len: u64,
    expected: u64,
) -> std::io::Result<Option<Frame>> {
    if len.saturating_sub(pos) < HEADER_BYTES as u64 {
        return Ok(None);
    }
    let mut h = [0u8; HEADER_BYTES];
    file.read_at(pos, &mut h)?;
    Ok(parse_header(&h, pos)
        .ok()
        .map(|(f, _)| f)
        .filter(|f| f.base == expected && f.records as usize <= layout::MAX_FRAME_RECORDS))
}

/// The frame at `pos`, if it is whole, passes its CRC, and starts at or after `min_base`.
fn valid_frame_at(
    file: &dyn SegmentFile,
    pos: u64,
    len: u64,
    min_base: u64,
) -> std::io::Result<Option<Frame>> {
    if len.saturating_sub(pos) < HEADER_BYTES as u64 {
        return Ok(None);
    }
    let mut h = [0u8; HEADER_BYTES];
    file.read_at(pos, &mut h)?;
    let Ok((frame, crc)) = parse_header(&h, pos) else {
        return Ok(None);
    };
    if frame.base < min_base
        || frame.records as usize > layout::MAX_FRAME_RECORDS
        || pos + frame.bytes() > len
    {
        return Ok(None);
    }
    let mut payload = vec![0u8; frame.payload_len as usize];
    file.read_at(pos + HEADER_BYTES as u64, &mut payload)?;
    Ok(check_crc(&h, &payload, crc).is_ok().then_some(frame))
}

/// Every whole frame passing its CRC from `from` on, each starting at or after the end
/// of the one before (and `min_base`): what follows a bad frame. Found by looking for
/// a header's magic at every position, so a damaged header does not hide what is after.
fn valid_frames_after(
    file: &dyn SegmentFile,
    from: u64,
    len: u64,
    min_base: u64,
) -> std::io::Result<Vec<Frame>> {
    let magic = [MAGIC[0], MAGIC[1], FORMAT];
    let mut found: Vec<Frame> = Vec::new();
    let mut buf = vec![0u8; WINDOW_BYTES];
    let mut pos = from;
    while len.saturating_sub(pos) >= HEADER_BYTES as u64 {
        // Frames after a good one follow on: no search needed.
        let min = found.last().map_or(min_base, Frame::end);
        if let Some(frame) = valid_frame_at(file, pos, len, min)? {
            pos += frame.bytes();
            found.push(frame);
            continue;
        }
        // The window is at least a header long: `n >= 32`.
        let n = usize::try_from(len - pos).map_or(WINDOW_BYTES, |left| left.min(WINDOW_BYTES));
        file.read_at(pos, &mut buf[..n])?;
        let mut next = None;
        for i in 0..n - magic.len() + 1 {
            if buf[i..i + magic.len()] != magic {
                continue;
            }
            let at = pos + i as u64;
            let min = found.last().map_or(min_base, Frame::end);
            if let Some(frame) = valid_frame_at(file, at, len, min)? {
                next = Some(at + frame.bytes());
                found.push(frame);
                break;
            }
        }
        // Without a find, the next window overlaps this one by a partial magic.
        pos = next.unwrap_or(pos + (n - magic.len() + 1) as u64);
    }
    Ok(found)
}

/// Whether the tail of the last segment from `pos` is what a crash leaves of a write
/// never acknowledged: part of a header, a frame cut short, or zeros (a power loss can
/// leave a file longer than the data that reached it). The caller has checked that no
/// readable frame follows.
fn is_torn(file: &dyn SegmentFile, pos: u64, len: u64, expected: u64) -> std::io::Result<bool> {
    if len - pos < HEADER_BYTES as u64 {
        return Ok(true);
    }
    if let Some(frame) = plausible_header(file, pos, len, expected)? {
        if pos + frame.bytes() > len {
            return Ok(true);
        }
    }
    let mut buf = vec![0u8; WINDOW_BYTES];
    let mut at = pos;
    while at < len {
        let n = usize::try_from(len - at).map_or(WINDOW_BYTES, |left| left.min(WINDOW_BYTES));
        file.read_at(at, &mut buf[..n])?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// The end of the offsets the bytes `pos..len` may hold records for: the bad frame's
/// own if its header is readable (`bad`), then those of the readable frames after it,
/// and for bytes after the last of them that no frame accounts for, as many offsets as
/// they could hold records. A gap of offsets is harmless; an offset handed out again for
/// other data would mislead every consumer that read it.
fn offsets_moved(bad: Option<Frame>, after: &[Frame], pos: u64, len: u64, expected: u64) -> u64 {
    let (mut until, mut covered) = match bad {
        Some(frame) => (frame.end(), (pos + frame.bytes()).min(len)),
        None => (expected, pos),
    };
    for frame in after {
        until = until.max(frame.end());
        covered = covered.max(frame.pos + frame.bytes());
    }
    until
        .saturating_add((len - covered.min(len)).div_ceil(MIN_RECORD_BYTES))
        .min(layout::MAX_OFFSET)
}

/// `<segment>.quarantined-<offset>` in `dir`, or with `-2`, `-3`, ... if taken (the same
/// damage found again after a crash during an earlier quarantine).
fn side_file_name(files: &dyn Files, dir: &str, base: u64, offset: u64) -> std::io::Result<String> {
    let names = files.list(dir)?;
    let stem = format!("{}.quarantined-{offset:020}", layout::segment_name(base));
    let mut name = stem.clone();
    let mut n = 1;
    while names.contains(&name) {
        n += 1;
        name = format!("{stem}-{n}");
    }
    Ok(format!("{dir}/{name}"))
}

/// Copies `pos..len` of `file` to `side_file` and cuts `file` at `pos`, in an order that
/// loses nothing across a crash: the copy (and the empty segment that keeps the offsets
/// moving past the moved records, `next`) are synced with their directory before the
/// segment is cut and synced. A crash before the cut finds the damage again and copies
/// it again (to another name). Returns the segment created.
fn quarantine(
    files: &dyn Files,
    dir: &str,
    file: &dyn SegmentFile,
    pos: u64,
    len: u64,
    side_file: &str,
    next: Option<u64>,
) -> std::io::Result<Option<(String, Arc<dyn SegmentFile>)>> {
    let out = files.open(side_file, true)?;
    out.truncate(0)?;
    let mut buf = vec![0u8; WINDOW_BYTES];
    let mut at = pos;
    while at < len {
        let n = usize::try_from(len - at).map_or(WINDOW_BYTES, |left| left.min(WINDOW_BYTES));
        file.read_at(at, &mut buf[..n])?;
        out.write_at(at - pos, &buf[..n])?;
        at += n as u64;
    }
    out.sync()?;
    let created = match next {
        Some(next) => {
            let path = format!("{dir}/{}", layout::segment_name(next));
            let segment = files.open(&path, true)?;
            segment.truncate(0)?;
            Some((path, segment))
        }
        None => None,
    };
    files.sync_dir(dir)?;
    file.truncate(pos)?;
    file.sync()?;
    Ok(created)
}

/// Indexes the frames of one segment: (frames, where valid data ends, what stopped the
/// scan before the file's end).
fn scan(
    file: &dyn SegmentFile,
    base: u64,
    len: u64,
    verify: bool,
) -> (Vec<Frame>, u64, Option<String>) {
    let mut frames = Vec::new();
    let mut pos = 0u64;
    let mut expected = base;
    while pos < len {
        let stop = |why: String| Some(why);
        if len - pos < HEADER_BYTES as u64 {
            return (
                frames,
                pos,
                stop(format!("{} bytes of a header", len - pos)),
            );
        }
        let mut h = [0u8; HEADER_BYTES];
        if let Err(e) = file.read_at(pos, &mut h) {
            return (frames, pos, stop(format!("reading a header: {e}")));
        }
        let (frame, crc) = match parse_header(&h, pos) {
            Ok(parsed) => parsed,
            Err(why) => return (frames, pos, stop(why.to_string())),
        };
        if frame.base != expected {
            return (
                frames,
                pos,
                stop(format!(
                    "frame at offset {} where {expected} was next",
                    frame.base
                )),
            );
        }
        if frame.pos + frame.bytes() > len {
            return (frames, pos, stop("a frame cut short".into()));
        }
        if verify {
            let mut payload = vec![0u8; frame.payload_len as usize];
            if let Err(e) = file.read_at(pos + HEADER_BYTES as u64, &mut payload) {
                return (frames, pos, stop(format!("reading a payload: {e}")));
            }
            if let Err(why) = check_crc(&h, &payload, crc) {
                return (frames, pos, stop(why.to_string()));
            }
        }
        expected = frame.end();
        pos += frame.bytes();
        frames.push(frame);
    }
    (frames, pos, None)
}

impl Log {
    /// Frames at or after the log start, with their segment's index, oldest first.
    pub fn live_frames(&self) -> impl Iterator<Item = (usize, &Frame)> + '_ {
        let start = self.log_start;
        self.segments
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.frames.iter().map(move |f| (i, f)))
            .filter(move |(_, f)| f.base >= start)
    }

    /// The frames to read for records from `from` on: (file, frame) from the frame
    /// holding `from` (or the first after it) while under `high`, stopping once their
    /// payloads pass `max_bytes` or they hold `max_records`. Payload bytes include the
    /// encoding, so this may stop before the records' own bytes reach `max_bytes`: the
    /// reader lists on from the last frame while its limits are not reached.
    pub fn frames_from(
        &self,
        from: u64,
        high: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Vec<(Arc<dyn SegmentFile>, Frame)> {
        let mut out = Vec::new();
        // The last segment starting at or before `from`, else the first.
        let first_segment = self
            .segments
            .partition_point(|s| s.base <= from)
            .saturating_sub(1);
        // Counted from `from` on; the first frame's bytes are not counted, as a read
        // returns its first record whatever its size.
        let (mut records, mut bytes) = (0u64, 0usize);
        for segment in &self.segments[first_segment.min(self.segments.len())..] {
            let skip = segment.frames.partition_point(|f| f.end() <= from);
            for frame in &segment.frames[skip..] {
                if frame.base >= high || records >= max_records as u64 || bytes > max_bytes {
                    return out;
                }
                if !out.is_empty() {
                    bytes += frame.payload_len as usize;
                }
                records += frame.end() - frame.base.max(from);
                out.push((Arc::clone(&segment.file), *frame));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::MemFiles;

    fn write(files: &MemFiles, dir: &str, base: u64, frames: &[(u32, &[u8])]) -> u64 {
        let file = files
            .open(&format!("{dir}/{}", layout::segment_name(base)), true)
            .unwrap();
        let (mut pos, mut offset) = (file.len().unwrap(), base);
        for (records, payload) in frames {
            let mut crc = crc32fast::Hasher::new();
            crc.update(payload);
            let frame = Frame {
                base: offset,
                records: *records,
                pos,
                payload_len: payload.len() as u32,
                appended_at_ms: 7,
            };
            let h = header(&frame, &crc);
            file.write_at(pos, &h).unwrap();
            file.write_at(pos + HEADER_BYTES as u64, payload).unwrap();
            pos += (HEADER_BYTES + payload.len()) as u64;
            offset += u64::from(*records);
        }
        pos
    }

    #[test]
    fn opening_indexes_frames_and_cuts_a_torn_tail() {
        let files = MemFiles::default();
        write(&files, "d", 0, &[(2, b"aa"), (3, b"bbb")]);
        let end = write(&files, "d", 5, &[(1, b"c"), (4, b"dddd")]);
        // A torn write: half a header after the last frame.
        let last = files.open("d/00000000000000000005.log", false).unwrap();
        last.write_at(end, b"PL\x01\x00").unwrap();
        let (log, repairs) = open(&files, "d".into(), None, String::new).unwrap();
        assert_eq!(log.next_offset, 10);
        assert_eq!(log.log_start, 0);
        assert_eq!(log.segments.len(), 2);
        assert_eq!(repairs.truncated.len(), 1, "{repairs:?}");
        assert_eq!(last.len().unwrap(), end);
        let f = log.segments[1].frames[1];
        assert_eq!(read_frame(&*last, &f).unwrap(), b"dddd");
        let reads: Vec<u64> = log
            .frames_from(3, 10, usize::MAX, usize::MAX)
            .iter()
            .map(|(_, f)| f.base)
            .collect();
        assert_eq!(reads, vec![2, 5, 6]);
    }

    /// Found by the `segment_scan` fuzz target: a segment named near `u64::MAX` and a
    /// damaged tail made the scan add past `u64` (a panic in a debug build, a wrapped
    /// offset in a release one). Offsets stop at Kafka's largest (`i64::MAX`).
    #[test]
    fn offsets_past_the_largest_kafka_offset_are_damage_not_data() {
        let files = MemFiles::default();
        // A segment file named past i64::MAX is not one of ours: not opened.
        write(&files, "d", u64::MAX - 3, &[(1, b"x")]);
        let (log, _) = open(&files, "d".into(), None, String::new).unwrap();
        assert!(log.segments.is_empty());
        assert_eq!(log.next_offset, 0);
        // A frame whose offsets would pass it is not a frame.
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"x");
        let frame = Frame {
            base: layout::MAX_OFFSET - 1,
            records: 2,
            pos: 0,
            payload_len: 1,
            appended_at_ms: 7,
        };
        let error = parse_header(&header(&frame, &crc), 0).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "frame's offsets {}+2 pass the largest Kafka offset",
                layout::MAX_OFFSET - 1
            )
        );
        // A log start claimed past it is clamped.
        let files = MemFiles::default();
        let (log, _) = open(&files, "e".into(), Some(u64::MAX), String::new).unwrap();
        assert_eq!(
            (log.log_start, log.next_offset),
            (layout::MAX_OFFSET, layout::MAX_OFFSET)
        );
    }

    #[test]
    fn a_bad_crc_is_quarantined_in_the_last_segment_and_caught_on_read_elsewhere() {
        let files = MemFiles::default();
        write(&files, "d", 0, &[(1, b"x"), (1, b"y")]);
        write(&files, "d", 2, &[(1, b"z"), (1, b"w")]);
        let old = files.open("d/00000000000000000000.log", false).unwrap();
        let new = files.open("d/00000000000000000002.log", false).unwrap();
        // Flip the payload byte of the second frame of each.
        let second = (HEADER_BYTES + 1 + HEADER_BYTES) as u64;
        old.write_at(second, b"Y").unwrap();
        new.write_at(second, b"W").unwrap();
        let (log, repairs) = open(&files, "d".into(), Some(0), String::new).unwrap();
        // A whole frame failing its CRC is not a torn write: moved aside, its offset
        // (3) not used again.
        assert!(repairs.truncated.is_empty(), "{repairs:?}");
        assert_eq!(repairs.quarantined.len(), 1, "{repairs:?}");
        let q = &repairs.quarantined[0];
        assert_eq!(
            q.side_file,
            "d/00000000000000000002.log.quarantined-00000000000000000003"
        );
        assert_eq!((q.position, q.bytes), (33, 33));
        assert_eq!((q.from_offset, q.skipped_until), (3, 4));
        assert!(q.reason.contains("CRC mismatch"), "{}", q.reason);
        assert_eq!(log.next_offset, 4);
        assert_eq!(new.len().unwrap(), 33);
        let mut names = files.list("d").unwrap();
        names.sort();
        assert_eq!(
            names,
            vec![
                "00000000000000000000.log",
                "00000000000000000002.log",
                "00000000000000000002.log.quarantined-00000000000000000003",
                "00000000000000000004.log",
            ]
        );
        assert_eq!(
            log.segments[0].frames.len(),
            2,
            "older segments: headers only"
        );
        let err = read_frame(&*old, &log.segments[0].frames[1]).unwrap_err();
        assert!(matches!(err, FrameError::Crc { .. }), "{err}");
        assert!(
            err.to_string().starts_with("CRC mismatch (stored "),
            "{err}"
        );
        // Opened again: nothing more to repair, and the offsets still carry on at 4.
        let (log, repairs) = open(&files, "d".into(), Some(0), String::new).unwrap();
        assert!(repairs.quarantined.is_empty() && repairs.truncated.is_empty());
        assert_eq!(log.next_offset, 4);
    }

    #[test]
    fn a_tail_that_no_frame_accounts_for_skips_as_many_offsets_as_it_could_hold() {
        let frame = |base, records, payload_len| Frame {
            base,
            records,
            pos: 0,
            payload_len,
            appended_at_ms: 0,
        };
        // The bad frame's header is readable and the frames after it account for the rest.
        let bad = Frame {
            pos: 100,
            ..frame(10, 2, 8)
        };
        let after = [Frame {
            pos: 140,
            ..frame(12, 3, 8)
        }];
        assert_eq!(offsets_moved(Some(bad), &after, 100, 180, 10), 15);
        // Nothing readable: 41 bytes could hold 11 records.
        assert_eq!(offsets_moved(None, &[], 100, 141, 10), 21);
    }

    #[test]
    fn the_log_start_survives_an_emptied_log() {
        let files = MemFiles::default();
        let (log, _) = open(&files, "d".into(), Some(40), String::new).unwrap();
        assert_eq!((log.log_start, log.next_offset, log.bytes), (40, 40, 0));
        write(&files, "d", 40, &[]);
        let (log, _) = open(&files, "d".into(), None, String::new).unwrap();
        assert_eq!((log.log_start, log.next_offset), (40, 40));
    }
}
