//! The fuzz targets' corpora (`fuzz/corpus/<target>/`), replayed on stable Rust through the
//! same entry functions the fuzzer calls (`panoptes::fuzzing`, and
//! `panoptes_storage::fuzzing` for the segment scan): every input the fuzzer kept, and every
//! crash it found (once fixed), stays a test of the code as it is now. The segment scan's
//! seeds are written by `storage/tests/fuzz_corpus.rs`.
//!
//! `write_seeds` (ignored) writes the seeds built from the repository's own inputs; the
//! seeds captured from real clients and servers came from `fuzz/capture.py`.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Feeds every file of `target`'s corpus to `run`; a panic names the file.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} inputs",
        dir.display(),
        files.len()
    );
    for file in files {
        let data = std::fs::read(&file).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{} panicked on {}", target, file.display());
        }
    }
}

#[test]
fn snmp_response() {
    replay("snmp_response", panoptes::fuzzing::snmp_response);
}

#[test]
fn snmp_agent() {
    replay("snmp_agent", panoptes::fuzzing::snmp_agent);
}

#[test]
fn trap_datagram() {
    replay("trap_datagram", panoptes::fuzzing::trap_datagram);
}

#[test]
fn kafka_request() {
    replay("kafka_request", panoptes::fuzzing::kafka_request);
}

#[test]
fn filter() {
    replay("filter", panoptes::fuzzing::filter);
}

#[test]
fn expression() {
    replay("expression", panoptes::fuzzing::expression);
}

#[test]
fn dsl_document() {
    replay("dsl_document", panoptes::fuzzing::dsl_document);
}

#[test]
fn plugin_file() {
    replay("plugin_file", panoptes::fuzzing::plugin_file);
}

#[test]
fn mib_module() {
    replay("mib_module", panoptes::fuzzing::mib_module);
}

#[test]
fn segment_scan() {
    replay("segment_scan", panoptes_storage::fuzzing::segment_scan);
}

/// Writes the seeds made from the repository's inputs into `fuzz/corpus/`:
/// `cargo test --test fuzz_corpora -- --ignored write_seeds`.
#[test]
#[ignore = "writes seed files into fuzz/corpus"]
fn write_seeds() {
    seeds::snmp();
    seeds::traps();
    seeds::text();
}

mod seeds {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use panoptes::fuzzing::{snmp_client_keys, snmp_users, SNMP_COMMUNITY, SNMP_ENGINE_ID};
    use panoptes::simulate::{
        Agent, CounterMode, DeviceSecurity, Outcome, Recording, ResponseBuffer, Scratch,
    };
    use panoptes::snmp::message::{
        self, community_message, request_pdu, scoped_pdu, v3_message, V3Header, PDU_GET,
        PDU_GET_BULK, PDU_GET_NEXT,
    };
    use panoptes::snmp::usm::KeyCache;
    use panoptes::snmp::Oid;
    use serde_json::Value as Json;

    const MAX_SEED: usize = 64 * 1024;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// Writes `data` into `target`'s corpus, named by its FNV-1a hash (stable, so writing
    /// the seeds again changes nothing).
    fn save(target: &str, data: &[u8]) {
        if data.is_empty() || data.len() > MAX_SEED {
            return;
        }
        let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        let dir = super::corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{hash:016x}")), data).unwrap();
    }

