//! Delivery hardening against a real PostgreSQL: each test here failed
//! before its fix. A commit that outlives the client's timeout, a spool
//! with two owners or a corrupt segment, configuration errors, a read-only
//! server, a dead-letter insert that fails, an error that hits every row,
//! a batch whose lost outcome turns out committed, an event that looks
//! like a drop report, and a shutdown while events keep coming.

use ringtrail_testkit as common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringtrail::{Error, OverflowPolicy, Spool};
use tracing::dispatcher;

fn scalar(url: &str, sql: &str) -> i64 {
    common::client(url).query_one(sql, &[]).unwrap().get(0)
}

fn emit(dispatch: &tracing::Dispatch, n: u64, message: &str) {
    dispatcher::with_default(dispatch, || {
        for i in 0..n {
            tracing::info!(i, "{message}");
        }
    });
}

#[test]
fn a_commit_that_outlives_the_client_timeout_is_not_loaded_twice() {
    let url = common::migrated_database();
    // The first batch's COMMIT sleeps in a deferred trigger for longer than
    // the client waits. The retry cannot see its ledger row yet, loads the
    // rows again, and its ledger INSERT waits on the first one's key, then
    // fails with 23505 on `batches_pkey` once the first commits.
    common::client(&url)
        .batch_execute(
            "CREATE TABLE public.slept (x int);
             CREATE FUNCTION public.slow_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NOT EXISTS (SELECT 1 FROM public.slept) THEN
                 INSERT INTO public.slept VALUES (1);
                 PERFORM pg_sleep(2.5);
               END IF;
               RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ringtrail.batches
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
               EXECUTE FUNCTION public.slow_first_commit();",
        )
        .unwrap();
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .commit_timeout(Duration::from_millis(1_500))
            .stall_timeout(Duration::from_secs(10))
            .flush_interval(Duration::from_secs(3600)),
    );
    emit(&dispatch, 1_000, "once");
    guard
        .flush()
        .expect("the clash on the ledger key means committed");
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.dead_lettered, stats.lost),
        (1_000, 0, 0)
    );
    assert_eq!(
        common::event_rows(&url),
        (1_000, 1_000),
        "loaded once, not twice"
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM ringtrail.batches"), 1);
}

