//! What `ringtrail verify` finds, and the pure decisions behind each
//! finding: from ledger rows, the digests recomputed from the table and
//! the checkpoints, with no database in sight.
//!
//! | code | meaning | names |
//! |---|---|---|
//! | `row_changed` | a batch has as many rows as its ledger row says, but their digest differs: a row was edited (or swapped for another) | chain, seq, batch |
//! | `row_missing` | a batch has fewer rows than its ledger row says | chain, seq, batch |
//! | `row_added` | a batch has more rows than its ledger row says (an added or duplicated row), or a row names a batch the ledger does not have | chain, seq, batch (seq absent for an unknown batch) |
//! | `batch_missing` | seqs are missing from a chain: ledger rows deleted (one finding per gap, `seq` its first) | chain, seq |
//! | `broken_link` | a ledger row's `prev_hash` is not the previous link's hash, its `hash` is not the hash of its own fields, or a seq repeats | chain, seq, batch |
//! | `checkpoint_mismatch` | a checkpoint's seq is not in the ledger, or the ledger's hash at that seq is not the checkpoint's head | chain, seq |
//! | `bad_signature` | a checkpoint's signature does not verify with the chain's public key (or it has none by that key) | chain, seq |
//!
//! The codes are a contract: scripts match on them.
//!
//! ```
//! use ringtrail::chain::finding::{check_rows, FindingCode, LedgerEntry, Recount};
//! use ringtrail::chain::link::{BatchMeta, ChainId};
//!
//! let meta = BatchMeta { batch_id: [1; 16], rows: 3, first_ts: 0, last_ts: 0 };
//! let entry = LedgerEntry { seq: 4, prev_hash: [0; 32], hash: [0; 32], digest: [9; 32], meta };
//! let found = Recount { rows: 4, digest: [8; 32] };
//! let finding = check_rows(ChainId([2; 16]), &entry, &found).unwrap();
//! assert_eq!(finding.code, FindingCode::RowAdded);
//! assert_eq!(finding.code.as_str(), "row_added");
//! ```

use std::fmt;

use super::link::{link_hash, BatchMeta, ChainId, GENESIS};

/// The kind of a [`Finding`]; [`as_str`](FindingCode::as_str) is its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FindingCode {
    /// `row_changed`.
    RowChanged,
    /// `row_missing`.
    RowMissing,
    /// `row_added` (also a duplicated row).
    RowAdded,
    /// `batch_missing`.
    BatchMissing,
    /// `broken_link`.
    BrokenLink,
    /// `checkpoint_mismatch`.
    CheckpointMismatch,
    /// `bad_signature`.
    BadSignature,
    /// `retention_unproven`: a `ringtrail.retention_log` entry no real
    /// retention can have written (its partition still attached, or its
    /// range still held by one, or in the future).
    RetentionUnproven,
    /// `unanchored_chain`: with a trusted key, a chain that no checkpoint
    /// signed by that key covers (anyone who can insert ledger rows can
    /// have written it).
    UnanchoredChain,
    /// `unsigned_tail`: with a trusted key, batches after the newest
    /// checkpoint that key signed for their chain.
    UnsignedTail,
}

impl FindingCode {
    /// Every code, in this order.
    pub const ALL: [FindingCode; 10] = [
        FindingCode::RowChanged,
        FindingCode::RowMissing,
        FindingCode::RowAdded,
        FindingCode::BatchMissing,
        FindingCode::BrokenLink,
        FindingCode::CheckpointMismatch,
        FindingCode::BadSignature,
        FindingCode::RetentionUnproven,
        FindingCode::UnanchoredChain,
        FindingCode::UnsignedTail,
    ];

    /// The code, e.g. `broken_link`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::RowChanged => "row_changed",
            FindingCode::RowMissing => "row_missing",
            FindingCode::RowAdded => "row_added",
            FindingCode::BatchMissing => "batch_missing",
            FindingCode::BrokenLink => "broken_link",
            FindingCode::CheckpointMismatch => "checkpoint_mismatch",
            FindingCode::BadSignature => "bad_signature",
            FindingCode::RetentionUnproven => "retention_unproven",
            FindingCode::UnanchoredChain => "unanchored_chain",
            FindingCode::UnsignedTail => "unsigned_tail",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind.
    pub code: FindingCode,
    /// The chain it is on.
    pub chain: ChainId,
    /// The seq it is about, when it is about one.
    pub seq: Option<u64>,
    /// The batch it is about, when one is known.
    pub batch_id: Option<[u8; 16]>,
    /// A sentence for people (never parsed).
    pub detail: String,
}

