//! # `ingest`: end-to-end rows per second into PostgreSQL
//!
//! Every variant loads the same rows into the same table
//! (`ringtrail.logs`, created by [`ringtrail::schema::apply`]) on the same
//! server, in the same run, in one criterion group, `ingest`, with
//! `Throughput::Elements(rows)`, so criterion reports rows per second.
//!
//! The row is what ringtrail makes of
//!
//! ```text
//! tracing::info!(user_id_hash = 42u64, latency = 1.5f64, ok = true,
//!                route = "/v1/orders", "request {} took {}ms", i, 3)
//! ```
//!
//! inside a span `request` with `user_id`, `session_id` and `trace_id`. Before
//! anything is measured, one such event goes through a ringtrail pipeline and
//! is read back; the other variants copy that row's columns (target, file,
//! line, span, context, `fields` jsonb) and change only `ts`, `id` and the
//! message number. After each variant's first iteration, the table is checked
//! to hold exactly `rows` rows of exactly that shape.
//!
//! | variant | what one iteration does (the timed part) | commit |
//! |---|---|---|
//! | `ringtrail` | emits `rows` events through the real [`ringtrail::Layer`] (ring of 131,072 records, batches of 8,192 rows), then [`ringtrail::Guard::flush`] returns: every row committed (per batch: `BEGIN`, `COPY`, an `INSERT` of its batch-ledger row, `COMMIT`) | `synchronous_commit = on` (ringtrail's default, durable) |
//! | `ringtrail_redaction_off` | the same, built with `.redaction(Redaction::off())`: what redaction (on by default, in every other ringtrail variant) costs | `on` |
//! | `ringtrail_chain_off` | the same, built with `.chain(false)`: what the hash chain (a digest of every row on the writer, the link, the ledger's chain columns) costs | `on` |
//! | `ringtrail_with_jsonl` | the same, with the JSON-lines sink beside PostgreSQL (ECS lines to a file in the temp dir, rotated at 64 MiB, one old file kept): what rendering and writing every row a second time costs the writer | `on` |
//! | `ringtrail_async_commit` | the same, built with `.synchronous_commit(false)` | `off` |
//! | `raw_copy` | sends pre-encoded binary COPY batches of 8,192 rows ([`ringtrail::encode::copy::CopyEncoder`], encoded before timing), one `BEGIN; COPY; COMMIT` per batch, through `tokio_postgres` `copy_in` with a statement prepared before timing: the physical limit of this machine | `on` |
//! | `insert_unnest` | `INSERT INTO ringtrail.logs (...) SELECT * FROM UNNEST($1::timestamptz[], ...)` of 16 column arrays, 8,192 rows per statement and transaction (the replaced design's later versions, which flushed every 100 rows: 8,192 is the most favourable batch for them) | `off`, as in that design |
//! | `insert_per_row` | a prepared 16-column `INSERT ... VALUES ($1, ..., $16)` per row, 100 rows per transaction (the replaced design's early versions) | `off`, as in that design |
//!
//! Only ringtrail pays for building its rows inside the timed part (capture on
//! the caller's thread, decoding, UUIDv7 ids and encoding on the writer
//! thread). For the other variants the rows (timestamps, UUIDv4 ids, messages,
//! `serde_json` values; for `raw_copy` even the encoded bytes) are made before
//! timing, so they show what the database side of each method can do at best.
//!
//! The table (with ringtrail's other tables, such as its batch ledger) is
//! emptied with `TRUNCATE` before every iteration, outside the timed part
//! (`iter_custom`), and a `CHECKPOINT` runs before each variant,
//! so one variant's WAL does not land in the next one's measurement.
//!
//! ## The server
//!
//! A throwaway cluster from [`ringtrail_cluster::durable_database`],
//! with PostgreSQL's default durable settings (`fsync = on`): a durable
//! commit costs a WAL flush. Its WAL is warmed before anything is timed
//! (without that, the first variant measured paid for creating WAL
//! segment files and ran up to 17 % slower than on its own, which read as
//! a cost of the chain, measured first). When `DATABASE_URL` is set, a fresh database on
//! that server is used instead (its role needs `CREATEDB`), and left behind.
//!
//! ## Running it
//!
//! ```text
//! cargo bench --bench ingest                                              # about 2-3 minutes
//! cargo bench --bench ingest -- --warm-up-time 1 --measurement-time 3     # quicker
//! cargo bench --bench ingest -- raw_copy                                  # one variant
//! cargo test --benches                # each variant once: 10,000 rows (250 per-row)
//! RINGTRAIL_LANES=2 cargo bench --bench ingest -- 'ingest/(ringtrail|raw_copy)$'   # lanes
//! RINGTRAIL_ROUNDS=25 cargo bench --bench ingest -- 'ingest/ringtrail(_chain_off)?$'  # a tighter interleaved ratio
//! ```
//!
//! Settings: 10 samples (flat sampling: every sample has the same iteration
//! count), 2 s warm-up and 8 s measurement per variant unless overridden on
//! the command line. Rows per iteration: 100,000 for the COPY variants,
//! 49,152 for `insert_unnest`, 3,000 for `insert_per_row` (the slow one);
//! rows per second normalises the difference.
//!
//! ## The summary tables
//!
//! After the group, the benchmark runs an interleaved pass: 5 rounds, each
//! running every variant criterion ran once, in an order that rotates each
//! round (about 10 s). Then two markdown tables go to stdout.
//!
//! The first gives each variant's rows/s and each ringtrail variant's ratio
//! to it, two ways:
//!
//! * **criterion**: the median from
//!   `<criterion dir>/ingest/<variant>/new/estimates.json`, with its 95%
//!   confidence interval: criterion's own measurement of this run, read back
//!   rather than measured twice. The criterion dir is found the way criterion
//!   finds it: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
//!   the target dir from `cargo metadata`, else `target/criterion`. A file
//!   older than this run (variant filtered out, or `--baseline`, which does
//!   not save) is reported as not measured.
//! * **interleaved**: the median rows/s of the pass, and the median over its
//!   rounds of the per-round ratio. Criterion measures the variants one after
//!   another, a minute apart; on a small shared machine the background load
//!   changes in between and moves those ratios by a factor of two. Variants
//!   measured seconds apart see the same load, so these ratios are the ones
//!   to quote from a noisy machine.
//!
//! The second says where the time went, per row, over all iterations
//! (warm-up and interleaved pass included): wall time; CPU time of this
//! process (the emitting thread, ringtrail's writer thread, the tokio
//! client); and the CPU time of the server backends serving the variant,
//! with their time spent runnable but waiting for a CPU. It reads Linux's
//! `/proc/<pid>/schedstat`, for the server only when the cluster is the
//! throwaway one on this machine. CPU per row moves much less with
//! background load than wall time does.
//!
//! In test mode (`cargo test --benches`) the pass runs one round and nothing
//! is printed.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use futures_util::SinkExt;
use ringtrail::encode::copy::{copy_statement, CopyEncoder, LOG_COLUMNS};
use ringtrail::{Field, Jsonl, Row, Value};
use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use tracing_subscriber::prelude::*;

