//! [`Guard`]: flushing and stopping a running pipeline, and reading its
//! counters.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ring::Ring;
use crate::thread::OwnThread;
use crate::writer::Control;
use crate::{Error, Result, Stats};

/// Owns the writer thread. Keep it alive as long as events should be
/// written; dropping it flushes (up to the shutdown deadline) and stops the
/// writer.
#[must_use = "dropping the guard stops the writer"]
pub struct Guard {
    ring: Arc<Ring>,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ringtrail::Guard")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Guard {
    pub(crate) fn new(
        ring: Arc<Ring>,
        control: Arc<Control>,
        thread: JoinHandle<()>,
        shutdown_timeout: Duration,
    ) -> Guard {
        Guard {
            ring,
            control,
            thread: Some(thread),
            shutdown_timeout,
        }
    }

    /// Blocks until every event enqueued before this call is committed.
    /// Returns an error if a batch holding some of them could not be
    /// committed (it was spooled, or lost when no spool is configured), or
    /// the writer is gone.
    ///
    /// Blocks the calling thread; from async code, call it through
    /// `spawn_blocking`.
    pub fn flush(&self) -> Result<()> {
        self.flush_until(None)
    }

    /// Like [`flush`](Guard::flush), but gives up after `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        self.flush_until(Some(Instant::now() + timeout))
    }

    fn flush_until(&self, deadline: Option<Instant>) -> Result<()> {
        flush(&self.ring, &self.control, deadline)
    }

    /// An [`Ingest`](crate::Ingest) handle pushing records that are not
    /// `tracing` events into this pipeline's ring (OTLP logs and spans,
    /// say), each answered taken or refused.
    pub fn ingest(&self) -> crate::Ingest {
        crate::Ingest::new(Arc::clone(&self.ring))
    }

    /// The pipeline's counters now.
    pub fn stats(&self) -> Stats {
        self.control.stats(&self.ring)
    }

    /// Flushes, stops the writer and shipper threads (joining them) and
    /// returns the final counters. Returns within `timeout`: by then
    /// everything not known committed (the ring's last records, the queued
    /// batches, the batch in flight, its outcome unknown) is in the spool,
    /// when one is configured, or counted lost. Events emitted afterwards
    /// are dropped at once and counted in `dropped_after_shutdown`.
    ///
    /// When not everything was committed, or the deadline passed, the error
    /// is [`Error::Shutdown`] with the final counters inside.
    pub fn shutdown(mut self, timeout: Duration) -> Result<Stats> {
        match self.stop(timeout) {
            Ok(()) => Ok(self.stats()),
            Err(e) => Err(Error::Shutdown {
                stats: Box::new(self.stats()),
                source: Box::new(e),
            }),
        }
    }

    fn stop(&mut self, timeout: Duration) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        // Leave the writer a margin to spool what it could not commit.
        let margin = (timeout / 5).min(Duration::from_millis(500));
        let ticket = self.control.request_shutdown(deadline - margin);
        self.ring.doorbell.ring();
        let outcome = self.control.wait(ticket, Some(deadline));
        match outcome {
            Err(Error::Timeout(_)) => {}
            _ => {
                let _ = thread.join();
            }
        }
        outcome
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.stop(self.shutdown_timeout) {
            eprintln!("ringtrail: shutdown: {e}");
        }
    }
}

/// Takes a flush ticket, wakes the writer, and waits for the ticket.
fn flush(ring: &Ring, control: &Control, deadline: Option<Instant>) -> Result<()> {
    let ticket = control.request_flush();
    ring.doorbell.ring();
    control.wait(ticket, deadline)
}

/// Chains a panic hook that flushes this pipeline, then runs the previous
/// hook. It holds the pipeline weakly: once the guard is gone it does
/// nothing.
pub(crate) fn install_panic_flush(ring: Weak<Ring>, control: Weak<Control>, timeout: Duration) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The writer cannot wait for itself.
        let on_writer = OwnThread::Writer.is_current();
        if let (false, Some(ring), Some(control)) = (on_writer, ring.upgrade(), control.upgrade()) {
            if let Err(e) = flush(&ring, &control, Some(Instant::now() + timeout)) {
                eprintln!("ringtrail: flush on panic: {e}");
            }
        }
        previous(info);
    }));
}
