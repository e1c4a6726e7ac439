//! Check logic shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`), their
//! corpus replay under `cargo test` (`tests/encode_fuzz_regressions.rs`) and
//! the PostgreSQL property test (`tests/encode_property.rs`).
//!
//! Three parts:
//!
//! - **Input decoding.** [`ByteSource`] turns raw fuzzer bytes into owned
//!   rows ([`OwnedRow`]) and field lists. It is hand-written rather than
//!   `#[derive(Arbitrary)]` so that the fuzz crate and plain `cargo test`
//!   interpret a corpus file identically without the main crate depending on
//!   `arbitrary`, and so that a corpus file keeps meaning the same input when
//!   `arbitrary` changes its byte format. **Changing how bytes are read
//!   silently changes what every file in `tests/fuzz_corpus/` means; treat
//!   the format as frozen.**
//! - **Expectations.** What the encoder must write for a given row: text with
//!   NUL replaced by U+FFFD, timestamps floored to whole microseconds and
//!   clamped to PostgreSQL's range, lines clamped to `i32::MAX`, NaN and
//!   the infinities as the JSON strings `"NaN"`, `"Infinity"`, `"-Infinity"`,
//!   integers as their exact digits, finite floats as numbers that parse back
//!   to the same bits. These are derived from the documentation, not from
//!   `src/encode`.
//! - **Checks.** [`copy_encode`] and [`fields_json`] are the fuzz targets'
//!   bodies; they return `Err` with a description instead of panicking, so a
//!   replay can name the failing file. Output is read back with the
//!   independent decoder in `copy_decoder.rs`, which the including crate must
//!   declare at its root as `mod copy_decoder`.

use std::fmt::Write as _;

use bytes::BytesMut;
use ringtrail::encode::copy::CopyEncoder;
use ringtrail::encode::json::write_fields;
use ringtrail::{Field, Row, Value};

use crate::copy_decoder::{
    decode, parse_json, Json, LogRow, COLUMNS, MAX_TS_MICROS, MIN_TS_MICROS, PG_EPOCH_UNIX_MICROS,
};

// ---------------------------------------------------------------------------
// Owned rows
// ---------------------------------------------------------------------------

/// An owned [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    /// [`Value::Bool`].
    Bool(bool),
    /// [`Value::I64`].
    I64(i64),
    /// [`Value::U64`].
    U64(u64),
    /// [`Value::I128`].
    I128(i128),
    /// [`Value::U128`].
    U128(u128),
    /// [`Value::F64`].
    F64(f64),
    /// [`Value::Str`].
    Str(String),
}

impl OwnedValue {
    /// The borrowed [`Value`].
    pub fn as_value(&self) -> Value<'_> {
        match self {
            OwnedValue::Bool(b) => Value::Bool(*b),
            OwnedValue::I64(n) => Value::I64(*n),
            OwnedValue::U64(n) => Value::U64(*n),
            OwnedValue::I128(n) => Value::I128(*n),
            OwnedValue::U128(n) => Value::U128(*n),
            OwnedValue::F64(f) => Value::F64(*f),
            OwnedValue::Str(s) => Value::Str(s),
        }
    }
}

/// An owned [`Row`], field for field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnedRow {
    /// [`Row::ts_unix_nanos`].
    pub ts_unix_nanos: i64,
    /// [`Row::id`].
    pub id: [u8; 16],
    /// [`Row::level`].
    pub level: i16,
    /// [`Row::target`].
    pub target: String,
    /// [`Row::message`].
    pub message: String,
    /// [`Row::fields`], as (name, value) pairs.
    pub fields: Vec<(String, OwnedValue)>,
    /// [`Row::context`].
    pub context: [Option<String>; 6],
    /// [`Row::span_name`].
    pub span_name: Option<String>,
    /// [`Row::file`].
    pub file: Option<String>,
    /// [`Row::line`].
    pub line: Option<u32>,
    /// [`Row::truncated`].
    pub truncated: bool,
    /// [`Row::kind`].
    pub kind: Option<i16>,
    /// [`Row::redacted`].
    pub redacted: u32,
    /// [`Row::seq`].
    pub seq: u64,
}

