//! The bearer token every request but `/health` and `/ready` must carry when
//! `http.token` is set. Refusals are counted and logged at a bounded rate, and never
//! echo what the client sent.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::AppState;

/// Paths served without the token: probes of liveness and readiness.
const OPEN: [&str; 2] = ["/health", "/ready"];

pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let token = state.token.expose();
    if token.is_empty() || OPEN.contains(&req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let reason = match presented {
        Some(p) if constant_time_eq(p.as_bytes(), token.as_bytes()) => {
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        Some(_) => "wrong_token",
        None => "no_token",
    };
    crate::events::HttpRequestRefused {
        reason,
        path: req.path(),
        peer: req.peer_addr(),
    }
    .emit(&state.telemetry);
    let response = HttpResponse::Unauthorized()
        .insert_header((
            actix_web::http::header::WWW_AUTHENTICATE,
            "Bearer realm=\"panoptes\"",
        ))
        .json(serde_json::json!({
            "error": "this endpoint needs `Authorization: Bearer <http.token>`"
        }));
    Ok(req.into_response(response))
}

/// Equal bytes, in a time that does not depend on where they first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
