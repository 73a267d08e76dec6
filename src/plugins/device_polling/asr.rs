//! `plugin_polling_asr_device_metrics`: Cisco ASR 1000 CPU, memory, environment, crypto
//! engine and QFP load from the Cisco process, mempool, entity-sensor, FRU-control, QFP
//! and entity-performance MIBs (spec 16 §6).
//!
//! Sections, each under its own status key: `cpu` (control-plane CPUs from
//! cpmCPUTotalTable, data-plane crypto engines), `memory` (a hard-coded mempool and the
//! QFP's), `environment` (temperatures between 33 and 200 F, power supplies), `crypto`
//! (packet counters) and `load` (the QFP's processing load). Which CPU column and which
//! averaging intervals are read depends on `execute_frequency`, as in the original. The
//! status gauge is named by `[main] polling_status_metric_name`, which is required.

use indexmap::IndexMap;

use super::entity::{EntityClass, ENT_PHYSICAL_NAME};
use super::sensor::{fahrenheit, in_units};
use super::{
    distinct, last_arc, py_int, sum, Device, Object, Outcome, PowerSupplies, Report, SectionError,
};
use crate::config::{PluginConfig, PluginFileError};
use crate::model::{is_identifier, CounterWidth, Dimension, ModelError, Resource};
use crate::plugins::PluginError;
use crate::snmp::SnmpClient;

/// CISCO-PROCESS-MIB cpmCPUTotalTable columns.
pub const CPM_CPU_TOTAL_PHYSICAL_INDEX: Object = Object {
    name: "cpmCPUTotalPhysicalIndex",
    oid: ".1.3.6.1.4.1.9.9.109.1.1.1.1.2",
};
pub const CPM_CPU_TOTAL_1MIN_REV: Object = Object {
    name: "cpmCPUTotal1minRev",
    oid: ".1.3.6.1.4.1.9.9.109.1.1.1.1.7",
};
pub const CPM_CPU_TOTAL_5MIN_REV: Object = Object {
    name: "cpmCPUTotal5minRev",
    oid: ".1.3.6.1.4.1.9.9.109.1.1.1.1.8",
};
pub const CPM_CPU_TOTAL_MON_INTERVAL_VALUE: Object = Object {
    name: "cpmCPUTotalMonIntervalValue",
    oid: ".1.3.6.1.4.1.9.9.109.1.1.1.1.10",
};

/// CISCO-ENHANCED-MEMPOOL-MIB cempMemPoolHCUsed / HCFree.
const CEMP_MEM_POOL_HC_USED: Object = Object {
    name: "cempMemPoolHCUsed",
    oid: ".1.3.6.1.4.1.9.9.221.1.1.1.1.18",
};
const CEMP_MEM_POOL_HC_FREE: Object = Object {
    name: "cempMemPoolHCFree",
    oid: ".1.3.6.1.4.1.9.9.221.1.1.1.1.20",
};
/// The `dram` pool: entity 7000, pool 1, hard-coded by the original (the route
/// processor's processor pool on its authors' devices). A device numbering its entities
/// otherwise has no `dram` group and a failed `memory` section, as with the original.
pub const DRAM_POOL: &str = "7000.1";

/// CISCO-ENTITY-SENSOR-MIB entSensorValueEntry and the columns read.
const ENT_SENSOR_VALUE_ENTRY: Object = Object {
    name: "entSensorValueEntry",
    oid: ".1.3.6.1.4.1.9.9.91.1.1.1.1",
};
const ENT_SENSOR_TYPE: Object = Object {
    name: "entSensorType",
    oid: ".1.3.6.1.4.1.9.9.91.1.1.1.1.1",
};
const ENT_SENSOR_SCALE: Object = Object {
    name: "entSensorScale",
    oid: ".1.3.6.1.4.1.9.9.91.1.1.1.1.2",
};
const ENT_SENSOR_VALUE: Object = Object {
    name: "entSensorValue",
    oid: ".1.3.6.1.4.1.9.9.91.1.1.1.1.4",
};
/// SensorDataType celsius(8).
const CELSIUS: i128 = 8;
/// Transceiver sensors whose readings the original takes as milli-degrees whatever their
/// scale says (by entPhysicalName, exactly).
const MILLI_DEGREE_SENSORS: [&str; 4] = [
    "subslot 0/0 transceiver 0 Temperature Sensor",
    "subslot 0/1 transceiver 0 Temperature Sensor",
    "subslot 0/2 transceiver 0 Temperature Sensor",
    "subslot 0/3 transceiver 0 Temperature Sensor",
];

