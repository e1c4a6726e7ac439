//! Where the JSON lines go: standard output, or a file rotated by size.
//!
//! Only the `ringtrail-jsonl` thread touches an [`Output`]. Every write is
//! a run of whole lines, so a reader tailing the file sees lines appear
//! whole; a failed write is cut back to the last whole line.
//!
//! # Rotation
//!
//! The names are the ones logrotate, Filebeat, Fluent Bit and Vector
//! expect: the live file keeps its name (`app.ndjson`), and a full one is
//! renamed `app.ndjson.1`, the older ones moving up to `.2` … `.N`
//! ([`Jsonl::keep`](crate::Jsonl::keep)); the oldest past N is deleted. A rename keeps the file's
//! inode, so a shipper that follows inodes finishes reading the old file
//! before it moves on. A file is rotated before the line that would take
//! it past [`Jsonl::rotate_bytes`](crate::Jsonl::rotate_bytes), so no file holds more (unless one line
//! alone is longer).
//!
//! # Crashes
//!
//! Lines are appended with `write(2)` and fsynced only at shutdown: an
//! fsync at rotation, measured, stalled the output for long enough under
//! a burst (the ingest bench) that the queue filled and batches were
//! missed; the kernel writes a rotated file back on its own, and a
//! shipper reads it from the page cache anyway. A process crash loses what was
//! still in the ring, in the writer's batch and in the sink's queue, never
//! a line already written. A machine crash can also lose what the kernel
//! had not written back, and can leave a torn last line: opening the file
//! again cuts any bytes after its last newline, so a reader never sees
//! half a line.
//!
//! # What it will not touch
//!
//! A file is created 0600 (owner-only, whatever the umask) and never
//! opened through a symbolic link: a link planted at the path, or left by
//! a mistake, is refused rather than followed into someone else's file.
//! An existing file that does not look like JSON lines (not empty, and
//! its first byte is not `{`) is refused too, and so is one whose torn
//! tail does not start a line with `{`: a mistyped path never has its
//! tail cut off. (A FIFO or a device, `/dev/stdout` included, is still
//! written as a stream, through a link if need be: there is nothing to
//! cut.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::files::{is_symlink_error, private_options};

/// The path that means standard output.
pub(crate) const STDOUT: &str = "-";

/// Standard output, a stream (a FIFO, a device), or a rotated file.
pub(crate) enum Output {
    Stdout(io::Stdout),
    Stream(File),
    File(Rotating),
}

/// What writing a batch did, beyond the bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// Files rotated to make room.
    pub(crate) rotations: u64,
}

impl Output {
    /// Opens `path` (`-` for standard output), cutting a torn last line
    /// (see the [module docs](self) for what is refused).
    pub(crate) fn open(path: &Path, rotate_bytes: u64, keep: usize) -> io::Result<Output> {
        if path.as_os_str() == STDOUT {
            return Ok(Output::Stdout(io::stdout()));
        }
        // A FIFO or a device (`/dev/stdout`, a link) cannot be cut or
        // renamed: written as a stream, like standard output.
        if fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            return OpenOptions::new()
                .append(true)
                .open(path)
                .map(Output::Stream);
        }
        Rotating::open(path.to_path_buf(), rotate_bytes, keep).map(Output::File)
    }

    /// Writes `lines` (whole lines, each ending in `\n`). On an error the
    /// output holds none of them (a file is cut back; a pipe that failed
    /// part-way is broken anyway).
    pub(crate) fn write_lines(&mut self, lines: &[u8]) -> io::Result<Written> {
        match self {
            Output::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(lines)?;
                out.flush()?;
                Ok(Written::default())
            }
            Output::Stream(out) => out.write_all(lines).map(|()| Written::default()),
            Output::File(file) => file.write_lines(lines),
        }
    }

    /// Makes what was written durable (a file only).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::Stream(_) => Ok(()),
            Output::File(file) => file.file.sync_data(),
        }
    }
}

