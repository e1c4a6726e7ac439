//! End-to-end tests of the pipeline against a real PostgreSQL:
//! exact contents, accounting, shutdown, and span context.

use ringtrail_testkit as common;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::dispatcher;

const THREADS: usize = 4;
const PER_THREAD: usize = 25_000;

fn emit(t: usize, i: usize) {
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(
                $level,
                thread = t as u64,
                seq = i as u64,
                flag = i % 2 == 0,
                ratio = i as f64 / 4.0,
                delta = -(i as i64),
                name = "svc",
                "event {t}-{i}"
            )
        };
    }
    match i % 4 {
        0 => at!(tracing::Level::INFO),
        1 => at!(tracing::Level::WARN),
        2 => at!(tracing::Level::ERROR),
        _ => at!(tracing::Level::DEBUG),
    }
}

fn expected_level(i: usize) -> i16 {
    [9, 13, 17, 5][i % 4]
}

#[test]
fn every_event_lands_exactly_once_with_its_contents() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).capacity(1 << 17));
    thread::scope(|s| {
        for t in 0..THREADS {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                dispatcher::with_default(&dispatch, || {
                    let user = format!("user-{t}");
                    let outer = tracing::info_span!("session", user_id = %user, session_id = "sess-1", trace_id = tracing::field::Empty);
                    let _o = outer.enter();
                    outer.record("trace_id", format!("trace-{t}").as_str());
                    let inner = tracing::info_span!("worker", task_id = t as u64);
                    let _i = inner.enter();
                    for i in 0..PER_THREAD {
                        emit(t, i);
                    }
                });
            });
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(stats.dropped, 0, "capacity exceeds the event count");
    assert_eq!(stats.enqueued, (THREADS * PER_THREAD) as u64);
    assert_eq!(stats.written, stats.enqueued);

    let mut db = common::client(&url);
    let rows = db
        .query(
            "SELECT message, level, target, fields::text, trace_id, user_id, session_id, task_id,
                    context_id, client_id, span_name, truncated, id::text, file, line
             FROM ringtrail.logs",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), THREADS * PER_THREAD);
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for row in &rows {
        let fields: serde_json::Value = serde_json::from_str(row.get(3)).unwrap();
        let t = fields["thread"].as_u64().unwrap() as usize;
        let i = fields["seq"].as_u64().unwrap() as usize;
        *seen.entry((t, i)).or_default() += 1;
        assert_eq!(row.get::<_, &str>(0), format!("event {t}-{i}"));
        assert_eq!(row.get::<_, i16>(1), expected_level(i));
        assert_eq!(row.get::<_, &str>(2), module_path!());
        assert_eq!(
            fields,
            json!({"thread": t, "seq": i, "flag": i.is_multiple_of(2), "ratio": i as f64 / 4.0,
                   "delta": -(i as i64), "name": "svc"})
        );
        assert_eq!(
            row.get::<_, Option<&str>>(4),
            Some(format!("trace-{t}").as_str())
        );
        assert_eq!(
            row.get::<_, Option<&str>>(5),
            Some(format!("user-{t}").as_str())
        );
        assert_eq!(row.get::<_, Option<&str>>(6), Some("sess-1"));
        assert_eq!(row.get::<_, Option<&str>>(7), Some(t.to_string().as_str()));
        assert_eq!(row.get::<_, Option<&str>>(8), None);
        assert_eq!(row.get::<_, Option<&str>>(9), None);
        assert_eq!(row.get::<_, Option<&str>>(10), Some("worker"));
        assert!(!row.get::<_, bool>(11));
        assert!(ids.insert(row.get::<_, String>(12)), "ids are unique");
        assert!(row
            .get::<_, Option<&str>>(13)
            .unwrap()
            .ends_with("pipeline.rs"));
        assert!(row.get::<_, Option<i32>>(14).unwrap() > 0);
    }
    assert_eq!(
        seen.len(),
        THREADS * PER_THREAD,
        "every (thread, seq) present"
    );
    assert!(seen.values().all(|&n| n == 1), "exactly once");
}

#[test]
fn counters_add_up_when_a_tiny_ring_overflows() {
    let url = common::database();
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .capacity(8)
            .overflow(ringtrail::OverflowPolicy::DropNewest),
    );
    let mut emitted = 0u64;
    // Bursts far faster than one COPY row each: the ring must overflow.
    // Repeat until it has, so the test never passes without exercising drops.
    for _ in 0..50 {
        thread::scope(|s| {
            for t in 0..2 {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    dispatcher::with_default(&dispatch, || {
                        for i in 0..5_000u64 {
                            tracing::info!(t, i, "burst");
                        }
                    })
                });
            }
        });
        emitted += 10_000;
        if guard.stats().dropped > 0 {
            break;
        }
    }
    guard.flush().unwrap();
    let stats = guard.stats();
    assert!(stats.dropped > 0, "the burst overflowed the ring");
    assert_eq!(stats.enqueued + stats.dropped, emitted);
    assert_eq!(stats.written, stats.enqueued);
    assert_eq!((stats.lost, stats.spooled, stats.dead_lettered), (0, 0, 0));
    let mut db = common::client(&url);
    let events: i64 = db
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE target <> $1",
            &[&ringtrail::DROPPED_TARGET],
        )
        .unwrap()
        .get(0);
    assert_eq!(events as u64, stats.written);
    // The table shows its own gaps: the in-band reports add up to the drops.
    let (reports, reported): (i64, Option<i64>) = {
        let r = db
            .query_one(
                "SELECT count(*), sum((fields->>'count')::bigint)::bigint FROM ringtrail.logs
                 WHERE target = $1 AND level = 13 AND fields->>'reason' = 'ring_full'
                   AND (fields->>'from')::timestamptz <= (fields->>'to')::timestamptz",
                &[&ringtrail::DROPPED_TARGET],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(reports as u64, stats.drop_reports);
    assert_eq!(reported.unwrap_or(0) as u64, stats.dropped);
}

#[test]
fn dropping_the_guard_writes_everything_enqueued_before_it() {
    let url = common::database();
    // A long flush interval: only the shutdown can have written the rows.
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .capacity(1 << 15)
            .flush_interval(Duration::from_secs(3600))
            .batch_rows(100_000),
    );
    dispatcher::with_default(&dispatch, || {
        for i in 0..20_000u64 {
            tracing::info!(i, "before shutdown");
        }
    });
    assert_eq!(guard.stats().dropped, 0);
    drop(guard);
    assert_eq!(common::count(&url), 20_000);
}

