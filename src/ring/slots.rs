//! [`SlotPool`]: `capacity` fixed-size byte slots and the two index queues
//! that pass their ownership between threads.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crossbeam_queue::ArrayQueue;

/// Slots are cache-line aligned and a whole number of cache lines long, so
/// two producers filling neighbouring slots never share a line.
const SLOT_ALIGN: usize = 64;

/// The smallest record size the pool accepts: a record header plus room for
/// a short message.
pub(crate) const MIN_RECORD_SIZE: usize = 128;

/// A pool of `capacity` byte slots of `record_size` bytes, with a `free`
/// queue and a `ready` queue of slot indices.
///
/// # Ownership protocol
/// Every index `0..capacity` is, at any moment, in exactly one place: the
/// `free` queue, the `ready` queue, or the hands of exactly one thread that
/// popped it. Only the thread holding an index may touch that slot's bytes.
/// `ArrayQueue` push/pop are release/acquire, so the bytes written before a
/// push are visible to the thread that pops the index.
pub(crate) struct SlotPool {
    /// The first slot: `allocation` rounded up to `SLOT_ALIGN`.
    base: NonNull<u8>,
    /// What `alloc_zeroed` returned, for `dealloc`.
    allocation: NonNull<u8>,
    layout: Layout,
    record_size: usize,
    free: ArrayQueue<u32>,
    ready: ArrayQueue<u32>,
}

// SAFETY: the raw slot memory is only reached through `claim`/`take`, which
// hand out an index that no other thread holds (see the ownership protocol
// above), so sharing the pool between threads cannot create aliasing
// `&mut` access. The queues themselves are Sync.
unsafe impl Send for SlotPool {}
// SAFETY: as for Send.
unsafe impl Sync for SlotPool {}

impl SlotPool {
    /// Allocates `capacity` zeroed slots. `record_size` is rounded up to a
    /// multiple of 64. Panics only on nonsensical sizes, which the builder
    /// rejects before calling this.
    pub(crate) fn new(capacity: usize, record_size: usize) -> SlotPool {
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
        let free = ArrayQueue::new(capacity);
        for index in 0..capacity as u32 {
            // Cannot fail: the queue holds exactly `capacity` items.
            let _ = free.push(index);
        }
        SlotPool {
            base,
            allocation,
            layout,
            record_size,
            free,
            ready: ArrayQueue::new(capacity),
        }
    }

    /// Bytes per slot.
    pub(crate) fn record_size(&self) -> usize {
        self.record_size
    }

    /// Number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.free.capacity()
    }

    /// Records published and not yet taken by the writer.
    #[inline]
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Claims a free slot for writing, or `None` when every slot is in use.
    #[inline]
    pub(crate) fn claim(&self) -> Option<u32> {
        self.free.pop()
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
        // Cannot fail: only `capacity` indices exist, so `ready` never
        // holds more than `capacity`.
        let _ = self.ready.push(index);
    }

    /// Returns a claimed slot unused (a producer gave up on it).
    #[inline]
    pub(crate) fn release(&self, index: u32) {
        // Cannot fail, for the same reason as `publish`.
        let _ = self.free.push(index);
    }

    /// Takes the oldest published record, for the writer.
    #[inline]
    pub(crate) fn take(&self) -> Option<u32> {
        self.ready.pop()
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
    fn every_index_is_handed_out_once() {
        let pool = SlotPool::new(4, 100);
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
        let pool = SlotPool::new(3, 200);
        assert_eq!(pool.record_size(), 256);
        for i in 0..3 {
            // SAFETY: the pool is fresh and single-threaded here.
            let p = unsafe { pool.slot_mut(i).as_ptr() } as usize;
            assert_eq!(p % SLOT_ALIGN, 0);
        }
    }
}
