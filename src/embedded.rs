//! A self-starting, throwaway PostgreSQL cluster for tests, benchmarks and the
//! CLI's embedded mode.
//!
//! ringtrail is only useful against a real PostgreSQL, so its tests must not
//! depend on someone having set one up. This module finds the PostgreSQL
//! server binaries installed on the machine ([`find_bindir`]), creates a new
//! cluster in a private temporary directory with `initdb`, starts it on a
//! free loopback port with `pg_ctl`, and removes every trace of it again when
//! it is no longer needed.
//!
//! There are two ways to get a cluster:
//!
//! * [`TempCluster::start`] / [`TempCluster::start_with`] give you an *owned*
//!   cluster. Dropping it stops the server and deletes its files. Use it when
//!   a test needs a server of its own (for example to crash it on purpose).
//! * [`TempCluster::shared`] gives every caller in the process the *same*
//!   cluster, started on first use with `fsync=off` for speed and removed when
//!   the process exits. [`fresh_database`] builds on it: each call returns the
//!   URL of a brand-new empty database, so tests can run in parallel without
//!   seeing each other's rows. When `DATABASE_URL` is set, [`fresh_database`]
//!   creates its databases on that server instead and nothing is started.
//!
//! ```no_run
//! use ringtrail::embedded::{fresh_database, StopMode, TempCluster};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A private server: stopped and deleted when `cluster` goes out of scope.
//! let cluster = TempCluster::start()?;
//! println!("server listening on {}", cluster.admin_url());
//! let url = cluster.create_database("demo")?;
//! println!("connect to {url}");
//!
//! // Simulate a crash and a restart on the same port and data directory.
//! cluster.stop(StopMode::Immediate)?;
//! cluster.start_again()?;
//!
//! // In a test: an empty database of its own on the process-wide server.
//! let test_url = fresh_database()?;
//! println!("this test writes to {test_url}");
//! # Ok(())
//! # }
//! ```
//!
//! # Running as root
//!
//! PostgreSQL refuses to run as root. When the process is root (common in
//! containers and CI), the cluster directory is handed to the `postgres`
//! system user and `initdb`/`pg_ctl` run as that user; otherwise they run as
//! the current user. `sudo` is never used.
//!
//! # Cleanup guarantees
//!
//! * An owned [`TempCluster`] cleans up in `Drop`.
//! * The shared cluster cleans up from a C `atexit` handler, because statics
//!   are never dropped.
//! * Every cluster also has a small watchdog shell process that waits for this
//!   process to disappear and then stops the server and deletes its
//!   directory, so even a `SIGKILL`ed test run leaves nothing behind.
//!
//! No child process ever inherits this process's stdout or stderr: CI often
//! pipes test output through `tee`, which would wait forever for a lingering
//! server that still held the pipe open.

use std::ffi::c_int;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// How many ports `start_with` tries before giving up. A port found free can
/// be taken by another process before the server binds it (parallel tests
/// all do this at once), so one retry is not always enough.
const START_ATTEMPTS: usize = 4;

/// Seconds `pg_ctl` waits for the server to start or stop (`-t`).
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// Upper bound for connecting and running one administrative statement.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of the end of `server.log` goes into an error message.
const LOG_TAIL_BYTES: u64 = 4096;

/// Longest unix socket path the kernel accepts (`sun_path` is 108 bytes on
/// Linux, including the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Environment variables that would make `initdb`/`pg_ctl` act on something
/// other than what we pass on the command line.
const PG_ENV_VARS: &[&str] = &[
    "PGDATA",
    "PGPORT",
    "PGHOST",
    "PGHOSTADDR",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
    "PGPASSWORD",
    "PGSERVICE",
    "PGSERVICEFILE",
];

extern "C" {
    /// POSIX `geteuid(2)`; `uid_t` is a 32-bit unsigned integer on every
    /// Unix that Rust supports.
    fn geteuid() -> u32;
    /// C `atexit(3)`: runs `cb` when the process exits normally.
    fn atexit(cb: extern "C" fn()) -> c_int;
}

