//! The node's HTTP face as the wiring builds it: how it listens, and what `/ready` asks.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;

use crate::bus::Bus;

/// `/ready` before the first poll finished (a node with no polling plugin is ready at
/// once).
/// Not ready while the external cluster (if any) keeps failing.
pub(super) fn external_readiness(bus: &Bus) -> crate::http::Readiness {
    let health = bus.external_health();
    Box::new(move || health.as_ref().and_then(|h| h.not_ready()))
}

pub(super) fn first_poll_readiness(done: Arc<AtomicBool>) -> crate::http::Readiness {
    Box::new(move || {
        (!done.load(std::sync::atomic::Ordering::Acquire))
            .then(|| "first poll cycle not completed yet".to_owned())
    })
}

/// How the HTTP listener is served, from `http.*`; warns about an open non-loopback one.
pub(super) fn listener(http: &crate::config::HttpSettings) -> Result<crate::http::Listener> {
    let tls = if http.tls() {
        Some(Arc::unwrap_or_clone(crate::tls::server_config(
            std::path::Path::new(http.tls_cert.trim()),
            std::path::Path::new(http.tls_key.trim()),
            ("http.tls_cert", "http.tls_key"),
        )?))
    } else {
        None
    };
    if !http.listen.ip().is_loopback() && http.token.is_empty() {
        tracing::warn!(listen = %http.listen, "the HTTP API listens beyond loopback with no token (http.allow_insecure): anyone who reaches it can read it");
    }
    Ok(crate::http::Listener {
        listen: http.listen,
        tls,
        max_connections: http.max_connections,
    })
}
