//! [`Format::Ecs`](super::Format::Ecs): Elastic Common Schema 9.x under the
//! ecs-logging rules.
//!
//! # Layout
//!
//! `@timestamp` (RFC 3339 UTC, microseconds) first, `log.level` (lower
//! case: `trace` … `fatal`, `unknown` outside OpenTelemetry's 1..=24)
//! second, `message` third (left out when the event has none), then
//! `ecs.version` ([`ECS_VERSION`]). Every other ECS field is also written
//! as a **top-level dotted key** (`"log.logger":"app::db"`), as
//! ecs-logging does for `trace.id` and `service.name`; Elasticsearch and
//! Filebeat's `expand_keys` read them as the nested fields. Only `labels`
//! is an object.
//!
//! | from the row | ECS field | ECS type |
//! |---|---|---|
//! | `target` | `log.logger` | keyword |
//! | `file`, `line` | `log.origin.file.name`, `log.origin.file.line` | keyword, long |
//! | `id` | `event.id` | keyword |
//! | `level` (the number) | `event.severity` | long |
//! | context `trace_id`, `user_id` | `trace.id`, `user.id` | keyword |
//! | the [renderer's](super::Renderer::with_service_name) service | `service.name`, `event.dataset`, `service.version` | keyword |
//! | audit point | `event.kind` (`event`), `event.category`, `event.type`, `event.action` (the point), `event.outcome` | keyword |
//!
//! Fields with an ECS home (see `MAPPED` in the source for the full
//! table): `error` and `error.message` → `error.message`; `error.type`,
//! `error.code`, `error.id`, `error.stack_trace`; `duration_ns` →
//! `event.duration` (long, ns); `reason` → `event.reason`; `policy.id`,
//! `policy.version` → `rule.id`, `rule.version`; `tenant.id` →
//! `organization.id`; `source.ip` (ip); `agent.id`, `agent.name` →
//! `gen_ai.agent.id`, `gen_ai.agent.name` (ECS's own `agent.*` is the
//! shipper, Filebeat or Elastic Agent, which sets it itself);
//! `gen_ai.provider.name` → `gen_ai.system` (its ECS equivalent); the
//! `gen_ai.*` fields ECS 9.4 defines, with their types (`gen_ai.usage.*`
//! tokens are `integer`, the request's sampling parameters `double`).
//!
//! Audit points:
//!
//! | point | `event.category` | `event.type` | `event.outcome` from |
//! |---|---|---|---|
//! | identity | `authentication` | `start` | `success` unless a field says otherwise |
//! | agent | `api` | `info` | — (`unknown`) |
//! | permission | `api` | `allowed` (allow, approved), `denied` (deny), else `info` | `decision` |
//! | tool | `api` | `access` | `status` (`ok` success, `error` failure) |
//! | result | `api` | `end` | `outcome` (`abandoned` is a failure) |
//!
//! # Types, and `labels` for the rest
//!
//! A value goes to its ECS field only when it has that field's type:
//! keyword as a JSON string (numbers and booleans as their text), long
//! as an integer in `i64`, integer in `i32`, double as a finite number, ip
//! as a valid IPv4/IPv6 address. A value that does not convert (an
//! `event.duration` of `"soon"`, `source.ip` `"localhost"`, a `NaN`
//! temperature), a second value for a field already written, and every
//! field ECS does not define go under **`labels`**, ECS's place for custom
//! keyword pairs. We chose `labels` over a namespaced object because
//! Elastic maps it for every index (no mapping to install) and every
//! shipper keeps it. As the ecs-logging spec says, label keys have `.`,
//! `*` and `\` replaced by `_` (`gen_ai.usage.cached_tokens` →
//! `gen_ai_usage_cached_tokens`; an empty or blank name gets a leading
//! `_`), and values are strings (`"42"`, `"true"`, `"NaN"`). Context ids
//! ECS has no field for (`session_id`, `task_id`, `context_id`,
//! `client_id`: `client.*` is the network peer, not an app id), the span
//! name (`span_name`), `truncated` (`"true"`, when set) and `redacted`
//! (the count, when not 0) are labels too. When two labels get one key,
//! the first is kept: Elasticsearch rejects a document with a repeated key.

use crate::audit::Point;
use crate::row::{Row, Value, CONTEXT_KEYS, CONTEXT_MAX_LEN};
use crate::text::uuid_text;
use crate::time::rfc3339;

