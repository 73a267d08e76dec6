//! SNMPv3 USM for notifications (RFC 3414 3.2, RFC 3412 6.2). Who is authoritative
//! depends on the PDU:
//!
//! - a **trap** is sent by its authoritative engine: the message carries the sender's
//!   engine ID, boots and time; the user's keys are localized to that engine ID, and
//!   timeliness is checked against what earlier messages of that engine said (first
//!   contact is trusted, then boots and time may only go forward, within 150 s);
//! - an **inform** is sent to the receiver as authoritative engine: our engine ID and
//!   boots/time, and a sender that does not know them yet is answered with the Reports of
//!   discovery (usmStatsUnknownEngineIDs, usmStatsNotInTimeWindows). That side is
//!   [`DeviceSecurity`], the same code the simulated agent answers requests with.
//!
//! A message must come at its user's security level exactly: a noAuthNoPriv message
//! naming a user with keys is refused, as it proves nothing about the sender.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::events::TrapRejection;
use crate::snmp::authority::{DeviceSecurity, UsmRefusal};
use crate::snmp::message::{ScopedPdu, V3Message, FLAG_PRIV};
use crate::snmp::usm::KeyCache;
use crate::snmp::{SecurityLevel, UsmUser};

/// RFC 3414 3.2 7b: a message more than this many seconds behind is refused.
const TIME_WINDOW: u64 = 150;
/// Remote engines whose boots and time are remembered; past this the table is cleared
/// (first contact is trusted anyway).
const MAX_ENGINES: usize = 10_000;

/// A v3 message that passed USM: its scoped PDU in clear, and who sent it.
#[derive(Debug)]
pub struct Authenticated {
    pub plaintext: Vec<u8>,
    pub user: String,
    /// True when it came to our engine ID (an inform; the answer goes out with
    /// [`V3Security::respond`]).
    pub to_us: bool,
    pub msg_id: i32,
    pub level: SecurityLevel,
}

/// What to do with a v3 message that did not pass.
#[derive(Debug)]
pub enum Refused {
    /// Discovery: answer with this Report (not a refusal of anything).
    Discovery { report: Vec<u8> },
    /// Refused: count it, and answer with the Report when there is one (an inform
    /// sender asked to hear, RFC 3412 7.1 3b).
    Rejected {
        rejection: TrapRejection,
        detail: String,
        report: Option<Vec<u8>>,
    },
}

impl Users {
    fn new(users: &[UsmUser], engine_id: &[u8], boots: u32, keys: &KeyCache) -> Users {
        Users {
            by_name: users
                .iter()
                .map(|u| (u.name.as_bytes().to_vec(), u.clone()))
                .collect(),
            authority: DeviceSecurity::new(engine_id.to_vec(), users, keys).with_boots(boots),
        }
    }
}

struct Remote {
    boots: u32,
    time: u32,
    at: Instant,
}

/// The receiver's v3 side: its users, its own engine (for informs), and what it knows
/// of the engines traps came from.
pub struct V3Security {
    /// Replaced by a reload ([`V3Security::set_users`]); engine time and the remote
    /// engines' state stay.
    users: RwLock<Arc<Users>>,
    engine_id: Vec<u8>,
    boots: u32,
    keys: KeyCache,
    started: Instant,
    remotes: Mutex<HashMap<Vec<u8>, Remote>>,
}

/// The users, by name, and our engine with their keys localized to it.
struct Users {
    by_name: HashMap<Vec<u8>, UsmUser>,
    authority: DeviceSecurity,
}

impl V3Security {
    /// `engine_id` and `boots`: ours, for informs (see [`super::engine`]).
    pub fn new(users: &[UsmUser], engine_id: Vec<u8>, boots: u32) -> V3Security {
        let keys = KeyCache::default();
        let users = Users::new(users, &engine_id, boots, &keys);
        V3Security {
            users: RwLock::new(Arc::new(users)),
            engine_id,
            boots,
            keys,
            started: Instant::now(),
            remotes: Mutex::default(),
        }
    }

    /// Replaces the users (a reload of the secrets file).
    pub fn set_users(&self, users: &[UsmUser]) {
        let users = Arc::new(Users::new(users, &self.engine_id, self.boots, &self.keys));
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = users;
    }

