//! SNMP messages on the wire, every version: v1/v2c community messages and v3
//! USM messages, encoded and decoded by one piece of code that the client and
//! the simulator's agent share.
//!
//! Decoding is strict and bounds-checked: a malformed or truncated message is a
//! [`DecodeError`], never a panic (see the property tests at the bottom).

use super::ber::{self, BerReader, DecodeError};
use super::credentials::SecurityLevel;
use super::usm::{self, LocalizedKeys, PrivacyError};
use super::{Oid, SnmpValue, Varbind};

pub const PDU_GET: u8 = 0xa0;
pub const PDU_GET_NEXT: u8 = 0xa1;
pub const PDU_RESPONSE: u8 = 0xa2;
pub const PDU_SET: u8 = 0xa3;
/// SNMPv1 Trap-PDU (RFC 1157 4.1.6): a layout of its own, read by
/// [`super::notification::TrapV1Pdu`], never by [`Pdu::read`].
pub const PDU_TRAP_V1: u8 = 0xa4;
pub const PDU_GET_BULK: u8 = 0xa5;
pub const PDU_INFORM: u8 = 0xa6;
pub const PDU_TRAP_V2: u8 = 0xa7;
pub const PDU_REPORT: u8 = 0xa8;

/// msgFlags bits (RFC 3412 6.4).
pub const FLAG_AUTH: u8 = 0x01;
pub const FLAG_PRIV: u8 = 0x02;
pub const FLAG_REPORTABLE: u8 = 0x04;

/// The msgSecurityModel of USM.
const USM: i64 = 3;

/// Largest message we accept and announce (msgMaxSize).
pub const MAX_MESSAGE: i64 = 65_507;

/// A PDU: its header and its varbind list, not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu<'a> {
    pub tag: u8,
    pub request_id: i32,
    /// error-status, or non-repeaters in a GETBULK.
    pub error_status: i64,
    /// error-index, or max-repetitions in a GETBULK.
    pub error_index: i64,
    /// Content of the varbind list SEQUENCE.
    pub varbinds: &'a [u8],
}

