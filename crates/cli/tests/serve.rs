//! `ringtrail serve`: the real binary, a real PostgreSQL, and real HTTP
//! requests (curl) for every answer the OTLP/HTTP spec names.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::io::Write;
use std::time::{Duration, Instant};

use ringtrail_testkit::serve::{curl, Serve};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

/// A logs request of `n` records whose messages start with `tag`.
pub fn logs_request(tag: &str, n: usize) -> ExportLogsServiceRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: now,
            severity_number: 13,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("{tag} {i}"))),
            }),
            attributes: vec![kv("i", any_value::Value::IntValue(i as i64))],
            trace_id: vec![0x4b; 16],
            span_id: vec![0x0c; 8],
            ..LogRecord::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

fn rows_like(url: &str, tag: &str) -> i64 {
    common::client(url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE message LIKE $1 || ' %'",
            &[&tag],
        )
        .unwrap()
        .get(0)
}

fn wait_rows(url: &str, tag: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = rows_like(url, tag);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const PB: &str = "Content-Type: application/x-protobuf";
const JSON: &str = "Content-Type: application/json";

#[test]
fn every_status_code_from_real_requests() {
    let url = common::migrated_database();
    let serve = Serve::start(&url, &["--max-body", "100000", "--token", "s3cret"]);
    let logs = format!(
        "http://{}/v1/logs",
        serve.http.trim_start_matches("http://")
    );
    let auth = "Authorization: Bearer s3cret";
    let body = logs_request("status", 3).encode_to_vec();

    let ok = curl(&["-H", PB, "-H", auth, "--data-binary", "@-", &logs], &body);
    assert_eq!(ok.status, 200);
    assert!(ok.headers.contains("content-type: application/x-protobuf"));
    let json_body = serde_json::to_vec(&logs_request("statusjson", 2)).unwrap();
    let ok = curl(
        &["-H", JSON, "-H", auth, "--data-binary", "@-", &logs],
        &json_body,
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.body, b"{}", "no partial_success when all were taken");

    let missing = curl(&["-H", PB, "--data-binary", "@-", &logs], &body);
    assert_eq!(missing.status, 401);
    let wrong = curl(
        &[
            "-H",
            PB,
            "-H",
            "Authorization: Bearer s3cre",
            "--data-binary",
            "@-",
            &logs,
        ],
        &body,
    );
    assert_eq!(wrong.status, 401);
    let garbage = curl(
        &["-H", PB, "-H", auth, "--data-binary", "@-", &logs],
        b"\xff\xff\xff not protobuf",
    );
    assert_eq!(garbage.status, 400);
    let bad_json = curl(
        &["-H", JSON, "-H", auth, "--data-binary", "@-", &logs],
        b"{\"resourceLogs\": [",
    );
    assert_eq!(bad_json.status, 400);
    let text = curl(
        &[
            "-H",
            "Content-Type: text/plain",
            "-H",
            auth,
            "--data-binary",
            "@-",
            &logs,
        ],
        &body,
    );
    assert_eq!(text.status, 415);
    let unknown = curl(
        &[
            "-H",
            PB,
            "-H",
            auth,
            "--data-binary",
            "@-",
            &logs.replace("/v1/logs", "/v1/metricz"),
        ],
        &body,
    );
    assert_eq!(unknown.status, 404);
    let get = curl(&["-H", auth, &logs], b"");
    assert_eq!(get.status, 405);
    let big = vec![b'x'; 200_000];
    let too_large = curl(&["-H", PB, "-H", auth, "--data-binary", "@-", &logs], &big);
    assert_eq!(too_large.status, 413);
    // A gzip bomb: 50 MiB of zeros in ~50 KiB, under the limit as sent.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 50 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 100_000);
    let bombed = curl(
        &[
            "-H",
            PB,
            "-H",
            auth,
            "-H",
            "Content-Encoding: gzip",
            "--data-binary",
            "@-",
            &logs,
        ],
        &bomb,
    );
    assert_eq!(bombed.status, 413);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&logs_request("gzipped", 4).encode_to_vec())
        .unwrap();
    let gzipped = curl(
        &[
            "-H",
            PB,
            "-H",
            auth,
            "-H",
            "Content-Encoding: gzip",
            "--data-binary",
            "@-",
            &logs,
        ],
        &gz.finish().unwrap(),
    );
    assert_eq!(gzipped.status, 200);
    let health = curl(&[&logs.replace("/v1/logs", "/healthz")], b"");
    assert_eq!(health.status, 200, "no token needed");

    assert_eq!(wait_rows(&url, "status", 3), 3);
    assert_eq!(wait_rows(&url, "statusjson", 2), 2);
    assert_eq!(wait_rows(&url, "gzipped", 4), 4);
    assert_eq!(serve.stop(), Some(0), "SIGTERM stops it cleanly");
    // Nothing the bad requests sent was stored.
    let total: i64 = common::client(&url)
        .query_one("SELECT count(*) FROM ringtrail.logs", &[])
        .unwrap()
        .get(0);
    assert_eq!(total, 9);
    let verify = run(&["verify", "--database-url", &url]);
    assert_success(&verify);
}

