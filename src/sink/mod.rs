//! The InfluxDB sink: what the original's `influxdb_consumer` did, inside the node. It
//! reads `<site>-processed` in consumer group `panoptes_influxdb_consumer_raw_metrics`,
//! maps each metrics group to one line-protocol point exactly as the original did (spec
//! §6, [`line_protocol`]) and writes batches to InfluxDB 1.x (`/write`) or 2.x
//! (`/api/v2/write`), committing offsets only once InfluxDB accepted them.
//!
//! - [`record`]: the parts of a topic record the mapping reads;
//! - [`line_protocol`] and [`py_repr`]: the mapping, byte for byte;
//! - [`writer`], [`v1`], [`v2`]: one small trait, one implementation per server generation;
//! - [`points_sink`]: a batch in, points out, refused points skipped;
//! - [`start`]: the consumers and the `/metrics` section.

pub mod line_protocol;
pub mod points_sink;
pub mod py_repr;
pub mod record;
mod secret;
pub mod start;
pub mod trap_points;
pub mod v1;
pub mod v2;
pub mod writer;

pub use line_protocol::{EncodeError, Encoder, Field, Mapped};
pub use points_sink::{InfluxSink, Points, SinkError, Skipped};
pub use record::GroupRecord;
pub use secret::Secret;
pub use start::{
    consumer_config, metrics_section, start, writer, PartitionLag, Running, WriterSetupError, GROUP,
};
pub use v1::V1Writer;
pub use v2::{V2SetupError, V2Writer};
pub use writer::{gzip, LineWriter, WriteError, WriteFailure};
