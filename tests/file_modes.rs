//! Every file and directory ringtrail creates is private to its owner,
//! whatever the umask: this test process runs with umask 0, so a file
//! created without an explicit mode would come out 0666 (a directory
//! 0777). Spool directories that another user owns or may write to, and
//! symlinks in their place, are refused. (Run as root, the owner checks
//! compare uids: root bypasses the modes themselves.)

use ringtrail_testkit as common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use ringtrail::{Checkpoints, Error, Format, Jsonl, Spool};
use tracing::dispatcher;

/// umask 0 for the whole process, before any test creates anything.
fn umask_zero() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: umask only sets the process's file-creation mask; it
        // cannot fail and touches no memory.
        unsafe { libc::umask(0) };
    });
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringtrail-modes-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every file under `dir` (not descending), with its mode.
fn modes_in(dir: &Path) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                mode(&e.path()),
            )
        })
        .collect();
    out.sort();
    out
}

/// Spools `n` events into `spool` with the server unreachable.
fn spool_some(spool: &Path, n: u64) {
    let (layer, guard) = ringtrail::Builder::new()
        .postgres("postgres://postgres@127.0.0.1:1/none")
        .spool(Spool::dir(spool).after(Duration::ZERO))
        .max_retries(0)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || {
        for i in 0..n {
            tracing::info!(i, "spooled");
        }
    });
    let _ = guard.flush();
    assert_eq!(guard.stats().spooled, n);
}

#[test]
fn the_spool_directory_and_its_files_are_owner_only() {
    umask_zero();
    let root = temp("spool");
    let spool = root.join("a/b/spool");
    spool_some(&spool, 10);
    assert_eq!(mode(&spool), 0o700, "the spool directory");
    assert_eq!(mode(&root.join("a")), 0o700, "directories made on the way");
    let files = modes_in(&spool);
    assert!(
        files.iter().any(|(n, _)| n.ends_with(".pgcopy")),
        "{files:?}"
    );
    for (name, m) in &files {
        assert_eq!(*m, 0o600, "{name}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_existing_spool_directory_others_may_read_is_tightened() {
    umask_zero();
    let spool = temp("tighten");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
    spool_some(&spool, 1);
    assert_eq!(mode(&spool), 0o700);
    let _ = std::fs::remove_dir_all(&spool);
}

fn refused(spool: &Path) -> String {
    let err = ringtrail::Builder::new()
        .postgres("postgres://postgres@127.0.0.1:1/none")
        .spool(Spool::dir(spool))
        .build()
        .err()
        .unwrap_or_else(|| panic!("{} must be refused", spool.display()));
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    err.chain()
}

#[test]
fn a_spool_directory_others_can_write_is_refused() {
    umask_zero();
    let spool = temp("writable");
    std::fs::create_dir_all(&spool).unwrap();
    for m in [0o777, 0o770, 0o702] {
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(m)).unwrap();
        let msg = refused(&spool);
        assert!(msg.contains("group or others"), "{msg}");
    }
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn a_spool_directory_of_another_user_is_refused() {
    umask_zero();
    let spool = temp("other-owner");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).unwrap();
    let me = std::fs::metadata(&spool).unwrap().uid();
    let other = if me == 65534 { 65533 } else { 65534 };
    if std::os::unix::fs::chown(&spool, Some(other), None).is_err() {
        eprintln!("skipped: cannot chown (not root)");
        return;
    }
    let msg = refused(&spool);
    assert!(msg.contains("owned by uid"), "{msg}");
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn a_symlink_in_place_of_the_spool_directory_is_refused() {
    umask_zero();
    let root = temp("symlink");
    let real = root.join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = root.join("spool");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let msg = refused(&link);
    assert!(msg.contains("symbolic link"), "{msg}");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing made");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_json_lines_file_is_owner_only() {
    umask_zero();
    let dir = temp("jsonl");
    let path = dir.join("logs/app.ndjson");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (layer, guard) = ringtrail::Builder::new()
        .jsonl(Jsonl::file(&path, Format::Native).rotate_bytes(200).keep(2))
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || {
        for i in 0..20 {
            tracing::info!(i, "a line long enough to rotate the file now and then");
        }
    });
    guard.flush().unwrap();
    drop(guard);
    let files = modes_in(path.parent().unwrap());
    assert!(files.len() >= 2, "rotated: {files:?}");
    for (name, m) in &files {
        assert_eq!(*m, 0o600, "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_checkpoint_file_and_the_key_are_owner_only() {
    umask_zero();
    let url = common::database();
    let dir = temp("checkpoints");
    let file = dir.join("out/checkpoints");
    let key = dir.join("keys/checkpoint.key");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let (dispatch, guard) = common::start(
        common::builder(&url).checkpoints(
            Checkpoints::file(&file)
                .key(&key)
                .every(1, Duration::from_secs(3600)),
        ),
    );
    dispatcher::with_default(&dispatch, || tracing::info!("checkpointed"));
    guard.flush().unwrap();
    drop(guard);
    assert_eq!(mode(&file), 0o600, "the checkpoint file");
    assert_eq!(mode(&key), 0o600, "the key");
    assert_eq!(mode(key.parent().unwrap()), 0o700, "the key's directory");
    // The public key is for anyone to read.
    assert_eq!(mode(&ringtrail::chain::key::public_path(&key)), 0o644);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The checkpoint file is the copy kept outside the database: when it
/// cannot be written (here a directory, then a symbolic link, where the
/// file should be) each checkpoint missing from it is counted in
/// `Stats::checkpoint_file_errors`, not only printed; the table still
/// gets every one, and a link's target is left alone.
#[test]
fn a_checkpoint_file_that_cannot_be_written_is_counted() {
    umask_zero();
    let dir = temp("checkpoint-errors");
    let key = dir.join("keys/checkpoint.key");
    let victim = dir.join("victim");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&victim, "precious\n").unwrap();
    let directory = dir.join("out/checkpoints");
    std::fs::create_dir_all(&directory).unwrap();
    let link = dir.join("out/linked");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for file in [directory, link] {
        let url = common::database();
        let (dispatch, guard) = common::start(
            common::builder(&url)
                .flush_interval(Duration::from_secs(3600))
                .checkpoints(
                    Checkpoints::file(&file)
                        .key(&key)
                        .every(1, Duration::from_secs(3600)),
                ),
        );
        for i in 0..3 {
            dispatcher::with_default(&dispatch, || tracing::info!(i, "checkpointed"));
            guard.flush().unwrap();
        }
        let stats = guard.stats();
        let in_table: i64 = common::client(&url)
            .query_one("SELECT count(*) FROM ringtrail.checkpoints", &[])
            .unwrap()
            .get(0);
        assert_eq!(in_table, 3, "{}", file.display());
        assert_eq!(stats.checkpoint_file_errors, 3, "{stats:?}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let _ = std::fs::remove_dir_all(&dir);
}
