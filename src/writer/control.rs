//! [`Control`]: how the guard talks to the writer thread (flush and
//! shutdown requests, completion), and the writer's counters.
//!
//! Flushes are tickets. `flush()` takes the next ticket number and waits
//! until the writer reports a completed number at least as large. The writer
//! reads the latest ticket before a drain pass and completes it after the
//! pass's commit, so every event published before `flush()` was called is
//! committed (or reported spooled or lost) when it returns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::counters::{counters, read};
use crate::ring::{DropReason, Ring};
use crate::sink::{BatchFailure, Cutoff, JsonlCounters, Outcome, OutcomeTotals};
use crate::{Error, Result, Stats};

counters! {
    /// The writer's own counts (a commit's are an [`Outcome`]).
    #[derive(Debug, Default, Clone)]
    pub(crate) struct WriterCounts {
        /// Records taken from the ring.
        received,
        /// In-band `ringtrail::dropped` rows added.
        drop_reports,
        /// Values or spans of text redaction replaced, over all rows.
        redacted,
    }
    /// The writer's running totals, written by the writer thread only.
    pub(crate) struct WriterTotals;
}

/// Everything the writer has counted: its own totals and where the rows
/// of every commit went.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) writer: WriterTotals,
    pub(crate) outcomes: OutcomeTotals,
    /// The highest completed flush ticket.
    completed: AtomicU64,
}

impl Counters {
    /// Adds where a commit's or a replay's rows went.
    pub(crate) fn apply(&self, outcome: &Outcome) {
        self.outcomes.add(outcome);
    }

    /// Every row ever counted lost, for the in-band reports.
    pub(crate) fn lost_total(&self) -> u64 {
        read(&self.outcomes.lost)
    }

    /// Rows of an earlier process's spool that could not be replayed or
    /// spooled again.
    pub(crate) fn inherited_lost(&self) -> u64 {
        read(&self.outcomes.inherited_lost)
    }

    /// Spool segments refused, never replayed.
    pub(crate) fn spool_refused(&self) -> u64 {
        read(&self.outcomes.spool_refused)
    }

    /// The highest completed flush ticket.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct State {
    requested: u64,
    /// Set by a shutdown request: the writer's deadline for its last commits.
    shutdown: Option<Instant>,
    exited: bool,
    /// Recent failures and the ticket range each was reported to, newest
    /// last, so concurrent flushes each see the failure of their own range.
    failures: VecDeque<(u64, u64, BatchFailure)>,
}

/// How many failure ranges are remembered for waiting flushes.
const FAILURES_KEPT: usize = 64;

/// Requests from the guard to the writer, and their completion.
#[derive(Default)]
pub(crate) struct Control {
    state: Mutex<State>,
    changed: Condvar,
    pub(crate) counters: Counters,
    /// The shutdown deadline, shared with the sink's threads.
    pub(crate) cutoff: Arc<Cutoff>,
    /// The JSON-lines sink's counters, shared with its output thread.
    pub(crate) jsonl: Arc<JsonlCounters>,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind, which is
        // still consistent; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writer: the latest flush ticket, and the shutdown deadline if a
    /// shutdown was asked for.
    pub(crate) fn requests(&self) -> (u64, Option<Instant>) {
        let state = self.lock();
        (state.requested, state.shutdown)
    }

    /// Writer: whether anything waits for it, so it must not sleep.
    pub(crate) fn has_requests(&self) -> bool {
        let state = self.lock();
        state.requested > self.counters.completed() || state.shutdown.is_some()
    }

    /// Writer: tickets up to `ticket` are done, with a failure if a batch
    /// in their range was not committed.
    pub(crate) fn complete(&self, ticket: u64, failure: Option<BatchFailure>) {
        let mut state = self.lock();
        let previous = self.counters.completed();
        if let Some(failure) = failure {
            if state.failures.len() == FAILURES_KEPT {
                state.failures.pop_front();
            }
            state.failures.push_back((previous, ticket, failure));
        }
        if ticket > previous {
            self.counters.completed.store(ticket, Ordering::Release);
        }
        self.changed.notify_all();
    }

    /// Writer: it has returned and will complete nothing more.
    pub(crate) fn exited(&self) {
        self.lock().exited = true;
        self.changed.notify_all();
    }

