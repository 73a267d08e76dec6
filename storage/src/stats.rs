//! What the store holds and has done, for `/metrics`: cheap enough to read on every
//! scrape (counters kept by the writers; no scan of the data).

/// One keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceStats {
    pub name: String,
    /// Keys stored, including expired keys that no sweep has removed yet (reads already
    /// treat those as absent; [`crate::Keyspace::len`] counts only live keys, at the cost
    /// of a scan).
    pub keys: u64,
    /// Bytes stored: keys plus encoded values (the logical size, before the engine's own
    /// overhead).
    pub bytes: u64,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStats {
    pub topic: String,
    pub partition: u32,
    /// Records readable (`high - low`).
    pub records: u64,
    /// Encoded bytes of the partition's chunks: what retention by size counts.
    pub bytes: u64,
    /// Low watermark: the first offset still stored.
    pub low: u64,
    /// High watermark: the offset the next record will get.
    pub high: u64,
}

/// A snapshot of the store's sizes and counters.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStats {
    /// The engine: "sled" or "memory".
    pub engine: &'static str,
    /// Every keyspace, sorted by name.
    pub keyspaces: Vec<KeyspaceStats>,
    /// Every partition of every topic, sorted by topic then partition.
    pub topics: Vec<PartitionStats>,
    /// Bytes the engine uses on disk (0 for the memory engine).
    pub disk_bytes: u64,
    /// Engine flushes since the store was opened.
    pub flushes: u64,
    /// Writes acknowledged only after a flush (appends, offset commits, lease changes,
    /// `Store::flush`) since the store was opened. `durable_writes / flushes` is how many
    /// writers a flush served on average: above 1 when group commit is at work.
    pub durable_writes: u64,
    /// What an acknowledged write survives (as the store was opened).
    pub durability: crate::Durability,
    /// Writes to the topic log that failed (disk full, I/O error) since open: each
    /// refused an append (or a retry of one).
    pub write_errors: u64,
    /// Segments whose tail, from a corrupt frame on, was moved to a side file at
    /// start-up, and the bytes moved (see `topic::log::open`).
    pub quarantined_segments: u64,
    pub quarantined_bytes: u64,
    /// Frames that reads skipped because they failed their CRC (a frame read twice
    /// counts twice).
    pub corrupt_frames_read: u64,
    /// `fdatasync`s of segment files and `fsync`s of their directories made for
    /// acknowledgements (none with `Durability::Process`).
    pub fsyncs: u64,
    /// Changes of the store's health since open, by the state changed to.
    pub health_changes: crate::HealthChanges,
}

impl StoreStats {
    /// Keyspace and topic bytes: the data as stored, before the engine's overhead.
    pub fn logical_bytes(&self) -> u64 {
        let keyspaces: u64 = self.keyspaces.iter().map(|k| k.bytes).sum();
        let topics: u64 = self.topics.iter().map(|p| p.bytes).sum();
        keyspaces + topics
    }

    /// Disk bytes per logical byte (sled's space amplification, plus its fixed cost of
    /// a few hundred KiB, which dominates for tiny stores). `None` when nothing is
    /// stored or the engine has no disk.
    pub fn space_amplification(&self) -> Option<f64> {
        let logical = self.logical_bytes();
        (logical > 0 && self.disk_bytes > 0).then(|| self.disk_bytes as f64 / logical as f64)
    }
}
