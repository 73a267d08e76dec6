//! Notifications on the wire: the SNMPv1 Trap-PDU, SNMPv2-Trap and InformRequest PDUs
//! read into one version-independent [`Notification`], and the Response that
//! acknowledges an inform.
//!
//! A v1 trap is translated to the v2 form as RFC 3584 3.1 says: its generic-trap (or
//! enterprise and specific-trap) becomes the snmpTrapOID, its time-stamp the
//! sysUpTime, and snmpTrapAddress.0 and snmpTrapEnterprise.0 are appended to its
//! varbinds. snmpTrapCommunity.0, which the RFC also appends, is left out on purpose:
//! the community is a secret and notifications end up on a topic.
//!
//! Every input is a datagram from anyone: decoding is bounds-checked (see
//! [`super::ber::BerReader`]), the number of varbinds is capped by the caller, and a
//! malformed PDU is a [`NotificationError`] naming what was wrong, never a panic.

use super::ber::{self, BerReader, DecodeError};
use super::message::{self, Pdu, RawVarbinds, PDU_INFORM, PDU_TRAP_V1, PDU_TRAP_V2};
use super::{Oid, SnmpValue, Varbind};

/// sysUpTime.0: the first varbind of every v2 notification (RFC 3416 4.2.6).
pub const SYS_UPTIME_0: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];
/// snmpTrapOID.0: the second varbind of every v2 notification.
pub const SNMP_TRAP_OID_0: [u32; 11] = [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
/// snmpTraps: the generic v1 traps are snmpTraps.(generic-trap + 1) (RFC 3584 3.1 (2)).
pub const SNMP_TRAPS: [u32; 9] = [1, 3, 6, 1, 6, 3, 1, 1, 5];
/// snmpTrapAddress.0 (SNMP-COMMUNITY-MIB): a v1 trap's agent-addr.
pub const SNMP_TRAP_ADDRESS_0: [u32; 10] = [1, 3, 6, 1, 6, 3, 18, 1, 3, 0];
/// snmpTrapEnterprise.0 (SNMPv2-MIB): a v1 trap's enterprise.
pub const SNMP_TRAP_ENTERPRISE_0: [u32; 11] = [1, 3, 6, 1, 6, 3, 1, 1, 4, 3, 0];
/// generic-trap enterpriseSpecific(6): the trap OID is enterprise.0.specific-trap.
const ENTERPRISE_SPECIFIC: i64 = 6;

/// Why a PDU is not a notification we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("malformed notification: {0}")]
    Decode(#[from] DecodeError),
    #[error("PDU type 0x{found:02x} is not a notification (expected 0xa4 Trap, 0xa6 InformRequest or 0xa7 SNMPv2-Trap)")]
    NotANotification { found: u8 },
    #[error("more than {max} varbinds (traps.max_varbinds)")]
    TooManyVarbinds { max: usize },
    #[error("varbind {index} must be {expected}, found {found}")]
    MissingHeader {
        index: usize,
        expected: &'static str,
        found: String,
    },
    #[error("generic-trap {0} is not 0..6 (RFC 1157)")]
    GenericTrap(i64),
    #[error("specific-trap {0} does not fit an OID component")]
    SpecificTrap(i64),
}

/// Whether the sender waits for an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    Trap,
    Inform,
}

impl NotificationKind {
    pub fn label(self) -> &'static str {
        match self {
            NotificationKind::Trap => "trap",
            NotificationKind::Inform => "inform",
        }
    }
}

/// The fields only a v1 trap has, kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Fields {
    pub enterprise: Oid,
    pub agent_addr: [u8; 4],
    pub generic_trap: i64,
    pub specific_trap: i64,
}

/// A notification of any version, in the v2 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: NotificationKind,
    pub trap_oid: Oid,
    /// sysUpTime.0 (v2) or time-stamp (v1): the agent's uptime in hundredths of a second.
    pub uptime: u32,
    /// The varbinds after sysUpTime.0 and snmpTrapOID.0 (v2), or the v1 trap's varbinds
    /// followed by snmpTrapAddress.0 and snmpTrapEnterprise.0.
    pub varbinds: Vec<Varbind>,
    pub v1: Option<V1Fields>,
}

/// An SNMPv1 Trap-PDU (RFC 1157 4.1.6), its varbind list not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapV1Pdu<'a> {
    pub enterprise: Oid,
    pub agent_addr: [u8; 4],
    pub generic_trap: i64,
    pub specific_trap: i64,
    pub time_stamp: u32,
    /// Content of the varbind list SEQUENCE.
    pub varbinds: &'a [u8],
}

