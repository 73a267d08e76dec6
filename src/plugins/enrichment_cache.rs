//! The enrichment cache handed to plugins with an `[enrichment]` section: the stored
//! enrichments named by `preload`, loaded once per run (spec §2.5).

use std::collections::HashMap;

use serde_json::{Map, Value};

use panoptes_storage::StorageError;

use crate::config::Preload;
use crate::model::{decode_stored_enrichment, ModelError, StoredEnrichment};

/// Why the enrichments a plugin preloads could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EnrichmentCacheError {
    /// The enrichment store failed.
    #[error(transparent)]
    Store(#[from] StorageError),
    /// A stored enrichment does not decode.
    #[error("enrichment `{key}`: {source}")]
    Stored {
        key: String,
        #[source]
        source: ModelError,
    },
}

/// Read access to the enrichment keyspace (`<resource_id>:<namespace>` -> stored JSON,
/// zstd-compressed or plain: see [`decode_stored_enrichment`]).
pub trait EnrichmentSource {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
}

impl EnrichmentSource for panoptes_storage::Keyspace {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        panoptes_storage::Keyspace::get(self, key.as_bytes())
    }

    fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .scan_prefix(prefix.as_bytes())?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }
}

/// Enrichments held in memory: the one-shot runner and tests load stored JSON into it
/// (`<resource_id>:<namespace>` -> the stored form), as the original's tests wrote Redis.
#[derive(Debug, Default, Clone)]
pub struct MapSource(pub std::collections::BTreeMap<String, String>);

impl MapSource {
    /// Reads `<key>=><json>` lines, the conformance fixtures' `enrichment_data.kv` format.
    pub fn parse_kv(text: &str) -> MapSource {
        MapSource(
            text.lines()
                .filter_map(|l| l.split_once("=>"))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        )
    }
}

impl EnrichmentSource for MapSource {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.0.get(key).map(|v| v.as_bytes().to_vec()))
    }

    fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .0
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// The stored JSON under `key` (decompressed), None when there is none.
pub fn stored_text(
    source: &dyn EnrichmentSource,
    key: &str,
) -> Result<Option<String>, EnrichmentCacheError> {
    let Some(bytes) = source.get(key)? else {
        return Ok(None);
    };
    decode_stored_enrichment(&bytes)
        .map(Some)
        .map_err(|source| EnrichmentCacheError::Stored {
            key: key.to_owned(),
            source,
        })
}

#[derive(Debug, Default, Clone)]
pub struct EnrichmentCache {
    self_id: String,
    data: HashMap<(String, String), Map<String, Value>>,
    /// Entries named by `preload` that were not in the store (logged, not fatal).
    pub missing: Vec<String>,
}

impl EnrichmentCache {
    pub fn load(
        source: &dyn EnrichmentSource,
        preloads: &[Preload],
        self_id: &str,
    ) -> Result<EnrichmentCache, EnrichmentCacheError> {
        let mut cache = EnrichmentCache {
            self_id: self_id.to_string(),
            ..Default::default()
        };
        for p in preloads {
            let resource = if p.resource == "self" {
                self_id
            } else {
                p.resource.as_str()
            };
            let keys = if p.namespace == "*" {
                source.keys_with_prefix(&format!("{resource}:"))?
            } else {
                vec![format!("{resource}:{}", p.namespace)]
            };
            for key in keys {
                match stored_text(source, &key)? {
                    None => cache.missing.push(key),
                    Some(text) => {
                        let stored = StoredEnrichment::parse(&text).map_err(|source| {
                            EnrichmentCacheError::Stored {
                                key: key.clone(),
                                source,
                            }
                        })?;
                        let ns = key.split_once(':').map(|(_, ns)| ns).unwrap_or_default();
                        cache
                            .data
                            .insert((resource.to_string(), ns.to_string()), stored.data);
                    }
                }
            }
        }
        Ok(cache)
    }

    fn resolve<'a>(&'a self, resource: &'a str) -> &'a str {
        if resource == "self" {
            &self.self_id
        } else {
            resource
        }
    }

    /// The whole data dict of `<resource>:<namespace>`.
    pub fn enrichment(&self, resource: &str, namespace: &str) -> Option<&Map<String, Value>> {
        self.data
            .get(&(self.resolve(resource).to_string(), namespace.to_string()))
    }

    /// One value of `<resource>:<namespace>`.
    pub fn value(&self, resource: &str, namespace: &str, key: &str) -> Option<&Value> {
        self.enrichment(resource, namespace)
            .and_then(|m| m.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn loads_self_and_star_and_reports_missing() {
        let mut m = BTreeMap::new();
        m.insert(
            "r1:interface".to_string(),
            r#"{"data": {"5": {"alias": "x"}}, "metadata": {}}"#.to_string(),
        );
        m.insert("r1:other".to_string(), r#"{"data": {"k": 1}}"#.to_string());
        let src = MapSource(m);
        let pre = |r: &str, ns: &str| Preload {
            resource: r.into(),
            namespace: ns.into(),
        };
        let c =
            EnrichmentCache::load(&src, &[pre("self", "interface"), pre("r2", "x")], "r1").unwrap();
        assert_eq!(c.value("self", "interface", "5").unwrap()["alias"], "x");
        assert_eq!(c.missing, vec!["r2:x"]);
        let c = EnrichmentCache::load(&src, &[pre("self", "*")], "r1").unwrap();
        assert!(c.enrichment("r1", "other").is_some());
        let mut bad = BTreeMap::new();
        bad.insert("r1:interface".to_string(), "not json".to_string());
        let err =
            EnrichmentCache::load(&MapSource(bad), &[pre("self", "interface")], "r1").unwrap_err();
        assert!(
            matches!(&err, EnrichmentCacheError::Stored { key, .. } if key == "r1:interface"),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(
            err.starts_with("enrichment `r1:interface`: stored enrichment: expected "),
            "{err}"
        );
    }
}
