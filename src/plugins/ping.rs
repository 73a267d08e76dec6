//! ICMP echo through the system's `ping` program: the check that turns a timed-out poll
//! into PING_FAILURE (spec §2.4), and the `plugin_polling_ping` polling plugin (group
//! `ping`: packet loss and round-trip times).
//!
//! Why the program and not a socket of our own: raw ICMP sockets need privileges (or
//! `net.ipv4.ping_group_range`) the collector should not ask for, and `ping` is setuid or
//! has the capability on every distribution. What it cannot do is pretend: a machine
//! without `ping` gets an error (logged once, counted), never "the host answered".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::PluginConfig;
use crate::events::PingFailed;
use crate::model::{Metric, MetricType, MetricValue, MetricsGroup, ModelError, Resource};
use crate::plugins::status::DeviceStatus;
use crate::plugins::PluginError;
use crate::telemetry::Telemetry;

/// The summary `ping` prints at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingStats {
    pub transmitted: u64,
    pub received: u64,
    pub loss_percent: f64,
    pub time_ms: u64,
    pub rtt_min: f64,
    pub rtt_avg: f64,
    pub rtt_max: f64,
    pub rtt_mdev: f64,
}

/// Why a ping gave no answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PingError {
    #[error("no `ping` program on this machine (PATH): cannot tell whether {host} answers")]
    Missing { host: String },
    #[error("cannot run ping for {host}: {reason}")]
    Spawn { host: String, reason: String },
    #[error("ping {host} gave no answer within {after:?}")]
    TimedOut { host: String, after: Duration },
    /// `ping` ran and exited non-zero: lost packets (the statistics, when it printed them),
    /// or an error of its own (unknown host, ...).
    #[error("ping {host} exited with status {code:?}{}", stats.map(|s| format!(" ({}% packet loss)", s.loss_percent)).unwrap_or_default())]
    Failed {
        host: String,
        code: Option<i32>,
        stats: Option<PingStats>,
    },
    #[error("ping {host}: no statistics in its output")]
    Unparsable { host: String },
    #[error("pinging is disabled")]
    Disabled,
}

impl PingError {
    /// The label of `panoptes_ping_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            PingError::Missing { .. } => "missing",
            PingError::Spawn { .. } => "spawn",
            PingError::TimedOut { .. } => "timed_out",
            PingError::Failed { .. } => "failed",
            PingError::Unparsable { .. } => "unparsable",
            PingError::Disabled => "disabled",
        }
    }
}

pub type PingFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PingError>> + Send + 'a>>;

