//! Audit points through the real pipeline into a real PostgreSQL: the
//! `kind` column, context ids given as event fields, the typed API and the
//! raw `event!` path writing identical rows, the guard's `abandoned`
//! result, and the audit reserve under a flood of plain logs.

use ringtrail_testkit as common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use ringtrail::audit::{
    Agent, Decision, Finish, Identity, Permission, Point, Status, Tool, Trace, TARGET,
};
use tracing::{dispatcher, event, Level};

/// Rows of one trace: (kind, level, target, message, fields, context
/// columns but trace_id), ordered by kind.
type PointRow = (
    Option<i16>,
    i16,
    String,
    String,
    serde_json::Value,
    Vec<Option<String>>,
);

fn trace_rows(url: &str, trace_id: &str) -> Vec<PointRow> {
    common::client(url)
        .query(
            "SELECT kind, level, target, message, fields, user_id, session_id, task_id,
                    context_id, client_id
             FROM ringtrail.logs WHERE trace_id = $1 ORDER BY kind, ts, id",
            &[&trace_id],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                (5..10).map(|i| r.get(i)).collect(),
            )
        })
        .collect()
}

#[test]
fn every_point_fills_kind_and_plain_events_leave_it_null() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        let trace = Trace::with_id("t-kinds", Identity::user("u-1"));
        trace.agent(Agent::new("planner"));
        trace.permission(Permission::allow("p-1").tool("search"));
        trace.tool(Tool::execution("search"));
        trace.finish(Finish::success());
        tracing::info!(trace_id = "t-kinds", "a plain log in the trace");
        // The audit target without a valid point is not a point.
        event!(target: TARGET, Level::INFO, audit.point = "nonsense", trace_id = "t-kinds");
        // A valid point name on another target is not a point either.
        event!(Level::INFO, audit.point = "tool", trace_id = "t-kinds");
    });
    guard.flush().unwrap();
    let kinds: Vec<Option<i16>> = trace_rows(&url, "t-kinds").iter().map(|r| r.0).collect();
    assert_eq!(
        kinds,
        [
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            None,
            None,
            None
        ]
    );
    for point in Point::ALL {
        assert_eq!(Some(point.kind()), kinds[point.kind() as usize - 1]);
    }
    // The view names the points as the contract does.
    let names: Vec<(i16, String)> = common::client(&url)
        .query(
            "SELECT kind, point FROM ringtrail.logs_view WHERE kind IS NOT NULL ORDER BY kind",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(i16, String)> = Point::ALL
        .iter()
        .map(|p| (p.kind(), p.as_str().to_owned()))
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn context_ids_on_the_event_fill_their_columns_and_win_over_the_span() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!(
            "request",
            trace_id = "t-span",
            user_id = "u-span",
            session_id = "s-span"
        );
        let _entered = span.enter();
        tracing::info!(
            user_id = "u-event",
            task_id = 42u64,
            client_id = -7i64,
            other = "kept",
            "event ids"
        );
        tracing::info!("span ids only");
    });
    guard.flush().unwrap();
    let rows = common::client(&url)
        .query(
            "SELECT message, trace_id, user_id, session_id, task_id, client_id, fields
             FROM ringtrail.logs ORDER BY ts, id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.get::<_, &str>(0), "event ids");
    assert_eq!(r.get::<_, Option<&str>>(1), Some("t-span"));
    assert_eq!(
        r.get::<_, Option<&str>>(2),
        Some("u-event"),
        "the event wins"
    );
    assert_eq!(r.get::<_, Option<&str>>(3), Some("s-span"));
    assert_eq!(r.get::<_, Option<&str>>(4), Some("42"), "numbers as text");
    assert_eq!(r.get::<_, Option<&str>>(5), Some("-7"));
    let fields: serde_json::Value = r.get(6);
    assert_eq!(
        fields,
        serde_json::json!({"other": "kept"}),
        "not repeated in fields"
    );
    let r = &rows[1];
    assert_eq!(r.get::<_, Option<&str>>(2), Some("u-span"));
    assert_eq!(r.get::<_, Option<&str>>(4), None);
}

