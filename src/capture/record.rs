//! The record: the fixed-size byte layout of one event inside a ring slot.
//!
//! [`RecordWriter`] fills a slot on the hot path; `reader.rs` decodes it
//! on the writer thread. The layout is defined here, in exactly one place:
//! the reader imports its constants.
//!
//! ```text
//! offset  size  what
//!      0     8  raw clock reading (see `crate::clock`); the writer converts it
//!      8     8  &'static Metadata of the event (level, target, file, line, field names)
//!     16     8  &'static Metadata of the innermost span, or 0
//!     24     2  context length C
//!     26     2  entries length E
//!     28     1  flags (bit 0: something was truncated)
//!     32     8  the thread's sequence number (see `next_seq`)
//!     40     C  packed span context (see `pack_context`)
//!   40+C     E  entries, in call-site order:
//!                 MESSAGE      len:u16 utf8
//!                 MESSAGE_CUT  len:u16 utf8 original_len:u32
//!                 STR          field:u8 len:u16 utf8
//!                 STR_CUT      field:u8 len:u16 utf8 original_len:u32
//!                 BOOL         field:u8 u8
//!                 I64/U64/F64  field:u8 8 bytes
//!                 I128/U128    field:u8 16 bytes
//! ```
//!
//! Field names are not copied: an entry stores the field's index in the
//! call site's static `FieldSet`.
//!
//! **External records** (pushed through [`Ingest`](crate::Ingest), e.g. by
//! `ringtrail serve`) have no call site. Flag bit 1 marks them; the header
//! then holds the event's Unix time in nanoseconds at 0 (not a clock
//! reading), 0 at 8 and 16, and the OpenTelemetry severity number as an
//! `i16` at 30. Their entries name themselves (`external.rs` writes them):
//!
//! ```text
//!                 MESSAGE / MESSAGE_CUT  as above
//!                 TARGET       len:u16 utf8
//!                 SPAN_NAME    len:u16 utf8
//!                 NAMED        name_len:u8 name value_tag:u8 value
//!                                (value as a STR, STR_CUT, BOOL, I64, U64,
//!                                F64, I128 or U128 entry after its field
//!                                byte, or JSON len:u16 utf8)
//! ``` Integers are native-endian because the
//! record never leaves the process.
//!
//! **A long text never evicts the fields after it.** A text value may use
//! the room that is left less [`RESERVE_PER_FIELD`] bytes for each field
//! the call site's `FieldSet` still has to come (and never less than an
//! equal share of that room), so numbers and booleans always fit and later
//! strings keep a share. A text that does not fit is cut on a UTF-8
//! character boundary, stored with its original length (the `_CUT` tags),
//! and the truncated flag is set; an entry that does not fit at all is left
//! out, also setting the flag. Writing never fails, never panics and never
//! allocates.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::Metadata;

use crate::row::{CONTEXT_LEN, CONTEXT_MAX_LEN};
use crate::text::floor_char_boundary;

// The packed context's presence mask is one byte: one bit per key.
const _: () = assert!(CONTEXT_LEN <= 8, "the context presence mask is a u8");
// Each packed id's length is one byte.
const _: () = assert!(CONTEXT_MAX_LEN <= u8::MAX as usize);

pub(super) const HEADER_LEN: usize = 40;
pub(super) const FLAG_TRUNCATED: u8 = 1;
/// An external record (see the module docs).
pub(super) const FLAG_EXTERNAL: u8 = 2;
/// Where an external record keeps its severity number (`i16`).
pub(super) const LEVEL_AT: usize = 30;

pub(super) const TAG_MESSAGE: u8 = 1;
pub(super) const TAG_STR: u8 = 2;
pub(super) const TAG_BOOL: u8 = 3;
pub(super) const TAG_I64: u8 = 4;
pub(super) const TAG_U64: u8 = 5;
pub(super) const TAG_F64: u8 = 6;
pub(super) const TAG_I128: u8 = 7;
pub(super) const TAG_U128: u8 = 8;
pub(super) const TAG_MESSAGE_CUT: u8 = 9;
pub(super) const TAG_STR_CUT: u8 = 10;
pub(super) const TAG_TARGET: u8 = 11;
pub(super) const TAG_SPAN_NAME: u8 = 12;
pub(super) const TAG_NAMED: u8 = 13;
pub(super) const TAG_JSON: u8 = 14;

thread_local! {
    /// The sequence number of this thread's last event (0: none yet).
    /// Const-initialised and without a destructor: reading it never
    /// allocates or registers anything.
    static SEQ: Cell<u64> = const { Cell::new(0) };
}

/// The next sequence number of the calling thread: 1 for its first event,
/// then one more per event. Events of one thread are numbered in the
/// order it emitted them, whichever slot class each lands in, so the
/// writer and the read side can restore that order (`seq` column).
#[inline]
pub(crate) fn next_seq() -> u64 {
    SEQ.with(|seq| {
        let next = seq.get().wrapping_add(1);
        seq.set(next);
        next
    })
}

/// Bytes a text value leaves free for each field still to come: room for
/// any number (tag, index, 16 bytes) or the start of a short string.
pub(crate) const RESERVE_PER_FIELD: usize = 24;

/// The original length a cut text carries after its bytes.
pub(super) const CUT_LEN: usize = 4;

/// The largest record size the 16-bit lengths can describe.
pub(crate) const MAX_RECORD_SIZE: usize = 1 << 16;

/// Writes one event into a slot. Created per event on the hot path.
pub(crate) struct RecordWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
    context_len: usize,
    flags: u8,
    /// Fields in the call site's `FieldSet`, for fair shares of the room.
    fields: usize,
}

