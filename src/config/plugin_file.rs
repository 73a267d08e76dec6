//! Plugin files: the original's `.panoptes-plugin` INI (loaded unchanged) or the same
//! sections written as TOML. Everything is checked at load, so a bad file stops the node
//! at start with its path, the key and the problem, not at 3 a.m. on the first poll.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::filter::ResourceFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginKind {
    Discovery,
    Enrichment,
    Polling,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Discovery => "discovery",
            PluginKind::Enrichment => "enrichment",
            PluginKind::Polling => "polling",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("plugin file {path}: {key}: {problem}")]
pub struct PluginFileError {
    pub path: PathBuf,
    pub key: String,
    pub problem: String,
}

/// What is wrong with a plugin file's text, or with a value that has a syntax of its own
/// (`[enrichment] preload`, `[transforms]`). [`PluginFileError`] adds the file and key.
#[derive(Debug, thiserror::Error)]
pub enum PluginSyntaxError {
    #[error(transparent)]
    Ini(#[from] ini::ParseError),
    #[error("keys before the first [section]")]
    KeysBeforeSection,
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("`{0}` must be a [section] table")]
    NotASection(String),
    #[error("[{section}] {key}: unsupported value {value}")]
    UnsupportedValue {
        section: String,
        key: String,
        value: toml::Value,
    },
    #[error("`{0}`: expected <resource>:<namespace>, e.g. self:interface")]
    PreloadForm(String),
    #[error("`{0}`: resource and namespace must be non-empty")]
    PreloadEmpty(String),
    #[error("`{0}`: expected <kind>:<metrics_group_type>:<metric>,<metric>,...")]
    TransformForm(String),
    #[error("`{0}`: the group type and at least one metric are required")]
    TransformEmpty(String),
}

/// `[enrichment] preload` entry: `<resource id or self>:<namespace or *>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    pub resource: String,
    pub namespace: String,
}

/// `[transforms] <name> = <kind>:<group_type>:<m1>,<m2>,...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformSpec {
    pub name: String,
    pub kind: String,
    pub group_type: String,
    pub inputs: Vec<String>,
}

/// A `rate` transform, the only kind the original knows.
pub type RateTransform = TransformSpec;

