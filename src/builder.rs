//! [`Builder`]: how a pipeline is configured and started. It holds the
//! option structs of the stages it configures (the ring's, the writer's,
//! the PostgreSQL sink's) directly, so a knob is one setter writing one
//! field.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::record::MAX_RECORD_SIZE;
use crate::guard::install_panic_flush;
use crate::redact::Redaction;
use crate::render::Format;
use crate::ring::{OverflowPolicy, Ring, RingConfig, MIN_RECORD_SIZE};
use crate::sink::{Destination, JsonlConfig, PostgresConfig};
use crate::writer::{Control, WriterConfig};
use crate::{Error, Guard, Layer, Result};

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
    sink: Option<SinkChoice>,
    ring: RingConfig,
    writer: WriterConfig,
    postgres: PostgresConfig,
    shutdown_timeout: Duration,
    flush_on_panic: bool,
    redaction: Redaction,
    /// The JSON-lines sink, alone or beside `sink`.
    jsonl: Option<JsonlConfig>,
    /// Whether [`jsonl`](Builder::jsonl) was called: its knobs alone
    /// (`jsonl_keep`…) turn nothing on.
    jsonl_chosen: bool,
    service_name: String,
}

/// The longest any duration setting may be: long enough for any real use,
/// short enough that adding it to `Instant::now()` cannot overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Which sink `build` connects.
#[derive(Debug, Clone, Copy)]
enum SinkChoice {
    Postgres,
    Null,
    #[cfg(test)]
    Panicking,
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
    /// ERROR, up to 8 retries, no spool, daily partitions 3 days ahead, no
    /// retention, and event times clamped to 7 days back and 1 day ahead.
    pub fn new() -> Builder {
        Builder {
            sink: None,
            ring: RingConfig::default(),
            writer: WriterConfig::default(),
            postgres: PostgresConfig::default(),
            shutdown_timeout: Duration::from_secs(5),
            flush_on_panic: false,
            redaction: Redaction::new(),
            jsonl: None,
            jsonl_chosen: false,
            service_name: String::new(),
        }
    }

    /// Sends events to PostgreSQL at `url` (a `postgres://` URL or a
    /// libpq-style `key=value` string), into `ringtrail.logs`, through
    /// binary COPY.
    pub fn postgres(mut self, url: impl Into<String>) -> Builder {
        self.sink = Some(SinkChoice::Postgres);
        self.postgres.url = url.into();
        self
    }

    /// Writes every row as one JSON line in `format` to the file at `path`,
    /// or to standard output when `path` is `"-"`.
    ///
    /// Alone, it is a complete pipeline for a service with no database:
    /// no PostgreSQL is needed at all. With [`postgres`](Builder::postgres)
    /// as well, every row goes to both, through the same ring, writer
    /// thread and redaction, and neither sink waits for the other: a
    /// stalled reader or a slow disk costs only the file its lines
    /// (counted in [`Stats::jsonl`](crate::Stats::jsonl) and reported in
    /// band), and a PostgreSQL outage does not touch the file.
    ///
    /// The file is rotated by size ([`jsonl_rotate_bytes`](Builder::jsonl_rotate_bytes),
    /// default 128 MiB; [`jsonl_keep`](Builder::jsonl_keep) old files,
    /// default 8), with the `app.ndjson.1`, `.2`… names shippers know.
    /// A FIFO or a device is written as a stream, never rotated. Lines
    /// are written whole, and a torn last line (a machine crash) is cut
    /// when the file is opened again; docs/siem.md's "The JSON-lines sink"
    /// says what a crash can lose.
    ///
    /// ```no_run
    /// let (layer, guard) = ringtrail::Builder::new()
    ///     .postgres("postgres://postgres@127.0.0.1/app")
    ///     .jsonl("/var/log/app/audit.ndjson", ringtrail::Format::Ocsf)
    ///     .service_name("checkout")
    ///     .build()?;
    /// # Ok::<(), ringtrail::Error>(())
    /// ```
    pub fn jsonl(mut self, path: impl Into<PathBuf>, format: Format) -> Builder {
        let path = path.into();
        self.jsonl_chosen = true;
        self.jsonl = Some(match self.jsonl.take() {
            Some(config) => JsonlConfig {
                path,
                format,
                ..config
            },
            None => JsonlConfig::new(path, format),
        });
        self
    }