impl<'a> RecordWriter<'a> {
    /// Starts a record in `buf` (a whole slot, at least 128 bytes) for
    /// the event read at `ts_raw`, the `seq`th of its thread.
    #[inline]
    pub(crate) fn begin(
        buf: &'a mut [u8],
        ts_raw: u64,
        seq: u64,
        event: &'static Metadata<'static>,
    ) -> Self {
        debug_assert!(buf.len() >= HEADER_LEN && buf.len() <= MAX_RECORD_SIZE);
        buf[0..8].copy_from_slice(&ts_raw.to_ne_bytes());
        buf[8..16].copy_from_slice(&(event as *const Metadata<'static> as usize).to_ne_bytes());
        buf[16..24].copy_from_slice(&0usize.to_ne_bytes());
        buf[32..40].copy_from_slice(&seq.to_ne_bytes());
        RecordWriter {
            buf,
            pos: HEADER_LEN,
            context_len: 0,
            flags: 0,
            fields: event.fields().len(),
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

    /// Completes the header. The record is ready to publish. Returns
    /// whether anything was cut (a bigger slot would hold more).
    #[inline]
    pub(crate) fn finish(self) -> bool {
        let entries_len = self.pos - HEADER_LEN - self.context_len;
        self.buf[24..26].copy_from_slice(&(self.context_len as u16).to_ne_bytes());
        self.buf[26..28].copy_from_slice(&(entries_len as u16).to_ne_bytes());
        self.buf[28] = self.flags;
        self.flags & FLAG_TRUNCATED != 0
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

    /// Writes a string entry's header; returns where its text starts and
    /// how many bytes of text it may take: the room left, less the
    /// reserve for the fields still to come and for a cut's length.
    #[inline]
    fn string_header(&mut self, field: &Field) -> Option<Text> {
        let message = field.name() == "message";
        let header = if message { 3 } else { 4 };
        if !self.reserve(header + CUT_LEN) {
            return None;
        }
        let p = self.pos;
        if message {
            self.buf[p] = TAG_MESSAGE;
        } else {
            self.buf[p] = TAG_STR;
            self.buf[p + 1] = field.index() as u8;
        }
        let start = p + header;
        let room = self.buf.len() - start - CUT_LEN;
        let to_come = self.fields.saturating_sub(field.index() + 1);
        let share = room
            .saturating_sub(to_come * RESERVE_PER_FIELD)
            .max(room / (to_come + 1));
        Some(Text {
            tag_at: p,
            start,
            share: share.min(u16::MAX as usize),
        })
    }

    /// Ends the string entry `text` whose bytes end at `end`, cut from
    /// `original` bytes when that is longer.
    #[inline]
    fn string_end(&mut self, text: Text, end: usize, original: usize) {
        let len = end - text.start;
        self.buf[text.start - 2..text.start].copy_from_slice(&(len as u16).to_ne_bytes());
        self.pos = end;
        if original > len {
            self.flags |= FLAG_TRUNCATED;
            let tag = &mut self.buf[text.tag_at];
            *tag = if *tag == TAG_MESSAGE {
                TAG_MESSAGE_CUT
            } else {
                TAG_STR_CUT
            };
            let original = u32::try_from(original).unwrap_or(u32::MAX);
            self.buf[end..end + CUT_LEN].copy_from_slice(&original.to_ne_bytes());
            self.pos = end + CUT_LEN;
        }
    }

    #[inline]
    fn put_str(&mut self, field: &Field, s: &str) {
        if let Some(text) = self.string_header(field) {
            let take = floor_char_boundary(s, text.share);
            let end = text.start + take;
            self.buf[text.start..end].copy_from_slice(&s.as_bytes()[..take]);
            self.string_end(text, end, s.len());
        }
    }

    /// Formats `value` straight into the slot: no intermediate `String`.
    #[inline]
    fn put_formatted(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if let Some(text) = self.string_header(field) {
            let mut out = SliceWriter {
                buf: &mut self.buf[text.start..text.start + text.share],
                len: 0,
                total: 0,
            };
            // SliceWriter never fails: past the room it only counts, so the
            // original length of a cut value is known.
            let _ = out.write_fmt(value);
            let (end, total) = (text.start + out.len, out.total);
            self.string_end(text, end, total);
        }
    }
}

/// A string entry being written: where its tag is, where its bytes start,
/// and how many it may take.
struct Text {
    tag_at: usize,
    start: usize,
    share: usize,
}

/// `fmt::Write` into a fixed slice, cutting on a character boundary; past
/// the cut it keeps counting, for the original length.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    /// Bytes written.
    len: usize,
    /// Bytes formatted, written or not.
    total: usize,
}

impl fmt::Write for SliceWriter<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len == self.total {
            // Nothing cut yet.
            let room = self.buf.len() - self.len;
            let take = floor_char_boundary(s, room);
            self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
            self.len += take;
        }
        self.total += s.len();
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
            let take = floor_char_boundary(v, CONTEXT_MAX_LEN);
            truncated |= take < v.len();
            packed.push(take as u8);
            packed.extend_from_slice(&v.as_bytes()[..take]);
        }
    }
    (packed, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::reader::unpack_context;

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
            total: 0,
        };
        let tail = "€€";
        assert!(write!(w, "ab{tail}").is_ok());
        assert_eq!((w.len, w.total), (5, 8), "cut at 5, counted to the end");
        assert_eq!(&buf[..5], "ab€".as_bytes());
    }
}
