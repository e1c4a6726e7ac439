//! `ringtrail trace` and `ringtrail audit-gaps`: the real binary against a
//! real PostgreSQL. Rows are inserted with plain SQL, shaped as the
//! writer stores audit points (`kind`, `trace_id` and `user_id` columns,
//! the other fields in `fields`), so these tests depend on the read side
//! only.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::process::Output;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use ringtrail::audit::Point;
use ringtrail::time::{micros, rfc3339_micros};

const MINUTE: Duration = Duration::from_secs(60);

/// A fresh migrated database whose rows the test writes by hand.
struct Db(common::HandRows);

impl std::ops::Deref for Db {
    type Target = common::HandRows;
    fn deref(&self) -> &common::HandRows {
        &self.0
    }
}

impl Db {
    fn new() -> Db {
        Db(common::HandRows::new())
    }

    /// Inserts one row; ids increase with every call.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        trace_id: Option<&str>,
        ts: SystemTime,
        kind: Option<i16>,
        level: i16,
        target: &str,
        message: &str,
        fields: Value,
        user_id: Option<&str>,
    ) -> String {
        self.0.insert(common::HandRow {
            trace_id,
            ts,
            kind,
            level,
            target,
            message,
            fields,
            user_id,
        })
    }

    /// An audit point: target `ringtrail::audit`, `audit.point` in fields.
    fn point(&mut self, trace: &str, ts: SystemTime, point: Point, fields: Value) -> String {
        let mut fields = fields;
        fields["audit.point"] = json!(point.as_str());
        let level = if fields["decision"] == "deny" || fields["outcome"] == "abandoned" {
            ringtrail::row::LEVEL_WARN
        } else {
            ringtrail::row::LEVEL_INFO
        };
        let user = (point == Point::Identity).then_some("u-1");
        self.insert(
            Some(trace),
            ts,
            Some(point.kind()),
            level,
            ringtrail::audit::TARGET,
            point.as_str(),
            fields,
            user,
        )
    }

    /// A plain DEBUG row of `trace`.
    fn plain(&mut self, trace: Option<&str>, ts: SystemTime, message: &str) -> String {
        self.insert(
            trace,
            ts,
            None,
            ringtrail::row::LEVEL_DEBUG,
            "my_app::search",
            message,
            json!({"terms": 3}),
            None,
        )
    }

    /// A complete trace of five points, one millisecond apart from `at`.
    fn complete(&mut self, trace: &str, at: SystemTime) {
        let ms = Duration::from_millis(1);
        self.point(trace, at, Point::Identity, json!({"session_id": "s-9"}));
        self.point(trace, at + ms, Point::Agent, json!({"agent.id": "planner"}));
        self.point(
            trace,
            at + 2 * ms,
            Point::Permission,
            json!({"decision": "allow", "policy.id": "p-7", "gen_ai.tool.name": "search", "gen_ai.tool.call.id": "c1"}),
        );
        self.point(
            trace,
            at + 3 * ms,
            Point::Tool,
            json!({"gen_ai.tool.name": "search", "gen_ai.tool.call.id": "c1", "status": "ok"}),
        );
        self.point(
            trace,
            at + 4 * ms,
            Point::Result,
            json!({"outcome": "success"}),
        );
    }
}

/// Exit code 0 and nothing on stderr.
fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    assert_eq!(stderr(out), "");
}

fn codes(findings: &Value) -> Vec<&str> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect()
}

