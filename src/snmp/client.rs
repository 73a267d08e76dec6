//! An SNMP v2c client for one device poll: timeouts, retries, walks, and
//! recovery from late replies, around snmp2's single-request `AsyncSession`.
//!
//! snmp2 keeps one UDP socket with one request in flight and has no timeout.
//! When we give up on a request its reply may still arrive, sit in the socket,
//! and be read as the answer to the next request (snmp2 then reports
//! `RequestIdMismatch`). Rather than trying to drain the socket, we drop the
//! session after any timeout or mismatch and open a fresh one (a new socket,
//! a new source port): a late reply then lands on a closed port. Request IDs
//! keep counting across sessions, so even a reply that somehow reached the new
//! socket could never match.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use snmp2::{AsyncSession, Pdu};

use super::convert::{from_wire_oid, from_wire_value, to_wire_oid};
use super::walk::{DoneReason, LimitExceeded, Step, Walk, DEFAULT_WALK_LIMIT};
use super::{Oid, SnmpError, SnmpTarget, SnmpVersion, Varbind};

/// RFC 3416 error-status `tooBig`: the answer would not fit in one message.
const ERROR_TOO_BIG: u32 = 1;

/// Extra tries allowed when only stale replies arrive (see `request`).
const STALE_REPLY_BUDGET: u32 = 3;

pub struct SnmpClient {
    label: String,
    addr: SocketAddr,
    community: Vec<u8>,
    timeout: Duration,
    retries: u32,
    max_repetitions: u32,
    walk_limit: usize,
    /// Boxed: snmp2 keeps two 64 KiB buffers inline, too big to move around on
    /// the stack of every future that holds a client.
    session: Option<Box<AsyncSession>>,
    /// The request ID the next request will carry (snmp2 takes one per request,
    /// even a cancelled one, so we can mirror its counter).
    next_request_id: i32,
    requests_sent: u64,
}

enum Request<'a> {
    Get(&'a [snmp2::Oid<'static>]),
    GetNext(&'a [snmp2::Oid<'static>]),
    GetBulk {
        oids: &'a [snmp2::Oid<'static>],
        non_repeaters: u32,
        max_repetitions: u32,
    },
}

/// Why one attempt failed, before we decide whether to try again.
enum Failure {
    Wire(snmp2::Error),
    Status { status: u32, index: u32 },
    Malformed(String),
}

impl SnmpClient {
    /// Resolves the target and opens a v2c session.
    pub async fn connect(target: &SnmpTarget) -> Result<SnmpClient, SnmpError> {
        SnmpClient::connect_with_version(target, SnmpVersion::V2c).await
    }

    /// Like [`SnmpClient::connect`]; v1 and v3 answer `UnsupportedVersion` for now.
    pub async fn connect_with_version(
        target: &SnmpTarget,
        version: SnmpVersion,
    ) -> Result<SnmpClient, SnmpError> {
        let label = target.label();
        if version != SnmpVersion::V2c {
            return Err(SnmpError::UnsupportedVersion {
                target: label,
                version,
            });
        }
        let addr = resolve(target, &label).await?;
        let mut client = SnmpClient {
            label,
            addr,
            community: target.community.expose().as_bytes().to_vec(),
            timeout: target.timeout,
            retries: target.retries,
            max_repetitions: target.max_repetitions.max(1),
            walk_limit: DEFAULT_WALK_LIMIT,
            session: None,
            next_request_id: rand::random::<i32>() & 0x3fff_ffff,
            requests_sent: 0,
        };
        client.open_session().await?;
        Ok(client)
    }

    /// Replaces the row bound of [`SnmpClient::bulk_walk`].
    pub fn with_walk_limit(mut self, limit: usize) -> SnmpClient {
        self.walk_limit = limit;
        self
    }

