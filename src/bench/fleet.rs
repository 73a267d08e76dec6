//! The files the benchmark's node reads: the three plugins (JSON-file discovery of the
//! simulated devices, interface enrichment, interface polling with rates), the JSON
//! resource list, and the recording the simulator serves.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The built-in 48-port switch.
pub const SWITCH48: &str = include_str!("../../resources/demo/switch48.snmprec");
const TEMPLATE_PORTS: u32 = 48;

/// IF-MIB ifTable, ifXTable and EtherLike dot3StatsTable entries: rows indexed by ifIndex.
const PER_INTERFACE: [&str; 3] = [
    "1.3.6.1.2.1.2.2.1.",
    "1.3.6.1.2.1.31.1.1.1.",
    "1.3.6.1.2.1.10.7.2.1.",
];
const IF_NUMBER: &str = "1.3.6.1.2.1.2.1.0";

/// The built-in switch resized to `interfaces` ports: interface `i` copies template port
/// `(i - 1) % 48 + 1`, with its own ifIndex and names (`GigabitEthernet{slot}/{port}`).
pub fn switch_recording(interfaces: u32) -> String {
    if interfaces == TEMPLATE_PORTS {
        return SWITCH48.to_string();
    }
    let mut out = String::new();
    for line in SWITCH48.lines() {
        let oid = line.split('|').next().unwrap_or("");
        if oid == IF_NUMBER {
            let _ = writeln!(out, "{IF_NUMBER}|2|{interfaces}");
            continue;
        }
        let Some((column, index)) = PER_INTERFACE
            .iter()
            .find_map(|t| oid.strip_prefix(t))
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(c, i)| Some((c, i.parse::<u32>().ok()?)))
        else {
            let _ = writeln!(out, "{line}");
            continue;
        };
        let prefix = &oid[..oid.rfind('.').map_or(0, |i| i + 1)];
        let mut copy = index;
        while copy <= interfaces {
            let slot = (copy - 1) / TEMPLATE_PORTS;
            let mut fields = line.splitn(3, '|').skip(1);
            let (tag, value) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            let value = if column == "1" && oid.starts_with(PER_INTERFACE[0]) {
                copy.to_string()
            } else if tag == "4" && slot > 0 {
                value.replacen("0/", &format!("{slot}/"), 1)
            } else {
                value.to_string()
            };
            let _ = writeln!(out, "{prefix}{copy}|{tag}|{value}");
            copy += TEMPLATE_PORTS;
        }
    }
    out
}

/// What the benchmark's node polls.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BenchPlugin {
    /// The interface plugins as a deployment runs them: enrichment, then polling of 21
    /// IF-MIB/EtherLike columns with rates on 17 counters.
    #[default]
    Interface,
    /// What Prometheus snmp_exporter's `if_mib` module reads: every ifTable and ifXTable
    /// column the device has (39 on the built-in switch), by a Generic SNMP document, no
    /// enrichment and no rates (snmp_exporter computes none): for a like-for-like
    /// comparison of the cost per varbind.
    IfMib,
}

