//! Many simulated devices in one process: one UDP socket and one task each.

use std::io;
use std::net::SocketAddr;
use std::ops::Add;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::{JoinHandle, JoinSet};

use super::agent::{Agent, DropReason, Outcome, Scratch, MAX_UDP_PAYLOAD};
use super::counters::CounterMode;
use super::recording::Recording;
use super::response::ResponseBuffer;

/// One simulated device.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// Port 0 picks a free port; see [`SimulatorHandle::local_addrs`].
    pub listen: SocketAddr,
    /// Shared: a thousand devices can serve one recording.
    pub recording: Arc<Recording>,
    pub community: String,
    /// Artificial delay before each reply, for testing client timeouts and late
    /// replies. Zero (the default) answers at once. Adjustable while running
    /// with [`SimulatorHandle::set_reply_delay`].
    pub reply_delay: Duration,
}

impl DeviceConfig {
    pub fn new(
        listen: SocketAddr,
        recording: Arc<Recording>,
        community: impl Into<String>,
    ) -> DeviceConfig {
        DeviceConfig {
            listen,
            recording,
            community: community.into(),
            reply_delay: Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    pub devices: Vec<DeviceConfig>,
    pub mode: CounterMode,
    /// Largest response message, capped at 65507 (the UDP limit). GETBULK
    /// answers shrink to fit; other answers that do not fit are `tooBig`.
    pub max_response_bytes: usize,
}

impl SimulatorConfig {
    pub fn new(mode: CounterMode) -> SimulatorConfig {
        SimulatorConfig {
            devices: Vec::new(),
            mode,
            max_response_bytes: MAX_UDP_PAYLOAD,
        }
    }

    pub fn with_device(mut self, device: DeviceConfig) -> SimulatorConfig {
        self.devices.push(device);
        self
    }
}

/// Counters of one device (or a sum over devices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Packets received.
    pub received: u64,
    /// Responses sent.
    pub served: u64,
    /// Undecodable packets, dropped.
    pub malformed: u64,
    /// Requests with another community, dropped unanswered.
    pub wrong_community: u64,
    /// Valid SNMP we do not serve (v3, traps, ...), dropped.
    pub unsupported: u64,
    /// Receive or send errors from the socket.
    pub socket_errors: u64,
}

impl Add for DeviceCounters {
    type Output = DeviceCounters;

    fn add(self, other: DeviceCounters) -> DeviceCounters {
        DeviceCounters {
            received: self.received + other.received,
            served: self.served + other.served,
            malformed: self.malformed + other.malformed,
            wrong_community: self.wrong_community + other.wrong_community,
            unsupported: self.unsupported + other.unsupported,
            socket_errors: self.socket_errors + other.socket_errors,
        }
    }
}

#[derive(Default)]
struct DeviceStats {
    received: AtomicU64,
    served: AtomicU64,
    malformed: AtomicU64,
    wrong_community: AtomicU64,
    unsupported: AtomicU64,
    socket_errors: AtomicU64,
    reply_delay_micros: AtomicU64,
    duplicate_replies: AtomicBool,
}

impl DeviceStats {
    fn snapshot(&self) -> DeviceCounters {
        DeviceCounters {
            received: self.received.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            wrong_community: self.wrong_community.load(Ordering::Relaxed),
            unsupported: self.unsupported.load(Ordering::Relaxed),
            socket_errors: self.socket_errors.load(Ordering::Relaxed),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Simulator;

impl Simulator {
    /// Binds every device's socket, then serves each from its own task until the
    /// handle is shut down or dropped. Fails if any address cannot be bound.
    pub async fn spawn(config: SimulatorConfig) -> io::Result<SimulatorHandle> {
        let mut handle = SimulatorHandle {
            devices: Vec::with_capacity(config.devices.len()),
            tasks: Vec::with_capacity(config.devices.len()),
        };
        let start = Instant::now();
        for (index, device) in config.devices.into_iter().enumerate() {
            let socket = UdpSocket::bind(device.listen).await.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot bind simulated device {index} ({}) to {}: {e}",
                        device.recording.source(),
                        device.listen
                    ),
                )
            })?;
            let addr = socket.local_addr()?;
            let stats = Arc::new(DeviceStats::default());
            stats
                .reply_delay_micros
                .store(micros(device.reply_delay), Ordering::Relaxed);
            let agent = Agent::new(
                device.recording,
                &device.community,
                config.mode,
                config.max_response_bytes,
            );
            let task = tokio::spawn(serve(Arc::new(socket), agent, Arc::clone(&stats), start));
            handle.devices.push((addr, stats));
            handle.tasks.push(task);
        }
        Ok(handle)
    }
}

