//! Keyspaces: values, TTL with a manual clock, sweeping, get_set and compare-and-swap.

use std::time::Duration;

use crate::fixture::{engine_tests, Kind};
use panoptes_storage::StorageError;

engine_tests!(
    put_get_delete_and_scan,
    expired_keys_read_as_absent_before_any_sweep,
    sweep_removes_expired_keys_without_reads_and_counts_them,
    overwriting_a_key_moves_or_clears_its_expiry,
    get_set_returns_the_previous_live_value,
    compare_and_swap_only_on_a_match,
    concurrent_compare_and_swap_has_one_winner_per_round,
    names_are_checked,
);

const SEC: Duration = Duration::from_secs(1);

fn put_get_delete_and_scan(kind: Kind) {
    let (store, _clock) = kind.manual_store(10_000);
    let ks = store.keyspace("rates").unwrap();
    assert_eq!(ks.name(), "rates");
    assert_eq!(ks.get(b"a").unwrap(), None);
    ks.put(b"a:1", b"one", None).unwrap();
    ks.put(b"a:2", b"two", None).unwrap();
    ks.put(b"b:1", b"other", None).unwrap();
    ks.put(b"a:1", b"uno", None).unwrap();
    assert_eq!(ks.get(b"a:1").unwrap(), Some(b"uno".to_vec()));
    assert_eq!(
        ks.scan_prefix(b"a:").unwrap(),
        vec![
            (b"a:1".to_vec(), b"uno".to_vec()),
            (b"a:2".to_vec(), b"two".to_vec())
        ]
    );
    assert_eq!(ks.len().unwrap(), 3);
    assert!(ks.delete(b"a:1").unwrap());
    assert!(!ks.delete(b"a:1").unwrap());
    assert_eq!(ks.get(b"a:1").unwrap(), None);
    assert_eq!(ks.len().unwrap(), 2);
    assert!(!ks.is_empty().unwrap());

    // Keyspaces are separate.
    let other = store.keyspace("other").unwrap();
    assert_eq!(other.get(b"a:2").unwrap(), None);
    assert!(other.is_empty().unwrap());
    // An empty value is a value.
    other.put(b"e", b"", None).unwrap();
    assert_eq!(other.get(b"e").unwrap(), Some(vec![]));
}

fn expired_keys_read_as_absent_before_any_sweep(kind: Kind) {
    let (store, clock) = kind.manual_store(10_000);
    let ks = store.keyspace("leases").unwrap();
    ks.put(b"short", b"s", Some(5 * SEC)).unwrap();
    ks.put(b"long", b"l", Some(60 * SEC)).unwrap();
    ks.put(b"forever", b"f", None).unwrap();
    assert_eq!(ks.ttl_remaining(b"short").unwrap(), Some(5 * SEC));
    assert_eq!(ks.ttl_remaining(b"forever").unwrap(), None);
    assert_eq!(ks.ttl_remaining(b"missing").unwrap(), None);

    clock.advance(4 * SEC);
    assert_eq!(ks.get(b"short").unwrap(), Some(b"s".to_vec()));
    assert_eq!(ks.ttl_remaining(b"short").unwrap(), Some(SEC));
    // Gone at its expiry millisecond exactly.
    clock.advance(SEC);
    assert_eq!(ks.get(b"short").unwrap(), None);
    assert_eq!(ks.ttl_remaining(b"short").unwrap(), None);
    assert_eq!(ks.len().unwrap(), 2);
    assert_eq!(ks.scan_prefix(b"").unwrap().len(), 2);
    assert!(
        !ks.delete(b"short").unwrap(),
        "an expired key counts as absent"
    );
}

fn sweep_removes_expired_keys_without_reads_and_counts_them(kind: Kind) {
    let (store, clock) = kind.manual_store(10_000);
    let a = store.keyspace("a").unwrap();
    let b = store.keyspace("b").unwrap();
    for i in 0..10u8 {
        a.put(&[i], b"x", Some(SEC * u32::from(i + 1))).unwrap();
        b.put(&[i], b"y", Some(SEC * u32::from(i + 1))).unwrap();
    }
    b.put(b"keep", b"k", None).unwrap();
    assert_eq!(store.sweep_expired().unwrap(), 0);

    clock.advance(3 * SEC);
    // Nobody read anything: the sweep finds the 3 + 3 expired keys on its own.
    assert_eq!(store.sweep_expired().unwrap(), 6);
    assert_eq!(store.sweep_expired().unwrap(), 0);
    assert_eq!(a.len().unwrap(), 7);
    assert_eq!(b.len().unwrap(), 8);

    clock.advance(60 * SEC);
    assert_eq!(store.sweep_expired().unwrap(), 14);
    assert!(a.is_empty().unwrap());
    assert_eq!(
        b.scan_prefix(b"").unwrap(),
        vec![(b"keep".to_vec(), b"k".to_vec())]
    );
}

