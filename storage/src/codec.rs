//! The on-disk format of every stored value: a versioned bincode envelope.
//!
//! `{ version: u8, expires_at_ms: Option<u64>, payload }`, bincode 2 (serde, standard
//! config). bincode writes a `u8` as one raw byte, so the version is always the first byte
//! of a value: a later build can dispatch on it before decoding anything else, and the
//! format can change without migrating old data first. Everything that touches bincode
//! is in this file.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use crate::StorageError;

/// The format this build writes and reads.
const FORMAT_VERSION: u8 = 1;

/// The largest encoded value we write or decode. Decoding garbage may read a huge length
/// prefix; bincode's limit turns that into an error instead of a giant allocation.
pub(crate) const MAX_ENCODED_BYTES: usize = 64 * 1024 * 1024;

type Config = Configuration<LittleEndian, Varint, Limit<MAX_ENCODED_BYTES>>;

const fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_ENCODED_BYTES>()
}

#[derive(Serialize)]
struct EnvelopeRef<'a, T: ?Sized> {
    version: u8,
    expires_at_ms: Option<u64>,
    payload: &'a T,
}

#[derive(Deserialize)]
struct Envelope<T> {
    version: u8,
    expires_at_ms: Option<u64>,
    payload: T,
}

/// The first two fields of an envelope, for callers that only need the expiry.
#[derive(Deserialize)]
struct Header {
    version: u8,
    expires_at_ms: Option<u64>,
}

/// A decoded envelope.
#[derive(Debug)]
pub(crate) struct Decoded<T> {
    pub expires_at_ms: Option<u64>,
    pub payload: T,
}

/// Encodes `payload` in an envelope. `place` names the value for the error message and
/// is only evaluated on error (here and in the decoders).
pub(crate) fn encode<T: Serialize + ?Sized>(
    expires_at_ms: Option<u64>,
    payload: &T,
    place: impl Fn() -> String,
) -> Result<Vec<u8>, StorageError> {
    encode_sized(expires_at_ms, payload, 0, place)
}

/// [`encode`] into a buffer of `capacity` bytes to start with: a caller that knows about
/// how big the encoding is (a frame of records: their bytes) saves the buffer's doublings
/// and the copies they make (≈2% of the collector's CPU at 10,000 devices, by `perf`).
pub(crate) fn encode_sized<T: Serialize + ?Sized>(
    expires_at_ms: Option<u64>,
    payload: &T,
    capacity: usize,
    place: impl Fn() -> String,
) -> Result<Vec<u8>, StorageError> {
    let envelope = EnvelopeRef {
        version: FORMAT_VERSION,
        expires_at_ms,
        payload,
    };
    let mut bytes = Vec::with_capacity(capacity.min(MAX_ENCODED_BYTES));
    bincode::serde::encode_into_std_write(&envelope, &mut bytes, config()).map_err(|e| {
        StorageError::Encode {
            place: place(),
            reason: e.to_string(),
        }
    })?;
    within_limit(bytes.len(), place)?;
    Ok(bytes)
}

/// Refuses an encoding of `len` bytes over [`MAX_ENCODED_BYTES`].
fn within_limit(len: usize, place: impl Fn() -> String) -> Result<(), StorageError> {
    if len > MAX_ENCODED_BYTES {
        return Err(StorageError::Encode {
            place: place(),
            reason: format!(
                "encoded value is {len} bytes, more than the limit of {MAX_ENCODED_BYTES}"
            ),
        });
    }
    Ok(())
}

/// Values at least this long are written from where they are (see [`Parts`]), not copied.
const BORROW_AT: usize = 256;

/// An envelope's bytes, as [`encode`] makes them, in parts: the small fields encoded into
/// a buffer of its own, the long byte strings left where they are. Written with one
/// vectored write, a frame of records then costs no copy of its values into a buffer
/// (at 200 devices that copy, into fresh pages, was ≈6% of the collector's CPU, by
/// `perf`). Writes bincode's standard encoding by hand (its varints, `Option`s and
/// length-prefixed bytes): the tests hold it to bincode's own output.
pub(crate) struct Parts<'a> {
    own: Vec<u8>,
    /// Each long value, after the first `.0` bytes of `own`.
    borrowed: Vec<(usize, &'a [u8])>,
    /// Bytes of the borrowed values.
    borrowed_len: usize,
}