impl fmt::Display for Finding {
    /// `broken_link chain=… seq=7 batch=…: detail`, the parts it has.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} chain={}", self.code, self.chain)?;
        if let Some(seq) = self.seq {
            write!(f, " seq={seq}")?;
        }
        if let Some(batch) = &self.batch_id {
            write!(f, " batch={}", crate::text::uuid_text(batch))?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// A chained ledger row as `verify` reads it from `ringtrail.batches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    /// `seq`.
    pub seq: u64,
    /// `prev_hash`.
    pub prev_hash: [u8; 32],
    /// `hash`.
    pub hash: [u8; 32],
    /// `digest`: the batch digest the writer computed.
    pub digest: [u8; 32],
    /// `batch_id`, `rows`, `first_ts`, `last_ts`.
    pub meta: BatchMeta,
}

/// What the table holds now for one batch: its rows counted and digested
/// ([`BatchDigest`](super::digest::BatchDigest) over `WHERE batch_id = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recount {
    /// Rows found.
    pub rows: u64,
    /// Their batch digest.
    pub digest: [u8; 32],
}

fn finding(
    code: FindingCode,
    chain: ChainId,
    seq: Option<u64>,
    batch_id: Option<[u8; 16]>,
    detail: String,
) -> Finding {
    Finding {
        code,
        chain,
        seq,
        batch_id,
        detail,
    }
}

/// Compares a batch's rows as found with its ledger row: `None` when they
/// match; else `row_missing` (fewer rows), `row_added` (more) or
/// `row_changed` (as many, another digest).
pub fn check_rows(chain: ChainId, entry: &LedgerEntry, found: &Recount) -> Option<Finding> {
    let want = u64::from(entry.meta.rows);
    let (code, detail) = if found.rows < want {
        (
            FindingCode::RowMissing,
            format!("{} of {want} rows are missing", want - found.rows),
        )
    } else if found.rows > want {
        (
            FindingCode::RowAdded,
            format!("{} rows more than the {want} committed", found.rows - want),
        )
    } else if found.digest != entry.digest {
        (
            FindingCode::RowChanged,
            format!("the {want} rows do not hash to the committed digest"),
        )
    } else {
        return None;
    };
    Some(finding(
        code,
        chain,
        Some(entry.seq),
        Some(entry.meta.batch_id),
        detail,
    ))
}

/// `row_added` for rows whose `batch_id` no ledger row has.
pub fn unknown_batch(chain: ChainId, batch_id: [u8; 16], rows: u64) -> Finding {
    finding(
        FindingCode::RowAdded,
        chain,
        None,
        Some(batch_id),
        format!("{rows} rows name a batch the ledger does not have"),
    )
}

/// Compares a checkpoint with the ledger: `ledger_hash` is the chain's
/// `hash` at the checkpoint's seq, `None` when the ledger has no such
/// seq. `None` when they match, else `checkpoint_mismatch`.
pub fn check_checkpoint(
    chain: ChainId,
    seq: u64,
    head: &[u8; 32],
    ledger_hash: Option<&[u8; 32]>,
) -> Option<Finding> {
    let detail = match ledger_hash {
        Some(hash) if hash == head => return None,
        // A checkpoint of an empty chain signs the genesis head.
        None if seq == 0 && *head == GENESIS => return None,
        Some(_) => "the ledger's hash at this seq is not the checkpoint's head".to_owned(),
        None => "the ledger has no batch at this seq".to_owned(),
    };
    Some(finding(
        FindingCode::CheckpointMismatch,
        chain,
        Some(seq),
        None,
        detail,
    ))
}

/// `bad_signature` for a checkpoint of `chain` at `seq` (the checkpoint
/// parser's error, as text, is the detail).
pub fn bad_signature(chain: ChainId, seq: Option<u64>, why: &dyn fmt::Display) -> Finding {
    finding(
        FindingCode::BadSignature,
        chain,
        seq,
        None,
        format!("checkpoint signature: {why}"),
    )
}

/// Walks one chain's ledger rows in seq order, checking every link and
/// every batch's rows.
///
/// ```
/// use ringtrail::chain::finding::{ChainWalk, FindingCode, LedgerEntry, Recount};
/// use ringtrail::chain::link::{BatchMeta, Chain, ChainId};
///
/// let id = ChainId([1; 16]);
/// let mut chain = Chain::new(id);
/// let mut entries = Vec::new();
/// for n in 0..3u8 {
///     let meta = BatchMeta { batch_id: [n; 16], rows: 1, first_ts: 0, last_ts: 0 };
///     let link = chain.link(&[n; 32], &meta);
///     entries.push(LedgerEntry { seq: link.seq, prev_hash: link.prev_hash, hash: link.hash, digest: [n; 32], meta });
/// }
/// entries.remove(1); // a deleted ledger row
///
/// let mut walk = ChainWalk::new(id);
/// let mut findings = Vec::new();
/// for e in &entries {
///     walk.push(e, &Recount { rows: 1, digest: e.digest }, &mut findings);
/// }
/// walk.finish(None, &mut findings);
/// assert_eq!(findings.len(), 1);
/// assert_eq!((findings[0].code, findings[0].seq), (FindingCode::BatchMissing, Some(2)));
/// ```
#[derive(Debug, Clone)]
pub struct ChainWalk {
    chain: ChainId,
    /// The seq the next entry should have.
    next: u64,
    /// The hash the next entry's `prev_hash` should be; `None` right
    /// after a gap, where it cannot be known.
    prev: Option<[u8; 32]>,
}

