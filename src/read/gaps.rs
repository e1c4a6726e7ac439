//! Incomplete traces: [`gaps()`] lists every trace with an audit point in
//! a time window whose [`rules::check`](crate::audit::rules::check) finds
//! something, as [`Gap`]s.
//!
//! # The query
//!
//! One statement, [`GAPS_SQL`]: every audit point (`kind IS NOT NULL`) of
//! every trace that has one in `[since, until)`, in timeline order (`ts`,
//! then the thread's sequence number `seq`, then `id`), carrying only the
//! four `fields` keys the rules read (`decision`, `gen_ai.tool.name`,
//! `gen_ai.tool.call.id`, `outcome`; the names come from
//! [`audit::contract::field`](crate::audit::contract::field)). A trace's
//! points outside the window are read too, so a trace that started before
//! `since` is judged whole.
//!
//! # Memory and time
//!
//! The rows are streamed, grouped by trace, and each is handed to a
//! [`Checker`] as it arrives and dropped: no trace's rows are held. The
//! checker is linear in the points and keeps only an index of the latest
//! decisions (by call id, tool name, blanket) and the findings. A trace
//! with more than [`MAX_TRACE_ROWS`] points (or the limit given to
//! [`each_gap_limited`]) has its first points checked, the rest counted
//! and skipped, and is reported with `trace_too_large`, so an
//! attacker-chosen `trace_id` shared by millions of points costs bounded
//! memory.
//!
//! The audit points come out of the partial index `logs_audit_trace
//! (trace_id, ts) WHERE kind IS NOT NULL`, which plain rows never enter:
//! the window's trace ids are gathered into an array first (an
//! `InitPlan`), then `trace_id = ANY (that array)` is one bitmap scan of
//! the partial index. Written as `trace_id IN (subquery)` instead, the
//! planner overestimates the traces in a narrow window and scans the
//! whole table for the points (2–3× slower on the last hour below); as a
//! `LATERAL` join per trace it stays on the index but costs enough to
//! trigger JIT compilation (3.5× slower). The array holds about 40 bytes
//! per trace: split a window of more than ~10 million traces.
//!
//! Plans on 100,000 traces (488,114 points) among 1,000,000 plain rows
//! spread over 14 hours, after `VACUUM ANALYZE`, PostgreSQL 15, 2 cores
//! (`cargo bench --bench audit_gaps`, `EXPLAIN (ANALYZE)` trimmed):
//!
//! ```text
//! -- --since 1h: 5,980 traces, 29,189 points; 74.5 ms for gaps(), median of 5
//! Sort  (Sort Key: l.trace_id, l.ts, l.seq, l.id)
//!   InitPlan 1 (returns $0)
//!     ->  HashAggregate  (Group Key: w.trace_id)
//!           ->  Bitmap Heap Scan on logs w  (Filter: kind IS NOT NULL)
//!                 ->  Bitmap Index Scan on logs_ts_brin  (Index Cond: ts >= $1 AND ts < $2)
//!   ->  Bitmap Heap Scan on logs l  (Recheck Cond: trace_id = ANY ($0) AND kind IS NOT NULL)
//!         ->  Bitmap Index Scan on logs_audit_trace  (Index Cond: trace_id = ANY ($0))
//!
//! -- the whole table: 100,000 traces, 488,114 points; 1.38 s (354,000 points/s)
//! -- the same plan, the window's trace ids from a Seq Scan on logs w
//! -- (every row is in the window, so reading the table is the cheapest way)
//! ```

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::trace::MAX_TRACE_ROWS;
use crate::audit::contract::field;
use crate::audit::rules::{Checker, Finding, PointRow};

