//! What one enabled `tracing` event costs the thread that emits it.
//!
//! Run with `cargo bench --bench hot_path` (add e.g.
//! `-- --warm-up-time 0.5 --measurement-time 1` for a quick look, or a
//! filter such as `-- hot_path/` to run one group). `cargo test --benches`
//! runs every benchmark once, as a smoke test.
//!
//! # Group `hot_path`
//!
//! Every variant emits the same event, a formatted message plus four fields
//! of mixed types, inside an entered `request` span carrying user, session
//! and trace ids (see `support::emit` and `support::request_span`):
//!
//! ```text
//! tracing::info!(user_id_hash = 42u64, latency = 1.5f64, ok = true,
//!                route = "/v1/orders", "request {} took {}ms", i, 3);
//! ```
//!
//! | variant | subscriber |
//! |---|---|
//! | `ringtrail` | ringtrail's `Layer` on a registry, `Builder::new().null_sink()` with the default 16,384 × 512-byte ring; the writer thread decodes and encodes every batch to binary COPY exactly as for PostgreSQL, then discards the bytes |
//! | `tracing_appender_json` | `tracing_subscriber::fmt::layer().json()` writing to `tracing_appender::non_blocking(sink)` (lossy, 128,000 lines: the defaults), on a registry |
//! | `database_layer_replica` | the `DatabaseLayer` design ringtrail replaces (`support/replica.rs`): an owned, boxed entry per event (about ten allocations) sent with `try_send` to a tokio mpsc of 8,192 drained by a tokio task |
//! | `noop_layer` | a registry with a layer whose `on_event` only reads the metadata: the floor for any layer, and the baseline of ringtrail's target (≤ 5×) |
//! | `visit_layer` | a registry with a layer that visits every field and formats the message into a stack buffer, storing nothing: the least any layer that keeps the event must do |
//! | `no_subscriber` | `Dispatch::none()`: the floor of the macro alone |
//! | `*_2_threads` | the same, with two producer threads at once |
//!
//! Consumers run all the time, concurrently with the producers, as they
//! would in a service. The ring or channel must never fill, or a variant
//! would measure the cheap "drop" path; so each variant is timed in bursts
//! (`iter_custom`): at most half of ringtrail's ring (8,192 events), 8,192
//! lines for tracing-appender, 4,096 entries for the replica. Between bursts,
//! outside the timed section, the harness waits for the consumer to catch
//! up (`Guard::flush()` for ringtrail; for the others, until the consumer
//! has counted every line or entry). After each sample the harness asserts,
//! again untimed, that nothing was lost (`Guard::stats().dropped == 0`,
//! the appender's `dropped_lines() == 0`, no failed `try_send`).
//!
//! Per-event cost is **wall time of the bursts ÷ events emitted by all
//! producers**. With two producers, producer 0 (the bench thread) starts the
//! clock, releases the second (a spinning helper thread), emits its half,
//! waits for the helper to finish its half and stops the clock. Criterion's
//! throughput line (`Throughput::Elements(1)` per iteration) is therefore
//! total events per second across both threads; time per iteration is the
//! amortized cost per event, not one thread's latency (see
//! `benches/latency.rs` for that). Note that the machine the numbers come
//! from matters here: on two cores, two producers plus a consumer thread
//! oversubscribe the CPU.
//!
//! # Group `hot_path_parts`
//!
//! What the parts of ringtrail's hot path cost alone, in the same run as
//! `hot_path/visit_layer`, so that each reads as a share of the floor:
//!
//! * `clock_raw`: one raw clock reading (`quanta::Clock::raw`: the TSC
//!   here), what every event stores as its time.
//! * `fence_seqcst`: the `SeqCst` fence before the doorbell's check (see
//!   `src/ring/doorbell.rs`).
//! * `slot_handoff`: the ring's two queues alone: pop a slot index from a
//!   `free` `ArrayQueue<u32>`, push it on a `ready` one, while a consumer
//!   thread does what the writer does with indices (pop `ready`, push
//!   `free`). No record bytes.
//! * `slot_handoff_128B`: the same, and the producer writes 128 bytes into
//!   the slot (16,384 slots of 512 bytes, as the default ring), which the
//!   consumer reads: the cache lines a record moves between the cores.
//!
//! The two hand-offs are timed in bursts of 2,048 with the consumer
//! running; between bursts the harness waits, untimed, for it to catch up.
//!
//! # Group `record_copy`
//!
//! Backs the claim in `src/ring/mod.rs` that moving a 4-byte slot index
//! through the queues is much cheaper than moving the 512-byte record
//! itself: one push plus one pop on a single thread, through
//! `ArrayQueue<[u8; 512]>` (the record is copied into the queue and out
//! again) versus `ArrayQueue<u32>`. Only queue transfer is measured; writing
//! the event's bytes once happens in either design.
//!
//! # Group `context_capture`
//!
//! The two ways `src/capture/context.rs` discusses of attaching span context
//! to a record. In both, the producer writes an 8-byte header word into the
//! next slot of a 16,384 × 512-byte pool (rotating, so slots are as cold as
//! in the real ring) and passes a handle through an `ArrayQueue` (capacity
//! 4,096) to a consumer thread that spins on `pop`:
//!
//! * `memcpy_packed_120B`: copy a 120-byte packed context (the layout of
//!   `pack_context`: presence mask, then `len:u8 utf8` per id) into the slot
//!   and push the slot index (`u32`); the consumer pops and discards it.
//! * `arc_clone_remote_drop`: clone an `Arc` of the span's context, store its
//!   pointer in the slot, and push the `Arc`; the consumer pops it and drops
//!   it, so the reference count's cache line moves between the two cores on
//!   every event.
//!
//! Both are timed on the producer, in bursts of 2,048 with the consumer
//! running concurrently; between bursts the harness waits, untimed, for the
//! queue to empty, so a descheduled consumer (busy machine) cannot make the
//! producer spin on a full queue. If the consumer does not run during a
//! burst, the `Arc` variant pays no cross-core traffic in it, so on an
//! oversubscribed machine that variant reads optimistically.

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;