#[test]
fn a_spool_directory_has_one_owner() {
    let url = common::database();
    let spool = common::spool_dir("owner");
    let (_layer, first) = common::builder(&url)
        .spool(Spool::dir(&spool))
        .build()
        .unwrap();
    match common::builder(&url).spool(Spool::dir(&spool)).build() {
        Err(Error::SpoolInUse { dir }) => assert_eq!(dir, spool),
        other => panic!("a second owner must be refused: {other:?}"),
    }
    drop(first);
    let (_layer, again) = common::builder(&url)
        .spool(Spool::dir(&spool))
        .build()
        .expect("free once the first owner is gone");
    drop(again);
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn an_unreadable_segment_of_an_earlier_process_is_counted_and_reported() {
    let url = common::database();
    let spool = common::spool_dir("corrupt");
    std::fs::create_dir_all(&spool).unwrap();
    // A segment whose header claims 10 rows and whose checksum is wrong.
    let mut segment = Vec::new();
    segment.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    segment.extend_from_slice(&0u32.to_be_bytes());
    segment.extend_from_slice(&52u32.to_be_bytes());
    segment.extend_from_slice(b"RTSPOOL2");
    segment.extend_from_slice(&[7u8; 16]);
    segment.extend_from_slice(&10u32.to_be_bytes());
    segment.extend_from_slice(&0u32.to_be_bytes());
    segment.extend_from_slice(&[0u8; 16]);
    segment.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    segment.extend_from_slice(&[0xff, 0xff]);
    let name = "0000000000000000-07070707-0707-0707-0707-070707070707.pgcopy";
    std::fs::write(spool.join(name), &segment).unwrap();

    let (_dispatch, guard) = common::start(common::builder(&url).spool(Spool::dir(&spool)));
    let start = Instant::now();
    while guard.stats().inherited_lost == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            guard.stats()
        );
        thread::sleep(Duration::from_millis(50));
    }
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(stats.inherited_lost, 10);
    common::assert_counts_add_up(&stats);
    assert!(spool.join(format!("{name}.corrupt")).exists());
    let reported: i64 = common::reported_drops(&url, "inherited_lost");
    assert_eq!(reported, 10, "reported in band");
    drop(guard);
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn configuration_errors_fail_the_build_at_once_even_with_a_spool() {
    let url = common::database();
    let (base, _) = url.rsplit_once('/').unwrap();
    let spool = common::spool_dir("config");
    for (wrong, sqlstate) in [
        (format!("{base}/no_such_database_here"), "3D000"),
        (
            url.replacen("postgres://postgres@", "postgres://no_such_role@", 1),
            "28000",
        ),
    ] {
        let started = Instant::now();
        let err = ringtrail::Builder::new()
            .postgres(wrong.as_str())
            .spool(Spool::dir(&spool))
            .build()
            .expect_err("a wrong database or role is not an outage");
        assert_eq!(err.sqlstate(), Some(sqlstate), "{}", err.chain());
        // Not a timed measurement: a spool would otherwise swallow the
        // error for good, and build() would succeed.
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn a_read_only_server_after_a_failover_is_retried_not_lost() {
    let url = common::database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    // Like a primary that became a standby: new sessions are read-only, and
    // the writer's connection is gone.
    let mut admin = common::client(&url);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{db}\" SET default_transaction_read_only = on;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = 'ringtrail' AND datname = '{db}';"
        ))
        .unwrap();
    emit(&dispatch, 500, "during the failover");
    let promoted = thread::spawn(move || {
        thread::sleep(Duration::from_secs(1));
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{db}\" RESET default_transaction_read_only"
            ))
            .unwrap();
    });
    guard
        .flush()
        .expect("25006 is retried until the server takes writes");
    promoted.join().unwrap();
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.dead_lettered, stats.lost),
        (500, 0, 0)
    );
    assert_eq!(common::event_rows(&url), (500, 500));
}

#[test]
fn a_failed_dead_letter_insert_is_retried() {
    let url = common::migrated_database();
    common::client(&url)
        .batch_execute(
            "ALTER TABLE ringtrail.logs ADD CONSTRAINT no_poison CHECK (message <> 'poison');
             CREATE SEQUENCE public.dead_letter_attempts;
             CREATE FUNCTION public.refuse_first() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF nextval('public.dead_letter_attempts') = 1 THEN
                 RAISE EXCEPTION 'not now' USING ERRCODE = '40001';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_first BEFORE INSERT ON ringtrail.dead_letters
               FOR EACH ROW EXECUTE FUNCTION public.refuse_first();",
        )
        .unwrap();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    dispatcher::with_default(&dispatch, || {
        for i in 0..10u64 {
            if i == 4 {
                tracing::info!("poison");
            } else {
                tracing::info!(i, "fine");
            }
        }
    });
    guard
        .flush()
        .expect("the dead-letter insert is retried like any write");
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dead_lettered, stats.lost), (9, 1, 0));
    common::assert_counts_add_up(&stats);
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM ringtrail.dead_letters"),
        1
    );
    assert!(scalar(&url, "SELECT last_value FROM public.dead_letter_attempts") >= 2);
}

