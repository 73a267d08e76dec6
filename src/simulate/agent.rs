//! One simulated device answering one request: bytes in, response bytes out.
//!
//! No I/O here, so the whole protocol behaviour is unit-testable and fuzzable.
//! Requests are decoded with `snmp2::Pdu::from_bytes`; responses are encoded
//! with our BER writer into a reused [`ResponseBuffer`], and the per-request
//! scratch space lives in [`Scratch`], so serving allocates nothing once the
//! buffers have grown to size.

use std::sync::Arc;
use std::time::Duration;

use snmp2::{MessageType, Pdu, Version};

use crate::snmp::ber;
use crate::snmp::message::{self, ScopedPdu};
use crate::snmp::SnmpValue;

use super::counters::{advanced, CounterMode};
use super::recording::{Entry, Recording};
use super::response::{ResponseBuffer, ResponseHeader, HEADER_BOUND};
use crate::snmp::authority::{self as security, DeviceSecurity};

/// Largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

const ERR_TOO_BIG: u32 = 1;
const ERR_NO_SUCH_NAME: u32 = 2;
const ERR_NOT_WRITABLE: u32 = 17;

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response is in the buffer, see [`ResponseBuffer::message`].
    Reply,
    Dropped(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a decodable SNMP message.
    Malformed,
    /// Like snmpd: silence, so a scanner learns nothing.
    WrongCommunity,
    /// v3 without users, traps, responses, GETBULK in v1, ...
    Unsupported,
    /// A v3 request refused by USM and not reportable.
    Security,
}

/// Per-socket reusable space for the request being served.
#[derive(Default)]
pub struct Scratch {
    /// Components of all request OIDs, back to back.
    components: Vec<u32>,
    /// Where each request OID sits in `components`.
    spans: Vec<(usize, usize)>,
    /// GETBULK repeaters: next entry index, and whether it returned anything yet.
    cursors: Vec<(usize, bool)>,
    one_oid: Vec<u32>,
}

impl Scratch {
    fn oid(&self, i: usize) -> &[u32] {
        let (start, end) = self.spans[i];
        &self.components[start..end]
    }
}

/// Bytes a v3 response needs beyond a v2c one (USM parameters, contexts, the
/// HMAC, cipher padding), kept free when trimming GETBULK answers.
const V3_RESERVE: usize = 384;

/// A recording served under one community (v1/v2c) and, with
/// [`Agent::with_security`], to v3 users.
#[derive(Clone)]
pub struct Agent {
    recording: Arc<Recording>,
    community: Vec<u8>,
    mode: CounterMode,
    max_response: usize,
    security: Option<Arc<DeviceSecurity>>,
    /// Added to the elapsed time for counters, so devices serving one
    /// recording do not all show the same values.
    phase: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    V1,
    V2c,
}

impl Agent {
    /// `max_response` is capped at the largest UDP payload.
    pub fn new(
        recording: Arc<Recording>,
        community: &str,
        mode: CounterMode,
        max_response: usize,
    ) -> Agent {
        Agent {
            recording,
            community: community.as_bytes().to_vec(),
            mode,
            max_response: max_response.clamp(64, MAX_UDP_PAYLOAD),
            security: None,
            phase: Duration::ZERO,
        }
    }

    /// Serves v3 too, with this device's USM engine.
    pub fn with_security(mut self, security: Arc<DeviceSecurity>) -> Agent {
        self.security = Some(security);
        self
    }

    /// Counters (and sysUpTime) run `phase` ahead of the clock.
    pub fn with_phase(mut self, phase: Duration) -> Agent {
        self.phase = phase;
        self
    }

    pub fn community_len(&self) -> usize {
        self.community.len()
    }

    pub fn max_response(&self) -> usize {
        self.max_response
    }

