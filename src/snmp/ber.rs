//! The few BER encodings SNMP needs, written by us.
//!
//! Why not snmp2's writer: in snmp2 0.5.3 `pdu::Buf` and `pdu::build` are
//! `pub(crate)`, so an agent outside the crate cannot encode with them. We still
//! decode messages with `snmp2::Pdu::from_bytes` and take the tag constants from
//! `snmp2::snmp` / `snmp2::asn1`; this module only writes bytes.
//!
//! Two styles, for two jobs:
//! - forward `push_*` functions append a complete TLV to a `Vec<u8>`: varbinds are
//!   written front to back so an agent can stop when a response gets too big;
//! - [`BackWriter`] fills a fixed slice from its end, for the message headers
//!   whose lengths are only known once the varbinds are written (the same trick
//!   snmp2's `Buf` uses for whole messages).
//!
//! OIDs are also decoded here, so the client and the agent read OIDs with one
//! piece of code.

use snmp2::{asn1, snmp};

use super::SnmpValue;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    #[error(
        "OID {0} cannot be encoded: the first component must be 0, 1 or 2, and the second \
         below 40 unless the first is 2"
    )]
    UnencodableOid(String),
    #[error("malformed OID encoding: {0}")]
    MalformedOid(&'static str),
    #[error("no room left in the {0}-byte header area")]
    NoRoom(usize),
}

pub const TAG_INTEGER: u8 = asn1::TYPE_INTEGER;
pub const TAG_OCTET_STRING: u8 = asn1::TYPE_OCTETSTRING;
pub const TAG_NULL: u8 = asn1::TYPE_NULL;
pub const TAG_OID: u8 = asn1::TYPE_OBJECTIDENTIFIER;
pub const TAG_SEQUENCE: u8 = asn1::TYPE_SEQUENCE;

/// Appends the definite-form length `len`.
pub fn push_length(out: &mut Vec<u8>, len: usize) {
    let mut scratch = [0u8; 9];
    let n = length_bytes(len, &mut scratch);
    out.extend_from_slice(&scratch[9 - n..]);
}

