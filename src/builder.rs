//! [`Builder`]: how a pipeline is configured and started. It holds the
//! option structs of the stages it configures (the ring's, the writer's,
//! the PostgreSQL sink's) directly, so a knob is one setter writing one
//! field, and a group with many knobs (the JSON-lines sink, the spool,
//! the partitions, the checkpoints) is one option value ([`Jsonl`],
//! [`Spool`], [`Partitions`], [`Checkpoints`]), defined and checked beside
//! its stage. Its methods come in one `impl` block per group, in pipeline
//! order.

use std::sync::Arc;
use std::time::Duration;

use crate::error::check_duration;
use crate::guard::install_panic_flush;
use crate::redact::Redaction;
use crate::ring::{OverflowPolicy, Ring, RingConfig};
#[cfg(feature = "nats")]
use crate::sink::BusConfig;
use crate::sink::{
    Checkpoints, Destination, Jsonl, JsonlConfig, Partitions, PostgresConfig, Spool,
};
#[cfg(feature = "nats")]
use crate::transport::NatsTarget;
use crate::writer::{Control, WriterConfig};
use crate::{Error, Guard, Layer, Result};

/// Configures and starts a ringtrail pipeline.
///
/// Every setting has a default that suits a busy service; only the sink is
/// required. The settings come in groups, each a section below: sinks,
/// ring, batching, PostgreSQL delivery, spool, partitions and retention,
/// tamper evidence, redaction, lifecycle. A group with many knobs takes
/// one option value ([`Jsonl`], [`Spool`], [`Partitions`],
/// [`Checkpoints`]) whose docs list its defaults.
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
    jsonl: Option<Jsonl>,
    service_name: String,
    /// `nats(servers, stream)`, checked at `build`.
    #[cfg(feature = "nats")]
    nats: Option<(String, String)>,
    /// Database shards (scale-out).
    shards: u32,
}

/// The most database shards ([`Builder::shards`]).
const MAX_SHARDS: u32 = 1024;

/// Which sink `build` connects.
#[derive(Debug, Clone, Copy)]
enum SinkChoice {
    Postgres,
    #[cfg(feature = "nats")]
    Nats,
    Null,
    #[cfg(test)]
    Panicking,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

/// # Sinks
///
/// Where rows go: PostgreSQL, JSON lines, both, or nowhere (the null
/// sink). One of [`postgres`](Builder::postgres) and
/// [`jsonl`](Builder::jsonl) is required.
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
            service_name: String::new(),
            #[cfg(feature = "nats")]
            nats: None,
            shards: 1,
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

    /// Scale-out: publishes every sealed batch to the NATS JetStream stream
    /// `stream` instead of writing PostgreSQL, for `ringtrail sink`
    /// workers to load into the shards' databases (`docs/scaling.md`).
    /// `servers` is a comma-separated list of `nats://host:port` URLs.
    /// Needs the `nats` feature (the `ringtrail` binary has it).
    ///
    /// Each batch is one message (or, over NATS's largest payload, pieces
    /// that stay exactly once) with `Nats-Msg-Id` = its batch id: its COPY
    /// rows, its ledger metadata and its chain entry. It counts as written
    /// once the stream has acknowledged it. The stream is created when
    /// missing (file storage, 3 replicas on a cluster of 3 or more, a
    /// 10-minute duplicate window). An unreachable NATS is an outage like
    /// a PostgreSQL one: with a [`spool`](Builder::spool) the batches go
    /// there and are replayed. With [`shards`](Builder::shards), each
    /// shard has a subject, a chain and a spool directory of its own.
    ///
    /// ```no_run
    /// use ringtrail::Spool;
    ///
    /// let (layer, guard) = ringtrail::Builder::new()
    ///     .nats("nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222", "AUDIT")
    ///     .shards(4)
    ///     .spool(Spool::dir("/var/spool/app"))
    ///     .build()?;
    /// # Ok::<(), ringtrail::Error>(())
    /// ```
    #[cfg(feature = "nats")]
    pub fn nats(mut self, servers: impl Into<String>, stream: impl Into<String>) -> Builder {
        self.sink = Some(SinkChoice::Nats);
        self.nats = Some((servers.into(), stream.into()));
        self
    }

