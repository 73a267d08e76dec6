//! A consumer group's view of one topic partition, for the actors' `Consumer`: reads from
//! an offset, commits durably, and reports lag (records not yet committed) without I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use panoptes_actors::{BoxFuture, JobError, Source};
use panoptes_storage::{ConsumerOffsets, Topic};

use super::BusError;
use crate::blocking::blocking;

/// One partition of a topic, read for a consumer group.
#[derive(Clone)]
pub struct TopicSource {
    pub topic: Topic,
    pub partition: u32,
    pub group: String,
    pub offsets: ConsumerOffsets,
    /// The committed position as last read or written, so `lag()` needs no I/O (the
    /// high watermark is an in-memory atomic) and keeps growing while a sink is down.
    pub committed: Arc<AtomicU64>,
    /// Woken by every append to the topic ([`super::Bus`] registers it with the store),
    /// so a caught-up consumer sleeps until records arrive; `None`: it polls.
    pub appended: Option<Arc<tokio::sync::Notify>>,
}

/// (message key, value) of one record.
pub type Item = (Option<Vec<u8>>, Vec<u8>);

impl TopicSource {
    /// `work` on a blocking thread (the store may flush), with its own handle on this
    /// source.
    fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce(TopicSource) -> Result<T, BusError> + Send + 'static,
    ) -> BoxFuture<Result<T, JobError>> {
        let this = self.clone();
        let done = blocking(move || work(this));
        Box::pin(async move { done.await.map_err(JobError::failed) })
    }
}

impl Source for TopicSource {
    type Item = Item;

    fn committed(&mut self) -> BoxFuture<Result<u64, JobError>> {
        self.off_thread(|s| {
            let at = match s.offsets.committed(&s.group, s.topic.name(), s.partition)? {
                Some(o) => o,
                None => s.topic.low_watermark(s.partition)?,
            };
            s.committed.store(at, Ordering::Relaxed);
            Ok(at)
        })
    }

    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Vec<(u64, Item)>, JobError>> {
        // Caught up (the usual answer to a consumer's poll four times a second): nothing
        // to read (as the log itself answers at or past its end), so no trip to a
        // blocking thread to read it.
        if self
            .topic
            .high_watermark(self.partition)
            .is_ok_and(|high| from >= high)
        {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        self.off_thread(move |s| {
            let records = s.topic.read(s.partition, from, max, 8 << 20)?;
            Ok(records
                .into_iter()
                .map(|r| (r.offset, (r.record.key, r.record.value)))
                .collect())
        })
    }

    fn commit(&mut self, next_offset: u64) -> BoxFuture<Result<(), JobError>> {
        self.off_thread(move |s| {
            s.offsets
                .commit(&s.group, s.topic.name(), s.partition, next_offset)?;
            s.committed.store(next_offset, Ordering::Relaxed);
            Ok(())
        })
    }

    fn lag(&self) -> Option<u64> {
        let high = self.topic.high_watermark(self.partition).ok()?;
        Some(high.saturating_sub(self.committed.load(Ordering::Relaxed)))
    }

    fn until_more(&self, from: u64) -> Option<BoxFuture<()>> {
        let appended = Arc::clone(self.appended.as_ref()?);
        let (topic, partition) = (self.topic.clone(), self.partition);
        Some(Box::pin(async move {
            loop {
                // Listening before looking, so an append between the look and the wait
                // still wakes it.
                let notified = appended.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // A watermark that cannot be read (the topic was deleted): let the
                // consumer's fetch meet the error and report it.
                if topic
                    .high_watermark(partition)
                    .map_or(true, |high| high > from)
                {
                    return;
                }
                notified.await;
            }
        }))
    }
}

/// One partition of the external cluster, read for a consumer group: with simple commits,
/// or as a member of the group (`member`), whose commits carry its generation and stop
/// once the partition is no longer assigned to it.
#[derive(Clone)]
pub struct ExternalSource {
    pub cluster: crate::kafka::ExternalCluster,
    pub topic: String,
    pub partition: u32,
    pub group: String,
    pub member: Option<tokio::sync::watch::Receiver<crate::cluster::Membership>>,
}

impl ExternalSource {
    /// The generation to commit in: `Ok(None)` for a simple commit, an error when this
    /// member no longer owns the partition (its new owner commits from now on).
    fn generation(&self) -> Result<Option<crate::kafka::Generation>, BusError> {
        let Some(member) = &self.member else {
            return Ok(None);
        };
        let m = member.borrow();
        if !m.partitions.contains(&self.partition) {
            return Err(BusError::NotAssigned {
                topic: self.topic.clone(),
                partition: self.partition,
                generation: m.generation,
            });
        }
        Ok(Some(crate::kafka::Generation {
            id: m.generation,
            member_id: m.member_id.clone(),
        }))
    }
}

/// A failed request to the external cluster, as the consumer carries it.
fn external(e: crate::kafka::ExternalError) -> JobError {
    JobError::failed(BusError::External(e))
}

impl Source for ExternalSource {
    type Item = Item;

