//! The polling agents' producer: one thread appends what many polls publish, in batches.
//!
//! Why: each poll used to append its metrics groups itself on tokio's blocking pool and
//! wait there for the store's flush. At 10,000 devices that kept 150+ blocking threads
//! parked on the store's group-commit condition variable, every flush woke all of them,
//! and each append was its own engine batch. Here a poll hands its messages to one thread,
//! which takes everything queued (up to [`MAX_BATCH_BYTES`]), waits at most [`LINGER`]
//! for more (like a Kafka producer's `linger.ms`), appends each topic's messages in one
//! call (few, large frames in the segment files), then answers every poll in the batch
//! with the result. A poll's
//! messages stay together and in order; nothing is acknowledged before it is durable.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::oneshot;

use super::now_ms;
use crate::bus::{Bus, BusError, Message};
use crate::fleet::Location;

/// How long the producer waits for more polls after the first one of a batch.
pub const LINGER: Duration = Duration::from_millis(20);
/// A batch closes once it holds this many bytes of messages.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Why a poll's messages were not published.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("the publisher thread has stopped")]
    Stopped,
    #[error("the publisher thread dropped the request")]
    Dropped,
    /// Appending to one of the poll's topics failed: every poll of the batch that
    /// published to that topic is answered with this same failure.
    #[error(transparent)]
    Bus(Arc<BusError>),
}

type Reply = oneshot::Sender<Result<Vec<Location>, PublishError>>;

struct Request {
    per_topic: Vec<(String, Vec<Message>)>,
    reply: Reply,
}

/// A handle on the producer thread; cheap to clone. The thread ends when the last handle
/// is dropped.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Request>,
}

impl Publisher {
    /// Starts the producer thread for `bus`.
    pub fn start(bus: Bus) -> std::io::Result<Publisher> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("publisher".into())
            .spawn(move || run(&bus, &rx))?;
        Ok(Publisher { tx })
    }

    /// Appends `per_topic` (topic, messages) and returns once they are durable, with
    /// where they landed (runs of consecutive offsets; none on an external cluster).
    pub async fn publish(
        &self,
        per_topic: Vec<(String, Vec<Message>)>,
    ) -> Result<Vec<Location>, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { per_topic, reply })
            .map_err(|_| PublishError::Stopped)?;
        answer.await.map_err(|_| PublishError::Dropped)?
    }
}

fn size(r: &Request) -> usize {
    r.per_topic
        .iter()
        .flat_map(|(_, m)| m)
        .map(|m| m.value.len() + m.key.len())
        .sum()
}

fn run(bus: &Bus, rx: &mpsc::Receiver<Request>) {
    let mut names = TopicNames::default();
    let mut arrivals = Arrivals::default();
    while let Ok(first) = rx.recv() {
        let now = Instant::now();
        arrivals.arrived(now);
        let until = now + arrivals.linger();
        let mut bytes = size(&first);
        let mut batch = vec![first];
        while bytes < MAX_BATCH_BYTES {
            let left = until.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                // Not lingering: whatever is queued already still joins the batch.
                rx.try_recv().ok()
            } else {
                rx.recv_timeout(left).ok()
            };
            let Some(r) = next else { break };
            arrivals.arrived(Instant::now());
            bytes += size(&r);
            batch.push(r);
        }
        append(bus, batch, &mut names);
    }
}

/// How far apart polls reach the publisher, to decide whether a batch waits for more.
/// Lingering pays when polls come in faster than [`LINGER`] (one append call, one wakeup
/// of this thread, for several polls); when they come in slower, it only adds a wakeup
/// and the linger's delay to each poll (a small fleet: 200 devices every 30 s is a poll
/// every 150 ms).
#[derive(Debug, Default)]
struct Arrivals {
    last: Option<Instant>,
    /// Moving average of the gap between requests, in microseconds.
    gap_us: Option<f64>,
}

impl Arrivals {
    /// Weight of the newest gap in the average.
    const WEIGHT: f64 = 0.2;

    fn arrived(&mut self, at: Instant) {
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last).as_micros() as f64;
            self.gap_us = Some(match self.gap_us {
                Some(avg) => avg + Self::WEIGHT * (gap - avg),
                None => gap,
            });
        }
        self.last = Some(at);
    }

    /// [`LINGER`] when requests have been arriving less than a linger apart, else none.
    fn linger(&self) -> Duration {
        match self.gap_us {
            Some(gap) if gap < LINGER.as_micros() as f64 => LINGER,
            _ => Duration::ZERO,
        }
    }
}

/// One shared name per topic for the locations the publisher hands out: the status
/// page keeps a device's last locations for the device's lifetime, and a name made per
/// batch would keep a block of the publisher's short-lived memory resident per device.
#[derive(Default)]
struct TopicNames(HashMap<String, Arc<str>>);

/// Topics named before the list starts over (a node publishes to a handful).
const MAX_TOPIC_NAMES: usize = 1024;

