//! `panoptes config check` and `panoptes config show`: everything the node would load at
//! start (settings, the secrets file, every plugin file and what it names: discovery files,
//! vendor definitions, DSL documents; the built-in vendor definitions), checked at once,
//! each problem with its file, key and line; and the effective settings with where each
//! value came from, secrets masked.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::origin::{is_path_key, Origin};
use crate::config::{embedded, plugin_files, PluginConfig, PluginKind, Settings, SettingsError};
use crate::plugins::generic_snmp::{Document, SchemaVersion};
use crate::plugins::{device_metrics, discovery_json, BuiltIn};

/// One problem: where (file, line when known) and what (key, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A file, `defaults` or `environment`.
    pub place: String,
    pub line: Option<usize>,
    /// `section.key`, `[section] key`, or what the problem is about.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}: {}", self.place, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.place, self.key, self.message),
        }
    }
}

/// What a check read, and what it found wrong.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Plugin files read, by kind (discovery, enrichment, polling).
    pub plugins: [usize; 3],
    pub vendor_definitions: usize,
}

impl Report {
    /// The summary line after the problems.
    pub fn summary(&self) -> String {
        let [d, e, p] = self.plugins;
        let read = format!(
            "{} plugin files ({d} discovery, {e} enrichment, {p} polling), {} built-in vendor definitions",
            d + e + p,
            self.vendor_definitions
        );
        match self.problems.len() {
            0 => format!("configuration OK: {read}"),
            1 => format!("1 problem (read {read})"),
            n => format!("{n} problems (read {read})"),
        }
    }
}

/// Checks everything `panoptes run --config file` would load.
pub fn check(file: Option<&Path>) -> Report {
    let mut report = Report::default();
    let settings = match Settings::load_unchecked(file) {
        Ok(s) => s,
        Err(e) => {
            report.problems.push(load_problem(file, &e));
            return report;
        }
    };
    for e in settings.problems() {
        report.problems.push(settings_problem(&settings, &e));
    }
    // Loaded first: DSL documents and vendor definitions below may name objects in them.
    let mibs = crate::mib::Mibs::load(&settings.mibs.dirs);
    for problem in mibs.problems() {
        report.problems.push(Problem {
            place: problem.file.clone(),
            line: None,
            key: "mibs.dirs".into(),
            message: format!("MIB module {}: {}", problem.module, problem.summary()),
        });
    }
    crate::mib::install(std::sync::Arc::new(mibs));
    for (i, (kind, dirs)) in [
        (PluginKind::Discovery, &settings.plugins.discovery),
        (PluginKind::Enrichment, &settings.plugins.enrichment),
        (PluginKind::Polling, &settings.plugins.polling),
    ]
    .into_iter()
    .enumerate()
    {
        for dir in dirs {
            let files = match plugin_files(dir, kind) {
                Ok(files) => files,
                Err(e) => {
                    report.problems.push(Problem {
                        place: settings_place(&settings, &e.key).0,
                        line: settings_place(&settings, &e.key).1,
                        key: e.key.clone(),
                        message: format!("{}: {}", dir.display(), e.problem),
                    });
                    continue;
                }
            };
            for path in files {
                report.plugins[i] += 1;
                report.problems.extend(check_plugin(&path, kind));
            }
        }
    }
    for definition in device_metrics::embedded() {
        report.vendor_definitions += 1;
        if let Err(e) = definition {
            report.problems.push(Problem {
                place: "built-in vendor definitions".into(),
                line: None,
                key: "definition".into(),
                message: e.to_string(),
            });
        }
    }
    report
}

/// One plugin file and the files it names.
fn check_plugin(path: &Path, kind: PluginKind) -> Vec<Problem> {
    let text = embedded::read_to_string(path).unwrap_or_default();
    let problem = |key: &str, message: String| Problem {
        place: path.display().to_string(),
        line: locate_plugin_key(&text, key),
        key: key.to_string(),
        message,
    };
    let plugin = match PluginConfig::load(path, kind) {
        Ok(p) => p,
        Err(e) => return vec![problem(&e.key, e.problem)],
    };
    let mut out = Vec::new();
    if let Err(e) = BuiltIn::resolve(&plugin) {
        out.push(problem(&e.key, e.problem));
        return out;
    }
    if plugin.get("main", "config_file").is_some() {
        match discovery_json::config_file(&plugin)
            .and_then(|file| discovery_json::discover(&file, 0.0))
        {
            Ok((_, rejected)) => {
                for reason in rejected {
                    out.push(problem("[main] config_file", reason));
                }
            }
            Err(e) => out.push(problem("[main] config_file", e.to_string())),
        }
    }
    if plugin.get("main", "vendor_definition").is_some() {
        if let Err(e) = device_metrics::definition_from_plugin(&plugin) {
            out.push(problem("[main] vendor_definition", e.to_string()));
        }
    }
    let generic = crate::plugins::generic_snmp::polling::Options::from_plugin(&plugin);
    if let Some(file) = &generic.file {
        if generic.from_store {
            out.push(problem(
                "[enrichment] file",
                "the DSL document is configured both by [enrichment] preload and [enrichment] file; use one".into(),
            ));
        } else if let Err(message) = check_document(file, &plugin) {
            out.push(problem("[enrichment] file", message));
        }
    }
    out
}

