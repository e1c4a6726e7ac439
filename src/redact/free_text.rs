//! Secrets inside free text: a denylisted key followed by its value, in a
//! message or any string value.
//!
//! The key is judged by the same denylist as field names
//! ([`keys`](super::keys)), so `tokenizer=bpe` and `session_id=42` stay
//! while `access_token=…` does not. Only the value is replaced; the key,
//! the punctuation and the rest of the text stay:
//!
//! | text | becomes |
//! |---|---|
//! | `login failed for user=bob password=hunter2 from 10.0.0.8` | `login failed for user=bob password=[REDACTED] from 10.0.0.8` |
//! | `api_key: abc123, retrying` | `api_key: [REDACTED], retrying` |
//! | `{"client_secret":"s3cr3t","scope":"read"}` | `{"client_secret":"[REDACTED]","scope":"read"}` |
//! | `GET /cb?code=x&access_token=abc&state=1` | `GET /cb?code=x&access_token=[REDACTED]&state=1` |
//! | `Creds { user: "bob", password: "hunter2" }` | `Creds { user: "bob", password: "[REDACTED]" }` |
//! | `Config { token: Some("abc") }` | `Config { token: Some("[REDACTED]") }` |
//! | `{\"password\":\"hunter2\"}` (JSON inside a JSON string) | `{\"password\":\"[REDACTED]\"}` |
//! | `Authorization: Bearer abc.def` | `Authorization: Bearer [REDACTED]` |
//! | `Cookie: sid=abc; theme=dark` | `Cookie: [REDACTED]` |
//!
//! **The key** is the run of letters, digits, `_`, `.` and `-` around a
//! denylisted word; it may be quoted (`"key"`, `'key'`, `\"key\"`).
//! **The separator** is `=`, `:`, `=>` or `:=`, with blanks around it
//! (`::` and `==` are not separators: `token::parse`, `token == x`).
//! **The value** is
//!
//! - a quoted string (`"…"` with `\"` escapes, `'…'`, or `\"…\"`): its
//!   contents, up to the closing quote or the end of the text;
//! - a Debug newtype such as `Some("…")` or `Secret("…")`: the quoted
//!   contents;
//! - otherwise the characters up to whitespace, `&`, `,`, `;`, `}`, `"`
//!   or `\"`;
//! - for the headers `Authorization`, `Proxy-Authorization`, `Cookie` and
//!   `Set-Cookie` written unquoted, the rest of the line; an
//!   authorization scheme word (`Bearer`, `Basic`, `Digest`, …) stays.
//!
//! Nothing is replaced when the value is empty, starts a structure (`{`,
//! `[`, `(`, `<`: the keys inside are judged on their own), is one of
//! `null`, `None`, `nil`, `true`, `false`, `undefined`, or is already a
//! replacement (`[REDACTED]`, `hmac:…`). Nor when it is a number after a
//! key that is *about* secrets rather than one, i.e. whose denylisted
//! words do not end it: `token_count=3`, `secrets_scanned=12` and
//! `password_length: 16` stay, while `password=123456` and
//! `token_type=bearer` do not.
//!
//! A denylisted word followed by `:` in prose is taken as a key too:
//! `invalid token: expired` becomes `invalid token: [REDACTED]`. That is
//! the price of failing closed.
//!
//! ```
//! use ringtrail::redact::Redaction;
//!
//! let r = Redaction::new().compile().unwrap();
//! let mut out = String::new();
//! let n = r.redact_str(None, "login failed for user=bob password=hunter2 from 10.0.0.8", &mut out);
//! assert_eq!(n, 1);
//! assert_eq!(out, "login failed for user=bob password=[REDACTED] from 10.0.0.8");
//! ```

use regex::Regex;

use super::keys::{Entry, KeyMatcher, Words};
use super::replace::is_replacement;
use super::spans::{SpanBuf, BY_KEY};

