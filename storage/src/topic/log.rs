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

/// A header's fields, if it looks like one of ours.
fn parse_header(h: &[u8; HEADER_BYTES], pos: u64) -> Result<(Frame, u32), String> {
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(b)
    };
    if h[0..2] != MAGIC || h[2] != FORMAT {
        return Err(format!(
            "no frame header (bytes {:02x?}, expected format {FORMAT})",
            &h[0..3]
        ));
    }
    let payload_len = u32_at(4);
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(format!("frame claims a {payload_len}-byte payload"));
    }
    let frame = Frame {
        base: u64_at(12),
        records: u32_at(20),
        pos,
        payload_len,
        appended_at_ms: u64_at(24),
    };
    if frame.records == 0 {
        return Err("frame holds no records".into());
    }
    Ok((frame, u32_at(8)))
}

/// Reads and checks the frame `frame` of `file` (header fields as indexed, CRC) and
/// returns its payload.
pub(crate) fn read_frame(file: &dyn SegmentFile, frame: &Frame) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; HEADER_BYTES + frame.payload_len as usize];
    file.read_at(frame.pos, &mut buf)
        .map_err(|e| format!("reading {} bytes: {e}", buf.len()))?;
    let (h, payload) = buf.split_at(HEADER_BYTES);
    let h: &[u8; HEADER_BYTES] = h.try_into().map_err(|_| "short header".to_owned())?;
    let (found, crc) = parse_header(h, frame.pos)?;
    if found != *frame {
        return Err(format!("header {found:?} is not the indexed {frame:?}"));
    }
    check_crc(h, payload, crc)?;
    buf.drain(..HEADER_BYTES);
    Ok(buf)
}

fn check_crc(h: &[u8; HEADER_BYTES], payload: &[u8], crc: u32) -> Result<(), String> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(payload);
    hasher.update(&h[12..32]);
    let actual = hasher.finalize();
    if actual == crc {
        Ok(())
    } else {
        Err(format!(
            "CRC mismatch (stored {crc:08x}, computed {actual:08x})"
        ))
    }
}

/// What opening a partition found wrong, for the caller to log.
#[derive(Debug, Default)]
pub(crate) struct Repairs {
    /// (segment path, position, bytes cut, why) of torn or corrupt tails cut off.
    pub truncated: Vec<(String, u64, u64, String)>,
    /// (segment path, position, why) of older segments whose frames from there on could
    /// not be indexed (kept on disk, unreadable).
    pub unreadable: Vec<(String, u64, String)>,
}

/// Opens a partition's segments and indexes their frames.
///
/// Every frame header is checked (magic, format, lengths, offsets following on); the
/// last segment, the only one a crash can have cut short, also has every frame's CRC
/// checked, and is truncated at the first frame that fails: a write torn by a crash was
/// never acknowledged. A bad frame in an older segment ends the index of that segment
/// there (its later records become a gap) and is reported.
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
    for (i, base) in bases.into_iter().enumerate() {
        let path = format!("{dir}/{}", layout::segment_name(base));
        let file = files.open(&path, false).map_err(|e| io_error(&path, e))?;
        let len = file.len().map_err(|e| io_error(&path, e))?;
        let last = i + 1 == count;
        let (frames, end, problem) = scan(&*file, base, len, last);
        if let Some(why) = problem {
            if last {
                file.truncate(end).map_err(|e| io_error(&path, e))?;
                repairs.truncated.push((path.clone(), end, len - end, why));
            } else {
                repairs.unreadable.push((path.clone(), end, why));
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
    let frames_end = segments
        .iter()
        .rev()
        .find_map(|s| s.frames.last().map(Frame::end))
        .unwrap_or(0);
    let last_base = segments.last().map_or(0, |s| s.base);
    let first_base = segments
        .iter()
        .find_map(|s| s.frames.first().map(|f| f.base));
    let next_offset = frames_end.max(last_base).max(meta_log_start.unwrap_or(0));
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
            Err(why) => return (frames, pos, stop(why)),
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
                return (frames, pos, stop(why));
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
    /// payloads pass `max_bytes` or they hold `max_records`.
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

    #[test]
    fn a_bad_crc_in_the_last_segment_truncates_and_elsewhere_is_caught_on_read() {
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
        assert_eq!(repairs.truncated.len(), 1);
        assert_eq!(log.next_offset, 3);
        assert_eq!(
            log.segments[0].frames.len(),
            2,
            "older segments: headers only"
        );
        let err = read_frame(&*old, &log.segments[0].frames[1]).unwrap_err();
        assert!(err.contains("CRC"), "{err}");
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