    /// UDP requests sent so far, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent
    }

    /// `host:port` of the agent.
    pub fn target_label(&self) -> &str {
        &self.label
    }

    /// GET: one varbind per OID, in order; missing ones come back as
    /// `NoSuchObject`/`NoSuchInstance` values, not errors.
    pub async fn get(&mut self, oids: &[Oid]) -> Result<Vec<Varbind>, SnmpError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let wire = self.wire_oids(oids)?;
        self.request(&Request::Get(&wire)).await
    }

    /// GETNEXT: the successor of each OID.
    pub async fn get_next(&mut self, oids: &[Oid]) -> Result<Vec<Varbind>, SnmpError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let wire = self.wire_oids(oids)?;
        self.request(&Request::GetNext(&wire)).await
    }

    pub async fn get_bulk(
        &mut self,
        oids: &[Oid],
        non_repeaters: u32,
        max_repetitions: u32,
    ) -> Result<Vec<Varbind>, SnmpError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let wire = self.wire_oids(oids)?;
        self.request(&Request::GetBulk {
            oids: &wire,
            non_repeaters,
            max_repetitions,
        })
        .await
    }

    /// Every varbind under `root` (exclusive), in agent order, by GETBULK with
    /// the target's `max_repetitions`. Stops when the agent leaves the subtree,
    /// reaches endOfMibView, or goes backwards (logged; rows so far returned).
    /// An agent answering `tooBig` gets asked again for fewer repetitions.
    pub async fn bulk_walk(&mut self, root: &Oid) -> Result<Vec<Varbind>, SnmpError> {
        let mut walk = Walk::new(root, self.walk_limit);
        let mut repetitions = self.max_repetitions;
        loop {
            let batch = match self
                .get_bulk(std::slice::from_ref(walk.cursor()), 0, repetitions)
                .await
            {
                Err(SnmpError::ErrorStatus { status, .. })
                    if status == ERROR_TOO_BIG && repetitions > 1 =>
                {
                    repetitions /= 2;
                    continue;
                }
                other => other?,
            };
            match walk.accept(batch) {
                Ok(Step::Continue) => {}
                Ok(Step::Done(DoneReason::NotIncreasing { previous, returned })) => {
                    tracing::warn!(
                        target = %self.label, %root, %previous, %returned,
                        "agent returned a non-increasing OID during a walk; stopping with the rows so far"
                    );
                    break;
                }
                Ok(Step::Done(_)) => break,
                Err(LimitExceeded) => {
                    return Err(SnmpError::WalkLimit {
                        target: self.label.clone(),
                        root: root.clone(),
                        limit: self.walk_limit,
                    })
                }
            }
        }
        Ok(walk.into_rows())
    }

    fn wire_oids(&self, oids: &[Oid]) -> Result<Vec<snmp2::Oid<'static>>, SnmpError> {
        oids.iter()
            .map(|oid| {
                to_wire_oid(oid).map_err(|e| SnmpError::Protocol {
                    target: self.label.clone(),
                    detail: format!("cannot send OID {oid}: {e}"),
                })
            })
            .collect()
    }

    async fn open_session(&mut self) -> Result<&mut AsyncSession, SnmpError> {
        if self.session.is_none() {
            let session = AsyncSession::new_v2c(self.addr, &self.community, self.next_request_id)
                .await
                .map_err(|source| SnmpError::Network {
                    target: self.label.clone(),
                    source,
                })?;
            self.session = Some(Box::new(session));
        }
        match self.session.as_deref_mut() {
            Some(session) => Ok(session),
            None => Err(SnmpError::Protocol {
                target: self.label.clone(),
                detail: "session vanished while opening".to_string(),
            }),
        }
    }

    /// One request with retries. Each attempt has `timeout`; any attempt that
    /// does not end in a clean answer throws the session away.
    ///
    /// A reply to an earlier request (a duplicate, or one that outlived its
    /// timeout) does not use up an attempt: it shows the agent is alive, so we
    /// ask again on a fresh socket, at most [`STALE_REPLY_BUDGET`] times.
    async fn request(&mut self, request: &Request<'_>) -> Result<Vec<Varbind>, SnmpError> {
        let attempts = self.retries.saturating_add(1);
        let per_attempt = self.timeout;
        let mut attempt = 0;
        let mut stale_budget = STALE_REPLY_BUDGET;
        let mut last_error = None;
        while attempt < attempts {
            attempt += 1;
            let session = self.open_session().await?;
            let outcome = tokio::time::timeout(per_attempt, exchange(session, request)).await;
            self.requests_sent += 1;
            self.next_request_id = self.next_request_id.wrapping_add(1);
            let failure = match outcome {
                Ok(Ok(varbinds)) => return Ok(varbinds),
                Ok(Err(failure)) => failure,
                Err(_elapsed) => {
                    tracing::debug!(target = %self.label, attempt, attempts, "SNMP request timed out");
                    self.session = None;
                    last_error = Some(SnmpError::Timeout {
                        target: self.label.clone(),
                        after: per_attempt.saturating_mul(attempts),
                    });
                    continue;
                }
            };
            match failure {
                Failure::Status { status, index } => {
                    return Err(SnmpError::ErrorStatus {
                        target: self.label.clone(),
                        status,
                        index,
                    })
                }
                Failure::Malformed(detail) => {
                    self.session = None;
                    return Err(SnmpError::Protocol {
                        target: self.label.clone(),
                        detail,
                    });
                }
                Failure::Wire(snmp2::Error::RequestIdMismatch) => {
                    tracing::debug!(target = %self.label, attempt, "discarded a reply to an earlier request");
                    self.session = None;
                    if stale_budget > 0 {
                        stale_budget -= 1;
                        attempt -= 1;
                    }
                    last_error = Some(SnmpError::Protocol {
                        target: self.label.clone(),
                        detail: "only replies to earlier requests arrived".to_string(),
                    });
                }
                Failure::Wire(error @ (snmp2::Error::Send | snmp2::Error::Receive)) => {
                    // E.g. ICMP port unreachable; snmp2 drops the io::Error itself.
                    self.session = None;
                    last_error = Some(SnmpError::Network {
                        target: self.label.clone(),
                        source: std::io::Error::other(format!(
                            "{error} (nothing listening, or the host is unreachable)"
                        )),
                    });
                }
                Failure::Wire(error) => {
                    self.session = None;
                    return Err(SnmpError::Protocol {
                        target: self.label.clone(),
                        detail: format!("cannot decode the response: {error}"),
                    });
                }
            }
        }
        Err(last_error.unwrap_or_else(|| SnmpError::Timeout {
            target: self.label.clone(),
            after: per_attempt,
        }))
    }
}

