//! Malformed, truncated and spoofed replies reach the client: each is dropped
//! and counted, and the real answer that follows is still taken.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use panoptes::snmp::message::{community_message, push_pdu, PDU_RESPONSE};
use panoptes::snmp::{
    ber, Community, EngineConfig, Oid, SnmpClient, SnmpEngine, SnmpTarget, SnmpValue, Varbind,
};

fn response(id: i32, value: &SnmpValue) -> Vec<u8> {
    let oid: Oid = "1.3.6.1.2.1.1.5.0".parse().unwrap();
    let mut pdu = Vec::new();
    push_pdu(&mut pdu, PDU_RESPONSE, id, 0, 0, |out| {
        ber::push_varbind(out, oid.components(), value)
    })
    .unwrap();
    community_message(1, b"public", &pdu)
}

/// The request-id of a v2c request we received.
fn request_id(packet: &[u8]) -> i32 {
    panoptes::snmp::message::peek_message_id(packet).unwrap()
}

#[tokio::test]
async fn damaged_replies_are_dropped_and_counted_and_the_answer_still_taken() {
    let agent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = agent.local_addr().unwrap().port();
    let good = SnmpValue::OctetString(b"the real answer".to_vec());
    let answer = good.clone();
    // For each request: three damaged copies of the answer (cut short, or
    // random bytes), then the answer. (A changed byte inside a value would
    // still be a valid v2c message: v2c has no integrity check; v3 has.)
    let responder = tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(4);
        let mut buf = vec![0u8; 4096];
        loop {
            let (len, from) = agent.recv_from(&mut buf).await.unwrap();
            let id = request_id(&buf[..len]);
            let real = response(id, &answer);
            for _ in 0..3 {
                let bad: Vec<u8> = if rng.gen_bool(0.5) {
                    real[..rng.gen_range(0..real.len())].to_vec()
                } else {
                    let mut noise: Vec<u8> = (0..rng.gen_range(0..80)).map(|_| rng.gen()).collect();
                    // Half of the noise keeps a valid header, so it reaches the client.
                    if rng.gen_bool(0.5) {
                        let keep = real.len() - 10;
                        noise.splice(0..0, real[..keep].iter().copied());
                        noise.truncate(real.len() - 1);
                    }
                    noise
                };
                agent.send_to(&bad, from).await.unwrap();
            }
            // And one well-formed message for this request that is still not
            // an answer: another community, an invalid value type, or not a
            // Response PDU. These reach the client, which refuses them.
            let wrong = match rng.gen_range(0..3) {
                0 => {
                    let mut pdu = Vec::new();
                    push_pdu(&mut pdu, PDU_RESPONSE, id, 0, 0, |_| Ok(())).unwrap();
                    community_message(1, b"other", &pdu)
                }
                1 => {
                    let mut pdu = Vec::new();
                    push_pdu(&mut pdu, PDU_RESPONSE, id, 0, 0, |out| {
                        let start = out.len();
                        ber::push_oid(out, &[1, 3, 6, 1, 2, 1, 1, 5, 0])?;
                        ber::push_tlv(out, 0x49, b"?");
                        ber::wrap_from(out, start, ber::TAG_SEQUENCE);
                        Ok(())
                    })
                    .unwrap();
                    community_message(1, b"public", &pdu)
                }
                _ => {
                    let mut pdu = Vec::new();
                    push_pdu(&mut pdu, 0xa0, id, 0, 0, |_| Ok(())).unwrap();
                    community_message(1, b"public", &pdu)
                }
            };
            agent.send_to(&wrong, from).await.unwrap();
            agent.send_to(&real, from).await.unwrap();
        }
    });
    let engine = SnmpEngine::new(EngineConfig::default()).unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
    target.port = port;
    target.timeout = Duration::from_secs(5);
    target.retries = 0;
    let mut client = SnmpClient::connect_with(&engine, &target).await.unwrap();
    let sys_name: Oid = "1.3.6.1.2.1.1.5.0".parse().unwrap();
    for _ in 0..200 {
        let got = client.get(std::slice::from_ref(&sys_name)).await.unwrap();
        assert_eq!(got[0].value, good);
    }
    assert_eq!(client.requests_sent(), 200);
    // Some damaged copies still matched the request's ID and were refused by
    // the client; the others had no readable or known ID.
    let stats = engine.stats();
    let dropped = stats.rejected_replies + stats.malformed_replies + stats.stale_replies;
    assert!(dropped >= 400, "{stats:?}");
    assert!(
        stats.rejected_replies > 0 && stats.malformed_replies > 0,
        "{stats:?}"
    );
    responder.abort();
}

