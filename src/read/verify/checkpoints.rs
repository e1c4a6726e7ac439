//! The checkpoints: the heads they expect the ledger to have
//! ([`Expected`]), from the external notes and the rows of
//! `ringtrail.checkpoints`.

use std::collections::BTreeMap;

use crate::chain::checkpoint::{self, Checkpoint};
use crate::chain::finding::{bad_signature, check_checkpoint, ChainWalk, Finding, FindingCode};
use crate::chain::key::VerifierKey;
use crate::chain::link::ChainId;

use super::VerifyOptions;

/// Where an expected head comes from.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Table,
    File(String),
}

impl Source {
    fn prefix(&self) -> String {
        match self {
            Source::Table => "checkpoint in ringtrail.checkpoints".to_owned(),
            Source::File(name) => format!("checkpoint in {name}"),
        }
    }
}

/// The heads checkpoints expect at one seq, and where each comes from.
type Heads = Vec<([u8; 32], Source)>;

/// Heads the checkpoints say the ledger has, by chain and seq.
#[derive(Debug, Default)]
pub(super) struct Expected {
    heads: BTreeMap<ChainId, BTreeMap<u64, Heads>>,
    /// The newest seq of each chain a checkpoint signed by the trusted
    /// key names: the chain is anchored up to it.
    anchored: BTreeMap<ChainId, u64>,
}

impl Expected {
    /// Records that a checkpoint signed by the trusted key names `seq`.
    pub(super) fn anchor(&mut self, chain: ChainId, seq: u64) {
        let newest = self.anchored.entry(chain).or_insert(seq);
        *newest = (*newest).max(seq);
    }

    /// The newest seq of `chain` a trusted checkpoint names, if any.
    pub(super) fn anchored(&self, chain: ChainId) -> Option<u64> {
        self.anchored.get(&chain).copied()
    }

    pub(super) fn add(&mut self, chain: ChainId, seq: u64, head: [u8; 32], source: Source) {
        self.heads
            .entry(chain)
            .or_default()
            .entry(seq)
            .or_default()
            .push((head, source));
    }

    /// Checks the checkpoints at `seq` against the ledger's `hash` there.
    pub(super) fn at(
        &mut self,
        chain: ChainId,
        seq: u64,
        hash: &[u8; 32],
        findings: &mut Vec<Finding>,
    ) {
        let Some(seqs) = self.heads.get_mut(&chain) else {
            return;
        };
        // Seqs the walk passed without a ledger row (a gap).
        let passed: Vec<u64> = seqs.range(..seq).map(|(s, _)| *s).collect();
        for s in passed {
            for (head, source) in seqs.remove(&s).unwrap_or_default() {
                findings.extend(mismatch(chain, s, &head, None, &source));
            }
        }
        for (head, source) in seqs.remove(&seq).unwrap_or_default() {
            findings.extend(mismatch(chain, seq, &head, Some(hash), &source));
        }
    }

    /// Ends a chain's walk: checkpoints past its last seq have no batch.
    pub(super) fn finish_chain(&mut self, walk: ChainWalk, findings: &mut Vec<Finding>) {
        let chain = walk.chain();
        let seqs = self.heads.remove(&chain).unwrap_or_default();
        let until = seqs.keys().next_back().copied().filter(|&s| s > 0);
        walk.finish(until, findings);
        for (seq, heads) in seqs {
            for (head, source) in heads {
                findings.extend(mismatch(chain, seq, &head, None, &source));
            }
        }
    }

    pub(super) fn chains(&self) -> Vec<ChainId> {
        self.heads.keys().copied().collect()
    }
}

fn mismatch(
    chain: ChainId,
    seq: u64,
    head: &[u8; 32],
    hash: Option<&[u8; 32]>,
    source: &Source,
) -> Option<Finding> {
    let mut f = check_checkpoint(chain, seq, head, hash)?;
    f.detail = format!("{}: {}", source.prefix(), f.detail);
    Some(f)
}