/// The regex that finds candidate keys: a denylisted word not followed by
/// a lowercase letter (so `tokens=`, `tokenizer:` and `keyboard=` are no
/// candidates), the rest of its identifier, an optional closing quote,
/// and a separator. `None` when the denylist is empty.
///
/// It is a locator and a prefilter only (the same regex sits in the
/// one-scan prefilter set); [`collect`] judges each candidate with the
/// key matcher.
pub(crate) fn trigger_pattern(entries: &[Entry]) -> Option<String> {
    let mut words: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.words.last())
        .map(String::as_str)
        .collect();
    words.sort_unstable();
    words.dedup();
    if words.is_empty() {
        return None;
    }
    let alternation: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
    Some(format!(
        r#"(?i:{})(?:[A-Z0-9_.\-][A-Za-z0-9_.\-]*)?(?:\\?["'])?[ \t]*[:=]"#,
        alternation.join("|")
    ))
}

/// Adds the value of every denylisted `key=value` in `text` to `spans`.
pub(crate) fn collect(trigger: &Regex, keys: &KeyMatcher, text: &str, spans: &mut SpanBuf) {
    let b = text.as_bytes();
    if !b.iter().any(|&c| c == b':' || c == b'=') {
        return;
    }
    let mut consumed = 0;
    for m in trigger.find_iter(text) {
        let hit = m.start();
        if hit < consumed {
            continue;
        }
        let mut key_start = hit;
        while key_start > consumed && is_key_byte(b[key_start - 1]) {
            key_start -= 1;
        }
        let mut key_end = hit;
        while key_end < b.len() && is_key_byte(b[key_end]) {
            key_end += 1;
        }
        // Key bytes are ASCII, so both ends are char boundaries.
        let Some(key) = text.get(key_start..key_end) else {
            continue;
        };
        if !keys.matches(key) {
            continue;
        }
        let Some(value_at) = separator(b, key_end) else {
            continue;
        };
        consumed = value_at;
        let Some((start, end, resume)) = value(text, value_at, header(key)) else {
            continue;
        };
        consumed = resume;
        if let Some(v) = text.get(start..end) {
            // A number after a key *about* secrets (`token_count=3`,
            // `secrets_scanned=12`) is a counter, not a secret.
            let counter = is_number(v) && !keys.matches_at_end(key);
            if !is_inert(v) && !counter {
                spans.push(start, end, BY_KEY);
            }
        }
    }
}

/// Bytes of a key in free text.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn is_blank(b: Option<&u8>) -> bool {
    matches!(b, Some(b' ' | b'\t'))
}

/// After a key ending at `i`: an optional closing quote, blanks, `=`, `:`,
/// `=>` or `:=`, blanks. Returns where the value starts.
fn separator(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'"') {
        i += 2;
    } else if matches!(b.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    while is_blank(b.get(i)) {
        i += 1;
    }
    match (b.get(i), b.get(i + 1)) {
        (Some(b'='), Some(b'=')) | (Some(b':'), Some(b':')) => return None,
        (Some(b'='), Some(b'>')) | (Some(b':'), Some(b'=')) => i += 2,
        (Some(b'=' | b':'), _) => i += 1,
        _ => return None,
    }
    while is_blank(b.get(i)) {
        i += 1;
    }
    Some(i)
}

/// Headers whose unquoted value is the rest of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// Not a header of the kind.
    None,
    /// `Authorization`, `Proxy-Authorization`: the scheme word stays.
    Authorization,
    /// `Cookie`, `Set-Cookie`.
    Cookie,
}

fn header(key: &str) -> Header {
    let mut words = Words::new(key);
    let (a, b, c) = (words.next(), words.next(), words.next());
    let is = |w: Option<&str>, s: &str| w.is_some_and(|w| w.eq_ignore_ascii_case(s));
    match (a, b, c) {
        (a, None, None) if is(a, "authorization") => Header::Authorization,
        (a, b, None) if is(a, "proxy") && is(b, "authorization") => Header::Authorization,
        (a, None, None) if is(a, "cookie") => Header::Cookie,
        (a, b, None) if is(a, "set") && is(b, "cookie") => Header::Cookie,
        _ => Header::None,
    }
}

