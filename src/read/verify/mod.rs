//! `ringtrail verify`: checks that the tables still hold what the writer
//! committed, from the hash-chained batch ledger, the
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
//!    notes of the `Checkpoints::file` the writer appends to), with the trusted key: the
//!    database must still hold each one's head at its seq. This is what
//!    catches a truncated tail (the newest batches deleted with their
//!    ledger and checkpoint rows) and a chain recomputed consistently
//!    without the key.
//! 5. **Rows outside any batch.** Rows whose `batch_id` names no chained
//!    ledger row (only a chained writer sets it), and rows whose
//!    `batch_id` is NULL (inserted by hand), whatever their `ts`, are
//!    `row_added` (their chain: the oldest one).
//! 6. **Every retention entry**: a row of
//!    `ringtrail.retention_log` that no real retention can have written
//!    (its partition still attached, its range still held by another
//!    partition, or ending in the future) is `retention_unproven`, and
//!    counts for nothing.
//! 7. **Anchoring**, with a trusted key ([`VerifyOptions::public_key`],
//!    or the key `--checkpoints` is checked with): a chain no checkpoint
//!    signed by that key names is `unanchored_chain` (anyone who can
//!    insert ledger rows can compute a self-consistent chain), and the
//!    batches of a chain after the newest such checkpoint are
//!    `unsigned_tail`.
//!
//! No entry of `ringtrail.retention_log` makes verify skip a batch's
//! rows: they are always read. A batch found short whose window overlaps
//! a range retention is proven to have dropped, and none of whose rows
//! found lies in such a range, lost its rows (all, or those on one side
//! of a dropped partition's bound) to retention: it is counted in
//! [`VerifySummary::skipped_retention`], not reported. A batch whose
//! `last_ts` is before [`VerifyOptions::since`] is outside the window
//! asked for ([`VerifySummary::skipped_since`]): its rows are not read.
//! The links of both are walked.
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
//! `crates/cli/tests/verify.rs` `speed_on_a_million_rows`): 1.74 s, about 573,000
//! rows/s, peak RSS 6.6 MiB (December 2026). Each row is read once (a `ts` range per
//! batch, BRIN and partition pruning) and hashed once: about the speed of
//! `ringtrail export`.
//!
//! [`StoredRow::from_tuple`]: crate::chain::canonical::StoredRow::from_tuple
//! [`BatchDigest`]: crate::chain::digest::BatchDigest

mod checkpoints;
mod ledger;
mod legacy;
mod retention;
mod rows;

use std::time::SystemTime;

use tokio_postgres::{Client, Transaction};

use crate::chain::checkpoint;
use crate::chain::finding::{ChainWalk, Finding, FindingCode, Recount};
use crate::chain::key::VerifierKey;
use crate::chain::link::ChainId;
use crate::encode::copy::{WireMicros, WireUuid, PG_EPOCH_UNIX_MICROS};

