//! Committed offsets of consumer groups (what Kafka's `__consumer_offsets` did).

use std::sync::Arc;

use crate::codec;
use crate::commit::Committer;
use crate::engine::Tree;
use crate::StorageError;

/// A handle on the committed offsets of every consumer group. Cheap to clone.
#[derive(Clone)]
pub struct ConsumerOffsets {
    tree: Tree,
    committer: Arc<Committer>,
}

impl std::fmt::Debug for ConsumerOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerOffsets").finish_non_exhaustive()
    }
}

impl ConsumerOffsets {
    pub(crate) fn new(tree: Tree, committer: Arc<Committer>) -> ConsumerOffsets {
        ConsumerOffsets { tree, committer }
    }

    /// Records that `group` has processed `topic`/`partition` up to (not including)
    /// `next_offset`. Durable (flushed, by a flush shared with concurrent writers) before
    /// it returns: a commit follows a sink's acknowledgement, and losing it would replay
    /// the batch.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<(), StorageError> {
        let key = offset_key(group, topic, partition)?;
        let value = codec::encode(None, &next_offset, || place(group, topic, partition))?;
        self.tree.insert(&key, value)?;
        self.committer.wait_durable()
    }

    /// The offset `group` committed for `topic`/`partition`, if any.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, StorageError> {
        let key = offset_key(group, topic, partition)?;
        self.tree
            .get(&key)?
            .map(|raw| Ok(codec::decode::<u64>(&raw, || place(group, topic, partition))?.payload))
            .transpose()
    }
    /// Every offset `group` committed: `(topic, partition, next offset)`, sorted.
    pub fn group_offsets(&self, group: &str) -> Result<Vec<(String, u32, u64)>, StorageError> {
        let group_len = name_len("consumer group", group)?;
        let mut prefix = group_len.to_be_bytes().to_vec();
        prefix.extend_from_slice(group.as_bytes());
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (key, raw) = entry?;
            let Some((topic, partition)) = split_topic_partition(&key[prefix.len()..]) else {
                tracing::warn!(group, key = %key.escape_ascii(), "skipping a malformed committed-offset key");
                continue;
            };
            let offset = codec::decode::<u64>(&raw, || place(group, &topic, partition))?.payload;
            out.push((topic, partition, offset));
        }
        // Keys order by topic length first; callers want names in order.
        out.sort();
        Ok(out)
    }
}

/// One stored commit, as [`all`] lists them.
pub(crate) struct Commit {
    pub key: Vec<u8>,
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// Every committed offset of every group; malformed or corrupt entries are logged and
/// left out.
pub(crate) fn all(tree: &Tree) -> Result<Vec<Commit>, StorageError> {
    let mut out = Vec::new();
    for entry in tree.iter() {
        let (key, raw) = entry?;
        let parsed = key
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .and_then(|len| {
                let group = std::str::from_utf8(key.get(2..2 + len)?).ok()?.to_owned();
                let (topic, partition) = split_topic_partition(key.get(2 + len..)?)?;
                Some((group, topic, partition))
            });
        let Some((group, topic, partition)) = parsed else {
            tracing::warn!(key = %key.escape_ascii(), "skipping a malformed committed-offset key");
            continue;
        };
        match codec::decode::<u64>(&raw, || place(&group, &topic, partition)) {
            Ok(decoded) => out.push(Commit {
                key: key.to_vec(),
                group,
                topic,
                partition,
                offset: decoded.payload,
            }),
            Err(e) => tracing::warn!(error = %e, "skipping a corrupt committed offset"),
        }
    }
    Ok(out)
}

/// The stored value of `commit` moved to `offset`.
pub(crate) fn encode(commit: &Commit, offset: u64) -> Result<Vec<u8>, StorageError> {
    codec::encode(None, &offset, || {
        place(&commit.group, &commit.topic, commit.partition)
    })
}

/// Removes the committed offsets of every group for `topic` (the topic was deleted).
pub(crate) fn forget_topic(tree: &Tree, topic: &str) -> Result<(), StorageError> {
    let mut batch = crate::engine::Batch::default();
    for entry in tree.iter() {
        let (key, _) = entry?;
        let Some(group_len) = key
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            continue;
        };
        if let Some((t, _)) = key.get(2 + group_len..).and_then(split_topic_partition) {
            if t == topic {
                batch.remove(&key);
            }
        }
    }
    tree.apply(batch)
}

/// `[topic length u16 BE][topic][partition u32 BE]`, the tail of an offset key.
fn split_topic_partition(rest: &[u8]) -> Option<(String, u32)> {
    let len = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
    let topic = std::str::from_utf8(rest.get(2..2 + len)?).ok()?.to_owned();
    let p = rest.get(2 + len..)?;
    let partition = u32::from_be_bytes(p.try_into().ok()?);
    Some((topic, partition))
}

fn place(group: &str, topic: &str, partition: u32) -> String {
    format!("committed offset of group {group:?} for topic {topic:?} partition {partition}")
}

/// `[group length u16 BE][group][topic length u16 BE][topic][partition u32 BE]`: the
/// lengths keep distinct (group, topic) pairs from sharing a key.
fn offset_key(group: &str, topic: &str, partition: u32) -> Result<Vec<u8>, StorageError> {
    let group_len = name_len("consumer group", group)?;
    let topic_len = name_len("topic", topic)?;
    let mut key = Vec::with_capacity(2 + group.len() + 2 + topic.len() + 4);
    key.extend_from_slice(&group_len.to_be_bytes());
    key.extend_from_slice(group.as_bytes());
    key.extend_from_slice(&topic_len.to_be_bytes());
    key.extend_from_slice(topic.as_bytes());
    key.extend_from_slice(&partition.to_be_bytes());
    Ok(key)
}

fn name_len(kind: &'static str, name: &str) -> Result<u16, StorageError> {
    u16::try_from(name.len()).map_err(|_| StorageError::InvalidName {
        kind,
        name: name.chars().take(64).collect(),
        reason: format!("{} bytes long, at most {} allowed", name.len(), u16::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_collide_across_group_and_topic_boundaries() {
        let a = offset_key("ab", "c", 0).unwrap();
        let b = offset_key("a", "bc", 0).unwrap();
        assert_ne!(a, b);
    }
}
