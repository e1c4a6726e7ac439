//! Delivery guarantees under faults, against a real PostgreSQL that the
//! tests crash, stop and cut off: exactly-once batches, retries, poison-row
//! quarantine, spool and replay, shutdown deadlines, overflow policies.
//!
//! Each fault test owns its cluster (the shared one serves other tests in
//! parallel and must stay up).

use ringtrail_testkit as common;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use ringtrail::{OverflowPolicy, Spool};
use ringtrail_cluster::{ClusterOptions, StopMode, TempCluster};
use tracing::dispatcher;

fn cluster() -> TempCluster {
    TempCluster::start_with(&ClusterOptions {
        fsync: false,
        settings: Vec::new(),
    })
    .expect("a throwaway cluster")
}

#[test]
fn a_crash_mid_stream_loses_and_duplicates_nothing() {
    let pg = cluster();
    let url = pg.create_database("crash").unwrap();
    let spool = common::spool_dir("crash");
    // Durable commits: with synchronous_commit off, a server crash may lose
    // the last acknowledged commits (documented), which is not this test.
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .synchronous_commit(true)
            .capacity(1 << 15)
            .spool(Spool::dir(&spool).after(Duration::from_millis(500))),
    );
    const PER_THREAD: u64 = 100_000;
    thread::scope(|s| {
        for t in 0..2u64 {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                dispatcher::with_default(&dispatch, || {
                    // About three seconds of steady stream per thread.
                    let start = Instant::now();
                    for i in 0..PER_THREAD {
                        tracing::info!(t, i, "steady");
                        if i % 100 == 99 {
                            let due = Duration::from_micros(i * 30);
                            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                                thread::sleep(ahead);
                            }
                        }
                    }
                })
            });
        }
        // Crash the server partway through, restart it a few seconds later.
        thread::sleep(Duration::from_millis(1000));
        pg.stop(StopMode::Immediate).unwrap();
        thread::sleep(Duration::from_secs(3));
        pg.start_again().unwrap();
    });
    let stats = common::settle(&guard, Duration::from_secs(90));
    eprintln!("after the crash: {stats:?}");
    assert_eq!(stats.enqueued + stats.dropped, 2 * PER_THREAD, "{stats:?}");
    assert_eq!(stats.written, stats.enqueued, "{stats:?}");
    common::assert_counts_add_up(&stats);
    let (rows, distinct) = common::event_rows(&url);
    assert_eq!(
        rows as u64, stats.enqueued,
        "every enqueued event is in the table"
    );
    assert_eq!(distinct, rows, "exactly once: no id twice");
    let distinct_events: i64 = common::client(&url)
        .query_one(
            "SELECT count(DISTINCT (fields->>'t', fields->>'i')) FROM ringtrail.logs WHERE message = 'steady'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(distinct_events, rows, "no event twice");
    assert_eq!(common::segments(&spool), 0, "replayed segments are deleted");
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn events_spool_while_the_server_is_down_at_start_and_land_when_it_starts() {
    let pg = cluster();
    let url = pg.create_database("down").unwrap();
    pg.stop(StopMode::Fast).unwrap();
    let spool = common::spool_dir("down");
    let (layer, guard) = common::builder(&url)
        .spool(Spool::dir(&spool))
        .build()
        .expect("a spool makes a down server tolerable");
    dispatcher::with_default(&common::dispatch(layer), || {
        for i in 0..5_000u64 {
            tracing::warn!(i, "while down");
        }
    });
    let flushed = guard.flush();
    assert!(
        flushed.is_err(),
        "the flush reports that its events were spooled, not committed"
    );
    let stats = guard.stats();
    assert_eq!((stats.spooled, stats.written), (5_000, 0), "{stats:?}");
    assert!(common::segments(&spool) > 0);
    pg.start_again().unwrap();
    let stats = common::settle(&guard, Duration::from_secs(60));
    assert_eq!(
        (stats.written, stats.spooled, stats.enqueued),
        (5_000, 0, 5_000)
    );
    common::assert_counts_add_up(&stats);
    assert_eq!(common::event_rows(&url), (5_000, 5_000));
    assert_eq!(common::segments(&spool), 0);
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn a_poison_row_is_dead_lettered_and_the_rest_of_its_batch_lands() {
    let url = common::database();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    common::client(&url)
        .batch_execute(
            "ALTER TABLE ringtrail.logs ADD CONSTRAINT no_poison CHECK (message <> 'poison')",
        )
        .unwrap();
    dispatcher::with_default(&dispatch, || {
        for i in 0..100u64 {
            if i == 50 {
                tracing::info!(i, "poison");
            } else {
                tracing::info!(i, "fine");
            }
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.dead_lettered, stats.enqueued),
        (99, 1, 100)
    );
    common::assert_counts_add_up(&stats);
    let mut db = common::client(&url);
    assert_eq!(common::event_rows(&url).0, 99);
    let dead = db
        .query(
            "SELECT sqlstate, line, message, tuple FROM ringtrail.dead_letters",
            &[],
        )
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get::<_, &str>(0), "23514");
    assert_eq!(
        dead[0].get::<_, Option<i32>>(1),
        Some(51),
        "line N of the batch, 1-based"
    );
    assert!(dead[0].get::<_, &str>(2).contains("no_poison"));
    let tuple: &[u8] = dead[0].get(3);
    assert_eq!(
        i16::from_be_bytes([tuple[0], tuple[1]]) as usize,
        ringtrail::encode::copy::LOG_COLUMNS.len(),
        "a whole COPY tuple"
    );
    assert!(tuple.windows(6).any(|w| w == b"poison"));
}

#[test]
fn a_failure_without_a_line_is_bisected_down_to_the_bad_row() {
    let url = common::database();
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(Duration::from_secs(3600)));
    // A deferred constraint trigger fails at COMMIT, where the error names
    // no COPY line.
    common::client(&url)
        .batch_execute(
            "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.message = 'poison' THEN
                 RAISE EXCEPTION 'poison at commit' USING ERRCODE = '23514';
               END IF;
               RETURN NULL;
             END $$;
             CREATE CONSTRAINT TRIGGER reject_poison AFTER INSERT ON ringtrail.logs
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reject_poison();",
        )
        .unwrap();
    dispatcher::with_default(&dispatch, || {
        for i in 0..37u64 {
            tracing::info!(i, "{}", if i == 23 { "poison" } else { "fine" });
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dead_lettered), (36, 1), "{stats:?}");
    common::assert_counts_add_up(&stats);
    let dead = common::client(&url)
        .query(
            "SELECT line, message, tuple FROM ringtrail.dead_letters",
            &[],
        )
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].get::<_, Option<i32>>(0),
        None,
        "the server named no line"
    );
    assert!(dead[0]
        .get::<_, &[u8]>(2)
        .windows(6)
        .any(|w| w == b"poison"));
    let fine: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE message = 'fine'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(fine, 36);
}

