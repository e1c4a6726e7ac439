//! The writer's side of the hash chain: every row of a batch goes into
//! its digest as it is encoded, and sealing the batch links it to the one
//! before ([`crate::chain`] has the digest, the link and the checkpoint
//! format; this file only drives them).
//!
//! One [`Chainer`] per pipeline, on the writer thread, so one chain is
//! serial without a lock, whatever lane commits which batch. The chain id
//! is new for every pipeline (a UUIDv7), so several processes each keep a
//! chain of their own. Every [`Checkpoints::every`] batches or interval,
//! and at shutdown, the head is signed: the note
//! travels with its batch into `ringtrail.checkpoints`, is appended (and
//! fsynced) to the checkpoint file when there is one, by the disk lane
//! (`disk.rs`) rather than the writer, and is handed to the JSON-lines
//! sink when that one is on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{ChainEntry, CheckpointRow, HeadCheckpoint};
use super::Outcome;
use crate::chain::canonical::stored_micros;
use crate::chain::checkpoint::Checkpoint;
use crate::chain::digest::BatchDigest;
use crate::chain::key::{default_key_path, SigningKey, VerifierKey, DEFAULT_KEY_NAME, KEY_ENV};
use crate::chain::link::{BatchMeta, Chain, ChainId};
use crate::encode::CopyEncoder;
use crate::error::check_duration;
use crate::files::{check_owned_file, mode_of, private_options, FILE_MODE};
use crate::ids::Uuid7;
use crate::time::clock::unix_nanos_now;
use crate::{Error, Result, Row};

/// The signed checkpoints of the hash chain: how often the chain's head
/// is signed, with which key, and the file outside the database that gets
/// a copy of each. Set with
/// [`Builder::checkpoints`](crate::Builder::checkpoints); the chain itself
/// is turned on and off with [`Builder::chain`](crate::Builder::chain).
///
/// Every checkpoint goes into `ringtrail.checkpoints` with its batch, and
/// to the JSON-lines sink when that one is on. With a
/// [`file`](Checkpoints::file), each is also appended (and fsynced) to it:
/// the copy `ringtrail verify --checkpoints` checks the database against.
///
/// The signing key is never kept beside the checkpoints it signs: whoever
/// may write the checkpoint file's directory could otherwise swap the key
/// (or read it, where the file is shipped or shared). A
/// [`key`](Checkpoints::key) in the checkpoint file's directory is
/// refused.
///
/// | setting | default |
/// |---|---|
/// | [`file`](Checkpoints::file) | none: checkpoints in the database only ([`Checkpoints::new`]) |
/// | [`key`](Checkpoints::key) | `RINGTRAIL_CHECKPOINT_KEY` when set; else, with a file, the per-user key [`default_key_path`] (`$XDG_DATA_HOME/ringtrail/checkpoint.key`, else `~/.local/share/ringtrail/checkpoint.key`); else a key made for this process |
/// | [`every`](Checkpoints::every) | 64 batches or 60 s, whichever comes first (and at shutdown) |
///
/// ```no_run
/// use std::time::Duration;
/// use ringtrail::Checkpoints;
///
/// let (layer, guard) = ringtrail::Builder::new()
///     .postgres("postgres://app@db/app")
///     .checkpoints(
///         Checkpoints::file("/var/lib/app/checkpoints.jsonl")
///             .key("/etc/app/checkpoint.key")
///             .every(128, Duration::from_secs(30)),
///     )
///     .build()?;
/// # Ok::<(), ringtrail::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Checkpoints {
    /// Where signed checkpoints are appended.
    pub(crate) file: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
    pub(crate) every_batches: u64,
    pub(crate) every: Duration,
}

impl Checkpoints {
    /// The default [`every`](Checkpoints::every): 64 batches…
    const EVERY_BATCHES: u64 = 64;
    /// … or 60 s.
    const EVERY: Duration = Duration::from_secs(60);

    /// Checkpoints in the database only, with the defaults.
    pub fn new() -> Checkpoints {
        Checkpoints {
            file: None,
            key: None,
            every_batches: Self::EVERY_BATCHES,
            every: Self::EVERY,
        }
    }

