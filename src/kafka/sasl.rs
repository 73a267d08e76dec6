//! SASL on the broker: which mechanisms a listener offers, the users it knows, and one
//! connection's exchange from SaslHandshake to a principal.
//!
//! Two framings reach the same exchange (KIP-152): after SaslHandshake v1 every token
//! comes in a SaslAuthenticate request and goes back in its answer; after SaslHandshake
//! v0 (older clients) the tokens are bare size-prefixed frames, and a failure is told by
//! closing the connection. librdkafka (kcat, confluent-kafka), kafka-python 2.x and the
//! Java client all use v1 when the broker offers it, as ours does.
//!
//! Passwords come from the secrets file and stay in [`Secret`]s; for SCRAM only the
//! salted keys are kept, derived once at start.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::scram::{ClientFirst, ScramHash, ServerExchange, StoredCredentials, ITERATIONS};
use crate::secret::Secret;

/// A SASL mechanism we serve and speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn scram(self) -> Option<ScramHash> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha512 => Some(ScramHash::Sha512),
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SASL mechanism name this broker does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SASL mechanism {0:?}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")]
pub struct UnknownMechanism(pub String);

impl TryFrom<String> for Mechanism {
    type Error = UnknownMechanism;

    fn try_from(name: String) -> Result<Mechanism, UnknownMechanism> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Mechanism::Plain),
            "SCRAM-SHA-256" => Ok(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(Mechanism::ScramSha512),
            _ => Err(UnknownMechanism(name)),
        }
    }
}

/// One user's credentials: the password for PLAIN, salted keys for SCRAM.
struct User {
    password: Secret,
    sha256: StoredCredentials,
    sha512: StoredCredentials,
}

/// What a SASL listener offers and whom it knows.
pub struct SaslServer {
    mechanisms: Vec<Mechanism>,
    users: BTreeMap<String, User>,
    /// Salts for unknown users are derived from this, so asking twice for the same
    /// unknown name gets the same salt (a known user's salt never changes either).
    decoy_key: [u8; 32],
}

impl fmt::Debug for SaslServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslServer")
            .field("mechanisms", &self.mechanisms)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SaslServer {
    /// Derives every user's SCRAM keys (PBKDF2, 4096 rounds: a few milliseconds each).
    pub fn new(mechanisms: Vec<Mechanism>, users: &BTreeMap<String, Secret>) -> SaslServer {
        let users = users
            .iter()
            .map(|(name, password)| {
                let salt: [u8; 16] = rand::random();
                let derive = |hash| {
                    StoredCredentials::derive(hash, password.expose(), salt.to_vec(), ITERATIONS)
                };
                let user = User {
                    password: password.clone(),
                    sha256: derive(ScramHash::Sha256),
                    sha512: derive(ScramHash::Sha512),
                };
                (name.clone(), user)
            })
            .collect();
        SaslServer {
            mechanisms,
            users,
            decoy_key: rand::random(),
        }
    }

    pub fn mechanisms(&self) -> &[Mechanism] {
        &self.mechanisms
    }

    /// The mechanism a SaslHandshake names, if this listener offers it.
    pub fn offered(&self, name: &str) -> Option<Mechanism> {
        Mechanism::try_from(name.to_owned())
            .ok()
            .filter(|m| self.mechanisms.contains(m))
    }

    fn credentials(&self, hash: ScramHash, user: &str) -> StoredCredentials {
        match self.users.get(user) {
            Some(u) if hash == ScramHash::Sha256 => u.sha256.clone(),
            Some(u) => u.sha512.clone(),
            None => {
                use hmac::Mac;
                let salt = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.decoy_key)
                    .map(|m| m.chain_update(user.as_bytes()).finalize().into_bytes()[..16].to_vec())
                    .unwrap_or_default();
                StoredCredentials::impossible(hash, salt)
            }
        }
    }

    /// PLAIN (RFC 4616): `authzid NUL authcid NUL password`.
    fn plain(&self, token: &[u8]) -> Result<String, SaslFailure> {
        let mut parts = token.split(|b| *b == 0);
        let (authzid, user, password) = match (parts.next(), parts.next(), parts.next()) {
            (Some(z), Some(u), Some(p)) if parts.next().is_none() => (z, u, p),
            _ => {
                return Err(SaslFailure::Malformed(
                    "a PLAIN token is `authzid NUL user NUL password`".into(),
                ))
            }
        };
        let user = std::str::from_utf8(user)
            .map_err(|_| SaslFailure::Malformed("the user name is not UTF-8".into()))?;
        if !authzid.is_empty() && authzid != user.as_bytes() {
            return Err(SaslFailure::Malformed(
                "an authorization id other than the user".into(),
            ));
        }
        // Compared in constant time; an unknown user costs the same comparison.
        let stored = self.users.get(user).map(|u| u.password.expose().as_bytes());
        let equal: bool = password.ct_eq(stored.unwrap_or(&[0xff; 16])).into();
        if equal && stored.is_some() {
            Ok(user.to_owned())
        } else {
            Err(SaslFailure::BadCredentials {
                mechanism: Mechanism::Plain,
                user: user.to_owned(),
            })
        }
    }
}

/// Why authentication failed. The `Display` text is what the client is told; it never
/// says whether the user exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslFailure {
    #[error("Authentication failed: invalid username or password (SASL mechanism {mechanism})")]
    BadCredentials { mechanism: Mechanism, user: String },
    #[error("Authentication failed: malformed SASL message: {0}")]
    Malformed(String),
}

