//! Consumer group offsets: per group, topic and partition; durable on return.

use crate::fixture::{engine_tests, record, records, Fixture, Kind};
use panoptes_storage::testing;

engine_tests!(
    offsets_are_per_group_topic_and_partition,
    concurrent_commits_of_many_groups_all_land,
    a_groups_offsets_are_listed_and_a_deleted_topic_takes_its_offsets_along,
    committed_offsets_past_the_log_end_are_moved_back_at_open,
);

/// A log that ends before a committed offset after a restart (here: its last frame cut
/// short, as a power loss with `Durability::Process` can leave acknowledged records)
/// must not make the group skip the records appended next: at open the offset is moved
/// back to the log's end, durably. Offsets within the log, and on topics that do not
/// exist, stay as they are.
fn committed_offsets_past_the_log_end_are_moved_back_at_open(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    {
        let store = fixture.store();
        let topic = store.topic("t", 2).unwrap();
        topic.append(0, &records(0, 5, 100)).unwrap();
        topic.append(0, &records(5, 5, 100)).unwrap();
        topic.append(1, &records(0, 3, 0)).unwrap();
        let offsets = store.consumer_offsets().unwrap();
        offsets.commit("g", "t", 0, 10).unwrap();
        offsets.commit("h", "t", 0, 4).unwrap();
        offsets.commit("g", "t", 1, 3).unwrap();
        offsets.commit("k", "t", 1, 7).unwrap();
        offsets.commit("g", "elsewhere", 0, 99).unwrap();
        testing::cut_partition_end(&topic, 0, 50).unwrap();
    }
    for _ in 0..2 {
        let store = fixture.reopen();
        let topic = store.topic("t", 2).unwrap();
        assert_eq!(topic.high_watermark(0).unwrap(), 5);
        let offsets = store.consumer_offsets().unwrap();
        let committed = |g: &str, t: &str, p: u32| offsets.committed(g, t, p).unwrap();
        assert_eq!(committed("g", "t", 0), Some(5));
        assert_eq!(committed("h", "t", 0), Some(4));
        assert_eq!(committed("g", "t", 1), Some(3));
        assert_eq!(committed("k", "t", 1), Some(3));
        assert_eq!(committed("g", "elsewhere", 0), Some(99));
    }
    // The group reads the next record appended.
    let store = fixture.store();
    let topic = store.topic("t", 2).unwrap();
    assert_eq!(topic.append(0, &records(100, 1, 0)).unwrap(), 5);
    let from = store
        .consumer_offsets()
        .unwrap()
        .committed("g", "t", 0)
        .unwrap()
        .unwrap();
    let next = topic.read(0, from, 10, usize::MAX).unwrap();
    assert_eq!(next[0].record, record(100, 0));
}

fn offsets_are_per_group_topic_and_partition(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    {
        let offsets = fixture.store().consumer_offsets().unwrap();
        assert_eq!(offsets.committed("g", "t", 0).unwrap(), None);
        offsets.commit("g", "t", 0, 10).unwrap();
        offsets.commit("g", "t", 0, 12).unwrap();
        offsets.commit("g", "t", 1, 3).unwrap();
        offsets.commit("h", "t", 0, 1).unwrap();
        // Group and topic names cannot run into each other.
        offsets.commit("ab", "c", 0, 7).unwrap();
        offsets.commit("a", "bc", 0, 8).unwrap();
        // A commit may go backwards (a consumer reset): the last one wins.
        offsets.commit("h", "u", 0, 50).unwrap();
        offsets.commit("h", "u", 0, 5).unwrap();
        let before = fixture.store().stats().unwrap().durable_writes;
        offsets.commit("g", "t", 2, 1).unwrap();
        assert_eq!(
            fixture.store().stats().unwrap().durable_writes,
            before + 1,
            "a commit waits for a flush"
        );
    }
    let offsets = fixture.reopen().consumer_offsets().unwrap();
    assert_eq!(offsets.committed("g", "t", 0).unwrap(), Some(12));
    assert_eq!(offsets.committed("g", "t", 1).unwrap(), Some(3));
    assert_eq!(offsets.committed("g", "t", 3).unwrap(), None);
    assert_eq!(offsets.committed("h", "t", 0).unwrap(), Some(1));
    assert_eq!(offsets.committed("ab", "c", 0).unwrap(), Some(7));
    assert_eq!(offsets.committed("a", "bc", 0).unwrap(), Some(8));
    assert_eq!(offsets.committed("h", "u", 0).unwrap(), Some(5));
    assert_eq!(offsets.committed("nobody", "t", 0).unwrap(), None);
}

fn concurrent_commits_of_many_groups_all_land(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let threads: Vec<_> = (0..6u32)
        .map(|g| {
            let offsets = store.consumer_offsets().unwrap();
            std::thread::spawn(move || {
                for n in 1..=20u64 {
                    offsets
                        .commit(&format!("group-{g}"), "t", g % 2, n)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let offsets = store.consumer_offsets().unwrap();
    for g in 0..6u32 {
        let got = offsets
            .committed(&format!("group-{g}"), "t", g % 2)
            .unwrap();
        assert_eq!(got, Some(20));
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.durable_writes, 120);
    assert!(stats.flushes >= 1 && stats.flushes <= 120);
}

fn a_groups_offsets_are_listed_and_a_deleted_topic_takes_its_offsets_along(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    {
        let store = fixture.store();
        let doomed = store.topic("doomed", 2).unwrap();
        doomed
            .append(
                1,
                &[panoptes_storage::Record {
                    key: None,
                    value: b"x".to_vec(),
                    timestamp_ms: 1,
                    headers: Vec::new(),
                }],
            )
            .unwrap();
        // Ten records: the offsets committed below are within the log (a commit past
        // its end would be moved back to it at the restart, see `committed_offsets_past_the_log_end_are_moved_back_at_open`).
        store
            .topic("kept", 1)
            .unwrap()
            .append(0, &crate::fixture::records(0, 10, 0))
            .unwrap();
        let offsets = store.consumer_offsets().unwrap();
        offsets.commit("g", "doomed", 1, 1).unwrap();
        offsets.commit("g", "kept", 0, 4).unwrap();
        offsets.commit("ga", "kept", 0, 9).unwrap();
        assert_eq!(
            offsets.group_offsets("g").unwrap(),
            vec![("doomed".to_string(), 1, 1), ("kept".to_string(), 0, 4)]
        );
        assert!(store.existing_topic("nope").unwrap().is_none());
        assert_eq!(
            store
                .existing_topic("doomed")
                .unwrap()
                .unwrap()
                .partitions(),
            2
        );
        assert!(store.delete_topic("doomed").unwrap());
        assert!(!store.delete_topic("doomed").unwrap(), "already gone");
    }
    let store = fixture.reopen();
    assert!(
        store.existing_topic("doomed").unwrap().is_none(),
        "gone after a restart"
    );
    let offsets = store.consumer_offsets().unwrap();
    assert_eq!(
        offsets.group_offsets("g").unwrap(),
        vec![("kept".to_string(), 0, 4)]
    );
    assert_eq!(
        offsets.group_offsets("ga").unwrap(),
        vec![("kept".to_string(), 0, 9)]
    );
    // Created again, the topic starts over at offset 0 with the partitions asked now.
    let again = store.topic("doomed", 3).unwrap();
    assert_eq!(
        (again.partitions(), again.high_watermark(1).unwrap()),
        (3, 0)
    );
    assert!(again.read(1, 0, 10, 1 << 20).unwrap().is_empty());
}
