//! `/logs`: search with the CLI's filter names, newest first, paged by
//! key (`before`), and a live mode (`live=1`) that follows new rows
//! exactly once through `/api/tail`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::{api_error_page, page, point_badge, time_text, Nav};
use crate::html::Html;
use crate::params::Params;
use crate::Shared;

/// The filters, in the order the form shows them: (name, label, hint).
const FILTERS: &[(&str, &str, &str)] = &[
    ("since", "since", "1h or RFC 3339"),
    ("until", "until", "now"),
    ("level", "level", "warn"),
    ("target", "target", "prefix"),
    ("trace_id", "trace_id", ""),
    ("user", "user", ""),
    ("session", "session", ""),
    ("grep", "grep", "text in the message"),
];

/// `GET /logs`.
pub async fn logs(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    let page_rows = match crate::api::log_page(&state, &params).await {
        Ok(p) => p,
        Err(response) => return api_error_page(response, Nav::Logs).await,
    };
    let mut h = Html::new();
    h.raw("<h1>Logs</h1><form class=\"filters\" method=\"get\" action=\"/logs\">");
    for (name, label, hint) in FILTERS {
        h.raw("<label>")
            .text(label)
            .raw("<input name=\"")
            .text(name)
            .raw("\" placeholder=\"")
            .text(hint)
            .raw("\" value=\"")
            .text(params.get(name).unwrap_or(""))
            .raw("\"></label>");
    }
    let fields: Vec<&str> = params.all("field").collect();
    for value in fields.iter().copied().chain(std::iter::once("")) {
        h.raw("<label>field<input name=\"field\" placeholder=\"key=value\" value=\"")
            .text(value)
            .raw("\"></label>");
    }
    h.raw("<button class=\"primary\" type=\"submit\">Search</button>")
        .raw("<button id=\"live\" type=\"button\" title=\"follow new rows as they commit\">Live</button>")
        .raw("</form>");
    h.raw("<table class=\"rows\"><thead><tr><th>time (UTC)</th><th>level</th><th>target</th>")
        .raw("<th>message</th><th>trace</th><th>fields</th></tr></thead><tbody>");
    for row in &page_rows.rows {
        log_row(&mut h, row);
    }
    h.raw("</tbody></table>");
    if page_rows.rows.is_empty() {
        h.raw("<p class=\"muted\" id=\"empty\">No row matches.</p>");
    }
    h.raw("<div class=\"pager\">");
    if let Some(next) = page_rows.next {
        let key = next.to_string();
        let mut pairs: Vec<(&str, &str)> = params
            .pairs()
            .iter()
            .filter(|(k, _)| k != "before" && k != "live")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push(("before", &key));
        h.raw("<a rel=\"next\" href=\"")
            .link("/logs", &pairs)
            .raw("\">Older rows →</a>");
    }
    if params.get("before").is_some() {
        let pairs: Vec<(&str, &str)> = params
            .pairs()
            .iter()
            .filter(|(k, _)| k != "before")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        h.raw("<a href=\"")
            .link("/logs", &pairs)
            .raw("\">Newest rows</a>");
    }
    h.raw("<span class=\"muted\">")
        .num(page_rows.rows.len())
        .raw(" rows, newest first</span></div>");
    page(StatusCode::OK, "Logs", Nav::Logs, h)
}

/// One row of the table, from its native JSON (the live mode's script
/// builds the same cells from the same JSON).
fn log_row(h: &mut Html, row: &Value) {
    let s = |k: &str| row[k].as_str().unwrap_or("");
    let level = s("level_name");
    h.raw("<tr data-id=\"")
        .text(s("id"))
        .raw("\"><td class=\"ts\">");
    time_text(h, s("ts"));
    h.raw("</td><td class=\"lvl lvl-")
        .text(level)
        .raw("\">")
        .text(level)
        .raw("</td><td class=\"mono\">")
        .text(s("target"))
        .raw("</td><td class=\"msg\">");
    if let Some(point) = row["point"].as_str() {
        point_badge(h, point);
        h.raw(" ");
    }
    h.text(s("message")).raw("</td><td class=\"mono\">");
    if let Some(trace) = row["trace_id"].as_str() {
        h.raw("<a href=\"")
            .link_to("/traces/", trace)
            .raw("\">")
            .text(trace)
            .raw("</a>");
    }
    let fields = &row["fields"];
    let count = fields.as_object().map_or(0, |m| m.len());
    h.raw("</td><td><details><summary>")
        .num(count)
        .raw(" fields</summary><pre>")
        .text(&serde_json::to_string_pretty(fields).unwrap_or_default())
        .raw("</pre></details></td></tr>");
}
