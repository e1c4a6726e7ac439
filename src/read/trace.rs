//! One trace, read back: [`trace()`] returns its rows in timeline order
//! and its findings, as a [`TraceReport`].
//!
//! # Queries
//!
//! 1. The audit points: `WHERE trace_id = $1 AND kind IS NOT NULL
//!    ORDER BY ts, seq, id`, an index scan of the partial index
//!    `logs_audit_trace (trace_id, ts) WHERE kind IS NOT NULL`.
//! 2. The plain rows (`kind IS NULL`) with that `trace_id` from
//!    [`PLAIN_ROW_MARGIN`] before the first point to as long after the
//!    last: a bitmap scan of the BRIN index on `ts`, so a trace never
//!    costs a scan of the whole table. The two sorted lists are merged.
//!
//! A trace with no audit point at all (plain rows only) falls back to
//! `WHERE trace_id = $1`, which scans the table.
//!
//! The timeline is ordered by `ts`, then `seq` (the row's sequence number
//! on the thread that emitted it), then `id`: stored time has microsecond
//! precision and ids follow the order the writer drained the ring in, so
//! within one microsecond only `seq` keeps one thread's rows in the order
//! it emitted them.
//!
//! # Memory
//!
//! Each query stops after [`MAX_TRACE_ROWS`] + 1 rows (or the limit given
//! to [`trace_limited`]), decoded as they stream in. A trace with more
//! rows keeps the first [`MAX_TRACE_ROWS`] of its timeline, their
//! findings, and `trace_too_large` ([`Checker::with_limit`]).

use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio_postgres::Client;

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::types::ToSql;

use crate::audit::rules::{Checker, Finding, PointRow};
use crate::audit::{Point, POINT_FIELD, TARGET};
use crate::encode::copy::{col, WireUuid};
use crate::row::CONTEXT_KEYS;

/// How far before a trace's first audit point and after its last one
/// [`trace()`] looks for plain rows carrying its `trace_id`.
pub const PLAIN_ROW_MARGIN: Duration = Duration::from_secs(60);

/// The most rows of one trace [`trace()`] reads (and audit points
/// [`each_gap`](super::each_gap) checks); a trace with more is reported
/// with `trace_too_large`. A hundred thousand rows: a real trace has
/// tens, and a `trace_id` an attacker shares among millions of rows costs
/// at most this many: for `trace`, about 100 MB at 1 KiB a row; for
/// `audit-gaps`, which keeps no rows, the latest decision per distinct
/// tool name and call id among them (each text stored once) and the
/// findings.
pub const MAX_TRACE_ROWS: usize = 100_000;

/// One row of a trace: an audit point or a plain log row.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// Event time, microseconds since the Unix epoch
    /// ([`rfc3339_micros`](crate::time::rfc3339_micros) shows it).
    pub ts_micros: i64,
    /// The row id (UUID text).
    pub id: String,
    /// Which of the five points the row is; `None` for a plain row. From
    /// the `kind` column (or, for a row written before there was one, its
    /// `audit.point` field on target `ringtrail::audit`), exactly as the
    /// completeness rules read it.
    pub point: Option<Point>,
    /// The `level` column: an OpenTelemetry severity number
    /// ([`level_name`](TraceRow::level_name) names it).
    pub level: i16,
    /// The event's target.
    pub target: String,
    /// The formatted message.
    pub message: String,
    /// The `fields` jsonb: the event's other fields.
    pub fields: Value,
    /// The row's context columns other than `trace_id` that have a value,
    /// in [`CONTEXT_KEYS`] order, e.g. `("user_id", "u-1")`. An identity
    /// point's `user_id` is here, not in `fields`.
    pub context: Vec<(&'static str, String)>,
}

impl TraceRow {
    /// `ts` as RFC 3339 UTC with microseconds.
    pub fn ts(&self) -> String {
        crate::time::rfc3339_micros(self.ts_micros)
    }

