//! One datagram in, one decision out: a notification to publish (and the
//! acknowledgement of an inform), a Report for a v3 sender still discovering us, or a
//! refusal with its reason. No socket here, so every path is testable with bytes.

use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

use crate::events::TrapRejection;
use crate::snmp::message::{self, Message, ScopedPdu};
use crate::snmp::notification::{
    decode_community, inform_response, CommunityPdu, Notification, NotificationError,
    NotificationKind,
};
use crate::snmp::{Community, UsmUser};

use super::event::TrapVersion;
use super::v3::{Refused, V3Security};

/// A notification that passed every check.
#[derive(Debug)]
pub struct Accepted {
    pub notification: Notification,
    pub version: TrapVersion,
    pub v3_user: Option<String>,
    /// The PDU's request-id (0 for a v1 trap): with the source, what tells a
    /// retransmitted inform (see [`super::informs`]).
    pub request_id: i32,
    /// The Response to send back once the notification is published (informs only).
    pub ack: Option<Vec<u8>>,
}

/// What to do with a datagram.
#[derive(Debug)]
pub enum Handled {
    Accepted(Box<Accepted>),
    /// A v3 sender discovering our engine: answer, nothing to publish.
    Discovery {
        report: Vec<u8>,
    },
    Rejected {
        rejection: TrapRejection,
        detail: String,
        /// A Report to send back (a v3 inform sender that asked to hear of refusals).
        report: Option<Vec<u8>>,
    },
}

impl Handled {
    fn rejected(rejection: TrapRejection, detail: impl Into<String>) -> Handled {
        Handled::Rejected {
            rejection,
            detail: detail.into(),
            report: None,
        }
    }
}

/// The receiver's checks: communities, varbind cap, v3 security.
pub struct Decoder {
    /// Replaced by a reload ([`Decoder::set_credentials`]).
    communities: RwLock<Arc<Vec<Community>>>,
    max_varbinds: usize,
    v3: V3Security,
}

impl From<NotificationError> for Handled {
    fn from(e: NotificationError) -> Handled {
        let rejection = match e {
            NotificationError::TooManyVarbinds { .. } => TrapRejection::TooManyVarbinds,
            NotificationError::NotANotification { .. } => TrapRejection::NotANotification,
            _ => TrapRejection::Malformed,
        };
        Handled::rejected(rejection, e.to_string())
    }
}

impl Decoder {
    pub fn new(communities: Vec<Community>, max_varbinds: usize, v3: V3Security) -> Decoder {
        Decoder {
            communities: RwLock::new(Arc::new(communities)),
            max_varbinds,
            v3,
        }
    }

    /// Replaces the accepted communities and v3 users (a reload of the secrets file).
    pub fn set_credentials(&self, communities: Vec<Community>, users: &[UsmUser]) {
        *self.communities.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(communities);
        self.v3.set_users(users);
    }

    pub fn handle(&self, datagram: &[u8]) -> Handled {
        match decode_community(datagram) {
            Ok(Some((version, community, pdu))) => self.community(version, community, pdu),
            Ok(None) => self.v3(datagram),
            Err(e) => Handled::rejected(
                TrapRejection::Malformed,
                format!("not an SNMP message: {e}"),
            ),
        }
    }

    /// Compared in constant time: the community is a password.
    fn community_accepted(&self, community: &[u8]) -> bool {
        let communities = Arc::clone(&self.communities.read().unwrap_or_else(|p| p.into_inner()));
        communities.is_empty()
            || communities
                .iter()
                .any(|c| bool::from(c.expose().as_bytes().ct_eq(community)))
    }

