//! The node's HTTP face: `/health`, `/ready`, `/metrics` and the JSON API that the CLI's
//! `topic tail` and `resources list` use (they never open the data dir: sled allows one
//! process per database).

mod api;
mod auth;
pub mod devices;
mod health;
pub mod metrics;
pub mod reload;
pub mod status;

pub use health::Readiness;
pub use metrics::render_store;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};

use crate::bus::Bus;
use crate::resource_manager::ResourceStore;
use crate::telemetry::Telemetry;

/// Adds lines to `/metrics`: each part of the node registers one for its own stats.
pub type MetricsSection =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = String>>> + Send + Sync>;

/// What the handlers read.
pub struct AppState {
    pub version: &'static str,
    pub site: crate::model::Site,
    /// Every site the node serves (`site` first).
    pub sites: Vec<crate::model::Site>,
    pub bus: Bus,
    pub resources: ResourceStore,
    pub telemetry: Arc<Telemetry>,
    /// What `/ready` asks (see [`Readiness`]).
    pub readiness: Vec<Readiness>,
    pub metrics_sections: Vec<MetricsSection>,
    /// `http.token` (empty: none).
    pub token: crate::secret::Secret,
    /// Room for requests waiting for new records (`http.max_long_polls`).
    pub long_polls: Arc<tokio::sync::Semaphore>,
    /// The node's place in its site's cluster (`/api/cluster`).
    pub cluster: crate::cluster::ClusterView,
    /// What `POST /api/reload` calls.
    pub reload: Option<Arc<dyn reload::Reload>>,
    /// What the status page reads (None: no page).
    pub status: Option<status::StatusSources>,
    /// What `/metrics/devices` reads.
    pub device_metrics: devices::DeviceMetrics,
}

/// How the listener is served: `http.*` settings the server itself needs.
pub struct Listener {
    pub listen: SocketAddr,
    pub tls: Option<rustls::ServerConfig>,
    pub max_connections: usize,
}

/// Binds the listener (so a taken port fails at start, with the address) and returns the
/// server future to run and the address it is bound to (port 0 in `http.listen` asks the
/// system for a free port).
pub fn serve(
    state: Arc<AppState>,
    listener: Listener,
) -> std::io::Result<(actix_web::dev::Server, std::net::SocketAddr)> {
    let data = web::Data::from(state);
    let listen = listener.listen;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::QueryConfig::default().error_handler(api::query_error))
            .wrap(actix_web::middleware::from_fn(auth::require_token))
            .route("/health", web::get().to(health::health))
            .route("/ready", web::get().to(health::ready))
            .route("/metrics", web::get().to(metrics::metrics))
            .route("/metrics/devices", web::get().to(devices::devices))
            .route("/api/resources", web::get().to(api::resources))
            .route("/api/cluster", web::get().to(api::cluster))
            .route("/api/topics", web::get().to(api::topics))
            .route("/api/topics/{topic}/records", web::get().to(api::records))
            .route("/api/reload", web::post().to(reload::reload))
            .route("/login", web::get().to(auth::login_form))
            .route("/login", web::post().to(auth::login))
            .route("/", web::get().to(status::fleet))
            .route("/device", web::get().to(status::device))
            .route("/pipeline", web::get().to(status::pipeline))
            .route("/static/panoptes.css", web::get().to(status::stylesheet))
            .route("/static/panoptes.js", web::get().to(status::script))
    })
    .workers(1)
    .max_connections(listener.max_connections)
    // A client that connects and says nothing gets 5 s for its first request.
    .client_request_timeout(std::time::Duration::from_secs(5))
    .disable_signals()
    .shutdown_timeout(2);
    let fail = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot listen for HTTP on {listen}: {e}"))
    };
    let server = match listener.tls {
        Some(tls) => server.bind_rustls_0_23(listen, tls).map_err(fail)?,
        None => server.bind(listen).map_err(fail)?,
    };
    let bound = server.addrs().first().copied().unwrap_or(listen);
    Ok((server.run(), bound))
}
