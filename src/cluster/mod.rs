//! Several nodes of one site sharing its fleet through the external Kafka cluster's group
//! membership: no coordinator of our own, no second consensus system.
//!
//! - **Work.** The nodes join consumer group `panoptes-<site>` on topic `<site>-work`,
//!   whose partitions are the units of work: a resource belongs to partition
//!   `murmur2(resource_id) mod P` (Kafka's partitioner), and a node enriches and polls
//!   exactly the resources of the partitions the group assigned to it. A rebalance (a node
//!   joins, leaves or dies) moves partitions, and the schedulers re-plan at once.
//! - **Discovery.** Only the member owning partition 0 runs discovery; every node reads
//!   every resource set (the resource manager's group is per node in cluster mode).
//! - **State.** Rate state and enrichments are rebuilt by a partition's new owner: it
//!   enriches the devices it gained (their polls wait for that), and their first poll gives
//!   no rates, so a failover costs one interval of rates, never a wrong one.
//! - **Sink.** The InfluxDB sink's consumer group splits `<site>-processed`'s partitions
//!   the same way (see [`crate::sink`]).

pub mod assign;
pub mod membership;

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::watch;

use crate::model::ResourceId;
use crate::resource_manager::ResourceStore;

pub use membership::{GroupConfig, Membership};

/// Who owns which resources: everything, on a node alone; the assigned work partitions
/// in a cluster.
pub struct Ownership {
    enabled: bool,
    state: RwLock<Owned>,
    /// Runs not made because the resource was not this node's when they were due.
    skipped: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Owned {
    partitions: u32,
    owned: BTreeSet<u32>,
}

impl Ownership {
    /// A node alone: it owns every resource.
    pub fn alone() -> Ownership {
        Ownership {
            enabled: false,
            state: RwLock::default(),
            skipped: Default::default(),
        }
    }

    /// A member of a cluster, owning nothing until the group assigns it partitions.
    pub fn member() -> Ownership {
        Ownership {
            enabled: true,
            state: RwLock::default(),
            skipped: Default::default(),
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.enabled
    }

    /// Takes the group's latest assignment; true when what this node owns changed.
    pub fn update(&self, m: &Membership) -> bool {
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        let owned: BTreeSet<u32> = m.partitions.iter().copied().collect();
        let changed = s.owned != owned || s.partitions != m.topic_partitions;
        s.owned = owned;
        s.partitions = m.topic_partitions;
        changed
    }

    /// Whether this node enriches and polls `resource_id`.
    pub fn owns(&self, resource_id: &ResourceId) -> bool {
        if !self.enabled {
            return true;
        }
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        s.partitions > 0 && s.owned.contains(&partition_of(resource_id, s.partitions))
    }

    /// Whether a run of `resource_id`'s plugin that is due now may go ahead: the schedule
    /// keeps a node's devices through a rebalance (so the ones it keeps lose nothing),
    /// and their runs are skipped while they are not its own. Counts the skips.
    pub fn may_run(&self, resource_id: &ResourceId) -> bool {
        let yes = self.owns(resource_id);
        if !yes {
            self.skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        yes
    }

    /// The work partitions this node owns and of how many (0 before the first
    /// assignment); `None` for a node alone, which owns everything.
    fn owned(&self) -> Option<(u32, BTreeSet<u32>)> {
        self.enabled.then(|| {
            let s = self.state.read().unwrap_or_else(|p| p.into_inner());
            (s.partitions, s.owned.clone())
        })
    }

    /// Runs skipped because their resource was not this node's (see [`Self::may_run`]).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether this node runs discovery: alone, or owning work partition 0.
    pub fn runs_discovery(&self) -> bool {
        !self.enabled
            || self
                .state
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .owned
                .contains(&0)
    }
}

/// The work partition of a resource: Kafka's partitioner over its id.
pub fn partition_of(resource_id: &str, partitions: u32) -> u32 {
    crate::bus::partition_for(resource_id.as_bytes(), partitions)
}

/// The node's view of the cluster, for `/api/cluster` and `/metrics`.
#[derive(Clone)]
pub struct ClusterView {
    pub node: String,
    pub ownership: Arc<Ownership>,
    pub resources: ResourceStore,
    pub work: Option<watch::Receiver<Membership>>,
    pub sink: Option<watch::Receiver<Membership>>,
    /// The InfluxDB sink, for its consumer lag.
    pub sink_running: crate::sink::Running,
}

/// What `/api/cluster` answers.
#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    /// Whether this node shares its site's fleet (`cluster.enabled`).
    pub enabled: bool,
    pub node: String,
    /// Whether this node runs the site's discovery now.
    pub runs_discovery: bool,
    /// Resources this node enriches and polls, of all the site's.
    pub devices_owned: usize,
    pub devices_total: usize,
    pub work: Option<GroupStatus>,
    pub sink: Option<GroupStatus>,
    /// The sink's consumer lag, per partition this node consumes.
    pub sink_lag: Vec<crate::sink::PartitionLag>,
}

/// One consumer group as this node sees it.
#[derive(Debug, Serialize)]
pub struct GroupStatus {
    pub group: String,
    pub topic: String,
    pub state: &'static str,
    pub generation: i32,
    pub leader: bool,
    pub member_id: String,
    pub partitions: Vec<u32>,
    pub topic_partitions: u32,
    pub rebalances: u64,
    pub last_error: Option<String>,
    pub members: Vec<MemberStatus>,
}

/// A member, what it owns, and (for the work group) how many devices that is.
#[derive(Debug, Serialize)]
pub struct MemberStatus {
    pub node: String,
    pub http: String,
    pub member_id: String,
    pub partitions: Vec<u32>,
    pub devices: Option<usize>,
}

impl GroupStatus {
    /// The group as `m` says; with `devices` (resources per work partition), how many
    /// devices each member owns.
    fn of(m: &Membership, devices: Option<&DevicesByPartition>) -> GroupStatus {
        let members = m
            .members
            .iter()
            .map(|member| MemberStatus {
                node: member.node.clone(),
                http: member.http.clone(),
                member_id: member.member_id.clone(),
                partitions: member.partitions.clone(),
                devices: devices.map(|d| d.count(m.topic_partitions, &member.partitions)),
            })
            .collect();
        GroupStatus {
            group: m.group.clone(),
            topic: m.topic.clone(),
            state: m.state,
            generation: m.generation,
            leader: m.leader,
            member_id: m.member_id.clone(),
            partitions: m.partitions.clone(),
            topic_partitions: m.topic_partitions,
            rebalances: m.rebalances,
            last_error: m.last_error.clone(),
            members,
        }
    }
}

/// The site's resources counted by work partition, for one partition count: read once
/// per status, each id hashed once.
struct DevicesByPartition {
    partitions: u32,
    counts: std::collections::BTreeMap<u32, usize>,
}

impl DevicesByPartition {
    fn of(ids: &[ResourceId], partitions: u32) -> DevicesByPartition {
        let mut counts = std::collections::BTreeMap::new();
        if partitions > 0 {
            for id in ids {
                *counts.entry(partition_of(id, partitions)).or_default() += 1;
            }
        }
        DevicesByPartition { partitions, counts }
    }

