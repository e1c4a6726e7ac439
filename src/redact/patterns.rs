//! Value patterns: secrets recognised by their shape, wherever they appear
//! and whatever the key.
//!
//! The shapes follow gitleaks' default rules, kept to the ones with a
//! distinctive prefix or structure so that ordinary text (UUIDs, hashes,
//! base64 of non-secrets, words) is left alone. Each rule has a name,
//! written into the mask: `[REDACTED:<name>]`.
//!
//! | rule | shape | replaced |
//! |---|---|---|
//! | `aws-access-key-id` | `AKIA`, `ASIA`, `ABIA`, `ACCA`, `A3T?` + 16 of `[A-Z0-9]` | the id |
//! | `github-token` | `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + 36+ alnum; `github_pat_` + 22+ of `[A-Za-z0-9_]` | the token |
//! | `gitlab-token` | `glpat-`, `gldt-`, `glrt-`, `glptt-`, `glft-`, `glsoat-`, `glagent-`, `glimt-`, `glcbt-`, `gloas-` + 20+ of `[A-Za-z0-9_-]` | the token |
//! | `slack-token` | `xoxa-`, `xoxb-`, `xoxp-`, `xoxo-`, `xoxs-`, `xoxe-`, `xoxr-`, `xapp-` + 10+ of `[A-Za-z0-9-]` | the token |
//! | `slack-webhook` | `hooks.slack.com/services/…` (also `workflows`, `triggers`) | the path after the kind |
//! | `stripe-key` | `sk_`/`rk_` + `live_`/`test_`/`prod_` + 16+ alnum; `whsec_` + 24+ alnum | the key |
//! | `anthropic-key` | `sk-ant-` + 20+ of `[A-Za-z0-9_-]` | the key |
//! | `openai-key` | `sk-` (`sk-proj-`, `sk-svcacct-`, …) + 20+ of `[A-Za-z0-9_-]`, with a digit or capital in it | the key |
//! | `google-api-key` | `AIza` + 35 of `[A-Za-z0-9_-]` | the key |
//! | `gcp-oauth-client-secret` | `GOCSPX-` + 28 of `[A-Za-z0-9_-]` | the secret |
//! | `jwt` | `eyJ…` `.` `…` `.` `…` (three base64url segments; the third may be empty) | the token |
//! | `private-key` | `-----BEGIN … PRIVATE KEY-----` to its `-----END … PRIVATE KEY-----` (any type: RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP … BLOCK), or to the end of the text when the end line is missing | the whole block |
//! | `npm-token` | `npm_` + 36 alnum | the token |
//! | `pypi-token` | `pypi-AgEIcHlwaS5vcmc` + 50+ | the token |
//! | `huggingface-token` | `hf_` + 34+ alnum | the token |
//! | `sendgrid-key` | `SG.` + 22 `.` + 43 | the key |
//! | `digitalocean-token` | `dop_v1_`, `doo_v1_`, `dor_v1_` + 64 hex | the token |
//! | `shopify-token` | `shpat_`, `shpca_`, `shppa_`, `shpss_` + 32 hex | the token |
//! | `vault-token` | `hvs.`, `hvb.`, `hvr.` + 24+ of `[A-Za-z0-9_-]` | the token |
//! | `databricks-token` | `dapi` + 32 hex | the token |
//! | `age-secret-key` | `AGE-SECRET-KEY-1` + 58 bech32 | the key |
//! | `postman-key` | `PMAK-` + 24 hex `-` + 34 hex | the key |
//! | `atlassian-token` | `ATATT3` + 150+ | the token |
//! | `groq-key` | `gsk_` + 40+ alnum | the key |
//! | `bearer` | `Bearer <credential>` (any case) | the credential; the scheme word stays |
//! | `basic-auth` | `Basic <base64 of user:password>` (any case, 8+ characters) | the credential; the scheme word stays |
//! | `url-password` | `scheme://user:password@host`, the password running to the last `@` before a blank or quote (it may hold `/`, `?`, `#`, `@`), unless it is a port and a path (`https://host:8443/u?email=a@b`) | the password only |
//!
//! Where a prefix could also end a longer word (`sk-` in `task-…`), the
//! rule requires that no letter or digit comes right before it.
//! Some rules check a match before accepting it:
//!
//! - `openai-key` needs a digit or a capital letter after `sk-`, so a
//!   kebab-case name such as `sk-learn-compatible-estimator` stays;
//! - `bearer` needs a credential of 8+ characters with a digit, or of 20+
//!   characters, so prose ("the bearer of this letter") stays;
//! - `basic-auth` needs a credential of 8+ characters that is base64
//!   (length a multiple of 4) of printable text containing `:`, so "basic
//!   authentication" stays.
//!
//! **Cut texts.** Every rule but `private-key` (whose block runs to the
//! end of the text when its end line is missing) also knows what the
//! start of its secret looks like: its prefix and any of its characters,
//! with nothing after them (`ghp_aB3`, `AKIA12`, `eyJhbGci`, `Bearer x`,
//! `scheme://user:pa` short of the `@`, a port excepted). At the end of a
//! text cut short ([`Redactor::redact_cut_str`](super::Redactor::redact_cut_str)),
//! that start is masked under the rule's name, however short; no other
//! check applies there.
//!
//! ```
//! use ringtrail::redact::Redaction;
//!
//! let r = Redaction::new().compile().unwrap();
//! let mut out = String::new();
//! let n = r.redact_str(None, "retrying with Bearer 9f8e7d6c5b4a39281706 in 5s", &mut out);
//! assert_eq!(n, 1);
//! assert_eq!(out, "retrying with Bearer [REDACTED:bearer] in 5s");
//!
//! out.clear();
//! r.redact_str(None, "connecting to postgres://app:s3cr3t@db:5432/app", &mut out);
//! assert_eq!(out, "connecting to postgres://app:[REDACTED:url-password]@db:5432/app");
//! ```

