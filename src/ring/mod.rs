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
pub(crate) use slots::{DrainPass, SlotPool, MIN_RECORD_SIZE};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tracing::Metadata;

use crate::capture::record::MAX_RECORD_SIZE;
use crate::error::check_duration;
use crate::time::clock::Clock;

/// The shared half of the pipeline that the hot path touches: the slot pool,
/// the doorbell, the overflow policies and the drop counters.
pub(crate) struct Ring {
    pub(crate) slots: SlotPool,
    /// The large size class: a few slots of [`LARGE_RECORD_SIZE`] bytes
    /// for events that do not fit a standard slot, carved out of the same
    /// memory budget. `None` for rings too small to spare one, or whose
    /// records are that large already.
    large: Option<SlotPool>,
    /// The audit reserve: slots only audit points (target
    /// [`audit::TARGET`](crate::audit::TARGET)) may use, once the standard
    /// slots are all taken, so a flood of plain logs cannot cost one audit
    /// point. Carved out of the same budget. `None` when turned off.
    audit: Option<SlotPool>,
    /// How long an audit point waits when even the reserve is full.
    audit_timeout: Duration,
    /// Event time, read raw on the hot path.
    pub(crate) clock: Clock,
    pub(crate) doorbell: Doorbell,
    /// Overflow policy per level, indexed by [`level::index`](crate::level::index).
    policies: [OverflowPolicy; 5],
    /// Events lost, by [`DropReason`]. Only touched when the ring is full,
    /// so these lines are not contended in steady state.
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// Set at shutdown; read only on the full-ring path.
    closed: AtomicBool,
}

/// Keeps a value on cache lines no other field shares (128 bytes: the
/// adjacent-line prefetcher pairs 64-byte lines). For the few words one
/// thread writes often and others read: a write to a shared line would
/// cost every producer a cache miss on the fields beside it.
#[repr(align(128))]
pub(crate) struct OwnLine<T>(pub(crate) T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Bytes of a slot of the large size class.
pub(crate) const LARGE_RECORD_SIZE: usize = 16 << 10;

/// The most slots of the large class.
const MAX_LARGE_SLOTS: usize = 64;

/// Which pool a slot index belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotClass {
    Standard,
    Large,
    /// The audit reserve.
    Audit,
}

/// Default share of the standard slots reserved for audit points: an
/// eighth, at least [`MIN_AUDIT_SLOTS`], never more than a quarter.
const AUDIT_SHARE: usize = 8;
/// The least a default audit reserve holds, when a quarter of the ring
/// allows it.
const MIN_AUDIT_SLOTS: usize = 64;

/// Slots reserved for audit points out of `standard` slots: `wanted`, or
/// by default an eighth, at least 64, at most a quarter (so a tiny ring
/// keeps most of its room for plain events). Never all of them.
fn audit_reserve(standard: usize, wanted: Option<usize>) -> usize {
    match wanted {
        Some(n) => n.min(standard / 2),
        None => (standard / AUDIT_SHARE)
            .max(MIN_AUDIT_SLOTS)
            .min(standard / 4),
    }
}

/// Splits a budget of `capacity` records of `record_size` bytes into
/// standard slots and large slots: by default a sixteenth of the bytes (at
/// most 64 slots of 16 KiB) goes to the large class, when that is at least
/// one slot; `wanted` overrides the count (never more than half the bytes).
fn size_classes(capacity: usize, record_size: usize, wanted: Option<usize>) -> (usize, usize) {
    if record_size >= LARGE_RECORD_SIZE {
        return (capacity, 0);
    }
    let budget = capacity * record_size;
    let large = match wanted {
        Some(n) => n.min(budget / 2 / LARGE_RECORD_SIZE),
        None => (budget / 16 / LARGE_RECORD_SIZE).min(MAX_LARGE_SLOTS),
    };
    let standard = capacity - (large * LARGE_RECORD_SIZE).div_ceil(record_size);
    (standard, large)
}

/// A writer drain pass over every slot class.
pub(crate) struct RingPass {
    standard: DrainPass,
    large: Option<DrainPass>,
    audit: Option<DrainPass>,
}

/// The ring's shape and overflow policies, as the builder sets them.
#[derive(Debug, Clone)]
pub(crate) struct RingConfig {
    pub(crate) capacity: usize,
    pub(crate) record_size: usize,
    pub(crate) shards: usize,
    /// Indexed by [`level::index`](crate::level::index).
    pub(crate) overflow: [OverflowPolicy; 5],
    /// Slots of the large size class; `None` for the default share.
    pub(crate) large_slots: Option<usize>,
    /// Slots of the audit reserve; `None` for the default share.
    pub(crate) audit_slots: Option<usize>,
    /// How long an audit point waits for room when even the reserve is
    /// full.
    pub(crate) audit_timeout: Duration,
}

