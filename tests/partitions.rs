//! Range partitions of `ringtrail.logs` against a real PostgreSQL: rows of
//! several days in their partitions, absurd dates in DEFAULT without
//! failing their batch, PostgreSQL's DEFAULT-partition trap, retention
//! (exact partitions, logged, hand-made ones judged by their bounds), the
//! migration from the plain table keeping every row, and the writer's own
//! schedule (partitions ahead, retention, clamping).

use ringtrail_testkit as common;

use std::thread;
use std::time::{Duration, Instant, SystemTime};

use ringtrail::encode::CopyEncoder;
use ringtrail::schema::partitions::{self, partition_name};
use ringtrail::schema::retention;
use ringtrail::time::micros;
use ringtrail::{Field, Partitions, Row, Value};

const DAY: Duration = Duration::from_secs(86_400);
const DAY_MICROS: i64 = 86_400_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A migrated database and a tokio-postgres client on it.
async fn migrated(url: &str) -> tokio_postgres::Client {
    let mut client = common::connect(url).await;
    ringtrail::schema::apply(&mut client).await.unwrap();
    client
}

/// One binary COPY batch (the writer's encoder) of rows at `times`
/// (Unix microseconds), each with its index as the field `n`.
fn batch(times: &[i64]) -> bytes::Bytes {
    let mut encoder = CopyEncoder::new();
    for (n, &t) in times.iter().enumerate() {
        let fields = [Field {
            name: "n",
            value: Value::U64(n as u64),
        }];
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&t.to_be_bytes());
        id[8..].copy_from_slice(&(n as u64).to_be_bytes());
        encoder.push_row(&Row {
            ts_unix_nanos: t.saturating_mul(1_000),
            id,
            target: "partitions_test",
            message: "row",
            fields: &fields,
            ..Row::default()
        });
    }
    encoder.finish()
}

/// Start of the UTC day holding `t` (microseconds).
fn day_start(t: i64) -> i64 {
    t.div_euclid(DAY_MICROS) * DAY_MICROS
}

/// `(partition, rows)` of ringtrail.logs, by partition name.
async fn rows_by_partition(client: &tokio_postgres::Client) -> Vec<(String, i64)> {
    client
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM ringtrail.logs GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn exists(client: &tokio_postgres::Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0)
}

