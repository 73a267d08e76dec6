use actix_web::{web, HttpResponse};

use panoptes_storage::{Health, StoreStats};

use super::AppState;
use crate::telemetry::{render_family, render_gauge};

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

/// The store's sizes, counters and health, for the node's `/metrics`.
pub fn render_store(out: &mut String, stats: &StoreStats, health: &Health) {
    let part = |p: &panoptes_storage::PartitionStats| {
        vec![
            ("topic", p.topic.clone()),
            ("partition", p.partition.to_string()),
        ]
    };
    let series = |f: &dyn Fn(&panoptes_storage::PartitionStats) -> u64| {
        stats
            .topics
            .iter()
            .map(|p| (part(p), f(p) as f64))
            .collect::<Vec<_>>()
    };
    render_gauge(
        out,
        "panoptes_topic_high_watermark",
        "Next offset to be written, per topic partition.",
        &series(&|p| p.high),
    );
    render_gauge(
        out,
        "panoptes_topic_low_watermark",
        "First offset still stored, per topic partition.",
        &series(&|p| p.low),
    );
    render_gauge(
        out,
        "panoptes_topic_bytes",
        "Encoded bytes stored per topic partition.",
        &series(&|p| p.bytes),
    );
    let ks: Vec<_> = stats
        .keyspaces
        .iter()
        .map(|k| (vec![("keyspace", k.name.clone())], k.keys as f64))
        .collect();
    render_gauge(
        out,
        "panoptes_keyspace_keys",
        "Keys stored per keyspace (expired ones count until swept).",
        &ks,
    );
    let kb: Vec<_> = stats
        .keyspaces
        .iter()
        .map(|k| (vec![("keyspace", k.name.clone())], k.bytes as f64))
        .collect();
    render_gauge(
        out,
        "panoptes_keyspace_bytes",
        "Logical bytes stored per keyspace.",
        &kb,
    );
    render_gauge(
        out,
        "panoptes_store_disk_bytes",
        "Bytes the embedded store uses on disk.",
        &[(vec![], stats.disk_bytes as f64)],
    );
    render_gauge(
        out,
        "panoptes_store_space_amplification",
        "Disk bytes per logical byte stored.",
        &stats
            .space_amplification()
            .map(|a| (vec![], a))
            .into_iter()
            .collect::<Vec<_>>(),
    );
    render_family(
        out,
        "panoptes_store_flushes_total",
        "Engine flushes since start.",
        "counter",
        &[(vec![], stats.flushes as f64)],
    );
    render_family(
        out,
        "panoptes_store_durable_writes_total",
        "Writes acknowledged after a flush since start (group commit: several per flush).",
        "counter",
        &[(vec![], stats.durable_writes as f64)],
    );
    let counters: [(&'static str, &str, u64); 5] = [
        (
            "panoptes_store_write_errors_total",
            "Writes to the topic log that failed (disk full, I/O error): each refused an append.",
            stats.write_errors,
        ),
        (
            "panoptes_store_fsyncs_total",
            "fsyncs of topic segment files and directories made before acknowledging (storage.durability = fsync).",
            stats.fsyncs,
        ),
        (
            "panoptes_store_quarantined_segments_total",
            "Segments whose tail, from a corrupt frame on, was moved to a side file at start-up.",
            stats.quarantined_segments,
        ),
        (
            "panoptes_store_quarantined_bytes_total",
            "Bytes moved to quarantine side files at start-up.",
            stats.quarantined_bytes,
        ),
        (
            "panoptes_store_corrupt_frames_read_total",
            "Frames reads skipped because they failed their CRC (each read counts).",
            stats.corrupt_frames_read,
        ),
    ];
    for (name, help, value) in counters {
        render_family(out, name, help, "counter", &[(vec![], value as f64)]);
    }
    let state = match health {
        Health::Ok => "ok",
        Health::WritesFailing { .. } => "writes_failing",
        Health::Failed { .. } => "failed",
    };
    render_gauge(
        out,
        "panoptes_store_health",
        "1 for the store's state now: ok, writes_failing (not ready until a write succeeds), failed (the node restarts).",
        &["ok", "writes_failing", "failed"].map(|s| (vec![("state", s.to_string())], f64::from(u8::from(s == state)))),
    );
}
