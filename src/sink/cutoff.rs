//! [`Cutoff`]: the shutdown deadline, set by the writer thread and obeyed by
//! everything the shipper does on the network: a batch in flight, a retry's
//! backoff, a dead-letter insert, a spool replay, a probe.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a wait re-reads a cutoff that is not set yet.
const POLL: Duration = Duration::from_millis(20);

/// The instant after which the shipper stops using the network and spools
/// whatever it still holds. Unset until shutdown.
#[derive(Debug, Default)]
pub(crate) struct Cutoff {
    at: Mutex<Option<Instant>>,
}

impl Cutoff {
    /// Sets the cutoff (once; a later call can only move it earlier).
    pub(crate) fn set(&self, at: Instant) {
        let mut cutoff = self.at.lock().unwrap_or_else(|p| p.into_inner());
        *cutoff = Some(cutoff.map_or(at, |old| old.min(at)));
    }

    /// The cutoff, once set.
    pub(crate) fn get(&self) -> Option<Instant> {
        *self.at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the cutoff is set and has passed.
    pub(crate) fn passed(&self) -> bool {
        self.get().is_some_and(|at| Instant::now() >= at)
    }

    /// Resolves once the cutoff has passed.
    pub(crate) async fn reached(&self) {
        loop {
            match self.get() {
                Some(at) => return tokio::time::sleep_until(at.into()).await,
                None => tokio::time::sleep(POLL).await,
            }
        }
    }
}