/// Rows per batch: ringtrail's default `batch_rows`, and the batch of
/// `raw_copy` and `insert_unnest`.
const BATCH_ROWS: usize = 8_192;

/// Rows per transaction of `insert_per_row`, as in the replaced design.
const PER_ROW_TX: usize = 100;

/// Ring records of the ringtrail variants: more than one iteration's events,
/// so nothing is dropped however far the writer falls behind.
const RING_CAPACITY: usize = 131_072;

/// Span context of every event.
const USER_ID: &str = "user-7f3a9c21";
const SESSION_ID: &str = "sess-2b8e41d0c5";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The event's fields as ringtrail captures them; used to encode the
/// `raw_copy` rows (and checked against the calibration row).
const FIELDS: [Field<'static>; 4] = [
    Field {
        name: "user_id_hash",
        value: Value::U64(42),
    },
    Field {
        name: "latency",
        value: Value::F64(1.5),
    },
    Field {
        name: "ok",
        value: Value::Bool(true),
    },
    Field {
        name: "route",
        value: Value::Str("/v1/orders"),
    },
];

/// Column types, in [`LOG_COLUMNS`] order, for the UNNEST casts.
const COLUMN_TYPES: [&str; 19] = [
    "timestamptz",
    "uuid",
    "smallint",
    "text",
    "text",
    "jsonb",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "integer",
    "boolean",
    "smallint",
    "smallint",
    "bigint",
];

/// The one event every variant stores. Must stay the only `info!` here: its
/// line number is part of the row.
#[inline(never)]
fn emit(i: u64) {
    tracing::info!(
        user_id_hash = 42u64,
        latency = 1.5f64,
        ok = true,
        route = "/v1/orders",
        "request {} took {}ms",
        i,
        3
    );
}

/// Emits `rows` events inside one `request` span carrying the context ids.
fn emit_all(rows: u64) {
    let span = tracing::info_span!(
        "request",
        user_id = USER_ID,
        session_id = SESSION_ID,
        trace_id = TRACE_ID
    );
    let _entered = span.enter();
    for i in 0..rows {
        emit(i);
    }
}

/// Rows per iteration of each variant.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// `ringtrail`, `ringtrail_async_commit` and `raw_copy`.
    copy: u64,
    insert_unnest: u64,
    insert_per_row: u64,
}

/// About 0.2–0.5 s per iteration on a small machine.
const BENCH_SIZES: Sizes = Sizes {
    copy: 100_000,
    insert_unnest: 6 * BATCH_ROWS as u64,
    insert_per_row: 3_000,
};

/// `cargo test --benches` runs each routine once: keep it quick, but still
/// more than one batch for the batched variants.
const TEST_SIZES: Sizes = Sizes {
    copy: 10_000,
    insert_unnest: 10_000,
    insert_per_row: 250,
};

/// The columns every row shares: what ringtrail stored for the calibration
/// event, and what every variant's rows must show.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    level: i16,
    target: String,
    /// `fields::text`: PostgreSQL's normalised jsonb text.
    fields: String,
    /// `trace_id` .. `client_id`.
    context: [Option<String>; 6],
    span_name: Option<String>,
    file: Option<String>,
    line: Option<i32>,
    truncated: bool,
}

/// One group of identical shapes in the table, from [`Db::shapes`].
#[derive(Debug)]
struct ShapeCount {
    shape: Shape,
    rows: i64,
    /// Rows whose message reads `request <n> took 3ms`.
    messages_ok: i64,
    /// `avg(pg_column_size(row))`, bytes.
    avg_row_bytes: f64,
}

/// The server, an admin connection and the calibrated row shape.
struct Db {
    url: String,
    rt: Runtime,
    admin: Client,
    /// `TRUNCATE` of `ringtrail.logs` and the other tables ringtrail writes
    /// to (its batch ledger), all but `schema_migrations`.
    truncate: String,
    template: Shape,
    /// `template.fields` as a value, for the INSERT variants' jsonb.
    fields_json: serde_json::Value,
    /// CPU accounting per variant, over all its iterations.
    tallies: RefCell<BTreeMap<String, Tally>>,
    /// Last, so the server stops after the connections are gone.
    cluster: Option<ringtrail_cluster::TempCluster>,
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the benchmark database");
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("ingest bench: connection error: {e}");
        }
    });
    client
}

