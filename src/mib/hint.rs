//! DISPLAY-HINTs (RFC 2579 §3.1) applied the way net-snmp applies them, so `panoptes walk`
//! prints what `snmpbulkwalk` prints: hex without zero padding (`0:c:29:ab`), `d-2` as
//! `12.34`. mib-rs has its own formatter, but it pads hex to two digits.

/// An INTEGER under an integer hint (`d`, `d-N`, `x`, `o`, `b`); `None` for a hint that
/// is not one.
pub fn format_integer(hint: &str, value: i64) -> Option<String> {
    let mut chars = hint.chars();
    let format = chars.next()?;
    let rest = chars.as_str();
    match (format, rest) {
        ('d', "") => Some(value.to_string()),
        ('d', places) => {
            let places: usize = places.strip_prefix('-')?.parse().ok()?;
            if places == 0 || places > 20 {
                return Some(value.to_string());
            }
            // net-snmp moves the point into the printed number: no leading zero
            // (`.5`), and a sign it does not step over (`-.5`, `.-5`).
            let text = value.to_string();
            Some(if places <= text.len() {
                let (whole, fraction) = text.split_at(text.len() - places);
                format!("{whole}.{fraction}")
            } else {
                format!(".{}{text}", "0".repeat(places - text.len()))
            })
        }
        ('x', "") => Some(format!("{value:x}")),
        ('o', "") => Some(format!("{value:o}")),
        ('b', "") => Some(format!("{value:b}")),
        _ => None,
    }
}

/// One octet-format specification: `[*]LENGTH FORMAT [SEPARATOR [TERMINATOR]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    repeat: bool,
    length: usize,
    format: char,
    separator: Option<char>,
    terminator: Option<char>,
}

fn parse_octet_hint(hint: &str) -> Option<Vec<Spec>> {
    let chars: Vec<char> = hint.chars().collect();
    let mut specs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let repeat = chars[i] == '*';
        if repeat {
            i += 1;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let length: usize = chars[start..i].iter().collect::<String>().parse().ok()?;
        let format = *chars.get(i)?;
        if !matches!(format, 'x' | 'd' | 'o' | 'a' | 't') {
            return None;
        }
        i += 1;
        let is_separator = |c: char| !c.is_ascii_digit() && c != '*';
        let separator = chars.get(i).copied().filter(|&c| is_separator(c));
        if separator.is_some() {
            i += 1;
        }
        let terminator = if repeat {
            chars.get(i).copied().filter(|&c| is_separator(c))
        } else {
            None
        };
        if terminator.is_some() {
            i += 1;
        }
        specs.push(Spec {
            repeat,
            length,
            format,
            separator,
            terminator,
        });
    }
    (!specs.is_empty()).then_some(specs)
}

/// An OCTET STRING under an octet-string hint; `None` for a hint that is not one.
/// Text (`a`, `t`) is copied byte for byte as net-snmp copies it, so UTF-8 prints as
/// itself; bytes that are not UTF-8 become U+FFFD (net-snmp writes them raw).
pub fn format_octets(hint: &str, data: &[u8]) -> Option<String> {
    let specs = parse_octet_hint(hint)?;
    let mut out: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut index = 0;
    while at < data.len() {
        // The last specification applies to whatever is left.
        let spec = &specs[index.min(specs.len() - 1)];
        index += 1;
        let repeats = if spec.repeat {
            let count = usize::from(data[at]);
            at += 1;
            count
        } else {
            1
        };
        for r in 0..repeats {
            if at >= data.len() {
                break;
            }
            let end = (at + spec.length.max(1)).min(data.len());
            let chunk = &data[at..end];
            at = end;
            match spec.format {
                'a' | 't' => out.extend_from_slice(chunk),
                _ => {
                    // A chunk cut short by the end of the data counts as if padded
                    // with zero bytes, as net-snmp reads it (`05` under `2x` is `500`).
                    let value = chunk
                        .iter()
                        .copied()
                        .chain(std::iter::repeat(0))
                        .take(spec.length.clamp(1, 8))
                        .fold(0u64, |acc, b| (acc << 8) | u64::from(b));
                    let text = match spec.format {
                        'x' => format!("{value:x}"),
                        'o' => format!("{value:o}"),
                        _ => value.to_string(),
                    };
                    out.extend_from_slice(text.as_bytes());
                }
            }
            let last_of_repeat = spec.repeat && r + 1 == repeats;
            if at < data.len() && !(last_of_repeat && spec.terminator.is_some()) {
                if let Some(separator) = spec.separator {
                    push_char(&mut out, separator);
                }
            }
        }
        if let (true, Some(terminator)) = (spec.repeat, spec.terminator) {
            if at < data.len() {
                push_char(&mut out, terminator);
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_net_snmp_prints_them() {
        assert_eq!(format_integer("d-1", 235).as_deref(), Some("23.5"));
        // net-snmp's quirks, as snmpbulkwalk prints them.
        assert_eq!(format_integer("d-2", 5).as_deref(), Some(".05"));
        assert_eq!(format_integer("d-1", -5).as_deref(), Some("-.5"));
        assert_eq!(format_integer("d-2", -5).as_deref(), Some(".-5"));
        assert_eq!(format_integer("d", -7).as_deref(), Some("-7"));
        assert_eq!(format_integer("x", 255).as_deref(), Some("ff"));
        assert_eq!(format_integer("255a", 1), None);
    }

    #[test]
    fn octets_as_net_snmp_prints_them() {
        // PhysAddress: hex without zero padding.
        assert_eq!(
            format_octets("1x:", &[0, 0x0c, 0x29, 0xab, 0xcd, 0x0e]).as_deref(),
            Some("0:c:29:ab:cd:e")
        );
        assert_eq!(format_octets("255a", b"eth0").as_deref(), Some("eth0"));
        assert_eq!(
            format_octets("255a", "café".as_bytes()).as_deref(),
            Some("café")
        );
        assert_eq!(
            format_octets("255a", b"a\xffb").as_deref(),
            Some("a\u{fffd}b")
        );
        assert_eq!(format_octets("255a", b"").as_deref(), Some(""));
        // InetAddressIPv4 and a date: several specifications, the last one repeats.
        assert_eq!(
            format_octets("1d.1d.1d.1d", &[10, 0, 0, 1]).as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            format_octets("2d-1d-1d,1d:1d:1d.1d", &[0x07, 0xea, 1, 2, 3, 4, 5, 6]).as_deref(),
            Some("2026-1-2,3:4:5.6")
        );
        assert_eq!(
            format_octets("2x-", &[1, 2, 3, 4]).as_deref(),
            Some("102-304")
        );
        // A repeat count, a separator and a terminator.
        assert_eq!(
            format_octets("*1d.;1a", &[2, 7, 8, b'z']).as_deref(),
            Some("7.8;z")
        );
        assert_eq!(format_octets("1q", &[1]), None);
        assert_eq!(format_octets("", &[1]), None);
    }
}