    fn community(&self, version: i64, community: &[u8], pdu: CommunityPdu<'_>) -> Handled {
        if !self.community_accepted(community) {
            return Handled::rejected(
                TrapRejection::Community,
                "the community is not in traps.communities",
            );
        }
        let (notification, label) = match (version, pdu) {
            (0, CommunityPdu::TrapV1(pdu)) => {
                match Notification::from_v1(&pdu, self.max_varbinds) {
                    Ok(n) => (n, TrapVersion::V1),
                    Err(e) => return e.into(),
                }
            }
            (1, CommunityPdu::Other(pdu)) => {
                let n = match Notification::from_v2(&pdu, self.max_varbinds) {
                    Ok(n) => n,
                    Err(e) => return e.into(),
                };
                let ack = if n.kind == NotificationKind::Inform {
                    match inform_response(&pdu) {
                        Ok(response) => Some(message::community_message(1, community, &response)),
                        Err(e) => {
                            return Handled::rejected(
                                TrapRejection::Malformed,
                                format!("cannot encode the inform's Response: {e}"),
                            )
                        }
                    }
                } else {
                    None
                };
                return Handled::Accepted(Box::new(Accepted {
                    notification: n,
                    version: TrapVersion::V2c,
                    v3_user: None,
                    request_id: pdu.request_id,
                    ack,
                }));
            }
            (0, CommunityPdu::Other(pdu)) => {
                return Handled::rejected(
                    TrapRejection::NotANotification,
                    format!(
                    "a v1 message with PDU type 0x{:02x}: v1 notifications are Trap-PDUs (0xa4)",
                    pdu.tag
                ),
                )
            }
            (_, _) => {
                return Handled::rejected(
                    TrapRejection::NotANotification,
                    "a v1 Trap-PDU in a v2c message",
                )
            }
        };
        Handled::Accepted(Box::new(Accepted {
            notification,
            version: label,
            v3_user: None,
            request_id: 0,
            ack: None,
        }))
    }

