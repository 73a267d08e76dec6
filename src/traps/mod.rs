//! The SNMP trap and inform receiver (`[traps]`): v1 Trap-PDUs, v2c SNMPv2-Traps and
//! InformRequests, v3 traps and informs; each notification becomes a JSON event on
//! `<site>-traps` (see [`event`]), keyed by the matched resource's id, or else the
//! source IP address.
//!
//! Two tasks: the receiver reads datagrams and decides ([`receive`]), the publisher
//! appends events in batches through the pipeline's producer thread and only then
//! acknowledges the informs among them, so an inform answered is an event stored (a
//! sender whose inform was not published retries it). Between them a bounded queue
//! (`traps.queue_capacity`): a storm beyond it is refused and counted, not buffered.
//!
//! Every datagram is hostile: decoding is bounds-checked, varbinds are capped
//! (`traps.max_varbinds`), and every refusal is a typed event
//! ([`crate::events::TrapRejected`]) counted on `/metrics` and logged, throttled.

pub mod event;
mod informs;
pub mod names;
pub mod receive;
mod resources;
pub mod v3;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use panoptes_storage::Store;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::agent::publisher::Publisher;
use crate::bus::Message;
use crate::config::TrapSettings;
use crate::events::{
    InformRetransmitted, PublishFailed, TrapReceived, TrapRejected, TrapRejection, TrapReportSent,
    TrapsPublished,
};
use crate::resource_manager::ResourceStore;
use crate::telemetry::Telemetry;

use event::{Received, TrapEvent};
use informs::{Arrival, InformLedger};
use names::TrapNames;
use receive::{Accepted, Decoder, Handled};
use resources::ResourceIndex;

/// Larger than any UDP payload (65,507 bytes over IPv4): nothing is cut short.
const DATAGRAM_BUFFER: usize = 65_536;
/// Events appended in one call at most.
const MAX_BATCH: usize = 256;

/// Binds `traps.listen` (before anything starts, so a taken port is a plain error), or
/// `None` when it is empty.
pub fn bind(settings: &TrapSettings) -> Result<Option<std::net::UdpSocket>> {
    let Some(listen) = settings.listen_addr().map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    let socket = std::net::UdpSocket::bind(listen)
        .with_context(|| format!("binding the trap receiver on {listen} (traps.listen)"))?;
    socket
        .set_nonblocking(true)
        .context("making the trap receiver's socket non-blocking")?;
    if !listen.ip().is_loopback() {
        tracing::warn!(
            listen = %listen,
            communities = settings.communities.len(),
            "the trap receiver listens off loopback: v1/v2c traps are unauthenticated (anyone who can reach this port and knows or guesses a community can publish events; with traps.communities empty, anyone at all); prefer v3 users"
        );
    }
    Ok(Some(socket))
}

/// What the receiver needs from the node.
pub struct Wiring {
    /// `<site>-traps` of the node's own site: events of a source no served resource
    /// matches go here.
    pub topic: String,
    /// `<site>-traps` of every site the node serves, by site: an event whose resource
    /// belongs to one of them goes to its site's topic.
    pub site_topics: std::collections::BTreeMap<String, String>,
    pub publisher: Publisher,
    pub resources: ResourceStore,
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    /// Names of notification OIDs: [`names::WellKnown`], or a MIB module's.
    pub names: Arc<dyn TrapNames>,
}

/// The running receiver.
pub struct TrapReceiver {
    pub local_addr: SocketAddr,
    /// The engine ID v3 inform senders discover.
    pub engine_id: Vec<u8>,
    credentials: TrapCredentials,
    receive: tokio::task::JoinHandle<()>,
    publish: tokio::task::JoinHandle<()>,
}

/// The communities and v3 users of a running receiver, replaced by a reload (SIGHUP,
/// `POST /api/reload`) without a restart: engine ID, boots and time stay.
#[derive(Clone)]
pub struct TrapCredentials(Arc<Decoder>);

impl TrapCredentials {
    pub fn set(&self, settings: &TrapSettings) {
        self.0
            .set_credentials(settings.communities.clone(), &settings.users);
        tracing::info!(
            v3_users = settings.users.len(),
            communities = settings.communities.len(),
            "trap receiver: communities and v3 users reloaded"
        );
    }
}

/// One accepted notification on its way to the topic.
struct Queued {
    accepted: Box<Accepted>,
    source: SocketAddr,
    received_at: f64,
}

