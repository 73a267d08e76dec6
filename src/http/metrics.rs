use actix_web::{web, HttpResponse};

use super::AppState;
use crate::telemetry::render_gauge;

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut out = String::with_capacity(8192);
    render_gauge(
        &mut out,
        "panoptes_uptime_seconds",
        "Seconds since the node started.",
        &[(vec![], state.telemetry.started.elapsed().as_secs_f64())],
    );
    state.telemetry.render_counters(&mut out);
    let ages: Vec<_> = state
        .telemetry
        .last_run_ages()
        .into_iter()
        .map(|(kind, plugin, age)| (vec![("kind", kind), ("plugin", plugin)], age))
        .collect();
    render_gauge(
        &mut out,
        "panoptes_plugin_last_run_age_seconds",
        "Seconds since each plugin last finished a run.",
        &ages,
    );
    for section in &state.metrics_sections {
        out.push_str(&section().await);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}