    fn v3(&self, datagram: &[u8]) -> Handled {
        let m = match Message::decode(datagram) {
            Ok(Message::V3(m)) => m,
            Ok(Message::Community { .. }) => {
                return Handled::rejected(TrapRejection::Malformed, "not a v3 message")
            }
            Err(e) => {
                return Handled::rejected(
                    TrapRejection::Malformed,
                    format!("not an SNMPv3 message: {e}"),
                )
            }
        };
        let auth = match self.v3.check(datagram, &m) {
            Ok(auth) => auth,
            Err(Refused::Discovery { report }) => return Handled::Discovery { report },
            Err(Refused::Rejected {
                rejection,
                detail,
                report,
            }) => {
                return Handled::Rejected {
                    rejection,
                    detail,
                    report,
                }
            }
        };
        let scoped = match ScopedPdu::decode(&auth.plaintext) {
            Ok(scoped) => scoped,
            Err(e) => {
                return Handled::rejected(TrapRejection::Malformed, format!("v3 scoped PDU: {e}"))
            }
        };
        let n = match Notification::from_v2(&scoped.pdu, self.max_varbinds) {
            Ok(n) => n,
            Err(e) => return e.into(),
        };
        let ack = match (n.kind, auth.to_us) {
            (NotificationKind::Trap, _) => None,
            (NotificationKind::Inform, false) => {
                return Handled::rejected(
                    TrapRejection::Malformed,
                    "a v3 inform must be sent to this receiver's engine ID (the sender discovers it first)",
                )
            }
            (NotificationKind::Inform, true) => {
                let response = match inform_response(&scoped.pdu) {
                    Ok(r) => r,
                    Err(e) => return Handled::rejected(TrapRejection::Malformed, format!("cannot encode the inform's Response: {e}")),
                };
                let context = (scoped.context_engine_id, scoped.context_name);
                self.v3.respond(&auth, context, &response)
            }
        };
        Handled::Accepted(Box::new(Accepted {
            notification: n,
            version: TrapVersion::V3,
            v3_user: Some(auth.user),
            request_id: scoped.pdu.request_id,
            ack,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::message::{
        community_message, flags_for, scoped_pdu, v3_message, Pdu, V3Header, PDU_INFORM,
        PDU_REPORT, PDU_RESPONSE, PDU_TRAP_V2,
    };
    use crate::snmp::notification::v2_notification_pdu;
    use crate::snmp::usm::KeyCache;
    use crate::snmp::{
        AuthProtocol, Oid, PrivProtocol, SecurityLevel, SnmpValue, UsmUser, Varbind,
    };

    const OUR_ENGINE: &[u8] = b"\x80\x00\x1f\x88\x05ours-engine";
    const SENDER_ENGINE: &[u8] = b"\x80\x00\x1f\x88\x05router-1";

    fn user() -> UsmUser {
        UsmUser::no_auth("ops")
            .with_auth(AuthProtocol::Sha256, "authpass123")
            .with_privacy(PrivProtocol::Aes128, "privpass123")
    }

    fn decoder(communities: &[&str]) -> Decoder {
        Decoder::new(
            communities.iter().map(|c| Community::new(*c)).collect(),
            16,
            V3Security::new(&[user()], OUR_ENGINE.to_vec(), 3),
        )
    }

    fn link_down(tag: u8) -> Vec<u8> {
        v2_notification_pdu(
            tag,
            41,
            100,
            &"1.3.6.1.6.3.1.1.5.3".parse().unwrap(),
            &[Varbind::new(
                "1.3.6.1.2.1.2.2.1.1.3".parse::<Oid>().unwrap(),
                SnmpValue::Integer(3),
            )],
        )
        .unwrap()
    }

    fn rejection(h: Handled) -> (TrapRejection, String) {
        match h {
            Handled::Rejected {
                rejection, detail, ..
            } => (rejection, detail),
            other => panic!("not rejected: {other:?}"),
        }
    }

    fn accepted(h: Handled) -> Accepted {
        match h {
            Handled::Accepted(a) => *a,
            other => panic!("not accepted: {other:?}"),
        }
    }

    #[test]
    fn communities_are_checked_and_informs_answered() {
        let d = decoder(&["public", "other"]);
        let wrong = community_message(1, b"nope", &link_down(PDU_TRAP_V2));
        assert_eq!(
            rejection(d.handle(&wrong)),
            (
                TrapRejection::Community,
                "the community is not in traps.communities".to_string()
            )
        );
        let inform = community_message(1, b"other", &link_down(PDU_INFORM));
        let a = accepted(d.handle(&inform));
        assert_eq!(a.version, TrapVersion::V2c);
        assert_eq!(a.notification.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.3");
        let Message::Community {
            version,
            community,
            pdu,
        } = Message::decode(a.ack.as_ref().unwrap()).unwrap()
        else {
            panic!("the ack is not a community message")
        };
        assert_eq!(
            (version, community, pdu.tag, pdu.request_id),
            (1, &b"other"[..], PDU_RESPONSE, 41)
        );
        // Any community when none is configured; a trap needs no answer.
        let a = accepted(decoder(&[]).handle(&community_message(1, b"x", &link_down(PDU_TRAP_V2))));
        assert!(a.ack.is_none());
    }

    #[test]
    fn garbage_and_requests_are_refused() {
        let d = decoder(&[]);
        let (r, detail) = rejection(d.handle(b"garbage"));
        assert_eq!(r, TrapRejection::Malformed);
        assert_eq!(
            detail,
            "not an SNMP message: expected tag 0x30 for message, found 0x67"
        );
        let get =
            crate::snmp::message::request_pdu(crate::snmp::message::PDU_GET, 1, 0, 0, &[]).unwrap();
        let (r, detail) = rejection(d.handle(&community_message(1, b"public", &get)));
        assert_eq!(r, TrapRejection::NotANotification);
        assert_eq!(detail, "PDU type 0xa0 is not a notification (expected 0xa4 Trap, 0xa6 InformRequest or 0xa7 SNMPv2-Trap)");
    }

    fn v3(
        level: SecurityLevel,
        engine: &[u8],
        boots: u32,
        time: u32,
        pdu: &[u8],
        u: &UsmUser,
    ) -> Vec<u8> {
        let keys = KeyCache::default().localize(u, engine);
        let header = V3Header {
            msg_id: 9,
            flags: flags_for(level, true),
            engine_id: engine,
            boots,
            time,
            user: u.name.as_bytes(),
        };
        v3_message(&header, &keys, &scoped_pdu(engine, b"", pdu)).unwrap()
    }

    #[test]
    fn v3_traps_are_checked_against_the_senders_engine() {
        let d = decoder(&[]);
        let trap = link_down(PDU_TRAP_V2);
        let a = accepted(d.handle(&v3(
            SecurityLevel::AuthPriv,
            SENDER_ENGINE,
            5,
            1000,
            &trap,
            &user(),
        )));
        assert_eq!(
            (a.version, a.v3_user.as_deref()),
            (TrapVersion::V3, Some("ops"))
        );
        assert_eq!(a.notification.uptime, 100);
        // Later time: fine; back by more than 150 s, or an earlier boot: a replay.
        accepted(d.handle(&v3(
            SecurityLevel::AuthPriv,
            SENDER_ENGINE,
            5,
            1100,
            &trap,
            &user(),
        )));
        let (r, _) = rejection(d.handle(&v3(
            SecurityLevel::AuthPriv,
            SENDER_ENGINE,
            5,
            900,
            &trap,
            &user(),
        )));
        assert_eq!(r, TrapRejection::TimeWindow);
        let (r, _) = rejection(d.handle(&v3(
            SecurityLevel::AuthPriv,
            SENDER_ENGINE,
            4,
            5000,
            &trap,
            &user(),
        )));
        assert_eq!(r, TrapRejection::TimeWindow);
        // A lower level than the user's proves nothing.
        let (r, detail) = rejection(d.handle(&v3(
            SecurityLevel::NoAuthNoPriv,
            SENDER_ENGINE,
            5,
            1100,
            &trap,
            &UsmUser::no_auth("ops"),
        )));
        assert_eq!(r, TrapRejection::SecurityLevel);
        assert_eq!(
            detail,
            "v3 user \"ops\" sent at noAuthNoPriv, but is configured for authPriv"
        );
        let impostor = UsmUser::no_auth("ops")
            .with_auth(AuthProtocol::Sha256, "guessed-wrong")
            .with_privacy(PrivProtocol::Aes128, "privpass123");
        let (r, detail) = rejection(d.handle(&v3(
            SecurityLevel::AuthPriv,
            SENDER_ENGINE,
            6,
            1,
            &trap,
            &impostor,
        )));
        assert_eq!(r, TrapRejection::Authentication);
        assert_eq!(
            detail,
            "v3 user \"ops\": wrong authentication (protocol or passphrase)"
        );
        let (r, _) = rejection(d.handle(&v3(
            SecurityLevel::NoAuthNoPriv,
            SENDER_ENGINE,
            6,
            1,
            &trap,
            &UsmUser::no_auth("eve"),
        )));
        assert_eq!(r, TrapRejection::UnknownUser);
    }

    #[test]
    fn v3_informs_discover_our_engine_then_are_answered() {
        let d = decoder(&[]);
        // Discovery probe: empty engine ID, no user, reportable.
        let probe = v3(
            SecurityLevel::NoAuthNoPriv,
            b"",
            0,
            0,
            &link_down(PDU_INFORM),
            &UsmUser::no_auth(""),
        );
        let Handled::Discovery { report } = d.handle(&probe) else {
            panic!("no discovery report")
        };
        let Message::V3(m) = Message::decode(&report).unwrap() else {
            panic!()
        };
        assert_eq!((m.engine_id, m.boots), (OUR_ENGINE, 3));
        let inform = v3(
            SecurityLevel::AuthPriv,
            OUR_ENGINE,
            3,
            m.time,
            &link_down(PDU_INFORM),
            &user(),
        );
        let a = accepted(d.handle(&inform));
        let ack = a.ack.expect("an inform is acknowledged");
        let Message::V3(m) = Message::decode(&ack).unwrap() else {
            panic!()
        };
        let keys = KeyCache::default().localize(&user(), OUR_ENGINE);
        assert!(m.authentic(&ack, &keys));
        let plain = m.plaintext(&keys).unwrap();
        let scoped = ScopedPdu::decode(&plain).unwrap();
        assert_eq!(scoped.context_engine_id, OUR_ENGINE);
        assert_eq!((scoped.pdu.tag, scoped.pdu.request_id), (PDU_RESPONSE, 41));
        // An inform in a wrong boot is refused with a report the sender can resync from.
        let stale = v3(
            SecurityLevel::AuthPriv,
            OUR_ENGINE,
            2,
            m.time,
            &link_down(PDU_INFORM),
            &user(),
        );
        let Handled::Rejected {
            rejection,
            report: Some(report),
            ..
        } = d.handle(&stale)
        else {
            panic!("no report for a stale inform")
        };
        assert_eq!(rejection, TrapRejection::TimeWindow);
        let Message::V3(r) = Message::decode(&report).unwrap() else {
            panic!()
        };
        let plain = r.plaintext(&keys).unwrap();
        let mut reader = crate::snmp::ber::BerReader::new(&plain);
        let content = reader
            .read(crate::snmp::ber::TAG_SEQUENCE, "scoped")
            .unwrap();
        let mut inner = crate::snmp::ber::BerReader::new(content);
        inner.read_any("ctx").unwrap();
        inner.read_any("name").unwrap();
        assert_eq!(Pdu::read(&mut inner).unwrap().tag, PDU_REPORT);
    }
}
