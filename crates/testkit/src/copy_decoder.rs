//! An independent reader for PostgreSQL binary `COPY` streams, for tests and
//! fuzz targets.
//!
//! Written from the format description (PostgreSQL docs, "COPY ... Binary
//! Format"; see `shared/reference/postgres-copy.md`), not from
//! `src/encode`: nothing here calls the encoder, so a bug there cannot hide
//! behind the same bug here. It has two layers:
//!
//! - [`decode`]: the generic stream grammar. 19-byte header (signature,
//!   flags, header extension), tuples (`int16` field count, then per field an
//!   `int32` length, `-1` for NULL, and that many bytes), the `int16` `-1`
//!   trailer, and nothing after it. Every violation is a precise
//!   [`DecodeError`].
//! - [`decode_logs`] / [`LogRow::from_tuple`]: the 19 columns of
//!   `ringtrail.logs` turned back into an owned [`LogRow`], with the checks the
//!   server would make on receive: exact widths for `timestamptz`, `uuid`,
//!   `int2`, `int4`, `int8` and `bool`; `timestamptz` inside PostgreSQL's range; `text`
//!   valid UTF-8 without NUL; `jsonb` the version byte 1 and JSON text that a
//!   strict parser ([`parse_json`], also written here) and `serde_json` both
//!   accept, with no `\u0000` escape and no bare `NaN`/`Infinity`.
//!
//! JSON numbers are kept as their text ([`Json::Number`]), so 128-bit
//! integers and floats can be compared exactly without relying on
//! `serde_json` features.
//!
//! The including crate must declare this file as a module named
//! `copy_decoder` at its root (`tests/support/fuzz_checks.rs` refers to it as
//! `crate::copy_decoder`):
//!
//! ```ignore
//! #[path = "support/copy_decoder.rs"]
//! mod copy_decoder;
//! ```

#![allow(dead_code)]

use std::fmt;

/// The 11 bytes every binary `COPY` stream starts with.
pub const SIGNATURE: [u8; 11] = *b"PGCOPY\n\xff\r\n\0";

/// Header length: signature, `int32` flags, `int32` extension length.
pub const HEADER_LEN: usize = 19;

/// The columns of `ringtrail.logs`, in the order the writer sends them
/// (the migration's column order).
pub const COLUMNS: [&str; 19] = [
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
    "kind",
    "redacted",
    "seq",
];

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// Unix time of 2000-01-01 00:00:00 UTC in microseconds: 10957 days after
/// 1970-01-01.
pub const PG_EPOCH_UNIX_MICROS: i64 = 10_957 * DAY_MICROS;

/// Earliest `timestamptz`, Julian day 0 (4714-11-24 BC), in microseconds
/// since 2000-01-01 (Julian day 2451545).
pub const MIN_TS_MICROS: i64 = -2_451_545 * DAY_MICROS;

/// Latest `timestamptz`, the last microsecond before 294277-01-01 (Julian
/// day 109203528), in microseconds since 2000-01-01.
pub const MAX_TS_MICROS: i64 = (109_203_528 - 2_451_545) * DAY_MICROS - 1;

/// One tuple: each field's bytes, `None` for NULL.
pub type Tuple = Vec<Option<Vec<u8>>>;