/// An external note opened with the trusted key.
pub(super) fn external(note: &str, key: Option<&VerifierKey>) -> Result<Checkpoint, Finding> {
    // The chain and seq it claims, for a finding about it.
    let claimed = checkpoint::split_note(note)
        .ok()
        .and_then(|(body, _)| Checkpoint::parse_body(body).ok());
    let chain = claimed.map_or(ChainId([0; 16]), |c| c.chain);
    let seq = claimed.map(|c| c.seq);
    let Some(key) = key else {
        return Err(bad_signature(chain, seq, &"no public key to check it with"));
    };
    checkpoint::open(note, key).map_err(|e| bad_signature(chain, seq, &e))
}

/// Checks one row of `ringtrail.checkpoints`, adding its head to
/// `expected` when its note verifies.
pub(super) fn table_checkpoint(
    chain: ChainId,
    seq: u64,
    head: &[u8],
    note: &str,
    stored_key: Option<&str>,
    options: &VerifyOptions,
    expected: &mut Expected,
) -> Option<Finding> {
    let key = match &options.public_key {
        Some(k) => k.clone(),
        None => match stored_key.map(str::parse::<VerifierKey>) {
            Some(Ok(k)) => k,
            Some(Err(e)) => {
                return Some(bad_signature(
                    chain,
                    Some(seq),
                    &format!("the row's public_key is not a key: {e}"),
                ))
            }
            None => {
                return Some(bad_signature(
                    chain,
                    Some(seq),
                    &"the row has no public_key",
                ))
            }
        },
    };
    let cp = match checkpoint::open(note, &key) {
        Ok(cp) => cp,
        Err(e) => return Some(bad_signature(chain, Some(seq), &e)),
    };
    expected.add(cp.chain, cp.seq, cp.head, Source::Table);
    if options.public_key.is_some() {
        expected.anchor(cp.chain, cp.seq);
    }
    if cp.chain != chain || cp.seq != seq || cp.head.as_slice() != head {
        return Some(Finding {
            code: FindingCode::CheckpointMismatch,
            chain,
            seq: Some(seq),
            batch_id: None,
            detail: "checkpoint in ringtrail.checkpoints: the row's chain_id, seq or head \
                     is not what its signed note says"
                .to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_past_the_ledger_and_in_a_gap() {
        let chain = ChainId([1; 16]);
        let mut e = Expected::default();
        e.add(chain, 2, [2; 32], Source::Table);
        e.add(chain, 3, [3; 32], Source::File("cp.txt".into()));
        e.add(chain, 9, [9; 32], Source::File("cp.txt".into()));
        let mut got = Vec::new();
        e.at(chain, 3, &[3; 32], &mut got); // seq 2 was skipped: a gap
        e.finish_chain(ChainWalk::after(chain, 3, [3; 32]), &mut got);
        let codes: Vec<_> = got.iter().map(|f| (f.code, f.seq)).collect();
        assert_eq!(
            codes,
            [
                (FindingCode::CheckpointMismatch, Some(2)),
                (FindingCode::BatchMissing, Some(4)),
                (FindingCode::CheckpointMismatch, Some(9)),
            ]
        );
        assert!(got[0]
            .detail
            .starts_with("checkpoint in ringtrail.checkpoints: "));
        assert!(got[2].detail.starts_with("checkpoint in cp.txt: "));
    }

    #[test]
    fn an_external_note_needs_the_right_key() {
        use crate::chain::key::SigningKey;
        let key = SigningKey::from_seed("k", [1; 32]).unwrap();
        let other = SigningKey::from_seed("k", [2; 32]).unwrap();
        let cp = Checkpoint {
            chain: ChainId([4; 16]),
            seq: 7,
            head: [5; 32],
            time_micros: 0,
        };
        let note = cp.sign(&key);
        assert_eq!(external(&note, Some(&key.verifier())), Ok(cp));
        let f = external(&note, Some(&other.verifier())).unwrap_err();
        assert_eq!(
            (f.code, f.chain, f.seq),
            (FindingCode::BadSignature, cp.chain, Some(7))
        );
        let f = external(&note, None).unwrap_err();
        assert_eq!(f.code, FindingCode::BadSignature);
        let f = external("garbage\n", Some(&key.verifier())).unwrap_err();
        assert_eq!((f.code, f.seq), (FindingCode::BadSignature, None));
    }
}
