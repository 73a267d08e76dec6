//! The JSON event a notification becomes on `<site>-traps` (its shape is documented in
//! the README, "Traps"). The community is never part of it: it is a secret.

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::{json, Value};

use crate::snmp::notification::Notification;
use crate::snmp::{SnmpValue, Varbind};

use super::names::{trap_name, TrapNames};

/// The SNMP version a notification came in with: the `version` field and label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapVersion {
    V1,
    V2c,
    V3,
}

impl TrapVersion {
    pub fn label(self) -> &'static str {
        match self {
            TrapVersion::V1 => "v1",
            TrapVersion::V2c => "v2c",
            TrapVersion::V3 => "v3",
        }
    }
}

/// One message of the traps topic.
#[derive(Debug, Serialize)]
pub struct TrapEvent {
    pub trap_oid: String,
    /// A well-known (or, with a MIB module, MIB) name; else the dotted OID.
    pub trap_name: String,
    pub version: &'static str,
    pub kind: &'static str,
    /// The datagram's source, `ip:port`.
    pub source: String,
    /// The resource whose endpoint is the source's IP address, as the resources topic
    /// carries it; `null` when none is known.
    pub resource: Option<Value>,
    /// The v3 user (USM msgUserName); `null` for v1 and v2c.
    pub v3_user: Option<String>,
    /// sysUpTime.0 (v2, v3) or the v1 time-stamp: the agent's uptime in hundredths of a second.
    pub agent_uptime: u32,
    /// When the receiver read the datagram: Unix seconds.
    pub received_at: f64,
    pub varbinds: Vec<Value>,
    /// v1 only: the Trap-PDU's own fields, as sent (`trap_oid` is their RFC 3584
    /// translation); `null` otherwise.
    pub v1: Option<Value>,
}

/// What the receiver knows about a notification besides its PDU.
pub struct Received<'a> {
    pub version: TrapVersion,
    pub source: SocketAddr,
    pub v3_user: Option<String>,
    pub received_at: f64,
    pub resource: Option<Value>,
    pub names: &'a dyn TrapNames,
}

impl TrapEvent {
    pub fn new(n: &Notification, r: Received<'_>) -> TrapEvent {
        TrapEvent {
            trap_oid: n.trap_oid.to_string(),
            trap_name: trap_name(r.names, &n.trap_oid),
            version: r.version.label(),
            kind: n.kind.label(),
            source: r.source.to_string(),
            resource: r.resource,
            v3_user: r.v3_user,
            agent_uptime: n.uptime,
            received_at: r.received_at,
            varbinds: n
                .varbinds
                .iter()
                .map(|v| {
                    let mut out = varbind_json(v);
                    if let Some(name) = r.names.varbind_name(&v.oid) {
                        out["name"] = json!(name);
                    }
                    out
                })
                .collect(),
            v1: n.v1.as_ref().map(|v1| {
                let [a, b, c, d] = v1.agent_addr;
                json!({
                    "enterprise": v1.enterprise.to_string(),
                    "agent_addr": format!("{a}.{b}.{c}.{d}"),
                    "generic_trap": v1.generic_trap,
                    "specific_trap": v1.specific_trap,
                })
            }),
        }
    }
}

