//! Retention: whole partitions of `ringtrail.logs` dropped once they are
//! older than a cutoff, never rows `DELETE`d.
//!
//! A partition goes when its upper bound is at or before `now - keep`:
//! every row it can hold is older than the cutoff. Partitions made by
//! hand and attached to `ringtrail.logs` are judged by their bounds like
//! any other; one bounded above by `MAXVALUE` never goes, nor does the
//! DEFAULT partition (it has no bounds). The legacy table of migration
//! `0005_partitions` (`MINVALUE` to the day after the migration) goes as a
//! whole once that day is older than the cutoff.
//!
//! Before each drop, in the same transaction, a row goes into
//! `ringtrail.retention_log`: the partition, its row count (an exact
//! `count(*)`), its range (`range_from` NULL for `MINVALUE`), when, and
//! which command (`dropped_by`). A dry run lists what would go and writes
//! nothing. One transaction per partition, each under the advisory lock
//! shared with [`partitions::ensure`](super::partitions::ensure) and
//! `lock_timeout` ([`partitions::LOCK_TIMEOUT`](super::partitions::LOCK_TIMEOUT)):
//! `DROP TABLE` on a partition takes an ACCESS EXCLUSIVE lock on
//! `ringtrail.logs`, which waits for the COPYs in flight (a batch's
//! transaction is short) and gives up, to retry later, rather than hold
//! ingest up.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, SystemTime};
//! use ringtrail::read;
//! use ringtrail::schema::{partitions, retention};
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let mut client = read::connect(&url.parse()?).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     let day = Duration::from_secs(86_400);
//!     let now = SystemTime::now();
//!     // Partitions for ten days ago to now.
//!     partitions::ensure(&mut client, day, 10, now - 10 * day).await?;
//!     let would = retention::apply(&mut client, 7 * day, now, true, "example").await?;
//!     assert_eq!(would.len(), 3); // 10, 9 and 8 days ago end before the cutoff
//!     let dropped = retention::apply(&mut client, 7 * day, now, false, "example").await?;
//!     assert_eq!(dropped, would);
//!     let logged: i64 = client
//!         .query_one("SELECT count(*) FROM ringtrail.retention_log", &[]).await?.get(0);
//!     assert_eq!(logged, 3);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::time::{Duration, SystemTime};

use tokio_postgres::Client;

use super::partitions::{list, Partition, LOCK_TIMEOUT, MAINTENANCE_LOCK};
use crate::time::{micros, rfc3339_micros};
use crate::Result;

/// A partition retention dropped (or, in a dry run, would drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The table, e.g. `ringtrail.logs_p20261101`.
    pub partition: String,
    /// Its rows when it was dropped (when listed, in a dry run).
    pub rows: i64,
    /// Lower bound, microseconds since the Unix epoch; `None` for
    /// `MINVALUE`.
    pub from_micros: Option<i64>,
    /// Upper bound (exclusive): at or before the cutoff.
    pub to_micros: i64,
}

impl Dropped {
    /// The partition as one JSON object: `{"partition", "rows", "from",
    /// "to"}`, times in RFC 3339 (`from` null for `MINVALUE`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "partition": self.partition,
            "rows": self.rows,
            "from": self.from_micros.map(rfc3339_micros),
            "to": rfc3339_micros(self.to_micros),
        })
    }
}

/// The partitions whose upper bound is at or before `cutoff_micros`,
/// oldest first. Pure: what [`apply`] drops.
pub fn expired(partitions: &[Partition], cutoff_micros: i64) -> Vec<&Partition> {
    partitions
        .iter()
        .filter(|p| !p.is_default && p.to_micros.is_some_and(|to| to <= cutoff_micros))
        .collect()
}

