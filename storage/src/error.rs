//! The one error type of the crate.

use std::path::PathBuf;

/// The error source of the storage engine, boxed so that the public type does not
/// name sled (a memory engine will sit beside it).
pub type EngineSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in `panoptes-storage`. Each variant names the thing
/// (directory, keyspace, topic, key) and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another process (or another `Store` in this process) holds the database.
    #[error(
        "storage directory {} is locked by another process (is another panoptes running on it?): {reason}",
        path.display()
    )]
    Locked { path: PathBuf, reason: String },

    /// The storage directory could not be created or opened.
    #[error("cannot use storage directory {}: {source}", path.display())]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The storage engine (sled) failed: disk full, I/O error, engine bug.
    #[error("storage engine failed to {op} in {tree}: {source}")]
    Engine {
        op: &'static str,
        tree: String,
        #[source]
        source: EngineSource,
    },

    /// A stored value could not be decoded: unknown format version, truncated or garbage
    /// bytes. `place` says where it is (keyspace and key, or topic, partition and offset).
    #[error("corrupt stored value at {place}: {reason}")]
    Corrupt { place: String, reason: String },

    /// A value could not be encoded, or its encoding is larger than the engine accepts.
    #[error("cannot store value at {place}: {reason}")]
    Encode { place: String, reason: String },

    /// A keyspace, topic or consumer group name that cannot be used.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: String,
    },

    /// A partition number outside `0..partitions`.
    #[error("topic {topic:?} has no partition {partition} (it has {partitions} partitions, numbered from 0)")]
    NoSuchPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },

    /// A write to the topic log failed (disk full, I/O error). `path` is the file, under
    /// the store's directory. Nothing of the append was kept: a retry does not duplicate.
    #[error("{source} writing {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The store met a failure it cannot recover from in this process (a failed
    /// `fsync`, the engine refusing every write) and acknowledges nothing more; see
    /// `health`. Restarting the process reads back what really is on disk.
    #[error("storage failed and acknowledges no more writes (restart the process): {reason}")]
    Failed { reason: String },

    /// An argument outside what the call accepts (for example a topic with 0 partitions).
    #[error("invalid argument for {what}: {reason}")]
    InvalidArgument { what: String, reason: String },
}
