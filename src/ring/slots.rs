//! [`SlotPool`]: `capacity` fixed-size byte slots and the index queues that
//! pass their ownership between threads.
//!
//! The pool is split into shards, each with its own `free` and `ready`
//! queue. A producer thread claims from its home shard (threads are spread
//! over shards in the order they first log), so two producers rarely touch
//! the same queue head; only when its home shard has no free slot does it
//! look at the others, so the ring is full only when every shard is. The
//! writer takes from the shards in turn.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

use super::OwnLine;

/// Slots are cache-line aligned and a whole number of cache lines long, so
/// two producers filling neighbouring slots never share a line.
const SLOT_ALIGN: usize = 64;

/// The smallest record size the pool accepts: a record header plus room for
/// a short message.
pub(crate) const MIN_RECORD_SIZE: usize = 128;

/// One shard: the free and ready queues of a contiguous range of slots.
struct Shard {
    free: ArrayQueue<u32>,
    ready: ArrayQueue<u32>,
}

/// A pool of `capacity` byte slots of `record_size` bytes, in shards, each
/// with a `free` queue and a `ready` queue of slot indices.
///
/// # Ownership protocol
/// Every index `0..capacity` is, at any moment, in exactly one place: its
/// shard's `free` queue, its shard's `ready` queue, or the hands of exactly
/// one thread that popped it. Only the thread holding an index may touch
/// that slot's bytes. `ArrayQueue` push/pop are release/acquire, so the
/// bytes written before a push are visible to the thread that pops the
/// index. An index always returns to the queues of its own shard
/// (`index / per_shard`), whoever claimed it.
pub(crate) struct SlotPool {
    /// The first slot: `allocation` rounded up to `SLOT_ALIGN`.
    base: NonNull<u8>,
    /// What `alloc_zeroed` returned, for `dealloc`.
    allocation: NonNull<u8>,
    layout: Layout,
    record_size: usize,
    capacity: usize,
    /// `index >> shard_shift` is the shard of a slot index; shards hold a
    /// power-of-two number of slots (the last one may hold fewer), so this
    /// is a shift, not a division, on the hot path.
    shard_shift: u32,
    shards: Box<[Shard]>,
    /// Where the writer's next `take` starts (the writer is its only user).
    /// On a line of its own: the writer stores it on every take, and the
    /// fields above are read by every producer on every event.
    cursor: OwnLine<AtomicUsize>,
}

/// What one writer drain pass may still take from each shard.
pub(crate) struct DrainPass {
    left: Box<[u32]>,
}

thread_local! {
    /// This thread's ordinal, assigned when it first claims a slot.
    static ORDINAL: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The shard layout for `capacity` slots and at most `wanted` shards: a
/// power-of-two number of shards, each of a power-of-two number of slots
/// except possibly the last, so that both the home shard of a thread and
/// the shard of a slot index are found by masking and shifting.
fn shard_layout(capacity: usize, wanted: usize) -> (usize, usize) {
    let wanted = wanted.clamp(1, capacity);
    // The largest power of two not above `wanted`.
    let mut count = 1 << (usize::BITS - 1 - wanted.leading_zeros());
    loop {
        let per_shard = capacity.div_ceil(count).next_power_of_two();
        if capacity.div_ceil(per_shard) == count {
            return (count, per_shard);
        }
        count /= 2;
    }
}

/// A small number unique to the calling thread, for picking a home shard.
#[inline]
fn thread_ordinal() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    ORDINAL
        .try_with(|ordinal| {
            let mut n = ordinal.get();
            if n == usize::MAX {
                n = NEXT.fetch_add(1, Ordering::Relaxed);
                ordinal.set(n);
            }
            n
        })
        .unwrap_or(0)
}

// SAFETY: the raw slot memory is only reached through `claim`/`take`, which
// hand out an index that no other thread holds (see the ownership protocol
// above), so sharing the pool between threads cannot create aliasing
// `&mut` access. The queues themselves are Sync.
unsafe impl Send for SlotPool {}
// SAFETY: as for Send.
unsafe impl Sync for SlotPool {}

