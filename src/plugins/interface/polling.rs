//! Interface polling (`plugin_polling_device_interface_metrics`): one `interface` metrics
//! group per interface with the spec's metric and dimension names (spec §8.2), plus the
//! `status` group with `interface_polling_status`.

use std::sync::Arc;

use serde_json::Value;

use super::stored::{Field, Fields, StoredInterfaces};
use super::{
    ascii_only, walk_indexed_all, IndexedColumn, DOT3_STATS_TABLE, IF_TABLE, IF_X_TABLE, NOT_SET,
};
use crate::model::{
    CounterWidth, Dimension, Metric, MetricType, MetricValue, MetricsGroup, ModelError, Resource,
};
use crate::plugins::status::{DeviceStatus, StatusTracker};
use crate::plugins::{sys_uptime, PluginError, Polled};
use crate::snmp::{IndexText, SnmpClient, SnmpValue};

pub const GROUP_TYPE: &str = "interface";
pub const STATUS_METRIC: &str = "interface_polling_status";

/// Dimensions copied from the interface enrichment, in the original's order.
const ENRICHED_DIMENSIONS: [&str; 10] = [
    "alias",
    "media_type",
    "description",
    "configured_speed",
    "port_speed",
    "interface_name",
    "parent_interface_name",
    "parent_interface_media_type",
    "parent_interface_configured_speed",
    "parent_interface_port_speed",
];

/// Options from the plugin file.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub interval: u64,
    pub include_interface_index: bool,
}

/// What one poll walked: the rows of each of [`COLUMNS`], in its order.
type Walked = Vec<IndexedColumn>;

