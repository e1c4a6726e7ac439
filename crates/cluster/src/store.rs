//! [`LocalStore`]: a persistent PostgreSQL cluster in a data directory of
//! its own, for the `ringtrail` CLI when no database URL is given.
//!
//! Unlike a [`TempCluster`](super::TempCluster), a store is not a
//! throwaway: it is created on first use (`initdb`), reused afterwards,
//! and its server keeps running after the process that started it has
//! exited, so that the next command (or a long-running `ringtrail serve`)
//! finds it. Its data survives restarts of the server and of the machine.
//!
//! The layout, security and root handling are on [`LocalStore`].

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::account::{make_private_dir, server_account, Account};
use super::admin::simple_query;
use super::bindir::find_bindir;
use super::error::{ClusterError, Result};
use super::pg_ctl::{sh_quote, PgCtl, StopMode};

/// The database every store has, made on first use.
pub const STORE_DATABASE: &str = "ringtrail";

/// The default data directory when running as root (the server's user
/// cannot enter root's home).
pub const ROOT_DEFAULT_DIR: &str = "/var/lib/ringtrail";

/// The port number: with no TCP listener it only names the socket file
/// (`.s.PGSQL.5432`), which lives in the store's private `run/` directory.
const PORT: u16 = 5432;

/// Longest unix socket path the kernel accepts (`sun_path` is 108 bytes on
/// Linux, including the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The superuser `initdb` makes and every connection uses.
const USER: &str = "postgres";

/// A persistent PostgreSQL cluster in a data directory: created on first
/// use, started when it is not running, and left running afterwards.
///
/// [`open`](Self::open) returns once the server accepts connections and
/// the database [`STORE_DATABASE`] exists. Dropping a `LocalStore` does
/// not stop the server; [`stop`](Self::stop) does.
///
/// # Layout
///
/// Everything lives in one directory, mode 0700:
///
/// | path | what |
/// |------|------|
/// | `pgdata/` | the cluster's data directory |
/// | `run/` | the server's Unix socket (`.s.PGSQL.5432`), mode 0700 |
/// | `password` | the `postgres` superuser's password, mode 0600 |
/// | `server.log` | the server's log |
/// | `lock` | taken (`flock`) while a process creates or starts the store |
///
/// # Security
///
/// The server listens on no TCP address at all (`listen_addresses = ''`),
/// only on its socket in `run/`, which only the server's user can enter.
/// Every connection authenticates with `scram-sha-256` and a random
/// password that `initdb --pwfile` set and that is kept in `password`
/// (never `trust`).
///
/// # Running as root
///
/// As for the throwaway cluster, a root process runs the server as the
/// `postgres` system user and hands it the directory. That user must be
/// able to reach the directory, which rules out root's own home (usually
/// 0700): [`default_dir`](Self::default_dir) is then `/var/lib/ringtrail`.
///
/// ```no_run
/// use ringtrail_cluster::{LocalStore, StopMode};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = LocalStore::open(LocalStore::default_dir()?)?;
/// println!("connect to {}", store.url());
/// // Nothing stops it on drop; stop it explicitly when it is no longer needed.
/// store.stop(StopMode::Fast)?;
/// # Ok(())
/// # }
/// ```
pub struct LocalStore {
    /// The store's directory, absolute.
    dir: PathBuf,
    /// The server binaries bound to `dir/pgdata`, run detached.
    pg_ctl: PgCtl,
    /// The superuser's password, from `dir/password`.
    password: String,
    /// Whether this `open` ran `initdb`.
    created: bool,
    /// Whether this `open` started the server.
    started: bool,
}

impl LocalStore {
    /// The default data directory: `/var/lib/ringtrail` when running as
    /// root; otherwise `$XDG_DATA_HOME/ringtrail`, else
    /// `$HOME/.local/share/ringtrail` (only absolute values count, as the
    /// XDG base directory specification says).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Missing`] when neither `XDG_DATA_HOME` nor `HOME` is
    /// set to an absolute path.
    pub fn default_dir() -> Result<PathBuf> {
        // SAFETY: geteuid takes no arguments, cannot fail and touches no
        // memory of ours.
        if unsafe { libc::geteuid() } == 0 {
            return Ok(PathBuf::from(ROOT_DEFAULT_DIR));
        }
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let data = absolute("XDG_DATA_HOME")
            .or_else(|| absolute("HOME").map(|home| home.join(".local/share")))
            .ok_or_else(|| {
                ClusterError::Missing(
                    "no data directory for the local store: neither XDG_DATA_HOME nor HOME \
                     is set; give one (--data-dir or RINGTRAIL_DATA_DIR)"
                        .to_owned(),
                )
            })?;
        Ok(data.join("ringtrail"))
    }