impl Db {
    fn start() -> Db {
        let started = Instant::now();
        let (cluster, url) = ringtrail_cluster::durable_database("ringtrail_ingest_bench")
            .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut admin = rt.block_on(connect(&url));
        rt.block_on(ringtrail::schema::apply(&mut admin))
            .expect("apply ringtrail's migrations");
        let tables: Vec<String> = rt
            .block_on(admin.query(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
                 WHERE schemaname = 'ringtrail' AND tablename <> 'schema_migrations'
                 ORDER BY 1",
                &[],
            ))
            .expect("list ringtrail's tables")
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut db = Db {
            url,
            rt,
            admin,
            truncate: format!("TRUNCATE {}", tables.join(", ")),
            template: Shape {
                level: 0,
                target: String::new(),
                fields: String::new(),
                context: Default::default(),
                span_name: None,
                file: None,
                line: None,
                truncated: false,
            },
            fields_json: serde_json::Value::Null,
            tallies: RefCell::default(),
            cluster,
        };
        db.calibrate();
        eprintln!(
            "ingest: database ready in {:.1?} ({}), row shape: {:?}",
            started.elapsed(),
            if db.cluster.is_some() {
                "throwaway cluster, default durable settings"
            } else {
                "DATABASE_URL"
            },
            db.template
        );
        db
    }

    /// Sends one event through a real ringtrail pipeline and keeps the
    /// stored row as the template for every variant.
    fn calibrate(&mut self) {
        let pipeline = Pipeline::build(&self.url, true, true, false, true, 1);
        tracing::dispatcher::with_default(&pipeline.dispatch, || emit_all(1));
        pipeline.guard.flush().expect("flush the calibration event");
        let shapes = self.shapes();
        assert_eq!(shapes.len(), 1, "one calibration row: {shapes:?}");
        assert_eq!((shapes[0].rows, shapes[0].messages_ok), (1, 1));
        self.template = shapes[0].shape.clone();
        self.fields_json =
            serde_json::from_str(&self.template.fields).expect("fields jsonb is JSON");
        drop(pipeline);

        // The rows the other variants make from the template must look the
        // same: encode one with the COPY encoder and compare.
        self.truncate();
        let rows = generate(1);
        let batches = encode_batches(&self.template, &rows);
        let (rt, admin) = (&self.rt, &mut self.admin);
        rt.block_on(async {
            let statement = admin.prepare(&copy_statement()).await.expect("prepare");
            copy_batches(admin, &statement, &batches).await;
        });
        let shapes = self.shapes();
        assert_eq!(shapes.len(), 1, "{shapes:?}");
        assert_eq!(
            shapes[0].shape, self.template,
            "a row encoded from the template differs from ringtrail's own"
        );
        self.truncate();
    }

    fn truncate(&self) {
        self.rt
            .block_on(self.admin.batch_execute(&self.truncate))
            .expect("TRUNCATE");
    }

    fn checkpoint(&self) {
        self.rt
            .block_on(self.admin.batch_execute("CHECKPOINT"))
            .expect("CHECKPOINT");
    }

    fn count(&self) -> i64 {
        self.rt
            .block_on(
                self.admin
                    .query_one("SELECT count(*) FROM ringtrail.logs", &[]),
            )
            .expect("count rows")
            .get(0)
    }

    /// The distinct shapes in the table, with their row counts.
    fn shapes(&self) -> Vec<ShapeCount> {
        let rows = self
            .rt
            .block_on(self.admin.query(
                "SELECT level, target, fields::text, trace_id, user_id, session_id,
                        task_id, context_id, client_id, span_name, file, line, truncated,
                        count(*),
                        count(*) FILTER (WHERE message ~ '^request [0-9]+ took 3ms$'),
                        avg(pg_column_size(l.*))::float8
                 FROM ringtrail.logs l
                 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13",
                &[],
            ))
            .expect("read the stored rows' shape");
        rows.iter()
            .map(|r| ShapeCount {
                shape: Shape {
                    level: r.get(0),
                    target: r.get(1),
                    fields: r.get(2),
                    context: [r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8)],
                    span_name: r.get(9),
                    file: r.get(10),
                    line: r.get(11),
                    truncated: r.get(12),
                },
                rows: r.get(13),
                messages_ok: r.get(14),
                avg_row_bytes: r.get(15),
            })
            .collect()
    }

    /// One iteration of `variant`: empties the tables, times `run` (which
    /// loads `rows` rows), tallies CPU use, and checks the table. Only `run`
    /// is timed.
    fn timed(&self, variant: &str, rows: u64, run: impl FnOnce()) -> Duration {
        self.truncate();
        let probe = self.probe();
        let start = Instant::now();
        run();
        let elapsed = start.elapsed();
        let (client, server) = probe.finish();
        let first = {
            let mut tallies = self.tallies.borrow_mut();
            let tally = tallies.entry(variant.to_owned()).or_default();
            tally.add(rows, elapsed, client, server);
            tally.iterations == 1
        };
        self.verify(variant, rows, first);
        elapsed
    }

    /// Starts CPU accounting of this process's threads and, when the
    /// cluster is ours (so on this machine), of the server backends serving
    /// the benchmark's connections (all but the admin one).
    fn probe(&self) -> Probe {
        let client = std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(|task| Some(task.ok()?.path().join("schedstat")))
                    .collect()
            })
            .unwrap_or_default();
        let server = if self.cluster.is_some() {
            self.rt
                .block_on(self.admin.query(
                    "SELECT pid FROM pg_stat_activity
                     WHERE datname = current_database() AND backend_type = 'client backend'
                       AND pid <> pg_backend_pid()",
                    &[],
                ))
                .expect("list the benchmark's backends")
                .iter()
                .map(|row| PathBuf::from(format!("/proc/{}/schedstat", row.get::<_, i32>(0))))
                .collect()
        } else {
            Vec::new()
        };
        Probe::new(client, server)
    }

    /// Checks what one iteration left in the table: `rows` rows, and on the
    /// variant's first iteration, all of the calibrated shape.
    fn verify(&self, variant: &str, rows: u64, first: bool) {
        if !first {
            assert_eq!(self.count(), rows as i64, "{variant}: rows in the table");
            return;
        }
        let shapes = self.shapes();
        assert_eq!(shapes.len(), 1, "{variant}: one row shape: {shapes:?}");
        let s = &shapes[0];
        assert_eq!(s.shape, self.template, "{variant}: row shape");
        assert_eq!(s.rows, rows as i64, "{variant}: rows in the table");
        assert_eq!(s.messages_ok, rows as i64, "{variant}: messages");
        eprintln!(
            "ingest/{variant}: {rows} rows per iteration, shape verified, {:.1} bytes per row",
            s.avg_row_bytes
        );
    }
}

