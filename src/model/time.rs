use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock Unix seconds as a float, the unit of every Panoptes timestamp.
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Wall-clock Unix milliseconds (0 before 1970), for TTLs, expiries and record timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Round to 3 decimals, as the original does for metric and group timestamps.
pub fn round3(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}
