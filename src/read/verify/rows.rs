//! A seq's rows and dead letters, read and digested ([`Reader`]).

use std::collections::HashSet;

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use crate::chain::canonical::{RowHasher, StoredRow, STORED_COLUMNS};
use crate::chain::digest::BatchDigest;
use crate::chain::finding::{Finding, LedgerEntry, Recount};
use crate::chain::link::ChainId;

use super::ledger::Group;
use super::legacy::Orphans;
use super::retention::Dropped;
use crate::encode::copy::{WireMicros, WireUuid};

/// A row's id and row digest, as a [`BatchDigest`] takes them.
pub(super) type Pair = ([u8; 16], [u8; 32]);

/// The dead letters' schema, and the batches that have some.
#[derive(Debug)]
pub(super) struct DeadLetters {
    /// Dead letters name their sealed batch (migration 0008), and are
    /// taken by it too.
    sealed: bool,
    /// The ids of the batches that have dead letters: their `batch_id`s,
    /// and since 0008 their `sealed_id`s.
    ids: HashSet<[u8; 16]>,
}

impl DeadLetters {
    pub(super) async fn read(tx: &Transaction<'_>) -> Result<DeadLetters, tokio_postgres::Error> {
        // Dead letters name their sealed batch since migration 0008.
        let sealed: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute \
                 WHERE attrelid = 'ringtrail.dead_letters'::regclass \
                   AND attname = 'sealed_id' AND NOT attisdropped)",
                &[],
            )
            .await?
            .try_get(0)?;
        let dead_ids = if sealed {
            "SELECT batch_id FROM ringtrail.dead_letters \
             UNION SELECT sealed_id FROM ringtrail.dead_letters WHERE sealed_id IS NOT NULL"
        } else {
            "SELECT DISTINCT batch_id FROM ringtrail.dead_letters"
        };
        let ids: HashSet<[u8; 16]> = tx
            .query(dead_ids, &[])
            .await?
            .iter()
            .map(|r| r.try_get::<_, WireUuid>(0).map(|u| u.0))
            .collect::<Result<_, _>>()?;
        Ok(DeadLetters { sealed, ids })
    }
}

/// The prepared statements, the reused buffers, and the orphaned dead
/// letters.
pub(super) struct Reader {
    rows: tokio_postgres::Statement,
    strays: tokio_postgres::Statement,
    dead: tokio_postgres::Statement,
    /// The ids of the batches that have dead letters.
    dead_ids: HashSet<[u8; 16]>,
    /// A batch ending before this (`--since`) has its rows skipped.
    since: Option<i64>,
    /// The ranges retention is proven to have dropped.
    dropped: Dropped,
    /// Whether a row of the seq being checked lies in a dropped range.
    found_in_dropped: bool,
    hasher: RowHasher,
    /// `(row id, row digest)` of the seq being checked.
    pairs: Vec<Pair>,
    digest: BatchDigest,
    orphans: Orphans,
}

impl Reader {
    /// Prepares the statements (`dead.sealed`: dead letters name their
    /// sealed batch, and are taken by it too), and reads the orphaned dead
    /// letters.
    pub(super) async fn new(
        tx: &Transaction<'_>,
        dead: DeadLetters,
        since: Option<i64>,
        dropped: Dropped,
    ) -> Result<Reader, tokio_postgres::Error> {
        let ids = "batch_id = ANY($1::text[]::uuid[])";
        let dead_of = if dead.sealed {
            "batch_id = ANY($1::text[]::uuid[]) OR sealed_id = ANY($1::text[]::uuid[])"
        } else {
            ids
        };
        let mut reader = Reader {
            rows: tx
                .prepare(&format!(
                    "SELECT {STORED_COLUMNS} FROM ringtrail.logs \
                     WHERE {ids} AND ts BETWEEN $2 AND $3"
                ))
                .await?,
            strays: tx
                .prepare(&format!(
                    "SELECT {STORED_COLUMNS} FROM ringtrail.logs \
                     WHERE {ids} AND (ts < $2 OR ts > $3)"
                ))
                .await?,
            dead: tx
                .prepare(&format!(
                    "SELECT tuple FROM ringtrail.dead_letters WHERE {dead_of}"
                ))
                .await?,
            dead_ids: dead.ids,
            since,
            dropped,
            found_in_dropped: false,
            hasher: RowHasher::new(),
            pairs: Vec::new(),
            digest: BatchDigest::new(),
            orphans: Orphans::default(),
        };
        reader.orphans = Orphans::load(tx, dead.sealed, &mut reader.hasher).await?;
        Ok(reader)
    }

