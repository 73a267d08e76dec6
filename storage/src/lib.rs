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
//! Keyspaces, leases, offsets and topic metadata sit on a small ordered key-value engine
//! trait (`engine`) with two engines: sled 0.34.7 on disk ([`Store::open`], the default)
//! and an in-memory one ([`Store::memory`], for tests). Topic records are not in the
//! engine: they are appended to segment files (`files`), in `topics/` beside sled's
//! database on disk, or in memory with the memory engine. The crate's test suite runs
//! every test against both.
//!
//! # Durability
//!
//! [`ConsumerOffsets::commit`], lease changes and [`Store::flush`] return only after a
//! flush that covers them; concurrent callers share flushes (group commit, `commit`): one
//! flush acknowledges every write that completed before it began. [`Topic::append`]
//! returns once its records are written to their segment file, which a crash of the
//! process cannot take back; readers see them only then, so an offset once read is never
//! reused after a crash. [`Durability`] says what an acknowledged write survives: a crash
//! of the process (default: sled's `sync_file_range`, the OS page cache for segments) or
//! also a power loss (`fdatasync` of sled's log and of the segment files written, shared
//! by group commit). Keyspace writes are not flushed one by one: they are durable after
//! [`Store::flush`] or sled's own flush every 500 ms (Redis `appendfsync everysec`). Only
//! one process may open a directory at a time ([`StorageError::Locked`]).
//!
//! # Faults
//!
//! [`Store::health`] says what the store can do: a write that fails (disk full, I/O
//! error) is undone and refused ([`StorageError::Write`]) and the store reports writes
//! failing until a frame-sized write succeeds again; a failed `fsync`, or sled keeping a
//! write error, fails the store for good ([`StorageError::Failed`]): nothing more is
//! acknowledged and the process must restart. [`Store::check`] is the housekeeping for a
//! timer (sled's reserved space, the write probe).
//!
//! # Layout
//!
//! One engine tree per keyspace (`keyspace/<name>`) and per topic (`topic/<name>`, its
//! partitions' log start), plus `panoptes/expiry`, `panoptes/topics`,
//! `panoptes/consumer_offsets` and `panoptes/leases`. Every value is a versioned bincode
//! envelope `{ version, expires_at_ms, payload }` (see `codec`), so the format can change
//! later; an unknown version or garbage is [`StorageError::Corrupt`] with the place named,
//! never garbage handed back. A topic partition is a directory of segment files of CRC'd
//! frames (`topic::layout` has the format and says why files): start-up indexes the frame
//! headers, cuts off a torn tail of the last segment and moves a segment's rest from a
//! corrupt frame on to a side file (its offsets never reused); reads check each frame's
//! CRC and skip (log and count) a corrupt one; retention hides frames at once and deletes a segment
//! file once all its frames are gone. A log of the first builds (chunks in the engine
//! tree) is moved into segment files when its topic is opened.
//!
//! All calls are blocking; handles are `Send + Sync + Clone`, for use from
//! `tokio::task::spawn_blocking`.

mod clock;
mod codec;
mod commit;
mod engine;
mod error;
mod files;
#[doc(hidden)]
pub mod fuzzing;
mod health;
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
pub use health::{Health, HealthChanges};
pub use keyspace::{Entry, Keyspace};
pub use lease::{Lease, Leases};
pub use offsets::ConsumerOffsets;
pub use record::{Record, StoredRecord};
pub use stats::{KeyspaceStats, PartitionStats, StoreStats};
pub use store::{Durability, Store, MAX_PARTITIONS};
pub use topic::{AppendHook, Topic};

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
