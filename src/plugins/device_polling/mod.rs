//! The original's two hand-written device-metrics polling plugins (not DSL documents):
//! Arista EOS ([`arista`]) and Cisco ASR 1000 ([`asr`]). What they share lives here: the
//! typed form of the exceptions the original catches per section, SNMP access that reads
//! values as the original's easysnmp strings, walked tables keyed by full OID text, and the
//! per-section status bookkeeping of `PanoptesPollingStatus`.
//!
//! Both plugins run their sections in a fixed order, and each section records success or
//! the failure of what it tried under its own status key ("cpu", "memory", ...); a failure
//! never stops the next section. Groups already added when a builder fails stay, as in the
//! original.

pub mod arista;
pub mod asr;
mod entity;
mod sensor;

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::model::{
    CounterWidth, Dimension, Metric, MetricType, MetricValue, MetricsGroup, ModelError, Resource,
};
use crate::plugins::device_metrics::probe_text;
use crate::plugins::generic_snmp::expr::parse_py_int;
use crate::plugins::group_set::GroupSet;
use crate::plugins::status::{DeviceStatus, StatusTracker};
use crate::plugins::PluginError;
use crate::snmp::{Oid, SnmpClient, SnmpError, SnmpValue};

use entity::Entities;
pub use entity::EntityClass;

/// A MIB object the plugins read: its name (for messages) and its OID with the leading dot,
/// as the original spells it and as its maps are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub name: &'static str,
    pub oid: &'static str,
}

impl Object {
    /// `<oid>.<index>`: a row's key in a walked table, or the OID of a GET.
    pub fn at(&self, index: &str) -> String {
        format!("{}.{index}", self.oid)
    }
}

/// What a request was, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Walk,
    Get,
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Walk => "walk of",
            Request::Get => "GET of",
        })
    }
}

/// Why (part of) a section failed: the exceptions the original raises and catches per
/// section, typed. [`SectionError::status`] is what `PanoptesPollingStatus` makes of each.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SectionError {
    /// No SNMP session could be made (the original's `device` key).
    #[error("no SNMP session: {detail}")]
    Connect {
        status: DeviceStatus,
        detail: String,
    },
    #[error("{request} {name} ({oid}) failed: {detail}")]
    Snmp {
        request: Request,
        name: String,
        oid: String,
        status: DeviceStatus,
        detail: String,
    },
    /// Not sent: the device stopped answering earlier in this poll, and waiting out the
    /// timeout again would only make the poll late (the original would wait per request).
    #[error("{request} {name} ({oid}) not sent: {reason}")]
    Skipped {
        request: Request,
        name: String,
        oid: String,
        status: DeviceStatus,
        reason: String,
    },
    /// `PanoptesMetricsNullException` (MISSING_METRICS).
    #[error("walk of {name} ({oid}) returned no rows")]
    NoRows {
        name: &'static str,
        oid: &'static str,
    },
    /// A `KeyError` on a walked map.
    #[error("{name}.{index} ({oid}) is not in the walk of {table}")]
    Missing {
        name: &'static str,
        index: String,
        oid: String,
        table: &'static str,
    },
    /// A `ValueError` from `int()`.
    #[error("{name} ({oid}) is `{value}`, not an integer")]
    NotInteger {
        name: String,
        oid: String,
        value: String,
    },
    /// `ENT_PHYSICAL_CLASSES[...]` raising `KeyError`.
    #[error("entity {entity}: entPhysicalClass is {class}, not one of the classes 1 to 12")]
    UnknownClass { entity: String, class: i128 },
    /// `[...][0]` on an empty match (`IndexError`).
    #[error("no entity of class {class} has {wanted} in any entPhysicalEntry column")]
    NoEntity { class: EntityClass, wanted: String },
    /// `STORAGE_TYPE_REVERSE_MAP[...]` raising `KeyError`.
    #[error("hrStorageType.{index} is `{value}`: neither hrStorageFlashMemory nor hrStorageVirtualMemory")]
    StorageType { index: String, value: String },
    /// `10 ** (scale - 9)` too large for a float (`OverflowError`).
    #[error("entity {entity}: sensor scale {scale} is out of range")]
    Scale { entity: String, scale: i128 },
    /// A builder reached an entry its collector left unfinished (`KeyError`).
    #[error("{what}: {why}")]
    Incomplete { what: String, why: String },
    /// Arithmetic past what a metric holds (Python's integers have no bound; ours do).
    #[error("{what} does not fit a 128-bit integer")]
    Overflow { what: String },
    /// A metric or dimension the model refuses (an empty dimension value, ...).
    #[error("{0}")]
    Model(String),
}

