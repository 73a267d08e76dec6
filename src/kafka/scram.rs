//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), both sides: the broker checks a
//! client's proof against stored keys, and our client for an external cluster proves its
//! own password. No channel binding (Kafka uses none: the GS2 header is `n,,`).
//!
//! The broker keeps only the salted keys, derived from the secrets file at start: a
//! proof is checked with two HMACs and a hash, never by recomputing PBKDF2 per login.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Iterations of PBKDF2 for the keys the broker derives (Kafka's minimum, and what its
/// tools use by default).
pub const ITERATIONS: u32 = 4096;
/// A server asking more than this is refused by our client (as kafka-python does).
const MAX_ITERATIONS: u32 = 1_000_000;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length: `new_from_slice` cannot fail.
        match self {
            ScramHash::Sha256 => Hmac::<Sha256>::new_from_slice(key)
                .map(|m| m.chain_update(message).finalize().into_bytes().to_vec())
                .unwrap_or_default(),
            ScramHash::Sha512 => Hmac::<Sha512>::new_from_slice(key)
                .map(|m| m.chain_update(message).finalize().into_bytes().to_vec())
                .unwrap_or_default(),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this hash's HMAC.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// What the broker stores for one user and one mechanism.
#[derive(Clone)]
pub struct StoredCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredCredentials(***)")
    }
}

impl StoredCredentials {
    pub fn derive(hash: ScramHash, password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        StoredCredentials {
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// Keys no proof can match, for a user that does not exist: the exchange goes on to
    /// the end and fails there, so a client cannot tell unknown users from wrong
    /// passwords.
    pub fn impossible(hash: ScramHash, salt: Vec<u8>) -> Self {
        let random: [u8; 32] = rand::random();
        StoredCredentials {
            stored_key: hash.hash(&random),
            server_key: random.to_vec(),
            salt,
            iterations: ITERATIONS,
        }
    }
}

/// Why a SCRAM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    #[error("invalid credentials")]
    BadProof,
    #[error("the server's signature does not match: it does not know this password")]
    BadServerSignature,
    #[error("SCRAM server error: {0}")]
    Server(String),
}

fn malformed(what: impl Into<String>) -> ScramError {
    ScramError::Malformed(what.into())
}

/// `a=b,c=d` attributes, in order; a value may hold `=`.
fn attributes(message: &str) -> Result<Vec<(char, &str)>, ScramError> {
    message
        .split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) => Ok((k, &part[2..])),
                _ => Err(malformed(format!("attribute {part:?} is not `x=value`"))),
            }
        })
        .collect()
}

fn attribute<'a>(attrs: &[(char, &'a str)], key: char) -> Result<&'a str, ScramError> {
    attrs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .ok_or_else(|| malformed(format!("no `{key}=` attribute")))
}

