//! One trace, read back: [`trace()`] returns its rows in timeline order
//! and its findings, as a [`TraceReport`].
//!
//! # Queries
//!
//! 1. The audit points: `WHERE trace_id = $1 AND kind IS NOT NULL
//!    ORDER BY ts, id`, an index scan of the partial index
//!    `logs_audit_trace (trace_id, ts) WHERE kind IS NOT NULL`.
//! 2. The plain rows (`kind IS NULL`) with that `trace_id` from
//!    [`PLAIN_ROW_MARGIN`] before the first point to as long after the
//!    last: a bitmap scan of the BRIN index on `ts`, so a trace never
//!    costs a scan of the whole table. The two sorted lists are merged.
//!
//! A trace with no audit point at all (plain rows only) falls back to
//! `WHERE trace_id = $1`, which scans the table.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio_postgres::Client;

use crate::audit::rules::{check, Finding, PointRow};
use crate::audit::{Point, POINT_FIELD, TARGET};
use crate::encode::copy::{col, WireUuid, SELECT_COLUMNS};
use crate::row::CONTEXT_KEYS;

/// How far before a trace's first audit point and after its last one
/// [`trace()`] looks for plain rows carrying its `trace_id`.
pub const PLAIN_ROW_MARGIN: Duration = Duration::from_secs(60);

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
    /// A finding's `row` indexes `rows`.
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

/// A row of [`SELECT_COLUMNS`], which every query here selects, as a
/// [`TraceRow`].
fn decode(row: &tokio_postgres::Row) -> TraceRow {
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
/// its `trace_id`, ordered by `ts` then `id`, and its findings. `now` and
/// `grace` decide whether a trace without a result is stale
/// (`missing_result`) or still in flight. `None` when no row has that
/// trace id. See the [module docs](self) for the queries.
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
    let columns = SELECT_COLUMNS;
    let points = client
        .query(
            &format!(
                "SELECT {columns} FROM ringtrail.logs
                 WHERE trace_id = $1 AND kind IS NOT NULL ORDER BY ts, id"
            ),
            &[&trace_id],
        )
        .await?;
    let rows: Vec<TraceRow> = if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let from: SystemTime = first.get(0);
        let to: SystemTime = last.get(0);
        let from = from.checked_sub(PLAIN_ROW_MARGIN).unwrap_or(from);
        let to = to.checked_add(PLAIN_ROW_MARGIN).unwrap_or(to);
        let plain = client
            .query(
                &format!(
                    "SELECT {columns} FROM ringtrail.logs
                     WHERE trace_id = $1 AND kind IS NULL AND ts >= $2 AND ts <= $3
                     ORDER BY ts, id"
                ),
                &[&trace_id, &from, &to],
            )
            .await?;
        merge(
            points.iter().map(decode).collect(),
            plain.iter().map(decode).collect(),
        )
    } else {
        client
            .query(
                &format!(
                    "SELECT {columns} FROM ringtrail.logs WHERE trace_id = $1 ORDER BY ts, id"
                ),
                &[&trace_id],
            )
            .await?
            .iter()
            .map(decode)
            .collect()
    };
    if rows.is_empty() {
        return Ok(None);
    }
    let findings = {
        let point_rows: Vec<PointRow<'_>> = rows.iter().map(TraceRow::point_row).collect();
        check(&point_rows, crate::time::micros(now), grace)
    };
    Ok(Some(TraceReport {
        trace_id: trace_id.to_owned(),
        rows,
        findings,
    }))
}

/// Merges two lists sorted by (`ts`, `id`) into one. UUID text sorts like
/// PostgreSQL's `uuid` order (bytewise), so the result is the order
/// `ORDER BY ts, id` gives.
fn merge(a: Vec<TraceRow>, b: Vec<TraceRow>) -> Vec<TraceRow> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => (x.ts_micros, &x.id) <= (y.ts_micros, &y.id),
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

    #[test]
    fn merge_orders_by_ts_then_id() {
        let a = vec![
            row(1, "b", Some(Point::Identity)),
            row(3, "a", Some(Point::Tool)),
        ];
        let b = vec![
            row(1, "a", None),
            row(2, "z", None),
            row(3, "b", None),
            row(9, "a", None),
        ];
        let merged = merge(a, b);
        let ids: Vec<(i64, &str)> = merged
            .iter()
            .map(|r| (r.ts_micros, r.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [(1, "a"), (1, "b"), (2, "z"), (3, "a"), (3, "b"), (9, "a")]
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
            SELECT_COLUMNS.contains("user_id, session_id, task_id, context_id, client_id"),
            "{SELECT_COLUMNS}"
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
