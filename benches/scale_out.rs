//! # `scale_out`: producers → a 3-replica NATS JetStream stream → two shards
//!
//! End to end: one producer thread emits events with trace ids through a
//! pipeline built with `Builder::nats(..).shards(2)`; two `ringtrail sink`
//! workers (the real binary, one per shard) load them into two databases.
//! The clock runs from the first event to the last row committed on the
//! shards. Against it, in the same run: the same events through a
//! pipeline straight into PostgreSQL (`Builder::postgres`), from the first
//! event to the flush that commits the last.
//!
//! Also reported:
//! - **publish acknowledgement latency**: batch-sized messages (the median
//!   size of the run's batches) published one at a time with a
//!   `Nats-Msg-Id` to the 3-replica stream, p50 and p99 of publish → ack;
//! - **worker CPU per row**: user + system time of the two worker
//!   processes (`/proc/<pid>/stat`) over the rows they loaded.
//!
//! Every figure is a median over the rounds, and the headline is the ratio
//! to the direct ingest of the same run. On this project's 2-core VM the
//! three NATS servers, two workers, PostgreSQL and the producer share two
//! cores: the ratio says what the stream costs there, not what it buys on
//! a cluster of machines (`docs/scaling.md`).
//!
//! ```text
//! cargo bench -p ringtrail-cli --bench scale_out     # about 2 minutes
//! cargo test -p ringtrail-cli --benches              # smoke run
//! ```

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ringtrail::Builder;
use ringtrail_testkit::cli;
use ringtrail_testkit::db::{self, no_drops};
use ringtrail_testkit::nats::NatsCluster;

const STREAM: &str = "BENCH";

fn emit(n: usize, offset: usize) {
    for i in 0..n {
        // A new trace every 50 events.
        let trace = format!("trace-{:08}", (offset + i) / 50);
        let span = tracing::info_span!("request", trace_id = %trace, user_id = "u-42");
        let _entered = span.enter();
        tracing::info!(
            n = (offset + i) as u64,
            items = 3,
            "order placed for {}",
            "ada"
        );
    }
}

fn numbered(url: &str) -> i64 {
    db::client(url)
        .query_one("SELECT count(*) FROM ringtrail.logs", &[])
        .unwrap()
        .get(0)
}

fn truncate(url: &str) {
    db::client(url)
        .batch_execute("TRUNCATE ringtrail.logs, ringtrail.batches")
        .unwrap();
}

/// User + system CPU of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command: state is field 0; utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `ringtrail sink` process, killed when dropped (a panic included).
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(urls: &str, shard: u32, database: &str) -> Worker {
    Worker(
        cli::command(&[
            "sink",
            "--nats",
            urls,
            "--stream",
            STREAM,
            "--shard",
            &shard.to_string(),
            "--database-url",
            database,
            "--progress-every",
            "60s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ringtrail sink starts"),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let events = if full { 200_000 } else { 5_000 };
    let rounds = if full { 3 } else { 1 };
    let nats = NatsCluster::start(3);
    let urls = nats.urls();
    let (cluster, direct) = ringtrail_cluster::durable_database("rt_scale_direct")
        .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
    let shard = |name: &str| match &cluster {
        Some(c) => c.create_database(name).unwrap(),
        None => ringtrail_cluster::fresh_database().unwrap(),
    };
    let shards = [shard("rt_scale_shard0"), shard("rt_scale_shard1")];
    db::apply_schema(&direct, None);
    let mut workers: Vec<Worker> = (0..2)
        .map(|i| worker(&urls, i as u32, &shards[i]))
        .collect();

    let (mut direct_rates, mut e2e_rates, mut cpu_per_row) = (Vec::new(), Vec::new(), Vec::new());
    let mut batch_sizes = Vec::new();
    for round in 0..rounds {
        // Direct: the same events straight into PostgreSQL.
        truncate(&direct);
        let (dispatch, guard) = db::start(
            Builder::new()
                .postgres(direct.as_str())
                .overflow(no_drops()),
        );
        let start = Instant::now();
        tracing::dispatcher::with_default(&dispatch, || emit(events, round * events));
        guard.flush().expect("direct flush");
        direct_rates.push(events as f64 / start.elapsed().as_secs_f64());
        let sizes: Vec<i64> = db::client(&direct)
            .query("SELECT bytes FROM ringtrail.batches", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        batch_sizes.extend(sizes);
        drop(guard);

        // Through the stream into two shards.
        for url in &shards {
            if numbered(url) > 0 {
                truncate(url);
            }
        }
        let cpu_before: f64 = workers.iter().map(|w| cpu_seconds(w.0.id())).sum();
        let (dispatch, guard) = db::start(
            Builder::new()
                .nats(urls.clone(), STREAM)
                .shards(2)
                .overflow(no_drops()),
        );
        let start = Instant::now();
        tracing::dispatcher::with_default(&dispatch, || emit(events, round * events));
        guard.flush().expect("published");
        let deadline = Instant::now() + Duration::from_secs(600);
        while shards.iter().map(|u| numbered(u)).sum::<i64>() < events as i64 {
            assert!(Instant::now() < deadline, "the workers never caught up");
            for w in &mut workers {
                assert!(w.0.try_wait().unwrap().is_none(), "a worker exited");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        e2e_rates.push(events as f64 / start.elapsed().as_secs_f64());
        let cpu: f64 = workers.iter().map(|w| cpu_seconds(w.0.id())).sum::<f64>() - cpu_before;
        cpu_per_row.push(cpu / events as f64 * 1e6);
        drop(guard);
    }

    // Publish → ack latency of batch-sized messages on the 3-replica stream.
    batch_sizes.sort_unstable();
    let size = batch_sizes
        .get(batch_sizes.len() / 2)
        .copied()
        .unwrap_or(1 << 20) as usize;
    let size = size.min(900 * 1024);
    let samples = if full { 200 } else { 10 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut latencies: Vec<Duration> = rt.block_on(async {
        let client = async_nats::connect(urls.split(',').collect::<Vec<_>>())
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        let payload = bytes::Bytes::from(vec![7u8; size]);
        let mut out = Vec::with_capacity(samples);
        for i in 0..samples {
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .message_id(format!("latency-{i}"));
            let start = Instant::now();
            // Subject of a shard no worker loads (10): the messages stay.
            let ack = js
                .send_publish(format!("{STREAM}.shard.10"), message)
                .await
                .unwrap();
            ack.await.unwrap();
            out.push(start.elapsed());
        }
        out
    });
    latencies.sort_unstable();
    drop(workers);
    let (direct_rate, e2e_rate) = (median(direct_rates), median(e2e_rates));
    if !full {
        assert!(direct_rate > 0.0 && e2e_rate > 0.0);
        return;
    }
    println!("## scale_out: {events} events, {rounds} rounds (medians)\n");
    println!("| path | rows/s | ÷ direct |");
    println!("|---|---:|---:|");
    println!("| direct PostgreSQL (`Builder::postgres`) | {direct_rate:.0} | 1.00 |");
    println!(
        "| producer → 3-replica stream → 2 workers → 2 shards | {e2e_rate:.0} | {:.2} |",
        e2e_rate / direct_rate
    );
    println!(
        "\npublish → ack, {size}-byte messages (the run's median batch), {samples} samples: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "worker CPU per row (both workers, user + system): {:.2} µs",
        median(cpu_per_row)
    );
    drop(cluster);
}
