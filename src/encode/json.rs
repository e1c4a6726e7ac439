//! A JSON text writer whose output PostgreSQL's `jsonb` always accepts.
//!
//! Plain JSON is not quite enough for `jsonb`: the server refuses the escape
//! `\u0000` (it cannot store NUL in text), and NaN and the infinities are
//! not JSON numbers at all. One such value in one row would fail the whole
//! `COPY` batch, so this writer maps them while writing:
//!
//! | input | written as | why |
//! |---|---|---|
//! | NUL (`'\0'`) inside a string | U+FFFD `�`, raw UTF-8 | jsonb rejects `\u0000`; the replacement character marks where the byte was |
//! | other control characters `< 0x20` | `\n` `\r` `\t` `\b` `\f`, else `\u00XX` | JSON forbids them raw |
//! | `f64::NAN` | the string `"NaN"` | not a JSON number |
//! | `f64::INFINITY` | the string `"Infinity"` | not a JSON number |
//! | `f64::NEG_INFINITY` | the string `"-Infinity"` | not a JSON number |
//! | finite `f64` | shortest round-trip form from [`ryu`], e.g. `1.0`, `1e300`, `-0.0` | valid JSON, exact |
//! | `i128`/`u128` | all digits | jsonb numbers are `numeric`, which holds them exactly |
//!
//! The three float strings were chosen because PostgreSQL's `float8` input
//! spells them the same way, so a query gets the number back with a cast:
//! `(fields->>'latency')::float8` works for every value this writer emits,
//! finite or not. (A `jsonb` number would lose that; `null` would lose the
//! value.)
//!
//! Everything is written straight into a [`bytes::BufMut`]: no `String`, no
//! `format!`, no allocation per call. Integers go through [`itoa`] and floats
//! through [`ryu`], both of which format into a stack buffer. Escaping scans
//! the string once with a lookup table and copies each run of plain bytes
//! with one `put_slice`. The buffer must be able to grow (`Vec<u8>`,
//! [`bytes::BytesMut`]); a fixed-size `&mut [u8]` panics when it is full.
//!
//! ```
//! use ringtrail::encode::json::write_fields;
//! use ringtrail::{Field, Value};
//!
//! let fields = [
//!     Field { name: "user", value: Value::Str("ada\n") },
//!     Field { name: "latency", value: Value::F64(f64::NAN) },
//!     Field { name: "ok", value: Value::Bool(true) },
//! ];
//! let mut out = Vec::new();
//! write_fields(&mut out, &fields);
//! assert_eq!(out, br#"{"user":"ada\n","latency":"NaN","ok":true}"#);
//! ```
//!
//! Field names are written as given, so a repeated name gives an object with
//! a repeated key; `jsonb` keeps the last one.

use std::cmp::Ordering;

use bytes::BufMut;

use crate::row::{Field, Value};

/// UTF-8 encoding of U+FFFD REPLACEMENT CHARACTER (`EF BF BD`), written in
/// place of NUL.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Table entry: the byte needs no escaping.
const PLAIN: u8 = 0;
/// Table entry: NUL, replaced by U+FFFD.
const NUL: u8 = 1;
/// Table entry: a control character written as `\u00XX`.
const UNICODE: u8 = b'u';

