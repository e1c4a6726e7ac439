//! The key denylist: which field names (and keys written in free text)
//! hold secrets.
//!
//! A key is cut into lowercase **words** before it is compared, so the
//! spelling does not matter: camelCase, dots, `-`, `_`, spaces and any
//! other ASCII punctuation all separate words, and letters and digits are
//! separate words too.
//!
//! | key | words |
//! |---|---|
//! | `apiKey` | `api` `key` |
//! | `X-Api-Key` | `x` `api` `key` |
//! | `db.password` | `db` `password` |
//! | `APIKey` | `api` `key` |
//! | `oauth2Token` | `oauth` `2` `token` |
//! | `gen_ai.usage.input_tokens` | `gen` `ai` `usage` `input` `tokens` |
//!
//! A denylist entry is a sequence of words too, and it matches in one of
//! three places:
//!
//! - **anywhere**: the entry's words appear one after the other in the key,
//!   or one word of the key is the entry's words run together: the entry
//!   `api key` matches `apiKey`, `x-api-key`, `my.api_key.v2` and `APIKEY`;
//! - **whole**: the key is exactly the entry (`auth`, so `Auth` and `AUTH`
//!   match but the audit contract's `auth.method` does not);
//! - **last**: the key ends with the entry's words (`key`: `signing_key`,
//!   `secretKey`; not `key_id`, which names a key rather than holding it).
//!
//! For *whole* and *last*, trailing all-digit words are ignored, so
//! `signing_key_2` still ends in `key`. Words are compared whole, so
//! `monkey`, `keyboard`, `tokens`, `tokenizer`, `secretary` and
//! `passwordless` never match `key`, `token`, `secret` or `password`.
//!
//! The default list:
//!
//! | entry | where | examples it catches |
//! |---|---|---|
//! | `password`, `passwords`, `passwd`, `pwd`, `passphrase` | anywhere | `db.password`, `userPassword`, `passwd` |
//! | `secret`, `secrets` | anywhere | `client_secret`, `webhookSecret` |
//! | `token` | anywhere | `access_token`, `id_token`, `refreshToken`, `X-Auth-Token` |
//! | `api key` | anywhere | `apiKey`, `api_key_v2`, `APIKEY` |
//! | `authorization` | anywhere | `Authorization`, `proxy-authorization` |
//! | `auth` | whole | `auth`, `AUTH` (not `auth.method`) |
//! | `cookie`, `cookies`, `set cookie` | anywhere | `Cookie`, `Set-Cookie` |
//! | `credential`, `credentials` | anywhere | `aws.credentials` |
//! | `private key`, `client secret`, `access key`, `session token` | anywhere | `privateKey`, `AWS_ACCESS_KEY_ID` |
//! | `bearer` | anywhere | `bearer` |
//! | `key` | last | `signing_key`, `X-Api-Key`, `secretKey`, `key` |
//!
//! A word glued to another without a case change or separator is one
//! word: `PGPASSWORD` is the single word `pgpassword` and does not match
//! (nor does `signingkey`); `APIKEY` does, because `api key` is listed.
//!
//! Matching is cheap: the words are found in place (no allocation for
//! keys of up to 32 words) and compared with ASCII case folding; a key
//! none of whose words is in the list's vocabulary (most keys) is
//! rejected after one pass over it.
//!
//! ```
//! use ringtrail::redact::Redaction;
//!
//! let r = Redaction::new().compile().unwrap();
//! for key in ["apiKey", "db.password", "X-Api-Key", "client_secret", "access_token", "auth"] {
//!     assert!(r.is_secret_key(key), "{key}");
//! }
//! for key in ["auth.method", "session_id", "gen_ai.usage.input_tokens", "tokens.total", "monkey", "key_id"] {
//!     assert!(!r.is_secret_key(key), "{key}");
//! }
//! ```

/// Where an entry's words must sit in a key for it to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The words appear in a row anywhere in the key (or run together as
    /// one of its words).
    Anywhere,
    /// The key is exactly the entry.
    Whole,
    /// The key ends with the entry.
    Last,
}

/// One denylist entry: lowercase words and where they must sit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The entry's words, lowercase ASCII where they are ASCII.
    pub(crate) words: Vec<String>,
    /// Where the words must sit.
    pub(crate) place: Place,
}

