//! The PostgreSQL binary `COPY` codec for the `ringtrail.logs` table.
//!
//! A binary `COPY` stream is a 19-byte header, then one tuple per row, then
//! a 2-byte trailer. A tuple is an `int16` field count followed by each
//! field as an `int32` byte length and that many bytes, or the length `-1`
//! for NULL. Every integer is big-endian. The server is type-exact: each
//! field must be exactly the binary form of its column's type, or the whole
//! batch fails.
//!
//! ```text
//! header   "PGCOPY\n\xff\r\n\0"  flags: i32 = 0  extension length: i32 = 0
//! tuple    count: i16 = 19  { len: i32, bytes[len] } x 19      (len -1 = NULL)
//! ...
//! trailer  -1: i16
//! ```
//!
//! The column list, in `COPY` order, is [`COLUMNS`] (names: [`LOG_COLUMNS`]); [`copy_statement`]
//! builds the matching `COPY ... FROM STDIN (FORMAT binary)` statement.
//!
//! | column | type | from [`Row`](crate::Row) | wire form |
//! |---|---|---|---|
//! | `ts` | `timestamptz` | `ts_unix_nanos` | `put_timestamptz` |
//! | `id` | `uuid` | `id` | `put_uuid` |
//! | `level` | `smallint` | `level` | `put_i16` |
//! | `target`, `message` | `text` | `target`, `message` | `put_text` |
//! | `fields` | `jsonb` | `fields` | `put_jsonb_fields` |
//! | `trace_id` .. `client_id` | `text` | `context`, in [`CONTEXT_KEYS`](crate::row::CONTEXT_KEYS) order | `put_opt_text` |
//! | `span_name`, `file` | `text` | `span_name`, `file` | `put_opt_text` |
//! | `line` | `integer` | `line` (above `i32::MAX` clamped to it) | `put_i32` or `put_null` |
//! | `truncated` | `boolean` | `truncated` | `put_bool` |
//! | `kind` | `smallint` | `kind` (the audit point, or NULL) | `put_i16` or `put_null` |
//! | `redacted` | `smallint` | `redacted` (above `i16::MAX` clamped to it) | `put_i16` |
//! | `seq` | `bigint` | `seq` (above `i64::MAX` clamped to it) | `put_i64` |
//!
//! Nothing here does I/O or can fail. Values PostgreSQL would reject are
//! mapped while encoding (NUL in text becomes U+FFFD, timestamps are clamped
//! into range, `jsonb` gets [`json`](crate::encode::json)'s always-valid JSON), so a
//! row is always written whole and a batch is always a valid stream.
//!
//! [`CopyEncoder`] builds batches; the `put_*` functions (crate-internal)
//! are the field writers it uses, each unit-tested on its own.
//!
//! ```
//! use ringtrail::encode::copy::{copy_statement, CopyEncoder, HEADER_LEN, TRAILER_LEN};
//! use ringtrail::Row;
//!
//! assert!(copy_statement().starts_with("COPY ringtrail.logs (ts, id, level, "));
//!
//! let mut enc = CopyEncoder::new();
//! enc.push_row(&Row { target: "app", message: "hello", ..Row::default() });
//! enc.push_row(&Row { target: "app", message: "world", ..Row::default() });
//! let batch = enc.finish(); // header + 2 tuples + trailer, ready for the sink
//! assert!(batch.len() > HEADER_LEN + TRAILER_LEN);
//!
//! // The encoder is empty again and reuses its buffer for the next batch.
//! assert_eq!(enc.rows(), 0);
//! drop(batch);
//! assert_eq!(enc.finish().len(), HEADER_LEN + TRAILER_LEN); // an empty, valid stream
//! ```

mod columns;
pub(crate) mod decode;
mod encoder;
pub(crate) mod fields;
mod stream;

use columns::WIDTH;

pub(crate) use columns::col;
pub use columns::{Column, ColumnType, COLUMNS, SELECT_COLUMNS};
pub(crate) use decode::{WireMicros, WireUuid};
#[cfg(test)]
pub(crate) use encoder::put_row;
pub(crate) use encoder::put_row_with;
pub use encoder::CopyEncoder;
pub(crate) use stream::{
    put_header, put_header_with_extension, put_trailer, tuple_width, WithColumn,
};
pub use stream::{tuples, Tuples};