/// The value starting at `i`: `(start, end, resume)`, where `resume` is
/// past any closing quote. `None` when there is no value to replace.
fn value(text: &str, i: usize, header: Header) -> Option<(usize, usize, usize)> {
    let b = text.as_bytes();
    let (start, end, resume) = match *b.get(i)? {
        b'\\' if b.get(i + 1) == Some(&b'"') => {
            let start = i + 2;
            let end = find(b, start, b"\\\"").unwrap_or(b.len());
            (start, end, (end + 2).min(b.len()))
        }
        b'"' => {
            let end = closing_quote(b, i + 1);
            (i + 1, end, (end + 1).min(b.len()))
        }
        b'\'' => {
            let end = find(b, i + 1, b"'").unwrap_or(b.len());
            (i + 1, end, (end + 1).min(b.len()))
        }
        b'{' | b'[' | b'(' | b'<' => return None,
        _ if header != Header::None => {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n' || c == b'\r')
                .map_or(b.len(), |p| i + p);
            (i, end, end)
        }
        first => {
            if first.is_ascii_uppercase() {
                if let Some(inner) = newtype(b, i) {
                    return Some(inner);
                }
            }
            let end = unquoted_end(b, i);
            (i, end, end)
        }
    };
    let start = if header == Header::Authorization {
        skip_scheme(b, start, end)
    } else {
        start
    };
    Some((start, end, resume))
}

/// The index of the `"` closing a string whose contents start at `i`
/// (backslash escapes honoured), or the end of the text.
fn closing_quote(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    b.len()
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The end of an unquoted value starting at `i`.
fn unquoted_end(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < b.len() {
        match b[j] {
            c if c.is_ascii_whitespace() => break,
            b'&' | b',' | b';' | b'}' | b'"' => break,
            b'\\' if b.get(j + 1) == Some(&b'"') => break,
            _ => j += 1,
        }
    }
    j
}

/// `Some("…")`, `Secret("…")`: a capitalised name, `(`, a quoted string.
fn newtype(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let name = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    let open = i + name;
    if b.get(open) != Some(&b'(') || b.get(open + 1) != Some(&b'"') {
        return None;
    }
    let end = closing_quote(b, open + 2);
    Some((open + 2, end, (end + 1).min(b.len())))
}

/// Past a known authorization scheme word and its blanks, when a
/// credential follows it.
fn skip_scheme(b: &[u8], start: usize, end: usize) -> usize {
    const SCHEMES: &[&[u8]] = &[
        b"bearer",
        b"basic",
        b"digest",
        b"token",
        b"negotiate",
        b"ntlm",
        b"hoba",
        b"mutual",
        b"dpop",
        b"gnap",
        b"apikey",
        b"aws4-hmac-sha256",
    ];
    let Some(v) = b.get(start..end) else {
        return start;
    };
    let word = v.iter().take_while(|c| !c.is_ascii_whitespace()).count();
    if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(&v[..word])) {
        return start;
    }
    let blanks = v[word..]
        .iter()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    if blanks == 0 || word + blanks == v.len() {
        return start;
    }
    start + word + blanks
}

/// Digits, with at most one `.` and a leading `-`.
pub(crate) fn is_number(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
}

/// Values that hold no secret.
fn is_inert(v: &str) -> bool {
    v.is_empty()
        || matches!(v, "null" | "None" | "nil" | "true" | "false" | "undefined")
        || is_replacement(v)
}

#[cfg(test)]
mod tests {
    use crate::redact::Redaction;

    fn redact(text: &str) -> String {
        let r = Redaction::new().compile().expect("defaults compile");
        let mut out = String::new();
        if r.redact_str(None, text, &mut out) == 0 {
            assert!(out.is_empty());
            out.push_str(text);
        }
        out
    }

