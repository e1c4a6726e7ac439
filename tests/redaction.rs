//! Redaction through the real pipeline: a corpus of generated secrets in
//! every place text can be never reaches the table, the dead letters or
//! the spool; benign text stays exactly as it was; HMAC tokens correlate;
//! a bad pattern fails the build.

use ringtrail_testkit as common;

use std::time::Duration;

use ringtrail::redact::Redaction;
use ringtrail::Spool;
use tracing::dispatcher;

/// A small deterministic generator, so every run checks the same corpus.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// One generated secret: the text to log, and the part of it that must
/// never be stored.
struct Secret {
    format: &'static str,
    text: String,
    core: String,
}

fn corpus() -> Vec<Secret> {
    let mut out = Vec::new();
    for seed in 1..=3u64 {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut add = |format: &'static str, text: String, core: String| {
            out.push(Secret { format, text, core });
        };
        let whole = |s: String| (s.clone(), s);
        for prefix in ["AKIA", "ASIA"] {
            let (t, c) = whole(format!("{prefix}{}", g.pick(UPPER_DIGITS, 16)));
            add("aws", t, c);
        }
        for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
            let (t, c) = whole(format!("{prefix}{}", g.pick(ALNUM, 36)));
            add("github", t, c);
        }
        let (t, c) = whole(format!("github_pat_{}", g.pick(ALNUM, 82)));
        add("github_pat", t, c);
        let (t, c) = whole(format!("glpat-{}", g.pick(URL_SAFE, 20)));
        add("gitlab", t, c);
        let (t, c) = whole(format!(
            "xoxb-{}-{}-{}",
            g.pick(b"0123456789", 12),
            g.pick(b"0123456789", 12),
            g.pick(ALNUM, 24)
        ));
        add("slack", t, c);
        let (t, c) = whole(format!("sk_live_{}", g.pick(ALNUM, 24)));
        add("stripe", t, c);
        let (t, c) = whole(format!("rk_live_{}", g.pick(ALNUM, 24)));
        add("stripe_restricted", t, c);
        let (t, c) = whole(format!(
            "sk-{}T3BlbkFJ{}",
            g.pick(ALNUM, 20),
            g.pick(ALNUM, 20)
        ));
        add("openai", t, c);
        let (t, c) = whole(format!("sk-proj-{}", g.pick(URL_SAFE, 64)));
        add("openai_project", t, c);
        let (t, c) = whole(format!("sk-ant-api03-{}AA", g.pick(URL_SAFE, 93)));
        add("anthropic", t, c);
        let (t, c) = whole(format!("AIza{}", g.pick(URL_SAFE, 35)));
        add("google", t, c);
        let (t, c) = whole(format!(
            "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
            g.pick(URL_SAFE, 40),
            g.pick(URL_SAFE, 43)
        ));
        add("jwt", t, c);
        let body = g.pick(BASE64, 64);
        add(
            "pem",
            format!("-----BEGIN RSA PRIVATE KEY-----\nMIIE{body}\n-----END RSA PRIVATE KEY-----"),
            format!("MIIE{body}"),
        );
        let token = g.pick(ALNUM, 32);
        add("bearer", format!("Bearer {token}"), token);
        let password = format!("Pw{}9", g.pick(ALNUM, 14));
        add(
            "url_userinfo",
            format!("postgres://app:{password}@db.internal:5432/app"),
            password,
        );
        let password = format!("Hx{}7", g.pick(ALNUM, 12));
        add("key_value", format!("password={password}"), password);
    }
    out
}

/// Every text the table holds for its rows, one string per row.
fn stored_text(url: &str) -> Vec<String> {
    common::client(url)
        .query(
            "SELECT concat_ws(' ', message, fields::text, target, trace_id, user_id, session_id,
                              task_id, context_id, client_id, span_name, file)
             FROM ringtrail.logs",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug only
struct Request<'a> {
    method: &'a str,
    header: &'a str,
}

/// Logs `secret` the way placement `place` puts it.
fn log_secret(place: usize, secret: &str) {
    match place % 7 {
        0 => tracing::info!("connecting with {} now", secret),
        1 => tracing::info!(note = secret, "a str field"),
        2 => tracing::info!(note = %secret, "a Display field"),
        3 => tracing::info!(request = ?Request { method: "GET", header: secret }, "a Debug field"),
        4 => tracing::info!(
            payload =
                format!("{{\"user\":\"bob\",\"credential_blob\":\"{secret}\",\"n\":3}}").as_str(),
            "JSON-looking text"
        ),
        5 => tracing::info!(
            link = format!("https://api.example.com/v1/items?q=shoes&sig={secret}").as_str(),
            "a URL"
        ),
        _ => {
            let span = tracing::info_span!("request", session_id = %secret);
            let _entered = span.enter();
            tracing::info!("a secret in span context");
        }
    }
}

