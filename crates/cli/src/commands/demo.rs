//! `ringtrail demo`: the project's main job end to end, showing its work.
//! A realistic multi-threaded workload (nested spans carrying ids, mixed
//! levels, complete and incomplete five-point audit traces) goes through
//! the layer into PostgreSQL: the server `--database-url` (or
//! `DATABASE_URL`) names, else the local store (`--data-dir`, created on
//! first use and left running, so that the `ringtrail trace <id>` the
//! report prints works afterwards), or with `--throwaway` a cluster
//! started for this run and removed at its end.
//!
//! While it runs, a live line on stderr (a terminal only) shows events/s,
//! the ring's depth, drops and rows written. The report at the end: events,
//! rows committed (checked by a query), drops and batches; the hot path's
//! latency (p50, p99, p99.9 from an HdrHistogram of one sampled event in
//! every 16 requests, timed around the `tracing` call, so the sampling
//! costs nothing measurable); ingest rows/s; one incomplete trace's
//! timeline; and the audit-gaps summary.
//!
//! ```text
//! ringtrail demo                                  # ~300,000 events at 50,000/s
//! ringtrail demo --throwaway                      # into a cluster removed afterwards
//! ringtrail demo --threads 8 --rate 0             # flat out: watch the drops
//! ringtrail demo --duration 30s --rate 20000      # a steady stream for 30 s
//! ringtrail demo --jsonl - --format ecs | jq .    # JSON lines beside PostgreSQL
//! ```
//!
//! Exit codes: 0 the run's rows are all in the table, 1 anything failed
//! (including a row count that does not match), 2 invalid arguments.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use tracing_subscriber::prelude::*;

use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};
use ringtrail::time::parse_duration;
use ringtrail::{Checkpoints, Jsonl};
use ringtrail_cluster::TempCluster;

use super::output::{eprint_line, put_line, stderr_is_terminal, Printer, Progress};
use super::CliResult;

