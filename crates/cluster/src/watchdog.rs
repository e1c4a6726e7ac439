//! The backstop that cleans up after a killed process: a small shell process
//! per cluster that outlives us just long enough to stop the server and
//! delete its directory.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::pg_ctl::PgCtl;

/// The backstop process of one cluster, until [`end`](Self::end)ed.
#[derive(Debug)]
pub(super) struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts the backstop that cleans up after a killed process: a shell
    /// loop that waits for our `/proc` entry to vanish, then stops the server
    /// and deletes the directory. It runs as the server's user so `pg_ctl`
    /// works, in its own process group so a Ctrl-C aimed at the test run does
    /// not kill it before it has done its job, and with all output discarded.
    /// (`kill -0 $PARENT` would fail for a non-root watchdog of a root
    /// parent, hence `/proc`.) Best effort: without it we still clean up on
    /// every normal exit.
    ///
    /// `parent` is the process to outlive (ours), `pg_ctl` the server to stop
    /// and `root` the directory to delete. `None` when it could not start.
    pub(super) fn spawn(parent: u32, pg_ctl: &PgCtl, root: &Path) -> Option<Watchdog> {
        // Without procfs the loop would end at once and stop the server.
        if !Path::new(&format!("/proc/{parent}")).is_dir() {
            return None;
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
            .arg(pg_ctl.program("pg_ctl"))
            .arg(pg_ctl.data())
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0);
        if let Some(account) = pg_ctl.run_as() {
            command.uid(account.uid).gid(account.gid);
        }
        command.spawn().ok().map(|child| Watchdog { child })
    }

    /// Ends the watchdog once the cluster is gone, and reaps it so it does
    /// not linger as a zombie.
    pub(super) fn end(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
