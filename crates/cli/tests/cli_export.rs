//! `ringtrail export`: the real binary against a real PostgreSQL. Rows are
//! written through the real pipeline (the layer, the writer, binary
//! COPY), so the export reads what the writer stores; a large table for
//! the memory check is filled with `INSERT … SELECT generate_series`.

use ringtrail_testkit as common;
use ringtrail_testkit::cli::*;

use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use ringtrail::audit::{Agent, Finish, Identity, Permission, Status, Tool};
use ringtrail::read::ExportFilter;
use ringtrail::render::{Format, Renderer};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// `ringtrail export --database-url url args...`, asserting exit 0 and
/// an empty stderr (it is not a terminal); returns stdout.
fn export(url: &str, args: &[&str]) -> String {
    let mut all = vec!["export", "--database-url", url];
    all.extend(args);
    let out = run(&all);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    assert_eq!(err, "", "{args:?}: nothing on stderr off a terminal");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Every line parsed as JSON.
fn lines(text: &str) -> Vec<Value> {
    assert!(text.is_empty() || text.ends_with('\n'), "whole lines");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The rows of `filter` rendered in `format` in this process, through
/// `ringtrail::read::export` and a `Renderer`; also checks that they come
/// ordered by (ts, id).
fn render_in_process(url: &str, filter: &ExportFilter, format: Format) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = common::connect(url).await;
        let mut renderer = Renderer::new(format);
        let mut out = Vec::new();
        let mut last = (i64::MIN, [0u8; 16]);
        let done = ringtrail::read::export(&client, filter, |row| {
            let key = (row.ts_unix_nanos, row.id);
            assert!(key >= last, "ordered by ts, id");
            last = key;
            renderer.render(row, &mut out);
            ControlFlow::Continue(())
        })
        .await
        .expect("export");
        assert!(!done.stopped);
        assert_eq!(
            done.rows as usize,
            out.iter().filter(|b| **b == b'\n').count()
        );
        String::from_utf8(out).unwrap()
    })
}

fn count(url: &str, condition: &str) -> usize {
    let n: i64 = common::client(url)
        .query_one(
            &format!("SELECT count(*) FROM ringtrail.logs WHERE {condition}"),
            &[],
        )
        .unwrap()
        .get(0);
    n as usize
}

/// Audit points of one trace, a plain ERROR, a WARN, debug rows and a row
/// with a field of every type, through the real pipeline.
fn write_events(url: &str) {
    let (dispatch, guard) = common::start(common::builder(url));
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", trace_id = TRACE, user_id = "u-1");
        let _entered = span.enter();
        Identity::user("u-1")
            .session("s-9")
            .source_ip("10.0.0.8")
            .emit(TRACE);
        Agent::new("planner").model("gpt-4o").emit(TRACE);
        Permission::allow("p-7")
            .tool("search")
            .call_id("c1")
            .emit(TRACE);
        Tool::execution("search")
            .call_id("c1")
            .status(Status::Ok)
            .duration(Duration::from_millis(12))
            .emit(TRACE);
        Finish::success().emit(TRACE);
        tracing::error!(error.message = "disk full", "write failed");
        tracing::warn!(attempt = 3u64, "retrying");
        drop(_entered);
        tracing::debug!(target: "my_app::types",
            b = true, i = -42i64, u = 42u64, big = u128::MAX, small = i128::MIN,
            f = 1.5f64, nan = f64::NAN, inf = f64::INFINITY, s = "a \"quoted\"\nline\0nul",
            d = %std::net::Ipv4Addr::LOCALHOST, dbg = ?vec![1, 2],
            "every type");
        for n in 0..20u64 {
            tracing::info!(n, "plain {n}");
        }
    });
    guard.flush().expect("flushed");
    drop(guard);
}

