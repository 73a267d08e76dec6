//! SNMP agent simulator serving .snmprec recordings, many devices per process.
//!
//! Serves SNMP v2c and v3 (USM) GET, GETNEXT and GETBULK, and v1 GET and
//! GETNEXT; SET is refused (read-only), notifications are dropped. Counters can advance
//! with wall-clock time ([`CounterMode::Advancing`]) or stay as recorded
//! ([`CounterMode::Frozen`]).

pub mod agent;
#[cfg(test)]
mod agent_tests;
mod cli;
pub mod counters;
pub mod fdlimit;
pub mod recording;
pub mod response;
mod server;

pub use crate::snmp::authority::DeviceSecurity;
pub use agent::{Agent, DropReason, Outcome, Scratch, MAX_UDP_PAYLOAD};
pub use cli::{phase_of, run_cli, SimulateArgs};
pub use counters::CounterMode;
pub use recording::{Recording, RecordingError};
pub use response::ResponseBuffer;
pub use server::{DeviceConfig, DeviceCounters, Simulator, SimulatorConfig, SimulatorHandle};
