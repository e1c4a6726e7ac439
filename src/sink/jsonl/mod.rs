//! The JSON-lines sink: every row as one line of ECS, OCSF, OTLP or native
//! JSON, to a file that shippers tail (Filebeat, Fluent Bit, Vector, the
//! OpenTelemetry Collector) or to standard output.
//!
//! It runs in the same pipeline as PostgreSQL: the same ring, the same
//! writer thread, the same redaction before any byte is rendered. The
//! writer renders each row into the batch in progress ([`JsonlSink`], no
//! I/O); a sealed batch goes through a byte-bounded [`queue`] to the
//! `ringtrail-jsonl` thread, which appends it to the [`output`].
//!
//! ```no_run
//! use ringtrail::{Format, Jsonl};
//! use tracing_subscriber::prelude::*;
//!
//! // No database at all: ECS lines for a shipper to pick up.
//! let (layer, guard) = ringtrail::Builder::new()
//!     .jsonl(
//!         Jsonl::file("/var/log/app/events.ndjson", Format::Ecs)
//!             .rotate_bytes(64 << 20)
//!             .keep(4),
//!     )
//!     .service_name("checkout")
//!     .build()?;
//! tracing_subscriber::registry().with(layer).init();
//! tracing::info!(order = 42, "paid");
//! guard.flush()?;
//! # Ok::<(), ringtrail::Error>(())
//! ```
//!
//! # Independent of PostgreSQL
//!
//! With [`Builder::postgres`](crate::Builder::postgres) as well, every row
//! goes to both, and neither waits for the other: the writer never blocks
//! on the file. A batch that finds the queue full (a reader that stopped
//! reading standard output, a stuck disk) is *missed* by this sink only:
//! counted in [`Stats::jsonl`](crate::Stats::jsonl), and reported in band,
//! in the file, by a `ringtrail::dropped` line with reason `jsonl_missed`
//! once lines flow again. A PostgreSQL outage does not touch the file.
//!
//! # What a row looks like
//!
//! A line is what [`ringtrail export`](crate::read::export) would print for
//! the row once stored: the time at PostgreSQL's microsecond precision,
//! the fields in `jsonb`'s key order, a repeated field name once (its last
//! value). So the file and an export of the same rows are byte-identical,
//! except in the numeric corners `jsonb` changes (see
//! [`read::export`](crate::read::export)).
//!
//! # Flush and shutdown
//!
//! A flush waits until the lines are written (not fsynced), unless the
//! output makes no progress for the stall timeout
//! ([`Builder::stall_timeout`](crate::Builder::stall_timeout)): then the
//! queued batches are missed, and later flushes do not wait for that
//! output again until it moves. Shutdown waits as long as the shutdown
//! deadline allows, fsyncs the file, and counts what is still queued as
//! missed.

mod output;
mod queue;

pub(crate) use crate::stats::JsonlCounters;

pub(crate) use output::STDOUT;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use output::Output;
use queue::{Batch, Missed, Queue};

use super::{BatchFailure, Cutoff, Outcome, Sink, Wait};
use crate::contract::{report_fields, CHECKPOINT_TARGET, DROPPED_TARGET, MISSED_REASON};
use crate::counters::bump;
use crate::ids::Uuid7;
use crate::render::{Format, Renderer};
use crate::row::{as_jsonb_keeps, recycle, Field, Row, LEVEL_WARN};
use crate::thread::{spawn_own, OwnThread};
use crate::time::clock::unix_nanos_now;
use crate::time::rfc3339;
use crate::{Error, Fate};

