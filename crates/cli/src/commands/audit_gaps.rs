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
//! Exit codes: 0 the window was checked (incomplete traces or not), 1
//! the database could not be reached or queried (or its URL does not
//! parse), 2 invalid arguments. Every failure is one line on stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ringtrail::read::Gap;
use ringtrail::time::rfc3339_micros;
use ringtrail::time::{format_duration, When};

use super::db::{connect, finish_output, runtime, DatabaseArgs};
use super::output::{paint, RED};
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
    let config = args.database.config()?;
    let color = args.color.enabled();
    let mut out = std::io::stdout().lock();
    // The first write error; the rest of the scan is then not printed.
    let mut written: std::io::Result<()> = Ok(());
    let scan = runtime()?.block_on(async {
        let client = connect(&config).await?;
        ringtrail::read::each_gap(&client, since, until, args.grace, now, |gap| {
            if written.is_ok() {
                written = if args.json {
                    writeln!(out, "{}", gap.to_json())
                } else {
                    write_gap(&mut out, &gap, color)
                };
            }
        })
        .await
        .map_err(|e| Failure::database("cannot list the incomplete traces", e))
    })?;
    if written.is_ok() && !args.json {
        written = writeln!(
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
    finish_output(written.and_then(|()| out.flush()))
}

/// One incomplete trace, for people: a header line, then a line per
/// finding (its code red when `color`), then a blank line.
fn write_gap(out: &mut impl Write, gap: &Gap, color: bool) -> std::io::Result<()> {
    writeln!(
        out,
        "{}  {} point{}  {} → {}",
        gap.trace_id,
        gap.points,
        if gap.points == 1 { "" } else { "s" },
        rfc3339_micros(gap.first_ts_micros),
        rfc3339_micros(gap.last_ts_micros),
    )?;
    for f in &gap.findings {
        let code = paint(&format!("{:<20}", f.code.as_str()), RED, color);
        match &f.row_id {
            Some(id) => writeln!(out, "  {code} {}  (row {id})", f.detail)?,
            None => writeln!(out, "  {code} {}", f.detail)?,
        }
    }
    writeln!(out)
}
