//! Records to rows: the writer's decoder, with the scratch buffers it
//! reuses row after row (so decoding allocates nothing in steady state).
//!
//! One record becomes one [`Row`]: its fields in order, with each cut
//! text's original length as `<name>.truncated_from`; context ids given as
//! event fields put over the span's; the audit point's `kind`; secrets
//! redacted; and a time far outside the writer's clock clamped, the
//! original kept as `ts.original`.

use std::time::Duration;

use crate::audit::contract::{point_of, Point};
use crate::capture::reader::{unpack_context, Entry, Origin, RecordReader};
use crate::contract::{TRUNCATED_FROM, TS_ORIGINAL};
use crate::ids::Uuid7;
use crate::redact::stage::{self, Scratch};
use crate::redact::Redactor;
use crate::row::{recycle, severity_number, Field, Row, Value, CONTEXT_KEYS, CONTEXT_LEN};
use crate::time::clock::{unix_nanos_now, WallTime};

/// Decodes records into rows, reusing its buffers.
pub(crate) struct RowDecoder {
    /// Converts the records' raw clock readings to wall time.
    wall: WallTime,
    /// The writer's clock (Unix nanoseconds), read once per drain pass.
    now_nanos: i64,
    /// Runs on every row; `None` when redaction is off.
    redactor: Option<Redactor>,
    redaction: Scratch,
    /// An event more than this before the writer's clock is clamped to it.
    clamp_past: Duration,
    /// An event more than this after the writer's clock is clamped to it.
    clamp_future: Duration,
    /// Reused for every row's fields; see [`recycle`].
    fields: Vec<Field<'static>>,
    /// Reused for the cut texts of a row (name, original length) and the
    /// names of their `.truncated_from` fields.
    cuts: Vec<(&'static str, u32)>,
    cut_names: String,
    /// Reused for the text of context ids given as non-string event fields
    /// (`user_id = 42`).
    context_text: String,
    /// Reused for a clamped event's original time ([`TS_ORIGINAL`]).
    ts_original: String,
}

impl RowDecoder {
    /// A decoder converting times with `wall`, redacting with `redactor`,
    /// and clamping times outside `clamp_past`..`clamp_future` of the
    /// writer's clock.
    pub(crate) fn new(
        wall: WallTime,
        redactor: Option<Redactor>,
        clamp_past: Duration,
        clamp_future: Duration,
    ) -> RowDecoder {
        RowDecoder {
            wall,
            now_nanos: unix_nanos_now(),
            redactor,
            redaction: Scratch::default(),
            clamp_past,
            clamp_future,
            fields: Vec::with_capacity(32),
            cuts: Vec::with_capacity(4),
            cut_names: String::with_capacity(128),
            context_text: String::with_capacity(64),
            ts_original: String::with_capacity(32),
        }
    }

    /// Re-reads the clocks: once per drain pass.
    pub(crate) fn refresh(&mut self) {
        self.wall.refresh();
        self.now_nanos = unix_nanos_now();
    }