#[test]
fn an_error_that_hits_every_row_quarantines_the_batch_as_a_unit() {
    let url = common::migrated_database();
    // A new NOT NULL column the COPY does not fill: every row fails at line 1.
    common::client(&url)
        .batch_execute("ALTER TABLE ringtrail.logs ADD COLUMN required text NOT NULL")
        .unwrap();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    emit(&dispatch, 300, "refused");
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.dead_lettered, stats.lost),
        (0, 300, 0)
    );
    let row = common::client(&url)
        .query_one(
            "SELECT count(*), count(DISTINCT failed_at), min(sqlstate), count(DISTINCT line)
             FROM ringtrail.dead_letters",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 300);
    assert_eq!(row.get::<_, String>(2), "23502");
    // Row by row would take 300 statements (and O(n²) bytes re-sent); a
    // few rows, then the rest in one.
    assert!(
        row.get::<_, i64>(1) <= 4,
        "{} statements",
        row.get::<_, i64>(1)
    );
}

#[test]
fn a_batch_counted_lost_whose_commit_got_through_is_counted_written() {
    let url = common::database();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let port: u16 = url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let proxy = common::cutter::CommitCutter::start(port);
    let via_proxy = format!("postgres://postgres@127.0.0.1:{}/{db}", proxy.port);
    // No spool, no retries: the cut batch is given up and counted lost,
    // its outcome unknown.
    let (dispatch, guard) = common::start(
        common::builder(&via_proxy)
            .max_retries(0)
            .flush_interval(Duration::from_secs(3600)),
    );
    proxy.armed.store(true, Ordering::SeqCst);
    emit(&dispatch, 1_000, "cut");
    match guard.flush() {
        Err(Error::Write { fate, .. }) => assert_eq!(fate, ringtrail::Fate::Lost),
        other => panic!("the cut batch is lost for now: {other:?}"),
    }
    assert!(proxy.fired.load(Ordering::SeqCst));
    assert_eq!(guard.stats().lost, 1_000);
    // The server answers again: the next batch lands, and the ledger says
    // the first one committed after all.
    emit(&dispatch, 10, "after");
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.lost), (1_010, 0), "{stats:?}");
    common::assert_counts_add_up(&stats);
    assert_eq!(common::event_rows(&url), (1_010, 1_010));
}

#[test]
fn an_event_that_looks_like_a_drop_report_is_counted_as_an_event() {
    let url = common::migrated_database();
    common::client(&url)
        .batch_execute(
            "ALTER TABLE ringtrail.logs ADD CONSTRAINT no_poison CHECK (message <> 'poison')",
        )
        .unwrap();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    dispatcher::with_default(&dispatch, || {
        tracing::info!("first");
        tracing::info!(target: "ringtrail::dropped", count = 5u64, "an impostor");
        tracing::info!("poison");
        tracing::info!("last");
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(
        (
            stats.enqueued,
            stats.written,
            stats.dead_lettered,
            stats.drop_reports
        ),
        (4, 3, 1, 0)
    );
    common::assert_counts_add_up(&stats);
}

#[test]
fn shutdown_while_events_keep_coming_accounts_for_every_one() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).capacity(64).overflow(
        OverflowPolicy::Block {
            timeout: Duration::from_secs(10),
        },
    ));
    let stop = AtomicBool::new(false);
    let stats = thread::scope(|s| {
        let producer = s.spawn(|| {
            dispatcher::with_default(&dispatch, || {
                let mut i = 0u64;
                let mut after = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    tracing::warn!(i, "stream");
                    after = after.max(started.elapsed());
                    i += 1;
                }
                // After the shutdown, Block no longer waits its 10 s.
                let started = Instant::now();
                for j in 0..1_000u64 {
                    tracing::warn!(j, "after");
                }
                (i, started.elapsed())
            })
        });
        thread::sleep(Duration::from_millis(300));
        let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
        stop.store(true, Ordering::Relaxed);
        let (emitted, after) = producer.join().unwrap();
        assert!(
            after < Duration::from_secs(5),
            "events after shutdown waited {after:?}"
        );
        assert!(emitted >= stats.enqueued);
        stats
    });
    assert_eq!(stats.queued, 0, "nothing left in the ring: {stats:?}");
    common::assert_counts_add_up(&stats);
    assert_eq!(stats.lost, 0);
    assert_eq!(common::event_rows(&url).0 as u64, stats.written);
}