/// Where one connection's exchange stands.
pub enum Exchange {
    /// Waiting for the client's first token.
    Start(Mechanism),
    /// SCRAM: the server's first message was sent; waiting for the proof.
    Scram(Box<ServerExchange>, Mechanism),
}

/// What a token leads to.
#[derive(Debug)]
pub enum Step {
    /// Send this token and wait for the next one.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send this last token.
    Done { user: String, token: Vec<u8> },
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exchange::Start(m) => write!(f, "Start({m})"),
            Exchange::Scram(_, m) => write!(f, "Scram({m}, ***)"),
        }
    }
}

impl Exchange {
    /// Takes the client's next token.
    pub fn step(
        self,
        server: &SaslServer,
        token: &[u8],
    ) -> Result<(Step, Option<Exchange>), SaslFailure> {
        match self {
            Exchange::Start(Mechanism::Plain) => {
                let user = server.plain(token)?;
                Ok((
                    Step::Done {
                        user,
                        token: Vec::new(),
                    },
                    None,
                ))
            }
            Exchange::Start(mechanism) => {
                let hash = mechanism.scram().ok_or_else(|| {
                    SaslFailure::Malformed(format!("{mechanism} is not a SCRAM mechanism"))
                })?;
                let first =
                    ClientFirst::parse(token).map_err(|e| SaslFailure::Malformed(e.to_string()))?;
                let credentials = server.credentials(hash, &first.user);
                let (exchange, reply) = ServerExchange::start(hash, first, credentials);
                Ok((
                    Step::Continue(reply),
                    Some(Exchange::Scram(Box::new(exchange), mechanism)),
                ))
            }
            Exchange::Scram(exchange, mechanism) => {
                let user = exchange.user().to_owned();
                match exchange.finish(token) {
                    // An unknown user's impossible keys fail here too.
                    Ok(reply) if server.users.contains_key(&user) => {
                        Ok((Step::Done { user, token: reply }, None))
                    }
                    Ok(_) | Err(super::scram::ScramError::BadProof) => {
                        Err(SaslFailure::BadCredentials { mechanism, user })
                    }
                    Err(e) => Err(SaslFailure::Malformed(e.to_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::scram::ClientExchange;

    fn server() -> SaslServer {
        let users = BTreeMap::from([("alice".to_string(), Secret::new("wonder land"))]);
        SaslServer::new(
            vec![
                Mechanism::Plain,
                Mechanism::ScramSha256,
                Mechanism::ScramSha512,
            ],
            &users,
        )
    }

    #[test]
    fn plain_checks_the_password() {
        let s = server();
        let (step, next) = Exchange::Start(Mechanism::Plain)
            .step(&s, b"\0alice\0wonder land")
            .unwrap();
        assert!(next.is_none());
        assert!(matches!(step, Step::Done { user, .. } if user == "alice"));
        for bad in [
            &b"\0alice\0wonder"[..],
            b"\0bob\0wonder land",
            b"alice\0alice\0x",
        ] {
            let err = Exchange::Start(Mechanism::Plain).step(&s, bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                "Authentication failed: invalid username or password (SASL mechanism PLAIN)"
            );
        }
        let err = Exchange::Start(Mechanism::Plain)
            .step(&s, b"no separators")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Authentication failed: malformed SASL message: a PLAIN token is `authzid NUL user NUL password`"
        );
    }

    #[test]
    fn scram_needs_the_right_password_and_a_known_user() {
        let s = server();
        for (mechanism, hash) in [
            (Mechanism::ScramSha256, ScramHash::Sha256),
            (Mechanism::ScramSha512, ScramHash::Sha512),
        ] {
            for (user, password, ok) in [
                ("alice", "wonder land", true),
                ("alice", "wrong", false),
                ("mallory", "wonder land", false),
            ] {
                let (mut client, first) = ClientExchange::start(hash, user, password);
                let (step, next) = Exchange::Start(mechanism).step(&s, &first).unwrap();
                let Step::Continue(server_first) = step else {
                    panic!("SCRAM continues after the first message")
                };
                let client_final = client.respond(&server_first).unwrap();
                match next.unwrap().step(&s, &client_final) {
                    Ok((Step::Done { user, token }, None)) => {
                        assert!(ok, "{user}");
                        client.verify(&token).unwrap();
                    }
                    Ok(other) => panic!("{:?}", other.0),
                    Err(e) => {
                        assert!(!ok);
                        assert_eq!(
                            e.to_string(),
                            format!("Authentication failed: invalid username or password (SASL mechanism {mechanism})")
                        );
                    }
                }
            }
        }
        // The same unknown name gets the same salt twice: nothing tells it apart.
        let salt = |s: &SaslServer| s.credentials(ScramHash::Sha256, "mallory").salt;
        assert_eq!(salt(&s), salt(&s));
        assert!(
            !format!("{s:?}").contains("wonder"),
            "the password never prints"
        );
    }

    #[test]
    fn mechanisms_parse_by_name() {
        assert_eq!(
            Mechanism::try_from("scram-sha-512".to_string()),
            Ok(Mechanism::ScramSha512)
        );
        let unknown = Mechanism::try_from("GSSAPI".to_string()).unwrap_err();
        assert_eq!(unknown, UnknownMechanism("GSSAPI".into()));
        assert_eq!(
            unknown.to_string(),
            "SASL mechanism \"GSSAPI\": expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        );
        let s = server();
        assert_eq!(s.offered("SCRAM-SHA-256"), Some(Mechanism::ScramSha256));
        assert_eq!(s.offered("OAUTHBEARER"), None);
    }
}
