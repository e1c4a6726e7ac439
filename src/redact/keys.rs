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
//! `signing_key_2` still ends in `key`.
//!
//! **Run-together words.** A word glued to others without a case change
//! or separator (`accesstoken`, `PGPASSWORD`, `apisecret`, `SECRETKEY`)
//! matches an entry of five letters or more (its words run together)
//! that *ends* it. Shorter entries (`pass`, `pin`, `otp`, `sig`, `key`,
//! `pwd`, `auth`) match only as words of their own, and nothing matches
//! at the start or in the middle of a word, so `monkey`, `keyboard`,
//! `tokens`, `tokenizer`, `secretary`, `passwordless`, `passenger`,
//! `bypass`, `compass`, `spin`, `pinned`, `opinion`, `signal` and
//! `design` never match.
//!
//! The default list:
//!
//! | entry | where | examples it catches |
//! |---|---|---|
//! | `password`, `passwords`, `passwd`, `pwd`, `passphrase`, `passcode` | anywhere | `db.password`, `userPassword`, `newpassword`, `PGPASSWORD`, `passwd` |
//! | `secret`, `secrets` | anywhere | `client_secret`, `webhookSecret`, `apisecret` |
//! | `token` | anywhere | `access_token`, `id_token`, `refreshToken`, `X-Auth-Token`, `accesstoken` |
//! | `api key` | anywhere | `apiKey`, `api_key_v2`, `APIKEY` |
//! | `authorization` | anywhere | `Authorization`, `proxy-authorization` |
//! | `auth` | whole | `auth`, `AUTH` (not `auth.method`) |
//! | `cookie`, `cookies`, `set cookie` | anywhere | `Cookie`, `Set-Cookie` |
//! | `credential`, `credentials` | anywhere | `aws.credentials` |
//! | `private key`, `client secret`, `access key`, `secret key`, `session token` | anywhere | `privateKey`, `AWS_ACCESS_KEY_ID`, `secretkey` |
//! | `bearer` | anywhere | `bearer` |
//! | `pin`, `otp`, `mfa code` | anywhere | `pin`, `secret_pin`, `otp_token`, `mfa_code` |
//! | `key` | last | `signing_key`, `X-Api-Key`, `secretKey`, `key` |
//! | `pass` | last | `DB_PASS`, `smtp.pass` (not `pass_rate`) |
//! | `sig`, `signature` | last | `sig` (Azure SAS), `X-Amz-Signature`, `X-Goog-Signature` (not `signature_method`) |
//!
//! **Counters.** A number under a denylisted key is a secret
//! (`password = 123456`, `otp_token = 482913`, `secret_pin = 1234`)
//! unless the key's last word says it counts something: `count`,
//! `length`, `len`, `size`, `bytes`, `chars`, `scanned`, `total`, `max`,
//! `min`, `age`, `ttl`, `limit`, `remaining`, `used`, `attempts`,
//! `retries`, `failures`, `expiry`, `expires`, `timeout`, `lifetime`,
//! `seconds`, `secs`, `ms`, `version` (`token_count = 5`,
//! `password_length = 16`, `cookie_max_age = -1`). `max_tokens` and
//! `prompt_tokens` are no secret keys at all (`tokens` is not `token`).
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
//! for key in ["auth.method", "session_id", "gen_ai.usage.input_tokens", "tokens.total", "monkey", "key_id", "bypass"] {
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

    /// Whether this entry matches a key cut into `words`.
    fn matches(&self, words: &[&str]) -> bool {
        let n = self.words.len();
        match self.place {
            Place::Anywhere => {
                (n > 1 && words.windows(n).any(|w| seq_eq(w, &self.words)))
                    || words.iter().any(|w| self.ends_word(w))
            }
            Place::Whole => {
                let core = trim_digits(words);
                seq_eq(core, &self.words) || (core.len() == 1 && self.ends_word(core[0]))
            }
            Place::Last => {
                let core = trim_digits(words);
                (core.len() >= n && seq_eq(&core[core.len() - n..], &self.words))
                    || core.last().is_some_and(|w| self.ends_word(w))
            }
        }
    }

    /// Whether one word of a key is this entry's words run together, or
    /// (for an entry of [`SUFFIX_MIN`] letters or more) ends with them:
    /// `accesstoken`, `PGPASSWORD`, `apisecret`, `SECRETKEY`.
    fn ends_word(&self, word: &str) -> bool {
        let len: usize = self.words.iter().map(String::len).sum();
        if word.len() == len {
            joined_eq(word, &self.words)
        } else {
            len >= SUFFIX_MIN
                && word.len() > len
                && word.is_char_boundary(word.len() - len)
                && joined_eq(&word[word.len() - len..], &self.words)
        }
    }
}

