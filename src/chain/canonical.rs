//! The canonical form of one row, and its SHA-256 row digest, from either
//! side: the writer's [`Row`] or the row as PostgreSQL gives it back
//! ([`StoredRow`]). The two agree for every row the binary COPY encoder
//! writes (`tests/chain_canonical.rs` proves it on random rows).
//!
//! # The canonical tuple
//!
//! The canonical form is a tuple shaped like a binary COPY tuple: an
//! `int16` column count (19, or 18 in the first version, below), then
//! each column of [`LOG_COLUMNS`], in that order, as an
//! `int32` big-endian byte length and that many bytes, or the length `-1`
//! for NULL (so NULL and empty text differ, and no bytes can shift from
//! one column into another). Each column holds what the table stores:
//!
//! | column | bytes | from a [`Row`] (the encoder's mapping) |
//! |---|---|---|
//! | `ts` | `int64` BE, microseconds since 2000-01-01 UTC | `ts_unix_nanos.div_euclid(1000)` less the epoch, clamped to PostgreSQL's range |
//! | `id` | the UUID's 16 bytes | `id` |
//! | `level` | `int16` BE | `level` |
//! | `target`, `message` | UTF-8 | NUL → U+FFFD |
//! | `fields` | canonical JSON, see `chain::json` | deduplicated (last wins), NaN/±inf as strings, exact numbers |
//! | `trace_id` … `client_id` | UTF-8 or NULL | cut to [`CONTEXT_MAX_LEN`](crate::row::CONTEXT_MAX_LEN) bytes on a char boundary (marks the row truncated), then NUL → U+FFFD |
//! | `span_name`, `file` | UTF-8 or NULL | NUL → U+FFFD |
//! | `line` | `int32` BE or NULL | above `i32::MAX` clamped |
//! | `truncated` | one byte, 0 or 1 | `truncated`, or a context id was cut |
//! | `kind` | `int16` BE or NULL | `kind` |
//! | `redacted` | `int16` BE | above `i16::MAX` clamped |
//! | `seq` | `int64` BE | above `i64::MAX` clamped |
//!
//! The row digest is `SHA-256(domain ‖ canonical tuple)`, in one of two
//! versions told apart by the row itself:
//!
//! - a row whose `seq` is 0 (written before migration `0010_seq`, or by
//!   no thread: a drop report) is hashed exactly as before `seq` existed:
//!   [`ROW_DOMAIN`] (`ringtrail/row/v1`) and the 18 columns before `seq`,
//!   so every digest committed earlier still verifies;
//! - any other row under [`ROW_DOMAIN_V2`] (`ringtrail/row/v2`) with all
//!   19 columns, so `seq`, which orders a thread's events within a
//!   microsecond, is as tamper-evident as `ts` (setting it to 0 changes
//!   the version, and so the digest, too).
//!
//! Not covered: a text over 2 GiB or `fields` JSON over 2 GiB, which the
//! encoder cuts (PostgreSQL refuses a field over 1 GiB anyway), and a
//! database whose encoding is not UTF-8.
//!
//! ```
//! use ringtrail::chain::canonical::{RowHasher, StoredRow};
//! use ringtrail::{Field, Row, Value};
//!
//! let fields = [Field { name: "n", value: Value::F64(1e15) }];
//! let row = Row { ts_unix_nanos: 946_684_800_000_001_999, message: "a\0b", fields: &fields, ..Row::default() };
//! // The same row as PostgreSQL gives it back.
//! let stored = StoredRow {
//!     ts_micros: 1,
//!     message: "a\u{FFFD}b",
//!     fields: r#"{"n": 1000000000000000}"#,
//!     ..StoredRow::default()
//! };
//! let mut hasher = RowHasher::new();
//! assert_eq!(hasher.row_digest(&row), hasher.stored_digest(&stored));
//! ```

use bytes::BufMut;
use sha2::{Digest, Sha256};

