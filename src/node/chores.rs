//! What the node does besides its pipeline: periodic housekeeping of the store, and
//! waiting for the signal to stop.

use std::sync::Arc;
use std::time::Duration;

use panoptes_storage::Store;

use crate::bus::Bus;
use crate::config::Settings;
use crate::events::KeysExpired;
use crate::telemetry::Telemetry;

/// TTL sweeps every 5 s; topic retention every 10 s (a big fleet appends tens of MB a
/// second); the rate state's sweep every minute.
pub(super) async fn housekeeping(
    store: Store,
    rates: Arc<crate::transform::RateStore>,
    bus: Bus,
    settings: Settings,
    telemetry: Arc<Telemetry>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut rounds: u64 = 0;
    loop {
        tick.tick().await;
        rounds += 1;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.sweep_expired()).await {
            Ok(Ok(count)) => KeysExpired { count }.emit(&telemetry),
            Ok(Err(e)) => tracing::warn!(error = %e, "TTL sweep failed"),
            Err(e) => tracing::warn!(error = %e, "TTL sweep task failed"),
        }
        if rounds.is_multiple_of(12) {
            let rates = Arc::clone(&rates);
            let _ = tokio::task::spawn_blocking(move || {
                rates.sweep();
            })
            .await;
        }
        if rounds.is_multiple_of(2) {
            let (bus, retention) = (bus.clone(), settings.retention.clone());
            let _ = tokio::task::spawn_blocking(move || {
                let age = (retention.max_age_hours > 0).then(|| Duration::from_secs(retention.max_age_hours * 3600));
                let bytes = (retention.max_partition_mib > 0).then_some(retention.max_partition_mib << 20);
                for name in bus.store().topic_names().unwrap_or_default() {
                    match bus.topic(&name).and_then(|t| t.apply_retention(age, bytes)) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(topic = %name, records = n, "retention removed old records"),
                        Err(e) => tracing::warn!(topic = %name, error = %e, "retention failed"),
                    }
                }
            })
            .await;
        }
    }
}

/// SIGINT or SIGTERM.
pub(super) async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
