//! The resource manager's consumer: reads `<site>-resources` in consumer group
//! `resource_manager_group` and reconciles each resource set into the resource store.
//! Offsets are committed only after the store accepted the batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use panoptes_actors::{BoxFuture, Sink, Source};
use panoptes_storage::{ConsumerOffsets, Topic};

use super::{blocking, Shared};
use crate::events::{InputRejected, ResourcesReconciled};
use crate::model::ResourceSet;

pub const GROUP: &str = "resource_manager_group";

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

/// Reconciles resource sets; a message that is not a valid resource set is counted,
/// logged and skipped (it can never become valid by retrying).
pub struct ReconcileSink {
    pub shared: Arc<Shared>,
}

impl Sink<Item> for ReconcileSink {
    fn deliver(&mut self, batch: Arc<[Item]>) -> BoxFuture<Result<(), String>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let worker = Arc::clone(&shared);
            let changed = blocking(move || {
                let mut changed = false;
                for (key, value) in batch.iter() {
                    let key = key
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    let set = serde_json::from_slice::<serde_json::Value>(value)
                        .map_err(|e| e.to_string())
                        .and_then(|v| ResourceSet::from_json(&v).map_err(|e| e.to_string()));
                    let set = match set {
                        Ok(s) => s,
                        Err(e) => {
                            let reason = format!("resource set keyed `{key}`: {e}");
                            InputRejected {
                                source: "resources topic",
                                reason: &reason,
                            }
                            .emit(&worker.telemetry);
                            continue;
                        }
                    };
                    let report = worker
                        .resources
                        .reconcile(&key, &set)
                        .map_err(|e| e.to_string())?;
                    ResourcesReconciled {
                        message_key: &key,
                        report: &report,
                    }
                    .emit(&worker.telemetry);
                    changed |= report.changed();
                }
                Ok(changed)
            })
            .await?;
            if changed {
                Shared::rescan(&shared.enrichment_scheduler);
                Shared::rescan(&shared.polling_scheduler);
            }
            Ok(())
        })
    }
}
