//! The JSON API behind every page (`docs/console.md` documents each
//! answer). Every read goes through [`ringtrail::read::cluster`] over a
//! connection to each shard ([`connections`]): one database is a cluster
//! of one. Errors are `{"error": "..."}` with 400 (a bad parameter), 401
//! (no token), 404 (no such trace), 503 (the database did not answer).

use std::ops::ControlFlow;
use std::time::SystemTime;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ringtrail::read::cluster::{self, ShardError};
use ringtrail::read::usage::{By, Group, UsageQuery};
use ringtrail::read::{PageKey, TableStats};
use ringtrail::render::{render, Format};
use ringtrail::time::{micros, rfc3339_micros};
use serde_json::{json, Value};

use crate::db::Conn;
use crate::params::Params;
use crate::{Shared, VerifyState};

/// Rows a `/logs` page shows by default, and at most.
pub const PAGE_ROWS: u64 = 100;
/// The most rows one page may ask for (`limit`).
pub const MAX_PAGE_ROWS: u64 = 1_000;
/// Rows of one trace the console reads, at most.
pub const TRACE_ROWS: usize = 5_000;

/// An error answer.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A database failure, as an answer: 503, its reason.
pub fn db_error(e: ringtrail::Error) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the database: {}", e.chain()),
    )
}

/// A failure on one shard, as an answer: 503 and its reason; with one
/// database exactly [`db_error`]'s, of several naming the shard.
pub(crate) fn shard_error(state: &Shared, e: ShardError) -> Response {
    if state.shards.len() == 1 {
        db_error(e.error)
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database: {e}: {}", e.error.chain()),
        )
    }
}

/// A connection from each shard's pool, shard 0 first (taken in that
/// order by every request, so two requests never wait on each other).
pub(crate) async fn connections(state: &Shared) -> Result<Vec<Conn>, Response> {
    let mut conns = Vec::with_capacity(state.shards.len());
    for (shard, db) in state.shards.iter().enumerate() {
        let conn = db
            .get()
            .await
            .map_err(|error| shard_error(state, ShardError { shard, error }))?;
        conns.push(conn);
    }
    Ok(conns)
}

/// The clients of `conns`, as [`ringtrail::read::cluster`] takes them.
pub(crate) fn clients(conns: &[Conn]) -> Vec<&tokio_postgres::Client> {
    conns.iter().map(|c| &**c).collect()
}

/// One page of rows, newest first, and the key of the next (older) page.
pub(crate) struct LogPage {
    pub rows: Vec<Value>,
    pub next: Option<PageKey>,
}

/// Reads the page `params` ask for.
pub(crate) async fn log_page(state: &Shared, params: &Params) -> Result<LogPage, Response> {
    let now = SystemTime::now();
    let filter = params
        .filter(now)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let before = match params.get("before") {
        Some(key) => Some(
            key.parse::<PageKey>()
                .map_err(|e| error(StatusCode::BAD_REQUEST, e))?,
        ),
        None => None,
    };
    let limit = match params.get("limit") {
        Some(n) => n
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_ROWS).contains(n))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("limit {n:?}: expected 1 to {MAX_PAGE_ROWS}"),
                )
            })?,
        None => PAGE_ROWS,
    };
    let conns = connections(state).await?;
    let mut rows = Vec::new();
    let mut last = None;
    let mut buf = Vec::new();
    cluster::page(&clients(&conns), &filter, before, limit, |row| {
        buf.clear();
        render(Format::Native, row, &mut buf);
        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
            rows.push(v);
        }
        last = Some(PageKey::of(row));
        ControlFlow::Continue(())
    })
    .await
    .map_err(|e| shard_error(state, e))?;
    let next = if rows.len() as u64 == limit {
        last
    } else {
        None
    };
    Ok(LogPage { rows, next })
}

/// `GET /api/logs`: `{"rows": [native rows, newest first], "next": key or null}`.
pub async fn logs(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    match log_page(&state, &params).await {
        Ok(page) => Json(json!({
            "rows": page.rows,
            "next": page.next.map(|k| k.to_string()),
        }))
        .into_response(),
        Err(response) => response,
    }
}

/// Reads one trace, or the answer to give instead.
pub(crate) async fn read_trace(
    state: &Shared,
    trace_id: &str,
) -> Result<ringtrail::read::TraceReport, Response> {
    let conns = connections(state).await?;
    match cluster::trace_limited(
        &clients(&conns),
        trace_id,
        SystemTime::now(),
        state.grace,
        TRACE_ROWS,
    )
    .await
    {
        Ok(Some(report)) => Ok(report),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, "no row has this trace id")),
        Err(e) => Err(shard_error(state, e)),
    }
}

