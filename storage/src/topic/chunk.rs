//! Cutting an append into frames, and the frame payload format (the records in the
//! versioned envelope of `codec`).

use super::layout::{MAX_FRAME_BYTES, MAX_FRAME_RECORDS, RECORD_OVERHEAD};
use crate::codec;
use crate::{Record, StorageError};

/// The largest record accepted. Well under the codec's limit, so that a frame holding one
/// such record (plus framing) always encodes.
pub(crate) const MAX_RECORD_BYTES: usize = 32 * 1024 * 1024;

/// Splits `records` into consecutive runs of at most [`MAX_FRAME_RECORDS`] records and
/// [`MAX_FRAME_BYTES`] bytes (by [`Record::size_bytes`] plus [`RECORD_OVERHEAD`]); a
/// record bigger than that alone makes a chunk.
pub(crate) fn split(records: &[Record]) -> Vec<&[Record]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, record) in records.iter().enumerate() {
        let size = record.size_bytes().saturating_add(RECORD_OVERHEAD);
        if i > start && (i - start == MAX_FRAME_RECORDS || bytes + size > MAX_FRAME_BYTES) {
            chunks.push(&records[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    chunks
}

/// Rejects an append holding a record over [`MAX_RECORD_BYTES`], before anything is written.
pub(crate) fn check_sizes(
    records: &[Record],
    place: impl Fn() -> String,
) -> Result<(), StorageError> {
    match records
        .iter()
        .enumerate()
        .find(|(_, r)| r.size_bytes() > MAX_RECORD_BYTES)
    {
        Some((i, r)) => Err(StorageError::Encode {
            place: place(),
            reason: format!(
                "record {i} of the append is {} bytes, more than the limit of {MAX_RECORD_BYTES}",
                r.size_bytes()
            ),
        }),
        None => Ok(()),
    }
}

/// A frame's payload in one buffer: what [`encode_parts`] is held to.
#[cfg(test)]
pub(crate) fn encode(
    records: &[Record],
    place: impl Fn() -> String,
) -> Result<Vec<u8>, StorageError> {
    // A record's bytes, plus its lengths and timestamp as varints (at most 10 bytes each,
    // four of them), plus the envelope.
    let size = records
        .iter()
        .map(|r| r.size_bytes() + 4 * 10 + r.headers.len() * 20)
        .sum::<usize>()
        + 32;
    codec::encode_sized(None, records, size, place)
}

/// [`encode`]'s bytes in parts, the long values written from the records themselves
/// (see [`codec::Parts`]).
pub(crate) fn encode_parts(records: &[Record]) -> codec::Parts<'_> {
    // The small fields: lengths and timestamps (at most 9 bytes each), short keys and
    // header names, and the frame's head.
    let small = records
        .iter()
        .map(|r| 32 + r.key.as_ref().map_or(0, Vec::len) + r.headers.len() * 32)
        .sum::<usize>()
        + 16;
    let mut parts = codec::Parts::envelope(None, small);
    parts.varint(records.len() as u64);
    for r in records {
        match &r.key {
            None => parts.none(),
            Some(key) => {
                parts.some();
                parts.bytes(key);
            }
        }
        parts.bytes(&r.value);
        parts.varint(r.timestamp_ms);
        parts.varint(r.headers.len() as u64);
        for (name, value) in &r.headers {
            parts.bytes(name.as_bytes());
            parts.bytes(value);
        }
    }
    parts
}

pub(crate) fn decode(raw: &[u8], place: impl Fn() -> String) -> Result<Vec<Record>, StorageError> {
    Ok(codec::decode::<Vec<Record>>(raw, place)?.payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(size: usize) -> Record {
        Record {
            key: None,
            value: vec![7; size],
            timestamp_ms: 1,
            headers: vec![],
        }
    }

    #[test]
    fn splits_by_count_and_by_bytes() {
        let many: Vec<Record> = (0..10_000).map(|_| record(0)).collect();
        let lens: Vec<usize> = split(&many).iter().map(|c| c.len()).collect();
        // 16 bytes each: by bytes before by count.
        let per = MAX_FRAME_BYTES / RECORD_OVERHEAD;
        assert_eq!(lens[0], per.min(MAX_FRAME_RECORDS));
        assert_eq!(lens.iter().sum::<usize>(), 10_000);

        let third = MAX_FRAME_BYTES / 3 - RECORD_OVERHEAD;
        let big: Vec<Record> = (0..5).map(|_| record(third)).collect();
        let lens: Vec<usize> = split(&big).iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![3, 2]);
        let over: Vec<Record> = (0..5).map(|_| record(third + 1)).collect();
        let lens: Vec<usize> = split(&over).iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![2, 2, 1]);

        let huge = vec![record(2 * MAX_FRAME_BYTES), record(1)];
        let lens: Vec<usize> = split(&huge).iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![1, 1]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn a_full_chunk_encodes_within_its_budget() {
        // The overhead estimate holds for records with keys and a header.
        let records: Vec<Record> = (0..1000)
            .map(|i| Record {
                key: Some(vec![1; 10]),
                value: vec![2; 50],
                timestamp_ms: u64::MAX - i,
                headers: vec![("h".into(), vec![3])],
            })
            .collect();
        for piece in split(&records) {
            let bytes = encode(piece, String::new).unwrap().len();
            assert!(bytes <= MAX_FRAME_BYTES + 64, "{bytes}");
        }
    }

    fn concatenated(parts: &codec::Parts<'_>) -> Vec<u8> {
        let slices = parts.slices(String::new).unwrap();
        let joined = slices.concat();
        assert_eq!(joined.len(), parts.len());
        joined
    }

    /// Lengths either side of bincode's varint steps (250/251, 65535/65536) and of the
    /// borrowing threshold (256).
    fn length() -> impl Strategy<Value = usize> {
        prop_oneof![
            0usize..300,
            proptest::sample::select(vec![250, 251, 255, 256, 257, 65_535, 65_536, 70_000]),
        ]
    }

    fn any_record() -> impl Strategy<Value = Record> {
        let timestamp = prop_oneof![
            Just(0u64),
            Just(250),
            Just(251),
            Just(65_536),
            Just(u64::from(u32::MAX) + 1),
            Just(u64::MAX),
            any::<u64>()
        ];
        (
            proptest::option::of(length()),
            length(),
            any::<u8>(),
            timestamp,
            proptest::collection::vec(("[a-z]{0,3}", length()), 0..3),
        )
            .prop_map(|(key, value, byte, timestamp_ms, headers)| Record {
                key: key.map(|n| vec![byte ^ 0x55; n]),
                value: (0..value).map(|i| byte.wrapping_add(i as u8)).collect(),
                timestamp_ms,
                headers: headers
                    .into_iter()
                    .map(|(name, n)| (name, vec![byte; n]))
                    .collect(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The parts written one after another are bincode's bytes, exactly: frames
        /// written either way read back alike, by this build and by the ones before it.
        #[test]
        fn parts_are_the_encoding(records in proptest::collection::vec(any_record(), 0..6)) {
            let whole = encode(&records, String::new).unwrap();
            prop_assert_eq!(concatenated(&encode_parts(&records)), whole);
        }
    }

    #[test]
    fn long_values_are_borrowed_short_ones_copied() {
        let records = vec![record(255), record(256), record(4000)];
        let parts = encode_parts(&records);
        let slices = parts.slices(String::new).unwrap();
        // Head, the short record and the next length; each long value from its record;
        // the small fields between and after them.
        assert_eq!(
            slices.len(),
            5,
            "{:?}",
            slices.iter().map(|s| s.len()).collect::<Vec<_>>()
        );
        assert!(std::ptr::eq(slices[1], records[1].value.as_slice()));
        assert!(std::ptr::eq(slices[3], records[2].value.as_slice()));
        assert_eq!(concatenated(&parts), encode(&records, String::new).unwrap());
    }

    #[test]
    fn chunks_round_trip() {
        let records = vec![
            Record {
                key: Some(b"k".to_vec()),
                value: b"v".to_vec(),
                timestamp_ms: 42,
                headers: vec![("h".into(), b"x".to_vec())],
            },
            record(3),
        ];
        let raw = encode(&records, String::new).unwrap();
        assert_eq!(decode(&raw, String::new).unwrap(), records);
    }
}
