//! The `ringtrail` command-line tool.
//!
//! `ringtrail demo` runs the project's main job end to end: a realistic
//! multi-threaded workload through the layer into PostgreSQL. Every
//! command uses the server `--database-url` (or `DATABASE_URL`) names,
//! else the local store: a PostgreSQL cluster in `--data-dir` (or
//! `RINGTRAIL_DATA_DIR`, default `~/.local/share/ringtrail`), created on
//! first use and left running (`demo --throwaway` uses a cluster removed
//! afterwards instead). `ringtrail trace` shows one audit trace's timeline and
//! findings; `ringtrail audit-gaps` lists the incomplete traces of a time
//! window; `ringtrail usage` adds up the tokens and cost of AI calls per
//! model, user, agent or day; `ringtrail export` writes a window's rows as ECS, OCSF, OTLP or
//! native JSON lines; `ringtrail migrate` applies the schema and creates
//! partitions ahead; `ringtrail retention` drops old partitions;
//! `ringtrail verify` checks the tamper evidence (exit code 3 when it
//! finds tampering).
//!
//! This file only parses the command line and dispatches; each subcommand
//! lives in its own module under `src/commands/`.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ringtrail",
    version,
    about = "Zero-allocation tracing → PostgreSQL binary COPY"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a realistic workload through the layer into PostgreSQL and
    /// report throughput, drops, batches and the row count.
    ///
    /// It writes into --database-url, else the local store (--data-dir),
    /// where the `ringtrail trace <id>` it prints finds the trace
    /// afterwards; --throwaway writes into a cluster removed at the end.
    Demo(commands::demo::DemoArgs),
    /// Show one trace's timeline: every row in order, the five audit
    /// points marked, and its findings at the end.
    ///
    /// Exit codes: 0 the trace was shown (complete or not), 1 no row has
    /// that trace id, or the database could not be reached or queried (a
    /// malformed URL included), 2 invalid arguments. Every failure is one
    /// line on stderr.
    Trace(commands::trace::TraceArgs),
    /// List the incomplete audit traces of a time window, with their
    /// findings.
    ///
    /// Exit codes: 0 the window was checked (incomplete traces or not),
    /// 1 the database could not be reached or queried (a malformed URL
    /// included), 2 invalid arguments. Every failure is one line on
    /// stderr.
    AuditGaps(commands::audit_gaps::AuditGapsArgs),
    /// Tokens and cost of the AI calls of a time window, per model, user,
    /// agent or day, from the audit points: tool points' token counts,
    /// results' cost.micro_usd, and a --prices file for the rest.
    ///
    /// A trace whose result gives cost.micro_usd costs that, and its
    /// tokens are not priced again; the tokens of other traces are priced
    /// with the price file (USD per million tokens, exact decimals),
    /// rounded once per group. Every figure is an exact integer. --json
    /// prints one {"group", "calls", "input_tokens", "output_tokens",
    /// "cached_tokens", "cost_micro_usd"} per line (docs/usage.md).
    ///
    /// Exit codes: 0 done, 1 the database could not be reached or queried
    /// (a malformed URL included), 2 invalid arguments (a bad --by, a
    /// price file that cannot be read or parsed). Every failure is one
    /// line on stderr.
    Usage(commands::usage::UsageArgs),
    /// Write the rows of a window as JSON lines in a SIEM's schema (ECS,
    /// OCSF, OTLP or ringtrail's native JSON), ordered by time.
    ///
    /// Exit codes: 0 exported (a reader closing the pipe early included),
    /// 1 the output could not be written or the database could not be
    /// reached or queried (a malformed URL included), 2 invalid
    /// arguments. Every failure is one line on stderr.
    Export(commands::export::ExportArgs),
    /// Apply the schema migrations and create the partitions of
    /// ringtrail.logs ahead of time; print what was done.
    ///
    /// Exit codes: 0 done, 1 runtime error (malformed database URL,
    /// unreachable database, failed statement), 2 invalid arguments.
    /// Every failure is one line on stderr.
    Migrate(commands::migrate::MigrateArgs),
    /// Drop the partitions of ringtrail.logs older than --keep, whole
    /// (never DELETE), recording each in ringtrail.retention_log.
    ///
    /// Exit codes: 0 done, 1 runtime error (malformed database URL,
    /// unreachable database, failed statement), 2 invalid arguments (a
    /// bad --keep). Every failure is one line on stderr.
    Retention(commands::retention::RetentionArgs),
    /// Print the rows the filters keep, oldest first, up to --limit:
    /// human lines, or --json (one object per row), or --format.
    ///
    /// Only --since and --until use an index (BRIN on ts, and partition
    /// pruning); --level, --target, --trace-id, --user, --session, --grep
    /// and --field filter the rows of that window.
    ///
    /// Exit codes: 0 done, 1 the database could not be reached or queried
    /// (a malformed URL included), 2 invalid arguments. Every failure is
    /// one line on stderr.
    Query(commands::query::QueryArgs),
    /// Print the last rows; with -f, follow every row as its batch
    /// commits (exactly once, whatever order writers commit in,
    /// surviving a server restart).
    ///
    /// --show-cursor prints `cursor <c>` on stderr; --after <c> resumes
    /// there. Exit codes: 0 done, 1 the database could not be reached or
    /// queried at the start (a malformed URL included), 2 invalid
    /// arguments. Every failure is one line on stderr.
    Tail(commands::tail::TailArgs),
    /// Rows per level and per day, table and partition sizes, the
    /// ledger's last hour, dead letters, the spool's size, the oldest and
    /// newest rows; --json prints one document.
    ///
    /// Exit codes: 0 done, 1 the database could not be reached or queried
    /// (a malformed URL included), 2 invalid arguments. Every failure is
    /// one line on stderr.
    Stats(commands::stats::StatsArgs),
    /// Check the tamper evidence: rows against their batch digests, the
    /// hash chain's links, the signed checkpoints.
    ///
    /// Every batch's rows (dead letters included) are recomputed into the
    /// digest its ledger row committed; the chain is walked by seq; the
    /// checkpoints in ringtrail.checkpoints and, with --checkpoints, in
    /// the writer's checkpoint file are checked. Human output: one line
    /// per finding, then `verified N batches, M rows in K chains: clean`
    /// (or `: F findings`); --json: one object per finding, nothing else.
    ///
    /// Without --public-key (or, with --checkpoints, this user's default
    /// ~/.local/share/ringtrail/checkpoint.key.pub),
    /// signatures are checked against the key stored in each checkpoint
    /// row, which is weaker: whoever can rewrite the table can replace
    /// the key.
    ///
    /// Exit codes: 0 everything verifies, 3 tampering found, 1 an error
    /// (the database could not be reached or queried, a malformed URL, a
    /// key or checkpoint file that cannot be read), 2 invalid arguments.
    /// Every failure is one line on stderr.
    Verify(commands::verify::VerifyArgs),
    /// Receive OpenTelemetry logs and spans over OTLP/HTTP (protobuf or
    /// JSON, gzip) and OTLP/gRPC, and write them through the pipeline:
    /// redaction, audit points from the GenAI and MCP conventions, the
    /// chain, partitions. Runs in the foreground; SIGINT or SIGTERM stops
    /// it, flushing first.
    ///
    /// A record is answered 200 only once it is in the ring; 429 or 503
    /// (with Retry-After) means none of the request's records were taken.
    /// The chosen ports are printed on stderr.
    ///
    /// Exit codes: 0 stopped cleanly, 1 a runtime error (an address in
    /// use, an unreadable certificate, a database that cannot be
    /// reached, rows not committed at shutdown), 2 invalid arguments (a
    /// non-loopback address without --token included). Every failure is
    /// one line on stderr.
    Serve(commands::serve::ServeArgs),
    /// Load one shard's batches from a NATS JetStream stream into its
    /// PostgreSQL, exactly once (scale-out: producers built with
    /// `Builder::nats`, or `ringtrail serve --nats`, publish them). Runs
    /// in the foreground until SIGTERM or SIGINT; several workers on one
    /// shard share its work. Progress and lag go to stderr.
    ///
    /// Exit codes: 0 stopped by a signal (after finishing or releasing
    /// the batch in hand), 1 cannot start (PostgreSQL or NATS
    /// unreachable), 2 invalid arguments. Every failure is one line on
    /// stderr.
    Sink(commands::sink::SinkArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return commands::parse_failed(e),
    };
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Trace(args) => commands::trace::run(args),
        Command::AuditGaps(args) => commands::audit_gaps::run(args),
        Command::Usage(args) => commands::usage::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Retention(args) => commands::retention::run(args),
        Command::Query(args) => commands::query::run(args),
        Command::Tail(args) => commands::tail::run(args),
        Command::Stats(args) => commands::stats::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Sink(args) => commands::sink::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            commands::report_error(&*e);
            commands::exit_code(&*e)
        }
    }
}
