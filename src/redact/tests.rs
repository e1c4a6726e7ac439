//! Corpus and property tests over the whole engine: generated secrets in
//! every format and every kind of surrounding text are all caught; a
//! benign corpus stays untouched; random and adversarial input never
//! panics.

use super::{Redaction, Redactor};
use crate::ids::Xorshift;

fn redactor() -> Redactor {
    Redaction::new().compile().expect("defaults compile")
}

/// `text` redacted (or as it is when nothing was found), and the count.
fn run(r: &Redactor, key: Option<&str>, text: &str) -> (u32, String) {
    let mut out = String::new();
    let n = r.redact_str(key, text, &mut out);
    if n == 0 {
        assert!(out.is_empty(), "nothing found, yet {out:?} was written");
        assert_eq!(out.capacity(), 0, "the fast path allocated");
        (0, text.to_owned())
    } else {
        (n, out)
    }
}

struct Gen(Xorshift);

impl Gen {
    fn from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[(self.0.next_u64() % alphabet.len() as u64) as usize]))
            .collect()
    }
    fn alnum(&mut self, n: usize) -> String {
        self.from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            n,
        )
    }
    fn upper_alnum(&mut self, n: usize) -> String {
        self.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", n)
    }
    fn url_safe(&mut self, n: usize) -> String {
        self.from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
            n,
        )
    }
    fn hex(&mut self, n: usize) -> String {
        self.from(b"0123456789abcdef", n)
    }
    fn digits(&mut self, n: usize) -> String {
        self.from(b"0123456789", n)
    }
    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[(self.0.next_u64() % options.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.0.next_u64() as u8).collect()
    }
}

