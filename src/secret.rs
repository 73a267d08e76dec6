//! A secret from configuration (SNMP v3 passphrases, InfluxDB token and password): it
//! prints `***` in `Debug` and `Display`, so settings, errors and logs can be formatted
//! freely without leaking it. [`Secret::expose`] is the one way to the value, used where it
//! goes on the wire or is hashed into a key.

use std::fmt;

use serde::{Deserialize, Deserializer};

#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: call this only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Secret {
        Secret(secret.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// `url` with any credentials in it (`scheme://user:password@host`) replaced by `***`,
/// for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, Secret};

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(redact_url("https://u:p@db:8086/x"), "https://***@db:8086/x");
        assert_eq!(redact_url("http://token@db"), "http://***@db");
        assert_eq!(redact_url("http://db:8086/a@b"), "http://db:8086/a@b");
        assert_eq!(redact_url("http://db:8086"), "http://db:8086");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("s3cr3t-token");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "s3cr3t-token");
    }
}
