//! The canonical form of a JSON number: its exact value in plain decimal.
//!
//! `jsonb` stores numbers as `numeric`, which keeps the exact decimal
//! value but not its spelling: `1e15` comes back as `1000000000000000`,
//! `-0.0` as `0.0`, `2.50` stays `2.50`. The canonical form forgets the
//! spelling too, and keeps the exact value:
//!
//! | written | stored by `jsonb` | canonical |
//! |---|---|---|
//! | `1e15` | `1000000000000000` | `1000000000000000` |
//! | `1.0` | `1.0` | `1` |
//! | `-0.0` | `0.0` | `0` |
//! | `1.5e-7` | `0.00000015` | `0.00000015` |
//! | `340282366920938463463374607431768211455` | the same | the same |
//!
//! That is: an optional `-` (never for zero), the integer digits without
//! leading zeros (`0` when there are none), and, only when the value has
//! a fraction, `.` and the fraction's digits without trailing zeros. No
//! exponent, ever.
//!
//! Why not RFC 8785's number form (ECMAScript's `Number.prototype.toString`
//! of the nearest IEEE double)? It is lossy above 2^53: `9007199254740993`
//! and `9007199254740992` would canonicalise alike, so a changed `u64` or
//! `i128` field would go unnoticed by `verify`. The exact value is what
//! both sides agree on (`numeric` keeps every digit the writer sent), so
//! it is what is hashed.
//!
//! ```ignore
//! use ringtrail::chain::number::write_canonical_number;
//!
//! let mut out = Vec::new();
//! assert!(write_canonical_number(&mut out, b"-1.2500e3"));
//! assert_eq!(out, b"-1250");
//! out.clear();
//! assert!(!write_canonical_number(&mut out, b"1e")); // not a JSON number
//! assert!(out.is_empty());
//! ```

/// The largest exponent magnitude [`write_canonical_number`] expands.
/// Far past anything `jsonb` prints (`numeric` has at most 131,072 digits
/// before the point and 16,383 after) or ryu writes (±324), so only a
/// hostile input meets it.
pub const MAX_EXPONENT: i64 = 1_000_000;

/// Writes the canonical form (see the [module docs](self)) of the JSON
/// number `text` into `out`. Returns `false`, writing nothing, when `text`
/// is not a JSON number (RFC 8259 grammar) or its exponent is beyond
/// [`MAX_EXPONENT`].
pub fn write_canonical_number(out: &mut Vec<u8>, text: &[u8]) -> bool {
    let Some(n) = Parsed::parse(text) else {
        return false;
    };
    n.write(out);
    true
}

/// A number split into its parts: `digits × 10^exponent`, `digits` the
/// integer and fraction digits run together.
struct Parsed<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    /// The written exponent less the fraction's length.
    exponent: i64,
}