    /// The level's name: `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub fn level_name(&self) -> &'static str {
        crate::level::name(self.level)
    }

    /// A string field of `fields`, if it is there and a string.
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.fields.get(name)?.as_str()
    }

    /// The row as the completeness rules see it.
    pub fn point_row(&self) -> PointRow<'_> {
        PointRow {
            point: self.point,
            ..PointRow::from_fields(self.ts_micros, &self.id, None, |name| {
                (name != POINT_FIELD)
                    .then(|| self.field_str(name))
                    .flatten()
            })
        }
    }

    /// The row as JSON: `{"ts", "id", "point", "level", "target",
    /// "message", "fields", "context"}`; `point` is null for a plain row,
    /// `level` the level's name, `context` an object of the
    /// [`context`](TraceRow::context) columns.
    pub fn to_json(&self) -> Value {
        let context: serde_json::Map<String, Value> = self
            .context
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect();
        serde_json::json!({
            "ts": self.ts(),
            "id": self.id,
            "point": self.point.map(Point::as_str),
            "level": self.level_name(),
            "target": self.target,
            "message": self.message,
            "fields": self.fields,
            "context": context,
        })
    }
}

/// A trace's rows and findings, from [`trace()`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceReport {
    /// The trace id asked for.
    pub trace_id: String,
    /// Its rows, audit points and plain rows, ordered by `ts`, then `id`.
    pub rows: Vec<TraceRow>,
    /// What [`rules::check`](crate::audit::rules::check) finds in `rows`.
    /// A finding's `row` indexes `rows`. For a trace of more rows than
    /// were read (see [`MAX_TRACE_ROWS`]), the findings of the rows read,
    /// then `trace_too_large`.
    pub findings: Vec<Finding>,
}

impl TraceReport {
    /// Whether the trace has no findings.
    pub fn complete(&self) -> bool {
        self.findings.is_empty()
    }

    /// How many of the rows are audit points.
    pub fn points(&self) -> usize {
        self.rows.iter().filter(|r| r.point.is_some()).count()
    }

    /// The report as one JSON document: `{"trace_id", "complete",
    /// "findings": [Finding::to_json, ...], "rows": [TraceRow::to_json,
    /// ...]}`, what `ringtrail trace --json` prints.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "trace_id": self.trace_id,
            "complete": self.complete(),
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "rows": self.rows.iter().map(TraceRow::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A [`TraceRow`] and its `seq`, which orders it.
pub(crate) struct Timed {
    seq: i64,
    row: TraceRow,
}

impl Timed {
    fn key(&self) -> (i64, i64, &str) {
        (self.row.ts_micros, self.seq, &self.row.id)
    }
}

/// A row of [`SELECT_COLUMNS`](crate::encode::copy::SELECT_COLUMNS), which every query here selects, as a
/// [`TraceRow`] and its `seq`.
fn decode(row: &tokio_postgres::Row) -> Timed {
    Timed {
        seq: row.get(col::SEQ),
        row: decode_row(row),
    }
}

/// [`decode`]'s row.
fn decode_row(row: &tokio_postgres::Row) -> TraceRow {
    let ts: SystemTime = row.get(col::TS);
    let kind: Option<i16> = row.get(col::KIND);
    let target: String = row.get(col::TARGET);
    let fields_text: &str = row.get(col::FIELDS);
    let fields =
        serde_json::from_str(fields_text).unwrap_or_else(|_| Value::String(fields_text.to_owned()));
    let point = match kind {
        Some(kind) => Point::from_kind(kind),
        // A row stored before the `kind` column existed, or written
        // without it: the wire contract decides (target and field).
        None if target == TARGET => fields
            .get(POINT_FIELD)
            .and_then(Value::as_str)
            .and_then(Point::from_name),
        None => None,
    };
    let context = CONTEXT_KEYS[1..]
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            row.get::<_, Option<String>>(col::CONTEXT + 1 + i)
                .map(|v| (*key, v))
        })
        .collect();
    TraceRow {
        ts_micros: crate::time::micros(ts),
        id: crate::text::uuid_text(&row.get::<_, WireUuid>(col::ID).0),
        point,
        level: row.get(col::LEVEL),
        target,
        message: row.get(col::MESSAGE),
        fields,
        context,
    }
}

