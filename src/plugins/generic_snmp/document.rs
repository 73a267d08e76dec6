//! A Generic SNMP polling DSL document (spec §9.1), parsed and compiled once: tables,
//! metrics groups, and for every metric and dimension its expression, cast, transform
//! and index rule. Every problem is found here, with the group and target it is in.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::expr::{self, compile, compile_lambda, Expr, Lambda, Names, Table, Value};
use crate::model::MetricType;
use crate::snmp::Oid;

/// `[main] enrichment_schema_version`: changes how groups are assembled (spec §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    V01,
    V02,
}

impl SchemaVersion {
    /// The original's default is "0.1"; anything but "0.2" behaves as 0.1 there too.
    pub fn parse(text: Option<&str>) -> SchemaVersion {
        match text.map(str::trim) {
            Some("0.2") => SchemaVersion::V02,
            _ => SchemaVersion::V01,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct DocumentError {
    /// Where in the document, e.g. "metrics_groups[2] (cpu) metric `cpu_utilization`".
    pub place: String,
    pub problem: String,
}

fn err(place: impl Into<String>, problem: impl Into<String>) -> DocumentError {
    DocumentError {
        place: place.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone)]
pub enum TableSource {
    Static(Table),
    BulkWalk {
        oid: Oid,
        index_transform: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    pub source: TableSource,
}

#[derive(Debug, Clone)]
pub struct ScalarDef {
    pub name: String,
    pub oid: Oid,
}

/// The type a value is cast to before its transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Int,
    Float,
    Str,
}

impl Cast {
    fn parse(name: &str) -> Option<Cast> {
        Some(match name {
            "integer" | "int" | "long" | "Integer" | "Integer32" | "UInteger32" | "Counter32"
            | "Counter64" | "Gauge32" | "TimeTicks" => Cast::Int,
            "float" | "double" => Cast::Float,
            "string" | "str" | "Octet String" | "Object Identifier" | "Bit String"
            | "IpAddress" | "Opaque" | "NsapAddress" => Cast::Str,
            _ => return None,
        })
    }

    pub fn apply(self, v: &Value) -> Result<Value, expr::EvalError> {
        match self {
            Cast::Int => v.to_int(),
            Cast::Float => v.to_float(),
            Cast::Str => v.to_str().map(Value::Str),
        }
    }
}

/// Which indices an indexed target is evaluated at.
#[derive(Debug, Clone, PartialEq)]
pub enum Indices {
    /// `indices`: exactly these.
    Listed(Vec<String>),
    /// `indices_from`: the keys of this table (slot).
    From(usize),
    /// Neither: the keys of the first table the value refers to, if any.
    FirstTable(Option<usize>),
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub expr: Expr,
    pub cast: Cast,
    pub metric_type: MetricType,
    pub transform: Option<Lambda>,
    pub indices: Indices,
    /// Evaluated per index (true) or once (false), decided as the original does.
    pub indexed: bool,
    /// The value as written, when it was a string: a walk failure marks every group
    /// whose values mention the table's name.
    pub raw: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub metrics: Vec<Target>,
    pub dimensions: Vec<Target>,
    pub ignore_empty_dimensions: bool,
}

impl Group {
    /// True when any value of this group mentions `table` (a plain substring test, as the
    /// original decides which groups a failed walk affects).
    pub fn mentions(&self, table: &str) -> bool {
        self.metrics
            .iter()
            .chain(&self.dimensions)
            .any(|t| t.raw.as_deref().is_some_and(|r| r.contains(table)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct SnmpParams {
    pub non_repeaters: Option<u32>,
    pub max_repetitions: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub tables: Vec<TableDef>,
    pub scalars: Vec<ScalarDef>,
    pub groups: Vec<Group>,
    pub snmp: SnmpParams,
}

struct DocNames<'a> {
    tables: &'a [TableDef],
    scalars: &'a [ScalarDef],
}

impl Names for DocNames<'_> {
    fn table(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }
    fn scalar(&self, name: &str) -> Option<usize> {
        self.scalars.iter().position(|s| s.name == name)
    }
}

/// Strings the 0.1 schema reads as literals when written bare.
const V01_STRING_LITERALS: [&str; 3] = ["data", "ctrl", "dram"];

impl Document {
    /// Parses and compiles a document (the JSON object stored under the device's key).
    pub fn compile(doc: &Json, schema: SchemaVersion) -> Result<Document, DocumentError> {
        let obj = doc.as_object().ok_or_else(|| {
            err(
                "document",
                "must be a JSON object with `oids` and `metrics_groups`",
            )
        })?;
        let oids = obj
            .get("oids")
            .and_then(Json::as_object)
            .ok_or_else(|| err("oids", "is required and must be an object of tables"))?;
        let mut tables = Vec::new();
        let mut scalars = Vec::new();
        for (name, def) in oids {
            let place = format!("oids.{name}");
            let def = def
                .as_object()
                .ok_or_else(|| err(&place, "must be an object with `method`"))?;
            let method = def.get("method").and_then(Json::as_str).unwrap_or("");
            let oid = || -> Result<Oid, DocumentError> {
                let text = def.get("oid").and_then(Json::as_str).ok_or_else(|| {
                    err(&place, format!("method `{method}` needs an `oid` string"))
                })?;
                // A numeric OID or a MIB name (`IF-MIB::ifHCInOctets`), resolved here,
                // once: an unknown name is an error of the document, not of a poll.
                crate::mib::resolve(text).map_err(|e| err(&place, e.to_string()))
            };
            match method {
                "static" => {
                    let mut table = Table::new();
                    match def.get("values") {
                        Some(Json::Object(values)) => {
                            for (k, v) in values {
                                table.insert(
                                    k.clone(),
                                    json_value(v).map_err(|p| {
                                        err(format!("{place}.values.{k}"), p.to_string())
                                    })?,
                                );
                            }
                        }
                        None => return Err(err(&place, "method `static` needs `values`")),
                        // The original accepts any JSON here (its Aruba WAP enrichment
                        // stores a count as a bare string); nothing can be looked up in
                        // it, so it is an empty table.
                        Some(other) => {
                            tracing::debug!(table = %name, values = %other, "static values are not an object: an empty table");
                        }
                    }
                    tables.push(TableDef {
                        name: name.clone(),
                        source: TableSource::Static(table),
                    });
                }
                "bulk_walk" => {
                    let mut index_transform = BTreeMap::new();
                    if let Some(t) = def.get("index_transform") {
                        let t = t
                            .as_object()
                            .ok_or_else(|| err(&place, "`index_transform` must be an object"))?;
                        for (from, to) in t {
                            let to = match to {
                                Json::String(s) => s.clone(),
                                Json::Number(n) => n.to_string(),
                                _ => {
                                    return Err(err(
                                        &place,
                                        format!("index_transform `{from}` must map to a string"),
                                    ))
                                }
                            };
                            index_transform.insert(from.clone(), to);
                        }
                    }
                    tables.push(TableDef {
                        name: name.clone(),
                        source: TableSource::BulkWalk {
                            oid: oid()?,
                            index_transform,
                        },
                    });
                }
                "get" => scalars.push(ScalarDef {
                    name: name.clone(),
                    oid: oid()?,
                }),
                other => {
                    return Err(err(
                        &place,
                        format!("method `{other}` is not `static`, `bulk_walk` or `get`"),
                    ))
                }
            }
        }
        let snmp = match obj.get("snmp") {
            None | Some(Json::Null) => SnmpParams::default(),
            Some(s) => {
                let s = s
                    .as_object()
                    .ok_or_else(|| err("snmp", "must be an object"))?;
                let field = |k: &str| -> Result<Option<u32>, DocumentError> {
                    match s.get(k) {
                        None | Some(Json::Null) => Ok(None),
                        Some(v) => v
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .map(Some)
                            .ok_or_else(|| {
                                err(format!("snmp.{k}"), "must be a non-negative integer")
                            }),
                    }
                };
                SnmpParams {
                    non_repeaters: field("non_repeaters")?,
                    max_repetitions: field("max_repetitions")?,
                }
            }
        };
        let names = DocNames {
            tables: &tables,
            scalars: &scalars,
        };
        let groups_json = obj
            .get("metrics_groups")
            .and_then(Json::as_array)
            .ok_or_else(|| err("metrics_groups", "is required and must be a list"))?;
        let mut groups = Vec::new();
        for (i, g) in groups_json.iter().enumerate() {
            groups.push(compile_group(i, g, &names, schema)?);
        }
        Ok(Document {
            tables,
            scalars,
            groups,
            snmp,
        })
    }

    pub fn table_slot(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }
}

/// Why a static table value is not one the expression language has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum StaticValueError {
    #[error("number out of range")]
    NumberOutOfRange,
    #[error("nested objects are not supported as table values")]
    NestedObject,
}

/// A static value: strings and numbers keep their JSON type.
fn json_value(v: &Json) -> Result<Value, StaticValueError> {
    Ok(match v {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Str(s.clone()),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Value::Int(i128::from(u))
            } else {
                Value::Float(n.as_f64().ok_or(StaticValueError::NumberOutOfRange)?)
            }
        }
        Json::Array(items) => Value::List(items.iter().map(json_value).collect::<Result<_, _>>()?),
        Json::Object(_) => return Err(StaticValueError::NestedObject),
    })
}

fn compile_group(
    i: usize,
    g: &Json,
    names: &DocNames,
    schema: SchemaVersion,
) -> Result<Group, DocumentError> {
    let here = format!("metrics_groups[{i}]");
    let g = g
        .as_object()
        .ok_or_else(|| err(&here, "must be an object"))?;
    let name = g
        .get("group_name")
        .and_then(Json::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err(&here, "`group_name` must be a non-empty string"))?
        .to_string();
    let here = format!("{here} ({name})");
    let ignore_empty_dimensions = match g.get("ignore_empty_dimensions") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => {
            return Err(err(
                &here,
                "`ignore_empty_dimensions` must be true or false",
            ))
        }
    } || schema == SchemaVersion::V01;
    let targets = |kind: &str| -> Result<Vec<Target>, DocumentError> {
        match g.get(kind) {
            None | Some(Json::Null) if kind == "dimensions" => Ok(Vec::new()),
            None | Some(Json::Null) => Err(err(&here, format!("`{kind}` is required"))),
            Some(Json::Object(m)) => m
                .iter()
                .map(|(t, def)| compile_target(&here, kind, t, def, names, schema))
                .collect(),
            Some(_) => Err(err(&here, format!("`{kind}` must be an object"))),
        }
    };
    Ok(Group {
        metrics: targets("metrics")?,
        dimensions: targets("dimensions")?,
        name,
        ignore_empty_dimensions,
    })
}

/// The original's "first table reference": the first word followed by `.`, `[` or the
/// end of the value — and only if that word is a table (otherwise none, even if a later
/// word is).
fn first_table_reference(raw: &str, names: &DocNames) -> Option<usize> {
    let bytes = raw.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if word(bytes[i]) {
            let start = i;
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            if i == bytes.len() || bytes[i] == b'.' || bytes[i] == b'[' {
                return names.table(&raw[start..i]);
            }
        } else {
            i += 1;
        }
    }
    None
}

