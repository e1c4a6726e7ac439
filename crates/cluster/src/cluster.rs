//! [`TempCluster`]: an owned or process-wide throwaway cluster, its
//! settings, and its lifecycle (start, stop, start again, teardown).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::account::{create_root_dir, make_private_dir, server_account};
use super::admin::{create_database_at, percent_encode};
use super::bindir::find_bindir;
use super::error::Result;
// The docs below name its variants.
#[cfg(doc)]
use super::error::ClusterError;
use super::pg_ctl::{sh_quote, PgCtl, StopMode};
use super::watchdog::Watchdog;

/// Longest unix socket path the kernel accepts (`sun_path` is 108 bytes on
/// Linux, including the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

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

/// A running throwaway PostgreSQL cluster.
///
/// The server listens on `127.0.0.1` only, accepts the `postgres` superuser
/// without a password (`trust`), and keeps everything in one private
/// directory under [`std::env::temp_dir`]. An owned cluster is stopped and
/// deleted on drop; see the [module docs](super) for the shared one.
#[derive(Debug)]
pub struct TempCluster {
    /// The server binaries, bound to the data directory (`root/data`) and
    /// the server log (`root/server.log`), run as the server's user.
    pg_ctl: PgCtl,
    /// `ringtrail-pg-{pid}-{n}`: everything below is deleted on cleanup.
    root: PathBuf,
    /// Server options except the port, already shell-quoted for `pg_ctl -o`.
    /// Kept so that `start_again` starts the server exactly as before.
    base_options: String,
    /// Fixed once the first start succeeded; `start_again` reuses it.
    port: u16,
    /// Serialises stop/start so concurrent callers cannot interleave them.
    lifecycle: Mutex<()>,
    /// The backstop process that cleans up if this process is killed.
    watchdog: Mutex<Option<Watchdog>>,
}

impl TempCluster {
    /// Creates and starts a cluster with PostgreSQL's default (durable)
    /// settings. Dropping the returned value stops it and removes its files.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Missing`] when the server binaries (or, as root, the
    /// `postgres` account) are missing, [`ClusterError::Setup`] when
    /// `initdb`/`pg_ctl` fail (the message carries their output and the
    /// server log), and [`ClusterError::Io`] when the directory or a process
    /// cannot be created.
    pub fn start() -> Result<TempCluster> {
        Self::start_with(&ClusterOptions::default())
    }

    /// Creates and starts a cluster with the given options. Dropping the
    /// returned value stops it and removes its files.
    ///
    /// # Errors
    ///
    /// As for [`TempCluster::start`]: [`ClusterError::Missing`],
    /// [`ClusterError::Setup`] or [`ClusterError::Io`].
    pub fn start_with(options: &ClusterOptions) -> Result<TempCluster> {
        let bindir = find_bindir()?;
        let run_as = server_account()?;
        let root = create_root_dir(run_as)?;
        let pg_ctl = PgCtl::new(bindir, root.join("data"), root.join("server.log"), run_as);
        // The watchdog goes first so that even a SIGKILL during initdb
        // leaves nothing behind.
        let watchdog = Watchdog::spawn(std::process::id(), &pg_ctl, &root);
        let mut cluster = TempCluster {
            pg_ctl,
            root,
            base_options: String::new(),
            port: 0,
            lifecycle: Mutex::new(()),
            watchdog: Mutex::new(watchdog),
        };
        // From here on every early return drops `cluster`, whose Drop stops
        // whatever was started and deletes the directory.

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

        cluster.pg_ctl.initdb()?;
        cluster.port = cluster.pg_ctl.start_on_free_port(&cluster.base_options)?;
        Ok(cluster)
    }

    /// The TCP port the server listens on (on `127.0.0.1`). It stays the same
    /// across [`stop`](Self::stop) and [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        self.pg_ctl.data()
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
    /// [`ClusterError::Postgres`] when the server is down or the name is
    /// taken, [`ClusterError::Timeout`] when it does not answer within a
    /// minute, and [`ClusterError::Io`] when the helper's runtime cannot be
    /// created.
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
    /// [`ClusterError::Setup`] with `pg_ctl`'s output when the stop fails or
    /// times out (a [`StopMode::Smart`] stop waits for clients for at most
    /// 60 s), and [`ClusterError::Io`] when `pg_ctl` cannot be run.
    pub fn stop(&self, mode: StopMode) -> Result<()> {
        let _guard = self.lock_lifecycle();
        if !self.is_running() {
            return Ok(());
        }
        self.pg_ctl.stop(mode)
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
    /// [`ClusterError::Setup`] with the end of the server log, for example
    /// when another process took the port in the meantime, and
    /// [`ClusterError::Io`] when `pg_ctl` cannot be run.
    pub fn start_again(&self) -> Result<()> {
        let _guard = self.lock_lifecycle();
        if self.is_running() {
            return Ok(());
        }
        self.pg_ctl.start(self.port, &self.base_options)
    }

    /// Whether the server is up, as `pg_ctl status` reports it.
    pub fn is_running(&self) -> bool {
        self.pg_ctl.status()
    }

    fn lock_lifecycle(&self) -> MutexGuard<'_, ()> {
        // The guarded state is the server process, not Rust data, so a panic
        // elsewhere while holding the lock leaves nothing inconsistent.
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the server (falling back to an immediate stop), deletes the
    /// directory and ends the watchdog. Errors are ignored: this runs in Drop
    /// and at exit, where nobody could handle them.
    pub(super) fn teardown(&self, mode: StopMode) {
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
        if let Some(watchdog) = watchdog {
            watchdog.end();
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        self.teardown(StopMode::Fast);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{scalar, simple_query};
    use crate::error::ClusterError;
    use std::io::{BufRead, BufReader, Read};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Env var that turns `watchdog_child` from a no-op into the victim.
    const WATCHDOG_CHILD: &str = "RINGTRAIL_EMBEDDED_WATCHDOG_CHILD";

    fn port_of(url: &str) -> u16 {
        let config: tokio_postgres::Config = url.parse().unwrap();
        config.get_ports()[0]
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
            Err(ClusterError::Postgres(_))
        ));

        drop(cluster);
        assert!(!root.exists(), "{root:?} survived drop");
        assert!(TcpStream::connect(("127.0.0.1", port_of(&first))).is_err());
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
            Err(ClusterError::Postgres(_))
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
        let error = cluster.start_again().unwrap_err();
        assert!(matches!(error, ClusterError::Setup(_)), "{error:?}");
        let error = error.to_string();
        assert!(error.contains("Address already in use"), "{error}");
        assert!(!cluster.is_running());
        drop(squatter);
        cluster.start_again().unwrap();
        assert_eq!(scalar(&url, "SELECT 1").unwrap().as_deref(), Some("1"));
    }

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
        // Test names leave out the crate: "cluster::tests::watchdog_child".
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
