//! The node's rate state: every counter's previous sample, in memory, one compact record
//! per metrics group.
//!
//! Why not the store: a 48-port interface poll has 816 counters under rate. Writing each as
//! its own key (the original's Redis layout) cost ≈60% of the collector's CPU per poll
//! and ≈1.5 MB of sled log per poll (it filled the disk at 10,000 devices). Here a group's
//! samples are one record, found by a 64-bit hash of the group's partition key, with TTLs
//! kept exactly as the per-key layout would: a sample not refreshed within its TTL is gone.
//!
//! A record is the samples' common timestamp and expiry and then, for the usual group (every
//! value a non-negative integer, one timestamp, one expiry), only the values as varints:
//! which metric each value belongs to is a *layout* (the list of metric names in order)
//! that every group of the same shape shares. Other groups spell out each sample's name and
//! kind. At 10,000 48-port devices that is ≈480,000 records of ≈107 bytes (a 4-byte header
//! and a byte of room included) in 64 KiB chunks, plus a 12-byte index entry each.
//!
//! What is given up: the state lives in the process. A clean shutdown saves it to the
//! store and the next start loads it (see [`RateStore::save`] / [`RateStore::load`]), so
//! a restart costs no rates; a crash costs one interval of rates (the next sample of each
//! counter is treated as a first one), never a wrong rate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use panoptes_storage::{Keyspace, StorageError};

use super::rate::{RateState, RateStateError, Sample};
use super::rate_index::{Index, Key};
use crate::model::{now_ms, MetricValue};
use crate::varint;

const SHARDS: usize = 64;

/// Every counter's previous sample. Shared by all pollers (`Arc`); each group's record is
/// read and rewritten under its shard's lock, so `get_set_group` is atomic per group.
pub struct RateStore {
    shards: Box<[Mutex<Shard>]>,
    /// Metric names by id: records hold ids, not names.
    names: RwLock<Names>,
    /// Layouts by id (taken inside a shard's lock, never the other way round).
    layouts: RwLock<Layouts>,
}

#[derive(Default)]
struct Names {
    ids: HashMap<String, u32>,
    list: Vec<String>,
}

/// The metric ids of a usual group, in order; a record of that shape holds only its values.
/// Id 0 is "no layout": the record names each sample.
#[derive(Default)]
struct Layouts {
    ids: HashMap<Box<[u32]>, u32>,
    list: Vec<Box<[u32]>>,
}

/// Plugins give a few shapes of group; a stream of ever new shapes (a bug, or a plugin
/// naming metrics after data) stops getting layouts here and is stored name by name.
const MAX_LAYOUTS: usize = 4096;

impl Layouts {
    fn names(&self, id: u32) -> Option<&[u32]> {
        self.list
            .get(usize::try_from(id).ok()?.checked_sub(1)?)
            .map(|b| &**b)
    }
}

/// Some of the groups: their records side by side in a few large chunks, found by an
/// index.
///
/// Why not a heap block per record: at 10,000 devices that is ≈480,000 long-lived blocks
/// of ≈130 bytes, each replaced every poll and interleaved with the poll's short-lived
/// allocations, so the allocator could hand few pages back (and paid size-class rounding
/// and a pointer per record). In chunks a record is rewritten in place each poll (it
/// keeps a little room to grow), and a shard grows by whole chunks, never by copying
/// itself into a buffer twice its size.
///
/// A record in a chunk: its header (room `cap` and length `len`, see [`HEADER`]), then
/// `cap` bytes of which the first `len` are the record. The index maps a group's hash to
/// the record's place (chunk << 16 | offset): 12 bytes an entry, where a `u64` key and a
/// full location took 32, in one sorted array (see [`Index`] for why not a hash table).
#[derive(Default)]
struct Shard {
    index: Index,
    chunks: Vec<Vec<u8>>,
    /// Bytes of the chunks no record uses (left by records that moved or went away, and
    /// the unfillable ends of chunks).
    dead: usize,
}

/// Spare bytes given to a record when it is placed: room for one value to grow by a
/// varint byte. Values rarely grow that much (a counter's varint gains a byte when the
/// counter grows 128-fold), so a record seldom outgrows it: at 5,000 devices (`panoptes
/// bench`, 30 s, 120 s) 176 of 240,000 records moved with 1 byte of room, none with 4,
/// and 1 byte instead of 4 held 0.6 MB less (RSS mean 90.9 against 91.5 MB, both runs at
/// once), 1.4 MB at 10,000 devices.
const RECORD_ROOM: u32 = 1;

/// A record's header in its chunk: room and length, u16 LE each, when the room is under
/// [`WIDE`] (every record of a shared chunk); else [`WIDE`] and then room and length as
/// u32 LE (a record in a chunk of its own).
const HEADER: usize = 4;
const WIDE_HEADER: usize = 10;
const WIDE: u16 = u16::MAX;

/// The header of a record with `cap` bytes of room.
fn header_len(cap: u32) -> usize {
    if cap < u32::from(WIDE) {
        HEADER
    } else {
        WIDE_HEADER
    }
}

/// Writes the header of a record with room `cap` and length `len` (at most `cap`) at the
/// start of `dst`, in the form [`header_len`] gives for `cap`.
fn write_header(dst: &mut [u8], cap: u32, len: u32) {
    if header_len(cap) == HEADER {
        // Both under WIDE: `len` is at most `cap`.
        dst[..2].copy_from_slice(&(cap as u16).to_le_bytes());
        dst[2..4].copy_from_slice(&(len as u16).to_le_bytes());
    } else {
        dst[..2].copy_from_slice(&WIDE.to_le_bytes());
        dst[2..6].copy_from_slice(&cap.to_le_bytes());
        dst[6..10].copy_from_slice(&len.to_le_bytes());
    }
}

/// Size of a chunk (a record larger than this gets a chunk of its own size). A place in a
/// chunk is 16 bits.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks a shard may hold (16 bits of a place): 4 GiB of records per shard.
const MAX_CHUNKS: usize = 1 << 16;

