//! [`OverflowPolicy`]: what an event does when the ring is full.
//!
//! The policy only runs on the slow path, after `claim()` found no free
//! slot, so choosing one costs nothing while the ring has room.
//!
//! ```no_run
//! use std::time::Duration;
//! use ringtrail::OverflowPolicy;
//!
//! let (layer, guard) = ringtrail::Builder::new()
//!     .postgres("postgres://postgres@127.0.0.1/app")
//!     // Debug chatter may be lost under overload; warnings and errors wait
//!     // up to 2 ms for room.
//!     .overflow(OverflowPolicy::DropNewest)
//!     .overflow_at_or_above(tracing::Level::WARN, OverflowPolicy::Block { timeout: Duration::from_millis(2) })
//!     .build()?;
//! # Ok::<(), ringtrail::Error>(())
//! ```

use std::time::{Duration, Instant};

use super::{Ring, SlotPool};

/// What happens to an event that finds the ring full. Every loss is counted
/// in [`Stats`](crate::Stats) by reason, and reported in band by a
/// `ringtrail::dropped` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Drop the new event. The cheapest: one counter increment. The default
    /// below WARN.
    DropNewest,
    /// Evict the oldest queued event and take its slot, so the ring holds
    /// the most recent history (like `ArrayQueue::force_push`).
    DropOldest,
    /// Wait for room: spin briefly, then yield, until a slot frees or
    /// `timeout` passes; a timeout drops the event. Never awaits. The
    /// default for WARN and ERROR, with a 5 ms timeout.
    Block {
        /// The longest the calling thread waits.
        timeout: Duration,
    },
}

/// Why an event was lost; indexes the drop counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    RingFull = 0,
    Evicted = 1,
    BlockTimeout = 2,
    /// Emitted after the pipeline shut down: nothing drains the ring.
    AfterShutdown = 3,
    /// An audit point found the standard slots and the audit reserve full
    /// for its whole (longer) wait.
    AuditTimeout = 4,
}

impl DropReason {
    pub(crate) const ALL: [DropReason; 5] = [
        DropReason::RingFull,
        DropReason::Evicted,
        DropReason::BlockTimeout,
        DropReason::AfterShutdown,
        DropReason::AuditTimeout,
    ];

    /// The `reason` written in the in-band `ringtrail::dropped` row.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DropReason::RingFull => "ring_full",
            DropReason::Evicted => "evicted_oldest",
            DropReason::BlockTimeout => "block_timeout",
            DropReason::AfterShutdown => "after_shutdown",
            DropReason::AuditTimeout => "audit_block_timeout",
        }
    }
}

/// Spins this many times before yielding the CPU.
const SPINS: u32 = 64;

impl Ring {
    /// An audit point found no free standard slot: takes one of the
    /// reserve, or waits (spinning, then yielding) up to the audit timeout
    /// for one; past it the point is dropped and counted
    /// apart (`audit_block_timeout`).
    pub(crate) fn claim_audit(&self, reserve: &SlotPool) -> Option<u32> {
        if let Some(index) = reserve.claim() {
            return Some(index);
        }
        if self.is_closed() {
            self.count_dropped(DropReason::AfterShutdown);
            return None;
        }
        // The reserve only: plain events race for standard slots as they
        // free up, but nothing else competes for these.
        self.wait_for_slot(self.audit_timeout, DropReason::AuditTimeout, || {
            reserve.claim()
        })
    }

    /// The slow path: no free slot. Applies the level's policy and returns a
    /// slot to write into, or `None` when the event is dropped (and counted).
    #[cold]
    #[inline(never)]
    pub(crate) fn claim_when_full(&self, policy: OverflowPolicy) -> Option<u32> {
        if self.is_closed() {
            // Shut down: the writer holds every free slot. Nothing waits.
            self.count_dropped(DropReason::AfterShutdown);
            return None;
        }
        match policy {
            OverflowPolicy::DropNewest => {
                self.count_dropped(DropReason::RingFull);
                None
            }
            OverflowPolicy::DropOldest => {
                // The oldest published record is the head of `ready`; taking
                // it gives this thread its slot. If the writer emptied
                // `ready` meanwhile, a slot is probably free again.
                for _ in 0..SPINS {
                    if let Some(index) = self.slots.evict() {
                        self.count_dropped(DropReason::Evicted);
                        return Some(index);
                    }
                    if let Some(index) = self.slots.claim() {
                        return Some(index);
                    }
                    std::hint::spin_loop();
                }
                self.count_dropped(DropReason::RingFull);
                None
            }
            OverflowPolicy::Block { timeout } => {
                self.wait_for_slot(timeout, DropReason::BlockTimeout, || self.slots.claim())
            }
        }
    }

    /// Waits up to `timeout` for `claim` to yield a slot, spinning briefly,
    /// then yielding the CPU, with the writer woken so it drains meanwhile.
    /// A timeout is counted as `reason`; a shutdown meanwhile as
    /// `AfterShutdown`. Never sleeps past the timeout, never parks.
    fn wait_for_slot(
        &self,
        timeout: Duration,
        reason: DropReason,
        mut claim: impl FnMut() -> Option<u32>,
    ) -> Option<u32> {
        self.doorbell.ring();
        let deadline = Instant::now() + timeout;
        let mut spins = 0;
        loop {
            if let Some(index) = claim() {
                return Some(index);
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            if self.is_closed() {
                self.count_dropped(DropReason::AfterShutdown);
                return None;
            }
            if Instant::now() >= deadline {
                self.count_dropped(reason);
                return None;
            }
            std::thread::yield_now();
        }
    }
}