use super::json;

use crate::encode::copy::decode::TupleReader;
use crate::encode::copy::fields::{
    put_bool, put_framed, put_i16, put_i32, put_i64, put_micros, put_null, put_opt_raw, put_raw,
    put_uuid, timestamptz_micros,
};
use crate::encode::copy::{
    col, put_row_with, WireMicros, WireUuid, LOG_COLUMNS, OLDEST_TUPLE_WIDTH, PG_EPOCH_UNIX_MICROS,
    SELECT_COLUMNS,
};
use crate::row::{Row, CONTEXT_LEN, LEVEL_INFO};

/// Prefix of the digest input of a row whose `seq` is 0: the form and its
/// first version, whose canonical tuple has the 18 columns before `seq`.
pub const ROW_DOMAIN: &[u8] = b"ringtrail/row/v1\n";

/// Prefix of the digest input of a row with a sequence number (`seq` not
/// 0): the second version, whose canonical tuple has every column.
pub const ROW_DOMAIN_V2: &[u8] = b"ringtrail/row/v2\n";

// The version is settled after the tuple is written, in place.
const _: () = assert!(ROW_DOMAIN.len() == ROW_DOMAIN_V2.len());

/// Columns of the first version's canonical tuple: all but `seq`.
const V1_WIDTH: usize = col::SEQ;
const _: () = assert!(col::SEQ == LOG_COLUMNS.len() - 1, "seq is the last column");

/// Bytes `seq` takes at the end of a canonical tuple: its length, 8.
const SEQ_BYTES: usize = 4 + 8;

/// The domain a canonical tuple (as [`RowHasher::canonical_row`] and
/// [`RowHasher::canonical_stored`] write it) is hashed under: [`ROW_DOMAIN`]
/// for the first version's 18 columns, else [`ROW_DOMAIN_V2`].
///
/// ```
/// use ringtrail::chain::canonical::{row_domain, RowHasher, ROW_DOMAIN, ROW_DOMAIN_V2};
/// use ringtrail::Row;
///
/// let mut h = RowHasher::new();
/// let (mut old, mut new) = (Vec::new(), Vec::new());
/// h.canonical_row(&Row::default(), &mut old);
/// h.canonical_row(&Row { seq: 7, ..Row::default() }, &mut new);
/// assert_eq!((row_domain(&old), row_domain(&new)), (ROW_DOMAIN, ROW_DOMAIN_V2));
/// assert_eq!(new.len(), old.len() + 12);
/// ```
pub fn row_domain(canonical: &[u8]) -> &'static [u8] {
    if canonical.get(..2) == Some(&(V1_WIDTH as i16).to_be_bytes()[..]) {
        ROW_DOMAIN
    } else {
        ROW_DOMAIN_V2
    }
}

/// Settles the version of the canonical tuple of the current width at
/// `out[at..]`, whose last column is `seq`: a row with `seq` 0 loses that
/// column and is counted as 18 columns (the first version). Returns the
/// domain to hash it under.
fn settle_version(out: &mut Vec<u8>, at: usize) -> &'static [u8] {
    let end = out.len();
    debug_assert!(end >= at + 2 + SEQ_BYTES);
    debug_assert_eq!(out[end - SEQ_BYTES..end - 8], 8i32.to_be_bytes());
    if out[end - 8..] != [0; 8] {
        return ROW_DOMAIN_V2;
    }
    out.truncate(end - SEQ_BYTES);
    out[at..at + 2].copy_from_slice(&(V1_WIDTH as i16).to_be_bytes());
    ROW_DOMAIN
}

/// The row digest of `input`: a placeholder of [`ROW_DOMAIN`]'s length,
/// then a canonical tuple of the current width, whose version is settled
/// (and the domain written) first.
pub(crate) fn digest_input(input: &mut Vec<u8>) -> [u8; 32] {
    let domain = settle_version(input, ROW_DOMAIN.len());
    input[..domain.len()].copy_from_slice(domain);
    Sha256::digest(&input[..]).into()
}

