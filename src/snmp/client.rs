//! An SNMP client for one device: v1, v2c and v3 (USM) requests with timeouts,
//! retries and a poll deadline, and subtree walks, over the shared
//! [`SnmpEngine`] transport.
//!
//! Every attempt of a request is sent under a fresh request ID, and a reply to
//! *any* attempt answers the request: an agent that answers just after our
//! timeout still saves the retry. Replies that match an ID and the device's
//! address but are not acceptable (wrong community, failed authentication,
//! undecodable) are dropped and counted, and we keep waiting for a good one, so
//! a spoofed packet can delay an answer until the timeout but never replace it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::credentials::{SecurityLevel, UsmUser};
use super::engine::{Exchange, SnmpEngine};
use super::message::{
    self, community_message, request_pdu, scoped_pdu, v3_message, Message, Pdu, ScopedPdu,
    V3Header, FLAG_AUTH, FLAG_REPORTABLE, PDU_GET, PDU_GET_BULK, PDU_GET_NEXT, PDU_REPORT,
    PDU_RESPONSE,
};
use super::peer::PeerState;
use super::usm::LocalizedKeys;
use super::walk::{DoneReason, LimitExceeded, Step, Walk, DEFAULT_WALK_BYTES, DEFAULT_WALK_LIMIT};
use super::{Oid, SnmpError, SnmpTarget, SnmpVersion, Varbind};

/// RFC 3416 error-status `tooBig`: the answer would not fit in one message.
pub(super) const ERROR_TOO_BIG: u32 = 1;
/// RFC 1157 `noSuchName`: in v1, the end of the MIB for GETNEXT.
const ERROR_NO_SUCH_NAME: u32 = 2;
/// usmStats (1.3.6.1.6.3.15.1.1.N.0): what a v3 Report is about.
const USM_STATS: [u32; 9] = [1, 3, 6, 1, 6, 3, 15, 1, 1];

/// The result of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    pub rows: Vec<Varbind>,
    /// Set when the walk ended because the agent's MIB ended (endOfMibView in
    /// v2c/v3, noSuchName in v1): the name the agent gave that end.
    pub end_of_mib: Option<Oid>,
}

pub struct SnmpClient {
    engine: SnmpEngine,
    label: String,
    addr: SocketAddr,
    pub(super) version: SnmpVersion,
    community: Vec<u8>,
    usm: Option<UsmUser>,
    /// The v3 context name.
    context: Vec<u8>,
    timeout: Duration,
    pub(super) retries: u32,
    pub(super) max_repetitions: u32,
    pub(super) walk_limit: usize,
    /// Bytes every walk of this client may still return together (one poll of one
    /// device; see [`super::walk::DEFAULT_WALK_BYTES`]).
    pub(super) walk_bytes_left: usize,
    walk_bytes_budget: usize,
    /// The poll's hard deadline, and the budget it was made from (for errors).
    deadline: Option<(Instant, Duration)>,
    requests_sent: u64,
    /// The agent has answered a request of this client (a response, even an error).
    pub(super) answered: bool,
}

/// One request as asked, before it has an ID.
struct Ask<'a> {
    tag: u8,
    oids: &'a [Oid],
    a: i64,
    b: i64,
    expected: Expected,
}

#[derive(Clone, Copy)]
enum Expected {
    Exactly(usize),
    AtMost(u64),
}

/// What became of one reply.
enum Reply {
    Answer(Result<Vec<Varbind>, SnmpError>),
    /// Not acceptable; the reason, for the error if nothing better comes.
    Reject(String),
    Report(ReportKind),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ReportKind {
    UnsupportedSecLevel,
    NotInTimeWindow,
    UnknownUser,
    UnknownEngineId,
    WrongDigest,
    DecryptionError,
    Other(String),
}

/// Varbinds in every accepted answer, process-wide: what `panoptes bench` divides CPU by.
static VARBINDS_RECEIVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Varbinds this process's SNMP clients have received in accepted answers.
pub fn varbinds_received() -> u64 {
    VARBINDS_RECEIVED.load(std::sync::atomic::Ordering::Relaxed)
}

impl SnmpClient {
    /// A client for `target` on the process-wide [`SnmpEngine`]. Resolves the
    /// address; sends nothing (v3 discovery happens on the first request).
    pub async fn connect(target: &SnmpTarget) -> Result<SnmpClient, SnmpError> {
        let engine = SnmpEngine::global().map_err(|source| SnmpError::Network {
            target: target.label(),
            source,
        })?;
        SnmpClient::connect_with(engine, target).await
    }

    /// Like [`SnmpClient::connect`] with `version` instead of the target's.
    pub async fn connect_with_version(
        target: &SnmpTarget,
        version: SnmpVersion,
    ) -> Result<SnmpClient, SnmpError> {
        let mut target = target.clone();
        target.version = version;
        SnmpClient::connect(&target).await
    }

