//! A rate store shard's index: group hash → record place, as one array sorted by hash.
//!
//! Why not a hash table: hashbrown's tables double, so they are between half and seven
//! eighths full, 13 bytes a slot (a 12-byte entry and a control byte): 15 to 26 bytes a
//! group. At 10,000 48-port devices (≈7,500 groups a shard, just past a table's 7/8 of
//! 8,192) the 64 tables were 14.7 MB for 480,000 groups. Sorted and grown by an eighth at
//! a time, an entry is 12 bytes and at most an eighth of them is spare: ≈6 MB.
//!
//! What it costs: a lookup is a binary search (13 steps in 7,500 entries of one 90 KB
//! array) where a table took one probe, and a new group moves the entries after it (a few
//! µs); a poll looks each group up once and adds groups only on its first run. Two
//! benches at once, 5,000 devices each: 2.045 ms a poll (tables) against 2.065 (array).

/// A group's 64-bit hash as two halves: 4-byte aligned, so an index entry is 12 bytes.
/// Ordered as the hash is (high half first).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) struct Key([u32; 2]);

impl Key {
    pub(super) fn of(hash: u64) -> Key {
        Key([(hash >> 32) as u32, hash as u32])
    }

    pub(super) fn hash64(self) -> u64 {
        u64::from(self.0[0]) << 32 | u64::from(self.0[1])
    }
}

/// Groups' places: no key twice, in two sorted arrays. New keys go to `recent` (at most
/// [`RECENT`] of them), which is merged into `entries` when full.
///
/// Why two: a new key inserted into one array moves every entry after it. At 30,000
/// 48-port devices (22,500 groups a shard at the end) the first interval's 1.4 million
/// new groups moved ≈100 GB that way. Merged [`RECENT`] at a time, each entry of
/// `entries` moves once per merge, not once per insert. A lookup searches `recent` only
/// when `entries` has no such key (the usual group is in `entries`).
#[derive(Default)]
pub(super) struct Index {
    entries: Vec<(Key, u32)>,
    recent: Vec<(Key, u32)>,
}

/// The least an index grows by (a shard with a handful of groups).
const MIN_GROWTH: usize = 16;

/// New keys held apart before they are merged.
const RECENT: usize = 128;

/// Where `key` is in `entries` (sorted), as `binary_search` answers.
///
/// Group hashes are spread evenly, so the search starts where the key would sit if they
/// were exactly even, and gallops from there to a short range it then halves. A binary
/// search over a 90 KB array (a shard at 10,000 devices) missed the cache at most of its
/// 13 steps; the guess is usually within a few dozen entries. Any spread of hashes gives
/// the same answer, a skewed one only more steps.
fn search(entries: &[(Key, u32)], key: &Key) -> Result<usize, usize> {
    let n = entries.len();
    let bisect = |from: usize, to: usize| {
        entries[from..to]
            .binary_search_by(|(k, _)| k.cmp(key))
            .map(|i| from + i)
            .map_err(|i| from + i)
    };
    if n < INTERPOLATE_FROM {
        return bisect(0, n);
    }
    let (low, high, h) = (
        entries[0].0.hash64(),
        entries[n - 1].0.hash64(),
        key.hash64(),
    );
    if h <= low || h >= high {
        return bisect(0, n);
    }
    // low < h < high, so the guess is below n - 1.
    let guess = (u128::from(h - low) * (n as u128 - 1) / u128::from(high - low)) as usize;
    let mut step = 1;
    let mut at = guess;
    if entries[at].0 < *key {
        // After `at`: step forward until an entry is not below the key.
        loop {
            let next = at + step;
            if next >= n {
                return bisect(at + 1, n);
            }
            if entries[next].0 >= *key {
                return bisect(at + 1, next + 1);
            }
            at = next;
            step *= 2;
        }
    }
    // At or before `at`: step back until an entry is below the key.
    loop {
        if at < step {
            return bisect(0, at + 1);
        }
        let next = at - step;
        if entries[next].0 < *key {
            return bisect(next + 1, at + 1);
        }
        at = next;
        step *= 2;
    }
}