#[test]
fn a_batch_whose_commit_outcome_is_unknown_is_not_duplicated() {
    let url = common::database();
    let db_name = url.rsplit('/').next().unwrap().to_owned();
    let port: u16 = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = common::cutter::CommitCutter::start(port);
    let via_proxy = format!("postgres://postgres@127.0.0.1:{}/{db_name}", proxy.port);
    let (dispatch, guard) =
        common::start(common::builder(&via_proxy).flush_interval(Duration::from_secs(3600)));
    proxy.armed.store(true, Ordering::SeqCst);
    dispatcher::with_default(&dispatch, || {
        for i in 0..1_000u64 {
            tracing::info!(i, "once");
        }
    });
    guard
        .flush()
        .expect("the retry finds the batch in the ledger");
    assert!(
        proxy.fired.load(Ordering::SeqCst),
        "the connection was cut after COMMIT"
    );
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.enqueued, stats.lost),
        (1_000, 1_000, 0)
    );
    common::assert_counts_add_up(&stats);
    assert_eq!(
        common::event_rows(&url),
        (1_000, 1_000),
        "committed once, not twice"
    );
    let ledger: i64 = common::client(&url)
        .query_one("SELECT count(*) FROM ringtrail.batches", &[])
        .unwrap()
        .get(0);
    assert_eq!(ledger, 1);
}

