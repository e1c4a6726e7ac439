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
mod overflow;
mod slots;

pub(crate) use doorbell::Doorbell;
pub(crate) use overflow::DropReason;
pub use overflow::OverflowPolicy;
pub(crate) use slots::{SlotPool, MIN_RECORD_SIZE};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tracing::Level;

use crate::clock::Clock;

/// The shared half of the pipeline that the hot path touches: the slot pool,
/// the doorbell, the overflow policies and the drop counters.
pub(crate) struct Ring {
    pub(crate) slots: SlotPool,
    /// Event time, read raw on the hot path.
    pub(crate) clock: Clock,
    pub(crate) doorbell: Doorbell,
    /// Overflow policy per level, indexed by [`level_index`].
    policies: [OverflowPolicy; 5],
    /// Events lost, by [`DropReason`]. Only touched when the ring is full,
    /// so these lines are not contended in steady state.
    dropped: [AtomicU64; 4],
    /// Set at shutdown; read only on the full-ring path.
    closed: AtomicBool,
}

/// TRACE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4.
#[inline]
pub(crate) fn level_index(level: &Level) -> usize {
    match *level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

/// The ring's shape and overflow policies, as the builder sets them.
#[derive(Debug, Clone)]
pub(crate) struct RingConfig {
    pub(crate) capacity: usize,
    pub(crate) record_size: usize,
    pub(crate) shards: usize,
    /// Indexed by [`level_index`].
    pub(crate) overflow: [OverflowPolicy; 5],
}

impl Default for RingConfig {
    /// 16,384 records of 512 bytes (8 MiB), one shard per CPU up to 8,
    /// `DropNewest` below WARN and `Block { 5 ms }` for WARN and ERROR.
    fn default() -> Self {
        let block = OverflowPolicy::Block {
            timeout: Duration::from_millis(5),
        };
        let drop = OverflowPolicy::DropNewest;
        RingConfig {
            capacity: 16_384,
            record_size: 512,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            overflow: [drop, drop, drop, block, block],
        }
    }
}

impl Ring {
    /// A ring of `capacity` slots of `record_size` bytes each, in up to
    /// `shards` shards. The writer is woken once `wake_at` records are
    /// waiting (or at once for an ERROR).
    pub(crate) fn new(config: &RingConfig, wake_at: usize) -> Ring {
        Ring {
            slots: SlotPool::new(config.capacity, config.record_size, config.shards),
            clock: Clock::new(),
            doorbell: Doorbell::new(wake_at),
            policies: config.overflow,
            dropped: Default::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Shutdown: from now on an event that finds no free slot is dropped
    /// at once (counted as `after_shutdown`), whatever its policy. The
    /// writer then takes every slot out of circulation.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A slot for an event at `level`: a free one, or whatever the level's
    /// overflow policy yields when the ring is full.
    #[inline]
    pub(crate) fn claim(&self, level: &Level) -> Option<u32> {
        match self.slots.claim() {
            Some(index) => Some(index),
            None => self.claim_when_full(self.policies[level_index(level)]),
        }
    }

    /// Counts one lost event.
    pub(crate) fn count_dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Events lost so far for `reason`.
    pub(crate) fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
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
