//! The binary COPY encoder, round-tripped through a real PostgreSQL: rows
//! are encoded by hand, loaded with COPY, read back with SELECT, and every
//! column compared.

use ringtrail_testkit as common;

use ringtrail::encode::copy::CopyEncoder;
use ringtrail::{Field, Row, Value};

fn uuid(n: u8) -> [u8; 16] {
    let mut id = [n; 16];
    id[6] = 0x70 | (n & 0x0f);
    id[8] = 0x80 | (n & 0x3f);
    id
}

#[tokio::test]
async fn every_column_survives_the_round_trip() {
    let url = common::database();
    let mut client = common::connect(&url).await;
    ringtrail::schema::apply(&mut client).await.unwrap();

    let fields_a = [
        Field {
            name: "i",
            value: Value::I64(i64::MIN),
        },
        Field {
            name: "u",
            value: Value::U64(u64::MAX),
        },
        Field {
            name: "f",
            value: Value::F64(-1.5e-300),
        },
        Field {
            name: "nan",
            value: Value::F64(f64::NAN),
        },
        Field {
            name: "b",
            value: Value::Bool(true),
        },
        Field {
            name: "big",
            value: Value::I128(i128::MIN),
        },
        Field {
            name: "ubig",
            value: Value::U128(u128::MAX),
        },
        Field {
            name: "s",
            value: Value::Str("quote\" back\\ nl\n nul\0 ü😀"),
        },
    ];
    let rows = [
        Row {
            ts_unix_nanos: 1_764_000_000_123_456_789,
            id: uuid(1),
            level: 17,
            target: "app::db",
            message: "every column\0set",
            fields: &fields_a,
            context: [
                Some("t"),
                Some("u"),
                Some("s"),
                Some("k"),
                Some("c"),
                Some("cl"),
            ],
            span_name: Some("span"),
            file: Some("src/db.rs"),
            line: Some(42),
            truncated: true,
            kind: Some(5),
            redacted: 3,
            seq: 7,
        },
        Row {
            id: uuid(2),
            ts_unix_nanos: -1_000, // before 1970: microsecond floor
            ..Row::default()
        },
        Row {
            id: uuid(3),
            ts_unix_nanos: i64::MAX,
            line: Some(u32::MAX),
            message: "ünïcödé",
            ..Row::default()
        },
    ];
    let mut encoder = CopyEncoder::new();
    for row in &rows {
        encoder.push_row(row);
    }
    assert_eq!(
        common::copy_in(&mut client, encoder.finish())
            .await
            .unwrap(),
        3
    );

    let got = client
        .query(
            "SELECT (extract(epoch FROM ts) * 1000000)::bigint, id::text, level, target, message,
                    fields::text, trace_id, user_id, session_id, task_id, context_id, client_id,
                    span_name, file, line, truncated, kind, redacted, seq
             FROM ringtrail.logs ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 3);

    let r = &got[0];
    assert_eq!(r.get::<_, i64>(0), 1_764_000_000_123_456);
    assert_eq!(r.get::<_, &str>(1), "01010101-0101-7101-8101-010101010101");
    assert_eq!(r.get::<_, i16>(2), 17);
    assert_eq!(r.get::<_, &str>(3), "app::db");
    assert_eq!(r.get::<_, &str>(4), "every column\u{FFFD}set");
    let fields: serde_json::Value = serde_json::from_str(r.get(5)).unwrap();
    assert_eq!(fields["i"], serde_json::json!(i64::MIN));
    assert_eq!(fields["u"], serde_json::json!(u64::MAX));
    // serde_json's default float parser may be one ulp off; read the
    // float back through PostgreSQL instead.
    let f: f64 = client
        .query_one(
            "SELECT (fields->>'f')::float8 FROM ringtrail.logs WHERE level = 17",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(f, -1.5e-300);
    assert_eq!(fields["nan"], "NaN");
    assert_eq!(fields["b"], true);
    assert_eq!(fields["s"], "quote\" back\\ nl\n nul\u{FFFD} ü😀");
    let exact: (String, String) = {
        let q = client
            .query_one(
                "SELECT fields->>'big', fields->>'ubig' FROM ringtrail.logs WHERE level = 17",
                &[],
            )
            .await
            .unwrap();
        (q.get(0), q.get(1))
    };
    assert_eq!(exact, (i128::MIN.to_string(), u128::MAX.to_string()));
    let context: Vec<Option<&str>> = (6..12).map(|i| r.get(i)).collect();
    assert_eq!(
        context,
        [
            Some("t"),
            Some("u"),
            Some("s"),
            Some("k"),
            Some("c"),
            Some("cl")
        ]
    );
    assert_eq!(r.get::<_, Option<&str>>(12), Some("span"));
    assert_eq!(r.get::<_, Option<&str>>(13), Some("src/db.rs"));
    assert_eq!(r.get::<_, Option<i32>>(14), Some(42));
    assert!(r.get::<_, bool>(15));
    assert_eq!(r.get::<_, Option<i16>>(16), Some(5));
    assert_eq!(r.get::<_, i16>(17), 3);
    assert_eq!(r.get::<_, i64>(18), 7);

    let r = &got[1];
    assert_eq!(r.get::<_, i64>(0), -1);
    assert_eq!(r.get::<_, i16>(2), 9);
    assert_eq!(
        (
            r.get::<_, &str>(3),
            r.get::<_, &str>(4),
            r.get::<_, &str>(5)
        ),
        ("", "", "{}")
    );
    for column in 6..14 {
        assert_eq!(
            r.get::<_, Option<String>>(column),
            None,
            "column {column} is NULL"
        );
    }
    assert_eq!(r.get::<_, Option<i32>>(14), None);
    assert!(!r.get::<_, bool>(15));
    assert_eq!(r.get::<_, Option<i16>>(16), None);
    assert_eq!(r.get::<_, i16>(17), 0);
    assert_eq!(r.get::<_, i64>(18), 0, "no sequence number");

    let r = &got[2];
    assert_eq!(r.get::<_, i64>(0), i64::MAX / 1000);
    assert_eq!(r.get::<_, &str>(4), "ünïcödé");
    assert_eq!(r.get::<_, Option<i32>>(14), Some(i32::MAX));
}