/// A file that is renamed away once it reaches its size limit.
pub(crate) struct Rotating {
    path: PathBuf,
    file: File,
    /// Bytes in the live file.
    len: u64,
    /// Rotate before exceeding this; 0 never rotates.
    limit: u64,
    keep: usize,
}

impl Rotating {
    fn open(path: PathBuf, limit: u64, keep: usize) -> io::Result<Rotating> {
        let (file, len) = open_whole(&path)?;
        Ok(Rotating {
            path,
            file,
            len,
            limit,
            keep,
        })
    }

    fn write_lines(&mut self, mut lines: &[u8]) -> io::Result<Written> {
        let mut written = Written::default();
        while !lines.is_empty() {
            let take = match self.room() {
                None => lines.len(),
                Some(room) if room >= lines.len() as u64 => lines.len(),
                Some(room) => match last_line_end(&lines[..room as usize]) {
                    Some(end) => end,
                    // Not even one line fits: rotate first, unless the file
                    // is empty (a line longer than the limit gets a file
                    // of its own).
                    None if self.len > 0 => {
                        self.rotate()?;
                        written.rotations += 1;
                        continue;
                    }
                    None => first_line_end(lines),
                },
            };
            self.append(&lines[..take])?;
            lines = &lines[take..];
            if !lines.is_empty() {
                self.rotate()?;
                written.rotations += 1;
            }
        }
        Ok(written)
    }

    /// Bytes the live file may still take, or `None` without a limit.
    fn room(&self) -> Option<u64> {
        (self.limit > 0).then(|| self.limit.saturating_sub(self.len))
    }

    /// Appends whole lines; on an error cuts the file back to where it
    /// was, so it never ends in half a line.
    fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        match self.file.write_all(lines) {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Renames the live file to `.1` (the older ones up by one, the
    /// oldest past `keep` deleted) and starts a new one.
    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: usize| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        if self.keep == 0 {
            fs::remove_file(&self.path)?;
        } else {
            match fs::remove_file(numbered(self.keep)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for n in (1..self.keep).rev() {
                match fs::rename(numbered(n), numbered(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            fs::rename(&self.path, numbered(1))?;
        }
        let (file, len) = open_whole(&self.path)?;
        self.file = file;
        self.len = len;
        Ok(())
    }
}

/// Opens `path` for appending (creating it 0600; never through a link),
/// and cuts any bytes after its last newline: the torn line a machine
/// crash can leave. Refuses a file that does not look like JSON lines.
/// Returns the file and its length.
fn open_whole(path: &Path) -> io::Result<(File, u64)> {
    let mut file = match private_options()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if is_symlink_error(&e) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link; name the file itself",
                    path.display()
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let len = meta.len();
    let not_json = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} does not look like JSON lines; refusing to write to it or cut it",
                path.display()
            ),
        )
    };
    if len > 0 && first_byte(&mut file, 0)? != b'{' {
        return Err(not_json());
    }
    let whole = whole_length(&mut file, len)?;
    if whole < len {
        // A torn line starts like any other.
        if first_byte(&mut file, whole)? != b'{' {
            return Err(not_json());
        }
        file.set_len(whole)?;
    }
    Ok((file, whole))
}

/// The byte of `file` at `at` (which must be before its end).
fn first_byte(file: &mut File, at: u64) -> io::Result<u8> {
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(&mut byte)?;
    Ok(byte[0])
}

/// The length of the file up to and including its last newline.
fn whole_length(file: &mut File, len: u64) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The length of the longest prefix of `bytes` that ends a line.
fn last_line_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b == b'\n').map(|at| at + 1)
}

