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
//!
//! A thread that runs many requests (a poller arbiter) can also get sockets of
//! its own with [`SnmpEngine::serve_this_thread`]: their receive loop runs on
//! that thread, so a reply is read and handed to its requester without waking
//! any other thread (two context switches per reply fewer; at 10,000 devices
//! that was ≈6% of the collector's CPU in the engine thread alone).

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

/// One socket and the requests waiting on it.
struct Slot {
    socket: UdpSocket,
    /// Request ID -> waiter.
    table: Mutex<HashMap<i32, Waiter>>,
}

/// What the receive loops and the requesters share.
struct Shared {
    counters: Counters,
    /// Every socket's slot, the engine's own and the threads' ones, for `stats`.
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl Shared {
    fn deliver(&self, slot: &Slot, packet: &[u8], from: SocketAddr) {
        bump(&self.counters.replies_received);
        let Some(id) = peek_message_id(packet) else {
            bump(&self.counters.malformed_replies);
            return;
        };
        let Ok(table) = slot.table.lock() else {
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

    fn register(&self, slot: &Arc<Slot>) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.push(Arc::clone(slot));
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
    /// The engine's own sockets, served by its receive thread: IPv4, then IPv6.
    v4: Vec<Arc<Slot>>,
    v6: Vec<Arc<Slot>>,
    shared: Arc<Shared>,
    next_id: AtomicU32,
    next_socket: AtomicUsize,
    in_flight: Arc<Semaphore>,
    devices: Mutex<HashMap<SocketAddr, Arc<Semaphore>>>,
    keys: KeyCache,
    peers: PeerCache,
    /// Agents whose answers to combined requests did not come (see
    /// [`crate::snmp::columns`]), and until when their columns are walked one by one.
    one_by_one: Mutex<HashMap<SocketAddr, Instant>>,
    /// Dropping it stops the receive loops (the engine thread's).
    _stop: tokio::sync::oneshot::Sender<()>,
    /// Dropping it stops the receive loops that run on callers' threads.
    stop_local: tokio::sync::watch::Sender<()>,
}

/// Sockets of one thread (see [`SnmpEngine::serve_this_thread`]), by engine.
struct LocalSlots {
    engine: std::sync::Weak<Inner>,
    v4: Vec<Arc<Slot>>,
    v6: Vec<Arc<Slot>>,
}

thread_local! {
    static LOCAL: std::cell::RefCell<Vec<LocalSlots>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A handle on a running engine; clones share it. The engine stops when the
/// last handle is dropped.
#[derive(Clone)]
pub struct SnmpEngine {
    inner: Arc<Inner>,
}

static GLOBAL: OnceLock<SnmpEngine> = OnceLock::new();

/// How long an agent whose answers to combined requests were lost has its columns walked
/// one by one before combined requests are tried again.
pub const ONE_BY_ONE_FOR: Duration = Duration::from_secs(3600);
/// Agents remembered so at most (≈60 bytes each).
const MAX_ONE_BY_ONE: usize = 100_000;

/// Receive buffer asked for each socket (the kernel caps it at `net.core.rmem_max`).
/// With the default ≈208 KiB a socket holds ≈90 replies: a thread busy for a few
/// milliseconds while hundreds of requests are in flight would see the rest dropped.
const RECEIVE_BUFFER_BYTES: libc::c_int = 4 << 20;

fn bind(ip: IpAddr) -> io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    socket.set_nonblocking(true)?;
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads one c_int we own, on a socket we own. A refusal only
    // leaves the default size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&RECEIVE_BUFFER_BYTES as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok(socket)
}

fn bind_v4(config: &EngineConfig) -> io::Result<std::net::UdpSocket> {
    bind(IpAddr::V4(config.bind_v4)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot bind an SNMP client socket on {}: {e}",
                config.bind_v4
            ),
        )
    })
}

/// `config.sockets` IPv4 sockets, then as many IPv6 ones as the host allows (IPv6 is
/// optional: a host without it still polls IPv4 devices); and how many are IPv4.
fn bind_all(config: &EngineConfig) -> io::Result<(Vec<std::net::UdpSocket>, usize)> {
    let count = config.sockets.max(1);
    let mut sockets = Vec::with_capacity(count * 2);
    for _ in 0..count {
        sockets.push(bind_v4(config)?);
    }
    for _ in 0..count {
        match bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED)) {
            Ok(socket) => sockets.push(socket),
            Err(_) => break,
        }
    }
    Ok((sockets, count))
}

