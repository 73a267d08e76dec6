//! The node's rate state: every counter's previous sample, in memory, one compact record
//! per metrics group.
//!
//! Why not the store: a 48-port interface poll has 816 counters under rate. Writing each as
//! its own key (the original's Redis layout) cost ≈60% of the collector's CPU per poll
//! and ≈1.5 MB of sled log per poll (it filled the disk at 10,000 devices). Here a group's
//! samples are one record of ≈7 bytes per counter, found by a 64-bit hash of the group's
//! partition key, with TTLs kept exactly as the per-key layout would: a sample not
//! refreshed within its TTL is gone. At 10,000 48-port devices that is ≈480,000 records
//! of ≈170 bytes (large counters take 7-byte varints) in 64 KiB chunks, ≈95 MB with the
//! index.
//!
//! What is given up: the state lives in the process. A clean shutdown saves it to the
//! store and the next start loads it (see [`RateStore::save`] / [`RateStore::load`]), so
//! a restart costs no rates; a crash costs one interval of rates (the next sample of each
//! counter is treated as a first one), never a wrong rate.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use panoptes_storage::{Keyspace, StorageError};

use super::rate::{RateState, Sample};
use crate::model::{now_ms, MetricValue};

const SHARDS: usize = 64;

/// Every counter's previous sample. Shared by all pollers (`Arc`); each group's record is
/// read and rewritten under its shard's lock, so `get_set_group` is atomic per group.
pub struct RateStore {
    shards: Box<[Mutex<Shard>]>,
    /// Metric names by id: records hold ids, not names.
    names: RwLock<Names>,
}

#[derive(Default)]
struct Names {
    ids: HashMap<String, u32>,
    list: Vec<String>,
}

/// Some of the groups: their records side by side in a few large chunks, found by an
/// index.
///
/// Why not a heap block per record: at 10,000 devices that is ≈480,000 long-lived blocks
/// of ≈170 bytes, each replaced every poll and interleaved with the poll's short-lived
/// allocations, so the allocator could hand few pages back (and paid size-class rounding
/// and a pointer per record). In chunks a record is rewritten in place each poll (it
/// keeps a little room to grow), and a shard grows by whole chunks, never by copying
/// itself into a buffer twice its size.
#[derive(Default)]
struct Shard {
    index: HashMap<u64, Loc>,
    chunks: Vec<Vec<u8>>,
    /// Bytes of the chunks no record uses (left by records that moved or went away, and
    /// the unfillable ends of chunks).
    dead: usize,
}

/// Where a group's record is.
#[derive(Clone, Copy)]
struct Loc {
    chunk: u32,
    at: u32,
    len: u32,
    /// Bytes reserved for it (`len` plus room).
    cap: u32,
    /// The latest expiry of its samples (ms since the epoch): past it, the record is dead.
    expires_ms: u64,
}

/// Spare bytes given to a record when it is placed.
const RECORD_ROOM: u32 = 4;

/// Size of a chunk (a record larger than this gets a chunk of its own size).
const CHUNK_BYTES: usize = 64 * 1024;

impl Shard {
    fn record(&self, hash: u64) -> Option<&[u8]> {
        let loc = self.index.get(&hash)?;
        let at = loc.at as usize;
        self.chunks
            .get(loc.chunk as usize)?
            .get(at..at + loc.len as usize)
    }

    /// Stores `encoded` as the record of `hash`: in place when it fits its room.
    fn put(&mut self, hash: u64, expires_ms: u64, encoded: &[u8]) -> Result<(), String> {
        let len = u32::try_from(encoded.len()).map_err(|_| "rate record over 4 GiB")?;
        if let Some(loc) = self.index.get_mut(&hash) {
            if len <= loc.cap {
                if let Some(chunk) = self.chunks.get_mut(loc.chunk as usize) {
                    let at = loc.at as usize;
                    chunk[at..at + encoded.len()].copy_from_slice(encoded);
                    loc.len = len;
                    loc.expires_ms = expires_ms;
                    return Ok(());
                }
            }
            self.dead += loc.cap as usize;
        }
        // Room for a few values to grow by a varint byte before the record must move.
        let cap = len.saturating_add(RECORD_ROOM);
        let loc = self.reserve(cap)?;
        let chunk = &mut self.chunks[loc.0 as usize];
        chunk.extend_from_slice(encoded);
        chunk.resize(loc.1 as usize + cap as usize, 0);
        self.index.insert(
            hash,
            Loc {
                chunk: loc.0,
                at: loc.1,
                len,
                cap,
                expires_ms,
            },
        );
        self.compact_if_sparse();
        Ok(())
    }

    /// (chunk, offset) of `cap` free bytes at the end of the last chunk, or of a new one.
    fn reserve(&mut self, cap: u32) -> Result<(u32, u32), String> {
        let fits = |c: &Vec<u8>| c.capacity() - c.len() >= cap as usize;
        match self.chunks.last() {
            Some(last) if fits(last) => {}
            last => {
                self.dead += last.map_or(0, |c| c.capacity() - c.len());
                self.chunks
                    .push(Vec::with_capacity(CHUNK_BYTES.max(cap as usize)));
            }
        }
        let chunk = u32::try_from(self.chunks.len() - 1).map_err(|_| "too many chunks")?;
        let at = self.chunks.last().map_or(0, Vec::len);
        Ok((chunk, u32::try_from(at).map_err(|_| "chunk over 4 GiB")?))
    }

