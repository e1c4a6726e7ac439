//! The crate's one error type.
//!
//! Every fallible public call returns [`Error`]. The variants say which stage
//! failed, so a caller can tell a bad configuration (fix the code) from an
//! unreachable database (retry later). Causes are kept, not flattened to
//! text: [`source()`](std::error::Error::source) walks down from a ringtrail
//! error to the `tokio_postgres::Error` and on to the `io::Error` beneath
//! it, and a display of one level never repeats the level below.
//!
//! ```
//! use std::error::Error as _;
//!
//! // Nothing listens on port 1.
//! let err = ringtrail::Builder::new()
//!     .postgres("postgres://app@127.0.0.1:1/app")
//!     .build()
//!     .unwrap_err();
//! let mut chain = vec![err.to_string()];
//! let mut source = err.source();
//! while let Some(cause) = source {
//!     chain.push(cause.to_string());
//!     source = cause.source();
//! }
//! assert_eq!(chain[0], "cannot connect to 127.0.0.1:1");
//! assert!(chain.last().unwrap().contains("refused"), "{chain:?}");
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Stats;

/// Everything that can go wrong in ringtrail.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is invalid; the message names it.
    Config(String),
    /// The redaction configuration does not compile (a user pattern, an
    /// HMAC key): `build()` fails rather than run without redaction. The
    /// message never contains a pattern's text or a key.
    Redaction(crate::redact::RedactionError),
    /// PostgreSQL reported an error, or the connection failed. The
    /// `tokio_postgres::Error` is the [`source`](std::error::Error::source).
    Postgres(tokio_postgres::Error),
    /// No connection could be had: connecting failed, or none came within
    /// the timeout.
    Pool(PoolError),
    /// A batch's id is taken in `ringtrail.batches` by a ledger row this
    /// batch did not write (other rows, bytes or link): the shipper then
    /// commits the batch under an id derived from its own.
    LedgerKeyTaken {
        /// The batch's id, as text.
        batch_id: String,
    },
    /// A schema migration failed.
    Migration {
        /// The migration, e.g. `0002_delivery`.
        version: &'static str,
        /// Why (usually [`Error::Postgres`]).
        source: Box<Error>,
    },
    /// An operating-system call failed (spawning the writer, files, processes).
    Io(std::io::Error),
    /// An operation did not finish before its deadline.
    Timeout(&'static str),
    /// The writer thread is gone (it panicked, or the guard was already shut down).
    WriterGone,
    /// PostgreSQL accepted the connection but made no progress for the
    /// stall timeout: a frozen server, a stuck disk, a network path that
    /// drops packets. The server counts as down until a probe answers.
    Stalled {
        /// What was waiting, e.g. `committing a batch`.
        what: &'static str,
        /// How long nothing happened.
        after: Duration,
    },
    /// The database was slower than the inflow for longer than the batch
    /// queue absorbs, so a batch went to the spool instead (to be replayed
    /// when it catches up).
    Backlog {
        /// Bytes of sealed batches waiting for the database then.
        queued: usize,
    },
    /// Another pipeline (in this process or another) holds the spool
    /// directory's lock: two owners would replay each other's segments.
    SpoolInUse {
        /// The directory.
        dir: PathBuf,
    },
    /// `Guard::shutdown` did not finish cleanly; `stats` are the counters as
    /// it left them (they add up: what was not committed is spooled or
    /// counted lost).
    Shutdown {
        /// The final counters (boxed: they are larger than every other
        /// variant).
        stats: Box<Stats>,
        /// What went wrong.
        source: Box<Error>,
    },
    /// The message bus of a scale-out pipeline (NATS JetStream) failed:
    /// unreachable, no acknowledgement within the stall timeout, or it
    /// refused a message. `what` says what was being done, `source` (the
    /// client's error) why.
    Transport {
        /// What was being done, e.g. `publishing a batch`.
        what: &'static str,
        /// The client's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A batch holding some of the flushed events could not be committed.
    Write {
        /// Where its rows went instead.
        fate: Fate,
        /// Why it could not be committed.
        source: Arc<Error>,
    },
}

/// What became of a batch that could not be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// Its rows are in the spool on disk and will be replayed, exactly once.
    Spooled,
    /// Its rows are gone (no spool configured, the spool full, or a disk
    /// error), counted in [`Stats::lost`](crate::Stats::lost).
    Lost,
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fate::Spooled => "spooled",
            Fate::Lost => "lost",
        })
    }
}

/// Why no connection could be had from the pool, and to which server.
#[derive(Debug)]
pub struct PoolError {
    target: String,
    inner: deadpool_postgres::PoolError,
}

impl PoolError {
    pub(crate) fn new(target: String, inner: deadpool_postgres::PoolError) -> PoolError {
        PoolError { target, inner }
    }

