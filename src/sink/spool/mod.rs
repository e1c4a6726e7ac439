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
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Spool`]: the directory, its lock, the size cap, writing (`.tmp`, fsync, rename), listing and replay order |
//! | `segment.rs` | the segment format: the `RTSPOOL1/2/3` header, pure functions over bytes |

pub(crate) mod segment;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::sink::batch::SealedBatch;
use crate::Error;
use segment::{
    header_events, parse_segment, segment_body, segment_header, EXTENSION_LEN, SEGMENT_HEADER_LEN,
};

/// The lock file that makes one pipeline the directory's only owner.
pub(crate) const LOCK_FILE: &str = "spool.lock";

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
}

/// Why a segment could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// Reading failed (EMFILE, EIO, …): try again later.
    Read(io::Error),
    /// The checksum, the header or the trailer is wrong: set it aside.
    Corrupt,
}

/// The spool directory and its accounting.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
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
    /// Opens (creating if needed) `dir` and takes its lock. Segments
    /// already there are inherited from a previous process and will be
    /// replayed first.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<Spool, Error> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
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
            let Some(seq) = name
                .strip_suffix(".pgcopy")
                .and_then(|n| n.split('-').next())
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found.push((seq, path, entry.metadata()?.len()));
        }
        found.sort();
        let next_seq = found.last().map_or(0, |f| f.0 + 1);
        let used_bytes = found.iter().map(|f| f.2).sum();
        let segments = found
            .into_iter()
            .map(|(_, path, bytes)| Segment {
                events: read_header_events(&path).unwrap_or(0),
                path,
                bytes,
                inherited: true,
            })
            .collect();
        Ok(Spool {
            dir: dir.to_owned(),
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
        let size = (batch.bytes.len() + EXTENSION_LEN) as u64;
        if self.used_bytes + size > self.max_bytes {
            return Ok(false);
        }
        let name = format!("{:016}-{}.pgcopy", self.next_seq, batch.id_text());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        if let Err(e) = self.write_segment(&tmp, &path, batch, durability) {
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
        });
        Ok(true)
    }

    fn write_segment(
        &mut self,
        tmp: &Path,
        path: &Path,
        batch: &SealedBatch,
        durability: Durability,
    ) -> io::Result<()> {
        let header = segment_header(batch);
        let mut file = File::create(tmp)?;
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_write) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        file.write_all(&header)?;
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

    /// Reads and verifies a segment back into a batch.
    pub(crate) fn load(segment: &Segment) -> Result<SealedBatch, LoadError> {
        let data = fs::read(&segment.path).map_err(LoadError::Read)?;
        parse_segment(&data).ok_or(LoadError::Corrupt)
    }

    /// Deletes the oldest segment, once its rows are committed.
    pub(crate) fn remove_oldest(&mut self) -> io::Result<()> {
        match self.pop_oldest() {
            Some(segment) => self.delete(&segment),
            None => Ok(()),
        }
    }

    /// Sets the oldest segment aside, renamed to `.corrupt`, for an operator
    /// to look at; it is never replayed. Returns it, for the accounting.
    pub(crate) fn quarantine_oldest(&mut self) -> io::Result<Option<Segment>> {
        let Some(segment) = self.pop_oldest() else {
            return Ok(None);
        };
        let mut bad = segment.path.clone().into_os_string();
        bad.push(".corrupt");
        fs::rename(&segment.path, bad)?;
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
        // takes, and an overload spill waits on that lock.
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
    let mut file = File::open(path).ok()?;
    file.read_exact(&mut header).ok()?;
    header_events(&header)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sink::batch::tests::batch_of;

    impl Spool {
        fn write_own(&mut self, batch: &SealedBatch) -> io::Result<bool> {
            self.write(batch, false)
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

    #[test]
    fn segments_round_trip_in_order_and_survive_a_restart() {
        let dir = temp_dir("order");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert!(spool.write_own(&batch(1, 3)).unwrap());
        assert!(spool.write_own(&batch(2, 2)).unwrap());
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let first = spool.oldest().unwrap().clone();
        assert!(first.inherited);
        let loaded = Spool::load(&first).unwrap();
        assert_eq!(
            (loaded.id, loaded.rows, loaded.first_ts, loaded.last_ts),
            ([1; 16], 3, 5, 9)
        );
        assert_eq!(loaded.bytes, batch(1, 3).bytes);
        spool.remove_oldest().unwrap();
        assert_eq!(Spool::load(spool.oldest().unwrap()).unwrap().id, [2; 16]);
        // New segments continue the sequence after inherited ones.
        assert!(spool.write_own(&batch(3, 1)).unwrap());
        spool.remove_oldest().unwrap();
        assert_eq!(Spool::load(spool.oldest().unwrap()).unwrap().id, [3; 16]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cap_is_enforced_and_corruption_detected() {
        let dir = temp_dir("cap");
        let one = (batch(1, 10).bytes.len() + EXTENSION_LEN) as u64;
        let mut spool = Spool::open(&dir, one * 2).unwrap();
        assert!(spool.write_own(&batch(1, 10)).unwrap());
        assert!(spool.write_own(&batch(2, 10)).unwrap());
        assert!(!spool.write_own(&batch(3, 10)).unwrap(), "over the cap");
        let seg = spool.oldest().unwrap().clone();
        let mut data = fs::read(&seg.path).unwrap();
        let last = data.len() - 5;
        data[last] ^= 0xff;
        fs::write(&seg.path, data).unwrap();
        assert!(matches!(Spool::load(&seg), Err(LoadError::Corrupt)));
        spool.quarantine_oldest().unwrap().unwrap();
        assert!(!seg.path.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_owner_per_directory() {
        let dir = temp_dir("lock");
        let first = Spool::open(&dir, 1 << 20).unwrap();
        match Spool::open(&dir, 1 << 20) {
            Err(Error::SpoolInUse { dir: d }) => assert_eq!(d, dir),
            other => panic!("a second owner must be refused: {other:?}"),
        }
        drop(first);
        Spool::open(&dir, 1 << 20).expect("free again once the owner is gone");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_leaves_no_tmp_file_and_no_segment() {
        let dir = temp_dir("full");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.fail_next_write = true;
        assert!(spool.write_own(&batch(1, 3)).is_err());
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![LOCK_FILE.to_owned()], "only the lock file");
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
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert!(spool.write_own(&batch(1, 3)).unwrap());
        let seg = spool.oldest().unwrap().clone();
        // A directory where the file should be: reading fails with EISDIR.
        fs::remove_file(&seg.path).unwrap();
        fs::create_dir(&seg.path).unwrap();
        assert!(matches!(Spool::load(&seg), Err(LoadError::Read(_))));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn replacing_a_segment_is_checked_against_the_cap_net_of_it() {
        let dir = temp_dir("replace");
        let whole = batch(1, 10);
        let one = (whole.bytes.len() + EXTENSION_LEN) as u64;
        // Room for exactly one such segment (and its pieces, which are
        // smaller together than the whole, header aside).
        let mut spool = Spool::open(&dir, one + EXTENSION_LEN as u64 + 64).unwrap();
        assert!(spool.write_own(&whole).unwrap());
        let pieces = whole.halves();
        assert_eq!(
            spool.replace_oldest(&pieces, false).unwrap(),
            vec![true, true]
        );
        assert_eq!(
            Spool::load(spool.oldest().unwrap()).unwrap().id,
            pieces[0].id
        );
        assert_eq!(spool.segments.len(), 2);
        let _ = fs::remove_dir_all(&dir);
    }
}