/// An agent that answers a walk with endless large strings stops at the client's byte
/// budget for the poll, with an error naming the device, instead of filling memory; the
/// budget spans every walk of one client (one poll of one device).
#[tokio::test]
async fn walks_stop_at_the_polls_byte_budget() {
    use panoptes::simulate::{CounterMode, DeviceConfig, Recording, Simulator, SimulatorConfig};
    use std::sync::Arc;
    let text: String = (1..=200)
        .map(|i| format!("1.3.6.1.2.1.2.2.1.2.{i}|4|{}\n", "x".repeat(1000)))
        .collect();
    let recording = Arc::new(Recording::parse(&text, "big").unwrap());
    let device = DeviceConfig::new("127.0.0.1:0".parse().unwrap(), recording, "public");
    let sim = Simulator::spawn(SimulatorConfig::new(CounterMode::Frozen).with_device(device))
        .await
        .unwrap();
    let mut target = SnmpTarget::new("127.0.0.1", Community::new("public"));
    target.port = sim.local_addrs()[0].port();
    target.max_repetitions = 10;
    let root: panoptes::snmp::Oid = "1.3.6.1.2.1.2.2.1.2".parse().unwrap();
    // Room for about 120 rows: the first walk of 200 fails.
    let mut client = SnmpClient::connect(&target)
        .await
        .unwrap()
        .with_walk_bytes(120_000);
    let err = client.bulk_walk(&root).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "walks on 127.0.0.1:{} returned more than 120000 bytes in one poll (stopped at 1.3.6.1.2.1.2.2.1.2): a runaway agent",
            target.port
        )
    );
    // Room for one walk: the second one, of the same client, runs out.
    let mut client = SnmpClient::connect(&target)
        .await
        .unwrap()
        .with_walk_bytes(300_000);
    assert_eq!(client.bulk_walk(&root).await.unwrap().len(), 200);
    let err = client.bulk_walk(&root).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "walks on 127.0.0.1:{} returned more than 300000 bytes in one poll",
            target.port
        )),
        "{err}"
    );
    let err = client
        .walk_rows(&root, 0, 10, 1000)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 300000 bytes in one poll"), "{err}");
}

/// Two columns of three rows under enterprise 99's table `node`.
fn two_columns(node: u32) -> Vec<(Oid, SnmpValue)> {
    [1u32, 2]
        .iter()
        .flat_map(|column| {
            (1..=3).map(move |row| {
                (
                    Oid::from(vec![1, 3, 6, 1, 4, 1, 99, node, *column, row]),
                    SnmpValue::Integer(i64::from(column * 10 + row)),
                )
            })
        })
        .collect()
}

/// The `row`th successor of `oid` in `served` (a GETBULK repetition), or endOfMibView.
fn successor(served: &[(Oid, SnmpValue)], oid: &Oid, row: usize) -> (Oid, SnmpValue) {
    match served.iter().filter(|(o, _)| o > oid).nth(row) {
        Some((o, v)) => (o.clone(), v.clone()),
        None => (oid.clone(), SnmpValue::EndOfMibView),
    }
}

/// What a [`raw_agent`] sends back: error-status, error-index and the varbinds.
type Answer = (i64, i64, Vec<(Oid, SnmpValue)>);

