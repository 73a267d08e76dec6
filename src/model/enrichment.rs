use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ModelError, Resource};

/// One namespace of enrichment data for one resource: sets keyed by, for example, an
/// interface index (spec §2.5). Adding a set with an existing key replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichmentGroup {
    pub namespace: String,
    pub data: Vec<(String, Map<String, Value>)>,
    pub creation_timestamp: f64,
    pub ttl: u64,
    pub execute_frequency: u64,
}

impl EnrichmentGroup {
    pub fn new(namespace: &str, ttl: u64, execute_frequency: u64, created: f64) -> EnrichmentGroup {
        EnrichmentGroup {
            namespace: namespace.into(),
            data: Vec::new(),
            creation_timestamp: created,
            ttl,
            execute_frequency,
        }
    }

    pub fn upsert_set(&mut self, key: &str, fields: Map<String, Value>) {
        match self.data.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = fields,
            None => self.data.push((key.to_string(), fields)),
        }
    }

    fn metadata_json(&self) -> Value {
        serde_json::json!({
            "_enrichment_group_creation_timestamp": self.creation_timestamp,
            "_enrichment_ttl": self.ttl,
            "_execute_frequency": self.execute_frequency,
        })
    }

    /// The in-memory `json()` form the enrichment fixtures use.
    pub fn to_json(&self) -> Value {
        let data: Vec<Value> = self
            .data
            .iter()
            .map(|(k, v)| {
                let mut one = Map::new();
                one.insert(k.clone(), Value::Object(v.clone()));
                Value::Object(one)
            })
            .collect();
        serde_json::json!({"namespace": self.namespace, "data": data, "metadata": self.metadata_json()})
    }

    /// What goes into the enrichment keyspace under `<resource_id>:<namespace>`.
    pub fn to_stored(&self) -> StoredEnrichment {
        StoredEnrichment {
            data: self
                .data
                .iter()
                .map(|(k, v)| (k.clone(), Value::Object(v.clone())))
                .collect(),
            metadata: match self.metadata_json() {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        }
    }

    /// The text of [`to_stored`](Self::to_stored)`().`[`to_sorted_json`](StoredEnrichment::to_sorted_json)`()`,
    /// written from the group itself: no copy of its sets (the other way copied every
    /// field of every interface three times, ≈8% of a 10,000-device start's CPU).
    pub fn stored_json(&self) -> String {
        let mut data: Vec<&(String, Map<String, Value>)> = self.data.iter().collect();
        // Stable, then the last of a repeated key kept: what collecting into a map keeps.
        data.sort_by(|a, b| a.0.cmp(&b.0));
        data.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        let stored = StoredRef {
            data: SetsRef(&data),
            metadata: SortedRef(&self.metadata_json()),
        };
        // Writing into a String cannot fail; a map key is always a string here.
        serde_json::to_string(&stored).unwrap_or_default()
    }
}

/// The stored form: `{"data": {key: {...}}, "metadata": {...}}` (spec §2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEnrichment {
    pub data: Map<String, Value>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl StoredEnrichment {
    /// JSON with sorted keys, as the original writes it.
    pub fn to_sorted_json(&self) -> String {
        sorted(&serde_json::json!({"data": self.data, "metadata": self.metadata})).to_string()
    }

    pub fn parse(text: &str) -> Result<StoredEnrichment, ModelError> {
        serde_json::from_str(text)
            .map_err(|e| ModelError::invalid("stored enrichment", e.to_string()))
    }
}

/// All enrichment groups of one resource: what an enrichment plugin returns.
#[derive(Debug, Clone)]
pub struct EnrichmentGroupSet {
    pub resource: Resource,
    pub creation_timestamp: f64,
    pub groups: Vec<EnrichmentGroup>,
}

impl EnrichmentGroupSet {
    pub fn new(resource: Resource, created: f64) -> EnrichmentGroupSet {
        EnrichmentGroupSet {
            resource,
            creation_timestamp: created,
            groups: Vec::new(),
        }
    }

    /// A group with no sets cannot be added (spec §2.5); one namespace per set.
    pub fn add_group(&mut self, group: EnrichmentGroup) -> Result<(), ModelError> {
        if group.data.is_empty() {
            return Err(ModelError::invalid(
                format!("enrichment group `{}`", group.namespace),
                "has no enrichment sets",
            ));
        }
        self.groups.retain(|g| g.namespace != group.namespace);
        self.groups.push(group);
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "resource": self.resource,
            "enrichment_group_set_creation_timestamp": self.creation_timestamp,
            "enrichment": self.groups.iter().map(EnrichmentGroup::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A copy of `v` with every object's keys sorted (serde_json keeps insertion order here).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => sorted_object(m, |_, v| sorted(v)),
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `m` with its keys sorted, each value replaced by `f(key, value)`.
fn sorted_object(m: &serde_json::Map<String, Value>, f: impl Fn(&str, &Value) -> Value) -> Value {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    Value::Object(keys.into_iter().map(|k| (k.clone(), f(k, &m[k]))).collect())
}

/// `{"data": ..., "metadata": ...}` of a group, by reference (see
/// [`EnrichmentGroup::stored_json`]).
#[derive(Serialize)]
struct StoredRef<'a> {
    data: SetsRef<'a>,
    metadata: SortedRef<'a>,
}

/// A group's sets, already sorted by key and without repeats.
struct SetsRef<'a>(&'a [&'a (String, Map<String, Value>)]);

impl Serialize for SetsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, SortedMapRef(v))))
    }
}

