//! Canonical JSON for the `fields` column, computed two ways that agree:
//! from a writer-side `&[Field]` ([`write_fields`]) and from the text
//! PostgreSQL prints for the stored `jsonb` ([`write_stored`]).
//!
//! The form is RFC 8785 (JCS) except for numbers:
//!
//! - no whitespace;
//! - object members sorted by their names' UTF-16 code units (JCS §3.2.3),
//!   each name once (a repeated name keeps its last value, as `jsonb` does);
//! - strings escaped as JCS (ECMAScript `JSON.stringify`) does: `\"`, `\\`,
//!   `\b` `\t` `\n` `\f` `\r`, the other controls below U+0020 as `\u00xx`
//!   (lower-case hex), everything else as raw UTF-8;
//! - numbers as their exact value in plain decimal
//!   ([`number`](super::number) says why not JCS's IEEE-double form);
//! - `true`, `false`, `null`.
//!
//! The writer side applies the binary COPY encoder's mappings first (see
//! [`encode::json`](crate::encode::json)): NUL in a name or a string is
//! U+FFFD; NaN, `inf` and `-inf` are the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"`; integers of every width are exact; finite floats are
//! ryu's shortest round-trip digits, whose exact value `numeric` keeps.
//!
//! ```ignore
//! use ringtrail::chain::json::{write_fields, write_stored};
//! use ringtrail::{Field, Value};
//!
//! let fields = [
//!     Field { name: "zeta", value: Value::F64(1e15) },
//!     Field { name: "a\0", value: Value::F64(f64::NAN) },
//!     Field { name: "zeta", value: Value::F64(-0.0) },
//! ];
//! let (mut from_row, mut from_table) = (Vec::new(), Vec::new());
//! write_fields(&mut from_row, &fields, &mut Vec::new());
//! // What PostgreSQL prints for that row's jsonb:
//! assert!(write_stored(&mut from_table, r#"{"a�": "NaN", "zeta": 0.0}"#));
//! assert_eq!(from_row, from_table);
//! assert_eq!(from_row, r#"{"a�":"NaN","zeta":0}"#.as_bytes());
//! ```

use super::number::write_canonical_number;
// Strings: JCS escapes exactly what the encoder escapes, the same way
// (NUL aside: `write_stored_str`).
use crate::encode::json::{cmp_names, write_members_sorted, write_str};
use crate::row::{Field, Value};

/// How deep [`write_stored`] follows nested arrays and objects (ringtrail
/// writes none; only an edited row has them).
pub const MAX_DEPTH: usize = 256;

/// A string read back from stored JSON, as JCS writes it. `jsonb` never
/// holds NUL, but the JSON of a tuple kept as bytes (a dead letter) could
/// be edited to: it stays `\u0000`, apart from the U+FFFD the encoder
/// writes for NUL.
fn write_stored_str(out: &mut Vec<u8>, s: &str) {
    if !s.contains('\0') {
        return write_str(out, s);
    }
    out.push(b'"');
    for (i, part) in s.split('\0').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\u0000");
        }
        let at = out.len();
        write_str(out, part);
        // Only the escaped text, without the quotes around it.
        out.remove(at);
        out.pop();
    }
    out.push(b'"');
}

/// Writes a finite float's canonical form from ryu's shortest digits.
#[inline]
fn write_f64(out: &mut Vec<u8>, f: f64) {
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(f).as_bytes();
    // Without an exponent ryu writes plain decimal whose fraction has no
    // trailing zero, except the `.0` of an integral value: canonical once
    // that `.0` (and the sign of zero) is gone.
    if !text.contains(&b'e') {
        match text {
            b"-0.0" | b"0.0" => out.push(b'0'),
            [int @ .., b'.', b'0'] => out.extend_from_slice(int),
            _ => out.extend_from_slice(text),
        }
        return;
    }
    // ryu's output is always a JSON number.
    let _ = write_canonical_number(out, text);
}