    /// A client for `target` on a given engine.
    pub async fn connect_with(
        engine: &SnmpEngine,
        target: &SnmpTarget,
    ) -> Result<SnmpClient, SnmpError> {
        let label = target.label();
        let usm = match (target.version, &target.usm) {
            (SnmpVersion::V3, None) => {
                return Err(SnmpError::Config {
                    target: label,
                    detail: "SNMP v3 needs a user (snmp.v3_user)".to_string(),
                })
            }
            (SnmpVersion::V3, Some(user)) => {
                user.check().map_err(|e| SnmpError::Config {
                    target: label.clone(),
                    detail: e.to_string(),
                })?;
                Some(user.clone())
            }
            _ => None,
        };
        let addr = resolve(target, &label).await?;
        Ok(SnmpClient {
            engine: engine.clone(),
            label,
            addr,
            version: target.version,
            community: target.community.expose().as_bytes().to_vec(),
            context: target.context.as_bytes().to_vec(),
            usm,
            timeout: target.timeout,
            retries: target.retries,
            max_repetitions: target.max_repetitions.max(1),
            walk_limit: DEFAULT_WALK_LIMIT,
            walk_bytes_left: DEFAULT_WALK_BYTES,
            walk_bytes_budget: DEFAULT_WALK_BYTES,
            deadline: None,
            requests_sent: 0,
            answered: false,
        })
    }

    /// Replaces the row bound of the walks.
    pub fn with_walk_limit(mut self, limit: usize) -> SnmpClient {
        self.walk_limit = limit;
        self
    }

    /// Replaces the bytes all this client's walks may return together.
    pub fn with_walk_bytes(mut self, bytes: usize) -> SnmpClient {
        self.walk_bytes_left = bytes;
        self.walk_bytes_budget = bytes;
        self
    }

    /// A hard deadline `budget` from now for everything this client does
    /// (waiting for a slot included); past it requests fail with
    /// [`SnmpError::Deadline`].
    pub fn with_deadline(mut self, budget: Duration) -> SnmpClient {
        self.set_deadline(Some(budget));
        self
    }

    pub fn set_deadline(&mut self, budget: Option<Duration>) {
        self.deadline = budget.map(|budget| (Instant::now() + budget, budget));
    }

    /// UDP requests sent so far, retries and v3 discovery included.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent
    }

    /// Repetitions a walk asks for in each GETBULK.
    pub fn max_repetitions(&self) -> u32 {
        self.max_repetitions
    }

    /// Rows one walk may return.
    pub fn walk_limit(&self) -> usize {
        self.walk_limit
    }

    /// The engine this client's requests go through.
    pub(super) fn engine(&self) -> &SnmpEngine {
        &self.engine
    }

