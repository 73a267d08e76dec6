//! A device's newest metrics groups, read back from the topic log where its polls put
//! them ([`crate::fleet::Fleet::latest_locations`]): nothing is kept in memory for the
//! scrape, the log keeps the groups anyway.

use panoptes_storage::StorageError;

use crate::bus::Bus;
use crate::fleet::Location;

/// Largest read of one call: an interface group is ≈4 KB, a poll of a 48-port switch ≈200 KB.
const READ_BYTES: usize = 1 << 20;

/// Calls `each` with the value of every record at `locations` in one of `topics` (the
/// `<site>-processed` topics: the other topics a poll may publish to hold copies of the
/// same groups), in order; returns how many records were no longer in the log (removed
/// by retention since the poll).
pub fn for_each_group<E: From<StorageError>>(
    bus: &Bus,
    topics: &[String],
    locations: &[Location],
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut gone = 0;
    for location in locations
        .iter()
        .filter(|l| topics.iter().any(|t| **t == *l.topic))
    {
        let log = bus.topic(&location.topic)?;
        let end = location.first_offset + u64::from(location.count);
        let mut next = location.first_offset;
        while next < end {
            let want = usize::try_from(end - next).unwrap_or(usize::MAX);
            let batch = log.read(location.partition, next, want, READ_BYTES)?;
            // Reading below the low watermark starts there: what is before it is gone.
            let first = batch.first().map_or(end, |r| r.offset).min(end);
            gone += first.saturating_sub(next);
            next = first;
            for stored in batch.iter().take_while(|r| r.offset < end) {
                each(&stored.record.value)?;
                next = stored.offset + 1;
            }
        }
    }
    Ok(gone)
}