/// Why the rate store could not keep or read a group's samples.
#[derive(Debug, thiserror::Error)]
pub enum RateStoreError {
    /// The stored record of a group does not decode.
    #[error("rate state of {group:?}: {source}")]
    Damaged {
        group: String,
        #[source]
        source: RecordError,
    },
    /// A part of a saved snapshot does not decode.
    #[error(transparent)]
    Snapshot(#[from] RecordError),
    #[error("rate record over 4 GiB")]
    TooLarge,
    #[error("rate state full: a shard holds {MAX_CHUNKS} chunks of {CHUNK_BYTES} bytes")]
    Full,
    /// A sample in the spec's text form (`get_set`) that is not `<value>|<timestamp>`.
    #[error("rate state value {value:?} for {key:?}: expected <value>|<timestamp>")]
    BadValue { key: String, value: String },
}

/// What is wrong with a stored record (or a snapshot's), at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record ends at byte {0}")]
    Ends(usize),
    #[error("record ends inside a {len}-byte field at byte {at}")]
    FieldCut { len: usize, at: usize },
    #[error("varint longer than 10 bytes at byte {0}")]
    VarintTooLong(usize),
    #[error("layout id out of range")]
    LayoutOutOfRange,
    #[error("unknown layout {0}")]
    UnknownLayout(u32),
    #[error("name id out of range")]
    NameOutOfRange,
    #[error("unknown value tag {0}")]
    UnknownTag(u8),
    #[error("record length out of range")]
    LengthOutOfRange,
    #[error("record expiry out of range")]
    ExpiryOutOfRange,
    #[error("record longer than the snapshot")]
    PastSnapshot,
    #[error("a sample names an unknown metric")]
    UnknownMetric,
}

fn u16_at(chunk: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(chunk.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(chunk: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(chunk.get(at..at + 4)?.try_into().ok()?))
}

/// The record at `pos` in `chunks`: its chunk, its offset there, its room and its length.
fn header_at(chunks: &[Vec<u8>], pos: u32) -> Option<(&[u8], usize, u32, u32)> {
    let (c, at) = Shard::place(pos);
    let chunk = chunks.get(c)?;
    match u16_at(chunk, at)? {
        WIDE => Some((chunk, at, u32_at(chunk, at + 2)?, u32_at(chunk, at + 6)?)),
        cap => Some((chunk, at, u32::from(cap), u32::from(u16_at(chunk, at + 2)?))),
    }
}

/// The record at `pos` in `chunks`, without its header.
fn body_at(chunks: &[Vec<u8>], pos: u32) -> Option<&[u8]> {
    let (chunk, at, cap, len) = header_at(chunks, pos)?;
    let start = at + header_len(cap);
    chunk.get(start..start + len as usize)
}

impl Shard {
    /// The chunk and offset of a record's header.
    fn place(pos: u32) -> (usize, usize) {
        ((pos >> 16) as usize, (pos & 0xffff) as usize)
    }

    #[cfg(test)]
    fn record(&self, hash: u64) -> Option<&[u8]> {
        body_at(&self.chunks, self.place_of(hash)?)
    }

    /// The place of `hash`'s record, if it has one.
    fn place_of(&self, hash: u64) -> Option<u32> {
        self.index.get(&Key::of(hash)).copied()
    }

    /// Stores `encoded` as the record of `hash`: in place when it fits its room.
    fn put(&mut self, hash: u64, encoded: &[u8]) -> Result<(), RateStoreError> {
        self.put_at(hash, self.place_of(hash), encoded)
    }

    /// [`Self::put`] for a record whose place (`place_of`) the caller has just looked up:
    /// a group's read and write search the index once, not twice.
    fn put_at(
        &mut self,
        hash: u64,
        place: Option<u32>,
        encoded: &[u8],
    ) -> Result<(), RateStoreError> {
        let len = u32::try_from(encoded.len()).map_err(|_| RateStoreError::TooLarge)?;
        let key = Key::of(hash);
        if let Some(pos) = place {
            if let Some((_, at, cap, _)) = header_at(&self.chunks, pos) {
                let header = header_len(cap);
                if len <= cap {
                    let chunk = &mut self.chunks[Shard::place(pos).0];
                    write_header(&mut chunk[at..], cap, len);
                    chunk[at + header..at + header + encoded.len()].copy_from_slice(encoded);
                    return Ok(());
                }
                self.dead += header + cap as usize;
            }
        }
        // Room for a value to grow by a varint byte before the record must move.
        let cap = len.saturating_add(RECORD_ROOM);
        let header = header_len(cap);
        let (c, at) = self.reserve(header + cap as usize)?;
        let chunk = &mut self.chunks[c];
        chunk.resize(at + header + cap as usize, 0);
        write_header(&mut chunk[at..], cap, len);
        chunk[at + header..at + header + encoded.len()].copy_from_slice(encoded);
        self.index.insert(key, pos_of(c, at));
        self.compact_if_sparse();
        Ok(())
    }

    /// (chunk, offset) of `size` free bytes at the end of the last chunk, or of a new one.
    fn reserve(&mut self, size: usize) -> Result<(usize, usize), RateStoreError> {
        let fits = |c: &Vec<u8>| c.capacity() - c.len() >= size && c.len() < CHUNK_BYTES;
        match self.chunks.last() {
            Some(last) if fits(last) => {}
            last => {
                if self.chunks.len() >= MAX_CHUNKS {
                    return Err(RateStoreError::Full);
                }
                self.dead += last.map_or(0, |c| c.capacity() - c.len());
                self.chunks.push(Vec::with_capacity(CHUNK_BYTES.max(size)));
            }
        }
        let c = self.chunks.len() - 1;
        Ok((c, self.chunks[c].len()))
    }

    /// Drops the records whose every sample has expired; returns how many.
    fn sweep(&mut self, now: u64) -> usize {
        let before = self.index.len();
        let mut dead = 0;
        let chunks = &self.chunks;
        self.index.retain(|_, &mut pos| {
            let Some((_, _, cap, _)) = header_at(chunks, pos) else {
                return false;
            };
            let live = body_at(chunks, pos)
                .and_then(|body| record_expiry(body).ok())
                .is_some_and(|expires| expires > now);
            if !live {
                dead += header_len(cap) + cap as usize;
            }
            live
        });
        self.dead += dead;
        self.compact_if_sparse();
        before - self.index.len()
    }

    /// Moves the live records into fresh chunks once half of the bytes are dead.
    fn compact_if_sparse(&mut self) {
        let total: usize = self.chunks.iter().map(Vec::capacity).sum();
        if self.chunks.len() < 2 || self.dead * 2 < total {
            return;
        }
        let old = std::mem::take(&mut self.chunks);
        self.dead = 0;
        let mut places: Vec<(Key, u32)> = self.index.iter().collect();
        places.sort_unstable_by_key(|&(_, p)| p);
        for (key, pos) in places {
            let bytes = header_at(&old, pos)
                .and_then(|(chunk, at, cap, _)| chunk.get(at..at + header_len(cap) + cap as usize));
            // Cannot fail to fit: the new chunks hold less than the old ones did.
            let moved = bytes.and_then(|bytes| Some((bytes, self.reserve(bytes.len()).ok()?)));
            match moved {
                Some((bytes, (c, at))) => {
                    self.chunks[c].extend_from_slice(bytes);
                    self.index.insert(key, pos_of(c, at));
                }
                None => {
                    self.index.remove(&key);
                }
            }
        }
    }
}

/// The index's form of a place (`reserve` keeps chunks under [`MAX_CHUNKS`] and offsets
/// under [`CHUNK_BYTES`]).
fn pos_of(chunk: usize, at: usize) -> u32 {
    debug_assert!(chunk < MAX_CHUNKS && at < CHUNK_BYTES);
    ((chunk as u32) << 16) | (at as u32 & 0xffff)
}

/// One decoded sample of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    name: u32,
    sample: Sample,
    expires_ms: u64,
}

