//! `ringtrail serve` against the clients agents really use: the Python
//! OpenTelemetry SDK (OTLP/HTTP protobuf and OTLP/gRPC), Node's
//! `@opentelemetry/exporter-logs-otlp-http` (OTLP/JSON), and the MCP
//! Python SDK, 2.x with its own spans and 1.x instrumented by
//! OpenLLMetry. `tests/clients/setup.sh` installs them (cached); when it
//! cannot, these tests fail: they never skip.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ringtrail_testkit::serve::Serve;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The clients' cache directory, installed once per test binary.
fn clients() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("tests/clients/setup.sh"))
            .current_dir(root())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "tests/clients/setup.sh failed (the real clients are required):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Runs a client script; its one JSON line.
fn client(program: &Path, script: &str, args: &[&str]) -> Value {
    let out = Command::new(program)
        .arg(root().join("tests/clients").join(script))
        .args(args)
        .env("RINGTRAIL_CLIENTS_DIR", clients())
        .env_remove("RINGTRAIL_TOKEN")
        .current_dir(root())
        .output()
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn py_otel() -> PathBuf {
    clients().join("py-otel/bin/python")
}

fn py_mcp1() -> PathBuf {
    clients().join("py-mcp1/bin/python")
}

fn count(url: &str, sql: &str) -> i64 {
    common::client(url).query_one(sql, &[]).unwrap().get(0)
}

/// Waits until `sql` counts at least `want` (the writer commits within
/// its flush interval).
fn wait_count(url: &str, sql: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = count(url, sql);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn python_and_node_logs_arrive_with_their_types_ids_and_services() {
    let url = common::migrated_database();
    let serve = Serve::start(&url, &[]);
    let http = serve.http.clone();
    let grpc = format!("http://{}", serve.grpc);
    let py_http = client(
        &py_otel(),
        "otel_logs.py",
        &[
            "--protocol",
            "http",
            "--endpoint",
            &http,
            "--count",
            "40",
            "--service",
            "py-http",
        ],
    );
    let py_grpc = client(
        &py_otel(),
        "otel_logs.py",
        &[
            "--protocol",
            "grpc",
            "--endpoint",
            &grpc,
            "--count",
            "30",
            "--service",
            "py-grpc",
        ],
    );
    let node = client(
        Path::new("node"),
        "node/send_logs.mjs",
        &[
            "--endpoint",
            &http,
            "--count",
            "20",
            "--gzip",
            "--service",
            "node-json",
        ],
    );
    for (summary, n) in [(&py_http, 40), (&py_grpc, 30), (&node, 20)] {
        assert_eq!(summary["count"], n, "{summary}");
        assert_eq!(summary["ok"], true);
    }
    for (service, n) in [("py-http", 40), ("py-grpc", 30), ("node-json", 20)] {
        let sql = format!(
            "SELECT count(*) FROM ringtrail.logs WHERE fields->>'service.name' = '{service}'"
        );
        assert_eq!(wait_count(&url, &sql, n), n, "{service}");
    }
    // Every attribute type keeps its JSON type.
    let mut db = common::client(&url);
    for service in ["py-http", "py-grpc", "node-json"] {
        let row = db
            .query_one(
                "SELECT jsonb_typeof(fields->'i'), jsonb_typeof(fields->'ratio'), jsonb_typeof(fields->'ok'), \
                 jsonb_typeof(fields->'label'), jsonb_typeof(fields->'raw'), jsonb_typeof(fields->'tags'), \
                 jsonb_typeof(fields->'ctx') FROM ringtrail.logs \
                 WHERE fields->>'service.name' = $1 AND fields ? 'ctx' LIMIT 1",
                &[&service],
            )
            .unwrap_or_else(|e| panic!("{service}: {e}"));
        let types: Vec<Option<String>> = (0..7).map(|i| row.get(i)).collect();
        let want = [
            "number", "number", "boolean", "string", "string", "array", "object",
        ];
        assert_eq!(types, want.map(|t| Some(t.to_owned())), "{service}");
    }
    // Trace and span ids as the clients sent them.
    for summary in [&py_http, &node] {
        for record in summary["records"].as_array().unwrap() {
            let Some(trace) = record["trace_id"].as_str() else {
                continue;
            };
            let span = record["span_id"].as_str().unwrap();
            let sql = format!(
                "SELECT count(*) FROM ringtrail.logs WHERE trace_id = '{trace}' AND fields->>'span_id' = '{span}'"
            );
            assert!(count(&url, &sql) >= 1, "{trace}/{span} stored");
        }
    }
    assert_eq!(serve.stop(), Some(0));
    assert_success(&run(&["verify", "--database-url", &url]));
}

/// The findings of `trace` for `id`.
fn findings(url: &str, id: &str) -> Vec<Value> {
    let out = run(&["trace", id, "--database-url", url, "--json"]);
    let text = assert_success(&out);
    let json: Value = serde_json::from_str(&text).unwrap();
    json["findings"].as_array().unwrap().clone()
}

fn missing_permission_tools(findings: &[Value]) -> Vec<String> {
    let mut tools: Vec<String> = findings
        .iter()
        .filter(|f| f["code"] == "missing_permission")
        .map(|f| f["tool"].as_str().unwrap_or("").to_owned())
        .collect();
    tools.sort();
    tools.dedup();
    tools
}

#[test]
fn genai_spans_become_audit_points_and_gaps_are_found() {
    let url = common::migrated_database();
    let serve = Serve::start(&url, &[]);
    let covered = client(
        &py_otel(),
        "otel_genai.py",
        &["--protocol", "http", "--endpoint", &serve.http],
    );
    let uncovered = client(
        &py_otel(),
        "otel_genai.py",
        &[
            "--protocol",
            "grpc",
            "--endpoint",
            &format!("http://{}", serve.grpc),
            "--no-permission",
        ],
    );
    let covered_id = covered["trace_ids"][0].as_str().unwrap().to_owned();
    let uncovered_id = uncovered["trace_ids"][0].as_str().unwrap().to_owned();
    for id in [&covered_id, &uncovered_id] {
        let sql =
            format!("SELECT count(*) FROM ringtrail.logs WHERE trace_id = '{id}' AND kind = 5");
        assert_eq!(wait_count(&url, &sql, 1), 1, "the result point of {id}");
    }
    std::thread::sleep(Duration::from_millis(500));
    // The spans are points: the root agent (and its user's identity),
    // the chat and the tool execution.
    let kinds = |id: &str, span: &str| {
        count(&url, &format!(
            "SELECT count(*) FROM ringtrail.logs WHERE trace_id = '{id}' AND span_name LIKE '{span}%' AND kind IS NOT NULL AND message NOT LIKE 'identity of %'"
        ))
    };
    assert_eq!(kinds(&covered_id, "invoke_agent"), 1);
    assert_eq!(kinds(&covered_id, "chat"), 1);
    assert_eq!(kinds(&covered_id, "execute_tool"), 1);
    let tool = covered["traces"][0]["tool"].as_str().unwrap().to_owned();
    // The model call (`chat`) is a tool point without a tool name: only
    // a blanket permission covers it, and the script sends none.
    let gaps = missing_permission_tools(&findings(&url, &covered_id));
    assert!(!gaps.contains(&tool), "{gaps:?}");
    assert!(gaps.iter().all(|t| t.is_empty()), "{gaps:?}");
    let gaps = missing_permission_tools(&findings(&url, &uncovered_id));
    assert!(gaps.contains(&tool), "{gaps:?}");
    assert_eq!(serve.stop(), Some(0));
}

/// Runs an MCP demo (an agent and a stdio MCP server) against `serve`;
/// returns its summary once its rows are stored.
fn mcp_demo(url: &str, program: &Path, script: &str, endpoint: &str) -> Value {
    let summary = client(program, script, &["--endpoint", endpoint, "--refund"]);
    let id = summary["trace_id"]
        .as_str()
        .expect("a root trace")
        .to_owned();
    let sql = format!("SELECT count(*) FROM ringtrail.logs WHERE trace_id = '{id}' AND kind = 5");
    assert_eq!(wait_count(url, &sql, 1), 1, "{script}: the result point");
    std::thread::sleep(Duration::from_millis(500));
    summary
}

#[test]
fn mcp_tool_calls_from_both_python_sdks_are_tool_points_checked_against_permissions() {
    let url = common::migrated_database();
    let serve = Serve::start(&url, &[]);
    for (program, script) in [(py_otel(), "mcp2_demo.py"), (py_mcp1(), "mcp1_demo.py")] {
        let summary = mcp_demo(&url, &program, script, &serve.http);
        let id = summary["trace_id"].as_str().unwrap();
        // Each real tool call is a tool point named for its tool.
        for tool in ["lookup_order", "refund_order"] {
            let sql = format!(
                "SELECT count(*) FROM ringtrail.logs WHERE trace_id = '{id}' AND kind = 4 \
                 AND fields->>'gen_ai.tool.name' = '{tool}' AND fields ? 'otel.scope.name'"
            );
            assert!(count(&url, &sql) >= 1, "{script}: {tool} is a tool point");
        }
        // initialize and tools/list are no points.
        let sql = format!(
            "SELECT count(*) FROM ringtrail.logs WHERE trace_id = '{id}' AND kind IS NOT NULL \
             AND (span_name LIKE '%initialize%' OR span_name LIKE '%tools/list%')"
        );
        assert_eq!(count(&url, &sql), 0, "{script}");
        // The permission covers lookup_order only.
        let gaps = missing_permission_tools(&findings(&url, id));
        assert_eq!(gaps, vec!["refund_order".to_owned()], "{script}");
    }
    assert_eq!(serve.stop(), Some(0));
    assert_success(&run(&["verify", "--database-url", &url]));
}

#[test]
fn an_ingested_log_record_exports_back_as_otlp() {
    let url = common::migrated_database();
    let serve = Serve::start(&url, &[]);
    let sent = client(
        &py_otel(),
        "otel_logs.py",
        &[
            "--protocol",
            "http",
            "--endpoint",
            &serve.http,
            "--count",
            "6",
            "--service",
            "roundtrip",
        ],
    );
    let sql = "SELECT count(*) FROM ringtrail.logs WHERE fields->>'service.name' = 'roundtrip'";
    assert_eq!(wait_count(&url, sql, 6), 6);
    assert_eq!(serve.stop(), Some(0));
    let out = run(&[
        "export",
        "--database-url",
        &url,
        "--format",
        "otlp",
        "--since",
        "1h",
    ]);
    let text = assert_success(&out);
    let mut seen = 0;
    for line in text.lines() {
        let json: Value = serde_json::from_str(line).unwrap();
        let record = &json["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        let attrs = record["attributes"].as_array().unwrap();
        let attr = |k: &str| {
            attrs
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"].clone())
        };
        if attr("service.name")
            .and_then(|v| v["stringValue"].as_str().map(str::to_owned))
            .as_deref()
            != Some("roundtrip")
        {
            continue;
        }
        let i = attr("i").unwrap()["intValue"]
            .as_str()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        let want = &sent["records"][i];
        assert_eq!(record["severityNumber"], want["severity_number"], "{line}");
        assert_eq!(record["body"]["stringValue"], format!("otel log {i}"));
        if let Some(trace) = want["trace_id"].as_str() {
            assert_eq!(record["traceId"], trace);
            assert_eq!(record["spanId"], want["span_id"]);
        }
        assert!(attr("ratio").unwrap()["doubleValue"].is_number(), "{line}");
        assert!(attr("ok").unwrap()["boolValue"].is_boolean());
        assert!(
            attr("tags").unwrap()["arrayValue"]["values"].is_array(),
            "{line}"
        );
        assert!(
            attr("ctx").unwrap()["kvlistValue"]["values"].is_array(),
            "{line}"
        );
        assert!(
            record["timeUnixNano"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 0
        );
        seen += 1;
    }
    assert_eq!(seen, 6);
}