/// A v2c agent of our own on a loopback port, for behaviours snmpd will not show: each
/// request's PDU and varbinds go to `answer`, whose answer is sent back (`None`: the
/// request goes unanswered).
async fn raw_agent(
    mut answer: impl FnMut(&panoptes::snmp::message::Pdu<'_>, &[Varbind]) -> Option<Answer>
        + Send
        + 'static,
) -> (u16, tokio::task::JoinHandle<()>) {
    use panoptes::snmp::message::Message;
    let agent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = agent.local_addr().unwrap().port();
    let responder = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (len, from) = agent.recv_from(&mut buf).await.unwrap();
            let Ok(Message::Community { pdu, .. }) = Message::decode(&buf[..len]) else {
                continue;
            };
            let asked = pdu.decode_varbinds().unwrap();
            let Some((status, index, varbinds)) = answer(&pdu, &asked) else {
                continue;
            };
            let mut out = Vec::new();
            push_pdu(
                &mut out,
                PDU_RESPONSE,
                pdu.request_id,
                status,
                index,
                |out| {
                    for (o, v) in &varbinds {
                        ber::push_varbind(out, o.components(), v)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
            agent
                .send_to(&community_message(1, b"public", &out), from)
                .await
                .unwrap();
        }
    });
    (port, responder)
}

/// Every row of `roots`, each walked on its own.
async fn walk_one_by_one(client: &mut SnmpClient, roots: &[Oid]) -> Vec<(Oid, SnmpValue)> {
    let mut walked = Vec::new();
    for root in roots {
        walked.extend(client.bulk_walk(root).await.unwrap());
    }
    walked.into_iter().map(|vb| (vb.oid, vb.value)).collect()
}

/// An agent that refuses GETBULKs of several columns (genErr, as some embedded agents
/// do) after answering the first: the columns are then walked one by one, with the
/// poll's byte budget as it was before the combined walk, and read in full.
#[tokio::test]
async fn an_agent_refusing_several_columns_at_once_is_walked_one_column_at_a_time() {
    let table = two_columns(1);
    let served = table.clone();
    let mut combined = 0;
    let (port, responder) = raw_agent(move |pdu, asked| {
        let repetitions = usize::try_from(pdu.error_index).unwrap();
        if asked.len() > 1 {
            combined += 1;
        }
        if asked.len() > 1 && combined > 1 {
            let nulls = asked.iter().map(|vb| (vb.oid.clone(), SnmpValue::Null));
            return Some((5, 1, nulls.collect()));
        }
        let mut answer = Vec::new();
        for row in 0..repetitions {
            for vb in asked {
                answer.push(successor(&served, &vb.oid, row));
            }
        }
        Some((0, 0, answer))
    })
    .await;
    let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
    target.port = port;
    target.timeout = Duration::from_secs(5);
    target.retries = 0;
    let roots: Vec<Oid> = ["1.3.6.1.4.1.99.1.1", "1.3.6.1.4.1.99.1.2"]
        .map(|r| r.parse().unwrap())
        .to_vec();
    // Room for the six rows once: what the combined walk took before the refusal must
    // be given back, or the walks one by one would run out.
    let six_rows: usize = 6 * (10 * 4 + 8 + 32);
    let mut client = SnmpClient::connect(&target)
        .await
        .unwrap()
        .with_walk_bytes(six_rows + 10);
    let together = client.walk_together(&roots, 2, 100, true).await.unwrap();
    assert_eq!(together, None);
    assert_eq!(client.requests_sent(), 2);
    assert_eq!(walk_one_by_one(&mut client, &roots).await, table);
    responder.abort();
}

/// An agent whose answers to combined requests are lost on the way (here: never sent,
/// as a path dropping IP fragments would lose them) but which answers single ones: the
/// combined walk gives way to walks one by one, and the agent is remembered, so the
/// next poll asks one column at a time from the start. An agent that answers nothing
/// still fails with its timeout, and is not remembered.
#[tokio::test]
async fn an_agent_whose_combined_answers_are_lost_is_walked_one_column_at_a_time() {
    let table = two_columns(2);
    let served = table.clone();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let (port, responder) = raw_agent(move |pdu, asked| {
        seen_tx.send(asked.len()).unwrap();
        if asked.len() > 1 {
            return None;
        }
        let vb = &asked[0];
        if pdu.tag == panoptes::snmp::message::PDU_GET {
            return Some((0, 0, vec![(vb.oid.clone(), SnmpValue::TimeTicks(42))]));
        }
        let repetitions = usize::try_from(pdu.error_index).unwrap();
        let rows = (0..repetitions).map(|row| successor(&served, &vb.oid, row));
        Some((0, 0, rows.collect()))
    })
    .await;
    let target_at = |port: u16| {
        let mut target = SnmpTarget::new("127.0.0.1", Community::from("public"));
        target.port = port;
        target.timeout = Duration::from_millis(300);
        target.retries = 1;
        target
    };
    let roots: Vec<Oid> = ["1.3.6.1.4.1.99.2.1", "1.3.6.1.4.1.99.2.2"]
        .map(|r| r.parse().unwrap())
        .to_vec();
    let mut sizes = Vec::new();
    let mut drain = |seen: &mut tokio::sync::mpsc::UnboundedReceiver<usize>| {
        sizes.clear();
        while let Ok(n) = seen.try_recv() {
            sizes.push(n);
        }
        sizes.clone()
    };

    // First poll: the combined request (sent twice: one retry) goes unanswered, one
    // single GET is answered, and the columns are walked one by one.
    let mut client = SnmpClient::connect(&target_at(port)).await.unwrap();
    assert_eq!(
        client.walk_together(&roots, 5, 100, true).await.unwrap(),
        None
    );
    assert_eq!(drain(&mut seen), vec![2, 2, 1]);
    assert_eq!(walk_one_by_one(&mut client, &roots).await, table);
    drain(&mut seen);

    // The next poll of the agent asks nothing combined.
    let mut next = SnmpClient::connect(&target_at(port)).await.unwrap();
    assert_eq!(
        next.walk_together(&roots, 5, 100, true).await.unwrap(),
        None
    );
    assert_eq!(next.requests_sent(), 0);
    assert!(drain(&mut seen).is_empty());
    responder.abort();

    // An agent that answers nothing: the timeout fails the walk (after the one probe),
    // and the agent is not remembered.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for _ in 0..2 {
        let mut client = SnmpClient::connect(&target_at(silent_port)).await.unwrap();
        let err = client
            .walk_together(&roots, 5, 100, true)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("SNMP request to 127.0.0.1:{silent_port} timed out after 600ms with no answer")
        );
        // Two attempts of the combined request, one of the probe.
        assert_eq!(client.requests_sent(), 3);
    }
    drop(silent);
}