/// The JSON-lines sink: every row as one JSON line in a [`Format`], to a
/// file rotated by size or to standard output. Set with
/// [`Builder::jsonl`](crate::Builder::jsonl), alone (no database at all)
/// or beside [`Builder::postgres`](crate::Builder::postgres).
///
/// | setting | default |
/// |---|---|
/// | where and how ([`file`](Jsonl::file), [`stdout`](Jsonl::stdout)) | none: required |
/// | [`rotate_bytes`](Jsonl::rotate_bytes) | 128 MiB (0 never rotates) |
/// | [`keep`](Jsonl::keep) | 8 rotated files |
/// | [`queue_bytes`](Jsonl::queue_bytes) | 16 MiB |
///
/// A `(path, format)` pair converts into [`Jsonl::file`], so
/// `.jsonl(("app.ndjson", Format::Ecs))` reads as before.
///
/// ```
/// use ringtrail::{Format, Jsonl};
/// use tracing_subscriber::prelude::*;
///
/// let path = std::env::temp_dir().join(format!("ringtrail-doc-{}.ndjson", std::process::id()));
/// let (layer, guard) = ringtrail::Builder::new()
///     .jsonl(
///         Jsonl::file(&path, Format::Ecs)
///             .rotate_bytes(64 << 20) // default 128 MiB
///             .keep(4)                // default 8 old files
///             .queue_bytes(4 << 20),  // default 16 MiB
///     )
///     .service_name("checkout")
///     .build()?;
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!(order = 42, "paid"));
/// guard.flush()?; // the line is written
/// drop(guard);
/// assert!(std::fs::read_to_string(&path)?.contains("\"paid\""));
/// std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Jsonl {
    /// The file, or [`STDOUT`] for standard output.
    pub(crate) path: PathBuf,
    pub(crate) format: Format,
    /// Rotate before a file passes this size; 0 never rotates.
    pub(crate) rotate_bytes: u64,
    /// Rotated files kept.
    pub(crate) keep: usize,
    /// The most bytes of sealed batches waiting for the output.
    pub(crate) queue_bytes: usize,
}

impl Jsonl {
    /// The default [`rotate_bytes`](Jsonl::rotate_bytes): 128 MiB.
    const ROTATE_BYTES: u64 = 128 << 20;
    /// The default [`keep`](Jsonl::keep): 8 files.
    const KEEP: usize = 8;
    /// The default [`queue_bytes`](Jsonl::queue_bytes): 16 MiB.
    const QUEUE_BYTES: usize = 16 << 20;

    /// Lines in `format` to the file at `path` (or to standard output when
    /// `path` is `"-"`), with the defaults.
    ///
    /// The file is rotated by size, with the `app.ndjson.1`, `.2`… names
    /// shippers know. A FIFO or a device is written as a stream, never
    /// rotated. Lines are written whole, and a torn last line (a machine
    /// crash) is cut when the file is opened again; docs/siem.md's "The
    /// JSON-lines sink" says what a crash can lose.
    pub fn file(path: impl Into<PathBuf>, format: Format) -> Jsonl {
        Jsonl {
            path: path.into(),
            format,
            rotate_bytes: Self::ROTATE_BYTES,
            keep: Self::KEEP,
            queue_bytes: Self::QUEUE_BYTES,
        }
    }

    /// Lines in `format` to standard output, with the defaults.
    pub fn stdout(format: Format) -> Jsonl {
        Jsonl::file(STDOUT, format)
    }

    /// Rotates the file before it would pass `bytes` (default 128 MiB; 0
    /// never rotates). No file holds more, unless one line alone is longer.
    pub fn rotate_bytes(mut self, bytes: u64) -> Jsonl {
        self.rotate_bytes = bytes;
        self
    }

    /// How many rotated files are kept (default 8): `app.ndjson.1` (the
    /// newest) to `app.ndjson.N`. 0 deletes a full file at rotation.
    pub fn keep(mut self, files: usize) -> Jsonl {
        self.keep = files;
        self
    }

    /// The most bytes of rendered batches waiting for the output (default
    /// 16 MiB). A batch that finds it full is missed by this sink only.
    pub fn queue_bytes(mut self, bytes: usize) -> Jsonl {
        self.queue_bytes = bytes;
        self
    }

    /// [`Error::Config`] for an empty path.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::Config(format!(
                "the JSON-lines path is empty (use \"{STDOUT}\" for standard output)"
            )));
        }
        Ok(())
    }
}

impl<P: Into<PathBuf>> From<(P, Format)> for Jsonl {
    /// [`Jsonl::file`].
    fn from((path, format): (P, Format)) -> Jsonl {
        Jsonl::file(path, format)
    }
}

/// Settings of the JSON-lines sink: the user's, and what the builder adds.
#[derive(Debug, Clone)]
pub(crate) struct JsonlConfig {
    pub(crate) options: Jsonl,
    pub(crate) service_name: String,
    /// How long a flush waits for an output that makes no progress.
    pub(crate) stall_timeout: Duration,
}