/// The shortest entry (its words run together) that also matches at the
/// end of a longer word: `token` ends `accesstoken`, while `pass`, `pin`,
/// `sig` and `key` must be words of their own (`bypass`, `spin`,
/// `monkey`).
pub(crate) const SUFFIX_MIN: usize = 5;

/// The last words of keys that count something about secrets rather than
/// hold one: a number under `token_count` or `password_length` is kept.
/// Any other number under a denylisted key (`password_reset_code`,
/// `secret_pin`, `token_value`) is masked.
const COUNTER_WORDS: &[&str] = &[
    "count",
    "counts",
    "cnt",
    "length",
    "len",
    "size",
    "bytes",
    "chars",
    "scanned",
    "total",
    "max",
    "min",
    "age",
    "ttl",
    "limit",
    "remaining",
    "used",
    "attempts",
    "retries",
    "failures",
    "expiry",
    "expires",
    "timeout",
    "lifetime",
    "seconds",
    "secs",
    "ms",
    "version",
];

/// The default denylist, in the order of the table in the module docs.
pub(crate) fn default_entries() -> Vec<Entry> {
    const ANYWHERE: &[&str] = &[
        "password",
        "passwords",
        "passwd",
        "pwd",
        "passphrase",
        "passcode",
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
        "secret key",
        "session token",
        "bearer",
        "pin",
        "otp",
        "mfa code",
    ];
    const LAST: &[&str] = &["key", "pass", "sig", "signature"];
    let mut list: Vec<Entry> = ANYWHERE
        .iter()
        .filter_map(|name| Entry::new(name, Place::Anywhere))
        .collect();
    list.extend(Entry::new("auth", Place::Whole));
    list.extend(LAST.iter().filter_map(|name| Entry::new(name, Place::Last)));
    list
}

/// The compiled denylist: entries, and keys exempted by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyMatcher {
    entries: Vec<Entry>,
    /// Exempt keys, each as its words run together (lowercase).
    exempt: Vec<String>,
    /// Every word an entry can match on (its words, and multi-word entries
    /// run together), by length: a key none of whose words is here (or,
    /// for `suffixes`, ends with one) cannot match, and most keys are
    /// rejected by this alone.
    vocabulary: Vec<Vec<String>>,
    /// Entries run together that may end a longer word ([`SUFFIX_MIN`]).
    suffixes: Vec<String>,
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
        let mut suffixes: Vec<String> = Vec::new();
        for e in &entries {
            e.words.iter().cloned().for_each(&mut add);
            let joined = e.words.concat();
            if joined.len() >= SUFFIX_MIN && !suffixes.contains(&joined) {
                suffixes.push(joined.clone());
            }
            add(joined);
        }
        KeyMatcher {
            entries,
            exempt: exempt.iter().map(|words| words.concat()).collect(),
            vocabulary,
            suffixes,
        }
    }

    /// Whether `word` could take part in a match.
    fn known(&self, word: &str) -> bool {
        let b = word.as_bytes();
        self.vocabulary
            .get(word.len())
            .is_some_and(|words| words.iter().any(|w| w.eq_ignore_ascii_case(word)))
            || self.suffixes.iter().any(|s| {
                b.len() > s.len() && b[b.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            })
    }

    /// The entries, in order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether `key` names a secret.
    pub(crate) fn matches(&self, key: &str) -> bool {
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
            self.entries.iter().any(|e| e.matches(words))
        })
    }

    /// Whether a number under `key` counts something rather than being a
    /// secret: its last word (less trailing digits) is a counter's
    /// (`token_count`, `password_length`, `cookie_max_age`, `token_ttl`;
    /// not `token_value`, `secret_pin`, `password_reset_code`).
    pub(crate) fn is_counter(key: &str) -> bool {
        with_words(key, |words| {
            trim_digits(words)
                .last()
                .is_some_and(|w| COUNTER_WORDS.iter().any(|c| c.eq_ignore_ascii_case(w)))
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
            "PGPASSWORD",
            "accesstoken",
            "apisecret",
            "secretkey",
            "DB_PASS",
            "passcode",
            "pin",
            "otp",
            "mfa_code",
            "sig",
            "x-amz-signature",
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
            "signingkey",
            "passenger",
            "bypass",
            "compass",
            "pass_rate",
            "spin",
            "pinned",
            "opinion",
            "signal",
            "design",
            "signature_method",
            "max_tokens",
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
    fn counters_are_told_by_their_last_word() {
        let m = default_matcher();
        for k in [
            "token_count",
            "secrets_scanned",
            "password_length",
            "cookie_max_age",
            "token_ttl",
            "pin_attempts",
            "secret_size_2",
        ] {
            assert!(m.matches(k) && KeyMatcher::is_counter(k), "{k}");
        }
        for k in [
            "api_token",
            "db.password",
            "password_reset_code",
            "secret_pin",
            "token_value",
            "otp",
            "counter_token",
        ] {
            assert!(m.matches(k) && !KeyMatcher::is_counter(k), "{k}");
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