    /// Drops the records whose every sample has expired; returns how many.
    fn sweep(&mut self, now: u64) -> usize {
        let before = self.index.len();
        let mut dead = 0;
        self.index.retain(|_, loc| {
            let live = loc.expires_ms > now;
            if !live {
                dead += loc.cap as usize;
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
        let mut locs: Vec<(u64, Loc)> = self.index.iter().map(|(&h, &l)| (h, l)).collect();
        locs.sort_unstable_by_key(|(_, l)| (l.chunk, l.at));
        for (hash, loc) in locs {
            let at = loc.at as usize;
            let Some(bytes) = old
                .get(loc.chunk as usize)
                .and_then(|c| c.get(at..at + loc.cap as usize))
            else {
                self.index.remove(&hash);
                continue;
            };
            // Cannot fail: the new chunks hold less than the old ones did.
            let Ok((chunk, at)) = self.reserve(loc.cap) else {
                self.index.remove(&hash);
                continue;
            };
            self.chunks[chunk as usize].extend_from_slice(bytes);
            if let Some(l) = self.index.get_mut(&hash) {
                l.chunk = chunk;
                l.at = at;
            }
        }
    }
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
        }
    }

    /// Groups held (live or not yet swept).
    pub fn groups(&self) -> usize {
        self.shards.iter().map(|s| lock(s).index.len()).sum()
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

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash % SHARDS as u64) as usize]
    }
}

/// Keys of a saved snapshot in its keyspace.
const SNAPSHOT_NAMES: &[u8] = b"snapshot/names";
const SNAPSHOT_SHARD: &str = "snapshot/shard/";