/// The length of the first line of `bytes`, its newline included.
fn first_line_end(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |at| at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ringtrail-jsonl-{name}-{}-{}",
            std::process::id(),
            crate::time::clock::unix_nanos_now()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn lines(n: usize, width: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let text = format!("{{\"n\":{i}}}");
            out.extend_from_slice(text.as_bytes());
            out.extend(std::iter::repeat_n(
                b' ',
                width.saturating_sub(text.len() + 1),
            ));
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn a_torn_last_line_is_cut_when_the_file_is_opened_again() {
        let path = dir("torn").join("app.ndjson");
        fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        let mut out = Output::open(&path, 0, 3).unwrap();
        out.write_lines(b"{\"d\":4}\n").unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n"
        );
        fs::write(&path, b"{\"no newline at all").unwrap();
        drop(Output::open(&path, 0, 3).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_not_followed() {
        let dir = dir("symlink");
        let victim = dir.join("victim.ndjson");
        fs::write(&victim, b"{\"a\":1}\n{\"torn\":").unwrap();
        let path = dir.join("app.ndjson");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = Output::open(&path, 0, 3)
            .err()
            .expect("a symlink is refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"{\"a\":1}\n{\"torn\":");
    }

    #[test]
    fn a_file_that_is_not_json_lines_is_never_cut() {
        let dir = dir("not-json");
        let path = dir.join("notes.txt");
        let text: &[u8] = b"dear diary\nno trailing newline";
        fs::write(&path, text).unwrap();
        let err = Output::open(&path, 0, 3).err().expect("refused");
        assert!(err.to_string().contains("JSON lines"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), text, "untouched");
        // JSON lines whose torn tail is not the start of a line either.
        fs::write(&path, b"{\"a\":1}\nnot json").unwrap();
        assert!(Output::open(&path, 0, 3).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}\nnot json");
        // An empty file is fine.
        fs::write(&path, b"").unwrap();
        drop(Output::open(&path, 0, 3).unwrap());
    }

    #[test]
    fn rotation_keeps_whole_lines_under_the_limit_and_n_old_files() {
        let dir = dir("rotate");
        let path = dir.join("app.ndjson");
        let mut out = Output::open(&path, 1000, 2).unwrap();
        let mut rotations = 0;
        for _ in 0..10 {
            rotations += out.write_lines(&lines(30, 40)).unwrap().rotations;
        }
        // 300 lines of 40 bytes, 25 to a 1,000-byte file: 12 files, 11
        // rotations; the live file and two old ones are kept.
        assert_eq!(rotations, 11);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["app.ndjson", "app.ndjson.1", "app.ndjson.2"]);
        let mut seen = Vec::new();
        for name in ["app.ndjson.2", "app.ndjson.1", "app.ndjson"] {
            let text = fs::read_to_string(dir.join(name)).unwrap();
            assert!(text.len() <= 1000, "{name}: {}", text.len());
            assert!(text.ends_with('\n'));
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                seen.push(v["n"].as_u64().unwrap());
            }
        }
        // The newest 75 lines survive, in order: 12 files of 25, the live
        // one full (300 = 12 × 25), so files 10, 11, 12 hold lines 225..300
        // of the stream, i.e. n = 15..30 of the 8th write and all of the
        // 9th and 10th.
        assert_eq!(seen.len(), 75);
        let expected: Vec<u64> = (15..30).chain(0..30).chain(0..30).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_line_longer_than_the_limit_gets_a_file_of_its_own() {
        let dir = dir("long");
        let path = dir.join("app.ndjson");
        let mut out = Output::open(&path, 100, 1).unwrap();
        out.write_lines(&lines(1, 50)).unwrap();
        let written = out.write_lines(&lines(1, 500)).unwrap();
        assert_eq!(written.rotations, 1);
        assert_eq!(fs::read(&path).unwrap().len(), 500);
        assert_eq!(fs::read(dir.join("app.ndjson.1")).unwrap().len(), 50);
        let written = out.write_lines(&lines(1, 50)).unwrap();
        assert_eq!(written.rotations, 1);
        assert_eq!(fs::read(&path).unwrap().len(), 50);
    }

    #[test]
    fn keep_zero_deletes_the_full_file() {
        let dir = dir("keep0");
        let path = dir.join("app.ndjson");
        let mut out = Output::open(&path, 100, 0).unwrap();
        out.write_lines(&lines(5, 20)).unwrap();
        out.write_lines(&lines(2, 20)).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert_eq!(fs::read(&path).unwrap().len(), 40);
    }
}
