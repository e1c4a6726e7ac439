//! [`Redaction`]: what the user configures (the key denylist, extra value
//! patterns, mask or HMAC, the body fields), and [`RedactionError`], why
//! a configuration does not compile.
//!
//! Redaction is **on by default**; [`Redaction::new`] and
//! [`Redaction::default`] are the same. A configuration is checked once,
//! by [`Redaction::compile`], which fails closed: a pattern that does not
//! compile, a missing HMAC key, or an empty key name is an error, never a
//! silently weaker redaction.
//!
//! ```
//! use ringtrail::redact::Redaction;
//!
//! # std::env::set_var("RINGTRAIL_DOC_HMAC_KEY", "k3y-from-a-vault");
//! let redactor = Redaction::new()
//!     .add_key("ssn")                                 // redact fields named ssn, user.ssn, ...
//!     .remove_key("cache_key")                        // but not cache_key, which ends in "key"
//!     .add_pattern("acme-token", r"acme_[0-9a-f]{32}") // an in-house token shape
//!     .hmac_from_env("RINGTRAIL_DOC_HMAC_KEY")        // hmac:<16 hex> instead of [REDACTED]
//!     .compile()?;
//!
//! let mut out = String::new();
//! assert_eq!(redactor.redact_str(Some("user.ssn"), "078-05-1120", &mut out), 1);
//! assert!(out.starts_with("hmac:"));
//!
//! let err = Redaction::new().add_pattern("broken", "acme_[0-9").compile().unwrap_err();
//! assert!(err.to_string().contains("broken"));
//! # Ok::<(), ringtrail::redact::RedactionError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexSet};

use super::free_text;
use super::keys::{self, Entry, KeyMatcher, Place};
use super::patterns::{self, regex_reason};
use super::replace::Replacer;
use super::spans::BY_KEY;
use super::{Inner, Redactor};

/// The body fields digested unless kept (OpenTelemetry GenAI and tool
/// names).
pub(crate) const DEFAULT_BODIES: &[&str] = &[
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "tool.arguments",
    "tool.result",
];

/// What to redact and how: the configuration
/// `Builder::redaction(...)` takes. See the [module docs](super) for the
/// rules and [`Redactor`] for their use.
///
/// | setting | default | change with |
/// |---|---|---|
/// | on | yes | [`off`](Redaction::off) |
/// | key denylist | see [`keys`](super::keys) | [`add_key`](Redaction::add_key), [`remove_key`](Redaction::remove_key) |
/// | value patterns | see [`patterns`](super::patterns) | [`add_pattern`](Redaction::add_pattern) |
/// | replacement | mask (`[REDACTED]`, `[REDACTED:<rule>]`) | [`hmac`](Redaction::hmac), [`hmac_from_env`](Redaction::hmac_from_env), [`mask`](Redaction::mask) |
/// | body fields | `gen_ai.prompt`, `gen_ai.completion`, `gen_ai.input.messages`, `gen_ai.output.messages`, `tool.arguments`, `tool.result` | [`add_body_field`](Redaction::add_body_field), [`remove_body_field`](Redaction::remove_body_field) |
/// | bodies | digested (`sha256:<hex>`) | [`keep_bodies`](Redaction::keep_bodies) |
///
/// `Debug` never shows an HMAC key, nor the text of user patterns (a
/// pattern may spell out a literal secret); only their names.
#[derive(Clone)]
pub struct Redaction {
    on: bool,
    keys: Vec<Entry>,
    exempt: Vec<Vec<String>>,
    bad_keys: Vec<String>,
    patterns: Vec<(String, String)>,
    mode: Mode,
    bodies: Vec<String>,
    keep_bodies: bool,
}

/// How secrets are replaced, as configured.
#[derive(Clone)]
enum Mode {
    Mask,
    Hmac(HmacKey),
    HmacFromEnv(String),
}

