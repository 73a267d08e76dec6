//! Who we are to an agent: v3 users with their protocols and passphrases, held in
//! types that never print a secret.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

pub use crate::secret::Secret;

/// USM authentication protocols (RFC 3414 MD5/SHA-1, RFC 7860 SHA-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// USM privacy protocols (RFC 3414 DES, RFC 3826 AES-128, and the AES-192/256
/// variants net-snmp and most vendors ship).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum PrivProtocol {
    Des,
    Aes128,
    Aes192,
    Aes256,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} protocol {given:?} (expected one of {expected})")]
pub struct ProtocolParseError {
    kind: &'static str,
    given: String,
    expected: &'static str,
}

impl AuthProtocol {
    pub const ALL: [AuthProtocol; 6] = [
        AuthProtocol::Md5,
        AuthProtocol::Sha1,
        AuthProtocol::Sha224,
        AuthProtocol::Sha256,
        AuthProtocol::Sha384,
        AuthProtocol::Sha512,
    ];

    /// The name net-snmp's `-a` takes.
    pub fn name(self) -> &'static str {
        match self {
            AuthProtocol::Md5 => "MD5",
            AuthProtocol::Sha1 => "SHA",
            AuthProtocol::Sha224 => "SHA-224",
            AuthProtocol::Sha256 => "SHA-256",
            AuthProtocol::Sha384 => "SHA-384",
            AuthProtocol::Sha512 => "SHA-512",
        }
    }

    /// Bytes of the truncated HMAC carried in msgAuthenticationParameters.
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }
}

/// `sha-256`, `SHA_256` and `SHA256` all name the same protocol.
fn protocol_key(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_uppercase()
}

impl FromStr for AuthProtocol {
    type Err = ProtocolParseError;

    fn from_str(text: &str) -> Result<AuthProtocol, ProtocolParseError> {
        Ok(match protocol_key(text).as_str() {
            "MD5" => AuthProtocol::Md5,
            "SHA" | "SHA1" => AuthProtocol::Sha1,
            "SHA224" => AuthProtocol::Sha224,
            "SHA256" => AuthProtocol::Sha256,
            "SHA384" => AuthProtocol::Sha384,
            "SHA512" => AuthProtocol::Sha512,
            _ => {
                return Err(ProtocolParseError {
                    kind: "authentication",
                    given: text.to_string(),
                    expected: "MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512",
                })
            }
        })
    }
}

impl TryFrom<String> for AuthProtocol {
    type Error = ProtocolParseError;
    fn try_from(text: String) -> Result<AuthProtocol, ProtocolParseError> {
        text.parse()
    }
}

impl fmt::Display for AuthProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PrivProtocol {
    pub const ALL: [PrivProtocol; 4] = [
        PrivProtocol::Des,
        PrivProtocol::Aes128,
        PrivProtocol::Aes192,
        PrivProtocol::Aes256,
    ];

    /// The name net-snmp's `-x` takes.
    pub fn name(self) -> &'static str {
        match self {
            PrivProtocol::Des => "DES",
            PrivProtocol::Aes128 => "AES",
            PrivProtocol::Aes192 => "AES-192",
            PrivProtocol::Aes256 => "AES-256",
        }
    }

    /// Key bytes the cipher needs (DES: 8 key + 8 pre-IV).
    pub fn key_len(self) -> usize {
        match self {
            PrivProtocol::Des | PrivProtocol::Aes128 => 16,
            PrivProtocol::Aes192 => 24,
            PrivProtocol::Aes256 => 32,
        }
    }
}

impl FromStr for PrivProtocol {
    type Err = ProtocolParseError;

    fn from_str(text: &str) -> Result<PrivProtocol, ProtocolParseError> {
        Ok(match protocol_key(text).as_str() {
            "DES" => PrivProtocol::Des,
            "AES" | "AES128" => PrivProtocol::Aes128,
            "AES192" => PrivProtocol::Aes192,
            "AES256" => PrivProtocol::Aes256,
            _ => {
                return Err(ProtocolParseError {
                    kind: "privacy",
                    given: text.to_string(),
                    expected: "DES, AES, AES-192, AES-256",
                })
            }
        })
    }
}

impl TryFrom<String> for PrivProtocol {
    type Error = ProtocolParseError;
    fn try_from(text: String) -> Result<PrivProtocol, ProtocolParseError> {
        text.parse()
    }
}

impl fmt::Display for PrivProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 3411 securityLevel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityLevel {
    NoAuthNoPriv,
    AuthNoPriv,
    AuthPriv,
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityLevel::NoAuthNoPriv => "noAuthNoPriv",
            SecurityLevel::AuthNoPriv => "authNoPriv",
            SecurityLevel::AuthPriv => "authPriv",
        })
    }
}