#[test]
fn shutdown_returns_the_final_counters() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        for i in 0..1_000u64 {
            tracing::warn!(i, "x");
        }
    });
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(
        (stats.enqueued, stats.written, stats.dropped),
        (1_000, 1_000, 0)
    );
    assert!(stats.batches >= 1);
    assert_eq!(common::count(&url), 1_000);
}

#[test]
fn span_context_follows_the_innermost_span_and_later_records() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        tracing::info!("no span");
        let outer = tracing::info_span!(
            "outer",
            user_id = "u-outer",
            session_id = "s-1",
            client_id = tracing::field::Empty
        );
        let inner;
        {
            let _o = outer.enter();
            tracing::info!("in outer");
            inner = tracing::info_span!("inner", user_id = "u-inner", context_id = 7u64);
            let _i = inner.enter();
            tracing::info!("in inner");
            // Recorded on the parent after the child was entered.
            outer.record("client_id", "c-late");
            tracing::info!("after parent record");
        }
        // A child entered later sees the parent's recorded value too.
        {
            let _i = inner.enter();
            tracing::info!("re-entered inner");
        }
        tracing::info!(parent: &inner, "explicit parent");
        tracing::info!(parent: None, "explicit root");
    });
    guard.flush().unwrap();
    let mut db = common::client(&url);
    let rows = db
        .query(
            "SELECT message, user_id, session_id, context_id, client_id, span_name
             FROM ringtrail.logs ORDER BY id",
            &[],
        )
        .unwrap();
    let got: Vec<[Option<String>; 6]> = rows
        .iter()
        .map(|r| std::array::from_fn(|i| r.get::<_, Option<String>>(i)))
        .collect();
    let s = |v: &str| Some(v.to_owned());
    let expected = vec![
        [s("no span"), None, None, None, None, None],
        [
            s("in outer"),
            s("u-outer"),
            s("s-1"),
            None,
            None,
            s("outer"),
        ],
        [
            s("in inner"),
            s("u-inner"),
            s("s-1"),
            s("7"),
            None,
            s("inner"),
        ],
        [
            s("after parent record"),
            s("u-inner"),
            s("s-1"),
            s("7"),
            s("c-late"),
            s("inner"),
        ],
        [
            s("re-entered inner"),
            s("u-inner"),
            s("s-1"),
            s("7"),
            s("c-late"),
            s("inner"),
        ],
        [
            s("explicit parent"),
            s("u-inner"),
            s("s-1"),
            s("7"),
            s("c-late"),
            s("inner"),
        ],
        [s("explicit root"), None, None, None, None, None],
    ];
    assert_eq!(got, expected);
}

