//! What the builder fills in for the PostgreSQL sink: [`PostgresConfig`],
//! and the option values of its groups, [`Spool`] and [`Partitions`], each
//! with its defaults and the checks `build()` runs on it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::check_duration;
use crate::schema::partitions::{self, DEFAULT_AHEAD, DEFAULT_WIDTH};
use crate::{Error, Result};

/// The disk spool: batches that cannot reach PostgreSQL go to segment
/// files in a directory (each a valid binary COPY file), and are replayed,
/// exactly once, when it answers again. Segments left by a previous
/// process are replayed at start. With a spool, `build()` succeeds even
/// while PostgreSQL is down. Set with
/// [`Builder::spool`](crate::Builder::spool); no spool by default.
///
/// | setting | default |
/// |---|---|
/// | [`dir`](Spool::dir) | none: required |
/// | [`max_bytes`](Spool::max_bytes) | 1 GiB |
/// | [`after`](Spool::after) | 5 s |
///
/// ```no_run
/// use std::time::Duration;
/// use ringtrail::Spool;
///
/// let (layer, guard) = ringtrail::Builder::new()
///     .postgres("postgres://app@db/app")
///     .spool(
///         Spool::dir("/var/spool/app")
///             .max_bytes(4 << 30)
///             .after(Duration::from_secs(2)),
///     )
///     .build()?;
/// # Ok::<(), ringtrail::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spool {
    pub(crate) dir: PathBuf,
    pub(crate) max_bytes: u64,
    /// Spool once PostgreSQL has been failing this long.
    pub(crate) after: Duration,
}

impl Spool {
    /// The default [`max_bytes`](Spool::max_bytes): 1 GiB.
    const MAX_BYTES: u64 = 1 << 30;
    /// The default [`after`](Spool::after): 5 s.
    pub(crate) const AFTER: Duration = Duration::from_secs(5);

    /// A spool in `dir` (created 0700 if missing; one pipeline at a time,
    /// by a lock file), with the defaults. `build()` refuses a `dir` that
    /// is a symbolic link, that another user owns, or that group or others
    /// can write; segments are authenticated with a key kept in `dir`, and
    /// one that is not (planted, or another spool's) is set aside, never
    /// replayed (`Stats::spool_refused`; docs/delivery.md).
    pub fn dir(dir: impl Into<PathBuf>) -> Spool {
        Spool {
            dir: dir.into(),
            max_bytes: Self::MAX_BYTES,
            after: Self::AFTER,
        }
    }

    /// The most disk the spool may use (default 1 GiB), set-aside
    /// `.corrupt` and `.refused` files included. Batches beyond it are
    /// lost and counted in [`Stats::lost`](crate::Stats::lost); a segment
    /// file larger than it is never read.
    pub fn max_bytes(mut self, bytes: u64) -> Spool {
        self.max_bytes = bytes;
        self
    }

    /// How long PostgreSQL may keep failing before batches go to the spool
    /// without waiting for the retries to run out (default 5 s).
    pub fn after(mut self, after: Duration) -> Spool {
        self.after = after;
        self
    }

    /// [`Error::Config`] for a wait over a year.
    pub(crate) fn validate(&self) -> Result<()> {
        check_duration("the spool's after", self.after)
    }
}

/// The partitions of `ringtrail.logs`: their width, how far ahead of
/// today they exist, and how long they are kept. Set with
/// [`Builder::partitions`](crate::Builder::partitions).
///
/// The shipper's first lane creates the partitions ahead and applies the
/// retention, on a connection of its own, once after connecting and then
/// hourly (every 5 minutes after a failure, which is one line on stderr
/// and never fails ingest: rows without a partition land in the DEFAULT
/// partition). It runs only when migrations are applied
/// ([`Builder::migrate`](crate::Builder::migrate)); with `.migrate(false)`,
/// run `ringtrail migrate` (daily is enough with the default 3 days ahead).
///
/// | setting | default | range |
/// |---|---|---|
/// | width ([`daily`](Partitions::daily), [`hourly`](Partitions::hourly), [`every`](Partitions::every)) | one day | 1 h to 366 days, whole seconds |
/// | [`ahead`](Partitions::ahead) | 3 days | at most 366 |
/// | [`retention`](Partitions::retention) | off: nothing is dropped | up to 100 years |
///
/// ```no_run
/// use std::time::Duration;
/// use ringtrail::Partitions;
///
/// let (layer, guard) = ringtrail::Builder::new()
///     .postgres("postgres://app@db/app")
///     .partitions(
///         Partitions::daily()
///             .ahead(7)
///             .retention(Duration::from_secs(90 * 86_400)),
///     )
///     .build()?;
/// # Ok::<(), ringtrail::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Partitions {
    /// Width of a partition (one day).
    pub(crate) width: Duration,
    /// Days ahead of today with partitions (3).
    pub(crate) ahead: u32,
    /// Drop partitions older than this; none when unset.
    pub(crate) retention: Option<Duration>,
}

