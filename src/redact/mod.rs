//! Redaction: secrets never reach storage.
//!
//! The writer thread runs every decoded row through a [`Redactor`] before
//! any sink (and before any hash of the row) sees it; the caller's thread
//! never pays for it. It covers the message, every string field (including
//! `Display`, `Debug` and error values, which arrive as text), the
//! context columns, and numbers under a key that holds a secret
//! (`otp_token = 482913` is stored as the string `[REDACTED]`; counters
//! such as `token_count = 5` stay numbers). Booleans are never redacted.
//!
//! Three rules find secrets:
//!
//! 1. **The key denylist** ([`keys`]): a string field whose *name* is a
//!    secret's (`password`, `apiKey`, `X-Api-Key`, `client_secret`,
//!    `access_token`, …) has its whole value replaced.
//! 2. **Value patterns** ([`patterns`]): well-known secret shapes (AWS key
//!    ids, GitHub, GitLab, Slack, Stripe, OpenAI and Anthropic keys, Google
//!    API keys, JWTs, PEM private keys, `Bearer` and `Basic` credentials,
//!    passwords in URLs, …), wherever they appear.
//! 3. **Keys in free text** ([`free_text`]): `password=…`, `"api_key": "…"`,
//!    `Creds { token: "…" }` inside any text.
//!
//! **Cut texts.** A text the record cut short (see `Builder::record_size`)
//! may end in the start of a secret that no pattern recognises any more
//! (`ghp_` and 20 of its 36 characters, a URL's password without its
//! `@`). The writer redacts such texts with [`Redactor::redact_cut_str`],
//! which also masks the start of a secret at their end.
//!
//! Only the secret is replaced; the rest of the text stays readable
//! ([`replace`] has the replacement formats):
//!
//! ```
//! use ringtrail::redact::Redaction;
//!
//! let redactor = Redaction::new().compile()?;
//!
//! let mut out = String::new();
//! let n = redactor.redact_str(
//!     None,
//!     "login failed for user=bob password=hunter2 from 10.0.0.8 with AKIAIOSFODNN7EXAMPLE",
//!     &mut out,
//! );
//! assert_eq!(n, 2);
//! assert_eq!(
//!     out,
//!     "login failed for user=bob password=[REDACTED] from 10.0.0.8 with [REDACTED:aws-access-key-id]",
//! );
//!
//! // A field named like a secret: the whole value goes.
//! out.clear();
//! assert_eq!(redactor.redact_str(Some("db.password"), "hunter2", &mut out), 1);
//! assert_eq!(out, "[REDACTED]");
//!
//! // Clean text: nothing appended, nothing allocated.
//! out.clear();
//! assert_eq!(redactor.redact_str(Some("user"), "ada", &mut out), 0);
//! assert!(out.is_empty());
//! # Ok::<(), ringtrail::redact::RedactionError>(())
//! ```
//!
//! **Bodies** (`gen_ai.prompt`, `gen_ai.completion`, `gen_ai.input.messages`,
//! `gen_ai.output.messages`, `tool.arguments`, `tool.result`; configurable)
//! are opt-in: unless bodies are kept, the writer stores
//! [`Redactor::body_digest`] (`sha256:<hex>`) and the length instead of the
//! text. Kept bodies are redacted like any string.
//!
//! **Configuration** is a [`Redaction`] (on by default; [`Redaction::off`]
//! is explicit), compiled once into a [`Redactor`]; compiling fails closed
//! on a bad user pattern ([`RedactionError`]).
//!
//! **Cost.** Clean text costs one scan: a single [`regex::RegexSet`] holds
//! every value pattern and the free-text key locator, and only a text it
//! matches goes on to the per-rule regexes. Nothing is allocated unless a
//! secret is written out (past the first use on a thread, which warms the
//! regex caches). A field name is judged in one pass over it. Rough
//! figures on a 2-core development VM (`cargo test --release --lib
//! redact::tests::timing -- --ignored --nocapture`): a clean 93-byte
//! message about 150 ns (some 1.6 ns a byte), a clean 10-byte field
//! about 35 ns, a 32-byte id about 70 ns, a field named like a secret
//! about 60 ns, a number's field name 40 to 80 ns; a text that holds a
//! secret about 1 µs (every rule runs). A text cut short also runs the
//! rules' tail patterns (rare: only cut texts do).
//! The writer's stage (`stage.rs`) remembers the last clean value of each
//! context column, so span context repeated row after row is scanned
//! once, and the judgement of each field name, so a call site's names
//! cost a lookup after the first row: the `ingest` bench's row (a
//! message, three numbers or booleans, a string, three context ids)
//! takes about 80 ns (`redact::stage::tests::timing`).
//!
//! Files: `stage.rs` (what the writer runs on each row), [`keys`] (the
//! denylist and how keys are cut into words),
//! [`patterns`] (value patterns), [`free_text`] (keys in text), [`replace`]
//! (mask, HMAC, digests), `spans.rs` (merging what the rules found),
//! `config.rs` ([`Redaction`], [`RedactionError`]).