/// CISCO-ENTITY-FRU-CONTROL-MIB cefcFRUPowerOperStatus; on(2) is on.
const CEFC_FRU_POWER_OPER_STATUS: Object = Object {
    name: "cefcFRUPowerOperStatus",
    oid: ".1.3.6.1.4.1.9.9.117.1.1.2.1.2",
};
const POWER_ON: i128 = 2;

/// CISCO-ENTITY-QFP-MIB.
const CEQFP_UTIL_PROCESSING_LOAD: Object = Object {
    name: "ceqfpUtilProcessingLoad",
    oid: ".1.3.6.1.4.1.9.9.715.1.1.6.1.14",
};
const CEQFP_MEMORY_RES_IN_USE: Object = Object {
    name: "ceqfpMemoryResInUse",
    oid: ".1.3.6.1.4.1.9.9.715.1.1.7.1.3",
};
const CEQFP_MEMORY_RES_FREE: Object = Object {
    name: "ceqfpMemoryResFree",
    oid: ".1.3.6.1.4.1.9.9.715.1.1.7.1.4",
};

/// CISCO-ENTITY-PERFORMANCE-MIB cepStatsMeasurement, indexed `<entity>.<interval>.<kind>`.
const CEP_STATS_MEASUREMENT: Object = Object {
    name: "cepStatsMeasurement",
    oid: ".1.3.6.1.4.1.9.9.756.1.3.1.2",
};
const CEP_CPU_UTIL: &str = "1";
const CEP_PACKETS_IN: &str = "5";
const CEP_PACKETS_OUT: &str = "6";

const QFP: [&str; 2] = ["qfp", "QFP"];
const CRYPTO_ASIC: [&str; 1] = ["Crypto Asic"];

const CPU: &str = "cpu";
const MEMORY: &str = "memory";
const ENVIRONMENT: &str = "environment";
const CRYPTO: &str = "crypto";
const LOAD: &str = "load";

/// What the plugin file sets.
#[derive(Debug, Clone)]
pub struct Options {
    /// `[main] execute_frequency`: the group interval, and it picks the CPU column and the
    /// averaging intervals.
    pub frequency: u64,
    /// `[main] polling_status_metric_name`.
    pub status_metric: String,
}

impl Options {
    /// Reads the plugin file; the status metric name is required (the original raises a
    /// configuration error before polling) and must be a valid metric name (the original
    /// fails building its status group after polling, so nothing is published).
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Options, PluginFileError> {
        let key = "polling_status_metric_name";
        let name = plugin
            .get("main", key)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                plugin.error(
                    "main",
                    key,
                    "required by plugin_polling_asr_device_metrics: the name of its status gauge (e.g. polling_status)",
                )
            })?;
        if !is_identifier(name) {
            return Err(plugin.error(
                "main",
                key,
                format!(
                    "`{name}` is not a metric name: a letter or `_`, then letters, digits or `_`"
                ),
            ));
        }
        Ok(Options {
            frequency: plugin.execute_frequency,
            status_metric: name.to_string(),
        })
    }
}

/// The CPU column walked: cpmCPUTotalMonIntervalValue (5 s by default, replacing the
/// deprecated 5-second column) for 5 <= f < 60, the 1-minute average for 60 <= f < 300 and
/// for f < 5, the 5-minute average from 300.
pub fn cpu_load(frequency: u64) -> Object {
    match frequency {
        5..=59 => CPM_CPU_TOTAL_MON_INTERVAL_VALUE,
        300.. => CPM_CPU_TOTAL_5MIN_REV,
        _ => CPM_CPU_TOTAL_1MIN_REV,
    }
}

