//! SNMP values and variable bindings, owned and independent of the wire library.

use std::fmt;

use super::Oid;

/// A value an agent returned (or a recording holds), with its SMI type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnmpValue {
    Integer(i64),
    OctetString(Vec<u8>),
    ObjectIdentifier(Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Counter64(u64),
    Opaque(Vec<u8>),
    Null,
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl SnmpValue {
    /// The number held by any numeric type (`i128` holds both `i64` and `u64`).
    pub fn as_i128(&self) -> Option<i128> {
        match *self {
            SnmpValue::Integer(n) => Some(i128::from(n)),
            SnmpValue::Counter32(n) | SnmpValue::Gauge32(n) | SnmpValue::TimeTicks(n) => {
                Some(i128::from(n))
            }
            SnmpValue::Counter64(n) => Some(i128::from(n)),
            _ => None,
        }
    }

    /// The raw bytes of string-like types (octet strings, opaque, IP addresses).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            SnmpValue::OctetString(bytes) | SnmpValue::Opaque(bytes) => Some(bytes),
            SnmpValue::IpAddress(ip) => Some(ip),
            _ => None,
        }
    }

    /// True for the three v2c exception values, which say "no data here".
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            SnmpValue::NoSuchObject | SnmpValue::NoSuchInstance | SnmpValue::EndOfMibView
        )
    }

    /// Decimal for numbers, dotted for OIDs and IP addresses, and strings as ASCII
    /// with every non-ASCII byte replaced by U+FFFD: device strings are mostly ASCII
    /// labels, and a stray high byte must not turn a whole description into garbage
    /// the way a failed UTF-8 decode would.
    pub fn to_display_string(&self) -> String {
        match self {
            SnmpValue::Integer(n) => itoa::Buffer::new().format(*n).to_owned(),
            SnmpValue::Counter32(n) | SnmpValue::Gauge32(n) | SnmpValue::TimeTicks(n) => {
                itoa::Buffer::new().format(*n).to_owned()
            }
            SnmpValue::Counter64(n) => itoa::Buffer::new().format(*n).to_owned(),
            SnmpValue::OctetString(bytes) | SnmpValue::Opaque(bytes) => lossy_ascii(bytes),
            SnmpValue::ObjectIdentifier(oid) => oid.to_string(),
            SnmpValue::IpAddress([a, b, c, d]) => format!("{a}.{b}.{c}.{d}"),
            SnmpValue::Null => String::new(),
            SnmpValue::NoSuchObject => "noSuchObject".to_string(),
            SnmpValue::NoSuchInstance => "noSuchInstance".to_string(),
            SnmpValue::EndOfMibView => "endOfMibView".to_string(),
        }
    }

    /// The SMI type name, as net-snmp prints it before a value (`Counter32: 5`).
    pub fn type_name(&self) -> &'static str {
        match self {
            SnmpValue::Integer(_) => "INTEGER",
            SnmpValue::OctetString(_) => "STRING",
            SnmpValue::ObjectIdentifier(_) => "OID",
            SnmpValue::IpAddress(_) => "IpAddress",
            SnmpValue::Counter32(_) => "Counter32",
            SnmpValue::Gauge32(_) => "Gauge32",
            SnmpValue::TimeTicks(_) => "Timeticks",
            SnmpValue::Counter64(_) => "Counter64",
            SnmpValue::Opaque(_) => "Opaque",
            SnmpValue::Null => "NULL",
            SnmpValue::NoSuchObject => "noSuchObject",
            SnmpValue::NoSuchInstance => "noSuchInstance",
            SnmpValue::EndOfMibView => "endOfMibView",
        }
    }
}

fn lossy_ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                '\u{FFFD}'
            }
        })
        .collect()
}

impl fmt::Display for SnmpValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name(), self.to_display_string())
    }
}

/// One OID and its value, as carried in a PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Varbind {
    pub oid: Oid,
    pub value: SnmpValue,
}

impl Varbind {
    pub fn new(oid: Oid, value: SnmpValue) -> Varbind {
        Varbind { oid, value }
    }
}

impl fmt::Display for Varbind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.oid, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_widen_to_i128() {
        assert_eq!(SnmpValue::Integer(-5).as_i128(), Some(-5));
        assert_eq!(
            SnmpValue::Counter32(u32::MAX).as_i128(),
            Some(4_294_967_295)
        );
        assert_eq!(
            SnmpValue::Counter64(u64::MAX).as_i128(),
            Some(i128::from(u64::MAX))
        );
        assert_eq!(SnmpValue::Gauge32(7).as_i128(), Some(7));
        assert_eq!(SnmpValue::TimeTicks(100).as_i128(), Some(100));
        assert_eq!(SnmpValue::OctetString(b"12".to_vec()).as_i128(), None);
        assert_eq!(SnmpValue::Null.as_i128(), None);
    }

    #[test]
    fn bytes_of_string_types() {
        assert_eq!(
            SnmpValue::OctetString(b"ab".to_vec()).as_bytes(),
            Some(&b"ab"[..])
        );
        assert_eq!(
            SnmpValue::IpAddress([10, 0, 0, 1]).as_bytes(),
            Some(&[10u8, 0, 0, 1][..])
        );
        assert_eq!(SnmpValue::Integer(1).as_bytes(), None);
    }

    #[test]
    fn display_strings() {
        assert_eq!(
            SnmpValue::OctetString(b"Eth\xff1".to_vec()).to_display_string(),
            "Eth\u{FFFD}1"
        );
        assert_eq!(
            SnmpValue::IpAddress([192, 168, 0, 1]).to_display_string(),
            "192.168.0.1"
        );
        assert_eq!(
            SnmpValue::ObjectIdentifier(Oid::from([1, 3, 6])).to_display_string(),
            "1.3.6"
        );
        assert_eq!(
            SnmpValue::Counter64(18_446_744_073_709_551_615).to_display_string(),
            "18446744073709551615"
        );
        assert_eq!(SnmpValue::EndOfMibView.to_display_string(), "endOfMibView");
        assert_eq!(
            Varbind::new(Oid::from([1, 3]), SnmpValue::Gauge32(3)).to_string(),
            "1.3 = Gauge32: 3"
        );
    }
}
