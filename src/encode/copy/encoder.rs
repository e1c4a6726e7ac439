//! [`CopyEncoder`]: binary `COPY` batches of [`Row`]s in a reused buffer.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::fields::*;
use super::stream::{put_header, put_trailer};
use super::{FIELD_COUNT, HEADER_LEN, TRAILER_LEN};
use crate::encode::json;
use crate::row::{Row, Value};

/// Builds one binary `COPY` batch of [`Row`]s at a time in a reused buffer.
///
/// [`push_row`](Self::push_row) appends a complete tuple (and the header,
/// before the first one); [`finish`](Self::finish) appends the trailer and
/// hands the batch over as [`Bytes`], leaving the encoder empty for the next
/// batch.
///
/// # Buffer reuse
///
/// `finish` splits the batch off the buffer instead of copying it, so the
/// returned `Bytes` and the encoder share one allocation. Once the sink has
/// dropped the `Bytes`, the first `push_row` of the next batch reclaims that
/// whole allocation, so a steady stream of batches that the sink sends and
/// drops in turn allocates nothing. If the previous batch is still alive
/// (say, being retried), the encoder allocates a fresh buffer of the same
/// size instead, and never touches the old bytes. The buffer keeps the size
/// of the largest recent batch; bound batches by bytes to bound it.
///
/// ```
/// use ringtrail::encode::CopyEncoder;
/// use ringtrail::Row;
///
/// let mut enc = CopyEncoder::new();
/// let row = Row { message: "tick", ..Row::default() };
/// for _ in 0..1000 {
///     enc.push_row(&row);
/// }
/// let first = enc.finish();
/// let addr = first.as_ptr();
/// drop(first); // the sink is done with it
///
/// for _ in 0..1000 {
///     enc.push_row(&row);
/// }
/// assert_eq!(enc.finish().as_ptr(), addr); // same allocation
/// ```
pub struct CopyEncoder {
    /// The batch in progress: empty, or a header and `rows` whole tuples.
    buf: BytesMut,
    /// Tuples in `buf`.
    rows: usize,
    /// Capacity the last non-empty batch ended with. Reserving it at the start
    /// of a batch reclaims the shared allocation in one step (see the type
    /// docs) instead of letting the buffer regrow from a small tail.
    capacity_hint: usize,
    /// Where the last tuple pushed starts in `buf` (see [`CopyEncoder::last_tuple`]).
    last_start: usize,
    /// Member order scratch; `Some` while `fields` are written in JCS
    /// member order (see [`CopyEncoder::sort_fields`]).
    sorted: Option<Vec<u32>>,
    /// Whether the last tuple came out canonical as written.
    last_canonical: bool,
}

impl CopyEncoder {
    /// Creates an empty encoder. It allocates on its first row.
    pub fn new() -> Self {
        CopyEncoder {
            buf: BytesMut::new(),
            rows: 0,
            capacity_hint: 0,
            last_start: 0,
            sorted: None,
            last_canonical: false,
        }
    }

    /// Creates an empty encoder whose buffer starts with room for `bytes`
    /// bytes, for callers that know their batch size.
    pub fn with_capacity(bytes: usize) -> Self {
        CopyEncoder {
            buf: BytesMut::with_capacity(bytes),
            rows: 0,
            capacity_hint: bytes,
            last_start: 0,
            sorted: None,
            last_canonical: false,
        }
    }

    /// Appends `row` as one complete tuple, writing the stream header first
    /// when this is the batch's first row.
    ///
    /// Never fails and never leaves a partial tuple behind.
    #[inline]
    pub fn push_row(&mut self, row: &Row<'_>) {
        let tuple = tuple_size_hint(row);
        if self.rows == 0 {
            // Also reclaims the previous batch's allocation once its Bytes
            // is gone, or allocates one buffer of the usual size at once.
            self.buf
                .reserve((HEADER_LEN + tuple + TRAILER_LEN).max(self.capacity_hint));
            put_header(&mut self.buf);
        } else {
            // One growth check per tuple; the put_* calls below then find
            // room (unless escaping made the tuple longer than the hint).
            self.buf.reserve(tuple + TRAILER_LEN);
        }
        self.last_start = self.buf.len();
        self.last_canonical = match &mut self.sorted {
            None => {
                put_row_with(&mut self.buf, row, |buf| {
                    put_jsonb(buf, |buf| {
                        json::write_fields(buf, row.fields);
                        false
                    })
                });
                false
            }
            Some(order) => put_row_with(&mut self.buf, row, |buf| {
                put_jsonb(buf, |buf| json::write_fields_sorted(buf, row.fields, order))
            }),
        };
        self.rows += 1;
    }