use std::sync::OnceLock;

use regex::Regex;

use super::spans::SpanBuf;
use super::RedactionError;

/// Where the secret sits inside a match: byte offsets into the match, or
/// `None` to reject the match.
type Locate = fn(&str) -> Option<(usize, usize)>;

/// One built-in rule: its name, its regex, where its secret is, and what
/// the start of such a secret looks like at the end of a cut text.
struct Builtin {
    name: &'static str,
    pattern: &'static str,
    locate: Locate,
    tail: Option<Tail>,
}

/// The start of a rule's secret at the very end of a text (its pattern
/// ends in `\z`), and where the part to mask sits in that match: the
/// prefix and whatever of the secret follows it before the cut.
struct Tail {
    pattern: &'static str,
    locate: Locate,
}

/// "No letter or digit right before": a match starts with this group and
/// [`lead`] steps over it.
macro_rules! after_non_alnum {
    ($rest:literal) => {
        concat!("(?:^|[^A-Za-z0-9])", $rest)
    };
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "aws-access-key-id",
        pattern: after_non_alnum!("(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}"),
        locate: lead,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]*\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "github-token",
        pattern: r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"(?:gh[pousr]_[A-Za-z0-9]*|github_pat_[A-Za-z0-9_]*)\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "gitlab-token",
        pattern: r"gl(?:pat|dt|rt|ptt|ft|soat|agent|imt|cbt|oas)-[A-Za-z0-9_\-]{20,}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"gl(?:pat|dt|rt|ptt|ft|soat|agent|imt|cbt|oas)-[A-Za-z0-9_\-]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "slack-token",
        pattern: r"(?:xox[abposer]|xapp)-[A-Za-z0-9\-]{10,}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"(?:xox[abposer]|xapp)-[A-Za-z0-9\-]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "slack-webhook",
        pattern: r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{20,}",
        locate: slack_webhook,
        tail: Some(Tail {
            pattern: r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]*\z",
            locate: slack_webhook,
        }),
    },
    Builtin {
        name: "stripe-key",
        pattern: after_non_alnum!(
            "(?:(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})"
        ),
        locate: lead,
        tail: Some(Tail {
            pattern: after_non_alnum!(
                r"(?:(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]*|whsec_[A-Za-z0-9]*)\z"
            ),
            locate: lead,
        }),
    },
    Builtin {
        name: "anthropic-key",
        pattern: after_non_alnum!(r"sk-ant-[A-Za-z0-9_\-]{20,}"),
        locate: lead,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"sk-ant-[A-Za-z0-9_\-]*\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "openai-key",
        pattern: after_non_alnum!(r"sk-[A-Za-z0-9_\-]{20,}"),
        locate: openai,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"sk-[A-Za-z0-9_\-]*\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "google-api-key",
        pattern: r"(?:^|[^A-Za-z0-9_\-])AIza[A-Za-z0-9_\-]{35}",
        locate: lead,
        tail: Some(Tail {
            pattern: r"(?:^|[^A-Za-z0-9_\-])AIza[A-Za-z0-9_\-]*\z",
            locate: lead,
        }),
    },
    Builtin {
        name: "gcp-oauth-client-secret",
        pattern: r"GOCSPX-[A-Za-z0-9_\-]{28}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"GOCSPX-[A-Za-z0-9_\-]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "jwt",
        pattern: r"(?:^|[^A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*",
        locate: lead,
        tail: Some(Tail {
            pattern: r"(?:^|[^A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*){0,2}\z",
            locate: lead,
        }),
    },
    Builtin {
        name: "private-key",
        pattern: r"-----BEGIN[ A-Z0-9_\-]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[ A-Z0-9_\-]*PRIVATE KEY(?: BLOCK)?-----|\z)",
        locate: whole,
        tail: None,
    },
    Builtin {
        name: "npm-token",
        pattern: after_non_alnum!("npm_[A-Za-z0-9]{36}"),
        locate: lead,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"npm_[A-Za-z0-9]*\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "pypi-token",
        pattern: r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "huggingface-token",
        pattern: r"(?:^|[^A-Za-z0-9_])hf_[A-Za-z0-9]{34,}",
        locate: lead,
        tail: Some(Tail {
            pattern: r"(?:^|[^A-Za-z0-9_])hf_[A-Za-z0-9]*\z",
            locate: lead,
        }),
    },
    Builtin {
        name: "sendgrid-key",
        pattern: r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",
        locate: whole,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"SG\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*)?\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "digitalocean-token",
        pattern: r"do[opr]_v1_[a-f0-9]{64}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"do[opr]_v1_[a-f0-9]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "shopify-token",
        pattern: r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "vault-token",
        pattern: after_non_alnum!(r"hv[sbr]\.[A-Za-z0-9_\-]{24,}"),
        locate: lead,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"hv[sbr]\.[A-Za-z0-9_\-]*\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "databricks-token",
        pattern: after_non_alnum!("dapi[a-f0-9]{32}(?:-[0-9]+)?"),
        locate: lead,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"dapi[a-f0-9]*(?:-[0-9]*)?\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "age-secret-key",
        pattern: r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "postman-key",
        pattern: r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"PMAK-[a-fA-F0-9]*(?:-[a-fA-F0-9]*)?\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "atlassian-token",
        pattern: r"ATATT3[A-Za-z0-9_\-=]{150,}",
        locate: whole,
        tail: Some(Tail {
            pattern: r"ATATT3[A-Za-z0-9_\-=]*\z",
            locate: whole,
        }),
    },
    Builtin {
        name: "groq-key",
        pattern: after_non_alnum!("gsk_[A-Za-z0-9]{40,}"),
        locate: lead,
        tail: Some(Tail {
            pattern: after_non_alnum!(r"gsk_[A-Za-z0-9]*\z"),
            locate: lead,
        }),
    },
    Builtin {
        name: "bearer",
        pattern: r"(?-u:\b)(?i:bearer)[ \t]+[A-Za-z0-9\-._~+/]{8,}=*",
        locate: bearer,
        tail: Some(Tail {
            pattern: r"(?-u:\b)(?i:bearer)[ \t]+[A-Za-z0-9\-._~+/]*=*\z",
            locate: after_scheme,
        }),
    },
    Builtin {
        name: "basic-auth",
        pattern: r"(?-u:\b)(?i:basic)[ \t]+[A-Za-z0-9+/]{8,}={0,2}",
        locate: basic,
        tail: Some(Tail {
            pattern: r"(?-u:\b)(?i:basic)[ \t]+[A-Za-z0-9+/]*={0,2}\z",
            locate: after_scheme,
        }),
    },
    Builtin {
        name: "url-password",
        pattern: r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/?#"'<>]*:[^\s"'<>]+@"#,
        locate: url_password,
        tail: Some(Tail {
            pattern: r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/?#"'<>]*:[^\s"'<>]*\z"#,
            locate: url_password_cut,
        }),
    },
];

