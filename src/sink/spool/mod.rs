//! The spool: batches that could not reach PostgreSQL, kept on disk until
//! they can be replayed.
//!
//! One batch per segment file, `NNNNNNNNNNNNNNNN-<batch id>.pgcopy`, replayed
//! in sequence order. **Each segment is a valid PostgreSQL binary COPY
//! file**, so an operator can load one by hand:
//!
//! ```text
//! \copy ringtrail.logs FROM '0000000000000003-….pgcopy' WITH (FORMAT binary)
//! ```
//!
//! ringtrail's own metadata rides in the COPY header's extension area,
//! which the server skips (the format: `segment.rs`). A segment is written
//! to a `.tmp` name, synced, then renamed, and the directory synced, so a
//! crash never leaves a torn segment under a real name; a failed write
//! removes its `.tmp` file.
//!
//! **One owner per directory.** The spool holds an exclusive lock on
//! `spool.lock` in the directory for as long as it is open; a second
//! pipeline on the same directory fails to build with
//! [`Error::SpoolInUse`](crate::Error::SpoolInUse). Two owners would delete
//! each other's `.tmp` files and replay the same segments.
//!
//! **Private, and trusted no further than its key.** The directory is
//! made 0700 and every file in it 0600, whatever the umask; a directory
//! that is a symbolic link, that another user owns, or that group or
//! others can write is refused ([`Error::Config`](crate::Error::Config));
//! one that group or others can only read is tightened to 0700. Segments
//! are authenticated with an HMAC keyed by `spool.key`, 32 random bytes
//! made at the directory's first open (owner-only, checked like a key:
//! no link, this user's, no group or other access). A segment whose MAC
//! does not match (planted, or copied from another spool), that is a link
//! or not a regular file, that another user owns, or that is larger than
//! the spool's `max_bytes` is never read into memory whole, never replayed:
//! it is renamed `.refused` and counted in `Stats::spool_refused`. Only a
//! directory an older version wrote (segments there, no `spool.key` yet)
//! has its older segments (`RTSPOOL1`–`3`, which have no MAC) replayed,
//! once, as before; a checkpoint such a segment carries is stored only if
//! this process's key signed it. Set-aside files (`.corrupt`, `.refused`)
//! keep counting toward `max_bytes` until someone removes them (they are
//! counted again at the next start), so they cannot pile up past the cap.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Spool`]: the directory, its checks, its lock and key, the size cap, writing (`.tmp`, fsync, rename), listing, reading back and replay order |
//! | `segment.rs` | the segment format: the `RTSPOOL4` header and its MAC (and the older formats), pure functions over bytes |

pub(crate) mod segment;

use std::collections::VecDeque;
use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chain::checkpoint::open as open_note;
use crate::chain::key::VerifierKey;
use crate::files::{
    check_owned_dir, check_owned_file, create_private_dir_all, is_symlink_error, mode_of,
    private_nonblocking_options, private_options, NotPrivate, DIR_MODE,
};
use crate::sink::batch::SealedBatch;
use crate::Error;
use segment::{
    header_events, parse_segment, segment_body, segment_header, SpoolKey, Trust, Unreadable,
    SEGMENT_HEADER_LEN, SPOOL_KEY_LEN,
};

/// The lock file that makes one pipeline the directory's only owner.
pub(crate) const LOCK_FILE: &str = "spool.lock";

/// The file of the key segments are authenticated with.
pub(crate) const KEY_FILE: &str = "spool.key";

/// The suffix of a segment set aside because it could not be read whole.
pub(crate) const CORRUPT: &str = ".corrupt";

/// The suffix of a segment set aside because it is not trusted.
pub(crate) const REFUSED: &str = ".refused";

/// One batch waiting on disk.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    /// Left by an earlier process (found at start-up).
    pub(crate) inherited: bool,
    /// Event rows (not drop reports) in it, when known: always for this
    /// process's segments, from the header for inherited ones.
    pub(crate) events: u64,
    /// Found in a directory an older version wrote (there was no key):
    /// a segment of an older format, without a MAC, is replayed.
    pub(crate) legacy: bool,
}