/// What to do with each byte of a string: [`PLAIN`], [`NUL`], [`UNICODE`],
/// or the character that follows the backslash (`"`, `\`, `n`, ...).
/// Bytes `>= 0x80` are always plain: they are parts of multibyte UTF-8
/// characters, which JSON allows raw, and never equal an ASCII byte, so a
/// run never ends inside a character.
static ESCAPE: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = UNICODE;
        i += 1;
    }
    t[0x00] = NUL;
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a quoted JSON string.
///
/// `"` and `\` are backslash-escaped; `\n`, `\r`, `\t`, `\b` and `\f` use
/// their short escapes; the other control characters below 0x20 become
/// `\u00XX`, except NUL, which becomes U+FFFD (never `\u0000`, which `jsonb`
/// rejects). Everything else, multibyte characters included, is copied
/// unchanged, in runs.
///
/// ```
/// let mut out = Vec::new();
/// ringtrail::encode::json::write_str(&mut out, "say \"hi\"\0\u{1}é");
/// assert_eq!(out, "\"say \\\"hi\\\"\u{FFFD}\\u0001é\"".as_bytes());
/// ```
#[inline]
pub fn write_str<B: BufMut>(out: &mut B, s: &str) {
    let bytes = s.as_bytes();
    out.put_u8(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let action = ESCAPE[b as usize];
        if action == PLAIN {
            continue;
        }
        if start < i {
            out.put_slice(&bytes[start..i]);
        }
        match action {
            NUL => out.put_slice(REPLACEMENT),
            UNICODE => out.put_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
            short => out.put_slice(&[b'\\', short]),
        }
        start = i + 1;
    }
    if start < bytes.len() {
        out.put_slice(&bytes[start..]);
    }
    out.put_u8(b'"');
}

/// Writes one field value as JSON.
///
/// Integers of every width are written in full with [`itoa`]; finite floats
/// in their shortest round-trip form with [`ryu`]; NaN, `+inf` and `-inf`
/// as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (see the
/// [module docs](self) for why); strings with [`write_str`].
///
/// ```
/// use ringtrail::encode::json::write_value;
/// use ringtrail::Value;
///
/// let mut out = Vec::new();
/// write_value(&mut out, &Value::I128(i128::MIN));
/// out.push(b' ');
/// write_value(&mut out, &Value::F64(f64::NEG_INFINITY));
/// out.push(b' ');
/// write_value(&mut out, &Value::F64(2.5));
/// assert_eq!(out, br#"-170141183460469231731687303715884105728 "-Infinity" 2.5"#);
/// ```
#[inline]
pub fn write_value<B: BufMut>(out: &mut B, v: &Value<'_>) {
    match *v {
        Value::Bool(b) => out.put_slice(if b { b"true" } else { b"false" }),
        Value::I64(n) => out.put_slice(itoa::Buffer::new().format(n).as_bytes()),
        Value::U64(n) => out.put_slice(itoa::Buffer::new().format(n).as_bytes()),
        Value::I128(n) => out.put_slice(itoa::Buffer::new().format(n).as_bytes()),
        Value::U128(n) => out.put_slice(itoa::Buffer::new().format(n).as_bytes()),
        // Checked and written in this encoder's form when it was pushed.
        Value::Json(text) => out.put_slice(text.as_bytes()),
        Value::F64(f) => {
            if f.is_finite() {
                // ryu always writes a JSON-valid number: a digit before any
                // '.', an exponent without '+', and no "inf"/"NaN".
                out.put_slice(ryu::Buffer::new().format_finite(f).as_bytes());
            } else if f.is_nan() {
                out.put_slice(b"\"NaN\"");
            } else if f > 0.0 {
                out.put_slice(b"\"Infinity\"");
            } else {
                out.put_slice(b"\"-Infinity\"");
            }
        }
        Value::Str(s) => write_str(out, s),
    }
}

/// Writes `fields` as one JSON object, `{"name":value,...}`, in order.
///
/// Names are escaped like any string. No fields give `{}`.
///
/// ```
/// use ringtrail::encode::json::write_fields;
/// use ringtrail::{Field, Value};
///
/// let mut out = Vec::new();
/// write_fields(&mut out, &[]);
/// assert_eq!(out, b"{}");
///
/// out.clear();
/// write_fields(&mut out, &[Field { name: "n", value: Value::I64(-1) }]);
/// assert_eq!(out, br#"{"n":-1}"#);
/// ```
#[inline]
pub fn write_fields<B: BufMut>(out: &mut B, fields: &[Field<'_>]) {
    out.put_u8(b'{');
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        write_str(out, field.name);
        out.put_u8(b':');
        write_value(out, &field.value);
    }
    out.put_u8(b'}');
}

