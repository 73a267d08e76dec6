use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_identifier, Metadata, ModelError};
use crate::filter::{CoreField, FilterSubject};

/// `_resource_ttl` when a resource does not say: seven days.
pub const DEFAULT_RESOURCE_TTL: u64 = 604_800;
pub const RESOURCE_SET_SCHEMA_VERSION: &str = "0.1";
const TTL_KEY: &str = "_resource_ttl";

/// `resource_creation_timestamp` is passed through verbatim by the original: a number
/// normally, but a string where discovery read one from a file (spec §2.1, quirk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CreationTimestamp {
    Number(f64),
    Text(String),
}

impl CreationTimestamp {
    /// The timestamp as seconds, for "newer wins" comparisons; unparsable text counts as 0.
    pub fn seconds(&self) -> f64 {
        match self {
            CreationTimestamp::Number(n) => *n,
            CreationTimestamp::Text(s) => s.trim().parse().unwrap_or(0.0),
        }
    }
}

/// Defines a string newtype that reads as a `str` (deref, comparisons, display) and is
/// serialized as the plain string.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> $name {
                $name(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> $name {
                $name(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> $name {
                $name(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

string_newtype!(
    /// A resource's id (`resource_id`): what keys its rate state, enrichments, work
    /// partition and InfluxDB series.
    ResourceId
);

string_newtype!(
    /// A site (`resource_site`, `site`): the prefix of its topics and the key of its
    /// secrets.
    Site
);

/// A monitored device. Identity is (site, class, subclass, type, id): endpoint, plugin and
/// metadata do not take part in equality (spec §2.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "resource_site")]
    pub site: Site,
    #[serde(rename = "resource_class")]
    pub class: String,
    #[serde(rename = "resource_subclass")]
    pub subclass: String,
    #[serde(rename = "resource_type")]
    pub kind: String,
    #[serde(rename = "resource_id")]
    pub id: ResourceId,
    #[serde(rename = "resource_endpoint")]
    pub endpoint: String,
    #[serde(rename = "resource_metadata")]
    pub metadata: Metadata,
    #[serde(rename = "resource_creation_timestamp")]
    pub creation_timestamp: CreationTimestamp,
    #[serde(rename = "resource_plugin")]
    pub plugin: Option<String>,
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}
impl Eq for Resource {}

impl Resource {
    /// Builds a resource the way the original's `PanoptesResource` constructor does: every
    /// fixed field non-empty, `_resource_ttl` always present, metadata validated.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        site: &str,
        class: &str,
        subclass: &str,
        kind: &str,
        id: &str,
        endpoint: &str,
        plugin: Option<&str>,
        creation_timestamp: CreationTimestamp,
        ttl: u64,
    ) -> Result<Resource, ModelError> {
        for (field, value) in [
            ("resource_site", site),
            ("resource_class", class),
            ("resource_subclass", subclass),
            ("resource_type", kind),
            ("resource_id", id),
            ("resource_endpoint", endpoint),
        ] {
            if value.is_empty() {
                return Err(ModelError::invalid(field, "must be a non-empty string"));
            }
        }
        let mut metadata = Metadata::new();
        metadata.insert(TTL_KEY.to_string(), ttl.to_string());
        Ok(Resource {
            site: site.into(),
            class: class.into(),
            subclass: subclass.into(),
            kind: kind.into(),
            id: id.into(),
            endpoint: endpoint.into(),
            metadata,
            creation_timestamp,
            plugin: plugin.map(str::to_string),
        })
    }

    /// Adds (or overwrites) one metadata entry, with the original's validation.
    pub fn add_metadata(&mut self, key: &str, value: &str) -> Result<(), ModelError> {
        let field = format!("resource_metadata.{key}");
        if !is_identifier(key) {
            return Err(ModelError::invalid(
                field,
                "key must start with a letter or `_` and hold only letters, digits and `_`",
            ));
        }
        if value.is_empty() {
            return Err(ModelError::invalid(
                field,
                "value must be a non-empty string",
            ));
        }
        if value.contains('|') {
            return Err(ModelError::invalid(field, "value must not contain `|`"));
        }
        self.metadata.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Builds a resource from a JSON object as discovery files and resource-set messages
    /// carry it: the seven fixed fields and `resource_plugin` are required.
    pub fn from_json(value: &Value) -> Result<Resource, ModelError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ModelError::invalid("resource", "must be a JSON object"))?;
        let text = |field: &str| -> Result<&str, ModelError> {
            match obj.get(field) {
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(other) => Err(ModelError::invalid(
                    field,
                    format!("must be a string, found {}", json_kind(other)),
                )),
                None => Err(ModelError::invalid(field, "is required")),
            }
        };
        let plugin = match obj.get("resource_plugin") {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Null) => None,
            Some(other) => {
                return Err(ModelError::invalid(
                    "resource_plugin",
                    format!("must be a string, found {}", json_kind(other)),
                ))
            }
            None => return Err(ModelError::invalid("resource_plugin", "is required")),
        };
        let creation_timestamp = match obj.get("resource_creation_timestamp") {
            Some(Value::Number(n)) if n.as_f64().unwrap_or(0.0) != 0.0 => {
                CreationTimestamp::Number(n.as_f64().unwrap_or(0.0))
            }
            Some(Value::String(s)) if !s.is_empty() => CreationTimestamp::Text(s.clone()),
            _ => CreationTimestamp::Number(super::now_epoch()),
        };
        let metadata = match obj.get("resource_metadata") {
            Some(Value::Object(m)) => m.clone(),
            Some(Value::Null) | None => serde_json::Map::new(),
            Some(other) => {
                return Err(ModelError::invalid(
                    "resource_metadata",
                    format!("must be an object, found {}", json_kind(other)),
                ))
            }
        };
        let ttl = match metadata.get(TTL_KEY) {
            None => DEFAULT_RESOURCE_TTL,
            Some(v) => {
                let parsed = match v {
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                };
                parsed.ok_or_else(|| {
                    ModelError::invalid(
                        "resource_metadata._resource_ttl",
                        format!("must be a whole number of seconds, found {v}"),
                    )
                })?
            }
        };
        let mut resource = Resource::new(
            text("resource_site")?,
            text("resource_class")?,
            text("resource_subclass")?,
            text("resource_type")?,
            text("resource_id")?,
            text("resource_endpoint")?,
            plugin,
            creation_timestamp,
            ttl,
        )?;
        for (key, value) in &metadata {
            if key == TTL_KEY {
                continue;
            }
            match value {
                Value::String(s) => resource.add_metadata(key, s)?,
                other => {
                    return Err(ModelError::invalid(
                        format!("resource_metadata.{key}"),
                        format!("must be a string, found {}", json_kind(other)),
                    ))
                }
            }
        }
        Ok(resource)
    }

    /// (site, class, subclass, type, id): what makes two resources the same device.
    pub fn identity(&self) -> (&str, &str, &str, &str, &str) {
        (
            &self.site,
            &self.class,
            &self.subclass,
            &self.kind,
            &self.id,
        )
    }

    /// `_resource_ttl` in seconds.
    pub fn ttl(&self) -> u64 {
        self.metadata
            .get(TTL_KEY)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_RESOURCE_TTL)
    }

    /// The original's serialization key, used for storage keys and scheduler arguments.
    pub fn serialization_key(&self) -> String {
        format!(
            "plugin|{}|site|{}|class|{}|subclass|{}|type|{}|id|{}|endpoint|{}",
            self.plugin.as_deref().unwrap_or(""),
            self.site,
            self.class,
            self.subclass,
            self.kind,
            self.id,
            self.endpoint
        )
    }
}

