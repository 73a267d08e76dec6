//! FNV-1a, 64 bits: a fast, stable hash for placing things (a counter's simulated speed, a
//! resource's work partition, a key's place in its interval). Stable across runs, machines
//! and Rust versions, unlike `DefaultHasher`; not for anything an attacker picks inputs
//! of to collide.

//!
//! The implementation is the `fnv` crate's, used the same way by the actors crate (a
//! key's place in its interval) and the storage crate (long topic names' directories).

use std::hash::Hasher;

/// FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

/// FNV-1a of several byte strings one after the other (the same as of their
/// concatenation).
pub fn fnv1a_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h = fnv::FnvHasher::default();
    for part in parts {
        h.write(part);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        // Reference values of FNV-1a 64 (Fowler, Noll, Vo).
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            super::fnv1a_parts([&b"foo"[..], &b""[..], &b"bar"[..]]),
            0x8594_4171_f739_67e8
        );
    }
}
