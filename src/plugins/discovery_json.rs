//! Discovery from a JSON file of resource dicts (`plugin_discovery_from_json_file`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::PluginError;
use crate::config::PluginConfig;
use crate::model::{Resource, ResourceSet};

/// `[main] config_file`, absolute or relative to the plugin file's directory.
pub fn config_file(plugin: &PluginConfig) -> Result<PathBuf, PluginError> {
    let raw = plugin.get("main", "config_file").ok_or_else(|| {
        PluginError::Config(format!(
            "{}: [main] config_file is required",
            plugin.path.display()
        ))
    })?;
    let path = Path::new(raw);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        plugin.path.parent().unwrap_or(Path::new(".")).join(path)
    })
}

/// Reads the file: invalid entries are skipped (and returned for logging), an unreadable
/// or invalid file, or one with no valid resource, is an error.
pub fn discover(path: &Path, now: f64) -> Result<(ResourceSet, Vec<String>), PluginError> {
    let text = crate::config::embedded::read_to_string(path)
        .map_err(|e| PluginError::Discovery(format!("cannot read {}: {e}", path.display())))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        PluginError::Discovery(format!("{} is not valid JSON: {e}", path.display()))
    })?;
    let entries = value.as_array().ok_or_else(|| {
        PluginError::Discovery(format!(
            "{}: expected a JSON array of resources",
            path.display()
        ))
    })?;
    let mut resources: Vec<Resource> = Vec::new();
    let mut rejected = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match Resource::from_json(entry) {
            // The original's resource set is a set: an entry identical to an earlier one
            // in plugin, site, class, subclass, type, id and endpoint adds nothing.
            Ok(r) if resources.iter().any(|k| same_entry(k, &r)) => {
                tracing::debug!(file = %path.display(), entry = i + 1, resource = %r.id,
                    "duplicate resource entry: the first is kept");
            }
            Ok(r) => resources.push(r),
            Err(e) => rejected.push(format!("{} entry {}: {e}", path.display(), i + 1)),
        }
    }
    if resources.is_empty() {
        return Err(PluginError::Discovery(format!(
            "{}: no valid resource ({} rejected)",
            path.display(),
            rejected.len()
        )));
    }
    Ok((ResourceSet::new(resources, now), rejected))
}

/// The same entry by the original's serialization key (and identity).
fn same_entry(a: &Resource, b: &Resource) -> bool {
    a == b && a.plugin == b.plugin && a.endpoint == b.endpoint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_entries_collapse_to_the_first_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let r = |id: &str, endpoint: &str, model: &str| {
            serde_json::json!({"resource_site": "s", "resource_class": "network",
                "resource_subclass": "switch", "resource_type": "t", "resource_id": id,
                "resource_endpoint": endpoint, "resource_plugin": "p",
                "resource_metadata": {"model": model}})
        };
        let entries = serde_json::json!([
            r("a", "10.0.0.1", "first"),
            r("a", "10.0.0.1", "second"),
            r("a", "10.0.0.2", "other endpoint"),
            r("b", "10.0.0.1", "other id"),
        ]);
        std::fs::write(&path, entries.to_string()).unwrap();
        let (set, rejected) = discover(&path, 1.0).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        let got: Vec<(&str, &str, &str)> = set
            .resources
            .iter()
            .map(|r| {
                (
                    r.id.as_str(),
                    r.endpoint.as_str(),
                    r.metadata.get("model").map_or("", String::as_str),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", "10.0.0.1", "first"),
                ("a", "10.0.0.2", "other endpoint"),
                ("b", "10.0.0.1", "other id")
            ]
        );
    }
}