impl RateStore {
    /// Saves every live group to `keyspace` (one value per shard, plus the metric names),
    /// each expiring with its latest sample; for a clean shutdown. Returns the groups saved.
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
            for (&hash, loc) in shard.index.iter().filter(|(_, l)| l.expires_ms > now) {
                let Some(data) = shard.record(hash) else {
                    continue;
                };
                out.extend_from_slice(&hash.to_le_bytes());
                put_varint(&mut out, data.len() as u64);
                out.extend_from_slice(data);
                expires = expires.max(loc.expires_ms);
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

    fn load_shard(&self, raw: &[u8], ids: &[u32], now: u64) -> Result<usize, String> {
        let mut r = Reader { data: raw, at: 0 };
        let mut loaded = 0;
        while r.at < raw.len() {
            let hash = u64::from_le_bytes(r.array()?);
            let len = usize::try_from(r.varint()?).map_err(|_| "record length out of range")?;
            let data = r
                .data
                .get(r.at..r.at.saturating_add(len))
                .ok_or("record longer than the snapshot")?;
            r.at += len;
            let mut entries = decode(data)?;
            entries.retain(|e| e.expires_ms > now);
            for e in &mut entries {
                e.name = *usize::try_from(e.name)
                    .ok()
                    .and_then(|i| ids.get(i))
                    .ok_or("a sample names an unknown metric")?;
            }
            let Some(expires_ms) = entries.iter().map(|e| e.expires_ms).max() else {
                continue;
            };
            let mut shard = lock(self.shard(hash));
            if !shard.index.contains_key(&hash) {
                shard.put(hash, expires_ms, &encode(&entries))?;
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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl RateState for RateStore {
    /// One key at a time (the spec's layout): kept for callers of the trait that have a
    /// single key; the pipeline uses `get_set_group`.
    fn get_set(&self, key: &str, value: &str, ttl: Duration) -> Result<Option<String>, String> {
        let (group, name) = key.rsplit_once('|').unwrap_or(("", key));
        let sample = super::rate::parse_sample(value).ok_or_else(|| {
            format!("rate state value {value:?} for {key:?}: expected <value>|<timestamp>")
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
    ) -> Result<Vec<Option<Sample>>, String> {
        let now = now_ms();
        let expires_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let ids: Vec<u32> = samples.iter().map(|(n, _)| self.name_id(n)).collect();
        let hash = hash64(group_key.as_bytes());
        let mut shard = lock(self.shard(hash));
        let mut entries = match shard.record(hash) {
            Some(r) => decode(r).map_err(|e| format!("rate state of {group_key:?}: {e}"))?,
            None => Vec::new(),
        };
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
        let expires_ms = entries.iter().map(|e| e.expires_ms).max().unwrap_or(0);
        shard.put(hash, expires_ms, &encode(&entries))?;
        Ok(previous)
    }
}

// Record format: the record's first sample's timestamp (f64 LE) and expiry (u64 LE), then
// per sample: name id (varint), a tag byte, the value, then the sample's own timestamp and
// expiry when they differ from the record's (flag bits of the tag).
const TAG_UINT: u8 = 0; // varint
const TAG_NEG: u8 = 1; // varint of -(v + 1)
const TAG_FLOAT: u8 = 2; // f64 LE
const TAG_BIG: u8 = 3; // i128 LE
const FLAG_OWN_TS: u8 = 0x10;
const FLAG_OWN_EXPIRY: u8 = 0x20;

fn encode(entries: &[Entry]) -> Box<[u8]> {
    let (ts0, exp0) = entries
        .first()
        .map_or((0.0, 0), |e| (e.sample.ts, e.expires_ms));
    let mut out = Vec::with_capacity(16 + entries.len() * 8);
    out.extend_from_slice(&ts0.to_le_bytes());
    out.extend_from_slice(&exp0.to_le_bytes());
    for e in entries {
        put_varint(&mut out, u64::from(e.name));
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
                put_varint(&mut out, i as u64);
            }
            MetricValue::Int(i) if (i128::from(i64::MIN)..0).contains(&i) => {
                out.push(TAG_NEG | flags);
                put_varint(&mut out, (-(i + 1)) as u64);
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
            put_varint(&mut out, e.expires_ms);
        }
    }
    out.into_boxed_slice()
}

fn decode(data: &[u8]) -> Result<Vec<Entry>, String> {
    let mut r = Reader { data, at: 0 };
    let ts0 = f64::from_le_bytes(r.array()?);
    let exp0 = u64::from_le_bytes(r.array()?);
    let mut out = Vec::new();
    while r.at < data.len() {
        let name = u32::try_from(r.varint()?).map_err(|_| "name id out of range")?;
        let tag = r.byte()?;
        let value = match tag & 0x0f {
            TAG_UINT => MetricValue::Int(i128::from(r.varint()?)),
            TAG_NEG => MetricValue::Int(-i128::from(r.varint()?) - 1),
            TAG_FLOAT => MetricValue::Float(f64::from_le_bytes(r.array()?)),
            TAG_BIG => MetricValue::Int(i128::from_le_bytes(r.array()?)),
            other => return Err(format!("unknown value tag {other}")),
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
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .data
            .get(self.at)
            .ok_or_else(|| format!("record ends at byte {}", self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self
            .data
            .get(self.at..self.at + N)
            .ok_or_else(|| format!("record ends inside a {N}-byte field at byte {}", self.at))?;
        self.at += N;
        bytes.try_into().map_err(|_| "short field".to_string())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_rewrites_in_place_moves_what_outgrows_and_compacts() {
        let mut shard = Shard::default();
        let record = |h: u64, n: usize| vec![(h % 251) as u8; n];
        // Enough 200-byte records for several chunks.
        for h in 0..2_000u64 {
            shard.put(h, 10, &record(h, 200)).unwrap();
        }
        assert!(shard.chunks.len() > 1);
        let loc = |s: &Shard, h: u64| s.index.get(&h).map(|l| (l.chunk, l.at)).unwrap();
        // Same size, or within the room: rewritten where it is.
        let before = (loc(&shard, 7), shard.dead);
        shard
            .put(7, 20, &record(7, 200 + RECORD_ROOM as usize))
            .unwrap();
        assert_eq!((loc(&shard, 7), shard.dead), before);
        assert_eq!(shard.record(7).unwrap().len(), 200 + RECORD_ROOM as usize);
        // Larger: moved to the end; its old place is dead.
        shard.put(8, 20, &record(8, 300)).unwrap();
        assert_ne!(loc(&shard, 8), before.0);
        assert!(shard.dead >= 204, "{}", shard.dead);
        assert_eq!(shard.record(8).unwrap(), &record(8, 300)[..]);
        // Expiring most records leaves the chunks sparse: they are compacted, and what
        // is left still reads back.
        for h in (0..2_000u64).filter(|h| h % 4 != 0 && *h != 7) {
            shard.put(h, 5, &record(h, 200)).unwrap();
        }
        let chunks_before = shard.chunks.len();
        assert_eq!(shard.sweep(6), 1_500 - 1);
        // Compacted: only the unfillable ends of the new chunks are dead.
        assert!(shard.dead < 200 * shard.chunks.len(), "{}", shard.dead);
        assert!(shard.chunks.len() < chunks_before);
        for h in (0..2_000u64).filter(|h| h % 4 == 0 && *h != 8) {
            assert_eq!(shard.record(h).unwrap(), &record(h, 200)[..], "record {h}");
        }
        assert_eq!(shard.record(8).unwrap(), &record(8, 300)[..]);
        assert_eq!(
            shard.record(7).unwrap().len(),
            204,
            "7 was refreshed (expiry 20)"
        );
        assert_eq!(shard.index.len(), 501);
    }

    fn s(value: MetricValue, ts: f64) -> Sample {
        Sample { value, ts }
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
        assert_eq!(decode(&encode(&entries)).unwrap(), entries);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
        assert!(decode(&[1, 2, 3]).is_err());
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
        assert!(store.get_set("r|g|d|v|c", "junk", ttl).is_err());
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
