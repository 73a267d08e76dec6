//! What the node knows of each device's recent polls, for the status page: the last poll
//! (when, how long, its status), failures in the last hour, interfaces up and down, and
//! where the last hour's metrics groups are in the topic log (so the device page reads
//! them back from the log instead of this keeping them).
//!
//! Why so little: at 10,000 devices every byte per device is 10 KB of memory; a device
//! costs ≈0.9 KB here after an hour (the record locations ≈0.5 of it), and the metrics stay in the topic log,
//! which keeps them anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::varint;

/// The original's polling status names, by code.
pub const STATUS_NAMES: [&str; 9] = [
    "SUCCESS",
    "AUTHENTICATION_FAILURE",
    "NETWORK_FAILURE",
    "TIMEOUT",
    "PARTIAL_METRIC_FAILURE",
    "INTERNAL_FAILURE",
    "MISSING_METRICS",
    "PING_FAILURE",
    "ENRICHMENT_FAILURE",
];

/// The name of a status code (`UNKNOWN` past the table).
pub fn status_name(code: u8) -> &'static str {
    STATUS_NAMES
        .get(usize::from(code))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// Where one poll's metrics groups went: a run of records in one partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub topic: Arc<str>,
    pub partition: u32,
    pub first_offset: u64,
    pub count: u32,
}

/// One poll of one device by one plugin.
#[derive(Debug, Clone)]
pub struct Poll {
    pub plugin: Arc<str>,
    /// When it started, Unix milliseconds.
    pub at_ms: u64,
    pub duration_ms: u32,
    /// The polling status code, when the plugin reported one.
    pub status: Option<u8>,
    /// The run failed (an error, or a status other than SUCCESS).
    pub failed: bool,
    /// Interfaces up and down (`oper_state` 1 / anything else), when it polled any.
    pub interfaces: Option<(u16, u16)>,
    pub interval_s: u32,
    pub locations: Vec<Location>,
}

impl Poll {
    /// Becomes `newer`, in the blocks this record already has: a device's record lives
    /// for the device's lifetime, and a new name or list allocated per poll among the
    /// poll's short-lived allocations would keep a page of them resident each.
    fn replace_with(&mut self, newer: Poll) {
        let Poll {
            plugin,
            at_ms,
            duration_ms,
            status,
            failed,
            interfaces,
            interval_s,
            locations,
        } = newer;
        if self.plugin != plugin {
            self.plugin = plugin;
        }
        self.at_ms = at_ms;
        self.duration_ms = duration_ms;
        self.status = status;
        self.failed = failed;
        self.interfaces = interfaces;
        self.interval_s = interval_s;
        self.locations.clone_from(&locations);
    }
}

/// Polls whose records are remembered per device: an hour at one poll a minute.
const HISTORY: usize = 64;

#[derive(Debug, Default)]
struct Device {
    last: Option<Poll>,
    /// Failed polls per minute of the last hour, by minute of the epoch mod 60, with
    /// the minute each slot counts; made at the first failure (480 bytes a device that
    /// most devices never need: 5 MB of the table at 10,000 devices).
    failures: Option<Box<[(u32, u16); 60]>>,
    interfaces: Option<(u16, u16)>,
    /// Record locations of recent polls, oldest first, at most one per minute.
    history: History,
    /// Each polling plugin's newest poll's record locations (none when that poll
    /// published nothing): `/metrics/devices` shows every plugin's metrics of a device,
    /// not only those of the plugin that happened to poll it last.
    latest: Vec<(Arc<str>, Vec<Location>)>,
}

