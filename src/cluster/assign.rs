//! How the group's leader splits a topic's partitions among the members: balanced
//! rendezvous hashing. Each partition prefers the members in the order of a hash of
//! (node, partition), and goes to the first that still has room (⌊P/N⌋ each, and one
//! more for the first P mod N to reach it).
//!
//! Why not range or round-robin over the sorted members: those move most partitions
//! whenever a member joins or leaves (every position after it shifts). Here a member's
//! preferences do not depend on the others, so when one leaves only its partitions move,
//! and a newcomer takes about 1/N from each, which keeps rate state and enrichments
//! where they are for everything else. Nodes are hashed by their configured id, not the
//! coordinator's member id, which changes at every rejoin.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One member as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: String,
    /// The node's configured id (`cluster.node_id`).
    pub node: String,
    /// Its HTTP address, for `/api/cluster`.
    #[serde(default)]
    pub http: String,
    /// Partitions it was given.
    #[serde(default)]
    pub partitions: Vec<u32>,
}

/// Assigns `0..partitions` to `members` (in place); every partition goes to exactly one
/// member, and the counts differ by at most one.
pub fn assign(members: &mut [Member], partitions: u32) {
    for m in members.iter_mut() {
        m.partitions.clear();
    }
    if members.is_empty() {
        return;
    }
    let n = members.len() as u32;
    // Every member gets ⌊P/N⌋, and P mod N of them one more: the first to reach it.
    let floor = partitions / n;
    let mut bigger_left = partitions % n;
    let mut counts: BTreeMap<usize, u32> = BTreeMap::new();
    for p in 0..partitions {
        let mut ranked: Vec<(u64, usize)> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (crate::hash::fnv1a(format!("{}\0{p}", m.node).as_bytes()), i))
            .collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let has_room = |i: &usize| {
            let c = counts.get(i).copied().unwrap_or(0);
            c < floor || (c == floor && bigger_left > 0)
        };
        if let Some(&(_, i)) = ranked.iter().find(|(_, i)| has_room(i)) {
            members[i].partitions.push(p);
            let c = counts.entry(i).or_default();
            *c += 1;
            if *c == floor + 1 {
                bigger_left -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(nodes: &[&str]) -> Vec<Member> {
        nodes
            .iter()
            .map(|n| Member {
                member_id: format!("m-{n}"),
                node: n.to_string(),
                http: String::new(),
                partitions: Vec::new(),
            })
            .collect()
    }

    fn owner_of(ms: &[Member], p: u32) -> &str {
        ms.iter()
            .find(|m| m.partitions.contains(&p))
            .map(|m| m.node.as_str())
            .unwrap()
    }

    #[test]
    fn every_partition_once_and_balanced() {
        for n in 1..=7 {
            for partitions in [1u32, 5, 64, 100] {
                let names: Vec<String> = (0..n).map(|i| format!("node{i}")).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut ms = members(&refs);
                assign(&mut ms, partitions);
                let mut all: Vec<u32> = ms.iter().flat_map(|m| m.partitions.clone()).collect();
                all.sort_unstable();
                assert_eq!(all, (0..partitions).collect::<Vec<_>>(), "{n} members");
                let counts: Vec<usize> = ms.iter().map(|m| m.partitions.len()).collect();
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(hi - lo <= 1 || partitions < n as u32, "{counts:?}");
            }
        }
    }

    #[test]
    fn a_member_leaving_moves_only_its_partitions() {
        let mut three = members(&["a", "b", "c"]);
        assign(&mut three, 64);
        let mut two = members(&["a", "c"]);
        assign(&mut two, 64);
        let moved = (0..64)
            .filter(|&p| owner_of(&three, p) != "b" && owner_of(&three, p) != owner_of(&two, p))
            .count();
        // Balance may move a few of the survivors' partitions; most stay.
        assert!(moved <= 8, "{moved} partitions of a and c moved");
        // Member order does not matter.
        let mut reordered = members(&["c", "a"]);
        assign(&mut reordered, 64);
        for p in 0..64 {
            assert_eq!(owner_of(&two, p), owner_of(&reordered, p));
        }
    }
}
