//! [`Ingest`]: the entry point into the ring for records that are not
//! `tracing` events: OpenTelemetry logs and spans (`ringtrail serve`), a
//! gateway's access log, anything with names known only at run time.
//!
//! A [`Record`] goes into the same ring as the layer's events, then
//! through the same writer, redaction, audit kinds, chain, partitions and
//! sinks. Unlike an event it is never dropped quietly: [`Ingest::push`]
//! and [`Ingest::push_all`] say whether it was taken, so a receiver can
//! push back (HTTP 429, gRPC `RESOURCE_EXHAUSTED`) and its client retry.
//!
//! ```
//! use ringtrail::{Field, Record, Refused, Value};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (_layer, guard) = ringtrail::Builder::new().null_sink().build()?;
//! let ingest = guard.ingest();
//! let fields = [
//!     Field { name: "http.response.status_code", value: Value::I64(200) },
//!     Field { name: "tags", value: Value::Json(r#"["a", "b"]"#) },
//! ];
//! let mut context = [None; ringtrail::row::CONTEXT_LEN];
//! context[0] = Some("4bf92f3577b34da6a3ce929d0e0e4736");
//! let record = Record {
//!     ts_unix_nanos: 1_796_256_000_000_000_000,
//!     level: ringtrail::row::LEVEL_INFO,
//!     target: "gateway.access",
//!     message: "GET /v1/orders",
//!     context,
//!     fields: &fields,
//!     ..Record::default()
//! };
//! match ingest.push(&record) {
//!     Ok(()) => {}                      // in the ring: it will be written
//!     Err(Refused::Full) => {}          // nothing taken: try again later
//!     Err(Refused::Closed) => {}        // the pipeline is shutting down
//! }
//! guard.flush()?;
//! # Ok(())
//! # }
//! ```
//!
//! The layer's hot path is untouched: a pushed record has a layout of its
//! own in the slot (`record.rs`), which only this module writes and only
//! the writer's decoder reads.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::external;
use super::record::next_seq;
use crate::ring::{Ring, SlotPool};
use crate::row::{Field, Value, CONTEXT_LEN, LEVEL_ERROR, LEVEL_INFO};

/// How deep an array or a map ([`Value::Json`]) may nest; a deeper one is
/// stored as its JSON text, a string.
pub const MAX_JSON_DEPTH: usize = 32;

/// One record to push through [`Ingest`]: what a row holds, with every
/// name given at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    /// The record's time, in nanoseconds since the Unix epoch. As for an
    /// event, a time far from the writer's clock is clamped, the original
    /// kept as the field `ts.original`.
    pub ts_unix_nanos: i64,
    /// OpenTelemetry severity number, 1 (TRACE) to 24 (FATAL4); see
    /// [`row::LEVEL_INFO`](crate::row::LEVEL_INFO) and its neighbours.
    pub level: i16,
    /// The `target` column: a module path, an instrumentation scope's
    /// name, or [`audit::TARGET`](crate::audit::TARGET) for an audit point.
    pub target: &'a str,
    /// The message; may be empty.
    pub message: &'a str,
    /// The `span_name` column.
    pub span_name: Option<&'a str>,
    /// The context ids, indexed like
    /// [`CONTEXT_KEYS`](crate::row::CONTEXT_KEYS). A field named like one
    /// of them fills it too, as an event's does.
    pub context: [Option<&'a str>; CONTEXT_LEN],
    /// The fields, with their names. A [`Value::Json`] must be a JSON
    /// array or object; it is checked and rewritten in the encoder's form,
    /// and anything else is stored as its text, a string.
    pub fields: &'a [Field<'a>],
}

impl Default for Record<'_> {
    fn default() -> Self {
        Record {
            ts_unix_nanos: 0,
            level: LEVEL_INFO,
            target: "",
            message: "",
            span_name: None,
            context: [None; CONTEXT_LEN],
            fields: &[],
        }
    }
}

/// Why [`Ingest`] took nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The ring has no room now: retry later (the writer drains it at the
    /// database's pace).
    Full,
    /// The pipeline is shutting down; it takes nothing more.
    Closed,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::Full => "the ring is full",
            Refused::Closed => "the pipeline is shutting down",
        })
    }
}

