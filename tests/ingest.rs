//! `Ingest`: records that are not `tracing` events, pushed into the same
//! ring and stored by the same writer, against a real PostgreSQL.

use ringtrail_testkit as common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringtrail::row::{CONTEXT_LEN, LEVEL_WARN};
use ringtrail::{Field, Record, Refused, Value};
use serde_json::json;

fn now_nanos() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    // Whole microseconds: what the table keeps.
    (d.as_micros() as i64) * 1_000
}

#[test]
fn a_pushed_record_is_stored_with_its_names_types_and_context() {
    let url = common::migrated_database();
    let (_layer, guard) = common::builder(&url).build().unwrap();
    let ingest = guard.ingest();
    let ts = now_nanos() - 5_000_000;
    let fields = [
        Field {
            name: "http.status",
            value: Value::I64(-7),
        },
        Field {
            name: "big",
            value: Value::U64(u64::MAX),
        },
        Field {
            name: "ratio",
            value: Value::F64(0.25),
        },
        Field {
            name: "ok",
            value: Value::Bool(true),
        },
        Field {
            name: "name",
            value: Value::Str("svc \"a\""),
        },
        Field {
            name: "tags",
            value: Value::Json(r#"[ "a", 1, 2.5, {"k": null} ]"#),
        },
        Field {
            name: "map",
            value: Value::Json(r#"{"nested": {"x": "a\u0000b"}}"#),
        },
        Field {
            name: "not_json",
            value: Value::Json("[1,"),
        },
        Field {
            name: "user_id",
            value: Value::Str("u-field"),
        },
        Field {
            name: "audit.point",
            value: Value::Str("tool"),
        },
        Field {
            name: "gen_ai.tool.name",
            value: Value::Str("lookup_order"),
        },
    ];
    let mut context = [None; CONTEXT_LEN];
    context[0] = Some("4bf92f3577b34da6a3ce929d0e0e4736");
    context[1] = Some("u-context");
    context[2] = Some("s-1");
    let record = Record {
        ts_unix_nanos: ts,
        level: LEVEL_WARN,
        target: ringtrail::audit::TARGET,
        message: "tool call",
        span_name: Some("execute_tool lookup_order"),
        context,
        fields: &fields,
    };
    ingest.push(&record).expect("taken");
    guard.flush().unwrap();
    let mut db = common::client(&url);
    let row = db
        .query_one(
            "SELECT (extract(epoch from ts) * 1000000)::bigint, level, target, message, \
             span_name, trace_id, user_id, session_id, fields::text, kind, truncated, file \
             FROM ringtrail.logs WHERE message = 'tool call'",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), ts / 1_000);
    assert_eq!(row.get::<_, i16>(1), LEVEL_WARN);
    assert_eq!(row.get::<_, &str>(2), ringtrail::audit::TARGET);
    assert_eq!(
        row.get::<_, Option<&str>>(4),
        Some("execute_tool lookup_order")
    );
    assert_eq!(
        row.get::<_, Option<&str>>(5),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(
        row.get::<_, Option<&str>>(6),
        Some("u-field"),
        "a field wins"
    );
    assert_eq!(row.get::<_, Option<&str>>(7), Some("s-1"));
    assert_eq!(row.get::<_, Option<i16>>(9), Some(4), "the tool point");
    assert!(!row.get::<_, bool>(10));
    assert_eq!(row.get::<_, Option<&str>>(11), None);
    let got: serde_json::Value = serde_json::from_str(row.get::<_, &str>(8)).unwrap();
    assert_eq!(
        got,
        json!({
            "http.status": -7,
            "big": u64::MAX,
            "ratio": 0.25,
            "ok": true,
            "name": "svc \"a\"",
            "tags": ["a", 1, 2.5, {"k": null}],
            "map": {"nested": {"x": "a\u{FFFD}b"}},
            "not_json": "[1,",
            "audit.point": "tool",
            "gen_ai.tool.name": "lookup_order",
        })
    );
}

#[test]
fn push_all_takes_every_record_or_none() {
    let url = common::migrated_database();
    // 64 standard slots, no audit reserve, no large class, and a writer
    // that cannot get rid of anything: one lane, a batch queue of one
    // byte, and the table locked by another session. So the ring fills
    // and refusals are certain, not likely.
    let builder = common::builder(&url)
        .capacity(64)
        .audit_reserve(0)
        .large_records(0)
        .batch_rows(4)
        .lanes(1)
        .batch_queue_bytes(1);
    let (_layer, guard) = builder.build().unwrap();
    let ingest = guard.ingest();
    assert_eq!(ingest.capacity(), 32);
    assert!(ingest.is_accepting());
    let records: Vec<Record<'_>> = (0..33)
        .map(|_| Record {
            ts_unix_nanos: now_nanos(),
            message: "batch",
            ..Record::default()
        })
        .collect();
    assert_eq!(
        ingest.push_all(&records),
        Err(Refused::Full),
        "over capacity"
    );
    let mut locker = common::client(&url);
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE ringtrail.logs IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let (mut taken, mut refused) = (0, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while refused < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ring never filled"
        );
        match ingest.push_all(&records[..20]) {
            Ok(()) => taken += 20,
            Err(Refused::Full) => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(Refused::Closed) => unreachable!(),
        }
    }
    // The ring's 64 slots, plus the few rows the blocked writer holds.
    assert!(
        taken > 0 && taken <= 200,
        "{taken} taken before the ring filled"
    );
    lock.rollback().unwrap();
    drop(locker);
    guard.flush().unwrap();
    let stored: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE message = 'batch'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        stored, taken,
        "rows stored = records taken; a refused push took none"
    );
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.dropped, 0, "a refused record is not a drop");
    assert_eq!(ingest.push(&records[0]), Err(Refused::Closed));
    assert!(!ingest.is_accepting());
}

