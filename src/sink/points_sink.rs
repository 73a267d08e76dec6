//! The consumer's sink: turns a batch of topic records into points and writes them.
//!
//! A delivery either stores every valid point of the batch and returns `Ok` (then the
//! consumer commits the offsets), or returns `Err` and the consumer retries the very same
//! batch after a backoff with jitter, holding everything after it in the topic log. So an
//! outage costs lag, never points, and memory stays one batch.
//!
//! A batch InfluxDB refuses as invalid (400) is written again point by point: the bad ones
//! are logged with the server's reason, counted and skipped, the others stored. Writing a
//! point twice is harmless: InfluxDB keeps one value per series and timestamp.

use std::ops::Range;
use std::sync::Arc;

use panoptes_actors::{BoxFuture, JobError, Sink};

use super::line_protocol::{EncodeError, Encoder};
use super::record::GroupRecord;
use super::writer::{gzip, LineWriter, WriteError, WriteFailure};
use crate::bus::Item;
use crate::events::{
    InfluxBatchRejected, InfluxPointRejected, InfluxPointsWritten, InfluxRecordSkipped,
    InfluxWriteFailed,
};
use crate::telemetry::Telemetry;

/// Why a record gives no point: it is counted, logged and skipped.
#[derive(Debug, thiserror::Error)]
pub enum Skipped {
    #[error("not a metrics group: {0}")]
    NotAGroup(#[source] serde_json::Error),
    /// A metrics group with nothing the line protocol can carry.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A record of a traps topic that is not a trap event.
    #[error(transparent)]
    Trap(#[from] super::trap_points::TrapSkipped),
}

/// What a sink's topic holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    /// Metrics groups (`<site>-processed`): the original's mapping.
    Groups,
    /// Trap events (`<site>-traps`): measurement `trap`.
    Traps,
}

/// Why a batch was not delivered: it stays uncommitted and is delivered again.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Parsing, encoding and compressing the batch (a blocking task) did not finish.
    #[error("encoding task failed: {0}")]
    Encoding(#[source] tokio::task::JoinError),
    /// The server could not store the points now (`target`: where they go).
    #[error("{target}: {failure}")]
    Write {
        target: Arc<str>,
        #[source]
        failure: WriteFailure,
    },
}

pub struct InfluxSink {
    records: Records,
    writer: Arc<dyn LineWriter>,
    telemetry: Arc<Telemetry>,
    /// `writer.target()`, computed once.
    target: Arc<str>,
}

impl InfluxSink {
    pub fn new(writer: Arc<dyn LineWriter>, telemetry: Arc<Telemetry>) -> InfluxSink {
        InfluxSink::of(Records::Groups, writer, telemetry)
    }

    /// A sink of `records`.
    pub fn of(
        records: Records,
        writer: Arc<dyn LineWriter>,
        telemetry: Arc<Telemetry>,
    ) -> InfluxSink {
        let target = writer.target().into();
        InfluxSink {
            records,
            writer,
            telemetry,
            target,
        }
    }
}

/// The points of one batch: newline-separated lines, and where each one is.
#[derive(Debug, Default)]
pub struct Points {
    pub body: Vec<u8>,
    pub lines: Vec<Range<usize>>,
}

impl Points {
    /// Encodes every record that is a metrics group with something to write; the others
    /// are reported through `skipped(key, reason)`.
    pub fn encode<'r>(
        records: impl IntoIterator<Item = &'r Item>,
        skipped: impl FnMut(&str, &Skipped),
    ) -> Points {
        Points::encode_records(Records::Groups, records, skipped)
    }

