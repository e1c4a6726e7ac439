//! # `usage`: how fast `ringtrail usage` adds up tokens and cost
//!
//! Loads 1,000,000 rows: 66,666 agent traces of six audit points each
//! (identity with the user, agent with its name and model among three,
//! permission, a model call with token counts, a tool execution, a
//! result that gives `cost.micro_usd` for one trace in three) and nine
//! plain rows per trace, interleaved in time order as the writer would
//! append them, with `INSERT ... SELECT generate_series`, then `VACUUM
//! ANALYZE`. Then times [`ringtrail::read::usage`] for every grouping,
//! five runs each (the median is reported), over the whole table and
//! over the last hour, against two baselines measured in the same run on
//! the same table: `SELECT count(*)` of the window's audit points, and
//! [`ringtrail::read::each_gap`] (`ringtrail audit-gaps`). Prints the
//! ratios and the plan (`EXPLAIN ANALYZE`) of [`USAGE_SQL`].
//!
//! Every run's totals are checked against an independent aggregate (the
//! calls, the tokens, and the given costs plus the priced tokens,
//! computed in SQL from the data's own formulas).
//!
//! ```text
//! cargo bench --bench usage                     # 1,000,000 rows, about a minute
//! RINGTRAIL_ROWS=5000000 cargo bench --bench usage
//! cargo test --benches                          # 15,000 rows, once
//! ```
//!
//! The server: a throwaway cluster ([`ringtrail_cluster::TempCluster`]),
//! or, when `DATABASE_URL` is set, a fresh database on that server.
//!
//! [`USAGE_SQL`]: ringtrail::read::usage::USAGE_SQL

use std::time::{Duration, Instant, SystemTime};

use ringtrail::read::{self, By, Prices, UsageQuery};

use ringtrail_testkit::load::ROWS_PER_TRACE;
/// Timed runs; the median is reported.
const RUNS: usize = 5;

/// The prices of the three models.
const PRICES: &str = r#"
[models."gpt-4o"]
input = 2.50
output = 10.00
cached = 1.25
[models."gpt-4o-mini"]
input = 0.15
output = 0.60
cached = 0.075
[models."claude-sonnet-4"]
input = 3
output = 15
cached = 0.30
"#;

/// The totals expected in `[since, until)`, from the data's formulas:
/// calls, input, output, cached, and the cost (given costs plus the
/// priced tokens of traces with no given cost, in pico-USD, rounded
/// once). Exact for a single group; `usage` rounds per group, so the
/// groups' sum may differ from it by less than one micro-USD a group.
const EXPECTED_SQL: &str = "
SELECT count(*) FILTER (WHERE kind = 4),
       COALESCE(sum((fields ->> 'gen_ai.usage.input_tokens')::bigint), 0)::bigint,
       COALESCE(sum((fields ->> 'gen_ai.usage.output_tokens')::bigint), 0)::bigint,
       COALESCE(sum((fields ->> 'gen_ai.usage.cached_tokens')::bigint), 0)::bigint,
       COALESCE(sum((fields ->> 'cost.micro_usd')::bigint), 0)::bigint,
       COALESCE(sum(CASE WHEN fields ->> 'gen_ai.usage.input_tokens' IS NOT NULL
                          AND NOT EXISTS (
                              SELECT 1 FROM ringtrail.logs r WHERE r.kind = 5 AND r.trace_id = l.trace_id
                                 AND r.fields ? 'cost.micro_usd')
                     THEN (fields ->> 'gen_ai.usage.input_tokens')::numeric * p.input
                        + (fields ->> 'gen_ai.usage.output_tokens')::numeric * p.output
                        + (fields ->> 'gen_ai.usage.cached_tokens')::numeric * p.cached END), 0)::text
FROM ringtrail.logs l
LEFT JOIN (VALUES ('gpt-4o', 2500000, 10000000, 1250000),
                  ('gpt-4o-mini', 150000, 600000, 75000),
                  ('claude-sonnet-4', 3000000, 15000000, 300000)) AS p(model, input, output, cached)
       ON p.model = l.fields ->> 'gen_ai.request.model'
WHERE kind IN (4, 5) AND ts >= $1 AND ts < $2";

