//! The PostgreSQL binary `COPY` codec for the `ringtrail.logs` table.
//!
//! A binary `COPY` stream is a 19-byte header, then one tuple per row, then
//! a 2-byte trailer. A tuple is an `int16` field count followed by each
//! field as an `int32` byte length and that many bytes, or the length `-1`
//! for NULL. Every integer is big-endian. The server is type-exact: each
//! field must be exactly the binary form of its column's type, or the whole
//! batch fails.
//!
//! ```text
//! header   "PGCOPY\n\xff\r\n\0"  flags: i32 = 0  extension length: i32 = 0
//! tuple    count: i16 = 16  { len: i32, bytes[len] } x 16      (len -1 = NULL)
//! ...
//! trailer  -1: i16
//! ```
//!
//! The column list, in `COPY` order, is [`LOG_COLUMNS`]; [`copy_statement`]
//! builds the matching `COPY ... FROM STDIN (FORMAT binary)` statement.
//!
//! | column | type | from [`Row`] | wire form |
//! |---|---|---|---|
//! | `ts` | `timestamptz` | `ts_unix_nanos` | [`put_timestamptz`] |
//! | `id` | `uuid` | `id` | [`put_uuid`] |
//! | `level` | `smallint` | `level` | [`put_i16`] |
//! | `target`, `message` | `text` | `target`, `message` | [`put_text`] |
//! | `fields` | `jsonb` | `fields` | [`put_jsonb_fields`] |
//! | `trace_id` .. `client_id` | `text` | `context`, in [`CONTEXT_KEYS`](crate::row::CONTEXT_KEYS) order | [`put_opt_text`] |
//! | `span_name`, `file` | `text` | `span_name`, `file` | [`put_opt_text`] |
//! | `line` | `integer` | `line` (above `i32::MAX` clamped to it) | [`put_i32`] or [`put_null`] |
//! | `truncated` | `boolean` | `truncated` | [`put_bool`] |
//!
//! Nothing here does I/O or can fail. Values PostgreSQL would reject are
//! mapped while encoding (NUL in text becomes U+FFFD, timestamps are clamped
//! into range, `jsonb` gets [`json`]'s always-valid JSON), so a
//! row is always written whole and a batch is always a valid stream.
//!
//! [`CopyEncoder`] builds batches; the `put_*` functions are the field
//! writers it uses, public so tests and fuzzers can check them one by one.
//!
//! ```
//! use ringtrail::encode::copy::{copy_statement, CopyEncoder, HEADER_LEN, TRAILER_LEN};
//! use ringtrail::Row;
//!
//! assert!(copy_statement().starts_with("COPY ringtrail.logs (ts, id, level, "));
//!
//! let mut enc = CopyEncoder::new();
//! enc.push_row(&Row { target: "app", message: "hello", ..Row::default() });
//! enc.push_row(&Row { target: "app", message: "world", ..Row::default() });
//! let batch = enc.finish(); // header + 2 tuples + trailer, ready for the sink
//! assert!(batch.len() > HEADER_LEN + TRAILER_LEN);
//!
//! // The encoder is empty again and reuses its buffer for the next batch.
//! assert_eq!(enc.rows(), 0);
//! drop(batch);
//! assert_eq!(enc.finish().len(), HEADER_LEN + TRAILER_LEN); // an empty, valid stream
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::json;
use crate::row::{Field, Row, Value};

/// The 11-byte signature that starts every binary `COPY` stream.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Length of the header [`put_header`] writes: the signature, an `int32`
/// flags word and an `int32` header-extension length.
pub const HEADER_LEN: usize = 19;

/// Length of the trailer [`put_trailer`] writes: an `int16` of -1.
pub const TRAILER_LEN: usize = 2;

/// The table [`copy_statement`] loads.
pub const LOG_TABLE: &str = "ringtrail.logs";

