//! The agent's protocol behaviour, request bytes to response bytes.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use snmp2::{snmp, MessageType, Pdu};

use super::agent::{Agent, DropReason, Outcome, Scratch};
use super::counters::CounterMode;
use super::recording::Recording;
use super::response::ResponseBuffer;
use crate::snmp::ber;
use crate::snmp::{from_wire_oid, from_wire_value, Oid, SnmpValue, Varbind};

const RECORDING: &str = "\
1.3.6.1.2.1.1.1.0|4|test switch
1.3.6.1.2.1.1.3.0|67|1000
1.3.6.1.2.1.1.5.0|4|sw1
1.3.6.1.2.1.2.2.1.2.1|4|eth1
1.3.6.1.2.1.2.2.1.2.2|4|eth2
1.3.6.1.2.1.2.2.1.10.1|65|100
1.3.6.1.2.1.2.2.1.10.2|65|200
1.3.6.1.2.1.31.1.1.1.6.1|70|1000
1.3.6.1.2.1.31.1.1.1.6.2|70|2000
1.3.6.1.4.1.9.1|2|7
";

fn recording() -> Arc<Recording> {
    Arc::new(Recording::parse(RECORDING, "test").unwrap())
}

fn agent(mode: CounterMode, max: usize) -> Agent {
    Agent::new(recording(), "public", mode, max)
}

fn oid(text: &str) -> Oid {
    text.parse().unwrap()
}

/// A request message, encoded by hand: SEQUENCE { version, community,
/// PDU { request-id, a, b, SEQUENCE OF { OID, NULL } } }.
fn request(version: i64, community: &[u8], tag: u8, a: i64, b: i64, oids: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    ber::push_signed(&mut out, ber::TAG_INTEGER, version);
    ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, community);
    let pdu = out.len();
    ber::push_signed(&mut out, ber::TAG_INTEGER, 4242);
    ber::push_signed(&mut out, ber::TAG_INTEGER, a);
    ber::push_signed(&mut out, ber::TAG_INTEGER, b);
    let list = out.len();
    for o in oids {
        ber::push_varbind(&mut out, oid(o).components(), &SnmpValue::Null).unwrap();
    }
    ber::wrap_from(&mut out, list, ber::TAG_SEQUENCE);
    ber::wrap_from(&mut out, pdu, tag);
    ber::wrap_from(&mut out, 0, ber::TAG_SEQUENCE);
    out
}

struct Answer {
    error_status: u32,
    error_index: u32,
    varbinds: Vec<Varbind>,
    size: usize,
}

fn ask(agent: &Agent, packet: &[u8], elapsed: Duration) -> Result<Answer, DropReason> {
    let mut scratch = Scratch::default();
    let mut out = ResponseBuffer::new(agent.community_len(), 0);
    match agent.handle(packet, elapsed, &mut scratch, &mut out) {
        Outcome::Dropped(reason) => Err(reason),
        Outcome::Reply => {
            let pdu = Pdu::from_bytes(out.message()).expect("response must decode");
            assert_eq!(pdu.message_type, MessageType::Response);
            assert_eq!(pdu.req_id, 4242);
            assert_eq!(pdu.community, b"public");
            let varbinds = pdu
                .varbinds
                .clone()
                .map(|(o, v)| {
                    Varbind::new(from_wire_oid(&o).unwrap(), from_wire_value(&v).unwrap())
                })
                .collect();
            Ok(Answer {
                error_status: pdu.error_status,
                error_index: pdu.error_index,
                varbinds,
                size: out.message().len(),
            })
        }
    }
}

fn v2c(agent: &Agent, tag: u8, a: i64, b: i64, oids: &[&str]) -> Answer {
    ask(
        agent,
        &request(1, b"public", tag, a, b, oids),
        Duration::ZERO,
    )
    .unwrap()
}

fn names(answer: &Answer) -> Vec<String> {
    answer.varbinds.iter().map(|v| v.oid.to_string()).collect()
}