/// A Generic SNMP plugin's DSL document: readable, JSON, and compiles.
fn check_document(file: &Path, plugin: &PluginConfig) -> Result<(), String> {
    let text = embedded::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", file.display()))?;
    let schema = SchemaVersion::parse(plugin.get("main", "enrichment_schema_version"));
    Document::compile(&json, schema)
        .map(drop)
        .map_err(|e| format!("{}: DSL document: {e}", file.display()))
}

fn load_problem(file: Option<&Path>, e: &SettingsError) -> Problem {
    let (place, line) = match e {
        SettingsError::Load {
            source_name,
            message,
        } => {
            let line = message
                .split("line ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok());
            (source_name.clone(), line)
        }
        SettingsError::Invalid { .. } => (
            file.map_or("defaults".into(), |f| f.display().to_string()),
            None,
        ),
    };
    Problem {
        place,
        line,
        key: "configuration".into(),
        message: match e {
            SettingsError::Load { message, .. } => message.clone(),
            other => other.to_string(),
        },
    }
}

fn settings_problem(settings: &Settings, e: &SettingsError) -> Problem {
    match e {
        SettingsError::Invalid { key, problem } => {
            let (place, line) = settings_place(settings, key);
            Problem {
                place,
                line,
                key: (*key).to_string(),
                message: problem.clone(),
            }
        }
        SettingsError::Load {
            source_name,
            message,
        } => Problem {
            place: source_name.clone(),
            line: None,
            key: "configuration".into(),
            message: message.clone(),
        },
    }
}

/// Where a settings key was set: the file and line, the variable, or the defaults.
fn settings_place(settings: &Settings, key: &str) -> (String, Option<usize>) {
    match settings.origins.of(key) {
        Origin::File(file) => {
            let line = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| locate_settings_key(&text, key));
            (file.display().to_string(), line)
        }
        Origin::Env(var) => (format!("environment ({var})"), None),
        Origin::Default => ("defaults".into(), None),
    }
}

/// The line of `section.key` (or a top-level `key`) in a TOML file.
fn locate_settings_key(text: &str, key: &str) -> Option<usize> {
    let (section, name) = match key.rsplit_once('.') {
        Some((section, name)) => (Some(section), name),
        None => (None, key),
    };
    locate(text, section, name)
}

/// The line of `[section] key` (or of what a plugin error names) in a plugin file.
fn locate_plugin_key(text: &str, key: &str) -> Option<usize> {
    let rest = key.strip_prefix('[')?;
    let (section, name) = rest.split_once("] ")?;
    locate(text, Some(section), name)
}

/// The 1-based line where `name =` (or `name:`) stands in `[section]` (or before any
/// section, for `None`); the section header's line when the key is missing from it.
fn locate(text: &str, section: Option<&str>, name: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    let mut header = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            current = Some(h.trim().to_string());
            if Some(h.trim()) == section {
                header = Some(i + 1);
            }
            continue;
        }
        if current.as_deref() != section {
            continue;
        }
        if let Some(after) = t.strip_prefix(name) {
            let after = after.trim_start();
            if after.starts_with('=') || after.starts_with(':') {
                return Some(i + 1);
            }
        }
    }
    header
}

/// Keys whose values are secrets: shown as `***` when set.
const SECRET_KEYS: &[&str] = &[
    "snmp.community",
    "snmp.v3_auth_passphrase",
    "snmp.v3_priv_passphrase",
    "http.token",
    "influxdb.token",
    "influxdb.password",
    "kafka.client_password",
    "traps.communities",
];