    /// The server it tried: `host:port`, or the socket directory.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The PostgreSQL error behind it, when connecting failed (rather than
    /// timing out).
    pub fn postgres(&self) -> Option<&tokio_postgres::Error> {
        match &self.inner {
            deadpool_postgres::PoolError::Backend(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the pool gave up waiting rather than being refused.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner, deadpool_postgres::PoolError::Timeout(_))
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use deadpool_postgres::PoolError as P;
        match &self.inner {
            P::Backend(_) => write!(f, "cannot connect to {}", self.target),
            P::Timeout(_) => write!(f, "no connection to {} in time", self.target),
            P::Closed => f.write_str("the connection pool is closed"),
            other => write!(f, "connection pool: {other}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner {
            deadpool_postgres::PoolError::Backend(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Redaction(_) => f.write_str("invalid redaction configuration"),
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "postgres error {}", db.code().code()),
                None => f.write_str("postgres error"),
            },
            Error::Pool(e) => e.fmt(f),
            Error::Migration { version, .. } => write!(f, "migration {version} failed"),
            Error::LedgerKeyTaken { batch_id } => write!(
                f,
                "the ledger key of batch {batch_id} is taken by a row it did not write"
            ),
            Error::Io(_) => f.write_str("i/o error"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
            Error::WriterGone => f.write_str("the ringtrail writer thread is not running"),
            Error::Write { fate, .. } => write!(f, "a batch could not be committed ({fate})"),
            Error::Transport { what, .. } => write!(f, "NATS: {what} failed"),
            Error::Stalled { what, after } => write!(
                f,
                "PostgreSQL stopped answering while {what} (nothing for {:.1} s)",
                after.as_secs_f64()
            ),
            Error::Backlog { queued } => write!(
                f,
                "the database is behind ({} MiB of batches queued)",
                queued >> 20
            ),
            Error::SpoolInUse { dir } => write!(
                f,
                "spool directory {} is in use by another ringtrail pipeline",
                dir.display()
            ),
            Error::Shutdown { stats, .. } => write!(
                f,
                "shutdown incomplete ({} written, {} spooled, {} lost)",
                stats.written, stats.spooled, stats.lost
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Postgres(e) => Some(e),
            Error::Pool(e) => Some(e),
            Error::Migration { source, .. } => Some(&**source),
            Error::Io(e) => Some(e),
            Error::Write { source, .. } => Some(&**source),
            Error::Transport { source, .. } => Some(&**source),
            Error::Shutdown { source, .. } => Some(&**source),
            Error::Redaction(e) => Some(e),
            Error::Config(_)
            | Error::Timeout(_)
            | Error::WriterGone
            | Error::Stalled { .. }
            | Error::Backlog { .. }
            | Error::SpoolInUse { .. }
            | Error::LedgerKeyTaken { .. } => None,
        }
    }
}

impl Error {
    /// The PostgreSQL error at the bottom of this one, if any: the error
    /// itself, a pool's connect failure, a failed migration's cause, or a
    /// failed batch's cause.
    pub fn postgres(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Error::Postgres(e) => Some(e),
            Error::Pool(e) => e.postgres(),
            Error::Migration { source, .. } => source.postgres(),
            Error::Write { source, .. } => source.postgres(),
            Error::Shutdown { source, .. } => source.postgres(),
            _ => None,
        }
    }

    /// The SQLSTATE the server reported, if it reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        self.postgres()?.as_db_error().map(|db| db.code().code())
    }

    /// One line: this error and its whole cause chain joined by `": "`.
    /// A cause whose text the line already holds is skipped, and so is
    /// `tokio_postgres`'s bare "db error" (the server's message follows it).
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// Formats any error and its [`source`](std::error::Error::source) chain on
/// one line, as the CLI prints it, e.g.
/// `cannot connect to 127.0.0.1:1: error connecting to server: Connection
/// refused (os error 111)`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if text != "db error" && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', "; ")
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// Shorthand for `Result<T, ringtrail::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The longest any duration setting may be: long enough for any real use,
/// short enough that adding it to `Instant::now()` cannot overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// [`Error::Config`] naming `name` unless `duration` is at most
/// [`MAX_DURATION`]; each stage's `validate` runs its durations through it.
pub(crate) fn check_duration(name: &str, duration: Duration) -> Result<()> {
    if duration > MAX_DURATION {
        return Err(Error::Config(format!(
            "{name} must be at most a year (got {duration:?})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a fixed text and an optional cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn layers(texts: &[&'static str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |cause, text| Some(Layer(text, cause.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn a_chain_is_one_line_and_skips_what_it_already_said() {
        let error = layers(&["the shared cluster failed", "i/o error", "No such file"]);
        assert_eq!(
            chain(&error),
            "the shared cluster failed: i/o error: No such file"
        );
        assert_eq!(chain(&layers(&["alone"])), "alone");
        let repeated = layers(&["database error", "db error: ERROR: boom", "ERROR: boom"]);
        assert_eq!(chain(&repeated), "database error: db error: ERROR: boom");
        let generic = layers(&["postgres error 23505", "db error", "ERROR: dup\nDETAIL: x"]);
        assert_eq!(
            chain(&generic),
            "postgres error 23505: ERROR: dup; DETAIL: x"
        );
    }

    #[test]
    fn the_chain_reaches_the_os_error_without_repeating_itself() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let failed = Error::Write {
            fate: Fate::Spooled,
            source: Arc::new(Error::Io(io)),
        };
        assert_eq!(
            failed.chain(),
            "a batch could not be committed (spooled): i/o error: refused"
        );
        let timeout = Error::Migration {
            version: "0001_logs",
            source: Box::new(Error::Timeout("applying migrations")),
        };
        assert_eq!(
            timeout.chain(),
            "migration 0001_logs failed: timed out: applying migrations"
        );
    }
}
