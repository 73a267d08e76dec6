//! The transport all clients share: a few UDP sockets for every device, replies
//! matched to their request by request-id (v1/v2c) or msgID (v3) *and* source
//! address, a global in-flight limit and a per-device one.
//!
//! Why shared sockets rather than one socket per device (snmp2's `AsyncSession`):
//! - file descriptors stay at `sockets` (4 by default) whether we poll ten
//!   devices or ten thousand, so no open-files limit has to be raised;
//! - memory per request in flight is a table entry and a small channel, not a
//!   session with two 64 KiB buffers;
//! - a late reply (after its request timed out), a duplicate, or a reply from
//!   an address other than the one asked is dropped by the receiver and
//!   counted, and can never be taken for the answer to a later request:
//!   request IDs are unique among requests in flight, and an ID is only
//!   accepted from the address it was sent to.
//!
//! The receive loops run on a small runtime of their own (one thread), so the
//! engine works the same from any caller runtime (Actix arbiters, tests), and
//! outlives none of them by accident: dropping the last handle stops it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::message::peek_message_id;
use super::peer::PeerCache;
use super::usm::KeyCache;

/// Sizes and limits of an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// UDP sockets (per address family) shared by all requests.
    pub sockets: usize,
    /// Requests in flight at once, over all devices; more wait their turn.
    pub max_in_flight: usize,
    /// Requests in flight at once to one device (1: never overload a device).
    pub per_device: usize,
    /// Local address the IPv4 sockets bind to.
    pub bind_v4: Ipv4Addr,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            sockets: 4,
            max_in_flight: 1024,
            per_device: 1,
            bind_v4: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// What the engine has seen, for `/metrics`. Counters only grow; gauges
/// (`sockets`, `open_fds`, `in_flight`, `pending_ids`, `devices_busy`,
/// `v3_peers`) are current values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub sockets: u64,
    /// File descriptors of the whole process (Linux; 0 elsewhere).
    pub open_fds: u64,
    pub in_flight: u64,
    pub pending_ids: u64,
    pub devices_busy: u64,
    pub v3_peers: u64,
    pub requests_sent: u64,
    pub retries: u64,
    pub timeouts: u64,
    pub replies_received: u64,
    /// Replies for no request in flight: late (after a timeout), duplicated.
    pub stale_replies: u64,
    /// Replies carrying a request-id in flight but from another address.
    pub spoofed_replies: u64,
    /// Packets with no readable request-id / msgID.
    pub malformed_replies: u64,
    /// Replies the requester refused: wrong community, failed authentication,
    /// undecodable PDU, wrong PDU type.
    pub rejected_replies: u64,
    pub send_errors: u64,
    pub v3_discoveries: u64,
}

impl EngineStats {
    /// `(name, help, is_counter, value)` for each figure, ready for a
    /// Prometheus renderer.
    pub fn metrics(&self) -> [(&'static str, &'static str, bool, u64); 16] {
        [
            (
                "snmp_sockets",
                "UDP sockets the SNMP engine holds",
                false,
                self.sockets,
            ),
            (
                "process_open_fds",
                "open file descriptors of the process",
                false,
                self.open_fds,
            ),
            (
                "snmp_requests_in_flight",
                "SNMP requests holding an in-flight slot",
                false,
                self.in_flight,
            ),
            (
                "snmp_pending_request_ids",
                "request IDs awaiting a reply",
                false,
                self.pending_ids,
            ),
            (
                "snmp_devices_busy",
                "devices with a request in flight",
                false,
                self.devices_busy,
            ),
            (
                "snmp_v3_peers",
                "v3 engines with cached discovery state",
                false,
                self.v3_peers,
            ),
            (
                "snmp_requests_sent_total",
                "SNMP request packets sent, retries included",
                true,
                self.requests_sent,
            ),
            (
                "snmp_retries_total",
                "SNMP requests sent again after a timeout",
                true,
                self.retries,
            ),
            (
                "snmp_timeouts_total",
                "SNMP requests that got no valid answer",
                true,
                self.timeouts,
            ),
            (
                "snmp_replies_received_total",
                "UDP packets received by the SNMP engine",
                true,
                self.replies_received,
            ),
            (
                "snmp_stale_replies_total",
                "replies to no request in flight (late or duplicate), dropped",
                true,
                self.stale_replies,
            ),
            (
                "snmp_spoofed_replies_total",
                "replies from an address the request was not sent to, dropped",
                true,
                self.spoofed_replies,
            ),
            (
                "snmp_malformed_replies_total",
                "undecodable packets, dropped",
                true,
                self.malformed_replies,
            ),
            (
                "snmp_rejected_replies_total",
                "replies refused by the requester (community, authentication, PDU), dropped",
                true,
                self.rejected_replies,
            ),
            (
                "snmp_send_errors_total",
                "SNMP request packets the socket refused",
                true,
                self.send_errors,
            ),
            (
                "snmp_v3_discoveries_total",
                "SNMPv3 engine discoveries",
                true,
                self.v3_discoveries,
            ),
        ]
    }
}