    /// How many database shards batches are spread over (default 1; at
    /// most 1,024), with [`nats`](Builder::nats). All rows of one trace go
    /// to the same shard (by `ringtrail::transport::shard_of` of
    /// their `trace_id`); rows without a trace go to one shard per batch,
    /// in turn. Each shard gets a hash chain of its own, whole on its own.
    ///
    /// (Before scale-out, `shards` set the ring's shards: that is
    /// [`ring_shards`](Builder::ring_shards) now. A `shards` above 1
    /// without `nats` fails `build()` saying so.)
    pub fn shards(mut self, shards: u32) -> Builder {
        self.shards = shards;
        self
    }

    /// Writes every row as one JSON line (see [`Jsonl`]: the file or
    /// standard output, the format, rotation and the queue).
    ///
    /// Alone, it is a complete pipeline for a service with no database:
    /// no PostgreSQL is needed at all. With [`postgres`](Builder::postgres)
    /// as well, every row goes to both, through the same ring, writer
    /// thread and redaction, and neither sink waits for the other: a
    /// stalled reader or a slow disk costs only the file its lines
    /// (counted in [`Stats::jsonl`](crate::Stats::jsonl) and reported in
    /// band), and a PostgreSQL outage does not touch the file.
    ///
    /// ```no_run
    /// use ringtrail::{Format, Jsonl};
    ///
    /// let (layer, guard) = ringtrail::Builder::new()
    ///     .postgres("postgres://postgres@127.0.0.1/app")
    ///     .jsonl(Jsonl::file("/var/log/app/audit.ndjson", Format::Ocsf).keep(4))
    ///     .service_name("checkout")
    ///     .build()?;
    /// # Ok::<(), ringtrail::Error>(())
    /// ```
    pub fn jsonl(mut self, jsonl: impl Into<Jsonl>) -> Builder {
        self.jsonl = Some(jsonl.into());
        self
    }

    /// Encodes every batch exactly as for PostgreSQL, then discards it.
    /// For measuring the pipeline without a database, and for dry runs.
    pub fn null_sink(mut self) -> Builder {
        self.sink = Some(SinkChoice::Null);
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
}

/// # Ring
///
/// The pre-allocated records events are written into on the caller's
/// thread, and what happens when they are all taken.
impl Builder {
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

    /// How many shards the ring is split into (default: the number of CPUs,
    /// at most 8). Each producer thread has a home shard, so producers on
    /// different cores rarely contend for the same queue; the capacity is
    /// shared, and the ring is full only when every shard is.
    pub fn ring_shards(mut self, shards: usize) -> Builder {
        self.ring.shards = shards;
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
}

/// # Batching
///
/// How the writer thread cuts the stream into batches, and the clock
/// window event times are clamped to.
impl Builder {
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
}

/// # PostgreSQL delivery
///
/// How batches are committed: durability, deadlines, connections, the
/// queue in front of them, retries, and migrations.
impl Builder {
    /// `true` (the default): each batch's COMMIT waits for its WAL to reach
    /// disk, so a committed row survives a crash. `false` sets
    /// `synchronous_commit = off` on the writer's connections: faster on
    /// slow disks, and a server crash may lose the last few hundred
    /// milliseconds of commits (never corrupting anything).
    pub fn synchronous_commit(mut self, on: bool) -> Builder {
        self.postgres.synchronous_commit = on;
        self
    }

