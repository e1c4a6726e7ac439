//! The PostgreSQL sink, writer side: encodes rows into binary COPY batches
//! and hands each sealed batch to the [`Shipper`] thread, so encoding the
//! next batch overlaps with the server loading this one.
//!
//! The hand-over is a queue bounded by bytes, not by batches
//! (`batch_queue_bytes`, 64 MiB by default): a commit that takes a while,
//! or a server that stalls until the shipper notices and spools, does not
//! stop the writer from draining the ring. Only when the queue is full does
//! the writer wait, and the ring then fills and the overflow policy
//! applies. Two encoders alternate, so while the queue is short the buffer
//! of a batch is reused once the shipper lets go of it, instead of
//! allocating a new one per batch.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::batch::SealedBatch;
use super::shipper::Shipper;
use super::{BatchFailure, Cutoff, Outcome, PostgresConfig, Sink, Wait};
use crate::clock::unix_nanos_now;
use crate::encode::CopyEncoder;
use crate::uuid7::Uuid7;
use crate::{Error, Fate, Result, Row};

/// What the shipper reports back.
enum Done {
    /// A shipped batch's outcome, and its size.
    Batch(Outcome, usize),
    /// Background work (spool replay) that changed something.
    Maintenance(Outcome),
}

/// How long `close` waits for the shipper past the cutoff: it only has
/// local disk writes left by then.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Encodes batches and ships them through the shipper thread.
pub(crate) struct PostgresSink {
    encoders: [CopyEncoder; 2],
    /// Which encoder takes rows now.
    current: usize,
    /// Earliest and latest event time in the batch in progress.
    span: Option<(i64, i64)>,
    /// Drop-report rows in the batch in progress.
    reports: u32,
    ids: Uuid7,
    /// `None` once closed.
    shipments: Option<Sender<SealedBatch>>,
    done: Receiver<Done>,
    /// Batches handed over whose outcome has not come back yet, and their
    /// bytes.
    in_flight: usize,
    in_flight_bytes: usize,
    queue_bytes: usize,
    /// Outcomes received while waiting for room in the queue, and rows
    /// that could not even be handed over (the shipper is gone): for the
    /// next `outcomes`.
    received: Outcome,
    cutoff: Arc<Cutoff>,
    shipper: Option<JoinHandle<()>>,
}

impl PostgresSink {
    /// Connects (and migrates) on the calling thread, so errors surface in
    /// `build()`, then starts the `ringtrail-shipper` thread, which obeys
    /// `cutoff` once shutdown sets it.
    pub(crate) fn connect(config: &PostgresConfig, cutoff: Arc<Cutoff>) -> Result<PostgresSink> {
        let shipper = Shipper::connect(config, cutoff.clone())?;
        let (shipments, shipment_rx) = mpsc::channel::<SealedBatch>();
        let (done_tx, done) = mpsc::channel::<Done>();
        // Called on the writer thread: the shipper wakes it after each
        // batch, so counters and flushes see outcomes without waiting for
        // the writer's next timed wake-up.
        let writer = std::thread::current();
        let thread = std::thread::Builder::new()
            .name("ringtrail-shipper".into())
            .spawn(move || run_shipper(shipper, shipment_rx, done_tx, writer))?;
        Ok(PostgresSink {
            encoders: [CopyEncoder::new(), CopyEncoder::new()],
            current: 0,
            span: None,
            reports: 0,
            ids: Uuid7::new(),
            shipments: Some(shipments),
            done,
            in_flight: 0,
            in_flight_bytes: 0,
            queue_bytes: config.batch_queue_bytes,
            received: Outcome::default(),
            cutoff,
            shipper: Some(thread),
        })
    }

    fn encoder(&self) -> &CopyEncoder {
        &self.encoders[self.current]
    }

    fn receive(&mut self, done: Done, out: &mut Outcome) {
        match done {
            Done::Batch(o, bytes) => {
                self.in_flight -= 1;
                self.in_flight_bytes -= bytes;
                out.add(o);
            }
            Done::Maintenance(o) => out.add(o),
        }
    }

    /// Waits for one report from the shipper; `false` if it is gone.
    fn receive_one(&mut self, until: Option<Instant>, out: &mut Outcome) -> bool {
        let done = match until {
            None => self.done.recv().ok(),
            Some(at) => self
                .done
                .recv_timeout(at.saturating_duration_since(Instant::now()))
                .ok(),
        };
        match done {
            Some(done) => {
                self.receive(done, out);
                true
            }
            None => false,
        }
    }
}

