//! The one thing the sink needs from an InfluxDB server: take a body of line-protocol
//! points (precision seconds) and say whether it was stored. Two implementations, one per
//! server generation: [`super::v1::V1Writer`] (`/write`) and [`super::v2::V2Writer`]
//! (`/api/v2/write`, through the `influxdb2` crate).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use panoptes_actors::BoxFuture;

/// Why a write did not store the points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The server refused the points themselves (HTTP 400, 413, 422): sending the same body
    /// again cannot succeed. `reason` is the server's message.
    #[error("InfluxDB refused the points (HTTP {status}): {reason}")]
    Rejected { status: u16, reason: String },
    /// Anything else (unreachable, timeout, 5xx, authentication, missing database): the
    /// same body may succeed later.
    #[error("writing to InfluxDB failed: {reason}")]
    Failed { reason: String },
}

impl WriteError {
    /// Classifies an HTTP error status and its body.
    pub fn from_status(status: u16, body: &str) -> WriteError {
        let reason = short(body);
        match status {
            400 | 413 | 422 => WriteError::Rejected { status, reason },
            _ => WriteError::Failed {
                reason: format!("HTTP {status}: {reason}"),
            },
        }
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
