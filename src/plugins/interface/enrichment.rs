//! Interface enrichment (`plugin_enrichment_interface` and its Arista, Cisco and Juniper
//! variants): walks ifTable/ifXTable once per `execute_frequency` and stores, per
//! interface index, the names, type and speeds that polling turns into dimensions
//! (spec §8.1): eleven fields per interface, for every variant (the original's current
//! code; its oldest recorded output of the base variant has only six). The variants differ
//! in port speeds and in how a parent interface is named.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{ascii_text, if_type_name, walk_columns, Column, IF_TABLE, IF_X_TABLE, NOT_SET};
use crate::model::{EnrichmentGroup, EnrichmentGroupSet, Resource};
use crate::plugins::PluginError;
use crate::snmp::{SnmpClient, SnmpValue};

pub const NAMESPACE: &str = "interface";

/// Which variant: they differ in port speeds and parent interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Generic,
    Arista,
    Cisco,
    Juniper,
}

/// The columns walked, in the original's order.
struct Walked {
    if_type: Column,
    descr: Column,
    name: Column,
    alias: Column,
    high_speed: Column,
    speed: Column,
    phys: Column,
}

async fn walk(client: &mut SnmpClient) -> Result<Walked, PluginError> {
    let [if_type, descr, name, alias, high_speed, speed, phys] = walk_columns(
        client,
        [
            (IF_TABLE, 3),
            (IF_TABLE, 2),
            (IF_X_TABLE, 1),
            (IF_X_TABLE, 18),
            (IF_X_TABLE, 15),
            (IF_TABLE, 5),
            (IF_TABLE, 6),
        ],
    )
    .await?;
    Ok(Walked {
        if_type,
        descr,
        name,
        alias,
        high_speed,
        speed,
        phys,
    })
}

/// Runs the base enrichment against a device and returns its group set.
pub async fn run(
    client: &mut SnmpClient,
    resource: &Resource,
    ttl: u64,
    execute_frequency: u64,
    now: f64,
) -> Result<EnrichmentGroupSet, PluginError> {
    run_vendor(
        client,
        resource,
        Vendor::Generic,
        ttl,
        execute_frequency,
        now,
    )
    .await
}

