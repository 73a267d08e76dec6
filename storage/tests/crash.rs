//! Crash test: a child process appends as fast as it can and prints every acknowledged
//! append; the test kills it with SIGKILL at random moments, reopens the store each time
//! and checks that every acknowledged record is there, in order, with no duplicate and
//! no gap in offsets.
//!
//! The child is this test binary run again with [`CHILD_DIR_ENV`] set. Every record says
//! who wrote it: (run, writer, sequence number). Four writer threads share three
//! partitions (partition 0 has two writers), so the check also covers group commit
//! across partitions and interleaved producers on one partition. Each writer also
//! commits a consumer offset after each acknowledged append, checked the same way.
//!
//! Odd runs open the store with `Durability::PowerLoss`, even ones with the default.
//! Set `PANOPTES_CRASH_SEED` to replay a run; the seed is printed on failure.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use panoptes_storage::{Durability, Record, Store};

const CHILD_DIR_ENV: &str = "PANOPTES_STORAGE_KILL_TEST_DIR";
const CHILD_RUN_ENV: &str = "PANOPTES_STORAGE_KILL_TEST_RUN";
const SEED_ENV: &str = "PANOPTES_CRASH_SEED";
const KILLS: u64 = 24;
const TOPIC: &str = "crash";
const PARTITIONS: u32 = 3;
const WRITERS: u64 = 4;
/// The test gives up (fails) if a child prints no acknowledgement within this long.
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(30);

fn partition_of(writer: u64) -> u32 {
    (writer % u64::from(PARTITIONS)) as u32
}

/// A small xorshift generator: enough randomness for kill times and batch sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a record carries: who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tag {
    run: u64,
    writer: u64,
    seq: u64,
}

fn record(tag: Tag) -> Record {
    let mut value = Vec::with_capacity(120);
    for n in [tag.run, tag.writer, tag.seq] {
        value.extend_from_slice(&n.to_be_bytes());
    }
    value.resize(120, b'#');
    Record {
        key: Some(tag.writer.to_be_bytes().to_vec()),
        value,
        timestamp_ms: tag.seq,
        headers: vec![("run".into(), tag.run.to_be_bytes().to_vec())],
    }
}

fn tag_of(record: &Record) -> Tag {
    let field = |i: usize| u64::from_be_bytes(record.value[i * 8..i * 8 + 8].try_into().unwrap());
    Tag {
        run: field(0),
        writer: field(1),
        seq: field(2),
    }
}

/// One line of the child's output: an append or an offset commit it saw acknowledged.
#[derive(Debug, Clone, Copy)]
enum Ack {
    /// `ack <run> <writer> <partition> <base> <count> <first seq>`
    Append {
        tag: Tag,
        partition: u32,
        base: u64,
        count: u64,
    },
    /// `commit <writer> <offset>`: offsets grow with each commit of a writer, across runs.
    Commit { writer: u64, offset: u64 },
}

fn parse(line: &str) -> Option<Ack> {
    // A line cut by the kill has no newline: it was not (fully) acknowledged.
    let line = line.strip_suffix('\n')?;
    let fields: Vec<&str> = line.split(' ').collect();
    let n = |i: usize| fields.get(i)?.parse::<u64>().ok();
    match fields.first().copied() {
        Some("ack") if fields.len() == 7 => Some(Ack::Append {
            tag: Tag {
                run: n(1)?,
                writer: n(2)?,
                seq: n(6)?,
            },
            partition: u32::try_from(n(3)?).ok()?,
            base: n(4)?,
            count: n(5)?,
        }),
        Some("commit") if fields.len() == 3 => Some(Ack::Commit {
            writer: n(1)?,
            offset: n(2)?,
        }),
        _ => None,
    }
}

#[test]
fn acknowledged_appends_survive_repeated_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        let run = std::env::var(CHILD_RUN_ENV)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        child(Path::new(&dir), run);
    }
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash test seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut acks: Vec<Ack> = Vec::new();
    let mut early_kills = 0;
    for run in 0..KILLS {
        let mut child = spawn_child(dir.path(), run);
        let lines = read_lines(&mut child);
        // A quarter of the kills land at any moment from the start (opening, recovery,
        // first appends); the others while appends are going on.
        let early = rng.below(4) == 0;
        if early {
            early_kills += 1;
            std::thread::sleep(Duration::from_millis(rng.below(120)));
        } else {
            let deadline = Instant::now() + FIRST_ACK_TIMEOUT;
            let first = lines.recv_timeout(FIRST_ACK_TIMEOUT);
            assert!(
                first.is_ok(),
                "seed {seed}: run {run} acknowledged nothing in {FIRST_ACK_TIMEOUT:?}"
            );
            acks.extend(first.ok().and_then(|l| parse(&l)));
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(rng.below(150)));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "seed {seed}: run {run} exited by itself");
        // Everything printed before the kill was acknowledged before it.
        acks.extend(lines.iter().filter_map(|l| parse(&l)));
        check(dir.path(), &acks, seed, run);
    }
    let appends = acks
        .iter()
        .filter(|a| matches!(a, Ack::Append { .. }))
        .count();
    eprintln!(
        "{KILLS} kills ({early_kills} early), {appends} acknowledged appends checked, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(appends > 0);
}

