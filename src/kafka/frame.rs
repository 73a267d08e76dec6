//! Kafka framing: a 4-byte big-endian size, then the request. Reading is bounded in size,
//! in time and in memory: a frame's buffer grows as its bytes arrive (never to the size it
//! claims before they do), and every byte of it is taken from the listener's
//! [`Budget`], so a client that lies about a size, or a thousand that stop mid-frame,
//! cost a counter and their connections, never memory or a stuck task.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::budget::{Budget, Held, OverBudget};

/// Why a connection's next frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames (the normal end).
    #[error("connection closed")]
    Closed,
    #[error("frame of {size} bytes is over the limit of {limit} bytes ({setting})")]
    Oversized {
        size: i64,
        limit: usize,
        setting: &'static str,
    },
    #[error("frame size {0} is not valid")]
    BadSize(i32),
    #[error("no complete frame within {0:?}")]
    Timeout(Duration),
    #[error("reading the frame: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading the frame: {0}")]
    OverBudget(#[from] OverBudget),
}

impl FrameError {
    /// The `reason` label of `panoptes_kafka_bad_frames_total` (`None`: not a bad frame,
    /// or a refusal counted elsewhere).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            FrameError::Closed | FrameError::Io(_) | FrameError::OverBudget(_) => None,
            FrameError::Oversized { .. } => Some("oversized"),
            FrameError::BadSize(_) => Some("bad_size"),
            FrameError::Timeout(_) => Some("timeout"),
        }
    }
}

/// How one frame may be read.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Largest frame, and the setting that says so (for the error).
    pub max: usize,
    pub max_setting: &'static str,
    /// Smallest frame: 8 for a request (api key, version, correlation id); 0 for a bare
    /// SASL token.
    pub min: usize,
    /// Longest wait for the frame's first byte (an idle client).
    pub idle: Duration,
    /// Longest time from the first byte to the last (a slow or half-open client).
    pub body: Duration,
    /// Longest wait for room in the memory budget.
    pub budget_wait: Duration,
}

/// A frame read whole, and the budget its bytes hold until it is dropped.
#[derive(Debug)]
pub struct Frame {
    pub bytes: Bytes,
    /// Given back to the budget when the frame is dropped (after its answer).
    #[cfg_attr(not(test), allow(dead_code))]
    pub held: Held,
}

/// Reads one frame.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limits: &FrameLimits,
    budget: &Budget,
) -> Result<Frame, FrameError> {
    let mut head = [0u8; 4];
    match tokio::time::timeout(limits.idle, reader.read(&mut head[..1])).await {
        Err(_) => return Err(FrameError::Timeout(limits.idle)),
        Ok(Ok(0)) => return Err(FrameError::Closed),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e.into()),
    }
    tokio::time::timeout(limits.body, async {
        reader.read_exact(&mut head[1..]).await?;
        let size = i32::from_be_bytes(head);
        let Ok(size) = usize::try_from(size) else {
            return Err(FrameError::BadSize(size));
        };
        if size < limits.min {
            return Err(FrameError::BadSize(i32::from_be_bytes(head)));
        }
        if size > limits.max {
            return Err(FrameError::Oversized {
                size: size as i64,
                limit: limits.max,
                setting: limits.max_setting,
            });
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut held = Held::default();
        while buf.len() < size {
            let n = {
                let available = reader.fill_buf().await?;
                if available.is_empty() {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                }
                available.len().min(size - buf.len())
            };
            // Capacity doubles (up to the frame's size) as bytes arrive, and every byte of
            // capacity is held in the budget before it is allocated.
            let need = buf.len() + n;
            if need > buf.capacity() {
                let capacity = (buf.capacity() * 2).max(need).min(size);
                budget
                    .take(&mut held, capacity - buf.capacity(), limits.budget_wait)
                    .await?;
                buf.reserve_exact(capacity - buf.len());
            }
            let available = reader.fill_buf().await?;
            buf.extend_from_slice(&available[..n]);
            reader.consume(n);
        }
        Ok(Frame {
            bytes: Bytes::from(buf),
            held,
        })
    })
    .await
    .map_err(|_| FrameError::Timeout(limits.body))?
}