fn overwriting_a_key_moves_or_clears_its_expiry(kind: Kind) {
    let (store, clock) = kind.manual_store(10_000);
    let ks = store.keyspace("k").unwrap();
    ks.put(b"extend", b"1", Some(SEC)).unwrap();
    ks.put(b"extend", b"2", Some(10 * SEC)).unwrap();
    ks.put(b"persist", b"1", Some(SEC)).unwrap();
    ks.put(b"persist", b"2", None).unwrap();
    ks.put(b"shorten", b"1", Some(10 * SEC)).unwrap();
    ks.put(b"shorten", b"2", Some(SEC)).unwrap();

    clock.advance(2 * SEC);
    assert_eq!(
        store.sweep_expired().unwrap(),
        1,
        "only `shorten` has expired"
    );
    assert_eq!(ks.get(b"extend").unwrap(), Some(b"2".to_vec()));
    assert_eq!(ks.get(b"persist").unwrap(), Some(b"2".to_vec()));
    assert_eq!(ks.get(b"shorten").unwrap(), None);

    clock.advance(10 * SEC);
    assert_eq!(
        store.sweep_expired().unwrap(),
        1,
        "`extend` expires at its new time"
    );
    assert_eq!(ks.get(b"persist").unwrap(), Some(b"2".to_vec()));

    // A deleted key with an expiry leaves nothing for the sweep to count.
    ks.put(b"gone", b"1", Some(SEC)).unwrap();
    assert!(ks.delete(b"gone").unwrap());
    clock.advance(2 * SEC);
    assert_eq!(store.sweep_expired().unwrap(), 0);
}

fn get_set_returns_the_previous_live_value(kind: Kind) {
    let (store, clock) = kind.manual_store(10_000);
    let ks = store.keyspace("k").unwrap();
    assert_eq!(ks.get_set(b"c", b"1", Some(SEC)).unwrap(), None);
    assert_eq!(
        ks.get_set(b"c", b"2", Some(SEC)).unwrap(),
        Some(b"1".to_vec())
    );
    clock.advance(SEC);
    assert_eq!(
        ks.get_set(b"c", b"3", None).unwrap(),
        None,
        "an expired previous value is not returned"
    );
    assert_eq!(ks.get(b"c").unwrap(), Some(b"3".to_vec()));
    clock.advance(100 * SEC);
    assert_eq!(ks.get(b"c").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.sweep_expired().unwrap(), 0);
}

fn compare_and_swap_only_on_a_match(kind: Kind) {
    let (store, clock) = kind.manual_store(10_000);
    let ks = store.keyspace("locks").unwrap();
    // Create if absent.
    assert!(ks
        .compare_and_swap(b"l", None, Some(b"me"), Some(5 * SEC))
        .unwrap());
    assert!(!ks
        .compare_and_swap(b"l", None, Some(b"you"), Some(5 * SEC))
        .unwrap());
    assert!(!ks
        .compare_and_swap(b"l", Some(b"you"), Some(b"x"), None)
        .unwrap());
    assert_eq!(ks.get(b"l").unwrap(), Some(b"me".to_vec()));
    // Renew.
    assert!(ks
        .compare_and_swap(b"l", Some(b"me"), Some(b"me"), Some(10 * SEC))
        .unwrap());
    assert_eq!(ks.ttl_remaining(b"l").unwrap(), Some(10 * SEC));
    // After expiry the key is absent for CAS too, and can be taken.
    clock.advance(10 * SEC);
    assert!(!ks.compare_and_swap(b"l", Some(b"me"), None, None).unwrap());
    assert!(ks.compare_and_swap(b"l", None, Some(b"you"), None).unwrap());
    // Delete through CAS.
    assert!(ks.compare_and_swap(b"l", Some(b"you"), None, None).unwrap());
    assert_eq!(ks.get(b"l").unwrap(), None);
    assert!(ks.compare_and_swap(b"l", None, None, None).unwrap());
    assert_eq!(store.sweep_expired().unwrap(), 0);
}

fn concurrent_compare_and_swap_has_one_winner_per_round(kind: Kind) {
    let (store, _clock) = kind.manual_store(10_000);
    let ks = store.keyspace("counter").unwrap();
    ks.put(b"n", &0u64.to_be_bytes(), None).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ks = ks.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                while done < 200 {
                    let current = ks.get(b"n").unwrap().unwrap();
                    let n = u64::from_be_bytes(current.as_slice().try_into().unwrap());
                    let next = (n + 1).to_be_bytes();
                    if ks
                        .compare_and_swap(b"n", Some(&current), Some(&next), None)
                        .unwrap()
                    {
                        done += 1;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ks.get(b"n").unwrap(), Some(800u64.to_be_bytes().to_vec()));
}

fn names_are_checked(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    for bad in ["", "a\nb", &"x".repeat(256)] {
        assert!(matches!(
            store.keyspace(bad),
            Err(StorageError::InvalidName {
                kind: "keyspace",
                ..
            })
        ));
    }
    assert!(store.keyspace(&"x".repeat(255)).is_ok());
}
