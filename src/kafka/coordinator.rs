//! Consumer groups with Kafka's classic rebalance protocol, in memory.
//!
//! A group moves Empty -> PreparingRebalance (members (re)join; the join completes when
//! every known member has rejoined, or at the rebalance deadline without the missing ones)
//! -> CompletingRebalance (the leader, who got every member's subscription, sends the
//! assignment in SyncGroup) -> Stable (heartbeats; a member silent for its session timeout
//! is removed and the group rebalances). The assignor runs in the clients (range,
//! round-robin, whatever they agree on); the coordinator only picks the protocol every
//! member supports. Committed offsets live in the store (see `groups.rs`); membership does
//! not survive a restart, and clients simply join again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::broker::code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// A JoinGroup request, as the coordinator needs it.
#[derive(Debug, Clone)]
pub struct Join {
    pub group: String,
    /// Empty for a new member.
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// `(protocol name, member metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
}

/// The JoinGroup answer.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member's metadata for the chosen protocol: for the leader only.
    pub members: Vec<(String, Bytes)>,
}

impl Joined {
    fn error(error: i16, member_id: &str) -> Joined {
        Joined {
            error,
            generation: -1,
            member_id: member_id.to_owned(),
            ..Joined::default()
        }
    }
}

/// The answer to a request that may have to wait for other members.
pub enum Outcome<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// `(error, assignment)`.
pub type Synced = (i16, Bytes);

struct Member {
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_seen: Instant,
    joining: Option<oneshot::Sender<Joined>>,
    syncing: Option<oneshot::Sender<Synced>>,
    /// Order of joining, to pick a leader deterministically.
    since: u64,
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: String,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    deadline: Instant,
}