    /// Client-side deadline for one batch's COPY and COMMIT
    /// (`statement_timeout` does not cover a COPY waiting on the client).
    pub fn commit_timeout(mut self, timeout: Duration) -> Builder {
        self.postgres.commit_timeout = timeout;
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

    /// Shipping connections to PostgreSQL (default 2), each on a thread of
    /// its own. A sealed batch goes to the one with the fewest bytes in
    /// flight; each batch is still one transaction with its ledger row.
    /// More lanes let the server load several batches at once; order
    /// across lanes is not kept (timestamps are).
    pub fn lanes(mut self, lanes: usize) -> Builder {
        self.postgres.lanes = lanes;
        self
    }

    /// The most bytes of sealed batches waiting for the database (default
    /// 64 MiB). A slow commit, or a stall until it is detected, fills this
    /// queue instead of stopping the writer from draining the ring. When it
    /// is full (the database is slower than the inflow for longer than the
    /// queue absorbs), a batch goes to the spool if one is configured, and
    /// is replayed, exactly once, when the database catches up: the disk
    /// buffer takes the overload instead of the ring dropping events. The
    /// spill is written by the disk lane (`ringtrail-disk`), which holds at
    /// most as many bytes again, so the writer never waits on the disk.
    /// Without a spool (or with both queues full), the writer waits, and
    /// the ring's overflow policy applies.
    pub fn batch_queue_bytes(mut self, bytes: usize) -> Builder {
        self.postgres.batch_queue_bytes = bytes;
        self
    }

    /// How many times a batch is retried after a connection-class error
    /// (with exponential backoff and jitter) before it is spooled, or lost
    /// when no spool is configured.
    pub fn max_retries(mut self, retries: u32) -> Builder {
        self.postgres.max_retries = retries;
        self
    }

    /// Whether `build()` applies the schema migrations (default `true`).
    pub fn migrate(mut self, apply: bool) -> Builder {
        self.postgres.migrate = apply;
        self
    }
}

/// # Spool
///
/// The disk buffer for batches PostgreSQL cannot take.
impl Builder {
    /// Spools batches that cannot reach PostgreSQL to disk, and replays
    /// them, exactly once, when it answers again (see [`Spool`]: the
    /// directory, its cap, and how soon batches go there). With a spool,
    /// `build()` succeeds even while PostgreSQL is down.
    ///
    /// ```no_run
    /// let (layer, guard) = ringtrail::Builder::new()
    ///     .postgres("postgres://app@db/app")
    ///     .spool(ringtrail::Spool::dir("/var/spool/app"))
    ///     .build()?;
    /// # Ok::<(), ringtrail::Error>(())
    /// ```
    pub fn spool(mut self, spool: Spool) -> Builder {
        self.postgres.spool = Some(spool);
        self
    }
}

/// # Partitions and retention
///
/// The partitions of `ringtrail.logs`, created ahead and dropped past the
/// retention by the writer.
impl Builder {
    /// The partitions of `ringtrail.logs`: their width, how many days
    /// ahead exist, and the retention (see [`Partitions`]; default daily,
    /// 3 days ahead, nothing dropped).
    pub fn partitions(mut self, partitions: Partitions) -> Builder {
        self.postgres.partitions = partitions;
        self
    }
}

/// # Tamper evidence
///
/// The hash chain over committed batches and its signed checkpoints.
impl Builder {
    /// The hash chain over committed batches (default on): each batch's
    /// rows get a digest, each ledger row links to the one before, and the
    /// head is signed now and then, so `ringtrail verify` can tell when
    /// rows, batches or the ledger were changed after commit. Off, batches
    /// carry no chain columns.
    pub fn chain(mut self, on: bool) -> Builder {
        self.postgres.chain.enabled = on;
        self
    }

    /// How the chain's head is signed, with which key, and the file
    /// outside the database that gets a copy of each checkpoint, the one
    /// `ringtrail verify --checkpoints` checks it against (see
    /// [`Checkpoints`]; default every 64 batches or 60 s, in the database
    /// only).
    pub fn checkpoints(mut self, checkpoints: Checkpoints) -> Builder {
        self.postgres.chain.checkpoints = checkpoints;
        self
    }
}

/// # Redaction
///
/// Secrets out of every row before any sink sees it.
impl Builder {
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
}

/// # Lifecycle
///
/// Shutdown, panics, and starting the pipeline.
impl Builder {
    /// How long dropping the [`Guard`] waits for the last batch.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.shutdown_timeout = timeout;
        self
    }

    /// Installs a panic hook that flushes (for up to the shutdown timeout)
    /// before the previous hook runs, so the events leading up to a panic
    /// are committed, or spooled, before the process dies.
    pub fn flush_on_panic(mut self, on: bool) -> Builder {
        self.flush_on_panic = on;
        self
    }

