//! Stores for the shared suite, one engine at a time, and the records tests append.

use std::sync::Arc;

use panoptes_storage::testing::Faults;
use panoptes_storage::{testing, Durability, ManualClock, Record, Store};
use tempfile::TempDir;

/// The engine a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sled,
    Memory,
}

/// Instantiates each listed test function (`fn name(kind: Kind)`) once per engine, as
/// `<module>::sled::name` and `<module>::memory::name`.
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod sled {
            $( #[test] fn $name() { super::$name($crate::fixture::Kind::Sled) } )*
        }
        mod memory {
            $( #[test] fn $name() { super::$name($crate::fixture::Kind::Memory) } )*
        }
    };
}
pub(crate) use engine_tests;

/// A store whose time only moves when the test says so, and which can be reopened as
/// after a restart: sled from its directory (sled's recovery runs), memory on the same
/// engine (the store's own start-up runs).
pub struct Fixture {
    kind: Kind,
    dir: Option<TempDir>,
    store: Option<Store>,
    pub clock: Arc<ManualClock>,
}

impl Fixture {
    pub fn new(kind: Kind, start_ms: u64) -> Fixture {
        let clock = Arc::new(ManualClock::new(start_ms));
        let (dir, store) = match kind {
            Kind::Sled => {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                (Some(dir), store)
            }
            Kind::Memory => (None, Store::memory()),
        };
        Fixture {
            kind,
            dir,
            store: Some(store.with_clock(clock.clone())),
            clock,
        }
    }

    /// The same fixture with segment files of `bytes` until the next reopen.
    pub fn with_segment_bytes(mut self, bytes: u64) -> Fixture {
        let store = self.store.take().unwrap();
        self.store = Some(testing::with_segment_bytes(store, bytes));
        self
    }

    /// The same fixture with its topic files behind [`Faults`] and appends as durable
    /// as `durability` says, until the next reopen (a restart comes back healthy).
    pub fn with_faults(mut self, durability: Durability) -> (Fixture, Arc<Faults>) {
        let store = self.store.take().unwrap();
        let (store, faults) = testing::with_faults(store, durability).unwrap();
        self.store = Some(store);
        (self, faults)
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    /// Closes and reopens the store. The test must have dropped every handle it took.
    pub fn reopen(&mut self) -> &Store {
        let old = self.store.take().unwrap();
        let store = match self.kind {
            Kind::Sled => {
                drop(old);
                Store::open(self.dir.as_ref().unwrap().path()).unwrap()
            }
            Kind::Memory => testing::reopen(old).unwrap(),
        };
        self.store.insert(store.with_clock(self.clock.clone()))
    }
}

impl Kind {
    /// A fresh store on this engine with a manual clock, for tests that never reopen.
    pub fn manual_store(self, start_ms: u64) -> (Store, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(start_ms));
        let store = match self {
            Kind::Sled => Store::temporary().unwrap(),
            Kind::Memory => Store::memory(),
        };
        (store.with_clock(clock.clone()), clock)
    }
}

/// Record `i` of a test: its value says which one it is, padded to `pad` bytes.
pub fn record(i: u64, pad: usize) -> Record {
    let mut value = format!("record-{i}").into_bytes();
    value.resize(value.len().max(pad), b'.');
    Record {
        key: i.is_multiple_of(2).then(|| format!("key-{i}").into_bytes()),
        value,
        timestamp_ms: 1_000 + i,
        headers: if i.is_multiple_of(3) {
            vec![("h".to_owned(), i.to_be_bytes().to_vec())]
        } else {
            vec![]
        },
    }
}

pub fn records(from: u64, count: u64, pad: usize) -> Vec<Record> {
    (from..from + count).map(|i| record(i, pad)).collect()
}