#[test]
fn a_record_larger_than_a_slot_goes_to_the_large_class_or_is_cut_and_marked() {
    let url = common::migrated_database();
    let (_layer, guard) = common::builder(&url).build().unwrap();
    let ingest = guard.ingest();
    let long = "x".repeat(4_000);
    let huge = "y".repeat(40_000);
    let whole = [Field {
        name: "body",
        value: Value::Str(&long),
    }];
    let cut = [
        Field {
            name: "body",
            value: Value::Str(&huge),
        },
        Field {
            name: "after",
            value: Value::I64(1),
        },
    ];
    let records = [
        Record {
            ts_unix_nanos: now_nanos(),
            message: "whole",
            fields: &whole,
            ..Record::default()
        },
        Record {
            ts_unix_nanos: now_nanos(),
            message: "cut",
            fields: &cut,
            ..Record::default()
        },
    ];
    ingest.push_all(&records).unwrap();
    guard.flush().unwrap();
    let mut db = common::client(&url);
    let row = db
        .query_one(
            "SELECT truncated, length(fields->>'body') FROM ringtrail.logs WHERE message = 'whole'",
            &[],
        )
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i32>(1), 4_000);
    let row = db
        .query_one(
            "SELECT truncated, length(fields->>'body'), fields->>'body.truncated_from', \
             fields->>'after' FROM ringtrail.logs WHERE message = 'cut'",
            &[],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert!(row.get::<_, i32>(1) < 16_384);
    assert_eq!(row.get::<_, Option<&str>>(2), Some("40000"));
    assert_eq!(
        row.get::<_, Option<&str>>(3),
        Some("1"),
        "a later field keeps its room"
    );
}

#[test]
fn redaction_applies_to_pushed_records_and_their_arrays() {
    let url = common::migrated_database();
    let builder = common::builder(&url).redaction(ringtrail::redact::Redaction::default());
    let (_layer, guard) = builder.build().unwrap();
    let fields = [
        Field {
            name: "password",
            value: Value::Str("hunter2"),
        },
        Field {
            name: "emails",
            value: Value::Json(r#"["https://bob:s3cretpw@db.example.com/x"]"#),
        },
    ];
    let record = Record {
        ts_unix_nanos: now_nanos(),
        message: "auth Bearer abcdef0123456789xyz",
        fields: &fields,
        ..Record::default()
    };
    guard.ingest().push(&record).unwrap();
    guard.flush().unwrap();
    let row = common::client(&url)
        .query_one(
            "SELECT message, fields::text, redacted FROM ringtrail.logs",
            &[],
        )
        .unwrap();
    let (message, fields): (&str, &str) = (row.get(0), row.get(1));
    assert!(!message.contains("abcdef0123456789xyz"), "{message}");
    assert!(!fields.contains("hunter2"), "{fields}");
    assert!(!fields.contains("s3cretpw"), "{fields}");
    assert!(row.get::<_, i16>(2) >= 3, "{}", row.get::<_, i16>(2));
}
