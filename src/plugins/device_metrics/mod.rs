//! Device-metrics enrichment plugins (spec §10): they look at a device once per
//! `execute_frequency` and store, under the device's endpoint, the Generic SNMP polling
//! DSL document that polls its CPU, memory, environment, BGP sessions, ...
//!
//! Each vendor family is a [`Definition`] in `resources/vendors/<family>.json`, built in;
//! `plugin_enrichment_device_metrics` with `[main] vendor_definition = <file>` runs a
//! definition from a file, so a vendor can be added without recompiling. The base
//! `plugin_enrichment_generic_snmp` produces nothing, as the original's base class does.

pub mod definition;

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value as Json};

pub use definition::{Definition, DefinitionError, Step, Template};

use crate::config::PluginConfig;
use crate::model::{EnrichmentGroup, EnrichmentGroupSet, Resource};
use crate::plugins::generic_snmp::expr::{Env, EvalContext, EvalError, Table, Value};
use crate::plugins::generic_snmp::polling::{snmp_text, DEFAULT_MAX_REPETITIONS};
use crate::plugins::generic_snmp::{Document, SchemaVersion};
use crate::plugins::PluginError;
use crate::snmp::{Oid, SnmpClient, SnmpValue};

/// Why a step's OID, or the document, could not be made from the steps' values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("step `{step}`: the OID is {value}, not a string")]
    OidNotText { step: String, value: Value },
    #[error("{source}")]
    NotAnOid {
        text: String,
        #[source]
        source: crate::mib::ResolveError,
    },
    #[error("integer {0} does not fit a JSON number")]
    IntTooLarge(i128),
    #[error("{0} is not a JSON number")]
    NotAJsonNumber(f64),
    #[error("a table cannot be stored")]
    Table,
}

/// The built-in definitions, by file name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "cisco_ios",
        include_str!("../../../resources/vendors/cisco_ios.json"),
    ),
    (
        "cisco_nxos",
        include_str!("../../../resources/vendors/cisco_nxos.json"),
    ),
    (
        "juniper",
        include_str!("../../../resources/vendors/juniper.json"),
    ),
    (
        "juniper_bgp",
        include_str!("../../../resources/vendors/juniper_bgp.json"),
    ),
    (
        "cisco_asa",
        include_str!("../../../resources/vendors/cisco_asa.json"),
    ),
    (
        "aruba",
        include_str!("../../../resources/vendors/aruba.json"),
    ),
    (
        "aruba_wap",
        include_str!("../../../resources/vendors/aruba_wap.json"),
    ),
    (
        "juniper_srx_functional",
        include_str!("../../../resources/vendors/juniper_srx_functional.json"),
    ),
    (
        "ciena_waveserver_device",
        include_str!("../../../resources/vendors/ciena_waveserver_device.json"),
    ),
    (
        "ciena_waveserver_light",
        include_str!("../../../resources/vendors/ciena_waveserver_light.json"),
    ),
];

/// Default namespace of the stored document (`[main] enrichment_namespace` overrides).
pub const DEFAULT_NAMESPACE: &str = "metrics";

/// The built-in definitions, parsed once. A broken built-in definition is a bug caught
/// by the tests; at run time it is reported, not a panic.
pub fn embedded() -> &'static [Result<Arc<Definition>, DefinitionError>] {
    static DEFS: OnceLock<Vec<Result<Arc<Definition>, DefinitionError>>> = OnceLock::new();
    DEFS.get_or_init(|| {
        EMBEDDED
            .iter()
            .map(|(name, text)| Definition::parse(name, text).map(Arc::new))
            .collect()
    })
}

/// The built-in definition whose `modules` include `module`, by position.
pub fn find_embedded(module: &str) -> Option<usize> {
    embedded().iter().position(|d| {
        d.as_ref()
            .is_ok_and(|d| d.modules.iter().any(|m| m == module))
    })
}

/// Every module name the built-in definitions answer to.
pub fn embedded_modules() -> Vec<String> {
    embedded()
        .iter()
        .filter_map(|d| d.as_ref().ok())
        .filter_map(|d| d.modules.first().cloned())
        .collect()
}

pub fn embedded_definition(index: usize) -> Result<Arc<Definition>, PluginError> {
    match embedded().get(index) {
        Some(Ok(d)) => Ok(Arc::clone(d)),
        Some(Err(e)) => Err(PluginError::Config(e.to_string())),
        None => Err(PluginError::Config(format!(
            "no built-in vendor definition #{index}"
        ))),
    }
}