/// Why a segment could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// Reading failed (EMFILE, EIO, …): try again later.
    Read(io::Error),
    /// The checksum, the header or the trailer is wrong: set it aside.
    Corrupt,
    /// Not trusted (says why): set it aside, never replay it.
    Refused(String),
}

/// What reading a segment back needs: the spool's key, its size cap, and
/// the key this process signs checkpoints with. Shared, so a segment is
/// read without holding the spool's lock.
#[derive(Debug)]
pub(crate) struct Reader {
    key: SpoolKey,
    max_bytes: u64,
    signer: Option<VerifierKey>,
}

/// The spool directory and its accounting.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    reader: Arc<Reader>,
    max_bytes: u64,
    used_bytes: u64,
    next_seq: u64,
    segments: VecDeque<Segment>,
    /// Segments written by an overload spill and not yet fsynced (see
    /// [`Durability::Deferred`]).
    unsynced: Vec<PathBuf>,
    /// Held (locked) while the spool is open.
    _lock: File,
    /// Tests: make the next write fail as a full disk would.
    #[cfg(test)]
    pub(crate) fail_next_write: bool,
}

impl Spool {
    /// Opens (creating if needed, 0700) `dir`, checks it is private (see
    /// the [module docs](self)), takes its lock and reads (or makes) its
    /// key. Segments already there are inherited from a previous process
    /// and will be replayed first. `signer` is the key this process signs
    /// checkpoints with, if any: the only one whose checkpoints an
    /// older-format segment may bring in.
    pub(crate) fn open(
        dir: &Path,
        max_bytes: u64,
        signer: Option<VerifierKey>,
    ) -> Result<Spool, Error> {
        private_dir(dir)?;
        let lock = private_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| refused_file(dir, LOCK_FILE, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::SpoolInUse {
                    dir: dir.to_owned(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
        let mut found: Vec<(u64, PathBuf, u64)> = Vec::new();
        let mut set_aside = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".pgcopy.tmp") {
                // A write that never finished: its batch was not reported
                // as spooled, and the events are gone with that process.
                let _ = fs::remove_file(&path);
                continue;
            }
            // Not followed: a link's own size.
            let bytes = entry.metadata()?.len();
            if name.ends_with(CORRUPT) || name.ends_with(REFUSED) {
                set_aside += bytes;
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".pgcopy")
                .and_then(|n| n.split('-').next())
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found.push((seq, path, bytes));
        }
        found.sort();
        let (key, made) = spool_key(dir)?;
        // No key yet, and segments: an older version wrote them.
        let legacy = made;
        let next_seq = found.last().map_or(0, |f| f.0 + 1);
        let used_bytes = set_aside + found.iter().map(|f| f.2).sum::<u64>();
        let segments = found
            .into_iter()
            .map(|(_, path, bytes)| Segment {
                events: read_header_events(&path).unwrap_or(0),
                path,
                bytes,
                inherited: true,
                legacy,
            })
            .collect();
        Ok(Spool {
            dir: dir.to_owned(),
            reader: Arc::new(Reader {
                key,
                max_bytes,
                signer,
            }),
            max_bytes,
            used_bytes,
            next_seq,
            segments,
            unsynced: Vec::new(),
            _lock: lock,
            #[cfg(test)]
            fail_next_write: false,
        })
    }

    /// What reading segments back needs ([`Spool::load`]).
    pub(crate) fn reader(&self) -> Arc<Reader> {
        self.reader.clone()
    }

    /// Writes `batch` as a new, durable segment (fsynced, and its directory
    /// entry too). `Ok(false)` when it would exceed the disk cap (the caller
    /// counts the rows as lost). On an error the half-written `.tmp` file is
    /// removed, so nothing of it stays behind. `inherited` marks rows that
    /// belong to an earlier process.
    pub(crate) fn write(&mut self, batch: &SealedBatch, inherited: bool) -> io::Result<bool> {
        self.write_with(batch, inherited, Durability::Now)
    }

    /// [`write`](Self::write), with the fsync done now or later.
    pub(crate) fn write_with(
        &mut self,
        batch: &SealedBatch,
        inherited: bool,
        durability: Durability,
    ) -> io::Result<bool> {
        // The segment's size on disk, exactly: header, then body.
        let header = segment_header(batch, &self.reader.key);
        let size = (header.len() + segment_body(batch).len()) as u64;
        if self.used_bytes + size > self.max_bytes {
            return Ok(false);
        }
        let name = format!("{:016}-{}.pgcopy", self.next_seq, batch.id_text());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        if let Err(e) = self.write_segment(&tmp, &path, &header, batch, durability) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        match durability {
            Durability::Now => sync_dir(&self.dir),
            Durability::Deferred => self.unsynced.push(path.clone()),
        }
        self.next_seq += 1;
        self.used_bytes += size;
        self.segments.push_back(Segment {
            path,
            bytes: size,
            inherited,
            events: batch.events(),
            legacy: false,
        });
        Ok(true)
    }

    fn write_segment(
        &mut self,
        tmp: &Path,
        path: &Path,
        header: &[u8],
        batch: &SealedBatch,
        durability: Durability,
    ) -> io::Result<()> {
        // A stale one (its removal failed) is replaced; a link there is
        // neither followed nor written through (O_EXCL, O_NOFOLLOW).
        let _ = fs::remove_file(tmp);
        let mut file = private_options().write(true).create_new(true).open(tmp)?;
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_write) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        file.write_all(header)?;
        file.write_all(segment_body(batch))?;
        if durability == Durability::Now {
            file.sync_all()?;
        }
        fs::rename(tmp, path)
    }