impl ChainWalk {
    /// A walk from the chain's start (seq 1 after [`GENESIS`]).
    pub fn new(chain: ChainId) -> ChainWalk {
        ChainWalk::after(chain, 0, GENESIS)
    }

    /// A walk of the entries after `seq`, whose hash was `head`: from a
    /// trusted checkpoint, when older batches were dropped by retention.
    pub fn after(chain: ChainId, seq: u64, head: [u8; 32]) -> ChainWalk {
        ChainWalk {
            chain,
            next: seq + 1,
            prev: Some(head),
        }
    }

    /// The chain walked.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// Checks the next ledger entry (in seq order) and its batch's rows as
    /// found, adding what is wrong to `findings`.
    pub fn push(&mut self, entry: &LedgerEntry, found: &Recount, findings: &mut Vec<Finding>) {
        let chain = self.chain;
        let here = |code, detail: String| {
            finding(
                code,
                chain,
                Some(entry.seq),
                Some(entry.meta.batch_id),
                detail,
            )
        };
        if entry.seq < self.next {
            findings.push(here(
                FindingCode::BrokenLink,
                format!(
                    "seq {} repeats or goes back (after seq {})",
                    entry.seq,
                    self.next - 1
                ),
            ));
        } else {
            if entry.seq > self.next {
                findings.push(self.gap(entry.seq - 1));
                self.prev = None;
            }
            if let Some(prev) = self.prev {
                if entry.prev_hash != prev {
                    findings.push(here(
                        FindingCode::BrokenLink,
                        "prev_hash is not the previous link's hash".to_owned(),
                    ));
                }
            }
            self.next = entry.seq + 1;
            self.prev = Some(entry.hash);
        }
        let hash = link_hash(
            chain,
            &entry.prev_hash,
            &entry.digest,
            entry.seq,
            &entry.meta,
        );
        if hash != entry.hash {
            findings.push(here(
                FindingCode::BrokenLink,
                "hash is not the hash of the ledger row's own fields".to_owned(),
            ));
        }
        findings.extend(check_rows(chain, entry, found));
    }

    /// Ends the walk. `until`: the highest seq known to exist (from a
    /// checkpoint); seqs after the last entry up to it are `batch_missing`.
    pub fn finish(self, until: Option<u64>, findings: &mut Vec<Finding>) {
        if let Some(until) = until {
            if until >= self.next {
                findings.push(self.gap(until));
            }
        }
    }

    /// The last seq walked (or the starting point) and its hash, if known.
    pub fn head(&self) -> (u64, Option<[u8; 32]>) {
        (self.next - 1, self.prev)
    }

