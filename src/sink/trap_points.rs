//! Trap events (`<site>-traps`, see [`crate::traps`]) as InfluxDB points of measurement
//! `trap`, when `influxdb.traps` is on. The original has no traps, so this mapping is ours:
//!
//! - tags: `kind` (trap, inform), `resource_endpoint`, `resource_id`, `resource_site`
//!   (of the matched resource, when there is one), `source` (the sender's address, no
//!   port), `trap_name`, `trap_oid`, `version`; sorted, escaped as the metrics points'
//!   tags are;
//! - fields: `count=1i`, `agent_uptime=<ticks>i`, `varbinds="<the event's varbinds as
//!   JSON>"`;
//! - time: `received_at`, whole seconds (the sink writes with precision `s`: two identical
//!   notifications from one sender within one second are one point; the topic keeps both).

use serde_json::Value;

use super::line_protocol::write_tag_value;

/// Why a record of the traps topic gives no point.
#[derive(Debug, thiserror::Error)]
pub enum TrapSkipped {
    #[error("not a trap event: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not a trap event: no {0}")]
    Missing(&'static str),
}

/// Appends the point for one trap event (no trailing newline). On error `out` is left as
/// it was.
pub fn encode_trap(value: &[u8], out: &mut Vec<u8>) -> Result<(), TrapSkipped> {
    let event: Value = serde_json::from_slice(value)?;
    let text = |key: &'static str| event.get(key).and_then(Value::as_str);
    let trap_oid = text("trap_oid").ok_or(TrapSkipped::Missing("trap_oid"))?;
    let received_at = event
        .get("received_at")
        .and_then(Value::as_f64)
        .ok_or(TrapSkipped::Missing("received_at"))?;
    let source = text("source").ok_or(TrapSkipped::Missing("source"))?;
    // `ip:port` or `[v6]:port`: the port changes with every sender socket.
    let source_ip = source
        .rsplit_once(':')
        .map_or(source, |(ip, _)| ip)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let resource = |key: &str| {
        event
            .get("resource")
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
    };
    // Sorted by key.
    let tags: [(&str, Option<&str>); 8] = [
        ("kind", text("kind")),
        ("resource_endpoint", resource("resource_endpoint")),
        ("resource_id", resource("resource_id")),
        ("resource_site", resource("resource_site")),
        ("source", Some(source_ip)),
        ("trap_name", text("trap_name")),
        ("trap_oid", Some(trap_oid)),
        ("version", text("version")),
    ];
    out.extend_from_slice(b"trap");
    for (key, value) in tags {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push(b',');
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            write_tag_value(value, out);
        }
    }
    out.extend_from_slice(b" count=1i");
    if let Some(ticks) = event.get("agent_uptime").and_then(Value::as_u64) {
        out.extend_from_slice(format!(",agent_uptime={ticks}i").as_bytes());
    }
    let varbinds = event
        .get("varbinds")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    out.extend_from_slice(b",varbinds=\"");
    for c in varbinds.to_string().chars() {
        if c == '"' || c == '\\' {
            out.push(b'\\');
        }
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out.push(b'"');
    out.push(b' ');
    out.extend_from_slice((received_at.trunc() as i64).to_string().as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trap_event_is_one_point_with_sorted_tags() {
        let event = serde_json::json!({
            "trap_oid": "1.3.6.1.6.3.1.1.5.3", "trap_name": "linkDown", "version": "v2c",
            "kind": "trap", "source": "127.0.0.1:41548",
            "resource": {"resource_id": "demo switch", "resource_endpoint": "127.0.0.1",
                         "resource_site": "local"},
            "v3_user": null, "agent_uptime": 4242, "received_at": 1796549025.9,
            "varbinds": [{"oid": "1.3.6.1.2.1.2.2.1.2.3", "type": "STRING", "value": "eth3 \"x\""}],
            "v1": null});
        let mut out = b"keep".to_vec();
        encode_trap(&serde_json::to_vec(&event).unwrap(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "keeptrap,kind=trap,resource_endpoint=127.0.0.1,resource_id=demo\\ switch,\
             resource_site=local,source=127.0.0.1,trap_name=linkDown,trap_oid=1.3.6.1.6.3.1.1.5.3,\
             version=v2c count=1i,agent_uptime=4242i,varbinds=\"[{\\\"oid\\\":\\\"1.3.6.1.2.1.2.2.1.2.3\\\",\
             \\\"type\\\":\\\"STRING\\\",\\\"value\\\":\\\"eth3 \\\\\\\"x\\\\\\\"\\\"}]\" 1796549025"
        );
    }

    #[test]
    fn an_unmatched_v6_sender_has_no_resource_tags() {
        let event = serde_json::json!({"trap_oid": "1.3.6.1.4.1.8072.2.3.0.1",
            "trap_name": "1.3.6.1.4.1.8072.2.3.0.1", "version": "v1", "kind": "trap",
            "source": "[::1]:162", "resource": null, "received_at": 10.0, "varbinds": []});
        let mut out = Vec::new();
        encode_trap(&serde_json::to_vec(&event).unwrap(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "trap,kind=trap,source=::1,trap_name=1.3.6.1.4.1.8072.2.3.0.1,\
             trap_oid=1.3.6.1.4.1.8072.2.3.0.1,version=v1 count=1i,varbinds=\"[]\" 10"
        );
    }

    #[test]
    fn what_is_not_a_trap_event_says_why_and_writes_nothing() {
        let mut out = b"x".to_vec();
        let e = encode_trap(b"{\"metrics_group_type\": \"interface\"}", &mut out).unwrap_err();
        assert_eq!(e.to_string(), "not a trap event: no trap_oid");
        let e = encode_trap(b"not json", &mut out).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not a trap event: expected ident"),
            "{e}"
        );
        assert_eq!(out, b"x");
    }
}