impl<'a> TrapV1Pdu<'a> {
    /// Reads one Trap-PDU TLV from `reader`.
    pub fn read(reader: &mut BerReader<'a>) -> Result<TrapV1Pdu<'a>, DecodeError> {
        let content = reader.read(PDU_TRAP_V1, "Trap-PDU")?;
        let mut r = BerReader::new(content);
        let enterprise = r.read(ber::TAG_OID, "enterprise")?;
        let mut components = Vec::with_capacity(enterprise.len() + 1);
        ber::decode_oid_content(enterprise, &mut components)
            .map_err(|_| DecodeError::Malformed("enterprise"))?;
        let agent_addr = r
            .read(snmp2::snmp::TYPE_IPADDRESS, "agent-addr")?
            .try_into()
            .map_err(|_| DecodeError::Malformed("agent-addr (not 4 bytes)"))?;
        let generic_trap = r.read_signed(ber::TAG_INTEGER, "generic-trap")?;
        let specific_trap = r.read_signed(ber::TAG_INTEGER, "specific-trap")?;
        let time_stamp = r.read_unsigned(snmp2::snmp::TYPE_TIMETICKS, "time-stamp")?;
        let time_stamp =
            u32::try_from(time_stamp).map_err(|_| DecodeError::OutOfRange("time-stamp"))?;
        let varbinds = r.read(ber::TAG_SEQUENCE, "varbind list")?;
        Ok(TrapV1Pdu {
            enterprise: Oid::new(components),
            agent_addr,
            generic_trap,
            specific_trap,
            time_stamp,
            varbinds,
        })
    }
}

/// Decodes at most `max` varbinds of a varbind list.
fn decode_varbinds(list: &[u8], max: usize) -> Result<Vec<Varbind>, NotificationError> {
    let mut out = Vec::with_capacity(max.min(16));
    for raw in RawVarbinds::new(list) {
        if out.len() == max {
            return Err(NotificationError::TooManyVarbinds { max });
        }
        out.push(raw?.decode()?);
    }
    Ok(out)
}

impl Notification {
    /// A v1 trap, translated to the v2 form (RFC 3584 3.1).
    pub fn from_v1(
        pdu: &TrapV1Pdu<'_>,
        max_varbinds: usize,
    ) -> Result<Notification, NotificationError> {
        let trap_oid = match pdu.generic_trap {
            0..ENTERPRISE_SPECIFIC => {
                // 0..=5 fits: matched just above.
                let mut oid = SNMP_TRAPS.to_vec();
                oid.push(pdu.generic_trap as u32 + 1);
                Oid::new(oid)
            }
            ENTERPRISE_SPECIFIC => {
                let specific = u32::try_from(pdu.specific_trap)
                    .map_err(|_| NotificationError::SpecificTrap(pdu.specific_trap))?;
                let mut oid = pdu.enterprise.components().to_vec();
                oid.extend([0, specific]);
                Oid::new(oid)
            }
            other => return Err(NotificationError::GenericTrap(other)),
        };
        let mut varbinds = decode_varbinds(pdu.varbinds, max_varbinds)?;
        varbinds.push(Varbind::new(
            Oid::new(SNMP_TRAP_ADDRESS_0.to_vec()),
            SnmpValue::IpAddress(pdu.agent_addr),
        ));
        varbinds.push(Varbind::new(
            Oid::new(SNMP_TRAP_ENTERPRISE_0.to_vec()),
            SnmpValue::ObjectIdentifier(pdu.enterprise.clone()),
        ));
        Ok(Notification {
            kind: NotificationKind::Trap,
            trap_oid,
            uptime: pdu.time_stamp,
            varbinds,
            v1: Some(V1Fields {
                enterprise: pdu.enterprise.clone(),
                agent_addr: pdu.agent_addr,
                generic_trap: pdu.generic_trap,
                specific_trap: pdu.specific_trap,
            }),
        })
    }