#[derive(Default)]
struct Counters {
    requests_sent: AtomicU64,
    retries: AtomicU64,
    timeouts: AtomicU64,
    replies_received: AtomicU64,
    stale_replies: AtomicU64,
    spoofed_replies: AtomicU64,
    malformed_replies: AtomicU64,
    rejected_replies: AtomicU64,
    send_errors: AtomicU64,
    v3_discoveries: AtomicU64,
    in_flight: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Who waits for replies carrying one request ID.
struct Waiter {
    peer: SocketAddr,
    tx: mpsc::Sender<Vec<u8>>,
}

/// What the receive loops and the requesters share.
struct Shared {
    /// One table per socket: request ID -> waiter.
    tables: Vec<Mutex<HashMap<i32, Waiter>>>,
    counters: Counters,
}

impl Shared {
    fn deliver(&self, socket: usize, packet: &[u8], from: SocketAddr) {
        bump(&self.counters.replies_received);
        let Some(id) = peek_message_id(packet) else {
            bump(&self.counters.malformed_replies);
            return;
        };
        let Some(table) = self.tables.get(socket) else {
            return;
        };
        let Ok(table) = table.lock() else {
            return;
        };
        match table.get(&id) {
            None => bump(&self.counters.stale_replies),
            Some(waiter) if !same_peer(waiter.peer, from) => bump(&self.counters.spoofed_replies),
            Some(waiter) => {
                // A full channel means the requester is being flooded with
                // copies; the extra ones are as good as stale.
                if waiter.tx.try_send(packet.to_vec()).is_err() {
                    bump(&self.counters.stale_replies);
                }
            }
        }
    }
}

/// IPv4 addresses may come back IPv4-mapped on a dual-stack socket.
fn same_peer(a: SocketAddr, b: SocketAddr) -> bool {
    let canonical = |addr: SocketAddr| match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(addr, |v4| SocketAddr::new(IpAddr::V4(v4), addr.port())),
        IpAddr::V4(_) => addr,
    };
    canonical(a) == canonical(b)
}

