//! Property test: random appends, reads, retention, clock moves and restarts against a
//! plain in-memory model of a partitioned log.

use std::collections::VecDeque;
use std::time::Duration;

use panoptes_storage::{testing, Clock, Record};
use proptest::prelude::*;

use crate::fixture::{Fixture, Kind};

const PARTITIONS: u32 = 2;

#[derive(Debug, Clone)]
enum Op {
    Append {
        partition: u32,
        count: usize,
        pad: usize,
    },
    Read {
        partition: u32,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    },
    Advance {
        secs: u64,
    },
    RetainAge {
        secs: u64,
    },
    RetainBytes {
        max: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PARTITIONS, 0usize..30, 0usize..300)
            .prop_map(|(partition, count, pad)| Op::Append { partition, count, pad }),
        1 => (0..PARTITIONS, 990usize..1100)
            .prop_map(|(partition, count)| Op::Append { partition, count, pad: 0 }),
        6 => (0..PARTITIONS, 0u64..1300, 0usize..60, 0usize..3000).prop_map(
            |(partition, from, max_records, max_bytes)| Op::Read {
                partition, from, max_records, max_bytes
            }
        ),
        2 => (0u64..100).prop_map(|secs| Op::Advance { secs }),
        1 => (0u64..200).prop_map(|secs| Op::RetainAge { secs }),
        1 => (0u64..40_000).prop_map(|max| Op::RetainBytes { max }),
        1 => Just(Op::Reopen),
    ]
}

/// A batch (the unit retention removes) as the model sees it: one per non-empty append,
/// as every append of this test is well under the batch size.
#[derive(Debug, Clone)]
struct ModelBatch {
    base: u64,
    records: Vec<Record>,
    /// Records per chunk.
    chunks: Vec<u64>,
    appended_at_ms: u64,
}

#[derive(Debug, Default)]
struct ModelPartition {
    chunks: VecDeque<ModelBatch>,
    /// Offset of the next record; also the low watermark when there are no batches.
    high: u64,
}

impl ModelPartition {
    fn low(&self) -> u64 {
        self.chunks.front().map_or(self.high, |c| c.base)
    }

    fn record(&self, offset: u64) -> Option<&Record> {
        self.chunks
            .iter()
            .find(|c| offset >= c.base && offset < c.base + c.records.len() as u64)
            .map(|c| &c.records[(offset - c.base) as usize])
    }
}

