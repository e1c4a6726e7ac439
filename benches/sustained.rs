//! # `sustained`: a paced stream, not a burst
//!
//! The other benches measure bursts into an empty table. A service logs a
//! stream. This bench measures the server's own capacity for the very rows
//! ringtrail writes, then paces four producer threads from it, on default
//! settings, and counts what each round drops.
//!
//! ## What it does, in order
//!
//! 1. **Calibration.** A default pipeline stores [`CALIBRATION_ROWS`] events
//!    (the event below, in a `request` span with three context ids). The
//!    server writes them out with `COPY (SELECT * FROM ringtrail.logs) TO
//!    '<file>' (FORMAT binary)`: a file holding exactly the rows ringtrail makes.
//! 2. **Raw server COPY**: `TRUNCATE`, then `COPY ringtrail.logs FROM
//!    '<file>' (FORMAT binary)`, server side, no client at all; the median
//!    of three. This is the capacity the paced rounds are a share of.
//! 3. **Raw client COPY**: the same bytes, cut into batches of 8,192 rows,
//!    sent by one client with `BEGIN; COPY … FROM STDIN; COMMIT` per batch
//!    (pre-encoded, no capture, no encoding); the median of three.
//! 4. **Raw server COPY, sustained**: the same file loaded back to back
//!    into a table that keeps growing, for as many rounds as the paced
//!    runs. No client at all: what the server and its disk keep up over
//!    time. Its median after the first round is the *sustained* capacity.
//! 5. **Paced at 75 %** of raw server COPY, a default pipeline
//!    (`Builder::new().postgres(url)`, nothing else), 4 threads, 3 rounds of
//!    3 s on a table that keeps growing. Per round: events emitted, dropped,
//!    committed rows/s; what the server did meanwhile (checkpoints, WAL
//!    bytes and full-page images, buffers the backends wrote themselves,
//!    autovacuum and autoanalyze runs, the table's size); the disk
//!    (`/proc/diskstats`, `/proc/meminfo` dirty pages); the commit lag of
//!    the round's batches from the batch ledger (`committed_at − last_ts`);
//!    and CPU by thread group (`/proc/.../schedstat`: on a CPU, and
//!    runnable but waiting for one).
//! 6. **Paced at 75 % of the sustained capacity**, the same.
//! 7. **Paced at 100 %, with a spool**: the same with `.spool(Spool::dir(…))`.
//!    Afterwards the table must hold every enqueued event: whatever
//!    spilled to disk was replayed.
//! 8. **Flat out**: 4 threads emitting as fast as they can with
//!    `OverflowPolicy::Block` (nothing dropped, producers wait), 3 rounds of
//!    3 s: rows committed per second with producers live, ÷ raw client COPY.
//!
//! At the end it prints the server log's checkpoint lines (throwaway
//! cluster only), with each round's start on the server's clock beside
//! them.
//!
//! Everything is printed as markdown: rates, and every figure as a ratio
//! to the raw capacities measured in this same run, so any machine gives a
//! fair figure.
//!
//! ## Running it
//!
//! ```text
//! cargo bench --bench sustained          # about 1 minute
//! cargo test --benches                   # smoke run: short rounds, nothing printed
//! RINGTRAIL_SUSTAINED_ROUNDS=5 cargo bench --bench sustained
//! ```
//!
//! The server is a throwaway cluster ([`ringtrail_cluster::TempCluster`])
//! with PostgreSQL's default, durable settings, or a fresh database on the
//! server at `DATABASE_URL`. Server-side `COPY` to and from a file needs a
//! superuser (or `pg_read_server_files` and `pg_write_server_files`).

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use ringtrail::{Guard, OverflowPolicy, Spool};
use tracing_subscriber::prelude::*;

/// Producer threads, as in the issue that asked for this bench.
const THREADS: usize = 4;
/// Events stored for the calibration file.
const CALIBRATION_ROWS: u64 = 300_000;
/// Rows per batch of the raw client COPY: ringtrail's default `batch_rows`.
const BATCH_ROWS: usize = 8_192;
/// The calibration file's name, in the server's data directory.
const COPY_FILE: &str = "ringtrail_sustained.bin";

