//! [`Builder`] and [`Guard`]: how a pipeline is configured, started,
//! flushed and stopped.

use std::path::PathBuf;
use std::sync::{mpsc, Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::record::MAX_RECORD_SIZE;
use crate::ring::{level_index, DropReason, OverflowPolicy, Ring, MIN_RECORD_SIZE};
use crate::sink::{NullSink, PostgresConfig, PostgresSink, Sink, SpoolConfig};
use crate::writer::{Control, Writer, WriterConfig};
use crate::{Error, Layer, Result, Stats};

/// Configures and starts a ringtrail pipeline.
///
/// Every setting has a default that suits a busy service; only the sink is
/// required.
///
/// ```no_run
/// use std::time::Duration;
/// use tracing_subscriber::prelude::*;
///
/// let (layer, guard) = ringtrail::Builder::new()
///     .postgres("postgres://postgres@127.0.0.1/app")
///     .capacity(16_384)                          // records in the ring
///     .record_size(512)                          // bytes per record
///     .flush_interval(Duration::from_millis(100)) // longest a row waits
///     .build()?;
/// tracing_subscriber::registry().with(layer).init();
/// tracing::info!(user = "ada", "signed in");
/// guard.flush()?;
/// # Ok::<(), ringtrail::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    destination: Option<Destination>,
    capacity: usize,
    record_size: usize,
    shards: usize,
    flush_interval: Duration,
    urgent_interval: Duration,
    batch_rows: usize,
    batch_bytes: usize,
    synchronous_commit: bool,
    migrate: bool,
    shutdown_timeout: Duration,
    commit_timeout: Duration,
    max_retries: u32,
    overflow: [OverflowPolicy; 5],
    spool_dir: Option<PathBuf>,
    spool_max_bytes: u64,
    spool_after: Duration,
    flush_on_panic: bool,
}

/// Where batches go.
#[derive(Debug, Clone)]
enum Destination {
    Postgres(String),
    Null,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the defaults: 16,384 records of 512 bytes (8 MiB),
    /// batches of up to 8,192 rows or 8 MiB, a 100 ms flush interval,
    /// durable commits, migrations applied at build, a 5 s shutdown
    /// deadline, `DropNewest` below WARN and `Block { 5 ms }` for WARN and
    /// ERROR, up to 8 retries, and no spool.
    pub fn new() -> Builder {
        Builder {
            destination: None,
            capacity: 16_384,
            record_size: 512,
            shards: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            flush_interval: Duration::from_millis(100),
            urgent_interval: Duration::from_millis(10),
            batch_rows: 8_192,
            batch_bytes: 8 << 20,
            synchronous_commit: true,
            migrate: true,
            shutdown_timeout: Duration::from_secs(5),
            commit_timeout: Duration::from_secs(30),
            max_retries: 8,
            overflow: {
                let block = OverflowPolicy::Block {
                    timeout: Duration::from_millis(5),
                };
                let drop = OverflowPolicy::DropNewest;
                [drop, drop, drop, block, block]
            },
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_after: Duration::from_secs(5),
            flush_on_panic: false,
        }
    }

    /// Sends events to PostgreSQL at `url` (a `postgres://` URL or a
    /// libpq-style `key=value` string), into `ringtrail.logs`, through
    /// binary COPY.
    pub fn postgres(mut self, url: impl Into<String>) -> Builder {
        self.destination = Some(Destination::Postgres(url.into()));
        self
    }

    /// Encodes every batch exactly as for PostgreSQL, then discards it.
    /// For measuring the pipeline without a database, and for dry runs.
    pub fn null_sink(mut self) -> Builder {
        self.destination = Some(Destination::Null);
        self
    }

    /// Records the ring holds. When it is full, new events are dropped and
    /// counted. Memory is `capacity × record_size` bytes, allocated at build.
    pub fn capacity(mut self, records: usize) -> Builder {
        self.capacity = records;
        self
    }

