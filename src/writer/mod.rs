//! The writer: one dedicated thread, `ringtrail-writer`, that drains the
//! ring into batches and commits them through a [`Sink`].
//!
//! Everything that can be moved off the caller's thread happens here:
//! UUIDv7 ids, timestamp conversion, field decoding and encoding.
//!
//! A batch is committed when any of these happens:
//! * it reaches `batch_rows` rows or `batch_bytes` bytes;
//! * its oldest row has waited `flush_interval`;
//! * it holds an ERROR event and `urgent_interval` has passed since the last
//!   commit (so an error storm becomes a few batches, not one transaction
//!   per error);
//! * [`Guard::flush`](crate::Guard::flush) asks, or the guard shuts down.
//!
//! In steady state the loop allocates nothing per row: records are decoded
//! in place, the field list is a reused vector, and the encoder reuses its
//! buffer.

mod control;
mod decode;
mod report;
mod spawn;
mod timer;

pub(crate) use control::Control;
pub(crate) use spawn::spawn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capture::reader::RecordReader;
use crate::counters::bump;
use crate::error::check_duration;
use crate::ids::Uuid7;
use crate::redact::Redactor;
use crate::ring::{Ring, SlotClass};
use crate::row::LEVEL_ERROR;
use crate::sink::{BatchFailure, Outcome, Sink, Wait};
use decode::RowDecoder;
use report::DropReporter;
use timer::BatchTimer;

/// How the writer batches. Filled in by the builder.
#[derive(Debug, Clone)]
pub(crate) struct WriterConfig {
    pub(crate) batch_rows: usize,
    pub(crate) batch_bytes: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) urgent_interval: Duration,
    /// Runs on every row before the sink; `None` when redaction is off.
    pub(crate) redactor: Option<Redactor>,
    /// The `pipeline` label of the `metrics` export.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) pipeline: String,
    /// An event more than this before the writer's clock is clamped to it.
    pub(crate) clamp_past: Duration,
    /// An event more than this after the writer's clock is clamped to it.
    pub(crate) clamp_future: Duration,
}

impl Default for WriterConfig {
    /// Batches of up to 8,192 rows or 8 MiB, a 100 ms flush interval and
    /// a 10 ms urgent interval; event times clamped to 7 days before
    /// the writer's clock and 1 day after it.
    fn default() -> Self {
        WriterConfig {
            batch_rows: 8_192,
            batch_bytes: 8 << 20,
            flush_interval: Duration::from_millis(100),
            urgent_interval: Duration::from_millis(10),
            redactor: None,
            pipeline: String::new(),
            clamp_past: Duration::from_secs(7 * 86_400),
            clamp_future: Duration::from_secs(86_400),
        }
    }
}

impl WriterConfig {
    /// [`Error::Config`](crate::Error::Config) naming the first setting
    /// out of range: batches of no rows or no bytes, a zero flush interval,
    /// an interval or clamp bound over a year.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::Config(m.to_owned()));
        if self.batch_rows == 0 || self.batch_bytes == 0 {
            return bad("batch_rows and batch_bytes must be positive");
        }
        if self.flush_interval.is_zero() {
            return bad("flush_interval must be positive");
        }
        check_duration("flush_interval", self.flush_interval)?;
        check_duration("urgent_interval", self.urgent_interval)?;
        check_duration("the clamp window's past", self.clamp_past)?;
        check_duration("the clamp window's future", self.clamp_future)
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    ring: Arc<Ring>,
    control: Arc<Control>,
    sink: Box<dyn Sink>,
    config: WriterConfig,
    ids: Uuid7,
    /// Records to rows, with its scratch buffers.
    decoder: RowDecoder,
    timer: BatchTimer,
    /// A batch was not committed since the last completed flush (spooled
    /// or lost); reported to that flush.
    failure: Option<BatchFailure>,
    drops: DropReporter,
    /// When the `metrics` export was last published.
    #[cfg(feature = "metrics")]
    published: Instant,
}