/// The event every producer emits: a message and five fields of mixed
/// types, as a web handler would log.
#[inline(never)]
fn emit(i: u64) {
    tracing::info!(
        user_id_hash = 42u64,
        latency_ms = 1.5f64,
        ok = true,
        status = 200u16,
        route = "/v1/orders/{id}",
        "request {} took {}ms",
        i,
        3
    );
}

/// The span every producer runs in.
fn request_span(thread: usize) -> tracing::Span {
    tracing::info_span!(
        "request",
        user_id = "user-7f3a9c21",
        session_id = "sess-2b8e41d0c5",
        trace_id =
            tracing::field::display(format_args!("4bf92f3577b34da6a3ce929d0e0e47{thread:02}"))
    )
}

struct Setup {
    /// Quick smoke run under `cargo test --benches`.
    smoke: bool,
    rounds: usize,
    round: Duration,
    calibration_rows: u64,
}

impl Setup {
    fn from_env() -> Setup {
        let smoke = !std::env::args().any(|a| a == "--bench");
        let rounds = std::env::var("RINGTRAIL_SUSTAINED_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        if smoke {
            Setup {
                smoke,
                rounds: 1,
                round: Duration::from_millis(300),
                calibration_rows: 20_000,
            }
        } else {
            Setup {
                smoke,
                rounds,
                round: Duration::from_secs(3),
                calibration_rows: CALIBRATION_ROWS,
            }
        }
    }
}

/// The server and an admin connection.
struct Db {
    url: String,
    /// [`COPY_FILE`] in the server's data directory (server-side path).
    file: String,
    /// The throwaway cluster's `server.log`, for its checkpoint lines.
    log: Option<PathBuf>,
    admin: Client,
    _cluster: Option<ringtrail_cluster::TempCluster>,
}

impl Db {
    fn start() -> Db {
        let (cluster, url) = ringtrail_cluster::durable_database("ringtrail_sustained_bench")
            .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
        let mut admin = Client::connect(&url, NoTls).expect("connect to the benchmark database");
        let data_dir: String = admin
            .query_one("SELECT current_setting('data_directory')", &[])
            .expect("the server's data directory (needs a superuser)")
            .get(0);
        let mut db = Db {
            url,
            file: format!("{data_dir}/{COPY_FILE}"),
            log: cluster
                .as_ref()
                .and_then(|c| c.data_dir().parent().map(|root| root.join("server.log"))),
            admin,
            _cluster: cluster,
        };
        // Migrations, applied by a pipeline like any user's.
        let (_layer, guard) = ringtrail::Builder::new()
            .postgres(db.url.clone())
            .build()
            .expect("a pipeline");
        drop(guard);
        db.reset();
        db
    }

    /// Empties ringtrail's tables and checkpoints, so one phase's WAL and
    /// dirty pages do not land in the next one.
    fn reset(&mut self) {
        self.admin
            .batch_execute(
                "TRUNCATE ringtrail.logs, ringtrail.batches, ringtrail.dead_letters; CHECKPOINT",
            )
            .expect("truncate");
    }

    fn count(&mut self) -> i64 {
        self.admin
            .query_one(
                "SELECT count(*) FROM ringtrail.logs WHERE target <> 'ringtrail::dropped'",
                &[],
            )
            .expect("count rows")
            .get(0)
    }

    fn server(&mut self) -> ServerStats {
        let row = self
            .admin
            .query_one(
                "SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
                        (SELECT wal_bytes::bigint FROM pg_stat_wal),
                        (SELECT wal_fpi FROM pg_stat_wal),
                        (SELECT buffers_backend FROM pg_stat_bgwriter),
                        coalesce((SELECT autovacuum_count + autoanalyze_count FROM pg_stat_user_tables
                                  WHERE relid = 'ringtrail.logs'::regclass), 0),
                        pg_total_relation_size('ringtrail.logs')",
                &[],
            )
            .expect("read pg_stat_*");
        let (disk_written, disk_write_ms) = disk();
        ServerStats {
            checkpoints: row.get(0),
            wal_bytes: row.get(1),
            wal_fpi: row.get(2),
            buffers_backend: row.get(3),
            autovacuums: row.get(4),
            table_bytes: row.get(5),
            disk_written,
            disk_write_ms,
            dirty_kib: dirty_kib(),
        }
    }