    /// Rotates the JSON-lines file before it would pass `bytes` (default
    /// 128 MiB; 0 never rotates). No file holds more, unless one line
    /// alone is longer.
    pub fn jsonl_rotate_bytes(mut self, bytes: u64) -> Builder {
        self.jsonl_config().rotate_bytes = bytes;
        self
    }

    /// How many rotated JSON-lines files are kept (default 8):
    /// `app.ndjson.1` (the newest) to `app.ndjson.N`. 0 deletes a full
    /// file at rotation.
    pub fn jsonl_keep(mut self, files: usize) -> Builder {
        self.jsonl_config().keep = files;
        self
    }

    /// The most bytes of rendered batches waiting for the JSON-lines
    /// output (default 16 MiB). A batch that finds it full is missed by
    /// that sink only.
    pub fn jsonl_queue_bytes(mut self, bytes: usize) -> Builder {
        self.jsonl_config().queue_bytes = bytes;
        self
    }

    /// The service the events come from, for the JSON-lines sink's
    /// renderers (ECS `service.name`, the OTLP resource's `service.name`,
    /// OCSF's service and endpoint names) and, with the `metrics` feature,
    /// the `pipeline` label of every `ringtrail_*` series.
    pub fn service_name(mut self, name: impl Into<String>) -> Builder {
        self.service_name = name.into();
        self
    }

    /// The JSON-lines settings, made with defaults when a knob comes before
    /// [`jsonl`](Builder::jsonl), which keeps them. A knob alone turns no
    /// sink on.
    fn jsonl_config(&mut self) -> &mut JsonlConfig {
        self.jsonl
            .get_or_insert_with(|| JsonlConfig::new(crate::sink::jsonl::STDOUT.into(), Format::Ecs))
    }

    /// The hash chain over committed batches (default on): each batch's
    /// rows get a digest, each ledger row links to the one before, and the
    /// head is signed now and then, so `ringtrail verify` can tell when
    /// rows, batches or the ledger were changed after commit. Off, batches
    /// carry no chain columns.
    pub fn chain(mut self, on: bool) -> Builder {
        self.postgres.chain.enabled = on;
        self
    }

    /// Appends every signed checkpoint (and fsyncs) to the file at `path`,
    /// the copy kept outside the database that `ringtrail verify
    /// --checkpoints` checks it against. The signing key is kept beside
    /// it (`<path>.key`, owner-only, made at first start with its public
    /// key printed on stderr and written to `<path>.key.pub`) unless
    /// [`checkpoint_key`](Builder::checkpoint_key) names another.
    pub fn checkpoints(mut self, path: impl Into<PathBuf>) -> Builder {
        self.postgres.chain.checkpoints = Some(path.into());
        self
    }

    /// The file of the checkpoint signing key (made at first start when
    /// missing). Without it and without [`checkpoints`](Builder::checkpoints),
    /// the key comes from `RINGTRAIL_CHECKPOINT_KEY`, else one is made for
    /// this process (its public key is stored with each checkpoint).
    pub fn checkpoint_key(mut self, path: impl Into<PathBuf>) -> Builder {
        self.postgres.chain.key_file = Some(path.into());
        self
    }

    /// Signs a checkpoint after every `batches` batches or `interval`,
    /// whichever comes first (default 64 batches or 60 s), and at shutdown.
    pub fn checkpoint_every(mut self, batches: u64, interval: Duration) -> Builder {
        self.postgres.chain.every_batches = batches.max(1);
        self.postgres.chain.every = interval;
        self
    }