    /// Opens the store in `dir`: creates the directory and the cluster
    /// (`initdb`) on first use, starts the server unless one is already
    /// running on it (started by another process), and creates the
    /// database [`STORE_DATABASE`] when missing. Two processes opening the
    /// same store at once take turns (an `flock` on `dir/lock`), so only
    /// one creates or starts it.
    ///
    /// The server started here keeps running after this process exits.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Missing`] when the server binaries (or, as root,
    /// the `postgres` account) are missing; [`ClusterError::Setup`] when
    /// the directory is unusable (not reachable by the server's user, a
    /// path too long for a socket) or `initdb`/`pg_ctl` fail (the message
    /// carries their output and the end of the server log);
    /// [`ClusterError::Io`] when a file cannot be made; and
    /// [`ClusterError::Postgres`] or [`ClusterError::Timeout`] when the
    /// server does not answer.
    pub fn open(dir: impl AsRef<Path>) -> Result<LocalStore> {
        let dir = std::path::absolute(dir.as_ref())?;
        let bindir = find_bindir()?;
        let run_as = server_account()?;
        if let Some(blocked) = run_as.and_then(|_| unreachable_ancestor(&dir)) {
            return Err(ClusterError::Setup(format!(
                "the server runs as the `postgres` user (we are root), which cannot enter {} \
                 (no search permission for others); choose a data directory it can reach, \
                 such as {ROOT_DEFAULT_DIR}",
                blocked.display()
            )));
        }
        let socket_dir = dir.join("run");
        let socket_len = socket_dir.as_os_str().len() + format!("/.s.PGSQL.{PORT}").len();
        if socket_len > MAX_SOCKET_PATH {
            return Err(ClusterError::Setup(format!(
                "the data directory's path is too long for the server's Unix socket \
                 ({socket_len} bytes, at most {MAX_SOCKET_PATH}): choose a shorter one"
            )));
        }
        prepare_dir(&dir, run_as)?;
        let _lock = Lock::take(&dir.join("lock"))?;

        let pg_ctl =
            PgCtl::new(bindir, dir.join("pgdata"), dir.join("server.log"), run_as).detached();
        let created = if pg_ctl.data().join("PG_VERSION").is_file() {
            false
        } else {
            create_cluster(&dir, &pg_ctl, run_as)?;
            true
        };
        let password = read_password(&dir.join("password"))?;
        if !socket_dir.is_dir() {
            make_private_dir(&socket_dir, run_as)?;
        }
        let started = if pg_ctl.status() {
            false
        } else {
            let options = [
                "-c".to_owned(),
                sh_quote("listen_addresses="),
                "-k".to_owned(),
                sh_quote(&socket_dir.to_string_lossy()),
            ]
            .join(" ");
            pg_ctl.start(PORT, &options)?;
            true
        };
        let store = LocalStore {
            dir,
            pg_ctl,
            password,
            created,
            started,
        };
        store.ensure_database()?;
        Ok(store)
    }

    /// Stops the server of the store in `dir` (`pg_ctl stop -m <mode>`),
    /// if one is running, without creating or starting anything. Its data
    /// stays; the next [`open`](Self::open) starts it again.
    ///
    /// # Errors
    ///
    /// As for [`stop`](Self::stop); also [`ClusterError::Missing`] when
    /// the server binaries or (as root) the `postgres` account are missing.
    pub fn stop_at(dir: impl AsRef<Path>, mode: StopMode) -> Result<()> {
        let dir = std::path::absolute(dir.as_ref())?;
        if !dir.join("pgdata").join("PG_VERSION").is_file() {
            return Ok(());
        }
        let pg_ctl = PgCtl::new(
            find_bindir()?,
            dir.join("pgdata"),
            dir.join("server.log"),
            server_account()?,
        )
        .detached();
        if pg_ctl.status() {
            pg_ctl.stop(mode)?;
        }
        Ok(())
    }

    /// The store's directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's data directory, `pgdata/` in the store's directory.
    pub fn data_dir(&self) -> &Path {
        self.pg_ctl.data()
    }