#[test]
fn a_shutdown_deadline_spools_the_rest_and_the_next_start_replays_it() {
    let pg = cluster();
    let url = pg.create_database("deadline").unwrap();
    let spool = common::spool_dir("deadline");
    let deadline = Duration::from_secs(2);
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .synchronous_commit(true)
            .spool(Spool::dir(&spool))
            .shutdown_timeout(deadline)
            .flush_interval(Duration::from_secs(3600)),
    );
    dispatcher::with_default(&dispatch, || {
        for i in 0..1_000u64 {
            tracing::info!(i, "before the outage");
        }
    });
    guard.flush().unwrap();
    pg.stop(StopMode::Immediate).unwrap();
    dispatcher::with_default(&dispatch, || {
        for i in 0..2_000u64 {
            tracing::info!(i, "during the outage");
        }
    });
    let stats_before = guard.stats();
    let start = Instant::now();
    drop(guard);
    let took = start.elapsed();
    // The guard waits at most the deadline; the slack is only for the
    // scheduler of a busy CI machine.
    assert!(
        took <= deadline + Duration::from_millis(250),
        "drop took {took:?}"
    );
    assert!(
        common::segments(&spool) > 0,
        "the unwritten events are in the spool"
    );
    assert_eq!(stats_before.enqueued, 3_000);

    pg.start_again().unwrap();
    let (_layer, guard) = common::builder(&url)
        .spool(Spool::dir(&spool))
        .build()
        .unwrap();
    let start = Instant::now();
    while guard.stats().recovered < 2_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            guard.stats()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(guard.stats().recovered, 2_000);
    assert_eq!(common::event_rows(&url), (3_000, 3_000));
    assert_eq!(common::segments(&spool), 0);
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn block_waits_for_room_instead_of_dropping() {
    let url = common::database();
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .capacity(16)
            .overflow(common::no_drops()),
    );
    dispatcher::with_default(&dispatch, || {
        for i in 0..20_000u64 {
            tracing::info!(i, "blocking");
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.dropped, stats.written), (0, 20_000), "{stats:?}");
    assert_eq!(common::event_rows(&url).0, 20_000);
}

#[test]
fn drop_oldest_evicts_old_events_and_keeps_the_newest() {
    let url = common::database();
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .capacity(8)
            .overflow(OverflowPolicy::DropOldest),
    );
    let mut emitted = 0u64;
    dispatcher::with_default(&dispatch, || {
        while guard.stats().dropped_evicted == 0 && emitted < 1_000_000 {
            for _ in 0..10_000 {
                tracing::info!(i = emitted, "churn");
                emitted += 1;
            }
        }
        tracing::info!(i = emitted, "newest");
        emitted += 1;
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert!(stats.dropped_evicted > 0, "{stats:?}");
    assert_eq!(stats.enqueued + stats.dropped, emitted);
    assert_eq!(stats.written, stats.enqueued);
    common::assert_counts_add_up(&stats);
    let newest: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE message = 'newest'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(newest, 1, "the newest event is never the one evicted");
    let reported: i64 = common::reported_drops(&url, "evicted_oldest");
    assert_eq!(
        reported as u64, stats.dropped_evicted,
        "evictions are reported in band"
    );
}

#[test]
fn a_panic_flushes_before_the_previous_hook_runs() {
    let url = common::database();
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .flush_interval(Duration::from_secs(3600))
            .flush_on_panic(true),
    );
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dispatcher::with_default(&dispatch, || {
            for i in 0..10u64 {
                tracing::error!(i, "just before the panic");
            }
            panic!("boom");
        })
    }));
    assert!(outcome.is_err());
    // No flush was called: the hook committed them.
    assert_eq!(common::event_rows(&url).0, 10);
    drop(guard);
}