    /// Encodes every batch exactly as for PostgreSQL, then discards it.
    /// For measuring the pipeline without a database, and for dry runs.
    pub fn null_sink(mut self) -> Builder {
        self.sink = Some(SinkChoice::Null);
        self
    }

    /// Records the ring holds. When it is full, new events are dropped and
    /// counted. Memory is `capacity × record_size` bytes, allocated at build.
    pub fn capacity(mut self, records: usize) -> Builder {
        self.ring.capacity = records;
        self
    }

    /// Bytes per record (128 to 65,536; rounded up to a multiple of 64).
    /// It bounds message + fields + span context of one event that stays in
    /// a standard slot (see [`large_records`](Self::large_records)). A long
    /// text takes only its share, so the fields after it always fit; a text
    /// that does not fit is cut on a UTF-8 boundary, the row's `truncated`
    /// column says so, and `fields` holds its original byte length as
    /// `<name>.truncated_from` (e.g. `message.truncated_from`).
    pub fn record_size(mut self, bytes: usize) -> Builder {
        self.ring.record_size = bytes;
        self
    }

    /// Slots of the large size class, 16 KiB each, carved out of the ring's
    /// `capacity × record_size` bytes (default: a sixteenth of them, at
    /// most 64 slots; at most half of them). An event that does not fit a
    /// standard record moves to one of these, on the caller's thread and
    /// without waiting, and is stored whole up to 16 KiB; if none is free,
    /// it is cut as usual. Such an event may be written out of order with
    /// its thread's others (its timestamp stays right). `0` turns the
    /// class off.
    pub fn large_records(mut self, slots: usize) -> Builder {
        self.ring.large_slots = Some(slots);
        self
    }

    /// Slots reserved for audit points (events with target
    /// [`audit::TARGET`](crate::audit::TARGET), `ringtrail::audit`), carved
    /// out of the standard slots (default: an eighth of them, at least 64,
    /// at most a quarter; at most half when set). An audit point takes a
    /// standard slot like any event while there is one, and a reserved
    /// slot when there is not, so a flood of plain logs that fills the
    /// ring never costs an audit point. `0` turns the reserve off.
    pub fn audit_reserve(mut self, slots: usize) -> Builder {
        self.ring.audit_slots = Some(slots);
        self
    }

    /// How long an audit point waits for room when the standard slots and
    /// the audit reserve are all taken (default 50 ms, ten times WARN's and
    /// ERROR's wait). Past it the point is dropped and counted in
    /// [`Stats::audit_dropped`](crate::Stats::audit_dropped).
    pub fn audit_timeout(mut self, timeout: Duration) -> Builder {
        self.ring.audit_timeout = timeout;
        self
    }

    /// How many shards the ring is split into (default: the number of CPUs,
    /// at most 8). Each producer thread has a home shard, so producers on
    /// different cores rarely contend for the same queue; the capacity is
    /// shared, and the ring is full only when every shard is.
    pub fn shards(mut self, shards: usize) -> Builder {
        self.ring.shards = shards;
        self
    }

    /// The longest a row waits before its batch is committed.
    pub fn flush_interval(mut self, interval: Duration) -> Builder {
        self.writer.flush_interval = interval;
        self
    }

    /// After an ERROR event, its batch is committed once this much time has
    /// passed since the previous commit. Small enough that errors land
    /// quickly; large enough that an error storm is batched.
    pub fn urgent_interval(mut self, interval: Duration) -> Builder {
        self.writer.urgent_interval = interval;
        self
    }

    /// The most rows in one batch (one COPY, one transaction).
    pub fn batch_rows(mut self, rows: usize) -> Builder {
        self.writer.batch_rows = rows;
        self
    }

    /// The most encoded bytes in one batch.
    pub fn batch_bytes(mut self, bytes: usize) -> Builder {
        self.writer.batch_bytes = bytes;
        self
    }