    /// Bytes per record (128 to 65,536; rounded up to a multiple of 64).
    /// It bounds message + fields + span context of one event: longer text
    /// is cut on a UTF-8 boundary and the row's `truncated` column says so.
    pub fn record_size(mut self, bytes: usize) -> Builder {
        self.record_size = bytes;
        self
    }

    /// How many shards the ring is split into (default: the number of CPUs,
    /// at most 8). Each producer thread has a home shard, so producers on
    /// different cores rarely contend for the same queue; the capacity is
    /// shared, and the ring is full only when every shard is.
    pub fn shards(mut self, shards: usize) -> Builder {
        self.shards = shards;
        self
    }

    /// The longest a row waits before its batch is committed.
    pub fn flush_interval(mut self, interval: Duration) -> Builder {
        self.flush_interval = interval;
        self
    }

    /// After an ERROR event, its batch is committed once this much time has
    /// passed since the previous commit. Small enough that errors land
    /// quickly; large enough that an error storm is batched.
    pub fn urgent_interval(mut self, interval: Duration) -> Builder {
        self.urgent_interval = interval;
        self
    }

    /// The most rows in one batch (one COPY, one transaction).
    pub fn batch_rows(mut self, rows: usize) -> Builder {
        self.batch_rows = rows;
        self
    }

    /// The most encoded bytes in one batch.
    pub fn batch_bytes(mut self, bytes: usize) -> Builder {
        self.batch_bytes = bytes;
        self
    }

    /// `true` (the default): each batch's COMMIT waits for its WAL to reach
    /// disk, so a committed row survives a crash. `false` sets
    /// `synchronous_commit = off` on the writer's connections: faster on
    /// slow disks, and a server crash may lose the last few hundred
    /// milliseconds of commits (never corrupting anything).
    pub fn synchronous_commit(mut self, on: bool) -> Builder {
        self.synchronous_commit = on;
        self
    }

    /// Whether `build()` applies the schema migrations (default `true`).
    pub fn migrate(mut self, apply: bool) -> Builder {
        self.migrate = apply;
        self
    }

