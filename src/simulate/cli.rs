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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        simulate: SimulateArgs,
    }

    #[test]
    fn arguments_and_defaults() {
        let cli = Cli::try_parse_from(["simulate", "dev.snmprec"]).unwrap();
        assert_eq!(cli.simulate.listen, "127.0.0.1:1161".parse().unwrap());
        assert_eq!(cli.simulate.community, "public");
        assert!(!cli.simulate.frozen);
        assert_eq!(cli.simulate.recording, PathBuf::from("dev.snmprec"));
        let cli = Cli::try_parse_from([
            "simulate",
            "--listen",
            "0.0.0.0:0",
            "--community",
            "c",
            "--frozen",
            "x",
        ])
        .unwrap();
        assert!(cli.simulate.frozen);
        assert!(Cli::try_parse_from(["simulate"]).is_err());
    }

    #[tokio::test]
    async fn bad_recording_fails_before_listening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.snmprec");
        std::fs::write(&path, "1.3.6.1|2|1\nnot a line\n").unwrap();
        let args = SimulateArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            community: "public".into(),
            frozen: true,
            recording: path.clone(),
        };
        let err = run_cli(args).await.unwrap_err().to_string();
        assert!(err.contains(&format!("{}:2:", path.display())), "{err}");
    }
}
