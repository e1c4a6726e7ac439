//! Range partitions of `ringtrail.logs` on `ts`: listing them, and
//! creating them ahead of time.
//!
//! Migration `0005_partitions` makes `ringtrail.logs` a table
//! `PARTITION BY RANGE (ts)` with a DEFAULT partition,
//! `ringtrail.logs_default`, so a row with any timestamp lands and a COPY
//! never fails for want of a partition. [`ensure`] creates the partitions
//! that cover now to `ahead` days from now, `width` wide (one day by
//! default), aligned on multiples of the width since the Unix epoch (a
//! daily partition runs from 00:00 UTC to 00:00 UTC). Each is named after
//! its start, `ringtrail.logs_p20261203` (or `logs_p20261203_1400` when it
//! does not start at midnight). A range that a partition already covers,
//! in part or whole (one made by hand, the legacy table's), is skipped or
//! trimmed, never an error.
//!
//! **How a partition is made without blocking ingest.** `CREATE TABLE …
//! PARTITION OF` would take an ACCESS EXCLUSIVE lock on `ringtrail.logs`,
//! stopping every COPY. Instead the table is created standalone (`LIKE
//! ringtrail.logs`) and then `ATTACH`ed, which takes only SHARE UPDATE
//! EXCLUSIVE on the parent (COPYs go on) and ACCESS EXCLUSIVE on the
//! DEFAULT partition, which it scans. Every statement runs under
//! `lock_timeout` ([`LOCK_TIMEOUT`]): rather than queue a lock in front of
//! ingest, maintenance fails and is retried later.
//!
//! **PostgreSQL's trap.** Attaching a range refuses when the DEFAULT
//! partition holds rows of that range (a row dated the day after
//! tomorrow, say). In the same transaction, those rows are moved out of
//! DEFAULT into the new table (`INSERT … SELECT`, then `DELETE`) before
//! the ATTACH, with DEFAULT locked first so no row of the range slips in
//! between. Nothing is lost, nothing is duplicated: it all commits or
//! none of it.
//!
//! Everything runs in one transaction holding an advisory lock
//! ([`MAINTENANCE_LOCK`], shared with [`retention`](super::retention)), so
//! two processes never race.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, SystemTime};
//! use ringtrail::read;
//! use ringtrail::schema::partitions;
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let mut client = read::connect(&url.parse()?).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     let now = SystemTime::now();
//!     let day = Duration::from_secs(86_400);
//!     // Today and the next two days.
//!     let made = partitions::ensure(&mut client, day, 2, now).await?;
//!     assert_eq!(made.len(), 3);
//!     assert!(made[0].name.starts_with("ringtrail.logs_p"));
//!     // Already there: nothing to do.
//!     assert!(partitions::ensure(&mut client, day, 2, now).await?.is_empty());
//!     let all = partitions::list(&client).await?;
//!     assert_eq!(all.len(), 4); // and the DEFAULT partition
//!     assert!(all.iter().any(|p| p.is_default));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::time::{Duration, SystemTime};

use tokio_postgres::Client;
use tokio_postgres::GenericClient;

use crate::time::micros;
use crate::{Error, Result};

/// How long a maintenance statement waits for a lock before it gives up
/// (and the whole run is retried later), so DDL never queues an ACCESS
/// EXCLUSIVE lock in front of ingest for longer than this.
pub const LOCK_TIMEOUT: &str = "1s";

/// The advisory-lock key that serializes partition maintenance and
/// retention across processes (the bytes of "ringpart").
pub const MAINTENANCE_LOCK: i64 = 0x7269_6e67_7061_7274;

/// The default partition width: one day.
pub const DEFAULT_WIDTH: Duration = Duration::from_secs(86_400);

/// The default number of days created ahead of today.
pub const DEFAULT_AHEAD: u32 = 3;

/// The narrowest partition [`ensure`] makes.
pub const MIN_WIDTH: Duration = Duration::from_secs(3_600);

/// The widest partition [`ensure`] makes (a leap year).
pub const MAX_WIDTH: Duration = Duration::from_secs(366 * 86_400);

/// The most days ahead [`ensure`] creates partitions for.
pub const MAX_AHEAD: u32 = 366;

