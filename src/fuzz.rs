//! Fuzz entry points for the decoders that read data an attacker may have
//! edited: `ringtrail verify` parses what the database returns (jsonb
//! text, binary COPY tuples, checkpoint notes), the spool replays segment
//! files it finds on disk, and `tail -f` parses the cursor a user pastes
//! back. Each function takes arbitrary bytes, must
//! never panic, and returns `Err` with a description when a property of
//! what it accepted does not hold.
//!
//! Built only for the fuzz targets (`cargo fuzz` sets `--cfg fuzzing`;
//! `fuzz/fuzz_targets/*.rs` call these) and for this crate's own tests,
//! which replay the checked-in corpus in `tests/fuzz_corpus/<target>/` and
//! a few thousand seeded random inputs through the same code.

use crate::chain::canonical::{RowHasher, StoredRow};
use crate::chain::checkpoint::{split_note, split_notes, Checkpoint};
use crate::chain::json::{write_encoded, write_fields, write_stored};
use crate::read::Cursor;
use crate::row::{Field, Value};

/// `stored_json`: any text through `chain::json::write_stored`, the
/// canonical form `verify` computes from the `fields` PostgreSQL returns.
/// What it accepts comes out as JSON that `serde_json` reads, and is a
/// fixed point: its own output canonicalizes to itself.
pub fn stored_json(data: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    let mut out = Vec::new();
    if !write_stored(&mut out, text) {
        return Ok(());
    }
    let canonical = std::str::from_utf8(&out).map_err(|e| format!("output is not UTF-8: {e}"))?;
    // serde_json reads numbers into f64 and refuses those beyond its
    // range; JSON (and jsonb, an arbitrary-precision numeric) has none.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(canonical) {
        if !e.to_string().starts_with("number out of range") {
            return Err(format!("output {canonical:?} is not JSON: {e}"));
        }
    }
    let mut again = Vec::new();
    if !write_stored(&mut again, canonical) {
        return Err(format!("its own output {canonical:?} is refused"));
    }
    if again != out {
        return Err(format!(
            "not a fixed point: {canonical:?} became {:?}",
            String::from_utf8_lossy(&again)
        ));
    }
    Ok(())
}

/// Names that repeat, and names whose UTF-16 order differs from their
/// byte order, so the member sort and deduplication are exercised.
const NAMES: &[&str] = &[
    "a",
    "b",
    "aa",
    "",
    "a\0",
    "\u{FFFD}",
    "\u{e000}",
    "\u{1F600}",
    "\r",
    "count",
    "Z",
];

/// A field list read from `data`: two bytes a field (a name from
/// [`NAMES`], a value kind), and the value's bytes after them.
fn fields_from(data: &[u8]) -> Vec<(&'static str, OwnedValue)> {
    let mut fields = Vec::new();
    let mut rest = data;
    while let [name, kind, tail @ ..] = rest {
        let name = NAMES[usize::from(*name) % NAMES.len()];
        let take = |n: usize, tail: &[u8]| {
            let mut b = [0u8; 16];
            let k = n.min(tail.len());
            b[..k].copy_from_slice(&tail[..k]);
            (b, k)
        };
        let (bytes, used) = take(16, tail);
        let value = match kind % 7 {
            0 => OwnedValue::Bool(bytes[0] & 1 == 1),
            1 => OwnedValue::I64(i64::from_le_bytes(bytes[..8].try_into().unwrap())),
            2 => OwnedValue::U64(u64::from_le_bytes(bytes[..8].try_into().unwrap())),
            3 => OwnedValue::I128(i128::from_le_bytes(bytes)),
            4 => OwnedValue::U128(u128::from_le_bytes(bytes)),
            5 => OwnedValue::F64(f64::from_le_bytes(bytes[..8].try_into().unwrap())),
            _ => OwnedValue::Str(String::from_utf8_lossy(&tail[..used.min(12)]).into_owned()),
        };
        fields.push((name, value));
        rest = &tail[used.min(8)..];
    }
    fields
}

/// An owned [`Value`], to borrow fields from.
enum OwnedValue {
    Bool(bool),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Str(String),
}

