//! Inputs that could poison a COPY batch. Each lands, and no other row of
//! its batch is lost.

use ringtrail_testkit as common;

use std::fmt;

use tracing::dispatcher;

/// A Debug value full of characters that need escaping.
struct Nasty;

impl fmt::Debug for Nasty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nasty { q: \"quoted\", b: \\back\\slash, nl: \n, tab: \t, cr: \r, bell: \u{7}, nul: \0 }")
    }
}

const NASTY_STORED: &str =
    "Nasty { q: \"quoted\", b: \\back\\slash, nl: \n, tab: \t, cr: \r, bell: \u{7}, nul: \u{FFFD} }";

#[test]
fn hostile_values_land_and_spare_the_rest_of_the_batch() {
    let url = common::database();
    // One batch for everything: a poisoned value would take all rows down.
    let (dispatch, guard) =
        common::start(common::builder(&url).flush_interval(std::time::Duration::from_secs(3600)));
    dispatcher::with_default(&dispatch, || {
        tracing::info!("row before");
        tracing::info!(s = "field\0with\0nul", "message\0with nul");
        tracing::info!(
            nan = f64::NAN,
            inf = f64::INFINITY,
            ninf = f64::NEG_INFINITY,
            "floats"
        );
        tracing::info!(big = u64::MAX, small = i64::MIN, "extremes");
        tracing::info!(dbg = ?Nasty, disp = %"a\"b\\c", "debug");
        tracing::info!("");
        tracing::info!(only = 1u64);
        tracing::info!("row after");
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.written, stats.lost, stats.dropped), (8, 0, 0));

    let mut db = common::client(&url);
    let rows = db
        .query(
            "SELECT message, fields, user_id, span_name, truncated FROM ringtrail.logs ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 8, "no row of the batch was lost");
    let message = |i: usize| rows[i].get::<_, String>(0);
    let fields = |i: usize| rows[i].get::<_, serde_json::Value>(1);

    assert_eq!(message(0), "row before");
    assert_eq!(message(1), "message\u{FFFD}with nul");
    assert_eq!(fields(1)["s"], "field\u{FFFD}with\u{FFFD}nul");
    assert_eq!(message(2), "floats");
    assert_eq!(
        fields(2),
        serde_json::json!({"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity"})
    );
    // The strings cast back to float8 in SQL.
    let casted: String = db
        .query_one(
            "SELECT concat_ws(',', (fields->>'nan')::float8, (fields->>'inf')::float8, (fields->>'ninf')::float8)
             FROM ringtrail.logs WHERE message = 'floats'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(casted, "NaN,Infinity,-Infinity");
    let extremes: (String, String) = {
        let r = db
            .query_one(
                "SELECT fields->>'big', fields->>'small' FROM ringtrail.logs WHERE message = 'extremes'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(extremes, (u64::MAX.to_string(), i64::MIN.to_string()));
    assert_eq!(fields(4)["dbg"], NASTY_STORED);
    assert_eq!(fields(4)["disp"], "a\"b\\c");
    assert_eq!(message(5), "");
    assert_eq!(message(6), "");
    assert_eq!(fields(6), serde_json::json!({"only": 1}));
    assert_eq!(message(7), "row after");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row.get::<_, Option<String>>(2),
            None,
            "row {i}: no span, no context"
        );
        assert_eq!(
            row.get::<_, Option<String>>(3),
            None,
            "row {i}: no span name"
        );
        assert!(!row.get::<_, bool>(4), "row {i} is whole");
    }
}

#[test]
fn oversize_text_is_cut_on_a_character_boundary_and_flagged() {
    let url = common::database();
    let record_size = 256;
    let (dispatch, guard) = common::start(
        common::builder(&url)
            .record_size(record_size)
            // The standard slot's cut is what is tested here; bigger events
            // would move to the large class and be stored whole.
            .large_records(0)
            .flush_interval(std::time::Duration::from_secs(3600)),
    );
    // Messages of every length around the record's room, ending in
    // multibyte characters, so some cut falls exactly inside a character
    // at the record's end.
    let mut sent = Vec::new();
    for pad in 180..=260 {
        for tail in ["é", "€", "😀"] {
            sent.push(format!("{}{}", "a".repeat(pad), tail.repeat(4)));
        }
    }
    let long_value = "ü".repeat(400);
    dispatcher::with_default(&dispatch, || {
        for m in &sent {
            tracing::info!("{}", m);
        }
        tracing::info!(value = long_value.as_str(), "short message");
        tracing::info!("whole");
    });
    guard.flush().unwrap();
    let mut db = common::client(&url);
    let rows = db
        .query(
            "SELECT message, truncated, fields->>'value' FROM ringtrail.logs ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), sent.len() + 2);
    let mut cut = 0;
    for (row, original) in rows.iter().zip(&sent) {
        let stored: String = row.get(0);
        let truncated: bool = row.get(1);
        assert!(original.starts_with(&stored), "a prefix of what was sent");
        assert_eq!(
            truncated,
            stored.len() < original.len(),
            "flagged exactly when cut"
        );
        assert!(stored.len() < record_size);
        cut += truncated as usize;
    }
    assert!(
        cut > 0 && cut < sent.len(),
        "some messages fit, some were cut"
    );
    let value_row = &rows[sent.len()];
    assert_eq!(value_row.get::<_, String>(0), "short message");
    assert!(value_row.get::<_, bool>(1));
    let value: String = value_row.get(2);
    assert!(!value.is_empty() && long_value.starts_with(&value));
    let whole = &rows[sent.len() + 1];
    assert_eq!(
        (whole.get::<_, String>(0), whole.get::<_, bool>(1)),
        ("whole".to_owned(), false)
    );
}