#[test]
fn a_block_timeout_drops_and_counts_the_event() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).capacity(4).overflow(
        OverflowPolicy::Block {
            timeout: Duration::from_micros(1),
        },
    ));
    let mut emitted = 0u64;
    while guard.stats().dropped_block_timeout == 0 && emitted < 2_000_000 {
        thread::scope(|s| {
            for t in 0..2u64 {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    dispatcher::with_default(&dispatch, || {
                        for i in 0..10_000u64 {
                            tracing::warn!(t, i, "flood");
                        }
                    })
                });
            }
        });
        emitted += 20_000;
    }
    guard.flush().unwrap();
    let stats = guard.stats();
    assert!(stats.dropped_block_timeout > 0, "{stats:?}");
    assert_eq!(
        stats.dropped,
        stats.dropped_block_timeout + stats.dropped_ring_full + stats.dropped_evicted
    );
    assert_eq!(stats.enqueued + stats.dropped, emitted);
    assert_eq!(stats.written, stats.enqueued);
    common::assert_counts_add_up(&stats);
    let reported: i64 = common::reported_drops(&url, "block_timeout");
    assert_eq!(reported as u64, stats.dropped_block_timeout);
}

/// Rewrites the spool directory `dir` as an older version left it: every
/// segment in the third format (`RTSPOOL3`: no MAC, which came with the
/// spool's key) with 16-column tuples (before `kind` and `redacted`), CRC
/// recomputed, and no `spool.key`. Each tuple's last three fields must
/// be `kind` NULL, `redacted` 0 and `seq`.
fn downgrade_segments_to_16_columns(dir: &std::path::Path) -> usize {
    const HEADER: usize = 19;
    const MAC: usize = 32;
    const TAIL: [u8; 10] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 0];
    std::fs::remove_file(dir.join("spool.key")).unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pgcopy") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let ext_len = u32::from_be_bytes(data[15..19].try_into().unwrap()) as usize;
        let ext = &data[HEADER..HEADER + ext_len];
        assert_eq!(&ext[..8], b"RTSPOOL4");
        // The fields and the chain, without the MAC and the CRC.
        let mut ext = ext[..ext_len - MAC - 4].to_vec();
        ext[..8].copy_from_slice(b"RTSPOOL3");
        let stream = &data[HEADER + ext_len..];
        // Walk the tuples with the plain header in front, as `tuples` expects.
        let mut plain = data[..HEADER].to_vec();
        plain[15..19].copy_from_slice(&0u32.to_be_bytes());
        plain.extend_from_slice(stream);
        let mut body = Vec::new();
        for range in ringtrail::encode::copy::tuples(&plain) {
            let tuple = &plain[range];
            // Today's 19 columns end with `kind`, `redacted`, then `seq`
            // (an int8: 4 + 8 bytes).
            assert_eq!(&tuple[..2], &19i16.to_be_bytes());
            let cut = tuple.len() - 12 - 10;
            assert_eq!(&tuple[cut..cut + 10], &TAIL);
            body.extend_from_slice(&16i16.to_be_bytes());
            body.extend_from_slice(&tuple[2..cut]);
        }
        body.extend_from_slice(&(-1i16).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&ext);
        crc.update(&body);
        ext.extend_from_slice(&crc.finalize().to_be_bytes());
        let mut out = data[..HEADER].to_vec();
        out[15..19].copy_from_slice(&(ext.len() as u32).to_be_bytes());
        out.extend_from_slice(&ext);
        out.extend_from_slice(&body);
        std::fs::write(&path, out).unwrap();
        n += 1;
    }
    n
}