impl Entry {
    /// An entry from `name`, cut into words like a key. `None` when `name`
    /// has no word (empty or only punctuation).
    pub(crate) fn new(name: &str, place: Place) -> Option<Entry> {
        let words = words_lower(name);
        if words.is_empty() {
            None
        } else {
            Some(Entry { words, place })
        }
    }

    /// Whether this entry matches a key cut into `words`; with `at_end`,
    /// only where it ends the key.
    fn matches(&self, words: &[&str], at_end: bool) -> bool {
        let n = self.words.len();
        let place = if at_end && self.place == Place::Anywhere {
            Place::Last
        } else {
            self.place
        };
        match place {
            Place::Anywhere => {
                words.windows(n).any(|w| seq_eq(w, &self.words))
                    || (n > 1 && words.iter().any(|w| joined_eq(w, &self.words)))
            }
            Place::Whole => {
                let core = trim_digits(words);
                seq_eq(core, &self.words)
                    || (n > 1 && core.len() == 1 && joined_eq(core[0], &self.words))
            }
            Place::Last => {
                let core = trim_digits(words);
                (core.len() >= n && seq_eq(&core[core.len() - n..], &self.words))
                    || (n > 1 && core.last().is_some_and(|w| joined_eq(w, &self.words)))
            }
        }
    }
}

/// The default denylist, in the order of the table in the module docs.
pub(crate) fn default_entries() -> Vec<Entry> {
    const ANYWHERE: &[&str] = &[
        "password",
        "passwords",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "api key",
        "authorization",
        "cookie",
        "cookies",
        "set cookie",
        "credential",
        "credentials",
        "private key",
        "client secret",
        "access key",
        "session token",
        "bearer",
    ];
    let mut list: Vec<Entry> = ANYWHERE
        .iter()
        .filter_map(|name| Entry::new(name, Place::Anywhere))
        .collect();
    list.extend(Entry::new("auth", Place::Whole));
    list.extend(Entry::new("key", Place::Last));
    list
}

/// The compiled denylist: entries, and keys exempted by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyMatcher {
    entries: Vec<Entry>,
    /// Exempt keys, each as its words run together (lowercase).
    exempt: Vec<String>,
    /// Every word an entry can match on (its words, and multi-word entries
    /// run together), by length: a key none of whose words is here cannot
    /// match, and most keys are rejected by this alone.
    vocabulary: Vec<Vec<String>>,
}

impl KeyMatcher {
    /// A matcher over `entries`; a key whose words run together equal one
    /// of `exempt` (also words) never matches.
    pub(crate) fn new(entries: Vec<Entry>, exempt: &[Vec<String>]) -> KeyMatcher {
        let mut vocabulary: Vec<Vec<String>> = Vec::new();
        let mut add = |word: String| {
            if vocabulary.len() <= word.len() {
                vocabulary.resize(word.len() + 1, Vec::new());
            }
            if !vocabulary[word.len()].contains(&word) {
                vocabulary[word.len()].push(word);
            }
        };
        for e in &entries {
            e.words.iter().cloned().for_each(&mut add);
            add(e.words.concat());
        }
        KeyMatcher {
            entries,
            exempt: exempt.iter().map(|words| words.concat()).collect(),
            vocabulary,
        }
    }

    /// Whether `word` could take part in a match.
    fn known(&self, word: &str) -> bool {
        self.vocabulary
            .get(word.len())
            .is_some_and(|words| words.iter().any(|w| w.eq_ignore_ascii_case(word)))
    }

    /// The entries, in order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether `key` names a secret.
    pub(crate) fn matches(&self, key: &str) -> bool {
        self.matches_where(key, false)
    }

    /// Whether `key` names a secret with an entry at its end: `api_token`
    /// does, `token_count` (a key about tokens, not one) does not.
    pub(crate) fn matches_at_end(&self, key: &str) -> bool {
        self.matches_where(key, true)
    }

    fn matches_where(&self, key: &str, at_end: bool) -> bool {
        if !Words::new(key).any(|w| self.known(w)) {
            return false;
        }
        with_words(key, |words| {
            if words.is_empty() {
                return false;
            }
            if self.exempt.iter().any(|e| joined_eq(e, words)) {
                return false;
            }
            self.entries.iter().any(|e| e.matches(words, at_end))
        })
    }
}

