//! Tamper evidence: batch digests, a hash-chained ledger and signed
//! checkpoints. Pure building blocks; the writer, the ledger
//! and `ringtrail verify` use them.
//!
//! ```text
//! row      ── canonical tuple ──► row digest      (canonical.rs, json.rs, number.rs)
//! rows     ── ordered by id ────► batch digest    (digest.rs)
//! digest + ledger metadata ─────► link hash       (link.rs), chained by prev_hash
//! chain id, seq, head hash ─────► signed checkpoint (checkpoint.rs, key.rs)
//! ledger + table + checkpoints ─► findings        (finding.rs)
//! ```
//!
//! Every digest is computed from what PostgreSQL stores, never from the
//! bytes sent: a row's canonical tuple is its binary COPY tuple with
//! `fields` in canonical JSON (RFC 8785), which the writer gets from the
//! tuple the encoder just wrote (with the chain on, the encoder writes
//! `fields` in JCS member order, so most tuples need no pass over their
//! JSON: [`digest::BatchDigest::push_canonical`]), and `verify` from the
//! row read back ([`canonical::RowHasher::stored_digest`]); the two agree
//! (`tests/chain_canonical.rs` checks it against a real PostgreSQL on
//! random rows). The writer hashes rows after redaction, as the sink gets
//! them.
//!
//! On the writer, per batch:
//!
//! ```
//! use ringtrail::chain::{canonical::stored_micros, digest::BatchDigest, link::{BatchMeta, Chain, ChainId}};
//! use ringtrail::Row;
//!
//! let mut chain = Chain::new(ChainId([0x42; 16]));
//! let mut digest = BatchDigest::new();
//! let rows = [Row { id: [1; 16], ts_unix_nanos: 1_000, message: "hi", ..Row::default() }];
//! for row in &rows {
//!     digest.push(row); // beside encoder.push_row(row)
//! }
//! let meta = BatchMeta {
//!     batch_id: [9; 16],
//!     rows: rows.len() as u32,
//!     first_ts: stored_micros(rows[0].ts_unix_nanos),
//!     last_ts: stored_micros(rows[0].ts_unix_nanos),
//! };
//! let link = chain.link(&digest.finish(), &meta);
//! // INSERT INTO ringtrail.batches (…, chain_id, seq, digest, prev_hash, hash) in the batch's transaction.
//! assert_eq!(link.seq, 1);
//! ```

//! # Wiring notes (for the writer, the shipper and `verify`)
//!
//! - **Link at seal time, on the writer.** One thread, so one chain needs
//!   no lock across lanes; the [`link::Link`] then travels with the sealed
//!   batch through retries, the spool (its header extension) and replay,
//!   so a spooled batch keeps its seq and digest, and the lanes may commit
//!   out of seq order (`verify` walks by seq).
//! - **Any bytes, same digest.** [`digest::BatchDigest::push_tuple`] gives
//!   the writer's digest from COPY tuples alone (proved in
//!   `tests/chain_canonical.rs`), and the digest does not depend on row
//!   order. So the shipper can recompute a bisected piece's digest, and a
//!   batch's digest can cover its dead letters too: `verify` feeds
//!   `logs WHERE batch_id = X` and `dead_letters WHERE batch_id = X`
//!   (their `tuple` column) into one `BatchDigest`.
//! - **Drop reports are rows** of their batch: push them like any row.
//! - **Ledger columns** the walk needs: `chain_id`, `seq`, `digest`,
//!   `prev_hash`, `hash` beside `batch_id`, `rows`, `first_ts`, `last_ts`
//!   ([`finding::LedgerEntry`]); with `digest` stored, `verify` tells a
//!   changed row (`row_changed`) from an edited ledger row (`broken_link`).
//! - **Reading a batch back**: `SELECT` [`canonical::STORED_COLUMNS`]
//!   `FROM ringtrail.logs WHERE batch_id = $1 ORDER BY id`, each row through
//!   [`canonical::StoredRow::from_pg`].

pub mod canonical;
pub mod checkpoint;
pub mod digest;
pub mod finding;
pub(crate) mod json;
pub mod key;
pub mod link;
pub(crate) mod number;
