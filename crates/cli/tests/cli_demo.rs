//! `ringtrail demo`: the real binary against a real PostgreSQL. The demo
//! checks its own row count (it fails when the table does not hold what
//! the writer says it wrote); these tests check its report and knobs.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::process::{Command, Output, Stdio};

fn demo(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("demo")
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RINGTRAIL_DATA_DIR", NO_STORE)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("the ringtrail binary runs")
}

/// The first number after `label` in the report.
fn number(report: &str, label: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in\n{report}"));
    line[label.len()..]
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

#[test]
fn the_report_shows_counts_latency_rates_and_the_audit_gaps() {
    let url = common::database();
    let out = demo(&[
        "--database-url",
        &url,
        "--events",
        "20000",
        "--threads",
        "2",
        "--rate",
        "0",
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{report}\n{err}");
    let emitted = number(&report, "events emitted");
    assert!(emitted >= 20_000.0, "{report}");
    let written = number(&report, "written");
    assert_eq!(number(&report, "enqueued"), written + 0.0, "{report}");
    assert_eq!(
        number(&report, "enqueued") + number(&report, "dropped"),
        emitted,
        "{report}"
    );
    assert_eq!(
        number(&report, "rows in table"),
        written + number(&report, "drop reports")
    );
    assert_eq!(common::event_rows(&url).0 as f64, written);
    // Percentiles in order, from a histogram that saw samples.
    let hot = report.lines().find(|l| l.starts_with("hot path")).unwrap();
    let ns: Vec<f64> = hot
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(ns[0] > 0.0 && ns[0] <= ns[1] && ns[1] <= ns[2], "{hot}");
    assert!(number(&report, "ingest rate") > 0.0);
    // Complete and incomplete traces: the gaps summary and one timeline.
    let traces = number(&report, "audit traces");
    assert!(traces >= 200.0, "{report}");
    assert!(report.contains("missing_permission"), "{report}");
    assert!(report.contains("one incomplete trace (`ringtrail trace "));
    // Not a terminal: no progress line, only the plan.
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn duration_runs_for_a_time_instead_of_a_count() {
    let url = common::database();
    let out = demo(&[
        "--database-url",
        &url,
        "--duration",
        "1s",
        "--rate",
        "5000",
        "--threads",
        "1",
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let emitted = number(&report, "events emitted");
    // About 5,000 events in one second; generous bounds (a busy VM).
    assert!((1_000.0..=10_000.0).contains(&emitted), "{report}");
}

#[test]
fn bad_knobs_are_one_line_and_exit_2() {
    for args in [
        &["--duration", "5 parsecs"][..],
        &["--events", "many"][..],
        &["--format", "ecs"][..], // --format needs --jsonl
    ] {
        let mut all = vec!["--throwaway"];
        all.extend(args);
        let out = demo(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ringtrail: "), "{err}");
    }
}
