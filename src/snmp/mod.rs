//! SNMP v1, v2c and v3 (USM) client: owned types for OIDs and values, one wire
//! codec for every version ([`message`]), USM security ([`usm`]), a shared-socket
//! transport for whole fleets ([`SnmpEngine`]) and a per-device client with
//! timeouts, retries, deadlines and walks ([`SnmpClient`]).
//!
//! snmp2 is used for what it does well here: its tag constants and, in the
//! simulator, decoding v1/v2c requests; our own codec writes every message and
//! reads replies, because snmp2's message builders are crate-private, its v3
//! code is client-only, and its session owns one socket per request stream.

pub mod authority;
pub mod ber;
mod client;
mod columns;
mod convert;
mod credentials;
mod engine;
mod error;
pub mod format;
pub mod message;
pub mod notification;
mod oid;
mod peer;
mod target;
pub mod usm;
mod value;
mod walk;
pub mod walk_cli;

pub use client::{varbinds_received, SnmpClient, Walked};
pub use convert::{from_wire_oid, from_wire_value, to_wire_oid, WireValueError};
pub use credentials::{
    AuthProtocol, PrivProtocol, ProtocolParseError, Secret, SecurityLevel, UserPartsError,
    UserSpecError, UsmUser,
};
pub use engine::{open_fds, EngineConfig, EngineStats, SnmpEngine};
pub use error::{error_status_name, SnmpError};
pub use oid::{dotted, IndexText, Oid, OidParseError};
pub use target::{Community, SnmpTarget, SnmpVersion, UnknownVersion};
pub use value::{SnmpValue, Varbind};
pub use walk::DEFAULT_WALK_LIMIT;