/// How `pg_ctl stop` shuts the server down (its `-m` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopMode {
    /// Wait for all clients to disconnect, then shut down cleanly.
    Smart,
    /// Disconnect clients, roll back their transactions, shut down cleanly.
    Fast,
    /// Kill everything at once, like a crash; the next start runs recovery.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Smart => "smart",
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Settings for [`TempCluster::start_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Keep PostgreSQL's durability (`true`, the default). `false` starts the
    /// server with `fsync=off` and `full_page_writes=off`, which is much
    /// faster and fine for data nobody needs after a power cut.
    pub fsync: bool,
    /// Extra server settings, passed as `-c name=value` after ringtrail's own
    /// (so they can override them). Values may contain spaces and quotes.
    pub settings: Vec<(String, String)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            fsync: true,
            settings: Vec::new(),
        }
    }
}

/// The unprivileged account the server runs as when we are root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Account {
    uid: u32,
    gid: u32,
}

/// The process-wide cluster behind [`TempCluster::shared`]. A failed start
/// is kept as its message so every later caller gets it without retrying.
static SHARED: OnceLock<std::result::Result<TempCluster, String>> = OnceLock::new();

/// Statics are never dropped, so the shared cluster is torn down from C
/// `atexit` instead: immediate stop (nobody needs its data), then delete.
extern "C" fn cleanup_shared_at_exit() {
    // A panic must not unwind into C. There is nobody to report it to at
    // exit, and the watchdog remains as the backstop.
    let _ = std::panic::catch_unwind(|| {
        if let Some(Ok(cluster)) = SHARED.get() {
            cluster.teardown(StopMode::Immediate);
        }
    });
}

/// A running throwaway PostgreSQL cluster.
///
/// The server listens on `127.0.0.1` only, accepts the `postgres` superuser
/// without a password (`trust`), and keeps everything in one private
/// directory under [`std::env::temp_dir`]. An owned cluster is stopped and
/// deleted on drop; see the [module docs](self) for the shared one.
#[derive(Debug)]
pub struct TempCluster {
    /// Real directory of `initdb`, `pg_ctl` and `postgres`.
    bindir: PathBuf,
    /// `ringtrail-pg-{pid}-{n}`: everything below is deleted on cleanup.
    root: PathBuf,
    /// The cluster's data directory (`root/data`).
    data: PathBuf,
    /// Where the server writes its log (`root/server.log`).
    log: PathBuf,
    /// Server options except the port, already shell-quoted for `pg_ctl -o`.
    /// Kept so that `start_again` starts the server exactly as before.
    base_options: String,
    /// Fixed once the first start succeeded; `start_again` reuses it.
    port: u16,
    /// `Some` when we are root and run the server as `postgres`.
    run_as: Option<Account>,
    /// Serialises stop/start so concurrent callers cannot interleave them.
    lifecycle: Mutex<()>,
    /// The backstop process that cleans up if this process is killed.
    watchdog: Mutex<Option<Child>>,
}

impl TempCluster {
    /// Creates and starts a cluster with PostgreSQL's default (durable)
    /// settings. Dropping the returned value stops it and removes its files.
    ///
    /// # Errors
    ///
    /// [`Error::Cluster`] when the binaries are missing or `initdb`/`pg_ctl`
    /// fail (the message carries their output and the server log), and
    /// [`Error::Io`] when the directory or a process cannot be created.
    pub fn start() -> Result<TempCluster> {
        Self::start_with(&ClusterOptions::default())
    }

    /// Creates and starts a cluster with the given options. Dropping the
    /// returned value stops it and removes its files.
    ///
    /// # Errors
    ///
    /// As for [`TempCluster::start`].
    pub fn start_with(options: &ClusterOptions) -> Result<TempCluster> {
        let bindir = find_bindir()?;
        let run_as = server_account()?;
        let root = create_root_dir(run_as)?;
        let mut cluster = TempCluster {
            bindir,
            data: root.join("data"),
            log: root.join("server.log"),
            root,
            base_options: String::new(),
            port: 0,
            run_as,
            lifecycle: Mutex::new(()),
            watchdog: Mutex::new(None),
        };
        // From here on every early return drops `cluster`, whose Drop stops
        // whatever was started and deletes the directory. The watchdog goes
        // first so that even a SIGKILL during initdb leaves nothing behind.
        cluster.spawn_watchdog();

        // A socket directory of our own, because the packaged default
        // (/var/run/postgresql) may not exist or not be writable. Unix socket
        // paths are short; if TMPDIR is deep, listen on TCP only.
        let socket_dir = cluster.root.join("s");
        let socket_file_len = socket_dir.as_os_str().len() + "/.s.PGSQL.65535".len();
        let socket_dir = if socket_file_len <= MAX_SOCKET_PATH {
            make_private_dir(&socket_dir, run_as)?;
            Some(socket_dir)
        } else {
            None
        };
        cluster.base_options = base_options(socket_dir.as_deref(), options);

        cluster.initdb()?;
        cluster.start_on_free_port()?;
        Ok(cluster)
    }

    /// The process-wide cluster, started with `fsync=off` on the first call
    /// (later calls wait for that start and return the same cluster). It is
    /// stopped and removed when the process exits.
    ///
    /// # Errors
    ///
    /// [`Error::Cluster`] when it could not be started. The failure is
    /// remembered: later calls fail at once with the same message instead of
    /// retrying a slow start in every test.
    pub fn shared() -> Result<&'static TempCluster> {
        let slot = SHARED.get_or_init(|| {
            let options = ClusterOptions {
                fsync: false,
                settings: Vec::new(),
            };
            match TempCluster::start_with(&options) {
                Ok(cluster) => {
                    // SAFETY: `cleanup_shared_at_exit` is a plain
                    // `extern "C" fn()` that lives for the whole program and
                    // never unwinds. It runs only at exit, long after this
                    // closure has stored the cluster in SHARED. If the
                    // registration fails (non-zero), the watchdog still
                    // cleans up after the process is gone.
                    let _ = unsafe { atexit(cleanup_shared_at_exit) };
                    Ok(cluster)
                }
                Err(Error::Cluster(message)) => Err(message),
                Err(other) => Err(other.to_string()),
            }
        });
        match slot {
            Ok(cluster) => Ok(cluster),
            Err(message) => Err(Error::Cluster(format!(
                "the shared cluster failed to start: {message}"
            ))),
        }
    }

    /// The TCP port the server listens on (on `127.0.0.1`). It stays the same
    /// across [`stop`](Self::stop) and [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// URL of the `postgres` database as the `postgres` superuser:
    /// `postgres://postgres@127.0.0.1:{port}/postgres`.
    pub fn admin_url(&self) -> String {
        self.url_for("postgres")
    }

    /// URL of `database` on this server as the `postgres` superuser. The
    /// database is not created; see [`create_database`](Self::create_database).
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            self.port,
            percent_encode(database)
        )
    }

    /// Runs `CREATE DATABASE` for `name` (quoted, so any name works) and
    /// returns the new database's URL.
    ///
    /// Safe to call from inside an async runtime: the statement runs on a
    /// private runtime on a helper thread.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the server is down or the name is taken,
    /// [`Error::Timeout`] when it does not answer within a minute.
    pub fn create_database(&self, name: &str) -> Result<String> {
        create_database_at(&self.admin_url(), name)?;
        Ok(self.url_for(name))
    }

    /// Stops the server with `pg_ctl stop -m <mode> -w`. Does nothing when it
    /// is not running. The data directory and port are kept, so
    /// [`start_again`](Self::start_again) can bring it back.
    ///
    /// # Errors
    ///
    /// [`Error::Cluster`] with `pg_ctl`'s output when the stop fails or times
    /// out (a [`StopMode::Smart`] stop waits for clients for at most 60 s).
    pub fn stop(&self, mode: StopMode) -> Result<()> {
        let _guard = self.lock_lifecycle();
        if !self.is_running() {
            return Ok(());
        }
        let output = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode.as_arg(), "-w", "-t", PG_CTL_TIMEOUT_SECS])
            .output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Cluster(describe_failure(
                &format!("pg_ctl stop -m {}", mode.as_arg()),
                &output,
            )))
        }
    }

    /// Starts a stopped server again with the same data directory, port and
    /// settings, and returns once it accepts connections (after crash
    /// recovery, if it was stopped with [`StopMode::Immediate`]). Does
    /// nothing when it is already running.
    ///
    /// With `fsync=off` (as in [`shared`](Self::shared)) a restart after an
    /// immediate stop takes a fraction of a second; with fsync on, recovery
    /// first syncs the whole data directory, which can take seconds.
    ///
    /// # Errors
    ///
    /// [`Error::Cluster`] with the end of the server log, for example when
    /// another process took the port in the meantime.
    pub fn start_again(&self) -> Result<()> {
        let _guard = self.lock_lifecycle();
        if self.is_running() {
            return Ok(());
        }
        self.pg_ctl_start().map_err(|failure| failure.error)
    }

    /// Whether the server is up, as `pg_ctl status` reports it.
    pub fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.data)
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// A command for one of the server binaries: run as the server's user,
    /// with no stdin, captured output, and no PG* variables that could
    /// redirect it to another cluster.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bindir.join(program));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Our working directory may be unreadable by `postgres` (/root).
            .current_dir("/")
            // English messages, so `server.log` can be searched for
            // "Address already in use" whatever the caller's locale.
            .env_remove("LC_ALL")
            .env("LC_MESSAGES", "C");
        for var in PG_ENV_VARS {
            command.env_remove(var);
        }
        if let Some(account) = self.run_as {
            command.uid(account.uid).gid(account.gid);
        }
        command
    }

    fn lock_lifecycle(&self) -> MutexGuard<'_, ()> {
        // The guarded state is the server process, not Rust data, so a panic
        // elsewhere while holding the lock leaves nothing inconsistent.
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `initdb` with C.UTF-8, or plain C where that locale is missing.
    fn initdb(&self) -> Result<()> {
        let mut failures = Vec::new();
        for locale in ["C.UTF-8", "C"] {
            let output = self
                .command("initdb")
                .arg("-D")
                .arg(&self.data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
                .arg(format!("--locale={locale}"))
                // Nothing survives this cluster; skipping fsync saves seconds.
                .arg("--no-sync")
                .output()?;
            if output.status.success() {
                return Ok(());
            }
            failures.push(describe_failure(
                &format!("initdb --locale={locale}"),
                &output,
            ));
            // initdb removes a half-built data directory itself, but make
            // sure the retry starts from nothing.
            let _ = fs::remove_dir_all(&self.data);
        }
        Err(Error::Cluster(failures.join("\n")))
    }

    /// Starts the server on a free port, retrying with another port when the
    /// one we picked was taken before the server could bind it.
    fn start_on_free_port(&mut self) -> Result<()> {
        let mut last_failure = None;
        for _ in 0..START_ATTEMPTS {
            self.port = free_port()?;
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err(failure) if failure.port_in_use => last_failure = Some(failure.error),
                Err(failure) => return Err(failure.error),
            }
        }
        let last = last_failure.map(|e| e.to_string()).unwrap_or_default();
        Err(Error::Cluster(format!(
            "every port tried was taken by another process ({START_ATTEMPTS} attempts); last failure: {last}"
        )))
    }

    /// `pg_ctl start -w` with our options on `self.port`.
    fn pg_ctl_start(&self) -> std::result::Result<(), StartFailure> {
        // Only the log written by this attempt explains its failure.
        let log_offset = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let options = format!("-p {} {}", self.port, self.base_options);
        let output = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&self.data)
            // The server writes here, never to our stdout/stderr.
            .arg("-l")
            .arg(&self.log)
            .arg("-o")
            .arg(&options)
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS])
            .output()
            .map_err(|e| StartFailure {
                error: Error::Io(e),
                port_in_use: false,
            })?;
        if output.status.success() {
            return Ok(());
        }
        let log = read_log_from(&self.log, log_offset);
        let port_in_use = log.contains("Address already in use")
            || log.contains("could not bind")
            || log.contains("could not create any TCP/IP sockets");
        let mut message = describe_failure(&format!("pg_ctl start (port {})", self.port), &output);
        message.push_str("\n--- end of server.log ---\n");
        message.push_str(if log.is_empty() { "(empty)" } else { &log });
        Err(StartFailure {
            error: Error::Cluster(message),
            port_in_use,
        })
    }

    /// Starts the backstop that cleans up after a killed process: a shell
    /// loop that waits for our `/proc` entry to vanish, then stops the server
    /// and deletes the directory. It runs as the server's user so `pg_ctl`
    /// works, in its own process group so a Ctrl-C aimed at the test run does
    /// not kill it before it has done its job, and with all output discarded.
    /// (`kill -0 $PARENT` would fail for a non-root watchdog of a root
    /// parent, hence `/proc`.) Best effort: without it we still clean up on
    /// every normal exit.
    fn spawn_watchdog(&self) {
        let parent = std::process::id();
        // Without procfs the loop would end at once and stop the server.
        if !Path::new(&format!("/proc/{parent}")).is_dir() {
            return;
        }
        let script = r#"while [ -d "/proc/$1" ]; do sleep 1; done
"$2" stop -D "$3" -m immediate >/dev/null 2>&1
rm -rf "$4" >/dev/null 2>&1
exit 0"#;
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(script)
            .arg("ringtrail-pg-watchdog") // $0, shows up in `ps`
            .arg(parent.to_string())
            .arg(self.bindir.join("pg_ctl"))
            .arg(&self.data)
            .arg(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0);
        if let Some(account) = self.run_as {
            command.uid(account.uid).gid(account.gid);
        }
        if let Ok(child) = command.spawn() {
            *self.watchdog.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
        }
    }

    /// Stops the server (falling back to an immediate stop), deletes the
    /// directory and ends the watchdog. Errors are ignored: this runs in Drop
    /// and at exit, where nobody could handle them.
    fn teardown(&self, mode: StopMode) {
        if self.stop(mode).is_err() && mode != StopMode::Immediate {
            let _ = self.stop(StopMode::Immediate);
        }
        let _ = fs::remove_dir_all(&self.root);
        // Only now: had we been killed before this point, the watchdog would
        // have finished the job.
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = watchdog {
            let _ = child.kill();
            // Reap it so it does not linger as a zombie.
            let _ = child.wait();
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.teardown(StopMode::Fast);
    }
}

