//! The sink worker: loads one shard's batches from the bus into that
//! shard's PostgreSQL, exactly once, through the same shipper a pipeline
//! uses (one transaction per batch with its ledger row, retries, dead
//! letters, partitions). `ringtrail sink` runs one.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use ringtrail::transport::NatsTarget;
//! use ringtrail::worker::Worker;
//!
//! let target = NatsTarget::new("nats://10.0.0.1:4222,nats://10.0.0.2:4222", "AUDIT")?;
//! let stop = AtomicBool::new(false); // set it from a SIGTERM handler
//! let done = Worker::new(target, 0, "postgres://ringtrail@shard0/audit")
//!     .run(&stop, |progress| eprintln!("{} rows loaded, lag {:?}", progress.rows, progress.lag))?;
//! println!("{} batches loaded", done.batches);
//! # Ok::<(), ringtrail::Error>(())
//! ```
//!
//! **Exactly once.** A message is acknowledged only after its batch's
//! COMMIT (or after the ledger showed it committed before: a redelivery).
//! The shipper asks the ledger before every attempt, so a batch delivered
//! twice (a worker killed after COMMIT and before the acknowledgement, or
//! one whose acknowledgement was lost) is committed once. Several workers
//! on one shard share its durable consumer: each message goes to one of
//! them at a time, and a worker tells the bus a slow batch is still in
//! progress, so it is not handed to a second one meanwhile.
//!
//! **Outages.** PostgreSQL down: the batch is released back to the stream
//! (delivered again after a delay) and nothing is lost: the stream keeps
//! it. The bus down: the worker retries until it answers. A message that
//! is not a ringtrail batch (torn, or published by something else) is
//! rejected (never delivered again) and counted; it poisons nothing.
//!
//! **Stopping.** [`Worker::run`] returns once `stop` is set, after
//! finishing (committing and acknowledging) or releasing the batch in
//! hand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sink::{envelope_decode, Cutoff, Message, PostgresConfig, Shared, Shipper};
use crate::transport::nats::NatsSubscriber;
use crate::transport::{NatsTarget, Received, Subscriber};
use crate::Result;

/// How long one wait for a message lasts, so `stop` is seen promptly.
const POLL: Duration = Duration::from_millis(500);

/// How many times a batch is tried before it is released to the stream.
const TRIES: u32 = 2;

/// How many deliveries a shutdown checkpoint waits for its head's batch
/// (a second apart) before it is dropped: that batch was lost.
const CHECKPOINT_TRIES: u64 = 120;

/// Loads one shard of the bus into its PostgreSQL (see the module docs).
#[derive(Debug, Clone)]
pub struct Worker {
    target: NatsTarget,
    shard: u32,
    url: String,
    ack_wait: Duration,
    stall_timeout: Duration,
    commit_timeout: Duration,
    report_every: Duration,
    release_delay: Duration,
}

/// What a worker has done so far, for its progress lines and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The shard.
    pub shard: u32,
    /// Batches (messages) committed.
    pub batches: u64,
    /// Event rows committed.
    pub rows: u64,
    /// Rows moved to `ringtrail.dead_letters`.
    pub dead_lettered: u64,
    /// Messages delivered more than once (a killed worker's, a lost
    /// acknowledgement's): the ledger kept them exactly once.
    pub redelivered: u64,
    /// Batches given back to the stream because PostgreSQL failed: they
    /// come again.
    pub released: u64,
    /// Messages that are not ringtrail batches, rejected.
    pub rejected: u64,
    /// Checkpoints signed at a producer's shutdown that no batch carried,
    /// stored.
    pub checkpoints: u64,
    /// Messages of the shard not yet delivered to a worker, when last
    /// asked.
    pub lag: Option<u64>,
}

impl Worker {
    /// A worker for shard `shard` (numbered from 0) of `target`'s stream,
    /// loading into the PostgreSQL at `database_url` (its migrations
    /// applied at start), with the defaults: a 30 s ack wait, a 3 s stall
    /// timeout, a 30 s commit timeout, progress every 10 s.
    pub fn new(target: NatsTarget, shard: u32, database_url: impl Into<String>) -> Worker {
        Worker {
            target,
            shard,
            url: database_url.into(),
            ack_wait: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(3),
            commit_timeout: Duration::from_secs(30),
            report_every: Duration::from_secs(10),
            release_delay: Duration::from_secs(1),
        }
    }

    /// How long a message may be held without a word before the bus hands
    /// it to another worker (a killed worker's batches wait this long).
    /// The worker speaks up every third of it while it holds one.
    pub fn ack_wait(mut self, wait: Duration) -> Worker {
        self.ack_wait = wait;
        self
    }

    /// The longest one round trip, to NATS or PostgreSQL, may go
    /// unanswered.
    pub fn stall_timeout(mut self, timeout: Duration) -> Worker {
        self.stall_timeout = timeout;
        self
    }