/// A device's recent polls' record locations, compactly: at 10,000 devices an hour of
/// history is 640,000 polls, which as a list of locations each (a heap block per poll)
/// took ≈64 bytes a poll and 40 MB in all, and as 24-byte fixed entries 15 MB. A poll
/// whose records are one run of offsets in a partition the device has written before
/// (every poll of the built-in plugins) is four varints here, ≈8 bytes; any other poll
/// keeps its list, in `odd`.
#[derive(Debug, Default)]
struct History {
    /// (topic, partition) pairs of this device's polls, by place.
    places: Vec<(Arc<str>, u32)>,
    /// The oldest poll's time and first offset (its own differences are not read).
    front_ms: u64,
    front_offset: u64,
    /// The polls, oldest first, each four varints: its place + 1 (0: the poll is in
    /// `odd`), its time after the previous poll's, its first offset after the previous
    /// poll's (see [`varint::difference`]; an odd poll: the previous offset), its count.
    polls: Vec<u8>,
    len: u32,
    /// Polls of several locations (or of more places than a device numbers), oldest
    /// first, with their time.
    odd: VecDeque<(u64, Vec<Location>)>,
}

/// One poll of a [`History`], decoded.
#[derive(Debug, Clone, Copy)]
struct Past {
    at_ms: u64,
    first_offset: u64,
    count: u32,
    /// Index in `History::places` + 1; 0: the poll is in `History::odd`.
    place: u32,
}

/// Places a device's history numbers before its polls go to `odd` (a device writes to one
/// partition of one topic per plugin).
const MAX_PLACES: usize = 16;

/// The longest a poll takes in `History::polls`: four varints.
const MAX_PAST: usize = 1 + 10 + 10 + 5;

impl History {
    /// The polls, oldest first, with the length of each in `polls`.
    fn iter(&self) -> impl Iterator<Item = (Past, usize)> + '_ {
        let mut at = 0;
        let mut previous: Option<Past> = None;
        std::iter::from_fn(move || {
            let start = at;
            let mut next = || varint::read(&self.polls, &mut at).ok();
            let (place, after_ms, offset, count) = (next()?, next()?, next()?, next()?);
            let past = Past {
                at_ms: previous.map_or(self.front_ms, |p| p.at_ms.wrapping_add(after_ms)),
                first_offset: previous.map_or(self.front_offset, |p| {
                    varint::add_difference(p.first_offset, offset)
                }),
                count: u32::try_from(count).ok()?,
                place: u32::try_from(place).ok()?,
            };
            previous = Some(past);
            Some((past, at - start))
        })
    }

    fn newest_ms(&self) -> Option<u64> {
        self.iter().last().map(|(p, _)| p.at_ms)
    }

    fn push(&mut self, at_ms: u64, locations: &[Location]) {
        let place = match locations {
            [one] => self
                .places
                .iter()
                .position(|(t, p)| *t == one.topic && *p == one.partition)
                .or_else(|| {
                    (self.places.len() < MAX_PLACES).then(|| {
                        self.places.push((Arc::clone(&one.topic), one.partition));
                        self.places.len() - 1
                    })
                })
                .and_then(|i| u32::try_from(i + 1).ok()),
            _ => None,
        };
        let newest = self.iter().last().map(|(p, _)| p);
        let past = match (place, locations) {
            (Some(place), [one]) => Past {
                at_ms,
                first_offset: one.first_offset,
                count: one.count,
                place,
            },
            _ => {
                self.odd.push_back((at_ms, locations.to_vec()));
                Past {
                    at_ms,
                    first_offset: newest.map_or(0, |p| p.first_offset),
                    count: 0,
                    place: 0,
                }
            }
        };
        let (after_ms, offset) = match newest {
            Some(p) => (
                past.at_ms.wrapping_sub(p.at_ms),
                varint::difference(p.first_offset, past.first_offset),
            ),
            None => {
                (self.front_ms, self.front_offset) = (past.at_ms, past.first_offset);
                (0, 0)
            }
        };
        // Room for this poll and about one more: the list keeps its size once an hour is
        // full (a poll leaves the front as one joins), where doubling would keep up to
        // twice that.
        if self.polls.capacity() - self.polls.len() < MAX_PAST {
            self.polls.reserve_exact(2 * MAX_PAST);
        }
        for v in [
            u64::from(past.place),
            after_ms,
            offset,
            u64::from(past.count),
        ] {
            varint::put(&mut self.polls, v);
        }
        self.len += 1;
        while self.len as usize > HISTORY {
            self.pop_front();
        }
    }

    /// Forgets the oldest poll: the next one's time and offset become the front's.
    fn pop_front(&mut self) {
        let mut polls = self.iter();
        let gone = polls.next();
        let front = polls.next().map(|(p, _)| (p.at_ms, p.first_offset));
        drop(polls);
        let Some((gone, gone_len)) = gone else {
            // Nothing readable: forget it all.
            (self.polls, self.len, self.odd) = (Vec::new(), 0, VecDeque::new());
            return;
        };
        if let Some((at_ms, offset)) = front {
            (self.front_ms, self.front_offset) = (at_ms, offset);
        }
        self.polls.drain(..gone_len);
        self.len -= 1;
        if gone.place == 0 {
            self.odd.pop_front();
        }
    }

    /// The polls at or after `since_ms`, oldest first.
    fn since(&self, since_ms: u64) -> Vec<(u64, Vec<Location>)> {
        let mut odd = self.odd.iter();
        let mut out = Vec::new();
        for (p, _) in self.iter() {
            let locations = if p.place == 0 {
                // `odd` holds the odd polls of `polls`, in the same order.
                odd.next().map(|(_, l)| l.clone()).unwrap_or_default()
            } else {
                let Some((topic, partition)) = usize::try_from(p.place - 1)
                    .ok()
                    .and_then(|i| self.places.get(i))
                else {
                    continue;
                };
                vec![Location {
                    topic: Arc::clone(topic),
                    partition: *partition,
                    first_offset: p.first_offset,
                    count: p.count,
                }]
            };
            if p.at_ms >= since_ms {
                out.push((p.at_ms, locations));
            }
        }
        out
    }
}