    /// The oldest segment, if any.
    pub(crate) fn oldest(&self) -> Option<&Segment> {
        self.segments.front()
    }

    /// Reads and verifies a segment back into a batch: never more than
    /// the spool's `max_bytes` of it, never through a link, and only if it
    /// is trusted (see the [module docs](self)). A checkpoint it carries
    /// that does not hold up (see [`keeps_checkpoint`]) is left out.
    pub(crate) fn load(segment: &Segment, reader: &Reader) -> Result<SealedBatch, LoadError> {
        let data = read_capped(&segment.path, reader.max_bytes)?;
        let (mut batch, trust) = match parse_segment(&data, &reader.key) {
            Ok(parsed) => parsed,
            Err(Unreadable::Corrupt) => return Err(LoadError::Corrupt),
            Err(Unreadable::Unauthenticated) => {
                return Err(LoadError::Refused(
                    "its MAC was not made with this spool's key".to_owned(),
                ))
            }
        };
        if trust == Trust::Legacy && !segment.legacy {
            return Err(LoadError::Refused(
                "an older format, without a MAC, in a spool that has a key".to_owned(),
            ));
        }
        if batch.checkpoint.is_some() && !keeps_checkpoint(&batch, trust, reader.signer.as_ref()) {
            eprintln!(
                "ringtrail: spool segment {}: its checkpoint was not signed by this process's key; replayed without it",
                segment.path.display()
            );
            batch.checkpoint = None;
        }
        Ok(batch)
    }

    /// Deletes the oldest segment, once its rows are committed.
    pub(crate) fn remove_oldest(&mut self) -> io::Result<()> {
        match self.pop_oldest() {
            Some(segment) => self.delete(&segment),
            None => Ok(()),
        }
    }

    /// Sets the oldest segment aside, renamed with `suffix` ([`CORRUPT`] or
    /// [`REFUSED`]), for an operator to look at; it is never replayed, and
    /// its bytes still count toward the cap. Returns it, for the
    /// accounting.
    pub(crate) fn set_aside_oldest(&mut self, suffix: &str) -> io::Result<Option<Segment>> {
        let Some(segment) = self.pop_oldest() else {
            return Ok(None);
        };
        let mut bad = segment.path.clone().into_os_string();
        bad.push(suffix);
        fs::rename(&segment.path, bad)?;
        self.used_bytes += segment.bytes;
        sync_dir(&self.dir);
        Ok(Some(segment))
    }

