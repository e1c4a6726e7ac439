//! Following `ringtrail.logs` as batches commit, exactly: every committed
//! row once, none twice, whatever order the writers commit in. What
//! `ringtrail tail -f` runs.
//!
//! # Why not "rows newer than the last one shown"
//!
//! A keyset cursor over `(ts, id)` misses rows: a writer whose batch holds
//! older timestamps (a slower process, a spool replayed after an outage)
//! can commit after rows with newer timestamps were shown, and its rows
//! sort below the cursor forever. A lag window (re-read the last N
//! seconds, skip what was seen) only narrows the gap and needs a dedup
//! set as large as the window.
//!
//! # The design: a transaction-id horizon over the batch ledger
//!
//! Every batch is one transaction that COPYs its rows and inserts its
//! ledger row into `ringtrail.batches`. Migration `0006_follow` gives the
//! ledger row a column `xid xid8 DEFAULT pg_current_xact_id()`: the id of
//! that transaction, which is also the `xmin` of each row it loaded. A
//! follower keeps a [`Cursor`]: a *horizon* (a transaction id) and the
//! set of batch ids at or above it already shown.
//!
//! Each poll runs in one `REPEATABLE READ` snapshot and reads
//! `pg_snapshot_xmin(pg_current_snapshot())`: every transaction below it
//! has finished, so every batch below it that ever commits is visible in
//! this very snapshot. The poll shows the visible batches at or above the
//! horizon it has not shown, remembers them, then moves the horizon up to
//! the snapshot's xmin and forgets the remembered ids below it. A batch
//! still in progress has an id at or above the new horizon, so a later
//! poll sees it when it commits, however old its timestamps: nothing is
//! missed, and the remembered set means nothing is shown twice. The set
//! holds only batches of transactions that committed while an older one
//! was still running: a handful.
//!
//! A batch's rows are `ts BETWEEN first_ts AND last_ts` (the ledger's
//! span, a BRIN range scan; on a table partitioned by `ts`, the
//! partitions of that span) `AND xmin = xid`, plus the
//! [filter](crate::read::filter)'s conditions. The follower never writes.
//!
//! The start (`ringtrail tail -f`) reads its backlog (the last `n` rows,
//! or every row since `--since`) in the same snapshot that fixes the
//! first cursor, so the backlog and what follows neither overlap nor
//! leave a gap. A [`Cursor`] prints as text (`rt1:<horizon>` then
//! `:<id>,<id>…` when ids are remembered) for `--show-cursor`, and parses
//! back for `--after`: a follower resumed from it shows exactly the rows
//! committed after it was printed. After a lost connection, a follower
//! simply polls again on a new one from the cursor it kept.
//!
//! A ledger row's `xid` is set by a trigger (migration `0009_hardening`)
//! to the inserting transaction's, whatever the INSERT said; and a
//! follower ignores ledger rows whose `xid` its snapshot says cannot have
//! started yet (at or past `pg_snapshot_xmax`), so a forged row (say, by
//! an owner who disabled the trigger) can neither hide a later batch nor
//! overflow the cursor.
//!
//! Batches only: rows inserted by hand (no ledger row) and ledger rows of
//! batches committed before `0006_follow` (their `xid` is NULL) are in
//! the backlog but never followed. In-band drop reports travel in batches
//! like any row, so they are followed. Transaction ids are 64-bit
//! (`xid8`), so wraparound never confuses the horizon; the row match
//! compares the low 32 bits (`xmin`) inside the batch's time span only.
//!
//! # Waking up
//!
//! An `AFTER INSERT` trigger on `ringtrail.batches` sends one
//! `NOTIFY ringtrail_batches` per batch (never per row), delivered at
//! COMMIT. [`connect_listening`] LISTENs and raises a flag; a follower
//! polls when the flag is up and at least every [`POLL_INTERVAL`]
//! anyway, so a lost notification only costs latency.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::ops::ControlFlow;
//! use ringtrail::read::{self, Backlog, ExportFilter, Follower};
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let options = ringtrail::tls::ConnectOptions::parse(&url)?;
//!     let (mut client, _wake) = read::follow::connect_listening(&options).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     // A batch as the shipper commits one: rows, then the ledger row.
//!     let batch = "BEGIN;
//!         INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
//!         VALUES (now(), gen_random_uuid(), 9, 'my_app', 'hello', '{}', false);
//!         INSERT INTO ringtrail.batches (batch_id, rows, bytes, first_ts, last_ts)
//!         SELECT gen_random_uuid(), 1, 0, min(ts), max(ts) FROM ringtrail.logs WHERE xmin::text = pg_current_xact_id()::text;
//!         COMMIT;";
//!     client.batch_execute(batch).await?;
//!
//!     let mut seen = Vec::new();
//!     let mut follower = Follower::start(&mut client, ExportFilter::default(), Backlog::Last(10), |row| {
//!         seen.push(row.message.to_owned());
//!         ControlFlow::Continue(())
//!     }).await?;
//!     assert_eq!(seen, ["hello"]);
//!     client.batch_execute(batch).await?;
//!     let polled = follower.poll(&mut client, |row| {
//!         seen.push(row.message.to_owned());
//!         ControlFlow::Continue(())
//!     }).await?;
//!     assert_eq!((polled.rows, polled.batches, seen.len()), (1, 1, 2));
//!     // Nothing new: nothing shown.
//!     assert_eq!(follower.poll(&mut client, |_| ControlFlow::Continue(())).await?.rows, 0);
//!     let cursor: read::Cursor = follower.cursor().to_string().parse()?;
//!     assert_eq!(&cursor, follower.cursor());
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, IsolationLevel, Transaction};