/// Why `pg_ctl start` failed, and whether another port might help.
struct StartFailure {
    error: Error,
    port_in_use: bool,
}

/// A brand-new, empty database for one test, as a URL.
///
/// When `DATABASE_URL` is set (a `postgres://`/`postgresql://` URL or a
/// `key=value` connection string), the database is created on that server,
/// whose role needs `CREATEDB`; the returned URL is `DATABASE_URL` with the
/// database name replaced (query parameters are kept). Otherwise it is
/// created on [`TempCluster::shared`]. Names look like
/// `rt_{pid}_{process start time}_{counter}`: unique per process and call, and
/// across runs against the same external server. Databases on an external
/// server are not dropped afterwards.
///
/// # Errors
///
/// [`Error::Config`] when `DATABASE_URL` cannot be parsed, [`Error::Postgres`]
/// when `CREATE DATABASE` fails, and whatever [`TempCluster::shared`] returns.
pub fn fresh_database() -> Result<String> {
    let name = next_database_name();
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            // Build the URL first: a malformed DATABASE_URL should fail
            // before anything is created.
            let fresh_url = with_database(&url, &name)?;
            create_database_at(&url, &name)?;
            Ok(fresh_url)
        }
        _ => TempCluster::shared()?.create_database(&name),
    }
}

