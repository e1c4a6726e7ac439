//! `ringtrail::read::usage` against a real PostgreSQL: audit traces
//! written through the real pipeline (the typed API and the raw `event!`
//! path), a few rows by hand where exact times matter (outside the
//! window, a result after it), then exact sums for every grouping: given
//! costs, priced tokens with fractional prices rounded once per group,
//! no double counting, `(none)`, hostile names kept literal.

use ringtrail_testkit as common;

use std::time::{Duration, SystemTime};

use ringtrail::audit::contract::field;
use ringtrail::audit::{Agent, Finish, Identity, Permission, Point, Tool, Trace, TARGET};
use ringtrail::read::usage::NONE;
use ringtrail::read::{usage, By, Group, Price, Prices, UsageQuery};
use serde_json::json;
use tracing::{dispatcher, event, Level};

const SCRIPT: &str = "<script>alert(1)</script>";
const ESC_AGENT: &str = "x\u{1b}[31mred";
const EVIL_MODEL: &str = "evil\u{1b}]52;c;SGk=\u{7}";

const PRICES: &str = r#"
# USD per million tokens
[models."gpt-4o"]
input = 2.50
output = 10.00
cached = 1.25

[models."gpt-4o-mini"]
input = 0.15
output = 0.60
cached = 0.075

[models.claude]
input = 3
output = "15"
cached = 0.30
"#;

fn group(name: &str, figures: [i64; 5]) -> Group {
    Group {
        group: name.to_owned(),
        calls: figures[0],
        input_tokens: figures[1],
        output_tokens: figures[2],
        cached_tokens: figures[3],
        cost_micro_usd: figures[4],
    }
}

/// Writes the traces; returns the database and the window around them.
fn load() -> (String, SystemTime, SystemTime) {
    let url = common::database();
    let since = SystemTime::now() - Duration::from_secs(60);
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        // ann, Planner, gpt-4o: a model call and a tool; no cost given, so
        // priced: 1000 × 2.5 + 200 × 10 + 400 × 1.25 = 5000 micro-USD.
        let t1 = Trace::with_id("t-1", Identity::user("ann"));
        t1.agent(Agent::new("planner").name("Planner").model("gpt-4o"));
        t1.permission(Permission::allow("p-1"));
        t1.tool(Tool::model_call("chat", "gpt-4o").usage(1000, 200, 400));
        t1.tool(Tool::mcp("search"));
        t1.finish(Finish::success());
        // bob, coder (no name), claude: the result gives the cost, the
        // tokens are not priced again.
        let t2 = Trace::with_id("t-2", Identity::user("bob"));
        t2.agent(Agent::new("coder").model("claude"));
        t2.tool(Tool::model_call("chat", "claude").usage(5000, 100, 0));
        t2.finish(Finish::success().cost_micro_usd(12_345));
        // ann, Planner, twice gpt-4o-mini at fractional prices:
        // 3 × 0.15 + 7 × 0.60 + 1 × 0.075 = 4.725 micro-USD each.
        for id in ["t-3", "t-6"] {
            let t = Trace::with_id(id, Identity::user("ann"));
            t.agent(Agent::new("planner").name("Planner").model("gpt-4o"));
            t.tool(Tool::model_call("chat", "gpt-4o-mini").usage(3, 7, 1));
            t.finish(Finish::success());
        }
        // Hostile names everywhere; dropped unfinished (abandoned).
        let t4 = Trace::with_id("t-4", Identity::user(SCRIPT));
        t4.agent(Agent::new(ESC_AGENT).model(SCRIPT));
        t4.tool(Tool::model_call("chat", EVIL_MODEL).usage(10, 0, 0));
        drop(t4);
        // carol, no agent: a tool with no model; the result (raw
        // `event!`) names its model and gives a cost.
        let t5 = Trace::with_id("t-5", Identity::user("carol"));
        t5.tool(Tool::execution("lookup"));
        event!(target: TARGET, Level::INFO,
            { ringtrail::audit::POINT_FIELD } = Point::Result.as_str(),
            { field::TRACE_ID } = "t-5",
            { field::OUTCOME } = "success",
            { field::REQUEST_MODEL } = "gpt-4o",
            { field::COST_MICRO_USD } = 1_000u64);
        t5.finish(Finish::success());
    });
    guard.flush().unwrap();
    drop(guard);
    let until = SystemTime::now() + Duration::from_secs(1);

    let mut hand = common::HandRows::on(url.clone());
    let mut point = |trace: &str, ts: SystemTime, point: Point, mut fields: serde_json::Value| {
        fields["audit.point"] = json!(point.as_str());
        hand.insert(common::HandRow {
            trace_id: Some(trace),
            ts,
            kind: Some(point.kind()),
            level: ringtrail::row::LEVEL_INFO,
            target: TARGET,
            message: point.as_str(),
            fields,
            user_id: None,
        });
    };
    let now = SystemTime::now();
    // Outside the window: counts for nothing.
    let old = now - Duration::from_secs(3 * 3600);
    point(
        "t-old",
        old,
        Point::Tool,
        json!({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 999_999}),
    );
    point(
        "t-old",
        old,
        Point::Result,
        json!({"outcome": "success", "cost.micro_usd": 777}),
    );
    // In the window, its result with a cost after it: the tokens count,
    // unpriced; the cost counts in the result's window, not this one.
    point(
        "t-late",
        now - Duration::from_secs(30),
        Point::Tool,
        json!({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": "x"}),
    );
    point(
        "t-late",
        until + Duration::from_secs(3600),
        Point::Result,
        json!({"outcome": "success", "cost.micro_usd": 50}),
    );
    (url, since, until)
}

fn run(url: &str, query: &UsageQuery, prices: &Prices) -> Vec<Group> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = common::connect(url).await;
        usage(&client, query, prices).await.expect("usage")
    })
}

