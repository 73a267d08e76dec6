//! A consumer group's view of one topic partition, for the actors' `Consumer`: reads from
//! an offset, commits durably, and reports lag without I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use panoptes_actors::{BoxFuture, Source};
use panoptes_storage::{ConsumerOffsets, Topic};

use crate::agent::blocking;

/// One partition of a topic, read for a consumer group.
pub struct TopicSource {
    pub topic: Topic,
    pub partition: u32,
    pub group: String,
    pub offsets: ConsumerOffsets,
    /// Last seen lag, so `lag()` needs no I/O.
    pub lag: Arc<AtomicU64>,
}

/// (message key, value) of one record.
pub type Item = (Option<Vec<u8>>, Vec<u8>);

impl Source for TopicSource {
    type Item = Item;

    fn committed(&mut self) -> BoxFuture<Result<u64, String>> {
        let (offsets, group, topic, p) = (
            self.offsets.clone(),
            self.group.clone(),
            self.topic.clone(),
            self.partition,
        );
        Box::pin(blocking(move || {
            let committed = offsets
                .committed(&group, topic.name(), p)
                .map_err(|e| e.to_string())?;
            match committed {
                Some(o) => Ok(o),
                None => topic.low_watermark(p).map_err(|e| e.to_string()),
            }
        }))
    }

    fn fetch(&mut self, from: u64, max: usize) -> BoxFuture<Result<Vec<(u64, Item)>, String>> {
        let (topic, p, lag) = (self.topic.clone(), self.partition, Arc::clone(&self.lag));
        Box::pin(blocking(move || {
            let records = topic
                .read(p, from, max, 8 << 20)
                .map_err(|e| e.to_string())?;
            let high = topic.high_watermark(p).map_err(|e| e.to_string())?;
            let next = records.last().map(|r| r.offset + 1).unwrap_or(from);
            lag.store(high.saturating_sub(next), Ordering::Relaxed);
            Ok(records
                .into_iter()
                .map(|r| (r.offset, (r.record.key, r.record.value)))
                .collect())
        }))
    }

    fn commit(&mut self, next_offset: u64) -> BoxFuture<Result<(), String>> {
        let (offsets, group, topic, p) = (
            self.offsets.clone(),
            self.group.clone(),
            self.topic.clone(),
            self.partition,
        );
        Box::pin(blocking(move || {
            offsets
                .commit(&group, topic.name(), p, next_offset)
                .map_err(|e| e.to_string())
        }))
    }

    fn lag(&self) -> Option<u64> {
        Some(self.lag.load(Ordering::Relaxed))
    }
}
