//! The local store: without a database URL every command uses a
//! PostgreSQL cluster in `--data-dir` (or `RINGTRAIL_DATA_DIR`), created on
//! first use and left running. Each test has a store of its own in a
//! scratch directory and stops its server at the end, so nothing is left
//! running and the real default store is never touched.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use ringtrail_cluster::{LocalStore, StopMode};
use ringtrail_testkit::cli::*;

/// A store's directory, not yet created; its server is stopped and the
/// directory removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        // As root the server runs as `postgres`, which must reach it: /tmp,
        // not a private TMPDIR.
        let dir = PathBuf::from("/tmp").join(format!("rt-cli-{name}-{}", std::process::id()));
        let _ = LocalStore::stop_at(&dir, StopMode::Immediate);
        let _ = std::fs::remove_dir_all(&dir);
        Scratch { dir }
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// `ringtrail args… --data-dir <dir>`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--data-dir", self.path()]);
        run(&all)
    }

    /// Rows in `ringtrail.logs`, read through the store's own URL.
    fn rows(&self) -> i64 {
        let store = LocalStore::open(&self.dir).unwrap();
        let mut client = postgres::Client::connect(&store.url(), postgres::NoTls).unwrap();
        client
            .query_one("SELECT count(*) FROM ringtrail.logs", &[])
            .unwrap()
            .get(0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = LocalStore::stop_at(&self.dir, StopMode::Fast);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The trace id in the report's "one incomplete trace (`ringtrail trace
/// <id>`)" line.
fn printed_trace_id(report: &str) -> String {
    let marker = "one incomplete trace (`ringtrail trace ";
    let start = report
        .find(marker)
        .unwrap_or_else(|| panic!("no trace id in\n{report}"))
        + marker.len();
    let end = start + report[start..].find('`').unwrap();
    report[start..end].to_owned()
}

fn demo(store: &Scratch) -> (String, String) {
    let out = store.run(&[
        "demo",
        "--events",
        "3000",
        "--threads",
        "1",
        "--rate",
        "0",
        "--quiet",
    ]);
    let (report, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{report}\n{err}");
    (report, err)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn demo_writes_into_the_store_and_trace_finds_it_after_a_restart() {
    let store = Scratch::new("demo");
    let (report, err) = demo(&store);
    assert!(err.contains("created a PostgreSQL store in"), "{err}");
    let id = printed_trace_id(&report);

    // The trace the demo printed, with the same data directory: the
    // server is still running, so nothing is said about it.
    let out = store.run(&["trace", &id]);
    let timeline = assert_success(&out);
    assert!(timeline.contains(&id), "{timeline}");

    // Private: the directory, the socket's and the password file.
    assert_eq!(mode(&store.dir), 0o700);
    assert_eq!(mode(&store.dir.join("run")), 0o700);
    assert_eq!(mode(&store.dir.join("password")), 0o600);
    let conf = std::fs::read_to_string(store.dir.join("pgdata/pg_hba.conf")).unwrap();
    assert!(
        !conf
            .lines()
            .any(|l| l.contains("trust") && !l.starts_with('#')),
        "{conf}"
    );
    let first_rows = store.rows();
    assert!(first_rows > 0);

    // Stopped (a reboot): the next command starts it, and says so; the
    // environment variable names the directory as well as the flag.
    LocalStore::stop_at(&store.dir, StopMode::Fast).unwrap();
    assert!(!store.dir.join("run/.s.PGSQL.5432").exists());
    let out = command(&["query", "--trace-id", &id, "--limit", "1"])
        .env("RINGTRAIL_DATA_DIR", &store.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("started the PostgreSQL store in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));

    // A second run keeps the first run's rows, and its traces apart.
    let (report, err) = demo(&store);
    assert!(!err.contains("store in"), "{err}");
    let second = printed_trace_id(&report);
    assert_ne!(second, id);
    assert!(store.rows() > first_rows);
    assert_success(&store.run(&["trace", &id]));
    assert_success(&store.run(&["trace", &second]));
}

#[test]
fn a_fresh_store_answers_every_reader() {
    let store = Scratch::new("fresh");
    // The schema is applied on first use: an empty table, not an error.
    let out = store.run(&["query"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    for args in [&["stats"][..], &["audit-gaps"], &["verify"], &["tail"]] {
        let out = store.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
    let out = store.run(&["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = store.run(&["retention", "--keep", "30d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = store.run(&["export", "--format", "ecs"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_store_that_cannot_be_made_is_one_line() {
    let file = Scratch::new("file");
    std::fs::write(&file.dir, "not a directory").unwrap();
    let out = file.run(&["query"]);
    let line = assert_one_line_failure(&out, 1, "cannot open the local store in");
    assert!(line.contains(file.path()), "{line}");
    let out = file.run(&["demo", "--events", "10"]);
    assert_one_line_failure(&out, 1, "cannot open the local store in");
    std::fs::remove_file(&file.dir).unwrap();
}

#[test]
fn help_names_the_flag_the_variable_and_the_default_directory() {
    for command in [
        "query",
        "tail",
        "trace",
        "audit-gaps",
        "usage",
        "export",
        "stats",
        "verify",
        "migrate",
        "retention",
        "demo",
        "serve",
    ] {
        let out = run(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let help = stdout(&out);
        for needle in [
            "--data-dir",
            "RINGTRAIL_DATA_DIR",
            "~/.local/share/ringtrail",
            "/var/lib/ringtrail",
        ] {
            assert!(help.contains(needle), "{command}: {needle} in\n{help}");
        }
    }
    let help = stdout(&run(&["demo", "--help"]));
    assert!(help.contains("--throwaway"), "{help}");
}