#[test]
fn a_full_ring_answers_429_and_the_rows_stored_are_exactly_those_answered_200() {
    let url = common::migrated_database();
    // A tiny ring: concurrent requests of 40 records cannot all fit.
    let serve = Serve::start(&url, &["--capacity", "128"]);
    let logs = format!("{}/v1/logs", serve.http);
    let mut handles = Vec::new();
    for client in 0..8 {
        let logs = logs.clone();
        handles.push(std::thread::spawn(move || {
            let mut accepted = 0;
            let mut refused = 0;
            for round in 0..15 {
                let tag = format!("flood-{client}-{round}");
                let body = logs_request(&tag, 40).encode_to_vec();
                let answer = curl(&["-H", PB, "--data-binary", "@-", &logs], &body);
                match answer.status {
                    200 => {
                        let response = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse::decode(answer.body.as_slice()).unwrap();
                        let rejected = response.partial_success.map_or(0, |p| p.rejected_log_records);
                        accepted += 40 - rejected;
                    }
                    429 | 503 => {
                        assert!(answer.headers.contains("retry-after: "), "{}", answer.headers);
                        refused += 40;
                    }
                    other => panic!("unexpected {other}"),
                }
            }
            (accepted, refused)
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for h in handles {
        let (a, r) = h.join().unwrap();
        accepted += a;
        refused += r;
    }
    assert_eq!(serve.stop(), Some(0));
    let stored: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE message LIKE 'flood-%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        stored, accepted,
        "stored = answered 200 ({refused} refused)"
    );
}

#[test]
fn a_public_address_without_a_token_is_refused_at_start() {
    let out = run(&[
        "serve",
        "--database-url",
        "postgres://x@127.0.0.1:1/x",
        "--http",
        "0.0.0.0:0",
        "--grpc",
        "off",
    ]);
    assert_one_line_failure(&out, 2, "--token");
    let out = run(&["serve", "--http", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A tonic client (what Rust agents export with) to `serve`'s gRPC
/// listener, with `token` as its bearer token and gzip when asked.
async fn grpc_export(
    addr: &str,
    token: Option<&str>,
    gzip: bool,
    request: ExportLogsServiceRequest,
) -> Result<(), tonic::Status> {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    let mut client = LogsServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    if gzip {
        client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    let mut request = tonic::Request::new(request);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    client.export(request).await.map(|_| ())
}

#[test]
fn grpc_answers_with_the_matching_status_codes() {
    let url = common::migrated_database();
    let serve = Serve::start(&url, &["--max-body", "200000", "--token", "s3cret"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let grpc = serve.grpc.clone();
    rt.block_on(async {
        grpc_export(&grpc, Some("s3cret"), true, logs_request("grpc", 5))
            .await
            .expect("taken");
        let code = |r: Result<(), tonic::Status>| r.unwrap_err().code();
        assert_eq!(
            code(grpc_export(&grpc, None, false, logs_request("nope", 1)).await),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            code(grpc_export(&grpc, Some("wrong"), false, logs_request("nope", 1)).await),
            tonic::Code::Unauthenticated
        );
        // Over --max-body as sent, and (gzip: about 1 KiB sent) only once
        // inflated: tonic's OUT_OF_RANGE and RESOURCE_EXHAUSTED.
        let mut big = logs_request("nope", 1);
        big.resource_logs[0].scope_logs[0].log_records[0].body = Some(AnyValue {
            value: Some(any_value::Value::StringValue("z".repeat(1 << 20))),
        });
        assert_eq!(
            code(grpc_export(&grpc, Some("s3cret"), false, big.clone()).await),
            tonic::Code::OutOfRange
        );
        assert_eq!(
            code(grpc_export(&grpc, Some("s3cret"), true, big).await),
            tonic::Code::ResourceExhausted
        );
    });
    assert_eq!(wait_rows(&url, "grpc", 5), 5);
    assert_eq!(serve.stop(), Some(0));
    assert_eq!(rows_like(&url, "nope"), 0);
}

#[test]
fn tls_serves_https_with_the_given_certificate_and_no_plain_http() {
    let url = common::migrated_database();
    let dir = common::tls::Certs::new();
    let cert = dir.server_cert.to_str().unwrap();
    let key = dir.server_key.to_str().unwrap();
    let serve = Serve::start(&url, &["--tls-cert", cert, "--tls-key", key]);
    assert!(serve.http.starts_with("https://"), "{}", serve.http);
    let logs = format!("{}/v1/logs", serve.http).replace("127.0.0.1", "localhost");
    let body = logs_request("tls", 2).encode_to_vec();
    let ca = dir.ca_cert.to_str().unwrap();
    let ok = curl(
        &["--cacert", ca, "-H", PB, "--data-binary", "@-", &logs],
        &body,
    );
    assert_eq!(ok.status, 200);
    // Plain HTTP to the TLS port gets no answer.
    let plain = curl(
        &[
            "-H",
            PB,
            "--data-binary",
            "@-",
            &logs.replace("https://", "http://"),
        ],
        &body,
    );
    assert_eq!(plain.status, 0);
    assert_eq!(wait_rows(&url, "tls", 2), 2);
    assert_eq!(serve.stop(), Some(0));
}

#[test]
fn ingested_rows_are_redacted_in_the_table_and_the_jsonl_sink_and_verify_clean() {
    let url = common::migrated_database();
    let dir = common::spool_dir("serve-jsonl");
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("rows.jsonl");
    let serve = Serve::start(
        &url,
        &["--jsonl", jsonl.to_str().unwrap(), "--format", "native"],
    );
    let mut request = logs_request("secret", 1);
    let record = &mut request.resource_logs[0].scope_logs[0].log_records[0];
    record.attributes.extend([
        kv("password", any_value::Value::StringValue("hunter2".into())),
        kv(
            "api_key",
            any_value::Value::StringValue("k-1234567890".into()),
        ),
        kv(
            "note",
            any_value::Value::StringValue("auth Bearer abcdef0123456789xyz".into()),
        ),
    ]);
    let answer = curl(
        &[
            "-H",
            PB,
            "--data-binary",
            "@-",
            &format!("{}/v1/logs", serve.http),
        ],
        &request.encode_to_vec(),
    );
    assert_eq!(answer.status, 200);
    assert_eq!(wait_rows(&url, "secret", 1), 1);
    assert_eq!(serve.stop(), Some(0));
    let fields: String = common::client(&url)
        .query_one(
            "SELECT fields::text FROM ringtrail.logs WHERE message = 'secret 0'",
            &[],
        )
        .unwrap()
        .get(0);
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert!(lines.contains("secret 0"), "{lines}");
    for stored in [&fields, &lines] {
        for secret in ["hunter2", "k-1234567890", "abcdef0123456789xyz"] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
    }
    assert_success(&run(&["verify", "--database-url", &url]));
}