fn base64(data: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(table[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// One generated secret: the text to embed, and the part of it that must
/// not survive (the credential after `Bearer `, the password of a URL, the
/// value after `password=`).
struct Secret {
    format: &'static str,
    text: String,
    secret: String,
}

fn secrets(g: &mut Gen) -> Vec<Secret> {
    let mut v = Vec::new();
    let mut add = |format: &'static str, text: String, secret: String| {
        v.push(Secret {
            format,
            text,
            secret,
        })
    };
    let same = |s: String| (s.clone(), s);

    let (t, s) = same(format!(
        "{}{}",
        g.pick(&["AKIA", "ASIA"]),
        g.upper_alnum(16)
    ));
    add("aws", t, s);
    let (t, s) = same(format!(
        "{}_{}",
        g.pick(&["ghp", "gho", "ghu", "ghs", "ghr"]),
        g.alnum(36)
    ));
    add("github", t, s);
    let (t, s) = same(format!("github_pat_{}_{}", g.alnum(22), g.alnum(59)));
    add("github-pat", t, s);
    let (t, s) = same(format!("glpat-{}", g.url_safe(20)));
    add("gitlab", t, s);
    let (t, s) = same(format!(
        "{}-{}-{}-{}",
        g.pick(&["xoxb", "xoxp", "xoxa", "xoxs", "xoxr"]),
        g.digits(11),
        g.digits(12),
        g.alnum(24)
    ));
    add("slack", t, s);
    let (t, s) = same(format!("{}_live_{}", g.pick(&["sk", "rk"]), g.alnum(24)));
    add("stripe", t, s);
    let (t, s) = same(format!("sk-proj-{}", g.url_safe(48)));
    add("openai", t, s);
    let (t, s) = same(format!("sk-{}T3BlbkFJ{}", g.alnum(20), g.alnum(20)));
    add("openai-legacy", t, s);
    let (t, s) = same(format!("sk-ant-api03-{}AA", g.url_safe(93)));
    add("anthropic", t, s);
    let (t, s) = same(format!("AIza{}", g.url_safe(35)));
    add("google", t, s);
    let header = base64(br#"{"alg":"HS256","typ":"JWT"}"#, true);
    let payload = base64(
        format!(r#"{{"sub":"{}","iat":{}}}"#, g.digits(8), g.digits(10)).as_bytes(),
        true,
    );
    let (t, s) = same(format!("{header}.{payload}.{}", g.url_safe(43)));
    add("jwt", t, s);
    let kind = g.pick(&["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA ", ""]);
    let body: Vec<String> = (0..3).map(|_| base64(&g.bytes(48), false)).collect();
    let body = body.join("\n");
    add(
        "pem",
        format!("-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"),
        body,
    );
    let cred = g.from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/",
        32,
    );
    add("bearer", format!("Bearer {cred}"), cred);
    let cred = base64(format!("{}:{}", g.alnum(6), g.alnum(12)).as_bytes(), false);
    add("basic", format!("Basic {cred}"), cred);
    let pass = g.alnum(14);
    add(
        "url",
        format!(
            "{}://{}:{pass}@db{}.internal:5432/app",
            g.pick(&["postgres", "https", "redis", "amqp"]),
            g.alnum(5),
            g.digits(2)
        ),
        pass,
    );
    let pass = g.alnum(12);
    add("kv-password", format!("password={pass}"), pass);
    let pass = g.alnum(16);
    add("kv-api-key", format!("api_key: {pass}"), pass);
    let pass = g.alnum(20);
    add("kv-json", format!(r#"{{"client_secret":"{pass}"}}"#), pass);
    let pass = g.alnum(18);
    add("kv-query", format!("access_token={pass}&state=1"), pass);
    let pass = g.alnum(10);
    add(
        "kv-debug",
        format!(r#"Creds {{ user: "bob", password: "{pass}" }}"#),
        pass,
    );
    // The review's bypasses (M1).
    let pass = g.alnum(14);
    let key = g.pick(&[
        "accesstoken",
        "refreshtoken",
        "apisecret",
        "DB_PASS",
        "newpassword",
    ]);
    add("kv-run-together", format!("{key}={pass}"), pass);
    let pass = g.alnum(12);
    add("kv-spring", format!("password={{noop}}{pass}"), pass);
    let bytes: Vec<String> = g.bytes(12).iter().map(|b| b.to_string()).collect();
    let bytes = bytes.join(", ");
    add(
        "kv-debug-bytes",
        format!("Keys {{ signing_key: [{bytes}] }}"),
        bytes,
    );
    let pass = format!("{}/{}#{}", g.alnum(6), g.alnum(5), g.alnum(4));
    add(
        "url-slash",
        format!("postgres://app:{pass}@db{}.internal/app", g.digits(2)),
        pass,
    );
    let pass = g.alnum(12);
    add(
        "kv-double-escaped",
        format!(r#"{{\\\"password\\\":\\\"{pass}\\\"}}"#),
        pass,
    );
    v
}

/// Surrounding texts: a sentence, JSON-looking text, a URL, Debug output,
/// a log line with other key=values.
const CONTEXTS: &[(&str, &str)] = &[
    ("request failed: ", " (retrying in 5s)"),
    (r#"{"event":"call","note":""#, r#"","n":1}"#),
    ("https://api.example.com/v1/items?page=2&q=", "&sort=asc"),
    ("Request { id: 7, note: ", ", retries: 2 }"),
    (
        "ts=2024-05-01T10:00:00Z level=warn user=bob msg=\"",
        "\" latency_ms=12",
    ),
];

#[test]
fn a_generated_corpus_of_secrets_is_all_caught() {
    let r = redactor();
    let mut total = 0;
    for seed in [0x5eed_0001_u64, 0x5eed_0002, 0x5eed_0003] {
        let mut g = Gen(Xorshift::new(seed));
        for s in secrets(&mut g) {
            total += 1;
            for (before, after) in CONTEXTS {
                let text = format!("{before}{}{after}", s.text);
                let (n, out) = run(&r, None, &text);
                assert!(n >= 1, "{}: nothing found in {text:?}", s.format);
                assert!(
                    !out.contains(&s.secret),
                    "{}: {:?} survived in {out:?}",
                    s.format,
                    s.secret
                );
                // The surrounding text stays readable (its first and last
                // words at least).
                let head = before.split_whitespace().next().unwrap_or("");
                let tail = after.split_whitespace().last().unwrap_or("");
                assert!(
                    out.contains(head) && out.contains(tail),
                    "{}: context lost: {out:?}",
                    s.format
                );
            }
            // As a field value under a harmless name, and as span context.
            for key in ["note", "user_id", "error"] {
                let (n, out) = run(&r, Some(key), &s.text);
                assert!(
                    n >= 1 && !out.contains(&s.secret),
                    "{} as {key}: {out:?}",
                    s.format
                );
            }
        }
    }
    assert!(total >= 50, "only {total} secrets");
}

#[test]
fn a_benign_corpus_stays_untouched() {
    let r = redactor();
    let mut g = Gen(Xorshift::new(0xbe_7194));
    let mut texts: Vec<String> = vec![
        "passwordless login enabled for tenant acme".into(),
        "the tokenizer split the prompt into 812 tokens".into(),
        "the secretary forwarded the keyboard layout".into(),
        "monkey, turkey and donkey keys: none".into(),
        "gen_ai.usage.input_tokens=1234 tokens.total=2048 secrets_scanned=3 token_count=7".into(),
        "session_id=4bf92f35 user_id=u-42 client_id=web trace_id=0af7651916cd43dd".into(),
        "auth.method=oauth decision=allow policy.id=p-7".into(),
        "order placed for ada: 3 items, total 9.50 EUR".into(),
        "GET https://example.com:8443/api/v1/users?id=42&page=3 200 12ms".into(),
        "mail sent to bob@example.com from noreply@example.org".into(),
        "listening on 0.0.0.0:8080, pid 4242, 16 workers".into(),
        "color #ff8800, ratio 16:9, time 10:42:07".into(),
        "path /var/lib/ringtrail/spool/segment-000042.bin".into(),
        "a basic idea; the bearer of news; key points".into(),
        "reset your password via the link we sent".into(),
        "Rust: std::sync::Arc<Mutex<Vec<u8>>> and token::Kind".into(),
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----".into(),
        "eyJ is how base64 JSON starts".into(),
        "3.14159 2.71828 1e-9 -42 18446744073709551615".into(),
    ];
    for _ in 0..5 {
        let b = g.bytes(16);
        texts.push(format!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:x}{:02x}-a{:x}{:02x}-{}",
            b[0],
            b[1],
            b[2],
            b[3],
            b[4],
            b[5],
            b[6] & 15,
            b[7],
            b[8] & 15,
            b[9],
            g.hex(12)
        ));
        texts.push(format!("sha256 {} ok", g.hex(64)));
        texts.push(format!("commit {} (HEAD -> main)", g.hex(40)));
        texts.push(format!("blob {}", base64(&g.bytes(45), false)));
        texts.push(format!(
            "note {}",
            base64(b"hello world, this is only a test of base64", false)
        ));
        texts.push(format!("n={} id={}", g.digits(9), g.digits(19)));
    }
    let mut untouched = 0;
    for text in &texts {
        assert_eq!(run(&r, None, text), (0, text.clone()), "false positive");
        assert_eq!(
            run(&r, Some("message"), text).0,
            0,
            "false positive under a key"
        );
        untouched += 1;
    }
    assert!(untouched >= 40);
    // Counters whose names contain "token" or "secret" stay (the caller
    // never passes numbers; even as text they are counters).
    for key in [
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "tokens.total",
        "secrets_scanned",
        "token_count",
    ] {
        assert_eq!(run(&r, Some(key), "1234").0, 0, "{key}");
    }
    assert_eq!(run(&r, Some("pin_password"), "1234").0, 1);
}

#[test]
fn hmac_mode_correlates_without_revealing() {
    let a = Redaction::new()
        .hmac("key one")
        .compile()
        .expect("compiles");
    let b = Redaction::new()
        .hmac("key two")
        .compile()
        .expect("compiles");
    let text = "retry with AKIAIOSFODNN7EXAMPLE then password=hunter2";
    let (_, a1) = run(&a, None, text);
    let (_, a2) = run(&a, None, "AKIAIOSFODNN7EXAMPLE");
    let (_, b1) = run(&b, None, "AKIAIOSFODNN7EXAMPLE");
    assert!(!a1.contains("AKIA") && !a1.contains("hunter2"), "{a1}");
    let token = a2.clone();
    assert!(token.starts_with("hmac:") && token.len() == 21, "{token}");
    assert!(
        a1.contains(&token),
        "equal secrets, equal tokens: {a1} / {token}"
    );
    assert_ne!(token, b1, "another key, another token");
    // A field's whole value hashes the same as that value found in text.
    let (_, field) = run(&a, Some("password"), "hunter2");
    assert!(a1.ends_with(&format!("password={field}")), "{a1} / {field}");
    // Redacting again changes nothing.
    assert_eq!(run(&a, None, &a1).0, 0);
    assert_eq!(run(&a, Some("password"), &field).0, 0);
}

#[test]
fn redactor_is_send_sync_and_shares() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Redactor>();
    let r = redactor();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || run(&r, None, "key=abc").1)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("no panic"), "key=[REDACTED]");
    }
}

#[test]
fn random_and_adversarial_input_never_panics() {
    const FRAGMENTS: &[&str] = &[
        "AKIA",
        "ASIA",
        "ghp_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "sk-",
        "sk-ant-",
        "sk_live_",
        "AIza",
        "eyJ",
        "eyJhbGciOiJI.",
        "-----BEGIN ",
        "RSA ",
        "PRIVATE KEY-----",
        "-----END ",
        "Bearer ",
        "basic ",
        "dTpw",
        "://",
        "hooks.slack.com/services/",
        ":",
        "@",
        "=",
        "=>",
        "::",
        "==",
        "\"",
        "\\\"",
        "\\",
        "'",
        "password",
        "token",
        "Key",
        "auth",
        "Cookie",
        "Authorization",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "Some(",
        "&",
        ";",
        ",",
        "\n",
        "\r",
        "\t",
        " ",
        "\0",
        "é",
        "€",
        "😀",
        "\u{FFFD}",
        "\u{200B}",
        "K",
        "a",
        "Z",
        "9",
        "_",
        "-",
        ".",
        "/",
        "0123456789abcdef",
        "ABCDEFGHIJKLMNOP",
    ];
    let r = redactor();
    let h = Redaction::new().hmac("k").compile().expect("compiles");
    let mut g = Gen(Xorshift::new(0xfa22));
    let mut found = 0u32;
    for i in 0..6000 {
        let parts = 1 + (g.0.next_u64() % 40) as usize;
        let mut text = String::new();
        for _ in 0..parts {
            if g.0.next_u64().is_multiple_of(4) {
                // Any char, including controls, surrogates' neighbours and
                // the last planes.
                let c = char::from_u32((g.0.next_u64() % 0x11_0000) as u32).unwrap_or('\u{10FFFF}');
                text.push(c);
            } else {
                text.push_str(g.pick(FRAGMENTS));
            }
        }
        let key = match i % 4 {
            0 => None,
            1 => Some("note"),
            2 => Some(g.pick(FRAGMENTS)),
            _ => Some(text.as_str()),
        };
        for red in [&r, &h] {
            let mut out = String::new();
            let n = red.redact_str(key, &text, &mut out);
            if n == 0 {
                assert!(out.is_empty());
            } else {
                found += 1;
                assert!(!out.is_empty());
            }
            // As the start of a longer text: at least what the whole text
            // gives is replaced.
            let mut cut = String::new();
            let m = red.redact_cut_str(key, &text, &mut cut);
            assert!(m >= n.min(1), "{text:?}");
            assert_eq!(m == 0, cut.is_empty());
        }
        // The one-scan prefilter never hides what a rule would find.
        if !r.inner.prefilter.is_match(&text) {
            let mut spans = super::spans::SpanBuf::new();
            for rule in &r.inner.rules {
                rule.collect(0, &text, &mut spans);
            }
            if let Some(trigger) = &r.inner.trigger {
                super::free_text::collect(trigger, &r.inner.keys, &text, &mut spans);
            }
            assert!(
                spans.is_empty(),
                "the prefilter missed something in {text:?}"
            );
        }
    }
    assert!(found > 100, "the fragments should trigger rules: {found}");
}

#[test]
fn an_inserted_secret_never_survives_random_surroundings() {
    let r = redactor();
    let mut g = Gen(Xorshift::new(0x1e5e));
    const JUNK: &[&str] = &[
        "password=\"",
        "token: ",
        "{",
        "\"",
        "'",
        "Bearer",
        "-----BEGIN RSA PRIVATE KEY-----",
        "://u:",
        "@",
        "é",
        "=",
        ":",
        "x",
        "}",
        ";",
        "\\\"",
        "Some(",
        ")",
        "&",
        "key",
    ];
    for _ in 0..3000 {
        let secret = match g.0.next_u64() % 4 {
            0 => format!("AKIA{}", g.upper_alnum(16)),
            1 => format!("ghp_{}", g.alnum(36)),
            2 => format!("glpat-{}", g.url_safe(20)),
            _ => format!("xoxb-{}-{}", g.digits(11), g.alnum(24)),
        };
        let mut before = String::new();
        let mut after = String::new();
        for _ in 0..(g.0.next_u64() % 6) {
            before.push_str(g.pick(JUNK));
        }
        for _ in 0..(g.0.next_u64() % 6) {
            after.push_str(g.pick(JUNK));
        }
        let text = format!("{before} {secret} {after}");
        let (_, out) = run(&r, None, &text);
        assert!(!out.contains(&secret), "{secret} survived in {out:?}");
    }
}

/// Rough cost of the fast path; run with
/// `cargo test --release --lib redact::tests::timing -- --ignored --nocapture`.
#[test]
#[ignore = "timing, not a check"]
fn timing() {
    let r = redactor();
    let clean = "order placed for ada: 3 items, total 9.50 EUR, shipping to Berlin via DHL express (user u-42)";
    let dirty = "login failed for user=bob password=hunter2 from 10.0.0.8";
    let mut out = String::new();
    let cases = [
        ("clean message", clean, None),
        ("secret in message", dirty, None),
        ("short clean field", "/v1/orders", Some("route")),
        (
            "context id",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            Some("trace_id"),
        ),
        ("secret field", "hunter2", Some("db.password")),
    ];
    for (name, text, key) in cases {
        let n = 200_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            out.clear();
            std::hint::black_box(r.redact_str(key, std::hint::black_box(text), &mut out));
        }
        let per = start.elapsed().as_nanos() / n;
        println!("{name}: {per} ns per call ({} bytes)", text.len());
    }
    // What a number costs the writer: its field name judged.
    for (name, key) in [
        ("number, clean name", "user_id_hash"),
        ("number, counter name", "gen_ai.usage.input_tokens"),
    ] {
        let n = 200_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(r.hides_number(std::hint::black_box(key)));
        }
        let per = start.elapsed().as_nanos() / n;
        println!("{name}: {per} ns per call ({} bytes)", key.len());
    }
}

