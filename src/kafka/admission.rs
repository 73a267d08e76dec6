//! Who gets a connection: at most `kafka.max_connections` in all and
//! `kafka.max_connections_per_ip` from one address, counted in the accept loop before a
//! connection's task is spawned (so a burst of connects cannot overshoot the caps while
//! tasks start).
//!
//! A connection is *on probation* until it has completed a request (on a SASL listener:
//! until it authenticated). At the total cap, a new connection evicts the oldest one on
//! probation instead of being refused: a thousand sockets opened and left silent, or fed
//! a byte at a time, cannot lock out a real client, which leaves probation within
//! milliseconds of connecting. Only when every connection has proven itself is a new one
//! refused.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::events::KafkaRefusal;

struct Entry {
    ip: IpAddr,
    /// Set while on probation: sending on it evicts the connection.
    evict: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Table {
    /// Open connections by id, oldest first.
    live: BTreeMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: u64,
}

impl Table {
    fn forget(&mut self, id: u64) {
        if let Some(entry) = self.live.remove(&id) {
            if let Some(n) = self.per_ip.get_mut(&entry.ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&entry.ip);
                }
            }
        }
    }
}

/// The listener's connection table. Cheap to share.
pub struct Admission {
    table: Arc<Mutex<Table>>,
    max_total: usize,
    max_per_ip: usize,
}

/// A refused connection: why, and what to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub refusal: KafkaRefusal,
    pub detail: String,
}

/// One admitted connection's place in the table, given back when dropped.
pub struct Ticket {
    table: Arc<Mutex<Table>>,
    id: u64,
    evicted: Option<oneshot::Receiver<()>>,
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

impl Admission {
    pub fn new(max_total: usize, max_per_ip: usize) -> Admission {
        Admission {
            table: Arc::default(),
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        lock(&self.table).live.len()
    }

    /// A place for a connection from `ip`, or why there is none. `Ok` may come with the
    /// refusal of the connection evicted to make room.
    pub fn admit(&self, ip: IpAddr) -> Result<(Ticket, Option<Refused>), Refused> {
        let mut t = lock(&self.table);
        let from_ip = t.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.max_per_ip {
            return Err(Refused {
                refusal: KafkaRefusal::TooManyConnectionsFromAddress,
                detail: format!(
                    "connection from {ip} refused: it has {from_ip} open, the most kafka.max_connections_per_ip allows"
                ),
            });
        }
        let mut evicted = None;
        if t.live.len() >= self.max_total {
            let oldest = t
                .live
                .iter()
                .find(|(_, e)| e.evict.is_some())
                .map(|(id, e)| (*id, e.ip));
            let Some((id, victim)) = oldest else {
                return Err(Refused {
                    refusal: KafkaRefusal::TooManyConnections,
                    detail: format!(
                        "connection from {ip} refused: {} open, the most kafka.max_connections allows, all of them past their first request",
                        t.live.len()
                    ),
                });
            };
            if let Some(tx) = t.live.get_mut(&id).and_then(|e| e.evict.take()) {
                let _ = tx.send(());
            }
            t.forget(id);
            evicted = Some(Refused {
                refusal: KafkaRefusal::Evicted,
                detail: format!(
                    "closed a connection from {victim} that had not completed a request, to make room for one from {ip} (kafka.max_connections = {})",
                    self.max_total
                ),
            });
        }
        let id = t.next_id;
        t.next_id += 1;
        let (tx, rx) = oneshot::channel();
        t.live.insert(
            id,
            Entry {
                ip,
                evict: Some(tx),
            },
        );
        *t.per_ip.entry(ip).or_insert(0) += 1;
        Ok((
            Ticket {
                table: Arc::clone(&self.table),
                id,
                evicted: Some(rx),
            },
            evicted,
        ))
    }
}

impl Ticket {
    /// Ends probation: the connection can no longer be evicted.
    pub fn proven(&mut self) {
        if self.evicted.take().is_some() {
            if let Some(e) = lock(&self.table).live.get_mut(&self.id) {
                e.evict = None;
            }
        }
    }

    pub fn on_probation(&self) -> bool {
        self.evicted.is_some()
    }

    /// Resolves when the connection was evicted; never once it is proven.
    pub async fn evicted(&mut self) {
        match &mut self.evicted {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending().await,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.table).forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn caps_per_address_and_in_all_evicting_the_oldest_on_probation() {
        let a = Admission::new(3, 2);
        let (mut first, none) = a.admit(ip("127.0.0.2")).unwrap();
        assert!(none.is_none());
        let (_second, _) = a.admit(ip("127.0.0.2")).unwrap();
        let refused = a.admit(ip("127.0.0.2")).err().unwrap();
        assert_eq!(refused.refusal, KafkaRefusal::TooManyConnectionsFromAddress);
        assert_eq!(
            refused.detail,
            "connection from 127.0.0.2 refused: it has 2 open, the most kafka.max_connections_per_ip allows"
        );
        let (mut third, _) = a.admit(ip("127.0.0.3")).unwrap();
        assert_eq!(a.open(), 3);
        third.proven();
        // Full: the oldest on probation (`first`) makes room.
        let (_fourth, evicted) = a.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(evicted.unwrap().refusal, KafkaRefusal::Evicted);
        first.evicted().await;
        assert_eq!(a.open(), 3);
        drop(first);
        assert_eq!(a.open(), 3, "an evicted ticket is not given back twice");
        // Everyone left has proven itself or is the newest: `_second` goes next, then
        // nobody.
        let (_fifth, evicted) = a.admit(ip("127.0.0.4")).unwrap();
        assert!(evicted.is_some());
        let (mut sixth, _) = a.admit(ip("127.0.0.5")).unwrap_or_else(|r| panic!("{r:?}"));
        sixth.proven();
        let mut all_proven = Vec::new();
        while a.open() > 0 {
            match a.admit(ip("127.0.0.6")) {
                Ok((mut t, _)) => {
                    t.proven();
                    all_proven.push(t);
                }
                Err(r) => {
                    assert_eq!(r.refusal, KafkaRefusal::TooManyConnections);
                    break;
                }
            }
        }
        assert_eq!(a.open(), 3);
        drop(all_proven);
        drop(sixth);
        drop(third);
        assert_eq!(a.open(), 0);
    }
}
