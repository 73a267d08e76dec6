//! The resource manager: reconciles resource sets from `<site>-resources` into the resource
//! keyspace (what the original kept in Redis), newest timestamp winning (spec §4.4).
//! Stored resources expire by their `_resource_ttl`, so a device discovery stops
//! announcing ages out on its own.

use std::time::Duration;

use panoptes_storage::{Keyspace, StorageError};

use crate::model::{FromJsonError, Resource, ResourceSet};

/// Resources as stored: serialization key -> resource JSON, with the resource's TTL.
#[derive(Clone)]
pub struct ResourceStore {
    keyspace: Keyspace,
}

/// What one reconciliation changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub added: usize,
    pub updated: usize,
    pub deleted: usize,
    pub kept_newer: usize,
}

impl ReconcileReport {
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.deleted > 0
    }
}

impl ResourceStore {
    pub fn new(keyspace: Keyspace) -> ResourceStore {
        ResourceStore { keyspace }
    }

    /// Every live resource; entries that no longer parse are logged and skipped.
    pub fn all(&self) -> Result<Vec<Resource>, StorageError> {
        self.with_prefix("")
    }

    fn with_prefix(&self, prefix: &str) -> Result<Vec<Resource>, StorageError> {
        let mut out = Vec::new();
        for (key, value) in self.keyspace.scan_prefix(prefix.as_bytes())? {
            let parsed = serde_json::from_slice::<serde_json::Value>(&value)
                .map_err(FromJsonError::from)
                .and_then(|v| Ok(Resource::from_json(&v)?));
            match parsed {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(key = %String::from_utf8_lossy(&key), error = %e,
                    "stored resource is unreadable: skipped"),
            }
        }
        Ok(out)
    }

    pub fn put(&self, resource: &Resource) -> Result<(), StorageError> {
        let value = serde_json::to_vec(resource).unwrap_or_default();
        self.keyspace.put(
            resource.serialization_key().as_bytes(),
            &value,
            Some(Duration::from_secs(resource.ttl())),
        )
    }

    pub fn delete(&self, resource: &Resource) -> Result<bool, StorageError> {
        self.keyspace
            .delete(resource.serialization_key().as_bytes())
    }

    /// Applies one resource-set message. `message_key` is the discovery agent's
    /// `<plugin>:<version>:<signature>`; resources this plugin stored for the site but no
    /// longer announces are deleted unless they are newer than the set.
    pub fn reconcile(
        &self,
        message_key: &str,
        set: &ResourceSet,
    ) -> Result<ReconcileReport, StorageError> {
        let mut report = ReconcileReport::default();
        let Some(first) = set.resources.first() else {
            return Ok(report);
        };
        let plugin = message_key.split(':').next().unwrap_or_default();
        let current = self.with_prefix(&format!("plugin|{plugin}|site|{}|", first.site))?;
        for stored in &current {
            let announced = set.resources.iter().any(|r| r == stored);
            if !announced
                && stored.creation_timestamp.seconds() <= set.resource_set_creation_timestamp
            {
                self.delete(stored)?;
                report.deleted += 1;
            }
        }
        for incoming in &set.resources {
            match current.iter().find(|s| *s == incoming) {
                Some(stored)
                    if stored.creation_timestamp.seconds()
                        > incoming.creation_timestamp.seconds() =>
                {
                    report.kept_newer += 1;
                }
                Some(stored) => {
                    if stored.serialization_key() != incoming.serialization_key() {
                        self.delete(stored)?;
                    }
                    self.put(incoming)?;
                    report.updated += 1;
                }
                None => {
                    self.put(incoming)?;
                    report.added += 1;
                }
            }
        }
        Ok(report)
    }
}
