use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// Liveness: the process answers. Always 200 while the HTTP server runs.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "version": state.version,
        "site": state.site,
        "uptime_seconds": state.telemetry.started.elapsed().as_secs_f64(),
    }))
}

/// Readiness: 200 once the first poll cycle completed, 503 before.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.ready.load(Ordering::Acquire) {
        HttpResponse::Ok().json(json!({"ready": true}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({"ready": false, "reason": "first poll cycle not completed yet"}))
    }
}
