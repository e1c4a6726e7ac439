//! What the builder fills in for the PostgreSQL sink.

use std::path::PathBuf;
use std::time::Duration;

/// Where and how much to spool.
#[derive(Debug, Clone)]
pub(crate) struct SpoolConfig {
    /// No spool unless set.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) max_bytes: u64,
    /// Spool once PostgreSQL has been failing this long.
    pub(crate) after: Duration,
}

/// Partition upkeep the shipper's first lane runs: once after connecting,
/// then every [`PartitionConfig::EVERY`] (sooner after a failure).
#[derive(Debug, Clone)]
pub(crate) struct PartitionConfig {
    /// Width of a partition (`Builder::partition_width`, one day).
    pub(crate) width: Duration,
    /// Days ahead of today with partitions (`Builder::partitions_ahead`, 3).
    pub(crate) ahead: u32,
    /// Drop partitions older than this (`Builder::retention`); none when
    /// unset.
    pub(crate) retention: Option<Duration>,
}

impl PartitionConfig {
    /// How often the upkeep runs once it succeeded.
    pub(crate) const EVERY: Duration = Duration::from_secs(3_600);
    /// How soon it is tried again after a failure (a lock not had within
    /// the lock timeout, the server down, no DDL rights).
    pub(crate) const RETRY: Duration = Duration::from_secs(300);
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            width: crate::schema::partitions::DEFAULT_WIDTH,
            ahead: crate::schema::partitions::DEFAULT_AHEAD,
            retention: None,
        }
    }
}

/// Settings of the PostgreSQL sink.
#[derive(Debug, Clone)]
pub(crate) struct PostgresConfig {
    pub(crate) url: String,
    pub(crate) synchronous_commit: bool,
    pub(crate) migrate: bool,
    pub(crate) commit_timeout: Duration,
    pub(crate) max_retries: u32,
    /// The longest one round trip may go unanswered before the server
    /// counts as down.
    pub(crate) stall_timeout: Duration,
    /// The most bytes of sealed batches queued for the lanes.
    pub(crate) batch_queue_bytes: usize,
    /// Shipping connections, each on a thread of its own.
    pub(crate) lanes: usize,
    pub(crate) spool: SpoolConfig,
    /// Partitions ahead and retention, run when `migrate` is on.
    pub(crate) partitions: PartitionConfig,
    /// The hash chain over committed batches, and its checkpoints.
    pub(crate) chain: super::ChainConfig,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            synchronous_commit: true,
            migrate: true,
            commit_timeout: Duration::from_secs(30),
            max_retries: 8,
            stall_timeout: Duration::from_secs(3),
            batch_queue_bytes: 64 << 20,
            lanes: 2,
            spool: SpoolConfig {
                dir: None,
                max_bytes: 1 << 30,
                after: Duration::from_secs(5),
            },
            partitions: PartitionConfig::default(),
            chain: super::ChainConfig::default(),
        }
    }
}
