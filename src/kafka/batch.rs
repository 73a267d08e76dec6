//! Record batches (v2) in and out: a producer's batches become our records, and records
//! read from a partition go back to consumers as one uncompressed batch starting at the
//! offset they asked for (so a fetch "in the middle of a batch" needs no special case).
//!
//! Decoding is bounded: each batch's header is checked before any record is decoded, a
//! batch may not claim more records than its bytes can hold (a record takes at least 7
//! bytes), and everything one Produce request inflates, over all its batches and
//! partitions, shares one [`Inflation`]: at most `kafka.max_inflated_bytes`, each byte
//! taken from the listener's memory budget as it is produced. A compression bomb spread
//! over many small batches is refused as soon as their sum passes the limit.

use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use panoptes_storage::{Record, StoredRecord};

use super::budget::{Budget, Held, OverBudget};

/// The smallest encoding of a record: length, attributes, timestamp delta, offset delta,
/// key length, value length and header count, one byte each.
const MIN_RECORD_BYTES: usize = 7;
/// Base offset (8) + batch length (4): what precedes the length-counted part.
const BATCH_PREFIX: usize = 12;
/// Offset of the record count in a v2 batch.
const RECORD_COUNT_AT: usize = 57;
/// Everything before the records.
const BATCH_HEADER: usize = 61;
/// Inflated bytes are produced (and accounted) this many at a time.
const INFLATE_CHUNK: usize = 32 * 1024;
/// The largest zstd window accepted (8 MiB: what compression levels up to 19 use; the
/// library's own default allows 128 MiB).
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// One producer batch, decoded.
#[derive(Debug)]
pub struct Batch {
    pub records: Vec<Record>,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub compression: Compression,
}

/// Why a producer's records were refused.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Answered CORRUPT_MESSAGE.
    #[error("record batch {index}: {reason}")]
    Invalid { index: usize, reason: String },
    /// The request's records inflate past `kafka.max_inflated_bytes` (MESSAGE_TOO_LARGE).
    #[error(
        "the records of this request inflate to more than {limit} bytes (kafka.max_inflated_bytes)"
    )]
    TooLarge { limit: usize },
    /// The listener's memory budget had no room for the inflated records.
    #[error("inflating the records: {0}")]
    OverBudget(#[from] OverBudget),
}

/// What one Produce request may still inflate, and the memory its inflated records hold.
///
/// The first compressed batch of a request reserves the whole limit (and a zstd window)
/// from the memory budget at once, waiting briefly for it; what was not used is given
/// back when decoding ends. Reserving piecemeal instead would let many requests each
/// hold part of the budget and all wait for the rest.
#[derive(Debug)]
pub struct Inflation {
    limit: usize,
    inflated: usize,
    /// Capacity of the inflated buffers, all batches together: the memory they hold.
    used: usize,
    memory: Option<(Budget, Duration)>,
    reserved: bool,
    /// Budget held by the inflated records, until the request is answered.
    pub held: Held,
    /// Why inflating stopped, when it did (the codec's own error hides it).
    stopped: Option<BatchError>,
}

impl Inflation {
    /// At most `limit` inflated bytes, reserved from `memory` (waiting at most the given
    /// time for room) when there is one.
    pub fn new(limit: usize, memory: Option<(Budget, Duration)>) -> Inflation {
        Inflation {
            limit,
            inflated: 0,
            used: 0,
            memory,
            reserved: false,
            held: Held::default(),
            stopped: None,
        }
    }

    /// Reserves the request's limit and a zstd window, once.
    fn reserve(&mut self) -> anyhow::Result<()> {
        if self.reserved {
            return Ok(());
        }
        if let Some((budget, wait)) = &self.memory {
            let wanted = self.limit + (1 << ZSTD_WINDOW_LOG_MAX);
            if let Err(e) = budget.take_blocking(&mut self.held, wanted, *wait) {
                let message = e.to_string();
                self.stopped = Some(BatchError::OverBudget(e));
                anyhow::bail!(message);
            }
        }
        self.reserved = true;
        Ok(())
    }

    /// Accounts `len` more inflated bytes, held in `grow` more bytes of capacity.
    fn charge(&mut self, len: usize, grow: usize) -> anyhow::Result<()> {
        self.inflated = self.inflated.saturating_add(len);
        self.used = self.used.saturating_add(grow);
        if self.inflated > self.limit || self.used > self.limit.saturating_mul(2) {
            self.stopped = Some(BatchError::TooLarge { limit: self.limit });
            anyhow::bail!("records inflate to more than {} bytes", self.limit);
        }
        Ok(())
    }