/// `[snmp]` keys a plugin may override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnmpOverrides {
    pub port: Option<u16>,
    pub timeout: Option<u64>,
    pub retries: Option<u32>,
    pub non_repeaters: Option<u32>,
    pub max_repetitions: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub path: PathBuf,
    pub kind: PluginKind,
    /// `[Core] Name`.
    pub name: String,
    /// `[Core] Module`, reduced to its base name (`plugin_polling_device_interface_metrics`).
    pub module: String,
    pub version: String,
    /// Seconds; 0 means "not scheduled", as in the original.
    pub execute_frequency: u64,
    pub resource_filter: Option<ResourceFilter>,
    pub results_cache_age: u64,
    pub enrichment_ttl: Option<u64>,
    pub snmp: SnmpOverrides,
    pub preload: Vec<Preload>,
    pub transforms: Vec<TransformSpec>,
    /// Topic suffixes besides `processed` from `[topics] processed`.
    pub processed_topics: Vec<String>,
    /// Every section and key as read, for plugin-specific keys.
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl PluginConfig {
    /// The name as the original normalises it for keys: `_` -> `__`, then every character
    /// outside `[A-Za-z0-9_]` -> `_`.
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map(String::as_str)
    }

    /// A flag as the original reads one: any non-empty value is on (the original tested the
    /// raw string's truthiness), except that `0`, `false`, `no` and `off` are off here too
    /// (a deliberate difference: a user who writes `= 0` means off). Absent is off.
    pub fn flag(&self, section: &str, key: &str) -> bool {
        self.get(section, key).is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            )
        })
    }

    /// The first transform for a group type (the original uses only the first).
    pub fn transform_for(&self, group_type: &str) -> Option<&TransformSpec> {
        self.transforms.iter().find(|t| t.group_type == group_type)
    }

    pub fn error(&self, section: &str, key: &str, problem: impl Into<String>) -> PluginFileError {
        PluginFileError {
            path: self.path.clone(),
            key: format!("[{section}] {key}"),
            problem: problem.into(),
        }
    }

    /// Parses one plugin file (INI unless the name ends in `.toml`).
    pub fn load(path: &Path, kind: PluginKind) -> Result<PluginConfig, PluginFileError> {
        let fail = |key: &str, problem: String| PluginFileError {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };
        let text =
            super::embedded::read_to_string(path).map_err(|e| fail("file", e.to_string()))?;
        let sections = if path.extension().is_some_and(|e| e == "toml") {
            parse_toml(&text).map_err(|p| fail("syntax", p.to_string()))?
        } else {
            parse_ini(&text).map_err(|p| fail("syntax", p.to_string()))?
        };
        Self::from_sections(path, kind, sections)
    }

    fn from_sections(
        path: &Path,
        kind: PluginKind,
        sections: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<PluginConfig, PluginFileError> {
        let fail = |key: &str, problem: String| PluginFileError {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };
        let get = |s: &str, k: &str| sections.get(s).and_then(|m| m.get(k)).map(|v| v.trim());
        let name = get("Core", "Name")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail("[Core] Name", "is required".into()))?
            .to_string();
        let module_raw = get("Core", "Module")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail("[Core] Module", "is required".into()))?;
        let module = module_base_name(module_raw);
        let uint = |s: &str, k: &str| -> Result<Option<u64>, PluginFileError> {
            match get(s, k) {
                None => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(|n| Some(n.max(0) as u64))
                    .map_err(|_| {
                        fail(
                            &format!("[{s}] {k}"),
                            format!("`{v}` is not a whole number"),
                        )
                    }),
            }
        };
        let execute_frequency = uint("main", "execute_frequency")?
            .ok_or_else(|| fail("[main] execute_frequency", "is required (seconds)".into()))?;
        let resource_filter = match get("main", "resource_filter") {
            Some(text) => Some(
                ResourceFilter::parse(text)
                    .map_err(|e| fail("[main] resource_filter", e.to_string()))?,
            ),
            None if kind != PluginKind::Discovery => {
                return Err(fail(
                    "[main] resource_filter",
                    format!("is required for {} plugins", kind.as_str()),
                ))
            }
            None => None,
        };
        let small = |k: &str, max: u64| -> Result<Option<u64>, PluginFileError> {
            let v = uint("snmp", k)?;
            match v {
                Some(n) if n > max => {
                    Err(fail(&format!("[snmp] {k}"), format!("{n} is above {max}")))
                }
                other => Ok(other),
            }
        };
        let snmp = SnmpOverrides {
            port: small("port", 65535)?.map(|n| n as u16),
            timeout: small("timeout", 120)?,
            retries: small("retries", 10)?.map(|n| n as u32),
            non_repeaters: small("non_repeaters", 65535)?.map(|n| n as u32),
            max_repetitions: small("max_repetitions", 65535)?.map(|n| n as u32),
        };
        let preload = match get("enrichment", "preload") {
            None => Vec::new(),
            Some(text) => {
                parse_preload(text).map_err(|p| fail("[enrichment] preload", p.to_string()))?
            }
        };
        let mut transforms = Vec::new();
        if let Some(section) = sections.get("transforms") {
            for (tname, value) in section {
                let spec = parse_transform(tname, value)
                    .map_err(|p| fail(&format!("[transforms] {tname}"), p.to_string()))?;
                transforms.push(spec);
            }
        }
        let processed_topics = get("topics", "processed")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(PluginConfig {
            path: path.to_path_buf(),
            kind,
            name,
            module,
            version: get("Documentation", "Version").unwrap_or("").to_string(),
            execute_frequency,
            resource_filter,
            results_cache_age: uint("main", "results_cache_age")?.unwrap_or(0),
            enrichment_ttl: uint("main", "enrichment_ttl")?,
            snmp,
            preload,
            transforms,
            processed_topics,
            sections,
        })
    }
}

/// Loads every plugin file (`*.panoptes-plugin`, `*.toml`) of a directory, sorted by name.
pub fn load_plugin_dir(dir: &Path, kind: PluginKind) -> Result<Vec<PluginConfig>, PluginFileError> {
    plugin_files(dir, kind)?
        .iter()
        .map(|p| PluginConfig::load(p, kind))
        .collect()
}