/// The raw wire contract, written by hand: what code that cannot use the
/// typed API emits.
fn raw_trace(trace_id: &str) {
    event!(target: "ringtrail::audit", Level::INFO, audit.point = "identity", trace_id = trace_id,
        user_id = "u-9", session_id = "s-9", tenant.id = "acme", auth.method = "oidc",
        source.ip = "10.0.0.8");
    event!(target: "ringtrail::audit", Level::INFO, audit.point = "agent", trace_id = trace_id,
        agent.id = "planner", agent.name = "Planner", agent.version = "1.4.0",
        gen_ai.request.model = "gpt-4o", gen_ai.provider.name = "openai",
        mcp.server.name = "files");
    event!(target: "ringtrail::audit", Level::INFO, audit.point = "permission", trace_id = trace_id,
        decision = "allow", policy.id = "p-7", policy.version = "3", reason = "role: analyst",
        gen_ai.tool.name = "search", gen_ai.tool.call.id = "c1");
    event!(target: "ringtrail::audit", Level::INFO, audit.point = "tool", trace_id = trace_id,
        gen_ai.tool.name = "search", gen_ai.tool.call.id = "c1", mcp.method.name = "tools/call",
        duration_ns = 1_500_000u64, status = "ok", gen_ai.usage.input_tokens = 120u64,
        gen_ai.usage.output_tokens = 30u64, gen_ai.usage.cached_tokens = 0u64);
    event!(target: "ringtrail::audit", Level::INFO, audit.point = "result", trace_id = trace_id,
        outcome = "success", duration_ns = 9_000_000u64, tokens.total = 150u64,
        cost.micro_usd = 1_250u64);
}

/// The same trace through the typed API.
fn typed_trace(trace_id: &str) {
    let trace = Trace::with_id(
        trace_id,
        Identity::user("u-9")
            .session("s-9")
            .tenant("acme")
            .auth_method("oidc")
            .source_ip("10.0.0.8"),
    );
    trace.agent(
        Agent::new("planner")
            .name("Planner")
            .version("1.4.0")
            .model("gpt-4o")
            .provider("openai")
            .mcp_server("files"),
    );
    trace.permission(
        Permission::new(Decision::Allow, "p-7")
            .policy_version("3")
            .reason("role: analyst")
            .tool("search")
            .call_id("c1"),
    );
    trace.tool(
        Tool::mcp("search")
            .call_id("c1")
            .duration(Duration::from_micros(1_500))
            .status(Status::Ok)
            .usage(120, 30, 0),
    );
    trace.finish(
        Finish::success()
            .duration(Duration::from_millis(9))
            .tokens_total(150)
            .cost_micro_usd(1_250),
    );
}

#[test]
fn the_typed_api_and_the_raw_event_path_write_identical_rows() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        raw_trace("t-raw");
        typed_trace("t-typed");
    });
    guard.flush().unwrap();
    let raw = trace_rows(&url, "t-raw");
    let typed = trace_rows(&url, "t-typed");
    assert_eq!(raw.len(), 5);
    assert_eq!(typed, raw);
    // And the identity's user and session went to their columns.
    assert_eq!(raw[0].5[..2], [Some("u-9".into()), Some("s-9".into())]);
}

#[test]
fn a_dropped_trace_emits_abandoned_even_in_a_panic() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        fn early_return(fail: bool) -> Result<(), &'static str> {
            let trace = Trace::with_id("t-early", Identity::user("u-1"));
            trace.agent(Agent::new("a"));
            if fail {
                return Err("upstream refused"); // no finish: abandoned
            }
            trace.finish(Finish::success());
            Ok(())
        }
        assert!(early_return(true).is_err());
        let panicked = std::panic::catch_unwind(|| {
            let trace = Trace::with_id("t-panic", Identity::user("u-1"));
            trace.tool(Tool::execution("rm"));
            panic!("the handler panicked");
        });
        assert!(panicked.is_err());
    });
    guard.flush().unwrap();
    for trace_id in ["t-early", "t-panic"] {
        let rows = trace_rows(&url, trace_id);
        let result = rows.last().unwrap();
        assert_eq!(result.0, Some(Point::Result.kind()), "{trace_id}");
        assert_eq!(result.4["outcome"], "abandoned", "{trace_id}");
        assert_eq!(result.1, ringtrail::row::LEVEL_WARN, "{trace_id}");
    }
}

/// Three threads flood DEBUG events through `dispatch` while a fourth
/// writes `traces` complete five-point traces, each point right after the
/// one before; returns once every trace is written and the flood stopped.
fn flood_while_tracing(dispatch: &tracing::Dispatch, traces: usize) {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for t in 0..3u64 {
            let (dispatch, stop) = (dispatch.clone(), &stop);
            s.spawn(move || {
                dispatcher::with_default(&dispatch, || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        tracing::debug!(t, i, "flood");
                        i += 1;
                    }
                })
            });
        }
        let dispatch = dispatch.clone();
        let auditor = s.spawn(move || {
            dispatcher::with_default(&dispatch, || {
                for n in 0..traces {
                    let trace = Trace::start(Identity::user("u-1"));
                    trace.agent(Agent::new("planner"));
                    trace.permission(Permission::allow("p-1").tool("search"));
                    trace.tool(Tool::execution("search").status(Status::Ok));
                    trace.finish(Finish::success().tokens_total(n as u64));
                }
            })
        });
        // The flood stops however the auditor ends, a panic included.
        let done = auditor.join();
        stop.store(true, Ordering::Relaxed);
        done.unwrap();
    });
}

