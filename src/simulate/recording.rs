//! snmprec recordings: parsing, and the sorted OID table the agent answers from.
//!
//! Format (snmpsim): one varbind per line, `OID|TAG|VALUE`, where TAG is the
//! ASN.1 type number (2 Integer, 4 OctetString, 5 Null, 6 OID, 64 IpAddress,
//! 65 Counter32, 66 Gauge32, 67 TimeTicks, 68 Opaque, 70 Counter64). A trailing
//! `x` on the tag means VALUE is hex: the raw bytes for the string-like types
//! (4, 64, 68), and the hex of the value's text for the others (as snmpsim
//! reads it). Blank lines and `#` comments are skipped; anything else is an
//! error naming `file:line`.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::Path;

use crate::snmp::ber;
use crate::snmp::{Oid, OidParseError, SnmpValue};

use super::counters::{motion_for, Motion};

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{source_name}:{line}: {reason}")]
    Syntax {
        source_name: String,
        line: usize,
        #[source]
        reason: LineError,
    },
    #[error("cannot read recording {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with one line of a recording (`OID|TAG|VALUE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// `found`: the line, cut to 80 characters.
    #[error("expected OID|TAG|VALUE, found {found:?}")]
    Fields { found: String },
    #[error(transparent)]
    Oid(#[from] OidParseError),
    #[error("unknown tag {0:?} (expected 2, 4, 5, 6, 64, 65, 66, 67, 68 or 70, optionally with an x hex suffix)")]
    UnknownTag(String),
    #[error("IpAddress needs 4 bytes of hex, found {0}")]
    IpBytes(usize),
    #[error("invalid IpAddress {0:?} (expected a.b.c.d)")]
    IpText(String),
    #[error("value is not text")]
    NotText,
    #[error("invalid {type_name} value {text:?} (not a number, or out of range)")]
    Number {
        type_name: &'static str,
        text: String,
    },
    #[error("OID value: {0}")]
    OidValue(#[source] OidParseError),
    /// The hex text, cut to 80 characters.
    #[error("hex value has an odd number of digits: {0:?}")]
    OddHex(String),
    #[error("invalid hex value {0:?}")]
    BadHex(String),
    /// The line parsed, but its varbind cannot be encoded.
    #[error(transparent)]
    Encode(#[from] ber::BerError),
}

/// One recorded OID, with its varbind pre-encoded so that answering with a
/// recorded value is a copy.
#[derive(Debug, Clone)]
pub struct Entry {
    pub(crate) oid: Oid,
    pub(crate) value: SnmpValue,
    /// The whole varbind TLV: `SEQUENCE { OID, value }`.
    pub(crate) varbind: Box<[u8]>,
    /// Where the OID TLV sits inside `varbind`.
    pub(crate) oid_tlv: Range<usize>,
    /// How the value moves with time, when counters advance.
    pub(crate) motion: Option<Motion>,
}

impl Entry {
    fn new(oid: Oid, value: SnmpValue) -> Result<Entry, ber::BerError> {
        let mut oid_tlv = Vec::new();
        ber::push_oid(&mut oid_tlv, oid.components())?;
        let mut varbind = Vec::with_capacity(oid_tlv.len() + 16);
        ber::push_varbind(&mut varbind, oid.components(), &value)?;
        // The varbind is SEQUENCE header + OID TLV + value TLV.
        let start = tlv_header_len(&varbind);
        let motion = motion_for(&oid, &value);
        Ok(Entry {
            oid_tlv: start..start + oid_tlv.len(),
            oid,
            value,
            varbind: varbind.into_boxed_slice(),
            motion,
        })
    }

    pub fn oid(&self) -> &Oid {
        &self.oid
    }

    pub fn value(&self) -> &SnmpValue {
        &self.value
    }
}

/// Size of the tag + length header at the front of an encoded TLV.
fn tlv_header_len(tlv: &[u8]) -> usize {
    match tlv.get(1) {
        Some(&first) if first & 0x80 != 0 => 2 + usize::from(first & 0x7f),
        _ => 2,
    }
}

/// A device's recorded MIB: OIDs in numeric order with their values.
#[derive(Debug, Clone)]
pub struct Recording {
    source: String,
    entries: Vec<Entry>,
    duplicates: usize,
}

impl Recording {
    /// Parses snmprec text; `source_name` is used in error messages.
    /// A repeated OID keeps its last value (and is counted in [`Recording::duplicates`]).
    pub fn parse(text: &str, source_name: &str) -> Result<Recording, RecordingError> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let entry = parse_line(line)
                .and_then(|(oid, value)| Ok(Entry::new(oid, value)?))
                .map_err(|reason| RecordingError::Syntax {
                    source_name: source_name.to_string(),
                    line: index + 1,
                    reason,
                })?;
            entries.push(entry);
        }
        // Stable sort: among equal OIDs the later line stays later, and dedup keeps it.
        entries.sort_by(|a, b| a.oid.cmp(&b.oid));
        let before = entries.len();
        entries.reverse();
        entries.dedup_by(|later, earlier| later.oid == earlier.oid);
        entries.reverse();
        // `dedup_by` on the reversed list keeps the first of each run, i.e. the
        // last line of the file for that OID.
        let duplicates = before - entries.len();
        Ok(Recording {
            source: source_name.to_string(),
            entries,
            duplicates,
        })
    }

    /// Reads and parses a `.snmprec` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Recording, RecordingError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RecordingError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Recording::parse(&text, &path.display().to_string())
    }

    /// The file name (or other source name) the recording was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lines whose OID was already recorded earlier in the file.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Exact match (GET).
    pub fn get(&self, oid: &Oid) -> Option<&SnmpValue> {
        self.position(oid.components())
            .ok()
            .map(|i| &self.entries[i].value)
    }

    /// The first recorded OID strictly after `oid` (GETNEXT).
    pub fn successor(&self, oid: &Oid) -> Option<(&Oid, &SnmpValue)> {
        self.entries
            .get(self.successor_index(oid.components()))
            .map(|e| (&e.oid, &e.value))
    }

    /// All entries in OID order.
    pub fn iter(&self) -> impl Iterator<Item = (&Oid, &SnmpValue)> {
        self.entries.iter().map(|e| (&e.oid, &e.value))
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// `Ok(index)` of an exact match, or `Err(index)` where it would be inserted.
    pub(crate) fn position(&self, oid: &[u32]) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| e.oid.components().cmp(oid))
    }

    /// Index of the first entry strictly greater than `oid` (== len() at the end).
    pub(crate) fn successor_index(&self, oid: &[u32]) -> usize {
        self.entries.partition_point(|e| e.oid.components() <= oid)
    }
}

