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
//! fsynced) to the checkpoint file when there is one, and is handed to the
//! JSON-lines sink when that one is on.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{ChainEntry, CheckpointRow, HeadCheckpoint};
use crate::chain::canonical::stored_micros;
use crate::chain::checkpoint::Checkpoint;
use crate::chain::digest::BatchDigest;
use crate::chain::key::{SigningKey, DEFAULT_KEY_NAME};
use crate::chain::link::{BatchMeta, Chain, ChainId};
use crate::encode::CopyEncoder;
use crate::error::check_duration;
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
/// | setting | default |
/// |---|---|
/// | [`file`](Checkpoints::file) | none: checkpoints in the database only ([`Checkpoints::new`]) |
/// | [`key`](Checkpoints::key) | `<file>.key` beside the file; without a file, `RINGTRAIL_CHECKPOINT_KEY`, else a key made for this process |
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
    /// Where signed checkpoints are appended; the key lives beside it
    /// (`<path>.key`, `<path>.key.pub`) unless `key` says otherwise.
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
    /// as well. The signing key is kept beside it (`<path>.key`,
    /// owner-only, made at first start with its public key printed on
    /// stderr and written to `<path>.key.pub`) unless
    /// [`key`](Checkpoints::key) names another.
    pub fn file(path: impl Into<PathBuf>) -> Checkpoints {
        Checkpoints {
            file: Some(path.into()),
            ..Checkpoints::new()
        }
    }

    /// The file of the signing key (made at first start when missing).
    /// Without it and without a [`file`](Checkpoints::file), the key comes
    /// from `RINGTRAIL_CHECKPOINT_KEY`, else one is made for this process
    /// (its public key is stored with each checkpoint).
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
    /// Batches linked since the last checkpoint, and when it was.
    since: u64,
    signed_at: Instant,
    /// Notes not yet handed to the JSON-lines sink.
    notes: Vec<String>,
}

impl Chainer {
    /// The key, in this order: the key file given, the one beside the
    /// checkpoint file (made at first start, mode 0600, its public key
    /// printed on stderr and written to `.pub`), `RINGTRAIL_CHECKPOINT_KEY`,
    /// else a key made for this process only (its public key is stored
    /// with each checkpoint in `ringtrail.checkpoints`).
    pub(crate) fn new(config: &ChainConfig) -> Result<Option<Chainer>> {
        if !config.enabled {
            return Ok(None);
        }
        let bad_key =
            |e: crate::chain::key::KeyError| Error::Config(format!("checkpoint key: {e}"));
        let checkpoints = &config.checkpoints;
        let beside = checkpoints.file.as_ref().map(|p| {
            let mut name = p.clone().into_os_string();
            name.push(".key");
            PathBuf::from(name)
        });
        let key = match checkpoints.key.as_ref().or(beside.as_ref()) {
            Some(path) => {
                let loaded =
                    SigningKey::load_or_generate(path, DEFAULT_KEY_NAME).map_err(bad_key)?;
                if loaded.generated {
                    eprintln!(
                        "ringtrail: made a checkpoint signing key at {} (owner-only); its public key, also in {}: {}",
                        path.display(),
                        loaded.public_path.display(),
                        loaded.key.verifier()
                    );
                }
                loaded.key
            }
            None => match SigningKey::from_env(DEFAULT_KEY_NAME).map_err(bad_key)? {
                Some(key) => key,
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

    /// Signs the head now: appended to the checkpoint file, kept for the
    /// JSON-lines sink, returned for the table.
    fn checkpoint(&mut self) -> CheckpointRow {
        let now = unix_nanos_now();
        let note = Checkpoint {
            chain: self.chain.id(),
            seq: self.chain.seq(),
            head: self.chain.head(),
            time_micros: now.div_euclid(1_000),
        }
        .sign(&self.key);
        if let Some(path) = &self.file {
            if let Err(e) = append_synced(path, &note) {
                eprintln!(
                    "ringtrail: cannot write checkpoint to {}: {e}",
                    path.display()
                );
            }
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
}

/// Appends `note` and a blank line to `path`, and fsyncs: the point of a
/// checkpoint kept outside the database is that it survives.
fn append_synced(path: &std::path::Path, note: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = note.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_data()
}