/// Below this many entries a plain binary search stays in a few cache lines.
const INTERPOLATE_FROM: usize = 64;

impl Index {
    pub(super) fn get(&self, key: &Key) -> Option<&u32> {
        match search(&self.entries, key) {
            Ok(i) => Some(&self.entries[i].1),
            Err(_) => search(&self.recent, key).ok().map(|i| &self.recent[i].1),
        }
    }

    pub(super) fn contains_key(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`'s place; the one it had, if any.
    pub(super) fn insert(&mut self, key: Key, pos: u32) -> Option<u32> {
        if let Ok(i) = search(&self.entries, &key) {
            return Some(std::mem::replace(&mut self.entries[i].1, pos));
        }
        match search(&self.recent, &key) {
            Ok(i) => Some(std::mem::replace(&mut self.recent[i].1, pos)),
            Err(i) => {
                if self.recent.capacity() == 0 {
                    self.recent.reserve_exact(RECENT);
                }
                self.recent.insert(i, (key, pos));
                if self.recent.len() >= RECENT {
                    self.merge_recent();
                }
                None
            }
        }
    }

    /// Moves `recent` into `entries`: each entry moves once, in blocks between the keys
    /// that come in.
    fn merge_recent(&mut self) {
        let (n, m) = (self.entries.len(), self.recent.len());
        if m == 0 {
            return;
        }
        if self.entries.capacity() < n + m {
            let more = (n / 8).max(MIN_GROWTH).max(m);
            self.entries.reserve_exact(more);
        }
        self.entries.resize(n + m, (Key([0, 0]), 0));
        // Largest first: entries[..end] have not moved yet; everything after the block
        // being placed is in its final place.
        let mut end = n;
        for (j, &(key, pos)) in self.recent.iter().enumerate().rev() {
            let at = self.entries[..end].partition_point(|(k, _)| *k < key);
            self.entries.copy_within(at..end, at + j + 1);
            self.entries[at + j] = (key, pos);
            end = at;
        }
        self.recent.clear();
    }

    pub(super) fn remove(&mut self, key: &Key) -> Option<u32> {
        if let Ok(i) = search(&self.recent, key) {
            return Some(self.recent.remove(i).1);
        }
        let i = search(&self.entries, key).ok()?;
        let (_, pos) = self.entries.remove(i);
        self.shrink_if_spare();
        Some(pos)
    }

    /// Keeps the entries `keep` says yes to (it may change their places); order kept.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Key, &mut u32) -> bool) {
        self.merge_recent();
        self.entries.retain_mut(|(k, pos)| keep(k, pos));
        self.shrink_if_spare();
    }

    /// Gives back room once more than a quarter of it is spare (as growth left it: at
    /// most an eighth).
    fn shrink_if_spare(&mut self) {
        let len = self.entries.len();
        if self.entries.capacity() - len > len / 4 + MIN_GROWTH {
            self.entries.shrink_to(len + len / 8);
        }
    }

    /// Every (key, place), in key order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Key, u32)> + '_ {
        let mut a = self.entries.iter().copied().peekable();
        let mut b = self.recent.iter().copied().peekable();
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if y.0 < x.0 => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        })
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len() + self.recent.len()
    }

    /// Heap bytes held (entries and spare room).
    pub(super) fn heap_bytes(&self) -> usize {
        (self.entries.capacity() + self.recent.capacity()) * std::mem::size_of::<(Key, u32)>()
    }
}

#[cfg(test)]
impl std::ops::Index<&Key> for Index {
    type Output = u32;

    fn index(&self, key: &Key) -> &u32 {
        match self.get(key) {
            Some(pos) => pos,
            None => panic!("no entry for {key:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u32),
        Remove(u64),
        /// Keep the keys whose hash is not divisible by this, bump their places by one.
        Retain(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct hashes (so that inserts hit present keys and removes find them),
        // spread over the whole u64 range (high and low halves both matter).
        let hash = (0u64..600).prop_map(|h| h.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        prop_oneof![
            4 => (hash.clone(), any::<u32>()).prop_map(|(h, p)| Op::Insert(h, p)),
            2 => hash.prop_map(Op::Remove),
            1 => (2u64..7).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// The index answers as an ordered map of the same operations does, its entries
        /// stay in hash order, and its spare room stays bounded.
        #[test]
        fn the_index_is_an_ordered_map(ops in proptest::collection::vec(op(), 0..400)) {
            let mut index = Index::default();
            let mut model: BTreeMap<u64, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(h, p) => {
                        prop_assert_eq!(index.insert(Key::of(h), p), model.insert(h, p));
                    }
                    Op::Remove(h) => {
                        prop_assert_eq!(index.remove(&Key::of(h)), model.remove(&h));
                    }
                    Op::Retain(d) => {
                        index.retain(|k, p| {
                            *p = p.wrapping_add(1);
                            k.hash64() % d != 0
                        });
                        model.retain(|h, _| h % d != 0);
                        for p in model.values_mut() {
                            *p = p.wrapping_add(1);
                        }
                    }
                }
                let listed: Vec<(u64, u32)> = index.iter().map(|(k, p)| (k.hash64(), p)).collect();
                let expected: Vec<(u64, u32)> = model.iter().map(|(&h, &p)| (h, p)).collect();
                prop_assert_eq!(listed, expected);
                prop_assert_eq!(index.len(), model.len());
                for (&h, &p) in &model {
                    prop_assert_eq!(index.get(&Key::of(h)), Some(&p));
                    prop_assert!(index.contains_key(&Key::of(h)));
                }
                let spare = index.entries.capacity() - index.entries.len();
                prop_assert!(spare <= index.entries.len() / 4 + MIN_GROWTH.max(RECENT), "{} spare of {}", spare, index.len());
                prop_assert!(index.recent.len() < RECENT);
            }
        }
    }

    #[test]
    fn a_large_index_keeps_about_an_eighth_spare() {
        let mut index = Index::default();
        for h in 0..7_500u64 {
            index.insert(Key::of(h.wrapping_mul(0x9e37_79b9_7f4a_7c15)), h as u32);
        }
        assert_eq!(index.len(), 7_500);
        let room = index.heap_bytes();
        assert!(
            (7_500 * 12..=7_500 * 12 * 9 / 8 + 12 * (MIN_GROWTH + RECENT)).contains(&room),
            "{room} bytes for 7,500 entries"
        );
        // Half removed: room given back down to an eighth spare.
        index.retain(|k, _| k.hash64() % 2 == 0);
        let left = index.len();
        assert!((3_000..4_500).contains(&left), "{left}");
        assert!(
            index.heap_bytes() <= left * 12 * 9 / 8 + 12 * (1 + RECENT),
            "{}",
            index.heap_bytes()
        );
        assert_eq!(index.get(&Key::of(1)), None);
    }

    proptest! {
        /// The interpolated search answers as a binary search does, found or not, for
        /// evenly spread hashes and for hashes bunched at one end or in clusters.
        #[test]
        fn search_answers_as_binary_search(
            hashes in proptest::collection::btree_set(
                prop_oneof![any::<u64>(), 0u64..1_000, (u64::MAX - 1_000)..=u64::MAX],
                0..600,
            ),
            probes in proptest::collection::vec(
                prop_oneof![any::<u64>(), 0u64..1_000, (u64::MAX - 1_000)..=u64::MAX],
                0..50,
            ),
        ) {
            let entries: Vec<(Key, u32)> = hashes.iter().map(|&h| (Key::of(h), 0)).collect();
            for h in hashes.iter().copied().chain(probes) {
                let key = Key::of(h);
                prop_assert_eq!(
                    search(&entries, &key),
                    entries.binary_search_by(|(k, _)| k.cmp(&key)),
                    "hash {}", h
                );
            }
        }
    }

    #[test]
    fn keys_order_as_their_hashes() {
        let hashes = [0u64, 1, u32::MAX as u64, 1 << 32, u64::MAX - 1, u64::MAX];
        for pair in hashes.windows(2) {
            assert!(Key::of(pair[0]) < Key::of(pair[1]), "{pair:?}");
            assert_eq!(Key::of(pair[1]).hash64(), pair[1]);
        }
    }
}