fn parse_line(line: &str) -> Result<(Oid, SnmpValue), LineError> {
    let mut fields = line.splitn(3, '|');
    let (Some(oid_text), Some(tag_text), Some(value_text)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(LineError::Fields {
            found: truncate_for_message(line),
        });
    };
    let oid: Oid = oid_text.trim().parse()?;
    let tag_text = tag_text.trim();
    let (number, hex) = match tag_text.strip_suffix('x') {
        Some(number) => (number, true),
        None => (tag_text, false),
    };
    let tag: u8 = number.parse().map_err(|_| unknown_tag(tag_text))?;
    let raw: Cow<'_, [u8]> = if hex {
        Cow::Owned(decode_hex(value_text.trim())?)
    } else {
        Cow::Borrowed(value_text.as_bytes())
    };
    let value = match tag {
        4 => SnmpValue::OctetString(raw.into_owned()),
        68 => SnmpValue::Opaque(raw.into_owned()),
        5 => SnmpValue::Null,
        64 if hex => SnmpValue::IpAddress(
            raw.as_ref()
                .try_into()
                .map_err(|_| LineError::IpBytes(raw.len()))?,
        ),
        64 => {
            let text = text(&raw)?;
            SnmpValue::IpAddress(
                text.parse::<Ipv4Addr>()
                    .map_err(|_| LineError::IpText(text.to_owned()))?
                    .octets(),
            )
        }
        2 => SnmpValue::Integer(number_of(&raw, "INTEGER")?),
        65 => SnmpValue::Counter32(number_of(&raw, "Counter32")?),
        66 => SnmpValue::Gauge32(number_of(&raw, "Gauge32")?),
        67 => SnmpValue::TimeTicks(number_of(&raw, "TimeTicks")?),
        70 => SnmpValue::Counter64(number_of(&raw, "Counter64")?),
        6 => SnmpValue::ObjectIdentifier(text(&raw)?.parse().map_err(LineError::OidValue)?),
        _ => return Err(unknown_tag(tag_text)),
    };
    Ok((oid, value))
}

