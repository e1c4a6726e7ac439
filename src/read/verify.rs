//! `ringtrail verify`: checks that the tables still hold what the writer
//! committed (issue 14 §3–§4), from the hash-chained batch ledger, the
//! rows, the dead letters and the signed checkpoints. [`verify()`] hands
//! each [`Finding`] to a callback as it is found and returns a
//! [`VerifySummary`].
//!
//! # What is checked
//!
//! 1. **Every batch's rows.** For each seq of each chain, the rows of
//!    `ringtrail.logs` whose `batch_id` is any of the seq's ledger
//!    `batch_id`s (a bisected batch commits several pieces under one seq)
//!    plus the rows of `ringtrail.dead_letters` of the sealed id or a
//!    piece's id, or naming the sealed id in their own `sealed_id` (since
//!    migration 0008; their `tuple`, decoded with
//!    [`StoredRow::from_tuple`]), plus, for dead letters written before
//!    0008, those a bisection left under the id of a piece that never
//!    committed (an id derived from the sealed id, which keeps its first 6
//!    bytes: taken by the seq whose `sealed_id` starts alike and whose
//!    window holds the row's `ts`, when the digest then matches; one no
//!    seq takes is `row_added`) are
//!    counted and digested into one
//!    [`BatchDigest`], and compared with the ledger's `sealed_rows` and
//!    `digest` ([`check_rows`](crate::chain::finding::check_rows)):
//!    `row_missing`, `row_added`, `row_changed`. The rows are read with
//!    `WHERE batch_id = ANY($1) AND ts BETWEEN first_ts AND last_ts` (the
//!    writer clamps a batch's rows into its ledger window, so the bounds
//!    let partition pruning and the BRIN index on `ts` work); only when
//!    fewer rows than committed are found is the batch read again outside
//!    its window, so a row whose `ts` was moved shows as `row_changed`.
//! 2. **Every link.** Each chain's seqs are walked in order
//!    ([`ChainWalk`]): a seq missing is `batch_missing`; a `prev_hash`
//!    that is not the previous `hash`, a `hash` that is not the hash of
//!    its own ledger row, a seq whose pieces disagree is `broken_link`.
//! 3. **Every checkpoint in `ringtrail.checkpoints`.** Its note's
//!    signature (`bad_signature`), its columns against its signed note,
//!    and the ledger's `hash` at its seq against its head
//!    (`checkpoint_mismatch`). Without a trusted key
//!    ([`VerifyOptions::public_key`]) the signature is checked against the
//!    `public_key` stored in the same row, which is weaker: whoever can
//!    rewrite the table can replace the key too.
//! 4. **Every external checkpoint** ([`VerifyOptions::checkpoints`], the
//!    notes of `Builder::checkpoints`' file), with the trusted key: the
//!    database must still hold each one's head at its seq. This is what
//!    catches a truncated tail (the newest batches deleted with their
//!    ledger and checkpoint rows) and a chain recomputed consistently
//!    without the key.
//! 5. **Rows outside any batch.** Rows whose `batch_id` names no chained
//!    ledger row (only a chained writer sets it), and rows committed at or
//!    after the first batch of the chains (its `first_ts`) whose
//!    `batch_id` is NULL, are `row_added` (their chain: the oldest one).
//!
//! A batch whose `last_ts` is before the newest `range_to` of
//! `ringtrail.retention_log` may have lost its rows to retention, and a
//! batch whose `last_ts` is before [`VerifyOptions::since`] is outside
//! the window asked for: their rows are not checked, their links are.
//!
//! Everything is read in one `REPEATABLE READ` snapshot, so batches a
//! running writer commits meanwhile are not half seen. External
//! checkpoints are read before the snapshot; one a running writer wrote
//! for a batch it had not committed yet shows as `checkpoint_mismatch`,
//! so verify a quiet database, or one written by a writer that stopped.
//!
//! # Memory
//!
//! The ledger is read through a cursor, 1,000 rows at a time, ordered by
//! `(chain_id, seq)`, and each seq's rows are streamed (`query_raw`)
//! into one reused [`BatchDigest`] (48 bytes a row of the largest batch).
//! Checkpoints are held in memory (a few bytes each), and so are the ids
//! of the batches that have dead letters.
//!
//! # Speed
//!
//! Measured on 1,000,000 rows in 1,000 batches of 1,000 (release build,
//! 2 cores shared with other work, PostgreSQL on the same machine,
//! `tests/verify.rs` `speed_on_a_million_rows`): 1.74 s, about 573,000
//! rows/s, peak RSS 6.6 MiB (December 2026). Each row is read once (a `ts` range per
//! batch, BRIN and partition pruning) and hashed once: about the speed of
//! `ringtrail export`.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, Transaction};

