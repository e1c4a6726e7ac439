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
}