/// The position of a column in [`COLUMNS`] (at compile time: a typo does not build).
const fn col(name: &str) -> usize {
    let mut i = 0;
    while i < COLUMNS.len() {
        let (a, b) = (COLUMNS[i].0.as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a polled column")
}

const COLUMNS: [(&str, &str, u32); 21] = [
    ("dot3StatsAlignmentErrors", DOT3_STATS_TABLE, 2),
    ("dot3StatsFCSErrors", DOT3_STATS_TABLE, 3),
    ("dot3StatsFrameTooLongs", DOT3_STATS_TABLE, 13),
    ("ifMtu", IF_TABLE, 4),
    ("ifSpeed", IF_TABLE, 5),
    ("ifPhysAddress", IF_TABLE, 6),
    ("ifAdminStatus", IF_TABLE, 7),
    ("ifOperStatus", IF_TABLE, 8),
    ("ifInDiscards", IF_TABLE, 13),
    ("ifInErrors", IF_TABLE, 14),
    ("ifOutDiscards", IF_TABLE, 19),
    ("ifOutErrors", IF_TABLE, 20),
    ("ifHCInOctets", IF_X_TABLE, 6),
    ("ifHCInUcastPkts", IF_X_TABLE, 7),
    ("ifHCInMulticastPkts", IF_X_TABLE, 8),
    ("ifHCInBroadcastPkts", IF_X_TABLE, 9),
    ("ifHCOutOctets", IF_X_TABLE, 10),
    ("ifHCOutUcastPkts", IF_X_TABLE, 11),
    ("ifHCOutMulticastPkts", IF_X_TABLE, 12),
    ("ifHCOutBroadcastPkts", IF_X_TABLE, 13),
    ("ifHighSpeed", IF_X_TABLE, 15),
];

/// Polls the device. Always returns at least the status group: a failure shows up there,
/// not as an empty result. The device's sysUpTime goes along, for the rate transform to
/// tell a restart from a counter reset.
pub async fn run(
    client: Result<&mut SnmpClient, PluginError>,
    resource: &Resource,
    enrichment: Result<Option<&StoredInterfaces>, PluginError>,
    options: Options,
    now: f64,
) -> Result<Polled, ModelError> {
    let mut status = StatusTracker::default();
    let mut polled = Polled::default();
    match poll(client, resource, enrichment, options, now, &mut status).await {
        Ok((mut interface_groups, uptime)) => {
            polled.groups.append(&mut interface_groups);
            polled.sys_uptime = uptime;
        }
        Err(e) => {
            tracing::warn!(resource = %resource.id, endpoint = %resource.endpoint, error = %e, "interface polling failed");
            status.failure("interface", DeviceStatus::of_error(&e));
        }
    }
    polled
        .groups
        .push(status.group(resource, STATUS_METRIC, options.interval, now)?);
    Ok(polled)
}

/// Without its enrichment a poll cannot run, but the device may still say why there is
/// none: an agent that refuses our credentials makes the poll an AUTHENTICATION_FAILURE
/// rather than the ENRICHMENT_FAILURE the original reports for any missing enrichment.
/// Any other answer (or none) leaves the enrichment failure as it is.
async fn refused_credentials(client: &mut SnmpClient) -> Option<PluginError> {
    use crate::snmp::SnmpError;
    match sys_uptime(client).await {
        Err(
            e @ (SnmpError::UnknownUser { .. }
            | SnmpError::WrongAuth { .. }
            | SnmpError::WrongPriv { .. }
            | SnmpError::UnsupportedSecurityLevel { .. }),
        ) => Some(e.into()),
        _ => None,
    }
}

async fn poll(
    client: Result<&mut SnmpClient, PluginError>,
    resource: &Resource,
    enrichment: Result<Option<&StoredInterfaces>, PluginError>,
    options: Options,
    now: f64,
    status: &mut StatusTracker,
) -> Result<(Vec<MetricsGroup>, Option<u32>), PluginError> {
    let client = client?;
    let found = enrichment.and_then(|e| {
        e.ok_or_else(|| {
            PluginError::Enrichment(format!(
                "no interface enrichment stored for resource `{}`",
                resource.id
            ))
        })?
        .interfaces()
        .map_err(|e| PluginError::Enrichment(e.to_string()))
    });
    let interfaces = match found {
        Ok(interfaces) => interfaces,
        Err(missing) => return Err(refused_credentials(client).await.unwrap_or(missing)),
    };
    let uptime = sys_uptime(client).await?;
    let columns = COLUMNS.map(|(_, table, column)| (table, column));
    let walked: Walked = walk_indexed_all(client, &columns, interfaces.count()).await?;
    let if_x = union_of_sorted(
        COLUMNS
            .iter()
            .zip(&walked)
            .filter(|((_, table, _), _)| *table == IF_X_TABLE)
            .map(|(_, rows)| rows.as_slice()),
    );
    let mut groups = Vec::with_capacity(if_x.len() + 1);
    // One copy for every group of the poll to share.
    let shared = Arc::new(resource.clone());
    // The rows of every column in the interfaces' order: each column is read once, in
    // step with the sorted indexes, instead of searched for every interface.
    let mut cursors: Vec<_> = walked.iter().map(|c| c.iter().peekable()).collect();
    for index_text in if_x.iter().copied() {
        let row: Row = std::array::from_fn(|c| {
            let cursor = &mut cursors[c];
            while cursor.next_if(|(k, _)| k < index_text).is_some() {}
            cursor.next_if(|(k, _)| k == index_text).map(|(_, v)| v)
        });
        let index = index_text.as_str();
        let Some(fields) = interfaces.get(index) else {
            tracing::warn!(resource = %resource.id, index = %index, "interface has no enrichment yet: skipped this poll");
            status.failure("interface", DeviceStatus::EnrichmentFailure);
            continue;
        };
        let group = interface_group(&shared, index, &fields, &row, options, now)
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        groups.push(group);
        status.success("interface");
    }
    if if_x.is_empty() {
        // No interfaces at all is a successful poll, as in the original.
        status.success("interface");
    }
    Ok((groups, uptime))
}

/// The indexes of `columns` (each sorted in text order, as [`super::walk_indexed_all`]
/// gives them), sorted, each once. The columns of a table usually hold the same
/// indexes: a column equal to the union so far costs one comparison a row, any other is
/// merged in (a set built from every row sorted ≈1,000 strings a poll at 48 ports).
fn union_of_sorted<'a>(
    columns: impl Iterator<Item = &'a [(IndexText, SnmpValue)]>,
) -> Vec<&'a IndexText> {
    let mut union: Vec<&IndexText> = Vec::new();
    for column in columns {
        let same =
            union.len() == column.len() && union.iter().zip(column).all(|(a, (b, _))| *a == b);
        if same {
            continue;
        }
        let mut merged = Vec::with_capacity(union.len().max(column.len()));
        let (mut a, mut b) = (
            union.iter().copied().peekable(),
            column.iter().map(|(k, _)| k).peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(k) = next {
                if merged.last() != Some(&k) {
                    merged.push(k);
                }
            }
        }
        union = merged;
    }
    union
}