/// The columns to SELECT for [`StoredRow::from_pg`], in its order:
/// every column of the canonical tuple, `fields` as its text.
///
/// `verify` reads one batch as
/// `SELECT {STORED_COLUMNS} FROM ringtrail.logs WHERE batch_id = $1 ORDER BY id`.
/// It is [`SELECT_COLUMNS`], derived from the one column list.
pub const STORED_COLUMNS: &str = SELECT_COLUMNS;

/// Prefix the canonical `fields` takes when the stored text is not JSON
/// (only possible if someone wrote the column by hand): a byte no JSON
/// text starts with, so the digest cannot match a real row's.
const NOT_JSON: u8 = b'!';

/// The microseconds since 2000-01-01 UTC that the encoder stores for
/// `unix_nanos` (floor, then clamped into PostgreSQL's range): what the
/// `ts` column holds, and what ledger timestamps are hashed as.
///
/// ```
/// assert_eq!(ringtrail::chain::canonical::stored_micros(946_684_800_000_000_999), 0);
/// assert_eq!(ringtrail::chain::canonical::stored_micros(946_684_799_999_999_999), -1);
/// ```
pub fn stored_micros(unix_nanos: i64) -> i64 {
    timestamptz_micros(unix_nanos)
}

/// One row of `ringtrail.logs` as PostgreSQL gives it back, borrowed from
/// the query's row ([`StoredRow::from_pg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRow<'a> {
    /// `ts`: microseconds since 2000-01-01 UTC (the column's wire value).
    pub ts_micros: i64,
    /// `id`: the UUID's 16 bytes.
    pub id: [u8; 16],
    /// `level`.
    pub level: i16,
    /// `target`.
    pub target: &'a str,
    /// `message`.
    pub message: &'a str,
    /// `fields::text`: the `jsonb` as PostgreSQL prints it.
    pub fields: &'a str,
    /// `trace_id` … `client_id`, in [`CONTEXT_KEYS`](crate::row::CONTEXT_KEYS) order.
    pub context: [Option<&'a str>; CONTEXT_LEN],
    /// `span_name`.
    pub span_name: Option<&'a str>,
    /// `file`.
    pub file: Option<&'a str>,
    /// `line`.
    pub line: Option<i32>,
    /// `truncated`.
    pub truncated: bool,
    /// `kind`.
    pub kind: Option<i16>,
    /// `redacted`.
    pub redacted: i16,
    /// `seq`: 0 for a row without a sequence number.
    pub seq: i64,
}

impl Default for StoredRow<'_> {
    /// What the table holds for [`Row::default()`].
    fn default() -> Self {
        StoredRow {
            ts_micros: -PG_EPOCH_UNIX_MICROS,
            id: [0; 16],
            level: LEVEL_INFO,
            target: "",
            message: "",
            fields: "{}",
            context: [None; CONTEXT_LEN],
            span_name: None,
            file: None,
            line: None,
            truncated: false,
            kind: None,
            redacted: 0,
            seq: 0,
        }
    }
}

impl<'a> StoredRow<'a> {
    /// Reads a row of a query that selected [`STORED_COLUMNS`].
    ///
    /// # Errors
    ///
    /// The driver's error when a column is missing or of another type
    /// (a query that did not select [`STORED_COLUMNS`]).
    pub fn from_pg(row: &'a tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        let mut context = [None; CONTEXT_LEN];
        for (i, slot) in context.iter_mut().enumerate() {
            *slot = row.try_get(col::CONTEXT + i)?;
        }
        Ok(StoredRow {
            ts_micros: row.try_get::<_, WireMicros>(col::TS)?.0,
            id: row.try_get::<_, WireUuid>(col::ID)?.0,
            level: row.try_get(col::LEVEL)?,
            target: row.try_get(col::TARGET)?,
            message: row.try_get(col::MESSAGE)?,
            fields: row.try_get(col::FIELDS)?,
            context,
            span_name: row.try_get(col::SPAN_NAME)?,
            file: row.try_get(col::FILE)?,
            line: row.try_get(col::LINE)?,
            truncated: row.try_get(col::TRUNCATED)?,
            kind: row.try_get(col::KIND)?,
            redacted: row.try_get(col::REDACTED)?,
            seq: row.try_get(col::SEQ)?,
        })
    }
}

