//! # `console`: the web console's answers on a large table
//!
//! Loads 1,000,000 rows of agent traces ([`ringtrail_testkit::load`]: six
//! audit points and nine plain rows a trace, about nine hours of them),
//! serves [`ringtrail_console::router`] on loopback in this process, and
//! times each page and API answer over HTTP (a keep-alive hyper client),
//! five runs each, the median reported, against a baseline measured in the
//! same run on the same table: `SELECT count(*) FROM ringtrail.logs` on a
//! connection of its own.
//!
//! ```text
//! cargo bench -p ringtrail-console --bench console   # 1,000,000 rows, about two minutes
//! RINGTRAIL_ROWS=5000000 cargo bench -p ringtrail-console --bench console
//! cargo test --benches                               # 15,000 rows, once
//! ```

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ringtrail_testkit::load::{audit_table_sql, ROWS_PER_TRACE};

const RUNS: usize = 5;

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows: u64 = std::env::var("RINGTRAIL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 15_000 });
    let runs = if full { RUNS } else { 1 };
    let traces = rows / ROWS_PER_TRACE;
    let (_cluster, url) = ringtrail_cluster::durable_database("ringtrail_console_bench")
        .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let options: ringtrail::tls::ConnectOptions = url.parse().expect("the URL");
        let mut client = ringtrail::read::connect(&options).await.expect("connect");
        ringtrail::schema::apply(&mut client)
            .await
            .expect("migrations");
        let begin = Instant::now();
        client
            .batch_execute(&audit_table_sql(traces))
            .await
            .expect("the load");
        client
            .batch_execute("VACUUM ANALYZE ringtrail.logs")
            .await
            .expect("analyze");
        let all: i64 = client
            .query_one("SELECT count(*) FROM ringtrail.logs", &[])
            .await
            .unwrap()
            .get(0);
        println!(
            "loaded {all} rows ({traces} traces) in {:.1} s",
            begin.elapsed().as_secs_f64()
        );
        // A trace in the middle, and a page key in the middle of the table.
        let middle = client
            .query_one(
                "SELECT trace_id, (extract(epoch FROM ts) * 1000000)::bigint || '.' || id::text \
                 FROM ringtrail.logs WHERE kind = 1 ORDER BY ts OFFSET $1 LIMIT 1",
                &[&((traces / 2) as i64)],
            )
            .await
            .expect("a trace in the middle");
        let (trace, key): (String, String) = (middle.get(0), middle.get(1));

        let app = ringtrail_console::router(ringtrail_console::Config::new(options.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let http = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();

        let mut baseline = Vec::new();
        for _ in 0..runs {
            let begin = Instant::now();
            client
                .query_one("SELECT count(*) FROM ringtrail.logs", &[])
                .await
                .unwrap();
            baseline.push(begin.elapsed());
        }
        let baseline = median(&mut baseline);
        println!(
            "\n## console: {all} rows, median of {runs}; baseline SELECT count(*) = {:.1} ms\n",
            baseline.as_secs_f64() * 1e3
        );
        println!("| answer | median ms | × count(*) | bytes |");
        println!("|---|---:|---:|---:|");
        let paths = [
            "/api/logs".to_owned(),
            format!("/api/logs?before={key}"),
            "/api/logs?level=warn&since=2d".to_owned(),
            "/api/logs?grep=step%207&since=2d".to_owned(),
            format!("/api/traces/{trace}"),
            format!("/traces/{trace}"),
            "/api/gaps?since=2d".to_owned(),
            "/api/usage?since=2d&by=model".to_owned(),
            "/api/usage?since=1h&by=model".to_owned(),
            "/api/stats".to_owned(),
            "/api/overview?since=2d".to_owned(),
            "/api/overview?since=1h".to_owned(),
            "/?since=2d".to_owned(),
            "/logs".to_owned(),
        ];
        for path in paths {
            let uri: hyper::Uri = format!("http://{addr}{path}").parse().unwrap();
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..runs {
                let begin = Instant::now();
                let response = http.get(uri.clone()).await.expect("an answer");
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                times.push(begin.elapsed());
                assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
                bytes = body.len();
            }
            let m = median(&mut times);
            println!(
                "| `{path}` | {:.1} | {:.2} | {bytes} |",
                m.as_secs_f64() * 1e3,
                m.as_secs_f64() / baseline.as_secs_f64()
            );
        }
    });
}
