//! The resource manager's consumer: reads `<site>-resources` in consumer group
//! `resource_manager_group` and reconciles each resource set into the resource store.
//! Offsets are committed only after the store accepted the batch.

use std::sync::Arc;

use panoptes_actors::{BoxFuture, JobError, Sink};
use panoptes_storage::StorageError;

use super::Shared;
use crate::blocking::{blocking, TaskFailed};
pub use crate::bus::{Item, TopicSource};
use crate::events::{InputRejected, ResourcesReconciled};
use crate::model::{FromJsonError, ResourceSet};

pub const GROUP: &str = "resource_manager_group";

/// Why a batch of resource sets was not reconciled: it is delivered again.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StorageError),
    #[error(transparent)]
    Task(#[from] TaskFailed),
}

/// Reconciles resource sets; a message that is not a valid resource set is counted,
/// logged and skipped (it can never become valid by retrying).
pub struct ReconcileSink {
    pub shared: Arc<Shared>,
}

impl Sink<Item> for ReconcileSink {
    fn deliver(&mut self, batch: Arc<[Item]>) -> BoxFuture<Result<(), JobError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let worker = Arc::clone(&shared);
            let changed = blocking(move || -> Result<bool, ReconcileError> {
                let mut changed = false;
                for (key, value) in batch.iter() {
                    let key = key
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    let set = serde_json::from_slice::<serde_json::Value>(value)
                        .map_err(FromJsonError::from)
                        .and_then(|v| Ok(ResourceSet::from_json(&v)?));
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
                    let report = worker.resources.reconcile(&key, &set)?;
                    ResourcesReconciled {
                        message_key: &key,
                        report: &report,
                    }
                    .emit(&worker.telemetry);
                    changed |= report.changed();
                }
                Ok(changed)
            })
            .await
            .map_err(JobError::failed)?;
            if changed {
                Shared::rescan(&shared.enrichment_scheduler);
                Shared::rescan(&shared.polling_scheduler);
            }
            Ok(())
        })
    }
}
