//! Embedded storage for Panoptes: what Redis, ZooKeeper and Kafka's log were to the
//! original, in one database per process. Keys, values and records are bytes; this crate
//! knows nothing of SNMP or Panoptes JSON.
//!
//! - [`Keyspace`]: a named map with optional TTL, `get_set` and compare-and-swap (Redis).
//!   Expired keys read as absent at once; [`Store::sweep_expired`] removes them through an
//!   expiry index keyed by (expiry time, keyspace, key), so a sweep costs O(expired).
//! - [`Leases`]: named locks with an owner, an expiry and a fencing token (ZooKeeper): a
//!   holder that stops renewing loses its lease.
//! - [`Topic`]: an append-only log per partition with consecutive offsets, reads from any
//!   offset, high and low watermarks, and retention by age and size (Kafka's log).
//! - [`ConsumerOffsets`]: each consumer group's committed offset per topic partition.
//! - [`Store::stats`]: sizes per keyspace and partition, disk use and flush counts, kept
//!   by the writers so that every `/metrics` scrape can read them.
//!
//! # Engines
//!
//! Everything sits on a small ordered key-value engine trait (`engine`) with two engines:
//! sled 0.34.7 on disk ([`Store::open`], the default) and an in-memory one
//! ([`Store::memory`], for tests). The crate's test suite runs every test against both.
//!
//! # Durability
//!
//! [`Topic::append`], [`ConsumerOffsets::commit`], lease changes and [`Store::flush`]
//! return only after a flush that covers them. Concurrent callers share flushes (group
//! commit, `commit`): one flush acknowledges every write that completed before it began.
//! Readers only see flushed records, so an offset once read is never reused after a
//! crash. [`Durability`] says what a flush survives: a crash of the process (default,
//! sled's `sync_file_range`) or also a power loss (`fdatasync`). Keyspace writes are
//! not flushed one by one: they are durable after [`Store::flush`] or sled's own flush
//! every 500 ms (Redis `appendfsync everysec`). Only one process may open a directory at
//! a time ([`StorageError::Locked`]).
//!
//! # Layout
//!
//! One engine tree per keyspace (`keyspace/<name>`) and per topic (`topic/<name>`), plus
//! `panoptes/expiry`, `panoptes/topics`, `panoptes/consumer_offsets` and
//! `panoptes/leases`. Every value is a versioned bincode envelope `{ version,
//! expires_at_ms, payload }` (see `codec`), so the format can change later; an unknown
//! version or garbage is [`StorageError::Corrupt`] with the place named, never garbage
//! handed back. Topic records are stored in chunks of at most 7 KiB (or 1000 records),
//! one engine value per chunk keyed by (partition, base offset), written in batches of
//! ~256 KiB with one small summary per batch that start-up, retention and stats read
//! instead of the records (`topic::layout` says why these sizes). At start-up, a corrupt
//! summary is rebuilt from its chunks; reads skip a corrupt chunk and log where it is.
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