/// ifTable and ifXTable columns: (name, column OID, how the document uses it). The
/// walker finds each in the device; a column the device lacks costs one GETBULK.
const IF_MIB_COLUMNS: &[(&str, &str, &str)] = &[
    ("ifIndex", "1.3.6.1.2.1.2.2.1.1", "dimension"),
    ("ifDescr", "1.3.6.1.2.1.2.2.1.2", "dimension"),
    ("ifType", "1.3.6.1.2.1.2.2.1.3", "gauge"),
    ("ifMtu", "1.3.6.1.2.1.2.2.1.4", "gauge"),
    ("ifSpeed", "1.3.6.1.2.1.2.2.1.5", "gauge"),
    ("ifPhysAddress", "1.3.6.1.2.1.2.2.1.6", "dimension"),
    ("ifAdminStatus", "1.3.6.1.2.1.2.2.1.7", "gauge"),
    ("ifOperStatus", "1.3.6.1.2.1.2.2.1.8", "gauge"),
    ("ifLastChange", "1.3.6.1.2.1.2.2.1.9", "gauge"),
    ("ifInOctets", "1.3.6.1.2.1.2.2.1.10", "counter"),
    ("ifInUcastPkts", "1.3.6.1.2.1.2.2.1.11", "counter"),
    ("ifInNUcastPkts", "1.3.6.1.2.1.2.2.1.12", "counter"),
    ("ifInDiscards", "1.3.6.1.2.1.2.2.1.13", "counter"),
    ("ifInErrors", "1.3.6.1.2.1.2.2.1.14", "counter"),
    ("ifInUnknownProtos", "1.3.6.1.2.1.2.2.1.15", "counter"),
    ("ifOutOctets", "1.3.6.1.2.1.2.2.1.16", "counter"),
    ("ifOutUcastPkts", "1.3.6.1.2.1.2.2.1.17", "counter"),
    ("ifOutNUcastPkts", "1.3.6.1.2.1.2.2.1.18", "counter"),
    ("ifOutDiscards", "1.3.6.1.2.1.2.2.1.19", "counter"),
    ("ifOutErrors", "1.3.6.1.2.1.2.2.1.20", "counter"),
    ("ifName", "1.3.6.1.2.1.31.1.1.1.1", "dimension"),
    ("ifInMulticastPkts", "1.3.6.1.2.1.31.1.1.1.2", "counter"),
    ("ifInBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.3", "counter"),
    ("ifOutMulticastPkts", "1.3.6.1.2.1.31.1.1.1.4", "counter"),
    ("ifOutBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.5", "counter"),
    ("ifHCInOctets", "1.3.6.1.2.1.31.1.1.1.6", "counter"),
    ("ifHCInUcastPkts", "1.3.6.1.2.1.31.1.1.1.7", "counter"),
    ("ifHCInMulticastPkts", "1.3.6.1.2.1.31.1.1.1.8", "counter"),
    ("ifHCInBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.9", "counter"),
    ("ifHCOutOctets", "1.3.6.1.2.1.31.1.1.1.10", "counter"),
    ("ifHCOutUcastPkts", "1.3.6.1.2.1.31.1.1.1.11", "counter"),
    ("ifHCOutMulticastPkts", "1.3.6.1.2.1.31.1.1.1.12", "counter"),
    ("ifHCOutBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.13", "counter"),
    ("ifLinkUpDownTrapEnable", "1.3.6.1.2.1.31.1.1.1.14", "gauge"),
    ("ifHighSpeed", "1.3.6.1.2.1.31.1.1.1.15", "gauge"),
    ("ifPromiscuousMode", "1.3.6.1.2.1.31.1.1.1.16", "gauge"),
    ("ifConnectorPresent", "1.3.6.1.2.1.31.1.1.1.17", "gauge"),
    ("ifAlias", "1.3.6.1.2.1.31.1.1.1.18", "dimension"),
    (
        "ifCounterDiscontinuityTime",
        "1.3.6.1.2.1.31.1.1.1.19",
        "gauge",
    ),
];

/// The Generic SNMP document of [`BenchPlugin::IfMib`]: one `interface` group a row, the
/// string columns as dimensions, every other column a metric under its MIB name.
pub fn if_mib_document() -> serde_json::Value {
    let mut oids = serde_json::Map::new();
    let mut dimensions = serde_json::Map::new();
    let mut metrics = serde_json::Map::new();
    for (name, oid, kind) in IF_MIB_COLUMNS {
        oids.insert(
            (*name).into(),
            serde_json::json!({"method": "bulk_walk", "oid": oid}),
        );
        let value = format!("{name}.$index");
        if *kind == "dimension" {
            dimensions.insert((*name).into(), value.into());
        } else {
            metrics.insert(
                (*name).into(),
                serde_json::json!({"metric_type": kind, "value": value}),
            );
        }
    }
    serde_json::json!({
        "oids": oids,
        "metrics_groups": [{
            "group_name": "interface",
            "dimensions": dimensions,
            "metrics": metrics,
        }]
    })
}

