//! `ringtrail migrate`: applies the schema migrations, then creates the
//! partitions of `ringtrail.logs` ahead of time
//! (`ringtrail::schema::apply`, then `ringtrail::schema::partitions::ensure`),
//! and prints what it did.
//!
//! ```text
//! $ ringtrail migrate --database-url postgres://localhost/app
//! applied 0005_partitions
//! created ringtrail.logs_p20261203  2026-12-03T00:00:00.000000Z → 2026-12-04T00:00:00.000000Z
//! created ringtrail.logs_p20261204  2026-12-04T00:00:00.000000Z → 2026-12-05T00:00:00.000000Z  (moved 2 rows out of DEFAULT)
//! 1 migration applied, 2 partitions created
//! ```
//!
//! Safe to run at any time and from cron (daily is enough with the
//! default 3 days ahead): a second run prints `0 migrations applied, 0
//! partitions created`. `--json` prints one document on stdout,
//! `{"applied": ["0005_partitions"], "created": [{"partition", "from",
//! "to", "moved"}]}`, and nothing else.
//!
//! Exit codes: 0 done, 1 runtime error (a malformed database URL, an
//! unreachable database, a failed statement), 2 invalid arguments. Every
//! failure is one line on stderr.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ringtrail::schema::partitions::{self, Created};
use ringtrail::time::rfc3339_micros;

use super::db::{finish_output, runtime, DatabaseArgs};
use super::output::{put_line, Printer};
use super::{CliResult, Failure};

/// Flags of `ringtrail migrate`.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// Width of a partition, e.g. 1d, 12h (from 1h to 366d). Use the same
    /// width as the writers (`Partitions::every`).
    #[arg(long, default_value = "1d", value_parser = ringtrail::time::parse_duration)]
    width: Duration,
    /// Days ahead of today to create partitions for.
    #[arg(long, default_value_t = partitions::DEFAULT_AHEAD)]
    ahead: u32,
    /// Print one JSON document on stdout and nothing else.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail migrate`.
pub fn run(args: MigrateArgs) -> CliResult {
    partitions::check(args.width, args.ahead).map_err(|e| {
        let message = match e {
            ringtrail::Error::Config(m) => m,
            other => other.to_string(),
        };
        Failure::usage(message)
    })?;
    let (applied, created) = runtime()?.block_on(async {
        let mut client = args.database.connect().await?;
        let applied = ringtrail::schema::apply(&mut client)
            .await
            .map_err(|e| Failure::runtime("cannot apply the migrations", e))?;
        let created = partitions::ensure(&mut client, args.width, args.ahead, SystemTime::now())
            .await
            .map_err(|e| Failure::runtime("cannot create the partitions", e))?;
        Ok::<_, Failure>((applied, created))
    })?;
    let mut out = Printer::stdout(false);
    if args.json {
        let created: Vec<serde_json::Value> = created.iter().map(created_json).collect();
        out.json(&serde_json::json!({ "applied": applied, "created": created }).to_string());
    } else {
        write_text(&mut out, &applied, &created);
    }
    finish_output(out.finish())
}

/// One created partition as JSON: `{"partition", "from", "to", "moved"}`.
fn created_json(c: &Created) -> serde_json::Value {
    serde_json::json!({
        "partition": c.name,
        "from": rfc3339_micros(c.from_micros),
        "to": rfc3339_micros(c.to_micros),
        "moved": c.moved,
    })
}

fn write_text<W: Write>(out: &mut Printer<W>, applied: &[&str], created: &[Created]) {
    for version in applied {
        put_line!(out, "applied {version}");
    }
    for c in created {
        let mut line = out.line();
        line.put(format_args!(
            "created {}  {} → {}",
            c.name,
            rfc3339_micros(c.from_micros),
            rfc3339_micros(c.to_micros)
        ));
        if c.moved > 0 {
            line.put(format_args!(
                "  (moved {} row{} out of DEFAULT)",
                c.moved,
                plural(c.moved)
            ));
        }
    }
    put_line!(
        out,
        "{} migration{} applied, {} partition{} created",
        applied.len(),
        plural(applied.len() as u64),
        created.len(),
        plural(created.len() as u64),
    );
}

/// `"s"` unless `n` is 1.
pub fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
