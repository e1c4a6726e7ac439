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
use super::spool::{LoadError, Spool};
use super::{BatchFailure, Cutoff, Outcome, PostgresConfig};
use crate::clock::unix_nanos_now;
use crate::{Error, Fate, Result};
use connection::Connection;
use health::{Health, PROBE_INTERVAL};

/// After this many rows in a row refused at line 1 with the same SQLSTATE,
/// the error is taken to hit every row (a new `NOT NULL` column, say), and
/// the rest of the batch is quarantined as a unit instead of row by row.
const BATCH_WIDE_AFTER: u32 = 3;

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
    /// The outcome of the previous attempt may be unknown, or (for a
    /// replay) an earlier process may have committed it: ask the ledger.
    check_ledger: bool,
    /// The SQLSTATE of the last rows refused at line 1, and how many.
    first_line_streak: Option<(String, u32)>,
}

/// A delivery that stopped trying for now.
struct GaveUp {
    delivered: Outcome,
    /// What is still to be shipped: the original batch when `untouched`.
    remaining: Vec<SealedBatch>,
    untouched: bool,
    /// The last attempt's outcome is unknown (it may have committed).
    unknown: bool,
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
    cutoff: Arc<Cutoff>,
    /// Live batches counted lost whose last attempt may have committed:
    /// their ids and event rows, looked up in the ledger once PostgreSQL
    /// answers again (bounded: the oldest are forgotten).
    unresolved: Vec<([u8; 16], u64)>,
}

/// The most unresolved batches remembered.
const MAX_UNRESOLVED: usize = 256;

