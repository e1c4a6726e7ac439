//! What `ringtrail stats` reports about the tables: [`stats()`] reads
//! rows per level and per day, the oldest and newest row, table and
//! partition sizes, the batches and rows the ledger recorded over the
//! last hour, and the dead letters, as a [`TableStats`].
//!
//! The per-level, per-day and oldest/newest figures come from one
//! aggregate scan of `ringtrail.logs` (a full scan: on a large table
//! this takes as long as `SELECT count(*)`). Sizes are
//! `pg_total_relation_size` (heap, indexes and TOAST) of each leaf of
//! `pg_partition_tree('ringtrail.logs')` when the table is partitioned
//! (that function lists nothing for a plain table), of the table itself
//! when it is not. The last hour is
//! `committed_at` in the ledger, `ringtrail.batches`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ringtrail::read;
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let config: ringtrail::tls::ConnectOptions = url.parse()?;
//!     let mut client = read::connect(&config).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     client.batch_execute(r#"
//!         INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
//!         VALUES (now(), gen_random_uuid(), 17, 'my_app', 'boom', '{}', false),
//!                (now(), gen_random_uuid(), 9, 'my_app', 'hi', '{}', false),
//!                (now(), gen_random_uuid(), 9, 'my_app', 'hi', '{}', false);
//!     "#).await?;
//!     let stats = read::stats(&client).await?;
//!     assert_eq!(stats.rows, 3);
//!     assert_eq!(stats.by_level["INFO"], 2);
//!     assert_eq!(stats.by_level["ERROR"], 1);
//!     assert_eq!(stats.by_level["WARN"], 0);
//!     assert_eq!(stats.by_day.values().sum::<u64>(), 3);
//!     assert!(stats.logs_bytes > 0);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::collections::BTreeMap;
use std::time::SystemTime;

use tokio_postgres::Client;

use crate::row::{LEVEL_DEBUG, LEVEL_ERROR, LEVEL_INFO, LEVEL_TRACE, LEVEL_WARN};

/// What [`stats()`] read. Counts are exact at the moment of reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Rows in `ringtrail.logs`.
    pub rows: u64,
    /// Rows per level name ([`level::name`](crate::level::name)):
    /// the five `tracing` levels always, with 0 when none.
    pub by_level: BTreeMap<&'static str, u64>,
    /// Rows per UTC day, `YYYY-MM-DD`, oldest first.
    pub by_day: BTreeMap<String, u64>,
    /// The smallest `ts`, if any row.
    pub oldest: Option<SystemTime>,
    /// The largest `ts`, if any row.
    pub newest: Option<SystemTime>,
    /// `pg_total_relation_size` of `ringtrail.logs`: the sum over its
    /// partitions when partitioned.
    pub logs_bytes: u64,
    /// Each leaf of `ringtrail.logs` (its partitions, or the table
    /// itself when not partitioned) and its total size in bytes.
    pub partitions: Vec<(String, u64)>,
    /// `pg_total_relation_size` of the ledger, `ringtrail.batches`.
    pub batches_bytes: u64,
    /// `pg_total_relation_size` of `ringtrail.dead_letters`.
    pub dead_letters_bytes: u64,
    /// Batches the ledger recorded over the last hour.
    pub last_hour_batches: u64,
    /// Rows in those batches.
    pub last_hour_rows: u64,
    /// Rows in `ringtrail.dead_letters`.
    pub dead_letters: u64,
}

