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
