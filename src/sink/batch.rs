//! [`SealedBatch`]: one finished binary-COPY stream and what the ledger
//! needs to know about it. Sealed batches are what the PostgreSQL sink
//! retries, splits around a poison row, spools and replays. A batch never
//! looks inside its tuples: the writer appends drop reports after the
//! events, so "which rows are reports" is just "the last `reports`".

use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::encode::copy::{put_trailer, tuples, HEADER_LEN, SIGNATURE, TRAILER_LEN};
use crate::ids::derive_id;
use crate::text::uuid_text;

/// A complete COPY stream (header, tuples, trailer) with its identity.
#[derive(Debug, Clone)]
pub(crate) struct SealedBatch {
    /// The ledger key: a row in `ringtrail.batches` with this id means the
    /// batch is committed.
    pub(crate) id: [u8; 16],
    pub(crate) bytes: Bytes,
    pub(crate) rows: u32,
    /// How many of the rows, at the end, are in-band drop reports rather
    /// than events; the counters in `Stats` count events.
    pub(crate) reports: u32,
    /// Earliest and latest event time in the batch, Unix nanoseconds.
    pub(crate) first_ts: i64,
    pub(crate) last_ts: i64,
    /// Its place on the pipeline's hash chain, fixed when it was sealed:
    /// retries, pieces and the spool keep it. `None` with the chain off.
    pub(crate) chain: Option<ChainEntry>,
    /// A signed checkpoint of the chain up to this batch, stored in
    /// `ringtrail.checkpoints` in the batch's own transaction.
    pub(crate) checkpoint: Option<Arc<CheckpointRow>>,
}

/// Where a sealed batch sits on its pipeline's hash chain (`crate::chain`):
/// written into its ledger row (every piece's, when it is bisected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainEntry {
    pub(crate) chain_id: [u8; 16],
    pub(crate) seq: u64,
    /// The batch as sealed: its id and row count (drop reports included),
    /// what the link hash covers, whatever pieces it is committed in.
    pub(crate) sealed_id: [u8; 16],
    pub(crate) sealed_rows: u32,
    pub(crate) digest: [u8; 32],
    pub(crate) prev_hash: [u8; 32],
    pub(crate) hash: [u8; 32],
}

/// A signed checkpoint, as `ringtrail.checkpoints` stores it (its chain
/// id, seq and head are the batch's [`ChainEntry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointRow {
    /// The signed note (C2SP checkpoint text).
    pub(crate) note: String,
    /// The verifier key, as text.
    pub(crate) public_key: String,
    /// When it was signed, Unix nanoseconds.
    pub(crate) signed_at: i64,
}

/// The checkpoint signed at shutdown over a head that no batch left to
/// commit carries: stored on its own, after the head's batch
/// (`Shipper::store_checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadCheckpoint {
    pub(crate) chain_id: [u8; 16],
    pub(crate) seq: u64,
    /// The link hash of the batch at `seq`.
    pub(crate) head: [u8; 32],
    pub(crate) row: CheckpointRow,
}

/// A tuple taken out of a batch.
pub(crate) struct Removed {
    pub(crate) tuple: Bytes,
    pub(crate) is_report: bool,
}

impl SealedBatch {
    /// Byte ranges of each tuple. Parsed on demand: only the poison-row
    /// path needs them, so the hot writer loop keeps no index.
    fn tuples(&self) -> Vec<Range<usize>> {
        tuples(&self.bytes).collect()
    }

    /// Index of the first drop report.
    fn first_report(&self) -> usize {
        self.rows.saturating_sub(self.reports) as usize
    }

    /// A batch of the given tuples of this one, under `id`; the last
    /// `reports` of them are drop reports.
    fn subset(&self, id: [u8; 16], tuples: &[Range<usize>], reports: usize) -> SealedBatch {
        let body: usize = tuples.iter().map(|r| r.len()).sum();
        let mut out = BytesMut::with_capacity(HEADER_LEN + body + TRAILER_LEN);
        out.put_slice(&self.bytes[..HEADER_LEN]);
        for r in tuples {
            out.put_slice(&self.bytes[r.clone()]);
        }
        put_trailer(&mut out);
        SealedBatch {
            id,
            bytes: out.freeze(),
            rows: tuples.len() as u32,
            reports: reports as u32,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            chain: self.chain,
            checkpoint: self.checkpoint.clone(),
        }
    }

    /// Rows that are events (not drop reports).
    pub(crate) fn events(&self) -> u64 {
        self.rows.saturating_sub(self.reports) as u64
    }

    /// Removes tuple `index` (0-based): returns it and the rest of the
    /// batch. The rest keeps this batch's id: the failed transaction
    /// rolled back, so the id is still unused in the ledger.
    pub(crate) fn without(&self, index: usize) -> (Removed, SealedBatch) {
        let mut tuples = self.tuples();
        let index = index.min(tuples.len().saturating_sub(1));
        let bad = tuples.remove(index);
        let is_report = index >= self.first_report();
        let reports = self.reports as usize - is_report as usize;
        let removed = Removed {
            tuple: self.bytes.slice(bad),
            is_report,
        };
        (removed, self.subset(self.id, &tuples, reports))
    }