impl SectionError {
    /// The status the original's `handle_exception` records for this failure.
    pub fn status(&self) -> DeviceStatus {
        match self {
            SectionError::Connect { status, .. }
            | SectionError::Snmp { status, .. }
            | SectionError::Skipped { status, .. } => *status,
            SectionError::NoRows { .. } => DeviceStatus::MissingMetrics,
            _ => DeviceStatus::InternalFailure,
        }
    }
}

impl From<ModelError> for SectionError {
    fn from(e: ModelError) -> SectionError {
        SectionError::Model(e.to_string())
    }
}

/// Python's `int(text)` (surrounding whitespace allowed, nothing else), naming the value.
pub(crate) fn py_int(name: &str, oid: &str, text: &str) -> Result<i128, SectionError> {
    parse_py_int(text).ok_or_else(|| SectionError::NotInteger {
        name: name.to_string(),
        oid: oid.to_string(),
        value: text.to_string(),
    })
}

/// A walked subtree keyed by full OID text (`.1.3.6...`) in walk order: the original's
/// `{ent.oid + '.' + ent.index: value}` maps, with Python-dict order.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    walked: Object,
    rows: IndexMap<String, String>,
}

impl Table {
    pub fn new(walked: Object, rows: IndexMap<String, String>) -> Table {
        Table { walked, rows }
    }

