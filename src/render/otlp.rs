//! [`Format::Otlp`](super::Format::Otlp): each row as one OTLP/JSON
//! `ExportLogsServiceRequest`, the file format of the OpenTelemetry
//! Collector's `otlpjsonfile` receiver (and `file` exporter).
//!
//! ```text
//! {"resourceLogs":[{"resource":{"attributes":[service.name, service.version]},
//!   "scopeLogs":[{"scope":{"name":"ringtrail","version":"0.1.0"},
//!     "logRecords":[{"timeUnixNano":"…","observedTimeUnixNano":"…",
//!       "severityNumber":9,"severityText":"INFO","body":{"stringValue":"…"},
//!       "attributes":[…],"traceId":"…"}]}]}]}
//! ```
//!
//! Proto3 JSON rules: 64-bit integers (`timeUnixNano`, `intValue`) are
//! strings; field names are lowerCamelCase; ids are hex, not base64.
//!
//! - `timeUnixNano` is the event time; `observedTimeUnixNano` the same
//!   (ringtrail has no separate observation time). A time before 1970,
//!   which `fixed64` cannot hold, is written as `"0"` (unknown).
//! - `severityNumber` is the `level` column when it is 1..=24, with its
//!   short name (`INFO`, `WARN2`, …) as `severityText`; otherwise 0
//!   (unspecified) and no text.
//! - `body` is the message as a `stringValue`.
//! - `traceId` is the trace id, lower-cased, when it is a valid W3C id (32
//!   hex digits, not all zero); any other trace id is the attribute
//!   `trace_id`. `spanId` is the field `span_id` when it is a valid W3C
//!   span id (16 hex digits, not all zero), as rows ingested from
//!   OpenTelemetry (`ringtrail serve`) keep it; otherwise that field is an
//!   attribute like any other.
//! - `attributes`, with unique keys, the first kept: `target`,
//!   `code.file.path`, `code.line.number`, `log.record.uid` (the row id),
//!   `user.id`, `session.id`, and `task_id`, `context_id`, `client_id` as
//!   named in the table; `span_name`; `ringtrail.truncated` and
//!   `ringtrail.redacted` when set; then every field under its own name.
//!
//! Values are `AnyValue`s: a string `{"stringValue":"…"}`, a boolean
//! `{"boolValue":true}`, an integer in `i64` `{"intValue":"-3"}`, a float
//! `{"doubleValue":2.5}` (NaN and the infinities as proto3 JSON's
//! `"NaN"`, `"Infinity"`, `"-Infinity"`). An integer beyond `i64` (a large
//! `u64`, `u128`, `i128`) is a `stringValue` of its digits, exact, rather
//! than a rounded double. An array or a map ([`Value::Json`], read back
//! from a `jsonb` array or object) is an `arrayValue` or a `kvlistValue`.

use crate::encode::json::{write_str, write_value};
use crate::row::{Row, Value, CONTEXT_MAX_LEN};
use crate::text::uuid_text;

use super::line::Line;
use super::pick::Pick;
use super::{Scratch, Service};
use crate::level;

/// The instrumentation scope every record is under.
pub(super) const SCOPE_NAME: &str = "ringtrail";

/// Attribute keys of the context ids, indexed like
/// [`CONTEXT_KEYS`](crate::row::CONTEXT_KEYS): OpenTelemetry's names where
/// there are some (`user.id`, `session.id`), the table's otherwise. The
/// trace id is only an attribute when it is not a valid `traceId`.
const CONTEXT_ATTRIBUTES: [&str; 6] = [
    "trace_id",
    "user.id",
    "session.id",
    "task_id",
    "context_id",
    "client_id",
];

/// True for a valid W3C trace id: 32 hex digits, not all zero.
pub(super) fn is_trace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0')
}

/// The field a row ingested from OpenTelemetry keeps its span id in
/// (16 hex digits), written back as the record's `spanId`.
pub(super) const SPAN_ID_FIELD: &str = "span_id";

/// True for a valid W3C span id: 16 hex digits, not all zero.
pub(super) fn is_span_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0')
}

