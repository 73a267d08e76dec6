use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// One reason the node may not be ready, asked on every `/ready`: `Some(reason)` while
/// it holds. The node registers its own (the first poll, the store's health).
pub type Readiness = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// Liveness: the process answers. Always 200 while the HTTP server runs, whatever
/// `/ready` says: a node that is not ready (a full disk) is still alive and recovers by
/// itself; restarting it would not help.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "version": state.version,
        "site": state.site,
        "sites": state.sites,
        "uptime_seconds": state.telemetry.started.elapsed().as_secs_f64(),
    }))
}

/// Readiness: 200 when no source gives a reason; 503 with every reason (`reason` joins
/// them, `reasons` lists them) otherwise.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let reasons: Vec<String> = state
        .readiness
        .iter()
        .filter_map(|source| source())
        .collect();
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({"ready": true}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "ready": false,
            "reason": reasons.join("; "),
            "reasons": reasons,
        }))
    }
}