/// The longest [`Partitions::retention`]: 100 years.
const MAX_RETENTION: Duration = Duration::from_secs(100 * 366 * 86_400);

impl Partitions {
    /// How often the upkeep runs once it succeeded.
    pub(crate) const UPKEEP_EVERY: Duration = Duration::from_secs(3_600);
    /// How soon it is tried again after a failure (a lock not had within
    /// the lock timeout, the server down, no DDL rights).
    pub(crate) const UPKEEP_RETRY: Duration = Duration::from_secs(300);

    /// One partition per UTC day (the default), 3 days ahead, no retention.
    pub fn daily() -> Partitions {
        Partitions::every(DEFAULT_WIDTH)
    }

    /// One partition per UTC hour, 3 days ahead, no retention.
    pub fn hourly() -> Partitions {
        Partitions::every(Duration::from_secs(3_600))
    }

    /// Partitions `width` wide (from one hour to 366 days, a whole number
    /// of seconds), 3 days ahead, no retention. They are aligned on
    /// multiples of the width since the Unix epoch, so a daily one runs
    /// from 00:00 UTC to 00:00 UTC. See
    /// [`schema::partitions`](crate::schema::partitions).
    pub fn every(width: Duration) -> Partitions {
        Partitions {
            width,
            ahead: DEFAULT_AHEAD,
            retention: None,
        }
    }

    /// How many days ahead of today partitions exist (default 3, at most
    /// 366).
    pub fn ahead(mut self, days: u32) -> Partitions {
        self.ahead = days;
        self
    }

    /// Drops whole partitions whose upper bound is older than `keep`
    /// (never a `DELETE`), recording each in `ringtrail.retention_log`
    /// with `dropped_by` = `ringtrail writer`. Default: off, nothing is
    /// ever dropped. See [`schema::retention`](crate::schema::retention).
    pub fn retention(mut self, keep: Duration) -> Partitions {
        self.retention = Some(keep);
        self
    }

    /// [`Error::Config`] naming the first setting out of range (see
    /// [`partitions::check`]).
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(keep) = self.retention {
            if keep.is_zero() || keep > MAX_RETENTION {
                return Err(Error::Config(
                    "retention must be positive and at most 100 years".to_owned(),
                ));
            }
        }
        partitions::check(self.width, self.ahead)
    }
}

impl Default for Partitions {
    /// [`Partitions::daily`].
    fn default() -> Self {
        Partitions::daily()
    }
}

/// The most shipping connections ([`PostgresConfig::lanes`]).
pub(crate) const MAX_LANES: usize = 64;

/// Settings of the PostgreSQL sink. Its `Debug` hides the password of the
/// URL.
#[derive(Clone)]
pub(crate) struct PostgresConfig {
    pub(crate) url: String,
    pub(crate) synchronous_commit: bool,
    pub(crate) migrate: bool,
    pub(crate) commit_timeout: Duration,
    pub(crate) max_retries: u32,
    /// The longest one round trip may go unanswered before the server
    /// counts as down.
    pub(crate) stall_timeout: Duration,
    /// The most bytes of sealed batches queued for the lanes.
    pub(crate) batch_queue_bytes: usize,
    /// Shipping connections, each on a thread of its own.
    pub(crate) lanes: usize,
    /// No spool unless set.
    pub(crate) spool: Option<Spool>,
    /// Partitions ahead and retention, run when `migrate` is on.
    pub(crate) partitions: Partitions,
    /// The hash chain over committed batches, and its checkpoints.
    pub(crate) chain: super::ChainConfig,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            synchronous_commit: true,
            migrate: true,
            commit_timeout: Duration::from_secs(30),
            max_retries: 8,
            stall_timeout: Duration::from_secs(3),
            batch_queue_bytes: 64 << 20,
            lanes: 2,
            spool: None,
            partitions: Partitions::default(),
            chain: super::ChainConfig::default(),
        }
    }
}

