//! `POST /api/reload`: what SIGHUP does, over HTTP. It changes the node's state, so it is
//! served only when `http.token` is set (and then, like every API path, only with it);
//! without a token, SIGHUP is the way.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("reload refused, the running configuration stays: {0}")]
    Settings(#[from] crate::config::SettingsError),
    #[error("reload refused, the running configuration stays: {0:#}")]
    Plugins(anyhow::Error),
    #[error("a reload is already running")]
    Busy,
    #[error("reload failed: {0}")]
    Task(#[from] crate::blocking::TaskFailed),
}

/// What reloads the node (implemented by the node; the HTTP face only asks).
pub trait Reload: Send + Sync {
    /// On success, a sentence saying what was reloaded.
    fn reload(&self) -> Pin<Box<dyn Future<Output = Result<String, ReloadError>> + '_>>;
}

pub async fn reload(state: web::Data<AppState>) -> HttpResponse {
    if state.token.is_empty() {
        return HttpResponse::Forbidden().json(json!({
            "error": "reloading over HTTP needs http.token to be set; send the node SIGHUP instead"
        }));
    }
    let Some(reloader) = &state.reload else {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"error": "this node cannot reload"}));
    };
    match reloader.reload().await {
        Ok(summary) => HttpResponse::Ok().json(json!({"reloaded": true, "summary": summary})),
        Err(e @ ReloadError::Busy) => {
            HttpResponse::Conflict().json(json!({"reloaded": false, "error": e.to_string()}))
        }
        Err(e) => HttpResponse::UnprocessableEntity()
            .json(json!({"reloaded": false, "error": e.to_string()})),
    }
}