    /// How long dropping the [`Guard`] waits for the last batch.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.shutdown_timeout = timeout;
        self
    }

    /// Client-side deadline for one batch's COPY and COMMIT
    /// (`statement_timeout` does not cover a COPY waiting on the client).
    pub fn commit_timeout(mut self, timeout: Duration) -> Builder {
        self.commit_timeout = timeout;
        self
    }

    /// The overflow policy for every level (see [`OverflowPolicy`]).
    pub fn overflow(mut self, policy: OverflowPolicy) -> Builder {
        self.overflow = [policy; 5];
        self
    }

    /// The overflow policy for events at `level` and more severe ones,
    /// e.g. `overflow_at_or_above(Level::WARN, Block { .. })`.
    pub fn overflow_at_or_above(
        mut self,
        level: tracing::Level,
        policy: OverflowPolicy,
    ) -> Builder {
        for slot in &mut self.overflow[level_index(&level)..] {
            *slot = policy;
        }
        self
    }

    /// The overflow policy for events at exactly `level`.
    pub fn overflow_for(mut self, level: tracing::Level, policy: OverflowPolicy) -> Builder {
        self.overflow[level_index(&level)] = policy;
        self
    }

    /// How many times a batch is retried after a connection-class error
    /// (with exponential backoff and jitter) before it is spooled, or lost
    /// when no spool is configured.
    pub fn max_retries(mut self, retries: u32) -> Builder {
        self.max_retries = retries;
        self
    }

    /// Spools batches that cannot reach PostgreSQL to segment files in
    /// `dir` (each a valid binary COPY file), and replays them, exactly
    /// once, when it answers again. Segments left by a previous process are
    /// replayed at start. With a spool, `build()` succeeds even while
    /// PostgreSQL is down.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The most disk the spool may use (default 1 GiB). Batches beyond it
    /// are lost and counted in [`Stats::lost`].
    pub fn spool_max_bytes(mut self, bytes: u64) -> Builder {
        self.spool_max_bytes = bytes;
        self
    }

    /// How long PostgreSQL may keep failing before batches go to the spool
    /// without waiting for the retries to run out (default 5 s).
    pub fn spool_after(mut self, after: Duration) -> Builder {
        self.spool_after = after;
        self
    }

    /// Installs a panic hook that flushes (for up to the shutdown timeout)
    /// before the previous hook runs, so the events leading up to a panic
    /// are committed, or spooled, before the process dies.
    pub fn flush_on_panic(mut self, on: bool) -> Builder {
        self.flush_on_panic = on;
        self
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        if self.destination.is_none() {
            return bad("no sink configured: call .postgres(url)");
        }
        if self.capacity == 0 || self.capacity > u32::MAX as usize {
            return bad("capacity must be between 1 and 2^32 - 1 records");
        }
        if !(MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&self.record_size) {
            return bad("record_size must be between 128 and 65536 bytes");
        }
        if self.shards == 0 {
            return bad("shards must be at least 1");
        }
        if self.batch_rows == 0 || self.batch_bytes == 0 {
            return bad("batch_rows and batch_bytes must be positive");
        }
        if self.flush_interval.is_zero() {
            return bad("flush_interval must be positive");
        }
        Ok(())
    }

    /// Allocates the ring, starts the `ringtrail-writer` thread, connects,
    /// and applies migrations (unless turned off). Fails if the sink cannot
    /// be reached, so a wrong URL is caught at start-up.
    ///
    /// Needs no tokio runtime, and works inside one too: the writer thread
    /// owns a private current-thread runtime.
    pub fn build(self) -> Result<(Layer, Guard)> {
        self.validate()?;
        let postgres = match &self.destination {
            Some(Destination::Postgres(url)) => Some(PostgresConfig {
                url: url.clone(),
                synchronous_commit: self.synchronous_commit,
                migrate: self.migrate,
                commit_timeout: self.commit_timeout,
                max_retries: self.max_retries,
                spool: self.spool_dir.clone().map(|dir| SpoolConfig {
                    dir,
                    max_bytes: self.spool_max_bytes,
                    after: self.spool_after,
                }),
            }),
            _ => None,
        };
        let writer_config = WriterConfig {
            batch_rows: self.batch_rows,
            batch_bytes: self.batch_bytes,
            flush_interval: self.flush_interval,
            urgent_interval: self.urgent_interval,
        };
        // Wake a sleeping writer once half a batch (or half the ring) waits.
        let wake_at = (self.batch_rows / 2).min(self.capacity / 2).max(1);
        let ring = Arc::new(Ring::new(
            self.capacity,
            self.record_size,
            self.shards,
            wake_at,
            self.overflow,
        ));
        let control = Arc::new(Control::default());

        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread = {
            let (ring, control) = (ring.clone(), control.clone());
            std::thread::Builder::new()
                .name("ringtrail-writer".into())
                .spawn(move || {
                    // Connect on this thread: it owns the sink's runtime, so
                    // `build` never nests a runtime inside the caller's.
                    let connected = match &postgres {
                        Some(config) => {
                            PostgresSink::connect(config).map(|s| Box::new(s) as Box<dyn Sink>)
                        }
                        None => Ok(Box::<NullSink>::default() as Box<dyn Sink>),
                    };
                    let sink = match connected {
                        Ok(sink) => {
                            let _ = ready_tx.send(Ok(()));
                            sink
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            control.exited();
                            return;
                        }
                    };
                    Writer::new(ring, control.clone(), sink, writer_config).run();
                    control.exited();
                })?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(Error::WriterGone);
            }
        }
        if self.flush_on_panic {
            install_panic_flush(
                Arc::downgrade(&ring),
                Arc::downgrade(&control),
                self.shutdown_timeout,
            );
        }
        let guard = Guard {
            ring: ring.clone(),
            control,
            thread: Some(thread),
            shutdown_timeout: self.shutdown_timeout,
        };
        Ok((Layer::new(ring), guard))
    }
}