impl SlotPool {
    /// Allocates `capacity` zeroed slots in up to `shards` shards.
    /// `record_size` is rounded up to a multiple of 64. Panics only on
    /// nonsensical sizes, which the builder rejects before calling this.
    pub(crate) fn new(capacity: usize, record_size: usize, shards: usize) -> SlotPool {
        assert!(capacity > 0 && capacity <= u32::MAX as usize);
        let record_size = record_size
            .max(MIN_RECORD_SIZE)
            .next_multiple_of(SLOT_ALIGN);
        let bytes = capacity
            .checked_mul(record_size)
            .expect("ring size overflows usize");
        // Allocate with the allocator's natural alignment plus one slot
        // alignment of slack, and align by hand: for a large block, a
        // naturally aligned zeroed allocation is a fresh mapping whose pages
        // stay untouched (not resident) until a record is written there,
        // whereas a 64-byte-aligned one is malloc + memset of every page.
        let layout = Layout::from_size_align(bytes + SLOT_ALIGN, 16).expect("ring layout");
        // SAFETY: `layout` has a non-zero size (capacity > 0, record_size >= 128).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(allocation) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        let offset = raw.align_offset(SLOT_ALIGN);
        // SAFETY: `offset < SLOT_ALIGN`, and the allocation has `SLOT_ALIGN`
        // bytes of slack past `bytes`, so `base .. base + bytes` is inside it.
        let base = unsafe { NonNull::new_unchecked(raw.add(offset)) };
        let (count, per_shard) = shard_layout(capacity, shards);
        let shards: Box<[Shard]> = (0..capacity)
            .step_by(per_shard)
            .map(|first| {
                let last = (first + per_shard).min(capacity);
                let free = ArrayQueue::new(last - first);
                for index in first..last {
                    // Cannot fail: the queue holds exactly this shard's slots.
                    let _ = free.push(index as u32);
                }
                Shard {
                    free,
                    ready: ArrayQueue::new(last - first),
                }
            })
            .collect();
        debug_assert_eq!(shards.len(), count);
        SlotPool {
            base,
            allocation,
            layout,
            record_size,
            capacity,
            shard_shift: per_shard.trailing_zeros(),
            shards,
            cursor: OwnLine(AtomicUsize::new(0)),
        }
    }

    #[inline]
    fn shard_of(&self, index: u32) -> &Shard {
        &self.shards[(index >> self.shard_shift) as usize]
    }

    /// This thread's home shard: its ordinal masked by the (power-of-two)
    /// shard count.
    #[inline]
    fn home(&self) -> usize {
        thread_ordinal() & (self.shards.len() - 1)
    }

    /// Pops from `queue` of the shards, starting at `first`.
    #[inline]
    fn pop_from(
        &self,
        first: usize,
        queue: impl Fn(&Shard) -> &ArrayQueue<u32>,
    ) -> Option<(usize, u32)> {
        let n = self.shards.len();
        (0..n).find_map(|k| {
            let shard = (first + k) % n;
            queue(&self.shards[shard]).pop().map(|index| (shard, index))
        })
    }

    /// Bytes per slot.
    pub(crate) fn record_size(&self) -> usize {
        self.record_size
    }

    /// Number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records published and not yet taken by the writer.
    #[inline]
    pub(crate) fn ready_len(&self) -> usize {
        self.shards.iter().map(|s| s.ready.len()).sum()
    }

    /// Slots free now (a snapshot: producers and the writer move them).
    pub(crate) fn free_len(&self) -> usize {
        self.shards.iter().map(|s| s.free.len()).sum()
    }

    /// Claims a free slot for writing, from this thread's home shard if it
    /// can, or `None` when every slot is in use.
    #[inline]
    pub(crate) fn claim(&self) -> Option<u32> {
        let home = self.home();
        match self.shards[home].free.pop() {
            Some(index) => Some(index),
            None => self.pop_from(home + 1, |s| &s.free).map(|(_, i)| i),
        }
    }