/// The names of the built-in value patterns, in order (the table in the
/// module docs).
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

/// A compiled value pattern.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// The name written into `[REDACTED:<name>]`.
    pub(crate) name: String,
    /// Its regex.
    pub(crate) regex: Regex,
    locate: Locate,
    /// The start of its secret at the end of a text, for a built-in rule.
    tail: Option<(Regex, Locate)>,
}

impl Rule {
    /// Adds the secrets this rule finds in `text` to `spans`, under rule
    /// index `index`.
    pub(crate) fn collect(&self, index: u16, text: &str, spans: &mut SpanBuf) {
        for m in self.regex.find_iter(text) {
            if let Some((s, e)) = (self.locate)(m.as_str()) {
                spans.push(m.start() + s, m.start() + e, index);
            }
        }
    }

    /// Adds the start of a secret of this rule's kind that ends `text` to
    /// `spans`: for a text cut short, whose secret may have lost its end
    /// (and with it what the full pattern needs) to the cut.
    pub(crate) fn collect_tail(&self, index: u16, text: &str, spans: &mut SpanBuf) {
        let Some((regex, locate)) = &self.tail else {
            return;
        };
        if let Some(m) = regex.find(text) {
            if let Some((s, e)) = locate(m.as_str()) {
                spans.push(m.start() + s, m.start() + e, index);
            }
        }
    }
}

