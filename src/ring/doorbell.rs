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
//! No wake-up is missed, on any CPU, by the standard store-fence-load
//! pairing (Dekker's): the producer stores (publishes its slot index), then
//! a SeqCst fence, then loads `parked`; the writer stores `parked = true`,
//! then a SeqCst fence, then loads the ready queues. The two fences are
//! totally ordered, so at least one side sees the other's store: either the
//! producer sees `parked` and unparks, or the writer sees the record and
//! does not sleep. (Without the fences, a weakly ordered CPU could let both
//! loads pass their stores, and an ERROR would wait a whole flush
//! interval.) On x86 the producer's fence follows the queue's locked CAS,
//! with the store buffer already drained, so it is cheap.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;

use super::OwnLine;

/// Lets producers wake the writer thread cheaply.
pub(crate) struct Doorbell {
    /// On a line of its own: the writer stores it at every sleep and wake.
    parked: OwnLine<AtomicBool>,
    writer: OnceLock<Thread>,
    wake_at: usize,
}

impl Doorbell {
    /// A doorbell that rings once `wake_at` records wait.
    pub(crate) fn new(wake_at: usize) -> Doorbell {
        Doorbell {
            parked: OwnLine(AtomicBool::new(false)),
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
        // Pairs with the fence in `park`: see the module docs.
        fence(Ordering::SeqCst);
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

    /// Writer side: announces that the writer is about to sleep. The
    /// caller must re-check the ready queues after this, before sleeping.
    pub(crate) fn park(&self) {
        self.parked.store(true, Ordering::Relaxed);
        // Pairs with the fence in `ring_if_needed`: see the module docs.
        fence(Ordering::SeqCst);
    }

    /// Writer side: awake again.
    pub(crate) fn unpark(&self) {
        self.parked.store(false, Ordering::Relaxed);
    }
}
