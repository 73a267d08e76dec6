//! InfluxDB 2.x (and VictoriaMetrics' `/api/v2/write`): org, bucket and token, through the
//! `influxdb2` crate. The crate sends what it is given; we hand it a client whose default
//! headers say the body is gzip (we compress it ourselves, as for v1) and whose timeouts
//! come from our configuration.

use std::time::Duration;

use influxdb2::api::write::TimestampPrecision;
use influxdb2::RequestError;
use panoptes_actors::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING};

use super::secret::Secret;
use super::writer::{LineWriter, WriteError, WriteFailure};

/// Why a URL does not parse (the `url` crate's error, as reqwest uses it).
pub type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// Why the v2 writer could not be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum V2SetupError {
    /// `url` has its credentials redacted.
    #[error("influxdb.url `{url}`: {source}")]
    Url { url: String, source: UrlError },
    #[error("influxdb.tls_ca: {0}")]
    Certificate(#[source] reqwest::Error),
    #[error("building the InfluxDB v2 client: {0}")]
    Client(#[source] influxdb2::BuildError),
}

#[derive(Clone)]
pub struct V2Writer {
    client: influxdb2::Client,
    base: String,
    org: String,
    bucket: String,
}

impl V2Writer {
    /// `url` must be an absolute http(s) URL (the crate panics on others, so we check
    /// first); `extra_roots` are certificates trusted for https besides the public roots.
    pub fn new(
        url: &str,
        org: &str,
        bucket: &str,
        token: &Secret,
        timeout: Duration,
        extra_roots: &[Vec<u8>],
    ) -> Result<V2Writer, V2SetupError> {
        reqwest::Url::parse(url).map_err(|source| V2SetupError::Url {
            url: crate::secret::redact_url(url),
            source,
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let mut builder = reqwest::ClientBuilder::new()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            .use_rustls_tls();
        for der in extra_roots {
            let cert = reqwest::Certificate::from_der(der).map_err(V2SetupError::Certificate)?;
            builder = builder.add_root_certificate(cert);
        }
        let client = influxdb2::ClientBuilder::with_builder(builder, url, org, token.expose())
            .build()
            .map_err(V2SetupError::Client)?;
        Ok(V2Writer {
            client,
            base: url.trim_end_matches('/').to_string(),
            org: org.to_string(),
            bucket: bucket.to_string(),
        })
    }
}

impl LineWriter for V2Writer {
    fn write(&self, gzipped: Vec<u8>) -> BoxFuture<Result<(), WriteError>> {
        let this = self.clone();
        Box::pin(async move {
            let result = this
                .client
                .write_line_protocol_with_precision(
                    &this.org,
                    &this.bucket,
                    gzipped,
                    TimestampPrecision::Seconds,
                )
                .await;
            match result {
                Ok(()) => Ok(()),
                Err(RequestError::Http { status, text }) => {
                    Err(WriteError::from_status(status.as_u16(), &text))
                }
                Err(e) => Err(WriteFailure::Client(e).into()),
            }
        })
    }

    fn target(&self) -> String {
        format!(
            "{} (API v2, org `{}`, bucket `{}`)",
            crate::secret::redact_url(&self.base),
            self.org,
            self.bucket
        )
    }
}
