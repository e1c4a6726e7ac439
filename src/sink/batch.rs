//! [`SealedBatch`]: one finished binary-COPY stream and what the ledger
//! needs to know about it. Sealed batches are what the PostgreSQL sink
//! retries, splits around a poison row, spools and replays.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::encode::copy::{HEADER_LEN, SIGNATURE};
use crate::DROPPED_TARGET;

/// A complete COPY stream (header, tuples, trailer) with its identity.
#[derive(Debug, Clone)]
pub(crate) struct SealedBatch {
    /// The ledger key: a row in `ringtrail.batches` with this id means the
    /// batch is committed.
    pub(crate) id: [u8; 16],
    pub(crate) bytes: Bytes,
    pub(crate) rows: u32,
    /// How many of the rows are in-band drop reports rather than events;
    /// the counters in `Stats` count events.
    pub(crate) reports: u32,
    /// Earliest and latest event time in the batch, Unix nanoseconds.
    pub(crate) first_ts: i64,
    pub(crate) last_ts: i64,
}

impl SealedBatch {
    /// Byte ranges of each tuple. Parsed on demand: only the poison-row
    /// path needs them, so the hot writer loop keeps no index.
    pub(crate) fn tuples(&self) -> Vec<Range<usize>> {
        let b = &self.bytes[..];
        let mut ranges = Vec::with_capacity(self.rows as usize);
        let mut at = HEADER_LEN;
        while at + 2 <= b.len() {
            let fields = i16::from_be_bytes([b[at], b[at + 1]]);
            if fields < 0 {
                break; // trailer
            }
            let start = at;
            at += 2;
            for _ in 0..fields {
                let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                at += 4 + len.max(0) as usize;
            }
            ranges.push(start..at);
        }
        ranges
    }

    /// A batch of the given tuples of this one, under a new id.
    fn subset(&self, id: [u8; 16], tuples: &[Range<usize>]) -> SealedBatch {
        let body: usize = tuples.iter().map(|r| r.len()).sum();
        let mut out = BytesMut::with_capacity(HEADER_LEN + body + 2);
        out.put_slice(&self.bytes[..HEADER_LEN]);
        for r in tuples {
            out.put_slice(&self.bytes[r.clone()]);
        }
        out.put_i16(-1);
        let reports = tuples
            .iter()
            .filter(|r| is_report(&self.bytes[(*r).clone()]))
            .count();
        SealedBatch {
            id,
            bytes: out.freeze(),
            rows: tuples.len() as u32,
            reports: reports as u32,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
        }
    }

    /// Rows that are events (not drop reports).
    pub(crate) fn events(&self) -> u64 {
        self.rows.saturating_sub(self.reports) as u64
    }

    /// Removes tuple `index` (0-based): returns its raw bytes and the rest
    /// of the batch. The rest keeps this batch's id: the failed transaction
    /// rolled back, so the id is still unused in the ledger.
    pub(crate) fn without(&self, index: usize) -> (Bytes, SealedBatch) {
        let mut tuples = self.tuples();
        let bad = tuples.remove(index.min(tuples.len().saturating_sub(1)));
        (self.bytes.slice(bad), self.subset(self.id, &tuples))
    }

    /// Splits the batch in two halves with fresh ids, for bisecting a
    /// failure that names no row.
    pub(crate) fn halves(&self, ids: [[u8; 16]; 2]) -> [SealedBatch; 2] {
        let tuples = self.tuples();
        let mid = tuples.len() / 2;
        [
            self.subset(ids[0], &tuples[..mid]),
            self.subset(ids[1], &tuples[mid..]),
        ]
    }

    /// The id as text, for SQL parameters.
    pub(crate) fn id_text(&self) -> String {
        uuid_text(&self.id)
    }
}

/// Formats 16 bytes as a hyphenated UUID.
pub(crate) fn uuid_text(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Whether a tuple is an in-band drop report: its `target` column (the
/// fourth) is `ringtrail::dropped`.
pub(crate) fn is_report(tuple: &[u8]) -> bool {
    let mut at = 2;
    for _ in 0..3 {
        let Some(len) = tuple.get(at..at + 4) else {
            return false;
        };
        at += 4 + i32::from_be_bytes([len[0], len[1], len[2], len[3]]).max(0) as usize;
    }
    let Some(len) = tuple.get(at..at + 4) else {
        return false;
    };
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]).max(0) as usize;
    tuple.get(at + 4..at + 4 + len) == Some(DROPPED_TARGET.as_bytes())
}

/// Whether `bytes` starts like a binary COPY stream.
pub(crate) fn is_copy_stream(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN + 2 && bytes.starts_with(SIGNATURE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::CopyEncoder;
    use crate::Row;

    fn batch(messages: &[&str]) -> SealedBatch {
        let mut enc = CopyEncoder::new();
        for m in messages {
            enc.push_row(&Row {
                message: m,
                ..Row::default()
            });
        }
        SealedBatch {
            id: [1; 16],
            bytes: enc.finish(),
            rows: messages.len() as u32,
            reports: 0,
            first_ts: 0,
            last_ts: 0,
        }
    }

    #[test]
    fn removing_a_tuple_keeps_the_others_intact() {
        let b = batch(&["a", "bb", "ccc"]);
        assert_eq!(b.tuples().len(), 3);
        let (bad, rest) = b.without(1);
        assert!(bad.windows(2).any(|w| w == b"bb"));
        assert_eq!(rest.rows, 2);
        assert!(is_copy_stream(&rest.bytes));
        let expected = batch(&["a", "ccc"]);
        assert_eq!(rest.bytes, expected.bytes);
        let [x, y] = b.halves([[2; 16], [3; 16]]);
        assert_eq!((x.rows, y.rows), (1, 2));
        assert_eq!(y.bytes, batch(&["bb", "ccc"]).bytes);
    }

    #[test]
    fn drop_reports_are_recognised_by_their_target() {
        let mut enc = CopyEncoder::new();
        enc.push_row(&Row {
            target: "app",
            ..Row::default()
        });
        enc.push_row(&Row {
            target: DROPPED_TARGET,
            message: "3 events dropped",
            ..Row::default()
        });
        let b = SealedBatch {
            id: [1; 16],
            bytes: enc.finish(),
            rows: 2,
            reports: 1,
            first_ts: 0,
            last_ts: 0,
        };
        let t = b.tuples();
        assert!(!is_report(&b.bytes[t[0].clone()]));
        assert!(is_report(&b.bytes[t[1].clone()]));
        let [x, y] = b.halves([[2; 16], [3; 16]]);
        assert_eq!((x.reports, y.reports), (0, 1));
        assert_eq!(b.without(1).1.reports, 0);
    }

    #[test]
    fn uuid_text_is_hyphenated() {
        let mut id = [0u8; 16];
        id[0] = 0xab;
        id[15] = 0x01;
        assert_eq!(uuid_text(&id), "ab000000-0000-0000-0000-000000000001");
    }
}