impl<'a> Parts<'a> {
    /// The head of an envelope (format version, expiry); `capacity`: about the bytes the
    /// small fields will take.
    pub(crate) fn envelope(expires_at_ms: Option<u64>, capacity: usize) -> Parts<'a> {
        let mut parts = Parts {
            own: Vec::with_capacity(capacity.min(MAX_ENCODED_BYTES)),
            borrowed: Vec::new(),
            borrowed_len: 0,
        };
        parts.own.push(FORMAT_VERSION);
        match expires_at_ms {
            None => parts.own.push(0),
            Some(at) => {
                parts.own.push(1);
                parts.varint(at);
            }
        }
        parts
    }

    /// An unsigned integer, a length or an enum's tag, as bincode's varint.
    pub(crate) fn varint(&mut self, v: u64) {
        let own = &mut self.own;
        if v <= 250 {
            own.push(v as u8);
        } else if let Ok(v) = u16::try_from(v) {
            own.push(251);
            own.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            own.push(252);
            own.extend_from_slice(&v.to_le_bytes());
        } else {
            own.push(253);
            own.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A byte string (or a `str`'s bytes): its length, then the bytes.
    pub(crate) fn bytes(&mut self, bytes: &'a [u8]) {
        self.varint(bytes.len() as u64);
        if bytes.len() >= BORROW_AT {
            self.borrowed.push((self.own.len(), bytes));
            self.borrowed_len += bytes.len();
        } else {
            self.own.extend_from_slice(bytes);
        }
    }

    /// `None` of an `Option`; `Some` is [`Parts::some`] and then the value.
    pub(crate) fn none(&mut self) {
        self.own.push(0);
    }

    pub(crate) fn some(&mut self) {
        self.own.push(1);
    }

    /// The encoding's length.
    pub(crate) fn len(&self) -> usize {
        self.borrowed_len + self.own.len()
    }

    /// The encoding, in order, as slices to write one after another; fails as [`encode`]
    /// does when the encoding is over the limit.
    pub(crate) fn slices(&self, place: impl Fn() -> String) -> Result<Vec<&[u8]>, StorageError> {
        within_limit(self.len(), place)?;
        let mut out = Vec::with_capacity(2 * self.borrowed.len() + 1);
        let mut at = 0;
        for &(until, value) in &self.borrowed {
            if until > at {
                out.push(&self.own[at..until]);
            }
            out.push(value);
            at = until;
        }
        if at < self.own.len() {
            out.push(&self.own[at..]);
        }
        Ok(out)
    }
}

/// Decodes a whole envelope; trailing bytes are corruption too.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    place: impl Fn() -> String,
) -> Result<Decoded<T>, StorageError> {
    check_version(bytes, &place)?;
    let (envelope, used): (Envelope<T>, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| corrupt(place(), e.to_string()))?;
    if used != bytes.len() {
        return Err(corrupt(
            place(),
            format!("{} trailing bytes after the value", bytes.len() - used),
        ));
    }
    debug_assert_eq!(envelope.version, FORMAT_VERSION);
    Ok(Decoded {
        expires_at_ms: envelope.expires_at_ms,
        payload: envelope.payload,
    })
}

/// Decodes only the expiry of an envelope, without the payload.
pub(crate) fn decode_expiry(
    bytes: &[u8],
    place: impl Fn() -> String,
) -> Result<Option<u64>, StorageError> {
    check_version(bytes, &place)?;
    let (header, _): (Header, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| corrupt(place(), e.to_string()))?;
    debug_assert_eq!(header.version, FORMAT_VERSION);
    Ok(header.expires_at_ms)
}

fn check_version(bytes: &[u8], place: impl Fn() -> String) -> Result<(), StorageError> {
    match bytes.first() {
        Some(&FORMAT_VERSION) => Ok(()),
        Some(other) => Err(corrupt(
            place(),
            format!("unknown format version {other} (this build reads version {FORMAT_VERSION})"),
        )),
        None => Err(corrupt(
            place(),
            "empty value (no format version byte)".into(),
        )),
    }
}

fn corrupt(place: String, reason: String) -> StorageError {
    StorageError::Corrupt { place, reason }
}

/// A byte slice serialized as bytes (length + raw bytes), not as a sequence of `u8`s.
pub(crate) struct BytesRef<'a>(pub &'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Owned bytes deserialized with `deserialize_bytes`: bincode hands us a borrowed slice,
/// so a lying length prefix fails on the short input instead of allocating first.
#[derive(Debug)]
pub(crate) struct ByteBuf(pub Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(ByteBufVisitor).map(ByteBuf)
    }
}

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// `#[serde(with = "codec::bytes")]` for `Vec<u8>` fields.
pub(crate) mod bytes {
    use super::{ByteBuf, BytesRef};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        BytesRef(v).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        ByteBuf::deserialize(d).map(|b| b.0)
    }
}