/// The median of `times`, sorted in place.
fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows: u64 = std::env::var("RINGTRAIL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 15_000 });
    let traces = rows / ROWS_PER_TRACE;
    let runs = if full { RUNS } else { 1 };
    let prices = Prices::parse(PRICES).expect("the prices");

    let (_cluster, url) = ringtrail_cluster::durable_database("ringtrail_usage_bench")
        .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let config: ringtrail::tls::ConnectOptions = url.parse().expect("the database URL");
        let mut client = read::connect(&config).await.expect("connect");
        ringtrail::schema::apply(&mut client)
            .await
            .expect("migrations");

        let begin = Instant::now();
        client
            .batch_execute(&ringtrail_testkit::load::audit_table_sql(traces))
            .await
            .expect("the load");
        let load = begin.elapsed();
        client
            .batch_execute("VACUUM ANALYZE ringtrail.logs")
            .await
            .expect("VACUUM ANALYZE");
        let counts = client
            .query_one(
                "SELECT count(*) FILTER (WHERE kind IS NOT NULL), count(*) FROM ringtrail.logs",
                &[],
            )
            .await
            .expect("counts");
        let (points, all): (i64, i64) = (counts.get(0), counts.get(1));
        println!(
            "loaded {all} rows ({traces} traces, {points} audit points) in {:.1} s",
            load.as_secs_f64()
        );

        let now = SystemTime::now();
        let windows = [
            ("the whole table", now - Duration::from_secs(2 * 86_400)),
            ("the last hour", now - Duration::from_secs(3_600)),
        ];
        for (name, since) in windows {
            // Baselines, in the same run on the same table.
            let mut count_times = Vec::new();
            let mut window_points = 0i64;
            for _ in 0..runs {
                let begin = Instant::now();
                window_points = client
                    .query_one(
                        "SELECT count(*) FROM ringtrail.logs
                         WHERE kind IS NOT NULL AND ts >= $1 AND ts < $2",
                        &[&since, &now],
                    )
                    .await
                    .expect("count")
                    .get(0);
                count_times.push(begin.elapsed());
            }
            let count = median(&mut count_times);
            let mut gap_times = Vec::new();
            for _ in 0..runs {
                let begin = Instant::now();
                read::each_gap(&client, since, now, read::DEFAULT_GRACE, now, |_| {})
                    .await
                    .expect("gaps");
                gap_times.push(begin.elapsed());
            }
            let gaps = median(&mut gap_times);
            println!(
                "\n{name}: {window_points} audit points; baselines: count(*) {:.1} ms, \
                 audit-gaps {:.1} ms (medians of {runs})",
                ms(count),
                ms(gaps)
            );

            let expected = client
                .query_one(EXPECTED_SQL, &[&since, &now])
                .await
                .expect("the expected totals");
            let want: [i64; 5] = [
                expected.get(0),
                expected.get(1),
                expected.get(2),
                expected.get(3),
                expected.get(4),
            ];
            let priced_pico: i128 = expected.get::<_, &str>(5).parse().expect("an integer");
            for by in By::ALL {
                let query = UsageQuery {
                    since,
                    until: now,
                    by,
                };
                let mut times = Vec::new();
                let mut groups = Vec::new();
                for _ in 0..runs {
                    let begin = Instant::now();
                    groups = read::usage(&client, &query, &prices).await.expect("usage");
                    times.push(begin.elapsed());
                }
                let took = median(&mut times);
                let got = groups.iter().fold([0i64; 5], |mut t, g| {
                    t[0] += g.calls;
                    t[1] += g.input_tokens;
                    t[2] += g.output_tokens;
                    t[3] += g.cached_tokens;
                    t[4] += g.cost_micro_usd;
                    t
                });
                assert_eq!(got[..4], want[..4], "by {by}: calls and tokens");
                // Each group rounds once: the sum is within half a
                // micro-USD a group of the exact total.
                let exact = i128::from(want[4]) * 1_000_000 + priced_pico;
                let diff = (i128::from(got[4]) * 1_000_000 - exact).abs();
                assert!(
                    diff <= 500_000 * groups.len() as i128,
                    "by {by}: cost {} against {exact} pico-USD",
                    got[4]
                );
                println!(
                    "usage --by {by:<5}: median {:>8.1} ms of {runs} (min {:.1}, max {:.1}); \
                     {} groups, {} calls; {:.2}× count(*), {:.2}× audit-gaps",
                    ms(took),
                    ms(times[0]),
                    ms(times[times.len() - 1]),
                    groups.len(),
                    got[0],
                    took.as_secs_f64() / count.as_secs_f64(),
                    took.as_secs_f64() / gaps.as_secs_f64(),
                );
            }
            let query = UsageQuery {
                since,
                until: now,
                by: By::Model,
            };
            let plan = read::usage::explain(&client, &query, true)
                .await
                .expect("explain");
            println!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF), --by model:\n{plan}");
        }
    });
}
