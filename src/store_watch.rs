//! The node's watch over its store: what `/ready` says about storage, the store's
//! housekeeping every second (`Store::check`: the engine's reserved space, the write
//! probe while writes fail, so readiness comes back by itself once space does), and the
//! end of the node once the store has failed for good (a failed `fsync`, sled refusing
//! every write): only a restart reads back what is really on disk, so the node stops
//! with [`EXIT_STORAGE_FAILED`] for its service manager to restart it.

use std::time::Duration;

use panoptes_storage::{Health, Store};

use crate::events::StoreHealthChanged;
use crate::http::Readiness;

/// The exit status of a node stopped by a storage failure: 74, `EX_IOERR` of
/// `sysexits.h` ("an error occurred while doing I/O on some file").
pub const EXIT_STORAGE_FAILED: u8 = 74;

/// How often the store is checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Why the node stopped: the store failed and acknowledges nothing more.
#[derive(Debug, thiserror::Error)]
#[error("storage failed, restart needed (exit status {EXIT_STORAGE_FAILED}): {reason}")]
pub struct StorageFailed {
    pub reason: String,
}

/// `/ready`'s view of the store: not ready, with the store's reason, while writes fail
/// or once it has failed.
pub fn readiness(store: Store) -> Readiness {
    Box::new(move || store.health().reason().map(|r| format!("storage: {r}")))
}

/// Checks the store every second, logging every change of its health it sees, and returns
/// once it has failed.
pub async fn watch(store: Store) -> StorageFailed {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Health::Ok;
    loop {
        tick.tick().await;
        let s = store.clone();
        let health = match tokio::task::spawn_blocking(move || s.check()).await {
            Ok(health) => health,
            Err(e) => {
                tracing::warn!(error = %e, "the storage check task failed");
                continue;
            }
        };
        if health != last {
            StoreHealthChanged { to: &health }.emit();
        }
        if let Health::Failed { reason } = health {
            return StorageFailed { reason };
        }
        last = health;
    }
}