    /// Answers `packet`. `elapsed` is how long the simulator has been running
    /// (used only when counters advance).
    pub fn handle(
        &self,
        packet: &[u8],
        elapsed: Duration,
        scratch: &mut Scratch,
        out: &mut ResponseBuffer,
    ) -> Outcome {
        if let Some(v3) = security::as_v3(packet) {
            return self.handle_v3(v3, packet, elapsed, scratch, out);
        }
        let Ok(pdu) = Pdu::from_bytes(packet) else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        let wire = match pdu.version() {
            Ok(Version::V1) => Wire::V1,
            Ok(Version::V2C) => Wire::V2c,
            _ => return Outcome::Dropped(DropReason::Unsupported),
        };
        if pdu.community != self.community.as_slice() {
            return Outcome::Dropped(DropReason::WrongCommunity);
        }
        if !decode_request_oids(&pdu, scratch) {
            return Outcome::Dropped(DropReason::Malformed);
        }
        let tag = match pdu.message_type {
            MessageType::GetRequest => message::PDU_GET,
            MessageType::GetNextRequest => message::PDU_GET_NEXT,
            MessageType::GetBulkRequest => message::PDU_GET_BULK,
            MessageType::SetRequest => message::PDU_SET,
            _ => return Outcome::Dropped(DropReason::Unsupported),
        };
        let mut request = Request {
            agent: self,
            scratch,
            elapsed: elapsed + self.phase,
            wire,
            limit: self
                .max_response
                .saturating_sub(HEADER_BOUND + pdu.community.len()),
        };
        let Some((error_status, error_index)) = request.answer(
            tag,
            i64::from(pdu.error_status),
            i64::from(pdu.error_index),
            out,
        ) else {
            return Outcome::Dropped(DropReason::Unsupported);
        };
        let header = ResponseHeader {
            version: if wire == Wire::V1 { 0 } else { 1 },
            community: pdu.community,
            request_id: pdu.req_id,
            error_status,
            error_index,
        };
        if out.finish(&header).is_err() {
            return Outcome::Dropped(DropReason::Malformed);
        }
        Outcome::Reply
    }

    /// A v3 request: USM checks (answered with Reports), then the same
    /// answering code as v2c, wrapped in a v3 response.
    fn handle_v3(
        &self,
        decoded: Result<message::V3Message<'_>, ()>,
        packet: &[u8],
        elapsed: Duration,
        scratch: &mut Scratch,
        out: &mut ResponseBuffer,
    ) -> Outcome {
        let Some(security) = &self.security else {
            return Outcome::Dropped(DropReason::Unsupported);
        };
        let Ok(v3) = decoded else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        let accepted = match security.check(packet, &v3, elapsed) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                return match security.report(&v3, refusal, elapsed) {
                    Some(report) => {
                        out.set_message(&report);
                        Outcome::Reply
                    }
                    None => Outcome::Dropped(DropReason::Security),
                }
            }
        };
        let Ok(scoped) = ScopedPdu::decode(&accepted.plaintext) else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        let pdu = scoped.pdu;
        if !decode_pdu_oids(&pdu, scratch) {
            return Outcome::Dropped(DropReason::Malformed);
        }
        let asked = usize::try_from(v3.max_size).unwrap_or(MAX_UDP_PAYLOAD);
        let mut request = Request {
            agent: self,
            scratch,
            elapsed: elapsed + self.phase,
            wire: Wire::V2c,
            limit: self
                .max_response
                .min(asked)
                .saturating_sub(V3_RESERVE + v3.user.len())
                .max(64),
        };
        let Some((error_status, error_index)) =
            request.answer(pdu.tag, pdu.error_status, pdu.error_index, out)
        else {
            return Outcome::Dropped(DropReason::Unsupported);
        };
        let mut response = Vec::with_capacity(out.body_len() + 24);
        let body = out.body_bytes();
        let encoded = message::push_pdu(
            &mut response,
            message::PDU_RESPONSE,
            pdu.request_id,
            i64::from(error_status),
            i64::from(error_index),
            |list| {
                list.extend_from_slice(body);
                Ok(())
            },
        );
        match encoded
            .ok()
            .and_then(|()| security.respond(&accepted, &response, elapsed))
        {
            Some(bytes) => {
                out.set_message(&bytes);
                Outcome::Reply
            }
            None => Outcome::Dropped(DropReason::Malformed),
        }
    }
}

/// The OIDs of a PDU decoded by our codec go to `scratch`; false if one is bad.
fn decode_pdu_oids(pdu: &message::Pdu<'_>, scratch: &mut Scratch) -> bool {
    scratch.components.clear();
    scratch.spans.clear();
    for raw in pdu.raw_varbinds() {
        let Ok(raw) = raw else {
            return false;
        };
        if ber::decode_oid_content(raw.oid, &mut scratch.one_oid).is_err() {
            return false;
        }
        let start = scratch.components.len();
        scratch.components.extend_from_slice(&scratch.one_oid);
        scratch.spans.push((start, scratch.components.len()));
    }
    true
}

