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