    /// Appends every signed checkpoint (and fsyncs) to the file at `path`
    /// as well (made owner-only; never through a symbolic link). Unless
    /// [`key`](Checkpoints::key) names one or `RINGTRAIL_CHECKPOINT_KEY`
    /// holds one, the signing key is this user's
    /// [`default_key_path`] (owner-only in an owner-only directory, made at
    /// first start with its public key printed on stderr and written
    /// beside it as `checkpoint.key.pub`).
    pub fn file(path: impl Into<PathBuf>) -> Checkpoints {
        Checkpoints {
            file: Some(path.into()),
            ..Checkpoints::new()
        }
    }

    /// The file of the signing key (made at first start when missing,
    /// 0600, its public key written to `<path>.pub`). It must be a regular
    /// file of this process's user that group and others cannot access,
    /// not a symbolic link, and not in the checkpoint file's directory.
    /// Without it the key comes from `RINGTRAIL_CHECKPOINT_KEY`, else, with
    /// a [`file`](Checkpoints::file), from [`default_key_path`], else one
    /// is made for this process (its public key is stored with each
    /// checkpoint).
    pub fn key(mut self, path: impl Into<PathBuf>) -> Checkpoints {
        self.key = Some(path.into());
        self
    }

    /// Signs a checkpoint after every `batches` batches (at least 1) or
    /// `interval`, whichever comes first (default 64 batches or 60 s), and
    /// at shutdown.
    pub fn every(mut self, batches: u64, interval: Duration) -> Checkpoints {
        self.every_batches = batches.max(1);
        self.every = interval;
        self
    }
}

impl Default for Checkpoints {
    /// [`Checkpoints::new`].
    fn default() -> Self {
        Checkpoints::new()
    }
}

/// What the builder fills in for the chain.
#[derive(Debug, Clone)]
pub(crate) struct ChainConfig {
    pub(crate) enabled: bool,
    pub(crate) checkpoints: Checkpoints,
}

impl Default for ChainConfig {
    /// On, a checkpoint every 64 batches or 60 s, no checkpoint file.
    fn default() -> Self {
        ChainConfig {
            enabled: true,
            checkpoints: Checkpoints::new(),
        }
    }
}

impl ChainConfig {
    /// [`Error::Config`] for a checkpoint interval over a year.
    pub(crate) fn validate(&self) -> Result<()> {
        check_duration("the checkpoint interval", self.checkpoints.every)
    }
}

/// The chain of one pipeline, driven by the PostgreSQL sink.
pub(crate) struct Chainer {
    chain: Chain,
    digest: BatchDigest,
    key: SigningKey,
    public_key: String,
    file: Option<PathBuf>,
    every_batches: u64,
    every: Duration,
    /// Notes signed for `file` and not yet taken for the disk lane
    /// (`sink/disk.rs`), which appends them: the writer never waits on
    /// the disk.
    file_notes: Vec<String>,
    /// Batches linked since the last checkpoint, and when it was.
    since: u64,
    signed_at: Instant,
    /// Notes not yet handed to the JSON-lines sink.
    notes: Vec<String>,
}

impl Chainer {
    /// The key, in this order: the key file given, `RINGTRAIL_CHECKPOINT_KEY`,
    /// with a checkpoint file the per-user [`default_key_path`] (made at
    /// first start, mode 0600, its public key printed on stderr and written
    /// to `.pub`), else a key made for this process only (its public key is
    /// stored with each checkpoint in `ringtrail.checkpoints`). A key file
    /// in the checkpoint file's directory is refused.
    pub(crate) fn new(config: &ChainConfig) -> Result<Option<Chainer>> {
        if !config.enabled {
            return Ok(None);
        }
        let bad_key =
            |e: crate::chain::key::KeyError| Error::Config(format!("checkpoint key: {e}"));
        let checkpoints = &config.checkpoints;
        let from_file = |path: &Path| -> Result<SigningKey> {
            if let Some(file) = &checkpoints.file {
                if same_directory(path, file) {
                    return Err(Error::Config(format!(
                        "checkpoint key: {} is in the directory of the checkpoint file {}; \
                         keep the key apart from the checkpoints it signs",
                        path.display(),
                        file.display()
                    )));
                }
            }
            let loaded = SigningKey::load_or_generate(path, DEFAULT_KEY_NAME).map_err(bad_key)?;
            if loaded.generated {
                eprintln!(
                    "ringtrail: made a checkpoint signing key at {} (owner-only); its public key, also in {}: {}",
                    path.display(),
                    loaded.public_path.display(),
                    loaded.key.verifier()
                );
            }
            Ok(loaded.key)
        };
        let key = match &checkpoints.key {
            Some(path) => from_file(path)?,
            None => match SigningKey::from_env(DEFAULT_KEY_NAME).map_err(bad_key)? {
                Some(key) => key,
                None if checkpoints.file.is_some() => match default_key_path() {
                    Some(path) => {
                        refuse_old_key_beside(checkpoints.file.as_deref())?;
                        from_file(&path)?
                    }
                    None => {
                        return Err(Error::Config(format!(
                            "checkpoint key: a checkpoint file needs a key kept elsewhere: \
                             set Checkpoints::key or {KEY_ENV} (neither XDG_DATA_HOME nor HOME \
                             is set for the default)"
                        )))
                    }
                },
                None => SigningKey::generate(DEFAULT_KEY_NAME).map_err(bad_key)?,
            },
        };
        let id = Uuid7::unpredictable().next(unix_nanos_now());
        Ok(Some(Chainer {
            chain: Chain::new(ChainId(id)),
            digest: BatchDigest::new(),
            public_key: key.verifier().to_string(),
            key,
            file: checkpoints.file.clone(),
            file_notes: Vec::new(),
            every_batches: checkpoints.every_batches.max(1),
            every: checkpoints.every,
            since: 0,
            signed_at: Instant::now(),
            notes: Vec::new(),
        }))
    }

