//! Varbinds printed with MIB names, as `snmpbulkwalk` prints them without `-On`:
//! `IF-MIB::ifOperStatus.1 = INTEGER: up(1)`, `IF-MIB::ifPhysAddress.1 = STRING: 0:c:29:ab:cd:ef`.
//! What the MIBs say nothing about prints as [`crate::snmp::format`] prints it.

use super::{hint, Mibs};
use crate::snmp::format::net_snmp_value;
use crate::snmp::{Oid, SnmpValue, Varbind};

/// net-snmp's `-O` output flags that Panoptes honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// `-On`: OIDs (names and OID values) as numbers.
    pub numeric_oids: bool,
    /// `-Oe`: enumerated INTEGERs as numbers.
    pub numeric_enums: bool,
}

impl OutputOptions {
    /// net-snmp's `-O` letters, e.g. `n`, `e`, `ne`.
    pub fn parse(flags: &str) -> Result<OutputOptions, String> {
        let mut options = OutputOptions::default();
        for flag in flags.chars() {
            match flag {
                'n' => options.numeric_oids = true,
                'e' => options.numeric_enums = true,
                other => {
                    return Err(format!(
                    "-O{other} is not supported (supported: -On numeric OIDs, -Oe numeric enums)"
                ))
                }
            }
        }
        Ok(options)
    }
}

/// Prints varbinds under one set of MIBs and options.
pub struct Renderer<'a> {
    /// `None`: no MIBs at all, every line as with `-On` and no modules loaded.
    mibs: Option<&'a Mibs>,
    options: OutputOptions,
}

impl<'a> Renderer<'a> {
    pub fn new(mibs: Option<&'a Mibs>, options: OutputOptions) -> Renderer<'a> {
        Renderer { mibs, options }
    }

    /// An OID as a name (`IF-MIB::ifDescr.1`) or, with `-On` or no MIBs, `.1.3.6...`.
    pub fn oid(&self, oid: &Oid) -> String {
        match self.mibs {
            Some(mibs) if !self.options.numeric_oids => mibs.name(oid),
            _ => oid.to_dotted_leading(),
        }
    }

    /// `NAME = TYPE: VALUE`, without the final newline.
    pub fn line(&self, varbind: &Varbind) -> String {
        format!(
            "{} = {}",
            self.oid(&varbind.oid),
            self.value(&varbind.oid, &varbind.value)
        )
    }

    /// The value of the instance `oid`, typed and hinted by the object it belongs to.
    pub fn value(&self, oid: &Oid, value: &SnmpValue) -> String {
        let Some(mibs) = self.mibs else {
            return net_snmp_value(value);
        };
        if let (SnmpValue::ObjectIdentifier(target), false) = (value, self.options.numeric_oids) {
            return format!("OID: {}", mibs.name(target));
        }
        let Some(object) = mibs.object_of(oid) else {
            return net_snmp_value(value);
        };
        if let Some(expected) = object
            .ty()
            .and_then(|t| wrong_type(t.effective_base(), value))
        {
            // What net-snmp prints when the agent's type is not the MIB's.
            return format!(
                "Wrong Type (should be {expected}): {}",
                net_snmp_value(value)
            );
        }
        let hint = object.effective_display_hint();
        let units = object.units();
        let with_units = |text: String| {
            if units.is_empty() {
                text
            } else {
                format!("{text} {units}")
            }
        };
        match value {
            SnmpValue::Integer(n) => {
                let n = *n;
                let named = object.effective_enums().iter().find(|e| e.value == n);
                match named {
                    Some(e) if !self.options.numeric_enums => {
                        format!("INTEGER: {}({n})", e.label)
                    }
                    _ => match hint::format_integer(hint, n) {
                        Some(text) if !hint.is_empty() => with_units(format!("INTEGER: {text}")),
                        _ => with_units(format!("INTEGER: {n}")),
                    },
                }
            }
            SnmpValue::OctetString(bytes) if !object.effective_bits().is_empty() => {
                // net-snmp: the octets in hex, then each bit set, by name unless -Oe.
                let mut text = String::from("BITS: ");
                for byte in bytes {
                    text.push_str(&format!("{byte:02X} "));
                }
                for (i, byte) in bytes.iter().enumerate() {
                    for bit in 0..8 {
                        if byte & (0x80 >> bit) == 0 {
                            continue;
                        }
                        let n = i64::try_from(i * 8 + bit).unwrap_or(i64::MAX);
                        let named = object.effective_bits().iter().find(|b| b.value == n);
                        match named {
                            Some(b) if !self.options.numeric_enums => {
                                text.push_str(&format!("{}({n}) ", b.label));
                            }
                            _ => text.push_str(&format!("{n} ")),
                        }
                    }
                }
                text
            }
            SnmpValue::OctetString(bytes) if !hint.is_empty() => {
                match hint::format_octets(hint, bytes) {
                    Some(text) => format!("STRING: {text}"),
                    None => net_snmp_value(value),
                }
            }
            SnmpValue::Gauge32(n) if !hint.is_empty() => {
                match hint::format_integer(hint, i64::from(*n)) {
                    Some(text) => with_units(format!("Gauge32: {text}")),
                    None => with_units(net_snmp_value(value)),
                }
            }
            SnmpValue::Counter32(_)
            | SnmpValue::Gauge32(_)
            | SnmpValue::Counter64(_)
            | SnmpValue::TimeTicks(_) => with_units(net_snmp_value(value)),
            _ => net_snmp_value(value),
        }
    }
}

/// The type the MIB wants, as net-snmp names it, when `value` is not of it; `None` when it
/// is (or when there is nothing to compare: an exception, an unusual base type).
fn wrong_type(base: mib_rs::BaseType, value: &SnmpValue) -> Option<&'static str> {
    use mib_rs::BaseType as B;
    use SnmpValue as V;
    if matches!(
        value,
        V::Null | V::NoSuchObject | V::NoSuchInstance | V::EndOfMibView
    ) {
        return None;
    }
    let (expected, fits) = match base {
        B::Integer32 => ("INTEGER", matches!(value, V::Integer(_))),
        B::Unsigned32 | B::Gauge32 => ("Gauge32 or Unsigned32", matches!(value, V::Gauge32(_))),
        B::Counter32 => ("Counter32", matches!(value, V::Counter32(_))),
        B::Counter64 => ("Counter64", matches!(value, V::Counter64(_))),
        B::TimeTicks => ("Timeticks", matches!(value, V::TimeTicks(_))),
        B::IpAddress => ("IpAddress", matches!(value, V::IpAddress(_))),
        B::OctetString => ("OCTET STRING", matches!(value, V::OctetString(_))),
        B::Bits => ("BITS", matches!(value, V::OctetString(_))),
        B::ObjectIdentifier => ("OBJECT IDENTIFIER", matches!(value, V::ObjectIdentifier(_))),
        B::Opaque => ("Opaque", matches!(value, V::Opaque(_))),
        _ => return None,
    };
    (!fits).then_some(expected)
}
