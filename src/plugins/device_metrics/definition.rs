//! A vendor definition: how a device-metrics enrichment plugin builds the DSL document
//! for one vendor family, as data.
//!
//! ```json
//! {
//!   "description": "Cisco IOS: CPU, memory, fans, power supplies, temperatures",
//!   "modules": ["plugin_enrichment_cisco_ios_device_metrics"],
//!   "steps": [
//!     {"let": "model", "value": "meta('model', 'unknown')"},
//!     {"walk": "ent_names", "oid": "'.1.3.6.1.2.1.47.1.1.1.1.7'"},
//!     {"let": "power_supplies", "value": "{k: ent_names[k] for (k, v) in ent_class.items() if v == '6'}"}
//!   ],
//!   "document": {"oids": {...}, "metrics_groups": [...]}
//! }
//! ```
//!
//! Steps run in order (a step with `"when": "<expr>"` only when that is true). `get`
//! fetches one OID (its value as text, `None` if the agent has none); `walk` bulk-walks an OID (an expression, so it may depend on the
//! model or the plugin file) into a dict index -> value (text; octet strings keep their
//! bytes as characters U+0000..U+00FF); `let` evaluates an expression of the expression
//! language (see [`crate::plugins::generic_snmp::expr`]) over the earlier steps, with
//! `config(section, key[, default])` and `meta(key[, default])` available. The
//! `document` is the DSL document to store, as a template: `{"$eval": "<expr>"}` is
//! replaced by the expression's value, and an object or list item with a `"$when":
//! "<expr>"` member is kept (without that member) only when the expression is true.
//! Every other string is copied as is: those are the polling-time expressions.
//!
//! `"namespace": "metrics"` fixes the namespace the enrichment is stored under, whatever
//! the plugin file's `[main] enrichment_namespace` says (the original's Cisco IOS, NX-OS
//! and Juniper plugins ignore that key); without it, the key is honoured.

use serde_json::Value as Json;

use crate::plugins::generic_snmp::expr::{compile, CompileError, Expr, Names, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("vendor definition `{name}`: {place}: {problem}")]
pub struct DefinitionError {
    pub name: String,
    pub place: String,
    pub problem: String,
}

#[derive(Debug, Clone)]
pub enum Step {
    /// One GET: the value as text, or `None` when the agent has no such object.
    Get {
        name: String,
        oid: Expr,
        when: Option<Expr>,
    },
    Walk {
        name: String,
        oid: Expr,
        when: Option<Expr>,
    },
    Let {
        name: String,
        value: Expr,
        when: Option<Expr>,
    },
}

impl Step {
    pub fn name(&self) -> &str {
        match self {
            Step::Get { name, .. } | Step::Walk { name, .. } | Step::Let { name, .. } => name,
        }
    }

    /// `when`: the step runs only if this is true (a skipped walk is an empty dict, a
    /// skipped let is `None`).
    pub fn when(&self) -> Option<&Expr> {
        match self {
            Step::Get { when, .. } | Step::Walk { when, .. } | Step::Let { when, .. } => {
                when.as_ref()
            }
        }
    }
}

/// The document template, compiled.
#[derive(Debug, Clone)]
pub enum Template {
    Literal(Json),
    Eval(Expr),
    Object(Vec<(String, Template)>, Option<Expr>),
    Array(Vec<Template>),
}

impl Template {
    pub fn when(&self) -> Option<&Expr> {
        match self {
            Template::Object(_, when) => when.as_ref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub description: String,
    pub modules: Vec<String>,
    /// The namespace the enrichment is always stored under, if the definition fixes one.
    pub namespace: Option<String>,
    pub steps: Vec<Step>,
    pub document: Template,
}

/// Step names visible to an expression: the steps before it (all of them for the
/// document).
struct StepNames<'a> {
    names: &'a [String],
}

impl Names for StepNames<'_> {
    fn table(&self, _: &str) -> Option<usize> {
        None
    }
    fn scalar(&self, name: &str) -> Option<usize> {
        self.names.iter().rposition(|n| n == name)
    }
    fn unknown(&self, name: &str) -> String {
        format!("unknown name `{name}` (not the name of an earlier step)")
    }
}

