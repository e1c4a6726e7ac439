//! `/gaps`: the incomplete traces of a window (`since`, default 24h;
//! `until`), filterable by finding `code`, each linking to its timeline.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use ringtrail::audit::rules::FindingCode;

use super::{api_error_page, page, time, window_form, Nav};
use crate::html::Html;
use crate::params::Params;
use crate::Shared;

/// `GET /gaps`.
pub async fn gaps(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    let (gaps, matched, scan) = match crate::api::read_gaps(&state, &params).await {
        Ok(g) => g,
        Err(response) => return api_error_page(response, Nav::Gaps).await,
    };
    let chosen = params.get("code").unwrap_or("");
    let mut h = Html::new();
    h.raw("<h1>Incomplete traces</h1>");
    window_form(&mut h, "/gaps", &params, "24h");
    h.raw("<label>code<select name=\"code\"><option value=\"\">any</option>");
    for code in FindingCode::ALL {
        h.raw("<option");
        if code.as_str() == chosen {
            h.raw(" selected");
        }
        h.raw(">").text(code.as_str()).raw("</option>");
    }
    h.raw("</select></label><button type=\"submit\">Show</button></form>");
    h.raw("<p><span id=\"gap-count\">")
        .int(matched as i64)
        .raw("</span> incomplete of ")
        .int(scan.traces as i64)
        .raw(" traces with audit points in the window");
    if gaps.len() < matched {
        h.raw("; the first ")
            .int(gaps.len() as i64)
            .raw(" are listed (narrow the window, filter by code, or raise <code>limit</code>)");
    }
    h.raw(".</p>");
    if gaps.is_empty() {
        h.raw("<p class=\"ok\">No incomplete trace.</p>");
    } else {
        h.raw("<table class=\"rows gaps\"><thead><tr><th>trace</th><th>finding codes</th>")
            .raw("<th class=\"num\">points</th><th>first point (UTC)</th><th>last point</th></tr></thead><tbody>");
        for gap in &gaps {
            h.raw("<tr data-trace=\"")
                .text(&gap.trace_id)
                .raw("\"><td class=\"mono\"><a href=\"")
                .link_to("/traces/", &gap.trace_id)
                .raw("\">")
                .text(&gap.trace_id)
                .raw("</a></td><td>");
            let mut seen: Vec<&str> = Vec::new();
            for f in &gap.findings {
                if !seen.contains(&f.code.as_str()) {
                    seen.push(f.code.as_str());
                    h.raw("<span class=\"code\">")
                        .text(f.code.as_str())
                        .raw("</span>");
                }
            }
            h.raw("</td><td class=\"num\">")
                .int(gap.points as i64)
                .raw("</td><td class=\"ts\">");
            time(&mut h, gap.first_ts_micros);
            h.raw("</td><td class=\"ts\">");
            time(&mut h, gap.last_ts_micros);
            h.raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }
    page(StatusCode::OK, "Gaps", Nav::Gaps, h)
}