impl<'a> Parsed<'a> {
    fn parse(text: &'a [u8]) -> Option<Parsed<'a>> {
        let mut i = 0;
        let negative = text.first() == Some(&b'-');
        if negative {
            i += 1;
        }
        let digits = |from: usize| {
            from + text[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let end = digits(i);
        let int = &text[i..end];
        // JSON: one digit, or a non-zero digit then more.
        if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
            return None;
        }
        i = end;
        let mut frac: &[u8] = &[];
        if text.get(i) == Some(&b'.') {
            let end = digits(i + 1);
            frac = &text[i + 1..end];
            if frac.is_empty() {
                return None;
            }
            i = end;
        }
        let mut exponent: i64 = 0;
        if matches!(text.get(i), Some(b'e' | b'E')) {
            i += 1;
            let exp_negative = match text.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let end = digits(i);
            if end == i {
                return None;
            }
            for &d in &text[i..end] {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(d - b'0'));
            }
            if exponent > MAX_EXPONENT {
                return None;
            }
            if exp_negative {
                exponent = -exponent;
            }
            i = end;
        }
        if i != text.len() {
            return None;
        }
        Some(Parsed {
            negative,
            int,
            frac,
            exponent: exponent - frac.len() as i64,
        })
    }

    fn digit(&self, i: usize) -> u8 {
        if i < self.int.len() {
            self.int[i]
        } else {
            self.frac[i - self.int.len()]
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let len = self.int.len() + self.frac.len();
        let first = (0..len).find(|&i| self.digit(i) != b'0');
        let Some(first) = first else {
            out.push(b'0');
            return;
        };
        // One past the last non-zero digit.
        let last = (0..len)
            .rev()
            .find(|&i| self.digit(i) != b'0')
            .map_or(len, |i| i + 1);
        // The value is digits[first..last] × 10^exponent.
        let exponent = self.exponent + (len - last) as i64;
        let significant = last - first;
        if self.negative {
            out.push(b'-');
        }
        let put = |out: &mut Vec<u8>, from: usize, to: usize| {
            out.extend((from..to).map(|i| self.digit(i)));
        };
        if exponent >= 0 {
            put(out, first, last);
            out.resize(out.len() + exponent as usize, b'0');
            return;
        }
        // Digits before the point: significant + exponent (may be ≤ 0).
        let before = significant as i64 + exponent;
        if before > 0 {
            let split = first + before as usize;
            put(out, first, split);
            out.push(b'.');
            put(out, split, last);
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-before) as usize, b'0');
            put(out, first, last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Option<String> {
        let mut out = Vec::new();
        write_canonical_number(&mut out, s.as_bytes()).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn spellings_of_one_value_agree() {
        for (input, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("0.000", "0"),
            ("0e10", "0"),
            ("1", "1"),
            ("1.0", "1"),
            ("1.50", "1.5"),
            ("10", "10"),
            ("1e1", "10"),
            ("1E+1", "10"),
            ("100e-2", "1"),
            ("1e15", "1000000000000000"),
            ("1000000000000000", "1000000000000000"),
            ("1.5e-7", "0.00000015"),
            ("0.00000015", "0.00000015"),
            ("-123.456e2", "-12345.6"),
            ("-123.456e-2", "-1.23456"),
            ("12.5e-1", "1.25"),
            ("5e-1", "0.5"),
            ("9007199254740993", "9007199254740993"),
        ] {
            assert_eq!(canon(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn extremes_expand_in_full() {
        let big = canon("1e300").unwrap();
        assert_eq!(big.len(), 301);
        assert!(big.starts_with('1') && big[1..].bytes().all(|b| b == b'0'));
        let tiny = canon("5e-324").unwrap();
        assert_eq!(tiny.len(), 2 + 323 + 1);
        assert!(tiny.starts_with("0.000") && tiny.ends_with("05"));
        assert_eq!(
            canon("340282366920938463463374607431768211455").unwrap(),
            u128::MAX.to_string()
        );
    }

    #[test]
    fn every_ryu_float_matches_its_plain_decimal() {
        // What the writer sends (ryu) and what numeric prints for the same
        // value must canonicalise alike; numeric's text is the plain
        // decimal, which Rust's `{}` of an f64 also is (shortest digits).
        for f in [
            0.1,
            -2.5,
            1e21,
            1e-7,
            123_456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1.0 / 3.0,
        ] {
            let ryu = canon(ryu::Buffer::new().format_finite(f)).unwrap();
            let plain = canon(&format!("{f}")).unwrap();
            assert_eq!(ryu, plain, "{f}");
        }
    }

    #[test]
    fn not_numbers() {
        for bad in [
            "",
            "-",
            "+1",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "0x10",
            "1 ",
            "NaN",
            "--1",
            "1e1000001",
        ] {
            assert_eq!(canon(bad), None, "{bad:?}");
        }
        assert_eq!(canon("1e1000000").map(|s| s.len()), Some(1_000_001));
    }
}
