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
//! **Safety rails.** A `--keep` shorter than one partition (the widest
//! attached one; a day when there is none) would drop every partition
//! before now: it is refused with exit 2 unless `--force` (`6m` is six
//! minutes, and the error says so: a user typing it almost surely meant
//! months). The cutoff is the server's `now()` minus `--keep`, not this
//! host's clock, so a client clock months ahead drops nothing it should
//! not.
//!
//! Exit codes: 0 done (nothing to drop included), 1 runtime error (a
//! malformed database URL, an unreachable database, a failed statement or
//! a lock not had within a second: run it again), 2 invalid arguments (a
//! bad `--keep`, or one shorter than a partition without `--force`).
//! Every failure is one line on stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ringtrail::schema::partitions;
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
    /// minus this are dropped, e.g. 30d, 12h, 1d12h (m is minutes).
    #[arg(long, value_parser = Keep::parse, value_name = "DURATION")]
    keep: Keep,
    /// Drop even with a --keep shorter than one partition.
    #[arg(long)]
    force: bool,
    /// List what would be dropped; drop and record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON document on stdout and nothing else.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// `--keep`: the duration, and how it was written.
#[derive(Debug, Clone)]
struct Keep {
    text: String,
    duration: Duration,
}

impl Keep {
    fn parse(text: &str) -> Result<Keep, String> {
        Ok(Keep {
            text: text.to_owned(),
            duration: ringtrail::time::parse_duration(text).map_err(|e| e.to_string())?,
        })
    }
}

/// A partition's width when none is attached: a day, the default.
const DEFAULT_WIDTH: Duration = Duration::from_secs(86_400);

/// Runs `ringtrail retention`.
pub fn run(args: RetentionArgs) -> CliResult {
    let keep = args.keep.duration;
    let (now, dropped) = runtime()?.block_on(async {
        let mut client = args.database.connect().await?;
        let now: SystemTime = client
            .query_one("SELECT now()", &[])
            .await
            .map_err(|e| Failure::runtime("cannot read the server's clock", e))?
            .get(0);
        let attached = partitions::list(&client)
            .await
            .map_err(|e| Failure::runtime("cannot list the partitions", e))?;
        let width = widest(&attached).unwrap_or(DEFAULT_WIDTH);
        if keep < width && !args.force {
            return Err(Failure::usage(too_short(&args.keep, width)).into());
        }
        let dropped = retention::apply(&mut client, keep, now, args.dry_run, DROPPED_BY)
            .await
            .map_err(|e| Failure::runtime("cannot apply retention", e))?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((now, dropped))
    })?;
    let cutoff = micros(now).saturating_sub(i64::try_from(keep.as_micros()).unwrap_or(i64::MAX));
    let mut out = Printer::stdout(false);
    if args.json {
        let partitions: Vec<serde_json::Value> = dropped.iter().map(Dropped::to_json).collect();
        out.json(
            &serde_json::json!({
                "dry_run": args.dry_run,
                "keep": format_duration(keep),
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
        format_duration(args.keep.duration),
    );
}

/// The widest attached partition with both bounds, if any.
fn widest(attached: &[partitions::Partition]) -> Option<Duration> {
    attached
        .iter()
        .filter_map(|p| p.to_micros?.checked_sub(p.from_micros?))
        .filter(|&w| w > 0)
        .max()
        .map(|w| Duration::from_micros(w.unsigned_abs()))
}

/// The refusal of a `--keep` shorter than one partition.
fn too_short(keep: &Keep, width: Duration) -> String {
    let months = if keep.text.trim_end().ends_with('m') && !keep.text.trim_end().ends_with("ms") {
        " (m is minutes: for months, write days, e.g. 180d)"
    } else {
        ""
    };
    format!(
        "--keep {} is {}{months}, shorter than one partition ({}): every partition before \
         now would be dropped; pass --force to do it anyway",
        keep.text,
        format_duration(keep.duration),
        format_duration(width),
    )
}