/// The statement [`gaps()`] runs. Parameters: `$1` since and `$2` until
/// (`timestamptz`), `$3` to `$6` the `fields` keys
/// [`field::DECISION`], [`field::TOOL_NAME`], [`field::TOOL_CALL_ID`] and
/// [`field::OUTCOME`].
pub const GAPS_SQL: &str = "\
SELECT l.trace_id, l.ts, l.id::text, l.kind,
       l.fields ->> $3::text, l.fields ->> $4::text, l.fields ->> $5::text, l.fields ->> $6::text,
       l.seq
FROM ringtrail.logs l
WHERE l.kind IS NOT NULL
  AND l.trace_id = ANY (ARRAY(SELECT DISTINCT w.trace_id FROM ringtrail.logs w
                              WHERE w.kind IS NOT NULL AND w.ts >= $1 AND w.ts < $2))
ORDER BY l.trace_id, l.ts, l.seq, l.id";

/// An incomplete trace, from [`gaps()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The trace id.
    pub trace_id: String,
    /// What [`rules::check`](crate::audit::rules::check) finds in the trace's audit points (never
    /// empty). A finding's `row` counts audit points only (plain rows
    /// are not read here), so it can differ from the same finding's `row`
    /// in a [`TraceReport`](super::TraceReport); `row_id` is the same in
    /// both.
    pub findings: Vec<Finding>,
    /// How many audit points the trace has (inside the window or not).
    pub points: usize,
    /// Time of its first audit point, microseconds since the Unix epoch.
    pub first_ts_micros: i64,
    /// Time of its last audit point, microseconds since the Unix epoch.
    pub last_ts_micros: i64,
}

impl Gap {
    /// The gap as JSON: `{"trace_id", "findings": [Finding::to_json,
    /// ...], "points", "first_ts", "last_ts"}` with RFC 3339 times, one
    /// line of `ringtrail audit-gaps --json`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "trace_id": self.trace_id,
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "points": self.points,
            "first_ts": crate::time::rfc3339_micros(self.first_ts_micros),
            "last_ts": crate::time::rfc3339_micros(self.last_ts_micros),
        })
    }
}

/// What one [`each_gap`] pass read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// Traces with an audit point in the window.
    pub traces: u64,
    /// Audit points read (theirs, inside the window or not).
    pub points: u64,
    /// Of the traces, the incomplete ones.
    pub gaps: u64,
}

/// Every incomplete trace with an audit point in `[since, until)`, by
/// trace id. `now` and `grace` decide whether a trace without a result is
/// stale (`missing_result`) or still in flight. See the
/// [module docs](self) for the query.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails.
pub async fn gaps(
    client: &Client,
    since: SystemTime,
    until: SystemTime,
    grace: Duration,
    now: SystemTime,
) -> crate::Result<Vec<Gap>> {
    let mut out = Vec::new();
    each_gap(client, since, until, grace, now, |gap| out.push(gap)).await?;
    Ok(out)
}

/// [`gaps()`], handing each gap to `on_gap` as soon as its trace has been
/// read (for output that streams), and returning what was read. A trace
/// with more than [`MAX_TRACE_ROWS`] points is checked that far and
/// reported with `trace_too_large` (see [`each_gap_limited`]).
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails.
pub async fn each_gap(
    client: &Client,
    since: SystemTime,
    until: SystemTime,
    grace: Duration,
    now: SystemTime,
    on_gap: impl FnMut(Gap),
) -> crate::Result<Scan> {
    each_gap_limited(client, since, until, grace, now, MAX_TRACE_ROWS, on_gap).await
}

/// [`each_gap`], checking at most `max_points` audit points of a trace:
/// past that its points are counted (in [`Gap::points`] and
/// [`Scan::points`]) and not checked, and it is reported with the
/// findings of the points checked, then `trace_too_large`. Memory is
/// bounded by `max_points`, whatever a trace holds.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails.
pub async fn each_gap_limited(
    client: &Client,
    since: SystemTime,
    until: SystemTime,
    grace: Duration,
    now: SystemTime,
    max_points: usize,
    mut on_gap: impl FnMut(Gap),
) -> crate::Result<Scan> {
    let window = Window {
        since,
        until,
        grace,
        now,
        max_points,
    };
    let mut reader = GapReader::open(client, &window, GAPS_SQL).await?;
    while let Some(gap) = reader.next_gap().await? {
        on_gap(gap);
    }
    Ok(reader.scan)
}

