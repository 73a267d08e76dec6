//! `panoptes simulate`: serve one recording as one or many devices until Ctrl-C.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use std::time::Duration;

use crate::snmp::UsmUser;

use super::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// UDP address to answer SNMP on.
    #[arg(long, default_value = "127.0.0.1:1161")]
    pub listen: SocketAddr,
    /// Community the simulated device accepts; others get no answer. Better given in the
    /// environment than on the command line, where other users of the machine see it.
    #[arg(
        long,
        env = "PANOPTES_SIMULATE_COMMUNITY",
        default_value = "public",
        hide_env_values = true
    )]
    pub community: String,
    /// Serve counters exactly as recorded instead of advancing them with time.
    #[arg(long)]
    pub frozen: bool,
    /// A v3 user, NAME or NAME:AUTH:AUTHPASS or NAME:AUTH:AUTHPASS:PRIV:PRIVPASS
    /// (AUTH: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512; PRIV: DES, AES,
    /// AES-192, AES-256). Repeatable. Without any, v3 requests are dropped.
    /// Passphrases on the command line are visible to every user of the machine (`ps`):
    /// prefer --v3-users-file or the environment.
    #[arg(long = "v3-user", value_name = "SPEC", value_parser = UsmUser::parse_spec)]
    pub v3_users: Vec<UsmUser>,
    /// A file of v3 users, one SPEC (as --v3-user) per line; `#` starts a comment.
    #[arg(long = "v3-users-file", value_name = "FILE")]
    pub v3_users_file: Option<PathBuf>,
    /// v3 users, one SPEC per line, from the environment.
    #[arg(
        long = "v3-users-env",
        env = "PANOPTES_SIMULATE_V3_USERS",
        value_name = "SPECS",
        hide_env_values = true,
        hide = true
    )]
    pub v3_users_env: Option<String>,
    /// Simulated devices: on consecutive ports from --listen (or consecutive
    /// addresses with --spread-addresses); port 0 gives each a free port.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub devices: u32,
    /// Put devices on consecutive addresses of 127.0.0.0/8 (same port)
    /// instead of consecutive ports.
    #[arg(long)]
    pub spread_addresses: bool,
    /// Print each device's address on stdout, one per line, then `ready`.
    #[arg(long)]
    pub print_addresses: bool,
    /// Stop when standard input reaches its end: a parent that pipes it (as `panoptes
    /// bench` does) is not outlived, even when it is killed.
    #[arg(long)]
    pub stop_when_stdin_closes: bool,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// The .snmprec recording to serve.
    pub recording: PathBuf,
}

/// Users given one spec per line (a file or the environment): errors name the source and
/// line, never the spec (it holds passphrases).
fn users_from_lines(text: &str, source: &str) -> anyhow::Result<Vec<UsmUser>> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| UsmUser::parse_spec(l).map_err(|e| anyhow::anyhow!("{source} line {n}: {e}")))
        .collect()
}

/// Every v3 user: `--v3-user`, then the file, then the environment.
fn all_users(args: &SimulateArgs) -> anyhow::Result<Vec<UsmUser>> {
    let mut users = args.v3_users.clone();
    if let Some(path) = &args.v3_users_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --v3-users-file {}", path.display()))?;
        users.extend(users_from_lines(&text, &path.display().to_string())?);
    }
    if let Some(text) = &args.v3_users_env {
        users.extend(users_from_lines(text, "PANOPTES_SIMULATE_V3_USERS")?);
    }
    Ok(users)
}

/// Where device `index` listens.
fn device_addr(args: &SimulateArgs, index: u32) -> anyhow::Result<SocketAddr> {
    let base = args.listen;
    if args.spread_addresses {
        let IpAddr::V4(ip) = base.ip() else {
            anyhow::bail!("--spread-addresses needs an IPv4 --listen address");
        };
        let n = u32::from(ip)
            .checked_add(index)
            .filter(|n| (n >> 24) == u32::from(ip) >> 24)
            .with_context(|| {
                format!(
                    "{} devices do not fit in {}/8 from {ip}",
                    args.devices,
                    ip.octets()[0]
                )
            })?;
        return Ok(SocketAddr::new(IpAddr::V4(n.into()), base.port()));
    }
    if base.port() == 0 {
        return Ok(base);
    }
    let port = u32::from(base.port()) + index;
    let port = u16::try_from(port).with_context(|| {
        format!(
            "{} devices from port {} run past 65535",
            args.devices,
            base.port()
        )
    })?;
    Ok(SocketAddr::new(base.ip(), port))
}

