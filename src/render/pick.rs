//! [`Pick`]: a row's fields as a renderer maps them, remembering which it
//! has placed, so the rest can go to `labels` (ECS), `unmapped` (OCSF)
//! or attributes; and the typed conversions a schema's field needs.

use std::net::IpAddr;

use crate::row::{Row, Value, CONTEXT_KEYS};

/// A row's fields, each marked once a renderer has placed it.
pub(super) struct Pick<'r, 'a> {
    /// The row.
    pub(super) row: &'r Row<'a>,
    used: &'r mut Vec<bool>,
}

impl<'r, 'a> Pick<'r, 'a> {
    /// Nothing placed yet; `used` is scratch space, reused row after row.
    pub(super) fn new(row: &'r Row<'a>, used: &'r mut Vec<bool>) -> Pick<'r, 'a> {
        used.clear();
        used.resize(row.fields.len(), false);
        Pick { row, used }
    }

    /// The first unplaced field named `name`: its index and value.
    pub(super) fn peek(&self, name: &str) -> Option<(usize, Value<'a>)> {
        self.row
            .fields
            .iter()
            .enumerate()
            .find(|(i, f)| !self.used[*i] && f.name == name)
            .map(|(i, f)| (i, f.value))
    }

    /// Marks field `i` placed.
    pub(super) fn mark(&mut self, i: usize) {
        if let Some(u) = self.used.get_mut(i) {
            *u = true;
        }
    }

    /// True once field `i` is placed.
    pub(super) fn is_used(&self, i: usize) -> bool {
        self.used.get(i).copied().unwrap_or(true)
    }

    /// The first unplaced field named `name` that `convert` accepts,
    /// converted, and marked placed. A field `convert` refuses stays
    /// unplaced (it goes to `labels`/`unmapped` with its value as it is).
    pub(super) fn take_with<T>(
        &mut self,
        name: &str,
        convert: impl FnOnce(Value<'a>) -> Option<T>,
    ) -> Option<T> {
        let (i, v) = self.peek(name)?;
        let t = convert(v)?;
        self.mark(i);
        Some(t)
    }

    /// The first unplaced string field named `name`, placed.
    pub(super) fn take_str(&mut self, name: &str) -> Option<&'a str> {
        self.take_with(name, as_str)
    }

    /// Context id `i` (indexed like [`CONTEXT_KEYS`]): the row's, or else
    /// a string field of that name (placed). Cut to [`CONTEXT_MAX_LEN`]
    /// bytes like the `COPY` encoder does, so every format carries the id
    /// the table holds.
    pub(super) fn context(&mut self, i: usize) -> Option<&'a str> {
        let id = match self.row.context.get(i).copied().flatten() {
            Some(id) => id,
            None => self.take_str(CONTEXT_KEYS.get(i)?)?,
        };
        Some(cap_context(id))
    }
}

/// `id` cut to [`CONTEXT_MAX_LEN`](crate::row::CONTEXT_MAX_LEN) bytes on a character boundary.
pub(super) fn cap_context(id: &str) -> &str {
    crate::row::stored_context_id(id).0
}