/// One partition of `ringtrail.logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The table, schema-qualified and quoted as needed, e.g.
    /// `ringtrail.logs_p20261203`.
    pub name: String,
    /// Lower bound (inclusive), microseconds since the Unix epoch; `None`
    /// for `MINVALUE` (and for the DEFAULT partition).
    pub from_micros: Option<i64>,
    /// Upper bound (exclusive); `None` for `MAXVALUE` (and for DEFAULT).
    pub to_micros: Option<i64>,
    /// The DEFAULT partition: no bounds, never dropped.
    pub is_default: bool,
}

/// A partition [`ensure`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new table, e.g. `ringtrail.logs_p20261203`.
    pub name: String,
    /// Lower bound (inclusive), microseconds since the Unix epoch.
    pub from_micros: i64,
    /// Upper bound (exclusive).
    pub to_micros: i64,
    /// Rows moved into it out of the DEFAULT partition.
    pub moved: u64,
}

/// Every partition attached to `ringtrail.logs` (by [`ensure`], by the
/// migration, or by hand), ordered by lower bound, the DEFAULT partition
/// last.
///
/// # Errors
///
/// [`Error::Postgres`] when the query fails (`ringtrail.logs` missing or
/// not partitioned: migrations not applied).
pub async fn list(client: &impl GenericClient) -> Result<Vec<Partition>> {
    // pg_get_expr gives `FOR VALUES FROM ('2026-12-03 00:00:00+00') TO
    // (...)`, `FROM (MINVALUE) …` or `DEFAULT`; the quoted literals carry
    // their offset, so they parse back whatever the session's TimeZone.
    let rows = client
        .query(
            "WITH p AS (
                 SELECT c.oid::regclass::text AS name,
                        pg_get_expr(c.relpartbound, c.oid) AS bound
                 FROM pg_catalog.pg_inherits i
                 JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'ringtrail.logs'::regclass
             ), b AS (
                 SELECT name, bound = 'DEFAULT' AS is_default,
                        (regexp_match(bound, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS lo,
                        (regexp_match(bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS hi
                 FROM p
             )
             SELECT name, is_default,
                    (extract(epoch FROM lo) * 1000000)::int8,
                    (extract(epoch FROM hi) * 1000000)::int8
             FROM b
             ORDER BY is_default, lo NULLS FIRST, name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Partition {
            name: row.get(0),
            is_default: row.get(1),
            from_micros: row.get(2),
            to_micros: row.get(3),
        })
        .collect())
}

/// Checks a partition width and days ahead: a clear message for anything
/// [`ensure`] would refuse.
///
/// # Errors
///
/// [`Error::Config`] naming the setting: a width below [`MIN_WIDTH`],
/// above [`MAX_WIDTH`] or not a whole number of seconds, or more than
/// [`MAX_AHEAD`] days ahead.
pub fn check(width: Duration, ahead: u32) -> Result<()> {
    if width < MIN_WIDTH || width > MAX_WIDTH || width.subsec_nanos() != 0 {
        return Err(Error::Config(format!(
            "partition width must be a whole number of seconds from 1h to 366d, not {}",
            crate::time::format_duration(width)
        )));
    }
    if ahead > MAX_AHEAD {
        return Err(Error::Config(format!(
            "partitions ahead must be at most {MAX_AHEAD} days, not {ahead}"
        )));
    }
    Ok(())
}

/// The name of the partition starting at `from_micros`:
/// `ringtrail.logs_p20261203` at midnight UTC, else with the time of day,
/// `ringtrail.logs_p20261203_1400` (seconds added only when not zero).
///
/// ```
/// use ringtrail::schema::partitions::partition_name;
/// assert_eq!(partition_name(1_796_256_000_000_000), "ringtrail.logs_p20261203");
/// assert_eq!(partition_name(1_796_256_000_000_000 + 14 * 3_600_000_000), "ringtrail.logs_p20261203_1400");
/// ```
pub fn partition_name(from_micros: i64) -> String {
    // `2026-12-03T14:00:05.000000Z`
    let text = crate::time::rfc3339_micros(from_micros);
    let digits = |range: std::ops::Range<usize>| -> String {
        text.get(range)
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_digit)
            .collect()
    };
    let date = digits(0..10);
    let (hm, s) = (digits(11..16), digits(17..19));
    match (hm.as_str(), s.as_str()) {
        ("0000", "00") => format!("ringtrail.logs_p{date}"),
        (_, "00") => format!("ringtrail.logs_p{date}_{hm}"),
        _ => format!("ringtrail.logs_p{date}_{hm}{s}"),
    }
}

/// The ranges (microseconds, `[from, to)`) that partitions `width` wide
/// must cover for `now` to `ahead` days later, less what `existing`
/// already covers. Pure: what [`ensure`] creates.
pub fn missing_ranges(
    width: Duration,
    ahead: u32,
    now: SystemTime,
    existing: &[Partition],
) -> Vec<(i64, i64)> {
    let w = i64::try_from(width.as_micros()).unwrap_or(i64::MAX).max(1);
    let now = micros(now);
    let last = now.saturating_add(i64::from(ahead) * 86_400_000_000);
    let mut out = Vec::new();
    let mut start = now.div_euclid(w) * w;
    while start <= last {
        let end = start.saturating_add(w);
        // What of [start, end) no existing partition covers.
        let mut pieces = vec![(start, end)];
        for p in existing.iter().filter(|p| !p.is_default) {
            let (lo, hi) = (
                p.from_micros.unwrap_or(i64::MIN),
                p.to_micros.unwrap_or(i64::MAX),
            );
            pieces = pieces
                .into_iter()
                .flat_map(|(a, b)| {
                    if hi <= a || lo >= b {
                        vec![(a, b)]
                    } else {
                        [(a, lo.min(b)), (hi.max(a), b)]
                            .into_iter()
                            .filter(|(x, y)| x < y)
                            .collect()
                    }
                })
                .collect();
        }
        out.extend(pieces);
        start = end;
    }
    out
}

/// Creates the partitions of `ringtrail.logs` that cover `now` to `ahead`
/// days later, `width` wide, in one transaction (see the module docs), and
/// returns those it created, oldest first (empty when all were there).
/// Rows of a new partition's range found in the DEFAULT partition are
/// moved into it.
///
/// # Errors
///
/// [`Error::Config`] for a width or days ahead [`check`] refuses;
/// [`Error::Postgres`] when a statement fails, a lock is not had within
/// [`LOCK_TIMEOUT`] included. Nothing is then created; call again later.
pub async fn ensure(
    client: &mut Client,
    width: Duration,
    ahead: u32,
    now: SystemTime,
) -> Result<Vec<Created>> {
    check(width, ahead)?;
    let tx = client.transaction().await?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MAINTENANCE_LOCK])
        .await?;
    // Listed under the lock: another process may just have made some.
    let existing = list(&tx).await?;
    let ranges = missing_ranges(width, ahead, now, &existing);
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let default = existing.iter().find(|p| p.is_default).map(|p| &p.name);
    if let Some(default) = default {
        // ATTACH takes it anyway; taken first, no row of a range being
        // moved can land in it between the move and the ATTACH.
        tx.batch_execute(&format!("LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE"))
            .await?;
    }
    // Named, not `*`: a DEFAULT partition attached by hand may order its
    // columns differently.
    let columns: String = tx
        .query_one(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
             FROM pg_catalog.pg_attribute
             WHERE attrelid = 'ringtrail.logs'::regclass AND attnum > 0 AND NOT attisdropped",
            &[],
        )
        .await?
        .get(0);
    let mut created = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        let name = partition_name(from);
        let (lo, hi) = (
            crate::time::rfc3339_micros(from),
            crate::time::rfc3339_micros(to.min(MAX_BOUND_MICROS)),
        );
        tx.batch_execute(&format!(
            "CREATE TABLE {name} (LIKE ringtrail.logs \
             INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)"
        ))
        .await?;
        let moved = match default {
            Some(default) => {
                // Copy, then delete: DEFAULT is locked, so the two see the
                // same rows. (Not a data-modifying CTE, which Citus may
                // refuse; see docs/scaling.md.)
                let range = "ts >= $1::text::timestamptz AND ts < $2::text::timestamptz";
                let copied = tx
                    .execute(
                        &format!(
                            "INSERT INTO {name} ({columns}) SELECT {columns} FROM {default} WHERE {range}"
                        ),
                        &[&lo, &hi],
                    )
                    .await?;
                if copied > 0 {
                    tx.execute(&format!("DELETE FROM {default} WHERE {range}"), &[&lo, &hi])
                        .await?;
                }
                copied
            }
            None => 0,
        };
        tx.batch_execute(&format!(
            "ALTER TABLE ringtrail.logs ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')"
        ))
        .await?;
        name_indexes(&tx, &name).await?;
        created.push(Created {
            name,
            from_micros: from,
            to_micros: to,
            moved,
        });
    }
    tx.commit().await?;
    Ok(created)
}