#[test]
fn a_debug_flood_never_costs_an_audit_point() {
    let url = common::database();
    // An audit point waits for the reserve as long as it takes: with the
    // default 50 ms, a writer slowed down by a loaded machine could make
    // it drop points, and this test would measure the machine.
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .capacity(1_024)
            .audit_timeout(Duration::from_secs(3_600)),
    );
    const TRACES: usize = 300;
    flood_while_tracing(&dispatch, TRACES);
    guard.flush().unwrap();
    let stats = guard.stats();
    assert!(
        stats.dropped_ring_full > 0,
        "the flood must overflow the ring, or this test proves nothing: {stats:?}"
    );
    assert_eq!(stats.audit_dropped, 0, "{stats:?}");
    let complete: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM (
                 SELECT trace_id FROM ringtrail.logs WHERE kind IS NOT NULL
                 GROUP BY trace_id
                 HAVING array_agg(kind ORDER BY kind) = '{1,2,3,4,5}'::smallint[]) t",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(complete, TRACES as i64, "every point of every trace landed");
    assert_eq!(
        common::reported_drops(&url, "ring_full"),
        stats.dropped_ring_full as i64,
        "the flood's drops are reported in band"
    );
}

#[test]
fn an_oversized_trace_id_is_cut_and_never_fails_its_batch() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).record_size(8_192));
    let long = "é".repeat(3_000); // 6,000 bytes: past a btree entry's limit
    dispatcher::with_default(&dispatch, || {
        let trace = Trace::with_id("t-fine", Identity::user("u-1"));
        event!(target: TARGET, Level::INFO, audit.point = "tool", trace_id = long.as_str(),
            gen_ai.tool.name = "search");
        trace.finish(Finish::success());
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.dead_lettered), (3, 0), "{stats:?}");
    let (len, truncated): (i32, bool) = {
        let r = common::client(&url)
            .query_one(
                "SELECT octet_length(trace_id), truncated FROM ringtrail.logs WHERE kind = 4",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (len, truncated),
        (254, true),
        "cut to 255 bytes on a character boundary"
    );
    assert_eq!(trace_rows(&url, "t-fine").len(), 2);
}