/// The 11-byte signature that starts every binary `COPY` stream.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Length of the header `put_header` writes: the signature, an `int32`
/// flags word and an `int32` header-extension length.
pub const HEADER_LEN: usize = 19;

/// Length of the trailer `put_trailer` writes: an `int16` of -1.
pub const TRAILER_LEN: usize = 2;

/// The table [`copy_statement`] loads.
pub const LOG_TABLE: &str = "ringtrail.logs";

/// The names of the columns of `ringtrail.logs` ([`COLUMNS`]), in the
/// order each tuple carries them.
///
/// Every column is listed in the `COPY` statement on purpose: a column left
/// out would take its `DEFAULT`, and a volatile default disables `COPY`'s
/// batched multi-insert.
pub const LOG_COLUMNS: [&str; WIDTH] = columns::NAMES;

/// The field count at the start of every tuple.
const FIELD_COUNT: i16 = WIDTH as i16;

/// The Unix time of PostgreSQL's epoch, 2000-01-01 00:00:00 UTC, in
/// microseconds.
pub const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// The earliest `timestamptz` PostgreSQL accepts, 4714-11-24 00:00:00 UTC BC
/// (Julian day 0), in microseconds since 2000-01-01 UTC.
pub const MIN_TIMESTAMPTZ_MICROS: i64 = -211_813_488_000_000_000;

/// The latest `timestamptz` PostgreSQL accepts, 294276-12-31
/// 23:59:59.999999 UTC, in microseconds since 2000-01-01 UTC.
pub const MAX_TIMESTAMPTZ_MICROS: i64 = 9_223_371_331_200_000_000 - 1;

/// The largest field length the `int32` length prefix can carry.
const MAX_FIELD_LEN: usize = i32::MAX as usize;

/// UTF-8 encoding of U+FFFD REPLACEMENT CHARACTER, written in place of NUL.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Returns the statement that starts a load of [`CopyEncoder`] batches:
/// `COPY ringtrail.logs (ts, id, ..., seq) FROM STDIN (FORMAT binary)`,
/// with the columns of [`LOG_COLUMNS`] in order.
///
/// ```
/// let sql = ringtrail::encode::copy::copy_statement();
/// assert!(sql.starts_with("COPY ringtrail.logs (ts, id, level, target, message, fields, trace_id,"));
/// assert!(sql.ends_with(" line, truncated, kind, redacted, seq) FROM STDIN (FORMAT binary)"));
/// ```
pub fn copy_statement() -> String {
    copy_statement_for(LOG_COLUMNS.len())
}

/// The width of the oldest tuples ringtrail wrote (before migration
/// `0003_audit`): what a spool segment from an older version may carry.
pub(crate) const OLDEST_TUPLE_WIDTH: usize = 16;

/// The `COPY` statement for tuples of the first `columns` of
/// [`LOG_COLUMNS`]: what a spool segment written by an older version
/// carries. Migrations only ever append columns, each with a default, so
/// an older tuple is a prefix of today's and loads as it is (`kind` NULL,
/// `redacted` 0). `columns` above [`LOG_COLUMNS`]'s length is clamped.
pub(crate) fn copy_statement_for(columns: usize) -> String {
    copy_statement_of(LOG_COLUMNS.iter().take(columns).copied())
}

/// The column the shipper appends to every tuple it sends
/// ([`WithColumn`]): the id of the batch the row
/// is committed in, the same for every row of the transaction.
pub(crate) const BATCH_COLUMN: &str = "batch_id";

/// The `COPY` statement for tuples of the first `columns` of
/// [`LOG_COLUMNS`] followed by [`BATCH_COLUMN`]: what the shipper sends.
pub(crate) fn copy_statement_with_batch(columns: usize) -> String {
    copy_statement_of(
        LOG_COLUMNS
            .iter()
            .take(columns)
            .copied()
            .chain([BATCH_COLUMN]),
    )
}

