//! OTLP `AnyValue`s as row values, and the owned row the mapping builds.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use ringtrail::row::CONTEXT_LEN;
use ringtrail::{Field, Record, Value};

/// A field value the mapping owns until the record is pushed.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    /// A string (bytes as base64).
    Str(String),
    /// An integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// An array or a map, as JSON text.
    Json(String),
}

impl Owned {
    /// The value as a [`Value`] borrowing it.
    pub fn as_value(&self) -> Value<'_> {
        match self {
            Owned::Str(s) => Value::Str(s),
            Owned::Int(n) => Value::I64(*n),
            Owned::Double(f) => Value::F64(*f),
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Json(s) => Value::Json(s),
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Owned::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A field's name: the mapping's own names are `&'static str`, an
/// attribute's is moved out of the decoded request, so neither is copied.
pub type Name = Cow<'static, str>;

/// One row the mapping made, owning its texts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnedRow {
    /// Unix nanoseconds.
    pub ts_unix_nanos: i64,
    /// Severity number.
    pub level: i16,
    /// The `target` column.
    pub target: String,
    /// The message.
    pub message: String,
    /// The `span_name` column.
    pub span_name: Option<String>,
    /// Context ids, indexed like [`ringtrail::row::CONTEXT_KEYS`].
    pub context: [Option<String>; CONTEXT_LEN],
    /// Fields, in order.
    pub fields: Vec<(Name, Owned)>,
}

impl OwnedRow {
    /// The first field named `name`.
    pub fn field(&self, name: &str) -> Option<&Owned> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The text of the first string field named `name`.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Owned::as_str)
    }

    /// Sets `name` (replacing an earlier value) or adds it.
    pub fn set(&mut self, name: impl Into<Name>, value: Owned) {
        let name = name.into();
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name, value)),
        }
    }

    /// Adds a field named by one of the mapping's own names.
    pub fn push(&mut self, name: &'static str, value: Owned) {
        self.fields.push((Cow::Borrowed(name), value));
    }

    /// The row's fields as [`Field`]s, into `out` (cleared first).
    pub fn fields_into<'a>(&'a self, out: &mut Vec<Field<'a>>) {
        out.clear();
        out.extend(self.fields.iter().map(|(name, value)| Field {
            name,
            value: value.as_value(),
        }));
    }

    /// The row as a [`Record`] whose fields are `fields` (from
    /// [`fields_into`](Self::fields_into)).
    pub fn record<'a>(&'a self, fields: &'a [Field<'a>]) -> Record<'a> {
        let mut context = [None; CONTEXT_LEN];
        for (slot, id) in context.iter_mut().zip(&self.context) {
            *slot = id.as_deref();
        }
        Record {
            ts_unix_nanos: self.ts_unix_nanos,
            level: self.level,
            target: &self.target,
            message: &self.message,
            span_name: self.span_name.as_deref(),
            context,
            fields,
        }
    }
}

/// [`owned`], moving a string out of `value` instead of copying it.
pub fn into_owned(value: AnyValue) -> Option<Owned> {
    match value.value? {
        any_value::Value::StringValue(s) => Some(Owned::Str(s)),
        other => owned(&AnyValue { value: Some(other) }),
    }
}

/// An `AnyValue` as a field value: a string, int, double or bool as
/// itself; bytes as base64 text; an array or a map as JSON; an empty
/// `AnyValue` as `None` (no field).
pub fn owned(value: &AnyValue) -> Option<Owned> {
    use any_value::Value as V;
    Some(match value.value.as_ref()? {
        V::StringValue(s) => Owned::Str(s.clone()),
        V::BoolValue(b) => Owned::Bool(*b),
        V::IntValue(n) => Owned::Int(*n),
        V::DoubleValue(f) => Owned::Double(*f),
        V::BytesValue(b) => Owned::Str(base64(b)),
        V::ArrayValue(_) | V::KvlistValue(_) => Owned::Json(json(value).to_string()),
        // An index into a profile's string table: no meaning in a log or a span.
        V::StringValueStrindex(_) => return None,
    })
}

/// An `AnyValue` as JSON: what a non-string log body is stored as, and
/// the text of an array or a map.
pub fn json(value: &AnyValue) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    match &value.value {
        None => J::Null,
        Some(V::StringValue(s)) => J::String(s.clone()),
        Some(V::BoolValue(b)) => J::Bool(*b),
        Some(V::IntValue(n)) => J::from(*n),
        Some(V::DoubleValue(f)) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or_else(|| J::String(f.to_string())),
        Some(V::BytesValue(b)) => J::String(base64(b)),
        Some(V::ArrayValue(a)) => J::Array(a.values.iter().map(json).collect()),
        Some(V::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv: &KeyValue| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, json)))
                .collect(),
        ),
        Some(V::StringValueStrindex(_)) => J::Null,
    }
}

/// The text a body is stored as: a string as itself (moved), anything
/// else as its JSON.
pub fn body_text(body: Option<AnyValue>) -> String {
    match body {
        None | Some(AnyValue { value: None }) => String::new(),
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        }) => s,
        Some(other) => json(&other).to_string(),
    }
}

/// Lowercase hex of an id; `None` when empty or all zero (no id).
pub fn hex_id(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(|b| *b == 0) {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    Some(s)
}

/// Standard base64 with padding, as OTLP/JSON writes bytes.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn any(v: any_value::Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn values_keep_their_types() {
        use any_value::Value as V;
        assert_eq!(owned(&any(V::IntValue(-3))), Some(Owned::Int(-3)));
        assert_eq!(owned(&any(V::DoubleValue(2.5))), Some(Owned::Double(2.5)));
        assert_eq!(owned(&any(V::BoolValue(true))), Some(Owned::Bool(true)));
        assert_eq!(
            owned(&any(V::BytesValue(b"hi!?".to_vec()))),
            Some(Owned::Str("aGkhPw==".into()))
        );
        let array = any(V::ArrayValue(ArrayValue {
            values: vec![any(V::StringValue("a".into())), any(V::IntValue(1))],
        }));
        assert_eq!(owned(&array), Some(Owned::Json(r#"["a",1]"#.into())));
        let map = any(V::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: Some(array.clone()),
                ..KeyValue::default()
            }],
        }));
        assert_eq!(owned(&map), Some(Owned::Json(r#"{"k":["a",1]}"#.into())));
        assert_eq!(owned(&AnyValue { value: None }), None);
        assert_eq!(body_text(Some(map.clone())), r#"{"k":["a",1]}"#);
        assert_eq!(hex_id(&[0; 16]), None);
        assert_eq!(hex_id(&[0xAB, 1]), Some("ab01".into()));
    }
}
