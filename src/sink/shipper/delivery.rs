//! Delivering one batch: the retry loop, quarantine of refused rows and
//! bisection, and the state a delivery carries ([`Delivery`]) or leaves
//! behind when it gives up ([`GaveUp`]).

use std::sync::Arc;
use std::time::Instant;

use super::{Origin, Shipper};
use crate::sink::batch::SealedBatch;
use crate::sink::retry::{classify, Failure};
use crate::sink::Outcome;
use crate::Error;

/// After this many rows in a row refused at line 1 with the same SQLSTATE,
/// the error is taken to hit every row (a new `NOT NULL` column, say), and
/// the rest of the batch is quarantined as a unit instead of row by row.
const BATCH_WIDE_AFTER: u32 = 3;

/// The state of one [`Shipper::deliver`]: a stack of batches still to
/// ship (a batch and, after a bisection, its pieces) and what is done.
pub(super) struct Delivery {
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
pub(super) struct GaveUp {
    pub(super) delivered: Outcome,
    /// What is still to be shipped: the original batch when `untouched`.
    pub(super) remaining: Vec<SealedBatch>,
    pub(super) untouched: bool,
    /// The last attempt's outcome is unknown (it may have committed).
    pub(super) unknown: bool,
    pub(super) error: Arc<Error>,
}

impl Shipper {
    /// Delivers `batch` and what it splits into. Returns what was
    /// delivered, or, when it gave up, that and what could not be.
    pub(super) fn deliver(
        &mut self,
        batch: SealedBatch,
        origin: Origin,
    ) -> Result<Outcome, Box<GaveUp>> {
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
                    if self.shared.health().is_down() || !self.unresolved.is_empty() {
                        let mut out = std::mem::take(&mut d.delivered);
                        self.mark_up(&mut out);
                        d.delivered = out;
                    }
                }
                Err(Error::LedgerKeyTaken { batch_id }) => {
                    // Loud, once per batch: someone wrote ledger rows.
                    eprintln!(
                        "ringtrail: the ledger key of batch {batch_id} is taken by a row this \
                         batch did not write; committing it under an id of its own"
                    );
                    d.work.push(batch.reidentified());
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
    /// retries or the spool's `after` ran out, or the cutoff would pass).
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
        let give_up = self.shared.gives_up(
            d.attempt,
            self.max_retries,
            since,
            self.spool_after,
            retry_at,
        );
        if give_up {
            let error = Arc::new(error);
            self.mark_down(error.clone());
            return Err(d.give_up(batch, error));
        }
        std::thread::sleep(retry_at.saturating_duration_since(Instant::now()));
        d.work.push(batch);
        Ok(())
    }
}

impl Delivery {
    fn committed(&mut self, batch: &SealedBatch) {
        let rows = batch.events();
        let out = &mut self.delivered;
        out.batches += 1;
        match self.origin {
            Origin::Live | Origin::Bus => out.written += rows,
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
            Origin::Live | Origin::Bus => out.dead_lettered += events,
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
