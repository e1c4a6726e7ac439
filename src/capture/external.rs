//! Writes an external record (a [`Record`] pushed through
//! [`Ingest`](crate::Ingest)) into a slot, in the layout `record.rs`
//! defines, and says how many bytes one needs.
//!
//! Unlike an event's record, an external one names its fields and carries
//! its target, span name and level itself: nothing about it is static.
//! Texts share the room as an event's do: a text may take what is left,
//! less [`RESERVE_PER_FIELD`] bytes for each entry still to come (never
//! less than an equal share), and is cut on a character boundary with its
//! original length kept; a name is cut at 255 bytes; an array or a map
//! that does not fit whole is kept as its cut JSON text, a string. Anything
//! cut sets the truncated flag.

use super::ingest::Record;
use super::record::{
    CUT_LEN, FLAG_EXTERNAL, FLAG_TRUNCATED, HEADER_LEN, LEVEL_AT, RESERVE_PER_FIELD, TAG_BOOL,
    TAG_F64, TAG_I128, TAG_I64, TAG_JSON, TAG_MESSAGE, TAG_MESSAGE_CUT, TAG_NAMED, TAG_SPAN_NAME,
    TAG_STR, TAG_STR_CUT, TAG_TARGET, TAG_U128, TAG_U64,
};
use crate::row::{Field, Value, CONTEXT_MAX_LEN};
use crate::text::floor_char_boundary;

/// The longest field name an external record keeps (its length is a byte).
const MAX_NAME: usize = u8::MAX as usize;

/// Bytes `record` needs (with `fields`, its fields as pushed) when
/// nothing is cut.
pub(super) fn encoded_len(record: &Record<'_>, fields: &[Field<'_>]) -> usize {
    let mut n = HEADER_LEN + context_len(record);
    n += 3 + record.target.len();
    n += record.span_name.map_or(0, |s| 3 + s.len());
    n += 3 + record.message.len();
    for field in fields {
        n += 2 + field.name.len().min(MAX_NAME) + 1 + value_len(&field.value);
    }
    n
}

/// The packed context's length: a mask byte and `len:u8 utf8` per id.
fn context_len(record: &Record<'_>) -> usize {
    let ids = record.context.iter().flatten();
    1 + ids
        .map(|id| 1 + id.len().min(CONTEXT_MAX_LEN))
        .sum::<usize>()
}

fn value_len(value: &Value<'_>) -> usize {
    match value {
        Value::Bool(_) => 1,
        Value::I64(_) | Value::U64(_) | Value::F64(_) => 8,
        Value::I128(_) | Value::U128(_) => 16,
        Value::Str(s) | Value::Json(s) => 2 + s.len(),
    }
}

/// Writes `record` (with `fields`, its fields with every array or map in
/// the encoder's form) into `buf`, a whole slot, as the `seq`th record of
/// this thread. Returns whether anything was cut.
pub(super) fn write(buf: &mut [u8], record: &Record<'_>, fields: &[Field<'_>], seq: u64) -> bool {
    let mut w = Cursor {
        buf,
        pos: HEADER_LEN,
        flags: FLAG_EXTERNAL,
    };
    w.buf[0..8].copy_from_slice(&record.ts_unix_nanos.to_ne_bytes());
    w.buf[8..24].fill(0);
    w.buf[29] = 0;
    w.buf[LEVEL_AT..LEVEL_AT + 2].copy_from_slice(&record.level.to_ne_bytes());
    w.buf[32..40].copy_from_slice(&seq.to_ne_bytes());
    let context_len = w.put_context(record);
    // Entries still to come after the current one, for fair shares.
    let mut to_come = 2 + usize::from(record.span_name.is_some()) + fields.len();
    to_come -= 1;
    w.put_text(TAG_TARGET, None, record.target, to_come);
    if let Some(span) = record.span_name {
        to_come -= 1;
        w.put_text(TAG_SPAN_NAME, None, span, to_come);
    }
    to_come -= 1;
    w.put_text(TAG_MESSAGE, Some(TAG_MESSAGE_CUT), record.message, to_come);
    for field in fields {
        to_come = to_come.saturating_sub(1);
        w.put_field(field, to_come);
    }
    let entries_len = w.pos - HEADER_LEN - context_len;
    w.buf[24..26].copy_from_slice(&(context_len as u16).to_ne_bytes());
    w.buf[26..28].copy_from_slice(&(entries_len as u16).to_ne_bytes());
    w.buf[28] = w.flags;
    w.flags & FLAG_TRUNCATED != 0
}

