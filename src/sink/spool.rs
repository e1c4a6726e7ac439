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
//! which the server skips: a magic `RTSPOOL1`, the batch id (the ledger key,
//! so a replay is exactly-once), the row count and how many rows are drop
//! reports, the first and last event
//! times, and a CRC-32 of everything after the header. A segment is written
//! to a `.tmp` name, synced, then renamed, so a crash never leaves a torn
//! segment under a real name.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{is_copy_stream, SealedBatch};
use crate::encode::copy::{put_header, put_header_with_extension, HEADER_LEN, SIGNATURE};

const MAGIC: &[u8; 8] = b"RTSPOOL1";
/// magic, id, rows, reports, first ts, last ts, crc.
const EXTENSION_LEN: usize = 8 + 16 + 4 + 4 + 8 + 8 + 4;
const SEGMENT_HEADER_LEN: usize = HEADER_LEN + EXTENSION_LEN;

/// One batch waiting on disk.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    /// Left by an earlier process (found at start-up).
    pub(crate) inherited: bool,
}

/// The spool directory and its accounting.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    used_bytes: u64,
    next_seq: u64,
    segments: VecDeque<Segment>,
}

impl Spool {
    /// Opens (creating if needed) `dir`. Segments already there are
    /// inherited from a previous process and will be replayed first.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
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
        })
    }

    /// Writes `batch` as a new segment. `Ok(false)` when it would exceed
    /// the disk cap (the caller counts the rows as lost).
    /// `inherited` marks rows that belong to an earlier process.
    pub(crate) fn write(&mut self, batch: &SealedBatch, inherited: bool) -> io::Result<bool> {
        let size = (batch.bytes.len() + EXTENSION_LEN) as u64;
        if self.used_bytes + size > self.max_bytes {
            return Ok(false);
        }
        let body = &batch.bytes[HEADER_LEN..];
        let mut extension = BytesMut::with_capacity(EXTENSION_LEN);
        extension.put_slice(MAGIC);
        extension.put_slice(&batch.id);
        extension.put_u32(batch.rows);
        extension.put_u32(batch.reports);
        extension.put_i64(batch.first_ts);
        extension.put_i64(batch.last_ts);
        extension.put_u32(crc32fast::hash(body));
        let mut header = BytesMut::with_capacity(SEGMENT_HEADER_LEN);
        put_header_with_extension(&mut header, &extension);

        let name = format!("{:016}-{}.pgcopy", self.next_seq, batch.id_text());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&header)?;
            file.write_all(body)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        // Make the rename itself durable.
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.next_seq += 1;
        self.used_bytes += size;
        self.segments.push_back(Segment {
            path,
            bytes: size,
            inherited,
        });
        Ok(true)
    }

    /// The oldest segment, if any.
    pub(crate) fn oldest(&self) -> Option<&Segment> {
        self.segments.front()
    }

    /// Reads and verifies a segment back into a batch.
    pub(crate) fn load(segment: &Segment) -> io::Result<SealedBatch> {
        let data = fs::read(&segment.path)?;
        parse_segment(&data).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt spool segment {}", segment.path.display()),
            )
        })
    }

    /// Deletes the oldest segment, once its rows are committed.
    pub(crate) fn remove_oldest(&mut self) -> io::Result<()> {
        match self.pop_oldest() {
            Some(path) => fs::remove_file(path),
            None => Ok(()),
        }
    }

    /// Sets the oldest segment aside, renamed to `.corrupt`, for an operator
    /// to look at; it is never replayed.
    pub(crate) fn quarantine_oldest(&mut self) -> io::Result<()> {
        match self.pop_oldest() {
            Some(path) => {
                let mut bad = path.clone().into_os_string();
                bad.push(".corrupt");
                fs::rename(&path, bad)
            }
            None => Ok(()),
        }
    }

    fn pop_oldest(&mut self) -> Option<PathBuf> {
        let segment = self.segments.pop_front()?;
        self.used_bytes = self.used_bytes.saturating_sub(segment.bytes);
        Some(segment.path)
    }
}

/// Parses and checks a segment; `None` if anything is off.
fn parse_segment(data: &[u8]) -> Option<SealedBatch> {
    if data.len() < SEGMENT_HEADER_LEN + 2 || !data.starts_with(SIGNATURE) {
        return None;
    }
    let ext_len = u32::from_be_bytes(data[15..19].try_into().ok()?) as usize;
    let ext = &data[HEADER_LEN..HEADER_LEN + EXTENSION_LEN];
    if ext_len != EXTENSION_LEN || &ext[..8] != MAGIC {
        return None;
    }
    let id: [u8; 16] = ext[8..24].try_into().ok()?;
    let rows = u32::from_be_bytes(ext[24..28].try_into().ok()?);
    let reports = u32::from_be_bytes(ext[28..32].try_into().ok()?);
    let first_ts = i64::from_be_bytes(ext[32..40].try_into().ok()?);
    let last_ts = i64::from_be_bytes(ext[40..48].try_into().ok()?);
    let crc = u32::from_be_bytes(ext[48..52].try_into().ok()?);
    let body = &data[SEGMENT_HEADER_LEN..];
    if crc32fast::hash(body) != crc || !body.ends_with(&[0xff, 0xff]) {
        return None;
    }
    // Back to a plain stream: the standard 19-byte header, then the body.
    let mut bytes = BytesMut::with_capacity(HEADER_LEN + body.len());
    put_header(&mut bytes);
    bytes.put_slice(body);
    let bytes: Bytes = bytes.freeze();
    is_copy_stream(&bytes).then_some(SealedBatch {
        id,
        bytes,
        rows,
        reports,
        first_ts,
        last_ts,
    })
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
        assert!(Spool::load(&seg).is_err());
        spool.quarantine_oldest().unwrap();
        assert!(!seg.path.exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