impl OwnedValue {
    fn value(&self) -> Value<'_> {
        match self {
            OwnedValue::Bool(v) => Value::Bool(*v),
            OwnedValue::I64(v) => Value::I64(*v),
            OwnedValue::U64(v) => Value::U64(*v),
            OwnedValue::I128(v) => Value::I128(*v),
            OwnedValue::U128(v) => Value::U128(*v),
            OwnedValue::F64(v) => Value::F64(*v),
            OwnedValue::Str(v) => Value::Str(v),
        }
    }
}

/// `encoded_json`: a field list through the encoder's JSON, then through
/// the writer's fast canonical path (`write_encoded`) and through
/// `write_stored`; both must give what the canonical form of the fields
/// themselves is (`write_fields`), whenever the fast path takes the input.
pub fn encoded_json(data: &[u8]) -> Result<(), String> {
    let owned = fields_from(data);
    let fields: Vec<Field<'_>> = owned
        .iter()
        .map(|(name, value)| Field {
            name,
            value: value.value(),
        })
        .collect();
    let mut encoded = Vec::new();
    crate::encode::json::write_fields(&mut encoded, &fields);
    let mut expected = Vec::new();
    write_fields(&mut expected, &fields, &mut Vec::new());
    let mut fast = Vec::new();
    if write_encoded(&mut fast, &encoded, &mut Vec::new()) && fast != expected {
        return Err(format!(
            "write_encoded({:?}) = {:?}, the fields' canonical form is {:?}",
            String::from_utf8_lossy(&encoded),
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&expected)
        ));
    }
    let text =
        std::str::from_utf8(&encoded).map_err(|e| format!("encoder wrote non-UTF-8: {e}"))?;
    let mut full = Vec::new();
    if !write_stored(&mut full, text) {
        return Err(format!("write_stored refuses the encoder's {text:?}"));
    }
    if full != expected {
        return Err(format!(
            "write_stored({text:?}) = {:?}, the fields' canonical form is {:?}",
            String::from_utf8_lossy(&full),
            String::from_utf8_lossy(&expected)
        ));
    }
    Ok(())
}

/// `stored_tuple`: any bytes as one binary COPY tuple of `ringtrail.logs`
/// through `StoredRow::from_tuple`, and what it accepts through the row
/// digest `verify` recomputes. Never panics; a decoded row digests the
/// same twice.
pub fn stored_tuple(data: &[u8]) -> Result<(), String> {
    let Some(row) = StoredRow::from_tuple(data) else {
        return Ok(());
    };
    let mut hasher = RowHasher::new();
    let first = hasher.stored_digest(&row);
    let mut canonical = Vec::new();
    hasher.canonical_stored(&row, &mut canonical);
    if hasher.stored_digest(&row) != first {
        return Err("a row's digest changed between two computations".into());
    }
    Ok(())
}

/// `checkpoint_note`: any text as a file of signed checkpoint notes:
/// split into notes, each split into body and signatures, each body
/// parsed. Never panics; a parsed body prints back to itself.
pub fn checkpoint_note(data: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    for note in split_notes(text) {
        let body = match split_note(note) {
            Ok((body, _signatures)) => body,
            Err(_) => note,
        };
        if let Ok(checkpoint) = Checkpoint::parse_body(body) {
            let again = Checkpoint::parse_body(&checkpoint.body())
                .map_err(|e| format!("its own body {:?} is refused: {e}", checkpoint.body()))?;
            if again != checkpoint {
                return Err(format!("{body:?} does not print back to itself"));
            }
        }
    }
    Ok(())
}

/// `cursor`: any text as a `tail -f` cursor. Never panics; a cursor that
/// parses prints as text that parses to the same cursor.
pub fn cursor(data: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(());
    };
    if let Ok(cursor) = text.parse::<Cursor>() {
        let printed = cursor.to_string();
        let again: Cursor = printed
            .parse()
            .map_err(|e| format!("its own text {printed:?} is refused: {e}"))?;
        if again != cursor {
            return Err(format!("{text:?} printed as {printed:?}, which differs"));
        }
    }
    Ok(())
}

