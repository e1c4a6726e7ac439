//! The fuzz targets' checks under plain `cargo test`, and tests that those
//! checks (and the independent COPY decoder behind them) can fail.
//!
//! - Every file in `tests/fuzz_corpus/<target>/` (seeds and crash
//!   reproducers) is replayed through the same code the fuzz target runs,
//!   `ringtrail_testkit::fuzz_checks`, with the same bytes-to-input decoding.
//! - The decoder in `ringtrail_testkit::copy_decoder` is shown to refuse each
//!   kind of malformed stream and column with the precise error.
//! - The checks are shown to refuse tampered encoder output, so a pass means
//!   something.

use ringtrail_testkit::copy_decoder;
use ringtrail_testkit::fuzz_checks;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use copy_decoder::{
    decode, decode_logs, encode, parse_json, DecodeError, Json, JsonErrorKind, LogRow, Tuple,
    COLUMNS, HEADER_LEN,
};
use fuzz_checks::{
    copy_encode, fields_input, fields_json, verify_fields_output, verify_stream, ByteSource,
    CopyInput, OwnedRow, OwnedValue,
};
use ringtrail::encode::copy::{copy_statement, CopyEncoder, LOG_COLUMNS};
use ringtrail::encode::json::write_fields;

/// The files of `tests/fuzz_corpus/<target>`, sorted.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every corpus file of `target`; fails naming each file
/// that fails or panics.
fn replay(target: &str, check: fn(&[u8]) -> Result<(), String>) {
    let files = corpus(target);
    assert!(
        files.len() >= 5,
        "tests/fuzz_corpus/{target} has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap();
        match catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", file.display())),
            Err(_) => failures.push(format!("{}: panicked (see above)", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn copy_encode_corpus_replays() {
    replay("copy_encode", copy_encode);
}

#[test]
fn fields_json_corpus_replays() {
    replay("fields_json", fields_json);
}

// ---------------------------------------------------------------------------
// The bytes-to-input format is frozen: corpus files must keep their meaning.
// ---------------------------------------------------------------------------

#[test]
fn input_format_is_stable() {
    // Count 2; "a\0" (ASCII units); I64 edge 3 (i64::MIN); then name "é"
    // (NASTY[6]) with F64 raw bits of 1.5 (selector 0xff is past the edges).
    let mut data = vec![2, 2, b'a', 0, 1, 3, 1, 0x86, 5, 0xff];
    data.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
    assert_eq!(
        fields_input(&data),
        [
            ("a\0".to_owned(), OwnedValue::I64(i64::MIN)),
            ("é".to_owned(), OwnedValue::F64(1.5)),
        ]
    );
    // A string unit >= 0xc0 reads a code point from three bytes.
    let mut s = ByteSource::new(&[2, 0xc0, 0x01, 0xf9, 0x80, 0xc0, 0x00, 0xd8, 0x00]);
    assert_eq!(s.string(), "🦀\u{FFFD}", "U+1F980, then a surrogate");
    assert!(s.is_empty());

    // Empty input: one default-ish row, one batch.
    let input = CopyInput::from_bytes(&[]);
    assert_eq!(input.rows.len(), 1);
    assert_eq!(
        input.rows[0],
        OwnedRow {
            level: 1, // LEVEL_EDGES[0]
            ..OwnedRow::default()
        }
    );
    let input = CopyInput::from_bytes(&[0xff, 0x05, 0x00, 0b1_0111]);
    assert_eq!(input.rows.len(), 1 + 0xff % 12);
    assert_eq!(input.batch_ends, 5);
    assert!(input.hold_batches && input.empty_finish_first && input.small_capacity);
    assert_eq!(input.clear_prefix, 1);
}

// ---------------------------------------------------------------------------
// Known answers, written out literally (not through the shared helpers).
// ---------------------------------------------------------------------------

fn nasty_row() -> OwnedRow {
    OwnedRow {
        ts_unix_nanos: -1,
        id: [0xab; 16],
        level: -7,
        target: "t\0".to_owned(),
        message: "a\0b\"\\\n".to_owned(),
        fields: vec![
            ("n\0".to_owned(), OwnedValue::F64(f64::NAN)),
            ("i".to_owned(), OwnedValue::F64(f64::NEG_INFINITY)),
            ("big".to_owned(), OwnedValue::I128(i128::MIN)),
            ("z".to_owned(), OwnedValue::F64(-0.0)),
            ("s".to_owned(), OwnedValue::Str("\\u0000\0".to_owned())),
            ("i".to_owned(), OwnedValue::Bool(false)),
        ],
        context: [
            Some(String::new()),
            None,
            Some("\0".to_owned()),
            None,
            None,
            Some("c".to_owned()),
        ],
        span_name: None,
        file: Some("f.rs".to_owned()),
        line: Some(u32::MAX),
        truncated: true,
        kind: Some(-3),
        redacted: 2,
        seq: 9,
    }
}

fn encode_rows(rows: &[OwnedRow]) -> Vec<u8> {
    let mut enc = CopyEncoder::new();
    for row in rows {
        row.with_row(|r| enc.push_row(r));
    }
    enc.finish().to_vec()
}

#[test]
fn known_answer_row() {
    let stream = encode_rows(&[nasty_row()]);
    let rows = decode_logs(&stream).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.ts_micros, -946_684_800_000_001, "floored, 2000 epoch");
    assert_eq!(r.id, [0xab; 16]);
    assert_eq!(r.level, -7);
    assert_eq!(r.target, "t\u{FFFD}");
    assert_eq!(r.message, "a\u{FFFD}b\"\\\n");
    assert_eq!(
        r.context,
        [
            Some(String::new()),
            None,
            Some("\u{FFFD}".to_owned()),
            None,
            None,
            Some("c".to_owned())
        ]
    );
    assert_eq!(
        (r.span_name.as_deref(), r.file.as_deref()),
        (None, Some("f.rs"))
    );
    assert_eq!(r.line, Some(i32::MAX));
    assert!(r.truncated);
    assert_eq!(r.kind, Some(-3));
    assert_eq!(r.redacted, 2);
    assert_eq!(r.seq, 9);
    let s = |v: &str| Json::String(v.to_owned());
    assert_eq!(
        r.fields.value,
        Json::Object(vec![
            ("n\u{FFFD}".to_owned(), s("NaN")),
            ("i".to_owned(), s("-Infinity")),
            (
                "big".to_owned(),
                Json::Number("-170141183460469231731687303715884105728".to_owned())
            ),
            ("z".to_owned(), Json::Number("-0.0".to_owned())),
            ("s".to_owned(), s("\\u0000\u{FFFD}")),
            ("i".to_owned(), Json::Bool(false)),
        ])
    );
    verify_stream(&[nasty_row()], &stream).unwrap();
}

// ---------------------------------------------------------------------------
// The decoder refuses malformed streams, precisely.
// ---------------------------------------------------------------------------

fn valid_stream() -> Vec<u8> {
    encode_rows(&[nasty_row(), OwnedRow::default()])
}

/// Offset of the first tuple's field count.
const FIRST_TUPLE: usize = HEADER_LEN;

/// Columns of a tuple of `ringtrail.logs`.
const W: usize = COLUMNS.len();

#[test]
fn decoder_accepts_and_round_trips_valid_streams() {
    let stream = valid_stream();
    let tuples = decode(&stream, W).unwrap();
    assert_eq!(tuples.len(), 2);
    assert_eq!(encode(&tuples), stream, "decode and encode are inverses");
    assert_eq!(decode(&encode(&[]), W).unwrap(), Vec::<Tuple>::new());
}

#[test]
fn decoder_refuses_every_truncation() {
    let stream = valid_stream();
    for cut in 0..stream.len() {
        match decode(&stream[..cut], W) {
            Err(DecodeError::Truncated { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn decoder_refuses_bad_headers() {
    let stream = valid_stream();
    let mut s = stream.clone();
    s[0] = b'X';
    assert!(matches!(
        decode(&s, W),
        Err(DecodeError::BadSignature { .. })
    ));
    assert!(matches!(
        decode(b"COPY", W),
        Err(DecodeError::BadSignature { .. })
    ));
    let mut s = stream.clone();
    s[14] = 1; // flags low byte
    assert_eq!(
        decode(&s, W),
        Err(DecodeError::UnsupportedFlags { flags: 1 })
    );
    let mut s = stream.clone();
    s[12] = 1; // flags bit 16: OIDs
    assert_eq!(
        decode(&s, W),
        Err(DecodeError::UnsupportedFlags { flags: 1 << 16 })
    );
    let mut s = stream;
    s[18] = 4;
    assert_eq!(
        decode(&s, W),
        Err(DecodeError::UnexpectedExtension { len: 4 })
    );
}

#[test]
fn decoder_refuses_bad_tuples_and_trailers() {
    let stream = valid_stream();
    let mut s = stream.clone();
    s[FIRST_TUPLE + 1] = (W - 1) as u8;
    assert_eq!(
        decode(&s, W),
        Err(DecodeError::WrongFieldCount {
            tuple: 0,
            expected: W,
            got: W - 1
        })
    );
    assert!(matches!(
        decode(&stream, W - 1),
        Err(DecodeError::WrongFieldCount { got: W, .. })
    ));
    let mut s = stream.clone();
    s[FIRST_TUPLE..FIRST_TUPLE + 2].copy_from_slice(&(-2i16).to_be_bytes());
    assert!(matches!(
        decode(&s, W),
        Err(DecodeError::BadFieldCount { count: -2, .. })
    ));
    let mut s = stream.clone();
    s[FIRST_TUPLE + 2..FIRST_TUPLE + 6].copy_from_slice(&(-2i32).to_be_bytes());
    assert!(matches!(
        decode(&s, W),
        Err(DecodeError::BadFieldLength {
            tuple: 0,
            field: 0,
            len: -2,
            ..
        })
    ));
    let mut s = stream.clone();
    s.push(0);
    assert_eq!(
        decode(&s, W),
        Err(DecodeError::TrailingBytes {
            offset: stream.len(),
            count: 1
        })
    );
    let mut s = stream.clone();
    s.extend_from_slice(&[0xff, 0xff]);
    assert!(matches!(
        decode(&s, W),
        Err(DecodeError::TrailingBytes { count: 2, .. })
    ));
    // A field length that runs past the end.
    let mut s = stream;
    s[FIRST_TUPLE + 2..FIRST_TUPLE + 6].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        decode(&s, W),
        Err(DecodeError::Truncated {
            what: "field bytes",
            ..
        })
    ));
}

/// The first valid tuple with field `i` replaced.
fn tuple_with(i: usize, value: Option<&[u8]>) -> Result<LogRow, DecodeError> {
    let mut t = decode(&valid_stream(), W).unwrap().swap_remove(0);
    t[i] = value.map(<[u8]>::to_vec);
    LogRow::from_tuple(&t)
}

#[test]
fn decoder_refuses_bad_columns() {
    use DecodeError::*;
    assert!(tuple_with(0, Some(&[0; 8])).is_ok());
    assert_eq!(tuple_with(0, None), Err(UnexpectedNull { column: "ts" }));
    assert_eq!(
        tuple_with(0, Some(&i64::MAX.to_be_bytes())),
        Err(TimestampOutOfRange { micros: i64::MAX })
    );
    assert_eq!(
        tuple_with(0, Some(&(-211_813_488_000_000_001i64).to_be_bytes())),
        Err(TimestampOutOfRange {
            micros: -211_813_488_000_000_001
        })
    );
    assert_eq!(
        tuple_with(1, Some(&[0; 15])),
        Err(WrongWidth {
            column: "id",
            expected: 16,
            got: 15
        })
    );
    assert_eq!(
        tuple_with(2, Some(&[0; 4])),
        Err(WrongWidth {
            column: "level",
            expected: 2,
            got: 4
        })
    );
    assert_eq!(
        tuple_with(4, Some(b"a\0b")),
        Err(NulInText {
            column: "message",
            at: 1
        })
    );
    assert_eq!(
        tuple_with(3, Some(b"\xc3(")),
        Err(InvalidUtf8 {
            column: "target",
            valid_up_to: 0
        })
    );
    assert_eq!(
        tuple_with(5, Some(b"{}")),
        Err(BadJsonbVersion { found: Some(b'{') })
    );
    assert_eq!(
        tuple_with(5, Some(b"")),
        Err(BadJsonbVersion { found: None })
    );
    assert!(matches!(
        tuple_with(5, Some(b"\x01{\"a\":NaN}")),
        Err(BadJson { error, .. }) if error.kind == JsonErrorKind::NonFinite("NaN")
    ));
    assert!(matches!(
        tuple_with(5, Some(b"\x01{\"a\":\"\\u0000\"}")),
        Err(BadJson { error, .. }) if error.kind == JsonErrorKind::NulEscape
    ));
    assert!(matches!(
        tuple_with(5, Some(b"\x01{\"a\":\"\0\"}")),
        Err(NulInText { .. })
    ));
    assert_eq!(
        tuple_with(10, Some(b"x\0")),
        Err(NulInText {
            column: "context_id",
            at: 1
        })
    );
    assert_eq!(
        tuple_with(14, Some(&[0; 2])),
        Err(WrongWidth {
            column: "line",
            expected: 4,
            got: 2
        })
    );
    assert_eq!(
        tuple_with(15, Some(&[2])),
        Err(BadBool {
            column: "truncated",
            byte: 2
        })
    );
    assert_eq!(
        tuple_with(15, None),
        Err(UnexpectedNull {
            column: "truncated"
        })
    );
}

#[test]
fn json_parser_accepts_json_and_only_json() {
    let ok = [
        (r#"{}"#, Json::Object(vec![])),
        (
            r#" {"a" : [1, -0.5e+3, true, null], "a":"\\u0000"} "#,
            Json::Object(vec![
                (
                    "a".to_owned(),
                    Json::Array(vec![
                        Json::Number("1".to_owned()),
                        Json::Number("-0.5e+3".to_owned()),
                        Json::Bool(true),
                        Json::Null,
                    ]),
                ),
                ("a".to_owned(), Json::String("\\u0000".to_owned())),
            ]),
        ),
        (
            r#""\ud83e\udd80\u00e9\/\b\f\n\r\t""#,
            Json::String("🦀é/\u{8}\u{c}\n\r\t".to_owned()),
        ),
        (r#""NaN""#, Json::String("NaN".to_owned())),
    ];
    for (text, want) in ok {
        assert_eq!(parse_json(text), Ok(want), "{text}");
    }
    use JsonErrorKind::*;
    let bad = [
        ("NaN", NonFinite("NaN")),
        ("[Infinity]", NonFinite("Infinity")),
        ("{\"a\":-Infinity}", NonFinite("-Infinity")),
        ("\"\\u0000\"", NulEscape),
        ("\"\\ud800\"", LoneSurrogate(0xd800)),
        ("\"\\ud800\\u0041\"", LoneSurrogate(0xd800)),
        ("\"\\udc00\"", LoneSurrogate(0xdc00)),
        ("\"a\nb\"", RawControl(b'\n')),
        ("\"\\x\"", BadEscape('x')),
        ("01", BadNumber),
        ("1.", BadNumber),
        ("1e", BadNumber),
        ("-", BadNumber),
        (".5", Unexpected('.')),
        ("{}x", Trailing),
        ("{} {}", Trailing),
        ("{\"a\":1,}", Unexpected('}')),
        ("{\"a\" 1}", Unexpected('1')),
        ("", UnexpectedEnd),
        ("\"abc", UnexpectedEnd),
        ("[1,2", UnexpectedEnd),
        ("tru", Unexpected('t')),
    ];
    for (text, kind) in bad {
        assert_eq!(parse_json(text).map_err(|e| e.kind), Err(kind), "{text:?}");
    }
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert_eq!(parse_json(&deep).map_err(|e| e.kind), Err(TooDeep));
}

#[test]
fn decoder_columns_match_the_encoder() {
    assert_eq!(COLUMNS, LOG_COLUMNS);
    assert_eq!(
        copy_statement(),
        format!(
            "COPY ringtrail.logs ({}) FROM STDIN (FORMAT binary)",
            COLUMNS.join(", ")
        )
    );
}

// ---------------------------------------------------------------------------
// The checks refuse wrong output: each tampering below must be caught.
// ---------------------------------------------------------------------------

/// A change to one decoded tuple.
type Tamper = Box<dyn FnOnce(&mut Tuple)>;

/// Decodes the valid stream, lets `tamper` change the first tuple, and
/// returns what `verify_stream` says about the re-encoded result.
fn verify_tampered(tamper: impl FnOnce(&mut Tuple)) -> Result<(), String> {
    let rows = [nasty_row(), OwnedRow::default()];
    let mut tuples = decode(&encode_rows(&rows), W).unwrap();
    tamper(&mut tuples[0]);
    verify_stream(&rows, &encode(&tuples))
}

fn replace_json(t: &mut Tuple, from: &str, to: &str) {
    let jsonb = t[5].as_mut().unwrap();
    let text = std::str::from_utf8(&jsonb[1..]).unwrap();
    assert!(text.contains(from), "{text} lacks {from}");
    let new = text.replacen(from, to, 1);
    jsonb.truncate(1);
    jsonb.extend_from_slice(new.as_bytes());
}

#[test]
fn checks_catch_tampered_streams() {
    assert_eq!(verify_tampered(|_| {}), Ok(()), "untouched stream passes");
    let must_fail: Vec<(&str, Tamper)> = vec![
        (
            "ts off by 1 µs",
            Box::new(|t| {
                let ts = i64::from_be_bytes(t[0].as_deref().unwrap().try_into().unwrap());
                t[0] = Some((ts + 1).to_be_bytes().to_vec());
            }),
        ),
        ("id byte", Box::new(|t| t[1].as_mut().unwrap()[15] ^= 1)),
        (
            "level",
            Box::new(|t| t[2] = Some(9i16.to_be_bytes().to_vec())),
        ),
        (
            "NUL kept, not replaced",
            Box::new(|t| t[3] = Some(b"t\0".to_vec())),
        ),
        ("NUL dropped", Box::new(|t| t[3] = Some(b"t".to_vec()))),
        ("message", Box::new(|t| t[4].as_mut().unwrap().push(b' '))),
        ("empty context turned NULL", Box::new(|t| t[6] = None)),
        (
            "NULL context turned empty",
            Box::new(|t| t[7] = Some(Vec::new())),
        ),
        (
            "line not clamped",
            Box::new(|t| t[14] = Some((-1i32).to_be_bytes().to_vec())),
        ),
        ("line dropped", Box::new(|t| t[14] = None)),
        ("truncated flag", Box::new(|t| t[15] = Some(vec![0]))),
        (
            "kind",
            Box::new(|t| t[16] = Some(2i16.to_be_bytes().to_vec())),
        ),
        (
            "seq",
            Box::new(|t| t[18] = Some(8i64.to_be_bytes().to_vec())),
        ),
        ("columns swapped", Box::new(|t| t.swap(12, 13))),
        (
            "NaN as null",
            Box::new(|t| replace_json(t, "\"NaN\"", "null")),
        ),
        (
            "-Infinity as Infinity",
            Box::new(|t| replace_json(t, "\"-Infinity\"", "\"Infinity\"")),
        ),
        (
            "i128 rounded",
            Box::new(|t| replace_json(t, "105728", "105729")),
        ),
        ("-0.0 as 0.0", Box::new(|t| replace_json(t, "-0.0", "0.0"))),
        (
            "key order",
            Box::new(|t| replace_json(t, "\"big\"", "\"bag\"")),
        ),
        (
            "escaped backslash lost",
            Box::new(|t| replace_json(t, "\\\\u0000", "\\u0041")),
        ),
        (
            "duplicate key dropped",
            Box::new(|t| replace_json(t, ",\"i\":false", "")),
        ),
        (
            "extra member",
            Box::new(|t| replace_json(t, "}", ",\"x\":1}")),
        ),
    ];
    for (what, tamper) in must_fail {
        assert!(verify_tampered(tamper).is_err(), "not caught: {what}");
    }
    // A row too few or too many.
    let rows = [nasty_row(), OwnedRow::default()];
    let stream = encode_rows(&rows);
    assert!(verify_stream(&rows[..1], &stream).is_err());
    assert!(verify_stream(
        &[rows[0].clone(), rows[1].clone(), rows[1].clone()],
        &stream
    )
    .is_err());
}

#[test]
fn fields_check_catches_wrong_json() {
    let fields = nasty_row().fields;
    let mut out = Vec::new();
    write_fields(&mut out, &fuzz_checks::borrow_fields(&fields));
    assert_eq!(verify_fields_output(&fields, &out), Ok(()));
    let text = String::from_utf8(out).unwrap();
    for (from, to) in [
        ("\"NaN\"", "NaN"),
        ("\"-Infinity\"", "-Infinity"),
        ("\u{FFFD}\"", "\\u0000\""),
        ("{", "{\t"), // a raw control byte, even if valid JSON whitespace
        ("\"z\"", "\"z\\n\""),
        ("-0.0", "0.0"),
        ("false", "0"),
    ] {
        let bad = text.replacen(from, to, 1);
        assert_ne!(bad, text, "{from} not found");
        assert!(
            verify_fields_output(&fields, bad.as_bytes()).is_err(),
            "not caught: {from} -> {to}: {bad}"
        );
    }
}
