//! Kafka framing: a 4-byte big-endian size, then the request. Reading is bounded in size
//! and in time, so a client that lies about a size or stops mid-frame costs a counter and
//! its connection, never memory or a stuck task.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a connection's next frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames (the normal end).
    #[error("connection closed")]
    Closed,
    #[error("frame of {size} bytes is over the limit of {limit} bytes (kafka.max_frame_bytes)")]
    Oversized { size: i64, limit: usize },
    #[error("frame size {0} is not valid")]
    BadSize(i32),
    #[error("no complete frame within {0:?}")]
    Timeout(Duration),
    #[error("reading the frame: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// The `reason` label of `panoptes_kafka_bad_frames_total` (`None`: not a bad frame).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            FrameError::Closed | FrameError::Io(_) => None,
            FrameError::Oversized { .. } => Some("oversized"),
            FrameError::BadSize(_) => Some("bad_size"),
            FrameError::Timeout(_) => Some("timeout"),
        }
    }
}

/// Reads one frame. `idle` bounds the wait for its first byte (an idle client), `body`
/// the time from the first byte to the last (a slow or half-open one).
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
    idle: Duration,
    body: Duration,
) -> Result<Bytes, FrameError> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(idle, reader.read(&mut first)).await {
        Err(_) => return Err(FrameError::Timeout(idle)),
        Ok(Ok(0)) => return Err(FrameError::Closed),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e.into()),
    }
    tokio::time::timeout(body, async {
        let mut rest = [0u8; 3];
        reader.read_exact(&mut rest).await?;
        let size = i32::from_be_bytes([first[0], rest[0], rest[1], rest[2]]);
        if size < 8 {
            // Not even api key, version and correlation id.
            return Err(FrameError::BadSize(size));
        }
        let size_usize = size as usize;
        if size_usize > limit {
            return Err(FrameError::Oversized {
                size: size.into(),
                limit,
            });
        }
        let mut buf = BytesMut::zeroed(size_usize);
        reader.read_exact(&mut buf).await?;
        Ok(buf.freeze())
    })
    .await
    .map_err(|_| FrameError::Timeout(body))?
}

/// `payload` with its size in front.
pub fn framed(payload: &[u8]) -> Result<Bytes, String> {
    let size = i32::try_from(payload.len())
        .map_err(|_| format!("response of {} bytes does not fit a frame", payload.len()))?;
    let mut out = BytesMut::with_capacity(4 + payload.len());
    out.put_i32(size);
    out.put_slice(payload);
    Ok(out.freeze())
}

/// The first fields of every request: enough to answer even one we cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads api key, version and correlation id (the frame is at least 8 bytes long).
pub fn peek(frame: &[u8]) -> Option<Peek> {
    let b = frame.get(..8)?;
    Some(Peek {
        api_key: i16::from_be_bytes([b[0], b[1]]),
        api_version: i16::from_be_bytes([b[2], b[3]]),
        correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], limit: usize) -> Result<Bytes, FrameError> {
        let mut r = bytes;
        read_frame(
            &mut r,
            limit,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .await
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_bounded() {
        let mut good = 8i32.to_be_bytes().to_vec();
        good.extend_from_slice(&[0, 18, 0, 3, 0, 0, 0, 7]);
        assert_eq!(&read(&good, 100).await.unwrap()[..], &good[4..]);
        assert!(matches!(read(&[], 100).await, Err(FrameError::Closed)));
        let huge = i32::MAX.to_be_bytes();
        assert!(matches!(
            read(&huge, 100).await,
            Err(FrameError::Oversized { .. })
        ));
        let negative = (-5i32).to_be_bytes();
        assert!(matches!(
            read(&negative, 100).await,
            Err(FrameError::BadSize(-5))
        ));
        // A frame cut short is an I/O error (unexpected EOF), not a hang.
        let mut cut = 20i32.to_be_bytes().to_vec();
        cut.extend_from_slice(&[0; 5]);
        assert!(matches!(read(&cut, 100).await, Err(FrameError::Io(_))));
        assert_eq!(
            peek(&good[4..]),
            Some(Peek {
                api_key: 18,
                api_version: 3,
                correlation_id: 7
            })
        );
    }

    #[tokio::test]
    async fn a_peer_that_stops_mid_frame_times_out() {
        let (mut client, mut server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client.write_all(&[0, 0, 0, 20, 1, 2]).await.unwrap();
        let r = read_frame(
            &mut server,
            100,
            Duration::from_secs(1),
            Duration::from_millis(50),
        )
        .await;
        assert!(matches!(r, Err(FrameError::Timeout(_))), "{r:?}");
    }
}