/// An HMAC key: bytes that `Debug` never shows.
#[derive(Clone)]
struct HmacKey(Vec<u8>);

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl Default for Redaction {
    /// The same as [`Redaction::new`].
    fn default() -> Redaction {
        Redaction::new()
    }
}

impl Redaction {
    /// The defaults: on, the default key denylist and value patterns,
    /// mask mode, the default body fields digested.
    pub fn new() -> Redaction {
        Redaction {
            on: true,
            keys: keys::default_entries(),
            exempt: Vec::new(),
            bad_keys: Vec::new(),
            patterns: Vec::new(),
            mode: Mode::Mask,
            bodies: DEFAULT_BODIES.iter().map(|s| (*s).to_owned()).collect(),
            keep_bodies: false,
        }
    }

    /// No redaction at all: every message, value, context id and body is
    /// stored exactly as logged.
    ///
    /// **Risk:** API keys, bearer tokens, passwords in connection strings
    /// and whole prompts full of customer data then reach the table, its
    /// backups, the dead letters and the spool, readable by everyone who
    /// can read the log. Use it only where the log is as protected as the
    /// secrets themselves (or for measuring the cost of redaction).
    pub fn off() -> Redaction {
        Redaction {
            on: false,
            ..Redaction::new()
        }
    }

    /// Whether this is [`Redaction::off`].
    pub fn is_off(&self) -> bool {
        !self.on
    }

    /// Adds `name` to the key denylist: a key matches when `name`'s words
    /// appear in it (`add_key("ssn")` catches `ssn`, `user.ssn`,
    /// `ssnLast4`). It also lifts an exemption made by
    /// [`remove_key`](Redaction::remove_key). A name with no letter or
    /// digit makes [`compile`](Redaction::compile) fail.
    pub fn add_key(mut self, name: impl AsRef<str>) -> Redaction {
        let name = name.as_ref();
        let Some(entry) = Entry::new(name, Place::Anywhere) else {
            self.bad_keys.push(name.to_owned());
            return self;
        };
        let joined = entry.words.concat();
        self.exempt.retain(|words| words.concat() != joined);
        if !self.keys.contains(&entry) {
            self.keys.push(entry);
        }
        self
    }

    /// Takes `name` off the key denylist: every entry with `name`'s words
    /// leaves the list (`remove_key("key")` drops the "ends in `key`"
    /// rule, `remove_key("auth")` the whole-key `auth`), and a key spelled
    /// as `name` (in any case, with any separators: `cache_key`,
    /// `cacheKey`, `CACHE-KEY`) never matches, even if another entry
    /// would catch it. Keys that merely contain `name` may still match
    /// other entries (`my.cache_key` still ends in `key`).
    pub fn remove_key(mut self, name: impl AsRef<str>) -> Redaction {
        let words = keys::words_lower(name.as_ref());
        if words.is_empty() {
            return self;
        }
        self.keys.retain(|e| e.words != words);
        if !self.exempt.contains(&words) {
            self.exempt.push(words);
        }
        self
    }

    /// Adds a value pattern named `rule_name`: every match of `regex`, in
    /// any text, is replaced (`[REDACTED:<rule_name>]` in mask mode). The
    /// regex uses the [`regex`] crate's syntax and is compiled by
    /// [`compile`](Redaction::compile), which fails, naming the rule, when
    /// it does not compile, when it matches the empty string, or when the
    /// name is not made of `[A-Za-z0-9_.-]`.
    pub fn add_pattern(mut self, rule_name: impl AsRef<str>, regex: impl AsRef<str>) -> Redaction {
        self.patterns
            .push((rule_name.as_ref().to_owned(), regex.as_ref().to_owned()));
        self
    }

    /// Replaces secrets by `[REDACTED]` (found by key) or
    /// `[REDACTED:<rule>]` (found by a value pattern). The default.
    pub fn mask(mut self) -> Redaction {
        self.mode = Mode::Mask;
        self
    }

