//! `GET /api/tail`: every committed row the filter keeps, exactly once,
//! as Server-Sent Events, the way `ringtrail tail -f` follows the table
//! ([`ringtrail::read::follow`]).
//!
//! Each event is one poll: `event: rows`, `data:` a JSON array of native
//! rows (oldest first), `id:` the follower's cursor after them (`rt1:…`).
//! An event is dispatched by the browser only once it has arrived whole,
//! so the cursor a reconnecting `EventSource` sends back as
//! `Last-Event-ID` always matches the rows it has shown: the stream
//! resumes with exactly the rows committed after them, none lost, none
//! twice. `?after=CURSOR` does the same by hand. A fresh stream starts
//! with the newest `last` rows (default 0, at most 1,000) read in the
//! same snapshot that fixes its first cursor.
//!
//! The filter is the CLI's (`level`, `target`, `trace_id`, `user`,
//! `session`, `grep`, `field`, `since`). At most `max_tails` streams are
//! open at once (503 past that); each holds one database connection with
//! `LISTEN`, and a comment line every 15 s keeps proxies from closing it.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ringtrail::read::follow::{Wake, POLL_INTERVAL};
use ringtrail::read::{Backlog, Cursor, Follower};
use ringtrail::render::{render, Format};
use tokio::sync::mpsc;

use crate::api::{db_error, error};
use crate::params::Params;
use crate::Shared;

/// Rows a fresh stream may start with, at most.
const MAX_BACKLOG: u64 = 1_000;

/// `GET /api/tail`.
pub async fn tail(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let filter = match params.filter(SystemTime::now()) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .or(params.get("after"));
    let cursor = match resume.map(str::parse::<Cursor>) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        None => None,
    };
    let last = match params.get("last").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BACKLOG => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("last: expected 0 to {MAX_BACKLOG}"),
            )
        }
    };
    if state.shards.len() > 1 {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "the live tail follows one database: a sharded cluster's shards commit in no \
             common order (search /logs instead)",
        );
    }
    let Ok(permit) = Arc::clone(&state.tails).try_acquire_owned() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many live tails open");
    };
    let (mut client, wake) = match state.db.listening().await {
        Ok(c) => c,
        Err(e) => return db_error(e),
    };
    let mut rows = Vec::new();
    let mut buf = Vec::new();
    let mut collect = |row: &ringtrail::Row<'_>| {
        buf.clear();
        render(Format::Native, row, &mut buf);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf) {
            rows.push(v);
        }
        ControlFlow::Continue(())
    };
    let mut follower = match cursor {
        Some(cursor) => Follower::resume(filter, cursor),
        None => {
            let backlog = if last == 0 {
                Backlog::Nothing
            } else {
                Backlog::Last(last)
            };
            match Follower::start(&mut client, filter, backlog, &mut collect).await {
                Ok(f) => f,
                Err(e) => return db_error(e),
            }
        }
    };
    let first = event(&rows, follower.cursor());
    let (tx, rx) = mpsc::channel::<Event>(4);
    tokio::spawn(async move {
        let _permit = permit;
        if tx.send(first).await.is_err() {
            return;
        }
        let mut behind = false;
        loop {
            if !behind {
                wait(&wake, &tx).await;
                if tx.is_closed() {
                    return;
                }
            }
            let mut rows = Vec::new();
            let mut buf = Vec::new();
            let polled = follower
                .poll(&mut client, |row| {
                    buf.clear();
                    render(Format::Native, row, &mut buf);
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf) {
                        rows.push(v);
                    }
                    ControlFlow::Continue(())
                })
                .await;
            match polled {
                Ok(p) => {
                    behind = !p.caught_up;
                    if p.batches > 0 && tx.send(event(&rows, follower.cursor())).await.is_err() {
                        return;
                    }
                }
                // The browser reconnects with the last cursor it got.
                Err(_) => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// One poll's rows as one event, with the cursor after them as its id.
fn event(rows: &[serde_json::Value], cursor: &Cursor) -> Event {
    Event::default()
        .event("rows")
        .id(cursor.to_string())
        .data(serde_json::Value::from(rows.to_vec()).to_string())
}

/// Until a batch commits (the `LISTEN` flag), at most [`POLL_INTERVAL`],
/// or the browser goes away.
async fn wait(wake: &Wake, tx: &mpsc::Sender<Event>) {
    let started = Instant::now();
    while started.elapsed() < POLL_INTERVAL && !tx.is_closed() {
        if wake.take() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