impl Shipper {
    /// Builds the pool, opens the spool, checks the connection and applies
    /// migrations when asked. With a spool configured, an unreachable server
    /// is not an error: the shipper starts spooling and connects later. A
    /// wrong configuration (credentials, database name) always is.
    pub(crate) fn connect(config: &PostgresConfig, cutoff: Arc<Cutoff>) -> Result<Shipper> {
        let spool = match &config.spool.dir {
            Some(dir) => Some(Spool::open(dir, config.spool.max_bytes)?),
            None => None,
        };
        let mut shipper = Shipper {
            connection: Connection::new(config, cutoff.clone())?,
            health: Health::up(),
            spool,
            spool_after: config.spool.after,
            max_retries: config.max_retries,
            backoff: Backoff::new(unix_nanos_now() as u64, Duration::from_secs(5)),
            cutoff,
            unresolved: Vec::new(),
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

    /// PostgreSQL answered: marks it up, and looks up the batches whose
    /// outcome was unknown when they were counted lost.
    fn mark_up(&mut self, out: &mut Outcome) {
        self.health.mark_up();
        if self.unresolved.is_empty() {
            return;
        }
        let ids: Vec<[u8; 16]> = self.unresolved.iter().map(|u| u.0).collect();
        let timeout = self.connection.commit_timeout();
        let found = self
            .connection
            .run("checking the ledger", timeout, async |session| {
                session.committed_among(&ids).await
            });
        if let Ok(committed) = found {
            self.unresolved.retain(|(id, rows)| {
                let done = committed.contains(id);
                if done {
                    out.written += rows;
                    out.resolved += rows;
                }
                !done
            });
        }
    }

    /// Whether PostgreSQL may take a batch now: it is up, or it is down
    /// and a probe (when one is due) says it is back. Never past the
    /// shutdown cutoff.
    fn available(&mut self, out: &mut Outcome) -> bool {
        if self.cutoff.passed() {
            return false;
        }
        if !self.health.is_down() {
            return true;
        }
        if self.health.until_probe().is_some() {
            return false;
        }
        let timeout = self.connection.commit_timeout();
        match self
            .connection
            .run("probing", timeout, async |session| session.probe().await)
        {
            Ok(()) => {
                self.mark_up(out);
                true
            }
            Err(e) => {
                self.mark_down(Arc::new(e));
                false
            }
        }
    }

    /// One attempt, within the commit timeout and the cutoff: the ledger
    /// check (when the previous outcome may be unknown), then the batch's
    /// transaction.
    fn ship(&mut self, batch: &SealedBatch, check_ledger: bool) -> Result<()> {
        let timeout = self.connection.commit_timeout();
        self.connection
            .run("committing a batch", timeout, async |session| {
                session.ship(batch, check_ledger).await
            })
    }

    /// Delivers `batch` and what it splits into. Returns what was
    /// delivered, or, when it gave up, that and what could not be.
    fn deliver(&mut self, batch: SealedBatch, origin: Origin) -> Result<Outcome, Box<GaveUp>> {
        let mut d = Delivery {
            origin,
            delivered: Outcome::default(),
            work: vec![batch],
            untouched: true,
            attempt: 0,
            first_failure: None,
            check_ledger: origin != Origin::Live,
            first_line_streak: None,
        };
        while let Some(batch) = d.work.pop() {
            match self.ship(&batch, d.check_ledger) {
                Ok(()) => {
                    d.committed(&batch);
                    if self.health.is_down() || !self.unresolved.is_empty() {
                        let mut out = std::mem::take(&mut d.delivered);
                        self.mark_up(&mut out);
                        d.delivered = out;
                    }
                }
                Err(error) => match classify(error) {
                    Failure::Data { line, error } => self.quarantine(&mut d, batch, line, error)?,
                    other => self.failed(&mut d, batch, other)?,
                },
            }
        }
        Ok(d.delivered)
    }

    /// A failure that is not a refused row: retried after a backoff, or
    /// the end of this delivery.
    fn failed(
        &mut self,
        d: &mut Delivery,
        batch: SealedBatch,
        failure: Failure,
    ) -> Result<(), Box<GaveUp>> {
        match failure {
            Failure::Retry(error) => self.retry(d, batch, error),
            Failure::Stalled(error) | Failure::Fatal(error) => {
                // After a stall the outcome is unknown: the ledger decides.
                d.check_ledger |= matches!(error, Error::Stalled { .. });
                let error = Arc::new(error);
                self.mark_down(error.clone());
                Err(d.give_up(batch, error))
            }
            Failure::Data { error, .. } => Err(d.give_up(batch, Arc::new(error))),
        }
    }

    /// The server refused a row of `batch`, so the transaction rolled back
    /// for sure. Moves the row it named to the dead letters and queues the
    /// rest; with no row named, queues the two halves instead (bisection,
    /// under ids derived from this batch's, so a replay after a crash makes
    /// the same pieces and the ledger recognises those already committed).
    /// An error that keeps hitting line 1 hits every row: the batch goes to
    /// the dead letters as a unit.
    fn quarantine(
        &mut self,
        d: &mut Delivery,
        batch: SealedBatch,
        line: Option<usize>,
        error: Error,
    ) -> Result<(), Box<GaveUp>> {
        d.untouched = false;
        // The pieces may have been committed by an earlier process.
        d.check_ledger = d.origin != Origin::Live;
        let tuples = batch.rows as usize;
        let bad = match line {
            Some(n) if n >= 1 && n <= tuples => n - 1,
            _ if tuples <= 1 => 0,
            _ => {
                let [first, second] = batch.halves();
                d.work.push(second);
                d.work.push(first);
                return Ok(());
            }
        };
        let sqlstate = error.sqlstate().unwrap_or_default().to_owned();
        let streak = match d.first_line_streak.take() {
            Some((code, n)) if bad == 0 && code == sqlstate => n + 1,
            _ if bad == 0 => 1,
            _ => 0,
        };
        if streak > 0 {
            d.first_line_streak = Some((sqlstate, streak));
        }
        let (refused, rest) = if streak >= BATCH_WIDE_AFTER {
            (batch.all_rows(), None)
        } else {
            let (removed, rest) = batch.without(bad);
            (vec![(line, removed)], (rest.rows > 0).then_some(rest))
        };
        let timeout = self.connection.commit_timeout();
        let stored = self
            .connection
            .run("writing dead letters", timeout, async |session| {
                session.dead_letter(&batch, &refused, &error).await
            });
        if let Err(error) = stored {
            // The dead-letter insert failed: treat it like any failed
            // write of the batch, which is then shipped again whole.
            return self.failed(d, batch, classify(error));
        }
        d.dead_lettered(refused.iter().filter(|(_, r)| !r.is_report).count() as u64);
        d.work.extend(rest);
        Ok(())
    }

    /// A transient failure: waits out the backoff and queues `batch`
    /// again, unless it is time to give up (the server is known down, the
    /// retries or `spool_after` ran out, or the cutoff would pass).
    fn retry(
        &mut self,
        d: &mut Delivery,
        batch: SealedBatch,
        error: Error,
    ) -> Result<(), Box<GaveUp>> {
        d.attempt += 1;
        d.check_ledger = true;
        let since = *d.first_failure.get_or_insert_with(Instant::now);
        let retry_at = Instant::now() + self.backoff.delay(d.attempt);
        let give_up = self.health.is_down()
            || d.attempt > self.max_retries
            || (self.spool.is_some() && since.elapsed() >= self.spool_after)
            || self.cutoff.get().is_some_and(|cutoff| retry_at >= cutoff);
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
        let written: Vec<bool> = batches
            .iter()
            .map(|batch| match self.spool.as_mut() {
                Some(spool) => spool.write(batch, inherited).unwrap_or_else(|e| {
                    eprintln!("ringtrail: spool write failed: {e}");
                    false
                }),
                None => false,
            })
            .collect();
        tally_spooled(batches, &written, inherited, out)
    }

    /// Delivers one live batch: committed, or else spooled (or lost).
    pub(crate) fn commit(&mut self, batch: SealedBatch) -> Outcome {
        let mut out = Outcome::default();
        // With a spool, known down (and no probe answering) or past the
        // cutoff: straight to disk instead of waiting on the network while
        // the ring fills. Without one, the batch is tried anyway (it has
        // nowhere else to go), unless the cutoff has passed.
        let skip_network = match self.spool {
            Some(_) => !self.available(&mut out),
            None => self.cutoff.passed(),
        };
        if skip_network {
            let cause = self
                .health
                .cause()
                .unwrap_or_else(|| Arc::new(Error::Timeout("the shutdown deadline")));
            let fate = self.spool_all(std::slice::from_ref(&batch), false, &mut out);
            out.failure = Some(BatchFailure { fate, cause });
            return out;
        }
        match self.deliver(batch, Origin::Live) {
            Ok(delivered) => out.add(delivered),
            Err(gave_up) => {
                out.add(gave_up.delivered);
                let fate = self.spool_all(&gave_up.remaining, false, &mut out);
                if fate == Fate::Lost && gave_up.unknown && gave_up.untouched {
                    if self.unresolved.len() == MAX_UNRESOLVED {
                        self.unresolved.remove(0);
                    }
                    let batch = &gave_up.remaining[0];
                    self.unresolved.push((batch.id, batch.events()));
                }
                out.failure = Some(BatchFailure {
                    fate,
                    cause: gave_up.error,
                });
            }
        }
        out
    }

    /// Replays the oldest spool segment if PostgreSQL may take it. Returns
    /// what it did and when it wants to run again (`None`: nothing to do,
    /// the spool is empty or the shutdown cutoff has passed).
    pub(crate) fn maintain(&mut self) -> (Outcome, Option<Duration>) {
        let mut out = Outcome::default();
        let Some(segment) = self.spool.as_ref().and_then(Spool::oldest).cloned() else {
            return (out, None);
        };
        if self.cutoff.get().is_some() {
            return (out, None);
        }
        if !self.available(&mut out) {
            let wait = self.health.until_probe().unwrap_or(PROBE_INTERVAL);
            return (out, Some(wait));
        }
        let inherited = segment.inherited;
        let batch = match Spool::load(&segment) {
            Ok(batch) => batch,
            Err(LoadError::Read(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                // EMFILE, EIO…: not the segment's fault. Later.
                eprintln!(
                    "ringtrail: cannot read spool segment {}: {e}",
                    segment.path.display()
                );
                return (out, Some(PROBE_INTERVAL));
            }
            Err(failure) => {
                let what = match failure {
                    LoadError::Corrupt => "corrupt; renamed to .corrupt",
                    LoadError::Read(_) => "gone",
                };
                eprintln!(
                    "ringtrail: spool segment {} is {what}",
                    segment.path.display()
                );
                self.forget_oldest(matches!(failure, LoadError::Corrupt), &mut out);
                return (out, Some(Duration::ZERO));
            }
        };
        let gave_up = match self.deliver(batch, Origin::Spool { inherited }) {
            Ok(delivered) => {
                out.add(delivered);
                if let Some(Err(e)) = self.spool.as_mut().map(Spool::remove_oldest) {
                    eprintln!("ringtrail: could not delete a replayed spool segment: {e}");
                }
                return (out, Some(Duration::ZERO));
            }
            Err(gave_up) => gave_up,
        };
        out.add(gave_up.delivered);
        if !gave_up.untouched {
            // Part of the segment is now committed under other batch ids:
            // store what is left as new segments, then drop the original.
            self.respool_oldest(&gave_up.remaining, inherited, &mut out);
        }
        let wait = self.health.until_probe().unwrap_or(PROBE_INTERVAL);
        (out, Some(wait))
    }

    /// Drops the oldest segment from the spool (quarantined as `.corrupt`,
    /// or already gone) and counts its rows lost.
    fn forget_oldest(&mut self, corrupt: bool, out: &mut Outcome) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let segment = spool.oldest().cloned();
        let forgotten = match corrupt {
            true => spool.quarantine_oldest(),
            false => spool.remove_oldest().map(|()| segment),
        };
        match forgotten {
            Ok(Some(segment)) if segment.inherited => out.inherited_lost += segment.events,
            Ok(Some(segment)) => {
                out.unspooled += segment.events;
                out.lost += segment.events;
            }
            Ok(None) => {}
            Err(e) => eprintln!("ringtrail: spool segment: {e}"),
        }
    }

    /// Replaces the oldest segment by what is left of it.
    fn respool_oldest(&mut self, pieces: &[SealedBatch], inherited: bool, out: &mut Outcome) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let written = spool.replace_oldest(pieces, inherited).unwrap_or_else(|e| {
            eprintln!("ringtrail: could not delete a partly replayed spool segment: {e}");
            vec![true; pieces.len()]
        });
        let mut moved = Outcome::default();
        tally_spooled(pieces, &written, inherited, &mut moved);
        // Rows moved between segments stay spooled; this process's rows
        // that could not be re-spooled left the spool, lost.
        out.unspooled += moved.lost;
        out.lost += moved.lost;
        out.inherited_lost += moved.inherited_lost;
    }
}

/// Counts where spooled batches went: `written[i]` says whether batch `i`
/// reached the disk.
fn tally_spooled(
    batches: &[SealedBatch],
    written: &[bool],
    inherited: bool,
    out: &mut Outcome,
) -> Fate {
    let mut fate = Fate::Spooled;
    for (batch, &written) in batches.iter().zip(written) {
        let rows = batch.events();
        match (written, inherited) {
            (true, false) => out.spooled += rows,
            (false, false) => out.lost += rows,
            // Rows of an earlier process were never counted by this one.
            (true, true) => {}
            (false, true) => out.inherited_lost += rows,
        }
        if !written {
            fate = Fate::Lost;
        }
    }
    fate
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
    fn give_up(&mut self, batch: SealedBatch, error: Arc<Error>) -> Box<GaveUp> {
        let mut remaining = std::mem::take(&mut self.work);
        remaining.push(batch);
        Box::new(GaveUp {
            delivered: std::mem::take(&mut self.delivered),
            remaining,
            untouched: self.untouched,
            unknown: self.check_ledger,
            error,
        })
    }
}
