//! Which failures are worth retrying, and how long to wait between tries.
//!
//! * **Connection class** (`08*`, `57P01` admin shutdown, `57P03` cannot
//!   connect now, `53300` too many connections, `40001` serialization,
//!   `40P01` deadlock, a closed connection, an I/O error, a client-side
//!   timeout): retry the whole batch with exponential backoff and jitter.
//! * **Data class** (`22*`, `23*`): one row is bad. Retrying the batch
//!   would fail again; quarantine the row instead. One exception: a row
//!   routed to the DEFAULT partition while a partition for its range was
//!   being attached fails its partition constraint (`23514`, "violates
//!   partition constraint", no constraint name). Nothing is wrong with
//!   the row: retried, it lands in the new partition.
//! * **A stall** (PostgreSQL accepted the connection but stopped answering
//!   for `stall_timeout`): the server counts as down at once; the batch
//!   goes to the spool, its outcome unknown, and is resolved through the
//!   ledger when the server answers a probe again.
//! * **Configuration** (class `28` authentication, `3D000` unknown
//!   database, a missing password or a bad connection setting): permanent.
//!   `build()` fails at once, even with a spool: spooling for hours
//!   against a wrong password helps no one.
//! * Anything else (a missing table, a permission error): retrying soon
//!   will not help, so the batch goes to the spool to be replayed later.

use std::time::Duration;

use crate::ids::Xorshift;
use crate::Error;

/// What to do about a failed batch.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Transient: retry after a backoff.
    Retry(Error),
    /// A row is bad. `line` is its 1-based position in the batch when the
    /// server said (`COPY logs, line N`).
    Data { line: Option<usize>, error: Error },
    /// The server stopped answering: do not retry, count it down.
    Stalled(Error),
    /// Will not heal by retrying soon.
    Fatal(Error),
}

/// SQLSTATEs worth retrying besides class `08` (connection exception):
/// shutdowns and restarts, too many connections, serialization failure,
/// deadlock, a cancelled statement, and a read-only transaction (a
/// standby, right after a failover, until the new primary takes over).
const RETRYABLE: [&str; 8] = [
    "57P01", "57P02", "57P03", "53300", "40001", "40P01", "57014", "25006",
];

/// SQLSTATEs that say the connection settings are wrong: invalid
/// authorization (class 28, which also covers an unknown role and a
/// `pg_hba.conf` that wants TLS) and an unknown database.
fn is_configuration_code(code: &str) -> bool {
    code.starts_with("28") || code == "3D000"
}

/// Whether `error` says the connection settings are wrong, so that trying
/// again cannot help: the server refused the credentials or the database,
/// or the client could not even use the settings (a missing password, an
/// authentication method it cannot do). `tokio_postgres` does not expose
/// its error kinds, so the client-side ones are told by their text.
pub(crate) fn is_configuration(error: &Error) -> bool {
    match error {
        Error::Migration { source, .. } => is_configuration(source),
        _ => error.postgres().is_some_and(|pg| match pg.as_db_error() {
            Some(db) => is_configuration_code(db.code().code()),
            None => matches!(
                pg.to_string().as_str(),
                "invalid configuration" | "authentication error" | "invalid connection string"
            ),
        }),
    }
}

/// Whether retrying the same batch soon may succeed: a connection-class
/// server error, or no server error at all (a closed connection, an I/O
/// error, a pool or client-side timeout), also beneath a failed migration.
pub(crate) fn is_transient(error: &Error) -> bool {
    if is_configuration(error) {
        return false;
    }
    match error {
        Error::Timeout(_) | Error::Io(_) | Error::Stalled { .. } => true,
        Error::Pool(pool) => pool.postgres().is_none_or(is_transient_postgres),
        Error::Postgres(pg) => is_transient_postgres(pg),
        Error::Migration { source, .. } => is_transient(source),
        _ => false,
    }
}

fn is_transient_postgres(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_none_or(|db| {
        let code = db.code().code();
        code.starts_with("08")
            || RETRYABLE.contains(&code)
            || is_partition_race(code, db.constraint(), db.message())
    })
}

/// A row routed by a partition layout that changed under it (a
/// partition attached while the COPY ran): the default partition's
/// constraint, which PostgreSQL checks again for that reason, refuses it.
/// A CHECK constraint's violation names its constraint; this one names
/// none.
fn is_partition_race(code: &str, constraint: Option<&str>, message: &str) -> bool {
    code == "23514" && constraint.is_none() && message.contains("violates partition constraint")
}

/// Sorts an error into a [`Failure`].
pub(crate) fn classify(error: Error) -> Failure {
    if matches!(error, Error::Stalled { .. }) {
        return Failure::Stalled(error);
    }
    if is_transient(&error) {
        return Failure::Retry(error);
    }
    let line = match &error {
        Error::Postgres(pg) => pg.as_db_error().and_then(|db| {
            let code = db.code().code();
            (code.starts_with("22") || code.starts_with("23"))
                .then(|| db.where_().and_then(copy_line))
        }),
        _ => None,
    };
    match line {
        Some(line) => Failure::Data { line, error },
        None => Failure::Fatal(error),
    }
}

/// Extracts N from a COPY error context such as
/// `COPY logs, line 3, column message: "…"`.
pub(crate) fn copy_line(context: &str) -> Option<usize> {
    let rest = &context[context.find("COPY ")?..];
    let rest = &rest[rest.find(", line ")? + ", line ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// Exponential backoff with jitter: 50 ms, 100 ms, 200 ms … capped at
/// `max`, each scaled by a random factor in [0.5, 1.5) so that many
/// writers restarting together do not retry in lockstep.
pub(crate) struct Backoff {
    rng: Xorshift,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(seed: u64, max: Duration) -> Backoff {
        Backoff {
            rng: Xorshift::new(seed),
            max,
        }
    }

    pub(crate) fn delay(&mut self, attempt: u32) -> Duration {
        let base = Duration::from_millis(50)
            .saturating_mul(1 << attempt.min(16))
            .min(self.max);
        let factor = 0.5 + self.rng.next_unit();
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_attached_under_a_copy_is_retried_not_quarantined() {
        let race = "new row for relation \"logs_default\" violates partition constraint";
        assert!(is_partition_race("23514", None, race));
        let check = "new row for relation \"logs\" violates check constraint \"no_poison\"";
        assert!(!is_partition_race("23514", Some("no_poison"), check));
        assert!(!is_partition_race("23502", None, race));
    }

    #[test]
    fn copy_line_is_found_in_the_error_context() {
        assert_eq!(
            copy_line("COPY logs, line 3, column message: \"x\""),
            Some(3)
        );
        assert_eq!(copy_line("COPY logs, line 12"), Some(12));
        assert_eq!(copy_line("SQL statement \"…\"\nCOPY logs, line 7"), Some(7));
        assert_eq!(copy_line("PL/pgSQL function f() line 3 at RAISE"), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut b = Backoff::new(42, Duration::from_secs(2));
        let d1 = b.delay(1);
        assert!(d1 >= Duration::from_millis(50) && d1 < Duration::from_millis(150));
        for _ in 0..100 {
            let d = b.delay(30);
            assert!(d >= Duration::from_secs(1) && d < Duration::from_secs(3));
        }
    }
}