#[test]
fn get_hits_and_misses() {
    let a = agent(CounterMode::Frozen, 65_507);
    let answer = v2c(
        &a,
        snmp::MSG_GET,
        0,
        0,
        &[
            "1.3.6.1.2.1.1.5.0",
            "1.3.6.1.2.1.1.4.0",
            "1.3.6.1.2.1.2.2.1.2.9",
            "1.3.6.1.6.1.0",
            "1.3.6.1.2.1.31.1.1.1.6.2",
        ],
    );
    assert_eq!(answer.error_status, 0);
    let values: Vec<SnmpValue> = answer.varbinds.iter().map(|v| v.value.clone()).collect();
    assert_eq!(
        values,
        [
            SnmpValue::OctetString(b"sw1".to_vec()),
            // sysContact is not recorded at all; ifDescr is, but not for index 9.
            SnmpValue::NoSuchObject,
            SnmpValue::NoSuchInstance,
            SnmpValue::NoSuchObject,
            SnmpValue::Counter64(2000),
        ]
    );
    assert_eq!(names(&answer)[3], "1.3.6.1.6.1.0");
}

#[test]
fn get_next_walks_everything_in_order_then_end_of_mib() {
    let a = agent(CounterMode::Frozen, 65_507);
    let rec = recording();
    let mut cursor = "1".to_string();
    let mut seen = Vec::new();
    loop {
        let answer = v2c(&a, snmp::MSG_GET_NEXT, 0, 0, &[&cursor]);
        let vb = &answer.varbinds[0];
        if vb.value == SnmpValue::EndOfMibView {
            assert_eq!(vb.oid.to_string(), cursor);
            break;
        }
        assert_eq!(rec.get(&vb.oid), Some(&vb.value));
        cursor = vb.oid.to_string();
        seen.push(cursor.clone());
    }
    let all: Vec<String> = rec.iter().map(|(o, _)| o.to_string()).collect();
    assert_eq!(seen, all);
}

#[test]
fn get_bulk_non_repeaters_and_rows() {
    let a = agent(CounterMode::Frozen, 65_507);
    let answer = v2c(
        &a,
        snmp::MSG_GET_BULK,
        1,
        2,
        &[
            "1.3.6.1.2.1.1.1.0",
            "1.3.6.1.2.1.2.2.1.2",
            "1.3.6.1.2.1.2.2.1.10",
        ],
    );
    assert_eq!(
        names(&answer),
        [
            "1.3.6.1.2.1.1.3.0",
            "1.3.6.1.2.1.2.2.1.2.1",
            "1.3.6.1.2.1.2.2.1.10.1",
            "1.3.6.1.2.1.2.2.1.2.2",
            "1.3.6.1.2.1.2.2.1.10.2",
        ]
    );
}

#[test]
fn get_bulk_past_the_end_names_last_oid_and_stops_early() {
    let a = agent(CounterMode::Frozen, 65_507);
    let answer = v2c(
        &a,
        snmp::MSG_GET_BULK,
        0,
        1000,
        &["1.3.6.1.2.1.31.1.1.1.6.1"],
    );
    assert_eq!(
        names(&answer),
        [
            "1.3.6.1.2.1.31.1.1.1.6.2",
            "1.3.6.1.4.1.9.1",
            "1.3.6.1.4.1.9.1"
        ]
    );
    assert_eq!(answer.varbinds[2].value, SnmpValue::EndOfMibView);
    let answer = v2c(&a, snmp::MSG_GET_BULK, 0, 5, &["1.3.6.1.5"]);
    assert_eq!(names(&answer), ["1.3.6.1.5"]);
    assert_eq!(answer.varbinds[0].value, SnmpValue::EndOfMibView);
}