impl Default for RateStore {
    fn default() -> Self {
        RateStore::new()
    }
}

impl RateStore {
    pub fn new() -> RateStore {
        RateStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            names: RwLock::default(),
            layouts: RwLock::default(),
        }
    }

    /// Groups held (live or not yet swept).
    pub fn groups(&self) -> usize {
        self.shards.iter().map(|s| lock(s).index.len()).sum()
    }

    /// Heap bytes the rate state holds: its chunks, its indexes (entries and spare room),
    /// the metric names and the layouts.
    pub fn heap_bytes(&self) -> u64 {
        let shards: usize = self
            .shards
            .iter()
            .map(|s| {
                let s = lock(s);
                s.chunks.iter().map(Vec::capacity).sum::<usize>()
                    + s.chunks.capacity() * std::mem::size_of::<Vec<u8>>()
                    + s.index.heap_bytes()
            })
            .sum();
        let names = self.names.read().map_or(0, |n| {
            n.list.iter().map(|s| 2 * s.capacity() + 40).sum::<usize>()
        });
        let layouts = self.layouts.read().map_or(0, |l| {
            l.list.iter().map(|b| 2 * (4 * b.len() + 24)).sum::<usize>()
        });
        (shards + names + layouts) as u64
    }

    /// Drops the groups whose every sample has expired; returns how many.
    pub fn sweep(&self) -> usize {
        let now = now_ms();
        self.shards.iter().map(|s| lock(s).sweep(now)).sum()
    }

    fn name_id(&self, name: &str) -> u32 {
        if let Some(&id) = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .get(name)
        {
            return id;
        }
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = names.ids.get(name) {
            return id;
        }
        // Names come from plugin configurations: a few hundred at most.
        let id = u32::try_from(names.list.len()).unwrap_or(u32::MAX);
        names.list.push(name.to_string());
        names.ids.insert(name.to_string(), id);
        id
    }

    /// [`RateStore::name_id`] of every sample's name, under one read lock when all are
    /// known (a group's seventeen names took seventeen locks).
    fn name_ids(&self, samples: &[(&str, Sample)], ids: &mut Vec<u32>) {
        ids.clear();
        let known = {
            let names = self.names.read().unwrap_or_else(|p| p.into_inner());
            samples
                .iter()
                .try_for_each(|(n, _)| names.ids.get(*n).map(|&id| ids.push(id)))
                .is_some()
        };
        if !known {
            ids.clear();
            ids.extend(samples.iter().map(|(n, _)| self.name_id(n)));
        }
    }

    /// The layout of these metric ids, made if new (0 when the table is full).
    fn layout_id(&self, names: &[u32]) -> u32 {
        let read = |l: &Layouts| l.ids.get(names).copied();
        if let Some(id) = read(&self.layouts.read().unwrap_or_else(|p| p.into_inner())) {
            return id;
        }
        let mut layouts = self.layouts.write().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = read(&layouts) {
            return id;
        }
        if layouts.list.len() >= MAX_LAYOUTS {
            return 0;
        }
        layouts.list.push(names.into());
        let id = u32::try_from(layouts.list.len()).unwrap_or(0);
        layouts.ids.insert(names.into(), id);
        id
    }

    /// The record of `entries`: by layout when they have the usual shape.
    fn encode(&self, entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + entries.len() * 9);
        self.encode_into(entries, &mut Vec::new(), &mut out);
        out
    }

    /// [`RateStore::encode`] into `out` (cleared first), with `names` as room for the
    /// layout's names.
    fn encode_into(&self, entries: &[Entry], names: &mut Vec<u32>, out: &mut Vec<u8>) {
        out.clear();
        if usual_shape(entries) {
            names.clear();
            names.extend(entries.iter().map(|e| e.name));
            let layout = self.layout_id(names);
            if layout != 0 {
                return encode_by_layout(entries, layout, out);
            }
        }
        encode_named(entries, out, Form::Record);
    }

    fn decode(&self, record: &[u8]) -> Result<Vec<Entry>, RecordError> {
        let mut out = Vec::new();
        self.decode_into(record, &mut out)?;
        Ok(out)
    }

    /// [`RateStore::decode`] into `out` (cleared first).
    fn decode_into(&self, record: &[u8], out: &mut Vec<Entry>) -> Result<(), RecordError> {
        out.clear();
        let mut r = Reader::new(record);
        let (ts, expires_ms) = r.record_head()?;
        let layout = u32::try_from(r.varint()?).map_err(|_| RecordError::LayoutOutOfRange)?;
        if layout == 0 {
            return decode_named_into(r, ts, expires_ms, out);
        }
        let layouts = self.layouts.read().unwrap_or_else(|p| p.into_inner());
        let names = layouts
            .names(layout)
            .ok_or(RecordError::UnknownLayout(layout))?;
        out.reserve(names.len());
        for &name in names {
            out.push(Entry {
                name,
                sample: Sample {
                    value: MetricValue::Int(i128::from(r.varint()?) - 1),
                    ts,
                },
                expires_ms,
            });
        }
        Ok(())
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        // The top six bits; a shard's index is sorted by the whole hash.
        &self.shards[(hash >> 58) as usize % SHARDS]
    }
}

/// Keys of a saved snapshot in its keyspace.
const SNAPSHOT_NAMES: &[u8] = b"snapshot/names";
const SNAPSHOT_SHARD: &str = "snapshot/shard/";