/// Renames the indexes ATTACH gave `partition` (PostgreSQL's
/// `logs_p20261203_trace_id_ts_idx`) after their parent index and the
/// partition: `logs_audit_trace_p20261203`, `logs_ts_brin_p20261203`, as
/// the migration names those of the DEFAULT and legacy partitions. A
/// plan then names the index it uses.
async fn name_indexes(client: &impl GenericClient, partition: &str) -> Result<()> {
    let suffix = partition
        .rsplit('.')
        .next()
        .unwrap_or(partition)
        .trim_start_matches("logs_");
    let rows = client
        .query(
            "SELECT ci.relname::text, pi.relname::text
             FROM pg_catalog.pg_index x
             JOIN pg_catalog.pg_class ci ON ci.oid = x.indexrelid
             JOIN pg_catalog.pg_inherits i ON i.inhrelid = x.indexrelid
             JOIN pg_catalog.pg_class pi ON pi.oid = i.inhparent
             WHERE x.indrelid = $1::text::regclass",
            &[&partition],
        )
        .await?;
    for row in rows {
        let (child, parent): (String, String) = (row.get(0), row.get(1));
        let wanted = format!("{parent}_{suffix}");
        if child != wanted && wanted.len() <= 63 {
            // The names come from the catalog, where whoever owns the
            // table chose them: the server quotes them (`%I`).
            let rename: String = client
                .query_one(
                    "SELECT format('ALTER INDEX ringtrail.%I RENAME TO %I', $1::text, $2::text)",
                    &[&child, &wanted],
                )
                .await?
                .get(0);
            client.batch_execute(&rename).await?;
        }
    }
    Ok(())
}

