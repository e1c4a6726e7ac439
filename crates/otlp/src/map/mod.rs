//! OTLP to rows: every log record and every span (and each of its
//! events) becomes one row of `ringtrail.logs`. `docs/otlp.md` has the
//! whole table; in short:
//!
//! | row | log record | span | span event |
//! |---|---|---|---|
//! | `ts` | `time_unix_nano`, else `observed_time_unix_nano`, else the time received | start | its time |
//! | `level` | `severity_number` (1–24; otherwise 9, INFO) | 17 (ERROR) when its status is error, else 9 | 17 for an `exception` event, else 9 |
//! | `message` | the body: a string as itself, anything else as JSON | the name | the event's name |
//! | `target` | the scope's name (`otlp` when it has none) | the same | the same |
//! | `span_name` | — | the name | the span's name |
//! | `trace_id` | lowercase hex of the trace id | the same | the same |
//! | `user_id` | attribute `user_id`, else `user.id` | the same | the same |
//! | `session_id` | attribute `session_id`, else `session.id`, `gen_ai.conversation.id`, `mcp.session.id` | the same | the same |
//! | `task_id`, `context_id`, `client_id` | the attribute of that name | the same | the same |
//! | `fields` | the attributes, typed; `span_id`; `service.name` of the resource; `severity_text` when not the level's | the attributes; `span_id`, `parent_span_id`, `duration_ns`, `span.kind`, `status`, `status.message` | the event's attributes; `span_id` |
//!
//! Then [`audit`] makes a row one of the five audit points where the
//! GenAI, MCP or OpenLLMetry conventions say so.

pub mod audit;
pub mod value;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span};
use ringtrail::audit::contract::field;
use ringtrail::audit::Point;
use ringtrail::row::{CONTEXT_KEYS, LEVEL_ERROR, LEVEL_INFO};

use value::{hex_id, into_owned, owned, Name, Owned, OwnedRow};

/// The target of a row whose scope has no name.
pub const DEFAULT_TARGET: &str = "otlp";

/// The field that keeps a row's span id (16 hex digits); `ringtrail
/// export --format otlp` writes it back as `spanId`.
pub const SPAN_ID: &str = "span_id";

/// Context columns filled from OpenTelemetry's names, besides the
/// columns' own: (column index in `CONTEXT_KEYS`, attribute names in
/// order of preference).
const CONTEXT_ALIASES: &[(usize, &[&str])] = &[
    (1, &["user.id"]),
    (
        2,
        &["session.id", "gen_ai.conversation.id", "mcp.session.id"],
    ),
];

/// The rows of a logs request, in request order. The request is taken
/// apart: its strings move into the rows.
pub fn logs(request: ExportLogsServiceRequest, received_unix_nanos: i64) -> Vec<OwnedRow> {
    let mut rows = Vec::new();
    for resource_logs in request.resource_logs {
        let service = service_name(resource_logs.resource.as_ref());
        for scope_logs in resource_logs.scope_logs {
            let target = target(scope_logs.scope.as_ref());
            rows.reserve(scope_logs.log_records.len());
            for record in scope_logs.log_records {
                let mut row = log_row(record, received_unix_nanos);
                row.target = target.clone();
                finish(&mut row, service.as_deref(), None);
                push_point(&mut rows, row, None, false);
            }
        }
    }
    rows
}

/// The rows of a traces request: each span, then its events. The
/// request is taken apart: its strings move into the rows.
pub fn traces(request: ExportTraceServiceRequest) -> Vec<OwnedRow> {
    let mut rows = Vec::new();
    for resource_spans in request.resource_spans {
        let service = service_name(resource_spans.resource.as_ref());
        for scope_spans in resource_spans.scope_spans {
            let target = target(scope_spans.scope.as_ref());
            for mut span in scope_spans.spans {
                let events = std::mem::take(&mut span.events);
                let attributes = std::mem::take(&mut span.attributes);
                let mut row = span_row(&span, attributes);
                row.target = target.clone();
                finish(&mut row, service.as_deref(), None);
                let root = span.parent_span_id.iter().all(|b| *b == 0);
                push_point(&mut rows, row, Some(&span.name), root);
                for event in events {
                    let mut row = event_row(&span, event);
                    row.target = target.clone();
                    finish(&mut row, service.as_deref(), Some(&span.name));
                    push_point(&mut rows, row, None, false);
                }
            }
        }
    }
    rows
}

/// Classifies `row` ([`audit::classify`]) and pushes it; a root span
/// that is an agent point and names its user first gets an identity row
/// of its own, at the same time, just before it.
fn push_point(rows: &mut Vec<OwnedRow>, mut row: OwnedRow, span_name: Option<&str>, root: bool) {
    if let Some((point, add)) = audit::classify(&row, span_name) {
        audit::mark(&mut row, point, add);
        if point == Point::Agent && root {
            let user = row.context[1].clone();
            if let Some(user) = user.or_else(|| row.str_field(field::USER_ID).map(str::to_owned)) {
                let mut identity = OwnedRow {
                    ts_unix_nanos: row.ts_unix_nanos,
                    level: row.level,
                    target: row.target.clone(),
                    message: format!("identity of {}", row.message),
                    span_name: row.span_name.clone(),
                    context: row.context.clone(),
                    fields: Vec::new(),
                };
                for name in [SPAN_ID, audit::SCOPE_FIELD, "service.name"] {
                    if let Some(v) = row.field(name) {
                        identity.push(name, v.clone());
                    }
                }
                identity.push(field::USER_ID, Owned::Str(user));
                audit::mark(&mut identity, Point::Identity, Vec::new());
                rows.push(identity);
            }
        }
    }
    rows.push(row);
}

