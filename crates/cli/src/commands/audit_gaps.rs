//! `ringtrail audit-gaps`: the incomplete traces of a time window, with
//! their findings (`ringtrail::read::each_gap` does the reading, in one
//! query over the partial index `logs_audit_trace`).
//!
//! ```text
//! 4bf92f3577b34da6  5 points  2026-12-01T10:00:00.000100Z → 2026-12-01T10:00:00.000500Z
//!   missing_permission   tool `search` ran with no matching permission before it  (row 0190f5a2-…)
//!
//! 1 incomplete trace of 120 with audit points from 2026-12-01T09:00:00.000000Z to 2026-12-01T10:00:00.000000Z (grace 5m)
//! ```
//!
//! `--json` prints one object per incomplete trace and line, and nothing
//! else: `{"trace_id", "findings": [{"code", ...}], "points", "first_ts",
//! "last_ts"}`.
//!
//! With `--database-url` once per shard of a sharded cluster, every
//! shard's incomplete traces merged by trace id, the counts summed
//! (`ringtrail::read::cluster::each_gap`).
//!
//! Exit codes: 0 the window was checked (incomplete traces or not), 1
//! the database could not be reached or queried (or its URL does not
//! parse), 2 invalid arguments. Every failure is one line on stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ringtrail::read::Gap;
use ringtrail::time::rfc3339_micros;
use ringtrail::time::{format_duration, When};

use super::db::{finish_output, runtime, DatabaseArgs, Shards};
use super::output::{put_line, Printer, RED};
use super::{CliResult, Failure};

/// Flags of `ringtrail audit-gaps`.
#[derive(clap::Args)]
pub struct AuditGapsArgs {
    /// Start of the window: a duration back from now (30m, 1h, 2d, 1h30m)
    /// or an RFC 3339 timestamp. Traces with an audit point in the window
    /// are checked whole.
    #[arg(long, default_value = "1h")]
    since: When,
    /// End of the window (exclusive): an RFC 3339 timestamp, or a
    /// duration back from now. Default: now.
    #[arg(long)]
    until: Option<When>,
    /// How long a trace without a result counts as in flight before it is
    /// `missing_result`, e.g. 30s, 5m, 1h30m.
    #[arg(long, default_value = "5m", value_parser = ringtrail::time::parse_duration)]
    grace: Duration,
    /// Print one JSON object per incomplete trace and line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    color: super::output::ColorArgs,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail audit-gaps`.
pub fn run(args: AuditGapsArgs) -> CliResult {
    let now = SystemTime::now();
    let since = args.since.at(now);
    let until = args.until.map_or(now, |u| u.at(now));
    if since >= until {
        return Err(Failure::usage(format!(
            "--since ({}) is not before --until ({})",
            rfc3339_micros(ringtrail::time::micros(since)),
            rfc3339_micros(ringtrail::time::micros(until)),
        ))
        .into());
    }
    let configs = args.database.configs()?;
    let mut out = Printer::stdout(!args.json && args.color.enabled());
    let scan = runtime()?.block_on(async {
        let shards = Shards::connect(&configs).await?;
        ringtrail::read::cluster::each_gap(&shards.all(), since, until, args.grace, now, |gap| {
            // After a failed write the rest of the scan is not printed.
            if args.json {
                out.json(&gap.to_json().to_string());
            } else {
                write_gap(&mut out, &gap);
            }
        })
        .await
        .map_err(|e| shards.failure("cannot list the incomplete traces", e))
    })?;
    if !args.json {
        put_line!(
            out,
            "{} incomplete trace{} of {} with audit points from {} to {} (grace {})",
            scan.gaps,
            if scan.gaps == 1 { "" } else { "s" },
            scan.traces,
            rfc3339_micros(ringtrail::time::micros(since)),
            rfc3339_micros(ringtrail::time::micros(until)),
            format_duration(args.grace),
        );
    }
    finish_output(out.finish())
}

/// One incomplete trace, for people: a header line, then a line per
/// finding (its code red when the printer is colored), then a blank
/// line.
fn write_gap<W: Write>(out: &mut Printer<W>, gap: &Gap) {
    put_line!(
        out,
        "{}  {} point{}  {} → {}",
        gap.trace_id,
        gap.points,
        if gap.points == 1 { "" } else { "s" },
        rfc3339_micros(gap.first_ts_micros),
        rfc3339_micros(gap.last_ts_micros),
    );
    for f in &gap.findings {
        let mut line = out.line();
        line.text("  ")
            .styled(format_args!("{:<20}", f.code.as_str()), RED)
            .put(format_args!(" {}", f.detail));
        if let Some(id) = &f.row_id {
            line.put(format_args!("  (row {id})"));
        }
    }
    out.blank();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::output::tests::{assert_terminal_safe, CSI8, OSC52, RLO};
    use ringtrail::audit::rules::{check, PointRow};
    use ringtrail::audit::Point;

    #[test]
    fn stored_text_cannot_attack_the_reader() {
        let findings = check(
            &[PointRow {
                point: Some(Point::Tool),
                id: RLO,
                tool_name: Some(OSC52),
                call_id: Some(CSI8),
                ..Default::default()
            }],
            0,
            Duration::from_secs(300),
        );
        let gap = Gap {
            trace_id: OSC52.into(),
            findings,
            points: 1,
            first_ts_micros: 0,
            last_ts_micros: 0,
        };
        for color in [false, true] {
            let mut out = Vec::new();
            let mut p = Printer::new(&mut out, color);
            write_gap(&mut p, &gap);
            p.finish().unwrap();
            assert_terminal_safe(&out, color);
        }
    }
}
