//! Shared harness for the benches: `hot_path`, `latency`, `scaling` and `sustained`.
//!
//! * [`emit`] and [`request_span`]: the one event and the one span every
//!   variant measures, so all variants do exactly the same work at the call
//!   site.
//! * [`Pipeline`]: a subscriber under test plus what the harness needs
//!   around it: how big a burst may be so its queue never fills, how to wait
//!   (outside any timed section) until the consumer has caught up, and how
//!   many events were lost.
//! * [`Crew`]: extra producer threads for the contended variants.
//! * [`timed_bursts`]: the criterion measurement loop.
//!
//! * [`split_copy`]: a binary COPY stream cut into streams of so many
//!   rows, for the raw COPY baselines of `sustained` and `scaling`.
//!
//! The bench targets include this module; each uses a subset of it.
#![allow(dead_code)]

pub mod replica;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// ringtrail's default ring (`Builder::new()` in src/builder.rs), spelled out
/// so the burst size and the memory budget follow from what was built.
pub const RINGTRAIL_CAPACITY: usize = 16_384;
/// ringtrail's default record size in bytes.
pub const RINGTRAIL_RECORD_SIZE: usize = 512;
/// tracing-appender's `DEFAULT_BUFFERED_LINES_LIMIT` (its channel bound).
pub const APPENDER_LINES: usize = 128_000;
/// Events per burst for tracing-appender: far below its channel bound.
pub const APPENDER_BURST: u64 = 8_192;

/// How long a harness wait may take before the bench gives up loudly
/// instead of hanging.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The event every variant measures: a formatted message plus four fields of
/// mixed types (u64, f64, bool, &str).
#[inline(always)]
pub fn emit(i: u64) {
    tracing::info!(
        user_id_hash = 42u64,
        latency = 1.5f64,
        ok = true,
        route = "/v1/orders",
        "request {} took {}ms",
        i,
        3
    );
}

/// Emits `n` events.
#[inline]
pub fn emit_n(n: u64) {
    for i in 0..n {
        emit(i);
    }
}

/// The span every event runs in: user, session and trace ids.
pub fn request_span() -> tracing::Span {
    tracing::info_span!(
        "request",
        user_id = "u-1",
        session_id = "s-1",
        trace_id = "t-1"
    )
}

/// A subscriber under test, with what the harness needs around it.
pub trait Pipeline {
    /// The subscriber producers run under.
    fn dispatch(&self) -> &Dispatch;
    /// The most events one burst (all producers together) may emit without
    /// the queue filling, even if the consumer does not run meanwhile.
    fn burst(&self) -> u64;
    /// Waits until the consumer has taken every event emitted so far;
    /// `emitted` is the size of the burst that just ended. Never timed.
    fn settle(&self, emitted: u64);
    /// Events lost so far (ring full, channel full, `try_send` failed).
    fn dropped(&self) -> u64;
}

