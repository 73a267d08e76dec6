//! A minimal Kafka client connection: typed requests over one TCP connection (TLS and
//! SASL when asked), answered in order. Used to publish to and consume from an external
//! cluster (`external.rs`) and by the tests to speak to the embedded broker byte for byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::sasl::Mechanism;
use super::scram::{ClientExchange, ScramHash};
use crate::secret::Secret;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to Kafka broker {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("Kafka broker {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("Kafka broker {addr} did not answer {api:?} within {timeout:?}")]
    Timeout {
        addr: String,
        api: ApiKey,
        timeout: Duration,
    },
    #[error("Kafka broker {addr}: {what}")]
    Protocol { addr: String, what: String },
    #[error("Kafka broker {addr} serves no version of {api:?} this client speaks")]
    Unsupported { addr: String, api: ApiKey },
    #[error("Kafka broker {addr}: TLS: {what}")]
    Tls { addr: String, what: String },
    #[error("Kafka broker {addr}: SASL {mechanism} authentication as {user:?} failed: {what}")]
    Authentication {
        addr: String,
        mechanism: Mechanism,
        user: String,
        what: String,
    },
}

/// What our client's connections require (`kafka.client_security` and friends).
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// TLS, verifying brokers against these roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<ClientSasl>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

/// Who our client authenticates as.
#[derive(Debug, Clone)]
pub struct ClientSasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: Secret,
}

/// The largest answer read (our requests ask for at most 8 MiB of records): a broker
/// claiming more is not believed.
const MAX_ANSWER_BYTES: usize = 128 << 20;

/// A byte stream to a broker: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to one broker.
pub struct Connection {
    addr: String,
    peer: Option<SocketAddr>,
    stream: Box<dyn Stream>,
    correlation: i32,
    client_id: String,
    timeout: Duration,
    /// `(api key, min, max)` the broker advertised.
    versions: Vec<(i16, i16, i16)>,
}