#[test]
fn exact_sums_for_every_grouping() {
    let (url, since, until) = load();
    let prices = Prices::parse(PRICES).unwrap();
    let q = |by| UsageQuery { since, until, by };

    assert_eq!(
        run(&url, &q(By::Model), &prices),
        [
            group("claude", [1, 5000, 100, 0, 12_345]),
            // t-1 priced (5000) + t-5's given 1000; t-late's 100 tokens unpriced.
            group("gpt-4o", [3, 1100, 200, 400, 6_000]),
            // 2 × 4.725 = 9.45, rounded once.
            group("gpt-4o-mini", [2, 6, 14, 2, 9]),
            group(NONE, [1, 0, 0, 0, 0]),
            group(EVIL_MODEL, [1, 10, 0, 0, 0]),
        ]
    );
    assert_eq!(
        run(&url, &q(By::User), &prices),
        [
            group("bob", [1, 5000, 100, 0, 12_345]),
            // 5000 + 4.725 + 4.725 = 5009.45: 5009 (rounding per call would say 5010).
            group("ann", [4, 1006, 214, 402, 5_009]),
            group("carol", [1, 0, 0, 0, 1_000]),
            group(NONE, [1, 100, 0, 0, 0]),
            group(SCRIPT, [1, 10, 0, 0, 0]),
        ]
    );
    assert_eq!(
        run(&url, &q(By::Agent), &prices),
        [
            group("coder", [1, 5000, 100, 0, 12_345]),
            group("Planner", [4, 1006, 214, 402, 5_009]),
            group(NONE, [2, 100, 0, 0, 1_000]),
            group(ESC_AGENT, [1, 10, 0, 0, 0]),
        ]
    );
    let days = run(&url, &q(By::Day), &prices);
    let day = |t: SystemTime| {
        ringtrail::time::rfc3339_micros(ringtrail::time::micros(t))[..10].to_owned()
    };
    let total = days.iter().fold([0i64; 5], |mut t, g| {
        assert!(g.group == day(since) || g.group == day(until), "{g:?}");
        for (t, f) in t.iter_mut().zip([
            g.calls,
            g.input_tokens,
            g.output_tokens,
            g.cached_tokens,
            g.cost_micro_usd,
        ]) {
            *t += f;
        }
        t
    });
    assert!(days.windows(2).all(|w| w[0].group < w[1].group), "{days:?}");
    if days.len() == 1 {
        assert_eq!(total, [8, 6116, 314, 402, 18_354]);
    }

    // Without prices only the given costs count.
    let by_model = run(&url, &q(By::Model), &Prices::default());
    let costs: Vec<(&str, i64)> = by_model
        .iter()
        .map(|g| (g.group.as_str(), g.cost_micro_usd))
        .collect();
    assert_eq!(
        costs,
        [
            ("claude", 12_345),
            ("gpt-4o", 1_000),
            ("(none)", 0),
            (EVIL_MODEL, 0),
            ("gpt-4o-mini", 0)
        ]
    );

    // A window holding only the late result: its cost, no calls.
    let later = UsageQuery {
        since: until,
        until: until + Duration::from_secs(7200),
        by: By::Model,
    };
    assert_eq!(
        run(&url, &later, &prices),
        [group("gpt-4o", [0, 0, 0, 0, 50])]
    );
    // An empty window.
    let empty = UsageQuery {
        since: until + Duration::from_secs(7200),
        until: until + Duration::from_secs(7300),
        by: By::User,
    };
    assert_eq!(run(&url, &empty, &prices), []);

    // JSON: exactly the six keys, names literal.
    let json = run(&url, &q(By::Agent), &prices)[3].to_json();
    assert_eq!(
        json,
        json!({"group": ESC_AGENT, "calls": 1, "input_tokens": 10, "output_tokens": 0,
               "cached_tokens": 0, "cost_micro_usd": 0})
    );
}