/// What the status page shows of one device.
#[derive(Debug, Clone)]
pub struct DeviceView {
    pub last: Option<Poll>,
    pub failures_last_hour: u32,
    pub interfaces: Option<(u16, u16)>,
    /// When its next poll is due, Unix milliseconds (last start + interval).
    pub next_ms: Option<u64>,
}

/// Every device's recent polls; cheap to share (`Arc`).
///
/// A device is boxed: inline, the table's 16,384 slots at 10,000 devices were ≈220 bytes
/// each (3.5 MB), where boxes take the devices' own ≈2.4 MB and the slots 24 bytes.
#[derive(Default)]
pub struct Fleet {
    devices: Mutex<HashMap<Arc<str>, Box<Device>>>,
}

impl Fleet {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Box<Device>>> {
        self.devices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a finished poll of `resource_id`.
    pub fn record(&self, resource_id: &str, poll: Poll) {
        let mut devices = self.lock();
        let device = match devices.get_mut(resource_id) {
            Some(d) => d,
            None => devices.entry(Arc::from(resource_id)).or_default(),
        };
        let minute = u32::try_from(poll.at_ms / 60_000).unwrap_or(u32::MAX);
        if poll.failed {
            let slots = device
                .failures
                .get_or_insert_with(|| Box::new([(0, 0); 60]));
            let slot = &mut slots[(minute % 60) as usize];
            if slot.0 != minute {
                *slot = (minute, 0);
            }
            slot.1 = slot.1.saturating_add(1);
        }
        if poll.interfaces.is_some() {
            device.interfaces = poll.interfaces;
        }
        if !poll.locations.is_empty() {
            let keep = device
                .history
                .newest_ms()
                .is_none_or(|at| poll.at_ms >= at + 55_000);
            if keep {
                device.history.push(poll.at_ms, &poll.locations);
            }
        }
        match device.latest.iter_mut().find(|(p, _)| *p == poll.plugin) {
            Some((_, locations)) => locations.clone_from(&poll.locations),
            None => device
                .latest
                .push((Arc::clone(&poll.plugin), poll.locations.clone())),
        }
        match &mut device.last {
            Some(last) => last.replace_with(poll),
            None => device.last = Some(poll),
        }
    }