use super::audit::{self, Verdict};
use super::line::{write_as_str, Line};
use super::pick::{as_f64, as_i32, as_i64, as_ip, as_str, Pick};
use super::{Scratch, Service};
use crate::audit::contract::{field, Decision, POINT_FIELD};
use crate::level;

/// The ECS version written as `ecs.version`: the one whose field
/// definitions (`ecs_flat.yml` 9.4.0) the types here follow.
pub const ECS_VERSION: &str = "9.4.0";

/// An ECS field type, as `ecs_flat.yml` names it, and so the JSON it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EcsType {
    /// `keyword`: a string.
    Keyword,
    /// `match_only_text`: a string.
    MatchOnlyText,
    /// `wildcard`: a string.
    Wildcard,
    /// `long`: an `i64`.
    Long,
    /// `integer`: an `i32`.
    Integer,
    /// `double`: a finite number.
    Double,
    /// `ip`: an IPv4 or IPv6 address string.
    Ip,
}

impl EcsType {
    /// The name `ecs_flat.yml` uses.
    #[cfg(test)]
    pub(super) fn name(self) -> &'static str {
        match self {
            EcsType::Keyword => "keyword",
            EcsType::MatchOnlyText => "match_only_text",
            EcsType::Wildcard => "wildcard",
            EcsType::Long => "long",
            EcsType::Integer => "integer",
            EcsType::Double => "double",
            EcsType::Ip => "ip",
        }
    }
}

use EcsType::{Double, Integer, Ip, Keyword, Long, MatchOnlyText, Wildcard};

/// Field name (as a row has it) → ECS field and its type. Several names
/// may share an ECS field; the first value written wins.
pub(super) const MAPPED: &[(&str, &str, EcsType)] = &[
    (field::TRACE_ID, "trace.id", Keyword),
    (field::USER_ID, "user.id", Keyword),
    ("user.id", "user.id", Keyword),
    ("user.name", "user.name", Keyword),
    ("error", "error.message", MatchOnlyText),
    ("error.message", "error.message", MatchOnlyText),
    (field::ERROR_TYPE, "error.type", Keyword),
    ("error.code", "error.code", Keyword),
    ("error.id", "error.id", Keyword),
    ("error.stack_trace", "error.stack_trace", Wildcard),
    (field::DURATION_NS, "event.duration", Long),
    (field::REASON, "event.reason", Keyword),
    (field::POLICY_ID, "rule.id", Keyword),
    (field::POLICY_VERSION, "rule.version", Keyword),
    (field::TENANT_ID, "organization.id", Keyword),
    (field::SOURCE_IP, "source.ip", Ip),
    (field::AGENT_ID, "gen_ai.agent.id", Keyword),
    (field::AGENT_NAME, "gen_ai.agent.name", Keyword),
    ("gen_ai.agent.id", "gen_ai.agent.id", Keyword),
    ("gen_ai.agent.name", "gen_ai.agent.name", Keyword),
    (
        "gen_ai.agent.description",
        "gen_ai.agent.description",
        Keyword,
    ),
    (field::PROVIDER_NAME, "gen_ai.system", Keyword),
    ("gen_ai.system", "gen_ai.system", Keyword),
    (field::OPERATION_NAME, "gen_ai.operation.name", Keyword),
    (field::REQUEST_MODEL, "gen_ai.request.model", Keyword),
    ("gen_ai.response.model", "gen_ai.response.model", Keyword),
    ("gen_ai.response.id", "gen_ai.response.id", Keyword),
    (field::TOOL_NAME, "gen_ai.tool.name", Keyword),
    (field::TOOL_CALL_ID, "gen_ai.tool.call.id", Keyword),
    ("gen_ai.tool.type", "gen_ai.tool.type", Keyword),
    ("gen_ai.output.type", "gen_ai.output.type", Keyword),
    (field::INPUT_TOKENS, "gen_ai.usage.input_tokens", Integer),
    (field::OUTPUT_TOKENS, "gen_ai.usage.output_tokens", Integer),
    (
        "gen_ai.request.max_tokens",
        "gen_ai.request.max_tokens",
        Integer,
    ),
    ("gen_ai.request.seed", "gen_ai.request.seed", Integer),
    (
        "gen_ai.request.choice.count",
        "gen_ai.request.choice.count",
        Integer,
    ),
    (
        "gen_ai.request.temperature",
        "gen_ai.request.temperature",
        Double,
    ),
    ("gen_ai.request.top_p", "gen_ai.request.top_p", Double),
    ("gen_ai.request.top_k", "gen_ai.request.top_k", Double),
    (
        "gen_ai.request.frequency_penalty",
        "gen_ai.request.frequency_penalty",
        Double,
    ),
    (
        "gen_ai.request.presence_penalty",
        "gen_ai.request.presence_penalty",
        Double,
    ),
];