#[test]
fn every_format_every_filter_and_byte_identical_to_the_renderers() {
    let url = common::database();
    write_events(&url);
    let total = count(&url, "true");
    assert!(total >= 28, "{total} rows");

    for format in Format::ALL {
        let name = format.as_str();
        let text = export(&url, &["--format", name]);
        let parsed = lines(&text);
        assert_eq!(parsed.len(), total, "{name}: one line per row");
        let expected = render_in_process(&url, &ExportFilter::default(), format);
        assert!(text == expected, "{name}: byte-identical to the renderers");
    }

    // Ordered by ts, then id (native lines carry both).
    let native = lines(&export(&url, &["--format", "native"]));
    let keys: Vec<(String, String)> = native
        .iter()
        .map(|r| {
            (
                r["ts"].as_str().unwrap().into(),
                r["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // What the writer stored comes back: context, point, fields of every type.
    let every = native
        .iter()
        .find(|r| r["message"] == "every type")
        .unwrap();
    let f = &every["fields"];
    assert_eq!(
        (&f["b"], &f["i"], &f["u"]),
        (&Value::Bool(true), &(-42).into(), &42.into())
    );
    assert_eq!(
        (&f["f"], &f["nan"], &f["inf"]),
        (&1.5.into(), &"NaN".into(), &"Infinity".into())
    );
    assert_eq!(f["s"], "a \"quoted\"\nline\u{FFFD}nul");
    assert_eq!(
        (&f["d"], &f["dbg"]),
        (&"127.0.0.1".into(), &"[1, 2]".into())
    );
    assert!(f["big"].is_number(), "u128 reads back as a number: {f}");
    let tool = native.iter().find(|r| r["point"] == "tool").unwrap();
    assert_eq!(tool["trace_id"], TRACE);
    assert_eq!(tool["fields"]["gen_ai.tool.name"], "search");

    // --trace-id: that trace's rows only.
    let in_trace = count(&url, &format!("trace_id = '{TRACE}'"));
    assert!(in_trace >= 7, "{in_trace}");
    let rows = lines(&export(&url, &["--format", "native", "--trace-id", TRACE]));
    assert_eq!(rows.len(), in_trace);
    assert!(rows.iter().all(|r| r["trace_id"] == TRACE));
    let otlp = export(&url, &["--format", "otlp", "--trace-id", TRACE]);
    let filter = ExportFilter {
        trace_id: Some(TRACE.into()),
        ..ExportFilter::default()
    };
    assert!(otlp == render_in_process(&url, &filter, Format::Otlp));
    assert!(otlp.contains(&format!("\"traceId\":\"{TRACE}\"")));

    // --level warn (any case): WARN and ERROR rows only.
    let warn_up = count(&url, "level >= 13");
    assert!(warn_up >= 2, "{warn_up}");
    for level in ["warn", "WARN"] {
        let rows = lines(&export(&url, &["--format", "ecs", "--level", level]));
        assert_eq!(rows.len(), warn_up);
        assert!(rows
            .iter()
            .all(|r| ["warn", "error"].contains(&r["log.level"].as_str().unwrap())));
    }
    let errors = lines(&export(&url, &["--format", "ocsf", "--level", "error"]));
    assert_eq!(errors.len(), count(&url, "level >= 17"));

    // The window: --since 1h has everything, --until 1h nothing, an RFC
    // 3339 --since in the future nothing.
    assert_eq!(
        lines(&export(&url, &["--format", "native", "--since", "1h"])).len(),
        total
    );
    assert_eq!(export(&url, &["--format", "native", "--until", "1h"]), "");
    assert_eq!(
        export(
            &url,
            &["--format", "native", "--since", "2999-01-01T00:00:00Z"]
        ),
        ""
    );

    // --output FILE writes the same bytes to the file, nothing to stdout;
    // `--output -` is stdout.
    let path = std::env::temp_dir().join(format!("ringtrail-export-{}.ndjson", std::process::id()));
    let path_text = path.to_str().unwrap();
    assert_eq!(
        export(&url, &["--format", "ecs", "--output", path_text]),
        ""
    );
    let file = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(file, export(&url, &["--format", "ecs"]));
    assert_eq!(
        file,
        export(&url, &["--format", "ecs", "--output", "-", "--quiet"])
    );
}

#[test]
fn mistakes_are_one_line_and_a_documented_code() {
    let url = "postgres://nobody@127.0.0.1:1/none";
    let cases: [(&[&str], i32, &str); 7] = [
        (&["--format", "json"], 2, "--format"),
        (&["--format", "ecs", "--since", "yesterday"], 2, "--since"),
        (
            &["--format", "ecs", "--until", "2026-13-01T00:00:00Z"],
            2,
            "--until",
        ),
        (&["--format", "ecs", "--level", "loud"], 2, "unknown level"),
        (
            &["--format", "ecs", "--since", "1h", "--until", "2h"],
            2,
            "is not before",
        ),
        (&["--format", "ecs"], 1, "cannot connect to the database"),
        (
            &["--format", "native", "--output", "/nonexistent/dir/x"],
            1,
            "cannot connect",
        ),
    ];
    for (args, code, needle) in cases {
        let mut all = vec!["export", "--database-url", url];
        all.extend(args);
        assert_one_line_failure(&run(&all), code, needle);
    }
    // An output that cannot be created: exit 1.
    let db = common::migrated_database();
    let out = run(&[
        "export",
        "--format",
        "ecs",
        "--output",
        "/nonexistent/dir/x",
        "--database-url",
        &db,
    ]);
    assert_one_line_failure(&out, 1, "cannot create /nonexistent/dir/x");
}

/// Peak resident set of a process, from `/proc/<pid>/status` (kB).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_large_table_exports_in_constant_memory() {
    const ROWS: u64 = 200_000;
    const BOUND_MIB: u64 = 64;
    let url = common::migrated_database();
    let started = Instant::now();
    common::client(&url)
        .batch_execute(&format!(
            "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, user_id, truncated)
             SELECT now() - interval '1 hour' + n * interval '1 ms', gen_random_uuid(), 9, 'bulk::load',
                    'row ' || n || ' ' || repeat('x', 100),
                    jsonb_build_object('n', n, 'ok', n % 2 = 0, 'ratio', n / 7.0, 'who', 'user-' || (n % 97)),
                    't-' || (n % 1000), 'u-' || (n % 50), false
             FROM generate_series(1, {ROWS}) AS n"
        ))
        .expect("bulk insert");
    let inserted = started.elapsed();

    // Under GNU time when it is there (exact peak), else sampling VmHWM.
    let gnu_time = Path::new("/usr/bin/time");
    let time_out =
        std::env::temp_dir().join(format!("ringtrail-export-rss-{}", std::process::id()));
    let args = [
        "export",
        "--format",
        "ecs",
        "--quiet",
        "--database-url",
        &url,
    ];
    let mut command = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.args([
            "-f",
            "%M",
            "-o",
            time_out.to_str().unwrap(),
            bin().to_str().unwrap(),
        ]);
        c
    } else {
        Command::new(bin())
    };
    let mut child = command
        .args(args)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let sampled = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (sampled, stop) = (sampled.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = vm_hwm_kib(pid) {
                    sampled.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let export_started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let (mut lines, mut bytes, mut line) = (0u64, 0u64, String::new());
    while reader.read_line(&mut line).unwrap() > 0 {
        if lines.is_multiple_of(50_000) {
            let _: Value = serde_json::from_str(&line).expect("JSON");
        }
        lines += 1;
        bytes += line.len() as u64;
        line.clear();
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    let took = export_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(lines, ROWS);

    let peak_kib = if gnu_time.exists() {
        let text = std::fs::read_to_string(&time_out).unwrap();
        let _ = std::fs::remove_file(&time_out);
        text.trim()
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse::<u64>()
            .expect(&text)
    } else {
        sampled.load(Ordering::Relaxed)
    };
    eprintln!(
        "{ROWS} rows inserted in {inserted:.1?}, exported ({} MiB of ECS) in {took:.1?} \
         ({:.0} rows/s), peak RSS {} MiB",
        bytes >> 20,
        ROWS as f64 / took.as_secs_f64(),
        peak_kib / 1024
    );
    assert!(peak_kib > 0, "a peak was measured");
    assert!(
        peak_kib < BOUND_MIB * 1024,
        "peak RSS {peak_kib} kB over {BOUND_MIB} MiB"
    );
    assert!(
        peak_kib * 1024 < bytes / 2,
        "the output ({bytes} bytes) is not held in memory: peak {peak_kib} kB"
    );

    // A reader that stops early (`| head -1`) is not an error.
    let mut child = Command::new(bin())
        .args(["export", "--format", "native", "--database-url", &url])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("{\"ts\":"), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
}

/// `--output` holds rows as sensitive as the table: the file is made
/// owner-only whatever the umask (the binary runs under umask 0 here), an
/// existing one is made owner-only too, and a symbolic link is refused,
/// not written through.
#[test]
fn an_output_file_is_owner_only_and_never_written_through_a_link() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = common::migrated_database();
    let dir = std::env::temp_dir().join(format!("ringtrail-export-modes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let under_umask_zero = |output: &Path| {
        Command::new("sh")
            .arg("-c")
            .arg(r#"umask 0; exec "$0" "$@""#)
            .arg(bin())
            .args([
                "export",
                "--format",
                "ecs",
                "--quiet",
                "--database-url",
                &db,
            ])
            .arg("--output")
            .arg(output)
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let fresh = dir.join("fresh.ndjson");
    assert_success(&under_umask_zero(&fresh));
    assert_eq!(mode(&fresh), 0o600);
    let existing = dir.join("existing.ndjson");
    std::fs::write(&existing, "old rows\n").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_success(&under_umask_zero(&existing));
    assert_eq!(mode(&existing), 0o600);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "", "truncated");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = dir.join("link.ndjson");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    assert_one_line_failure(&under_umask_zero(&link), 1, "symbolic link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let _ = std::fs::remove_dir_all(&dir);
}
