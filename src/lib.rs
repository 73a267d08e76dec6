//! Panoptes in Rust: discover network devices, enrich them, poll them over SNMP,
//! turn counters into rates and publish Panoptes metrics groups, in one binary.

pub mod config;
pub mod filter;
pub mod model;
pub mod simulate;
pub mod snmp;
pub mod telemetry;
pub mod transform;