    /// Replaces secrets by `hmac:` and the first 16 hex digits of
    /// HMAC-SHA256 under `key`: equal secrets give equal tokens, so they
    /// can be correlated without being seen. The key is never logged nor
    /// shown by `Debug`; an empty key makes [`compile`](Redaction::compile)
    /// fail.
    pub fn hmac(mut self, key: impl AsRef<[u8]>) -> Redaction {
        self.mode = Mode::Hmac(HmacKey(key.as_ref().to_vec()));
        self
    }

    /// Like [`hmac`](Redaction::hmac), with the key read from the
    /// environment variable `var` (its bytes as they are) when
    /// [`compile`](Redaction::compile) runs; it fails, naming the
    /// variable, when the variable is unset or empty.
    pub fn hmac_from_env(mut self, var: impl AsRef<str>) -> Redaction {
        self.mode = Mode::HmacFromEnv(var.as_ref().to_owned());
        self
    }

    /// Adds a body field: its values are stored as their digest unless
    /// bodies are kept. Names are compared whole, ignoring ASCII case.
    pub fn add_body_field(mut self, name: impl AsRef<str>) -> Redaction {
        let name = name.as_ref();
        if !self.bodies.iter().any(|b| b.eq_ignore_ascii_case(name)) {
            self.bodies.push(name.to_owned());
        }
        self
    }

    /// Removes a body field: its values are then treated as any other
    /// string (still redacted).
    pub fn remove_body_field(mut self, name: impl AsRef<str>) -> Redaction {
        let name = name.as_ref();
        self.bodies.retain(|b| !b.eq_ignore_ascii_case(name));
        self
    }

    /// Keeps body fields as text (`true`) instead of their digest (the
    /// default, `false`). Kept bodies are still redacted like any string.
    pub fn keep_bodies(mut self, keep: bool) -> Redaction {
        self.keep_bodies = keep;
        self
    }

    /// Checks and compiles the configuration into a [`Redactor`].
    ///
    /// Fails closed, with an error that names the culprit but never shows
    /// a key or a pattern's text: a user pattern that does not compile or
    /// matches the empty string, a bad rule name, a key with no word, an
    /// empty HMAC key, an unset or empty HMAC environment variable.
    /// [`Redaction::off`] always compiles.
    pub fn compile(&self) -> Result<Redactor, RedactionError> {
        let bodies = self.bodies.clone();
        if !self.on {
            return Ok(Redactor {
                inner: Arc::new(Inner {
                    on: false,
                    keys: KeyMatcher::default(),
                    rules: Vec::new(),
                    trigger: None,
                    prefilter: RegexSet::empty(),
                    replacer: Replacer::Mask,
                    bodies,
                    keep_bodies: true,
                }),
            });
        }
        if let Some(name) = self.bad_keys.first() {
            return Err(RedactionError::Key { name: name.clone() });
        }
        let replacer = match &self.mode {
            Mode::Mask => Replacer::Mask,
            Mode::Hmac(HmacKey(key)) if key.is_empty() => return Err(RedactionError::EmptyHmacKey),
            Mode::Hmac(HmacKey(key)) => Replacer::hmac(key),
            Mode::HmacFromEnv(var) => match std::env::var_os(var) {
                Some(v) if !v.is_empty() => Replacer::hmac(v.as_encoded_bytes()),
                _ => return Err(RedactionError::HmacEnv { var: var.clone() }),
            },
        };
        let mut rules = patterns::builtin_rules()?;
        for (name, pattern) in &self.patterns {
            rules.push(patterns::user_rule(name, pattern)?);
        }
        if rules.len() >= usize::from(BY_KEY) {
            return Err(RedactionError::Prefilter {
                reason: format!("too many patterns ({})", rules.len()),
            });
        }
        let trigger_pattern = free_text::trigger_pattern(&self.keys);
        let trigger = match &trigger_pattern {
            Some(p) => Some(Regex::new(p).map_err(|e| RedactionError::Pattern {
                rule: "free-text keys".to_owned(),
                reason: regex_reason(&e),
            })?),
            None => None,
        };
        let all = rules
            .iter()
            .map(|r| r.regex.as_str())
            .chain(trigger_pattern.as_deref());
        let prefilter = RegexSet::new(all).map_err(|e| RedactionError::Prefilter {
            reason: regex_reason(&e),
        })?;
        Ok(Redactor {
            inner: Arc::new(Inner {
                on: true,
                keys: KeyMatcher::new(self.keys.clone(), &self.exempt),
                rules,
                trigger,
                prefilter,
                replacer,
                bodies,
                keep_bodies: self.keep_bodies,
            }),
        })
    }
}