/// The columns of `ringtrail.logs`, in the order each tuple carries them.
///
/// Every column is listed in the `COPY` statement on purpose: a column left
/// out would take its `DEFAULT`, and a volatile default disables `COPY`'s
/// batched multi-insert.
pub const LOG_COLUMNS: [&str; 16] = [
    "ts",
    "id",
    "level",
    "target",
    "message",
    "fields",
    "trace_id",
    "user_id",
    "session_id",
    "task_id",
    "context_id",
    "client_id",
    "span_name",
    "file",
    "line",
    "truncated",
];

/// The field count at the start of every tuple.
const FIELD_COUNT: i16 = LOG_COLUMNS.len() as i16;

/// The Unix time of PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in
/// microseconds.
pub const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// The earliest `timestamptz` PostgreSQL accepts, 4714-11-24 00:00:00 UTC BC
/// (Julian day 0), in microseconds since 2000-01-01 UTC.
pub const MIN_TIMESTAMPTZ_MICROS: i64 = -211_813_488_000_000_000;

/// The latest `timestamptz` PostgreSQL accepts, 294276-12-31
/// 23:59:59.999999 UTC, in microseconds since 2000-01-01 UTC.
pub const MAX_TIMESTAMPTZ_MICROS: i64 = 9_223_371_331_200_000_000 - 1;

/// The largest field length the `int32` length prefix can carry.
const MAX_FIELD_LEN: usize = i32::MAX as usize;

/// UTF-8 encoding of U+FFFD REPLACEMENT CHARACTER, written in place of NUL.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Returns the statement that starts a load of [`CopyEncoder`] batches:
/// `COPY ringtrail.logs (ts, id, ..., truncated) FROM STDIN (FORMAT binary)`,
/// with the columns of [`LOG_COLUMNS`] in order.
///
/// ```
/// let sql = ringtrail::encode::copy::copy_statement();
/// assert!(sql.starts_with("COPY ringtrail.logs (ts, id, level, target, message, fields, trace_id,"));
/// assert!(sql.ends_with(" line, truncated) FROM STDIN (FORMAT binary)"));
/// ```
pub fn copy_statement() -> String {
    // Built once per connection, not per row, so plain string pushing is fine.
    let mut sql = String::with_capacity(200);
    sql.push_str("COPY ");
    sql.push_str(LOG_TABLE);
    sql.push_str(" (");
    for (i, column) in LOG_COLUMNS.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(column);
    }
    sql.push_str(") FROM STDIN (FORMAT binary)");
    sql
}

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
}

impl CopyEncoder {
    /// Creates an empty encoder. It allocates on its first row.
    pub fn new() -> Self {
        CopyEncoder {
            buf: BytesMut::new(),
            rows: 0,
            capacity_hint: 0,
        }
    }