/// The default [`RingConfig::audit_timeout`]: ten times WARN's and ERROR's
/// 5 ms.
pub(crate) const AUDIT_TIMEOUT: Duration = Duration::from_millis(50);

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
            large_slots: None,
            audit_slots: None,
            audit_timeout: AUDIT_TIMEOUT,
        }
    }
}

/// The most records a ring holds: slot indices are `u32`.
pub(crate) const MAX_CAPACITY: usize = u32::MAX as usize;

impl RingConfig {
    /// [`Error::Config`](crate::Error::Config) naming the first setting
    /// out of range: the capacity (1 to [`MAX_CAPACITY`]), the record size
    /// ([`MIN_RECORD_SIZE`] to [`MAX_RECORD_SIZE`]), the shards (at least
    /// one), and the audit and `Block` waits (at most a year).
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Config(m));
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return bad(format!(
                "capacity must be between 1 and {MAX_CAPACITY} records"
            ));
        }
        if !(MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&self.record_size) {
            return bad(format!(
                "record_size must be between {MIN_RECORD_SIZE} and {MAX_RECORD_SIZE} bytes"
            ));
        }
        if self.shards == 0 {
            return bad("shards must be at least 1".to_owned());
        }
        check_duration("audit_timeout", self.audit_timeout)?;
        for policy in self.overflow {
            if let OverflowPolicy::Block { timeout } = policy {
                check_duration("the Block overflow timeout", timeout)?;
            }
        }
        Ok(())
    }
}