/// The other ECS fields this renderer writes, with their ECS types
/// (`labels` is ECS's `object`).
#[cfg(test)]
pub(super) const WRITTEN: &[(&str, &str)] = &[
    ("@timestamp", "date"),
    ("log.level", "keyword"),
    ("message", "match_only_text"),
    ("ecs.version", "keyword"),
    ("log.logger", "keyword"),
    ("log.origin.file.name", "keyword"),
    ("log.origin.file.line", "long"),
    ("event.id", "keyword"),
    ("event.severity", "long"),
    ("event.kind", "keyword"),
    ("event.category", "keyword"),
    ("event.type", "keyword"),
    ("event.action", "keyword"),
    ("event.outcome", "keyword"),
    ("event.dataset", "keyword"),
    ("service.name", "keyword"),
    ("service.version", "keyword"),
    ("labels", "object"),
];

/// Which [`MAPPED`] entry a field named `name` goes to.
fn mapped(name: &str) -> Option<usize> {
    MAPPED.iter().position(|(from, _, _)| *from == name)
}

/// The first [`MAPPED`] entry with entry `i`'s ECS field: one bit per ECS
/// field in the set of those written.
fn slot(i: usize) -> u32 {
    let to = MAPPED[i].1;
    MAPPED.iter().position(|e| e.1 == to).unwrap_or(i) as u32
}

/// `event.category` and `event.type` of a point (the permission's type
/// depends on its decision).
fn category_and_type(point: Point, row: &Row<'_>) -> (&'static str, &'static str) {
    match point {
        Point::Identity => ("authentication", "start"),
        Point::Agent => ("api", "info"),
        Point::Permission => (
            "api",
            match audit::decision(row) {
                Some(Decision::Allow | Decision::Approved) => "allowed",
                Some(Decision::Deny) => "denied",
                _ => "info",
            },
        ),
        Point::Tool => ("api", "access"),
        Point::Result => ("api", "end"),
    }
}

/// Writes `v` after `key` when it converts to `ty`; false (nothing
/// written) when it does not.
fn typed(line: &mut Line<'_>, key: &str, ty: EcsType, v: Value<'_>) -> bool {
    match ty {
        Keyword | MatchOnlyText | Wildcard => {
            line.key(key);
            write_as_str(line.buf(), &v);
        }
        Long => match as_i64(v) {
            Some(n) => line.int(key, n),
            None => return false,
        },
        Integer => match as_i32(v) {
            Some(n) => line.int(key, n.into()),
            None => return false,
        },
        Double => match as_f64(v) {
            Some(f) => {
                line.key(key);
                line.buf()
                    .extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
            }
            None => return false,
        },
        Ip => match as_ip(v) {
            Some(ip) => line.str(key, ip),
            None => return false,
        },
    }
    true
}

/// A label: the key `name` sanitized, the value as a string. False when
/// the key was taken.
fn label(line: &mut Line<'_>, s: &mut Scratch, name: &str, v: &Value<'_>) -> bool {
    sanitize(name, &mut s.text);
    let key = s.text.as_str();
    if line.try_key(&mut s.keys, b"", true, |o| {
        crate::encode::json::write_str(o, key)
    }) {
        write_as_str(line.buf(), v);
        true
    } else {
        false
    }
}

/// `name` as a label key: `.`, `*` and `\` become `_`; an empty or
/// all-blank name gets a leading `_` (Elasticsearch refuses those).
pub(super) fn sanitize(name: &str, key: &mut String) {
    key.clear();
    if name.trim().is_empty() {
        key.push('_');
    }
    key.extend(name.chars().map(|c| match c {
        '.' | '*' | '\\' => '_',
        c => c,
    }));
}