    /// Runs each stage's checks (the ring's, the writer's, the sinks'),
    /// which sit beside the limits they enforce.
    fn validate(&self) -> Result<()> {
        if self.sink.is_none() && self.jsonl.is_none() {
            return Err(Error::Config(
                "no sink configured: call .postgres(url) or .jsonl(..)".to_owned(),
            ));
        }
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return Err(Error::Config(format!(
                "shards must be between 1 and {MAX_SHARDS}"
            )));
        }
        #[cfg(feature = "nats")]
        let to_nats = matches!(self.sink, Some(SinkChoice::Nats));
        #[cfg(not(feature = "nats"))]
        let to_nats = false;
        if self.shards > 1 && !to_nats {
            return Err(Error::Config(
                "shards(n) above 1 spreads batches over database shards through NATS: it needs \
                 .nats(servers, stream), of the `nats` feature (the ring's shards are \
                 .ring_shards(n))"
                    .to_owned(),
            ));
        }
        self.ring.validate()?;
        self.writer.validate()?;
        self.postgres.validate()?;
        if let Some(jsonl) = &self.jsonl {
            jsonl.validate()?;
        }
        check_duration("shutdown_timeout", self.shutdown_timeout)
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
        let jsonl = self.jsonl.map(|options| JsonlConfig {
            options,
            service_name: self.service_name,
            stall_timeout: self.postgres.stall_timeout,
        });
        let first = match self.sink {
            Some(SinkChoice::Postgres) => Some(Destination::Postgres(self.postgres)),
            #[cfg(feature = "nats")]
            Some(SinkChoice::Nats) => {
                let (servers, stream) = self.nats.as_ref().expect("set with the choice");
                Some(Destination::Bus(Box::new(BusConfig {
                    lanes: self.postgres,
                    target: NatsTarget::new(servers, stream)?,
                    shards: self.shards,
                })))
            }
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
    use crate::Format;

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
            Builder::new().partitions(Partitions::every(Duration::from_secs(60))),
            "partition width",
        );
        refused(
            Builder::new().partitions(Partitions::daily().ahead(1_000)),
            "partitions ahead",
        );
        refused(
            Builder::new().partitions(Partitions::daily().retention(Duration::ZERO)),
            "retention",
        );
        refused(
            Builder::new().clamp_window(Duration::MAX, day),
            "clamp window",
        );
        let (_layer, guard) = Builder::new()
            .null_sink()
            .partitions(Partitions::hourly().ahead(7).retention(30 * day))
            .clamp_window(day, day)
            .build()
            .unwrap();
        drop(guard);
    }

    #[test]
    fn each_stage_names_its_limits() {
        let refused = |b: Builder| b.null_sink().build().unwrap_err().to_string();
        let err = refused(Builder::new().record_size(64));
        assert!(err.contains("between 128 and 65536 bytes"), "{err}");
        let err = refused(Builder::new().capacity(0));
        assert!(err.contains("between 1 and 4294967295 records"), "{err}");
        let err = refused(Builder::new().lanes(65));
        assert!(err.contains("between 1 and 64"), "{err}");
        let err = refused(Builder::new().batch_rows(0));
        assert!(err.contains("batch_rows"), "{err}");
        let err = refused(Builder::new().stall_timeout(Duration::ZERO));
        assert!(err.contains("stall_timeout"), "{err}");
        let err = refused(Builder::new().spool(Spool::dir("unused").after(Duration::MAX)));
        assert!(err.contains("spool"), "{err}");
        let err = refused(Builder::new().checkpoints(Checkpoints::new().every(1, Duration::MAX)));
        assert!(err.contains("checkpoint interval"), "{err}");
        let err = refused(Builder::new().jsonl(("", Format::Ecs)));
        assert!(err.contains("JSON-lines path is empty"), "{err}");
        let err = refused(Builder::new().shutdown_timeout(Duration::MAX));
        assert!(err.contains("shutdown_timeout"), "{err}");
    }

    #[test]
    fn the_jsonl_value_carries_its_knobs() {
        let b = Builder::new().jsonl(Jsonl::stdout(Format::Native).keep(3));
        assert_eq!(
            b.jsonl.as_ref().map(|j| (j.keep, j.format, j.path.clone())),
            Some((3, Format::Native, "-".into()))
        );
        let b = Builder::new().jsonl(("app.ndjson", Format::Ecs));
        assert_eq!(
            b.jsonl.as_ref().map(|j| (j.keep, j.path.clone())),
            Some((8, "app.ndjson".into()))
        );
        let err = Builder::new().build().unwrap_err();
        assert!(err.to_string().contains("no sink configured"), "{err}");
    }

    #[test]
    fn debug_does_not_print_the_database_password() {
        let b = Builder::new().postgres("postgres://app:hunter2@db/app");
        let debug = format!("{b:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("postgres://app:***@db/app"), "{debug}");
        let b = Builder::new().postgres("host=db user=app password=hunter2");
        let debug = format!("{b:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
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
