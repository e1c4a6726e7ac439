//! The redaction stage: what the writer thread runs on every decoded row,
//! after its context ids and audit kind are settled and before any sink
//! (or any later hash of the row) sees it.
//!
//! It covers the message, every string field (`Display`, `Debug` and
//! `error` values arrive as text), every number under a key that holds a
//! secret ([`Redactor::hides_number`]: `otp_token = 482913` is stored as
//! the string `[REDACTED]`; `token_count = 5` stays a number) and the six
//! context ids. Body fields (`gen_ai.prompt`, …) become `sha256:<hex>`
//! plus a `<name>.bytes` field with their length, unless bodies are kept.
//!
//! **Cut texts.** A text cut by the record's size limit (the decoder
//! passes their names, which also get a `<name>.truncated_from`) and a
//! context id that may have been cut at 255 bytes (252 to 255 bytes long)
//! go through [`Redactor::redact_cut_str`], so the start of a secret the
//! cut left at their end is masked too.
//!
//! Replacements are written into one [`Scratch`] the writer reuses row
//! after row, then patched into the row's borrowed texts, so a clean row
//! costs one scan per text and no allocation; a redacted one allocates
//! only while the scratch grows to its working size.

use std::fmt::{self, Write as _};

use super::{KeyJudgement, Redactor};
use crate::contract::TRUNCATED_FROM;
use crate::row::{Field, Value, CONTEXT_KEYS, CONTEXT_LEN, CONTEXT_MAX_LEN};

/// Suffix of the field that keeps a digested body's length in bytes.
pub(crate) const BODY_BYTES: &str = ".bytes";

/// Where a replacement goes.
#[derive(Clone, Copy)]
enum Target {
    Message,
    Field(usize),
    Context(usize),
}

/// The writer's reusable buffers for redaction.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Replacement texts of the current row, back to back.
    text: String,
    /// (target, start, end) in `text`.
    spans: Vec<(Target, usize, usize)>,
    /// `<name>.bytes` names of the current row's digested bodies, and
    /// (name start, name end, length).
    body_names: String,
    bodies: Vec<(usize, usize, u64)>,
    /// The last context id per column found clean: span context repeats
    /// from row to row, so an unchanged id is not scanned again.
    clean_context: [String; CONTEXT_LEN],
    /// Field names already judged against the denylist.
    keys: KeyCache,
}

