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
//! | `Keys { signing_key: [12, 201, 7] }` | `Keys { signing_key: [REDACTED] }` |
//! | `password={noop}hunter2` | `password=[REDACTED]` |
//! | `Authorization: Bearer abc.def` | `Authorization: Bearer [REDACTED]` |
//! | `Cookie: sid=abc; theme=dark` | `Cookie: [REDACTED]` |
//!
//! **The key** is the run of letters, digits, `_`, `.` and `-` around a
//! denylisted word; it may be quoted (`"key"`, `'key'`, `\"key\"`, or
//! any run of backslashes before the quote: `\\\"key\\\"` is JSON in a
//! JSON string in a JSON string).
//! **The separator** is `=`, `:`, `=>` or `:=`, with blanks around it
//! (`::` and `==` are not separators: `token::parse`, `token == x`).
//! **The value** is
//!
//! - a quoted string (`"…"` with `\"` escapes, `'…'`, or `\"…\"` with
//!   any run of backslashes, closed by as many): its contents, up to the
//!   closing quote or the end of the text;
//! - a Debug newtype such as `Some("…")` or `Secret("…")`: the quoted
//!   contents;
//! - a structure (`{`, `[`, `(`, `<`, or a newtype such as `Some([…])`)
//!   whose first item is not a key: all of it, through its closing
//!   bracket (or the end of the text) and anything glued after it, so
//!   `[104, 117, 110]`, `{bcrypt}$2a$…`, `(hunter2)` and `<abc>` go. A
//!   structure that starts with a key (`{"user": …}`, `{user: 1}`) is
//!   left to the keys inside, judged on their own;
//! - otherwise the characters up to whitespace, `&`, `,`, `;`, `}`, `"`
//!   or `\"`;
//! - for the headers `Authorization`, `Proxy-Authorization`, `Cookie` and
//!   `Set-Cookie` written unquoted, the rest of the line; an
//!   authorization scheme word (`Bearer`, `Basic`, `Digest`, …) stays.
//!
//! Nothing is replaced when the value is empty (or an empty structure),
//! is one of `null`, `None`, `nil`, `true`, `false`, `undefined`, or is
//! already a replacement (`[REDACTED]`, `hmac:…`). Nor when it is a
//! number after a key that counts something (its last word is `count`,
//! `length`, `size`, `scanned`, `max`, `ttl`, …; see
//! [`keys`](super::keys)): `token_count=3`, `secrets_scanned=12` and
//! `password_length: 16` stay, while `password=123456`,
//! `password_reset_code=482913`, `secret_pin=1234` and
//! `token_type=bearer` do not.
//!
//! A structure whose first item is a key can still hide a secret under
//! a key that is not denylisted (`password=(user=bob)` keeps `bob`), and
//! a Debug struct value (`password: Secret { inner: "…" }`) is not a
//! structure of this kind: only its name goes.
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

