//! One client connection: the TLS handshake (on a TLS listener), then frames read within
//! their bounds and answered in order (as Kafka does). On a SASL listener nothing but
//! ApiVersions and SASL is served before the client authenticated; a connection must
//! complete its first request (and its authentication) within
//! `kafka.first_request_timeout`, or be evicted earlier to make room for a new one.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind, SaslAuthenticateResponse,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::acl::Principal;
use super::admission::Ticket;
use super::broker::{code, Broker, Caller, HandleError};
use super::frame::{framed, peek, read_frame, FrameError, FrameLimits, Peek, TooLargeToFrame};
use super::sasl::{Exchange, SaslFailure, Step};
use super::versions::is_supported;
use crate::events::{KafkaBadFrame, KafkaRefusal};

/// Largest frame read before a client authenticated: ApiVersions and SASL tokens are a
/// few hundred bytes, and nobody unknown gets to make the broker buffer megabytes.
const PRE_AUTH_FRAME_BYTES: usize = 64 * 1024;
/// Each connection reads through a buffer this big (allocated once per connection).
const READ_BUFFER: usize = 16 * 1024;

/// Where a connection stands with SASL.
enum Auth {
    /// Serving requests as this principal (no SASL on this listener, or authenticated).
    Open(Principal),
    /// A SASL listener waiting for SaslHandshake.
    Handshake,
    /// Between SaslHandshake and the end of the exchange. `framed`: tokens come in
    /// SaslAuthenticate requests (handshake v1), else bare (v0).
    Tokens { exchange: Exchange, framed: bool },
}

/// [`Auth`] without its data, to match on while `Auth` changes.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Open,
    Handshake,
    Tokens { framed: bool },
}

/// What to do after a frame.
enum Next {
    Answer(Bytes),
    Silent,
    /// Write this last answer, then close.
    AnswerAndClose(Bytes),
    Close,
}

/// Serves one accepted connection until it closes, fails or is evicted.
pub async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, ticket: Ticket) {
    let _ = stream.set_nodelay(true);
    crate::events::KafkaConnectionAccepted { peer }.emit(&broker.telemetry);
    let deadline = Instant::now() + broker.config.limits.first_request_timeout;
    let Some(tls) = broker.config.security.tls.clone() else {
        return session(stream, peer, broker, ticket, deadline).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let refused = |detail: String| {
        let caller = Caller {
            principal: Principal::Anonymous,
            peer: Some(peer),
        };
        broker.refuse(&caller, KafkaRefusal::TlsHandshake, &detail);
    };
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => session(stream, peer, Arc::clone(&broker), ticket, deadline).await,
        Ok(Err(e)) => refused(format!("TLS handshake failed: {e}")),
        Err(_) => refused(format!(
            "no TLS handshake within {:?} (kafka.first_request_timeout)",
            broker.config.limits.first_request_timeout
        )),
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut ticket: Ticket,
    deadline: Instant,
) {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::with_capacity(READ_BUFFER, read);
    let mut auth = if broker.config.security.sasl.is_some() {
        Auth::Handshake
    } else {
        Auth::Open(Principal::Anonymous)
    };
    let limits = &broker.config.limits;
    loop {
        let authenticated = matches!(auth, Auth::Open(_));
        let (max, max_setting) = if authenticated {
            (limits.max_frame_bytes, "kafka.max_frame_bytes")
        } else {
            (PRE_AUTH_FRAME_BYTES, "the limit before SASL authentication")
        };
        let bare_token = matches!(auth, Auth::Tokens { framed: false, .. });
        let frame_limits = FrameLimits {
            max,
            max_setting,
            min: if bare_token { 0 } else { 8 },
            idle: limits.idle_timeout,
            body: limits.frame_timeout,
            budget_wait: limits.budget_wait,
        };
        let caller = Caller {
            principal: match &auth {
                Auth::Open(p) => p.clone(),
                _ => Principal::Anonymous,
            },
            peer: Some(peer),
        };
        let probation = ticket.on_probation();
        let frame = tokio::select! {
            read = read_frame(&mut read, &frame_limits, &broker.budget) => read,
            _ = ticket.evicted() => {
                tracing::debug!(%peer, "Kafka connection evicted before its first request");
                break;
            }
            _ = tokio::time::sleep_until(deadline), if probation => {
                broker.refuse(&caller, KafkaRefusal::FirstRequestTimeout, &format!(
                    "closed a connection without a complete first request{} within {:?} (kafka.first_request_timeout)",
                    if broker.config.security.sasl.is_some() { " and authentication" } else { "" },
                    limits.first_request_timeout
                ));
                break;
            }
        };
        let frame = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => break,
            Err(FrameError::OverBudget(e)) => {
                broker.refuse(
                    &caller,
                    KafkaRefusal::MemoryBudget,
                    &format!("closing the connection: {e}"),
                );
                break;
            }
            Err(e) => {
                match e.reason() {
                    Some(reason) => KafkaBadFrame {
                        reason,
                        peer: Some(peer),
                        error: &e,
                    }
                    .emit(&broker.telemetry),
                    None => tracing::debug!(%peer, error = %e, "Kafka connection ended"),
                }
                break;
            }
        };
        let next = if bare_token {
            bare_sasl_token(&broker, &caller, &mut auth, &frame.bytes, &mut ticket)
        } else {
            request(
                &broker,
                &caller,
                &mut auth,
                frame.bytes.clone(),
                &mut ticket,
            )
            .await
        };
        let (answer, close) = match next {
            Next::Answer(b) => (Some(b), false),
            Next::Silent => (None, false),
            Next::AnswerAndClose(b) => (Some(b), true),
            Next::Close => (None, true),
        };
        if let Some(bytes) = answer {
            let written = async {
                write.write_all(&bytes).await?;
                write.flush().await
            };
            if let Err(e) = written.await {
                tracing::debug!(%peer, error = %e, "Kafka client went away before its answer");
                break;
            }
        }
        // The frame's bytes stay in the budget until it was answered.
        drop(frame);
        if close {
            break;
        }
    }
    let _ = write.shutdown().await;
}

