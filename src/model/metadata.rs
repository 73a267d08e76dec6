//! A resource's metadata (`resource_metadata`): a few string pairs, kept sorted by key.
//!
//! Why not a `BTreeMap`: its first node has room for eleven pairs whatever it holds, a
//! 640-byte block for a resource's usual three to ten. The node holds every resource
//! for good (the planners share one parsed copy of each), so at 10,000 devices that was
//! 6.9 MB; as one exact-size sorted list it is 48 bytes a pair. Lookups are a binary
//! search over those few keys; the JSON form (an object, keys in order) is unchanged.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Key-value pairs sorted by key, no key twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(Vec<(String, String)>);

impl Metadata {
    pub fn new() -> Metadata {
        Metadata::default()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                // Grown one pair at a time: metadata is written once, when a resource is
                // built, and kept for the resource's life.
                self.0.reserve_exact(1);
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// The pairs in key order.
    pub fn iter(&self) -> Iter<'_> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// [`Metadata::iter`]'s iterator.
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (String, String)>,
    fn(&(String, String)) -> (&String, &String),
>;

impl<'a> IntoIterator for &'a Metadata {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<(String, String)> for Metadata {
    /// Later pairs win over earlier ones with the same key (as a map's `collect` does).
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Metadata {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: equal keys keep their order, and the last of each run is kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        out.shrink_to_fit();
        Metadata(out)
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Metadata, D::Error> {
        struct Pairs;

        impl<'de> Visitor<'de> for Pairs {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                // The size hint comes from the input: bounded before it is trusted.
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }

        deserializer.deserialize_map(Pairs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("model".to_string()),
            "[a-z_]{1,4}"
        ]
    }

    proptest! {
        /// Inserts answer as a `BTreeMap`'s do; iteration and the JSON form are the same,
        /// and the JSON reads back.
        #[test]
        fn metadata_is_an_ordered_map(
            ops in proptest::collection::vec((key(), "[ -~]{0,6}"), 0..40)
        ) {
            let mut m = Metadata::new();
            let mut model = BTreeMap::new();
            for (k, v) in ops {
                prop_assert_eq!(m.insert(k.clone(), v.clone()), model.insert(k, v));
            }
            prop_assert!(m.iter().eq(model.iter()));
            for (k, v) in &model {
                prop_assert_eq!(m.get(k), Some(v));
            }
            prop_assert_eq!(m.get("not a key"), None);
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&model).unwrap());
            let back: Metadata = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, m);
        }
    }

    #[test]
    fn collected_pairs_are_sorted_and_the_last_of_a_key_wins() {
        let m: Metadata = [("b", "1"), ("a", "2"), ("b", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pairs: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("a", "2"), ("b", "3")]);
        // A duplicate key in JSON: the last one, as serde_json's map reads it.
        let m: Metadata = serde_json::from_str(r#"{"k": "x", "k": "y"}"#).unwrap();
        assert_eq!(m.get("k").map(String::as_str), Some("y"));
        let err = serde_json::from_str::<Metadata>(r#"{"k": 1}"#).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }

    #[test]
    fn three_pairs_take_one_exact_block() {
        let mut m = Metadata::new();
        for k in ["_resource_ttl", "model", "snmp_port"] {
            m.insert(k.into(), "v".into());
        }
        assert_eq!(m.0.capacity(), 3);
    }
}