/// Lowercase words of `name` (configuration time; allocates).
pub(crate) fn words_lower(name: &str) -> Vec<String> {
    Words::new(name).map(|w| w.to_ascii_lowercase()).collect()
}

/// Runs `f` over the words of `key`, found in place: no allocation for
/// keys of up to 32 words.
fn with_words<R>(key: &str, f: impl FnOnce(&[&str]) -> R) -> R {
    const INLINE: usize = 32;
    let mut inline: [&str; INLINE] = [""; INLINE];
    let mut n = 0;
    let mut words = Words::new(key);
    for w in words.by_ref() {
        inline[n] = w;
        n += 1;
        if n == INLINE {
            break;
        }
    }
    if n < INLINE {
        return f(&inline[..n]);
    }
    let mut all: Vec<&str> = inline.to_vec();
    all.extend(words);
    f(&all)
}

/// `words` less its trailing all-digit words.
fn trim_digits<'w, 'a>(words: &'w [&'a str]) -> &'w [&'a str] {
    let mut end = words.len();
    while end > 0 && words[end - 1].bytes().all(|b| b.is_ascii_digit()) {
        end -= 1;
    }
    &words[..end]
}

/// Whether `key` (any case) equals the lowercase `entry`, word by word.
fn seq_eq(key: &[&str], entry: &[String]) -> bool {
    key.len() == entry.len()
        && key
            .iter()
            .zip(entry)
            .all(|(k, e)| k.eq_ignore_ascii_case(e))
}

/// Whether `word` (any case) equals the pieces run together. Generic so
/// it serves both a key word against an entry's words and an exempt name
/// against a key's words.
fn joined_eq<A: AsRef<str>, B: AsRef<str>>(word: A, pieces: &[B]) -> bool {
    let mut rest = word.as_ref().as_bytes();
    for p in pieces {
        let p = p.as_ref().as_bytes();
        if rest.len() < p.len() || !rest[..p.len()].eq_ignore_ascii_case(p) {
            return false;
        }
        rest = &rest[p.len()..];
    }
    rest.is_empty()
}

/// What kind of byte a word boundary looks at. Bytes of non-ASCII
/// characters count as lowercase letters, so a boundary never falls inside
/// a character.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Sep,
    Upper,
    Lower,
    Digit,
}

/// [`Class`] of every byte.
const CLASS: [Class; 256] = {
    let mut table = [Class::Sep; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'A'..=b'Z' => Class::Upper,
            b'0'..=b'9' => Class::Digit,
            b'a'..=b'z' | 0x80..=0xff => Class::Lower,
            _ => Class::Sep,
        };
        b += 1;
    }
    table
};