/// How often the writer publishes `Stats` to the `metrics` facade.
#[cfg(feature = "metrics")]
const METRICS_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    pub(crate) fn new(
        ring: Arc<Ring>,
        control: Arc<Control>,
        sink: Box<dyn Sink>,
        config: WriterConfig,
    ) -> Writer {
        let decoder = RowDecoder::new(
            ring.clock.wall_time(),
            config.redactor.clone(),
            config.clamp_past,
            config.clamp_future,
        );
        Writer {
            decoder,
            timer: BatchTimer::new(config.flush_interval, config.urgent_interval),
            ring,
            control,
            sink,
            config,
            ids: Uuid7::new(),
            failure: None,
            drops: DropReporter::new(),
            #[cfg(feature = "metrics")]
            published: Instant::now(),
        }
    }

    /// The thread's main loop. Returns after a shutdown request, once every
    /// record published before it is committed, spooled or counted lost.
    pub(crate) fn run(mut self) {
        #[cfg(feature = "metrics")]
        crate::metrics::describe();
        self.ring.doorbell.register_writer();
        let mut pass = self.ring.drain_pass();
        loop {
            let (requested, shutdown) = self.control.requests();
            if let Some(deadline) = shutdown {
                return self.shut_down(requested, deadline);
            }
            let flush_wanted = requested > self.control.counters.completed();
            self.decoder.refresh();
            // One drain pass: under a steady stream the ring may never be
            // empty, but when the pass ends every record published before
            // it began has been taken (`SlotPool::take_in`).
            self.ring.refill(&mut pass);
            while let Some((class, index)) = self.ring.take_in(&mut pass) {
                self.append(class, index);
            }
            let now = Instant::now();
            // Unreported drops start the clock like a first row would: the
            // report lands within a flush interval, without shrinking the
            // batches of an overloaded pipeline.
            if !self.timer.is_running() && self.drops.pending(&self.ring, &self.control.counters) {
                self.timer.row_added(now);
            }
            if self.has_rows() && (flush_wanted || self.timer.is_due(now)) {
                self.commit();
            }
            if flush_wanted {
                // Wait for the batches in flight: a flush is complete only
                // when they are committed (or spooled).
                self.collect(Wait::All);
                #[cfg(feature = "metrics")]
                self.publish_metrics();
                self.control.complete(requested, self.failure.take());
            } else {
                self.collect(Wait::No);
            }
            #[cfg(feature = "metrics")]
            if self.published.elapsed() >= METRICS_EVERY {
                self.publish_metrics();
            }
            if self.ring.ready_len() == 0 {
                self.sleep(now);
            }
        }
    }

    /// Rows in the batch in progress, or drops still to report.
    fn has_rows(&self) -> bool {
        self.sink.pending_rows() > 0 || self.drops.pending(&self.ring, &self.control.counters)
    }

    /// The last pass: closes the ring and takes every slot out of
    /// circulation (each one either drained or free), so that every event
    /// that got a slot is committed, spooled or counted lost, and every
    /// later one is dropped at once and counted. Then commits, and closes
    /// the sink, which obeys the shutdown cutoff (`deadline`).
    fn shut_down(mut self, ticket: u64, deadline: Instant) {
        self.ring.close();
        let capacity = self.ring.total_slots();
        let mut held = 0;
        let mut pass = self.ring.drain_pass();
        loop {
            held += self.ring.hoard_free();
            // Records published before the close, or by producers that held
            // a slot while it happened. Appending frees each slot, and the
            // next round hoards it.
            self.ring.refill(&mut pass);
            while let Some((class, index)) = self.ring.take_in(&mut pass) {
                self.append(class, index);
            }
            held += self.ring.hoard_free();
            if held >= capacity || Instant::now() >= deadline {
                break;
            }
            std::thread::yield_now();
        }
        if self.has_rows() {
            self.commit();
        }
        let outcome = self.sink.close();
        self.apply(outcome);
        #[cfg(feature = "metrics")]
        self.publish_metrics();
        self.control.complete(ticket, self.failure.take());
    }

    /// Sets the `metrics` series to the counters now.
    #[cfg(feature = "metrics")]
    fn publish_metrics(&mut self) {
        let stats = self.control.stats(&self.ring);
        let name = match self.config.pipeline.as_str() {
            "" => crate::metrics::DEFAULT_PIPELINE,
            name => name,
        };
        crate::metrics::publish(&stats, name);
        self.published = Instant::now();
    }

    /// Parks until woken, or until the batch in progress is due.
    fn sleep(&mut self, now: Instant) {
        let wake = self.timer.wake_at(now);
        // Idle or not, the `metrics` series stay at most a period old.
        #[cfg(feature = "metrics")]
        let wake = wake.min(now + METRICS_EVERY);
        self.ring.doorbell.park();
        // Re-check after announcing the park (the doorbell's fence pairs
        // with the producers'), so a record published meanwhile is seen.
        if self.ring.ready_len() == 0 && !self.control.has_requests() {
            std::thread::park_timeout(wake.saturating_duration_since(now));
        }
        self.ring.doorbell.unpark();
    }

    /// Decodes one record into a row, hands it to the sink, frees the slot.
    fn append(&mut self, class: SlotClass, index: u32) {
        let pool = self.ring.pool(class);
        // SAFETY: `index` was just taken from the pool's ready queue, so
        // this thread holds the slot exclusively until `release` below, and
        // the producer's writes are visible (the queue's pop is an acquire).
        let buf = unsafe { pool.slot_mut(index) };
        // SAFETY: the producer finished the record with
        // `RecordWriter::finish` before publishing the index, and nobody
        // writes the slot until `release` below.
        let record = unsafe { RecordReader::new(buf) };
        let sink = &mut self.sink;
        let (level, redacted) = self.decoder.decode(&record, &mut self.ids, |row| {
            sink.append(row);
            (row.level, row.redacted)
        });
        pool.release(index);
        bump(&self.control.counters.writer.received, 1);
        if redacted > 0 {
            bump(&self.control.counters.writer.redacted, redacted.into());
        }
        self.timer.row_added(Instant::now());
        if level >= LEVEL_ERROR {
            self.timer.mark_urgent();
        }
        if self.sink.pending_rows() >= self.config.batch_rows
            || self.sink.pending_bytes() >= self.config.batch_bytes
        {
            self.commit();
        }
    }

    /// Commits the batch in progress (with any due drop reports). The sink
    /// retries as configured; whatever it cannot commit it spools or counts
    /// lost, and the next completed flush hears about it.
    fn commit(&mut self) {
        let reports = self.drops.append(
            &self.ring,
            &self.control.counters,
            self.sink.as_mut(),
            &mut self.ids,
        );
        bump(&self.control.counters.writer.drop_reports, reports);
        self.sink.commit();
        self.timer.committed(Instant::now());
    }

    /// Counts where finished batches went, after waiting for the batches
    /// in flight as `wait` says.
    fn collect(&mut self, wait: Wait) {
        let outcome = self.sink.outcomes(wait);
        self.apply(outcome);
    }

    fn apply(&mut self, outcome: Outcome) {
        self.control.counters.apply(&outcome);
        if let Some(failure) = outcome.failure {
            self.failure = Some(failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::audit::{Permission, Point, Tool};
    use crate::capture::Layer;
    use crate::ring::RingConfig;
    use crate::sink::Outcome;
    use crate::time::clock::Clock;
    use tracing_subscriber::prelude::*;

    /// A row as the sink got it: stored time (µs), `seq`, id, `kind`.
    type Got = (i64, u64, [u8; 16], Option<i16>);

    /// A sink that keeps what it is handed.
    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<Got>>>);

    impl Sink for Collect {
        fn append(&mut self, row: &crate::Row<'_>) {
            let ts = crate::chain::canonical::stored_micros(row.ts_unix_nanos);
            self.0.lock().unwrap().push((ts, row.seq, row.id, row.kind));
        }
        fn append_report(&mut self, _row: &crate::Row<'_>) {}
        fn pending_rows(&self) -> usize {
            0
        }
        fn pending_bytes(&self) -> usize {
            0
        }
        fn commit(&mut self) {}
        fn outcomes(&mut self, _wait: Wait) -> Outcome {
            Outcome::default()
        }
        fn close(&mut self) -> Outcome {
            Outcome::default()
        }
    }

    /// Issue 22 §7, without luck: one thread emits a permission and then
    /// its tool point in the same microsecond; the permission finds the
    /// last standard slot, the tool point the audit reserve. The writer
    /// drains the reserve first, so the tool point gets the smaller id:
    /// by `ts, id` it ran before its permission (`missing_permission`).
    /// `seq`, taken on the thread as it emitted them, keeps their order.
    #[test]
    fn one_threads_points_keep_their_order_whatever_slot_class_each_took() {
        let config = RingConfig {
            capacity: 64,
            shards: 1,
            large_slots: Some(0),
            audit_slots: Some(8),
            ..RingConfig::default()
        };
        let mut ring = Ring::new(&config, usize::MAX);
        // Every reading the same instant: a fast machine's microsecond.
        ring.clock = Clock::mock().0;
        let ring = Arc::new(ring);
        // A flood holds every standard slot but one.
        let mut flood: Vec<u32> = std::iter::from_fn(|| ring.slots.claim()).collect();
        ring.slots.release(flood.pop().unwrap());
        let layer = Layer::new(ring.clone());
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || {
            Permission::allow("p").tool("search").emit("t-1"); // a standard slot
            Tool::execution("search").emit("t-1"); // the audit reserve
        });
        assert_eq!(ring.pool(SlotClass::Audit).ready_len(), 1);

        let got = Collect::default();
        let sink = Box::new(got.clone());
        let mut writer = Writer::new(ring.clone(), Arc::default(), sink, WriterConfig::default());
        let mut pass = ring.drain_pass();
        while let Some((class, index)) = ring.take_in(&mut pass) {
            writer.append(class, index);
        }
        let rows = got.0.lock().unwrap().clone();
        let kinds = |rows: &[Got]| -> Vec<Option<i16>> { rows.iter().map(|r| r.3).collect() };
        let (permission, tool) = (Some(Point::Permission.kind()), Some(Point::Tool.kind()));
        assert_eq!(
            kinds(&rows),
            [tool, permission],
            "the reserve is drained first"
        );
        assert_eq!(rows[0].0, rows[1].0, "one microsecond");

        let mut by_id = rows.clone();
        by_id.sort_by_key(|r| (r.0, r.2));
        assert_eq!(kinds(&by_id), [tool, permission], "by ts, id: out of order");

        let mut timeline = rows.clone();
        timeline.sort_by_key(|r| (r.0, r.1, r.2));
        assert_eq!(kinds(&timeline), [permission, tool], "by ts, seq, id");
        assert_eq!(timeline[1].1, timeline[0].1 + 1, "one after the other");
        for index in flood {
            ring.slots.release(index);
        }
    }
}
