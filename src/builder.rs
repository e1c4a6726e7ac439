//! [`Builder`] and [`Guard`]: how a pipeline is configured, started,
//! flushed and stopped.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::record::MAX_RECORD_SIZE;
use crate::ring::{Ring, MIN_RECORD_SIZE};
use crate::sink::{NullSink, PostgresConfig, PostgresSink, Sink};
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
    flush_interval: Duration,
    urgent_interval: Duration,
    batch_rows: usize,
    batch_bytes: usize,
    synchronous_commit: bool,
    migrate: bool,
    shutdown_timeout: Duration,
    commit_timeout: Duration,
    commit_attempts: u32,
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
    /// durable commits, migrations applied at build, and a 5 s shutdown
    /// deadline.
    pub fn new() -> Builder {
        Builder {
            destination: None,
            capacity: 16_384,
            record_size: 512,
            flush_interval: Duration::from_millis(100),
            urgent_interval: Duration::from_millis(10),
            batch_rows: 8_192,
            batch_bytes: 8 << 20,
            synchronous_commit: true,
            migrate: true,
            shutdown_timeout: Duration::from_secs(5),
            commit_timeout: Duration::from_secs(30),
            commit_attempts: 3,
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
            }),
            _ => None,
        };
        let writer_config = WriterConfig {
            batch_rows: self.batch_rows,
            batch_bytes: self.batch_bytes,
            flush_interval: self.flush_interval,
            urgent_interval: self.urgent_interval,
            commit_attempts: self.commit_attempts,
            retry_backoff: Duration::from_millis(100),
        };
        // Wake a sleeping writer once half a batch (or half the ring) waits.
        let wake_at = (self.batch_rows / 2).min(self.capacity / 2).max(1);
        let ring = Arc::new(Ring::new(self.capacity, self.record_size, wake_at));
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
    /// written, or the writer is gone.
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
        let ticket = self.control.request_flush();
        self.ring.doorbell.ring();
        self.control.wait(ticket, deadline)
    }

    /// The pipeline's counters now.
    pub fn stats(&self) -> Stats {
        let counters = &self.control.counters;
        // Read the writer's count before the ring: a record moving from one
        // to the other is then counted once or not at all, never twice.
        let received = counters.received();
        let queued = self.ring.slots.ready_len() as u64;
        Stats {
            enqueued: received + queued,
            dropped: self.ring.dropped_full(),
            written: counters.written(),
            batches: counters.batches(),
            failed: counters.failed(),
            queued,
        }
    }

    /// Flushes, stops the writer and returns the final counters. Waits at
    /// most `timeout`; on timeout the writer thread is left to finish on
    /// its own and `Error::Timeout` is returned.
    pub fn shutdown(mut self, timeout: Duration) -> Result<Stats> {
        self.stop(timeout)?;
        Ok(self.stats())
    }

    fn stop(&mut self, timeout: Duration) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let ticket = self.control.request_shutdown();
        self.ring.doorbell.ring();
        let outcome = self.control.wait(ticket, Some(Instant::now() + timeout));
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