/// How far device `index`'s counters run ahead: spread over a day, device 0
/// unshifted.
pub fn phase_of(index: u32) -> Duration {
    Duration::from_secs(u64::from(index) * 7_919 % 86_400)
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
    if args.devices == 0 {
        anyhow::bail!("--devices must be at least 1");
    }
    let limit = super::fdlimit::raise_open_files(u64::from(args.devices) + 64);
    if limit < u64::from(args.devices) + 16 {
        anyhow::bail!(
            "{} devices need as many sockets, but this process may open only {limit} files \
             (raise the hard limit: ulimit -Hn)",
            args.devices
        );
    }
    let recording = Arc::new(recording);
    let users = Arc::new(all_users(&args)?);
    let mut config = SimulatorConfig::new(mode);
    for index in 0..args.devices {
        config = config.with_device(
            DeviceConfig::new(
                device_addr(&args, index)?,
                Arc::clone(&recording),
                args.community.clone(),
            )
            .with_v3_users(Arc::clone(&users))
            .with_counter_phase(phase_of(index)),
        );
    }
    let handle = Simulator::spawn(config)
        .await
        .with_context(|| format!("cannot start the SNMP simulator on {}", args.listen))?;
    let addrs = handle.local_addrs();
    if args.print_addresses {
        let mut out = std::io::stdout().lock();
        for addr in &addrs {
            writeln!(out, "{addr}")?;
        }
        writeln!(out, "ready")?;
        out.flush()?;
    }
    let versions = if users.is_empty() {
        "v1, v2c"
    } else {
        "v1, v2c, v3"
    };
    tracing::info!(
        devices = addrs.len(),
        first = %addrs.first().map(ToString::to_string).unwrap_or_default(),
        last = %addrs.last().map(ToString::to_string).unwrap_or_default(),
        oids,
        v3_users = users.len(),
        recording = %args.recording.display(),
        ?mode,
        "SNMP simulator listening ({versions})"
    );
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("cannot wait for Ctrl-C")?,
        () = stdin_closed(args.stop_when_stdin_closes) => {
            tracing::info!("standard input closed: stopping");
        }
    }
    let counters = handle.total_counters();
    tracing::info!(
        served = counters.served,
        malformed = counters.malformed,
        wrong_community = counters.wrong_community,
        unsupported = counters.unsupported,
        security_refused = counters.security_refused,
        "SNMP simulator stopping"
    );
    handle.shutdown().await;
    Ok(())
}

/// Resolves once standard input reaches its end (read on a thread of its own), or never
/// when `watch` is off.
async fn stdin_closed(watch: bool) {
    if !watch {
        return std::future::pending().await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
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
        let err = Cli::try_parse_from(["simulate"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(err.to_string().contains("<RECORDING>"), "{err}");
        let cli = Cli::try_parse_from([
            "simulate",
            "--devices",
            "3",
            "--v3-user",
            "ops:SHA-256:authpass1:AES:privpass1",
            "--v3-user",
            "ro",
            "--listen",
            "127.0.0.1:20000",
            "x",
        ])
        .unwrap();
        let args = cli.simulate;
        assert_eq!(args.v3_users.len(), 2);
        assert_eq!(device_addr(&args, 2).unwrap().port(), 20002);
        let err = Cli::try_parse_from(["simulate", "--v3-user", "ops:SHA:short", "x"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains(
                "v3 user \"ops\": passphrases must be at least 8 characters (RFC 3414 11.2)"
            ),
            "{err}"
        );
        let mut spread = args.clone();
        spread.spread_addresses = true;
        assert_eq!(
            device_addr(&spread, 2).unwrap().to_string(),
            "127.0.0.3:20000"
        );
        assert_eq!(phase_of(0), Duration::ZERO);
        assert_ne!(phase_of(1), phase_of(2));
    }

    #[tokio::test]
    async fn bad_recording_fails_before_listening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.snmprec");
        std::fs::write(&path, "1.3.6.1|2|1\nnot a line\n").unwrap();
        let cli = Cli::try_parse_from([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--frozen",
            path.to_str().unwrap(),
        ])
        .unwrap();
        let args = cli.simulate;
        let err = run_cli(args).await.unwrap_err().to_string();
        assert!(err.contains(&format!("{}:2:", path.display())), "{err}");
    }

    #[test]
    fn v3_users_come_from_a_file_and_the_environment_too() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(
            &file,
            "# ops team\nops:SHA-256:authpass1:AES:privpass1\n\nro\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "simulate",
            "--v3-user",
            "first",
            "--v3-users-file",
            file.to_str().unwrap(),
            "x",
        ])
        .unwrap();
        let mut args = cli.simulate;
        args.v3_users_env = Some("env1:SHA:envpass12\n".into());
        let names: Vec<String> = all_users(&args)
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["first", "ops", "ro", "env1"]);
        // A bad line is named by file and line, without its text.
        std::fs::write(&file, "ok\nops:SHA:short-secret-x:NOPE:privpass1\n").unwrap();
        args.v3_users_env = None;
        let e = all_users(&args).unwrap_err().to_string();
        assert!(e.contains("users line 2"), "{e}");
        assert!(!e.contains("short-secret-x"), "{e}");
    }
}