    /// The agent's address.
    pub(super) fn peer(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` of the agent.
    pub fn target_label(&self) -> &str {
        &self.label
    }

    pub fn version(&self) -> SnmpVersion {
        self.version
    }

    /// GET: one varbind per OID, in order; missing ones come back as
    /// `NoSuchObject`/`NoSuchInstance` values (v2c/v3) or a `noSuchName`
    /// error (v1).
    pub async fn get(&mut self, oids: &[Oid]) -> Result<Vec<Varbind>, SnmpError> {
        self.one_per_oid(PDU_GET, oids).await
    }

    /// GETNEXT: the successor of each OID.
    pub async fn get_next(&mut self, oids: &[Oid]) -> Result<Vec<Varbind>, SnmpError> {
        self.one_per_oid(PDU_GET_NEXT, oids).await
    }

    /// A GET or GETNEXT: one varbind back per OID asked.
    async fn one_per_oid(&mut self, tag: u8, oids: &[Oid]) -> Result<Vec<Varbind>, SnmpError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        self.request(Ask {
            tag,
            oids,
            a: 0,
            b: 0,
            expected: Expected::Exactly(oids.len()),
        })
        .await
    }

    /// GETBULK (v2c and v3; v1 has none).
    pub async fn get_bulk(
        &mut self,
        oids: &[Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> Result<Vec<Varbind>, SnmpError> {
        if self.version == SnmpVersion::V1 {
            return Err(SnmpError::UnsupportedVersion {
                target: self.label.clone(),
                version: SnmpVersion::V1,
                reason: "GETBULK does not exist in SNMPv1 (walks use GETNEXT)".to_string(),
            });
        }
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let n = oids.len() as u64;
        let nr = u64::from(non_repeaters).min(n);
        self.request(Ask {
            tag: PDU_GET_BULK,
            oids,
            a: i64::from(non_repeaters),
            b: i64::from(max_repetitions),
            expected: Expected::AtMost(nr + (n - nr) * u64::from(max_repetitions)),
        })
        .await
    }

    /// Every varbind under `root` (exclusive), in agent order: GETBULK with the
    /// target's `max_repetitions` in v2c/v3, GETNEXT in v1. Stops when the
    /// agent leaves the subtree, reaches endOfMibView (or noSuchName in v1),
    /// or goes backwards (logged; rows so far returned). An agent answering
    /// `tooBig` gets asked again for fewer repetitions.
    pub async fn bulk_walk(&mut self, root: &Oid) -> Result<Vec<Varbind>, SnmpError> {
        self.walk(root).await.map(|walked| walked.rows)
    }

    /// [`SnmpClient::bulk_walk`], also saying whether the walk ran off the
    /// end of the agent's MIB (what `snmpbulkwalk` prints as "No more variables").
    pub async fn walk(&mut self, root: &Oid) -> Result<Walked, SnmpError> {
        if self.version == SnmpVersion::V1 {
            return self.getnext_walk(root).await;
        }
        let mut walk = Walk::new(root, self.walk_limit);
        let mut repetitions = self.max_repetitions;
        loop {
            let batch = match self
                .get_bulk(std::slice::from_ref(walk.cursor()), 0, repetitions)
                .await
            {
                Err(SnmpError::ErrorStatus { status, .. })
                    if status == ERROR_TOO_BIG && repetitions > 1 =>
                {
                    repetitions /= 2;
                    continue;
                }
                other => other?,
            };
            if self.walk_step(&mut walk, root, batch)? {
                break;
            }
        }
        let (rows, end) = walk.finish();
        Ok(Walked {
            rows,
            end_of_mib: end,
        })
    }

    /// Every row under `root` as (index after `root`, value), by GETBULK with the given
    /// `non_repeaters` and `max_repetitions` as the original's plugins asked (no
    /// `tooBig` retry, no v1 fallback). Stops at an exception value, a non-increasing
    /// OID, the end of the subtree, or after `limit` rows (rows so far kept); the rows
    /// count against this client's walk byte budget.
    pub async fn walk_rows(
        &mut self,
        root: &Oid,
        non_repeaters: u32,
        max_repetitions: u32,
        limit: usize,
    ) -> Result<Vec<(String, super::SnmpValue)>, SnmpError> {
        let mut rows = Vec::new();
        let mut cursor = root.clone();
        loop {
            let batch = self
                .get_bulk(
                    std::slice::from_ref(&cursor),
                    non_repeaters,
                    max_repetitions,
                )
                .await?;
            let mut advanced = false;
            rows.reserve(batch.len().min(limit.saturating_sub(rows.len())));
            for vb in batch {
                if vb.value.is_exception() || vb.oid <= cursor {
                    return Ok(rows);
                }
                let Some(suffix) = vb.oid.suffix_after(root).filter(|s| !s.is_empty()) else {
                    return Ok(rows);
                };
                let size = super::walk::varbind_bytes(&vb);
                if size > self.walk_bytes_left {
                    return Err(SnmpError::WalkBytes {
                        target: self.label.clone(),
                        root: root.clone(),
                        limit: self.walk_bytes_budget,
                    });
                }
                self.walk_bytes_left -= size;
                let index = super::oid::dotted(suffix);
                rows.push((index, vb.value));
                cursor = vb.oid;
                advanced = true;
                if rows.len() >= limit {
                    return Ok(rows);
                }
            }
            if !advanced {
                return Ok(rows);
            }
        }
    }

    /// Every varbind under `root` by GETNEXT, one per request (any version).
    pub async fn next_walk(&mut self, root: &Oid) -> Result<Vec<Varbind>, SnmpError> {
        self.getnext_walk(root).await.map(|walked| walked.rows)
    }

    async fn getnext_walk(&mut self, root: &Oid) -> Result<Walked, SnmpError> {
        let mut walk = Walk::new(root, self.walk_limit);
        let mut end_of_mib = None;
        loop {
            let batch = match self.get_next(std::slice::from_ref(walk.cursor())).await {
                Err(SnmpError::ErrorStatus { status, .. })
                    if status == ERROR_NO_SUCH_NAME && self.version == SnmpVersion::V1 =>
                {
                    end_of_mib = Some(walk.cursor().clone());
                    break;
                }
                other => other?,
            };
            if self.walk_step(&mut walk, root, batch)? {
                break;
            }
        }
        let (rows, end) = walk.finish();
        Ok(Walked {
            rows,
            end_of_mib: end.or(end_of_mib),
        })
    }

    /// Feeds a batch to the walk; true when the walk is over.
    fn walk_step(
        &mut self,
        walk: &mut Walk,
        root: &Oid,
        batch: Vec<Varbind>,
    ) -> Result<bool, SnmpError> {
        let result = walk.accept(batch, &mut self.walk_bytes_left);
        self.step_outcome(root, result)
    }

    /// What a walk's step means for the caller: true when that walk is over; a bound
    /// run into is an error.
    pub(super) fn step_outcome(
        &self,
        root: &Oid,
        result: Result<Step, LimitExceeded>,
    ) -> Result<bool, SnmpError> {
        match result {
            Ok(Step::Continue) => Ok(false),
            Ok(Step::Done(DoneReason::NotIncreasing { previous, returned })) => {
                tracing::warn!(
                    target = %self.label, %root, %previous, %returned,
                    "agent returned a non-increasing OID during a walk; stopping with the rows so far"
                );
                Ok(true)
            }
            Ok(Step::Done(_)) => Ok(true),
            Err(LimitExceeded::Rows) => Err(SnmpError::WalkLimit {
                target: self.label.clone(),
                root: root.clone(),
                limit: self.walk_limit,
            }),
            Err(LimitExceeded::Bytes) => Err(SnmpError::WalkBytes {
                target: self.label.clone(),
                root: root.clone(),
                limit: self.walk_bytes_budget,
            }),
        }
    }

    fn deadline_error(&self) -> SnmpError {
        SnmpError::Deadline {
            target: self.label.clone(),
            budget: self.deadline.map_or(Duration::ZERO, |(_, budget)| budget),
        }
    }

    /// When the next attempt must give up: its timeout, or the deadline if
    /// sooner. `None` once the deadline has passed.
    fn attempt_until(&self) -> Option<Instant> {
        let now = Instant::now();
        let until = now + self.timeout;
        match self.deadline {
            Some((deadline, _)) if deadline <= now => None,
            Some((deadline, _)) => Some(until.min(deadline)),
            None => Some(until),
        }
    }

    fn deadline_passed(&self) -> bool {
        self.deadline
            .is_some_and(|(deadline, _)| deadline <= Instant::now())
    }

    async fn request(&mut self, ask: Ask<'_>) -> Result<Vec<Varbind>, SnmpError> {
        if self.deadline_passed() {
            return Err(self.deadline_error());
        }
        let deadline = self.deadline.map(|(deadline, _)| deadline);
        let Some(mut exchange) = self.engine.begin(self.addr, deadline).await else {
            return Err(self.deadline_error());
        };
        let result = match self.version {
            SnmpVersion::V3 => self.v3_request(&mut exchange, &ask).await,
            SnmpVersion::V1 | SnmpVersion::V2c => self.community_request(&mut exchange, &ask).await,
        };
        self.requests_sent += exchange.attempts() as u64;
        if let Ok(varbinds) = &result {
            VARBINDS_RECEIVED
                .fetch_add(varbinds.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if matches!(&result, Ok(_) | Err(SnmpError::ErrorStatus { .. })) {
            self.answered = true;
        }
        if let Err(SnmpError::Timeout { .. }) = &result {
            exchange.timed_out();
            if self.deadline_passed() {
                return Err(self.deadline_error());
            }
        }
        result
    }

    fn protocol_error(&self, detail: impl Into<String>) -> SnmpError {
        SnmpError::Protocol {
            target: self.label.clone(),
            detail: detail.into(),
        }
    }

    fn pdu_bytes(&self, ask: &Ask<'_>, id: i32) -> Result<Vec<u8>, SnmpError> {
        request_pdu(ask.tag, id, ask.a, ask.b, ask.oids)
            .map_err(|e| self.protocol_error(format!("cannot encode the request: {e}")))
    }

    /// The error when no acceptable answer came.
    fn no_answer(&self, attempts: u32, rejected: Option<String>) -> SnmpError {
        match rejected {
            Some(reason) => self.protocol_error(format!(
                "no acceptable answer after {attempts} attempt(s); the last reply was refused: {reason}"
            )),
            None => SnmpError::Timeout {
                target: self.label.clone(),
                after: self.timeout.saturating_mul(attempts),
            },
        }
    }

    async fn send(&self, exchange: &Exchange, packet: &[u8]) -> Result<(), SnmpError> {
        exchange
            .send(packet)
            .await
            .map_err(|source| SnmpError::Network {
                target: self.label.clone(),
                source,
            })
    }

    async fn community_request(
        &mut self,
        exchange: &mut Exchange,
        ask: &Ask<'_>,
    ) -> Result<Vec<Varbind>, SnmpError> {
        let wire_version = if self.version == SnmpVersion::V1 {
            0
        } else {
            1
        };
        let attempts = self.retries.saturating_add(1);
        let mut rejected = None;
        for _ in 0..attempts {
            let Some(until) = self.attempt_until() else {
                return Err(self.deadline_error());
            };
            let id = exchange.new_id();
            let packet =
                community_message(wire_version, &self.community, &self.pdu_bytes(ask, id)?);
            self.send(exchange, &packet).await?;
            while let Some(reply) = exchange.recv_until(until).await {
                match self.read_community_reply(&reply, wire_version, exchange, ask) {
                    Reply::Answer(answer) => return answer,
                    Reply::Reject(reason) | Reply::Report(ReportKind::Other(reason)) => {
                        exchange.rejected();
                        rejected = Some(reason);
                    }
                    Reply::Report(_) => exchange.rejected(),
                }
            }
        }
        Err(self.no_answer(attempts, rejected))
    }

    fn read_community_reply(
        &self,
        bytes: &[u8],
        wire_version: i64,
        exchange: &Exchange,
        ask: &Ask<'_>,
    ) -> Reply {
        let (version, community, pdu) = match Message::decode(bytes) {
            Ok(Message::Community {
                version,
                community,
                pdu,
            }) => (version, community, pdu),
            Ok(Message::V3(_)) => return Reply::Reject("a v3 message".into()),
            Err(e) => return Reply::Reject(format!("undecodable: {e}")),
        };
        if version != wire_version {
            return Reply::Reject(format!("wrong version {version}"));
        }
        if community != self.community.as_slice() {
            return Reply::Reject("wrong community".into());
        }
        if pdu.tag != PDU_RESPONSE || !exchange.is_ours(pdu.request_id) {
            return Reply::Reject("not a response to this request".into());
        }
        read_pdu(&pdu, ask, &self.label)
    }

    async fn v3_request(
        &mut self,
        exchange: &mut Exchange,
        ask: &Ask<'_>,
    ) -> Result<Vec<Varbind>, SnmpError> {
        let Some(user) = self.usm.clone() else {
            return Err(SnmpError::Config {
                target: self.label.clone(),
                detail: "SNMP v3 needs a user".to_string(),
            });
        };
        let mut state = match self.engine.peers().get(self.addr, &user) {
            Some(state) => state,
            None => self.discover(exchange, &user).await?,
        };
        let attempts = self.retries.saturating_add(1);
        let mut attempt = 0;
        let mut resyncs = 0;
        let mut rediscovered = false;
        let mut rejected = None;
        'attempts: while attempt < attempts {
            attempt += 1;
            let Some(until) = self.attempt_until() else {
                return Err(self.deadline_error());
            };
            let id = exchange.new_id();
            let scoped = scoped_pdu(&state.engine_id, &self.context, &self.pdu_bytes(ask, id)?);
            let header = V3Header {
                msg_id: id,
                flags: message::flags_for(user.level(), true),
                engine_id: &state.engine_id,
                boots: state.boots,
                time: state.time_now(),
                user: user.name.as_bytes(),
            };
            let packet = v3_message(&header, &state.keys, &scoped)
                .map_err(|e| self.protocol_error(format!("cannot encode the v3 request: {e}")))?;
            self.send(exchange, &packet).await?;
            while let Some(reply) = exchange.recv_until(until).await {
                match self.read_v3_reply(&reply, &mut state, &user, exchange, ask) {
                    Reply::Answer(answer) => {
                        self.engine.peers().put(self.addr, state);
                        return answer;
                    }
                    Reply::Reject(reason) => {
                        exchange.rejected();
                        rejected = Some(reason);
                    }
                    Reply::Report(ReportKind::NotInTimeWindow) if resyncs < 2 => {
                        // `state` now holds the agent's boots/time: ask again
                        // without using up an attempt.
                        resyncs += 1;
                        attempt -= 1;
                        self.engine.peers().put(self.addr, state.clone());
                        continue 'attempts;
                    }
                    Reply::Report(ReportKind::UnknownEngineId) if !rediscovered => {
                        // The agent's engine ID changed (a new box, a reset).
                        rediscovered = true;
                        attempt -= 1;
                        self.engine.peers().forget(self.addr, &user);
                        state = self.discover(exchange, &user).await?;
                        continue 'attempts;
                    }
                    Reply::Report(kind) => return Err(self.report_error(kind, &user)),
                }
            }
        }
        if rejected.is_none()
            && user.level() == SecurityLevel::AuthPriv
            && self.privacy_is_wrong(exchange, &state, &user).await
        {
            return Err(self.report_error(ReportKind::DecryptionError, &user));
        }
        Err(self.no_answer(attempts, rejected))
    }

    /// Why an authPriv request got no answer. Agents (net-snmp among them)
    /// drop a request that decrypts to garbage without a Report, so a wrong
    /// privacy passphrase looks like a dead device. One probe tells them
    /// apart: an authenticated message outside the time window is answered
    /// with an authenticated notInTimeWindow Report *before* any decryption,
    /// which proves the agent is up and our authentication key right.
    async fn privacy_is_wrong(
        &self,
        exchange: &mut Exchange,
        state: &PeerState,
        user: &UsmUser,
    ) -> bool {
        let Some(until) = self.attempt_until() else {
            return false;
        };
        let id = exchange.new_id();
        let Ok(pdu) = request_pdu(PDU_GET, id, 0, 0, &[]) else {
            return false;
        };
        let header = V3Header {
            msg_id: id,
            flags: message::flags_for(SecurityLevel::AuthNoPriv, true),
            engine_id: &state.engine_id,
            boots: state.boots,
            time: state.time_now().saturating_add(100_000),
            user: user.name.as_bytes(),
        };
        let Ok(packet) = v3_message(
            &header,
            &state.keys,
            &scoped_pdu(&state.engine_id, b"", &pdu),
        ) else {
            return false;
        };
        if exchange.send(&packet).await.is_err() {
            return false;
        }
        while let Some(reply) = exchange.recv_until(until).await {
            let Ok(Message::V3(m)) = Message::decode(&reply) else {
                continue;
            };
            if m.msg_id != id || m.flags & FLAG_AUTH == 0 || !m.authentic(&reply, &state.keys) {
                continue;
            }
            let Ok(plain) = m.plaintext(&state.keys) else {
                continue;
            };
            if let Ok(scoped) = ScopedPdu::decode(&plain) {
                if scoped.pdu.tag == PDU_REPORT {
                    return report_kind(&scoped.pdu) == ReportKind::NotInTimeWindow;
                }
            }
        }
        false
    }

    fn report_error(&self, kind: ReportKind, user: &UsmUser) -> SnmpError {
        let target = self.label.clone();
        let name = user.name.clone();
        match kind {
            ReportKind::UnknownUser => SnmpError::UnknownUser { target, user: name },
            ReportKind::WrongDigest => SnmpError::WrongAuth { target, user: name },
            ReportKind::DecryptionError => SnmpError::WrongPriv { target, user: name },
            ReportKind::UnsupportedSecLevel => SnmpError::UnsupportedSecurityLevel {
                target,
                user: name,
                level: user.level(),
            },
            ReportKind::NotInTimeWindow => SnmpError::NotInTimeWindow { target, user: name },
            ReportKind::UnknownEngineId => SnmpError::UnknownEngine {
                target,
                detail: "the agent does not accept the engine ID it announced (usmStatsUnknownEngineIDs after rediscovery)".to_string(),
            },
            ReportKind::Other(what) => self.protocol_error(what),
        }
    }

    fn read_v3_reply(
        &self,
        bytes: &[u8],
        state: &mut PeerState,
        user: &UsmUser,
        exchange: &Exchange,
        ask: &Ask<'_>,
    ) -> Reply {
        let message = match Message::decode(bytes) {
            Ok(Message::V3(message)) => message,
            Ok(Message::Community { .. }) => return Reply::Reject("not a v3 message".into()),
            Err(e) => return Reply::Reject(format!("undecodable: {e}")),
        };
        if !exchange.is_ours(message.msg_id) {
            return Reply::Reject("not a reply to this request".into());
        }
        let authenticated = message.flags & FLAG_AUTH != 0;
        if authenticated {
            if message.engine_id != state.engine_id.as_slice() {
                return Reply::Reject("authenticated by another engine ID".into());
            }
            if !message.authentic(bytes, &state.keys) {
                return Reply::Reject("authentication failed (HMAC does not match)".into());
            }
            if !state.observe(message.boots, message.time) {
                return Reply::Reject("from an earlier boot of the agent (replay?)".into());
            }
        }
        let plain = match message.plaintext(&state.keys) {
            Ok(plain) => plain,
            Err(e) => return Reply::Reject(e.to_string()),
        };
        let scoped = match ScopedPdu::decode(&plain) {
            Ok(scoped) => scoped,
            Err(e) => return Reply::Reject(format!("undecodable scoped PDU: {e}")),
        };
        match scoped.pdu.tag {
            PDU_REPORT => {
                let kind = report_kind(&scoped.pdu);
                if kind == ReportKind::NotInTimeWindow {
                    if !authenticated && user.level() > SecurityLevel::NoAuthNoPriv {
                        return Reply::Reject("unauthenticated notInTimeWindow report".into());
                    }
                    state.boots = message.boots;
                    state.time = message.time;
                    state.heard_at = Instant::now();
                }
                Reply::Report(kind)
            }
            PDU_RESPONSE => {
                if message.level() != user.level() {
                    return Reply::Reject(format!(
                        "answer at {} to a {} request",
                        message.level(),
                        user.level()
                    ));
                }
                if !authenticated {
                    state.observe(message.boots, message.time);
                }
                read_pdu(&scoped.pdu, ask, &self.label)
            }
            _ => Reply::Reject("not a response".into()),
        }
    }

    /// RFC 3414 4: an unauthenticated GET with no engine ID; the agent's
    /// Report carries its engine ID, boots and time.
    async fn discover(
        &mut self,
        exchange: &mut Exchange,
        user: &UsmUser,
    ) -> Result<PeerState, SnmpError> {
        self.engine.count_discovery();
        let attempts = self.retries.saturating_add(1);
        let no_keys = LocalizedKeys {
            auth: None,
            privacy: None,
        };
        let mut rejected = None;
        for _ in 0..attempts {
            let Some(until) = self.attempt_until() else {
                return Err(self.deadline_error());
            };
            let id = exchange.new_id();
            let pdu = request_pdu(PDU_GET, id, 0, 0, &[])
                .map_err(|e| self.protocol_error(e.to_string()))?;
            let header = V3Header {
                msg_id: id,
                flags: FLAG_REPORTABLE,
                engine_id: b"",
                boots: 0,
                time: 0,
                user: b"",
            };
            let packet = v3_message(&header, &no_keys, &scoped_pdu(b"", b"", &pdu))
                .map_err(|e| self.protocol_error(e.to_string()))?;
            self.send(exchange, &packet).await?;
            while let Some(reply) = exchange.recv_until(until).await {
                let (engine_id, boots, time) = match Message::decode(&reply) {
                    Ok(Message::V3(m)) if exchange.is_ours(m.msg_id) && !m.engine_id.is_empty() => {
                        (m.engine_id.to_vec(), m.boots, m.time)
                    }
                    Ok(Message::V3(m)) if m.engine_id.is_empty() => {
                        exchange.rejected();
                        rejected = Some("the discovery answer carries no engine ID".to_string());
                        continue;
                    }
                    _ => {
                        exchange.rejected();
                        rejected = Some("not a v3 discovery answer".to_string());
                        continue;
                    }
                };
                let keys = self.engine.keys().clone();
                let for_keys = (user.clone(), engine_id.clone());
                let localized =
                    tokio::task::spawn_blocking(move || keys.localize(&for_keys.0, &for_keys.1))
                        .await
                        .map_err(|e| self.protocol_error(format!("key derivation failed: {e}")))?;
                let state = PeerState {
                    engine_id,
                    boots,
                    time,
                    heard_at: Instant::now(),
                    keys: Arc::new(localized),
                    user: user.clone(),
                };
                self.engine.peers().put(self.addr, state.clone());
                return Ok(state);
            }
        }
        Err(match rejected {
            Some(reason) => SnmpError::UnknownEngine {
                target: self.label.clone(),
                detail: reason,
            },
            None => SnmpError::Timeout {
                target: self.label.clone(),
                after: self.timeout.saturating_mul(attempts),
            },
        })
    }
}

fn report_kind(pdu: &Pdu<'_>) -> ReportKind {
    let first = pdu
        .decode_varbinds()
        .ok()
        .and_then(|v| v.into_iter().next());
    let Some(varbind) = first else {
        return ReportKind::Other("an empty Report".to_string());
    };
    match varbind.oid.components().strip_prefix(&USM_STATS[..]) {
        Some([1, ..]) => ReportKind::UnsupportedSecLevel,
        Some([2, ..]) => ReportKind::NotInTimeWindow,
        Some([3, ..]) => ReportKind::UnknownUser,
        Some([4, ..]) => ReportKind::UnknownEngineId,
        Some([5, ..]) => ReportKind::WrongDigest,
        Some([6, ..]) => ReportKind::DecryptionError,
        _ => ReportKind::Other(format!("the agent sent a Report about {}", varbind.oid)),
    }
}

/// The answer in a response PDU: an error status, or its varbinds when they
/// decode and their count fits the request.
fn read_pdu(pdu: &Pdu<'_>, ask: &Ask<'_>, label: &str) -> Reply {
    if pdu.error_status != 0 {
        return Reply::Answer(Err(SnmpError::ErrorStatus {
            target: label.to_string(),
            status: u32::try_from(pdu.error_status).unwrap_or(u32::MAX),
            index: u32::try_from(pdu.error_index).unwrap_or(u32::MAX),
        }));
    }
    // Counted before anything is decoded: an answer with more varbinds than asked for is
    // refused before its list is allocated.
    let count = match pdu.varbind_count() {
        Ok(count) => count,
        Err(e) => return Reply::Reject(format!("undecodable varbinds: {e}")),
    };
    let fits = match ask.expected {
        Expected::Exactly(n) => count == n,
        Expected::AtMost(n) => count as u64 <= n,
    };
    if !fits {
        let wanted = match ask.expected {
            Expected::Exactly(n) => format!("{n}"),
            Expected::AtMost(n) => format!("at most {n}"),
        };
        return Reply::Reject(format!("expected {wanted} varbinds, found {count}"));
    }
    match pdu.decode_counted(count) {
        Ok(varbinds) => Reply::Answer(Ok(varbinds)),
        Err(e) => Reply::Reject(format!("undecodable varbinds: {e}")),
    }
}

/// Turns `host`/`port` into one socket address, or says clearly why not.
async fn resolve(target: &SnmpTarget, label: &str) -> Result<SocketAddr, SnmpError> {
    let invalid = |reason: String| SnmpError::InvalidAddress {
        target: label.to_string(),
        reason,
    };
    let host = target.host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(invalid("the host is empty".to_string()));
    }
    if target.port == 0 {
        return Err(invalid("port 0 cannot be polled".to_string()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, target.port));
    }
    // Dotted digits that did not parse are a typo'd address (127.0.0.257), not a
    // name to send to DNS.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid(format!(
            "{host:?} is not a valid IPv4 address (four numbers 0-255)"
        )));
    }
    let mut addrs = tokio::net::lookup_host((host, target.port))
        .await
        .map_err(|e| invalid(format!("cannot resolve host {host:?}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| invalid(format!("host {host:?} resolved to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::{Community, SnmpValue};

    /// A response PDU holding `n` varbinds (`1.3.6.1.2.1.2.2.1.10.<k>` = Counter32 k),
    /// its varbind list then spoiled by `spoil`.
    fn response_with(n: u32, spoil: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        message::push_pdu(&mut out, message::PDU_RESPONSE, 7, 0, 0, |out| {
            for k in 1..=n {
                let oid = [1, 3, 6, 1, 2, 1, 2, 2, 1, 10, k];
                crate::snmp::ber::push_varbind(out, &oid, &SnmpValue::Counter32(k))?;
            }
            spoil(out);
            Ok(())
        })
        .unwrap();
        out
    }

    fn read(bytes: &[u8], expected: Expected) -> Result<usize, String> {
        let pdu = message::Pdu::read(&mut crate::snmp::ber::BerReader::new(bytes)).unwrap();
        let ask = Ask {
            tag: message::PDU_GET_BULK,
            oids: &[],
            a: 0,
            b: 25,
            expected,
        };
        match read_pdu(&pdu, &ask, "10.0.0.1:161") {
            Reply::Answer(Ok(varbinds)) => {
                // Sized by the count: no room left over, none grown into.
                assert_eq!(varbinds.capacity(), varbinds.len());
                assert_eq!(
                    varbinds.last().map(|v| v.value.clone()),
                    Some(SnmpValue::Counter32(varbinds.len() as u32))
                );
                Ok(varbinds.len())
            }
            Reply::Answer(Err(e)) => Err(e.to_string()),
            Reply::Reject(reason) => Err(reason),
            Reply::Report(kind) => Err(format!("{kind:?}")),
        }
    }

    #[test]
    fn an_answer_is_counted_before_it_is_decoded() {
        let bytes = response_with(500, |_| {});
        assert_eq!(read(&bytes, Expected::AtMost(525)), Ok(500));
        assert_eq!(read(&bytes, Expected::Exactly(500)), Ok(500));
        assert_eq!(
            read(&bytes, Expected::AtMost(499)),
            Err("expected at most 499 varbinds, found 500".to_string())
        );
        assert_eq!(
            read(&bytes, Expected::Exactly(3)),
            Err("expected 3 varbinds, found 500".to_string())
        );
        // A list that is not a run of varbind SEQUENCEs is undecodable, whatever its count.
        let bytes = response_with(2, |out| out.extend_from_slice(&[0x02, 0x01, 0x05]));
        let err = read(&bytes, Expected::AtMost(525)).unwrap_err();
        assert!(err.starts_with("undecodable varbinds: "), "{err}");
        // One whose SEQUENCEs hold no proper varbind is counted, then refused by decoding.
        let bytes = response_with(2, |out| out.extend_from_slice(&[0x30, 0x01, 0x05]));
        let err = read(&bytes, Expected::AtMost(525)).unwrap_err();
        assert!(err.starts_with("undecodable varbinds: "), "{err}");
    }

    #[tokio::test]
    async fn bad_addresses_are_named() {
        for host in ["127.0.0.257", "", "1.2.3"] {
            let target = SnmpTarget::new(host, Community::from("public"));
            match SnmpClient::connect(&target).await {
                Err(e @ SnmpError::InvalidAddress { .. }) => {
                    assert!(e.to_string().contains(&target.label()), "{e}");
                    assert!(!e.to_string().contains("public"));
                }
                Err(other) => panic!("{host}: wrong error {other}"),
                Ok(_) => panic!("{host}: accepted"),
            }
        }
    }

    /// Pollers spawn these futures on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(client: &mut SnmpClient, oid: &Oid) {
        fn send<T: Send>(_: T) {}
        send(client.get(std::slice::from_ref(oid)));
        send(client.bulk_walk(oid));
        send(SnmpClient::connect(&SnmpTarget::new(
            "h",
            Community::from("c"),
        )));
    }

    #[tokio::test]
    async fn v3_without_a_user_and_v1_getbulk_are_refused_clearly() {
        let target = SnmpTarget::new("127.0.0.1", Community::from("public"));
        let err = SnmpClient::connect_with_version(&target, SnmpVersion::V3)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("needs a user"), "{err}");
        let mut client = SnmpClient::connect_with_version(&target, SnmpVersion::V1)
            .await
            .unwrap();
        let err = client
            .get_bulk(&[Oid::from([1, 3])], 0, 5)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SNMPv1"), "{err}");
    }

    #[test]
    fn reports_are_classified() {
        for (n, want) in [
            (1, ReportKind::UnsupportedSecLevel),
            (2, ReportKind::NotInTimeWindow),
            (3, ReportKind::UnknownUser),
            (4, ReportKind::UnknownEngineId),
            (5, ReportKind::WrongDigest),
            (6, ReportKind::DecryptionError),
        ] {
            let mut o = USM_STATS.to_vec();
            o.extend([n, 0]);
            let bytes = request_pdu(PDU_REPORT, 1, 0, 0, &[Oid::new(o)]).unwrap();
            let pdu = Pdu::read(&mut crate::snmp::ber::BerReader::new(&bytes)).unwrap();
            assert_eq!(report_kind(&pdu), want);
        }
    }
}
