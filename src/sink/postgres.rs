//! The PostgreSQL sink, writer side: encodes rows into binary COPY batches
//! and hands each sealed batch to one of the [`Shipper`] lanes, so
//! encoding the next batch overlaps with the server loading this one.
//!
//! **Lanes.** `lanes` shipper threads, each with a connection of its own,
//! take batches from their own queues; a batch goes to the lane with the
//! fewest bytes in flight. Each batch is still one transaction with its
//! ledger row, so exactly-once holds per batch whatever the lane; order
//! across lanes is not kept (timestamps are). The first lane also replays
//! the spool.
//!
//! **An elastic, bounded queue.** The hand-over is bounded by bytes, not by
//! batches (`batch_queue_bytes`, 64 MiB by default): a commit that takes a
//! while, or a server that stalls until a lane notices and spools, does not
//! stop the writer from draining the ring. When the queue is full, the
//! writer spills the batch to the spool (through the disk lane) if there is one (the server is
//! slower than the inflow; the first lane replays it, exactly once, when it
//! catches up), and otherwise waits, so that the ring fills and the
//! overflow policy applies. Two encoders alternate, so while the queue is
//! short the buffer of a batch is reused once its lane lets go of it.
//!
//! **The writer never waits on the disk.** Spills, and the checkpoint
//! file's notes, go to the disk lane (`disk.rs`, its own thread), with a
//! byte bound of their own (`batch_queue_bytes` again): the writer hands
//! them over and goes back to the ring. Only when the lanes and the disk
//! lane are both full does it wait.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::batch::{HeadCheckpoint, SealedBatch};
use super::chained::Chainer;
use super::disk::{self, DiskJob};
use super::shipper::{Shared, Shipper};
use super::{BatchFailure, Cutoff, Outcome, Partitions, PostgresConfig, Sink, Wait};
use crate::encode::CopyEncoder;
use crate::ids::Uuid7;
use crate::thread::{spawn_own, OwnThread};
use crate::time::clock::unix_nanos_now;
use crate::{Error, Fate, Result, Row};

/// What a lane reports back.
enum Done {
    /// A shipped batch's outcome, its lane and its size.
    Batch {
        lane: usize,
        bytes: usize,
        outcome: Outcome,
    },
    /// Background work (spool replay) that changed something.
    Maintenance(Outcome),
    /// A job of the disk lane done: its bytes and outcome.
    Disk { bytes: usize, outcome: Outcome },
}

/// How long `close` waits for the lanes past the cutoff: they only have
/// local disk writes left by then.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How often the replaying lane looks at an empty spool, for batches the
/// writer spilled.
const SPOOL_CHECK: Duration = Duration::from_millis(250);

/// One shipper thread (or the disk lane, with `J` = [`DiskJob`]) and what
/// the writer has handed it.
struct Lane<J = Job> {
    /// `None` once closed.
    queue: Option<Sender<J>>,
    in_flight: usize,
    in_flight_bytes: usize,
    thread: Option<JoinHandle<()>>,
}

/// What a lane ships batches with: a PostgreSQL [`Shipper`], or a bus
/// publisher (`sink/bus.rs`) for scale-out. It runs on the lane's own
/// thread; the writer side ([`LaneSink`]) is the same for both.
pub(crate) trait Courier: Send + 'static {
    /// Delivers one live batch: committed, or else spooled (or lost).
    fn commit(&mut self, batch: SealedBatch) -> Outcome;
    /// Replays the spool's oldest segment when it may; returns what it did
    /// and when it wants to run again (`None`: nothing to do).
    fn maintain(&mut self) -> (Outcome, Option<Duration>);
    /// Stores the checkpoint signed at shutdown, after its head's batch.
    fn store_checkpoint(&mut self, checkpoint: &HeadCheckpoint);
    /// Whether this lane runs partition upkeep.
    fn keeps_partitions(&self) -> bool {
        false
    }
    /// Partition upkeep; returns when to run it again.
    fn maintain_partitions(&mut self) -> Duration {
        Partitions::UPKEEP_EVERY
    }
}