    /// `true` (the default): each batch's COMMIT waits for its WAL to reach
    /// disk, so a committed row survives a crash. `false` sets
    /// `synchronous_commit = off` on the writer's connections: faster on
    /// slow disks, and a server crash may lose the last few hundred
    /// milliseconds of commits (never corrupting anything).
    pub fn synchronous_commit(mut self, on: bool) -> Builder {
        self.postgres.synchronous_commit = on;
        self
    }

    /// Whether `build()` applies the schema migrations (default `true`).
    pub fn migrate(mut self, apply: bool) -> Builder {
        self.postgres.migrate = apply;
        self
    }

    /// The width of a partition of `ringtrail.logs` (default one day; from
    /// one hour to 366 days, a whole number of seconds). Partitions are
    /// aligned on multiples of the width since the Unix epoch, so a daily
    /// one runs from 00:00 UTC to 00:00 UTC. See
    /// [`read::partitions`](crate::schema::partitions).
    pub fn partition_width(mut self, width: Duration) -> Builder {
        self.postgres.partitions.width = width;
        self
    }

    /// How many days ahead of today partitions exist (default 3, at most
    /// 366). The shipper's first lane creates them, on a connection of its
    /// own, once after connecting and then hourly (every 5 minutes after a
    /// failure, which is one line on stderr and never fails ingest: rows
    /// without a partition land in the DEFAULT partition). It runs only
    /// when migrations are applied ([`migrate`](Builder::migrate)); with
    /// `.migrate(false)`, run `ringtrail migrate` (daily is enough with the
    /// default 3 days ahead).
    pub fn partitions_ahead(mut self, days: u32) -> Builder {
        self.postgres.partitions.ahead = days;
        self
    }

    /// Drops whole partitions of `ringtrail.logs` whose upper bound is
    /// older than `keep` (never a `DELETE`), recording each in
    /// `ringtrail.retention_log` with `dropped_by` = `ringtrail writer`.
    /// Runs with the partition upkeep (see
    /// [`partitions_ahead`](Builder::partitions_ahead)). Default: off,
    /// nothing is ever dropped. See [`read::retention`](crate::schema::retention).
    pub fn retention(mut self, keep: Duration) -> Builder {
        self.postgres.partitions.retention = Some(keep);
        self
    }

    /// The window around the writer's clock outside which an event's
    /// timestamp is clamped: more than `past` before it, or more than
    /// `future` after it (defaults 7 days and 1 day). A clamped row keeps
    /// its original time in the field `ts.original` (RFC 3339, UTC,
    /// microseconds). Event times come from the process's own clock, so
    /// only a clock stepped far (a VM resumed, NTP fixing a wild clock)
    /// trips this; it keeps such rows near now, where partitions exist.
    pub fn clamp_window(mut self, past: Duration, future: Duration) -> Builder {
        self.writer.clamp_past = past;
        self.writer.clamp_future = future;
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
        self.postgres.commit_timeout = timeout;
        self
    }

    /// The overflow policy for every level (see [`OverflowPolicy`]).
    pub fn overflow(mut self, policy: OverflowPolicy) -> Builder {
        self.ring.overflow = [policy; 5];
        self
    }

    /// The overflow policy for events at `level` and more severe ones,
    /// e.g. `overflow_at_or_above(Level::WARN, Block { .. })`.
    pub fn overflow_at_or_above(
        mut self,
        level: tracing::Level,
        policy: OverflowPolicy,
    ) -> Builder {
        for slot in &mut self.ring.overflow[crate::level::index(&level)..] {
            *slot = policy;
        }
        self
    }

    /// The overflow policy for events at exactly `level`.
    pub fn overflow_for(mut self, level: tracing::Level, policy: OverflowPolicy) -> Builder {
        self.ring.overflow[crate::level::index(&level)] = policy;
        self
    }