/// The indexes of `ringtrail.<table>`, by name.
async fn index_names(client: &tokio_postgres::Client, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'ringtrail' AND tablename = $1 ORDER BY 1",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_new_install_is_partitioned_with_a_default_and_no_legacy_table() {
    let url = common::database();
    runtime().block_on(async {
        let client = migrated(&url).await;
        let kind: i8 = client
            .query_one(
                "SELECT relkind::\"char\" FROM pg_class WHERE oid = 'ringtrail.logs'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(kind as u8, b'p', "partitioned");
        assert!(exists(&client, "ringtrail.logs_default").await);
        assert!(!exists(&client, "ringtrail.logs_legacy").await);
        assert!(exists(&client, "ringtrail.retention_log").await);
        let all = partitions::list(&client).await.unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_default);
        assert_eq!(all[0].name, "ringtrail.logs_default");
        // Indexes are defined on the parent.
        let indexes: Vec<String> = client
            .query(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'ringtrail' AND tablename = 'logs' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(indexes, ["logs_audit_trace", "logs_ts_brin"]);
        assert_eq!(
            index_names(&client, "logs_default").await,
            ["logs_audit_trace_default", "logs_ts_brin_default"]
        );
    });
}

#[test]
fn rows_spanning_several_days_land_in_their_partitions() {
    let url = common::database();
    runtime().block_on(async {
        let mut client = migrated(&url).await;
        let now = SystemTime::now();
        // Two days back to two days ahead.
        let created = partitions::ensure(&mut client, DAY, 4, now - 2 * DAY)
            .await
            .unwrap();
        assert_eq!(created.len(), 5);
        let today = day_start(micros(now));
        for (i, c) in created.iter().enumerate() {
            let from = today + (i as i64 - 2) * DAY_MICROS;
            assert_eq!((c.from_micros, c.to_micros), (from, from + DAY_MICROS));
            assert_eq!(c.name, partition_name(from));
            assert_eq!(c.moved, 0);
        }
        // Rows at each day (two on the first), in one batch.
        let times: Vec<i64> = [-2, -2, -1, 0, 1, 2]
            .iter()
            .map(|d| today + d * DAY_MICROS + 3_600_000_000)
            .collect();
        assert_eq!(
            common::copy_in(&mut client, batch(&times)).await.unwrap(),
            6
        );
        let mut expected: Vec<(String, i64)> = vec![
            (partition_name(today - 2 * DAY_MICROS), 2),
            (partition_name(today - DAY_MICROS), 1),
            (partition_name(today), 1),
            (partition_name(today + DAY_MICROS), 1),
            (partition_name(today + 2 * DAY_MICROS), 1),
        ];
        expected.sort();
        assert_eq!(rows_by_partition(&client).await, expected);
        // The view reads through the parent.
        let seen: i64 = client
            .query_one("SELECT count(*) FROM ringtrail.logs_view", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(seen, 6);
        // Nothing left to do; hourly partitions fill only what is missing.
        assert!(partitions::ensure(&mut client, DAY, 2, now)
            .await
            .unwrap()
            .is_empty());
    });
}

#[test]
fn rows_dated_1970_and_2100_land_in_default_without_failing_their_batch() {
    let url = common::database();
    runtime().block_on(async {
        let mut client = migrated(&url).await;
        let now = micros(SystemTime::now());
        partitions::ensure(&mut client, DAY, 1, SystemTime::now())
            .await
            .unwrap();
        let y2100 = 4_102_444_800_000_000;
        let times = [0, now, y2100, -1_000_000];
        assert_eq!(common::copy_in(&mut client, batch(&times)).await.unwrap(), 4);
        let mut expected = vec![
            ("ringtrail.logs_default".to_owned(), 3),
            (partition_name(day_start(now)), 1),
        ];
        expected.sort();
        assert_eq!(rows_by_partition(&client).await, expected);
        let stored: Vec<i64> = client
            .query(
                "SELECT (extract(epoch FROM ts) * 1000000)::int8 FROM ringtrail.logs_default ORDER BY ts",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(stored, [-1_000_000, 0, y2100], "stored as they came");
    });
}

#[test]
fn the_default_partition_trap_is_handled_by_moving_the_rows() {
    let url = common::database();
    runtime().block_on(async {
        let mut client = migrated(&url).await;
        let now = SystemTime::now();
        let today = day_start(micros(now));
        // Today only: rows of the day after tomorrow land in DEFAULT.
        assert_eq!(
            partitions::ensure(&mut client, DAY, 0, now)
                .await
                .unwrap()
                .len(),
            1
        );
        let later = today + 2 * DAY_MICROS;
        let times = [later + 1, later + 5_000_000, later + DAY_MICROS - 1, 0];
        assert_eq!(
            common::copy_in(&mut client, batch(&times)).await.unwrap(),
            4
        );
        assert_eq!(
            rows_by_partition(&client).await,
            [("ringtrail.logs_default".to_owned(), 4)]
        );
        // The trap: PostgreSQL refuses a partition of that range while
        // DEFAULT holds rows of it.
        let name = partition_name(later);
        let plain = format!(
            "CREATE TABLE {name} PARTITION OF ringtrail.logs FOR VALUES FROM ('{}') TO ('{}')",
            ringtrail::time::rfc3339_micros(later),
            ringtrail::time::rfc3339_micros(later + DAY_MICROS)
        );
        let refused = client.batch_execute(&plain).await.unwrap_err();
        assert_eq!(
            refused.code().map(|c| c.code()),
            Some("23514"),
            "{refused:?}"
        );
        // ensure moves them in the same transaction.
        let created = partitions::ensure(&mut client, DAY, 3, now).await.unwrap();
        let names: Vec<&str> = created.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                partition_name(today + DAY_MICROS),
                name.clone(),
                partition_name(today + 3 * DAY_MICROS)
            ]
        );
        let moved: Vec<u64> = created.iter().map(|c| c.moved).collect();
        assert_eq!(moved, [0, 3, 0]);
        let mut expected = vec![("ringtrail.logs_default".to_owned(), 1), (name.clone(), 3)];
        expected.sort();
        assert_eq!(rows_by_partition(&client).await, expected);
        // Every row once, none lost, none doubled.
        let ids: i64 = client
            .query_one("SELECT count(DISTINCT id) FROM ringtrail.logs", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(ids, 4);
        // The moved partition has the parent's indexes, named after them.
        let short = name.trim_start_matches("ringtrail.");
        let suffix = short.trim_start_matches("logs_");
        assert_eq!(
            index_names(&client, short).await,
            [
                format!("logs_audit_trace_{suffix}"),
                format!("logs_ts_brin_{suffix}")
            ]
        );
    });
}

#[test]
fn retention_drops_exactly_the_old_partitions_and_logs_them() {
    let url = common::database();
    runtime().block_on(async {
        let mut client = migrated(&url).await;
        let now = SystemTime::now();
        let today = day_start(micros(now));
        // Ten days back to two ahead, and two made by hand: one in 2020,
        // one open-ended in 2099.
        partitions::ensure(&mut client, DAY, 12, now - 10 * DAY)
            .await
            .unwrap();
        client
            .batch_execute(
                "CREATE TABLE ringtrail.archive_2020 PARTITION OF ringtrail.logs
                     FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00');
                 CREATE TABLE ringtrail.far_future PARTITION OF ringtrail.logs
                     FOR VALUES FROM ('2099-01-01 00:00:00+00') TO (MAXVALUE);",
            )
            .await
            .unwrap();
        let jan_2020 = 1_577_836_800_000_000;
        let times = [
            jan_2020,
            jan_2020 + 1,
            today - 10 * DAY_MICROS,
            today - 10 * DAY_MICROS + 1,
            today - 9 * DAY_MICROS,
            today - 3 * DAY_MICROS,
            today,
            0,                     // DEFAULT: never dropped
            4_102_444_800_000_000, // 2100, far_future: never dropped
        ];
        assert_eq!(
            common::copy_in(&mut client, batch(&times)).await.unwrap(),
            times.len() as u64
        );
        let keep = 7 * DAY;
        let expected = [
            ("ringtrail.archive_2020".to_owned(), 2, Some(jan_2020)),
            (
                partition_name(today - 10 * DAY_MICROS),
                2,
                Some(today - 10 * DAY_MICROS),
            ),
            (
                partition_name(today - 9 * DAY_MICROS),
                1,
                Some(today - 9 * DAY_MICROS),
            ),
            (
                partition_name(today - 8 * DAY_MICROS),
                0,
                Some(today - 8 * DAY_MICROS),
            ),
        ];
        let summary = |d: &[retention::Dropped]| -> Vec<(String, i64, Option<i64>)> {
            d.iter()
                .map(|d| (d.partition.clone(), d.rows, d.from_micros))
                .collect()
        };
        // A dry run lists them and changes nothing.
        let would = retention::apply(&mut client, keep, now, true, "test")
            .await
            .unwrap();
        assert_eq!(summary(&would), expected);
        let logged: i64 = client
            .query_one("SELECT count(*) FROM ringtrail.retention_log", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(logged, 0);
        assert_eq!(partitions::list(&client).await.unwrap().len(), 16);

        let dropped = retention::apply(&mut client, keep, now, false, "test")
            .await
            .unwrap();
        assert_eq!(dropped, would);
        for (name, _, _) in &expected {
            assert!(!exists(&client, name).await, "{name} dropped");
        }
        let left = partitions::list(&client).await.unwrap();
        assert_eq!(left.len(), 12);
        assert!(left.iter().any(|p| p.name == "ringtrail.far_future"));
        assert!(left.iter().any(|p| p.is_default));
        // The others' rows untouched.
        let rows: i64 = client
            .query_one("SELECT count(*) FROM ringtrail.logs", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 4);
        // Logged, each with its count, range, time and command.
        let log: Vec<(String, i64, Option<i64>, i64, String, bool)> = client
            .query(
                "SELECT partition, rows, (extract(epoch FROM range_from) * 1000000)::int8,
                        (extract(epoch FROM range_to) * 1000000)::int8, dropped_by,
                        dropped_at > now() - interval '1 minute'
                 FROM ringtrail.retention_log ORDER BY range_from",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect();
        let feb_2020 = 1_580_515_200_000_000;
        let mut want: Vec<_> = expected
            .iter()
            .map(|(name, rows, from)| {
                let to = if *from == Some(jan_2020) {
                    feb_2020
                } else {
                    from.unwrap() + DAY_MICROS
                };
                (name.clone(), *rows, *from, to, "test".to_owned(), true)
            })
            .collect();
        want.sort_by_key(|w| w.2);
        assert_eq!(log, want);
        // Nothing more to drop.
        assert!(retention::apply(&mut client, keep, now, false, "test")
            .await
            .unwrap()
            .is_empty());
    });
}

/// A database as an older ringtrail left it: migrations up to
/// `0004_redaction`, `ringtrail.logs` a plain table.
async fn plain_table_database(url: &str) -> tokio_postgres::Client {
    let client = common::connect(url).await;
    client
        .batch_execute(
            "CREATE SCHEMA ringtrail;
             CREATE TABLE ringtrail.schema_migrations (
                 version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
        )
        .await
        .unwrap();
    for m in &ringtrail::schema::MIGRATIONS[..4] {
        client.batch_execute(m.sql).await.unwrap();
        client
            .execute(
                "INSERT INTO ringtrail.schema_migrations (version) VALUES ($1)",
                &[&m.version],
            )
            .await
            .unwrap();
    }
    assert_eq!(ringtrail::schema::MIGRATIONS[3].version, "0004_redaction");
    client
}

#[test]
fn migrating_the_plain_table_keeps_every_row() {
    let url = common::database();
    runtime().block_on(async {
        let mut client = plain_table_database(&url).await;
        // 5,000 rows over the last 30 days, some audit points, a few
        // ahead of the clock, one in 1970 and one in 2100.
        client
            .batch_execute(
                "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, truncated, kind, redacted)
                 SELECT now() - n * interval '518 seconds', gen_random_uuid(), 9, 'old', 'row ' || n,
                        jsonb_build_object('n', n), 't-' || (n % 50), n % 7 = 0,
                        CASE WHEN n % 10 = 0 THEN 1 END, n % 3
                 FROM generate_series(1, 5000) n;
                 INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
                 VALUES (now() + interval '3 days', gen_random_uuid(), 9, 'ahead', '', '{}', false),
                        (now() + interval '40 hours', gen_random_uuid(), 9, 'ahead', '', '{}', false),
                        ('1970-01-01 00:00:00+00', gen_random_uuid(), 9, 'epoch', '', '{}', false),
                        ('2100-01-01 00:00:00+00', gen_random_uuid(), 9, 'far', '', '{}', false);",
            )
            .await
            .unwrap();
        // The columns the table had before the migration (later ones add
        // columns of their own).
        let digest = "SELECT count(*), md5(string_agg((l.ts, l.id, l.level, l.target, l.message, \
                      l.fields, l.trace_id, l.user_id, l.session_id, l.task_id, l.context_id, \
                      l.client_id, l.span_name, l.file, l.line, l.truncated, l.kind, l.redacted)::text, \
                      '|' ORDER BY id)) FROM ringtrail.logs l";
        let before = client.query_one(digest, &[]).await.unwrap();
        let (count, sum): (i64, String) = (before.get(0), before.get(1));
        assert_eq!(count, 5004);

        let applied = ringtrail::schema::apply(&mut client).await.unwrap();
        // 0005 converts the table; the later migrations apply after it.
        assert_eq!(applied[0], "0005_partitions");
        assert_eq!(applied.len(), ringtrail::schema::MIGRATIONS.len() - 4);
        let after = client.query_one(digest, &[]).await.unwrap();
        assert_eq!((after.get::<_, i64>(0), after.get::<_, String>(1)), (count, sum.clone()));

        // The old table is the legacy partition, up to tomorrow 00:00 UTC;
        // what lies beyond is in DEFAULT.
        let tomorrow = day_start(micros(SystemTime::now())) + DAY_MICROS;
        let all = partitions::list(&client).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "ringtrail.logs_legacy");
        assert_eq!((all[0].from_micros, all[0].to_micros), (None, Some(tomorrow)));
        let by = rows_by_partition(&client).await;
        assert_eq!(
            by,
            [
                ("ringtrail.logs_default".to_owned(), 3),
                ("ringtrail.logs_legacy".to_owned(), 5001)
            ]
        );
        // Its indexes were matched to the parent's, not doubled.
        assert_eq!(
            index_names(&client, "logs_legacy").await,
            ["logs_audit_trace_legacy", "logs_ts_brin_legacy"]
        );
        let view: i64 = client
            .query_one("SELECT count(*) FROM ringtrail.logs_view WHERE point IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(view, 500);

        // Partitions ahead take the rows dated within them out of DEFAULT.
        let created = partitions::ensure(&mut client, DAY, 3, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(created[0].from_micros, tomorrow, "today stays in legacy");
        assert_eq!(created.iter().map(|c| c.moved).sum::<u64>(), 2);
        let after = client.query_one(digest, &[]).await.unwrap();
        assert_eq!((after.get::<_, i64>(0), after.get::<_, String>(1)), (count, sum));
    });
    // And the pipeline writes into it.
    let (dispatch, guard) = common::start(common::builder(&url));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!(k = 1, "after"));
    guard.flush().unwrap();
    assert_eq!(common::count(&url), 5005);
}

/// Polls `check` until it holds, for up to 20 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_writer_makes_partitions_ahead_and_applies_retention_on_its_own() {
    let url = common::database();
    runtime().block_on(async {
        let mut client = migrated(&url).await;
        partitions::ensure(&mut client, DAY, 0, SystemTime::now() - 40 * DAY)
            .await
            .unwrap();
    });
    let old = partition_name(day_start(micros(SystemTime::now() - 40 * DAY)));
    let mut sync = common::client(&url);
    let count = |sync: &mut postgres::Client, sql: &str| -> i64 {
        sync.query_one(sql, &[]).unwrap().get(0)
    };
    assert_eq!(
        count(
            &mut sync,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ringtrail.logs'::regclass"
        ),
        2
    );

    let (dispatch, guard) = common::start(
        common::builder(&url).partitions(Partitions::daily().ahead(2).retention(30 * DAY)),
    );
    // Today, tomorrow, the day after, and DEFAULT; the 40-day-old one gone.
    let today = day_start(micros(SystemTime::now()));
    eventually("partitions ahead and retention", || {
        let names: Vec<String> = sync
            .query(
                "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'ringtrail.logs'::regclass ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut want: Vec<String> = (0..3)
            .map(|d| partition_name(today + d * DAY_MICROS))
            .chain(["ringtrail.logs_default".to_owned()])
            .collect();
        want.sort();
        names == want
    });
    let log = sync
        .query_one(
            "SELECT partition, rows, dropped_by FROM ringtrail.retention_log",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            log.get::<_, String>(0),
            log.get::<_, i64>(1),
            log.get::<_, String>(2)
        ),
        (old, 0, "ringtrail writer".to_owned())
    );
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..100 {
            tracing::info!(i, "into today's partition");
        }
    });
    guard.flush().unwrap();
    assert_eq!(common::count(&url), 100);
    // Into the partitions the writer made, none into DEFAULT.
    assert_eq!(
        count(&mut sync, "SELECT count(*) FROM ringtrail.logs_default"),
        0
    );
}

#[test]
fn event_times_outside_the_clamp_window_are_clamped_and_kept_in_fields() {
    let url = common::database();
    // A window of zero around the writer's clock clamps every event (its
    // time is never exactly the clock read at the start of the pass).
    let (dispatch, guard) =
        common::start(common::builder(&url).clamp_window(Duration::ZERO, Duration::ZERO));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..20 {
            tracing::info!(i, "clamped");
        }
    });
    guard.flush().unwrap();
    let mut sync = common::client(&url);
    let rows = sync
        .query(
            "SELECT (extract(epoch FROM ts) * 1000000)::int8,
                    (extract(epoch FROM (fields->>'ts.original')::timestamptz) * 1000000)::int8
             FROM ringtrail.logs",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 20);
    for r in &rows {
        let (ts, original): (i64, Option<i64>) = (r.get(0), r.get(1));
        let original = original.expect("ts.original kept");
        assert!((ts - original).abs() < 10_000_000, "{ts} vs {original}");
    }
    // The default window leaves ordinary events alone.
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("plain"));
    guard.flush().unwrap();
    let kept: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE fields ? 'ts.original'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kept, 0);
    assert_eq!(common::count(&url), 1);
}

