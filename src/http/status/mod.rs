//! The status page: the fleet at `/`, one device at `/device?id=…`, the pipeline at
//! `/pipeline`. Server-rendered HTML that works without JavaScript (sorting, paging and the
//! filter are links and a form); a small script of the node's own
//! (`/static/panoptes.js`) refreshes `<main>` every 10 s and shows times in the viewer's
//! zone. Nothing is loaded from anywhere but the node (a Content-Security-Policy of
//! `'self'` says so to the browser).

mod html;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use crate::filter::ResourceFilter;
use crate::fleet::{status_name, DeviceView, Fleet, Location};
use crate::model::Resource;
use html::{esc, page, si, sparkline, time, url_part};

/// Rows per page of the fleet, unless asked otherwise (at most [`MAX_PER_PAGE`]).
const PER_PAGE: usize = 100;
const MAX_PER_PAGE: usize = 1000;
/// A sparkline's points: (Unix ms, value).
type Series = Vec<(u64, f64)>;

/// How far back the device page's sparklines reach.
const SPARK_WINDOW_MS: u64 = 3_600_000;

/// One table of the pipeline page.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    /// A line under the title (a state, a total); may be empty.
    pub note: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// What the pipeline page shows, gathered by the node from its stages.
pub trait PipelineSource: Send + Sync {
    fn tables(&self) -> Pin<Box<dyn Future<Output = Vec<Table>> + '_>>;
}

/// What the pages read besides the rest of [`AppState`].
pub struct StatusSources {
    pub fleet: Arc<Fleet>,
    pub enrichments: panoptes_storage::Keyspace,
    pub pipeline: Arc<dyn PipelineSource>,
    /// The `<site>-processed` topics polls are read back from.
    pub topics: Vec<String>,
}

const CSS: &str = include_str!("../../../resources/web/panoptes.css");
const JS: &str = include_str!("../../../resources/web/panoptes.js");

pub async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "max-age=300"))
        .body(body)
}

fn html(body: String) -> HttpResponse {
    html_with(actix_web::http::StatusCode::OK, body)
}