    /// Commit lag (`committed_at - last_ts`) of the batches committed
    /// since `after` (a server timestamp), in ms: (batches, median, max).
    fn commit_lag(&mut self, after: f64) -> (i64, f64, f64) {
        let row = self
            .admin
            .query_one(
                "SELECT count(*),
                        coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - last_ts)), 0)::float8 * 1000,
                        coalesce(max(extract(epoch FROM committed_at - last_ts)), 0)::float8 * 1000
                 FROM ringtrail.batches WHERE extract(epoch FROM committed_at)::float8 > $1",
                &[&after],
            )
            .expect("read the batch ledger");
        (row.get(0), row.get(1), row.get(2))
    }

    /// The server log's checkpoint lines written since `offset` bytes.
    fn checkpoint_lines(&self, offset: u64) -> Vec<String> {
        let Some(log) = &self.log else {
            return Vec::new();
        };
        let text = std::fs::read(log).unwrap_or_default();
        let from = (offset as usize).min(text.len());
        String::from_utf8_lossy(&text[from..])
            .lines()
            .filter(|l| l.contains("checkpoint"))
            .map(str::to_owned)
            .collect()
    }

    fn log_len(&self) -> u64 {
        self.log
            .as_ref()
            .and_then(|l| std::fs::metadata(l).ok())
            .map_or(0, |m| m.len())
    }

    /// The server's clock as text, for lining rounds up with its log.
    fn clock_text(&mut self) -> String {
        self.admin
            .query_one("SELECT clock_timestamp()::text", &[])
            .expect("server clock")
            .get(0)
    }

    fn now(&mut self) -> f64 {
        self.admin
            .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
            .expect("server clock")
            .get(0)
    }
}

/// Bytes written and ms spent writing, summed over the whole-disk devices
/// of `/proc/diskstats` (zeros where it cannot be read).
fn disk() -> (i64, i64) {
    let text = std::fs::read_to_string("/proc/diskstats").unwrap_or_default();
    let mut out = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Whole disks only (vda, sda, nvme0n1), not partitions or loops.
        if f.len() < 11 || f[2].starts_with("loop") || f[2].starts_with("zram") || f[1] != "0" {
            continue;
        }
        out.0 += f[9].parse::<i64>().unwrap_or(0) * 512;
        out.1 += f[10].parse::<i64>().unwrap_or(0);
    }
    out
}

/// `Dirty` + `Writeback` of `/proc/meminfo`, KiB.
fn dirty_kib() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("Dirty:") || l.starts_with("Writeback:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        .sum()
}

impl ServerStats {
    /// Counters as differences from `before`; gauges as they are now.
    fn since(&self, before: &ServerStats) -> ServerStats {
        ServerStats {
            checkpoints: self.checkpoints - before.checkpoints,
            wal_bytes: self.wal_bytes - before.wal_bytes,
            wal_fpi: self.wal_fpi - before.wal_fpi,
            buffers_backend: self.buffers_backend - before.buffers_backend,
            disk_written: self.disk_written - before.disk_written,
            disk_write_ms: self.disk_write_ms - before.disk_write_ms,
            autovacuums: self.autovacuums - before.autovacuums,
            dirty_kib: self.dirty_kib,
            table_bytes: self.table_bytes,
        }
    }
}

#[derive(Clone, Copy)]
struct ServerStats {
    checkpoints: i64,
    wal_bytes: i64,
    /// Full-page images written to the WAL.
    wal_fpi: i64,
    /// Buffers the backends had to write out themselves.
    buffers_backend: i64,
    /// Bytes written to all block devices (`/proc/diskstats`), and the ms
    /// they spent writing.
    disk_written: i64,
    disk_write_ms: i64,
    /// The kernel's dirty and writeback page cache (`/proc/meminfo`), KiB.
    dirty_kib: i64,
    autovacuums: i64,
    table_bytes: i64,
}

/// CPU and run-queue ns of producer threads that have ended.
static PRODUCER_CPU: AtomicU64 = AtomicU64::new(0);
static PRODUCER_WAIT: AtomicU64 = AtomicU64::new(0);

