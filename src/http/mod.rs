//! The node's HTTP face: `/health`, `/ready`, `/metrics` and the JSON API that the CLI's
//! `topic tail` and `resources list` use (they never open the data dir: sled allows one
//! process per database).

mod api;
mod health;
mod metrics;

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
    pub site: String,
    pub bus: Bus,
    pub resources: ResourceStore,
    pub telemetry: Arc<Telemetry>,
    /// What `/ready` asks (see [`Readiness`]).
    pub readiness: Vec<Readiness>,
    pub metrics_sections: Vec<MetricsSection>,
}

/// Binds the listener (so a taken port fails at start, with the address) and returns the
/// server future to run.
pub fn serve(state: Arc<AppState>, listen: SocketAddr) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::QueryConfig::default().error_handler(api::query_error))
            .route("/health", web::get().to(health::health))
            .route("/ready", web::get().to(health::ready))
            .route("/metrics", web::get().to(metrics::metrics))
            .route("/api/resources", web::get().to(api::resources))
            .route("/api/topics", web::get().to(api::topics))
            .route("/api/topics/{topic}/records", web::get().to(api::records))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2)
    .bind(listen)
    .map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen for HTTP on {listen}: {e}"))
    })?;
    Ok(server.run())
}
