//! A minimal Kafka client connection: typed requests over one TCP connection, answered
//! in order. Used to publish to and consume from an external cluster (`external.rs`) and
//! by the tests to speak to the embedded broker byte for byte.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
}

/// One connection to one broker.
pub struct Connection {
    addr: String,
    stream: TcpStream,
    correlation: i32,
    client_id: String,
    timeout: Duration,
    /// `(api key, min, max)` the broker advertised.
    versions: Vec<(i16, i16, i16)>,
}

impl Connection {
    /// Connects and asks the broker which versions it serves.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| ClientError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut c = Connection {
            addr: addr.to_owned(),
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
        Ok(c)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn peer(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
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
            let size = self.stream.read_i32().await.map_err(io)?;
            let size = usize::try_from(size).map_err(|_| {
                io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("answer size {size}"),
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
        let read = tokio::time::timeout(self.timeout, async {
            let size = match self.stream.read_i32().await {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
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
