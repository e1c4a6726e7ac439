//! The mapping table of `docs/otlp.md`, row by row: OTLP log records,
//! spans and span events into ringtrail rows.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use ringtrail_otlp::map::value::{Owned, OwnedRow};
use ringtrail_otlp::map::{logs, traces};

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_owned())
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", s("checkout")), kv("host.name", s("h1"))],
        ..Resource::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        ..InstrumentationScope::default()
    })
}

fn log_request(records: Vec<LogRecord>, scope_name: &str) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(scope_name),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

fn trace_request(spans: Vec<Span>, scope_name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(scope_name),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

#[test]
fn a_log_record_is_one_row() {
    use any_value::Value as V;
    let record = LogRecord {
        time_unix_nano: 1_700_000_000_123_456_000,
        observed_time_unix_nano: 1_700_000_001_000_000_000,
        severity_number: 13,
        severity_text: "WARNING".into(),
        body: Some(AnyValue {
            value: Some(s("disk low")),
        }),
        attributes: vec![
            kv("free", V::IntValue(3)),
            kv("user.id", s("alice")),
            kv("session.id", s("s-1")),
            kv("task_id", s("t-9")),
        ],
        trace_id: vec![0xAB; 16],
        span_id: vec![0xCD; 8],
        ..LogRecord::default()
    };
    let rows = logs(log_request(vec![record], "app.disk"), 42);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.ts_unix_nanos, 1_700_000_000_123_456_000);
    assert_eq!(row.level, 13);
    assert_eq!(row.message, "disk low");
    assert_eq!(row.target, "app.disk");
    assert_eq!(
        row.context[0].as_deref(),
        Some("abababababababababababababababab")
    );
    assert_eq!(
        row.context[1].as_deref(),
        Some("alice"),
        "user.id fills user_id"
    );
    assert_eq!(
        row.context[2].as_deref(),
        Some("s-1"),
        "session.id fills session_id"
    );
    assert!(row.field("user.id").is_none() && row.field("session.id").is_none());
    assert_eq!(
        row.field("task_id"),
        Some(&Owned::Str("t-9".into())),
        "the decoder moves it to its column"
    );
    assert_eq!(row.field("free"), Some(&Owned::Int(3)));
    assert_eq!(row.str_field("span_id"), Some("cdcdcdcdcdcdcdcd"));
    assert_eq!(row.str_field("service.name"), Some("checkout"));
    assert_eq!(
        row.str_field("severity_text"),
        Some("WARNING"),
        "kept: not the level's own name"
    );
    assert!(
        row.field("host.name").is_none(),
        "other resource attributes are not kept"
    );
    assert!(row.span_name.is_none());
}

#[test]
fn log_times_bodies_and_levels_fall_back_as_documented() {
    use any_value::Value as V;
    let observed = LogRecord {
        observed_time_unix_nano: 5_000,
        severity_number: 0,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(V::KvlistValue(
                opentelemetry_proto::tonic::common::v1::KeyValueList {
                    values: vec![kv("a", V::IntValue(1))],
                },
            )),
        }),
        ..LogRecord::default()
    };
    let neither = LogRecord::default();
    let rows = logs(log_request(vec![observed, neither], ""), 777);
    assert_eq!(
        rows[0].ts_unix_nanos, 5_000,
        "observed time when there is no time"
    );
    assert_eq!(rows[0].level, 9, "unspecified severity is INFO");
    assert_eq!(rows[0].message, r#"{"a":1}"#, "a non-string body as JSON");
    assert!(
        rows[0].field("severity_text").is_none(),
        "INFO is the level's name"
    );
    assert_eq!(rows[0].target, "otlp", "a scope without a name");
    assert_eq!(rows[1].ts_unix_nanos, 777, "neither: the time received");
    assert_eq!(rows[1].message, "");
    assert!(rows[1].context[0].is_none(), "no trace id");
}

