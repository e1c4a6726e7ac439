//! The shipper: the PostgreSQL client side of the sink, on its own thread
//! (`ringtrail-shipper`), so the writer encodes the next batch while this
//! one is in flight. It owns a [`Connection`] (a private current-thread
//! tokio runtime and a `deadpool-postgres` pool: callers need no runtime
//! of their own), the spool, the [`Health`] of the server, and the delivery
//! rules:
//!
//! 1. Each batch is `BEGIN; COPY …; INSERT INTO ringtrail.batches …;
//!    COMMIT`. The ledger row makes the batch's commit observable.
//! 2. A connection-class failure is retried with backoff and jitter. Every
//!    retry first asks the ledger whether the batch already committed (the
//!    connection may have died after the server committed), and skips it
//!    if so.
//! 3. A data-class failure names a row (`COPY logs, line N`): that row
//!    goes to `ringtrail.dead_letters` and the rest is retried. With no
//!    line, the batch is bisected until the bad row is alone.
//! 4. When retries are exhausted, or PostgreSQL has been unreachable for
//!    `spool_after`, batches go to the spool on disk, and are replayed
//!    (through the ledger, so exactly once) when PostgreSQL answers again.

mod connection;
mod health;

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::SealedBatch;
use super::retry::{classify, is_transient, Backoff, Failure};
use super::spool::Spool;
use super::{BatchFailure, Outcome, PostgresConfig};
use crate::clock::unix_nanos_now;
use crate::uuid7::Uuid7;
use crate::{Error, Fate, Result};
use connection::Connection;
use health::{Health, PROBE_INTERVAL};

/// Where a batch being delivered came from; decides what its rows count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Live,
    Spool { inherited: bool },
}

/// The state of one [`Shipper::deliver`]: a stack of batches still to
/// ship (a batch and, after a bisection, its pieces) and what is done.
struct Delivery {
    origin: Origin,
    delivered: Outcome,
    work: Vec<SealedBatch>,
    /// Nothing was split off the original batch.
    untouched: bool,
    attempt: u32,
    first_failure: Option<Instant>,
    /// The outcome of the previous attempt may be unknown: ask the ledger.
    check_ledger: bool,
}

/// A delivery that stopped trying for now.
struct GaveUp {
    delivered: Outcome,
    /// What is still to be shipped: the original batch when `untouched`.
    remaining: Vec<SealedBatch>,
    untouched: bool,
    error: Arc<Error>,
}

/// Ships sealed batches to PostgreSQL through binary COPY.
pub(crate) struct Shipper {
    connection: Connection,
    health: Health,
    spool: Option<Spool>,
    /// Spool once PostgreSQL has been failing this long.
    spool_after: Duration,
    max_retries: u32,
    backoff: Backoff,
    /// Ids for the halves of a bisected batch.
    ids: Uuid7,
}

impl Shipper {
    /// Builds the pool, opens the spool, checks the connection and applies
    /// migrations when asked. With a spool configured, an unreachable server
    /// is not an error: the shipper starts spooling and connects later.
    pub(crate) fn connect(config: &PostgresConfig) -> Result<Shipper> {
        let spool = match &config.spool.dir {
            Some(dir) => Some(Spool::open(dir, config.spool.max_bytes)?),
            None => None,
        };
        let mut shipper = Shipper {
            connection: Connection::new(config)?,
            health: Health::up(),
            spool,
            spool_after: config.spool.after,
            max_retries: config.max_retries,
            backoff: Backoff::new(unix_nanos_now() as u64, Duration::from_secs(5)),
            ids: Uuid7::new(),
        };
        if let Err(e) = shipper.connection.open() {
            if shipper.spool.is_none() || !is_transient(&e) {
                return Err(e);
            }
            shipper.mark_down(Arc::new(e));
        }
        Ok(shipper)
    }

    fn mark_down(&mut self, cause: Arc<Error>) {
        let fate = match self.spool {
            Some(_) => "spooling to disk",
            None => "no spool configured",
        };
        self.health.mark_down(cause, fate);
    }

