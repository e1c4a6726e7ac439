//! `ringtrail export --format ecs|ocsf|otlp|native`: the rows of a window
//! as JSON lines for a SIEM or a collector, rendered by the same
//! [`Renderer`]s the JSON-lines sink uses
//! (`ringtrail::read::export` does the reading, in constant memory).
//!
//! ```text
//! ringtrail export --format ecs --since 1h --level warn > last-hour.ndjson
//! ringtrail export --format otlp --trace-id 4bf92f3577b34da6 --output trace.json
//! ```
//!
//! Filters (the same as `ringtrail query`'s, [`FilterArgs`]): `--since`
//! (inclusive) and `--until` (exclusive) take a duration back from now or
//! an RFC 3339 timestamp; `--trace-id` one trace's rows; `--level` that
//! level and above; `--target`, `--user`, `--session`, `--grep`,
//! `--field key=value`. Without a filter every row is exported. Rows come ordered by `ts`, then `id`. `--output -` or
//! no `--output` writes to stdout. An `--output` file is made owner-only
//! (0600, whatever the umask; an existing one is truncated and made 0600),
//! and never written through a symbolic link (a FIFO or a device, such as
//! `/dev/stdout`, is written as it is).
//!
//! With `--database-url` once per shard of a sharded cluster, the rows
//! of every shard merged by `ts`, then `id`, in constant memory
//! (`ringtrail::read::cluster::export`).
//!
//! When stdout is a terminal (and without `--quiet`), the last line on
//! stderr says `exported N rows in X s (R rows/s)`, and while rows go to
//! an `--output` file a spinner there shows the rows written and rows/s.
//! When stdout is a pipe or a file, stderr stays empty unless something
//! fails. `--service-name` names the service as the JSON-lines sink's
//! `Builder::service_name` does, so the lines match the sink's.
//!
//! Exit codes: 0 exported (no row matching is not an error; a reader that
//! closed the pipe early, `| head`, is not either), 1 the output could not
//! be written or the database could not be reached or queried (or its
//! URL does not parse), 2 invalid arguments. Every failure is one line on
//! stderr.

use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ringtrail::render::{Format, Renderer};

use super::db::{finish_output, runtime, DatabaseArgs, Shards};
use super::filter::FilterArgs;
use super::output::{eprint_line, stderr_is_terminal, stdout_is_terminal, Printer, Progress};
use super::{CliResult, Failure};

/// How much rendered output is gathered before one write.
const OUTPUT_BUFFER: usize = 256 * 1024;

/// How many rows pass between two updates of the spinner.
const PROGRESS_EVERY: u64 = 4096;

/// Flags of `ringtrail export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The schema of the lines: ecs, ocsf, otlp or native.
    #[arg(long)]
    format: Format,
    #[command(flatten)]
    filters: FilterArgs,
    /// Where to write the lines; `-` (the default) is stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// No progress or summary on stderr, even on a terminal.
    #[arg(long, short)]
    quiet: bool,
    /// The service the rows come from (ECS `service.name`, the OTLP
    /// resource's `service.name`, OCSF's service): the same as the
    /// JSON-lines sink's `Builder::service_name`, for byte-identical
    /// lines.
    #[arg(long)]
    service_name: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail export`.
pub fn run(args: ExportArgs) -> CliResult {
    let filter = args.filters.filter(SystemTime::now())?;
    let configs = args.database.configs()?;
    let path = args.output.filter(|p| p.as_os_str() != "-");
    // Progress and the summary are for a person at a terminal: not when
    // stdout goes to a pipe or a file. The spinner only when the rows go
    // to a file, so it never garbles rows printed on that terminal.
    let at_terminal = !args.quiet && stdout_is_terminal() && stderr_is_terminal();
    let show_progress = at_terminal && path.is_some();
    runtime()?.block_on(async {
        let shards = Shards::connect(&configs).await?;
        let mut out = match &path {
            Some(path) => Printer::new(
                Box::new(create_output(path).map_err(|e| {
                    Failure::new(1, format!("cannot create {}: {e}", path.display()))
                })?) as Box<dyn Write>,
                false,
            ),
            None => Printer::stdout_boxed(false),
        }
        .spill_at(Some(OUTPUT_BUFFER));
        let progress = show_progress.then(|| spinner(args.format));
        let started = Instant::now();
        let mut renderer =
            Renderer::new(args.format).with_service_name(args.service_name.unwrap_or_default());
        let mut rows: u64 = 0;
        let done = ringtrail::read::cluster::export(&shards.all(), &filter, |row| {
            out.json_with(|buf| renderer.render(row, buf));
            if out.failed() {
                // The first write error; the export stops there.
                return ControlFlow::Break(());
            }
            rows += 1;
            match &progress {
                Some(bar) if rows.is_multiple_of(PROGRESS_EVERY) => {
                    bar.set_position(rows);
                    bar.set_message(format_args!("{:.0} rows/s", rate(rows, started.elapsed())));
                }
                _ => {}
            }
            ControlFlow::Continue(())
        })
        .await;
        let written = out.finish();
        if let Some(bar) = &progress {
            bar.finish_and_clear();
        }
        let done = done.map_err(|e| shards.failure("cannot export the rows", e))?;
        finish_output(written)?;
        if at_terminal && !done.stopped {
            eprint_line(summary(done.rows, started.elapsed()));
        }
        Ok(())
    })
}

/// The spinner on stderr: rows written, rows/s (over the run so far),
/// time elapsed.
fn spinner(format: Format) -> Progress {
    let bar = Progress::new(
        None,
        "{spinner} exporting {prefix}: {human_pos} rows, {msg}, {elapsed}",
        Some(Duration::from_millis(120)),
    );
    bar.set_prefix(format.as_str());
    bar.set_message("0 rows/s");
    bar
}

/// `exported N rows in X s (R rows/s)`.
fn summary(rows: u64, took: Duration) -> String {
    format!(
        "exported {rows} row{} in {:.2} s ({:.0} rows/s)",
        if rows == 1 { "" } else { "s" },
        took.as_secs_f64(),
        rate(rows, took),
    )
}

/// Rows per second over `took` (0 before any time has passed).
fn rate(rows: u64, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        rows as f64 / secs
    } else {
        0.0
    }
}

/// Opens `--output`: a FIFO or a device as it is; otherwise a regular
/// file, created 0600 or truncated and made 0600, never through a
/// symbolic link. Exported rows are as sensitive as the table.
fn create_output(path: &Path) -> std::io::Result<File> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::OpenOptions::new().write(true).open(path);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        let file = options.open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "it is a symbolic link; name the file itself",
                )
            } else {
                e
            }
        })?;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line() {
        assert_eq!(
            summary(1_000_000, Duration::from_millis(2_500)),
            "exported 1000000 rows in 2.50 s (400000 rows/s)"
        );
        assert_eq!(
            summary(1, Duration::ZERO),
            "exported 1 row in 0.00 s (0 rows/s)"
        );
    }
}