    fn users(&self) -> Arc<Users> {
        Arc::clone(&self.users.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn engine_id(&self) -> &[u8] {
        &self.engine_id
    }

    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// RFC 3414 3.2 on a message, as the authoritative engine when it names our engine
    /// ID (or none: discovery), as the non-authoritative one otherwise.
    pub fn check(&self, whole: &[u8], m: &V3Message<'_>) -> Result<Authenticated, Refused> {
        if m.engine_id.is_empty() || m.engine_id == self.engine_id() {
            self.check_to_us(whole, m)
        } else {
            self.check_from_sender(whole, m, Instant::now())
        }
    }

    fn check_to_us(&self, whole: &[u8], m: &V3Message<'_>) -> Result<Authenticated, Refused> {
        let uptime = self.uptime();
        let users = self.users();
        let authority = &users.authority;
        let accepted = match authority.check(whole, m, uptime) {
            Ok(accepted) => accepted,
            Err(UsmRefusal::UnknownEngineId) => {
                return match authority.report(m, UsmRefusal::UnknownEngineId, uptime) {
                    Some(report) => Err(Refused::Discovery { report }),
                    None => Err(Refused::Rejected {
                        rejection: TrapRejection::Malformed,
                        detail: "a v3 message with an empty msgAuthoritativeEngineID that is not a reportable discovery probe".into(),
                        report: None,
                    }),
                };
            }
            Err(refusal) => {
                let (rejection, detail) = refusal_detail(refusal, m);
                return Err(Refused::Rejected {
                    rejection,
                    detail,
                    report: authority.report(m, refusal, uptime),
                });
            }
        };
        let user = user_at_level(&users, m)?;
        Ok(Authenticated {
            plaintext: accepted.plaintext,
            user: user.name.clone(),
            to_us: true,
            msg_id: accepted.msg_id,
            level: accepted.level,
        })
    }

    fn check_from_sender(
        &self,
        whole: &[u8],
        m: &V3Message<'_>,
        now: Instant,
    ) -> Result<Authenticated, Refused> {
        let users = self.users();
        let user = user_at_level(&users, m)?;
        let keys = self.keys.localize(user, m.engine_id);
        let level = m.level();
        if level >= SecurityLevel::AuthNoPriv {
            if !m.authentic(whole, &keys) {
                return Err(rejected(UsmRefusal::WrongDigest, m));
            }
            self.timely(m, now)?;
        }
        let plaintext = m
            .plaintext(&keys)
            .map_err(|_| rejected(UsmRefusal::DecryptionError, m))?;
        if level == SecurityLevel::AuthPriv && ScopedPdu::decode(&plaintext).is_err() {
            return Err(rejected(UsmRefusal::DecryptionError, m));
        }
        Ok(Authenticated {
            plaintext,
            user: user.name.clone(),
            to_us: false,
            msg_id: m.msg_id,
            level,
        })
    }

    /// RFC 3414 3.2 7b, as the non-authoritative engine: boots and time may not go back
    /// (beyond the window) from what the engine said before.
    fn timely(&self, m: &V3Message<'_>, now: Instant) -> Result<(), Refused> {
        let mut remotes = self.remotes.lock().unwrap_or_else(|p| p.into_inner());
        if m.boots >= i32::MAX as u32 {
            return Err(rejected(UsmRefusal::NotInTimeWindow, m));
        }
        if let Some(r) = remotes.get(m.engine_id) {
            let their_now = u64::from(r.time) + now.saturating_duration_since(r.at).as_secs();
            let behind = m.boots < r.boots
                || (m.boots == r.boots && u64::from(m.time) + TIME_WINDOW < their_now);
            if behind {
                return Err(rejected(UsmRefusal::NotInTimeWindow, m));
            }
            if m.boots == r.boots && u64::from(m.time) <= their_now {
                return Ok(());
            }
        }
        if remotes.len() >= MAX_ENGINES && !remotes.contains_key(m.engine_id) {
            remotes.clear();
        }
        remotes.insert(
            m.engine_id.to_vec(),
            Remote {
                boots: m.boots,
                time: m.time,
                at: now,
            },
        );
        Ok(())
    }

    /// The v3 Response around `pdu` (an inform's acknowledgement), at the level and
    /// with the keys the inform came with, in the inform's context.
    pub fn respond(
        &self,
        a: &Authenticated,
        context: (&[u8], &[u8]),
        pdu: &[u8],
    ) -> Option<Vec<u8>> {
        let accepted = crate::snmp::authority::Accepted {
            plaintext: Vec::new(),
            msg_id: a.msg_id,
            level: a.level,
            user: a.user.as_bytes().to_vec(),
        };
        self.users()
            .authority
            .respond_in(&accepted, context, pdu, self.uptime())
    }
}

/// The message's user, when the message is at that user's level exactly.
fn user_at_level<'u>(users: &'u Users, m: &V3Message<'_>) -> Result<&'u UsmUser, Refused> {
    let Some(user) = users.by_name.get(m.user) else {
        return Err(rejected(UsmRefusal::UnknownUser, m));
    };
    if m.level() != user.level()
        || (m.flags & FLAG_PRIV != 0 && m.level() != SecurityLevel::AuthPriv)
    {
        return Err(Refused::Rejected {
            rejection: TrapRejection::SecurityLevel,
            detail: format!(
                "v3 user {:?} sent at {}, but is configured for {}",
                user.name,
                m.level(),
                user.level()
            ),
            report: None,
        });
    }
    Ok(user)
}

fn rejected(refusal: UsmRefusal, m: &V3Message<'_>) -> Refused {
    let (rejection, detail) = refusal_detail(refusal, m);
    Refused::Rejected {
        rejection,
        detail,
        report: None,
    }
}

/// The rejection reason and a message naming the user (never a key).
fn refusal_detail(refusal: UsmRefusal, m: &V3Message<'_>) -> (TrapRejection, String) {
    let user = String::from_utf8_lossy(m.user);
    match refusal {
        UsmRefusal::UnknownUser => (
            TrapRejection::UnknownUser,
            format!("v3 user {user:?} is not in the secrets file's trap_users"),
        ),
        UsmRefusal::UnsupportedSecLevel => (
            TrapRejection::SecurityLevel,
            format!("v3 user {user:?} sent at {}, above its configured level", m.level()),
        ),
        UsmRefusal::WrongDigest => (
            TrapRejection::Authentication,
            format!("v3 user {user:?}: wrong authentication (protocol or passphrase)"),
        ),
        UsmRefusal::DecryptionError => (
            TrapRejection::Decryption,
            format!("v3 user {user:?}: cannot decrypt (wrong privacy protocol or passphrase)"),
        ),
        UsmRefusal::NotInTimeWindow => (
            TrapRejection::TimeWindow,
            format!(
                "v3 user {user:?}: engine boots {} time {} is outside the time window (a replay, or the sender's clock went back)",
                m.boots, m.time
            ),
        ),
        UsmRefusal::UnknownEngineId => (
            TrapRejection::Malformed,
            "unknown msgAuthoritativeEngineID".to_string(),
        ),
    }
}
