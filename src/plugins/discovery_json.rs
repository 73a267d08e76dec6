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
    let mut parsed: Vec<(usize, Resource)> = Vec::with_capacity(entries.len());
    let mut rejected = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match Resource::from_json(entry) {
            Ok(r) => parsed.push((i, r)),
            Err(e) => rejected.push(format!("{} entry {}: {e}", path.display(), i + 1)),
        }
    }
    // The original's resource set is a set: an entry identical to an earlier one in
    // plugin, site, class, subclass, type, id and endpoint adds nothing. Found by hash:
    // comparing each entry with every earlier one took 13 s for a file of 30,000.
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(parsed.len());
        parsed
            .iter()
            .map(|(i, r)| {
                let first = seen.insert(entry_key(r));
                if !first {
                    tracing::debug!(file = %path.display(), entry = i + 1, resource = %r.id,
                        "duplicate resource entry: the first is kept");
                }
                first
            })
            .collect()
    };
    let resources: Vec<Resource> = parsed
        .into_iter()
        .zip(keep)
        .filter_map(|((_, r), first)| first.then_some(r))
        .collect();
    if resources.is_empty() {
        return Err(PluginError::Discovery(format!(
            "{}: no valid resource ({} rejected)",
            path.display(),
            rejected.len()
        )));
    }
    Ok((ResourceSet::new(resources, now), rejected))
}

/// A resource's identity: site, class, subclass, type, id.
type Identity<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// What makes two entries the same: the original's serialization key (and identity).
fn entry_key(r: &Resource) -> (Identity<'_>, Option<&str>, &str) {
    (r.identity(), r.plugin.as_deref(), r.endpoint.as_str())
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
            serde_json::json!({"resource_id": "no site"}),
            r("a", "10.0.0.2", "repeated after an invalid entry"),
        ]);
        let mut entries = entries;
        let mut other_plugin = r("a", "10.0.0.1", "other plugin");
        other_plugin["resource_plugin"] = "q".into();
        entries.as_array_mut().unwrap().push(other_plugin);
        std::fs::write(&path, entries.to_string()).unwrap();
        let (set, rejected) = discover(&path, 1.0).unwrap();
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert!(
            rejected[0].ends_with("r.json entry 5: resource_plugin: is required"),
            "{rejected:?}"
        );
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
                ("b", "10.0.0.1", "other id"),
                ("a", "10.0.0.1", "other plugin")
            ]
        );
    }
}
