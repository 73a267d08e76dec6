//! JSON API over the node's state, for the CLI and for people.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{error, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;

/// Longest a `records` request may wait for new records.
const MAX_WAIT: Duration = Duration::from_secs(30);
const MAX_RECORDS: usize = 1000;

fn bad_request(message: String) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": message}))
}

fn unavailable(message: String) -> HttpResponse {
    HttpResponse::InternalServerError().json(json!({"error": message}))
}

/// A JSON 400 naming the problem, counted by `reason`.
fn rejected(state: &AppState, reason: &'static str, message: String) -> HttpResponse {
    crate::events::HttpRequestRejected {
        reason,
        message: &message,
    }
    .emit(&state.telemetry);
    bad_request(message)
}

/// Malformed query strings get a JSON 400 naming the problem.
pub fn query_error(err: error::QueryPayloadError, req: &HttpRequest) -> error::Error {
    let message = err.to_string();
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        crate::events::HttpRequestRejected {
            reason: "query",
            message: &message,
        }
        .emit(&state.telemetry);
    }
    error::InternalError::from_response(err, bad_request(format!("bad query string: {message}")))
        .into()
}

pub async fn resources(state: web::Data<AppState>) -> HttpResponse {
    let store = state.resources.clone();
    match web::block(move || store.all()).await {
        Ok(Ok(mut list)) => {
            list.sort_by(|a, b| a.id.cmp(&b.id));
            HttpResponse::Ok().json(json!({"resources": list}))
        }
        Ok(Err(e)) => unavailable(format!("reading resources: {e}")),
        Err(e) => unavailable(format!("reading resources: {e}")),
    }
}

/// `/api/cluster`: this node's place in its site's cluster (members, what each owns,
/// generations, the sink's lag); `enabled: false` on a node alone.
pub async fn cluster(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.cluster.status().await)
}

pub async fn topics(state: web::Data<AppState>) -> HttpResponse {
    let bus = state.bus.clone();
    let listed = web::block(
        move || -> Result<Vec<Value>, panoptes_storage::StorageError> {
            let names = bus.store().topic_names()?;
            let mut out = Vec::new();
            for name in names {
                let t = bus.topic(&name)?;
                let mut parts = Vec::new();
                for p in 0..t.partitions() {
                    parts.push(json!({
                        "partition": p,
                        "low_watermark": t.low_watermark(p)?,
                        "high_watermark": t.high_watermark(p)?,
                    }));
                }
                out.push(json!({"name": name, "partitions": parts}));
            }
            Ok(out)
        },
    )
    .await;
    match listed {
        Ok(Ok(list)) => HttpResponse::Ok().json(json!({"topics": list})),
        Ok(Err(e)) => unavailable(format!("listing topics: {e}")),
        Err(e) => unavailable(format!("listing topics: {e}")),
    }
}

#[derive(Debug, Deserialize)]
pub struct RecordsQuery {
    #[serde(default)]
    partition: u32,
    /// A number, `beginning` or `end` (default).
    offset: Option<String>,
    max: Option<usize>,
    wait_ms: Option<u64>,
}