impl Courier for Shipper {
    fn commit(&mut self, batch: SealedBatch) -> Outcome {
        Shipper::commit(self, batch)
    }

    fn maintain(&mut self) -> (Outcome, Option<Duration>) {
        Shipper::maintain(self)
    }

    fn store_checkpoint(&mut self, checkpoint: &HeadCheckpoint) {
        Shipper::store_checkpoint(self, checkpoint)
    }

    fn keeps_partitions(&self) -> bool {
        Shipper::keeps_partitions(self)
    }

    fn maintain_partitions(&mut self) -> Duration {
        Shipper::maintain_partitions(self)
    }
}

/// The PostgreSQL sink: a [`LaneSink`] of [`Shipper`]s.
pub(crate) type PostgresSink = LaneSink;

/// Encodes batches and ships them through the lanes.
pub(crate) struct LaneSink {
    encoders: [CopyEncoder; 2],
    /// Which encoder takes rows now.
    current: usize,
    /// Earliest and latest event time in the batch in progress.
    span: Option<(i64, i64)>,
    /// The partition the batch in progress holds rows of.
    fence: PartitionFence,
    /// Drop-report rows in the batch in progress.
    reports: u32,
    ids: Uuid7,
    lanes: Vec<Lane>,
    /// The disk lane, when there is a spool or a checkpoint file.
    disk: Option<Lane<DiskJob>>,
    done: Receiver<Done>,
    queue_bytes: usize,
    /// Outcomes received while waiting for room in the queue, of spilled
    /// batches, and of rows that could not even be handed over (the lanes
    /// are gone): for the next `outcomes`.
    received: Outcome,
    shared: Arc<Shared>,
    /// The hash chain over the batches; `None` when it is off.
    chainer: Option<Chainer>,
    /// The lane handed the latest batch.
    last_lane: Option<usize>,
}

/// Keeps a batch inside one partition of `ringtrail.logs` (partitions
/// are aligned on multiples of their width since the Unix epoch): a row
/// of another partition than the batch's seals the batch first. Retention
/// then drops whole batches, and `verify` checks every batch it keeps in
/// full. Rarely more than one extra batch at a partition bound.
#[derive(Debug)]
struct PartitionFence {
    width_nanos: i64,
    /// The partition (`ts / width`) of the batch in progress.
    current: Option<i64>,
}

impl PartitionFence {
    fn new(width: std::time::Duration) -> PartitionFence {
        PartitionFence {
            width_nanos: i64::try_from(width.as_nanos()).unwrap_or(i64::MAX).max(1),
            current: None,
        }
    }

    /// Takes a row at `ts`: whether the batch must be sealed before it
    /// (it is of another partition). After a seal, [`reset`](Self::reset)
    /// and take the row again.
    fn crosses(&mut self, ts: i64) -> bool {
        let partition = ts.div_euclid(self.width_nanos);
        match self.current {
            Some(p) if p != partition => true,
            _ => {
                self.current = Some(partition);
                false
            }
        }
    }

    /// The batch was sealed.
    fn reset(&mut self) {
        self.current = None;
    }
}

/// What a lane is handed.
// Nearly every job is a batch, moved in and out of the channel as is:
// boxing it would allocate per batch to shrink the rare checkpoint.
#[allow(clippy::large_enum_variant)]
enum Job {
    Batch(SealedBatch),
    /// The checkpoint signed at shutdown, after the head's batch.
    Checkpoint(HeadCheckpoint),
}

impl LaneSink {
    /// Connects every lane (and migrates) on the calling thread, so errors
    /// surface in `build()`, then starts the `ringtrail-shipper` threads,
    /// which obey `cutoff` once shutdown sets it.
    pub(crate) fn connect(config: &PostgresConfig, cutoff: Arc<Cutoff>) -> Result<PostgresSink> {
        LaneSink::connect_with(config, cutoff, "PostgreSQL", |shared| {
            Shipper::connect(config, shared)
        })
    }
}

