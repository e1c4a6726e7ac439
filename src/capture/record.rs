//! The record: the fixed-size byte layout of one event inside a ring slot.
//!
//! [`RecordWriter`] fills a slot on the hot path; [`RecordReader`] decodes it
//! on the writer thread. Both live in this file so the layout is defined in
//! exactly one place.
//!
//! ```text
//! offset  size  what
//!      0     8  raw clock reading (see `crate::clock`); the writer converts it
//!      8     8  &'static Metadata of the event (level, target, file, line, field names)
//!     16     8  &'static Metadata of the innermost span, or 0
//!     24     2  context length C
//!     26     2  entries length E
//!     28     1  flags (bit 0: something was truncated)
//!     32     C  packed span context (see `pack_context`)
//!   32+C     E  entries, in call-site order:
//!                 MESSAGE  len:u16 utf8
//!                 STR      field:u8 len:u16 utf8
//!                 BOOL     field:u8 u8
//!                 I64/U64/F64     field:u8 8 bytes
//!                 I128/U128       field:u8 16 bytes
//! ```
//!
//! Field names are not copied: an entry stores the field's index in the
//! call site's static `FieldSet`. Integers are native-endian because the
//! record never leaves the process.
//!
//! Strings that do not fit are cut on a UTF-8 character boundary and the
//! truncated flag is set; an entry that does not fit at all is left out,
//! also setting the flag. Writing never fails and never panics.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::Metadata;

use crate::row::{Value, CONTEXT_LEN};

// The packed context's presence mask is one byte: one bit per key.
const _: () = assert!(CONTEXT_LEN <= 8, "the context presence mask is a u8");

const HEADER_LEN: usize = 32;
const FLAG_TRUNCATED: u8 = 1;

const TAG_MESSAGE: u8 = 1;
const TAG_STR: u8 = 2;
const TAG_BOOL: u8 = 3;
const TAG_I64: u8 = 4;
const TAG_U64: u8 = 5;
const TAG_F64: u8 = 6;
const TAG_I128: u8 = 7;
const TAG_U128: u8 = 8;

/// The largest record size the 16-bit lengths can describe.
pub(crate) const MAX_RECORD_SIZE: usize = 1 << 16;

/// The largest `n <= max` that is a character boundary of `s`.
#[inline]
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut n = max;
    // A UTF-8 character is at most 4 bytes, so this loops at most 3 times.
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Writes one event into a slot. Created per event on the hot path.
pub(crate) struct RecordWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    context_len: usize,
    flags: u8,
}

