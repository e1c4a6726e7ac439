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
//! With `--database-url` once per shard of a sharded cluster, the trace
//! is found on whichever shard holds it (`ringtrail::read::cluster::trace`).
//!
//! Exit codes: 0 the trace was shown (complete or not), 1 no row has that
//! trace id or the database could not be reached or queried (or its URL
//! does not parse), 2 invalid arguments. Every failure is one line on
//! stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ringtrail::read::{TraceReport, TraceRow};

use super::db::{finish_output, runtime, DatabaseArgs, Shards};
use super::output::{cut, level_color, put_line, show_str, Printer};
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
    let configs = args.database.configs()?;
    let report = runtime()?.block_on(async {
        let shards = Shards::connect(&configs).await?;
        ringtrail::read::cluster::trace(
            &shards.all(),
            &args.trace_id,
            SystemTime::now(),
            args.grace,
        )
        .await
        .map_err(|e| shards.failure("cannot read the trace", e))
    })?;
    let Some(report) = report else {
        return Err(Failure::new(EXIT_RUNTIME, format!("no trace {:?}", args.trace_id)).into());
    };
    let mut out = Printer::stdout(!args.json && args.color.enabled());
    if args.json {
        out.json(&report.to_json().to_string());
    } else {
        write_timeline(&mut out, &report);
    }
    finish_output(out.finish())
}

/// The human-readable timeline of `report`, its levels colored when the
/// printer is.
pub fn write_timeline<W: Write>(out: &mut Printer<W>, report: &TraceReport) {
    let rows = &report.rows;
    put_line!(
        out,
        "trace {}: {} row{}, {} audit point{}",
        report.trace_id,
        rows.len(),
        plural(rows.len()),
        report.points(),
        plural(report.points())
    );
    out.blank();
    let index_width = format!("#{}", rows.len().saturating_sub(1)).len();
    let target_width = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .min(32);
    for (i, row) in rows.iter().enumerate() {
        let marker = row.point.map_or(String::new(), |p| format!("[{p}]"));
        let mut line = out.line();
        line.put(format_args!(
            "{:<index_width$}  {}  {:<12}  ",
            format!("#{i}"),
            row.ts(),
            marker
        ))
        .styled(
            format_args!("{:<5}", row.level_name()),
            level_color(row.level_name()),
        )
        .put(format_args!("  {:<target_width$}", row.target));
        for part in [cut(&row.message, 120).into_owned(), key_fields(row)] {
            if !part.is_empty() {
                line.text("  ").text(&part);
            }
        }
    }
    out.blank();
    if report.complete() {
        put_line!(out, "complete: no findings");
        return;
    }
    let n = report.findings.len();
    put_line!(out, "incomplete: {n} finding{}", plural(n));
    for f in &report.findings {
        let at = f.row.map_or("trace".to_owned(), |r| format!("#{r}"));
        put_line!(out, "  {at:<6} {:<20} {}", f.code.as_str(), f.detail);
    }
}

/// `key=value` for the row's context columns, then its fields: for an
/// audit point the contract's fields first (required, then recommended),
/// then any others; `audit.point` is left out (the marker says it).
fn key_fields(row: &TraceRow) -> String {
    let mut parts: Vec<String> = row
        .context
        .iter()
        .map(|(k, v)| format!("{k}={}", cut(&show_str(v), 80)))
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

/// A field value for people: a string as [`show_str`] shows it, anything
/// else as JSON; at most 80 characters (the printer escapes it).
fn show(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => show_str(s),
        other => other.to_string().into(),
    };
    cut(&text, 80).into_owned()
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

    /// `report`'s timeline through a printer.
    fn timeline(report: &TraceReport, color: bool) -> String {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out, color);
        write_timeline(&mut p, report);
        p.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_stay_on_one_line() {
        assert_eq!(show(&serde_json::json!("a\nb")), "\"a\nb\"");
        assert_eq!(cut("abcdef", 3), "abc…");
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
        let text = timeline(&report, false);
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

    #[test]
    fn stored_text_cannot_attack_the_reader() {
        use crate::commands::output::tests::{assert_terminal_safe, CSI8, OSC52, RLO};
        let mut point = row(
            Some(Point::Tool),
            serde_json::json!({"gen_ai.tool.name": OSC52, "gen_ai.tool.call.id": CSI8, OSC52: RLO}),
        );
        point.target = OSC52.into();
        point.message = CSI8.into();
        point.context = vec![("user_id", RLO.into())];
        let mut plain = row(None, serde_json::json!({"x": [CSI8]}));
        plain.message = format!("{OSC52}{RLO}");
        let report = TraceReport {
            trace_id: OSC52.into(),
            findings: ringtrail::audit::check(
                &[ringtrail::audit::PointRow {
                    point: Some(Point::Tool),
                    tool_name: Some(OSC52),
                    call_id: Some(CSI8),
                    ..Default::default()
                }],
                0,
                Duration::from_secs(300),
            ),
            rows: vec![point, plain],
        };
        for color in [false, true] {
            assert_terminal_safe(timeline(&report, color).as_bytes(), color);
        }
        let text = timeline(&report, false);
        assert!(
            text.starts_with("trace a\\u{1b}]52;c;SGk=\\u{7}b: 2 rows, 1 audit point\n"),
            "{text}"
        );
        assert!(
            text.contains("tool `a\\u{1b}]52;c;SGk=\\u{7}b` (call `x\\u{9b}2J`)"),
            "{text}"
        );
    }
}