impl LaneSink {
    /// Connects every lane with `courier` (given what the lanes share) on
    /// the calling thread, so errors surface in `build()`, then starts the
    /// lanes' threads. `destination` names it in the lines logged when it
    /// goes down and comes back.
    pub(crate) fn connect_with<C: Courier>(
        config: &PostgresConfig,
        cutoff: Arc<Cutoff>,
        destination: &'static str,
        mut courier: impl FnMut(Arc<Shared>) -> Result<C>,
    ) -> Result<LaneSink> {
        let chainer = Chainer::new(&config.chain)?;
        let shared = Shared::open(
            config,
            cutoff,
            chainer.as_ref().map(Chainer::verifier),
            destination,
        )?;
        let (done_tx, done) = mpsc::channel::<Done>();
        // Called on the writer thread: a lane wakes it after each batch, so
        // counters and flushes see outcomes without waiting for the
        // writer's next timed wake-up.
        let writer = std::thread::current();
        let mut lanes = Vec::with_capacity(config.lanes);
        for lane in 0..config.lanes.max(1) {
            let mut shipper = courier(shared.clone())?;
            // The first lane's partition upkeep runs once now, before any
            // batch: today's partition exists before rows arrive (a
            // failure is one line on stderr and a retry later, never a
            // failed build).
            let partitions_at = (lane == 0 && shipper.keeps_partitions())
                .then(|| Instant::now() + shipper.maintain_partitions());
            let (queue, batches) = mpsc::channel::<Job>();
            let (done, writer) = (done_tx.clone(), writer.clone());
            let thread = spawn_own(OwnThread::Shipper, move || {
                run_lane(shipper, lane, partitions_at, batches, done, writer)
            })?;
            lanes.push(Lane {
                queue: Some(queue),
                in_flight: 0,
                in_flight_bytes: 0,
                thread: Some(thread),
            });
        }
        let disk = if shared.has_spool() || chainer.as_ref().is_some_and(Chainer::has_file) {
            let (queue, jobs) = mpsc::channel::<DiskJob>();
            let (done, writer, shared) = (done_tx.clone(), writer.clone(), shared.clone());
            let thread = spawn_own(OwnThread::Disk, move || {
                disk::run(shared, jobs, |bytes, outcome| {
                    let sent = done.send(Done::Disk { bytes, outcome }).is_ok();
                    writer.unpark();
                    sent
                })
            })?;
            Some(Lane {
                queue: Some(queue),
                in_flight: 0,
                in_flight_bytes: 0,
                thread: Some(thread),
            })
        } else {
            None
        };
        let mut encoders = [CopyEncoder::new(), CopyEncoder::new()];
        for encoder in &mut encoders {
            // With the chain, `fields` go out in JCS member order, so most
            // tuples are hashed as they are (jsonb stores the same object).
            encoder.sort_fields(chainer.is_some());
        }
        Ok(LaneSink {
            encoders,
            current: 0,
            span: None,
            fence: PartitionFence::new(config.partitions.width),
            reports: 0,
            // Batch ids are the ledger's key: unpredictable (see Uuid7).
            ids: Uuid7::unpredictable(),
            lanes,
            disk,
            done,
            queue_bytes: config.batch_queue_bytes,
            received: Outcome::default(),
            shared,
            chainer,
            last_lane: None,
        })
    }

    fn encoder(&self) -> &CopyEncoder {
        &self.encoders[self.current]
    }

    /// Jobs handed over and not yet reported, the disk lane's included.
    fn in_flight(&self) -> usize {
        self.shipping() + self.disk.as_ref().map_or(0, |d| d.in_flight)
    }

    /// Batches handed to the shipping lanes and not yet reported.
    fn shipping(&self) -> usize {
        self.lanes.iter().map(|l| l.in_flight).sum()
    }

    /// Bytes of batches handed to the shipping lanes and not yet reported.
    fn shipping_bytes(&self) -> usize {
        self.lanes.iter().map(|l| l.in_flight_bytes).sum()
    }

    /// Whether the disk lane takes a batch of `bytes` now.
    fn disk_has_room(&self, bytes: usize) -> bool {
        self.disk
            .as_ref()
            .is_some_and(|d| d.in_flight == 0 || d.in_flight_bytes + bytes <= self.queue_bytes)
    }