fn unknown_tag(tag: &str) -> LineError {
    LineError::UnknownTag(tag.to_owned())
}

fn text(raw: &[u8]) -> Result<&str, LineError> {
    std::str::from_utf8(raw)
        .map(str::trim)
        .map_err(|_| LineError::NotText)
}

fn number_of<T: std::str::FromStr>(raw: &[u8], type_name: &'static str) -> Result<T, LineError> {
    let text = text(raw)?;
    text.parse::<T>().map_err(|_| LineError::Number {
        type_name,
        text: text.to_owned(),
    })
}

fn decode_hex(text: &str) -> Result<Vec<u8>, LineError> {
    if !text.len().is_multiple_of(2) {
        return Err(LineError::OddHex(truncate_for_message(text)));
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => Ok(high << 4 | low),
            _ => Err(LineError::BadHex(truncate_for_message(text))),
        })
        .collect()
}

fn truncate_for_message(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(text: &str) -> Oid {
        text.parse().unwrap()
    }

    const EVERY_TAG: &str = "\
# a comment, then a blank line

1.3.6.1.2.1.1.1.0|4|Juniper Networks, Inc. | with a pipe
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.2636.1.1.1.2.29
1.3.6.1.2.1.1.3.0|67|3392864470
1.3.6.1.2.1.2.2.1.2.1|4x|45746865726e65742031
1.3.6.1.2.1.2.2.1.3.1|2|-6
1.3.6.1.2.1.2.2.1.5.1|66|1000000000
1.3.6.1.2.1.2.2.1.10.1|65|4294967295
1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615
1.3.6.1.2.1.4.20.1.1.10.0.0.1|64|10.0.0.1
1.3.6.1.2.1.4.20.1.2.10.0.0.1|64x|0a000002
1.3.6.1.2.1.99.1|5|
1.3.6.1.2.1.99.2|68x|c0ffee
1.3.6.1.2.1.99.3|2x|3432
1.3.6.1.2.1.31.1.1.1.18.670|4|
";

    #[test]
    fn parses_every_tag() {
        let r = Recording::parse(EVERY_TAG, "every.snmprec").unwrap();
        assert_eq!(r.len(), 14);
        let cases = [
            (
                "1.3.6.1.2.1.1.1.0",
                SnmpValue::OctetString(b"Juniper Networks, Inc. | with a pipe".to_vec()),
            ),
            (
                "1.3.6.1.2.1.1.2.0",
                SnmpValue::ObjectIdentifier(oid("1.3.6.1.4.1.2636.1.1.1.2.29")),
            ),
            ("1.3.6.1.2.1.1.3.0", SnmpValue::TimeTicks(3_392_864_470)),
            (
                "1.3.6.1.2.1.2.2.1.2.1",
                SnmpValue::OctetString(b"Ethernet 1".to_vec()),
            ),
            ("1.3.6.1.2.1.2.2.1.3.1", SnmpValue::Integer(-6)),
            ("1.3.6.1.2.1.2.2.1.5.1", SnmpValue::Gauge32(1_000_000_000)),
            ("1.3.6.1.2.1.2.2.1.10.1", SnmpValue::Counter32(u32::MAX)),
            ("1.3.6.1.2.1.31.1.1.1.6.1", SnmpValue::Counter64(u64::MAX)),
            (
                "1.3.6.1.2.1.4.20.1.1.10.0.0.1",
                SnmpValue::IpAddress([10, 0, 0, 1]),
            ),
            (
                "1.3.6.1.2.1.4.20.1.2.10.0.0.1",
                SnmpValue::IpAddress([10, 0, 0, 2]),
            ),
            ("1.3.6.1.2.1.99.1", SnmpValue::Null),
            (
                "1.3.6.1.2.1.99.2",
                SnmpValue::Opaque(vec![0xc0, 0xff, 0xee]),
            ),
            ("1.3.6.1.2.1.99.3", SnmpValue::Integer(42)),
            (
                "1.3.6.1.2.1.31.1.1.1.18.670",
                SnmpValue::OctetString(vec![]),
            ),
        ];
        for (o, want) in cases {
            assert_eq!(r.get(&oid(o)), Some(&want), "{o}");
        }
    }

    #[test]
    fn sorted_numerically_with_successors() {
        let text = "1.3.6.1.10|2|3\n1.3.6.1.9|2|2\n1.3.6.1.2.5|2|1\n.1.3.6.2|2|4\n";
        let r = Recording::parse(text, "t").unwrap();
        let order: Vec<String> = r.iter().map(|(o, _)| o.to_string()).collect();
        assert_eq!(order, ["1.3.6.1.2.5", "1.3.6.1.9", "1.3.6.1.10", "1.3.6.2"]);
        let next = |o: &str| r.successor(&oid(o)).map(|(o, _)| o.to_string());
        assert_eq!(next("1"), Some("1.3.6.1.2.5".into()));
        assert_eq!(next("1.3.6.1.2.5"), Some("1.3.6.1.9".into()));
        assert_eq!(next("1.3.6.1.9.0"), Some("1.3.6.1.10".into()));
        assert_eq!(next("1.3.6.1.10"), Some("1.3.6.2".into()));
        assert_eq!(next("1.3.6.2"), None);
        assert_eq!(r.get(&oid("1.3.6.1.9")), Some(&SnmpValue::Integer(2)));
        assert_eq!(r.get(&oid("1.3.6.1.8")), None);
    }

    #[test]
    fn later_duplicate_wins_and_is_counted() {
        let text = "1.3.6.1|2|1\n1.3.6.2|2|5\n1.3.6.1|2|2\n";
        let r = Recording::parse(text, "t").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.duplicates(), 1);
        assert_eq!(r.get(&oid("1.3.6.1")), Some(&SnmpValue::Integer(2)));
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("1.3.6.1|2", "expected OID|TAG|VALUE"),
            ("1.3.x|2|1", "invalid OID"),
            ("1.3.6|99|1", "unknown tag \"99\""),
            ("1.3.6|4:numeric|1", "unknown tag"),
            ("1.3.6|2|12a", "invalid INTEGER"),
            ("1.3.6|65|4294967296", "invalid Counter32"),
            ("1.3.6|66|-1", "invalid Gauge32"),
            ("1.3.6|4x|abc", "odd number of digits"),
            ("1.3.6|4x|zz", "invalid hex"),
            ("1.3.6|64|10.0.0.256", "invalid IpAddress"),
            ("1.3.6|64x|0a00", "4 bytes"),
            ("1.3.6|6|1..2", "OID value"),
            ("5.1.2|2|1", "cannot be encoded"),
        ];
        for (line, want) in cases {
            let text = format!("# header\n1.3.6.1|2|1\n{line}\n");
            let err = Recording::parse(&text, "dev.snmprec")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("dev.snmprec:3: "), "{line}: {err}");
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn load_reports_missing_file() {
        let err = Recording::load("/nonexistent/x.snmprec").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.snmprec"), "{err}");
    }

    #[test]
    fn entries_carry_their_encoded_varbind() {
        let r = Recording::parse("1.3.6.1.2.1.1.5.0|4|sw1\n", "t").unwrap();
        let e = &r.entries()[0];
        let mut want = Vec::new();
        ber::push_varbind(&mut want, e.oid().components(), e.value()).unwrap();
        assert_eq!(&*e.varbind, want.as_slice());
        let mut oid_tlv = Vec::new();
        ber::push_oid(&mut oid_tlv, e.oid().components()).unwrap();
        assert_eq!(&e.varbind[e.oid_tlv.clone()], oid_tlv.as_slice());
    }

    #[test]
    fn shared_conformance_recordings_parse() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");
        let Ok(cases) = std::fs::read_dir(root) else {
            panic!("{root} is missing: the conformance fixtures are part of the repository");
        };
        let mut parsed = 0;
        for case in cases.flatten() {
            for variant in std::fs::read_dir(case.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let file = variant.path().join("device.snmprec");
                if file.exists() {
                    // Some are empty on purpose (a device with nothing to poll).
                    let r = Recording::load(&file).unwrap();
                    assert_eq!(r.is_empty(), std::fs::metadata(&file).unwrap().len() == 0);
                    parsed += 1;
                }
            }
        }
        assert!(parsed > 20, "only {parsed} recordings found under {root}");
    }
}