    /// Replaces the oldest segment by `pieces` (what is left of it after a
    /// partial replay): writes them as new segments, then deletes the
    /// original, so a crash in between leaves both (the ledger and the
    /// pieces' deterministic ids keep the replay exactly-once) and never
    /// neither. The cap is checked net of the original. Returns, for each
    /// piece, whether it was written.
    pub(crate) fn replace_oldest(
        &mut self,
        pieces: &[SealedBatch],
        inherited: bool,
    ) -> io::Result<Vec<bool>> {
        let Some(original) = self.pop_oldest() else {
            return Ok(Vec::new());
        };
        let written = pieces
            .iter()
            .map(|piece| {
                self.write(piece, inherited).unwrap_or_else(|e| {
                    eprintln!("ringtrail: spool write failed: {e}");
                    false
                })
            })
            .collect();
        self.delete(&original)?;
        Ok(written)
    }

    fn pop_oldest(&mut self) -> Option<Segment> {
        let segment = self.segments.pop_front()?;
        self.used_bytes = self.used_bytes.saturating_sub(segment.bytes);
        Some(segment)
    }

    fn delete(&mut self, segment: &Segment) -> io::Result<()> {
        // Not fsynced: a segment that comes back after a crash is replayed
        // through the ledger, which finds its batch committed. An fsync
        // here would hold the spool's lock for as long as a busy disk
        // takes, and an overload spill (the disk lane) waits on that lock.
        self.unsynced.retain(|p| p != &segment.path);
        fs::remove_file(&segment.path)
    }

    /// Takes the segments written with [`Durability::Deferred`] since the
    /// last call, for [`sync_files`] to fsync outside the spool's lock.
    pub(crate) fn take_unsynced(&mut self) -> (PathBuf, Vec<PathBuf>) {
        (self.dir.clone(), std::mem::take(&mut self.unsynced))
    }
}

/// When a segment reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// fsync the file and the directory before `write` returns: for batches
    /// the server could not take, which nothing else holds.
    Now,
    /// Leave it in the page cache; the replaying lane fsyncs it soon after
    /// (`sync_files`). For an overload spill, which stands in for queue
    /// memory: the writer must not wait on a disk that the database is
    /// keeping busy, or the ring fills and drops. A crash before the
    /// fsync may lose the segment (a torn one fails its CRC and is
    /// counted lost), as it would lose the events still in the ring.
    Deferred,
}

/// fsyncs `files` (those still there) and then `dir`.
pub(crate) fn sync_files(dir: &Path, files: &[PathBuf]) {
    if files.is_empty() {
        return;
    }
    for path in files {
        if let Ok(file) = File::open(path) {
            let _ = file.sync_all();
        }
    }
    sync_dir(dir);
}

/// Makes renames and deletions in `dir` durable. Best effort: some file
/// systems cannot sync a directory.
fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// The event rows the header of the segment at `path` claims
/// ([`header_events`]); `None` if it cannot be read.
fn read_header_events(path: &Path) -> Option<u64> {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    let mut file = private_nonblocking_options().read(true).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    file.read_exact(&mut header).ok()?;
    header_events(&header)
}

/// Makes (0700) or checks the spool directory `dir`: not a link, this
/// user's, nobody else may write to it; tightened to 0700 when others may
/// read it.
fn private_dir(dir: &Path) -> Result<(), Error> {
    let refuse = |why: NotPrivate| {
        let hint = match why {
            NotPrivate::Mode(_) => "; group or others can write to it (chmod 700 it)",
            NotPrivate::Symlink => "; give the directory itself",
            _ => "",
        };
        Error::Config(format!("spool directory {} {why}{hint}", dir.display()))
    };
    // A link is refused before anything is made through it.
    if let Ok(meta) = fs::symlink_metadata(dir) {
        if meta.file_type().is_symlink() {
            return Err(refuse(NotPrivate::Symlink));
        }
    }
    create_private_dir_all(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    check_owned_dir(&meta, 0o022).map_err(refuse)?;
    if mode_of(&meta) & 0o077 != 0 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
        }
    }
    Ok(())
}

/// [`Error::Config`] for a file of the spool (`name` in `dir`) that is not
/// private, [`Error::Io`] for other failures.
fn refused_file(dir: &Path, name: &str, e: io::Error) -> Error {
    if is_symlink_error(&e) {
        return Error::Config(format!(
            "{} {}",
            dir.join(name).display(),
            NotPrivate::Symlink
        ));
    }
    Error::Io(e)
}

