//! `ringtrail trace <trace_id>`: one trace's timeline, every row in order
//! with the five audit points marked, and its findings at the end
//! (`ringtrail::read::trace` does the reading).
//!
//! ```text
//! trace 4bf92f3577b34da6: 6 rows, 5 audit points
//!
//! #0  2026-12-01T10:00:00.000100Z  [identity]    INFO  ringtrail::audit  identity  user_id=u-1 session_id=s-9
//! #1  2026-12-01T10:00:00.000200Z  [agent]       INFO  ringtrail::audit  agent  agent.id=planner gen_ai.request.model=gpt-4o
//! #2  2026-12-01T10:00:00.000300Z  [permission]  INFO  ringtrail::audit  permission  decision=allow policy.id=p-7 gen_ai.tool.name=search
//! #3  2026-12-01T10:00:00.000350Z                DEBUG my_app::search   query planned  terms=3
//! #4  2026-12-01T10:00:00.000400Z  [tool]        INFO  ringtrail::audit  tool  gen_ai.tool.name=search status=ok
//! #5  2026-12-01T10:00:00.000500Z  [result]      INFO  ringtrail::audit  result  outcome=success
//!
//! complete: no findings
//! ```
//!
//! `--json` prints one document instead:
//! `{"trace_id", "complete", "findings": [...], "rows": [{"ts", "id",
//! "point", "level", "target", "message", "fields", "context"}, ...]}`.
//!
//! Exit codes: 0 the trace was shown (complete or not), 1 no row has that
//! trace id or the database could not be reached or queried (or its URL
//! does not parse), 2 invalid arguments. Every failure is one line on
//! stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ringtrail::read::{TraceReport, TraceRow};

use super::db::{connect, finish_output, runtime, DatabaseArgs};
use super::output::{level_color, paint};
use super::{CliResult, Failure, EXIT_RUNTIME};

