//! Translation between snmp2's borrowed wire types and our owned ones.

use std::borrow::Cow;

use snmp2::Value;

use super::ber::{self, BerError};
use super::{Oid, SnmpValue};

/// Our OID as snmp2 wants it. Encoded by our BER code rather than
/// `snmp2::Oid::from`, which rejects OIDs like `2.999` and single components.
pub fn to_wire_oid(oid: &Oid) -> Result<snmp2::Oid<'static>, BerError> {
    let mut content = Vec::with_capacity(oid.len() + 4);
    ber::push_oid_content(&mut content, oid.components())?;
    Ok(snmp2::Oid::new(Cow::Owned(content)))
}

pub fn from_wire_oid(oid: &snmp2::Oid<'_>) -> Result<Oid, BerError> {
    let mut components = Vec::with_capacity(oid.as_bytes().len() + 1);
    ber::decode_oid_content(oid.as_bytes(), &mut components)?;
    Ok(Oid::new(components))
}

/// Every snmp2 value, mapped; the ones that cannot appear in a varbind value
/// (booleans, sequences, nested PDUs, unknown constructed types) are reported as
/// an error naming the type, never a panic.
/// A varbind value that is not one: a bad OID, or a type no varbind carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireValueError {
    #[error("bad OID value: {0}")]
    BadOid(#[source] BerError),
    /// `kind`: BOOLEAN, SEQUENCE, SET or PDU.
    #[error("unexpected {0} as a varbind value")]
    Unexpected(&'static str),
    #[error("unexpected constructed type 0x{0:02x} as a varbind value")]
    Constructed(u8),
}

pub fn from_wire_value(value: &Value<'_>) -> Result<SnmpValue, WireValueError> {
    Ok(match value {
        Value::Null => SnmpValue::Null,
        Value::Integer(n) => SnmpValue::Integer(*n),
        Value::OctetString(bytes) => SnmpValue::OctetString(bytes.to_vec()),
        Value::ObjectIdentifier(oid) => {
            SnmpValue::ObjectIdentifier(from_wire_oid(oid).map_err(WireValueError::BadOid)?)
        }
        Value::IpAddress(ip) => SnmpValue::IpAddress(*ip),
        Value::Counter32(n) => SnmpValue::Counter32(*n),
        Value::Unsigned32(n) => SnmpValue::Gauge32(*n),
        Value::Timeticks(n) => SnmpValue::TimeTicks(*n),
        Value::Opaque(bytes) => SnmpValue::Opaque(bytes.to_vec()),
        Value::Counter64(n) => SnmpValue::Counter64(*n),
        Value::EndOfMibView => SnmpValue::EndOfMibView,
        Value::NoSuchObject => SnmpValue::NoSuchObject,
        Value::NoSuchInstance => SnmpValue::NoSuchInstance,
        Value::Boolean(_) => return Err(WireValueError::Unexpected("BOOLEAN")),
        Value::Sequence(_) => return Err(WireValueError::Unexpected("SEQUENCE")),
        Value::Set(_) => return Err(WireValueError::Unexpected("SET")),
        Value::Constructed(tag, _) => return Err(WireValueError::Constructed(*tag)),
        Value::GetRequest(_)
        | Value::GetNextRequest(_)
        | Value::GetBulkRequest(_)
        | Value::Response(_)
        | Value::SetRequest(_)
        | Value::InformRequest(_)
        | Value::Trap(_)
        | Value::Report(_) => return Err(WireValueError::Unexpected("PDU")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use snmp2::AsnReader;

    #[test]
    fn oid_round_trip_through_snmp2_type() {
        let oid: Oid = "1.3.6.1.4.1.2636.3.1.13.1.5.1.1.0.0".parse().unwrap();
        let wire = to_wire_oid(&oid).unwrap();
        assert_eq!(wire.to_id_string(), oid.to_string());
        assert_eq!(from_wire_oid(&wire).unwrap(), oid);
        assert_eq!(
            to_wire_oid(&Oid::from([5, 1])).unwrap_err().to_string(),
            "OID 5.1 cannot be encoded: the first component must be 0, 1 or 2, and the second \
             below 40 unless the first is 2"
        );
    }

    #[test]
    fn non_value_types_are_errors_not_panics() {
        // SEQUENCE { INTEGER 1 }, SET {}, BOOLEAN-tagged garbage, a nested response PDU.
        for bytes in [
            &[0x30, 0x03, 0x02, 0x01, 0x01][..],
            &[0x31, 0x00],
            &[0xa2, 0x00],
            &[0xbf, 0x00],
        ] {
            let value = AsnReader::from_bytes(bytes).next().unwrap();
            assert!(
                matches!(
                    from_wire_value(&value),
                    Err(WireValueError::Unexpected(_) | WireValueError::Constructed(_))
                ),
                "{value:?}"
            );
        }
        let value = AsnReader::from_bytes(&[0x42, 0x01, 0x07]).next().unwrap();
        assert_eq!(from_wire_value(&value).unwrap(), SnmpValue::Gauge32(7));
    }
}