/// Appends `row` as one ECS line (with its newline) to `out`.
pub(super) fn render(s: &mut Scratch, service: &Service, row: &Row<'_>, out: &mut Vec<u8>) {
    let mut used = std::mem::take(&mut s.used);
    let mut pick = Pick::new(row, &mut used);
    let mut line = Line::new(out);
    line.open();
    line.str("@timestamp", &rfc3339(row.ts_unix_nanos));
    line.str("log.level", level::lower(row.level).unwrap_or("unknown"));
    if !row.message.is_empty() {
        line.str("message", row.message);
    }
    line.str("ecs.version", ECS_VERSION);
    if !row.target.is_empty() {
        line.str("log.logger", row.target);
    }
    line.opt_str("log.origin.file.name", row.file);
    if let Some(n) = row.line {
        line.int("log.origin.file.line", n.into());
    }
    line.str("event.id", &uuid_text(&row.id));
    line.int("event.severity", row.level.into());
    if let Some(point) = audit::point(row) {
        let (category, kind) = category_and_type(point, row);
        line.str("event.kind", "event");
        line.array("event.category");
        line.str_item(category);
        line.close_array();
        line.array("event.type");
        line.str_item(kind);
        line.close_array();
        line.str("event.action", point.as_str());
        // The point's own field is `event.action` now, not a label.
        pick.take_with(POINT_FIELD, |v| {
            (as_str(v) == Some(point.as_str())).then_some(())
        });
        let outcome = match audit::verdict(row) {
            Verdict::Success(_) => "success",
            Verdict::Failure(_) => "failure",
            Verdict::Unknown if point == Point::Identity => "success",
            Verdict::Other(_) | Verdict::Unknown => "unknown",
        };
        line.str("event.outcome", outcome);
    }
    if let Some(name) = service.name() {
        line.str("service.name", name);
        line.str("event.dataset", name);
    }
    line.opt_str("service.version", service.version());

    // ECS fields, each written once: the context ids first (as the table
    // holds them), then the fields in call-site order.
    let mut written: u64 = 0;
    for ctx in [0, 1] {
        if let Some(id) = pick.context(ctx) {
            let i = mapped(CONTEXT_KEYS[ctx]).unwrap_or(0);
            line.str(MAPPED[i].1, id);
            written |= 1 << slot(i);
        }
    }
    for (at, f) in row.fields.iter().enumerate() {
        let Some(i) = mapped(f.name) else { continue };
        let bit = 1 << slot(i);
        if pick.is_used(at) || written & bit != 0 {
            continue;
        }
        let (_, to, ty) = MAPPED[i];
        if typed(&mut line, to, ty, f.value) {
            pick.mark(at);
            written |= bit;
        }
    }

    // Everything else: labels.
    let before = line.checkpoint();
    line.object("labels");
    s.keys.clear();
    let mut any = false;
    let mut truncated = row.truncated;
    for (ctx, id) in row.context.iter().enumerate().skip(2) {
        if let Some(id) = id {
            truncated |= id.len() > CONTEXT_MAX_LEN;
            let id = super::pick::cap_context(id);
            any |= label(&mut line, s, CONTEXT_KEYS[ctx], &Value::Str(id));
        }
    }
    for id in row.context.iter().take(2).flatten() {
        truncated |= id.len() > CONTEXT_MAX_LEN;
    }
    if let Some(span) = row.span_name {
        any |= label(&mut line, s, "span_name", &Value::Str(span));
    }
    if truncated {
        any |= label(&mut line, s, "truncated", &Value::Bool(true));
    }
    if row.redacted > 0 {
        any |= label(&mut line, s, "redacted", &Value::U64(row.redacted.into()));
    }
    for (at, f) in row.fields.iter().enumerate() {
        if !pick.is_used(at) {
            any |= label(&mut line, s, f.name, &f.value);
        }
    }
    line.close_or_rollback(before, any);
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

    fn ecs(row: &Row<'_>) -> (String, J) {
        let mut out = Vec::new();
        Renderer::new(Format::Ecs).render(row, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text}"
        );
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (text, json)
    }

    #[test]
    fn key_order_and_top_level_dotted_keys() {
        let row = Row {
            ts_unix_nanos: 1_764_466_647_123_456_789,
            message: "hello",
            target: "app::db",
            file: Some("src/db.rs"),
            line: Some(42),
            ..Row::default()
        };
        let (text, j) = ecs(&row);
        assert!(
            text.starts_with(
                r#"{"@timestamp":"2025-11-30T01:37:27.123456Z","log.level":"info","message":"hello","ecs.version":"9.4.0","#
            ),
            "{text}"
        );
        assert_eq!(j["log.logger"], "app::db");
        assert_eq!(j["log.origin.file.name"], "src/db.rs");
        assert_eq!(j["log.origin.file.line"], 42);
        assert_eq!(j["event.severity"], 9);
        assert!(j.get("labels").is_none(), "no empty labels object");
        assert!(j.get("log").is_none(), "dotted keys, not objects");
        assert!(
            j.get("event.kind").is_none(),
            "plain rows are not audit events"
        );
        // No message: ecs.version comes third.
        let (text, _) = ecs(&Row::default());
        assert!(text.starts_with(
            r#"{"@timestamp":"1970-01-01T00:00:00.000000Z","log.level":"info","ecs.version":"#
        ));
    }

    #[test]
    fn levels_are_lower_case() {
        for (level, name) in [
            (1, "trace"),
            (5, "debug"),
            (13, "warn"),
            (17, "error"),
            (21, "fatal"),
            (0, "unknown"),
        ] {
            let (_, j) = ecs(&Row {
                level,
                ..Row::default()
            });
            assert_eq!(j["log.level"], name);
        }
    }

    #[test]
    fn fields_take_their_ecs_types() {
        let fields = [
            Field {
                name: "error",
                value: Value::Str("boom"),
            },
            Field {
                name: "error.type",
                value: Value::Str("io"),
            },
            Field {
                name: "duration_ns",
                value: Value::U64(1_500),
            },
            Field {
                name: "gen_ai.usage.input_tokens",
                value: Value::Str("12"),
            },
            Field {
                name: "gen_ai.usage.output_tokens",
                value: Value::U64(u64::MAX),
            },
            Field {
                name: "gen_ai.request.temperature",
                value: Value::I64(1),
            },
            Field {
                name: "gen_ai.request.top_p",
                value: Value::F64(f64::NAN),
            },
            Field {
                name: "gen_ai.request.model",
                value: Value::I64(4),
            },
            Field {
                name: "source.ip",
                value: Value::Str("2001:db8::1"),
            },
            Field {
                name: "tenant.id",
                value: Value::Str("acme"),
            },
            Field {
                name: "agent.id",
                value: Value::Str("planner"),
            },
            Field {
                name: "gen_ai.provider.name",
                value: Value::Str("openai"),
            },
            Field {
                name: "policy.id",
                value: Value::Str("p-7"),
            },
        ];
        let (_, j) = ecs(&Row {
            fields: &fields,
            ..Row::default()
        });
        assert_eq!(j["error.message"], "boom");
        assert_eq!(j["error.type"], "io");
        assert_eq!(j["event.duration"], 1_500);
        assert_eq!(j["gen_ai.usage.input_tokens"], 12);
        assert_eq!(j["gen_ai.request.temperature"], 1.0);
        assert_eq!(j["gen_ai.request.model"], "4", "keyword: a string");
        assert_eq!(j["source.ip"], "2001:db8::1");
        assert_eq!(j["organization.id"], "acme");
        assert_eq!(j["gen_ai.agent.id"], "planner");
        assert!(j.get("agent.id").is_none(), "agent.* is the shipper's");
        assert_eq!(j["gen_ai.system"], "openai");
        assert_eq!(j["rule.id"], "p-7");
        // Out of range for `integer`, NaN for `double`: labels.
        assert_eq!(
            j["labels"],
            json!({
                "gen_ai_usage_output_tokens": "18446744073709551615",
                "gen_ai_request_top_p": "NaN",
            })
        );
    }

    #[test]
    fn values_that_do_not_convert_and_repeats_go_to_labels() {
        let fields = [
            Field {
                name: "duration_ns",
                value: Value::Str("soon"),
            },
            Field {
                name: "source.ip",
                value: Value::Str("localhost"),
            },
            Field {
                name: "error",
                value: Value::Str("first"),
            },
            Field {
                name: "error.message",
                value: Value::Str("second"),
            },
            Field {
                name: "a.b",
                value: Value::I64(1),
            },
            Field {
                name: "a_b",
                value: Value::I64(2),
            },
            Field {
                name: "x*y\\z",
                value: Value::Bool(false),
            },
            Field {
                name: "",
                value: Value::F64(0.5),
            },
        ];
        let mut row = Row {
            fields: &fields,
            span_name: Some("req"),
            redacted: 2,
            ..Row::default()
        };
        row.context[2] = Some("s-1");
        row.context[5] = Some("c-1");
        let (_, j) = ecs(&row);
        assert_eq!(j["error.message"], "first");
        assert_eq!(
            j["labels"],
            json!({
                "session_id": "s-1",
                "client_id": "c-1",
                "span_name": "req",
                "redacted": "2",
                "duration_ns": "soon",
                "source_ip": "localhost",
                "error_message": "second",
                "a_b": "1",
                "x_y_z": "false",
                "_": "0.5",
            })
        );
        assert!(j.get("event.duration").is_none());
        assert!(j.get("source.ip").is_none());
    }

    #[test]
    fn context_ids_and_service() {
        let long = "t".repeat(300);
        let mut row = Row::default();
        row.context[0] = Some(&long);
        row.context[1] = Some("u-1");
        let fields = [Field {
            name: "user_id",
            value: Value::Str("u-2"),
        }];
        row.fields = &fields;
        let mut out = Vec::new();
        Renderer::new(Format::Ecs)
            .with_service_name("checkout")
            .with_service_version("1.2.3")
            .render(&row, &mut out);
        let j: J = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["trace.id"].as_str().unwrap().len(), CONTEXT_MAX_LEN);
        assert_eq!(j["user.id"], "u-1", "the context wins");
        assert_eq!(j["labels"], json!({"truncated": "true", "user_id": "u-2"}));
        assert_eq!(j["service.name"], "checkout");
        assert_eq!(j["event.dataset"], "checkout");
        assert_eq!(j["service.version"], "1.2.3");
    }

    fn point_row(kind: i16, fields: &'static [Field<'static>]) -> J {
        ecs(&Row {
            kind: Some(kind),
            target: crate::audit::TARGET,
            fields,
            ..Row::default()
        })
        .1
    }

    #[test]
    fn audit_points_are_events() {
        let j = point_row(
            1,
            &[Field {
                name: "audit.point",
                value: Value::Str("identity"),
            }],
        );
        assert!(j.get("labels").is_none(), "audit.point is event.action");
        assert_eq!(j["event.kind"], "event");
        assert_eq!(j["event.category"], json!(["authentication"]));
        assert_eq!(j["event.type"], json!(["start"]));
        assert_eq!(j["event.action"], "identity");
        assert_eq!(j["event.outcome"], "success");

        let j = point_row(2, &[]);
        assert_eq!(j["event.category"], json!(["api"]));
        assert_eq!(j["event.outcome"], "unknown");

        for (decision, kind, outcome) in [
            ("allow", "allowed", "success"),
            ("approved", "allowed", "success"),
            ("deny", "denied", "failure"),
            ("needs_approval", "info", "unknown"),
        ] {
            let fields = Box::leak(Box::new([
                Field {
                    name: "decision",
                    value: Value::Str(decision),
                },
                Field {
                    name: "policy.id",
                    value: Value::Str("p"),
                },
            ]));
            let j = point_row(3, &fields[..]);
            assert_eq!(j["event.type"], json!([kind]), "{decision}");
            assert_eq!(j["event.outcome"], outcome, "{decision}");
            assert_eq!(j["event.action"], "permission");
            assert_eq!(j["labels"]["decision"], decision);
        }

        let j = point_row(
            4,
            &[
                Field {
                    name: "gen_ai.tool.name",
                    value: Value::Str("search"),
                },
                Field {
                    name: "status",
                    value: Value::Str("error"),
                },
                Field {
                    name: "duration_ns",
                    value: Value::I64(42),
                },
            ],
        );
        assert_eq!(j["event.type"], json!(["access"]));
        assert_eq!(j["event.outcome"], "failure");
        assert_eq!(j["event.duration"], 42);
        assert_eq!(j["gen_ai.tool.name"], "search");

        let j = point_row(
            5,
            &[Field {
                name: "outcome",
                value: Value::Str("abandoned"),
            }],
        );
        assert_eq!(j["event.type"], json!(["end"]));
        assert_eq!(j["event.outcome"], "failure");
        assert_eq!(j["labels"]["outcome"], "abandoned");
    }

    #[test]
    fn sanitized_keys() {
        let mut k = String::new();
        for (name, want) in [
            ("a.b*c\\d", "a_b_c_d"),
            ("", "_"),
            ("  ", "_  "),
            ("é.日", "é_日"),
        ] {
            sanitize(name, &mut k);
            assert_eq!(k, want);
        }
    }
}
