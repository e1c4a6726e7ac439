//! `ringtrail retention --keep 30d [--dry-run]`: drops the partitions of
//! `ringtrail.logs` whose upper bound is older than `now - keep`, whole,
//! never with `DELETE`, recording each in `ringtrail.retention_log`
//! (`dropped_by` = `ringtrail retention`) before it goes
//! (`ringtrail::schema::retention::apply`).
//!
//! ```text
//! $ ringtrail retention --keep 30d
//! dropped ringtrail.logs_p20261101  48213 rows  2026-11-01T00:00:00.000000Z → 2026-11-02T00:00:00.000000Z
//! 1 partition dropped (cutoff 2026-11-03T10:00:00.000000Z, keep 30d)
//! ```
//!
//! `--dry-run` prints `would drop …` and changes nothing. `--json` prints
//! one document on stdout and nothing else: `{"dry_run", "keep",
//! "cutoff", "partitions": [{"partition", "rows", "from", "to"}]}`
//! (`from` null for a partition bounded by `MINVALUE`). The DEFAULT
//! partition is never dropped; partitions made by hand are judged by
//! their bounds.
//!
//! Exit codes: 0 done (nothing to drop included), 1 runtime error (a
//! malformed database URL, an unreachable database, a failed statement or
//! a lock not had within a second: run it again), 2 invalid arguments (a
//! bad `--keep`). Every failure is one line on stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ringtrail::schema::retention::{self, Dropped};
use ringtrail::time::format_duration;
use ringtrail::time::{micros, rfc3339_micros};

use super::db::{finish_output, runtime, DatabaseArgs};
use super::migrate::plural;
use super::output::{put_line, Printer};
use super::{CliResult, Failure};

/// `dropped_by` in `ringtrail.retention_log` for this command.
pub const DROPPED_BY: &str = "ringtrail retention";

/// Flags of `ringtrail retention`.
#[derive(clap::Args)]
pub struct RetentionArgs {
    /// Keep this much: partitions whose upper bound is older than now
    /// minus this are dropped, e.g. 30d, 12h, 1d12h.
    #[arg(long, value_parser = ringtrail::time::parse_duration)]
    keep: Duration,
    /// List what would be dropped; drop and record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON document on stdout and nothing else.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail retention`.
pub fn run(args: RetentionArgs) -> CliResult {
    let now = SystemTime::now();
    let cutoff =
        micros(now).saturating_sub(i64::try_from(args.keep.as_micros()).unwrap_or(i64::MAX));
    let dropped = runtime()?.block_on(async {
        let mut client = args.database.connect().await?;
        retention::apply(&mut client, args.keep, now, args.dry_run, DROPPED_BY)
            .await
            .map_err(|e| Failure::runtime("cannot apply retention", e))
    })?;
    let mut out = Printer::stdout(false);
    if args.json {
        let partitions: Vec<serde_json::Value> = dropped.iter().map(Dropped::to_json).collect();
        out.json(
            &serde_json::json!({
                "dry_run": args.dry_run,
                "keep": format_duration(args.keep),
                "cutoff": rfc3339_micros(cutoff),
                "partitions": partitions,
            })
            .to_string(),
        );
    } else {
        write_text(&mut out, &args, cutoff, &dropped);
    }
    finish_output(out.finish())
}

fn write_text<W: Write>(
    out: &mut Printer<W>,
    args: &RetentionArgs,
    cutoff: i64,
    dropped: &[Dropped],
) {
    let verb = if args.dry_run {
        "would drop"
    } else {
        "dropped"
    };
    for d in dropped {
        put_line!(
            out,
            "{verb} {}  {} row{}  {} → {}",
            d.partition,
            d.rows,
            plural(d.rows.unsigned_abs()),
            d.from_micros.map_or("MINVALUE".to_owned(), rfc3339_micros),
            rfc3339_micros(d.to_micros),
        );
    }
    put_line!(
        out,
        "{} partition{} {} (cutoff {}, keep {})",
        dropped.len(),
        plural(dropped.len() as u64),
        if args.dry_run {
            "would be dropped"
        } else {
            "dropped"
        },
        rfc3339_micros(cutoff),
        format_duration(args.keep),
    );
}