    /// An SNMPv2-Trap or InformRequest PDU: its first two varbinds must be sysUpTime.0
    /// and snmpTrapOID.0 (RFC 3416 4.2.6, 4.2.7). `max_varbinds` counts those two.
    pub fn from_v2(pdu: &Pdu<'_>, max_varbinds: usize) -> Result<Notification, NotificationError> {
        let kind = match pdu.tag {
            PDU_TRAP_V2 => NotificationKind::Trap,
            PDU_INFORM => NotificationKind::Inform,
            found => return Err(NotificationError::NotANotification { found }),
        };
        let mut varbinds = decode_varbinds(pdu.varbinds, max_varbinds)?.into_iter();
        let mut header = |index: usize, expected: &'static str, oid: &[u32]| {
            let found = varbinds.next();
            match found {
                Some(v) if v.oid.components() == oid => Ok(v.value),
                other => Err(NotificationError::MissingHeader {
                    index,
                    expected,
                    found: other.map_or_else(|| "nothing".into(), |v| v.oid.to_string()),
                }),
            }
        };
        let uptime = match header(0, "sysUpTime.0 (TimeTicks)", &SYS_UPTIME_0)? {
            SnmpValue::TimeTicks(ticks) => ticks,
            other => {
                return Err(NotificationError::MissingHeader {
                    index: 0,
                    expected: "sysUpTime.0 (TimeTicks)",
                    found: format!("sysUpTime.0 of type {}", other.type_name()),
                })
            }
        };
        let trap_oid = match header(1, "snmpTrapOID.0 (OID)", &SNMP_TRAP_OID_0)? {
            SnmpValue::ObjectIdentifier(oid) => oid,
            other => {
                return Err(NotificationError::MissingHeader {
                    index: 1,
                    expected: "snmpTrapOID.0 (OID)",
                    found: format!("snmpTrapOID.0 of type {}", other.type_name()),
                })
            }
        };
        Ok(Notification {
            kind,
            trap_oid,
            uptime,
            varbinds: varbinds.collect(),
            v1: None,
        })
    }
}

