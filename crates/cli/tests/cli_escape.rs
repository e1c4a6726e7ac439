//! Output cannot attack the reader (issue 22 §2, review finding H3): the
//! real binary against a real PostgreSQL holding hostile text (an OSC 52
//! clipboard write, an 8-bit CSI, cursor-up and erase-line, DEL, bidi
//! overrides and isolates, zero-width characters) in messages, targets,
//! field names and values, trace ids, audit tool names and a checkpoint's
//! key name. Every command's human output must hold none of them raw (an
//! ESC only as a color, with `--color always`), its stderr neither, and
//! `--json` must stay valid JSON that reads back the stored strings.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use ringtrail::audit::Point;
use ringtrail::chain::checkpoint::Checkpoint;
use ringtrail::chain::key::SigningKey;
use ringtrail::chain::link::ChainId;

/// An OSC 52 clipboard write, ended by BEL.
const OSC52: &str = "a\x1b]52;c;SGk=\x07b";
/// An 8-bit CSI (U+009B) erasing the screen.
const CSI8: &str = "x\u{9b}2J";
/// Cursor up and erase the line, then a fake verdict.
const ERASE: &str = "\x1b[1A\x1b[2Kcomplete: no findings";
/// A right-to-left override and an isolate, DEL, zero-width space, BOM.
const BIDI: &str = "\u{202e}exe.gnp\u{2066}\u{7f}\u{200b}\u{feff}";

/// Whether a character must never reach a terminal raw (an oracle
/// written apart from the CLI's own).
fn hostile(c: char) -> bool {
    (c < ' ' && c != '\n')
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

/// Asserts `bytes` has no hostile character; with `color`, an ESC may
/// start an SGR color (`ESC [ digits ; m`) and nothing else.
fn assert_clean(what: &str, bytes: &[u8], color: bool) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut rest = text;
    let mut plain = String::new();
    while let Some(at) = rest.find('\x1b') {
        assert!(color, "{what}: ESC without colors: {text:?}");
        plain.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .find('m')
            .unwrap_or_else(|| panic!("{what}: {text:?}"));
        assert!(
            after.starts_with('[')
                && after[1..end]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b';'),
            "{what}: an ESC that is not a color: {text:?}"
        );
        rest = &after[end + 1..];
    }
    plain.push_str(rest);
    if let Some(c) = plain.chars().find(|&c| hostile(c)) {
        panic!("{what}: raw {c:?} in {text:?}");
    }
}

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

    /// Inserts one WARN row `ago` before now.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        ago: Duration,
        kind: Option<i16>,
        target: &str,
        message: &str,
        fields: Value,
        trace_id: &str,
        user_id: Option<&str>,
    ) {
        self.0.insert(common::HandRow {
            trace_id: Some(trace_id),
            ts: SystemTime::now() - ago,
            kind,
            level: 13,
            target,
            message,
            fields,
            user_id,
        });
    }
}

/// The hostile trace id.
fn trace_id() -> String {
    format!("t-{OSC52}{CSI8}{BIDI}")
}

/// The hostile plain row's target, message and fields.
fn target() -> String {
    format!("app::{OSC52}")
}
fn message() -> String {
    format!("msg {CSI8} {ERASE} {BIDI}")
}
fn fields() -> Value {
    json!({ OSC52: CSI8, "dir": BIDI, format!("k{ERASE}"): 7 })
}

/// A database holding one hostile plain row and a hostile audit trace
/// whose tool ran after a deny (a finding naming the tool and call).
fn hostile_db() -> Db {
    let mut db = Db::new();
    let trace = trace_id();
    let minute = Duration::from_secs(60);
    // 30 s before the first audit point: inside `trace`'s margin.
    db.insert(
        9 * minute + Duration::from_secs(30),
        None,
        &target(),
        &message(),
        fields(),
        &trace,
        Some(BIDI),
    );
    let point = |p: Point, mut fields: Value| {
        fields["audit.point"] = json!(p.as_str());
        (p, fields)
    };
    let points = [
        point(Point::Identity, json!({"session_id": CSI8})),
        point(Point::Agent, json!({"agent.id": OSC52})),
        point(
            Point::Permission,
            json!({"decision": "deny", "policy.id": BIDI, "gen_ai.tool.name": OSC52, "gen_ai.tool.call.id": CSI8}),
        ),
        point(
            Point::Tool,
            json!({"gen_ai.tool.name": OSC52, "gen_ai.tool.call.id": CSI8, "status": ERASE}),
        ),
        point(Point::Result, json!({"outcome": "success"})),
    ];
    for (i, (p, fields)) in points.into_iter().enumerate() {
        let user = (p == Point::Identity).then_some(OSC52);
        db.insert(
            9 * minute - Duration::from_millis(i as u64),
            Some(p.kind()),
            ringtrail::audit::TARGET,
            p.as_str(),
            fields,
            &trace,
            user,
        );
    }
    db
}