fn html_with(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// A page of its own (the login form): the layout around `body`.
pub fn html_page(title: &str, body: &str) -> HttpResponse {
    html(page(title, "", body))
}

fn unavailable(what: &str) -> HttpResponse {
    html(page(
        "unavailable",
        "",
        &format!("<p class=\"error\">{}</p>", esc(what)),
    ))
}

#[derive(Debug, Deserialize)]
pub struct FleetQuery {
    filter: Option<String>,
    sort: Option<String>,
    desc: Option<u8>,
    page: Option<usize>,
    per: Option<usize>,
}

/// One row of the fleet table.
struct Row {
    id: String,
    endpoint: String,
    kind: String,
    status: &'static str,
    last_ms: Option<u64>,
    duration_ms: Option<u32>,
    next_ms: Option<u64>,
    errors: u32,
    up: Option<u16>,
    down: Option<u16>,
}

impl Row {
    fn new(r: &Resource, view: Option<&DeviceView>) -> Row {
        let last = view.and_then(|v| v.last.as_ref());
        Row {
            id: r.id.to_string(),
            endpoint: r.endpoint.clone(),
            kind: format!("{}/{}/{}", r.class, r.subclass, r.kind),
            status: match last {
                None => "NOT_POLLED",
                Some(p) => match p.status {
                    Some(code) => status_name(code),
                    None if p.failed => "FAILED",
                    None => "SUCCESS",
                },
            },
            last_ms: last.map(|p| p.at_ms),
            duration_ms: last.map(|p| p.duration_ms),
            next_ms: view.and_then(|v| v.next_ms),
            errors: view.map_or(0, |v| v.failures_last_hour),
            up: view.and_then(|v| v.interfaces).map(|i| i.0),
            down: view.and_then(|v| v.interfaces).map(|i| i.1),
        }
    }
}

/// Columns: (query name, heading).
const COLUMNS: [(&str, &str); 9] = [
    ("id", "resource"),
    ("endpoint", "endpoint"),
    ("type", "type"),
    ("status", "status"),
    ("last", "last poll"),
    ("duration", "duration"),
    ("next", "next poll"),
    ("errors", "errors (1 h)"),
    ("interfaces", "interfaces up / down"),
];

fn sort_rows(rows: &mut [Row], by: &str, desc: bool) {
    rows.sort_by(|a, b| {
        let column = match by {
            "endpoint" => a.endpoint.cmp(&b.endpoint),
            "type" => a.kind.cmp(&b.kind),
            "status" => a.status.cmp(b.status),
            "last" => a.last_ms.cmp(&b.last_ms),
            "duration" => a.duration_ms.cmp(&b.duration_ms),
            "next" => a.next_ms.cmp(&b.next_ms),
            "errors" => a.errors.cmp(&b.errors),
            "interfaces" => a.down.cmp(&b.down),
            _ => std::cmp::Ordering::Equal,
        };
        // Ties (and the default) by resource id.
        column.then_with(|| a.id.cmp(&b.id))
    });
    if desc {
        rows.reverse();
    }
}

/// Orders names as people read them: runs of digits by their value (`Gi0/2` before
/// `Gi0/10`), the rest by character.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (digits(a), digits(b));
                let (na, nb) = (&a[..da], &b[..db]);
                let strip = |n: &[u8]| -> usize { n.iter().take_while(|&&c| c == b'0').count() };
                let (va, vb) = (&na[strip(na)..], &nb[strip(nb)..]);
                let order = va
                    .len()
                    .cmp(&vb.len())
                    .then_with(|| va.cmp(vb))
                    .then(da.cmp(&db));
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// `GET /`: every resource, its last poll and health; sortable, filtered with the
/// resource filter DSL, paged.
pub async fn fleet(state: web::Data<AppState>, query: web::Query<FleetQuery>) -> HttpResponse {
    let Some(sources) = &state.status else {
        return unavailable("this node has no status page");
    };
    let q = query.into_inner();
    let store = state.resources.clone();
    let resources = match web::block(move || store.all()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return unavailable(&format!("reading resources: {e}")),
        Err(e) => return unavailable(&format!("reading resources: {e}")),
    };
    let now = crate::model::now_ms();
    let views = sources.fleet.views(now);
    let filter_text = q.filter.clone().unwrap_or_default();
    let (filter, filter_error) = match filter_text.trim() {
        "" => (None, None),
        text => match ResourceFilter::parse(text) {
            Ok(f) => (Some(f), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    let mut rows: Vec<Row> = resources
        .iter()
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(*r)))
        .map(|r| Row::new(r, views.get(r.id.as_str())))
        .collect();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for row in &rows {
        *counts.entry(row.status).or_default() += 1;
    }
    let sort = q.sort.clone().unwrap_or_else(|| "id".into());
    let desc = q.desc.unwrap_or(0) == 1;
    sort_rows(&mut rows, &sort, desc);
    let per = q.per.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE);
    let pages = rows.len().div_ceil(per).max(1);
    let page_no = q.page.unwrap_or(1).clamp(1, pages);

    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Fleet <small>{} of {} resources{}</small></h1>",
        rows.len(),
        resources.len(),
        if filter.is_some() {
            " match the filter"
        } else {
            ""
        }
    );
    body.push_str("<ul class=\"counts\">");
    for (status, n) in &counts {
        let _ = write!(
            body,
            "<li class=\"status-{}\"><span class=\"n\">{n}</span> {}</li>",
            status.to_ascii_lowercase(),
            esc(status)
        );
    }
    body.push_str("</ul>");
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/\" class=\"filter\"><label>filter \
         <input name=\"filter\" size=\"60\" value=\"{}\" \
         placeholder='resource_class = \"network\" AND resource_endpoint LIKE \"10.%\"'></label> \
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><button>apply</button></form>",
        esc(&filter_text),
        esc(&sort)
    );
    if let Some(e) = &filter_error {
        let _ = write!(
            body,
            "<pre class=\"error\" id=\"filter-error\">{}</pre>",
            esc(e)
        );
    }
    let link = |sort_by: &str, desc: bool, page: usize| {
        format!(
            "/?filter={}&amp;sort={}&amp;desc={}&amp;page={page}&amp;per={per}",
            url_part(&filter_text),
            url_part(sort_by),
            u8::from(desc)
        )
    };
    body.push_str("<table class=\"fleet\" id=\"fleet\"><thead><tr>");
    for (key, heading) in COLUMNS {
        let (mark, next_desc) = if key == sort {
            (if desc { " ▼" } else { " ▲" }, !desc)
        } else {
            ("", false)
        };
        let _ = write!(
            body,
            "<th><a href=\"{}\">{heading}{mark}</a></th>",
            link(key, next_desc, 1)
        );
    }
    body.push_str("</tr></thead><tbody>");
    for row in rows.iter().skip((page_no - 1) * per).take(per) {
        let opt_time = |ms: Option<u64>| ms.map_or("–".to_string(), time);
        let _ = write!(
            body,
            "<tr data-status=\"{status}\"><td><a href=\"/device?id={id_url}\">{id}</a></td>\
             <td>{endpoint}</td><td>{kind}</td><td class=\"status status-{class}\">{status}</td>\
             <td>{last}</td><td class=\"num\">{duration}</td><td>{next}</td>\
             <td class=\"num\">{errors}</td><td class=\"num\">{up} / {down}</td></tr>",
            status = row.status,
            class = row.status.to_ascii_lowercase(),
            id_url = url_part(&row.id),
            id = esc(&row.id),
            endpoint = esc(&row.endpoint),
            kind = esc(&row.kind),
            last = opt_time(row.last_ms),
            duration = row.duration_ms.map_or("–".into(), |d| format!("{d} ms")),
            next = opt_time(row.next_ms),
            errors = row.errors,
            up = row.up.map_or("–".into(), |n| n.to_string()),
            down = row.down.map_or("–".into(), |n| n.to_string()),
        );
    }
    body.push_str("</tbody></table>");
    if pages > 1 {
        body.push_str("<nav class=\"pages\">");
        if page_no > 1 {
            let _ = write!(
                body,
                "<a href=\"{}\">← previous</a> ",
                link(&sort, desc, page_no - 1)
            );
        }
        let _ = write!(body, "page {page_no} of {pages}");
        if page_no < pages {
            let _ = write!(
                body,
                " <a href=\"{}\">next →</a>",
                link(&sort, desc, page_no + 1)
            );
        }
        body.push_str("</nav>");
    }
    html(page("Fleet", "Fleet", &body))
}

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    id: String,
}

