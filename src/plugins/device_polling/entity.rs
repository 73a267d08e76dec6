//! ENTITY-MIB entPhysicalTable and the original's `_get_entity_indices`: which entities of a
//! class mention a string.
//!
//! The original matches on EVERY column of the walked entPhysicalEntry (description, name,
//! model, even containedIn), not only the name: a row matches when the class of its entity
//! (entPhysicalClass at the row's last index arc) is the one asked for and one of the
//! strings is a substring of the row's value. An entity is listed once per matching row
//! and string, so counts such as `power_units_total` include those repeats, as the
//! original's do.

use std::fmt;

use super::{last_arc, Object, SectionError, Table};

pub const ENT_PHYSICAL_ENTRY: Object = Object {
    name: "entPhysicalEntry",
    oid: ".1.3.6.1.2.1.47.1.1.1.1",
};
pub const ENT_PHYSICAL_DESCR: Object = Object {
    name: "entPhysicalDescr",
    oid: ".1.3.6.1.2.1.47.1.1.1.1.2",
};
pub const ENT_PHYSICAL_CLASS: Object = Object {
    name: "entPhysicalClass",
    oid: ".1.3.6.1.2.1.47.1.1.1.1.5",
};
pub const ENT_PHYSICAL_NAME: Object = Object {
    name: "entPhysicalName",
    oid: ".1.3.6.1.2.1.47.1.1.1.1.7",
};

/// PhysicalClass (ENTITY-MIB), numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityClass {
    Other = 1,
    Unknown = 2,
    Chassis = 3,
    Backplane = 4,
    Container = 5,
    PowerSupply = 6,
    Fan = 7,
    Sensor = 8,
    Module = 9,
    Port = 10,
    Stack = 11,
    Cpu = 12,
}

impl EntityClass {
    const ALL: [EntityClass; 12] = [
        EntityClass::Other,
        EntityClass::Unknown,
        EntityClass::Chassis,
        EntityClass::Backplane,
        EntityClass::Container,
        EntityClass::PowerSupply,
        EntityClass::Fan,
        EntityClass::Sensor,
        EntityClass::Module,
        EntityClass::Port,
        EntityClass::Stack,
        EntityClass::Cpu,
    ];

    pub fn from_code(code: i128) -> Option<EntityClass> {
        EntityClass::ALL.into_iter().find(|c| *c as i128 == code)
    }

    /// The MIB's (and the original's) name.
    pub fn name(self) -> &'static str {
        match self {
            EntityClass::Other => "other",
            EntityClass::Unknown => "unknown",
            EntityClass::Chassis => "chassis",
            EntityClass::Backplane => "backplane",
            EntityClass::Container => "container",
            EntityClass::PowerSupply => "powerSupply",
            EntityClass::Fan => "fan",
            EntityClass::Sensor => "sensor",
            EntityClass::Module => "module",
            EntityClass::Port => "port",
            EntityClass::Stack => "stack",
            EntityClass::Cpu => "cpu",
        }
    }
}

impl fmt::Display for EntityClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The walked entPhysicalEntry with each row's entity class looked up once, so matching
/// is one pass over the rows with no lookups, however many times a poll asks.
#[derive(Debug)]
pub struct Entities {
    pub table: Table,
    /// Per row, in walk order: the class of the row's entity, or why there is none (the
    /// original fails a match when it reaches such a row, whatever class it looks for).
    classes: Vec<Result<EntityClass, SectionError>>,
}

impl Entities {
    pub fn new(table: Table) -> Entities {
        let classes = table
            .indexed()
            .map(|(index, _)| {
                let entity = last_arc(index);
                let code = table.int(&ENT_PHYSICAL_CLASS, entity)?;
                EntityClass::from_code(code).ok_or_else(|| SectionError::UnknownClass {
                    entity: entity.to_string(),
                    class: code,
                })
            })
            .collect();
        Entities { table, classes }
    }

    /// The original's `_get_entity_indices(class, strings)`, reduced to entity indices
    /// (every caller keeps only the last arc): one entry per matching row and string.
    pub fn matching(
        &self,
        class: EntityClass,
        strings: &[&str],
    ) -> Result<Vec<String>, SectionError> {
        let mut out = Vec::new();
        for ((index, value), row_class) in self.table.indexed().zip(&self.classes) {
            if row_class.as_ref().map_err(Clone::clone)? != &class {
                continue;
            }
            for s in strings {
                if value.contains(s) {
                    out.push(last_arc(index).to_string());
                }
            }
        }
        Ok(out)
    }