impl RateStore {
    /// Saves every live group to `keyspace` (one value per shard, plus the metric names),
    /// each expiring with its latest sample; for a clean shutdown. Returns the groups saved.
    /// Snapshots name every sample (no layouts), so any version reads them.
    pub fn save(&self, keyspace: &Keyspace) -> Result<usize, StorageError> {
        let now = now_ms();
        let names = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .list
            .join("\n");
        let mut saved = 0;
        let mut latest = now;
        for (i, shard) in self.shards.iter().enumerate() {
            let mut out = Vec::new();
            let mut expires = now;
            let shard = lock(shard);
            let mut record = Vec::new();
            for (key, pos) in shard.index.iter() {
                let Some(entries) = body_at(&shard.chunks, pos).and_then(|b| self.decode(b).ok())
                else {
                    continue;
                };
                let Some(latest) = entries.iter().map(|e| e.expires_ms).max() else {
                    continue;
                };
                if latest <= now {
                    continue;
                }
                record.clear();
                encode_named(&entries, &mut record, Form::Snapshot);
                out.extend_from_slice(&key.hash64().to_le_bytes());
                varint::put(&mut out, record.len() as u64);
                out.extend_from_slice(&record);
                expires = expires.max(latest);
                saved += 1;
            }
            if !out.is_empty() {
                let ttl = Duration::from_millis(expires - now);
                keyspace.put(format!("{SNAPSHOT_SHARD}{i}").as_bytes(), &out, Some(ttl))?;
                latest = latest.max(expires);
            }
        }
        keyspace.put(
            SNAPSHOT_NAMES,
            names.as_bytes(),
            Some(Duration::from_millis(latest - now)),
        )?;
        Ok(saved)
    }

    /// Loads (and removes) a snapshot [`save`](Self::save) left in `keyspace`; samples
    /// expired since are dropped. A damaged snapshot is logged and skipped: the next
    /// samples then count as first ones. Returns the groups loaded.
    pub fn load(&self, keyspace: &Keyspace) -> Result<usize, StorageError> {
        let Some(names) = keyspace.get(SNAPSHOT_NAMES)? else {
            return Ok(0);
        };
        let names = String::from_utf8_lossy(&names);
        let ids: Vec<u32> = names.split('\n').map(|n| self.name_id(n)).collect();
        let now = now_ms();
        let mut loaded = 0;
        for (key, value) in keyspace.scan_prefix(SNAPSHOT_SHARD.as_bytes())? {
            match self.load_shard(&value, &ids, now) {
                Ok(n) => loaded += n,
                Err(e) => tracing::warn!(key = %key.escape_ascii(), error = %e,
                    "skipping a damaged part of the saved rate state"),
            }
            keyspace.delete(&key)?;
        }
        keyspace.delete(SNAPSHOT_NAMES)?;
        Ok(loaded)
    }

    fn load_shard(&self, raw: &[u8], ids: &[u32], now: u64) -> Result<usize, RateStoreError> {
        let mut r = Reader::new(raw);
        let mut loaded = 0;
        while r.at < raw.len() {
            let hash = u64::from_le_bytes(r.array()?);
            let len = usize::try_from(r.varint()?).map_err(|_| RecordError::LengthOutOfRange)?;
            let data = r
                .data
                .get(r.at..r.at.saturating_add(len))
                .ok_or(RecordError::PastSnapshot)?;
            r.at += len;
            let mut d = Reader::new(data);
            let (ts, exp) = d.snapshot_head()?;
            let mut entries = decode_named(d, ts, exp)?;
            entries.retain(|e| e.expires_ms > now);
            for e in &mut entries {
                e.name = *usize::try_from(e.name)
                    .ok()
                    .and_then(|i| ids.get(i))
                    .ok_or(RecordError::UnknownMetric)?;
            }
            if entries.is_empty() {
                continue;
            }
            let mut shard = lock(self.shard(hash));
            if !shard.index.contains_key(&Key::of(hash)) {
                shard.put(hash, &self.encode(&entries))?;
            }
            loaded += 1;
        }
        Ok(loaded)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A record is replaced whole after it was built: a panic cannot leave one half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// FNV-1a, 64 bits: stable across builds and processes (the snapshot keeps the hashes).
/// At 500,000 groups the chance of any two colliding is about 1 in 10^8.
fn hash64(bytes: &[u8]) -> u64 {
    crate::hash::fnv1a(bytes)
}

impl RateState for RateStore {
    /// One key at a time (the spec's layout): kept for callers of the trait that have a
    /// single key; the pipeline uses `get_set_group`.
    fn get_set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<String>, RateStateError> {
        let (group, name) = key.rsplit_once('|').unwrap_or(("", key));
        let sample = super::rate::parse_sample(value).ok_or_else(|| RateStoreError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
        })?;
        let previous = self.get_set_group(group, &[(name, sample)], ttl)?;
        Ok(previous
            .into_iter()
            .next()
            .flatten()
            .map(|s| super::rate::format_sample(&s)))
    }

    fn get_set_group(
        &self,
        group_key: &str,
        samples: &[(&str, Sample)],
        ttl: Duration,
    ) -> Result<Vec<Option<Sample>>, RateStateError> {
        let now = now_ms();
        let expires_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        // The lists of a group's work, kept by the thread from one group to the next (they
        // were four allocations a group).
        thread_local! {
            static SCRATCH: RefCell<Scratch> = RefCell::default();
        }
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.get_set_in(group_key, samples, now, expires_ms, &mut scratch),
            Err(_) => self.get_set_in(group_key, samples, now, expires_ms, &mut Scratch::default()),
        })
    }
}

/// Room for [`RateStore::get_set_in`]'s lists.
#[derive(Default)]
struct Scratch {
    ids: Vec<u32>,
    entries: Vec<Entry>,
    names: Vec<u32>,
    record: Vec<u8>,
}

impl RateStore {
    fn get_set_in(
        &self,
        group_key: &str,
        samples: &[(&str, Sample)],
        now: u64,
        expires_ms: u64,
        scratch: &mut Scratch,
    ) -> Result<Vec<Option<Sample>>, RateStateError> {
        let Scratch {
            ids,
            entries,
            names,
            record,
        } = scratch;
        self.name_ids(samples, ids);
        let hash = hash64(group_key.as_bytes());
        let mut shard = lock(self.shard(hash));
        let place = shard.place_of(hash);
        match place.and_then(|pos| body_at(&shard.chunks, pos)) {
            Some(r) => self
                .decode_into(r, entries)
                .map_err(|source| RateStoreError::Damaged {
                    group: group_key.to_owned(),
                    source,
                })?,
            None => entries.clear(),
        }
        entries.retain(|e| e.expires_ms > now);
        let mut previous = Vec::with_capacity(samples.len());
        for (&name, (_, sample)) in ids.iter().zip(samples) {
            let new = Entry {
                name,
                sample: *sample,
                expires_ms,
            };
            match entries.iter_mut().find(|e| e.name == name) {
                Some(e) => previous.push(Some(std::mem::replace(e, new).sample)),
                None => {
                    entries.push(new);
                    previous.push(None);
                }
            }
        }
        self.encode_into(entries, names, record);
        shard.put_at(hash, place, record)?;
        Ok(previous)
    }
}

