//! The crate's one error type.
//!
//! Every fallible public call returns [`Error`]. The variants say which stage
//! failed, so a caller can tell a bad configuration (fix the code) from an
//! unreachable database (retry later) from a missing PostgreSQL installation
//! (install something).

use std::fmt;

/// Everything that can go wrong in ringtrail.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is invalid; the message names it.
    Config(String),
    /// PostgreSQL reported an error, or the connection failed.
    Postgres(tokio_postgres::Error),
    /// The connection pool could not hand out a connection.
    Pool(String),
    /// A schema migration failed; the message names the migration.
    Migration(String),
    /// An operating-system call failed (spawning the writer, files, processes).
    Io(std::io::Error),
    /// The throwaway PostgreSQL cluster could not be found, created or started.
    Cluster(String),
    /// An operation did not finish before its deadline.
    Timeout(&'static str),
    /// The writer thread is gone (it panicked, or the guard was already shut down).
    WriterGone,
    /// A batch could not be written; the message carries the cause.
    Write(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "postgres error {}: {}", db.code().code(), db.message()),
                None => write!(f, "postgres error: {e}"),
            },
            Error::Pool(m) => write!(f, "connection pool error: {m}"),
            Error::Migration(m) => write!(f, "migration failed: {m}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Cluster(m) => write!(f, "throwaway PostgreSQL cluster: {m}"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
            Error::WriterGone => f.write_str("the ringtrail writer thread is not running"),
            Error::Write(m) => write!(f, "batch write failed: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Postgres(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
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