/// The built-in rules, compiled once per process (a `Regex` clone shares
/// the compiled program).
pub(crate) fn builtin_rules() -> Result<Vec<Rule>, RedactionError> {
    static COMPILED: OnceLock<Result<Vec<Rule>, RedactionError>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            BUILTINS
                .iter()
                .map(|b| {
                    let compile = |pattern| {
                        Regex::new(pattern).map_err(|e| RedactionError::Pattern {
                            rule: b.name.to_owned(),
                            reason: regex_reason(&e),
                        })
                    };
                    let tail = match &b.tail {
                        Some(t) => Some((compile(t.pattern)?, t.locate)),
                        None => None,
                    };
                    Ok(Rule {
                        name: b.name.to_owned(),
                        regex: compile(b.pattern)?,
                        locate: b.locate,
                        tail,
                    })
                })
                .collect()
        })
        .clone()
}

/// A user's pattern: the whole match is the secret. Fails, naming the
/// rule, when the name is not `[A-Za-z0-9_.-]+`, the regex does not
/// compile, or it matches the empty string (it would match everywhere).
pub(crate) fn user_rule(name: &str, pattern: &str) -> Result<Rule, RedactionError> {
    if name.is_empty() || !name.bytes().all(super::replace::is_rule_name_byte) {
        return Err(RedactionError::RuleName {
            rule: name.to_owned(),
        });
    }
    let regex = Regex::new(pattern).map_err(|e| RedactionError::Pattern {
        rule: name.to_owned(),
        reason: regex_reason(&e),
    })?;
    if regex.is_match("") {
        return Err(RedactionError::Pattern {
            rule: name.to_owned(),
            reason: "the pattern matches the empty string".to_owned(),
        });
    }
    Ok(Rule {
        name: name.to_owned(),
        regex,
        locate: whole,
        tail: None,
    })
}