use super::export::{columns, select, stream, with_row};
use super::filter::ExportFilter;
use super::query::last;
use crate::encode::copy::{col, WireUuid};
use crate::row::Row;

/// The channel the ledger's trigger NOTIFYs, once per committed batch.
pub const CHANNEL: &str = "ringtrail_batches";

/// The longest a follower waits between two polls when no NOTIFY comes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// At most this many batches are read per poll (their rows are held and
/// sorted in memory: with the default 8,192 rows a batch, some 130,000
/// rows); a follower behind by more catches up over several polls.
pub const MAX_BATCHES_PER_POLL: i64 = 16;

/// Where a follower stands: a transaction-id horizon below which every
/// batch has been handled, and the ids at or above it already shown. See
/// the [module docs](self). Prints as `rt1:<horizon>[:<id>,<id>…]`.
///
/// ```
/// use ringtrail::read::Cursor;
/// let c: Cursor = "rt1:7352:7355,7360".parse().unwrap();
/// assert_eq!(c.horizon(), 7352);
/// assert_eq!(c.to_string(), "rt1:7352:7355,7360");
/// assert_eq!("rt1:90".parse::<Cursor>().unwrap().to_string(), "rt1:90");
/// assert!("7352".parse::<Cursor>().is_err());
/// assert!("rt1:7352:12".parse::<Cursor>().is_err()); // below the horizon
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    horizon: i64,
    shown: BTreeSet<i64>,
}

impl Cursor {
    /// Every batch whose transaction id is below this has been handled.
    pub fn horizon(&self) -> i64 {
        self.horizon
    }

    /// Moves the horizon up to `xmin` (never down) and forgets the shown
    /// ids below it.
    fn advance(&mut self, xmin: i64) {
        if xmin > self.horizon {
            self.horizon = xmin;
            self.shown = self.shown.split_off(&xmin);
        }
    }
}

/// The prefix of a printed [`Cursor`] (its format's version).
const CURSOR_PREFIX: &str = "rt1:";

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CURSOR_PREFIX}{}", self.horizon)?;
        for (i, id) in self.shown.iter().enumerate() {
            f.write_str(if i == 0 { ":" } else { "," })?;
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// Text that is not a [`Cursor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorError(String);

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: not a cursor (expected what --show-cursor printed, like rt1:7352 or rt1:7352:7355,7360)",
            self.0
        )
    }
}

impl std::error::Error for CursorError {}

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Cursor, CursorError> {
        let bad = || CursorError(s.to_owned());
        let rest = s.trim().strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
        let (horizon, shown) = rest.split_once(':').unwrap_or((rest, ""));
        let number = |t: &str| match t.parse::<i64>() {
            Ok(n) if n >= 0 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(bad()),
        };
        let horizon = number(horizon)?;
        let mut cursor = Cursor {
            horizon,
            shown: BTreeSet::new(),
        };
        if rest.contains(':') {
            for id in shown.split(',') {
                let id = number(id)?;
                if id < horizon {
                    return Err(bad());
                }
                cursor.shown.insert(id);
            }
        }
        Ok(cursor)
    }
}