/// Writes one writer-side value in canonical form.
fn write_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match *v {
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::I64(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        Value::U64(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        Value::I128(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        Value::U128(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        Value::F64(f) if f.is_finite() => write_f64(out, f),
        Value::F64(f) if f.is_nan() => out.extend_from_slice(b"\"NaN\""),
        Value::F64(f) if f > 0.0 => out.extend_from_slice(b"\"Infinity\""),
        Value::F64(_) => out.extend_from_slice(b"\"-Infinity\""),
        Value::Str(s) => write_str(out, s),
        // The encoder stores it as it stands; its canonical form is the
        // stored form's. `Ingest` wrote it, so it is JSON.
        Value::Json(text) => {
            let _ = write_stored(out, text);
        }
    }
}

/// Writes the canonical JSON of `fields` as the `fields` column stores
/// them (see the [module docs](self)) into `out`.
///
/// `order` is scratch space: pass the same `Vec` for every row and this
/// allocates nothing once it has grown to the widest row.
pub fn write_fields(out: &mut Vec<u8>, fields: &[Field<'_>], order: &mut Vec<u32>) {
    write_members_sorted(out, fields, order, |out, value| {
        write_value(out, value);
        true
    });
}

/// One member of an object the encoder wrote, as byte offsets into its
/// text: the name (inside its quotes) and the value.
pub type MemberSpan = [u32; 4];

/// Writes the canonical JSON of `json`, an object exactly as ringtrail's
/// encoder writes it ([`encode::json::write_fields`](crate::encode::json::write_fields)),
/// into `out`, without formatting any value again: the members are sorted
/// and deduplicated as byte ranges, strings and literals are copied (the
/// encoder escapes exactly as JCS does, NUL already mapped), and only a
/// number that is not yet in its canonical spelling (`1.0`, `1e-7`, `-0.0`)
/// is rewritten.
///
/// Returns `false`, with `out` possibly holding part of an answer, for
/// anything off that path: whitespace, nesting, an escape or a byte at or
/// above `0xEE` in a name (whose UTF-16 order may differ from byte order),
/// or text that is not JSON. [`write_stored`] handles those; for what it
/// accepts, this writes what [`write_stored`] would.
///
/// `members` is scratch space, as for [`write_fields`].
///
/// ```ignore
/// use ringtrail::chain::json::{write_encoded, write_stored};
///
/// let json = r#"{"zeta":1.0,"alpha":"x\n","zeta":2.5e-3,"ok":true}"#;
/// let (mut fast, mut full) = (Vec::new(), Vec::new());
/// assert!(write_encoded(&mut fast, json.as_bytes(), &mut Vec::new()));
/// assert!(write_stored(&mut full, json));
/// assert_eq!(fast, full);
/// assert_eq!(fast, br#"{"alpha":"x\n","ok":true,"zeta":0.0025}"#);
/// assert!(!write_encoded(&mut Vec::new(), br#"{"a": 1}"#, &mut Vec::new()));
/// ```
pub fn write_encoded(out: &mut Vec<u8>, json: &[u8], members: &mut Vec<MemberSpan>) -> bool {
    members.clear();
    let n = json.len();
    if n < 2 || json[0] != b'{' || json[n - 1] != b'}' || n > u32::MAX as usize {
        return false;
    }
    if n == 2 {
        out.extend_from_slice(b"{}");
        return true;
    }
    let mut at = 1;
    loop {
        if json.get(at) != Some(&b'"') {
            return false;
        }
        let name = at + 1;
        let Some(len) = json[name..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || !(0x20..0xEE).contains(&b))
        else {
            return false;
        };
        let name_end = name + len;
        if json[name_end] != b'"' || json.get(name_end + 1) != Some(&b':') {
            return false;
        }
        let value = name_end + 2;
        let value_end = match json.get(value) {
            Some(b'"') => {
                let mut i = value + 1;
                loop {
                    match json.get(i) {
                        Some(b'"') => break i + 1,
                        Some(b'\\') => match jcs_escape_len(&json[i..]) {
                            Some(len) => i += len,
                            None => return false,
                        },
                        Some(&b) if b < 0x20 => return false,
                        Some(_) => i += 1,
                        None => return false,
                    }
                }
            }
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                match json[value..].iter().position(|&b| b == b',' || b == b'}') {
                    Some(len) => value + len,
                    None => return false,
                }
            }
            _ => return false,
        };
        members.push([name as u32, name_end as u32, value as u32, value_end as u32]);
        match json.get(value_end) {
            Some(b',') => at = value_end + 1,
            Some(b'}') if value_end == n - 1 => break,
            _ => return false,
        }
    }
    let name_of = |m: &MemberSpan| &json[m[0] as usize..m[1] as usize];
    // Names without bytes at or above 0xEE sort by UTF-16 code units
    // exactly as by bytes. The encoder writes members in the call site's
    // order; the sort is unstable (no allocation) and made stable by the
    // offsets, so a repeated name's last value comes last.
    if !members.windows(2).all(|w| name_of(&w[0]) < name_of(&w[1])) {
        members.sort_unstable_by(|a, b| name_of(a).cmp(name_of(b)).then(a[0].cmp(&b[0])));
    }
    out.push(b'{');
    let mut first = true;
    for (k, m) in members.iter().enumerate() {
        if let Some(next) = members.get(k + 1) {
            if name_of(m) == name_of(next) {
                continue;
            }
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // `"name":` as written.
        out.extend_from_slice(&json[m[0] as usize - 1..m[1] as usize + 2]);
        let value = &json[m[2] as usize..m[3] as usize];
        match value[0] {
            b'"' => out.extend_from_slice(value),
            b't' | b'f' | b'n' => {
                if !matches!(value, b"true" | b"false" | b"null") {
                    return false;
                }
                out.extend_from_slice(value);
            }
            _ if is_canonical_number(value) => out.extend_from_slice(value),
            _ => {
                if !write_canonical_number(out, value) {
                    return false;
                }
            }
        }
    }
    out.push(b'}');
    true
}

/// The length of the escape at the start of `s` when it is one JCS
/// writes itself (so the string can be copied as it is): a short escape,
/// or `\u00xx` in lower-case hex for a control character without one.
fn jcs_escape_len(s: &[u8]) -> Option<usize> {
    match s.get(1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let [b'0', b'0', hi @ (b'0' | b'1'), lo] = *s.get(2..6)? else {
                return None;
            };
            let lo = match lo {
                b'0'..=b'9' => lo - b'0',
                b'a'..=b'f' => lo - b'a' + 10,
                _ => return None,
            };
            let code = (hi - b'0') * 16 + lo;
            // NUL is never written; these five have short forms.
            (!matches!(code, 0x00 | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)).then_some(6)
        }
        _ => None,
    }
}

/// True when `text` already is a number in canonical spelling (see
/// [`number`](super::number)): an optional `-` on a non-zero value, integer
/// digits without a leading zero, and a fraction only when it does not end
/// in `0`. What `itoa` writes always is; what `ryu` writes is unless it
/// has an exponent or is integral (`1.0`).
fn is_canonical_number(text: &[u8]) -> bool {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    let (int, frac) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    let int_ok =
        !int.is_empty() && int.iter().all(u8::is_ascii_digit) && (int.len() == 1 || int[0] != b'0');
    let frac_ok = match frac {
        None => true,
        Some(f) => !f.is_empty() && f.iter().all(u8::is_ascii_digit) && f[f.len() - 1] != b'0',
    };
    // A canonical fraction is never zero, so only `-0` is a negative zero.
    int_ok && frac_ok && !(negative && int == b"0" && frac.is_none())
}

/// Writes the canonical JSON of `text`, a `jsonb` value as PostgreSQL
/// prints it (any JSON, in fact), into `out`. Returns `false` when `text`
/// is not JSON (or nests deeper than [`MAX_DEPTH`]); `out` may then hold
/// part of an answer, which the caller discards.
pub fn write_stored(out: &mut Vec<u8>, text: &str) -> bool {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.value(out, 0).is_some() && {
        p.ws();
        p.i == p.s.len()
    }
}

/// A recursive-descent JSON reader that writes canonical JSON as it goes
/// (objects are buffered to sort their members).
struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&b)).then(|| self.i += 1)
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => self.object(out, depth),
            b'[' => {
                self.i += 1;
                out.push(b'[');
                if self.eat(b']').is_none() {
                    loop {
                        self.value(out, depth + 1)?;
                        if self.eat(b']').is_some() {
                            break;
                        }
                        self.eat(b',')?;
                        out.push(b',');
                    }
                }
                out.push(b']');
                Some(())
            }
            b'"' => {
                let s = self.string()?;
                write_stored_str(out, &s);
                Some(())
            }
            b't' => self.literal(out, b"true"),
            b'f' => self.literal(out, b"false"),
            b'n' => self.literal(out, b"null"),
            _ => {
                let start = self.i;
                while matches!(
                    self.s.get(self.i),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.i += 1;
                }
                write_canonical_number(out, &self.s[start..self.i]).then_some(())
            }
        }
    }

    fn literal(&mut self, out: &mut Vec<u8>, word: &[u8]) -> Option<()> {
        self.s[self.i..].starts_with(word).then(|| {
            self.i += word.len();
            out.extend_from_slice(word);
        })
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.i += 1;
        let mut members: Vec<(String, Vec<u8>)> = Vec::new();
        if self.eat(b'}').is_none() {
            loop {
                self.ws();
                if self.s.get(self.i) != Some(&b'"') {
                    return None;
                }
                let name = self.string()?;
                self.eat(b':')?;
                let mut value = Vec::new();
                self.value(&mut value, depth + 1)?;
                members.push((name, value));
                if self.eat(b'}').is_some() {
                    break;
                }
                self.eat(b',')?;
            }
        }
        // Stable: a repeated name keeps its last value below.
        members.sort_by(|a, b| cmp_names(&a.0, &b.0, false));
        out.push(b'{');
        let mut first = true;
        for k in 0..members.len() {
            if members
                .get(k + 1)
                .is_some_and(|next| next.0 == members[k].0)
            {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_stored_str(out, &members[k].0);
            out.push(b':');
            out.extend_from_slice(&members[k].1);
        }
        out.push(b'}');
        Some(())
    }

    /// Reads a string at `self.i` (its opening quote) and decodes it.
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut s = String::new();
        let mut start = self.i;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    s.push_str(self.text.get(start..self.i)?);
                    self.i += 1;
                    return Some(s);
                }
                b'\\' => {
                    s.push_str(self.text.get(start..self.i)?);
                    self.i += 1;
                    let c = match *self.s.get(self.i)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    self.i += 1;
                    s.push(c);
                    start = self.i;
                }
                0x00..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }

    /// Reads `uXXXX` (and a following `\uXXXX` low surrogate) at `self.i`,
    /// leaving `self.i` on the last hex digit.
    fn unicode_escape(&mut self) -> Option<char> {
        let hex4 = |p: &Self, at: usize| -> Option<u32> {
            let digits = p.text.get(at..at + 4)?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(digits, 16).ok()
        };
        let hi = hex4(self, self.i + 1)?;
        self.i += 4;
        if (0xD800..0xDC00).contains(&hi) {
            if self.s.get(self.i + 1..self.i + 3) != Some(b"\\u") {
                return None;
            }
            let lo = hex4(self, self.i + 3)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            self.i += 6;
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        char::from_u32(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(text: &str) -> Option<String> {
        let mut out = Vec::new();
        write_stored(&mut out, text).then(|| String::from_utf8(out).unwrap())
    }

    fn from_fields(fields: &[Field<'_>]) -> String {
        let mut out = Vec::new();
        write_fields(&mut out, fields, &mut Vec::new());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc8785_key_order_vector() {
        // RFC 8785 §3.2.3: sorted by UTF-16 code units.
        let input = "{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\", \
                     \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\", \"1\": \"One\", \
                     \"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\", \
                     \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"}";
        assert_eq!(
            stored(input).unwrap(),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1F600}\":\"Emoji: Grinning Face\",\
             \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    #[test]
    fn rfc8785_string_escapes() {
        // RFC 8785 §3.2.2.2's example string, minus its number.
        let input = r#"{"string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}"#;
        assert_eq!(
            stored(input).unwrap(),
            "{\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
        assert_eq!(
            stored(r#"["\u0000", "\u001f", "\u007f", "\u2028"]"#).unwrap(),
            "[\"\\u0000\",\"\\u001f\",\"\u{7f}\",\"\u{2028}\"]"
        );
    }

    #[test]
    fn rfc8785_literals_and_structure() {
        assert_eq!(
            stored(" { \"b\" : [ true , false , null , { } , [ ] ] , \"a\" : { \"y\" : 1 , \"x\" : 2.50 } } ")
                .unwrap(),
            r#"{"a":{"x":2.5,"y":1},"b":[true,false,null,{},[]]}"#
        );
    }

    #[test]
    fn stored_numbers_are_exact() {
        assert_eq!(
            stored(r#"{"n": [1000000000000000, 0.0, 1.50, 9007199254740993, -12e-1]}"#).unwrap(),
            r#"{"n":[1000000000000000,0,1.5,9007199254740993,-1.2]}"#
        );
    }

    #[test]
    fn not_json() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "[1,]",
            "{'a':1}",
            "\"\\ud800\"",
            "\"\\x\"",
            "tru",
            "{} {}",
            "\"a\u{1}\"",
            "[01]",
        ] {
            assert_eq!(stored(bad), None, "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(stored(&deep), None);
    }

    #[test]
    fn writer_side_maps_like_the_encoder() {
        let f = |name, value| Field { name, value };
        let fields = [
            f("s", Value::Str("a\0\"\\\n\u{1}é")),
            f("x\0", Value::I64(1)),
            f("x\u{FFFD}", Value::I64(2)), // the same name once stored
            f("inf", Value::F64(f64::NEG_INFINITY)),
            f("big", Value::U128(u128::MAX)),
            f("f", Value::F64(1e-7)),
            f("b", Value::Bool(false)),
            f("s", Value::I128(i128::MIN)), // repeated: the last wins
        ];
        assert_eq!(
            from_fields(&fields),
            "{\"b\":false,\"big\":340282366920938463463374607431768211455,\"f\":0.0000001,\
             \"inf\":\"-Infinity\",\"s\":-170141183460469231731687303715884105728,\
             \"x\u{FFFD}\":2}"
        );
        // The same text PostgreSQL would print for what the encoder sent.
        let mut sent = Vec::new();
        crate::encode::json::write_fields(&mut sent, &fields);
        let sent = String::from_utf8(sent).unwrap();
        // Repeated names in the sent text: the reader keeps the last too.
        assert_eq!(stored(&sent).unwrap(), from_fields(&fields));
    }

    #[test]
    fn float_fast_path_agrees_with_the_full_normaliser() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let edges = [
            0.0, -0.0, 1.0, -1.0, 10.0, 0.5, 1e15, 1e16, 1e-5, 1e-6, 123.0, -2.5e-7,
        ];
        let randoms = (0..20_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f64::from_bits(x)
        });
        for f in edges.into_iter().chain(randoms).filter(|f| f.is_finite()) {
            let (mut fast, mut full) = (Vec::new(), Vec::new());
            write_f64(&mut fast, f);
            assert!(write_canonical_number(
                &mut full,
                ryu::Buffer::new().format_finite(f).as_bytes()
            ));
            assert_eq!(fast, full, "{f:e}");
        }
    }

    /// `write_encoded` over what the encoder writes agrees with the full
    /// path on every row, and takes the fast path whenever the names allow.
    #[test]
    fn encoded_fast_path_agrees_with_the_full_paths() {
        let names = [
            "zeta",
            "a",
            "ok",
            "route",
            "a\0",
            "é",
            "\u{FB33}",
            "\u{1F600}",
            "q\"x",
            "t\n",
            "",
        ];
        let strings = [
            "",
            "plain",
            "say \"hi\"",
            "tab\tnl\n",
            "\u{1}\u{1f}\0",
            "\\",
            "é\u{1F600}",
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut fast_taken = 0;
        for _ in 0..20_000 {
            let n = (next() % 6) as usize;
            let fields: Vec<Field<'_>> = (0..n)
                .map(|_| {
                    let r = next();
                    let value = match r % 9 {
                        0 => Value::Bool(r & 16 != 0),
                        1 => Value::I64(next() as i64),
                        2 => Value::U64(next()),
                        3 => Value::I128(-(i128::from(next()) << 40)),
                        4 => Value::U128(u128::from(next()) << 60),
                        5 => Value::F64(f64::from_bits(next())),
                        6 => Value::F64(
                            [0.0, -0.0, 1.0, 1e21, 1e-7, 2.5, -3.0][(r >> 8) as usize % 7],
                        ),
                        _ => Value::Str(strings[(r >> 8) as usize % strings.len()]),
                    };
                    let name = names[(next() % names.len() as u64) as usize];
                    Field { name, value }
                })
                .collect();
            let mut encoded = Vec::new();
            crate::encode::json::write_fields(&mut encoded, &fields);
            let want = from_fields(&fields);
            assert_eq!(
                stored(std::str::from_utf8(&encoded).unwrap()).as_deref(),
                Some(&*want)
            );
            let mut fast = Vec::new();
            let plain = fields.iter().all(|f| {
                f.name
                    .bytes()
                    .all(|b| (0x20..0xEE).contains(&b) && b != b'"' && b != b'\\')
            });
            if write_encoded(&mut fast, &encoded, &mut Vec::new()) {
                fast_taken += 1;
                assert_eq!(String::from_utf8(fast).unwrap(), want, "{fields:?}");
            } else {
                assert!(!plain, "plain names must take the fast path: {fields:?}");
            }
        }
        assert!(fast_taken > 5_000, "{fast_taken}");
    }

    #[test]
    fn encoded_off_path_is_refused() {
        for text in [
            r#"{"a": 1}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":tru}"#,
            r#"{"a":01}"#,
            r#"{"a":1,}"#,
            r#"{"a":1"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"\n":1}"#,
            r#"[]"#,
        ] {
            assert!(
                !write_encoded(&mut Vec::new(), text.as_bytes(), &mut Vec::new()),
                "{text}"
            );
        }
        let mut out = Vec::new();
        assert!(write_encoded(
            &mut out,
            br#"{"a":"\u001f\n"}"#,
            &mut Vec::new()
        ));
        assert_eq!(out, br#"{"a":"\u001f\n"}"#);
    }

    #[test]
    fn utf16_order_differs_from_code_point_order() {
        // U+FB33 sorts after U+1F600 in UTF-16 (0xD83D < 0xFB33) though
        // its code point is smaller.
        let f = |name| Field {
            name,
            value: Value::Bool(true),
        };
        assert_eq!(
            from_fields(&[f("\u{fb33}"), f("\u{1F600}")]),
            "{\"\u{1F600}\":true,\"\u{fb33}\":true}"
        );
    }
}