impl<'a> RecordWriter<'a> {
    /// Starts a record in `buf` (a whole slot, at least 128 bytes).
    #[inline]
    pub(crate) fn begin(buf: &'a mut [u8], ts_raw: u64, event: &'static Metadata<'static>) -> Self {
        debug_assert!(buf.len() >= HEADER_LEN && buf.len() <= MAX_RECORD_SIZE);
        buf[0..8].copy_from_slice(&ts_raw.to_ne_bytes());
        buf[8..16].copy_from_slice(&(event as *const Metadata<'static> as usize).to_ne_bytes());
        buf[16..24].copy_from_slice(&0usize.to_ne_bytes());
        RecordWriter {
            buf,
            pos: HEADER_LEN,
            context_len: 0,
            flags: 0,
        }
    }

    /// Copies a packed span context (built once per span) into the record.
    /// Must be called before any entry is written.
    #[inline]
    pub(crate) fn put_context(
        &mut self,
        span: &'static Metadata<'static>,
        packed: &[u8],
        truncated: bool,
    ) {
        debug_assert_eq!(self.pos, HEADER_LEN);
        self.buf[16..24]
            .copy_from_slice(&(span as *const Metadata<'static> as usize).to_ne_bytes());
        // Keep at least a quarter of the slot for the message and fields.
        let room = (self.buf.len() - HEADER_LEN) * 3 / 4;
        if packed.len() > room {
            self.flags |= FLAG_TRUNCATED;
            return;
        }
        self.buf[HEADER_LEN..HEADER_LEN + packed.len()].copy_from_slice(packed);
        self.pos += packed.len();
        self.context_len = packed.len();
        if truncated {
            self.flags |= FLAG_TRUNCATED;
        }
    }

    /// Completes the header. The record is ready to publish.
    #[inline]
    pub(crate) fn finish(self) {
        let entries_len = self.pos - HEADER_LEN - self.context_len;
        self.buf[24..26].copy_from_slice(&(self.context_len as u16).to_ne_bytes());
        self.buf[26..28].copy_from_slice(&(entries_len as u16).to_ne_bytes());
        self.buf[28] = self.flags;
    }

    /// Reserves `n` bytes, or marks the record truncated and returns false.
    #[inline]
    fn reserve(&mut self, n: usize) -> bool {
        if self.buf.len() - self.pos >= n {
            true
        } else {
            self.flags |= FLAG_TRUNCATED;
            false
        }
    }

    #[inline]
    fn put_fixed<const N: usize>(&mut self, tag: u8, field: &Field, bytes: [u8; N]) {
        if self.reserve(2 + N) {
            let p = self.pos;
            self.buf[p] = tag;
            self.buf[p + 1] = field.index() as u8;
            self.buf[p + 2..p + 2 + N].copy_from_slice(&bytes);
            self.pos = p + 2 + N;
        }
    }

    /// Writes a string entry's header; returns where its text starts.
    #[inline]
    fn string_header(&mut self, field: &Field) -> Option<usize> {
        let message = field.name() == "message";
        let header = if message { 3 } else { 4 };
        if !self.reserve(header) {
            return None;
        }
        let p = self.pos;
        if message {
            self.buf[p] = TAG_MESSAGE;
        } else {
            self.buf[p] = TAG_STR;
            self.buf[p + 1] = field.index() as u8;
        }
        Some(p + header)
    }

    /// Ends a string entry whose text occupies `start..end`.
    #[inline]
    fn string_end(&mut self, start: usize, end: usize) {
        let len = (end - start) as u16;
        self.buf[start - 2..start].copy_from_slice(&len.to_ne_bytes());
        self.pos = end;
    }

    #[inline]
    fn put_str(&mut self, field: &Field, s: &str) {
        if let Some(start) = self.string_header(field) {
            let take = floor_char_boundary(s, self.buf.len() - start);
            if take < s.len() {
                self.flags |= FLAG_TRUNCATED;
            }
            self.buf[start..start + take].copy_from_slice(&s.as_bytes()[..take]);
            self.string_end(start, start + take);
        }
    }

    /// Formats `value` straight into the slot: no intermediate `String`.
    #[inline]
    fn put_formatted(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if let Some(start) = self.string_header(field) {
            let mut out = SliceWriter {
                buf: &mut self.buf[start..],
                len: 0,
                truncated: false,
            };
            // An error here only means the text was cut: SliceWriter stops
            // formatting early once the slot is full.
            let _ = out.write_fmt(value);
            let (len, truncated) = (out.len, out.truncated);
            if truncated {
                self.flags |= FLAG_TRUNCATED;
            }
            self.string_end(start, start + len);
        }
    }
}

/// `fmt::Write` into a fixed slice, cutting on a character boundary.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    truncated: bool,
}

impl fmt::Write for SliceWriter<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let take = floor_char_boundary(s, room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.truncated = true;
            // Stop the formatter: nothing more fits.
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl Visit for RecordWriter<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put_fixed(TAG_F64, field, value.to_ne_bytes());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put_fixed(TAG_I64, field, value.to_ne_bytes());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put_fixed(TAG_U64, field, value.to_ne_bytes());
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put_fixed(TAG_I128, field, value.to_ne_bytes());
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put_fixed(TAG_U128, field, value.to_ne_bytes());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put_fixed(TAG_BOOL, field, [value as u8]);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_str(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_formatted(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put_formatted(field, format_args!("{value:?}"));
    }
}

/// One decoded entry of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Entry<'a> {
    /// The event's message.
    Message(&'a str),
    /// A field, by its index in the call site's `FieldSet`.
    Field(usize, Value<'a>),
}

/// A read-only view of a filled slot, for the writer thread.
pub(crate) struct RecordReader<'a> {
    /// Raw clock reading of the event's time.
    pub(crate) ts_raw: u64,
    /// The event's call-site metadata.
    pub(crate) event: &'static Metadata<'static>,
    /// The innermost span's metadata, if the event had span context.
    pub(crate) span: Option<&'static Metadata<'static>>,
    /// Packed context, decoded with [`unpack_context`].
    pub(crate) context: &'a [u8],
    entries: &'a [u8],
    /// Whether anything was cut.
    pub(crate) truncated: bool,
}

impl<'a> RecordReader<'a> {
    /// Decodes the header of a slot that a [`RecordWriter`] finished.
    ///
    /// # Safety
    ///
    /// `buf` must hold a record completed by [`RecordWriter::finish`] and
    /// not written since: its header words are then pointers taken from
    /// `&'static Metadata<'static>` references (or 0 for "no span"), and
    /// its lengths lie within the slot. Any other bytes would make this
    /// dereference arbitrary addresses.
    pub(crate) unsafe fn new(buf: &'a [u8]) -> Self {
        let word = |at: usize| {
            let bytes = buf[at..at + 8].try_into().expect("an 8-byte header word");
            usize::from_ne_bytes(bytes)
        };
        let context_len = u16::from_ne_bytes([buf[24], buf[25]]) as usize;
        let entries_len = u16::from_ne_bytes([buf[26], buf[27]]) as usize;
        let event = word(8) as *const Metadata<'static>;
        let span = word(16) as *const Metadata<'static>;
        let context_end = HEADER_LEN + context_len;
        RecordReader {
            ts_raw: u64::from_ne_bytes(buf[0..8].try_into().expect("an 8-byte header word")),
            // SAFETY: by this function's contract the record stores a
            // pointer obtained from a `&'static Metadata<'static>` (event
            // metadata is static by tracing's contract), so it is
            // non-null, aligned and valid forever.
            event: unsafe { &*event },
            // SAFETY: as above; 0 is written when there is no span, and
            // `as_ref` maps it to `None`.
            span: unsafe { span.as_ref() },
            context: &buf[HEADER_LEN..context_end],
            entries: &buf[context_end..context_end + entries_len],
            truncated: buf[28] & FLAG_TRUNCATED != 0,
        }
    }

    /// The record's entries, in call-site order.
    pub(crate) fn entries(&self) -> Entries<'a> {
        Entries { rest: self.entries }
    }
}

/// Iterator over a record's entries.
pub(crate) struct Entries<'a> {
    rest: &'a [u8],
}

/// Text stored by `RecordWriter`: bytes of a `&str` prefix cut on a character
/// boundary, so valid UTF-8.
#[inline]
fn stored_str(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: `RecordWriter` and `pack_context` only ever store whole `&str`
    // values or prefixes cut by `floor_char_boundary`, which are valid UTF-8.
    // Skipping validation here saves a pass over every string on the writer.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let (&tag, rest) = self.rest.split_first()?;
        let (entry, rest) = match tag {
            TAG_MESSAGE => {
                let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
                (
                    Entry::Message(stored_str(&rest[2..2 + len])),
                    &rest[2 + len..],
                )
            }
            _ => {
                let field = rest[0] as usize;
                let body = &rest[1..];
                let fixed = |n: usize| &body[..n];
                let (value, used) = match tag {
                    TAG_STR => {
                        let len = u16::from_ne_bytes([body[0], body[1]]) as usize;
                        (Value::Str(stored_str(&body[2..2 + len])), 2 + len)
                    }
                    TAG_BOOL => (Value::Bool(body[0] != 0), 1),
                    TAG_I64 => (Value::I64(i64::from_ne_bytes(fixed(8).try_into().ok()?)), 8),
                    TAG_U64 => (Value::U64(u64::from_ne_bytes(fixed(8).try_into().ok()?)), 8),
                    TAG_F64 => (Value::F64(f64::from_ne_bytes(fixed(8).try_into().ok()?)), 8),
                    TAG_I128 => (
                        Value::I128(i128::from_ne_bytes(fixed(16).try_into().ok()?)),
                        16,
                    ),
                    TAG_U128 => (
                        Value::U128(u128::from_ne_bytes(fixed(16).try_into().ok()?)),
                        16,
                    ),
                    _ => return None,
                };
                (Entry::Field(field, value), &body[used..])
            }
        };
        self.rest = rest;
        Some(entry)
    }
}

/// Packs span-context values into the compact form copied into records:
/// a presence bitmask byte, then `len:u8 utf8` for each present value.
/// Values longer than 255 bytes are cut on a character boundary; the
/// returned flag says whether that happened.
pub(crate) fn pack_context(values: &[Option<&str>; CONTEXT_LEN]) -> (Vec<u8>, bool) {
    let mut packed = vec![0u8];
    let mut truncated = false;
    for (i, value) in values.iter().enumerate() {
        if let Some(v) = value {
            packed[0] |= 1 << i;
            let take = floor_char_boundary(v, u8::MAX as usize);
            truncated |= take < v.len();
            packed.push(take as u8);
            packed.extend_from_slice(&v.as_bytes()[..take]);
        }
    }
    (packed, truncated)
}

/// Inverse of [`pack_context`]. An empty slice means no context.
pub(crate) fn unpack_context(mut packed: &[u8]) -> [Option<&str>; CONTEXT_LEN] {
    let mut values = [None; CONTEXT_LEN];
    let Some((&mask, rest)) = packed.split_first() else {
        return values;
    };
    packed = rest;
    for (i, value) in values.iter_mut().enumerate() {
        if mask & (1 << i) != 0 {
            let Some((&len, rest)) = packed.split_first() else {
                break;
            };
            let len = (len as usize).min(rest.len());
            *value = Some(stored_str(&rest[..len]));
            packed = &rest[len..];
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_boundary_never_splits_a_character() {
        let s = "aé€😀";
        for max in 0..=s.len() + 2 {
            let n = floor_char_boundary(s, max);
            assert!(n <= max && s.is_char_boundary(n));
        }
    }

    #[test]
    fn context_packs_and_unpacks() {
        let long = "ü".repeat(200);
        let values = [
            Some("t1"),
            None,
            Some(""),
            None,
            Some(long.as_str()),
            Some("c"),
        ];
        let (packed, truncated) = pack_context(&values);
        assert!(truncated);
        let back = unpack_context(&packed);
        assert_eq!(back[0], Some("t1"));
        assert_eq!(back[1], None);
        assert_eq!(back[2], Some(""));
        assert_eq!(back[4].unwrap().len(), 254);
        assert!(long.starts_with(back[4].unwrap()));
        assert_eq!(back[5], Some("c"));
        assert_eq!(unpack_context(&[]), [None; CONTEXT_LEN]);
    }

    #[test]
    fn slice_writer_cuts_on_a_character_boundary() {
        let mut buf = [0u8; 5];
        let mut w = SliceWriter {
            buf: &mut buf,
            len: 0,
            truncated: false,
        };
        let tail = "€€";
        assert!(write!(w, "ab{tail}").is_err());
        assert_eq!((w.len, w.truncated), (5, true));
        assert_eq!(&buf[..5], "ab€".as_bytes());
    }
}
