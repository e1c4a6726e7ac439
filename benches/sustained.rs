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
//!    server writes them out with `COPY ringtrail.logs TO '<file>' (FORMAT
//!    binary)`: a file holding exactly the rows ringtrail makes.
//! 2. **Raw server COPY**: `TRUNCATE`, then `COPY ringtrail.logs FROM
//!    '<file>' (FORMAT binary)`, server side, no client at all; the median
//!    of three. This is the capacity the paced rounds are a share of.
//! 3. **Raw client COPY**: the same bytes, cut into batches of 8,192 rows,
//!    sent by one client with `BEGIN; COPY … FROM STDIN; COMMIT` per batch
//!    (pre-encoded, no capture, no encoding); the median of three.
//! 4. **Paced at 75 %** of raw server COPY, a default pipeline
//!    (`Builder::new().postgres(url)`, nothing else), 4 threads, 3 rounds of
//!    3 s on a table that keeps growing. Per round: events emitted, dropped,
//!    committed rows/s, and what the server did meanwhile (checkpoints, WAL
//!    bytes, autovacuum and autoanalyze runs, the table's size) and the
//!    commit lag of the round's batches from the batch ledger
//!    (`committed_at − last_ts`, median and max).
//! 5. **Paced at 100 %, with a spool**: the same with `.spool_dir(…)`.
//!    Afterwards `flush()`, and the table must hold every enqueued event:
//!    whatever spilled to disk was replayed.
//! 6. **Flat out**: 4 threads emitting as fast as they can with
//!    `OverflowPolicy::Block` (nothing dropped, producers wait), 3 rounds of
//!    3 s: rows committed per second with producers live, ÷ raw client COPY.
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
//! The server is a throwaway cluster ([`ringtrail::embedded::TempCluster`])
//! with PostgreSQL's default, durable settings, or a fresh database on the
//! server at `DATABASE_URL`. Server-side `COPY` to and from a file needs a
//! superuser (or `pg_read_server_files` and `pg_write_server_files`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use ringtrail::{Guard, OverflowPolicy};
use tracing_subscriber::prelude::*;

/// Producer threads, as in the issue that asked for this bench.
const THREADS: usize = 4;
/// Events stored for the calibration file.
const CALIBRATION_ROWS: u64 = 300_000;
/// Rows per batch of the raw client COPY: ringtrail's default `batch_rows`.
const BATCH_ROWS: usize = 8_192;
/// The calibration file, relative to the server's data directory.
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
    admin: Client,
    _cluster: Option<ringtrail::embedded::TempCluster>,
}

impl Db {
    fn start() -> Db {
        let (cluster, url) = if std::env::var_os("DATABASE_URL").is_some() {
            let url = ringtrail::embedded::fresh_database()
                .expect("a database on the server at DATABASE_URL");
            (None, url)
        } else {
            let cluster = ringtrail::embedded::TempCluster::start()
                .expect("a throwaway PostgreSQL cluster (or set DATABASE_URL)");
            let url = cluster
                .create_database("ringtrail_sustained_bench")
                .expect("create the benchmark database");
            (Some(cluster), url)
        };
        let admin = Client::connect(&url, NoTls).expect("connect to the benchmark database");
        let mut db = Db {
            url,
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
                        coalesce((SELECT autovacuum_count + autoanalyze_count FROM pg_stat_user_tables
                                  WHERE relid = 'ringtrail.logs'::regclass), 0),
                        pg_total_relation_size('ringtrail.logs')",
                &[],
            )
            .expect("read pg_stat_*");
        ServerStats {
            checkpoints: row.get(0),
            wal_bytes: row.get(1),
            autovacuums: row.get(2),
            table_bytes: row.get(3),
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
                 FROM ringtrail.batches WHERE extract(epoch FROM committed_at) > $1",
                &[&after],
            )
            .expect("read the batch ledger");
        (row.get(0), row.get(1), row.get(2))
    }

    fn now(&mut self) -> f64 {
        self.admin
            .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
            .expect("server clock")
            .get(0)
    }
}

#[derive(Clone, Copy)]
struct ServerStats {
    checkpoints: i64,
    wal_bytes: i64,
    autovacuums: i64,
    table_bytes: i64,
}

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
/// the server write them to [`COPY_FILE`]. Returns the file's bytes, read
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
             COPY ringtrail.logs TO '{COPY_FILE}' (FORMAT binary)"
        ))
        .expect("server-side COPY TO a file (needs a superuser)");
    let mut bytes = Vec::new();
    let mut reader = db
        .admin
        .copy_out("COPY ringtrail.logs TO STDOUT (FORMAT binary)")
        .expect("COPY TO STDOUT");
    std::io::Read::read_to_end(&mut reader, &mut bytes).expect("read the COPY stream");
    drop(reader);
    assert_eq!(db.count(), rows as i64, "calibration rows");
    bytes
}