    /// A table from `(index, value)` pairs, for tests.
    #[cfg(test)]
    pub fn from_pairs(walked: Object, pairs: &[(&str, &str)]) -> Table {
        let rows = pairs
            .iter()
            .map(|(i, v)| (walked.at(i), v.to_string()))
            .collect();
        Table { walked, rows }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// `(full OID text, value)` in walk order.
    pub fn rows(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rows.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `(index after the walked OID, value)` in walk order: the original's `ent.index`.
    pub fn indexed(&self) -> impl Iterator<Item = (&str, &str)> {
        let skip = self.walked.oid.len() + 1;
        self.rows
            .iter()
            .map(move |(k, v)| (k.get(skip..).unwrap_or(""), v.as_str()))
    }

    /// `map[column + '.' + index]`: the value, or the `KeyError` the original raises.
    pub fn text(&self, column: &Object, index: &str) -> Result<&str, SectionError> {
        let oid = column.at(index);
        match self.rows.get(&oid) {
            Some(v) => Ok(v),
            None => Err(SectionError::Missing {
                name: column.name,
                index: index.to_string(),
                oid,
                table: self.walked.name,
            }),
        }
    }

    /// `int(map[column + '.' + index])`.
    pub fn int(&self, column: &Object, index: &str) -> Result<i128, SectionError> {
        let text = self.text(column, index)?;
        py_int(&format!("{}.{index}", column.name), &column.at(index), text)
    }
}

/// `a * b` for a metric, or the error saying which one outgrew its integer.
pub(crate) fn product(a: i128, b: i128, what: &str) -> Result<i128, SectionError> {
    a.checked_mul(b).ok_or_else(|| SectionError::Overflow {
        what: what.to_string(),
    })
}

/// `a + b` for a metric.
pub(crate) fn sum(a: i128, b: i128, what: &str) -> Result<i128, SectionError> {
    a.checked_add(b).ok_or_else(|| SectionError::Overflow {
        what: what.to_string(),
    })
}

/// `a - b` for a metric.
pub(crate) fn difference(a: i128, b: i128, what: &str) -> Result<i128, SectionError> {
    a.checked_sub(b).ok_or_else(|| SectionError::Overflow {
        what: what.to_string(),
    })
}

/// The last arc of an index: the original's `index.split('.')[-1]`.
pub(crate) fn last_arc(index: &str) -> &str {
    index.rsplit('.').next().unwrap_or(index)
}

/// Distinct values in first-seen order: the original's `set([...])` of entity indices,
/// iterated in a stable order instead of Python's hash order (which only shows when a
/// section fails halfway).
pub(crate) fn distinct(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// One GET's answer as the original's `get(oid).value` gave it.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    /// `<name>.<index>`, for messages.
    pub name: String,
    pub oid: String,
    /// easysnmp's string: decimal, text, or `NOSUCHINSTANCE`/`NOSUCHOBJECT`/`ENDOFMIBVIEW`
    /// for an instance the agent does not have.
    pub text: String,
    pub value: SnmpValue,
}

impl Got {
    /// `int(get(...).value)`: a missing instance is a `ValueError`, as in the original.
    pub fn int(&self) -> Result<i128, SectionError> {
        py_int(&self.name, &self.oid, &self.text)
    }

    /// The width of the counter the value came from, for the rate transform.
    pub fn counter_width(&self) -> CounterWidth {
        match self.value {
            SnmpValue::Counter32(_) => CounterWidth::Bits32,
            SnmpValue::Counter64(_) => CounterWidth::Bits64,
            _ => CounterWidth::Unknown,
        }
    }
}

/// The device as the plugins talk to it: walks and GETs returning the original's value
/// strings. After a timeout or network failure every later request fails at once with the
/// same status: the original would wait out the timeout for each of them and reach the
/// same statuses, minutes later on a large fleet.
pub(crate) struct Device<'a> {
    client: &'a mut SnmpClient,
    gone: Option<(DeviceStatus, String)>,
    cache: HashMap<&'static str, Arc<Table>>,
    entities: Option<Arc<Entities>>,
}

impl<'a> Device<'a> {
    pub fn new(client: &'a mut SnmpClient) -> Device<'a> {
        Device {
            client,
            gone: None,
            cache: HashMap::new(),
            entities: None,
        }
    }

    fn check(&self, request: Request, name: &str, oid: &str) -> Result<(), SectionError> {
        match &self.gone {
            Some((status, reason)) => Err(SectionError::Skipped {
                request,
                name: name.to_string(),
                oid: oid.to_string(),
                status: *status,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a failed request; a timeout or network failure marks the device gone.
    fn failed(&mut self, request: Request, name: &str, oid: &str, e: SnmpError) -> SectionError {
        let detail = e.to_string();
        let status = DeviceStatus::of_error(&PluginError::Snmp(e));
        if matches!(status, DeviceStatus::Timeout | DeviceStatus::NetworkFailure) {
            self.gone = Some((status, format!("{request} {name} failed earlier: {detail}")));
        }
        SectionError::Snmp {
            request,
            name: name.to_string(),
            oid: oid.to_string(),
            status,
            detail,
        }
    }

    /// Bulk-walks `object` (every row under it, in agent order).
    pub async fn walk(&mut self, object: &Object) -> Result<Table, SectionError> {
        self.check(Request::Walk, object.name, object.oid)?;
        let root: Oid = parse_oid(object.name, object.oid)?;
        let rows = match self.client.bulk_walk(&root).await {
            Ok(rows) => rows,
            Err(e) => return Err(self.failed(Request::Walk, object.name, object.oid, e)),
        };
        let rows = rows
            .into_iter()
            .map(|vb| (vb.oid.to_dotted_leading(), probe_text(&vb.value)))
            .collect();
        Ok(Table::new(*object, rows))
    }

    /// [`Device::walk`] once per poll: the original's `threaded_cached_property` tables.
    /// A failed walk is not kept, so the next section asks again, as the original does.
    pub async fn walk_cached(&mut self, object: &Object) -> Result<Arc<Table>, SectionError> {
        if let Some(t) = self.cache.get(object.oid) {
            return Ok(Arc::clone(t));
        }
        let table = Arc::new(self.walk(object).await?);
        self.cache.insert(object.oid, Arc::clone(&table));
        Ok(table)
    }

    /// The entPhysicalEntry walk, once per poll, classes looked up (see [`Entities`]).
    pub async fn entities(&mut self) -> Result<Arc<Entities>, SectionError> {
        if let Some(e) = &self.entities {
            return Ok(Arc::clone(e));
        }
        let table = self.walk(&entity::ENT_PHYSICAL_ENTRY).await?;
        let entities = Arc::new(Entities::new(table));
        self.entities = Some(Arc::clone(&entities));
        Ok(entities)
    }

    /// GETs `<object>.<index>`.
    pub async fn get(&mut self, object: &Object, index: &str) -> Result<Got, SectionError> {
        let name = format!("{}.{index}", object.name);
        let oid = object.at(index);
        self.check(Request::Get, &name, &oid)?;
        let parsed = parse_oid(object.name, &oid)?;
        let value = match self.client.get(std::slice::from_ref(&parsed)).await {
            Ok(vbs) => vbs.into_iter().next().map(|vb| vb.value),
            Err(e) => return Err(self.failed(Request::Get, &name, &oid, e)),
        };
        let value = value.unwrap_or(SnmpValue::NoSuchInstance);
        let text = match value {
            SnmpValue::NoSuchInstance => "NOSUCHINSTANCE".to_string(),
            SnmpValue::NoSuchObject => "NOSUCHOBJECT".to_string(),
            SnmpValue::EndOfMibView => "ENDOFMIBVIEW".to_string(),
            ref other => probe_text(other),
        };
        Ok(Got {
            name,
            oid,
            text,
            value,
        })
    }
}

/// An OID the plugin built; entity indices come from the device, so this can fail.
fn parse_oid(name: &str, oid: &str) -> Result<Oid, SectionError> {
    oid.parse().map_err(|e| SectionError::Snmp {
        request: Request::Get,
        name: name.to_string(),
        oid: oid.to_string(),
        status: DeviceStatus::InternalFailure,
        detail: format!("not an OID: {e}"),
    })
}

/// One section failure, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The status key (`cpu`, `memory`, `environment`, ..., `device`).
    pub section: &'static str,
    pub error: SectionError,
}

/// What a poll produced: the groups to publish (the status group last) and every failure
/// recorded on the way, in order.
#[derive(Debug, Default)]
pub struct Outcome {
    pub groups: Vec<MetricsGroup>,
    pub failures: Vec<Failure>,
}

/// A device's power supplies, counted.
pub(crate) struct PowerSupplies {
    pub total: usize,
    pub on: usize,
}

/// The groups of one poll and the status per section: the original's
/// `PanoptesMetricsGroupSet` and `PanoptesPollingStatus` together.
pub(crate) struct Report<'a> {
    plugin: &'static str,
    resource: &'a Resource,
    interval: u64,
    now: f64,
    status: StatusTracker,
    groups: GroupSet,
    failures: Vec<Failure>,
}

impl<'a> Report<'a> {
    pub fn new(plugin: &'static str, resource: &'a Resource, interval: u64, now: f64) -> Self {
        Report {
            plugin,
            resource,
            interval,
            now,
            status: StatusTracker::default(),
            groups: GroupSet::default(),
            failures: Vec::new(),
        }
    }

    /// `handle_success(section)`.
    pub fn success(&mut self, section: &'static str) {
        self.status.success(section);
    }

    /// `handle_exception(section, e)`: logged, and the section's status updated.
    pub fn failure(&mut self, section: &'static str, error: SectionError) {
        tracing::warn!(plugin = self.plugin, resource = %self.resource.id,
            endpoint = %self.resource.endpoint, section, error = %error,
            "device metrics section failed");
        self.status.failure(section, error.status());
        self.failures.push(Failure { section, error });
    }

    /// Records the outcome of a builder: success, or the failure that stopped it.
    pub fn settle(&mut self, section: &'static str, built: Result<(), SectionError>) {
        match built {
            Ok(()) => self.success(section),
            Err(e) => self.failure(section, e),
        }
    }

    /// A new, empty group of this poll.
    pub fn group(&self, kind: &str) -> Result<MetricsGroup, SectionError> {
        Ok(MetricsGroup::new(
            self.resource.clone(),
            kind,
            self.interval,
            self.now,
        )?)
    }

    pub fn gauge(&self, name: &str, value: MetricValue) -> Result<Metric, SectionError> {
        Ok(Metric::new(name, value, MetricType::Gauge, self.now)?)
    }

    /// A counter read straight from the device, marked with its SNMP width so the rate
    /// transform knows whether a decrease is a wrap or a reset.
    pub fn counter(
        &self,
        name: &str,
        value: i128,
        width: CounterWidth,
    ) -> Result<Metric, SectionError> {
        Ok(
            Metric::new(name, MetricValue::Int(value), MetricType::Counter, self.now)?
                .with_counter_width(width),
        )
    }

    /// A group of `kind` with these dimensions and integer gauges, in that order.
    pub fn gauges(
        &self,
        kind: &str,
        dimensions: &[(&str, &str)],
        gauges: &[(&str, i128)],
    ) -> Result<MetricsGroup, SectionError> {
        let mut g = self.group(kind)?;
        for (name, value) in dimensions {
            g.add_dimension(Dimension::new(name, value)?)?;
        }
        for (name, value) in gauges {
            g.add_metric(self.gauge(name, MetricValue::Int(*value))?)?;
        }
        Ok(g)
    }

    /// One `environment` group per temperature sensor, its name under `dimension` and
    /// its reading in Fahrenheit from `reading` (or why it has none): the section
    /// succeeds with each, or fails at the first without.
    pub fn temperatures<T>(
        &mut self,
        section: &'static str,
        sensors: &IndexMap<String, T>,
        dimension: &str,
        reading: impl Fn(&str, &T) -> Result<(String, f64), SectionError>,
    ) {
        let built = sensors.iter().try_for_each(|(entity, t)| {
            let (name, fahrenheit) = reading(entity, t)?;
            let mut g = self.group("environment")?;
            g.add_dimension(Dimension::new(dimension, &name)?)?;
            g.add_metric(self.gauge("temperature_fahrenheit", MetricValue::Float(fahrenheit))?)?;
            self.add(g);
            self.success(section);
            Ok(())
        });
        if let Err(e) = built {
            self.failure(section, e);
        }
    }

    /// The `environment` group of the power supplies: how many, and how many on.
    pub fn power_supplies(&mut self, section: &'static str, power: &PowerSupplies) {
        let built = self
            .gauges(
                "environment",
                &[],
                &[
                    ("power_units_total", power.total as i128),
                    ("power_units_on", power.on as i128),
                ],
            )
            .map(|g| self.add(g));
        self.settle(section, built);
    }

    /// The device to poll over `client`, or `None` when the poll got no SNMP session: that
    /// is then the `device` section's failure, and there is nothing else to poll.
    pub fn connected<'c>(
        &mut self,
        client: Result<&'c mut SnmpClient, PluginError>,
    ) -> Option<Device<'c>> {
        match client {
            Ok(client) => Some(Device::new(client)),
            Err(e) => {
                self.failure("device", connect_failure(&e));
                None
            }
        }
    }

    /// `set.add(group)`: an equal group already in is not added twice.
    pub fn add(&mut self, g: MetricsGroup) {
        self.groups.add(g);
    }

    /// The groups and the status group, whose gauge is named `status_metric`.
    pub fn finish(self, status_metric: &str) -> Result<Outcome, ModelError> {
        let mut groups = self.groups;
        groups.add(
            self.status
                .group(self.resource, status_metric, self.interval, self.now)?,
        );
        Ok(Outcome {
            groups: groups.into_vec(),
            failures: self.failures,
        })
    }
}

/// The `device` failure of a poll that got no SNMP session.
fn connect_failure(e: &PluginError) -> SectionError {
    SectionError::Connect {
        status: DeviceStatus::of_error(e),
        detail: e.to_string(),
    }
}

/// Asserts that each object's name in `module` of the built-in MIBs is its OID: the names
/// the plugins print are the MIB's, and the numbers they poll are what the name says.
#[cfg(test)]
pub(crate) fn assert_named_in(module: &str, objects: &[Object]) {
    let mibs = crate::mib::Mibs::builtin();
    for object in objects {
        let name = format!("{module}::{}", object.name);
        let oid = mibs.resolve(&name).unwrap();
        assert_eq!(oid.to_dotted_leading(), object.oid, "{name}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Object = Object {
        name: "hrStorageEntry",
        oid: ".1.3.6.1.2.1.25.2.3.1",
    };
    const UNITS: Object = Object {
        name: "hrStorageAllocationUnits",
        oid: ".1.3.6.1.2.1.25.2.3.1.4",
    };

    #[test]
    fn tables_answer_like_the_original_maps() {
        let t = Table::from_pairs(T, &[("4.1", "1024"), ("4.2", "x"), ("3.1", "RAM")]);
        assert_eq!(t.int(&UNITS, "1"), Ok(1024));
        assert_eq!(
            t.int(&UNITS, "2").unwrap_err().to_string(),
            "hrStorageAllocationUnits.2 (.1.3.6.1.2.1.25.2.3.1.4.2) is `x`, not an integer"
        );
        let missing = t.int(&UNITS, "3").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "hrStorageAllocationUnits.3 (.1.3.6.1.2.1.25.2.3.1.4.3) is not in the walk of hrStorageEntry"
        );
        assert_eq!(missing.status(), DeviceStatus::InternalFailure);
        let indexed: Vec<(&str, &str)> = t.indexed().collect();
        assert_eq!(indexed, [("4.1", "1024"), ("4.2", "x"), ("3.1", "RAM")]);
    }

    #[test]
    fn statuses_follow_the_original_exception_map() {
        let none = SectionError::NoRows {
            name: "hrProcessorLoad",
            oid: ".1.3.6.1.2.1.25.3.3.1.2",
        };
        assert_eq!(none.status(), DeviceStatus::MissingMetrics);
        assert_eq!(
            none.to_string(),
            "walk of hrProcessorLoad (.1.3.6.1.2.1.25.3.3.1.2) returned no rows"
        );
        assert_eq!(
            py_int("x", ".1", " -12 "),
            Ok(-12),
            "int() allows surrounding whitespace"
        );
        assert_eq!(
            py_int("cempMemPoolHCUsed.7000.1", ".1.3.6.1.4.1.9.9.221.1.1.1.1.18.7000.1", "NOSUCHINSTANCE")
                .unwrap_err()
                .to_string(),
            "cempMemPoolHCUsed.7000.1 (.1.3.6.1.4.1.9.9.221.1.1.1.1.18.7000.1) is `NOSUCHINSTANCE`, not an integer"
        );
    }

    #[test]
    fn indices_keep_first_seen_order() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(distinct(v(&["9027", "9028", "9027"])), v(&["9027", "9028"]));
        assert_eq!(last_arc("2.100601110"), "100601110");
        assert_eq!(last_arc("7"), "7");
    }
}
