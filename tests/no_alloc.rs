//! The hot path allocates nothing: a counting global allocator sees zero
//! allocations on the emitting thread across 10,000 events, after warm-up.
//! The writer thread's steady state is checked too: it allocates per batch,
//! never per row.

use ringtrail_testkit as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

thread_local! {
    /// Set on the thread whose allocations are being counted.
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}
static HERE: AtomicU64 = AtomicU64::new(0);
static ELSEWHERE: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged; the
// counters are atomics and the thread-local is const-initialized without a
// destructor, so counting itself never allocates or re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT_HERE.try_with(Cell::get).unwrap_or(false) {
            HERE.fetch_add(1, Ordering::Relaxed);
        } else {
            ELSEWHERE.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNT_HERE.try_with(Cell::get).unwrap_or(false) {
            HERE.fetch_add(1, Ordering::Relaxed);
        } else {
            ELSEWHERE.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded; `ptr` came from `System.alloc` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests count process-wide allocations; run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Order {
    id: u64,
    items: [&'static str; 2],
}

struct Shown(u32);
impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shown-{}", self.0)
    }
}

fn emit(i: u64) {
    let order = Order {
        id: i,
        items: ["a", "b\"c"],
    };
    tracing::info!(
        signed = -(i as i64),
        unsigned = i,
        ratio = i as f64 * 0.5,
        ok = i.is_multiple_of(2),
        name = "ringtrail",
        shown = %Shown(i as u32),
        order = ?order,
        "x={} y={:?}",
        i,
        order
    );
}

#[test]
fn the_hot_path_does_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).capacity(32_768));
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!(
            "request",
            user_id = "u-1",
            session_id = "s-1",
            trace_id = tracing::field::Empty
        );
        span.record("trace_id", "t-1");
        let _entered = span.enter();
        // Warm-up: thread-locals, the registry's span stack, lazy statics.
        for i in 0..100 {
            emit(1_000_000 + i);
        }
        COUNT_HERE.with(|c| c.set(true));
        let before = HERE.load(Ordering::Relaxed);
        for i in 0..10_000 {
            emit(i);
        }
        let allocations = HERE.load(Ordering::Relaxed) - before;
        COUNT_HERE.with(|c| c.set(false));
        assert_eq!(allocations, 0, "allocations on the hot path");
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dropped), (10_100, 0));
    // The events really carried their content.
    let row = common::client(&url)
        .query_one(
            "SELECT message, fields->>'shown', user_id, trace_id FROM ringtrail.logs
             WHERE fields->>'unsigned' = '7'",
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, &str>(0),
        r#"x=7 y=Order { id: 7, items: ["a", "b\"c"] }"#
    );
    assert_eq!(row.get::<_, &str>(1), "shown-7");
    assert_eq!(row.get::<_, Option<&str>>(2), Some("u-1"));
    assert_eq!(row.get::<_, Option<&str>>(3), Some("t-1"));
}

#[test]
fn audit_points_through_the_typed_api_do_not_allocate() {
    use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};
    use std::time::Duration;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).capacity(32_768));
    let trace = |n: u64| {
        let trace = Trace::start(Identity::user("u-1").session("s-1").auth_method("oidc"));
        trace.agent(Agent::new("planner").model("gpt-4o").provider("openai"));
        trace.permission(Permission::allow("p-7").tool("search").call_id("c1"));
        trace.tool(
            Tool::mcp("search")
                .call_id("c1")
                .duration(Duration::from_micros(n))
                .status(Status::Ok)
                .usage(n, 2, 0),
        );
        trace.finish(Finish::success().tokens_total(n).cost_micro_usd(7));
        // And one dropped unfinished: its `abandoned` result, too.
        drop(Trace::with_id("t-dropped", Identity::from_span()));
    };
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", user_id = "u-1");
        let _entered = span.enter();
        for n in 0..20 {
            trace(n); // warm-up: the trace-id generator's thread-local
        }
        COUNT_HERE.with(|c| c.set(true));
        let before = HERE.load(Ordering::Relaxed);
        for n in 0..1_000 {
            trace(n);
        }
        let allocations = HERE.load(Ordering::Relaxed) - before;
        COUNT_HERE.with(|c| c.set(false));
        assert_eq!(allocations, 0, "allocations for audit points");
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dropped), (1_020 * 7, 0));
}

