//! Seeds of the segment-scanning fuzz target (`fuzz/corpus/segment_scan/`): `write_seeds`
//! (ignored) writes partitions as the store itself writes them. The corpus is replayed
//! with the others in the root crate's `tests/fuzz_corpora.rs`.

use std::path::{Path, PathBuf};

use panoptes_storage::fuzzing::SegmentInput;
use panoptes_storage::Record;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/segment_scan")
}

fn record(i: usize, value_len: usize) -> Record {
    Record {
        key: (!i.is_multiple_of(3)).then(|| format!("key-{i}").into_bytes()),
        value: vec![b'v'; value_len],
        timestamp_ms: 1_700_000_000_000 + i as u64,
        headers: if i.is_multiple_of(2) {
            vec![("h".into(), b"x".to_vec())]
        } else {
            vec![]
        },
    }
}

#[test]
#[ignore = "writes seed files into fuzz/corpus"]
fn write_seeds() {
    let batches = |sizes: &[(usize, usize)]| -> Vec<Vec<Record>> {
        sizes
            .iter()
            .map(|&(n, len)| (0..n).map(|i| record(i, len)).collect())
            .collect()
    };
    let cases = [
        SegmentInput::written(&batches(&[(1, 10)]), None),
        SegmentInput::written(&batches(&[(3, 5), (1, 0), (2, 40)]), None),
        SegmentInput::written(&batches(&[(5, 30), (5, 30), (5, 30)]), None),
        SegmentInput::written(&batches(&[(5, 30), (5, 30), (5, 30)]), Some(200)),
        SegmentInput::written(&batches(&[(2, 10), (2, 10)]), Some(0)),
        SegmentInput::written(&batches(&[(20, 2)]), None),
    ];
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    for (i, case) in cases.iter().enumerate() {
        let bytes = case.to_bytes();
        assert_eq!(SegmentInput::parse(&bytes).as_ref(), Some(case));
        std::fs::write(dir.join(format!("seed-{i}")), &bytes).unwrap();
        // The same partition with a torn last frame, as a crash leaves it.
        std::fs::write(
            dir.join(format!("seed-{i}-torn")),
            &bytes[..bytes.len() - 3],
        )
        .unwrap();
    }
}