/// The PDU of a community message (v1 or v2c), which may be a v1 Trap-PDU.
#[derive(Debug, Clone)]
pub enum CommunityPdu<'a> {
    TrapV1(TrapV1Pdu<'a>),
    Other(Pdu<'a>),
}

/// A v1 or v2c message with any PDU, Trap-PDU included (what [`message::Message`]
/// does not read): `(version, community, pdu)`. `None` for a v3 message.
#[allow(clippy::type_complexity)]
pub fn decode_community(
    bytes: &[u8],
) -> Result<Option<(i64, &[u8], CommunityPdu<'_>)>, DecodeError> {
    let (version, mut r) = message::read_version(bytes)?;
    match version {
        0 | 1 => {
            let community = r.read(ber::TAG_OCTET_STRING, "community")?;
            let pdu = if r.peek_tag() == Some(PDU_TRAP_V1) {
                CommunityPdu::TrapV1(TrapV1Pdu::read(&mut r)?)
            } else {
                CommunityPdu::Other(Pdu::read(&mut r)?)
            };
            Ok(Some((version, community, pdu)))
        }
        3 => Ok(None),
        _ => Err(DecodeError::Malformed("message (unknown SNMP version)")),
    }
}

/// The Response PDU acknowledging an inform: the same request-id and varbinds,
/// error-status and error-index 0 (RFC 3416 4.2.7).
pub fn inform_response(inform: &Pdu<'_>) -> Result<Vec<u8>, ber::BerError> {
    let mut out = Vec::with_capacity(inform.varbinds.len() + 24);
    message::push_pdu(
        &mut out,
        message::PDU_RESPONSE,
        inform.request_id,
        0,
        0,
        |out| {
            out.extend_from_slice(inform.varbinds);
            Ok(())
        },
    )?;
    Ok(out)
}

/// Appends a SNMPv1 Trap-PDU (for tests, benchmarks and fuzz corpora).
pub fn push_trap_v1(
    out: &mut Vec<u8>,
    fields: &V1Fields,
    time_stamp: u32,
    varbinds: &[Varbind],
) -> Result<(), ber::BerError> {
    let start = out.len();
    ber::push_oid(out, fields.enterprise.components())?;
    ber::push_tlv(out, snmp2::snmp::TYPE_IPADDRESS, &fields.agent_addr);
    ber::push_signed(out, ber::TAG_INTEGER, fields.generic_trap);
    ber::push_signed(out, ber::TAG_INTEGER, fields.specific_trap);
    ber::push_unsigned(out, snmp2::snmp::TYPE_TIMETICKS, u64::from(time_stamp));
    let list = out.len();
    for v in varbinds {
        ber::push_varbind(out, v.oid.components(), &v.value)?;
    }
    ber::wrap_from(out, list, ber::TAG_SEQUENCE);
    ber::wrap_from(out, start, PDU_TRAP_V1);
    Ok(())
}

/// A v2 notification PDU (`tag` SNMPv2-Trap or InformRequest) with sysUpTime.0,
/// snmpTrapOID.0 and `varbinds` (for tests, benchmarks and fuzz corpora).
pub fn v2_notification_pdu(
    tag: u8,
    request_id: i32,
    uptime: u32,
    trap_oid: &Oid,
    varbinds: &[Varbind],
) -> Result<Vec<u8>, ber::BerError> {
    let mut out = Vec::new();
    message::push_pdu(&mut out, tag, request_id, 0, 0, |out| {
        ber::push_varbind(out, &SYS_UPTIME_0, &SnmpValue::TimeTicks(uptime))?;
        ber::push_varbind(
            out,
            &SNMP_TRAP_OID_0,
            &SnmpValue::ObjectIdentifier(trap_oid.clone()),
        )?;
        for v in varbinds {
            ber::push_varbind(out, v.oid.components(), &v.value)?;
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::message::{community_message, Message};
    use proptest::prelude::*;

    fn oid(text: &str) -> Oid {
        text.parse().unwrap()
    }

    fn v1_message(generic: i64, specific: i64, varbinds: &[Varbind]) -> Vec<u8> {
        let mut pdu = Vec::new();
        let fields = V1Fields {
            enterprise: oid("1.3.6.1.4.1.8072.2.3"),
            agent_addr: [192, 0, 2, 7],
            generic_trap: generic,
            specific_trap: specific,
        };
        push_trap_v1(&mut pdu, &fields, 4242, varbinds).unwrap();
        community_message(0, b"public", &pdu)
    }

    fn read_v1(bytes: &[u8]) -> Result<Notification, NotificationError> {
        match decode_community(bytes)? {
            Some((0, b"public", CommunityPdu::TrapV1(pdu))) => Notification::from_v1(&pdu, 8),
            other => panic!("not a v1 trap: {other:?}"),
        }
    }

    #[test]
    fn v1_generic_traps_translate_to_snmp_traps() {
        let ifindex = Varbind::new(oid("1.3.6.1.2.1.2.2.1.1.3"), SnmpValue::Integer(3));
        let n = read_v1(&v1_message(2, 0, std::slice::from_ref(&ifindex))).unwrap();
        assert_eq!(n.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.3");
        assert_eq!(n.uptime, 4242);
        assert_eq!(n.kind, NotificationKind::Trap);
        assert_eq!(
            n.varbinds,
            [
                ifindex,
                Varbind::new(
                    oid("1.3.6.1.6.3.18.1.3.0"),
                    SnmpValue::IpAddress([192, 0, 2, 7])
                ),
                Varbind::new(
                    oid("1.3.6.1.6.3.1.1.4.3.0"),
                    SnmpValue::ObjectIdentifier(oid("1.3.6.1.4.1.8072.2.3"))
                ),
            ]
        );
        let v1 = n.v1.unwrap();
        assert_eq!((v1.generic_trap, v1.specific_trap), (2, 0));
        // coldStart(0) is snmpTraps.1.
        let n = read_v1(&v1_message(0, 0, &[])).unwrap();
        assert_eq!(n.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.1");
    }

    #[test]
    fn v1_enterprise_specific_is_enterprise_0_specific() {
        let n = read_v1(&v1_message(6, 17, &[])).unwrap();
        assert_eq!(n.trap_oid.to_string(), "1.3.6.1.4.1.8072.2.3.0.17");
        assert_eq!(
            read_v1(&v1_message(7, 0, &[])).unwrap_err().to_string(),
            "generic-trap 7 is not 0..6 (RFC 1157)"
        );
        assert_eq!(
            read_v1(&v1_message(6, -1, &[])).unwrap_err().to_string(),
            "specific-trap -1 does not fit an OID component"
        );
    }

    #[test]
    fn varbinds_are_capped() {
        let many: Vec<Varbind> = (0..9)
            .map(|i| Varbind::new(oid(&format!("1.3.6.1.2.1.1.{i}")), SnmpValue::Null))
            .collect();
        assert_eq!(
            read_v1(&v1_message(1, 0, &many)).unwrap_err(),
            NotificationError::TooManyVarbinds { max: 8 }
        );
    }

    fn v2(tag: u8, varbinds: &[Varbind]) -> Vec<u8> {
        let pdu =
            v2_notification_pdu(tag, 77, 1234, &oid("1.3.6.1.6.3.1.1.5.4"), varbinds).unwrap();
        community_message(1, b"public", &pdu)
    }

    fn read_v2(bytes: &[u8]) -> Result<Notification, NotificationError> {
        let Message::Community { pdu, .. } = Message::decode(bytes)? else {
            panic!("not a community message")
        };
        Notification::from_v2(&pdu, 8)
    }

    #[test]
    fn v2_trap_and_inform() {
        let descr = Varbind::new(
            oid("1.3.6.1.2.1.2.2.1.2.1"),
            SnmpValue::OctetString(b"eth0".to_vec()),
        );
        let n = read_v2(&v2(PDU_TRAP_V2, std::slice::from_ref(&descr))).unwrap();
        assert_eq!(
            (n.kind, n.trap_oid.to_string(), n.uptime),
            (
                NotificationKind::Trap,
                "1.3.6.1.6.3.1.1.5.4".to_string(),
                1234
            )
        );
        assert_eq!(n.varbinds, [descr]);
        assert_eq!(n.v1, None);
        let n = read_v2(&v2(PDU_INFORM, &[])).unwrap();
        assert_eq!(n.kind, NotificationKind::Inform);
    }

    #[test]
    fn inform_response_echoes_request_id_and_varbinds() {
        let bytes = v2(
            PDU_INFORM,
            &[Varbind::new(
                oid("1.3.6.1.2.1.1.5.0"),
                SnmpValue::Counter32(9),
            )],
        );
        let Message::Community { pdu, .. } = Message::decode(&bytes).unwrap() else {
            panic!()
        };
        let response = inform_response(&pdu).unwrap();
        let mut r = BerReader::new(&response);
        let back = Pdu::read(&mut r).unwrap();
        assert_eq!(back.tag, message::PDU_RESPONSE);
        assert_eq!(
            (back.request_id, back.error_status, back.error_index),
            (77, 0, 0)
        );
        assert_eq!(
            back.decode_varbinds().unwrap(),
            pdu.decode_varbinds().unwrap()
        );
    }

    #[test]
    fn v2_header_varbinds_are_required() {
        let pdu = message::request_pdu(PDU_TRAP_V2, 1, 0, 0, &[oid("1.3.6.1.2.1.1.5.0")]).unwrap();
        let bytes = community_message(1, b"public", &pdu);
        assert_eq!(
            read_v2(&bytes).unwrap_err().to_string(),
            "varbind 0 must be sysUpTime.0 (TimeTicks), found 1.3.6.1.2.1.1.5.0"
        );
        let pdu = message::request_pdu(PDU_TRAP_V2, 1, 0, 0, &[oid("1.3.6.1.2.1.1.3.0")]).unwrap();
        assert_eq!(
            read_v2(&community_message(1, b"public", &pdu))
                .unwrap_err()
                .to_string(),
            "varbind 0 must be sysUpTime.0 (TimeTicks), found sysUpTime.0 of type NULL"
        );
        let get = message::request_pdu(message::PDU_GET, 1, 0, 0, &[]).unwrap();
        assert_eq!(
            read_v2(&community_message(1, b"public", &get)).unwrap_err(),
            NotificationError::NotANotification { found: 0xa0 }
        );
    }

    #[test]
    fn malformed_v1_traps_are_errors() {
        let good = v1_message(2, 0, &[]);
        // Cut anywhere: an error naming a field, never a panic.
        for cut in 0..good.len() {
            assert!(decode_community(&good[..cut]).is_err(), "cut at {cut}");
        }
        // agent-addr of 3 bytes.
        let mut pdu = Vec::new();
        ber::push_oid(&mut pdu, &[1, 3, 6, 1]).unwrap();
        ber::push_tlv(&mut pdu, snmp2::snmp::TYPE_IPADDRESS, &[1, 2, 3]);
        ber::wrap_from(&mut pdu, 0, PDU_TRAP_V1);
        let bytes = community_message(0, b"c", &pdu);
        assert_eq!(
            decode_community(&bytes).unwrap_err().to_string(),
            "malformed agent-addr (not 4 bytes)"
        );
    }

    /// Everything the receiver does with a datagram's PDU.
    fn decode_all(bytes: &[u8]) {
        match decode_community(bytes) {
            Ok(Some((_, _, CommunityPdu::TrapV1(pdu)))) => drop(Notification::from_v1(&pdu, 64)),
            Ok(Some((_, _, CommunityPdu::Other(pdu)))) => {
                let _ = Notification::from_v2(&pdu, 64).map_err(|e| e.to_string());
                let _ = inform_response(&pdu);
            }
            Ok(None) => {}
            Err(e) => drop(e.to_string()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            decode_all(&bytes);
        }

        #[test]
        fn damaged_notifications_never_panic(
            which in 0usize..3,
            cut in any::<usize>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        ) {
            let varbinds = [Varbind::new(oid("1.3.6.1.2.1.2.2.1.1.3"), SnmpValue::Integer(3))];
            let mut bytes = match which {
                0 => v1_message(6, 3, &varbinds),
                1 => v2(PDU_TRAP_V2, &varbinds),
                _ => v2(PDU_INFORM, &varbinds),
            };
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let cut = cut % (bytes.len() + 1);
            decode_all(&bytes[..cut]);
            decode_all(&bytes);
        }
    }
}