/// Borrowed [`Field`]s of an owned field list.
pub fn borrow_fields(fields: &[(String, OwnedValue)]) -> Vec<Field<'_>> {
    fields
        .iter()
        .map(|(name, value)| Field {
            name,
            value: value.as_value(),
        })
        .collect()
}

impl OwnedRow {
    /// Calls `f` with this row as a borrowed [`Row`].
    pub fn with_row<R>(&self, f: impl FnOnce(&Row<'_>) -> R) -> R {
        let fields = borrow_fields(&self.fields);
        let row = Row {
            ts_unix_nanos: self.ts_unix_nanos,
            id: self.id,
            level: self.level,
            target: &self.target,
            message: &self.message,
            fields: &fields,
            context: self.context.each_ref().map(|c| c.as_deref()),
            span_name: self.span_name.as_deref(),
            file: self.file.as_deref(),
            line: self.line,
            truncated: self.truncated,
            kind: self.kind,
            redacted: self.redacted,
            seq: self.seq,
        };
        f(&row)
    }
}

// ---------------------------------------------------------------------------
// Input decoding (frozen format: see the module docs)
// ---------------------------------------------------------------------------

/// Strings that tend to break escaping, framing or jsonb: picked by string
/// bytes `0x80..=0xbf` in fuzz inputs, and by the property test.
pub const NASTY: &[&str] = &[
    "\0",
    "\"",
    "\\",
    "\\u0000",
    "\\\"",
    "\u{FFFD}",
    "é",
    "日本",
    "🦀",
    "\u{7f}",
    "\u{80}",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "\u{10ffff}",
    "\u{e000}",
    "\u{d7ff}",
    "\u{fffe}",
    "\u{301}",
    "\r\n",
    "\t",
    "\u{1}",
    "\u{1b}",
    "\u{1f}",
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "\"}",
    "\0\0",
];

/// Timestamps (Unix nanoseconds) around the floor and the epochs.
const TS_EDGES: &[i64] = &[
    0,
    -1,
    -999,
    -1000,
    -1001,
    999,
    1000,
    i64::MIN,
    i64::MAX,
    i64::MIN + 999,
    i64::MAX - 999,
    946_684_800_000_000_000,
    946_684_799_999_999_999,
    1_700_000_000_123_456_789,
];

const LEVEL_EDGES: &[i16] = &[1, 5, 9, 13, 17, 0, -1, i16::MIN, i16::MAX];
const I64_EDGES: &[i64] = &[0, 1, -1, i64::MIN, i64::MAX, i64::MIN + 1];
const U64_EDGES: &[u64] = &[0, 1, u64::MAX, i64::MAX as u64 + 1];
const I128_EDGES: &[i128] = &[
    0,
    -1,
    i128::MIN,
    i128::MAX,
    i64::MIN as i128 - 1,
    u64::MAX as i128 + 1,
    -(u64::MAX as i128) - 1,
];
const U128_EDGES: &[u128] = &[0, u128::MAX, u64::MAX as u128 + 1, i128::MAX as u128 + 1];
const LINE_EDGES: &[u32] = &[0, 1, i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX];

/// Floats that are easy to get wrong.
pub const F64_EDGES: &[f64] = &[
    0.0,
    -0.0,
    f64::NAN,
    -f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    f64::MAX,
    f64::MIN,
    0.1,
    1e16,
    1e21,
    1e-7,
    9_007_199_254_740_993.0,
    123_456_789.123,
    2.225_073_858_507_201e-308, // the largest subnormal
];

/// Reads fuzz input bytes front to back; past the end every read is 0.
#[derive(Debug, Clone)]
pub struct ByteSource<'a> {
    data: &'a [u8],
}

