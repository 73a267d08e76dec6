//! What survives closing and reopening the store (sled: from its directory; memory: a
//! new store on the same engine).

use std::time::Duration;

use crate::fixture::{engine_tests, record, records, Fixture, Kind};

engine_tests!(
    topics_keyspaces_and_offsets_survive_a_restart,
    watermarks_survive_retention_and_a_restart,
);

fn topics_keyspaces_and_offsets_survive_a_restart(kind: Kind) {
    let mut fixture = Fixture::new(kind, 50_000);
    let clock = fixture.clock.clone();
    {
        let store = fixture.store();
        let topic = store.topic("metrics", 2).unwrap();
        topic.append(0, &records(0, 1500, 0)).unwrap();
        topic.append(1, &records(0, 3, 0)).unwrap();
        let ks = store.keyspace("state").unwrap();
        ks.put(b"plain", b"v", None).unwrap();
        ks.put(b"ttl", b"t", Some(Duration::from_secs(10))).unwrap();
        let offsets = store.consumer_offsets().unwrap();
        offsets.commit("influx", "metrics", 0, 1200).unwrap();
        offsets.commit("influx", "metrics", 0, 1300).unwrap();
        offsets.commit("other", "metrics", 1, 2).unwrap();
    }
    let store = fixture.reopen();
    let topic = store.topic("metrics", 5).unwrap();
    assert_eq!(topic.partitions(), 2, "the stored partition count wins");
    assert_eq!(topic.high_watermark(0).unwrap(), 1500);
    assert_eq!(topic.high_watermark(1).unwrap(), 3);
    let all = topic.read(0, 0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(all.len(), 1500);
    for stored in &all {
        assert_eq!(stored.record, record(stored.offset, 0));
    }
    // New appends carry on from the old high watermark.
    assert_eq!(topic.append(0, &records(1500, 1, 0)).unwrap(), 1500);
    assert_eq!(store.topic_names().unwrap(), vec!["metrics"]);

    let ks = store.keyspace("state").unwrap();
    assert_eq!(ks.get(b"plain").unwrap(), Some(b"v".to_vec()));
    assert_eq!(
        ks.ttl_remaining(b"ttl").unwrap(),
        Some(Duration::from_secs(10))
    );
    // The expiry index survived too: the sweep finds the key after the restart.
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.sweep_expired().unwrap(), 1);

    let offsets = store.consumer_offsets().unwrap();
    assert_eq!(
        offsets.committed("influx", "metrics", 0).unwrap(),
        Some(1300)
    );
    assert_eq!(offsets.committed("other", "metrics", 1).unwrap(), Some(2));
    assert_eq!(offsets.committed("influx", "metrics", 1).unwrap(), None);
    assert_eq!(offsets.committed("nobody", "metrics", 0).unwrap(), None);
}

fn watermarks_survive_retention_and_a_restart(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    {
        let store = fixture.store();
        let topic = store.topic("t", 2).unwrap();
        topic.append(0, &records(0, 10, 0)).unwrap();
        topic.append(0, &records(10, 10, 0)).unwrap();
        // Bigger records: this chunk alone is over the limit below.
        topic.append(1, &records(0, 7, 500)).unwrap();
        // Partition 0 keeps its newest chunk, partition 1 is emptied.
        let newest = panoptes_storage::testing::batches(&topic, 0).unwrap()[1].bytes;
        assert_eq!(topic.apply_retention(None, Some(newest)).unwrap(), 10 + 7);
    }
    let store = fixture.reopen();
    let topic = store.topic("t", 2).unwrap();
    assert_eq!(topic.low_watermark(0).unwrap(), 10);
    assert_eq!(topic.high_watermark(0).unwrap(), 20);
    assert_eq!(topic.low_watermark(1).unwrap(), 7);
    assert_eq!(
        topic.high_watermark(1).unwrap(),
        7,
        "offsets do not restart from 0"
    );
    assert_eq!(topic.append(1, &records(7, 1, 0)).unwrap(), 7);
}
