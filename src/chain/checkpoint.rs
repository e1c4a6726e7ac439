//! Signed checkpoints: a chain's seq and head hash at a time, signed with
//! Ed25519 in the text format of C2SP `tlog-checkpoint` wrapped in a C2SP
//! `signed-note`.
//!
//! ```text
//! ringtrail/0190f5a2-7c1e-7a3b-8d4e-5f6a7b8c9d0e     origin: ringtrail/<chain id>
//! 1042                                              size line: the head's seq
//! 3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=  the head hash, base64
//! time 2026-12-03T16:05:25.123456Z                  extension line: when, UTC
//!                                                   blank line
//! — ringtrail qkf0r…                                 signature line(s)
//! ```
//!
//! The signed text is every line before the blank line, each with its
//! `\n`. A signature line is `— <key name> <base64(key id ‖ signature)>`
//! (an em dash, U+2014, then a space): the 4-byte key id of
//! [`key`](super::key) and the 64-byte Ed25519 signature of the text.
//! Lines after the time line are allowed (C2SP extension lines, covered by
//! the signature) and ignored. A file of checkpoints holds notes one after
//! another ([`split_notes`]); the seq of a chain with no batch is 0 and its
//! head is 32 zero bytes.
//!
//! ```
//! use ringtrail::chain::checkpoint::{open, Checkpoint};
//! use ringtrail::chain::key::SigningKey;
//! use ringtrail::chain::link::ChainId;
//!
//! let key = SigningKey::from_seed("ringtrail", [1; 32]).unwrap();
//! let checkpoint = Checkpoint { chain: ChainId([2; 16]), seq: 42, head: [3; 32], time_micros: 1_764_777_925_123_456 };
//! let note = checkpoint.sign(&key);
//! assert!(note.starts_with("ringtrail/02020202-0202-0202-0202-020202020202\n42\n"));
//! assert!(note.contains("\ntime 2025-12-03T16:05:25.123456Z\n\n\u{2014} ringtrail "));
//! assert_eq!(open(&note, &key.verifier()).unwrap(), checkpoint);
//!
//! let forged = note.replace("\n42\n", "\n43\n");
//! assert!(open(&forged, &key.verifier()).is_err());
//! ```

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::key::{SigningKey, VerifierKey};
use super::link::ChainId;

/// Every origin line starts with this, then the chain id.
pub const ORIGIN_PREFIX: &str = "ringtrail/";

/// What starts a signature line: an em dash and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A chain's state at a time: what a checkpoint signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The chain.
    pub chain: ChainId,
    /// The head's seq (0 for a chain with no batch).
    pub seq: u64,
    /// The head's link hash.
    pub head: [u8; 32],
    /// When, in microseconds since the Unix epoch.
    pub time_micros: i64,
}

/// Why a checkpoint note was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note is not a ringtrail checkpoint; says which part.
    Malformed(&'static str),
    /// No signature line is by the key (its name and key id).
    NoSignature {
        /// The key looked for.
        key: String,
    },
    /// The key's signature line does not verify.
    BadSignature {
        /// The key.
        key: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Malformed(what) => write!(f, "not a ringtrail checkpoint: {what}"),
            CheckpointError::NoSignature { key } => write!(f, "no signature by key {key}"),
            CheckpointError::BadSignature { key } => {
                write!(f, "the signature by key {key} does not verify")
            }
        }
    }
}

impl std::error::Error for CheckpointError {}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: [u8; 4],
    /// The signature bytes (64 for Ed25519).
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// The origin line: `ringtrail/<chain id>`.
    pub fn origin(&self) -> String {
        format!("{ORIGIN_PREFIX}{}", self.chain)
    }

    /// The signed text: origin, seq, base64 head, `time …`, each line
    /// ending in `\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin(),
            self.seq,
            B64.encode(self.head),
            crate::time::rfc3339_micros(self.time_micros)
        )
    }

    /// The signed note: [`body`](Self::body), a blank line, and `key`'s
    /// signature line.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let mut signed = Vec::with_capacity(68);
        signed.extend_from_slice(&key.key_id());
        signed.extend_from_slice(&key.sign(body.as_bytes()));
        format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            key.name(),
            B64.encode(signed)
        )
    }

    /// Parses a checkpoint's signed text ([`body`](Self::body)), without
    /// any signature.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Malformed`].
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        use CheckpointError::Malformed;
        let Some(body) = body.strip_suffix('\n') else {
            return Err(Malformed("the text does not end with a newline"));
        };
        let mut lines = body.split('\n');
        let mut next = |what| lines.next().ok_or(Malformed(what));
        let chain = next("no origin line")?
            .strip_prefix(ORIGIN_PREFIX)
            .ok_or(Malformed("the origin is not ringtrail/<chain id>"))?
            .parse::<ChainId>()
            .map_err(|_| Malformed("the origin's chain id is not a UUID"))?;
        let seq = next("no size line")?;
        if seq.is_empty()
            || !seq.bytes().all(|b| b.is_ascii_digit())
            || (seq.len() > 1 && seq.starts_with('0'))
        {
            return Err(Malformed("the size line is not a decimal number"));
        }
        let seq = seq
            .parse()
            .map_err(|_| Malformed("the size line is out of range"))?;
        let head: [u8; 32] = B64
            .decode(next("no hash line")?)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or(Malformed("the hash line is not 32 bytes of base64"))?;
        let time = next("no time line")?
            .strip_prefix("time ")
            .ok_or(Malformed("the fourth line is not `time …`"))?;
        let time = crate::time::parse_rfc3339(time)
            .map_err(|_| Malformed("the time is not an RFC 3339 instant"))?;
        Ok(Checkpoint {
            chain,
            seq,
            head,
            time_micros: crate::time::micros(time),
        })
    }
}