/// `{"oid", "type", "value"}` (the event adds `"name"` when the MIBs know the OID): numbers as JSON numbers, OIDs and IP addresses dotted,
/// strings as text when they are printable UTF-8, else as hex (`"0a:ff"`) with
/// `"encoding": "hex"`; `value` null for NULL and the v2 exceptions. `type` is the SMI
/// type as net-snmp prints it (`INTEGER`, `STRING`, `OID`, `IpAddress`, `Counter32`,
/// `Gauge32`, `Timeticks`, `Counter64`, `Opaque`, `NULL`, `noSuchObject`, ...).
pub fn varbind_json(v: &Varbind) -> Value {
    let mut out = json!({
        "oid": v.oid.to_string(),
        "type": v.value.type_name(),
    });
    let (value, hex) = match &v.value {
        SnmpValue::Integer(n) => (json!(n), false),
        SnmpValue::Counter32(n) | SnmpValue::Gauge32(n) | SnmpValue::TimeTicks(n) => {
            (json!(n), false)
        }
        SnmpValue::Counter64(n) => (json!(n), false),
        SnmpValue::ObjectIdentifier(_) | SnmpValue::IpAddress(_) => {
            (json!(v.value.to_display_string()), false)
        }
        SnmpValue::OctetString(bytes) => match std::str::from_utf8(bytes) {
            Ok(text)
                if !text
                    .chars()
                    .any(|c| c.is_control() && !"\t\r\n".contains(c)) =>
            {
                (json!(text), false)
            }
            _ => (json!(hex(bytes)), true),
        },
        SnmpValue::Opaque(bytes) => (json!(hex(bytes)), true),
        SnmpValue::Null
        | SnmpValue::NoSuchObject
        | SnmpValue::NoSuchInstance
        | SnmpValue::EndOfMibView => (Value::Null, false),
    };
    out["value"] = value;
    if hex {
        out["encoding"] = json!("hex");
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::notification::{NotificationKind, V1Fields};
    use crate::traps::names::WellKnown;

    fn vb(oid: &str, value: SnmpValue) -> Value {
        varbind_json(&Varbind::new(oid.parse().unwrap(), value))
    }

    #[test]
    fn varbind_values_by_type() {
        assert_eq!(
            vb("1.3.6.1.2.1.2.2.1.1.3", SnmpValue::Integer(-3)),
            json!({"oid": "1.3.6.1.2.1.2.2.1.1.3", "type": "INTEGER", "value": -3})
        );
        assert_eq!(
            vb("1.2", SnmpValue::Counter64(u64::MAX)),
            json!({"oid": "1.2", "type": "Counter64", "value": 18446744073709551615u64})
        );
        assert_eq!(
            vb("1.2", SnmpValue::OctetString(b"eth0 down\n".to_vec())),
            json!({"oid": "1.2", "type": "STRING", "value": "eth0 down\n"})
        );
        assert_eq!(
            vb("1.2", SnmpValue::OctetString(vec![0, 0x1b, 0xff])),
            json!({"oid": "1.2", "type": "STRING", "value": "00:1b:ff", "encoding": "hex"})
        );
        assert_eq!(
            vb("1.2", SnmpValue::IpAddress([10, 0, 0, 1])),
            json!({"oid": "1.2", "type": "IpAddress", "value": "10.0.0.1"})
        );
        assert_eq!(
            vb(
                "1.2",
                SnmpValue::ObjectIdentifier("1.3.6.1".parse().unwrap())
            ),
            json!({"oid": "1.2", "type": "OID", "value": "1.3.6.1"})
        );
        assert_eq!(
            vb("1.2", SnmpValue::TimeTicks(500)),
            json!({"oid": "1.2", "type": "Timeticks", "value": 500})
        );
        assert_eq!(
            vb("1.2", SnmpValue::NoSuchObject),
            json!({"oid": "1.2", "type": "noSuchObject", "value": null})
        );
    }

    #[test]
    fn a_v1_event_has_its_fields_and_no_community() {
        let n = Notification {
            kind: NotificationKind::Trap,
            trap_oid: "1.3.6.1.6.3.1.1.5.3".parse().unwrap(),
            uptime: 77,
            varbinds: vec![],
            v1: Some(V1Fields {
                enterprise: "1.3.6.1.4.1.8072".parse().unwrap(),
                agent_addr: [192, 0, 2, 1],
                generic_trap: 2,
                specific_trap: 0,
            }),
        };
        let event = TrapEvent::new(
            &n,
            Received {
                version: TrapVersion::V1,
                source: "127.0.0.1:4000".parse().unwrap(),
                v3_user: None,
                received_at: 1.5,
                resource: None,
                names: &WellKnown,
            },
        );
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            value,
            json!({
                "trap_oid": "1.3.6.1.6.3.1.1.5.3",
                "trap_name": "linkDown",
                "version": "v1",
                "kind": "trap",
                "source": "127.0.0.1:4000",
                "resource": null,
                "v3_user": null,
                "agent_uptime": 77,
                "received_at": 1.5,
                "varbinds": [],
                "v1": {"enterprise": "1.3.6.1.4.1.8072", "agent_addr": "192.0.2.1",
                       "generic_trap": 2, "specific_trap": 0},
            })
        );
    }
}