impl TableStats {
    /// Adds `other`'s figures to these, as if both databases were one
    /// (the shards of a [`cluster`](super::cluster)): counts and sizes
    /// summed, levels, days and partitions of the same name summed (the
    /// partitions then in name order), the oldest and newest the
    /// extremes of both.
    ///
    /// ```
    /// use ringtrail::read::TableStats;
    /// let mut a = TableStats { rows: 2, partitions: vec![("ringtrail.logs_b".into(), 10)], ..TableStats::default() };
    /// let b = TableStats { rows: 3, partitions: vec![("ringtrail.logs_a".into(), 5), ("ringtrail.logs_b".into(), 1)], ..TableStats::default() };
    /// a.merge(b);
    /// assert_eq!(a.rows, 5);
    /// assert_eq!(a.partitions, [("ringtrail.logs_a".to_owned(), 5), ("ringtrail.logs_b".to_owned(), 11)]);
    /// ```
    pub fn merge(&mut self, other: TableStats) {
        self.rows += other.rows;
        for (level, n) in other.by_level {
            *self.by_level.entry(level).or_default() += n;
        }
        for (day, n) in other.by_day {
            *self.by_day.entry(day).or_default() += n;
        }
        self.oldest = match (self.oldest, other.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.newest = match (self.newest, other.newest) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.logs_bytes += other.logs_bytes;
        let mut partitions: BTreeMap<String, u64> =
            std::mem::take(&mut self.partitions).into_iter().collect();
        for (name, bytes) in other.partitions {
            *partitions.entry(name).or_default() += bytes;
        }
        self.partitions = partitions.into_iter().collect();
        self.batches_bytes += other.batches_bytes;
        self.dead_letters_bytes += other.dead_letters_bytes;
        self.last_hour_batches += other.last_hour_batches;
        self.last_hour_rows += other.last_hour_rows;
        self.dead_letters += other.dead_letters;
    }
}

/// A count from SQL (`bigint` or `numeric` cast to bigint) as `u64`.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads the [`TableStats`] of the database `client` is connected to.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when a query fails.
pub async fn stats(client: &Client) -> crate::Result<TableStats> {
    let mut stats = TableStats::default();
    for level in [
        LEVEL_TRACE,
        LEVEL_DEBUG,
        LEVEL_INFO,
        LEVEL_WARN,
        LEVEL_ERROR,
    ] {
        stats.by_level.insert(crate::level::name(level), 0);
    }
    let groups = client
        .query(
            "SELECT level, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*), min(ts), max(ts)
             FROM ringtrail.logs GROUP BY 1, 2",
            &[],
        )
        .await?;
    for group in &groups {
        let n = count(group.get(2));
        stats.rows += n;
        *stats
            .by_level
            .entry(crate::level::name(group.get(0)))
            .or_default() += n;
        *stats.by_day.entry(group.get(1)).or_default() += n;
        let (min, max): (SystemTime, SystemTime) = (group.get(3), group.get(4));
        stats.oldest = Some(stats.oldest.map_or(min, |o| o.min(min)));
        stats.newest = Some(stats.newest.map_or(max, |o| o.max(max)));
    }
    for leaf in client
        .query(
            "SELECT t.relid::regclass::text, pg_total_relation_size(t.relid)
             FROM pg_partition_tree('ringtrail.logs') AS t WHERE t.isleaf ORDER BY 1",
            &[],
        )
        .await?
    {
        let bytes = count(leaf.get(1));
        stats.logs_bytes += bytes;
        stats.partitions.push((leaf.get(0), bytes));
    }
    if stats.partitions.is_empty() {
        // A plain table: pg_partition_tree lists nothing.
        let row = client
            .query_one("SELECT pg_total_relation_size('ringtrail.logs')", &[])
            .await?;
        stats.logs_bytes = count(row.get(0));
        stats
            .partitions
            .push(("ringtrail.logs".to_owned(), stats.logs_bytes));
    }
    let row = client
        .query_one(
            "SELECT pg_total_relation_size('ringtrail.batches'),
                    pg_total_relation_size('ringtrail.dead_letters'),
                    (SELECT count(*) FROM ringtrail.dead_letters),
                    count(*), coalesce(sum(rows), 0)::bigint
             FROM ringtrail.batches WHERE committed_at >= now() - interval '1 hour'",
            &[],
        )
        .await?;
    stats.batches_bytes = count(row.get(0));
    stats.dead_letters_bytes = count(row.get(1));
    stats.dead_letters = count(row.get(2));
    stats.last_hour_batches = count(row.get(3));
    stats.last_hour_rows = count(row.get(4));
    Ok(stats)
}