    /// Whether a batch's rows go unchecked: it ended before `--since`.
    pub(super) fn skips(&self, entry: &LedgerEntry) -> bool {
        self.since.is_some_and(|t| entry.meta.last_ts < t)
    }

    /// Whether a batch the last [`recount`](Self::recount) found short
    /// lost its missing rows to retention: its window overlaps a range
    /// retention is proven to have dropped, fewer rows than committed
    /// were found, and none of them lies in a dropped range.
    pub(super) fn lost_to_retention(&self, entry: &LedgerEntry, found: &Recount) -> bool {
        found.rows < u64::from(entry.meta.rows)
            && !self.found_in_dropped
            && self
                .dropped
                .overlaps(entry.meta.first_ts, entry.meta.last_ts)
    }

    /// `row_added` for the orphaned dead letters no seq took.
    pub(super) fn unclaimed(&self, chain: ChainId) -> Vec<Finding> {
        self.orphans.unclaimed(chain, self.since)
    }

    /// Counts and digests a seq's rows and dead letters.
    pub(super) async fn recount(
        &mut self,
        tx: &Transaction<'_>,
        group: &Group,
    ) -> Result<Recount, tokio_postgres::Error> {
        let ids: Vec<String> = group
            .ids
            .iter()
            .map(|id| ChainId(*id).to_string())
            .collect();
        let from = WireMicros(group.entry.meta.first_ts);
        let to = WireMicros(group.entry.meta.last_ts);
        let params: [&(dyn ToSql + Sync); 3] = [&ids, &from, &to];
        self.pairs.clear();
        self.found_in_dropped = false;
        self.rows_of(tx, &self.rows.clone(), &params).await?;
        self.dead_letters_of(tx, group).await?;
        let meta = group.entry.meta;
        let candidates = self.orphans.candidates(&meta);
        if ((self.pairs.len() + candidates.len()) as u64) < u64::from(meta.rows) {
            // A row's ts moved out of its batch's window reads as changed.
            self.rows_of(tx, &self.strays.clone(), &params).await?;
        }
        let (digest, pairs) = (&mut self.digest, &self.pairs);
        Ok(self.orphans.settle(candidates, &group.entry, |extra| {
            digest_of(digest, pairs, extra)
        }))
    }

    /// Adds the pairs of a seq's dead letters: those of its pieces' ids
    /// and its sealed id.
    async fn dead_letters_of(
        &mut self,
        tx: &Transaction<'_>,
        group: &Group,
    ) -> Result<(), tokio_postgres::Error> {
        let sealed = group.entry.meta.batch_id;
        let dead_ids: Vec<String> = group
            .ids
            .iter()
            .chain(std::iter::once(&sealed))
            .filter(|id| self.dead_ids.contains(*id))
            .map(|id| ChainId(*id).to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if dead_ids.is_empty() {
            return Ok(());
        }
        let stream = tx
            .query_raw(&self.dead, [&dead_ids as &(dyn ToSql + Sync)])
            .await?;
        pin_mut!(stream);
        while let Some(row) = stream.next().await {
            let row = row?;
            let tuple: &[u8] = row.try_get(0)?;
            // Bytes that are not a tuple: counted, never matching.
            let pair = StoredRow::from_tuple(tuple).map_or(([0; 16], [0; 32]), |r| {
                (r.id, self.hasher.stored_digest(&r))
            });
            self.pairs.push(pair);
        }
        Ok(())
    }

    async fn rows_of(
        &mut self,
        tx: &Transaction<'_>,
        statement: &tokio_postgres::Statement,
        params: &[&(dyn ToSql + Sync); 3],
    ) -> Result<(), tokio_postgres::Error> {
        let stream = tx.query_raw(statement, params.iter().copied()).await?;
        pin_mut!(stream);
        while let Some(row) = stream.next().await {
            let row = row?;
            let stored = StoredRow::from_pg(&row)?;
            self.found_in_dropped |= self.dropped.holds(stored.ts_micros);
            let digest = self.hasher.stored_digest(&stored);
            self.pairs.push((stored.id, digest));
        }
        Ok(())
    }
}

/// The batch digest of the `pairs` gathered and `extra` ones.
fn digest_of(digest: &mut BatchDigest, pairs: &[Pair], extra: &[Pair]) -> Recount {
    for &(id, d) in pairs.iter().chain(extra) {
        digest.push_digest(id, d);
    }
    Recount {
        rows: digest.rows(),
        digest: digest.finish(),
    }
}
