//! The CLI's side of the HTTP API: `topic tail`, `topic list` and `resources list` talk to
//! the running node, found through the same config and environment it was started with.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
    /// `Authorization` header value when the node asks for a token.
    authorization: Option<String>,
}

enum Fetch<T> {
    Found(T),
    NotFound,
}

/// One page of `/api/topics/{name}/records`, the values left as the node sent them.
#[derive(serde::Deserialize)]
struct RecordsPage {
    partitions: Option<u64>,
    next_offset: Option<u64>,
    records: Vec<RawRecord>,
}

#[derive(serde::Deserialize)]
struct RawRecord {
    value: Box<serde_json::value::RawValue>,
}

impl NodeClient {
    /// A client of the node that `http` (the same settings the node runs with) describes:
    /// its token, and HTTPS trusting the node's own certificate chain (and the usual
    /// public roots) when it serves HTTPS.
    pub fn new(http: &crate::config::HttpSettings) -> Result<NodeClient> {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(3))
            .timeout_read(Duration::from_secs(40));
        let base = if http.tls() {
            // The public roots plus the node's own chain: its own self-signed certificate
            // is trusted by its own CLI.
            let tls = crate::tls::client_config(crate::tls::Trust::Public(Some((
                "http.tls_cert",
                Path::new(http.tls_cert.trim()),
            ))))?;
            builder = builder.tls_config(tls);
            // The certificate names the host, not an address: a loopback or unspecified
            // listener is reached as `localhost`.
            let host = if http.listen.ip().is_loopback() || http.listen.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                http.listen.ip().to_string()
            };
            format!("https://{host}:{}", http.listen.port())
        } else {
            format!("http://{}", connect_addr(http.listen))
        };
        Ok(NodeClient {
            base,
            agent: builder.build(),
            authorization: (!http.token.is_empty())
                .then(|| format!("Bearer {}", http.token.expose())),
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Fetch<T>> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(auth) = &self.authorization {
            request = request.set("Authorization", auth);
        }
        match request.call() {
            Ok(resp) => Ok(Fetch::Found(resp.into_json().with_context(|| format!("reading {url}"))?)),
            Err(ureq::Error::Status(404, _)) => Ok(Fetch::NotFound),
            Err(ureq::Error::Status(code, resp)) => {
                let body = resp.into_string().unwrap_or_default();
                bail!("{url} answered {code}: {body}")
            }
            Err(e) => bail!(
                "cannot reach the panoptes node at {}: {e}\n(is `panoptes run` running? the address comes from http.listen / PANOPTES__HTTP__LISTEN)",
                self.base
            ),
        }
    }

    fn get_found(&self, path: &str) -> Result<Value> {
        match self.get(path)? {
            Fetch::Found(v) => Ok(v),
            Fetch::NotFound => bail!("{}{path}: not found", self.base),
        }
    }

    /// Prints the records of a topic as JSON lines, following new ones until `max` records
    /// were printed (or forever).
    pub fn tail(
        &self,
        topic: &str,
        from_beginning: bool,
        max: Option<usize>,
        out: &mut dyn Write,
    ) -> Result<()> {
        if max == Some(0) {
            return Ok(());
        }
        let mut printed = 0usize;
        let mut warned = false;
        // Per partition: the next offset to ask for (None until the first answer).
        let mut next: Vec<Option<u64>> = vec![None];
        let start = if from_beginning { "beginning" } else { "end" };
        loop {
            let partitions = next.len();
            for p in 0..partitions {
                let offset = next[p]
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| start.to_string());
                let wait = if partitions == 1 { 1000 } else { 200 };
                let path = format!(
                    "/api/topics/{}/records?partition={p}&offset={offset}&max=500&wait_ms={wait}",
                    urlencode(topic)
                );
                let page: RecordsPage = match self.get(&path)? {
                    Fetch::Found(v) => v,
                    Fetch::NotFound => {
                        if !warned {
                            eprintln!("waiting for topic `{topic}` to be created...");
                            warned = true;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
                let count = page.partitions.unwrap_or(1).max(1) as usize;
                if count > next.len() {
                    next.resize(count, None);
                }
                for record in &page.records {
                    // The value as the node sent it: integers past 64 bits stay exact.
                    writeln!(out, "{}", record.value.get())?;
                    printed += 1;
                    if max.is_some_and(|m| printed >= m) {
                        out.flush()?;
                        return Ok(());
                    }
                }
                out.flush()?;
                next[p] = page.next_offset.or(next[p]);
            }
        }
    }

    pub fn topics(&self, out: &mut dyn Write) -> Result<()> {
        let v = self.get_found("/api/topics")?;
        writeln!(
            out,
            "{:<40} {:>9} {:>12} {:>12}",
            "TOPIC", "PARTITION", "LOW", "HIGH"
        )?;
        for t in v["topics"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for p in t["partitions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                writeln!(
                    out,
                    "{:<40} {:>9} {:>12} {:>12}",
                    t["name"].as_str().unwrap_or_default(),
                    p["partition"],
                    p["low_watermark"],
                    p["high_watermark"]
                )?;
            }
        }
        Ok(())
    }

    pub fn resources(&self, json: bool, out: &mut dyn Write) -> Result<()> {
        let v = self.get_found("/api/resources")?;
        let list = v["resources"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if json {
            for r in list {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
            return Ok(());
        }
        writeln!(
            out,
            "{:<24} {:<24} {:<36} {:<10} {:<32}",
            "ID", "ENDPOINT", "CLASS/SUBCLASS/TYPE", "SITE", "PLUGIN"
        )?;
        for r in list {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            writeln!(
                out,
                "{:<24} {:<24} {:<36} {:<10} {:<32}",
                s("resource_id"),
                s("resource_endpoint"),
                format!(
                    "{}/{}/{}",
                    s("resource_class"),
                    s("resource_subclass"),
                    s("resource_type")
                ),
                s("resource_site"),
                s("resource_plugin")
            )?;
        }
        writeln!(out, "{} resource(s)", list.len())?;
        Ok(())
    }

    /// `panoptes cluster status`: the node's `/api/cluster`, as a table or as JSON.
    pub fn cluster(&self, json: bool, out: &mut dyn Write) -> Result<()> {
        let v = self.get_found("/api/cluster")?;
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            return Ok(());
        }
        render_cluster(&v, out)
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to connect for a listener: an unspecified address (`0.0.0.0`) is reached on
/// loopback.
fn connect_addr(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        let ip = match listen {
            SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(ip, listen.port())
    } else {
        listen
    }
}

/// The table `panoptes cluster status` prints for an `/api/cluster` answer.
fn render_cluster(v: &Value, out: &mut dyn Write) -> Result<()> {
    let node = v["node"].as_str().unwrap_or("-");
    let (owned, total) = (
        v["devices_owned"].as_u64().unwrap_or(0),
        v["devices_total"].as_u64().unwrap_or(0),
    );
    if !v["enabled"].as_bool().unwrap_or(false) {
        writeln!(
            out,
            "node {node} is not in a cluster (cluster.enabled = false): it polls all {total} device(s) of its site"
        )?;
        return Ok(());
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    writeln!(
        out,
        "node {node}: owns {owned} of {total} device(s); runs discovery: {}",
        yes(v["runs_discovery"].as_bool().unwrap_or(false))
    )?;
    for (title, key) in [("work", "work"), ("sink", "sink")] {
        let g = &v[key];
        if g.is_null() {
            continue;
        }
        let members = g["members"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        writeln!(
            out,
            "\n{title} group {} on {} ({} partitions): {}, generation {}, {} member(s), {} rebalance(s) here",
            g["group"].as_str().unwrap_or("-"),
            g["topic"].as_str().unwrap_or("-"),
            g["topic_partitions"],
            g["state"].as_str().unwrap_or("-"),
            g["generation"],
            members.len(),
            g["rebalances"],
        )?;
        if let Some(e) = g["last_error"].as_str() {
            writeln!(out, "  last error: {e}")?;
        }
        writeln!(
            out,
            "  {:<24} {:<22} {:>10} {:>8}",
            "NODE", "HTTP", "PARTITIONS", "DEVICES"
        )?;
        for m in members {
            let me = m["member_id"] == g["member_id"];
            let name = format!(
                "{}{}",
                m["node"].as_str().unwrap_or("-"),
                if me { " *" } else { "" }
            );
            let devices = m["devices"]
                .as_u64()
                .map_or("-".to_owned(), |d| d.to_string());
            writeln!(
                out,
                "  {:<24} {:<22} {:>10} {:>8}",
                name,
                m["http"].as_str().unwrap_or("-"),
                m["partitions"].as_array().map_or(0, Vec::len),
                devices
            )?;
        }
    }
    let lag = v["sink_lag"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !lag.is_empty() {
        let parts: Vec<String> = lag
            .iter()
            .map(|p| {
                let l = p["lag"].as_u64().map_or("?".to_owned(), |l| l.to_string());
                format!("{}:{l}", p["partition"])
            })
            .collect();
        writeln!(out, "\nsink lag (partition:records): {}", parts.join(" "))?;
    }
    Ok(())
}

#[cfg(test)]
mod cluster_table_tests {
    use super::*;

    #[test]
    fn a_cluster_status_prints_members_partitions_and_devices() {
        let v = serde_json::json!({
            "enabled": true, "node": "n1", "runs_discovery": true,
            "devices_owned": 101, "devices_total": 300,
            "work": {"group": "panoptes-local", "topic": "local-work", "state": "stable",
                "generation": 3, "leader": true, "member_id": "m1", "partitions": [0, 1],
                "topic_partitions": 64, "rebalances": 1, "last_error": null,
                "members": [
                    {"node": "n1", "http": "10.0.0.1:8080", "member_id": "m1", "partitions": [0, 1], "devices": 101},
                    {"node": "n2", "http": "10.0.0.2:8080", "member_id": "m2", "partitions": [2], "devices": 99}
                ]},
            "sink": null,
            "sink_lag": [{"partition": 4, "lag": 12, "delivery_failures": 0}]
        });
        let mut out = Vec::new();
        render_cluster(&v, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("node n1: owns 101 of 300 device(s); runs discovery: yes\n"),
            "{text}"
        );
        assert!(text.contains("work group panoptes-local on local-work (64 partitions): stable, generation 3, 2 member(s), 1 rebalance(s) here"), "{text}");
        let n1 = text
            .lines()
            .find(|l| l.trim_start().starts_with("n1 *"))
            .expect(&text);
        assert!(
            n1.contains("10.0.0.1:8080") && n1.trim_end().ends_with("2      101"),
            "{n1}"
        );
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("n2 ") && l.trim_end().ends_with("99")),
            "{text}"
        );
        assert!(
            text.contains("sink lag (partition:records): 4:12"),
            "{text}"
        );

        let alone = serde_json::json!({"enabled": false, "node": "box", "devices_total": 7});
        let mut out = Vec::new();
        render_cluster(&alone, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "node box is not in a cluster (cluster.enabled = false): it polls all 7 device(s) of its site\n"
        );
    }
}