#[test]
fn no_generated_secret_reaches_the_table_wherever_it_was_logged() {
    let corpus = corpus();
    assert!(corpus.len() >= 50, "{} secrets", corpus.len());
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).record_size(2_048));
    dispatcher::with_default(&dispatch, || {
        for (i, secret) in corpus.iter().enumerate() {
            // Each secret in two places, so every format meets every place.
            log_secret(i, &secret.text);
            log_secret(i + 3, &secret.text);
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!(stats.written, 2 * corpus.len() as u64);
    let rows = stored_text(&url);
    assert_eq!(rows.len(), 2 * corpus.len());
    for secret in &corpus {
        for row in &rows {
            assert!(
                !row.contains(&secret.core),
                "a {} secret was stored: {row}",
                secret.format
            );
        }
    }
    let in_column: i64 = common::client(&url)
        .query_one("SELECT sum(redacted)::bigint FROM ringtrail.logs", &[])
        .unwrap()
        .get(0);
    assert!(
        in_column >= rows.len() as i64,
        "every row redacted something"
    );
    assert_eq!(
        stats.redacted, in_column as u64,
        "Stats::redacted adds up the column"
    );
    // The rest of each row stays readable.
    let kept: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs
             WHERE message IN ('a str field', 'a Debug field', 'a URL', 'JSON-looking text')
                OR message LIKE 'connecting with % now'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(kept > corpus.len() as i64 / 2, "{kept}");
}

#[test]
fn benign_text_and_numeric_counters_stay_untouched() {
    let benign = [
        "0190f5a2-7c1e-7a3b-8d4e-5f6a7b8c9d0e",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "passwordless login enabled",
        "the tokenizer split 42 words",
        "the secretary scheduled a meeting",
        "keyboard layout: US",
        "order 12345 shipped to Paris",
    ];
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        for text in benign {
            tracing::info!(note = text, "{}", text);
        }
        tracing::info!(
            gen_ai.usage.input_tokens = 1234u64,
            tokens.total = 2000u64,
            secrets_scanned = 12u64,
            token_count = "3",
            "counters"
        );
    });
    guard.flush().unwrap();
    assert_eq!(guard.stats().redacted, 0);
    let rows = common::client(&url)
        .query(
            "SELECT message, fields, redacted FROM ringtrail.logs ORDER BY ts, id",
            &[],
        )
        .unwrap();
    for (row, text) in rows.iter().zip(benign) {
        assert_eq!(row.get::<_, &str>(0), text);
        let fields: serde_json::Value = row.get(1);
        assert_eq!(fields["note"], text);
        assert_eq!(row.get::<_, i16>(2), 0);
    }
    let counters: serde_json::Value = rows[benign.len()].get(1);
    assert_eq!(
        counters,
        serde_json::json!({"gen_ai.usage.input_tokens": 1234, "tokens.total": 2000,
                           "secrets_scanned": 12, "token_count": "3"})
    );
}