    /// Decodes `record` into a row with the next id from `ids`, and hands
    /// it to `use_row` (the row borrows the record and this decoder's
    /// buffers, so it lives only as long as that call).
    pub(crate) fn decode<R>(
        &mut self,
        record: &RecordReader<'_>,
        ids: &mut Uuid7,
        use_row: impl FnOnce(&Row<'_>) -> R,
    ) -> R {
        let mut fields = recycle(std::mem::take(&mut self.fields));
        let mut cuts = recycle_cuts(std::mem::take(&mut self.cuts));
        let mut message = "";
        // Context ids given as fields of the event itself: they fill their
        // column, win over the span's, and are not repeated in `fields`.
        let mut event_context: [Option<Value<'_>>; CONTEXT_LEN] = [None; CONTEXT_LEN];
        let (mut target, mut span_name, level, file, line) = match record.origin {
            Origin::Event { event, span } => (
                event.target(),
                span.map(|s| s.name()),
                severity_number(event.level()),
                event.file(),
                event.line(),
            ),
            Origin::External { level } => ("", None, level, None, None),
        };
        let names = match record.origin {
            Origin::Event { event, .. } => Some(event.fields()),
            Origin::External { .. } => None,
        };
        for entry in record.entries() {
            let (name, value, cut_from) = match entry {
                Entry::Message { text, cut_from } => {
                    message = text;
                    cuts.extend(cut_from.map(|n| ("message", n)));
                    continue;
                }
                Entry::Target(text) => {
                    target = text;
                    continue;
                }
                Entry::SpanName(text) => {
                    span_name = Some(text);
                    continue;
                }
                Entry::Field {
                    index,
                    value,
                    cut_from,
                } => match names.and_then(|n| n.iter().nth(index)) {
                    Some(field) => (field.name(), value, cut_from),
                    None => continue,
                },
                Entry::Named {
                    name,
                    value,
                    cut_from,
                } => (name, value, cut_from),
            };
            match CONTEXT_KEYS.iter().position(|k| *k == name) {
                Some(key) => event_context[key] = Some(value),
                None => fields.push(Field { name, value }),
            }
            cuts.extend(cut_from.map(|n| (name, n)));
        }
        // Each cut text's original length, as `<name>.truncated_from`.
        self.cut_names.clear();
        for (name, _) in &cuts {
            self.cut_names.push_str(name);
            self.cut_names.push_str(TRUNCATED_FROM);
        }
        let mut at = 0;
        for &(name, original) in &cuts {
            let len = name.len() + TRUNCATED_FROM.len();
            fields.push(Field {
                name: &self.cut_names[at..at + len],
                value: Value::U64(original.into()),
            });
            at += len;
        }
        let mut context = unpack_context(record.context);
        override_context(&mut context, &event_context, &mut self.context_text);
        let kind = point_of(target, &fields).map(Point::kind);
        let redacted = match &self.redactor {
            Some(redactor) => stage::apply(
                redactor,
                &mut message,
                &mut fields,
                &mut context,
                &cuts,
                &mut self.redaction,
            ),
            None => 0,
        };
        let mut ts_unix_nanos = match record.origin {
            Origin::Event { .. } => self.wall.unix_nanos(record.ts_raw),
            Origin::External { .. } => record.ts_raw as i64,
        };
        if let Some(clamped) = clamp(
            ts_unix_nanos,
            self.now_nanos,
            self.clamp_past,
            self.clamp_future,
        ) {
            self.ts_original.clear();
            crate::time::write_rfc3339(&mut self.ts_original, ts_unix_nanos);
            fields.push(Field {
                name: TS_ORIGINAL,
                value: Value::Str(&self.ts_original),
            });
            ts_unix_nanos = clamped;
        }
        let row = Row {
            ts_unix_nanos,
            id: ids.next(ts_unix_nanos),
            level,
            target,
            message,
            fields: &fields,
            context,
            span_name,
            file,
            line,
            truncated: record.truncated,
            kind,
            redacted,
            seq: record.seq,
        };
        let result = use_row(&row);
        self.fields = recycle(fields);
        self.cuts = recycle_cuts(cuts);
        result
    }
}

/// Empties the cut list and gives it back with another lifetime, keeping
/// its allocation (as [`recycle`] does for fields).
fn recycle_cuts<'b>(mut cuts: Vec<(&str, u32)>) -> Vec<(&'b str, u32)> {
    cuts.clear();
    cuts.into_iter().map(|_| unreachable!("empty")).collect()
}

/// The time to store for an event at `ts` when it lies more than `past`
/// before `now` or more than `future` after it (the nearest edge of that
/// window, all in Unix nanoseconds); `None` inside it.
fn clamp(ts: i64, now: i64, past: Duration, future: Duration) -> Option<i64> {
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let (lo, hi) = (
        now.saturating_sub(nanos(past)),
        now.saturating_add(nanos(future)),
    );
    (ts < lo || ts > hi).then(|| ts.clamp(lo, hi))
}

/// Puts the context ids an event gave as its own fields over the span's.
/// A string is used as it is; any other value as its text, written into
/// `text` (cleared first; its capacity is reused row after row).
fn override_context<'a>(
    context: &mut [Option<&'a str>; CONTEXT_LEN],
    event: &[Option<Value<'a>>; CONTEXT_LEN],
    text: &'a mut String,
) {
    use std::fmt::Write as _;
    text.clear();
    let mut spans = [(0, 0); CONTEXT_LEN];
    for (i, value) in event.iter().enumerate() {
        let start = text.len();
        let _ = match value {
            None | Some(Value::Str(_) | Value::Json(_)) => continue,
            Some(Value::Bool(v)) => write!(text, "{v}"),
            Some(Value::I64(v)) => write!(text, "{v}"),
            Some(Value::U64(v)) => write!(text, "{v}"),
            Some(Value::I128(v)) => write!(text, "{v}"),
            Some(Value::U128(v)) => write!(text, "{v}"),
            Some(Value::F64(v)) => write!(text, "{v}"),
        };
        spans[i] = (start, text.len());
    }
    let text: &'a str = text;
    for (i, value) in event.iter().enumerate() {
        match value {
            None => {}
            Some(Value::Str(s) | Value::Json(s)) => context[i] = Some(s),
            Some(_) => context[i] = Some(&text[spans[i].0..spans[i].1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clamp;
    use std::time::Duration;

    #[test]
    fn times_outside_the_window_are_clamped_to_its_edge() {
        const DAY: i64 = 86_400_000_000_000;
        let now = 1_796_256_000_000_000_000;
        let (past, future) = (Duration::from_secs(7 * 86_400), Duration::from_secs(86_400));
        assert_eq!(clamp(now, now, past, future), None);
        assert_eq!(clamp(now - 7 * DAY, now, past, future), None);
        assert_eq!(clamp(now + DAY, now, past, future), None);
        // 1970 and 2100.
        assert_eq!(clamp(0, now, past, future), Some(now - 7 * DAY));
        assert_eq!(
            clamp(4_102_444_800_000_000_000, now, past, future),
            Some(now + DAY)
        );
        assert_eq!(clamp(0, now, Duration::MAX, future), None);
    }
}