use support::replica::Replica;
use support::{timed_bursts, Appender, Floor, Pipeline, Ringtrail};

/// Benchmarks one pipeline with `threads` producers, then checks (untimed)
/// that nothing was lost.
fn bench_pipeline<P: Pipeline>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    pipeline: &P,
    threads: usize,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|events| {
            let elapsed = timed_bursts(pipeline, threads, events);
            assert_eq!(pipeline.dropped(), 0, "{name}: events were lost");
            elapsed
        })
    });
}

fn hot_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(1));
    {
        let ringtrail = Ringtrail::new();
        bench_pipeline(&mut group, "ringtrail", &ringtrail, 1);
        bench_pipeline(&mut group, "ringtrail_2_threads", &ringtrail, 2);
        assert_eq!(ringtrail.stats().dropped, 0, "ringtrail dropped events");
    }
    {
        let appender = Appender::new();
        bench_pipeline(&mut group, "tracing_appender_json", &appender, 1);
        bench_pipeline(&mut group, "tracing_appender_json_2_threads", &appender, 2);
    }
    {
        let replica = Replica::new();
        bench_pipeline(&mut group, "database_layer_replica", &replica, 1);
        bench_pipeline(&mut group, "database_layer_replica_2_threads", &replica, 2);
    }
    bench_pipeline(&mut group, "noop_layer", &Floor::noop_layer(), 1);
    bench_pipeline(&mut group, "noop_layer_2_threads", &Floor::noop_layer(), 2);
    bench_pipeline(&mut group, "visit_layer", &Floor::visit_layer(), 1);
    bench_pipeline(&mut group, "no_subscriber", &Floor::no_subscriber(), 1);
    group.finish();
}

/// Slots of the `slot_handoff_128B` pool: 512 bytes as 64 words, so that
/// both threads may touch them safely (relaxed atomics compile to plain
/// moves on x86-64).
struct Words([std::sync::atomic::AtomicU64; 64]);

/// The consumer of `slot_handoff*`: pops `ready`, reads `read_words` words
/// of the slot, pushes the index back on `free`, until stopped.
fn handoff_consumer(
    free: Arc<ArrayQueue<u32>>,
    ready: Arc<ArrayQueue<u32>>,
    slots: Arc<Vec<Words>>,
    read_words: usize,
    stop: Arc<AtomicBool>,
) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut sum = 0u64;
        loop {
            match ready.pop() {
                Some(index) => {
                    let slot = &slots[index as usize].0;
                    for word in &slot[..read_words] {
                        sum = sum.wrapping_add(word.load(Ordering::Relaxed));
                    }
                    let _ = free.push(index);
                }
                None if stop.load(Ordering::Relaxed) => return sum,
                None => std::hint::spin_loop(),
            }
        }
    })
}

