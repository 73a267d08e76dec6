//! Values printed the way net-snmp's tools print them with `-On` and no MIBs,
//! so `panoptes walk` output can be compared with `snmpbulkwalk` line by line.

use super::{Oid, SnmpValue, Varbind};

/// One output line (it may span several lines for long hex strings), without
/// the final newline: `.1.3.6.1.2.1.1.5.0 = STRING: "sw1"`.
pub fn net_snmp_line(varbind: &Varbind) -> String {
    format!(
        "{} = {}",
        varbind.oid.to_dotted_leading(),
        net_snmp_value(&varbind.value)
    )
}

/// The line net-snmp prints when a walk runs off the end of the MIB.
pub fn end_of_mib_line(name: &Oid) -> String {
    format!(
        "{} = No more variables left in this MIB View (It is past the end of the MIB tree)",
        name.to_dotted_leading()
    )
}

pub fn net_snmp_value(value: &SnmpValue) -> String {
    match value {
        SnmpValue::Integer(n) => format!("INTEGER: {n}"),
        SnmpValue::OctetString(bytes) if bytes.is_empty() => "\"\"".to_string(),
        SnmpValue::OctetString(bytes) if bytes.iter().all(|&b| printable(b)) => {
            let mut text = String::with_capacity(bytes.len() + 10);
            text.push_str("STRING: \"");
            for &b in bytes {
                if b == b'"' || b == b'\\' {
                    text.push('\\');
                }
                text.push(char::from(b));
            }
            text.push('"');
            text
        }
        SnmpValue::OctetString(bytes) => format!("Hex-STRING: {}", hex(bytes)),
        SnmpValue::ObjectIdentifier(oid) => format!("OID: {}", oid.to_dotted_leading()),
        SnmpValue::IpAddress([a, b, c, d]) => format!("IpAddress: {a}.{b}.{c}.{d}"),
        SnmpValue::Counter32(n) => format!("Counter32: {n}"),
        SnmpValue::Gauge32(n) => format!("Gauge32: {n}"),
        SnmpValue::TimeTicks(n) => format!("Timeticks: ({n}) {}", uptime(*n)),
        SnmpValue::Counter64(n) => format!("Counter64: {n}"),
        SnmpValue::Opaque(bytes) => opaque(bytes),
        SnmpValue::Null => "NULL".to_string(),
        SnmpValue::NoSuchObject => "No Such Object available on this agent at this OID".to_string(),
        SnmpValue::NoSuchInstance => "No Such Instance currently exists at this OID".to_string(),
        SnmpValue::EndOfMibView => {
            "No more variables left in this MIB View (It is past the end of the MIB tree)"
                .to_string()
        }
    }
}

/// C's `isprint || isspace` in the C locale, net-snmp's test for text.
fn printable(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) || matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `XX ` per byte, sixteen to a line.
fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| line.iter().map(|b| format!("{b:02X} ")).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `D days, H:MM:SS.cc` as net-snmp writes TimeTicks.
fn uptime(ticks: u32) -> String {
    let centis = ticks % 100;
    let seconds = ticks / 100;
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match days {
        0 => format!("{hours}:{minutes:02}:{secs:02}.{centis:02}"),
        1 => format!("1 day, {hours}:{minutes:02}:{secs:02}.{centis:02}"),
        _ => format!("{days} days, {hours}:{minutes:02}:{secs:02}.{centis:02}"),
    }
}

/// Opaque: net-snmp decodes the float and double wrappings (RFC draft
/// "opaque types": 9f 78 = float, 9f 79 = double), else hex.
fn opaque(bytes: &[u8]) -> String {
    match bytes {
        [0x9f, 0x78, 4, f @ ..] if f.len() == 4 => {
            let value = f32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            format!("Opaque: Float: {value:.6}")
        }
        [0x9f, 0x79, 8, d @ ..] if d.len() == 8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(d);
            format!("Opaque: Double: {:.6}", f64::from_be_bytes(raw))
        }
        _ => format!("OPAQUE: {}", hex(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(value: SnmpValue) -> String {
        net_snmp_line(&Varbind::new(Oid::from([1, 3, 6]), value))
    }

    #[test]
    fn formats_like_net_snmp() {
        assert_eq!(line(SnmpValue::Integer(-42)), ".1.3.6 = INTEGER: -42");
        assert_eq!(line(SnmpValue::OctetString(vec![])), ".1.3.6 = \"\"");
        assert_eq!(
            line(SnmpValue::OctetString(b"say \"hi\" \\ x\t".to_vec())),
            ".1.3.6 = STRING: \"say \\\"hi\\\" \\\\ x\t\""
        );
        assert_eq!(
            line(SnmpValue::OctetString(b"abc\0".to_vec())),
            ".1.3.6 = Hex-STRING: 61 62 63 00 "
        );
        let twenty: Vec<u8> = (0..20).collect();
        assert_eq!(
            net_snmp_value(&SnmpValue::OctetString(twenty)),
            "Hex-STRING: 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F \n10 11 12 13 "
        );
        assert_eq!(
            net_snmp_value(&SnmpValue::TimeTicks(123_456_789)),
            "Timeticks: (123456789) 14 days, 6:56:07.89"
        );
        assert_eq!(
            net_snmp_value(&SnmpValue::TimeTicks(8_640_000)),
            "Timeticks: (8640000) 1 day, 0:00:00.00"
        );
        assert_eq!(
            net_snmp_value(&SnmpValue::TimeTicks(0)),
            "Timeticks: (0) 0:00:00.00"
        );
        assert_eq!(
            net_snmp_value(&SnmpValue::Opaque(vec![0x9f, 0x78, 4, 0x42, 0xf6, 0, 0])),
            "Opaque: Float: 123.000000"
        );
        assert_eq!(
            net_snmp_value(&SnmpValue::Opaque(vec![0xc0])),
            "OPAQUE: C0 "
        );
        assert_eq!(
            net_snmp_value(&SnmpValue::ObjectIdentifier(Oid::from([1, 3, 6]))),
            "OID: .1.3.6"
        );
    }
}
