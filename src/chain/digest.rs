//! [`BatchDigest`]: one SHA-256 over every row a batch committed.
//!
//! ```text
//! batch digest = SHA-256( BATCH_DOMAIN
//!                       ‖ row count            (u64, big-endian)
//!                       ‖ row digest × count   (ordered by row id, then digest) )
//! ```
//!
//! Rows are ordered by their `id`, a column the table has and `verify`
//! can `ORDER BY`, rather than by their position in the batch: the writer
//! sends them in id order anyway (UUIDv7 ids from one generator increase),
//! no position column is needed, and sorting here makes the digest the
//! same whatever order either side meets the rows in. Two rows with the
//! same id (a duplicated row) are ordered by their digests, so the result
//! never depends on arrival order. The count is hashed too, so adding a
//! row is never hidden by any property of the digests.
//!
//! The writer feeds each row once, after redaction, by the tuple the
//! encoder just wrote for it: as it is when the encoder wrote its
//! `fields` canonical ([`BatchDigest::push_canonical`], the usual case
//! with the chain on), else through a pass over the tuple's JSON
//! ([`BatchDigest::push_encoded`]); [`BatchDigest::push`] takes the
//! [`Row`] itself. `verify` feeds the rows it reads back
//! ([`BatchDigest::push_stored`]). All give the same row digest. 48 bytes
//! per row are kept until [`finish`](BatchDigest::finish), in a buffer
//! reused from batch to batch, so a steady stream allocates nothing.
//!
//! ```
//! use ringtrail::chain::digest::BatchDigest;
//! use ringtrail::chain::canonical::StoredRow;
//! use ringtrail::Row;
//!
//! let mut writer = BatchDigest::new();
//! writer.push(&Row { id: [2; 16], message: "b", ..Row::default() });
//! writer.push(&Row { id: [1; 16], message: "a", ..Row::default() });
//! let written = writer.finish();
//!
//! let mut verify = BatchDigest::new();
//! for (id, message) in [([1; 16], "a"), ([2; 16], "b")] {
//!     verify.push_stored(&StoredRow { id, message, ..StoredRow::default() });
//! }
//! assert_eq!(verify.rows(), 2);
//! assert_eq!(verify.finish(), written);
//! ```

use sha2::{Digest, Sha256};

use super::canonical::{digest_input, RowHasher, StoredRow, ROW_DOMAIN};
use crate::encode::copy::LOG_COLUMNS;
use crate::row::Row;

/// Prefix of every batch digest's input: the form and its version.
pub const BATCH_DOMAIN: &[u8] = b"ringtrail/batch/v1\n";

/// Builds one batch digest at a time (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct BatchDigest {
    hasher: RowHasher,
    /// `(row id, row digest)` of each row so far.
    rows: Vec<([u8; 16], [u8; 32])>,
    /// Reused for one row's digest input (domain ‖ canonical tuple).
    input: Vec<u8>,
}

impl BatchDigest {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a writer-side row: what the encoder is about to store.
    #[inline]
    pub fn push(&mut self, row: &Row<'_>) {
        let digest = self.hasher.row_digest(row);
        self.rows.push((row.id, digest));
    }

    /// Adds `row` by the tuple the encoder just wrote for it
    /// ([`CopyEncoder::last_tuple`](crate::encode::CopyEncoder::last_tuple)):
    /// the same digest as [`push`](Self::push), at about two thirds of the
    /// cost, because the encoder's bytes are reused instead of encoding the
    /// row again ([`RowHasher::encoded_digest`]); from `row` itself when
    /// the tuple is off that path. Allocates nothing either way once the
    /// buffers have grown.
    #[inline]
    pub fn push_encoded(&mut self, tuple: &[u8], row: &Row<'_>) {
        self.input.clear();
        self.input.extend_from_slice(ROW_DOMAIN); // settled below
        match self.hasher.encoded_canonical(tuple, &mut self.input) {
            Some(id) => {
                let domain = super::canonical::row_domain(&self.input[ROW_DOMAIN.len()..]);
                self.input[..domain.len()].copy_from_slice(domain);
                self.rows.push((id, Sha256::digest(&self.input).into()));
            }
            None => self.push(row),
        }
    }