    /// Writes each row's `fields` in JCS member order from now on (`on`),
    /// or in the order the event gave them (the default). The table
    /// cannot tell the two apart: `jsonb` sorts its keys and keeps a
    /// repeated key's last value either way. The chain turns it on, so
    /// that most tuples already hold their canonical `fields`
    /// ([`last_tuple_canonical`](Self::last_tuple_canonical)) and are hashed
    /// as they are, with no second pass over the JSON.
    ///
    /// ```
    /// use ringtrail::encode::CopyEncoder;
    /// use ringtrail::chain::canonical::StoredRow;
    /// use ringtrail::{Field, Row, Value};
    ///
    /// let fields = [
    ///     Field { name: "z", value: Value::Bool(true) },
    ///     Field { name: "a", value: Value::F64(0.5) },
    /// ];
    /// let row = Row { fields: &fields, ..Row::default() };
    /// let mut enc = CopyEncoder::new();
    /// enc.push_row(&row);
    /// assert_eq!(StoredRow::from_tuple(enc.last_tuple()).unwrap().fields, r#"{"z":true,"a":0.5}"#);
    ///
    /// enc.sort_fields(true);
    /// enc.push_row(&row);
    /// assert_eq!(StoredRow::from_tuple(enc.last_tuple()).unwrap().fields, r#"{"a":0.5,"z":true}"#);
    /// assert!(enc.last_tuple_canonical());
    /// ```
    pub fn sort_fields(&mut self, on: bool) {
        match (on, &self.sorted) {
            (true, None) => self.sorted = Some(Vec::new()),
            (false, Some(_)) => self.sorted = None,
            _ => {}
        }
    }

    /// True when the [last tuple](Self::last_tuple) holds its canonical
    /// `fields` as written: in JCS member order
    /// ([`sort_fields`](Self::sort_fields)) with every number in canonical
    /// spelling. The tuple less the jsonb version byte is then the row's
    /// canonical tuple ([`chain::canonical`](crate::chain::canonical)), and
    /// [`BatchDigest::push_canonical`](crate::chain::digest::BatchDigest::push_canonical)
    /// hashes it without reading its JSON. Always `false` without
    /// `sort_fields`.
    pub fn last_tuple_canonical(&self) -> bool {
        self.rows > 0 && self.last_canonical
    }

    /// The tuple the last [`push_row`](Self::push_row) of the batch in
    /// progress wrote (empty when the batch has no rows): what the chain
    /// digests, so that it hashes the bytes sent rather than encoding the
    /// row a second time.
    ///
    /// ```
    /// use ringtrail::encode::CopyEncoder;
    /// use ringtrail::chain::canonical::StoredRow;
    /// use ringtrail::Row;
    ///
    /// let mut enc = CopyEncoder::new();
    /// enc.push_row(&Row { message: "first", ..Row::default() });
    /// enc.push_row(&Row { message: "second", ..Row::default() });
    /// let tuple = StoredRow::from_tuple(enc.last_tuple()).unwrap();
    /// assert_eq!(tuple.message, "second");
    /// ```
    pub fn last_tuple(&self) -> &[u8] {
        if self.rows == 0 {
            return &[];
        }
        &self.buf[self.last_start..]
    }

    /// Number of rows in the batch in progress.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes buffered so far for the batch in progress (header and tuples,
    /// not yet the trailer). Use it to bound batches by size.
    pub fn bytes_len(&self) -> usize {
        self.buf.len()
    }

    /// True when the batch in progress has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes the buffer can hold without growing.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Ends the batch: appends the trailer and returns the whole stream,
    /// ready to send after [`copy_statement`](super::copy_statement).
    ///
    /// Without rows the result is just a header and a trailer (21 bytes,
    /// [`HEADER_LEN`] plus [`TRAILER_LEN`]), still a valid, empty `COPY`
    /// stream. The encoder is then empty, and keeps its allocation
    /// for the next batch (see [buffer reuse](Self#buffer-reuse)).
    #[must_use = "the finished batch is returned, not kept"]
    pub fn finish(&mut self) -> Bytes {
        if self.rows == 0 {
            self.buf.clear();
            self.buf.reserve(HEADER_LEN + TRAILER_LEN);
            put_header(&mut self.buf);
        }
        put_trailer(&mut self.buf);
        if self.rows > 0 {
            // Only real batches set the size to expect: an empty flush must
            // not shrink the next reservation.
            self.capacity_hint = self.buf.capacity();
        }
        self.rows = 0;
        self.buf.split().freeze()
    }

