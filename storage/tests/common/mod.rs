//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use panoptes_storage::{ManualClock, Record, Store};

/// A temporary store whose time only moves when the test says so.
pub fn manual_store(start_ms: u64) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start_ms));
    let store = Store::temporary().unwrap().with_clock(clock.clone());
    (store, clock)
}

/// Record `i` of a test: its value says which one it is, padded to `pad` bytes.
pub fn record(i: u64, pad: usize) -> Record {
    let mut value = format!("record-{i}").into_bytes();
    value.resize(value.len().max(pad), b'.');
    Record {
        key: (i % 2 == 0).then(|| format!("key-{i}").into_bytes()),
        value,
        timestamp_ms: 1_000 + i,
        headers: if i % 3 == 0 {
            vec![("h".to_owned(), i.to_be_bytes().to_vec())]
        } else {
            vec![]
        },
    }
}

pub fn records(from: u64, count: u64, pad: usize) -> Vec<Record> {
    (from..from + count).map(|i| record(i, pad)).collect()
}