#[test]
fn partitions_made_under_live_ingest_lose_and_quarantine_nothing() {
    let url = common::database();
    runtime().block_on(async {
        migrated(&url).await;
    });
    // The writer makes no partitions here (`migrate(false)`): every row
    // lands in DEFAULT until the test makes today's partition mid-stream,
    // moving the rows already there. The producer blocks while the ring is
    // full (a busy machine's writer can fall behind a flood), so no event
    // can be dropped and every one must be written.
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .overflow(ringtrail::OverflowPolicy::Block {
                timeout: Duration::from_secs(60),
            })
            .migrate(false)
            .lanes(2)
            .batch_rows(200)
            .flush_interval(Duration::from_millis(5)),
    );
    let created = thread::scope(|s| {
        let writer = s.spawn(|| {
            dispatcher_loop(&dispatch, 20_000);
        });
        thread::sleep(Duration::from_millis(100));
        let created = runtime().block_on(async {
            let mut client = common::connect(&url).await;
            let mut made = Vec::new();
            // A lock not had within the lock timeout is an error: try again.
            for _ in 0..20 {
                match partitions::ensure(&mut client, DAY, 1, SystemTime::now()).await {
                    Ok(c) => {
                        made = c;
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            made
        });
        writer.join().unwrap();
        created
    });
    assert_eq!(created.len(), 2, "today and tomorrow");
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.dead_lettered, stats.lost),
        (20_000, 0, 0),
        "{stats:?}"
    );
    let mut sync = common::client(&url);
    let r = sync
        .query_one(
            "SELECT count(*), count(DISTINCT fields->>'i') FROM ringtrail.logs WHERE message = 'live'",
            &[],
        )
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (20_000, 20_000));
    let dead: i64 = sync
        .query_one("SELECT count(*) FROM ringtrail.dead_letters", &[])
        .unwrap()
        .get(0);
    assert_eq!(dead, 0);
}