/// A bare SASL token (after SaslHandshake v0): answered with a bare token; a failure
/// closes the connection, which is how v0 tells it.
fn bare_sasl_token(
    broker: &Broker,
    caller: &Caller,
    auth: &mut Auth,
    token: &[u8],
    ticket: &mut Ticket,
) -> Next {
    match sasl_step(broker, caller, auth, token, ticket) {
        Ok(reply) => match framed(&reply) {
            Ok(bytes) => Next::Answer(bytes),
            Err(_) => Next::Close,
        },
        Err(_) => Next::Close,
    }
}

/// Advances the SASL exchange with the client's token; the token to send back.
fn sasl_step(
    broker: &Broker,
    caller: &Caller,
    auth: &mut Auth,
    token: &[u8],
    ticket: &mut Ticket,
) -> Result<Vec<u8>, SaslFailure> {
    let (Some(server), Auth::Tokens { .. }) = (broker.config.security.sasl.as_deref(), &*auth)
    else {
        return Err(SaslFailure::Malformed(
            "no SASL exchange in progress".into(),
        ));
    };
    let Auth::Tokens { exchange, framed } = std::mem::replace(auth, Auth::Handshake) else {
        return Err(SaslFailure::Malformed(
            "no SASL exchange in progress".into(),
        ));
    };
    match exchange.step(server, token) {
        Ok((Step::Continue(reply), Some(next))) => {
            *auth = Auth::Tokens {
                exchange: next,
                framed,
            };
            Ok(reply)
        }
        Ok((Step::Done { user, token }, _)) => {
            tracing::debug!(peer = ?caller.peer, user, "Kafka client authenticated");
            *auth = Auth::Open(Principal::User(user));
            ticket.proven();
            Ok(token)
        }
        Ok((Step::Continue(_), None)) => Err(SaslFailure::Malformed(
            "the exchange ended without a result".into(),
        )),
        Err(failure) => {
            let detail = match &failure {
                SaslFailure::BadCredentials { mechanism, user } => {
                    format!("SASL {mechanism} authentication failed for user {user:?}")
                }
                SaslFailure::Malformed(why) => format!("SASL authentication failed: {why}"),
            };
            broker.refuse(caller, KafkaRefusal::SaslAuthentication, &detail);
            Err(failure)
        }
    }
}

