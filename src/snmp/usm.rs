//! USM cryptography (RFC 3414, RFC 3826, RFC 7860): passphrase to key, key
//! localization, HMAC authentication, DES-CBC and AES-CFB privacy.
//!
//! Why ours and not snmp2's: snmp2 keeps its v3 message code crate-private and
//! client-only (an agent cannot answer with it), and it hashes the passphrase
//! (a megabyte of input) again for every session. Here the passphrase hash is
//! computed once per passphrase ([`KeyCache`]) and only the cheap localization
//! runs per device, so ten thousand devices sharing credentials cost one hash.
//! The same functions serve the client and the simulator's agent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use des::Des;
use hmac::{Hmac, Mac};
use sha2::Digest;

use super::credentials::{AuthProtocol, PrivProtocol, Secret, UsmUser};

/// Hash of `parts` concatenated.
fn hash(protocol: AuthProtocol, parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut digest = D::new();
        for part in parts {
            digest.update(part);
        }
        digest.finalize().to_vec()
    }
    match protocol {
        AuthProtocol::Md5 => run::<md5::Md5>(parts),
        AuthProtocol::Sha1 => run::<sha1::Sha1>(parts),
        AuthProtocol::Sha224 => run::<sha2::Sha224>(parts),
        AuthProtocol::Sha256 => run::<sha2::Sha256>(parts),
        AuthProtocol::Sha384 => run::<sha2::Sha384>(parts),
        AuthProtocol::Sha512 => run::<sha2::Sha512>(parts),
    }
}

/// RFC 3414 A.2: hash one megabyte of the passphrase repeated (Ku).
pub fn password_to_key(protocol: AuthProtocol, passphrase: &[u8]) -> Vec<u8> {
    fn run<D: Digest>(passphrase: &[u8]) -> Vec<u8> {
        let mut digest = D::new();
        if passphrase.is_empty() {
            return digest.finalize().to_vec();
        }
        // One period of the repeated passphrase, long enough to slice any
        // 64-byte block out of it.
        let period: Vec<u8> = passphrase
            .iter()
            .copied()
            .cycle()
            .take(64 + passphrase.len())
            .collect();
        let mut index = 0;
        for _ in 0..(1_048_576 / 64) {
            digest.update(&period[index..index + 64]);
            index = (index + 64) % passphrase.len();
        }
        digest.finalize().to_vec()
    }
    match protocol {
        AuthProtocol::Md5 => run::<md5::Md5>(passphrase),
        AuthProtocol::Sha1 => run::<sha1::Sha1>(passphrase),
        AuthProtocol::Sha224 => run::<sha2::Sha224>(passphrase),
        AuthProtocol::Sha256 => run::<sha2::Sha256>(passphrase),
        AuthProtocol::Sha384 => run::<sha2::Sha384>(passphrase),
        AuthProtocol::Sha512 => run::<sha2::Sha512>(passphrase),
    }
}

/// RFC 3414 A.2: Kul = H(Ku || engineID || Ku).
pub fn localize(protocol: AuthProtocol, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
    hash(protocol, &[ku, engine_id, ku])
}

/// The localized privacy key, extended when the cipher needs more bytes than
/// the hash gives (AES-192/256 with MD5 or SHA-1, AES-256 with SHA-224), the
/// way net-snmp does it (draft-blumenthal-aes-usm-04 3.1.2.1: append the hash
/// of the key so far).
pub fn privacy_key(auth: AuthProtocol, privacy: PrivProtocol, kul: &[u8]) -> Vec<u8> {
    let mut key = kul.to_vec();
    while key.len() < privacy.key_len() {
        let more = hash(auth, &[&key]);
        key.extend_from_slice(&more);
    }
    key.truncate(privacy.key_len());
    key
}