    /// One attempt, within the commit timeout and `deadline`: the ledger
    /// check (when the previous outcome may be unknown), then the batch's
    /// transaction.
    fn ship(
        &mut self,
        batch: &SealedBatch,
        check_ledger: bool,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let mut timeout = self.connection.commit_timeout();
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            timeout = timeout.min(left.max(Duration::from_millis(1)));
        }
        self.connection
            .run("committing a batch", timeout, async |session| {
                session.ship(batch, check_ledger).await
            })
    }

    /// Delivers `batch` and what it splits into. Returns what was
    /// delivered, or, when it gave up, that and what could not be.
    fn deliver(
        &mut self,
        batch: SealedBatch,
        deadline: Option<Instant>,
        origin: Origin,
    ) -> Result<Outcome, GaveUp> {
        let mut d = Delivery {
            origin,
            delivered: Outcome::default(),
            work: vec![batch],
            untouched: true,
            attempt: 0,
            first_failure: None,
            // A replayed batch may have committed before its segment was
            // deleted (a crash in between): always ask the ledger.
            check_ledger: origin != Origin::Live,
        };
        while let Some(batch) = d.work.pop() {
            let error = match self.ship(&batch, d.check_ledger, deadline) {
                Ok(()) => {
                    self.health.mark_up();
                    d.committed(&batch);
                    continue;
                }
                Err(error) => error,
            };
            match classify(error) {
                Failure::Data { line, error } => self.quarantine(&mut d, batch, line, error)?,
                Failure::Retry(error) => self.retry(&mut d, batch, error, deadline)?,
                Failure::Fatal(error) => {
                    let error = Arc::new(error);
                    self.mark_down(error.clone());
                    return Err(d.give_up(batch, error));
                }
            }
        }
        Ok(d.delivered)
    }

    /// The server refused a row of `batch`, so the transaction rolled back
    /// for sure and the batch's id is still unused. Moves the row it named
    /// to the dead letters and queues the rest; with no row named, queues
    /// the two halves instead (bisection, under fresh ids).
    fn quarantine(
        &mut self,
        d: &mut Delivery,
        batch: SealedBatch,
        line: Option<usize>,
        error: Error,
    ) -> Result<(), GaveUp> {
        d.untouched = false;
        d.check_ledger = false;
        let tuples = batch.rows as usize;
        let bad = match line {
            Some(n) if n >= 1 && n <= tuples => n - 1,
            _ if tuples <= 1 => 0,
            _ => {
                let ids = [
                    self.ids.next(unix_nanos_now()),
                    self.ids.next(unix_nanos_now()),
                ];
                let [first, second] = batch.halves(ids);
                d.work.push(second);
                d.work.push(first);
                return Ok(());
            }
        };
        let (removed, rest) = batch.without(bad);
        let timeout = self.connection.commit_timeout();
        let stored = self
            .connection
            .run("writing a dead letter", timeout, async |session| {
                session
                    .dead_letter(&batch, line, &removed.tuple, &error)
                    .await
            });
        if let Err(error) = stored {
            // Could not even store the dead letter: keep the whole batch
            // for later.
            return Err(d.give_up(batch, Arc::new(error)));
        }
        d.dead_lettered(!removed.is_report as u64);
        if rest.rows > 0 {
            d.work.push(rest);
        }
        Ok(())
    }

    /// A transient failure: waits out the backoff and queues `batch`
    /// again, unless it is time to give up (the server is known down, the
    /// retries or `spool_after` ran out, or the deadline would pass).
    fn retry(
        &mut self,
        d: &mut Delivery,
        batch: SealedBatch,
        error: Error,
        deadline: Option<Instant>,
    ) -> Result<(), GaveUp> {
        d.attempt += 1;
        d.check_ledger = true;
        let since = *d.first_failure.get_or_insert_with(Instant::now);
        let retry_at = Instant::now() + self.backoff.delay(d.attempt);
        let give_up = self.health.is_down()
            || d.attempt > self.max_retries
            || (self.spool.is_some() && since.elapsed() >= self.spool_after)
            || deadline.is_some_and(|d| retry_at >= d);
        if give_up {
            let error = Arc::new(error);
            self.mark_down(error.clone());
            return Err(d.give_up(batch, error));
        }
        std::thread::sleep(retry_at.saturating_duration_since(Instant::now()));
        d.work.push(batch);
        Ok(())
    }

    /// Writes batches that could not be delivered to the spool. Rows that
    /// do not fit (no spool, cap reached, disk error) are lost and counted.
    /// Returns `Lost` if any were.
    fn spool_all(&mut self, batches: &[SealedBatch], inherited: bool, out: &mut Outcome) -> Fate {
        let mut fate = Fate::Spooled;
        for batch in batches {
            let rows = batch.events();
            let written = match self.spool.as_mut() {
                Some(spool) => spool.write(batch, inherited).unwrap_or_else(|e| {
                    eprintln!("ringtrail: spool write failed: {e}");
                    false
                }),
                None => false,
            };
            if !written {
                fate = Fate::Lost;
            }
            match (written, inherited) {
                (true, false) => out.spooled += rows,
                (false, false) => out.lost += rows,
                // Rows of an earlier process were never counted by this
                // one, whether they are re-spooled or not.
                (_, true) => {}
            }
        }
        fate
    }

    /// Delivers one live batch: committed, or else spooled (or lost).
    pub(crate) fn commit(&mut self, batch: SealedBatch, deadline: Option<Instant>) -> Outcome {
        // Known down and no probe due: go straight to disk instead of
        // waiting on the network while the ring fills.
        if self.spool.is_some() {
            if let Some((_, cause)) = self.health.wait_for_probe() {
                let mut out = Outcome::default();
                let fate = self.spool_all(std::slice::from_ref(&batch), false, &mut out);
                out.failure = Some(BatchFailure { fate, cause });
                return out;
            }
        }
        match self.deliver(batch, deadline, Origin::Live) {
            Ok(out) => out,
            Err(gave_up) => {
                let mut out = gave_up.delivered;
                let fate = self.spool_all(&gave_up.remaining, false, &mut out);
                out.failure = Some(BatchFailure {
                    fate,
                    cause: gave_up.error,
                });
                out
            }
        }
    }

    /// Replays the oldest spool segment if PostgreSQL may be back. Returns
    /// what it did and when it wants to run again (`None`: spool empty).
    pub(crate) fn maintain(&mut self) -> (Outcome, Option<Duration>) {
        let mut out = Outcome::default();
        let Some(segment) = self.spool.as_ref().and_then(Spool::oldest).cloned() else {
            return (out, None);
        };
        if let Some((wait, _)) = self.health.wait_for_probe() {
            return (out, Some(wait));
        }
        let inherited = segment.inherited;
        let batch = match Spool::load(&segment) {
            Ok(batch) => batch,
            Err(e) => {
                eprintln!("ringtrail: {e}; renamed to .corrupt");
                self.with_spool(Spool::quarantine_oldest);
                return (out, Some(Duration::ZERO));
            }
        };
        let gave_up = match self.deliver(batch, None, Origin::Spool { inherited }) {
            Ok(delivered) => {
                out.add(delivered);
                self.with_spool(Spool::remove_oldest);
                return (out, Some(Duration::ZERO));
            }
            Err(gave_up) => gave_up,
        };
        out.add(gave_up.delivered);
        if !gave_up.untouched {
            // Part of the segment is now committed under other batch ids:
            // store what is left as new segments, then drop the original,
            // so a later replay cannot load the committed part twice.
            let lost_before = out.lost;
            let spooled_before = out.spooled;
            self.spool_all(&gave_up.remaining, inherited, &mut out);
            if !inherited {
                // Rows moved between segments stay spooled; rows that could
                // not be re-spooled left the spool, lost.
                out.spooled = spooled_before;
                out.unspooled += out.lost - lost_before;
            }
            self.with_spool(Spool::remove_oldest);
        }
        let wait = self.health.wait_for_probe().map_or(PROBE_INTERVAL, |w| w.0);
        (out, Some(wait))
    }

    /// Runs a spool operation whose failure leaves nothing to do but say so.
    fn with_spool(&mut self, op: fn(&mut Spool) -> std::io::Result<()>) {
        if let Some(spool) = self.spool.as_mut() {
            if let Err(e) = op(spool) {
                eprintln!("ringtrail: spool segment: {e}");
            }
        }
    }
}

impl Delivery {
    fn committed(&mut self, batch: &SealedBatch) {
        let rows = batch.events();
        let out = &mut self.delivered;
        out.batches += 1;
        match self.origin {
            Origin::Live => out.written += rows,
            Origin::Spool { inherited: false } => {
                out.written += rows;
                out.unspooled += rows;
            }
            Origin::Spool { inherited: true } => out.recovered += rows,
        }
    }

    fn dead_lettered(&mut self, events: u64) {
        let out = &mut self.delivered;
        match self.origin {
            Origin::Live => out.dead_lettered += events,
            Origin::Spool { inherited: false } => {
                out.dead_lettered += events;
                out.unspooled += events;
            }
            // Never counted by this process.
            Origin::Spool { inherited: true } => {}
        }
    }

    /// Stops with `batch` (and whatever is still queued) undelivered.
    fn give_up(&mut self, batch: SealedBatch, error: Arc<Error>) -> GaveUp {
        let mut remaining = std::mem::take(&mut self.work);
        remaining.push(batch);
        GaveUp {
            delivered: std::mem::take(&mut self.delivered),
            remaining,
            untouched: self.untouched,
            error,
        }
    }
}