impl<'a> Pdu<'a> {
    /// Reads one PDU TLV from `reader`.
    pub fn read(reader: &mut BerReader<'a>) -> Result<Pdu<'a>, DecodeError> {
        let (tag, content) = reader.read_any("PDU")?;
        if !matches!(tag, 0xa0..=0xa3 | 0xa5..=0xa8) {
            return Err(DecodeError::Malformed("PDU (unknown PDU type)"));
        }
        let mut r = BerReader::new(content);
        let request_id = r.read_signed(ber::TAG_INTEGER, "request-id")?;
        let request_id =
            i32::try_from(request_id).map_err(|_| DecodeError::OutOfRange("request-id"))?;
        let error_status = r.read_signed(ber::TAG_INTEGER, "error-status")?;
        let error_index = r.read_signed(ber::TAG_INTEGER, "error-index")?;
        let varbinds = r.read(ber::TAG_SEQUENCE, "varbind list")?;
        Ok(Pdu {
            tag,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }

    /// Each varbind's OID content and value TLV, in order.
    pub fn raw_varbinds(&self) -> RawVarbinds<'a> {
        RawVarbinds::new(self.varbinds)
    }

    /// How many varbinds the list holds, read from their TLV headers alone (nothing
    /// decoded, nothing allocated); a list that is not a run of SEQUENCEs is an error.
    pub fn varbind_count(&self) -> Result<usize, DecodeError> {
        let mut reader = BerReader::new(self.varbinds);
        let mut n = 0;
        while !reader.is_empty() {
            reader.read(ber::TAG_SEQUENCE, "varbind")?;
            n += 1;
        }
        Ok(n)
    }

    /// Every varbind, decoded; any malformed one fails the whole list.
    pub fn decode_varbinds(&self) -> Result<Vec<Varbind>, DecodeError> {
        self.decode_counted(self.varbind_count()?)
    }

    /// [`Pdu::decode_varbinds`] for a caller that has counted them already: `count` is
    /// what [`Pdu::varbind_count`] said of this PDU (the client checks it against what it
    /// asked for first), so the headers are not walked twice.
    pub(crate) fn decode_counted(&self, count: usize) -> Result<Vec<Varbind>, DecodeError> {
        // Sized by the count: a combined GETBULK answer holds hundreds of varbinds (≈100
        // bytes each decoded), and growing to them copied the list four or five times
        // (`perf`: ≈1.5% of the poller threads, in memmove).
        let mut out = varbind_list(count);
        for raw in self.raw_varbinds() {
            out.push(raw?.decode()?);
        }
        Ok(out)
    }
}

thread_local! {
    /// Emptied varbind lists handed back by [`recycle_varbinds`], for the next answers
    /// decoded on this thread.
    static SPARE_LISTS: std::cell::RefCell<Vec<Vec<Varbind>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Spare lists a thread keeps.
const SPARE_LISTS_KEPT: usize = 2;
/// The longest list kept for reuse, in varbinds (a combined GETBULK answer of 21 columns
/// of a 48-port switch is ≈500-1,000).
const SPARE_LIST_MAX: usize = 4096;

/// An empty list with room for `count` varbinds: a spare one of this thread's when it has
/// one.
///
/// Why: an interface poll decodes two or three combined GETBULK answers of ≈60 KB each
/// into lists that live only until the walk has moved their varbinds into its columns. At
/// 10,000 devices every 30 s that was ≈730 blocks of 60 KB a second, each from and back
/// to the allocator's page runs (too large for its thread caches), whose freed pages it
/// then purged.
pub(crate) fn varbind_list(count: usize) -> Vec<Varbind> {
    let spare = SPARE_LISTS
        .try_with(|lists| lists.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten();
    match spare {
        Some(mut list) => {
            list.clear();
            list.reserve_exact(count);
            list
        }
        None => Vec::with_capacity(count),
    }
}

/// Hands an answer's list back (its varbinds dropped) for [`varbind_list`] to reuse.
pub(crate) fn recycle_varbinds(mut list: Vec<Varbind>) {
    if list.capacity() > SPARE_LIST_MAX {
        return;
    }
    list.clear();
    let _ = SPARE_LISTS.try_with(|lists| {
        if let Ok(mut lists) = lists.try_borrow_mut() {
            if lists.len() < SPARE_LISTS_KEPT {
                lists.push(list);
            }
        }
    });
}

/// One undecoded varbind.
#[derive(Debug, Clone, Copy)]
pub struct RawVarbind<'a> {
    /// OID content octets.
    pub oid: &'a [u8],
    pub value_tag: u8,
    pub value: &'a [u8],
}

impl RawVarbind<'_> {
    /// The varbind, owned: its name and its value decoded.
    pub fn decode(&self) -> Result<Varbind, DecodeError> {
        let mut components = crate::snmp::oid::Components::new();
        ber::decode_oid_content(self.oid, &mut components)
            .map_err(|_| DecodeError::Malformed("varbind name"))?;
        let value = ber::decode_value(self.value_tag, self.value)?;
        Ok(Varbind::new(Oid::from_components(components), value))
    }
}

pub struct RawVarbinds<'a> {
    reader: BerReader<'a>,
}

impl<'a> RawVarbinds<'a> {
    /// The varbinds of a varbind list's content (what a PDU's `varbinds` holds).
    pub fn new(list: &'a [u8]) -> RawVarbinds<'a> {
        RawVarbinds {
            reader: BerReader::new(list),
        }
    }
}

impl<'a> Iterator for RawVarbinds<'a> {
    type Item = Result<RawVarbind<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        let item = (|| {
            let pair = self.reader.read(ber::TAG_SEQUENCE, "varbind")?;
            let mut r = BerReader::new(pair);
            let oid = r.read(ber::TAG_OID, "varbind name")?;
            let (value_tag, value) = r.read_any("varbind value")?;
            if !r.is_empty() {
                return Err(DecodeError::Malformed("varbind (trailing bytes)"));
            }
            Ok(RawVarbind {
                oid,
                value_tag,
                value,
            })
        })();
        if item.is_err() {
            // Stop after the first error: the rest cannot be trusted.
            self.reader = BerReader::new(&[]);
        }
        Some(item)
    }
}

/// Appends a PDU TLV: header fields, then the varbinds `push_varbinds` writes.
pub fn push_pdu(
    out: &mut Vec<u8>,
    tag: u8,
    request_id: i32,
    a: i64,
    b: i64,
    push_varbinds: impl FnOnce(&mut Vec<u8>) -> Result<(), ber::BerError>,
) -> Result<(), ber::BerError> {
    let start = out.len();
    ber::push_signed(out, ber::TAG_INTEGER, i64::from(request_id));
    ber::push_signed(out, ber::TAG_INTEGER, a);
    ber::push_signed(out, ber::TAG_INTEGER, b);
    let list = out.len();
    if let Err(e) = push_varbinds(out) {
        out.truncate(start);
        return Err(e);
    }
    ber::wrap_from(out, list, ber::TAG_SEQUENCE);
    ber::wrap_from(out, start, tag);
    Ok(())
}

/// A request PDU asking for `oids` (values NULL).
pub fn request_pdu(
    tag: u8,
    request_id: i32,
    a: i64,
    b: i64,
    oids: &[Oid],
) -> Result<Vec<u8>, ber::BerError> {
    let mut out = Vec::with_capacity(32 + oids.len() * 16);
    push_pdu(&mut out, tag, request_id, a, b, |out| {
        for oid in oids {
            ber::push_varbind(out, oid.components(), &SnmpValue::Null)?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// `SEQUENCE { version, community, pdu }` (version 0 = v1, 1 = v2c).
pub fn community_message(version: i64, community: &[u8], pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdu.len() + community.len() + 16);
    ber::push_signed(&mut out, ber::TAG_INTEGER, version);
    ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, community);
    out.extend_from_slice(pdu);
    ber::wrap_from(&mut out, 0, ber::TAG_SEQUENCE);
    out
}

/// A decoded message of any version.
#[derive(Debug, Clone)]
pub enum Message<'a> {
    Community {
        /// 0 = v1, 1 = v2c.
        version: i64,
        community: &'a [u8],
        pdu: Pdu<'a>,
    },
    V3(V3Message<'a>),
}

/// The version of a message (0 = v1, 1 = v2c, 3 = v3), and a reader left at the
/// field after it: what every decoder of whole messages starts with.
pub fn read_version(bytes: &[u8]) -> Result<(i64, BerReader<'_>), DecodeError> {
    let mut outer = BerReader::new(bytes);
    let content = outer.read(ber::TAG_SEQUENCE, "message")?;
    let mut r = BerReader::new(content);
    let version = r.read_signed(ber::TAG_INTEGER, "version")?;
    Ok((version, r))
}

impl<'a> Message<'a> {
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let (version, mut r) = read_version(bytes)?;
        match version {
            0 | 1 => {
                let community = r.read(ber::TAG_OCTET_STRING, "community")?;
                let pdu = Pdu::read(&mut r)?;
                Ok(Message::Community {
                    version,
                    community,
                    pdu,
                })
            }
            3 => V3Message::read(bytes, &mut r).map(Message::V3),
            _ => Err(DecodeError::Malformed("message (unknown SNMP version)")),
        }
    }
}

/// The request-id (v1/v2c) or msgID (v3) of a message, read with as little
/// work as possible: this is what the shared-socket receiver demultiplexes on.
pub fn peek_message_id(bytes: &[u8]) -> Option<i32> {
    let mut outer = BerReader::new(bytes);
    let content = outer.read(ber::TAG_SEQUENCE, "message").ok()?;
    let mut r = BerReader::new(content);
    match r.read_signed(ber::TAG_INTEGER, "version").ok()? {
        0 | 1 => {
            r.read(ber::TAG_OCTET_STRING, "community").ok()?;
            let (_, pdu) = r.read_any("PDU").ok()?;
            let id = BerReader::new(pdu)
                .read_signed(ber::TAG_INTEGER, "request-id")
                .ok()?;
            i32::try_from(id).ok()
        }
        3 => {
            let global = r.read(ber::TAG_SEQUENCE, "msgGlobalData").ok()?;
            let id = BerReader::new(global)
                .read_signed(ber::TAG_INTEGER, "msgID")
                .ok()?;
            i32::try_from(id).ok()
        }
        _ => None,
    }
}

/// A v3 message with USM security parameters.
#[derive(Debug, Clone)]
pub struct V3Message<'a> {
    pub msg_id: i32,
    pub max_size: i64,
    pub flags: u8,
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
    pub user: &'a [u8],
    pub auth_params: &'a [u8],
    /// Where `auth_params` sits in the whole message (to zero it for the HMAC).
    pub auth_params_at: usize,
    pub priv_params: &'a [u8],
    pub data: ScopedData<'a>,
}

#[derive(Debug, Clone, Copy)]
pub enum ScopedData<'a> {
    /// The scoped PDU TLV, in clear.
    Plain(&'a [u8]),
    /// The encrypted scoped PDU (content of the OCTET STRING).
    Encrypted(&'a [u8]),
}

impl<'a> V3Message<'a> {
    fn read(whole: &'a [u8], r: &mut BerReader<'a>) -> Result<V3Message<'a>, DecodeError> {
        let global = r.read(ber::TAG_SEQUENCE, "msgGlobalData")?;
        let mut g = BerReader::new(global);
        let msg_id = g.read_signed(ber::TAG_INTEGER, "msgID")?;
        let msg_id = i32::try_from(msg_id).map_err(|_| DecodeError::OutOfRange("msgID"))?;
        let max_size = g.read_signed(ber::TAG_INTEGER, "msgMaxSize")?;
        let flags = match g.read(ber::TAG_OCTET_STRING, "msgFlags")? {
            [flags] => *flags,
            _ => return Err(DecodeError::Malformed("msgFlags (not one byte)")),
        };
        if g.read_signed(ber::TAG_INTEGER, "msgSecurityModel")? != USM {
            return Err(DecodeError::Malformed("msgSecurityModel (not USM)"));
        }
        let params = r.read(ber::TAG_OCTET_STRING, "msgSecurityParameters")?;
        let usm = BerReader::new(params).read(ber::TAG_SEQUENCE, "UsmSecurityParameters")?;
        let mut u = BerReader::new(usm);
        let engine_id = u.read(ber::TAG_OCTET_STRING, "msgAuthoritativeEngineID")?;
        let boots = u.read_signed(ber::TAG_INTEGER, "msgAuthoritativeEngineBoots")?;
        let time = u.read_signed(ber::TAG_INTEGER, "msgAuthoritativeEngineTime")?;
        let in_range = |n: i64, what| u32::try_from(n).map_err(|_| DecodeError::OutOfRange(what));
        let boots = in_range(boots, "msgAuthoritativeEngineBoots")?;
        let time = in_range(time, "msgAuthoritativeEngineTime")?;
        let user = u.read(ber::TAG_OCTET_STRING, "msgUserName")?;
        let auth_params = u.read(ber::TAG_OCTET_STRING, "msgAuthenticationParameters")?;
        let priv_params = u.read(ber::TAG_OCTET_STRING, "msgPrivacyParameters")?;
        // `auth_params` borrows from `whole`, so this is its offset.
        let auth_params_at = (auth_params.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        if auth_params_at.saturating_add(auth_params.len()) > whole.len() {
            return Err(DecodeError::Malformed("msgAuthenticationParameters"));
        }
        let data = if flags & FLAG_PRIV != 0 {
            ScopedData::Encrypted(r.read(ber::TAG_OCTET_STRING, "encryptedPDU")?)
        } else {
            ScopedData::Plain(r.read_tlv(ber::TAG_SEQUENCE, "ScopedPDU")?)
        };
        Ok(V3Message {
            msg_id,
            max_size,
            flags,
            engine_id,
            boots,
            time,
            user,
            auth_params,
            auth_params_at,
            priv_params,
            data,
        })
    }

    pub fn level(&self) -> SecurityLevel {
        match (self.flags & FLAG_AUTH != 0, self.flags & FLAG_PRIV != 0) {
            (true, true) => SecurityLevel::AuthPriv,
            (true, false) => SecurityLevel::AuthNoPriv,
            // Privacy without authentication is invalid; treat as no security
            // so the receiver refuses it at the level check.
            _ => SecurityLevel::NoAuthNoPriv,
        }
    }

    pub fn reportable(&self) -> bool {
        self.flags & FLAG_REPORTABLE != 0
    }

    /// True when the HMAC in the message matches `whole` under `keys`.
    pub fn authentic(&self, whole: &[u8], keys: &LocalizedKeys) -> bool {
        let Some((protocol, key)) = &keys.auth else {
            return false;
        };
        if self.auth_params.len() != protocol.mac_len() {
            return false;
        }
        let mut copy = whole.to_vec();
        let range = self.auth_params_at..self.auth_params_at + self.auth_params.len();
        match copy.get_mut(range) {
            Some(slot) => slot.fill(0),
            None => return false,
        }
        usm::same_mac(&usm::mac(*protocol, key, &copy), self.auth_params)
    }

    /// The scoped PDU in clear (decrypted with `keys` when encrypted).
    pub fn plaintext(&self, keys: &LocalizedKeys) -> Result<Vec<u8>, PlaintextError> {
        match self.data {
            ScopedData::Plain(tlv) => Ok(tlv.to_vec()),
            ScopedData::Encrypted(cipher) => {
                let Some((protocol, key)) = &keys.privacy else {
                    return Err(PlaintextError::NoKey);
                };
                usm::decrypt(
                    *protocol,
                    key,
                    self.boots,
                    self.time,
                    self.priv_params,
                    cipher,
                )
                .map_err(PlaintextError::Privacy)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaintextError {
    #[error("the message is encrypted and we hold no privacy key for it")]
    NoKey,
    #[error("cannot decrypt: {0}")]
    Privacy(PrivacyError),
}

/// A scoped PDU: context and PDU.
#[derive(Debug, Clone)]
pub struct ScopedPdu<'a> {
    pub context_engine_id: &'a [u8],
    pub context_name: &'a [u8],
    pub pdu: Pdu<'a>,
}

impl<'a> ScopedPdu<'a> {
    /// Decodes the first TLV of `bytes` (decrypted data may carry padding after it).
    pub fn decode(bytes: &'a [u8]) -> Result<ScopedPdu<'a>, DecodeError> {
        let content = BerReader::new(bytes).read(ber::TAG_SEQUENCE, "ScopedPDU")?;
        let mut r = BerReader::new(content);
        let context_engine_id = r.read(ber::TAG_OCTET_STRING, "contextEngineID")?;
        let context_name = r.read(ber::TAG_OCTET_STRING, "contextName")?;
        let pdu = Pdu::read(&mut r)?;
        Ok(ScopedPdu {
            context_engine_id,
            context_name,
            pdu,
        })
    }
}

/// `SEQUENCE { contextEngineID, contextName, pdu }`.
pub fn scoped_pdu(context_engine_id: &[u8], context_name: &[u8], pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdu.len() + context_engine_id.len() + context_name.len() + 12);
    ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, context_engine_id);
    ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, context_name);
    out.extend_from_slice(pdu);
    ber::wrap_from(&mut out, 0, ber::TAG_SEQUENCE);
    out
}

/// The header fields of a v3 message we send.
#[derive(Debug, Clone, Copy)]
pub struct V3Header<'a> {
    pub msg_id: i32,
    pub flags: u8,
    pub engine_id: &'a [u8],
    pub boots: u32,
    pub time: u32,
    pub user: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3EncodeError {
    #[error("the message asks for {0} but no such key is known")]
    MissingKey(&'static str),
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error("internal: the encoded message does not decode ({0})")]
    SelfCheck(DecodeError),
}

/// Encodes a v3 message around the scoped PDU TLV `scoped`: encrypts it when
/// the flags ask for privacy and signs the whole message when they ask for
/// authentication.
pub fn v3_message(
    header: &V3Header<'_>,
    keys: &LocalizedKeys,
    scoped: &[u8],
) -> Result<Vec<u8>, V3EncodeError> {
    let auth = if header.flags & FLAG_AUTH != 0 {
        Some(
            keys.auth
                .as_ref()
                .ok_or(V3EncodeError::MissingKey("authentication"))?,
        )
    } else {
        None
    };
    let mut priv_params: [u8; 8] = [0; 8];
    let encrypted = if header.flags & FLAG_PRIV != 0 {
        let (protocol, key) = keys
            .privacy
            .as_ref()
            .ok_or(V3EncodeError::MissingKey("privacy"))?;
        let (cipher, params) = usm::encrypt(*protocol, key, header.boots, header.time, scoped)?;
        priv_params = params;
        Some(cipher)
    } else {
        None
    };
    let mut usm_params = Vec::with_capacity(96 + header.engine_id.len() + header.user.len());
    ber::push_tlv(&mut usm_params, ber::TAG_OCTET_STRING, header.engine_id);
    ber::push_signed(&mut usm_params, ber::TAG_INTEGER, i64::from(header.boots));
    ber::push_signed(&mut usm_params, ber::TAG_INTEGER, i64::from(header.time));
    ber::push_tlv(&mut usm_params, ber::TAG_OCTET_STRING, header.user);
    let mac_len = auth.map_or(0, |(protocol, _)| protocol.mac_len());
    ber::push_tlv(
        &mut usm_params,
        ber::TAG_OCTET_STRING,
        &[0u8; 48][..mac_len],
    );
    let privacy = if encrypted.is_some() {
        &priv_params[..]
    } else {
        &[]
    };
    ber::push_tlv(&mut usm_params, ber::TAG_OCTET_STRING, privacy);
    ber::wrap_from(&mut usm_params, 0, ber::TAG_SEQUENCE);

    let body_len = encrypted.as_ref().map_or(scoped.len(), Vec::len) + usm_params.len() + 32;
    let mut out = Vec::with_capacity(body_len + 8);
    ber::push_signed(&mut out, ber::TAG_INTEGER, 3);
    let global = out.len();
    ber::push_signed(&mut out, ber::TAG_INTEGER, i64::from(header.msg_id));
    ber::push_signed(&mut out, ber::TAG_INTEGER, MAX_MESSAGE);
    ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, &[header.flags]);
    ber::push_signed(&mut out, ber::TAG_INTEGER, USM);
    ber::wrap_from(&mut out, global, ber::TAG_SEQUENCE);
    ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, &usm_params);
    match &encrypted {
        Some(cipher) => ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, cipher),
        None => out.extend_from_slice(scoped),
    }
    ber::wrap_from(&mut out, 0, ber::TAG_SEQUENCE);