impl Ring {
    /// A ring of `capacity` slots of `record_size` bytes each, in up to
    /// `shards` shards. The writer is woken once `wake_at` records are
    /// waiting (or at once for an ERROR).
    pub(crate) fn new(config: &RingConfig, wake_at: usize) -> Ring {
        let (standard, large) =
            size_classes(config.capacity, config.record_size, config.large_slots);
        let audit = audit_reserve(standard, config.audit_slots);
        Ring {
            slots: SlotPool::new(standard - audit, config.record_size, config.shards),
            large: (large > 0).then(|| SlotPool::new(large, LARGE_RECORD_SIZE, 1)),
            audit: (audit > 0).then(|| SlotPool::new(audit, config.record_size, 1)),
            audit_timeout: config.audit_timeout,
            clock: Clock::new(),
            doorbell: Doorbell::new(wake_at),
            policies: config.overflow,
            dropped: Default::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// The pool of a slot class.
    pub(crate) fn pool(&self, class: SlotClass) -> &SlotPool {
        let pool = match class {
            SlotClass::Standard => None,
            SlotClass::Large => self.large.as_ref(),
            SlotClass::Audit => self.audit.as_ref(),
        };
        pool.unwrap_or(&self.slots)
    }

    /// The classes besides the standard one that this ring has.
    fn extra_pools(&self) -> impl Iterator<Item = &SlotPool> {
        self.large.iter().chain(self.audit.iter())
    }

    /// Slots of the audit reserve (0 when off).
    pub(crate) fn audit_slots(&self) -> usize {
        self.audit.as_ref().map_or(0, SlotPool::capacity)
    }

    /// The audit reserve, if this ring has one.
    pub(crate) fn audit_pool(&self) -> Option<&SlotPool> {
        self.audit.as_ref()
    }

    /// The large class, if this ring has one.
    pub(crate) fn large(&self) -> Option<&SlotPool> {
        self.large.as_ref()
    }

    /// Slots of every class.
    pub(crate) fn total_slots(&self) -> usize {
        self.slots.capacity() + self.extra_pools().map(SlotPool::capacity).sum::<usize>()
    }

    /// Records published and not yet taken, in every class.
    pub(crate) fn ready_len(&self) -> usize {
        self.slots.ready_len() + self.extra_pools().map(SlotPool::ready_len).sum::<usize>()
    }

    /// A drain pass over every class (see [`SlotPool::take_in`]).
    pub(crate) fn drain_pass(&self) -> RingPass {
        RingPass {
            standard: self.slots.drain_pass(),
            large: self.large.as_ref().map(SlotPool::drain_pass),
            audit: self.audit.as_ref().map(SlotPool::drain_pass),
        }
    }

    pub(crate) fn refill(&self, pass: &mut RingPass) {
        self.slots.refill(&mut pass.standard);
        if let (Some(large), Some(p)) = (&self.large, &mut pass.large) {
            large.refill(p);
        }
        if let (Some(audit), Some(p)) = (&self.audit, &mut pass.audit) {
            audit.refill(p);
        }
    }

    /// The next record of the pass: the audit reserve's first, then
    /// standard slots, then large ones. When it returns `None`, every
    /// record of any class published before the pass began has been taken.
    ///
    /// Audit points come first because an audit point whose reserve is
    /// full waits (up to `audit_timeout`) for the writer to free one: under
    /// a flood of plain events the standard slots are never empty, and
    /// draining them first would make audit points wait out a whole pass.
    /// The reserve is small and usually empty, so checking it costs one
    /// failed pop per record.
    pub(crate) fn take_in(&self, pass: &mut RingPass) -> Option<(SlotClass, u32)> {
        if let (Some(audit), Some(p)) = (&self.audit, &mut pass.audit) {
            if let Some(index) = audit.take_in(p) {
                return Some((SlotClass::Audit, index));
            }
        }
        if let Some(index) = self.slots.take_in(&mut pass.standard) {
            return Some((SlotClass::Standard, index));
        }
        let (large, p) = (self.large.as_ref()?, pass.large.as_mut()?);
        large.take_in(p).map(|index| (SlotClass::Large, index))
    }

    /// Takes every free slot of every class out of circulation (shutdown).
    pub(crate) fn hoard_free(&self) -> usize {
        self.slots.hoard_free() + self.extra_pools().map(SlotPool::hoard_free).sum::<usize>()
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

    /// A slot for an event, and the pool it belongs to: a free standard
    /// one, or, when there is none, one of the audit reserve for an audit
    /// point, or whatever the level's overflow policy yields.
    #[inline]
    pub(crate) fn claim(&self, event: &Metadata<'_>) -> Option<(&SlotPool, u32)> {
        match self.slots.claim() {
            Some(index) => Some((&self.slots, index)),
            None => self.claim_slow(event),
        }
    }

    /// No free standard slot: the reserve for an audit point (the target
    /// is only compared here, off the hot path), else the level's policy.
    #[cold]
    #[inline(never)]
    fn claim_slow(&self, event: &Metadata<'_>) -> Option<(&SlotPool, u32)> {
        if let Some(audit) = &self.audit {
            if event.target() == crate::audit::TARGET {
                return self.claim_audit(audit).map(|index| (audit, index));
            }
        }
        self.claim_when_full(self.policies[crate::level::index(event.level())])
            .map(|index| (&self.slots, index))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_reserve_is_an_eighth_at_least_64_at_most_a_quarter() {
        assert_eq!(audit_reserve(15_360, None), 1_920);
        assert_eq!(audit_reserve(1_024, None), 128);
        assert_eq!(audit_reserve(300, None), 64);
        assert_eq!(audit_reserve(100, None), 25, "a quarter of a small ring");
        assert_eq!(audit_reserve(4, None), 1);
        assert_eq!(audit_reserve(16_384, Some(0)), 0);
        assert_eq!(audit_reserve(16_384, Some(10)), 10);
        assert_eq!(audit_reserve(100, Some(1_000)), 50, "never more than half");
        let ring = Ring::new(&RingConfig::default(), 1);
        assert_eq!(ring.audit_slots(), 1_920);
        assert_eq!(ring.slots.capacity(), 15_360 - 1_920);
    }

    #[test]
    fn the_large_class_is_carved_out_of_the_same_budget() {
        // The default 16,384 × 512 B: 512 KiB for 32 large slots.
        assert_eq!(size_classes(16_384, 512, None), (15_360, 32));
        assert_eq!(size_classes(1 << 17, 512, None), ((1 << 17) - 2_048, 64));
        // Too small to spare one, or large already.
        assert_eq!(size_classes(16, 512, None), (16, 0));
        assert_eq!(size_classes(100, 16 << 10, None), (100, 0));
        // Chosen: off, or more (up to half the bytes).
        assert_eq!(size_classes(16_384, 512, Some(0)), (16_384, 0));
        assert_eq!(size_classes(16_384, 512, Some(100)), (16_384 - 3_200, 100));
        assert_eq!(size_classes(16_384, 512, Some(10_000)).1, 256);
        for (capacity, size) in [(16_384, 512), (10_000, 512), (3_001, 512), (4_096, 128)] {
            let (standard, large) = size_classes(capacity, size, None);
            assert!(standard * size + large * LARGE_RECORD_SIZE <= capacity * size);
        }
    }
}