/// Redacts a row's texts in place; returns how many values or spans of
/// text were replaced (the row's `redacted` count). `cuts` names the
/// texts the record cut short (`"message"` for the message, a field's or
/// a context key's name), with their original lengths.
pub(crate) fn apply<'a>(
    redactor: &Redactor,
    message: &mut &'a str,
    fields: &mut Vec<Field<'a>>,
    context: &mut [Option<&'a str>; CONTEXT_LEN],
    cuts: &[(&str, u32)],
    scratch: &'a mut Scratch,
) -> u32 {
    let Scratch {
        text,
        spans,
        body_names,
        bodies,
        clean_context,
        keys,
    } = scratch;
    text.clear();
    spans.clear();
    body_names.clear();
    bodies.clear();
    let was_cut = |name: &str| cuts.iter().any(|(cut, _)| *cut == name);
    let mut count = 0;
    let redact = |target: Target,
                  key: KeyJudgement,
                  value: &str,
                  cut: bool,
                  text: &mut String,
                  spans: &mut Vec<(Target, usize, usize)>| {
        let start = text.len();
        let n = redactor.redact_judged(key, value, cut, text);
        if n > 0 {
            spans.push((target, start, text.len()));
        }
        n
    };
    let cut = !cuts.is_empty() && was_cut("message");
    let no_key = KeyJudgement::default();
    count += redact(Target::Message, no_key, message, cut, text, spans);
    for (i, field) in fields.iter().enumerate() {
        let value = match field.value {
            // An array or a map is scanned as its JSON text; a replacement
            // stores that text, masked, as a string.
            Value::Str(value) | Value::Json(value) => value,
            Value::Bool(_) => continue, // a boolean holds no secret
            number => {
                // The decoder's `<name>.truncated_from` are lengths.
                if !field.name.ends_with(TRUNCATED_FROM)
                    && keys.judge(redactor, field.name).hides_number()
                {
                    let start = text.len();
                    redactor.write_mask(NumberText::of(number).as_str(), text);
                    spans.push((Target::Field(i), start, text.len()));
                    count += 1;
                }
                continue;
            }
        };
        if redactor.digests_body(field.name) {
            let start = text.len();
            Redactor::body_digest(value, text);
            spans.push((Target::Field(i), start, text.len()));
            let name_start = body_names.len();
            body_names.push_str(field.name);
            body_names.push_str(BODY_BYTES);
            bodies.push((name_start, body_names.len(), value.len() as u64));
            count += 1;
        } else {
            let cut = !cuts.is_empty() && was_cut(field.name);
            let key = keys.judge(redactor, field.name);
            count += redact(Target::Field(i), key, value, cut, text, spans);
        }
    }
    for (i, id) in context.iter().enumerate() {
        let Some(id) = *id else { continue };
        let key = CONTEXT_KEYS.get(i).copied();
        // A span's id is cut at 255 bytes, on a character boundary.
        let cut = (CONTEXT_MAX_LEN - 3..=CONTEXT_MAX_LEN).contains(&id.len())
            || (!cuts.is_empty() && key.is_some_and(was_cut));
        if !cut && clean_context[i] == id {
            continue;
        }
        let key = key.map_or(no_key, |key| keys.judge(redactor, key));
        let n = redact(Target::Context(i), key, id, cut, text, spans);
        if n == 0 && !cut {
            clean_context[i].clear();
            clean_context[i].push_str(id);
        }
        count += n;
    }
    if spans.is_empty() {
        return 0;
    }
    let text: &'a str = text;
    for &(target, start, end) in spans.iter() {
        let replaced = &text[start..end];
        match target {
            Target::Message => *message = replaced,
            Target::Field(i) => fields[i].value = Value::Str(replaced),
            Target::Context(i) => context[i] = Some(replaced),
        }
    }
    let body_names: &'a str = body_names;
    for &(start, end, len) in bodies.iter() {
        fields.push(Field {
            name: &body_names[start..end],
            value: Value::U64(len),
        });
    }
    count
}

/// Field names already judged against the denylist
/// ([`Redactor::judge_key`]): a call site's names come back row after row,
/// so each is judged once (a few nanoseconds instead of some 40 to 80).
/// Direct-mapped on the name's address and length, and checked by its
/// bytes, so a name at a reused address is never taken for another; a
/// name longer than [`KEY_MAX`] bytes is judged every time.
pub(crate) struct KeyCache {
    slots: Vec<KeySlot>,
}

/// Slots of the [`KeyCache`].
const KEY_SLOTS: usize = 128;

/// The longest name a [`KeyCache`] slot keeps.
const KEY_MAX: usize = 45;

/// One judged name: its bytes (`len` of them; 0 for an empty slot).
#[derive(Clone, Copy)]
struct KeySlot {
    len: u8,
    name: [u8; KEY_MAX],
    judged: KeyJudgement,
}

impl Default for KeyCache {
    fn default() -> KeyCache {
        let empty = KeySlot {
            len: 0,
            name: [0; KEY_MAX],
            judged: KeyJudgement::default(),
        };
        KeyCache {
            slots: vec![empty; KEY_SLOTS],
        }
    }
}

