//! Leases: acquire, renew, release, expiry by the clock, fencing tokens, contention.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_storage::{testing, Lease, StorageError};

use crate::fixture::{engine_tests, Fixture, Kind};

engine_tests!(
    acquire_renew_release_and_holder,
    a_holder_that_stops_renewing_loses_the_lease,
    at_most_one_holder_under_contention,
    expired_leases_go_to_the_next_contender_under_contention,
    leases_and_tokens_survive_a_restart,
    sweep_removes_lapsed_leases,
    a_corrupt_lease_is_reported_and_can_be_retaken,
);

const SEC: Duration = Duration::from_secs(1);

fn acquire_renew_release_and_holder(kind: Kind) {
    let (store, _clock) = kind.manual_store(100_000);
    let leases = store.leases();
    assert_eq!(leases.holder("poll/r1").unwrap(), None);

    let a = leases
        .acquire("poll/r1", "node-a", 10 * SEC)
        .unwrap()
        .unwrap();
    assert_eq!((a.name.as_str(), a.owner.as_str()), ("poll/r1", "node-a"));
    assert_eq!(a.expires_at_ms, 110_000);
    assert_eq!(leases.holder("poll/r1").unwrap(), Some(a.clone()));
    assert_eq!(leases.acquire("poll/r1", "node-b", 10 * SEC).unwrap(), None);
    // Other names are independent.
    let other = leases.acquire("poll/r2", "node-b", SEC).unwrap().unwrap();
    assert_ne!(other.token, a.token);

    // The holder acquiring again renews, keeping the token.
    let again = leases
        .acquire("poll/r1", "node-a", 20 * SEC)
        .unwrap()
        .unwrap();
    assert_eq!((again.token, again.expires_at_ms), (a.token, 120_000));
    let renewed = leases.renew(&again, 30 * SEC).unwrap().unwrap();
    assert_eq!((renewed.token, renewed.expires_at_ms), (a.token, 130_000));

    // Only the holder, with its token, can renew or release.
    let impostor = Lease {
        owner: "node-b".into(),
        ..renewed.clone()
    };
    assert_eq!(leases.renew(&impostor, SEC).unwrap(), None);
    assert!(!leases.release(&impostor).unwrap());
    let stale_token = Lease {
        token: renewed.token + 100,
        ..renewed.clone()
    };
    assert!(!leases.release(&stale_token).unwrap());
    assert_eq!(leases.holder("poll/r1").unwrap(), Some(renewed.clone()));

    assert!(leases.release(&renewed).unwrap());
    assert!(!leases.release(&renewed).unwrap(), "already released");
    assert_eq!(leases.holder("poll/r1").unwrap(), None);
    assert_eq!(leases.renew(&renewed, SEC).unwrap(), None);
    let b = leases.acquire("poll/r1", "node-b", SEC).unwrap().unwrap();
    assert!(
        b.token > other.token,
        "a new holder gets a new, larger token"
    );

    assert!(matches!(
        leases.acquire("", "node-a", SEC),
        Err(StorageError::InvalidName { .. })
    ));
    assert!(matches!(
        leases.acquire("x", "", SEC),
        Err(StorageError::InvalidName { .. })
    ));
}

fn a_holder_that_stops_renewing_loses_the_lease(kind: Kind) {
    let (store, clock) = kind.manual_store(0);
    let leases = store.leases();
    let a = leases.acquire("leader", "a", 5 * SEC).unwrap().unwrap();
    // Renewing in time keeps it.
    clock.advance(4 * SEC);
    let a = leases.renew(&a, 5 * SEC).unwrap().unwrap();
    assert_eq!(a.expires_at_ms, 9_000);
    clock.advance(4 * SEC);
    assert_eq!(leases.acquire("leader", "b", 5 * SEC).unwrap(), None);

    // Then a stops renewing: at its expiry millisecond exactly, the lease is free.
    clock.set_ms(8_999);
    assert_eq!(
        leases.holder("leader").unwrap().map(|l| l.owner),
        Some("a".into())
    );
    clock.set_ms(9_000);
    assert_eq!(leases.holder("leader").unwrap(), None);
    // A lapsed lease cannot be renewed, even before anyone else takes it: the holder
    // must assume another may have run meanwhile.
    assert_eq!(leases.renew(&a, 5 * SEC).unwrap(), None);
    let b = leases.acquire("leader", "b", 5 * SEC).unwrap().unwrap();
    assert!(b.token > a.token);
    assert!(!leases.release(&a).unwrap());
    assert_eq!(leases.holder("leader").unwrap(), Some(b.clone()));

    // a comes back and takes it again once b lapses: a new token again.
    clock.advance(5 * SEC);
    let a2 = leases.acquire("leader", "a", 5 * SEC).unwrap().unwrap();
    assert!(a2.token > b.token);
}

