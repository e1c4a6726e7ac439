//! Stream framing: the header (with an optional extension area), the
//! trailer, and [`tuples`], which walks the tuples of a finished stream
//! without decoding them. Sinks use these to split, quarantine and spool
//! batches without knowing what a tuple holds.

use std::ops::Range;

use bytes::{BufMut, BytesMut};

use super::{HEADER_LEN, SIGNATURE};

/// Writes the 19-byte stream header: [`SIGNATURE`], flags 0 (no OIDs) and a
/// header-extension length of 0.
pub(crate) fn put_header(buf: &mut BytesMut) {
    buf.put_slice(SIGNATURE);
    buf.put_i32(0);
    buf.put_i32(0);
}

/// Writes the stream trailer, an `int16` of -1.
pub(crate) fn put_trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// Writes a stream header whose extension area carries `extension`, which
/// the server skips: the place for a sink's own metadata (the spool keeps
/// its batch id and checksum there). With an empty `extension` this is
/// [`put_header`].
pub(crate) fn put_header_with_extension(buf: &mut BytesMut, extension: &[u8]) {
    buf.put_slice(SIGNATURE);
    buf.put_i32(0);
    buf.put_i32(extension.len() as i32);
    buf.put_slice(extension);
}

/// The byte ranges of the tuples of `stream`, a well-formed binary `COPY`
/// stream whose header has no extension (as [`CopyEncoder`](super::CopyEncoder)
/// writes them), in order. It stops at the trailer, or where the stream
/// is cut short.
///
/// ```
/// use ringtrail::encode::copy::{tuples, CopyEncoder};
/// use ringtrail::Row;
///
/// let mut enc = CopyEncoder::new();
/// enc.push_row(&Row { message: "a", ..Row::default() });
/// enc.push_row(&Row { message: "bb", ..Row::default() });
/// let stream = enc.finish();
/// let ranges: Vec<_> = tuples(&stream).collect();
/// assert_eq!(ranges.len(), 2);
/// assert!(ranges[0].end == ranges[1].start);
/// ```
pub fn tuples(stream: &[u8]) -> Tuples<'_> {
    Tuples {
        stream,
        at: HEADER_LEN,
    }
}

/// The field count of a stream's first tuple (the stream starts with the
/// plain 19-byte header); `None` for an empty or malformed stream.
pub(crate) fn tuple_width(stream: &[u8]) -> Option<usize> {
    let count = stream.get(HEADER_LEN..HEADER_LEN + 2)?;
    usize::try_from(i16::from_be_bytes([count[0], count[1]])).ok()
}

/// Iterator over the tuples of a stream; see [`tuples`].
#[derive(Debug, Clone)]
pub struct Tuples<'a> {
    stream: &'a [u8],
    at: usize,
}

impl Iterator for Tuples<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let b = self.stream;
        let start = self.at;
        let count = b.get(start..start + 2)?;
        let fields = i16::from_be_bytes([count[0], count[1]]);
        if fields < 0 {
            return None; // the trailer
        }
        let mut at = start + 2;
        for _ in 0..fields {
            let len = b.get(at..at + 4)?;
            at += 4 + i32::from_be_bytes([len[0], len[1], len[2], len[3]]).max(0) as usize;
        }
        if at > b.len() {
            return None;
        }
        self.at = at;
        Some(start..at)
    }
}

/// A stream rewritten with one more column at the end of every tuple,
/// the same value in each, produced in pieces of about a given size.
///
/// This is how the shipper gives every row its `batch_id`: the id is a
/// constant of the transaction, so it is added to the tuples on their way
/// out instead of being encoded into them (the encoder, the spool and the
/// chain's canonical tuple stay as they are, and a bisected piece's rows
/// name the piece), and instead of a column default that the server would
/// evaluate for every row (`current_setting(…)::uuid` cost the server
/// about a third of a microsecond a row, measured).
///
/// The header is copied as it is; whatever follows the last whole tuple
/// (the trailer, or the rest of a malformed stream) too, so the server
/// sees and reports exactly what it would have without the column.
///
/// (`encode::copy`'s tests show it on a two-row batch.)
#[derive(Debug)]
pub(crate) struct WithColumn<'a> {
    stream: &'a [u8],
    tuples: Tuples<'a>,
    value: &'a [u8],
    started: bool,
    done: bool,
}

impl<'a> WithColumn<'a> {
    /// Appends `value` (at most `i32::MAX` bytes) as one more column to
    /// every tuple of `stream`, a stream with the plain header.
    pub fn new(stream: &'a [u8], value: &'a [u8]) -> Self {
        WithColumn {
            stream,
            tuples: tuples(stream),
            value,
            started: false,
            done: false,
        }
    }

    /// Appends the next piece of the rewritten stream to `out`, stopping
    /// after the first tuple that brings the piece to `at_least` bytes.
    /// Returns `false`, appending nothing, once the whole stream is out.
    pub fn fill(&mut self, out: &mut BytesMut, at_least: usize) -> bool {
        if self.done {
            return false;
        }
        let from = out.len();
        if !self.started {
            self.started = true;
            let header = HEADER_LEN.min(self.stream.len());
            out.put_slice(&self.stream[..header]);
        }
        while out.len() - from < at_least {
            let Some(range) = self.tuples.next() else {
                // The trailer, or what a malformed stream has left.
                out.put_slice(&self.stream[self.tuples.at.min(self.stream.len())..]);
                self.done = true;
                break;
            };
            let tuple = &self.stream[range];
            let count = i16::from_be_bytes([tuple[0], tuple[1]]);
            out.reserve(tuple.len() + 4 + self.value.len());
            out.put_i16(count.saturating_add(1));
            out.put_slice(&tuple[2..]);
            out.put_i32(self.value.len() as i32);
            out.put_slice(self.value);
        }
        true
    }
}
