//! The PostgreSQL sink, writer side: encodes rows into binary COPY batches
//! and hands each sealed batch to the [`Shipper`] thread, so encoding the
//! next batch overlaps with the server loading this one.
//!
//! At most one batch waits while one is in flight (a channel of one), so a
//! slow server slows the writer down rather than piling up batches in
//! memory; the ring then fills and the overflow policy applies. Two
//! encoders alternate, so the buffer of the batch in flight is reused once
//! the shipper lets go of it, instead of allocating a new one per batch.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Instant;

use super::batch::SealedBatch;
use super::shipper::Shipper;
use super::{BatchFailure, Outcome, PostgresConfig, Sink, Wait};
use crate::clock::unix_nanos_now;
use crate::encode::CopyEncoder;
use crate::uuid7::Uuid7;
use crate::{Error, Fate, Result, Row};

/// A batch for the shipper thread, and the latest it may keep retrying.
struct Shipment {
    batch: SealedBatch,
    deadline: Option<Instant>,
}

/// What the shipper reports back.
enum Done {
    /// A shipped batch's outcome.
    Batch(Outcome),
    /// Background work (spool replay) that changed something.
    Maintenance(Outcome),
}

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
    shipments: SyncSender<Shipment>,
    done: Receiver<Done>,
    /// Batches handed over whose outcome has not come back yet.
    in_flight: usize,
    /// Rows that could not even be handed over (the shipper is gone).
    orphaned: Outcome,
}

impl PostgresSink {
    /// Connects (and migrates) on the calling thread, so errors surface in
    /// `build()`, then starts the `ringtrail-shipper` thread.
    pub(crate) fn connect(config: &PostgresConfig) -> Result<PostgresSink> {
        let shipper = Shipper::connect(config)?;
        let (shipments, shipment_rx) = mpsc::sync_channel::<Shipment>(1);
        let (done_tx, done) = mpsc::channel::<Done>();
        // Called on the writer thread: the shipper wakes it after each
        // batch, so counters and flushes see outcomes without waiting for
        // the writer's next timed wake-up.
        let writer = std::thread::current();
        std::thread::Builder::new()
            .name("ringtrail-shipper".into())
            .spawn(move || run_shipper(shipper, shipment_rx, done_tx, writer))?;
        Ok(PostgresSink {
            encoders: [CopyEncoder::new(), CopyEncoder::new()],
            current: 0,
            span: None,
            reports: 0,
            ids: Uuid7::new(),
            shipments,
            done,
            in_flight: 0,
            orphaned: Outcome::default(),
        })
    }

    fn encoder(&self) -> &CopyEncoder {
        &self.encoders[self.current]
    }

    fn receive(&mut self, done: Done, out: &mut Outcome) {
        match done {
            Done::Batch(o) => {
                self.in_flight -= 1;
                out.add(o);
            }
            Done::Maintenance(o) => out.add(o),
        }
    }
}

/// The shipper thread: ships batches as they come, replays the spool in
/// between (one segment per batch shipped, so a steady stream cannot starve
/// the replay), and ends when the writer drops its side of the channel.
fn run_shipper(
    mut shipper: Shipper,
    shipments: Receiver<Shipment>,
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
        let Shipment { batch, deadline } = match next {
            Ok(shipment) => shipment,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let outcome = shipper.commit(batch, deadline);
        if outcome.spooled > 0 && maintain_at.is_none() {
            maintain_at = Some(Instant::now());
        }
        if done.send(Done::Batch(outcome)).is_err() {
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

    fn commit(&mut self, deadline: Option<Instant>) {
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
        // Blocks while one batch waits and one is in flight: backpressure.
        match self.shipments.send(Shipment { batch, deadline }) {
            Ok(()) => self.in_flight += 1,
            Err(mpsc::SendError(Shipment { batch, .. })) => {
                self.orphaned.lost += batch.events();
                self.orphaned.failure = Some(BatchFailure::new(Fate::Lost, Error::WriterGone));
            }
        }
    }

    fn outcomes(&mut self, wait: Wait) -> Outcome {
        let mut out = std::mem::take(&mut self.orphaned);
        while let Ok(done) = self.done.try_recv() {
            self.receive(done, &mut out);
        }
        while self.in_flight > 0 {
            let done = match wait {
                Wait::No => break,
                Wait::Forever => self.done.recv().ok(),
                Wait::Until(d) => self
                    .done
                    .recv_timeout(d.saturating_duration_since(Instant::now()))
                    .ok(),
            };
            match done {
                Some(done) => self.receive(done, &mut out),
                // The shipper is gone, or the deadline passed.
                None => break,
            }
        }
        out
    }
}