#[test]
fn get_bulk_shrinks_to_whole_rows_under_the_size_limit() {
    let full = v2c(
        &agent(CounterMode::Frozen, 65_507),
        snmp::MSG_GET_BULK,
        0,
        3,
        &["1", "1.3.6.1.2.1.2"],
    );
    assert_eq!(full.varbinds.len(), 6);
    let limit = full.size - 1;
    let small = agent(CounterMode::Frozen, limit);
    let cut = v2c(&small, snmp::MSG_GET_BULK, 0, 3, &["1", "1.3.6.1.2.1.2"]);
    assert_eq!(cut.error_status, 0);
    assert_eq!(cut.varbinds, full.varbinds[..4]);
    assert!(cut.size <= limit);
    // Not even one varbind fits: tooBig, no varbinds.
    let tiny = agent(CounterMode::Frozen, 64);
    let answer = v2c(
        &tiny,
        snmp::MSG_GET,
        0,
        0,
        &["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0"],
    );
    assert_eq!(answer.error_status, 1);
    assert!(answer.varbinds.is_empty());
}

#[test]
fn huge_max_repetitions_is_bounded_by_size() {
    let a = agent(CounterMode::Frozen, 65_507);
    let answer = v2c(
        &a,
        snmp::MSG_GET_BULK,
        0,
        i64::from(i32::MAX),
        &["1", "1", "1"],
    );
    assert!(answer.size <= 65_507);
    assert!(answer
        .varbinds
        .iter()
        .any(|v| v.value == SnmpValue::EndOfMibView));
}

#[test]
fn wrong_community_and_unsupported_are_dropped() {
    let a = agent(CounterMode::Frozen, 65_507);
    let packet = request(1, b"private", snmp::MSG_GET, 0, 0, &["1.3.6.1.2.1.1.5.0"]);
    assert_eq!(
        ask(&a, &packet, Duration::ZERO).err(),
        Some(DropReason::WrongCommunity)
    );
    let packet = request(0, b"public", snmp::MSG_GET_BULK, 0, 5, &["1"]);
    assert_eq!(
        ask(&a, &packet, Duration::ZERO).err(),
        Some(DropReason::Unsupported)
    );
    let packet = request(1, b"public", snmp::MSG_RESPONSE, 0, 0, &["1"]);
    assert_eq!(
        ask(&a, &packet, Duration::ZERO).err(),
        Some(DropReason::Unsupported)
    );
    assert_eq!(
        ask(&a, b"\x30\x03\x02\x01", Duration::ZERO).err(),
        Some(DropReason::Malformed)
    );
}

