//! What a secret becomes: a mask, a keyed-hash token, or (for bodies) a
//! digest.
//!
//! **Mask** (the default) writes
//!
//! - `[REDACTED]` for a value found by its key: a field whose name is on
//!   the denylist (`password = "hunter2"`), or the value after a
//!   denylisted key in free text (`password=hunter2`);
//! - `[REDACTED:<rule>]` for a value found by its shape, whatever the key:
//!   `[REDACTED:aws-access-key-id]`, `[REDACTED:jwt]`,
//!   `[REDACTED:url-password]` (see [`patterns`](super::patterns) for the
//!   rule names; a pattern added with
//!   [`Redaction::add_pattern`](super::Redaction::add_pattern) uses its
//!   own name).
//!
//! ```text
//! login failed for user=bob password=hunter2 from 10.0.0.8
//! login failed for user=bob password=[REDACTED] from 10.0.0.8
//!
//! calling S3 with AKIAIOSFODNN7EXAMPLE
//! calling S3 with [REDACTED:aws-access-key-id]
//! ```
//!
//! **HMAC** writes `hmac:` and the first 16 hex digits (64 bits) of
//! HMAC-SHA256 under the user's key, of the secret's exact text, for every
//! rule alike: `password=hmac:9f2c41d07a6be813`. Equal secrets give equal
//! tokens (under one key), so an investigator can see that two rows
//! carried the same credential without seeing it; another key gives other
//! tokens. 64 bits make an accidental collision between two secrets in one
//! log negligible; the key is what stops anyone from testing guesses
//! against a token, so keep it out of the log's readers' hands.
//!
//! **Bodies** (prompts, completions, tool arguments and results, unless
//! kept) become `sha256:` and the 64 hex digits of their SHA-256: no key,
//! so anyone holding the original text can check it against the row.
//!
//! ```
//! use ringtrail::redact::Redactor;
//!
//! let mut out = String::new();
//! Redactor::body_digest("abc", &mut out);
//! assert_eq!(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
//! ```

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The mask for a value found by its key.
pub(crate) const MASK: &str = "[REDACTED]";

/// How many hex digits of the HMAC a token keeps (64 bits).
const HMAC_HEX: usize = 16;

/// How secrets are written, compiled from the mode of a
/// [`Redaction`](super::Redaction).
#[derive(Clone)]
pub(crate) enum Replacer {
    /// `[REDACTED]` or `[REDACTED:<rule>]`.
    Mask,
    /// `hmac:<16 hex>`, from a MAC already keyed (cloned per secret, so
    /// the key schedule is computed once).
    Hmac(Box<Hmac<Sha256>>),
}

impl std::fmt::Debug for Replacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key, nor anything derived from it.
        match self {
            Replacer::Mask => f.write_str("Mask"),
            Replacer::Hmac(_) => f.write_str("Hmac(<key hidden>)"),
        }
    }
}

impl Replacer {
    /// A replacer that writes HMAC tokens under `key`.
    pub(crate) fn hmac(key: &[u8]) -> Replacer {
        // HMAC takes a key of any length; `new_from_slice` cannot fail.
        match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => Replacer::Hmac(Box::new(mac)),
            Err(_) => Replacer::Mask,
        }
    }

    /// Appends what replaces `secret`, found by `rule` (`None`: by its key).
    pub(crate) fn write(&self, rule: Option<&str>, secret: &str, out: &mut String) {
        match self {
            Replacer::Mask => match rule {
                None => out.push_str(MASK),
                Some(rule) => {
                    out.push_str("[REDACTED:");
                    out.push_str(rule);
                    out.push(']');
                }
            },
            Replacer::Hmac(mac) => {
                let mut mac = (**mac).clone();
                mac.update(secret.as_bytes());
                let tag = mac.finalize().into_bytes();
                out.push_str("hmac:");
                push_hex(&tag[..HMAC_HEX / 2], out);
            }
        }
    }
}

/// Appends `sha256:<64 hex>` of `text`.
pub(crate) fn body_digest(text: &str, out: &mut String) {
    let digest = Sha256::digest(text.as_bytes());
    out.push_str("sha256:");
    push_hex(&digest, out);
}

/// Appends `bytes` as lowercase hex.
fn push_hex(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
}

/// Whether `text` is already a replacement (`[REDACTED]`,
/// `[REDACTED:<rule>]` or `hmac:<16 hex>`), so that redacting a redacted
/// text changes nothing.
pub(crate) fn is_replacement(text: &str) -> bool {
    if text == MASK {
        return true;
    }
    if let Some(rule) = text
        .strip_prefix("[REDACTED:")
        .and_then(|r| r.strip_suffix(']'))
    {
        return !rule.is_empty() && rule.bytes().all(is_rule_name_byte);
    }
    if let Some(hex) = text.strip_prefix("hmac:") {
        return hex.len() == HMAC_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    false
}

/// Whether `b` may appear in a rule name (which is written inside
/// `[REDACTED:<rule>]`).
pub(crate) fn is_rule_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(r: &Replacer, secret: &str) -> String {
        let mut out = String::new();
        r.write(Some("rule"), secret, &mut out);
        out
    }

    #[test]
    fn mask_names_the_rule_or_not() {
        let mut out = String::new();
        Replacer::Mask.write(None, "hunter2", &mut out);
        Replacer::Mask.write(Some("jwt"), "eyJ...", &mut out);
        assert_eq!(out, "[REDACTED][REDACTED:jwt]");
    }

    #[test]
    fn hmac_equal_secrets_equal_tokens_other_key_other_tokens() {
        let a = Replacer::hmac(b"key one");
        let b = Replacer::hmac(b"key two");
        let t1 = token(&a, "hunter2");
        assert_eq!(t1, token(&a, "hunter2"));
        assert_ne!(t1, token(&a, "hunter3"));
        assert_ne!(t1, token(&b, "hunter2"));
        assert!(t1.starts_with("hmac:") && t1.len() == 5 + 16, "{t1}");
        assert!(is_replacement(&t1));
        // The rule does not enter the token: one secret, one token.
        let mut other = String::new();
        a.write(None, "hunter2", &mut other);
        assert_eq!(t1, other);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // Key "Jefe", data "what do ya want for nothing?":
        // 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843
        let r = Replacer::hmac(b"Jefe");
        assert_eq!(
            token(&r, "what do ya want for nothing?"),
            "hmac:5bdcc146bf60754e"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let r = Replacer::hmac(b"super-secret-key");
        let shown = format!("{r:?}");
        assert!(!shown.contains("super"), "{shown}");
    }

    #[test]
    fn body_digest_is_sha256_hex() {
        let mut out = String::from("x=");
        body_digest("", &mut out);
        assert_eq!(
            out,
            "x=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn replacements_are_recognised() {
        assert!(is_replacement("[REDACTED]"));
        assert!(is_replacement("[REDACTED:github-token]"));
        assert!(is_replacement("hmac:0123456789abcdef"));
        assert!(!is_replacement("[REDACTED:]"));
        assert!(!is_replacement("[REDACTED:a b]"));
        assert!(!is_replacement("hmac:0123"));
        assert!(!is_replacement("hunter2"));
    }
}