// A record: the first sample's timestamp and expiry (see `put_record_head`), then a layout
// id (varint). Layout 0: per sample its name id (varint), a tag byte, the value, then the
// sample's own timestamp and expiry when they differ from the first's (flag bits of the
// tag). Any other layout: the layout's values plus one, varints, all with the first
// timestamp and expiry (plus one: the interface plugin gives -1 for a counter the device
// does not have, three of the seventeen an interface group rates, and those groups were
// spelled out name by name, 146 bytes a record instead of 112). A snapshot's record is
// the layout-0 form without the layout id, after the timestamp (f64 LE) and expiry (u64 LE)
// (the format of older versions).
/// The values a record by layout holds (as varints of the value plus one).
const LAYOUT_VALUES: std::ops::RangeInclusive<i128> = -1..=(u64::MAX as i128 - 1);

const TAG_UINT: u8 = 0; // varint
const TAG_NEG: u8 = 1; // varint of -(v + 1)
const TAG_FLOAT: u8 = 2; // f64 LE
const TAG_BIG: u8 = 3; // i128 LE
const FLAG_OWN_TS: u8 = 0x10;
const FLAG_OWN_EXPIRY: u8 = 0x20;

/// Every value a non-negative integer in 64 bits, one timestamp and one expiry.
fn usual_shape(entries: &[Entry]) -> bool {
    let Some(first) = entries.first() else {
        return false;
    };
    entries.iter().all(|e| {
        matches!(e.sample.value, MetricValue::Int(i) if LAYOUT_VALUES.contains(&i))
            && e.sample.ts.to_bits() == first.sample.ts.to_bits()
            && e.expires_ms == first.expires_ms
    })
}

fn encode_by_layout(entries: &[Entry], layout: u32, out: &mut Vec<u8>) {
    out.reserve(17 + entries.len() * 7);
    if let Some(first) = entries.first() {
        put_record_head(out, first.sample.ts, first.expires_ms);
    }
    varint::put(out, u64::from(layout));
    for e in entries {
        if let MetricValue::Int(i) = e.sample.value {
            varint::put(out, u64::try_from(i + 1).unwrap_or(0));
        }
    }
}

/// Where a named record goes: the rate store (compact head, layout 0) or a snapshot
/// (the older versions' wide head, no layout id, so any version reads it).
#[derive(Clone, Copy)]
enum Form {
    Record,
    Snapshot,
}

/// The named form of `entries`, as `form` asks.
fn encode_named(entries: &[Entry], out: &mut Vec<u8>, form: Form) {
    let (ts0, exp0) = entries
        .first()
        .map_or((0.0, 0), |e| (e.sample.ts, e.expires_ms));
    match form {
        Form::Record => {
            put_record_head(out, ts0, exp0);
            out.push(0);
        }
        Form::Snapshot => put_snapshot_head(out, ts0, exp0),
    }
    for e in entries {
        varint::put(out, u64::from(e.name));
        let mut flags = 0;
        if e.sample.ts.to_bits() != ts0.to_bits() {
            flags |= FLAG_OWN_TS;
        }
        if e.expires_ms != exp0 {
            flags |= FLAG_OWN_EXPIRY;
        }
        match e.sample.value {
            MetricValue::Int(i) if (0..=i128::from(u64::MAX)).contains(&i) => {
                out.push(TAG_UINT | flags);
                varint::put(out, i as u64);
            }
            MetricValue::Int(i) if (i128::from(i64::MIN)..0).contains(&i) => {
                out.push(TAG_NEG | flags);
                varint::put(out, (-(i + 1)) as u64);
            }
            MetricValue::Int(i) => {
                out.push(TAG_BIG | flags);
                out.extend_from_slice(&i.to_le_bytes());
            }
            MetricValue::Float(f) => {
                out.push(TAG_FLOAT | flags);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        if flags & FLAG_OWN_TS != 0 {
            out.extend_from_slice(&e.sample.ts.to_le_bytes());
        }
        if flags & FLAG_OWN_EXPIRY != 0 {
            varint::put(out, e.expires_ms);
        }
    }
}

/// The samples of the named form, read from after the first timestamp and expiry (`ts0`,
/// `exp0`) to the end.
fn decode_named(r: Reader<'_>, ts0: f64, exp0: u64) -> Result<Vec<Entry>, RecordError> {
    let mut out = Vec::new();
    decode_named_into(r, ts0, exp0, &mut out)?;
    Ok(out)
}

/// [`decode_named`] appended to `out`.
fn decode_named_into(
    mut r: Reader<'_>,
    ts0: f64,
    exp0: u64,
    out: &mut Vec<Entry>,
) -> Result<(), RecordError> {
    // An entry takes three bytes at least (name, tag, value): room for all of them at
    // once instead of growing the list four or five times a group.
    out.reserve(r.data.len().saturating_sub(r.at) / 3);
    while r.at < r.data.len() {
        let name = u32::try_from(r.varint()?).map_err(|_| RecordError::NameOutOfRange)?;
        let tag = r.byte()?;
        let value = match tag & 0x0f {
            TAG_UINT => MetricValue::Int(i128::from(r.varint()?)),
            TAG_NEG => MetricValue::Int(-i128::from(r.varint()?) - 1),
            TAG_FLOAT => MetricValue::Float(f64::from_le_bytes(r.array()?)),
            TAG_BIG => MetricValue::Int(i128::from_le_bytes(r.array()?)),
            other => return Err(RecordError::UnknownTag(other)),
        };
        let ts = if tag & FLAG_OWN_TS != 0 {
            f64::from_le_bytes(r.array()?)
        } else {
            ts0
        };
        let expires_ms = if tag & FLAG_OWN_EXPIRY != 0 {
            r.varint()?
        } else {
            exp0
        };
        out.push(Entry {
            name,
            sample: Sample { value, ts },
            expires_ms,
        });
    }
    Ok(())
}

/// When a record's last sample expires (ms since the epoch), without the layouts: a
/// layout's samples share the first one's expiry.
fn record_expiry(record: &[u8]) -> Result<u64, RecordError> {
    let mut r = Reader::new(record);
    let (ts, exp) = r.record_head()?;
    if r.varint()? != 0 {
        return Ok(exp);
    }
    Ok(decode_named(r, ts, exp)?
        .iter()
        .map(|e| e.expires_ms)
        .max()
        .unwrap_or(0))
}

/// A snapshot record's first timestamp (f64 LE) and expiry (u64 LE); see
/// [`Reader::snapshot_head`].
fn put_snapshot_head(out: &mut Vec<u8>, ts: f64, expires_ms: u64) {
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&expires_ms.to_le_bytes());
}

/// A record's first timestamp (f64 LE, exact) and then its expiry as a varint: the
/// milliseconds after the timestamp plus one (a TTL: 3 bytes, where a u64 took 8), or 0
/// and the expiry as u64 LE when it is not after the timestamp's millisecond or too far
/// after it; see [`Reader::record_head`].
fn put_record_head(out: &mut Vec<u8>, ts: f64, expires_ms: u64) {
    out.extend_from_slice(&ts.to_le_bytes());
    match expires_ms
        .checked_sub(ts_ms(ts))
        .and_then(|d| d.checked_add(1))
    {
        Some(d) => varint::put(out, d),
        None => {
            out.push(0);
            out.extend_from_slice(&expires_ms.to_le_bytes());
        }
    }
}

/// The millisecond a sample's timestamp (seconds) falls in, as the record's expiry is
/// counted from: the same for the same bits on both sides (0 for a negative or NaN one).
fn ts_ms(ts: f64) -> u64 {
    // `as` saturates and maps NaN to 0.
    (ts * 1000.0) as u64
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, at: 0 }
    }
}