/// `text` as free text, redacted (or as it is).
fn free(r: &Redactor, text: &str) -> String {
    run(r, None, text).1
}

#[test]
fn review_m1_bypasses_are_closed() {
    let r = redactor();
    let table = [
        // Values that start with a bracket.
        ("password={noop}hunter2 next", "password=[REDACTED] next"),
        (
            "password={bcrypt}$2a$10$N9qo8uLOickgx2ZMRZoMye, ok",
            "password=[REDACTED], ok",
        ),
        ("password=(hunter2) next", "password=[REDACTED] next"),
        ("token=<abc>&x=1", "token=[REDACTED]&x=1"),
        (
            "Keys { signing_key: [12, 201, 7] }",
            "Keys { signing_key: [REDACTED] }",
        ),
        (
            r#"Creds { user: "bob", password: [104, 117, 110] }"#,
            r#"Creds { user: "bob", password: [REDACTED] }"#,
        ),
        (
            "Creds { password: Some([104, 117, 110]) }",
            "Creds { password: [REDACTED] }",
        ),
        ("password=(hunter2", "password=[REDACTED]"),
        // Numbers after keys that hold secrets, not counters.
        (
            "password_reset_code=123456",
            "password_reset_code=[REDACTED]",
        ),
        ("secret_pin=1234 ok", "secret_pin=[REDACTED] ok"),
        ("token_value: 839201", "token_value: [REDACTED]"),
        (
            "pin_code=1 password=123456",
            "pin_code=[REDACTED] password=[REDACTED]",
        ),
        // JSON inside a JSON string inside a JSON string: any run of
        // backslashes before the quote.
        (
            r#"{\\\"password\\\":\\\"x\\\"}"#,
            r#"{\\\"password\\\":\\\"[REDACTED]\\\"}"#,
        ),
        (
            r#"{\\\\\\\"api_key\\\\\\\": \\\\\\\"abc\\\\\\\", \\\\\\\"n\\\\\\\":1}"#,
            r#"{\\\\\\\"api_key\\\\\\\": \\\\\\\"[REDACTED]\\\\\\\", \\\\\\\"n\\\\\\\":1}"#,
        ),
        (r#"\\\"token\\\"=abc"#, r#"\\\"token\\\"=[REDACTED]"#),
        // URL passwords with `/`, `#` or `?` in them.
        (
            "dsn postgres://app:pa/ss@db:5432/x ok",
            "dsn postgres://app:[REDACTED:url-password]@db:5432/x ok",
        ),
        (
            "postgres://app:p#ss@db/x",
            "postgres://app:[REDACTED:url-password]@db/x",
        ),
        (
            "postgres://app:p?ss@db/x",
            "postgres://app:[REDACTED:url-password]@db/x",
        ),
        (
            "amqp://app:12345@mq/x",
            "amqp://app:[REDACTED:url-password]@mq/x",
        ),
        // Signed URLs.
        (
            "GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=AbC%2Bx9z&se=2025",
            "GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=[REDACTED]&se=2025",
        ),
        (
            "GET /k?X-Amz-Date=20250101T000000Z&X-Amz-Signature=0a1b2c3d4e",
            "GET /k?X-Amz-Date=20250101T000000Z&X-Amz-Signature=[REDACTED]",
        ),
        (
            "GET /o?X-Goog-Signature=0a1b2c3d4e&x=1",
            "GET /o?X-Goog-Signature=[REDACTED]&x=1",
        ),
    ];
    let mut missed = Vec::new();
    for (text, want) in table {
        let got = free(&r, text);
        if got != want {
            missed.push(format!("{text:?} became {got:?}"));
        }
    }
    // Run-together and short keys, in free text and as field names.
    for key in [
        "accesstoken",
        "refreshtoken",
        "authtoken",
        "apitoken",
        "idtoken",
        "ACCESSTOKEN",
        "secretkey",
        "SECRETKEY",
        "apisecret",
        "newpassword",
        "oldpassword",
        "confirmpassword",
        "userpassword",
        "PGPASSWORD",
        "db_pass",
        "DB_PASS",
        "SMTP_PASS",
        "passcode",
        "pin",
        "otp",
        "mfa_code",
        "mfaCode",
        "x-amz-signature",
        "X-Amz-Signature",
        "X-Goog-Signature",
        "sig",
    ] {
        let text = format!("a {key}=s3cr3t b");
        if !r.is_secret_key(key)
            || free(&r, &text) != format!("a {key}=[REDACTED] b")
            || run(&r, Some(key), "s3cr3t") != (1, "[REDACTED]".into())
            || run(&r, Some(key), "123456") != (1, "[REDACTED]".into())
        {
            missed.push(format!("key {key}"));
        }
    }
    // Numbers under secret keys, as text (numbers proper: `stage.rs`).
    for key in [
        "password",
        "otp_token",
        "secret_pin",
        "token_value",
        "password_reset_code",
    ] {
        if run(&r, Some(key), "482913").0 != 1 {
            missed.push(format!("a number under {key}"));
        }
    }
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

#[test]
fn review_m1_look_alikes_stay() {
    let r = redactor();
    for key in [
        "tokens",
        "max_tokens",
        "prompt_tokens",
        "keyboard",
        "passenger",
        "pinned",
        "signal",
        "design",
        "spin",
        "opinion",
        "compass",
        "bypass",
        "monkey",
        "turkey",
        "passwordless",
        "secretary",
        "tokenizer",
        "sig_alg_name_long",
        "key_id",
        "auth.method",
    ] {
        assert!(!r.is_secret_key(key), "{key}");
    }
    for text in [
        "tokens=1234 token_count=5 max_tokens: 512 prompt_tokens=10",
        "keyboard=us passenger=ada pinned=yes signal=TERM design=flat",
        "spin=3 opinion=good compass=north bypass=cache",
        "password_length: 16 secrets_scanned=12 cookie_max_age=-1 token_ttl=3600",
        "pin_count=3 otp_attempts=2 token_limit=4096 secret_size=32 pass_count=2",
        "GET https://example.com:8443/users?email=bob@example.com 200",
        "https://example.com:8443/path?q=a:b@c",
        "see https://example.com/a:b@c and mailto:bob@example.com",
    ] {
        assert_eq!(free(&r, text), text, "{text}");
    }
    // Counters under secret-looking keys, as text.
    for key in [
        "token_count",
        "password_length",
        "pin_count",
        "cookie_max_age",
    ] {
        assert_eq!(run(&r, Some(key), "16").0, 0, "{key}");
    }
}

/// `text` redacted as the start of a longer text (cut by a record's size
/// limit).
fn cut(r: &Redactor, text: &str) -> String {
    let mut out = String::new();
    if r.redact_cut_str(None, text, &mut out) == 0 {
        assert!(out.is_empty());
        return text.to_owned();
    }
    out
}

#[test]
fn review_m2_the_start_of_a_secret_at_a_cut_is_masked() {
    let r = redactor();
    let table = [
        (
            "calling x with ghp_",
            "calling x with [REDACTED:github-token]",
        ),
        (
            "calling x with ghp_aB3",
            "calling x with [REDACTED:github-token]",
        ),
        ("with github_pat_11ABC", "with [REDACTED:github-token]"),
        ("key AKIAIOSF", "key [REDACTED:aws-access-key-id]"),
        ("using sk-proj-Q7x", "using [REDACTED:openai-key]"),
        ("using sk-ant-api03-ab", "using [REDACTED:anthropic-key]"),
        ("slack xoxb-1234", "slack [REDACTED:slack-token]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIi", "jwt [REDACTED:jwt]"),
        ("with Bearer ab", "with Bearer [REDACTED:bearer]"),
        ("with Basic YWxh", "with Basic [REDACTED:basic-auth]"),
        (
            "connecting to postgres://app:S3cr",
            "connecting to postgres://app:[REDACTED:url-password]",
        ),
        (
            "connecting to postgres://app:pa/ss",
            "connecting to postgres://app:[REDACTED:url-password]",
        ),
        (
            "hook https://hooks.slack.com/services/T000",
            "hook https://hooks.slack.com/services/[REDACTED:slack-webhook]",
        ),
        // The `@` may be a password's own: the host goes too.
        (
            "to postgres://app:pw@db.int",
            "to postgres://app:[REDACTED:url-password]",
        ),
        // A key's value cut short.
        ("login password=hun", "login password=[REDACTED]"),
        (r#"{"api_key":"ab"#, r#"{"api_key":"[REDACTED]"#),
        ("password=(hun", "password=[REDACTED]"),
        (
            "Authorization: Bearer a",
            "Authorization: Bearer [REDACTED:bearer]",
        ),
    ];
    for (text, want) in table {
        assert_eq!(cut(&r, text), want, "{text}");
    }
    // Whole texts, and cut ones with no secret's start at their end, stay.
    for text in [
        "calling x with ghp_aB3",
        "connecting to postgres://app:S3cr",
        "with Bearer ab",
    ] {
        assert_eq!(free(&r, text), text, "not cut: {text}");
    }
    for text in [
        "the tokenizer split the prompt into",
        "GET https://example.com:8443/api/v1/us",
        "listening on https://example.com:84",
        "order 12345 shipped to Par",
        "task-scheduler-for-the-queue",
        "risk",
    ] {
        assert_eq!(cut(&r, text), text, "{text}");
    }
}