/// Flags of `ringtrail trace`.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// The trace id (the `trace_id` column).
    trace_id: String,
    /// Print one JSON document instead of the timeline.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    color: super::output::ColorArgs,
    /// How long a trace without a result counts as in flight before it is
    /// `missing_result`, e.g. 30s, 5m, 1h30m.
    #[arg(long, default_value = "5m", value_parser = ringtrail::time::parse_duration)]
    grace: Duration,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail trace`.
pub fn run(args: TraceArgs) -> CliResult {
    let config = args.database.config()?;
    let report = runtime()?.block_on(async {
        let client = connect(&config).await?;
        ringtrail::read::trace(&client, &args.trace_id, SystemTime::now(), args.grace)
            .await
            .map_err(|e| Failure::database("cannot read the trace", e))
    })?;
    let Some(report) = report else {
        return Err(Failure::new(EXIT_RUNTIME, format!("no trace {:?}", args.trace_id)).into());
    };
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{}", report.to_json())
    } else {
        write_timeline(&mut out, &report, args.color.enabled())
    };
    finish_output(written.and_then(|()| out.flush()))
}

/// The human-readable timeline of `report`, its levels colored when
/// `color`.
pub fn write_timeline(
    out: &mut impl Write,
    report: &TraceReport,
    color: bool,
) -> std::io::Result<()> {
    let rows = &report.rows;
    writeln!(
        out,
        "trace {}: {} row{}, {} audit point{}\n",
        report.trace_id,
        rows.len(),
        plural(rows.len()),
        report.points(),
        plural(report.points())
    )?;
    let index_width = format!("#{}", rows.len().saturating_sub(1)).len();
    let target_width = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .min(32);
    for (i, row) in rows.iter().enumerate() {
        let marker = row.point.map_or(String::new(), |p| format!("[{p}]"));
        let mut line = format!(
            "{:<index_width$}  {}  {:<12}  {}  {:<target_width$}",
            format!("#{i}"),
            row.ts(),
            marker,
            paint(
                &format!("{:<5}", row.level_name()),
                level_color(row.level_name()),
                color
            ),
            row.target,
        );
        for part in [one_line(&row.message, 120), key_fields(row)] {
            if !part.is_empty() {
                line.push_str("  ");
                line.push_str(&part);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(out)?;
    if report.complete() {
        return writeln!(out, "complete: no findings");
    }
    let n = report.findings.len();
    writeln!(out, "incomplete: {n} finding{}", plural(n))?;
    for f in &report.findings {
        let at = f.row.map_or("trace".to_owned(), |r| format!("#{r}"));
        writeln!(out, "  {at:<6} {:<20} {}", f.code.as_str(), f.detail)?;
    }
    Ok(())
}

/// `key=value` for the row's context columns, then its fields: for an
/// audit point the contract's fields first (required, then recommended),
/// then any others; `audit.point` is left out (the marker says it).
fn key_fields(row: &TraceRow) -> String {
    let mut parts: Vec<String> = row
        .context
        .iter()
        .map(|(k, v)| format!("{k}={}", show(&serde_json::Value::from(v.as_str()))))
        .collect();
    let Some(fields) = row.fields.as_object() else {
        parts.push(format!("fields={}", show(&row.fields)));
        return parts.join(" ");
    };
    let mut names: Vec<&str> = Vec::new();
    if let Some(point) = row.point {
        let contract = [
            point.required_fields(),
            point.required_any_of(),
            point.recommended_fields(),
        ];
        for name in contract.concat() {
            if fields.contains_key(name) {
                names.push(name);
            }
        }
    }
    for name in fields.keys() {
        let name = name.as_str();
        if name != ringtrail::audit::POINT_FIELD && !names.contains(&name) {
            names.push(name);
        }
    }
    parts.extend(
        names
            .iter()
            .map(|name| format!("{name}={}", show(&fields[*name]))),
    );
    parts.join(" ")
}

/// A field value for the terminal: a string bare unless it has spaces,
/// quotes or `=`, anything else as JSON; at most 80 characters.
fn show(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s)
            if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || "\"'=".contains(c)) =>
        {
            s.clone()
        }
        other => other.to_string(),
    };
    one_line(&text, 80)
}

/// `text` on one line (control characters escaped), cut to `max`
/// characters with an ellipsis.
fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringtrail::audit::Point;

    fn row(point: Option<Point>, fields: serde_json::Value) -> TraceRow {
        TraceRow {
            ts_micros: 1_764_466_647_123_456,
            id: "0190".into(),
            point,
            level: ringtrail::row::LEVEL_INFO,
            target: ringtrail::audit::TARGET.into(),
            message: "tool".into(),
            fields,
            context: vec![("user_id", "u 1".into())],
        }
    }

    #[test]
    fn key_fields_put_the_contract_first() {
        let r = row(
            Some(Point::Tool),
            serde_json::json!({"audit.point": "tool", "extra": 1, "status": "ok", "gen_ai.tool.name": "search"}),
        );
        assert_eq!(
            key_fields(&r),
            r#"user_id="u 1" gen_ai.tool.name=search status=ok extra=1"#
        );
    }

    #[test]
    fn values_stay_on_one_line() {
        assert_eq!(one_line("a\nb", 10), "a\\nb");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(show(&serde_json::json!("")), "\"\"");
        assert_eq!(show(&serde_json::json!({"a": [1]})), r#"{"a":[1]}"#);
    }

    #[test]
    fn the_timeline_marks_points_and_ends_with_findings() {
        let report = TraceReport {
            trace_id: "t-1".into(),
            rows: vec![
                row(
                    Some(Point::Tool),
                    serde_json::json!({"gen_ai.tool.name": "rm"}),
                ),
                row(None, serde_json::json!({})),
            ],
            findings: ringtrail::audit::check(
                &[ringtrail::audit::PointRow {
                    point: Some(Point::Tool),
                    tool_name: Some("rm"),
                    ..Default::default()
                }],
                0,
                Duration::from_secs(300),
            ),
        };
        let mut out = Vec::new();
        write_timeline(&mut out, &report, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("trace t-1: 2 rows, 1 audit point\n"),
            "{text}"
        );
        assert!(
            text.contains("#0  2025-11-30T01:37:27.123456Z  [tool]"),
            "{text}"
        );
        assert!(text.contains("incomplete: 3 findings"), "{text}");
        assert!(text.contains("#0     missing_permission"), "{text}");
        assert!(text.contains("trace  missing_identity"), "{text}");
    }
}
