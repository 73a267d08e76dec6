//! The Actix runtime of Panoptes: the scheduler (due work per plugin × resource), the
//! poller pool (global and per-device limits, hard deadlines) and topic consumers (batch,
//! deliver, commit only after the sink accepted).
//!
//! Generic over the small traits in [`job`]; knows nothing of SNMP, plugins or storage.
//! Every mailbox and queue is bounded, and work that does not fit is shed with a counter
//! and a log line, never silently.

pub mod consumer;
pub mod job;
pub mod pool;
pub mod scheduler;
pub mod stats;

pub use consumer::{Consumer, ConsumerConfig, GetConsumerStats, Stop};
pub use job::{
    BoxFuture, Fetched, Job, JobError, NoopJob, Planner, Sink, Source, WorkItem, WorkKey,
};
pub use pool::{Completed, Drain, Execute, Outcome, PollerPool, PoolConfig};
pub use scheduler::{GetSchedulerStats, Rescan, Scheduler, SchedulerConfig};
pub use stats::{
    ConsumerStats, GroupStats, PoolStats, PoolStatsSnapshot, RunCounts, SchedulerStats,
    DURATION_BUCKETS,
};