/// A value written with every object's keys sorted, as [`sorted`] makes it, without the copy.
struct SortedRef<'a>(&'a Value);

impl Serialize for SortedRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(m) => SortedMapRef(m).serialize(s),
            Value::Array(a) => s.collect_seq(a.iter().map(SortedRef)),
            other => other.serialize(s),
        }
    }
}

struct SortedMapRef<'a>(&'a Map<String, Value>);

impl Serialize for SortedMapRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&String, &Value)> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_map(entries.into_iter().map(|(k, v)| (k, SortedRef(v))))
    }
}

/// The form golden comparisons compare in: every object's keys sorted, and an array
/// sorted (by its text) only where the original holds a set: a list of metrics groups,
/// a group's `metrics` and `dimensions`, a set's `enrichment` groups and their `data`, a
/// resource set's `resources`. Every other array keeps its order, which the original
/// defines (a DSL document's `metrics_groups`, lists in its tables).
pub fn canonical(v: &Value) -> Value {
    canonical_in(v, true)
}

/// Keys whose arrays are sets in the original's JSON.
const SET_KEYS: [&str; 5] = ["metrics", "dimensions", "enrichment", "data", "resources"];

fn canonical_in(v: &Value, is_set: bool) -> Value {
    match v {
        Value::Object(m) => sorted_object(m, |k, v| canonical_in(v, SET_KEYS.contains(&k))),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(|i| canonical_in(i, false)).collect();
            if is_set {
                items.sort_by_key(|i| i.to_string());
            }
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// zstd's frame magic: a stored enrichment that starts with it is compressed; one that
/// starts with `{` is the plain JSON earlier builds wrote (still read).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A decompressed enrichment larger than this is refused as damaged (a plain one is
/// never near it: a 48-port device's is ≈10 KB).
pub const MAX_STORED_ENRICHMENT_BYTES: usize = 64 * 1024 * 1024;

/// The bytes an enrichment is stored as: its sorted JSON, zstd-compressed. Why: every
/// stored enrichment is read once per poll of its device, so the store keeps all of them
/// in memory; compressed they are ≈7× smaller (at 10,000 48-port devices, ≈100 MB of
/// JSON held by the store became ≈15 MB) for ≈15 µs of decompression per poll.
pub fn encode_stored(json: &str) -> Vec<u8> {
    // With this thread's compression context: a fresh one per call allocated and zeroed
    // its tables every time (≈11% of a 10,000-device start's CPU went to that). The
    // bytes are the same either way.
    let compressed = COMPRESSOR.with(|c| match &mut *c.borrow_mut() {
        Some(c) => c.compress(json.as_bytes()),
        None => zstd::bulk::compress(json.as_bytes(), STORED_LEVEL),
    });
    // Compressing into memory cannot fail but for allocation; keep the JSON if it does.
    compressed.unwrap_or_else(|_| json.as_bytes().to_vec())
}

/// zstd's level for stored enrichments (its default).
const STORED_LEVEL: i32 = 3;

thread_local! {
    /// Reused by every store on this thread (`None` if zstd could not make one).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(STORED_LEVEL).ok());
    /// Reused by every read on this thread (`None` if zstd could not make one).
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// The JSON text of a stored enrichment, from either stored form.
pub fn decode_stored(bytes: &[u8]) -> Result<String, ModelError> {
    let invalid = |why: String| ModelError::invalid("stored enrichment".to_string(), why);
    if bytes.starts_with(&ZSTD_MAGIC) {
        // The usual frame (ours) states its size: decompress it in one call with this
        // thread's decompression context. A fresh streaming decoder per read allocated
        // and zeroed its ≈130 KB window every poll.
        if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(bytes) {
            let size = usize::try_from(size)
                .ok()
                .filter(|&n| n <= MAX_STORED_ENRICHMENT_BYTES)
                .ok_or_else(|| {
                    invalid(format!(
                        "decompresses to more than {MAX_STORED_ENRICHMENT_BYTES} bytes"
                    ))
                })?;
            let json = DECOMPRESSOR
                .with(|d| match &mut *d.borrow_mut() {
                    Some(d) => d.decompress(bytes, size),
                    None => zstd::bulk::decompress(bytes, size),
                })
                .map_err(|e| invalid(format!("cannot decompress: {e}")))?;
            return String::from_utf8(json).map_err(|e| invalid(format!("not UTF-8: {e}")));
        }
        let mut json = Vec::new();
        zstd::stream::read::Decoder::new(bytes)
            .and_then(|d| {
                use std::io::Read;
                d.take(MAX_STORED_ENRICHMENT_BYTES as u64 + 1)
                    .read_to_end(&mut json)
            })
            .map_err(|e| invalid(format!("cannot decompress: {e}")))?;
        if json.len() > MAX_STORED_ENRICHMENT_BYTES {
            return Err(invalid(format!(
                "decompresses to more than {MAX_STORED_ENRICHMENT_BYTES} bytes"
            )));
        }
        String::from_utf8(json).map_err(|e| invalid(format!("not UTF-8: {e}")))
    } else {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_are_compressed_and_both_forms_read_back() {
        let mut g = EnrichmentGroup::new("interface", 900, 300, 1.5);
        for i in 1..=48 {
            let mut f = Map::new();
            f.insert(
                "description".into(),
                Value::from(format!("port {i} to rack")),
            );
            f.insert("configured_speed".into(), Value::from(10_000_000_000u64));
            g.upsert_set(&i.to_string(), f);
        }
        let json = g.to_stored().to_sorted_json();
        let stored = encode_stored(&json);
        assert!(
            stored.len() * 4 < json.len(),
            "{} -> {}",
            json.len(),
            stored.len()
        );
        assert_eq!(decode_stored(&stored).unwrap(), json);
        // What earlier builds stored: the JSON itself.
        assert_eq!(decode_stored(json.as_bytes()).unwrap(), json);
        // A damaged compressed value is an error, not a panic or an empty enrichment.
        let mut damaged = stored.clone();
        damaged.truncate(stored.len() / 2);
        let e = decode_stored(&damaged).unwrap_err().to_string();
        assert!(
            e.starts_with("stored enrichment: cannot decompress: "),
            "{e}"
        );
        let mut garbage = ZSTD_MAGIC.to_vec();
        garbage.extend_from_slice(b"not a frame at all");
        let e = decode_stored(&garbage).unwrap_err().to_string();
        assert!(
            e.starts_with("stored enrichment: cannot decompress: "),
            "{e}"
        );
        // A frame that claims 100 MiB is refused before anything is allocated for it.
        let mut huge = ZSTD_MAGIC.to_vec();
        huge.push(0xe0); // single segment, 8-byte content size
        huge.extend_from_slice(&(100u64 << 20).to_le_bytes());
        huge.extend_from_slice(&[1, 0, 0]); // a last, empty raw block
        let e = decode_stored(&huge).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "stored enrichment: decompresses to more than {MAX_STORED_ENRICHMENT_BYTES} bytes"
            )
        );
        // A frame that does not state its size (a streaming writer's) still reads.
        let streamed = zstd::stream::encode_all(json.as_bytes(), 3).unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&streamed),
            Ok(None)
        ));
        assert_eq!(decode_stored(&streamed).unwrap(), json);
        // Read again on the same thread: the reused context starts clean.
        assert_eq!(decode_stored(&stored).unwrap(), json);
        // Compressed again with the reused context: the same bytes as a fresh one makes.
        assert_eq!(encode_stored(&json), stored);
        assert_eq!(stored, zstd::bulk::compress(json.as_bytes(), 3).unwrap());
    }

    #[test]
    fn stored_form_round_trips_with_sorted_keys() {
        let mut g = EnrichmentGroup::new("interface", 900, 300, 1.5);
        let mut f = Map::new();
        f.insert("z".into(), Value::from(1));
        f.insert("a".into(), Value::from("x"));
        g.upsert_set("5", f.clone());
        g.upsert_set("5", f);
        assert_eq!(g.data.len(), 1);
        let text = g.to_stored().to_sorted_json();
        assert!(text.starts_with(r#"{"data":{"5":{"a":"x","z":1}},"metadata":{"_enrichment_group_creation_timestamp":1.5"#), "{text}");
        assert_eq!(StoredEnrichment::parse(&text).unwrap(), g.to_stored());
        assert_eq!(
            StoredEnrichment::parse("{").unwrap_err().to_string(),
            "stored enrichment: EOF while parsing an object at line 1 column 1"
        );
    }

    /// A JSON value of a few levels, keys drawn from a small set so that objects of
    /// several keys need sorting.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[ -~é\\n\"]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-d_]{1,3}", inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The group written directly is the text of its stored form sorted, for any
        /// fields, nested values and repeated set keys (pushed past `upsert_set`).
        #[test]
        fn stored_json_is_the_sorted_stored_form(
            sets in proptest::collection::vec(
                ("[0-9]{1,2}", proptest::collection::vec(("[a-e]{1,2}", json_value()), 0..6)),
                0..8,
            ),
            created in proptest::prelude::any::<f64>(),
            ttl in 0u64..2000,
        ) {
            let mut g = EnrichmentGroup::new("interface", ttl, 300, created);
            for (key, fields) in sets {
                g.data.push((key, fields.into_iter().collect()));
            }
            proptest::prop_assert_eq!(g.stored_json(), g.to_stored().to_sorted_json());
        }
    }
}