/// Spins briefly, then yields, until `done()`; panics after [`WAIT_LIMIT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !done() {
        if spins < 1_000 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
            if start.elapsed() > WAIT_LIMIT {
                panic!("bench harness: timed out waiting for {what}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// ringtrail
// ---------------------------------------------------------------------------

/// ringtrail with the null sink: the writer decodes every record and encodes
/// every batch to binary COPY exactly as for PostgreSQL, then drops the
/// bytes.
pub struct Ringtrail {
    dispatch: Dispatch,
    guard: ringtrail::Guard,
    /// `Debug` of the layer as built (shows capacity and record size).
    pub layer: String,
}

impl Ringtrail {
    /// The default ring: [`RINGTRAIL_CAPACITY`] × [`RINGTRAIL_RECORD_SIZE`].
    pub fn new() -> Ringtrail {
        let (layer, guard) = ringtrail::Builder::new()
            .null_sink()
            .capacity(RINGTRAIL_CAPACITY)
            .record_size(RINGTRAIL_RECORD_SIZE)
            .build()
            .expect("build ringtrail with the null sink");
        let described = format!("{layer:?}");
        Ringtrail {
            dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
            guard,
            layer: described,
        }
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> ringtrail::Stats {
        self.guard.stats()
    }
}

impl Pipeline for Ringtrail {
    fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
    /// Half the ring: the writer drains concurrently, but even if it did not
    /// run at all the ring could not fill.
    fn burst(&self) -> u64 {
        (RINGTRAIL_CAPACITY / 2) as u64
    }
    fn settle(&self, _emitted: u64) {
        self.guard.flush().expect("ringtrail flush");
    }
    fn dropped(&self) -> u64 {
        self.guard.stats().dropped
    }
}

// ---------------------------------------------------------------------------
// tracing-appender + fmt json
// ---------------------------------------------------------------------------

/// Open/closed gate a consumer can be held at (to fill its queue on purpose
/// for the memory measurement).
pub struct Gate {
    open: AtomicBool,
    lock: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// A gate, initially open or closed.
    pub fn new(open: bool) -> Gate {
        Gate {
            open: AtomicBool::new(open),
            lock: Mutex::new(open),
            cv: Condvar::new(),
        }
    }

    /// Blocks while the gate is closed. One relaxed-acquire load when open.
    pub fn pass(&self) {
        if self.open.load(Ordering::Acquire) {
            return;
        }
        let mut open = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.cv.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Opens the gate for good.
    pub fn open(&self) {
        let mut open = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        *open = true;
        self.open.store(true, Ordering::Release);
        self.cv.notify_all();
    }
}

/// `io::sink()` that counts lines and bytes, so the harness knows when the
/// appender's worker has drained its channel. tracing-appender's worker
/// calls `write_all` once per line, and a sink's `write` takes everything,
/// so one `write` is one line.
struct CountingSink {
    lines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    gate: Arc<Gate>,
}

impl io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.gate.pass();
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.lines.fetch_add(1, Ordering::Release);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `tracing_appender::non_blocking` (lossy, 128,000 lines: the defaults)
/// under `tracing_subscriber::fmt::layer().json()`, on a registry.
pub struct Appender {
    dispatch: Dispatch,
    _worker: tracing_appender::non_blocking::WorkerGuard,
    errors: tracing_appender::non_blocking::ErrorCounter,
    lines: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    emitted: AtomicU64,
    gate: Arc<Gate>,
}

impl Appender {
    /// A running appender.
    pub fn new() -> Appender {
        Appender::build(true)
    }

    /// An appender whose worker blocks on its first line until
    /// [`resume`](Appender::resume), so its channel can be filled.
    pub fn paused() -> Appender {
        Appender::build(false)
    }

    fn build(open: bool) -> Appender {
        let lines = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Gate::new(open));
        let sink = CountingSink {
            lines: lines.clone(),
            bytes: bytes.clone(),
            gate: gate.clone(),
        };
        let (writer, worker) = tracing_appender::non_blocking(sink);
        let errors = writer.error_counter();
        let layer = tracing_subscriber::fmt::layer().json().with_writer(writer);
        Appender {
            dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
            _worker: worker,
            errors,
            lines,
            bytes,
            emitted: AtomicU64::new(0),
            gate,
        }
    }

    /// Lets a paused worker run.
    pub fn resume(&self) {
        self.gate.open();
    }

    /// Lines and bytes the worker has written so far.
    pub fn written(&self) -> (u64, u64) {
        (
            self.lines.load(Ordering::Acquire),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        // Never leave the worker blocked: the WorkerGuard's drop waits for it.
        self.gate.open();
    }
}

impl Pipeline for Appender {
    fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
    fn burst(&self) -> u64 {
        APPENDER_BURST
    }
    fn settle(&self, emitted: u64) {
        let target = self.emitted.fetch_add(emitted, Ordering::Relaxed) + emitted;
        wait_until("the tracing-appender worker", || {
            self.lines.load(Ordering::Acquire) + self.dropped() >= target
        });
    }
    fn dropped(&self) -> u64 {
        self.errors.dropped_lines() as u64
    }
}

// ---------------------------------------------------------------------------
// Floors: subscribers that store nothing
// ---------------------------------------------------------------------------

/// A subscriber that stores nothing, as a baseline: no consumer to wait
/// for, nothing to lose.
pub struct Floor {
    dispatch: Dispatch,
}

impl Floor {
    /// `Dispatch::none()`: the macro finds no subscriber. The floor of the
    /// `tracing` macro alone.
    pub fn no_subscriber() -> Floor {
        Floor {
            dispatch: Dispatch::none(),
        }
    }

    /// A `tracing_subscriber` registry (which tracks the entered span, as
    /// for ringtrail) with a layer whose `on_event` only reads the event's
    /// metadata: the floor for any layer. What ringtrail costs above this
    /// is what its own `on_event` costs.
    pub fn noop_layer() -> Floor {
        Floor {
            dispatch: Dispatch::new(tracing_subscriber::registry().with(Noop)),
        }
    }

    /// The least any layer that keeps an event must do: a registry and a
    /// layer that visits every field, formatting `Debug` values (the
    /// message) into a 512-byte buffer on the stack, and stores nothing.
    /// What ringtrail costs above this is what storing the values costs.
    pub fn visit_layer() -> Floor {
        Floor {
            dispatch: Dispatch::new(tracing_subscriber::registry().with(Visit)),
        }
    }
}

impl Pipeline for Floor {
    fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
    fn burst(&self) -> u64 {
        8_192
    }
    fn settle(&self, _emitted: u64) {}
    fn dropped(&self) -> u64 {
        0
    }
}

/// The layer of [`Floor::noop_layer`].
struct Noop;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Noop {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        std::hint::black_box(event.metadata());
    }
}

/// The layer of [`Floor::visit_layer`].
struct Visit;

/// A `fmt::Write` over a stack buffer that drops what does not fit.
struct StackBuf {
    buf: [u8; 512],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl tracing::field::Visit for StackBuf {
    fn record_debug(&mut self, _field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = std::fmt::Write::write_fmt(self, format_args!("{value:?}"));
    }
    fn record_str(&mut self, _field: &tracing::field::Field, value: &str) {
        let _ = std::fmt::Write::write_str(self, value);
    }
    fn record_u64(&mut self, _field: &tracing::field::Field, value: u64) {
        std::hint::black_box(value);
    }
    fn record_f64(&mut self, _field: &tracing::field::Field, value: f64) {
        std::hint::black_box(value);
    }
    fn record_bool(&mut self, _field: &tracing::field::Field, value: bool) {
        std::hint::black_box(value);
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Visit {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut buf = StackBuf {
            buf: [0; 512],
            len: 0,
        };
        event.record(&mut buf);
        std::hint::black_box(&buf.buf[..buf.len]);
    }
}

// ---------------------------------------------------------------------------
// Producer threads
// ---------------------------------------------------------------------------

#[derive(Default)]
struct CrewShared {
    round: AtomicU64,
    share: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
}

/// Helper producer threads for the contended variants. Each helper installs
/// the pipeline's dispatcher, enters its own request span (as a second
/// request handler would), and waits, spinning then yielding, for rounds.
/// The calling thread is producer 0.
pub struct Crew {
    shared: Arc<CrewShared>,
    handles: Vec<JoinHandle<()>>,
}

impl Crew {
    /// Starts `helpers` threads; helper `t` (1-based) runs `work(t, n)` each
    /// round.
    pub fn start<W>(helpers: usize, dispatch: &Dispatch, work: W) -> Crew
    where
        W: Fn(usize, u64) + Send + Sync + 'static,
    {
        let shared = Arc::new(CrewShared::default());
        let work = Arc::new(work);
        let ready = Arc::new(Barrier::new(helpers + 1));
        let handles = (1..=helpers)
            .map(|t| {
                let (shared, work, ready) = (shared.clone(), work.clone(), ready.clone());
                let dispatch = dispatch.clone();
                std::thread::Builder::new()
                    .name(format!("producer-{t}"))
                    .spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            let span = request_span();
                            let _entered = span.enter();
                            ready.wait();
                            let mut seen = 0;
                            loop {
                                // No deadline: the coordinator may legitimately
                                // spend long between rounds (criterion analysis).
                                let mut spins = 0u32;
                                while shared.round.load(Ordering::Acquire) == seen {
                                    if spins < 10_000 {
                                        spins += 1;
                                        std::hint::spin_loop();
                                    } else {
                                        std::thread::yield_now();
                                    }
                                }
                                seen = shared.round.load(Ordering::Acquire);
                                if shared.stop.load(Ordering::Acquire) {
                                    break;
                                }
                                work(t, shared.share.load(Ordering::Relaxed));
                                shared.done.fetch_add(1, Ordering::Release);
                            }
                        });
                    })
                    .expect("spawn a producer thread")
            })
            .collect();
        ready.wait();
        Crew { shared, handles }
    }

    /// Producers in all, this thread included.
    pub fn threads(&self) -> usize {
        self.handles.len() + 1
    }

    /// One round: every helper emits `helper_share` events through `work`
    /// while this thread runs `own`. Returns the wall time from releasing the
    /// helpers to the last producer finishing.
    pub fn round(&self, helper_share: u64, own: impl FnOnce()) -> Duration {
        let target = self.shared.done.load(Ordering::Acquire) + self.handles.len() as u64;
        self.shared.share.store(helper_share, Ordering::Relaxed);
        let start = Instant::now();
        self.shared.round.fetch_add(1, Ordering::Release);
        own();
        if !self.handles.is_empty() {
            wait_until("producer threads", || {
                self.shared.done.load(Ordering::Acquire) >= target
            });
        }
        start.elapsed()
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.round.fetch_add(1, Ordering::Release);
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// How a burst of `n` events is split: (per helper, this thread).
pub fn split(n: u64, threads: usize) -> (u64, u64) {
    let per = n / threads as u64;
    (per, n - per * (threads as u64 - 1))
}

/// Criterion's measurement loop: `events` events from `threads` producers,
/// in bursts of at most `pipeline.burst()`, with `pipeline.settle()` (flush,
/// or wait for the consumer) between bursts, outside the timed sections.
/// Returns the summed wall time of the bursts.
pub fn timed_bursts<P: Pipeline>(pipeline: &P, threads: usize, events: u64) -> Duration {
    assert!(threads >= 1);
    tracing::dispatcher::with_default(pipeline.dispatch(), || {
        let span = request_span();
        let _entered = span.enter();
        let crew = Crew::start(threads - 1, pipeline.dispatch(), |_, n| emit_n(n));
        let mut total = Duration::ZERO;
        let mut left = events;
        while left > 0 {
            let n = left.min(pipeline.burst());
            let (helper, own) = split(n, threads);
            total += crew.round(helper, || emit_n(own));
            pipeline.settle(n);
            left -= n;
        }
        total
    })
}

/// Splits a binary COPY stream into streams of at most `per` tuples each,
/// every one with the stream's header and a trailer.
pub fn split_copy(stream: &[u8], per: usize) -> Vec<Vec<u8>> {
    // Header: 11-byte signature, 4-byte flags, 4-byte extension length.
    let ext = u32::from_be_bytes(stream[15..19].try_into().unwrap()) as usize;
    let header = &stream[..19 + ext];
    let mut at = header.len();
    let mut out = Vec::new();
    let mut batch = header.to_vec();
    let mut in_batch = 0;
    loop {
        let fields = i16::from_be_bytes(stream[at..at + 2].try_into().unwrap());
        if fields == -1 {
            break;
        }
        let start = at;
        at += 2;
        for _ in 0..fields {
            let len = i32::from_be_bytes(stream[at..at + 4].try_into().unwrap());
            at += 4 + len.max(0) as usize;
        }
        batch.extend_from_slice(&stream[start..at]);
        in_batch += 1;
        if in_batch == per {
            batch.extend_from_slice(&(-1i16).to_be_bytes());
            out.push(std::mem::replace(&mut batch, header.to_vec()));
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        batch.extend_from_slice(&(-1i16).to_be_bytes());
        out.push(batch);
    }
    out
}
