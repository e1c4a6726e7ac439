//! The JSON-lines sink through the real pipeline: alone (no database),
//! beside a real PostgreSQL, rotated, with a reader that stops reading,
//! and through a PostgreSQL outage. Lines are compared with what the real
//! `ringtrail export` binary prints for the same rows.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ringtrail::{Format, Jsonl};
use ringtrail_cluster::{ClusterOptions, StopMode, TempCluster};
use serde_json::Value;
use tracing::dispatcher;

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ringtrail-jsonl-test-{name}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every line of `text`, parsed; asserts the text is whole lines.
fn parse(text: &str) -> Vec<Value> {
    assert!(text.is_empty() || text.ends_with('\n'), "whole lines only");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The events of the tests: a message, numbers, a string, a bool, a
/// context id, and sometimes a secret for redaction.
fn emit(n: u64) {
    for i in 0..n {
        if i % 10 == 0 {
            tracing::warn!(i, user_id = "u-7", password = "hunter2", "sign-in {i}");
        } else {
            tracing::info!(i, path = "/checkout", ok = i % 2 == 0, "request {i}");
        }
    }
}

#[test]
fn alone_it_needs_no_database_and_writes_every_event_as_one_ecs_line() {
    let dir = dir("alone");
    let path = dir.join("events.ndjson");
    let (layer, guard) = ringtrail::Builder::new()
        .jsonl(Jsonl::file(&path, Format::Ecs))
        .service_name("checkout")
        .build()
        .expect("no database needed");
    dispatcher::with_default(&common::dispatch(layer), || emit(1_000));
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(
        (stats.written, stats.lost, stats.enqueued),
        (1_000, 0, 1_000)
    );
    assert_eq!((stats.jsonl.written, stats.jsonl.missed), (1_000, 0));
    common::assert_counts_add_up(&stats);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(stats.jsonl.bytes, text.len() as u64);
    let lines = parse(&text);
    assert_eq!(lines.len(), 1_000);
    for (line, raw) in lines.iter().zip(text.lines()) {
        assert!(raw.starts_with(r#"{"@timestamp":""#), "{raw}");
        assert_eq!(line["service.name"], "checkout");
        assert_eq!(line["ecs.version"], "9.4.0");
    }
    // Redaction ran before the line was rendered.
    assert!(!text.contains("hunter2"));
    assert_eq!(lines[0]["user.id"], "u-7");
    // Written in order: one thread, one shard.
    let numbers: Vec<u64> = lines
        .iter()
        .map(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, (0..1_000).collect::<Vec<_>>());
    guard.shutdown(Duration::from_secs(5)).unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn rotation_keeps_n_files_of_whole_lines_under_the_size_limit() {
    let dir = dir("rotate");
    let path = dir.join("app.ndjson");
    let (layer, guard) = ringtrail::Builder::new()
        .jsonl(
            Jsonl::file(&path, Format::Native)
                .rotate_bytes(16 * 1024)
                .keep(3),
        )
        .batch_rows(100)
        .build()
        .unwrap();
    dispatcher::with_default(&common::dispatch(layer), || emit(3_000));
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.jsonl.written, 3_000);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["app.ndjson", "app.ndjson.1", "app.ndjson.2", "app.ndjson.3"]
    );
    // ~400 bytes a line: far more than four files' worth.
    assert!(stats.jsonl.rotations >= 10, "{:?}", stats.jsonl);
    let mut seen = Vec::new();
    for name in ["app.ndjson.3", "app.ndjson.2", "app.ndjson.1", "app.ndjson"] {
        let text = fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.len() <= 16 * 1024, "{name}: {} bytes", text.len());
        for line in parse(&text) {
            seen.push(line["fields"]["i"].as_u64().unwrap());
        }
    }
    // The newest lines, in order, with no gap and none twice, ending with
    // the last event.
    let first = seen[0];
    assert_eq!(seen, (first..3_000).collect::<Vec<_>>());
    assert!(seen.len() > 100, "four files hold {} lines", seen.len());
    let _ = fs::remove_dir_all(&dir);
}

/// `ringtrail export --format f` of the whole table.
fn export(url: &str, format: Format, service: &str) -> String {
    let out = Command::new(bin())
        .args([
            "export",
            "--format",
            format.as_str(),
            "--service-name",
            service,
        ])
        .args(["--database-url", url])
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of `text` in sorted order (the sink writes in drain order,
/// an export in (ts, id) order).
fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn beside_postgresql_every_row_goes_to_both_and_the_lines_equal_an_export() {
    for format in Format::ALL {
        let url = common::database();
        let dir = dir(&format!("both-{format}"));
        let path = dir.join("both.ndjson");
        let (layer, guard) = common::builder(&url)
            .jsonl(Jsonl::file(&path, format))
            .service_name("checkout")
            .build()
            .unwrap();
        dispatcher::with_default(&common::dispatch(layer), || {
            emit(500);
            // Fields in an order jsonb changes, and a name given twice.
            tracing::info!(zeta = 1, a = "x", mid = 2.5, a = "y", "reordered");
        });
        guard.flush().unwrap();
        let stats = guard.stats();
        assert_eq!((stats.written, stats.jsonl.written), (501, 501), "{format}");
        assert_eq!(common::event_rows(&url), (501, 501));
        let file = fs::read_to_string(&path).unwrap();
        assert_eq!(parse(&file).len(), 501);
        let exported = export(&url, format, "checkout");
        assert_eq!(
            sorted(&file),
            sorted(&exported),
            "{format}: the sink's lines and the export's are byte-identical"
        );
        drop(guard);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// A FIFO whose read end is open but never read: the writer of the JSON
/// lines blocks once the pipe's buffer is full, like a stalled `| shipper`.
fn stalled_fifo(dir: &Path) -> (PathBuf, fs::File) {
    let path = dir.join("stalled.fifo");
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    // O_RDWR on a FIFO opens without waiting for a writer (Linux); this end
    // is only ever read at the end of the test.
    let reader = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (path, reader)
}

#[test]
fn a_stalled_reader_costs_only_the_file_its_lines_while_postgresql_keeps_committing() {
    let url = common::database();
    let dir = dir("stalled");
    let (fifo, mut reader) = stalled_fifo(&dir);
    let (layer, guard) = common::builder(&url)
        .jsonl(Jsonl::file(&fifo, Format::Native).queue_bytes(64 * 1024))
        .stall_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    for _ in 0..5 {
        dispatcher::with_default(&dispatch, || emit(2_000));
        guard
            .flush()
            .expect("PostgreSQL commits whatever the file does");
    }
    let stats = guard.stats();
    assert_eq!(stats.written, 10_000, "{stats:?}");
    assert_eq!(common::event_rows(&url), (10_000, 10_000));
    common::assert_counts_add_up(&stats);
    // The pipe holds 64 KiB; most lines could not go anywhere.
    assert!(stats.jsonl.missed > 5_000, "{:?}", stats.jsonl);
    // One batch is still stuck in its write to the pipe.
    assert!(
        stats.jsonl.written + stats.jsonl.missed < 10_000,
        "{:?}",
        stats.jsonl
    );
    // The reader wakes up: the lines that were written are whole, and once
    // lines flow again the stream itself says what it missed.
    let drain = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    text.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&text).contains("\"after\"") {
                        break;
                    }
                }
            }
        }
        String::from_utf8(text).unwrap()
    });
    // Once the reader has let the blocked write through, lines flow again.
    let before = guard.stats().jsonl.batches;
    let waited = std::time::Instant::now();
    while guard.stats().jsonl.batches == before {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the output never moved"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    dispatcher::with_default(&dispatch, || tracing::info!(after = true, "after"));
    guard.flush().unwrap();
    let text = drain.join().unwrap();
    let stats = guard.stats();
    assert_eq!(
        stats.jsonl.written + stats.jsonl.missed,
        10_001,
        "every event written or missed, once: {:?}",
        stats.jsonl
    );
    let lines = parse(&text[..text.rfind('\n').unwrap() + 1]);
    let missed: u64 = lines
        .iter()
        .filter(|l| l["fields"]["reason"] == "jsonl_missed")
        .map(|l| l["fields"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        missed,
        guard.stats().jsonl.missed,
        "every miss is reported in band"
    );
    assert!(lines.iter().any(|l| l["message"] == "after"));
    drop(guard);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_postgresql_outage_does_not_stop_the_file() {
    let pg = TempCluster::start_with(&ClusterOptions {
        fsync: false,
        settings: Vec::new(),
    })
    .unwrap();
    let url = pg.create_database("outage").unwrap();
    let dir = dir("outage");
    let path = dir.join("outage.ndjson");
    let (layer, guard) = common::builder(&url)
        .jsonl(Jsonl::file(&path, Format::Otlp))
        .max_retries(1)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || emit(1_000));
    guard.flush().unwrap();
    pg.stop(StopMode::Fast).unwrap();
    dispatcher::with_default(&dispatch, || emit(2_000));
    let flushed = guard.flush();
    assert!(flushed.is_err(), "no spool: the database's rows are lost");
    let stats = guard.stats();
    assert_eq!((stats.written, stats.lost), (1_000, 2_000), "{stats:?}");
    assert_eq!((stats.jsonl.written, stats.jsonl.missed), (3_000, 0));
    let lines = parse(&fs::read_to_string(&path).unwrap());
    // Every event, plus the in-band report of PostgreSQL's loss (reports
    // go to both sinks; this one says `lost`).
    let events = lines
        .iter()
        .filter(|l| !l.to_string().contains("ringtrail::dropped"))
        .count();
    assert_eq!(events, 3_000);
    drop(guard);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn standard_output_that_nobody_reads_does_not_stop_postgresql_ingest() {
    let url = common::database();
    // `ringtrail demo --jsonl -`: lines on stdout, the report on stderr.
    // Nobody reads stdout until the process has exited.
    let mut child = Command::new(bin())
        .args([
            "demo",
            "--database-url",
            &url,
            "--jsonl",
            "-",
            "--format",
            "ecs",
        ])
        .args(["--threads", "2", "--events", "40000", "--rate", "0"])
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let report = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let status = child.wait().unwrap();
    let report = report.join().unwrap();
    assert!(status.success(), "{report}");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    // The demo itself checks rows in the table == written + drop reports.
    let number = |label: &str| -> u64 {
        let line = report
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} in {report}"));
        line[label.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let enqueued = number("enqueued");
    assert_eq!(number("written"), enqueued, "{report}");
    let (rows, distinct) = common::event_rows(&url);
    assert_eq!((rows as u64, distinct as u64), (enqueued, enqueued));
    let lines_line = report
        .lines()
        .find(|l| l.starts_with("json lines"))
        .unwrap();
    let missed: u64 = lines_line
        .split(", ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(missed > 0, "a pipe nobody reads holds 64 KiB: {lines_line}");
    // What did reach the pipe is whole lines.
    let whole = &stdout[..stdout.rfind('\n').map_or(0, |i| i + 1)];
    assert!(!parse(whole).is_empty());
}
