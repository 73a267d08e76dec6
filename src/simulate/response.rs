//! The response message buffer: varbinds written forwards, headers backwards.
//!
//! The agent appends varbind TLVs after a reserved head room, checking the size
//! as it goes; once it knows the body, [`ResponseBuffer::finish`] writes the
//! message headers into the head room from the back, so the whole message is
//! one contiguous slice with no copy of the body.

use snmp2::snmp;

use crate::snmp::ber::{self, BackWriter, BerError};

/// Fields of the response envelope around the varbinds.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHeader<'a> {
    /// 0 for v1, 1 for v2c, as on the wire.
    pub version: i64,
    pub community: &'a [u8],
    pub request_id: i32,
    pub error_status: u32,
    pub error_index: u32,
}

/// Bytes every header field may take, except the community itself: message
/// SEQUENCE (6), version (3), community header (6), PDU header (6), request-id
/// (6), error-status and error-index (7 each), varbind-list header (6).
pub(crate) const HEADER_BOUND: usize = 47;

pub struct ResponseBuffer {
    buf: Vec<u8>,
    head_room: usize,
    message_start: usize,
}

impl ResponseBuffer {
    /// A buffer for responses carrying a community of `community_len` bytes,
    /// with room for `capacity` bytes of body before it grows.
    pub fn new(community_len: usize, capacity: usize) -> ResponseBuffer {
        let head_room = HEADER_BOUND + community_len + 1;
        let mut buf = Vec::with_capacity(head_room + capacity);
        buf.resize(head_room, 0);
        ResponseBuffer {
            buf,
            head_room,
            message_start: head_room,
        }
    }

    /// Empties the body for a new response.
    pub fn begin(&mut self) {
        self.buf.truncate(self.head_room);
        self.message_start = self.head_room;
    }

    /// The growing buffer; append varbind TLVs to it. Everything after the head
    /// room is body.
    pub fn body(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn body_len(&self) -> usize {
        self.buf.len() - self.head_room
    }

    /// Drops body bytes past `body_len`.
    pub fn truncate_body(&mut self, body_len: usize) {
        self.buf.truncate(self.head_room + body_len);
    }

    /// An upper bound of the message size if finished now.
    pub fn message_len_bound(&self) -> usize {
        self.buf.len()
    }

    /// Writes the headers in front of the body; the message is then [`Self::message`].
    pub fn finish(&mut self, header: &ResponseHeader<'_>) -> Result<(), BerError> {
        let body_len = self.body_len();
        let (head, _) = self.buf.split_at_mut(self.head_room);
        let mut writer = BackWriter::new(head);
        writer.push_header(ber::TAG_SEQUENCE, body_len)?;
        writer.push_signed(ber::TAG_INTEGER, i64::from(header.error_index))?;
        writer.push_signed(ber::TAG_INTEGER, i64::from(header.error_status))?;
        writer.push_signed(ber::TAG_INTEGER, i64::from(header.request_id))?;
        let pdu_len = writer.written() + body_len;
        writer.push_header(snmp::MSG_RESPONSE, pdu_len)?;
        writer.push_tlv(ber::TAG_OCTET_STRING, header.community)?;
        writer.push_signed(ber::TAG_INTEGER, header.version)?;
        let message_len = writer.written() + body_len;
        writer.push_header(ber::TAG_SEQUENCE, message_len)?;
        self.message_start = self.head_room - writer.written();
        Ok(())
    }

    /// Replaces the whole message with `message` (v3 answers, encoded
    /// elsewhere); [`Self::message`] then returns it.
    pub fn set_message(&mut self, message: &[u8]) {
        self.buf.truncate(self.head_room);
        self.buf.extend_from_slice(message);
        self.message_start = self.head_room;
    }

    /// The varbinds written since [`Self::begin`].
    pub fn body_bytes(&self) -> &[u8] {
        &self.buf[self.head_room..]
    }

    /// The finished message.
    pub fn message(&self) -> &[u8] {
        &self.buf[self.message_start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snmp2::{MessageType, Pdu};

    #[test]
    fn finished_message_decodes_with_snmp2() {
        let mut out = ResponseBuffer::new(6, 1024);
        for round in 0..2 {
            out.begin();
            ber::push_varbind(
                out.body(),
                &[1, 3, 6, 1, 2, 1, 1, 5, 0],
                &crate::snmp::SnmpValue::OctetString(vec![b'x'; 200 * round]),
            )
            .unwrap();
            let header = ResponseHeader {
                version: 1,
                community: b"public",
                request_id: -5 + round as i32,
                error_status: 0,
                error_index: 0,
            };
            out.finish(&header).unwrap();
            assert!(out.message().len() <= out.message_len_bound());
            let pdu = Pdu::from_bytes(out.message()).unwrap();
            assert_eq!(pdu.message_type, MessageType::Response);
            assert_eq!(pdu.req_id, -5 + round as i32);
            assert_eq!(pdu.community, b"public");
            assert_eq!(pdu.varbinds.clone().count(), 1);
        }
    }

    #[test]
    fn head_room_fits_the_largest_header_fields() {
        let community = [b'c'; 300];
        let mut out = ResponseBuffer::new(community.len(), 0);
        out.begin();
        out.body().extend_from_slice(&[0u8; 70_000]);
        let header = ResponseHeader {
            version: 1,
            community: &community,
            request_id: i32::MIN,
            error_status: u32::MAX,
            error_index: u32::MAX,
        };
        out.finish(&header).unwrap();
    }
}