/// Writes one `AnyValue` object for `v`.
fn any_value(out: &mut Vec<u8>, v: &Value<'_>) {
    let int = |n: i64, out: &mut Vec<u8>| {
        out.extend_from_slice(b"{\"intValue\":\"");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\"}");
    };
    let digits = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"{\"stringValue\":\"");
        write_value(out, v);
        out.extend_from_slice(b"\"}");
    };
    match *v {
        Value::Str(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            write_str(out, s);
            out.push(b'}');
        }
        Value::Bool(b) => out.extend_from_slice(if b {
            b"{\"boolValue\":true}"
        } else {
            b"{\"boolValue\":false}"
        }),
        Value::I64(n) => int(n, out),
        Value::U64(n) => match i64::try_from(n) {
            Ok(n) => int(n, out),
            Err(_) => digits(out),
        },
        Value::I128(n) => match i64::try_from(n) {
            Ok(n) => int(n, out),
            Err(_) => digits(out),
        },
        Value::U128(n) => match i64::try_from(n) {
            Ok(n) => int(n, out),
            Err(_) => digits(out),
        },
        Value::Json(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(json) => json_any_value(out, &json),
            // Only `Ingest` makes one, always valid JSON; were it not, the
            // text is still the value.
            Err(_) => {
                out.extend_from_slice(b"{\"stringValue\":");
                write_str(out, text);
                out.push(b'}');
            }
        },
        Value::F64(_) => {
            // write_value: shortest round-trip number, or "NaN",
            // "Infinity", "-Infinity", proto3 JSON's spellings.
            out.extend_from_slice(b"{\"doubleValue\":");
            write_value(out, v);
            out.push(b'}');
        }
    }
}

/// Writes the `AnyValue` of a JSON value read back from a
/// [`Value::Json`]: an array is an `arrayValue`, an object a
/// `kvlistValue`, an integer in `i64` an `intValue`, any other number a
/// `doubleValue`, `null` the empty `AnyValue`.
fn json_any_value(out: &mut Vec<u8>, json: &serde_json::Value) {
    use serde_json::Value as Json;
    match json {
        Json::Null => out.extend_from_slice(b"{}"),
        Json::Bool(b) => any_value(out, &Value::Bool(*b)),
        Json::String(s) => any_value(out, &Value::Str(s)),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => any_value(out, &Value::I64(i)),
            (None, Some(u)) => any_value(out, &Value::U64(u)),
            _ => any_value(out, &Value::F64(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::Array(items) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_any_value(out, item);
            }
            out.extend_from_slice(b"]}}");
        }
        Json::Object(members) => {
            out.extend_from_slice(b"{\"kvlistValue\":{\"values\":[");
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"key\":");
                write_str(out, key);
                out.extend_from_slice(b",\"value\":");
                json_any_value(out, value);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}}");
        }
    }
}

/// Appends one attribute `{"key":…,"value":{…}}` unless the key was
/// written already in this list.
fn attribute(line: &mut Line<'_>, s: &mut Scratch, key: &str, v: &Value<'_>) {
    if line.try_key(&mut s.keys, b"{\"key\":", false, |o| write_str(o, key)) {
        let out = line.buf();
        out.extend_from_slice(b",\"value\":");
        any_value(out, v);
        out.push(b'}');
    }
}

