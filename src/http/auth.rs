//! The bearer token every request but `/health`, `/ready` and the login page must carry
//! when `http.token` is set: in `Authorization: Bearer`, or, for a browser on the status
//! page, in the `panoptes_token` cookie that `POST /login` sets (HttpOnly,
//! SameSite=Strict). Refusals are counted and logged at a bounded rate, and never echo
//! what the client sent.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::AppState;

/// Paths served without the token: probes of liveness and readiness, and what the login
/// page needs.
const OPEN: [&str; 4] = ["/health", "/ready", "/login", "/static/panoptes.css"];

/// The cookie a browser carries the token in.
pub const COOKIE: &str = "panoptes_token";

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
    let cookie = req.cookie(COOKIE);
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| cookie.as_ref().map(|c| c.value()));
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
    // A browser asking for a page goes to the login form.
    let wants_page = req.method() == actix_web::http::Method::GET
        && req
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_page {
        let response = HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, "/login"))
            .finish();
        return Ok(req.into_response(response));
    }
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

/// The login form's fields.
#[derive(serde::Deserialize)]
pub struct Login {
    token: String,
}

const LOGIN_FORM: &str = "<h1>Sign in</h1><p>This node's HTTP API needs its token (<code>http.token</code>).</p>\
    <form method=\"post\" action=\"/login\"><label>token <input type=\"password\" name=\"token\" \
    autocomplete=\"current-password\" size=\"40\" autofocus></label> <button>sign in</button></form>";

/// `GET /login`: the form (or, with no token configured, a note that none is needed).
pub async fn login_form(state: web::Data<AppState>) -> HttpResponse {
    let body = if state.token.is_empty() {
        "<h1>Sign in</h1><p>This node has no <code>http.token</code>: nothing to sign in to. \
         <a href=\"/\">The fleet</a>.</p>"
    } else {
        LOGIN_FORM
    };
    super::status::html_page("Sign in", body)
}

/// `POST /login`: a right token sets the cookie and goes to the fleet; a wrong one is
/// refused (and counted) like a wrong bearer token.
pub async fn login(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Login>,
) -> HttpResponse {
    let token = state.token.expose();
    if !token.is_empty() && constant_time_eq(form.token.trim().as_bytes(), token.as_bytes()) {
        let cookie = actix_web::cookie::Cookie::build(COOKIE, token.to_owned())
            .path("/")
            .http_only(true)
            .same_site(actix_web::cookie::SameSite::Strict)
            .secure(req.connection_info().scheme() == "https")
            .finish();
        return HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, "/"))
            .cookie(cookie)
            .finish();
    }
    crate::events::HttpRequestRefused {
        reason: "wrong_token",
        path: "/login",
        peer: req.peer_addr(),
    }
    .emit(&state.telemetry);
    let mut page = super::status::html_page(
        "Sign in",
        &format!("<p class=\"error\">That is not this node's token.</p>{LOGIN_FORM}"),
    );
    *page.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
    page
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