/// How an append is cut into frames, as documented: a frame closes before it would pass
/// `FRAME_MAX_RECORDS` records or `FRAME_MAX_BYTES` bytes, counting each record as its
/// size plus `FRAME_RECORD_OVERHEAD`. The test checks the chunks it sees against this.
fn model_split(records: &[Record]) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let size = r.size_bytes() + testing::FRAME_RECORD_OVERHEAD;
        let full =
            i - start == testing::FRAME_MAX_RECORDS || bytes + size > testing::FRAME_MAX_BYTES;
        if i > start && full {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

fn next_records(counter: &mut u64, count: usize, pad: usize, now_ms: u64) -> Vec<Record> {
    (0..count)
        .map(|_| {
            *counter += 1;
            let mut value = format!("r{counter}").into_bytes();
            value.resize(value.len().max(pad), b'~');
            Record {
                key: (!counter.is_multiple_of(3)).then(|| counter.to_le_bytes().to_vec()),
                value,
                timestamp_ms: now_ms,
                headers: vec![],
            }
        })
        .collect()
}

fn run(kind: Kind, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut fixture = Fixture::new(kind, 1_000_000);
    let clock = fixture.clock.clone();
    let mut topic = fixture.store().topic("model", PARTITIONS).unwrap();
    let mut model: Vec<ModelPartition> =
        (0..PARTITIONS).map(|_| ModelPartition::default()).collect();
    let mut counter = 0u64;

    for op in ops {
        match op {
            Op::Append {
                partition,
                count,
                pad,
            } => {
                let now = clock.now_ms();
                let records = next_records(&mut counter, count, pad, now);
                let m = &mut model[partition as usize];
                let base = topic.append(partition, &records).unwrap();
                prop_assert_eq!(base, m.high);
                // One frame per piece of the append, as documented.
                for piece in model_split(&records) {
                    m.chunks.push_back(ModelBatch {
                        base: m.high,
                        chunks: vec![piece.len() as u64],
                        records: piece.to_vec(),
                        appended_at_ms: now,
                    });
                    m.high += piece.len() as u64;
                }
            }
            Op::Read {
                partition,
                from,
                max_records,
                max_bytes,
            } => {
                let m = &model[partition as usize];
                let got = topic.read(partition, from, max_records, max_bytes).unwrap();
                let mut expected = Vec::new();
                let mut bytes = 0;
                if max_records > 0 {
                    for offset in from.max(m.low())..m.high {
                        let record = m.record(offset).unwrap();
                        if !expected.is_empty() && bytes + record.size_bytes() > max_bytes {
                            break;
                        }
                        bytes += record.size_bytes();
                        expected.push((offset, record.clone()));
                        if expected.len() == max_records {
                            break;
                        }
                    }
                }
                let got: Vec<(u64, Record)> =
                    got.into_iter().map(|s| (s.offset, s.record)).collect();
                prop_assert_eq!(got, expected);
            }
            Op::Advance { secs } => clock.advance(Duration::from_secs(secs)),
            Op::RetainAge { secs } => {
                let now = clock.now_ms();
                let mut expected = 0;
                for m in &mut model {
                    while m
                        .chunks
                        .front()
                        .is_some_and(|c| now - c.appended_at_ms > secs * 1000)
                    {
                        expected += m.chunks.pop_front().unwrap().records.len() as u64;
                    }
                }
                let removed = topic
                    .apply_retention(Some(Duration::from_secs(secs)), None)
                    .unwrap();
                prop_assert_eq!(removed, expected);
            }
            Op::RetainBytes { max } => {
                let mut expected = 0;
                for (p, m) in (0..).zip(&mut model) {
                    // The sizes are the store's; the model checks which batches go.
                    let stored = testing::batches(&topic, p).unwrap();
                    let shape: Vec<(u64, u64)> =
                        stored.iter().map(|c| (c.base_offset, c.records)).collect();
                    let model_shape: Vec<(u64, u64)> = m
                        .chunks
                        .iter()
                        .map(|c| (c.base, c.records.len() as u64))
                        .collect();
                    prop_assert_eq!(shape, model_shape);
                    let chunks: Vec<u64> = testing::chunks(&topic, p)
                        .unwrap()
                        .iter()
                        .map(|&(_, records)| records)
                        .collect();
                    let model_chunks: Vec<u64> =
                        m.chunks.iter().flat_map(|b| b.chunks.clone()).collect();
                    prop_assert_eq!(chunks, model_chunks);
                    let mut total: u64 = stored.iter().map(|c| c.bytes).sum();
                    for chunk in &stored {
                        if total <= max {
                            break;
                        }
                        total -= chunk.bytes;
                        expected += m.chunks.pop_front().unwrap().records.len() as u64;
                    }
                }
                let removed = topic.apply_retention(None, Some(max)).unwrap();
                prop_assert_eq!(removed, expected);
            }
            Op::Reopen => {
                drop(topic);
                topic = fixture.reopen().topic("model", PARTITIONS).unwrap();
            }
        }
        for (p, m) in (0..).zip(&model) {
            prop_assert_eq!(topic.high_watermark(p).unwrap(), m.high);
            prop_assert_eq!(topic.low_watermark(p).unwrap(), m.low());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn sled_log_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(Kind::Sled, ops)?;
    }

    #[test]
    fn memory_log_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(Kind::Memory, ops)?;
    }
}