impl std::error::Error for Refused {}

/// Pushes [`Record`]s into a running pipeline's ring. Made by
/// [`Guard::ingest`](crate::Guard::ingest); cheap to clone, and usable
/// from any thread.
///
/// Pushing never blocks and never waits: a record is taken at once, or
/// refused. It allocates two small vectors a call, and a copy of the
/// fields of a record with an array or a map, to rewrite those.
#[derive(Clone)]
pub struct Ingest {
    ring: Arc<Ring>,
}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ringtrail::Ingest")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A slot claimed for one record: its pool and index.
struct Claimed<'r> {
    pool: &'r SlotPool,
    index: u32,
}

impl Ingest {
    pub(crate) fn new(ring: Arc<Ring>) -> Ingest {
        Ingest { ring }
    }

    /// The most records one [`push_all`](Self::push_all) can ever take:
    /// half the ring's standard slots (a larger batch is always
    /// [`Refused::Full`]; push it in parts).
    pub fn capacity(&self) -> usize {
        (self.ring.slots.capacity() / 2).max(1)
    }

    /// True while the pipeline takes records: it is not shutting down and
    /// the ring has a free standard slot now (a snapshot; a push may still
    /// be refused a moment later). What a health check reports.
    pub fn is_accepting(&self) -> bool {
        !self.ring.is_closed() && self.ring.slots.free_len() > 0
    }

    /// True once the pipeline shuts down.
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }

    /// Pushes one record: `Ok` when it is in the ring.
    pub fn push(&self, record: &Record<'_>) -> Result<(), Refused> {
        self.push_all(std::slice::from_ref(record))
    }

    /// Pushes every record of `records`, or none of them: `Ok` when all
    /// are in the ring, in order; an error when none was taken.
    ///
    /// A record too large for a slot goes to the ring's large size class
    /// (16 KiB); when the batch needs more large slots than the ring has
    /// at all, the rest are cut to fit a standard slot (the row is marked
    /// truncated, each cut text keeps its original length).
    pub fn push_all(&self, records: &[Record<'_>]) -> Result<(), Refused> {
        if self.ring.is_closed() {
            return Err(Refused::Closed);
        }
        if records.len() > self.capacity() {
            return Err(Refused::Full);
        }
        // Arrays and maps in the encoder's form, then each record's fields.
        let mut texts = Vec::new();
        for record in records {
            for field in record.fields {
                if let Value::Json(text) = field.value {
                    texts.push(normalize_json(text));
                }
            }
        }
        let mut texts = texts.iter();
        // A record's own fields, unless it has an array or a map to swap
        // for its rewritten text.
        let fields: Vec<Cow<'_, [Field<'_>]>> = records
            .iter()
            .map(|record| {
                if !record
                    .fields
                    .iter()
                    .any(|f| matches!(f.value, Value::Json(_)))
                {
                    return Cow::Borrowed(record.fields);
                }
                let mut fields = record.fields.to_vec();
                for field in &mut fields {
                    if let Value::Json(_) = field.value {
                        field.value = match texts.next() {
                            Some(Ok(json)) => Value::Json(json),
                            Some(Err(text)) => Value::Str(text),
                            None => unreachable!("one text per array or map"),
                        };
                    }
                }
                Cow::Owned(fields)
            })
            .collect();
        let claimed = self.claim(records, &fields)?;
        let mut urgent = false;
        for ((record, fields), slot) in records.iter().zip(&fields).zip(&claimed) {
            // SAFETY: `slot.index` came from `slot.pool`'s `claim()`, so
            // this thread holds it exclusively until it publishes it below
            // (or `release_all` gives it back); `buf` does not outlive that.
            let buf = unsafe { slot.pool.slot_mut(slot.index) };
            external::write(buf, record, fields, next_seq());
            urgent |= record.level >= LEVEL_ERROR;
        }
        for slot in &claimed {
            slot.pool.publish(slot.index);
        }
        self.ring.notify_writer(urgent);
        Ok(())
    }

    /// A slot for every record, or none: on a failure every slot claimed
    /// so far goes back.
    fn claim<'r>(
        &'r self,
        records: &[Record<'_>],
        fields: &[Cow<'_, [Field<'_>]>],
    ) -> Result<Vec<Claimed<'r>>, Refused> {
        let ring = &*self.ring;
        let standard = ring.slots.record_size();
        let large_slots = ring.large().map_or(0, SlotPool::capacity);
        let mut large_wanted = 0;
        let mut claimed = Vec::with_capacity(records.len());
        for (record, fields) in records.iter().zip(fields) {
            let need = external::encoded_len(record, fields);
            let large = match ring.large() {
                Some(large) if need > standard && large_wanted < large_slots => {
                    large_wanted += 1;
                    Some(large)
                }
                _ => None,
            };
            let got = match large {
                Some(pool) => pool.claim().map(|index| Claimed { pool, index }),
                None => self.claim_standard(record),
            };
            match got {
                Some(slot) => claimed.push(slot),
                None => {
                    for slot in claimed {
                        slot.pool.release(slot.index);
                    }
                    return Err(match ring.is_closed() {
                        true => Refused::Closed,
                        false => Refused::Full,
                    });
                }
            }
        }
        Ok(claimed)
    }

    /// A standard slot, or for an audit point one of the audit reserve.
    fn claim_standard(&self, record: &Record<'_>) -> Option<Claimed<'_>> {
        let ring = &*self.ring;
        if let Some(index) = ring.slots.claim() {
            return Some(Claimed {
                pool: &ring.slots,
                index,
            });
        }
        let audit = ring
            .audit_pool()
            .filter(|_| record.target == crate::audit::TARGET)?;
        audit.claim().map(|index| Claimed { pool: audit, index })
    }
}