/// Scheduler accounting of one task from `/proc/<pid>/schedstat` (Linux):
/// nanoseconds spent on a CPU, and waiting in the run queue for one.
#[derive(Debug, Default, Clone, Copy)]
struct Sched {
    cpu: u64,
    wait: u64,
}

impl Sched {
    fn read(path: &Path) -> Option<Sched> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut numbers = text.split_whitespace().map(str::parse::<u64>);
        Some(Sched {
            cpu: numbers.next()?.ok()?,
            wait: numbers.next()?.ok()?,
        })
    }
}

/// Reads every task's accounting now; unreadable tasks are left out.
fn snapshot(paths: Vec<PathBuf>) -> Vec<(PathBuf, Sched)> {
    paths
        .into_iter()
        .filter_map(|path| {
            let now = Sched::read(&path)?;
            Some((path, now))
        })
        .collect()
}

/// Scheduler accounting of this process's threads (client) and of server
/// backends across one iteration. Tasks that come or go meanwhile are left
/// out.
struct Probe {
    client: Vec<(PathBuf, Sched)>,
    server: Vec<(PathBuf, Sched)>,
}

impl Probe {
    fn new(client: Vec<PathBuf>, server: Vec<PathBuf>) -> Probe {
        Probe {
            client: snapshot(client),
            server: snapshot(server),
        }
    }

    /// Client and server use since [`Probe::new`]; no server figure when no
    /// backend could be read (a server on another machine).
    fn finish(self) -> (Sched, Option<Sched>) {
        let used = |tasks: Vec<(PathBuf, Sched)>| {
            tasks
                .into_iter()
                .filter_map(|(path, start)| {
                    let end = Sched::read(&path)?;
                    Some(Sched {
                        cpu: end.cpu.saturating_sub(start.cpu),
                        wait: end.wait.saturating_sub(start.wait),
                    })
                })
                .fold(Sched::default(), |a, b| Sched {
                    cpu: a.cpu + b.cpu,
                    wait: a.wait + b.wait,
                })
        };
        let server = (!self.server.is_empty()).then(|| used(self.server));
        (used(self.client), server)
    }
}

/// A variant's totals over all its iterations (warm-up included).
#[derive(Debug, Default)]
struct Tally {
    iterations: u64,
    rows: u64,
    wall: Duration,
    client: Sched,
    server: Sched,
    /// Every iteration had a server figure.
    server_measured: bool,
}

impl Tally {
    fn add(&mut self, rows: u64, wall: Duration, client: Sched, server: Option<Sched>) {
        self.server_measured = server.is_some() && (self.iterations == 0 || self.server_measured);
        self.iterations += 1;
        self.rows += rows;
        self.wall += wall;
        self.client.cpu += client.cpu;
        self.client.wait += client.wait;
        let server = server.unwrap_or_default();
        self.server.cpu += server.cpu;
        self.server.wait += server.wait;
    }
}

/// Starts the database on first use, so `--list` or a filter that selects
/// nothing starts no server.
struct LazyDb(OnceCell<Db>);

impl LazyDb {
    fn get(&self) -> &Db {
        self.0.get_or_init(Db::start)
    }
}

/// A row's own values; everything else comes from the template.
struct Generated {
    ts: SystemTime,
    id: uuid::Uuid,
    message: String,
}

fn generate(rows: u64) -> Vec<Generated> {
    (0..rows)
        .map(|i| Generated {
            ts: SystemTime::now(),
            id: uuid::Uuid::new_v4(),
            message: format!("request {} took {}ms", i, 3),
        })
        .collect()
}