/// Writes `fields` as one JSON object in the member order of RFC 8785
/// (JCS): sorted by the UTF-16 code units of their names as stored (NUL
/// read as U+FFFD), a repeated name once, with its last value. `jsonb`
/// stores the same object either way (it sorts its keys and keeps a
/// repeated key's last value), so the table cannot tell; the chain can:
/// with its member order settled, the object usually already is the
/// canonical JSON the chain hashes (`chain::json`),
/// and the tuple needs no second pass.
///
/// Returns `true` when the object is canonical as written: every number
/// in canonical spelling. Integers always are, and so are floats except
/// the integral ones (`1.0`) and those ryu writes with an exponent.
///
/// `order` is scratch space: pass the same `Vec` every time and this
/// allocates nothing once it has grown to the widest row.
///
/// ```
/// use ringtrail::encode::json::write_fields_sorted;
/// use ringtrail::{Field, Value};
///
/// let fields = [
///     Field { name: "b", value: Value::F64(1.5) },
///     Field { name: "a", value: Value::I64(1) },
///     Field { name: "b", value: Value::Str("last") },
/// ];
/// let mut out = Vec::new();
/// assert!(write_fields_sorted(&mut out, &fields, &mut Vec::new()));
/// assert_eq!(out, br#"{"a":1,"b":"last"}"#);
///
/// out.clear();
/// let integral = [Field { name: "x", value: Value::F64(2.0) }];
/// assert!(!write_fields_sorted(&mut out, &integral, &mut Vec::new()));
/// assert_eq!(out, br#"{"x":2.0}"#, "the value is stored as written");
/// ```
pub fn write_fields_sorted<B: BufMut>(
    out: &mut B,
    fields: &[Field<'_>],
    order: &mut Vec<u32>,
) -> bool {
    write_members_sorted(out, fields, order, |out, value| match *value {
        Value::F64(f) if f.is_finite() => {
            let mut buf = ryu::Buffer::new();
            let text = buf.format_finite(f).as_bytes();
            out.put_slice(text);
            // Without an exponent ryu's fraction never ends in 0 except
            // for the `.0` of an integral value.
            !text.contains(&b'e') && !text.ends_with(b".0")
        }
        _ => {
            write_value(out, value);
            true
        }
    })
}

/// The one member-order walk behind [`write_fields_sorted`] and the
/// chain's canonical `fields` ([`chain::json::write_fields`](crate::chain::json::write_fields)):
/// names through [`write_str`], each kept value through `value`, which
/// says whether it wrote the value's canonical spelling. Returns `true`
/// when every call did.
pub(crate) fn write_members_sorted<B: BufMut>(
    out: &mut B,
    fields: &[Field<'_>],
    order: &mut Vec<u32>,
    mut value: impl FnMut(&mut B, &Value<'_>) -> bool,
) -> bool {
    order.clear();
    order.extend(0..fields.len() as u32);
    let name = |i: u32| fields[i as usize].name;
    // Strictly ascending names need no sort and repeat none.
    let sorted = order
        .windows(2)
        .all(|w| cmp_names(name(w[0]), name(w[1]), true) == Ordering::Less);
    if !sorted {
        // Unstable sort (no allocation) made stable by the index, so a
        // repeated name's last value comes last.
        order.sort_unstable_by(|&a, &b| cmp_names(name(a), name(b), true).then(a.cmp(&b)));
    }
    let mut canonical = true;
    out.put_u8(b'{');
    let mut first = true;
    for (k, &i) in order.iter().enumerate() {
        if let Some(&next) = order.get(k + 1).filter(|_| !sorted) {
            if cmp_names(name(i), name(next), true) == Ordering::Equal {
                continue;
            }
        }
        if !first {
            out.put_u8(b',');
        }
        first = false;
        write_str(out, name(i));
        out.put_u8(b':');
        canonical &= value(out, &fields[i as usize].value);
    }
    out.put_u8(b'}');
    canonical
}

/// `c` as the encoder stores it: NUL becomes U+FFFD.
#[inline]
fn stored_char(c: char) -> char {
    if c == '\0' {
        '\u{FFFD}'
    } else {
        c
    }
}

/// The UTF-16 code units of `c`.
#[inline]
fn utf16_units(c: char) -> impl Iterator<Item = u16> {
    let mut buf = [0u16; 2];
    let n = c.encode_utf16(&mut buf).len();
    buf.into_iter().take(n)
}

/// Compares two member names by UTF-16 code units, as JCS sorts them,
/// after mapping NUL to U+FFFD when `nul_mapped` (a name as the encoder
/// writes it; a name read back from `jsonb` never holds NUL).
#[inline]
pub(crate) fn cmp_names(a: &str, b: &str, nul_mapped: bool) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    // Most names already differ in their first byte.
    if let (Some(&p), Some(&q)) = (x.first(), y.first()) {
        if p != q && p != 0 && q != 0 && p < 0xEE && q < 0xEE {
            return p.cmp(&q);
        }
    }
    let same = x.iter().zip(y).take_while(|(p, q)| p == q).count();
    // Where the names first differ, UTF-8 byte order is UTF-16 code unit
    // order unless a byte there is NUL (mapped) or the lead byte of a
    // character at or above U+E000 (where UTF-16 puts the BMP's last
    // characters after the surrogate pairs). Names that differ only past
    // a common character at or above U+E000 compare alike either way.
    match (x.get(same), y.get(same)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(&p), Some(&q)) if p != 0 && q != 0 && p < 0xEE && q < 0xEE => p.cmp(&q),
        _ => {
            let map = |c: char| if nul_mapped { stored_char(c) } else { c };
            a.chars()
                .map(map)
                .flat_map(utf16_units)
                .cmp(b.chars().map(map).flat_map(utf16_units))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn str_json(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).expect("write_str emits UTF-8")
    }

    fn value_json(v: Value<'_>) -> String {
        let mut out = Vec::new();
        write_value(&mut out, &v);
        String::from_utf8(out).expect("write_value emits UTF-8")
    }

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"))
    }

    #[test]
    fn plain_string_is_quoted_unchanged() {
        assert_eq!(str_json(""), r#""""#);
        assert_eq!(str_json("hello world"), r#""hello world""#);
        assert_eq!(str_json("/path/é/日本/🦀"), "\"/path/é/日本/🦀\"");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(str_json(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(str_json(r#""\"#), r#""\"\\""#);
        assert_eq!(parse(&str_json(r#"x"y\z"#)), r#"x"y\z"#);
    }

    #[test]
    fn short_escapes() {
        assert_eq!(
            str_json("\n\r\t\u{8}\u{c}"),
            r#""\n\r\t\b\f""#,
            "newline, return, tab, backspace, form feed"
        );
    }

    #[test]
    fn every_control_char_round_trips_and_nul_becomes_replacement() {
        for b in 0u8..0x20 {
            let s = format!("a{}b", b as char);
            let text = str_json(&s);
            assert!(!text.contains("\\u0000"), "{text}");
            assert!(
                !text.bytes().any(|c| c < 0x20),
                "raw control char in {text:?}"
            );
            let expected = if b == 0 { "a\u{FFFD}b".to_owned() } else { s };
            assert_eq!(parse(&text), expected.as_str(), "byte {b:#04x}");
        }
        assert_eq!(str_json("\u{1}\u{1f}"), r#""\u0001\u001f""#);
        assert_eq!(str_json("\u{b}"), r#""\u000b""#);
        // DEL and C1 controls are legal raw in JSON.
        assert_eq!(str_json("\u{7f}\u{85}"), "\"\u{7f}\u{85}\"");
    }

    #[test]
    fn nul_runs_and_edges() {
        assert_eq!(str_json("\0"), "\"\u{FFFD}\"");
        assert_eq!(str_json("\0\0x\0"), "\"\u{FFFD}\u{FFFD}x\u{FFFD}\"");
    }

    #[test]
    fn mixed_string_round_trips_through_serde() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        let s = format!("{all_controls}\"q\" \\b\\ é 日本語 🦀 end\0");
        let text = str_json(&s);
        assert!(!text.contains("\\u0000"));
        assert_eq!(parse(&text), s.replace('\0', "\u{FFFD}").as_str());
    }

    #[test]
    fn bools() {
        assert_eq!(value_json(Value::Bool(true)), "true");
        assert_eq!(value_json(Value::Bool(false)), "false");
    }

    #[test]
    fn integers_exact_text() {
        assert_eq!(value_json(Value::I64(0)), "0");
        assert_eq!(value_json(Value::I64(-42)), "-42");
        assert_eq!(value_json(Value::I64(i64::MIN)), "-9223372036854775808");
        assert_eq!(value_json(Value::I64(i64::MAX)), "9223372036854775807");
        assert_eq!(value_json(Value::U64(u64::MAX)), "18446744073709551615");
        assert_eq!(
            value_json(Value::I128(i128::MIN)),
            "-170141183460469231731687303715884105728"
        );
        assert_eq!(
            value_json(Value::I128(i128::MAX)),
            "170141183460469231731687303715884105727"
        );
        assert_eq!(
            value_json(Value::U128(u128::MAX)),
            "340282366920938463463374607431768211455"
        );
        assert_eq!(parse(&value_json(Value::I64(i64::MIN))), i64::MIN);
        assert_eq!(parse(&value_json(Value::U64(u64::MAX))), u64::MAX);
    }

    #[test]
    fn finite_floats_are_json_numbers() {
        assert_eq!(value_json(Value::F64(1.0)), "1.0");
        assert_eq!(value_json(Value::F64(-0.0)), "-0.0");
        assert_eq!(value_json(Value::F64(1e300)), "1e300");
        assert_eq!(value_json(Value::F64(0.1)), "0.1");
        for f in [
            0.0,
            -0.0,
            1.5,
            -2.25,
            0.1,
            1e300,
            1e-300,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            123_456_789.123,
        ] {
            let text = value_json(Value::F64(f));
            let back = parse(&text).as_f64().expect("a number");
            assert_eq!(back.to_bits(), f.to_bits(), "{f} written as {text}");
        }
    }

    #[test]
    fn non_finite_floats_are_strings() {
        assert_eq!(value_json(Value::F64(f64::NAN)), r#""NaN""#);
        assert_eq!(value_json(Value::F64(-f64::NAN)), r#""NaN""#);
        assert_eq!(value_json(Value::F64(f64::INFINITY)), r#""Infinity""#);
        assert_eq!(value_json(Value::F64(f64::NEG_INFINITY)), r#""-Infinity""#);
        // ...and Rust (like PostgreSQL's float8 input) reads them back.
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let s = parse(&value_json(Value::F64(f)));
            let back: f64 = s.as_str().expect("a string").parse().expect("a float");
            assert!(back.to_bits() == f.to_bits() || (f.is_nan() && back.is_nan()));
        }
    }

    #[test]
    fn str_values_are_escaped() {
        assert_eq!(value_json(Value::Str("a\"\0")), "\"a\\\"\u{FFFD}\"");
    }

    #[test]
    fn empty_object() {
        let mut out = Vec::new();
        write_fields(&mut out, &[]);
        assert_eq!(out, b"{}");
    }

    #[test]
    fn object_with_every_kind_parses() {
        let fields = [
            Field {
                name: "b",
                value: Value::Bool(true),
            },
            Field {
                name: "i",
                value: Value::I64(-7),
            },
            Field {
                name: "u",
                value: Value::U64(u64::MAX),
            },
            Field {
                name: "f",
                value: Value::F64(2.5),
            },
            Field {
                name: "nan",
                value: Value::F64(f64::NAN),
            },
            Field {
                name: "s",
                value: Value::Str("line\nnext\0"),
            },
            Field {
                name: "we\"ird\nname\0",
                value: Value::I64(1),
            },
        ];
        let mut out = Vec::new();
        write_fields(&mut out, &fields);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("\\u0000"));
        assert_eq!(
            parse(&text),
            serde_json::json!({
                "b": true,
                "i": -7,
                "u": u64::MAX,
                "f": 2.5,
                "nan": "NaN",
                "s": "line\nnext\u{FFFD}",
                "we\"ird\nname\u{FFFD}": 1,
            })
        );
    }

    #[test]
    fn object_with_128_bit_ints_exact_text() {
        let fields = [
            Field {
                name: "min",
                value: Value::I128(i128::MIN),
            },
            Field {
                name: "max",
                value: Value::U128(u128::MAX),
            },
        ];
        let mut out = Vec::new();
        write_fields(&mut out, &fields);
        assert_eq!(
            out,
            br#"{"min":-170141183460469231731687303715884105728,"max":340282366920938463463374607431768211455}"#
        );
    }

    #[test]
    fn writes_into_bytes_mut_too() {
        let mut buf = bytes::BytesMut::new();
        write_fields(
            &mut buf,
            &[Field {
                name: "k",
                value: Value::Str("v"),
            }],
        );
        assert_eq!(&buf[..], br#"{"k":"v"}"#);
    }

    /// `cmp_names`' byte shortcut agrees with comparing UTF-16 code units
    /// outright, on names built from characters on both sides of every
    /// boundary that matters (NUL, U+E000, U+FFFD, the surrogate pairs).
    #[test]
    fn name_order_is_utf16_order() {
        let pool = [
            '\0',
            'a',
            'b',
            'é',
            '\u{7ff}',
            '\u{d7ff}',
            '\u{e000}',
            '\u{e001}',
            '\u{fffd}',
            '\u{ffff}',
            '\u{10000}',
            '\u{10001}',
            '\u{1f980}',
        ];
        let mut rng = crate::ids::Xorshift::new(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next_u64();
        let name = |next: &mut dyn FnMut() -> u64| -> String {
            let len = next() % 4;
            (0..len)
                .map(|_| pool[(next() % pool.len() as u64) as usize])
                .collect()
        };
        for _ in 0..20_000 {
            let a = name(&mut next);
            let b = name(&mut next);
            for nul_mapped in [false, true] {
                let map = |c: char| {
                    if nul_mapped && c == '\0' {
                        '\u{fffd}'
                    } else {
                        c
                    }
                };
                let units = |s: &str| {
                    s.chars()
                        .map(map)
                        .collect::<String>()
                        .encode_utf16()
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    cmp_names(&a, &b, nul_mapped),
                    units(&a).cmp(&units(&b)),
                    "{a:?} vs {b:?}, NUL mapped: {nul_mapped}"
                );
            }
        }
    }

    #[test]
    fn sorted_fields_are_jcs_order_with_the_last_value() {
        let fields = [
            Field {
                name: "\u{1f980}",
                value: Value::I64(1),
            },
            Field {
                name: "\u{fffd}",
                value: Value::I64(2),
            },
            Field {
                name: "b",
                value: Value::F64(1e-7),
            },
            Field {
                name: "\0",
                value: Value::I64(3),
            },
            Field {
                name: "b",
                value: Value::Bool(false),
            },
        ];
        let mut out = Vec::new();
        // NUL and U+FFFD are one name once stored: the later value stays.
        assert!(write_fields_sorted(&mut out, &fields, &mut Vec::new()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"b\":false,\"\u{1f980}\":1,\"\u{fffd}\":3}"
        );
        let mut out = Vec::new();
        assert!(!write_fields_sorted(
            &mut out,
            &fields[2..3],
            &mut Vec::new()
        ));
        assert_eq!(out, br#"{"b":1e-7}"#);
    }
}