fn hot_path_parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_path_parts");
    group.throughput(Throughput::Elements(1));
    let clock = quanta::Clock::new();
    group.bench_function("clock_raw", |b| b.iter(|| black_box(clock.raw())));
    group.bench_function("fence_seqcst", |b| {
        b.iter(|| std::sync::atomic::fence(Ordering::SeqCst))
    });
    for (name, words) in [("slot_handoff", 0), ("slot_handoff_128B", 16)] {
        let free = Arc::new(ArrayQueue::<u32>::new(POOL_SLOTS));
        for i in 0..POOL_SLOTS as u32 {
            let _ = free.push(i);
        }
        let ready = Arc::new(ArrayQueue::<u32>::new(POOL_SLOTS));
        let slots: Arc<Vec<Words>> = Arc::new(
            (0..POOL_SLOTS)
                .map(|_| Words(std::array::from_fn(|_| Default::default())))
                .collect(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = handoff_consumer(
            free.clone(),
            ready.clone(),
            slots.clone(),
            words,
            stop.clone(),
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(2_048);
                    let start = Instant::now();
                    for i in done..done + n {
                        let index = loop {
                            match free.pop() {
                                Some(index) => break index,
                                None => std::hint::spin_loop(),
                            }
                        };
                        let slot = &slots[index as usize].0;
                        for word in &slot[..words] {
                            word.store(i, Ordering::Relaxed);
                        }
                        push_spin(&ready, index);
                    }
                    total += start.elapsed();
                    support::wait_until("the slot_handoff consumer", || ready.is_empty());
                    done += n;
                }
                total
            })
        });
        stop.store(true, Ordering::Relaxed);
        black_box(consumer.join().expect("the consumer"));
    }
    group.finish();
}

fn record_copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_copy");
    group.throughput(Throughput::Elements(1));

    let records: ArrayQueue<[u8; 512]> = ArrayQueue::new(1_024);
    let mut record = [0u8; 512];
    for (i, byte) in record.iter_mut().enumerate() {
        *byte = i as u8;
    }
    group.bench_function("array_queue_512B_record", |b| {
        b.iter(|| {
            let _ = records.push(black_box(record));
            black_box(records.pop())
        })
    });

    let indices: ArrayQueue<u32> = ArrayQueue::new(1_024);
    group.bench_function("array_queue_u32_index", |b| {
        b.iter(|| {
            let _ = indices.push(black_box(7));
            black_box(indices.pop())
        })
    });
    group.finish();
}

/// A consumer thread that pops and drops until stopped.
struct Drainer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drainer {
    fn start<T: Send + 'static>(queue: Arc<ArrayQueue<T>>) -> Drainer {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::spawn(move || loop {
                match queue.pop() {
                    Some(item) => drop(black_box(item)),
                    None if stop.load(Ordering::Relaxed) => break,
                    None => std::hint::spin_loop(),
                }
            })
        };
        Drainer {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Pushes, spinning while the consumer lags.
#[inline]
fn push_spin<T>(queue: &ArrayQueue<T>, mut item: T) {
    while let Err(back) = queue.push(item) {
        item = back;
        std::hint::spin_loop();
    }
}

/// One cache-line-aligned ring slot.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot([u8; 512]);

const POOL_SLOTS: usize = 16_384;
/// Capacity of the handle queue between producer and consumer.
const QUEUE_CAPACITY: usize = 4_096;

/// A span's context as the `Arc` design would share it: the span metadata
/// pointer, the packed ids, and the truncated flag (as `SpanContext` in
/// src/capture/context.rs).
struct SharedContext {
    _span: usize,
    _packed: Box<[u8]>,
    _truncated: bool,
}

/// Six ids packed like `pack_context`: mask byte, then `len:u8 utf8` each.
fn packed_context() -> Vec<u8> {
    let ids = [
        "4bf92f3577b34da6a3ce929d0e0e4736", // trace_id (32)
        "u-7f3a9c2e41d8b605",               // user_id (18)
        "s-0d9e4c7b2a61f358e2c4",           // session_id (22)
        "task-5e1f0a2b3c4d",                // task_id (17)
        "ctx-9a8b7c6d5e4f",                 // context_id (16)
        "cli-3e2d",                         // client_id (8)
    ];
    let mut packed = vec![0b11_1111u8];
    for id in ids {
        packed.push(id.len() as u8);
        packed.extend_from_slice(id.as_bytes());
    }
    packed
}

/// Times `op(i)` in bursts of half the queue, waiting (untimed) between
/// bursts for the consumer to empty it, so a descheduled consumer never
/// makes the producer spin on a full queue.
fn timed_remote<T>(queue: &ArrayQueue<T>, iters: u64, mut op: impl FnMut(u64)) -> Duration {
    let burst = (queue.capacity() / 2) as u64;
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(burst);
        let start = Instant::now();
        for i in done..done + n {
            op(i);
        }
        total += start.elapsed();
        support::wait_until("the context_capture consumer", || queue.is_empty());
        done += n;
    }
    total
}

