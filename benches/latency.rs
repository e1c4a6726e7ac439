//! Per-event hot-path latency distribution, and the memory each design
//! holds for its queue.
//!
//! Run with `cargo bench --bench latency` (a few seconds once built). Set
//! `RINGTRAIL_LATENCY_EVENTS` to change the number of measured events per
//! variant (default 200,000). Under `cargo test --benches`, or whenever the
//! binary is started without `--bench`, it does a tiny run (2,000 events)
//! so the smoke test stays fast.
//!
//! # Latency
//!
//! The event and span are those of `benches/hot_path.rs` (see
//! `support::emit`). Each event is timed on its own thread with the TSC:
//! `lfence; rdtsc; lfence` before and after it, so the event's
//! instructions can neither start before the first read nor finish after
//! the second. Ticks are converted to nanoseconds with a frequency
//! calibrated against `Instant` over 50 ms at start-up. The overhead of the
//! two reads themselves (the median of 100,000 empty measurements) is
//! printed and subtracted from every sample, floored at zero; a sample is
//! thus "nanoseconds the event added". Off x86-64, `Instant::now()` is used
//! the same way.
//!
//! Variants: ringtrail (`Builder::new().null_sink()`, default ring), the
//! `DatabaseLayer` replica (`support/replica.rs`) and
//! `tracing_subscriber::fmt::layer().json()` over
//! `tracing_appender::non_blocking` (lossy, 128,000 lines), each with one,
//! two and four producer threads (the replica with one and two), plus
//! `Dispatch::none()` as the floor. On a machine with fewer cores than
//! producers plus the consumer, the many-thread rows measure contention
//! for the CPU as much as for the ring: read them beside the appender's
//! rows at the same thread count, measured in the same run.
//! Each producer records into its own `hdrhistogram::Histogram` (3
//! significant digits); the table shows the merged distribution. Events are
//! emitted in bursts that cannot fill the ring or channel (half of
//! ringtrail's ring, 8,192 appender lines, 4,096 replica entries), and
//! between bursts the harness waits for the consumer to catch up, untimed.
//! A tenth as many warm-up events as measured ones (at least 1,000) run
//! first and are not recorded. The last column counts events lost (ring or
//! channel full); it should be 0.
//!
//! # Memory
//!
//! For each design, at its default size: the queue's memory budget,
//! computed from its layout (estimated: structure sizes mirror the
//! libraries' private types, read from crossbeam-queue 0.3, crossbeam-channel
//! 0.5 and tokio 1.x sources), next to what is measured in a fresh child
//! process (this binary re-run with `RINGTRAIL_LATENCY_MEMORY_CHILD` set):
//! resident set size (`VmRSS` from `/proc/self/status`) before building the
//! pipeline, after building it, and after filling its queue once; and heap
//! bytes requested, counted by this binary's global allocator (a wrapper
//! around `System` that only counts in the child). ringtrail's writer cannot
//! be paused, so its ring is "filled" by emitting `capacity` events: the free
//! list is FIFO, so the first `capacity` claims touch every slot once. The
//! appender's worker and the replica's task are held at a gate while their
//! channels fill, then released.
//!
//! The counting allocator is also linked into the latency run, where it
//! costs one relaxed load of a never-written flag per allocation.

mod support;

/// Producer thread counts for ringtrail and tracing-appender.
const PRODUCERS: [usize; 3] = [1, 2, 4];

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::mem::{size_of, MaybeUninit};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use support::replica::{self, Replica};
use support::{
    emit, request_span, split, Appender, Crew, Floor, Pipeline, Ringtrail, APPENDER_LINES,
    RINGTRAIL_CAPACITY, RINGTRAIL_RECORD_SIZE,
};

const EVENTS_ENV: &str = "RINGTRAIL_LATENCY_EVENTS";
const MEMORY_CHILD_ENV: &str = "RINGTRAIL_LATENCY_MEMORY_CHILD";
const DEFAULT_EVENTS: u64 = 200_000;
const QUICK_EVENTS: u64 = 2_000;

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

/// `System`, plus byte and call counters that only run while [`COUNTING`]
/// is set (in the memory child process).
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Allocation calls made by this thread while counting.
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

