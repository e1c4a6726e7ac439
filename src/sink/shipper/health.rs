//! [`Health`]: whether PostgreSQL is up, as the shipper last saw it.
//!
//! While it is down, live batches go straight to the spool instead of
//! waiting on the network while the ring fills, and every
//! [`PROBE_INTERVAL`] a probe (a cheap query on a connection of its own,
//! never a live batch) asks whether it is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Error;

/// How often a shipper that found PostgreSQL unreachable tries again.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Up, or down since when and why.
pub(crate) struct Health {
    /// What is up or down: `PostgreSQL`, `NATS`.
    destination: &'static str,
    down: Option<Down>,
}

struct Down {
    since: Instant,
    next_probe: Instant,
    cause: Arc<Error>,
}

impl Health {
    pub(crate) fn up(destination: &'static str) -> Health {
        Health {
            destination,
            down: None,
        }
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Marks PostgreSQL down (or keeps it down) because of `cause`, and
    /// schedules the next probe. `fate` says what happens to batches
    /// meanwhile, for the one line logged when it goes down.
    pub(crate) fn mark_down(&mut self, cause: Arc<Error>, fate: &str) {
        let now = Instant::now();
        let next_probe = now + PROBE_INTERVAL;
        match &mut self.down {
            Some(down) => {
                down.next_probe = next_probe;
                down.cause = cause;
            }
            None => {
                eprintln!(
                    "ringtrail: {} unreachable ({}); {fate} until it answers",
                    self.destination,
                    cause.chain()
                );
                self.down = Some(Down {
                    since: now,
                    next_probe,
                    cause,
                });
            }
        }
    }

    pub(crate) fn mark_up(&mut self) {
        if let Some(down) = self.down.take() {
            eprintln!(
                "ringtrail: {} answers again after {:.1} s",
                self.destination,
                down.since.elapsed().as_secs_f64()
            );
        }
    }

    /// Why PostgreSQL is down, while it is.
    pub(crate) fn cause(&self) -> Option<Arc<Error>> {
        self.down.as_ref().map(|down| down.cause.clone())
    }

    /// While down and before the next probe is due: how long until it.
    /// `None` when up, or when a probe is due.
    pub(crate) fn until_probe(&self) -> Option<Duration> {
        let down = self.down.as_ref()?;
        let left = down.next_probe.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }
}