impl FilterSubject for Resource {
    fn core_field(&self, field: CoreField) -> &str {
        match field {
            CoreField::Site => &self.site,
            CoreField::Class => &self.class,
            CoreField::Subclass => &self.subclass,
            CoreField::Type => &self.kind,
            CoreField::Id => &self.id,
            CoreField::Endpoint => &self.endpoint,
        }
    }

    fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }
}

/// What a discovery plugin produces and `<site>-resources` carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceSet {
    pub resources: Vec<Resource>,
    pub resource_set_creation_timestamp: f64,
    #[serde(default = "schema_version")]
    pub resource_set_schema_version: String,
}

fn schema_version() -> String {
    RESOURCE_SET_SCHEMA_VERSION.to_string()
}

impl ResourceSet {
    pub fn new(resources: Vec<Resource>, created: f64) -> ResourceSet {
        ResourceSet {
            resources,
            resource_set_creation_timestamp: created,
            resource_set_schema_version: schema_version(),
        }
    }

    /// Parses a resource-set message, validating every resource as the constructor would.
    pub fn from_json(value: &Value) -> Result<ResourceSet, ModelError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ModelError::invalid("resource set", "must be a JSON object"))?;
        let list = obj
            .get("resources")
            .and_then(Value::as_array)
            .ok_or_else(|| ModelError::invalid("resources", "must be an array"))?;
        let created = obj
            .get("resource_set_creation_timestamp")
            .and_then(Value::as_f64)
            .ok_or_else(|| {
                ModelError::invalid("resource_set_creation_timestamp", "must be a number")
            })?;
        let resources = list
            .iter()
            .map(Resource::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResourceSet::new(resources, created))
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_sites_read_and_write_as_plain_strings() {
        let id = ResourceId::new("sw1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"sw1\"");
        let site: Site = serde_json::from_str("\"dc1\"").unwrap();
        assert_eq!(site, "dc1");
        assert_eq!(format!("{site}-processed"), "dc1-processed");
        assert_eq!(id, "sw1");
        assert!(id.starts_with("sw"), "reads as a str");
        let r = Resource::from_json(&serde_json::json!({
            "resource_site": "dc1", "resource_class": "network", "resource_subclass": "switch",
            "resource_type": "generic", "resource_id": "sw1", "resource_endpoint": "10.0.0.1",
            "resource_metadata": {"_resource_ttl": "900"}, "resource_creation_timestamp": 1.0,
            "resource_plugin": "p"
        }))
        .unwrap();
        assert_eq!((r.id.as_str(), r.site.as_str()), ("sw1", "dc1"));
    }
    use serde_json::json;

    fn sample() -> Value {
        json!({"resource_site": "s", "resource_class": "network", "resource_subclass": "switch",
               "resource_type": "generic", "resource_id": "sw1", "resource_endpoint": "127.0.0.1",
               "resource_plugin": "p", "resource_creation_timestamp": 1512629517.03121,
               "resource_metadata": {"_resource_ttl": "900", "model": "X"}})
    }

    #[test]
    fn round_trips_and_keeps_ttl() {
        let r = Resource::from_json(&sample()).unwrap();
        assert_eq!(r.ttl(), 900);
        assert_eq!(serde_json::to_value(&r).unwrap(), sample());
        assert_eq!(
            r.serialization_key(),
            "plugin|p|site|s|class|network|subclass|switch|type|generic|id|sw1|endpoint|127.0.0.1"
        );
    }

    #[test]
    fn default_ttl_is_inserted() {
        let mut v = sample();
        v["resource_metadata"] = json!({});
        let r = Resource::from_json(&v).unwrap();
        assert_eq!(r.metadata.get("_resource_ttl").unwrap(), "604800");
    }

    #[test]
    fn rejects_bad_fields_with_their_names() {
        let mut v = sample();
        v["resource_id"] = json!(["a"]);
        let refused = |v: &Value| Resource::from_json(v).unwrap_err().to_string();
        assert_eq!(refused(&v), "resource_id: must be a string, found an array");
        let mut v = sample();
        v["resource_metadata"]["bad key"] = json!("x");
        assert_eq!(
            refused(&v),
            "resource_metadata.bad key: key must start with a letter or `_` and hold only \
             letters, digits and `_`"
        );
        let mut v = sample();
        v["resource_metadata"]["k"] = json!("a|b");
        assert_eq!(
            refused(&v),
            "resource_metadata.k: value must not contain `|`"
        );
        let mut v = sample();
        v.as_object_mut().unwrap().remove("resource_plugin");
        assert_eq!(refused(&v), "resource_plugin: is required");
    }

    #[test]
    fn equality_ignores_endpoint_and_metadata() {
        let a = Resource::from_json(&sample()).unwrap();
        let mut b = a.clone();
        b.endpoint = "10.0.0.1".into();
        b.metadata.insert("x".into(), "y".into());
        assert_eq!(a, b);
        b.id = "other".into();
        assert_ne!(a, b);
    }
}