impl TrapReceiver {
    /// Starts receiving on `socket` (from [`bind`]).
    pub async fn start(
        socket: std::net::UdpSocket,
        settings: &TrapSettings,
        wiring: Wiring,
    ) -> Result<TrapReceiver> {
        let socket = Arc::new(UdpSocket::from_std(socket).context("the trap receiver's socket")?);
        let local_addr = socket.local_addr().context("the trap receiver's address")?;
        let store = wiring.store.clone();
        let (engine_id, boots) = tokio::task::spawn_blocking(move || engine_identity(&store))
            .await
            .context("reading the trap receiver's engine ID")??;
        let decoder = Arc::new(Decoder::new(
            settings.communities.clone(),
            settings.max_varbinds,
            v3::V3Security::new(&settings.users, engine_id.clone(), boots),
        ));
        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        let ledger = Arc::new(InformLedger::default());
        let receive = tokio::spawn(receive_loop(
            Arc::clone(&socket),
            Arc::clone(&decoder),
            tx,
            Arc::clone(&ledger),
            Arc::clone(&wiring.telemetry),
        ));
        let publish = tokio::spawn(publish_loop(rx, socket, ledger, wiring));
        tracing::info!(
            listen = %local_addr,
            engine_id = %hex(&engine_id),
            engine_boots = boots,
            v3_users = settings.users.len(),
            communities = if settings.communities.is_empty() { "any".to_string() } else { settings.communities.len().to_string() },
            "trap receiver is up"
        );
        Ok(TrapReceiver {
            local_addr,
            engine_id,
            credentials: TrapCredentials(decoder),
            receive,
            publish,
        })
    }

    /// What a reload of the secrets file replaces.
    pub fn credentials(&self) -> TrapCredentials {
        self.credentials.clone()
    }

    /// Stops reading, then publishes (and acknowledges) what was already accepted,
    /// waiting at most 10 s for it.
    pub async fn stop(self) {
        self.receive.abort();
        let _ = self.receive.await;
        if tokio::time::timeout(Duration::from_secs(10), self.publish)
            .await
            .is_err()
        {
            tracing::warn!(
                "trap receiver: accepted notifications not all published within 10 s of shutdown"
            );
        }
    }
}