struct Inner {
    config: EngineConfig,
    sockets: Vec<Arc<UdpSocket>>,
    /// Index range of the IPv4 and IPv6 sockets in `sockets`.
    v4: std::ops::Range<usize>,
    v6: std::ops::Range<usize>,
    shared: Arc<Shared>,
    next_id: AtomicU32,
    next_socket: AtomicUsize,
    in_flight: Arc<Semaphore>,
    devices: Mutex<HashMap<SocketAddr, Arc<Semaphore>>>,
    keys: KeyCache,
    peers: PeerCache,
    /// Dropping it stops the receive loops.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A handle on a running engine; clones share it. The engine stops when the
/// last handle is dropped.
#[derive(Clone)]
pub struct SnmpEngine {
    inner: Arc<Inner>,
}

static GLOBAL: OnceLock<SnmpEngine> = OnceLock::new();

impl SnmpEngine {
    /// Binds the sockets and starts the receive thread.
    pub fn new(config: EngineConfig) -> io::Result<SnmpEngine> {
        let count = config.sockets.max(1);
        let mut std_sockets = Vec::with_capacity(count * 2);
        for _ in 0..count {
            let socket = std::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(config.bind_v4), 0))
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot bind an SNMP client socket on {}: {e}",
                            config.bind_v4
                        ),
                    )
                })?;
            socket.set_nonblocking(true)?;
            std_sockets.push(socket);
        }
        let v4 = 0..std_sockets.len();
        // IPv6 is optional: a host without it still polls IPv4 devices.
        for _ in 0..count {
            match std::net::UdpSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)) {
                Ok(socket) => {
                    socket.set_nonblocking(true)?;
                    std_sockets.push(socket);
                }
                Err(_) => break,
            }
        }
        let v6 = v4.end..std_sockets.len();
        let shared = Arc::new(Shared {
            tables: (0..std_sockets.len())
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            counters: Counters::default(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let loop_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("snmp-engine".into())
            .spawn(move || receive_thread(std_sockets, loop_shared, stop_rx, ready_tx))?;
        let sockets = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the SNMP engine thread died while starting"))??;
        Ok(SnmpEngine {
            inner: Arc::new(Inner {
                in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
                config,
                sockets,
                v4,
                v6,
                shared,
                next_id: AtomicU32::new(rand::random::<u32>()),
                next_socket: AtomicUsize::new(0),
                devices: Mutex::new(HashMap::new()),
                keys: KeyCache::default(),
                peers: PeerCache::default(),
                _stop: stop_tx,
            }),
        })
    }

    /// The process-wide engine every [`super::SnmpClient::connect`] uses,
    /// started with `config` on first use (later calls return the running one).
    pub fn init_global(config: EngineConfig) -> io::Result<&'static SnmpEngine> {
        if let Some(engine) = GLOBAL.get() {
            return Ok(engine);
        }
        let engine = SnmpEngine::new(config)?;
        // Two racing first calls: one engine wins, the other is dropped.
        Ok(GLOBAL.get_or_init(|| engine))
    }

    /// The process-wide engine, started with defaults if nobody configured it.
    pub fn global() -> io::Result<&'static SnmpEngine> {
        SnmpEngine::init_global(EngineConfig::default())
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let pending_ids = self
            .inner
            .shared
            .tables
            .iter()
            .map(|t| t.lock().map_or(0, |t| t.len() as u64))
            .sum();
        EngineStats {
            sockets: self.inner.sockets.len() as u64,
            open_fds: open_fds(),
            in_flight: load(&c.in_flight),
            pending_ids,
            devices_busy: self.inner.devices.lock().map_or(0, |d| d.len() as u64),
            v3_peers: self.inner.peers.len() as u64,
            requests_sent: load(&c.requests_sent),
            retries: load(&c.retries),
            timeouts: load(&c.timeouts),
            replies_received: load(&c.replies_received),
            stale_replies: load(&c.stale_replies),
            spoofed_replies: load(&c.spoofed_replies),
            malformed_replies: load(&c.malformed_replies),
            rejected_replies: load(&c.rejected_replies),
            send_errors: load(&c.send_errors),
            v3_discoveries: load(&c.v3_discoveries),
        }
    }

    pub(crate) fn keys(&self) -> &KeyCache {
        &self.inner.keys
    }

    pub(crate) fn peers(&self) -> &PeerCache {
        &self.inner.peers
    }

    pub(crate) fn count_discovery(&self) {
        bump(&self.inner.shared.counters.v3_discoveries);
    }

    /// Starts a request to `peer`: waits for a per-device slot, then for a
    /// global one, until `deadline`. `None` if the deadline passed first.
    pub(crate) async fn begin(
        &self,
        peer: SocketAddr,
        deadline: Option<Instant>,
    ) -> Option<Exchange> {
        let device = self.device_semaphore(peer);
        let permits = async {
            let device = Arc::clone(&device).acquire_owned().await.ok()?;
            let global = Arc::clone(&self.inner.in_flight)
                .acquire_owned()
                .await
                .ok()?;
            Some((device, global))
        };
        let (device_permit, global_permit) = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), permits)
                .await
                .ok()??,
            None => permits.await?,
        };
        bump(&self.inner.shared.counters.in_flight);
        let family = if peer.is_ipv4() {
            &self.inner.v4
        } else {
            &self.inner.v6
        };
        let socket = if family.is_empty() {
            // No socket of that family: sending fails and says so.
            self.inner.v4.start
        } else {
            family.start + self.inner.next_socket.fetch_add(1, Ordering::Relaxed) % family.len()
        };
        let (tx, rx) = mpsc::channel(8);
        Some(Exchange {
            engine: self.clone(),
            peer,
            socket,
            ids: Vec::with_capacity(2),
            tx,
            rx,
            permits: Some((device_permit, global_permit)),
            device,
        })
    }

    fn device_semaphore(&self, peer: SocketAddr) -> Arc<Semaphore> {
        match self.inner.devices.lock() {
            Ok(mut devices) => {
                Arc::clone(devices.entry(peer).or_insert_with(|| {
                    Arc::new(Semaphore::new(self.inner.config.per_device.max(1)))
                }))
            }
            // A poisoned map only loses the per-device bound.
            Err(_) => Arc::new(Semaphore::new(self.inner.config.per_device.max(1))),
        }
    }
}