    fn committed(&mut self) -> BoxFuture<Result<u64, JobError>> {
        let s = self.clone();
        Box::pin(async move {
            s.cluster
                .committed(&s.group, &s.topic, s.partition)
                .await
                .map_err(external)
        })
    }

    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Vec<(u64, Item)>, JobError>> {
        let (c, t, p) = (self.cluster.clone(), self.topic.clone(), self.partition);
        Box::pin(async move { c.fetch(&t, p, from, max).await.map_err(external) })
    }

    fn commit(&mut self, next_offset: u64) -> BoxFuture<Result<(), JobError>> {
        let member = match self.generation() {
            Ok(m) => m,
            Err(e) => return Box::pin(async move { Err(JobError::failed(e)) }),
        };
        let s = self.clone();
        Box::pin(async move {
            s.cluster
                .commit(&s.group, &s.topic, s.partition, next_offset, member)
                .await
                .map_err(external)
        })
    }
}

/// A partition of the embedded log or of the external cluster.
pub enum PartitionSource {
    Local(TopicSource),
    External(ExternalSource),
}

impl Source for PartitionSource {
    type Item = Item;

    fn committed(&mut self) -> BoxFuture<Result<u64, JobError>> {
        match self {
            PartitionSource::Local(s) => s.committed(),
            PartitionSource::External(s) => s.committed(),
        }
    }

    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Vec<(u64, Item)>, JobError>> {
        match self {
            PartitionSource::Local(s) => s.fetch(from, max),
            PartitionSource::External(s) => s.fetch(from, max),
        }
    }

    fn commit(&mut self, next_offset: u64) -> BoxFuture<Result<(), JobError>> {
        match self {
            PartitionSource::Local(s) => s.commit(next_offset),
            PartitionSource::External(s) => s.commit(next_offset),
        }
    }

    fn lag(&self) -> Option<u64> {
        match self {
            PartitionSource::Local(s) => s.lag(),
            PartitionSource::External(_) => None,
        }
    }

    fn until_more(&self, from: u64) -> Option<BoxFuture<()>> {
        match self {
            PartitionSource::Local(s) => s.until_more(from),
            PartitionSource::External(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use panoptes_storage::{Record, Store};

    fn record(value: &[u8]) -> Record {
        Record {
            key: Some(b"k".to_vec()),
            value: value.to_vec(),
            timestamp_ms: 1,
            headers: Vec::new(),
        }
    }

    /// A consumer caught up gets nothing at once (no blocking read); once records are
    /// appended the same offset reads them.
    #[tokio::test]
    async fn a_fetch_at_the_high_watermark_is_empty_until_records_arrive() {
        let store = Store::temporary().unwrap();
        let topic = store.topic("t", 1).unwrap();
        topic.append(0, &[record(b"a")]).unwrap();
        let mut source = TopicSource {
            topic: topic.clone(),
            partition: 0,
            group: "g".into(),
            offsets: store.consumer_offsets().unwrap(),
            committed: Arc::default(),
            appended: None,
        };
        assert!(source.fetch(1, 10).await.unwrap().is_empty());
        topic.append(0, &[record(b"b"), record(b"c")]).unwrap();
        let got = source.fetch(1, 10).await.unwrap();
        let values: Vec<(u64, Vec<u8>)> = got.into_iter().map(|(o, (_, v))| (o, v)).collect();
        assert_eq!(values, vec![(1, b"b".to_vec()), (2, b"c".to_vec())]);
        assert!(source.fetch(3, 10).await.unwrap().is_empty());
        assert!(source.fetch(9, 10).await.unwrap().is_empty());
        let again = source.fetch(0, 1).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1 .1, b"a".to_vec());
    }

    /// A consumer's source on the bus sleeps until its topic grows past where it read:
    /// appends elsewhere do not wake it, records already there wake it at once.
    #[tokio::test]
    async fn until_more_resolves_when_the_topic_grows() {
        use std::time::Duration;
        let bus = crate::bus::Bus::new(Store::temporary().unwrap(), 1);
        let sources = bus.sources("t", "g").await.unwrap();
        let PartitionSource::Local(source) = &sources[0] else {
            panic!("a bus without a cluster reads the embedded log");
        };
        let quiet = Duration::from_millis(150);
        let mut waiting = source.until_more(0).expect("the embedded log tells");
        assert!(tokio::time::timeout(quiet, &mut waiting).await.is_err());
        bus.topic("u").unwrap().append(0, &[record(b"x")]).unwrap();
        assert!(
            tokio::time::timeout(quiet, &mut waiting).await.is_err(),
            "woken by another topic"
        );
        bus.topic("t").unwrap().append(0, &[record(b"a")]).unwrap();
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("an append to the topic wakes it");
        // Already there: no wait. Past it: waits again.
        let there = source.until_more(0).unwrap();
        tokio::time::timeout(Duration::from_secs(10), there)
            .await
            .expect("a record at the offset asked for");
        let past = source.until_more(1).unwrap();
        assert!(tokio::time::timeout(quiet, past).await.is_err());
    }
}