/// Where the PostgreSQL server binaries are.
///
/// Looks, in order, at the directory of `initdb` on `PATH` (canonicalized, so
/// a symlink such as `/usr/local/bin/initdb` resolves to the real bindir),
/// at `pg_config --bindir`, and at the highest-versioned
/// `/usr/lib/postgresql/*/bin` (Debian/Ubuntu packages). A candidate counts
/// only if it contains `initdb`, `pg_ctl` and `postgres`.
///
/// # Errors
///
/// [`Error::Cluster`] saying what to install when nothing is found.
pub fn find_bindir() -> Result<PathBuf> {
    let from_path = find_on_path("initdb")
        .and_then(|initdb| fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf));
    if let Some(dir) = from_path.filter(|dir| is_bindir(dir)) {
        return Ok(dir);
    }
    if let Some(dir) = pg_config_bindir().filter(|dir| is_bindir(dir)) {
        return Ok(dir);
    }
    if let Some(dir) = highest_versioned_bindir(Path::new("/usr/lib/postgresql")) {
        return Ok(dir);
    }
    Err(Error::Cluster(
        "no PostgreSQL server binaries found (looked for initdb on PATH, `pg_config --bindir` \
         and /usr/lib/postgresql/*/bin; a bindir must contain initdb, pg_ctl and postgres). \
         Install the PostgreSQL server binaries: apt-get install postgresql (Debian/Ubuntu), \
         dnf install postgresql-server (Fedora/RHEL), brew install postgresql (macOS), \
         or set DATABASE_URL to an existing server"
            .to_owned(),
    ))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| fs::canonicalize(dir).unwrap_or_else(|_| PathBuf::from(dir)))
}