    /// A row of the batch in progress (drop reports included), with the
    /// encoder that just wrote its tuple (its `fields` in JCS order: see
    /// [`PostgresSink`](super::postgres::PostgresSink)).
    pub(crate) fn push(&mut self, encoder: &CopyEncoder, row: &Row<'_>) {
        if encoder.last_tuple_canonical() {
            self.digest.push_canonical(encoder.last_tuple(), row);
        } else {
            self.digest.push_encoded(encoder.last_tuple(), row);
        }
    }

    /// Seals the batch in progress (`id`, `rows`, event times in Unix
    /// nanoseconds): its link, and a checkpoint when one is due or
    /// `closing` (the pipeline shuts down: this batch may be the last to
    /// carry one into the table).
    pub(crate) fn seal(
        &mut self,
        id: [u8; 16],
        rows: u32,
        first_ts: i64,
        last_ts: i64,
        closing: bool,
    ) -> (ChainEntry, Option<Arc<CheckpointRow>>) {
        let digest = self.digest.finish();
        let meta = BatchMeta {
            batch_id: id,
            rows,
            first_ts: stored_micros(first_ts),
            last_ts: stored_micros(last_ts),
        };
        let link = self.chain.link(&digest, &meta);
        let entry = ChainEntry {
            chain_id: self.chain.id().0,
            seq: link.seq,
            sealed_id: id,
            sealed_rows: rows,
            digest,
            prev_hash: link.prev_hash,
            hash: link.hash,
        };
        self.since += 1;
        let due =
            closing || self.since >= self.every_batches || self.signed_at.elapsed() >= self.every;
        (entry, due.then(|| Arc::new(self.checkpoint())))
    }

    /// Signs the head now: kept for the checkpoint file (see
    /// [`take_file_notes`](Self::take_file_notes)) and the JSON-lines
    /// sink, returned for the table.
    fn checkpoint(&mut self) -> CheckpointRow {
        let now = unix_nanos_now();
        let note = Checkpoint {
            chain: self.chain.id(),
            seq: self.chain.seq(),
            head: self.chain.head(),
            time_micros: now.div_euclid(1_000),
        }
        .sign(&self.key);
        if self.file.is_some() {
            self.file_notes.push(note.clone());
        }
        self.notes.push(note.clone());
        self.since = 0;
        self.signed_at = Instant::now();
        CheckpointRow {
            note,
            public_key: self.public_key.clone(),
            signed_at: now,
        }
    }

    /// At shutdown: signs the head if batches were linked since the last
    /// checkpoint (to the file and the JSON-lines sink), and returns it for
    /// the table, where no batch is left to carry it.
    pub(crate) fn finish(&mut self) -> Option<HeadCheckpoint> {
        if self.since == 0 {
            return None;
        }
        let row = self.checkpoint();
        Some(HeadCheckpoint {
            chain_id: self.chain.id().0,
            seq: self.chain.seq(),
            head: self.chain.head(),
            row,
        })
    }