/// One request frame: SASL here, everything else through the broker.
async fn request(
    broker: &Arc<Broker>,
    caller: &Caller,
    auth: &mut Auth,
    frame: Bytes,
    ticket: &mut Ticket,
) -> Next {
    let sasl = broker.config.security.sasl.is_some();
    let decoded = match decode(broker, caller, frame, sasl) {
        Ok(Decoded::Request(r)) => r,
        Ok(Decoded::Answer(bytes)) => return Next::Answer(bytes),
        Err(e) => {
            tracing::debug!(peer = ?caller.peer, error = %e, "closing a Kafka connection");
            return Next::Close;
        }
    };
    let Request {
        peek: p,
        api,
        header,
        body,
    } = *decoded;
    let answer = |response: ResponseKind| match encode(p, api, response) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!(peer = ?caller.peer, error = %e, "encoding a Kafka answer failed");
            None
        }
    };
    let stage = match &*auth {
        Auth::Open(_) => Stage::Open,
        Auth::Handshake => Stage::Handshake,
        Auth::Tokens { framed, .. } => Stage::Tokens { framed: *framed },
    };
    match (body, stage) {
        (RequestKind::SaslHandshake(r), Stage::Handshake) => {
            let Some(server) = broker.config.security.sasl.as_deref() else {
                return Next::Close;
            };
            let mut response = SaslHandshakeResponse::default();
            response.mechanisms = server
                .mechanisms()
                .iter()
                .map(|m| StrBytes::from_static_str(m.name()))
                .collect();
            match server.offered(&r.mechanism) {
                Some(mechanism) => {
                    *auth = Auth::Tokens {
                        exchange: Exchange::Start(mechanism),
                        framed: p.api_version >= 1,
                    };
                    answer(ResponseKind::SaslHandshake(response)).map_or(Next::Close, Next::Answer)
                }
                None => {
                    broker.refuse(
                        caller,
                        KafkaRefusal::SaslMechanism,
                        &format!(
                            "SASL mechanism {:?} is not offered (kafka.sasl_mechanisms)",
                            r.mechanism.as_str()
                        ),
                    );
                    response.error_code = code::UNSUPPORTED_SASL_MECHANISM;
                    answer(ResponseKind::SaslHandshake(response))
                        .map_or(Next::Close, Next::AnswerAndClose)
                }
            }
        }
        (RequestKind::SaslAuthenticate(r), Stage::Tokens { framed: true }) => {
            let mut response = SaslAuthenticateResponse::default();
            match sasl_step(broker, caller, auth, &r.auth_bytes, ticket) {
                Ok(token) => {
                    response.auth_bytes = Bytes::from(token);
                    answer(ResponseKind::SaslAuthenticate(response))
                        .map_or(Next::Close, Next::Answer)
                }
                Err(failure) => {
                    response.error_code = code::SASL_AUTHENTICATION_FAILED;
                    response.error_message = Some(StrBytes::from_string(failure.to_string()));
                    answer(ResponseKind::SaslAuthenticate(response))
                        .map_or(Next::Close, Next::AnswerAndClose)
                }
            }
        }
        (RequestKind::SaslHandshake(_), _) => {
            let mut response = SaslHandshakeResponse::default();
            response.error_code = code::ILLEGAL_SASL_STATE;
            answer(ResponseKind::SaslHandshake(response)).map_or(Next::Close, Next::AnswerAndClose)
        }
        (RequestKind::SaslAuthenticate(_), _) => {
            let mut response = SaslAuthenticateResponse::default();
            response.error_code = code::ILLEGAL_SASL_STATE;
            response.error_message = Some(StrBytes::from_static_str(
                "SaslAuthenticate without a SaslHandshake v1 first",
            ));
            answer(ResponseKind::SaslAuthenticate(response))
                .map_or(Next::Close, Next::AnswerAndClose)
        }
        (body @ RequestKind::ApiVersions(_), _) | (body, Stage::Open) => {
            match broker.handle(&header, body, caller).await {
                Ok(Some(response)) => {
                    ticket.proven_unless(sasl);
                    answer(response).map_or(Next::Close, Next::Answer)
                }
                Ok(None) => {
                    ticket.proven_unless(sasl);
                    Next::Silent
                }
                Err(HandleError::Refused { refusal, detail }) => {
                    broker.refuse(caller, refusal, &detail);
                    Next::Close
                }
                Err(e) => {
                    tracing::warn!(peer = ?caller.peer, error = %e, "closing a Kafka connection");
                    Next::Close
                }
            }
        }
        (_, _) => {
            broker.refuse(
                caller,
                KafkaRefusal::SaslRequired,
                &format!(
                    "{api:?} before SASL authentication (kafka.security = \"{}\"): closing the connection",
                    broker.config.security.protocol.name()
                ),
            );
            Next::Close
        }
    }
}

impl Ticket {
    /// Ends probation after a request was served, on a listener without SASL (where
    /// authentication ends it instead).
    fn proven_unless(&mut self, sasl: bool) {
        if !sasl {
            self.proven();
        }
    }
}

/// A decoded request.
struct Request {
    peek: Peek,
    api: ApiKey,
    header: RequestHeader,
    body: RequestKind,
}

enum Decoded {
    Request(Box<Request>),
    /// Answered without decoding (an API or version we do not serve).
    Answer(Bytes),
}