impl TopicNames {
    fn get(&mut self, topic: &str) -> Arc<str> {
        if let Some(name) = self.0.get(topic) {
            return Arc::clone(name);
        }
        if self.0.len() >= MAX_TOPIC_NAMES {
            self.0.clear();
        }
        let name: Arc<str> = Arc::from(topic);
        self.0.insert(topic.to_owned(), Arc::clone(&name));
        name
    }
}

/// A request's messages for one topic: (topic, index of the first in that topic's list
/// of the batch, count).
type Span = (String, usize, usize);
/// Where each message of a topic's list landed (partition, offset).
type Landed = Vec<Option<(u32, u64)>>;

/// Appends a batch, one call per topic in order of first appearance, and answers each
/// request with the first failure among its topics, or where its messages landed.
fn append(bus: &Bus, batch: Vec<Request>, names: &mut TopicNames) {
    let mut order: Vec<String> = Vec::new();
    let mut messages: HashMap<String, Vec<Message>> = HashMap::new();
    let mut replies: Vec<(Reply, Vec<Span>)> = Vec::with_capacity(batch.len());
    for request in batch {
        let mut spans = Vec::new();
        for (topic, list) in request.per_topic {
            if !messages.contains_key(&topic) {
                order.push(topic.clone());
            }
            let all = messages.entry(topic.clone()).or_default();
            spans.push((topic, all.len(), list.len()));
            all.extend(list);
        }
        replies.push((request.reply, spans));
    }
    let now = now_ms();
    let mut failed: HashMap<String, Arc<BusError>> = HashMap::new();
    let mut landed: HashMap<String, (Arc<str>, Landed)> = HashMap::new();
    for topic in order {
        let list = messages.remove(&topic).unwrap_or_default();
        match bus.publish(&topic, list, now) {
            Ok(offsets) => {
                landed.insert(topic.clone(), (names.get(&topic), offsets));
            }
            Err(e) => {
                failed.insert(topic, Arc::new(e));
            }
        }
    }
    for (reply, spans) in replies {
        let result = match spans.iter().find_map(|(t, _, _)| failed.get(t)) {
            Some(e) => Err(PublishError::Bus(Arc::clone(e))),
            None => Ok(spans
                .iter()
                .filter_map(|(t, start, count)| {
                    let (name, offsets) = landed.get(t)?;
                    Some(runs(name, offsets.get(*start..start + count)?))
                })
                .flatten()
                .collect()),
        };
        let _ = reply.send(result);
    }
}