    /// The first match, or the `IndexError` of the original's `[...][0]`.
    pub fn first_matching(
        &self,
        class: EntityClass,
        strings: &[&str],
    ) -> Result<String, SectionError> {
        self.matching(class, strings)?
            .into_iter()
            .next()
            .ok_or_else(|| SectionError::NoEntity {
                class,
                wanted: strings
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            })
    }

    pub fn text(&self, column: &Object, entity: &str) -> Result<&str, SectionError> {
        self.table.text(column, entity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_objects_are_the_built_in_mibs_names() {
        crate::plugins::device_polling::assert_named_in(
            "ENTITY-MIB",
            &[
                ENT_PHYSICAL_ENTRY,
                ENT_PHYSICAL_DESCR,
                ENT_PHYSICAL_CLASS,
                ENT_PHYSICAL_NAME,
            ],
        );
    }

    fn entities(pairs: &[(&str, &str)]) -> Entities {
        Entities::new(Table::from_pairs(ENT_PHYSICAL_ENTRY, pairs))
    }

    #[test]
    fn any_column_matches_and_repeats_count() {
        let e = entities(&[
            ("2.26", "Cisco ASR1002-X AC Power Supply"),
            ("2.9027", "QFP 0 of module F0"),
            ("2.9028", "Crypto Asic 0 of module F0"),
            ("5.26", "6"),
            ("5.9027", "12"),
            ("5.9028", "12"),
            ("7.26", "Power Supply Module 0"),
            ("7.9027", "qfp F0/0"),
            ("7.9028", "Crypto Asic F0/0"),
        ]);
        // The QFP matches on its description (QFP) and on its name (qfp): listed twice.
        assert_eq!(
            e.matching(EntityClass::Cpu, &["qfp", "QFP"]).unwrap(),
            ["9027", "9027"]
        );
        // Both columns of the crypto entity mention "Crypto Asic".
        assert_eq!(
            e.matching(EntityClass::Cpu, &["Crypto Asic"]).unwrap(),
            ["9028", "9028"]
        );
        // Only the name says "Power Supply Module"; the class must match too.
        assert_eq!(
            e.matching(EntityClass::PowerSupply, &["Power Supply Module"])
                .unwrap(),
            ["26"]
        );
        assert!(e
            .matching(EntityClass::Sensor, &["Power Supply Module"])
            .unwrap()
            .is_empty());
        // One row holding both strings is listed once per string.
        let e = entities(&[("2.5", "Temp: temp"), ("5.5", "8")]);
        assert_eq!(
            e.matching(EntityClass::Sensor, &["temp", "Temp"]).unwrap(),
            ["5", "5"]
        );
    }

    #[test]
    fn the_class_is_read_at_the_last_index_arc() {
        // Rows indexed by more than one arc still find their class by the last one.
        let e = entities(&[("2.1.7", "Fan 1 Sensor 1"), ("5.7", "8")]);
        assert_eq!(
            e.matching(EntityClass::Sensor, &["Fan 1 Sensor 1"])
                .unwrap(),
            ["7"]
        );
    }

    #[test]
    fn a_row_without_a_usable_class_fails_every_match() {
        let e = entities(&[("2.3", "CPU temp"), ("2.4", "other")]);
        let err = e.matching(EntityClass::Fan, &["x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entPhysicalClass.3 (.1.3.6.1.2.1.47.1.1.1.1.5.3) is not in the walk of entPhysicalEntry"
        );
        let e = entities(&[("2.3", "CPU temp"), ("5.3", "13")]);
        assert_eq!(
            e.matching(EntityClass::Sensor, &["temp"])
                .unwrap_err()
                .to_string(),
            "entity 3: entPhysicalClass is 13, not one of the classes 1 to 12"
        );
        let e = entities(&[("5.3", "eight")]);
        assert_eq!(
            e.matching(EntityClass::Sensor, &["temp"])
                .unwrap_err()
                .to_string(),
            "entPhysicalClass.3 (.1.3.6.1.2.1.47.1.1.1.1.5.3) is `eight`, not an integer"
        );
    }

    #[test]
    fn no_match_for_first_is_an_index_error() {
        let e = entities(&[("2.3", "CPU 0"), ("5.3", "12")]);
        let err = e
            .first_matching(EntityClass::Cpu, &["qfp", "QFP"])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no entity of class cpu has `qfp` or `QFP` in any entPhysicalEntry column"
        );
        assert_eq!(
            err.status(),
            crate::plugins::status::DeviceStatus::InternalFailure
        );
    }
}