    /// Capacity of the inflated buffers so far, all batches together.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Gives back the reservation's unused part: the inflated records keep what they
    /// hold until the request is answered.
    pub fn release_unused(&mut self) {
        self.held.shrink_to(self.used);
    }
}

/// Decodes every batch of a Produce partition's `records`. Control batches (transaction
/// markers) carry no data and are skipped. `now_ms` stands in for a missing timestamp.
/// Call from a blocking thread: inflating may wait for room in the memory budget.
pub fn decode_batches(
    mut bytes: Bytes,
    inflation: &mut Inflation,
    now_ms: u64,
) -> Result<Vec<Batch>, BatchError> {
    let mut out = Vec::new();
    let mut index = 0;
    let shared = RefCell::new(inflation);
    while bytes.has_remaining() {
        let invalid = |reason: String| BatchError::Invalid { index, reason };
        if bytes.len() < BATCH_HEADER {
            return Err(invalid(format!(
                "{} bytes left, a batch header needs {BATCH_HEADER}",
                bytes.len()
            )));
        }
        let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(BATCH_PREFIX))
            .filter(|t| *t >= BATCH_HEADER && *t <= bytes.len())
            .ok_or_else(|| {
                invalid(format!(
                    "batch length {length} does not fit the {} bytes sent",
                    bytes.len()
                ))
            })?;
        let magic = bytes[16];
        if magic != 2 {
            return Err(invalid(format!(
                "message format v{magic} is not supported (v2 record batches only)"
            )));
        }
        let count_bytes = &bytes[RECORD_COUNT_AT..RECORD_COUNT_AT + 4];
        let count = i32::from_be_bytes([
            count_bytes[0],
            count_bytes[1],
            count_bytes[2],
            count_bytes[3],
        ]);
        let count = usize::try_from(count)
            .map_err(|_| invalid(format!("negative record count {count}")))?;
        let mut one = bytes.split_to(total);
        let compressed = one[22] & 0x07 != 0;
        if !compressed && count.saturating_mul(MIN_RECORD_BYTES) > total - BATCH_HEADER {
            return Err(invalid(format!(
                "{count} records cannot fit in {} bytes",
                total - BATCH_HEADER
            )));
        }
        let inflate = |data: &mut Bytes, c: Compression| -> anyhow::Result<Bytes> {
            let mut budget = shared.borrow_mut();
            let plain = inflate(data, c, &mut budget)?;
            if count.saturating_mul(MIN_RECORD_BYTES) > plain.len() {
                anyhow::bail!(
                    "{count} records cannot fit in {} inflated bytes",
                    plain.len()
                );
            }
            Ok(plain)
        };
        let decoded = RecordBatchDecoder::decode_with_custom_compression(&mut one, Some(inflate));
        let set = match decoded {
            Ok(set) => set,
            Err(e) => {
                return Err(shared
                    .borrow_mut()
                    .stopped
                    .take()
                    .unwrap_or_else(|| invalid(format!("{e:#}"))))
            }
        };
        let Some(first) = set.records.first() else {
            index += 1;
            continue;
        };
        let (producer_id, producer_epoch, control) =
            (first.producer_id, first.producer_epoch, first.control);
        let base_sequence = first.sequence;
        if !control {
            out.push(Batch {
                records: set
                    .records
                    .into_iter()
                    .map(|r| to_record(r, now_ms))
                    .collect(),
                producer_id,
                producer_epoch,
                base_sequence,
                compression: set.compression,
            });
        }
        index += 1;
    }
    Ok(out)
}

fn to_record(r: KafkaRecord, now_ms: u64) -> Record {
    Record {
        key: r.key.map(|k| k.to_vec()),
        value: r.value.map(|v| v.to_vec()).unwrap_or_default(),
        timestamp_ms: u64::try_from(r.timestamp).unwrap_or(now_ms),
        headers: r
            .headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.map(|v| v.to_vec()).unwrap_or_default()))
            .collect(),
    }
}

/// Inflates a batch's records, charging `inflation` as they come out.
fn inflate(
    data: &mut Bytes,
    compression: Compression,
    inflation: &mut Inflation,
) -> anyhow::Result<Bytes> {
    let input = data.copy_to_bytes(data.remaining());
    if compression != Compression::None {
        inflation.reserve()?;
    }
    let out = match compression {
        Compression::None => return Ok(input),
        Compression::Gzip => drain(flate2::read::GzDecoder::new(input.reader()), inflation)?,
        Compression::Zstd => {
            // The decoder's window is memory too: bounded (levels up to 19 stay within
            // it), and part of the request's reservation.
            let mut decoder = zstd::stream::read::Decoder::new(input.reader())?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            drain(decoder, inflation)?
        }
        Compression::Lz4 => drain(lz4::Decoder::new(input.reader())?, inflation)?,
        Compression::Snappy => inflate_snappy(&input, inflation)?,
    };
    Ok(Bytes::from(out))
}