#[test]
fn segments_spooled_by_an_older_version_replay_into_todays_table() {
    let spool = common::spool_dir("older-version");
    {
        // The server is unreachable: everything spools.
        let (layer, guard) = ringtrail::Builder::new()
            .postgres("postgres://postgres@127.0.0.1:1/none")
            .spool(Spool::dir(&spool).after(Duration::ZERO))
            .max_retries(0)
            .build()
            .unwrap();
        let dispatch = common::dispatch(layer);
        dispatcher::with_default(&dispatch, || {
            for i in 0..50u64 {
                tracing::info!(i, "written by an older version");
            }
        });
        let _ = guard.flush();
        assert_eq!(guard.stats().spooled, 50);
    }
    assert!(downgrade_segments_to_16_columns(&spool) > 0);

    let url = common::database();
    let (_layer, guard) = common::builder(&url)
        .spool(Spool::dir(&spool))
        .build()
        .unwrap();
    let start = Instant::now();
    while guard.stats().recovered < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            guard.stats()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(common::event_rows(&url), (50, 50));
    let (dead, kinds, redacted): (i64, i64, i64) = {
        let r = common::client(&url)
            .query_one(
                "SELECT (SELECT count(*) FROM ringtrail.dead_letters),
                        count(kind), sum(redacted)::bigint
                 FROM ringtrail.logs",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        (dead, kinds, redacted),
        (0, 0, 0),
        "loaded whole, new columns at their defaults"
    );
    assert_eq!(common::segments(&spool), 0);
    let _ = std::fs::remove_dir_all(&spool);
}

/// M7: a ledger row planted under a batch's id (a spooled batch's id is
/// in its segment's file name; live ones are unpredictable) is not taken
/// as that batch committed: the batch commits under an id of its own, and
/// every row lands.
#[test]
fn a_planted_ledger_row_does_not_swallow_a_batch() {
    let pg = cluster();
    let url = pg.create_database("planted").unwrap();
    common::apply_schema(&url, None);
    pg.stop(StopMode::Fast).unwrap();
    let spool = common::spool_dir("planted");
    let (layer, guard) = common::builder(&url)
        .spool(Spool::dir(&spool))
        .build()
        .expect("a spool makes a down server tolerable");
    dispatcher::with_default(&common::dispatch(layer), || {
        for i in 0..500u64 {
            tracing::warn!(i, "spooled, then planted on");
        }
    });
    let _ = guard.shutdown(Duration::from_secs(5));
    // `<seq>-<batch id>.pgcopy`
    let ids: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".pgcopy")?;
            Some(stem.split_once('-')?.1.to_owned())
        })
        .collect();
    assert!(!ids.is_empty(), "the events were spooled");
    pg.start_again().unwrap();
    common::client(&url)
        .execute(
            "INSERT INTO ringtrail.batches (batch_id, rows, bytes, first_ts, last_ts) \
             SELECT id::uuid, 0, 0, now(), now() FROM unnest($1::text[]) id",
            &[&ids],
        )
        .unwrap();
    let (_layer, guard) = common::builder(&url)
        .spool(Spool::dir(&spool))
        .build()
        .unwrap();
    // Inherited segments are replayed by the first lane on its own.
    let started = Instant::now();
    while common::segments(&spool) > 0 && started.elapsed() < Duration::from_secs(60) {
        thread::sleep(Duration::from_millis(20));
    }
    let stats = common::settle(&guard, Duration::from_secs(60));
    common::assert_counts_add_up(&stats);
    assert_eq!(
        common::event_rows(&url),
        (500, 500),
        "every spooled row landed: {stats:?}; segments left {}; ledger {:?}",
        common::segments(&spool),
        common::client(&url)
            .query("SELECT batch_id::text, rows FROM ringtrail.batches", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1)))
            .collect::<Vec<_>>()
    );
    assert_eq!(common::segments(&spool), 0);
    let _ = std::fs::remove_dir_all(&spool);
}