/// A v3 user: its name, and the protocols and passphrases of its level.
/// Privacy without authentication does not exist in USM, so `privacy` is only
/// used when `auth` is set.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct UsmUser {
    pub name: String,
    pub auth: Option<(AuthProtocol, Secret)>,
    pub privacy: Option<(PrivProtocol, Secret)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserSpecError {
    #[error("v3 user {0:?}: expected NAME[:AUTH:AUTHPASS[:PRIV:PRIVPASS]]")]
    Shape(String),
    #[error("v3 user {user:?}: {source}")]
    Protocol {
        user: String,
        #[source]
        source: ProtocolParseError,
    },
    #[error("v3 user {0:?}: passphrases must be at least 8 characters (RFC 3414 11.2)")]
    ShortPassphrase(String),
}

/// Why a user's protocol names and passphrases, as configuration writes them, make no
/// v3 user. Each configuration names its own keys in the message it makes of this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserPartsError {
    #[error(transparent)]
    AuthProtocol(ProtocolParseError),
    #[error("an authentication protocol needs its passphrase")]
    AuthPassphraseMissing,
    #[error("privacy needs authentication")]
    PrivacyWithoutAuth,
    #[error(transparent)]
    PrivProtocol(ProtocolParseError),
    #[error("a privacy protocol needs its passphrase")]
    PrivPassphraseMissing,
    #[error(transparent)]
    Passphrase(UserSpecError),
}

impl UsmUser {
    /// A user from configured protocol names (`None`: that level is off) and their
    /// passphrases (`None`: not given), checked in this order: the authentication
    /// protocol, its passphrase, privacy without authentication, the privacy protocol, its
    /// passphrase, then [`UsmUser::check`].
    pub fn from_parts(
        name: &str,
        auth: Option<(&str, Option<Secret>)>,
        privacy: Option<(&str, Option<Secret>)>,
    ) -> Result<UsmUser, UserPartsError> {
        let mut user = UsmUser::no_auth(name);
        if let Some((protocol, passphrase)) = auth {
            let protocol: AuthProtocol = protocol.parse().map_err(UserPartsError::AuthProtocol)?;
            let passphrase = passphrase.ok_or(UserPartsError::AuthPassphraseMissing)?;
            user = user.with_auth(protocol, passphrase);
        }
        if let Some((protocol, passphrase)) = privacy {
            if user.auth.is_none() {
                return Err(UserPartsError::PrivacyWithoutAuth);
            }
            let protocol: PrivProtocol = protocol.parse().map_err(UserPartsError::PrivProtocol)?;
            let passphrase = passphrase.ok_or(UserPartsError::PrivPassphraseMissing)?;
            user = user.with_privacy(protocol, passphrase);
        }
        user.check().map_err(UserPartsError::Passphrase)?;
        Ok(user)
    }

    pub fn no_auth(name: impl Into<String>) -> UsmUser {
        UsmUser {
            name: name.into(),
            auth: None,
            privacy: None,
        }
    }

    pub fn with_auth(mut self, protocol: AuthProtocol, passphrase: impl Into<Secret>) -> UsmUser {
        self.auth = Some((protocol, passphrase.into()));
        self
    }

    pub fn with_privacy(
        mut self,
        protocol: PrivProtocol,
        passphrase: impl Into<Secret>,
    ) -> UsmUser {
        self.privacy = Some((protocol, passphrase.into()));
        self
    }

    pub fn level(&self) -> SecurityLevel {
        match (&self.auth, &self.privacy) {
            (None, _) => SecurityLevel::NoAuthNoPriv,
            (Some(_), None) => SecurityLevel::AuthNoPriv,
            (Some(_), Some(_)) => SecurityLevel::AuthPriv,
        }
    }