fn context_capture(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_capture");
    group.throughput(Throughput::Elements(1));
    let packed = packed_context();
    assert_eq!(packed.len(), 120);
    let mut slots = vec![Slot([0; 512]); POOL_SLOTS];

    {
        let queue = Arc::new(ArrayQueue::<u32>::new(QUEUE_CAPACITY));
        let _drainer = Drainer::start(queue.clone());
        group.bench_function("memcpy_packed_120B", |b| {
            b.iter_custom(|iters| {
                timed_remote(&queue, iters, |i| {
                    let index = i as usize % POOL_SLOTS;
                    let slot = &mut slots[index].0;
                    slot[0..8].copy_from_slice(&i.to_ne_bytes());
                    let packed = black_box(packed.as_slice());
                    slot[32..32 + packed.len()].copy_from_slice(packed);
                    push_spin(&queue, index as u32);
                })
            })
        });
    }
    {
        let shared = Arc::new(SharedContext {
            _span: 0x1000,
            _packed: packed.clone().into_boxed_slice(),
            _truncated: false,
        });
        let queue = Arc::new(ArrayQueue::<Arc<SharedContext>>::new(QUEUE_CAPACITY));
        let _drainer = Drainer::start(queue.clone());
        group.bench_function("arc_clone_remote_drop", |b| {
            b.iter_custom(|iters| {
                timed_remote(&queue, iters, |i| {
                    let index = i as usize % POOL_SLOTS;
                    let slot = &mut slots[index].0;
                    slot[0..8].copy_from_slice(&i.to_ne_bytes());
                    let context = Arc::clone(black_box(&shared));
                    slot[32..40].copy_from_slice(&(Arc::as_ptr(&context) as usize).to_ne_bytes());
                    push_spin(&queue, context);
                })
            })
        });
    }
    group.finish();
}

/// What each `OverflowPolicy` costs the caller when the ring is full.
///
/// A ring of 16 records behind a null-sink writer, fed flat out by one
/// thread: the producer outruns the writer (which decodes and encodes
/// every record), so most events find the ring full and take the policy's
/// slow path. Reported per event, drops included; the drop share is
/// printed after each variant. While the ring has room, every policy costs
/// the same (the policy runs only after `claim()` fails), which the
/// `hot_path/ringtrail` variant measures.
fn overflow(c: &mut Criterion) {
    use ringtrail::OverflowPolicy;
    use tracing_subscriber::layer::SubscriberExt;
    let mut group = c.benchmark_group("overflow");
    group.throughput(Throughput::Elements(1));
    let policies = [
        ("drop_newest", OverflowPolicy::DropNewest),
        ("drop_oldest", OverflowPolicy::DropOldest),
        (
            "block_1ms",
            OverflowPolicy::Block {
                timeout: Duration::from_millis(1),
            },
        ),
    ];
    for (name, policy) in policies {
        let (layer, guard) = ringtrail::Builder::new()
            .null_sink()
            .capacity(16)
            .overflow(policy)
            .build()
            .expect("a null-sink pipeline");
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || {
            let span = support::request_span();
            let _entered = span.enter();
            let mut i = 0u64;
            group.bench_function(name, |b| {
                b.iter(|| {
                    support::emit(i);
                    i += 1;
                })
            });
        });
        let _ = guard.flush();
        let stats = guard.stats();
        let total = stats.enqueued + stats.dropped;
        eprintln!(
            "overflow/{name}: {:.1}% of {total} events dropped (ring full {}, evicted {}, block timeout {})",
            100.0 * stats.dropped as f64 / total.max(1) as f64,
            stats.dropped_ring_full,
            stats.dropped_evicted,
            stats.dropped_block_timeout
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = hot_path, hot_path_parts, record_copy, context_capture, overflow
}
criterion_main!(benches);