/// The plugin files (`*.panoptes-plugin`, `*.toml`) of a directory, sorted by name.
pub fn plugin_files(dir: &Path, kind: PluginKind) -> Result<Vec<PathBuf>, PluginFileError> {
    let paths = super::embedded::list_dir(dir).map_err(|e| PluginFileError {
        path: dir.to_path_buf(),
        key: format!("plugins.{}", kind.as_str()),
        problem: format!("cannot read plugin directory: {e}"),
    })?;
    Ok(paths
        .into_iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "panoptes-plugin" || e == "toml")
        })
        .collect())
}

pub fn normalize_name(name: &str) -> String {
    name.replace('_', "__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `/x/y/plugin_discovery_from_json_file.py` -> `plugin_discovery_from_json_file`.
fn module_base_name(module: &str) -> String {
    let base = module.rsplit(['/', '\\']).next().unwrap_or(module);
    base.strip_suffix(".py").unwrap_or(base).to_string()
}

/// ConfigObj strips one pair of matching quotes around a value; so do we.
fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) && !v[1..v.len() - 1].contains(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Sections by name, each key -> value.
type Sections = BTreeMap<String, BTreeMap<String, String>>;

fn parse_ini(text: &str) -> Result<Sections, PluginSyntaxError> {
    let opts = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..Default::default()
    };
    let parsed = ini::Ini::load_from_str_opt(text, opts)?;
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (section, props) in parsed.iter() {
        let Some(section) = section else {
            if props.iter().next().is_some() {
                return Err(PluginSyntaxError::KeysBeforeSection);
            }
            continue;
        };
        let entry = out.entry(section.trim().to_string()).or_default();
        for (k, v) in props.iter() {
            entry.insert(k.trim().to_string(), unquote(v).to_string());
        }
    }
    Ok(out)
}

fn parse_toml(text: &str) -> Result<Sections, PluginSyntaxError> {
    let table: toml::Table = text.parse()?;
    let mut out = BTreeMap::new();
    for (section, value) in table {
        let toml::Value::Table(props) = value else {
            return Err(PluginSyntaxError::NotASection(section));
        };
        let mut entry = BTreeMap::new();
        for (k, v) in props {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => (if b { "1" } else { "0" }).to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                value => {
                    return Err(PluginSyntaxError::UnsupportedValue {
                        section,
                        key: k,
                        value,
                    })
                }
            };
            entry.insert(k, text);
        }
        out.insert(section, entry);
    }
    Ok(out)
}

fn parse_preload(text: &str) -> Result<Vec<Preload>, PluginSyntaxError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (res, ns) = entry
                .split_once(':')
                .ok_or_else(|| PluginSyntaxError::PreloadForm(entry.to_owned()))?;
            let (res, ns) = (res.trim(), ns.trim());
            if res.is_empty() || ns.is_empty() {
                return Err(PluginSyntaxError::PreloadEmpty(entry.to_owned()));
            }
            Ok(Preload {
                resource: res.to_string(),
                namespace: ns.to_string(),
            })
        })
        .collect()
}