/// Decodes a request frame, or answers it at once when its API or version is not
/// served; `Err`: the connection must close.
fn decode(
    broker: &Broker,
    caller: &Caller,
    frame: Bytes,
    sasl: bool,
) -> Result<Decoded, HandleError> {
    let bad = |reason: &'static str, error: &dyn std::fmt::Display| {
        KafkaBadFrame {
            reason,
            peer: caller.peer,
            error,
        }
        .emit(&broker.telemetry)
    };
    let Some(p) = peek(&frame) else {
        return Err(HandleError::ShortFrame);
    };
    let Ok(api) = ApiKey::try_from(p.api_key) else {
        bad(
            "unknown_api",
            &format_args!("unknown API key {}", p.api_key),
        );
        return Ok(Decoded::Answer(unsupported(p, 0)?));
    };
    if !is_supported(api, p.api_version, sasl) {
        if api == ApiKey::ApiVersions {
            // Not a bad request: clients open with their newest ApiVersions and retry
            // with one from our list (KIP-511), so it is not counted.
            // Kafka's rule: answer in v0 with the list, so the client retries with one we serve.
            let mut body = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(p.correlation_id)
                .encode(&mut body, 0)
                .map_err(HandleError::EncodeHeader)?;
            super::api_versions::answer(code::UNSUPPORTED_VERSION, sasl)
                .encode(&mut body, 0)
                .map_err(|reason| HandleError::Encode {
                    api,
                    version: 0,
                    reason,
                })?;
            return Ok(Decoded::Answer(framed(&body)?));
        }
        bad(
            "unsupported_version",
            &format_args!("{api:?} v{} is not served", p.api_version),
        );
        let header_version = api.response_header_version(p.api_version);
        return Ok(Decoded::Answer(unsupported(p, header_version)?));
    }
    crate::events::KafkaRequestServed {
        api: &format!("{api:?}"),
        version: p.api_version,
    }
    .emit(&broker.telemetry);
    let mut buf = frame;
    let decoded = RequestHeader::decode(&mut buf, api.request_header_version(p.api_version))
        .and_then(|header| Ok((header, RequestKind::decode(api, &mut buf, p.api_version)?)));
    match decoded {
        Ok((header, body)) => Ok(Decoded::Request(Box::new(Request {
            peek: p,
            api,
            header,
            body,
        }))),
        Err(reason) => {
            let error = HandleError::Malformed {
                api,
                version: p.api_version,
                reason,
            };
            bad("malformed", &error);
            Err(error)
        }
    }
}

/// The framed answer: response header, then the body at the request's version.
fn encode(p: Peek, api: ApiKey, response: ResponseKind) -> Result<Bytes, HandleError> {
    let mut body = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(p.correlation_id)
        .encode(&mut body, api.response_header_version(p.api_version))
        .map_err(HandleError::EncodeHeader)?;
    response
        .encode(&mut body, p.api_version)
        .map_err(|reason| HandleError::Encode {
            api,
            version: p.api_version,
            reason,
        })?;
    Ok(framed(&body)?)
}

/// The answer to an API or version we do not serve: the response header, then
/// UNSUPPORTED_VERSION where responses put their error code first.
fn unsupported(p: Peek, header_version: i16) -> Result<Bytes, TooLargeToFrame> {
    let mut body = BytesMut::new();
    body.put_i32(p.correlation_id);
    if header_version >= 1 {
        body.put_u8(0); // no tagged fields
    }
    body.put_i16(code::UNSUPPORTED_VERSION);
    framed(&body)
}

/// The framed answer to one request frame from an anonymous client of a listener
/// without SASL (`None`: the request wants none), or why the connection must close. The
/// connection's own path, without the socket: for tests and fuzzing.
pub async fn respond(broker: &Arc<Broker>, frame: Bytes) -> Result<Option<Bytes>, HandleError> {
    respond_adjusted(broker, frame, |_| {}).await
}

/// [`respond`], with the decoded request adjusted before it is handled: the fuzz target
/// cuts a Fetch's wait to zero (`crate::fuzzing`).
pub(crate) async fn respond_adjusted(
    broker: &Arc<Broker>,
    frame: Bytes,
    adjust: impl FnOnce(&mut RequestKind),
) -> Result<Option<Bytes>, HandleError> {
    let caller = Caller::anonymous();
    let mut request = match decode(broker, &caller, frame, false)? {
        Decoded::Answer(bytes) => return Ok(Some(bytes)),
        Decoded::Request(r) => r,
    };
    adjust(&mut request.body);
    if matches!(
        request.body,
        RequestKind::SaslHandshake(_) | RequestKind::SaslAuthenticate(_)
    ) {
        return Err(HandleError::Sasl);
    }
    match broker
        .handle(&request.header, request.body, &caller)
        .await?
    {
        Some(response) => encode(request.peek, request.api, response).map(Some),
        None => Ok(None),
    }
}