/// Every finding code, alone and combined, and the complete traces that
/// must not be flagged, written through the pipeline and found by
/// `read::gaps` (the query `ringtrail audit-gaps` runs) in PostgreSQL.
#[test]
fn gaps_finds_every_code_and_flags_no_complete_trace() {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::SystemTime;

    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    let started = SystemTime::now() - Duration::from_secs(60);
    let id = |t: &str| Identity::user("u-1").emit(t);
    let agent = |t: &str| Agent::new("planner").emit(t);
    let allow = |t: &str, tool: &str| Permission::allow("p").tool(tool).emit(t);
    let tool = |t: &str, name: &str| Tool::execution(name).emit(t);
    let done = |t: &str| Finish::success().emit(t);
    dispatcher::with_default(&dispatch, || {
        // Complete: call-id matching (the permission's name differs).
        let t = "ok-call-id";
        id(t);
        agent(t);
        Permission::allow("p").tool("other").call_id("c1").emit(t);
        Tool::execution("search").call_id("c1").emit(t);
        done(t);
        // Complete: name matching, the tool carrying a call id.
        let t = "ok-name";
        id(t);
        agent(t);
        allow(t, "search");
        Tool::execution("search").call_id("c9").emit(t);
        done(t);
        // Complete: a blanket permission covers every later tool.
        let t = "ok-blanket";
        id(t);
        agent(t);
        Permission::allow("p").emit(t);
        tool(t, "a");
        tool(t, "b");
        done(t);
        // Complete: needs_approval, then approved.
        let t = "ok-approved";
        id(t);
        agent(t);
        Permission::needs_approval("p").tool("wire").emit(t);
        Permission::approved("p")
            .tool("wire")
            .approver("ops")
            .emit(t);
        tool(t, "wire");
        done(t);
        // Complete: no tool, no permission needed.
        let t = "ok-no-tools";
        id(t);
        agent(t);
        done(t);
        // Complete: the trace id comes from the span, not the events.
        {
            let span = tracing::info_span!("request", trace_id = "ok-from-span", user_id = "u-2");
            let _entered = span.enter();
            let trace = Trace::with_id("", Identity::from_span());
            trace.agent(Agent::new("planner"));
            trace.permission(Permission::allow("p").tool("search"));
            trace.tool(Tool::execution("search"));
            trace.finish(Finish::success());
        }
        // One code each.
        let t = "missing-identity";
        agent(t);
        done(t);
        let t = "missing-agent";
        id(t);
        done(t);
        let t = "missing-permission";
        id(t);
        agent(t);
        allow(t, "read");
        tool(t, "write");
        done(t);
        let t = "after-deny";
        id(t);
        agent(t);
        Permission::deny("p").tool("rm").emit(t);
        tool(t, "rm");
        done(t);
        let t = "needs-approval-only";
        id(t);
        agent(t);
        Permission::needs_approval("p").tool("wire").emit(t);
        tool(t, "wire");
        done(t);
        let t = "missing-result";
        id(t);
        agent(t);
        let t = "abandoned";
        let trace = Trace::with_id(t, Identity::user("u-1"));
        trace.agent(Agent::new("a"));
        drop(trace); // never finished
        let t = "late-identity";
        agent(t);
        id(t);
        done(t);
        let t = "after-result";
        id(t);
        agent(t);
        done(t);
        tool(t, "x");
        // Combined.
        let t = "combined";
        agent(t);
        tool(t, "x");
        Finish::abandoned().emit(t);
    });
    guard.flush().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let gaps = rt.block_on(async {
        let client = common::connect(&url).await;
        let now = SystemTime::now() + Duration::from_secs(1);
        ringtrail::read::gaps(&client, started, now, Duration::ZERO, now)
            .await
            .unwrap()
    });
    let found: BTreeMap<String, BTreeSet<&str>> = gaps
        .iter()
        .map(|g| {
            let codes = g.findings.iter().map(|f| f.code.as_str()).collect();
            (g.trace_id.clone(), codes)
        })
        .collect();
    let expected: BTreeMap<String, BTreeSet<&str>> = [
        ("missing-identity", &["missing_identity"][..]),
        ("missing-agent", &["missing_agent"]),
        ("missing-permission", &["missing_permission"]),
        ("after-deny", &["executed_after_deny"]),
        ("needs-approval-only", &["executed_after_deny"]),
        ("missing-result", &["missing_result"]),
        ("abandoned", &["abandoned"]),
        ("late-identity", &["out_of_order"]),
        ("after-result", &["out_of_order", "missing_permission"]),
        (
            "combined",
            &["missing_identity", "missing_permission", "abandoned"],
        ),
    ]
    .into_iter()
    .map(|(t, codes)| (t.to_owned(), codes.iter().copied().collect()))
    .collect();
    assert_eq!(
        found, expected,
        "no complete trace is flagged, every gap is"
    );
}

/// Issue 22 §7: three threads flood DEBUG events into a small ring while a
/// fourth writes complete five-point traces, each point right after the
/// one before. Some points find a standard slot and the next one a slot of
/// the audit reserve, which the writer drains first; within one
/// microsecond the stored order must still be the order the thread
/// emitted them in, so `audit-gaps` must flag none of these traces.
///
/// Audit points cannot be dropped here (an hour's `audit_timeout`), so the
/// assertions hold however fast the machine is.
#[test]
fn a_flood_never_reorders_a_trace() {
    use std::time::SystemTime;

    const TRACES: usize = 2_000;
    let url = common::database();
    let started = SystemTime::now() - Duration::from_secs(60);
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .capacity(512)
            .audit_timeout(Duration::from_secs(3_600)),
    );
    flood_while_tracing(&dispatch, TRACES);
    guard.flush().unwrap();
    let stats = guard.stats();
    assert!(
        stats.dropped_ring_full > 0,
        "the flood must overflow the ring, or this test proves nothing: {stats:?}"
    );
    assert_eq!(stats.audit_dropped, 0, "{stats:?}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (gaps, scan) = rt.block_on(async {
        let client = common::connect(&url).await;
        let now = SystemTime::now() + Duration::from_secs(1);
        let mut gaps = Vec::new();
        let scan =
            ringtrail::read::each_gap(&client, started, now, Duration::ZERO, now, |g| gaps.push(g))
                .await
                .unwrap();
        (gaps, scan)
    });
    assert_eq!(scan.traces, TRACES as u64, "{scan:?}");
    assert_eq!(
        scan.points,
        5 * TRACES as u64,
        "every point landed: {scan:?}"
    );
    let flagged: Vec<String> = gaps
        .iter()
        .take(5)
        .map(|g| format!("{}: {:?}", g.trace_id, g.findings))
        .collect();
    assert!(
        gaps.is_empty(),
        "{} of {TRACES} complete traces flagged, e.g. {flagged:#?}",
        gaps.len()
    );
}