/// Writes the plugins and the resource list under `dir`; returns the plugin directories
/// (discovery, enrichment, polling).
pub fn write_plugins(
    dir: &Path,
    site: &str,
    addrs: &[SocketAddr],
    interval_s: u64,
    plugin: BenchPlugin,
) -> Result<[PathBuf; 3]> {
    let dirs = ["discovery", "enrichment", "polling"].map(|k| dir.join(k));
    for d in &dirs {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let resources: Vec<serde_json::Value> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::json!({
                "resource_plugin": "From_JSON_File_Discovery_Plugin",
                "resource_site": site,
                "resource_class": "network",
                "resource_subclass": "switch",
                "resource_type": "generic",
                "resource_id": format!("bench-{i:05}"),
                "resource_endpoint": a.ip().to_string(),
                "resource_creation_timestamp": 0,
                "resource_metadata": {
                    "_resource_ttl": "86400",
                    "model": "sim-switch",
                    "snmp_port": a.port().to_string(),
                }
            })
        })
        .collect();
    let write = |path: PathBuf, text: String| -> Result<()> {
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(
        dirs[0].join("fleet.json"),
        serde_json::to_string_pretty(&resources)?,
    )?;
    write(
        dirs[0].join("fleet.panoptes-plugin"),
        "[Core]\nName = From JSON File Discovery Plugin\nModule = plugin_discovery_from_json_file\n\n\
         [main]\n# Once: the fleet does not change during a benchmark.\nexecute_frequency = 86400\n\
         results_cache_age = 0\nresource_ttl = 86400\nconfig_file = fleet.json\n"
            .to_string(),
    )?;
    if plugin == BenchPlugin::IfMib {
        write(
            dirs[2].join("if_mib.json"),
            serde_json::to_string_pretty(&if_mib_document())?,
        )?;
        write(
            dirs[2].join("if_mib.panoptes-plugin"),
            format!(
                "[Core]\nName = IF-MIB Polling Plugin\nModule = plugin_polling_generic_snmp\n\n\
                 [main]\nexecute_frequency = {interval_s}\nresource_filter = resource_class = \"network\"\n\
                 polling_status_metric_name = polling_status\n\n\
                 [snmp]\nmax_repetitions = 25\ntimeout = 5\nretries = 1\n\n\
                 [enrichment]\nfile = if_mib.json\n"
            ),
        )?;
        return Ok(dirs);
    }
    write(
        dirs[1].join("interface.panoptes-plugin"),
        "[Core]\nName = Interface Enrichment Plugin\nModule = plugin_enrichment_interface\n\n\
         [main]\nexecute_frequency = 300\nenrichment_ttl = 900\n\
         resource_filter = resource_class = \"network\"\n\n\
         [snmp]\nmax_repetitions = 25\ntimeout = 10\nretries = 2\n"
            .to_string(),
    )?;
    write(
        dirs[2].join("interface.panoptes-plugin"),
        format!(
            "[Core]\nName = Interface Polling Plugin\nModule = plugin_polling_device_interface_metrics\n\n\
             [main]\nexecute_frequency = {interval_s}\nresource_filter = resource_class = \"network\"\n\n\
             [snmp]\nmax_repetitions = 25\ntimeout = 5\nretries = 1\n\n\
             [enrichment]\npreload = self:interface\n\n\
             [transforms]\ninterface = rate:interface:bits_in,bits_out,total_packets_in,total_packets_out,\
             unicast_packets_in,unicast_packets_out,multicast_packets_in,multicast_packets_out,\
             broadcast_packets_in,broadcast_packets_out,errors_in,errors_out,discards_in,discards_out,\
             errors_frame,errors_crc,errors_giants\n\n\
             [dimension]\ninclude_interface_index = 0\n"
        ),
    )?;
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::Recording;

    fn count(text: &str, prefix: &str) -> usize {
        text.lines().filter(|l| l.starts_with(prefix)).count()
    }

    #[test]
    fn resized_recordings_parse_and_hold_the_ports_asked_for() {
        assert_eq!(switch_recording(48), SWITCH48);
        for n in [8, 100] {
            let text = switch_recording(n);
            Recording::parse(&text, "generated").unwrap();
            assert_eq!(count(&text, "1.3.6.1.2.1.2.2.1.1."), n as usize);
            assert_eq!(count(&text, "1.3.6.1.2.1.31.1.1.1.1."), n as usize);
            assert!(text.contains(&format!("{IF_NUMBER}|2|{n}\n")));
        }
        let text = switch_recording(100);
        assert!(
            text.contains("1.3.6.1.2.1.2.2.1.1.97|2|97\n"),
            "ifIndex follows the copy"
        );
        assert!(text.contains("1.3.6.1.2.1.2.2.1.2.97|4|GigabitEthernet2/1\n"));
    }

    #[test]
    fn the_if_mib_document_reads_every_column_of_the_switch_and_compiles() {
        // Every ifTable/ifXTable column the built-in switch has, and no other: the same
        // 39 columns snmp_exporter's if_mib module walks there.
        let mut in_recording: Vec<&str> = SWITCH48
            .lines()
            .filter_map(|l| l.split('|').next())
            .filter(|o| o.starts_with(PER_INTERFACE[0]) || o.starts_with(PER_INTERFACE[1]))
            .filter_map(|o| o.rsplit_once('.').map(|(column, _)| column))
            .collect();
        in_recording.sort_unstable();
        in_recording.dedup();
        let mut ours: Vec<&str> = IF_MIB_COLUMNS.iter().map(|c| c.1).collect();
        ours.sort_unstable();
        assert_eq!(ours, in_recording);
        assert_eq!(ours.len(), 39);
        let doc = if_mib_document();
        let compiled = crate::plugins::generic_snmp::Document::compile(
            &doc,
            crate::plugins::generic_snmp::SchemaVersion::parse(None),
        )
        .unwrap();
        assert_eq!(compiled.tables.len(), 39);
        let group = &doc["metrics_groups"][0];
        assert_eq!(group["dimensions"].as_object().unwrap().len(), 5);
        assert_eq!(group["metrics"].as_object().unwrap().len(), 34);
        assert_eq!(group["metrics"]["ifHCInOctets"]["metric_type"], "counter");
        assert_eq!(group["dimensions"]["ifAlias"], "ifAlias.$index");
    }
}