/// What [`each_gap_limited`] checks: the window, the grace, the time it
/// is judged at, and the most audit points of a trace checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub since: SystemTime,
    pub until: SystemTime,
    pub grace: Duration,
    pub now: SystemTime,
    pub max_points: usize,
}

/// [`GAPS_SQL`] with its traces in byte order (`COLLATE "C"`), whatever
/// the database's collation: the order a
/// [`cluster::each_gap`](super::cluster::each_gap) merge compares trace
/// ids in (`str`'s). On a database whose collation is `C` or `C.UTF-8`
/// (the local store's) it is [`GAPS_SQL`]'s order.
pub(crate) static GAPS_SQL_BYTE_ORDER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        GAPS_SQL.replace("ORDER BY l.trace_id,", "ORDER BY l.trace_id COLLATE \"C\",")
    });

/// The incomplete traces of one database, pulled one at a time: the
/// rows of a [`GAPS_SQL`]-shaped statement, each trace's rows through a
/// [`Checker`] as they arrive, none kept. What [`each_gap_limited`]
/// drives, and each shard of a
/// [`cluster::each_gap`](super::cluster::each_gap) merge.
pub(crate) struct GapReader {
    stream: std::pin::Pin<Box<tokio_postgres::RowStream>>,
    /// The trace being read, if any.
    open: Option<Open>,
    /// Whether the statement's last row has been read.
    ended: bool,
    now_micros: i64,
    grace: Duration,
    max_points: usize,
    /// What was read so far.
    pub scan: Scan,
}

impl GapReader {
    /// Starts `sql` ([`GAPS_SQL`] or [`GAPS_SQL_BYTE_ORDER`]) for
    /// `window` on `client`.
    pub(crate) async fn open(
        client: &Client,
        window: &Window,
        sql: &str,
    ) -> crate::Result<GapReader> {
        let keys = [
            field::DECISION,
            field::TOOL_NAME,
            field::TOOL_CALL_ID,
            field::OUTCOME,
        ];
        let params: [&(dyn ToSql + Sync); 6] = [
            &window.since,
            &window.until,
            &keys[0],
            &keys[1],
            &keys[2],
            &keys[3],
        ];
        let stream = client
            .query_raw(sql, params.iter().map(|p| *p as &dyn ToSql))
            .await?;
        Ok(GapReader {
            stream: Box::pin(stream),
            open: None,
            ended: false,
            now_micros: crate::time::micros(window.now),
            grace: window.grace,
            max_points: window.max_points,
            scan: Scan::default(),
        })
    }

    /// The next incomplete trace, once its last row has been read; `None`
    /// after the last one.
    pub(crate) async fn next_gap(&mut self) -> crate::Result<Option<Gap>> {
        if self.ended {
            return Ok(None);
        }
        while let Some(row) = self.stream.next().await {
            let row = row?;
            let point = point_row(&row);
            let trace_id: &str = row.get(0);
            let mut done = None;
            match &mut self.open {
                Some(o) if o.trace_id == trace_id => o.last_ts_micros = point.ts_micros,
                open => {
                    done = open.replace(Open {
                        trace_id: trace_id.to_owned(),
                        checker: Checker::with_limit(self.max_points),
                        first_ts_micros: point.ts_micros,
                        last_ts_micros: point.ts_micros,
                    });
                }
            }
            if let Some(o) = &mut self.open {
                o.checker.push(&point);
            }
            if let Some(gap) = done.and_then(|d| self.finish(d)) {
                return Ok(Some(gap));
            }
        }
        self.ended = true;
        if let Some(done) = self.open.take() {
            if let Some(gap) = self.finish(done) {
                return Ok(Some(gap));
            }
        }
        Ok(None)
    }