impl Reader<'_> {
    /// A snapshot record's first timestamp and expiry (see [`put_snapshot_head`]).
    fn snapshot_head(&mut self) -> Result<(f64, u64), RecordError> {
        Ok((
            f64::from_le_bytes(self.array()?),
            u64::from_le_bytes(self.array()?),
        ))
    }

    /// A record's first timestamp and expiry (see [`put_record_head`]).
    fn record_head(&mut self) -> Result<(f64, u64), RecordError> {
        let ts = f64::from_le_bytes(self.array()?);
        let expires_ms = match self.varint()? {
            0 => u64::from_le_bytes(self.array()?),
            d => ts_ms(ts)
                .checked_add(d - 1)
                .ok_or(RecordError::ExpiryOutOfRange)?,
        };
        Ok((ts, expires_ms))
    }

    fn byte(&mut self) -> Result<u8, RecordError> {
        let b = *self.data.get(self.at).ok_or(RecordError::Ends(self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let bytes: [u8; N] = self
            .data
            .get(self.at..self.at + N)
            .and_then(|b| b.try_into().ok())
            .ok_or(RecordError::FieldCut {
                len: N,
                at: self.at,
            })?;
        self.at += N;
        Ok(bytes)
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        varint::read(self.data, &mut self.at).map_err(|e| match e {
            varint::ReadError::Ends => RecordError::Ends(self.at),
            varint::ReadError::TooLong => RecordError::VarintTooLong(self.at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` samples named 0.., each of value `h % 100`, expiring at `exp`.
    fn entries(h: u64, n: usize, exp: u64) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                name: i as u32,
                sample: s(MetricValue::Int(i128::from(h % 100)), 1.0),
                expires_ms: exp,
            })
            .collect()
    }

    /// The layout-0 record of [`entries`] (expiring before its timestamp's millisecond:
    /// the head's full form, 17 bytes): 18 + 3n bytes.
    fn body(h: u64, n: usize, exp: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_named(&entries(h, n, exp), &mut out, Form::Record);
        out
    }

    #[test]
    fn a_shard_rewrites_in_place_moves_what_outgrows_and_compacts() {
        let mut shard = Shard::default();
        // Enough 201-byte records (206 with header and room) for several chunks.
        let placed = HEADER + 201 + RECORD_ROOM as usize;
        for h in 0..2_000u64 {
            shard.put(h, &body(h, 61, 10)).unwrap();
        }
        assert!(shard.chunks.len() > 1);
        let pos = |s: &Shard, h: u64| s.index[&Key::of(h)];
        // Same size, or within the room: rewritten where it is.
        let before = (pos(&shard, 7), shard.dead);
        shard.put(7, &body(7, 61, 20)).unwrap();
        assert_eq!((pos(&shard, 7), shard.dead), before);
        assert_eq!(shard.record(7).unwrap(), &body(7, 61, 20)[..]);
        // One value grown by a varint byte (a byte of room: that much fits).
        let grown = {
            let mut grown = entries(7, 61, 20);
            grown[0].sample.value = MetricValue::Int(200);
            let mut out = Vec::new();
            encode_named(&grown, &mut out, Form::Record);
            out
        };
        assert_eq!(grown.len(), body(7, 61, 20).len() + RECORD_ROOM as usize);
        shard.put(7, &grown).unwrap();
        assert_eq!((pos(&shard, 7), shard.dead), before);
        assert_eq!(shard.record(7).unwrap(), &grown[..]);
        // Larger: moved to the end; its old place is dead.
        shard.put(8, &body(8, 100, 20)).unwrap();
        assert_ne!(pos(&shard, 8), before.0);
        assert!(shard.dead >= placed, "{}", shard.dead);
        assert_eq!(shard.record(8).unwrap(), &body(8, 100, 20)[..]);
        // Expiring most records leaves the chunks sparse: they are compacted, and what
        // is left still reads back.
        for h in (0..2_000u64).filter(|h| h % 4 != 0 && *h != 7) {
            shard.put(h, &body(h, 61, 5)).unwrap();
        }
        let chunks_before = shard.chunks.len();
        assert_eq!(shard.sweep(6), 1_500 - 1);
        // Compacted: only the unfillable ends of the new chunks are dead.
        assert!(shard.dead < placed * shard.chunks.len(), "{}", shard.dead);
        assert!(shard.chunks.len() < chunks_before);
        for h in (0..2_000u64).filter(|h| h % 4 == 0 && *h != 8) {
            assert_eq!(shard.record(h).unwrap(), &body(h, 61, 10)[..], "record {h}");
        }
        assert_eq!(shard.record(8).unwrap(), &body(8, 100, 20)[..]);
        assert_eq!(shard.record(7).unwrap(), &grown[..], "7 was refreshed");
        assert_eq!(shard.index.len(), 501);
        // Past the records' expiry, all go, and the chunks with them.
        assert_eq!(shard.sweep(21), 501);
        assert!(shard.chunks.len() <= 1);
    }

    #[test]
    fn a_record_larger_than_a_chunk_gets_one_of_its_own() {
        let mut shard = Shard::default();
        shard.put(1, &body(1, 10, 10)).unwrap();
        let big = body(2, 30_000, 10);
        assert!(big.len() > CHUNK_BYTES);
        shard.put(2, &big).unwrap();
        shard.put(3, &body(3, 10, 10)).unwrap();
        assert_eq!(shard.chunks.len(), 3);
        assert_eq!(shard.record(2).unwrap(), &big[..]);
        // Its header is the wide one (room over 16 bits), rewritten in place.
        let (c, at) = Shard::place(shard.index[&Key::of(2)]);
        assert_eq!(shard.chunks[c][at..at + 2], [0xff, 0xff]);
        assert_eq!(
            shard.chunks[c].len(),
            WIDE_HEADER + big.len() + RECORD_ROOM as usize
        );
        let smaller = body(5, 29_999, 10);
        shard.put(2, &smaller).unwrap();
        assert_eq!(shard.record(2).unwrap(), &smaller[..]);
        assert_eq!(Shard::place(shard.index[&Key::of(2)]), (c, at));
        assert_eq!(shard.record(3).unwrap(), &body(3, 10, 10)[..]);
        assert_eq!(shard.record(1).unwrap(), &body(1, 10, 10)[..]);
    }

    fn s(value: MetricValue, ts: f64) -> Sample {
        Sample { value, ts }
    }

    /// A poll's timestamp (seconds) and its samples' expiry 180 s later (ms).
    const TS: f64 = 1_765_000_000.25;
    const EXPIRES: u64 = 1_765_000_180_250;

    #[test]
    fn a_record_head_keeps_any_timestamp_and_expiry_exactly() {
        let head = |ts: f64, exp: u64| {
            let mut out = Vec::new();
            put_record_head(&mut out, ts, exp);
            let mut r = Reader::new(&out);
            let got = r.record_head().unwrap();
            assert_eq!(r.at, out.len());
            assert_eq!((got.0.to_bits(), got.1), (ts.to_bits(), exp), "{ts} {exp}");
            out.len()
        };
        // A TTL after the timestamp: 8 bytes and a varint.
        assert_eq!(head(TS, EXPIRES), 8 + 3);
        assert_eq!(
            head(TS, 1_765_000_000_250),
            8 + 1,
            "expiring at its own millisecond"
        );
        assert_eq!(head(0.0, 0), 8 + 1);
        // Anything else in full: before the timestamp, too far after it, odd timestamps.
        assert_eq!(head(TS, 1_765_000_000_249), 8 + 1 + 8);
        assert_eq!(head(0.0, u64::MAX), 8 + 1 + 8);
        assert_eq!(head(1.0, u64::MAX), 8 + 10);
        for ts in [-5.5, f64::NAN, f64::INFINITY, f64::MAX, 1e-300, 0.0005] {
            head(ts, EXPIRES);
            head(ts, 0);
            head(ts, u64::MAX);
        }
        // A varint past u64 from the timestamp's millisecond is damage, not a wrap.
        let mut out = TS.to_le_bytes().to_vec();
        varint::put(&mut out, u64::MAX);
        assert_eq!(
            Reader::new(&out).record_head(),
            Err(RecordError::ExpiryOutOfRange)
        );
    }

    #[test]
    fn a_snapshot_in_the_older_versions_format_loads() {
        // One shard, one group: hash, length, then ts (f64 LE) and expiry (u64 LE) and
        // each sample's name id, tag and value, as every version has written it.
        let expires = now_ms() + 600_000;
        let mut record = 5.0f64.to_le_bytes().to_vec();
        record.extend_from_slice(&expires.to_le_bytes());
        record.extend_from_slice(&[1, TAG_UINT, 42, 0, TAG_NEG, 0]);
        let hash = hash64(b"dev|if|1");
        let mut shard = hash.to_le_bytes().to_vec();
        varint::put(&mut shard, record.len() as u64);
        shard.extend_from_slice(&record);
        let ks = panoptes_storage::Store::temporary()
            .unwrap()
            .keyspace("rate_state")
            .unwrap();
        ks.put(SNAPSHOT_NAMES, b"in\nout", None).unwrap();
        ks.put(format!("{SNAPSHOT_SHARD}3").as_bytes(), &shard, None)
            .unwrap();
        let store = RateStore::new();
        assert_eq!(store.load(&ks).unwrap(), 1);
        let previous = store
            .get_set_group(
                "dev|if|1",
                &[
                    ("in", s(MetricValue::Int(0), 6.0)),
                    ("out", s(MetricValue::Int(0), 6.0)),
                ],
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(
            previous,
            vec![
                Some(s(MetricValue::Int(-1), 5.0)),
                Some(s(MetricValue::Int(42), 5.0))
            ]
        );
    }

    #[test]
    fn records_round_trip_every_kind_of_value() {
        let values = [
            MetricValue::Int(0),
            MetricValue::Int(u64::MAX as i128),
            MetricValue::Int(-1),
            MetricValue::Int(i64::MIN as i128),
            MetricValue::Int(i128::MAX),
            MetricValue::Int(i128::MIN),
            MetricValue::Float(-2.5),
            MetricValue::Float(f64::INFINITY),
        ];
        let entries: Vec<Entry> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| Entry {
                name: i as u32 * 300,
                sample: s(v, if i % 3 == 0 { 1.5 } else { 7.25 }),
                expires_ms: if i % 2 == 0 { 10 } else { 1 << 40 },
            })
            .collect();
        let store = RateStore::new();
        assert_eq!(store.decode(&store.encode(&entries)).unwrap(), entries);
        assert_eq!(store.decode(&store.encode(&[])).unwrap(), vec![]);
        assert_eq!(
            store.decode(&[1, 2, 3]),
            Err(RecordError::FieldCut { len: 8, at: 0 })
        );
        // The usual shape goes by layout: only the values, and the layout is shared. Its
        // head: the timestamp and a 180 s TTL (3 bytes).
        const HEAD: usize = 8 + 3;
        let usual: Vec<Entry> = (0..17u32)
            .map(|i| Entry {
                name: i,
                sample: s(MetricValue::Int(1 << 40), TS),
                expires_ms: EXPIRES,
            })
            .collect();
        let record = store.encode(&usual);
        assert_eq!(record.len(), HEAD + 1 + 17 * 6);
        assert_eq!(store.decode(&record).unwrap(), usual);
        assert_eq!(record_expiry(&record), Ok(EXPIRES));
        assert_eq!(store.encode(&usual), record);
        assert_eq!(store.layouts.read().unwrap().list.len(), 1);
        assert_eq!(
            store.decode(&record[..record.len() - 1]),
            Err(RecordError::Ends(record.len() - 1))
        );
        // An interface group's "no such counter" (-1) and the largest counters keep the
        // layout; what is outside its range is spelled out, and both round trip.
        let edges = |values: [i128; 3]| -> Vec<Entry> {
            (0..17u32)
                .map(|i| Entry {
                    name: i,
                    sample: s(MetricValue::Int(values[i as usize % 3]), TS),
                    expires_ms: EXPIRES,
                })
                .collect()
        };
        let usual_edges = edges([-1, 0, u64::MAX as i128 - 1]);
        let record = store.encode(&usual_edges);
        assert_ne!(record[HEAD], 0, "by layout");
        // Head, layout, six 0s and six 1s of one byte each, five u64::MAX of ten.
        assert_eq!(record.len(), HEAD + 1 + 12 + 5 * 10);
        assert_eq!(store.decode(&record).unwrap(), usual_edges);
        for outside in [edges([-2, 0, 0]), edges([0, 0, u64::MAX as i128])] {
            let record = store.encode(&outside);
            assert_eq!(record[HEAD], 0, "named");
            assert_eq!(store.decode(&record).unwrap(), outside);
        }
        // An unknown layout is an error, not a panic.
        let record = store.encode(&usual);
        let mut unknown = record.clone();
        unknown[HEAD] = 9;
        assert_eq!(store.decode(&unknown), Err(RecordError::UnknownLayout(9)));
        assert_eq!(
            record_expiry(&store.encode(&entries)),
            Ok(1 << 40),
            "the latest sample's"
        );
    }

    #[test]
    fn layouts_stop_at_their_limit_and_records_still_round_trip() {
        let store = RateStore::new();
        for n in 0..(MAX_LAYOUTS as u32 + 10) {
            let entries = [Entry {
                name: n,
                sample: s(MetricValue::Int(5), 1.0),
                expires_ms: 9,
            }];
            let record = store.encode(&entries);
            assert_eq!(store.decode(&record).unwrap(), entries);
        }
        assert_eq!(store.layouts.read().unwrap().list.len(), MAX_LAYOUTS);
    }

    #[test]
    fn a_group_returns_the_previous_samples_in_order() {
        let store = RateStore::new();
        let ttl = Duration::from_secs(180);
        let first = [
            ("a", s(MetricValue::Int(1), 10.0)),
            ("b", s(MetricValue::Int(2), 10.0)),
        ];
        assert_eq!(
            store.get_set_group("g", &first, ttl).unwrap(),
            vec![None, None]
        );
        let second = [
            ("b", s(MetricValue::Int(5), 70.0)),
            ("c", s(MetricValue::Float(0.5), 70.0)),
        ];
        assert_eq!(
            store.get_set_group("g", &second, ttl).unwrap(),
            vec![Some(first[1].1), None]
        );
        // "a" was not refreshed but has not expired: still there.
        assert_eq!(
            store.get_set_group("g", &first[..1], ttl).unwrap(),
            vec![Some(first[0].1)]
        );
        // The same name twice in one call sees its own first sample, as two GETSETs would.
        let twice = [
            ("b", s(MetricValue::Int(6), 80.0)),
            ("b", s(MetricValue::Int(7), 80.0)),
        ];
        assert_eq!(
            store.get_set_group("g", &twice, ttl).unwrap(),
            vec![Some(second[0].1), Some(twice[0].1)]
        );
        assert_eq!(
            store.get_set_group("other", &first, ttl).unwrap(),
            vec![None, None]
        );
        assert_eq!(store.groups(), 2);
    }

    #[test]
    fn expired_samples_are_gone_and_swept() {
        let store = RateStore::new();
        let sample = [("a", s(MetricValue::Int(1), 10.0))];
        store.get_set_group("g", &sample, Duration::ZERO).unwrap();
        assert_eq!(
            store
                .get_set_group("g", &sample, Duration::from_secs(60))
                .unwrap(),
            vec![None]
        );
        store.get_set_group("h", &sample, Duration::ZERO).unwrap();
        assert_eq!(store.sweep(), 1);
        assert_eq!(store.groups(), 1);
    }

    #[test]
    fn the_single_key_form_speaks_the_spec_format() {
        let store = RateStore::new();
        let ttl = Duration::from_secs(60);
        assert_eq!(store.get_set("r|g|d|v|c", "100|1000.5", ttl).unwrap(), None);
        assert_eq!(
            store.get_set("r|g|d|v|c", "160|1060.5", ttl).unwrap(),
            Some("100|1000.5".to_string())
        );
        let junk = store.get_set("r|g|d|v|c", "junk", ttl).unwrap_err();
        assert!(
            matches!(junk, RateStateError::Store(RateStoreError::BadValue { .. })),
            "{junk:?}"
        );
        assert_eq!(
            junk.to_string(),
            r#"rate state value "junk" for "r|g|d|v|c": expected <value>|<timestamp>"#
        );
    }

    #[test]
    fn a_saved_state_loads_into_another_process_once() {
        let ks = panoptes_storage::Store::temporary()
            .unwrap()
            .keyspace("rate_state")
            .unwrap();
        let ttl = Duration::from_secs(600);
        let a = RateStore::new();
        let samples: Vec<(String, Sample)> = (0..40)
            .map(|i| (format!("m{i}"), s(MetricValue::Int(i * 1000), 5.0)))
            .collect();
        let refs: Vec<(&str, Sample)> = samples.iter().map(|(n, x)| (n.as_str(), *x)).collect();
        for g in 0..300 {
            a.get_set_group(&format!("dev|if|{g}"), &refs, ttl).unwrap();
        }
        a.get_set_group("gone", &refs[..1], Duration::ZERO).unwrap();
        assert_eq!(a.save(&ks).unwrap(), 300);

        let b = RateStore::new();
        // A different name order in the new process: ids are remapped.
        b.name_id("zzz");
        assert_eq!(b.load(&ks).unwrap(), 300);
        assert_eq!(b.groups(), 300);
        let previous = b.get_set_group("dev|if|7", &refs[3..5], ttl).unwrap();
        assert_eq!(previous, vec![Some(refs[3].1), Some(refs[4].1)]);
        assert_eq!(RateStore::new().load(&ks).unwrap(), 0, "loaded once");
    }
}
