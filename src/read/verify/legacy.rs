//! Dead letters written before migration 0008, which did not name their
//! sealed batch: those a bisection left under the id of a piece that never
//! committed ([`Orphan`]) are matched to a seq by the prefix of its
//! `sealed_id` and its time window, and kept only when the digest then
//! matches. Nothing else in verify depends on this: it can go once no
//! database holds such dead letters.

use std::collections::BTreeMap;

use tokio_postgres::Transaction;

use crate::chain::canonical::{RowHasher, StoredRow};
use crate::chain::finding::{Finding, FindingCode, LedgerEntry, Recount};
use crate::chain::link::{BatchMeta, ChainId};

use super::rows::Pair;
use crate::encode::copy::WireUuid;

/// A dead letter whose `batch_id` is no ledger row's `batch_id` or
/// `sealed_id`: a row isolated by bisection, under the id of a piece that
/// never committed. Piece ids are derived from the sealed batch's id and
/// keep its first 6 bytes (its millisecond), so it belongs to a seq whose
/// `sealed_id` starts alike and whose window holds its `ts`.
#[derive(Debug)]
struct Orphan {
    batch_id: [u8; 16],
    /// Row id and row digest; `None` when the bytes are not a tuple.
    row: Option<(Pair, i64)>,
    used: bool,
}

/// The orphaned dead letters (see [`Orphan`]), and which a seq took.
#[derive(Debug, Default)]
pub(super) struct Orphans(Vec<Orphan>);

impl Orphans {
    /// Reads the orphaned dead letters (see [`Orphan`]); they are few.
    pub(super) async fn load(
        tx: &Transaction<'_>,
        sealed_dead: bool,
        hasher: &mut RowHasher,
    ) -> Result<Orphans, tokio_postgres::Error> {
        let mut orphans = "SELECT d.batch_id, d.tuple FROM ringtrail.dead_letters d \
             WHERE NOT EXISTS (SELECT 1 FROM ringtrail.batches b WHERE b.batch_id = d.batch_id) \
               AND NOT EXISTS (SELECT 1 FROM ringtrail.batches b WHERE b.sealed_id = d.batch_id)"
            .to_owned();
        if sealed_dead {
            // Those naming a sealed batch in the ledger are that batch's.
            orphans.push_str(
                " AND (d.sealed_id IS NULL \
                  OR NOT EXISTS (SELECT 1 FROM ringtrail.batches b WHERE b.sealed_id = d.sealed_id))",
            );
        }
        let mut loaded = Vec::new();
        for row in tx.query(&orphans, &[]).await? {
            let tuple: &[u8] = row.try_get(1)?;
            let parsed = StoredRow::from_tuple(tuple)
                .map(|r| ((r.id, hasher.stored_digest(&r)), r.ts_micros));
            loaded.push(Orphan {
                batch_id: row.try_get::<_, WireUuid>(0)?.0,
                row: parsed,
                used: false,
            });
        }
        Ok(Orphans(loaded))
    }

    /// The orphans a seq may take: not taken yet, their `batch_id`
    /// starting as its `sealed_id`, their `ts` in its window.
    pub(super) fn candidates(&self, meta: &BatchMeta) -> Vec<usize> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                !o.used
                    && o.batch_id[..6] == meta.batch_id[..6]
                    && o.row
                        .is_some_and(|(_, ts)| (meta.first_ts..=meta.last_ts).contains(&ts))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// A seq's recount, `digest` being that of its own rows and dead
    /// letters plus some extra pairs: with the `candidates`, which it then
    /// takes, unless only without them do the rows and digest match the
    /// ledger's.
    pub(super) fn settle(
        &mut self,
        candidates: Vec<usize>,
        entry: &LedgerEntry,
        mut digest: impl FnMut(&[Pair]) -> Recount,
    ) -> Recount {
        if candidates.is_empty() {
            return digest(&[]);
        }
        let extra: Vec<Pair> = candidates
            .iter()
            .map(|&i| self.0[i].row.unwrap_or((([0; 16], [0; 32]), 0)).0)
            .collect();
        let intact = |r: &Recount| r.rows == u64::from(entry.meta.rows) && r.digest == entry.digest;
        let with = digest(&extra);
        if !intact(&with) {
            let without = digest(&[]);
            if intact(&without) {
                return without;
            }
        }
        for i in candidates {
            self.0[i].used = true;
        }
        with
    }

    /// `row_added` for the orphaned dead letters no seq took (their `ts`
    /// not before `since`, whose batches were not checked).
    pub(super) fn unclaimed(&self, chain: ChainId, since: Option<i64>) -> Vec<Finding> {
        let mut by_batch: BTreeMap<[u8; 16], u64> = BTreeMap::new();
        for o in &self.0 {
            let skipped = match (o.row, since) {
                (Some((_, ts)), Some(t)) => ts < t,
                _ => false,
            };
            if !o.used && !skipped {
                *by_batch.entry(o.batch_id).or_default() += 1;
            }
        }
        by_batch
            .into_iter()
            .map(|(batch, n)| Finding {
                code: FindingCode::RowAdded,
                chain,
                seq: None,
                batch_id: Some(batch),
                detail: format!("{n} dead letters name a batch the ledger does not have"),
            })
            .collect()
    }
}