/// The writer's side of the sink.
pub(crate) struct JsonlSink {
    renderer: Renderer,
    /// The batch in progress: whole lines.
    lines: Vec<u8>,
    events: u64,
    reports: usize,
    /// Reused for each row's fields in stored order.
    fields: Vec<Field<'static>>,
    queue: Arc<Queue>,
    counters: Arc<JsonlCounters>,
    /// Missed by the writer (a full queue) and not reported in band yet.
    missed: Missed,
    /// The output's finished count when a flush last gave up on it.
    stalled_at: Option<u64>,
    stall_timeout: Duration,
    cutoff: Arc<Cutoff>,
    ids: Uuid7,
    thread: Option<JoinHandle<()>>,
    /// What [`Sink::outcomes`] has reported so far: written, batches, missed.
    reported: [u64; 3],
}

impl JsonlSink {
    /// Opens the output (so a bad path fails `build()`) and starts the
    /// `ringtrail-jsonl` thread.
    pub(crate) fn open(
        config: &JsonlConfig,
        counters: Arc<JsonlCounters>,
        cutoff: Arc<Cutoff>,
    ) -> crate::Result<JsonlSink> {
        let options = &config.options;
        let mut output =
            Output::open(&options.path, options.rotate_bytes, options.keep).map_err(|e| {
                Error::Io(io::Error::new(
                    e.kind(),
                    format!("cannot open {} for JSON lines: {e}", options.path.display()),
                ))
            })?;
        let queue = Arc::new(Queue::new(options.queue_bytes, counters.clone()));
        let thread = {
            let queue = queue.clone();
            let path = options.path.clone();
            spawn_own(OwnThread::Jsonl, move || {
                write_batches(&mut output, &queue, &path)
            })?
        };
        Ok(JsonlSink {
            renderer: Renderer::new(options.format).with_service_name(&config.service_name),
            lines: Vec::with_capacity(64 * 1024),
            events: 0,
            reports: 0,
            fields: Vec::with_capacity(32),
            queue,
            counters,
            missed: Missed::default(),
            stalled_at: None,
            stall_timeout: config.stall_timeout,
            cutoff,
            ids: Uuid7::new(),
            thread: Some(thread),
            reported: [0; 3],
        })
    }

    /// Renders `row` as it will read back from the table: microsecond
    /// time, fields as `jsonb` keeps them.
    fn render_stored(&mut self, row: &Row<'_>) {
        let mut fields = recycle(std::mem::take(&mut self.fields));
        fields.extend_from_slice(row.fields);
        as_jsonb_keeps(&mut fields);
        let stored = Row {
            ts_unix_nanos: row.ts_unix_nanos.div_euclid(1000) * 1000,
            fields: &fields,
            ..*row
        };
        self.renderer.render(&stored, &mut self.lines);
        self.fields = recycle(fields);
    }

    /// Appends the in-band line for `missed` to the batch in progress.
    fn report_missed(&mut self, missed: Missed) {
        let now = unix_nanos_now();
        let (from, to) = (rfc3339(missed.from), rfc3339(missed.to));
        let message = format!(
            "{} events missed by the JSON-lines sink ({MISSED_REASON})",
            missed.events
        );
        let fields = report_fields(missed.events, MISSED_REASON, &from, &to);
        let id = self.ids.next(now);
        self.render_stored(&Row {
            ts_unix_nanos: now,
            id,
            level: LEVEL_WARN,
            target: DROPPED_TARGET,
            message: &message,
            fields: &fields,
            ..Row::default()
        });
    }

    /// Appends a signed checkpoint of the hash chain to the batch in
    /// progress, as a `ringtrail::checkpoint` line (not an event): the
    /// note in `message`, for `ringtrail verify --checkpoints` once
    /// extracted.
    pub(crate) fn append_checkpoint(&mut self, note: &str) {
        let now = unix_nanos_now();
        let id = self.ids.next(now);
        self.render_stored(&Row {
            ts_unix_nanos: now,
            id,
            level: crate::row::LEVEL_INFO,
            target: CHECKPOINT_TARGET,
            message: note,
            ..Row::default()
        });
        self.reports += 1;
    }

    /// Counts `events` missed now, to be reported in band.
    fn miss(&mut self, events: u64) {
        bump(&self.counters.missed, events);
        self.missed.add(events, unix_nanos_now());
    }