    /// The directory of the server's Unix socket, `run/` in the store's
    /// directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The server's log, `server.log` in the store's directory.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The connection string of the database [`STORE_DATABASE`] as the
    /// superuser: a libpq-style `key=value` string naming the socket
    /// directory as its host, with the password and `sslmode=disable`
    /// (TLS is never used on a Unix socket). It holds the password: do
    /// not print it.
    pub fn url(&self) -> String {
        self.url_for(STORE_DATABASE)
    }

    /// As [`url`](Self::url), for another database of the store.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "host={} port={PORT} user={USER} password={} dbname={} sslmode=disable",
            quote_value(&self.socket_dir().to_string_lossy()),
            quote_value(&self.password),
            quote_value(database),
        )
    }

    /// Whether this [`open`](Self::open) created the cluster (`initdb`).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Whether this [`open`](Self::open) started the server (it was not
    /// running).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Whether the server is up, as `pg_ctl status` reports it.
    pub fn is_running(&self) -> bool {
        self.pg_ctl.status()
    }

    /// Stops the server (`pg_ctl stop -m <mode> -w`); does nothing when it
    /// is not running. Its data stays.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Setup`] with `pg_ctl`'s output when the stop fails
    /// or times out, and [`ClusterError::Io`] when `pg_ctl` cannot be run.
    pub fn stop(&self, mode: StopMode) -> Result<()> {
        if self.pg_ctl.status() {
            self.pg_ctl.stop(mode)?;
        }
        Ok(())
    }

    /// Creates [`STORE_DATABASE`] unless it exists (the caller holds the
    /// lock, so no other `open` races it).
    fn ensure_database(&self) -> Result<()> {
        let admin = self.url_for("postgres");
        let exists = simple_query(
            &admin,
            &format!("SELECT 1 FROM pg_database WHERE datname = '{STORE_DATABASE}'"),
        )?;
        if exists.is_empty() {
            simple_query(&admin, &format!("CREATE DATABASE \"{STORE_DATABASE}\""))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the password.
        f.debug_struct("LocalStore")
            .field("dir", &self.dir)
            .field("created", &self.created)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// `value` quoted for a `key=value` connection string.
fn quote_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The first existing ancestor of `dir` (or `dir` itself) that others
/// cannot search, so the server's user could not reach the store.
fn unreachable_ancestor(dir: &Path) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = dir.ancestors().skip(1).collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .filter_map(|a| fs::metadata(a).ok().map(|m| (a, m)))
        .find(|(_, m)| m.permissions().mode() & 0o001 == 0)
        .map(|(a, _)| a.to_path_buf())
}

/// Creates `dir` (and its parents) when missing; makes it 0700 and, when
/// the server runs as another user, hands it to that user.
fn prepare_dir(dir: &Path, run_as: Option<Account>) -> Result<()> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent)?;
    }
    match make_private_dir(dir, run_as) {
        Ok(()) => return Ok(()),
        Err(ClusterError::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(ClusterError::Setup(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    if let Some(account) = run_as {
        std::os::unix::fs::chown(dir, Some(account.uid), Some(account.gid))?;
    }
    Ok(())
}

/// Runs `initdb` for a new store: a random superuser password in
/// `dir/password` (0600), `scram-sha-256` for every connection, and no TCP
/// listener in `postgresql.conf`. A data directory left half-made by an
/// interrupted `initdb` is removed first.
fn create_cluster(dir: &Path, pg_ctl: &PgCtl, run_as: Option<Account>) -> Result<()> {
    if pg_ctl.data().exists() {
        fs::remove_dir_all(pg_ctl.data())?;
    }
    let password_file = dir.join("password");
    // A password file without a cluster is from an interrupted first
    // run: start over with a new one.
    let _ = fs::remove_file(&password_file);
    write_password(&password_file, &random_password()?, run_as)?;
    let mut pwfile = std::ffi::OsString::from("--pwfile=");
    pwfile.push(&password_file);
    pg_ctl.initdb_with(&["-A".as_ref(), "scram-sha-256".as_ref(), pwfile.as_os_str()])?;
    let conf = pg_ctl.data().join("postgresql.conf");
    let mut file = fs::OpenOptions::new().append(true).open(&conf)?;
    file.write_all(
        b"\n# ringtrail local store: the Unix socket in the store's run/ only.\n\
          listen_addresses = ''\n",
    )?;
    Ok(())
}

/// 32 hex digits from the kernel's random source.
fn random_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes the password file: mode 0600, owned by the server's user (its
/// `initdb --pwfile` reads it).
fn write_password(path: &Path, password: &str, run_as: Option<Account>) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(password.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    if let Some(account) = run_as {
        std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))?;
    }
    Ok(())
}

/// The superuser's password from the store's password file.
fn read_password(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).map_err(|e| {
        ClusterError::Setup(format!(
            "the store's password file {} cannot be read: {e}",
            path.display()
        ))
    })?;
    let password = text.trim();
    if password.is_empty() {
        return Err(ClusterError::Setup(format!(
            "the store's password file {} is empty",
            path.display()
        )));
    }
    Ok(password.to_owned())
}

