//! Where and how to poll one device: address, credentials, timing, bulk sizes.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::credentials::UsmUser;

/// An SNMP community string. It is a password in all but name, so `Debug` and
/// `Display` print `***`; call [`Community::expose`] where the bytes must go on the wire.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Community(String);

impl Community {
    pub fn new(secret: impl Into<String>) -> Community {
        Community(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Community {
    fn from(secret: String) -> Community {
        Community(secret)
    }
}

impl From<&str> for Community {
    fn from(secret: &str) -> Community {
        Community(secret.to_string())
    }
}

impl fmt::Debug for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// SNMP protocol versions. Configuration names them "1", "2c" or "3" (a bare
/// number too, as environment overrides arrive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SnmpVersion {
    V1,
    #[default]
    V2c,
    V3,
}

impl<'de> Deserialize<'de> for SnmpVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SnmpVersion, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(n) => n.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A text that names no SNMP version (the name as given, trimmed and lowercased).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SNMP version {0:?} (expected 1, 2c or 3)")]
pub struct UnknownVersion(pub String);

impl std::str::FromStr for SnmpVersion {
    type Err = UnknownVersion;

    fn from_str(text: &str) -> Result<SnmpVersion, UnknownVersion> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "v1" => Ok(SnmpVersion::V1),
            "2" | "2c" | "v2c" | "v2" => Ok(SnmpVersion::V2c),
            "3" | "v3" => Ok(SnmpVersion::V3),
            other => Err(UnknownVersion(other.to_owned())),
        }
    }
}

impl fmt::Display for SnmpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnmpVersion::V1 => "v1",
            SnmpVersion::V2c => "v2c",
            SnmpVersion::V3 => "v3",
        })
    }
}

/// One device to poll. `timeout` applies to each attempt; a request is tried
/// `retries + 1` times in all. v1 and v2c use `community`; v3 uses `usm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnmpTarget {
    pub host: String,
    pub port: u16,
    pub version: SnmpVersion,
    pub community: Community,
    /// The v3 user (required when `version` is v3).
    pub usm: Option<UsmUser>,
    /// The v3 context name requests carry (empty: the default context).
    pub context: String,
    pub timeout: Duration,
    pub retries: u32,
    pub max_repetitions: u32,
    pub non_repeaters: u32,
}

impl SnmpTarget {
    /// Panoptes' defaults: port 161, 5 s timeout, 1 retry, 25 repetitions per GETBULK.
    pub fn new(host: impl Into<String>, community: Community) -> SnmpTarget {
        SnmpTarget {
            host: host.into(),
            port: 161,
            version: SnmpVersion::V2c,
            community,
            usm: None,
            context: String::new(),
            timeout: Duration::from_secs(5),
            retries: 1,
            max_repetitions: 25,
            non_repeaters: 0,
        }
    }

    /// A v3 target with Panoptes' defaults.
    pub fn v3(host: impl Into<String>, user: UsmUser) -> SnmpTarget {
        let mut target = SnmpTarget::new(host, Community::new(""));
        target.version = SnmpVersion::V3;
        target.usm = Some(user);
        target
    }

    /// `host:port` (IPv6 hosts bracketed), the name errors and logs use for this device.
    pub fn label(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_never_prints() {
        let c = Community::from("s3cret".to_string());
        assert_eq!(format!("{c}"), "***");
        assert_eq!(format!("{c:?}"), "***");
        assert_eq!(c.expose(), "s3cret");
        let target = SnmpTarget::new("10.0.0.1", c);
        assert!(!format!("{target:?}").contains("s3cret"));
    }

    #[test]
    fn community_deserializes_from_string() {
        let c: Community = serde_json::from_str("\"public\"").unwrap();
        assert_eq!(c.expose(), "public");
    }

    #[test]
    fn labels() {
        let mut t = SnmpTarget::new("10.0.0.1", Community::from("x"));
        assert_eq!(t.label(), "10.0.0.1:161");
        t.host = "::1".into();
        assert_eq!(t.label(), "[::1]:161");
    }

    #[test]
    fn version_names() {
        let v: SnmpVersion = serde_json::from_str("\"2c\"").unwrap();
        assert_eq!(v, SnmpVersion::V2c);
        let v: SnmpVersion = serde_json::from_str("\"v3\"").unwrap();
        assert_eq!(v, SnmpVersion::V3);
        assert_eq!(SnmpVersion::default().to_string(), "v2c");
    }
}