    /// `batch_missing` for seqs `self.next ..= last`.
    fn gap(&self, last: u64) -> Finding {
        let n = last - self.next + 1;
        let detail = if n == 1 {
            "the ledger has no batch at this seq".to_owned()
        } else {
            format!(
                "the ledger has no batches at seqs {}..={last} ({n})",
                self.next
            )
        };
        finding(
            FindingCode::BatchMissing,
            self.chain,
            Some(self.next),
            None,
            detail,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::link::Chain;

    const ID: ChainId = ChainId([3; 16]);

    fn ledger(n: u8) -> Vec<LedgerEntry> {
        let mut chain = Chain::new(ID);
        (1..=n)
            .map(|i| {
                let meta = BatchMeta {
                    batch_id: [i; 16],
                    rows: u32::from(i),
                    first_ts: i64::from(i),
                    last_ts: i64::from(i) + 1,
                };
                let link = chain.link(&[i; 32], &meta);
                LedgerEntry {
                    seq: link.seq,
                    prev_hash: link.prev_hash,
                    hash: link.hash,
                    digest: [i; 32],
                    meta,
                }
            })
            .collect()
    }

    fn walk(entries: &[LedgerEntry], found: impl Fn(&LedgerEntry) -> Recount) -> Vec<Finding> {
        let mut w = ChainWalk::new(ID);
        let mut out = Vec::new();
        for e in entries {
            w.push(e, &found(e), &mut out);
        }
        w.finish(None, &mut out);
        out
    }

    fn intact(e: &LedgerEntry) -> Recount {
        Recount {
            rows: u64::from(e.meta.rows),
            digest: e.digest,
        }
    }

    fn codes(f: &[Finding]) -> Vec<(FindingCode, Option<u64>)> {
        f.iter().map(|f| (f.code, f.seq)).collect()
    }

    #[test]
    fn codes_are_the_contract() {
        let all: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            all,
            [
                "row_changed",
                "row_missing",
                "row_added",
                "batch_missing",
                "broken_link",
                "checkpoint_mismatch",
                "bad_signature",
                "retention_unproven",
                "unanchored_chain",
                "unsigned_tail"
            ]
        );
    }

    #[test]
    fn an_intact_chain_has_no_findings() {
        assert!(walk(&ledger(5), intact).is_empty());
    }

    #[test]
    fn rows_changed_missing_added() {
        let l = ledger(4);
        let got = walk(&l, |e| match e.seq {
            2 => Recount {
                rows: 2,
                digest: [0xee; 32],
            },
            3 => Recount {
                rows: 2,
                digest: [0xee; 32],
            },
            4 => Recount {
                rows: 5,
                digest: [0xee; 32],
            },
            _ => intact(e),
        });
        assert_eq!(
            codes(&got),
            [
                (FindingCode::RowChanged, Some(2)),
                (FindingCode::RowMissing, Some(3)),
                (FindingCode::RowAdded, Some(4)),
            ]
        );
        assert_eq!(got[0].batch_id, Some([2; 16]));
        assert!(got[1].to_string().starts_with(&format!(
            "row_missing chain={ID} seq=3 batch=03030303-0303-0303-0303-030303030303: "
        )));
    }

    #[test]
    fn missing_batches_in_the_middle_and_at_the_end() {
        let mut l = ledger(8);
        l.drain(2..5); // seqs 3, 4, 5
        l.pop(); // seq 8
        let mut w = ChainWalk::new(ID);
        let mut got = Vec::new();
        for e in &l {
            w.push(e, &intact(e), &mut got);
        }
        assert_eq!(w.head().0, 7);
        w.finish(Some(8), &mut got);
        assert_eq!(
            codes(&got),
            [
                (FindingCode::BatchMissing, Some(3)),
                (FindingCode::BatchMissing, Some(8)),
            ]
        );
        assert!(got[0].detail.contains("3..=5 (3)"), "{}", got[0].detail);
    }

    #[test]
    fn edited_ledger_rows_break_links() {
        // A ledger field edited: its own hash no longer matches.
        let mut l = ledger(3);
        l[1].meta.rows += 1;
        let got = walk(&l, intact);
        assert_eq!(codes(&got), [(FindingCode::BrokenLink, Some(2))]);

        // A row rewritten with a fresh hash: the next link breaks.
        let mut l = ledger(3);
        l[1].digest = [0xdd; 32];
        l[1].hash = link_hash(ID, &l[1].prev_hash, &l[1].digest, 2, &l[1].meta);
        let got = walk(&l, intact);
        assert_eq!(codes(&got), [(FindingCode::BrokenLink, Some(3))]);

        // A seq repeated.
        let mut l = ledger(3);
        let again = l[1];
        l.insert(2, again);
        let got = walk(&l, intact);
        assert_eq!(codes(&got), [(FindingCode::BrokenLink, Some(2))]);
    }

    #[test]
    fn a_walk_from_a_checkpoint() {
        let l = ledger(5);
        let mut w = ChainWalk::after(ID, 2, l[1].hash);
        let mut got = Vec::new();
        for e in &l[2..] {
            w.push(e, &intact(e), &mut got);
        }
        assert!(got.is_empty());
        let mut w = ChainWalk::after(ID, 2, [9; 32]);
        w.push(&l[2], &intact(&l[2]), &mut got);
        assert_eq!(codes(&got), [(FindingCode::BrokenLink, Some(3))]);
    }

    #[test]
    fn checkpoints_against_the_ledger() {
        let h = [5; 32];
        assert_eq!(check_checkpoint(ID, 4, &h, Some(&h)), None);
        assert_eq!(check_checkpoint(ID, 0, &GENESIS, None), None);
        let f = check_checkpoint(ID, 4, &h, Some(&[6; 32])).unwrap();
        assert_eq!((f.code, f.seq), (FindingCode::CheckpointMismatch, Some(4)));
        let f = check_checkpoint(ID, 9, &h, None).unwrap();
        assert_eq!(f.code, FindingCode::CheckpointMismatch);
        assert_eq!(
            bad_signature(ID, Some(4), &"no signature by key x").code,
            FindingCode::BadSignature
        );
        assert_eq!(unknown_batch(ID, [1; 16], 3).code, FindingCode::RowAdded);
    }
}
