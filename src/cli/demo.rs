//! `ringtrail demo`: the project's main job end to end. A realistic
//! multi-threaded workload goes through the layer into PostgreSQL, on a
//! throwaway cluster unless `--database-url` (or `DATABASE_URL`) names a
//! server, and the throughput, drop, batch and row counts are reported.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing_subscriber::prelude::*;

use ringtrail::embedded::TempCluster;

use super::CliResult;

/// Flags of `ringtrail demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// PostgreSQL to write to. Without it, a throwaway cluster is started
    /// from the local server binaries and removed afterwards.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Producer threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Requests each thread handles (each emits 5 events).
    #[arg(long, default_value_t = 25_000)]
    requests: usize,
    /// Target events per second over all threads; 0 emits as fast as the
    /// threads can, which overruns any database and shows the drop counter.
    #[arg(long, default_value_t = 200_000)]
    rate: u64,
    /// Records in the ring.
    #[arg(long, default_value_t = 65_536)]
    capacity: usize,
    /// Turn synchronous_commit off for the writer's connections.
    #[arg(long)]
    async_commit: bool,
}

/// One request of the demo workload: nested spans with identity context,
/// and mixed levels.
fn handle_request(worker: usize, n: usize) {
    let request = tracing::info_span!(
        "request",
        trace_id = %format_args!("{worker:04x}{n:012x}"),
        user_id = %format_args!("user-{}", n % 1_000),
        session_id = %format_args!("sess-{worker}-{}", n / 100),
        client_id = "demo",
    );
    let _request = request.enter();
    tracing::info!(method = "POST", path = "/v1/orders", "request received");
    let handler = tracing::debug_span!("handler", task_id = n as u64);
    let _handler = handler.enter();
    let latency_ms = (n % 97) as f64 * 0.37;
    tracing::debug!(cache = "orders", hit = !n.is_multiple_of(3), "cache lookup");
    tracing::info!(
        items = (n % 7) as u64 + 1,
        amount_cents = (n * 1_337 % 100_000) as i64,
        "order priced at {:.2}",
        latency_ms
    );
    if n.is_multiple_of(50) {
        tracing::warn!(latency_ms, threshold_ms = 25.0, "slow downstream call");
    } else {
        tracing::info!(latency_ms, status = 200u64, "downstream ok");
    }
    if n.is_multiple_of(1_000) {
        tracing::error!(error = "payment declined", code = 402u64, "request failed");
    } else {
        tracing::info!(status = 201u64, "request completed");
    }
}

/// Runs `ringtrail demo`: the workload, a flush, and the report on stdout.
/// Fails when the row count in the table does not match what the writer
/// says it wrote.
pub fn run(args: DemoArgs) -> CliResult {
    let cluster;
    let url = match args.database_url {
        Some(url) => url,
        None => {
            eprintln!("starting a throwaway PostgreSQL cluster…");
            cluster = TempCluster::start()?;
            cluster.admin_url()
        }
    };
    let started_at = SystemTime::now();
    let (layer, guard) = ringtrail::Builder::new()
        .postgres(url.as_str())
        .capacity(args.capacity)
        .synchronous_commit(!args.async_commit)
        .build()?;
    tracing_subscriber::registry().with(layer).init();

    let threads = args.threads.max(1);
    let requests = args.requests;
    let events = (threads * requests * 5) as u64;
    eprintln!("{threads} threads × {requests} requests × 5 events = {events} events, nested spans, mixed levels");
    let begin = Instant::now();
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    std::thread::scope(|s| {
        for worker in 0..threads {
            let barrier = barrier.clone();
            s.spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let per_thread = args.rate as f64 / threads as f64;
                for n in 0..requests {
                    handle_request(worker, n);
                    // Pace to the target rate, sleeping in steps of at
                    // least a millisecond.
                    if per_thread > 0.0 && n % 64 == 63 {
                        let due = Duration::from_secs_f64((n + 1) as f64 * 5.0 / per_thread);
                        if let Some(ahead) = due.checked_sub(start.elapsed()) {
                            if ahead >= Duration::from_millis(1) {
                                std::thread::sleep(ahead);
                            }
                        }
                    }
                }
            });
        }
    });
    let emitted_in = begin.elapsed();
    guard.flush()?;
    let total = begin.elapsed();
    let stats = guard.stats();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows: i64 = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT count(*) FROM ringtrail.logs WHERE ts >= $1",
                &[&started_at],
            )
            .await?;
        Ok::<_, tokio_postgres::Error>(row.get(0))
    })?;

    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!("events emitted     {events}");
    println!(
        "emit rate          {:>12.0} events/s  (target {})",
        rate(events, emitted_in),
        if args.rate == 0 {
            "unlimited".to_owned()
        } else {
            args.rate.to_string()
        }
    );
    println!(
        "end-to-end rate    {:>12.0} rows/s    (emit + flush, {:.2} s)",
        rate(stats.written, total),
        total.as_secs_f64()
    );
    println!("enqueued           {}", stats.enqueued);
    println!(
        "dropped            {}  (ring full {}, evicted {}, block timeout {})",
        stats.dropped, stats.dropped_ring_full, stats.dropped_evicted, stats.dropped_block_timeout
    );
    println!("written            {}", stats.written);
    println!(
        "batches            {}  (avg {:.0} rows)",
        stats.batches,
        stats.written as f64 / stats.batches.max(1) as f64
    );
    println!("lost               {}", stats.lost);
    println!(
        "drop reports       {}  (in-band `ringtrail::dropped` rows)",
        stats.drop_reports
    );
    println!("rows in table      {rows}  (SELECT count(*) since start = written + drop reports)");
    drop(guard);
    let expected = stats.written + stats.drop_reports;
    if rows as u64 != expected {
        return Err(format!("row count {rows} != written + drop reports {expected}").into());
    }
    Ok(())
}