/// The request OIDs go to `scratch`; false if one is not a valid OID.
fn decode_request_oids(pdu: &Pdu<'_>, scratch: &mut Scratch) -> bool {
    scratch.components.clear();
    scratch.spans.clear();
    for (name, _value) in pdu.varbinds.clone() {
        if ber::decode_oid_content(name.as_bytes(), &mut scratch.one_oid).is_err() {
            return false;
        }
        let start = scratch.components.len();
        scratch.components.extend_from_slice(&scratch.one_oid);
        scratch.spans.push((start, scratch.components.len()));
    }
    true
}

/// An error-status answer instead of varbinds.
struct Refusal {
    status: u32,
    index: u32,
}

const TOO_BIG: Refusal = Refusal {
    status: ERR_TOO_BIG,
    index: 0,
};

struct Request<'a> {
    agent: &'a Agent,
    scratch: &'a mut Scratch,
    elapsed: Duration,
    wire: Wire,
    /// Largest varbind list the answer may carry (the message limit less
    /// the headers around the list).
    limit: usize,
}

impl Request<'_> {
    /// Writes the answer to a request PDU `tag` into `out`'s body and returns
    /// its error-status and error-index; `None` for PDUs we do not answer.
    fn answer(&mut self, tag: u8, a: i64, b: i64, out: &mut ResponseBuffer) -> Option<(u32, u32)> {
        out.begin();
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        let answered = match (tag, self.wire) {
            (message::PDU_GET, _) => self.get(out),
            (message::PDU_GET_NEXT, _) => self.get_next(out),
            (message::PDU_GET_BULK, Wire::V2c) => self.get_bulk(out, count(a), count(b)),
            (message::PDU_SET, _) => {
                let status = if self.wire == Wire::V1 {
                    ERR_NO_SUCH_NAME
                } else {
                    ERR_NOT_WRITABLE
                };
                Err(Refusal { status, index: 1 })
            }
            _ => return None,
        };
        let Err(refusal) = answered else {
            return Some((0, 0));
        };
        out.begin();
        // tooBig carries no varbinds; other errors echo the request (RFC 3416),
        // unless the echo itself is too big.
        if refusal.status != ERR_TOO_BIG && self.echo_request(out).is_err() {
            out.begin();
            return Some((TOO_BIG.status, TOO_BIG.index));
        }
        Some((refusal.status, refusal.index))
    }

    fn entries(&self) -> &[Entry] {
        self.agent.recording.entries()
    }

    fn fits(&self, out: &ResponseBuffer) -> bool {
        out.body_len() <= self.limit
    }

    fn request_count(&self) -> usize {
        self.scratch.spans.len()
    }

    /// Index (1-based, as on the wire) of request varbind `i`.
    fn wire_index(i: usize) -> u32 {
        u32::try_from(i + 1).unwrap_or(u32::MAX)
    }

    fn get(&self, out: &mut ResponseBuffer) -> Result<(), Refusal> {
        for i in 0..self.request_count() {
            let oid = self.scratch.oid(i);
            match self.agent.recording.position(oid) {
                Ok(at) if self.visible(at) => self.push_entry(out, at),
                Ok(_) | Err(_) if self.wire == Wire::V1 => {
                    return Err(Refusal {
                        status: ERR_NO_SUCH_NAME,
                        index: Self::wire_index(i),
                    })
                }
                Ok(_) => self.push_exception(out, oid, &SnmpValue::NoSuchInstance),
                Err(at) => {
                    let kind = self.miss_kind(oid, at);
                    self.push_exception(out, oid, &kind)
                }
            }
            if !self.fits(out) {
                return Err(TOO_BIG);
            }
        }
        Ok(())
    }

    fn get_next(&self, out: &mut ResponseBuffer) -> Result<(), Refusal> {
        for i in 0..self.request_count() {
            self.push_next(out, i)?;
            if !self.fits(out) {
                return Err(TOO_BIG);
            }
        }
        Ok(())
    }

    /// GETNEXT of request varbind `i`.
    fn push_next(&self, out: &mut ResponseBuffer, i: usize) -> Result<(), Refusal> {
        let oid = self.scratch.oid(i);
        let at = self.next_visible(self.agent.recording.successor_index(oid));
        if at < self.entries().len() {
            self.push_entry(out, at);
        } else if self.wire == Wire::V1 {
            return Err(Refusal {
                status: ERR_NO_SUCH_NAME,
                index: Self::wire_index(i),
            });
        } else {
            self.push_exception(out, oid, &SnmpValue::EndOfMibView);
        }
        Ok(())
    }

    /// RFC 3416 4.2.3, trimmed to fit: non-repeaters first, then up to
    /// `max_repetitions` rows of the repeaters. When the size limit is hit we
    /// keep whole rows (a client walking several columns resumes cleanly), or
    /// as much of the first row as fits; if not even the non-repeaters fit,
    /// tooBig. Rows stop early once every repeater has reached endOfMibView.
    fn get_bulk(
        &mut self,
        out: &mut ResponseBuffer,
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> Result<(), Refusal> {
        let count = self.request_count();
        let non_repeaters = usize::try_from(non_repeaters).map_or(count, |n| n.min(count));
        for i in 0..non_repeaters {
            self.push_next(out, i)?;
            if !self.fits(out) {
                return Err(TOO_BIG);
            }
        }
        if non_repeaters == count {
            return Ok(());
        }
        let mut cursors = std::mem::take(&mut self.scratch.cursors);
        cursors.clear();
        cursors.extend((non_repeaters..count).map(|i| {
            (
                self.agent.recording.successor_index(self.scratch.oid(i)),
                false,
            )
        }));
        let len = self.entries().len();
        'rows: for row in 0..max_repetitions {
            let row_start = out.body_len();
            let mut all_ended = true;
            for (column, cursor) in cursors.iter_mut().enumerate() {
                let before = out.body_len();
                let (next, returned_any) = *cursor;
                if next < len {
                    self.push_entry(out, next);
                    *cursor = (next + 1, true);
                    all_ended = false;
                } else {
                    // The name of an endOfMibView is the last name of that column.
                    let name = if returned_any {
                        self.entries()[len - 1].oid.components()
                    } else {
                        self.scratch.oid(non_repeaters + column)
                    };
                    self.push_exception(out, name, &SnmpValue::EndOfMibView);
                }
                if !self.fits(out) {
                    let keep = if row > 0 { row_start } else { before };
                    out.truncate_body(keep);
                    break 'rows;
                }
            }
            if all_ended {
                break;
            }
        }
        self.scratch.cursors = cursors;
        Ok(())
    }

    /// In v1, Counter64 does not exist: such entries are invisible (RFC 3584).
    fn visible(&self, at: usize) -> bool {
        self.wire == Wire::V2c || !matches!(self.entries()[at].value, SnmpValue::Counter64(_))
    }

    fn next_visible(&self, mut at: usize) -> usize {
        while at < self.entries().len() && !self.visible(at) {
            at += 1;
        }
        at
    }

    /// noSuchInstance when the recording has other OIDs under the requested
    /// OID's parent (the object exists, not this instance), else noSuchObject.
    fn miss_kind(&self, oid: &[u32], insert_at: usize) -> SnmpValue {
        let Some((_, parent)) = oid.split_last() else {
            return SnmpValue::NoSuchObject;
        };
        let entries = self.entries();
        let near = [insert_at.checked_sub(1), Some(insert_at)];
        let has_sibling = near
            .into_iter()
            .flatten()
            .filter_map(|i| entries.get(i))
            .any(|e| e.oid.components().starts_with(parent));
        if has_sibling && !parent.is_empty() {
            SnmpValue::NoSuchInstance
        } else {
            SnmpValue::NoSuchObject
        }
    }

    fn push_entry(&self, out: &mut ResponseBuffer, at: usize) {
        let entry = &self.entries()[at];
        match entry.motion {
            Some(motion) if self.agent.mode == CounterMode::Advancing => {
                let body = out.body();
                let start = body.len();
                body.extend_from_slice(&entry.varbind[entry.oid_tlv.clone()]);
                let value = advanced(&entry.value, motion, self.elapsed);
                // Counters and ticks always encode.
                if ber::push_value(body, &value).is_err() {
                    body.truncate(start);
                    body.extend_from_slice(&entry.varbind);
                    return;
                }
                ber::wrap_from(body, start, ber::TAG_SEQUENCE);
            }
            _ => out.body().extend_from_slice(&entry.varbind),
        }
    }

    fn push_exception(&self, out: &mut ResponseBuffer, oid: &[u32], value: &SnmpValue) {
        // Cannot fail: request OIDs come from `decode_oid_content`, whose output
        // always re-encodes, and recorded OIDs were encoded at load time.
        let _ = ber::push_varbind(out.body(), oid, value);
    }

    /// The request's varbinds with Null values, for error responses.
    fn echo_request(&self, out: &mut ResponseBuffer) -> Result<(), ber::BerError> {
        for i in 0..self.request_count() {
            ber::push_varbind(out.body(), self.scratch.oid(i), &SnmpValue::Null)?;
            if !self.fits(out) {
                return Err(ber::BerError::NoRoom(self.limit));
            }
        }
        Ok(())
    }
}