impl<'a> StoredRow<'a> {
    /// Reads one binary COPY tuple of `ringtrail.logs` (as
    /// [`CopyEncoder`](crate::encode::copy::CopyEncoder) writes them, and
    /// as the spool and `ringtrail.dead_letters.tuple` keep them) as the
    /// row the table stores for it. So a batch's digest can be recomputed
    /// from its bytes alone: on the shipper for a bisected piece, at spool
    /// replay, and by `verify` for a dead-lettered row.
    ///
    /// A tuple of an older width (16, 17 or 18 columns, before `kind`,
    /// `redacted` and `seq`) reads those columns as the table fills them:
    /// NULL, 0 and 0.
    /// `None` when the bytes are not such a tuple.
    ///
    /// ```
    /// use ringtrail::chain::canonical::{RowHasher, StoredRow};
    /// use ringtrail::encode::copy::{tuples, CopyEncoder};
    /// use ringtrail::Row;
    ///
    /// let row = Row { message: "a\0", ..Row::default() };
    /// let mut enc = CopyEncoder::new();
    /// enc.push_row(&row);
    /// let batch = enc.finish();
    /// let tuple = &batch[tuples(&batch).next().unwrap()];
    /// let stored = StoredRow::from_tuple(tuple).unwrap();
    /// assert_eq!(stored.message, "a\u{FFFD}");
    /// let mut h = RowHasher::new();
    /// assert_eq!(h.stored_digest(&stored), h.row_digest(&row));
    /// ```
    pub fn from_tuple(tuple: &'a [u8]) -> Option<StoredRow<'a>> {
        let mut t = TupleReader::new(tuple)?;
        let width = t.width();
        if !(OLDEST_TUPLE_WIDTH as i16..=LOG_COLUMNS.len() as i16).contains(&width) {
            return None;
        }
        let ts_micros = t.timestamptz()?;
        let id = t.uuid()?;
        let level = t.smallint()?;
        let target = t.text()?;
        let message = t.text()?;
        let fields = t.jsonb()?;
        let mut context = [None; CONTEXT_LEN];
        for slot in &mut context {
            *slot = t.opt_text()?;
        }
        let span_name = t.opt_text()?;
        let file = t.opt_text()?;
        let line = t.opt_integer()?;
        let truncated = t.boolean()?;
        // Columns an older tuple lacks read as the table fills them.
        let kind = if width > 16 { t.opt_smallint()? } else { None };
        let redacted = if width > 17 { t.smallint()? } else { 0 };
        let seq = if width > 18 { t.bigint()? } else { 0 };
        t.end()?;
        Some(StoredRow {
            ts_micros,
            id,
            level,
            target,
            message,
            fields,
            context,
            span_name,
            file,
            line,
            truncated,
            kind,
            redacted,
            seq,
        })
    }
}

/// Computes row digests; holds the scratch buffers so that hashing a row
/// allocates nothing once they have grown to the largest row.
#[derive(Debug, Default)]
pub struct RowHasher {
    /// The row's domain ([`ROW_DOMAIN`] or [`ROW_DOMAIN_V2`]) and its
    /// canonical tuple: hashed in one call, which is much faster than a
    /// call per column.
    buf: Vec<u8>,
    /// Field order scratch for [`json::write_fields`].
    order: Vec<u32>,
    /// Member scratch for [`json::write_encoded`].
    members: Vec<json::MemberSpan>,
}

impl RowHasher {
    /// A hasher with empty scratch buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The row digest of what the encoder stores for `row`.
    pub fn row_digest(&mut self, row: &Row<'_>) -> [u8; 32] {
        self.buf.clear();
        self.buf.extend_from_slice(ROW_DOMAIN);
        write_row(&mut self.buf, &mut self.order, row);
        digest_input(&mut self.buf)
    }

