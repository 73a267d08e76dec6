//! SNMP client on snmp2: owned types for OIDs and values, and a v2c client with
//! timeouts, retries and walks.
//!
//! Scope: SNMP v2c GET, GETNEXT, GETBULK and bulk walks. v1 and v3 are named by
//! [`SnmpVersion`] but refused with a clear error until they are built.

pub mod ber;
mod client;
mod convert;
mod error;
mod oid;
mod target;
mod value;
mod walk;

pub use client::SnmpClient;
pub use convert::{from_wire_oid, from_wire_value, to_wire_oid};
pub use error::{error_status_name, SnmpError};
pub use oid::{Oid, OidParseError};
pub use target::{Community, SnmpTarget, SnmpVersion};
pub use value::{SnmpValue, Varbind};
pub use walk::DEFAULT_WALK_LIMIT;
