//! [`Line`]: the small JSON builder every renderer writes one line with.
//!
//! It only tracks whether a comma is due, so objects and arrays nest
//! freely; strings and numbers go through [`encode::json`](crate::encode::json)
//! (NUL as U+FFFD, control characters escaped, NaN and the infinities as
//! the strings `"NaN"`, `"Infinity"`, `"-Infinity"`), so every line parses.
//! [`Line::try_key`] and [`KeySet`] keep the keys of one object (or the
//! `key`s of one OTLP attribute list) unique.

use crate::encode::json::{write_str, write_value};
use crate::row::Value;

use super::keys::KeySet;

/// A JSON text being written into the end of a byte buffer.
pub(super) struct Line<'o> {
    out: &'o mut Vec<u8>,
    comma: bool,
}

impl<'o> Line<'o> {
    /// Starts writing at the end of `out` (what is there already stays).
    pub(super) fn new(out: &'o mut Vec<u8>) -> Line<'o> {
        Line { out, comma: false }
    }

    /// The buffer, for writers of a value (after a key or [`Line::item`]).
    pub(super) fn buf(&mut self) -> &mut Vec<u8> {
        self.out
    }

    fn sep(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
        self.comma = true;
    }

    /// `{`, at the top level or as an array element.
    pub(super) fn open(&mut self) {
        self.sep();
        self.out.push(b'{');
        self.comma = false;
    }

    /// `}`.
    pub(super) fn close(&mut self) {
        self.out.push(b'}');
        self.comma = true;
    }

    /// `[`, after a key.
    fn open_array(&mut self) {
        self.out.push(b'[');
        self.comma = false;
    }

    /// `]`.
    pub(super) fn close_array(&mut self) {
        self.out.push(b']');
        self.comma = true;
    }

    /// Writes `"key":` (escaped) and leaves the value to the caller.
    pub(super) fn key(&mut self, key: &str) {
        self.sep();
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// The separator before an array element whose value the caller
    /// writes into [`Line::buf`].
    pub(super) fn item(&mut self) {
        self.sep();
    }

    /// `"key":{`.
    pub(super) fn object(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'{');
        self.comma = false;
    }

    /// `"key":[`.
    pub(super) fn array(&mut self, key: &str) {
        self.key(key);
        self.open_array();
    }

    /// `"key":"value"`.
    pub(super) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// `"key":"value"` when there is a value.
    pub(super) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// A string element of an array.
    pub(super) fn str_item(&mut self, value: &str) {
        self.item();
        write_str(self.out, value);
    }

    /// `"key":n`.
    pub(super) fn int(&mut self, key: &str, n: i64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// `"key":true` or `false`.
    pub(super) fn bool(&mut self, key: &str, b: bool) {
        self.key(key);
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// `"key":null`.
    pub(super) fn null(&mut self, key: &str) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }

    /// Where the text ends now, to [`Line::rollback`] to.
    pub(super) fn checkpoint(&self) -> (usize, bool) {
        (self.out.len(), self.comma)
    }

    /// Forgets everything written since `checkpoint`.
    pub(super) fn rollback(&mut self, checkpoint: (usize, bool)) {
        self.out.truncate(checkpoint.0);
        self.comma = checkpoint.1;
    }

    /// Ends an object begun (its key included) after `checkpoint`: closes
    /// it when `any` member was written into it, else forgets it whole, as
    /// if it had never been begun.
    pub(super) fn close_or_rollback(&mut self, checkpoint: (usize, bool), any: bool) {
        if any {
            self.close();
        } else {
            self.rollback(checkpoint);
        }
    }

    /// Writes the separator and what `write_key` writes (one JSON string),
    /// then keeps it only when `keys` has not seen that string yet in this
    /// object: true when it was new. On false, nothing was written.
    ///
    /// `prefix` goes between the separator and the key, e.g. `{"key":` for
    /// an OTLP attribute; a `:` follows the key only when `colon` is set.
    pub(super) fn try_key(
        &mut self,
        keys: &mut KeySet,
        prefix: &[u8],
        colon: bool,
        write_key: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        let checkpoint = self.checkpoint();
        self.sep();
        self.out.extend_from_slice(prefix);
        let start = self.out.len();
        write_key(self.out);
        let end = self.out.len();
        if keys.insert(self.out, start, end) {
            if colon {
                self.out.push(b':');
            }
            true
        } else {
            self.rollback(checkpoint);
            false
        }
    }

    /// Ends the JSON text with a newline.
    pub(super) fn end_line(self) {
        self.out.push(b'\n');
    }
}

/// Writes any scalar as a JSON string: strings escaped, numbers and
/// booleans as their text (`"42"`, `"true"`, `"2.5"`, `"NaN"`).
pub(super) fn write_as_str(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Str(s) => write_str(out, s),
        // write_value already quotes "NaN", "Infinity" and "-Infinity".
        Value::F64(f) if !f.is_finite() => write_value(out, v),
        _ => {
            out.push(b'"');
            write_value(out, v);
            out.push(b'"');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_with_commas_in_the_right_places() {
        let mut out = b"before\n".to_vec();
        let mut line = Line::new(&mut out);
        line.open();
        line.str("a", "x\"y");
        line.array("b");
        line.str_item("1");
        line.open();
        line.int("n", -3);
        line.close();
        line.close_array();
        line.object("c");
        line.close();
        line.bool("d", true);
        line.null("e");
        line.close();
        line.end_line();
        assert_eq!(
            out,
            b"before\n{\"a\":\"x\\\"y\",\"b\":[\"1\",{\"n\":-3}],\"c\":{},\"d\":true,\"e\":null}\n"
        );
    }

    #[test]
    fn try_key_drops_a_repeated_key_whole() {
        let mut keys = KeySet::default();
        let mut out = Vec::new();
        let mut line = Line::new(&mut out);
        line.open();
        for (k, v) in [("a", 1), ("b", 2), ("a", 3), ("c", 4)] {
            if line.try_key(&mut keys, b"", true, |o| write_str(o, k)) {
                line.buf().push(b'0' + v);
            }
        }
        line.close();
        assert_eq!(out, br#"{"a":1,"b":2,"c":4}"#);
    }

    #[test]
    fn an_empty_object_rolls_back_whole() {
        let mut out = Vec::new();
        let mut line = Line::new(&mut out);
        line.open();
        line.int("a", 1);
        for any in [false, true] {
            let before = line.checkpoint();
            line.object("o");
            if any {
                line.int("n", 2);
            }
            line.close_or_rollback(before, any);
        }
        line.int("b", 3);
        line.close();
        assert_eq!(out, br#"{"a":1,"o":{"n":2},"b":3}"#);
    }

    #[test]
    fn scalars_as_strings() {
        let cases: [(Value<'_>, &str); 7] = [
            (Value::Str("a\0"), "\"a\u{FFFD}\""),
            (Value::Bool(false), "\"false\""),
            (Value::I64(-1), "\"-1\""),
            (
                Value::U128(u128::MAX),
                "\"340282366920938463463374607431768211455\"",
            ),
            (Value::F64(2.5), "\"2.5\""),
            (Value::F64(f64::NAN), "\"NaN\""),
            (Value::F64(f64::NEG_INFINITY), "\"-Infinity\""),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            write_as_str(&mut out, &v);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
