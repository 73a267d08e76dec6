//! The authoritative side of SNMPv3 USM (RFC 3414 3.2): an engine ID, boots and
//! time, users with keys localized to it, and the checks an incoming message goes
//! through, each failure answered with the Report net-snmp's tools expect
//! (usmStatsUnknownEngineIDs during discovery, and so on).
//!
//! Two roles use it: the simulated device answering requests, and the trap receiver
//! acknowledging v3 informs (for an inform the receiver is the authoritative engine,
//! RFC 3412 6.2 / RFC 3414 1.5.1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::snmp::message::{self, Message, ScopedPdu, V3Header, V3Message, FLAG_PRIV};
use crate::snmp::usm::{KeyCache, LocalizedKeys};
use crate::snmp::{SecurityLevel, SnmpValue, UsmUser};

/// RFC 3414 3.2 7: messages more than this many seconds off are refused.
const TIME_WINDOW: i64 = 150;
/// usmStats counters, 1.3.6.1.6.3.15.1.1.N.0.
const USM_STATS: [u32; 9] = [1, 3, 6, 1, 6, 3, 15, 1, 1];

/// Why a v3 request was refused, and the usmStats counter its Report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsmRefusal {
    UnsupportedSecLevel = 1,
    NotInTimeWindow = 2,
    UnknownUser = 3,
    UnknownEngineId = 4,
    WrongDigest = 5,
    DecryptionError = 6,
}

/// One authoritative USM engine (a simulated device's, or the trap receiver's).
pub struct DeviceSecurity {
    engine_id: Vec<u8>,
    boots: u32,
    users: HashMap<Vec<u8>, (UsmUser, LocalizedKeys)>,
    counters: [AtomicU32; 6],
}

/// A request that passed every check: its scoped PDU in clear, and what the
/// response must carry.
pub struct Accepted {
    pub plaintext: Vec<u8>,
    pub msg_id: i32,
    pub level: SecurityLevel,
    /// The user name, which also finds the keys to answer with.
    pub user: Vec<u8>,
}

impl DeviceSecurity {
    /// `engine_id` should be unique per device (RFC 3411 5); users' keys are
    /// localized to it (`keys` caches the passphrase hashes across devices).
    pub fn new(engine_id: Vec<u8>, users: &[UsmUser], keys: &KeyCache) -> DeviceSecurity {
        let users = users
            .iter()
            .map(|user| {
                let localized = keys.localize(user, &engine_id);
                (user.name.as_bytes().to_vec(), (user.clone(), localized))
            })
            .collect();
        DeviceSecurity {
            engine_id,
            boots: 1,
            users,
            counters: Default::default(),
        }
    }

    /// msgAuthoritativeEngineBoots (1 unless set): an engine that keeps its ID across
    /// restarts must count them, or a message recorded before a restart could be
    /// replayed once the engine's time comes round to it again (RFC 3414 2.2.2).
    pub fn with_boots(mut self, boots: u32) -> DeviceSecurity {
        self.boots = boots.clamp(1, i32::MAX as u32);
        self
    }

    /// The engine ID a simulated device `index` gets: RFC 3411 format 5
    /// (octets) under net-snmp's enterprise number, `salt` making devices of
    /// different simulator runs differ.
    pub fn engine_id_for(salt: u32, index: u32) -> Vec<u8> {
        let mut id = vec![0x80, 0x00, 0x1f, 0x88, 0x05];
        id.extend_from_slice(b"pnp");
        id.extend_from_slice(&salt.to_be_bytes());
        id.extend_from_slice(&index.to_be_bytes());
        id
    }

    pub fn engine_id(&self) -> &[u8] {
        &self.engine_id
    }

    fn engine_time(uptime: Duration) -> u32 {
        u32::try_from(uptime.as_secs())
            .unwrap_or(u32::MAX)
            .min(i32::MAX as u32)
    }

    /// RFC 3414 3.2 steps 3-8 on a decoded v3 message.
    pub fn check(
        &self,
        whole: &[u8],
        message: &V3Message<'_>,
        uptime: Duration,
    ) -> Result<Accepted, UsmRefusal> {
        if message.engine_id != self.engine_id.as_slice() {
            return Err(UsmRefusal::UnknownEngineId);
        }
        let Some((user, keys)) = self.users.get(message.user) else {
            return Err(UsmRefusal::UnknownUser);
        };
        let level = message.level();
        if level > user.level()
            || (message.flags & FLAG_PRIV != 0 && level != SecurityLevel::AuthPriv)
        {
            return Err(UsmRefusal::UnsupportedSecLevel);
        }
        if level >= SecurityLevel::AuthNoPriv {
            if !message.authentic(whole, keys) {
                return Err(UsmRefusal::WrongDigest);
            }
            let ours = i64::from(Self::engine_time(uptime));
            if message.boots != self.boots || (i64::from(message.time) - ours).abs() > TIME_WINDOW {
                return Err(UsmRefusal::NotInTimeWindow);
            }
        }
        let plaintext = message
            .plaintext(keys)
            .map_err(|_| UsmRefusal::DecryptionError)?;
        // Garbage after decryption means the wrong privacy key: say so (net-snmp
        // stays silent, which leaves its users guessing).
        if level == SecurityLevel::AuthPriv && ScopedPdu::decode(&plaintext).is_err() {
            return Err(UsmRefusal::DecryptionError);
        }
        Ok(Accepted {
            plaintext,
            msg_id: message.msg_id,
            level,
            user: message.user.to_vec(),
        })
    }