/// Reads a decoder to its end, a chunk at a time; capacity grows by doubling and every
/// byte of it is charged before it is allocated.
fn drain(mut decoder: impl Read, inflation: &mut Inflation) -> anyhow::Result<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; INFLATE_CHUNK];
    loop {
        let n = decoder.read(&mut chunk)?;
        if n == 0 {
            return Ok(out);
        }
        append(&mut out, &chunk[..n], inflation)?;
    }
}

fn append(out: &mut Vec<u8>, more: &[u8], inflation: &mut Inflation) -> anyhow::Result<()> {
    let need = out.len() + more.len();
    let grow = if need > out.capacity() {
        (out.capacity() * 2).max(need) - out.capacity()
    } else {
        0
    };
    inflation.charge(more.len(), grow)?;
    out.reserve_exact(grow);
    out.extend_from_slice(more);
    Ok(())
}

/// Snappy as Kafka producers send it: the xerial framing (a magic header, then
/// length-prefixed blocks) or, without the header, one raw block. Each block's declared
/// size is charged before it is inflated.
fn inflate_snappy(input: &[u8], inflation: &mut Inflation) -> anyhow::Result<Vec<u8>> {
    const MAGIC: &[u8] = b"\x82SNAPPY\x00";
    let mut out = Vec::new();
    let block = |raw: &[u8], out: &mut Vec<u8>, inflation: &mut Inflation| -> anyhow::Result<()> {
        let size = snap::raw::decompress_len(raw)?;
        inflation.charge(size, size)?;
        let start = out.len();
        out.reserve_exact(size);
        out.resize(start + size, 0);
        let n = snap::raw::Decoder::new().decompress(raw, &mut out[start..])?;
        out.truncate(start + n);
        Ok(())
    };
    if !input.starts_with(MAGIC) {
        block(input, &mut out, inflation)?;
        return Ok(out);
    }
    let mut rest = input.get(16..).unwrap_or_default();
    while !rest.is_empty() {
        let len_bytes = rest
            .get(..4)
            .ok_or_else(|| anyhow::anyhow!("snappy block length cut short"))?;
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let raw = rest
            .get(4..4 + len)
            .ok_or_else(|| anyhow::anyhow!("snappy block of {len} bytes cut short"))?;
        block(raw, &mut out, inflation)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Stored records the wire format's encoder refused.
#[derive(Debug, thiserror::Error)]
#[error("encoding a record batch: {0:#}")]
pub struct EncodeRecordsError(anyhow::Error);

/// Encodes stored records (consecutive offsets) as one uncompressed v2 batch.
pub fn encode_records(records: &[StoredRecord]) -> Result<Bytes, EncodeRecordsError> {
    let first = records.first().map_or(0, |r| r.offset);
    let kafka: Vec<KafkaRecord> = records
        .iter()
        .map(|r| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(r.offset).unwrap_or(i64::MAX),
            // The encoder keeps records in one batch while `offset - sequence` stays
            // the same; counting from -1 also writes "no sequence" (-1) as the batch's
            // base sequence.
            sequence: (r.offset - first) as i32 - 1,
            timestamp: i64::try_from(r.record.timestamp_ms).unwrap_or(i64::MAX),
            key: r.record.key.as_ref().map(|k| Bytes::copy_from_slice(k)),
            value: Some(Bytes::copy_from_slice(&r.record.value)),
            headers: r
                .record
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        StrBytes::from_string(k.clone()),
                        Some(Bytes::copy_from_slice(v)),
                    )
                })
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &kafka,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(EncodeRecordsError)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<KafkaRecord> {
        (0..n)
            .map(|i| KafkaRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; 100])),
                headers: Default::default(),
            })
            .collect()
    }

    fn encode(recs: &[KafkaRecord], compression: Compression) -> Bytes {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            recs,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.freeze()
    }

    #[test]
    fn every_codec_decodes_to_the_same_records() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batches = decode_batches(
                encode(&records(50), c),
                &mut Inflation::new(1 << 20, None),
                0,
            )
            .unwrap();
            assert_eq!(batches.len(), 1, "{c:?}");
            let b = &batches[0];
            assert_eq!(b.compression, c);
            assert_eq!(b.records.len(), 50);
            assert_eq!(b.records[3].key.as_deref(), Some(&b"k3"[..]));
            assert_eq!(b.records[3].timestamp_ms, 1_700_000_000_003);
            assert_eq!((b.producer_id, b.base_sequence), (7, 0));
        }
    }

    #[test]
    fn inflating_past_the_limit_is_refused() {
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let err = decode_batches(encode(&records(200), c), &mut Inflation::new(4096, None), 0)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "the records of this request inflate to more than 4096 bytes (kafka.max_inflated_bytes)",
                "{c:?}"
            );
        }
    }

    /// The limit is the request's: batches that each fit are refused once their sum does
    /// not, and the memory they hold is taken from the budget.
    #[test]
    fn the_limit_counts_every_batch_of_the_request() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let budget = Budget::new(64 << 20);
        let one = encode(&records(50), Compression::Zstd);
        let inflated = {
            let mut i = Inflation::new(1 << 20, None);
            decode_batches(one.clone(), &mut i, 0).unwrap();
            i.inflated
        };
        let b = budget.clone();
        let (result, held) = runtime
            .block_on(runtime.spawn_blocking(move || {
                let mut i = Inflation::new(inflated * 3 + inflated / 2, Some((b, Duration::ZERO)));
                let mut all = BytesMut::new();
                for _ in 0..4 {
                    all.extend_from_slice(&one);
                }
                let r = decode_batches(all.freeze(), &mut i, 0).map(|b| b.len());
                let reserved = i.held.bytes();
                i.release_unused();
                assert!(i.held.bytes() < reserved, "the unused part is given back");
                (r, reserved)
            }))
            .unwrap();
        assert!(
            matches!(result, Err(BatchError::TooLarge { .. })),
            "{result:?}"
        );
        assert!(held >= inflated * 3, "{held} bytes held for {inflated} x 3");
        assert!(
            held <= (inflated * 3 + inflated / 2) + (1 << ZSTD_WINDOW_LOG_MAX),
            "{held}"
        );
        assert_eq!(budget.in_use(), 0, "given back with the Inflation");
    }

    #[test]
    fn a_lying_record_count_or_length_is_an_error() {
        let good = encode(&records(3), Compression::None);
        let mut lying = good.to_vec();
        lying[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        let err = decode_batches(Bytes::from(lying), &mut Inflation::new(1 << 20, None), 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("record batch 0: 2147483647 records cannot fit in "),
            "{err}"
        );
        let mut long = good.to_vec();
        long[8..12].copy_from_slice(&1_000_000i32.to_be_bytes());
        let err = decode_batches(Bytes::from(long), &mut Inflation::new(1 << 20, None), 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("record batch 0: batch length 1000000 does not fit the "),
            "{err}"
        );
        let mut flipped = good.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        let err = decode_batches(Bytes::from(flipped), &mut Inflation::new(1 << 20, None), 0)
            .unwrap_err();
        assert!(err.to_string().contains("Cyclic redundancy"), "{err}");
    }

    #[test]
    fn stored_records_round_trip_through_a_fetch_batch() {
        let stored: Vec<StoredRecord> = (40..45)
            .map(|o| StoredRecord {
                offset: o,
                record: Record {
                    key: Some(format!("k{o}").into_bytes()),
                    value: vec![1, 2, 3],
                    timestamp_ms: 5,
                    headers: vec![("h".into(), b"x".to_vec())],
                },
            })
            .collect();
        let mut bytes = encode_records(&stored).unwrap();
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        assert!(bytes.is_empty(), "one batch for consecutive records");
        let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![40, 41, 42, 43, 44]);
        assert_eq!(set.records[1].key.as_deref(), Some(&b"k41"[..]));
    }

    proptest::proptest! {
        /// Whatever the bytes, decoding returns (an error or batches) and never panics.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = decode_batches(Bytes::from(bytes), &mut Inflation::new(1 << 16, None), 0);
        }

        /// A valid batch with any one byte changed is refused or decoded, never a panic.
        #[test]
        fn a_damaged_batch_never_panics(at in 0usize..400, to in proptest::num::u8::ANY) {
            let mut b = encode(&records(3), Compression::None).to_vec();
            let i = at % b.len();
            b[i] = to;
            let _ = decode_batches(Bytes::from(b), &mut Inflation::new(1 << 16, None), 0);
        }
    }
}
