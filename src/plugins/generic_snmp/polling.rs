//! Generic SNMP polling (`plugin_polling_generic_snmp`): runs a DSL document against a
//! device (spec §9.2) and returns its metrics groups plus the polling-status group.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::SystemTime;

use serde_json::Value as Json;

use super::document::{Document, Group, Indices, SchemaVersion, TableSource, Target};
use super::expr::{Env, EvalError, Table, Value};
use crate::config::PluginConfig;
use crate::model::{
    Dimension, Metric, MetricType, MetricValue, MetricsGroup, ModelError, Resource,
};
use crate::plugins::enrichment_cache::EnrichmentCache;
use crate::plugins::group_set::GroupSet;
use crate::plugins::status::{DeviceStatus, StatusTracker};
use crate::plugins::PluginError;
use crate::snmp::{Oid, SnmpClient, SnmpError, SnmpValue, Varbind};

pub const DEFAULT_MAX_REPETITIONS: u32 = 25;
pub const DEFAULT_NON_REPEATERS: u32 = 0;
pub const DEFAULT_STATUS_METRIC: &str = "status";

/// What the plugin file says, read once.
#[derive(Debug, Clone)]
pub struct Options {
    pub plugin_name: String,
    pub interval: u64,
    pub schema: SchemaVersion,
    /// `[main] namespace`: where the document is stored.
    pub namespace: String,
    /// `[main] polling_status_metric_name`.
    pub status_metric: String,
    pub non_repeaters: Option<u32>,
    pub max_repetitions: Option<u32>,
    /// `[enrichment] preload` is set: read the document from the enrichment store.
    pub from_store: bool,
    /// `[enrichment] file`, resolved against the plugin file's directory.
    pub file: Option<PathBuf>,
}

impl Options {
    pub fn from_plugin(plugin: &PluginConfig) -> Options {
        let file = plugin
            .get("enrichment", "file")
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let p = Path::new(f);
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    plugin
                        .path
                        .parent()
                        .map(|d| d.join(p))
                        .unwrap_or_else(|| p.to_path_buf())
                }
            });
        Options {
            plugin_name: plugin.name.clone(),
            interval: plugin.execute_frequency,
            schema: SchemaVersion::parse(plugin.get("main", "enrichment_schema_version")),
            namespace: plugin
                .get("main", "namespace")
                .unwrap_or("metrics")
                .trim()
                .to_string(),
            status_metric: plugin
                .get("main", "polling_status_metric_name")
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(DEFAULT_STATUS_METRIC)
                .to_string(),
            non_repeaters: plugin.snmp.non_repeaters,
            max_repetitions: plugin.snmp.max_repetitions,
            from_store: !plugin.preload.is_empty(),
            file,
        }
    }
}

/// A device's DSL document, as [`load_document`] found it.
pub enum Loaded {
    /// JSON to compile: from the enrichment store, or read from `file` now.
    Json {
        json: Json,
        file: Option<(PathBuf, FileStamp)>,
    },
    /// Compiled before from the same file, unchanged since (modification time and size).
    Compiled(Arc<Document>),
}

/// A file's modification time and size, to tell that it has not changed.
pub type FileStamp = (SystemTime, u64);

/// Documents compiled from `[enrichment] file`s, by path and schema: the file is read and
/// compiled again only when its stamp changes. A like-for-like benchmark (39 IF-MIB
/// columns) spent 5% of its CPU reading and compiling the same file every poll.
type Compiled = HashMap<(PathBuf, SchemaVersion), (FileStamp, Arc<Document>)>;