/// The string of a string value.
pub(super) fn as_str(v: Value<'_>) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// -2^63, exactly (`i64::MIN`); 2^63 is its negation.
const TWO_63_NEG: f64 = i64::MIN as f64;

/// The value as a signed 64-bit integer, when it is one exactly: any
/// integer in range, an integral finite float in range, or a string of
/// decimal digits in range (`%display` values arrive as strings).
pub(super) fn as_i64(v: Value<'_>) -> Option<i64> {
    match v {
        Value::I64(n) => Some(n),
        Value::U64(n) => i64::try_from(n).ok(),
        Value::I128(n) => i64::try_from(n).ok(),
        Value::U128(n) => i64::try_from(n).ok(),
        // -2^63 <= f < 2^63: the integral floats `as i64` keeps exactly.
        Value::F64(f) if f.fract() == 0.0 && (TWO_63_NEG..-TWO_63_NEG).contains(&f) => {
            Some(f as i64)
        }
        Value::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// The value as a signed 32-bit integer, when it is one exactly.
pub(super) fn as_i32(v: Value<'_>) -> Option<i32> {
    as_i64(v).and_then(|n| i32::try_from(n).ok())
}

/// The value as a finite double: any number (integers rounded to the
/// nearest double), or a string that parses as a finite one.
pub(super) fn as_f64(v: Value<'_>) -> Option<f64> {
    let f = match v {
        Value::I64(n) => n as f64,
        Value::U64(n) => n as f64,
        Value::I128(n) => n as f64,
        Value::U128(n) => n as f64,
        Value::F64(f) => f,
        Value::Str(s) => s.parse().ok()?,
        Value::Bool(_) | Value::Json(_) => return None,
    };
    f.is_finite().then_some(f)
}

/// A string value that is an IPv4 or IPv6 address, as written.
pub(super) fn as_ip(v: Value<'_>) -> Option<&str> {
    as_str(v).filter(|s| s.parse::<IpAddr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Field;

    #[test]
    fn take_marks_only_what_converts() {
        let fields = [
            Field {
                name: "n",
                value: Value::Str("x"),
            },
            Field {
                name: "n",
                value: Value::U64(7),
            },
            Field {
                name: "n",
                value: Value::U64(8),
            },
        ];
        let row = Row {
            fields: &fields,
            ..Row::default()
        };
        let mut used = vec![true; 9];
        let mut p = Pick::new(&row, &mut used);
        assert_eq!(p.take_with("n", as_i64), None, "the first is not a number");
        assert!(!p.is_used(0));
        assert_eq!(p.take_str("n"), Some("x"));
        assert_eq!(p.take_with("n", as_i64), Some(7));
        assert_eq!(p.take_with("n", as_i64), Some(8));
        assert_eq!(p.take_with("n", as_i64), None);
        assert!(p.is_used(99), "out of range counts as used");
    }

    #[test]
    fn context_comes_from_the_row_then_a_field_and_is_capped() {
        let long = "é".repeat(200); // 400 bytes
        let fields = [Field {
            name: "user_id",
            value: Value::Str(&long),
        }];
        let mut row = Row {
            fields: &fields,
            ..Row::default()
        };
        row.context[0] = Some("t-1");
        let mut used = Vec::new();
        let mut p = Pick::new(&row, &mut used);
        assert_eq!(p.context(0), Some("t-1"));
        let user = p.context(1).unwrap();
        assert_eq!(user.len(), 254, "cut on a character boundary");
        assert!(p.is_used(0));
        assert_eq!(p.context(2), None);
        assert_eq!(p.context(99), None);
    }

    #[test]
    fn conversions() {
        assert_eq!(as_i64(Value::U64(u64::MAX)), None);
        assert_eq!(as_i64(Value::I128(-5)), Some(-5));
        assert_eq!(as_i64(Value::U128(u128::MAX)), None);
        assert_eq!(as_i64(Value::F64(3.0)), Some(3));
        assert_eq!(as_i64(Value::F64(3.5)), None);
        assert_eq!(as_i64(Value::F64(-TWO_63_NEG)), None);
        assert_eq!(as_i64(Value::F64(TWO_63_NEG)), Some(i64::MIN));
        assert_eq!(as_i64(Value::F64(f64::NAN)), None);
        assert_eq!(as_i64(Value::Str("42")), Some(42));
        assert_eq!(as_i64(Value::Str(" 42")), None);
        assert_eq!(as_i64(Value::Bool(true)), None);
        assert_eq!(as_i32(Value::I64(1 << 31)), None);
        assert_eq!(as_i32(Value::I64(-(1 << 31))), Some(i32::MIN));
        assert_eq!(as_f64(Value::Str("NaN")), None);
        assert_eq!(as_f64(Value::Str("inf")), None);
        assert_eq!(as_f64(Value::Str("0.5")), Some(0.5));
        assert_eq!(as_f64(Value::U128(u128::MAX)), Some(u128::MAX as f64));
        assert_eq!(as_ip(Value::Str("10.0.0.1")), Some("10.0.0.1"));
        assert_eq!(as_ip(Value::Str("::1")), Some("::1"));
        assert_eq!(as_ip(Value::Str("10.0.0.256")), None);
        assert_eq!(as_ip(Value::Str("localhost")), None);
    }
}