/// The one line of a regex error that says what is wrong, without the
/// pattern's text (which may spell out a literal secret).
pub(crate) fn regex_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern exceeds the size limit of {limit} bytes")
        }
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|l| l.trim().strip_prefix("error:"))
            .map_or_else(|| "invalid syntax".to_owned(), |l| l.trim().to_owned()),
        _ => "the pattern does not compile".to_owned(),
    }
}

/// The whole match.
fn whole(m: &str) -> Option<(usize, usize)> {
    Some((0, m.len()))
}

/// The match less the leading non-alphanumeric character of
/// `after_non_alnum!` (absent at the start of the text).
fn lead(m: &str) -> Option<(usize, usize)> {
    let first = m.chars().next()?;
    let start = if first.is_ascii_alphanumeric() {
        0
    } else {
        first.len_utf8()
    };
    Some((start, m.len()))
}

/// [`lead`], and a digit or capital after `sk-`.
fn openai(m: &str) -> Option<(usize, usize)> {
    let (start, end) = lead(m)?;
    let body = m.get(start + 3..end)?;
    body.bytes()
        .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        .then_some((start, end))
}

/// The path after `hooks.slack.com/<kind>/`.
fn slack_webhook(m: &str) -> Option<(usize, usize)> {
    let kind = m.find(".com/")? + ".com/".len();
    let path = kind + m[kind..].find('/')? + 1;
    Some((path, m.len()))
}

/// The credential after an auth scheme word and its blanks.
fn credential(m: &str) -> (usize, &str) {
    let start = m
        .bytes()
        .position(|b| b == b' ' || b == b'\t')
        .map(|p| {
            p + m[p..]
                .bytes()
                .take_while(|&b| b == b' ' || b == b'\t')
                .count()
        })
        .unwrap_or(m.len());
    (start, &m[start..])
}

/// `Bearer <credential>`: 8+ characters with a digit, or 20+.
fn bearer(m: &str) -> Option<(usize, usize)> {
    let (start, cred) = credential(m);
    let ok = cred.len() >= 20 || (cred.len() >= 8 && cred.bytes().any(|b| b.is_ascii_digit()));
    ok.then_some((start, m.len()))
}

/// `Basic <credential>`: base64 of printable text with a `:`.
fn basic(m: &str) -> Option<(usize, usize)> {
    let (start, cred) = credential(m);
    base64_user_pass(cred).then_some((start, m.len()))
}