    /// Guard: takes a flush ticket.
    pub(crate) fn request_flush(&self) -> u64 {
        let mut state = self.lock();
        state.requested += 1;
        state.requested
    }

    /// Guard: asks the writer to finish its last commits by `deadline`, and
    /// takes a last ticket.
    pub(crate) fn request_shutdown(&self, deadline: Instant) -> u64 {
        let mut state = self.lock();
        state.shutdown = Some(deadline);
        self.cutoff.set(deadline);
        state.requested += 1;
        state.requested
    }

    /// Guard: waits until `ticket` is completed, the writer exits, or the
    /// deadline passes.
    pub(crate) fn wait(&self, ticket: u64, deadline: Option<Instant>) -> Result<()> {
        let mut state = self.lock();
        loop {
            if self.counters.completed() >= ticket {
                let mine = state
                    .failures
                    .iter()
                    .rev()
                    .find(|(after, upto, _)| ticket > *after && ticket <= *upto);
                return match mine {
                    Some((_, _, failure)) => Err(failure.to_error()),
                    None => Ok(()),
                };
            }
            if state.exited {
                return Err(Error::WriterGone);
            }
            state = match deadline {
                None => self.changed.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout("waiting for the writer to flush"));
                    }
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

impl Control {
    /// The pipeline's counters now, from the ring and this control (what
    /// [`Guard::stats`](crate::Guard::stats) returns; the writer thread
    /// reads the same for the `metrics` export).
    pub(crate) fn stats(&self, ring: &Ring) -> Stats {
        let counters = &self.counters;
        // Read the writer's count before the ring: a record moving from one
        // to the other is then counted once or not at all, never twice.
        let writer = counters.writer.snapshot();
        let queued = ring.ready_len() as u64;
        let ring_full = ring.dropped(DropReason::RingFull);
        let evicted = ring.dropped(DropReason::Evicted);
        let block_timeout = ring.dropped(DropReason::BlockTimeout);
        let after_shutdown = ring.dropped(DropReason::AfterShutdown);
        let audit = ring.dropped(DropReason::AuditTimeout);
        let outcomes = counters.outcomes.snapshot();
        Stats {
            jsonl: self.jsonl.snapshot(),
            enqueued: writer.received + queued,
            dropped: ring_full + evicted + block_timeout + after_shutdown + audit,
            audit_dropped: audit,
            dropped_ring_full: ring_full,
            dropped_evicted: evicted,
            dropped_block_timeout: block_timeout,
            dropped_after_shutdown: after_shutdown,
            written: outcomes.written,
            batches: outcomes.batches,
            queued,
            // This process's rows in the spool now; rows counted lost less
            // those whose batch turned out committed after all.
            spooled: outcomes.spooled.saturating_sub(outcomes.unspooled),
            dead_lettered: outcomes.dead_lettered,
            lost: outcomes.lost.saturating_sub(outcomes.resolved),
            recovered: outcomes.recovered,
            inherited_lost: outcomes.inherited_lost,
            spool_refused: outcomes.spool_refused,
            checkpoint_file_errors: outcomes.checkpoint_file_errors,
            drop_reports: writer.drop_reports,
            redacted: writer.redacted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Fate};

    fn failure(fate: Fate) -> BatchFailure {
        BatchFailure::new(fate, Error::Timeout("a test"))
    }

    #[test]
    fn concurrent_flushes_each_see_the_failure_of_their_own_range() {
        let control = Control::default();
        let first = control.request_flush();
        control.complete(first, Some(failure(Fate::Spooled)));
        let second = control.request_flush();
        control.complete(second, Some(failure(Fate::Lost)));
        let third = control.request_flush();
        control.complete(third, None);
        // The first waiter wakes only now: its failure was not overwritten.
        let fate = |ticket| match control.wait(ticket, None) {
            Err(Error::Write { fate, .. }) => Some(fate),
            Ok(()) => None,
            Err(other) => panic!("{other}"),
        };
        assert_eq!(fate(first), Some(Fate::Spooled));
        assert_eq!(fate(second), Some(Fate::Lost));
        assert_eq!(fate(third), None);
    }
}