impl KeyCache {
    /// What `redactor` says of `name`, from the cache when it holds it.
    fn judge(&mut self, redactor: &Redactor, name: &str) -> KeyJudgement {
        let len = name.len();
        if len == 0 || len > KEY_MAX {
            return redactor.judge_key(name);
        }
        let at = name.as_ptr() as usize;
        let Some(slot) = self
            .slots
            .get_mut(((at >> 3) ^ (at >> 11) ^ len) % KEY_SLOTS)
        else {
            return redactor.judge_key(name);
        };
        if usize::from(slot.len) == len && slot.name[..len] == *name.as_bytes() {
            return slot.judged;
        }
        let judged = redactor.judge_key(name);
        slot.len = len as u8;
        slot.name[..len].copy_from_slice(name.as_bytes());
        slot.judged = judged;
        judged
    }
}

/// A number's text, written on the stack (what an HMAC token of a
/// numeric secret is computed over). A float too long for it is cut,
/// which only a token, never the mask, would show.
struct NumberText {
    buf: [u8; 64],
    len: usize,
}

impl NumberText {
    fn of(value: Value<'_>) -> NumberText {
        let mut text = NumberText {
            buf: [0; 64],
            len: 0,
        };
        let _ = match value {
            Value::I64(v) => write!(text, "{v}"),
            Value::U64(v) => write!(text, "{v}"),
            Value::I128(v) => write!(text, "{v}"),
            Value::U128(v) => write!(text, "{v}"),
            Value::F64(v) => write!(text, "{v}"),
            Value::Bool(v) => write!(text, "{v}"),
            Value::Str(v) | Value::Json(v) => write!(text, "{v}"),
        };
        text
    }

    fn as_str(&self) -> &str {
        // Only whole ASCII pieces are copied in (`write_str`).
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for NumberText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Redaction;

    #[test]
    fn replaces_only_what_it_must_and_counts_it() {
        let redactor = Redaction::new().compile().unwrap();
        let mut scratch = Scratch::default();
        let mut message = "login failed for user=bob password=hunter2 from 10.0.0.8";
        let mut fields = vec![
            Field {
                name: "api_key",
                value: Value::Str("abc123"),
            },
            Field {
                name: "gen_ai.usage.input_tokens",
                value: Value::U64(1234),
            },
            Field {
                name: "route",
                value: Value::Str("/v1/orders"),
            },
            Field {
                name: "gen_ai.prompt",
                value: Value::Str("tell me a secret"),
            },
        ];
        let mut context = [Some("t-1"), Some("u-1"), None, None, None, None];
        let n = apply(
            &redactor,
            &mut message,
            &mut fields,
            &mut context,
            &[],
            &mut scratch,
        );
        assert_eq!(n, 3, "password, api_key, the prompt");
        assert_eq!(
            message,
            "login failed for user=bob password=[REDACTED] from 10.0.0.8"
        );
        assert_eq!(fields[0].value, Value::Str("[REDACTED]"));
        assert_eq!(fields[1].value, Value::U64(1234));
        assert_eq!(fields[2].value, Value::Str("/v1/orders"));
        let Value::Str(digest) = fields[3].value else {
            panic!()
        };
        assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64);
        assert_eq!(fields[4].name, "gen_ai.prompt.bytes");
        assert_eq!(fields[4].value, Value::U64(16));
        assert_eq!(context[..2], [Some("t-1"), Some("u-1")]);
    }

    #[test]
    fn a_secret_in_a_context_id_is_caught_even_after_a_clean_one() {
        let redactor = Redaction::new().compile().unwrap();
        let mut scratch = Scratch::default();
        let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
        for (id, clean) in [("s-1", true), ("s-1", true), (secret, false), ("s-1", true)] {
            let mut message = "";
            let mut fields = Vec::new();
            let mut context = [None, None, Some(id), None, None, None];
            let n = apply(
                &redactor,
                &mut message,
                &mut fields,
                &mut context,
                &[],
                &mut scratch,
            );
            assert_eq!(n == 0, clean, "{id}");
            assert_eq!(context[2] == Some(id), clean, "{id}");
        }
    }