    /// Devices in `owned` of a topic with `partitions` partitions (none if the count is
    /// not the one counted by).
    fn count(&self, partitions: u32, owned: &[u32]) -> usize {
        if partitions != self.partitions {
            return 0;
        }
        owned.iter().filter_map(|p| self.counts.get(p)).sum()
    }
}

impl ClusterView {
    /// Where the cluster stands, as this node sees it, with the sink's consumer lag.
    pub async fn status(&self) -> ClusterStatus {
        let mut status = self.figures().await;
        status.sink_lag = self.sink_running.lag().await;
        status
    }

    /// [`Self::status`] without the sink's lag (which `/metrics` shows in the sink's own
    /// section). Reads the resource store off the async threads.
    async fn figures(&self) -> ClusterStatus {
        let resources = self.resources.clone();
        let ids: Vec<ResourceId> = tokio::task::spawn_blocking(move || {
            resources
                .all()
                .map(|all| all.into_iter().map(|r| r.id).collect())
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default();
        let work = self.work.as_ref().map(|w| w.borrow().clone());
        let sink = self.sink.as_ref().map(|w| w.borrow().clone());
        // Hashed once per partition count: the work group's, and this node's ownership
        // (the same once an assignment has been taken).
        let by_work = work
            .as_ref()
            .map(|m| DevicesByPartition::of(&ids, m.topic_partitions));
        let devices_owned = match self.ownership.owned() {
            None => ids.len(),
            Some((n, set)) => {
                let set: Vec<u32> = set.into_iter().collect();
                match &by_work {
                    Some(d) if d.partitions == n => d.count(n, &set),
                    _ => DevicesByPartition::of(&ids, n).count(n, &set),
                }
            }
        };
        ClusterStatus {
            enabled: self.ownership.is_cluster(),
            node: self.node.clone(),
            runs_discovery: self.ownership.runs_discovery(),
            devices_owned,
            devices_total: ids.len(),
            work: work.as_ref().map(|m| GroupStatus::of(m, by_work.as_ref())),
            sink: sink.as_ref().map(|m| GroupStatus::of(m, None)),
            sink_lag: Vec::new(),
        }
    }

    /// The cluster's figures for `/metrics`.
    pub async fn render_metrics(&self, out: &mut String) {
        use crate::telemetry::{render_family, render_gauge};
        let s = self.figures().await;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        render_gauge(
            out,
            "panoptes_cluster_enabled",
            "1 when this node shares its site's fleet with other nodes (cluster.enabled).",
            &[(vec![], flag(s.enabled))],
        );
        render_gauge(
            out,
            "panoptes_cluster_runs_discovery",
            "1 when this node runs its site's discovery.",
            &[(vec![], flag(s.runs_discovery))],
        );
        render_gauge(
            out,
            "panoptes_cluster_devices_owned",
            "Resources this node enriches and polls.",
            &[(vec![], s.devices_owned as f64)],
        );
        render_family(
            out,
            "panoptes_cluster_runs_skipped_total",
            "Plugin runs due while their device was not this node's (during a rebalance, or moved away).",
            "counter",
            &[(vec![], self.ownership.skipped() as f64)],
        );
        let groups: Vec<&GroupStatus> = s.work.iter().chain(s.sink.iter()).collect();
        let per_group =
            |f: &dyn Fn(&GroupStatus) -> f64| -> Vec<(Vec<(&'static str, String)>, f64)> {
                groups
                    .iter()
                    .map(|g| (vec![("group", g.group.clone())], f(g)))
                    .collect()
            };
        render_gauge(
            out,
            "panoptes_cluster_members",
            "Members of the consumer group, as its leader last assigned it.",
            &per_group(&|g| g.members.len() as f64),
        );
        render_gauge(
            out,
            "panoptes_cluster_generation",
            "The consumer group's generation this node joined.",
            &per_group(&|g| f64::from(g.generation)),
        );
        render_gauge(
            out,
            "panoptes_cluster_stable",
            "1 while this node is a member of the group with an assignment (0 while joining or cut off).",
            &per_group(&|g| flag(g.state == "stable")),
        );
        render_gauge(
            out,
            "panoptes_cluster_leader",
            "1 when this node leads the group (it computes the assignment).",
            &per_group(&|g| flag(g.leader)),
        );
        render_gauge(
            out,
            "panoptes_cluster_partitions_owned",
            "Partitions of the group's topic assigned to this node.",
            &per_group(&|g| g.partitions.len() as f64),
        );
        render_family(
            out,
            "panoptes_cluster_rebalances_total",
            "Rebalances that took partitions from this node (it joined again after each).",
            "counter",
            &per_group(&|g| g.rebalances as f64),
        );
        let mut member_partitions = Vec::new();
        let mut member_devices = Vec::new();
        for g in &groups {
            for m in &g.members {
                let labels = vec![("group", g.group.clone()), ("node", m.node.clone())];
                member_partitions.push((labels.clone(), m.partitions.len() as f64));
                if let Some(d) = m.devices {
                    member_devices.push((labels, d as f64));
                }
            }
        }
        render_gauge(
            out,
            "panoptes_cluster_member_partitions",
            "Partitions each member of the group owns.",
            &member_partitions,
        );
        render_gauge(
            out,
            "panoptes_cluster_member_devices",
            "Devices each member of the work group owns.",
            &member_devices,
        );
    }
}

/// Starts a group membership on the current runtime; it leaves the group when `stop`
/// turns true (or is dropped).
pub fn join(
    config: GroupConfig,
    stop: watch::Receiver<bool>,
) -> (watch::Receiver<Membership>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Membership::default());
    let task = tokio::spawn(membership::run(config, tx, stop));
    (rx, task)
}

/// A node's memberships: the work group, and the sink's group when the sink runs.
pub struct Joined {
    pub work: watch::Receiver<Membership>,
    pub sink: Option<watch::Receiver<Membership>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Joined {
    /// Leaves the groups, so the other nodes take this one's devices at once instead of
    /// after the session timeout; waits at most 5 s.
    pub async fn leave(self) {
        let _ = self.stop.send(true);
        let all = async {
            for task in self.tasks {
                let _ = task.await;
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), all).await;
    }
}

/// What a node needs to join its site's groups.
pub struct Joining<'a> {
    pub settings: &'a crate::config::Settings,
    pub cluster: &'a crate::kafka::ExternalCluster,
    pub security: crate::kafka::ClientSecurity,
    pub node: String,
    pub ownership: Arc<Ownership>,
    /// Called whenever what this node owns changes (the schedulers re-plan).
    pub on_change: Box<dyn Fn() + Send + Sync>,
}

/// Joins the site's work group (and the sink's, when `sink` is on): creates the topics
/// whose partitions are split, starts the memberships, and keeps `ownership` in step.
pub async fn start(j: Joining<'_>, sink: bool) -> anyhow::Result<Joined> {
    use anyhow::Context;
    let settings = j.settings;
    let c = &settings.cluster;
    let ensure = |topic: String, partitions: u32| async move {
        let n = j
            .cluster
            .ensure_topic(&topic, partitions)
            .await
            .with_context(|| format!("creating topic {topic:?} on the Kafka cluster"))?;
        if n != partitions {
            tracing::info!(topic = %topic, partitions = n, configured = partitions,
                "the topic exists with its own partition count; keeping it");
        }
        anyhow::Ok(())
    };
    ensure(settings.work_topic(), c.partitions).await?;
    if sink {
        ensure(settings.processed_topic(), c.sink_partitions).await?;
    }
    let group_config = |group: String, topic: String| GroupConfig {
        bootstrap: settings.kafka.brokers.clone(),
        security: j.security.clone(),
        group,
        topic,
        node: j.node.clone(),
        http: settings.http.listen.to_string(),
        session_timeout: std::time::Duration::from_secs(c.session_timeout),
        rebalance_timeout: std::time::Duration::from_secs(c.rebalance_timeout),
        heartbeat_interval: std::time::Duration::from_secs(c.heartbeat_interval),
    };
    let (stop_tx, stop) = watch::channel(false);
    let (work, work_task) = join(
        group_config(format!("panoptes-{}", settings.site), settings.work_topic()),
        stop.clone(),
    );
    let mut tasks = vec![work_task];
    let sink = sink.then(|| {
        let (rx, task) = join(
            group_config(crate::sink::GROUP.to_owned(), settings.processed_topic()),
            stop.clone(),
        );
        tasks.push(task);
        rx
    });
    let mut changes = work.clone();
    let (ownership, on_change) = (j.ownership, j.on_change);
    tasks.push(tokio::spawn(async move {
        loop {
            let m = changes.borrow_and_update().clone();
            // A rebalance takes everything away at once (no device is polled by two nodes)
            // without touching the schedule: runs due meanwhile are skipped. The new
            // assignment re-plans, and only the devices that moved change.
            if ownership.update(&m) && m.state == "stable" {
                tracing::info!(
                    generation = m.generation,
                    partitions = m.partitions.len(),
                    of = m.topic_partitions,
                    discovery = ownership.runs_discovery(),
                    "this node's share of the site's fleet changed"
                );
                on_change();
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }));
    tracing::info!(node = %j.node, group = %format!("panoptes-{}", settings.site),
        topic = %settings.work_topic(), "joining the site's cluster");
    Ok(Joined {
        work,
        sink,
        stop: stop_tx,
        tasks,
    })
}

/// The node's id in the cluster: `cluster.node_id`, else the host's name.
pub fn node_id(configured: &str) -> String {
    let configured = configured.trim();
    if !configured.is_empty() {
        return configured.to_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// Shared ownership, for the planners.
pub type SharedOwnership = Arc<Ownership>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_counted_by_partition_as_hashing_each_would() {
        let ids: Vec<ResourceId> = (0..500)
            .map(|i| ResourceId::new(format!("dev{i}")))
            .collect();
        let by = DevicesByPartition::of(&ids, 16);
        let owned = [0, 3, 7, 15];
        let brute = ids
            .iter()
            .filter(|id| owned.contains(&partition_of(id, 16)))
            .count();
        assert_eq!(by.count(16, &owned), brute);
        assert!(brute > 0 && brute < 500, "{brute}");
        assert_eq!(by.count(16, &(0..16).collect::<Vec<_>>()), 500);
        assert_eq!(
            by.count(8, &owned),
            0,
            "another partition count is not counted"
        );
    }

    #[test]
    fn a_node_alone_owns_everything_a_member_only_its_partitions() {
        let id = |s: &str| ResourceId::new(s);
        let alone = Ownership::alone();
        assert!(alone.owns(&id("anything")) && alone.runs_discovery());
        let member = Ownership::member();
        assert!(
            !member.owns(&id("sw1")),
            "nothing before the first assignment"
        );
        assert!(!member.runs_discovery());
        let p = partition_of("sw1", 8);
        let m = Membership {
            partitions: vec![p, 0],
            topic_partitions: 8,
            ..Membership::default()
        };
        assert!(member.update(&m));
        assert!(!member.update(&m), "the same assignment changes nothing");
        assert!(member.owns(&id("sw1")) && member.runs_discovery());
        let other = (0..1000)
            .map(|i| format!("dev{i}"))
            .find(|id| partition_of(id, 8) != p && partition_of(id, 8) != 0)
            .unwrap();
        assert!(!member.owns(&id(&other)));
        // Kafka's partitioner: the same as a producer keying by resource id.
        assert_eq!(partition_of("sw1", 8), crate::bus::partition_for(b"sw1", 8));
    }
}