    /// Forgets devices that are no longer resources.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.lock().retain(|id, _| keep(id));
    }

    /// The view of one device at `now_ms`.
    pub fn view(&self, resource_id: &str, now_ms: u64) -> Option<DeviceView> {
        self.lock().get(resource_id).map(|d| view(d, now_ms))
    }

    /// The views of every known device.
    pub fn views(&self, now_ms: u64) -> HashMap<Arc<str>, DeviceView> {
        self.lock()
            .iter()
            .map(|(id, d)| (Arc::clone(id), view(d, now_ms)))
            .collect()
    }

    /// Where the metrics groups of `resource_id`'s polls since `since_ms` are, oldest
    /// first, with each poll's time; the newest poll last.
    pub fn locations(&self, resource_id: &str, since_ms: u64) -> Vec<(u64, Vec<Location>)> {
        let devices = self.lock();
        let Some(d) = devices.get(resource_id) else {
            return Vec::new();
        };
        let mut out = d.history.since(since_ms);
        if let Some(last) = &d.last {
            if !last.locations.is_empty() && out.last().is_none_or(|(at, _)| *at != last.at_ms) {
                out.push((last.at_ms, last.locations.clone()));
            }
        }
        out
    }

    /// Every device's newest poll's record locations, of each polling plugin (for
    /// `/metrics/devices`); devices whose newest polls published nothing are left out.
    pub fn latest_locations(&self) -> Vec<(Arc<str>, Vec<Location>)> {
        self.lock()
            .iter()
            .filter_map(|(id, d)| {
                let locations: Vec<Location> =
                    d.latest.iter().flat_map(|(_, l)| l).cloned().collect();
                (!locations.is_empty()).then(|| (Arc::clone(id), locations))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn view(d: &Device, now_ms: u64) -> DeviceView {
    let minute = u32::try_from(now_ms / 60_000).unwrap_or(u32::MAX);
    let failures_last_hour = d
        .failures
        .iter()
        .flat_map(|slots| slots.iter())
        .filter(|(m, _)| minute.saturating_sub(*m) < 60)
        .map(|(_, n)| u32::from(*n))
        .sum();
    DeviceView {
        next_ms: d
            .last
            .as_ref()
            .map(|p| p.at_ms + u64::from(p.interval_s) * 1000),
        last: d.last.clone(),
        failures_last_hour,
        interfaces: d.interfaces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(at_ms: u64, failed: bool, offset: u64) -> Poll {
        Poll {
            plugin: Arc::from("interface"),
            at_ms,
            duration_ms: 40,
            status: Some(if failed { 3 } else { 0 }),
            failed,
            interfaces: Some((40, 8)),
            interval_s: 60,
            locations: vec![Location {
                topic: Arc::from("local-processed"),
                partition: 0,
                first_offset: offset,
                count: 49,
            }],
        }
    }

    /// A device's next poll is recorded in the blocks of its last one: the same plugin
    /// name and the same list, with the new poll's values.
    #[test]
    fn a_new_poll_is_kept_in_the_last_ones_blocks() {
        let fleet = Fleet::default();
        let mut first = poll(1_000, false, 0);
        first.locations.reserve(4);
        fleet.record("sw1", first);
        let (name, list) = {
            let devices = fleet.lock();
            let last = devices["sw1"].last.as_ref().unwrap();
            (Arc::clone(&last.plugin), last.locations.as_ptr())
        };
        let mut second = poll(61_000, true, 49);
        second.locations.push(Location {
            topic: Arc::from("local-extra"),
            partition: 2,
            first_offset: 7,
            count: 1,
        });
        second.duration_ms = 90;
        second.interfaces = None;
        fleet.record("sw1", second.clone());
        let devices = fleet.lock();
        let last = devices["sw1"].last.as_ref().unwrap();
        assert!(Arc::ptr_eq(&last.plugin, &name));
        assert_eq!(last.locations.as_ptr(), list);
        assert_eq!(last.locations, second.locations);
        assert_eq!(
            (last.at_ms, last.duration_ms, last.status, last.failed),
            (61_000, 90, Some(3), true)
        );
        assert_eq!((last.interfaces, last.interval_s), (None, 60));
        drop(devices);
        // Another plugin's poll takes its own name.
        let mut other = poll(62_000, false, 98);
        other.plugin = Arc::from("device");
        fleet.record("sw1", other);
        let devices = fleet.lock();
        assert_eq!(&*devices["sw1"].last.as_ref().unwrap().plugin, "device");
    }

    /// An hour of a built-in plugin's polls (one run in one partition a minute, the
    /// partition ≈490,000 records further on each time) takes 8 bytes a poll, and the
    /// list keeps its size as polls come and go.
    #[test]
    fn an_hour_of_history_is_eight_bytes_a_poll() {
        let mut h = History::default();
        let t0 = 1_700_000_000_000u64;
        let at = |i: u64| {
            let l = poll(t0 + i * 60_000, false, 5_000_000_000 + i * 490_000).locations;
            (t0 + i * 60_000, l)
        };
        // The first poll is 4 bytes (its time and offset are the front's), the rest 8:
        // place, 3 bytes of 60,000 ms, 3 of 490,000 records, the count.
        for i in 0..HISTORY as u64 {
            let (ms, l) = at(i);
            h.push(ms, &l);
        }
        assert_eq!(h.polls.len(), 4 + 8 * (HISTORY - 1));
        for i in HISTORY as u64..2 * HISTORY as u64 {
            let (ms, l) = at(i);
            h.push(ms, &l);
        }
        assert_eq!(h.polls.len(), 8 * HISTORY);
        let capacity = h.polls.capacity();
        assert!(capacity <= h.polls.len() + 2 * MAX_PAST, "{capacity}");
        for i in 2 * HISTORY as u64..3 * HISTORY as u64 {
            let (ms, l) = at(i);
            h.push(ms, &l);
        }
        assert_eq!(h.polls.capacity(), capacity);
        let all = h.since(0);
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all[0], at(2 * HISTORY as u64));
        assert_eq!(all[HISTORY - 1], at(3 * HISTORY as u64 - 1));
    }

    proptest::proptest! {
        /// Whatever the polls (times and offsets in any order, several locations, more
        /// partitions than a device numbers), the history gives back the last hour's as
        /// they came.
        #[test]
        fn the_history_gives_back_the_polls_it_keeps(
            polls in proptest::collection::vec(
                (proptest::prelude::any::<u64>(),
                 proptest::collection::vec(
                     (0..2usize, 0..20u32, proptest::prelude::any::<u64>(),
                      proptest::prelude::any::<u32>()), 0..3)),
                0..150)
        ) {
            let topics = [Arc::<str>::from("local-processed"), Arc::from("other")];
            let mut h = History::default();
            let mut want: VecDeque<(u64, Vec<Location>)> = VecDeque::new();
            for (at_ms, locations) in polls {
                let locations: Vec<Location> = locations
                    .into_iter()
                    .map(|(t, partition, first_offset, count)| Location {
                        topic: Arc::clone(&topics[t]),
                        partition,
                        first_offset,
                        count,
                    })
                    .collect();
                h.push(at_ms, &locations);
                want.push_back((at_ms, locations));
                if want.len() > HISTORY {
                    want.pop_front();
                }
                proptest::prop_assert_eq!(h.newest_ms(), want.back().map(|w| w.0));
            }
            proptest::prop_assert_eq!(h.since(0), Vec::from(want.clone()));
            proptest::prop_assert_eq!(h.odd.len(), h.iter().filter(|(p, _)| p.place == 0).count());
        }
    }

    #[test]
    fn failures_count_for_an_hour_and_history_keeps_one_poll_a_minute() {
        let fleet = Fleet::default();
        let t0 = 1_700_000_000_000u64;
        for i in 0..120u64 {
            // A poll every 30 s for an hour; every 4th one failed.
            fleet.record("sw1", poll(t0 + i * 30_000, i % 4 == 0, i * 49));
        }
        let now = t0 + 120 * 30_000;
        let v = fleet.view("sw1", now).unwrap();
        assert_eq!(v.last.as_ref().unwrap().at_ms, t0 + 119 * 30_000);
        assert_eq!(v.next_ms, Some(t0 + 119 * 30_000 + 60_000));
        // Failed polls in the minutes from now - 59 min to now: i = 4k with
        // t0 + i*30 s within the last 60 minutes.
        let want = (0..120u64)
            .filter(|i| i % 4 == 0)
            .filter(|i| (now / 60_000) - ((t0 + i * 30_000) / 60_000) < 60)
            .count() as u32;
        assert_eq!(v.failures_last_hour, want);
        assert_eq!(v.interfaces, Some((40, 8)));
        let locations = fleet.locations("sw1", now - 3_600_000);
        assert!(
            locations.len() <= 61 && locations.len() >= 59,
            "{}",
            locations.len()
        );
        assert!(locations.windows(2).all(|w| w[1].0 - w[0].0 >= 30_000));
        assert_eq!(locations.last().unwrap().1[0].first_offset, 119 * 49);
        assert_eq!(fleet.latest_locations().len(), 1);
        // A second plugin's poll adds its records; a poll that published nothing takes
        // its plugin's away.
        let mut other = poll(now, false, 9000);
        other.plugin = Arc::from("device");
        fleet.record("sw1", other.clone());
        let offsets = |fleet: &Fleet| -> Vec<u64> {
            fleet.latest_locations()[0]
                .1
                .iter()
                .map(|l| l.first_offset)
                .collect()
        };
        assert_eq!(offsets(&fleet), [119 * 49, 9000]);
        other.locations.clear();
        fleet.record("sw1", other);
        assert_eq!(offsets(&fleet), [119 * 49]);
        // A poll of several locations, and one in another partition, are kept as they
        // came, in order with the others.
        let two = vec![
            Location {
                topic: Arc::from("local-processed"),
                partition: 3,
                first_offset: 7,
                count: 2,
            },
            Location {
                topic: Arc::from("other-processed"),
                partition: 0,
                first_offset: 70,
                count: 1,
            },
        ];
        let mut odd = poll(now + 60_000, false, 0);
        odd.locations = two.clone();
        fleet.record("sw1", odd);
        let mut moved = poll(now + 120_000, false, 500);
        moved.locations[0].partition = 5;
        fleet.record("sw1", moved.clone());
        let recent = fleet.locations("sw1", now + 1);
        assert_eq!(recent.len(), 2, "{recent:?}");
        assert_eq!(recent[0], (now + 60_000, two));
        assert_eq!(recent[1], (now + 120_000, moved.locations));
        // The history stays an hour long: odd polls leave with their turn.
        for i in 0..100u64 {
            fleet.record("sw1", poll(now + 180_000 + i * 60_000, false, i));
        }
        let all = fleet.locations("sw1", 0);
        assert_eq!(all.len(), HISTORY);
        assert!(all.iter().all(|(_, l)| l.len() == 1 && l[0].partition == 0));
        fleet.retain(|id| id != "sw1");
        assert!(fleet.is_empty());
        assert_eq!(status_name(7), "PING_FAILURE");
        assert_eq!(status_name(42), "UNKNOWN");
    }
}