/// `n` INFO events `live` with `i` from 0, through `dispatch`.
fn dispatcher_loop(dispatch: &tracing::Dispatch, n: u64) {
    tracing::dispatcher::with_default(dispatch, || {
        for i in 0..n {
            tracing::info!(i, "live");
            if i % 500 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
}

/// L1: an index on `ringtrail.logs` whose name carries SQL (made by
/// whoever owns the table) is renamed on a new partition without that
/// SQL ever running: names are quoted by the server (`format('%I')`).
#[test]
fn an_index_name_carrying_sql_is_quoted_not_run() {
    let url = common::database();
    runtime().block_on(async {
        let mut client = migrated(&url).await;
        client
            .batch_execute(
                r#"CREATE INDEX "x"";CREATE TABLE public.pwned();--" ON ringtrail.logs (level)"#,
            )
            .await
            .unwrap();
        let day = Duration::from_secs(86_400);
        let made = partitions::ensure(&mut client, day, 1, SystemTime::now() + 30 * day)
            .await
            .unwrap();
        assert!(!made.is_empty());
        assert!(!exists(&client, "public.pwned").await, "the name's SQL ran");
        let names = index_names(&client, made[0].name.trim_start_matches("ringtrail.")).await;
        assert!(
            names.iter().any(|n| n.starts_with("x\";CREATE TABLE")),
            "renamed after its parent: {names:?}"
        );
    });
}
