//! # `audit_gaps`: how fast `ringtrail audit-gaps` finds incomplete traces
//!
//! Loads 100,000 five-point audit traces (500,000 points, a few thousand
//! of them incomplete in four ways) among 1,000,000 plain rows, ten per
//! trace, interleaved in time order as the writer would append them, with
//! `INSERT ... SELECT generate_series`, then `VACUUM ANALYZE` (what
//! autovacuum soon does to an append-only table). Then times
//! [`ringtrail::read::each_gap`] (what [`ringtrail::read::gaps`] and
//! `ringtrail audit-gaps` run) five times over two windows, the whole
//! table and the last hour (6,000 traces, the CLI's default window), and
//! prints each median, the points and traces checked per second, and the
//! plan (`EXPLAIN ANALYZE`) of [`GAPS_SQL`].
//!
//! Over the whole table the gaps found are checked against the count the
//! data was built with.
//!
//! ```text
//! cargo bench --bench audit_gaps                        # 100,000 traces, about 30-60 s
//! RINGTRAIL_TRACES=1000000 cargo bench --bench audit_gaps
//! cargo test --benches                                  # 2,000 traces, once
//! ```
//!
//! The server: a throwaway cluster ([`ringtrail_cluster::TempCluster`]),
//! or, when `DATABASE_URL` is set, a fresh database on that server.
//!
//! [`GAPS_SQL`]: ringtrail::read::gaps::GAPS_SQL

use std::time::{Duration, Instant, SystemTime};

use ringtrail::read;

/// Plain rows per trace.
const PLAIN_PER_TRACE: u64 = 10;
/// Timed runs; the median is reported.
const RUNS: usize = 5;

/// Whether trace `t` is incomplete, and why, as the data below builds it.
fn expected_gap(t: u64) -> bool {
    let no_permission = t.is_multiple_of(10); // missing_permission
    let deny = t.is_multiple_of(97); // executed_after_deny (when it has a permission)
    let no_result = t.is_multiple_of(53); // missing_result (the trace is old)
    let abandoned = t.is_multiple_of(89); // abandoned (when it has a result)
    no_permission || deny || no_result || abandoned
}