/// Drops every partition of `ringtrail.logs` whose upper bound is at or
/// before `now - keep`, recording each in `ringtrail.retention_log` (with
/// `dropped_by`) in the transaction that drops it, and returns them,
/// oldest first. With `dry_run`, drops and records nothing and returns
/// what it would drop.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when a statement fails, a
/// lock not had within the lock timeout included. Partitions dropped
/// before the failure stay dropped (and logged); call again later.
pub async fn apply(
    client: &mut Client,
    keep: Duration,
    now: SystemTime,
    dry_run: bool,
    dropped_by: &str,
) -> Result<Vec<Dropped>> {
    let cutoff = micros(now).saturating_sub(i64::try_from(keep.as_micros()).unwrap_or(i64::MAX));
    let all = list(&*client).await?;
    let mut dropped = Vec::new();
    for p in expired(&all, cutoff) {
        let to = p.to_micros.unwrap_or(i64::MAX);
        let name = &p.name;
        if dry_run {
            let rows: i64 = client
                .query_one(&format!("SELECT count(*) FROM {name}"), &[])
                .await?
                .get(0);
            dropped.push(Dropped {
                partition: name.clone(),
                rows,
                from_micros: p.from_micros,
                to_micros: to,
            });
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            .await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MAINTENANCE_LOCK])
            .await?;
        // Still attached? Another process may have dropped it meanwhile.
        let still = list(&tx).await?.iter().any(|q| q == p);
        if !still {
            continue;
        }
        // Locked before counting, so the count is what goes.
        tx.batch_execute(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            .await?;
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await?
            .get(0);
        let from = p.from_micros.map(rfc3339_micros);
        let to_text = rfc3339_micros(to);
        // With the chain (migration 0007), also where each chain's kept
        // part starts: its first batch not older than what is dropped.
        let chained = tx
            .query_opt(
                "SELECT 1 FROM pg_attribute WHERE attrelid = 'ringtrail.retention_log'::regclass \
                 AND attname = 'kept_from' AND NOT attisdropped",
                &[],
            )
            .await?
            .is_some();
        let insert = if chained {
            "INSERT INTO ringtrail.retention_log (partition, rows, range_from, range_to, dropped_by, kept_from)
             VALUES ($1, $2, $3::text::timestamptz, $4::text::timestamptz, $5,
                     (SELECT jsonb_agg(jsonb_build_object('chain_id', chain_id, 'seq', seq,
                                                          'hash', encode(hash, 'hex')) ORDER BY chain_id)
                      FROM (SELECT DISTINCT ON (chain_id) chain_id, seq, hash
                            FROM ringtrail.batches
                            WHERE chain_id IS NOT NULL AND last_ts >= $4::text::timestamptz
                            ORDER BY chain_id, seq) kept))"
        } else {
            "INSERT INTO ringtrail.retention_log (partition, rows, range_from, range_to, dropped_by)
             VALUES ($1, $2, $3::text::timestamptz, $4::text::timestamptz, $5)"
        };
        tx.execute(insert, &[name, &rows, &from, &to_text, &dropped_by])
            .await?;
        tx.batch_execute(&format!("DROP TABLE {name}")).await?;
        tx.commit().await?;
        dropped.push(Dropped {
            partition: name.clone(),
            rows,
            from_micros: p.from_micros,
            to_micros: to,
        });
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, from: Option<i64>, to: Option<i64>, is_default: bool) -> Partition {
        Partition {
            name: name.into(),
            from_micros: from,
            to_micros: to,
            is_default,
        }
    }

    #[test]
    fn only_partitions_ending_by_the_cutoff_expire() {
        let all = [
            part("legacy", None, Some(100), false),
            part("a", Some(100), Some(200), false),
            part("b", Some(200), Some(300), false),
            part("open", Some(300), None, false),
            part("default", None, None, true),
        ];
        let names = |c| -> Vec<&str> { expired(&all, c).iter().map(|p| p.name.as_str()).collect() };
        assert_eq!(names(99), Vec::<&str>::new());
        assert_eq!(names(200), ["legacy", "a"]);
        assert_eq!(names(299), ["legacy", "a"]);
        assert_eq!(names(i64::MAX), ["legacy", "a", "b"]);
    }
}