fn unix_nanos(ts: SystemTime) -> i64 {
    ts.duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

/// Encodes `rows` into binary COPY batches of [`BATCH_ROWS`].
fn encode_batches(t: &Shape, rows: &[Generated]) -> Vec<Bytes> {
    let mut encoder = CopyEncoder::new();
    rows.chunks(BATCH_ROWS)
        .map(|chunk| {
            for g in chunk {
                encoder.push_row(&Row {
                    ts_unix_nanos: unix_nanos(g.ts),
                    id: g.id.into_bytes(),
                    level: t.level,
                    target: &t.target,
                    message: &g.message,
                    fields: &FIELDS,
                    context: std::array::from_fn(|k| t.context[k].as_deref()),
                    span_name: t.span_name.as_deref(),
                    file: t.file.as_deref(),
                    line: t.line.map(|l| l as u32),
                    truncated: t.truncated,
                    kind: None,
                    redacted: 0,
                    seq: 0,
                });
            }
            // Copied out of the encoder's buffer: every batch stays alive.
            Bytes::copy_from_slice(&encoder.finish())
        })
        .collect()
}

/// One transaction per batch: `BEGIN; COPY ... FROM STDIN; COMMIT`.
async fn copy_batches(client: &mut Client, statement: &tokio_postgres::Statement, b: &[Bytes]) {
    for batch in b {
        let tx = client.transaction().await.expect("BEGIN");
        let sink = tx
            .copy_in::<_, Bytes>(statement)
            .await
            .expect("COPY FROM STDIN");
        futures_util::pin_mut!(sink);
        sink.send(batch.clone()).await.expect("COPY data");
        sink.finish().await.expect("COPY done");
        tx.commit().await.expect("COMMIT");
    }
}

/// One way of loading rows, set up and ready to run iterations.
trait Load {
    /// One iteration of `spec`: its rows into the emptied table, through
    /// [`Db::timed`]. Returns the timed part.
    fn iteration(&mut self, db: &Db, spec: &Spec) -> Duration;
}

/// A variant: its name, rows per iteration, commit mode and set-up.
struct Spec {
    name: &'static str,
    rows: u64,
    /// The `synchronous_commit` its transactions run with.
    commit: &'static str,
    /// Connects and prepares everything that is not timed.
    setup: fn(&Db, u64) -> Box<dyn Load>,
}

/// Every variant, in the order they run.
fn specs(sizes: Sizes) -> Vec<Spec> {
    vec![
        Spec {
            name: "ringtrail",
            rows: sizes.copy,
            commit: "on",
            setup: |db, rows| Box::new(Pipeline::build(&db.url, true, true, false, true, rows)),
        },
        Spec {
            name: "ringtrail_redaction_off",
            rows: sizes.copy,
            commit: "on",
            setup: |db, rows| Box::new(Pipeline::build(&db.url, true, false, false, true, rows)),
        },
        Spec {
            name: "ringtrail_chain_off",
            rows: sizes.copy,
            commit: "on",
            setup: |db, rows| Box::new(Pipeline::build(&db.url, true, true, false, false, rows)),
        },
        Spec {
            name: "ringtrail_with_jsonl",
            rows: sizes.copy,
            commit: "on",
            setup: |db, rows| Box::new(Pipeline::build(&db.url, true, true, true, true, rows)),
        },
        Spec {
            name: "ringtrail_async_commit",
            rows: sizes.copy,
            commit: "off",
            setup: |db, rows| Box::new(Pipeline::build(&db.url, false, true, false, true, rows)),
        },
        Spec {
            name: "raw_copy",
            rows: sizes.copy,
            commit: "on",
            setup: RawCopy::setup,
        },
        Spec {
            name: "insert_unnest",
            rows: sizes.insert_unnest,
            commit: "off",
            setup: InsertUnnest::setup,
        },
        Spec {
            name: "insert_per_row",
            rows: sizes.insert_per_row,
            commit: "off",
            setup: InsertPerRow::setup,
        },
    ]
}

/// A ringtrail pipeline into the benchmark database.
struct Pipeline {
    dispatch: tracing::Dispatch,
    /// Dropped after the dispatch (declaration order): flushes and stops.
    guard: ringtrail::Guard,
    /// Rows and batches committed in timed iterations, and the variant:
    /// how the writer cut the stream (printed when the pipeline stops).
    committed: (u64, u64, &'static str),
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let (rows, batches, variant) = self.committed;
        if batches > 0 {
            eprintln!(
                "ingest/{variant}: {rows} rows in {batches} batches, {:.0} rows per batch",
                rows as f64 / batches as f64
            );
        }
    }
}

impl Pipeline {
    fn build(
        url: &str,
        synchronous_commit: bool,
        redaction: bool,
        jsonl: bool,
        chain: bool,
        rows: u64,
    ) -> Pipeline {
        assert!(
            rows as usize <= RING_CAPACITY,
            "an iteration must fit the ring"
        );
        // `RINGTRAIL_LANES=n` measures the ringtrail variants with n lanes.
        let lanes = std::env::var("RINGTRAIL_LANES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let mut builder = ringtrail::Builder::new();
        if jsonl {
            let path = std::env::temp_dir().join(format!(
                "ringtrail-ingest-bench-{}.ecs.jsonl",
                std::process::id()
            ));
            builder = builder.jsonl(
                Jsonl::file(path, ringtrail::Format::Ecs)
                    .rotate_bytes(64 << 20)
                    .keep(1),
            );
        }
        let (layer, guard) = builder
            .postgres(url)
            .capacity(RING_CAPACITY)
            .batch_rows(BATCH_ROWS)
            .synchronous_commit(synchronous_commit)
            .lanes(lanes)
            .chain(chain)
            .redaction(if redaction {
                ringtrail::redact::Redaction::new()
            } else {
                ringtrail::redact::Redaction::off()
            })
            .build()
            .expect("start a ringtrail pipeline");
        Pipeline {
            dispatch: tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
            guard,
            committed: (0, 0, ""),
        }
    }
}

impl Load for Pipeline {
    /// Timed: emit the events and wait until they are committed.
    fn iteration(&mut self, db: &Db, spec: &Spec) -> Duration {
        let (variant, rows) = (spec.name, spec.rows);
        let before = self.guard.stats();
        let elapsed = db.timed(variant, rows, || {
            tracing::dispatcher::with_default(&self.dispatch, || emit_all(rows));
            self.guard.flush().expect("flush");
        });
        let after = self.guard.stats();
        self.committed.0 += after.written - before.written;
        self.committed.1 += after.batches - before.batches;
        self.committed.2 = variant;
        assert_eq!(after.dropped, before.dropped, "{variant}: events dropped");
        assert_eq!(after.written - before.written, rows, "{variant}: written");
        assert_eq!(
            after.jsonl.missed, before.jsonl.missed,
            "{variant}: JSON lines missed"
        );
        let unwritten = |s: &ringtrail::Stats| (s.spooled, s.dead_lettered, s.lost, s.drop_reports);
        assert_eq!(
            unwritten(&after),
            unwritten(&before),
            "{variant}: rows not written"
        );
        elapsed
    }
}

/// Pre-encoded COPY batches and a connection with the COPY prepared.
struct RawCopy {
    client: Client,
    statement: tokio_postgres::Statement,
    batches: Vec<Bytes>,
}

impl RawCopy {
    fn setup(db: &Db, rows: u64) -> Box<dyn Load> {
        let batches = encode_batches(&db.template, &generate(rows));
        db.rt.block_on(async {
            let client = connect(&db.url).await;
            let statement = client.prepare(&copy_statement()).await.expect("prepare");
            Box::new(RawCopy {
                client,
                statement,
                batches,
            }) as Box<dyn Load>
        })
    }
}

impl Load for RawCopy {
    fn iteration(&mut self, db: &Db, spec: &Spec) -> Duration {
        db.timed(spec.name, spec.rows, || {
            db.rt.block_on(copy_batches(
                &mut self.client,
                &self.statement,
                &self.batches,
            ));
        })
    }
}

/// A connection with `synchronous_commit = off`, as the replaced design used.
fn async_commit_client(db: &Db) -> Client {
    db.rt.block_on(async {
        let client = connect(&db.url).await;
        client
            .batch_execute("SET synchronous_commit = off")
            .await
            .expect("SET synchronous_commit");
        client
    })
}

fn insert_statement() -> String {
    let params: Vec<String> = (1..=LOG_COLUMNS.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO ringtrail.logs ({}) VALUES ({})",
        LOG_COLUMNS.join(", "),
        params.join(", ")
    )
}

fn unnest_statement() -> String {
    let arrays: Vec<String> = COLUMN_TYPES
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO ringtrail.logs ({}) SELECT * FROM UNNEST({})",
        LOG_COLUMNS.join(", "),
        arrays.join(", ")
    )
}

/// Rows and a connection with the 19-column INSERT prepared.
struct InsertPerRow {
    client: Client,
    statement: tokio_postgres::Statement,
    rows: Vec<Generated>,
}

impl InsertPerRow {
    fn setup(db: &Db, rows: u64) -> Box<dyn Load> {
        let client = async_commit_client(db);
        let statement = db
            .rt
            .block_on(client.prepare(&insert_statement()))
            .expect("prepare INSERT");
        Box::new(InsertPerRow {
            client,
            statement,
            rows: generate(rows),
        })
    }
}

impl Load for InsertPerRow {
    fn iteration(&mut self, db: &Db, spec: &Spec) -> Duration {
        let t = &db.template;
        let (client, statement, rows) = (&mut self.client, &self.statement, &self.rows);
        db.timed(spec.name, spec.rows, || {
            db.rt.block_on(async {
                for chunk in rows.chunks(PER_ROW_TX) {
                    let tx = client.transaction().await.expect("BEGIN");
                    for g in chunk {
                        let params: [&(dyn ToSql + Sync); 19] = [
                            &g.ts,
                            &g.id,
                            &t.level,
                            &t.target,
                            &g.message,
                            &db.fields_json,
                            &t.context[0],
                            &t.context[1],
                            &t.context[2],
                            &t.context[3],
                            &t.context[4],
                            &t.context[5],
                            &t.span_name,
                            &t.file,
                            &t.line,
                            &t.truncated,
                            &None::<i16>,
                            &0i16,
                            &0i64,
                        ];
                        tx.execute(statement, &params).await.expect("INSERT");
                    }
                    tx.commit().await.expect("COMMIT");
                }
            })
        })
    }
}

/// One UNNEST statement's column arrays, built before timing.
struct Columns {
    ts: Vec<SystemTime>,
    id: Vec<uuid::Uuid>,
    level: Vec<i16>,
    target: Vec<String>,
    message: Vec<String>,
    fields: Vec<serde_json::Value>,
    /// `trace_id` .. `client_id`, `span_name`, `file`.
    text: [Vec<Option<String>>; 8],
    line: Vec<Option<i32>>,
    truncated: Vec<bool>,
    kind: Vec<Option<i16>>,
    redacted: Vec<i16>,
    seq: Vec<i64>,
}

impl Columns {
    fn new(db: &Db, rows: &[Generated]) -> Columns {
        let t = &db.template;
        let n = rows.len();
        let optional = |v: &Option<String>| vec![v.clone(); n];
        Columns {
            ts: rows.iter().map(|g| g.ts).collect(),
            id: rows.iter().map(|g| g.id).collect(),
            level: vec![t.level; n],
            target: vec![t.target.clone(); n],
            message: rows.iter().map(|g| g.message.clone()).collect(),
            fields: vec![db.fields_json.clone(); n],
            text: [
                optional(&t.context[0]),
                optional(&t.context[1]),
                optional(&t.context[2]),
                optional(&t.context[3]),
                optional(&t.context[4]),
                optional(&t.context[5]),
                optional(&t.span_name),
                optional(&t.file),
            ],
            line: vec![t.line; n],
            truncated: vec![t.truncated; n],
            kind: vec![None; n],
            redacted: vec![0; n],
            seq: vec![0; n],
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 19] {
        [
            &self.ts,
            &self.id,
            &self.level,
            &self.target,
            &self.message,
            &self.fields,
            &self.text[0],
            &self.text[1],
            &self.text[2],
            &self.text[3],
            &self.text[4],
            &self.text[5],
            &self.text[6],
            &self.text[7],
            &self.line,
            &self.truncated,
            &self.kind,
            &self.redacted,
            &self.seq,
        ]
    }
}

/// Column arrays of [`BATCH_ROWS`] rows and a connection with the
/// `INSERT ... SELECT * FROM UNNEST(...)` prepared.
struct InsertUnnest {
    client: Client,
    statement: tokio_postgres::Statement,
    batches: Vec<Columns>,
}

impl InsertUnnest {
    fn setup(db: &Db, rows: u64) -> Box<dyn Load> {
        let client = async_commit_client(db);
        let statement = db
            .rt
            .block_on(client.prepare(&unnest_statement()))
            .expect("prepare INSERT ... UNNEST");
        let batches = generate(rows)
            .chunks(BATCH_ROWS)
            .map(|chunk| Columns::new(db, chunk))
            .collect();
        Box::new(InsertUnnest {
            client,
            statement,
            batches,
        })
    }
}

impl Load for InsertUnnest {
    fn iteration(&mut self, db: &Db, spec: &Spec) -> Duration {
        let (client, statement, batches) = (&mut self.client, &self.statement, &self.batches);
        db.timed(spec.name, spec.rows, || {
            db.rt.block_on(async {
                for batch in batches {
                    let tx = client.transaction().await.expect("BEGIN");
                    tx.execute(statement, &batch.params())
                        .await
                        .expect("INSERT ... UNNEST");
                    tx.commit().await.expect("COMMIT");
                }
            })
        })
    }
}

/// The criterion group: every variant, set up on first use (so a filtered
/// out variant costs nothing) and kept in `loads` for the interleaved pass.
fn bench_all(
    group: &mut BenchmarkGroup<'_, WallTime>,
    db: &LazyDb,
    specs: &[Spec],
    loads: &mut [Option<Box<dyn Load>>],
) {
    for (spec, load) in specs.iter().zip(loads.iter_mut()) {
        group.throughput(Throughput::Elements(spec.rows));
        group.bench_function(spec.name, |b| {
            let db = db.get();
            let load = load.get_or_insert_with(|| {
                db.checkpoint();
                (spec.setup)(db, spec.rows)
            });
            b.iter_custom(|iters| (0..iters).map(|_| load.iteration(db, spec)).sum());
        });
    }
}

/// Runs every variant that criterion ran, once per round, in an order that
/// rotates each round, and returns each variant's iteration times (empty
/// for a variant that did not run). Variants measured side by side see the
/// same background load, which criterion's one-after-another runs do not.
fn interleaved(
    db: &Db,
    specs: &[Spec],
    loads: &mut [Option<Box<dyn Load>>],
    rounds: usize,
) -> Vec<Vec<Duration>> {
    db.checkpoint();
    let n = specs.len();
    let mut times = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            if let Some(load) = loads[i].as_mut() {
                times[i].push(load.iteration(db, &specs[i]));
            }
        }
    }
    times
}