/// Sends one request on `session` and reads one answer.
async fn exchange(
    session: &mut AsyncSession,
    request: &Request<'_>,
) -> Result<Vec<Varbind>, Failure> {
    let (oids, expected) = match request {
        Request::Get(oids) | Request::GetNext(oids) => (*oids, Expected::Exactly(oids.len())),
        Request::GetBulk {
            oids,
            non_repeaters,
            max_repetitions,
        } => {
            let n = oids.len() as u64;
            let nr = u64::from(*non_repeaters).min(n);
            let most = nr + (n - nr) * u64::from(*max_repetitions);
            (*oids, Expected::AtMost(most))
        }
    };
    let refs: Vec<&snmp2::Oid<'_>> = oids.iter().collect();
    let pdu = match request {
        Request::Get(_) => session.get_many(&refs).await,
        Request::GetNext(_) if refs.len() == 1 => session.getnext(refs[0]).await,
        // snmp2 has no multi-OID GETNEXT; a GETBULK whose OIDs are all
        // non-repeaters is the same request by definition (RFC 3416 4.2.3).
        Request::GetNext(_) => {
            let n = u32::try_from(refs.len()).unwrap_or(u32::MAX);
            session.getbulk(&refs, n, 0).await
        }
        Request::GetBulk {
            non_repeaters,
            max_repetitions,
            ..
        } => {
            session
                .getbulk(&refs, *non_repeaters, *max_repetitions)
                .await
        }
    }
    .map_err(Failure::Wire)?;
    read_response(&pdu, expected)
}

