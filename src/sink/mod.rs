//! Sinks: where batches go. The writer decides *when* a batch ends; a sink
//! decides *how* rows are encoded and shipped.
//!
//! A sink is driven from the writer thread only:
//! `append` encodes one [`Row`] into the batch in progress (no I/O), and
//! `commit` ships the batch. If `commit` fails, the batch stays intact, so
//! the writer can retry it or discard it; the sink never half-ships.
//!
//! This boundary is where future stages plug in without touching the
//! writer: a JSON-lines sink beside PostgreSQL is a second sink; redaction
//! and the batch hash chain see every `Row` on its way to `append`.

mod null;
mod postgres;

pub(crate) use null::NullSink;
pub(crate) use postgres::{PostgresConfig, PostgresSink};

use crate::{Result, Row};

/// A destination for batches of rows.
pub(crate) trait Sink: Send {
    /// Encodes `row` into the batch in progress. Never fails: encoders map
    /// every value to something the destination accepts.
    fn append(&mut self, row: &Row<'_>);
    /// Rows in the batch in progress.
    fn pending_rows(&self) -> usize;
    /// Encoded bytes in the batch in progress.
    fn pending_bytes(&self) -> usize;
    /// Ships the batch durably. On error the batch is kept for a retry.
    fn commit(&mut self) -> Result<()>;
    /// Drops the batch in progress and returns how many rows it held.
    fn discard(&mut self) -> usize;
}