/// The latest bound written (year 294276 is PostgreSQL's limit; far
/// beyond any partition [`ensure`] makes).
const MAX_BOUND_MICROS: i64 = 9_000_000_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_micros;

    const DAY: i64 = 86_400_000_000;
    // 2026-12-03T00:00:00Z
    const D: i64 = 1_796_256_000_000_000;

    fn part(from: Option<i64>, to: Option<i64>) -> Partition {
        Partition {
            name: "x".into(),
            from_micros: from,
            to_micros: to,
            is_default: false,
        }
    }

    #[test]
    fn names_follow_the_start() {
        assert_eq!(partition_name(D), "ringtrail.logs_p20261203");
        assert_eq!(
            partition_name(D + 3_600_000_000),
            "ringtrail.logs_p20261203_0100"
        );
        assert_eq!(
            partition_name(D + 61_000_000),
            "ringtrail.logs_p20261203_000101"
        );
        assert_eq!(partition_name(0), "ringtrail.logs_p19700101");
    }

    #[test]
    fn ranges_cover_today_and_the_days_ahead() {
        let now = from_micros(D + 5 * 3_600_000_000);
        let day = Duration::from_secs(86_400);
        let r = missing_ranges(day, 2, now, &[]);
        assert_eq!(
            r,
            vec![
                (D, D + DAY),
                (D + DAY, D + 2 * DAY),
                (D + 2 * DAY, D + 3 * DAY)
            ]
        );
        // Hourly: from this hour to the hour 1 day later, 25 of them.
        let r = missing_ranges(Duration::from_secs(3_600), 1, now, &[]);
        assert_eq!(r.len(), 25);
        assert_eq!(r[0].0, D + 5 * 3_600_000_000);
    }

    #[test]
    fn existing_partitions_are_skipped_or_trimmed() {
        let now = from_micros(D + 5 * 3_600_000_000);
        let day = Duration::from_secs(86_400);
        // The legacy table up to tomorrow, and a hand-made one covering
        // the second half of the day after.
        let existing = [
            part(None, Some(D + DAY)),
            part(Some(D + DAY + DAY / 2), Some(D + 2 * DAY)),
            Partition {
                is_default: true,
                ..part(None, None)
            },
        ];
        let r = missing_ranges(day, 2, now, &existing);
        assert_eq!(
            r,
            vec![(D + DAY, D + DAY + DAY / 2), (D + 2 * DAY, D + 3 * DAY)]
        );
    }

    #[test]
    fn widths_and_days_ahead_are_checked() {
        assert!(check(Duration::from_secs(86_400), 3).is_ok());
        assert!(check(Duration::from_secs(60), 3).is_err());
        assert!(check(Duration::from_millis(3_600_500), 3).is_err());
        assert!(check(Duration::from_secs(86_400), 1_000).is_err());
    }
}
