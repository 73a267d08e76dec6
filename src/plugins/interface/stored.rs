//! A device's stored interface enrichment (`<resource_id>:interface`), read in place for a
//! poll: the interface polling plugin reads ten fields of each interface once per poll, so
//! the stored JSON is parsed into borrowed keys and raw values instead of a tree of owned
//! strings (which cost more than the rest of building the interface groups). It accepts
//! and refuses exactly what [`StoredEnrichment::parse`] does, with the same error.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::model::StoredEnrichment;
use crate::plugins::enrichment_cache::{stored_text, EnrichmentCacheError, EnrichmentSource};

/// The namespace the interface enrichment is stored under.
pub const NAMESPACE: &str = "interface";

/// The stored text of one device's interface enrichment.
#[derive(Debug, Clone)]
pub struct StoredInterfaces {
    key: String,
    text: String,
}

/// A JSON object key: borrowed from the text unless it holds an escape.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The stored form with `data` kept raw: `{"data": {index: {...}}, "metadata": {...}}`.
#[derive(Deserialize)]
struct Parsed<'a> {
    #[serde(borrow)]
    data: Data<'a>,
    /// Not used here, but checked as the stored form requires (an object when present).
    #[serde(default, borrow)]
    #[allow(dead_code)]
    metadata: BTreeMap<Key<'a>, &'a RawValue>,
}

/// Every interface's enrichment: index -> its stored JSON.
pub struct Interfaces<'a> {
    data: Data<'a>,
}

/// An object's members sorted by key, in their order among equal keys: a poll looks up
/// each of its ≈48 interfaces once, and a hash map hashed every key twice with SipHash
/// (≈2% of a poll).
struct Data<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'a> Data<'a> {
    /// The value of `key`, the last one given where the object repeats it (as a map keeps).
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        let end = self.0.partition_point(|(k, _)| &*k.0 <= key);
        let (k, raw) = self.0.get(end.checked_sub(1)?)?;
        (k.0 == key).then_some(*raw)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Members(mut members) = Members::deserialize(d)?;
        // Stable: equal keys keep their order, so the last is the one that counts.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Data(members))
    }
}

/// An object's members in the order given, keys and values borrowed from the text.
struct Members<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Members<'a>, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(pair) = map.next_entry::<Key<'a>, &'a RawValue>()? {
                    members.push(pair);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One interface's fields, in the order stored (a dozen: a list read back to front, as
/// a map would keep the last of a repeated key, costs less than building a tree a poll).
pub struct Fields<'a> {
    fields: Vec<(Key<'a>, &'a RawValue)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Members::deserialize(d).map(|Members(fields)| Fields { fields })
    }
}

/// One field's value, as the interface groups read it.
#[derive(Debug, PartialEq)]
pub enum Field<'a> {
    /// Absent or JSON `null`.
    Empty,
    Text(Cow<'a, str>),
    /// Any other JSON value (a number, a boolean, an array or an object).
    Other(Value),
}

impl StoredInterfaces {
    /// The stored interface enrichment of `resource_id`, `None` when there is none.
    pub fn load(
        source: &dyn EnrichmentSource,
        resource_id: &str,
    ) -> Result<Option<StoredInterfaces>, EnrichmentCacheError> {
        let key = format!("{resource_id}:{NAMESPACE}");
        Ok(stored_text(source, &key)?.map(|text| StoredInterfaces { key, text }))
    }

    /// The interfaces, or the error [`StoredEnrichment::parse`] gives for this text.
    pub fn interfaces(&self) -> Result<Interfaces<'_>, EnrichmentCacheError> {
        match serde_json::from_str::<Parsed>(&self.text) {
            Ok(parsed) => Ok(Interfaces { data: parsed.data }),
            Err(e) => {
                // The same refusal in the stored form's own words.
                let source = match StoredEnrichment::parse(&self.text) {
                    Err(source) => source,
                    Ok(_) => crate::model::ModelError::invalid("stored enrichment", e.to_string()),
                };
                Err(EnrichmentCacheError::Stored {
                    key: self.key.clone(),
                    source,
                })
            }
        }
    }
}

impl<'a> Interfaces<'a> {
    /// How many interfaces are stored (an index given twice counts twice).
    pub fn count(&self) -> usize {
        self.data.0.len()
    }

    /// The fields of the interface at `index`, `None` when there is no entry for it or the
    /// entry is not an object.
    pub fn get(&self, index: &str) -> Option<Fields<'a>> {
        let raw = self.data.get(index)?;
        serde_json::from_str::<Fields<'a>>(raw.get()).ok()
    }
}

