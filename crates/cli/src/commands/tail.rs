//! `ringtrail tail [-f]`: the newest rows, then (with `-f`) every row as
//! its batch commits, like `journalctl -f`; `ringtrail::read::Follower`
//! does the reading.
//!
//! ```text
//! $ ringtrail tail -n 3 --level warn
//! $ ringtrail tail -f --target my_app:: --since 10m
//! $ ringtrail tail -f --json | jq -r .message
//! $ c=$(ringtrail tail -n 0 --show-cursor 2>&1 >/dev/null | sed -n 's/^cursor //p')
//! $ ringtrail tail --after "$c"      # the rows committed since then
//! ```
//!
//! Filters and output are `ringtrail query`'s (`--level`, `--target`,
//! `--trace-id`, `--user`, `--session`, `--grep`, `--since`, `--until`,
//! `--field`; `--json`, `--format`, `--color`).
//!
//! - **Without `-f`:** the last `-n` rows (default 10) the filters keep,
//!   oldest first.
//! - **With `-f`:** the same backlog (or, with `--since` and no `-n`,
//!   every row since then), then every row of every batch committed
//!   afterwards that the filters keep (`--since` and `--until` included),
//!   exactly once, even when a writer commits rows older than rows
//!   already shown: the follower tracks the ledger's transaction ids, not
//!   timestamps (see `ringtrail::read::follow`). Rows of one poll come
//!   ordered by time; a batch committed late shows up when it commits.
//!   It polls every 250 ms and on each batch's NOTIFY, so a row is on
//!   screen well under a second after its COMMIT.
//! - **A lost connection** (a server restart, say) prints one line on
//!   stderr, `ringtrail: lost the database connection (…); reconnecting`,
//!   retries with backoff (250 ms doubling to 5 s) for as long as it
//!   takes, says `ringtrail: reconnected` and resumes from its cursor:
//!   no row missed, none twice. A database that cannot be reached at the
//!   start is an error (exit 1).
//! - **`--show-cursor`** prints `cursor <c>` on stderr: at the end without
//!   `-f`; with `-f` after the backlog and after each poll that read new
//!   batches. The last such line is where the output stands.
//!   **`--after <c>`** starts there instead of the backlog: without `-f`
//!   it prints the rows committed since and exits, with `-f` it goes on
//!   following.
//!
//! Only rows loaded as batches (by the writer, with a ledger row) are
//! followed; rows inserted by hand or committed before migration
//! `0006_follow` appear in the backlog only. Stop it with Ctrl-C.
//!
//! Exit codes: 0 done (or the reader closed the pipe), 1 the database
//! could not be reached or queried at the start (or its URL does not
//! parse) or the output could not be written, 2 invalid arguments (a bad
//! cursor included). Every failure is one line on stderr.

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ringtrail::read::follow::{connect_listening, Wake, POLL_INTERVAL};
use ringtrail::read::{Backlog, Cursor, Follower};
use ringtrail::tls::ConnectOptions;
use tokio_postgres::Client;

use super::db::{finish_output, runtime, DatabaseArgs};
use super::filter::FilterArgs;
use super::output::{eprint_line, Printer, RowOutputArgs};
use super::{CliResult, Failure};

