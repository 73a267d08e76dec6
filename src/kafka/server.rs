//! The Kafka listener: one task per connection, requests answered in order (as Kafka
//! does), on a small runtime of its own so client traffic never competes with the
//! pollers' threads for a scheduler.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::broker::{code, Broker};
use super::frame::{framed, peek, read_frame, FrameError, Peek};
use super::versions::is_supported;

/// A running listener. Dropping it (or `stop`) closes the listener and every connection.
pub struct KafkaServer {
    pub local_addr: SocketAddr,
    pub broker: Arc<Broker>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KafkaServer {
    /// Binds `listen` now (a taken port fails here, with the address) and serves on a
    /// thread of its own.
    pub fn start(listen: SocketAddr, broker: Broker) -> anyhow::Result<KafkaServer> {
        use anyhow::Context;
        let std_listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("binding the Kafka listener on {listen} (kafka.listen)"))?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let mut broker = broker;
        if broker.config.advertised_port == 0 {
            broker.config.advertised_port = local_addr.port();
        }
        if broker.config.advertised_host.is_empty() {
            broker.config.advertised_host = local_addr.ip().to_string();
        }
        let broker = Arc::new(broker);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kafka")
            .enable_all()
            .build()
            .context("starting the Kafka listener's runtime")?;
        let (tx, rx) = oneshot::channel();
        let b = Arc::clone(&broker);
        let thread = std::thread::Builder::new()
            .name("kafka-listener".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => serve(listener, b, rx).await,
                        Err(e) => tracing::error!(error = %e, "the Kafka listener failed to start"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(2));
            })?;
        Ok(KafkaServer {
            local_addr,
            broker,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KafkaServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: oneshot::Receiver<()>) {
    let ticker = {
        let b = Arc::clone(&broker);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                b.groups.tick(Instant::now());
            }
        })
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if broker.open_connections() >= broker.config.max_connections {
                        broker.telemetry.inc("panoptes_kafka_bad_frames_total", &[("reason", "too_many_connections")]);
                        tracing::warn!(%peer, limit = broker.config.max_connections, "refused a Kafka connection: too many open (kafka.max_connections)");
                        drop(stream);
                        continue;
                    }
                    let b = Arc::clone(&broker);
                    tokio::spawn(async move { connection(stream, peer, b).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep listening.
                    tracing::warn!(error = %e, "accepting a Kafka connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    ticker.abort();
}

struct Open<'a>(&'a Broker);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    broker.connections.fetch_add(1, Ordering::Relaxed);
    let _open = Open(&broker);
    broker
        .telemetry
        .inc("panoptes_kafka_connections_total", &[]);
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(64 * 1024, read);
    loop {
        let frame = match read_frame(
            &mut read,
            broker.config.max_frame_bytes,
            broker.config.idle_timeout,
            broker.config.frame_timeout,
        )
        .await
        {
            Ok(f) => f,
            Err(FrameError::Closed) => break,
            Err(e) => {
                if let Some(reason) = e.reason() {
                    broker
                        .telemetry
                        .inc("panoptes_kafka_bad_frames_total", &[("reason", reason)]);
                    tracing::warn!(%peer, error = %e, "closing a Kafka connection");
                } else {
                    tracing::debug!(%peer, error = %e, "Kafka connection ended");
                }
                break;
            }
        };
        match respond(&broker, frame).await {
            Ok(Some(bytes)) => {
                if let Err(e) = write.write_all(&bytes).await {
                    tracing::debug!(%peer, error = %e, "Kafka client went away before its answer");
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing a Kafka connection");
                break;
            }
        }
    }
}

/// The framed answer to one request (`None`: the request wants none), or why the
/// connection must close.
pub async fn respond(broker: &Arc<Broker>, frame: Bytes) -> Result<Option<Bytes>, String> {
    match decode(broker, frame)? {
        Decoded::Answered(bytes) => Ok(Some(bytes)),
        Decoded::Request(request) => answer(broker, *request).await,
    }
}

/// A request frame as far as the broker reads it before any handler runs.
pub(crate) enum Decoded {
    /// An API or version we do not serve, answered already.
    Answered(Bytes),
    Request(Box<Request>),
}

/// A decoded request of an API and version we serve.
pub(crate) struct Request {
    pub peek: Peek,
    pub api: ApiKey,
    pub header: RequestHeader,
    pub kind: RequestKind,
}

/// Reads a frame's header and body (counting what is refused), or why the connection
/// must close.
pub(crate) fn decode(broker: &Broker, frame: Bytes) -> Result<Decoded, String> {
    let Some(p) = peek(&frame) else {
        return Err("frame shorter than a request header".into());
    };
    let Ok(api) = ApiKey::try_from(p.api_key) else {
        broker.telemetry.inc(
            "panoptes_kafka_bad_frames_total",
            &[("reason", "unknown_api")],
        );
        tracing::debug!(api_key = p.api_key, "unknown Kafka API key");
        return unsupported(p, 0).map(Decoded::Answered);
    };
    if !is_supported(api, p.api_version) {
        tracing::debug!(api = ?api, version = p.api_version, "unsupported Kafka API or version");
        if api == ApiKey::ApiVersions {
            // Not a bad request: clients open with their newest ApiVersions and retry
            // with one from our list (KIP-511), so it is not counted.
            // Kafka's rule: answer in v0 with the list, so the client retries with one we serve.
            let mut body = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(p.correlation_id)
                .encode(&mut body, 0)
                .map_err(|e| e.to_string())?;
            super::api_versions::answer(code::UNSUPPORTED_VERSION)
                .encode(&mut body, 0)
                .map_err(|e| e.to_string())?;
            return framed(&body).map(Decoded::Answered);
        }
        broker.telemetry.inc(
            "panoptes_kafka_bad_frames_total",
            &[("reason", "unsupported_version")],
        );
        return unsupported(p, api.response_header_version(p.api_version)).map(Decoded::Answered);
    }
    broker.telemetry.inc(
        "panoptes_kafka_requests_total",
        &[("api", &format!("{api:?}"))],
    );
    let mut buf = frame;
    let decoded = RequestHeader::decode(&mut buf, api.request_header_version(p.api_version))
        .and_then(|header| Ok((header, RequestKind::decode(api, &mut buf, p.api_version)?)));
    match decoded {
        Ok((header, kind)) => Ok(Decoded::Request(Box::new(Request {
            peek: p,
            api,
            header,
            kind,
        }))),
        Err(e) => {
            broker.telemetry.inc(
                "panoptes_kafka_bad_frames_total",
                &[("reason", "malformed")],
            );
            Err(format!(
                "malformed {api:?} v{} request: {e:#}",
                p.api_version
            ))
        }
    }
}

/// Runs a decoded request's handler and frames its answer.
pub(crate) async fn answer(
    broker: &Arc<Broker>,
    request: Request,
) -> Result<Option<Bytes>, String> {
    let Request {
        peek: p,
        api,
        header,
        kind,
    } = request;
    let Some(response) = broker.handle(&header, kind).await? else {
        return Ok(None);
    };
    let mut body = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(p.correlation_id)
        .encode(&mut body, api.response_header_version(p.api_version))
        .map_err(|e| e.to_string())?;
    response
        .encode(&mut body, p.api_version)
        .map_err(|e| format!("encoding the {api:?} v{} answer: {e:#}", p.api_version))?;
    framed(&body).map(Some)
}

/// The answer to an API or version we do not serve: the response header, then
/// UNSUPPORTED_VERSION where responses put their error code first.
fn unsupported(p: Peek, header_version: i16) -> Result<Bytes, String> {
    let mut body = BytesMut::new();
    body.put_i32(p.correlation_id);
    if header_version >= 1 {
        body.put_u8(0); // no tagged fields
    }
    body.put_i16(code::UNSUPPORTED_VERSION);
    framed(&body)
}