/// `GET /api/traces/{trace_id}`: what `ringtrail trace --json` prints.
pub async fn trace(State(state): State<Shared>, Path(trace_id): Path<String>) -> Response {
    match read_trace(&state, &trace_id).await {
        Ok(report) => Json(report.to_json()).into_response(),
        Err(response) => response,
    }
}

/// Gaps an answer lists by default (`limit`), and at most.
pub const GAPS_SHOWN: usize = 500;
/// The most gaps one answer may list.
pub const MAX_GAPS_SHOWN: usize = 100_000;

/// The incomplete traces `params` ask for (the first `limit`, oldest
/// first), how many there are in all (`matched`), and how many traces
/// were checked.
pub(crate) async fn read_gaps(
    state: &Shared,
    params: &Params,
) -> Result<(Vec<ringtrail::read::Gap>, usize, ringtrail::read::Scan), Response> {
    let now = SystemTime::now();
    let (since, until) = params
        .window(now, "24h")
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let code = match params.get("code") {
        Some(name) => Some(
            ringtrail::audit::rules::FindingCode::from_name(name).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("code {name:?}: no such finding code"),
                )
            })?,
        ),
        None => None,
    };
    let limit = match params.get("limit") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_GAPS_SHOWN).contains(n))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("limit {n:?}: expected 1 to {MAX_GAPS_SHOWN}"),
                )
            })?,
        None => GAPS_SHOWN,
    };
    let conns = connections(state).await?;
    let mut gaps = Vec::new();
    let mut matched = 0;
    let scan = cluster::each_gap(&clients(&conns), since, until, state.grace, now, |gap| {
        if code.is_none_or(|c| gap.findings.iter().any(|f| f.code == c)) {
            matched += 1;
            if gaps.len() < limit {
                gaps.push(gap);
            }
        }
    })
    .await
    .map_err(|e| shard_error(state, e))?;
    Ok((gaps, matched, scan))
}

/// `GET /api/gaps`: `{"gaps": [as audit-gaps --json, the first
/// `limit`], "incomplete": all that match, "traces", "points"}`.
pub async fn gaps(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    match read_gaps(&state, &params).await {
        Ok((gaps, matched, scan)) => Json(json!({
            "gaps": gaps.iter().map(|g| g.to_json()).collect::<Vec<_>>(),
            "incomplete": matched,
            "traces": scan.traces,
            "points": scan.points,
        }))
        .into_response(),
        Err(response) => response,
    }
}

/// The table's statistics as JSON.
pub(crate) fn stats_json(s: &TableStats) -> Value {
    let ts = |t: Option<SystemTime>| t.map(|t| rfc3339_micros(micros(t)));
    json!({
        "rows": s.rows,
        "by_level": s.by_level,
        "by_day": s.by_day,
        "oldest": ts(s.oldest),
        "newest": ts(s.newest),
        "logs_bytes": s.logs_bytes,
        "batches_bytes": s.batches_bytes,
        "dead_letters_bytes": s.dead_letters_bytes,
        "last_hour_batches": s.last_hour_batches,
        "last_hour_rows": s.last_hour_rows,
        "dead_letters": s.dead_letters,
        "partitions": s.partitions.iter().map(|(name, bytes)| json!({"name": name, "bytes": bytes})).collect::<Vec<_>>(),
    })
}

/// The statistics of every shard, summed.
pub(crate) async fn read_stats(state: &Shared) -> Result<TableStats, Response> {
    let conns = connections(state).await?;
    cluster::stats(&clients(&conns))
        .await
        .map_err(|e| shard_error(state, e))
}

/// `GET /api/stats`: what `ringtrail stats --json` reads.
pub async fn stats(State(state): State<Shared>) -> Response {
    match read_stats(&state).await {
        Ok(s) => Json(stats_json(&s)).into_response(),
        Err(response) => response,
    }
}