/// One interface's value in each of [`COLUMNS`], if the device has one.
type Row<'a> = [Option<&'a SnmpValue>; COLUMNS.len()];

/// A column's value for one interface (-1: missing or not a number) and the width of the
/// counter it came from.
fn number(value: Option<&SnmpValue>) -> (i128, CounterWidth) {
    let width = match value {
        Some(SnmpValue::Counter32(_)) => CounterWidth::Bits32,
        Some(SnmpValue::Counter64(_)) => CounterWidth::Bits64,
        _ => CounterWidth::Unknown,
    };
    (value.and_then(SnmpValue::as_i128).unwrap_or(-1), width)
}

/// The width of a counter computed from others: a sum or multiple of 64-bit counters still
/// never wraps, while one of 32-bit counters wraps at a modulus no agent reports, so a
/// decrease there is taken as a reset.
fn derived_width(widths: impl IntoIterator<Item = CounterWidth>) -> CounterWidth {
    if widths.into_iter().all(|w| w == CounterWidth::Bits64) {
        CounterWidth::Bits64
    } else {
        CounterWidth::Unknown
    }
}

/// The metrics of an interface group: 19 read as counters (two of them, the states, are
/// gauges), 3 computed gauges.
const COUNTERS: usize = 19;
const GAUGES: usize = 3;