/// `[main] vendor_definition = <file>` (relative to the plugin file's directory).
pub fn definition_from_plugin(plugin: &PluginConfig) -> Result<Arc<Definition>, PluginError> {
    let Some(file) = plugin.get("main", "vendor_definition").map(str::trim) else {
        return Err(PluginError::Config(format!(
            "plugin file {}: [main] vendor_definition is required for {}",
            plugin.path.display(),
            plugin.module
        )));
    };
    let path = std::path::Path::new(file);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        plugin
            .path
            .parent()
            .map(|d| d.join(path))
            .unwrap_or_else(|| path.to_path_buf())
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        PluginError::Config(format!(
            "plugin file {}: cannot read vendor definition {}: {e}",
            plugin.path.display(),
            path.display()
        ))
    })?;
    Definition::parse(&path.display().to_string(), &text)
        .map(Arc::new)
        .map_err(|e| PluginError::Config(e.to_string()))
}

/// A walked value as an expression sees it during enrichment: octet strings keep every
/// byte (as characters U+0000..U+00FF) so addresses can be decoded. This is the original's
/// easysnmp string (latin-1 decoded), which the hand-written device polling plugins read
/// too.
pub(crate) fn probe_text(v: &SnmpValue) -> String {
    match v {
        SnmpValue::OctetString(b) | SnmpValue::Opaque(b) => {
            b.iter().map(|&c| char::from(c)).collect()
        }
        other => snmp_text(other),
    }
}

/// What one enrichment run needs besides the device.
pub struct Run<'a> {
    pub plugin: &'a PluginConfig,
    pub resource: &'a Resource,
    pub ttl: u64,
    pub now: f64,
}

/// Runs a definition against a device and returns the group set to store. The
/// document is compiled as polling will compile it before it is returned, so a
/// definition producing an unusable document fails here, naming the group and metric.
pub async fn run(
    def: &Definition,
    client: &mut SnmpClient,
    run: Run<'_>,
) -> Result<EnrichmentGroupSet, PluginError> {
    let doc = build_document(def, client, &run).await?;
    let schema = SchemaVersion::parse(run.plugin.get("main", "enrichment_schema_version"));
    Document::compile(&doc, schema).map_err(|e| {
        PluginError::Config(format!(
            "plugin `{}` ({}): the generated DSL document is invalid: {e}",
            run.plugin.name, def.name
        ))
    })?;
    let namespace = match &def.namespace {
        Some(fixed) => fixed.as_str(),
        None => run
            .plugin
            .get("main", "enrichment_namespace")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE),
    };
    let mut group = EnrichmentGroup::new(namespace, run.ttl, run.plugin.execute_frequency, run.now);
    let Json::Object(fields) = doc else {
        return Err(PluginError::Internal(format!(
            "vendor definition `{}`: the document is not an object",
            def.name
        )));
    };
    group.upsert_set(&run.resource.endpoint, fields);
    let mut set = EnrichmentGroupSet::new(run.resource.clone(), run.now);
    set.add_group(group)
        .map_err(|e| PluginError::Internal(e.to_string()))?;
    Ok(set)
}