/// The `bin` directory of the highest numeric version below `base`
/// (`base/15/bin` beats `base/9.6/bin`).
fn highest_versioned_bindir(base: &Path) -> Option<PathBuf> {
    fs::read_dir(base)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bindir = entry.path().join("bin");
            is_bindir(&bindir).then_some((version, bindir))
        })
        .max()
        .map(|(_, bindir)| bindir)
}

fn is_bindir(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|program| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `None` when we can run the server ourselves; the `postgres` account when
/// we are root, because PostgreSQL refuses to run as root.
fn server_account() -> Result<Option<Account>> {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory
    // of ours.
    let euid = unsafe { geteuid() };
    if euid != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| {
        Error::Cluster(format!(
            "running as root, so the server must run as the `postgres` user, \
             but /etc/passwd could not be read: {e}"
        ))
    })?;
    parse_passwd(&passwd, "postgres").map(Some).ok_or_else(|| {
        Error::Cluster(
            "running as root, but there is no `postgres` user in /etc/passwd to run the \
             server as (PostgreSQL refuses to run as root). Install the PostgreSQL packages, \
             create the user (useradd --system postgres), run as a non-root user, \
             or set DATABASE_URL to an existing server"
                .to_owned(),
        )
    })
}

/// uid and gid of `user` from the text of /etc/passwd.
fn parse_passwd(passwd: &str, user: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.trim().parse().ok()?;
        let gid = fields.next()?.trim().parse().ok()?;
        Some(Account { uid, gid })
    })
}

/// Creates `ringtrail-pg-{pid}-{n}`, mode 0700, owned by the server's user.
fn create_root_dir(run_as: Option<Account>) -> Result<PathBuf> {
    static CLUSTERS: AtomicU64 = AtomicU64::new(0);
    let base = temp_base(run_as);
    let pid = std::process::id();
    loop {
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("ringtrail-pg-{pid}-{n}"));
        match make_private_dir(&root, run_as) {
            Ok(()) => return Ok(root),
            // Left behind by an earlier process with our pid: pick another n.
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The temp directory, unless the server's user could not reach it (a root
/// TMPDIR such as /root/tmp); then /tmp.
fn temp_base(run_as: Option<Account>) -> PathBuf {
    let base = std::env::temp_dir();
    if run_as.is_none() {
        return base;
    }
    let reachable = base
        .ancestors()
        .all(|dir| fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if reachable {
        base
    } else {
        PathBuf::from("/tmp")
    }
}

/// `mkdir` with mode 0700, handed to the server's user when we are root.
fn make_private_dir(path: &Path, run_as: Option<Account>) -> Result<()> {
    fs::DirBuilder::new().mode(0o700).create(path)?;
    // The umask can only remove bits, but be explicit: PostgreSQL insists.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    if let Some(account) = run_as {
        std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))?;
    }
    Ok(())
}

/// Server options except `-p`, shell-quoted: `pg_ctl -o` hands them to
/// `/bin/sh -c`, so a value with a space or quote would otherwise split.
fn base_options(socket_dir: Option<&Path>, options: &ClusterOptions) -> String {
    let mut args = vec![
        "-c".to_owned(),
        sh_quote("listen_addresses=127.0.0.1"),
        "-k".to_owned(),
        sh_quote(&socket_dir.map_or(String::new(), |dir| dir.to_string_lossy().into_owned())),
    ];
    if !options.fsync {
        for setting in ["fsync=off", "full_page_writes=off"] {
            args.push("-c".to_owned());
            args.push(sh_quote(setting));
        }
    }
    for (name, value) in &options.settings {
        args.push("-c".to_owned());
        args.push(sh_quote(&format!("{name}={value}")));
    }
    args.join(" ")
}

