//! The records of a topic, as producers hand them in and consumers get them back.

use serde::{Deserialize, Serialize};

/// One record of a topic: what a Kafka producer sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(with = "crate::codec::opt_bytes")]
    pub key: Option<Vec<u8>>,
    #[serde(with = "crate::codec::bytes")]
    pub value: Vec<u8>,
    /// Set by the producer; kept as given.
    pub timestamp_ms: u64,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// The bytes this record counts for in `Topic::read`'s `max_bytes`: key, value,
    /// header names and header values (no framing overhead).
    pub fn size_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + self.value.len() + headers
    }
}

/// A record read back from a topic, with the offset it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub record: Record,
}
