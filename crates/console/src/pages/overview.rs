//! `/`: the overview of a window (`since`, default 24h; `until`).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{api_error_page, chart, page, time, window_form, Nav};
use crate::html::{thousands, Html};
use crate::overview::LEVELS;
use crate::params::Params;
use crate::Shared;

/// `GET /`.
pub async fn overview(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    let o = match crate::api::read_overview(&state, &params).await {
        Ok(o) => o,
        Err(response) => return api_error_page(response, Nav::Overview).await,
    };
    let stats = crate::api::read_stats(&state).await.ok();
    let since = params.get("since").unwrap_or("");
    let until = params.get("until").unwrap_or("");
    let window = [("since", since), ("until", until)];
    let mut h = Html::new();
    h.raw("<h1>Overview</h1>");
    window_form(&mut h, "/", &params, "24h");
    h.raw("<button type=\"submit\">Show</button></form>");
    h.raw("<p class=\"muted\">From ");
    time(&mut h, o.since);
    h.raw(" to ");
    time(&mut h, o.until);
    h.raw("</p><div class=\"cards\">");
    let rows: i64 = o.levels.values().flatten().sum();
    card(&mut h, "rows in the window", &thousands(rows), "");
    let committed: i64 = o.committed.iter().sum();
    let seconds = ((o.until - o.since) / 1_000_000).max(1);
    card(
        &mut h,
        "ingest (rows committed / s, window average)",
        &thousands(committed / seconds),
        "",
    );
    if let Some(s) = &stats {
        card(
            &mut h,
            "rows committed, last hour",
            &thousands(s.last_hour_rows as i64),
            "",
        );
    }
    let lost = o.dropped.get("lost").copied().unwrap_or(0);
    let dropped: i64 = o
        .dropped
        .iter()
        .filter(|(k, _)| *k != "lost")
        .map(|(_, v)| v)
        .sum();
    card(
        &mut h,
        "dropped (ring full, evicted, …)",
        &thousands(dropped),
        if dropped > 0 { "warn" } else { "ok" },
    );
    card(
        &mut h,
        "lost",
        &thousands(lost),
        if lost > 0 { "bad" } else { "ok" },
    );
    card(
        &mut h,
        "dead letters",
        &thousands(o.dead_letters),
        if o.dead_letters > 0 { "bad" } else { "ok" },
    );
    let complete = o.traces_total - o.incomplete_total;
    card(&mut h, "audit traces complete", &thousands(complete), "ok");
    card(
        &mut h,
        "audit traces incomplete",
        &thousands(o.incomplete_total),
        if o.incomplete_total > 0 { "bad" } else { "ok" },
    );
    h.raw("</div>");

    h.raw("<h2>Chain</h2><p id=\"chain\">");
    chain_state(&mut h, &crate::api::verify_json(&state));
    h.raw(" <button id=\"verify\" type=\"button\">Run verify</button></p>");

    let labels = o.labels();
    h.raw("<h2>Rows per level</h2>");
    let series: Vec<(&'static str, &str, &[i64])> = LEVELS
        .iter()
        .map(|l| (*l, *l, o.levels.get(l).map_or(&[][..], |v| v.as_slice())))
        .collect();
    chart::stacked(&mut h, &labels, &series, "rows per level over time");
    h.raw("<p><a href=\"")
        .link("/logs", &window)
        .raw("\">Search these rows</a></p>");

    h.raw("<h2>Rows committed</h2>");
    chart::stacked(
        &mut h,
        &labels,
        &[("committed", "rows committed", &o.committed)],
        "rows committed over time",
    );

    h.raw("<h2>Audit traces, complete against incomplete</h2>");
    let complete_series: Vec<i64> = o
        .traces
        .iter()
        .zip(&o.incomplete_traces)
        .map(|(t, i)| (t - i).max(0))
        .collect();
    chart::stacked(
        &mut h,
        &labels,
        &[
            ("complete", "complete", &complete_series),
            ("incomplete", "incomplete", &o.incomplete_traces),
        ],
        "audit traces complete and incomplete over time",
    );
    h.raw("<h2>Incomplete traces by finding code</h2>");
    if o.incomplete.is_empty() {
        h.raw("<p class=\"ok\">Every audit trace in the window is complete.</p>");
    } else {
        h.raw("<table class=\"rows\"><thead><tr><th>finding code</th><th class=\"num\">traces</th></tr></thead><tbody>");
        for (code, per_bucket) in &o.incomplete {
            let total: i64 = per_bucket.iter().sum();
            h.raw("<tr><td><a class=\"code\" href=\"")
                .link(
                    "/gaps",
                    &[("since", since), ("until", until), ("code", code)],
                )
                .raw("\">")
                .text(code)
                .raw("</a></td><td class=\"num\">")
                .int(total)
                .raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }
    h.raw("<p><a href=\"")
        .link("/gaps", &window)
        .raw("\">All incomplete traces</a> · <a href=\"")
        .link("/usage", &window)
        .raw("\">Usage and cost</a></p>");
    page(StatusCode::OK, "Overview", Nav::Overview, h)
}

fn card(h: &mut Html, label: &str, value: &str, class: &'static str) {
    h.raw("<div class=\"card\"><div class=\"label\">")
        .text(label)
        .raw("</div><div class=\"value ")
        .raw(class)
        .raw("\">")
        .text(value)
        .raw("</div></div>");
}

fn chain_state(h: &mut Html, v: &serde_json::Value) {
    let at = v["at"].as_str().unwrap_or("");
    match v["state"].as_str() {
        Some("clean") => {
            h.raw("<span class=\"ok\">verify: clean</span> (")
                .text(&thousands(v["batches"].as_i64().unwrap_or(0)))
                .raw(" batches, ")
                .text(&thousands(v["rows"].as_i64().unwrap_or(0)))
                .raw(" rows) at ");
            super::time_text(h, at);
        }
        Some("findings") => {
            h.raw("<span class=\"bad\">verify: ")
                .text(&thousands(v["findings"].as_i64().unwrap_or(0)))
                .raw(" findings</span> (run <code>ringtrail verify</code> for each) at ");
            super::time_text(h, at);
        }
        Some("failed") => {
            h.raw("<span class=\"bad\">verify failed: ")
                .text(v["error"].as_str().unwrap_or(""))
                .raw("</span> at ");
            super::time_text(h, at);
        }
        Some("running") => {
            h.raw("<span class=\"warn\">verify running since ");
            super::time_text(h, at);
            h.raw("</span>");
        }
        _ => {
            h.raw("<span class=\"muted\">verify has not run since this server started.</span>");
        }
    }
}