    /// Adds `row` by the tuple the encoder just wrote for it, when that
    /// tuple holds its canonical `fields` as written
    /// ([`CopyEncoder::last_tuple_canonical`](crate::encode::CopyEncoder::last_tuple_canonical)):
    /// hashed as it is (less the jsonb version byte), with no pass over
    /// its JSON. The same digest as
    /// [`push`](Self::push) and [`push_encoded`](Self::push_encoded);
    /// from `row` when `tuple` is not a tuple at all.
    ///
    /// ```
    /// use ringtrail::chain::digest::BatchDigest;
    /// use ringtrail::encode::CopyEncoder;
    /// use ringtrail::{Field, Row, Value};
    ///
    /// let fields = [Field { name: "z", value: Value::U64(7) }, Field { name: "a", value: Value::F64(0.5) }];
    /// let row = Row { id: [3; 16], message: "hi", fields: &fields, ..Row::default() };
    /// let mut enc = CopyEncoder::new();
    /// enc.sort_fields(true);
    /// enc.push_row(&row);
    /// assert!(enc.last_tuple_canonical());
    ///
    /// let (mut fast, mut slow) = (BatchDigest::new(), BatchDigest::new());
    /// fast.push_canonical(enc.last_tuple(), &row);
    /// slow.push(&row);
    /// assert_eq!(fast.finish(), slow.finish());
    /// ```
    #[inline]
    pub fn push_canonical(&mut self, tuple: &[u8], row: &Row<'_>) {
        let Some((id, fields)) = canonical_parts(tuple) else {
            return self.push(row);
        };
        // The tuple less the jsonb version byte before `fields`' text.
        let len = (fields.len() - 1) as i32;
        self.input.clear();
        self.input.extend_from_slice(ROW_DOMAIN); // settled by digest_input
        self.input.extend_from_slice(&tuple[..fields.start - 4]);
        self.input.extend_from_slice(&len.to_be_bytes());
        self.input.extend_from_slice(&tuple[fields.start + 1..]);
        let digest = digest_input(&mut self.input);
        debug_assert_eq!(
            digest,
            self.hasher.row_digest(row),
            "push_canonical: not the canonical tuple of {row:?}"
        );
        self.rows.push((id, digest));
    }

    /// Adds a row read back from the table.
    #[inline]
    pub fn push_stored(&mut self, row: &StoredRow<'_>) {
        let digest = self.hasher.stored_digest(row);
        self.rows.push((row.id, digest));
    }

    /// Adds a row from its binary COPY tuple
    /// ([`StoredRow::from_tuple`]): for a batch that only exists as bytes
    /// (a bisected piece, a spooled segment, a dead letter). Returns
    /// `false`, adding nothing, when the bytes are not a tuple.
    #[inline]
    pub fn push_tuple(&mut self, tuple: &[u8]) -> bool {
        let Some(row) = StoredRow::from_tuple(tuple) else {
            return false;
        };
        self.push_stored(&row);
        true
    }

    /// Adds a row by its id and its row digest, computed elsewhere.
    #[inline]
    pub fn push_digest(&mut self, id: [u8; 16], digest: [u8; 32]) {
        self.rows.push((id, digest));
    }

    /// Rows added since the last [`finish`](Self::finish).
    pub fn rows(&self) -> u64 {
        self.rows.len() as u64
    }

    /// The batch digest of the rows added, in canonical order; the builder
    /// is then empty (keeping its buffers) for the next batch.
    pub fn finish(&mut self) -> [u8; 32] {
        // The writer's rows usually come sorted already.
        if !self.rows.is_sorted() {
            self.rows.sort_unstable();
        }
        let mut h = Sha256::new();
        h.update(BATCH_DOMAIN);
        h.update((self.rows.len() as u64).to_be_bytes());
        for (_, digest) in &self.rows {
            h.update(digest);
        }
        self.rows.clear();
        h.finalize().into()
    }

    /// Discards the rows added since the last [`finish`](Self::finish).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.input.clear();
    }
}

