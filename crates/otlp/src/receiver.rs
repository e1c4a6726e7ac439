//! What every request goes through, whatever its transport: admission
//! (the bounds on concurrent requests and on decoded bytes in flight), then
//! the push into the ring, all or nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringtrail::{Field, Ingest, Refused};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::map::value::OwnedRow;

/// How a request's records fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Every record is in the ring.
    All,
    /// The first `taken` records are in the ring; the rest were refused
    /// for good (only a request larger than one push can take, whose later
    /// part found no room in time).
    Part {
        /// Records enqueued.
        taken: usize,
        /// Records refused.
        rejected: usize,
    },
    /// None was taken: the ring is full, or too many requests are in
    /// flight. The client should retry the whole request.
    Busy,
    /// None was taken: the pipeline is shutting down.
    Closed,
}

/// The shared state of the listeners.
pub struct Receiver {
    ingest: Ingest,
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    push_wait: Duration,
}

/// Holds a request's share of the bounds until it is answered.
pub struct Admitted {
    _request: OwnedSemaphorePermit,
    bytes: Option<OwnedSemaphorePermit>,
}

/// Bytes per permit of the in-flight bound (a semaphore counts `u32`s).
const BYTES_PER_PERMIT: usize = 1024;

impl Receiver {
    /// A receiver pushing into `ingest`, taking at most `max_requests`
    /// requests and `max_inflight_bytes` decoded bytes at once, and
    /// waiting up to `push_wait` for room in the ring.
    pub fn new(
        ingest: Ingest,
        max_requests: usize,
        max_inflight_bytes: usize,
        push_wait: Duration,
    ) -> Receiver {
        let permits = (max_inflight_bytes / BYTES_PER_PERMIT).clamp(1, Semaphore::MAX_PERMITS);
        Receiver {
            ingest,
            requests: Arc::new(Semaphore::new(max_requests.max(1))),
            bytes: Arc::new(Semaphore::new(permits)),
            push_wait,
        }
    }

    /// True while the pipeline takes records ([`Ingest::is_accepting`]).
    pub fn healthy(&self) -> bool {
        self.ingest.is_accepting()
    }

    /// A slot among the concurrent requests, or `None` (answer busy).
    pub fn admit(&self) -> Option<Admitted> {
        let request = Arc::clone(&self.requests).try_acquire_owned().ok()?;
        Some(Admitted {
            _request: request,
            bytes: None,
        })
    }

    /// Reserves `bytes` of the in-flight bound for `admitted`; `false`
    /// when there is not that much room now (answer busy).
    pub fn reserve(&self, admitted: &mut Admitted, bytes: usize) -> bool {
        let permits = bytes.div_ceil(BYTES_PER_PERMIT).max(1);
        let permits = u32::try_from(permits).unwrap_or(u32::MAX);
        match Arc::clone(&self.bytes).try_acquire_many_owned(permits) {
            Ok(p) => {
                admitted.bytes = Some(p);
                true
            }
            Err(_) => false,
        }
    }

    /// Pushes `rows`, in parts of at most [`Ingest::capacity`] records,
    /// each all or nothing, waiting up to the push wait for room.
    pub async fn take(&self, rows: &[OwnedRow]) -> Taken {
        let mut taken = 0;
        let mut fields: Vec<Vec<Field<'_>>> = Vec::new();
        for part in rows.chunks(self.ingest.capacity()) {
            fields.resize_with(part.len(), Vec::new);
            for (row, out) in part.iter().zip(fields.iter_mut()) {
                row.fields_into(out);
            }
            let records: Vec<_> = part
                .iter()
                .zip(&fields)
                .map(|(row, f)| row.record(f))
                .collect();
            let deadline = Instant::now() + self.push_wait;
            let outcome = loop {
                match self.ingest.push_all(&records) {
                    Err(Refused::Full) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    other => break other,
                }
            };
            drop(records);
            match outcome {
                Ok(()) => taken += part.len(),
                Err(refused) if taken == 0 => {
                    return match refused {
                        Refused::Full => Taken::Busy,
                        Refused::Closed => Taken::Closed,
                    };
                }
                Err(_) => {
                    return Taken::Part {
                        taken,
                        rejected: rows.len() - taken,
                    }
                }
            }
            fields.iter_mut().for_each(Vec::clear);
        }
        Taken::All
    }
}