fn spawn_child(dir: &Path, run: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "acknowledged_appends_survive_repeated_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_RUN_ENV, run.to_string())
        .env_remove(SEED_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The child's output lines (with their newline), as they come, until it dies.
fn read_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if !(line.starts_with("ack ") || line.starts_with("commit ")) => {}
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Reopens the store (sled recovers it) and checks it against every acknowledgement so
/// far.
fn check(dir: &Path, acks: &[Ack], seed: u64, run: u64) {
    let ctx = format!("seed {seed}, after kill {run}");
    let store = Store::open(dir).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let topic = store.topic(TOPIC, PARTITIONS).unwrap();
    let mut at: HashMap<(u32, u64), Tag> = HashMap::new();
    for partition in 0..PARTITIONS {
        assert_eq!(topic.low_watermark(partition).unwrap(), 0, "{ctx}");
        let high = topic.high_watermark(partition).unwrap();
        let mut next_offset = 0;
        // Per (run, writer): the next sequence number expected.
        let mut next_seq: HashMap<(u64, u64), u64> = HashMap::new();
        while next_offset < high {
            let read = topic
                .read(partition, next_offset, 10_000, usize::MAX)
                .unwrap();
            assert!(!read.is_empty(), "{ctx}: partition {partition} ends at {next_offset} below its high watermark {high}");
            for stored in read {
                assert_eq!(
                    stored.offset, next_offset,
                    "{ctx}: partition {partition} skips an offset"
                );
                let tag = tag_of(&stored.record);
                assert_eq!(stored.record, record(tag), "{ctx}: record damaged");
                assert_eq!(partition_of(tag.writer), partition, "{ctx}");
                let want = next_seq.entry((tag.run, tag.writer)).or_insert(0);
                assert_eq!(
                    tag.seq, *want,
                    "{ctx}: partition {partition} offset {next_offset}: writer {} of run {} \
                     has a duplicate or a gap",
                    tag.writer, tag.run
                );
                *want += 1;
                at.insert((partition, stored.offset), tag);
                next_offset += 1;
            }
        }
    }
    // A kill tears at most the last write: never what start-up takes for corruption.
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.quarantined_segments, stats.corrupt_frames_read),
        (0, 0),
        "{ctx}: a kill left what looks like a corrupt frame"
    );
    let offsets = store.consumer_offsets().unwrap();
    let mut committed: HashMap<u64, u64> = HashMap::new();
    for ack in acks {
        match *ack {
            Ack::Append {
                tag,
                partition,
                base,
                count,
            } => {
                for i in 0..count {
                    let want = Tag {
                        seq: tag.seq + i,
                        ..tag
                    };
                    assert_eq!(
                        at.get(&(partition, base + i)),
                        Some(&want),
                        "{ctx}: acknowledged record missing or moved"
                    );
                }
            }
            Ack::Commit { writer, offset } => {
                let c = committed.entry(writer).or_insert(0);
                *c = (*c).max(offset);
            }
        }
    }
    for (writer, offset) in committed {
        let stored = offsets
            .committed("crash-test", &format!("writer-{writer}"), 0)
            .unwrap();
        // A writer's committed values only grow (run, then sequence), so the stored one
        // is the last acknowledged or a later one.
        assert!(
            stored.is_some_and(|s| s >= offset),
            "{ctx}: writer {writer} committed {offset}, the store has {stored:?}"
        );
    }
}

/// The child: appends from four writers until killed, printing each acknowledgement.
fn child(dir: &Path, run: u64) -> ! {
    // Odd runs also fdatasync each flush: both durability modes see kills.
    let durability = if run % 2 == 1 {
        Durability::PowerLoss
    } else {
        Durability::Process
    };
    let store = Store::open_with(dir, durability).unwrap();
    let topic = store.topic(TOPIC, PARTITIONS).unwrap();
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let topic = topic.clone();
            let offsets = store.consumer_offsets().unwrap();
            std::thread::spawn(move || {
                let mut rng = Rng((run + 1) * 7919 + writer * 104_729 + 1);
                let partition = partition_of(writer);
                let mut seq = 0;
                loop {
                    let count = 1 + rng.below(40);
                    let batch: Vec<Record> = (seq..seq + count)
                        .map(|s| {
                            record(Tag {
                                run,
                                writer,
                                seq: s,
                            })
                        })
                        .collect();
                    let base = topic.append(partition, &batch).unwrap();
                    let line = format!("ack {run} {writer} {partition} {base} {count} {seq}\n");
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).unwrap();
                    out.flush().unwrap();
                    drop(out);
                    seq += count;
                    if rng.below(8) == 0 {
                        let group_topic = format!("writer-{writer}");
                        let value = run * 1_000_000_000 + seq;
                        offsets
                            .commit("crash-test", &group_topic, 0, value)
                            .unwrap();
                        let line = format!("commit {writer} {value}\n");
                        let mut out = std::io::stdout().lock();
                        out.write_all(line.as_bytes()).unwrap();
                        out.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(3)
}