/// What the audit-trace index (`logs_audit_trace`, partial on
/// `kind IS NOT NULL`, from migration 0003) costs plain-log ingest: the
/// `ringtrail` variant, interleaved with the index present and dropped,
/// `rounds` times each (the order alternating), same process, same table.
/// Prints each pair's ratio and the median; the index is back afterwards.
fn index_cost(db: &Db, specs: &[Spec], loads: &mut [Option<Box<dyn Load>>], rounds: usize) {
    let Some(i) = specs.iter().position(|s| s.name == "ringtrail") else {
        return;
    };
    let Some(load) = loads[i].as_mut() else {
        return;
    };
    // The index as the migration made it, read back rather than repeated.
    let definition: String = db
        .rt
        .block_on(db.admin.query_one(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'ringtrail' AND indexname = 'logs_audit_trace'",
            &[],
        ))
        .expect("the audit index exists")
        .get(0);
    let set = |present: bool| {
        let sql = if present {
            definition.clone()
        } else {
            "DROP INDEX ringtrail.logs_audit_trace".to_owned()
        };
        db.rt
            .block_on(db.admin.batch_execute(&sql))
            .expect("toggle the audit index");
    };
    let mut with = Vec::new();
    let mut without = Vec::new();
    let mut present = true;
    for round in 0..rounds {
        for k in 0..2 {
            let want = (round + k) % 2 == 0;
            if want != present {
                set(want);
                present = want;
            }
            let elapsed = load.iteration(db, &specs[i]).as_secs_f64();
            if want { &mut with } else { &mut without }.push(elapsed);
        }
    }
    if !present {
        set(true);
    }
    let ratios: Vec<f64> = with.iter().zip(&without).map(|(w, o)| o / w).collect();
    println!("### What the audit index costs plain-log ingest (`ringtrail`, {rounds} interleaved pairs)\n");
    println!("| pair | without index s | with index s | with ÷ without (rows/s) |");
    println!("|---:|---:|---:|---:|");
    for (k, ((w, o), r)) in with.iter().zip(&without).zip(&ratios).enumerate() {
        println!("| {} | {o:.3} | {w:.3} | {r:.3} |", k + 1);
    }
    if let Some(m) = median(ratios) {
        println!(
            "\nmedian: with the index, plain-log ingest runs at {m:.3}× its speed without it\n"
        );
    }
}

