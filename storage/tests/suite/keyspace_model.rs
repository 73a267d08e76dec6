//! Property test: random keyspace writes with and without TTL, clock moves, sweeps and
//! restarts against a plain map. Checks reads, TTLs, live counts, the stored-key count of
//! `Store::stats`, and that every sweep removes exactly the keys that have expired.

use std::collections::BTreeMap;
use std::time::Duration;

use panoptes_storage::{Clock, Keyspace};
use proptest::prelude::*;

use crate::fixture::{Fixture, Kind};

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: u8,
        value: u8,
        ttl: Option<u64>,
    },
    GetSet {
        key: u8,
        value: u8,
        ttl: Option<u64>,
    },
    /// Compare-and-swap, expecting the model's live value if `right`, a wrong one if not.
    Cas {
        key: u8,
        right: bool,
        new: Option<u8>,
        ttl: Option<u64>,
    },
    Delete {
        key: u8,
    },
    Advance {
        ms: u64,
    },
    Sweep,
    Reopen,
}

fn ttl() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), (1u64..20_000).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, any::<u8>(), ttl()).prop_map(|(key, value, ttl)| Op::Put { key, value, ttl }),
        2 => (0u8..8, any::<u8>(), ttl()).prop_map(|(key, value, ttl)| Op::GetSet { key, value, ttl }),
        2 => (0u8..8, any::<bool>(), proptest::option::of(any::<u8>()), ttl())
            .prop_map(|(key, right, new, ttl)| Op::Cas { key, right, new, ttl }),
        1 => (0u8..8).prop_map(|key| Op::Delete { key }),
        3 => (0u64..12_000).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::Sweep),
        1 => Just(Op::Reopen),
    ]
}

/// Stored values: (value, expiry in store ms). Expired ones stay until swept.
type Model = BTreeMap<u8, (Vec<u8>, Option<u64>)>;

fn live(model: &Model, key: u8, now: u64) -> Option<Vec<u8>> {
    model
        .get(&key)
        .filter(|(_, exp)| exp.is_none_or(|e| e > now))
        .map(|(v, _)| v.clone())
}

fn value(v: u8) -> Vec<u8> {
    vec![v; 1 + usize::from(v % 5)]
}

fn run(kind: Kind, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut fixture = Fixture::new(kind, 1_000_000);
    let clock = fixture.clock.clone();
    let mut ks: Keyspace = fixture.store().keyspace("model").unwrap();
    let mut model = Model::new();
    for op in ops {
        let now = clock.now_ms();
        let deadline = |ttl: Option<u64>| ttl.map(|t| now + t);
        let duration = |ttl: Option<u64>| ttl.map(Duration::from_millis);
        match op {
            Op::Put { key, value: v, ttl } => {
                ks.put(&[key], &value(v), duration(ttl)).unwrap();
                model.insert(key, (value(v), deadline(ttl)));
            }
            Op::GetSet { key, value: v, ttl } => {
                let got = ks.get_set(&[key], &value(v), duration(ttl)).unwrap();
                prop_assert_eq!(got, live(&model, key, now));
                model.insert(key, (value(v), deadline(ttl)));
            }
            Op::Cas {
                key,
                right,
                new,
                ttl,
            } => {
                let current = live(&model, key, now);
                let expected = if right {
                    current.clone()
                } else {
                    Some(b"never stored".to_vec())
                };
                let new_value = new.map(value);
                let swapped = ks
                    .compare_and_swap(
                        &[key],
                        expected.as_deref(),
                        new_value.as_deref(),
                        duration(ttl),
                    )
                    .unwrap();
                prop_assert_eq!(swapped, right);
                if swapped {
                    match new_value {
                        Some(v) => {
                            model.insert(key, (v, deadline(ttl)));
                        }
                        None => {
                            model.remove(&key);
                        }
                    }
                }
            }
            Op::Delete { key } => {
                let was_live = live(&model, key, now).is_some();
                prop_assert_eq!(ks.delete(&[key]).unwrap(), was_live);
                model.remove(&key);
            }
            Op::Advance { ms } => clock.advance(Duration::from_millis(ms)),
            Op::Sweep => {
                let expired: Vec<u8> = model
                    .iter()
                    .filter(|(_, (_, exp))| exp.is_some_and(|e| e <= now))
                    .map(|(k, _)| *k)
                    .collect();
                prop_assert_eq!(fixture.store().sweep_expired().unwrap(), expired.len());
                for k in expired {
                    model.remove(&k);
                }
            }
            Op::Reopen => {
                drop(ks);
                ks = fixture.reopen().keyspace("model").unwrap();
            }
        }
        let now = clock.now_ms();
        for key in 0u8..8 {
            prop_assert_eq!(
                ks.get(&[key]).unwrap(),
                live(&model, key, now),
                "key {}",
                key
            );
            let ttl = model
                .get(&key)
                .and_then(|(_, exp)| *exp)
                .filter(|&e| e > now)
                .map(|e| Duration::from_millis(e - now));
            prop_assert_eq!(ks.ttl_remaining(&[key]).unwrap(), ttl, "key {}", key);
        }
        let live_count = (0u8..8).filter(|&k| live(&model, k, now).is_some()).count();
        prop_assert_eq!(ks.len().unwrap(), live_count);
        let stats = fixture.store().stats().unwrap();
        let stored = stats.keyspaces.iter().find(|k| k.name == "model").unwrap();
        prop_assert_eq!(stored.keys, model.len() as u64);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sled_keyspace_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(Kind::Sled, ops)?;
    }

    #[test]
    fn memory_keyspace_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(Kind::Memory, ops)?;
    }
}