    /// How long one round trip to PostgreSQL may go unanswered before the
    /// server counts as down (default 3 s, well under `commit_timeout`).
    /// It catches servers that hang instead of refusing: a frozen VM, a
    /// stuck volume, a path that drops packets. Then the batch in flight
    /// goes to the spool (its outcome unknown, resolved through the ledger
    /// on replay), new batches go straight to the spool, and a cheap probe
    /// on a connection of its own asks every 500 ms whether the server is
    /// back.
    pub fn stall_timeout(mut self, timeout: Duration) -> Builder {
        self.postgres.stall_timeout = timeout;
        self
    }

    /// The most bytes of sealed batches waiting for the database (default
    /// 64 MiB). A slow commit, or a stall until it is detected, fills this
    /// queue instead of stopping the writer from draining the ring. When it
    /// is full (the database is slower than the inflow for longer than the
    /// queue absorbs), a batch goes to the spool if one is configured, and
    /// is replayed, exactly once, when the database catches up: the disk
    /// buffer takes the overload instead of the ring dropping events.
    /// Without a spool, the writer waits, and the ring's overflow policy
    /// applies.
    pub fn batch_queue_bytes(mut self, bytes: usize) -> Builder {
        self.postgres.batch_queue_bytes = bytes;
        self
    }

    /// Shipping connections to PostgreSQL (default 2), each on a thread of
    /// its own. A sealed batch goes to the one with the fewest bytes in
    /// flight; each batch is still one transaction with its ledger row.
    /// More lanes let the server load several batches at once; order
    /// across lanes is not kept (timestamps are).
    pub fn lanes(mut self, lanes: usize) -> Builder {
        self.postgres.lanes = lanes;
        self
    }

    /// How many times a batch is retried after a connection-class error
    /// (with exponential backoff and jitter) before it is spooled, or lost
    /// when no spool is configured.
    pub fn max_retries(mut self, retries: u32) -> Builder {
        self.postgres.max_retries = retries;
        self
    }