impl SnmpEngine {
    /// Binds the sockets and starts the receive thread.
    pub fn new(config: EngineConfig) -> io::Result<SnmpEngine> {
        let (std_sockets, v4_count) = bind_all(&config)?;
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            slots: Mutex::new(Vec::new()),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let loop_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("snmp-engine".into())
            .spawn(move || receive_thread(std_sockets, loop_shared, stop_rx, ready_tx))?;
        let mut v4 = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the SNMP engine thread died while starting"))??;
        let v6 = v4.split_off(v4_count);
        Ok(SnmpEngine {
            inner: Arc::new(Inner {
                in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
                config,
                v4,
                v6,
                shared,
                next_id: AtomicU32::new(rand::random::<u32>()),
                next_socket: AtomicUsize::new(0),
                devices: Mutex::new(HashMap::new()),
                keys: KeyCache::default(),
                peers: PeerCache::default(),
                one_by_one: Mutex::new(HashMap::new()),
                _stop: stop_tx,
                stop_local: tokio::sync::watch::channel(()).0,
            }),
        })
    }

    /// Gives the calling thread sockets of its own (as many as the engine's: each holds
    /// replies while the thread is busy) whose replies are read on this thread, by a task
    /// spawned on its `LocalSet` (an Actix arbiter has one). Requests begun on this
    /// thread then use them; other threads keep using the engine's shared sockets. Calling
    /// it again on the same thread does nothing. The receive task ends with the engine.
    pub fn serve_this_thread(&self) -> io::Result<()> {
        if self.with_local_slots(|_| ()).is_some() {
            return Ok(());
        }
        let (sockets, v4_count) = bind_all(&self.inner.config)?;
        let mut v4 = sockets
            .into_iter()
            .map(|socket| Ok(Arc::new(Slot::new(UdpSocket::from_std(socket)?))))
            .collect::<io::Result<Vec<_>>>()?;
        let v6 = v4.split_off(v4_count);
        for slot in v4.iter().chain(&v6) {
            self.inner.shared.register(slot);
            let mut stop = self.inner.stop_local.subscribe();
            let receiving = receive(Arc::clone(slot), Arc::clone(&self.inner.shared));
            tokio::task::spawn_local(async move {
                tokio::select! {
                    _ = receiving => {}
                    _ = stop.changed() => {}
                }
            });
        }
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            local.retain(|l| l.engine.strong_count() > 0);
            local.push(LocalSlots {
                engine: Arc::downgrade(&self.inner),
                v4,
                v6,
            });
        });
        Ok(())
    }

    /// `f` of this thread's own sockets for this engine; `None` if it has none.
    fn with_local_slots<R>(&self, f: impl FnOnce(&LocalSlots) -> R) -> Option<R> {
        let me = Arc::as_ptr(&self.inner);
        LOCAL.with(|local| {
            let local = local.borrow();
            local
                .iter()
                .find(|l| std::ptr::eq(l.engine.as_ptr(), me))
                .map(f)
        })
    }

    /// One of this thread's own sockets of the family, in turn, if it has any.
    fn local_slot(&self, v4: bool, turn: usize) -> Option<Arc<Slot>> {
        self.with_local_slots(|mine| {
            let family = if v4 { &mine.v4 } else { &mine.v6 };
            family.get(turn % family.len().max(1)).cloned()
        })
        .flatten()
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
        let (sockets, pending_ids) = self.inner.shared.slots.lock().map_or((0, 0), |slots| {
            let pending = slots
                .iter()
                .map(|s| s.table.lock().map_or(0, |t| t.len() as u64))
                .sum();
            (slots.len() as u64, pending)
        });
        EngineStats {
            sockets,
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
        // Chosen after the wait: a request stays on the thread it was begun on.
        let slot = self.slot_for(peer);
        let (tx, rx) = mpsc::channel(8);
        Some(Exchange {
            engine: self.clone(),
            peer,
            slot,
            ids: Vec::with_capacity(2),
            tx,
            rx,
            permits: Some((device_permit, global_permit)),
            device,
        })
    }

    /// The socket a request to `peer` goes out on: this thread's own when it has one
    /// of the family, else one of the engine's in turn. `None`: no socket of that
    /// family at all (sending then fails and says so).
    fn slot_for(&self, peer: SocketAddr) -> Option<Arc<Slot>> {
        let turn = self.inner.next_socket.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.local_slot(peer.is_ipv4(), turn) {
            return Some(slot);
        }
        let family = if peer.is_ipv4() {
            &self.inner.v4
        } else {
            &self.inner.v6
        };
        family.get(turn % family.len().max(1)).cloned()
    }

    /// Whether `peer`'s columns are to be walked one by one, because its answers to
    /// combined requests did not come within the last [`ONE_BY_ONE_FOR`].
    pub(crate) fn walks_one_by_one(&self, peer: SocketAddr) -> bool {
        let Ok(mut peers) = self.inner.one_by_one.lock() else {
            return false;
        };
        match peers.get(&peer) {
            Some(&until) if until > Instant::now() => true,
            Some(_) => {
                peers.remove(&peer);
                false
            }
            None => false,
        }
    }

    /// Walks `peer`'s columns one by one for the next [`ONE_BY_ONE_FOR`]; `false` when
    /// it could not be remembered (the list is full of live entries).
    pub(crate) fn remember_one_by_one(&self, peer: SocketAddr) -> bool {
        let Ok(mut peers) = self.inner.one_by_one.lock() else {
            return false;
        };
        let now = Instant::now();
        if peers.len() >= MAX_ONE_BY_ONE && !peers.contains_key(&peer) {
            peers.retain(|_, until| *until > now);
            if peers.len() >= MAX_ONE_BY_ONE {
                return false;
            }
        }
        peers.insert(peer, now + ONE_BY_ONE_FOR);
        true
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

impl Slot {
    fn new(socket: UdpSocket) -> Slot {
        Slot {
            socket,
            table: Mutex::new(HashMap::new()),
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
    ready: std::sync::mpsc::Sender<io::Result<Vec<Arc<Slot>>>>,
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
        let mut slots = Vec::with_capacity(std_sockets.len());
        for socket in std_sockets {
            match UdpSocket::from_std(socket) {
                Ok(socket) => slots.push(Arc::new(Slot::new(socket))),
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
        }
        let mut loops = tokio::task::JoinSet::new();
        for slot in &slots {
            shared.register(slot);
            loops.spawn(receive(Arc::clone(slot), Arc::clone(&shared)));
        }
        if ready.send(Ok(slots)).is_err() {
            return;
        }
        // Runs until the engine is dropped; then the loops are aborted with the set.
        let _ = stop.await;
    });
}

async fn receive(slot: Arc<Slot>, shared: Arc<Shared>) {
    let mut packet = vec![0u8; 65_536];
    loop {
        match slot.socket.recv_from(&mut packet).await {
            Ok((len, from)) => shared.deliver(&slot, &packet[..len], from),
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
    slot: Option<Arc<Slot>>,
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
            let Some(slot) = &self.slot else {
                return id;
            };
            let Ok(mut table) = slot.table.lock() else {
                return id;
            };
            if let std::collections::hash_map::Entry::Vacant(entry) = table.entry(id) {
                entry.insert(Waiter {
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
        let Some(slot) = &self.slot else {
            return Err(io::Error::other("no socket for this address family"));
        };
        slot.socket
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
        if let Some(Ok(mut table)) = self.slot.as_ref().map(|s| s.table.lock()) {
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
    async fn a_thread_with_sockets_of_its_own_reads_its_replies_itself() {
        let engine = SnmpEngine::new(EngineConfig {
            sockets: 1,
            ..EngineConfig::default()
        })
        .unwrap();
        let shared_sockets = engine.stats().sockets;
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let agent_addr = agent.local_addr().unwrap();
        let local = tokio::task::LocalSet::new();
        let on_thread = engine.clone();
        let port = local
            .run_until(async move {
                on_thread.serve_this_thread().unwrap();
                on_thread.serve_this_thread().unwrap(); // a second call adds nothing
                let own: Vec<u16> = (0..4)
                    .filter_map(|turn| on_thread.local_slot(true, turn))
                    .map(|slot| slot.socket.local_addr().unwrap().port())
                    .collect();
                let mut exchange = on_thread.begin(agent_addr, None).await.unwrap();
                let id = exchange.new_id();
                exchange.send(b"hello").await.unwrap();
                let mut buf = [0u8; 64];
                let (_, client) = agent.recv_from(&mut buf).await.unwrap();
                assert!(own.contains(&client.port()), "{own:?} {client}");
                agent.send_to(&response(id), client).await.unwrap();
                let got = exchange
                    .recv_until(Instant::now() + Duration::from_secs(5))
                    .await;
                assert_eq!(got, Some(response(id)));
                client.port()
            })
            .await;
        let stats = engine.stats();
        assert!(
            (shared_sockets + 1..=shared_sockets + 2).contains(&stats.sockets),
            "{stats:?}"
        );
        assert_eq!(stats.replies_received, 1);
        // Another thread, without sockets of its own, goes through the engine's.
        let other = engine.clone();
        let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let agent_addr = agent.local_addr().unwrap();
        let elsewhere = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    assert!(other.with_local_slots(|_| ()).is_none());
                    let mut exchange = other.begin(agent_addr, None).await.unwrap();
                    exchange.new_id();
                    exchange.send(b"hello").await.unwrap();
                })
        });
        let mut buf = [0u8; 64];
        let (_, client) = agent.recv_from(&mut buf).await.unwrap();
        assert_ne!(client.port(), port);
        elsewhere.join().unwrap();
        // The thread's receive task ends with the engine.
        drop(engine);
        tokio::time::timeout(Duration::from_secs(5), local)
            .await
            .expect("the local receive task stops when the engine is dropped");
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
