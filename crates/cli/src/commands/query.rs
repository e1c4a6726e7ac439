//! `ringtrail query`: the rows the filters keep, oldest first, up to
//! `--limit` (`ringtrail::read::query` does the reading, in constant
//! memory).
//!
//! ```text
//! $ ringtrail query --since 1h --level warn --target my_app:: --limit 2
//! 2026-12-01T10:00:00.000350Z  WARN   my_app::db  retrying  attempt=3  trace_id=4bf92f35
//! 2026-12-01T10:00:01.120004Z  ERROR  my_app::db  write failed  error.message="disk full"
//! $ ringtrail query --trace-id 4bf92f35 --json | jq -r .message
//! ```
//!
//! Filters ([`FilterArgs`]): `--level` (that level and above),
//! `--target` (a prefix), `--trace-id`, `--user`, `--session`, `--grep`
//! (a substring of the message), `--since`, `--until`, `--field
//! key=value` (repeatable), all ANDed. Only `--since` and `--until` use an
//! index (the BRIN index on `ts`, and partition pruning on a partitioned
//! table); the others filter the rows of that window, so give a window
//! on a large table. `--limit` (default 1000, 0 for none) caps the rows;
//! when it cuts the output short and stderr is a terminal, a note says
//! so there.
//!
//! With `--database-url` once per shard of a sharded cluster, the rows
//! of every shard merged by time (`ringtrail::read::cluster::query`,
//! one pending row per shard), `--limit` counting rows of the whole
//! cluster.
//!
//! Output ([`RowOutputArgs`]): one human line per row, or `--json` (one
//! native JSON object per row), or `--format ecs|ocsf|otlp|native`.
//!
//! Exit codes: 0 done (no row matching included), 1 the database could
//! not be reached or queried (or its URL does not parse) or the output
//! could not be written, 2 invalid arguments. Every failure is one line
//! on stderr.

use std::ops::ControlFlow;
use std::time::SystemTime;

use super::db::{finish_output, runtime, DatabaseArgs, Shards};
use super::filter::FilterArgs;
use super::output::{eprint_line, stderr_is_terminal, RowOutputArgs};
use super::CliResult;

/// Flags of `ringtrail query`.
#[derive(clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    filters: FilterArgs,
    /// At most this many rows (the oldest first); 0 for no limit. At
    /// most 9223372036854775807 (i64::MAX).
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    limit: u64,
    #[command(flatten)]
    output: RowOutputArgs,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail query`.
pub fn run(args: QueryArgs) -> CliResult {
    let filter = args.filters.filter(SystemTime::now())?;
    let configs = args.database.configs()?;
    let limit = (args.limit > 0).then_some(args.limit);
    let mut writer = args.output.writer();
    let mut printer = args.output.printer();
    runtime()?.block_on(async {
        let shards = Shards::connect(&configs).await?;
        let done = ringtrail::read::cluster::query(&shards.all(), &filter, limit, |row| {
            writer.write(row, &mut printer);
            if printer.failed() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .map_err(|e| shards.failure("cannot query the rows", e))?;
        finish_output(printer.finish())?;
        if limit == Some(done.rows) && stderr_is_terminal() {
            eprint_line(format_args!(
                "ringtrail: showed the first {} rows (--limit); there may be more",
                done.rows
            ));
        }
        Ok(())
    })
}
