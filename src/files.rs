//! Private files: what ringtrail creates on disk (spool segments and
//! their directory, the spool's key, JSON-lines files, the checkpoint
//! file, signing keys) is its owner's alone, whatever the umask: files
//! are created 0600 and directories 0700, the mode given at creation
//! (`open(2)`'s and `mkdir(2)`'s, so there is no moment when another
//! user could open them). Files ringtrail reads back or appends to are
//! opened without following a symbolic link in the last component
//! (`O_NOFOLLOW`) and checked after opening (`fstat`): a regular file,
//! owned by this process's effective user.
//!
//! Elsewhere than on Unix these are the plain `std` calls.

use std::fmt;
use std::fs::{DirBuilder, Metadata, OpenOptions};
use std::io;
use std::path::Path;

/// The mode of every file ringtrail creates.
pub(crate) const FILE_MODE: u32 = 0o600;

/// The mode of every directory ringtrail creates.
pub(crate) const DIR_MODE: u32 = 0o700;

/// The effective user id of this process.
#[cfg(unix)]
pub(crate) fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no
    // memory of ours.
    unsafe { libc::geteuid() }
}

/// Options that create a file with [`FILE_MODE`] and refuse to follow a
/// symbolic link at the path (the open fails with `ELOOP`; see
/// [`is_symlink_error`]). Add `read`, `write`, `append`, `create`… as
/// usual.
pub(crate) fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE).custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// [`private_options`] that also never block on opening: a FIFO put where
/// a file is expected opens at once (and [`check_owned_file`] then
/// refuses it) instead of waiting for a writer.
pub(crate) fn private_nonblocking_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = private_options();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options
}

/// Whether an open with [`private_options`] failed because the path is a
/// symbolic link.
pub(crate) fn is_symlink_error(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Creates `dir` and any missing parent with [`DIR_MODE`] (existing ones
/// are left as they are).
pub(crate) fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    #[allow(unused_mut)]
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)
}

/// Why a file or directory is not trusted as private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotPrivate {
    /// A symbolic link where a file or directory was expected.
    Symlink,
    /// Not a regular file (a FIFO, a device, a directory).
    NotAFile,
    /// Not a directory.
    NotADirectory,
    /// Owned by another user.
    Owner {
        /// Its owner.
        uid: u32,
        /// This process's effective user.
        mine: u32,
    },
    /// Group or others have access it must not give: `mode` is its
    /// permission bits.
    Mode(u32),
}

impl fmt::Display for NotPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotPrivate::Symlink => f.write_str("is a symbolic link"),
            NotPrivate::NotAFile => f.write_str("is not a regular file"),
            NotPrivate::NotADirectory => f.write_str("is not a directory"),
            NotPrivate::Owner { uid, mine } => {
                write!(
                    f,
                    "is owned by uid {uid}, not by this process's user ({mine})"
                )
            }
            NotPrivate::Mode(mode) => write!(f, "has mode {mode:o}"),
        }
    }
}

/// Checks the metadata of an opened file (`fstat`): a regular file,
/// owned by this process's user, none of the permission bits in
/// `forbidden` set (0o077 for a secret: no access at all for group and
/// others).
pub(crate) fn check_owned_file(meta: &Metadata, forbidden: u32) -> Result<(), NotPrivate> {
    if !meta.file_type().is_file() {
        return Err(NotPrivate::NotAFile);
    }
    check_owner_and_mode(meta, forbidden)
}

/// Checks a directory's metadata (from `symlink_metadata`, so a link is
/// seen as one): a directory, owned by this process's user, none of the
/// bits in `forbidden` set.
pub(crate) fn check_owned_dir(meta: &Metadata, forbidden: u32) -> Result<(), NotPrivate> {
    if meta.file_type().is_symlink() {
        return Err(NotPrivate::Symlink);
    }
    if !meta.is_dir() {
        return Err(NotPrivate::NotADirectory);
    }
    check_owner_and_mode(meta, forbidden)
}

fn check_owner_and_mode(meta: &Metadata, forbidden: u32) -> Result<(), NotPrivate> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mine = current_uid();
        if meta.uid() != mine {
            return Err(NotPrivate::Owner {
                uid: meta.uid(),
                mine,
            });
        }
        let mode = meta.mode() & 0o777;
        if mode & forbidden != 0 {
            return Err(NotPrivate::Mode(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = (meta, forbidden);
    Ok(())
}

/// The permission bits of `meta` (0 where there are none).
pub(crate) fn mode_of(meta: &Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        meta.mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn private_files_refuse_links_and_report_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-files-{}-{}",
            std::process::id(),
            crate::time::clock::unix_nanos_now()
        ));
        create_private_dir_all(&dir.join("a/b")).unwrap();
        let meta = std::fs::symlink_metadata(dir.join("a")).unwrap();
        assert_eq!(check_owned_dir(&meta, 0o077), Ok(()));
        let file = dir.join("a/f");
        let opened = private_options()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap();
        let meta = opened.metadata().unwrap();
        assert_eq!(mode_of(&meta) & 0o077, 0, "never more than the owner's");
        assert_eq!(check_owned_file(&meta, 0o077), Ok(()));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(check_owned_file(&meta, 0o077), Err(NotPrivate::Mode(0o640)));
        assert_eq!(check_owned_file(&meta, 0o022), Ok(()));
        let link = dir.join("a/link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let e = private_options().read(true).open(&link).unwrap_err();
        assert!(is_symlink_error(&e), "{e}");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert_eq!(check_owned_dir(&meta, 0), Err(NotPrivate::Symlink));
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert_eq!(check_owned_dir(&meta, 0), Err(NotPrivate::NotADirectory));
        let meta = std::fs::symlink_metadata(dir.join("a/b")).unwrap();
        assert_eq!(check_owned_file(&meta, 0), Err(NotPrivate::NotAFile));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