fn interface_group(
    resource: &Arc<Resource>,
    index: &str,
    enrichment: &Fields,
    row: &Row,
    options: Options,
    now: f64,
) -> Result<MetricsGroup, ModelError> {
    let mut g = MetricsGroup::new(Arc::clone(resource), GROUP_TYPE, options.interval, now)?;
    // Room for every metric and dimension below, and for the rate gauges of the 17
    // counters the default transform adds: the lists are never copied to grow.
    g.metrics.reserve_exact(COUNTERS + GAUGES + COUNTERS - 2);
    g.dimensions.reserve_exact(ENRICHED_DIMENSIONS.len() + 1);
    // Each column's value for this interface, read once (-1: missing or not a number).
    let v: [(i128, CounterWidth); COLUMNS.len()] = std::array::from_fn(|c| number(row[c]));
    let n = |c: usize| v[c].0;
    let direct = |c: usize| v[c];
    let sum = |cs: [usize; 3]| {
        let width = derived_width(cs.iter().map(|&c| v[c].1));
        if cs.iter().any(|&c| n(c) == -1) {
            (-1, width)
        } else {
            (cs.iter().map(|&c| n(c)).sum(), width)
        }
    };
    let times8 = |c: usize| match n(c) {
        -1 => (-1, derived_width([v[c].1])),
        x => (x * 8, derived_width([v[c].1])),
    };
    let admin = n(const { col("ifAdminStatus") });
    let oper = n(const { col("ifOperStatus") });
    let configured = match enrichment.get("configured_speed") {
        Field::Other(Value::Number(x)) => x.as_i64().map(i128::from).unwrap_or(-1),
        Field::Text(s) => s.parse().unwrap_or(-1),
        _ => -1,
    };
    const IN: [usize; 3] = [
        col("ifHCInUcastPkts"),
        col("ifHCInMulticastPkts"),
        col("ifHCInBroadcastPkts"),
    ];
    const OUT: [usize; 3] = [
        col("ifHCOutUcastPkts"),
        col("ifHCOutMulticastPkts"),
        col("ifHCOutBroadcastPkts"),
    ];
    let counters: [(&'static str, (i128, CounterWidth)); COUNTERS] = [
        ("bits_in", times8(const { col("ifHCInOctets") })),
        ("bits_out", times8(const { col("ifHCOutOctets") })),
        ("unicast_packets_in", direct(IN[0])),
        ("unicast_packets_out", direct(OUT[0])),
        ("multicast_packets_in", direct(IN[1])),
        ("multicast_packets_out", direct(OUT[1])),
        ("broadcast_packets_in", direct(IN[2])),
        ("broadcast_packets_out", direct(OUT[2])),
        ("total_packets_in", sum(IN)),
        ("total_packets_out", sum(OUT)),
        ("errors_in", direct(const { col("ifInErrors") })),
        ("errors_out", direct(const { col("ifOutErrors") })),
        ("discards_in", direct(const { col("ifInDiscards") })),
        ("discards_out", direct(const { col("ifOutDiscards") })),
        (
            "errors_frame",
            direct(const { col("dot3StatsAlignmentErrors") }),
        ),
        ("errors_crc", direct(const { col("dot3StatsFCSErrors") })),
        (
            "errors_giants",
            direct(const { col("dot3StatsFrameTooLongs") }),
        ),
        ("admin_state", (admin, CounterWidth::Unknown)),
        ("oper_state", (oper, CounterWidth::Unknown)),
    ];
    for (name, (value, width)) in counters {
        let kind = if matches!(name, "admin_state" | "oper_state") {
            MetricType::Gauge
        } else {
            MetricType::Counter
        };
        g.add_metric(
            Metric::named(name, MetricValue::Int(value), kind, now)?.with_counter_width(width),
        )?;
    }
    let gauges: [(&'static str, i128); GAUGES] = [
        ("oper_admin_state_mismatch", i128::from(oper != admin)),
        ("mtu", n(const { col("ifMtu") })),
        ("configured_speed", configured),
    ];
    for (name, value) in gauges {
        g.add_metric(Metric::named(
            name,
            MetricValue::Int(value),
            MetricType::Gauge,
            now,
        )?)?;
    }
    for name in ENRICHED_DIMENSIONS {
        let value = match enrichment.get(name) {
            Field::Text(s) if matches!(name, "alias" | "description") => ascii_only(s.as_bytes()),
            Field::Text(s) => s.into_owned(),
            Field::Empty => String::new(),
            Field::Other(other) => {
                // Numbers mostly: room for one up front (to_string grew it twice).
                let mut s = String::with_capacity(24);
                let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{other}"));
                s
            }
        };
        let value = if value.is_empty() {
            NOT_SET.to_string()
        } else {
            value
        };
        g.add_dimension(Dimension::named(name, value)?)?;
    }
    if options.include_interface_index {
        g.add_dimension(Dimension::named("interface_index", index.to_owned())?)?;
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The union of sorted columns is the set of every row's index, in text order:
        /// columns alike, overlapping, disjoint or empty.
        #[test]
        fn union_of_sorted_columns_is_the_sorted_set(
            columns in proptest::collection::vec(
                proptest::collection::btree_set(proptest::collection::vec(0u32..40, 1..3), 0..12),
                0..5,
            ),
            repeat_first in proptest::bool::ANY,
        ) {
            let mut columns: Vec<Vec<(IndexText, SnmpValue)>> = columns
                .into_iter()
                .map(|set| {
                    let mut rows: Vec<_> = set.iter().map(|c| (IndexText::of(c), SnmpValue::Null)).collect();
                    rows.sort_by(|a, b| a.0.cmp(&b.0));
                    rows
                })
                .collect();
            if repeat_first {
                if let Some(first) = columns.first().cloned() {
                    columns.push(first);
                }
            }
            let expected: Vec<&str> = columns
                .iter()
                .flat_map(|c| c.iter().map(|(k, _)| k.as_str()))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let union: Vec<&str> = union_of_sorted(columns.iter().map(Vec::as_slice))
                .into_iter()
                .map(IndexText::as_str)
                .collect();
            proptest::prop_assert_eq!(union, expected);
        }
    }

    /// The polled columns (dot3Stats* of EtherLike-MIB among them) are what their names say
    /// in the built-in MIBs.
    #[test]
    fn polled_columns_are_the_built_in_mibs_names() {
        let mibs = crate::mib::Mibs::builtin();
        for (name, table, column) in COLUMNS {
            let module = if table == DOT3_STATS_TABLE {
                "EtherLike-MIB"
            } else {
                "IF-MIB"
            };
            let oid = mibs.resolve(&format!("{module}::{name}")).unwrap();
            assert_eq!(
                oid.to_dotted_leading(),
                format!(".{table}.{column}"),
                "{name}"
            );
        }
    }
}