/// The cepStatsMeasurement interval of the crypto engines, exactly as the original picks
/// it: its strict comparisons leave 60, 300 and everything from 900 at "2".
pub fn crypto_interval(frequency: u64) -> &'static str {
    match frequency {
        f if f < 60 => "2",
        61..=299 => "3",
        301..=899 => "4",
        _ => "2",
    }
}

/// The ceqfpUtilProcessingLoad interval (QFP utilization table index): "1" for 5 <= f <
/// 60, "2" up to 300 (and below 5), "3" up to 3600, "4" beyond.
pub fn qfp_interval(frequency: u64) -> &'static str {
    match frequency {
        5..=59 => "1",
        60..=299 => "2",
        300..=3599 => "3",
        3600.. => "4",
        _ => "2",
    }
}

/// The original's reading of a celsius sensor: whole degrees times `10 ** (scale - 9)` (no
/// division by 10, unlike Arista), the four transceiver sensors floor-divided by 1000
/// first. `None` unless 33 < F < 200: other readings are taken as bogus and dropped.
pub fn temperature(
    name: &str,
    value: i128,
    scale: i128,
    entity: &str,
) -> Result<Option<f64>, SectionError> {
    let value = if MILLI_DEGREE_SENSORS.contains(&name) {
        value.div_euclid(1000)
    } else {
        value
    };
    let f = fahrenheit(in_units(value as f64, scale, entity)?);
    Ok((33.0 < f && f < 200.0).then_some(f))
}

/// Polls the device: the groups of every section that worked and the status group.
pub async fn poll(
    client: Result<&mut SnmpClient, PluginError>,
    resource: &Resource,
    options: &Options,
    now: f64,
) -> Result<Outcome, ModelError> {
    let mut report = Report::new(
        "plugin_polling_asr_device_metrics",
        resource,
        options.frequency,
        now,
    );
    if let Some(device) = report.connected(client) {
        let mut asr = Asr {
            device,
            frequency: options.frequency,
        };
        asr.cpu(&mut report).await;
        asr.memory(&mut report).await;
        asr.environment(&mut report).await;
        asr.crypto(&mut report).await;
        asr.load(&mut report).await;
    }
    report.finish(&options.status_metric)
}

/// One `cpu` group per CPU, control plane first.
fn cpu_groups(
    r: &mut Report<'_>,
    kinds: &[(&str, Option<IndexMap<String, Cpu>>)],
) -> Result<(), SectionError> {
    for (kind, cpus) in kinds {
        for (id, cpu) in cpus.iter().flatten() {
            let g = r.gauges(
                "cpu",
                &[("cpu_type", kind), ("cpu_no", id), ("cpu_name", &cpu.name)],
                &[("cpu_utilization", cpu.util)],
            )?;
            r.add(g);
        }
    }
    Ok(())
}

/// The `dram` group, then the QFP's; without a QFP entity the original's builder fails
/// after the `dram` group (its empty `qfp` entry has no `memory_used`).
fn memory_groups(
    r: &mut Report<'_>,
    dram: Option<(i128, i128)>,
    qfp: QfpMemory,
) -> Result<(), SectionError> {
    if let Some((used, total)) = dram {
        let g = r.gauges(
            "memory",
            &[("memory_type", "dram")],
            &[("memory_used", used), ("memory_total", total)],
        )?;
        r.add(g);
    }
    match qfp {
        QfpMemory::Dropped => Ok(()),
        QfpMemory::NoEntity => Err(SectionError::Incomplete {
            what: "memory_type qfp".to_string(),
            why: "no entity of class cpu has `qfp` or `QFP` in any entPhysicalEntry column, so there is no QFP memory to report".to_string(),
        }),
        QfpMemory::Read { used, total } => {
            let g = r.gauges(
                "memory",
                &[("memory_type", "qfp")],
                &[("memory_used", used), ("memory_total", total)],
            )?;
            r.add(g);
            Ok(())
        }
    }
}