/// Why a stream or a column was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The stream ended `needed` bytes into reading `what` at `offset`, with
    /// only `available` bytes left.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The first 11 bytes are not [`SIGNATURE`].
    BadSignature {
        /// The bytes found instead.
        found: Vec<u8>,
    },
    /// The flags word is not 0 (neither ringtrail nor `COPY TO` sets any).
    UnsupportedFlags {
        /// The flags found.
        flags: u32,
    },
    /// The header-extension length is not 0.
    UnexpectedExtension {
        /// The length found.
        len: i32,
    },
    /// A tuple's field count is negative but not the trailer's -1.
    BadFieldCount {
        /// Index of the tuple.
        tuple: usize,
        /// Offset of the count.
        offset: usize,
        /// The count.
        count: i16,
    },
    /// A tuple has a different number of fields than the table's columns.
    WrongFieldCount {
        /// Index of the tuple.
        tuple: usize,
        /// Columns expected.
        expected: usize,
        /// Fields found.
        got: usize,
    },
    /// A field length is below -1.
    BadFieldLength {
        /// Index of the tuple.
        tuple: usize,
        /// Index of the field.
        field: usize,
        /// Offset of the length.
        offset: usize,
        /// The length.
        len: i32,
    },
    /// Bytes follow the trailer.
    TrailingBytes {
        /// Offset of the first one.
        offset: usize,
        /// How many.
        count: usize,
    },
    /// NULL in a `NOT NULL` column.
    UnexpectedNull {
        /// The column.
        column: &'static str,
    },
    /// A fixed-width value of the wrong width.
    WrongWidth {
        /// The column.
        column: &'static str,
        /// Its type's width.
        expected: usize,
        /// The field's length.
        got: usize,
    },
    /// A `bool` byte other than 0 or 1.
    BadBool {
        /// The column.
        column: &'static str,
        /// The byte.
        byte: u8,
    },
    /// A `timestamptz` outside PostgreSQL's range (or an infinity).
    TimestampOutOfRange {
        /// Microseconds since 2000-01-01.
        micros: i64,
    },
    /// Text (or JSON text) that is not UTF-8.
    InvalidUtf8 {
        /// The column.
        column: &'static str,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A NUL byte in text, which PostgreSQL refuses (22021).
    NulInText {
        /// The column.
        column: &'static str,
        /// Its byte offset.
        at: usize,
    },
    /// A `jsonb` value that does not start with version byte 1.
    BadJsonbVersion {
        /// The first byte, if any.
        found: Option<u8>,
    },
    /// JSON text that [`parse_json`] refuses.
    BadJson {
        /// The column.
        column: &'static str,
        /// Why.
        error: JsonError,
    },
    /// JSON text that [`parse_json`] accepts but `serde_json` does not.
    SerdeRejects {
        /// The column.
        column: &'static str,
        /// serde_json's message.
        message: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over the stream that reports [`DecodeError::Truncated`].
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.data.len() - self.pos;
        if available < n {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decodes a whole binary `COPY` stream whose tuples must each have
/// `columns` fields. Strict: flags and the header-extension length must be
/// 0, and the trailer must be the last two bytes.
pub fn decode(stream: &[u8], columns: usize) -> Result<Vec<Tuple>, DecodeError> {
    let mut r = Reader {
        data: stream,
        pos: 0,
    };
    let signature = r.take(SIGNATURE.len(), "signature").map_err(|e| {
        // A short stream that is not even a signature prefix is a bad
        // signature, not a truncated one.
        if SIGNATURE.starts_with(stream) {
            e
        } else {
            DecodeError::BadSignature {
                found: stream.to_vec(),
            }
        }
    })?;
    if signature != SIGNATURE {
        return Err(DecodeError::BadSignature {
            found: signature.to_vec(),
        });
    }
    let flags = r.i32("flags")? as u32;
    if flags != 0 {
        return Err(DecodeError::UnsupportedFlags { flags });
    }
    let extension = r.i32("header extension length")?;
    if extension != 0 {
        return Err(DecodeError::UnexpectedExtension { len: extension });
    }
    let mut tuples = Vec::new();
    loop {
        let offset = r.pos;
        let count = r.i16("field count or trailer")?;
        if count == -1 {
            if r.pos != stream.len() {
                return Err(DecodeError::TrailingBytes {
                    offset: r.pos,
                    count: stream.len() - r.pos,
                });
            }
            return Ok(tuples);
        }
        if count < 0 {
            return Err(DecodeError::BadFieldCount {
                tuple: tuples.len(),
                offset,
                count,
            });
        }
        if count as usize != columns {
            return Err(DecodeError::WrongFieldCount {
                tuple: tuples.len(),
                expected: columns,
                got: count as usize,
            });
        }
        let mut tuple = Vec::with_capacity(columns);
        for field in 0..columns {
            let offset = r.pos;
            let len = r.i32("field length")?;
            match len {
                -1 => tuple.push(None),
                len if len < -1 => {
                    return Err(DecodeError::BadFieldLength {
                        tuple: tuples.len(),
                        field,
                        offset,
                        len,
                    })
                }
                len => tuple.push(Some(r.take(len as usize, "field bytes")?.to_vec())),
            }
        }
        tuples.push(tuple);
    }
}

/// Writes `tuples` as a binary `COPY` stream, the inverse of [`decode`].
/// Tests use it to rebuild streams after tampering with decoded tuples.
pub fn encode(tuples: &[Tuple]) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.extend_from_slice(&[0; 8]);
    for tuple in tuples {
        out.extend_from_slice(&(tuple.len() as i16).to_be_bytes());
        for field in tuple {
            match field {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(bytes) => {
                    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// Whether `jsonb` text must also be accepted by `serde_json` (default
/// features), on top of [`parse_json`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerdeCheck {
    /// Require it: right for the encoder's output, which writes floats in
    /// ryu's short form.
    Require,
    /// Skip it: for text PostgreSQL wrote. Its `numeric` output spells
    /// `f64::MAX` as a 309-digit integer, which `serde_json` without
    /// `float_roundtrip` refuses as "number out of range" although it is
    /// valid JSON.
    Skip,
}

/// Decodes a stream of `ringtrail.logs` tuples into [`LogRow`]s, with
/// [`SerdeCheck::Require`].
pub fn decode_logs(stream: &[u8]) -> Result<Vec<LogRow>, DecodeError> {
    decode_logs_with(stream, SerdeCheck::Require)
}

/// [`decode_logs`] with a choice of [`SerdeCheck`].
pub fn decode_logs_with(stream: &[u8], serde: SerdeCheck) -> Result<Vec<LogRow>, DecodeError> {
    decode(stream, COLUMNS.len())?
        .iter()
        .map(|t| LogRow::from_tuple_with(t, serde))
        .collect()
}

/// A `jsonb` value as received: its JSON text and that text parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Jsonb {
    /// The JSON text after the version byte.
    pub text: String,
    /// The text, parsed by [`parse_json`].
    pub value: Json,
}

/// One row of `ringtrail.logs`, owned and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// `ts`: microseconds since 2000-01-01 00:00:00 UTC.
    pub ts_micros: i64,
    /// `id`: the 16 uuid bytes.
    pub id: [u8; 16],
    /// `level`.
    pub level: i16,
    /// `target`.
    pub target: String,
    /// `message`.
    pub message: String,
    /// `fields`.
    pub fields: Jsonb,
    /// `trace_id` .. `client_id`.
    pub context: [Option<String>; 6],
    /// `span_name`.
    pub span_name: Option<String>,
    /// `file`.
    pub file: Option<String>,
    /// `line`.
    pub line: Option<i32>,
    /// `truncated`.
    pub truncated: bool,
    /// `kind`: the audit point, or NULL.
    pub kind: Option<i16>,
    /// `redacted`: replacements made in the row.
    pub redacted: i16,
    /// `seq`: the event's sequence number on its thread (`int8`, not NULL).
    pub seq: i64,
}

fn not_null<'t>(field: &'t Option<Vec<u8>>, column: &'static str) -> Result<&'t [u8], DecodeError> {
    field
        .as_deref()
        .ok_or(DecodeError::UnexpectedNull { column })
}

fn fixed<const N: usize>(bytes: &[u8], column: &'static str) -> Result<[u8; N], DecodeError> {
    bytes.try_into().map_err(|_| DecodeError::WrongWidth {
        column,
        expected: N,
        got: bytes.len(),
    })
}

/// Decodes a `timestamptz`: 8 bytes, big-endian microseconds since
/// 2000-01-01, inside `[MIN_TS_MICROS, MAX_TS_MICROS]`.
pub fn decode_timestamptz(bytes: &[u8], column: &'static str) -> Result<i64, DecodeError> {
    let micros = i64::from_be_bytes(fixed(bytes, column)?);
    if !(MIN_TS_MICROS..=MAX_TS_MICROS).contains(&micros) {
        return Err(DecodeError::TimestampOutOfRange { micros });
    }
    Ok(micros)
}

/// Decodes `text`: valid UTF-8 without NUL.
pub fn decode_text(bytes: &[u8], column: &'static str) -> Result<String, DecodeError> {
    let s = std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        column,
        valid_up_to: e.valid_up_to(),
    })?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(DecodeError::NulInText { column, at });
    }
    Ok(s.to_owned())
}

fn decode_opt_text(
    field: &Option<Vec<u8>>,
    column: &'static str,
) -> Result<Option<String>, DecodeError> {
    field.as_deref().map(|b| decode_text(b, column)).transpose()
}

/// Decodes a `jsonb`: version byte 1, then JSON text (UTF-8, no NUL byte)
/// that [`parse_json`] accepts, and `serde_json` too unless `serde` is
/// [`SerdeCheck::Skip`].
pub fn decode_jsonb(
    bytes: &[u8],
    column: &'static str,
    serde: SerdeCheck,
) -> Result<Jsonb, DecodeError> {
    match bytes.first() {
        Some(1) => {}
        found => {
            return Err(DecodeError::BadJsonbVersion {
                found: found.copied(),
            })
        }
    }
    let text = decode_text(&bytes[1..], column)?;
    let value = parse_json(&text).map_err(|error| DecodeError::BadJson { column, error })?;
    if serde == SerdeCheck::Skip {
        return Ok(Jsonb { text, value });
    }
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        return Err(DecodeError::SerdeRejects {
            column,
            message: e.to_string(),
        });
    }
    Ok(Jsonb { text, value })
}