fn copy_statement_of<'a>(columns: impl Iterator<Item = &'a str>) -> String {
    // Built once per connection, not per row, so plain string pushing is fine.
    let mut sql = String::with_capacity(200);
    sql.push_str("COPY ");
    sql.push_str(LOG_TABLE);
    sql.push_str(" (");
    for (i, column) in columns.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(column);
    }
    sql.push_str(") FROM STDIN (FORMAT binary)");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_for_older_tuples_and_with_the_batch_column() {
        let sql = copy_statement_for(OLDEST_TUPLE_WIDTH);
        assert!(sql.ends_with(" file, line, truncated) FROM STDIN (FORMAT binary)"));
        let sql = copy_statement_with_batch(LOG_COLUMNS.len());
        assert!(sql.ends_with(" kind, redacted, seq, batch_id) FROM STDIN (FORMAT binary)"));
    }

    #[test]
    fn with_column_appends_the_batch_id_to_every_tuple() {
        let mut enc = CopyEncoder::new();
        enc.push_row(&Row {
            message: "a",
            ..Row::default()
        });
        enc.push_row(&Row {
            message: "b",
            ..Row::default()
        });
        let stream = enc.finish();
        let mut with = WithColumn::new(&stream, &[7; 16]);
        let mut out = BytesMut::new();
        while with.fill(&mut out, 64 * 1024) {}
        let widened: Vec<_> = tuples(&out).map(|r| out[r].to_vec()).collect();
        assert_eq!(widened.len(), 2);
        let (tuple, column) = widened[1].split_at(widened[1].len() - 20);
        assert_eq!(column, [&16i32.to_be_bytes()[..], &[7; 16]].concat());
        assert_eq!(i16::from_be_bytes([tuple[0], tuple[1]]), 20);
        assert_eq!(out.len(), stream.len() + 2 * 20);
    }
    use bytes::BytesMut;

    use super::encoder::tuple_size_hint;
    use super::fields::*;
    use crate::row::{Field, Row, Value, CONTEXT_KEYS, CONTEXT_LEN, LEVEL_WARN};

    /// One decoded tuple: each field's bytes, `None` for NULL.
    type Tuple = Vec<Option<Vec<u8>>>;

    fn widened(stream: &[u8], value: &[u8], piece: usize) -> (Vec<u8>, usize) {
        let mut with = WithColumn::new(stream, value);
        let (mut out, mut all, mut pieces) = (BytesMut::new(), Vec::new(), 0);
        while with.fill(&mut out, piece) {
            all.extend_from_slice(&out.split());
            pieces += 1;
        }
        assert!(!with.fill(&mut out, piece), "stays done");
        (all, pieces)
    }

    #[test]
    fn with_column_adds_the_value_to_every_tuple_in_any_piece_size() {
        let mut enc = CopyEncoder::new();
        let messages: Vec<String> = (0..50).map(|i| "m".repeat(i * 7)).collect();
        for m in &messages {
            enc.push_row(&Row {
                message: m,
                ..Row::default()
            });
        }
        let stream = enc.finish();
        let id = [0xab; 16];
        let (whole, pieces) = widened(&stream, &id, usize::MAX);
        assert_eq!(pieces, 1);
        let decoded = decode(&whole);
        assert_eq!(decoded.len(), 50);
        for (tuple, original) in decoded.iter().zip(decode(&stream)) {
            assert_eq!(tuple.len(), LOG_COLUMNS.len() + 1);
            assert_eq!(tuple[..LOG_COLUMNS.len()], original[..]);
            assert_eq!(tuple[LOG_COLUMNS.len()].as_deref(), Some(&id[..]));
        }
        for piece in [1, 100, 4096] {
            let (bytes, pieces) = widened(&stream, &id, piece);
            assert_eq!(bytes, whole, "piece size {piece}");
            assert!(pieces > 1);
        }
        // An empty batch stays a valid, empty stream.
        let empty = CopyEncoder::new().finish();
        assert_eq!(widened(&empty, &id, 64).0, empty.to_vec());
    }

    #[test]
    fn with_column_passes_a_malformed_tail_through() {
        let mut enc = CopyEncoder::new();
        enc.push_row(&Row {
            message: "whole",
            ..Row::default()
        });
        enc.push_row(&Row {
            message: "cut",
            ..Row::default()
        });
        let stream = enc.finish();
        let cut = &stream[..stream.len() - 9];
        let (bytes, _) = widened(cut, &[1; 16], 64);
        let first = tuples(cut).next().unwrap();
        // The whole tuple widened, then the cut one exactly as it was.
        assert_eq!(bytes.len(), cut.len() + 20);
        assert_eq!(
            &bytes[bytes.len() - (cut.len() - first.end)..],
            &cut[first.end..]
        );
    }

    /// A minimal binary COPY reader: checks the header and trailer, that
    /// every length is sane, and that nothing trails the stream.
    fn decode(stream: &[u8]) -> Vec<Tuple> {
        fn take<'a>(s: &mut &'a [u8], n: usize) -> &'a [u8] {
            assert!(s.len() >= n, "stream cut short");
            let (head, tail) = s.split_at(n);
            *s = tail;
            head
        }
        let mut s = stream;
        assert_eq!(take(&mut s, 11), SIGNATURE);
        assert_eq!(take(&mut s, 4), [0; 4], "flags");
        assert_eq!(take(&mut s, 4), [0; 4], "header extension");
        let mut tuples = Vec::new();
        loop {
            let count = i16::from_be_bytes(take(&mut s, 2).try_into().unwrap());
            if count == -1 {
                assert!(s.is_empty(), "{} bytes after the trailer", s.len());
                return tuples;
            }
            let mut tuple = Vec::new();
            for _ in 0..count {
                let len = i32::from_be_bytes(take(&mut s, 4).try_into().unwrap());
                if len == -1 {
                    tuple.push(None);
                } else {
                    assert!(len >= 0, "negative length {len}");
                    tuple.push(Some(take(&mut s, len as usize).to_vec()));
                }
            }
            tuples.push(tuple);
        }
    }

    fn written(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf);
        buf.to_vec()
    }

    fn ts_micros(unix_nanos: i64) -> i64 {
        let out = written(|b| put_timestamptz(b, unix_nanos));
        assert_eq!(out[..4], [0, 0, 0, 8]);
        i64::from_be_bytes(out[4..].try_into().unwrap())
    }

    #[test]
    fn header_and_trailer_bytes() {
        assert_eq!(
            written(put_header),
            b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec()
        );
        assert_eq!(written(put_header).len(), HEADER_LEN);
        assert_eq!(written(put_trailer), [0xff, 0xff]);
        assert_eq!(written(put_trailer).len(), TRAILER_LEN);
    }

    #[test]
    fn null_and_fixed_width_fields() {
        assert_eq!(written(put_null), [0xff; 4]);
        assert_eq!(written(|b| put_i16(b, 0x1234)), [0, 0, 0, 2, 0x12, 0x34]);
        assert_eq!(written(|b| put_i16(b, -2)), [0, 0, 0, 2, 0xff, 0xfe]);
        assert_eq!(
            written(|b| put_i32(b, 0x0102_0304)),
            [0, 0, 0, 4, 1, 2, 3, 4]
        );
        assert_eq!(
            written(|b| put_i32(b, -2)),
            [0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(
            written(|b| put_i32(b, i32::MIN)),
            [0, 0, 0, 4, 0x80, 0, 0, 0]
        );
        assert_eq!(written(|b| put_bool(b, true)), [0, 0, 0, 1, 1]);
        assert_eq!(written(|b| put_bool(b, false)), [0, 0, 0, 1, 0]);
    }

    #[test]
    fn uuid_is_raw_bytes() {
        let id: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        let out = written(|b| put_uuid(b, &id));
        assert_eq!(out[..4], [0, 0, 0, 16]);
        assert_eq!(out[4..], id);
    }

    #[test]
    fn timestamptz_epochs() {
        assert_eq!(ts_micros(946_684_800_000_000_000), 0, "2000-01-01");
        assert_eq!(ts_micros(0), -946_684_800_000_000, "1970-01-01");
        assert_eq!(
            written(|b| put_timestamptz(b, 946_684_800_000_001_000)),
            [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        // 2023-11-14T22:13:20.123456789Z, sub-microsecond part dropped.
        assert_eq!(
            ts_micros(1_700_000_000_123_456_789),
            1_700_000_000_123_456 - 946_684_800_000_000
        );
    }

    #[test]
    fn timestamptz_floors_negative_nanos() {
        // Before 1970 the nanos round down, towards the past, like the time.
        assert_eq!(ts_micros(-1), -946_684_800_000_001);
        assert_eq!(ts_micros(-999), -946_684_800_000_001);
        assert_eq!(ts_micros(-1000), -946_684_800_000_001);
        assert_eq!(ts_micros(-1001), -946_684_800_000_002);
        assert_eq!(ts_micros(999), -946_684_800_000_000);
    }

    #[test]
    fn timestamptz_extremes_stay_in_range() {
        for nanos in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
            let t = ts_micros(nanos);
            assert!(
                (MIN_TIMESTAMPTZ_MICROS..=MAX_TIMESTAMPTZ_MICROS).contains(&t),
                "{nanos} -> {t}"
            );
            assert!(t != i64::MIN && t != i64::MAX, "infinity sentinel");
        }
        // 1677-09-21 and 2262-04-11: in range, so not clamped.
        assert_eq!(
            ts_micros(i64::MIN),
            i64::MIN.div_euclid(1000) - PG_EPOCH_UNIX_MICROS
        );
        assert_eq!(ts_micros(i64::MAX), i64::MAX / 1000 - PG_EPOCH_UNIX_MICROS);
    }

    #[test]
    fn timestamptz_range_constants_match_postgres() {
        const DAY: i64 = 86_400_000_000;
        // Julian days: 0 is 4714-11-24 BC, 2451545 is 2000-01-01 and
        // 109203528 is 294277-01-01, the first day PostgreSQL refuses.
        assert_eq!(MIN_TIMESTAMPTZ_MICROS, -2_451_545 * DAY);
        assert_eq!(MAX_TIMESTAMPTZ_MICROS + 1, (109_203_528 - 2_451_545) * DAY);
        assert_eq!(PG_EPOCH_UNIX_MICROS, 10_957 * DAY);
    }

    #[test]
    fn text_without_nul() {
        assert_eq!(written(|b| put_text(b, "")), [0, 0, 0, 0]);
        assert_eq!(written(|b| put_text(b, "héllo")), b"\0\0\0\x06h\xc3\xa9llo");
    }

    #[test]
    fn text_nul_becomes_replacement_and_length_counts_it() {
        assert_eq!(written(|b| put_text(b, "\0")), b"\0\0\0\x03\xef\xbf\xbd");
        let out = written(|b| put_text(b, "\0a\0\0b\0"));
        let body = "\u{FFFD}a\u{FFFD}\u{FFFD}b\u{FFFD}";
        assert_eq!(out[..4], (body.len() as i32).to_be_bytes());
        assert_eq!(&out[4..], body.as_bytes());
        assert!(!out[4..].contains(&0));
    }

    #[test]
    fn opt_text() {
        assert_eq!(written(|b| put_opt_text(b, None)), [0xff; 4]);
        assert_eq!(written(|b| put_opt_text(b, Some("ab"))), b"\0\0\0\x02ab");
        assert_eq!(written(|b| put_opt_text(b, Some(""))), [0, 0, 0, 0]);
    }

    #[test]
    fn jsonb_version_byte_and_length() {
        assert_eq!(written(|b| put_jsonb_fields(b, &[])), b"\0\0\0\x03\x01{}");
        let fields = [
            Field {
                name: "s",
                value: Value::Str("x\0\""),
            },
            Field {
                name: "f",
                value: Value::F64(f64::INFINITY),
            },
        ];
        let mut buf = BytesMut::from(&b"prefix"[..]);
        put_jsonb_fields(&mut buf, &fields);
        let out = &buf[6..];
        let len = i32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 4);
        assert_eq!(out[4], 1);
        let json: serde_json::Value = serde_json::from_slice(&out[5..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"s": "x\u{FFFD}\"", "f": "Infinity"})
        );
    }

    #[test]
    fn columns_and_statement() {
        assert_eq!(LOG_COLUMNS[6..12], CONTEXT_KEYS, "context columns");
        assert_eq!(
            copy_statement(),
            "COPY ringtrail.logs (ts, id, level, target, message, fields, \
             trace_id, user_id, session_id, task_id, context_id, client_id, \
             span_name, file, line, truncated, kind, redacted, seq) FROM STDIN (FORMAT binary)"
        );
    }

    fn full_row_fields() -> [Field<'static>; 3] {
        [
            Field {
                name: "attempt",
                value: Value::U64(3),
            },
            Field {
                name: "ratio",
                value: Value::F64(f64::NAN),
            },
            Field {
                name: "who",
                value: Value::Str("ad\0a"),
            },
        ]
    }

    fn text(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn batch_decodes_to_expected_values() {
        let fields = full_row_fields();
        let id: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
        let full = Row {
            ts_unix_nanos: 1_700_000_000_123_456_789,
            id,
            level: LEVEL_WARN,
            target: "my_app::net",
            message: "retry\0ing",
            fields: &fields,
            context: [Some("t1"), None, Some("s1"), None, None, Some("c1")],
            span_name: Some("request"),
            file: Some("src/net.rs"),
            line: Some(u32::MAX),
            truncated: true,
            kind: Some(4),
            redacted: 70_000,
            seq: 42,
        };
        let bare = Row::default();
        let old = Row {
            ts_unix_nanos: -1,
            line: Some(42),
            ..Row::default()
        };

        let mut enc = CopyEncoder::new();
        assert!(enc.is_empty());
        for row in [&full, &bare, &old] {
            enc.push_row(row);
        }
        assert_eq!(enc.rows(), 3);
        assert!(!enc.is_empty());
        let len_before = enc.bytes_len();
        let batch = enc.finish();
        assert_eq!(batch.len(), len_before + TRAILER_LEN);
        assert!(enc.is_empty());
        assert_eq!(enc.bytes_len(), 0);

        let tuples = decode(&batch);
        assert_eq!(tuples.len(), 3);
        for t in &tuples {
            assert_eq!(t.len(), 19);
        }

        let t = &tuples[0];
        let ts = 1_700_000_000_123_456i64 - PG_EPOCH_UNIX_MICROS;
        assert_eq!(t[0], Some(ts.to_be_bytes().to_vec()));
        assert_eq!(t[1], Some(id.to_vec()));
        assert_eq!(t[2], Some(LEVEL_WARN.to_be_bytes().to_vec()));
        assert_eq!(t[3], text("my_app::net"));
        assert_eq!(t[4], text("retry\u{FFFD}ing"));
        let jsonb = t[5].as_ref().unwrap();
        assert_eq!(jsonb[0], 1);
        let json: serde_json::Value = serde_json::from_slice(&jsonb[1..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"attempt": 3, "ratio": "NaN", "who": "ad\u{FFFD}a"})
        );
        assert_eq!(
            t[6..12],
            [text("t1"), None, text("s1"), None, None, text("c1")]
        );
        assert_eq!(t[12], text("request"));
        assert_eq!(t[13], text("src/net.rs"));
        assert_eq!(t[14], Some(i32::MAX.to_be_bytes().to_vec()), "clamped");
        assert_eq!(t[15], Some(vec![1]));
        assert_eq!(t[16], Some(4i16.to_be_bytes().to_vec()));
        assert_eq!(t[17], Some(i16::MAX.to_be_bytes().to_vec()), "clamped");
        assert_eq!(t[18], Some(42i64.to_be_bytes().to_vec()));

        let t = &tuples[1];
        assert_eq!(t[0], Some((-PG_EPOCH_UNIX_MICROS).to_be_bytes().to_vec()));
        assert_eq!(t[1], Some(vec![0; 16]));
        assert_eq!(t[3], text(""));
        assert_eq!(t[4], text(""));
        assert_eq!(t[5], Some(b"\x01{}".to_vec()));
        assert!(t[6..15].iter().all(Option::is_none), "NULL columns");
        assert_eq!(t[15], Some(vec![0]));
        assert_eq!(t[16], None, "not an audit point");
        assert_eq!(t[17], Some(0i16.to_be_bytes().to_vec()));
        assert_eq!(
            t[18],
            Some(0i64.to_be_bytes().to_vec()),
            "no sequence number"
        );

        let t = &tuples[2];
        assert_eq!(
            t[0],
            Some((-PG_EPOCH_UNIX_MICROS - 1).to_be_bytes().to_vec())
        );
        assert_eq!(t[14], Some(42i32.to_be_bytes().to_vec()));
    }

    #[test]
    fn empty_finish_is_header_and_trailer() {
        let mut enc = CopyEncoder::new();
        let batch = enc.finish();
        assert_eq!(batch.len(), 21);
        assert_eq!(&batch[..], b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0\xff\xff");
        assert!(decode(&batch).is_empty());
        // And again, still valid, from the same encoder.
        assert_eq!(enc.finish(), batch);
    }

    #[test]
    fn finish_twice_gives_two_valid_streams() {
        let mut enc = CopyEncoder::default();
        enc.push_row(&Row {
            message: "one",
            ..Row::default()
        });
        enc.push_row(&Row {
            message: "two",
            ..Row::default()
        });
        let first = enc.finish();
        let second = enc.finish();
        assert_eq!(decode(&first).len(), 2);
        assert_eq!(&second[..HEADER_LEN], &first[..HEADER_LEN], "same header");
        assert_eq!(second.len(), HEADER_LEN + TRAILER_LEN);
        assert!(decode(&second).is_empty());

        enc.push_row(&Row {
            message: "three",
            ..Row::default()
        });
        let third = enc.finish();
        let tuples = decode(&third);
        assert_eq!(tuples.len(), 1);
        assert_eq!(tuples[0][4], text("three"));
        // Earlier batches are untouched by later ones.
        assert_eq!(decode(&first)[1][4], text("two"));
    }

    #[test]
    fn clear_discards_the_batch() {
        let mut enc = CopyEncoder::new();
        enc.push_row(&Row {
            message: "dropped",
            ..Row::default()
        });
        enc.clear();
        assert!(enc.is_empty());
        assert_eq!(enc.bytes_len(), 0);
        enc.push_row(&Row {
            message: "kept",
            ..Row::default()
        });
        let tuples = decode(&enc.finish());
        assert_eq!(tuples.len(), 1);
        assert_eq!(tuples[0][4], text("kept"));
    }

    #[test]
    fn bytes_len_counts_header_and_tuples() {
        let mut enc = CopyEncoder::new();
        assert_eq!(enc.bytes_len(), 0);
        enc.push_row(&Row::default());
        let one = enc.bytes_len();
        enc.push_row(&Row::default());
        assert_eq!(enc.bytes_len() - one, one - HEADER_LEN);
        // Default row: 2 + 19 * 4 + ts 8 + uuid 16 + level 2 + jsonb 3
        // + line NULL + bool 1 + kind NULL + redacted 2 + seq 8 (text ""
        // twice).
        assert_eq!(one - HEADER_LEN, 2 + 19 * 4 + 8 + 16 + 2 + 3 + 1 + 2 + 8);
    }

    #[test]
    fn size_hint_covers_plain_rows() {
        let fields = full_row_fields();
        let row = Row {
            target: "t",
            message: "a message",
            fields: &fields,
            context: [Some("ctx"); CONTEXT_LEN],
            span_name: Some("span"),
            file: Some("file.rs"),
            line: Some(1),
            ..Row::default()
        };
        let mut buf = BytesMut::new();
        put_row(&mut buf, &row);
        // Only the NUL in "who" (3 bytes instead of 1) is not in the hint.
        assert!(buf.len() <= tuple_size_hint(&row) + 2);
    }

    #[test]
    fn buffer_is_reused_after_the_batch_is_dropped() {
        let fields = full_row_fields();
        let row = Row {
            message: "steady state",
            fields: &fields,
            ..Row::default()
        };
        let mut enc = CopyEncoder::new();
        let fill = |enc: &mut CopyEncoder| {
            for _ in 0..500 {
                enc.push_row(&row);
            }
        };

        fill(&mut enc);
        let first = enc.finish();
        let (addr, len) = (first.as_ptr(), first.len());
        drop(first);

        for _ in 0..3 {
            fill(&mut enc);
            // Reclaimed at the first row: the whole allocation, from its start.
            assert!(enc.capacity() >= len);
            let batch = enc.finish();
            assert_eq!(batch.as_ptr(), addr, "no new allocation");
            assert_eq!(batch.len(), len);
            assert_eq!(decode(&batch).len(), 500);
        }
    }

    #[test]
    fn live_batch_is_never_overwritten() {
        let mut enc = CopyEncoder::new();
        for _ in 0..100 {
            enc.push_row(&Row {
                message: "first",
                ..Row::default()
            });
        }
        let first = enc.finish();
        let snapshot = first.to_vec();
        // `first` is still held (say, a retry): the next batch must go elsewhere.
        for _ in 0..100 {
            enc.push_row(&Row {
                message: "later",
                ..Row::default()
            });
        }
        let second = enc.finish();
        assert_ne!(second.as_ptr(), first.as_ptr());
        assert_eq!(&first[..], &snapshot[..]);
        assert!(decode(&second).iter().all(|t| t[4] == text("later")));
    }

    #[test]
    fn debug_shows_shape_not_bytes() {
        let mut enc = CopyEncoder::new();
        enc.push_row(&Row::default());
        let s = format!("{enc:?}");
        assert!(s.starts_with("CopyEncoder { rows: 1, bytes_len: "), "{s}");
    }
}