    /// The row digest of a row read back from the table.
    pub fn stored_digest(&mut self, row: &StoredRow<'_>) -> [u8; 32] {
        self.buf.clear();
        self.buf.extend_from_slice(ROW_DOMAIN);
        write_stored(&mut self.buf, row);
        digest_input(&mut self.buf)
    }

    /// The id and row digest of a binary COPY tuple as the encoder writes
    /// it, from its bytes: `None` when the tuple is off this fast path.
    ///
    /// This is the writer's path: the canonical tuple *is* the encoder's
    /// tuple with the `fields` column in canonical JSON, so it copies the
    /// other columns as they are and canonicalises the encoder's JSON
    /// without formatting a value again (`json::write_encoded`). What is
    /// off that path (a tuple of an older width, a field name that needs
    /// UTF-16 ordering, anything that is not the encoder's output) gives
    /// `None`; [`row_digest`](Self::row_digest) of the row, or
    /// [`StoredRow::from_tuple`] and [`stored_digest`](Self::stored_digest)
    /// of the bytes, give the same digest there. Allocates nothing once
    /// the scratch buffers have grown.
    ///
    /// ```
    /// use ringtrail::chain::canonical::RowHasher;
    /// use ringtrail::encode::CopyEncoder;
    /// use ringtrail::{Field, Row, Value};
    ///
    /// let fields = [
    ///     Field { name: "b", value: Value::F64(1e-7) },
    ///     Field { name: "a", value: Value::Str("x") },
    /// ];
    /// let row = Row { id: [7; 16], message: "hi", fields: &fields, ..Row::default() };
    /// let mut enc = CopyEncoder::new();
    /// enc.push_row(&row);
    /// let mut h = RowHasher::new();
    /// let (id, digest) = h.encoded_digest(enc.last_tuple()).unwrap();
    /// assert_eq!((id, digest), ([7; 16], h.row_digest(&row)));
    ///
    /// // A name whose UTF-16 order differs from its byte order is off the path.
    /// let odd = [Field { name: "\u{FB33}", value: Value::Bool(true) }];
    /// enc.push_row(&Row { fields: &odd, ..Row::default() });
    /// assert!(h.encoded_digest(enc.last_tuple()).is_none());
    /// ```
    pub fn encoded_digest(&mut self, tuple: &[u8]) -> Option<([u8; 16], [u8; 32])> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(ROW_DOMAIN);
        let id = write_encoded(&mut buf, &mut self.members, tuple);
        let digest = id.map(|id| (id, digest_input(&mut buf)));
        self.buf = buf;
        digest
    }

    /// The canonical tuple of an encoder-written `tuple` (without its
    /// domain, which [`row_domain`] tells) appended to `out`, and the
    /// row's id: for callers that hash many rows at once. `None`, leaving
    /// `out` as it was, off the path of
    /// [`encoded_digest`](Self::encoded_digest).
    pub fn encoded_canonical(&mut self, tuple: &[u8], out: &mut Vec<u8>) -> Option<[u8; 16]> {
        let at = out.len();
        let id = write_encoded(out, &mut self.members, tuple);
        match id {
            Some(_) => {
                settle_version(out, at);
            }
            None => out.truncate(at),
        }
        id
    }

    /// The canonical tuple of `row` (without its domain, which
    /// [`row_domain`] tells), appended to `out`: for tests and for looking
    /// at what is hashed.
    pub fn canonical_row(&mut self, row: &Row<'_>, out: &mut Vec<u8>) {
        let at = out.len();
        write_row(out, &mut self.order, row);
        settle_version(out, at);
    }

