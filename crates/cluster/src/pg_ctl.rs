//! Running the server binaries of one data directory: `initdb`, `pg_ctl
//! start` (on a given or a free port), `pg_ctl stop` and `pg_ctl status`, and
//! turning their failures into messages that explain them.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::account::Account;
use super::error::{ClusterError, Result};

/// How many ports `start_with` tries before giving up. A port found free can
/// be taken by another process before the server binds it (parallel tests
/// all do this at once), so one retry is not always enough.
const START_ATTEMPTS: usize = 4;

/// Seconds `pg_ctl` waits for the server to start or stop (`-t`).
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// How much of the end of `server.log` goes into an error message.
const LOG_TAIL_BYTES: u64 = 4096;

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

/// The server binaries bound to one data directory and server log, run as
/// the server's user.
#[derive(Debug)]
pub(super) struct PgCtl {
    /// Real directory of `initdb`, `pg_ctl` and `postgres`.
    bindir: PathBuf,
    /// The cluster's data directory.
    data: PathBuf,
    /// Where the server writes its log.
    log: PathBuf,
    /// `Some` when we are root and run the server as `postgres`.
    run_as: Option<Account>,
    /// Run the binaries in a process group of their own, so that the
    /// server they start outlives us and a Ctrl-C aimed at us (the
    /// terminal's foreground group) does not shut it down.
    detached: bool,
}

/// Why `pg_ctl start` failed, and whether another port might help.
struct StartFailure {
    error: ClusterError,
    port_in_use: bool,
}

impl PgCtl {
    pub(super) fn new(
        bindir: PathBuf,
        data: PathBuf,
        log: PathBuf,
        run_as: Option<Account>,
    ) -> PgCtl {
        PgCtl {
            bindir,
            data,
            log,
            run_as,
            detached: false,
        }
    }

    /// The same binaries, run in a process group of their own: the server
    /// they start is not ours to stop (a persistent store), so neither a
    /// Ctrl-C aimed at us nor our exit reaches it.
    pub(super) fn detached(mut self) -> PgCtl {
        self.detached = true;
        self
    }

    /// The path of one of the server binaries.
    pub(super) fn program(&self, program: &str) -> PathBuf {
        self.bindir.join(program)
    }

    /// The cluster's data directory.
    pub(super) fn data(&self) -> &Path {
        &self.data
    }

    /// The account the server runs as, when not ourselves.
    pub(super) fn run_as(&self) -> Option<Account> {
        self.run_as
    }

    /// A command for one of the server binaries: run as the server's user,
    /// with no stdin, captured output, and no PG* variables that could
    /// redirect it to another cluster.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.program(program));
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
        if self.detached {
            command.process_group(0);
        }
        command
    }

    /// `initdb` of a throwaway cluster: `trust` authentication, no fsync.
    pub(super) fn initdb(&self) -> Result<()> {
        // Nothing survives this cluster; skipping fsync saves seconds.
        self.initdb_with(&["-A".as_ref(), "trust".as_ref(), "--no-sync".as_ref()])
    }

    /// `initdb` as the `postgres` superuser in UTF-8, with C.UTF-8, or
    /// plain C where that locale is missing, and `extra` arguments
    /// (authentication, syncing).
    pub(super) fn initdb_with(&self, extra: &[&std::ffi::OsStr]) -> Result<()> {
        let mut failures = Vec::new();
        for locale in ["C.UTF-8", "C"] {
            let output = self
                .command("initdb")
                .arg("-D")
                .arg(&self.data)
                .args(["-U", "postgres", "-E", "UTF8"])
                .args(extra)
                .arg(format!("--locale={locale}"))
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
        Err(ClusterError::Setup(failures.join("\n")))
    }

    /// Starts the server on a free port, retrying with another port when the
    /// one we picked was taken before the server could bind it. Returns the
    /// port the server listens on.
    ///
    /// `options` are the server options except `-p`, already shell-quoted.
    pub(super) fn start_on_free_port(&self, options: &str) -> Result<u16> {
        let mut last_failure = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match self.try_start(port, options) {
                Ok(()) => return Ok(port),
                Err(failure) if failure.port_in_use => last_failure = Some(failure.error),
                Err(failure) => return Err(failure.error),
            }
        }
        let last = last_failure.map(|e| e.to_string()).unwrap_or_default();
        Err(ClusterError::Setup(format!(
            "every port tried was taken by another process ({START_ATTEMPTS} attempts); last failure: {last}"
        )))
    }

    /// `pg_ctl start -w` with `options` (shell-quoted, without `-p`) on
    /// `port`.
    pub(super) fn start(&self, port: u16, options: &str) -> Result<()> {
        self.try_start(port, options)
            .map_err(|failure| failure.error)
    }

    /// `pg_ctl start -w` with `options` on `port`.
    fn try_start(&self, port: u16, options: &str) -> std::result::Result<(), StartFailure> {
        // Only the log written by this attempt explains its failure.
        let log_offset = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let options = format!("-p {port} {options}");
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
                error: ClusterError::Io(e),
                port_in_use: false,
            })?;
        if output.status.success() {
            return Ok(());
        }
        let log = read_log_from(&self.log, log_offset);
        let port_in_use = log.contains("Address already in use")
            || log.contains("could not bind")
            || log.contains("could not create any TCP/IP sockets");
        let mut message = describe_failure(&format!("pg_ctl start (port {port})"), &output);
        message.push_str("\n--- end of server.log ---\n");
        message.push_str(if log.is_empty() { "(empty)" } else { &log });
        Err(StartFailure {
            error: ClusterError::Setup(message),
            port_in_use,
        })
    }

    /// `pg_ctl stop -m <mode> -w`.
    pub(super) fn stop(&self, mode: StopMode) -> Result<()> {
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
            Err(ClusterError::Setup(describe_failure(
                &format!("pg_ctl stop -m {}", mode.as_arg()),
                &output,
            )))
        }
    }

    /// Whether the server is up, as `pg_ctl status` reports it.
    pub(super) fn status(&self) -> bool {
        self.command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.data)
            .output()
            .is_ok_and(|output| output.status.success())
    }
}

/// Single-quotes `s` for a POSIX shell.
pub(super) fn sh_quote(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }
}