    /// The bytes of a slot the caller holds.
    ///
    /// # Safety
    /// The caller must hold `index` (it popped it from `claim` or `take` and
    /// has not pushed it back), and must not hold another reference to the
    /// same slot.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slot_mut(&self, index: u32) -> &mut [u8] {
        debug_assert!((index as usize) < self.capacity());
        // SAFETY: index < capacity, so the range lies inside the allocation;
        // exclusivity is the caller's obligation, guaranteed by the ownership
        // protocol.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.base.as_ptr().add(index as usize * self.record_size),
                self.record_size,
            )
        }
    }

    /// Publishes a filled slot to the writer.
    #[inline]
    pub(crate) fn publish(&self, index: u32) {
        // Cannot fail: a shard's queues hold as many items as it has slots.
        let _ = self.shard_of(index).ready.push(index);
    }

    /// Returns a slot to the free queue (the writer is done with it, or a
    /// producer gave up on it).
    #[inline]
    pub(crate) fn release(&self, index: u32) {
        // Cannot fail, for the same reason as `publish`.
        let _ = self.shard_of(index).free.push(index);
    }

    /// Tests: takes a published record, the oldest of the next non-empty
    /// shard, in turn, with no pass budget.
    #[cfg(test)]
    pub(crate) fn take(&self) -> Option<u32> {
        let start = self.cursor.load(Ordering::Relaxed);
        let (shard, index) = self.pop_from(start, |s| &s.ready)?;
        self.cursor.store(shard + 1, Ordering::Relaxed);
        Some(index)
    }

    /// A fresh budget for one drain pass (see [`take_in`](Self::take_in)).
    pub(crate) fn drain_pass(&self) -> DrainPass {
        let mut pass = DrainPass {
            left: vec![0; self.shards.len()].into_boxed_slice(),
        };
        self.refill(&mut pass);
        pass
    }

    /// Resets `pass` for a new drain pass: each shard's budget is its slot
    /// count (a power of two, or the remainder for the last shard).
    pub(crate) fn refill(&self, pass: &mut DrainPass) {
        let per_shard = 1usize << self.shard_shift;
        for (shard, left) in pass.left.iter_mut().enumerate() {
            let first = shard * per_shard;
            *left = per_shard.min(self.capacity - first) as u32;
        }
    }

    /// Takes a published record, like [`take`](Self::take), but at most
    /// each shard's slot count from each shard in one pass. A shard's ready
    /// queue is FIFO and holds at most its own slots, so once a pass ends
    /// (this returns `None`) every record published before it began has
    /// been taken, however unevenly the shards fill: the basis of an exact
    /// `flush()`.
    #[inline]
    pub(crate) fn take_in(&self, pass: &mut DrainPass) -> Option<u32> {
        let n = self.shards.len();
        let start = self.cursor.load(Ordering::Relaxed);
        for k in 0..n {
            let shard = (start + k) % n;
            if pass.left[shard] == 0 {
                continue;
            }
            if let Some(index) = self.shards[shard].ready.pop() {
                pass.left[shard] -= 1;
                self.cursor.store(shard + 1, Ordering::Relaxed);
                return Some(index);
            }
        }
        None
    }

    /// Takes every free index out of the free queues, for good: the writer,
    /// closing the ring at shutdown, holds them so that no producer can
    /// claim a slot again. Returns how many.
    pub(crate) fn hoard_free(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| std::iter::from_fn(|| shard.free.pop()).count())
            .sum()
    }

    /// Takes the oldest published record of this thread's home shard (or of
    /// another), for a producer evicting under `DropOldest`.
    #[inline]
    pub(crate) fn evict(&self) -> Option<u32> {
        self.pop_from(self.home(), |s| &s.ready).map(|(_, i)| i)
    }
}