/// Exit 0; stdout and stderr clean; returns stdout.
fn clean_ok(db: &Db, args: &[&str], color: bool) -> String {
    let out = db.run(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    assert_clean(&format!("{args:?} stdout"), &out.stdout, color);
    assert_clean(&format!("{args:?} stderr"), &out.stderr, false);
    stdout(&out)
}

/// Each line of `text` as JSON, and the text clean.
fn json_lines(what: &str, text: &str) -> Vec<Value> {
    assert_clean(what, text.as_bytes(), false);
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}")))
        .collect()
}

/// Whether `value` holds the string `text` somewhere.
fn holds(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        Value::Array(items) => items.iter().any(|v| holds(v, text)),
        Value::Object(map) => map.values().any(|v| holds(v, text)),
        _ => false,
    }
}

/// The hostile plain row of native JSON lines, checked field by field.
fn assert_round_trip(what: &str, rows: &[Value]) {
    let row = rows
        .iter()
        .find(|r| r["kind"].is_null())
        .unwrap_or_else(|| panic!("{what}: the plain row in {rows:?}"));
    assert_eq!(row["target"], target(), "{what}");
    assert_eq!(row["message"], message(), "{what}");
    assert_eq!(row["fields"], fields(), "{what}");
    assert_eq!(row["trace_id"], trace_id(), "{what}");
    assert_eq!(row["user_id"], BIDI, "{what}");
}

#[test]
fn query_and_tail_escape_every_stored_text() {
    let db = hostile_db();
    for command in [
        &["query", "--since", "1h"][..],
        &["tail", "-n", "10"][..],
        &["query", "--since", "1h", "--trace-id", &trace_id()][..],
    ] {
        let text = clean_ok(&db, command, false);
        assert_eq!(text.lines().count(), 6, "{command:?}: {text}");
        // The hostile text is there, escaped: `\u{1b}` and `\u{9b}`.
        assert!(
            text.contains("app::a\\u{1b}]52;c;SGk=\\u{7}b"),
            "{command:?}: {text}"
        );
        assert!(text.contains("msg x\\u{9b}2J \\u{1b}[1A"), "{text}");
        assert!(text.contains("dir=\"\\u{202e}exe.gnp\\u{2066}"), "{text}");
        let mut colored = command.to_vec();
        colored.extend(["--color", "always"]);
        let text = clean_ok(&db, &colored, true);
        assert!(text.contains('\x1b'), "colors stay: {text:?}");

        let mut as_json = command.to_vec();
        as_json.push("--json");
        let rows = json_lines("--json", &clean_ok(&db, &as_json, false));
        assert_eq!(rows.len(), 6);
        assert_round_trip(&format!("{command:?} --json"), &rows);
        for format in ["ecs", "ocsf", "otlp", "native"] {
            let mut lines = command.to_vec();
            lines.extend(["--format", format]);
            let rows = json_lines(format, &clean_ok(&db, &lines, false));
            assert_eq!(rows.len(), 6, "{format}");
            for text in [message(), target(), trace_id(), CSI8.to_owned()] {
                assert!(
                    rows.iter().any(|r| holds(r, &text)),
                    "{format}: {text:?} read back"
                );
            }
        }
    }
}