/// Reads the metrics groups at `locations` back from the topic log (one copy each: from
/// the `<site>-processed` topics); a read that fails leaves the rest out.
fn read_groups(bus: &crate::bus::Bus, topics: &[String], locations: &[Location]) -> Vec<Value> {
    let mut out = Vec::new();
    let read = crate::http::devices::records::for_each_group(bus, topics, locations, |value| {
        if let Ok(group) = serde_json::from_slice::<Value>(value) {
            out.push(group);
        }
        Ok::<_, panoptes_storage::StorageError>(())
    });
    if let Err(e) = read {
        tracing::debug!(error = %e, "status page: reading a poll's groups back failed");
    }
    out
}

fn metric(group: &Value, name: &str) -> Option<f64> {
    group["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["metric_name"] == name)?
        .get("metric_value")?
        .as_f64()
}

/// A rate: the gauge the rate transform made of a counter (absent until the second poll,
/// when the metric is still the counter).
fn rate(group: &Value, name: &str) -> Option<f64> {
    group["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["metric_name"] == name && m["metric_type"] == "gauge")?
        .get("metric_value")?
        .as_f64()
}

fn dimension(group: &Value, name: &str) -> Option<String> {
    group["dimensions"]
        .as_array()?
        .iter()
        .find(|d| d["dimension_name"] == name)
        .and_then(|d| d["dimension_value"].as_str().map(str::to_owned))
}

/// `GET /device?id=…`: one resource, its enrichments, its last metrics groups, and its
/// interfaces with the last hour's traffic.
pub async fn device(state: web::Data<AppState>, query: web::Query<DeviceQuery>) -> HttpResponse {
    let Some(sources) = &state.status else {
        return unavailable("this node has no status page");
    };
    let id = query.into_inner().id;
    let store = state.resources.clone();
    let resources = match web::block(move || store.all()).await {
        Ok(Ok(r)) => r,
        _ => return unavailable("cannot read resources"),
    };
    let Some(resource) = resources.into_iter().find(|r| r.id.as_str() == id) else {
        return html_with(
            actix_web::http::StatusCode::NOT_FOUND,
            page(
                "unknown resource",
                "",
                &format!("<p class=\"error\">no resource `{}`</p>", esc(&id)),
            ),
        );
    };
    let now = crate::model::now_ms();
    let view = sources.fleet.view(&id, now);
    let history = sources
        .fleet
        .locations(&id, now.saturating_sub(SPARK_WINDOW_MS));
    let (bus, enrichments, prefix, topics) = (
        state.bus.clone(),
        sources.enrichments.clone(),
        format!("{id}:"),
        sources.topics.clone(),
    );
    let read = web::block(move || {
        let polls: Vec<(u64, Vec<Value>)> = history
            .iter()
            .map(|(at, locations)| (*at, read_groups(&bus, &topics, locations)))
            .collect();
        let stored = enrichments
            .scan_prefix(prefix.as_bytes())
            .unwrap_or_default()
            .into_iter()
            .map(|entry| {
                let key = String::from_utf8_lossy(&entry.0).to_string();
                let ttl = enrichments.ttl_remaining(&entry.0).ok().flatten();
                let value: Value = crate::model::decode_stored_enrichment(&entry.1)
                    .ok()
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or(Value::Null);
                (key, ttl, value)
            })
            .collect::<Vec<_>>();
        (polls, stored)
    })
    .await;
    let Ok((polls, stored)) = read else {
        return unavailable("cannot read the device's records");
    };

    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{} <small>{}</small></h1><table class=\"kv\" id=\"resource\">",
        esc(resource.id.as_str()),
        esc(&resource.endpoint)
    );
    let mut kv = |k: &str, v: &str| {
        let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    };
    kv("site", resource.site.as_str());
    kv(
        "class / subclass / type",
        &format!(
            "{} / {} / {}",
            resource.class, resource.subclass, resource.kind
        ),
    );
    kv("discovered by", resource.plugin.as_deref().unwrap_or("–"));
    for (k, v) in &resource.metadata {
        kv(&format!("metadata {k}"), v);
    }
    body.push_str("</table>");
    if let Some(v) = &view {
        if let Some(last) = &v.last {
            let _ = write!(
                body,
                "<p>last poll {} by {} in {} ms: <span class=\"status\">{}</span>; {} failed polls in the last hour; next poll {}</p>",
                time(last.at_ms),
                esc(&last.plugin),
                last.duration_ms,
                last.status.map_or("–", status_name),
                v.failures_last_hour,
                v.next_ms.map_or("–".into(), time),
            );
        }
    }

    body.push_str("<h2>Enrichments</h2><table id=\"enrichments\"><thead><tr><th>namespace</th><th>age</th><th>expires in</th><th>entries</th></tr></thead><tbody>");
    for (key, ttl, value) in &stored {
        let namespace = key.strip_prefix(&format!("{id}:")).unwrap_or(key);
        let created = value
            .pointer("/metadata/_enrichment_group_creation_timestamp")
            .and_then(Value::as_f64);
        let age = created.map_or("–".to_string(), |c| {
            format!("{} s", (now as f64 / 1000.0 - c).max(0.0) as u64)
        });
        let entries = value
            .get("data")
            .and_then(|d| {
                d.as_object()
                    .map(|o| o.len())
                    .or(d.as_array().map(Vec::len))
            })
            .map_or("–".into(), |n| n.to_string());
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{age}</td><td>{}</td><td class=\"num\">{entries}</td></tr>",
            esc(namespace),
            ttl.map_or("–".into(), |t| format!("{} s", t.as_secs())),
        );
    }
    body.push_str("</tbody></table>");

    // Interfaces: the newest poll's groups, each with its last hour of rates.
    let latest = polls.last().map(|(_, g)| g.as_slice()).unwrap_or_default();
    let mut series: BTreeMap<String, (Series, Series)> = BTreeMap::new();
    for (at, groups) in &polls {
        for g in groups
            .iter()
            .filter(|g| g["metrics_group_type"] == "interface")
        {
            let Some(name) = dimension(g, "interface_name") else {
                continue;
            };
            let entry = series.entry(name).or_default();
            if let Some(v) = rate(g, "bits_in") {
                entry.0.push((*at, v));
            }
            if let Some(v) = rate(g, "bits_out") {
                entry.1.push((*at, v));
            }
        }
    }
    let mut interfaces: Vec<(String, &Value)> = latest
        .iter()
        .filter(|g| g["metrics_group_type"] == "interface")
        .map(|g| (dimension(g, "interface_name").unwrap_or_default(), g))
        .collect();
    interfaces.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    if !interfaces.is_empty() {
        body.push_str(
            "<h2>Interfaces</h2><table id=\"interfaces\"><thead><tr><th>interface</th><th>description</th>\
             <th>oper</th><th>bits/s in</th><th>last hour</th><th>bits/s out</th><th>last hour</th>\
             <th>errors/s in / out</th></tr></thead><tbody>",
        );
        for (name, g) in interfaces {
            let (ins, outs) = series.get(&name).cloned().unwrap_or_default();
            let rate = |m: &str| rate(g, m).map_or("–".into(), si);
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td>{}</td><td class=\"num\">{} / {}</td></tr>",
                esc(&name),
                esc(&dimension(g, "description").unwrap_or_default()),
                metric(g, "oper_state").map_or("–", |s| if s == 1.0 { "up" } else { "down" }),
                rate("bits_in"),
                sparkline(&ins, &format!("{name} bits in, last hour")),
                rate("bits_out"),
                sparkline(&outs, &format!("{name} bits out, last hour")),
                rate("errors_in"),
                rate("errors_out"),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("<h2>Last metrics groups</h2>");
    for g in latest
        .iter()
        .filter(|g| g["metrics_group_type"] != "interface")
    {
        let _ = write!(
            body,
            "<h3>{}</h3><table class=\"kv\">",
            esc(g["metrics_group_type"].as_str().unwrap_or("?"))
        );
        for d in g["dimensions"].as_array().into_iter().flatten() {
            let _ = write!(
                body,
                "<tr><th>{}</th><td>{}</td></tr>",
                esc(d["dimension_name"].as_str().unwrap_or("")),
                esc(&d["dimension_value"].to_string())
            );
        }
        for m in g["metrics"].as_array().into_iter().flatten() {
            let _ = write!(
                body,
                "<tr><th>{} <small>{}</small></th><td class=\"num\">{}</td></tr>",
                esc(m["metric_name"].as_str().unwrap_or("")),
                esc(m["metric_type"].as_str().unwrap_or("")),
                esc(&m["metric_value"].to_string())
            );
        }
        body.push_str("</table>");
    }
    html(page(resource.id.as_str(), "", &body))
}

/// `GET /pipeline`: plugins, topics and lag, the InfluxDB sink, storage, the cluster.
pub async fn pipeline(state: web::Data<AppState>) -> HttpResponse {
    let Some(sources) = &state.status else {
        return unavailable("this node has no status page");
    };
    let tables = sources.pipeline.tables().await;
    let mut body = String::from("<h1>Pipeline</h1>");
    for t in tables {
        let _ = write!(body, "<h2>{}</h2>", esc(&t.title));
        if !t.note.is_empty() {
            let _ = write!(body, "<p>{}</p>", esc(&t.note));
        }
        if t.headers.is_empty() {
            continue;
        }
        let _ = write!(
            body,
            "<table id=\"{}\"><thead><tr>",
            esc(&t.title.to_ascii_lowercase().replace(' ', "-"))
        );
        for h in &t.headers {
            let _ = write!(body, "<th>{}</th>", esc(h));
        }
        body.push_str("</tr></thead><tbody>");
        for row in &t.rows {
            body.push_str("<tr>");
            for cell in row {
                let _ = write!(body, "<td>{}</td>", esc(cell));
            }
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table>");
    }
    html(page("Pipeline", "Pipeline", &body))
}

#[cfg(test)]
mod tests {
    use super::{natural_cmp, sort_rows, Row};

    fn row(id: &str, errors: u32, status: &'static str) -> Row {
        Row {
            id: id.into(),
            endpoint: format!("10.0.0.{}", 9 - errors),
            kind: "switch".into(),
            status,
            last_ms: None,
            duration_ms: None,
            next_ms: None,
            errors,
            up: None,
            down: None,
        }
    }

    #[test]
    fn rows_sort_by_a_column_then_by_id_and_reverse() {
        let mut rows = vec![
            row("c", 1, "SUCCESS"),
            row("a", 2, "TIMEOUT"),
            row("b", 1, "SUCCESS"),
        ];
        let ids = |rows: &[Row]| rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        sort_rows(&mut rows, "errors", false);
        assert_eq!(ids(&rows), ["b", "c", "a"]);
        sort_rows(&mut rows, "errors", true);
        assert_eq!(ids(&rows), ["a", "c", "b"]);
        sort_rows(&mut rows, "status", false);
        assert_eq!(ids(&rows), ["b", "c", "a"]);
        sort_rows(&mut rows, "endpoint", false);
        assert_eq!(ids(&rows), ["a", "b", "c"]);
        sort_rows(&mut rows, "no-such-column", false);
        assert_eq!(ids(&rows), ["a", "b", "c"]);
    }

    #[test]
    fn interface_names_sort_by_the_numbers_in_them() {
        let mut names = vec![
            "Gi0/10",
            "Gi0/2",
            "Gi0/1",
            "Te1/0/1",
            "Gi0/02",
            "Eth1",
            "Gi0/1.100",
            "Gi0/1.20",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "Eth1",
                "Gi0/1",
                "Gi0/1.20",
                "Gi0/1.100",
                "Gi0/2",
                "Gi0/02",
                "Gi0/10",
                "Te1/0/1"
            ]
        );
    }
}
