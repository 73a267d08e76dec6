//! Recorded counters that move with wall-clock time, so that pollers computing
//! rates see traffic.
//!
//! Each counter gets a fixed rate derived from a hash of its OID: the same OID
//! always moves at the same speed, in every run and every process, which keeps
//! benchmark figures comparable and makes failures reproducible.

use std::time::Duration;

use serde::Deserialize;

use crate::snmp::{Oid, SnmpValue};

/// Whether counters advance while the simulator runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterMode {
    /// Counter32/Counter64 grow at a per-OID rate, sysUpTime at 100 ticks/s.
    #[default]
    Advancing,
    /// Every value stays as recorded (replaying conformance recordings).
    Frozen,
}

/// How one recorded value changes with time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Motion {
    Counter32 {
        per_second: u64,
    },
    Counter64 {
        per_second: u64,
    },
    /// sysUpTime: hundredths of a second.
    Uptime,
}

const SYS_UP_TIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3];
const IF_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1];
const IF_X_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
/// ifInOctets, ifOutOctets.
const IF_OCTET_COLUMNS: &[u32] = &[10, 16];
/// ifHCInOctets, ifHCOutOctets.
const IF_HC_OCTET_COLUMNS: &[u32] = &[6, 10];
/// ifInDiscards, ifInErrors, ifInUnknownProtos, ifOutDiscards, ifOutErrors.
const IF_ERROR_COLUMNS: &[u32] = &[13, 14, 15, 19, 20];

pub const OCTET_RATE: (u64, u64) = (1_000, 10_000_000);
pub const OTHER_RATE: (u64, u64) = (1, 10_000);

/// The motion of a recorded value, or `None` for values that stay put
/// (gauges, integers, strings, and error counters recorded at zero: a quiet
/// interface stays quiet).
pub fn motion_for(oid: &Oid, value: &SnmpValue) -> Option<Motion> {
    let components = oid.components();
    match value {
        SnmpValue::TimeTicks(_) if components.starts_with(SYS_UP_TIME) => Some(Motion::Uptime),
        SnmpValue::Counter32(recorded) => counter_rate(components, u64::from(*recorded))
            .map(|per_second| Motion::Counter32 { per_second }),
        SnmpValue::Counter64(recorded) => {
            counter_rate(components, *recorded).map(|per_second| Motion::Counter64 { per_second })
        }
        _ => None,
    }
}

fn counter_rate(oid: &[u32], recorded: u64) -> Option<u64> {
    let column = |table: &[u32]| {
        oid.strip_prefix(table)
            .and_then(|rest| rest.first().copied())
    };
    let is_octets = column(IF_ENTRY).is_some_and(|c| IF_OCTET_COLUMNS.contains(&c))
        || column(IF_X_ENTRY).is_some_and(|c| IF_HC_OCTET_COLUMNS.contains(&c));
    if is_octets {
        return Some(rate_in(oid, OCTET_RATE));
    }
    let is_errors = column(IF_ENTRY).is_some_and(|c| IF_ERROR_COLUMNS.contains(&c));
    if is_errors && recorded == 0 {
        return None;
    }
    Some(rate_in(oid, OTHER_RATE))
}

/// A rate in `[low, high]` picked by the OID's FNV-1a hash (stable across
/// runs and Rust versions, unlike `DefaultHasher`).
pub fn rate_in(oid: &[u32], (low, high): (u64, u64)) -> u64 {
    let bytes: Vec<[u8; 4]> = oid.iter().map(|c| c.to_le_bytes()).collect();
    let hash = crate::hash::fnv1a_parts(bytes.iter().map(|b| &b[..]));
    low + hash % (high - low + 1)
}