    /// Every row, as refused rows with their 1-based lines, for
    /// quarantining a batch whose error hits them all.
    pub(crate) fn all_rows(&self) -> Vec<(Option<usize>, Removed)> {
        let first_report = self.first_report();
        self.tuples()
            .into_iter()
            .enumerate()
            .map(|(i, range)| {
                let removed = Removed {
                    tuple: self.bytes.slice(range),
                    is_report: i >= first_report,
                };
                (Some(i + 1), removed)
            })
            .collect()
    }

    /// Splits the batch in two halves, for bisecting a failure that names
    /// no row. Each half's id is derived from this batch's id and the
    /// half's row range, so the same batch always splits into the same
    /// ids: a replay after a crash recognises, through the ledger, the
    /// pieces committed before it.
    pub(crate) fn halves(&self) -> [SealedBatch; 2] {
        let tuples = self.tuples();
        let mid = tuples.len() / 2;
        let range_id =
            |start: usize, end: usize| derive_id(&self.id, ((start as u64) << 32) | end as u64);
        let ids = [range_id(0, mid), range_id(mid, tuples.len())];
        let second_reports = (self.reports as usize).min(tuples.len() - mid);
        let first_reports = self.reports as usize - second_reports;
        [
            self.subset(ids[0], &tuples[..mid], first_reports),
            self.subset(ids[1], &tuples[mid..], second_reports),
        ]
    }

    /// The same batch under an id derived from its own, for when its id
    /// is taken in the ledger by a row it did not write (see
    /// [`Error::LedgerKeyTaken`](crate::Error::LedgerKeyTaken)). Like a
    /// bisected piece, it keeps its chain entry (the sealed id), so
    /// `verify` finds its rows under the new id. The salt is no half's
    /// (theirs are row ranges, `start < end`), and the same batch always
    /// gets the same new id, so a replay recognises it in the ledger.
    pub(crate) fn reidentified(&self) -> SealedBatch {
        let tuples = self.tuples();
        self.subset(
            derive_id(&self.id, u64::MAX),
            &tuples,
            self.reports as usize,
        )
    }

    /// The id as text, for SQL parameters.
    pub(crate) fn id_text(&self) -> String {
        uuid_text(&self.id)
    }
}

/// Whether `bytes` starts like a binary COPY stream.
pub(crate) fn is_copy_stream(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN + TRAILER_LEN && bytes.starts_with(SIGNATURE)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::encode::CopyEncoder;
    use crate::Row;

    /// A batch of one row per message, the last `reports` of them drop
    /// reports. Shared by the sink's tests.
    pub(crate) fn batch_of(id: [u8; 16], messages: &[&str], reports: u32) -> SealedBatch {
        let mut enc = CopyEncoder::new();
        for m in messages {
            enc.push_row(&Row {
                message: m,
                ..Row::default()
            });
        }
        SealedBatch {
            id,
            bytes: enc.finish(),
            rows: messages.len() as u32,
            reports,
            first_ts: 5,
            last_ts: 9,
            chain: None,
            checkpoint: None,
        }
    }

    fn batch(messages: &[&str]) -> SealedBatch {
        batch_of([1; 16], messages, 0)
    }

    #[test]
    fn removing_a_tuple_keeps_the_others_intact() {
        let b = batch(&["a", "bb", "ccc"]);
        assert_eq!(b.tuples().len(), 3);
        let (bad, rest) = b.without(1);
        assert!(bad.tuple.windows(2).any(|w| w == b"bb"));
        assert_eq!(rest.rows, 2);
        assert!(is_copy_stream(&rest.bytes));
        let expected = batch(&["a", "ccc"]);
        assert_eq!(rest.bytes, expected.bytes);
        let [x, y] = b.halves();
        assert_eq!((x.rows, y.rows), (1, 2));
        assert_eq!(y.bytes, batch(&["bb", "ccc"]).bytes);
    }

    #[test]
    fn halves_have_stable_ids_of_their_own() {
        let b = batch(&["a", "b", "c"]);
        let [x, y] = b.halves();
        let [x2, y2] = b.clone().halves();
        assert_eq!((x.id, y.id), (x2.id, y2.id), "deterministic");
        assert!(x.id != y.id && x.id != b.id && y.id != b.id);
        let all = b.all_rows();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].0, Some(3));
        assert!(all.iter().all(|(_, r)| !r.is_report));
    }

    #[test]
    fn drop_reports_are_the_last_rows() {
        let b = batch_of([1; 16], &["event", "3 events dropped"], 1);
        let [x, y] = b.halves();
        assert_eq!((x.reports, y.reports), (0, 1));
        let (removed, rest) = b.without(1);
        assert!(removed.is_report);
        assert_eq!((rest.rows, rest.reports), (1, 0));
        let (removed, rest) = b.without(0);
        assert!(!removed.is_report);
        assert_eq!((rest.rows, rest.reports), (1, 1));
        let many = batch_of([1; 16], &["a", "b", "c", "r1", "r2", "r3"], 3);
        let [x, y] = many.halves();
        assert_eq!((x.reports, y.reports), (0, 3));
        let [p, q] = y.halves();
        assert_eq!((p.rows, p.reports, q.rows, q.reports), (1, 1, 2, 2));
    }
}