/// Reads the overview `params` ask for.
pub(crate) async fn read_overview(
    state: &Shared,
    params: &Params,
) -> Result<crate::overview::Overview, Response> {
    let (since, until) = params
        .window(SystemTime::now(), "24h")
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let conns = connections(state).await?;
    let mut total: Option<crate::overview::Overview> = None;
    for (shard, client) in clients(&conns).into_iter().enumerate() {
        let o = crate::overview::read(client, since, until, state.grace)
            .await
            .map_err(|error| shard_error(state, ShardError { shard, error }))?;
        match &mut total {
            Some(total) => total.merge(o),
            None => total = Some(o),
        }
    }
    Ok(total.unwrap_or_default())
}

/// `GET /api/overview`: the overview's series, and the chain's state.
pub async fn overview(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    match read_overview(&state, &params).await {
        Ok(o) => {
            let mut v = o.to_json();
            v["verify"] = verify_json(&state);
            Json(v).into_response()
        }
        Err(response) => response,
    }
}

/// The last `verify`, as JSON: `{"state": "never" | "running" | "clean" |
/// "findings" | "failed", "at", ...}`.
pub(crate) fn verify_json(state: &Shared) -> Value {
    let at = |t: &SystemTime| rfc3339_micros(micros(*t));
    match &*state.verify.lock().unwrap_or_else(|e| e.into_inner()) {
        VerifyState::Never => json!({"state": "never"}),
        VerifyState::Running(since) => json!({"state": "running", "at": at(since)}),
        VerifyState::Done(when, Ok(s)) => json!({
            "state": if s.clean() { "clean" } else { "findings" },
            "at": at(when),
            "chains": s.chains,
            "batches": s.batches,
            "rows": s.rows,
            "checkpoints": s.checkpoints,
            "findings": s.findings,
        }),
        VerifyState::Done(when, Err(why)) => {
            json!({"state": "failed", "at": at(when), "error": why})
        }
    }
}

/// `GET /api/verify`: the last run's state.
pub async fn verify_state(State(state): State<Shared>) -> Response {
    Json(verify_json(&state)).into_response()
}

/// `POST /api/verify`: starts `verify` over the whole chain, of every
/// shard (once at a time) and answers 202 with its state; `GET /api/verify` tells when it
/// is done. Same-origin only (see [`auth`](crate::auth)).
pub async fn verify_run(State(state): State<Shared>) -> Response {
    start_verify(&state);
    (StatusCode::ACCEPTED, Json(verify_json(&state))).into_response()
}

/// Starts a `verify` unless one is running.
pub(crate) fn start_verify(state: &Shared) {
    {
        let mut v = state.verify.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*v, VerifyState::Running(_)) {
            return;
        }
        *v = VerifyState::Running(SystemTime::now());
    }
    let state = state.clone();
    tokio::spawn(async move {
        let shards = state.shards.len();
        let why = |e: ShardError| {
            if shards == 1 {
                e.error.chain()
            } else {
                format!("{e}: {}", e.error.chain())
            }
        };
        let result = async {
            let mut conns = Vec::with_capacity(shards);
            for (shard, db) in state.shards.iter().enumerate() {
                conns.push(
                    db.get()
                        .await
                        .map_err(|error| why(ShardError { shard, error }))?,
                );
            }
            let mut clients: Vec<&mut tokio_postgres::Client> =
                conns.iter_mut().map(|c| &mut **c).collect();
            let options = vec![ringtrail::read::VerifyOptions::default(); shards];
            cluster::verify(&mut clients, &options, |_, _| {}, |_| {})
                .await
                .map_err(why)
        }
        .await;
        *state.verify.lock().unwrap_or_else(|e| e.into_inner()) =
            VerifyState::Done(SystemTime::now(), result);
    });
}

/// The usage `params` ask for (`since`, default 24h; `until`; `by`,
/// default `model`).
pub(crate) async fn read_usage(
    state: &Shared,
    params: &Params,
) -> Result<(By, Vec<Group>), Response> {
    let (since, until) = params
        .window(SystemTime::now(), "24h")
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let by = match params.get("by") {
        Some(b) => b
            .parse::<By>()
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?,
        None => By::Model,
    };
    let conns = connections(state).await?;
    let query = UsageQuery { since, until, by };
    let groups = cluster::usage(&clients(&conns), &query, &state.prices)
        .await
        .map_err(|e| shard_error(state, e))?;
    Ok((by, groups))
}

/// `GET /api/usage`: `{"by", "groups": [as ringtrail usage --json]}`.
pub async fn usage(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref());
    match read_usage(&state, &params).await {
        Ok((by, groups)) => Json(json!({
            "by": by.as_str(),
            "groups": groups.iter().map(Group::to_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(response) => response,
    }
}
