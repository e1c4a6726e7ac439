//! The `ringtrail` binary's subcommands, one module each, and what they
//! share: the result type, how a failure is reported, the output
//! conventions ([`output`]) and the row filters ([`filter`]).
//!
//! # Conventions (every subcommand)
//!
//! - **Connection:** `--database-url`, or `DATABASE_URL`; without
//!   either, the local store in `--data-dir` (or `RINGTRAIL_DATA_DIR`,
//!   or the default directory), created and started when needed
//!   ([`db::DatabaseArgs::resolve`]). `query`, `export`, `trace`,
//!   `audit-gaps`, `stats`, `usage`, `verify` and `serve --read-only` take `--database-url`
//!   once per shard of a sharded cluster ([`db::DatabaseArgs::resolve_all`],
//!   [`db::Shards`]); the others refuse several (exit 2).
//! - **Exit codes:** 0 success; 1 an error at run time, an unreachable
//!   database and a malformed database URL included (and `trace` of an
//!   unknown trace id); 2 a usage error: an unknown command or flag, a
//!   missing argument, a bad flag value (a duration, a level, a cursor);
//!   3 `verify` found tampering.
//! - **Mistakes are one line on stderr**, `ringtrail: …`, never a panic
//!   or a backtrace.
//! - **Output:** human-readable by default, colored on a terminal only
//!   (`--color auto|always|never`, `NO_COLOR` honoured); `--json` prints
//!   data only on stdout (one JSON object per row, or one document for a
//!   summary); status and progress go to stderr.
//! - **Output cannot attack the reader:** every byte goes out through
//!   [`output`] (a [`output::Printer`] on stdout, [`output::eprint_line`]
//!   on stderr, [`output::Progress`] bars), which escapes control and
//!   bidi/zero-width characters from stored text (`\u{1b}` in human
//!   output, `\u001b` in JSON). A command never writes to stdout or
//!   stderr itself; a test fails if one does.
//! - **Times:** `--since` and `--until` take `15m`, `2h`, `7d` or an
//!   RFC 3339 instant ([`ringtrail::time::When`]).

pub mod audit_gaps;
pub mod db;
pub mod demo;
pub mod export;
pub mod filter;
pub mod migrate;
pub mod output;
pub mod query;
pub mod retention;
pub mod serve;
pub mod sink;
pub mod stats;
pub mod tail;
pub mod trace;
pub mod usage;
pub mod verify;

use std::error::Error;
use std::fmt;
use std::process::ExitCode;

/// What a subcommand returns. Its error is reported by [`report_error`].
pub type CliResult = Result<(), Box<dyn Error + Send + Sync>>;

/// Prints `error` on one line of stderr: `ringtrail: ` followed by the error
/// and its whole [`source`](Error::source) chain
/// ([`ringtrail::error::chain`]), escaped as all output is
/// ([`output::eprint_line`]): a cause may quote stored text.
pub fn report_error(error: &(dyn Error + 'static)) {
    output::eprint_line(format_args!(
        "ringtrail: {}",
        ringtrail::error::chain(error)
    ));
}

/// Exit code: an error at run time. What any failure that is not a
/// usage error exits with.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: invalid arguments, clap's own usage errors included.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: `ringtrail verify` found tampering (its findings are the
/// output; one line on stderr says how many).
pub const EXIT_TAMPERED: u8 = 3;

/// A subcommand failure that exits with its own code rather than 1.
/// Displays as its error, whose causes it keeps.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: Box<dyn Error + Send + Sync>,
}

impl Failure {
    /// A failure exiting with `code`.
    pub fn new(code: u8, error: impl Into<Box<dyn Error + Send + Sync>>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }

    /// An invalid argument: exit code [`EXIT_USAGE`].
    pub fn usage(error: impl Into<Box<dyn Error + Send + Sync>>) -> Failure {
        Failure::new(EXIT_USAGE, error)
    }

    /// A database that cannot be reached or queried: exit code
    /// [`EXIT_RUNTIME`]. `doing` says what failed, e.g. `cannot connect`.
    pub fn database(doing: &str, error: impl Error + Send + Sync + 'static) -> Failure {
        Failure::new(
            EXIT_RUNTIME,
            Context {
                doing: doing.to_owned(),
                source: Box::new(error),
            },
        )
    }
}

impl Failure {
    /// A runtime failure, exit code 1: `doing` says what failed, e.g.
    /// `cannot connect to the database`, the cause kept as the source.
    pub fn runtime(doing: &str, error: impl Into<Box<dyn Error + Send + Sync>>) -> Failure {
        Failure::new(
            1,
            Context {
                doing: doing.to_owned(),
                source: error.into(),
            },
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

/// "`doing`: cause", the cause kept as the source.
#[derive(Debug)]
struct Context {
    doing: String,
    source: Box<dyn Error + Send + Sync>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.doing)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// The exit code for a subcommand's error: a [`Failure`]'s own, else 1.
pub fn exit_code(error: &(dyn Error + 'static)) -> ExitCode {
    error
        .downcast_ref::<Failure>()
        .map_or(ExitCode::FAILURE, |f| ExitCode::from(f.code))
}

/// Handles a command line clap refused. An invalid value (a bad
/// `--since`, `--grace`, ...) is one line on stderr,
/// `ringtrail: --since: "abc": ...`, and exit code [`EXIT_USAGE`]; every
/// other case (help, version, unknown or missing arguments) is clap's
/// own output and exit code.
pub fn parse_failed(error: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match error.kind() {
        ErrorKind::ValueValidation => {}
        // Help and version are output, not mistakes: clap prints them.
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
        // Any other mistake (a missing or unknown argument, a bad
        // subcommand): clap's message folded onto one line.
        _ => {
            output::eprint_line(format_args!(
                "ringtrail: {} (see --help)",
                one_line(&error.render().to_string())
            ));
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.split([' ', '=']).next().unwrap_or(arg).to_owned(),
        _ => "argument".to_owned(),
    };
    let why = match Error::source(&error) {
        Some(cause) => ringtrail::error::chain(cause),
        None => error.kind().to_string(),
    };
    output::eprint_line(format_args!("ringtrail: {arg}: {why}"));
    ExitCode::from(EXIT_USAGE)
}

/// clap's multi-line message on one line: its `error: …` line with the
/// indented names under it, without the usage and the hint to `--help`.
fn one_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Usage:") || line.starts_with("For more information")
        {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use ringtrail::error::chain;

    #[test]
    fn clap_messages_fold_onto_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --database-url <URL>\n  <TRACE_ID>\n\nUsage: ringtrail trace --database-url <URL> <TRACE_ID>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(rendered),
            "the following required arguments were not provided: --database-url <URL> <TRACE_ID>"
        );
    }

    #[test]
    fn subcommand_errors_print_on_one_line() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no initdb");
        let error = ringtrail_cluster::ClusterError::Io(io);
        assert_eq!(chain(&error), "PostgreSQL cluster: i/o error: no initdb");
        let boxed: Box<dyn std::error::Error + Send + Sync> = "row count 1 != 2".into();
        assert_eq!(chain(&*boxed), "row count 1 != 2");
    }
}