#[test]
fn trace_and_audit_gaps_escape_ids_tool_names_and_findings() {
    let db = hostile_db();
    let trace = trace_id();
    for color in [false, true] {
        let mut args = vec!["trace", trace.as_str()];
        if color {
            args.extend(["--color", "always"]);
        }
        let text = clean_ok(&db, &args, color);
        assert!(text.contains("executed_after_deny"), "{text}");
        assert!(
            text.contains("tool `a\\u{1b}]52;c;SGk=\\u{7}b` (call `x\\u{9b}2J`)"),
            "{text}"
        );
        let mut args = vec!["audit-gaps", "--since", "1h", "--grace", "0s"];
        if color {
            args.extend(["--color", "always"]);
        }
        let text = clean_ok(&db, &args, color);
        assert!(
            text.starts_with("t-a\\u{1b}]52;c;SGk=\\u{7}bx\\u{9b}2J\\u{202e}"),
            "{text}"
        );
        assert!(text.contains("executed_after_deny"), "{text}");
    }

    let doc = json_lines(
        "trace --json",
        &clean_ok(&db, &["trace", &trace, "--json"], false),
    );
    assert_eq!(doc.len(), 1);
    assert_eq!(doc[0]["trace_id"], trace);
    let finding = &doc[0]["findings"][0];
    assert_eq!(finding["code"], "executed_after_deny", "{doc:?}");
    assert!(finding["detail"].as_str().unwrap().contains(OSC52));
    let rows = doc[0]["rows"].as_array().unwrap();
    let plain = rows.iter().find(|r| r["point"].is_null()).unwrap();
    assert_eq!(plain["target"], target());
    assert_eq!(plain["message"], message());
    assert_eq!(plain["fields"], fields());

    let gaps = json_lines(
        "audit-gaps --json",
        &clean_ok(
            &db,
            &["audit-gaps", "--since", "1h", "--grace", "0s", "--json"],
            false,
        ),
    );
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0]["trace_id"], trace);
    assert!(gaps[0]["findings"][0]["detail"]
        .as_str()
        .unwrap()
        .contains(CSI8));

    // A hostile id that matches nothing: the error line is escaped too.
    let missing = format!("{OSC52}-{ERASE}");
    let out = db.run(&["trace", &missing]);
    assert_one_line_failure(&out, 1, "no trace");
    assert_clean("trace of an unknown id", &out.stderr, false);
}

#[test]
fn stats_and_verify_escape_what_the_tables_hold() {
    let db = hostile_db();
    for color in [false, true] {
        let mut args = vec!["stats"];
        if color {
            args.extend(["--color", "always"]);
        }
        let text = clean_ok(&db, &args, color);
        assert!(text.contains("rows") && text.contains("by level"), "{text}");
    }
    let doc = json_lines("stats --json", &clean_ok(&db, &["stats", "--json"], false));
    assert_eq!(doc[0]["rows"], 6);

    // A forged checkpoint row: its key's name carries the escapes (a key
    // name may hold any character but `+` and whitespace), and its note
    // is signed by another key, so the finding's detail names it.
    let evil = SigningKey::from_seed(&format!("k{OSC52}{CSI8}\u{202e}"), [9; 32]).unwrap();
    let honest = SigningKey::from_seed("honest", [7; 32]).unwrap();
    let chain = ChainId([0x0e; 16]);
    let note = Checkpoint {
        chain,
        seq: 1,
        head: [1; 32],
        time_micros: 0,
    }
    .sign(&honest);
    let mut client = common::client(&db.url);
    client
        .execute(
            "INSERT INTO ringtrail.checkpoints (chain_id, seq, head, note, public_key, signed_at) \
             VALUES ($1, 1, $2, $3, $4, now())",
            &[
                &uuid::Uuid::from_bytes(chain.0),
                &[1u8; 32].as_slice(),
                &note,
                &evil.verifier().to_string(),
            ],
        )
        .expect("insert the checkpoint");

    let out = db.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_clean("verify stdout", &out.stdout, false);
    assert_clean("verify stderr", &out.stderr, false);
    let text = stdout(&out);
    assert!(
        text.contains("no signature by key ka\\u{1b}]52;c;SGk=\\u{7}bx\\u{9b}2J\\u{202e}"),
        "{text}"
    );

    let out = db.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_clean("verify --json stderr", &out.stderr, false);
    let findings = json_lines("verify --json", &stdout(&out));
    assert!(
        findings
            .iter()
            .any(|f| f["detail"].as_str().unwrap().contains(evil.name())),
        "{findings:?}"
    );
}

#[test]
fn a_limit_beyond_i64_is_a_usage_error() {
    let too_many = (i64::MAX as u64 + 1).to_string();
    for args in [
        &["query", "--limit", &too_many][..],
        &["tail", "-n", &too_many][..],
        &["tail", "--lines", &too_many][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--database-url", "postgres://nowhere.invalid/db"]);
        let out = run(&all);
        let line = assert_one_line_failure(&out, 2, "is not in 0..=9223372036854775807");
        assert!(line.contains(&too_many), "{line}");
    }
    let db = Db::new();
    let max = i64::MAX.to_string();
    clean_ok(&db, &["query", "--limit", &max], false);
    clean_ok(&db, &["tail", "-n", &max], false);
}