/// `spool_segment`: any bytes as a spool segment file, checked with a
/// fixed spool key (the seeds' key). Never panics; a segment that parses
/// is written back byte for byte by the spool's own writer, and parses
/// again to the same batch, authenticated.
pub fn spool_segment(data: &[u8]) -> Result<(), String> {
    use crate::sink::spool::segment::{
        parse_segment, segment_body, segment_header, Trust, TEST_KEY,
    };
    let Ok((batch, _)) = parse_segment(data, &TEST_KEY) else {
        return Ok(());
    };
    let mut written = segment_header(&batch, &TEST_KEY).to_vec();
    written.extend_from_slice(segment_body(&batch));
    let (again, trust) =
        parse_segment(&written, &TEST_KEY).map_err(|e| format!("its own segment is {e:?}"))?;
    if trust != Trust::Authenticated {
        return Err("its own segment is not authenticated".to_owned());
    }
    let same = again.id == batch.id
        && again.bytes == batch.bytes
        && (again.rows, again.reports) == (batch.rows, batch.reports)
        && (again.first_ts, again.last_ts) == (batch.first_ts, batch.last_ts)
        && again.chain == batch.chain
        && again.checkpoint == batch.checkpoint;
    if !same {
        return Err(format!("{batch:?} was read back as {again:?}"));
    }
    Ok(())
}

/// A fuzz check: arbitrary bytes in, a broken property out.
pub type Check = fn(&[u8]) -> Result<(), String>;

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs` and of
/// the corpus folders).
pub const TARGETS: &[(&str, Check)] = &[
    ("stored_json", stored_json),
    ("encoded_json", encoded_json),
    ("stored_tuple", stored_tuple),
    ("checkpoint_note", checkpoint_note),
    ("cursor", cursor),
    ("spool_segment", spool_segment),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_corpus_passes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
        for (name, check) in TARGETS {
            let dir = root.join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut seen = 0;
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                check(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
            assert!(seen > 0, "{name}: no seeds in {}", dir.display());
        }
    }

    #[test]
    fn the_seeds_reach_the_accepting_paths() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
        let read = |target: &str, seed: &str| std::fs::read(root.join(target).join(seed)).unwrap();
        let tuple = read("stored_tuple", "seed-row");
        let row = StoredRow::from_tuple(&tuple).expect("seed-row decodes");
        assert_eq!((row.target, row.message), ("my_app", "order placed"));
        assert!(StoredRow::from_tuple(&read("stored_tuple", "seed-nested")).is_some());
        let note = read("checkpoint_note", "seed-note");
        let (body, _) = split_note(std::str::from_utf8(&note).unwrap()).expect("seed-note splits");
        assert_eq!(
            Checkpoint::parse_body(body).expect("its body parses").seq,
            12
        );
        assert!(write_stored(
            &mut Vec::new(),
            &String::from_utf8(read("stored_json", "seed-object")).unwrap()
        ));
        assert!(std::str::from_utf8(&read("cursor", "seed-shown"))
            .unwrap()
            .parse::<Cursor>()
            .is_ok());
    }

    #[test]
    fn random_inputs_pass() {
        let mut rng = crate::ids::Xorshift::new(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"{}[]\":,0123456789.eE+-tfnrul \\abz\x00\xff\n";
        for (name, check) in TARGETS {
            for _ in 0..2_000 {
                let len = (rng.next_u64() % 64) as usize;
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        let r = rng.next_u64();
                        if r.is_multiple_of(4) {
                            r as u8
                        } else {
                            alphabet[(r >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                check(&data).unwrap_or_else(|e| panic!("{name} {data:?}: {e}"));
            }
        }
    }

    #[test]
    fn write_stored_sorts_and_cursors_compare() {
        let mut out = Vec::new();
        assert!(write_stored(&mut out, r#"{"b":1,"a":2}"#));
        assert_eq!(out, br#"{"a":2,"b":1}"#);
        assert!(stored_json(br#"{"b":1,"a":2}"#).is_ok());
        assert!("rt1:5:7".parse::<Cursor>().is_ok());
        assert_ne!(
            "rt1:5:7".parse::<Cursor>().unwrap(),
            "rt1:5:8".parse::<Cursor>().unwrap()
        );
    }
}
