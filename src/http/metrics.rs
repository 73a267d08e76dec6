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

/// The memory breakdown, one series a part.
pub fn render_memory(out: &mut String, b: &crate::memory::Breakdown) {
    let parts: Vec<_> = b
        .parts()
        .into_iter()
        .map(|(part, bytes)| (vec![("part", part.to_string())], bytes as f64))
        .collect();
    render_gauge(
        out,
        "panoptes_memory_bytes",
        "Where the memory goes, by part: rss (= rss_anon + rss_file), rss_anon (= heap_in_use \
         + allocator_retained), heap_in_use (= rate_state + heap_other); allocator_committed is \
         the allocator's own count of the resident pages it maps.",
        &parts,
    );
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
    let changes = &stats.health_changes;
    render_family(
        out,
        "panoptes_store_health_changes_total",
        "Changes of the store's health, by the state it changed to (ok, writes_failing, failed).",
        "counter",
        &[
            ("ok", changes.ok),
            ("writes_failing", changes.writes_failing),
            ("failed", changes.failed),
        ]
        .map(|(to, n)| (vec![("to", to.to_string())], n as f64)),
    );
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

// ---------------------------------------------------------------------------------------
// The node's sections of `/metrics`, each rendered from its typed stats (the node's
// wiring gathers them: `crate::node::metrics`).

/// The SNMP engine's sockets, requests and replies.
pub fn render_snmp_engine(out: &mut String, stats: &crate::snmp::EngineStats) {
    for (name, help, is_counter, value) in stats.metrics() {
        let kind = if is_counter { "counter" } else { "gauge" };
        let full = format!("panoptes_{name}");
        out.push_str(&format!(
            "# HELP {full} {help}\n# TYPE {full} {kind}\n{full} {value}\n"
        ));
    }
}

/// The poller pool: runs executing, waiting, shed.
pub fn render_pool(out: &mut String, s: &panoptes_actors::PoolStatsSnapshot) {
    render_gauge(
        out,
        "panoptes_pool_in_flight",
        "Plugin runs executing now.",
        &[(vec![], s.running as f64)],
    );
    render_gauge(
        out,
        "panoptes_pool_queue_depth",
        "Plugin runs waiting for a free slot.",
        &[(vec![], s.queued as f64)],
    );
    render_family(
        out,
        "panoptes_pool_shed_total",
        "Plugin runs shed because the queue was full.",
        "counter",
        &[(vec![], s.shed as f64)],
    );
}

/// Runs by outcome, as label rows.
fn outcomes(r: &panoptes_actors::RunCounts) -> [(&'static str, u64); 4] {
    [
        ("succeeded", r.succeeded),
        ("failed", r.failed),
        ("timed_out", r.timed_out),
        ("shed", r.shed),
    ]
}

/// The schedulers (discovery, enrichment, polling): runs by plugin and outcome, polls,
/// scheduled work, and the planning they did.
pub fn render_schedulers(out: &mut String, schedulers: &[panoptes_actors::SchedulerStats]) {
    let mut runs = Vec::new();
    let mut polls = Vec::new();
    let mut keys = Vec::new();
    let mut plans = Vec::new();
    let mut plan_seconds = Vec::new();
    for stats in schedulers {
        let kind = || vec![("kind", stats.name.clone())];
        keys.push((kind(), stats.keys as f64));
        plans.push((kind(), stats.plans as f64));
        plan_seconds.push((kind(), stats.plan_us as f64 / 1e6));
        for (plugin, g) in &stats.groups {
            for (outcome, n) in outcomes(&g.runs) {
                runs.push((
                    vec![
                        ("kind", stats.name.clone()),
                        ("plugin", plugin.clone()),
                        ("outcome", outcome.to_string()),
                    ],
                    n as f64,
                ));
            }
        }
        if stats.name == "polling" {
            for (outcome, n) in outcomes(&stats.runs) {
                polls.push((vec![("outcome", outcome.to_string())], n as f64));
            }
        }
    }
    render_family(
        out,
        "panoptes_plugin_runs_total",
        "Plugin runs by kind, plugin and outcome.",
        "counter",
        &runs,
    );
    render_family(
        out,
        "panoptes_polls_total",
        "Polls (polling plugin runs) by outcome.",
        "counter",
        &polls,
    );
    render_gauge(
        out,
        "panoptes_scheduled_work",
        "Plugin x resource pairs scheduled, by kind.",
        &keys,
    );
    render_family(
        out,
        "panoptes_scheduler_plans_total",
        "Schedules built from the resource store (periodic rescans and changes).",
        "counter",
        &plans,
    );
    render_family(
        out,
        "panoptes_scheduler_plan_seconds_total",
        "Time spent building and applying schedules, by kind.",
        "counter",
        &plan_seconds,
    );
}

/// Records behind the end of the topic, per consumer.
pub fn render_consumer_lag(out: &mut String, consumers: &[panoptes_actors::ConsumerStats]) {
    let lag: Vec<_> = consumers
        .iter()
        .map(|s| {
            (
                vec![("consumer", s.name.clone())],
                s.lag.unwrap_or(0) as f64,
            )
        })
        .collect();
    render_gauge(
        out,
        "panoptes_consumer_lag",
        "Records behind the end of the topic, per consumer.",
        &lag,
    );
}

/// Resources held by the resource manager.
pub fn render_resources(out: &mut String, resources: usize) {
    render_gauge(
        out,
        "panoptes_resources",
        "Resources held by the resource manager.",
        &[(vec![], resources as f64)],
    );
}

/// The embedded Kafka listener's open connections and request bytes held in memory (its
/// counters are in the telemetry section).
pub fn render_kafka_listener(out: &mut String, open_connections: usize, bytes_in_flight: usize) {
    render_gauge(
        out,
        "panoptes_kafka_open_connections",
        "Client connections open on the Kafka listener.",
        &[(vec![], open_connections as f64)],
    );
    render_gauge(
        out,
        "panoptes_kafka_bytes_in_flight",
        "Bytes of Kafka requests held in memory (frames and inflated records), of kafka.max_bytes_in_flight.",
        &[(vec![], bytes_in_flight as f64)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedulers_render_runs_by_plugin_and_polls_by_outcome() {
        let mut polling = panoptes_actors::SchedulerStats {
            name: "polling".into(),
            keys: 3,
            plans: 2,
            plan_us: 1_500_000,
            ..Default::default()
        };
        polling.runs.succeeded = 7;
        polling.runs.timed_out = 1;
        let mut group = panoptes_actors::GroupStats::default();
        group.runs.succeeded = 7;
        polling.groups.insert("interface".into(), group);
        let discovery = panoptes_actors::SchedulerStats {
            name: "discovery".into(),
            keys: 1,
            ..Default::default()
        };
        let mut out = String::new();
        render_schedulers(&mut out, &[discovery, polling]);
        for line in [
            "panoptes_polls_total{outcome=\"succeeded\"} 7",
            "panoptes_polls_total{outcome=\"timed_out\"} 1",
            "panoptes_plugin_runs_total{kind=\"polling\",plugin=\"interface\",outcome=\"succeeded\"} 7",
            "panoptes_scheduled_work{kind=\"polling\"} 3",
            "panoptes_scheduled_work{kind=\"discovery\"} 1",
            "panoptes_scheduler_plan_seconds_total{kind=\"polling\"} 1.5",
        ] {
            assert!(out.lines().any(|l| l == line), "{line:?} missing from:\n{out}");
        }
        // Polls are the polling scheduler's only: discovery runs are not polls.
        assert_eq!(out.matches("panoptes_polls_total{").count(), 4, "{out}");
    }

    #[test]
    fn consumer_lag_counts_an_unknown_lag_as_zero() {
        let stats = |name: &str, lag| panoptes_actors::ConsumerStats {
            name: name.into(),
            lag,
            ..Default::default()
        };
        let mut out = String::new();
        render_consumer_lag(&mut out, &[stats("a:0", Some(12)), stats("b:1", None)]);
        assert!(
            out.contains("panoptes_consumer_lag{consumer=\"a:0\"} 12\n"),
            "{out}"
        );
        assert!(
            out.contains("panoptes_consumer_lag{consumer=\"b:1\"} 0\n"),
            "{out}"
        );
    }
}