    /// Discards the batch in progress, keeping the buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.rows = 0;
    }
}

impl Default for CopyEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CopyEncoder {
    // The buffer itself can be megabytes; show its shape, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyEncoder")
            .field("rows", &self.rows)
            .field("bytes_len", &self.buf.len())
            .field("capacity", &self.buf.capacity())
            .finish()
    }
}

/// An upper estimate of the bytes one tuple of `row` takes, so the buffer
/// grows at most once per tuple. Exact for text without NUL; for JSON it
/// counts strings unescaped and numbers at their widest.
#[inline]
pub(super) fn tuple_size_hint(row: &Row<'_>) -> usize {
    // Field count, a length prefix per column, then the fixed-width
    // values: ts 8, uuid 16, level 2, line 4, truncated 1, kind 2,
    // redacted 2, seq 8, and the jsonb version byte.
    const FIXED: usize = 2 + super::LOG_COLUMNS.len() * 4 + 8 + 16 + 2 + 4 + 1 + 2 + 2 + 8 + 1;
    let opt = |s: Option<&str>| s.map_or(0, str::len);
    let mut n = FIXED + row.target.len() + row.message.len();
    for ctx in &row.context {
        n += opt(*ctx);
    }
    n += opt(row.span_name) + opt(row.file);
    // `{}` plus, per field, its quoted name, ':' and ','.
    n += 2;
    for field in row.fields {
        n += field.name.len()
            + 4
            + match field.value {
                Value::Str(s) => s.len() + 2,
                // 40 covers u128::MAX (39 digits) and i128::MIN (40 chars);
                // ryu writes at most 24.
                _ => 40,
            };
    }
    n
}

/// Writes one tuple for `row`: the field count and the columns of
/// [`LOG_COLUMNS`](super::LOG_COLUMNS). No header; [`CopyEncoder::push_row`] adds that.
#[cfg(test)]
pub(crate) fn put_row(buf: &mut BytesMut, row: &Row<'_>) {
    put_row_with(buf, row, |buf| {
        put_jsonb(buf, |buf| {
            json::write_fields(buf, row.fields);
            true
        })
    });
}

/// Writes one tuple for `row` into `buf`, its `fields` column (length
/// included) written by `fields`; returns what `fields` returns.
///
/// The one tuple writer: the encoder plugs in `jsonb` ([`put_jsonb`]), the
/// chain its canonical JSON (the canonical tuple,
/// [`chain::canonical`](crate::chain::canonical)). Every other column is
/// mapped here, the same for both.
///
/// Not `#[inline]`: [`CopyEncoder::push_row`] calls one copy per `fields`
/// writer, as it always has; inlining both into it measured slower.
pub(crate) fn put_row_with<B: TupleBuf, R>(
    buf: &mut B,
    row: &Row<'_>,
    fields: impl FnOnce(&mut B) -> R,
) -> R {
    buf.put_i16(FIELD_COUNT);
    put_timestamptz(buf, row.ts_unix_nanos);
    put_uuid(buf, &row.id);
    put_i16(buf, row.level);
    put_text(buf, row.target);
    put_text(buf, row.message);
    let written = fields(buf);
    let mut truncated = row.truncated;
    for ctx in &row.context {
        let id = ctx.map(|id| {
            let (kept, cut) = crate::row::stored_context_id(id);
            truncated |= cut;
            kept
        });
        put_opt_text(buf, id);
    }
    put_opt_text(buf, row.span_name);
    put_opt_text(buf, row.file);
    match row.line {
        // `integer` is signed; a line past i32::MAX cannot be real anyway.
        Some(line) => put_i32(buf, i32::try_from(line).unwrap_or(i32::MAX)),
        None => put_null(buf),
    }
    put_bool(buf, truncated);
    match row.kind {
        Some(kind) => put_i16(buf, kind),
        None => put_null(buf),
    }
    put_i16(buf, i16::try_from(row.redacted).unwrap_or(i16::MAX));
    // `bigint` is signed; no thread emits 2^63 events.
    put_i64(buf, i64::try_from(row.seq).unwrap_or(i64::MAX));
    written
}