/// Reads trace `trace_id`: its audit points and the plain rows that carry
/// its `trace_id`, ordered by `ts`, then `seq`, then `id`, and its
/// findings. `now` and `grace` decide whether a trace without a result is
/// stale (`missing_result`) or still in flight. `None` when no row has
/// that trace id. At most [`MAX_TRACE_ROWS`] rows are kept (see
/// [`trace_limited`]). See the [module docs](self) for the queries.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when a query fails.
pub async fn trace(
    client: &Client,
    trace_id: &str,
    now: SystemTime,
    grace: Duration,
) -> crate::Result<Option<TraceReport>> {
    trace_limited(client, trace_id, now, grace, MAX_TRACE_ROWS).await
}

/// [`trace()`], keeping at most `max_rows` rows: the first `max_rows` of
/// the trace's timeline, their findings, then `trace_too_large` when the
/// trace has more. Each query stops after `max_rows + 1` rows, so memory
/// is bounded by `max_rows`, whatever the trace holds.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when a query fails.
pub async fn trace_limited(
    client: &Client,
    trace_id: &str,
    now: SystemTime,
    grace: Duration,
    max_rows: usize,
) -> crate::Result<Option<TraceReport>> {
    let rows = timeline(client, trace_id, max_rows).await?;
    Ok(report(trace_id, rows, now, grace, max_rows))
}

/// The first `max_rows + 1` rows of trace `trace_id`'s timeline on the
/// database `client` is connected to, ordered by `ts`, then `seq`, then
/// `id` (see the [module docs](self) for the queries): what
/// [`trace_limited`] reads, and what
/// [`cluster::trace`](super::cluster::trace) reads on each shard.
pub(crate) async fn timeline(
    client: &Client,
    trace_id: &str,
    max_rows: usize,
) -> crate::Result<Vec<Timed>> {
    let columns = super::export::columns(client).await?;
    // One row past the limit tells a trace that has more.
    let fetch = i64::try_from(max_rows.saturating_add(1)).unwrap_or(i64::MAX);
    let points = fetch_rows(
        client,
        &format!(
            "SELECT {columns} FROM ringtrail.logs
             WHERE trace_id = $1 AND kind IS NOT NULL ORDER BY ts, seq, id LIMIT $2"
        ),
        &[&trace_id, &fetch],
    )
    .await?;
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        // Everything of the timeline up to the limit lies before the
        // (limit + 1)th point, so the points read bound the window.
        let from = crate::time::from_micros(first.row.ts_micros);
        let to = crate::time::from_micros(last.row.ts_micros);
        let from = from.checked_sub(PLAIN_ROW_MARGIN).unwrap_or(from);
        let to = to.checked_add(PLAIN_ROW_MARGIN).unwrap_or(to);
        let plain = fetch_rows(
            client,
            &format!(
                "SELECT {columns} FROM ringtrail.logs
                 WHERE trace_id = $1 AND kind IS NULL AND ts >= $2 AND ts <= $3
                 ORDER BY ts, seq, id LIMIT $4"
            ),
            &[&trace_id, &from, &to, &fetch],
        )
        .await?;
        Ok(merge(points, plain))
    } else {
        fetch_rows(
            client,
            &format!(
                "SELECT {columns} FROM ringtrail.logs WHERE trace_id = $1
                 ORDER BY ts, seq, id LIMIT $2"
            ),
            &[&trace_id, &fetch],
        )
        .await
    }
}

/// The report of trace `trace_id` from its timeline `rows` (ordered by
/// `ts`, `seq`, `id`; each list merged into it held its first
/// `max_rows + 1`): the first `max_rows` rows and their findings, then
/// `trace_too_large` when there were more. `None` when `rows` is empty.
pub(crate) fn report(
    trace_id: &str,
    mut rows: Vec<Timed>,
    now: SystemTime,
    grace: Duration,
    max_rows: usize,
) -> Option<TraceReport> {
    if rows.is_empty() {
        return None;
    }
    // Each list holds its first `max_rows + 1`, so the merged list's first
    // `max_rows` are the timeline's; one more means there are more.
    let mut checker = Checker::with_limit(max_rows);
    for timed in &rows {
        checker.push(&PointRow {
            seq: timed.seq,
            ..timed.row.point_row()
        });
    }
    rows.truncate(max_rows);
    Some(TraceReport {
        trace_id: trace_id.to_owned(),
        rows: rows.into_iter().map(|t| t.row).collect(),
        findings: checker.finish(crate::time::micros(now), grace),
    })
}