use self::checkpoints::{external, table_checkpoint, Expected, Source};
use self::ledger::{Extent, Group, Ledger};
use self::retention::Dropped;
use self::rows::{DeadLetters, Reader};

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
    /// Batches whose rows were not checked: `skipped_since +
    /// skipped_retention`.
    pub skipped: u64,
    /// Batches whose rows were not read: they ended before
    /// [`VerifyOptions::since`].
    pub skipped_since: u64,
    /// Batches whose rows were read but could not be checked against
    /// their digest: some or all of them were in partitions retention is
    /// proven to have dropped (see [`FindingCode::RetentionUnproven`]).
    pub skipped_retention: u64,
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

    /// Adds `other`'s counts to these: the summary of two databases
    /// verified one after the other (the shards of a
    /// [`cluster`](super::cluster)).
    ///
    /// ```
    /// use ringtrail::read::VerifySummary;
    /// let mut a = VerifySummary { chains: 1, batches: 3, rows: 30, ..VerifySummary::default() };
    /// a.merge(&VerifySummary { chains: 2, batches: 1, findings: 1, ..VerifySummary::default() });
    /// assert_eq!((a.chains, a.batches, a.rows, a.findings), (3, 4, 30, 1));
    /// assert!(!a.clean());
    /// ```
    pub fn merge(&mut self, other: &VerifySummary) {
        // Every field named: a new count fails to compile until it is summed.
        let VerifySummary {
            chains,
            batches,
            skipped,
            skipped_since,
            skipped_retention,
            rows,
            checkpoints,
            external_checkpoints,
            findings,
        } = *other;
        self.chains += chains;
        self.batches += batches;
        self.skipped += skipped;
        self.skipped_since += skipped_since;
        self.skipped_retention += skipped_retention;
        self.rows += rows;
        self.checkpoints += checkpoints;
        self.external_checkpoints += external_checkpoints;
        self.findings += findings;
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
    on_finding: impl FnMut(&Finding),
    on_progress: impl FnMut(&Progress),
) -> crate::Result<VerifySummary> {
    Verifier {
        options,
        summary: VerifySummary::default(),
        expected: Expected::default(),
        walk: None,
        tail: Tail::default(),
        findings: Vec::new(),
        progress: Progress::default(),
        on_finding,
        on_progress,
    }
    .run(client)
    .await
}

/// One run of [`verify()`]: what it has read and found so far, and where
/// its findings go.
struct Verifier<'o, F, P> {
    options: &'o VerifyOptions,
    summary: VerifySummary,
    /// Heads the checkpoints say the ledger has, not yet met by the walk.
    expected: Expected,
    /// The chain being walked.
    walk: Option<ChainWalk>,
    /// The batches of the chain being walked past its newest trusted
    /// checkpoint: the first one's seq, how many, their rows.
    tail: Tail,
    /// Findings not handed on yet.
    findings: Vec<Finding>,
    progress: Progress,
    on_finding: F,
    on_progress: P,
}

