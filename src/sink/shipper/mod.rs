//! The shipper: the PostgreSQL client side of the sink, on its own thread
//! (`ringtrail-shipper`), so the writer encodes the next batch while this
//! one is in flight. It owns a [`Connection`] (a private current-thread
//! tokio runtime and a `deadpool-postgres` pool: callers need no runtime
//! of their own), the spool, the [`Health`] of the server, and the delivery
//! rules:
//!
//! 1. Each batch is `BEGIN; COPY …; INSERT INTO ringtrail.batches …;
//!    COMMIT`. The ledger row makes the batch's commit observable.
//! 2. A connection-class failure is retried with backoff and jitter. Every
//!    retry first asks the ledger whether the batch already committed (the
//!    connection may have died after the server committed), and skips it
//!    if so.
//! 3. A data-class failure names a row (`COPY logs, line N`): that row
//!    goes to `ringtrail.dead_letters` and the rest is retried. With no
//!    line, the batch is bisected until the bad row is alone.
//! 4. When retries are exhausted, or PostgreSQL has been unreachable for
//!    the spool's `after` ([`Spool::after`](crate::Spool::after)), batches go to the spool on disk, and are replayed
//!    (through the ledger, so exactly once) when PostgreSQL answers again.
//!
//! `delivery.rs` holds rules 2 and 3, `replay.rs` the replay of rule 4,
//! `connection.rs` the I/O (timeouts, stalls, the shutdown cutoff) and
//! `health.rs` whether the server is up.

mod connection;
mod delivery;
pub(crate) mod health;
mod replay;
mod shared;

#[cfg(feature = "nats")]
pub(crate) use replay::{remove_oldest, respool_oldest, take_oldest, Oldest};
pub(crate) use shared::Shared;

use std::sync::Arc;
use std::time::Duration;

use super::batch::{HeadCheckpoint, SealedBatch};
use super::retry::{is_transient, Backoff};
use super::{BatchFailure, Outcome, Partitions, PostgresConfig};
use crate::time::clock::unix_nanos_now;
use crate::{Error, Fate, Result};
use connection::Connection;

/// Where a batch being delivered came from; decides what its rows count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Live,
    /// Taken from the bus by a sink worker: maybe a redelivery, so the
    /// ledger is asked first.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    Bus,
    Spool {
        inherited: bool,
    },
}

/// Ships sealed batches to PostgreSQL through binary COPY.
pub(crate) struct Shipper {
    connection: Connection,
    shared: Arc<Shared>,
    /// Spool once PostgreSQL has been failing this long.
    spool_after: Duration,
    max_retries: u32,
    backoff: Backoff,
    /// Live batches counted lost whose last attempt may have committed:
    /// their ids and event rows, looked up in the ledger once PostgreSQL
    /// answers again (bounded: the oldest are forgotten).
    unresolved: Vec<([u8; 16], u64)>,
    /// Partition upkeep, when migrations are applied (first lane only).
    partitions: Option<Partitions>,
}

/// The most unresolved batches remembered.
const MAX_UNRESOLVED: usize = 256;

impl Shipper {
    /// Builds the pool, checks the connection and applies migrations when
    /// asked (one lane; a pipeline has `lanes` of them, sharing `shared`).
    /// With a spool configured, an unreachable server is not an error: the
    /// shipper starts spooling and connects later. A wrong configuration
    /// (credentials, database name) always is.
    pub(crate) fn connect(config: &PostgresConfig, shared: Arc<Shared>) -> Result<Shipper> {
        let mut shipper = Shipper {
            connection: Connection::new(config, shared.cutoff.clone())?,
            shared,
            spool_after: config.spool_after(),
            max_retries: config.max_retries,
            backoff: Backoff::new(unix_nanos_now() as u64, Duration::from_secs(5)),
            unresolved: Vec::new(),
            partitions: config.migrate.then(|| config.partitions.clone()),
        };
        if let Err(e) = shipper.connection.open() {
            if !shipper.shared.has_spool() || !is_transient(&e) {
                return Err(e);
            }
            shipper.mark_down(Arc::new(e));
        }
        Ok(shipper)
    }