struct Cursor<'b> {
    buf: &'b mut [u8],
    pos: usize,
    flags: u8,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn cut(&mut self) {
        self.flags |= FLAG_TRUNCATED;
    }

    /// The packed context (`pack_context`'s form), written in place;
    /// returns its length. It may take three quarters of the slot; a
    /// context larger than that is left out.
    fn put_context(&mut self, record: &Record<'_>) -> usize {
        if record.context.iter().all(Option::is_none) {
            return 0;
        }
        let len = context_len(record);
        if len > (self.buf.len() - HEADER_LEN) * 3 / 4 {
            self.cut();
            return 0;
        }
        let start = self.pos;
        self.buf[start] = 0;
        self.pos += 1;
        for (i, id) in record.context.iter().enumerate() {
            let Some(id) = id else { continue };
            self.buf[start] |= 1 << i;
            let take = floor_char_boundary(id, CONTEXT_MAX_LEN);
            if take < id.len() {
                self.cut();
            }
            self.buf[self.pos] = take as u8;
            self.buf[self.pos + 1..self.pos + 1 + take].copy_from_slice(&id.as_bytes()[..take]);
            self.pos += 1 + take;
        }
        len
    }

    /// How many bytes of text an entry may take, with `header` bytes
    /// before it and `to_come` entries after it.
    fn share(&self, header: usize, to_come: usize) -> Option<usize> {
        let room = self.left().checked_sub(header + CUT_LEN)?;
        let share = room
            .saturating_sub(to_come * RESERVE_PER_FIELD)
            .max(room / (to_come + 1));
        Some(share.min(u16::MAX as usize))
    }

    /// A text entry: `tag len:u16 utf8`, or, when it must be cut and
    /// `cut_tag` is given, `cut_tag len:u16 utf8 original:u32`. A text
    /// without a cut form is cut silently (flagged).
    fn put_text(&mut self, tag: u8, cut_tag: Option<u8>, s: &str, to_come: usize) {
        let Some(share) = self.share(3, to_come) else {
            return self.cut();
        };
        self.buf[self.pos] = tag;
        self.pos += 1;
        self.put_body(cut_tag.map(|t| (t, self.pos - 1)), s, share);
    }

    /// `len:u16 utf8` of at most `share` bytes of `s`; when cut, and
    /// `cut` names a tag and where it is, that tag goes there and the
    /// original length follows.
    fn put_body(&mut self, cut: Option<(u8, usize)>, s: &str, share: usize) {
        let take = floor_char_boundary(s, share);
        let p = self.pos;
        self.buf[p..p + 2].copy_from_slice(&(take as u16).to_ne_bytes());
        self.buf[p + 2..p + 2 + take].copy_from_slice(&s.as_bytes()[..take]);
        self.pos = p + 2 + take;
        if take < s.len() {
            self.cut();
            if let Some((tag, at)) = cut {
                self.buf[at] = tag;
                let original = u32::try_from(s.len()).unwrap_or(u32::MAX);
                self.buf[self.pos..self.pos + CUT_LEN].copy_from_slice(&original.to_ne_bytes());
                self.pos += CUT_LEN;
            }
        }
    }

    /// A named field: `NAMED name_len:u8 name value_tag value`.
    fn put_field(&mut self, field: &Field<'_>, to_come: usize) {
        let name = &field.name[..floor_char_boundary(field.name, MAX_NAME)];
        if name.len() < field.name.len() {
            self.cut();
        }
        let header = 3 + name.len();
        let mut raw = [0u8; 16];
        let mut fixed = |tag: u8, bytes: &[u8]| {
            raw[..bytes.len()].copy_from_slice(bytes);
            (tag, bytes.len())
        };
        let (tag, len) = match field.value {
            Value::Str(s) | Value::Json(s) => {
                let Some(share) = self.share(header + 2, to_come) else {
                    return self.cut();
                };
                // An array or a map is kept whole, or as its cut text.
                let tag = match field.value {
                    Value::Json(_) if s.len() <= share => TAG_JSON,
                    _ => TAG_STR,
                };
                self.put_name(name);
                let at = self.pos;
                self.buf[at] = tag;
                self.pos += 1;
                return self.put_body(Some((TAG_STR_CUT, at)), s, share);
            }
            Value::Bool(b) => fixed(TAG_BOOL, &[b as u8]),
            Value::I64(n) => fixed(TAG_I64, &n.to_ne_bytes()),
            Value::U64(n) => fixed(TAG_U64, &n.to_ne_bytes()),
            Value::F64(n) => fixed(TAG_F64, &n.to_ne_bytes()),
            Value::I128(n) => fixed(TAG_I128, &n.to_ne_bytes()),
            Value::U128(n) => fixed(TAG_U128, &n.to_ne_bytes()),
        };
        if self.left() < header + len {
            return self.cut();
        }
        self.put_name(name);
        self.buf[self.pos] = tag;
        self.buf[self.pos + 1..self.pos + 1 + len].copy_from_slice(&raw[..len]);
        self.pos += 1 + len;
    }

    fn put_name(&mut self, name: &str) {
        let p = self.pos;
        self.buf[p] = TAG_NAMED;
        self.buf[p + 1] = name.len() as u8;
        self.buf[p + 2..p + 2 + name.len()].copy_from_slice(name.as_bytes());
        self.pos = p + 2 + name.len();
    }
}