impl<'a> ByteSource<'a> {
    /// A source over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        ByteSource { data }
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.byte();
        }
        out
    }

    /// The low bit of the next byte.
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A selector byte below `edges.len()` picks that edge; any other reads
    /// a raw value with `raw`.
    fn pick<T: Copy>(&mut self, edges: &[T], raw: impl FnOnce(&mut Self) -> T) -> T {
        let sel = usize::from(self.byte());
        match edges.get(sel) {
            Some(&v) => v,
            None => raw(self),
        }
    }

    /// A string: a length byte (`0xf0..` means a further little-endian
    /// `u16`, mod 4096), then up to that many units, stopping early when the
    /// input runs out. A unit byte `< 0x80` is that ASCII character (NUL and
    /// controls included), `0x80..=0xbf` a [`NASTY`] string, and `0xc0..`
    /// a code point from the next three bytes (big-endian, mod 0x110000;
    /// surrogates become U+FFFD).
    pub fn string(&mut self) -> String {
        let mut len = usize::from(self.byte());
        if len >= 0xf0 {
            len = usize::from(u16::from_le_bytes(self.array())) % 4096;
        }
        let mut s = String::new();
        for _ in 0..len {
            if self.is_empty() {
                break;
            }
            match self.byte() {
                b @ 0..=0x7f => s.push(char::from(b)),
                b @ 0x80..=0xbf => s.push_str(NASTY[usize::from(b - 0x80) % NASTY.len()]),
                _ => {
                    let [x, y, z] = self.array();
                    let code = u32::from_be_bytes([0, x, y, z]) % 0x11_0000;
                    s.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                }
            }
        }
        s
    }

    /// An optional string: a flag byte, then [`string`](Self::string).
    pub fn opt_string(&mut self) -> Option<String> {
        self.bool().then(|| self.string())
    }

    /// A field value: a tag byte (mod 7), then the value.
    pub fn value(&mut self) -> OwnedValue {
        match self.byte() % 7 {
            0 => OwnedValue::Bool(self.bool()),
            1 => OwnedValue::I64(self.pick(I64_EDGES, |s| i64::from_le_bytes(s.array()))),
            2 => OwnedValue::U64(self.pick(U64_EDGES, |s| u64::from_le_bytes(s.array()))),
            3 => OwnedValue::I128(self.pick(I128_EDGES, |s| i128::from_le_bytes(s.array()))),
            4 => OwnedValue::U128(self.pick(U128_EDGES, |s| u128::from_le_bytes(s.array()))),
            5 => OwnedValue::F64(
                self.pick(F64_EDGES, |s| f64::from_bits(u64::from_le_bytes(s.array()))),
            ),
            _ => OwnedValue::Str(self.string()),
        }
    }

    /// A field list: a count byte (mod `max + 1`), then name and value pairs.
    pub fn fields(&mut self, max: u8) -> Vec<(String, OwnedValue)> {
        let n = self.byte() % (max + 1);
        (0..n).map(|_| (self.string(), self.value())).collect()
    }

    /// A whole row.
    pub fn row(&mut self) -> OwnedRow {
        // Read in the frozen order: ts, then id.
        let ts_unix_nanos = self.pick(TS_EDGES, |s| i64::from_le_bytes(s.array()));
        let id: [u8; 16] = self.array();
        OwnedRow {
            ts_unix_nanos,
            id,
            // Derived from the id, so the frozen input format (and every
            // corpus file) stays as it was: NULL, or a point's kind 1..=5.
            kind: (!id[15].is_multiple_of(6)).then(|| i16::from(id[15] % 6)),
            // Also from the id: 0, small counts, and past the clamp.
            redacted: u32::from(id[14]) * u32::from(id[13]) * 3,
            // Also from the id: 0 (no sequence number), small, and past
            // `bigint` (clamped).
            seq: match id[12] % 4 {
                0 => 0,
                1 => u64::from(id[11]),
                2 => u64::from_le_bytes([id[4], id[5], id[6], id[7], 0, 0, 0, 0]),
                _ => u64::MAX - u64::from(id[11]),
            },
            level: self.pick(LEVEL_EDGES, |s| i16::from_le_bytes(s.array())),
            target: self.string(),
            message: self.string(),
            fields: self.fields(12),
            context: std::array::from_fn(|_| self.opt_string()),
            span_name: self.opt_string(),
            file: self.opt_string(),
            line: self
                .bool()
                .then(|| self.pick(LINE_EDGES, |s| u32::from_le_bytes(s.array()))),
            truncated: self.bool(),
        }
    }
}