fn compile_target(
    group: &str,
    kind: &str,
    target: &str,
    def: &Json,
    names: &DocNames,
    schema: SchemaVersion,
) -> Result<Target, DocumentError> {
    let singular = if kind == "metrics" {
        "metric"
    } else {
        "dimension"
    };
    let place = format!("{group} {singular} `{target}`");
    let is_metric = kind == "metrics";
    let empty = serde_json::Map::new();
    // Shorthand: a bare value; a bare int is `integer`, a bare float `float`.
    let (map, shorthand_type) = match def {
        Json::Object(m) => (m, None),
        Json::Number(n) if n.is_f64() => (&empty, Some(Cast::Float)),
        Json::Number(_) => (&empty, Some(Cast::Int)),
        Json::String(_) => (&empty, None),
        _ => return Err(err(&place, "must be an object, a string or a number")),
    };
    let value = if map.is_empty() && !def.is_object() {
        def
    } else {
        map.get("value")
            .ok_or_else(|| err(&place, "`value` is required"))?
    };
    let dict_type = match map.get("type") {
        None => None,
        Some(Json::String(t)) => {
            Some(Cast::parse(t).ok_or_else(|| err(&place, format!("unknown `type` `{t}`")))?)
        }
        Some(_) => return Err(err(&place, "`type` must be a string")),
    };
    // A `value` inside an object gets no type from its JSON kind: the default applies.
    let cast =
        dict_type
            .or(shorthand_type)
            .unwrap_or(if is_metric { Cast::Int } else { Cast::Str });
    // Without a transform the cast is the value: it must suit the target (a transform
    // may turn a string into a number, as the original's Aruba temperature does).
    let has_transform = map.contains_key("transform");
    if is_metric && cast == Cast::Str && !has_transform {
        return Err(err(
            &place,
            "a metric's `type` must be numeric (a metric value is a number)",
        ));
    }
    if !is_metric && cast != Cast::Str && !has_transform {
        return Err(err(
            &place,
            "a dimension's `type` must be a string type (a dimension value is text)",
        ));
    }
    let metric_type = match map.get("metric_type").and_then(Json::as_str) {
        None if map.contains_key("metric_type") => {
            return Err(err(
                &place,
                "`metric_type` must be \"gauge\" or \"counter\"",
            ))
        }
        None | Some("gauge") => MetricType::Gauge,
        Some("counter") => MetricType::Counter,
        Some(other) => {
            return Err(err(
                &place,
                format!("`metric_type` `{other}` is not \"gauge\" or \"counter\""),
            ))
        }
    };
    let transform = match map.get("transform") {
        None => None,
        Some(Json::String(src)) => Some(
            compile_lambda(src)
                .map_err(|e| err(&place, format!("unsupported transform `{src}`: {e}")))?,
        ),
        Some(_) => return Err(err(&place, "`transform` must be a lambda string")),
    };
    let (expr, raw) = match value {
        Json::String(src) => {
            let collapsed = src.split_whitespace().collect::<Vec<_>>().join(" ");
            let e = if schema == SchemaVersion::V01
                && V01_STRING_LITERALS.contains(&collapsed.as_str())
                && names.table(&collapsed).is_none()
                && names.scalar(&collapsed).is_none()
            {
                Expr::Const(Value::Str(collapsed))
            } else {
                compile(src, names)
                    .map_err(|e| err(&place, format!("unsupported expression `{src}`: {e}")))?
            };
            (e, Some(src.clone()))
        }
        Json::Number(_) | Json::Bool(_) => (
            Expr::Const(json_value(value).map_err(|p| err(&place, p.to_string()))?),
            None,
        ),
        _ => {
            return Err(err(
                &place,
                "`value` must be an expression string or a number",
            ))
        }
    };
    let raw_text = match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    let indices = if let Some(list) = map.get("indices") {
        let list = list
            .as_array()
            .ok_or_else(|| err(&place, "`indices` must be a list of index strings"))?;
        Indices::Listed(
            list.iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        err(&place, format!("index {i} in `indices` must be a string"))
                    })
                })
                .collect::<Result<_, _>>()?,
        )
    } else if let Some(from) = map.get("indices_from") {
        let from = from
            .as_str()
            .ok_or_else(|| err(&place, "`indices_from` must be a table name"))?;
        Indices::From(names.table(from).ok_or_else(|| {
            err(
                &place,
                format!("`indices_from` names `{from}`, which is not a static or bulk_walk table"),
            )
        })?)
    } else {
        Indices::FirstTable(first_table_reference(&raw_text, names))
    };
    let indexed = match schema {
        SchemaVersion::V01 if map.contains_key("top_level") => false,
        SchemaVersion::V01
            if (map.contains_key("indices") && !map.contains_key("evaluate"))
                || map.contains_key("indices_from") =>
        {
            true
        }
        SchemaVersion::V02 if map.contains_key("indices") || map.contains_key("indices_from") => {
            true
        }
        _ => raw_text.contains("$index") && first_table_reference(&raw_text, names).is_some(),
    };
    Ok(Target {
        name: target.to_string(),
        expr,
        cast,
        metric_type,
        transform,
        indices,
        indexed,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Json {
        json!({
            "oids": {
                "t": {"method": "bulk_walk", "oid": ".1.3.6.1.2.1.2.2.1.2", "index_transform": {"1": "22"}},
                "names": {"method": "static", "values": {"22": "Module 1", "23": 5}},
                "up": {"method": "get", "oid": ".1.3.6.1.2.1.1.3.0"}
            },
            "metrics_groups": [
                {"group_name": "g", "dimensions": {"n": "names.$index", "kind": "'ctrl'"},
                 "metrics": {"m": {"metric_type": "counter", "value": "t.$index"}, "c": 1, "f": 2.5,
                             "x": {"value": "int(t.$index) * 2", "indices": ["22"], "type": "float"},
                             "u": "up"}}
            ]
        })
    }

    #[test]
    fn compiles_tables_groups_and_targets() {
        let d = Document::compile(&doc(), SchemaVersion::V02).unwrap();
        assert_eq!(d.tables.len(), 2);
        assert_eq!(d.scalars.len(), 1);
        let g = &d.groups[0];
        let m = |n: &str| g.metrics.iter().find(|t| t.name == n).unwrap();
        assert!(m("m").indexed);
        assert_eq!(m("m").metric_type, MetricType::Counter);
        assert_eq!(m("m").indices, Indices::FirstTable(d.table_slot("t")));
        assert!(!m("c").indexed);
        assert_eq!(m("c").cast, Cast::Int);
        assert_eq!(m("f").cast, Cast::Float);
        assert_eq!(m("x").indices, Indices::Listed(vec!["22".into()]));
        assert_eq!(m("x").cast, Cast::Float);
        assert!(!m("u").indexed);
        let kind = g.dimensions.iter().find(|t| t.name == "kind").unwrap();
        assert!(!kind.indexed);
        assert!(g.mentions("names") && g.mentions("t") && !g.mentions("zzz"));
        assert!(!g.ignore_empty_dimensions);
        assert!(
            Document::compile(&doc(), SchemaVersion::V01)
                .unwrap()
                .groups[0]
                .ignore_empty_dimensions
        );
    }

    #[test]
    fn oids_may_be_mib_names_resolved_at_compile() {
        let mut d = doc();
        d["oids"]["t"]["oid"] = json!("IF-MIB::ifDescr");
        d["oids"]["up"]["oid"] = json!("sysUpTime.0");
        let named = Document::compile(&d, SchemaVersion::V02).unwrap();
        let numeric = Document::compile(&doc(), SchemaVersion::V02).unwrap();
        let oid_of = |d: &Document| match &d.tables.iter().find(|t| t.name == "t").unwrap().source {
            TableSource::BulkWalk { oid, .. } => oid.clone(),
            TableSource::Static(_) => unreachable!(),
        };
        assert_eq!(oid_of(&named), oid_of(&numeric));
        assert_eq!(named.scalars[0].oid, numeric.scalars[0].oid);
        d["oids"]["t"]["oid"] = json!("IF-MIB::ifDescription");
        assert_eq!(
            Document::compile(&d, SchemaVersion::V02)
                .unwrap_err()
                .to_string(),
            "oids.t: `IF-MIB::ifDescription` is not a numeric OID nor a name in the loaded MIBs: \
             node not found: IF-MIB::ifDescription (MIB search path: built-in)"
        );
    }

    #[test]
    fn errors_name_the_group_and_target() {
        let refused = |d: &Json| {
            Document::compile(d, SchemaVersion::V02)
                .unwrap_err()
                .to_string()
        };
        let mut d = doc();
        d["metrics_groups"][0]["metrics"]["m"]["value"] = json!("__import__('os').system('x')");
        let e = refused(&d);
        assert!(
            e.starts_with(
                "metrics_groups[0] (g) metric `m`: unsupported expression \
                 `__import__('os').system('x')`: unknown function `__import__` (known: "
            ),
            "{e}"
        );
        let mut d = doc();
        d["metrics_groups"][0]["metrics"]["m"]["value"] = json!("nosuch.$index");
        assert_eq!(
            refused(&d),
            "metrics_groups[0] (g) metric `m`: unsupported expression `nosuch.$index`: unknown \
             name `nosuch` (not a table of this document's `oids`) (at offset 0)"
        );
        let mut d = doc();
        d["metrics_groups"][0]["metrics"]["m"]["transform"] = json!("lambda x: os.system(x)");
        let e = refused(&d);
        assert!(
            e.starts_with(
                "metrics_groups[0] (g) metric `m`: unsupported transform `lambda x: \
                 os.system(x)`: unsupported attribute `.system` (known: "
            ),
            "{e}"
        );
        let mut d = doc();
        d["metrics_groups"][0]["metrics"]["m"]["metric_type"] = json!("rate");
        assert_eq!(
            refused(&d),
            "metrics_groups[0] (g) metric `m`: `metric_type` `rate` is not \"gauge\" or \"counter\""
        );
        let mut d = doc();
        d["metrics_groups"][0]["dimensions"]["n"] =
            json!({"value": "names.$index", "type": "integer"});
        assert_eq!(
            refused(&d),
            "metrics_groups[0] (g) dimension `n`: a dimension's `type` must be a string type (a \
             dimension value is text)"
        );
        let mut d = doc();
        d["oids"]["t"]["method"] = json!("walk");
        assert_eq!(
            refused(&d),
            "oids.t: method `walk` is not `static`, `bulk_walk` or `get`"
        );
        assert_eq!(
            refused(&json!({"oids": {}})),
            "metrics_groups: is required and must be a list"
        );
    }

    #[test]
    fn first_table_reference_is_the_first_candidate_word_only() {
        let tables = vec![
            TableDef {
                name: "a".into(),
                source: TableSource::Static(Table::new()),
            },
            TableDef {
                name: "b".into(),
                source: TableSource::Static(Table::new()),
            },
        ];
        let names = DocNames {
            tables: &tables,
            scalars: &[],
        };
        assert_eq!(
            first_table_reference("float(a.$index) / 100.0 * b.$index", &names),
            Some(0)
        );
        assert_eq!(
            first_table_reference("len([x for x in b.values()])", &names),
            Some(1)
        );
        assert_eq!(first_table_reference("100.0 * a.$index", &names), None);
        assert_eq!(
            first_table_reference("'data' if 'R E' in b.$index else 'c'", &names),
            Some(1)
        );
        assert_eq!(first_table_reference("b", &names), Some(1));
        assert_eq!(first_table_reference("123", &names), None);
    }

    #[test]
    fn v01_bare_literals() {
        let d = json!({"oids": {}, "metrics_groups": [{"group_name": "cpu", "dimensions": {"t": "ctrl"}, "metrics": {"m": 1}}]});
        let c = Document::compile(&d, SchemaVersion::V01).unwrap();
        assert_eq!(
            c.groups[0].dimensions[0].expr,
            Expr::Const(Value::Str("ctrl".into()))
        );
        assert_eq!(
            Document::compile(&d, SchemaVersion::V02)
                .unwrap_err()
                .to_string(),
            "metrics_groups[0] (cpu) dimension `t`: unsupported expression `ctrl`: unknown name \
             `ctrl` (not a table of this document's `oids`) (at offset 0)"
        );
    }
}
