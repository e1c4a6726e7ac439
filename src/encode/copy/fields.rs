//! The field writers: one `put_*` per column type, each writing the
//! `int32` length and the type's exact binary form, into any
//! [`TupleBuf`]: the encoder's `BytesMut`, or the `Vec<u8>` the chain
//! builds a canonical tuple in.

use bytes::{BufMut, BytesMut};

use super::*;

/// A buffer a tuple is written into: bytes to append to, and the bytes
/// written so far, to patch a length in place.
pub trait TupleBuf: BufMut + std::ops::DerefMut<Target = [u8]> {
    /// Makes room for `additional` more bytes.
    fn reserve(&mut self, additional: usize);
    /// Cuts the buffer back to `len` bytes.
    fn truncate(&mut self, len: usize);
}

impl TupleBuf for BytesMut {
    #[inline]
    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional);
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        BytesMut::truncate(self, len);
    }
}

impl TupleBuf for Vec<u8> {
    #[inline]
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional);
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}

/// Writes a NULL field: the length -1 and no bytes.
#[inline]
pub fn put_null<B: TupleBuf>(buf: &mut B) {
    buf.put_i32(-1);
}

/// Writes an `int2` (`smallint`) field: length 2, then the value big-endian.
#[inline]
pub fn put_i16<B: TupleBuf>(buf: &mut B, v: i16) {
    buf.put_i32(2);
    buf.put_i16(v);
}

/// Writes an `int4` (`integer`) field: length 4, then the value big-endian.
#[inline]
pub fn put_i32<B: TupleBuf>(buf: &mut B, v: i32) {
    buf.put_i32(4);
    buf.put_i32(v);
}

/// Writes an `int8` (`bigint`) field: length 8, then the value big-endian.
#[inline]
pub fn put_i64<B: TupleBuf>(buf: &mut B, v: i64) {
    buf.put_i32(8);
    buf.put_i64(v);
}

/// Writes a `bool` field: length 1, then 1 or 0.
#[inline]
pub fn put_bool<B: TupleBuf>(buf: &mut B, v: bool) {
    buf.put_i32(1);
    buf.put_u8(u8::from(v));
}

/// Writes a `uuid` field: length 16, then the 16 bytes as given (network
/// byte order, as [`Row::id`](crate::Row::id) holds them).
#[inline]
pub fn put_uuid<B: TupleBuf>(buf: &mut B, id: &[u8; 16]) {
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
pub fn put_timestamptz<B: TupleBuf>(buf: &mut B, unix_nanos: i64) {
    put_micros(buf, timestamptz_micros(unix_nanos));
}

/// The wire value [`put_timestamptz`] writes for `unix_nanos`:
/// microseconds since 2000-01-01 UTC, floored, clamped into range.
#[inline]
pub fn timestamptz_micros(unix_nanos: i64) -> i64 {
    // |unix_nanos / 1000| < 9.3e15, so subtracting the epoch cannot overflow.
    let micros = unix_nanos.div_euclid(1000) - PG_EPOCH_UNIX_MICROS;
    micros.clamp(MIN_TIMESTAMPTZ_MICROS, MAX_TIMESTAMPTZ_MICROS)
}

/// Writes a `timestamptz` field from its wire value, microseconds since
/// 2000-01-01 UTC, as it is.
#[inline]
pub fn put_micros<B: TupleBuf>(buf: &mut B, micros: i64) {
    buf.put_i32(8);
    buf.put_i64(micros);
}

/// Writes a field of `bytes` as they are: the length, then the bytes. For
/// text that is already what the table stores (read back from it).
#[inline]
pub fn put_raw<B: TupleBuf>(buf: &mut B, bytes: &[u8]) {
    // Over 2 GiB is not covered (PostgreSQL caps a field at 1 GiB).
    buf.put_i32(bytes.len() as i32);
    buf.put_slice(bytes);
}

/// A nullable [`put_raw`].
#[inline]
pub fn put_opt_raw<B: TupleBuf>(buf: &mut B, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => put_raw(buf, bytes),
        None => put_null(buf),
    }
}

/// Writes a field whose bytes `write` appends: a length placeholder, the
/// bytes, then the length patched in. Returns what `write` returned.
#[inline]
pub fn put_framed<B: TupleBuf, R>(buf: &mut B, write: impl FnOnce(&mut B) -> R) -> R {
    let start = buf.len();
    buf.put_i32(0); // placeholder, patched below
    let written = write(buf);
    let len = buf.len() - start - 4;
    buf[start..start + 4].copy_from_slice(&(len as i32).to_be_bytes());
    written
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
/// ```ignore
/// let mut buf = bytes::BytesMut::new();
/// ringtrail::encode::copy::put_text(&mut buf, "a\0b");
/// assert_eq!(&buf[..], b"\0\0\0\x05a\xef\xbf\xbdb");
/// ```
#[inline]
pub fn put_text<B: TupleBuf>(buf: &mut B, s: &str) {
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
fn put_text_slow<B: TupleBuf>(buf: &mut B, mut s: &str) {
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
fn put_text_replacing_nul<B: TupleBuf>(buf: &mut B, s: &str, nuls: usize) {
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
pub fn put_opt_text<B: TupleBuf>(buf: &mut B, s: Option<&str>) {
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
/// ```ignore
/// use ringtrail::{Field, Value};
///
/// let mut buf = bytes::BytesMut::new();
/// ringtrail::encode::copy::put_jsonb_fields(&mut buf, &[Field { name: "n", value: Value::I64(1) }]);
/// assert_eq!(&buf[..], b"\0\0\0\x08\x01{\"n\":1}");
/// ```
#[inline]
#[cfg(test)]
pub fn put_jsonb_fields<B: TupleBuf>(buf: &mut B, fields: &[crate::row::Field<'_>]) {
    put_jsonb(buf, |buf| {
        crate::encode::json::write_fields(buf, fields);
        true
    });
}

/// Writes a `jsonb` field whose JSON text `write` writes (after the
/// length and the version byte), and returns what `write` returned;
/// `false` when the JSON was too long to frame and `{}` was stored instead.
#[inline]
pub(super) fn put_jsonb<B: TupleBuf>(buf: &mut B, write: impl FnOnce(&mut B) -> bool) -> bool {
    let start = buf.len();
    buf.put_i32(0); // placeholder, patched below
    buf.put_u8(1); // jsonb binary format version
    let mut written = write(buf);
    let mut len = buf.len() - start - 4;
    if len > MAX_FIELD_LEN {
        // Over 2 GiB of JSON cannot be framed (and PostgreSQL caps a field at
        // 1 GiB anyway): keep the row, drop its fields.
        buf.truncate(start + 5);
        buf.put_slice(b"{}");
        len = 3;
        written = false;
    }
    buf[start..start + 4].copy_from_slice(&(len as i32).to_be_bytes());
    written
}