/// Decodes a `bool`: one byte, 0 or 1.
pub fn decode_bool(bytes: &[u8], column: &'static str) -> Result<bool, DecodeError> {
    match fixed::<1>(bytes, column)? {
        [0] => Ok(false),
        [1] => Ok(true),
        [byte] => Err(DecodeError::BadBool { column, byte }),
    }
}

impl LogRow {
    /// Turns one 19-field tuple into a row, checking every column's type
    /// (with [`SerdeCheck::Require`]).
    pub fn from_tuple(t: &[Option<Vec<u8>>]) -> Result<LogRow, DecodeError> {
        LogRow::from_tuple_with(t, SerdeCheck::Require)
    }

    /// [`from_tuple`](Self::from_tuple) with a choice of [`SerdeCheck`].
    pub fn from_tuple_with(
        t: &[Option<Vec<u8>>],
        serde: SerdeCheck,
    ) -> Result<LogRow, DecodeError> {
        if t.len() != COLUMNS.len() {
            return Err(DecodeError::WrongFieldCount {
                tuple: 0,
                expected: COLUMNS.len(),
                got: t.len(),
            });
        }
        let c = COLUMNS;
        let mut context: [Option<String>; 6] = Default::default();
        for (i, slot) in context.iter_mut().enumerate() {
            *slot = decode_opt_text(&t[6 + i], c[6 + i])?;
        }
        Ok(LogRow {
            ts_micros: decode_timestamptz(not_null(&t[0], c[0])?, c[0])?,
            id: fixed(not_null(&t[1], c[1])?, c[1])?,
            level: i16::from_be_bytes(fixed(not_null(&t[2], c[2])?, c[2])?),
            target: decode_text(not_null(&t[3], c[3])?, c[3])?,
            message: decode_text(not_null(&t[4], c[4])?, c[4])?,
            fields: decode_jsonb(not_null(&t[5], c[5])?, c[5], serde)?,
            context,
            span_name: decode_opt_text(&t[12], c[12])?,
            file: decode_opt_text(&t[13], c[13])?,
            line: t[14]
                .as_deref()
                .map(|b| fixed(b, c[14]).map(i32::from_be_bytes))
                .transpose()?,
            truncated: decode_bool(not_null(&t[15], c[15])?, c[15])?,
            kind: t[16]
                .as_deref()
                .map(|b| fixed(b, c[16]).map(i16::from_be_bytes))
                .transpose()?,
            redacted: i16::from_be_bytes(fixed(not_null(&t[17], c[17])?, c[17])?),
            seq: i64::from_be_bytes(fixed(not_null(&t[18], c[18])?, c[18])?),
        })
    }
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// A parsed JSON value. Objects keep their members in order, duplicates
/// included; numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written (grammar-checked).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object's members, in order, duplicates kept.
    Object(Vec<(String, Json)>),
}