/// Owns the writer thread. Keep it alive as long as events should be
/// written; dropping it flushes (up to the shutdown deadline) and stops the
/// writer.
#[must_use = "dropping the guard stops the writer"]
pub struct Guard {
    ring: Arc<Ring>,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ringtrail::Guard")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Guard {
    /// Blocks until every event enqueued before this call is committed.
    /// Returns an error if a batch holding some of them could not be
    /// committed (it was spooled, or lost when no spool is configured), or
    /// the writer is gone.
    ///
    /// Blocks the calling thread; from async code, call it through
    /// `spawn_blocking`.
    pub fn flush(&self) -> Result<()> {
        self.flush_until(None)
    }

    /// Like [`flush`](Guard::flush), but gives up after `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        self.flush_until(Some(Instant::now() + timeout))
    }

    fn flush_until(&self, deadline: Option<Instant>) -> Result<()> {
        flush(&self.ring, &self.control, deadline)
    }

    /// The pipeline's counters now.
    pub fn stats(&self) -> Stats {
        let counters = &self.control.counters;
        // Read the writer's count before the ring: a record moving from one
        // to the other is then counted once or not at all, never twice.
        let received = counters.received();
        let queued = self.ring.slots.ready_len() as u64;
        let ring_full = self.ring.dropped(DropReason::RingFull);
        let evicted = self.ring.dropped(DropReason::Evicted);
        let block_timeout = self.ring.dropped(DropReason::BlockTimeout);
        Stats {
            enqueued: received + queued,
            dropped: ring_full + evicted + block_timeout,
            dropped_ring_full: ring_full,
            dropped_evicted: evicted,
            dropped_block_timeout: block_timeout,
            written: counters.written(),
            batches: counters.batches(),
            queued,
            spooled: counters.spooled(),
            dead_lettered: counters.dead_lettered(),
            lost: counters.lost(),
            recovered: counters.recovered(),
            drop_reports: counters.drop_reports(),
        }
    }

    /// Flushes, stops the writer and returns the final counters. Returns
    /// within `timeout`: the writer stops retrying in time to spool what
    /// it could not commit (with a spool configured). If even that does not
    /// finish, the writer thread is left to finish on its own and
    /// `Error::Timeout` is returned.
    pub fn shutdown(mut self, timeout: Duration) -> Result<Stats> {
        self.stop(timeout)?;
        Ok(self.stats())
    }

    fn stop(&mut self, timeout: Duration) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        // Leave the writer a margin to spool what it could not commit.
        let margin = (timeout / 5).min(Duration::from_millis(500));
        let ticket = self.control.request_shutdown(deadline - margin);
        self.ring.doorbell.ring();
        let outcome = self.control.wait(ticket, Some(deadline));
        match outcome {
            Err(Error::Timeout(_)) => {}
            _ => {
                let _ = thread.join();
            }
        }
        outcome
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.stop(self.shutdown_timeout) {
            eprintln!("ringtrail: shutdown: {e}");
        }
    }
}

/// Takes a flush ticket, wakes the writer, and waits for the ticket.
fn flush(ring: &Ring, control: &Control, deadline: Option<Instant>) -> Result<()> {
    let ticket = control.request_flush();
    ring.doorbell.ring();
    control.wait(ticket, deadline)
}

/// Chains a panic hook that flushes this pipeline, then runs the previous
/// hook. It holds the pipeline weakly: once the guard is gone it does
/// nothing.
fn install_panic_flush(ring: Weak<Ring>, control: Weak<Control>, timeout: Duration) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The writer cannot wait for itself.
        let on_writer = std::thread::current().name() == Some("ringtrail-writer");
        if let (false, Some(ring), Some(control)) = (on_writer, ring.upgrade(), control.upgrade()) {
            if let Err(e) = flush(&ring, &control, Some(Instant::now() + timeout)) {
                eprintln!("ringtrail: flush on panic: {e}");
            }
        }
        previous(info);
    }));
}
