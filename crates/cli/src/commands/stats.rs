//! `ringtrail stats [--json]`: what the tables hold and how the writers
//! are doing (`ringtrail::read::stats` reads the database).
//!
//! ```text
//! rows          1204  (oldest 2026-12-01T09:00:00.000100Z, newest 2026-12-01T10:00:00.250000Z)
//! by level      TRACE 0  DEBUG 400  INFO 700  WARN 100  ERROR 4
//! by day        2026-12-01 1204
//! size          ringtrail.logs 1.3 MiB (ringtrail.batches 48.0 KiB, ringtrail.dead_letters 16.0 KiB)
//! last hour     12 batches, 1204 rows committed
//! dead letters  0
//! spool         /var/spool/app: 0 segments, 0 B
//! ```
//!
//! With a partitioned `ringtrail.logs`, each partition's size follows on
//! its own line. The spool is a directory on the machine of the process
//! that writes (`Spool::dir`), not in the database: `--spool-dir`
//! names it, and without it the line says it was not given. A directory
//! that does not exist holds nothing (a spool is created on its first
//! spill).
//!
//! With `--database-url` once per shard of a sharded cluster, the
//! figures of every shard summed (partitions of the same name too).
//!
//! `--json` prints one document: `{"rows", "by_level": {"TRACE": n, …},
//! "by_day": {"YYYY-MM-DD": n, …}, "oldest", "newest" (RFC 3339 or null),
//! "sizes": {"logs", "batches", "dead_letters", "partitions": {name:
//! bytes}}, "last_hour": {"batches", "rows"}, "dead_letters", "spool":
//! {"dir", "segments", "bytes"} or null}`.
//!
//! Exit codes: 0 done, 1 the database could not be reached or queried
//! (or its URL does not parse) or the spool directory could not be read,
//! 2 invalid arguments. Every failure is one line on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};

use ringtrail::read::TableStats;
use ringtrail::time::{micros, rfc3339_micros};
use serde_json::{json, Map, Value};

use super::db::{finish_output, runtime, DatabaseArgs, Shards};
use super::output::{level_color, ColorArgs, Line, Printer, BOLD};
use super::{CliResult, Failure};

/// Flags of `ringtrail stats`.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// The writer's spool directory (on this machine), to report its size.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    #[command(flatten)]
    color: ColorArgs,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// What a spool directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spool {
    dir: PathBuf,
    segments: u64,
    bytes: u64,
}

/// The segments (`*.pgcopy`) in `dir` and the bytes of every file there.
fn spool_usage(dir: &Path) -> std::io::Result<Spool> {
    let mut spool = Spool {
        dir: dir.to_owned(),
        segments: 0,
        bytes: 0,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(spool),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() {
            spool.bytes += meta.len();
            if entry.file_name().to_string_lossy().ends_with(".pgcopy") {
                spool.segments += 1;
            }
        }
    }
    Ok(spool)
}

/// Runs `ringtrail stats`.
pub fn run(args: StatsArgs) -> CliResult {
    let configs = args.database.configs()?;
    let spool = match &args.spool_dir {
        Some(dir) => Some(spool_usage(dir).map_err(|e| {
            Failure::new(
                super::EXIT_RUNTIME,
                format!("cannot read the spool directory {}: {e}", dir.display()),
            )
        })?),
        None => None,
    };
    let stats = runtime()?.block_on(async {
        let shards = Shards::connect(&configs).await?;
        ringtrail::read::cluster::stats(&shards.all())
            .await
            .map_err(|e| shards.failure("cannot read the statistics", e))
    })?;
    let mut out = Printer::stdout(!args.json && args.color.enabled());
    if args.json {
        out.json(&document(&stats, spool.as_ref()).to_string());
    } else {
        human(&mut out, &stats, spool.as_ref());
    }
    finish_output(out.finish())
}

/// An instant as RFC 3339, or null.
fn instant(t: Option<std::time::SystemTime>) -> Value {
    t.map_or(Value::Null, |t| rfc3339_micros(micros(t)).into())
}

