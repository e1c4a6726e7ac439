//! Audit points from OpenTelemetry's own conventions: which of ringtrail's
//! five points ([`Point`]) a log record or a span is, and the fields the
//! completeness check reads.
//!
//! | what the record carries | point | fields added |
//! |---|---|---|
//! | `audit.point` (the wire contract) | as named | none: it carries its own |
//! | `gen_ai.operation.name` = `invoke_agent`, `create_agent` | agent | `agent.id` from `gen_ai.agent.id`, else `gen_ai.agent.name`, else the span name |
//! | `gen_ai.operation.name` = `execute_tool` | tool | `gen_ai.tool.name` kept |
//! | `gen_ai.operation.name` = `chat`, `text_completion`, `generate_content`, `embeddings` | tool (a model call) | `gen_ai.operation.name` kept |
//! | `mcp.method.name` = `tools/call` | tool | `gen_ai.tool.name` from `gen_ai.tool.name`, else `mcp.tool.name`, else the word after `tools/call` in the span name (the MCP SDK's client span, `MCP send tools/call lookup_order`, names its tool only there) |
//! | `traceloop.span.kind` = `tool` (OpenLLMetry) | tool | `gen_ai.tool.name` from `traceloop.entity.name`, else the span name less `.tool` |
//! | `traceloop.span.kind` = `agent` (OpenLLMetry) | agent | `agent.id` from `traceloop.entity.name` |
//! | a root span (no parent) with `user.id` or `user_id` that is an agent point | identity, as a row of its own just before the agent's | `user_id` |
//!
//! Other `mcp.method.name` values (`initialize`, `tools/list`, …) and
//! OpenLLMetry's `workflow` and `task` spans are no point. No convention
//! exists for permission decisions, identities or results: those come from
//! the wire contract (`audit.point` with its fields).
//!
//! A row that is a point gets the target
//! [`ringtrail::audit::TARGET`] and the field `audit.point`; the
//! instrumentation scope's name moves to the field `otel.scope.name`.

use ringtrail::audit::contract::{field, POINT_FIELD};
use ringtrail::audit::{Point, TARGET};

use super::value::{Name, Owned, OwnedRow};

/// The field that keeps the scope's name on a row made a point.
pub const SCOPE_FIELD: &str = "otel.scope.name";

/// Model-call operations: a tool point each.
const MODEL_CALLS: &[&str] = &["chat", "text_completion", "generate_content", "embeddings"];

/// The point `row` is by the conventions above, if any, with its fields
/// completed. `span_name` is the span's name (for a span's row).
pub fn classify(row: &OwnedRow, span_name: Option<&str>) -> Option<(Point, Vec<(Name, Owned)>)> {
    if let Some(point) = row.str_field(POINT_FIELD) {
        return Point::from_name(point).map(|p| (p, Vec::new()));
    }
    let text = |s: &str| Owned::Str(s.to_owned());
    let mut add = Vec::new();
    let operation = row.str_field(field::OPERATION_NAME);
    if let Some(op) = operation {
        if op == "invoke_agent" || op == "create_agent" {
            if row.field(field::AGENT_ID).is_none() {
                let id = row
                    .str_field("gen_ai.agent.id")
                    .or(row.str_field("gen_ai.agent.name"))
                    .or(span_name)?;
                add.push((Name::Borrowed(field::AGENT_ID), text(id)));
            }
            if let (None, Some(name)) = (
                row.field(field::AGENT_NAME),
                row.str_field("gen_ai.agent.name"),
            ) {
                add.push((Name::Borrowed(field::AGENT_NAME), text(name)));
            }
            return Some((Point::Agent, add));
        }
        if op == "execute_tool" {
            if row.field(field::TOOL_NAME).is_none() {
                if let Some(name) = row.str_field("mcp.tool.name") {
                    add.push((Name::Borrowed(field::TOOL_NAME), text(name)));
                }
            }
            return Some((Point::Tool, add));
        }
        if MODEL_CALLS.contains(&op) {
            return Some((Point::Tool, add));
        }
    }
    if row.str_field(field::MCP_METHOD_NAME) == Some("tools/call") {
        if row.field(field::TOOL_NAME).is_none() {
            let name = row
                .str_field("mcp.tool.name")
                .or_else(|| span_name.and_then(tool_in_span_name))?;
            add.push((Name::Borrowed(field::TOOL_NAME), text(name)));
        }
        return Some((Point::Tool, add));
    }
    match row.str_field("traceloop.span.kind") {
        Some("tool") => {
            if row.field(field::TOOL_NAME).is_none() {
                let name = row
                    .str_field("traceloop.entity.name")
                    .or_else(|| span_name.map(|s| s.strip_suffix(".tool").unwrap_or(s)))?;
                add.push((Name::Borrowed(field::TOOL_NAME), text(name)));
            }
            Some((Point::Tool, add))
        }
        Some("agent") => {
            if row.field(field::AGENT_ID).is_none() {
                let id = row.str_field("traceloop.entity.name").or(span_name)?;
                add.push((Name::Borrowed(field::AGENT_ID), text(id)));
            }
            Some((Point::Agent, add))
        }
        _ => None,
    }
}

