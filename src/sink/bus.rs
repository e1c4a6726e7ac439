//! The producer's lane for scale-out: a [`Courier`] that publishes each
//! sealed batch to one shard's subject of the bus (NATS JetStream) instead
//! of committing it to PostgreSQL. The writer side, the batch queue, the
//! chain and the spool are the PostgreSQL sink's own ([`LaneSink`]).
//!
//! A batch counts as written once the stream has acknowledged every
//! message of it (see `envelope.rs` for the pieces of a large one). A bus
//! that does not answer within the stall timeout, or refuses, is an outage
//! like a PostgreSQL outage: retried with backoff, then (or at once while
//! it is known down) the batch goes to the spool, and the first lane
//! replays the spool through the bus when it answers again. A replay
//! publishes the same message ids, so the stream, or past its window the
//! shard's ledger, drops what had gone through before.
//!
//! [`LaneSink`]: super::postgres::LaneSink

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{HeadCheckpoint, SealedBatch};
use super::envelope;
use super::postgres::Courier;
use super::retry::Backoff;
use super::shipper::health::PROBE_INTERVAL;
use super::shipper::{remove_oldest, respool_oldest, take_oldest, Oldest, Shared};
use super::{BatchFailure, Outcome, PostgresConfig};
use crate::text::uuid_text;
use crate::time::clock::unix_nanos_now;
use crate::transport::nats::NatsPublisher;
use crate::transport::{NatsTarget, Publisher};
use crate::{Error, Result};

/// Where a batch being published came from; decides what its rows count
/// as (as for the shipper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Live,
    Spool { inherited: bool },
}

/// Publishes one shard's batches.
pub(crate) struct BusLane {
    publisher: Box<dyn Publisher>,
    shard: u32,
    shared: Arc<Shared>,
    stall: Duration,
    spool_after: Duration,
    max_retries: u32,
    backoff: Backoff,
}

/// A publish that stopped trying for now.
struct GaveUp {
    delivered: Outcome,
    /// The pieces not acknowledged.
    remaining: Vec<SealedBatch>,
    /// Whether some pieces were acknowledged (the rest must be spooled as
    /// pieces, not as the whole batch).
    split: bool,
    error: Arc<Error>,
}

impl BusLane {
    /// Connects to the bus and makes sure the stream exists. With a
    /// spool, an unreachable bus is not an error: batches spool until it
    /// answers.
    pub(crate) fn connect(
        target: &NatsTarget,
        shard: u32,
        config: &PostgresConfig,
        shared: Arc<Shared>,
    ) -> Result<BusLane> {
        let publisher = NatsPublisher::connect(target, config.stall_timeout, shared.has_spool())?;
        Ok(BusLane {
            publisher: Box::new(publisher),
            shard,
            shared,
            stall: config.stall_timeout,
            spool_after: config.spool_after(),
            max_retries: config.max_retries,
            backoff: Backoff::new(unix_nanos_now() as u64, Duration::from_secs(5)),
        })
    }

    fn mark_down(&self, cause: Arc<Error>) {
        let fate = match self.shared.has_spool() {
            true => "spooling to disk",
            false => "no spool configured",
        };
        self.shared.health().mark_down(cause, fate);
    }

    /// Whether the bus is worth a try now: up, or down with a probe due
    /// (the next publish is the probe). Never past the shutdown cutoff.
    fn available(&self) -> bool {
        !self.shared.cutoff.passed() && self.shared.health().until_probe().is_none()
    }

    /// Publishes every piece of `batch`, each retried with backoff; gives
    /// up as the shipper does (retries spent, the spool's `after`, the
    /// shutdown cutoff, or the bus known down).
    fn send(
        &mut self,
        batch: SealedBatch,
        origin: Origin,
    ) -> std::result::Result<Outcome, Box<GaveUp>> {
        let max_payload = self.publisher.max_payload();
        let mut pieces = envelope::pieces(batch, max_payload).into_iter().peekable();
        let mut delivered = Outcome::default();
        let mut split = false;
        let mut attempt = 0u32;
        let mut first_failure: Option<Instant> = None;
        while let Some((piece, message)) = pieces.peek() {
            if message.len() > max_payload {
                // One row larger than any message: it cannot travel.
                eprintln!(
                    "ringtrail: a row of {} bytes is larger than NATS's largest message ({max_payload} bytes); lost",
                    message.len()
                );
                delivered.lost += piece.events();
                pieces.next();
                split = true;
                continue;
            }
            let deadline = match self.shared.cutoff.get() {
                Some(cutoff) => cutoff.min(Instant::now() + self.stall),
                None => Instant::now() + self.stall,
            };
            let id = uuid_text(&piece.id);
            match self
                .publisher
                .publish(self.shard, &id, message.clone(), deadline)
            {
                Ok(_) => {
                    count(&mut delivered, piece, origin);
                    self.shared.health().mark_up();
                    pieces.next();
                    split = true;
                    attempt = 0;
                    first_failure = None;
                }
                Err(error) => {
                    attempt += 1;
                    let since = *first_failure.get_or_insert_with(Instant::now);
                    let retry_at = Instant::now() + self.backoff.delay(attempt);
                    let give_up = self.shared.gives_up(
                        attempt,
                        self.max_retries,
                        since,
                        self.spool_after,
                        retry_at,
                    );
                    if give_up {
                        let error = Arc::new(error);
                        self.mark_down(error.clone());
                        let remaining: Vec<SealedBatch> = pieces.map(|(piece, _)| piece).collect();
                        return Err(Box::new(GaveUp {
                            delivered,
                            split: split && !remaining.is_empty(),
                            remaining,
                            error,
                        }));
                    }
                    std::thread::sleep(retry_at.saturating_duration_since(Instant::now()));
                }
            }
        }
        Ok(delivered)
    }
}