/// The row id of a binary COPY tuple of the current width (its second
/// column) and where its `fields` column's bytes lie (the sixth, after
/// two fixed widths and two texts), when they start with the jsonb
/// version byte.
fn canonical_parts(tuple: &[u8]) -> Option<([u8; 16], std::ops::Range<usize>)> {
    let width = (LOG_COLUMNS.len() as i16).to_be_bytes();
    let id = match tuple.get(..40)? {
        [w0, w1, 0, 0, 0, 8, _, _, _, _, _, _, _, _, 0, 0, 0, 16, id @ .., 0, 0, 0, 2, _, _]
            if [*w0, *w1] == width =>
        {
            <[u8; 16]>::try_from(id).ok()?
        }
        _ => return None,
    };
    let mut at = 40;
    let mut column = || {
        let len = i32::from_be_bytes(tuple.get(at..at + 4)?.try_into().ok()?);
        let range = at + 4..at + 4 + usize::try_from(len).ok()?;
        at = range.end;
        (at <= tuple.len()).then_some(range)
    };
    let (_target, _message, fields) = (column()?, column()?, column()?);
    (tuple.get(fields.start) == Some(&1)).then_some((id, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u8, message: &str) -> Row<'_> {
        Row {
            id: [id; 16],
            message,
            ..Row::default()
        }
    }

    #[test]
    fn order_of_arrival_does_not_matter() {
        let mut d = BatchDigest::new();
        for r in [row(1, "a"), row(2, "b"), row(3, "c")] {
            d.push(&r);
        }
        let sorted = d.finish();
        for r in [row(3, "c"), row(1, "a"), row(2, "b")] {
            d.push(&r);
        }
        assert_eq!(d.finish(), sorted);
    }

    #[test]
    fn every_change_shows() {
        let mut d = BatchDigest::new();
        let mut digest = |rows: &[Row<'_>]| {
            for r in rows {
                d.push(r);
            }
            d.finish()
        };
        let base = digest(&[row(1, "a"), row(2, "b")]);
        assert_ne!(base, digest(&[row(1, "a")]), "missing");
        assert_ne!(
            base,
            digest(&[row(1, "a"), row(2, "b"), row(2, "b")]),
            "duplicated"
        );
        assert_ne!(base, digest(&[row(1, "a"), row(2, "c")]), "changed");
        assert_ne!(base, digest(&[]), "empty");
        assert_eq!(base, digest(&[row(2, "b"), row(1, "a")]));
    }

    #[test]
    fn empty_batch_digest_is_fixed() {
        let mut h = Sha256::new();
        h.update(BATCH_DOMAIN);
        h.update(0u64.to_be_bytes());
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(BatchDigest::new().finish(), want);
    }

    #[test]
    fn duplicate_ids_order_by_digest() {
        let mut d = BatchDigest::new();
        d.push(&row(1, "x"));
        d.push(&row(1, "y"));
        let one = d.finish();
        d.push(&row(1, "y"));
        d.push(&row(1, "x"));
        assert_eq!(d.finish(), one);
        assert_eq!(d.rows(), 0);
    }

    /// The writer's two paths (`push_canonical` for tuples the sorting
    /// encoder marks canonical, `push_encoded` for the rest) give the
    /// digest of the rows themselves, on rows with repeated and unusual
    /// names, every kind of value and numbers in and out of canonical
    /// spelling.
    #[test]
    fn encoder_paths_match_the_row_path() {
        use crate::encode::CopyEncoder;
        use crate::row::{Field, Value};
        let names = [
            "b",
            "a",
            "a",
            "\u{e000}",
            "\u{1f980}",
            "\0",
            "\u{fffd}",
            "q\"x",
            "é",
        ];
        let values = [
            Value::F64(1.5),
            Value::F64(2.0),
            Value::F64(-0.0),
            Value::F64(1e-7),
            Value::F64(1e300),
            Value::F64(f64::NAN),
            Value::I64(-3),
            Value::U128(u128::MAX),
            Value::Bool(true),
            Value::Str("a\0b\n\u{1}\\"),
        ];
        let mut rng = crate::ids::Xorshift::new(0x853c_49e6_748f_ea9b);
        let mut next = move || rng.next_u64() as usize;
        let mut encoder = CopyEncoder::new();
        encoder.sort_fields(true);
        let (mut fast, mut slow) = (BatchDigest::new(), BatchDigest::new());
        let mut canonical = 0;
        for i in 0..2_000u32 {
            let fields: Vec<Field<'_>> = (0..next() % 6)
                .map(|_| Field {
                    name: names[next() % names.len()],
                    value: values[next() % values.len()],
                })
                .collect();
            let mut id = [0; 16];
            id[12..].copy_from_slice(&i.to_be_bytes());
            let row = Row {
                id,
                message: "m",
                fields: &fields,
                kind: (i % 3 == 0).then_some(2),
                ..Row::default()
            };
            encoder.push_row(&row);
            if encoder.last_tuple_canonical() {
                canonical += 1;
                fast.push_canonical(encoder.last_tuple(), &row);
            } else {
                fast.push_encoded(encoder.last_tuple(), &row);
            }
            slow.push(&row);
            if i % 97 == 0 {
                assert_eq!(fast.finish(), slow.finish(), "batch ending at row {i}");
            }
        }
        assert_eq!(fast.finish(), slow.finish());
        assert!(
            canonical > 100 && canonical < 1_900,
            "both paths taken: {canonical}"
        );
    }
}