/// The `--json` document.
fn document(stats: &TableStats, spool: Option<&Spool>) -> Value {
    let by_level: Map<String, Value> = stats
        .by_level
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    let by_day: Map<String, Value> = stats
        .by_day
        .iter()
        .map(|(k, v)| (k.clone(), (*v).into()))
        .collect();
    let partitions: Map<String, Value> = stats
        .partitions
        .iter()
        .map(|(k, v)| (k.clone(), (*v).into()))
        .collect();
    json!({
        "rows": stats.rows,
        "by_level": by_level,
        "by_day": by_day,
        "oldest": instant(stats.oldest),
        "newest": instant(stats.newest),
        "sizes": {
            "logs": stats.logs_bytes,
            "batches": stats.batches_bytes,
            "dead_letters": stats.dead_letters_bytes,
            "partitions": partitions,
        },
        "last_hour": {"batches": stats.last_hour_batches, "rows": stats.last_hour_rows},
        "dead_letters": stats.dead_letters,
        "spool": spool.map(|s| json!({
            "dir": s.dir.display().to_string(),
            "segments": s.segments,
            "bytes": s.bytes,
        })),
    })
}

/// `bytes` as B, KiB, MiB, GiB or TiB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The width of the labels' column.
const LABEL_WIDTH: usize = 14;

/// The human table.
fn human<W: Write>(out: &mut Printer<W>, stats: &TableStats, spool: Option<&Spool>) {
    let mut line = |label: &str, value: &dyn Fn(&mut Line<'_>)| {
        let mut line = out.line();
        line.styled(label, BOLD).put(format_args!(
            "{:pad$}",
            "",
            pad = LABEL_WIDTH.saturating_sub(label.chars().count())
        ));
        value(&mut line);
    };
    let window = match (stats.oldest, stats.newest) {
        (Some(oldest), Some(newest)) => format!(
            "  (oldest {}, newest {})",
            rfc3339_micros(micros(oldest)),
            rfc3339_micros(micros(newest))
        ),
        _ => String::new(),
    };
    line("rows", &|l| {
        l.put(format_args!("{}{window}", stats.rows));
    });
    line("by level", &|l| levels(l, stats));
    if stats.by_day.is_empty() {
        line("by day", &|l| {
            l.text("-");
        });
    }
    for (i, (day, n)) in stats.by_day.iter().enumerate() {
        line(if i == 0 { "by day" } else { "" }, &|l| {
            l.put(format_args!("{day} {n}"));
        });
    }
    line("size", &|l| {
        l.put(format_args!(
            "ringtrail.logs {} (ringtrail.batches {}, ringtrail.dead_letters {})",
            size(stats.logs_bytes),
            size(stats.batches_bytes),
            size(stats.dead_letters_bytes)
        ));
    });
    let partitioned = stats
        .partitions
        .iter()
        .any(|(name, _)| name != "ringtrail.logs");
    if partitioned {
        for (name, bytes) in &stats.partitions {
            line("", &|l| {
                l.put(format_args!("  {name} {}", size(*bytes)));
            });
        }
    }
    line("last hour", &|l| {
        l.put(format_args!(
            "{} batches, {} rows committed",
            stats.last_hour_batches, stats.last_hour_rows
        ));
    });
    line("dead letters", &|l| {
        l.put(stats.dead_letters);
    });
    line("spool", &|l| match spool {
        Some(s) => {
            l.put(format_args!(
                "{}: {} segments, {}",
                s.dir.display(),
                s.segments,
                size(s.bytes)
            ));
        }
        None => {
            l.text("not given (--spool-dir: the writer's spool is a directory on its machine)");
        }
    });
}

/// The level counts in severity order (TRACE … ERROR, then any other),
/// each name in its level's color.
fn levels(line: &mut Line<'_>, stats: &TableStats) {
    let mut levels: Vec<(i16, &str, u64)> = stats
        .by_level
        .iter()
        .map(|(name, n)| {
            (
                ringtrail::level::from_name(name).unwrap_or(i16::MAX),
                *name,
                *n,
            )
        })
        .collect();
    levels.sort();
    for (i, (_, name, n)) in levels.iter().enumerate() {
        if i > 0 {
            line.text("  ");
        }
        line.styled(name, level_color(name))
            .put(format_args!(" {n}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn a_missing_spool_directory_holds_nothing() {
        let dir = std::env::temp_dir().join("ringtrail-stats-no-such-spool");
        let spool = spool_usage(&dir).unwrap();
        assert_eq!((spool.segments, spool.bytes), (0, 0));
    }
}