impl Group {
    fn new(now: Instant) -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            deadline: now,
        }
    }

    /// The first protocol of the leader-to-be's list that every member supports.
    fn common_protocol(&self) -> Option<String> {
        let first = self.members.values().min_by_key(|m| m.since)?;
        first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .find(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .cloned()
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.syncing.take() {
                let _ = tx.send((code::REBALANCE_IN_PROGRESS, Bytes::new()));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.state = State::PreparingRebalance;
        self.deadline = now + timeout;
    }

    /// Completes the join phase if every member rejoined, or (with `deadline_passed`)
    /// without those that did not.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let all_in = self.members.values().all(|m| m.joining.is_some());
        if !all_in && now < self.deadline {
            return;
        }
        self.members.retain(|_, m| m.joining.is_some());
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        self.generation = self.generation.wrapping_add(1).max(1);
        self.protocol = self.common_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self
                .members
                .iter()
                .min_by_key(|(_, m)| m.since)
                .map(|(id, _)| id.clone());
        }
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone();
        let everyone: Vec<(String, Bytes)> = self
            .members
            .iter()
            .map(|(id, m)| {
                let metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                (id.clone(), metadata)
            })
            .collect();
        self.state = State::CompletingRebalance;
        for (id, m) in self.members.iter_mut() {
            m.last_seen = now;
            m.assignment = Bytes::new();
            if let Some(tx) = m.joining.take() {
                let _ = tx.send(Joined {
                    error: code::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        everyone.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    fn remove(&mut self, member: &str, now: Instant) -> bool {
        let Some(m) = self.members.remove(member) else {
            return false;
        };
        if let Some(tx) = m.joining {
            let _ = tx.send(Joined::error(code::UNKNOWN_MEMBER_ID, member));
        }
        if let Some(tx) = m.syncing {
            let _ = tx.send((code::UNKNOWN_MEMBER_ID, Bytes::new()));
        }
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
        } else if self.state != State::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now);
        true
    }
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupView {
    pub state: State,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberView>,
}

/// What the groups' members may hold in memory at most, all groups together: their
/// subscriptions (protocol metadata) and assignments. A join or an assignment past it is
/// refused (GROUP_MAX_SIZE_REACHED).
pub const MAX_STATE_BYTES: usize = 64 << 20;

/// Every group of this broker, at most `max_groups` of at most `max_members` each.
pub struct Coordinator {
    groups: Mutex<BTreeMap<String, Group>>,
    counter: AtomicU64,
    max_groups: usize,
    max_members: usize,
}

impl Default for Coordinator {
    fn default() -> Coordinator {
        Coordinator::new(1000, 100)
    }
}

/// Bytes a member holds: ids, subscriptions and assignment.
fn member_bytes(id: &str, m: &Member) -> usize {
    id.len()
        + m.client_id.len()
        + m.client_host.len()
        + m.assignment.len()
        + m.protocols
            .iter()
            .map(|(n, md)| n.len() + md.len())
            .sum::<usize>()
}

/// Bytes every member of every group holds.
fn state_bytes(groups: &BTreeMap<String, Group>) -> usize {
    groups
        .values()
        .flat_map(|g| g.members.iter())
        .map(|(id, m)| member_bytes(id, m))
        .sum()
}

impl Coordinator {
    pub fn new(max_groups: usize, max_members: usize) -> Coordinator {
        Coordinator {
            groups: Mutex::default(),
            counter: AtomicU64::new(0),
            max_groups: max_groups.max(1),
            max_members: max_members.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn join(&self, req: Join, now: Instant) -> Outcome<Joined> {
        if req.group.is_empty() {
            return Outcome::Now(Joined::error(code::INVALID_GROUP_ID, &req.member_id));
        }
        if req.session_timeout < Duration::from_millis(1000)
            || req.session_timeout > Duration::from_secs(1800)
        {
            return Outcome::Now(Joined::error(code::INVALID_SESSION_TIMEOUT, &req.member_id));
        }
        let mut groups = self.lock();
        if !groups.contains_key(&req.group) && groups.len() >= self.max_groups {
            // Room for a new group: forget an empty one (its committed offsets stay in
            // the store), or refuse.
            let empty = groups
                .iter()
                .find(|(_, g)| g.state == State::Empty && g.members.is_empty())
                .map(|(name, _)| name.clone());
            match empty {
                Some(name) => {
                    groups.remove(&name);
                }
                None => {
                    return Outcome::Now(Joined::error(
                        code::COORDINATOR_NOT_AVAILABLE,
                        &req.member_id,
                    ))
                }
            }
        }
        let incoming: usize = req.member_id.len()
            + req.client_id.len()
            + req.client_host.len()
            + req
                .protocols
                .iter()
                .map(|(n, md)| n.len() + md.len())
                .sum::<usize>();
        if state_bytes(&groups).saturating_add(incoming) > MAX_STATE_BYTES {
            return Outcome::Now(Joined::error(code::GROUP_MAX_SIZE_REACHED, &req.member_id));
        }
        let g = groups
            .entry(req.group.clone())
            .or_insert_with(|| Group::new(now));
        if req.protocols.is_empty()
            || (!g.members.is_empty()
                && (req.protocol_type != g.protocol_type
                    || !req.protocols.iter().any(|(name, _)| {
                        g.members
                            .values()
                            .all(|m| m.protocols.iter().any(|(n, _)| n == name))
                    })))
        {
            return Outcome::Now(Joined::error(
                code::INCONSISTENT_GROUP_PROTOCOL,
                &req.member_id,
            ));
        }
        if req.member_id.is_empty() && g.members.len() >= self.max_members {
            return Outcome::Now(Joined::error(code::GROUP_MAX_SIZE_REACHED, &req.member_id));
        }
        let since = self.counter.fetch_add(1, Ordering::Relaxed);
        let member_id = if req.member_id.is_empty() {
            let client = if req.client_id.is_empty() {
                "consumer"
            } else {
                &req.client_id
            };
            format!("{client}-{since:08x}-{:08x}", rand::random::<u32>())
        } else if !g.members.contains_key(&req.member_id) {
            return Outcome::Now(Joined::error(code::UNKNOWN_MEMBER_ID, &req.member_id));
        } else {
            req.member_id.clone()
        };
        // A follower that rejoins unchanged while the group is settled lost our answer:
        // give it the current generation again instead of a needless rebalance.
        if let Some(m) = g.members.get(&member_id) {
            let settled = matches!(g.state, State::Stable | State::CompletingRebalance);
            if settled && m.protocols == req.protocols && g.leader.as_ref() != Some(&member_id) {
                return Outcome::Now(Joined {
                    error: code::NONE,
                    generation: g.generation,
                    protocol_type: g.protocol_type.clone(),
                    protocol: g.protocol.clone(),
                    leader: g.leader.clone().unwrap_or_default(),
                    member_id,
                    members: Vec::new(),
                });
            }
        }
        let (tx, rx) = oneshot::channel();
        g.protocol_type = req.protocol_type.clone();
        let previous = g.members.remove(&member_id);
        let mut member = Member {
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout.max(req.session_timeout),
            protocols: req.protocols,
            assignment: Bytes::new(),
            last_seen: now,
            joining: Some(tx),
            syncing: None,
            since: previous.as_ref().map_or(since, |p| p.since),
        };
        if let Some(mut old) = previous {
            // A retried join replaces the waiting one.
            if let Some(old_tx) = old.joining.take() {
                let _ = old_tx.send(Joined::error(code::REBALANCE_IN_PROGRESS, &member_id));
            }
            member.assignment = old.assignment;
        }
        g.members.insert(member_id, member);
        if g.state != State::PreparingRebalance {
            g.prepare_rebalance(now);
        }
        g.try_complete_join(now);
        Outcome::Later(rx)
    }

    pub fn sync(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Outcome<Synced> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group) else {
            return Outcome::Now((code::UNKNOWN_MEMBER_ID, Bytes::new()));
        };
        if !g.members.contains_key(member_id) {
            return Outcome::Now((code::UNKNOWN_MEMBER_ID, Bytes::new()));
        }
        if generation != g.generation {
            return Outcome::Now((code::ILLEGAL_GENERATION, Bytes::new()));
        }
        let is_leader = g.leader.as_deref() == Some(member_id);
        match g.state {
            State::Empty => Outcome::Now((code::UNKNOWN_MEMBER_ID, Bytes::new())),
            State::PreparingRebalance => Outcome::Now((code::REBALANCE_IN_PROGRESS, Bytes::new())),
            State::Stable => {
                let m = g.members.get_mut(member_id);
                Outcome::Now(m.map_or((code::UNKNOWN_MEMBER_ID, Bytes::new()), |m| {
                    m.last_seen = now;
                    (code::NONE, m.assignment.clone())
                }))
            }
            State::CompletingRebalance if is_leader => {
                let assigned: usize = assignments.iter().map(|(_, a)| a.len()).sum();
                let held: usize = g.members.values().map(|m| m.assignment.len()).sum();
                let others = state_bytes(&groups) - held;
                if others.saturating_add(assigned) > MAX_STATE_BYTES {
                    return Outcome::Now((code::GROUP_MAX_SIZE_REACHED, Bytes::new()));
                }
                let Some(g) = groups.get_mut(group) else {
                    return Outcome::Now((code::UNKNOWN_MEMBER_ID, Bytes::new()));
                };
                let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                for (id, m) in g.members.iter_mut() {
                    m.assignment = given.remove(id).unwrap_or_default();
                    m.last_seen = now;
                    if let Some(tx) = m.syncing.take() {
                        let _ = tx.send((code::NONE, m.assignment.clone()));
                    }
                }
                g.state = State::Stable;
                let own = g
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Outcome::Now((code::NONE, own))
            }
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = g.members.get_mut(member_id) {
                    m.last_seen = now;
                    m.syncing = Some(tx);
                }
                Outcome::Later(rx)
            }
        }
    }

    pub fn heartbeat(&self, group: &str, generation: i32, member_id: &str, now: Instant) -> i16 {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        let state = g.state;
        let current = g.generation;
        let Some(m) = g.members.get_mut(member_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        m.last_seen = now;
        if state == State::PreparingRebalance {
            return code::REBALANCE_IN_PROGRESS;
        }
        if generation != current {
            return code::ILLEGAL_GENERATION;
        }
        code::NONE
    }

    /// Removes members; one error code per member.
    pub fn leave(&self, group: &str, members: &[String], now: Instant) -> Vec<i16> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group) else {
            return vec![code::UNKNOWN_MEMBER_ID; members.len()];
        };
        members
            .iter()
            .map(|id| {
                if g.remove(id, now) {
                    code::NONE
                } else {
                    code::UNKNOWN_MEMBER_ID
                }
            })
            .collect()
    }

    /// Whether an offset commit from `member_id` at `generation` is accepted (Kafka's
    /// rules: a negative generation commits for a group with no members, a member commits
    /// in its own generation, also while the group prepares a rebalance).
    pub fn may_commit(&self, group: &str, generation: i32, member_id: &str, now: Instant) -> i16 {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group) else {
            return if generation < 0 {
                code::NONE
            } else {
                code::ILLEGAL_GENERATION
            };
        };
        if generation < 0 && g.state == State::Empty {
            return code::NONE;
        }
        if g.state == State::CompletingRebalance {
            return code::REBALANCE_IN_PROGRESS;
        }
        let current = g.generation;
        let Some(m) = g.members.get_mut(member_id) else {
            return code::UNKNOWN_MEMBER_ID;
        };
        if generation != current {
            return code::ILLEGAL_GENERATION;
        }
        m.last_seen = now;
        code::NONE
    }

    /// Removes members silent past their session timeout, and ends join phases whose
    /// deadline passed. Called a few times a second.
    pub fn tick(&self, now: Instant) {
        let mut groups = self.lock();
        for (name, g) in groups.iter_mut() {
            if g.state == State::PreparingRebalance {
                g.try_complete_join(now);
                continue;
            }
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| now.saturating_duration_since(m.last_seen) > m.session_timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = name, member = id, "consumer group member timed out");
                g.remove(&id, now);
            }
        }
    }

    pub fn list(&self) -> Vec<(String, String, State)> {
        self.lock()
            .iter()
            .map(|(name, g)| (name.clone(), g.protocol_type.clone(), g.state))
            .collect()
    }

    pub fn describe(&self, group: &str) -> Option<GroupView> {
        let groups = self.lock();
        let g = groups.get(group)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        Some(GroupView {
            state: g.state,
            protocol_type: g.protocol_type.clone(),
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberView {
                    member_id: id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            protocol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(group: &str, member: &str, protocols: &[&str]) -> Join {
        Join {
            group: group.into(),
            member_id: member.into(),
            client_id: "test".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("md-{p}"))))
                .collect(),
        }
    }

    fn now_or_later<T>(o: Outcome<T>) -> Result<T, oneshot::Receiver<T>> {
        match o {
            Outcome::Now(v) => Ok(v),
            Outcome::Later(rx) => Err(rx),
        }
    }

    /// The first member of group `g`: joined (it leads generation 1) and synced.
    fn lone_member(c: &Coordinator, t0: Instant) -> Joined {
        let a = now_or_later(c.join(join("g", "", &["range"]), t0))
            .unwrap_err()
            .try_recv()
            .unwrap();
        now_or_later(c.sync("g", 1, &a.member_id, vec![], t0)).unwrap();
        a
    }

    #[test]
    fn two_members_join_sync_and_one_leaves() {
        let c = Coordinator::default();
        let t0 = Instant::now();
        // First member alone: generation 1 at once.
        let mut rx = now_or_later(c.join(join("g", "", &["range"]), t0)).unwrap_err();
        let a = rx.try_recv().unwrap();
        assert_eq!((a.error, a.generation), (0, 1));
        assert_eq!(a.leader, a.member_id);
        let (err, _) = now_or_later(c.sync(
            "g",
            1,
            &a.member_id,
            vec![(a.member_id.clone(), Bytes::from("all"))],
            t0,
        ))
        .unwrap();
        assert_eq!(err, 0);
        // A second member: the group prepares a rebalance; the first learns by heartbeat.
        let mut rx_b =
            now_or_later(c.join(join("g", "", &["range", "roundrobin"]), t0)).unwrap_err();
        assert_eq!(
            rx_b.try_recv().err(),
            Some(oneshot::error::TryRecvError::Empty),
            "waits for the first member to rejoin"
        );
        assert_eq!(
            c.heartbeat("g", 1, &a.member_id, t0),
            code::REBALANCE_IN_PROGRESS
        );
        let mut rx_a = now_or_later(c.join(join("g", &a.member_id, &["range"]), t0)).unwrap_err();
        let a2 = rx_a.try_recv().unwrap();
        let b = rx_b.try_recv().unwrap();
        assert_eq!((a2.generation, b.generation), (2, 2));
        assert_eq!(a2.protocol.as_deref(), Some("range"));
        assert_eq!(a2.members.len(), 2, "the leader gets every subscription");
        assert!(b.members.is_empty());
        // The follower's sync waits for the leader's.
        let mut rx_sb = now_or_later(c.sync("g", 2, &b.member_id, vec![], t0)).unwrap_err();
        let assignments = vec![
            (a2.member_id.clone(), Bytes::from("p0")),
            (b.member_id.clone(), Bytes::from("p1")),
        ];
        let (_, own) = now_or_later(c.sync("g", 2, &a2.member_id, assignments, t0)).unwrap();
        assert_eq!(own, Bytes::from("p0"));
        assert_eq!(rx_sb.try_recv().unwrap(), (0, Bytes::from("p1")));
        assert_eq!(c.heartbeat("g", 2, &b.member_id, t0), 0);
        // A stale generation cannot commit; the current one can.
        assert_eq!(
            c.may_commit("g", 1, &b.member_id, t0),
            code::ILLEGAL_GENERATION
        );
        assert_eq!(c.may_commit("g", 2, &b.member_id, t0), 0);
        // The leader leaves: the follower rejoins alone and becomes leader of generation 3.
        assert_eq!(
            c.leave("g", std::slice::from_ref(&a2.member_id), t0),
            vec![0]
        );
        let mut rx_b3 = now_or_later(c.join(join("g", &b.member_id, &["range", "roundrobin"]), t0))
            .unwrap_err();
        let b3 = rx_b3.try_recv().unwrap();
        assert_eq!((b3.generation, b3.leader.clone()), (3, b.member_id.clone()));
    }

    #[test]
    fn a_silent_member_is_removed_after_its_session_timeout() {
        let c = Coordinator::default();
        let t0 = Instant::now();
        let a = lone_member(&c, t0);
        c.tick(t0 + Duration::from_secs(5));
        assert_eq!(c.describe("g").unwrap().members.len(), 1);
        c.tick(t0 + Duration::from_secs(11));
        let g = c.describe("g").unwrap();
        assert_eq!((g.members.len(), g.state), (0, State::Empty));
        assert_eq!(
            c.heartbeat("g", 1, &a.member_id, t0),
            code::UNKNOWN_MEMBER_ID
        );
    }

    #[test]
    fn a_member_missing_the_rejoin_is_dropped_at_the_deadline() {
        let c = Coordinator::default();
        let t0 = Instant::now();
        lone_member(&c, t0);
        let mut rx_b = now_or_later(c.join(join("g", "", &["range"]), t0)).unwrap_err();
        c.tick(t0 + Duration::from_secs(29));
        assert_eq!(
            rx_b.try_recv().err(),
            Some(oneshot::error::TryRecvError::Empty),
            "still waiting before the rebalance times out"
        );
        c.tick(t0 + Duration::from_secs(31));
        let b = rx_b.try_recv().unwrap();
        assert_eq!(
            (b.error, b.generation, b.leader == b.member_id),
            (0, 2, true)
        );
    }

    #[test]
    fn incompatible_protocols_and_unknown_members_are_refused() {
        let c = Coordinator::default();
        let t0 = Instant::now();
        let _rx = c.join(join("g", "", &["range"]), t0);
        let Outcome::Now(r) = c.join(join("g", "", &["sticky"]), t0) else {
            panic!()
        };
        assert_eq!(r.error, code::INCONSISTENT_GROUP_PROTOCOL);
        let Outcome::Now(r) = c.join(join("g", "nobody", &["range"]), t0) else {
            panic!()
        };
        assert_eq!(r.error, code::UNKNOWN_MEMBER_ID);
        assert_eq!(
            c.may_commit("other", -1, "", t0),
            0,
            "simple commits to an unknown group"
        );
    }
}