/// How much backlog output is gathered before one write.
const OUTPUT_BUFFER: usize = 64 * 1024;
/// How often the wait between two polls looks at the NOTIFY flag.
const WAKE_CHECK: Duration = Duration::from_millis(20);
/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Flags of `ringtrail tail`.
#[derive(clap::Args)]
pub struct TailArgs {
    #[command(flatten)]
    filters: FilterArgs,
    /// Show the last N rows first (default 10; with -f and --since,
    /// every row since then).
    #[arg(short = 'n', long = "lines", value_name = "N",
          value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    lines: Option<u64>,
    /// Keep following: print every row as its batch commits.
    #[arg(short, long)]
    follow: bool,
    /// Print `cursor <c>` on stderr (at the end; with -f after each poll
    /// that read new batches), for --after.
    #[arg(long)]
    show_cursor: bool,
    /// Start after this cursor (printed by --show-cursor) instead of the
    /// last rows: the rows committed since.
    #[arg(long, value_name = "CURSOR", conflicts_with = "lines")]
    after: Option<Cursor>,
    #[command(flatten)]
    output: RowOutputArgs,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs `ringtrail tail`.
pub fn run(args: TailArgs) -> CliResult {
    let filter = args.filters.filter(SystemTime::now())?;
    let config = args.database.config()?;
    let backlog = match args.lines {
        Some(n) => Backlog::Last(n),
        None if args.follow && args.filters.since.is_some() => Backlog::All,
        None => Backlog::Last(10),
    };
    let mut writer = args.output.writer();
    // Written when asked only: a poll's rows go out whole, after it.
    let mut out = args.output.printer().spill_at(None);
    runtime()?.block_on(async {
        let (mut client, mut wake) = listen(&config).await?;
        let resuming = args.after.is_some();
        // The backlog (all of `--since`, maybe) goes out as it is read.
        let mut write_error = None;
        let mut follower = match args.after {
            Some(cursor) => Follower::resume(filter, cursor),
            None => Follower::start(&mut client, filter, backlog, |row| {
                writer.write(row, &mut out);
                if out.buffered() >= OUTPUT_BUFFER {
                    if let Err(e) = out.flush() {
                        write_error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            })
            .await
            .map_err(cannot_follow)?,
        };
        if let Some(e) = write_error {
            return finish_output(Err(e));
        }
        if resuming && !args.follow {
            // The rows committed since the cursor, then stop.
            loop {
                let polled = follower
                    .poll(&mut client, |row| {
                        writer.write(row, &mut out);
                        ControlFlow::Continue(())
                    })
                    .await
                    .map_err(|e| {
                        out.discard();
                        cannot_follow(e)
                    })?;
                if !emit(&mut out)? {
                    return Ok(());
                }
                if polled.caught_up {
                    break;
                }
            }
        } else if !emit(&mut out)? {
            return Ok(());
        }
        show_cursor(args.show_cursor, &follower);
        if !args.follow {
            return Ok(());
        }
        let mut behind = false;
        loop {
            if !behind {
                wait(&wake).await;
            }
            let polled = follower
                .poll(&mut client, |row| {
                    writer.write(row, &mut out);
                    ControlFlow::Continue(())
                })
                .await;
            match polled {
                Ok(polled) => {
                    behind = !polled.caught_up;
                    if !emit(&mut out)? {
                        return Ok(());
                    }
                    if polled.batches > 0 {
                        show_cursor(args.show_cursor, &follower);
                    }
                }
                Err(e) if connection_lost(&e, &client) => {
                    out.discard();
                    eprint_line(format_args!(
                        "ringtrail: lost the database connection ({}); reconnecting",
                        ringtrail::error::chain(&e)
                    ));
                    (client, wake) = reconnect(&config).await;
                    eprint_line("ringtrail: reconnected");
                }
                Err(e) => {
                    out.discard();
                    return Err(cannot_follow(e).into());
                }
            }
        }
    })
}

/// Writes the rows gathered in `out`. `Ok(false)`: the reader closed
/// the pipe, stop quietly.
fn emit(out: &mut Printer<impl Write>) -> Result<bool, Failure> {
    if out.buffered() == 0 {
        return Ok(true);
    }
    match out.flush() {
        Ok(()) => Ok(true),
        Err(e) => finish_output(Err(e))
            .map(|()| false)
            .map_err(|e| Failure::new(super::EXIT_RUNTIME, e)),
    }
}

/// `cursor <c>` on stderr when asked.
fn show_cursor(asked: bool, follower: &Follower) {
    if asked {
        eprint_line(format_args!("cursor {}", follower.cursor()));
    }
}

/// Connects and LISTENs; a failure is exit code 1.
async fn listen(config: &ConnectOptions) -> Result<(Client, Arc<Wake>), Failure> {
    connect_listening(config)
        .await
        .map_err(|e| Failure::database("cannot connect to the database", e))
}

/// Waits for the next poll: [`POLL_INTERVAL`], or less when a batch's
/// NOTIFY comes.
async fn wait(wake: &Wake) {
    let started = Instant::now();
    while started.elapsed() < POLL_INTERVAL {
        if wake.take() {
            return;
        }
        tokio::time::sleep(WAKE_CHECK).await;
    }
}

/// Reconnects with backoff until it works.
async fn reconnect(config: &ConnectOptions) -> (Client, Arc<Wake>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::time::sleep(backoff).await;
        if let Ok(connected) = connect_listening(config).await {
            return connected;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Whether `error` means the connection is gone (closed, broken, or the
/// server shutting down or starting up), as opposed to a query the
/// server refused.
fn connection_lost(error: &ringtrail::Error, client: &Client) -> bool {
    if client.is_closed() {
        return true;
    }
    match error {
        ringtrail::Error::Postgres(e) => match e.code() {
            // Class 08: connection exception; 57: operator intervention
            // (admin or crash shutdown, cannot connect now).
            Some(code) => {
                let code = code.code();
                code.starts_with("08") || code.starts_with("57")
            }
            None => {
                e.is_closed()
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
        },
        _ => false,
    }
}

/// A failed follow query: exit code 1, with a hint when the schema lacks
/// migration `0006_follow`.
fn cannot_follow(error: ringtrail::Error) -> Failure {
    let undefined = matches!(&error, ringtrail::Error::Postgres(e)
        if e.code().is_some_and(|c| matches!(c.code(), "42703" | "42P01" | "42883")));
    let doing = if undefined {
        "cannot follow the rows (is the schema migrated? tail needs migration 0006_follow)"
    } else {
        "cannot follow the rows"
    };
    Failure::database(doing, error)
}