/// Appends `row` as one OTLP/JSON line (with its newline) to `out`.
pub(super) fn render(s: &mut Scratch, service: &Service, row: &Row<'_>, out: &mut Vec<u8>) {
    let mut used = std::mem::take(&mut s.used);
    let mut pick = Pick::new(row, &mut used);
    let trace = pick.context(0);
    let trace_id = trace.filter(|t| is_trace_id(t));
    // A row ingested from OpenTelemetry keeps its span id as a field.
    let span_id = pick.peek(SPAN_ID_FIELD).and_then(|(at, v)| {
        super::pick::as_str(v)
            .filter(|id| is_span_id(id))
            .map(|id| (at, id))
    });
    if let Some((at, _)) = span_id {
        pick.mark(at);
    }
    let mut truncated = row.truncated;
    for id in row.context.iter().flatten() {
        truncated |= id.len() > CONTEXT_MAX_LEN;
    }

    let mut line = Line::new(out);
    line.open();
    line.array("resourceLogs");
    line.open();
    line.object("resource");
    line.array("attributes");
    s.keys.clear();
    attribute(
        &mut line,
        s,
        "service.name",
        &Value::Str(service.name_or_default()),
    );
    if let Some(version) = service.version() {
        attribute(&mut line, s, "service.version", &Value::Str(version));
    }
    line.close_array();
    line.close();
    line.array("scopeLogs");
    line.open();
    line.object("scope");
    line.str("name", SCOPE_NAME);
    line.str("version", env!("CARGO_PKG_VERSION"));
    line.close();
    line.array("logRecords");
    line.open();

    let mut nanos = itoa::Buffer::new();
    let nanos = nanos.format(row.ts_unix_nanos.max(0));
    line.str("timeUnixNano", nanos);
    line.str("observedTimeUnixNano", nanos);
    match level::short(row.level) {
        Some(text) => {
            line.int("severityNumber", row.level.into());
            line.str("severityText", text);
        }
        None => line.int("severityNumber", 0),
    }
    line.key("body");
    any_value(line.buf(), &Value::Str(row.message));

    line.array("attributes");
    s.keys.clear();
    if !row.target.is_empty() {
        attribute(&mut line, s, "target", &Value::Str(row.target));
    }
    if let Some(file) = row.file {
        attribute(&mut line, s, "code.file.path", &Value::Str(file));
    }
    if let Some(n) = row.line {
        attribute(&mut line, s, "code.line.number", &Value::U64(n.into()));
    }
    attribute(
        &mut line,
        s,
        "log.record.uid",
        &Value::Str(&uuid_text(&row.id)),
    );
    if let (Some(t), None) = (trace, trace_id) {
        attribute(&mut line, s, CONTEXT_ATTRIBUTES[0], &Value::Str(t));
    }
    for (i, key) in CONTEXT_ATTRIBUTES.iter().enumerate().skip(1) {
        if let Some(id) = pick.context(i) {
            attribute(&mut line, s, key, &Value::Str(id));
        }
    }
    if let Some(span) = row.span_name {
        attribute(&mut line, s, "span_name", &Value::Str(span));
    }
    if truncated {
        attribute(&mut line, s, "ringtrail.truncated", &Value::Bool(true));
    }
    if row.redacted > 0 {
        attribute(
            &mut line,
            s,
            "ringtrail.redacted",
            &Value::U64(row.redacted.into()),
        );
    }
    for (at, f) in row.fields.iter().enumerate() {
        if !pick.is_used(at) {
            attribute(&mut line, s, f.name, &f.value);
        }
    }
    line.close_array();
    if let Some(t) = trace_id {
        line.key("traceId");
        let out = line.buf();
        out.push(b'"');
        out.extend(t.bytes().map(|b| b.to_ascii_lowercase()));
        out.push(b'"');
    }
    if let Some((_, id)) = span_id {
        line.key("spanId");
        let out = line.buf();
        out.push(b'"');
        out.extend(id.bytes().map(|b| b.to_ascii_lowercase()));
        out.push(b'"');
    }

    line.close(); // the log record
    line.close_array();
    line.close(); // the scope logs
    line.close_array();
    line.close(); // the resource logs
    line.close_array();
    line.close();
    line.end_line();
    s.used = used;
}

#[cfg(test)]
mod tests {
    use super::super::{Format, Renderer};
    use super::*;
    use crate::row::Field;
    use serde_json::{json, Value as J};

    fn otlp(row: &Row<'_>) -> J {
        let mut out = Vec::new();
        Renderer::new(Format::Otlp).render(row, &mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&out).unwrap()
    }