fn compiled_files() -> MutexGuard<'static, Compiled> {
    static FILES: OnceLock<Mutex<Compiled>> = OnceLock::new();
    FILES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn remember(path: PathBuf, schema: SchemaVersion, stamp: FileStamp, doc: &Arc<Document>) {
    compiled_files().insert((path, schema), (stamp, Arc::clone(doc)));
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Finds the DSL document for a device, failing the way the original does: an unusable
/// source is an enrichment failure, both sources or none a configuration error (status
/// INTERNAL_FAILURE).
pub fn load_document(
    options: &Options,
    cache: Result<&EnrichmentCache, PluginError>,
    resource: &Resource,
) -> Result<Loaded, PluginError> {
    let json = |json| Loaded::Json { json, file: None };
    match (options.from_store, &options.file) {
        (false, Some(path)) => {
            let stamp = stamp(path);
            if let Some(stamp) = stamp {
                let key = (path.clone(), options.schema);
                if let Some((_, doc)) = compiled_files().get(&key).filter(|(s, _)| *s == stamp) {
                    return Ok(Loaded::Compiled(Arc::clone(doc)));
                }
            }
            let json = read_document(options, cache, resource)?;
            Ok(Loaded::Json {
                json,
                file: stamp.map(|s| (path.clone(), s)),
            })
        }
        _ => read_document(options, cache, resource).map(json),
    }
}

fn read_document(
    options: &Options,
    cache: Result<&EnrichmentCache, PluginError>,
    resource: &Resource,
) -> Result<Json, PluginError> {
    match (options.from_store, &options.file) {
        (true, Some(_)) => Err(PluginError::Config(format!(
            "plugin `{}`: the DSL document is configured both by [enrichment] preload and [enrichment] file; use one",
            options.plugin_name
        ))),
        (true, None) => {
            let cache = cache?;
            cache
                .value("self", &options.namespace, &resource.endpoint)
                .cloned()
                .ok_or_else(|| {
                    PluginError::Enrichment(format!(
                        "plugin `{}`: no `{}` enrichment for resource `{}` (key `{}`)",
                        options.plugin_name, options.namespace, resource.id, resource.endpoint
                    ))
                })
        }
        (false, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                PluginError::Enrichment(format!(
                    "plugin `{}`: cannot read enrichment file {}: {e}",
                    options.plugin_name,
                    path.display()
                ))
            })?;
            serde_json::from_str(&text).map_err(|e| {
                PluginError::Enrichment(format!(
                    "plugin `{}`: enrichment file {} is not valid JSON: {e}",
                    options.plugin_name,
                    path.display()
                ))
            })
        }
        (false, None) => Err(PluginError::Config(format!(
            "plugin `{}`: no DSL document source: set [enrichment] preload = self:{} or [enrichment] file",
            options.plugin_name, options.namespace
        ))),
    }
}

/// Compiles a document, naming the plugin in the error.
pub fn compile(doc: &Json, options: &Options) -> Result<Document, PluginError> {
    Document::compile(doc, options.schema).map_err(|e| {
        // The file, when the document comes from one (else the enrichment store).
        let source = match (&options.file, options.from_store) {
            (Some(file), false) => format!(" {}", file.display()),
            _ => String::new(),
        };
        PluginError::Config(format!(
            "plugin `{}`: DSL document{source}: {e}",
            options.plugin_name
        ))
    })
}

/// Polls the device. Always returns at least the status group: failures show there.
pub async fn run(
    client: Result<&mut SnmpClient, PluginError>,
    resource: &Resource,
    document: Result<Loaded, PluginError>,
    options: &Options,
    now: f64,
) -> Result<Vec<MetricsGroup>, ModelError> {
    let mut status = StatusTracker::default();
    let mut out = GroupSet::default();
    if let Err(e) = poll(
        client,
        resource,
        document,
        options,
        now,
        &mut status,
        &mut out,
    )
    .await
    {
        tracing::warn!(plugin = %options.plugin_name, resource = %resource.id,
            endpoint = %resource.endpoint, error = %e, "generic SNMP polling failed");
        status.failure("device", DeviceStatus::of_error(&e));
    }
    out.add(status.group(resource, &options.status_metric, options.interval, now)?);
    Ok(out.into_vec())
}

/// What the tables hold after fetching: by slot, as the document numbers them.
pub(crate) struct Fetched {
    pub tables: Vec<Table>,
    pub scalars: Vec<Value>,
}

async fn poll(
    client: Result<&mut SnmpClient, PluginError>,
    resource: &Resource,
    document: Result<Loaded, PluginError>,
    options: &Options,
    now: f64,
    status: &mut StatusTracker,
    out: &mut GroupSet,
) -> Result<(), PluginError> {
    let client = client?;
    let doc = match document? {
        Loaded::Compiled(doc) => doc,
        Loaded::Json { json, file } => {
            let doc = Arc::new(compile(&json, options)?);
            if let Some((path, stamp)) = file {
                remember(path, options.schema, stamp, &doc);
            }
            doc
        }
    };
    let fetched = fetch(client, &doc, options, status).await;
    if doc.tables.is_empty() && doc.scalars.is_empty() {
        return Err(PluginError::Internal(format!(
            "plugin `{}`: the DSL document has no oids",
            options.plugin_name
        )));
    }
    assemble(&doc, &fetched, resource, options, now, status, out)
}

