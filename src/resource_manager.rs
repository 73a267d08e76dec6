//! The resource manager: reconciles resource sets from `<site>-resources` into the resource
//! keyspace (what the original kept in Redis), newest timestamp winning (spec §4.4).
//! Stored resources expire by their `_resource_ttl`, so a device discovery stops
//! announcing ages out on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_storage::{Keyspace, StorageError};

use crate::model::{FromJsonError, Resource, ResourceSet};

/// A resource and its serialization key, as [`ResourceStore::shared_with_keys`] gives them.
pub type KeyedResource = (Arc<str>, Arc<Resource>);

/// Resources as stored: serialization key -> resource JSON, with the resource's TTL.
#[derive(Clone)]
pub struct ResourceStore {
    keyspace: Keyspace,
    /// The resources [`ResourceStore::shared`] last gave, sorted by their key's hash,
    /// each with a hash of the stored JSON it was read from.
    parsed: Arc<Mutex<Vec<Parsed>>>,
}

/// A stored resource as read: its key's FNV-1a hash, the JSON's length and hash, the
/// resource and its serialization key.
///
/// Found by the key's hash (a sorted list of 48 bytes a resource, where a table by key
/// was 16,384 slots at 10,000 devices). Two keys of one hash cost at most a parse: a
/// resource is reused only when its JSON's length and hash match too, and the JSON names
/// the fields the key is made of. The serialization key is made once per parse and shared
/// by the schedulers' work keys (see [`ResourceStore::shared_with_keys`]).
struct Parsed {
    key_hash: u64,
    len: usize,
    hash: u64,
    resource: Arc<Resource>,
    serialization_key: Arc<str>,
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

/// A stored resource, or None (logged) when it no longer parses.
fn parse(key: &[u8], value: &[u8]) -> Option<Resource> {
    let parsed = serde_json::from_slice::<serde_json::Value>(value)
        .map_err(FromJsonError::from)
        .and_then(|v| Ok(Resource::from_json(&v)?));
    match parsed {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(key), error = %e,
                "stored resource is unreadable: skipped");
            None
        }
    }
}

impl ResourceStore {
    pub fn new(keyspace: Keyspace) -> ResourceStore {
        ResourceStore {
            keyspace,
            parsed: Arc::default(),
        }
    }

    /// Every live resource, like [`ResourceStore::all`], each one copy shared by every
    /// caller: a resource whose stored JSON has not changed since the last call is the
    /// same `Arc` as then, not parsed again.
    ///
    /// Why: each scheduler (enrichment, polling) re-plans from every resource, and its
    /// jobs hold the resources until the next plan. Parsed anew each time, 10,000 devices
    /// were two copies of ≈900 bytes a device held for good, a third and fourth while a
    /// plan replaced the last, and the JSON parsed again at every plan.
    pub fn shared(&self) -> Result<Vec<Arc<Resource>>, StorageError> {
        Ok(self
            .shared_with_keys()?
            .into_iter()
            .map(|(_, resource)| resource)
            .collect())
    }