/// A payload longer than a frame's size field can say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("response of {0} bytes does not fit a frame")]
pub struct TooLargeToFrame(pub usize);

/// `payload` with its size in front.
pub fn framed(payload: &[u8]) -> Result<Bytes, TooLargeToFrame> {
    let size = i32::try_from(payload.len()).map_err(|_| TooLargeToFrame(payload.len()))?;
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

    fn limits(max: usize) -> FrameLimits {
        FrameLimits {
            max,
            max_setting: "kafka.max_frame_bytes",
            min: 8,
            idle: Duration::from_secs(1),
            body: Duration::from_secs(1),
            budget_wait: Duration::from_millis(10),
        }
    }

    async fn read(bytes: &[u8], max: usize) -> Result<Bytes, FrameError> {
        let mut r = bytes;
        read_frame(&mut r, &limits(max), &Budget::new(1 << 20))
            .await
            .map(|f| f.bytes)
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_bounded() {
        let mut good = 8i32.to_be_bytes().to_vec();
        good.extend_from_slice(&[0, 18, 0, 3, 0, 0, 0, 7]);
        assert_eq!(&read(&good, 100).await.unwrap()[..], &good[4..]);
        assert!(matches!(read(&[], 100).await, Err(FrameError::Closed)));
        let huge = i32::MAX.to_be_bytes();
        let err = read(&huge, 100).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame of 2147483647 bytes is over the limit of 100 bytes (kafka.max_frame_bytes)"
        );
        let negative = (-5i32).to_be_bytes();
        assert!(matches!(
            read(&negative, 100).await,
            Err(FrameError::BadSize(-5))
        ));
        assert!(matches!(
            read(&4i32.to_be_bytes(), 100).await,
            Err(FrameError::BadSize(4))
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
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = tokio::io::BufReader::new(server);
        use tokio::io::AsyncWriteExt;
        client.write_all(&[0, 0, 0, 20, 1, 2]).await.unwrap();
        let mut l = limits(100);
        l.body = Duration::from_millis(50);
        let r = read_frame(&mut server, &l, &Budget::new(1 << 20)).await;
        assert!(matches!(r, Err(FrameError::Timeout(_))), "{r:?}");
    }

    /// A frame claiming 1 MiB of which 10 bytes came holds about 10 bytes of memory and
    /// budget, not a megabyte.
    #[tokio::test]
    async fn memory_follows_the_bytes_that_arrived_not_the_size_claimed() {
        let budget = Budget::new(1 << 20);
        let (mut client, server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client.write_all(&(1i32 << 20).to_be_bytes()).await.unwrap();
        client.write_all(&[7; 10]).await.unwrap();
        let b = budget.clone();
        let reader = tokio::spawn(async move {
            let mut server = tokio::io::BufReader::new(server);
            let mut l = limits(1 << 20);
            l.body = Duration::from_secs(30);
            read_frame(&mut server, &l, &b).await
        });
        while budget.in_use() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(budget.in_use(), 10);
        // The rest arrives: the whole frame, within its budget.
        let rest = vec![9u8; (1 << 20) - 10];
        client.write_all(&rest).await.unwrap();
        let frame = reader.await.unwrap().unwrap();
        assert_eq!(frame.bytes.len(), 1 << 20);
        assert_eq!(frame.held.bytes(), 1 << 20);
        drop(frame);
        assert_eq!(budget.in_use(), 0);
        // A frame that cannot fit what is left waits, then is refused.
        let small = Budget::new(1000);
        let mut big = 2000i32.to_be_bytes().to_vec();
        big.extend_from_slice(&[0; 2000]);
        let mut r = &big[..];
        let err = read_frame(&mut r, &limits(4096), &small).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("kafka.max_bytes_in_flight = 1000 bytes"),
            "{err}"
        );
    }
}