/// Reads the spool's key from `dir`, or makes one when there is none.
/// `true` when it was made just now.
fn spool_key(dir: &Path) -> Result<(SpoolKey, bool), Error> {
    let path = dir.join(KEY_FILE);
    let refuse = |why: String| Error::Config(format!("spool key {} {why}", path.display()));
    match private_nonblocking_options().read(true).open(&path) {
        Ok(file) => {
            check_owned_file(&file.metadata()?, 0o077)
                .map_err(|why| refuse(format!("{why} (it must be 0600, this user's)")))?;
            let mut bytes = Vec::with_capacity(SPOOL_KEY_LEN);
            file.take(SPOOL_KEY_LEN as u64 + 1)
                .read_to_end(&mut bytes)?;
            let bytes: [u8; SPOOL_KEY_LEN] = bytes.try_into().map_err(|_| {
                refuse(format!(
                    "is not {SPOOL_KEY_LEN} bytes; remove it and the segments it signed"
                ))
            })?;
            Ok((SpoolKey::new(bytes), false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut bytes = [0u8; SPOOL_KEY_LEN];
            getrandom::fill(&mut bytes)
                .map_err(|e| refuse(format!("cannot be made: no randomness: {e}")))?;
            // Written whole under another name, then renamed: a crash
            // never leaves a short key.
            let tmp = dir.join(format!("{KEY_FILE}.tmp"));
            let _ = fs::remove_file(&tmp);
            let mut file = private_options().write(true).create_new(true).open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(dir);
            Ok((SpoolKey::new(bytes), true))
        }
        Err(e) if is_symlink_error(&e) => Err(refuse(NotPrivate::Symlink.to_string())),
        Err(e) => Err(Error::Io(e)),
    }
}

/// Reads the segment at `path`, refusing a link, anything but a regular
/// file of this user's, and a file larger than `cap` (never read whole).
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, LoadError> {
    let file = match private_nonblocking_options().read(true).open(path) {
        Ok(file) => file,
        Err(e) if is_symlink_error(&e) => {
            return Err(LoadError::Refused(NotPrivate::Symlink.to_string()))
        }
        Err(e) => return Err(LoadError::Read(e)),
    };
    let meta = file.metadata().map_err(LoadError::Read)?;
    if let Err(why) = check_owned_file(&meta, 0) {
        return Err(LoadError::Refused(why.to_string()));
    }
    if meta.len() > cap {
        return Err(LoadError::Refused(format!(
            "is {} bytes, larger than the spool's max_bytes ({cap})",
            meta.len()
        )));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut data)
        .map_err(LoadError::Read)?;
    if data.len() as u64 > cap {
        return Err(LoadError::Refused(format!(
            "grew past the spool's max_bytes ({cap})"
        )));
    }
    Ok(data)
}

/// Whether `batch`'s checkpoint is stored on replay: it must name the
/// batch's own chain entry and open under the key it states, and, from a
/// segment without a MAC ([`Trust::Legacy`]), that key must be `signer`,
/// this process's.
fn keeps_checkpoint(batch: &SealedBatch, trust: Trust, signer: Option<&VerifierKey>) -> bool {
    let (Some(entry), Some(cp)) = (&batch.chain, &batch.checkpoint) else {
        return false;
    };
    let Ok(stated) = cp.public_key.parse::<VerifierKey>() else {
        return false;
    };
    if trust == Trust::Legacy && signer != Some(&stated) {
        return false;
    }
    open_note(&cp.note, &stated).is_ok_and(|signed| {
        signed.chain.0 == entry.chain_id && signed.seq == entry.seq && signed.head == entry.hash
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sink::batch::tests::batch_of;
    use crate::sink::spool::segment::tests::old_format;

    impl Spool {
        fn write_own(&mut self, batch: &SealedBatch) -> io::Result<bool> {
            self.write(batch, false)
        }

        fn load_oldest(&self) -> Result<SealedBatch, LoadError> {
            Spool::load(self.oldest().unwrap(), &self.reader)
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-spool-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn batch(id: u8, rows: usize) -> SealedBatch {
        batch_of([id; 16], &vec!["spooled"; rows], 0)
    }

    /// Bytes of `batch`'s segment on disk.
    fn segment_size(batch: &SealedBatch) -> u64 {
        (segment_header(batch, &SpoolKey::new([0; SPOOL_KEY_LEN])).len()
            + segment_body(batch).len()) as u64
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn segments_round_trip_in_order_and_survive_a_restart() {
        let dir = temp_dir("order");
        let mut spool = Spool::open(&dir, 1 << 20, None).unwrap();
        assert!(spool.write_own(&batch(1, 3)).unwrap());
        assert!(spool.write_own(&batch(2, 2)).unwrap());
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 20, None).unwrap();
        let first = spool.oldest().unwrap().clone();
        assert!(first.inherited);
        assert!(!first.legacy, "the directory has its key");
        let loaded = Spool::load(&first, &spool.reader).unwrap();
        assert_eq!(
            (loaded.id, loaded.rows, loaded.first_ts, loaded.last_ts),
            ([1; 16], 3, 5, 9)
        );
        assert_eq!(loaded.bytes, batch(1, 3).bytes);
        assert_eq!(first.bytes, segment_size(&batch(1, 3)), "sized exactly");
        spool.remove_oldest().unwrap();
        assert_eq!(spool.load_oldest().unwrap().id, [2; 16]);
        // New segments continue the sequence after inherited ones.
        assert!(spool.write_own(&batch(3, 1)).unwrap());
        spool.remove_oldest().unwrap();
        assert_eq!(spool.load_oldest().unwrap().id, [3; 16]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cap_is_enforced_and_corruption_detected() {
        let dir = temp_dir("cap");
        let one = segment_size(&batch(1, 10));
        let mut spool = Spool::open(&dir, one * 2, None).unwrap();
        assert!(spool.write_own(&batch(1, 10)).unwrap());
        assert!(spool.write_own(&batch(2, 10)).unwrap());
        assert!(!spool.write_own(&batch(3, 10)).unwrap(), "over the cap");
        let seg = spool.oldest().unwrap().clone();
        let mut data = fs::read(&seg.path).unwrap();
        let last = data.len() - 5;
        data[last] ^= 0xff;
        fs::write(&seg.path, data).unwrap();
        assert!(matches!(
            Spool::load(&seg, &spool.reader),
            Err(LoadError::Corrupt)
        ));
        spool.set_aside_oldest(CORRUPT).unwrap().unwrap();
        assert!(!seg.path.exists());
        // Set aside, it still takes its room.
        assert!(
            !spool.write_own(&batch(3, 10)).unwrap(),
            "still over the cap"
        );
        drop(spool);
        // And at the next start too.
        let mut spool = Spool::open(&dir, one * 2, None).unwrap();
        assert!(!spool.write_own(&batch(3, 10)).unwrap(), "counted again");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_owner_per_directory() {
        let dir = temp_dir("lock");
        let first = Spool::open(&dir, 1 << 20, None).unwrap();
        match Spool::open(&dir, 1 << 20, None) {
            Err(Error::SpoolInUse { dir: d }) => assert_eq!(d, dir),
            other => panic!("a second owner must be refused: {other:?}"),
        }
        drop(first);
        Spool::open(&dir, 1 << 20, None).expect("free again once the owner is gone");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_leaves_no_tmp_file_and_no_segment() {
        let dir = temp_dir("full");
        let mut spool = Spool::open(&dir, 1 << 20, None).unwrap();
        spool.fail_next_write = true;
        assert!(spool.write_own(&batch(1, 3)).is_err());
        assert_eq!(
            names(&dir),
            [KEY_FILE, LOCK_FILE],
            "only the key and the lock"
        );
        assert!(spool.oldest().is_none());
        assert!(
            spool.write_own(&batch(2, 3)).unwrap(),
            "the next write works"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_read_error_is_not_corruption() {
        let dir = temp_dir("eio");
        let mut spool = Spool::open(&dir, 1 << 20, None).unwrap();
        assert!(spool.write_own(&batch(1, 3)).unwrap());
        let seg = spool.oldest().unwrap().clone();
        // A file that cannot be opened: EACCES for anyone but root, so
        // here a path whose parent is a file (ENOTDIR).
        let mut gone = seg.clone();
        gone.path = seg.path.join("x");
        assert!(matches!(
            Spool::load(&gone, &spool.reader),
            Err(LoadError::Read(_))
        ));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn replacing_a_segment_is_checked_against_the_cap_net_of_it() {
        let dir = temp_dir("replace");
        let whole = batch(1, 10);
        let pieces = whole.halves();
        // Room for exactly one such segment, and for its pieces.
        let room = segment_size(&whole).max(pieces.iter().map(segment_size).sum());
        let mut spool = Spool::open(&dir, room, None).unwrap();
        assert!(spool.write_own(&whole).unwrap());
        assert_eq!(
            spool.replace_oldest(&pieces, false).unwrap(),
            vec![true, true]
        );
        assert_eq!(spool.load_oldest().unwrap().id, pieces[0].id);
        assert_eq!(spool.segments.len(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    /// What a segment put in the directory from outside the spool can do:
    /// nothing. Not trusted without the key's MAC, never read through a
    /// link or from a FIFO, never read whole when it is too large.
    #[cfg(unix)]
    #[test]
    fn planted_files_are_refused_without_being_read() {
        let dir = temp_dir("planted");
        let cap = 1 << 20;
        let mut spool = Spool::open(&dir, cap, None).unwrap();
        assert!(spool.write_own(&batch(1, 3)).unwrap());
        drop(spool);
        let plant = |seq: u64, bytes: &[u8]| {
            let path = dir.join(format!("{seq:016}-planted.pgcopy"));
            fs::write(&path, bytes).unwrap();
            path
        };
        // An older format: only a directory without a key replays it.
        plant(1, &old_format(&batch(2, 3), b"RTSPOOL3"));
        // The current format, with another spool's key.
        let mut foreign = segment_header(&batch(3, 3), &SpoolKey::new([9; 32])).to_vec();
        foreign.extend_from_slice(segment_body(&batch(3, 3)));
        plant(2, &foreign);
        // Larger than the cap (sparse: nothing is written, nothing read).
        let huge = plant(3, b"");
        File::options()
            .write(true)
            .open(&huge)
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
        // A FIFO, which would block a plain open for reading.
        let fifo = dir.join(format!("{:016}-fifo.pgcopy", 4));
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path for the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A link to a genuine segment.
        let genuine = names(&dir)
            .into_iter()
            .find(|n| n.starts_with("0000000000000000"))
            .unwrap();
        std::os::unix::fs::symlink(
            dir.join(genuine),
            dir.join(format!("{:016}-link.pgcopy", 5)),
        )
        .unwrap();

        let mut spool = Spool::open(&dir, cap, None).unwrap();
        assert_eq!(spool.load_oldest().unwrap().id, [1; 16], "the genuine one");
        spool.remove_oldest().unwrap();
        let mut why = Vec::new();
        while let Some(segment) = spool.oldest().cloned() {
            match Spool::load(&segment, &spool.reader) {
                Err(LoadError::Refused(w)) => why.push(w),
                other => panic!("{}: {other:?}", segment.path.display()),
            }
            spool.set_aside_oldest(REFUSED).unwrap();
        }
        assert_eq!(why.len(), 5, "{why:?}");
        assert!(why[0].contains("older format"), "{why:?}");
        assert!(why[1].contains("MAC"), "{why:?}");
        assert!(why[2].contains("larger than"), "{why:?}");
        assert!(why[3].contains("not a regular file"), "{why:?}");
        assert!(why[4].contains("symbolic link"), "{why:?}");
        // Set aside: the huge file takes all the room, so nothing more
        // is spooled until someone removes it.
        assert!(!spool.write_own(&batch(6, 1)).unwrap());
        fs::remove_file(format!("{}{REFUSED}", huge.display())).unwrap();
        drop(spool);
        let mut spool = Spool::open(&dir, cap, None).unwrap();
        assert!(spool.write_own(&batch(6, 1)).unwrap());
        let _ = fs::remove_dir_all(&dir);
    }

    /// A directory an older version wrote has segments and no key: its
    /// segments replay as they did, once; from then on it has a key.
    #[test]
    fn segments_of_an_older_version_replay_from_its_directory() {
        let dir = temp_dir("legacy");
        fs::create_dir_all(&dir).unwrap();
        for (seq, magic) in [(0u64, b"RTSPOOL3"), (1, b"RTSPOOL2"), (2, b"RTSPOOL1")] {
            let b = batch(seq as u8 + 1, 2);
            fs::write(
                dir.join(format!("{seq:016}-{}.pgcopy", b.id_text())),
                old_format(&b, magic),
            )
            .unwrap();
        }
        let mut spool = Spool::open(&dir, 1 << 20, None).unwrap();
        assert!(dir.join(KEY_FILE).exists());
        for id in 1..=2u8 {
            assert_eq!(spool.load_oldest().unwrap().id, [id; 16]);
            spool.remove_oldest().unwrap();
        }
        drop(spool);
        // The third one was not replayed before the restart: now the
        // directory has a key, and a segment without a MAC is refused.
        let spool = Spool::open(&dir, 1 << 20, None).unwrap();
        assert!(matches!(spool.load_oldest(), Err(LoadError::Refused(_))));
        let _ = fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_spool_key_that_is_a_link_or_not_private_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = temp_dir("key");
        drop(Spool::open(&dir, 1 << 20, None).unwrap());
        let key = dir.join(KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let e = Spool::open(&dir, 1 << 20, None).unwrap_err();
        assert!(e.to_string().contains("mode 644"), "{e}");
        fs::rename(&key, dir.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &key).unwrap();
        let e = Spool::open(&dir, 1 << 20, None).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        fs::remove_file(&key).unwrap();
        fs::write(&key, b"short").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let e = Spool::open(&dir, 1 << 20, None).unwrap_err();
        assert!(e.to_string().contains("is not 32 bytes"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    /// A checkpoint comes back from a segment only if it names the batch's
    /// own chain entry and its signature holds; from a segment without a
    /// MAC, only if this process's key signed it.
    #[test]
    fn replayed_checkpoints_must_hold_up() {
        use crate::chain::checkpoint::Checkpoint;
        use crate::chain::key::SigningKey;
        use crate::chain::link::ChainId;
        use crate::sink::batch::{ChainEntry, CheckpointRow};
        let ours = SigningKey::from_seed("ringtrail", [1; 32]).unwrap();
        let theirs = SigningKey::from_seed("ringtrail", [2; 32]).unwrap();
        let entry = ChainEntry {
            chain_id: [5; 16],
            seq: 3,
            sealed_id: [1; 16],
            sealed_rows: 2,
            digest: [6; 32],
            prev_hash: [7; 32],
            hash: [8; 32],
        };
        let with = |key: &SigningKey, seq: u64| {
            let mut b = batch(1, 2);
            b.chain = Some(entry);
            let note = Checkpoint {
                chain: ChainId(entry.chain_id),
                seq,
                head: entry.hash,
                time_micros: 1,
            }
            .sign(key);
            b.checkpoint = Some(Arc::new(CheckpointRow {
                note,
                public_key: key.verifier().to_string(),
                signed_at: 1_000,
            }));
            b
        };
        let mine = Some(ours.verifier());
        let keeps = |b: &SealedBatch, t| keeps_checkpoint(b, t, mine.as_ref());
        assert!(keeps(&with(&ours, 3), Trust::Authenticated));
        assert!(keeps(&with(&ours, 3), Trust::Legacy));
        // Another process's key (one that made its own): from an
        // authenticated segment only.
        assert!(keeps(&with(&theirs, 3), Trust::Authenticated));
        assert!(!keeps(&with(&theirs, 3), Trust::Legacy));
        // A note about another head, or a key swapped in.
        assert!(!keeps(&with(&ours, 4), Trust::Authenticated));
        let mut swapped = with(&ours, 3);
        let cp = swapped.checkpoint.as_mut().unwrap();
        Arc::make_mut(cp).public_key = theirs.verifier().to_string();
        assert!(!keeps(&swapped, Trust::Authenticated));
    }
}