fn micros(delay: Duration) -> u64 {
    u64::try_from(delay.as_micros()).unwrap_or(u64::MAX)
}

/// Running simulator. Dropping it stops every device.
pub struct SimulatorHandle {
    devices: Vec<(SocketAddr, Arc<DeviceStats>)>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimulatorHandle {
    /// Bound addresses, in configuration order (with real ports for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.devices.iter().map(|(addr, _)| *addr).collect()
    }

    pub fn counters(&self, device: usize) -> Option<DeviceCounters> {
        self.devices.get(device).map(|(_, stats)| stats.snapshot())
    }

    pub fn total_counters(&self) -> DeviceCounters {
        self.devices
            .iter()
            .map(|(_, stats)| stats.snapshot())
            .fold(DeviceCounters::default(), Add::add)
    }

    /// Changes a device's artificial reply delay (zero: answer at once).
    pub fn set_reply_delay(&self, device: usize, delay: Duration) {
        if let Some((_, stats)) = self.devices.get(device) {
            stats
                .reply_delay_micros
                .store(micros(delay), Ordering::Relaxed);
        }
    }

    /// Makes a device send every reply twice, like a network that duplicates
    /// packets: the copy lands in the client's socket after it has its answer,
    /// where its next request will find it first. For testing client recovery.
    pub fn set_duplicate_replies(&self, device: usize, duplicate: bool) {
        if let Some((_, stats)) = self.devices.get(device) {
            stats.duplicate_replies.store(duplicate, Ordering::Relaxed);
        }
    }

    /// Stops every device and waits until their sockets are closed.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Cancelled is the expected result; a panic would already be a bug
            // the test suite reports elsewhere.
            let _ = task.await;
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The receive loop of one device. Aborting the task also aborts its pending
/// delayed replies (they live in its `JoinSet`).
async fn serve(socket: Arc<UdpSocket>, agent: Agent, stats: Arc<DeviceStats>, start: Instant) {
    let mut packet = vec![0u8; 65_536];
    let mut scratch = Scratch::default();
    let mut out = ResponseBuffer::new(agent.community_len(), agent.max_response());
    let mut delayed = JoinSet::new();
    loop {
        while delayed.try_join_next().is_some() {}
        let (len, peer) = match socket.recv_from(&mut packet).await {
            Ok(received) => received,
            Err(_) => {
                // E.g. ICMP errors from an earlier send surfacing here; keep
                // serving, but do not spin if the socket is broken for good.
                DeviceStats::bump(&stats.socket_errors);
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        DeviceStats::bump(&stats.received);
        match agent.handle(&packet[..len], start.elapsed(), &mut scratch, &mut out) {
            Outcome::Reply => {
                let delay = stats.reply_delay_micros.load(Ordering::Relaxed);
                let copies = if stats.duplicate_replies.load(Ordering::Relaxed) {
                    2
                } else {
                    1
                };
                if delay == 0 {
                    for _ in 0..copies {
                        send(&socket, out.message(), peer, &stats).await;
                    }
                } else {
                    let message = out.message().to_vec();
                    let socket = Arc::clone(&socket);
                    let stats = Arc::clone(&stats);
                    delayed.spawn(async move {
                        tokio::time::sleep(Duration::from_micros(delay)).await;
                        for _ in 0..copies {
                            send(&socket, &message, peer, &stats).await;
                        }
                    });
                }
            }
            Outcome::Dropped(DropReason::Malformed) => DeviceStats::bump(&stats.malformed),
            Outcome::Dropped(DropReason::WrongCommunity) => {
                DeviceStats::bump(&stats.wrong_community)
            }
            Outcome::Dropped(DropReason::Unsupported) => DeviceStats::bump(&stats.unsupported),
        }
    }
}

async fn send(socket: &UdpSocket, message: &[u8], peer: SocketAddr, stats: &DeviceStats) {
    match socket.send_to(message, peer).await {
        Ok(_) => DeviceStats::bump(&stats.served),
        Err(_) => DeviceStats::bump(&stats.socket_errors),
    }
}