    /// The canonical tuple of a stored row, appended to `out`.
    pub fn canonical_stored(&mut self, row: &StoredRow<'_>, out: &mut Vec<u8>) {
        let at = out.len();
        write_stored(out, row);
        settle_version(out, at);
    }
}

/// The canonical tuple of `row`: the encoder's tuple writer with the
/// canonical JSON, without the jsonb version byte, as `fields`.
fn write_row(out: &mut Vec<u8>, order: &mut Vec<u32>, row: &Row<'_>) {
    put_row_with(out, row, |out| {
        put_framed(out, |out| json::write_fields(out, row.fields, order))
    });
}

/// Appends the canonical tuple of an encoder-written `tuple` of the
/// current width and returns its row id; `None` (with `out` holding part
/// of an answer) when the tuple is not of that shape or its `fields` are
/// off [`json::write_encoded`]'s path.
fn write_encoded(
    out: &mut Vec<u8>,
    members: &mut Vec<json::MemberSpan>,
    tuple: &[u8],
) -> Option<[u8; 16]> {
    let width = LOG_COLUMNS.len();
    if tuple.get(..2)? != (width as i16).to_be_bytes() {
        return None;
    }
    // Column `i` spans `cols[i]` (its bytes after the length), or is NULL.
    let mut at = 2;
    let mut column = || -> Option<Option<std::ops::Range<usize>>> {
        let len = i32::from_be_bytes(tuple.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            return (len == -1).then_some(None);
        }
        let range = at..at + len as usize;
        at = range.end;
        (at <= tuple.len()).then_some(Some(range))
    };
    // ts, id, level, target, message: fixed widths and texts, never NULL.
    let widths = [Some(8), Some(16), Some(2), None, None];
    let mut id = [0; 16];
    for (i, want) in widths.into_iter().enumerate() {
        let range = column()??;
        if want.is_some_and(|w| w != range.len()) {
            return None;
        }
        if i == 1 {
            id.copy_from_slice(&tuple[range]);
        }
    }
    let fields = column()??;
    let tail = fields.end;
    for _ in 6..width {
        column()?;
    }
    if at != tuple.len() {
        return None;
    }
    // jsonb's binary form: version 1, then the JSON text.
    let [1, json @ ..] = &tuple[fields.clone()] else {
        return None;
    };
    out.extend_from_slice(&tuple[..fields.start - 4]);
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    if !json::write_encoded(out, json, members) {
        return None;
    }
    let len = out.len() - len_at - 4;
    out[len_at..len_at + 4].copy_from_slice(&(len as i32).to_be_bytes());
    out.extend_from_slice(&tuple[tail..]);
    Some(id)
}

