//! `ringtrail usage`: the real binary against a real PostgreSQL. Rows are
//! inserted with plain SQL shaped as the writer stores audit points (the
//! library's rules are tested through the pipeline in the root's
//! `tests/usage.rs`): the table's exact figures, hostile group names
//! escaped for people and literal in JSON, `--json`'s keys, and the
//! failures (a bad price file, a bad `--by`).

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use ringtrail::audit::{Point, TARGET};

const SCRIPT: &str = "<script>alert(1)</script>";
const ESC_MODEL: &str = "evil\u{1b}[2J\u{9b}31m";

/// A fresh database holding two traces: a hostile model's (priced) and
/// gpt-4o's, whose result gives the cost.
fn db() -> common::HandRows {
    let mut db = common::HandRows::new();
    let at = SystemTime::now() - Duration::from_secs(600);
    let mut point = |trace: &str, point: Point, user: Option<&str>, mut fields: Value| {
        fields["audit.point"] = json!(point.as_str());
        db.insert(common::HandRow {
            trace_id: Some(trace),
            ts: at,
            kind: Some(point.kind()),
            level: ringtrail::row::LEVEL_INFO,
            target: TARGET,
            message: point.as_str(),
            fields,
            user_id: user,
        });
    };
    point("t-1", Point::Identity, Some(SCRIPT), json!({}));
    point(
        "t-1",
        Point::Agent,
        None,
        json!({"agent.id": "a", "gen_ai.request.model": ESC_MODEL}),
    );
    point(
        "t-1",
        Point::Tool,
        None,
        json!({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 1_234_567,
                 "gen_ai.usage.output_tokens": 1_000, "gen_ai.usage.cached_tokens": 3}),
    );
    point("t-2", Point::Identity, Some("bob"), json!({}));
    point(
        "t-2",
        Point::Tool,
        None,
        json!({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                 "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 20}),
    );
    point(
        "t-2",
        Point::Result,
        None,
        json!({"outcome": "success", "cost.micro_usd": 2_500_001}),
    );
    db
}

fn prices_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ringtrail-usage-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_table_is_exact_and_escaped_and_json_is_literal() {
    let db = db();
    // 1,234,567 × 0.5 + 1,000 × 1.5 + 3 × 0.1 = 618,783.8 micro-USD: 618,784.
    let prices = prices_file(
        "hostile.toml",
        "[models.\"evil\\u001b[2J\\u009b31m\"]\ninput = 0.5\noutput = 1.5\ncached = 0.1\n",
    );
    let prices = prices.to_str().unwrap();

    // Colored, the styles are the printer's own; the stored text is escaped.
    let out = assert_success(&db.run(&["usage", "--prices", prices, "--color", "always"]));
    assert!(out.contains("evil\\u{1b}[2J\\u{9b}31m"), "{out:?}");
    assert!(
        !out.contains('\u{9b}') && !out.contains("\u{1b}[2J"),
        "{out:?}"
    );

    let out = assert_success(&db.run(&["usage", "--prices", prices]));
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{9b}'),
        "raw control bytes: {out:?}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[1].starts_with("gpt-4o "), "{out}");
    assert!(lines[1].ends_with("  2.500001"), "{out}");
    assert!(lines[2].starts_with("evil\\u{1b}[2J\\u{9b}31m"), "{out}");
    for figure in ["1,234,567", "1,000", "  3", "0.618784"] {
        assert!(lines[2].contains(figure), "{figure} in {out}");
    }
    assert!(
        lines[3].starts_with("total")
            && lines[3].contains("1,234,577")
            && lines[3].ends_with("3.118785"),
        "{out}"
    );
    assert_eq!(lines[4], "");
    assert!(
        lines[5].starts_with("by model, ") && lines[5].contains("prices from"),
        "{out}"
    );

    let out = assert_success(&db.run(&["usage", "--by", "user", "--prices", prices]));
    assert!(
        out.contains(SCRIPT),
        "shown as text (a terminal does not run it): {out}"
    );

    // --json: the six keys, the names literal (JSON escapes the control bytes).
    let out = assert_success(&db.run(&["usage", "--json", "--prices", prices]));
    let groups: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            json!({"group": "gpt-4o", "calls": 1, "input_tokens": 10, "output_tokens": 20,
                   "cached_tokens": 0, "cost_micro_usd": 2_500_001}),
            json!({"group": ESC_MODEL, "calls": 1, "input_tokens": 1_234_567, "output_tokens": 1_000,
                   "cached_tokens": 3, "cost_micro_usd": 618_784}),
        ]
    );
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{9b}'),
        "{out:?}"
    );
    let out = assert_success(&db.run(&["usage", "--json", "--by", "user"]));
    let users: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users[0]["group"], "bob");
    assert_eq!(users[1]["group"], SCRIPT);
    for g in &users {
        let keys: Vec<&str> = g.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = [
            "group",
            "calls",
            "input_tokens",
            "output_tokens",
            "cached_tokens",
            "cost_micro_usd",
        ];
        want.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, want);
    }

    // A window before the rows: an empty table, a zero total.
    let out = assert_success(&db.run(&["usage", "--since", "3h", "--until", "2h", "--by", "day"]));
    assert!(out.lines().nth(1).unwrap().starts_with("total"), "{out}");
    let out = assert_success(&db.run(&["usage", "--since", "3h", "--until", "2h", "--json"]));
    assert_eq!(out, "");
}

#[test]
fn mistakes_are_usage_errors() {
    let bad = prices_file(
        "bad.toml",
        "[models.\"gpt-4o\"]\ninput = -2.50\noutput = 10\ncached = 1\n",
    );
    let out = run(&[
        "usage",
        "--prices",
        bad.to_str().unwrap(),
        "--database-url",
        "postgres://127.0.0.1:1/none",
    ]);
    assert_one_line_failure(&out, 2, "model \"gpt-4o\": `input` is negative");

    let out = run(&["usage", "--prices", "/nonexistent/prices.toml"]);
    assert_one_line_failure(&out, 2, "/nonexistent/prices.toml: cannot read it");

    let broken = prices_file("broken.toml", "[models.\"m\"\ninput = 1\n");
    let out = run(&["usage", "--prices", broken.to_str().unwrap()]);
    assert_one_line_failure(&out, 2, "not valid TOML (line 1)");

    let out = run(&["usage", "--by", "bogus"]);
    assert_one_line_failure(&out, 2, "--by: \"bogus\" is not a grouping");

    let out = run(&["usage", "--since", "1h", "--until", "2h"]);
    assert_one_line_failure(&out, 2, "is not before --until");

    // An unreachable database is a run-time failure.
    let out = run(&[
        "usage",
        "--database-url",
        "postgres://127.0.0.1:1/none?connect_timeout=2",
    ]);
    assert_one_line_failure(&out, 1, "cannot connect");
}