/// `#[serde(with = "codec::opt_bytes")]` for `Option<Vec<u8>>` fields.
pub(crate) mod opt_bytes {
    use super::{ByteBuf, BytesRef};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().map(BytesRef).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<ByteBuf>::deserialize(d).map(|o| o.map(|b| b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> String {
        "test value".into()
    }

    #[test]
    fn round_trips_with_and_without_expiry() {
        for expiry in [None, Some(0), Some(u64::MAX)] {
            let raw = encode(expiry, &BytesRef(b"payload"), place).unwrap();
            assert_eq!(raw[0], FORMAT_VERSION);
            let decoded = decode::<ByteBuf>(&raw, place).unwrap();
            assert_eq!(decoded.expires_at_ms, expiry);
            assert_eq!(decoded.payload.0, b"payload");
            assert_eq!(decode_expiry(&raw, place).unwrap(), expiry);
        }
    }

    fn corrupt_reason(raw: &[u8]) -> String {
        match decode::<ByteBuf>(raw, place) {
            Err(StorageError::Corrupt { place, reason }) => {
                assert_eq!(place, "test value");
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn rejects_unknown_versions_empty_truncated_and_trailing_bytes() {
        let raw = encode(Some(5), &BytesRef(b"payload"), place).unwrap();
        let mut future = raw.clone();
        future[0] = 2;
        assert!(corrupt_reason(&future).contains("unknown format version 2"));
        assert!(corrupt_reason(&[]).contains("empty"));
        corrupt_reason(&raw[..raw.len() - 1]);
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(corrupt_reason(&trailing).contains("trailing"));
    }

    /// Parts over the limit are refused as a whole encoding over it is, in its words.
    #[test]
    fn parts_over_the_limit_are_refused() {
        let big = vec![0u8; MAX_ENCODED_BYTES];
        let mut parts = Parts::envelope(None, 0);
        parts.bytes(&big);
        let Err(StorageError::Encode { place: at, reason }) = parts.slices(place) else {
            panic!("expected an Encode error");
        };
        assert_eq!(at, "test value");
        // Version and no expiry (a byte each), the length as a u32 varint (5 bytes).
        let len = MAX_ENCODED_BYTES + 2 + 5;
        assert_eq!(
            reason,
            format!("encoded value is {len} bytes, more than the limit of {MAX_ENCODED_BYTES}")
        );
        let mut fits = Parts::envelope(Some(7), 0);
        fits.bytes(&big[..1000]);
        let joined = fits.slices(place).unwrap().concat();
        assert_eq!(
            joined,
            encode(Some(7), &BytesRef(&big[..1000]), place).unwrap()
        );
    }

    #[test]
    fn a_lying_length_prefix_is_an_error_not_an_allocation() {
        // version 1, no expiry, then a varint length of u64::MAX and a few bytes.
        let mut raw = vec![FORMAT_VERSION, 0, 0xFF];
        raw.extend_from_slice(&u64::MAX.to_le_bytes());
        raw.extend_from_slice(b"abc");
        corrupt_reason(&raw);
        let chunk = decode::<Vec<crate::Record>>(&raw, place);
        assert!(matches!(chunk, Err(StorageError::Corrupt { .. })));
    }
}