/// Splits a signed note into its text and its signature lines.
///
/// # Errors
///
/// [`CheckpointError::Malformed`] when there is no blank line, no
/// signature line, or a line after the blank one is not a signature line.
pub fn split_note(note: &str) -> Result<(&str, Vec<NoteSignature>), CheckpointError> {
    use CheckpointError::Malformed;
    let at = note
        .find("\n\n")
        .ok_or(Malformed("no blank line before the signatures"))?;
    let (body, rest) = (&note[..at + 1], &note[at + 2..]);
    let mut signatures = Vec::new();
    for line in rest.strip_suffix('\n').unwrap_or(rest).split('\n') {
        let line = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or(Malformed("a line after the blank line is not a signature"))?;
        let (name, b64) = line
            .split_once(' ')
            .ok_or(Malformed("a signature line has no signature"))?;
        let raw = B64
            .decode(b64)
            .map_err(|_| Malformed("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(Malformed("a signature is too short"));
        }
        signatures.push(NoteSignature {
            name: name.to_owned(),
            key_id: [raw[0], raw[1], raw[2], raw[3]],
            signature: raw[4..].to_vec(),
        });
    }
    if signatures.is_empty() {
        return Err(Malformed("no signature line"));
    }
    Ok((body, signatures))
}

/// Parses a signed checkpoint note and checks it is signed by `key`.
///
/// # Errors
///
/// [`CheckpointError::Malformed`]; [`CheckpointError::NoSignature`] when
/// no line is by `key` (name and key id); [`CheckpointError::BadSignature`]
/// when the line by `key` does not verify.
pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let (body, signatures) = split_note(note)?;
    let checkpoint = Checkpoint::parse_body(body)?;
    let mine = signatures
        .iter()
        .find(|s| s.name == key.name() && s.key_id == key.key_id())
        .ok_or_else(|| CheckpointError::NoSignature {
            key: key.name().to_owned(),
        })?;
    let verified = <[u8; 64]>::try_from(mine.signature.as_slice())
        .is_ok_and(|sig| key.verify(body.as_bytes(), &sig));
    if !verified {
        return Err(CheckpointError::BadSignature {
            key: key.name().to_owned(),
        });
    }
    Ok(checkpoint)
}

