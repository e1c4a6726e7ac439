//! The backstop that cleans up after a killed process: a small shell process
//! per cluster that outlives us just long enough to stop the server and
//! delete its directory.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::PoisonError;

use super::cluster::TempCluster;

impl TempCluster {
    /// Starts the backstop that cleans up after a killed process: a shell
    /// loop that waits for our `/proc` entry to vanish, then stops the server
    /// and deletes the directory. It runs as the server's user so `pg_ctl`
    /// works, in its own process group so a Ctrl-C aimed at the test run does
    /// not kill it before it has done its job, and with all output discarded.
    /// (`kill -0 $PARENT` would fail for a non-root watchdog of a root
    /// parent, hence `/proc`.) Best effort: without it we still clean up on
    /// every normal exit.
    pub(super) fn spawn_watchdog(&self) {
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

    /// Ends the watchdog once the cluster is gone, and reaps it so it does
    /// not linger as a zombie.
    pub(super) fn end_watchdog(&self) {
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = watchdog {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

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
        // Test names leave out the crate: "embedded::watchdog::tests::watchdog_child".
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