use crate::chain::canonical::{RowHasher, StoredRow, STORED_COLUMNS};
use crate::chain::checkpoint::{self, Checkpoint};
use crate::chain::digest::BatchDigest;
use crate::chain::finding::{
    bad_signature, check_checkpoint, ChainWalk, Finding, FindingCode, LedgerEntry, Recount,
};
use crate::chain::key::VerifierKey;
use crate::chain::link::{BatchMeta, ChainId};
use crate::encode::copy::PG_EPOCH_UNIX_MICROS;

/// How many ledger rows one `FETCH` takes.
const FETCH: usize = 1_000;

/// What [`verify()`] checks against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only batches whose `last_ts` is at or after this get their rows
    /// checked (and only rows from then are looked at for `row_added`
    /// outside any batch); links are walked over the whole chain.
    pub since: Option<SystemTime>,
    /// The trusted verifier key. Without it, each checkpoint row is
    /// checked against its own `public_key` column (weaker: see the
    /// [module docs](self)); external checkpoints need it.
    pub public_key: Option<VerifierKey>,
    /// External checkpoints: the text of a checkpoint file (signed notes
    /// one after another, [`checkpoint::split_notes`]), and its name for
    /// the findings' details.
    pub checkpoints: Option<(String, String)>,
}

/// What [`verify()`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifySummary {
    /// Chains walked.
    pub chains: u64,
    /// Batches (seqs) walked.
    pub batches: u64,
    /// Batches whose rows were not checked (before `since`, or before the
    /// newest retention cut).
    pub skipped: u64,
    /// Rows digested (dead letters included); the rows of skipped
    /// batches are not counted.
    pub rows: u64,
    /// Checkpoints checked: rows of `ringtrail.checkpoints`.
    pub checkpoints: u64,
    /// Checkpoints checked: external notes.
    pub external_checkpoints: u64,
    /// Findings handed to the callback.
    pub findings: u64,
}

impl VerifySummary {
    /// Whether nothing was found.
    pub fn clean(&self) -> bool {
        self.findings == 0
    }
}

/// Where [`verify()`] is, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Chained ledger rows in all (read at the start).
    pub ledger_rows: u64,
    /// Ledger rows walked so far.
    pub ledger_done: u64,
    /// Rows digested so far.
    pub rows: u64,
}

