//! Who the server runs as, and the private directories it lives in.
//!
//! PostgreSQL refuses to run as root. When this process is root, the server
//! runs as the `postgres` system account and every directory it needs is
//! handed to that account; otherwise everything runs as the current user.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{ClusterError, Result};

/// The unprivileged account the server runs as when we are root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Account {
    pub(super) uid: u32,
    pub(super) gid: u32,
}

/// `None` when we can run the server ourselves; the `postgres` account when
/// we are root, because PostgreSQL refuses to run as root.
pub(super) fn server_account() -> Result<Option<Account>> {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory
    // of ours.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| {
        ClusterError::Missing(format!(
            "running as root, so the server must run as the `postgres` user, \
             but /etc/passwd could not be read: {e}"
        ))
    })?;
    parse_passwd(&passwd, "postgres").map(Some).ok_or_else(|| {
        ClusterError::Missing(
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
pub(super) fn create_root_dir(run_as: Option<Account>) -> Result<PathBuf> {
    static CLUSTERS: AtomicU64 = AtomicU64::new(0);
    let base = temp_base(run_as);
    let pid = std::process::id();
    loop {
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("ringtrail-pg-{pid}-{n}"));
        match make_private_dir(&root, run_as) {
            Ok(()) => return Ok(root),
            // Left behind by an earlier process with our pid: pick another n.
            Err(ClusterError::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
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
pub(super) fn make_private_dir(path: &Path, run_as: Option<Account>) -> Result<()> {
    fs::DirBuilder::new().mode(0o700).create(path)?;
    // The umask can only remove bits, but be explicit: PostgreSQL insists.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    if let Some(account) = run_as {
        std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