#[test]
fn per_layer_filters_compose() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;
    let url = common::database();
    let (layer, guard) = common::builder(&url).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(layer.with_filter(LevelFilter::WARN));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("filtered out");
        tracing::warn!("kept");
        tracing::error!("kept too");
    });
    guard.flush().unwrap();
    let rows = common::client(&url)
        .query("SELECT message FROM ringtrail.logs ORDER BY id", &[])
        .unwrap();
    let messages: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(messages, ["kept", "kept too"]);
}

#[test]
fn an_error_event_is_committed_without_waiting_for_the_interval() {
    let url = common::database();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    dispatcher::with_default(&dispatch, || {
        tracing::info!("context before the error");
        tracing::error!("boom");
    });
    let start = Instant::now();
    while common::count(&url) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ERROR did not trigger a commit"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // The outcome reaches the counters just after the rows are visible.
    while guard.stats().batches == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the commit was not counted"
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(guard.stats().batches, 1, "both events in one batch");
}

#[test]
fn works_inside_a_tokio_runtime() {
    let url = common::database();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let guard = runtime.block_on(async {
        let (dispatch, guard) = common::start(common::builder(&url));
        let _default = dispatcher::set_default(&dispatch);
        tracing::info!("from async");
        tokio::task::spawn_blocking(move || {
            guard.flush().unwrap();
            guard
        })
        .await
        .unwrap()
    });
    assert_eq!(guard.stats().written, 1);
    assert_eq!(common::count(&url), 1);
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let err = ringtrail::Builder::new().build().unwrap_err();
    assert!(err.to_string().contains(".postgres(url)"), "{err}");
    let err = ringtrail::Builder::new()
        .postgres("postgres://x@127.0.0.1/db")
        .record_size(16)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("record_size"), "{err}");
    // Nothing listens on port 1.
    let err = ringtrail::Builder::new()
        .postgres("postgres://x@127.0.0.1:1/db")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ringtrail::Error::Postgres(_) | ringtrail::Error::Pool(_)
        ),
        "{err}"
    );
}

#[test]
fn a_connection_error_keeps_its_causes_down_to_the_os_error() {
    use std::error::Error as _;
    let err = ringtrail::Builder::new()
        .postgres("postgres://x@127.0.0.1:1/db")
        .build()
        .unwrap_err();
    let mut causes = Vec::new();
    let mut source = err.source();
    let mut os_error = None;
    while let Some(cause) = source {
        causes.push(cause.to_string());
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            os_error = Some(io.kind());
        }
        source = cause.source();
    }
    assert!(
        causes.iter().any(|c| c == "error connecting to server"),
        "{causes:?}"
    );
    assert_eq!(
        os_error,
        Some(std::io::ErrorKind::ConnectionRefused),
        "{causes:?}"
    );
    assert!(err.postgres().is_some());
    assert_eq!(
        err.chain(),
        "cannot connect to 127.0.0.1:1: error connecting to server: Connection refused (os error 111)"
    );
}