/// Splits a binary COPY stream into streams of at most `per` tuples each,
/// every one with the stream's header and a trailer.
fn split_copy(stream: &[u8], per: usize) -> Vec<Vec<u8>> {
    // Header: 11-byte signature, 4-byte flags, 4-byte extension length.
    let ext = u32::from_be_bytes(stream[15..19].try_into().unwrap()) as usize;
    let header = &stream[..19 + ext];
    let mut at = header.len();
    let mut out = Vec::new();
    let mut batch = header.to_vec();
    let mut in_batch = 0;
    loop {
        let fields = i16::from_be_bytes(stream[at..at + 2].try_into().unwrap());
        if fields == -1 {
            break;
        }
        let start = at;
        at += 2;
        for _ in 0..fields {
            let len = i32::from_be_bytes(stream[at..at + 4].try_into().unwrap());
            at += 4 + len.max(0) as usize;
        }
        batch.extend_from_slice(&stream[start..at]);
        in_batch += 1;
        if in_batch == per {
            batch.extend_from_slice(&(-1i16).to_be_bytes());
            out.push(std::mem::replace(&mut batch, header.to_vec()));
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        batch.extend_from_slice(&(-1i16).to_be_bytes());
        out.push(batch);
    }
    out
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
                "COPY ringtrail.logs FROM '{COPY_FILE}' (FORMAT binary)"
            ))
            .expect("server-side COPY FROM the file");
        rates.push(rows as f64 / t.elapsed().as_secs_f64());
    }
    assert_eq!(db.count(), rows as i64);
    median(rates)
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

/// One round's figures.
struct Round {
    emitted: u64,
    seconds: f64,
    dropped: u64,
    committed_per_s: f64,
    server: ServerStats,
    /// (batches, median ms, max ms) of commit lag.
    lag: (i64, f64, f64),
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
    for _ in 0..setup.rounds {
        let t = Instant::now();
        let emitted = produce(&dispatch, rate, setup.round);
        let elapsed = t.elapsed().as_secs_f64();
        let after = (guard.stats(), db.server(), db.now());
        let lag = db.commit_lag(before.2);
        out.push(Round {
            emitted,
            seconds: elapsed,
            dropped: after.0.dropped - before.0.dropped,
            committed_per_s: (after.0.written - before.0.written) as f64 / elapsed,
            server: ServerStats {
                checkpoints: after.1.checkpoints - before.1.checkpoints,
                wal_bytes: after.1.wal_bytes - before.1.wal_bytes,
                autovacuums: after.1.autovacuums - before.1.autovacuums,
                table_bytes: after.1.table_bytes,
            },
            lag,
        });
        before = (guard.stats(), db.server(), db.now());
    }
    (out, guard)
}

fn print_rounds(title: &str, rows: &[Round], baseline: f64, baseline_name: &str, print: bool) {
    if !print {
        return;
    }
    println!("\n### {title}\n");
    println!(
        "| round | emitted/s | dropped | committed rows/s | ÷ {baseline_name} | batches | commit lag median / max (ms) | checkpoints | WAL MiB | autovacuum+analyze | table MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, r) in rows.iter().enumerate() {
        println!(
            "| {} | {:.0} | {} | {:.0} | {:.2}× | {} | {:.0} / {:.0} | {} | {:.0} | {} | {:.0} |",
            i + 1,
            r.emitted as f64 / r.seconds,
            r.dropped,
            r.committed_per_s,
            r.committed_per_s / baseline,
            r.lag.0,
            r.lag.1,
            r.lag.2,
            r.server.checkpoints,
            r.server.wal_bytes as f64 / (1 << 20) as f64,
            r.server.autovacuums,
            r.server.table_bytes as f64 / (1 << 20) as f64,
        );
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
    let batches = split_copy(&file, BATCH_ROWS);
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

    // 100 % with a spool: no drops, and everything spilled is replayed.
    let dir = spool_dir();
    let (spooled, guard) = rounds(&mut db, &setup, Some(server), |b| b.spool_dir(&dir));
    guard.flush().expect("flush the spooled stream");
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
        println!("\n### summary\n");
        println!("| target | measured | met |");
        println!("|---|---:|---|");
        println!(
            "| paced 75 %: zero drops in every round | {paced_drops} dropped | {} |",
            paced_drops == 0
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
