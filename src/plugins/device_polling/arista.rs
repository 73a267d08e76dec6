//! `plugin_polling_arista_device_metrics`: Arista EOS CPU, memory, environment and storage
//! from HOST-RESOURCES-MIB, ENTITY-MIB and ENTITY-SENSOR-MIB (spec 16 §5).
//!
//! Sections, each under its own status key: `cpu` (one group per core, the aggregate row 1
//! skipped), `memory` (RAM minus cache, hrStorage rows 1 and 3 hard-coded as on EOS),
//! `environment` (temperatures, power supplies, fans) and `storage` (flash and virtual
//! memory). The status gauge is `status`: the original builds its status with
//! `PanoptesPollingStatus`'s defaults and never reads `polling_status_metric_name`.

use indexmap::IndexMap;

use super::entity::{EntityClass, ENT_PHYSICAL_DESCR};
use super::sensor::{fahrenheit, in_units};
use super::{
    difference, last_arc, product, py_int, sum, Device, Object, Outcome, PowerSupplies, Report,
    SectionError,
};
use crate::config::PluginConfig;
use crate::model::{ModelError, Resource};
use crate::plugins::PluginError;
use crate::snmp::SnmpClient;

/// The status gauge's name: the original's default, whatever the plugin file says.
pub const STATUS_METRIC: &str = "status";

const HR_STORAGE_ENTRY: Object = Object {
    name: "hrStorageEntry",
    oid: ".1.3.6.1.2.1.25.2.3.1",
};
const HR_STORAGE_TYPE: Object = Object {
    name: "hrStorageType",
    oid: ".1.3.6.1.2.1.25.2.3.1.2",
};
const HR_STORAGE_DESCR: Object = Object {
    name: "hrStorageDescr",
    oid: ".1.3.6.1.2.1.25.2.3.1.3",
};
const HR_STORAGE_UNITS: Object = Object {
    name: "hrStorageAllocationUnits",
    oid: ".1.3.6.1.2.1.25.2.3.1.4",
};
const HR_STORAGE_SIZE: Object = Object {
    name: "hrStorageSize",
    oid: ".1.3.6.1.2.1.25.2.3.1.5",
};
const HR_STORAGE_USED: Object = Object {
    name: "hrStorageUsed",
    oid: ".1.3.6.1.2.1.25.2.3.1.6",
};
/// hrStorageTypes values (OIDs, as the agent returns them in hrStorageType).
const HR_STORAGE_VIRTUAL_MEMORY: &str = ".1.3.6.1.2.1.25.2.1.3";
const HR_STORAGE_FLASH_MEMORY: &str = ".1.3.6.1.2.1.25.2.1.9";

const HR_PROCESSOR_LOAD: Object = Object {
    name: "hrProcessorLoad",
    oid: ".1.3.6.1.2.1.25.3.3.1.2",
};
const HR_DEVICE_DESCR: Object = Object {
    name: "hrDeviceDescr",
    oid: ".1.3.6.1.2.1.25.3.2.1.3",
};

const ENT_PHY_SENSOR_ENTRY: Object = Object {
    name: "entPhySensorEntry",
    oid: ".1.3.6.1.2.1.99.1.1.1",
};
const ENT_PHY_SENSOR_SCALE: Object = Object {
    name: "entPhySensorScale",
    oid: ".1.3.6.1.2.1.99.1.1.1.2",
};
const ENT_PHY_SENSOR_VALUE: Object = Object {
    name: "entPhySensorValue",
    oid: ".1.3.6.1.2.1.99.1.1.1.4",
};
/// On EOS a power supply's input-current sensor is the supply's entity index + 102: the
/// supply is on when that current is above 0.
const INPUT_CURRENT_SENSOR_OFFSET: i128 = 102;

const CPU: &str = "cpu";
const MEMORY: &str = "memory";
const ENVIRONMENT: &str = "environment";
const STORAGE: &str = "storage";

/// What the plugin file sets: only `[main] execute_frequency`.
#[derive(Debug, Clone)]
pub struct Options {
    pub interval: u64,
}

impl Options {
    pub fn from_plugin(plugin: &PluginConfig) -> Options {
        Options {
            interval: plugin.execute_frequency,
        }
    }
}