impl fmt::Debug for Redaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|e| e.words.join(" ")).collect();
        let exempt: Vec<String> = self.exempt.iter().map(|w| w.join(" ")).collect();
        let patterns: Vec<&str> = self
            .patterns
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let mode = match &self.mode {
            Mode::Mask => "mask".to_owned(),
            Mode::Hmac(_) => "hmac (key hidden)".to_owned(),
            Mode::HmacFromEnv(var) => format!("hmac (key from ${var})"),
        };
        f.debug_struct("Redaction")
            .field("on", &self.on)
            .field("keys", &keys)
            .field("exempt", &exempt)
            .field("patterns", &patterns)
            .field("mode", &mode)
            .field("bodies", &self.bodies)
            .field("keep_bodies", &self.keep_bodies)
            .finish()
    }
}

/// Why a [`Redaction`] does not compile. No variant carries a key or a
/// pattern's text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedactionError {
    /// A value pattern does not compile, or matches the empty string.
    Pattern {
        /// The rule's name.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A rule name that is empty or not made of `[A-Za-z0-9_.-]`.
    RuleName {
        /// The name as given.
        rule: String,
    },
    /// A key given to [`Redaction::add_key`] that has no letter or digit.
    Key {
        /// The name as given.
        name: String,
    },
    /// [`Redaction::hmac`] was given an empty key.
    EmptyHmacKey,
    /// The variable named by [`Redaction::hmac_from_env`] is unset or
    /// empty.
    HmacEnv {
        /// The variable's name.
        var: String,
    },
    /// The patterns together do not fit the one-scan prefilter.
    Prefilter {
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for RedactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedactionError::Pattern { rule, reason } => {
                write!(f, "redaction rule `{rule}`: {reason}")
            }
            RedactionError::RuleName { rule } => write!(
                f,
                "redaction rule name {rule:?}: use one or more of A-Z a-z 0-9 _ . -"
            ),
            RedactionError::Key { name } => {
                write!(f, "redaction key {name:?} has no letter or digit")
            }
            RedactionError::EmptyHmacKey => f.write_str("redaction HMAC key is empty"),
            RedactionError::HmacEnv { var } => write!(
                f,
                "redaction HMAC key: environment variable {var} is unset or empty"
            ),
            RedactionError::Prefilter { reason } => {
                write!(f, "redaction patterns: {reason}")
            }
        }
    }
}