fn service_name(resource: Option<&Resource>) -> Option<String> {
    resource?
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .and_then(owned)
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn target(scope: Option<&InstrumentationScope>) -> String {
    match scope.map(|s| s.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => DEFAULT_TARGET.to_owned(),
    }
}

/// Moves `attributes` into the row's fields, room made for `more`.
fn attributes(row: &mut OwnedRow, attributes: Vec<KeyValue>, more: usize) {
    row.fields.reserve(attributes.len() + more);
    for kv in attributes {
        if let Some(value) = kv.value.and_then(into_owned) {
            row.fields.push((Name::Owned(kv.key), value));
        }
    }
}

/// Nanoseconds as `i64`, saturating (a `fixed64` past 2262).
fn nanos(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn log_row(record: LogRecord, received: i64) -> OwnedRow {
    let ts = match (record.time_unix_nano, record.observed_time_unix_nano) {
        (0, 0) => received,
        (0, observed) => nanos(observed),
        (time, _) => nanos(time),
    };
    let level = match record.severity_number {
        n @ 1..=24 => n as i16,
        _ => LEVEL_INFO,
    };
    let mut row = OwnedRow {
        ts_unix_nanos: ts,
        level,
        message: value::body_text(record.body),
        ..OwnedRow::default()
    };
    row.context[0] = hex_id(&record.trace_id);
    // span_id, service.name, and two more.
    attributes(&mut row, record.attributes, 4);
    if let Some(id) = hex_id(&record.span_id) {
        row.push(SPAN_ID, Owned::Str(id));
    }
    let text = record.severity_text;
    if !text.is_empty() && !ringtrail::level::name(level).eq_ignore_ascii_case(&text) {
        row.push("severity_text", Owned::Str(text));
    }
    if !record.event_name.is_empty() {
        row.push("event.name", Owned::Str(record.event_name));
    }
    row
}

fn span_row(s: &Span, attrs: Vec<KeyValue>) -> OwnedRow {
    let error = s.status.as_ref().map(|st| st.code) == Some(status::StatusCode::Error as i32);
    let mut row = OwnedRow {
        ts_unix_nanos: nanos(s.start_time_unix_nano),
        level: if error { LEVEL_ERROR } else { LEVEL_INFO },
        message: s.name.clone(),
        span_name: Some(s.name.clone()),
        ..OwnedRow::default()
    };
    row.context[0] = hex_id(&s.trace_id);
    // span_id, parent_span_id, duration, kind, status, its message,
    // service.name.
    attributes(&mut row, attrs, 7);
    let mut put = |name: &'static str, value: Owned| row.push(name, value);
    if let Some(id) = hex_id(&s.span_id) {
        put(SPAN_ID, Owned::Str(id));
    }
    if let Some(id) = hex_id(&s.parent_span_id) {
        put("parent_span_id", Owned::Str(id));
    }
    let duration = s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano);
    put(field::DURATION_NS, Owned::Int(nanos(duration)));
    let kind = match span::SpanKind::try_from(s.kind) {
        Ok(span::SpanKind::Internal) => "internal",
        Ok(span::SpanKind::Server) => "server",
        Ok(span::SpanKind::Client) => "client",
        Ok(span::SpanKind::Producer) => "producer",
        Ok(span::SpanKind::Consumer) => "consumer",
        _ => "unspecified",
    };
    put("span.kind", Owned::Str(kind.to_owned()));
    if let Some(st) = &s.status {
        let code = match status::StatusCode::try_from(st.code) {
            Ok(status::StatusCode::Ok) => "ok",
            Ok(status::StatusCode::Error) => "error",
            _ => "unset",
        };
        // A span's `status` is OpenTelemetry's; a wire-contract tool point
        // that carries its own `status` attribute keeps that one.
        if row.field(field::STATUS).is_none() {
            row.push(field::STATUS, Owned::Str(code.to_owned()));
        }
        if !st.message.is_empty() {
            row.push("status.message", Owned::Str(st.message.clone()));
        }
    }
    row
}

fn event_row(s: &Span, event: span::Event) -> OwnedRow {
    let mut row = OwnedRow {
        ts_unix_nanos: nanos(event.time_unix_nano),
        level: if event.name == "exception" {
            LEVEL_ERROR
        } else {
            LEVEL_INFO
        },
        message: event.name,
        span_name: Some(s.name.clone()),
        ..OwnedRow::default()
    };
    row.context[0] = hex_id(&s.trace_id);
    attributes(&mut row, event.attributes, 2);
    if let Some(id) = hex_id(&s.span_id) {
        row.push(SPAN_ID, Owned::Str(id));
    }
    row
}

/// Fills the context columns from OpenTelemetry's names and keeps the
/// resource's `service.name`.
fn finish(row: &mut OwnedRow, service: Option<&str>, _span: Option<&str>) {
    for &(column, names) in CONTEXT_ALIASES {
        let own = row.field(CONTEXT_KEYS[column]).is_some();
        if own || row.context[column].is_some() {
            continue;
        }
        let found = names.iter().find_map(|name| {
            let at = row.fields.iter().position(|(n, _)| n == name)?;
            let text = match &row.fields[at].1 {
                Owned::Str(s) => s.clone(),
                Owned::Int(n) => n.to_string(),
                _ => return None,
            };
            Some((at, text))
        });
        if let Some((at, text)) = found {
            // `user.id` and `session.id` are the column; the others stay
            // fields too.
            if matches!(&*row.fields[at].0, "user.id" | "session.id") {
                row.fields.remove(at);
            }
            row.context[column] = Some(text);
        }
    }
    if let Some(service) = service {
        row.push("service.name", Owned::Str(service.to_owned()));
    }
}
