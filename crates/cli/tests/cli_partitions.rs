//! `ringtrail migrate` and `ringtrail retention`: the real binary against
//! a real PostgreSQL. What they print (text and `--json`), what they do to
//! the schema, and their exit codes and one-line errors.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run_with(args: &[&str], database_url: Option<&str>) -> Output {
    let mut command = Command::new(bin());
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RINGTRAIL_DATA_DIR", NO_STORE)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command.output().expect("the ringtrail binary runs")
}

/// Exactly one JSON document on stdout.
fn one_document(stdout: &str) -> Value {
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn scalar(url: &str, sql: &str) -> i64 {
    common::client(url).query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn migrate_applies_the_schema_creates_partitions_and_says_so() {
    let url = common::database();
    let text = assert_success(&run(&["migrate", "--database-url", &url]));
    let lines: Vec<&str> = text.lines().collect();
    let n = ringtrail::schema::MIGRATIONS.len();
    assert_eq!(lines.len(), n + 4 + 1, "{text}");
    assert_eq!(lines[4], "applied 0005_partitions");
    assert!(lines[n].starts_with("created ringtrail.logs_p"), "{text}");
    assert_eq!(
        lines[n + 4],
        format!("{n} migrations applied, 4 partitions created")
    );
    // Today and three days ahead, and DEFAULT.
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ringtrail.logs'::regclass"
        ),
        5
    );
    // Again: nothing to do, as JSON, with DATABASE_URL instead of the flag.
    let doc = one_document(&assert_success(&run_with(
        &["migrate", "--json", "--ahead", "5"],
        Some(&url),
    )));
    assert_eq!(doc["applied"], serde_json::json!([]));
    let created = doc["created"].as_array().unwrap();
    assert_eq!(created.len(), 2, "days 4 and 5: {doc}");
    assert_eq!(created[0]["moved"], 0);
    assert!(created[0]["partition"]
        .as_str()
        .unwrap()
        .starts_with("ringtrail.logs_p"));
    assert!(created[0]["from"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00.000000Z"));
    let text = assert_success(&run(&["migrate", "--database-url", &url, "--ahead", "5"]));
    assert_eq!(text, "0 migrations applied, 0 partitions created\n");
}

#[test]
fn retention_drops_old_partitions_logs_them_and_dry_runs() {
    let url = common::database();
    assert_success(&run(&["migrate", "--database-url", &url]));
    let mut client = common::client(&url);
    client
        .batch_execute(
            "CREATE TABLE ringtrail.logs_p20200101 PARTITION OF ringtrail.logs
                 FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-01-02 00:00:00+00');
             INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
             SELECT '2020-01-01 12:00:00+00', gen_random_uuid(), 9, 't', 'm', '{}', false
             FROM generate_series(1, 2);
             INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
             VALUES (now(), gen_random_uuid(), 9, 't', 'm', '{}', false);",
        )
        .unwrap();
    let before = scalar(
        &url,
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ringtrail.logs'::regclass",
    );

    let doc = one_document(&assert_success(&run(&[
        "retention",
        "--keep",
        "30d",
        "--dry-run",
        "--json",
        "--database-url",
        &url,
    ])));
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["keep"], "30d");
    assert_eq!(
        doc["partitions"],
        serde_json::json!([{
            "partition": "ringtrail.logs_p20200101",
            "rows": 2,
            "from": "2020-01-01T00:00:00.000000Z",
            "to": "2020-01-02T00:00:00.000000Z",
        }])
    );
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM ringtrail.retention_log"),
        0
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM ringtrail.logs"), 3);

    let text = assert_success(&run(&[
        "retention",
        "--keep",
        "30d",
        "--database-url",
        &url,
    ]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "dropped ringtrail.logs_p20200101  2 rows  2020-01-01T00:00:00.000000Z → 2020-01-02T00:00:00.000000Z"
    );
    assert!(
        lines[1].starts_with("1 partition dropped (cutoff "),
        "{text}"
    );
    assert_eq!(lines.len(), 2);
    let log = client
        .query_one(
            "SELECT partition, rows, range_from = '2020-01-01 00:00:00+00', dropped_by
             FROM ringtrail.retention_log",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            log.get::<_, String>(0),
            log.get::<_, i64>(1),
            log.get::<_, bool>(2),
            log.get::<_, String>(3)
        ),
        (
            "ringtrail.logs_p20200101".into(),
            2,
            true,
            "ringtrail retention".into()
        )
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM ringtrail.logs"), 1);
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ringtrail.logs'::regclass"
        ),
        before - 1
    );
    // Nothing left to drop.
    let text = assert_success(&run(&[
        "retention",
        "--keep",
        "30d",
        "--database-url",
        &url,
    ]));
    assert!(text.starts_with("0 partitions dropped (cutoff "), "{text}");
}