/// Polls the device: the groups of every section that worked and the status group.
pub async fn poll(
    client: Result<&mut SnmpClient, PluginError>,
    resource: &Resource,
    options: &Options,
    now: f64,
) -> Result<Outcome, ModelError> {
    let mut report = Report::new(
        "plugin_polling_arista_device_metrics",
        resource,
        options.interval,
        now,
    );
    if let Some(device) = report.connected(client) {
        let mut arista = Arista { device };
        arista.cpu(&mut report).await;
        arista.memory(&mut report).await;
        arista.environment(&mut report).await;
        arista.storage(&mut report).await;
    }
    report.finish(STATUS_METRIC)
}

/// The original's Celsius reading: EOS reports deci-degrees whatever the sensor's
/// precision says, so the value is divided by 10 before the scale applies. No range
/// filter (unlike ASR).
pub fn temperature(value: i128, scale: i128, entity: &str) -> Result<f64, SectionError> {
    Ok(fahrenheit(in_units(value as f64 / 10.0, scale, entity)?))
}

struct Arista<'a> {
    device: Device<'a>,
}

/// One core's load.
struct Core {
    util: i128,
    name: String,
}

/// A temperature sensor as the collector leaves it: `fahrenheit` is `None` when reading it
/// failed after the entry was made (the builder then stops there, as the original's does).
struct Temperature {
    sensor: String,
    fahrenheit: Option<f64>,
}

struct Fans {
    total: usize,
    ok: usize,
}

/// A flash or virtual-memory hrStorage row, read.
struct Storage {
    kind: &'static str,
    used: i128,
    total: i128,
}