#[test]
fn the_writer_allocates_per_batch_not_per_row() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let url = common::database();
    let batch_rows = 5_000;
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .capacity(1 << 17)
            .batch_rows(batch_rows)
            .flush_interval(std::time::Duration::from_secs(3600)),
    );
    // Warm the writer's buffers with one full batch.
    tracing::dispatcher::with_default(&dispatch, || (0..batch_rows as u64).for_each(emit));
    guard.flush().unwrap();
    // This thread's allocations are not the writer's: count only elsewhere.
    let stats_before = guard.stats();
    COUNT_HERE.with(|c| c.set(true));
    let before = ELSEWHERE.load(Ordering::Relaxed);
    let rows = 100_000u64;
    tracing::dispatcher::with_default(&dispatch, || (0..rows).for_each(emit));
    guard.flush().unwrap();
    let writer_allocations = ELSEWHERE.load(Ordering::Relaxed) - before;
    COUNT_HERE.with(|c| c.set(false));
    let stats = guard.stats();
    assert_eq!(stats.written, batch_rows as u64 + rows);
    let batches = stats.batches - stats_before.batches;
    assert!(batches >= (rows as usize / batch_rows) as u64);
    // Shipping a batch costs the client some allocations (messages,
    // futures); a row must cost none. A per-row allocation would show up
    // as at least 100,000 here.
    assert!(
        writer_allocations < batches * 200 && writer_allocations < rows / 20,
        "{writer_allocations} allocations for {rows} rows in {batches} batches"
    );
}

#[test]
fn the_writer_decodes_pushed_records_without_allocating_per_row() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let url = common::database();
    let batch_rows = 5_000;
    let (_layer, guard) = common::builder(&url)
        .capacity(1 << 17)
        .batch_rows(batch_rows)
        .flush_interval(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    let ingest = guard.ingest();
    let fields = [
        ringtrail::Field {
            name: "http.status",
            value: ringtrail::Value::I64(200),
        },
        ringtrail::Field {
            name: "route",
            value: ringtrail::Value::Str("/v1/orders"),
        },
        ringtrail::Field {
            name: "user_id",
            value: ringtrail::Value::Str("u-1"),
        },
    ];
    let mut context = [None; ringtrail::row::CONTEXT_LEN];
    context[0] = Some("4bf92f3577b34da6a3ce929d0e0e4736");
    let record = ringtrail::Record {
        ts_unix_nanos: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64,
        target: "gateway.access",
        message: "GET /v1/orders",
        span_name: Some("request"),
        context,
        fields: &fields,
        ..ringtrail::Record::default()
    };
    let records = vec![record; 1_000];
    let push = |n: usize| {
        for _ in 0..n / records.len() {
            while ingest.push_all(&records).is_err() {
                std::thread::yield_now();
            }
        }
    };
    // Warm the writer's buffers with one full batch.
    push(batch_rows);
    guard.flush().unwrap();
    let stats_before = guard.stats();
    COUNT_HERE.with(|c| c.set(true));
    let before = ELSEWHERE.load(Ordering::Relaxed);
    let rows = 100_000;
    push(rows);
    guard.flush().unwrap();
    let writer_allocations = ELSEWHERE.load(Ordering::Relaxed) - before;
    COUNT_HERE.with(|c| c.set(false));
    let stats = guard.stats();
    assert_eq!(stats.written, (batch_rows + rows) as u64);
    let batches = stats.batches - stats_before.batches;
    assert!(
        writer_allocations < batches * 200 && writer_allocations < rows as u64 / 20,
        "{writer_allocations} allocations for {rows} pushed rows in {batches} batches"
    );
}

#[test]
fn events_too_big_for_a_slot_do_not_allocate_either() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let url = common::database();
    // The default ring: a large size class of 32 slots of 16 KiB.
    let (dispatch, guard) = common::start(common::builder(&url));
    let medium = "m".repeat(10_000); // moves to a large slot, whole
    let huge = "h".repeat(100_000); // cut, with its original length
    let emit_big = |i: u64| {
        tracing::info!(
            i,
            before = "b",
            "{}",
            if i.is_multiple_of(2) { &medium } else { &huge }
        );
    };
    tracing::dispatcher::with_default(&dispatch, || {
        (0..20).for_each(emit_big);
        guard.flush().unwrap();
        COUNT_HERE.with(|c| c.set(true));
        let before = HERE.load(Ordering::Relaxed);
        for i in 0..1_000 {
            emit_big(i);
            if i % 16 == 15 {
                // Let the writer free the large slots now and then.
                COUNT_HERE.with(|c| c.set(false));
                guard.flush().unwrap();
                COUNT_HERE.with(|c| c.set(true));
            }
        }
        let allocations = HERE.load(Ordering::Relaxed) - before;
        COUNT_HERE.with(|c| c.set(false));
        assert_eq!(allocations, 0, "allocations on the hot path for big events");
    });
    guard.flush().unwrap();
    assert_eq!(guard.stats().written, 1_020);
}