/// The effective settings as TOML, each value with where it came from; secrets masked,
/// paths as the node will use them.
pub fn show(settings: &Settings) -> Result<String, ShowError> {
    let mut table: toml::Table = toml::from_str(crate::config::DEFAULT_CONFIG)?;
    if let Some(file) = settings.origins.file() {
        let text = std::fs::read_to_string(file).map_err(|e| ShowError::Read {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        merge(&mut table, toml::from_str(&text)?);
    }
    for (var, value) in std::env::vars() {
        if let Some(rest) = var.strip_prefix("PANOPTES__") {
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            set(&mut table, &path, env_value(&path.join("."), &value));
        }
    }
    let resolved = |key: &str| -> Option<toml::Value> {
        let p = &settings.plugins;
        let list = |dirs: &[PathBuf]| {
            toml::Value::Array(
                dirs.iter()
                    .map(|d| toml::Value::String(d.display().to_string()))
                    .collect(),
            )
        };
        let s = |v: &str| Some(toml::Value::String(v.to_string()));
        match key {
            "data_dir" => s(&settings.data_dir.display().to_string()),
            "plugins.discovery" => Some(list(&p.discovery)),
            "plugins.enrichment" => Some(list(&p.enrichment)),
            "plugins.polling" => Some(list(&p.polling)),
            "snmp.secrets_file" => s(&settings.snmp.secrets_file),
            // The demo may turn the receiver on (demo.traps_listen).
            "traps.listen" => s(&settings.traps.listen),
            "demo.recording" => s(&settings.demo.recording),
            "http.tls_cert" => s(&settings.http.tls_cert),
            "http.tls_key" => s(&settings.http.tls_key),
            "kafka.tls_cert" => s(&settings.kafka.tls_cert),
            "kafka.tls_key" => s(&settings.kafka.tls_key),
            "kafka.client_tls_ca" => s(&settings.kafka.client_tls_ca),
            "influxdb.tls_ca" => s(&settings.influxdb.tls_ca),
            "mibs.dirs" => Some(list(&settings.mibs.dirs)),
            _ => None,
        }
    };
    let mut out = String::new();
    render(&table, "", settings, &resolved, &mut out);
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("cannot read {file}: {message}")]
    Read { file: PathBuf, message: String },
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set(inner, rest, value);
            }
        }
    }
}

/// An environment value as the settings loader reads it: lists split on commas, numbers
/// and booleans parsed, the rest strings.
fn env_value(key: &str, raw: &str) -> toml::Value {
    const LISTS: &[&str] = &[
        "plugins.discovery",
        "plugins.enrichment",
        "plugins.polling",
        "kafka.brokers",
        "kafka.sasl_mechanisms",
        "kafka.default_operations",
    ];
    if LISTS.contains(&key) {
        return toml::Value::Array(
            raw.split(',')
                .map(|s| toml::Value::String(s.trim().to_string()))
                .collect(),
        );
    }
    if let Ok(n) = raw.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    if let Ok(b) = raw.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    toml::Value::String(raw.to_string())
}

fn render(
    table: &toml::Table,
    prefix: &str,
    settings: &Settings,
    resolved: &dyn Fn(&str) -> Option<toml::Value>,
    out: &mut String,
) {
    use std::fmt::Write;
    let mut sections = Vec::new();
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if let toml::Value::Table(inner) = value {
            sections.push((key, inner));
            continue;
        }
        let shown = if SECRET_KEYS.contains(&key.as_str()) {
            match value {
                toml::Value::String(v) if v.is_empty() => value.clone(),
                toml::Value::Array(a) if a.is_empty() => value.clone(),
                _ => toml::Value::String("***".into()),
            }
        } else if is_path_key(&key) {
            resolved(&key).unwrap_or_else(|| value.clone())
        } else {
            value.clone()
        };
        let _ = writeln!(out, "{name} = {shown}  # {}", settings.origins.of(&key));
    }
    for (key, inner) in sections {
        let _ = writeln!(out, "\n[{key}]");
        render(inner, &key, settings, resolved, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_their_section() {
        let text =
            "site = \"a\"\n[http]\nlisten = \"x\"\n\n[kafka]\n# listen = 1\nlisten = \"y\"\n";
        assert_eq!(locate_settings_key(text, "site"), Some(1));
        assert_eq!(locate_settings_key(text, "http.listen"), Some(3));
        assert_eq!(locate_settings_key(text, "kafka.listen"), Some(7));
        // Missing from its section: the section's header.
        assert_eq!(locate_settings_key(text, "kafka.brokers"), Some(5));
        assert_eq!(locate_settings_key(text, "influxdb.url"), None);
        let ini = "[Core]\nName = x\n[main]\nexecute_frequency = 60\nresource_filter = bad\n";
        assert_eq!(locate_plugin_key(ini, "[main] resource_filter"), Some(5));
        assert_eq!(locate_plugin_key(ini, "[Core] Module"), Some(1));
        assert_eq!(locate_plugin_key(ini, "syntax"), None);
    }

    #[test]
    fn problems_print_as_file_line_key_message() {
        let p = Problem {
            place: "/etc/panoptes/panoptes.toml".into(),
            line: Some(12),
            key: "snmp.timeout".into(),
            message: "must be 1..120 seconds".into(),
        };
        assert_eq!(
            p.to_string(),
            "/etc/panoptes/panoptes.toml:12: snmp.timeout: must be 1..120 seconds"
        );
    }
}