/// Why [`parse_json`] refused a text, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// The problem.
    pub kind: JsonErrorKind,
}

/// The kinds of [`JsonError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// The text ended inside a value.
    UnexpectedEnd,
    /// A character that cannot start or continue what was being read.
    Unexpected(char),
    /// A bare `NaN`, `Infinity` or `-Infinity`, which are not JSON.
    NonFinite(&'static str),
    /// The escape `\u0000`, which `jsonb` refuses.
    NulEscape,
    /// A `\u` escape of a surrogate that is not half of a pair.
    LoneSurrogate(u16),
    /// A raw control character (below 0x20) inside a string.
    RawControl(u8),
    /// A backslash followed by something that is not an escape.
    BadEscape(char),
    /// A number that does not follow the JSON grammar.
    BadNumber,
    /// Something after the top-level value.
    Trailing,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// The deepest nesting [`parse_json`] follows.
pub const MAX_DEPTH: usize = 128;

/// Parses `text` as exactly one JSON value (RFC 8259), with `jsonb`'s extra
/// rule that `\u0000` is refused.
pub fn parse_json(text: &str) -> Result<Json, JsonError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err(JsonErrorKind::Trailing));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            offset: self.pos,
            kind,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// The character at the cursor, for error messages.
    fn here(&self) -> JsonErrorKind {
        match std::str::from_utf8(&self.s[self.pos..])
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) => JsonErrorKind::Unexpected(c),
            None => match self.peek() {
                // Not at a char boundary cannot happen for &str input, but
                // stay total.
                Some(b) => JsonErrorKind::Unexpected(char::from(b)),
                None => JsonErrorKind::UnexpectedEnd,
            },
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(self.here()))
        }
    }

    fn literal(&mut self, word: &'static str) -> bool {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        match self.peek() {
            None => Err(self.err(JsonErrorKind::UnexpectedEnd)),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                let start = self.pos;
                for (word, value) in [
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                    ("null", Json::Null),
                ] {
                    if self.literal(word) {
                        return Ok(value);
                    }
                }
                for word in ["NaN", "Infinity", "+Infinity", "inf", "nan"] {
                    if self.literal(word) {
                        self.pos = start;
                        return Err(self.err(JsonErrorKind::NonFinite(word)));
                    }
                }
                Err(self.err(self.here()))
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err(self.here()));
            }
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.err(self.here())),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err(self.here())),
            }
        }
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let mut v = 0u16;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
                Some(_) => return Err(self.err(self.here())),
            };
            v = v * 16 + u16::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a &str and the run stops only at ASCII bytes, so
            // the run is whole characters.
            out.push_str(std::str::from_utf8(&self.s[run_start..self.pos]).expect("UTF-8 run"));
            match self.peek() {
                None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape_at = self.pos;
                    self.pos += 1;
                    let c = match self.peek() {
                        None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
                        Some(c) => c,
                    };
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let lone = |unit| JsonError {
                                offset: escape_at,
                                kind: JsonErrorKind::LoneSurrogate(unit),
                            };
                            let code = match hi {
                                0 => {
                                    return Err(JsonError {
                                        offset: escape_at,
                                        kind: JsonErrorKind::NulEscape,
                                    })
                                }
                                0xd800..=0xdbff => {
                                    if !self.s[self.pos..].starts_with(b"\\u") {
                                        return Err(lone(hi));
                                    }
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if !(0xdc00..=0xdfff).contains(&lo) {
                                        return Err(lone(hi));
                                    }
                                    0x10000
                                        + ((u32::from(hi) - 0xd800) << 10)
                                        + (u32::from(lo) - 0xdc00)
                                }
                                0xdc00..=0xdfff => return Err(lone(hi)),
                                _ => u32::from(hi),
                            };
                            out.push(char::from_u32(code).expect("checked code point"));
                        }
                        other => {
                            self.pos -= 1;
                            return Err(self.err(JsonErrorKind::BadEscape(char::from(other))));
                        }
                    }
                }
                Some(b) => return Err(self.err(JsonErrorKind::RawControl(b))),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.literal("Infinity") {
                self.pos = start;
                return Err(self.err(JsonErrorKind::NonFinite("-Infinity")));
            }
        }
        let bad = JsonError {
            offset: start,
            kind: JsonErrorKind::BadNumber,
        };
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(bad); // leading zero
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(bad),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(bad);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(bad);
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII number");
        Ok(Json::Number(text.to_owned()))
    }
}

/// Writes `v` back as compact JSON text (for messages and tests). Numbers are
/// written as parsed; strings with the minimal escapes.
pub fn to_json_text(v: &Json) -> String {
    fn string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn go(out: &mut String, v: &Json) {
        match v {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go(out, item);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, item)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(out, k);
                    out.push(':');
                    go(out, item);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    go(&mut out, v);
    out
}
