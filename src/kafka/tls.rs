//! TLS for the Kafka listener and for our client of an external cluster: rustls on the
//! ring provider, certificates and keys from PEM files. Files are read at start, so a
//! missing or unreadable one stops the node with its path, not the first client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate, key or CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key} = {path:?}: {problem}")]
    File {
        key: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn file_error(key: &'static str, path: &Path, problem: impl ToString) -> TlsError {
    TlsError::File {
        key,
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// The ring provider: rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange, which only aws-lc-rs offers, and aws-lc-rs needs cmake and a C build in CI.
/// Kafka clients (librdkafka, kafka-python, Java) negotiate classical X25519/P-256 anyway.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain of a PEM file (leaf first).
fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The listener's TLS: `cert` holds the broker's certificate chain, `key` its private key
/// (PKCS#8, PKCS#1 or SEC1 PEM). No client certificates are asked for: clients
/// authenticate with SASL.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates("kafka.tls_cert", cert)?;
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("kafka.tls_key", key, e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            file_error(
                "kafka.tls_key",
                key,
                format!("does not fit kafka.tls_cert: {e}"),
            )
        })?;
    Ok(Arc::new(config))
}

/// Our client's TLS: servers are verified against the CA certificates in `ca`.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates("kafka.client_tls_ca", ca)? {
        roots
            .add(cert)
            .map_err(|e| file_error("kafka.client_tls_ca", ca, e))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_files_name_the_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = server_config(&empty, &empty).unwrap_err().to_string();
        assert!(
            err.starts_with("kafka.tls_cert = ") && err.ends_with("no PEM certificate in the file"),
            "{err}"
        );
        let err = client_config(&dir.path().join("nope.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("kafka.client_tls_ca = ") && err.contains("nope.pem"),
            "{err}"
        );
    }
}
