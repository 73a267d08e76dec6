//! `GET /metrics/devices[?resource_id=ID]`: the latest value of every gauge and counter of
//! every device's newest polls, as Prometheus text, named as the InfluxDB sink names them
//! ([`exposition`]). What `snmp_exporter` gives, with the enrichments (interface names,
//! descriptions) as labels.
//!
//! Bounded: the groups are read back from the topic log device by device on a blocking
//! thread, put in family order through a [`spool`] (memory, then a file), and streamed
//! to the client in pieces through a small channel, so a 10,000-device scrape never sits
//! in memory whole; at most [`MAX_SCRAPES`] run at once.

pub mod exposition;
pub mod records;
pub mod spool;

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde::Deserialize;

use super::AppState;
use crate::bus::Bus;
use crate::fleet::{Fleet, Location};
use crate::sink::{Encoder, GroupRecord};

/// Scrapes of `/metrics/devices` running at once; more are answered 503. Each holds a
/// blocking thread, a device's samples and the spool index (and, past 8 MiB, a spool file).
pub const MAX_SCRAPES: usize = 2;
/// Bytes per piece of the streamed answer, and pieces waiting for the client.
const PIECE: usize = 64 << 10;
const PIECES_AHEAD: usize = 4;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/metrics/devices` reads.
pub struct DeviceMetrics {
    pub fleet: Arc<Fleet>,
    /// The topics whose records are shown: `<site>-processed` of each served site, the
    /// ones the InfluxDB sink writes from.
    pub topics: Vec<String>,
    /// Where a large scrape's spool file goes (the data directory: on disk, not tmpfs).
    pub spool_dir: PathBuf,
    scrapes: Arc<tokio::sync::Semaphore>,
}

impl DeviceMetrics {
    pub fn new(fleet: Arc<Fleet>, topics: Vec<String>, spool_dir: PathBuf) -> DeviceMetrics {
        DeviceMetrics {
            fleet,
            topics,
            spool_dir,
            scrapes: Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES)),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DevicesQuery {
    resource_id: Option<String>,
}

/// Why a scrape stopped part way (the client then sees the connection cut, so Prometheus
/// counts a failed scrape rather than storing half of one).
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("reading the topic log: {0}")]
    Storage(#[from] panoptes_storage::StorageError),
    #[error("spooling the scrape: {0}")]
    Spool(#[from] io::Error),
}

/// What a finished scrape did.
#[derive(Debug, Default)]
pub struct ScrapeStats {
    pub devices: usize,
    pub groups: u64,
    /// Records that were not a metrics group with a gauge or counter.
    pub skipped: u64,
    /// Records removed from the log by retention since their poll.
    pub gone: u64,
    /// Samples left out: their name was already a family of the other type.
    pub conflicting: u64,
    pub bytes: u64,
}

pub async fn devices(state: web::Data<AppState>, query: web::Query<DevicesQuery>) -> HttpResponse {
    let metrics = &state.device_metrics;
    let mut devices = metrics.fleet.latest_locations();
    if let Some(id) = &query.resource_id {
        devices.retain(|(device, _)| **device == **id);
        if devices.is_empty() {
            return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body(
                format!(
                    "no metrics for resource_id `{id}`: this node does not poll it, or its polls have published nothing yet (GET /api/resources lists the resources)\n"
                ),
            );
        }
    }
    let Ok(permit) = Arc::clone(&metrics.scrapes).try_acquire_owned() else {
        crate::events::DeviceScrapeFinished::Refused.emit(&state.telemetry);
        return HttpResponse::ServiceUnavailable()
            .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "{MAX_SCRAPES} scrapes of /metrics/devices are already running: try again\n"
            ));
    };
    devices.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let (tx, rx) = tokio::sync::mpsc::channel(PIECES_AHEAD);
    let bus = state.bus.clone();
    let topics = metrics.topics.clone();
    let spool = spool::Spool::new(metrics.spool_dir.clone());
    let telemetry = Arc::clone(&state.telemetry);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let started = Instant::now();
        let sent = |piece: Vec<u8>| tx.blocking_send(Ok(Bytes::from(piece))).is_ok();
        let result = scrape(&bus, &topics, &devices, spool, sent);
        let event = match &result {
            Ok(stats) => crate::events::DeviceScrapeFinished::Done {
                stats,
                duration: started.elapsed(),
            },
            Err(error) => crate::events::DeviceScrapeFinished::Failed { error },
        };
        event.emit(&telemetry);
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
    });
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(Streamed { rx })
}

/// Renders `devices` (sorted by id) into `spool`, then sends it family by family.
pub fn scrape(
    bus: &Bus,
    topics: &[String],
    devices: &[(Arc<str>, Vec<Location>)],
    mut spool: spool::Spool,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<ScrapeStats, ScrapeError> {
    let mut stats = ScrapeStats {
        devices: devices.len(),
        ..ScrapeStats::default()
    };
    let mut encoder = Encoder::new();
    let mut scratch = exposition::Scratch::default();
    for (_, locations) in devices {
        stats.gone += records::for_each_group(bus, topics, locations, |value| {
            let Ok(group) = GroupRecord::parse(value) else {
                stats.skipped += 1;
                return Ok::<_, ScrapeError>(());
            };
            let Ok(mapped) = encoder.map(&group) else {
                stats.skipped += 1;
                return Ok(());
            };
            stats.groups += 1;
            exposition::write_group(&mapped, &mut scratch, &mut spool)?;
            Ok(())
        })?;
        spool.end_device()?;
    }
    stats.conflicting = spool.conflicting;
    let mut bytes = 0;
    spool.finish(PIECE, |piece| {
        bytes += piece.len() as u64;
        send(piece)
    })?;
    stats.bytes = bytes;
    Ok(stats)
}

/// The answer's body: pieces as the blocking thread makes them.
struct Streamed {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
}

impl MessageBody for Streamed {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, io::Error>>> {
        self.rx.poll_recv(cx)
    }
}