/// Number of open file descriptors of this process (Linux `/proc`).
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64)
}

fn receive_thread(
    std_sockets: Vec<std::net::UdpSocket>,
    shared: Arc<Shared>,
    stop: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<io::Result<Vec<Arc<UdpSocket>>>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let mut sockets = Vec::with_capacity(std_sockets.len());
        for socket in std_sockets {
            match UdpSocket::from_std(socket) {
                Ok(socket) => sockets.push(Arc::new(socket)),
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
        }
        let mut loops = tokio::task::JoinSet::new();
        for (index, socket) in sockets.iter().enumerate() {
            loops.spawn(receive(index, Arc::clone(socket), Arc::clone(&shared)));
        }
        if ready.send(Ok(sockets)).is_err() {
            return;
        }
        // Runs until the engine is dropped; then the loops are aborted with the set.
        let _ = stop.await;
    });
}

async fn receive(index: usize, socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut packet = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut packet).await {
            Ok((len, from)) => shared.deliver(index, &packet[..len], from),
            Err(_) => {
                // ICMP errors from earlier sends can surface here on some
                // systems; they concern one device, not the socket.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// One request to one device, possibly sent several times under several IDs:
/// a reply to any of them answers it. Dropping it forgets the IDs, so replies
/// arriving later are counted as stale.
pub(crate) struct Exchange {
    engine: SnmpEngine,
    peer: SocketAddr,
    socket: usize,
    ids: Vec<i32>,
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    device: Arc<Semaphore>,
}

impl Exchange {
    /// A request ID unique among the requests in flight on this socket,
    /// registered to this exchange. IDs are positive 31-bit numbers (some
    /// agents mishandle negative ones).
    pub fn new_id(&mut self) -> i32 {
        let inner = &self.engine.inner;
        loop {
            let id = (inner.next_id.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff) as i32;
            if id == 0 {
                continue;
            }
            let Some(table) = inner.shared.tables.get(self.socket) else {
                return id;
            };
            let Ok(mut table) = table.lock() else {
                return id;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = table.entry(id) {
                slot.insert(Waiter {
                    peer: self.peer,
                    tx: self.tx.clone(),
                });
                self.ids.push(id);
                return id;
            }
        }
    }

    pub fn is_ours(&self, id: i32) -> bool {
        self.ids.contains(&id)
    }

    pub fn attempts(&self) -> usize {
        self.ids.len()
    }

    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        let counters = &self.engine.inner.shared.counters;
        bump(&counters.requests_sent);
        if self.ids.len() > 1 {
            bump(&counters.retries);
        }
        let Some(socket) = self.engine.inner.sockets.get(self.socket) else {
            return Err(io::Error::other("no socket for this address family"));
        };
        socket
            .send_to(packet, self.peer)
            .await
            .map(|_| ())
            .inspect_err(|_| {
                bump(&counters.send_errors);
            })
    }

    /// The next reply to one of our IDs from our peer; waits until `until`.
    pub async fn recv_until(&mut self, until: Instant) -> Option<Vec<u8>> {
        tokio::time::timeout_at(until.into(), self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// A reply matched our ID and address but was not acceptable.
    pub fn rejected(&self) {
        bump(&self.engine.inner.shared.counters.rejected_replies);
    }

    pub fn timed_out(&self) {
        bump(&self.engine.inner.shared.counters.timeouts);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let inner = &self.engine.inner;
        if let Some(Ok(mut table)) = inner.shared.tables.get(self.socket).map(|t| t.lock()) {
            for id in &self.ids {
                table.remove(id);
            }
        }
        // Copies that reached us after the answer are as stale as later ones.
        while self.rx.try_recv().is_ok() {
            bump(&inner.shared.counters.stale_replies);
        }
        inner
            .shared
            .counters
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
        self.permits = None;
        // Forget the device's semaphore once nobody uses it, so the map holds
        // only busy devices.
        if let Ok(mut devices) = inner.devices.lock() {
            let idle = Arc::strong_count(&self.device) == 2
                && self.device.available_permits() == inner.config.per_device.max(1);
            if idle {
                devices.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::message::{community_message, request_pdu, PDU_RESPONSE};

    fn response(id: i32) -> Vec<u8> {
        community_message(
            1,
            b"public",
            &request_pdu(PDU_RESPONSE, id, 0, 0, &[]).unwrap(),
        )
    }

    #[tokio::test]
    async fn replies_are_matched_by_id_and_address_and_the_rest_counted() {
        let engine = SnmpEngine::new(EngineConfig {
            sockets: 1,
            ..EngineConfig::default()
        })
        .unwrap();
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut exchange = engine
            .begin(agent.local_addr().unwrap(), None)
            .await
            .unwrap();
        let id = exchange.new_id();
        exchange.send(b"hello").await.unwrap();
        let mut buf = [0u8; 64];
        let (_, client) = agent.recv_from(&mut buf).await.unwrap();
        // Wrong source, unknown ID, garbage, then the real answer.
        spoofer.send_to(&response(id), client).await.unwrap();
        agent
            .send_to(&response(id.wrapping_add(1000)), client)
            .await
            .unwrap();
        agent.send_to(b"\x30\x03junk", client).await.unwrap();
        agent.send_to(&response(id), client).await.unwrap();
        let got = exchange
            .recv_until(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got, response(id));
        drop(exchange);
        // A late copy after the exchange ended is stale.
        agent.send_to(&response(id), client).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while engine.stats().stale_replies < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = engine.stats();
        assert_eq!(stats.spoofed_replies, 1, "{stats:?}");
        assert_eq!(stats.stale_replies, 2, "{stats:?}");
        assert_eq!(stats.malformed_replies, 1, "{stats:?}");
        assert_eq!(stats.pending_ids, 0);
        assert_eq!(stats.in_flight, 0);
        assert_eq!(stats.devices_busy, 0);
    }

    #[tokio::test]
    async fn per_device_limit_queues_and_deadline_gives_up() {
        let engine = SnmpEngine::new(EngineConfig::default()).unwrap();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let first = engine.begin(peer, None).await.unwrap();
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(engine.begin(peer, Some(soon)).await.is_none());
        // Another device is not held up.
        let other: SocketAddr = "127.0.0.1:10".parse().unwrap();
        assert!(engine
            .begin(other, Some(soon + Duration::from_secs(5)))
            .await
            .is_some());
        drop(first);
        assert!(engine
            .begin(peer, Some(Instant::now() + Duration::from_secs(5)))
            .await
            .is_some());
    }
}
