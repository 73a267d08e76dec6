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
    let text = std::fs::read_to_string(path)
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
