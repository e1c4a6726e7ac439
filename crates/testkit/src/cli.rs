//! The harness for tests of the real `ringtrail` binary: one way to run it
//! with a clean environment, and one check of the CLI's failure contract
//! (one line on stderr, `ringtrail: …`, the documented exit code, nothing
//! on stdout, never a panic).
//!
//! ```no_run
//! use ringtrail_testkit::cli::{assert_one_line_failure, run};
//! let out = run(&["trace", "--database-url", "postgres://nowhere", "00ff"]);
//! assert_one_line_failure(&out, 1, "cannot connect");
//! ```

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The `ringtrail` binary cargo built beside the running test.
///
/// Integration tests of `ringtrail-cli` live in `target/<profile>/deps/`;
/// cargo builds the package's binary into `target/<profile>/` before it
/// runs them. `RINGTRAIL_BIN` names another binary (a release build, say).
pub fn bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("RINGTRAIL_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("tests run from target/<profile>/deps");
        let bin = profile_dir.join(format!("ringtrail{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.exists(),
            "{} is missing: run the test through `cargo test -p ringtrail-cli`",
            bin.display()
        );
        bin
    })
}

/// A `RINGTRAIL_DATA_DIR` no store can be made in (a path below
/// `/dev/null`): [`command`] sets it, so that a test that forgets its
/// database fails instead of writing to the real default local store.
/// A test of the store passes `--data-dir` with a directory of its own.
pub const NO_STORE: &str = "/dev/null/no-local-store-in-tests";

/// `ringtrail args…` with a clean environment: no `DATABASE_URL`,
/// `RUST_BACKTRACE` or `NO_COLOR` inherited, `RINGTRAIL_DATA_DIR` set to
/// [`NO_STORE`], stdin from `/dev/null`.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("RINGTRAIL_DATA_DIR", NO_STORE)
        .env_remove("RUST_BACKTRACE")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    cmd
}

/// Runs `ringtrail args…` (see [`command`]) to completion.
pub fn run(args: &[&str]) -> Output {
    command(args).output().expect("the ringtrail binary runs")
}

/// Runs `ringtrail args…` with `DATABASE_URL` set to `url`.
pub fn run_with_url(args: &[&str], url: &str) -> Output {
    command(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("the ringtrail binary runs")
}

/// Its stdout, as UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// Its stderr, as UTF-8.
pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts a success with nothing on stderr; returns stdout.
pub fn assert_success(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err, "", "nothing on stderr");
    stdout(out)
}

/// Asserts the CLI's failure contract: exit `code`, exactly one line on
/// stderr that starts `ringtrail: ` and contains `needle`, no panic or
/// backtrace, and nothing on stdout. Returns the line, without its newline.
pub fn assert_one_line_failure(out: &Output, code: i32, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("ringtrail: "), "{err:?}");
    assert!(err.contains(needle), "{needle:?} in {err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "nothing on stdout"
    );
    err.trim_end().to_owned()
}