/// Four producers in a span each, paced to `rate` events/s in total (or
/// flat out when `rate` is `None`), for one round.
fn produce(dispatch: &tracing::Dispatch, rate: Option<f64>, length: Duration) -> u64 {
    let emitted = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (dispatch, emitted, start, stop) = (
                dispatch.clone(),
                emitted.clone(),
                start.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let span = request_span(t);
                    let _entered = span.enter();
                    let per_thread = rate.map(|r| r / THREADS as f64);
                    start.wait();
                    let began = Instant::now();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let due = match per_thread {
                            Some(r) => (began.elapsed().as_secs_f64() * r) as u64,
                            None => n + 256,
                        };
                        if n >= due {
                            std::thread::sleep(Duration::from_micros(200));
                            continue;
                        }
                        while n < due {
                            emit(n);
                            n += 1;
                        }
                    }
                    emitted.fetch_add(n, Ordering::Relaxed);
                    if let Some((cpu, wait)) =
                        Cpu::read_sched(std::path::Path::new("/proc/thread-self/schedstat"))
                    {
                        PRODUCER_CPU.fetch_add(cpu, Ordering::Relaxed);
                        PRODUCER_WAIT.fetch_add(wait, Ordering::Relaxed);
                    }
                })
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("a producer thread");
    }
    emitted.load(Ordering::Relaxed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Calibration: stores `rows` events through a default pipeline, then has
/// the server write them to [`COPY_FILE`] (through a `SELECT`: `logs` is
/// partitioned, and `COPY` reads only plain tables directly). Returns the file's bytes, read
/// back through the client.
fn calibrate(db: &mut Db, rows: u64) -> Vec<u8> {
    let (layer, guard) = ringtrail::Builder::new()
        .postgres(db.url.clone())
        .overflow(OverflowPolicy::Block {
            timeout: Duration::from_secs(10),
        })
        .build()
        .expect("a pipeline");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let span = request_span(0);
        let _entered = span.enter();
        for i in 0..rows {
            emit(i);
        }
    });
    guard.flush().expect("flush the calibration rows");
    assert_eq!(guard.stats().dropped, 0);
    drop(guard);
    db.admin
        .batch_execute(&format!(
            "DELETE FROM ringtrail.logs WHERE target = 'ringtrail::dropped';
             COPY (SELECT * FROM ringtrail.logs) TO '{}' (FORMAT binary)",
            db.file
        ))
        .expect("server-side COPY TO a file (needs a superuser)");
    let mut bytes = Vec::new();
    let mut reader = db
        .admin
        .copy_out("COPY (SELECT * FROM ringtrail.logs) TO STDOUT (FORMAT binary)")
        .expect("COPY TO STDOUT");
    std::io::Read::read_to_end(&mut reader, &mut bytes).expect("read the COPY stream");
    drop(reader);
    assert_eq!(db.count(), rows as i64, "calibration rows");
    bytes
}

/// Raw server-side COPY of the calibration file into the empty table:
/// rows/s, the median of three.
fn raw_server_copy(db: &mut Db, rows: u64) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..3 {
        db.reset();
        let t = Instant::now();
        db.admin
            .batch_execute(&format!(
                "COPY ringtrail.logs FROM '{}' (FORMAT binary)",
                db.file
            ))
            .expect("server-side COPY FROM the file");
        rates.push(rows as f64 / t.elapsed().as_secs_f64());
    }
    assert_eq!(db.count(), rows as i64);
    median(rates)
}

/// Raw server-side COPY, sustained: the calibration file loaded back to
/// back into a table that keeps growing, for `rounds` rounds of
/// `length`, with the same server-side figures as the paced rounds. No
/// client, no ringtrail: what the server and the disk keep up over time.
fn raw_server_sustained(db: &mut Db, rows: u64, rounds: usize, length: Duration) -> Vec<Round> {
    db.reset();
    let mut out = Vec::new();
    for _ in 0..rounds {
        let began = db.clock_text();
        let before = (db.server(), db.now(), Cpu::now());
        let t = Instant::now();
        let mut loaded = 0u64;
        while t.elapsed() < length {
            db.admin
                .batch_execute(&format!(
                    "COPY ringtrail.logs FROM '{}' (FORMAT binary)",
                    db.file
                ))
                .expect("server-side COPY FROM the file");
            loaded += rows;
        }
        let seconds = t.elapsed().as_secs_f64();
        let after = db.server();
        let cpu = Cpu::now().since(&before.2);
        out.push(Round {
            began,
            emitted: loaded,
            seconds,
            dropped: 0,
            committed_per_s: loaded as f64 / seconds,
            server: after.since(&before.0),
            lag: (0, 0.0, 0.0),
            cpu,
        });
    }
    out
}