    /// Spools batches that cannot reach PostgreSQL to segment files in
    /// `dir` (each a valid binary COPY file), and replays them, exactly
    /// once, when it answers again. Segments left by a previous process are
    /// replayed at start. With a spool, `build()` succeeds even while
    /// PostgreSQL is down.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.postgres.spool.dir = Some(dir.into());
        self
    }

    /// The most disk the spool may use (default 1 GiB). Batches beyond it
    /// are lost and counted in [`Stats::lost`](crate::Stats::lost).
    pub fn spool_max_bytes(mut self, bytes: u64) -> Builder {
        self.postgres.spool.max_bytes = bytes;
        self
    }

    /// How long PostgreSQL may keep failing before batches go to the spool
    /// without waiting for the retries to run out (default 5 s).
    pub fn spool_after(mut self, after: Duration) -> Builder {
        self.postgres.spool.after = after;
        self
    }

    /// How secrets are redacted before anything is stored (default:
    /// [`Redaction::new`], on, masking). Redaction runs on the writer
    /// thread, never on the caller's, on every row: the message, every
    /// string field and the context ids; see [`redact`](crate::redact).
    /// [`Redaction::off`] turns it off, and `build()` then says so on
    /// stderr. A user pattern that does not compile fails `build()`.
    ///
    /// ```no_run
    /// use ringtrail::redact::Redaction;
    ///
    /// let (layer, guard) = ringtrail::Builder::new()
    ///     .postgres("postgres://app@db/app")
    ///     .redaction(
    ///         Redaction::new()
    ///             .add_key("ssn")
    ///             .add_pattern("employee_badge", r"\bEMP-[0-9]{6}\b")
    ///             .hmac_from_env("RINGTRAIL_HMAC_KEY"),
    ///     )
    ///     .build()?;
    /// # Ok::<(), ringtrail::Error>(())
    /// ```
    pub fn redaction(mut self, redaction: Redaction) -> Builder {
        self.redaction = redaction;
        self
    }

    /// Stores body fields (`gen_ai.prompt`, `gen_ai.completion`,
    /// `gen_ai.input.messages`, `gen_ai.output.messages`,
    /// `tool.arguments`, `tool.result`) as text, still redacted, instead of
    /// as `sha256:<hex>` and their length in `<name>.bytes` (the default).
    /// The same as [`Redaction::keep_bodies`] on the current redaction.
    pub fn keep_bodies(mut self, keep: bool) -> Builder {
        self.redaction = self.redaction.keep_bodies(keep);
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
        let (ring, writer) = (&self.ring, &self.writer);
        if self.sink.is_none() && !self.jsonl_chosen {
            return bad("no sink configured: call .postgres(url) or .jsonl(path, format)");
        }
        if self
            .jsonl
            .as_ref()
            .is_some_and(|j| j.path.as_os_str().is_empty())
        {
            return bad("the JSON-lines path is empty (use \"-\" for standard output)");
        }
        if ring.capacity == 0 || ring.capacity > u32::MAX as usize {
            return bad("capacity must be between 1 and 2^32 - 1 records");
        }
        if !(MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&ring.record_size) {
            return bad("record_size must be between 128 and 65536 bytes");
        }
        if ring.shards == 0 {
            return bad("shards must be at least 1");
        }
        if !(1..=64).contains(&self.postgres.lanes) {
            return bad("lanes must be between 1 and 64");
        }
        if writer.batch_rows == 0 || writer.batch_bytes == 0 {
            return bad("batch_rows and batch_bytes must be positive");
        }
        if writer.flush_interval.is_zero() {
            return bad("flush_interval must be positive");
        }
        let pg = &self.postgres;
        let mut durations = vec![
            ("flush_interval", writer.flush_interval),
            ("urgent_interval", writer.urgent_interval),
            ("shutdown_timeout", self.shutdown_timeout),
            ("commit_timeout", pg.commit_timeout),
            ("stall_timeout", pg.stall_timeout),
            ("spool_after", pg.spool.after),
            ("audit_timeout", ring.audit_timeout),
            ("the clamp window's past", writer.clamp_past),
            ("the clamp window's future", writer.clamp_future),
        ];
        if let Some(keep) = pg.partitions.retention {
            if keep.is_zero() || keep > Duration::from_secs(100 * 366 * 86_400) {
                return bad("retention must be positive and at most 100 years");
            }
        }
        crate::schema::partitions::check(pg.partitions.width, pg.partitions.ahead)?;
        for policy in ring.overflow {
            if let OverflowPolicy::Block { timeout } = policy {
                durations.push(("the Block overflow timeout", timeout));
            }
        }
        for (name, duration) in durations {
            if duration > MAX_DURATION {
                return Err(Error::Config(format!(
                    "{name} must be at most a year (got {duration:?})"
                )));
            }
        }
        if pg.stall_timeout.is_zero() || pg.commit_timeout.is_zero() {
            return bad("stall_timeout and commit_timeout must be positive");
        }
        Ok(())
    }

    /// Allocates the ring, starts the `ringtrail-writer` thread, connects,
    /// and applies migrations (unless turned off). Fails if the sink cannot
    /// be reached, so a wrong URL is caught at start-up.
    ///
    /// Needs no tokio runtime, and works inside one too: the writer thread
    /// owns a private current-thread runtime.
    pub fn build(mut self) -> Result<(Layer, Guard)> {
        self.validate()?;
        // Fail closed: a redaction that does not compile stops the build.
        let redactor = self.redaction.compile().map_err(Error::Redaction)?;
        self.writer.redactor = if redactor.is_off() {
            eprintln!(
                "ringtrail: redaction is off (Redaction::off()): secrets in events are stored as they are"
            );
            None
        } else {
            Some(redactor)
        };
        self.writer.pipeline = self.service_name.clone();
        let jsonl = self
            .jsonl
            .filter(|_| self.jsonl_chosen)
            .map(|config| JsonlConfig {
                service_name: self.service_name,
                stall_timeout: self.postgres.stall_timeout,
                ..config
            });
        let first = match self.sink {
            Some(SinkChoice::Postgres) => Some(Destination::Postgres(self.postgres)),
            #[cfg(test)]
            Some(SinkChoice::Panicking) => Some(Destination::Panicking),
            Some(SinkChoice::Null) => Some(Destination::Null),
            None => None,
        };
        let destination = match (first, jsonl) {
            (Some(first), Some(jsonl)) => Destination::Fanout(Box::new(first), jsonl),
            (Some(first), None) => first,
            (None, Some(jsonl)) => Destination::Jsonl(jsonl),
            (None, None) => Destination::Null,
        };
        // Wake a sleeping writer once half a batch (or half the ring) waits.
        let wake_at = (self.writer.batch_rows / 2)
            .min(self.ring.capacity / 2)
            .max(1);
        let ring = Arc::new(Ring::new(&self.ring, wake_at));
        let control = Arc::new(Control::default());
        let thread = crate::writer::spawn(ring.clone(), control.clone(), destination, self.writer)?;
        if self.flush_on_panic {
            install_panic_flush(
                Arc::downgrade(&ring),
                Arc::downgrade(&control),
                self.shutdown_timeout,
            );
        }
        let guard = Guard::new(ring.clone(), control, thread, self.shutdown_timeout);
        Ok((Layer::new(ring), guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Builder {
        fn panicking_sink(mut self) -> Builder {
            self.sink = Some(SinkChoice::Panicking);
            self
        }
    }

    #[test]
    fn a_writer_that_panics_fails_flushes_instead_of_hanging_them() {
        let (_layer, guard) = Builder::new().panicking_sink().build().unwrap();
        assert!(matches!(guard.flush(), Err(Error::WriterGone)));
        assert!(matches!(guard.flush(), Err(Error::WriterGone)));
    }

    #[test]
    fn partition_settings_are_checked_at_build() {
        let day = Duration::from_secs(86_400);
        let refused = |b: Builder, needle: &str| {
            let err = b.null_sink().build().unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        };
        refused(
            Builder::new().partition_width(Duration::from_secs(60)),
            "partition width",
        );
        refused(Builder::new().partitions_ahead(1_000), "partitions ahead");
        refused(Builder::new().retention(Duration::ZERO), "retention");
        refused(
            Builder::new().clamp_window(Duration::MAX, day),
            "clamp window",
        );
        let (_layer, guard) = Builder::new()
            .null_sink()
            .partition_width(Duration::from_secs(3_600))
            .partitions_ahead(7)
            .retention(30 * day)
            .clamp_window(day, day)
            .build()
            .unwrap();
        drop(guard);
    }

    #[test]
    fn a_jsonl_knob_alone_turns_no_sink_on() {
        let err = Builder::new().jsonl_keep(3).build().unwrap_err();
        assert!(err.to_string().contains("no sink configured"), "{err}");
        // Before or after `jsonl`, the knob is kept.
        let b = Builder::new().jsonl_keep(3).jsonl("-", Format::Native);
        assert!(b.jsonl_chosen);
        assert_eq!(
            b.jsonl.as_ref().map(|j| (j.keep, j.format)),
            Some((3, Format::Native))
        );
    }

    #[test]
    fn durations_that_would_overflow_an_instant_are_refused() {
        let err = Builder::new()
            .null_sink()
            .flush_interval(Duration::MAX)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("flush_interval"), "{err}");
        let err = Builder::new()
            .null_sink()
            .overflow(OverflowPolicy::Block {
                timeout: Duration::MAX,
            })
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("Block"), "{err}");
    }
}
