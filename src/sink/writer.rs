//! The one thing the sink needs from an InfluxDB server: take a body of line-protocol
//! points (precision seconds) and say whether it was stored. Two implementations, one per
//! server generation: [`super::v1::V1Writer`] (`/write`) and [`super::v2::V2Writer`]
//! (`/api/v2/write`, through the `influxdb2` crate).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use panoptes_actors::BoxFuture;

/// Why a write did not store the points.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The server refused the points themselves (HTTP 400, 413, 422): sending the same body
    /// again cannot succeed. `reason` is the server's message.
    #[error("InfluxDB refused the points (HTTP {status}): {reason}")]
    Rejected { status: u16, reason: String },
    /// Anything else (unreachable, timeout, 5xx, authentication, missing database): the
    /// same body may succeed later.
    #[error("writing to InfluxDB failed: {0}")]
    Failed(#[from] WriteFailure),
}

/// Why a write failed in a way that may pass: the same body may succeed later.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailure {
    /// An error status that does not refuse the points (5xx, authentication, a missing
    /// database). `body` is the start of the server's message (see [`short`]).
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The server was not reached, or did not answer in time (API v1).
    #[error(transparent)]
    Transport(Box<ureq::Transport>),
    /// The `influxdb2` client failed other than with an HTTP status (API v2).
    #[error("{}", short(&.0.to_string()))]
    Client(influxdb2::RequestError),
    /// `CREATE DATABASE` (API v1, when the database is missing) failed.
    #[error("creating database `{database}`: {source}")]
    CreateDatabase {
        database: String,
        source: Box<WriteFailure>,
    },
    /// The blocking task that wrote did not return.
    #[error("write task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl WriteError {
    /// Classifies an HTTP error status and its body.
    pub fn from_status(status: u16, body: &str) -> WriteError {
        let body = short(body);
        match status {
            400 | 413 | 422 => WriteError::Rejected {
                status,
                reason: body,
            },
            _ => WriteError::Failed(WriteFailure::Status { status, body }),
        }
    }
}

impl WriteFailure {
    /// InfluxDB 1.x answers a write to a database it does not have with 404 and
    /// "database not found": the one failure the v1 writer repairs (by creating it).
    pub fn is_missing_database(&self) -> bool {
        matches!(self, WriteFailure::Status { status: 404, body } if body.contains("database not found"))
    }
}

/// The first 300 characters of a server message, on one line.
pub fn short(text: &str) -> String {
    let one_line: String = text.trim().replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &one_line[..cut]),
        None => one_line,
    }
}

/// Writes line-protocol bodies to one InfluxDB database or bucket.
pub trait LineWriter: Send + Sync + 'static {
    /// POSTs `gzipped` (gzip of newline-separated points, precision seconds).
    fn write(&self, gzipped: Vec<u8>) -> BoxFuture<Result<(), WriteError>>;

    /// Where the points go, for logs: URL, API and database or bucket; never a secret.
    fn target(&self) -> String;
}

/// Gzip at the fastest level: line protocol compresses about 10:1 even so, and the sink
/// must keep up with a backlog.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 6 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn statuses_are_refusals_or_failures_and_a_missing_database_is_told_apart() {
        let refused = WriteError::from_status(400, "unable to parse 'x'\n");
        assert!(
            matches!(&refused, WriteError::Rejected { status: 400, reason } if reason == "unable to parse 'x'")
        );
        assert_eq!(
            refused.to_string(),
            "InfluxDB refused the points (HTTP 400): unable to parse 'x'"
        );
        let missing = WriteError::from_status(404, r#"{"error":"database not found: \"db\""}"#);
        let WriteError::Failed(failure) = &missing else {
            panic!("{missing:?}");
        };
        assert!(failure.is_missing_database());
        assert_eq!(
            missing.to_string(),
            r#"writing to InfluxDB failed: HTTP 404: {"error":"database not found: \"db\""}"#
        );
        let WriteError::Failed(other) = WriteError::from_status(404, "page not found") else {
            panic!("404 is a failure");
        };
        assert!(!other.is_missing_database());
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"interface,a=b f__gauge=1 1\ninterface,a=c f__gauge=2 1".repeat(50);
        let packed = gzip(&body);
        assert!(packed.len() < body.len() / 4);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn statuses_classify() {
        assert!(matches!(
            WriteError::from_status(400, "{\"error\":\"unable to parse\"}"),
            WriteError::Rejected { status: 400, .. }
        ));
        assert!(matches!(
            WriteError::from_status(404, "database not found"),
            WriteError::Failed { .. }
        ));
        assert!(matches!(
            WriteError::from_status(503, ""),
            WriteError::Failed { .. }
        ));
        assert_eq!(short(&"x".repeat(400)).len(), 303);
    }
}