use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexSet};

mod config;
pub mod free_text;
pub mod keys;
pub mod patterns;
pub mod replace;
mod spans;
pub(crate) mod stage;
#[cfg(test)]
mod tests;

pub use config::{Redaction, RedactionError};

use keys::KeyMatcher;
use patterns::Rule;
use replace::Replacer;
use spans::SpanBuf;

/// A compiled [`Redaction`]: immutable, `Send + Sync`, and cheap to clone
/// and share (one `Arc`).
///
/// `Debug` shows the mode and the sizes of the lists, never an HMAC key.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

/// What a [`Redactor`] shares.
struct Inner {
    on: bool,
    keys: KeyMatcher,
    rules: Vec<Rule>,
    trigger: Option<Regex>,
    prefilter: RegexSet,
    replacer: Replacer,
    bodies: Vec<String>,
    keep_bodies: bool,
}

impl Redactor {
    /// Redacts one text value. `key` is the field's name (`None` for the
    /// message).
    ///
    /// Appends the redacted text to `out` and returns the number of
    /// replacements (the row's `redacted` count adds these up). Returns 0
    /// and leaves `out` untouched when nothing was found: then the caller
    /// keeps `text` as it is. This is the fast path: one scan of `text`,
    /// no allocation.
    ///
    /// - `key` on the denylist: the whole value is replaced (1), unless it
    ///   is empty, already a replacement, or a number under a key that
    ///   counts something (`token_count`, `password_length`, see
    ///   [`free_text`]) (0).
    /// - Otherwise every secret found by a value pattern or after a key in
    ///   the text is replaced; overlapping finds count once.
    ///
    /// Never panics; `out` stays valid UTF-8 (the text is only cut on
    /// character boundaries).
    pub fn redact_str(&self, key: Option<&str>, text: &str, out: &mut String) -> u32 {
        self.redact(key, text, false, out)
    }

    /// Like [`redact_str`](Self::redact_str), for a text that is only the
    /// start of a longer one: cut by a record's size limit (the writer
    /// passes every text that carries a `<name>.truncated_from`, and
    /// context ids that may have been cut at 255 bytes).
    ///
    /// A secret cut short may no longer match its pattern (a `ghp_` token
    /// needs 36 characters, a URL's password its `@`), so on top of
    /// everything [`redact_str`](Self::redact_str) finds, the start of a
    /// secret that ends the text is replaced: any built-in value
    /// pattern's prefix and what follows it (`ghp_aB3…`, `AKIA…`, `eyJ…`,
    /// `sk-…`, `Bearer …`, `scheme://user:…` short of its `@`, …). A
    /// value after a denylisted key is replaced by the key rule already,
    /// however short. A pattern added with
    /// [`Redaction::add_pattern`] has no known prefix: only its full
    /// matches are found.
    ///
    /// ```
    /// use ringtrail::redact::Redaction;
    ///
    /// let r = Redaction::new().compile()?;
    /// let mut out = String::new();
    /// // Cut 8 characters into a GitHub token: no pattern matches any more.
    /// assert_eq!(r.redact_str(None, "calling with ghp_aB3dE6gH", &mut out), 0);
    /// assert_eq!(r.redact_cut_str(None, "calling with ghp_aB3dE6gH", &mut out), 1);
    /// assert_eq!(out, "calling with [REDACTED:github-token]");
    /// # Ok::<(), ringtrail::redact::RedactionError>(())
    /// ```
    pub fn redact_cut_str(&self, key: Option<&str>, text: &str, out: &mut String) -> u32 {
        self.redact(key, text, true, out)
    }

    fn redact(&self, key: Option<&str>, text: &str, cut: bool, out: &mut String) -> u32 {
        let judged = match key {
            Some(key) if self.is_secret_key(key) => KeyJudgement {
                secret: true,
                // Only a number needs the key's last word read.
                counter: free_text::is_number(text) && KeyMatcher::is_counter(key),
            },
            _ => KeyJudgement::default(),
        };
        self.redact_judged(judged, text, cut, out)
    }

    /// What the denylist says of a field named `key` (see
    /// [`KeyJudgement`]); what [`redact_str`](Self::redact_str) works out
    /// for its `key`, for a caller that keeps it (the writer's stage, per
    /// field name).
    pub(crate) fn judge_key(&self, key: &str) -> KeyJudgement {
        let secret = self.is_secret_key(key);
        KeyJudgement {
            secret,
            counter: secret && KeyMatcher::is_counter(key),
        }
    }