#[test]
fn migrations_are_idempotent_under_concurrent_starts() {
    let url = common::database();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let (_layer, guard) = common::builder(&url).build().unwrap();
                drop(guard);
            });
        }
    });
    let applied: i64 = common::client(&url)
        .query_one("SELECT count(*) FROM ringtrail.schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied as usize, ringtrail::schema::MIGRATIONS.len());
    let level: String = common::client(&url)
        .query_one("SELECT ringtrail.level_name(13::smallint)", &[])
        .unwrap()
        .get(0);
    assert_eq!(level, "WARN");
}

#[test]
fn timestamps_are_wall_clock_time_in_emission_order() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    let before = std::time::SystemTime::now();
    dispatcher::with_default(&dispatch, || {
        for i in 0..100u64 {
            tracing::info!(i, "tick");
            thread::sleep(Duration::from_millis(1));
        }
    });
    let after = std::time::SystemTime::now();
    guard.flush().unwrap();
    let rows = common::client(&url)
        .query(
            "SELECT ts, (fields->>'i')::int FROM ringtrail.logs ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 100);
    let slack = Duration::from_millis(2);
    let mut previous = before - slack;
    for (n, row) in rows.iter().enumerate() {
        let ts: std::time::SystemTime = row.get(0);
        assert_eq!(row.get::<_, i32>(1), n as i32);
        assert!(ts >= previous, "row {n} is in order");
        assert!(ts <= after + slack, "row {n} is not in the future");
        previous = ts;
    }
    let spread = previous
        .duration_since(rows[0].get::<_, std::time::SystemTime>(0))
        .unwrap();
    assert!(
        spread >= Duration::from_millis(99),
        "the 1 ms sleeps show: {spread:?}"
    );
}

#[test]
fn flush_covers_every_event_before_it_while_others_keep_emitting() {
    let url = common::database();
    flush_is_exact_with(&url, common::builder(&url).capacity(1 << 16));
}

#[test]
fn flush_is_exact_for_capacities_that_split_into_uneven_shards() {
    // 10,000 slots in 2 shards are 8,192 + 1,808; 3,001 are 2,048 + 953.
    for capacity in [10_000, 3_001] {
        let url = common::database();
        flush_is_exact_with(
            &url,
            common::builder(&url).capacity(capacity).ring_shards(2),
        );
    }
}

/// Two threads stream events while the test flushes five times; after each
/// flush, every event either thread finished before it is committed.
fn flush_is_exact_with(url: &str, builder: ringtrail::Builder) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let (dispatch, guard) = common::start(builder.overflow(common::no_drops()));
    let stop = AtomicBool::new(false);
    // The highest sequence number each thread has finished emitting.
    let emitted = [AtomicU64::new(0), AtomicU64::new(0)];
    let mut checkpoints = Vec::new();
    thread::scope(|s| {
        for (t, done) in emitted.iter().enumerate() {
            let (dispatch, stop) = (dispatch.clone(), &stop);
            s.spawn(move || {
                dispatcher::with_default(&dispatch, || {
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        tracing::info!(t = t as u64, seq, "stream");
                        done.store(seq, Ordering::Release);
                    }
                })
            });
        }
        // Stops the stream however this thread leaves the scope, a failed
        // assertion included, so a failure fails instead of hanging.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(100));
            let before = [
                emitted[0].load(Ordering::Acquire),
                emitted[1].load(Ordering::Acquire),
            ];
            guard.flush().unwrap();
            // Right after flush returns, before the stream stops: every event
            // finished before the call must already be committed.
            let mut db = common::client(url);
            for (t, &upto) in before.iter().enumerate() {
                let present: i64 = db
                    .query_one(
                        "SELECT count(*) FROM ringtrail.logs WHERE (fields->>'t')::int = $1 AND (fields->>'seq')::bigint <= $2",
                        &[&(t as i32), &(upto as i64)],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(
                    present as u64, upto,
                    "thread {t}: events 1..={upto} committed when flush returned"
                );
            }
            checkpoints.push(before);
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(
        checkpoints
            .windows(2)
            .all(|w| w[1][0] > w[0][0] && w[1][1] > w[0][1]),
        "the stream kept going"
    );
    guard.flush().unwrap();
    assert_eq!(guard.stats().dropped, 0);
}