impl PostgresConfig {
    /// [`Error::Config`] naming the first setting out of range: lanes
    /// outside 1 to [`MAX_LANES`], a zero or over-a-year timeout, then the
    /// spool's, the partitions' and the chain's own checks.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(1..=MAX_LANES).contains(&self.lanes) {
            return Err(Error::Config(format!(
                "lanes must be between 1 and {MAX_LANES}"
            )));
        }
        if self.stall_timeout.is_zero() || self.commit_timeout.is_zero() {
            return Err(Error::Config(
                "stall_timeout and commit_timeout must be positive".to_owned(),
            ));
        }
        check_duration("commit_timeout", self.commit_timeout)?;
        check_duration("stall_timeout", self.stall_timeout)?;
        if let Some(spool) = &self.spool {
            spool.validate()?;
        }
        self.partitions.validate()?;
        self.chain.validate()
    }

    /// How long PostgreSQL may fail before batches go to the spool.
    pub(crate) fn spool_after(&self) -> Duration {
        self.spool.as_ref().map_or(Spool::AFTER, |s| s.after)
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &without_password(&self.url))
            .field("synchronous_commit", &self.synchronous_commit)
            .field("migrate", &self.migrate)
            .field("commit_timeout", &self.commit_timeout)
            .field("max_retries", &self.max_retries)
            .field("stall_timeout", &self.stall_timeout)
            .field("batch_queue_bytes", &self.batch_queue_bytes)
            .field("lanes", &self.lanes)
            .field("spool", &self.spool)
            .field("partitions", &self.partitions)
            .field("chain", &self.chain)
            .finish()
    }
}

/// What a password is shown as.
const HIDDEN: &str = "***";

/// `url` with its password replaced by `***`: the one in the user info of a
/// `postgres://` URL and a `password` query parameter, or the `password`
/// value of a `key=value` string. A `key=value` string that does not parse
/// and mentions a password is hidden whole.
fn without_password(url: &str) -> String {
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|s| url.starts_with(s));
    match scheme {
        Some(scheme) => url_without_password(scheme, &url[scheme.len()..]),
        None => key_value_without_password(url).unwrap_or_else(|| {
            if url.contains("password") {
                HIDDEN.to_owned()
            } else {
                url.to_owned()
            }
        }),
    }
}

fn url_without_password(scheme: &str, rest: &str) -> String {
    let mut out = String::from(scheme);
    // The user info ends at the last `@` before the query, so a password
    // holding an unescaped `/` or `@` is still hidden whole.
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    match before_query.rfind('@') {
        Some(at) => {
            let user_info = &before_query[..at];
            match user_info.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(user_info),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some(("password", _)) => format!("password={HIDDEN}"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// `None` when `s` is not a `key = value …` string (values bare or
/// single-quoted with `\` escapes, as libpq reads them).
fn key_value_without_password(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    loop {
        // Whitespace, then a key.
        while let Some(&(_, c)) = chars.peek() {
            if !c.is_whitespace() {
                break;
            }
            out.push(c);
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            return Some(out);
        };
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let key = &s[start..end];
        if key.is_empty() {
            return None;
        }
        out.push_str(key);
        // Whitespace, `=`, whitespace.
        let mut equals = false;
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' && !equals {
                equals = true;
            } else if !c.is_whitespace() {
                break;
            }
            out.push(c);
            chars.next();
        }
        if !equals {
            return None;
        }
        // The value.
        let mut value = String::new();
        if chars.peek().is_some_and(|&(_, c)| c == '\'') {
            value.push('\'');
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                value.push(c);
                if c == '\\' {
                    value.push(chars.next()?.1);
                } else if c == '\'' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key == "password" {
            out.push_str(HIDDEN);
        } else {
            out.push_str(&value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password_of_every_url_form() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/app",
                "postgres://app:***@db:5432/app",
            ),
            (
                "postgresql://app:p/a@ss@db/app?sslmode=require",
                "postgresql://app:***@db/app?sslmode=require",
            ),
            (
                "postgres://app@db/app?password=s3cret&sslmode=disable",
                "postgres://app@db/app?password=***&sslmode=disable",
            ),
            ("postgres://app@db/app", "postgres://app@db/app"),
            (
                "host=db user=app password=s3cret dbname=app",
                "host=db user=app password=*** dbname=app",
            ),
            (
                "host=db password = 'se cr\\'et' dbname=app",
                "host=db password = *** dbname=app",
            ),
            ("host=db password='unclosed", "***"),
        ];
        for (url, shown) in cases {
            assert_eq!(without_password(url), shown, "{url}");
            let config = PostgresConfig {
                url: url.to_owned(),
                ..PostgresConfig::default()
            };
            let debug = format!("{config:?}");
            assert!(
                !debug.contains("s3cret") && !debug.contains("cr\\'et"),
                "{debug}"
            );
        }
    }
}
