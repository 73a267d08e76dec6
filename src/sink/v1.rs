//! InfluxDB 1.x (and VictoriaMetrics, and anything else speaking it): `POST /write?db=...
//! &precision=s` with optional basic authentication. The `influxdb2` crate cannot do this
//! (it only knows `/api/v2/write`, which InfluxDB 1.6 answers with 404), and ureq is
//! already in the binary, so this is a plain blocking POST on a worker thread.

use std::time::Duration;

use panoptes_actors::BoxFuture;

use super::secret::Secret;
use super::writer::{short, LineWriter, WriteError, WriteFailure};

#[derive(Clone)]
pub struct V1Writer {
    agent: ureq::Agent,
    base: String,
    database: String,
    /// `Basic <base64(user:password)>`, when a user is configured.
    authorization: Option<Secret>,
}

impl V1Writer {
    /// `url` is the server's base URL (`http://host:8086` or `https://...`, maybe with a
    /// path prefix); `tls` the client configuration for https.
    pub fn new(
        url: &str,
        database: &str,
        username: &str,
        password: &Secret,
        timeout: Duration,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> V1Writer {
        let authorization = (!username.is_empty()).then(|| {
            let pair = format!("{username}:{}", password.expose());
            Secret::new(format!("Basic {}", base64(pair.as_bytes())))
        });
        let mut agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .max_idle_connections_per_host(4);
        if let Some(tls) = tls {
            agent = agent.tls_config(tls);
        }
        V1Writer {
            agent: agent.build(),
            base: url.trim_end_matches('/').to_string(),
            database: database.to_string(),
            authorization,
        }
    }

    fn post(&self, path: &str) -> ureq::Request {
        let mut request = self.agent.post(&format!("{}{path}", self.base));
        if let Some(auth) = &self.authorization {
            request = request.set("Authorization", auth.expose());
        }
        request
    }

    fn write_blocking(&self, gzipped: &[u8]) -> Result<(), WriteError> {
        let result = self
            .post("/write")
            .query("db", &self.database)
            .query("precision", "s")
            .set("Content-Encoding", "gzip")
            .set("Content-Type", "text/plain; charset=utf-8")
            .send_bytes(gzipped);
        match result {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                Err(WriteError::from_status(status, &body))
            }
            Err(ureq::Error::Transport(e)) => Err(WriteFailure::Transport(Box::new(e)).into()),
        }
    }

    /// `CREATE DATABASE` (a no-op when it exists), as the original does at start.
    fn create_database(&self) -> Result<(), WriteFailure> {
        let query = format!("CREATE DATABASE \"{}\"", self.database.replace('"', "\\\""));
        let failure = match self.post("/query").send_form(&[("q", &query)]) {
            Ok(_) => return Ok(()),
            Err(ureq::Error::Status(status, response)) => WriteFailure::Status {
                status,
                body: short(&response.into_string().unwrap_or_default()),
            },
            Err(ureq::Error::Transport(e)) => WriteFailure::Transport(Box::new(e)),
        };
        Err(WriteFailure::CreateDatabase {
            database: self.database.clone(),
            source: Box::new(failure),
        })
    }
}

impl LineWriter for V1Writer {
    fn write(&self, gzipped: Vec<u8>) -> BoxFuture<Result<(), WriteError>> {
        let this = self.clone();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                match this.write_blocking(&gzipped) {
                    // The database is missing (a fresh server): create it, then try once more.
                    Err(WriteError::Failed(failure)) if failure.is_missing_database() => {
                        tracing::info!(target = %this.target(), "InfluxDB has no such database: creating it");
                        this.create_database()?;
                        this.write_blocking(&gzipped)
                    }
                    other => other,
                }
            });
            task.await.map_err(WriteFailure::Task)?
        })
    }

    fn target(&self) -> String {
        format!(
            "{} (API v1, database `{}`)",
            crate::secret::redact_url(&self.base),
            self.database
        )
    }
}

/// Standard base64 with padding (for the basic-authentication header).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("root:root", "cm9vdDpyb290"),
        ] {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
    }

    #[test]
    fn target_names_no_secret() {
        let w = V1Writer::new(
            "http://127.0.0.1:8086/",
            "panoptes",
            "admin",
            &Secret::new("hunter2"),
            Duration::from_secs(1),
            None,
        );
        assert_eq!(
            w.target(),
            "http://127.0.0.1:8086 (API v1, database `panoptes`)"
        );
        let w = V1Writer::new(
            "https://admin:hunter2@db.example:8086",
            "panoptes",
            "",
            &Secret::new(""),
            Duration::from_secs(1),
            None,
        );
        assert_eq!(
            w.target(),
            "https://***@db.example:8086 (API v1, database `panoptes`)"
        );
        assert!(!format!("{:?}", w.authorization).contains("aHVudGVy"));
    }
}