/// Records of one partition from an offset; with `wait_ms`, waits (bounded) for new ones.
pub async fn records(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<RecordsQuery>,
) -> HttpResponse {
    let name = path.into_inner();
    let q = query.into_inner();
    let bus = state.bus.clone();
    let lookup_name = name.clone();
    let exists =
        web::block(move || bus.store().topic_names().map(|n| n.contains(&lookup_name))).await;
    match exists {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            return HttpResponse::NotFound()
                .json(json!({"error": format!("no topic named `{name}` (yet)")}))
        }
        Ok(Err(e)) => return unavailable(e.to_string()),
        Err(e) => return unavailable(e.to_string()),
    }
    let topic = match state.bus.topic(&name) {
        Ok(t) => t,
        Err(e) => return unavailable(e.to_string()),
    };
    if q.partition >= topic.partitions() {
        return rejected(
            &state,
            "partition",
            format!(
                "partition {} does not exist: topic `{name}` has {} partition(s)",
                q.partition,
                topic.partitions()
            ),
        );
    }
    let offset_spec = q.offset.unwrap_or_else(|| "end".into());
    let t = topic.clone();
    let p = q.partition;
    let marks = web::block(move || {
        Ok::<_, panoptes_storage::StorageError>((t.low_watermark(p)?, t.high_watermark(p)?))
    })
    .await;
    let (low, high) = match marks {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return unavailable(e.to_string()),
        Err(e) => return unavailable(e.to_string()),
    };
    let from = match offset_spec.as_str() {
        "beginning" => low,
        "end" => high,
        n => match n.parse::<u64>() {
            Ok(n) => n.max(low),
            Err(_) => {
                return rejected(
                    &state,
                    "offset",
                    format!("offset `{n}`: expected a number, `beginning` or `end`"),
                );
            }
        },
    };
    let max = q.max.unwrap_or(100).clamp(1, MAX_RECORDS);
    let deadline = Instant::now() + Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    // A long poll holds a place among `http.max_long_polls`; without one the request is
    // answered at once with what there is.
    let place = match q.wait_ms {
        Some(w) if w > 0 => match Arc::clone(&state.long_polls).try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                crate::events::HttpRequestRefused {
                    reason: "long_polls",
                    path: &name,
                    peer: None,
                }
                .emit(&state.telemetry);
                None
            }
        },
        _ => None,
    };
    let deadline = if place.is_some() {
        deadline
    } else {
        Instant::now()
    };
    let grown = state.bus.appended(&name);
    loop {
        // Registered before reading, so an append between the read and the wait wakes it.
        let appended = grown.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let t = topic.clone();
        let read = web::block(move || t.read(p, from, max, 4 << 20)).await;
        let batch = match read {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return unavailable(e.to_string()),
            Err(e) => return unavailable(e.to_string()),
        };
        if !batch.is_empty() || Instant::now() >= deadline {
            let next = batch.last().map(|r| r.offset + 1).unwrap_or(from);
            let records: Vec<RecordOut> = batch
                .into_iter()
                .map(|r| RecordOut {
                    offset: r.offset,
                    timestamp_ms: r.record.timestamp_ms,
                    key: r
                        .record
                        .key
                        .as_ref()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: record_value(&r.record.value),
                })
                .collect();
            return HttpResponse::Ok().json(Page {
                topic: &name,
                partition: p,
                partitions: topic.partitions(),
                next_offset: next,
                records,
            });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(remaining, appended).await;
    }
}

/// One page of `/api/topics/{name}/records`.
#[derive(serde::Serialize)]
struct Page<'a> {
    topic: &'a str,
    partition: u32,
    partitions: u32,
    next_offset: u64,
    records: Vec<RecordOut>,
}

#[derive(serde::Serialize)]
struct RecordOut {
    offset: u64,
    timestamp_ms: u64,
    key: Option<String>,
    value: Box<serde_json::value::RawValue>,
}

/// A record's value: the record itself when it is JSON, kept as its bytes (so an integer
/// past 64 bits, such as `bits_in` of a Counter64 near its top, stays exact), else its
/// text as a JSON string.
fn record_value(bytes: &[u8]) -> Box<serde_json::value::RawValue> {
    let text = String::from_utf8_lossy(bytes);
    serde_json::value::RawValue::from_string(text.trim().to_string())
        .or_else(|_| serde_json::value::to_raw_value(&text))
        .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
}

#[cfg(test)]
mod record_value_tests {
    use super::record_value;

    #[test]
    fn json_records_pass_through_exactly_and_others_become_text() {
        let big = br#"{"metric_value": 147573952589676408000}"#;
        assert_eq!(record_value(big).get(), std::str::from_utf8(big).unwrap());
        assert_eq!(record_value(b"not json").get(), r#""not json""#);
        assert_eq!(record_value(b"\xff\"").get(), "\"\u{fffd}\\\"\"");
    }
}