/// Builds every metrics group of `doc` from the fetched tables (spec §9.2 steps 2-3).
pub(crate) fn assemble(
    doc: &Document,
    fetched: &Fetched,
    resource: &Resource,
    options: &Options,
    now: f64,
    status: &mut StatusTracker,
    out: &mut GroupSet,
) -> Result<(), PluginError> {
    // One copy for every group of the poll to share.
    let resource = Arc::new(resource.clone());
    for group in &doc.groups {
        process_group(group, fetched, &resource, options, now, status, out)?;
    }
    Ok(())
}

/// Walks and gets every table, recording per metrics group what worked.
async fn fetch(
    client: &mut SnmpClient,
    doc: &Document,
    options: &Options,
    status: &mut StatusTracker,
) -> Fetched {
    let non_repeaters = doc
        .snmp
        .non_repeaters
        .or(options.non_repeaters)
        .unwrap_or(DEFAULT_NON_REPEATERS);
    let max_repetitions = doc
        .snmp
        .max_repetitions
        .or(options.max_repetitions)
        .unwrap_or(DEFAULT_MAX_REPETITIONS)
        .max(1);
    // After a timeout or network error the device is gone for this poll: later walks
    // fail the same way without waiting out their own timeouts.
    let mut dead: Option<DeviceStatus> = None;
    // The walked tables all at once when the document asks for plain walks (no
    // non-repeaters, which mean something else in a request of several columns): the
    // rows of each are those of its own walk. A failure of the device on the way counts
    // as the first walk's, as it would have been walked first.
    let mut walked_together = None;
    let mut first_failure = None;
    if non_repeaters == 0 {
        let roots: Vec<Oid> = doc
            .tables
            .iter()
            .filter_map(|def| match &def.source {
                TableSource::BulkWalk { oid, .. } => Some(oid.clone()),
                TableSource::Static(_) => None,
            })
            .collect();
        match client
            .walk_together(
                &roots,
                max_repetitions,
                crate::snmp::DEFAULT_WALK_LIMIT,
                false,
            )
            .await
        {
            Ok(walked) => walked_together = walked.map(|w| roots.into_iter().zip(w)),
            Err(e) => first_failure = Some(e),
        }
    }
    let mut tables = Vec::with_capacity(doc.tables.len());
    for def in &doc.tables {
        let table = match &def.source {
            TableSource::Static(values) => values.clone(),
            TableSource::BulkWalk {
                oid,
                index_transform,
            } => {
                let walked = walked_together.as_mut().and_then(Iterator::next);
                let result = match dead {
                    Some(s) => Err(s),
                    None => match (walked, first_failure.take()) {
                        (Some((root, rows)), _) => Ok(text_rows(&root, rows)),
                        (None, Some(e)) => Err(e),
                        (None, None) => walk(client, oid, non_repeaters, max_repetitions).await,
                    }
                    .map_err(|e| {
                        tracing::warn!(plugin = %options.plugin_name, table = %def.name,
                                error = %e, "walk failed");
                        let s = DeviceStatus::of_error(&PluginError::Snmp(e));
                        if matches!(s, DeviceStatus::Timeout | DeviceStatus::NetworkFailure) {
                            dead = Some(s);
                        }
                        s
                    }),
                };
                match result {
                    Err(s) => {
                        status.failure("device", s);
                        mark(doc, &def.name, status, Some(s));
                        Table::new()
                    }
                    Ok(rows) if rows.is_empty() => {
                        mark(doc, &def.name, status, Some(DeviceStatus::MissingMetrics));
                        Table::new()
                    }
                    Ok(rows) => {
                        mark(doc, &def.name, status, None);
                        transform_indices(rows, index_transform)
                            .into_iter()
                            .collect()
                    }
                }
            }
        };
        tables.push(table);
    }
    let mut scalars = Vec::with_capacity(doc.scalars.len());
    for def in &doc.scalars {
        let result = match dead {
            Some(s) => Err(s),
            None => match client.get(std::slice::from_ref(&def.oid)).await {
                Ok(vbs) => Ok(vbs.into_iter().next().map(|vb| vb.value)),
                Err(e) => Err(DeviceStatus::of_error(&PluginError::Snmp(e))),
            },
        };
        let value = match result {
            Err(s) => {
                status.failure("device", s);
                mark(doc, &def.name, status, Some(s));
                Value::None
            }
            Ok(Some(v)) if !v.is_exception() => {
                mark(doc, &def.name, status, None);
                Value::Str(snmp_text(&v))
            }
            Ok(_) => {
                mark(doc, &def.name, status, Some(DeviceStatus::MissingMetrics));
                Value::None
            }
        };
        scalars.push(value);
    }
    Fetched { tables, scalars }
}

