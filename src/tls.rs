//! TLS for every listener and client of the node (HTTP, the Kafka listener, the external
//! Kafka client, the InfluxDB sink, the CLI): rustls on the ring provider, certificates and
//! keys from PEM files. Files are read at start, so a missing or unreadable one stops the
//! node with its configuration key and path, not the first client.

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

/// The ring provider: rustls 0.23.48 deprecates it for lacking the post-quantum key
/// exchange only aws-lc-rs offers, and aws-lc-rs needs cmake and a C build in CI. Every
/// client we meet (browsers, curl, librdkafka, kafka-python, Java) negotiates classical
/// X25519/P-256 anyway.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file, in order (a chain: leaf first); `key` names the
/// setting in errors.
pub fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// A listener's TLS: `cert` holds the certificate chain, `key` its private key (PKCS#8,
/// PKCS#1 or SEC1 PEM); `keys` name the two settings in errors. No client certificates
/// are asked for.
pub fn server_config(
    cert: &Path,
    key: &Path,
    keys: (&'static str, &'static str),
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates(keys.0, cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(keys.1, key, e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| file_error(keys.1, key, format!("does not fit {}: {e}", keys.0)))?;
    Ok(Arc::new(config))
}

/// Which servers a client trusts.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// Only the CA certificates of this PEM file (setting, path).
    Only(&'static str, &'a Path),
    /// The public web roots, plus the certificates of this PEM file if any (a private
    /// CA, or a server's own self-signed chain).
    Public(Option<(&'static str, &'a Path)>),
}

/// A client's TLS configuration.
pub fn client_config(trust: Trust<'_>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let extra = match trust {
        Trust::Only(key, path) => Some((key, path)),
        Trust::Public(extra) => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            extra
        }
    };
    if let Some((key, path)) = extra {
        for cert in certificates(key, path)? {
            roots.add(cert).map_err(|e| file_error(key, path, e))?;
        }
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
        let err = server_config(&empty, &empty, ("kafka.tls_cert", "kafka.tls_key"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("kafka.tls_cert = ") && err.ends_with("no PEM certificate in the file"),
            "{err}"
        );
        let err = client_config(Trust::Only(
            "kafka.client_tls_ca",
            &dir.path().join("nope.pem"),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("kafka.client_tls_ca = ") && err.contains("nope.pem"),
            "{err}"
        );
        let err = client_config(Trust::Public(Some(("influxdb.tls_ca", &empty))))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("influxdb.tls_ca = "), "{err}");
        assert!(client_config(Trust::Public(None)).is_ok());
    }
}