    /// [`redact_str`](Self::redact_str) (`cut`: [`redact_cut_str`](Self::redact_cut_str))
    /// with the key already judged.
    pub(crate) fn redact_judged(
        &self,
        key: KeyJudgement,
        text: &str,
        cut: bool,
        out: &mut String,
    ) -> u32 {
        let inner = &*self.inner;
        if !inner.on || text.is_empty() {
            return 0;
        }
        if key.secret {
            let counter = key.counter && free_text::is_number(text);
            if counter || replace::is_replacement(text) {
                return 0;
            }
            inner.replacer.write(None, text, out);
            return 1;
        }
        let found = inner.prefilter.is_match(text);
        if !found && !cut {
            return 0;
        }
        let mut spans = SpanBuf::new();
        for (index, rule) in inner.rules.iter().enumerate() {
            // `compile` keeps the number of rules below `spans::BY_KEY`.
            let index = u16::try_from(index).unwrap_or(spans::BY_KEY - 1);
            if found {
                rule.collect(index, text, &mut spans);
            }
            if cut {
                rule.collect_tail(index, text, &mut spans);
            }
        }
        if let (true, Some(trigger)) = (found, &inner.trigger) {
            free_text::collect(trigger, &inner.keys, text, &mut spans);
        }
        if spans.is_empty() {
            return 0;
        }
        let label = |rule: u16| inner.rules.get(usize::from(rule)).map(|r| r.name.as_str());
        spans.write(text, label, &inner.replacer, out)
    }

    /// Whether a number under a field named `key` is a secret: the key is
    /// on the denylist and does not count something (`otp_token`,
    /// `password`, `secret_pin`; not `token_count`, `password_length`).
    /// The writer stores such a number as the text `[REDACTED]` (or its
    /// `hmac:` token). Always false when redaction is off.
    pub fn hides_number(&self, key: &str) -> bool {
        self.judge_key(key).hides_number()
    }

    /// Appends what replaces the secret `text` found by its key
    /// (`[REDACTED]`, or its `hmac:` token) to `out`.
    pub(crate) fn write_mask(&self, text: &str, out: &mut String) {
        self.inner.replacer.write(None, text, out);
    }

    /// Whether a field named `key` holds a secret by its name alone (the
    /// key denylist, see [`keys`]). Always false when redaction is off.
    pub fn is_secret_key(&self, key: &str) -> bool {
        self.inner.on && self.inner.keys.matches(key)
    }

    /// Whether `key` names a body field (by default `gen_ai.prompt`,
    /// `gen_ai.completion`, `gen_ai.input.messages`,
    /// `gen_ai.output.messages`, `tool.arguments`, `tool.result`; compared
    /// whole, ignoring ASCII case). Unless [`keeps_bodies`](Self::keeps_bodies),
    /// such a value is stored as its [`body_digest`](Self::body_digest) and
    /// length; see [`digests_body`](Self::digests_body).
    pub fn is_body(&self, key: &str) -> bool {
        self.inner
            .bodies
            .iter()
            .any(|b| b.eq_ignore_ascii_case(key))
    }

    /// Whether body fields are kept as (redacted) text. True when the
    /// configuration said `keep_bodies(true)`, and when redaction is off.
    pub fn keeps_bodies(&self) -> bool {
        self.inner.keep_bodies
    }

    /// Whether the value of `key` is to be replaced by its digest:
    /// [`is_body`](Self::is_body) and not [`keeps_bodies`](Self::keeps_bodies).
    pub fn digests_body(&self, key: &str) -> bool {
        !self.inner.keep_bodies && self.is_body(key)
    }

    /// Whether this redactor does nothing ([`Redaction::off`]).
    pub fn is_off(&self) -> bool {
        !self.inner.on
    }

    /// Appends `sha256:` and the 64 lowercase hex digits of the SHA-256 of
    /// `text` to `out`: what a body field is stored as.
    pub fn body_digest(text: &str, out: &mut String) {
        replace::body_digest(text, out);
    }
}

/// What the key denylist says of a field name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KeyJudgement {
    /// The name is a secret's ([`Redactor::is_secret_key`]).
    pub(crate) secret: bool,
    /// ... and it counts something (`token_count`): a number under it is
    /// kept.
    pub(crate) counter: bool,
}

impl KeyJudgement {
    /// Whether a number under the name is a secret
    /// ([`Redactor::hides_number`]).
    pub(crate) fn hides_number(self) -> bool {
        self.secret && !self.counter
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Redactor")
            .field("on", &inner.on)
            .field("mode", &inner.replacer)
            .field("keys", &inner.keys.entries().len())
            .field("patterns", &inner.rules.len())
            .field("bodies", &inner.bodies)
            .field("keep_bodies", &inner.keep_bodies)
            .finish()
    }
}