    fn record(j: &J) -> &J {
        &j["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    }

    fn attrs(j: &J) -> Vec<(String, J)> {
        record(j)["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
            .collect()
    }

    #[test]
    fn request_shape() {
        let mut row = Row {
            ts_unix_nanos: 1_764_466_647_123_456_789,
            level: 13,
            message: "slow",
            target: "app",
            ..Row::default()
        };
        row.context[0] = Some("4BF92F3577B34DA6A3CE929D0E0E4736");
        let j = otlp(&row);
        let rl = &j["resourceLogs"][0];
        assert_eq!(
            rl["resource"]["attributes"],
            json!([{"key": "service.name", "value": {"stringValue": "unknown_service"}}])
        );
        assert_eq!(rl["scopeLogs"][0]["scope"]["name"], "ringtrail");
        let r = record(&j);
        assert_eq!(r["timeUnixNano"], "1764466647123456789");
        assert_eq!(r["observedTimeUnixNano"], "1764466647123456789");
        assert_eq!(r["severityNumber"], 13);
        assert_eq!(r["severityText"], "WARN");
        assert_eq!(r["body"], json!({"stringValue": "slow"}));
        assert_eq!(r["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(r.get("spanId").is_none());
        let keys: Vec<String> = attrs(&j).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["target", "log.record.uid"]);
    }

    #[test]
    fn any_values() {
        let fields = [
            Field {
                name: "s",
                value: Value::Str("x\0"),
            },
            Field {
                name: "b",
                value: Value::Bool(false),
            },
            Field {
                name: "i",
                value: Value::I64(i64::MIN),
            },
            Field {
                name: "u",
                value: Value::U64(u64::MAX),
            },
            Field {
                name: "small",
                value: Value::U128(7),
            },
            Field {
                name: "big",
                value: Value::I128(i128::MIN),
            },
            Field {
                name: "f",
                value: Value::F64(0.5),
            },
            Field {
                name: "nan",
                value: Value::F64(f64::NAN),
            },
            Field {
                name: "inf",
                value: Value::F64(f64::INFINITY),
            },
            Field {
                name: "ninf",
                value: Value::F64(f64::NEG_INFINITY),
            },
            Field {
                name: "s",
                value: Value::Str("repeat"),
            },
        ];
        let j = otlp(&Row {
            fields: &fields,
            line: Some(7),
            file: Some("a.rs"),
            ..Row::default()
        });
        let a = attrs(&j);
        let get = |k: &str| a.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("s"), json!({"stringValue": "x\u{FFFD}"}));
        assert_eq!(get("b"), json!({"boolValue": false}));
        assert_eq!(get("i"), json!({"intValue": "-9223372036854775808"}));
        assert_eq!(get("u"), json!({"stringValue": "18446744073709551615"}));
        assert_eq!(get("small"), json!({"intValue": "7"}));
        assert_eq!(
            get("big"),
            json!({"stringValue": "-170141183460469231731687303715884105728"})
        );
        assert_eq!(get("f"), json!({"doubleValue": 0.5}));
        assert_eq!(get("nan"), json!({"doubleValue": "NaN"}));
        assert_eq!(get("inf"), json!({"doubleValue": "Infinity"}));
        assert_eq!(get("ninf"), json!({"doubleValue": "-Infinity"}));
        assert_eq!(get("code.line.number"), json!({"intValue": "7"}));
        assert_eq!(get("code.file.path"), json!({"stringValue": "a.rs"}));
        assert_eq!(a.iter().filter(|(k, _)| k == "s").count(), 1, "unique keys");
    }

    #[test]
    fn invalid_trace_ids_are_attributes() {
        for bad in [
            "4bf92f35",
            "00000000000000000000000000000000",
            "4bf92f3577b34da6a3ce929d0e0e473g",
        ] {
            let mut row = Row::default();
            row.context[0] = Some(bad);
            row.context[1] = Some("u-1");
            row.context[5] = Some("c-1");
            let j = otlp(&row);
            assert!(record(&j).get("traceId").is_none(), "{bad}");
            let a = attrs(&j);
            assert!(a.contains(&("trace_id".into(), json!({"stringValue": bad}))));
            assert!(a.contains(&("user.id".into(), json!({"stringValue": "u-1"}))));
            assert!(a.contains(&("client_id".into(), json!({"stringValue": "c-1"}))));
        }
        assert!(is_trace_id("0af7651916cd43dd8448eb211c80319c"));
    }

    #[test]
    fn severity_and_time_edges() {
        let j = otlp(&Row {
            level: 0,
            ts_unix_nanos: -5,
            ..Row::default()
        });
        let r = record(&j);
        assert_eq!(r["severityNumber"], 0);
        assert!(r.get("severityText").is_none());
        assert_eq!(r["timeUnixNano"], "0");
        let j = otlp(&Row {
            level: 10,
            ..Row::default()
        });
        assert_eq!(record(&j)["severityText"], "INFO2");
    }

    #[test]
    fn service_and_flags() {
        let mut out = Vec::new();
        Renderer::new(Format::Otlp)
            .with_service_name("svc")
            .with_service_version("2")
            .render(
                &Row {
                    truncated: true,
                    redacted: 3,
                    span_name: Some("req"),
                    ..Row::default()
                },
                &mut out,
            );
        let j: J = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            j["resourceLogs"][0]["resource"]["attributes"],
            json!([
                {"key": "service.name", "value": {"stringValue": "svc"}},
                {"key": "service.version", "value": {"stringValue": "2"}},
            ])
        );
        let a = attrs(&j);
        assert!(a.contains(&("ringtrail.truncated".into(), json!({"boolValue": true}))));
        assert!(a.contains(&("ringtrail.redacted".into(), json!({"intValue": "3"}))));
        assert!(a.contains(&("span_name".into(), json!({"stringValue": "req"}))));
    }
}