/// The error of a step of [`run`].
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Flags of `ringtrail demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    database: super::db::DatabaseArgs,
    /// Write into a throwaway cluster, started from the local server
    /// binaries and removed when the run ends, instead of the database
    /// or local store above (which it ignores).
    #[arg(long)]
    throwaway: bool,
    /// Producer threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Events to emit over all threads (about: a request emits 5, an
    /// agent request 10). Ignored with `--duration`.
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    /// Run for this long instead of a number of events (30s, 2m).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Target events per second over all threads; 0 emits as fast as the
    /// threads can, which overruns any database and shows the drop counter.
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Records in the ring.
    #[arg(long, default_value_t = 65_536)]
    capacity: usize,
    /// Turn synchronous_commit off for the writer's connections.
    #[arg(long)]
    async_commit: bool,
    /// Also write every row as a JSON line to this file (`-`: stdout,
    /// and the report goes to stderr), beside PostgreSQL.
    #[arg(long, value_name = "PATH")]
    jsonl: Option<std::path::PathBuf>,
    /// The schema of the `--jsonl` lines: ecs, ocsf, otlp or native.
    #[arg(long, default_value = "ecs", requires = "jsonl")]
    format: ringtrail::Format,
    /// Append the signed checkpoints of the batches' hash chain to this
    /// file, for `ringtrail verify --checkpoints`. The signing key is
    /// --checkpoint-key, else $RINGTRAIL_CHECKPOINT_KEY, else this user's
    /// ~/.local/share/ringtrail/checkpoint.key (made at first use), never
    /// beside the file.
    #[arg(long, value_name = "FILE")]
    checkpoints: Option<std::path::PathBuf>,
    /// The signing key file for --checkpoints (made when missing; not in
    /// the checkpoint file's directory).
    #[arg(long, value_name = "FILE", requires = "checkpoints")]
    checkpoint_key: Option<std::path::PathBuf>,
    /// No live progress line on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    color: super::output::ColorArgs,
}

/// One request in this many has its first event timed for the latency
/// histogram.
const SAMPLE_EVERY: usize = 16;

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

/// This run's part of every trace id, so that runs into the same store
/// (the local store keeps them all) never share one: the seconds and
/// nanoseconds of the first call, mixed.
fn run_id() -> u32 {
    static RUN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        (now.as_secs() as u32).rotate_left(16) ^ now.subsec_nanos()
    })
}

/// One request of the demo workload: nested spans with identity context,
/// and mixed levels. Returns the events it emitted. Every
/// [`SAMPLE_EVERY`]th request records how long its first event took on
/// the hot path into `latency` (nanoseconds).
fn handle_request(worker: usize, n: usize, latency: &mut Histogram<u64>) -> u64 {
    let request = tracing::info_span!(
        "request",
        trace_id = %format_args!("{:08x}{worker:04x}{n:012x}", run_id()),
        user_id = %format_args!("user-{}", n % 1_000),
        session_id = %format_args!("sess-{worker}-{}", n / 100),
        client_id = "demo",
    );
    let _request = request.enter();
    // Not the request right after a pacing sleep (those come every 16):
    // a cold cache there is the sleep's cost, not the hot path's.
    if n % SAMPLE_EVERY == SAMPLE_EVERY / 2 {
        let start = Instant::now();
        tracing::info!(method = "POST", path = "/v1/orders", "request received");
        let took = start.elapsed().as_nanos() as u64;
        let _ = latency.record(took.max(1));
    } else {
        tracing::info!(method = "POST", path = "/v1/orders", "request received");
    }
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

/// The live line on stderr: events/s, ring depth, drops, rows written.
fn progress_bar() -> Progress {
    Progress::new(
        None,
        "{spinner} {elapsed:>3} {msg}",
        Some(Duration::from_millis(120)),
    )
}

/// Runs `ringtrail demo`: the workload, a flush, and the report (on
/// stdout, or stderr when the JSON lines take stdout). Fails when the row
/// count in the table does not match what the writer says it wrote.
pub fn run(args: DemoArgs) -> CliResult {
    let (url, _cluster) = database(&args)?;
    run_id();
    let started_at = SystemTime::now();
    let (guard, report_on_stderr) = start_pipeline(&args, &url)?;
    // Colors only on a terminal, and never when the report goes to
    // stderr because the JSON lines took stdout.
    let mut out = if report_on_stderr {
        Printer::stderr_boxed()
    } else {
        Printer::stdout_boxed(args.color.enabled())
    };
    let threads = args.threads.max(1);
    announce(&args, threads);
    let (produced, latency) = run_workload(&args, threads, &guard)?;
    guard.flush()?;
    let total = produced.begin.elapsed();
    let stats = guard.stats();
    let latency = collect_latency(latency)?;
    let table = read_back(&url, started_at)?;
    write_rates(&mut out, args.rate, &produced, total, &stats, &latency);
    write_counts(&mut out, &args, &stats, table.rows);
    write_audit(&mut out, produced.traces, &table.gaps);
    if let Some(report) = &table.sample {
        write_sample(&mut out, report);
    }
    out.finish()?;
    drop(guard);
    check_count(table.rows, &stats)
}

/// The server to write to: with `--throwaway` a cluster started here
/// (kept until the run ends), else the database or local store of the
/// database flags.
fn database(args: &DemoArgs) -> Result<(String, Option<TempCluster>), BoxError> {
    if args.throwaway {
        eprint_line("starting a throwaway PostgreSQL cluster…");
        let cluster = TempCluster::start()?;
        return Ok((cluster.admin_url(), Some(cluster)));
    }
    let target = args.database.resolve()?;
    Ok((target.url().to_owned(), None))
}

/// Builds the pipeline and installs its layer as the global subscriber;
/// also says whether the report goes to stderr (the JSON lines take
/// stdout).
fn start_pipeline(args: &DemoArgs, url: &str) -> Result<(ringtrail::Guard, bool), BoxError> {
    let mut builder = ringtrail::Builder::new()
        .postgres(url)
        .capacity(args.capacity)
        .synchronous_commit(!args.async_commit)
        .service_name("ringtrail-demo");
    // With the lines on stdout, the report goes to stderr.
    let report_on_stderr = args.jsonl.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if let Some(path) = &args.jsonl {
        builder = builder.jsonl(Jsonl::file(path, args.format));
    }
    if let Some(path) = &args.checkpoints {
        let mut checkpoints = Checkpoints::file(path);
        if let Some(key) = &args.checkpoint_key {
            checkpoints = checkpoints.key(key);
        }
        builder = builder.checkpoints(checkpoints);
    }
    let (layer, guard) = builder.build()?;
    // Not `init()`: that would also bridge the `log` records of the
    // demo's own read queries (tokio-postgres logs at TRACE) into the
    // workload it measures.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
    Ok((guard, report_on_stderr))
}

/// The plan, on stderr.
fn announce(args: &DemoArgs, threads: usize) {
    let plan = match args.duration {
        Some(d) => format!("for {}", ringtrail::time::format_duration(d)),
        None => format!("{} events", args.events),
    };
    let pace = if args.rate == 0 {
        "flat out".to_owned()
    } else {
        format!("at {} events/s", args.rate)
    };
    eprint_line(format_args!(
        "{threads} threads, {plan} {pace}: nested spans, mixed levels; every \
         {AUDITED_EVERY}th request an agent call with a five-point audit trace"
    ));
}

/// What the producer threads share.
struct Shared {
    /// Events emitted so far, over all threads.
    emitted: AtomicU64,
    /// Audited requests so far.
    traces: AtomicU64,
    /// Set when every producer is done: the live line stops.
    done: AtomicBool,
    /// The latency samples of the producers that are done.
    latency: Mutex<Histogram<u64>>,
}

/// What one producer thread is to do.
#[derive(Clone, Copy)]
struct Plan {
    threads: usize,
    /// Events over all threads (without a deadline).
    events: u64,
    /// Events per second over all threads; 0: flat out.
    rate: u64,
    /// When to stop (with `--duration`).
    deadline: Option<Instant>,
}

/// What the workload did.
struct Produced {
    /// Events emitted.
    events: u64,
    /// Audited requests.
    traces: u64,
    /// When the producers started.
    begin: Instant,
    /// How long emitting took.
    emitted_in: Duration,
}

/// Runs the producer threads (and the live line on a terminal) until
/// they have emitted their events or the deadline has passed; returns
/// what they did, and their latency samples (nanoseconds).
fn run_workload(
    args: &DemoArgs,
    threads: usize,
    guard: &ringtrail::Guard,
) -> Result<(Produced, Mutex<Histogram<u64>>), BoxError> {
    let shared = Shared {
        emitted: AtomicU64::new(0),
        traces: AtomicU64::new(0),
        done: AtomicBool::new(false),
        latency: Mutex::new(Histogram::<u64>::new(3)?),
    };
    let begin = Instant::now();
    let plan = Plan {
        threads,
        events: args.events,
        rate: args.rate,
        deadline: args.duration.map(|d| begin + d),
    };
    let barrier = Arc::new(Barrier::new(threads));
    let bar = (!args.quiet && stderr_is_terminal()).then(progress_bar);
    std::thread::scope(|s| {
        let mut producers = Vec::with_capacity(threads);
        for worker in 0..threads {
            let (barrier, shared) = (barrier.clone(), &shared);
            producers.push(s.spawn(move || produce(worker, plan, &barrier, shared)));
        }
        if let Some(bar) = &bar {
            let shared = &shared;
            s.spawn(move || live_line(bar, guard, shared));
        }
        for producer in producers {
            let _ = producer.join();
        }
        shared.done.store(true, Ordering::Relaxed);
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let events = shared.emitted.into_inner();
    let emitted_in = begin.elapsed();
    let produced = Produced {
        events,
        traces: shared.traces.into_inner(),
        begin,
        emitted_in,
    };
    Ok((produced, shared.latency))
}

/// One producer thread: requests, paced to its share of the rate, until
/// the events are emitted or the deadline has passed; then its latency
/// samples go into the shared histogram.
fn produce(worker: usize, plan: Plan, barrier: &Barrier, shared: &Shared) {
    let mut mine = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    barrier.wait();
    let start = Instant::now();
    let per_thread = plan.rate as f64 / plan.threads as f64;
    let mut events = 0u64;
    for n in 0usize.. {
        let done = match plan.deadline {
            Some(at) => n % 64 == 0 && Instant::now() >= at,
            None => shared.emitted.load(Ordering::Relaxed) >= plan.events,
        };
        if done {
            break;
        }
        if n.is_multiple_of(AUDITED_EVERY) {
            shared.traces.fetch_add(1, Ordering::Relaxed);
        }
        let e = handle_request(worker, n, &mut mine);
        events += e;
        shared.emitted.fetch_add(e, Ordering::Relaxed);
        // Pace to the target rate, sleeping in steps of at
        // least a millisecond.
        if per_thread > 0.0 && n % 16 == 15 {
            let due = Duration::from_secs_f64(events as f64 / per_thread);
            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                if ahead >= Duration::from_millis(1) {
                    std::thread::sleep(ahead);
                }
            }
        }
    }
    if let Ok(mut all) = shared.latency.lock() {
        let _ = all.add(&mine);
    }
}

/// Updates the live line every 250 ms until the producers are done.
fn live_line(bar: &Progress, guard: &ringtrail::Guard, shared: &Shared) {
    let mut last = (Instant::now(), 0u64);
    while !shared.done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        let (now, n) = (Instant::now(), shared.emitted.load(Ordering::Relaxed));
        let rate = (n - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, n);
        let stats = guard.stats();
        bar.set_message(format_args!(
            "{n} events  {rate:>8.0} events/s  ring depth {:>6}  dropped {}  written {}",
            stats.queued, stats.dropped, stats.written
        ));
    }
}

/// The producers' latency samples, merged.
fn collect_latency(latency: Mutex<Histogram<u64>>) -> Result<Histogram<u64>, BoxError> {
    latency
        .into_inner()
        .map_err(|_| "a producer thread panicked".into())
}

/// What the table holds after the run.
struct Table {
    /// Rows committed since the start.
    rows: i64,
    /// The incomplete traces.
    gaps: Vec<ringtrail::read::Gap>,
    /// The first incomplete trace's report.
    sample: Option<ringtrail::read::TraceReport>,
}

/// Reads back the run's rows: their count, the incomplete traces, and the
/// first one's timeline.
fn read_back(url: &str, started_at: SystemTime) -> Result<Table, BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (rows, gaps, sample) = rt.block_on(async {
        let client = ringtrail::read::connect(&ringtrail::tls::ConnectOptions::parse(url)?).await?;
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
        Ok::<_, BoxError>((rows, gaps, sample))
    })?;
    Ok(Table { rows, gaps, sample })
}

/// The report's rates: emitted, ingested, and the hot path's latency.
fn write_rates(
    out: &mut Printer<impl Write>,
    target: u64,
    produced: &Produced,
    total: Duration,
    stats: &ringtrail::Stats,
    latency: &Histogram<u64>,
) {
    let events = produced.events;
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    put_line!(out, "events emitted     {events}");
    put_line!(
        out,
        "emit rate          {:>12.0} events/s  (target {})",
        rate(events, produced.emitted_in),
        if target == 0 {
            "unlimited".to_owned()
        } else {
            target.to_string()
        }
    );
    put_line!(
        out,
        "ingest rate        {:>12.0} rows/s    (rows written / (emit + flush), {:.2} s)",
        rate(stats.written, total),
        total.as_secs_f64()
    );
    let ns = |q: f64| latency.value_at_quantile(q);
    put_line!(
        out,
        "hot path           p50 {} ns  p99 {} ns  p99.9 {} ns  ({} sampled events, 1 request in {SAMPLE_EVERY})",
        ns(0.5),
        ns(0.99),
        ns(0.999),
        latency.len()
    );
}

/// The report's counts: the pipeline's, the JSON lines', the table's.
fn write_counts(
    out: &mut Printer<impl Write>,
    args: &DemoArgs,
    stats: &ringtrail::Stats,
    rows: i64,
) {
    put_line!(out, "enqueued           {}", stats.enqueued);
    put_line!(
        out,
        "dropped            {}  (ring full {}, evicted {}, block timeout {})",
        stats.dropped,
        stats.dropped_ring_full,
        stats.dropped_evicted,
        stats.dropped_block_timeout
    );
    put_line!(out, "written            {}", stats.written);
    put_line!(
        out,
        "batches            {}  (avg {:.0} rows)",
        stats.batches,
        stats.written as f64 / stats.batches.max(1) as f64
    );
    put_line!(out, "lost               {}", stats.lost);
    put_line!(
        out,
        "drop reports       {}  (in-band `ringtrail::dropped` rows)",
        stats.drop_reports
    );
    if let Some(path) = &args.jsonl {
        write_jsonl(out, path, args.format, stats);
    }
    put_line!(
        out,
        "rows in table      {rows}  (SELECT count(*) since start = written + drop reports)"
    );
}

/// The report's line on the JSON lines.
fn write_jsonl(
    out: &mut Printer<impl Write>,
    path: &std::path::Path,
    format: ringtrail::Format,
    stats: &ringtrail::Stats,
) {
    put_line!(
        out,
        "json lines         {} written, {} missed  ({}, {}; a stalled reader costs only these)",
        stats.jsonl.written,
        stats.jsonl.missed,
        format,
        if path.as_os_str() == "-" {
            "stdout".to_owned()
        } else {
            path.display().to_string()
        },
    );
}

/// The audit-gaps summary: traces, incomplete ones, findings by code.
fn write_audit(out: &mut Printer<impl Write>, traces: u64, gaps: &[ringtrail::read::Gap]) {
    let by_code = findings_by_code(gaps);
    put_line!(
        out,
        "audit traces       {}  ({} incomplete; `ringtrail audit-gaps` lists them)",
        traces,
        gaps.len(),
    );
    for (code, n) in &by_code {
        put_line!(out, "  {code:<20} {n}");
    }
}

/// One incomplete trace's timeline.
fn write_sample(out: &mut Printer<impl Write>, report: &ringtrail::read::TraceReport) {
    out.blank();
    put_line!(
        out,
        "one incomplete trace (`ringtrail trace {}`):",
        report.trace_id
    );
    out.blank();
    super::trace::write_timeline(out, report);
}

/// Fails unless the table holds every row written and every drop report.
fn check_count(rows: i64, stats: &ringtrail::Stats) -> CliResult {
    let expected = stats.written + stats.drop_reports;
    if rows as u64 != expected {
        return Err(format!("row count {rows} != written + drop reports {expected}").into());
    }
    Ok(())
}

/// Findings of the incomplete traces, by code.
fn findings_by_code(gaps: &[ringtrail::read::Gap]) -> std::collections::BTreeMap<&str, usize> {
    let mut by_code = std::collections::BTreeMap::new();
    for gap in gaps {
        for finding in &gap.findings {
            *by_code.entry(finding.code.as_str()).or_insert(0usize) += 1;
        }
    }
    by_code
}