/// The tool a span name names after `tools/call`: `tools/call
/// lookup_order` (the MCP SDK's server span), `MCP send tools/call
/// lookup_order` (its client span).
fn tool_in_span_name(name: &str) -> Option<&str> {
    let mut words = name.split_whitespace();
    words.find(|w| *w == "tools/call")?;
    words.next()
}

/// Makes `row` the point `point`: target [`TARGET`], the scope's name as
/// [`SCOPE_FIELD`], `audit.point` and the completed fields.
pub fn mark(row: &mut OwnedRow, point: Point, add: Vec<(Name, Owned)>) {
    if row.target != TARGET {
        let scope = std::mem::replace(&mut row.target, TARGET.to_owned());
        if !scope.is_empty() {
            row.set(SCOPE_FIELD, Owned::Str(scope));
        }
    }
    if row.field(POINT_FIELD).is_none() {
        row.push(POINT_FIELD, Owned::Str(point.as_str().to_owned()));
    }
    for (name, value) in add {
        row.set(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[(&str, &str)]) -> OwnedRow {
        OwnedRow {
            fields: fields
                .iter()
                .map(|(k, v)| (Name::from(k.to_string()), Owned::Str(v.to_string())))
                .collect(),
            ..OwnedRow::default()
        }
    }

    #[test]
    fn conventions_become_points() {
        let p = |r: &OwnedRow, span| classify(r, span).map(|(p, _)| p);
        assert_eq!(
            p(&row(&[("audit.point", "permission")]), None),
            Some(Point::Permission)
        );
        assert_eq!(p(&row(&[("audit.point", "nonsense")]), None), None);
        assert_eq!(
            p(
                &row(&[("gen_ai.operation.name", "invoke_agent")]),
                Some("invoke_agent a")
            ),
            Some(Point::Agent)
        );
        assert_eq!(
            p(&row(&[("gen_ai.operation.name", "chat")]), None),
            Some(Point::Tool)
        );
        assert_eq!(
            p(&row(&[("gen_ai.operation.name", "embeddings")]), None),
            Some(Point::Tool)
        );
        assert_eq!(p(&row(&[("mcp.method.name", "tools/list")]), None), None);
        assert_eq!(p(&row(&[("mcp.method.name", "initialize")]), None), None);
        assert_eq!(p(&row(&[("traceloop.span.kind", "workflow")]), None), None);
        let (point, add) = classify(
            &row(&[
                ("traceloop.span.kind", "tool"),
                ("traceloop.entity.name", "lookup_order"),
            ]),
            Some("lookup_order.tool"),
        )
        .unwrap();
        assert_eq!(point, Point::Tool);
        assert_eq!(
            add,
            vec![("gen_ai.tool.name".into(), Owned::Str("lookup_order".into()))]
        );
        let (_, add) = classify(
            &row(&[("mcp.method.name", "tools/call")]),
            Some("tools/call refund_order"),
        )
        .unwrap();
        assert_eq!(
            add,
            vec![("gen_ai.tool.name".into(), Owned::Str("refund_order".into()))]
        );
        let mut r = row(&[
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", "x"),
        ]);
        r.target = "mcp".into();
        let (point, add) = classify(&r, None).unwrap();
        mark(&mut r, point, add);
        assert_eq!(r.target, TARGET);
        assert_eq!(r.str_field("otel.scope.name"), Some("mcp"));
        assert_eq!(r.str_field("audit.point"), Some("tool"));
    }
}