    /// Waits for the queued batches, as long as the output moves.
    fn drain(&mut self) {
        let finished = self.queue.finished_count();
        // An output a flush gave up on, and that has not moved since, is
        // not waited for again: its queued batches are missed at once.
        let stall = match self.stalled_at {
            Some(at) if at == finished => Duration::ZERO,
            _ => self.stall_timeout,
        };
        self.stalled_at = None;
        if let Err(events) = self.queue.drain(stall) {
            self.stalled_at = Some(self.queue.finished_count());
            self.miss(events);
        }
    }

    /// Where rows went since the last call, as a sink of its own.
    fn outcome(&mut self) -> Outcome {
        let now = self.counters.snapshot();
        let [written, batches, missed] = &mut self.reported;
        let mut outcome = Outcome {
            written: now.written - *written,
            batches: now.batches - *batches,
            lost: now.missed - *missed,
            ..Outcome::default()
        };
        (*written, *batches, *missed) = (now.written, now.batches, now.missed);
        if outcome.lost > 0 {
            outcome.failure = Some(BatchFailure::new(
                Fate::Lost,
                Error::Io(io::Error::other(format!(
                    "the JSON-lines output missed {} events (it fell behind, stalled or failed to write)",
                    outcome.lost
                ))),
            ));
        }
        outcome
    }

    /// The first half of closing: no more batches; the output thread ends
    /// once it has written the queued ones.
    pub(crate) fn begin_close(&mut self) {
        self.queue.close();
    }

    /// The second half: waits for the output thread until the shutdown
    /// cutoff, and counts what it could not write by then as missed.
    pub(crate) fn finish_close(&mut self) -> Outcome {
        let left = self.cutoff.get().map_or(self.stall_timeout, |at| {
            at.saturating_duration_since(Instant::now())
        });
        let left = left.max(Duration::from_millis(100));
        if let Err(events) = self.queue.drain(left) {
            self.miss(events);
        }
        // A write still blocked (a reader that never reads) is given up:
        // its events are missed, and the thread, detached, counts nothing.
        self.miss(self.queue.abandon());
        if let Some(thread) = self.thread.take() {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        self.outcome()
    }
}

/// The `ringtrail-jsonl` thread: writes batches until the queue closes.
fn write_batches(output: &mut Output, queue: &Queue, path: &std::path::Path) {
    let mut failing = false;
    while let Some(batch) = queue.take() {
        match output.write_lines(&batch.lines) {
            Ok(written) => {
                if failing {
                    eprintln!("ringtrail: writing JSON lines to {} again", path.display());
                    failing = false;
                }
                queue.finished(batch, Ok(written.rotations));
            }
            Err(e) => {
                if !failing {
                    eprintln!(
                        "ringtrail: cannot write JSON lines to {}: {e} (missed lines are counted and reported)",
                        path.display()
                    );
                    failing = true;
                }
                queue.finished(batch, Err(()));
            }
        }
    }
    if let Err(e) = output.sync() {
        eprintln!("ringtrail: cannot sync {}: {e}", path.display());
    }
}

impl Sink for JsonlSink {
    fn append(&mut self, row: &Row<'_>) {
        self.render_stored(row);
        self.events += 1;
    }

    fn append_report(&mut self, row: &Row<'_>) {
        self.render_stored(row);
        self.reports += 1;
    }

    fn pending_rows(&self) -> usize {
        self.events as usize + self.reports
    }

    fn pending_bytes(&self) -> usize {
        self.lines.len()
    }

    fn commit(&mut self) {
        let mut missed = self.queue.take_missed();
        missed.merge(std::mem::take(&mut self.missed));
        if missed.events > 0 {
            self.report_missed(missed);
        }
        if self.lines.is_empty() {
            return;
        }
        let lines = std::mem::replace(&mut self.lines, self.queue.spare());
        let batch = Batch {
            lines,
            events: std::mem::take(&mut self.events),
            reports: missed,
        };
        self.reports = 0;
        if let Err(batch) = self.queue.push(batch) {
            self.miss(batch.events);
            // The report it carried is not out either: keep it.
            self.missed.merge(batch.reports);
            let mut lines = batch.lines;
            lines.clear();
            self.lines = lines;
        }
    }

    fn outcomes(&mut self, wait: Wait) -> Outcome {
        if wait == Wait::All {
            self.drain();
        }
        self.outcome()
    }

    fn close(&mut self) -> Outcome {
        self.begin_close();
        self.finish_close()
    }
}