/// The regex that finds candidate keys: a denylist entry (its words, with
/// any `_`, `.` or `-` between them: `mfa_code`, `mfaCode`) not followed
/// by a lowercase letter (so `tokens=`, `tokenizer:` and `keyboard=` are
/// no candidates), the rest of its identifier, an optional closing quote,
/// and a separator. `None` when the denylist is empty.
///
/// It is a locator and a prefilter only (the same regex sits in the
/// one-scan prefilter set); [`collect`] judges each candidate with the
/// key matcher.
pub(crate) fn trigger_pattern(entries: &[Entry]) -> Option<String> {
    let mut alternation: Vec<String> = entries
        .iter()
        .map(|e| {
            let words: Vec<String> = e.words.iter().map(|w| regex::escape(w)).collect();
            words.join(r"[_.\-]*")
        })
        .filter(|w| !w.is_empty())
        .collect();
    alternation.sort_unstable();
    alternation.dedup();
    if alternation.is_empty() {
        return None;
    }
    Some(format!(
        r#"(?i:{})(?:[A-Z0-9_.\-][A-Za-z0-9_.\-]*)?(?:\\*["'])?[ \t]*[:=]"#,
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
            let counter = is_number(v) && KeyMatcher::is_counter(key);
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
    if let Some(run) = escaped_quote(b, i) {
        i += run + 1;
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
        b'\\' if escaped_quote(b, i).is_some() => {
            // `\"…\"`, `\\\"…\\\"`: closed by the same run of backslashes
            // and a quote.
            let run = escaped_quote(b, i)?;
            let start = i + run + 1;
            let end = closing_escaped_quote(b, start, run);
            (start, end, (end + run + 1).min(b.len()))
        }
        b'"' => {
            let end = closing_quote(b, i + 1);
            (i + 1, end, (end + 1).min(b.len()))
        }
        b'\'' => {
            let end = find(b, i + 1, b"'").unwrap_or(b.len());
            (i + 1, end, (end + 1).min(b.len()))
        }
        b'{' | b'[' | b'(' | b'<' => {
            let end = structure(b, i)?;
            (i, end, end)
        }
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
                    return inner;
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

/// The length of the run of backslashes at `i` when a `"` follows it
/// (`\"`, `\\\"`, …).
fn escaped_quote(b: &[u8], i: usize) -> Option<usize> {
    let run = b.get(i..)?.iter().take_while(|&&c| c == b'\\').count();
    (run > 0 && b.get(i + run) == Some(&b'"')).then_some(run)
}

/// Where the string opened by `run` backslashes and a quote, whose
/// contents start at `i`, is closed by as many backslashes and a quote
/// (a quote after another number of them is inside it), or the end of
/// the text.
fn closing_escaped_quote(b: &[u8], i: usize, run: usize) -> usize {
    let mut j = i;
    while j < b.len() {
        match escaped_quote(b, j) {
            Some(n) if n == run => return j,
            Some(n) => j += n + 1,
            None => j += 1,
        }
    }
    b.len()
}

/// A value that opens a structure at `i` (`{`, `[`, `(`, `<`): where it
/// ends (past its closing bracket and anything glued to it, as in
/// `{noop}hunter2`). `None` when it holds keys of its own (`{"user": …}`,
/// `{user: 1}`: they are judged on their own), or nothing (`{}`, `[ ]`).
fn structure(b: &[u8], i: usize) -> Option<usize> {
    let inner = i + 1 + b[i + 1..].iter().take_while(|&c| is_blank(Some(c))).count();
    if inner >= b.len() || b[inner] == closer(b[i]) || starts_with_key(b, inner) {
        return None;
    }
    Some(unquoted_end(b, matching_closer(b, i)))
}

/// The bracket that closes `open`.
fn closer(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'[' => b']',
        b'(' => b')',
        _ => b'>',
    }
}

/// Past the bracket closing the one at `i` (nested pairs of its kind and
/// double-quoted strings skipped), or the end of the text.
fn matching_closer(b: &[u8], i: usize) -> usize {
    let (open, close) = (b[i], closer(b[i]));
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' => j = closing_quote(b, j + 1),
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// Whether the text at `i` is a key and its separator: a run of key bytes
/// or a quoted name, then `=`, `:`, `=>` or `:=`.
fn starts_with_key(b: &[u8], i: usize) -> bool {
    let end = match b[i] {
        b'"' => closing_quote(b, i + 1),
        b'\'' => find(b, i + 1, b"'").unwrap_or(b.len()),
        b'\\' => match escaped_quote(b, i) {
            Some(run) => closing_escaped_quote(b, i + run + 1, run),
            None => return false,
        },
        _ => i + b[i..].iter().take_while(|&&c| is_key_byte(c)).count(),
    };
    end > i && end < b.len() && separator(b, end).is_some()
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
            b'\\' if escaped_quote(b, j).is_some() => break,
            _ => j += 1,
        }
    }
    j
}

/// A Debug newtype at `i`: a capitalised name and `(`. `Some("…")` and
/// `Secret("…")` give their quoted contents; `Some([1, 2])` is a structure
/// from the name on (see [`structure`]), `Some(Creds { user: … })` one
/// with keys of its own (no value). `None` when no `(` follows the name.
fn newtype(b: &[u8], i: usize) -> Option<Option<(usize, usize, usize)>> {
    let name = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    let open = i + name;
    if b.get(open) != Some(&b'(') {
        return None;
    }
    if b.get(open + 1) == Some(&b'"') {
        let end = closing_quote(b, open + 2);
        return Some(Some((open + 2, end, (end + 1).min(b.len()))));
    }
    Some(structure(b, open).map(|end| (i, end, end)))
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
                "pin_code=[REDACTED] password=[REDACTED] token_type=[REDACTED]",
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
            "password: {}, token: [ ], secret=()",
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
        assert_eq!(redact("GPIO pin: 4"), "GPIO pin: [REDACTED]");
    }
}
