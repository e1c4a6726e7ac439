//! [`Stats`]: what the pipeline has done so far.

/// Counters of one ringtrail pipeline, from [`Guard::stats`](crate::Guard::stats).
///
/// Once the producers are quiet and [`Guard::flush`](crate::Guard::flush)
/// has returned, they add up:
/// `events emitted == enqueued + dropped` and
/// `enqueued == written + failed`.
/// While events are in flight, `enqueued` is read from two places at
/// slightly different moments and may be off by the events in motion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events that got a slot in the ring.
    pub enqueued: u64,
    /// Events dropped because the ring was full.
    pub dropped: u64,
    /// Rows committed to the sink.
    pub written: u64,
    /// Batches committed.
    pub batches: u64,
    /// Rows lost because their batch failed every commit attempt.
    pub failed: u64,
    /// Records waiting in the ring right now.
    pub queued: u64,
}