/// Raw client COPY of the same rows, pre-encoded, in batches of
/// [`BATCH_ROWS`], one transaction each: rows/s, the median of three.
fn raw_client_copy(db: &mut Db, batches: &[Vec<u8>], rows: u64) -> f64 {
    let mut client = Client::connect(&db.url, NoTls).expect("connect");
    let mut rates = Vec::new();
    for _ in 0..3 {
        db.reset();
        let t = Instant::now();
        for batch in batches {
            let mut tx = client.transaction().expect("BEGIN");
            let mut writer = tx
                .copy_in("COPY ringtrail.logs FROM STDIN (FORMAT binary)")
                .expect("COPY FROM STDIN");
            std::io::Write::write_all(&mut writer, batch).expect("send a batch");
            writer.finish().expect("COPY done");
            tx.commit().expect("COMMIT");
        }
        rates.push(rows as f64 / t.elapsed().as_secs_f64());
    }
    assert_eq!(db.count(), rows as i64);
    median(rates)
}

/// CPU time (ns on a CPU, and ns runnable but waiting for one, from
/// Linux's `/proc/.../schedstat`) by group: this process's threads by
/// name, and the server's processes by role.
#[derive(Default, Clone)]
struct Cpu(std::collections::BTreeMap<String, (u64, u64)>);

impl Cpu {
    fn read_sched(path: &std::path::Path) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut n = text.split_whitespace().map(|x| x.parse::<u64>().ok());
        Some((n.next()??, n.next()??))
    }

    fn now() -> Cpu {
        let mut groups = std::collections::BTreeMap::new();
        let mut add = |group: String, sched: (u64, u64)| {
            let e: &mut (u64, u64) = groups.entry(group).or_default();
            e.0 += sched.0;
            e.1 += sched.1;
        };
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                let comm = comm.trim();
                let group = if comm.starts_with("ringtrail-write") {
                    "client: writer"
                } else if comm.starts_with("ringtrail-ship") {
                    "client: shippers"
                } else if comm.starts_with("ringtrail") {
                    "client: other ringtrail"
                } else {
                    "client: bench main"
                };
                if let Some(sched) = Cpu::read_sched(&task.path().join("schedstat")) {
                    add(group.to_owned(), sched);
                }
            }
        }
        add(
            "client: producers".to_owned(),
            (
                PRODUCER_CPU.load(Ordering::Relaxed),
                PRODUCER_WAIT.load(Ordering::Relaxed),
            ),
        );
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                if comm.trim() != "postgres" {
                    continue;
                }
                let cmdline = std::fs::read_to_string(p.path().join("cmdline")).unwrap_or_default();
                let role = if cmdline.contains("ringtrail_sustained_bench") {
                    "server: backends".to_owned()
                } else if let Some(rest) = cmdline.strip_prefix("postgres: ") {
                    format!(
                        "server: {}",
                        rest.trim_end_matches('\0')
                            .split_whitespace()
                            .next()
                            .unwrap_or("?")
                    )
                } else {
                    "server: postmaster".to_owned()
                };
                if let Some(sched) = Cpu::read_sched(&p.path().join("schedstat")) {
                    add(role, sched);
                }
            }
        }
        Cpu(groups)
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu(self
            .0
            .iter()
            .map(|(k, &(cpu, wait))| {
                let (c0, w0) = before.0.get(k).copied().unwrap_or_default();
                (k.clone(), (cpu.saturating_sub(c0), wait.saturating_sub(w0)))
            })
            .collect())
    }
}

/// One round's figures.
struct Round {
    /// The server's clock when the round began.
    began: String,
    emitted: u64,
    seconds: f64,
    dropped: u64,
    committed_per_s: f64,
    server: ServerStats,
    /// (batches, median ms, max ms) of commit lag.
    lag: (i64, f64, f64),
    cpu: Cpu,
}

