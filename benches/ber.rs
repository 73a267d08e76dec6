//! Hot paths of the SNMP simulator and client codec: answering a request
//! (decode + lookup + BER encode), recording lookups, and value encoding.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use panoptes::simulate::{Agent, CounterMode, Outcome, Recording, ResponseBuffer, Scratch};
use panoptes::snmp::ber;
use panoptes::snmp::{Oid, SnmpValue};

const SWITCH48: &str = include_str!("../resources/demo/switch48.snmprec");

/// A v2c request message, encoded by hand.
fn request(tag: u8, a: i64, b: i64, oids: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    ber::push_signed(&mut out, ber::TAG_INTEGER, 1);
    ber::push_tlv(&mut out, ber::TAG_OCTET_STRING, b"public");
    let pdu = out.len();
    ber::push_signed(&mut out, ber::TAG_INTEGER, 1234);
    ber::push_signed(&mut out, ber::TAG_INTEGER, a);
    ber::push_signed(&mut out, ber::TAG_INTEGER, b);
    let list = out.len();
    for text in oids {
        let oid: Oid = text.parse().unwrap();
        ber::push_varbind(&mut out, oid.components(), &SnmpValue::Null).unwrap();
    }
    ber::wrap_from(&mut out, list, ber::TAG_SEQUENCE);
    ber::wrap_from(&mut out, pdu, tag);
    ber::wrap_from(&mut out, 0, ber::TAG_SEQUENCE);
    out
}

fn agent_benches(c: &mut Criterion) {
    let recording = Arc::new(Recording::parse(SWITCH48, "switch48").unwrap());
    let cases = [
        (
            "get_1",
            request(snmp2::snmp::MSG_GET, 0, 0, &["1.3.6.1.2.1.1.5.0"]),
        ),
        (
            "getbulk_25",
            request(snmp2::snmp::MSG_GET_BULK, 0, 25, &["1.3.6.1.2.1.2.2.1.10"]),
        ),
        (
            "getbulk_4x25",
            request(
                snmp2::snmp::MSG_GET_BULK,
                0,
                25,
                &[
                    "1.3.6.1.2.1.2.2.1.10",
                    "1.3.6.1.2.1.2.2.1.16",
                    "1.3.6.1.2.1.31.1.1.1.6",
                    "1.3.6.1.2.1.31.1.1.1.10",
                ],
            ),
        ),
    ];
    let mut group = c.benchmark_group("agent");
    group.throughput(Throughput::Elements(1));
    for mode in [CounterMode::Frozen, CounterMode::Advancing] {
        let agent = Agent::new(Arc::clone(&recording), "public", mode, 65_507);
        let mut scratch = Scratch::default();
        let mut out = ResponseBuffer::new(agent.community_len(), 65_507);
        for (name, packet) in &cases {
            group.bench_function(format!("{name}_{mode:?}"), |b| {
                b.iter(|| {
                    let outcome = agent.handle(
                        black_box(packet),
                        Duration::from_secs(3),
                        &mut scratch,
                        &mut out,
                    );
                    assert_eq!(outcome, Outcome::Reply);
                    black_box(out.message().len())
                })
            });
        }
    }
    group.finish();
}

fn recording_benches(c: &mut Criterion) {
    let recording = Recording::parse(SWITCH48, "switch48").unwrap();
    let probe: Oid = "1.3.6.1.2.1.31.1.1.1.6.17".parse().unwrap();
    let mut group = c.benchmark_group("recording");
    group.bench_function("get", |b| {
        b.iter(|| black_box(recording.get(black_box(&probe))))
    });
    group.bench_function("successor", |b| {
        b.iter(|| black_box(recording.successor(black_box(&probe))))
    });
    group.throughput(Throughput::Bytes(SWITCH48.len() as u64));
    group.bench_function("parse_switch48", |b| {
        b.iter(|| Recording::parse(black_box(SWITCH48), "switch48").unwrap())
    });
    group.finish();
}

fn ber_benches(c: &mut Criterion) {
    let oid: Oid = "1.3.6.1.2.1.31.1.1.1.6.17".parse().unwrap();
    let value = SnmpValue::Counter64(18_446_744_073_709_551_000);
    let mut out = Vec::with_capacity(128);
    let mut group = c.benchmark_group("ber");
    group.bench_function("push_varbind_counter64", |b| {
        b.iter(|| {
            out.clear();
            ber::push_varbind(&mut out, black_box(oid.components()), black_box(&value)).unwrap();
            black_box(out.len())
        })
    });
    let mut content = Vec::new();
    ber::push_oid_content(&mut content, oid.components()).unwrap();
    let mut decoded = Vec::with_capacity(16);
    group.bench_function("decode_oid", |b| {
        b.iter(|| {
            ber::decode_oid_content(black_box(&content), &mut decoded).unwrap();
            black_box(decoded.len())
        })
    });
    group.finish();
}

/// The trap receiver's decision on a datagram and the JSON event it publishes: what a trap
/// storm costs per notification (v2c, no v3 crypto).
fn trap_benches(c: &mut Criterion) {
    use panoptes::snmp::message::{community_message, PDU_TRAP_V2};
    use panoptes::snmp::notification::v2_notification_pdu;
    use panoptes::snmp::{Community, Varbind};
    use panoptes::traps::event::{Received, TrapEvent};
    use panoptes::traps::receive::{Decoder, Handled};
    use panoptes::traps::v3::V3Security;

    let varbinds: Vec<Varbind> = (1..=8u32)
        .map(|i| {
            Varbind::new(
                format!("1.3.6.1.2.1.2.2.1.{i}.3").parse().unwrap(),
                SnmpValue::OctetString(format!("interface value {i}").into_bytes()),
            )
        })
        .collect();
    let pdu = v2_notification_pdu(
        PDU_TRAP_V2,
        7,
        4242,
        &"1.3.6.1.6.3.1.1.5.3".parse().unwrap(),
        &varbinds,
    )
    .unwrap();
    let datagram = community_message(1, b"public", &pdu);
    let decoder = Decoder::new(
        vec![Community::new("public")],
        128,
        V3Security::new(&[], b"\x80\x00\x1f\x88\x05bench".to_vec(), 1),
    );
    let mut group = c.benchmark_group("trap");
    group.throughput(Throughput::Elements(1));
    group.bench_function("v2c_8_varbinds_to_json", |b| {
        b.iter(|| {
            let Handled::Accepted(a) = decoder.handle(black_box(&datagram)) else {
                panic!("refused")
            };
            let event = TrapEvent::new(
                &a.notification,
                Received {
                    version: a.version,
                    source: ([127, 0, 0, 1], 40000).into(),
                    v3_user: None,
                    received_at: 0.0,
                    resource: None,
                    names: &panoptes::traps::names::WellKnown,
                },
            );
            serde_json::to_vec(&event).unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    agent_benches,
    recording_benches,
    ber_benches,
    trap_benches
);
criterion_main!(benches);