/// Splits a file of signed notes, one after another (blank lines between
/// them allowed), into the notes. A note ends after the signature lines
/// that follow its blank line; text that cannot be a note is returned as
/// a piece anyway, for [`open`] to reject.
///
/// ```
/// use ringtrail::chain::checkpoint::split_notes;
/// let file = "a\n1\nh\n\n\u{2014} k s1\n\u{2014} j s2\nb\n2\nh\n\n\u{2014} k s3\n";
/// assert_eq!(split_notes(file), ["a\n1\nh\n\n\u{2014} k s1\n\u{2014} j s2\n", "b\n2\nh\n\n\u{2014} k s3\n"]);
/// ```
pub fn split_notes(text: &str) -> Vec<&str> {
    let mut notes = Vec::new();
    let mut start: Option<usize> = None;
    let mut in_signatures = false;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let here = pos;
        pos += line.len();
        let bare = line.strip_suffix('\n').unwrap_or(line);
        if in_signatures {
            if bare.starts_with(SIGNATURE_PREFIX) {
                continue;
            }
            // The note ended before this line.
            if let Some(s) = start.take() {
                notes.push(&text[s..here]);
            }
            in_signatures = false;
        }
        match start {
            None if bare.is_empty() => {}
            None => start = Some(here),
            Some(_) if bare.is_empty() => in_signatures = true,
            Some(_) => {}
        }
    }
    if let Some(s) = start {
        notes.push(&text[s..]);
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, seed: u8) -> SigningKey {
        SigningKey::from_seed(name, [seed; 32]).unwrap()
    }

    const CP: Checkpoint = Checkpoint {
        chain: ChainId([0xab; 16]),
        seq: 1042,
        head: [0xde; 32],
        time_micros: 1_764_777_925_000_001,
    };

    #[test]
    fn exact_text() {
        let k = key("ringtrail", 1);
        let note = CP.sign(&k);
        let mut lines = note.lines();
        assert_eq!(
            lines.next(),
            Some("ringtrail/abababab-abab-abab-abab-abababababab")
        );
        assert_eq!(lines.next(), Some("1042"));
        assert_eq!(lines.next(), Some(B64.encode([0xde; 32]).as_str()));
        assert_eq!(lines.next(), Some("time 2025-12-03T16:05:25.000001Z"));
        assert_eq!(lines.next(), Some(""));
        let sig = lines.next().unwrap();
        let b64 = sig.strip_prefix("\u{2014} ringtrail ").unwrap();
        let raw = B64.decode(b64).unwrap();
        assert_eq!(raw.len(), 4 + 64);
        assert_eq!(raw[..4], k.key_id());
        assert!(k
            .verifier()
            .verify(CP.body().as_bytes(), &raw[4..].try_into().unwrap()));
        assert_eq!(lines.next(), None);
        assert!(note.ends_with('\n'));
    }

    #[test]
    fn sign_parse_verify() {
        let k = key("ringtrail", 1);
        assert_eq!(open(&CP.sign(&k), &k.verifier()), Ok(CP));
        let empty = Checkpoint {
            seq: 0,
            head: [0; 32],
            ..CP
        };
        assert_eq!(open(&empty.sign(&k), &k.verifier()), Ok(empty));
    }

    #[test]
    fn every_tamper_is_caught() {
        let k = key("ringtrail", 1);
        let note = CP.sign(&k);
        let head = B64.encode([0xde; 32]);
        let other_head = B64.encode([0xdf; 32]);
        for forged in [
            note.replace("\n1042\n", "\n1041\n"),
            note.replace(&head, &other_head),
            note.replace("25.000001Z", "25.000002Z"),
            note.replace("ringtrail/abab", "ringtrail/abac"),
            note.replace("time", "time 2025-12-03T16:05:25Z\nextra"),
        ] {
            assert_ne!(forged, note);
            assert!(
                matches!(
                    open(&forged, &k.verifier()),
                    Err(CheckpointError::BadSignature { .. })
                ),
                "{forged}"
            );
        }
        // Another key, or the same name with another key.
        let other = key("other", 2);
        assert!(matches!(
            open(&note, &other.verifier()),
            Err(CheckpointError::NoSignature { .. })
        ));
        let impostor = key("ringtrail", 2);
        assert!(matches!(
            open(&note, &impostor.verifier()),
            Err(CheckpointError::NoSignature { .. })
        ));
        // A signature replaced by another key's, under the right id.
        let mut fake = CP.sign(&impostor);
        let id_b64 = |k: &SigningKey| B64.encode(k.key_id());
        assert_ne!(id_b64(&k), id_b64(&impostor));
        let (body, sigs) = split_note(&fake).unwrap();
        let mut raw = k.key_id().to_vec();
        raw.extend_from_slice(&sigs[0].signature);
        fake = format!("{body}\n\u{2014} ringtrail {}\n", B64.encode(raw));
        assert!(matches!(
            open(&fake, &k.verifier()),
            Err(CheckpointError::BadSignature { .. })
        ));
    }

    #[test]
    fn several_signers() {
        let (a, b) = (key("a", 1), key("b", 2));
        let note = CP.sign(&a);
        let line_b = CP.sign(&b);
        let line_b = line_b.lines().last().unwrap();
        let both = format!("{note}{line_b}\n");
        assert_eq!(open(&both, &a.verifier()), Ok(CP));
        assert_eq!(open(&both, &b.verifier()), Ok(CP));
    }

    #[test]
    fn malformed_notes() {
        let k = key("ringtrail", 1);
        for bad in [
            "",
            "ringtrail/x\n1\nh\ntime t\n",
            "ringtrail/abababab-abab-abab-abab-abababababab\n1\n\n\u{2014} ringtrail AAAA\n",
            "other/abababab-abab-abab-abab-abababababab\n1\nAAAA\ntime x\n\n\u{2014} ringtrail AAAAAAAA\n",
        ] {
            assert!(
                matches!(open(bad, &k.verifier()), Err(CheckpointError::Malformed(_))),
                "{bad:?}"
            );
        }
        let ok = CP.body();
        for (from, to) in [
            ("\n1042\n", "\n01042\n"),
            ("\n1042\n", "\n-1\n"),
            ("\n1042\n", "\n99999999999999999999999\n"),
            ("time ", "when "),
            ("Z\n", "\n"),
        ] {
            let body = ok.replace(from, to);
            assert!(Checkpoint::parse_body(&body).is_err(), "{body}");
        }
        assert_eq!(Checkpoint::parse_body(&ok), Ok(CP));
        assert!(Checkpoint::parse_body(ok.trim_end()).is_err());
    }

    #[test]
    fn a_file_of_checkpoints() {
        let k = key("ringtrail", 1);
        let cps: Vec<Checkpoint> = (0..3).map(|i| Checkpoint { seq: 10 * i, ..CP }).collect();
        let file: String = cps.iter().map(|c| c.sign(&k) + "\n").collect();
        let notes = split_notes(&file);
        assert_eq!(notes.len(), 3);
        for (note, cp) in notes.iter().zip(&cps) {
            assert_eq!(open(note, &k.verifier()).as_ref(), Ok(cp));
        }
        // No blank lines between notes works too.
        let tight: String = cps.iter().map(|c| c.sign(&k)).collect();
        assert_eq!(split_notes(&tight).len(), 3);
    }
}