impl Definition {
    /// Parses and compiles a definition; `name` says where it came from in errors.
    pub fn parse(name: &str, text: &str) -> Result<Definition, DefinitionError> {
        let fail = |place: &str, problem: String| DefinitionError {
            name: name.to_string(),
            place: place.to_string(),
            problem,
        };
        let json: Json =
            serde_json::from_str(text).map_err(|e| fail("file", format!("not JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| fail("file", "must be a JSON object".into()))?;
        let modules = match obj.get("modules") {
            None => Vec::new(),
            Some(Json::Array(m)) => m
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| fail("modules", "must be a list of module names".into()))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(fail("modules", "must be a list of module names".into())),
        };
        let mut names: Vec<String> = Vec::new();
        let mut steps = Vec::new();
        let steps_json = obj
            .get("steps")
            .and_then(Json::as_array)
            .ok_or_else(|| fail("steps", "is required and must be a list".into()))?;
        for (i, step) in steps_json.iter().enumerate() {
            let place = format!("steps[{i}]");
            let step = step
                .as_object()
                .ok_or_else(|| fail(&place, "must be an object".into()))?;
            let expr = |key: &str| -> Result<Expr, DefinitionError> {
                let src = step
                    .get(key)
                    .and_then(Json::as_str)
                    .ok_or_else(|| fail(&place, format!("`{key}` must be an expression string")))?;
                compile(src, &StepNames { names: &names })
                    .map_err(|e| fail(&place, format!("`{src}`: {e}")))
            };
            let when = if step.contains_key("when") {
                Some(expr("when")?)
            } else {
                None
            };
            // A constant OID may be a MIB name ('IF-MIB::ifDescr'): resolved here, once,
            // so an unknown name fails the definition, not a poll.
            let oid = || -> Result<Expr, DefinitionError> {
                match expr("oid")? {
                    Expr::Const(Value::Str(text)) => crate::mib::resolve(&text)
                        .map(|oid| Expr::Const(Value::Str(oid.to_dotted_leading())))
                        .map_err(|e| fail(&place, e.to_string())),
                    other => Ok(other),
                }
            };
            let compiled = if let Some(n) = step.get("get").and_then(Json::as_str) {
                Step::Get {
                    name: n.to_string(),
                    oid: oid()?,
                    when,
                }
            } else if let Some(n) = step.get("walk").and_then(Json::as_str) {
                Step::Walk {
                    name: n.to_string(),
                    oid: oid()?,
                    when,
                }
            } else if let Some(n) = step.get("let").and_then(Json::as_str) {
                Step::Let {
                    name: n.to_string(),
                    value: expr("value")?,
                    when,
                }
            } else {
                return Err(fail(
                    &place,
                    "needs `walk` or `get` (with `oid`) or `let` (with `value`)".into(),
                ));
            };
            names.push(compiled.name().to_string());
            steps.push(compiled);
        }
        let document = obj
            .get("document")
            .ok_or_else(|| fail("document", "is required".into()))?;
        let document = template(document, "document", &StepNames { names: &names })
            .map_err(|(place, e)| fail(&place, e.to_string()))?;
        Ok(Definition {
            name: name.to_string(),
            description: obj
                .get("description")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string(),
            modules,
            namespace: match obj.get("namespace") {
                None => None,
                Some(Json::String(n)) if !n.trim().is_empty() => Some(n.trim().to_string()),
                Some(_) => return Err(fail("namespace", "must be a non-empty string".into())),
            },
            steps,
            document,
        })
    }
}

fn template(v: &Json, place: &str, names: &StepNames) -> Result<Template, (String, CompileError)> {
    let compile_at = |src: &str, place: &str| {
        compile(src, names).map_err(|e| {
            (
                place.to_string(),
                CompileError {
                    message: format!("`{src}`: {}", e.message),
                    offset: e.offset,
                },
            )
        })
    };
    Ok(match v {
        Json::Object(m) if m.len() == 1 && m.contains_key("$eval") => {
            let src = m["$eval"].as_str().unwrap_or("");
            Template::Eval(compile_at(src, &format!("{place}.$eval"))?)
        }
        Json::Object(m) => {
            let when = match m.get("$when") {
                None => None,
                Some(Json::String(src)) => Some(compile_at(src, &format!("{place}.$when"))?),
                Some(_) => {
                    return Err((
                        format!("{place}.$when"),
                        CompileError {
                            offset: 0,
                            message: "must be an expression string".into(),
                        },
                    ))
                }
            };
            let mut members = Vec::new();
            for (k, x) in m.iter().filter(|(k, _)| k.as_str() != "$when") {
                members.push((k.clone(), template(x, &format!("{place}.{k}"), names)?));
            }
            Template::Object(members, when)
        }
        Json::Array(items) => Template::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| template(x, &format!("{place}[{i}]"), names))
                .collect::<Result<_, _>>()?,
        ),
        other => Template::Literal(other.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_definition_and_place() {
        let refused = |text| Definition::parse("x", text).unwrap_err().to_string();
        assert_eq!(
            refused(r#"{"steps": [{"let": "a", "value": "b + 1"}], "document": {}}"#),
            "vendor definition `x`: steps[0]: `b + 1`: unknown name `b` (not the name of an \
             earlier step) (at offset 0)"
        );
        assert_eq!(
            refused(
                r#"{"steps": [{"let": "a", "value": "1"}], "document": {"oids": {"$eval": "nosuch"}}}"#
            ),
            "vendor definition `x`: document.oids.$eval: `nosuch`: unknown name `nosuch` (not the \
             name of an earlier step) (at offset 0)"
        );
        assert_eq!(
            refused("{"),
            "vendor definition `x`: file: not JSON: EOF while parsing an object at line 1 column 1"
        );
        assert_eq!(
            refused(r#"{"steps": [{"walk": "w"}], "document": {}}"#),
            "vendor definition `x`: steps[0]: `oid` must be an expression string"
        );
        // A later step is not visible to an earlier one.
        assert_eq!(
            refused(
                r#"{"steps": [{"let": "a", "value": "b"}, {"let": "b", "value": "1"}], "document": {}}"#
            ),
            "vendor definition `x`: steps[0]: `b`: unknown name `b` (not the name of an earlier \
             step) (at offset 0)"
        );
    }

    /// The shipped definitions' constant OIDs of objects in the modules generated from
    /// pysnmp's data (entPhysical*, hrStorage*), written as `'MODULE::name'`, compile to
    /// the same steps: the built-in MIBs name what the definitions poll.
    #[test]
    fn shipped_definitions_read_the_same_with_built_in_mib_names() {
        const GENERATED: [&str; 3] = ["HOST-RESOURCES-MIB", "ENTITY-MIB", "EtherLike-MIB"];
        let mibs = crate::mib::Mibs::builtin();
        let mut renamed = Vec::new();
        for (name, text) in crate::plugins::device_metrics::EMBEDDED {
            let mut named = String::new();
            let mut rest = *text;
            // A whole constant: `"'.1.3.6.1.2.1.47.1.1.1.1.5'"`.
            while let Some(at) = rest.find("\"'.1.3.6.1.2.1.") {
                named.push_str(&rest[..at + 2]);
                rest = &rest[at + 2..];
                let end = rest.find("'\"").unwrap();
                let numeric = &rest[..end];
                let oid: crate::snmp::Oid = numeric[1..].parse().unwrap();
                match mibs.exact_name(&oid) {
                    Some((module, object)) if GENERATED.contains(&module.as_str()) => {
                        named.push_str(&format!("{module}::{object}"));
                        renamed.push(format!("{name}: {object}"));
                    }
                    _ => named.push_str(numeric),
                }
                rest = &rest[end..];
            }
            named.push_str(rest);
            let original = Definition::parse(name, text).unwrap();
            let with_names = Definition::parse(name, &named).unwrap();
            assert_eq!(
                format!("{:?}", with_names.steps),
                format!("{:?}", original.steps),
                "{name}"
            );
        }
        for expected in ["cisco_ios: entPhysicalClass", "juniper: hrStorageDescr"] {
            assert!(
                renamed.iter().any(|r| r == expected),
                "{expected} not in {renamed:?}"
            );
        }
    }

    #[test]
    fn constant_oids_may_be_mib_names() {
        let def = Definition::parse(
            "x",
            r#"{"steps": [{"walk": "names", "oid": "'IF-MIB::ifName'"},
                          {"get": "up", "oid": "'SNMPv2-MIB::sysUpTime.0'"},
                          {"walk": "other", "oid": "'.1.3.6.1.2.1.2.2.1.2'"}],
                "document": {}}"#,
        )
        .unwrap();
        let oids: Vec<String> = def
            .steps
            .iter()
            .map(|step| match step {
                Step::Walk { oid, .. } | Step::Get { oid, .. } => match oid {
                    Expr::Const(Value::Str(text)) => text.clone(),
                    other => panic!("not a constant: {other:?}"),
                },
                Step::Let { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(
            oids,
            [
                ".1.3.6.1.2.1.31.1.1.1.1",
                ".1.3.6.1.2.1.1.3.0",
                ".1.3.6.1.2.1.2.2.1.2"
            ]
        );
        let e = Definition::parse(
            "x",
            r#"{"steps": [{"walk": "w", "oid": "'ACME-MIB::acmeThing'"}], "document": {}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "vendor definition `x`: steps[0]: `ACME-MIB::acmeThing` is not a numeric OID nor a \
             name in the loaded MIBs: module not found: ACME-MIB (MIB search path: built-in)"
        );
    }
}
