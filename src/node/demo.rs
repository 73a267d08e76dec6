//! The demo device: a simulated 48-port switch on `demo.listen`, so that `panoptes run`
//! polls something with no other service.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::Settings;
use crate::simulate::{
    CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig, SimulatorHandle,
};

/// The demo switch's recording, built in so `panoptes run` works from anywhere.
const DEMO_RECORDING: &str = include_str!("../../resources/demo/switch48.snmprec");

/// Starts the demo device when `demo.enabled`.
pub(super) async fn start_if_enabled(settings: &Settings) -> Result<Option<SimulatorHandle>> {
    if !settings.demo.enabled {
        return Ok(None);
    }
    start(settings).await.map(Some)
}

async fn start(settings: &Settings) -> Result<SimulatorHandle> {
    let (text, source) = if settings.demo.recording.is_empty() {
        (
            DEMO_RECORDING.to_string(),
            "built-in demo switch48.snmprec".to_string(),
        )
    } else {
        let path = &settings.demo.recording;
        (
            std::fs::read_to_string(path).with_context(|| format!("demo.recording {path}"))?,
            path.clone(),
        )
    };
    let recording = Arc::new(Recording::parse(&text, &source)?);
    let device = DeviceConfig::new(
        settings.demo.listen,
        recording,
        settings.demo.community.clone(),
    );
    let handle = Simulator::spawn(SimulatorConfig::new(CounterMode::Advancing).with_device(device))
        .await
        .with_context(|| {
            format!(
                "starting the demo SNMP device on {} (set demo.enabled = false or PANOPTES__DEMO__LISTEN)",
                settings.demo.listen
            )
        })?;
    tracing::info!(listen = ?handle.local_addrs(), "demo device (simulated 48-port switch) is up");
    Ok(handle)
}
