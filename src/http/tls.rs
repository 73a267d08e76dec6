//! HTTPS for the node's listener: a PEM certificate chain and private key, served with
//! rustls (ring provider).

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

/// Why the listener's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("{path}: a certificate rustls cannot use as a root: {reason}")]
    BadRoot { path: String, reason: String },
}

/// The server configuration for `cert` (a chain, leaf first) and `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certificates(cert)?;
    let key_pem = read("private key", key)?;
    let private = rustls_pemfile::private_key(&mut BufReader::new(&key_pem[..]))
        .map_err(|source| TlsError::Read {
            what: "private key",
            path: key.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: key.display().to_string(),
        })?;
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)?)
}

/// The client configuration for our outgoing TLS (the CLI to the node, the InfluxDB sink):
/// the public web roots, plus every certificate in `extra_roots` (a PEM file), so a
/// private CA or a self-signed server certificate can be trusted.
pub fn client_config(extra_roots: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_roots {
        for cert in certificates(path)? {
            roots.add(cert).map_err(|e| TlsError::BadRoot {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// ring rather than aws-lc-rs: no C build of its own to carry; it lacks only the
/// post-quantum key exchange, for which rustls marks this constructor deprecated.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate of a PEM file (at least one).
pub fn certificates(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    let pem = read("certificate", path)?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(&pem[..]))
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            what: "certificate",
            path: path.display().to_string(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(chain)
}