    /// [`ResourceStore::shared`], each resource with its serialization key, made once
    /// while the resource's JSON is unchanged: both schedulers' work keys of a resource
    /// hold this one copy (≈150 bytes a device, where each scheduler held its own).
    pub fn shared_with_keys(&self) -> Result<Vec<KeyedResource>, StorageError> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen: Vec<Parsed> = Vec::with_capacity(parsed.len());
        let mut out = Vec::with_capacity(parsed.len());
        for (key, value) in self.keyspace.scan_prefix(b"")? {
            let key_hash = crate::hash::fnv1a(&key);
            let (len, hash) = (value.len(), crate::hash::fnv1a(&value));
            let known = parsed
                .binary_search_by_key(&key_hash, |p| p.key_hash)
                .ok()
                .and_then(|at| parsed.get(at))
                .filter(|p| p.len == len && p.hash == hash)
                .map(|p| (Arc::clone(&p.resource), Arc::clone(&p.serialization_key)));
            let (resource, serialization_key) = match known {
                Some(known) => known,
                None => match parse(&key, &value) {
                    Some(r) => {
                        let serialization_key = Arc::from(r.serialization_key());
                        (Arc::new(r), serialization_key)
                    }
                    None => continue,
                },
            };
            out.push((Arc::clone(&serialization_key), Arc::clone(&resource)));
            seen.push(Parsed {
                key_hash,
                len,
                hash,
                resource,
                serialization_key,
            });
        }
        // What was not seen is gone from the store: forgotten here too.
        seen.sort_unstable_by_key(|p| p.key_hash);
        *parsed = seen;
        Ok(out)
    }

    /// Every live resource; entries that no longer parse are logged and skipped.
    pub fn all(&self) -> Result<Vec<Resource>, StorageError> {
        self.with_prefix("")
    }

    fn with_prefix(&self, prefix: &str) -> Result<Vec<Resource>, StorageError> {
        let mut out = Vec::new();
        for (key, value) in self.keyspace.scan_prefix(prefix.as_bytes())? {
            out.extend(parse(&key, &value));
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
        // By identity, both ways: a set re-announcing 10,000 stored resources compared
        // each with each, 2.3 s of CPU a discovery run.
        let mut stored_by_identity: HashMap<_, &Resource> = HashMap::new();
        for r in &current {
            stored_by_identity.entry(r.identity()).or_insert(r);
        }
        let announced: std::collections::HashSet<_> =
            set.resources.iter().map(Resource::identity).collect();
        for stored in &current {
            if !announced.contains(&stored.identity())
                && stored.creation_timestamp.seconds() <= set.resource_set_creation_timestamp
            {
                self.delete(stored)?;
                report.deleted += 1;
            }
        }
        for incoming in &set.resources {
            match stored_by_identity.get(&incoming.identity()).copied() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_switch;

    fn store() -> ResourceStore {
        let store = panoptes_storage::Store::memory();
        ResourceStore::new(store.keyspace("resources").unwrap())
    }

    fn ids(resources: &[Arc<Resource>]) -> Vec<String> {
        let mut ids: Vec<String> = resources.iter().map(|r| r.id.to_string()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn shared_keys_are_the_serialization_keys_made_once() {
        let store = store();
        let sw1 = test_switch();
        store.put(&sw1).unwrap();
        let first = store.shared_with_keys().unwrap();
        let [(key, resource)] = &first[..] else {
            panic!("one resource: {}", first.len());
        };
        assert_eq!(&**key, sw1.serialization_key());
        assert_eq!(resource.id, sw1.id);
        let again = store.shared_with_keys().unwrap();
        assert!(Arc::ptr_eq(&again[0].0, key), "the key was made again");
        // Changed JSON: parsed anew, and so the key too (it is made of the JSON's fields).
        let mut moved = sw1.clone();
        moved.add_metadata("model", "x9").unwrap();
        store.put(&moved).unwrap();
        let changed = store.shared_with_keys().unwrap();
        assert!(!Arc::ptr_eq(&changed[0].0, key));
        assert_eq!(&*changed[0].0, sw1.serialization_key());
    }

    #[test]
    fn shared_resources_are_one_copy_until_their_stored_json_changes() {
        let store = store();
        let sw1 = test_switch();
        let mut sw2 = test_switch();
        sw2.id = "sw2".into();
        store.put(&sw1).unwrap();
        store.put(&sw2).unwrap();

        let first = store.shared().unwrap();
        assert_eq!(ids(&first), ["sw1", "sw2"]);
        let again = store.shared().unwrap();
        for r in &again {
            let same = first.iter().find(|f| f.id == r.id).unwrap();
            assert!(Arc::ptr_eq(same, r), "{} was parsed again", r.id);
        }

        // A changed resource is read anew; the unchanged one stays the same copy.
        sw2.add_metadata("model", "x9").unwrap();
        store.put(&sw2).unwrap();
        let changed = store.shared().unwrap();
        let new_sw2 = changed.iter().find(|r| r.id == "sw2").unwrap();
        assert_eq!(
            new_sw2.metadata.get("model").map(String::as_str),
            Some("x9")
        );
        let old_sw2 = first.iter().find(|r| r.id == "sw2").unwrap();
        assert!(!Arc::ptr_eq(new_sw2, old_sw2));
        let sw1_now = changed.iter().find(|r| r.id == "sw1").unwrap();
        assert!(Arc::ptr_eq(sw1_now, &first[0]) || Arc::ptr_eq(sw1_now, &first[1]));

        // A deleted one is gone, here and from the copies kept.
        assert!(store.delete(&sw1).unwrap());
        assert_eq!(ids(&store.shared().unwrap()), ["sw2"]);
        assert_eq!(store.parsed.lock().unwrap().len(), 1);
    }

    /// Keys whose hashes collide (forced here: every kept hash set to one value) cost a
    /// parse, never a wrong resource: one is reused only when its JSON matches too.
    #[test]
    fn colliding_key_hashes_never_give_another_resource() {
        let store = store();
        let mut sw2 = test_switch();
        sw2.id = "sw2".into();
        store.put(&test_switch()).unwrap();
        store.put(&sw2).unwrap();
        let first = store.shared().unwrap();
        for p in store.parsed.lock().unwrap().iter_mut() {
            p.key_hash = 7;
        }
        let again = store.shared().unwrap();
        assert_eq!(ids(&again), ["sw1", "sw2"]);
        // Whichever entry the search found, it matched at most its own JSON.
        let reused = again
            .iter()
            .filter(|r| first.iter().any(|f| Arc::ptr_eq(f, r)))
            .count();
        assert!(reused <= 1, "{reused}");
        assert_eq!(ids(&store.shared().unwrap()), ["sw1", "sw2"]);
    }

    #[test]
    fn an_unreadable_stored_resource_is_skipped_by_shared_and_all_alike() {
        let store = store();
        store.put(&test_switch()).unwrap();
        store.keyspace.put(b"broken", b"{not json", None).unwrap();
        assert_eq!(ids(&store.shared().unwrap()), ["sw1"]);
        assert_eq!(store.all().unwrap().len(), 1);
        // And is still skipped the next time (nothing of it was kept).
        assert_eq!(ids(&store.shared().unwrap()), ["sw1"]);
        assert_eq!(store.parsed.lock().unwrap().len(), 1);
    }

    fn set(resources: Vec<Resource>, at: f64) -> ResourceSet {
        ResourceSet {
            resources,
            resource_set_creation_timestamp: at,
            resource_set_schema_version: "0.1".into(),
        }
    }

    fn switch(id: &str, endpoint: &str, created: f64) -> Resource {
        let mut r = test_switch();
        r.id = id.into();
        r.endpoint = endpoint.into();
        r.creation_timestamp = crate::model::CreationTimestamp::Number(created);
        r
    }

    #[test]
    fn a_large_set_reconciles_by_identity_adds_updates_moves_keeps_newer_and_deletes() {
        let store = store();
        let first: Vec<Resource> = (0..3000)
            .map(|i| switch(&format!("d{i}"), "10.0.0.1", 5.0))
            .collect();
        let report = store.reconcile("p:1:x", &set(first, 5.0)).unwrap();
        assert_eq!((report.added, report.updated, report.deleted), (3000, 0, 0));

        // d0..d999 gone; d1000 moved to another endpoint; d2999 stored newer than this
        // set's copy of it; d3000..d3499 new.
        store.put(&switch("d2999", "10.0.0.1", 50.0)).unwrap();
        let mut second: Vec<Resource> = (1000..3500)
            .map(|i| switch(&format!("d{i}"), "10.0.0.1", 10.0))
            .collect();
        second[0] = switch("d1000", "10.0.0.2", 10.0);
        let report = store.reconcile("p:2:y", &set(second, 10.0)).unwrap();
        assert_eq!(
            report,
            ReconcileReport {
                added: 500,
                updated: 1999,
                deleted: 1000,
                kept_newer: 1,
            }
        );
        let now = store.all().unwrap();
        assert_eq!(now.len(), 2500);
        let find = |id: &str| now.iter().filter(|r| r.id == id).collect::<Vec<_>>();
        assert!(find("d0").is_empty() && find("d999").is_empty());
        let moved = find("d1000");
        assert_eq!(moved.len(), 1, "the old endpoint's copy is deleted");
        assert_eq!(moved[0].endpoint, "10.0.0.2");
        assert_eq!(find("d2999")[0].creation_timestamp.seconds(), 50.0);
        assert_eq!(find("d3499")[0].creation_timestamp.seconds(), 10.0);
    }
}
