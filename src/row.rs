//! [`Row`]: one decoded event, the unit every encoder and sink consumes.
//!
//! The writer thread turns each fixed-size ring record into a `Row` that
//! borrows from the record, so decoding copies nothing. Encoders (binary COPY,
//! and later JSON lines, ECS, OCSF) read rows; they never see ring records.
//! That keeps the record layout private to `capture` and the writer.
//!
//! ```
//! use ringtrail::{Field, Row, Value};
//!
//! let fields = [Field { name: "attempt", value: Value::U64(3) }];
//! let row = Row {
//!     message: "retrying",
//!     target: "my_app::net",
//!     fields: &fields,
//!     ..Row::default()
//! };
//! assert_eq!(row.level, ringtrail::row::LEVEL_INFO);
//! ```

pub use crate::level::{
    severity_number, LEVEL_DEBUG, LEVEL_ERROR, LEVEL_INFO, LEVEL_TRACE, LEVEL_WARN,
};

/// How many context keys there are: the length of [`CONTEXT_KEYS`] and
/// of [`Row::context`].
pub const CONTEXT_LEN: usize = 6;

/// The most bytes of one context id that are stored. A longer id (from a
/// span or from an event field) is cut on a UTF-8 boundary and the row
/// marked truncated: ids are keys to look rows up by, and the audit index
/// on `trace_id` must never meet a value too large for a btree entry.
pub const CONTEXT_MAX_LEN: usize = 255;

/// Names of the span-context keys, in the order of [`Row::context`] and of
/// the table's columns. A span field with one of these names is captured as
/// context; the innermost span that has a value wins.
pub const CONTEXT_KEYS: [&str; CONTEXT_LEN] = [
    "trace_id",
    "user_id",
    "session_id",
    "task_id",
    "context_id",
    "client_id",
];

/// One typed field value, as captured on the hot path.
///
/// `%display` and `?debug` values arrive already formatted, as [`Value::Str`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// A `bool`.
    Bool(bool),
    /// Any signed integer up to 64 bits.
    I64(i64),
    /// Any unsigned integer up to 64 bits.
    U64(u64),
    /// An `i128`.
    I128(i128),
    /// A `u128`.
    U128(u128),
    /// An `f32` or `f64`. NaN and infinities are mapped by the encoders.
    F64(f64),
    /// A string, or the text of a `Display`/`Debug`/`Error` value.
    Str(&'a str),
    /// A JSON array or object, as its text: an OpenTelemetry attribute
    /// that is an array or a map, given through [`Ingest`](crate::Ingest).
    /// [`Ingest`](crate::Ingest) checks and rewrites it in the encoder's
    /// form (no whitespace, NUL as U+FFFD, nesting at most
    /// [`MAX_JSON_DEPTH`](crate::MAX_JSON_DEPTH) deep), so it is
    /// stored as a `jsonb` array or object as it stands. A `tracing`
    /// event never produces one.
    Json(&'a str),
}

/// A named field of an event (not the message, and not span context).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    /// The field's name, as written at the call site.
    pub name: &'a str,
    /// Its value.
    pub value: Value<'a>,
}

/// One event, decoded and ready to encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    /// Wall-clock time of the event, in nanoseconds since the Unix epoch.
    pub ts_unix_nanos: i64,
    /// The row id: a UUIDv7 made by the writer, in network byte order.
    pub id: [u8; 16],
    /// OpenTelemetry severity number (see [`severity_number`]).
    pub level: i16,
    /// The event's target, usually its module path.
    pub target: &'a str,
    /// The formatted message; empty when the event has none.
    pub message: &'a str,
    /// The event's other fields, in call-site order.
    pub fields: &'a [Field<'a>],
    /// Span context, indexed like [`CONTEXT_KEYS`]. Encoders store at most
    /// [`CONTEXT_MAX_LEN`] bytes of each (cut on a character boundary,
    /// marking the row truncated).
    pub context: [Option<&'a str>; CONTEXT_LEN],
    /// Name of the innermost span, if the event happened inside one.
    pub span_name: Option<&'a str>,
    /// Source file of the call site, when known.
    pub file: Option<&'a str>,
    /// Source line of the call site, when known.
    pub line: Option<u32>,
    /// True when the message, a value or some fields did not fit in the
    /// record and were cut (always on a UTF-8 character boundary).
    pub truncated: bool,
    /// The audit point this event is ([`Point::kind`](crate::audit::Point::kind):
    /// identity 1 … result 5), `None` for every other event. The writer
    /// sets it from [`audit::contract::point_of`](crate::audit::contract::point_of).
    pub kind: Option<i16>,
    /// How many values or spans of text the writer's redaction replaced in
    /// this row (0 when nothing was, or redaction is off).
    pub redacted: u32,
    /// The event's sequence number on the thread that emitted it: 1 for
    /// the thread's first event, then one more per event, whichever slot
    /// class each used; 0 for a row that no thread emitted (the writer's
    /// drop reports). Within one microsecond it keeps a thread's events in
    /// the order they happened (`ORDER BY ts, seq, id`).
    pub seq: u64,
}