fn parse_transform(name: &str, value: &str) -> Result<TransformSpec, PluginSyntaxError> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() != 3 {
        return Err(PluginSyntaxError::TransformForm(value.to_owned()));
    }
    let inputs: Vec<String> = parts[2]
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if parts[1].trim().is_empty() || inputs.is_empty() {
        return Err(PluginSyntaxError::TransformEmpty(value.to_owned()));
    }
    Ok(TransformSpec {
        name: name.to_string(),
        kind: parts[0].trim().to_string(),
        group_type: parts[1].trim().to_string(),
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/conformance")
            .join(rel)
    }

    /// Any non-empty value turns a flag on, as the original's string truthiness did, but
    /// for the words that plainly mean off.
    #[test]
    fn flags_follow_the_originals_truthiness_but_for_the_words_for_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.panoptes-plugin");
        let mut text = String::from(
            "[Core]\nName = P\nModule = plugin_polling_device_interface_metrics\n[main]\nexecute_frequency = 60\nresource_filter = resource_class = \"network\"\n[dimension]\n",
        );
        let cases = [
            ("a", "1", true),
            ("b", "True", true),
            ("c", "yes", true),
            ("d", "2", true),
            ("e", "enabled", true),
            ("f", "0", false),
            ("g", " FALSE ", false),
            ("h", "no", false),
            ("i", "off", false),
            ("j", "", false),
        ];
        for (key, value, _) in cases {
            text.push_str(&format!("{key} = {value}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let p = PluginConfig::load(&path, PluginKind::Polling).unwrap();
        for (key, value, on) in cases {
            assert_eq!(p.flag("dimension", key), on, "{key} = {value:?}");
        }
        assert!(!p.flag("dimension", "absent"));
    }

    #[test]
    fn loads_the_originals_files_unchanged() {
        let p = PluginConfig::load(
            &shared("interface_polling/default/plugin.conf"),
            PluginKind::Polling,
        )
        .unwrap();
        assert_eq!(p.module, "plugin_polling_device_interface_metrics");
        assert_eq!(p.execute_frequency, 60);
        assert_eq!(
            p.preload,
            vec![Preload {
                resource: "self".into(),
                namespace: "interface".into()
            }]
        );
        assert_eq!(p.snmp.max_repetitions, Some(25));
        assert!(!p.flag("dimension", "include_interface_index"));

        let d = PluginConfig::load(
            &shared("discovery/from_json_file/example_plugin.conf"),
            PluginKind::Discovery,
        )
        .unwrap();
        assert_eq!(d.module, "plugin_discovery_from_json_file");
        assert_eq!(d.version, "0.1");
        assert_eq!(
            d.get("main", "config_file"),
            Some("/home/panoptes/plugins/discovery/localhost.json")
        );

        let r = PluginConfig::load(
            &shared("rate_transform/interface_counter_sequence/plugin.conf"),
            PluginKind::Polling,
        )
        .unwrap();
        let t = r.transform_for("test_group").unwrap();
        assert_eq!(t.kind, "rate");
        assert_eq!(t.inputs, vec!["test_system_uptime", "extra_test_metric"]);
        assert_eq!(r.processed_topics, vec!["processed"]);
        assert_eq!(
            normalize_name("Interface Enrichment Plugin"),
            "Interface_Enrichment_Plugin"
        );
        assert_eq!(normalize_name("a_b-c"), "a__b_c");
    }

    #[test]
    fn toml_files_read_the_same_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, "[Core]\nName = \"X\"\nModule = \"plugin_polling_device_interface_metrics\"\n[main]\nexecute_frequency = 30\nresource_filter = 'resource_class = \"network\"'\n[enrichment]\npreload = \"self:interface\"\n").unwrap();
        let p = PluginConfig::load(&path, PluginKind::Polling).unwrap();
        assert_eq!(p.execute_frequency, 30);
        assert_eq!(p.preload.len(), 1);
    }

    #[test]
    fn bad_files_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |body: &str| {
            let path = dir.path().join("bad.panoptes-plugin");
            std::fs::write(&path, body).unwrap();
            PluginConfig::load(&path, PluginKind::Polling)
                .unwrap_err()
                .to_string()
        };
        let e = write("[Core]\nName = X\nModule = m\n[main]\nexecute_frequency = soon\nresource_filter = resource_class = \"n\"\n");
        assert!(
            e.contains("bad.panoptes-plugin")
                && e.contains("execute_frequency")
                && e.contains("soon"),
            "{e}"
        );
        let e = write("[Core]\nName = X\nModule = m\n[main]\nexecute_frequency = 5\n");
        assert!(e.contains("resource_filter"), "{e}");
        let e = write("[Core]\nName = X\nModule = m\n[main]\nexecute_frequency = 5\nresource_filter = resource_class = \"n\n");
        assert!(e.contains("resource_filter"), "{e}");
        let e = write("[Core]\nName = X\nModule = m\n[main]\nexecute_frequency = 5\nresource_filter = resource_class = \"n\"\n[transforms]\nx = rate:only\n");
        assert!(e.contains("[transforms] x"), "{e}");
        let e = write("[Core]\nName = X\nModule = m\n[main]\nexecute_frequency = 5\nresource_filter = resource_class = \"n\"\n[enrichment]\npreload = selfinterface\n");
        assert!(e.contains("preload"), "{e}");
    }
}