#[test]
fn mistakes_are_one_line_and_a_documented_code() {
    let unreachable = "postgres://nobody@127.0.0.1:1/none";
    let malformed = "postgres://nobody@127.0.0.1:notaport/none";
    let cases: [(&[&str], i32, &str); 10] = [
        (
            &["migrate", "--database-url", unreachable],
            1,
            "cannot connect to the database",
        ),
        (
            &["migrate", "--database-url", malformed],
            1,
            "invalid --database-url",
        ),
        (
            &["migrate", "--database-url", unreachable, "--width", "10m"],
            2,
            "partition width",
        ),
        (
            &["migrate", "--database-url", unreachable, "--width", "soon"],
            2,
            "--width",
        ),
        (
            &["retention", "--keep", "30d", "--database-url", unreachable],
            1,
            "cannot connect to the database",
        ),
        (
            &["retention", "--keep", "30d", "--database-url", malformed],
            1,
            "invalid --database-url",
        ),
        (
            &[
                "retention",
                "--keep",
                "thirty days",
                "--database-url",
                unreachable,
            ],
            2,
            "--keep",
        ),
        (
            &["retention", "--keep=-1d", "--database-url", unreachable],
            2,
            "--keep",
        ),
        (&["retention", "--database-url", unreachable], 2, "--keep"),
        // No URL: the local store, which the harness's RINGTRAIL_DATA_DIR
        // makes impossible.
        (
            &["retention", "--keep", "30d"],
            1,
            "cannot open the local store in",
        ),
    ];
    for (args, code, needle) in cases {
        assert_one_line_failure(&run(args), code, needle);
    }
    // DATABASE_URL malformed: the same.
    assert_one_line_failure(
        &run_with(&["retention", "--keep", "1d"], Some(malformed)),
        1,
        "invalid --database-url",
    );
}

#[test]
fn help_describes_both_commands() {
    for (command, needle) in [("migrate", "--ahead"), ("retention", "--dry-run")] {
        let out = run(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{text}");
        assert!(text.contains("--database-url"), "{text}");
    }
    let out = run(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("migrate") && text.contains("retention"),
        "{text}"
    );
}

/// A `--keep` shorter than one partition would drop every partition
/// before now: refused (exit 2, one line) unless `--force`; `6m` is six
/// minutes, and the error says so.
#[test]
fn a_keep_shorter_than_a_partition_needs_force() {
    let url = common::migrated_database();
    let partitions =
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'ringtrail.logs'::regclass";
    let before = scalar(&url, partitions);
    let err = assert_one_line_failure(
        &run(&["retention", "--keep", "6m", "--database-url", &url]),
        2,
        "shorter than one partition (1d)",
    );
    assert!(err.contains("m is minutes: for months"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_one_line_failure(
        &run(&["retention", "--keep", "0s", "--database-url", &url]),
        2,
        "shorter than one partition",
    );
    assert_one_line_failure(
        &run(&[
            "retention",
            "--keep",
            "23h",
            "--dry-run",
            "--database-url",
            &url,
        ]),
        2,
        "shorter than one partition",
    );
    assert_eq!(scalar(&url, partitions), before, "nothing dropped");
    let out = assert_success(&run(&[
        "retention",
        "--keep",
        "6m",
        "--force",
        "--dry-run",
        "--database-url",
        &url,
    ]));
    assert!(out.contains("would be dropped"), "{out}");
    assert_eq!(scalar(&url, partitions), before, "a dry run drops nothing");
}