/// How hosts are pinged: the system's `ping`, or a stand-in in tests.
pub trait Ping: Send + Sync {
    /// Sends `count` echo requests, waiting at most `deadline` in all, and returns the
    /// summary `ping` printed when every request was answered. An exit of `ping` other
    /// than 0 (any lost packet, with `-c` and `-w`) is [`PingError::Failed`].
    fn probe<'a>(
        &'a self,
        host: &'a str,
        count: u32,
        deadline: Duration,
    ) -> PingFuture<'a, PingStats>;

    /// Whether the host answers one echo request within `deadline`: `Ok(false)` when it
    /// does not, an error when that cannot be told.
    fn answers<'a>(&'a self, host: &'a str, deadline: Duration) -> PingFuture<'a, bool> {
        Box::pin(async move {
            match self.probe(host, 1, deadline).await {
                Ok(stats) => Ok(stats.received > 0),
                Err(PingError::Failed {
                    code: Some(1),
                    stats,
                    ..
                }) => Ok(stats.is_some_and(|s| s.received > 0)),
                Err(PingError::TimedOut { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }
}

/// The system's `ping` (iputils or busybox): `ping -n -c <count> -w <deadline> -- <host>`.
pub struct SystemPing {
    /// The program: `ping`, found on PATH.
    pub program: std::ffi::OsString,
    /// Where failures to run `ping` are counted (`panoptes_ping_errors_total`).
    pub telemetry: Option<Arc<Telemetry>>,
}

impl SystemPing {
    pub fn new(telemetry: Option<Arc<Telemetry>>) -> SystemPing {
        SystemPing {
            program: "ping".into(),
            telemetry,
        }
    }
}

impl Ping for SystemPing {
    fn probe<'a>(
        &'a self,
        host: &'a str,
        count: u32,
        deadline: Duration,
    ) -> PingFuture<'a, PingStats> {
        Box::pin(async move {
            let result = run_ping(&self.program, host, count, deadline).await;
            match &result {
                // Lost packets are an answer (the host did not reply), not a failure to ping.
                Err(PingError::Failed { .. }) | Ok(_) => {}
                Err(error) => PingFailed { error }.emit(self.telemetry.as_deref()),
            }
            result
        })
    }
}

async fn run_ping(
    program: &std::ffi::OsStr,
    host: &str,
    count: u32,
    deadline: Duration,
) -> Result<PingStats, PingError> {
    // A host that starts with '-' would be read as an option: `--` ends them.
    let secs = deadline.as_secs().max(1);
    let child = tokio::process::Command::new(program)
        .args([
            "-n",
            "-c",
            &count.max(1).to_string(),
            "-w",
            &secs.to_string(),
            "--",
            host,
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    // ping ends itself at its deadline; the margin covers a stuck name lookup.
    let limit = Duration::from_secs(secs) + Duration::from_secs(5);
    let output = match tokio::time::timeout(limit, child).await {
        Err(_) => {
            return Err(PingError::TimedOut {
                host: host.to_string(),
                after: limit,
            })
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PingError::Missing {
                host: host.to_string(),
            })
        }
        Ok(Err(e)) => {
            return Err(PingError::Spawn {
                host: host.to_string(),
                reason: e.to_string(),
            })
        }
        Ok(Ok(output)) => output,
    };
    // `ping`'s own output is bounded (a summary line per request at most).
    let text = String::from_utf8_lossy(&output.stdout);
    let stats = parse_stats(&text);
    if !output.status.success() {
        return Err(PingError::Failed {
            host: host.to_string(),
            code: output.status.code(),
            stats,
        });
    }
    stats.ok_or_else(|| PingError::Unparsable {
        host: host.to_string(),
    })
}

/// Pinging disabled: `answers` says yes (used where no device should be pinged, such as
/// conformance runs against a simulator), `probe` refuses.
#[derive(Debug, Clone, Copy)]
pub struct NoPing;

impl Ping for NoPing {
    fn probe<'a>(&'a self, _: &'a str, _: u32, _: Duration) -> PingFuture<'a, PingStats> {
        Box::pin(async { Err(PingError::Disabled) })
    }

    fn answers<'a>(&'a self, _: &'a str, _: Duration) -> PingFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }
}

/// The statistics of `ping`'s output, as the original's pattern reads them:
/// `N packets transmitted, N received, P% packet loss, time Nms` followed by
/// `rtt min/avg/max/mdev = a/b/c/d ms` (iputils; busybox prints `round-trip
/// min/avg/max`, with no mdev, and is read too).
pub fn parse_stats(text: &str) -> Option<PingStats> {
    let summary_at = text.find("ping statistics ---")?;
    let mut lines = text[summary_at..].lines().skip(1);
    let counts = lines.next()?;
    let mut transmitted = None;
    let mut received = None;
    let mut loss = None;
    let mut time_ms = 0;
    for part in counts.split(',').map(str::trim) {
        if let Some(n) = part.strip_suffix(" packets transmitted") {
            transmitted = n.trim().parse().ok();
        } else if let Some(n) = part
            .strip_suffix(" packets received")
            .or_else(|| part.strip_suffix(" received"))
        {
            received = n.trim().parse().ok();
        } else if let Some(p) = part.strip_suffix("% packet loss") {
            loss = p.trim().parse::<f64>().ok();
        } else if let Some(t) = part
            .strip_prefix("time ")
            .and_then(|t| t.strip_suffix("ms"))
        {
            time_ms = t.trim().parse().unwrap_or(0);
        }
    }
    let rtt = lines.next()?;
    let (_, values) = rtt.split_once(" = ")?;
    let values = values.trim().strip_suffix("ms")?.trim();
    let numbers: Vec<f64> = values
        .split('/')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let (min, avg, max, mdev) = match numbers[..] {
        [a, b, c, d] => (a, b, c, d),
        [a, b, c] => (a, b, c, 0.0),
        _ => return None,
    };
    Some(PingStats {
        transmitted: transmitted?,
        received: received?,
        loss_percent: loss?,
        time_ms,
        rtt_min: min,
        rtt_avg: avg,
        rtt_max: max,
        rtt_mdev: mdev,
    })
}

pub const GROUP_TYPE: &str = "ping";
const DEFAULT_COUNT: u32 = 10;
const DEFAULT_TIMEOUT: u64 = 10;

/// `[main] count` / `timeout` of the ping plugin: absent means 10, anything but a positive
/// integer is a configuration error (as the original raised).
fn setting(
    plugin: &PluginConfig,
    resource: &Resource,
    key: &str,
    default: u64,
) -> Result<u64, PluginError> {
    match plugin.get("main", key).map(str::trim) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            PluginError::Config(format!(
                "plugin `{}`: for device {}, configured {key} is not a positive integer: `{v}`",
                plugin.name, resource.endpoint
            ))
        }),
    }
}