impl CountingAlloc {
    #[inline]
    fn count_alloc(size: usize) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATED.fetch_add(size as u64, Ordering::Relaxed);
            // A const-initialized Cell has no destructor, so this never
            // fails; `try_with` keeps the allocator panic-free regardless.
            let _ = THREAD_ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    }
    #[inline]
    fn count_free(size: usize) {
        if COUNTING.load(Ordering::Relaxed) {
            FREED.fetch_add(size as u64, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; the counting touches only atomics and
// a destructor-free thread-local, and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count_alloc(layout.size());
        // SAFETY: the caller's obligations for `alloc` are passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count_alloc(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::count_free(layout.size());
        // SAFETY: `ptr` was allocated by `System` with `layout` (every
        // allocation goes through this wrapper to `System`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count_free(layout.size());
        Self::count_alloc(new_size);
        // SAFETY: as for `dealloc`; `new_size` obligations are the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Heap bytes requested and not yet freed while counting, all threads.
fn live_heap() -> i64 {
    ALLOCATED.load(Ordering::Relaxed) as i64 - FREED.load(Ordering::Relaxed) as i64
}

fn thread_allocs() -> u64 {
    THREAD_ALLOCS.with(Cell::get)
}

/// `VmRSS` of this process in bytes, where `/proc` has it.
fn vm_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

// ---------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------

/// Timestamps for one measurement, and their conversion to nanoseconds.
#[derive(Clone, Copy)]
struct Clock {
    ns_per_tick: f64,
    /// Median ticks of an empty measurement, subtracted from every sample.
    overhead: u64,
}

#[cfg(target_arch = "x86_64")]
mod ticks {
    use std::arch::x86_64::{_mm_lfence, _rdtsc};

    pub const SOURCE: &str = "TSC (lfence; rdtsc; lfence on both sides)";

    /// Reads the TSC once every earlier instruction has completed, before
    /// any later one starts.
    #[inline(always)]
    #[allow(unused_unsafe)] // the intrinsics are safe to call in newer Rust
    pub fn read() -> u64 {
        // SAFETY: `lfence` and `rdtsc` exist on every x86-64 CPU (SSE2 is
        // baseline) and have no memory-safety preconditions.
        unsafe {
            _mm_lfence();
            let t = _rdtsc();
            _mm_lfence();
            t
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod ticks {
    use std::sync::OnceLock;
    use std::time::Instant;

    pub const SOURCE: &str = "Instant::now()";

    /// Nanoseconds since the first call.
    #[inline(always)]
    pub fn read() -> u64 {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

impl Clock {
    fn calibrate() -> Clock {
        let (t0, i0) = (ticks::read(), Instant::now());
        while i0.elapsed() < Duration::from_millis(50) {
            std::hint::spin_loop();
        }
        let (t1, elapsed) = (ticks::read(), i0.elapsed());
        let ns_per_tick = elapsed.as_nanos() as f64 / (t1 - t0).max(1) as f64;
        let mut empty = Histogram::<u64>::new(3).expect("histogram");
        for _ in 0..100_000 {
            let a = ticks::read();
            let b = ticks::read();
            empty.saturating_record(b.saturating_sub(a));
        }
        Clock {
            ns_per_tick,
            overhead: empty.value_at_quantile(0.5),
        }
    }

    fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 * self.ns_per_tick
    }
}

// ---------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------

fn histogram() -> Histogram<u64> {
    // Ticks, up to about 100 s at 5 GHz.
    Histogram::new_with_bounds(1, 500_000_000_000, 3).expect("histogram bounds")
}

/// Emits `n` events, recording each one's ticks (minus the clock overhead).
#[inline(never)]
fn timed_events(h: &mut Histogram<u64>, clock: &Clock, n: u64) {
    for i in 0..n {
        let a = ticks::read();
        emit(i);
        let b = ticks::read();
        h.saturating_record(b.saturating_sub(a).saturating_sub(clock.overhead));
    }
}

/// Runs `events` events from `threads` producers, in bursts with the
/// pipeline settled between them, and returns the merged distribution.
fn measure<P: Pipeline>(pipeline: &P, threads: usize, events: u64, clock: Clock) -> Histogram<u64> {
    let histograms: Arc<Vec<Mutex<Histogram<u64>>>> =
        Arc::new((0..threads).map(|_| Mutex::new(histogram())).collect());
    tracing::dispatcher::with_default(pipeline.dispatch(), || {
        let span = request_span();
        let _entered = span.enter();
        let crew = {
            let histograms = histograms.clone();
            Crew::start(threads - 1, pipeline.dispatch(), move |t, n| {
                let mut h = histograms[t].lock().unwrap_or_else(|e| e.into_inner());
                timed_events(&mut h, &clock, n);
            })
        };
        let mut left = events;
        while left > 0 {
            let n = left.min(pipeline.burst());
            let (helper, own) = split(n, threads);
            crew.round(helper, || {
                let mut h = histograms[0].lock().unwrap_or_else(|e| e.into_inner());
                timed_events(&mut h, &clock, own);
            });
            pipeline.settle(n);
            left -= n;
        }
    });
    let mut merged = histogram();
    for h in histograms.iter() {
        merged
            .add(&*h.lock().unwrap_or_else(|e| e.into_inner()))
            .expect("histograms share bounds");
    }
    merged
}

struct Row {
    variant: &'static str,
    threads: usize,
    events: u64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
    dropped: u64,
}

fn run_variant<P: Pipeline>(
    variant: &'static str,
    pipeline: &P,
    threads: usize,
    events: u64,
    clock: Clock,
) -> Row {
    let warm_up = (events / 10).max(1_000);
    let _ = measure(pipeline, threads, warm_up, clock);
    let h = measure(pipeline, threads, events, clock);
    Row {
        variant,
        threads,
        events: h.len(),
        p50: clock.ns(h.value_at_quantile(0.5)),
        p99: clock.ns(h.value_at_quantile(0.99)),
        p999: clock.ns(h.value_at_quantile(0.999)),
        max: clock.ns(h.max()),
        mean: h.mean() * clock.ns_per_tick,
        dropped: pipeline.dropped(),
    }
}

fn latency_table(events: u64, clock: Clock) {
    let mut rows = Vec::new();
    rows.push(run_variant(
        "no_subscriber",
        &Floor::no_subscriber(),
        1,
        events,
        clock,
    ));
    for threads in PRODUCERS {
        rows.push(run_variant(
            "ringtrail",
            &Ringtrail::new(),
            threads,
            events,
            clock,
        ));
    }
    for threads in PRODUCERS {
        rows.push(run_variant(
            "tracing_appender_json",
            &Appender::new(),
            threads,
            events,
            clock,
        ));
    }
    for threads in [1, 2] {
        rows.push(run_variant(
            "database_layer_replica",
            &Replica::new(),
            threads,
            events,
            clock,
        ));
    }

    println!("## Per-event latency (ns)\n");
    println!(
        "Clock: {}, {:.3} GHz; timer overhead {:.1} ns (median, subtracted from every sample).\n",
        ticks::SOURCE,
        1.0 / clock.ns_per_tick,
        clock.ns(clock.overhead)
    );
    println!("| variant | threads | events | p50 | p99 | p99.9 | max | mean | dropped |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            r.variant, r.threads, r.events, r.p50, r.p99, r.p999, r.max, r.mean, r.dropped
        );
    }
    println!();
}

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

/// The layout of a `crossbeam_queue::ArrayQueue` slot and of a
/// `crossbeam_channel` array-flavor slot: a stamp, then the value.
#[allow(dead_code)]
struct QueueSlot<T> {
    stamp: AtomicUsize,
    value: MaybeUninit<T>,
}

/// tracing-appender's private message type.
#[allow(dead_code)]
enum AppenderMsg {
    Line(Vec<u8>),
    Shutdown,
}

/// The message the replica (and the original) sends: a boxed entry or a
/// flush request.
#[allow(dead_code)]
enum ReplicaMsg {
    Entry(Box<replica::LogEntry>),
    FlushNow,
}

/// Slots per block of tokio's mpsc list on 64-bit targets
/// (`tokio::sync::mpsc::BLOCK_CAP`).
const TOKIO_BLOCK_CAP: usize = 32;

/// A tokio mpsc block: a 4-word header and `BLOCK_CAP` value slots.
fn tokio_block_bytes<T>() -> usize {
    4 * size_of::<usize>() + TOKIO_BLOCK_CAP * size_of::<T>()
}

/// Runs in the child process: builds one pipeline at its default size,
/// fills its queue once, and prints `key=value` measurements on one line.
fn memory_child(variant: &str) {
    // Let lazily initialized runtime state settle before the baseline.
    let _ = vm_rss();
    COUNTING.store(true, Ordering::Relaxed);
    let rss0 = vm_rss().unwrap_or(0);
    let heap0 = live_heap();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_owned(), v));

    let (rss1, heap1, rss2, heap2);
    match variant {
        "ringtrail" => {
            let pipeline = Ringtrail::new();
            rss1 = vm_rss().unwrap_or(0);
            heap1 = live_heap();
            let (allocs, events) = fill(&pipeline, RINGTRAIL_CAPACITY as u64, true);
            rss2 = vm_rss().unwrap_or(0);
            heap2 = live_heap();
            put("events", events.to_string());
            put("caller_allocs", allocs.to_string());
            put("dropped", pipeline.dropped().to_string());
            put("layer", pipeline.layer.replace(' ', "_"));
        }
        "appender" => {
            let pipeline = Appender::paused();
            rss1 = vm_rss().unwrap_or(0);
            heap1 = live_heap();
            // The worker takes one line and blocks writing it; the channel
            // then holds APPENDER_LINES more.
            let target = APPENDER_LINES as u64 + 1;
            let (allocs, events) = fill(&pipeline, target, false);
            rss2 = vm_rss().unwrap_or(0);
            heap2 = live_heap();
            put("events", events.to_string());
            put("caller_allocs", allocs.to_string());
            put("dropped", pipeline.dropped().to_string());
            pipeline.resume();
            pipeline.settle(events);
            let (lines, bytes) = pipeline.written();
            put("lines", lines.to_string());
            put("line_bytes", bytes.to_string());
        }
        "replica" => {
            let pipeline = Replica::paused();
            rss1 = vm_rss().unwrap_or(0);
            heap1 = live_heap();
            let target = replica::CHANNEL_CAPACITY as u64;
            let (allocs, events) = fill(&pipeline, target, false);
            rss2 = vm_rss().unwrap_or(0);
            heap2 = live_heap();
            put("events", events.to_string());
            put("caller_allocs", allocs.to_string());
            put("dropped", pipeline.dropped().to_string());
            pipeline.resume();
            pipeline.settle(events);
        }
        other => panic!("unknown memory variant {other}"),
    }
    put("rss0", rss0.to_string());
    put("rss1", rss1.to_string());
    put("rss2", rss2.to_string());
    put("heap_build", (heap1 - heap0).to_string());
    put("heap_fill", (heap2 - heap1).to_string());
    let line: Vec<String> = out.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("MEMORY {}", line.join(" "));
}

/// Emits `events` events on this thread. With `settle` (ringtrail, whose
/// writer runs) they go in bursts of `pipeline.burst()` with a flush in
/// between; without it (a paused consumer) in one go. Returns the
/// allocation calls this thread made during the events, and their number.
fn fill<P: Pipeline>(pipeline: &P, events: u64, settle: bool) -> (u64, u64) {
    tracing::dispatcher::with_default(pipeline.dispatch(), || {
        let span = request_span();
        let _entered = span.enter();
        let mut allocs = 0;
        let mut left = events;
        while left > 0 {
            let n = if settle {
                left.min(pipeline.burst())
            } else {
                left
            };
            let before = thread_allocs();
            for i in 0..n {
                emit(i);
            }
            allocs += thread_allocs() - before;
            left -= n;
            if settle {
                pipeline.settle(n);
            }
        }
        (allocs, events)
    })
}

fn mib(bytes: f64) -> String {
    format!("{:.2} MiB", bytes / (1024.0 * 1024.0))
}

fn run_child(variant: &str) -> Option<HashMap<String, String>> {
    let exe = std::env::current_exe().ok()?;
    let output = Command::new(exe)
        .env(MEMORY_CHILD_ENV, variant)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "memory child {variant} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("MEMORY "))?;
    Some(
        line.split(' ')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

fn memory_section() {
    println!("## Memory at default size\n");
    let get = |m: &HashMap<String, String>, k: &str| -> f64 {
        m.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    };

    // Computed budgets.
    let ring_slots = (RINGTRAIL_CAPACITY * RINGTRAIL_RECORD_SIZE) as f64;
    let ring_queues = (2 * RINGTRAIL_CAPACITY * size_of::<QueueSlot<u32>>()) as f64;
    let appender_slots = (APPENDER_LINES * size_of::<QueueSlot<AppenderMsg>>()) as f64;
    let replica_blocks = replica::CHANNEL_CAPACITY.div_ceil(TOKIO_BLOCK_CAP) as f64
        * tokio_block_bytes::<ReplicaMsg>() as f64;

    let ring = run_child("ringtrail");
    let appender = run_child("appender");
    let replica = run_child("replica");

    println!("Computed from layouts (estimates where marked):\n");
    println!(
        "* ringtrail: slots {} × {} B = {} (exact, allocated at build, resident as used), \
         plus two `ArrayQueue<u32>` of {} slots × {} B (stamp + value, padded) = {}; \
         total {}. Fixed: a full ring needs no more.",
        RINGTRAIL_CAPACITY,
        RINGTRAIL_RECORD_SIZE,
        mib(ring_slots),
        RINGTRAIL_CAPACITY,
        size_of::<QueueSlot<u32>>(),
        mib(ring_queues),
        mib(ring_slots + ring_queues)
    );
    if let Some(ring) = &ring {
        println!(
            "  As built: `{}`.",
            ring.get("layer")
                .map_or("?".into(), |l| l.replace('_', " "))
        );
    }
    let line_heap = appender
        .as_ref()
        .map_or(f64::NAN, |m| get(m, "heap_fill") / get(m, "events"));
    let line_len = appender
        .as_ref()
        .map_or(f64::NAN, |m| get(m, "line_bytes") / get(m, "lines"));
    println!(
        "* tracing-appender: `bounded({})` channel of {} B slots (24 B `Vec<u8>` + stamp) = {} \
         (allocated and touched at build); when full, plus one heap line per slot: \
         {:.0} B of JSON per line here, {:.0} B of heap requested per queued event \
         (measured) ⇒ {} more. Total when full ≈ {}.",
        APPENDER_LINES,
        size_of::<QueueSlot<AppenderMsg>>(),
        mib(appender_slots),
        line_len,
        line_heap,
        mib(line_heap * APPENDER_LINES as f64),
        mib(appender_slots + line_heap * APPENDER_LINES as f64)
    );
    let entry_heap = replica
        .as_ref()
        .map_or(f64::NAN, |m| get(m, "heap_fill") / get(m, "events"));
    println!(
        "* database_layer_replica: tokio `mpsc::channel({})`: {} blocks of {} slots × {} B \
         (+ 32 B header) = {} (estimate; allocated as the channel fills); plus the boxed \
         entries: `LogEntry` is {} B inline, {:.0} B of heap requested per queued entry \
         (measured, channel blocks included) ⇒ {} when full.",
        replica::CHANNEL_CAPACITY,
        replica::CHANNEL_CAPACITY.div_ceil(TOKIO_BLOCK_CAP),
        TOKIO_BLOCK_CAP,
        size_of::<ReplicaMsg>(),
        mib(replica_blocks),
        size_of::<replica::LogEntry>(),
        entry_heap,
        mib(entry_heap * replica::CHANNEL_CAPACITY as f64),
    );
    println!();
    println!("Measured in a fresh child process per design (RSS from /proc/self/status, heap from the counting allocator; all threads):\n");
    println!("| design | events to fill | RSS after build − before | RSS after fill − before | heap at build | heap added by fill | caller allocs / event | dropped |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, m) in [
        ("ringtrail", &ring),
        ("tracing_appender_json", &appender),
        ("database_layer_replica", &replica),
    ] {
        match m {
            Some(m) => println!(
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} |",
                name,
                get(m, "events"),
                mib(get(m, "rss1") - get(m, "rss0")),
                mib(get(m, "rss2") - get(m, "rss0")),
                mib(get(m, "heap_build")),
                mib(get(m, "heap_fill")),
                get(m, "caller_allocs") / get(m, "events"),
                get(m, "dropped"),
            ),
            None => println!("| {name} | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"),
        }
    }
    println!();
    println!(
        "Notes: RSS counts whole pages, thread stacks and allocator slack. ringtrail's \
         slots are one zeroed allocation made at build (a fresh mapping whose pages become \
         resident as records are first written into them), so its heap is fixed from the \
         start while its RSS grows to the full ring as it fills; filling also adds the \
         writer's encode buffers (batches of up to 8,192 rows). Its calling thread \
         allocates nothing. tracing-appender's channel slots are touched at build; each queued line \
         is its own heap allocation. The replica's channel blocks and entries are \
         allocated as it fills."
    );
}

fn main() {
    if let Ok(variant) = std::env::var(MEMORY_CHILD_ENV) {
        memory_child(&variant);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let events = std::env::var(EVENTS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { QUICK_EVENTS } else { DEFAULT_EVENTS });

    let started = Instant::now();
    let clock = Clock::calibrate();
    println!("# ringtrail latency bench ({events} measured events per variant)\n");
    latency_table(events, clock);
    memory_section();
    println!("(took {:.1} s)", started.elapsed().as_secs_f64());
}