/// The rows of `sql` (which selects [`SELECT_COLUMNS`](crate::encode::copy::SELECT_COLUMNS)), decoded as they
/// stream in.
async fn fetch_rows(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> crate::Result<Vec<Timed>> {
    let stream = client
        .query_raw(sql, params.iter().map(|p| *p as &dyn ToSql))
        .await?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        rows.push(decode(&row?));
    }
    Ok(rows)
}

/// Merges two lists sorted by (`ts`, `seq`, `id`) into one. UUID text
/// sorts like PostgreSQL's `uuid` order (bytewise), so the result is the
/// order `ORDER BY ts, seq, id` gives.
pub(crate) fn merge(a: Vec<Timed>, b: Vec<Timed>) -> Vec<Timed> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.key() <= y.key(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::contract::field;

    fn row(ts: i64, id: &str, point: Option<Point>) -> TraceRow {
        TraceRow {
            ts_micros: ts,
            id: id.to_owned(),
            point,
            level: crate::row::LEVEL_INFO,
            target: "t".to_owned(),
            message: String::new(),
            fields: serde_json::json!({}),
            context: Vec::new(),
        }
    }

    fn timed(ts: i64, seq: i64, id: &str, point: Option<Point>) -> Timed {
        Timed {
            seq,
            row: row(ts, id, point),
        }
    }

    #[test]
    fn merge_orders_by_ts_then_seq_then_id() {
        let a = vec![
            timed(1, 0, "b", Some(Point::Identity)),
            timed(3, 0, "a", Some(Point::Tool)),
            // One thread's two points in one microsecond: the second
            // drained first, so its id is smaller; seq keeps them in order.
            timed(5, 7, "d", Some(Point::Permission)),
            timed(5, 8, "c", Some(Point::Tool)),
        ];
        let b = vec![
            timed(1, 0, "a", None),
            timed(2, 0, "z", None),
            timed(3, 0, "b", None),
            timed(5, 9, "a", None),
            timed(9, 0, "a", None),
        ];
        let merged = merge(a, b);
        let ids: Vec<(i64, &str)> = merged
            .iter()
            .map(|t| (t.row.ts_micros, t.row.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                (1, "a"),
                (1, "b"),
                (2, "z"),
                (3, "a"),
                (3, "b"),
                (5, "d"),
                (5, "c"),
                (5, "a"),
                (9, "a")
            ]
        );
    }

    #[test]
    fn context_columns_after_trace_id_are_read() {
        assert_eq!(CONTEXT_KEYS[0], field::TRACE_ID);
        let names = crate::encode::copy::LOG_COLUMNS;
        assert_eq!(
            names[col::CONTEXT + 1..col::CONTEXT + CONTEXT_KEYS.len()],
            CONTEXT_KEYS[1..]
        );
        assert!(
            crate::encode::copy::SELECT_COLUMNS
                .contains("user_id, session_id, task_id, context_id, client_id"),
            "{}",
            crate::encode::copy::SELECT_COLUMNS
        );
    }

    #[test]
    fn json_shape() {
        let mut r = row(1_764_466_647_123_456, "0190", Some(Point::Tool));
        r.fields = serde_json::json!({"audit.point": "tool", "gen_ai.tool.name": "search"});
        r.context = vec![("user_id", "u-1".to_owned())];
        let report = TraceReport {
            trace_id: "t".into(),
            rows: vec![r, row(2_000_000_000_000_000, "0191", None)],
            findings: Vec::new(),
        };
        let json = report.to_json();
        assert_eq!(json["complete"], true);
        assert_eq!(json["findings"], serde_json::json!([]));
        assert_eq!(
            json["rows"][0],
            serde_json::json!({
                "ts": "2025-11-30T01:37:27.123456Z", "id": "0190", "point": "tool",
                "level": "INFO", "target": "t", "message": "",
                "fields": {"audit.point": "tool", "gen_ai.tool.name": "search"},
                "context": {"user_id": "u-1"}
            })
        );
        assert_eq!(json["rows"][1]["point"], Value::Null);
        assert_eq!(report.points(), 1);
        // The rules see the point and the tool name.
        let pr = report.rows[0].point_row();
        assert_eq!(pr.point, Some(Point::Tool));
        assert_eq!(pr.tool_name, Some("search"));
        assert_eq!(report.rows[1].point_row().point, None);
    }
}