    /// How often `run` calls its `report` with the progress so far.
    pub fn report_every(mut self, every: Duration) -> Worker {
        self.report_every = every;
        self
    }

    /// Connects to PostgreSQL (applying the migrations) and to the bus
    /// (creating the stream and the shard's consumer when missing), then
    /// loads batches until `stop` is set. `report` gets the progress every
    /// [`report_every`](Worker::report_every) and once at the end; so does
    /// the `metrics` feature, as `ringtrail_sink_*` series.
    ///
    /// Fails only at start (a wrong URL, an unreachable server): later
    /// outages are waited out.
    pub fn run(self, stop: &AtomicBool, mut report: impl FnMut(&Progress)) -> Result<Progress> {
        if self.ack_wait < Duration::from_secs(1) || self.stall_timeout.is_zero() {
            return Err(crate::Error::Config(
                "the ack wait must be at least 1 s and the stall timeout positive".to_owned(),
            ));
        }
        let config = PostgresConfig {
            url: self.url.clone(),
            migrate: true,
            commit_timeout: self.commit_timeout,
            stall_timeout: self.stall_timeout,
            max_retries: TRIES,
            lanes: 1,
            ..PostgresConfig::default()
        };
        config.validate()?;
        let shared = Shared::open(&config, Arc::new(Cutoff::default()), None, "PostgreSQL")?;
        let mut shipper = Shipper::connect(&config, shared)?;
        let mut subscriber =
            NatsSubscriber::connect(&self.target, self.shard, self.stall_timeout, self.ack_wait)?;
        let mut progress = Progress {
            shard: self.shard,
            ..Progress::default()
        };
        let mut partitions_at = Instant::now() + shipper.maintain_partitions();
        let mut report_at = Instant::now() + self.report_every;
        let mut bus_down = false;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= partitions_at {
                partitions_at = now + shipper.maintain_partitions();
            }
            if now >= report_at {
                progress.lag = subscriber.lag().ok();
                publish(&progress);
                report(&progress);
                report_at = now + self.report_every;
            }
            let message = match subscriber.next(POLL) {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(e) => {
                    if !bus_down {
                        eprintln!(
                            "ringtrail sink: NATS unreachable ({}); retrying until it answers",
                            e.chain()
                        );
                        bus_down = true;
                    }
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            if std::mem::take(&mut bus_down) {
                eprintln!("ringtrail sink: NATS answers again");
            }
            if message.delivered() > 1 {
                progress.redelivered += 1;
            }
            let batch = match envelope_decode(message.payload()) {
                Ok(Message::Batch(batch)) => batch,
                Ok(Message::Checkpoint(checkpoint)) => {
                    match shipper.load_checkpoint(&checkpoint) {
                        Ok(true) => {
                            progress.checkpoints += 1;
                            let _ = subscriber.ack(message);
                        }
                        // Its head's batch is not in yet: later, unless it
                        // never comes (lost on its producer).
                        Ok(false) if message.delivered() >= CHECKPOINT_TRIES => {
                            eprintln!(
                                "ringtrail sink: shard {}: the shutdown checkpoint of chain seq {} names a batch that never arrived; dropped",
                                self.shard, checkpoint.seq
                            );
                            let _ = subscriber.reject(message);
                        }
                        Ok(false) | Err(_) => {
                            let _ = subscriber.release(message, self.release_delay);
                        }
                    }
                    continue;
                }
                Err(_) => {
                    eprintln!(
                        "ringtrail sink: a message of shard {} ({} bytes) is not a ringtrail batch; rejected",
                        self.shard,
                        message.payload().len()
                    );
                    progress.rejected += 1;
                    let _ = subscriber.reject(message);
                    continue;
                }
            };
            match shipper.load(batch) {
                Ok(outcome) => {
                    progress.batches += 1;
                    progress.rows += outcome.written;
                    progress.dead_lettered += outcome.dead_lettered;
                    if let Err(e) = subscriber.ack(message) {
                        // Delivered again later; the ledger knows it.
                        eprintln!(
                            "ringtrail sink: acknowledging a committed batch failed ({}); it comes again and the ledger skips it",
                            e.chain()
                        );
                    }
                }
                Err(e) => {
                    progress.released += 1;
                    eprintln!(
                        "ringtrail sink: shard {}: a batch could not be committed ({}); released to the stream, it comes again",
                        self.shard,
                        e.chain()
                    );
                    let _ = subscriber.release(message, self.release_delay);
                }
            }
        }
        progress.lag = subscriber.lag().ok();
        publish(&progress);
        report(&progress);
        Ok(progress)
    }
}

/// The progress as `ringtrail_sink_*` series, labelled with the shard.
#[cfg(feature = "metrics")]
fn publish(progress: &Progress) {
    crate::metrics::publish_worker(progress);
}

#[cfg(not(feature = "metrics"))]
fn publish(_: &Progress) {}
