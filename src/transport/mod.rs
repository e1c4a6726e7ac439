//! The message bus between producers and sink workers, for scale-out past
//! one PostgreSQL: a replicated, persistent stream that deduplicates by
//! message id (NATS JetStream, `nats.rs`).
//!
//! The bus knows messages, not batches: a message is bytes under an id,
//! on one shard's subject. What the bytes hold (a sealed batch, its
//! ledger identity and its chain entry) is the sink's business
//! (`sink/envelope.rs`), and what a worker does with them is the worker's
//! (`crate::worker`). So another bus (Kafka: a topic with a partition
//! per shard, the id as the idempotent producer's key) is one more file
//! here implementing `Publisher` and `Subscriber`; none is added that
//! could not be tested here.
//!
//! ```text
//! producer lane ──publish(shard, id, bytes)──► stream <name>
//!                                               ├─ <name>.shard.0 ──► consumer ringtrail-shard-0 ──► workers ──► PostgreSQL 0
//!                                               └─ <name>.shard.1 ──► consumer ringtrail-shard-1 ──► workers ──► PostgreSQL 1
//! ```
//!
//! Both sides block the calling thread (a publisher lane, a worker) and
//! never wait past the deadline they are given; the client's own runtime
//! runs on a marked `ringtrail-nats` thread, so nothing it logs reaches
//! the ring.

pub(crate) mod nats;

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Result;

pub use nats::NatsTarget;

/// What a publish came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// The bus already held a message under this id (within its
    /// deduplication window): this one was dropped, the earlier one
    /// stands.
    pub(crate) duplicate: bool,
}

/// The producer's side of the bus.
pub(crate) trait Publisher: Send {
    /// Publishes `payload` under `id` to `shard`'s subject, and returns once
    /// the bus has stored it durably (replicated, when the stream is) or
    /// found it a duplicate; fails at `deadline` at the latest. Publishing
    /// the same id again is harmless.
    fn publish(
        &mut self,
        shard: u32,
        id: &str,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Published>;

    /// The largest payload one message may carry.
    fn max_payload(&self) -> usize;
}

/// A message taken from the bus, not yet settled: acknowledge it once its
/// batch is committed, or release it for a later delivery.
pub(crate) trait Received: Send {
    /// The message's bytes.
    fn payload(&self) -> &Bytes;
    /// How many times the bus has delivered it (1 the first time).
    fn delivered(&self) -> u64;
}

/// A worker's side of the bus: one shard's messages, shared by every
/// worker of that shard (each message goes to one of them at a time).
pub(crate) trait Subscriber: Send {
    /// The message type.
    type Message: Received;

    /// The next message, waiting up to `wait`; `None` if none came. While
    /// a message is held, the bus is told now and then that it is still in
    /// progress, so a slow commit is not delivered to a second worker.
    fn next(&mut self, wait: Duration) -> Result<Option<Self::Message>>;

    /// Settles `message` as done: the bus will not deliver it again. Waits
    /// for the bus to confirm it, within the stall timeout.
    fn ack(&mut self, message: Self::Message) -> Result<()>;

    /// Gives `message` back, to be delivered again after `delay`.
    fn release(&mut self, message: Self::Message, delay: Duration) -> Result<()>;

    /// Settles `message` as one that can never be processed (malformed):
    /// it is not delivered again.
    fn reject(&mut self, message: Self::Message) -> Result<()>;

    /// Messages of this shard not yet delivered to any worker.
    fn lag(&mut self) -> Result<u64>;
}

/// The shard of a row with trace id `trace_id`, among `shards`: a jump
/// consistent hash (Lamping and Veach) of the id's FNV-1a hash. Stable
/// across processes, versions and machines, so every producer puts a
/// trace on the same shard; going from `n` to `n + 1` shards moves only
/// about one trace in `n + 1`, to the new shard.
///
/// ```
/// use ringtrail::transport::shard_of;
///
/// let shard = shard_of("4bf92f3577b34da6a3ce929d0e0e4736", 4);
/// assert!(shard < 4);
/// assert_eq!(shard, shard_of("4bf92f3577b34da6a3ce929d0e0e4736", 4));
/// assert_eq!(shard_of("anything", 1), 0);
/// ```
pub fn shard_of(trace_id: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in trace_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(shards.max(1)) {
        b = j;
        hash = hash.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((hash >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::shard_of;

    /// The shards of four fixed ids among 8, as every version computes them.
    const PINNED: [u32; 4] = [2, 1, 7, 5];

    #[test]
    fn traces_spread_evenly_and_stay_put() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("{i:032x}")).collect();
        let mut counts = [0usize; 4];
        for id in &ids {
            counts[shard_of(id, 4) as usize] += 1;
        }
        for count in counts {
            assert!((4_000..6_000).contains(&count), "{counts:?}");
        }
        // A fifth shard takes about a fifth of the traces, all from the
        // others; no trace moves between the old four.
        let moved: Vec<&String> = ids
            .iter()
            .filter(|id| shard_of(id, 5) != shard_of(id, 4))
            .collect();
        assert!((3_000..5_000).contains(&moved.len()), "{}", moved.len());
        assert!(moved.iter().all(|id| shard_of(id, 5) == 4));
        assert_eq!(shard_of("x", 0), 0);
        // Pinned: producers of every version must agree.
        let pinned: Vec<u32> = ["4bf92f3577b34da6a3ce929d0e0e4736", "", "trace-1", "trace-2"]
            .iter()
            .map(|id| shard_of(id, 8))
            .collect();
        assert_eq!(pinned, PINNED);
    }
}
