//! `ringtrail demo`: the project's main job end to end. A realistic
//! multi-threaded workload goes through the layer into PostgreSQL, on a
//! throwaway cluster unless `--database-url` (or `DATABASE_URL`) names a
//! server, and the throughput, drop, batch and row counts are reported.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing_subscriber::prelude::*;

use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};
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

/// Every this many requests is an AI-agent request with a five-point audit
/// trace.
const AUDITED_EVERY: usize = 10;

/// The audit trace of an agent request, on the typed API. Its trace id and
/// user come from the request span. Most are complete; a few, by design,
/// show each kind of gap the completeness check finds. Returns the points
/// emitted.
fn agent_call(n: usize) -> u64 {
    let call_id = format!("call-{n}");
    let m = n / AUDITED_EVERY;
    let trace = Trace::with_id("", Identity::from_span().auth_method("oidc"));
    let mut points = 1;
    if m % 50 != 37 {
        trace.agent(
            Agent::new("order-assistant")
                .version("2.3.1")
                .model("gpt-4o")
                .provider("openai")
                .mcp_server("orders"),
        );
        points += 1;
    }
    match m % 50 {
        7 => {} // no permission asked: missing_permission
        17 => {
            trace.permission(
                Permission::deny("orders-policy")
                    .reason("refunds need a human")
                    .tool("orders.refund")
                    .call_id(&call_id),
            );
            points += 1;
        }
        _ => {
            trace.permission(
                Permission::allow("orders-policy")
                    .policy_version("4")
                    .tool("orders.lookup")
                    .call_id(&call_id),
            );
            points += 1;
        }
    }
    let tool = if m % 50 == 17 {
        "orders.refund"
    } else {
        "orders.lookup"
    };
    trace.tool(
        Tool::mcp(tool)
            .call_id(&call_id)
            .duration(Duration::from_micros(800 + (n % 400) as u64))
            .status(Status::Ok)
            .usage(420, 96, 128),
    );
    points += 1;
    if m % 50 == 27 {
        drop(trace); // the handler bailed out: abandoned
    } else {
        trace.finish(Finish::success().tokens_total(516).cost_micro_usd(2_150));
    }
    points + 1
}

/// One request of the demo workload: nested spans with identity context,
/// and mixed levels. Returns the events it emitted.
fn handle_request(worker: usize, n: usize) -> u64 {
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
    5 + if n.is_multiple_of(AUDITED_EVERY) {
        agent_call(n)
    } else {
        0
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
    eprintln!(
        "{threads} threads × {requests} requests × 5 events, nested spans, mixed levels; \
         every {AUDITED_EVERY}th request an agent call with a five-point audit trace"
    );
    let emitted = std::sync::atomic::AtomicU64::new(0);
    let begin = Instant::now();
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    std::thread::scope(|s| {
        for worker in 0..threads {
            let barrier = barrier.clone();
            let emitted = &emitted;
            s.spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let per_thread = args.rate as f64 / threads as f64;
                let mut events = 0;
                for n in 0..requests {
                    events += handle_request(worker, n);
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
                emitted.fetch_add(events, std::sync::atomic::Ordering::Relaxed);
            });
        }
    });
    let events = emitted.into_inner();
    let emitted_in = begin.elapsed();
    guard.flush()?;
    let total = begin.elapsed();
    let stats = guard.stats();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (rows, gaps, sample) = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT count(*) FROM ringtrail.logs WHERE ts >= $1",
                &[&started_at],
            )
            .await?;
        let rows: i64 = row.get(0);
        // Every trace is over (flushed), so no grace is needed.
        let now = SystemTime::now();
        let gaps = ringtrail::read::gaps(&client, started_at, now, Duration::ZERO, now).await?;
        let sample = match gaps.first() {
            Some(gap) => {
                ringtrail::read::trace(&client, &gap.trace_id, now, Duration::ZERO).await?
            }
            None => None,
        };
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((rows, gaps, sample))
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
    let traces = threads * requests.div_ceil(AUDITED_EVERY);
    let mut by_code = std::collections::BTreeMap::new();
    for gap in &gaps {
        for finding in &gap.findings {
            *by_code.entry(finding.code.as_str()).or_insert(0usize) += 1;
        }
    }
    println!(
        "audit traces       {traces}  ({} incomplete; `ringtrail audit-gaps` lists them)",
        gaps.len()
    );
    for (code, n) in &by_code {
        println!("  {code:<20} {n}");
    }
    if let Some(report) = &sample {
        println!(
            "\none incomplete trace (`ringtrail trace {}`):\n",
            report.trace_id
        );
        let mut out = std::io::stdout().lock();
        let color = super::output::ColorArgs {
            color: super::output::ColorChoice::Auto,
        };
        super::trace::write_timeline(&mut out, report, color.enabled())?;
    }
    drop(guard);
    let expected = stats.written + stats.drop_reports;
    if rows as u64 != expected {
        return Err(format!("row count {rows} != written + drop reports {expected}").into());
    }
    Ok(())
}