#[test]
fn dead_letters_and_the_spool_hold_rows_after_redaction() {
    let secret = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    // A dead letter: the server refuses the row, which carries a secret.
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    common::client(&url)
        .batch_execute(
            "ALTER TABLE ringtrail.logs ADD CONSTRAINT no_poison CHECK (message NOT LIKE 'poison%')",
        )
        .unwrap();
    dispatcher::with_default(&dispatch, || {
        tracing::info!(token = secret, "fine");
        tracing::info!("poison with {}", secret);
    });
    guard.flush().unwrap();
    assert_eq!(guard.stats().dead_lettered, 1);
    let dead: Vec<u8> = common::client(&url)
        .query_one(
            "SELECT convert_to(message, 'UTF8') || tuple FROM ringtrail.dead_letters",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        !contains(&dead, secret.as_bytes()),
        "secret in a dead letter"
    );
    assert!(
        contains(&dead, b"[REDACTED"),
        "the redacted row was dead-lettered"
    );
    drop(guard);

    // The spool: PostgreSQL is unreachable, so everything spools.
    let spool = common::spool_dir("redaction");
    let (layer, guard) = ringtrail::Builder::new()
        .postgres("postgres://postgres@127.0.0.1:1/none")
        .spool(Spool::dir(&spool).after(Duration::ZERO))
        .max_retries(0)
        .build()
        .expect("a spool lets the pipeline start without the server");
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || {
        tracing::info!(api_key = secret, "spooled");
        tracing::info!("spooled {}", secret);
    });
    let _ = guard.flush();
    assert_eq!(guard.stats().spooled, 2);
    drop(guard);
    let mut seen = 0;
    for entry in std::fs::read_dir(&spool).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pgcopy") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!contains(&bytes, secret.as_bytes()), "secret in {path:?}");
            seen += 1;
        }
    }
    assert!(seen > 0, "the spool has segments");
    let _ = std::fs::remove_dir_all(&spool);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn hmac_tokens_correlate_equal_secrets_and_differ_by_key() {
    let token_of = |key: &str| -> Vec<String> {
        let url = common::database();
        let (dispatch, guard) =
            common::start(common::builder(&url).redaction(Redaction::new().hmac(key)));
        dispatcher::with_default(&dispatch, || {
            tracing::info!(password = "hunter2", "a");
            tracing::info!(password = "hunter2", "b");
            tracing::info!(password = "correct horse", "c");
        });
        guard.flush().unwrap();
        common::client(&url)
            .query(
                "SELECT fields->>'password' FROM ringtrail.logs ORDER BY message",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let one = token_of("key one");
    assert!(one[0].starts_with("hmac:"), "{one:?}");
    assert_eq!(one[0], one[1], "equal secrets, equal tokens");
    assert_ne!(one[0], one[2]);
    assert!(!one.iter().any(|t| t.contains("hunter2")));
    let two = token_of("key two");
    assert_ne!(one[0], two[0], "another key, another token");
}

#[test]
fn bodies_are_digested_unless_kept_and_a_bad_pattern_fails_the_build() {
    let url = common::database();
    for keep in [false, true] {
        let (dispatch, guard) = common::start(common::builder(&url).keep_bodies(keep));
        dispatcher::with_default(&dispatch, || {
            tracing::info!(
                gen_ai.prompt = "summarize: my password=hunter2 please",
                keep,
                "a model call"
            );
        });
        guard.flush().unwrap();
    }
    let rows = common::client(&url)
        .query(
            "SELECT fields FROM ringtrail.logs ORDER BY (fields->>'keep')::boolean",
            &[],
        )
        .unwrap();
    let digested: serde_json::Value = rows[0].get(0);
    let prompt = digested["gen_ai.prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with("sha256:") && prompt.len() == 71,
        "{prompt}"
    );
    assert_eq!(digested["gen_ai.prompt.bytes"], 37);
    let kept: serde_json::Value = rows[1].get(0);
    assert_eq!(
        kept["gen_ai.prompt"], "summarize: my password=[REDACTED] please",
        "kept, and still redacted"
    );

    let bad = ringtrail::Builder::new()
        .null_sink()
        .redaction(Redaction::new().add_pattern("badge", "EMP-[0-9"))
        .build();
    let error = bad.expect_err("a pattern that does not compile fails the build");
    let text = error.chain();
    assert!(text.contains("badge"), "names the rule: {text}");
    assert!(
        !text.contains("EMP-[0-9"),
        "never echoes the pattern: {text}"
    );
}

/// Every `n`-byte window of `secret`.
fn windows(secret: &str, n: usize) -> impl Iterator<Item = &str> {
    (0..=secret.len().saturating_sub(n)).map(move |i| &secret[i..i + n])
}

/// The rows' stored texts that hold any 8-byte run of `secret`.
fn leaks(rows: &[String], secret: &str) -> Vec<String> {
    rows.iter()
        .filter(|row| windows(secret, 8).any(|w| row.contains(w)))
        .cloned()
        .collect()
}

#[test]
fn a_secret_cut_by_the_record_size_is_never_stored_in_part() {
    let mut g = Gen(0x00c0_ffee);
    let token = g.pick(ALNUM, 36);
    let password = format!("Pw{}9", g.pick(ALNUM, 22));
    let key_id = g.pick(UPPER_DIGITS, 16);
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url).record_size(256).large_records(0));
    dispatcher::with_default(&dispatch, || {
        // The message's share of a 256-byte record is a little over 200
        // bytes: these paddings put the cut before, inside and after each
        // secret.
        for k in 140..=230 {
            let pad = "x".repeat(k);
            tracing::info!("calling {} with ghp_{}", pad, token);
            tracing::info!(
                "calling {} with postgres://app:{}@db.internal/app",
                pad,
                password
            );
            tracing::info!("calling {} with AKIA{} now", pad, key_id);
            tracing::info!(note = format!("{pad} ghp_{token}").as_str(), "a cut field");
        }
    });
    guard.flush().unwrap();
    let rows = stored_text(&url);
    assert_eq!(rows.len(), 4 * 91);
    let cut_inside: i64 = common::client(&url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE truncated
             AND (fields ? 'message.truncated_from' OR fields ? 'note.truncated_from')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(cut_inside > 100, "the cuts happened: {cut_inside}");
    for (what, secret) in [("token", &token), ("password", &password)] {
        let leaked = leaks(&rows, secret);
        assert!(
            leaked.is_empty(),
            "part of the {what} was stored: {leaked:#?}"
        );
    }
    // An AWS key id is 16 characters after its prefix: any 6 of them
    // would narrow it down.
    let leaked: Vec<_> = rows
        .iter()
        .filter(|row| windows(&key_id, 6).any(|w| row.contains(w)))
        .collect();
    assert!(
        leaked.is_empty(),
        "part of the key id was stored: {leaked:#?}"
    );
}

#[test]
fn a_secret_in_a_context_id_cut_at_255_bytes_is_never_stored_in_part() {
    let mut g = Gen(0x5ca1_ab1e);
    let token = g.pick(ALNUM, 36);
    let password = format!("Pw{}9", g.pick(ALNUM, 22));
    let as_field = |pad: &str| {
        tracing::info!(
            session_id = format!("{pad}-ghp_{token}").as_str(),
            "an id as a field"
        );
    };
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        for k in 200..=256 {
            let pad = "s".repeat(k);
            // Span context is cut at 255 bytes when the span is made.
            let span = tracing::info_span!("request", session_id = %format!("{pad}-ghp_{token}"));
            let _entered = span.enter();
            tracing::info!("in a span");
            let span = tracing::info_span!(
                "request",
                trace_id = %format!("{pad}-postgres://app:{password}@db/app")
            );
            let _entered = span.enter();
            tracing::info!("in a span");
        }
        // An id given as the event's field: whole in the record,
        // redacted, then cut to 255 bytes by the encoder.
        for k in 200..=256 {
            as_field(&"s".repeat(k));
        }
    });
    guard.flush().unwrap();
    // The same cut short of 255 bytes by a small record, with no large
    // one to move to.
    let cut_url = common::database();
    let (dispatch, cut_guard) =
        common::start(common::builder(&cut_url).record_size(256).large_records(0));
    dispatcher::with_default(&dispatch, || {
        for k in 130..=200 {
            as_field(&"s".repeat(k));
        }
    });
    cut_guard.flush().unwrap();
    let cut_rows: i64 = common::client(&cut_url)
        .query_one(
            "SELECT count(*) FROM ringtrail.logs WHERE fields ? 'session_id.truncated_from'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(cut_rows > 20, "the record cut the ids: {cut_rows}");
    let mut rows = stored_text(&url);
    assert_eq!(rows.len(), 3 * 57);
    rows.extend(stored_text(&cut_url));
    for (what, secret) in [("token", &token), ("password", &password)] {
        let leaked = leaks(&rows, secret);
        assert!(
            leaked.is_empty(),
            "part of the {what} was stored: {leaked:#?}"
        );
    }
}