/// Replaces device indices found in `index_transform` by their logical index.
pub(crate) fn transform_indices(
    rows: Vec<(String, Value)>,
    index_transform: &BTreeMap<String, String>,
) -> Vec<(String, Value)> {
    rows.into_iter()
        .map(|(index, value)| match index_transform.get(&index) {
            Some(logical) => (logical.clone(), value),
            None => (index, value),
        })
        .collect()
}

/// Records success (`None`) or a failure for every group whose values mention `table`.
fn mark(doc: &Document, table: &str, status: &mut StatusTracker, failure: Option<DeviceStatus>) {
    let mut seen: Vec<&str> = Vec::new();
    for g in doc.groups.iter().filter(|g| g.mentions(table)) {
        if seen.contains(&g.name.as_str()) {
            continue;
        }
        seen.push(&g.name);
        match failure {
            None => status.success(&g.name),
            Some(s) => status.failure(&g.name, s),
        }
    }
}

/// Bulk-walks the subtree under `root` with the document's GETBULK parameters and keys
/// each value by the rest of its OID (the original's index).
pub async fn walk(
    client: &mut SnmpClient,
    root: &Oid,
    non_repeaters: u32,
    max_repetitions: u32,
) -> Result<Vec<(String, Value)>, SnmpError> {
    // A broken agent must not keep us here forever: the client's row and byte bounds.
    Ok(client
        .walk_rows(
            root,
            non_repeaters,
            max_repetitions,
            crate::snmp::DEFAULT_WALK_LIMIT,
        )
        .await?
        .into_iter()
        .map(|(index, value)| (index, Value::Str(snmp_text(&value))))
        .collect())
}

/// Walked rows keyed by their index (the OID after `root`), values as text.
fn text_rows(root: &Oid, rows: Vec<Varbind>) -> Vec<(String, Value)> {
    rows.into_iter()
        .filter_map(|vb| {
            let index = crate::snmp::dotted(vb.oid.suffix_after(root)?);
            Some((index, Value::Str(snmp_text(&vb.value))))
        })
        .collect()
}

/// A value as the original's SNMP layer handed it to expressions: text, decimal for
/// numbers, dotted with a leading dot for OIDs.
pub fn snmp_text(v: &SnmpValue) -> String {
    match v {
        SnmpValue::OctetString(b) | SnmpValue::Opaque(b) => String::from_utf8_lossy(b).into_owned(),
        SnmpValue::ObjectIdentifier(oid) => oid.to_dotted_leading(),
        SnmpValue::Null => String::new(),
        other => other.to_display_string(),
    }
}

/// Evaluated values of one kind of target: per index, and top level.
/// Names and indexes are borrowed from the document and the fetched tables: a 48-row,
/// 39-column document made ≈3,700 string copies a poll here before.
#[derive(Default)]
struct Evaluated<'a> {
    indexed: BTreeMap<&'a str, Vec<(&'a str, Value)>>,
    top: Vec<(&'a str, Value)>,
    /// Metric types by name (all metrics, evaluated or not).
    types: BTreeMap<&'a str, MetricType>,
}

impl Evaluated<'_> {
    fn kind(&self, metric: &str) -> MetricType {
        self.types.get(metric).copied().unwrap_or(MetricType::Gauge)
    }
}

/// The indices a target is evaluated at (spec §9.2 step 2).
fn indices_of<'a>(t: &'a Target, tables: &'a [Table]) -> Vec<&'a str> {
    match &t.indices {
        Indices::Listed(list) => list.iter().map(String::as_str).collect(),
        Indices::From(slot) => tables
            .get(*slot)
            .map(|x| x.keys().map(String::as_str).collect())
            .unwrap_or_default(),
        Indices::FirstTable(Some(slot)) => tables
            .get(*slot)
            .map(|x| x.keys().map(String::as_str).collect())
            .unwrap_or_default(),
        Indices::FirstTable(None) => Vec::new(),
    }
}

