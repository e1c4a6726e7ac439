//! # `otlp`: OTLP ingest against the in-process layer and raw COPY
//!
//! The same log records, committed into the same table on the same
//! durable server, four ways, interleaved round by round in one run:
//!
//! | variant | what one iteration does (timed until every row is committed) |
//! |---|---|
//! | `raw_copy` | pre-encoded binary COPY batches of 8,192 rows, one `BEGIN; COPY; COMMIT` each: the machine's limit |
//! | `in_process` | `tracing` events through the real [`ringtrail::Layer`] (in a span with the trace id), then [`ringtrail::Guard::flush`] |
//! | `otlp_http` | `ExportLogsServiceRequest`s of 512 records, protobuf, from 4 concurrent keep-alive HTTP/1.1 clients to a [`ringtrail_otlp::Server`] in this process over loopback, then `flush` |
//! | `otlp_grpc` | the same requests over OTLP/gRPC (4 tonic clients, one HTTP/2 channel each), then `flush` |
//!
//! Each OTLP request body is encoded before timing (the gRPC client
//! still encodes its message on send). Reported per variant: the median
//! rows/s over the rounds, its ratio to `raw_copy` and to `in_process`,
//! and the process's CPU per row (`getrusage`, user + system, over all
//! threads, the server's included); `otlp_* − in_process` is the
//! receiver's own CPU per row.
//!
//! First a **flood**: 40 clients (10× the 4 below) send as fast as they
//! can for 5 s into a receiver with a 64 MiB in-flight bound and a 65,536
//! record ring, set up as `ringtrail serve` is (a 200 ms wait for room,
//! then 429), while the database stops taking rows for the first half
//! (the table locked). `/proc/self/status` `VmRSS` is sampled every 5 ms; the
//! peak above the level before the flood is compared with the documented
//! bound (in-flight bytes + ring + the writer's batch queue), and the
//! answers are counted (200 / 429).
//!
//! ```text
//! cargo bench -p ringtrail-otlp --bench otlp          # about a minute
//! RINGTRAIL_ROUNDS=9 cargo bench -p ringtrail-otlp --bench otlp
//! cargo test --benches                                 # a small smoke run
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use ringtrail::encode::copy::{copy_statement, CopyEncoder};
use ringtrail::{Field, Row, Value};
use tokio_postgres::{Client, NoTls};
use tracing_subscriber::prelude::*;