/// An exclusive `flock` on the store's lock file, released on drop (and
/// never inherited: the file is opened close-on-exec, so the server it
/// starts does not hold it).
struct Lock {
    _file: fs::File,
}

impl Lock {
    /// Waits for and takes the lock.
    fn take(path: &Path) -> Result<Lock> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        loop {
            // SAFETY: flock on a descriptor we own and keep open; it
            // touches no memory of ours.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_connection_strings() {
        assert_eq!(quote_value("/a b/run"), "'/a b/run'");
        assert_eq!(quote_value(r"it's\"), r"'it\'s\\'");
    }

    #[test]
    fn passwords_are_random_hex() {
        let (a, b) = (random_password().unwrap(), random_password().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }

    /// A fresh path for a store (not created: `open` makes it), in a
    /// directory the server's user can reach when we are root.
    fn scratch_dir(name: &str) -> PathBuf {
        let base = std::env::temp_dir();
        let base = if unreachable_ancestor(&base.join("x")).is_some() {
            PathBuf::from("/tmp")
        } else {
            base
        };
        let dir = base.join(format!("rt-store-{name}-{}", std::process::id()));
        let _ = LocalStore::stop_at(&dir, StopMode::Immediate);
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_store_is_created_kept_and_restarted() {
        use crate::admin::scalar;
        use std::os::unix::fs::MetadataExt;

        let dir = scratch_dir("lifecycle");
        let store = LocalStore::open(&dir).unwrap();
        assert!(store.created() && store.started());
        assert!(store.is_running());
        assert_eq!(store.dir(), dir);
        let url = store.url();
        assert!(!format!("{store:?}").contains(&store.password));
        assert_eq!(
            scalar(&url, "SELECT current_database()")
                .unwrap()
                .as_deref(),
            Some(STORE_DATABASE)
        );
        // Unix socket only, password authentication, durable.
        assert_eq!(
            scalar(&url, "SHOW listen_addresses").unwrap().as_deref(),
            Some("")
        );
        assert_eq!(scalar(&url, "SHOW fsync").unwrap().as_deref(), Some("on"));
        let hba = scalar(
            &url,
            "SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules",
        )
        .unwrap();
        assert_eq!(hba.as_deref(), Some("scram-sha-256"));
        let wrong = url.replace(&store.password, "wrong");
        assert!(matches!(
            scalar(&wrong, "SELECT 1"),
            Err(ClusterError::Postgres(_))
        ));
        crate::admin::simple_query(
            &url,
            "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)",
        )
        .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&store.socket_dir()), 0o700);
        assert_eq!(mode(&dir.join("password")), 0o600);

        // Open again while running: reused, not started.
        let again = LocalStore::open(&dir).unwrap();
        assert!(!again.created() && !again.started());
        assert_eq!(again.url(), url);

        // Stopped: the next open starts it, and the rows are there.
        LocalStore::stop_at(&dir, StopMode::Fast).unwrap();
        assert!(!store.is_running());
        let restarted = LocalStore::open(&dir).unwrap();
        assert!(!restarted.created() && restarted.started());
        assert_eq!(
            scalar(&url, "SELECT x FROM kept").unwrap().as_deref(),
            Some("7")
        );
        restarted.stop(StopMode::Fast).unwrap();
        assert!(!restarted.is_running());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_first_opens_make_one_store() {
        let dir = scratch_dir("race");
        let opened: Vec<LocalStore> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3).map(|_| s.spawn(|| LocalStore::open(&dir))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert_eq!(opened.iter().filter(|s| s.created()).count(), 1);
        assert_eq!(opened.iter().filter(|s| s.started()).count(), 1);
        assert!(opened.iter().all(|s| s.url() == opened[0].url()));
        LocalStore::stop_at(&dir, StopMode::Fast).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_default_dir_is_absolute() {
        if let Ok(dir) = LocalStore::default_dir() {
            assert!(dir.is_absolute(), "{dir:?}");
            assert!(dir.ends_with("ringtrail"), "{dir:?}");
        }
    }
}