impl<'a> Fields<'a> {
    pub fn get(&self, name: &str) -> Field<'a> {
        let Some((_, raw)) = self.fields.iter().rev().find(|(key, _)| key.0 == name) else {
            return Field::Empty;
        };
        let json = raw.get();
        if json == "null" {
            return Field::Empty;
        }
        if json.starts_with('"') {
            if let Ok(Key(text)) = serde_json::from_str::<Key<'a>>(json) {
                return Field::Text(text);
            }
        }
        serde_json::from_str(json).map_or(Field::Empty, Field::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::enrichment_cache::{EnrichmentCache, MapSource};

    fn source(json: &str) -> MapSource {
        MapSource([("r1:interface".to_string(), json.to_string())].into())
    }

    /// Every field reads as the whole parse (`EnrichmentCache`) has it.
    #[test]
    fn fields_read_as_the_parsed_enrichment() {
        let json = r#"{"data": {"5": {"alias": "a \"q\" \u00e9", "speed": 1000,
            "f": 1.5e3, "n": null, "b": true, "o": {"x": [1, 2]}, "e": "",
            "k\u0065y": "escaped key", "twice": "first", "twice": "last"},
            "6": "not an object", "7": {}},
            "metadata": {"_enrichment_ttl": 900}}"#;
        let src = source(json);
        let stored = StoredInterfaces::load(&src, "r1").unwrap().unwrap();
        let interfaces = stored.interfaces().unwrap();
        let cache = EnrichmentCache::load(
            &src,
            &[crate::config::Preload {
                resource: "self".into(),
                namespace: "interface".into(),
            }],
            "r1",
        )
        .unwrap();
        let whole = cache.enrichment("self", "interface").unwrap();
        let five = interfaces.get("5").unwrap();
        let Some(Value::Object(expected)) = whole.get("5") else {
            panic!("{whole:?}")
        };
        for name in [
            "alias", "speed", "f", "n", "b", "o", "e", "key", "twice", "absent",
        ] {
            let as_parsed = match expected.get(name) {
                None | Some(Value::Null) => Field::Empty,
                Some(Value::String(s)) => Field::Text(Cow::Owned(s.clone())),
                Some(other) => Field::Other(other.clone()),
            };
            assert_eq!(five.get(name), as_parsed, "{name}");
        }
        assert_eq!(five.get("alias"), Field::Text("a \"q\" é".into()));
        // A repeated key reads as its last value, as in the parsed form.
        assert_eq!(five.get("twice"), Field::Text("last".into()));
        assert!(interfaces.get("6").is_none());
        assert!(interfaces.get("7").is_some());
        assert!(interfaces.get("8").is_none());
    }

    /// Interfaces are found by index whatever the order stored, a repeated index reads as
    /// its last entry and an escaped key as its text, as in the whole parse.
    #[test]
    fn interfaces_by_index_as_the_parsed_enrichment() {
        let json = r#"{"data": {"5": {"alias": "first"}, "10": {"alias": "ten"},
            "2": {"alias": "two"}, "5": {"alias": "second"}, "\u0039": {"alias": "nine"},
            "1.2": {"alias": "one-two"}, "10": {"alias": "ten again"}}}"#;
        let src = source(json);
        let stored = StoredInterfaces::load(&src, "r1").unwrap().unwrap();
        let interfaces = stored.interfaces().unwrap();
        let whole = StoredEnrichment::parse(json).unwrap();
        for index in ["5", "10", "2", "9", "1.2", "1", "0", "", "50", "3"] {
            let expected = whole.data.get(index).and_then(|v| v.get("alias")).cloned();
            let got = interfaces.get(index).map(|f| match f.get("alias") {
                Field::Text(t) => Value::String(t.into_owned()),
                other => panic!("{index}: {other:?}"),
            });
            assert_eq!(got, expected, "{index}");
        }
        assert_eq!(
            interfaces.get("5").map(|f| f.get("alias")),
            Some(Field::Text("second".into()))
        );
    }

    /// Missing, undecodable and misshapen records: none, or the stored form's own error.
    #[test]
    fn bad_records_fail_as_the_stored_form_does() {
        assert!(StoredInterfaces::load(&source("{}"), "r2")
            .unwrap()
            .is_none());
        for bad in [
            "not json",
            r#"{"metadata": {}}"#,
            r#"{"data": [1]}"#,
            r#"{"data": {}, "metadata": null}"#,
        ] {
            let stored = StoredInterfaces::load(&source(bad), "r1").unwrap().unwrap();
            let Err(err) = stored.interfaces() else {
                panic!("{bad} was accepted")
            };
            let expected = StoredEnrichment::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("enrichment `r1:interface`: {expected}"),
                "{bad}"
            );
        }
        let ok = StoredInterfaces::load(&source(r#"{"data": {}}"#), "r1")
            .unwrap()
            .unwrap();
        assert!(ok.interfaces().unwrap().get("1").is_none());
    }
}