    /// Counts a trace read whole, and its gap if it is incomplete.
    fn finish(&mut self, open: Open) -> Option<Gap> {
        let points = open.checker.rows();
        self.scan.traces += 1;
        self.scan.points += points as u64;
        let findings = open.checker.finish(self.now_micros, self.grace);
        if findings.is_empty() {
            return None;
        }
        self.scan.gaps += 1;
        Some(Gap {
            trace_id: open.trace_id,
            findings,
            points,
            first_ts_micros: open.first_ts_micros,
            last_ts_micros: open.last_ts_micros,
        })
    }
}

/// A trace [`each_gap_limited`] is reading.
struct Open {
    trace_id: String,
    checker: Checker,
    first_ts_micros: i64,
    last_ts_micros: i64,
}

/// A row of [`GAPS_SQL`] as the rules see it.
fn point_row(row: &tokio_postgres::Row) -> PointRow<'_> {
    let ts: SystemTime = row.get(1);
    let (decision, tool, call, outcome) = (row.get(4), row.get(5), row.get(6), row.get(7));
    let point =
        PointRow::from_fields(
            crate::time::micros(ts),
            row.get(2),
            row.get(3),
            |name| match name {
                field::DECISION => decision,
                field::TOOL_NAME => tool,
                field::TOOL_CALL_ID => call,
                field::OUTCOME => outcome,
                _ => None,
            },
        );
    PointRow {
        seq: row.get(8),
        ..point
    }
}

/// `EXPLAIN` (with `ANALYZE` when `analyze`) of [`GAPS_SQL`] for the
/// window `[since, until)`, as the server prints it, one plan line per
/// line. `analyze` runs the query.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the statement fails.
pub async fn explain(
    client: &Client,
    since: SystemTime,
    until: SystemTime,
    analyze: bool,
) -> crate::Result<String> {
    super::explain_sql(
        client,
        GAPS_SQL,
        &[
            &since,
            &until,
            &field::DECISION,
            &field::TOOL_NAME,
            &field::TOOL_CALL_ID,
            &field::OUTCOME,
        ],
        analyze,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::FindingCode;

    #[test]
    fn gap_json_shape() {
        let gap = Gap {
            trace_id: "t-1".into(),
            findings: vec![crate::audit::check(&[], 0, Duration::ZERO)[0].clone()],
            points: 3,
            first_ts_micros: 0,
            last_ts_micros: 1_500_000,
        };
        assert_eq!(gap.findings[0].code, FindingCode::MissingIdentity);
        assert_eq!(
            gap.to_json(),
            serde_json::json!({
                "trace_id": "t-1",
                "findings": [{"code": "missing_identity", "detail": "the trace has no identity point"}],
                "points": 3,
                "first_ts": "1970-01-01T00:00:00.000000Z",
                "last_ts": "1970-01-01T00:00:01.500000Z",
            })
        );
    }

    #[test]
    fn the_cluster_statement_sorts_trace_ids_bytewise() {
        assert!(GAPS_SQL.ends_with("ORDER BY l.trace_id, l.ts, l.seq, l.id"));
        let (select, _) = GAPS_SQL.rsplit_once("ORDER BY").unwrap();
        assert_eq!(
            GAPS_SQL_BYTE_ORDER.as_str(),
            format!("{select}ORDER BY l.trace_id COLLATE \"C\", l.ts, l.seq, l.id")
        );
    }

    #[test]
    fn the_query_reads_the_contract_keys_only() {
        assert_eq!(GAPS_SQL.matches("->>").count(), 4);
        assert!(GAPS_SQL.contains("kind IS NOT NULL"));
        assert!(!GAPS_SQL.contains("fields,"));
    }
}
