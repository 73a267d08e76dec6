//! Interface enrichment (`plugin_enrichment_interface`): walks ifTable/ifXTable once per
//! `execute_frequency` and stores, per interface index, the names, type and speeds that
//! polling turns into dimensions (spec §8.1). This is the base, vendor-neutral variant.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{ascii_text, if_type_name, walk_column, Column, IF_TABLE, IF_X_TABLE, NOT_SET};
use crate::model::{EnrichmentGroup, EnrichmentGroupSet, Resource};
use crate::plugins::PluginError;
use crate::snmp::{SnmpClient, SnmpValue};

pub const NAMESPACE: &str = "interface";

/// The columns walked, in the original's order.
struct Walked {
    if_type: Column,
    descr: Column,
    name: Column,
    alias: Column,
    high_speed: Column,
    speed: Column,
}

async fn walk(client: &mut SnmpClient) -> Result<Walked, PluginError> {
    Ok(Walked {
        if_type: walk_column(client, IF_TABLE, 3).await?,
        descr: walk_column(client, IF_TABLE, 2).await?,
        name: walk_column(client, IF_X_TABLE, 1).await?,
        alias: walk_column(client, IF_X_TABLE, 18).await?,
        high_speed: walk_column(client, IF_X_TABLE, 15).await?,
        speed: walk_column(client, IF_TABLE, 5).await?,
    })
}

/// Runs the enrichment against a device and returns its group set.
pub async fn run(
    client: &mut SnmpClient,
    resource: &Resource,
    ttl: u64,
    execute_frequency: u64,
    now: f64,
) -> Result<EnrichmentGroupSet, PluginError> {
    let walked = walk(client).await?;
    let mut group = EnrichmentGroup::new(NAMESPACE, ttl, execute_frequency, now);
    for (index, fields) in interfaces(&walked) {
        group.upsert_set(&index, fields);
    }
    let mut set = EnrichmentGroupSet::new(resource.clone(), now);
    set.add_group(group).map_err(|e| {
        PluginError::Enrichment(format!(
            "device {} reported no interfaces: {e}",
            resource.endpoint
        ))
    })?;
    Ok(set)
}

fn interfaces(w: &Walked) -> Vec<(String, Map<String, Value>)> {
    let columns = [
        &w.if_type,
        &w.descr,
        &w.name,
        &w.alias,
        &w.high_speed,
        &w.speed,
    ];
    let indices: BTreeSet<&String> = columns.iter().flat_map(|c| c.keys()).collect();
    indices
        .into_iter()
        .map(|index| {
            let text = |c: &Column| c.get(index).map(ascii_text).filter(|s| !s.is_empty());
            let mut f = Map::new();
            f.insert(
                "interface_name".into(),
                text(&w.name).unwrap_or_else(|| NOT_SET.into()).into(),
            );
            f.insert(
                "description".into(),
                text(&w.descr).unwrap_or_else(|| NOT_SET.into()).into(),
            );
            let media = w
                .if_type
                .get(index)
                .and_then(SnmpValue::as_i128)
                .and_then(if_type_name)
                .unwrap_or(NOT_SET);
            f.insert("media_type".into(), media.into());
            f.insert(
                "alias".into(),
                text(&w.alias).unwrap_or_else(|| NOT_SET.into()).into(),
            );
            let speed = configured_speed(w.high_speed.get(index), w.speed.get(index));
            f.insert("configured_speed".into(), json_int(speed));
            f.insert("port_speed".into(), json_int(speed));
            (index.clone(), f)
        })
        .collect()
}

/// A JSON integer; speeds fit i64 (a value that does not is a device bug: -1).
fn json_int(v: i128) -> Value {
    i64::try_from(v).map(Value::from).unwrap_or(Value::from(-1))
}

/// bps from ifHighSpeed (Mbps) unless it is missing, 0 or 1 (then ifSpeed, which is capped
/// at 4.29 Gbps; if that is 0 too, ifHighSpeed again). Missing values give -1.
fn configured_speed(high: Option<&SnmpValue>, speed: Option<&SnmpValue>) -> i128 {
    let high = high.and_then(SnmpValue::as_i128);
    match high {
        Some(h) if h > 1 => h * 1_000_000,
        _ => match speed.and_then(SnmpValue::as_i128) {
            None => -1,
            Some(0) => high.map(|h| h * 1_000_000).unwrap_or(-1),
            Some(s) => s,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_rules() {
        let g = |n: u32| Some(SnmpValue::Gauge32(n));
        assert_eq!(
            configured_speed(g(10000).as_ref(), g(1).as_ref()),
            10_000_000_000
        );
        assert_eq!(configured_speed(g(1).as_ref(), g(1000).as_ref()), 1000);
        assert_eq!(configured_speed(None, g(1000).as_ref()), 1000);
        assert_eq!(configured_speed(g(0).as_ref(), g(0).as_ref()), 0);
        assert_eq!(configured_speed(None, g(0).as_ref()), -1);
        assert_eq!(configured_speed(None, None), -1);
    }
}