/// The words of a key, as slices of it (see the module docs).
pub(crate) struct Words<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Words<'a> {
    /// The words of `text`.
    pub(crate) fn new(text: &'a str) -> Words<'a> {
        Words { text, pos: 0 }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        let mut i = self.pos;
        while i < b.len() && CLASS[usize::from(b[i])] == Class::Sep {
            i += 1;
        }
        if i >= b.len() {
            self.pos = b.len();
            return None;
        }
        let start = i;
        let mut prev = CLASS[usize::from(b[i])];
        i += 1;
        while i < b.len() {
            let cur = CLASS[usize::from(b[i])];
            let boundary = match (prev, cur) {
                (_, Class::Sep) => true,
                (Class::Lower, Class::Upper) => true,
                (Class::Digit, Class::Upper | Class::Lower) => true,
                (Class::Upper | Class::Lower, Class::Digit) => true,
                // "APIKey": the last capital of a run starts the next word.
                (Class::Upper, Class::Upper) => {
                    i + 1 < b.len() && CLASS[usize::from(b[i + 1])] == Class::Lower
                }
                _ => false,
            };
            if boundary {
                break;
            }
            prev = cur;
            i += 1;
        }
        self.pos = i;
        // Boundaries sit next to an ASCII byte, so they are char boundaries.
        self.text.get(start..i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<&str> {
        Words::new(s).collect()
    }

    fn default_matcher() -> KeyMatcher {
        KeyMatcher::new(default_entries(), &[])
    }

    #[test]
    fn splits_camel_case_dots_dashes_and_digits() {
        assert_eq!(words("apiKey"), ["api", "Key"]);
        assert_eq!(words("X-Api-Key"), ["X", "Api", "Key"]);
        assert_eq!(words("db.password"), ["db", "password"]);
        assert_eq!(words("APIKey"), ["API", "Key"]);
        assert_eq!(words("HTTPSProxy"), ["HTTPS", "Proxy"]);
        assert_eq!(words("oauth2Token"), ["oauth", "2", "Token"]);
        assert_eq!(words("client_secret"), ["client", "secret"]);
        assert_eq!(words("  --a..b__c  "), ["a", "b", "c"]);
        assert_eq!(words("mötleyCrüe"), ["mötley", "Crüe"]);
        assert_eq!(words(""), Vec::<&str>::new());
        assert_eq!(words("._-"), Vec::<&str>::new());
    }

    #[test]
    fn key_table() {
        let m = default_matcher();
        let positives = [
            "password",
            "Password",
            "PASSWORD",
            "db.password",
            "user_password",
            "passwordHash",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "clientSecret",
            "webhook-secret",
            "token",
            "access_token",
            "session_token",
            "sessionToken",
            "id_token",
            "refresh_token",
            "X-Auth-Token",
            "oauth2Token",
            "apiKey",
            "api_key",
            "API_KEY",
            "APIKEY",
            "apikey",
            "X-Api-Key",
            "x-api-key",
            "signing_key",
            "signingKey",
            "secretKey",
            "signing_key_2",
            "key",
            "authorization",
            "Authorization",
            "Proxy-Authorization",
            "auth",
            "AUTH",
            "cookie",
            "Cookie",
            "Set-Cookie",
            "set_cookie",
            "credential",
            "credentials",
            "aws.credentials",
            "private_key",
            "privateKey",
            "privatekey",
            "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key",
            "bearer",
            "passphrase",
        ];
        for k in positives {
            assert!(m.matches(k), "should match: {k}");
        }
        let negatives = [
            "auth.method",
            "auth_method",
            "oauth",
            "session_id",
            "sessionId",
            "user_id",
            "client_id",
            "trace_id",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "tokens.total",
            "tokens",
            "tokenizer",
            "monkey",
            "turkey",
            "keyboard",
            "key_id",
            "keyId",
            "secretary",
            "passwordless",
            "PGPASSWORD",
            "signingkey",
            "message",
            "author",
            "authority",
            "cookiecutter",
            "",
            "...",
        ];
        for k in negatives {
            assert!(!m.matches(k), "should not match: {k}");
        }
    }

    #[test]
    fn no_audit_contract_field_is_a_secret() {
        let m = default_matcher();
        for name in crate::audit::contract::field::ALL {
            assert!(!m.matches(name), "{name}");
        }
        for name in crate::row::CONTEXT_KEYS {
            assert!(!m.matches(name), "{name}");
        }
    }

    #[test]
    fn at_end_tells_a_secret_from_a_key_about_secrets() {
        let m = default_matcher();
        for k in [
            "api_token",
            "db.password",
            "clientSecret",
            "auth",
            "x-api-key",
            "APIKEY",
            "signing_key_2",
        ] {
            assert!(m.matches_at_end(k), "{k}");
        }
        for k in [
            "token_count",
            "secrets_scanned",
            "password_length",
            "cookie_max_age",
        ] {
            assert!(m.matches(k) && !m.matches_at_end(k), "{k}");
        }
    }

    #[test]
    fn exemptions_compare_words_run_together() {
        let m = KeyMatcher::new(default_entries(), &[words_lower("cache_key")]);
        assert!(!m.matches("cache_key"));
        assert!(!m.matches("cacheKey"));
        assert!(!m.matches("CACHEKEY"));
        assert!(m.matches("signing_key"));
    }

    #[test]
    fn long_keys_fall_back_to_the_heap() {
        let m = default_matcher();
        let long = format!("{}password", "a.".repeat(40));
        assert!(m.matches(&long));
        let long = format!("{}x", "a.".repeat(40));
        assert!(!m.matches(&long));
    }

    #[test]
    fn an_empty_list_matches_nothing() {
        let m = KeyMatcher::new(Vec::new(), &[]);
        assert!(!m.matches("password"));
    }
}
