//! Panoptes in Rust: discover network devices, enrich them, poll them over SNMP,
//! turn counters into rates and publish Panoptes metrics groups, in one binary.

pub mod agent;
pub mod bench;
pub mod blocking;
pub mod bus;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod config_check;
pub mod events;
pub mod filter;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod http;
pub mod kafka;
pub mod logging;
pub mod memory;
pub mod mib;
pub mod model;
pub mod node;
pub mod plugins;
pub mod resource_manager;
pub mod sd_notify;
pub mod secret;
pub mod simulate;
pub mod sink;
pub mod snmp;
pub mod store_watch;
pub mod telemetry;
pub mod tls;
pub mod transform;
pub mod traps;
pub mod varint;
