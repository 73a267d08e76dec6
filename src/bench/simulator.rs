//! The simulated fleet, run as a child process (`panoptes simulate --devices N`) so its
//! CPU is measured apart from the collector's.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A running simulator; killed when dropped.
pub struct FleetProcess {
    child: Child,
    /// Each device's address, in device order.
    pub addrs: Vec<SocketAddr>,
}

impl FleetProcess {
    /// Starts `devices` simulated devices serving `recording` on free loopback ports and
    /// waits (at most `ready_within`) until the simulator has printed their addresses.
    pub fn start(
        devices: u32,
        recording: &Path,
        community: &str,
        threads: usize,
        listen: std::net::Ipv4Addr,
        ready_within: Duration,
    ) -> Result<FleetProcess> {
        let exe = std::env::current_exe().context("finding the panoptes binary to re-run")?;
        let mut child = Command::new(&exe)
            .arg("simulate")
            .args(["--devices", &devices.to_string()])
            .args(["--listen", &format!("{listen}:0")])
            // In the environment, not argv, where every user of the machine could read it.
            .env("PANOPTES_SIMULATE_COMMUNITY", community)
            .args(["--threads", &threads.to_string()])
            .arg("--print-addresses")
            // It stops when our end of its stdin closes: a bench killed outright (SIGKILL,
            // the OOM killer) leaves no simulator behind.
            .arg("--stop-when-stdin-closes")
            .arg(recording)
            // Only its warnings and errors: its startup line would interleave with ours.
            .env("PANOPTES__LOG__LEVEL", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the simulator {} simulate", exe.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            bail!("the simulator's standard output is not readable");
        };
        // Read on a thread so a simulator that never says `ready` cannot hang us.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut addrs = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let line = line.trim().to_string();
                if line == "ready" {
                    let _ = tx.send(Ok(addrs));
                    return;
                }
                match line.parse::<SocketAddr>() {
                    Ok(a) => addrs.push(a),
                    Err(_) => {
                        let _ = tx.send(Err(anyhow::anyhow!(
                            "the simulator printed {line:?}, expected an address or `ready`"
                        )));
                        return;
                    }
                }
            }
            let _ = tx.send(Err(anyhow::anyhow!(
                "the simulator exited before it was ready"
            )));
        });
        let mut fleet = FleetProcess {
            child,
            addrs: Vec::new(),
        };
        match rx.recv_timeout(ready_within) {
            Ok(Ok(addrs)) if addrs.len() == devices as usize => fleet.addrs = addrs,
            Ok(Ok(addrs)) => bail!(
                "the simulator started {} devices, {devices} were asked for",
                addrs.len()
            ),
            Ok(Err(e)) => return Err(e),
            Err(_) => bail!("the simulator was not ready within {ready_within:?}"),
        }
        Ok(fleet)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FleetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
