//! Consumer group offsets: per group, topic and partition; durable on return.

use crate::fixture::{engine_tests, Fixture, Kind};

engine_tests!(
    offsets_are_per_group_topic_and_partition,
    concurrent_commits_of_many_groups_all_land,
);

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
