//! Lanes and overload spill against a real PostgreSQL: several shipping
//! connections keep exactly-once and an exact `flush()`, and a database
//! slower than the inflow fills the spool instead of the ring dropping
//! events, then catches up through the ledger.

use ringtrail_testkit as common;

use std::thread;
use std::time::Duration;

use ringtrail::Spool;
use tracing::dispatcher;

fn event_rows(url: &str) -> (i64, i64) {
    let r = common::client(url)
        .query_one(
            "SELECT count(*), count(DISTINCT (fields->>'t', fields->>'i')) FROM ringtrail.logs
             WHERE target <> $1",
            &[&ringtrail::DROPPED_TARGET],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

#[test]
fn four_lanes_load_every_event_once_and_flush_stays_exact() {
    let url = common::database();
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .lanes(4)
            .batch_rows(500)
            .capacity(1 << 16)
            .overflow(common::no_drops()),
    );
    thread::scope(|s| {
        for t in 0..3u64 {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                dispatcher::with_default(&dispatch, || {
                    for i in 0..20_000u64 {
                        tracing::info!(t, i, "lane");
                    }
                })
            });
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dropped, stats.lost), (60_000, 0, 0));
    assert!(stats.batches >= 120, "{stats:?}");
    assert_eq!(event_rows(&url), (60_000, 60_000));
    let backends: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ringtrail'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(backends >= 4, "one connection per lane: {backends}");
}

#[test]
fn a_database_slower_than_the_inflow_fills_the_spool_not_the_drop_counter() {
    let url = common::migrated_database();
    let spool = common::spool_dir("spill");
    // Every COPY waits until the test lets it go: until then the database
    // takes nothing, whatever this machine's speed, so everything past
    // the batch queue must spill.
    common::client(&url)
        .batch_execute(
            "CREATE FUNCTION public.held_copy() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_advisory_lock_shared(7171); PERFORM pg_advisory_unlock_shared(7171);
                   RETURN NULL; END $$;
             CREATE TRIGGER held_copy AFTER INSERT ON ringtrail.logs
               FOR EACH STATEMENT EXECUTE FUNCTION public.held_copy();",
        )
        .unwrap();
    let mut gate = common::client(&url);
    gate.batch_execute("SELECT pg_advisory_lock(7171)").unwrap();
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .spool(Spool::dir(&spool))
            .lanes(1)
            .batch_rows(1_000)
            // Room for about one batch in flight: the rest must spill.
            .batch_queue_bytes(64 << 10)
            .capacity(4_096)
            // A full ring waits (two minutes) instead of dropping: were the
            // writer waiting on the held database instead of spilling, the
            // events below would wait out that timeout and be dropped.
            .overflow(common::no_drops()),
    );
    dispatcher::with_default(&dispatch, || {
        for i in 0..50_000u64 {
            tracing::info!(t = 0u64, i, "spill");
        }
    });
    let during = guard.stats();
    assert_eq!(during.dropped, 0, "the spool took the overload: {during:?}");
    assert!(
        during.spooled >= 40_000,
        "nothing can commit yet, so all but a few batches spilled: {during:?}"
    );
    gate.batch_execute("SELECT pg_advisory_unlock(7171)")
        .unwrap();
    // Catching up: the first lane replays the spool between live batches.
    let stats = common::settle(&guard, Duration::from_secs(120));
    assert_eq!((stats.written, stats.lost, stats.dropped), (50_000, 0, 0));
    common::assert_counts_add_up(&stats);
    assert_eq!(event_rows(&url), (50_000, 50_000), "exactly once");
    drop(guard);
    let _ = std::fs::remove_dir_all(&spool);
}