/// Runs the steps and renders the document.
pub async fn build_document(
    def: &Definition,
    client: &mut SnmpClient,
    run: &Run<'_>,
) -> Result<Json, PluginError> {
    let context = EvalContext {
        config: run.plugin.sections.clone(),
        metadata: run.resource.metadata.clone(),
    };
    let max_repetitions = run
        .plugin
        .snmp
        .max_repetitions
        .unwrap_or(DEFAULT_MAX_REPETITIONS)
        .max(1);
    let mut values: Vec<Value> = Vec::with_capacity(def.steps.len());
    let fail = |step: &str, e: RenderError| {
        PluginError::Internal(format!(
            "plugin `{}` ({}): step `{step}`: {e}",
            run.plugin.name, def.name
        ))
    };
    for step in &def.steps {
        let env = Env {
            tables: &[],
            scalars: &values,
            index: None,
            context: Some(&context),
        };
        let run_it = match step.when() {
            None => true,
            Some(cond) => env
                .eval(cond)
                .map_err(|e| fail(step.name(), e.into()))?
                .truthy(|_| 0),
        };
        let value = match step {
            Step::Let { .. } | Step::Get { .. } if !run_it => Value::None,
            Step::Walk { .. } if !run_it => Value::Dict(Arc::new(Table::new())),
            Step::Let { name, value, .. } => env.eval(value).map_err(|e| fail(name, e.into()))?,
            Step::Walk { name, oid, .. } => {
                let oid = step_oid(&env, name, oid).map_err(|e| fail(name, e))?;
                let rows = walk_raw(client, &oid, max_repetitions).await?;
                Value::Dict(Arc::new(rows))
            }
            Step::Get { name, oid, .. } => {
                let oid = step_oid(&env, name, oid).map_err(|e| fail(name, e))?;
                let got = client.get(std::slice::from_ref(&oid)).await?;
                match got.into_iter().next() {
                    Some(vb) if !vb.value.is_exception() => Value::Str(probe_text(&vb.value)),
                    _ => Value::None,
                }
            }
        };
        values.push(value);
    }
    let env = Env {
        tables: &[],
        scalars: &values,
        index: None,
        context: Some(&context),
    };
    render(&def.document, &env).map_err(|e| fail("document", e))
}

/// The OID a `walk` or `get` step names (an expression giving dotted text).
fn step_oid(
    env: &Env,
    name: &str,
    oid: &crate::plugins::generic_snmp::expr::Expr,
) -> Result<Oid, RenderError> {
    let text = match env.eval(oid)? {
        Value::Str(s) => s,
        other => {
            return Err(RenderError::OidNotText {
                step: name.to_owned(),
                value: other,
            })
        }
    };
    // Computed at poll time, so resolved here: a numeric OID or a MIB name.
    crate::mib::resolve(&text).map_err(|source| RenderError::NotAnOid { text, source })
}

/// Walks a subtree keeping octet strings' bytes (see [`probe_text`]).
async fn walk_raw(
    client: &mut SnmpClient,
    root: &Oid,
    max_repetitions: u32,
) -> Result<Table, PluginError> {
    Ok(client
        .walk_rows(root, 0, max_repetitions, crate::snmp::DEFAULT_WALK_LIMIT)
        .await?
        .into_iter()
        .map(|(index, value)| (index, Value::Str(probe_text(&value))))
        .collect())
}

/// Renders a template with the steps' values.
pub fn render(t: &Template, env: &Env) -> Result<Json, RenderError> {
    Ok(match t {
        Template::Literal(j) => j.clone(),
        Template::Eval(e) => to_json(&env.eval(e)?)?,
        Template::Object(members, _) => {
            let mut out = Map::new();
            for (k, v) in members {
                if keep(v, env)? {
                    out.insert(k.clone(), render(v, env)?);
                }
            }
            Json::Object(out)
        }
        Template::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if keep(item, env)? {
                    out.push(render(item, env)?);
                }
            }
            Json::Array(out)
        }
    })
}

fn keep(t: &Template, env: &Env) -> Result<bool, RenderError> {
    match t.when() {
        None => Ok(true),
        Some(cond) => {
            let v = env.eval(cond)?;
            Ok(v.truthy(|_| 0))
        }
    }
}

/// A value as JSON: dicts become objects, lists and tuples arrays.
pub fn to_json(v: &Value) -> Result<Json, RenderError> {
    Ok(match v {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(n) => Json::from(n),
            Err(_) => match u64::try_from(*i) {
                Ok(n) => Json::from(n),
                Err(_) => return Err(RenderError::IntTooLarge(*i)),
            },
        },
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or(RenderError::NotAJsonNumber(*f))?,
        Value::Str(s) => Json::String(s.clone()),
        Value::List(items) | Value::Tuple(items) => {
            Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Value::Dict(d) => Json::Object(
            d.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        Value::Table(_) => return Err(RenderError::Table),
    })
}

/// The base generic SNMP enrichment plugin: the original's base class builds no
/// metrics groups, so its result holds the resource and no enrichment.
pub fn empty(resource: &Resource, now: f64) -> EnrichmentGroupSet {
    EnrichmentGroupSet::new(resource.clone(), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_definitions_compile() {
        for (i, d) in embedded().iter().enumerate() {
            let d = d
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: {e}", EMBEDDED[i].0));
            assert!(!d.modules.is_empty(), "{}", d.name);
            assert_eq!(find_embedded(&d.modules[0]), Some(i));
        }
    }
}