/// One value: expression, cast, transform.
fn value_of(t: &Target, env: &Env) -> Result<Value, EvalError> {
    if let Some(row) = env.row_at_index(&t.expr) {
        return cast_and_transform(t, env, row?);
    }
    let v = env.eval(&t.expr)?;
    cast_and_transform(t, env, &v)
}

fn cast_and_transform(t: &Target, env: &Env, v: &Value) -> Result<Value, EvalError> {
    let v = t.cast.apply(v)?;
    match &t.transform {
        Some(f) => env.apply(f, v),
        None => Ok(v),
    }
}

fn evaluate<'a>(
    targets: &'a [Target],
    fetched: &'a Fetched,
    options: &Options,
    group: &str,
) -> Result<Evaluated<'a>, PluginError> {
    let mut ev = Evaluated::default();
    for t in targets {
        ev.types.insert(&t.name, t.metric_type);
        if t.indexed {
            for index in indices_of(t, &fetched.tables) {
                let env = Env {
                    tables: &fetched.tables,
                    scalars: &fetched.scalars,
                    index: Some(index),
                    context: None,
                };
                match value_of(t, &env) {
                    Ok(v) => ev
                        .indexed
                        .entry(index)
                        // Room for every target at once (grown by doubling, the rows
                        // of a 39-column document were copied five times).
                        .or_insert_with(|| Vec::with_capacity(targets.len()))
                        .push((&t.name, v)),
                    Err(e) => {
                        tracing::debug!(plugin = %options.plugin_name, group, target = %t.name,
                        index = %index, error = %e, "value skipped for this index")
                    }
                }
            }
        } else {
            let env = Env {
                tables: &fetched.tables,
                scalars: &fetched.scalars,
                index: None,
                context: None,
            };
            let v = match env.eval(&t.expr) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(plugin = %options.plugin_name, group, target = %t.name,
                        error = %e, "value skipped");
                    continue;
                }
            };
            // The original drops falsy top-level values (so a literal 0 metric is dropped).
            if !v.truthy(|slot| fetched.tables.get(slot).map(|x| x.len()).unwrap_or(0)) {
                continue;
            }
            // A cast or transform failing here ends the whole poll in the original.
            let v = cast_and_transform(t, &env, &v).map_err(|e| {
                PluginError::Internal(format!(
                    "plugin `{}`: group `{group}` target `{}`: {e}",
                    options.plugin_name, t.name
                ))
            })?;
            ev.top.push((&t.name, v));
        }
    }
    Ok(ev)
}

/// Builds a group's metrics groups (spec §9.2 step 3), adding them to `out`.
fn process_group(
    group: &Group,
    fetched: &Fetched,
    resource: &Arc<Resource>,
    options: &Options,
    now: f64,
    status: &mut StatusTracker,
    out: &mut GroupSet,
) -> Result<(), PluginError> {
    let metrics = evaluate(&group.metrics, fetched, options, &group.name)?;
    let dimensions = evaluate(&group.dimensions, fetched, options, &group.name)?;
    let fail = |e: ModelError| {
        PluginError::Internal(format!(
            "plugin `{}`: group `{}`: {e}",
            options.plugin_name, group.name
        ))
    };
    let new_group = || MetricsGroup::new(Arc::clone(resource), &group.name, options.interval, now);
    let v02 = options.schema == SchemaVersion::V02;
    let mut finish = |g: MetricsGroup, empty_dimension: bool, status: &mut StatusTracker| {
        if empty_dimension && !group.ignore_empty_dimensions {
            tracing::warn!(plugin = %options.plugin_name, group = %group.name,
                "a dimension evaluated to an empty string: metrics group dropped");
            status.failure(&group.name, DeviceStatus::InternalFailure);
        } else {
            out.add(g);
        }
    };
    let add_metrics = |g: &mut MetricsGroup, values: &[(&str, Value)]| {
        values
            .iter()
            .try_for_each(|(name, v)| add_metric(g, name, v, metrics.kind(name), now))
            .map_err(fail)
    };
    if !metrics.indexed.is_empty() {
        for (index, values) in &metrics.indexed {
            let mut g = new_group().map_err(fail)?;
            // Sized once for what is added below (the lists were grown by doubling).
            g.metrics
                .reserve_exact(values.len() + if v02 { metrics.top.len() } else { 0 });
            let dims = dimensions.indexed.get(index).map_or(0, Vec::len);
            g.dimensions.reserve_exact(dims + dimensions.top.len());
            add_metrics(&mut g, values)?;
            let mut empty = match dimensions.indexed.get(index) {
                Some(dims) => add_dimensions(&mut g, dims).map_err(fail)?,
                None => false,
            };
            empty |= add_dimensions(&mut g, &dimensions.top).map_err(fail)?;
            if v02 && !metrics.top.is_empty() {
                add_metrics(&mut g, &metrics.top)?;
                // The original adds the top-level dimensions a second time here, which
                // fails when there are any.
                empty |= add_dimensions(&mut g, &dimensions.top).map_err(fail)?;
            }
            if v02 || !g.metrics.is_empty() {
                finish(g, empty, status);
            }
        }
        if !v02 && !metrics.top.is_empty() {
            let mut g = new_group().map_err(fail)?;
            add_metrics(&mut g, &metrics.top)?;
            let empty = add_dimensions(&mut g, &dimensions.top).map_err(fail)?;
            finish(g, empty, status);
        }
    } else {
        let mut g = new_group().map_err(fail)?;
        let mut empty = false;
        if !metrics.top.is_empty() {
            add_metrics(&mut g, &metrics.top)?;
            empty = add_dimensions(&mut g, &dimensions.top).map_err(fail)?;
        }
        if v02 || !g.metrics.is_empty() {
            finish(g, empty, status);
        }
    }
    Ok(())
}

