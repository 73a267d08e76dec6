//! Numbers written the way Python's `repr` writes them, because the original consumer
//! formats field values with `{!r}` and dashboards were built on what that produced.
//!
//! Integers are plain decimals. Floats use the shortest digits that read back to the same
//! value (Ryu finds those, with the same tie-breaking as Python), laid out by Python's
//! rules: plain notation with at least one decimal (`2.0`, `0.0001`) while the decimal
//! exponent is in -4..16, otherwise `1e+16`, `1.5e-05` (sign and at least two exponent
//! digits).

use std::io::Write as _;

const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends an integer in decimal.
pub fn write_int(value: i128, out: &mut Vec<u8>) {
    if let Ok(small) = i64::try_from(value) {
        if small < 0 {
            out.push(b'-');
        }
        return write_u64(small.unsigned_abs(), out);
    }
    // Beyond 64 bits (rare: octets x 8 of a 64-bit counter): the general path.
    let _ = write!(out, "{value}");
}

fn write_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a float as Python's `repr(float)` does.
pub fn write_float(value: f64, out: &mut Vec<u8>) {
    if value.is_nan() {
        return out.extend_from_slice(b"nan");
    }
    if value.is_infinite() {
        let text: &[u8] = if value > 0.0 { b"inf" } else { b"-inf" };
        return out.extend_from_slice(text);
    }
    // Integral values of moderate size are the common case (rates of idle counters): skip
    // the digit search.
    if value.fract() == 0.0 && value.abs() < 1e15 {
        if value == 0.0 && value.is_sign_negative() {
            out.push(b'-');
        }
        write_int(value as i128, out);
        return out.extend_from_slice(b".0");
    }
    // Ryu finds the shortest digits that read back to `value`, and among equally short
    // ones the closest, ties to even: what Python's repr (David Gay's dtoa) picks. Its
    // layout differs (`1e16`, `0.00001`), so take the digits and the point position from
    // it and lay them out Python's way.
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value).as_bytes();
    // Ryu's plain notation (`12.34`, `0.001234`, `1234.0`) is Python's too, except at
    // 10^-5 (`0.0000123`), where Python switches to `1.23e-05`.
    let unsigned = text.strip_prefix(b"-").unwrap_or(text);
    if !text.contains(&b'e') && !unsigned.starts_with(b"0.0000") {
        return out.extend_from_slice(text);
    }
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
        Some(e) => (&text[..e], parse_exponent(&text[e + 1..])),
        None => (text, 0),
    };
    // value = 0.DIGITS x 10^decpt
    let mut digits = [0u8; 32];
    let (mut n, mut before_point, mut seen_point) = (0usize, 0i32, false);
    for &b in mantissa {
        if b == b'.' {
            seen_point = true;
        } else if n < digits.len() {
            digits[n] = b;
            n += 1;
            if !seen_point {
                before_point += 1;
            }
        }
    }
    let mut digits = &digits[..n];
    let mut decpt = before_point + exponent;
    while let Some((b'0', rest)) = digits.split_first() {
        digits = rest;
        decpt -= 1;
    }
    while let Some((b'0', rest)) = digits.split_last() {
        digits = rest;
    }
    if digits.is_empty() {
        // Not reached (zero is integral), but keep the output a number.
        return out.extend_from_slice(b"0.0");
    }
    if negative {
        out.push(b'-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let exponent = decpt - 1;
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        write_u64(magnitude.into(), out);
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', decpt.unsigned_abs() as usize));
        out.extend_from_slice(digits);
    } else {
        let decpt = decpt as usize;
        if decpt >= digits.len() {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', decpt - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..decpt]);
            out.push(b'.');
            out.extend_from_slice(&digits[decpt..]);
        }
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i32, |n, &b| {
            n.saturating_mul(10).saturating_add(i32::from(b - b'0'))
        });
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(x: f64) -> String {
        let mut out = Vec::new();
        write_float(x, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn int(x: i128) -> String {
        let mut out = Vec::new();
        write_int(x, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    // The tie cases are written with their exact binary values on purpose.
    #[allow(clippy::excessive_precision)]
    fn floats_as_python_repr() {
        // Each right-hand side is what CPython 3 prints for `repr(x)`.
        for (x, python) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-2.0, "-2.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (0.0000123, "1.23e-05"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e100, "1e+100"),
            (1e-100, "1e-100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.30000000000000004, "0.30000000000000004"),
            (2.0 / 3.0, "0.6666666666666666"),
            (1234.5678, "1234.5678"),
            (16.67, "16.67"),
            // Shortest-digit ties go to the even digit, as in Python.
            (1059438285926254.25, "1059438285926254.2"),
            (-1425502010969177.25, "-1425502010969177.2"),
            (26363981746409.3125, "26363981746409.312"),
            (-108868734838530.125, "-108868734838530.12"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(float(x), python, "repr({x:?})");
        }
    }

    #[test]
    fn ints_as_python_repr() {
        for (x, python) in [
            (0i128, "0"),
            (7, "7"),
            (-7, "-7"),
            (10, "10"),
            (99, "99"),
            (100, "100"),
            (29771896789864, "29771896789864"),
            (i64::MIN as i128, "-9223372036854775808"),
            (u64::MAX as i128, "18446744073709551615"),
            (237543529719488000000, "237543529719488000000"),
        ] {
            assert_eq!(int(x), python);
        }
    }

    proptest::proptest! {
        #[test]
        fn floats_read_back_exactly(bits in proptest::num::u64::ANY) {
            let x = f64::from_bits(bits);
            proptest::prop_assume!(x.is_finite());
            let text = float(x);
            let back: f64 = text.parse().unwrap();
            proptest::prop_assert_eq!(back.to_bits(), x.to_bits(), "{}", text);
        }

        #[test]
        fn ints_match_display(x in proptest::num::i128::ANY) {
            proptest::prop_assert_eq!(int(x), x.to_string());
        }
    }
}