/// Where criterion writes its results, found as criterion finds it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        Some(PathBuf::from(metadata["target_directory"].as_str()?).join("criterion"))
    });
    from_metadata.unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// A variant's median rows/s and the 95% interval of that median, from this
/// run's `estimates.json`; `None` when the variant was not measured in this
/// run.
fn measured(
    dir: &std::path::Path,
    variant: &str,
    rows: u64,
    since: SystemTime,
) -> Option<[f64; 3]> {
    let path = dir.join("ingest").join(variant).join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let median = &estimates["median"];
    let per_second = |ns: f64| rows as f64 / (ns * 1e-9);
    Some([
        per_second(median["point_estimate"].as_f64()?),
        // A longer time is fewer rows per second.
        per_second(median["confidence_interval"]["upper_bound"].as_f64()?),
        per_second(median["confidence_interval"]["lower_bound"].as_f64()?),
    ])
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Prints the results table (criterion medians, and the interleaved pass)
/// and the CPU table.
fn print_summary(specs: &[Spec], since: SystemTime, db: &Db, rounds: &[Vec<Duration>]) {
    let dir = criterion_dir();
    let criterion: Vec<Option<[f64; 3]>> = specs
        .iter()
        .map(|spec| measured(&dir, spec.name, spec.rows, since))
        .collect();
    if criterion.iter().all(Option::is_none) {
        println!("ingest: no variant was measured in this run, so no summary");
        return;
    }
    let rate = |i: usize, round: usize| {
        let t = rounds[i].get(round)?;
        Some(specs[i].rows as f64 / t.as_secs_f64())
    };
    let interleaved_median =
        |i: usize| median((0..rounds[i].len()).filter_map(|r| rate(i, r)).collect());
    // Ratio of variant `ours` to variant `i`: of the criterion medians, and
    // the median of the per-round ratios of the interleaved pass.
    let index = |name: &str| specs.iter().position(|s| s.name == name);
    let ratios = |ours: Option<usize>, i: usize| {
        let Some(ours) = ours else {
            return ("–".to_owned(), "–".to_owned());
        };
        let show = |r: Option<f64>| r.map_or("–".to_owned(), |r| format!("{r:.2}×"));
        let of_medians = match (criterion[ours], criterion[i]) {
            (Some(a), Some(b)) => Some(a[0] / b[0]),
            _ => None,
        };
        let paired = median(
            (0..rounds[i].len())
                .filter_map(|r| Some(rate(ours, r)? / rate(i, r)?))
                .collect(),
        );
        (show(of_medians), show(paired))
    };
    let (ringtrail, ringtrail_async) = (index("ringtrail"), index("ringtrail_async_commit"));

    println!();
    println!(
        "ingest: rows/s of this run. criterion: median of its samples, from {}/ingest/*/new/estimates.json. \
         interleaved: {} rounds after the group, every variant once per round in rotating order; \
         ratios are the median of the per-round ratios.",
        dir.display(),
        rounds.iter().map(Vec::len).max().unwrap_or(0)
    );
    println!();
    println!(
        "| variant | commit | rows/iter | criterion median rows/s | 95% CI of median | interleaved median rows/s \
         | ringtrail ÷ it (criterion) | ringtrail ÷ it (interleaved) \
         | ringtrail_async_commit ÷ it (criterion) | ringtrail_async_commit ÷ it (interleaved) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, spec) in specs.iter().enumerate() {
        let (name, commit, rows) = (spec.name, spec.commit, spec.rows);
        let Some([med, low, high]) = criterion[i] else {
            println!("| {name} | {commit} | {rows} | not measured in this run | | | | | | |");
            continue;
        };
        let inter = interleaved_median(i).map_or("–".to_owned(), |r| format!("{r:.0}"));
        let (rc, ri) = ratios(ringtrail, i);
        let (ac, ai) = ratios(ringtrail_async, i);
        println!(
            "| {name} | {commit} | {rows} | {med:.0} | {low:.0}–{high:.0} | {inter} | {rc} | {ri} | {ac} | {ai} |"
        );
    }
    println!();
    // No COPY client can beat raw_copy, so this bounds ringtrail's ratio to
    // per-row INSERT on this machine.
    if let (Some(copy), Some(per_row)) = (index("raw_copy"), index("insert_per_row")) {
        let (c, i) = ratios(Some(copy), per_row);
        println!(
            "raw_copy ÷ insert_per_row = {c} (criterion), {i} (interleaved): \
             the most any COPY client can gain over per-row INSERT here"
        );
        println!();
    }
    print_cpu(specs, &db.tallies.borrow());
}

/// Where each variant's time went: wall time, CPU of this process (caller,
/// ringtrail's writer, the tokio client), and CPU of the server backends
/// and their time waiting for a CPU, per row, over all iterations.
fn print_cpu(specs: &[Spec], tallies: &BTreeMap<String, Tally>) {
    println!(
        "CPU per row, all iterations incl. warm-up and interleaved pass \
         (Linux schedstat; \"wait\" = runnable but not running):"
    );
    println!();
    println!(
        "| variant | iterations | wall µs/row | bench process CPU µs/row | process wait µs/row \
         | server backend CPU µs/row | backend wait µs/row |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for spec in specs {
        let Some(t) = tallies.get(spec.name) else {
            continue;
        };
        let per_row = |ns: u128| format!("{:.2}", ns as f64 / 1e3 / t.rows.max(1) as f64);
        let (server_cpu, server_wait) = if t.server_measured {
            (per_row(t.server.cpu.into()), per_row(t.server.wait.into()))
        } else {
            ("–".to_owned(), "–".to_owned())
        };
        println!(
            "| {} | {} | {} | {} | {} | {server_cpu} | {server_wait} |",
            spec.name,
            t.iterations,
            per_row(t.wall.as_nanos()),
            per_row(t.client.cpu.into()),
            per_row(t.client.wait.into()),
        );
    }
    println!();
}

/// Rounds of the interleaved pass after the criterion group.
const ROUNDS: usize = 5;

fn main() {
    let run_started = SystemTime::now();
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    // As criterion decides: without `--bench` (cargo test), or with `--test`.
    let test_mode = !has("--bench") || has("--test");
    let sizes = if test_mode { TEST_SIZES } else { BENCH_SIZES };

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();
    let db = LazyDb(OnceCell::new());
    let specs = specs(sizes);
    let mut loads: Vec<Option<Box<dyn Load>>> = specs.iter().map(|_| None).collect();
    {
        let mut group = criterion.benchmark_group("ingest");
        // Iterations of 0.1–0.5 s: the same count in every sample.
        group.sampling_mode(SamplingMode::Flat);
        bench_all(&mut group, &db, &specs, &mut loads);
        group.finish();
    }
    criterion.final_summary();

    // Only variants criterion ran have a load; in test mode one round
    // checks that the pass works.
    if let Some(db) = db.0.get() {
        // `RINGTRAIL_ROUNDS=n` runs n interleaved rounds, for a tighter ratio.
        let want = std::env::var("RINGTRAIL_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(ROUNDS);
        let rounds = interleaved(db, &specs, &mut loads, if test_mode { 1 } else { want });
        if !test_mode {
            print_summary(&specs, run_started, db, &rounds);
            index_cost(db, &specs, &mut loads, ROUNDS);
        }
    }
    // Pipelines and connections first, then the throwaway cluster.
    drop(loads);
    drop(db);
}