/// Writes the encoded length into the end of `scratch`, returns how many bytes.
fn length_bytes(len: usize, scratch: &mut [u8; 9]) -> usize {
    if len < 0x80 {
        // Fits: checked just above.
        scratch[8] = len as u8;
        return 1;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let count = 8 - skip;
    scratch[9 - count..].copy_from_slice(&bytes[skip..]);
    // `count` is at most 8.
    scratch[8 - count] = 0x80 | count as u8;
    count + 1
}

/// Number of bytes a TLV with `content_len` bytes of content takes.
pub fn tlv_len(content_len: usize) -> usize {
    let mut scratch = [0u8; 9];
    1 + length_bytes(content_len, &mut scratch) + content_len
}

/// Minimal two's-complement content bytes of `n`, as (buffer, start offset).
fn signed_content(n: i64) -> ([u8; 8], usize) {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let redundant = (bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    (bytes, start)
}

/// Content bytes of an unsigned number: minimal, with a leading zero when the
/// top bit would otherwise read as a sign (Counter32 4294967295 -> 00 ff ff ff ff).
fn unsigned_content(n: u64) -> ([u8; 9], usize) {
    let mut bytes = [0u8; 9];
    bytes[1..].copy_from_slice(&n.to_be_bytes());
    let mut start = 0;
    while start < 8 && bytes[start] == 0 && bytes[start + 1] & 0x80 == 0 {
        start += 1;
    }
    (bytes, start)
}

pub fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_length(out, content.len());
    out.extend_from_slice(content);
}

pub fn push_signed(out: &mut Vec<u8>, tag: u8, n: i64) {
    let (bytes, start) = signed_content(n);
    push_tlv(out, tag, &bytes[start..]);
}

pub fn push_unsigned(out: &mut Vec<u8>, tag: u8, n: u64) {
    let (bytes, start) = unsigned_content(n);
    push_tlv(out, tag, &bytes[start..]);
}

/// Wraps everything written to `out` since `start` in a TLV with `tag`.
/// Shifts the content by the header size, so keep it for small items.
pub fn wrap_from(out: &mut Vec<u8>, start: usize, tag: u8) {
    let content_len = out.len() - start;
    let mut scratch = [0u8; 9];
    let n = length_bytes(content_len, &mut scratch);
    out.push(tag);
    out.extend_from_slice(&scratch[9 - n..]);
    out[start..].rotate_right(n + 1);
}

/// Appends the content octets of an OID (no tag, no length).
///
/// OIDs shorter than two components cannot be encoded as such; they are padded
/// with zeros (`1` is sent as `1.0`, as net-snmp does for `snmpwalk .1`). For
/// a GETNEXT/GETBULK starting point that changes nothing, since `1.0` sorts
/// right after `1` and nothing can be recorded at `1.0`'s place but `1.0`.
pub fn push_oid_content(out: &mut Vec<u8>, components: &[u32]) -> Result<(), BerError> {
    let first = components.first().copied().unwrap_or(0);
    let second = components.get(1).copied().unwrap_or(0);
    if first > 2 || (first < 2 && second >= 40) {
        return Err(BerError::UnencodableOid(super::oid::dotted(components)));
    }
    push_base128(out, u64::from(first) * 40 + u64::from(second));
    for &component in components.iter().skip(2) {
        push_base128(out, u64::from(component));
    }
    Ok(())
}

fn push_base128(out: &mut Vec<u8>, n: u64) {
    let mut groups = [0u8; 10];
    let mut count = 0;
    let mut rest = n;
    loop {
        groups[count] = (rest & 0x7f) as u8;
        count += 1;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for i in (0..count).rev() {
        let continuation = if i == 0 { 0 } else { 0x80 };
        out.push(groups[i] | continuation);
    }
}

/// Appends a complete OID TLV.
pub fn push_oid(out: &mut Vec<u8>, components: &[u32]) -> Result<(), BerError> {
    let start = out.len();
    if let Err(e) = push_oid_content(out, components) {
        out.truncate(start);
        return Err(e);
    }
    wrap_from(out, start, TAG_OID);
    Ok(())
}

/// Where decoded OID components go: a `Vec` or an [`Oid`](super::Oid)'s inline buffer.
pub trait OidSink {
    fn clear(&mut self);
    fn push(&mut self, component: u32);
}

impl OidSink for Vec<u32> {
    fn clear(&mut self) {
        Vec::clear(self)
    }
    fn push(&mut self, component: u32) {
        Vec::push(self, component)
    }
}

impl OidSink for super::oid::Components {
    fn clear(&mut self) {
        smallvec::SmallVec::clear(self)
    }
    fn push(&mut self, component: u32) {
        smallvec::SmallVec::push(self, component)
    }
}

/// Decodes OID content octets into `out` (cleared first). Rejects empty or
/// truncated encodings and components that do not fit in 32 bits.
pub fn decode_oid_content(bytes: &[u8], out: &mut impl OidSink) -> Result<(), BerError> {
    out.clear();
    if bytes.is_empty() {
        return Err(BerError::MalformedOid("empty"));
    }
    let mut acc: u64 = 0;
    let mut first = true;
    for (i, &byte) in bytes.iter().enumerate() {
        if acc > (u64::MAX >> 7) {
            return Err(BerError::MalformedOid("component too large"));
        }
        acc = (acc << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 != 0 {
            if i + 1 == bytes.len() {
                return Err(BerError::MalformedOid("last component truncated"));
            }
            continue;
        }
        if first {
            let (a, b) = match acc {
                0..40 => (0, acc),
                40..80 => (1, acc - 40),
                _ => (2, acc - 80),
            };
            out.push(a);
            out.push(u32::try_from(b).map_err(|_| BerError::MalformedOid("component too large"))?);
            first = false;
        } else {
            out.push(
                u32::try_from(acc).map_err(|_| BerError::MalformedOid("component too large"))?,
            );
        }
        acc = 0;
    }
    Ok(())
}

/// Appends the TLV of a value.
pub fn push_value(out: &mut Vec<u8>, value: &SnmpValue) -> Result<(), BerError> {
    match value {
        SnmpValue::Integer(n) => push_signed(out, TAG_INTEGER, *n),
        SnmpValue::OctetString(bytes) => push_tlv(out, TAG_OCTET_STRING, bytes),
        SnmpValue::ObjectIdentifier(oid) => push_oid(out, oid.components())?,
        SnmpValue::IpAddress(ip) => push_tlv(out, snmp::TYPE_IPADDRESS, ip),
        SnmpValue::Counter32(n) => push_unsigned(out, snmp::TYPE_COUNTER32, u64::from(*n)),
        SnmpValue::Gauge32(n) => push_unsigned(out, snmp::TYPE_GAUGE32, u64::from(*n)),
        SnmpValue::TimeTicks(n) => push_unsigned(out, snmp::TYPE_TIMETICKS, u64::from(*n)),
        SnmpValue::Counter64(n) => push_unsigned(out, snmp::TYPE_COUNTER64, *n),
        SnmpValue::Opaque(bytes) => push_tlv(out, snmp::TYPE_OPAQUE, bytes),
        SnmpValue::Null => push_tlv(out, TAG_NULL, &[]),
        SnmpValue::NoSuchObject => push_tlv(out, snmp::SNMP_NOSUCHOBJECT, &[]),
        SnmpValue::NoSuchInstance => push_tlv(out, snmp::SNMP_NOSUCHINSTANCE, &[]),
        SnmpValue::EndOfMibView => push_tlv(out, snmp::SNMP_ENDOFMIBVIEW, &[]),
    }
    Ok(())
}

/// Appends a varbind, `SEQUENCE { name OID, value }`. On error nothing is written.
pub fn push_varbind(
    out: &mut Vec<u8>,
    components: &[u32],
    value: &SnmpValue,
) -> Result<(), BerError> {
    let start = out.len();
    let written = push_oid(out, components).and_then(|()| push_value(out, value));
    if let Err(e) = written {
        out.truncate(start);
        return Err(e);
    }
    wrap_from(out, start, TAG_SEQUENCE);
    Ok(())
}

/// Fills a slice from its end towards its start: write the last field first.
pub struct BackWriter<'a> {
    buf: &'a mut [u8],
    start: usize,
}

impl<'a> BackWriter<'a> {
    pub fn new(buf: &'a mut [u8]) -> BackWriter<'a> {
        let start = buf.len();
        BackWriter { buf, start }
    }

    /// Bytes written so far; they are `buf[buf.len() - written()..]`.
    pub fn written(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), BerError> {
        if bytes.len() > self.start {
            return Err(BerError::NoRoom(self.buf.len()));
        }
        let new_start = self.start - bytes.len();
        self.buf[new_start..self.start].copy_from_slice(bytes);
        self.start = new_start;
        Ok(())
    }

    /// Tag and length of a TLV whose `content_len` content bytes follow.
    pub fn push_header(&mut self, tag: u8, content_len: usize) -> Result<(), BerError> {
        let mut scratch = [0u8; 9];
        let n = length_bytes(content_len, &mut scratch);
        self.push_bytes(&scratch[9 - n..])?;
        self.push_bytes(&[tag])
    }

    pub fn push_tlv(&mut self, tag: u8, content: &[u8]) -> Result<(), BerError> {
        self.push_bytes(content)?;
        self.push_header(tag, content.len())
    }

    pub fn push_signed(&mut self, tag: u8, n: i64) -> Result<(), BerError> {
        let (bytes, start) = signed_content(n);
        self.push_tlv(tag, &bytes[start..])
    }
}

/// Why bytes could not be read as BER. Every decoder of packets from outside
/// returns this (or wraps it) instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: {0} needs more bytes than are left")]
    Truncated(&'static str),
    #[error("expected tag 0x{expected:02x} for {what}, found 0x{found:02x}")]
    WrongTag {
        what: &'static str,
        expected: u8,
        found: u8,
    },
    #[error("bad length encoding for {0}")]
    BadLength(&'static str),
    #[error("{0} does not fit its type")]
    OutOfRange(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// Reads TLVs front to back from a borrowed slice, checking every length
/// against what is left: a bad length is an error, never an out-of-bounds index.
#[derive(Debug, Clone)]
pub struct BerReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BerReader<'a> {
    pub fn new(bytes: &'a [u8]) -> BerReader<'a> {
        BerReader { bytes, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Bytes consumed so far (the offset of the next TLV in the slice).
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The next TLV: its tag and content. Only definite lengths of up to four
    /// length bytes are accepted (no SNMP message comes near 4 GiB).
    pub fn read_any(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), DecodeError> {
        let rest = &self.bytes[self.pos.min(self.bytes.len())..];
        let (&tag, after_tag) = rest.split_first().ok_or(DecodeError::Truncated(what))?;
        let (&first, after_len) = after_tag
            .split_first()
            .ok_or(DecodeError::Truncated(what))?;
        let (len, len_bytes) = if first < 0x80 {
            (usize::from(first), 0)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(DecodeError::BadLength(what));
            }
            let digits = after_len.get(..count).ok_or(DecodeError::Truncated(what))?;
            let len = digits
                .iter()
                .fold(0usize, |acc, &d| (acc << 8) | usize::from(d));
            (len, count)
        };
        let content_start = 2 + len_bytes;
        let content = rest
            .get(content_start..content_start.saturating_add(len))
            .ok_or(DecodeError::Truncated(what))?;
        self.pos += content_start + len;
        Ok((tag, content))
    }

    /// The content of the next TLV, which must carry `tag`.
    pub fn read(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let found = self.peek_tag().ok_or(DecodeError::Truncated(what))?;
        if found != tag {
            return Err(DecodeError::WrongTag {
                what,
                expected: tag,
                found,
            });
        }
        self.read_any(what).map(|(_, content)| content)
    }

    /// The whole next TLV (tag, length and content), which must carry `tag`.
    pub fn read_tlv(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.read(tag, what)?;
        Ok(&self.bytes[start..self.pos])
    }

    /// A signed INTEGER-like value (tag given), at most 8 content bytes.
    pub fn read_signed(&mut self, tag: u8, what: &'static str) -> Result<i64, DecodeError> {
        decode_signed(self.read(tag, what)?, what)
    }

    /// An unsigned value (Counter32, Gauge32, ...): up to 8 bytes, or 9 with a
    /// leading zero octet.
    pub fn read_unsigned(&mut self, tag: u8, what: &'static str) -> Result<u64, DecodeError> {
        decode_unsigned(self.read(tag, what)?, what)
    }
}

pub fn decode_signed(content: &[u8], what: &'static str) -> Result<i64, DecodeError> {
    if content.is_empty() {
        return Err(DecodeError::Malformed(what));
    }
    if content.len() > 8 {
        return Err(DecodeError::OutOfRange(what));
    }
    let negative = content[0] & 0x80 != 0;
    let start = if negative { -1i64 } else { 0 };
    Ok(content
        .iter()
        .fold(start, |acc, &b| (acc << 8) | i64::from(b)))
}

/// Unsigned content; a value with the sign bit set (which a strict encoder
/// would have prefixed with 00) is read as its unsigned bit pattern, as
/// net-snmp and most agents in the field do.
pub fn decode_unsigned(content: &[u8], what: &'static str) -> Result<u64, DecodeError> {
    let digits = match content {
        [] => return Err(DecodeError::Malformed(what)),
        [0, rest @ ..] if content.len() == 9 => rest,
        _ if content.len() > 8 => return Err(DecodeError::OutOfRange(what)),
        _ => content,
    };
    Ok(digits
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Decodes one value TLV (tag + content) of a varbind.
pub fn decode_value(tag: u8, content: &[u8]) -> Result<SnmpValue, DecodeError> {
    let u32_of = |what| {
        decode_unsigned(content, what)
            .and_then(|n| u32::try_from(n).map_err(|_| DecodeError::OutOfRange(what)))
    };
    Ok(match tag {
        TAG_INTEGER => SnmpValue::Integer(decode_signed(content, "INTEGER")?),
        TAG_OCTET_STRING => SnmpValue::OctetString(content.to_vec()),
        TAG_NULL => SnmpValue::Null,
        TAG_OID => {
            let mut components = super::oid::Components::new();
            decode_oid_content(content, &mut components)
                .map_err(|_| DecodeError::Malformed("OBJECT IDENTIFIER value"))?;
            SnmpValue::ObjectIdentifier(super::Oid::from_components(components))
        }
        snmp::TYPE_IPADDRESS => SnmpValue::IpAddress(
            content
                .try_into()
                .map_err(|_| DecodeError::Malformed("IpAddress (not 4 bytes)"))?,
        ),
        snmp::TYPE_COUNTER32 => SnmpValue::Counter32(u32_of("Counter32")?),
        snmp::TYPE_GAUGE32 => SnmpValue::Gauge32(u32_of("Gauge32")?),
        snmp::TYPE_TIMETICKS => SnmpValue::TimeTicks(u32_of("TimeTicks")?),
        snmp::TYPE_OPAQUE => SnmpValue::Opaque(content.to_vec()),
        snmp::TYPE_COUNTER64 => SnmpValue::Counter64(decode_unsigned(content, "Counter64")?),
        snmp::SNMP_NOSUCHOBJECT => SnmpValue::NoSuchObject,
        snmp::SNMP_NOSUCHINSTANCE => SnmpValue::NoSuchInstance,
        snmp::SNMP_ENDOFMIBVIEW => SnmpValue::EndOfMibView,
        _ => return Err(DecodeError::Malformed("varbind value (unknown type)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::Oid;
    use proptest::prelude::*;
    use snmp2::{AsnReader, Value};

    fn oid_content(components: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        push_oid_content(&mut out, components).unwrap();
        out
    }

    #[test]
    fn oid_known_vectors() {
        assert_eq!(oid_content(&[1, 3, 6, 1, 2, 1]), [0x2b, 6, 1, 2, 1]);
        assert_eq!(oid_content(&[1, 3, 128]), [0x2b, 0x81, 0x00]);
        // X.690 8.19.5 example.
        assert_eq!(oid_content(&[2, 999, 3]), [0x88, 0x37, 0x03]);
        assert_eq!(oid_content(&[1]), [0x28]);
        assert_eq!(oid_content(&[]), [0x00]);
        assert_eq!(
            oid_content(&[1, 3, u32::MAX]),
            [0x2b, 0x8f, 0xff, 0xff, 0xff, 0x7f]
        );
        assert_eq!(
            push_oid_content(&mut Vec::new(), &[3, 1]),
            Err(BerError::UnencodableOid("3.1".into()))
        );
        assert_eq!(
            push_oid_content(&mut Vec::new(), &[1, 40])
                .unwrap_err()
                .to_string(),
            "OID 1.40 cannot be encoded: the first component must be 0, 1 or 2, and the second \
             below 40 unless the first is 2"
        );
    }

    #[test]
    fn oid_decode_rejects_bad_input() {
        let mut out = Vec::new();
        let mut decode = |bytes: &[u8]| decode_oid_content(bytes, &mut out).unwrap_err();
        assert_eq!(decode(&[]).to_string(), "malformed OID encoding: empty");
        assert_eq!(
            decode(&[0x2b, 0x81]).to_string(),
            "malformed OID encoding: last component truncated"
        );
        // 2^32: one more than a component can hold.
        assert_eq!(
            decode(&[0x2b, 0x90, 0x80, 0x80, 0x80, 0x00]).to_string(),
            "malformed OID encoding: component too large"
        );
        assert_eq!(
            decode(&[0xff; 20]).to_string(),
            "malformed OID encoding: component too large"
        );
        decode_oid_content(&[0x88, 0x37, 0x03], &mut out).unwrap();
        assert_eq!(out, [2, 999, 3]);
    }

    #[test]
    fn integer_content_is_minimal() {
        let cases: [(i64, &[u8]); 8] = [
            (0, &[0]),
            (127, &[0x7f]),
            (128, &[0, 0x80]),
            (-1, &[0xff]),
            (-128, &[0x80]),
            (-129, &[0xff, 0x7f]),
            (i64::MAX, &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            (i64::MIN, &[0x80, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for (n, want) in cases {
            let mut out = Vec::new();
            push_signed(&mut out, TAG_INTEGER, n);
            assert_eq!(&out[2..], want, "{n}");
        }
        let mut out = Vec::new();
        push_unsigned(&mut out, snmp::TYPE_COUNTER32, u64::from(u32::MAX));
        assert_eq!(out, [0x41, 5, 0, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn long_lengths() {
        let mut out = Vec::new();
        push_tlv(&mut out, TAG_OCTET_STRING, &[7u8; 300]);
        assert_eq!(&out[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(out.len(), tlv_len(300));
        assert_eq!(tlv_len(127), 129);
        assert_eq!(tlv_len(128), 131);
    }

    #[test]
    fn back_writer_fills_from_the_end() {
        let mut buf = [0u8; 8];
        let mut w = BackWriter::new(&mut buf);
        w.push_signed(TAG_INTEGER, 5).unwrap();
        w.push_header(TAG_SEQUENCE, 3).unwrap();
        assert_eq!(w.written(), 5);
        assert_eq!(
            w.push_bytes(&[0; 4]).unwrap_err().to_string(),
            "no room left in the 8-byte header area"
        );
        assert_eq!(&buf[3..], [0x30, 3, 2, 1, 5]);
    }

    /// Decodes one value TLV with snmp2's reader, the other side of the wire.
    fn decode_with_snmp2(bytes: &[u8]) -> SnmpValue {
        let mut reader = AsnReader::from_bytes(bytes);
        match reader.next().expect("snmp2 could not read the value") {
            Value::Integer(n) => SnmpValue::Integer(n),
            Value::OctetString(b) => SnmpValue::OctetString(b.to_vec()),
            Value::ObjectIdentifier(o) => {
                let mut c = Vec::new();
                decode_oid_content(o.as_bytes(), &mut c).unwrap();
                SnmpValue::ObjectIdentifier(Oid::new(c))
            }
            Value::IpAddress(ip) => SnmpValue::IpAddress(ip),
            Value::Counter32(n) => SnmpValue::Counter32(n),
            Value::Unsigned32(n) => SnmpValue::Gauge32(n),
            Value::Timeticks(n) => SnmpValue::TimeTicks(n),
            Value::Counter64(n) => SnmpValue::Counter64(n),
            Value::Opaque(b) => SnmpValue::Opaque(b.to_vec()),
            Value::Null => SnmpValue::Null,
            Value::NoSuchObject => SnmpValue::NoSuchObject,
            Value::NoSuchInstance => SnmpValue::NoSuchInstance,
            Value::EndOfMibView => SnmpValue::EndOfMibView,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn any_value() -> impl Strategy<Value = SnmpValue> {
        prop_oneof![
            any::<i64>().prop_map(SnmpValue::Integer),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(SnmpValue::OctetString),
            (
                0u32..3,
                0u32..40,
                proptest::collection::vec(any::<u32>(), 0..12)
            )
                .prop_map(|(a, b, rest)| {
                    let mut c = vec![a, b];
                    c.extend(rest);
                    SnmpValue::ObjectIdentifier(Oid::new(c))
                }),
            any::<[u8; 4]>().prop_map(SnmpValue::IpAddress),
            any::<u32>().prop_map(SnmpValue::Counter32),
            any::<u32>().prop_map(SnmpValue::Gauge32),
            any::<u32>().prop_map(SnmpValue::TimeTicks),
            any::<u64>().prop_map(SnmpValue::Counter64),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(SnmpValue::Opaque),
            Just(SnmpValue::Null),
            Just(SnmpValue::NoSuchObject),
            Just(SnmpValue::NoSuchInstance),
            Just(SnmpValue::EndOfMibView),
        ]
    }

    proptest! {
        #[test]
        fn values_round_trip_through_snmp2(value in any_value()) {
            let mut out = Vec::new();
            push_value(&mut out, &value).unwrap();
            prop_assert_eq!(decode_with_snmp2(&out), value);
        }

        #[test]
        fn oids_round_trip(first in 0u32..3, second in any::<u32>(),
                           rest in proptest::collection::vec(any::<u32>(), 0..20)) {
            let second = if first < 2 { second % 40 } else { second };
            let mut components = vec![first, second];
            components.extend(rest);
            let content = oid_content(&components);
            let mut back = Vec::new();
            decode_oid_content(&content, &mut back).unwrap();
            prop_assert_eq!(back, components);
        }

        #[test]
        fn oid_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_oid_content(&bytes, &mut Vec::new());
        }
    }

    #[test]
    fn reader_reads_what_the_writer_wrote() {
        let mut out = Vec::new();
        push_signed(&mut out, TAG_INTEGER, -129);
        push_tlv(&mut out, TAG_OCTET_STRING, &[9u8; 300]);
        push_unsigned(&mut out, snmp::TYPE_COUNTER32, u64::from(u32::MAX));
        let mut r = BerReader::new(&out);
        assert_eq!(r.read_signed(TAG_INTEGER, "i").unwrap(), -129);
        assert_eq!(r.read(TAG_OCTET_STRING, "s").unwrap().len(), 300);
        assert_eq!(
            r.read_unsigned(snmp::TYPE_COUNTER32, "c").unwrap(),
            u64::from(u32::MAX)
        );
        assert!(r.is_empty());
        assert!(matches!(r.read_any("x"), Err(DecodeError::Truncated("x"))));
        let mut r = BerReader::new(&[0x02, 0x05, 1]);
        assert_eq!(
            r.read_signed(TAG_INTEGER, "i").unwrap_err().to_string(),
            "truncated: i needs more bytes than are left"
        );
        let mut r = BerReader::new(&[0x04, 0x85, 1, 1, 1, 1, 1]);
        assert_eq!(r.read_any("s"), Err(DecodeError::BadLength("s")));
        let mut r = BerReader::new(&[0x04, 0x00]);
        assert!(matches!(
            r.read(TAG_INTEGER, "i"),
            Err(DecodeError::WrongTag { .. })
        ));
    }

    proptest! {
        #[test]
        fn values_round_trip_through_our_reader(value in any_value()) {
            let mut out = Vec::new();
            push_value(&mut out, &value).unwrap();
            let mut r = BerReader::new(&out);
            let (tag, content) = r.read_any("value").unwrap();
            prop_assert_eq!(decode_value(tag, content).unwrap(), value);
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = BerReader::new(&bytes);
            while let Ok((tag, content)) = r.read_any("fuzz") {
                let _ = decode_value(tag, content);
            }
        }
    }
}