/// The load: trace `t` (id: the MD5 of `t`, random as W3C trace ids are)
/// starts at `t × 500 ms` after a base chosen so that the last trace
/// starts ten minutes ago, past the grace period (100,000 traces span 14
/// hours; the last hour holds 6,000); its points are 10 ms apart, its plain rows 7 ms apart around
/// them; one plain row in ten has no trace id.
fn load_sql(traces: u64) -> String {
    format!(
        "SET synchronous_commit = off;
         INSERT INTO ringtrail.logs
             (ts, id, level, target, message, fields, trace_id, user_id, session_id, truncated, kind)
         SELECT ts, gen_random_uuid(), level, target, message, fields, trace_id, user_id, session_id, false, kind
         FROM (
             SELECT now() - {span_ms} * interval '1 ms' + t * interval '500 ms' + k * interval '10 ms' AS ts,
                    CASE WHEN (k = 3 AND t % 97 = 0) OR (k = 5 AND t % 89 = 0) THEN 13 ELSE 9 END::smallint AS level,
                    'ringtrail::audit' AS target,
                    (ARRAY['identity', 'agent', 'permission', 'tool', 'result'])[k] AS message,
                    CASE k
                      WHEN 1 THEN jsonb_build_object('audit.point', 'identity', 'auth.method', 'oauth', 'tenant.id', 'acme')
                      WHEN 2 THEN jsonb_build_object('audit.point', 'agent', 'agent.id', 'planner',
                                                     'gen_ai.request.model', 'gpt-4o', 'gen_ai.provider.name', 'openai')
                      WHEN 3 THEN jsonb_build_object('audit.point', 'permission',
                                                     'decision', CASE WHEN t % 97 = 0 THEN 'deny' ELSE 'allow' END,
                                                     'policy.id', 'p-7', 'gen_ai.tool.name', 'search',
                                                     'gen_ai.tool.call.id', 'c' || t)
                      WHEN 4 THEN jsonb_build_object('audit.point', 'tool', 'gen_ai.tool.name', 'search',
                                                     'gen_ai.tool.call.id', 'c' || t, 'status', 'ok',
                                                     'duration_ns', 1200000, 'args.sha256', md5('args' || t))
                      ELSE jsonb_build_object('audit.point', 'result',
                                              'outcome', CASE WHEN t % 89 = 0 THEN 'abandoned' ELSE 'success' END,
                                              'tokens.total', 812, 'cost.micro_usd', 1250)
                    END AS fields,
                    md5(t::text) AS trace_id,
                    'u-' || (t % 1000) AS user_id,
                    's-' || (t % 5000) AS session_id,
                    k::smallint AS kind
             FROM generate_series(1, {traces}) t, generate_series(1, 5) k
             WHERE NOT (k = 3 AND t % 10 = 0) AND NOT (k = 5 AND t % 53 = 0)
             UNION ALL
             SELECT now() - {span_ms} * interval '1 ms' + t * interval '500 ms' + j * interval '7 ms',
                    CASE WHEN j % 3 = 0 THEN 5 ELSE 9 END::smallint,
                    'my_app::handler',
                    'request step ' || j,
                    jsonb_build_object('method', 'POST', 'path', '/v1/orders', 'items', j, 'latency_ms', j * 0.37),
                    CASE WHEN j = 0 THEN NULL ELSE md5(t::text) END,
                    'u-' || (t % 1000),
                    's-' || (t % 5000),
                    NULL::smallint
             FROM generate_series(1, {traces}) t, generate_series(0, {last_plain}) j
             ORDER BY 1
         ) rows;",
        last_plain = PLAIN_PER_TRACE - 1,
        span_ms = traces * 500 + 600_000,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let traces: u64 = std::env::var("RINGTRAIL_TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 2_000 });

    let (_cluster, url) = ringtrail_cluster::durable_database("ringtrail_audit_gaps_bench")
        .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let config: ringtrail::tls::ConnectOptions = url.parse().expect("the database URL");
        let mut client = read::connect(&config).await.expect("connect");
        ringtrail::schema::apply(&mut client).await.expect("migrations");

        let begin = Instant::now();
        client
            .batch_execute(&load_sql(traces))
            .await
            .expect("the load");
        let load = begin.elapsed();
        // (Sizes sum the partitions: a partitioned table or index has no
        // storage of its own.)
        // What autovacuum does to an append-only table soon after a load:
        // BRIN ranges summarized, the visibility map set (index-only
        // scans), statistics.
        client
            .batch_execute("VACUUM ANALYZE ringtrail.logs")
            .await
            .expect("VACUUM ANALYZE");
        let counts = client
            .query_one(
                "SELECT count(*) FILTER (WHERE kind IS NOT NULL), count(*) FILTER (WHERE kind IS NULL),
                        (SELECT pg_size_pretty(sum(pg_relation_size(relid)))
                           FROM pg_partition_tree('ringtrail.logs')),
                        (SELECT pg_size_pretty(sum(pg_relation_size(relid)))
                           FROM pg_partition_tree('ringtrail.logs_audit_trace'))
                 FROM ringtrail.logs",
                &[],
            )
            .await
            .expect("counts");
        let (points, plain): (i64, i64) = (counts.get(0), counts.get(1));
        println!(
            "loaded {traces} traces: {points} audit points, {plain} plain rows in {:.1} s \
             (table {}, logs_audit_trace {})",
            load.as_secs_f64(),
            counts.get::<_, String>(2),
            counts.get::<_, String>(3),
        );

        let now = SystemTime::now();
        let whole = now - Duration::from_secs(2 * 86_400);
        let expected = (1..=traces).filter(|&t| expected_gap(t)).count();
        let windows = [
            ("the whole table", whole, Some((expected, traces, points as u64))),
            ("the last hour (the CLI's default)", now - Duration::from_secs(3_600), None),
        ];
        for (name, since, check) in windows {
            let mut times = Vec::with_capacity(RUNS);
            let mut scan = read::Scan::default();
            for run in 0..RUNS {
                let begin = Instant::now();
                let mut found = 0usize;
                scan = read::each_gap(&client, since, now, read::DEFAULT_GRACE, now, |_| {
                    found += 1
                })
                .await
                .expect("gaps");
                times.push(begin.elapsed());
                assert_eq!(found as u64, scan.gaps, "run {run}");
                if let Some((gaps, traces, points)) = check {
                    assert_eq!(found, gaps, "run {run}: gaps found");
                    assert_eq!(scan.traces, traces, "run {run}: traces checked");
                    assert_eq!(scan.points, points, "run {run}: points read");
                }
            }
            times.sort();
            let median = times[RUNS / 2];
            let secs = median.as_secs_f64();
            println!(
                "\nread::gaps over {name}: median {:.1} ms of {RUNS} (min {:.1}, max {:.1}); \
                 {} traces, {} points: {:.0} points/s, {:.0} traces/s; {} incomplete",
                secs * 1e3,
                times[0].as_secs_f64() * 1e3,
                times[RUNS - 1].as_secs_f64() * 1e3,
                scan.traces,
                scan.points,
                scan.points as f64 / secs,
                scan.traces as f64 / secs,
                scan.gaps,
            );
            let plan = read::gaps::explain(&client, since, now, true)
                .await
                .expect("explain");
            println!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF):\n{plan}");
        }
    });
}