    /// [`Points::encode`] for a topic holding `kind`.
    pub fn encode_records<'r>(
        kind: Records,
        records: impl IntoIterator<Item = &'r Item>,
        mut skipped: impl FnMut(&str, &Skipped),
    ) -> Points {
        let mut points = Points::default();
        let mut encoder = Encoder::new();
        for (key, value) in records {
            let start = points.body.len();
            if start > 0 {
                points.body.push(b'\n');
            }
            let line_start = points.body.len();
            let encoded = match kind {
                Records::Groups => GroupRecord::parse(value)
                    .map_err(Skipped::NotAGroup)
                    .and_then(|group| {
                        encoder
                            .encode(&group, &mut points.body)
                            .map_err(Skipped::Encode)
                    }),
                Records::Traps => {
                    super::trap_points::encode_trap(value, &mut points.body).map_err(Skipped::Trap)
                }
            };
            match encoded {
                Ok(()) => points.lines.push(line_start..points.body.len()),
                Err(reason) => {
                    points.body.truncate(start);
                    let key = key
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    skipped(&key, &reason);
                }
            }
        }
        points
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

impl Sink<Item> for InfluxSink {
    fn deliver(&mut self, batch: Arc<[Item]>) -> BoxFuture<Result<(), JobError>> {
        let (writer, telemetry, target, kind) = (
            Arc::clone(&self.writer),
            Arc::clone(&self.telemetry),
            Arc::clone(&self.target),
            self.records,
        );
        Box::pin(async move {
            let delivered: Result<(), SinkError> = async move {
                // Parsing, encoding and compressing a batch is CPU work: off the actor thread.
                let counters = Arc::clone(&telemetry);
                let (points, gzipped) = tokio::task::spawn_blocking(move || {
                    let points = Points::encode_records(kind, batch.iter(), |key, reason| {
                        InfluxRecordSkipped { key, reason }.emit(&counters)
                    });
                    let gzipped = gzip(&points.body);
                    (points, gzipped)
                })
                .await
                .map_err(SinkError::Encoding)?;
                if points.is_empty() {
                    return Ok(());
                }
                let bytes = gzipped.len();
                match writer.write(gzipped).await {
                    Ok(()) => {
                        InfluxPointsWritten {
                            target: &target,
                            points: points.len(),
                            bytes,
                        }
                        .emit(&telemetry);
                        Ok(())
                    }
                    Err(WriteError::Rejected { reason, .. }) => {
                        InfluxBatchRejected {
                            target: &target,
                            points: points.len(),
                            reason: &reason,
                        }
                        .emit(&telemetry);
                        one_by_one(&*writer, &points, &telemetry, &target).await
                    }
                    Err(WriteError::Failed(failure)) => {
                        InfluxWriteFailed {
                            target: &target,
                            points: points.len(),
                            error: &failure,
                        }
                        .emit(&telemetry);
                        Err(SinkError::Write { target, failure })
                    }
                }
            }
            .await;
            delivered.map_err(JobError::failed)
        })
    }
}

/// Writes each point alone, skipping those InfluxDB refuses. A failure that may pass stops
/// the round: the whole batch is retried later (points already stored are overwritten
/// with the same values).
async fn one_by_one(
    writer: &dyn LineWriter,
    points: &Points,
    telemetry: &Telemetry,
    target: &Arc<str>,
) -> Result<(), SinkError> {
    let (mut written, mut bytes) = (0, 0);
    for line in &points.lines {
        let text = &points.body[line.clone()];
        let gzipped = gzip(text);
        let size = gzipped.len();
        match writer.write(gzipped).await {
            Ok(()) => {
                written += 1;
                bytes += size;
            }
            Err(WriteError::Rejected { reason, .. }) => InfluxPointRejected {
                reason: &reason,
                point: &String::from_utf8_lossy(text),
            }
            .emit(telemetry),
            Err(WriteError::Failed(failure)) => {
                InfluxWriteFailed {
                    target,
                    points: points.len(),
                    error: &failure,
                }
                .emit(telemetry);
                return Err(SinkError::Write {
                    target: Arc::clone(target),
                    failure,
                });
            }
        }
    }
    if written > 0 {
        InfluxPointsWritten {
            target,
            points: written,
            bytes,
        }
        .emit(telemetry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Refuses bodies containing `bad`, fails while `down`, records what it stored.
    #[derive(Default)]
    struct FakeWriter {
        stored: Mutex<Vec<String>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl LineWriter for Arc<FakeWriter> {
        fn write(&self, gzipped: Vec<u8>) -> BoxFuture<Result<(), WriteError>> {
            use std::io::Read;
            let this = Arc::clone(self);
            Box::pin(async move {
                let mut body = String::new();
                flate2::read::GzDecoder::new(&gzipped[..])
                    .read_to_string(&mut body)
                    .unwrap();
                if this.down.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(WriteError::Failed(WriteFailure::Status {
                        status: 503,
                        body: "connection refused".into(),
                    }));
                }
                if body.contains("bad") {
                    return Err(WriteError::Rejected {
                        status: 400,
                        reason: "unable to parse".into(),
                    });
                }
                this.stored
                    .lock()
                    .unwrap()
                    .extend(body.lines().map(String::from));
                Ok(())
            })
        }

        fn target(&self) -> String {
            "fake".into()
        }
    }

    fn record(group_type: &str, dim: &str) -> Item {
        let json = format!(
            r#"{{"metrics_group_type": "{group_type}", "metrics_group_creation_timestamp": 100.5,
            "resource": {{"resource_site": "s", "resource_class": "c", "resource_subclass": "sc",
              "resource_type": "t", "resource_endpoint": "e"}},
            "dimensions": [{{"dimension_name": "d", "dimension_value": "{dim}"}}],
            "metrics": [{{"metric_name": "m", "metric_type": "gauge", "metric_value": 1}}]}}"#
        );
        (Some(b"c:sc:t".to_vec()), json.into_bytes())
    }

    #[tokio::test]
    async fn bad_points_are_skipped_and_the_rest_written() {
        let fake = Arc::new(FakeWriter::default());
        let telemetry = Arc::new(Telemetry::default());
        let mut sink = InfluxSink::new(Arc::new(Arc::clone(&fake)), Arc::clone(&telemetry));
        let batch: Arc<[Item]> = vec![
            record("interface", "good1"),
            record("interface", "bad"),
            (Some(b"k".to_vec()), b"{not json".to_vec()),
            record("interface", "good2"),
        ]
        .into();
        sink.deliver(batch).await.unwrap();
        let stored = fake.stored.lock().unwrap().clone();
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(stored[0].contains("d=good1") && stored[1].contains("d=good2"));
        let get = |name| telemetry.get(name, &[]);
        assert_eq!(get("panoptes_influxdb_points_written_total"), 2.0);
        assert_eq!(get("panoptes_influxdb_points_rejected_total"), 1.0);
        assert_eq!(get("panoptes_influxdb_batches_rejected_total"), 1.0);
        assert_eq!(get("panoptes_influxdb_records_skipped_total"), 1.0);
    }

    #[tokio::test]
    async fn an_outage_fails_the_delivery_so_nothing_is_committed() {
        let fake = Arc::new(FakeWriter::default());
        fake.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let telemetry = Arc::new(Telemetry::default());
        let mut sink = InfluxSink::new(Arc::new(Arc::clone(&fake)), Arc::clone(&telemetry));
        let batch: Arc<[Item]> = vec![record("interface", "a"), record("interface", "b")].into();
        let err = sink.deliver(Arc::clone(&batch)).await.unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(SinkError::Write { .. })),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "fake: HTTP 503: connection refused");
        assert_eq!(
            telemetry.get("panoptes_influxdb_write_errors_total", &[]),
            1.0
        );
        fake.down.store(false, std::sync::atomic::Ordering::SeqCst);
        sink.deliver(batch).await.unwrap();
        assert_eq!(fake.stored.lock().unwrap().len(), 2);
    }

    #[test]
    fn batches_join_points_with_newlines_and_no_trailing_one() {
        let records = [record("a", "x"), (None, b"[]".to_vec()), record("b", "y")];
        let mut skipped = Vec::new();
        let points = Points::encode(records.iter(), |_, reason| {
            assert!(matches!(reason, Skipped::NotAGroup(_)), "{reason}");
            skipped.push(reason.to_string())
        });
        let body = String::from_utf8(points.body.clone()).unwrap();
        assert_eq!(body.lines().count(), 2);
        assert!(!body.ends_with('\n'));
        assert_eq!(skipped.len(), 1);
        for line in &points.lines {
            assert!(!points.body[line.clone()].contains(&b'\n'));
        }
    }
}
