//! The ring: a fixed pool of fixed-size record slots between the capture
//! stage (many producer threads) and the writer (one consumer thread).
//!
//! ```text
//!   producer                       writer
//!   free.pop() ─► fill slot ─► ready.push()     ready.pop() ─► decode ─► free.push()
//! ```
//!
//! Records never move. A producer claims a slot index from the `free`
//! queue, writes its record in place, and publishes the index on the `ready`
//! queue; the writer decodes the record where it lies and hands the index
//! back. Both queues are `crossbeam_queue::ArrayQueue<u32>`, so a push or pop
//! moves four bytes, not a record: with 512-byte records this is several
//! times cheaper than an `ArrayQueue<Record>`, which copies every record twice
//! (measured in `benches/hot_path.rs`).
//!
//! Memory is allocated once, up front: `capacity × record_size` bytes of
//! slots plus two index queues. Nothing on the producer path allocates,
//! locks, or makes a system call.
//!
//! The [`Doorbell`] lets producers wake a parked writer without a syscall per
//! event.

mod doorbell;
mod slots;

pub(crate) use doorbell::Doorbell;
pub(crate) use slots::{SlotPool, MIN_RECORD_SIZE};

use std::sync::atomic::{AtomicU64, Ordering};

/// The shared half of the pipeline that the hot path touches: the slot pool,
/// the doorbell and the drop counter.
pub(crate) struct Ring {
    pub(crate) slots: SlotPool,
    pub(crate) doorbell: Doorbell,
    /// Events dropped because no slot was free. Only touched when the ring is
    /// full, so its cache line is not contended in steady state.
    dropped_full: AtomicU64,
}

impl Ring {
    /// A ring of `capacity` slots of `record_size` bytes each. The writer is
    /// woken once `wake_at` records are waiting (or at once for an ERROR).
    pub(crate) fn new(capacity: usize, record_size: usize, wake_at: usize) -> Ring {
        Ring {
            slots: SlotPool::new(capacity, record_size),
            doorbell: Doorbell::new(wake_at),
            dropped_full: AtomicU64::new(0),
        }
    }

    /// Counts one event lost to a full ring.
    #[inline]
    pub(crate) fn count_dropped_full(&self) {
        self.dropped_full.fetch_add(1, Ordering::Relaxed);
    }

    /// Events lost to a full ring so far.
    pub(crate) fn dropped_full(&self) -> u64 {
        self.dropped_full.load(Ordering::Relaxed)
    }

    /// Rings the doorbell when the writer sleeps and either this event is
    /// urgent or enough records wait. Costs one relaxed load of a line the
    /// writer rarely writes, so it is nearly free while the writer is awake.
    #[inline]
    pub(crate) fn notify_writer(&self, urgent: bool) {
        self.doorbell
            .ring_if_needed(urgent, || self.slots.ready_len());
    }
}
