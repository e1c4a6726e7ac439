//! [`RecordReader`]: decodes, on the writer thread, a record that
//! [`RecordWriter`](super::record::RecordWriter) filled. The layout is
//! defined in `record.rs`; this file only reads it.

use tracing::Metadata;

use super::record::{
    CUT_LEN, FLAG_EXTERNAL, FLAG_TRUNCATED, HEADER_LEN, LEVEL_AT, TAG_BOOL, TAG_F64, TAG_I128,
    TAG_I64, TAG_JSON, TAG_MESSAGE, TAG_MESSAGE_CUT, TAG_NAMED, TAG_SPAN_NAME, TAG_STR,
    TAG_STR_CUT, TAG_TARGET, TAG_U128, TAG_U64,
};
use crate::row::{Value, CONTEXT_LEN};

/// One decoded entry of a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Entry<'a> {
    /// The event's message; `cut_from` is its original length when it was
    /// cut.
    Message {
        text: &'a str,
        cut_from: Option<u32>,
    },
    /// A field, by its index in the call site's `FieldSet`; `cut_from` is
    /// a cut text's original length.
    Field {
        index: usize,
        value: Value<'a>,
        cut_from: Option<u32>,
    },
    /// An external record's field, with its name.
    Named {
        name: &'a str,
        value: Value<'a>,
        cut_from: Option<u32>,
    },
    /// An external record's target.
    Target(&'a str),
    /// An external record's span name.
    SpanName(&'a str),
}

/// Where a record came from.
#[derive(Clone, Copy)]
pub(crate) enum Origin {
    /// A `tracing` event: its call site's metadata, and the innermost
    /// span's, if it had span context.
    Event {
        event: &'static Metadata<'static>,
        span: Option<&'static Metadata<'static>>,
    },
    /// A record pushed through [`Ingest`](crate::Ingest): its severity
    /// number. Its time is Unix nanoseconds, not a clock reading; its
    /// target and span name are entries.
    External { level: i16 },
}

/// A read-only view of a filled slot, for the writer thread.
pub(crate) struct RecordReader<'a> {
    /// Raw clock reading of the event's time; for an external record,
    /// its Unix time in nanoseconds (as `u64` bits of an `i64`).
    pub(crate) ts_raw: u64,
    /// The event's sequence number on its thread (see `record::next_seq`).
    pub(crate) seq: u64,
    /// A `tracing` event's metadata, or an external record's level.
    pub(crate) origin: Origin,
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
    /// `buf` must hold a record completed by [`RecordWriter::finish`] (or
    /// by `external::write`, which sets the external flag) and not written
    /// since: an event record's header words are then pointers taken from
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
        let context_end = HEADER_LEN + context_len;
        let origin = if buf[28] & FLAG_EXTERNAL != 0 {
            Origin::External {
                level: i16::from_ne_bytes([buf[LEVEL_AT], buf[LEVEL_AT + 1]]),
            }
        } else {
            let event = word(8) as *const Metadata<'static>;
            let span = word(16) as *const Metadata<'static>;
            Origin::Event {
                // SAFETY: by this function's contract an event record (no
                // external flag) stores a pointer obtained from a
                // `&'static Metadata<'static>` (event metadata is static by
                // tracing's contract), so it is non-null, aligned and valid
                // forever.
                event: unsafe { &*event },
                // SAFETY: as above; 0 is written when there is no span,
                // and `as_ref` maps it to `None`.
                span: unsafe { span.as_ref() },
            }
        };
        RecordReader {
            ts_raw: u64::from_ne_bytes(buf[0..8].try_into().expect("an 8-byte header word")),
            seq: u64::from_ne_bytes(buf[32..40].try_into().expect("an 8-byte header word")),
            origin,
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
            TAG_MESSAGE | TAG_MESSAGE_CUT => {
                let (text, cut_from, used) = text(rest, tag == TAG_MESSAGE_CUT)?;
                (Entry::Message { text, cut_from }, &rest[used..])
            }
            TAG_TARGET | TAG_SPAN_NAME => {
                let (text, _, used) = text(rest, false)?;
                let entry = match tag {
                    TAG_TARGET => Entry::Target(text),
                    _ => Entry::SpanName(text),
                };
                (entry, &rest[used..])
            }
            TAG_NAMED => {
                let len = *rest.first()? as usize;
                let name = stored_str(rest.get(1..1 + len)?);
                let body = &rest[1 + len..];
                let (&value_tag, body) = body.split_first()?;
                let (value, cut_from, used) = value(value_tag, body)?;
                let entry = Entry::Named {
                    name,
                    value,
                    cut_from,
                };
                (entry, &body[used..])
            }
            _ => {
                let index = *rest.first()? as usize;
                let body = &rest[1..];
                let (value, cut_from, used) = value(tag, body)?;
                let entry = Entry::Field {
                    index,
                    value,
                    cut_from,
                };
                (entry, &body[used..])
            }
        };
        self.rest = rest;
        Some(entry)
    }
}

/// A text entry's body: `len:u16` bytes, then, for a cut text, its
/// original length. Returns the text, that length, and the bytes used.
fn text(body: &[u8], cut: bool) -> Option<(&str, Option<u32>, usize)> {
    let len = u16::from_ne_bytes(body.get(..2)?.try_into().ok()?) as usize;
    let bytes = body.get(2..2 + len)?;
    let cut_from = match cut {
        true => Some(u32::from_ne_bytes(
            body.get(2 + len..2 + len + CUT_LEN)?.try_into().ok()?,
        )),
        false => None,
    };
    Some((
        stored_str(bytes),
        cut_from,
        2 + len + cut as usize * CUT_LEN,
    ))
}

/// A value entry's body after its tag (and field byte): the value, a cut
/// text's original length, and the bytes used.
fn value(tag: u8, body: &[u8]) -> Option<(Value<'_>, Option<u32>, usize)> {
    let fixed = |n: usize| body.get(..n);
    let (value, used) = match tag {
        TAG_STR | TAG_STR_CUT => {
            let (s, cut, used) = text(body, tag == TAG_STR_CUT)?;
            return Some((Value::Str(s), cut, used));
        }
        TAG_JSON => {
            let (s, _, used) = text(body, false)?;
            (Value::Json(s), used)
        }
        TAG_BOOL => (Value::Bool(*body.first()? != 0), 1),
        TAG_I64 => (
            Value::I64(i64::from_ne_bytes(fixed(8)?.try_into().ok()?)),
            8,
        ),
        TAG_U64 => (
            Value::U64(u64::from_ne_bytes(fixed(8)?.try_into().ok()?)),
            8,
        ),
        TAG_F64 => (
            Value::F64(f64::from_ne_bytes(fixed(8)?.try_into().ok()?)),
            8,
        ),
        TAG_I128 => (
            Value::I128(i128::from_ne_bytes(fixed(16)?.try_into().ok()?)),
            16,
        ),
        TAG_U128 => (
            Value::U128(u128::from_ne_bytes(fixed(16)?.try_into().ok()?)),
            16,
        ),
        _ => return None,
    };
    Some((value, None, used))
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