    /// Checkpoint notes signed since the last call.
    pub(crate) fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// The checkpoint file and the notes signed for it since the last
    /// call, when there are any: for the disk lane to append.
    pub(crate) fn take_file_notes(&mut self) -> Option<(PathBuf, Vec<String>)> {
        let path = self.file.as_ref()?;
        if self.file_notes.is_empty() {
            return None;
        }
        Some((path.clone(), std::mem::take(&mut self.file_notes)))
    }

    /// Whether checkpoints also go to a checkpoint file.
    pub(crate) fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// The public key checkpoints are signed with.
    pub(crate) fn verifier(&self) -> VerifierKey {
        self.key.verifier()
    }
}

/// Before the key moved to [`default_key_path`], a key was made beside the
/// checkpoint file as `<file>.key`. One still there would silently stop
/// being used (checkpoints would switch to another key): refused, with
/// what to do.
fn refuse_old_key_beside(file: Option<&Path>) -> Result<()> {
    let Some(file) = file else { return Ok(()) };
    let mut beside = file.as_os_str().to_owned();
    beside.push(".key");
    let beside = PathBuf::from(beside);
    if std::fs::symlink_metadata(&beside).is_ok() {
        return Err(Error::Config(format!(
            "checkpoint key: {} is a signing key beside the checkpoint file, where keys are no \
             longer kept; move it to another directory and name it with Checkpoints::key (or \
             to the default {}), or remove it",
            beside.display(),
            default_key_path().map_or_else(|| "-".to_owned(), |p| p.display().to_string())
        )));
    }
    Ok(())
}

/// Whether `a` and `b` name files in the same directory (compared after
/// resolving the directories, where they exist).
fn same_directory(a: &Path, b: &Path) -> bool {
    let dir = |p: &Path| {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::canonicalize(parent)
            .or_else(|_| std::path::absolute(parent))
            .unwrap_or_else(|_| parent.to_owned())
    };
    dir(a) == dir(b)
}

/// Appends `notes` to the checkpoint file at `path` (on the disk lane),
/// counting in `out` those that could not be: the copy outside the
/// database must not stop unnoticed (`Stats::checkpoint_file_errors`, and
/// its metric).
pub(crate) fn append_to_file(path: &Path, notes: &[String], out: &mut Outcome) {
    for note in notes {
        if let Err(e) = append_synced(path, note) {
            out.checkpoint_file_errors += 1;
            eprintln!(
                "ringtrail: cannot write checkpoint to {}: {e}",
                path.display()
            );
        }
    }
}

/// Appends `note` and a blank line to `path`, and fsyncs: the point of a
/// checkpoint kept outside the database is that it survives. The file is
/// made 0600; it is never opened through a symbolic link, and must be a
/// regular file of this user's that group and others cannot write (one
/// they may read, from before, is made 0600).
fn append_synced(path: &Path, note: &str) -> std::io::Result<()> {
    let mut file = private_options().create(true).append(true).open(path)?;
    let meta = file.metadata()?;
    check_owned_file(&meta, 0o022).map_err(|why| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} {why}", path.display()),
        )
    })?;
    if mode_of(&meta) & 0o077 != 0 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    let mut text = note.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(file: &Path, key: Option<&Path>) -> ChainConfig {
        let mut checkpoints = Checkpoints::file(file);
        if let Some(key) = key {
            checkpoints = checkpoints.key(key);
        }
        ChainConfig {
            enabled: true,
            checkpoints,
        }
    }

    #[test]
    fn a_key_beside_the_checkpoint_file_is_refused() {
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-chained-{}-{}",
            std::process::id(),
            unix_nanos_now()
        ));
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let file = dir.join("out/checkpoints");
        // The same directory, however it is spelled.
        for key in [
            dir.join("out/checkpoints.key"),
            dir.join("out/../out/k"),
            dir.join("out/./k"),
        ] {
            let err = Chainer::new(&config(&file, Some(&key))).err().unwrap();
            assert!(err.to_string().contains("keep the key apart"), "{err}");
            assert!(!key.exists(), "nothing made");
        }
        assert!(same_directory(Path::new("cp"), Path::new("./k")));
        assert!(!same_directory(Path::new("a/cp"), Path::new("b/k")));
        // Elsewhere: made there, owner-only.
        let key = dir.join("keys/checkpoint.key");
        let chainer = Chainer::new(&config(&file, Some(&key))).unwrap().unwrap();
        let loaded = SigningKey::load(&key, DEFAULT_KEY_NAME).unwrap();
        assert_eq!(loaded.verifier(), chainer.verifier());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