/// The shipper thread: ships batches as they come, replays the spool in
/// between (one segment per batch shipped, so a steady stream cannot starve
/// the replay), and ends when the writer closes its side of the queue and
/// the queue is empty. Past the shutdown cutoff it spools what is left.
fn run_shipper(
    mut shipper: Shipper,
    shipments: Receiver<SealedBatch>,
    done: mpsc::Sender<Done>,
    writer: std::thread::Thread,
) {
    // When the spool wants attention next; `None` while it is empty.
    let mut maintain_at = Some(Instant::now());
    loop {
        if maintain_at.is_some_and(|at| Instant::now() >= at) {
            let (outcome, next) = shipper.maintain();
            maintain_at = next.map(|wait| Instant::now() + wait);
            if !outcome.is_empty() {
                if done.send(Done::Maintenance(outcome)).is_err() {
                    return;
                }
                writer.unpark();
            }
        }
        let next = match maintain_at {
            Some(at) => shipments.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => shipments.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let batch = match next {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let bytes = batch.bytes.len();
        let outcome = shipper.commit(batch);
        if outcome.spooled > 0 && maintain_at.is_none() {
            maintain_at = Some(Instant::now());
        }
        if done.send(Done::Batch(outcome, bytes)).is_err() {
            return;
        }
        writer.unpark();
    }
}

impl Sink for PostgresSink {
    fn append(&mut self, row: &Row<'_>) {
        self.encoders[self.current].push_row(row);
        let ts = row.ts_unix_nanos;
        self.span = Some(match self.span {
            Some((first, last)) => (first.min(ts), last.max(ts)),
            None => (ts, ts),
        });
    }

    fn append_report(&mut self, row: &Row<'_>) {
        self.append(row);
        self.reports += 1;
    }

    fn pending_rows(&self) -> usize {
        self.encoder().rows()
    }

    fn pending_bytes(&self) -> usize {
        self.encoder().bytes_len()
    }

    fn commit(&mut self) {
        let rows = self.encoder().rows();
        if rows == 0 {
            return;
        }
        let (first_ts, last_ts) = self.span.take().unwrap_or((0, 0));
        let batch = SealedBatch {
            id: self.ids.next(unix_nanos_now()),
            bytes: self.encoders[self.current].finish(),
            rows: rows as u32,
            reports: std::mem::take(&mut self.reports),
            first_ts,
            last_ts,
        };
        self.current ^= 1;
        // Backpressure: wait while the queue holds its budget's worth (it
        // always takes one batch, however large).
        let mut out = Outcome::default();
        while self.in_flight > 0 && self.in_flight_bytes + batch.bytes.len() > self.queue_bytes {
            if !self.receive_one(None, &mut out) {
                break;
            }
        }
        self.received.add(out);
        let bytes = batch.bytes.len();
        let sent = match &self.shipments {
            Some(queue) => queue.send(batch).map_err(|mpsc::SendError(batch)| batch),
            None => Err(batch),
        };
        match sent {
            Ok(()) => {
                self.in_flight += 1;
                self.in_flight_bytes += bytes;
            }
            Err(batch) => {
                self.received.lost += batch.events();
                self.received.failure = Some(BatchFailure::new(Fate::Lost, Error::WriterGone));
            }
        }
    }

    fn outcomes(&mut self, wait: Wait) -> Outcome {
        let mut out = std::mem::take(&mut self.received);
        while let Ok(done) = self.done.try_recv() {
            self.receive(done, &mut out);
        }
        if wait == Wait::All {
            while self.in_flight > 0 && self.receive_one(None, &mut out) {}
        }
        out
    }

    fn close(&mut self) -> Outcome {
        let mut out = self.outcomes(Wait::No);
        // The shipper ends once the queue is drained; past the cutoff it
        // only spools, so this ends shortly after the cutoff at the latest.
        drop(self.shipments.take());
        let until = self.cutoff.get().map(|at| at + CLOSE_GRACE);
        loop {
            let done = match until {
                None => self.done.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => self
                    .done
                    .recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match done {
                Ok(done) => self.receive(done, &mut out),
                Err(RecvTimeoutError::Disconnected) => {
                    // It has returned (or is returning): join it, so no
                    // thread of this pipeline outlives the shutdown.
                    if let Some(thread) = self.shipper.take() {
                        let _ = thread.join();
                    }
                    break;
                }
                // Stuck on the disk past the grace: leave it.
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        out
    }
}
