//! Records that never lose fields: a long text takes only its share of a
//! slot, an event too big for one moves to the large size class, and every
//! cut text keeps its original length in `<name>.truncated_from`. Checked
//! through the whole pipeline, against a real PostgreSQL.

use ringtrail_testkit as common;

use std::thread;

use serde_json::Value;
use tracing::dispatcher;

/// The message, fields and `truncated` of every row, in emission order.
fn rows(url: &str) -> Vec<(String, Value, bool)> {
    common::client(url)
        .query(
            "SELECT message, fields, truncated FROM ringtrail.logs ORDER BY ts, id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn a_100_kb_message_keeps_the_fields_around_it() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    let big = "x".repeat(100_000);
    let long_value = "v".repeat(50_000);
    dispatcher::with_default(&dispatch, || {
        tracing::info!(case = "message last", n = 7u64, ok = true, "{}", big);
        tracing::info!(first = "a", message = %big, last = 3u64, flag = false);
        tracing::info!(text = %long_value, after = "kept", n = 1.5f64, "short");
    });
    guard.flush().unwrap();
    let rows = rows(&url);
    assert_eq!(rows.len(), 3);

    let (message, fields, truncated) = &rows[0];
    assert!(*truncated);
    assert_eq!(fields["case"], "message last");
    assert_eq!(fields["n"], 7);
    assert_eq!(fields["ok"], true);
    assert_eq!(fields["message.truncated_from"], 100_000);
    // It moved to a 16 KiB slot: far more than a standard slot holds.
    assert!(message.len() > 15_000, "{}", message.len());
    assert!(big.starts_with(message.as_str()));

    let (message, fields, _) = &rows[1];
    assert_eq!(
        (&fields["first"], &fields["last"], &fields["flag"]),
        (&"a".into(), &3.into(), &false.into())
    );
    assert_eq!(fields["message.truncated_from"], 100_000);
    assert!(!message.is_empty());

    let (message, fields, _) = &rows[2];
    assert_eq!(message, "short");
    assert_eq!(fields["after"], "kept");
    assert_eq!(fields["n"], 1.5);
    assert_eq!(fields["text.truncated_from"], 50_000);
    let text = fields["text"].as_str().unwrap();
    assert!(long_value.starts_with(text) && text.len() > 15_000);
}

#[test]
fn events_up_to_the_large_class_are_stored_whole() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    let medium = "é".repeat(5_000); // 10,000 bytes: too big for 512, fits 16 KiB
    dispatcher::with_default(&dispatch, || {
        tracing::info!(id = 1u64, tail = "t", "{}", medium);
    });
    guard.flush().unwrap();
    let rows = rows(&url);
    let (message, fields, truncated) = &rows[0];
    assert!(!*truncated, "stored whole in a large slot");
    assert_eq!(message, &medium);
    assert_eq!((&fields["id"], &fields["tail"]), (&1.into(), &"t".into()));
    assert!(fields.get("message.truncated_from").is_none());
}

#[test]
fn multibyte_text_is_cut_exactly_on_a_character_boundary() {
    let url = common::database();
    // 128-byte records and no large class: every long text is cut.
    let (dispatch, guard) = common::start(common::builder(&url).capacity(64).record_size(128));
    // ASCII first: its cut shows the room a text of this call site gets.
    let mut texts = vec!["a".repeat(300)];
    for ch in ['é', '€', '😀'] {
        // An ASCII prefix of 0..4 bytes moves the cut across every byte of
        // a character.
        for prefix in 0..4 {
            texts.push(format!(
                "{}{}",
                "a".repeat(prefix),
                ch.to_string().repeat(200)
            ));
        }
    }
    dispatcher::with_default(&dispatch, || {
        for text in &texts {
            tracing::info!(k = 1u64, "{}", text);
            guard.flush().unwrap();
        }
    });
    let rows = rows(&url);
    assert_eq!(rows.len(), texts.len());
    let room = rows[0].0.len();
    assert!(room > 32 && room < 128, "{room}");
    for ((message, fields, truncated), text) in rows.iter().zip(&texts) {
        assert!(*truncated);
        // Exactly the longest prefix that fits and ends on a character.
        let cut = (0..=room)
            .rev()
            .find(|&n| text.is_char_boundary(n))
            .unwrap();
        assert_eq!(message.as_str(), &text[..cut]);
        assert_eq!(fields["message.truncated_from"], text.len());
        assert_eq!(fields["k"], 1, "the field after the text survived");
    }
}

#[test]
fn the_large_class_under_contention_loses_nothing_and_cuts_honestly() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).capacity(1 << 15));
    let medium = "z".repeat(12_000);
    thread::scope(|s| {
        for t in 0..4u64 {
            let (dispatch, medium) = (dispatch.clone(), &medium);
            s.spawn(move || {
                dispatcher::with_default(&dispatch, || {
                    for i in 0..500u64 {
                        tracing::info!(t, i, "{}", medium);
                    }
                })
            });
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.enqueued + stats.dropped, stats.lost), (2_000, 0));
    assert_eq!(stats.written, stats.enqueued);
    let rows = rows(&url);
    assert_eq!(rows.len() as u64, stats.written);
    let mut whole = 0;
    for (message, fields, truncated) in &rows {
        assert!(fields["t"].is_u64() && fields["i"].is_u64(), "fields kept");
        if *truncated {
            // No large slot was free: cut in a standard one, honestly.
            assert_eq!(fields["message.truncated_from"], 12_000);
            assert!(medium.starts_with(message.as_str()));
        } else {
            assert_eq!(message, &medium);
            whole += 1;
        }
    }
    assert!(whole > 0, "some events got a large slot");
}
