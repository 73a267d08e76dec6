//! The Panoptes data model, serialised exactly as the original's JSON (spec §2).
//!
//! Parse at the edge, then trust the type: constructors validate names and values, so a
//! `Resource` or `MetricsGroup` that exists is one the original would also have accepted.

mod enrichment;
mod metadata;
mod metrics;
mod resource;
mod time;

pub use enrichment::{
    canonical, decode_stored as decode_stored_enrichment,
    encode_stored as encode_stored_enrichment, sorted, EnrichmentGroup, EnrichmentGroupSet,
    StoredEnrichment,
};
pub use metadata::Metadata;
pub use metrics::{
    CounterWidth, Dimension, Metric, MetricType, MetricValue, MetricsGroup, Name,
    METRICS_GROUP_SCHEMA_VERSION,
};
pub use resource::{
    CreationTimestamp, Resource, ResourceId, ResourceSet, Site, DEFAULT_RESOURCE_TTL,
    RESOURCE_SET_SCHEMA_VERSION,
};
pub use time::{now_epoch, now_ms, round3};

/// A switch `sw1` at 127.0.0.1 of site `s`, for unit tests of the model and what builds on it.
#[cfg(test)]
pub(crate) fn test_switch() -> Resource {
    Resource::new(
        "s",
        "network",
        "switch",
        "generic",
        "sw1",
        "127.0.0.1",
        Some("p"),
        CreationTimestamp::Number(1.0),
        900,
    )
    .unwrap()
}

/// A value or name the model refuses, with the field it was for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("metrics group `{group}`: duplicate {what} `{name}`")]
    Duplicate {
        group: String,
        what: &'static str,
        name: String,
    },
}

/// Why JSON bytes (stored, or read from a topic) are not the model value they should be.
#[derive(Debug, thiserror::Error)]
pub enum FromJsonError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl ModelError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ModelError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Python's `^[^\d\W]\w*\Z`: a letter or `_` first, then letters, digits or `_` (Unicode word
/// characters, as the original accepts them).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::is_identifier;

    #[test]
    fn identifiers_follow_python_word_rules() {
        for ok in ["a", "_resource_ttl", "bits_in", "x1", "é_b"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "a|b", "a.b"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