impl std::error::Error for RedactionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_compile_and_off_is_off() {
        let r = Redaction::default().compile().expect("defaults compile");
        assert!(!r.is_off());
        assert!(!Redaction::new().is_off());
        assert!(Redaction::off().is_off());
        let off = Redaction::off().compile().expect("off compiles");
        assert!(off.is_off());
        let mut out = String::new();
        assert_eq!(off.redact_str(Some("password"), "hunter2", &mut out), 0);
        assert_eq!(off.redact_str(None, "AKIAIOSFODNN7EXAMPLE", &mut out), 0);
        assert!(out.is_empty());
        assert!(off.keeps_bodies());
    }

    #[test]
    fn errors_name_the_culprit_and_never_the_secret() {
        let err = Redaction::new()
            .add_pattern("our-db-pass", "hunter2[")
            .compile()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("our-db-pass"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(err, RedactionError::Pattern { .. }));

        assert_eq!(
            Redaction::new().hmac("").compile().unwrap_err(),
            RedactionError::EmptyHmacKey
        );
        let var = "RINGTRAIL_TEST_SURELY_UNSET_HMAC_KEY";
        let err = Redaction::new().hmac_from_env(var).compile().unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
        assert!(matches!(
            Redaction::new().add_key("--").compile(),
            Err(RedactionError::Key { .. })
        ));
    }

    #[test]
    fn debug_hides_the_hmac_key_and_pattern_text() {
        let r = Redaction::new()
            .add_pattern("literal", "hunter2")
            .hmac("super-secret-key");
        let shown = format!("{r:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("literal"), "{shown}");
        let compiled = r.compile().expect("compiles");
        let shown = format!("{compiled:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn key_edits() {
        let r = Redaction::new()
            .add_key("ssn")
            .remove_key("cache_key")
            .remove_key("auth")
            .compile()
            .expect("compiles");
        assert!(r.is_secret_key("user.ssn"));
        assert!(r.is_secret_key("ssnLast4"));
        assert!(!r.is_secret_key("cacheKey"));
        assert!(!r.is_secret_key("auth"));
        assert!(r.is_secret_key("signing_key"));

        let r = Redaction::new()
            .remove_key("key")
            .compile()
            .expect("compiles");
        assert!(!r.is_secret_key("signing_key"));
        assert!(r.is_secret_key("api_key"));

        let r = Redaction::new()
            .remove_key("password")
            .add_key("password")
            .compile()
            .expect("compiles");
        assert!(r.is_secret_key("db.password"));
        assert!(r.is_secret_key("password"));

        // Free text follows the same list.
        let r = Redaction::new()
            .add_key("ssn")
            .remove_key("token")
            .compile()
            .expect("compiles");
        let mut out = String::new();
        r.redact_str(None, "ssn=078-05-1120 token=abc", &mut out);
        assert_eq!(out, "ssn=[REDACTED] token=abc");
    }

    #[test]
    fn an_empty_denylist_still_runs_the_value_patterns() {
        let mut r = Redaction::new();
        for e in keys::default_entries() {
            r = r.remove_key(e.words.join(" "));
        }
        let r = r.compile().expect("compiles");
        assert!(!r.is_secret_key("password"));
        let mut out = String::new();
        assert_eq!(
            r.redact_str(None, "password=hunter2 AKIAIOSFODNN7EXAMPLE", &mut out),
            1
        );
        assert_eq!(out, "password=hunter2 [REDACTED:aws-access-key-id]");
    }

    #[test]
    fn body_fields() {
        let r = Redaction::new().compile().expect("compiles");
        for name in DEFAULT_BODIES {
            assert!(r.is_body(name), "{name}");
            assert!(r.digests_body(name), "{name}");
        }
        assert!(!r.is_body("gen_ai.request.model"));
        assert!(!r.keeps_bodies());

        let r = Redaction::new()
            .add_body_field("http.request.body")
            .remove_body_field("tool.result")
            .keep_bodies(true)
            .compile()
            .expect("compiles");
        assert!(r.is_body("http.request.body"));
        assert!(!r.is_body("tool.result"));
        assert!(r.keeps_bodies());
        assert!(!r.digests_body("gen_ai.prompt"));
    }

    #[test]
    fn user_patterns_redact_with_their_name() {
        let r = Redaction::new()
            .add_pattern("acme-token", r"acme_[0-9a-f]{8}")
            .compile()
            .expect("compiles");
        let mut out = String::new();
        assert_eq!(r.redact_str(None, "using acme_0123abcd now", &mut out), 1);
        assert_eq!(out, "using [REDACTED:acme-token] now");
    }
}
