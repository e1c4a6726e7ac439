//! Scale-out with the real engine: producers (`Builder::nats`) publish
//! batches to a real NATS JetStream cluster (`nats-server` processes on
//! loopback), and real `ringtrail sink` workers load them into real
//! PostgreSQL shards, while the stream's leader, a worker and a shard's
//! server are killed and come back. Then every event must be in exactly
//! once, every trace on one shard, both shards used, and each shard's
//! chain clean under `ringtrail verify`.

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringtrail::audit::{Agent, Finish, Identity, Permission, Tool, Trace};
use ringtrail::{Builder, Spool};
use ringtrail_cluster::{StopMode, TempCluster};
use ringtrail_testkit::cli;
use ringtrail_testkit::db::{self, no_drops};
use ringtrail_testkit::nats::NatsCluster;

const STREAM: &str = "RTTEST";

/// A `ringtrail sink` worker process.
struct SinkWorker(Child);

impl SinkWorker {
    fn start(urls: &str, stream: &str, shard: u32, database: &str) -> SinkWorker {
        let child = cli::command(&[
            "sink",
            "--nats",
            urls,
            "--stream",
            stream,
            "--shard",
            &shard.to_string(),
            "--database-url",
            database,
            "--ack-wait",
            "3s",
            "--progress-every",
            "1s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ringtrail sink starts");
        SinkWorker(child)
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid, which it still is (not
        // yet waited for).
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the worker ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SinkWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workload: `traces` traces, each with `per_trace` numbered log
/// events in a span carrying its trace id and a five-point audit trace,
/// some of them incomplete (no permission, or no result), the same in
/// every run.
fn workload(traces: std::ops::Range<usize>, per_trace: usize) {
    for t in traces {
        let id = format!("trace-{t:05}");
        let span = tracing::info_span!("request", trace_id = %id);
        let _entered = span.enter();
        for k in 0..per_trace {
            tracing::info!(n = (t * per_trace + k) as u64, "event {k} of {id}");
        }
        let trace = Trace::with_id(&id, Identity::user("ada"));
        trace.agent(Agent::new("planner").model("gpt-test"));
        if t % 7 != 0 {
            trace.permission(Permission::allow("p-1").tool("search"));
        }
        trace.tool(Tool::execution("search"));
        if t % 11 != 0 {
            trace.finish(Finish::success().tokens_total(10));
        } else {
            std::mem::forget(trace);
        }
    }
}

fn scalar(url: &str, sql: &str) -> i64 {
    db::client(url).query_one(sql, &[]).unwrap().get(0)
}

fn numbered(url: &str) -> i64 {
    scalar(
        url,
        "SELECT count(*) FROM ringtrail.logs WHERE fields ? 'n'",
    )
}

/// Waits until the shards hold `expected` numbered events in all.
fn wait_for(shards: &[&str], expected: i64, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let total: i64 = shards.iter().map(|url| numbered(url)).sum();
        if total >= expected || Instant::now() >= deadline {
            return total;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Chains on `url` whose head (the highest seq in the ledger) has no
/// signed checkpoint in `ringtrail.checkpoints`, once none is left or
/// `within` has passed.
fn unanchored(url: &str, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let left = scalar(
            url,
            "SELECT count(*) FROM (SELECT chain_id, max(seq) AS head FROM ringtrail.batches \
             WHERE chain_id IS NOT NULL GROUP BY chain_id) h \
             WHERE NOT EXISTS (SELECT 1 FROM ringtrail.checkpoints c \
             WHERE c.chain_id = h.chain_id AND c.seq = h.head)",
        );
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn one_server_one_shard_exactly_once() {
    let nats = NatsCluster::start(1);
    let url = db::database();
    let worker = SinkWorker::start(&nats.urls(), STREAM, 0, &url);
    let (dispatch, guard) = db::start(
        Builder::new()
            .nats(nats.urls(), STREAM)
            .overflow(no_drops())
            .batch_rows(2_048)
            .batch_bytes(8 << 20),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        workload(0..40, 50);
        // Then batches of several MiB, over NATS's 1 MiB payload: each
        // travels as pieces.
        guard.flush().expect("flushed");
        let text = "x".repeat(1_500);
        let span = tracing::info_span!("big", trace_id = "trace-big");
        let _entered = span.enter();
        for k in 0..3_000u64 {
            tracing::info!(n = 100_000 + k, body = %text, "big {k}");
        }
    });
    let stats = guard
        .shutdown(Duration::from_secs(30))
        .expect("clean shutdown");
    assert_eq!(stats.lost, 0);
    assert_eq!(stats.written, stats.enqueued, "{stats:?}");
    assert_eq!(wait_for(&[&url], 5_000, Duration::from_secs(60)), 5_000);
    let distinct = "SELECT count(DISTINCT fields->>'n') FROM ringtrail.logs WHERE fields ? 'n'";
    assert_eq!(scalar(&url, distinct), 5_000);
    // The large batches arrived as pieces: ledger rows whose sealed batch
    // has another id, and none over the payload.
    let pieces = scalar(
        &url,
        "SELECT count(*) FROM ringtrail.batches WHERE sealed_id <> batch_id",
    );
    assert!(pieces >= 2, "{pieces} pieces");
    assert!(scalar(&url, "SELECT max(bytes) FROM ringtrail.batches") < 1 << 20);
    // The checkpoint signed at shutdown anchors the chain's head, in
    // the batch it rode in or as a message of its own.
    assert_eq!(unanchored(&url, Duration::from_secs(30)), 0);
    // Every row of the producer is there: events, audit points, reports.
    assert_eq!(db::count(&url) as u64, stats.written);
    assert_eq!(nats.stream_state(STREAM).0, 1, "one server: one replica");
    assert!(worker.terminate().success(), "SIGTERM: exit 0");
    cli::assert_success(&cli::run_with_url(&["verify"], &url));
}

#[test]
fn a_cluster_survives_a_leader_a_worker_and_a_shard_dying() {
    let mut nats = NatsCluster::start(3);
    let urls = nats.urls();
    // Shard 0 on a server of its own, to stop; shard 1 and the
    // single-node reference on the shared one.
    let pg0 = TempCluster::start().expect("shard 0's server");
    let shard0 = pg0.create_database("shard0").expect("shard 0");
    let shard1 = db::database();
    let single = db::database();

    let mut workers0 = vec![
        SinkWorker::start(&urls, STREAM, 0, &shard0),
        SinkWorker::start(&urls, STREAM, 0, &shard0),
    ];
    let _worker1 = SinkWorker::start(&urls, STREAM, 1, &shard1);

    let (traces, per_trace) = (400usize, 50usize);
    let expected = (traces * per_trace) as i64;
    let spool = db::spool_dir("scale-out");
    let (dispatch, guard) = db::start(
        Builder::new()
            .nats(urls.clone(), STREAM)
            .shards(2)
            .spool(Spool::dir(&spool).after(Duration::from_secs(1)))
            .stall_timeout(Duration::from_secs(2))
            .overflow(no_drops())
            .batch_rows(500),
    );
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let producing = producing.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                // About 12 s of production: longer than the faults take.
                for chunk in 0..80 {
                    let step = traces / 80;
                    workload(chunk * step..(chunk + 1) * step, per_trace);
                    std::thread::sleep(Duration::from_millis(150));
                }
            });
            producing.store(false, Ordering::Relaxed);
            guard.shutdown(Duration::from_secs(60))
        })
    };

    // Faults while the producer runs.
    std::thread::sleep(Duration::from_millis(800));
    let leader = nats.leader_of(STREAM);
    nats.kill(leader);
    std::thread::sleep(Duration::from_secs(2));
    nats.restart(leader);

    workers0.remove(0).kill();
    workers0.push(SinkWorker::start(&urls, STREAM, 0, &shard0));

    pg0.stop(StopMode::Fast).expect("stop shard 0");
    std::thread::sleep(Duration::from_secs(3));
    pg0.start_again().expect("start shard 0");
    assert!(
        producing.load(Ordering::Relaxed),
        "the faults came while producing"
    );

    // A batch that met the leader's election went to the spool and was
    // replayed: the shutdown reports that failure, with the final counts.
    let stats = match producer.join().unwrap() {
        Ok(stats) => stats,
        Err(ringtrail::Error::Shutdown { stats, source }) => {
            assert!(
                matches!(
                    *source,
                    ringtrail::Error::Write {
                        fate: ringtrail::Fate::Spooled,
                        ..
                    }
                ),
                "{source}"
            );
            *stats
        }
        Err(e) => panic!("the producer's shutdown: {e}"),
    };
    db::assert_counts_add_up(&stats);
    assert_eq!(stats.lost, 0, "{stats:?}");
    assert_eq!(stats.dropped, 0, "{stats:?}");

    let loaded = wait_for(&[&shard0, &shard1], expected, Duration::from_secs(120));
    assert_eq!(loaded, expected, "every event once across the shards");
    for url in [&shard0, &shard1] {
        let distinct = scalar(
            url,
            "SELECT count(DISTINCT fields->>'n') FROM ringtrail.logs WHERE fields ? 'n'",
        );
        assert_eq!(distinct, numbered(url), "no event twice on a shard");
        assert!(numbered(url) > expected / 5, "both shards used");
    }
    let ns = |url: &str| -> HashSet<String> {
        db::client(url)
            .query(
                "SELECT fields->>'n' FROM ringtrail.logs WHERE fields ? 'n'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert!(
        ns(&shard0).is_disjoint(&ns(&shard1)),
        "no event on both shards"
    );
    let traces_of = |url: &str| -> HashSet<String> {
        db::client(url)
            .query(
                "SELECT DISTINCT trace_id FROM ringtrail.logs WHERE trace_id IS NOT NULL",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let (t0, t1) = (traces_of(&shard0), traces_of(&shard1));
    assert!(t0.is_disjoint(&t1), "every trace on one shard");
    assert_eq!(t0.len() + t1.len(), traces);
    for trace in &t0 {
        assert_eq!(ringtrail::transport::shard_of(trace, 2), 0);
    }

    // The same workload on one node, for the cluster reads to match.
    let (dispatch, guard) = db::start(db::builder(&single).overflow(no_drops()));
    tracing::dispatcher::with_default(&dispatch, || workload(0..traces, per_trace));
    guard
        .shutdown(Duration::from_secs(60))
        .expect("the reference");

    let cluster = [
        "--database-url",
        shard0.as_str(),
        "--database-url",
        shard1.as_str(),
    ];
    let with = |args: &[&str], urls: &[&str]| -> String {
        let all: Vec<&str> = args.iter().chain(urls).copied().collect();
        cli::assert_success(&cli::run(&all))
    };
    // Every shard's chains are anchored at their heads, and verify clean,
    // each alone and as a cluster.
    for url in [&shard0, &shard1] {
        assert_eq!(unanchored(url, Duration::from_secs(30)), 0);
    }
    for url in [&shard0, &shard1] {
        cli::assert_success(&cli::run_with_url(&["verify"], url));
    }
    with(&["verify"], &cluster);
    // Cluster reads are complete and in time order.
    let rows = with(&["query", "--json", "--limit", "0"], &cluster);
    let times: Vec<String> = rows
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"].to_string())
        .collect();
    let stored = scalar(&shard0, "SELECT count(*) FROM ringtrail.logs")
        + scalar(&shard1, "SELECT count(*) FROM ringtrail.logs");
    assert_eq!(times.len() as i64, stored, "every row of both shards");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    // audit-gaps across the cluster finds what one node finds.
    let gaps = |out: String| -> Vec<(String, Vec<String>)> {
        let mut found: Vec<(String, Vec<String>)> = out
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let codes = v["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["code"].as_str().unwrap().to_owned())
                    .collect();
                (v["trace_id"].as_str().unwrap().to_owned(), codes)
            })
            .collect();
        found.sort();
        found
    };
    let across = gaps(with(&["audit-gaps", "--json", "--since", "1h"], &cluster));
    let alone = gaps(with(
        &["audit-gaps", "--json", "--since", "1h"],
        &["--database-url", &single],
    ));
    assert!(
        across.len() >= traces / 11,
        "the workload has gaps: {}",
        across.len()
    );
    assert_eq!(across, alone);
    // The stream is replicated, and drained: work-queue retention.
    let (replicas, left, window) = nats.stream_state(STREAM);
    assert_eq!(replicas, 3);
    assert!(window >= Duration::from_secs(120), "{window:?}");
    assert_eq!(left, 0, "every message acknowledged");
}

#[test]
fn sink_refuses_bad_arguments_and_unreachable_servers_in_one_line() {
    let out = cli::run(&[
        "sink",
        "--nats",
        "http://x",
        "--shard",
        "0",
        "--database-url",
        "postgres://x/y",
    ]);
    cli::assert_one_line_failure(&out, 2, "nats://host:port");
    let out = cli::run(&[
        "sink",
        "--nats",
        "nats://127.0.0.1:1",
        "--stream",
        "a.b",
        "--shard",
        "0",
        "--database-url",
        "postgres://x/y",
    ]);
    cli::assert_one_line_failure(&out, 2, "stream name");
    let url = db::database();
    let out = cli::run(&[
        "sink",
        "--nats",
        "nats://127.0.0.1:1",
        "--shard",
        "0",
        "--database-url",
        &url,
    ]);
    cli::assert_one_line_failure(&out, 1, "NATS");
    let out = cli::run(&["serve", "--shards", "2"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shards_without_nats_is_refused_at_build() {
    let err = Builder::new()
        .postgres("postgres://127.0.0.1:1/x")
        .shards(2)
        .build()
        .expect_err("refused");
    assert!(err.to_string().contains("nats"), "{err}");
}

/// OTLP/JSON logs: `traces` traces of `per_trace` records each.
fn otlp_logs(traces: usize, per_trace: usize) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let records: Vec<serde_json::Value> = (0..traces * per_trace)
        .map(|i| {
            serde_json::json!({
                "timeUnixNano": now.to_string(),
                "severityNumber": 9,
                "body": {"stringValue": format!("otlp {i}")},
                "traceId": format!("{:032x}", 0xabc0 + i / per_trace),
                "spanId": "0c0c0c0c0c0c0c0c",
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]
    }))
    .unwrap()
}

#[test]
fn serve_publishes_otlp_to_the_shards() {
    let nats = NatsCluster::start(1);
    let (shard0, shard1) = (db::database(), db::database());
    let _workers = [
        SinkWorker::start(&nats.urls(), "OTLP", 0, &shard0),
        SinkWorker::start(&nats.urls(), "OTLP", 1, &shard1),
    ];
    let serve = ringtrail_testkit::serve::Serve::start(
        &shard0,
        &["--nats", &nats.urls(), "--stream", "OTLP", "--shards", "2"],
    );
    let answer = ringtrail_testkit::serve::curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
            &format!("{}/v1/logs", serve.http),
        ],
        &otlp_logs(20, 10),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(serve.stop(), Some(0));
    let count = |url: &str| {
        scalar(
            url,
            "SELECT count(*) FROM ringtrail.logs WHERE message LIKE 'otlp %'",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&shard0) + count(&shard1) < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count(&shard0) + count(&shard1), 200, "every record once");
    assert!(count(&shard0) > 0 && count(&shard1) > 0, "both shards used");
    for (shard, url) in [(0, &shard0), (1, &shard1)] {
        let traces: Vec<String> = db::client(url)
            .query(
                "SELECT DISTINCT trace_id FROM ringtrail.logs WHERE message LIKE 'otlp %'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for trace in traces {
            assert_eq!(ringtrail::transport::shard_of(&trace, 2), shard, "{trace}");
        }
    }
}