/// The value `elapsed` after the recording was taken: counters wrap modulo
/// 2^32 / 2^64 like real ones, sysUpTime wraps modulo 2^32 ticks.
pub fn advanced(recorded: &SnmpValue, motion: Motion, elapsed: Duration) -> SnmpValue {
    let millis = elapsed.as_millis();
    match (motion, recorded) {
        (Motion::Counter32 { per_second }, SnmpValue::Counter32(start)) => {
            let grown = u128::from(*start) + u128::from(per_second) * millis / 1000;
            // Reduced modulo 2^32 first.
            SnmpValue::Counter32((grown % (1u128 << 32)) as u32)
        }
        (Motion::Counter64 { per_second }, SnmpValue::Counter64(start)) => {
            let grown = u128::from(*start) + u128::from(per_second) * millis / 1000;
            // Reduced modulo 2^64 first.
            SnmpValue::Counter64((grown % (1u128 << 64)) as u64)
        }
        (Motion::Uptime, SnmpValue::TimeTicks(start)) => {
            let grown = u128::from(*start) + millis / 10;
            // Reduced modulo 2^32 first.
            SnmpValue::TimeTicks((grown % (1u128 << 32)) as u32)
        }
        // A motion always comes from `motion_for` on the same value; anything
        // else stays as recorded.
        _ => recorded.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(text: &str) -> Oid {
        text.parse().unwrap()
    }

    #[test]
    fn octet_counters_get_fast_deterministic_rates() {
        let in_octets = oid("1.3.6.1.2.1.2.2.1.10.7");
        let hc_out = oid("1.3.6.1.2.1.31.1.1.1.10.7");
        for o in [&in_octets, &hc_out] {
            let Some(Motion::Counter64 { per_second }) = motion_for(o, &SnmpValue::Counter64(5))
            else {
                panic!("no motion for {o}");
            };
            assert!((OCTET_RATE.0..=OCTET_RATE.1).contains(&per_second));
            assert_eq!(
                motion_for(o, &SnmpValue::Counter64(5)),
                Some(Motion::Counter64 { per_second })
            );
        }
        let a = rate_in(in_octets.components(), OCTET_RATE);
        let b = rate_in(oid("1.3.6.1.2.1.2.2.1.10.8").components(), OCTET_RATE);
        assert_ne!(a, b, "neighbouring interfaces should not move in lockstep");
    }

    #[test]
    fn other_counters_are_slower_and_quiet_errors_stay_quiet() {
        let packets = oid("1.3.6.1.2.1.2.2.1.11.1");
        let Some(Motion::Counter32 { per_second }) = motion_for(&packets, &SnmpValue::Counter32(0))
        else {
            panic!("packets should move");
        };
        assert!((OTHER_RATE.0..=OTHER_RATE.1).contains(&per_second));
        let errors = oid("1.3.6.1.2.1.2.2.1.14.1");
        assert_eq!(motion_for(&errors, &SnmpValue::Counter32(0)), None);
        assert!(motion_for(&errors, &SnmpValue::Counter32(3)).is_some());
    }

    #[test]
    fn only_sys_up_time_ticks_and_counters_move() {
        assert_eq!(
            motion_for(&oid("1.3.6.1.2.1.1.3.0"), &SnmpValue::TimeTicks(1)),
            Some(Motion::Uptime)
        );
        assert_eq!(
            motion_for(&oid("1.3.6.1.2.1.2.2.1.9.1"), &SnmpValue::TimeTicks(1)),
            None
        );
        assert_eq!(
            motion_for(&oid("1.3.6.1.2.1.2.2.1.5.1"), &SnmpValue::Gauge32(1)),
            None
        );
        assert_eq!(
            motion_for(&oid("1.3.6.1.2.1.1.1.0"), &SnmpValue::Integer(1)),
            None
        );
    }

    #[test]
    fn arithmetic_and_wraps() {
        let m32 = Motion::Counter32 { per_second: 1_000 };
        assert_eq!(
            advanced(&SnmpValue::Counter32(5), m32, Duration::from_millis(2_500)),
            SnmpValue::Counter32(2_505)
        );
        assert_eq!(
            advanced(
                &SnmpValue::Counter32(u32::MAX - 9),
                m32,
                Duration::from_secs(1)
            ),
            SnmpValue::Counter32(990)
        );
        let m64 = Motion::Counter64 {
            per_second: 10_000_000,
        };
        assert_eq!(
            advanced(&SnmpValue::Counter64(u64::MAX), m64, Duration::from_secs(1)),
            SnmpValue::Counter64(9_999_999)
        );
        // Years of elapsed time do not overflow the arithmetic.
        let long = Duration::from_secs(100 * 365 * 86_400);
        let SnmpValue::Counter64(_) = advanced(&SnmpValue::Counter64(1), m64, long) else {
            panic!()
        };
        assert_eq!(
            advanced(
                &SnmpValue::TimeTicks(100),
                Motion::Uptime,
                Duration::from_millis(1_234)
            ),
            SnmpValue::TimeTicks(223)
        );
        assert_eq!(
            advanced(
                &SnmpValue::TimeTicks(u32::MAX),
                Motion::Uptime,
                Duration::from_millis(20)
            ),
            SnmpValue::TimeTicks(1)
        );
        assert_eq!(
            advanced(&SnmpValue::Counter32(7), m32, Duration::ZERO),
            SnmpValue::Counter32(7)
        );
    }
}
