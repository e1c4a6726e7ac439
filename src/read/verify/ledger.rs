//! The chained ledger: its rows ([`Piece`]), read through a cursor
//! ([`Ledger`]) and gathered by seq ([`Group`]).

use tokio_postgres::Transaction;

use crate::chain::finding::LedgerEntry;
use crate::chain::link::{BatchMeta, ChainId};

use crate::encode::copy::{WireMicros, WireUuid};

/// How many ledger rows one `FETCH` takes.
const FETCH: usize = 1_000;

/// How much of the ledger is chained, and its oldest chain.
pub(super) struct Extent {
    /// Chained ledger rows in all.
    pub(super) rows: u64,
    /// The chain of the first batch: the oldest one.
    pub(super) first_chain: Option<ChainId>,
}

impl Extent {
    pub(super) async fn read(tx: &Transaction<'_>) -> Result<Extent, tokio_postgres::Error> {
        let totals = tx
            .query_one(
                "SELECT count(*) FROM ringtrail.batches WHERE chain_id IS NOT NULL",
                &[],
            )
            .await?;
        let rows = totals.try_get::<_, i64>(0)?.max(0) as u64;
        let first_chain: Option<ChainId> = tx
            .query_opt(
                "SELECT chain_id FROM ringtrail.batches WHERE chain_id IS NOT NULL \
                 ORDER BY first_ts, chain_id LIMIT 1",
                &[],
            )
            .await?
            .map(|r| r.try_get::<_, WireUuid>(0).map(|u| ChainId(u.0)))
            .transpose()?;
        Ok(Extent { rows, first_chain })
    }
}

/// The chained ledger rows, ordered by `(chain_id, seq)`, read through a
/// cursor [`FETCH`] rows at a time and handed out a seq at a time.
pub(super) struct Ledger {
    page: std::vec::IntoIter<tokio_postgres::Row>,
    /// Whether the page is the cursor's last (shorter than a `FETCH`).
    last_page: bool,
    /// The seq being gathered: the piece after a seq is read before that
    /// seq is handed out.
    group: Option<Group>,
    /// Ledger rows read so far.
    pub(super) read: u64,
}

impl Ledger {
    /// Declares the cursor.
    pub(super) async fn open(tx: &Transaction<'_>) -> Result<Ledger, tokio_postgres::Error> {
        tx.batch_execute(
            "DECLARE ringtrail_verify NO SCROLL CURSOR FOR \
             SELECT chain_id, seq, batch_id, sealed_id, sealed_rows, first_ts, last_ts, \
                    digest, prev_hash, hash \
             FROM ringtrail.batches WHERE chain_id IS NOT NULL \
             ORDER BY chain_id, seq, batch_id",
        )
        .await?;
        Ok(Ledger {
            page: Vec::new().into_iter(),
            last_page: false,
            group: None,
            read: 0,
        })
    }

    /// The ledger rows of the next seq; `None` after the last.
    pub(super) async fn next_group(
        &mut self,
        tx: &Transaction<'_>,
    ) -> Result<Option<Group>, tokio_postgres::Error> {
        while let Some(piece) = self.next_piece(tx).await? {
            match &mut self.group {
                Some(g) if g.chain == piece.chain && g.seq == piece.seq => g.add(piece),
                _ => {
                    if let Some(done) = self.group.replace(Group::new(piece)) {
                        return Ok(Some(done));
                    }
                }
            }
        }
        Ok(self.group.take())
    }

    /// Whether another seq follows the one last handed out.
    pub(super) fn more(&self) -> bool {
        self.group.is_some()
    }

    async fn next_piece(
        &mut self,
        tx: &Transaction<'_>,
    ) -> Result<Option<Piece>, tokio_postgres::Error> {
        loop {
            if let Some(row) = self.page.next() {
                let piece = Piece::read(&row)?;
                self.read += 1;
                return Ok(Some(piece));
            }
            if self.last_page {
                return Ok(None);
            }
            let page = tx
                .query(&format!("FETCH {FETCH} FROM ringtrail_verify"), &[])
                .await?;
            self.last_page = page.len() < FETCH;
            self.page = page.into_iter();
        }
    }
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
        let batch_id = row.try_get::<_, WireUuid>(2)?.0;
        let sealed_id = row
            .try_get::<_, Option<WireUuid>>(3)?
            .map_or(batch_id, |u| u.0);
        let sealed_rows = row.try_get::<_, Option<i32>>(4)?.unwrap_or(0);
        Ok(Piece {
            chain: ChainId(row.try_get::<_, WireUuid>(0)?.0),
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
                    first_ts: row.try_get::<_, WireMicros>(5)?.0,
                    last_ts: row.try_get::<_, WireMicros>(6)?.0,
                },
            },
        })
    }
}

/// The ledger rows of one seq: one, or a bisected batch's pieces.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) chain: ChainId,
    pub(super) seq: u64,
    pub(super) entry: LedgerEntry,
    pub(super) ids: Vec<[u8; 16]>,
    /// Whether every piece carries the same chain fields.
    pub(super) agree: bool,
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