/// A `copy_encode` input: rows and how to batch them.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyInput {
    /// The rows, 1 to 12.
    pub rows: Vec<OwnedRow>,
    /// Bit `i` set: finish the batch after row `i` (the last row always
    /// finishes one).
    pub batch_ends: u16,
    /// Keep every finished batch alive until the end, and check that later
    /// batches never overwrite it; otherwise drop each batch at once, so the
    /// encoder reclaims its buffer.
    pub hold_batches: bool,
    /// Call `finish()` on the fresh encoder first (an empty batch).
    pub empty_finish_first: bool,
    /// Push the first this-many rows (0 to 3), then `clear()` them away.
    pub clear_prefix: usize,
    /// Start from `CopyEncoder::with_capacity(64)` instead of `new()`.
    pub small_capacity: bool,
}

impl CopyInput {
    /// Reads an input: row count byte (mod 12, plus 1), `batch_ends` (two
    /// bytes, little-endian), a flags byte (bit 0 hold, bit 1 empty finish,
    /// bits 2-3 clear prefix, bit 4 small capacity), then the rows.
    pub fn from_bytes(data: &[u8]) -> CopyInput {
        let mut s = ByteSource::new(data);
        let n = 1 + usize::from(s.byte() % 12);
        let batch_ends = u16::from_le_bytes(s.array());
        let flags = s.byte();
        let rows = (0..n).map(|_| s.row()).collect();
        CopyInput {
            rows,
            batch_ends,
            hold_batches: flags & 1 != 0,
            empty_finish_first: flags & 2 != 0,
            clear_prefix: usize::from((flags >> 2) & 3),
            small_capacity: flags & 16 != 0,
        }
    }
}

/// Reads a `fields_json` input: [`ByteSource::fields`] with up to 32 fields.
pub fn fields_input(data: &[u8]) -> Vec<(String, OwnedValue)> {
    ByteSource::new(data).fields(32)
}

// ---------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------

/// Text as stored: every NUL replaced by U+FFFD.
pub fn sanitized(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// The `ts` value for `unix_nanos`: floored to microseconds (towards the
/// past), moved to the 2000-01-01 epoch, clamped to PostgreSQL's range.
pub fn expected_ts_micros(unix_nanos: i64) -> i64 {
    let floor = i128::from(unix_nanos).div_euclid(1000);
    let micros = floor - i128::from(PG_EPOCH_UNIX_MICROS);
    micros.clamp(i128::from(MIN_TS_MICROS), i128::from(MAX_TS_MICROS)) as i64
}

/// The `line` value: above `i32::MAX` clamped to it.
pub fn expected_line(line: Option<u32>) -> Option<i32> {
    line.map(|l| i32::try_from(l).unwrap_or(i32::MAX))
}

/// How `jsonb` text is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonbMode {
    /// Straight from the encoder: members in order, duplicate keys kept,
    /// float zero signs exact.
    Encoder,
    /// Read back from PostgreSQL: `jsonb` keeps the last of duplicate keys
    /// and reorders them; `numeric` has no negative zero, so `-0.0` reads back
    /// as `0`.
    Server,
}