/// Runs `rounds` rounds of `setup.round` through a fresh pipeline built by
/// `build`, paced at `rate` (or flat out). Returns the rounds and the
/// pipeline's guard, still open.
fn rounds(
    db: &mut Db,
    setup: &Setup,
    rate: Option<f64>,
    build: impl FnOnce(ringtrail::Builder) -> ringtrail::Builder,
) -> (Vec<Round>, Guard) {
    db.reset();
    let (layer, guard) = build(ringtrail::Builder::new().postgres(db.url.clone()))
        .build()
        .expect("a pipeline");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut out = Vec::new();
    let mut before = (guard.stats(), db.server(), db.now());
    let mut cpu_before = Cpu::now();
    for _ in 0..setup.rounds {
        let began = db.clock_text();
        let t = Instant::now();
        let emitted = produce(&dispatch, rate, setup.round);
        let elapsed = t.elapsed().as_secs_f64();
        let cpu = Cpu::now();
        let after = (guard.stats(), db.server(), db.now());
        let lag = db.commit_lag(before.2);
        out.push(Round {
            began,
            emitted,
            seconds: elapsed,
            dropped: after.0.dropped - before.0.dropped,
            committed_per_s: (after.0.written - before.0.written) as f64 / elapsed,
            server: after.1.since(&before.1),
            lag,
            cpu: cpu.since(&cpu_before),
        });
        before = (guard.stats(), db.server(), db.now());
        cpu_before = Cpu::now();
    }
    (out, guard)
}

