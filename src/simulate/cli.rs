//! `panoptes simulate`: serve one recording until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// UDP address to answer SNMP on.
    #[arg(long, default_value = "127.0.0.1:1161")]
    pub listen: SocketAddr,
    /// Community the simulated device accepts; others get no answer.
    #[arg(long, default_value = "public")]
    pub community: String,
    /// Serve counters exactly as recorded instead of advancing them with time.
    #[arg(long)]
    pub frozen: bool,
    /// The .snmprec recording to serve.
    pub recording: PathBuf,
}

pub async fn run_cli(args: SimulateArgs) -> anyhow::Result<()> {
    let recording = Recording::load(&args.recording)?;
    let oids = recording.len();
    if recording.duplicates() > 0 {
        tracing::warn!(
            recording = %args.recording.display(),
            duplicates = recording.duplicates(),
            "recording repeats some OIDs; the last value of each is served"
        );
    }
    let mode = if args.frozen {
        CounterMode::Frozen
    } else {
        CounterMode::Advancing
    };
    let config = SimulatorConfig::new(mode).with_device(DeviceConfig::new(
        args.listen,
        Arc::new(recording),
        args.community,
    ));
    let handle = Simulator::spawn(config)
        .await
        .with_context(|| format!("cannot start the SNMP simulator on {}", args.listen))?;
    for addr in handle.local_addrs() {
        tracing::info!(
            %addr,
            oids,
            recording = %args.recording.display(),
            ?mode,
            "SNMP simulator listening (v2c, v1 GET/GETNEXT)"
        );
    }
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    let counters = handle.total_counters();
    tracing::info!(
        served = counters.served,
        malformed = counters.malformed,
        wrong_community = counters.wrong_community,
        unsupported = counters.unsupported,
        "SNMP simulator stopping"
    );
    handle.shutdown().await;
    Ok(())
}