/// `plugin_polling_ping`: one `ping` group with the packet loss and round-trip times in
/// milliseconds and `ping_status` (0, or 7 PING_FAILURE when every packet was lost or
/// the ping failed, in which case `ping_status` is the only metric).
pub async fn polling(
    plugin: &PluginConfig,
    resource: &Resource,
    ping: &dyn Ping,
    now: f64,
) -> Result<Vec<MetricsGroup>, PluginError> {
    let count = setting(plugin, resource, "count", u64::from(DEFAULT_COUNT))?;
    let timeout = setting(plugin, resource, "timeout", DEFAULT_TIMEOUT)?;
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let result = ping
        .probe(&resource.endpoint, count, Duration::from_secs(timeout))
        .await;
    let group = ping_group(resource, plugin.execute_frequency, now, result)
        .map_err(|e| PluginError::Internal(e.to_string()))?;
    Ok(vec![group])
}

fn ping_group(
    resource: &Resource,
    interval: u64,
    now: f64,
    result: Result<PingStats, PingError>,
) -> Result<MetricsGroup, ModelError> {
    let mut g = MetricsGroup::new(resource.clone(), GROUP_TYPE, interval, now)?;
    let gauge = |name: &str, v: MetricValue| Metric::new(name, v, MetricType::Gauge, now);
    let status = match result {
        Ok(s) => {
            for (name, v) in [
                ("packet_loss_percent", s.loss_percent),
                ("round_trip_minimum", s.rtt_min),
                ("round_trip_maximum", s.rtt_max),
                ("round_trip_average", s.rtt_avg),
                ("round_trip_standard_deviation", s.rtt_mdev),
            ] {
                g.add_metric(gauge(name, MetricValue::Float(v))?)?;
            }
            if s.loss_percent == 100.0 {
                DeviceStatus::PingFailure
            } else {
                DeviceStatus::Success
            }
        }
        Err(e) => {
            tracing::warn!(resource = %resource.id, error = %e, "ping failed");
            DeviceStatus::PingFailure
        }
    };
    g.add_metric(gauge("ping_status", MetricValue::Int(status as i128))?)?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPUTILS: &str = "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.040 ms\n\n--- 127.0.0.1 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 2041ms\nrtt min/avg/max/mdev = 0.040/0.120/0.162/0.057 ms\n";

    #[test]
    fn iputils_and_busybox_summaries_parse() {
        let s = parse_stats(IPUTILS).unwrap();
        assert_eq!((s.transmitted, s.received, s.time_ms), (3, 3, 2041));
        assert_eq!(s.loss_percent, 0.0);
        assert_eq!(
            (s.rtt_min, s.rtt_avg, s.rtt_max, s.rtt_mdev),
            (0.04, 0.12, 0.162, 0.057)
        );
        let busybox = "--- 10.0.0.1 ping statistics ---\n2 packets transmitted, 1 packets received, 50% packet loss\nround-trip min/avg/max = 1.5/2.0/2.5 ms\n";
        let b = parse_stats(busybox).unwrap();
        assert_eq!(
            (b.received, b.loss_percent, b.rtt_max, b.rtt_mdev),
            (1, 50.0, 2.5, 0.0)
        );
        let errors = "+1 errors, 20% packet loss";
        assert_eq!(parse_stats(errors), None);
        // All lost: iputils prints no rtt line.
        let lost = "--- 192.0.2.1 ping statistics ---\n2 packets transmitted, 0 received, 100% packet loss, time 1014ms\n\n";
        assert_eq!(parse_stats(lost), None);
        assert_eq!(parse_stats(""), None);
    }
}