impl<F: FnMut(&Finding), P: FnMut(&Progress)> Verifier<'_, F, P> {
    /// The phases in order: all but the external checkpoints in one
    /// snapshot.
    async fn run(mut self, client: &mut Client) -> crate::Result<VerifySummary> {
        // External checkpoints first, before the snapshot (see the module docs).
        self.external_checkpoints();
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        self.table_checkpoints(&tx).await?;
        let since = self
            .options
            .since
            .map(|t| crate::time::micros(t) - PG_EPOCH_UNIX_MICROS);
        let (dropped, unproven) = Dropped::read(&tx).await?;
        let dead = DeadLetters::read(&tx).await?;
        let extent = Extent::read(&tx).await?;
        let chain = extent.first_chain.unwrap_or(ChainId([0; 16]));
        for mut f in unproven {
            f.chain = chain;
            self.emit(&f);
        }
        self.progress.ledger_rows = extent.rows;
        let mut reader = Reader::new(&tx, dead, since, dropped).await?;
        self.walk_ledger(&tx, &mut reader).await?;
        // Orphaned dead letters from before migration 0008 no seq took.
        for f in reader.unclaimed(chain) {
            self.emit(&f);
        }
        self.unbatched_rows(&tx, chain, since).await?;
        tx.commit().await?;
        Ok(self.summary)
    }

    /// Opens the external checkpoints' notes with the trusted key, into
    /// `expected`.
    fn external_checkpoints(&mut self) {
        let options = self.options;
        let Some((name, text)) = &options.checkpoints else {
            return;
        };
        for note in checkpoint::split_notes(text) {
            self.summary.external_checkpoints += 1;
            match external(note, options.public_key.as_ref()) {
                Ok(cp) => {
                    self.expected.anchor(cp.chain, cp.seq);
                    self.expected
                        .add(cp.chain, cp.seq, cp.head, Source::File(name.clone()));
                }
                Err(f) => self.emit(&f),
            }
        }
    }

    /// Checks every row of `ringtrail.checkpoints`, adding the heads of
    /// those whose note verifies to `expected`.
    async fn table_checkpoints(&mut self, tx: &Transaction<'_>) -> crate::Result<()> {
        for row in tx
            .query(
                "SELECT chain_id, seq, head, note, public_key FROM ringtrail.checkpoints \
                 ORDER BY chain_id, seq",
                &[],
            )
            .await?
        {
            self.summary.checkpoints += 1;
            let chain = ChainId(row.try_get::<_, WireUuid>(0)?.0);
            let seq = row.try_get::<_, i64>(1)?.max(0) as u64;
            let head: &[u8] = row.try_get(2)?;
            let note: &str = row.try_get(3)?;
            let stored_key: Option<&str> = row.try_get(4)?;
            let options = self.options;
            if let Some(f) = table_checkpoint(
                chain,
                seq,
                head,
                note,
                stored_key,
                options,
                &mut self.expected,
            ) {
                self.emit(&f);
            }
        }
        Ok(())
    }

    /// Walks the ledger seq by seq, then ends the last chain's walk and
    /// those of the chains only checkpoints know.
    async fn walk_ledger(
        &mut self,
        tx: &Transaction<'_>,
        reader: &mut Reader,
    ) -> crate::Result<()> {
        let mut ledger = Ledger::open(tx).await?;
        while let Some(group) = ledger.next_group(tx).await? {
            self.check(tx, reader, &group).await?;
            // After the last seq, once the walks are ended.
            if ledger.more() {
                self.flush();
                self.report_progress(ledger.read);
            }
        }
        if let Some(w) = self.walk.take() {
            self.end_chain(w);
        }
        // Chains only checkpoints know: every batch of them is gone.
        for chain in self.expected.chains() {
            self.summary.chains += 1;
            self.expected
                .finish_chain(ChainWalk::new(chain), &mut self.findings);
        }
        self.flush();
        self.report_progress(ledger.read);
        Ok(())
    }

    /// Checks one seq: its links, its checkpoints and its rows.
    async fn check(
        &mut self,
        tx: &Transaction<'_>,
        reader: &mut Reader,
        group: &Group,
    ) -> crate::Result<()> {
        self.enter_chain(group.chain);
        self.summary.batches += 1;
        let entry = &group.entry;
        if !group.agree {
            self.findings.push(Finding {
                code: FindingCode::BrokenLink,
                chain: group.chain,
                seq: Some(group.seq),
                batch_id: Some(entry.meta.batch_id),
                detail: "the ledger rows of this seq's pieces do not carry the same chain fields"
                    .to_owned(),
            });
        }
        let found = self.found_rows(tx, reader, group).await?;
        if self
            .expected
            .anchored(group.chain)
            .is_none_or(|newest| group.seq > newest)
        {
            self.tail.add(group.seq, entry.meta.rows);
        }
        if let Some(w) = self.walk.as_mut() {
            w.push(entry, &found, &mut self.findings);
        }
        self.expected
            .at(group.chain, group.seq, &entry.hash, &mut self.findings);
        Ok(())
    }

    /// Starts the walk of `chain` unless it is the one being walked,
    /// ending the previous one.
    fn enter_chain(&mut self, chain: ChainId) {
        if self.walk.as_ref().is_none_or(|w| w.chain() != chain) {
            if let Some(done) = self.walk.take() {
                self.end_chain(done);
            }
            self.walk = Some(ChainWalk::new(chain));
            self.summary.chains += 1;
        }
    }

    /// Ends the walk of a chain: the checkpoints past its end, and, with
    /// a trusted key, whether a checkpoint of that key covers it
    /// (`unanchored_chain`, `unsigned_tail`).
    fn end_chain(&mut self, walk: ChainWalk) {
        let chain = walk.chain();
        let tail = std::mem::take(&mut self.tail);
        self.expected.finish_chain(walk, &mut self.findings);
        if self.options.public_key.is_none() || tail.batches == 0 {
            return;
        }
        let (code, detail) = match self.expected.anchored(chain) {
            None => (
                FindingCode::UnanchoredChain,
                format!(
                    "no checkpoint signed by the trusted key covers this chain: its {} ({}) \
                     could have been written by anyone able to insert ledger rows",
                    count(tail.batches, "batch", "batches"),
                    count(tail.rows, "row", "rows"),
                ),
            ),
            Some(newest) => (
                FindingCode::UnsignedTail,
                format!(
                    "{} ({}) after seq {newest}, the newest checkpoint signed by the trusted \
                     key, are covered by none (a writer still running, or one that stopped \
                     before its last checkpoint, or batches appended by hand)",
                    count(tail.batches, "batch", "batches"),
                    count(tail.rows, "row", "rows"),
                ),
            ),
        };
        self.findings.push(Finding {
            code,
            chain,
            seq: Some(tail.first_seq),
            batch_id: None,
            detail,
        });
    }

    /// A seq's rows as found, or as the ledger says when they are skipped.
    async fn found_rows(
        &mut self,
        tx: &Transaction<'_>,
        reader: &mut Reader,
        group: &Group,
    ) -> crate::Result<Recount> {
        let entry = &group.entry;
        let as_committed = Recount {
            rows: u64::from(entry.meta.rows),
            digest: entry.digest,
        };
        if reader.skips(entry) {
            self.summary.skipped += 1;
            self.summary.skipped_since += 1;
            return Ok(as_committed);
        }
        let found = reader.recount(tx, group).await?;
        if found != as_committed && reader.lost_to_retention(entry, &found) {
            self.summary.skipped += 1;
            self.summary.skipped_retention += 1;
            return Ok(as_committed);
        }
        self.summary.rows += found.rows;
        Ok(found)
    }

    /// Rows no chained batch accounts for, from `since` on (at any time
    /// without it): a row naming a batch the chained ledger lacks (only a
    /// chained writer sets `batch_id`), and a row without a `batch_id`
    /// (inserted by hand), whatever its time.
    async fn unbatched_rows(
        &mut self,
        tx: &Transaction<'_>,
        chain: ChainId,
        since: Option<i64>,
    ) -> crate::Result<()> {
        let from = WireMicros(since.unwrap_or(i64::MIN)); // i64::MIN is -infinity
        for row in tx
            .query(
                "SELECT batch_id, count(*) FROM ringtrail.logs l \
                 WHERE ts >= $1 AND (batch_id IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM ringtrail.batches b \
                     WHERE b.batch_id = l.batch_id AND b.chain_id IS NOT NULL)) \
                 GROUP BY batch_id ORDER BY batch_id NULLS FIRST",
                &[&from],
            )
            .await?
        {
            let batch: Option<WireUuid> = row.try_get(0)?;
            let n = row.try_get::<_, i64>(1)?.max(0) as u64;
            let f = match batch {
                Some(b) => crate::chain::finding::unknown_batch(chain, b.0, n),
                None => Finding {
                    code: FindingCode::RowAdded,
                    chain,
                    seq: None,
                    batch_id: None,
                    detail: format!(
                        "{} no batch_id: written outside the writer",
                        count(n, "row has", "rows have")
                    ),
                },
            };
            self.emit(&f);
        }
        Ok(())
    }

    /// Hands one finding on.
    fn emit(&mut self, f: &Finding) {
        self.summary.findings += 1;
        (self.on_finding)(f);
    }

    /// Hands on the findings gathered.
    fn flush(&mut self) {
        for f in self.findings.drain(..) {
            self.summary.findings += 1;
            (self.on_finding)(&f);
        }
    }

    /// Reports where the walk is: `ledger_done` ledger rows read.
    fn report_progress(&mut self, ledger_done: u64) {
        self.progress.ledger_done = ledger_done;
        self.progress.rows = self.summary.rows;
        (self.on_progress)(&self.progress);
    }
}

/// The batches of a chain past its newest trusted checkpoint.
#[derive(Debug, Default)]
struct Tail {
    first_seq: u64,
    batches: u64,
    rows: u64,
}

impl Tail {
    fn add(&mut self, seq: u64, rows: u32) {
        if self.batches == 0 {
            self.first_seq = seq;
        }
        self.batches += 1;
        self.rows += u64::from(rows);
    }
}

/// `1 row`, `2 rows`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