/// Checks the chain, the rows and the checkpoints (see the
/// [module docs](self)), handing each finding to `on_finding` as soon as
/// it is found, and `on_progress` after each batch.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when a query fails (the
/// schema without migration `0007_chain` included); findings already
/// handed on stay handed on.
pub async fn verify(
    client: &mut Client,
    options: &VerifyOptions,
    mut on_finding: impl FnMut(&Finding),
    mut on_progress: impl FnMut(&Progress),
) -> crate::Result<VerifySummary> {
    let mut summary = VerifySummary::default();
    let mut emit = |f: &Finding, summary: &mut VerifySummary| {
        summary.findings += 1;
        on_finding(f);
    };

    // External checkpoints first, before the snapshot (see the module docs).
    let mut expected = Expected::default();
    if let Some((name, text)) = &options.checkpoints {
        for note in checkpoint::split_notes(text) {
            summary.external_checkpoints += 1;
            match external(note, options.public_key.as_ref()) {
                Ok(cp) => expected.add(cp.chain, cp.seq, cp.head, Source::File(name.clone())),
                Err(f) => emit(&f, &mut summary),
            }
        }
    }

    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;

    for row in tx
        .query(
            "SELECT chain_id, seq, head, note, public_key FROM ringtrail.checkpoints \
             ORDER BY chain_id, seq",
            &[],
        )
        .await?
    {
        summary.checkpoints += 1;
        let chain = ChainId(row.try_get::<_, Uuid>(0)?.0);
        let seq = row.try_get::<_, i64>(1)?.max(0) as u64;
        let head: &[u8] = row.try_get(2)?;
        let note: &str = row.try_get(3)?;
        let stored_key: Option<&str> = row.try_get(4)?;
        if let Some(f) =
            table_checkpoint(chain, seq, head, note, stored_key, options, &mut expected)
        {
            emit(&f, &mut summary);
        }
    }

    let retention: Option<Micros> = tx
        .query_one("SELECT max(range_to) FROM ringtrail.retention_log", &[])
        .await?
        .try_get(0)?;
    let since = options
        .since
        .map(|t| crate::time::micros(t) - PG_EPOCH_UNIX_MICROS);
    // A batch ending before this has its rows skipped.
    let skip_before = match (retention, since) {
        (Some(r), Some(s)) => Some(r.0.max(s)),
        (r, s) => r.map(|r| r.0).or(s),
    };

    // Dead letters name their sealed batch since migration 0008.
    let sealed_dead: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute \
             WHERE attrelid = 'ringtrail.dead_letters'::regclass \
               AND attname = 'sealed_id' AND NOT attisdropped)",
            &[],
        )
        .await?
        .try_get(0)?;
    let dead_ids = if sealed_dead {
        "SELECT batch_id FROM ringtrail.dead_letters \
         UNION SELECT sealed_id FROM ringtrail.dead_letters WHERE sealed_id IS NOT NULL"
    } else {
        "SELECT DISTINCT batch_id FROM ringtrail.dead_letters"
    };
    let dead: HashSet<[u8; 16]> = tx
        .query(dead_ids, &[])
        .await?
        .iter()
        .map(|r| r.try_get::<_, Uuid>(0).map(|u| u.0))
        .collect::<Result<_, _>>()?;

    let totals = tx
        .query_one(
            "SELECT count(*), min(first_ts) FROM ringtrail.batches WHERE chain_id IS NOT NULL",
            &[],
        )
        .await?;
    let mut progress = Progress {
        ledger_rows: totals.try_get::<_, i64>(0)?.max(0) as u64,
        ..Progress::default()
    };
    let chain_start: Option<Micros> = totals.try_get(1)?;
    let first_chain: Option<ChainId> = tx
        .query_opt(
            "SELECT chain_id FROM ringtrail.batches WHERE chain_id IS NOT NULL \
             ORDER BY first_ts, chain_id LIMIT 1",
            &[],
        )
        .await?
        .map(|r| r.try_get::<_, Uuid>(0).map(|u| ChainId(u.0)))
        .transpose()?;

    let mut reader = Reader::new(&tx, sealed_dead).await?;
    reader.load_orphans(&tx, sealed_dead).await?;
    tx.batch_execute(
        "DECLARE ringtrail_verify NO SCROLL CURSOR FOR \
         SELECT chain_id, seq, batch_id, sealed_id, sealed_rows, first_ts, last_ts, \
                digest, prev_hash, hash \
         FROM ringtrail.batches WHERE chain_id IS NOT NULL \
         ORDER BY chain_id, seq, batch_id",
    )
    .await?;

    let mut walk: Option<ChainWalk> = None;
    let mut group: Option<Group> = None;
    let mut findings = Vec::new();
    loop {
        let page = tx
            .query(&format!("FETCH {FETCH} FROM ringtrail_verify"), &[])
            .await?;
        let last_page = page.len() < FETCH;
        for row in &page {
            let piece = Piece::read(row)?;
            progress.ledger_done += 1;
            match &mut group {
                Some(g) if g.chain == piece.chain && g.seq == piece.seq => {
                    g.add(piece);
                    continue;
                }
                _ => {}
            }
            if let Some(done) = group.replace(Group::new(piece)) {
                reader
                    .check(
                        &tx,
                        &done,
                        skip_before,
                        &dead,
                        &mut walk,
                        &mut expected,
                        &mut summary,
                        &mut findings,
                    )
                    .await?;
                for f in findings.drain(..) {
                    emit(&f, &mut summary);
                }
                progress.rows = summary.rows;
                on_progress(&progress);
            }
        }
        if last_page {
            break;
        }
    }
    if let Some(done) = group.take() {
        reader
            .check(
                &tx,
                &done,
                skip_before,
                &dead,
                &mut walk,
                &mut expected,
                &mut summary,
                &mut findings,
            )
            .await?;
    }
    if let Some(w) = walk.take() {
        expected.finish_chain(w, &mut findings);
    }
    // Chains only checkpoints know: every batch of them is gone.
    for chain in expected.chains() {
        summary.chains += 1;
        expected.finish_chain(ChainWalk::new(chain), &mut findings);
    }
    for f in findings.drain(..) {
        emit(&f, &mut summary);
    }
    progress.rows = summary.rows;
    on_progress(&progress);

    for f in reader.unclaimed(first_chain.unwrap_or(ChainId([0; 16])), skip_before) {
        emit(&f, &mut summary);
    }

    // Rows no chained batch accounts for: a row naming a batch the chained
    // ledger lacks (only a chained writer sets batch_id), at any time; a
    // row without a batch_id from the chains' first batch on.
    let chain = first_chain.unwrap_or(ChainId([0; 16]));
    let from = Micros(since.unwrap_or(i64::MIN)); // i64::MIN is -infinity
    let unbatched_from = Micros(chain_start.map_or(i64::MAX, |s| s.0)); // +infinity
    for row in tx
        .query(
            "SELECT batch_id, count(*) FROM ringtrail.logs l \
             WHERE ts >= $1 AND CASE WHEN batch_id IS NULL THEN ts >= $2 ELSE NOT EXISTS ( \
                 SELECT 1 FROM ringtrail.batches b \
                 WHERE b.batch_id = l.batch_id AND b.chain_id IS NOT NULL) END \
             GROUP BY batch_id ORDER BY batch_id NULLS FIRST",
            &[&from, &unbatched_from],
        )
        .await?
    {
        let batch: Option<Uuid> = row.try_get(0)?;
        let n = row.try_get::<_, i64>(1)?.max(0) as u64;
        let f = match batch {
            Some(b) => crate::chain::finding::unknown_batch(chain, b.0, n),
            None => Finding {
                code: FindingCode::RowAdded,
                chain,
                seq: None,
                batch_id: None,
                detail: format!(
                    "{n} rows committed since the chain began have no batch_id \
                     (written outside the writer)"
                ),
            },
        };
        emit(&f, &mut summary);
    }
    tx.commit().await?;
    Ok(summary)
}

