//! Finding the PostgreSQL server binaries installed on this machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{ClusterError, Result};

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
/// [`ClusterError::Missing`] saying what to install when nothing is found.
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
    Err(ClusterError::Missing(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