    #[test]
    fn the_table_in_the_docs() {
        let table = [
            (
                "login failed for user=bob password=hunter2 from 10.0.0.8",
                "login failed for user=bob password=[REDACTED] from 10.0.0.8",
            ),
            ("api_key: abc123, retrying", "api_key: [REDACTED], retrying"),
            (
                r#"{"client_secret":"s3cr3t","scope":"read"}"#,
                r#"{"client_secret":"[REDACTED]","scope":"read"}"#,
            ),
            (
                "GET /cb?code=x&access_token=abc&state=1",
                "GET /cb?code=x&access_token=[REDACTED]&state=1",
            ),
            (
                r#"Creds { user: "bob", password: "hunter2" }"#,
                r#"Creds { user: "bob", password: "[REDACTED]" }"#,
            ),
            (
                r#"Config { token: Some("abc") }"#,
                r#"Config { token: Some("[REDACTED]") }"#,
            ),
            (
                r#"{\"password\":\"hunter2\"}"#,
                r#"{\"password\":\"[REDACTED]\"}"#,
            ),
            (
                "Authorization: Bearer abc.def",
                "Authorization: Bearer [REDACTED]",
            ),
            ("Cookie: sid=abc; theme=dark", "Cookie: [REDACTED]"),
        ];
        for (text, want) in table {
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn separators_and_quotes() {
        let table = [
            ("password = hunter2", "password = [REDACTED]"),
            ("'password': 'hunter2'", "'password': '[REDACTED]'"),
            ("password => \"hunter2\"", "password => \"[REDACTED]\""),
            ("password := hunter2;", "password := [REDACTED];"),
            ("X-Api-Key: k123", "X-Api-Key: [REDACTED]"),
            (
                "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI",
                "export AWS_SECRET_ACCESS_KEY=[REDACTED]",
            ),
            (
                "--password=hunter2 --verbose",
                "--password=[REDACTED] --verbose",
            ),
            (
                r#"password: "say \"hi\" twice" ok"#,
                r#"password: "[REDACTED]" ok"#,
            ),
            (r#"password: "no closing quote"#, r#"password: "[REDACTED]"#),
            ("a=1,token=t0k,b=2", "a=1,token=[REDACTED],b=2"),
            ("{pwd=x}", "{pwd=[REDACTED]}"),
            ("db.password=pa$$ word", "db.password=[REDACTED] word"),
            (
                "Set-Cookie: id=a3fWa; Expires=Thu\nnext",
                "Set-Cookie: [REDACTED]\nnext",
            ),
            (
                "Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l",
                "Proxy-Authorization: Basic [REDACTED:basic-auth]",
            ),
            (
                "authorization: s3cr3t from 10.0.0.1",
                "authorization: [REDACTED]",
            ),
            (
                r#"{"authorization":"Bearer abc"}"#,
                r#"{"authorization":"Bearer [REDACTED]"}"#,
            ),
            ("password=token=abc", "password=[REDACTED]"),
            ("päss=1 password=é€ x", "päss=1 password=[REDACTED] x"),
            (
                "pin_code=1 password=123456 token_type=bearer",
                "pin_code=1 password=[REDACTED] token_type=[REDACTED]",
            ),
        ];
        for (text, want) in table {
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn value_patterns_win_the_label() {
        let tok = format!("ghp_{}", "aB3".repeat(12));
        assert_eq!(
            redact(&format!("token={tok} ok")),
            "token=[REDACTED:github-token] ok"
        );
    }

    #[test]
    fn what_stays() {
        for text in [
            "tokenizer=bpe tokens=12 input_tokens: 40",
            "session_id=abc123 user_id: 42",
            "passwordless=true secretary: Jane keyboard=us monkey: 3",
            "auth.method=oauth",
            "password=",
            "password: null, token: None, secret=true",
            "credentials: {user: 1}",
            "password=[REDACTED] token=hmac:0123456789abcdef",
            "auth::token::verify failed",
            "if token == expected",
            "reset your password now",
            "key_id=abc-123",
            "token_count=3 secrets_scanned=12 password_length: 16 cookie_max_age=-1",
        ] {
            assert_eq!(redact(text), text, "{text}");
        }
    }

    #[test]
    fn nested_keys_are_judged_on_their_own() {
        assert_eq!(
            redact(r#"credentials: {"user": "bob", "password": "x1"}"#),
            r#"credentials: {"user": "bob", "password": "[REDACTED]"}"#
        );
    }

    #[test]
    fn the_prose_false_positive_is_known() {
        assert_eq!(
            redact("invalid token: expired"),
            "invalid token: [REDACTED]"
        );
    }
}