/// Single-quotes `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Asks the kernel for an unused loopback port and releases it for the
/// server. Someone else may take it in between; the caller retries.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The end of what was appended to the log after `offset`.
fn read_log_from(log: &Path, offset: u64) -> String {
    let Ok(mut file) = fs::File::open(log) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = offset.max(len.saturating_sub(LOG_TAIL_BYTES));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    // When cut short, drop the partial first line.
    let text = if start > offset {
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    text.trim().to_owned()
}

/// "`what` failed (exit status: 1): <stdout and stderr>".
fn describe_failure(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = [stdout.trim(), stderr.trim()]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let text = if text.is_empty() {
        "(no output)"
    } else {
        &text
    };
    format!("{what} failed ({}):\n{text}", output.status)
}

fn next_database_name() -> String {
    static DATABASES: AtomicU64 = AtomicU64::new(0);
    static PROCESS_TOKEN: OnceLock<u64> = OnceLock::new();
    // The pid alone repeats across runs; against an external DATABASE_URL a
    // leftover `rt_{pid}_0` from an earlier run would make CREATE fail.
    let token = *PROCESS_TOKEN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    format!("rt_{}_{token}_{n}", std::process::id())
}

/// `CREATE DATABASE "name"` on the server at `url`.
fn create_database_at(url: &str, name: &str) -> Result<()> {
    simple_query(url, &format!("CREATE DATABASE {}", quote_ident(name))).map(drop)
}

/// Runs `sql` with the simple query protocol and returns its rows as text.
///
/// It runs on a private current-thread runtime on a helper thread, because
/// callers may already be inside a Tokio runtime (an async test), where
/// building and blocking on another runtime panics.
fn simple_query(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| simple_query_blocking(url, sql))
            .join()
            .unwrap_or_else(|_| Err(Error::Cluster("the database helper thread panicked".into())))
    })
}

fn simple_query_blocking(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let work = async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            // The connection future does the actual I/O; it must be polled
            // while the client waits for its answer.
            let connection = tokio::spawn(connection);
            let messages = client.simple_query(sql).await;
            drop(client);
            let _ = connection.await;
            let rows = messages?
                .into_iter()
                .filter_map(|message| match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect();
            Ok(rows)
        };
        tokio::time::timeout(ADMIN_TIMEOUT, work)
            .await
            .unwrap_or(Err(Error::Timeout(
                "administrative statement on the database server",
            )))
    })
}

