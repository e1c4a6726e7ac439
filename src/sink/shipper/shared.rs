//! [`Shared`]: what every lane of one pipeline shares. The spool, which
//! the lanes write to when they give up, the first lane replays, and the
//! writer spills into under overload; the server's [`Health`]; and the
//! shutdown [`Cutoff`]. Locks are held for a file operation at most, never
//! across network I/O.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::health::Health;
use super::tally_spooled;
use crate::chain::key::VerifierKey;
use crate::sink::batch::SealedBatch;
use crate::sink::spool::{sync_files, Durability, Spool};
use crate::sink::{Cutoff, Outcome, PostgresConfig};
use crate::{Fate, Result};

/// The spool, health and cutoff of one pipeline.
pub(crate) struct Shared {
    spool: Option<Mutex<Spool>>,
    health: Mutex<Health>,
    pub(crate) cutoff: Arc<Cutoff>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves consistent plain data.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Opens the spool (taking its lock) when one is configured. `signer`:
    /// the key this process signs checkpoints with, if any; `destination`:
    /// what the lanes ship to, as the lines about its health name it.
    pub(crate) fn open(
        config: &PostgresConfig,
        cutoff: Arc<Cutoff>,
        signer: Option<VerifierKey>,
        destination: &'static str,
    ) -> Result<Arc<Shared>> {
        let spool = match &config.spool {
            Some(options) => Some(Mutex::new(Spool::open(
                &options.dir,
                options.max_bytes,
                signer,
            )?)),
            None => None,
        };
        Ok(Arc::new(Shared {
            spool,
            health: Mutex::new(Health::up(destination)),
            cutoff,
        }))
    }

    pub(crate) fn has_spool(&self) -> bool {
        self.spool.is_some()
    }

    /// Whether a delivery failing since `since`, about to try the
    /// `attempt`th time at `retry_at`, stops trying for now: the
    /// destination is known down, the retries are spent, with a spool its
    /// `after` has passed, or the retry would come past the shutdown
    /// cutoff. The one rule of the PostgreSQL shipper and the bus lane.
    pub(crate) fn gives_up(
        &self,
        attempt: u32,
        max_retries: u32,
        since: Instant,
        spool_after: Duration,
        retry_at: Instant,
    ) -> bool {
        self.health().is_down()
            || attempt > max_retries
            || (self.has_spool() && since.elapsed() >= spool_after)
            || self.cutoff.get().is_some_and(|cutoff| retry_at >= cutoff)
    }

    /// The spool, locked, when there is one.
    pub(crate) fn spool(&self) -> Option<MutexGuard<'_, Spool>> {
        self.spool.as_ref().map(lock)
    }

    pub(crate) fn health(&self) -> MutexGuard<'_, Health> {
        lock(&self.health)
    }

    /// Writes batches to the spool. Rows that do not fit (no spool, cap
    /// reached, disk error) are lost and counted. Returns `Lost` if any
    /// were.
    pub(crate) fn spool_all(
        &self,
        batches: &[SealedBatch],
        inherited: bool,
        out: &mut Outcome,
    ) -> Fate {
        self.spool_with(batches, inherited, Durability::Now, out)
    }

    /// An overload spill of `batch`, on the disk lane (`sink/disk.rs`):
    /// written without an fsync ([`Durability::Deferred`]), which the disk
    /// lane does once per burst ([`sync_spilled`](Self::sync_spilled)).
    pub(crate) fn spill(&self, batch: &SealedBatch, out: &mut Outcome) -> Fate {
        self.spool_with(
            std::slice::from_ref(batch),
            false,
            Durability::Deferred,
            out,
        )
    }

    /// fsyncs the segments that overload spills left unsynced, outside the
    /// spool's lock.
    pub(crate) fn sync_spilled(&self) {
        let Some((dir, files)) = self.spool().map(|mut s| s.take_unsynced()) else {
            return;
        };
        sync_files(&dir, &files);
    }

    fn spool_with(
        &self,
        batches: &[SealedBatch],
        inherited: bool,
        durability: Durability,
        out: &mut Outcome,
    ) -> Fate {
        let mut spool = self.spool();
        let written: Vec<bool> = batches
            .iter()
            .map(|batch| match spool.as_mut() {
                Some(spool) => spool
                    .write_with(batch, inherited, durability)
                    .unwrap_or_else(|e| {
                        eprintln!("ringtrail: spool write failed: {e}");
                        false
                    }),
                None => false,
            })
            .collect();
        tally_spooled(batches, &written, inherited, out)
    }
}