    fn mark_down(&mut self, cause: Arc<Error>) {
        let fate = match self.shared.has_spool() {
            true => "spooling to disk",
            false => "no spool configured",
        };
        self.shared.health().mark_down(cause, fate);
    }

    /// PostgreSQL answered: marks it up, and looks up, once, the batches
    /// whose outcome was unknown when they were counted lost. Those the
    /// ledger holds committed after all; the others did not, since the
    /// server has answered since.
    fn mark_up(&mut self, out: &mut Outcome) {
        self.shared.health().mark_up();
        if self.unresolved.is_empty() {
            return;
        }
        let ids: Vec<[u8; 16]> = self.unresolved.iter().map(|u| u.0).collect();
        let timeout = self.connection.commit_timeout();
        let found = self
            .connection
            .run("checking the ledger", timeout, async |session| {
                session.committed_among(&ids).await
            });
        // On an error, keep them for the next time the server answers.
        if let Ok(committed) = found {
            for (id, rows) in self.unresolved.drain(..) {
                if committed.contains(&id) {
                    out.written += rows;
                    out.resolved += rows;
                }
            }
        }
    }

    /// Whether PostgreSQL may take a batch now: it is up, or it is down
    /// and a probe (when one is due) says it is back. Never past the
    /// shutdown cutoff.
    fn available(&mut self, out: &mut Outcome) -> bool {
        if self.shared.cutoff.passed() {
            return false;
        }
        let until_probe = {
            let health = self.shared.health();
            if !health.is_down() {
                return true;
            }
            health.until_probe()
        };
        if until_probe.is_some() {
            return false;
        }
        let timeout = self.connection.commit_timeout();
        match self
            .connection
            .run("probing", timeout, async |session| session.probe().await)
        {
            Ok(()) => {
                self.mark_up(out);
                true
            }
            Err(e) => {
                self.mark_down(Arc::new(e));
                false
            }
        }
    }

    /// One attempt, within the commit timeout and the cutoff: the ledger
    /// check (when the previous outcome may be unknown), then the batch's
    /// transaction.
    fn ship(&mut self, batch: &SealedBatch, check_ledger: bool) -> Result<()> {
        let timeout = self.connection.commit_timeout();
        self.connection
            .run("committing a batch", timeout, async |session| {
                session.ship(batch, check_ledger).await
            })
    }

    /// Whether this shipper runs partition upkeep (migrations are on).
    pub(crate) fn keeps_partitions(&self) -> bool {
        self.partitions.is_some()
    }

    /// Partition upkeep: the partitions ahead, and retention when set, on
    /// a connection of its own. Never fails ingest: a failure is one line
    /// on stderr and a retry after [`Partitions::UPKEEP_RETRY`]; a server
    /// known to be down is not even tried. Returns when to run again.
    pub(crate) fn maintain_partitions(&mut self) -> Duration {
        let Some(config) = self.partitions.clone() else {
            return Partitions::UPKEEP_EVERY;
        };
        if self.shared.cutoff.get().is_some() || self.shared.health().is_down() {
            return Partitions::UPKEEP_RETRY;
        }
        match self.connection.maintain_partitions(&config) {
            Ok(Ok(_)) => Partitions::UPKEEP_EVERY,
            Ok(Err(e)) | Err(e) => {
                eprintln!(
                    "ringtrail: partition maintenance failed (ingest goes on; retrying in {}): {}",
                    crate::time::format_duration(Partitions::UPKEEP_RETRY),
                    e.chain()
                );
                Partitions::UPKEEP_RETRY
            }
        }
    }

    /// Stores the checkpoint signed at shutdown (see [`HeadCheckpoint`]),
    /// once, when its head's batch is in the ledger: the writer hands it
    /// to the lane that was handed that batch, after it, so the batch has
    /// committed by now unless it was spooled or lost. Otherwise, or past
    /// the cutoff, or on an error (one line on stderr), the checkpoint is
    /// kept only in the checkpoint file and the JSON-lines stream.
    pub(crate) fn store_checkpoint(&mut self, cp: &HeadCheckpoint) {
        if self.shared.cutoff.passed() || self.shared.health().is_down() {
            return;
        }
        let timeout = self.connection.commit_timeout();
        let stored = self.connection.run(
            "storing the shutdown checkpoint",
            timeout,
            async |session| session.store_checkpoint(cp).await.map(drop),
        );
        if let Err(e) = stored {
            eprintln!(
                "ringtrail: the shutdown checkpoint (seq {}) is only in the checkpoint file and the JSON lines: {}",
                cp.seq,
                e.chain()
            );
        }
    }