#[test]
fn a_complete_trace_in_order_with_its_points_marked() {
    let mut db = Db::new();
    let at = SystemTime::now() - 10 * MINUTE;
    let ms = Duration::from_millis(1);
    // Plain rows: one 30 s before the first point (inside the margin),
    // one two minutes before (outside it), two at the same instant as
    // the tool point (ordered by id), another trace's, and none at all.
    let early = db.plain(Some("t-ok"), at - Duration::from_secs(30), "warming up");
    db.plain(Some("t-ok"), at - 2 * MINUTE, "long before");
    db.complete("t-ok", at);
    let same_b = db.plain(Some("t-ok"), at + 3 * ms, "same instant b");
    let same_a = db.plain(Some("t-ok"), at + 3 * ms, "same instant a");
    db.plain(Some("t-other"), at + 2 * ms, "another trace");
    db.plain(None, at + 2 * ms, "no trace");

    let out = db.run(&["trace", "t-ok", "--json"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "one document: {text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["trace_id"], "t-ok");
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["findings"], json!([]));
    let rows = doc["rows"].as_array().unwrap();
    let got: Vec<(&str, Value)> = rows
        .iter()
        .map(|r| (r["message"].as_str().unwrap(), r["point"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("warming up", Value::Null),
            ("identity", json!("identity")),
            ("agent", json!("agent")),
            ("permission", json!("permission")),
            ("tool", json!("tool")),
            ("same instant b", Value::Null),
            ("same instant a", Value::Null),
            ("result", json!("result")),
        ]
    );
    // Ordered by ts, then id.
    let keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["ts"].as_str().unwrap(), r["id"].as_str().unwrap()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(rows[0]["id"], early.as_str());
    assert!(same_b < same_a, "b was inserted first");
    assert_eq!(rows[5]["id"], same_a.as_str().min(same_b.as_str()));
    // Every key of the contract, and the row's shape.
    let tool = &rows[4];
    for key in ["ts", "id", "point", "level", "target", "message", "fields"] {
        assert!(tool.get(key).is_some(), "{key} in {tool}");
    }
    assert_eq!(tool["level"], "INFO");
    assert_eq!(tool["target"], "ringtrail::audit");
    assert_eq!(tool["fields"]["gen_ai.tool.name"], "search");
    assert_eq!(tool["ts"], rfc3339_micros(micros(at + 3 * ms)));
    assert_eq!(rows[1]["context"], json!({"user_id": "u-1"}));
    assert_eq!(rows[0]["level"], "DEBUG");
    assert_eq!(rows[0]["fields"], json!({"terms": 3}));

    // The timeline, for people.
    let out = db.run(&["trace", "t-ok"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.starts_with("trace t-ok: 8 rows, 5 audit points\n"),
        "{text}"
    );
    for marker in [
        "[identity]",
        "[agent]",
        "[permission]",
        "[tool]",
        "[result]",
    ] {
        assert_eq!(text.matches(marker).count(), 1, "{marker} in {text}");
    }
    assert!(text.contains("user_id=u-1 session_id=s-9"), "{text}");
    assert!(
        text.contains("decision=allow policy.id=p-7 gen_ai.tool.name=search"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("complete: no findings"), "{text}");
    assert!(!text.contains("long before"), "{text}");
}

#[test]
fn an_incomplete_trace_has_its_findings() {
    let mut db = Db::new();
    let at = SystemTime::now() - 10 * MINUTE;
    let ms = Duration::from_millis(1);
    // No agent, an unauthorized tool, then a denied one, no result.
    db.point("t-bad", at, Point::Identity, json!({}));
    let unauthorized = db.point(
        "t-bad",
        at + ms,
        Point::Tool,
        json!({"gen_ai.tool.name": "search", "gen_ai.tool.call.id": "c1"}),
    );
    db.plain(Some("t-bad"), at + 2 * ms, "between");
    db.point(
        "t-bad",
        at + 3 * ms,
        Point::Permission,
        json!({"decision": "deny", "policy.id": "p-7", "gen_ai.tool.name": "rm"}),
    );
    db.point(
        "t-bad",
        at + 4 * ms,
        Point::Tool,
        json!({"gen_ai.tool.name": "rm"}),
    );

    let out = db.run(&["trace", "t-bad", "--json"]);
    assert_ok(&out);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["complete"], false);
    assert_eq!(
        codes(&doc["findings"]),
        [
            "missing_agent",
            "missing_permission",
            "executed_after_deny",
            "missing_result"
        ]
    );
    let f = &doc["findings"][1];
    assert_eq!(f["row"], 1, "indexes the rows");
    assert_eq!(f["row_id"], unauthorized.as_str());
    assert_eq!(f["tool"], "search");
    assert_eq!(f["call_id"], "c1");
    assert_eq!(doc["findings"][2]["row"], 4, "the plain row counts");
    assert_eq!(doc["findings"][2]["decision"], "deny");
    assert_eq!(doc["rows"][2]["point"], Value::Null);

    // Within a longer grace the trace is still in flight.
    let out = db.run(&["trace", "t-bad", "--json", "--grace", "1h"]);
    assert_ok(&out);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        codes(&doc["findings"]),
        ["missing_agent", "missing_permission", "executed_after_deny"]
    );

    let out = db.run(&["trace", "t-bad"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("incomplete: 4 findings"), "{text}");
    assert!(text.contains("trace  missing_agent"), "{text}");
    assert!(text.contains("#1     missing_permission"), "{text}");
    assert!(text.contains("#4     executed_after_deny"), "{text}");

    // A trace of plain rows only is found too (no audit point at all).
    let out = db.run(&["trace", "t-plain", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    db.plain(Some("t-plain"), at, "just a log");
    let out = db.run(&["trace", "t-plain", "--json"]);
    assert_ok(&out);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["rows"].as_array().unwrap().len(), 1);
    assert_eq!(
        codes(&doc["findings"]),
        ["missing_identity", "missing_agent", "missing_result"]
    );
}

#[test]
fn an_unknown_trace_exits_1_with_one_line() {
    let mut db = Db::new();
    db.complete("t-ok", SystemTime::now());
    for json in [false, true] {
        let mut args = vec!["trace", "no-such-trace"];
        if json {
            args.push("--json");
        }
        let out = db.run(&args);
        let err = assert_one_line_failure(&out, 1, "");
        assert_eq!(err, r#"ringtrail: no trace "no-such-trace""#);
    }
}

#[test]
fn audit_gaps_lists_exactly_the_incomplete_traces() {
    let mut db = Db::new();
    let now = SystemTime::now();
    let ms = Duration::from_millis(1);
    let recent = now - 10 * MINUTE;
    db.complete("a-complete", recent);
    db.complete("b-complete", recent + ms);
    // c: a tool without permission.
    db.point("c-no-permission", recent, Point::Identity, json!({}));
    db.point(
        "c-no-permission",
        recent + ms,
        Point::Agent,
        json!({"agent.id": "x"}),
    );
    db.point(
        "c-no-permission",
        recent + 2 * ms,
        Point::Tool,
        json!({"gen_ai.tool.name": "rm"}),
    );
    db.point(
        "c-no-permission",
        recent + 3 * ms,
        Point::Result,
        json!({"outcome": "success"}),
    );
    // d: abandoned.
    db.point("d-abandoned", recent, Point::Identity, json!({}));
    db.point(
        "d-abandoned",
        recent + ms,
        Point::Agent,
        json!({"agent.id": "x"}),
    );
    db.point(
        "d-abandoned",
        recent + 2 * ms,
        Point::Result,
        json!({"outcome": "abandoned"}),
    );
    // e: no result, stale; f: no result, in flight.
    db.point("e-stale", recent, Point::Identity, json!({}));
    db.point(
        "e-stale",
        recent + ms,
        Point::Agent,
        json!({"agent.id": "x"}),
    );
    db.point(
        "f-in-flight",
        now - Duration::from_secs(5),
        Point::Identity,
        json!({}),
    );
    db.point(
        "f-in-flight",
        now - Duration::from_secs(4),
        Point::Agent,
        json!({"agent.id": "x"}),
    );
    // g: incomplete, but three hours ago.
    db.point(
        "g-old",
        now - 180 * MINUTE,
        Point::Agent,
        json!({"agent.id": "x"}),
    );
    // h: started two hours ago (before the window), ended in it,
    // out of order.
    db.point(
        "h-long",
        now - 120 * MINUTE,
        Point::Agent,
        json!({"agent.id": "x"}),
    );
    db.point("h-long", now - 119 * MINUTE, Point::Identity, json!({}));
    db.point(
        "h-long",
        now - 30 * MINUTE,
        Point::Result,
        json!({"outcome": "failure"}),
    );
    // Plain rows are not points, and do not make a trace.
    for trace in ["a-complete", "c-no-permission", "z-plain-only"] {
        db.plain(Some(trace), recent + ms, "log");
    }

    let out = db.run(&["audit-gaps", "--json"]);
    assert_ok(&out);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let got: Vec<(&str, Vec<&str>, u64)> = lines
        .iter()
        .map(|g| {
            (
                g["trace_id"].as_str().unwrap(),
                codes(&g["findings"]),
                g["points"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("c-no-permission", vec!["missing_permission"], 4),
            ("d-abandoned", vec!["abandoned"], 3),
            ("e-stale", vec!["missing_result"], 2),
            ("h-long", vec!["out_of_order"], 3),
        ]
    );
    let h = &lines[3];
    assert_eq!(h["first_ts"], rfc3339_micros(micros(now - 120 * MINUTE)));
    assert_eq!(h["last_ts"], rfc3339_micros(micros(now - 30 * MINUTE)));
    for line in &lines {
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["findings", "first_ts", "last_ts", "points", "trace_id"],
            "{line}"
        );
    }

    // A window given by timestamps: only g.
    let since = rfc3339_micros(micros(now - 240 * MINUTE));
    let until = rfc3339_micros(micros(now - 150 * MINUTE));
    let out = db.run(&["audit-gaps", "--json", "--since", &since, "--until", &until]);
    assert_ok(&out);
    let ids: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["trace_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["g-old"]);

    // A short grace flags f; a long one spares e.
    let out = db.run(&["audit-gaps", "--json", "--grace", "1s"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("f-in-flight"));
    let out = db.run(&["audit-gaps", "--json", "--grace", "1h"]);
    assert_ok(&out);
    assert!(!stdout(&out).contains("e-stale"));

    // For people: each gap and a summary line.
    let out = db.run(&["audit-gaps", "--since", "3h30m"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("g-old  1 point  "), "{text}");
    assert!(
        text.contains("  missing_permission   tool `rm` ran"),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("5 incomplete traces of 8 with audit points from "),
        "{last}"
    );
    assert!(last.ends_with("(grace 5m)"), "{last}");
}

#[test]
fn the_gaps_query_runs_on_the_partial_index() {
    let db = Db::new();
    let mut client = common::client(&db.url);
    // 2,000 traces among 20,000 plain rows.
    client
        .batch_execute(
            "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, truncated, kind)
             SELECT now() - interval '1 day' + t * interval '1 s' + k * interval '1 ms',
                    gen_random_uuid(), 9, 'ringtrail::audit', '',
                    jsonb_build_object('decision', 'allow', 'gen_ai.tool.name', 'search', 'outcome', 'success'),
                    't' || t, false, k
             FROM generate_series(1, 2000) t, generate_series(1, 5) k;
             INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, truncated)
             SELECT now() - interval '1 day' + n * interval '100 ms', gen_random_uuid(), 5, 'app', 'm',
                    '{}', 't' || (n / 10), false
             FROM generate_series(1, 20000) n;
             ANALYZE ringtrail.logs;",
        )
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plan = rt.block_on(async {
        let client = common::connect(&db.url).await;
        let now = SystemTime::now();
        let gaps = ringtrail::read::gaps(
            &client,
            now - 2 * 24 * 60 * MINUTE,
            now,
            ringtrail::read::DEFAULT_GRACE,
            now,
        )
        .await
        .unwrap();
        assert!(gaps.is_empty(), "all complete: {:?}", gaps.first());
        ringtrail::read::gaps::explain(&client, now - 60 * MINUTE, now, false)
            .await
            .unwrap()
    });
    assert!(plan.contains("logs_audit_trace"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

#[test]
fn user_mistakes_are_one_line_and_a_documented_code() {
    // No database needed: these fail before connecting.
    let url = ["--database-url", "postgres://nobody@127.0.0.1:1/none"];
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &["audit-gaps", "--since", "yesterday"],
            2,
            "--since: \"yesterday\"",
        ),
        (&["audit-gaps", "--since", "1.5h"], 2, "fractions"),
        (
            &["audit-gaps", "--until", "2026-13-01T00:00:00Z"],
            2,
            "--until",
        ),
        (&["audit-gaps", "--grace", "5"], 2, "needs a unit"),
        (&["trace", "t", "--grace", "99999999d"], 2, "too long"),
        (
            &["audit-gaps", "--since", "1h", "--until", "2h"],
            2,
            "is not before",
        ),
        (&["audit-gaps"], 1, "cannot connect to the database"),
        (&["trace", "t"], 1, "cannot connect to the database"),
    ];
    for (args, code, needle) in cases {
        let mut all = args.to_vec();
        all.extend(url);
        let out = run(&all);
        let err = assert_one_line_failure(&out, code, "");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // A URL that does not parse; the URL (maybe a password) is not echoed.
    let out = run(&[
        "trace",
        "t",
        "--database-url",
        "postgres://u:secret@h:notaport/db",
    ]);
    let err = assert_one_line_failure(&out, 1, "");
    assert!(err.contains("invalid --database-url"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    // No database URL and a local store that cannot be made: a run-time
    // error on one line.
    let err = assert_one_line_failure(&run(&["audit-gaps"]), 1, "");
    assert!(err.contains("cannot open the local store in"), "{err}");
    // An unknown flag, an unknown subcommand: clap's usage errors, folded
    // onto one line.
    for (args, needle) in [
        (&["trace", "t", "--bogus"][..], "--bogus"),
        (&["frobnicate"][..], "frobnicate"),
    ] {
        let err = assert_one_line_failure(&run(args), 2, "");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn traces_written_through_the_pipeline() {
    use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool, Trace};

    let url = common::migrated_database();
    let (dispatch, guard) = common::start(common::builder(&url));
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", trace_id = "tp-ok");
        let _entered = span.enter();
        let trace = Trace::with_id("tp-ok", Identity::user("u-1").session("s-9"));
        trace.agent(Agent::new("planner").model("gpt-4o"));
        trace.permission(Permission::allow("p-7").tool("search").call_id("c1"));
        tracing::debug!(terms = 3u64, "query planned");
        trace.tool(Tool::mcp("search").call_id("c1").status(Status::Ok));
        trace.finish(Finish::success());
        // Dropped without a result.
        drop(Trace::with_id("tp-dropped", Identity::user("u-2")));
    });
    guard.flush().expect("flush");

    let db = Db(common::HandRows::on(url));
    let out = db.run(&["trace", "tp-ok", "--json"]);
    assert_ok(&out);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["complete"], true, "{doc:#}");
    let points: Vec<&Value> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["point"])
        .collect();
    assert_eq!(
        points,
        [
            &json!("identity"),
            &json!("agent"),
            &json!("permission"),
            &Value::Null,
            &json!("tool"),
            &json!("result")
        ],
        "{doc:#}"
    );
    assert_eq!(doc["rows"][0]["context"]["user_id"], "u-1", "{doc:#}");
    assert_eq!(doc["rows"][3]["message"], "query planned");

    let out = db.run(&["audit-gaps", "--json"]);
    assert_ok(&out);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["trace_id"], "tp-dropped");
    assert_eq!(codes(&lines[0]["findings"]), ["missing_agent", "abandoned"]);
    assert_eq!(lines[0]["points"], 2);
}
