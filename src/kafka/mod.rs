//! The Kafka wire protocol over the topic log: an embedded broker that existing Kafka
//! clients (librdkafka: kcat, confluent-kafka; kafka-python) produce to, fetch from and
//! run consumer groups against. Wire format from the `kafka-protocol` crate; the log,
//! committed offsets and producer ids from `panoptes-storage`.
//!
//! One idea per file: `frame` (size-prefixed frames, bounded), `budget` (the memory all
//! requests in flight share), `admission` (who gets a connection), `connection` (one
//! client: TLS, SASL, requests in order), `security` (what a listener requires, and where
//! it may listen), `tls`, `sasl` and `scram` (authentication), `acl` (who may do what),
//! `versions` (what is served), `batch` (record batches in and out), `topics` (Metadata,
//! CreateTopics, DeleteTopics), `produce`, `fetch` (Fetch, ListOffsets), `coordinator`
//! (the group state machine) and `groups` (its APIs and committed offsets), `broker`
//! (shared state, limits and dispatch), `server` (listener and accept loop); `client`
//! and `external` speak to an external cluster.

pub mod acl;
mod admission;
mod api_versions;
mod batch;
mod broker;
mod budget;
pub mod client;
mod connection;
mod coordinator;
mod external;
mod fetch;
mod frame;
mod groups;
mod produce;
pub mod sasl;
pub mod scram;
pub mod security;
mod server;
mod topics;
mod versions;

pub use broker::{Broker, BrokerConfig, Caller, HandleError, Limits};
pub use client::{ClientSasl, ClientSecurity};
pub use connection::respond;
// For the fuzz target (`crate::fuzzing`): the listener's framing and answer, without a socket.
pub(crate) use connection::respond_adjusted;
pub use external::{Asked, ClientHealth, ExternalCluster, ExternalError, Generation};
pub(crate) use frame::{read_frame, FrameLimits};
pub use server::KafkaServer;
pub use versions::SUPPORTED;