    /// Files under `dir` (recursively) whose name satisfies `keep`, sorted.
    fn files(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().and_then(|n| n.to_str()).is_some_and(keep) {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    fn oid(text: &str) -> Oid {
        text.parse().unwrap()
    }

    /// Requests as our client encodes them, in every version and at every v3 level with
    /// the fuzz targets' users (so their MACs are valid and they decrypt), and the
    /// simulator's answers to them over conformance recordings (real devices' values).
    /// Notifications of every version and security level, as the trap receiver gets them:
    /// v3 traps from another engine, v3 informs to the receiver's (and a discovery probe).
    pub fn traps() {
        use panoptes::snmp::notification::{push_trap_v1, v2_notification_pdu, V1Fields};
        use panoptes::snmp::{SnmpValue, Varbind};
        let varbinds = vec![
            Varbind::new(oid("1.3.6.1.2.1.2.2.1.1.3"), SnmpValue::Integer(3)),
            Varbind::new(
                oid("1.3.6.1.2.1.2.2.1.2.3"),
                SnmpValue::OctetString(b"eth3".to_vec()),
            ),
            Varbind::new(oid("1.3.6.1.2.1.2.2.1.10.3"), SnmpValue::Counter32(7)),
        ];
        for (generic, specific) in [(2, 0), (6, 17)] {
            let mut pdu = Vec::new();
            let fields = V1Fields {
                enterprise: oid("1.3.6.1.4.1.8072.2.3"),
                agent_addr: [192, 0, 2, 7],
                generic_trap: generic,
                specific_trap: specific,
            };
            push_trap_v1(&mut pdu, &fields, 4242, &varbinds).unwrap();
            save(
                "trap_datagram",
                &community_message(0, SNMP_COMMUNITY.as_bytes(), &pdu),
            );
        }
        let sender_engine = b"\x80\x00\x1f\x88\x05sender";
        for tag in [message::PDU_TRAP_V2, message::PDU_INFORM] {
            let pdu =
                v2_notification_pdu(tag, 41, 100, &oid("1.3.6.1.6.3.1.1.5.3"), &varbinds).unwrap();
            save(
                "trap_datagram",
                &community_message(1, SNMP_COMMUNITY.as_bytes(), &pdu),
            );
            save("trap_datagram", &community_message(1, b"wrong", &pdu));
            let engine: &[u8] = if tag == message::PDU_INFORM {
                SNMP_ENGINE_ID
            } else {
                sender_engine
            };
            for user in snmp_users() {
                let keys = KeyCache::default().localize(&user, engine);
                let header = V3Header {
                    msg_id: 80,
                    flags: message::flags_for(user.level(), true),
                    engine_id: engine,
                    boots: 1,
                    time: 90,
                    user: user.name.as_bytes(),
                };
                let scoped = scoped_pdu(engine, b"", &pdu);
                save(
                    "trap_datagram",
                    &v3_message(&header, &keys, &scoped).unwrap(),
                );
            }
        }
        let probe = V3Header {
            msg_id: 81,
            flags: message::FLAG_REPORTABLE,
            engine_id: b"",
            boots: 0,
            time: 0,
            user: b"",
        };
        let no_keys = panoptes::snmp::usm::LocalizedKeys {
            auth: None,
            privacy: None,
        };
        let pdu = v2_notification_pdu(message::PDU_INFORM, 42, 1, &oid("1.3.6.1.6.3.1.1.5.1"), &[])
            .unwrap();
        save(
            "trap_datagram",
            &v3_message(&probe, &no_keys, &scoped_pdu(b"", b"", &pdu)).unwrap(),
        );
    }

    pub fn snmp() {
        let asks: Vec<(u8, i64, i64, Vec<Oid>)> = vec![
            (
                PDU_GET,
                0,
                0,
                vec![oid("1.3.6.1.2.1.1.5.0"), oid("1.3.6.1.2.1.1.3.0")],
            ),
            (PDU_GET_NEXT, 0, 0, vec![oid("1.3.6.1.2.1.2.2.1.2")]),
            (PDU_GET_BULK, 0, 25, vec![oid("1.3.6.1.2.1.2.2")]),
            (
                PDU_GET_BULK,
                1,
                10,
                vec![oid("1.3.6.1.2.1.1.3"), oid("1.3.6.1.2.1.31.1.1.1.6")],
            ),
            (PDU_GET_BULK, 0, 200, vec![oid("1.3.6.1.4.1")]),
        ];
        let mut requests = Vec::new();
        for (tag, a, b, oids) in &asks {
            let pdu = request_pdu(*tag, 77, *a, *b, oids).unwrap();
            if *tag != PDU_GET_BULK {
                requests.push(community_message(0, SNMP_COMMUNITY.as_bytes(), &pdu));
            }
            requests.push(community_message(1, SNMP_COMMUNITY.as_bytes(), &pdu));
            for (user, keys) in snmp_client_keys() {
                let header = V3Header {
                    msg_id: 78,
                    flags: message::flags_for(user.level(), true),
                    engine_id: SNMP_ENGINE_ID,
                    boots: 1,
                    time: 90,
                    user: user.name.as_bytes(),
                };
                let scoped = scoped_pdu(SNMP_ENGINE_ID, b"", &pdu);
                requests.push(v3_message(&header, keys, &scoped).unwrap());
            }
        }
        // Discovery: no engine ID, no user.
        let discovery = V3Header {
            msg_id: 79,
            flags: message::FLAG_REPORTABLE,
            engine_id: b"",
            boots: 0,
            time: 0,
            user: b"",
        };
        let no_keys = panoptes::snmp::usm::LocalizedKeys {
            auth: None,
            privacy: None,
        };
        let pdu = request_pdu(PDU_GET, 79, 0, 0, &[]).unwrap();
        requests.push(v3_message(&discovery, &no_keys, &scoped_pdu(b"", b"", &pdu)).unwrap());
        for request in &requests {
            save("snmp_agent", request);
        }

        // The simulator's answers over conformance recordings, in v3 with the users and
        // engine ID of the fuzz targets (valid MACs, decryptable).
        let security = Arc::new(DeviceSecurity::new(
            SNMP_ENGINE_ID.to_vec(),
            &snmp_users(),
            &KeyCache::default(),
        ));
        let answer = |agent: &Agent, request: &[u8]| {
            let mut scratch = Scratch::default();
            let mut out = ResponseBuffer::new(agent.community_len(), 0);
            if agent.handle(request, Duration::from_secs(90), &mut scratch, &mut out)
                == Outcome::Reply
            {
                save("snmp_response", out.message());
            }
        };
        let recordings = files(&root().join("tests/conformance"), &|n| {
            n.ends_with(".snmprec")
        });
        let mut seen = BTreeSet::new();
        for path in recordings
            .iter()
            .filter(|p| seen.insert(std::fs::read(p).unwrap()))
            .take(12)
        {
            let recording = Arc::new(Recording::load(path).unwrap());
            let agent = Agent::new(recording, SNMP_COMMUNITY, CounterMode::Frozen, 65_507)
                .with_security(Arc::clone(&security));
            for request in &requests {
                answer(&agent, request);
            }
        }
    }

    /// Filters, expressions, DSL documents and plugin files from the repository's
    /// configuration, conformance cases and vendor definitions.
    pub fn text() {
        // MIB modules: the built-in ones, the test vendor's, the broken ones, and each cut
        // short (in a clause, in IMPORTS).
        let mibs: Vec<PathBuf> = ["resources/mibs", "tests/mibs", "tests/mibs-broken"]
            .iter()
            .flat_map(|d| files(&root().join(d), &|n| n.ends_with(".txt")))
            .collect();
        for path in &mibs {
            let text = std::fs::read(path).unwrap();
            save("mib_module", &text);
            for cut in [200, 1500, 5000] {
                save("mib_module", &text[..cut.min(text.len())]);
            }
        }
        let plugin_files: Vec<PathBuf> = [root().join("conf"), root().join("tests/conformance")]
            .iter()
            .flat_map(|d| {
                files(d, &|n| {
                    n.ends_with(".panoptes-plugin") || n.ends_with(".conf")
                })
            })
            .collect();
        for path in &plugin_files {
            let text = std::fs::read_to_string(path).unwrap();
            save("plugin_file", text.as_bytes());
            save("plugin_file", ini_as_toml(&text).as_bytes());
            for line in text.lines() {
                if let Some((key, value)) = line.split_once('=') {
                    if key.trim() == "resource_filter" {
                        save("filter", value.trim().as_bytes());
                    }
                }
            }
        }
        for filter in [
            r#"resource_class = "network" AND resource_type = "cisco" AND resource_metadata.os_name LIKE "CISCO IOS%""#,
            r#"resource_site NOT IN ("dc1", "dc2")"#,
            r#"resource_metadata.os_version LIKE "4%" OR resource_site = "dc1""#,
            r#"resource_id eq "sw1.dc1" OR resource_endpoint ne "10.0.0.1""#,
            r#"resource_metadata.model NOT LIKE "%_48T\"S%" AND resource_subclass IN ("switch")"#,
            "resource_class = \"network\"\n  AND resource_plugin = \"x\"",
            r#"(resource_class = "network")"#,
        ] {
            save("filter", filter.as_bytes());
        }

        let mut expressions = BTreeSet::new();
        for path in files(&root().join("resources/vendors"), &|n| n.ends_with(".json")) {
            let json: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            collect_strings(&json, &mut expressions);
        }
        for path in files(&root().join("tests/conformance"), &|n| n.ends_with(".kv")) {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                let Some((_, json)) = line.split_once("=>") else {
                    continue;
                };
                let Ok(json) = serde_json::from_str::<Json>(json) else {
                    continue;
                };
                for doc in json
                    .get("data")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flat_map(|d| d.values())
                {
                    save("dsl_document", doc.to_string().as_bytes());
                    collect_strings(doc, &mut expressions);
                }
            }
        }
        for e in expressions {
            save("expression", e.as_bytes());
        }
    }

    /// The strings of a JSON document that look like expressions or transforms (an
    /// operator, a call, a literal or `$index` in them): what vendor definitions and DSL
    /// documents write.
    fn collect_strings(json: &Json, out: &mut BTreeSet<String>) {
        const MARKS: [&str; 9] = ["(", "$index", "'", "[", "lambda", "+", "*", "==", " if "];
        match json {
            Json::String(s) if MARKS.iter().any(|m| s.contains(m)) => {
                out.insert(s.clone());
            }
            Json::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
            Json::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
            _ => {}
        }
    }

    /// The same plugin file written as TOML: sections as tables, every value a string.
    fn ini_as_toml(ini: &str) -> String {
        let mut out = String::new();
        for line in ini.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with(';') || t.starts_with('[') {
                out.push_str(t);
            } else if let Some((k, v)) = t.split_once('=') {
                let v = v.trim().replace('\\', "\\\\").replace('"', "\\\"");
                out.push_str(&format!("{} = \"{v}\"", k.trim()));
            }
            out.push('\n');
        }
        out
    }
}
