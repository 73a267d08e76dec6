//! What the node knows of each device's recent polls, for the status page: the last poll
//! (when, how long, its status), failures in the last hour, interfaces up and down, and
//! where the last hour's metrics groups are in the topic log (so the device page reads
//! them back from the log instead of this keeping them).
//!
//! Why so little: at 10,000 devices every byte per device is 10 KB of memory; a device
//! costs ≈1 KB here (mostly the record locations), and the metrics stay in the topic log,
//! which keeps them anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
/// took ≈64 bytes a poll and 40 MB in all. A poll whose records are one run of offsets in
/// a partition the device has written before (every poll of the built-in plugins) is 24
/// bytes here and no heap block; any other poll keeps its list, in `odd`.
#[derive(Debug, Default)]
struct History {
    /// (topic, partition) pairs of this device's polls, by `Past::place`.
    places: Vec<(Arc<str>, u32)>,
    polls: VecDeque<Past>,
    /// Polls of several locations (or of more places than `Past::place` numbers), oldest
    /// first, with their time.
    odd: VecDeque<(u64, Vec<Location>)>,
}

#[derive(Debug, Clone, Copy)]
struct Past {
    at_ms: u64,
    first_offset: u64,
    count: u32,
    /// Index in `History::places`; `ODD`: the poll is in `History::odd`.
    place: u32,
}

const ODD: u32 = u32::MAX;
/// Places a device's history numbers before its polls go to `odd` (a device writes to one
/// partition of one topic per plugin).
const MAX_PLACES: usize = 16;

impl History {
    fn newest_ms(&self) -> Option<u64> {
        self.polls.back().map(|p| p.at_ms)
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
                .and_then(|i| u32::try_from(i).ok()),
            _ => None,
        };
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
                    first_offset: 0,
                    count: 0,
                    place: ODD,
                }
            }
        };
        self.polls.push_back(past);
        while self.polls.len() > HISTORY {
            if let Some(gone) = self.polls.pop_front() {
                if gone.place == ODD {
                    self.odd.pop_front();
                }
            }
        }
    }

    /// The polls at or after `since_ms`, oldest first.
    fn since(&self, since_ms: u64) -> Vec<(u64, Vec<Location>)> {
        let mut odd = self.odd.iter();
        let mut out = Vec::new();
        for p in &self.polls {
            let locations = if p.place == ODD {
                // `odd` holds the ODD polls of `polls`, in the same order.
                odd.next().map(|(_, l)| l.clone()).unwrap_or_default()
            } else {
                let Some((topic, partition)) = usize::try_from(p.place)
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
#[derive(Default)]
pub struct Fleet {
    devices: Mutex<HashMap<Arc<str>, Device>>,
}

impl Fleet {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Device>> {
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