impl Arista<'_> {
    async fn cpu(&mut self, r: &mut Report<'_>) {
        match self.cores().await {
            Err(e) => r.failure(CPU, e),
            Ok(cores) => {
                let built = cores.iter().try_for_each(|(id, core)| {
                    let cpu_no = format!("1.{id}");
                    let g = r.gauges(
                        "cpu",
                        &[
                            ("cpu_type", "ctrl"),
                            ("cpu_no", &cpu_no),
                            ("cpu_name", &core.name),
                        ],
                        &[("cpu_utilization", core.util)],
                    )?;
                    r.add(g);
                    Ok(())
                });
                r.settle(CPU, built);
            }
        }
    }

    /// Per core (hrProcessorLoad row other than 1): its load and `<hrDeviceDescr.1>/<its
    /// hrDeviceDescr>`. Any failure drops every core, as the original pops them all.
    async fn cores(&mut self) -> Result<IndexMap<i128, Core>, SectionError> {
        let loads = self.device.walk(&HR_PROCESSOR_LOAD).await?;
        if loads.is_empty() {
            return Err(SectionError::NoRows {
                name: HR_PROCESSOR_LOAD.name,
                oid: HR_PROCESSOR_LOAD.oid,
            });
        }
        let mut cores = IndexMap::new();
        for (index, value) in loads.indexed() {
            let name = format!("{}.{index}", HR_PROCESSOR_LOAD.name);
            let oid = HR_PROCESSOR_LOAD.at(index);
            let id = py_int(&name, &oid, last_arc(index))?;
            if id == 1 {
                // The aggregate of all cores: only the cores are reported.
                continue;
            }
            let util = py_int(&name, &oid, value)?;
            let descriptions = self.device.walk_cached(&HR_DEVICE_DESCR).await?;
            let core = descriptions.text(&HR_DEVICE_DESCR, &id.to_string())?;
            let model = descriptions.text(&HR_DEVICE_DESCR, "1")?;
            let name = format!("{model}/{core}");
            cores.insert(id, Core { util, name });
        }
        Ok(cores)
    }

    async fn memory(&mut self, r: &mut Report<'_>) {
        match self.dram().await {
            Err(e) => r.failure(MEMORY, e),
            Ok((used, total)) => {
                let built = r
                    .gauges(
                        "memory",
                        &[("memory_type", "dram")],
                        &[("memory_used", used), ("memory_total", total)],
                    )
                    .map(|g| r.add(g));
                r.settle(MEMORY, built);
            }
        }
    }

    /// (used, total) bytes: hrStorage row 1 is the RAM and row 3 its cache on EOS, and
    /// cache does not count as used.
    async fn dram(&mut self) -> Result<(i128, i128), SectionError> {
        let hr = self.device.walk_cached(&HR_STORAGE_ENTRY).await?;
        let units = hr.int(&HR_STORAGE_UNITS, "1")?;
        let used = difference(
            hr.int(&HR_STORAGE_USED, "1")?,
            hr.int(&HR_STORAGE_USED, "3")?,
            "memory_used",
        )?;
        let used = product(used, units, "memory_used")?;
        let total = product(hr.int(&HR_STORAGE_SIZE, "1")?, units, "memory_total")?;
        Ok((used, total))
    }

    async fn environment(&mut self, r: &mut Report<'_>) {
        let mut temperatures = IndexMap::new();
        if let Err(e) = self.temperatures(&mut temperatures).await {
            r.failure(ENVIRONMENT, e);
        }
        let power = self
            .power()
            .await
            .map_err(|e| r.failure(ENVIRONMENT, e))
            .ok();
        let fans = self
            .fans()
            .await
            .map_err(|e| r.failure(ENVIRONMENT, e))
            .ok();

        r.temperatures(ENVIRONMENT, &temperatures, "sensor", |entity, t| {
            let value = t.fahrenheit.ok_or_else(|| SectionError::Incomplete {
                what: format!("temperature sensor {entity} (`{}`)", t.sensor),
                why: "its reading failed, so it has no temperature".to_string(),
            })?;
            Ok((t.sensor.clone(), value))
        });
        if let Some(p) = power {
            r.power_supplies(ENVIRONMENT, &p);
        }
        if let Some(f) = fans {
            let built = r
                .gauges(
                    "environment",
                    &[],
                    &[("fans_total", f.total as i128), ("fans_ok", f.ok as i128)],
                )
                .map(|g| r.add(g));
            r.settle(ENVIRONMENT, built);
        }
    }

    /// Sensors whose entity mentions `temp`/`Temp`, by entity index. An entry is made
    /// (named by entPhysicalDescr: EOS leaves entPhysicalName blank) before its reading is
    /// taken, so a failing reading leaves it without a temperature, as in the original.
    async fn temperatures(
        &mut self,
        out: &mut IndexMap<String, Temperature>,
    ) -> Result<(), SectionError> {
        let entities = self.device.entities().await?;
        for entity in entities.matching(EntityClass::Sensor, &["temp", "Temp"])? {
            let sensor = entities.text(&ENT_PHYSICAL_DESCR, &entity)?.to_string();
            out.insert(
                entity.clone(),
                Temperature {
                    sensor,
                    fahrenheit: None,
                },
            );
            let sensors = self.device.walk_cached(&ENT_PHY_SENSOR_ENTRY).await?;
            let value = sensors.int(&ENT_PHY_SENSOR_VALUE, &entity)?;
            let scale = sensors.int(&ENT_PHY_SENSOR_SCALE, &entity)?;
            let f = temperature(value, scale, &entity)?;
            if let Some(t) = out.get_mut(&entity) {
                t.fahrenheit = Some(f);
            }
        }
        Ok(())
    }

    /// Power supplies (`PowerSupply` in any column): every match counts towards the total;
    /// a supply is on when its input current is above 0.
    async fn power(&mut self) -> Result<PowerSupplies, SectionError> {
        let entities = self.device.entities().await?;
        let supplies = entities.matching(EntityClass::PowerSupply, &["PowerSupply"])?;
        let mut on: IndexMap<&str, bool> = IndexMap::new();
        for entity in &supplies {
            // The original reads the description (and fails without one), then ignores it.
            entities.text(&ENT_PHYSICAL_DESCR, entity)?;
            let sensors = self.device.walk_cached(&ENT_PHY_SENSOR_ENTRY).await?;
            let number = py_int("entity index", entity, entity)?;
            let current = sum(number, INPUT_CURRENT_SENSOR_OFFSET, "input current sensor")?;
            let amps = sensors.int(&ENT_PHY_SENSOR_VALUE, &current.to_string())?;
            on.insert(entity, amps > 0);
        }
        Ok(PowerSupplies {
            total: supplies.len(),
            on: on.values().filter(|on| **on).count(),
        })
    }

    /// Fans (`Fan 1 Sensor 1` sensors): a fan is ok when its speed is above 0.
    async fn fans(&mut self) -> Result<Fans, SectionError> {
        let entities = self.device.entities().await?;
        let fans = entities.matching(EntityClass::Sensor, &["Fan 1 Sensor 1"])?;
        let mut ok = 0;
        for entity in &fans {
            let sensors = self.device.walk_cached(&ENT_PHY_SENSOR_ENTRY).await?;
            if sensors.int(&ENT_PHY_SENSOR_VALUE, entity)? > 0 {
                ok += 1;
            }
        }
        Ok(Fans {
            total: fans.len(),
            ok,
        })
    }

    async fn storage(&mut self, r: &mut Report<'_>) {
        let mut storage = IndexMap::new();
        if let Err(e) = self.storage_rows(&mut storage).await {
            r.failure(STORAGE, e);
        }
        if storage.is_empty() {
            return;
        }
        let built = storage.iter().try_for_each(|(descr, row)| {
            let row = row.as_ref().ok_or_else(|| SectionError::Incomplete {
                what: format!("storage `{descr}`"),
                why: "reading its hrStorage row failed".to_string(),
            })?;
            let g = r.gauges(
                "storage",
                &[("storage_type", row.kind), ("storage_entity", descr)],
                &[("storage_used", row.used), ("storage_total", row.total)],
            )?;
            r.add(g);
            Ok(())
        });
        r.settle(STORAGE, built);
    }

    /// Flash and virtual-memory hrStorage rows, keyed by description (a repeated
    /// description keeps the last row). Rows are picked as the original picks them: the
    /// row's full OID contains hrStorageType's and its value contains one of the two type
    /// OIDs. A row is entered before it is read, so a failure leaves it unfinished.
    async fn storage_rows(
        &mut self,
        out: &mut IndexMap<String, Option<Storage>>,
    ) -> Result<(), SectionError> {
        let hr = self.device.walk_cached(&HR_STORAGE_ENTRY).await?;
        let mut indices = Vec::new();
        for (oid, value) in hr.rows() {
            if oid.contains(HR_STORAGE_TYPE.oid) {
                for kind in [HR_STORAGE_FLASH_MEMORY, HR_STORAGE_VIRTUAL_MEMORY] {
                    if value.contains(kind) {
                        indices.push(last_arc(oid));
                    }
                }
            }
        }
        for index in indices {
            let descr = hr.text(&HR_STORAGE_DESCR, index)?.to_string();
            out.insert(descr.clone(), None);
            let units = hr.int(&HR_STORAGE_UNITS, index)?;
            let used = product(hr.int(&HR_STORAGE_USED, index)?, units, "storage_used")?;
            let total = product(hr.int(&HR_STORAGE_SIZE, index)?, units, "storage_total")?;
            let kind = match hr.text(&HR_STORAGE_TYPE, index)? {
                HR_STORAGE_VIRTUAL_MEMORY => "virtual",
                HR_STORAGE_FLASH_MEMORY => "flash",
                other => {
                    return Err(SectionError::StorageType {
                        index: index.to_string(),
                        value: other.to_string(),
                    })
                }
            };
            out.insert(descr, Some(Storage { kind, used, total }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_resources_objects_are_the_built_in_mibs_names() {
        crate::plugins::device_polling::assert_named_in(
            "HOST-RESOURCES-MIB",
            &[
                HR_STORAGE_ENTRY,
                HR_STORAGE_TYPE,
                HR_STORAGE_DESCR,
                HR_STORAGE_UNITS,
                HR_STORAGE_SIZE,
                HR_STORAGE_USED,
                HR_PROCESSOR_LOAD,
                HR_DEVICE_DESCR,
            ],
        );
        let mibs = crate::mib::Mibs::builtin();
        for (name, oid) in [
            (
                "HOST-RESOURCES-TYPES::hrStorageVirtualMemory",
                HR_STORAGE_VIRTUAL_MEMORY,
            ),
            (
                "HOST-RESOURCES-TYPES::hrStorageFlashMemory",
                HR_STORAGE_FLASH_MEMORY,
            ),
        ] {
            assert_eq!(
                mibs.resolve(name).unwrap().to_dotted_leading(),
                oid,
                "{name}"
            );
        }
    }

    #[test]
    fn readings_are_deci_degrees_then_scaled() {
        // The case's sensors: Cpu 503, Front-panel 287, VRM 1 4210 at milli, PSU2 0.
        assert_eq!(temperature(503, 9, "100004001"), Ok(122.54));
        assert_eq!(temperature(287, 9, "100006001"), Ok(83.66));
        assert_eq!(temperature(4210, 8, "100006003"), Ok(107.78));
        assert_eq!(temperature(352, 9, "100601111"), Ok(95.36));
        // No range filter on Arista: 0 is 32 F, and kept.
        assert_eq!(temperature(0, 9, "100602111"), Ok(32.0));
        // 14 and 15 swapped: 0.1 * 10^6 C and 0.1 * 10^5 C.
        assert_eq!(temperature(1, 14, "e"), Ok(180032.0));
        assert_eq!(temperature(1, 15, "e"), Ok(18032.0));
    }
}