fn print_rounds(title: &str, rows: &[Round], baseline: f64, baseline_name: &str, print: bool) {
    if !print {
        return;
    }
    println!("\n### {title}\n");
    println!(
        "| round | began (server clock) | emitted/s | dropped | committed rows/s | ÷ {baseline_name} | batches | commit lag median / max (ms) | checkpoints | WAL MiB | WAL FPIs | backend buffer writes | autovacuum+analyze | table MiB | disk MiB written | disk write ms | dirty+writeback MiB |"
    );
    println!(
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (i, r) in rows.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {} | {:.0} | {:.2}× | {} | {:.0} / {:.0} | {} | {:.0} | {} | {} | {} | {:.0} | {:.0} | {} | {:.0} |",
            i + 1,
            r.began.get(11..23).unwrap_or(&r.began),
            r.emitted as f64 / r.seconds,
            r.dropped,
            r.committed_per_s,
            r.committed_per_s / baseline,
            r.lag.0,
            r.lag.1,
            r.lag.2,
            r.server.checkpoints,
            r.server.wal_bytes as f64 / (1 << 20) as f64,
            r.server.wal_fpi,
            r.server.buffers_backend,
            r.server.autovacuums,
            r.server.table_bytes as f64 / (1 << 20) as f64,
            r.server.disk_written as f64 / (1 << 20) as f64,
            r.server.disk_write_ms,
            r.server.dirty_kib as f64 / 1024.0,
        );
    }
    println!("\nCPU per round, in cores (CPU s per wall s), with run-queue wait in brackets:\n");
    let groups: std::collections::BTreeSet<&String> =
        rows.iter().flat_map(|r| r.cpu.0.keys()).collect();
    println!(
        "| group | {} |",
        (1..=rows.len())
            .map(|i| format!("round {i}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---:|".repeat(rows.len()));
    for g in groups {
        let cells: Vec<String> = rows
            .iter()
            .map(|r| {
                let (cpu, wait) = r.cpu.0.get(g).copied().unwrap_or_default();
                format!(
                    "{:.2} ({:.2})",
                    cpu as f64 / 1e9 / r.seconds,
                    wait as f64 / 1e9 / r.seconds
                )
            })
            .collect();
        println!("| {g} | {} |", cells.join(" | "));
    }
}

fn spool_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ringtrail-sustained-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn main() {
    let setup = Setup::from_env();
    let print = !setup.smoke;
    let mut db = Db::start();

    let file = calibrate(&mut db, setup.calibration_rows);
    let batches = support::split_copy(&file, BATCH_ROWS);
    let server = raw_server_copy(&mut db, setup.calibration_rows);
    let client = raw_client_copy(&mut db, &batches, setup.calibration_rows);
    if print {
        println!(
            "## sustained: {} producer threads, rounds of {:?}",
            THREADS, setup.round
        );
        println!(
            "\n| baseline ({} rows of {} bytes each on disk) | rows/s |",
            setup.calibration_rows,
            file.len() as u64 / setup.calibration_rows
        );
        println!("|---|---:|");
        println!("| raw server COPY (`COPY FROM` a file, no client) | {server:.0} |");
        println!("| raw client COPY (pre-encoded, {BATCH_ROWS}-row transactions) | {client:.0} |");
    }

    let log_from = db.log_len();
    let raw_sustained =
        raw_server_sustained(&mut db, setup.calibration_rows, setup.rounds, setup.round);
    print_rounds(
        "raw server COPY, sustained (back to back into a growing table; no client)",
        &raw_sustained,
        server,
        "raw server COPY",
        print,
    );

    // The server's own sustained rate: the median of the raw rounds after
    // the first (which still runs at burst speed).
    let sustained_server = median(
        raw_sustained
            .iter()
            .skip(1.min(raw_sustained.len() - 1))
            .map(|r| r.committed_per_s)
            .collect(),
    );

    // 75 % of raw server COPY, default settings: no drops in any round.
    let (paced, guard) = rounds(&mut db, &setup, Some(0.75 * server), |b| b);
    guard.flush().expect("flush the paced stream");
    let stats = guard.stats();
    drop(guard);
    print_rounds(
        "paced at 75 % of raw server COPY, default settings",
        &paced,
        server,
        "raw server COPY",
        print,
    );
    assert_eq!(
        db.count() as u64,
        stats.written,
        "every committed event is in the table"
    );
    let paced_drops: u64 = paced.iter().map(|r| r.dropped).sum();

    // 75 % of what the server sustains on its own, default settings.
    let (paced_sustained, guard) = rounds(&mut db, &setup, Some(0.75 * sustained_server), |b| b);
    let _ = guard.flush();
    drop(guard);
    print_rounds(
        "paced at 75 % of raw server COPY sustained, default settings",
        &paced_sustained,
        sustained_server,
        "raw server COPY sustained",
        print,
    );
    let paced_sustained_drops: u64 = paced_sustained.iter().map(|r| r.dropped).sum();

    // 100 % with a spool: no drops, and everything spilled is replayed.
    let dir = spool_dir();
    let (spooled, guard) = rounds(&mut db, &setup, Some(server), |b| b.spool(Spool::dir(&dir)));
    // A flush covering a spilled batch says so (`Write { Spooled, .. }`):
    // expected here. What counts is that the spool drains afterwards.
    let _ = guard.flush();
    let replay_started = Instant::now();
    while guard.stats().spooled > 0 && replay_started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
        let _ = guard.flush();
    }
    let stats = guard.stats();
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
    print_rounds(
        "paced at 100 % of raw server COPY, with a spool",
        &spooled,
        server,
        "raw server COPY",
        print,
    );
    let in_table = db.count() as u64;
    if print {
        println!(
            "\nafter the rounds: enqueued {}, in the table {}, still spooled {}, lost {}, replay took {:.1} s",
            stats.enqueued,
            in_table,
            stats.spooled,
            stats.lost,
            replay_started.elapsed().as_secs_f64()
        );
    }
    assert_eq!(
        in_table, stats.enqueued,
        "every enqueued event committed, spilled ones replayed"
    );
    let spooled_drops: u64 = spooled.iter().map(|r| r.dropped).sum();

    // Flat out, Block: committed rows/s with producers live.
    let block = OverflowPolicy::Block {
        timeout: Duration::from_secs(10),
    };
    let (flat, guard) = rounds(&mut db, &setup, None, |b| b.overflow(block));
    guard.flush().expect("flush the flat-out stream");
    drop(guard);
    print_rounds(
        "flat out (Block), producers live",
        &flat,
        client,
        "raw client COPY",
        print,
    );
    let sustained = median(flat.iter().map(|r| r.committed_per_s).collect());

    if print {
        println!("\n### the server's checkpoints during the run (its log)\n");
        println!("```");
        for line in db.checkpoint_lines(log_from) {
            println!("{line}");
        }
        println!("```");
        println!("\n### summary\n");
        println!("| target | measured | met |");
        println!("|---|---:|---|");
        println!(
            "| paced 75 % of burst capacity: zero drops in every round | {paced_drops} dropped | {} |",
            paced_drops == 0
        );
        println!(
            "| paced 75 % of sustained capacity ({sustained_server:.0} rows/s = {:.2}× burst): zero drops | {paced_sustained_drops} dropped | {} |",
            sustained_server / server,
            paced_sustained_drops == 0
        );
        println!(
            "| paced 100 % with a spool: zero drops, all replayed | {spooled_drops} dropped | {} |",
            spooled_drops == 0
        );
        println!(
            "| flat out ≥ 90 % of raw client COPY (median round) | {:.0} rows/s = {:.2}× | {} |",
            sustained,
            sustained / client,
            sustained / client >= 0.9
        );
    }
}