enum Expected {
    Exactly(usize),
    AtMost(u64),
}

fn read_response(pdu: &Pdu<'_>, expected: Expected) -> Result<Vec<Varbind>, Failure> {
    if pdu.error_status != 0 {
        return Err(Failure::Status {
            status: pdu.error_status,
            index: pdu.error_index,
        });
    }
    let mut varbinds = Vec::new();
    for (i, (name, value)) in pdu.varbinds.clone().enumerate() {
        let oid = from_wire_oid(&name)
            .map_err(|e| Failure::Malformed(format!("varbind {}: bad OID: {e}", i + 1)))?;
        let value = from_wire_value(&value)
            .map_err(|e| Failure::Malformed(format!("varbind {} ({oid}): {e}", i + 1)))?;
        varbinds.push(Varbind { oid, value });
    }
    let count_ok = match expected {
        Expected::Exactly(n) => varbinds.len() == n,
        Expected::AtMost(n) => varbinds.len() as u64 <= n,
    };
    if !count_ok {
        let wanted = match expected {
            Expected::Exactly(n) => format!("{n}"),
            Expected::AtMost(n) => format!("at most {n}"),
        };
        return Err(Failure::Malformed(format!(
            "expected {wanted} varbinds, decoded {} (truncated or malformed list?)",
            varbinds.len()
        )));
    }
    Ok(varbinds)
}

/// Turns `host`/`port` into one socket address, or says clearly why not.
async fn resolve(target: &SnmpTarget, label: &str) -> Result<SocketAddr, SnmpError> {
    let invalid = |reason: String| SnmpError::InvalidAddress {
        target: label.to_string(),
        reason,
    };
    let host = target.host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(invalid("the host is empty".to_string()));
    }
    if target.port == 0 {
        return Err(invalid("port 0 cannot be polled".to_string()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, target.port));
    }
    // Dotted digits that did not parse are a typo'd address (127.0.0.257), not a
    // name to send to DNS.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid(format!(
            "{host:?} is not a valid IPv4 address (four numbers 0-255)"
        )));
    }
    let mut addrs = tokio::net::lookup_host((host, target.port))
        .await
        .map_err(|e| invalid(format!("cannot resolve host {host:?}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| invalid(format!("host {host:?} resolved to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::Community;

    #[tokio::test]
    async fn bad_addresses_are_named() {
        for host in ["127.0.0.257", "", "1.2.3"] {
            let target = SnmpTarget::new(host, Community::from("public"));
            match SnmpClient::connect(&target).await {
                Err(e @ SnmpError::InvalidAddress { .. }) => {
                    assert!(e.to_string().contains(&target.label()), "{e}");
                    assert!(!e.to_string().contains("public"));
                }
                Err(other) => panic!("{host}: wrong error {other}"),
                Ok(_) => panic!("{host}: accepted"),
            }
        }
    }

    /// Pollers spawn these futures on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(client: &mut SnmpClient, oid: &Oid) {
        fn send<T: Send>(_: T) {}
        send(client.get(std::slice::from_ref(oid)));
        send(client.bulk_walk(oid));
        send(SnmpClient::connect(&SnmpTarget::new(
            "h",
            Community::from("c"),
        )));
    }

    #[tokio::test]
    async fn other_versions_are_refused_clearly() {
        let target = SnmpTarget::new("127.0.0.1", Community::from("public"));
        let err = SnmpClient::connect_with_version(&target, SnmpVersion::V3)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("v3 is not supported"), "{err}");
    }
}
