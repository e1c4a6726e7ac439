//! [`Format::Native`](super::Format::Native): ringtrail's own flat JSON,
//! one key per column of `ringtrail.logs`, for `jq` users.
//!
//! Every key is always there, `null` when the column is NULL, in table
//! order, with two names added for reading: `level_name` beside `level`,
//! and `point` beside `kind`.
//!
//! | key | JSON | from |
//! |---|---|---|
//! | `ts` | string | RFC 3339 UTC, microseconds (the column's precision) |
//! | `id` | string | the row id, hyphenated UUID text |
//! | `level` | integer | OpenTelemetry severity number (9 is INFO) |
//! | `level_name` | string or null | `TRACE` … `FATAL`; null outside 1..=24 |
//! | `target`, `message` | string | |
//! | `fields` | object | the `jsonb` column's text (a repeated name is repeated) |
//! | `trace_id`, `user_id`, `session_id`, `task_id`, `context_id`, `client_id` | string or null | context, cut to 255 bytes as stored |
//! | `span_name`, `file` | string or null | |
//! | `line` | integer or null | clamped to `i32::MAX` as stored |
//! | `truncated` | boolean | also true when a context id was cut |
//! | `kind` | integer or null | the audit point's number |
//! | `point` | string or null | its name (`identity` … `result`) |
//! | `redacted` | integer | clamped to `i16::MAX` as stored |
//! | `seq` | integer | the event's sequence number on its thread (0: none), clamped to `i64::MAX` as stored |
//!
//! The values are the ones the `COPY` encoder stores, so a row read back
//! from the table renders the same.

use crate::encode::json::write_fields;
use crate::row::{Row, CONTEXT_KEYS};
use crate::text::uuid_text;
use crate::time::rfc3339;

use super::audit;
use super::line::Line;
use super::pick::cap_context;
use crate::level;

/// Appends `row` as one native line (with its newline) to `out`.
pub(super) fn render(row: &Row<'_>, out: &mut Vec<u8>) {
    let mut line = Line::new(out);
    line.open();
    line.str("ts", &rfc3339(row.ts_unix_nanos));
    line.str("id", &uuid_text(&row.id));
    line.int("level", row.level.into());
    match level::upper(row.level) {
        Some(name) => line.str("level_name", name),
        None => line.null("level_name"),
    }
    line.str("target", row.target);
    line.str("message", row.message);
    line.key("fields");
    write_fields(line.buf(), row.fields);
    let mut truncated = row.truncated;
    for (key, id) in CONTEXT_KEYS.iter().zip(row.context) {
        match id {
            Some(id) => {
                let kept = cap_context(id);
                truncated |= kept.len() < id.len();
                line.str(key, kept);
            }
            None => line.null(key),
        }
    }
    match row.span_name {
        Some(s) => line.str("span_name", s),
        None => line.null("span_name"),
    }
    match row.file {
        Some(s) => line.str("file", s),
        None => line.null("file"),
    }
    match row.line {
        Some(n) => line.int("line", i32::try_from(n).unwrap_or(i32::MAX).into()),
        None => line.null("line"),
    }
    line.bool("truncated", truncated);
    match row.kind {
        Some(kind) => line.int("kind", kind.into()),
        None => line.null("kind"),
    }
    match audit::point(row) {
        Some(p) => line.str("point", p.as_str()),
        None => line.null("point"),
    }
    line.int(
        "redacted",
        i16::try_from(row.redacted).unwrap_or(i16::MAX).into(),
    );
    line.int("seq", i64::try_from(row.seq).unwrap_or(i64::MAX));
    line.close();
    line.end_line();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Field, Value};
    use serde_json::json;

    #[test]
    fn every_column_in_order() {
        let fields = [
            Field {
                name: "n",
                value: Value::F64(f64::INFINITY),
            },
            Field {
                name: "n",
                value: Value::Str("again"),
            },
        ];
        let long = "x".repeat(300);
        let mut row = Row {
            ts_unix_nanos: 1_764_466_647_123_456_789,
            id: [0xab; 16],
            level: 13,
            target: "app",
            message: "m\0",
            fields: &fields,
            span_name: Some("req"),
            file: Some("a.rs"),
            line: Some(u32::MAX),
            kind: Some(4),
            redacted: 70_000,
            seq: u64::MAX,
            ..Row::default()
        };
        row.context[0] = Some("t-1");
        row.context[4] = Some(&long);
        let mut out = Vec::new();
        render(&row, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.contains(r#""fields":{"n":"Infinity","n":"again"}"#),
            "{text}"
        );
        let j: serde_json::Value = serde_json::from_str(text).unwrap();
        let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "ts",
            "id",
            "level",
            "level_name",
            "target",
            "message",
            "fields",
        ];
        want.extend(CONTEXT_KEYS);
        want.extend([
            "span_name",
            "file",
            "line",
            "truncated",
            "kind",
            "point",
            "redacted",
            "seq",
        ]);
        let mut sorted = want.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "serde_json sorts keys; all are there");
        let order: Vec<usize> = want
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "table order");
        assert_eq!(j["ts"], "2025-11-30T01:37:27.123456Z");
        assert_eq!(j["id"], "abababab-abab-abab-abab-abababababab");
        assert_eq!(j["level"], 13);
        assert_eq!(j["level_name"], "WARN");
        assert_eq!(j["message"], "m\u{FFFD}");
        assert_eq!(j["trace_id"], "t-1");
        assert_eq!(j["user_id"], json!(null));
        assert_eq!(j["context_id"].as_str().unwrap().len(), 255);
        assert_eq!(j["truncated"], true);
        assert_eq!(j["line"], i32::MAX);
        assert_eq!(j["kind"], 4);
        assert_eq!(j["point"], "tool");
        assert_eq!(j["redacted"], i16::MAX);
        assert_eq!(j["seq"], i64::MAX);
    }

    #[test]
    fn nulls_for_a_bare_row() {
        let mut out = Vec::new();
        render(
            &Row {
                level: 0,
                kind: Some(77),
                ..Row::default()
            },
            &mut out,
        );
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["level_name"], json!(null));
        assert_eq!(j["fields"], json!({}));
        assert_eq!(j["line"], json!(null));
        assert_eq!(j["kind"], 77);
        assert_eq!(j["point"], json!(null));
        assert_eq!(j["truncated"], false);
    }
}