/// What [`Follower::start`] shows before following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Nothing: only rows committed from now on.
    Nothing,
    /// The newest `n` rows the filter keeps, oldest first (`tail -n`).
    Last(u64),
    /// Every row the filter keeps, ordered by `ts` then `id` (`tail -f
    /// --since`).
    All,
}

/// A follower of `ringtrail.logs`: its filter and its [`Cursor`]. See
/// the [module docs](self).
#[derive(Debug, Clone)]
pub struct Follower {
    filter: ExportFilter,
    cursor: Cursor,
}

/// A read-only `REPEATABLE READ` transaction: one snapshot for all its
/// statements.
async fn snapshot(client: &mut Client) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

/// The xmin of the transaction's snapshot (its first statement takes it).
async fn snapshot_xmin(tx: &Transaction<'_>) -> Result<i64, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

impl Follower {
    /// A follower that resumes from `cursor` (printed by an earlier one):
    /// its first [`poll`](Follower::poll) shows the rows `filter` keeps
    /// of every batch committed since.
    pub fn resume(filter: ExportFilter, cursor: Cursor) -> Follower {
        Follower { filter, cursor }
    }

    /// Hands `backlog` to `on_row` and returns a follower whose cursor
    /// stands right after it: both come from one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`](crate::Error::Postgres) when a query fails
    /// (also when migration `0006_follow` is missing).
    pub async fn start(
        client: &mut Client,
        filter: ExportFilter,
        backlog: Backlog,
        on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
    ) -> crate::Result<Follower> {
        let tx = snapshot(client).await?;
        let xmin = snapshot_xmin(&tx).await?;
        let shown = tx
            .query(
                "SELECT xid::text::bigint FROM ringtrail.batches WHERE xid >= $1::text::xid8 \
                 AND xid < pg_snapshot_xmax(pg_current_snapshot())",
                &[&xmin.to_string()],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        match backlog {
            Backlog::Nothing => {}
            Backlog::Last(n) => {
                last(&tx, &filter, n, on_row).await?;
            }
            Backlog::All => {
                let (sql, params) = select(columns(&tx).await?, &filter, 1);
                stream(&tx, &format!("{sql} ORDER BY ts, id"), &params, on_row).await?;
            }
        }
        tx.commit().await?;
        Ok(Follower {
            filter,
            cursor: Cursor {
                horizon: xmin,
                shown,
            },
        })
    }

    /// Where the follower stands: print it to resume later.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Hands the rows `filter` keeps of every batch committed since the
    /// last poll (or the start) to `on_row`, ordered by `ts` then `id`
    /// within this poll, and moves the cursor past them. Reads at most
    /// [`MAX_BATCHES_PER_POLL`] batches ([`Polled::caught_up`] says
    /// whether that was all); the cursor only moves once every row of a
    /// poll was read, so a poll that fails (a lost connection) can simply
    /// be repeated.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`](crate::Error::Postgres) when a query fails.
    pub async fn poll(
        &mut self,
        client: &mut Client,
        mut on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
    ) -> crate::Result<Polled> {
        let tx = snapshot(client).await?;
        let xmin = snapshot_xmin(&tx).await?;
        let shown: Vec<String> = self.cursor.shown.iter().map(i64::to_string).collect();
        let batches = tx
            .query(
                "SELECT xid::text::bigint, first_ts, last_ts FROM ringtrail.batches
                 WHERE xid >= $1::text::xid8 AND NOT (xid = ANY($2::text[]::xid8[]))
                   AND xid < pg_snapshot_xmax(pg_current_snapshot())
                 ORDER BY xid LIMIT $3",
                &[
                    &self.cursor.horizon.to_string(),
                    &shown,
                    &MAX_BATCHES_PER_POLL,
                ],
            )
            .await?;
        let mut rows = if batches.is_empty() {
            Vec::new()
        } else {
            self.rows_of(&tx, &batches).await?
        };
        tx.commit().await?;
        rows.sort_by(|a, b| {
            let key = |r: &tokio_postgres::Row| {
                let (ts, id): (SystemTime, WireUuid) = (r.get(col::TS), r.get(col::ID));
                (ts, id.0)
            };
            key(a).cmp(&key(b))
        });
        let mut handed = 0;
        for row in &rows {
            if with_row(row, &mut on_row).is_break() {
                break;
            }
            handed += 1;
        }
        self.cursor
            .shown
            .extend(batches.iter().map(|b| b.get::<_, i64>(0)));
        let caught_up = (batches.len() as i64) < MAX_BATCHES_PER_POLL;
        if caught_up {
            self.cursor.advance(xmin);
        }
        Ok(Polled {
            rows: handed,
            batches: batches.len(),
            caught_up,
        })
    }

    /// The rows `self.filter` keeps of `batches` (rows of `xid`,
    /// `first_ts`, `last_ts`): per batch, its time span and its
    /// transaction id.
    async fn rows_of(
        &self,
        tx: &Transaction<'_>,
        batches: &[tokio_postgres::Row],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let (conditions, params) = self.filter.conditions(4);
        let columns = columns(tx).await?;
        let mut sql = format!(
            "SELECT {columns} FROM ringtrail.logs \
             WHERE ts >= $1 AND ts <= $2 AND xmin = $3::text::xid8::xid"
        );
        for condition in conditions {
            sql.push_str(" AND ");
            sql.push_str(&condition);
        }
        let statement = tx.prepare(&sql).await?;
        let mut rows = Vec::new();
        for batch in batches {
            let xid = batch.get::<_, i64>(0).to_string();
            let first: SystemTime = batch.get(1);
            let last: SystemTime = batch.get(2);
            let mut all: Vec<&(dyn ToSql + Sync)> = vec![&first, &last, &xid];
            all.extend(params.iter().map(|p| &**p as &(dyn ToSql + Sync)));
            rows.extend(tx.query(&statement, &all).await?);
        }
        Ok(rows)
    }
}

/// What one [`Follower::poll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    /// Rows handed to the callback.
    pub rows: u64,
    /// Newly committed batches read (their rows may all be filtered out).
    pub batches: usize,
    /// Whether every batch committed before the poll's snapshot was read
    /// (false when [`MAX_BATCHES_PER_POLL`] cut it short: poll again).
    pub caught_up: bool,
}

/// A flag raised by each NOTIFY on [`CHANNEL`]; see
/// [`connect_listening`].
#[derive(Debug, Default)]
pub struct Wake(AtomicBool);

impl Wake {
    /// Whether a NOTIFY came since the last call (and lowers the flag).
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Connects like [`connect`](crate::read::connect) and LISTENs on
/// [`CHANNEL`]: the returned [`Wake`] is raised by every batch that
/// commits from then on.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the server cannot be
/// reached, the TLS handshake fails or the server refuses the login.
pub async fn connect_listening(
    options: &crate::tls::ConnectOptions,
) -> crate::Result<(Client, Arc<Wake>)> {
    let mut options = options.clone();
    if options.config().get_connect_timeout().is_none() {
        options.config_mut().connect_timeout(super::CONNECT_TIMEOUT);
    }
    let (client, mut connection) = options.connect().await?;
    let wake = Arc::new(Wake::default());
    let raised = Arc::clone(&wake);
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(_) = message {
                raised.0.store(true, Ordering::Release);
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, wake))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_only_moves_up_and_forgets_what_it_passes() {
        let mut c: Cursor = "rt1:10:10,12,15".parse().unwrap();
        c.advance(9);
        assert_eq!(c.to_string(), "rt1:10:10,12,15");
        c.advance(13);
        assert_eq!(c.to_string(), "rt1:13:15");
        c.advance(20);
        assert_eq!(c.to_string(), "rt1:20");
    }

    #[test]
    fn cursors_parse_strictly() {
        for bad in [
            "",
            "rt1:",
            "rt1:-1",
            "rt1:+5",
            "rt2:5",
            "rt1:5:",
            "rt1:5:6,x",
            "rt1:5:4",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
        let c: Cursor = " rt1:5:9,6 ".parse().unwrap();
        assert_eq!(c.to_string(), "rt1:5:6,9");
    }
}
