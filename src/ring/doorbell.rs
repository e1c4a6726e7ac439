//! [`Doorbell`]: wakes the parked writer thread without a system call per
//! event.
//!
//! The writer sets `parked` before it sleeps and clears it when it wakes.
//! Producers read `parked` (a line that changes only when the writer goes to
//! sleep or wakes, so it stays in every core's cache) and call
//! `Thread::unpark` only when the writer sleeps *and* the event is urgent or
//! a batch's worth of records is waiting. While the writer is busy, the
//! cost is one relaxed load.
//!
//! A wake-up can be missed in a race (the writer parks just after a
//! producer looked). That costs latency, never data: the writer always
//! sleeps with a timeout no longer than the flush interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;

/// Lets producers wake the writer thread cheaply.
pub(crate) struct Doorbell {
    parked: AtomicBool,
    writer: OnceLock<Thread>,
    wake_at: usize,
}

impl Doorbell {
    /// A doorbell that rings once `wake_at` records wait.
    pub(crate) fn new(wake_at: usize) -> Doorbell {
        Doorbell {
            parked: AtomicBool::new(false),
            writer: OnceLock::new(),
            wake_at: wake_at.max(1),
        }
    }

    /// Registers the thread to wake. Called once by the writer thread.
    pub(crate) fn register_writer(&self) {
        let _ = self.writer.set(std::thread::current());
    }

    /// Wakes the writer if it sleeps and `urgent` or `waiting() >= wake_at`.
    #[inline]
    pub(crate) fn ring_if_needed(&self, urgent: bool, waiting: impl FnOnce() -> usize) {
        if self.parked.load(Ordering::Relaxed) && (urgent || waiting() >= self.wake_at) {
            self.ring();
        }
    }

    /// Wakes the writer unconditionally (flush, shutdown).
    pub(crate) fn ring(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// Writer side: announce that the writer is about to sleep.
    pub(crate) fn set_parked(&self, parked: bool) {
        // SeqCst pairs with the writer's re-check of the ready queue after
        // setting the flag, which narrows the missed-wake-up window.
        self.parked.store(parked, Ordering::SeqCst);
    }
}