/// Consecutive offsets of one partition as runs.
fn runs(topic: &Arc<str>, offsets: &[Option<(u32, u64)>]) -> Vec<Location> {
    let mut out: Vec<Location> = Vec::new();
    for (partition, offset) in offsets.iter().flatten().copied() {
        match out.last_mut() {
            Some(run)
                if run.partition == partition
                    && run.first_offset + u64::from(run.count) == offset =>
            {
                run.count += 1;
            }
            _ => out.push(Location {
                topic: Arc::clone(topic),
                partition,
                first_offset: offset,
                count: 1,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use panoptes_storage::{StorageError, Store};

    fn message(i: usize) -> Message {
        Message {
            key: "k".into(),
            partition_key: format!("p{i}"),
            value: format!("v{i}").into_bytes(),
        }
    }

    /// A publish the store cannot write is answered with the store's error (the poll
    /// counts it as a failed publish) and leaves nothing behind; the next one lands.
    #[tokio::test]
    async fn a_publish_the_store_refuses_fails_with_its_error_and_leaves_nothing() {
        let (store, faults) = panoptes_storage::testing::with_faults(
            Store::memory(),
            panoptes_storage::Durability::Process,
        )
        .unwrap();
        let bus = Bus::new(store, 1);
        let publisher = Publisher::start(bus.clone()).unwrap();
        faults.fail_writes(28);
        let refused = publisher
            .publish(vec![("t".to_string(), vec![message(0), message(1)])])
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, PublishError::Bus(e) if matches!(**e, BusError::Store(StorageError::Write { .. }))),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            "No space left on device (os error 28) writing topics/t/0/00000000000000000000.log"
        );
        faults.heal();
        publisher
            .publish(vec![("t".to_string(), vec![message(2)])])
            .await
            .unwrap();
        let records = bus.topic("t").unwrap().read(0, 0, 10, usize::MAX).unwrap();
        let values: Vec<(u64, Vec<u8>)> = records
            .into_iter()
            .map(|r| (r.offset, r.record.value))
            .collect();
        assert_eq!(values, vec![(0, b"v2".to_vec())]);
    }

    /// With `fsync` durability a publish is acknowledged only after the `fdatasync`
    /// covering it: one that fails is answered with the store's failure.
    #[tokio::test]
    async fn with_fsync_durability_a_publish_waits_for_its_fdatasync() {
        let (store, faults) = panoptes_storage::testing::with_faults(
            Store::memory(),
            panoptes_storage::Durability::PowerLoss,
        )
        .unwrap();
        let bus = Bus::new(store.clone(), 1);
        let publisher = Publisher::start(bus).unwrap();
        publisher
            .publish(vec![("t".to_string(), vec![message(0)])])
            .await
            .unwrap();
        assert_eq!(
            store.stats().unwrap().fsyncs,
            4,
            "three directories and the segment"
        );
        faults.fail_syncs(5);
        let failed = publisher
            .publish(vec![("t".to_string(), vec![message(1)])])
            .await
            .unwrap_err();
        assert_eq!(
            failed.to_string(),
            "storage failed and acknowledges no more writes (restart the process): \
             fdatasync of topics/t/0/00000000000000000000.log failed: \
             Input/output error (os error 5)"
        );
    }

    #[tokio::test]
    async fn concurrent_polls_land_together_and_in_order() {
        let bus = Bus::new(Store::temporary().unwrap(), 1);
        let publisher = Publisher::start(bus.clone()).unwrap();
        let mut polls = tokio::task::JoinSet::new();
        for p in 0..20 {
            let publisher = publisher.clone();
            polls.spawn(async move {
                let list = (0..5).map(|i| message(p * 5 + i)).collect();
                (p, publisher.publish(vec![("t".to_string(), list)]).await)
            });
        }
        let mut located = Vec::new();
        while let Some(result) = polls.join_next().await {
            let (p, locations) = result.unwrap();
            located.push((p, locations.unwrap()));
        }
        let topic = bus.topic("t").unwrap();
        // Each poll is told where its five messages are: one run of five.
        for (p, locations) in &located {
            assert_eq!(locations.len(), 1, "poll {p}: {locations:?}");
            let run = &locations[0];
            assert_eq!((&*run.topic, run.partition, run.count), ("t", 0, 5));
            let first = topic.read(0, run.first_offset, 1, usize::MAX).unwrap();
            assert_eq!(first[0].record.value, format!("v{}", p * 5).into_bytes());
        }
        let records = topic.read(0, 0, 1000, usize::MAX).unwrap();
        assert_eq!(records.len(), 100);
        // Each poll's five messages are consecutive and in order.
        for chunk in records.chunks(5) {
            let first: usize = String::from_utf8_lossy(&chunk[0].record.value)[1..]
                .parse()
                .unwrap();
            assert_eq!(first % 5, 0);
            for (i, r) in chunk.iter().enumerate() {
                assert_eq!(r.record.value, format!("v{}", first + i).into_bytes());
            }
        }
    }

    /// A batch waits for more only while polls come in faster than the linger.
    #[test]
    fn lingers_only_while_polls_come_in_faster_than_the_linger() {
        let t0 = Instant::now();
        let mut a = Arrivals::default();
        assert_eq!(a.linger(), Duration::ZERO, "nothing known yet");
        // 200 devices every 30 s: a poll every 150 ms.
        for i in 0..10 {
            a.arrived(t0 + Duration::from_millis(150 * i));
        }
        assert_eq!(a.linger(), Duration::ZERO);
        // 10,000 devices every 30 s: one every 3 ms. The average follows within a few.
        let busy = t0 + Duration::from_secs(2);
        let mut lingered_after = None;
        for i in 0..40u32 {
            a.arrived(busy + Duration::from_millis(3) * i);
            if lingered_after.is_none() && a.linger() == LINGER {
                lingered_after = Some(i);
            }
        }
        assert!(
            matches!(lingered_after, Some(n) if (5..=20).contains(&n)),
            "{lingered_after:?}"
        );
        // Quiet again: it stops lingering.
        let quiet = busy + Duration::from_secs(1);
        for i in 0..30u64 {
            a.arrived(quiet + Duration::from_millis(200 * i));
        }
        assert_eq!(a.linger(), Duration::ZERO);
    }

    /// Polls published one after another, in separate batches, are told the same topic
    /// name (one block, not one per batch), which starts over past its bound.
    #[tokio::test]
    async fn batches_share_one_name_per_topic() {
        let bus = Bus::new(Store::temporary().unwrap(), 1);
        let publisher = Publisher::start(bus).unwrap();
        let first = publisher
            .publish(vec![("t".to_string(), vec![message(0)])])
            .await
            .unwrap();
        // Past the linger: a batch of its own.
        tokio::time::sleep(LINGER * 3).await;
        let second = publisher
            .publish(vec![("t".to_string(), vec![message(1)])])
            .await
            .unwrap();
        assert_eq!((first[0].first_offset, second[0].first_offset), (0, 1));
        assert!(Arc::ptr_eq(&first[0].topic, &second[0].topic));

        let mut names = TopicNames::default();
        let t = names.get("t");
        assert!(Arc::ptr_eq(&t, &names.get("t")));
        for i in 1..MAX_TOPIC_NAMES {
            names.get(&format!("t{i}"));
        }
        assert_eq!(names.0.len(), MAX_TOPIC_NAMES);
        // Full: the list starts over with the next new name.
        let _ = names.get("new");
        assert_eq!(names.0.len(), 1);
        let again = names.get("t");
        assert_eq!(&*again, "t");
        assert!(!Arc::ptr_eq(&t, &again));
    }
}
