//! The null sink: encodes every batch exactly as the PostgreSQL sink would,
//! then throws the bytes away. For benchmarks of everything but the
//! database, and for dry runs.

use std::time::Instant;

use super::{Outcome, Sink, Wait};
use crate::encode::CopyEncoder;
use crate::Row;

/// Encodes rows into binary COPY and discards each finished batch.
#[derive(Default)]
pub(crate) struct NullSink {
    encoder: CopyEncoder,
    reports: u64,
    done: Outcome,
}

impl Sink for NullSink {
    fn append(&mut self, row: &Row<'_>) {
        self.encoder.push_row(row);
    }
    fn append_report(&mut self, row: &Row<'_>) {
        self.encoder.push_row(row);
        self.reports += 1;
    }
    fn pending_rows(&self) -> usize {
        self.encoder.rows()
    }
    fn pending_bytes(&self) -> usize {
        self.encoder.bytes_len()
    }
    fn commit(&mut self, _deadline: Option<Instant>) {
        let rows = self.encoder.rows() as u64 - std::mem::take(&mut self.reports);
        drop(self.encoder.finish());
        self.done.written += rows;
        self.done.batches += 1;
    }
    fn outcomes(&mut self, _wait: Wait) -> Outcome {
        std::mem::take(&mut self.done)
    }
}