/// `text`, a JSON array or object, in the encoder's form: no whitespace,
/// strings escaped as [`write_str`](crate::encode::json::write_str) does
/// (NUL as U+FFFD, which `jsonb` cannot hold), numbers as `serde_json`
/// prints them. `Err(text)` when it is not JSON, not an array or an
/// object, or nests deeper than [`MAX_JSON_DEPTH`].
pub(crate) fn normalize_json(text: &str) -> Result<String, &str> {
    use serde_json::Value as Json;
    fn depth_ok(v: &Json, depth: usize) -> bool {
        match v {
            _ if depth > MAX_JSON_DEPTH => false,
            Json::Array(items) => items.iter().all(|v| depth_ok(v, depth + 1)),
            Json::Object(map) => map.values().all(|v| depth_ok(v, depth + 1)),
            _ => true,
        }
    }
    fn write(out: &mut Vec<u8>, v: &Json) {
        use crate::encode::json::write_str;
        match v {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Json::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Json::String(s) => write_str(out, s),
            Json::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(out, item);
                }
                out.push(b']');
            }
            Json::Object(map) => {
                out.push(b'{');
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, key);
                    out.push(b':');
                    write(out, item);
                }
                out.push(b'}');
            }
        }
    }
    let json: Json = serde_json::from_str(text).map_err(|_| text)?;
    if !matches!(json, Json::Array(_) | Json::Object(_)) || !depth_ok(&json, 1) {
        return Err(text);
    }
    let mut out = Vec::with_capacity(text.len());
    write(&mut out, &json);
    // Only whole strings and ASCII were written.
    String::from_utf8(out).map_err(|_| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_rewritten_in_the_encoders_form_or_kept_as_text() {
        assert_eq!(
            normalize_json(r#"[ 1, "a\u0000b", {"k": [true, null, 2.5]} ]"#),
            Ok("[1,\"a\u{FFFD}b\",{\"k\":[true,null,2.5]}]".to_owned())
        );
        assert_eq!(normalize_json("7"), Err("7"));
        assert_eq!(normalize_json("\"s\""), Err("\"s\""));
        assert_eq!(normalize_json("[1,"), Err("[1,"));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(normalize_json(&deep).is_err());
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(normalize_json(&ok).is_ok());
    }
}