fn add_metric(
    g: &mut MetricsGroup,
    name: &str,
    v: &Value,
    kind: MetricType,
    now: f64,
) -> Result<(), ModelError> {
    let value = match v {
        Value::Int(i) => MetricValue::Int(*i),
        Value::Float(f) => MetricValue::Float(*f),
        other => {
            return Err(ModelError::Invalid {
                field: format!("metric `{name}`"),
                problem: format!("value {other} ({}) is not a number", other.type_name()),
            })
        }
    };
    g.add_metric(Metric::new(name, value, kind, now)?)
}

/// Adds every dimension of `dims`, in order; returns true when one was empty.
fn add_dimensions(g: &mut MetricsGroup, dims: &[(&str, Value)]) -> Result<bool, ModelError> {
    let mut empty = false;
    for (name, v) in dims {
        empty |= add_dimension(g, name, v)?;
    }
    Ok(empty)
}

/// Adds a dimension; returns true when its value was empty (not added, as the original).
fn add_dimension(g: &mut MetricsGroup, name: &str, v: &Value) -> Result<bool, ModelError> {
    let Value::Str(s) = v else {
        return Err(ModelError::Invalid {
            field: format!("dimension `{name}`"),
            problem: format!("value {v} ({}) is not text", v.type_name()),
        });
    };
    if s.is_empty() {
        return Ok(true);
    }
    g.add_dimension(Dimension::new(name, s)?)?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn resource() -> Resource {
        Resource::from_json(&json!({"resource_site": "s", "resource_class": "network",
            "resource_subclass": "x", "resource_type": "t", "resource_id": "r",
            "resource_endpoint": "127.0.0.1", "resource_plugin": "p",
            "resource_creation_timestamp": 1.0, "resource_metadata": {}}))
        .unwrap()
    }

    fn options(schema: SchemaVersion) -> Options {
        Options {
            plugin_name: "test".into(),
            interval: 60,
            schema,
            namespace: "metrics".into(),
            status_metric: "polling_status".into(),
            non_repeaters: None,
            max_repetitions: None,
            from_store: true,
            file: None,
        }
    }

    #[test]
    fn a_document_file_is_compiled_once_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        let doc = |group: &str| {
            json!({"oids": {"up": {"method": "get", "oid": "1.3.6.1.2.1.1.3.0"}},
                   "metrics_groups": [{"group_name": group, "dimensions": {},
                                       "metrics": {"uptime": "up"}}]})
            .to_string()
        };
        std::fs::write(&path, doc("first")).unwrap();
        let mut opts = options(SchemaVersion::V01);
        opts.from_store = false;
        opts.file = Some(path.clone());
        let load = || load_document(&opts, Ok(&EnrichmentCache::default()), &resource());
        let Ok(Loaded::Json {
            json,
            file: Some((p, stamp)),
        }) = load()
        else {
            panic!("a file never seen is read");
        };
        assert_eq!(json["metrics_groups"][0]["group_name"], "first");
        remember(
            p,
            opts.schema,
            stamp,
            &Arc::new(compile(&json, &opts).unwrap()),
        );
        let Ok(Loaded::Compiled(compiled)) = load() else {
            panic!("an unchanged file is not read again");
        };
        assert_eq!(compiled.groups[0].name, "first");
        // Another schema is another document.
        let mut v02 = opts.clone();
        v02.schema = SchemaVersion::V02;
        assert!(matches!(
            load_document(&v02, Ok(&EnrichmentCache::default()), &resource()),
            Ok(Loaded::Json { .. })
        ));
        // Edited (another size): read and compiled again.
        std::fs::write(&path, doc("second, longer")).unwrap();
        let Ok(Loaded::Json { json, .. }) = load() else {
            panic!("an edited file is read again");
        };
        assert_eq!(json["metrics_groups"][0]["group_name"], "second, longer");
        // Gone: the read error, as before the cache.
        std::fs::remove_file(&path).unwrap();
        let Err(PluginError::Enrichment(e)) = load() else {
            panic!("a missing file is an enrichment failure");
        };
        assert!(e.contains("cannot read enrichment file"), "{e}");
    }

    /// Runs a document's groups over already-fetched static tables.
    fn assemble(doc: &Json, schema: SchemaVersion) -> (Vec<MetricsGroup>, DeviceStatus) {
        let doc = Document::compile(doc, schema).unwrap();
        let tables = doc
            .tables
            .iter()
            .map(|t| match &t.source {
                TableSource::Static(v) => v.clone(),
                TableSource::BulkWalk { .. } => Table::new(),
            })
            .collect();
        let fetched = Fetched {
            tables,
            scalars: vec![],
        };
        let mut status = StatusTracker::default();
        let mut out = GroupSet::default();
        super::assemble(
            &doc,
            &fetched,
            &resource(),
            &options(schema),
            1.0,
            &mut status,
            &mut out,
        )
        .unwrap();
        (out.into_vec(), status.overall())
    }

    fn value_of(g: &MetricsGroup, name: &str) -> Option<MetricValue> {
        g.metrics
            .iter()
            .find(|m| m.metric_name == name)
            .map(|m| m.metric_value)
    }

    proptest! {
        /// With no `indices`, a metric `t.$index` yields one group per index of `t` whose
        /// value is an integer, carrying that value; a dimension from `d` is present
        /// exactly where `d` has a non-empty value for the index.
        #[test]
        fn one_group_per_usable_index(
            values in proptest::collection::btree_map("[0-9]{1,2}(\\.[0-9])?", "[0-9]{1,4}|x|", 0..12),
            names in proptest::collection::btree_map("[0-9]{1,2}(\\.[0-9])?", "[a-z ]{0,6}", 0..12),
            v02 in any::<bool>(),
        ) {
            let schema = if v02 { SchemaVersion::V02 } else { SchemaVersion::V01 };
            let doc = json!({
                "oids": {"t": {"method": "static", "values": values},
                         "d": {"method": "static", "values": names}},
                "metrics_groups": [{"group_name": "g", "dimensions": {"name": "d.$index"},
                                    "metrics": {"m": "t.$index"}}]
            });
            let (groups, _) = assemble(&doc, schema);
            let usable: BTreeMap<&String, i128> = values
                .iter()
                .filter_map(|(k, v)| v.parse::<i128>().ok().map(|n| (k, n)))
                .collect();
            // Empty dimensions drop the group in 0.2 (ignore_empty_dimensions is off).
            let kept: Vec<(&String, i128)> = usable
                .iter()
                .filter(|(k, _)| !v02 || names.get(**k).is_none_or(|n| !n.is_empty()))
                .map(|(k, n)| (*k, *n))
                .collect();
            // Groups that are equal (same metric value, same dimensions) collapse.
            let mut distinct: Vec<(i128, Option<&String>)> = Vec::new();
            for (k, n) in &kept {
                let dim = names.get(*k).filter(|s| !s.is_empty());
                if !distinct.contains(&(*n, dim)) {
                    distinct.push((*n, dim));
                }
            }
            if kept.is_empty() && v02 {
                // 0.2 adds the (empty) top-level group when nothing is indexed.
                prop_assert_eq!(groups.len(), usize::from(usable.is_empty()));
            } else {
                prop_assert_eq!(groups.len(), distinct.len());
            }
            for g in groups.iter().filter(|g| !g.metrics.is_empty()) {
                let m = value_of(g, "m").unwrap();
                let dim = g.dimension("name").map(str::to_string);
                prop_assert!(distinct.iter().any(|(n, d)| MetricValue::Int(*n) == m && d.cloned() == dim));
            }
        }

        /// `indices` restricts evaluation to the listed indices, in any order, and
        /// `index_transform` renames walked indices before anything else sees them.
        #[test]
        fn listed_indices_and_transforms(
            keys in proptest::collection::btree_set("[0-9]{1,3}", 1..10),
            pick in proptest::collection::vec(any::<bool>(), 10),
        ) {
            let values: BTreeMap<String, String> = keys.iter().map(|k| (k.clone(), format!("{}", k.len()))).collect();
            let listed: Vec<&String> = keys.iter().zip(&pick).filter(|(_, p)| **p).map(|(k, _)| k).collect();
            let ix: BTreeMap<&String, &String> = keys.iter().map(|k| (k, k)).collect();
            let doc = json!({
                "oids": {"t": {"method": "static", "values": values},
                         "ix": {"method": "static", "values": ix}},
                "metrics_groups": [{"group_name": "g", "dimensions": {"i": "ix.$index"},
                    "metrics": {"m": {"value": "t.$index", "indices": listed}}}]
            });
            let (groups, _) = assemble(&doc, SchemaVersion::V01);
            let got: Vec<String> = groups.iter().filter_map(|g| g.dimension("i").map(str::to_string)).collect();
            prop_assert_eq!(got.len(), groups.len());
            let mut got_sorted = got.clone();
            got_sorted.sort();
            let mut want: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
            want.sort();
            prop_assert_eq!(got_sorted, want);

            let transform: BTreeMap<String, String> = keys.iter().map(|k| (k.clone(), format!("x{k}"))).collect();
            let rows: Vec<(String, Value)> = keys.iter().map(|k| (k.clone(), Value::Str("1".into()))).collect();
            let renamed = transform_indices(rows, &transform);
            prop_assert!(renamed.iter().all(|(i, _)| i.starts_with('x')));
            prop_assert_eq!(renamed.len(), keys.len());
        }
    }

    #[test]
    fn v01_top_level_metrics_form_their_own_group_and_v02_joins_them() {
        let doc = json!({
            "oids": {"t": {"method": "static", "values": {"1": "5", "2": "6"}}},
            "metrics_groups": [{"group_name": "g", "dimensions": {},
                "metrics": {"m": "t.$index", "top": 7, "zero": 0}}]
        });
        let (v1, _) = assemble(&doc, SchemaVersion::V01);
        assert_eq!(v1.len(), 3);
        assert_eq!(
            v1.iter().filter(|g| value_of(g, "top").is_some()).count(),
            1
        );
        assert!(
            v1.iter().all(|g| value_of(g, "zero").is_none()),
            "falsy top-level values are dropped"
        );
        let (v2, _) = assemble(&doc, SchemaVersion::V02);
        assert_eq!(v2.len(), 2);
        assert!(v2
            .iter()
            .all(|g| value_of(g, "top") == Some(MetricValue::Int(7))));
    }

    #[test]
    fn empty_dimensions_drop_the_group_in_v02_unless_ignored() {
        let doc = |ignore: bool| {
            json!({
                "oids": {"t": {"method": "static", "values": {"1": "5"}},
                         "d": {"method": "static", "values": {"1": ""}}},
                "metrics_groups": [{"group_name": "g", "ignore_empty_dimensions": ignore,
                    "dimensions": {"n": "d.$index"}, "metrics": {"m": "t.$index"}}]
            })
        };
        let (groups, status) = assemble(&doc(false), SchemaVersion::V02);
        assert!(groups.is_empty());
        assert_eq!(status, DeviceStatus::InternalFailure);
        let (groups, status) = assemble(&doc(true), SchemaVersion::V02);
        assert_eq!(groups.len(), 1);
        assert!(groups[0].dimensions.is_empty());
        assert_eq!(status, DeviceStatus::Success);
    }
}