struct Asr<'a> {
    device: Device<'a>,
    frequency: u64,
}

struct Cpu {
    util: i128,
    name: String,
}

/// The QFP memory as the collector leaves it.
enum QfpMemory {
    /// Reading it failed: no group.
    Dropped,
    /// No QFP entity: the original keeps an empty entry, on which its builder fails.
    NoEntity,
    Read {
        used: i128,
        total: i128,
    },
}

/// A temperature sensor's reading.
enum Reading {
    Fahrenheit(f64),
    /// Not a celsius sensor: the original keeps the entry without a temperature, and its
    /// builder fails on it.
    NotCelsius(i128),
}

struct Temperature {
    name: String,
    reading: Reading,
}

/// A crypto engine's packet counters with their SNMP widths.
struct Crypto {
    name: String,
    packets_in: (i128, CounterWidth),
    packets_out: (i128, CounterWidth),
}

impl Asr<'_> {
    async fn cpu(&mut self, r: &mut Report<'_>) {
        let control = self
            .control_cpus()
            .await
            .map_err(|e| r.failure(CPU, e))
            .ok();
        let data = self.data_cpus().await.map_err(|e| r.failure(CPU, e)).ok();
        if control.is_none() && data.is_none() {
            return;
        }
        let built = cpu_groups(r, &[("ctrl", control), ("data", data)]);
        r.settle(CPU, built);
    }

    /// Control-plane CPUs: per row of the CPU column, its entity (cpmCPUTotalPhysicalIndex,
    /// as text: a missing one is `NOSUCHINSTANCE`) and that entity's name. Any failure
    /// drops them all.
    async fn control_cpus(&mut self) -> Result<IndexMap<String, Cpu>, SectionError> {
        let column = cpu_load(self.frequency);
        let loads = self.device.walk(&column).await?;
        if loads.is_empty() {
            return Err(SectionError::NoRows {
                name: column.name,
                oid: column.oid,
            });
        }
        let mut cpus = IndexMap::new();
        for (index, value) in loads.indexed() {
            let name = format!("{}.{index}", column.name);
            let oid = column.at(index);
            let row = py_int(&name, &oid, last_arc(index))?;
            let entity = self
                .device
                .get(&CPM_CPU_TOTAL_PHYSICAL_INDEX, &row.to_string())
                .await?
                .text;
            let util = py_int(&name, &oid, value)?;
            let entities = self.device.entities().await?;
            let cpu_name = entities.text(&ENT_PHYSICAL_NAME, &entity)?.to_string();
            cpus.insert(
                entity,
                Cpu {
                    util,
                    name: cpu_name,
                },
            );
        }
        Ok(cpus)
    }

    /// Data-plane CPUs: the crypto engines' utilization. Any failure drops them all.
    async fn data_cpus(&mut self) -> Result<IndexMap<String, Cpu>, SectionError> {
        let interval = crypto_interval(self.frequency);
        let entities = self.device.entities().await?;
        let mut cpus = IndexMap::new();
        for entity in distinct(entities.matching(EntityClass::Cpu, &CRYPTO_ASIC)?) {
            let index = format!("{entity}.{interval}.{CEP_CPU_UTIL}");
            let util = self
                .device
                .get(&CEP_STATS_MEASUREMENT, &index)
                .await?
                .int()?;
            let name = entities.text(&ENT_PHYSICAL_NAME, &entity)?.to_string();
            cpus.insert(entity, Cpu { util, name });
        }
        Ok(cpus)
    }

    async fn memory(&mut self, r: &mut Report<'_>) {
        let dram = self.dram().await.map_err(|e| r.failure(MEMORY, e)).ok();
        let qfp = match self.qfp_memory().await {
            Ok(Some((used, total))) => QfpMemory::Read { used, total },
            Ok(None) => QfpMemory::NoEntity,
            Err(e) => {
                r.failure(MEMORY, e);
                QfpMemory::Dropped
            }
        };
        if dram.is_none() && matches!(qfp, QfpMemory::Dropped) {
            return;
        }
        let built = memory_groups(r, dram, qfp);
        r.settle(MEMORY, built);
    }

    /// (used, used + free) of the hard-coded [`DRAM_POOL`].
    async fn dram(&mut self) -> Result<(i128, i128), SectionError> {
        let used = self
            .device
            .get(&CEMP_MEM_POOL_HC_USED, DRAM_POOL)
            .await?
            .int()?;
        let free = self
            .device
            .get(&CEMP_MEM_POOL_HC_FREE, DRAM_POOL)
            .await?
            .int()?;
        Ok((used, sum(used, free, "memory_total")?))
    }

    /// (used, used + free) of the QFP's memory resource 1 (its Total column reads 0 on
    /// these devices, so the original adds): the last QFP entity's, `None` without one.
    async fn qfp_memory(&mut self) -> Result<Option<(i128, i128)>, SectionError> {
        let entities = self.device.entities().await?;
        let mut memory = None;
        for entity in distinct(entities.matching(EntityClass::Cpu, &QFP)?) {
            let index = format!("{entity}.1");
            let used = self
                .device
                .get(&CEQFP_MEMORY_RES_IN_USE, &index)
                .await?
                .int()?;
            let free = self
                .device
                .get(&CEQFP_MEMORY_RES_FREE, &index)
                .await?
                .int()?;
            memory = Some((used, sum(used, free, "memory_total")?));
        }
        Ok(memory)
    }

    async fn environment(&mut self, r: &mut Report<'_>) {
        let temperatures = self
            .temperatures()
            .await
            .map_err(|e| r.failure(ENVIRONMENT, e))
            .ok();
        let power = self
            .power()
            .await
            .map_err(|e| r.failure(ENVIRONMENT, e))
            .ok();
        if let Some(temperatures) = temperatures {
            r.temperatures(
                ENVIRONMENT,
                &temperatures,
                "entity_name",
                |entity, t| match t.reading {
                    Reading::Fahrenheit(f) => Ok((t.name.clone(), f)),
                    Reading::NotCelsius(kind) => Err(SectionError::Incomplete {
                        what: format!("temperature sensor {entity} (`{}`)", t.name),
                        why: format!("entSensorType is {kind}, not celsius(8): no temperature"),
                    }),
                },
            );
        }
        if let Some(p) = power {
            r.power_supplies(ENVIRONMENT, &p);
        }
    }

    /// Sensors whose entity mentions `temp`/`Temp`, by entity index, named by
    /// entPhysicalName; readings outside 33..200 F are dropped. Any failure drops them all
    /// (the original assigns its result only at the end).
    async fn temperatures(&mut self) -> Result<IndexMap<String, Temperature>, SectionError> {
        let entities = self.device.entities().await?;
        let mut out = IndexMap::new();
        for entity in entities.matching(EntityClass::Sensor, &["temp", "Temp"])? {
            let name = entities.text(&ENT_PHYSICAL_NAME, &entity)?.to_string();
            let sensors = self.device.walk_cached(&ENT_SENSOR_VALUE_ENTRY).await?;
            let kind = sensors.int(&ENT_SENSOR_TYPE, &entity)?;
            if kind != CELSIUS {
                tracing::debug!(entity = %entity, sensor_type = kind, "entity sensor type not celsius");
                out.insert(
                    entity,
                    Temperature {
                        name,
                        reading: Reading::NotCelsius(kind),
                    },
                );
                continue;
            }
            let value = sensors.int(&ENT_SENSOR_VALUE, &entity)?;
            let scale = sensors.int(&ENT_SENSOR_SCALE, &entity)?;
            match temperature(&name, value, scale, &entity)? {
                Some(f) => {
                    out.insert(
                        entity,
                        Temperature {
                            name,
                            reading: Reading::Fahrenheit(f),
                        },
                    );
                }
                None => {
                    out.shift_remove(&entity);
                }
            }
        }
        Ok(out)
    }

    /// Power supplies (`Power Supply Module` in any column): every match counts towards
    /// the total; a supply is on when cefcFRUPowerOperStatus is on(2). An entity matched
    /// in several columns is asked once (the original asks again and keeps the last
    /// answer, the same one).
    async fn power(&mut self) -> Result<PowerSupplies, SectionError> {
        let entities = self.device.entities().await?;
        let supplies = entities.matching(EntityClass::PowerSupply, &["Power Supply Module"])?;
        let mut on: IndexMap<&str, bool> = IndexMap::new();
        for entity in &supplies {
            // Read (and required) by the original, then unused.
            entities.text(&ENT_PHYSICAL_NAME, entity)?;
            if on.contains_key(entity.as_str()) {
                continue;
            }
            let status = self
                .device
                .get(&CEFC_FRU_POWER_OPER_STATUS, entity)
                .await?
                .int()?;
            on.insert(entity, status == POWER_ON);
        }
        Ok(PowerSupplies {
            total: supplies.len(),
            on: on.values().filter(|on| **on).count(),
        })
    }

    async fn crypto(&mut self, r: &mut Report<'_>) {
        let mut engines = IndexMap::new();
        if let Err(e) = self.crypto_engines(&mut engines).await {
            r.failure(CRYPTO, e);
        }
        if engines.is_empty() {
            return;
        }
        let built = engines.iter().try_for_each(|(entity, engine)| {
            let mut g = r.group("crypto")?;
            g.add_dimension(Dimension::new("cpu_no", entity)?)?;
            let engine = engine.as_ref().ok_or_else(|| SectionError::Incomplete {
                what: format!("crypto engine {entity}"),
                why: "reading its packet counters failed".to_string(),
            })?;
            g.add_dimension(Dimension::new("cpu_name", &engine.name)?)?;
            let (packets_in, width_in) = engine.packets_in;
            let (packets_out, width_out) = engine.packets_out;
            g.add_metric(r.counter("packets_in", packets_in, width_in)?)?;
            g.add_metric(r.counter("packets_out", packets_out, width_out)?)?;
            r.add(g);
            Ok(())
        });
        r.settle(CRYPTO, built);
    }

    /// Per crypto engine, its packet counters. An engine is entered before it is read, so
    /// a failure leaves it unfinished (and the builder stops there), as in the original.
    async fn crypto_engines(
        &mut self,
        out: &mut IndexMap<String, Option<Crypto>>,
    ) -> Result<(), SectionError> {
        let entities = self.device.entities().await?;
        let interval = crypto_interval(self.frequency);
        for entity in distinct(entities.matching(EntityClass::Cpu, &CRYPTO_ASIC)?) {
            out.insert(entity.clone(), None);
            let got_in = self
                .device
                .get(
                    &CEP_STATS_MEASUREMENT,
                    &format!("{entity}.{interval}.{CEP_PACKETS_IN}"),
                )
                .await?;
            let packets_in = (got_in.int()?, got_in.counter_width());
            let got_out = self
                .device
                .get(
                    &CEP_STATS_MEASUREMENT,
                    &format!("{entity}.{interval}.{CEP_PACKETS_OUT}"),
                )
                .await?;
            let packets_out = (got_out.int()?, got_out.counter_width());
            let name = entities.text(&ENT_PHYSICAL_NAME, &entity)?.to_string();
            out.insert(
                entity,
                Some(Crypto {
                    name,
                    packets_in,
                    packets_out,
                }),
            );
        }
        Ok(())
    }

    async fn load(&mut self, r: &mut Report<'_>) {
        match self.processing_load().await {
            Err(e) => r.failure(LOAD, e),
            Ok(load) => {
                let built = r
                    .gauges("load", &[], &[("processing_load", load)])
                    .map(|g| r.add(g));
                r.settle(LOAD, built);
            }
        }
    }

    /// The first QFP entity's processing load over the frequency's interval.
    async fn processing_load(&mut self) -> Result<i128, SectionError> {
        let interval = qfp_interval(self.frequency);
        let entities = self.device.entities().await?;
        let qfp = entities.first_matching(EntityClass::Cpu, &QFP)?;
        self.device
            .get(&CEQFP_UTIL_PROCESSING_LOAD, &format!("{qfp}.{interval}"))
            .await?
            .int()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_column_follows_the_frequency() {
        for (f, oid) in [
            (1, ".1.3.6.1.4.1.9.9.109.1.1.1.1.7"),
            (4, ".1.3.6.1.4.1.9.9.109.1.1.1.1.7"),
            (5, ".1.3.6.1.4.1.9.9.109.1.1.1.1.10"),
            (59, ".1.3.6.1.4.1.9.9.109.1.1.1.1.10"),
            (60, ".1.3.6.1.4.1.9.9.109.1.1.1.1.7"),
            (299, ".1.3.6.1.4.1.9.9.109.1.1.1.1.7"),
            (300, ".1.3.6.1.4.1.9.9.109.1.1.1.1.8"),
            (86400, ".1.3.6.1.4.1.9.9.109.1.1.1.1.8"),
        ] {
            assert_eq!(cpu_load(f).oid, oid, "execute_frequency {f}");
        }
    }

    #[test]
    fn the_crypto_interval_keeps_the_original_gaps() {
        for (f, interval) in [
            (1, "2"),
            (59, "2"),
            (60, "2"),
            (61, "3"),
            (299, "3"),
            (300, "2"),
            (301, "4"),
            (899, "4"),
            (900, "2"),
            (3600, "2"),
        ] {
            assert_eq!(crypto_interval(f), interval, "execute_frequency {f}");
        }
    }

    #[test]
    fn the_qfp_interval_follows_the_frequency() {
        for (f, interval) in [
            (1, "2"),
            (4, "2"),
            (5, "1"),
            (59, "1"),
            (60, "2"),
            (299, "2"),
            (300, "3"),
            (3599, "3"),
            (3600, "4"),
            (86400, "4"),
        ] {
            assert_eq!(qfp_interval(f), interval, "execute_frequency {f}");
        }
    }

    #[test]
    fn readings_are_whole_degrees_in_range() {
        assert_eq!(temperature("Temp: Inlet R0", 27, 9, "7002"), Ok(Some(80.6)));
        assert_eq!(temperature("Temp: CPU R0", 52, 9, "7003"), Ok(Some(125.6)));
        // 290 at milli is 290 * 0.1 = 29.0 C: 84.2 F.
        assert_eq!(temperature("Temp: FC F0", 290, 8, "9004"), Ok(Some(84.2)));
        // 0 C = 32 F and 100 C = 212 F fall outside 33 < F < 200: dropped.
        assert_eq!(temperature("Temp: Outlet F0", 0, 9, "9002"), Ok(None));
        assert_eq!(temperature("Temp: Outlet F0", 100, 9, "9002"), Ok(None));
    }

    #[test]
    fn transceivers_are_milli_degrees_floor_divided() {
        let name = "subslot 0/0 transceiver 0 Temperature Sensor";
        assert_eq!(temperature(name, 34125, 9, "2010"), Ok(Some(93.2)));
        assert_eq!(temperature(name, 34999, 9, "2010"), Ok(Some(93.2)));
        // Floor, not truncation: -1 // 1000 is -1 (and -1 C is out of range).
        assert_eq!(temperature(name, -1, 9, "2010"), Ok(None));
        // Only the four names, exactly: another transceiver is whole degrees.
        assert_eq!(
            temperature(
                "subslot 0/4 transceiver 0 Temperature Sensor",
                34125,
                9,
                "e"
            ),
            Ok(None)
        );
        assert_eq!(
            temperature(
                "subslot 0/3 transceiver 0 Temperature Sensor",
                40000,
                9,
                "e"
            ),
            Ok(Some(104.0))
        );
    }
}
