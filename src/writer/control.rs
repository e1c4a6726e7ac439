//! [`Control`]: how the guard talks to the writer thread (flush and
//! shutdown requests, completion), and the writer's counters.
//!
//! Flushes are tickets. `flush()` takes the next ticket number and waits
//! until the writer reports a completed number at least as large. The writer
//! reads the latest ticket before a drain pass and completes it after the
//! pass's commit, so every event published before `flush()` was called is
//! committed (or reported failed) when it returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::{Error, Result};

/// Monotonic counters, written by the writer thread only.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    written: AtomicU64,
    batches: AtomicU64,
    failed: AtomicU64,
    completed: AtomicU64,
}

impl Counters {
    pub(crate) fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_written(&self, rows: u64) {
        self.written.fetch_add(rows, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_failed(&self, rows: u64) {
        self.failed.fetch_add(rows, Ordering::Relaxed);
    }
    /// Records taken from the ring.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    /// Rows committed.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
    /// Batches committed.
    pub(crate) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
    /// Rows lost to failed batches.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    /// The highest completed flush ticket.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct State {
    requested: u64,
    shutdown: bool,
    exited: bool,
    /// The last failure and the ticket range it was reported to.
    failure: Option<(u64, u64, String)>,
}

/// Requests from the guard to the writer, and their completion.
#[derive(Default)]
pub(crate) struct Control {
    state: Mutex<State>,
    changed: Condvar,
    pub(crate) counters: Counters,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind, which is
        // still consistent; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writer: the latest flush ticket and whether shutdown was asked for.
    pub(crate) fn requests(&self) -> (u64, bool) {
        let state = self.lock();
        (state.requested, state.shutdown)
    }

    /// Writer: whether anything waits for it, so it must not sleep.
    pub(crate) fn has_requests(&self) -> bool {
        let state = self.lock();
        state.requested > self.counters.completed() || state.shutdown
    }

    /// Writer: tickets up to `ticket` are done, with a failure if a batch
    /// in their range was dropped.
    pub(crate) fn complete(&self, ticket: u64, failure: Option<String>) {
        let mut state = self.lock();
        let previous = self.counters.completed();
        if let Some(message) = failure {
            state.failure = Some((previous, ticket, message));
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

    /// Guard: asks the writer to finish, and takes a last ticket.
    pub(crate) fn request_shutdown(&self) -> u64 {
        let mut state = self.lock();
        state.shutdown = true;
        state.requested += 1;
        state.requested
    }

    /// Guard: waits until `ticket` is completed, the writer exits, or the
    /// deadline passes.
    pub(crate) fn wait(&self, ticket: u64, deadline: Option<Instant>) -> Result<()> {
        let mut state = self.lock();
        loop {
            if self.counters.completed() >= ticket {
                return match &state.failure {
                    Some((after, upto, message)) if ticket > *after && ticket <= *upto => {
                        Err(Error::Write(message.clone()))
                    }
                    _ => Ok(()),
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