fn span(name: &str, attributes: Vec<KeyValue>, parent: Option<[u8; 8]>) -> Span {
    Span {
        trace_id: vec![0x11; 16],
        span_id: vec![0x22; 8],
        parent_span_id: parent.map_or(Vec::new(), |p| p.to_vec()),
        name: name.to_owned(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 4_500,
        attributes,
        ..Span::default()
    }
}

#[test]
fn a_span_is_one_row_and_its_events_rows_of_their_own() {
    use any_value::Value as V;
    let mut sp = span(
        "GET /orders",
        vec![kv("http.route", s("/orders"))],
        Some([0x33; 8]),
    );
    sp.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: "boom".into(),
    });
    sp.events = vec![
        span::Event {
            time_unix_nano: 2_000,
            name: "exception".into(),
            attributes: vec![kv("exception.type", s("IOError"))],
            ..span::Event::default()
        },
        span::Event {
            time_unix_nano: 3_000,
            name: "retry".into(),
            attributes: vec![kv("attempt", V::IntValue(2))],
            ..span::Event::default()
        },
    ];
    let rows = traces(trace_request(vec![sp], "http"));
    assert_eq!(rows.len(), 3);
    let (row, exception, retry) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(row.ts_unix_nanos, 1_000);
    assert_eq!(row.span_name.as_deref(), Some("GET /orders"));
    assert_eq!(row.message, "GET /orders");
    assert_eq!(row.level, 17, "an error status");
    assert_eq!(row.field("duration_ns"), Some(&Owned::Int(3_500)));
    assert_eq!(row.str_field("span_id"), Some("2222222222222222"));
    assert_eq!(row.str_field("parent_span_id"), Some("3333333333333333"));
    assert_eq!(row.str_field("span.kind"), Some("client"));
    assert_eq!(row.str_field("status"), Some("error"));
    assert_eq!(row.str_field("status.message"), Some("boom"));
    assert_eq!(row.str_field("http.route"), Some("/orders"));
    assert_eq!(
        row.context[0].as_deref(),
        Some("11111111111111111111111111111111")
    );
    for event in [exception, retry] {
        assert_eq!(event.context[0], row.context[0], "the same trace");
        assert_eq!(event.span_name.as_deref(), Some("GET /orders"));
        assert_eq!(event.str_field("span_id"), Some("2222222222222222"));
    }
    assert_eq!((exception.ts_unix_nanos, exception.level), (2_000, 17));
    assert_eq!(exception.message, "exception");
    assert_eq!(exception.str_field("exception.type"), Some("IOError"));
    assert_eq!(
        (retry.level, retry.field("attempt")),
        (9, Some(&Owned::Int(2)))
    );
}

fn point(row: &OwnedRow) -> Option<&str> {
    row.str_field("audit.point")
}

#[test]
fn genai_and_mcp_conventions_become_audit_points() {
    let root = span(
        "invoke_agent order-assistant",
        vec![
            kv("gen_ai.operation.name", s("invoke_agent")),
            kv("gen_ai.agent.name", s("order-assistant")),
            kv("user.id", s("alice")),
        ],
        None,
    );
    let chat = span(
        "chat gpt-4o",
        vec![kv("gen_ai.operation.name", s("chat"))],
        Some([1; 8]),
    );
    let tool = span(
        "execute_tool lookup_order",
        vec![
            kv("gen_ai.operation.name", s("execute_tool")),
            kv("gen_ai.tool.name", s("lookup_order")),
        ],
        Some([1; 8]),
    );
    let mcp_client = span(
        "MCP send tools/call refund_order",
        vec![kv("mcp.method.name", s("tools/call"))],
        Some([1; 8]),
    );
    let mcp_list = span(
        "MCP send tools/list",
        vec![kv("mcp.method.name", s("tools/list"))],
        Some([1; 8]),
    );
    let traceloop = span(
        "lookup_order.tool",
        vec![
            kv("traceloop.span.kind", s("tool")),
            kv("traceloop.entity.name", s("lookup_order")),
        ],
        Some([1; 8]),
    );
    let workflow = span(
        "plan.workflow",
        vec![kv("traceloop.span.kind", s("workflow"))],
        Some([1; 8]),
    );
    let wire = span(
        "check",
        vec![
            kv("audit.point", s("permission")),
            kv("decision", s("allow")),
            kv("gen_ai.tool.name", s("x")),
        ],
        Some([1; 8]),
    );
    let rows = traces(trace_request(
        vec![
            root, chat, tool, mcp_client, mcp_list, traceloop, workflow, wire,
        ],
        "agents",
    ));
    let points: Vec<(Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|r| {
            (
                point(r),
                r.str_field("gen_ai.tool.name").or(r.str_field("agent.id")),
            )
        })
        .collect();
    assert_eq!(
        points,
        vec![
            (Some("identity"), None),
            (Some("agent"), Some("order-assistant")),
            (Some("tool"), None),
            (Some("tool"), Some("lookup_order")),
            (Some("tool"), Some("refund_order")),
            (None, None),
            (Some("tool"), Some("lookup_order")),
            (None, None),
            (Some("permission"), Some("x")),
        ]
    );
    // The root span's user is an identity row just before the agent's.
    assert_eq!(rows[0].str_field("user_id"), Some("alice"));
    assert_eq!(rows[0].ts_unix_nanos, rows[1].ts_unix_nanos);
    for row in rows.iter().filter(|r| point(r).is_some()) {
        assert_eq!(row.target, ringtrail::audit::TARGET);
        assert_eq!(row.str_field("otel.scope.name"), Some("agents"));
    }
    assert_eq!(
        rows[5].target, "agents",
        "no point: the scope stays the target"
    );
}

#[test]
fn a_log_record_with_the_wire_contract_is_its_point() {
    let record = LogRecord {
        body: Some(AnyValue {
            value: Some(s("audit identity")),
        }),
        attributes: vec![kv("audit.point", s("identity")), kv("user_id", s("bob"))],
        ..LogRecord::default()
    };
    let rows = logs(log_request(vec![record], "ringtrail::audit"), 1);
    assert_eq!(point(&rows[0]), Some("identity"));
    assert_eq!(rows[0].target, ringtrail::audit::TARGET);
    assert!(
        rows[0].field("otel.scope.name").is_none(),
        "the scope was the target already"
    );
}