/// Shortens `s` for error messages.
fn short(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

/// Checks one JSON value against the field value it came from.
pub fn check_value(expected: &OwnedValue, got: &Json, mode: JsonbMode) -> Result<(), String> {
    let number = |got: &Json| match got {
        Json::Number(n) => Ok(n.clone()),
        other => Err(format!("expected a number, got {other:?}")),
    };
    let exact_int = |text: String, want: String| {
        if text == want {
            Ok(())
        } else {
            Err(format!("integer {want} came back as {text}"))
        }
    };
    match expected {
        OwnedValue::Bool(b) => match got {
            Json::Bool(g) if g == b => Ok(()),
            other => Err(format!("expected {b}, got {other:?}")),
        },
        OwnedValue::I64(n) => exact_int(number(got)?, n.to_string()),
        OwnedValue::U64(n) => exact_int(number(got)?, n.to_string()),
        OwnedValue::I128(n) => exact_int(number(got)?, n.to_string()),
        OwnedValue::U128(n) => exact_int(number(got)?, n.to_string()),
        OwnedValue::F64(f) if f.is_nan() => expect_string(got, "NaN"),
        OwnedValue::F64(f) if *f == f64::INFINITY => expect_string(got, "Infinity"),
        OwnedValue::F64(f) if *f == f64::NEG_INFINITY => expect_string(got, "-Infinity"),
        OwnedValue::F64(f) => {
            let text = number(got)?;
            // std's parser is correctly rounded: shortest round-trip text
            // must give back the very same bits.
            let back: f64 = text
                .parse()
                .map_err(|e| format!("float text {text:?} does not parse: {e}"))?;
            let same = back.to_bits() == f.to_bits()
                || (mode == JsonbMode::Server && *f == 0.0 && back == 0.0);
            if same {
                Ok(())
            } else {
                Err(format!(
                    "float {f:e} ({:#018x}) came back as {text} = {back:e} ({:#018x})",
                    f.to_bits(),
                    back.to_bits()
                ))
            }
        }
        OwnedValue::Str(s) => expect_string(got, &sanitized(s)),
    }
}

fn expect_string(got: &Json, want: &str) -> Result<(), String> {
    match got {
        Json::String(g) if g == want => Ok(()),
        Json::String(g) => Err(format!("expected string {}, got {}", short(want), short(g))),
        other => Err(format!("expected string {}, got {other:?}", short(want))),
    }
}

/// Checks a parsed `fields` object against the field list it came from.
pub fn check_fields(
    fields: &[(String, OwnedValue)],
    got: &Json,
    mode: JsonbMode,
) -> Result<(), String> {
    let Json::Object(members) = got else {
        return Err(format!("fields is not an object: {got:?}"));
    };
    match mode {
        JsonbMode::Encoder => {
            if members.len() != fields.len() {
                return Err(format!(
                    "{} fields written as {} members",
                    fields.len(),
                    members.len()
                ));
            }
            for (i, ((name, value), (key, got))) in fields.iter().zip(members).enumerate() {
                let want = sanitized(name);
                if *key != want {
                    return Err(format!(
                        "field {i}: key {} written as {}",
                        short(&want),
                        short(key)
                    ));
                }
                check_value(value, got, mode)
                    .map_err(|e| format!("field {i} ({}): {e}", short(key)))?;
            }
        }
        JsonbMode::Server => {
            // Last one wins, keyed by the stored (sanitized) name.
            let mut want: Vec<(String, &OwnedValue)> = Vec::new();
            for (name, value) in fields {
                let key = sanitized(name);
                match want.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => want.push((key, value)),
                }
            }
            if members.len() != want.len() {
                return Err(format!(
                    "{} distinct keys stored as {} members",
                    want.len(),
                    members.len()
                ));
            }
            for (key, value) in &want {
                let hits: Vec<&Json> = members
                    .iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .collect();
                match hits.as_slice() {
                    [got] => check_value(value, got, mode)
                        .map_err(|e| format!("key {}: {e}", short(key)))?,
                    other => {
                        return Err(format!("key {} stored {} times", short(key), other.len()))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks a decoded row against the row that was encoded.
pub fn check_row(expected: &OwnedRow, got: &LogRow, mode: JsonbMode) -> Result<(), String> {
    let mut errors = String::new();
    let mut col = |name: &str, ok: bool, want: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug| {
        if !ok {
            let _ = writeln!(errors, "  {name}: expected {want:?}, got {got:?}");
        }
    };
    let ts = expected_ts_micros(expected.ts_unix_nanos);
    col("ts", got.ts_micros == ts, &ts, &got.ts_micros);
    col("id", got.id == expected.id, &expected.id, &got.id);
    col(
        "level",
        got.level == expected.level,
        &expected.level,
        &got.level,
    );
    let text = |s: &str| sanitized(s);
    let opt = |s: &Option<String>| s.as_deref().map(sanitized);
    let target = text(&expected.target);
    col(
        "target",
        got.target == target,
        &short(&target),
        &short(&got.target),
    );
    let message = text(&expected.message);
    col(
        "message",
        got.message == message,
        &short(&message),
        &short(&got.message),
    );
    // A context id keeps at most 255 bytes, cut on a character boundary,
    // and a cut marks the row truncated (so no id can overflow an index).
    let mut cut_any = false;
    let cut_id = |s: &str| -> String {
        let mut n = s.len().min(255);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s[..n].to_owned()
    };
    for (i, ctx) in expected.context.iter().enumerate() {
        let ctx = ctx.as_deref().map(|s| {
            cut_any |= s.len() > 255;
            cut_id(s)
        });
        let want = opt(&ctx);
        col(
            COLUMNS[6 + i],
            got.context[i] == want,
            &want,
            &got.context[i],
        );
    }
    let span = opt(&expected.span_name);
    col("span_name", got.span_name == span, &span, &got.span_name);
    let file = opt(&expected.file);
    col("file", got.file == file, &file, &got.file);
    let line = expected_line(expected.line);
    col("line", got.line == line, &line, &got.line);
    let truncated = expected.truncated || cut_any;
    col(
        "truncated",
        got.truncated == truncated,
        &truncated,
        &got.truncated,
    );
    col("kind", got.kind == expected.kind, &expected.kind, &got.kind);
    let redacted = i16::try_from(expected.redacted).unwrap_or(i16::MAX);
    col(
        "redacted",
        got.redacted == redacted,
        &redacted,
        &got.redacted,
    );
    let seq = i64::try_from(expected.seq).unwrap_or(i64::MAX);
    col("seq", got.seq == seq, &seq, &got.seq);
    if let Err(e) = check_fields(&expected.fields, &got.fields.value, mode) {
        let _ = writeln!(
            errors,
            "  fields: {e}\n    text: {}",
            short(&got.fields.text)
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

// ---------------------------------------------------------------------------
// The fuzz targets' bodies
// ---------------------------------------------------------------------------

/// Checks that `stream` is one well-formed binary `COPY` batch holding
/// exactly `rows`, as the encoder must have written them.
pub fn verify_stream(rows: &[OwnedRow], stream: &[u8]) -> Result<(), String> {
    let tuples =
        decode(stream, COLUMNS.len()).map_err(|e| format!("stream does not decode: {e}"))?;
    if tuples.len() != rows.len() {
        return Err(format!(
            "{} rows encoded, {} tuples decoded",
            rows.len(),
            tuples.len()
        ));
    }
    for (i, (row, tuple)) in rows.iter().zip(&tuples).enumerate() {
        let got = LogRow::from_tuple(tuple).map_err(|e| format!("row {i}: {e}"))?;
        check_row(row, &got, JsonbMode::Encoder).map_err(|e| format!("row {i}:\n{e}"))?;
    }
    Ok(())
}

/// The `copy_encode` target: rows from `data` through [`CopyEncoder`], each
/// batch checked with [`verify_stream`], plus the encoder's bookkeeping
/// (`rows`, `bytes_len`, `is_empty`, `clear`) and that a batch still held
/// is never changed by later ones.
pub fn copy_encode(data: &[u8]) -> Result<(), String> {
    let input = CopyInput::from_bytes(data);
    run_copy_input(&input)
}

/// [`copy_encode`] on an already decoded input.
pub fn run_copy_input(input: &CopyInput) -> Result<(), String> {
    let mut enc = if input.small_capacity {
        CopyEncoder::with_capacity(64)
    } else {
        CopyEncoder::new()
    };
    if input.empty_finish_first {
        let empty = enc.finish();
        verify_stream(&[], &empty).map_err(|e| format!("empty first batch: {e}"))?;
    }
    let prefix = input.clear_prefix.min(input.rows.len());
    for row in &input.rows[..prefix] {
        row.with_row(|r| enc.push_row(r));
    }
    enc.clear();
    if !enc.is_empty() || enc.rows() != 0 || enc.bytes_len() != 0 {
        return Err(format!("clear() left {enc:?}"));
    }

    let mut held = Vec::new();
    let mut start = 0;
    let last = input.rows.len() - 1;
    for (i, row) in input.rows.iter().enumerate() {
        row.with_row(|r| enc.push_row(r));
        if enc.rows() != i - start + 1 || enc.is_empty() {
            return Err(format!("after row {i} of a batch from {start}: {enc:?}"));
        }
        if i == last || input.batch_ends & (1 << i) != 0 {
            let len = enc.bytes_len();
            let batch = enc.finish();
            if batch.len() != len + 2 {
                return Err(format!(
                    "bytes_len {len} before finish, batch of {}",
                    batch.len()
                ));
            }
            if !enc.is_empty() || enc.bytes_len() != 0 {
                return Err(format!("finish() left {enc:?}"));
            }
            verify_stream(&input.rows[start..=i], &batch)
                .map_err(|e| format!("batch of rows {start}..={i}: {e}"))?;
            if input.hold_batches {
                let copy = batch.to_vec();
                held.push((start, batch, copy));
            }
            start = i + 1;
        }
    }
    for (start, batch, copy) in &held {
        if batch[..] != copy[..] {
            return Err(format!(
                "batch starting at row {start} changed after it was finished"
            ));
        }
    }
    verify_stream(&[], &enc.finish()).map_err(|e| format!("final empty batch: {e}"))
}

/// Checks `write_fields` output `out` for `fields`: UTF-8, no raw control
/// bytes, exactly one JSON object that the strict parser (no `\u0000`, no
/// bare NaN/Infinity) and `serde_json` accept, with every member in order.
pub fn verify_fields_output(fields: &[(String, OwnedValue)], out: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(out).map_err(|e| format!("not UTF-8: {e}"))?;
    if let Some(at) = out.iter().position(|&b| b < 0x20) {
        return Err(format!(
            "raw control byte {:#04x} at {at} in {}",
            out[at],
            short(text)
        ));
    }
    let json = parse_json(text).map_err(|e| format!("{e:?} in {}", short(text)))?;
    let serde: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("serde_json refuses {}: {e}", short(text)))?;
    // serde_json keeps the last of duplicate keys, like jsonb: the key sets
    // must agree.
    let object = serde.as_object().ok_or("serde_json: not an object")?;
    let mut names: Vec<String> = fields.iter().map(|(n, _)| sanitized(n)).collect();
    names.sort();
    names.dedup();
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort();
    if names.iter().collect::<Vec<_>>() != keys {
        return Err(format!("serde_json keys {keys:?}, expected {names:?}"));
    }
    check_fields(fields, &json, JsonbMode::Encoder)
        .map_err(|e| format!("{e}\n  text: {}", short(text)))
}

/// The `fields_json` target: a field list from `data` through
/// `write_fields`, into a `Vec<u8>` and a `BytesMut` (same bytes), checked
/// with [`verify_fields_output`].
pub fn fields_json(data: &[u8]) -> Result<(), String> {
    let owned = fields_input(data);
    let fields = borrow_fields(&owned);
    let mut out = Vec::new();
    write_fields(&mut out, &fields);
    let mut buf = BytesMut::new();
    write_fields(&mut buf, &fields);
    if buf[..] != out[..] {
        return Err("Vec<u8> and BytesMut got different bytes".to_owned());
    }
    verify_fields_output(&owned, &out)
}
