//! The cluster's own error type.
//!
//! It is separate from `ringtrail::Error` because a cluster is not part of
//! the logging pipeline: it is a test, demo and local-store aid.

use std::fmt;
use std::sync::Arc;

/// Everything that can go wrong while finding, creating, starting, stopping
/// or using a throwaway PostgreSQL cluster or a [`LocalStore`].
///
/// [`LocalStore`]: super::LocalStore
///
/// The wrapping variants ([`Io`](Self::Io), [`Postgres`](Self::Postgres),
/// [`Shared`](Self::Shared)) say what was being done and hand the cause out
/// through [`std::error::Error::source`], so their `Display` does not repeat
/// it: print the whole chain to see everything.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// Something the cluster needs is not there: the PostgreSQL server
    /// binaries, or (when running as root) the `postgres` account to run them
    /// as. The message says what to install.
    Missing(String),
    /// `initdb` or `pg_ctl` failed, or every free port tried was taken. The
    /// message carries the program's output and, for a failed start, the end
    /// of the server log.
    Setup(String),
    /// `DATABASE_URL` is neither a `postgres://`/`postgresql://` URL nor a
    /// `key=value` connection string; the value is the offending variable.
    BadUrl(String),
    /// An operating-system call failed (directories, ports, processes).
    Io(std::io::Error),
    /// The server reported an error, or the connection to it failed.
    Postgres(tokio_postgres::Error),
    /// An administrative statement did not finish before its deadline; the
    /// text says which.
    Timeout(&'static str),
    /// The process-wide cluster of [`TempCluster::shared`] failed to start
    /// earlier; the source is the original failure, shared by every caller.
    ///
    /// [`TempCluster::shared`]: super::TempCluster::shared
    Shared(Arc<ClusterError>),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Missing(m) | ClusterError::Setup(m) => {
                write!(f, "PostgreSQL cluster: {m}")
            }
            ClusterError::BadUrl(url) => write!(
                f,
                "DATABASE_URL must be a postgres:// or postgresql:// URL or a key=value \
                 connection string, not {url:?}"
            ),
            ClusterError::Io(_) => f.write_str("PostgreSQL cluster: i/o error"),
            ClusterError::Postgres(_) => f.write_str("PostgreSQL cluster: database server error"),
            ClusterError::Timeout(what) => write!(f, "timed out: {what}"),
            ClusterError::Shared(_) => f.write_str("the shared throwaway cluster failed to start"),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Io(e) => Some(e),
            ClusterError::Postgres(e) => Some(e),
            ClusterError::Shared(e) => Some(&**e),
            ClusterError::Missing(_)
            | ClusterError::Setup(_)
            | ClusterError::BadUrl(_)
            | ClusterError::Timeout(_) => None,
        }
    }
}

impl From<std::io::Error> for ClusterError {
    fn from(e: std::io::Error) -> Self {
        ClusterError::Io(e)
    }
}

impl From<tokio_postgres::Error> for ClusterError {
    fn from(e: tokio_postgres::Error) -> Self {
        ClusterError::Postgres(e)
    }
}

/// Shorthand for `Result<T, ClusterError>`.
pub type Result<T> = std::result::Result<T, ClusterError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<ClusterError>();
    }

    #[test]
    fn wrappers_hand_out_their_cause_without_repeating_it() {
        let io = ClusterError::from(std::io::Error::other("disk on fire"));
        assert!(!io.to_string().contains("disk on fire"), "{io}");
        assert_eq!(io.source().unwrap().to_string(), "disk on fire");

        let shared = ClusterError::Shared(Arc::new(io));
        assert!(!shared.to_string().contains("i/o"), "{shared}");
        let first = shared.source().unwrap();
        assert_eq!(first.to_string(), "PostgreSQL cluster: i/o error");
        assert_eq!(first.source().unwrap().to_string(), "disk on fire");
    }

    #[test]
    fn messages_have_no_source() {
        for error in [
            ClusterError::Missing("no initdb".into()),
            ClusterError::Setup("initdb failed".into()),
            ClusterError::BadUrl("mysql://h".into()),
            ClusterError::Timeout("CREATE DATABASE"),
        ] {
            assert!(error.source().is_none(), "{error}");
        }
        assert!(ClusterError::BadUrl("mysql://h".into())
            .to_string()
            .contains("\"mysql://h\""));
    }
}