    /// Creates an empty encoder whose buffer starts with room for `bytes`
    /// bytes, for callers that know their batch size.
    pub fn with_capacity(bytes: usize) -> Self {
        CopyEncoder {
            buf: BytesMut::with_capacity(bytes),
            rows: 0,
            capacity_hint: bytes,
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
        put_row(&mut self.buf, row);
        self.rows += 1;
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
    /// ready to send after [`copy_statement`].
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
fn tuple_size_hint(row: &Row<'_>) -> usize {
    // Field count, 16 length prefixes, then the fixed-width values: ts 8,
    // uuid 16, level 2, line 4, truncated 1, and the jsonb version byte.
    const FIXED: usize = 2 + 16 * 4 + 8 + 16 + 2 + 4 + 1 + 1;
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

/// Writes one tuple for `row`: the field count and the 16 columns of
/// [`LOG_COLUMNS`]. No header; [`CopyEncoder::push_row`] adds that.
pub fn put_row(buf: &mut BytesMut, row: &Row<'_>) {
    buf.put_i16(FIELD_COUNT);
    put_timestamptz(buf, row.ts_unix_nanos);
    put_uuid(buf, &row.id);
    put_i16(buf, row.level);
    put_text(buf, row.target);
    put_text(buf, row.message);
    put_jsonb_fields(buf, row.fields);
    for ctx in &row.context {
        put_opt_text(buf, *ctx);
    }
    put_opt_text(buf, row.span_name);
    put_opt_text(buf, row.file);
    match row.line {
        // `integer` is signed; a line past i32::MAX cannot be real anyway.
        Some(line) => put_i32(buf, i32::try_from(line).unwrap_or(i32::MAX)),
        None => put_null(buf),
    }
    put_bool(buf, row.truncated);
}

/// Writes the 19-byte stream header: [`SIGNATURE`], flags 0 (no OIDs) and a
/// header-extension length of 0.
pub fn put_header(buf: &mut BytesMut) {
    buf.put_slice(SIGNATURE);
    buf.put_i32(0);
    buf.put_i32(0);
}

/// Writes the stream trailer, an `int16` of -1.
pub fn put_trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// Writes a NULL field: the length -1 and no bytes.
#[inline]
pub fn put_null(buf: &mut BytesMut) {
    buf.put_i32(-1);
}

/// Writes an `int2` (`smallint`) field: length 2, then the value big-endian.
#[inline]
pub fn put_i16(buf: &mut BytesMut, v: i16) {
    buf.put_i32(2);
    buf.put_i16(v);
}

/// Writes an `int4` (`integer`) field: length 4, then the value big-endian.
#[inline]
pub fn put_i32(buf: &mut BytesMut, v: i32) {
    buf.put_i32(4);
    buf.put_i32(v);
}

/// Writes a `bool` field: length 1, then 1 or 0.
#[inline]
pub fn put_bool(buf: &mut BytesMut, v: bool) {
    buf.put_i32(1);
    buf.put_u8(u8::from(v));
}

/// Writes a `uuid` field: length 16, then the 16 bytes as given (network
/// byte order, as [`Row::id`] holds them).
#[inline]
pub fn put_uuid(buf: &mut BytesMut, id: &[u8; 16]) {
    buf.put_i32(16);
    buf.put_slice(id);
}

/// Writes a `timestamptz` field from nanoseconds since the Unix epoch.
///
/// The wire value is microseconds since 2000-01-01 00:00:00 UTC. Nanoseconds
/// are rounded down (floor division, so -1 ns is the microsecond before the
/// epoch, not the epoch itself), then clamped into PostgreSQL's valid range,
/// [`MIN_TIMESTAMPTZ_MICROS`] (4714-11-24 BC) to [`MAX_TIMESTAMPTZ_MICROS`]
/// (294276-12-31): the server rejects anything outside it. The clamp also
/// keeps the value off `i64::MIN` and `i64::MAX`, which the server would
/// read as `-infinity` and `infinity`.
///
/// Any `i64` of nanoseconds (years 1677 to 2262) already falls inside that
/// range; the clamp is there so no input can produce a rejected value.
#[inline]
pub fn put_timestamptz(buf: &mut BytesMut, unix_nanos: i64) {
    // |unix_nanos / 1000| < 9.3e15, so subtracting the epoch cannot overflow.
    let micros = unix_nanos.div_euclid(1000) - PG_EPOCH_UNIX_MICROS;
    buf.put_i32(8);
    buf.put_i64(micros.clamp(MIN_TIMESTAMPTZ_MICROS, MAX_TIMESTAMPTZ_MICROS));
}

/// Writes a `text` field: the length, then the UTF-8 bytes.
///
/// PostgreSQL text cannot hold NUL, and a single 0x00 byte fails the whole
/// batch (SQLSTATE 22021), so each NUL is written as U+FFFD (3 bytes; the
/// length prefix counts them). Strings without NUL, the usual case, are
/// copied in one piece after a single `memchr` scan.
///
/// A string whose encoding would not fit the `int32` length prefix (over
/// 2 GiB, which PostgreSQL refuses anyway) is cut at a character boundary,
/// so the stream stays well-formed.
///
/// ```
/// let mut buf = bytes::BytesMut::new();
/// ringtrail::encode::copy::put_text(&mut buf, "a\0b");
/// assert_eq!(&buf[..], b"\0\0\0\x05a\xef\xbf\xbdb");
/// ```
#[inline]
pub fn put_text(buf: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    // `<[u8]>::contains` on bytes is a memchr search.
    if bytes.len() <= MAX_FIELD_LEN && !bytes.contains(&0) {
        buf.put_i32(bytes.len() as i32);
        buf.put_slice(bytes);
    } else {
        put_text_slow(buf, s);
    }
}

/// [`put_text`] for strings with NUL bytes or of absurd length.
#[cold]
fn put_text_slow(buf: &mut BytesMut, mut s: &str) {
    let mut nuls = s.bytes().filter(|&b| b == 0).count();
    // Each NUL grows by 2 bytes in the replacement.
    if s.len() + 2 * nuls > MAX_FIELD_LEN {
        // Cut so that even all-NUL text fits after expansion.
        let mut end = MAX_FIELD_LEN / REPLACEMENT.len();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s = &s[..end];
        nuls = s.bytes().filter(|&b| b == 0).count();
    }
    put_text_replacing_nul(buf, s, nuls);
}

/// Writes `s` with each of its `nuls` NUL bytes replaced by U+FFFD.
fn put_text_replacing_nul(buf: &mut BytesMut, s: &str, nuls: usize) {
    let len = s.len() + 2 * nuls;
    buf.reserve(4 + len);
    buf.put_i32(len as i32);
    for (i, part) in s.as_bytes().split(|&b| b == 0).enumerate() {
        if i > 0 {
            buf.put_slice(REPLACEMENT);
        }
        buf.put_slice(part);
    }
}

/// Writes a nullable `text` field: [`put_text`] for `Some`, [`put_null`] for
/// `None`.
#[inline]
pub fn put_opt_text(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_text(buf, s),
        None => put_null(buf),
    }
}

/// Writes a `jsonb` field holding `fields` as one JSON object.
///
/// The binary form of `jsonb` is a version byte, 1, then JSON text. The
/// JSON comes from [`json::write_fields`], so it is always accepted (no
/// `\u0000`, no bare NaN). Its length is not known until it is written, so
/// this writes a placeholder length, the JSON, and then patches the length
/// in place.
///
/// ```
/// use ringtrail::{Field, Value};
///
/// let mut buf = bytes::BytesMut::new();
/// ringtrail::encode::copy::put_jsonb_fields(&mut buf, &[Field { name: "n", value: Value::I64(1) }]);
/// assert_eq!(&buf[..], b"\0\0\0\x08\x01{\"n\":1}");
/// ```
#[inline]
pub fn put_jsonb_fields(buf: &mut BytesMut, fields: &[Field<'_>]) {
    let start = buf.len();
    buf.put_i32(0); // placeholder, patched below
    buf.put_u8(1); // jsonb binary format version
    json::write_fields(buf, fields);
    let mut len = buf.len() - start - 4;
    if len > MAX_FIELD_LEN {
        // Over 2 GiB of JSON cannot be framed (and PostgreSQL caps a field at
        // 1 GiB anyway): keep the row, drop its fields.
        buf.truncate(start + 5);
        buf.put_slice(b"{}");
        len = 3;
    }
    buf[start..start + 4].copy_from_slice(&(len as i32).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{CONTEXT_KEYS, LEVEL_WARN};

    /// One decoded tuple: each field's bytes, `None` for NULL.
    type Tuple = Vec<Option<Vec<u8>>>;

    /// A minimal binary COPY reader: checks the header and trailer, that
    /// every length is sane, and that nothing trails the stream.
    fn decode(stream: &[u8]) -> Vec<Tuple> {
        fn take<'a>(s: &mut &'a [u8], n: usize) -> &'a [u8] {
            assert!(s.len() >= n, "stream cut short");
            let (head, tail) = s.split_at(n);
            *s = tail;
            head
        }
        let mut s = stream;
        assert_eq!(take(&mut s, 11), SIGNATURE);
        assert_eq!(take(&mut s, 4), [0; 4], "flags");
        assert_eq!(take(&mut s, 4), [0; 4], "header extension");
        let mut tuples = Vec::new();
        loop {
            let count = i16::from_be_bytes(take(&mut s, 2).try_into().unwrap());
            if count == -1 {
                assert!(s.is_empty(), "{} bytes after the trailer", s.len());
                return tuples;
            }
            let mut tuple = Vec::new();
            for _ in 0..count {
                let len = i32::from_be_bytes(take(&mut s, 4).try_into().unwrap());
                if len == -1 {
                    tuple.push(None);
                } else {
                    assert!(len >= 0, "negative length {len}");
                    tuple.push(Some(take(&mut s, len as usize).to_vec()));
                }
            }
            tuples.push(tuple);
        }
    }

    fn written(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf);
        buf.to_vec()
    }

    fn ts_micros(unix_nanos: i64) -> i64 {
        let out = written(|b| put_timestamptz(b, unix_nanos));
        assert_eq!(out[..4], [0, 0, 0, 8]);
        i64::from_be_bytes(out[4..].try_into().unwrap())
    }

    #[test]
    fn header_and_trailer_bytes() {
        assert_eq!(
            written(put_header),
            b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec()
        );
        assert_eq!(written(put_header).len(), HEADER_LEN);
        assert_eq!(written(put_trailer), [0xff, 0xff]);
        assert_eq!(written(put_trailer).len(), TRAILER_LEN);
    }

    #[test]
    fn null_and_fixed_width_fields() {
        assert_eq!(written(put_null), [0xff; 4]);
        assert_eq!(written(|b| put_i16(b, 0x1234)), [0, 0, 0, 2, 0x12, 0x34]);
        assert_eq!(written(|b| put_i16(b, -2)), [0, 0, 0, 2, 0xff, 0xfe]);
        assert_eq!(
            written(|b| put_i32(b, 0x0102_0304)),
            [0, 0, 0, 4, 1, 2, 3, 4]
        );
        assert_eq!(
            written(|b| put_i32(b, -2)),
            [0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(
            written(|b| put_i32(b, i32::MIN)),
            [0, 0, 0, 4, 0x80, 0, 0, 0]
        );
        assert_eq!(written(|b| put_bool(b, true)), [0, 0, 0, 1, 1]);
        assert_eq!(written(|b| put_bool(b, false)), [0, 0, 0, 1, 0]);
    }

    #[test]
    fn uuid_is_raw_bytes() {
        let id: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        let out = written(|b| put_uuid(b, &id));
        assert_eq!(out[..4], [0, 0, 0, 16]);
        assert_eq!(out[4..], id);
    }

    #[test]
    fn timestamptz_epochs() {
        assert_eq!(ts_micros(946_684_800_000_000_000), 0, "2000-01-01");
        assert_eq!(ts_micros(0), -946_684_800_000_000, "1970-01-01");
        assert_eq!(
            written(|b| put_timestamptz(b, 946_684_800_000_001_000)),
            [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        // 2023-11-14T22:13:20.123456789Z, sub-microsecond part dropped.
        assert_eq!(
            ts_micros(1_700_000_000_123_456_789),
            1_700_000_000_123_456 - 946_684_800_000_000
        );
    }

    #[test]
    fn timestamptz_floors_negative_nanos() {
        // Before 1970 the nanos round down, towards the past, like the time.
        assert_eq!(ts_micros(-1), -946_684_800_000_001);
        assert_eq!(ts_micros(-999), -946_684_800_000_001);
        assert_eq!(ts_micros(-1000), -946_684_800_000_001);
        assert_eq!(ts_micros(-1001), -946_684_800_000_002);
        assert_eq!(ts_micros(999), -946_684_800_000_000);
    }

    #[test]
    fn timestamptz_extremes_stay_in_range() {
        for nanos in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
            let t = ts_micros(nanos);
            assert!(
                (MIN_TIMESTAMPTZ_MICROS..=MAX_TIMESTAMPTZ_MICROS).contains(&t),
                "{nanos} -> {t}"
            );
            assert!(t != i64::MIN && t != i64::MAX, "infinity sentinel");
        }
        // 1677-09-21 and 2262-04-11: in range, so not clamped.
        assert_eq!(
            ts_micros(i64::MIN),
            i64::MIN.div_euclid(1000) - PG_EPOCH_UNIX_MICROS
        );
        assert_eq!(ts_micros(i64::MAX), i64::MAX / 1000 - PG_EPOCH_UNIX_MICROS);
    }

    #[test]
    fn timestamptz_range_constants_match_postgres() {
        const DAY: i64 = 86_400_000_000;
        // Julian days: 0 is 4714-11-24 BC, 2451545 is 2000-01-01 and
        // 109203528 is 294277-01-01, the first day PostgreSQL refuses.
        assert_eq!(MIN_TIMESTAMPTZ_MICROS, -2_451_545 * DAY);
        assert_eq!(MAX_TIMESTAMPTZ_MICROS + 1, (109_203_528 - 2_451_545) * DAY);
        assert_eq!(PG_EPOCH_UNIX_MICROS, 10_957 * DAY);
    }

    #[test]
    fn text_without_nul() {
        assert_eq!(written(|b| put_text(b, "")), [0, 0, 0, 0]);
        assert_eq!(written(|b| put_text(b, "héllo")), b"\0\0\0\x06h\xc3\xa9llo");
    }

    #[test]
    fn text_nul_becomes_replacement_and_length_counts_it() {
        assert_eq!(written(|b| put_text(b, "\0")), b"\0\0\0\x03\xef\xbf\xbd");
        let out = written(|b| put_text(b, "\0a\0\0b\0"));
        let body = "\u{FFFD}a\u{FFFD}\u{FFFD}b\u{FFFD}";
        assert_eq!(out[..4], (body.len() as i32).to_be_bytes());
        assert_eq!(&out[4..], body.as_bytes());
        assert!(!out[4..].contains(&0));
    }

    #[test]
    fn opt_text() {
        assert_eq!(written(|b| put_opt_text(b, None)), [0xff; 4]);
        assert_eq!(written(|b| put_opt_text(b, Some("ab"))), b"\0\0\0\x02ab");
        assert_eq!(written(|b| put_opt_text(b, Some(""))), [0, 0, 0, 0]);
    }

    #[test]
    fn jsonb_version_byte_and_length() {
        assert_eq!(written(|b| put_jsonb_fields(b, &[])), b"\0\0\0\x03\x01{}");
        let fields = [
            Field {
                name: "s",
                value: Value::Str("x\0\""),
            },
            Field {
                name: "f",
                value: Value::F64(f64::INFINITY),
            },
        ];
        let mut buf = BytesMut::from(&b"prefix"[..]);
        put_jsonb_fields(&mut buf, &fields);
        let out = &buf[6..];
        let len = i32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        assert_eq!(out[4], 1);
        let json: serde_json::Value = serde_json::from_slice(&out[5..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"s": "x\u{FFFD}\"", "f": "Infinity"})
        );
    }

    #[test]
    fn columns_and_statement() {
        assert_eq!(LOG_COLUMNS[6..12], CONTEXT_KEYS, "context columns");
        assert_eq!(
            copy_statement(),
            "COPY ringtrail.logs (ts, id, level, target, message, fields, \
             trace_id, user_id, session_id, task_id, context_id, client_id, \
             span_name, file, line, truncated) FROM STDIN (FORMAT binary)"
        );
    }

    fn full_row_fields() -> [Field<'static>; 3] {
        [
            Field {
                name: "attempt",
                value: Value::U64(3),
            },
            Field {
                name: "ratio",
                value: Value::F64(f64::NAN),
            },
            Field {
                name: "who",
                value: Value::Str("ad\0a"),
            },
        ]
    }

    fn text(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn batch_decodes_to_expected_values() {
        let fields = full_row_fields();
        let id: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
        let full = Row {
            ts_unix_nanos: 1_700_000_000_123_456_789,
            id,
            level: LEVEL_WARN,
            target: "my_app::net",
            message: "retry\0ing",
            fields: &fields,
            context: [Some("t1"), None, Some("s1"), None, None, Some("c1")],
            span_name: Some("request"),
            file: Some("src/net.rs"),
            line: Some(u32::MAX),
            truncated: true,
        };
        let bare = Row::default();
        let old = Row {
            ts_unix_nanos: -1,
            line: Some(42),
            ..Row::default()
        };

        let mut enc = CopyEncoder::new();
        assert!(enc.is_empty());
        for row in [&full, &bare, &old] {
            enc.push_row(row);
        }
        assert_eq!(enc.rows(), 3);
        assert!(!enc.is_empty());
        let len_before = enc.bytes_len();
        let batch = enc.finish();
        assert_eq!(batch.len(), len_before + TRAILER_LEN);
        assert!(enc.is_empty());
        assert_eq!(enc.bytes_len(), 0);

        let tuples = decode(&batch);
        assert_eq!(tuples.len(), 3);
        for t in &tuples {
            assert_eq!(t.len(), 16);
        }

        let t = &tuples[0];
        let ts = 1_700_000_000_123_456i64 - PG_EPOCH_UNIX_MICROS;
        assert_eq!(t[0], Some(ts.to_be_bytes().to_vec()));
        assert_eq!(t[1], Some(id.to_vec()));
        assert_eq!(t[2], Some(LEVEL_WARN.to_be_bytes().to_vec()));
        assert_eq!(t[3], text("my_app::net"));
        assert_eq!(t[4], text("retry\u{FFFD}ing"));
        let jsonb = t[5].as_ref().unwrap();
        assert_eq!(jsonb[0], 1);
        let json: serde_json::Value = serde_json::from_slice(&jsonb[1..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"attempt": 3, "ratio": "NaN", "who": "ad\u{FFFD}a"})
        );
        assert_eq!(
            t[6..12],
            [text("t1"), None, text("s1"), None, None, text("c1")]
        );
        assert_eq!(t[12], text("request"));
        assert_eq!(t[13], text("src/net.rs"));
        assert_eq!(t[14], Some(i32::MAX.to_be_bytes().to_vec()), "clamped");
        assert_eq!(t[15], Some(vec![1]));

        let t = &tuples[1];
        assert_eq!(t[0], Some((-PG_EPOCH_UNIX_MICROS).to_be_bytes().to_vec()));
        assert_eq!(t[1], Some(vec![0; 16]));
        assert_eq!(t[3], text(""));
        assert_eq!(t[4], text(""));
        assert_eq!(t[5], Some(b"\x01{}".to_vec()));
        assert!(t[6..15].iter().all(Option::is_none), "NULL columns");
        assert_eq!(t[15], Some(vec![0]));

        let t = &tuples[2];
        assert_eq!(
            t[0],
            Some((-PG_EPOCH_UNIX_MICROS - 1).to_be_bytes().to_vec())
        );
        assert_eq!(t[14], Some(42i32.to_be_bytes().to_vec()));
    }

    #[test]
    fn empty_finish_is_header_and_trailer() {
        let mut enc = CopyEncoder::new();
        let batch = enc.finish();
        assert_eq!(batch.len(), 21);
        assert_eq!(&batch[..], b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0\xff\xff");
        assert!(decode(&batch).is_empty());
        // And again, still valid, from the same encoder.
        assert_eq!(enc.finish(), batch);
    }

    #[test]
    fn finish_twice_gives_two_valid_streams() {
        let mut enc = CopyEncoder::default();
        enc.push_row(&Row {
            message: "one",
            ..Row::default()
        });
        enc.push_row(&Row {
            message: "two",
            ..Row::default()
        });
        let first = enc.finish();
        let second = enc.finish();
        assert_eq!(decode(&first).len(), 2);
        assert_eq!(&second[..HEADER_LEN], &first[..HEADER_LEN], "same header");
        assert_eq!(second.len(), HEADER_LEN + TRAILER_LEN);
        assert!(decode(&second).is_empty());

        enc.push_row(&Row {
            message: "three",
            ..Row::default()
        });
        let third = enc.finish();
        let tuples = decode(&third);
        assert_eq!(tuples.len(), 1);
        assert_eq!(tuples[0][4], text("three"));
        // Earlier batches are untouched by later ones.
        assert_eq!(decode(&first)[1][4], text("two"));
    }

    #[test]
    fn clear_discards_the_batch() {
        let mut enc = CopyEncoder::new();
        enc.push_row(&Row {
            message: "dropped",
            ..Row::default()
        });
        enc.clear();
        assert!(enc.is_empty());
        assert_eq!(enc.bytes_len(), 0);
        enc.push_row(&Row {
            message: "kept",
            ..Row::default()
        });
        let tuples = decode(&enc.finish());
        assert_eq!(tuples.len(), 1);
        assert_eq!(tuples[0][4], text("kept"));
    }

    #[test]
    fn bytes_len_counts_header_and_tuples() {
        let mut enc = CopyEncoder::new();
        assert_eq!(enc.bytes_len(), 0);
        enc.push_row(&Row::default());
        let one = enc.bytes_len();
        enc.push_row(&Row::default());
        assert_eq!(enc.bytes_len() - one, one - HEADER_LEN);
        // Default row: 2 + 16 * 4 + ts 8 + uuid 16 + level 2 + jsonb 3
        // + line NULL + bool 1 (text "" twice).
        assert_eq!(one - HEADER_LEN, 2 + 16 * 4 + 8 + 16 + 2 + 3 + 1);
    }

    #[test]
    fn size_hint_covers_plain_rows() {
        let fields = full_row_fields();
        let row = Row {
            target: "t",
            message: "a message",
            fields: &fields,
            context: [Some("ctx"); 6],
            span_name: Some("span"),
            file: Some("file.rs"),
            line: Some(1),
            ..Row::default()
        };
        let mut buf = BytesMut::new();
        put_row(&mut buf, &row);
        // Only the NUL in "who" (3 bytes instead of 1) is not in the hint.
        assert!(buf.len() <= tuple_size_hint(&row) + 2);
    }

    #[test]
    fn buffer_is_reused_after_the_batch_is_dropped() {
        let fields = full_row_fields();
        let row = Row {
            message: "steady state",
            fields: &fields,
            ..Row::default()
        };
        let mut enc = CopyEncoder::new();
        let fill = |enc: &mut CopyEncoder| {
            for _ in 0..500 {
                enc.push_row(&row);
            }
        };

        fill(&mut enc);
        let first = enc.finish();
        let (addr, len) = (first.as_ptr(), first.len());
        drop(first);

        for _ in 0..3 {
            fill(&mut enc);
            // Reclaimed at the first row: the whole allocation, from its start.
            assert!(enc.capacity() >= len);
            let batch = enc.finish();
            assert_eq!(batch.as_ptr(), addr, "no new allocation");
            assert_eq!(batch.len(), len);
            assert_eq!(decode(&batch).len(), 500);
        }
    }

    #[test]
    fn live_batch_is_never_overwritten() {
        let mut enc = CopyEncoder::new();
        for _ in 0..100 {
            enc.push_row(&Row {
                message: "first",
                ..Row::default()
            });
        }
        let first = enc.finish();
        let snapshot = first.to_vec();
        // `first` is still held (say, a retry): the next batch must go elsewhere.
        for _ in 0..100 {
            enc.push_row(&Row {
                message: "later",
                ..Row::default()
            });
        }
        let second = enc.finish();
        assert_ne!(second.as_ptr(), first.as_ptr());
        assert_eq!(&first[..], &snapshot[..]);
        assert!(decode(&second).iter().all(|t| t[4] == text("later")));
    }

    #[test]
    fn debug_shows_shape_not_bytes() {
        let mut enc = CopyEncoder::new();
        enc.push_row(&Row::default());
        let s = format!("{enc:?}");
        assert!(s.starts_with("CopyEncoder { rows: 1, bytes_len: "), "{s}");
    }
}