#[test]
fn v1_uses_no_such_name_and_hides_counter64() {
    let a = agent(CounterMode::Frozen, 65_507);
    let ask_v1 = |tag, oids: &[&str]| {
        ask(&a, &request(0, b"public", tag, 0, 0, oids), Duration::ZERO).unwrap()
    };
    let answer = ask_v1(snmp::MSG_GET, &["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.4.0"]);
    assert_eq!((answer.error_status, answer.error_index), (2, 2));
    assert_eq!(names(&answer), ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.4.0"]);
    let answer = ask_v1(snmp::MSG_GET, &["1.3.6.1.2.1.31.1.1.1.6.1"]);
    assert_eq!(answer.error_status, 2);
    let answer = ask_v1(snmp::MSG_GET_NEXT, &["1.3.6.1.2.1.2.2.1.10.2"]);
    assert_eq!(names(&answer), ["1.3.6.1.4.1.9.1"]);
    let answer = ask_v1(snmp::MSG_GET_NEXT, &["1.3.6.1.4.1.9.1"]);
    assert_eq!((answer.error_status, answer.error_index), (2, 1));
}

#[test]
fn set_is_refused() {
    let a = agent(CounterMode::Frozen, 65_507);
    let answer = v2c(&a, snmp::MSG_SET, 0, 0, &["1.3.6.1.2.1.1.5.0"]);
    assert_eq!((answer.error_status, answer.error_index), (17, 1));
    assert_eq!(names(&answer), ["1.3.6.1.2.1.1.5.0"]);
}

#[test]
fn counters_advance_only_when_asked() {
    let oids = [
        "1.3.6.1.2.1.1.3.0",
        "1.3.6.1.2.1.2.2.1.10.1",
        "1.3.6.1.2.1.31.1.1.1.6.1",
        "1.3.6.1.2.1.1.5.0",
    ];
    let packet = request(1, b"public", snmp::MSG_GET, 0, 0, &oids);
    let frozen = agent(CounterMode::Frozen, 65_507);
    let later = ask(&frozen, &packet, Duration::from_secs(100)).unwrap();
    assert_eq!(later.varbinds[1].value, SnmpValue::Counter32(100));

    let moving = agent(CounterMode::Advancing, 65_507);
    let at = |secs| {
        ask(&moving, &packet, Duration::from_secs(secs))
            .unwrap()
            .varbinds
    };
    let (t0, t10) = (at(0), at(10));
    assert_eq!(t0[0].value, SnmpValue::TimeTicks(1000));
    assert_eq!(t10[0].value, SnmpValue::TimeTicks(2000));
    let grew = |i: usize| t10[i].value.as_i128().unwrap() - t0[i].value.as_i128().unwrap();
    assert!(grew(1) >= 10_000, "ifInOctets grew {}", grew(1));
    assert!(grew(2) >= 10_000, "ifHCInOctets grew {}", grew(2));
    assert_eq!(t10[3].value, SnmpValue::OctetString(b"sw1".to_vec()));
    assert_eq!(
        t0.iter().map(|v| &v.oid).collect::<Vec<_>>(),
        t10.iter().map(|v| &v.oid).collect::<Vec<_>>()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let a = agent(CounterMode::Advancing, 65_507);
        let _ = ask_raw(&a, &bytes);
    }

    #[test]
    fn damaged_requests_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
                                    tag in prop_oneof![Just(snmp::MSG_GET), Just(snmp::MSG_GET_NEXT), Just(snmp::MSG_GET_BULK)],
                                    cut in any::<usize>()) {
        let a = agent(CounterMode::Advancing, 65_507);
        let mut packet = request(1, b"public", tag, 1, 3, &["1.3.6.1.2.1.1", "1.3.6.1.2.1.2.2.1.10"]);
        for (at, byte) in flips {
            let i = at % packet.len();
            packet[i] = byte;
        }
        let keep = packet.len() - cut % 4;
        packet.truncate(keep);
        let _ = ask_raw(&a, &packet);
    }
}

/// Like `ask` but without assertions on the reply, except that it decodes.
fn ask_raw(agent: &Agent, packet: &[u8]) -> Outcome {
    let mut scratch = Scratch::default();
    let mut out = ResponseBuffer::new(agent.community_len(), 0);
    let outcome = agent.handle(packet, Duration::from_secs(1), &mut scratch, &mut out);
    if outcome == Outcome::Reply {
        assert!(Pdu::from_bytes(out.message()).is_ok());
    }
    outcome
}

// ---- v3 ----

mod v3 {
    use super::*;
    use crate::snmp::authority::DeviceSecurity;
    use crate::snmp::message::{
        self, Message, ScopedPdu, V3Header, PDU_GET, PDU_REPORT, PDU_RESPONSE,
    };
    use crate::snmp::usm::KeyCache;
    use crate::snmp::{SecurityLevel, UsmUser};
    use std::sync::OnceLock;

    fn user() -> UsmUser {
        UsmUser::parse_spec("ops:SHA-256:authpass-1:AES:privpass-1").unwrap()
    }

