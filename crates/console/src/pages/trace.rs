//! `/traces/{trace_id}`: one trace's timeline. Every row in order, drawn
//! against the trace's time (spans as bars as long as their
//! `duration_ns`, other rows as ticks), the five audit points marked,
//! each finding's code as text linked to its row, fields expandable.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{api_error_page, page, point_badge, time, Nav};
use crate::html::Html;
use crate::Shared;

/// The timeline's width, in SVG units.
const WIDTH: i64 = 1000;

/// `GET /traces/{trace_id}`.
pub async fn trace(State(state): State<Shared>, Path(trace_id): Path<String>) -> Response {
    let report = match crate::api::read_trace(&state, &trace_id).await {
        Ok(r) => r,
        Err(response) => return api_error_page(response, Nav::None).await,
    };
    let mut h = Html::new();
    h.raw("<h1>Trace <code>")
        .text(&report.trace_id)
        .raw("</code></h1>");
    let start = report.rows.iter().map(|r| r.ts_micros).min().unwrap_or(0);
    let end = report
        .rows
        .iter()
        .map(|r| r.ts_micros + duration_micros(r))
        .max()
        .unwrap_or(start);
    let span = (end - start).max(1);
    h.raw("<p>")
        .num(report.rows.len())
        .raw(" rows, ")
        .num(report.points())
        .raw(" audit points, from ");
    time(&mut h, start);
    h.raw(" over ")
        .text(&ringtrail::time::format_duration(
            std::time::Duration::from_micros(span as u64),
        ))
        .raw(". ");
    if report.complete() {
        h.raw("<span class=\"ok\">Complete: every action was authorized.</span></p>");
    } else {
        h.raw("<span class=\"bad\">Incomplete.</span></p>");
    }
    if !report.findings.is_empty() {
        h.raw("<h2>Findings</h2><table class=\"rows findings\"><thead><tr><th>code</th><th>detail</th><th>row</th></tr></thead><tbody>");
        for f in &report.findings {
            h.raw("<tr><td><span class=\"code\">")
                .text(f.code.as_str())
                .raw("</span></td><td>")
                .text(&f.detail)
                .raw("</td><td class=\"mono\">");
            if let Some(id) = &f.row_id {
                h.raw("<a href=\"#row-")
                    .text(id)
                    .raw("\">")
                    .text(short(id))
                    .raw("</a>");
            }
            h.raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }
    h.raw("<h2>Timeline</h2><table class=\"rows timeline\"><thead><tr><th>time (UTC)</th><th>point</th>")
        .raw("<th>level</th><th>message</th><th class=\"bar\">")
        .text(&format!("0 → {}", human_span(span)))
        .raw("</th><th>fields</th></tr></thead><tbody>");
    for (i, row) in report.rows.iter().enumerate() {
        let codes: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.row == Some(i))
            .map(|f| f.code.as_str())
            .collect();
        h.raw("<tr id=\"row-").text(&row.id).raw("\"");
        if !codes.is_empty() {
            h.raw(" class=\"finding-row\"");
        }
        h.raw("><td class=\"ts\">");
        time(&mut h, row.ts_micros);
        h.raw("</td><td>");
        if let Some(p) = row.point {
            point_badge(&mut h, p.as_str());
        }
        for code in &codes {
            h.raw(" <span class=\"code\">").text(code).raw("</span>");
        }
        h.raw("</td><td class=\"lvl lvl-")
            .text(row.level_name())
            .raw("\">")
            .text(row.level_name())
            .raw("</td><td class=\"msg\"><span class=\"mono muted\">")
            .text(&row.target)
            .raw("</span> ")
            .text(&row.message);
        if let Some(tool) = row.field_str(ringtrail::audit::contract::field::TOOL_NAME) {
            h.raw(" <code>").text(tool).raw("</code>");
        }
        h.raw("</td><td class=\"bar\">");
        bar(&mut h, row, start, span);
        h.raw("</td><td><details><summary>fields</summary><pre>")
            .text(&serde_json::to_string_pretty(&row.to_json()["fields"]).unwrap_or_default());
        for (k, v) in &row.context {
            h.raw("\n").text(k).raw(": ").text(v);
        }
        h.raw("</pre></details></td></tr>");
    }
    h.raw("</tbody></table>");
    page(StatusCode::OK, "Trace", Nav::None, h)
}

/// A row's `duration_ns` field, in microseconds (0 when it has none).
fn duration_micros(row: &ringtrail::read::TraceRow) -> i64 {
    row.fields
        .get(ringtrail::audit::contract::field::DURATION_NS)
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .map_or(0, |ns| (ns / 1_000).max(0))
}

/// The row's place on the trace's time: a bar for a span, a tick for a
/// point in time, coloured by its audit point.
fn bar(h: &mut Html, row: &ringtrail::read::TraceRow, start: i64, span: i64) {
    let x = (row.ts_micros - start) * WIDTH / span;
    let d = duration_micros(row);
    let w = (d * WIDTH / span).max(3);
    let class = match row.point {
        Some(p) => match p.as_str() {
            "identity" => "p-identity",
            "agent" => "p-agent",
            "permission" => "p-permission",
            "tool" => "p-tool",
            _ => "p-result",
        },
        None if d > 0 => "span",
        None => "event",
    };
    h.raw("<svg class=\"timeline\" viewBox=\"0 0 ")
        .num(WIDTH)
        .raw(" 14\" preserveAspectRatio=\"none\"><rect class=\"track\" x=\"0\" y=\"0\" width=\"")
        .num(WIDTH)
        .raw("\" height=\"14\"/><rect class=\"")
        .raw(class)
        .raw("\" x=\"")
        .num(x.min(WIDTH - 3))
        .raw("\" y=\"2\" width=\"")
        .num(w)
        .raw("\" height=\"10\"><title>")
        .text(&format!("+{} µs, {} µs", row.ts_micros - start, d))
        .raw("</title></rect></svg>");
}

/// A span of microseconds for people: `850 µs`, `12.345 ms`, else the
/// CLI's durations (`1m30s`).
fn human_span(micros: i64) -> String {
    match micros {
        ..1_000 => format!("{micros} µs"),
        1_000..1_000_000 => format!("{}.{:03} ms", micros / 1_000, micros % 1_000),
        _ => ringtrail::time::format_duration(std::time::Duration::from_micros(micros as u64)),
    }
}

fn short(id: &str) -> &str {
    id.get(..13).unwrap_or(id)
}