    /// Delivers one live batch: committed, or else spooled (or lost).
    pub(crate) fn commit(&mut self, batch: SealedBatch) -> Outcome {
        let mut out = Outcome::default();
        // With a spool, known down (and no probe answering) or past the
        // cutoff: straight to disk instead of waiting on the network while
        // the ring fills. Without one, the batch is tried anyway (it has
        // nowhere else to go), unless the cutoff has passed.
        let skip_network = match self.shared.has_spool() {
            true => !self.available(&mut out),
            false => self.shared.cutoff.passed(),
        };
        if skip_network {
            let cause = self
                .shared
                .health()
                .cause()
                .unwrap_or_else(|| Arc::new(Error::Timeout("the shutdown deadline")));
            let fate = self
                .shared
                .spool_all(std::slice::from_ref(&batch), false, &mut out);
            out.failure = Some(BatchFailure { fate, cause });
            return out;
        }
        match self.deliver(batch, Origin::Live) {
            Ok(delivered) => out.add(delivered),
            Err(gave_up) => {
                out.add(gave_up.delivered);
                let fate = self.shared.spool_all(&gave_up.remaining, false, &mut out);
                if fate == Fate::Lost && gave_up.unknown && gave_up.untouched {
                    if self.unresolved.len() == MAX_UNRESOLVED {
                        self.unresolved.remove(0);
                    }
                    let batch = &gave_up.remaining[0];
                    self.unresolved.push((batch.id, batch.events()));
                }
                out.failure = Some(BatchFailure {
                    fate,
                    cause: gave_up.error,
                });
            }
        }
        out
    }
}

#[cfg(feature = "nats")]
impl Shipper {
    /// Stores a checkpoint signed at a producer's shutdown that no batch
    /// carried (a sink worker took it from the bus): `true` once it is in
    /// `ringtrail.checkpoints` (now or before), `false` while its head's
    /// batch is not in the ledger yet.
    pub(crate) fn load_checkpoint(
        &mut self,
        cp: &HeadCheckpoint,
    ) -> std::result::Result<bool, Arc<Error>> {
        let timeout = self.connection.commit_timeout();
        self.connection
            .run("storing a checkpoint", timeout, async |session| {
                session.store_checkpoint(cp).await
            })
            .map_err(Arc::new)
    }

    /// Loads one batch a sink worker took from the bus: committed (its
    /// refused rows dead-lettered), or an error once the retries are
    /// spent. Nothing of a failed batch is lost: the bus delivers it
    /// again, and the ledger, asked before every attempt, recognises
    /// what of it committed (a redelivery, or the pieces of a bisection).
    pub(crate) fn load(&mut self, batch: SealedBatch) -> std::result::Result<Outcome, Arc<Error>> {
        match self.deliver(batch, Origin::Bus) {
            Ok(delivered) => Ok(delivered),
            Err(gave_up) => Err(gave_up.error),
        }
    }
}

/// Counts where spooled batches went: `written[i]` says whether batch `i`
/// reached the disk.
pub(super) fn tally_spooled(
    batches: &[SealedBatch],
    written: &[bool],
    inherited: bool,
    out: &mut Outcome,
) -> Fate {
    let mut fate = Fate::Spooled;
    for (batch, &written) in batches.iter().zip(written) {
        let rows = batch.events();
        match (written, inherited) {
            (true, false) => out.spooled += rows,
            (false, false) => out.lost += rows,
            // Rows of an earlier process were never counted by this one.
            (true, true) => {}
            (false, true) => out.inherited_lost += rows,
        }
        if !written {
            fate = Fate::Lost;
        }
    }
    fate
}