async fn receive_loop(
    socket: Arc<UdpSocket>,
    decoder: Arc<Decoder>,
    queue: mpsc::Sender<Queued>,
    ledger: Arc<InformLedger>,
    telemetry: Arc<Telemetry>,
) {
    let mut buf = vec![0u8; DATAGRAM_BUFFER];
    loop {
        let (len, source) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                // ICMP errors of earlier answers surface here on some systems: not fatal.
                // A pause, so an error that repeats cannot spin the thread.
                tracing::debug!(error = %e, "trap receiver: receive error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let datagram = &buf[..len];
        let received_at = now_seconds();
        match decoder.handle(datagram) {
            Handled::Accepted(accepted) => {
                let key = (source, accepted.request_id);
                if let Some(ack) = &accepted.ack {
                    let arrival = ledger.arrived(key, ack, Instant::now());
                    if arrival != Arrival::New {
                        if arrival == Arrival::Stored {
                            send(&socket, ack, source).await;
                        }
                        InformRetransmitted {
                            source,
                            request_id: accepted.request_id,
                        }
                        .emit(&telemetry);
                        continue;
                    }
                }
                let is_inform = accepted.ack.is_some();
                let n = &accepted.notification;
                let (version, kind, trap_oid) = (
                    accepted.version.label(),
                    n.kind.label(),
                    n.trap_oid.to_string(),
                );
                let queued = Queued {
                    accepted,
                    source,
                    received_at,
                };
                match queue.try_send(queued) {
                    Ok(()) => TrapReceived {
                        version,
                        kind,
                        source,
                        trap_oid: &trap_oid,
                    }
                    .emit(&telemetry),
                    Err(_) => {
                        if is_inform {
                            // Not queued: the sender's next copy may be.
                            ledger.failed(key);
                        }
                        TrapRejected {
                            rejection: TrapRejection::QueueFull,
                            source,
                            detail: &"traps.queue_capacity notifications are already waiting to be published",
                        }
                        .emit(&telemetry)
                    }
                }
            }
            Handled::Discovery { report } => {
                send(&socket, &report, source).await;
                TrapReportSent {
                    reason: "unknown_engine_id",
                    source,
                }
                .emit(&telemetry);
            }
            Handled::Rejected {
                rejection,
                detail,
                report,
            } => {
                TrapRejected {
                    rejection,
                    source,
                    detail: &detail,
                }
                .emit(&telemetry);
                if let Some(report) = report {
                    send(&socket, &report, source).await;
                    TrapReportSent {
                        reason: rejection.label(),
                        source,
                    }
                    .emit(&telemetry);
                }
            }
        }
    }
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = socket.send_to(bytes, to).await {
        tracing::debug!(error = %e, to = %to, "trap receiver: cannot answer");
    }
}

async fn publish_loop(
    mut queue: mpsc::Receiver<Queued>,
    socket: Arc<UdpSocket>,
    ledger: Arc<InformLedger>,
    w: Wiring,
) {
    let mut index = ResourceIndex::new(w.resources.clone());
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let mut by_topic: Vec<(String, Vec<Message>)> = Vec::new();
        for q in &batch {
            let resource = index.lookup(q.source.ip()).await;
            let key = resource
                .as_ref()
                .and_then(|r| r.get("resource_id"))
                .and_then(|id| id.as_str())
                .map_or_else(|| q.source.ip().to_canonical().to_string(), str::to_owned);
            let topic = resource
                .as_ref()
                .and_then(|r| r.get("resource_site"))
                .and_then(|site| site.as_str())
                .and_then(|site| w.site_topics.get(site))
                .unwrap_or(&w.topic)
                .clone();
            let event = TrapEvent::new(
                &q.accepted.notification,
                Received {
                    version: q.accepted.version,
                    source: q.source,
                    v3_user: q.accepted.v3_user.clone(),
                    received_at: q.received_at,
                    resource,
                    names: w.names.as_ref(),
                },
            );
            let message = match serde_json::to_vec(&event) {
                Ok(value) => Message {
                    partition_key: key.clone(),
                    key,
                    value,
                },
                Err(e) => {
                    tracing::error!(error = %e, "trap event not serializable: dropped");
                    continue;
                }
            };
            match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, messages)) => messages.push(message),
                None => by_topic.push((topic, vec![message])),
            }
        }
        let counts: Vec<(String, usize)> =
            by_topic.iter().map(|(t, m)| (t.clone(), m.len())).collect();
        match w.publisher.publish(by_topic).await {
            Ok(_) => {
                for (topic, count) in &counts {
                    TrapsPublished {
                        topic,
                        count: *count,
                    }
                    .emit(&w.telemetry);
                }
                for q in batch.iter().filter(|q| q.accepted.ack.is_some()) {
                    if let Some(ack) = ledger.stored((q.source, q.accepted.request_id)) {
                        send(&socket, &ack, q.source).await;
                    }
                }
            }
            // No acknowledgement: inform senders send again, and their copies are new.
            Err(error) => {
                for q in batch.iter().filter(|q| q.accepted.ack.is_some()) {
                    ledger.failed((q.source, q.accepted.request_id));
                }
                for (topic, _) in &counts {
                    PublishFailed {
                        topic,
                        error: &error,
                    }
                    .emit(&w.telemetry)
                }
            }
        }
    }
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The keyspace holding the receiver's engine ID and boots.
const ENGINE_KEYSPACE: &str = "trap_engine";

/// Our engine ID (made once, then kept in the store so configured inform senders keep
/// working across restarts) and msgAuthoritativeEngineBoots (one more at every start:
/// RFC 3414 2.2.2, so informs recorded before a restart cannot be replayed after it).
fn engine_identity(store: &Store) -> Result<(Vec<u8>, u32)> {
    let keyspace = store.keyspace(ENGINE_KEYSPACE)?;
    let engine_id = match keyspace.get(b"engine_id")? {
        Some(id) if (5..=32).contains(&id.len()) => id,
        _ => {
            // RFC 3411 format 5 (octets) under net-snmp's enterprise number, as the
            // simulator's devices: "pnptrap" and 8 random bytes.
            let mut id = vec![0x80, 0x00, 0x1f, 0x88, 0x05];
            id.extend_from_slice(b"pnptrap");
            id.extend_from_slice(&rand::random::<[u8; 8]>());
            keyspace.put(b"engine_id", &id, None)?;
            id
        }
    };
    let boots = keyspace
        .get(b"engine_boots")?
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map_or(0, u32::from_be_bytes)
        .saturating_add(1)
        .min(i32::MAX as u32 - 1);
    keyspace.put(b"engine_boots", &boots.to_be_bytes(), None)?;
    Ok((engine_id, boots))
}