impl Drop for SlotPool {
    fn drop(&mut self) {
        // SAFETY: `allocation` was allocated in `new` with exactly
        // `self.layout`, and `&mut self` proves no slot reference is alive.
        unsafe { alloc::dealloc(self.allocation.as_ptr(), self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_layouts_are_powers_of_two_that_cover_the_capacity() {
        for capacity in 1..300 {
            for wanted in 1..10 {
                let (count, per) = shard_layout(capacity, wanted);
                assert!(count.is_power_of_two() && per.is_power_of_two());
                assert!(count <= wanted);
                assert_eq!(capacity.div_ceil(per), count, "{capacity}/{wanted}");
            }
        }
        assert_eq!(shard_layout(16_384, 2), (2, 8_192));
        assert_eq!(shard_layout(16_384, 8), (8, 2_048));
        assert_eq!(shard_layout(5, 4), (2, 4));
    }

    #[test]
    fn shards_split_the_slots_and_indices_go_home() {
        for (capacity, shards) in [(10, 3), (5, 4), (8, 2), (1, 8)] {
            let pool = SlotPool::new(capacity, 128, shards);
            let mut claimed: Vec<u32> = std::iter::from_fn(|| pool.claim()).collect();
            claimed.sort();
            assert_eq!(
                claimed,
                (0..capacity as u32).collect::<Vec<_>>(),
                "{capacity}/{shards}"
            );
            for &i in claimed.iter().rev() {
                pool.publish(i);
            }
            assert_eq!(pool.ready_len(), capacity);
            let mut taken: Vec<u32> = std::iter::from_fn(|| pool.take()).collect();
            assert_eq!(taken.len(), capacity);
            taken.sort();
            assert_eq!(taken, claimed);
            for &i in &taken {
                pool.release(i);
            }
            assert_eq!(std::iter::from_fn(|| pool.claim()).count(), capacity);
        }
    }

    #[test]
    fn a_drain_pass_takes_everything_published_before_it_from_uneven_shards() {
        // 10 slots in shards of 8 and 2: a pass of `capacity` round-robin
        // takes would return 5 + 5 and leave 3 of the big shard behind while
        // the small one keeps refilling.
        let pool = SlotPool::new(10, 128, 2);
        let claimed: Vec<u32> = std::iter::from_fn(|| pool.claim()).collect();
        let (big, small): (Vec<u32>, Vec<u32>) = claimed.into_iter().partition(|&i| i < 8);
        assert_eq!((big.len(), small.len()), (8, 2));
        for &i in &big {
            pool.publish(i);
        }
        for &i in &small {
            pool.publish(i);
        }
        let mut pass = pool.drain_pass();
        let mut taken_big = 0;
        while let Some(i) = pool.take_in(&mut pass) {
            if i < 8 {
                taken_big += 1;
            } else {
                // A producer homed on the small shard publishes again at once.
                pool.publish(i);
            }
        }
        assert_eq!(
            taken_big, 8,
            "every record of the big shard taken in one pass"
        );
    }

    #[test]
    fn hoarding_leaves_nothing_to_claim() {
        let pool = SlotPool::new(6, 128, 2);
        let one = pool.claim().unwrap();
        assert_eq!(pool.hoard_free(), 5);
        assert_eq!(pool.claim(), None);
        pool.publish(one);
        assert_eq!(pool.take(), Some(one));
    }

    #[test]
    fn every_index_is_handed_out_once() {
        let pool = SlotPool::new(4, 100, 1);
        assert_eq!(pool.record_size(), 128);
        let mut claimed: Vec<u32> = std::iter::from_fn(|| pool.claim()).collect();
        claimed.sort();
        assert_eq!(claimed, vec![0, 1, 2, 3]);
        assert_eq!(pool.claim(), None);
        for &i in &claimed {
            // SAFETY: this test holds index i exclusively.
            unsafe { pool.slot_mut(i)[0] = i as u8 + 10 };
            pool.publish(i);
        }
        assert_eq!(pool.ready_len(), 4);
        while let Some(i) = pool.take() {
            // SAFETY: popped from ready, so held exclusively.
            assert_eq!(unsafe { pool.slot_mut(i)[0] }, i as u8 + 10);
            pool.release(i);
        }
        assert!(pool.claim().is_some());
    }

    #[test]
    fn slots_are_cache_line_aligned() {
        let pool = SlotPool::new(3, 200, 2);
        assert_eq!(pool.record_size(), 256);
        for i in 0..3 {
            // SAFETY: the pool is fresh and single-threaded here.
            let p = unsafe { pool.slot_mut(i).as_ptr() } as usize;
            assert_eq!(p % SLOT_ALIGN, 0);
        }
    }
}