fn write_stored(out: &mut Vec<u8>, row: &StoredRow<'_>) {
    out.put_i16(LOG_COLUMNS.len() as i16);
    put_micros(out, row.ts_micros);
    put_uuid(out, &row.id);
    put_i16(out, row.level);
    put_raw(out, row.target.as_bytes());
    put_raw(out, row.message.as_bytes());
    put_framed(out, |out| {
        let at = out.len();
        if !json::write_stored(out, row.fields) {
            out.truncate(at);
            out.push(NOT_JSON);
            out.extend_from_slice(row.fields.as_bytes());
        }
    });
    for ctx in &row.context {
        put_opt_raw(out, ctx.map(str::as_bytes));
    }
    put_opt_raw(out, row.span_name.map(str::as_bytes));
    put_opt_raw(out, row.file.map(str::as_bytes));
    match row.line {
        Some(line) => put_i32(out, line),
        None => put_null(out),
    }
    put_bool(out, row.truncated);
    match row.kind {
        Some(kind) => put_i16(out, kind),
        None => put_null(out),
    }
    put_i16(out, row.redacted);
    put_i64(out, row.seq);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Field, Value};

    fn tuple(row: &Row<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        RowHasher::new().canonical_row(row, &mut out);
        out
    }

    #[test]
    fn default_row_tuple_bytes() {
        let mut want = vec![0, 18];
        let col = |want: &mut Vec<u8>, b: &[u8]| {
            want.extend_from_slice(&(b.len() as i32).to_be_bytes());
            want.extend_from_slice(b);
        };
        col(&mut want, &(-PG_EPOCH_UNIX_MICROS).to_be_bytes());
        col(&mut want, &[0; 16]);
        col(&mut want, &9i16.to_be_bytes());
        col(&mut want, b"");
        col(&mut want, b"");
        col(&mut want, b"{}");
        for _ in 0..8 {
            want.extend_from_slice(&[0xff; 4]);
        }
        want.extend_from_slice(&[0xff; 4]); // line
        col(&mut want, &[0]);
        want.extend_from_slice(&[0xff; 4]); // kind
        col(&mut want, &[0, 0]);
        assert_eq!(tuple(&Row::default()), want);
        let mut stored = Vec::new();
        RowHasher::new().canonical_stored(&StoredRow::default(), &mut stored);
        assert_eq!(stored, want);
    }

    #[test]
    fn null_differs_from_empty_and_bytes_cannot_shift() {
        let a = Row {
            span_name: Some(""),
            ..Row::default()
        };
        let b = Row::default();
        let c = Row {
            target: "ab",
            message: "",
            ..Row::default()
        };
        let d = Row {
            target: "a",
            message: "b",
            ..Row::default()
        };
        let mut h = RowHasher::new();
        assert_ne!(h.row_digest(&a), h.row_digest(&b));
        assert_ne!(h.row_digest(&c), h.row_digest(&d));
    }

    #[test]
    fn writer_mappings_match_the_stored_row() {
        let long = "é".repeat(200); // 400 bytes: cut to 254, on a boundary
        let fields = [
            Field {
                name: "n",
                value: Value::U64(u64::MAX),
            },
            Field {
                name: "n",
                value: Value::F64(-0.0),
            },
        ];
        let row = Row {
            ts_unix_nanos: -1,
            id: [7; 16],
            level: 17,
            target: "t\0",
            message: "m",
            fields: &fields,
            context: [Some(&long), None, Some("s\0"), None, None, Some("")],
            span_name: Some("\0"),
            file: Some("f.rs"),
            line: Some(u32::MAX),
            truncated: false,
            kind: Some(3),
            redacted: 70_000,
            seq: u64::MAX,
        };
        let cut = &long[..254];
        let stored = StoredRow {
            ts_micros: -PG_EPOCH_UNIX_MICROS - 1,
            id: [7; 16],
            level: 17,
            target: "t\u{FFFD}",
            message: "m",
            fields: r#"{"n": 0.0}"#,
            context: [Some(cut), None, Some("s\u{FFFD}"), None, None, Some("")],
            span_name: Some("\u{FFFD}"),
            file: Some("f.rs"),
            line: Some(i32::MAX),
            truncated: true,
            kind: Some(3),
            redacted: i16::MAX,
            seq: i64::MAX,
        };
        let mut h = RowHasher::new();
        assert_eq!(h.row_digest(&row), h.stored_digest(&stored));
        // Any one column changed changes the digest.
        let changed = [
            StoredRow {
                truncated: false,
                ..stored
            },
            StoredRow {
                ts_micros: stored.ts_micros + 1,
                ..stored
            },
            StoredRow {
                fields: r#"{"n": 1}"#,
                ..stored
            },
            StoredRow {
                kind: None,
                ..stored
            },
            StoredRow { seq: 1, ..stored },
            // No sequence number: hashed as the first version, which
            // differs too.
            StoredRow { seq: 0, ..stored },
            StoredRow {
                context: [Some(cut), None, Some("s\u{FFFD}"), None, None, None],
                ..stored
            },
        ];
        for c in &changed {
            assert_ne!(h.row_digest(&row), h.stored_digest(c), "{c:?}");
        }
    }

    #[test]
    fn big_integers_stay_distinct() {
        // RFC 8785's IEEE-double numbers would make these equal.
        let f = |v| {
            [Field {
                name: "n",
                value: Value::U64(v),
            }]
        };
        let (a, b) = (f(9_007_199_254_740_993), f(9_007_199_254_740_992));
        let mut h = RowHasher::new();
        let ra = h.row_digest(&Row {
            fields: &a,
            ..Row::default()
        });
        let rb = h.row_digest(&Row {
            fields: &b,
            ..Row::default()
        });
        assert_ne!(ra, rb);
    }

    #[test]
    fn stored_text_that_is_not_json_still_hashes() {
        let mut h = RowHasher::new();
        let bad = StoredRow {
            fields: "{",
            ..StoredRow::default()
        };
        let good = StoredRow::default();
        assert_ne!(h.stored_digest(&bad), h.stored_digest(&good));
    }

    #[test]
    fn tuples_of_every_width_read_as_stored() {
        use crate::encode::copy::{tuples, CopyEncoder};
        let fields = [Field {
            name: "k",
            value: Value::F64(1e21),
        }];
        let row = Row {
            fields: &fields,
            context: [Some("t"), None, None, None, None, Some("c\0")],
            kind: Some(2),
            redacted: 4,
            line: Some(9),
            seq: 5,
            ..Row::default()
        };
        let mut enc = CopyEncoder::new();
        enc.push_row(&row);
        let batch = enc.finish();
        let range = tuples(&batch).next().unwrap();
        let tuple = &batch[range];
        let mut h = RowHasher::new();
        let stored = StoredRow::from_tuple(tuple).unwrap();
        assert_eq!(h.stored_digest(&stored), h.row_digest(&row));
        // The same tuple cut to 18, 17 and 16 columns, as older versions
        // wrote.
        let seq_len = 4 + 8;
        let redacted_len = 4 + 2;
        let kind_len = 4 + 2;
        for (width, cut, like) in [
            (18i16, seq_len, Row { seq: 0, ..row }),
            (
                17,
                seq_len + redacted_len,
                Row {
                    seq: 0,
                    redacted: 0,
                    ..row
                },
            ),
            (
                16,
                seq_len + redacted_len + kind_len,
                Row {
                    seq: 0,
                    redacted: 0,
                    kind: None,
                    ..row
                },
            ),
        ] {
            let mut old = tuple[..tuple.len() - cut].to_vec();
            old[..2].copy_from_slice(&width.to_be_bytes());
            let stored = StoredRow::from_tuple(&old).unwrap();
            assert_eq!(
                h.stored_digest(&stored),
                h.row_digest(&like),
                "width {width}"
            );
        }
        // Malformed: cut short, trailing bytes, a bad width, bad UTF-8.
        assert!(StoredRow::from_tuple(&tuple[..tuple.len() - 1]).is_none());
        let mut long = tuple.to_vec();
        long.push(0);
        assert!(StoredRow::from_tuple(&long).is_none());
        let mut wide = tuple.to_vec();
        wide[..2].copy_from_slice(&20i16.to_be_bytes());
        assert!(StoredRow::from_tuple(&wide).is_none());
        assert!(StoredRow::from_tuple(&[]).is_none());
    }

    #[test]
    fn stored_micros_clamps_like_the_encoder() {
        assert_eq!(
            stored_micros(i64::MIN),
            i64::MIN.div_euclid(1000) - PG_EPOCH_UNIX_MICROS
        );
        assert_eq!(stored_micros(-1), -PG_EPOCH_UNIX_MICROS - 1);
    }
}