/// The read side orders a trace by `ts`, then `seq`, then `id`: five
/// points stored in one microsecond, their ids the wrong way round (as
/// when the writer drains a later point first), are one complete trace by
/// `seq`; the same rows without a sequence number are not. And the
/// limits: a trace larger than the reader's limit is checked that far and
/// reported `trace_too_large`; `last` and `query` take any `u64`.
#[test]
fn the_timeline_is_ordered_by_seq_within_a_microsecond() {
    use std::ops::ControlFlow;
    use std::time::SystemTime;

    use ringtrail::read::{self, ExportFilter};

    let url = common::database();
    drop(common::start(common::builder(&url)).1); // migrated
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = common::connect(&url).await;
        client
            .batch_execute(
                "INSERT INTO ringtrail.logs
                     (ts, id, level, target, message, fields, trace_id, truncated, kind, seq)
                 SELECT date_trunc('second', now()) - interval '1 minute',
                        ('00000000-0000-7000-8000-' || lpad((10 * t + 6 - n)::text, 12, '0'))::uuid,
                        9, 'ringtrail::audit', '', f::jsonb, id, false, n,
                        CASE WHEN t = 1 THEN 100 + n ELSE 0 END
                 FROM (VALUES (1, 't-seq'), (2, 't-no-seq')) AS trace(t, id),
                      (VALUES (1, '{\"audit.point\": \"identity\"}'),
                              (2, '{\"audit.point\": \"agent\", \"agent.id\": \"a\"}'),
                              (3, '{\"audit.point\": \"permission\", \"decision\": \"allow\",
                                    \"policy.id\": \"p\", \"gen_ai.tool.name\": \"search\"}'),
                              (4, '{\"audit.point\": \"tool\", \"gen_ai.tool.name\": \"search\"}'),
                              (5, '{\"audit.point\": \"result\", \"outcome\": \"success\"}'))
                          AS point(n, f)",
            )
            .await
            .unwrap();
        let now = SystemTime::now() + Duration::from_secs(1);
        let since = now - Duration::from_secs(600);
        let grace = Duration::ZERO;

        let gaps = read::gaps(&client, since, now, grace, now).await.unwrap();
        let flagged: Vec<&str> = gaps.iter().map(|g| g.trace_id.as_str()).collect();
        assert_eq!(flagged, ["t-no-seq"], "{gaps:#?}");
        let report = read::trace(&client, "t-seq", now, grace)
            .await
            .unwrap()
            .unwrap();
        let points: Vec<Option<Point>> = report.rows.iter().map(|r| r.point).collect();
        assert_eq!(points, Point::ALL.map(Some));
        assert!(report.complete(), "{:?}", report.findings);
        let report = read::trace(&client, "t-no-seq", now, grace)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.rows[0].point, Some(Point::Result), "by id alone");

        // Past the limit: the points checked, then trace_too_large.
        let report = read::trace_limited(&client, "t-seq", now, grace, 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.rows.len(), 3);
        let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["trace_too_large"]);
        let mut limited = Vec::new();
        let scan = read::each_gap_limited(&client, since, now, grace, now, 3, |g| limited.push(g))
            .await
            .unwrap();
        assert_eq!((scan.traces, scan.points, scan.gaps), (2, 10, 2));
        let seq = limited.iter().find(|g| g.trace_id == "t-seq").unwrap();
        assert_eq!(seq.points, 5, "counted past the limit");
        let codes: Vec<&str> = seq.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["trace_too_large"]);

        // `tail -n` and `query --limit` with any u64, oldest first.
        let filter = ExportFilter::default();
        for n in [u64::MAX, 10] {
            let mut seen = 0;
            let done = read::last(&client, &filter, n, |_| {
                seen += 1;
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
            assert_eq!((done.rows, seen), (10, 10));
        }
        let mut ids = Vec::new();
        read::last(&client, &filter, 3, |row| {
            ids.push(row.id);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
        assert!(
            ids.len() == 3 && ids.is_sorted(),
            "the newest 3, oldest first"
        );
        let done = read::query(&client, &filter, Some(u64::MAX), |_| {
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
        assert_eq!(done.rows, 10);
    });
}