#[test]
fn the_query_uses_the_audit_index() {
    let url = common::database();
    common::apply_schema(&url, None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plan = rt.block_on(async {
        let client = common::connect(&url).await;
        // Without statistics on an empty table the planner may pick
        // anything: make scans of the table look dear, as they are on a
        // large one.
        client
            .batch_execute("SET enable_seqscan = off")
            .await
            .unwrap();
        let now = SystemTime::now();
        let q = UsageQuery {
            since: now - Duration::from_secs(3600),
            until: now,
            by: By::Model,
        };
        ringtrail::read::usage::explain(&client, &q, false)
            .await
            .unwrap()
    });
    assert!(plan.contains("logs_audit_trace"), "{plan}");
}

#[test]
fn the_example_price_file_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prices.example.toml");
    let prices = Prices::load(&path).unwrap();
    assert_eq!(
        prices.get("gpt-4o"),
        Some(Price {
            input: 2_500_000,
            output: 10_000_000,
            cached: 1_250_000
        })
    );
    assert!(prices.models().count() >= 3);
    let missing = Prices::load(std::path::Path::new("/nonexistent/prices.toml")).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("/nonexistent/prices.toml: cannot read it"),
        "{missing}"
    );
}

#[test]
fn disagreeing_points_take_the_least_value_and_lone_points_are_priced() {
    let mut db = common::HandRows::new();
    let at = SystemTime::now() - Duration::from_secs(60);
    let mut point =
        |trace: Option<&str>, point: Point, user: Option<&str>, mut fields: serde_json::Value| {
            fields["audit.point"] = json!(point.as_str());
            db.insert(common::HandRow {
                trace_id: trace,
                ts: at,
                kind: Some(point.kind()),
                level: ringtrail::row::LEVEL_INFO,
                target: TARGET,
                message: point.as_str(),
                fields,
                user_id: user,
            });
        };
    let t = Some("t-1");
    point(t, Point::Identity, Some("zed"), json!({}));
    point(t, Point::Identity, Some("amy"), json!({}));
    point(
        t,
        Point::Agent,
        None,
        json!({"agent.id": "z-agent", "gen_ai.request.model": "gpt-4o-mini"}),
    );
    point(
        t,
        Point::Agent,
        None,
        json!({"agent.id": "b-agent", "agent.name": "", "gen_ai.request.model": "gpt-4o"}),
    );
    // No model of its own: the least agent model, gpt-4o (1000 × 2.5).
    point(
        t,
        Point::Tool,
        None,
        json!({"gen_ai.tool.name": "search", "gen_ai.usage.input_tokens": 1000}),
    );
    // No trace id: priced with its own model (1 × 10), user from its column.
    point(
        None,
        Point::Tool,
        Some("solo"),
        json!({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": "1"}),
    );
    // A result without a trace id gives its cost under its own model.
    point(
        None,
        Point::Result,
        None,
        json!({"outcome": "success", "cost.micro_usd": 3, "gen_ai.request.model": "claude"}),
    );
    // Not counts: ignored.
    point(
        t,
        Point::Tool,
        None,
        json!({"gen_ai.usage.input_tokens": -5, "gen_ai.usage.output_tokens": 1.5,
                                        "gen_ai.usage.cached_tokens": "12345678901234567890"}),
    );
    let prices = Prices::parse(PRICES).unwrap();
    let now = SystemTime::now();
    let q = |by| UsageQuery {
        since: now - Duration::from_secs(3600),
        until: now,
        by,
    };
    assert_eq!(
        run(&db.url, &q(By::User), &prices),
        [
            group("amy", [2, 1000, 0, 0, 2_500]),
            group("solo", [1, 0, 1, 0, 10]),
            group(NONE, [0, 0, 0, 0, 3])
        ]
    );
    assert_eq!(
        run(&db.url, &q(By::Agent), &prices),
        [
            group("b-agent", [2, 1000, 0, 0, 2_500]),
            group(NONE, [1, 0, 1, 0, 13])
        ]
    );
    assert_eq!(
        run(&db.url, &q(By::Model), &prices),
        [
            group("gpt-4o", [3, 1000, 1, 0, 2_510]),
            group("claude", [0, 0, 0, 0, 3])
        ]
    );
}
