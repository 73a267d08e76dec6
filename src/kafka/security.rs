//! What a Kafka connection requires (Kafka's four `security.protocol`s), what a listener
//! offers, and whether a listener may be bound where it is: anywhere off loopback it must
//! authenticate its clients, unless the operator says otherwise in so many words.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;

use super::sasl::{Mechanism, SaslServer};

/// Kafka's `security.protocol`, for our listener (`kafka.security`) and for our client
/// (`kafka.client_security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    SaslPlaintext,
    Ssl,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

/// The listener's security, built at start from settings and the secrets file.
#[derive(Clone, Default)]
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub sasl: Option<Arc<SaslServer>>,
}

impl std::fmt::Debug for ListenerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSecurity")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl ListenerSecurity {
    /// The SASL mechanisms offered (none without SASL).
    pub fn mechanisms(&self) -> &[Mechanism] {
        self.sasl.as_deref().map_or(&[], SaslServer::mechanisms)
    }
}

/// A listener that would let anyone on the network act on the node's topics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "kafka.listen = {listen} is not a loopback address, and kafka.security = \"{}\" authenticates \
     nobody: anyone who can reach it could read this node's metrics and write to its \
     topics. Set kafka.security = \"sasl_ssl\" (or \"sasl_plaintext\") with users in the \
     secrets file, bind kafka.listen to 127.0.0.1, or set kafka.allow_insecure = true to \
     accept the risk", protocol.name()
)]
pub struct Exposed {
    pub listen: SocketAddr,
    pub protocol: SecurityProtocol,
}

/// Refuses a listener off loopback without authentication (unless `allow_insecure`); the
/// warnings to log at start for one that is allowed but weak.
pub fn check_exposure(
    listen: SocketAddr,
    protocol: SecurityProtocol,
    mechanisms: &[Mechanism],
    allow_insecure: bool,
) -> Result<Vec<String>, Exposed> {
    if listen.ip().is_loopback() {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    if !protocol.sasl() {
        if !allow_insecure {
            return Err(Exposed { listen, protocol });
        }
        warnings.push(format!(
            "the Kafka listener on {listen} authenticates nobody (kafka.security = \"{}\", \
             kafka.allow_insecure = true): anyone who can reach it reads this node's topics, \
             and writes to every topic kafka.default_operations allows",
            protocol.name()
        ));
    }
    if protocol == SecurityProtocol::SaslPlaintext && mechanisms.contains(&Mechanism::Plain) {
        warnings.push(format!(
            "the Kafka listener on {listen} takes SASL PLAIN without TLS: passwords cross the \
             network in the clear (use kafka.security = \"sasl_ssl\", or SCRAM only)"
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn off_loopback_a_listener_must_authenticate_or_say_it_need_not() {
        assert_eq!(
            check_exposure(
                addr("127.0.0.1:9092"),
                SecurityProtocol::Plaintext,
                &[],
                false
            ),
            Ok(vec![])
        );
        assert_eq!(
            check_exposure(addr("[::1]:9092"), SecurityProtocol::Ssl, &[], false),
            Ok(vec![])
        );
        let err = check_exposure(addr("0.0.0.0:9092"), SecurityProtocol::Ssl, &[], false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "kafka.listen = 0.0.0.0:9092 is not a loopback address, and kafka.security = \"ssl\" authenticates nobody"
            ),
            "{err}"
        );
        let warnings =
            check_exposure(addr("0.0.0.0:9092"), SecurityProtocol::Plaintext, &[], true).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("authenticates nobody"), "{warnings:?}");
        assert_eq!(
            check_exposure(
                addr("10.0.0.1:9093"),
                SecurityProtocol::SaslSsl,
                &[Mechanism::Plain],
                false
            ),
            Ok(vec![])
        );
        let warnings = check_exposure(
            addr("10.0.0.1:9093"),
            SecurityProtocol::SaslPlaintext,
            &[Mechanism::Plain, Mechanism::ScramSha512],
            false,
        )
        .unwrap();
        assert!(warnings[0].contains("in the clear"), "{warnings:?}");
    }
}