/// Threads compete for one lease; each, once it holds it, checks with a shared counter
/// that nobody else does, works a little, and releases it.
fn at_most_one_holder_under_contention(kind: Kind) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 8;
    let (store, _clock) = kind.manual_store(0);
    let holders = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let leases = store.leases();
            let holders = Arc::clone(&holders);
            let tokens = Arc::clone(&tokens);
            std::thread::spawn(move || {
                let owner = format!("worker-{t}");
                let mut held = 0;
                let mut refused = 0;
                while held < ROUNDS {
                    let Some(lease) = leases.acquire("the-lock", &owner, 60 * SEC).unwrap() else {
                        refused += 1;
                        std::thread::yield_now();
                        continue;
                    };
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    tokens.lock().unwrap().push(lease.token);
                    for _ in 0..3 {
                        assert_eq!(leases.holder("the-lock").unwrap().as_ref(), Some(&lease));
                        std::thread::yield_now();
                    }
                    assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1);
                    assert!(leases.release(&lease).unwrap());
                    held += 1;
                }
                refused
            })
        })
        .collect();
    let refused: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), THREADS * ROUNDS);
    let distinct: HashSet<u64> = tokens.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        tokens.len(),
        "every holding got its own token"
    );
    // Tokens were pushed while held, so in holding order: they only grow.
    assert!(tokens.windows(2).all(|w| w[0] < w[1]));
    eprintln!(
        "{kind:?}: {} acquisitions, {refused} refusals",
        tokens.len()
    );
}

/// Holders never release; they stop renewing, and the test moves the clock past their
/// expiry. At every instant of store time, at most one contender holds the lease.
fn expired_leases_go_to_the_next_contender_under_contention(kind: Kind) {
    const THREADS: usize = 6;
    const TTL: Duration = Duration::from_secs(10);
    let (store, clock) = kind.manual_store(0);
    // (token, owner, expires at) of every successful acquire, renewals included.
    let holdings = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let leases = store.leases();
            let holdings = Arc::clone(&holdings);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let owner = format!("c{t}");
                while !stop.load(Ordering::SeqCst) {
                    if let Some(lease) = leases.acquire("job", &owner, TTL).unwrap() {
                        let entry = (lease.token, lease.owner, lease.expires_at_ms);
                        holdings.lock().unwrap().push(entry);
                    }
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(2));
        clock.advance(TTL + SEC);
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    // Per token (one holding): its owner, when it was taken (the first acquire's
    // expiry minus the TTL) and when it lapsed (the last renewal's expiry).
    let mut holdings_by_token: Vec<(u64, String, u64, u64)> = Vec::new();
    for (token, owner, expires) in holdings.lock().unwrap().iter() {
        match holdings_by_token.iter_mut().find(|h| h.0 == *token) {
            Some(h) => {
                assert_eq!(&h.1, owner, "one token, one owner");
                h.3 = h.3.max(*expires);
            }
            None => holdings_by_token.push((*token, owner.clone(), expires - 10_000, *expires)),
        }
    }
    holdings_by_token.sort();
    assert!(holdings_by_token.len() > 1, "the lease never changed hands");
    // Tokens grow with each new holding; each was taken once the previous had lapsed.
    for w in holdings_by_token.windows(2) {
        assert!(
            w[1].2 >= w[0].3,
            "overlapping holdings: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

fn leases_and_tokens_survive_a_restart(kind: Kind) {
    let mut fixture = Fixture::new(kind, 0);
    let (held, last) = {
        let leases = fixture.store().leases();
        let held = leases.acquire("held", "me", 60 * SEC).unwrap().unwrap();
        let gone = leases.acquire("gone", "me", 60 * SEC).unwrap().unwrap();
        assert!(leases.release(&gone).unwrap());
        (held, gone.token)
    };
    let leases = fixture.reopen().leases();
    assert_eq!(leases.holder("held").unwrap(), Some(held.clone()));
    assert_eq!(leases.acquire("held", "you", SEC).unwrap(), None);
    assert!(leases.renew(&held, SEC).unwrap().is_some());
    let next = leases.acquire("gone", "you", SEC).unwrap().unwrap();
    assert!(
        next.token > last,
        "tokens are never reused, even across a restart"
    );
}

fn sweep_removes_lapsed_leases(kind: Kind) {
    let (store, clock) = kind.manual_store(0);
    let leases = store.leases();
    for name in ["a", "b", "c"] {
        leases.acquire(name, "o", SEC).unwrap().unwrap();
    }
    leases.acquire("long", "o", 60 * SEC).unwrap().unwrap();
    assert_eq!(store.sweep_expired().unwrap(), 0);
    clock.advance(SEC);
    assert_eq!(store.sweep_expired().unwrap(), 3);
    assert_eq!(store.sweep_expired().unwrap(), 0);
    assert!(leases.holder("long").unwrap().is_some());
}

fn a_corrupt_lease_is_reported_and_can_be_retaken(kind: Kind) {
    let (store, _clock) = kind.manual_store(0);
    let leases = store.leases();
    testing::write_raw_lease(&leases, "broken", b"\x07 not a lease").unwrap();
    match leases.holder("broken") {
        Err(StorageError::Corrupt { place, reason }) => {
            assert!(place.contains("\"broken\""), "{place}");
            assert!(reason.contains("unknown format version 7"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // A lease nobody could take again would stop its work for good: it is overwritten.
    let lease = leases.acquire("broken", "o", SEC).unwrap().unwrap();
    assert_eq!(leases.holder("broken").unwrap(), Some(lease));
}