impl Default for Row<'_> {
    fn default() -> Self {
        Row {
            ts_unix_nanos: 0,
            id: [0; 16],
            level: LEVEL_INFO,
            target: "",
            message: "",
            fields: &[],
            context: [None; CONTEXT_LEN],
            span_name: None,
            file: None,
            line: None,
            truncated: false,
            kind: None,
            redacted: 0,
            seq: 0,
        }
    }
}

/// A context id as the table stores it: at most [`CONTEXT_MAX_LEN`] bytes,
/// cut on a character boundary; `true` when it was cut (the row is then
/// stored as truncated). The encoder, the renderers and the chain's
/// canonical form all cut here.
pub(crate) fn stored_context_id(id: &str) -> (&str, bool) {
    let keep = crate::text::floor_char_boundary(id, CONTEXT_MAX_LEN);
    (&id[..keep], keep < id.len())
}

/// Orders field names as `jsonb` orders an object's keys: shorter names
/// first, then bytewise. The `fields` column comes back in this order.
///
/// ```
/// use std::cmp::Ordering;
/// use ringtrail::row::jsonb_key_order;
///
/// assert_eq!(jsonb_key_order("zz", "aaa"), Ordering::Less);
/// assert_eq!(jsonb_key_order("ab", "aa"), Ordering::Greater);
/// ```
pub fn jsonb_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes()))
}

/// Makes `fields` what the `fields` column keeps of them: ordered by
/// [`jsonb_key_order`], and a repeated name only once, with its last value
/// (`jsonb` keeps the last of duplicate keys).
pub(crate) fn as_jsonb_keeps(fields: &mut Vec<Field<'_>>) {
    // Stable: values of one name stay in call-site order, last one last.
    fields.sort_by(|a, b| jsonb_key_order(a.name, b.name));
    let mut kept = 0;
    for i in 0..fields.len() {
        if fields
            .get(i + 1)
            .is_some_and(|next| next.name == fields[i].name)
        {
            continue;
        }
        fields[kept] = fields[i];
        kept += 1;
    }
    fields.truncate(kept);
}

/// Empties a vector and gives it back with a different lifetime parameter,
/// keeping its allocation (the standard library collects in place when the
/// element layout is unchanged). This lets one buffer hold fields that
/// borrow from a different row on each use.
pub(crate) fn recycle<'a, 'b>(mut fields: Vec<Field<'a>>) -> Vec<Field<'b>> {
    fields.clear();
    fields.into_iter().map(|_| unreachable!("empty")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_keeps_the_last_value_of_a_name_in_its_key_order() {
        let f = |name, v| Field {
            name,
            value: Value::U64(v),
        };
        let mut fields = vec![f("bb", 1), f("a", 2), f("bb", 3), f("ab", 4), f("bb", 5)];
        as_jsonb_keeps(&mut fields);
        assert_eq!(fields, [f("a", 2), f("ab", 4), f("bb", 5)]);
        let mut capacity = Vec::with_capacity(64);
        capacity.push(f("x", 1));
        let reused: Vec<Field<'static>> = recycle(capacity);
        assert!(reused.is_empty() && reused.capacity() >= 64);
    }
}
