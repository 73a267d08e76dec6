//! Many simulated devices in one process: one UDP socket and one task each,
//! sharing per-thread buffers, so a device costs a socket and a few hundred
//! bytes, and ten thousand of them fit in one process.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::ops::Add;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::{JoinHandle, JoinSet};

use crate::snmp::usm::KeyCache;
use crate::snmp::UsmUser;

use super::agent::{Agent, DropReason, Outcome, Scratch, MAX_UDP_PAYLOAD};
use super::counters::CounterMode;
use super::recording::Recording;
use super::response::ResponseBuffer;
use crate::snmp::authority::DeviceSecurity;

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
    /// v3 users the device accepts; empty: v3 requests are dropped.
    pub v3_users: Arc<Vec<UsmUser>>,
    /// Counters run this far ahead of the clock, so devices serving one
    /// recording show different values (and some wrap sooner).
    pub counter_phase: Duration,
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
            v3_users: Arc::new(Vec::new()),
            counter_phase: Duration::ZERO,
        }
    }

    pub fn with_v3_users(mut self, users: Arc<Vec<UsmUser>>) -> DeviceConfig {
        self.v3_users = users;
        self
    }

    pub fn with_counter_phase(mut self, phase: Duration) -> DeviceConfig {
        self.counter_phase = phase;
        self
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
    /// Valid SNMP we do not serve (traps, v3 without users, ...), dropped.
    pub unsupported: u64,
    /// v3 requests refused by USM that asked for no Report, dropped.
    pub security_refused: u64,
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
            security_refused: self.security_refused + other.security_refused,
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
    security_refused: AtomicU64,
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
            security_refused: self.security_refused.load(Ordering::Relaxed),
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
        let keys = KeyCache::default();
        let salt = rand::random::<u32>();
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
            let mut agent = Agent::new(
                device.recording,
                &device.community,
                config.mode,
                config.max_response_bytes,
            )
            .with_phase(device.counter_phase);
            if !device.v3_users.is_empty() {
                let engine_id =
                    DeviceSecurity::engine_id_for(salt, u32::try_from(index).unwrap_or(u32::MAX));
                agent = agent.with_security(Arc::new(DeviceSecurity::new(
                    engine_id,
                    &device.v3_users,
                    &keys,
                )));
            }
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

/// Buffers for answering one request, shared by every device served on a
/// thread: only borrowed between two awaits, never across one.
struct Work {
    packet: Vec<u8>,
    scratch: Scratch,
    out: ResponseBuffer,
}

/// Room for communities up to this long in the shared response buffer;
/// longer ones are answered by nothing (dropped as malformed).
const MAX_COMMUNITY: usize = 1024;

thread_local! {
    static WORK: RefCell<Option<Work>> = const { RefCell::new(None) };
}

/// What one try at the socket gave.
enum Step {
    /// Nothing more queued.
    Idle,
    Served,
    /// The reply must wait (a delay is set, or the send buffer is full).
    Later {
        message: Vec<u8>,
        peer: SocketAddr,
        delay: Duration,
        copies: usize,
    },
}

/// Packets served per wake-up before letting other devices run.
const BATCH: usize = 64;

/// The receive loop of one device. Aborting the task also aborts its pending
/// delayed replies (they live in its `JoinSet`).
async fn serve(socket: Arc<UdpSocket>, agent: Agent, stats: Arc<DeviceStats>, start: Instant) {
    let mut delayed = JoinSet::new();
    loop {
        while delayed.try_join_next().is_some() {}
        if socket.readable().await.is_err() {
            DeviceStats::bump(&stats.socket_errors);
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        for _ in 0..BATCH {
            let step = WORK.with(|cell| {
                let mut slot = cell.borrow_mut();
                let work = slot.get_or_insert_with(|| Work {
                    packet: vec![0u8; 65_536],
                    scratch: Scratch::default(),
                    out: ResponseBuffer::new(MAX_COMMUNITY, 0),
                });
                serve_one(&socket, &agent, &stats, start, work)
            });
            match step {
                Step::Idle => break,
                Step::Served => {}
                Step::Later {
                    message,
                    peer,
                    delay,
                    copies,
                } => {
                    let socket = Arc::clone(&socket);
                    let stats = Arc::clone(&stats);
                    delayed.spawn(async move {
                        tokio::time::sleep(delay).await;
                        for _ in 0..copies {
                            send(&socket, &message, peer, &stats).await;
                        }
                    });
                }
            }
        }
        tokio::task::yield_now().await;
    }
}

/// Receives and answers one packet, without waiting.
fn serve_one(
    socket: &UdpSocket,
    agent: &Agent,
    stats: &DeviceStats,
    start: Instant,
    work: &mut Work,
) -> Step {
    let (len, peer) = match socket.try_recv_from(&mut work.packet) {
        Ok(received) => received,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Idle,
        Err(_) => {
            // E.g. ICMP errors from an earlier send surfacing here.
            DeviceStats::bump(&stats.socket_errors);
            return Step::Idle;
        }
    };
    DeviceStats::bump(&stats.received);
    let outcome = agent.handle(
        &work.packet[..len],
        start.elapsed(),
        &mut work.scratch,
        &mut work.out,
    );
    match outcome {
        Outcome::Reply => {}
        Outcome::Dropped(reason) => {
            let counter = match reason {
                DropReason::Malformed => &stats.malformed,
                DropReason::WrongCommunity => &stats.wrong_community,
                DropReason::Unsupported => &stats.unsupported,
                DropReason::Security => &stats.security_refused,
            };
            DeviceStats::bump(counter);
            return Step::Served;
        }
    }
    let delay = stats.reply_delay_micros.load(Ordering::Relaxed);
    let copies = if stats.duplicate_replies.load(Ordering::Relaxed) {
        2
    } else {
        1
    };
    let message = work.out.message();
    if delay == 0 {
        for sent in 0..copies {
            match socket.try_send_to(message, peer) {
                Ok(_) => DeviceStats::bump(&stats.served),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Step::Later {
                        message: message.to_vec(),
                        peer,
                        delay: Duration::ZERO,
                        copies: copies - sent,
                    }
                }
                Err(_) => DeviceStats::bump(&stats.socket_errors),
            }
        }
        return Step::Served;
    }
    Step::Later {
        message: message.to_vec(),
        peer,
        delay: Duration::from_micros(delay),
        copies,
    }
}

async fn send(socket: &UdpSocket, message: &[u8], peer: SocketAddr, stats: &DeviceStats) {
    match socket.send_to(message, peer).await {
        Ok(_) => DeviceStats::bump(&stats.served),
        Err(_) => DeviceStats::bump(&stats.socket_errors),
    }
}