/// Counts an acknowledged piece.
fn count(out: &mut Outcome, piece: &SealedBatch, origin: Origin) {
    let rows = piece.events();
    out.batches += 1;
    match origin {
        Origin::Live => out.written += rows,
        Origin::Spool { inherited: false } => {
            out.written += rows;
            out.unspooled += rows;
        }
        Origin::Spool { inherited: true } => out.recovered += rows,
    }
}

impl Courier for BusLane {
    fn commit(&mut self, batch: SealedBatch) -> Outcome {
        let mut out = Outcome::default();
        // With a spool, known down (no probe due) or past the cutoff:
        // straight to disk instead of waiting on the network.
        let skip_network = match self.shared.has_spool() {
            true => !self.available(),
            false => self.shared.cutoff.passed(),
        };
        let remaining = if skip_network {
            let cause = self
                .shared
                .health()
                .cause()
                .unwrap_or_else(|| Arc::new(Error::Timeout("the shutdown deadline")));
            (vec![batch], cause)
        } else {
            match self.send(batch, Origin::Live) {
                Ok(delivered) => return delivered,
                Err(gave_up) => {
                    out.add(gave_up.delivered);
                    (gave_up.remaining, gave_up.error)
                }
            }
        };
        let (batches, cause) = remaining;
        let fate = self.shared.spool_all(&batches, false, &mut out);
        out.failure = Some(BatchFailure { fate, cause });
        out
    }

    fn maintain(&mut self) -> (Outcome, Option<Duration>) {
        let mut out = Outcome::default();
        if self.shared.spool().is_none_or(|s| s.oldest().is_none()) {
            self.shared.sync_spilled();
            return (out, None);
        }
        if let Some(wait) = self.shared.health().until_probe() {
            return (out, Some(wait));
        }
        let (batch, inherited) = match take_oldest(&self.shared, &mut out) {
            Oldest::Nothing => return (out, None),
            Oldest::Later(after) => return (out, Some(after)),
            Oldest::Forgotten => return (out, Some(Duration::ZERO)),
            Oldest::Batch { batch, inherited } => (*batch, inherited),
        };
        match self.send(batch, Origin::Spool { inherited }) {
            Ok(delivered) => {
                out.add(delivered);
                remove_oldest(&self.shared);
                (out, Some(Duration::ZERO))
            }
            Err(gave_up) => {
                out.add(gave_up.delivered);
                if gave_up.split {
                    // Some pieces are on the bus: keep only the others.
                    respool_oldest(&self.shared, &gave_up.remaining, inherited, &mut out);
                }
                let wait = self.shared.health().until_probe().unwrap_or(PROBE_INTERVAL);
                (out, Some(wait))
            }
        }
    }

    fn store_checkpoint(&mut self, checkpoint: &HeadCheckpoint) {
        // A message of its own, after the head's batch (this lane
        // published that one); the worker stores it once that batch is in
        // the shard's ledger. Never past the shutdown cutoff.
        let now = Instant::now();
        let deadline = match self.shared.cutoff.get() {
            Some(cutoff) => cutoff.min(now + self.stall),
            None => now + self.stall,
        };
        let published = match self.shared.health().is_down() || deadline <= now {
            true => Err(Error::Timeout("the shutdown deadline")),
            false => self.publisher.publish(
                self.shard,
                &envelope::checkpoint_id(checkpoint),
                envelope::encode_checkpoint(checkpoint),
                deadline,
            ),
        };
        if let Err(e) = published {
            eprintln!(
                "ringtrail: the shutdown checkpoint (seq {}) is only in the checkpoint file and the JSON lines: {}",
                checkpoint.seq,
                e.chain()
            );
        }
    }
}