#[test]
fn numbers_under_secret_keys_are_masked_and_counters_stay() {
    let url = common::database();
    let (dispatch, guard) = common::start(common::builder(&url));
    dispatcher::with_default(&dispatch, || {
        tracing::info!(
            otp_token = 482913u32,
            password = 123456i64,
            api_key = 9876543210u64,
            secret_pin = 1234u64,
            token_value = 839201u64,
            pin = 4321.0f64,
            "numbers under secret keys"
        );
        tracing::info!(
            token_count = 5u64,
            max_tokens = 512u64,
            prompt_tokens = 10u64,
            gen_ai.usage.input_tokens = 1234u64,
            password_length = 16u64,
            cookie_max_age = -1i64,
            keyboard = 3u64,
            "counters"
        );
    });
    guard.flush().unwrap();
    let rows = common::client(&url)
        .query(
            "SELECT fields, redacted FROM ringtrail.logs ORDER BY message DESC",
            &[],
        )
        .unwrap();
    let secrets: serde_json::Value = rows[0].get(0);
    for key in [
        "otp_token",
        "password",
        "api_key",
        "secret_pin",
        "token_value",
        "pin",
    ] {
        assert_eq!(secrets[key], "[REDACTED]", "{key}: {secrets}");
    }
    assert_eq!(rows[0].get::<_, i16>(1), 6);
    let counters: serde_json::Value = rows[1].get(0);
    assert_eq!(
        counters,
        serde_json::json!({"token_count": 5, "max_tokens": 512, "prompt_tokens": 10,
                           "gen_ai.usage.input_tokens": 1234, "password_length": 16,
                           "cookie_max_age": -1, "keyboard": 3})
    );
    assert_eq!(rows[1].get::<_, i16>(1), 0);
}