/// Where an expected head comes from.
#[derive(Debug, Clone)]
enum Source {
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
struct Expected {
    heads: BTreeMap<ChainId, BTreeMap<u64, Heads>>,
}

impl Expected {
    fn add(&mut self, chain: ChainId, seq: u64, head: [u8; 32], source: Source) {
        self.heads
            .entry(chain)
            .or_default()
            .entry(seq)
            .or_default()
            .push((head, source));
    }

    /// Checks the checkpoints at `seq` against the ledger's `hash` there.
    fn at(&mut self, chain: ChainId, seq: u64, hash: &[u8; 32], findings: &mut Vec<Finding>) {
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
    fn finish_chain(&mut self, walk: ChainWalk, findings: &mut Vec<Finding>) {
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

    fn chains(&self) -> Vec<ChainId> {
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
fn external(note: &str, key: Option<&VerifierKey>) -> Result<Checkpoint, Finding> {
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
fn table_checkpoint(
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

/// One ledger row of a chain.
#[derive(Debug, Clone, Copy)]
struct Piece {
    chain: ChainId,
    seq: u64,
    batch_id: [u8; 16],
    entry: LedgerEntry,
}

impl Piece {
    fn read(row: &tokio_postgres::Row) -> Result<Piece, tokio_postgres::Error> {
        let bytes32 = |i: usize| -> Result<[u8; 32], tokio_postgres::Error> {
            let b: Option<&[u8]> = row.try_get(i)?;
            // A NULL or short hash reads as zeros: its link breaks.
            Ok(b.and_then(|b| b.try_into().ok()).unwrap_or([0; 32]))
        };
        let seq = row.try_get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as u64;
        let batch_id = row.try_get::<_, Uuid>(2)?.0;
        let sealed_id = row.try_get::<_, Option<Uuid>>(3)?.map_or(batch_id, |u| u.0);
        let sealed_rows = row.try_get::<_, Option<i32>>(4)?.unwrap_or(0);
        Ok(Piece {
            chain: ChainId(row.try_get::<_, Uuid>(0)?.0),
            seq,
            batch_id,
            entry: LedgerEntry {
                seq,
                prev_hash: bytes32(8)?,
                hash: bytes32(9)?,
                digest: bytes32(7)?,
                meta: BatchMeta {
                    batch_id: sealed_id,
                    rows: u32::try_from(sealed_rows).unwrap_or(0),
                    first_ts: row.try_get::<_, Micros>(5)?.0,
                    last_ts: row.try_get::<_, Micros>(6)?.0,
                },
            },
        })
    }
}

/// The ledger rows of one seq: one, or a bisected batch's pieces.
#[derive(Debug)]
struct Group {
    chain: ChainId,
    seq: u64,
    entry: LedgerEntry,
    ids: Vec<[u8; 16]>,
    /// Whether every piece carries the same chain fields.
    agree: bool,
}

impl Group {
    fn new(p: Piece) -> Group {
        Group {
            chain: p.chain,
            seq: p.seq,
            entry: p.entry,
            ids: vec![p.batch_id],
            agree: true,
        }
    }

    fn add(&mut self, p: Piece) {
        self.agree &= p.entry == self.entry;
        self.ids.push(p.batch_id);
    }
}

/// A row's id and row digest, as a [`BatchDigest`] takes them.
type Pair = ([u8; 16], [u8; 32]);

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

/// The prepared statements, the reused buffers, and the orphaned dead
/// letters.
struct Reader {
    rows: tokio_postgres::Statement,
    strays: tokio_postgres::Statement,
    dead: tokio_postgres::Statement,
    hasher: RowHasher,
    /// `(row id, row digest)` of the seq being checked.
    pairs: Vec<Pair>,
    digest: BatchDigest,
    orphans: Vec<Orphan>,
}

impl Reader {
    /// `sealed_dead`: dead letters name their sealed batch (migration
    /// 0008), and are taken by it too.
    async fn new(tx: &Transaction<'_>, sealed_dead: bool) -> Result<Reader, tokio_postgres::Error> {
        let ids = "batch_id = ANY($1::text[]::uuid[])";
        let dead_of = if sealed_dead {
            "batch_id = ANY($1::text[]::uuid[]) OR sealed_id = ANY($1::text[]::uuid[])"
        } else {
            ids
        };
        Ok(Reader {
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
            hasher: RowHasher::new(),
            pairs: Vec::new(),
            digest: BatchDigest::new(),
            orphans: Vec::new(),
        })
    }

    /// Reads the orphaned dead letters (see [`Orphan`]); they are few.
    async fn load_orphans(
        &mut self,
        tx: &Transaction<'_>,
        sealed_dead: bool,
    ) -> Result<(), tokio_postgres::Error> {
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
        for row in tx.query(&orphans, &[]).await? {
            let tuple: &[u8] = row.try_get(1)?;
            let parsed = StoredRow::from_tuple(tuple)
                .map(|r| ((r.id, self.hasher.stored_digest(&r)), r.ts_micros));
            self.orphans.push(Orphan {
                batch_id: row.try_get::<_, Uuid>(0)?.0,
                row: parsed,
                used: false,
            });
        }
        Ok(())
    }

    /// `row_added` for the orphaned dead letters no seq took (their `ts`
    /// not before `skip_before`, whose batches were not checked).
    fn unclaimed(&self, chain: ChainId, skip_before: Option<i64>) -> Vec<Finding> {
        let mut by_batch: BTreeMap<[u8; 16], u64> = BTreeMap::new();
        for o in &self.orphans {
            let skipped = match (o.row, skip_before) {
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

    /// The batch digest of the pairs gathered and `extra` orphans.
    fn digest_with(&mut self, extra: &[usize]) -> Recount {
        for &(id, d) in &self.pairs {
            self.digest.push_digest(id, d);
        }
        for &i in extra {
            let (pair, _) = self.orphans[i].row.unwrap_or((([0; 16], [0; 32]), 0));
            self.digest.push_digest(pair.0, pair.1);
        }
        Recount {
            rows: self.digest.rows(),
            digest: self.digest.finish(),
        }
    }

    /// Checks one seq: its links, its checkpoints and its rows.
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &mut self,
        tx: &Transaction<'_>,
        group: &Group,
        skip_before: Option<i64>,
        dead: &HashSet<[u8; 16]>,
        walk: &mut Option<ChainWalk>,
        expected: &mut Expected,
        summary: &mut VerifySummary,
        findings: &mut Vec<Finding>,
    ) -> Result<(), tokio_postgres::Error> {
        if walk.as_ref().is_none_or(|w| w.chain() != group.chain) {
            if let Some(done) = walk.take() {
                expected.finish_chain(done, findings);
            }
            *walk = Some(ChainWalk::new(group.chain));
            summary.chains += 1;
        }
        summary.batches += 1;
        let entry = &group.entry;
        if !group.agree {
            findings.push(Finding {
                code: FindingCode::BrokenLink,
                chain: group.chain,
                seq: Some(group.seq),
                batch_id: Some(entry.meta.batch_id),
                detail: "the ledger rows of this seq's pieces do not carry the same chain fields"
                    .to_owned(),
            });
        }
        let found = if skip_before.is_some_and(|t| entry.meta.last_ts < t) {
            summary.skipped += 1;
            Recount {
                rows: u64::from(entry.meta.rows),
                digest: entry.digest,
            }
        } else {
            let found = self.recount(tx, group, dead).await?;
            summary.rows += found.rows;
            found
        };
        if let Some(w) = walk.as_mut() {
            w.push(entry, &found, findings);
        }
        expected.at(group.chain, group.seq, &entry.hash, findings);
        Ok(())
    }

    /// Counts and digests a seq's rows and dead letters.
    async fn recount(
        &mut self,
        tx: &Transaction<'_>,
        group: &Group,
        dead: &HashSet<[u8; 16]>,
    ) -> Result<Recount, tokio_postgres::Error> {
        let ids: Vec<String> = group
            .ids
            .iter()
            .map(|id| ChainId(*id).to_string())
            .collect();
        let from = Micros(group.entry.meta.first_ts);
        let to = Micros(group.entry.meta.last_ts);
        let params: [&(dyn ToSql + Sync); 3] = [&ids, &from, &to];
        self.pairs.clear();
        self.rows_of(tx, &self.rows.clone(), &params).await?;
        let sealed = group.entry.meta.batch_id;
        let dead_ids: Vec<String> = group
            .ids
            .iter()
            .chain(std::iter::once(&sealed))
            .filter(|id| dead.contains(*id))
            .map(|id| ChainId(*id).to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !dead_ids.is_empty() {
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
        }
        let meta = group.entry.meta;
        let candidates: Vec<usize> = self
            .orphans
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                !o.used
                    && o.batch_id[..6] == sealed[..6]
                    && o.row
                        .is_some_and(|(_, ts)| (meta.first_ts..=meta.last_ts).contains(&ts))
            })
            .map(|(i, _)| i)
            .collect();
        if ((self.pairs.len() + candidates.len()) as u64) < u64::from(meta.rows) {
            // A row's ts moved out of its batch's window reads as changed.
            self.rows_of(tx, &self.strays.clone(), &params).await?;
        }
        if candidates.is_empty() {
            return Ok(self.digest_with(&[]));
        }
        let intact = |r: &Recount| r.rows == u64::from(meta.rows) && r.digest == group.entry.digest;
        let with = self.digest_with(&candidates);
        if !intact(&with) {
            let without = self.digest_with(&[]);
            if intact(&without) {
                return Ok(without);
            }
        }
        for i in candidates {
            self.orphans[i].used = true;
        }
        Ok(with)
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
            let digest = self.hasher.stored_digest(&stored);
            self.pairs.push((stored.id, digest));
        }
        Ok(())
    }
}

/// A `uuid` as its 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Uuid([u8; 16]);

impl<'a> FromSql<'a> for Uuid {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Uuid(raw.try_into()?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

/// A `timestamptz` as its wire value: microseconds since 2000-01-01 UTC,
/// as the ledger hashes it.
#[derive(Debug, Clone, Copy)]
struct Micros(i64);

impl<'a> FromSql<'a> for Micros {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Micros(i64::from_be_bytes(raw.try_into()?)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

impl ToSql for Micros {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use bytes::BufMut;
        out.put_i64(self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    tokio_postgres::types::to_sql_checked!();
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