    fn receive(&mut self, done: Done, out: &mut Outcome) {
        match done {
            Done::Batch {
                lane,
                bytes,
                outcome,
            } => {
                let lane = &mut self.lanes[lane];
                lane.in_flight -= 1;
                lane.in_flight_bytes -= bytes;
                out.add(outcome);
            }
            Done::Maintenance(o) => out.add(o),
            Done::Disk { bytes, outcome } => {
                if let Some(disk) = &mut self.disk {
                    disk.in_flight -= 1;
                    disk.in_flight_bytes -= bytes;
                }
                out.add(outcome);
            }
        }
    }

    /// Waits for one report from a lane; `false` if they are all gone.
    fn receive_one(&mut self, out: &mut Outcome) -> bool {
        match self.done.recv() {
            Ok(done) => {
                self.receive(done, out);
                true
            }
            Err(_) => false,
        }
    }

    /// The queue is full and there is a spool: the batch goes there,
    /// through the disk lane, to be replayed when the server catches up.
    fn spill(&mut self, batch: SealedBatch) {
        let queued = self.shipping_bytes();
        self.hand_to_disk(DiskJob::Spill { batch, queued });
    }

    /// The checkpoint notes signed for the checkpoint file since the last
    /// call go to the disk lane.
    fn file_notes_to_disk(&mut self) {
        if let Some((path, notes)) = self.chainer.as_mut().and_then(Chainer::take_file_notes) {
            self.hand_to_disk(DiskJob::Checkpoints { path, notes });
        }
    }