impl Connection {
    /// Connects without TLS or SASL and asks the broker which versions it serves.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        Connection::connect_with(addr, client_id, timeout, &ClientSecurity::default()).await
    }

    /// Connects (with TLS when `security` says so), asks the broker which versions it
    /// serves, and authenticates (with SASL when `security` says so).
    pub async fn connect_with(
        addr: &str,
        client_id: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Connection, ClientError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| ClientError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let peer = tcp.peer_addr().ok();
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let tls_error = |what: String| ClientError::Tls {
                    addr: addr.to_owned(),
                    what,
                };
                let host = addr
                    .rsplit_once(':')
                    .map_or(addr, |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| tls_error(format!("{host:?} is not a server name: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| tls_error(format!("no handshake within {timeout:?}")))?
                    .map_err(|e| tls_error(e.to_string()))?;
                Box::new(tls)
            }
        };
        let mut c = Connection {
            addr: addr.to_owned(),
            peer,
            stream,
            correlation: 0,
            client_id: client_id.to_owned(),
            timeout,
            versions: Vec::new(),
        };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("panoptes");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let answer = c.send(req, 3).await?;
        if answer.error_code != 0 {
            return Err(c.protocol(format!(
                "ApiVersions failed with error {}",
                answer.error_code
            )));
        }
        c.versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        if let Some(sasl) = &security.sasl {
            c.authenticate(sasl).await?;
        }
        Ok(c)
    }

    /// SaslHandshake v1, then the mechanism's tokens in SaslAuthenticate requests.
    async fn authenticate(&mut self, sasl: &ClientSasl) -> Result<(), ClientError> {
        let addr = self.addr.clone();
        let failed = |what: String| ClientError::Authentication {
            addr: addr.clone(),
            mechanism: sasl.mechanism,
            user: sasl.username.clone(),
            what,
        };
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = StrBytes::from_static_str(sasl.mechanism.name());
        let version = self.version::<SaslHandshakeRequest>(1)?;
        if version < 1 {
            return Err(failed(
                "the broker offers only SaslHandshake v0 (bare tokens), which this client does not speak".into(),
            ));
        }
        let answer = self.send(handshake, version).await?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(failed(format!(
                "SaslHandshake error {} (the broker offers {offered:?})",
                answer.error_code
            )));
        }
        let password = sasl.password.expose();
        match sasl.mechanism {
            Mechanism::Plain => {
                let token = format!("\0{}\0{password}", sasl.username);
                self.sasl_token(token.into_bytes(), &failed).await?;
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let hash = if sasl.mechanism == Mechanism::ScramSha256 {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let (mut exchange, first) = ClientExchange::start(hash, &sasl.username, password);
                let server_first = self.sasl_token(first, &failed).await?;
                let last = exchange
                    .respond(&server_first)
                    .map_err(|e| failed(e.to_string()))?;
                let server_final = self.sasl_token(last, &failed).await?;
                exchange
                    .verify(&server_final)
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// One SASL token sent, the broker's token back.
    async fn sasl_token(
        &mut self,
        token: Vec<u8>,
        failed: &impl Fn(String) -> ClientError,
    ) -> Result<Vec<u8>, ClientError> {
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = Bytes::from(token);
        let answer = self.call(request, 2).await?;
        if answer.error_code != 0 {
            let message = answer
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(failed(format!("error {}: {message}", answer.error_code)));
        }
        Ok(answer.auth_bytes.to_vec())
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    fn protocol(&self, what: String) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            what,
        }
    }

    /// The highest version of `R` both this client (up to `ours`) and the broker speak.
    pub fn version<R: Request>(&self, ours: i16) -> Result<i16, ClientError> {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|_| self.protocol(format!("unknown API key {}", R::KEY)))?;
        let (_, min, max) = self
            .versions
            .iter()
            .find(|(k, _, _)| *k == R::KEY)
            .copied()
            .ok_or(ClientError::Unsupported {
                addr: self.addr.clone(),
                api,
            })?;
        let v = max.min(ours).min(R::VERSIONS.max);
        if v < min.max(R::VERSIONS.min) {
            return Err(ClientError::Unsupported {
                addr: self.addr.clone(),
                api,
            });
        }
        Ok(v)
    }

    /// Sends `request` at the highest common version up to `ours` and reads the answer.
    pub async fn call<R: Request>(
        &mut self,
        request: R,
        ours: i16,
    ) -> Result<R::Response, ClientError> {
        let version = self.version::<R>(ours)?;
        self.send(request, version).await
    }

    /// Sends `request` at `version` and reads the answer.
    pub async fn send<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|_| self.protocol(format!("unknown API key {}", R::KEY)))?;
        self.correlation = self.correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_string(self.client_id.clone()));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .and_then(|_| request.encode(&mut body, version))
            .map_err(|e| self.protocol(format!("encoding {api:?} v{version}: {e:#}")))?;
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        let timeout = self.timeout;
        let addr = self.addr.clone();
        let io = |source| ClientError::Io {
            addr: addr.clone(),
            source,
        };
        let answer = tokio::time::timeout(timeout, async {
            self.stream.write_all(&frame).await.map_err(io)?;
            self.stream.flush().await.map_err(io)?;
            let size = self.stream.read_i32().await.map_err(io)?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= MAX_ANSWER_BYTES)
                .ok_or_else(|| {
                    io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("answer size {size} (at most {MAX_ANSWER_BYTES} accepted)"),
                    ))
                })?;
            let mut buf = vec![0u8; size];
            self.stream.read_exact(&mut buf).await.map_err(io)?;
            Ok::<_, ClientError>(Bytes::from(buf))
        })
        .await
        .map_err(|_| ClientError::Timeout {
            addr: self.addr.clone(),
            api,
            timeout,
        })??;
        let mut buf = answer;
        let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version))
            .map_err(|e| self.protocol(format!("decoding the {api:?} answer header: {e:#}")))?;
        if header.correlation_id != self.correlation {
            return Err(self.protocol(format!(
                "answer for request {} arrived for request {}",
                header.correlation_id, self.correlation
            )));
        }
        let response = R::Response::decode(&mut buf, version)
            .map_err(|e| self.protocol(format!("decoding the {api:?} v{version} answer: {e:#}")))?;
        if buf.has_remaining() {
            tracing::debug!(api = ?api, left = buf.remaining(), "bytes left after a Kafka answer");
        }
        Ok(response)
    }

    /// Writes raw bytes (tests of malformed input) and reads one framed answer, if any.
    pub async fn raw(&mut self, bytes: &[u8]) -> Result<Option<Bytes>, ClientError> {
        let addr = self.addr.clone();
        let io = |source| ClientError::Io {
            addr: addr.clone(),
            source,
        };
        self.stream.write_all(bytes).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        let read = tokio::time::timeout(self.timeout, async {
            let size = match self.stream.read_i32().await {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0).min(MAX_ANSWER_BYTES)];
            self.stream.read_exact(&mut buf).await?;
            Ok(Some(Bytes::from(buf)))
        })
        .await;
        match read {
            Ok(r) => r.map_err(io),
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
                api: ApiKey::ApiVersions,
                timeout: self.timeout,
            }),
        }
    }
}