/// `name` as an SQL identifier: double-quoted, inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` with its database replaced by `database`.
///
/// For `postgres://` and `postgresql://` URLs the path is replaced (or added)
/// and the query string kept, minus any `dbname` parameter that would
/// override the path. A `key=value` connection string gets a `dbname` at the
/// end, which overrides an earlier one.
fn with_database(url: &str, database: &str) -> Result<String> {
    let url = url.trim();
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|scheme| url.starts_with(scheme));
    if let Some(scheme) = scheme {
        let rest = &url[scheme.len()..];
        // The authority (user:password@host:port, hosts, [::1]) ends at the
        // first '/', '?' or '#'; the path runs to the first '?' or '#'.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (query, fragment) = match tail.find('#') {
            Some(i) => (&tail[..i], &tail[i..]),
            None => (tail, ""),
        };
        let query = query.find('?').map_or("", |i| &query[i + 1..]);
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("dbname"))
            .collect::<Vec<_>>()
            .join("&");
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        return Ok(format!(
            "{scheme}{authority}/{}{query}{fragment}",
            percent_encode(database)
        ));
    }
    if url.contains('=') && !url.contains("://") {
        let quoted = database.replace('\\', r"\\").replace('\'', r"\'");
        return Ok(format!("{url} dbname='{quoted}'"));
    }
    Err(Error::Config(format!(
        "DATABASE_URL must be a postgres:// or postgresql:// URL or a key=value \
         connection string, not {url:?}"
    )))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut encoded = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;
    use std::os::unix::fs::MetadataExt;
    use std::time::Instant;

    /// The single value of a one-row, one-column query.
    fn scalar(url: &str, sql: &str) -> Result<Option<String>> {
        let rows = simple_query(url, sql)?;
        assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
        Ok(rows[0][0].clone())
    }

    #[test]
    fn find_bindir_finds_the_servers_binaries() {
        let bindir = find_bindir().expect("PostgreSQL server binaries are installed here");
        assert!(is_bindir(&bindir), "{bindir:?}");
        // Symlinks on PATH must resolve to the real directory.
        assert_eq!(fs::canonicalize(&bindir).unwrap(), bindir);
    }

    #[test]
    fn highest_version_wins() {
        let base =
            std::env::temp_dir().join(format!("ringtrail-bindir-test-{}", std::process::id()));
        for version in ["9.6", "15", "13", "notaversion"] {
            let bin = base.join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            for program in ["initdb", "pg_ctl", "postgres"] {
                fs::write(bin.join(program), "").unwrap();
                fs::set_permissions(bin.join(program), fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        // A newer version without a server is not a bindir.
        fs::create_dir_all(base.join("16").join("bin")).unwrap();
        let found = highest_versioned_bindir(&base);
        fs::remove_dir_all(&base).unwrap();
        assert_eq!(found, Some(base.join("15").join("bin")));
    }

    #[test]
    fn passwd_parsing() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgresql:x:7:7::/:/bin/false\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            parse_passwd(passwd, "postgres"),
            Some(Account { uid: 101, gid: 104 })
        );
        assert_eq!(parse_passwd(passwd, "nobody"), None);
    }

    #[test]
    fn database_replacement_in_urls() {
        let cases = [
            (
                "postgres://u:p@db.example:5432/app",
                "postgres://u:p@db.example:5432/rt_1",
            ),
            (
                "postgresql://u@localhost/app",
                "postgresql://u@localhost/rt_1",
            ),
            ("postgres://localhost", "postgres://localhost/rt_1"),
            ("postgres://localhost/", "postgres://localhost/rt_1"),
            (
                "postgres://localhost:5433",
                "postgres://localhost:5433/rt_1",
            ),
            (
                "postgres://u@localhost/app?sslmode=disable&connect_timeout=5",
                "postgres://u@localhost/rt_1?sslmode=disable&connect_timeout=5",
            ),
            (
                "postgres://localhost?sslmode=disable",
                "postgres://localhost/rt_1?sslmode=disable",
            ),
            (
                "postgres://u@[::1]:5432/app",
                "postgres://u@[::1]:5432/rt_1",
            ),
            (
                "postgres://h1:5432,h2:5433/app",
                "postgres://h1:5432,h2:5433/rt_1",
            ),
            (
                "postgres://u@h/app?dbname=other&x=1",
                "postgres://u@h/rt_1?x=1",
            ),
            ("  postgres://h/app  ", "postgres://h/rt_1"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "rt_1").unwrap(), expected, "from {url}");
        }
        assert_eq!(
            with_database("postgres://h/app", "odd name/é").unwrap(),
            "postgres://h/odd%20name%2F%C3%A9"
        );
        assert_eq!(
            with_database("host=localhost user=me dbname=app", "rt_1").unwrap(),
            "host=localhost user=me dbname=app dbname='rt_1'"
        );
        assert!(matches!(
            with_database("mysql://h/app", "rt_1"),
            Err(Error::Config(_))
        ));
        assert!(matches!(with_database("", "rt_1"), Err(Error::Config(_))));
    }

    #[test]
    fn replaced_urls_parse_as_the_new_database() {
        for url in [
            "postgres://u:p@localhost:5432/app?sslmode=disable",
            "host=localhost user=me dbname=app",
        ] {
            let replaced = with_database(url, "it's \"odd\"").unwrap();
            let config: tokio_postgres::Config = replaced.parse().unwrap();
            assert_eq!(config.get_dbname(), Some("it's \"odd\""), "from {replaced}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn cluster_creates_databases_and_answers_queries() {
        let cluster = TempCluster::start().unwrap();
        let root = cluster.root.clone();
        assert!(cluster.is_running());
        assert_eq!(
            cluster.admin_url(),
            format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port())
        );
        assert!(cluster.data_dir().join("PG_VERSION").is_file());

        // Private directory, owned by whoever runs the server.
        let meta = fs::metadata(&root).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        if let Some(account) = server_account().unwrap() {
            assert_eq!((meta.uid(), meta.gid()), (account.uid, account.gid));
        }

        let first = cluster.create_database("first").unwrap();
        let second = cluster.create_database("Second Database").unwrap();
        assert_eq!(first, cluster.url_for("first"));
        assert_eq!(scalar(&first, "SELECT 1").unwrap().as_deref(), Some("1"));
        assert_eq!(
            scalar(&second, "SELECT current_database()")
                .unwrap()
                .as_deref(),
            Some("Second Database")
        );
        // Durable by default.
        assert_eq!(scalar(&first, "SHOW fsync").unwrap().as_deref(), Some("on"));
        // The name is taken now.
        assert!(matches!(
            cluster.create_database("first"),
            Err(Error::Postgres(_))
        ));

        drop(cluster);
        assert!(!root.exists(), "{root:?} survived drop");
        assert!(TcpStream::connect(("127.0.0.1", port_of(&first))).is_err());
    }

    fn port_of(url: &str) -> u16 {
        let config: tokio_postgres::Config = url.parse().unwrap();
        config.get_ports()[0]
    }

    #[test]
    fn settings_reach_the_server() {
        let options = ClusterOptions {
            fsync: false,
            settings: vec![
                ("work_mem".into(), "7MB".into()),
                ("application_name".into(), "it's a \"test\"".into()),
            ],
        };
        let cluster = TempCluster::start_with(&options).unwrap();
        let url = cluster.admin_url();
        assert_eq!(scalar(&url, "SHOW fsync").unwrap().as_deref(), Some("off"));
        assert_eq!(
            scalar(&url, "SHOW full_page_writes").unwrap().as_deref(),
            Some("off")
        );
        assert_eq!(
            scalar(&url, "SHOW work_mem").unwrap().as_deref(),
            Some("7MB")
        );
        // A per-server default; the connection does not set its own here.
        assert_eq!(
            scalar(
                &url,
                "SELECT reset_val FROM pg_settings WHERE name = 'application_name'"
            )
            .unwrap()
            .as_deref(),
            Some("it's a \"test\"")
        );
    }

    #[test]
    fn immediate_stop_then_start_again_on_the_same_port() {
        // fsync off like the shared cluster that fault-injection tests crash;
        // with fsync on, recovery first syncs the whole data directory (seconds).
        let options = ClusterOptions {
            fsync: false,
            ..ClusterOptions::default()
        };
        let cluster = TempCluster::start_with(&options).unwrap();
        let port = cluster.port();
        let url = cluster.create_database("survivor").unwrap();
        simple_query(&url, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)").unwrap();

        cluster.stop(StopMode::Immediate).unwrap();
        assert!(!cluster.is_running());
        assert!(matches!(
            simple_query(&url, "SELECT 1"),
            Err(Error::Postgres(_))
        ));
        // Stopping a stopped server is fine.
        cluster.stop(StopMode::Fast).unwrap();

        let restarted = Instant::now();
        cluster.start_again().unwrap();
        println!("restart with crash recovery took {:?}", restarted.elapsed());
        assert!(cluster.is_running());
        assert_eq!(cluster.port(), port);
        // Committed data survives the crash (the OS kept it, fsync or not).
        assert_eq!(
            scalar(&url, "SELECT x FROM t").unwrap().as_deref(),
            Some("42")
        );
        // Starting a running server is fine too.
        cluster.start_again().unwrap();

        cluster.stop(StopMode::Smart).unwrap();
        cluster.start_again().unwrap();
        assert_eq!(scalar(&url, "SELECT 1").unwrap().as_deref(), Some("1"));

        // Someone takes the port while the server is down: the error says so
        // and quotes the server log; once it is free again, start works.
        cluster.stop(StopMode::Fast).unwrap();
        let squatter = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let error = cluster.start_again().unwrap_err().to_string();
        assert!(error.contains("Address already in use"), "{error}");
        assert!(!cluster.is_running());
        drop(squatter);
        cluster.start_again().unwrap();
        assert_eq!(scalar(&url, "SELECT 1").unwrap().as_deref(), Some("1"));
    }

    #[test]
    fn fresh_databases_are_distinct_and_empty() {
        let a = fresh_database().unwrap();
        let b = fresh_database().unwrap();
        assert_ne!(a, b);
        simple_query(&a, "CREATE TABLE only_in_a (x int)").unwrap();
        let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'";
        assert_eq!(scalar(&a, tables).unwrap().as_deref(), Some("1"));
        assert_eq!(scalar(&b, tables).unwrap().as_deref(), Some("0"));
        if std::env::var_os("DATABASE_URL").is_none() {
            let shared = TempCluster::shared().unwrap();
            assert!(std::ptr::eq(shared, TempCluster::shared().unwrap()));
            assert!(a.starts_with(&format!(
                "postgres://postgres@127.0.0.1:{}/rt_",
                shared.port()
            )));
        }
    }

    #[test]
    fn works_inside_an_async_runtime() {
        // Blocking on a second runtime from inside this one would panic;
        // the helper thread in `simple_query` must prevent that.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = runtime.block_on(async { fresh_database() }).unwrap();
        let one = runtime
            .block_on(async { scalar(&url, "SELECT 1") })
            .unwrap();
        assert_eq!(one.as_deref(), Some("1"));
    }

    /// Env var that turns `watchdog_child` from a no-op into the victim.
    const WATCHDOG_CHILD: &str = "RINGTRAIL_EMBEDDED_WATCHDOG_CHILD";

    /// Run by `watchdog_cleans_up_after_sigkill` in a child process: starts a
    /// cluster, reports where it lives, and waits to be killed.
    #[test]
    #[ignore = "helper process for watchdog_cleans_up_after_sigkill"]
    fn watchdog_child() {
        if std::env::var_os(WATCHDOG_CHILD).is_none() {
            return;
        }
        let cluster = TempCluster::start().unwrap();
        println!("CLUSTER {} {}", cluster.port(), cluster.root.display());
        std::thread::sleep(Duration::from_secs(120));
    }

    #[test]
    fn watchdog_cleans_up_after_sigkill() {
        // Test names leave out the crate: "embedded::tests::watchdog_child".
        let module = module_path!().split_once("::").unwrap().1;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--exact")
            .arg(format!("{module}::watchdog_child"))
            .args(["--ignored", "--nocapture"])
            .env(WATCHDOG_CHILD, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let line = stdout
            .lines()
            .map_while(std::result::Result::ok)
            .find(|line| line.starts_with("CLUSTER "));
        let Some(line) = line else {
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!(
                "the child did not start a cluster ({}):\n{stderr}",
                child.wait().unwrap()
            );
        };
        let mut fields = line.split(' ').skip(1);
        let port: u16 = fields.next().unwrap().parse().unwrap();
        let root = PathBuf::from(fields.next().unwrap());
        assert!(root.is_dir());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());

        // No Drop, no atexit: only the watchdog can clean up now. Reap the
        // child, or its /proc entry (a zombie) would keep the watchdog waiting.
        child.kill().unwrap();
        child.wait().unwrap();

        let deadline = Instant::now() + Duration::from_secs(30);
        while root.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!root.exists(), "the watchdog did not remove {root:?}");
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server on port {port} outlived its owner"
        );
    }
}