/// HMAC of `message` with the localized key, truncated as the protocol says.
pub fn mac(protocol: AuthProtocol, key: &[u8], message: &[u8]) -> Vec<u8> {
    macro_rules! run {
        ($digest:ty, $key:expr, $message:expr) => {
            // HMAC takes keys of any length; the error arm cannot happen.
            match <Hmac<$digest> as Mac>::new_from_slice($key) {
                Ok(mut m) => {
                    m.update($message);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        };
    }
    let mut full = match protocol {
        AuthProtocol::Md5 => run!(md5::Md5, key, message),
        AuthProtocol::Sha1 => run!(sha1::Sha1, key, message),
        AuthProtocol::Sha224 => run!(sha2::Sha224, key, message),
        AuthProtocol::Sha256 => run!(sha2::Sha256, key, message),
        AuthProtocol::Sha384 => run!(sha2::Sha384, key, message),
        AuthProtocol::Sha512 => run!(sha2::Sha512, key, message),
    };
    full.truncate(protocol.mac_len());
    full
}

/// Compares without an early exit, so timing does not reveal how much matched.
pub fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivacyError {
    #[error("privacy parameters must be 8 bytes, found {0}")]
    BadSalt(usize),
    #[error("DES ciphertext length {0} is not a multiple of 8")]
    BadLength(usize),
    #[error("privacy key is {found} bytes, the cipher needs {needed}")]
    ShortKey { found: usize, needed: usize },
}

/// A fresh 64-bit salt per encryption (RFC 3826 3.1.2.1), from a counter that
/// starts at a random value so restarts do not reuse IVs.
fn next_salt() -> u64 {
    static SALT: OnceLock<AtomicU64> = OnceLock::new();
    SALT.get_or_init(|| AtomicU64::new(rand::random()))
        .fetch_add(1, Ordering::Relaxed)
}

/// Encrypts a scoped PDU; returns (ciphertext, msgPrivacyParameters).
/// `boots`/`time` are the authoritative engine's, as carried in the message.
pub fn encrypt(
    protocol: PrivProtocol,
    key: &[u8],
    boots: u32,
    time: u32,
    plain: &[u8],
) -> Result<(Vec<u8>, [u8; 8]), PrivacyError> {
    if key.len() < protocol.key_len() {
        return Err(PrivacyError::ShortKey {
            found: key.len(),
            needed: protocol.key_len(),
        });
    }
    let salt = next_salt();
    match protocol {
        PrivProtocol::Des => {
            // RFC 3414 8.1.1.1: salt = boots || local counter; IV = pre-IV xor salt.
            let mut params = [0u8; 8];
            params[..4].copy_from_slice(&boots.to_be_bytes());
            params[4..].copy_from_slice(&(salt as u32).to_be_bytes());
            let iv = des_iv(key, &params);
            let mut buf = plain.to_vec();
            buf.resize(plain.len().div_ceil(8) * 8, 0);
            let len = buf.len();
            cbc::Encryptor::<Des>::new_from_slices(&key[..8], &iv)
                .map_err(|_| PrivacyError::ShortKey {
                    found: key.len(),
                    needed: 16,
                })?
                .encrypt_padded_mut::<NoPadding>(&mut buf, len)
                .map_err(|_| PrivacyError::BadLength(len))?;
            Ok((buf, params))
        }
        PrivProtocol::Aes128 | PrivProtocol::Aes192 | PrivProtocol::Aes256 => {
            let params = salt.to_be_bytes();
            let iv = aes_iv(boots, time, &params);
            let mut buf = plain.to_vec();
            aes_cfb(protocol, &key[..protocol.key_len()], &iv, &mut buf, true);
            Ok((buf, params))
        }
    }
}

/// Decrypts the encrypted scoped PDU of a message.
pub fn decrypt(
    protocol: PrivProtocol,
    key: &[u8],
    boots: u32,
    time: u32,
    params: &[u8],
    cipher: &[u8],
) -> Result<Vec<u8>, PrivacyError> {
    let params: [u8; 8] = params
        .try_into()
        .map_err(|_| PrivacyError::BadSalt(params.len()))?;
    if key.len() < protocol.key_len() {
        return Err(PrivacyError::ShortKey {
            found: key.len(),
            needed: protocol.key_len(),
        });
    }
    let mut buf = cipher.to_vec();
    match protocol {
        PrivProtocol::Des => {
            if !buf.len().is_multiple_of(8) {
                return Err(PrivacyError::BadLength(buf.len()));
            }
            let iv = des_iv(key, &params);
            cbc::Decryptor::<Des>::new_from_slices(&key[..8], &iv)
                .map_err(|_| PrivacyError::ShortKey {
                    found: key.len(),
                    needed: 16,
                })?
                .decrypt_padded_mut::<NoPadding>(&mut buf)
                .map_err(|_| PrivacyError::BadLength(cipher.len()))?;
        }
        PrivProtocol::Aes128 | PrivProtocol::Aes192 | PrivProtocol::Aes256 => {
            let iv = aes_iv(boots, time, &params);
            aes_cfb(protocol, &key[..protocol.key_len()], &iv, &mut buf, false);
        }
    }
    Ok(buf)
}

fn des_iv(key: &[u8], params: &[u8; 8]) -> [u8; 8] {
    let mut iv = [0u8; 8];
    for (i, byte) in iv.iter_mut().enumerate() {
        *byte = key[8 + i] ^ params[i];
    }
    iv
}

/// RFC 3826 3.1.2.1: IV = boots || time || salt.
fn aes_iv(boots: u32, time: u32, params: &[u8; 8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(params);
    iv
}

fn aes_cfb(protocol: PrivProtocol, key: &[u8], iv: &[u8; 16], buf: &mut [u8], encrypt: bool) {
    macro_rules! run {
        ($cipher:ty) => {
            if encrypt {
                if let Ok(c) = cfb_mode::Encryptor::<$cipher>::new_from_slices(key, iv) {
                    c.encrypt(buf);
                }
            } else if let Ok(c) = cfb_mode::Decryptor::<$cipher>::new_from_slices(key, iv) {
                c.decrypt(buf);
            }
        };
    }
    match protocol {
        PrivProtocol::Aes192 => run!(Aes192),
        PrivProtocol::Aes256 => run!(Aes256),
        _ => run!(Aes128),
    }
}

/// A user's keys localized to one engine.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalizedKeys {
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    pub privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl std::fmt::Debug for LocalizedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalizedKeys")
            .field("auth", &self.auth.as_ref().map(|(p, _)| p))
            .field("privacy", &self.privacy.as_ref().map(|(p, _)| p))
            .finish()
    }
}

/// Ku per (protocol, passphrase): the expensive megabyte hash, done once.
/// Bounded: past `MAX_ENTRIES` distinct passphrases it is cleared (a config
/// with that many passphrases is unusual; correctness does not depend on it).
#[derive(Default, Clone)]
pub struct KeyCache {
    inner: Arc<Mutex<KuByPassphrase>>,
}

type KuByPassphrase = HashMap<(AuthProtocol, Secret), Arc<Vec<u8>>>;

const MAX_ENTRIES: usize = 4096;

impl KeyCache {
    pub fn ku(&self, protocol: AuthProtocol, passphrase: &Secret) -> Arc<Vec<u8>> {
        let key = (protocol, passphrase.clone());
        if let Ok(map) = self.inner.lock() {
            if let Some(found) = map.get(&key) {
                return Arc::clone(found);
            }
        }
        let ku = Arc::new(password_to_key(protocol, passphrase.expose().as_bytes()));
        if let Ok(mut map) = self.inner.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, Arc::clone(&ku));
        }
        ku
    }

    /// `user`'s keys for the engine `engine_id`.
    pub fn localize(&self, user: &UsmUser, engine_id: &[u8]) -> LocalizedKeys {
        let Some((auth, auth_pass)) = &user.auth else {
            return LocalizedKeys {
                auth: None,
                privacy: None,
            };
        };
        let auth_key = localize(*auth, &self.ku(*auth, auth_pass), engine_id);
        let privacy = user.privacy.as_ref().map(|(privacy, pass)| {
            let kul = localize(*auth, &self.ku(*auth, pass), engine_id);
            (*privacy, privacy_key(*auth, *privacy, &kul))
        });
        LocalizedKeys {
            auth: Some((*auth, auth_key)),
            privacy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 3414 A.3.1 / A.3.2 test vectors ("maplesyrup", engine 00..02).
    #[test]
    fn rfc3414_key_vectors() {
        let engine = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let ku = password_to_key(AuthProtocol::Md5, b"maplesyrup");
        assert_eq!(hex(&ku), "9faf3283884e92834ebc9847d8edd963");
        assert_eq!(
            hex(&localize(AuthProtocol::Md5, &ku, &engine)),
            "526f5eed9fcce26f8964c2930787d82b"
        );
        let ku = password_to_key(AuthProtocol::Sha1, b"maplesyrup");
        assert_eq!(hex(&ku), "9fb5cc0381497b3793528939ff788d5d79145211");
        assert_eq!(
            hex(&localize(AuthProtocol::Sha1, &ku, &engine)),
            "6695febc9288e36282235fc7151f128497b38f3f"
        );
    }

    #[test]
    fn privacy_round_trips_for_every_cipher() {
        let kul = localize(
            AuthProtocol::Sha1,
            &password_to_key(AuthProtocol::Sha1, b"privpass1"),
            b"engine",
        );
        for protocol in PrivProtocol::ALL {
            let key = privacy_key(AuthProtocol::Sha1, protocol, &kul);
            assert_eq!(key.len(), protocol.key_len());
            for len in [0usize, 1, 7, 8, 9, 100] {
                let plain: Vec<u8> = (0..len as u8).collect();
                let (cipher, params) = encrypt(protocol, &key, 3, 99, &plain).unwrap();
                let back = decrypt(protocol, &key, 3, 99, &params, &cipher).unwrap();
                assert_eq!(&back[..len], &plain[..], "{protocol:?} {len}");
            }
        }
        assert_eq!(
            decrypt(PrivProtocol::Des, &[0; 16], 0, 0, &[0; 8], &[0; 7])
                .unwrap_err()
                .to_string(),
            "DES ciphertext length 7 is not a multiple of 8"
        );
        assert_eq!(
            decrypt(PrivProtocol::Aes128, &[0; 16], 0, 0, &[0; 7], &[0; 7])
                .unwrap_err()
                .to_string(),
            "privacy parameters must be 8 bytes, found 7"
        );
        assert_eq!(
            encrypt(PrivProtocol::Aes256, &[0; 16], 0, 0, b"x")
                .unwrap_err()
                .to_string(),
            "privacy key is 16 bytes, the cipher needs 32"
        );
    }

    #[test]
    fn macs_have_protocol_lengths_and_detect_changes() {
        for protocol in AuthProtocol::ALL {
            let key = localize(protocol, &password_to_key(protocol, b"authpass1"), b"e");
            let a = mac(protocol, &key, b"message");
            assert_eq!(a.len(), protocol.mac_len());
            assert!(same_mac(&a, &mac(protocol, &key, b"message")));
            assert!(!same_mac(&a, &mac(protocol, &key, b"messagf")));
        }
    }

    #[test]
    fn key_cache_hashes_each_passphrase_once() {
        let cache = KeyCache::default();
        let user = UsmUser::no_auth("u")
            .with_auth(AuthProtocol::Sha256, "authpass1")
            .with_privacy(PrivProtocol::Aes256, "privpass1");
        let a = cache.localize(&user, b"one");
        let b = cache.localize(&user, b"two");
        assert_ne!(a, b);
        assert_eq!(a, cache.localize(&user, b"one"));
        assert_eq!(cache.inner.lock().unwrap().len(), 2);
        assert!(!format!("{a:?}").contains('['));
    }
}
