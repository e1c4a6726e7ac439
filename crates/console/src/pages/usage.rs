//! `/usage`: tokens (input, output, cached), calls and cost per group
//! (`by` = `model`, `user`, `agent` or `day`) over a window (`since`,
//! default 24h; `until`), exact integers, as a table and a chart. The same
//! numbers as `ringtrail usage` ([`ringtrail::read::usage`]).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use ringtrail::read::usage::By;

use super::{api_error_page, chart, page, window_form, Nav};
use crate::html::Html;
use crate::params::Params;
use crate::Shared;

/// Micro-USD as dollars, exactly: `1234567` → `$1.234567`.
pub(crate) fn usd(micro: i64) -> String {
    format!("${}", ringtrail::read::usage::usd(i128::from(micro)))
}

/// `GET /usage`.
pub async fn usage(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    let (by, groups) = match crate::api::read_usage(&state, &params).await {
        Ok(u) => u,
        Err(response) => return api_error_page(response, Nav::Usage).await,
    };
    let mut h = Html::new();
    h.raw("<h1>Usage and cost</h1>");
    window_form(&mut h, "/usage", &params, "24h");
    h.raw("<label>by<select name=\"by\">");
    for b in By::ALL {
        h.raw("<option");
        if b == by {
            h.raw(" selected");
        }
        h.raw(">").text(b.as_str()).raw("</option>");
    }
    h.raw("</select></label><button type=\"submit\">Show</button></form>");
    if groups.is_empty() {
        h.raw("<p class=\"muted\">No tool point or result in the window.</p>");
    } else {
        h.raw("<table class=\"rows usage\"><thead><tr><th>")
            .text(by.as_str())
            .raw("</th><th class=\"num\">calls</th><th class=\"num\">input tokens</th>")
            .raw("<th class=\"num\">output tokens</th><th class=\"num\">cached tokens</th>")
            .raw("<th class=\"num\">cost (USD)</th><th class=\"num\">cost (micro-USD)</th></tr></thead><tbody>");
        let mut total = ringtrail::read::usage::Group::default();
        for g in &groups {
            h.raw("<tr data-group=\"")
                .text(&g.group)
                .raw("\"><td class=\"mono\">")
                .text(&g.group);
            cells(&mut h, g);
            total.calls += g.calls;
            total.input_tokens += g.input_tokens;
            total.output_tokens += g.output_tokens;
            total.cached_tokens += g.cached_tokens;
            total.cost_micro_usd += g.cost_micro_usd;
        }
        h.raw("</tbody><tfoot><tr><th>total");
        cells(&mut h, &total);
        h.raw("</tfoot></table>");
        h.raw("<h2>Cost per ")
            .text(by.as_str())
            .raw(" (micro-USD)</h2>");
        let items: Vec<(String, i64)> = groups
            .iter()
            .map(|g| (g.group.clone(), g.cost_micro_usd))
            .collect();
        chart::bars(&mut h, &items, "µUSD", "cost per group");
        h.raw("<h2>Tokens per ")
            .text(by.as_str())
            .raw(" (input + output)</h2>");
        let items: Vec<(String, i64)> = groups
            .iter()
            .map(|g| (g.group.clone(), g.input_tokens + g.output_tokens))
            .collect();
        chart::bars(&mut h, &items, "tokens", "tokens per group");
    }
    h.raw("<p class=\"muted\">Tokens from tool points' <code>gen_ai.usage.*</code>; cost from results' ")
        .raw("<code>cost.micro_usd</code>, else tokens × <code>--prices</code> (docs/usage.md).</p>");
    page(StatusCode::OK, "Usage", Nav::Usage, h)
}

fn cells(h: &mut Html, g: &ringtrail::read::usage::Group) {
    h.raw("</td><td class=\"num\">")
        .int(g.calls)
        .raw("</td><td class=\"num\">")
        .int(g.input_tokens)
        .raw("</td><td class=\"num\">")
        .int(g.output_tokens)
        .raw("</td><td class=\"num\">")
        .int(g.cached_tokens)
        .raw("</td><td class=\"num\">")
        .text(&usd(g.cost_micro_usd))
        .raw("</td><td class=\"num cost\">")
        .int(g.cost_micro_usd)
        .raw("</td></tr>");
}