    /// Hands `job` to the disk lane (its room was checked, for a spill);
    /// counts it lost if the lane is gone.
    fn hand_to_disk(&mut self, job: DiskJob) {
        let bytes = job.bytes();
        let Some(disk) = &mut self.disk else {
            return job.lost(&mut self.received);
        };
        let sent = match &disk.queue {
            Some(queue) => queue.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        match sent {
            Ok(()) => {
                disk.in_flight += 1;
                disk.in_flight_bytes += bytes;
            }
            Err(job) => job.lost(&mut self.received),
        }
    }

    /// Hands `batch` to the lane with the fewest bytes in flight.
    fn hand_over(&mut self, batch: SealedBatch) {
        let bytes = batch.bytes.len();
        let index = (0..self.lanes.len())
            .min_by_key(|&i| self.lanes[i].in_flight_bytes)
            .expect("at least one lane");
        let lane = &mut self.lanes[index];
        let sent = match &lane.queue {
            Some(queue) => queue.send(Job::Batch(batch)).map_err(|e| e.0),
            None => Err(Job::Batch(batch)),
        };
        match sent {
            Ok(()) => {
                lane.in_flight += 1;
                lane.in_flight_bytes += bytes;
                self.last_lane = Some(index);
            }
            Err(Job::Checkpoint(_)) => {}
            Err(Job::Batch(batch)) => {
                self.received.lost += batch.events();
                self.received.failure = Some(BatchFailure::new(Fate::Lost, Error::WriterGone));
            }
        }
    }
}

/// A lane's thread: ships batches as they come and ends when the writer
/// closes its queue and the queue is empty; past the shutdown cutoff it
/// spools what is left. The first lane also replays the spool in between
/// (one segment per batch shipped, so a steady stream cannot starve the
/// replay).
fn run_lane<C: Courier>(
    mut shipper: C,
    lane: usize,
    mut partitions_at: Option<Instant>,
    batches: Receiver<Job>,
    done: mpsc::Sender<Done>,
    writer: std::thread::Thread,
) {
    let replays = lane == 0;
    // When the spool wants attention next.
    let mut maintain_at = replays.then(Instant::now);
    // `partitions_at`: when the partitions (and retention) want attention
    // next, about hourly; first lane only.
    loop {
        if partitions_at.is_some_and(|at| Instant::now() >= at) {
            partitions_at = Some(Instant::now() + shipper.maintain_partitions());
        }
        if maintain_at.is_some_and(|at| Instant::now() >= at) {
            let (outcome, next) = shipper.maintain();
            // An empty spool is looked at now and then: the writer may
            // spill into it.
            maintain_at = Some(Instant::now() + next.unwrap_or(SPOOL_CHECK));
            if !outcome.is_empty() {
                if done.send(Done::Maintenance(outcome)).is_err() {
                    return;
                }
                writer.unpark();
            }
        }
        let next = match maintain_at.into_iter().chain(partitions_at).min() {
            Some(at) => batches.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => batches.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let batch = match next {
            Ok(Job::Batch(batch)) => batch,
            Ok(Job::Checkpoint(cp)) => {
                shipper.store_checkpoint(&cp);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let bytes = batch.bytes.len();
        let outcome = shipper.commit(batch);
        if outcome.spooled > 0 && replays {
            maintain_at = Some(Instant::now());
        }
        if done
            .send(Done::Batch {
                lane,
                bytes,
                outcome,
            })
            .is_err()
        {
            return;
        }
        writer.unpark();
    }
}

impl Sink for LaneSink {
    fn append(&mut self, row: &Row<'_>) {
        if self.fence.crosses(row.ts_unix_nanos) {
            self.commit();
            self.fence.crosses(row.ts_unix_nanos);
        }
        let encoder = &mut self.encoders[self.current];
        encoder.push_row(row);
        if let Some(chainer) = &mut self.chainer {
            chainer.push(encoder, row);
        }
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
        self.fence.reset();
        let id = self.ids.next(unix_nanos_now());
        let (chain, checkpoint) = match &mut self.chainer {
            Some(chainer) => {
                // The shutdown cutoff is set before the writer's last
                // commits: those carry a checkpoint into the table.
                let closing = self.shared.cutoff.get().is_some();
                let (entry, checkpoint) = chainer.seal(id, rows as u32, first_ts, last_ts, closing);
                (Some(entry), checkpoint)
            }
            None => (None, None),
        };
        let batch = SealedBatch {
            id,
            bytes: self.encoders[self.current].finish(),
            rows: rows as u32,
            reports: std::mem::take(&mut self.reports),
            first_ts,
            last_ts,
            chain,
            checkpoint,
        };
        self.current ^= 1;
        self.file_notes_to_disk();
        // A full queue: spill (with a spool, when the disk lane has room)
        // or wait for room (an empty queue always takes one batch, however
        // large).
        let mut out = Outcome::default();
        let bytes = batch.bytes.len();
        while self.shipping() > 0 && self.shipping_bytes() + bytes > self.queue_bytes {
            if self.shared.has_spool() && self.disk_has_room(bytes) {
                self.received.add(out);
                return self.spill(batch);
            }
            if !self.receive_one(&mut out) {
                break;
            }
        }
        self.received.add(out);
        self.hand_over(batch);
    }

    fn outcomes(&mut self, wait: Wait) -> Outcome {
        let mut out = std::mem::take(&mut self.received);
        while let Ok(done) = self.done.try_recv() {
            self.receive(done, &mut out);
        }
        if wait == Wait::All {
            while self.in_flight() > 0 && self.receive_one(&mut out) {}
        }
        out
    }

    fn take_checkpoint_notes(&mut self) -> Vec<String> {
        self.chainer
            .as_mut()
            .map(Chainer::take_notes)
            .unwrap_or_default()
    }

    fn close(&mut self) -> Outcome {
        let head = self.chainer.as_mut().and_then(Chainer::finish);
        self.file_notes_to_disk();
        if let (Some(head), Some(lane)) = (head, self.last_lane) {
            // After the head's batch, on its lane: it has committed by then.
            if let Some(queue) = &self.lanes[lane].queue {
                let _ = queue.send(Job::Checkpoint(head));
            }
        }
        let mut out = self.outcomes(Wait::No);
        // Each lane ends once its queue is drained; past the cutoff it only
        // spools, so this ends shortly after the cutoff at the latest.
        for lane in &mut self.lanes {
            drop(lane.queue.take());
        }
        if let Some(disk) = &mut self.disk {
            drop(disk.queue.take());
        }
        let until = self.shared.cutoff.get().map(|at| at + CLOSE_GRACE);
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
                    // Every lane has returned (or is returning): join them,
                    // so no thread of this pipeline outlives the shutdown.
                    let disk = self.disk.iter_mut().map(|d| &mut d.thread);
                    for thread in self.lanes.iter_mut().map(|l| &mut l.thread).chain(disk) {
                        if let Some(thread) = thread.take() {
                            let _ = thread.join();
                        }
                    }
                    break;
                }
                // Stuck on the disk past the grace: leave them.
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        // Overload spills still in the page cache reach the disk before
        // the process may exit.
        self.shared.sync_spilled();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::PartitionFence;
    use std::time::Duration;

    /// The writer never waits on the disk: with the lanes' queue full (the
    /// database holds every COPY) and the spool's lock held, as a lane
    /// holds it while it fsyncs a segment, `commit` still returns at once;
    /// the spill lands once the lock is let go. (Before the disk lane the
    /// writer wrote the spill itself, and waited here.)
    #[test]
    fn a_spill_never_waits_on_the_disk() {
        use super::*;
        use crate::sink::Spool;

        let url = ringtrail_cluster::fresh_database().unwrap();
        let spool = std::env::temp_dir().join(format!(
            "ringtrail-disk-lane-{}-{}",
            std::process::id(),
            unix_nanos_now()
        ));
        let config = PostgresConfig {
            url: url.clone(),
            lanes: 1,
            // One batch in flight fills the queue.
            batch_queue_bytes: 1,
            // The held COPY is not a hung server, for as long as this runs.
            stall_timeout: Duration::from_secs(120),
            commit_timeout: Duration::from_secs(120),
            spool: Some(Spool::dir(&spool)),
            ..PostgresConfig::default()
        };
        let mut sink = LaneSink::connect(&config, Arc::new(Cutoff::default())).unwrap();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(
                "CREATE FUNCTION public.held_copy() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN PERFORM pg_advisory_lock_shared(7272); PERFORM pg_advisory_unlock_shared(7272);
                       RETURN NULL; END $$;
                 CREATE TRIGGER held_copy AFTER INSERT ON ringtrail.logs
                   FOR EACH STATEMENT EXECUTE FUNCTION public.held_copy();
                 SELECT pg_advisory_lock(7272);",
            )
            .unwrap();
        let append = |sink: &mut LaneSink, n: usize| {
            for _ in 0..n {
                sink.append(&Row {
                    message: "held",
                    ts_unix_nanos: unix_nanos_now(),
                    ..Row::default()
                });
            }
            sink.commit();
        };
        // The first batch goes to the lane, whose COPY the database holds.
        append(&mut sink, 10);
        let shared = sink.shared.clone();
        let disk_busy = shared.spool().unwrap();
        let (back, returned) = mpsc::channel();
        let writer = std::thread::spawn(move || {
            // The queue is full: this batch spills.
            append(&mut sink, 20);
            let _ = back.send(sink);
        });
        let returned = returned.recv_timeout(Duration::from_secs(30));
        drop(disk_busy);
        let mut sink = returned.expect("commit waited on the disk (the spool's lock)");
        writer.join().unwrap();
        admin
            .batch_execute("SELECT pg_advisory_unlock(7272)")
            .unwrap();
        let out = sink.outcomes(Wait::All);
        assert_eq!((out.written, out.spooled, out.lost), (10, 20, 0), "{out:?}");
        let failure = out.failure.expect("the spill reports its backlog");
        assert!(
            matches!(&*failure.cause, Error::Backlog { .. }),
            "{failure:?}"
        );
        sink.close();
        let _ = std::fs::remove_dir_all(&spool);
    }

    #[test]
    fn a_batch_never_crosses_a_partition_bound() {
        let hour = 3_600_000_000_000i64;
        let mut fence = PartitionFence::new(Duration::from_secs(3_600));
        assert!(!fence.crosses(5 * hour - 1));
        assert!(!fence.crosses(4 * hour), "same partition");
        assert!(fence.crosses(5 * hour), "the next one: seal first");
        fence.reset();
        assert!(!fence.crosses(5 * hour));
        assert!(fence.crosses(5 * hour - 1), "a late row of the last one");
        fence.reset();
        assert!(!fence.crosses(-1), "before 1970: floor, not truncation");
        assert!(fence.crosses(0));
    }
}