/// Whether `s` is padded base64 of printable text (no control bytes)
/// containing a `:`, as `user:password` is. Decodes on the fly, without
/// allocating.
fn base64_user_pass(s: &str) -> bool {
    fn sextet(b: u8) -> Option<u32> {
        match b {
            b'A'..=b'Z' => Some(u32::from(b - b'A')),
            b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() < 4 || !b.len().is_multiple_of(4) {
        return false;
    }
    let mut colon = false;
    for (i, quad) in b.chunks_exact(4).enumerate() {
        let last = i + 1 == b.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return false;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            match sextet(c) {
                Some(v) => n = (n << 6) | v,
                None => return false,
            }
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        for &byte in &bytes[..3 - pad] {
            if byte < 0x20 || byte == 0x7f {
                return false;
            }
            colon |= byte == b':';
        }
    }
    colon
}

/// The password of `scheme://user:password@`: from the first `:` after
/// `//` to the final `@` (a password may hold `/`, `?`, `#` and `@`).
/// Not when a port and a path come after the `:`, as in
/// `https://host:8443/users?email=bob@example.com`.
fn url_password(m: &str) -> Option<(usize, usize)> {
    let auth = m.find("://")? + 3;
    let colon = auth + m[auth..].find(':')? + 1;
    let end = m.len().checked_sub(1)?;
    (colon < end && !port_then_path(&m[colon..end], false)).then_some((colon, end))
}

/// Whether `rest` (what follows the `:` after `scheme://host`) is a port
/// followed by a path, query or fragment, or (`alone`) by nothing.
fn port_then_path(rest: &str, alone: bool) -> bool {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let after = rest.as_bytes().get(digits);
    (1..=5).contains(&digits)
        && match after {
            None => alone,
            Some(b) => matches!(b, b'/' | b'?' | b'#'),
        }
}

/// At the end of a cut text, `scheme://user:` and what follows up to the
/// cut: masked from the `:` on, unless it is a port (and a path), since
/// the `@` that would tell a password from a host may have been cut off.
fn url_password_cut(m: &str) -> Option<(usize, usize)> {
    let auth = m.find("://")? + 3;
    let colon = auth + m[auth..].find(':')? + 1;
    (colon < m.len() && !port_then_path(&m[colon..], true)).then_some((colon, m.len()))
}

/// The credential after an auth scheme word, to the end of the match,
/// however short.
fn after_scheme(m: &str) -> Option<(usize, usize)> {
    let (start, _) = credential(m);
    Some((start, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Redaction;

    fn redact(text: &str) -> (u32, String) {
        let r = Redaction::new().compile().expect("defaults compile");
        let mut out = String::new();
        let n = r.redact_str(None, text, &mut out);
        if n == 0 {
            assert!(out.is_empty());
            out.push_str(text);
        }
        (n, out)
    }

    /// One sample per rule: (rule, secret text, what the secret becomes).
    /// The secret sits in a sentence whose other words must stay.
    fn samples() -> Vec<(&'static str, String, String)> {
        let m = |rule: &str| format!("[REDACTED:{rule}]");
        vec![
            ("aws-access-key-id", "AKIAIOSFODNN7EXAMPLE".into(), m("aws-access-key-id")),
            ("aws-access-key-id", "ASIA2EXAMPLE3EXAMPLE".into(), m("aws-access-key-id")),
            ("github-token", format!("ghp_{}", "aB3".repeat(12)), m("github-token")),
            ("github-token", format!("gho_{}", "Zz9".repeat(12)), m("github-token")),
            ("github-token", format!("github_pat_11ABCDEFG0_{}", "x1Y".repeat(20)), m("github-token")),
            ("gitlab-token", "glpat-xZ3_kP9-qW2eR7tY5uI1".into(), m("gitlab-token")),
            ("slack-token", "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp".into(), m("slack-token")),
            ("slack-token", "xoxp-1111111111-2222222222-3333333333-abcdef".into(), m("slack-token")),
            (
                "slack-webhook",
                "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX".into(),
                format!("https://hooks.slack.com/services/{}", m("slack-webhook")),
            ),
            ("stripe-key", format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc"), m("stripe-key")),
            ("stripe-key", format!("rk_live_{}", "51HbX9aQ0bC7dE6fG5hI4jK3"), m("stripe-key")),
            ("anthropic-key", format!("sk-ant-api03-{}AA", "Ab9_-".repeat(19)), m("anthropic-key")),
            ("openai-key", format!("sk-proj-{}", "Q7x-Lm3_".repeat(8)), m("openai-key")),
            ("openai-key", "sk-1234567890abcdefABCDEF".into(), m("openai-key")),
            ("google-api-key", format!("AIza{}", "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"), m("google-api-key")),
            ("gcp-oauth-client-secret", "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".into(), m("gcp-oauth-client-secret")),
            (
                "jwt",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U".into(),
                m("jwt"),
            ),
            (
                "private-key",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc=\n-----END RSA PRIVATE KEY-----".into(),
                m("private-key"),
            ),
            (
                "private-key",
                "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk\\n-----END OPENSSH PRIVATE KEY-----".into(),
                m("private-key"),
            ),
            ("npm-token", format!("npm_{}", "a1B2c3D4e5F6".repeat(3)), m("npm-token")),
            ("pypi-token", format!("pypi-AgEIcHlwaS5vcmc{}", "Ab1_".repeat(14)), m("pypi-token")),
            ("huggingface-token", format!("hf_{}", "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"), m("huggingface-token")),
            (
                "sendgrid-key",
                format!("SG.{}.{}", "a1B2c3D4e5F6g7H8i9J0k1", "x".repeat(43)),
                m("sendgrid-key"),
            ),
            ("digitalocean-token", format!("dop_v1_{}", "ab12".repeat(16)), m("digitalocean-token")),
            ("shopify-token", format!("shpat_{}", "0f".repeat(16)), m("shopify-token")),
            ("vault-token", format!("hvs.{}", "CAESIJ3k9_x-Lm2".repeat(3)), m("vault-token")),
            ("databricks-token", format!("dapi{}", "0123456789abcdef".repeat(2)), m("databricks-token")),
            (
                "age-secret-key",
                format!("AGE-SECRET-KEY-1{}", "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".repeat(2).get(..58).unwrap_or("")),
                m("age-secret-key"),
            ),
            (
                "postman-key",
                format!("PMAK-{}-{}", "0123456789abcdef01234567", "0123456789abcdef0123456789abcdef01"),
                m("postman-key"),
            ),
            ("atlassian-token", format!("ATATT3{}", "xFfGF0".repeat(30)), m("atlassian-token")),
            ("groq-key", format!("gsk_{}", "Ab12Cd34Ef56".repeat(4)), m("groq-key")),
            (
                "bearer",
                "Bearer 9f8e7d6c5b4a3928".into(),
                format!("Bearer {}", m("bearer")),
            ),
            (
                "bearer",
                "bearer\tmF_9.B5f-4.1JqM".into(),
                format!("bearer\t{}", m("bearer")),
            ),
            (
                "basic-auth",
                "Basic YWxhZGRpbjpvcGVuc2VzYW1l".into(),
                format!("Basic {}", m("basic-auth")),
            ),
            (
                "url-password",
                "postgres://app:s3cr3t@db.internal:5432/app".into(),
                format!("postgres://app:{}@db.internal:5432/app", m("url-password")),
            ),
            (
                "url-password",
                "postgres://app:pa/ss#w?d@db.internal/app".into(),
                format!("postgres://app:{}@db.internal/app", m("url-password")),
            ),
            (
                "url-password",
                "redis://:p@ss:w0rd@cache:6379".into(),
                format!("redis://:{}@cache:6379", m("url-password")),
            ),
        ]
    }

    #[test]
    fn builtins_compile_and_have_unique_names() {
        let rules = builtin_rules().expect("built-in patterns compile");
        assert_eq!(rules.len(), BUILTINS.len());
        let mut names: Vec<&str> = builtin_names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILTINS.len());
        for n in builtin_names() {
            assert!(
                n.bytes().all(super::super::replace::is_rule_name_byte),
                "{n}"
            );
        }
    }

    #[test]
    fn one_test_per_rule_keeps_the_rest_of_the_text() {
        let samples = samples();
        for name in builtin_names() {
            assert!(
                samples.iter().any(|(rule, ..)| *rule == name),
                "no sample for {name}"
            );
        }
        for (rule, secret, replaced) in samples {
            for (before, after) in [
                ("found ", " in the request body"),
                ("", ""),
                ("(", ")"),
                ("\"", "\","),
            ] {
                let text = format!("{before}{secret}{after}");
                let (n, out) = redact(&text);
                assert_eq!(
                    out,
                    format!("{before}{replaced}{after}"),
                    "rule {rule}: {text:?}"
                );
                assert_eq!(n, 1, "rule {rule}: {text:?}");
            }
        }
    }

    /// Where the secret part of a sample starts (past its constant
    /// prefix) and ends.
    fn secret_part(secret: &str) -> (usize, usize) {
        const PREFIXES: &[&str] = &[
            "AKIA",
            "ASIA",
            "ghp_",
            "gho_",
            "github_pat_",
            "glpat-",
            "xoxb-",
            "xoxp-",
            "sk_live_",
            "rk_live_",
            "sk-ant-",
            "sk-",
            "AIza",
            "GOCSPX-",
            "eyJ",
            "npm_",
            "pypi-AgEIcHlwaS5vcmc",
            "hf_",
            "SG.",
            "dop_v1_",
            "shpat_",
            "hvs.",
            "dapi",
            "AGE-SECRET-KEY-1",
            "PMAK-",
            "ATATT3",
            "gsk_",
            "Bearer ",
            "bearer\t",
            "Basic ",
            "postgres://app:",
            "redis://:",
            "https://hooks.slack.com/services/",
        ];
        if let Some(at) = secret.find("KEY-----") {
            let end = secret.rfind("-----END").unwrap_or(secret.len());
            return (at + "KEY-----".len(), end);
        }
        let start = PREFIXES
            .iter()
            .filter(|p| secret.starts_with(**p))
            .map(|p| p.len())
            .max()
            .unwrap_or_else(|| panic!("no prefix for {secret}"));
        let end = if secret.contains("://") && !secret.contains("hooks.slack") {
            secret.rfind('@').unwrap_or(secret.len())
        } else {
            secret.len()
        };
        (start, end)
    }

    #[test]
    fn every_rule_masks_its_secret_cut_anywhere() {
        let r = Redaction::new().compile().expect("defaults compile");
        for (rule, secret, _) in samples() {
            let (start, end) = secret_part(&secret);
            for at in start..=secret.len() {
                let text = format!("found {}", &secret[..at]);
                let mut out = String::new();
                if r.redact_cut_str(None, &text, &mut out) == 0 {
                    out.push_str(&text);
                }
                assert!(out.starts_with("found "), "rule {rule}: {out:?}");
                let kept = &secret[start..at.min(end)];
                for w in 0..kept.len().saturating_sub(3) {
                    let window = &kept[w..w + 4];
                    assert!(
                        !out.contains(window),
                        "rule {rule}: {window:?} of {text:?} kept in {out:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_pem_block_without_its_end_line_is_cut_to_the_end() {
        let (n, out) = redact("key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI");
        assert_eq!((n, out.as_str()), (1, "key: [REDACTED:private-key]"));
        let (_, out) = redact(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nxcLY\n-----END PGP PRIVATE KEY BLOCK----- done",
        );
        assert_eq!(out, "[REDACTED:private-key] done");
    }

    #[test]
    fn public_keys_and_certificates_stay() {
        for text in [
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZI\n-----END PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        ] {
            assert_eq!(redact(text).0, 0, "{text}");
        }
    }

    #[test]
    fn prefixes_inside_longer_words_stay() {
        for text in [
            "task-scheduler-for-the-queue-workers",
            "risk_test_abcdefghijklmnopqrstuvwxyz0123",
            "sk-learn-compatible-estimator-wrapper",
            "XAKIAIOSFODNN7EXAMPLE",
            "the bearer of this letter",
            "Bearer instrument",
            "a basic authentication scheme",
            "basic auth, basic plan, basic test, basic idea, basic setup",
            "https://example.com:8443/path?q=a:b@c",
            "mailto:bob@example.com",
        ] {
            assert_eq!(redact(text), (0, text.to_owned()), "{text}");
        }
    }

    #[test]
    fn basic_credentials_must_decode_to_user_and_password() {
        assert!(base64_user_pass("YWxhZGRpbjpvcGVuc2VzYW1l")); // aladdin:opensesame
        assert!(base64_user_pass("dTpw")); // u:p
        assert!(base64_user_pass("dTpwMQ==")); // u:p1
        assert!(!base64_user_pass("aGVsbG8gd29ybGQ=")); // hello world
        assert!(!base64_user_pass("dTpw="));
        assert!(!base64_user_pass("dT=w"));
        assert!(!base64_user_pass(""));
    }

    #[test]
    fn a_bad_user_pattern_names_its_rule() {
        let err = user_rule("acme-token", "acme_[a-z").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("acme-token"), "{text}");
        let err = user_rule("acme", "x*").unwrap_err();
        assert!(err.to_string().contains("empty string"), "{err}");
        assert!(matches!(
            user_rule("a b", "x"),
            Err(RedactionError::RuleName { .. })
        ));
        assert!(matches!(
            user_rule("", "x"),
            Err(RedactionError::RuleName { .. })
        ));
    }
}