const PER_REQUEST: usize = 512;
const CLIENTS: usize = 4;
const BATCH_ROWS: usize = 8_192;
const TRACE: [u8; 16] = [0x4b; 16];
const SPAN: [u8; 8] = [0x0c; 8];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows = if full { 204_800 } else { 5_120 };
    let rounds: usize = std::env::var("RINGTRAIL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if full { 5 } else { 1 });
    let (cluster, url) = ringtrail_cluster::durable_database("ringtrail_otlp_bench")
        .expect("a benchmark database (a throwaway cluster, or set DATABASE_URL)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut admin = rt.block_on(connect(&url));
    rt.block_on(ringtrail::schema::apply(&mut admin)).unwrap();
    let truncate = rt.block_on(truncate_statement(&admin));
    // The flood first, while nothing freed earlier in this process can be
    // reused: its peak RSS is then memory it really took.
    let flood_body = Bytes::from(request(0, PER_REQUEST).encode_to_vec());
    let flood_report = flood(&rt, &url, if full { 5 } else { 1 }, &flood_body);
    rt.block_on(admin.batch_execute(&truncate)).unwrap();
    let bodies: Vec<Bytes> = (0..rows / PER_REQUEST)
        .map(|r| Bytes::from(request(r * PER_REQUEST, PER_REQUEST).encode_to_vec()))
        .collect();
    let requests: Vec<ExportLogsServiceRequest> = (0..rows / PER_REQUEST)
        .map(|r| request(r * PER_REQUEST, PER_REQUEST))
        .collect();
    let copy = copy_batches(rows);
    let names = ["raw_copy", "in_process", "otlp_http", "otlp_grpc"];
    let mut results: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        for k in 0..names.len() {
            let v = (k + round) % names.len();
            rt.block_on(admin.batch_execute(&truncate)).unwrap();
            rt.block_on(admin.batch_execute("CHECKPOINT")).unwrap();
            let cpu = cpu_time();
            let wall = match names[v] {
                "raw_copy" => rt.block_on(raw_copy(&url, &copy)),
                "in_process" => in_process(&url, rows),
                "otlp_http" => otlp(&rt, &url, Transport::Http(&bodies)),
                _ => otlp(&rt, &url, Transport::Grpc(&requests)),
            };
            let cpu = cpu_time() - cpu;
            let stored: i64 = rt
                .block_on(admin.query_one("SELECT count(*) FROM ringtrail.logs", &[]))
                .unwrap()
                .get(0);
            assert_eq!(stored as usize, rows, "{}: every row committed", names[v]);
            results[v].push((wall, cpu));
        }
    }
    let median = |v: &[(Duration, Duration)], cpu: bool| {
        let mut xs: Vec<f64> = v
            .iter()
            .map(|(w, c)| {
                if cpu {
                    c.as_secs_f64()
                } else {
                    w.as_secs_f64()
                }
            })
            .collect();
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let rate = |v: usize| rows as f64 / median(&results[v], false);
    let cpu_per_row = |v: usize| median(&results[v], true) / rows as f64 * 1e9;
    println!("\n## otlp: {rows} rows per iteration, median of {rounds} interleaved rounds\n");
    println!("| variant | rows/s | × raw_copy | × in_process | CPU ns/row (process) |");
    println!("|---|---:|---:|---:|---:|");
    for (v, name) in names.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.0} |",
            rate(v),
            rate(v) / rate(0),
            rate(v) / rate(1),
            cpu_per_row(v)
        );
    }
    println!(
        "\nreceiver CPU per row (otlp − in_process): HTTP {:.0} ns, gRPC {:.0} ns",
        cpu_per_row(2) - cpu_per_row(1),
        cpu_per_row(3) - cpu_per_row(1)
    );
    // The gRPC clients clone and encode each message as they send it (the
    // HTTP clients send bytes encoded before timing); that CPU is in the
    // gRPC row above. Measured alone here, so it can be taken off.
    let mut client_side: Vec<f64> = (0..3)
        .map(|_| {
            let cpu = cpu_time();
            let bytes: usize = requests
                .iter()
                .map(|r| r.clone().encode_to_vec().len())
                .sum();
            std::hint::black_box(bytes);
            (cpu_time() - cpu).as_secs_f64() / rows as f64 * 1e9
        })
        .collect();
    client_side.sort_by(f64::total_cmp);
    println!(
        "gRPC client's clone + encode per row (in the gRPC row's CPU): {:.0} ns, \
         so the gRPC receiver's own CPU per row is about {:.0} ns",
        client_side[1],
        cpu_per_row(3) - cpu_per_row(1) - client_side[1]
    );
    println!("{flood_report}");
    drop(admin);
    drop(rt);
    drop(cluster);
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn truncate_statement(admin: &Client) -> String {
    let tables: Vec<String> = admin
        .query(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
             WHERE schemaname = 'ringtrail' AND tablename <> 'schema_migrations'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    format!("TRUNCATE {}", tables.join(", "))
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

/// Records `first..first + n`: the shape of the in-process event.
fn request(first: usize, n: usize) -> ExportLogsServiceRequest {
    use any_value::Value as V;
    let now = now_nanos();
    let records = (first..first + n)
        .map(|i| LogRecord {
            time_unix_nano: now,
            severity_number: 9,
            body: Some(AnyValue {
                value: Some(V::StringValue(format!("request {i} took 3ms"))),
            }),
            attributes: vec![
                kv("user_id_hash", V::IntValue(42)),
                kv("latency", V::DoubleValue(1.5)),
                kv("ok", V::BoolValue(true)),
                kv("route", V::StringValue("/v1/orders".into())),
            ],
            trace_id: TRACE.to_vec(),
            span_id: SPAN.to_vec(),
            ..LogRecord::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", V::StringValue("bench".into()))],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// The rows as binary COPY batches, encoded now.
fn copy_batches(rows: usize) -> Vec<Bytes> {
    let fields = [
        Field {
            name: "user_id_hash",
            value: Value::I64(42),
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
    let trace = "4b".repeat(16);
    let mut encoder = CopyEncoder::new();
    let ts = now_nanos() as i64;
    (0..rows)
        .collect::<Vec<_>>()
        .chunks(BATCH_ROWS)
        .map(|chunk| {
            for &i in chunk {
                let message = format!("request {i} took 3ms");
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                id[8..].copy_from_slice(&ts.to_be_bytes());
                let mut context = [None; 6];
                context[0] = Some(trace.as_str());
                encoder.push_row(&Row {
                    ts_unix_nanos: ts,
                    id,
                    message: &message,
                    target: "bench",
                    fields: &fields,
                    context,
                    ..Row::default()
                });
            }
            Bytes::copy_from_slice(&encoder.finish())
        })
        .collect()
}

async fn raw_copy(url: &str, batches: &[Bytes]) -> Duration {
    let mut client = connect(url).await;
    let statement = client.prepare(&copy_statement()).await.unwrap();
    let started = Instant::now();
    for batch in batches {
        let tx = client.transaction().await.unwrap();
        let sink = tx.copy_in::<_, Bytes>(&statement).await.unwrap();
        futures_util::pin_mut!(sink);
        sink.send(batch.clone()).await.unwrap();
        sink.finish().await.unwrap();
        tx.commit().await.unwrap();
    }
    started.elapsed()
}

/// The pipeline every variant writes through: a ring that holds a whole
/// round (`rows` and a quarter more), so the in-process producer, which
/// outruns the writer, never drops, and no variant waits on a full ring
/// more than another.
fn pipeline(url: &str, rows: usize) -> (ringtrail::Layer, ringtrail::Guard) {
    ringtrail::Builder::new()
        .postgres(url)
        .capacity((rows + rows / 4).next_power_of_two())
        .build()
        .unwrap()
}

fn in_process(url: &str, rows: usize) -> Duration {
    let (layer, guard) = pipeline(url, rows);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let trace = "4b".repeat(16);
    let started = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("bench", trace_id = trace.as_str());
        let _entered = span.enter();
        for i in 0..rows {
            tracing::info!(
                target: "bench",
                user_id_hash = 42i64,
                latency = 1.5f64,
                ok = true,
                route = "/v1/orders",
                "request {} took 3ms",
                i
            );
        }
    });
    guard.flush().unwrap();
    let wall = started.elapsed();
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(
        stats.dropped, 0,
        "in_process: no drop (the ring holds every row)"
    );
    wall
}

enum Transport<'a> {
    Http(&'a [Bytes]),
    Grpc(&'a [ExportLogsServiceRequest]),
}

fn server_config() -> ringtrail_otlp::Config {
    ringtrail_otlp::Config {
        http: Some(([127, 0, 0, 1], 0).into()),
        grpc: Some(([127, 0, 0, 1], 0).into()),
        push_wait: Duration::from_secs(30),
        ..ringtrail_otlp::Config::default()
    }
}

fn otlp(rt: &tokio::runtime::Runtime, url: &str, transport: Transport<'_>) -> Duration {
    let requests = match &transport {
        Transport::Http(bodies) => bodies.len(),
        Transport::Grpc(requests) => requests.len(),
    };
    let (_layer, guard) = pipeline(url, requests * PER_REQUEST);
    let server = rt
        .block_on(ringtrail_otlp::Server::start(
            server_config(),
            guard.ingest(),
        ))
        .unwrap();
    let http = server.http_addr().unwrap();
    let grpc = server.grpc_addr().unwrap();
    let started = Instant::now();
    rt.block_on(async {
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let next = Arc::clone(&next);
            match &transport {
                Transport::Http(bodies) => {
                    let bodies: Vec<Bytes> = bodies.to_vec();
                    tasks.push(tokio::spawn(async move {
                        let client = HttpClient::builder(TokioExecutor::new()).build_http();
                        let uri: hyper::Uri = format!("http://{http}/v1/logs").parse().unwrap();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                            let Some(body) = bodies.get(k) else { break };
                            let req = hyper::Request::post(uri.clone())
                                .header("content-type", "application/x-protobuf")
                                .body(Full::new(body.clone()))
                                .unwrap();
                            let resp = client.request(req).await.unwrap();
                            assert_eq!(resp.status(), 200);
                            let _ = resp.into_body().collect().await;
                        }
                    }));
                }
                Transport::Grpc(requests) => {
                    let requests: Vec<ExportLogsServiceRequest> = requests.to_vec();
                    tasks.push(tokio::spawn(async move {
                        let mut client = LogsServiceClient::connect(format!("http://{grpc}"))
                            .await
                            .unwrap();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                            let Some(request) = requests.get(k) else {
                                break;
                            };
                            client.export(request.clone()).await.unwrap();
                        }
                    }));
                }
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    guard.flush().unwrap();
    let wall = started.elapsed();
    rt.block_on(server.stop(Duration::from_secs(5)));
    guard.shutdown(Duration::from_secs(30)).unwrap();
    wall
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1_000);
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// `VmRSS` of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn flood(rt: &tokio::runtime::Runtime, url: &str, seconds: u64, body: &Bytes) -> String {
    const INFLIGHT: usize = 64 << 20;
    const CAPACITY: usize = 65_536;
    const QUEUE: usize = 64 << 20;
    let (_layer, guard) = ringtrail::Builder::new()
        .postgres(url)
        .capacity(CAPACITY)
        .batch_queue_bytes(QUEUE)
        .build()
        .unwrap();
    // As `ringtrail serve` runs: the default wait for room (200 ms), then
    // 429.
    let config = ringtrail_otlp::Config {
        max_inflight_bytes: INFLIGHT,
        grpc: None,
        http: Some(([127, 0, 0, 1], 0).into()),
        ..ringtrail_otlp::Config::default()
    };
    let server = rt
        .block_on(ringtrail_otlp::Server::start(config, guard.ingest()))
        .unwrap();
    let http = server.http_addr().unwrap();
    let before = rss();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (ok, busy) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // The database stops for the first half: the table locked, the writer
    // waits, the batch queue and the ring fill, and the receiver must
    // answer 429 rather than hold more. Then it catches up.
    let admin = rt.block_on(async {
        let admin = connect(url).await;
        admin
            .batch_execute("BEGIN; LOCK TABLE ringtrail.logs IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("the lock");
        admin
    });
    let hold = Duration::from_millis(seconds * 500);
    let locker = rt.spawn(async move {
        tokio::time::sleep(hold).await;
        admin.batch_execute("COMMIT").await.expect("unlock");
    });
    let until = Instant::now() + Duration::from_secs(seconds);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS * 10 {
            let (ok, busy, body) = (Arc::clone(&ok), Arc::clone(&busy), body.clone());
            tasks.push(tokio::spawn(async move {
                let client = HttpClient::builder(TokioExecutor::new()).build_http();
                let uri: hyper::Uri = format!("http://{http}/v1/logs").parse().unwrap();
                while Instant::now() < until {
                    let req = hyper::Request::post(uri.clone())
                        .header("content-type", "application/x-protobuf")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let resp = client.request(req).await.unwrap();
                    match resp.status().as_u16() {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => busy.fetch_add(1, Ordering::Relaxed),
                        other => panic!("flood: unexpected {other}"),
                    };
                    let _ = resp.into_body().collect().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    rt.block_on(locker).unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    rt.block_on(server.stop(Duration::from_secs(5)));
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let ring = (CAPACITY * 512) as u64;
    let bound = (INFLIGHT + QUEUE) as u64 + ring;
    let mut report = format!(
        "\n## flood: {} clients × {seconds} s, {PER_REQUEST} records a request\n\n",
        CLIENTS * 10
    );
    report.push_str("| answered 200 | answered 429 | rows written | RSS before | peak RSS | peak − before | documented bound |\n");
    report.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
    report.push_str(&format!(
        "| {} | {} | {} | {} MiB | {} MiB | {} MiB | {} MiB |",
        ok.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed),
        stats.written,
        before >> 20,
        peak >> 20,
        (peak - before) >> 20,
        bound >> 20
    ));
    assert_eq!(
        stats.written,
        ok.load(Ordering::Relaxed) * PER_REQUEST as u64,
        "rows written = records answered 200"
    );
    assert!(
        peak - before <= bound,
        "peak RSS above the documented bound"
    );
    report
}
