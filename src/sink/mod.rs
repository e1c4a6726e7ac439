//! Sinks: where batches go. The writer decides *when* a batch ends; a sink
//! decides *how* rows are encoded and shipped, and what happens when
//! shipping fails.
//!
//! A sink is driven from the writer thread only. `append` encodes one
//! [`Row`] into the batch in progress (no I/O). `commit` hands the batch
//! over for shipping, and `outcomes` reports where its rows went: every row
//! ends committed, spooled to disk, dead-lettered or counted lost, never
//! silently dropped.
//!
//! This boundary is where future stages plug in without touching the
//! writer: a JSON-lines sink beside PostgreSQL is a second sink; redaction
//! and the batch hash chain see every `Row` on its way to `append`.

mod batch;
mod null;
mod postgres;
mod retry;
mod shipper;
mod spool;

pub(crate) use null::NullSink;
pub(crate) use postgres::PostgresSink;
pub(crate) use shipper::{PostgresConfig, SpoolConfig};

use std::time::Instant;

use crate::Row;

/// Where the events of one `commit` or `maintain` call ended up (drop
/// reports are not counted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Rows of live batches committed.
    pub(crate) written: u64,
    /// Transactions committed.
    pub(crate) batches: u64,
    /// Rows written to the spool.
    pub(crate) spooled: u64,
    /// Rows of this process's spool replayed and committed.
    pub(crate) unspooled: u64,
    /// Rows from an earlier process's spool replayed and committed.
    pub(crate) recovered: u64,
    /// Rows moved to `ringtrail.dead_letters`.
    pub(crate) dead_lettered: u64,
    /// Rows that could be neither written nor spooled.
    pub(crate) lost: u64,
    /// Why rows were not committed, when they were not.
    pub(crate) error: Option<String>,
}

impl Outcome {
    pub(crate) fn add(&mut self, other: Outcome) {
        self.written += other.written;
        self.batches += other.batches;
        self.spooled += other.spooled;
        self.unspooled += other.unspooled;
        self.recovered += other.recovered;
        self.dead_lettered += other.dead_lettered;
        self.lost += other.lost;
        if other.error.is_some() {
            self.error = other.error;
        }
    }
}

/// A destination for batches of rows.
pub(crate) trait Sink: Send {
    /// Encodes `row` into the batch in progress. Never fails: encoders map
    /// every value to something the destination accepts.
    fn append(&mut self, row: &Row<'_>);
    /// Encodes an in-band drop report. It is a row like any other, but not
    /// an event: the outcome's counts leave it out.
    fn append_report(&mut self, row: &Row<'_>);
    /// Rows in the batch in progress.
    fn pending_rows(&self) -> usize;
    /// Encoded bytes in the batch in progress.
    fn pending_bytes(&self) -> usize;
    /// Seals the batch in progress and ships it, retrying until `deadline`
    /// at the latest. May return before the batch is shipped; its outcome
    /// then comes from a later [`outcomes`](Sink::outcomes).
    fn commit(&mut self, deadline: Option<Instant>);
    /// Where the rows of finished batches (and of background work such as
    /// spool replay) went, since the last call. With `wait_until:
    /// Some(deadline)`, first waits until every committed batch is finished
    /// (or the deadline, if any, passes).
    fn outcomes(&mut self, wait_until: Option<Option<Instant>>) -> Outcome;
}