    /// The agent and the user's keys localized to its engine, built once.
    fn setup() -> &'static (Agent, crate::snmp::usm::LocalizedKeys, Vec<u8>) {
        static SETUP: OnceLock<(Agent, crate::snmp::usm::LocalizedKeys, Vec<u8>)> = OnceLock::new();
        SETUP.get_or_init(|| {
            let keys = KeyCache::default();
            let engine_id = DeviceSecurity::engine_id_for(7, 1);
            let security = DeviceSecurity::new(engine_id.clone(), &[user()], &keys);
            let agent = agent(CounterMode::Advancing, 65_507).with_security(Arc::new(security));
            (agent, keys.localize(&user(), &engine_id), engine_id)
        })
    }

    fn request(level: SecurityLevel, engine_id: &[u8], time: u32) -> Vec<u8> {
        let (_, keys, _) = setup();
        let pdu = message::request_pdu(PDU_GET, 77, 0, 0, &[oid("1.3.6.1.2.1.1.5.0")]).unwrap();
        let header = V3Header {
            msg_id: 99,
            flags: message::flags_for(level, true),
            engine_id,
            boots: 1,
            time,
            user: b"ops",
        };
        message::v3_message(&header, keys, &message::scoped_pdu(engine_id, b"", &pdu)).unwrap()
    }

    /// The agent's reply, checked to decode, authenticate and decrypt. `expect_msg_id`:
    /// the msgID the reply must echo (a damaged request may carry another one, and a
    /// Report about it echoes that one).
    fn answer_to(packet: &[u8], expect_msg_id: Option<i32>) -> Option<(u8, Vec<Varbind>)> {
        let (agent, keys, _) = setup();
        let mut scratch = Scratch::default();
        let mut out = ResponseBuffer::new(agent.community_len(), 0);
        if agent.handle(packet, Duration::from_secs(5), &mut scratch, &mut out) != Outcome::Reply {
            return None;
        }
        let bytes = out.message().to_vec();
        let Ok(Message::V3(m)) = Message::decode(&bytes) else {
            panic!("the reply is not a v3 message");
        };
        if let Some(id) = expect_msg_id {
            assert_eq!(m.msg_id, id);
        }
        if m.flags & message::FLAG_AUTH != 0 {
            assert!(m.authentic(&bytes, keys), "reply not authentic");
        }
        let plain = m.plaintext(keys).unwrap();
        let scoped = ScopedPdu::decode(&plain).unwrap();
        Some((scoped.pdu.tag, scoped.pdu.decode_varbinds().unwrap()))
    }

    fn answer(packet: &[u8]) -> Option<(u8, Vec<Varbind>)> {
        answer_to(packet, Some(99))
    }

    #[test]
    fn discovery_then_an_encrypted_get() {
        let (_, _, engine_id) = setup();
        // Discovery: no engine ID -> Report usmStatsUnknownEngineIDs.
        let (tag, varbinds) = answer(&request(SecurityLevel::NoAuthNoPriv, b"", 0)).unwrap();
        assert_eq!(tag, PDU_REPORT);
        assert_eq!(varbinds[0].oid, oid("1.3.6.1.6.3.15.1.1.4.0"));
        let (tag, varbinds) = answer(&request(SecurityLevel::AuthPriv, engine_id, 5)).unwrap();
        assert_eq!(tag, PDU_RESPONSE);
        assert_eq!(varbinds[0].value, SnmpValue::OctetString(b"sw1".to_vec()));
        // Out of the time window: an authenticated notInTimeWindow Report.
        let (tag, varbinds) = answer(&request(SecurityLevel::AuthPriv, engine_id, 5_000)).unwrap();
        assert_eq!(tag, PDU_REPORT);
        assert_eq!(varbinds[0].oid, oid("1.3.6.1.6.3.15.1.1.2.0"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn damaged_v3_requests_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5),
            cut in 0usize..40,
            level in prop_oneof![Just(SecurityLevel::NoAuthNoPriv), Just(SecurityLevel::AuthNoPriv), Just(SecurityLevel::AuthPriv)],
        ) {
            let (_, _, engine_id) = setup();
            let mut packet = request(level, engine_id, 5);
            for (at, byte) in flips {
                let i = at % packet.len();
                packet[i] = byte;
            }
            packet.truncate(packet.len().saturating_sub(cut));
            // Any reply must decode, authenticate and decrypt (checked in `answer_to`).
            let _ = answer_to(&packet, None);
        }
    }
}