    #[test]
    fn the_key_cache_tells_names_apart_by_their_bytes() {
        let redactor = Redaction::new().compile().unwrap();
        let mut cache = KeyCache::default();
        let mut name = String::from("password");
        assert!(cache.judge(&redactor, &name).secret);
        assert!(cache.judge(&redactor, &name).hides_number());
        // Another name at the same address, of the same length.
        name.clear();
        name.push_str("passwork");
        assert_eq!(cache.judge(&redactor, &name), KeyJudgement::default());
        let counter = cache.judge(&redactor, "token_count");
        assert!(counter.secret && counter.counter && !counter.hides_number());
        let long = format!("{}_password", "a".repeat(60));
        assert!(cache.judge(&redactor, &long).secret);
    }

    #[test]
    fn numbers_under_secret_keys_become_masks() {
        let redactor = Redaction::new().compile().unwrap();
        let hmac = Redaction::new().hmac("k").compile().unwrap();
        for (redactor, mask) in [(&redactor, "[REDACTED]"), (&hmac, "")] {
            let mut scratch = Scratch::default();
            let mut message = "";
            let mut fields = vec![
                Field {
                    name: "otp_token",
                    value: Value::U64(482_913),
                },
                Field {
                    name: "pin",
                    value: Value::F64(1234.0),
                },
                Field {
                    name: "token_count",
                    value: Value::U64(5),
                },
                Field {
                    name: "password.truncated_from",
                    value: Value::U64(300),
                },
                Field {
                    name: "password",
                    value: Value::Bool(true),
                },
            ];
            let mut context = [None; CONTEXT_LEN];
            let n = apply(
                redactor,
                &mut message,
                &mut fields,
                &mut context,
                &[],
                &mut scratch,
            );
            assert_eq!(n, 2);
            for field in &fields[..2] {
                let Value::Str(text) = field.value else {
                    panic!("{field:?}")
                };
                assert!(
                    text == mask || (mask.is_empty() && text.starts_with("hmac:")),
                    "{text}"
                );
            }
            assert_eq!(fields[2].value, Value::U64(5));
            assert_eq!(fields[3].value, Value::U64(300));
            assert_eq!(fields[4].value, Value::Bool(true));
        }
    }

    #[test]
    fn off_changes_nothing() {
        let redactor = Redaction::off().compile().unwrap();
        let mut scratch = Scratch::default();
        let mut message = "password=hunter2";
        let mut fields = vec![Field {
            name: "gen_ai.prompt",
            value: Value::Str("hi"),
        }];
        let mut context = [None; CONTEXT_LEN];
        let n = apply(
            &redactor,
            &mut message,
            &mut fields,
            &mut context,
            &[],
            &mut scratch,
        );
        assert_eq!((n, message, fields.len()), (0, "password=hunter2", 1));
    }

    /// Rough cost of the stage on the `ingest` bench's row; run with
    /// `cargo test --profile bench --lib redact::stage::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn timing() {
        let redactor = Redaction::new().compile().unwrap();
        let mut scratch = Scratch::default();
        let n = 500_000u32;
        let start = std::time::Instant::now();
        for i in 0..n {
            let mut message = if i % 2 == 0 {
                "request 12345 took 3ms"
            } else {
                "request 12346 took 3ms"
            };
            let mut fields = vec![
                Field {
                    name: "user_id_hash",
                    value: Value::U64(42),
                },
                Field {
                    name: "latency",
                    value: Value::F64(1.5),
                },
                Field {
                    name: "ok",
                    value: Value::Bool(true),
                },
                Field {
                    name: "route",
                    value: Value::Str("/v1/orders"),
                },
            ];
            let mut context = [
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                Some("user-7f3a9c21"),
                Some("sess-2b8e41d0c5"),
                None,
                None,
                None,
            ];
            std::hint::black_box(apply(
                &redactor,
                &mut message,
                &mut fields,
                &mut context,
                &[],
                &mut scratch,
            ));
        }
        let per = start.elapsed().as_nanos() / u128::from(n);
        println!("stage on the ingest row: {per} ns per row (a Vec of 4 fields included)");
    }
}
