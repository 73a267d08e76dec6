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

/// Writes the plugins and the resource list under `dir`; returns the plugin directories
/// (discovery, enrichment, polling).
pub fn write_plugins(
    dir: &Path,
    site: &str,
    addrs: &[SocketAddr],
    interval_s: u64,
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
}