/// A user name as SCRAM writes it: `=2C` for `,` and `=3D` for `=`.
fn decode_name(saslname: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed("a user name with a bad `=` escape")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn encode_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn nonce() -> String {
    let bytes: [u8; 18] = rand::random();
    B64.encode(bytes)
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// The client's first message, read by the broker.
#[derive(Debug)]
pub struct ClientFirst {
    pub user: String,
    gs2_header: String,
    bare: String,
    nonce: String,
}

impl ClientFirst {
    pub fn parse(token: &[u8]) -> Result<ClientFirst, ScramError> {
        let text = std::str::from_utf8(token).map_err(|_| malformed("not UTF-8"))?;
        // gs2-header: cbind flag, authzid, then the bare message.
        let mut parts = text.splitn(3, ',');
        let (flag, authzid, bare) = match (parts.next(), parts.next(), parts.next()) {
            (Some(f), Some(a), Some(b)) => (f, a, b),
            _ => return Err(malformed("no GS2 header")),
        };
        if flag.starts_with("p=") {
            return Err(malformed("channel binding is not supported"));
        }
        if flag != "n" && flag != "y" {
            return Err(malformed(format!("GS2 flag {flag:?}")));
        }
        let attrs = attributes(bare)?;
        let user = decode_name(attribute(&attrs, 'n')?)?;
        if !authzid.is_empty() && decode_name(authzid.trim_start_matches("a="))? != user {
            return Err(malformed("an authorization id other than the user"));
        }
        let nonce = attribute(&attrs, 'r')?;
        if nonce.is_empty() {
            return Err(malformed("an empty nonce"));
        }
        Ok(ClientFirst {
            user,
            gs2_header: format!("{flag},{authzid},"),
            bare: bare.to_owned(),
            nonce: nonce.to_owned(),
        })
    }
}

/// The broker's side of one exchange, after the client's first message.
pub struct ServerExchange {
    hash: ScramHash,
    credentials: StoredCredentials,
    first: ClientFirst,
    server_first: String,
    nonce: String,
}

impl ServerExchange {
    /// Answers `first` with the salt and iterations of `credentials` (the user's, or
    /// impossible ones for an unknown user).
    pub fn start(
        hash: ScramHash,
        first: ClientFirst,
        credentials: StoredCredentials,
    ) -> (ServerExchange, Vec<u8>) {
        let nonce = format!("{}{}", first.nonce, self::nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credentials.salt),
            credentials.iterations
        );
        let token = server_first.clone().into_bytes();
        (
            ServerExchange {
                hash,
                credentials,
                first,
                server_first,
                nonce,
            },
            token,
        )
    }

    pub fn user(&self) -> &str {
        &self.first.user
    }

    /// Checks the client's proof; the answer is the server's final message.
    pub fn finish(&self, token: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(token).map_err(|_| malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("no proof (`p=`)"))?;
        let attrs = attributes(without_proof)?;
        let binding = B64
            .decode(attribute(&attrs, 'c')?)
            .map_err(|_| malformed("channel binding is not base64"))?;
        if binding != self.first.gs2_header.as_bytes() {
            return Err(malformed("channel binding differs from the GS2 header"));
        }
        // librdkafka writes its own nonce again in front of the agreed one
        // (`r=<client nonce><client nonce><server part>`); Kafka's broker accepts a nonce
        // that ends with the agreed one, and so do we: the server part still binds it.
        let nonce = attribute(&attrs, 'r')?;
        if !(nonce.starts_with(&self.first.nonce) && nonce.ends_with(&self.nonce)) {
            return Err(malformed("the nonce differs from the one agreed"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| malformed("the proof is not base64"))?;
        let auth_message = format!("{},{},{without_proof}", self.first.bare, self.server_first);
        let signature = self
            .hash
            .hmac(&self.credentials.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::BadProof);
        }
        let client_key = xor(&proof, &signature);
        let matches: bool = self
            .hash
            .hash(&client_key)
            .ct_eq(&self.credentials.stored_key)
            .into();
        if !matches {
            return Err(ScramError::BadProof);
        }
        let server_signature = self
            .hash
            .hmac(&self.credentials.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// Our client's side of one exchange.
pub struct ClientExchange {
    hash: ScramHash,
    password: String,
    bare: String,
    nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl ClientExchange {
    /// The exchange and the client's first message.
    pub fn start(hash: ScramHash, user: &str, password: &str) -> (ClientExchange, Vec<u8>) {
        let nonce = nonce();
        let bare = format!("n={},r={nonce}", encode_name(user));
        let first = format!("n,,{bare}").into_bytes();
        (
            ClientExchange {
                hash,
                password: password.to_owned(),
                bare,
                nonce,
                server_signature: None,
            },
            first,
        )
    }

    /// The client's final message, with its proof.
    pub fn respond(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(server_first).map_err(|_| malformed("not UTF-8"))?;
        let attrs = attributes(text)?;
        if let Ok(e) = attribute(&attrs, 'e') {
            return Err(ScramError::Server(e.to_owned()));
        }
        let nonce = attribute(&attrs, 'r')?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(malformed("the server's nonce does not extend ours"));
        }
        let salt = B64
            .decode(attribute(&attrs, 's')?)
            .map_err(|_| malformed("the salt is not base64"))?;
        let iterations: u32 = attribute(&attrs, 'i')?
            .parse()
            .map_err(|_| malformed("the iteration count is not a number"))?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(malformed(format!("{iterations} iterations")));
        }
        let salted = self
            .hash
            .salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.server_signature = Some(self.hash.hmac(&server_key, auth_message.as_bytes()));
        let proof = xor(&client_key, &signature);
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server's final message: it proves the server knew our password.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final).map_err(|_| malformed("not UTF-8"))?;
        let attrs = attributes(text)?;
        if let Ok(e) = attribute(&attrs, 'e') {
            return Err(ScramError::Server(e.to_owned()));
        }
        let got = B64
            .decode(attribute(&attrs, 'v')?)
            .map_err(|_| malformed("the server signature is not base64"))?;
        let expected = self.server_signature.as_deref().unwrap_or_default();
        if bool::from(got.ct_eq(expected)) && !expected.is_empty() {
            Ok(())
        } else {
            Err(ScramError::BadServerSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example, byte for byte (fixed nonces).
    #[test]
    fn the_rfc_7677_example_checks_out() {
        let hash = ScramHash::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = StoredCredentials::derive(hash, "pencil", salt, 4096);
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.user, "user");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let exchange = ServerExchange {
            hash,
            credentials: creds,
            first,
            server_first: server_first.into(),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        };
        let final_message = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            exchange.finish(final_message).unwrap(),
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
        );
        let mut wrong = final_message.to_vec();
        let at = wrong.len() - 5;
        wrong[at] = b'A';
        assert_eq!(exchange.finish(&wrong), Err(ScramError::BadProof));
    }

    #[test]
    fn our_client_and_server_agree_and_a_wrong_password_fails() {
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            let creds = StoredCredentials::derive(hash, "s3cret", b"salt".to_vec(), 4096);
            for (password, ok) in [("s3cret", true), ("wrong", false)] {
                let (mut client, first) = ClientExchange::start(hash, "a,b=c", password);
                let first = ClientFirst::parse(&first).unwrap();
                assert_eq!(first.user, "a,b=c", "escaped and unescaped");
                let (server, server_first) = ServerExchange::start(hash, first, creds.clone());
                let client_final = client.respond(&server_first).unwrap();
                match server.finish(&client_final) {
                    Ok(server_final) => {
                        assert!(ok);
                        assert_eq!(client.verify(&server_final), Ok(()));
                    }
                    Err(e) => {
                        assert!(!ok, "{hash:?}");
                        assert_eq!(e, ScramError::BadProof);
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_messages_name_what_is_wrong() {
        assert_eq!(
            ClientFirst::parse(b"p=tls-unique,,n=u,r=x").unwrap_err(),
            malformed("channel binding is not supported")
        );
        assert_eq!(
            ClientFirst::parse(b"n,,r=x").unwrap_err(),
            malformed("no `n=` attribute")
        );
        assert_eq!(
            ClientFirst::parse(b"n,,n=a=4,r=x").unwrap_err(),
            malformed("a user name with a bad `=` escape")
        );
        assert_eq!(
            ClientFirst::parse(b"garbage").unwrap_err(),
            malformed("no GS2 header")
        );
        let (mut client, _) = ClientExchange::start(ScramHash::Sha256, "u", "p");
        assert_eq!(
            client.respond(b"e=unknown-user").unwrap_err(),
            ScramError::Server("unknown-user".into())
        );
        assert_eq!(
            client.respond(b"r=other,s=AA==,i=1").unwrap_err(),
            malformed("the server's nonce does not extend ours")
        );
    }
}