    if let Some((protocol, key)) = auth {
        let at = match Message::decode(&out) {
            Ok(Message::V3(message)) => message.auth_params_at,
            Ok(Message::Community { .. }) => {
                return Err(V3EncodeError::SelfCheck(DecodeError::Malformed("version")))
            }
            Err(e) => return Err(V3EncodeError::SelfCheck(e)),
        };
        let mac = usm::mac(*protocol, key, &out);
        out[at..at + mac_len].copy_from_slice(&mac);
    }
    Ok(out)
}

/// Flags for a message at `level`, reportable or not.
pub fn flags_for(level: SecurityLevel, reportable: bool) -> u8 {
    let security = match level {
        SecurityLevel::NoAuthNoPriv => 0,
        SecurityLevel::AuthNoPriv => FLAG_AUTH,
        SecurityLevel::AuthPriv => FLAG_AUTH | FLAG_PRIV,
    };
    if reportable {
        security | FLAG_REPORTABLE
    } else {
        security
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::credentials::{AuthProtocol, PrivProtocol, UsmUser};
    use crate::snmp::usm::KeyCache;
    use proptest::prelude::*;

    fn oid(text: &str) -> Oid {
        text.parse().unwrap()
    }

    /// A list handed back is the next one given on this thread (emptied, with room for
    /// what is asked); at most two are kept, and none longer than the limit.
    #[test]
    fn varbind_lists_handed_back_are_reused_on_the_thread() {
        std::thread::spawn(|| {
            let mut first = varbind_list(600);
            first.push(Varbind::new(oid("1.3.6.1"), SnmpValue::Counter32(7)));
            let at = first.as_ptr();
            recycle_varbinds(first);
            let again = varbind_list(500);
            assert_eq!((again.as_ptr(), again.len()), (at, 0));
            assert!(again.capacity() >= 600);
            // Asked for more than it holds: the same list, grown to exactly that.
            recycle_varbinds(again);
            let grown = varbind_list(900);
            assert_eq!(grown.capacity(), 900);
            // Three handed back, two kept; a list over the limit is not kept.
            recycle_varbinds(grown);
            recycle_varbinds(Vec::with_capacity(10));
            recycle_varbinds(Vec::with_capacity(20));
            recycle_varbinds(Vec::with_capacity(SPARE_LIST_MAX + 1));
            let kept =
                SPARE_LISTS.with(|l| l.borrow().iter().map(Vec::capacity).collect::<Vec<_>>());
            assert_eq!(kept, [900, 10]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn community_request_round_trips_and_peeks() {
        let pdu = request_pdu(PDU_GET_BULK, -77, 0, 25, &[oid("1.3.6.1.2.1.2.2")]).unwrap();
        let message = community_message(1, b"public", &pdu);
        assert_eq!(peek_message_id(&message), Some(-77));
        let Message::Community {
            version,
            community,
            pdu,
        } = Message::decode(&message).unwrap()
        else {
            panic!("not a community message");
        };
        assert_eq!((version, community), (1, &b"public"[..]));
        assert_eq!(pdu.tag, PDU_GET_BULK);
        assert_eq!((pdu.error_status, pdu.error_index), (0, 25));
        let varbinds = pdu.decode_varbinds().unwrap();
        assert_eq!(
            varbinds,
            [Varbind::new(oid("1.3.6.1.2.1.2.2"), SnmpValue::Null)]
        );
        // snmp2 reads what we write.
        let theirs = snmp2::Pdu::from_bytes(&message).unwrap();
        assert_eq!(theirs.req_id, -77);
    }

    fn keys(level: SecurityLevel) -> LocalizedKeys {
        let mut user = UsmUser::no_auth("ops");
        if level >= SecurityLevel::AuthNoPriv {
            user = user.with_auth(AuthProtocol::Sha256, "authpass1");
        }
        if level == SecurityLevel::AuthPriv {
            user = user.with_privacy(PrivProtocol::Aes128, "privpass1");
        }
        // One cache for all cases: deriving a key hashes a megabyte.
        static CACHE: std::sync::OnceLock<KeyCache> = std::sync::OnceLock::new();
        CACHE
            .get_or_init(KeyCache::default)
            .localize(&user, b"\x80\x00\x1f\x88\x04engine")
    }

    #[test]
    fn v3_messages_round_trip_at_every_level() {
        for level in [
            SecurityLevel::NoAuthNoPriv,
            SecurityLevel::AuthNoPriv,
            SecurityLevel::AuthPriv,
        ] {
            let keys = keys(level);
            let pdu = request_pdu(PDU_GET, 9, 0, 0, &[oid("1.3.6.1.2.1.1.5.0")]).unwrap();
            let scoped = scoped_pdu(b"engine", b"", &pdu);
            let header = V3Header {
                msg_id: 123_456,
                flags: flags_for(level, true),
                engine_id: b"\x80\x00\x1f\x88\x04engine",
                boots: 4,
                time: 1000,
                user: b"ops",
            };
            let bytes = v3_message(&header, &keys, &scoped).unwrap();
            assert_eq!(peek_message_id(&bytes), Some(123_456));
            let Message::V3(message) = Message::decode(&bytes).unwrap() else {
                panic!("not v3");
            };
            assert_eq!(message.level(), level);
            assert_eq!((message.boots, message.time), (4, 1000));
            assert_eq!(message.user, b"ops");
            if level > SecurityLevel::NoAuthNoPriv {
                assert!(message.authentic(&bytes, &keys));
                let mut tampered = bytes.clone();
                let last = tampered.len() - 1;
                tampered[last] ^= 1;
                let Message::V3(t) = Message::decode(&tampered).unwrap() else {
                    panic!()
                };
                assert!(!t.authentic(&tampered, &keys));
            }
            let plain = message.plaintext(&keys).unwrap();
            let scoped = ScopedPdu::decode(&plain).unwrap();
            assert_eq!(scoped.context_engine_id, b"engine");
            assert_eq!(scoped.pdu.request_id, 9);
        }
    }

    fn sample_messages() -> Vec<Vec<u8>> {
        let pdu = request_pdu(
            PDU_RESPONSE,
            5,
            0,
            0,
            &[oid("1.3.6.1.2.1.1.5.0"), oid("1.3.6.1.2.1.2.2.1.10.1")],
        )
        .unwrap();
        let mut out = vec![community_message(1, b"public", &pdu)];
        for level in [SecurityLevel::AuthNoPriv, SecurityLevel::AuthPriv] {
            let header = V3Header {
                msg_id: 5,
                flags: flags_for(level, false),
                engine_id: b"engine-id",
                boots: 1,
                time: 2,
                user: b"ops",
            };
            out.push(v3_message(&header, &keys(level), &scoped_pdu(b"e", b"", &pdu)).unwrap());
        }
        out
    }

    /// Everything a receiver does with a packet from the network (what the client's fuzz
    /// target does, with this module's keys).
    fn decode_everything(bytes: &[u8]) {
        let keys = [
            keys(SecurityLevel::AuthNoPriv),
            keys(SecurityLevel::AuthPriv),
        ];
        crate::fuzzing::snmp_response_with(bytes, &[&keys[0], &keys[1]]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            decode_everything(&bytes);
        }

        #[test]
        fn damaged_and_truncated_messages_never_panic(
            which in 0usize..3,
            cut in any::<usize>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        ) {
            let mut bytes = sample_messages().swap_remove(which);
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let cut = cut % (bytes.len() + 1);
            decode_everything(&bytes[..cut]);
            decode_everything(&bytes);
        }
    }
}