    /// The Report answering `refusal`, or `None` when the request was not
    /// reportable (or could not even be read).
    pub fn report(
        &self,
        message: &V3Message<'_>,
        refusal: UsmRefusal,
        uptime: Duration,
    ) -> Option<Vec<u8>> {
        if !message.reportable() {
            return None;
        }
        let count = self.counters[refusal as usize - 1].fetch_add(1, Ordering::Relaxed) + 1;
        let mut oid = USM_STATS.to_vec();
        oid.extend([refusal as u32, 0]);
        // The request-id is readable only in a plaintext request.
        let request_id = match message.data {
            message::ScopedData::Plain(tlv) => {
                ScopedPdu::decode(tlv).map_or(0, |s| s.pdu.request_id)
            }
            message::ScopedData::Encrypted(_) => 0,
        };
        let mut pdu = Vec::new();
        message::push_pdu(&mut pdu, message::PDU_REPORT, request_id, 0, 0, |out| {
            crate::snmp::ber::push_varbind(out, &oid, &SnmpValue::Counter32(count))
        })
        .ok()?;
        // notInTimeWindow goes back authenticated, so the client can trust the
        // time it carries (RFC 3414 3.2 7b); the others without security.
        let (level, keys) = match (refusal, self.users.get(message.user)) {
            (UsmRefusal::NotInTimeWindow, Some((_, keys))) => (SecurityLevel::AuthNoPriv, keys),
            _ => (SecurityLevel::NoAuthNoPriv, &NO_KEYS),
        };
        self.wrap(message.msg_id, level, message.user, keys, &pdu, uptime)
    }

    /// The response message around a response PDU, in our own context.
    pub fn respond(&self, accepted: &Accepted, pdu: &[u8], uptime: Duration) -> Option<Vec<u8>> {
        self.respond_in(accepted, (&self.engine_id, b""), pdu, uptime)
    }

    /// The response message around a response PDU, in the request's context
    /// (contextEngineID, contextName): an
    /// inform's contextEngineID is its sender's engine (RFC 3413 3.2), and net-snmp
    /// takes only a Response with the context it sent as the answer.
    pub fn respond_in(
        &self,
        accepted: &Accepted,
        (context_engine_id, context_name): (&[u8], &[u8]),
        pdu: &[u8],
        uptime: Duration,
    ) -> Option<Vec<u8>> {
        let (_, keys) = self.users.get(&accepted.user)?;
        let scoped = message::scoped_pdu(context_engine_id, context_name, pdu);
        self.wrap_scoped(
            accepted.msg_id,
            accepted.level,
            &accepted.user,
            keys,
            &scoped,
            uptime,
        )
    }

    fn wrap(
        &self,
        msg_id: i32,
        level: SecurityLevel,
        user: &[u8],
        keys: &LocalizedKeys,
        pdu: &[u8],
        uptime: Duration,
    ) -> Option<Vec<u8>> {
        let scoped = message::scoped_pdu(&self.engine_id, b"", pdu);
        self.wrap_scoped(msg_id, level, user, keys, &scoped, uptime)
    }

    fn wrap_scoped(
        &self,
        msg_id: i32,
        level: SecurityLevel,
        user: &[u8],
        keys: &LocalizedKeys,
        scoped: &[u8],
        uptime: Duration,
    ) -> Option<Vec<u8>> {
        let header = V3Header {
            msg_id,
            flags: message::flags_for(level, false),
            engine_id: &self.engine_id,
            boots: self.boots,
            time: Self::engine_time(uptime),
            user,
        };
        message::v3_message(&header, keys, scoped).ok()
    }
}

static NO_KEYS: LocalizedKeys = LocalizedKeys {
    auth: None,
    privacy: None,
};

/// Decodes `packet` as a v3 message, if it is one.
pub fn as_v3(packet: &[u8]) -> Option<Result<V3Message<'_>, ()>> {
    let mut outer = crate::snmp::ber::BerReader::new(packet);
    let content = outer.read(crate::snmp::ber::TAG_SEQUENCE, "message").ok()?;
    let mut r = crate::snmp::ber::BerReader::new(content);
    if r.read_signed(crate::snmp::ber::TAG_INTEGER, "version")
        .ok()?
        != 3
    {
        return None;
    }
    Some(match Message::decode(packet) {
        Ok(Message::V3(message)) => Ok(message),
        _ => Err(()),
    })
}