    /// `NAME`, `NAME:AUTH:AUTHPASS` or `NAME:AUTH:AUTHPASS:PRIV:PRIVPASS`, the
    /// simulator's `--v3-user`. Passphrases may not contain `:`.
    pub fn parse_spec(spec: &str) -> Result<UsmUser, UserSpecError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let name = parts.first().copied().unwrap_or_default();
        if name.is_empty() || !matches!(parts.len(), 1 | 3 | 5) {
            return Err(UserSpecError::Shape(name.to_string()));
        }
        let protocol_error = |source| UserSpecError::Protocol {
            user: name.to_string(),
            source,
        };
        let mut user = UsmUser::no_auth(name);
        if parts.len() >= 3 {
            let protocol: AuthProtocol = parts[1].parse().map_err(protocol_error)?;
            user = user.with_auth(protocol, Secret::from(parts[2]));
        }
        if parts.len() == 5 {
            let protocol: PrivProtocol = parts[3].parse().map_err(protocol_error)?;
            user = user.with_privacy(protocol, Secret::from(parts[4]));
        }
        user.check()?;
        Ok(user)
    }

    /// Passphrases shorter than 8 characters are refused by RFC 3414 and net-snmp.
    pub fn check(&self) -> Result<(), UserSpecError> {
        let short = |s: &Secret| s.expose().len() < 8;
        if self.auth.as_ref().is_some_and(|(_, s)| short(s))
            || self.privacy.as_ref().is_some_and(|(_, s)| short(s))
        {
            return Err(UserSpecError::ShortPassphrase(self.name.clone()));
        }
        if self.privacy.is_some() && self.auth.is_none() {
            return Err(UserSpecError::Shape(self.name.clone()));
        }
        Ok(())
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Secret {
        Secret::new(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_like_net_snmp_names() {
        assert_eq!("SHA".parse::<AuthProtocol>().unwrap(), AuthProtocol::Sha1);
        assert_eq!(
            "sha-256".parse::<AuthProtocol>().unwrap(),
            AuthProtocol::Sha256
        );
        assert_eq!("AES".parse::<PrivProtocol>().unwrap(), PrivProtocol::Aes128);
        assert_eq!(
            "AES256".parse::<PrivProtocol>().unwrap(),
            PrivProtocol::Aes256
        );
        let e = "SHA3".parse::<AuthProtocol>().unwrap_err().to_string();
        assert!(e.contains("SHA3") && e.contains("SHA-256"), "{e}");
        for p in AuthProtocol::ALL {
            assert_eq!(p.name().parse::<AuthProtocol>().unwrap(), p);
        }
        for p in PrivProtocol::ALL {
            assert_eq!(p.name().parse::<PrivProtocol>().unwrap(), p);
        }
    }

    #[test]
    fn user_specs_and_secrets_never_print() {
        let u = UsmUser::parse_spec("ops:SHA-256:authpass1:AES:privpass1").unwrap();
        assert_eq!(u.level(), SecurityLevel::AuthPriv);
        let shown = format!("{u:?}");
        assert!(!shown.contains("authpass1") && !shown.contains("privpass1"));
        assert!(shown.contains("ops") && shown.contains("Sha256"));
        assert_eq!(
            UsmUser::parse_spec("ro").unwrap().level(),
            SecurityLevel::NoAuthNoPriv
        );
        let refused = |spec| UsmUser::parse_spec(spec).unwrap_err().to_string();
        assert_eq!(
            refused("ro:MD5"),
            "v3 user \"ro\": expected NAME[:AUTH:AUTHPASS[:PRIV:PRIVPASS]]"
        );
        assert_eq!(
            refused("ro:MD5:short"),
            "v3 user \"ro\": passphrases must be at least 8 characters (RFC 3414 11.2)"
        );
        assert_eq!(
            refused(":MD5:longenough"),
            "v3 user \"\": expected NAME[:AUTH:AUTHPASS[:PRIV:PRIVPASS]]"
        );
        let e = UsmUser::parse_spec("x:MD4:longenough")
            .unwrap_err()
            .to_string();
        assert!(e.contains("MD4"), "{e}");
    }

    #[test]
    fn users_from_configured_parts_say_what_is_wrong_in_order() {
        let pass = || Some(Secret::from("passphrase-1"));
        let user =
            UsmUser::from_parts("ops", Some(("SHA-256", pass())), Some(("AES", pass()))).unwrap();
        assert_eq!(user.level(), SecurityLevel::AuthPriv);
        assert_eq!(
            UsmUser::from_parts("ops", None, None).unwrap().level(),
            SecurityLevel::NoAuthNoPriv
        );
        let err = |auth, privacy| UsmUser::from_parts("ops", auth, privacy).unwrap_err();
        assert!(matches!(
            err(Some(("SHA-999", None)), None),
            UserPartsError::AuthProtocol(_)
        ));
        assert_eq!(
            err(Some(("SHA", None)), Some(("AES", pass()))),
            UserPartsError::AuthPassphraseMissing
        );
        assert_eq!(
            err(None, Some(("AES", None))),
            UserPartsError::PrivacyWithoutAuth
        );
        assert_eq!(
            err(Some(("SHA", pass())), Some(("AES", None))),
            UserPartsError::PrivPassphraseMissing
        );
        assert_eq!(
            err(Some(("SHA", Some(Secret::from("short")))), None).to_string(),
            "v3 user \"ops\": passphrases must be at least 8 characters (RFC 3414 11.2)"
        );
    }
}
