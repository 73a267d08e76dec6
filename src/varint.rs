//! LEB128 varints (7 bits a byte, low bits first), for compact in-memory records.

/// Appends `v`: 1 byte under 128, at most 10.
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Why a varint could not be read; `*at` is then where reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// `data` ends inside it.
    Ends,
    /// It runs past 64 bits (ten bytes, each with the continuation bit).
    TooLong,
}

/// The varint at `*at`, moving `*at` past what it read.
pub fn read(data: &[u8], at: &mut usize) -> Result<u64, ReadError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*at).ok_or(ReadError::Ends)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(ReadError::TooLong)
}

/// `to - from` as a varint-friendly number (zigzag: small either way), for any two
/// `u64`s; [`add_difference`] undoes it.
pub fn difference(from: u64, to: u64) -> u64 {
    let d = to.wrapping_sub(from) as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

/// `from` plus a [`difference`].
pub fn add_difference(from: u64, z: u64) -> u64 {
    let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
    from.wrapping_add(d as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_and_ends() {
        let mut out = Vec::new();
        for v in [0, 127, 128, 16_383, 16_384, u64::MAX] {
            out.clear();
            put(&mut out, v);
            let want = match v {
                0..=127 => 1,
                128..=16_383 => 2,
                16_384 => 3,
                _ => 10,
            };
            assert_eq!(out.len(), want, "{v}");
        }
        // Cut short, or an 11th byte: no number, and where reading stopped.
        let mut at = 0;
        assert_eq!(read(&[0x80, 0x80], &mut at), Err(ReadError::Ends));
        assert_eq!(at, 2);
        at = 0;
        assert_eq!(read(&[0xff; 11], &mut at), Err(ReadError::TooLong));
        assert_eq!(at, 10);
        assert_eq!(difference(10, 7), 5);
        assert_eq!(difference(7, 10), 6);
    }

    proptest! {
        #[test]
        fn what_is_put_is_read_back(values in proptest::collection::vec(any::<u64>(), 0..20),
                                    from in any::<u64>()) {
            let mut out = Vec::new();
            for &v in &values {
                put(&mut out, v);
            }
            let mut at = 0;
            for &v in &values {
                prop_assert_eq!(read(&out, &mut at), Ok(v));
                prop_assert_eq!(add_difference(from, difference(from, v)), v);
            }
            prop_assert_eq!(at, out.len());
        }
    }
}
