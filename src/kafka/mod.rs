//! The Kafka wire protocol over the topic log: an embedded broker that existing Kafka
//! clients (librdkafka: kcat, confluent-kafka; kafka-python) produce to, fetch from and
//! run consumer groups against. Wire format from the `kafka-protocol` crate; the log,
//! committed offsets and producer ids from `panoptes-storage`.
//!
//! One idea per file: `frame` (size-prefixed frames, bounded), `versions` (what is
//! served), `batch` (record batches in and out), `topics` (Metadata, CreateTopics,
//! DeleteTopics), `produce`, `fetch` (Fetch, ListOffsets), `coordinator` (the group state
//! machine) and `groups` (its APIs and committed offsets), `broker` (shared state and
//! dispatch), `server` (listener and connections).

mod api_versions;
mod batch;
mod broker;
pub mod client;
mod coordinator;
mod external;
mod fetch;
mod frame;
mod groups;
mod produce;
mod server;
mod topics;
mod versions;

pub use broker::{Broker, BrokerConfig};
pub use external::ExternalCluster;
pub use server::{respond, KafkaServer};
// `respond` in steps, for the fuzz target (`crate::fuzzing`).
pub(crate) use frame::read_frame;
pub(crate) use server::{answer, decode, Decoded};
pub use versions::SUPPORTED;
