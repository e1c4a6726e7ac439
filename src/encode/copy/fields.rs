//! The field writers: one `put_*` per column type, each writing the
//! `int32` length and the type's exact binary form.

use bytes::{BufMut, BytesMut};

use super::*;

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
/// byte order, as [`Row::id`](crate::Row::id) holds them).
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
/// ```ignore
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
/// ```ignore
/// use ringtrail::{Field, Value};
///
/// let mut buf = bytes::BytesMut::new();
/// ringtrail::encode::copy::put_jsonb_fields(&mut buf, &[Field { name: "n", value: Value::I64(1) }]);
/// assert_eq!(&buf[..], b"\0\0\0\x08\x01{\"n\":1}");
/// ```
#[inline]
#[cfg(test)]
pub fn put_jsonb_fields(buf: &mut BytesMut, fields: &[crate::row::Field<'_>]) {
    put_jsonb(buf, |buf| {
        crate::encode::json::write_fields(buf, fields);
        true
    });
}

/// Writes a `jsonb` field whose JSON text `write` writes (after the
/// length and the version byte), and returns what `write` returned;
/// `false` when the JSON was too long to frame and `{}` was stored instead.
#[inline]
pub(super) fn put_jsonb(buf: &mut BytesMut, write: impl FnOnce(&mut BytesMut) -> bool) -> bool {
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