/// Runs one variant of the enrichment and returns its group set.
pub async fn run_vendor(
    client: &mut SnmpClient,
    resource: &Resource,
    vendor: Vendor,
    ttl: u64,
    execute_frequency: u64,
    now: f64,
) -> Result<EnrichmentGroupSet, PluginError> {
    let walked = walk(client).await?;
    let mut group = EnrichmentGroup::new(NAMESPACE, ttl, execute_frequency, now);
    let model = resource.metadata.get("model").map(String::as_str);
    for (index, fields) in interfaces(&walked, vendor, model) {
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

/// One interface as the original's interface table holds it before parents are added.
struct Interface {
    index: String,
    name: String,
    description: String,
    media_type: String,
    alias: String,
    configured_speed: i128,
    port_speed: i128,
    physical_address: String,
}

/// Indices in the order the device lists them (numeric, component by component).
fn numeric_order(indices: BTreeSet<&String>) -> Vec<&String> {
    let mut v: Vec<&String> = indices.into_iter().collect();
    // Each index's components parsed once, not at every comparison.
    v.sort_by_cached_key(|i| {
        i.split('.')
            .map(|c| c.parse::<u64>().unwrap_or(u64::MAX))
            .collect::<Vec<_>>()
    });
    v
}

fn interfaces(
    w: &Walked,
    vendor: Vendor,
    model: Option<&str>,
) -> Vec<(String, Map<String, Value>)> {
    let columns = [
        &w.if_type,
        &w.descr,
        &w.name,
        &w.alias,
        &w.high_speed,
        &w.speed,
        &w.phys,
    ];
    let indices: BTreeSet<&String> = columns.iter().flat_map(|c| c.keys()).collect();
    let table: Vec<Interface> = numeric_order(indices)
        .into_iter()
        .map(|index| {
            // A missing name or description is `<not set>`, an empty one stays empty; an
            // alias is `<not set>` either way (as the original).
            let text = |c: &Column| c.get(index).map(ascii_text);
            let name = text(&w.name).unwrap_or_else(|| NOT_SET.into());
            let configured_speed = configured_speed(w.high_speed.get(index), w.speed.get(index));
            Interface {
                index: index.clone(),
                port_speed: port_speed(vendor, &name, configured_speed, model),
                name,
                description: text(&w.descr).unwrap_or_else(|| NOT_SET.into()),
                media_type: w
                    .if_type
                    .get(index)
                    .and_then(SnmpValue::as_i128)
                    .and_then(if_type_name)
                    .unwrap_or(NOT_SET)
                    .to_string(),
                alias: text(&w.alias)
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| NOT_SET.into()),
                configured_speed,
                physical_address: physical_address(w.phys.get(index)),
            }
        })
        .collect();
    table
        .iter()
        .map(|i| {
            let mut f = Map::new();
            f.insert("interface_name".into(), i.name.clone().into());
            f.insert("description".into(), i.description.clone().into());
            f.insert("media_type".into(), i.media_type.clone().into());
            f.insert("alias".into(), i.alias.clone().into());
            f.insert("configured_speed".into(), json_int(i.configured_speed));
            f.insert("port_speed".into(), json_int(i.port_speed));
            let parent = parent_name(vendor, &i.name);
            let (media, configured, port) = match vendor {
                // Arista: the parent is a 4-lane port of which this is one lane.
                Vendor::Arista => {
                    let speed = if parent == NOT_SET {
                        -1
                    } else {
                        4 * i.configured_speed
                    };
                    (i.media_type.clone(), speed, speed)
                }
                // The parent is whichever interface bears that name (the first one).
                // A parent name of `<not set>` matches an interface without a name,
                // as in the original (so on a device with a nameless interface every
                // interface without a parent takes that one's type and speeds).
                _ => match table.iter().find(|p| p.name == parent) {
                    Some(p) => (p.media_type.clone(), p.configured_speed, p.port_speed),
                    None => (NOT_SET.to_string(), -1, -1),
                },
            };
            f.insert("parent_interface_name".into(), parent.into());
            f.insert("parent_interface_media_type".into(), media.into());
            f.insert(
                "parent_interface_configured_speed".into(),
                json_int(configured),
            );
            f.insert("parent_interface_port_speed".into(), json_int(port));
            f.insert("physical_address".into(), i.physical_address.clone().into());
            (i.index.clone(), f)
        })
        .collect()
}

/// The speed of the physical port, which some vendors encode in the interface name.
fn port_speed(vendor: Vendor, name: &str, configured: i128, model: Option<&str>) -> i128 {
    const G: i128 = 1_000_000_000;
    match vendor {
        Vendor::Cisco if name.starts_with("Gi") => G,
        Vendor::Cisco if name.starts_with("Te") => 10 * G,
        Vendor::Juniper if name.starts_with("ge") => G,
        Vendor::Juniper if name.starts_with("xe") => 10 * G,
        Vendor::Juniper if name.starts_with("xle") || name.starts_with("fte") => 40 * G,
        Vendor::Juniper if name.starts_with("et") => {
            if matches!(model, Some("QFX5200" | "QFX10000")) {
                100 * G
            } else {
                40 * G
            }
        }
        _ => configured,
    }
}

/// The parent interface's name by the vendor's naming scheme, or `<not set>`.
fn parent_name(vendor: Vendor, name: &str) -> String {
    let before = |sep: char| name.split(sep).next().unwrap_or(name).to_string();
    match vendor {
        Vendor::Generic => NOT_SET.to_string(),
        Vendor::Arista if name.contains('/') => before('/'),
        Vendor::Cisco if name.contains('.') => before('.'),
        Vendor::Juniper if name.contains(':') && name.contains('.') => before('.'),
        Vendor::Juniper if name.contains(':') => before(':'),
        Vendor::Juniper if name.contains('.') => before('.'),
        _ => NOT_SET.to_string(),
    }
}

/// `AA:BB:CC:DD:EE:FF`: every byte of ifPhysAddress as upper-case hex; empty or missing
/// is `<not set>`.
fn physical_address(v: Option<&SnmpValue>) -> String {
    match v.and_then(SnmpValue::as_bytes) {
        Some(bytes) if !bytes.is_empty() => bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
        _ => NOT_SET.to_string(),
    }
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

    /// A walked column from (index, value) pairs.
    fn col(pairs: &[(&str, SnmpValue)]) -> Column {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn s(t: &str) -> SnmpValue {
        SnmpValue::OctetString(t.as_bytes().to_vec())
    }

    #[test]
    fn arista_parents_are_four_lanes_of_their_own_port() {
        let w = Walked {
            if_type: col(&[("1", SnmpValue::Integer(6)), ("2", SnmpValue::Integer(24))]),
            descr: col(&[("1", s("Ethernet49/1")), ("2", s("Loopback0"))]),
            name: col(&[("1", s("Ethernet49/1")), ("2", s("Loopback0"))]),
            alias: Column::new(),
            high_speed: col(&[
                ("1", SnmpValue::Gauge32(25_000)),
                ("2", SnmpValue::Gauge32(0)),
            ]),
            speed: col(&[
                ("1", SnmpValue::Gauge32(u32::MAX)),
                ("2", SnmpValue::Gauge32(0)),
            ]),
            phys: col(&[("1", SnmpValue::OctetString(vec![0, 0x1c, 0x73, 1, 2, 3]))]),
        };
        let rows: std::collections::BTreeMap<String, Map<String, Value>> =
            interfaces(&w, Vendor::Arista, None).into_iter().collect();
        let lane = &rows["1"];
        assert_eq!(lane["parent_interface_name"], "Ethernet49");
        assert_eq!(lane["configured_speed"], 25_000_000_000i64);
        assert_eq!(
            lane["parent_interface_configured_speed"],
            100_000_000_000i64
        );
        assert_eq!(lane["parent_interface_port_speed"], 100_000_000_000i64);
        assert_eq!(lane["parent_interface_media_type"], "ethernetCsmacd");
        assert_eq!(lane["physical_address"], "00:1C:73:01:02:03");
        let lo = &rows["2"];
        assert_eq!(lo["parent_interface_name"], NOT_SET);
        assert_eq!(lo["parent_interface_configured_speed"], -1);
        assert_eq!(lo["parent_interface_media_type"], "softwareLoopback");
        assert_eq!(lo["physical_address"], NOT_SET);
        // The base variant writes all eleven fields too: no parent by name, a MAC address.
        let base: std::collections::BTreeMap<String, Map<String, Value>> =
            interfaces(&w, Vendor::Generic, None).into_iter().collect();
        assert!(base.values().all(|f| f.len() == 11), "{base:?}");
        assert_eq!(base["1"]["parent_interface_name"], NOT_SET);
        assert_eq!(base["1"]["parent_interface_media_type"], NOT_SET);
        assert_eq!(base["1"]["parent_interface_configured_speed"], -1);
        assert_eq!(base["1"]["parent_interface_port_speed"], -1);
        assert_eq!(base["1"]["physical_address"], "00:1C:73:01:02:03");
    }

    /// A missing name or description is `<not set>`; an empty one stays empty, and then
    /// an interface without a parent does not take the nameless one's type and speeds.
    /// A nameless interface (no ifName row) is what `<not set>` parents resolve to.
    #[test]
    fn missing_and_empty_names_differ() {
        let w = Walked {
            if_type: col(&[("1", SnmpValue::Integer(6)), ("2", SnmpValue::Integer(24))]),
            descr: col(&[("1", s("")), ("2", s("lo"))]),
            name: col(&[("1", s(""))]),
            alias: col(&[("1", s(""))]),
            high_speed: col(&[("1", SnmpValue::Gauge32(1000))]),
            speed: Column::new(),
            phys: Column::new(),
        };
        let rows: std::collections::BTreeMap<String, Map<String, Value>> =
            interfaces(&w, Vendor::Generic, None).into_iter().collect();
        assert_eq!(rows["1"]["interface_name"], "");
        assert_eq!(rows["1"]["description"], "");
        assert_eq!(rows["1"]["alias"], NOT_SET);
        assert_eq!(rows["2"]["interface_name"], NOT_SET);
        assert_eq!(rows["2"]["description"], "lo");
        // Interface 2 has no name: every parent named `<not set>` is interface 2.
        assert_eq!(rows["1"]["parent_interface_media_type"], "softwareLoopback");
        assert_eq!(rows["1"]["parent_interface_configured_speed"], -1);
    }

    #[test]
    fn vendor_name_rules() {
        assert_eq!(parent_name(Vendor::Cisco, "Te 1/52/3.0"), "Te 1/52/3");
        assert_eq!(parent_name(Vendor::Cisco, "Ethernet1/1"), NOT_SET);
        assert_eq!(parent_name(Vendor::Juniper, "ge-0/0/0:1.100"), "ge-0/0/0:1");
        assert_eq!(parent_name(Vendor::Juniper, "xe-0/0/0:2"), "xe-0/0/0");
        assert_eq!(parent_name(Vendor::Juniper, "lo0.16384"), "lo0");
        assert_eq!(parent_name(Vendor::Juniper, "fxp0"), NOT_SET);
        assert_eq!(parent_name(Vendor::Arista, "Ethernet49/1"), "Ethernet49");
        assert_eq!(parent_name(Vendor::Generic, "a.b"), NOT_SET);
        let g = 1_000_000_000;
        assert_eq!(
            port_speed(Vendor::Juniper, "et-0/0/0", 5, Some("QFX5200")),
            100 * g
        );
        assert_eq!(
            port_speed(Vendor::Juniper, "et-0/0/0", 5, Some("MX960")),
            40 * g
        );
        assert_eq!(port_speed(Vendor::Juniper, "fte-0/0/0", 5, None), 40 * g);
        assert_eq!(port_speed(Vendor::Juniper, "lo0", 5, None), 5);
        assert_eq!(port_speed(Vendor::Cisco, "Gi1/0/1", 5, None), g);
        assert_eq!(port_speed(Vendor::Arista, "Gi1/0/1", 5, None), 5);
        let mac = SnmpValue::OctetString(vec![0x78, 0xda, 0x6e, 0x26, 0x74, 0x87]);
        assert_eq!(physical_address(Some(&mac)), "78:DA:6E:26:74:87");
        assert_eq!(
            physical_address(Some(&SnmpValue::OctetString(vec![]))),
            NOT_SET
        );
        assert_eq!(physical_address(None), NOT_SET);
    }
}
