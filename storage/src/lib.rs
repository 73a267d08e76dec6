//! Embedded storage for Panoptes: what Redis and Kafka's log were to the original, in one
//! sled 0.34.7 database per process. Keys, values and records are bytes; this crate knows
//! nothing of SNMP or Panoptes JSON.
//!
//! - [`Keyspace`]: a named map with optional TTL, `get_set` and compare-and-swap (Redis).
//!   Expired keys read as absent at once; [`Store::sweep_expired`] removes them through an
//!   expiry index keyed by (expiry time, keyspace, key), so a sweep costs O(expired).
//! - [`Topic`]: an append-only log per partition with consecutive offsets, reads from any
//!   offset, high and low watermarks, and retention by age and size (Kafka's log).
//! - [`ConsumerOffsets`]: each consumer group's committed offset per topic partition.
//!
//! # Durability
//!
//! [`Topic::append`] and [`ConsumerOffsets::commit`] flush before they return, and
//! readers only see flushed records, so an offset once read is never reused after a crash.
//! Keyspace writes are not flushed one by one: they are durable after [`Store::flush`] or
//! sled's own flush every 500 ms (Redis `appendfsync everysec`). Dropping the last
//! handle flushes too. Only one process may open a directory at a time
//! ([`StorageError::Locked`]).
//!
//! # Layout
//!
//! One sled tree per keyspace (`keyspace/<name>`) and per topic (`topic/<name>`), plus
//! `panoptes/expiry`, `panoptes/topics` and `panoptes/consumer_offsets`. Every value is a
//! versioned bincode envelope `{ version, expires_at_ms, payload }` (see `codec`), so the
//! format can change later; an unknown version or garbage is [`StorageError::Corrupt`],
//! never garbage handed back (a corrupt topic chunk is logged and skipped by reads).
//! Topic records are stored in chunks of up to 1000 records or 1 MiB, one sled value per
//! chunk keyed by (partition, base offset), with a small summary per chunk that start-up
//! and retention read instead of the records: sled costs ~6x disk for tiny values and
//! balloons in memory on huge batches, so values are chunked and batches are bounded.
//!
//! All calls are blocking; handles are `Send + Sync + Clone`, for use from
//! `tokio::task::spawn_blocking`.

mod clock;
mod codec;
mod commit;
mod engine;
mod error;
mod keyspace;
mod lease;
mod offsets;
mod record;
mod stats;
mod store;
#[doc(hidden)]
pub mod testing;
mod topic;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{EngineSource, StorageError};
pub use keyspace::{Entry, Keyspace};
pub use lease::{Lease, Leases};
pub use offsets::ConsumerOffsets;
pub use record::{Record, StoredRecord};
pub use stats::{KeyspaceStats, PartitionStats, StoreStats};
pub use store::{Durability, Store};
pub use topic::Topic;

#[cfg(test)]
mod tests {
    /// Handles are used from `spawn_blocking` and shared between threads.
    #[test]
    fn handles_are_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<crate::Store>();
        check::<crate::Keyspace>();
        check::<crate::Topic>();
        check::<crate::ConsumerOffsets>();
        check::<crate::Leases>();
    }
}
