//! The null sink: encodes every batch exactly as the PostgreSQL sink would,
//! then throws the bytes away. For benchmarks of everything but the
//! database, and for dry runs.

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
    fn commit(&mut self) {
        let rows = self.encoder.rows() as u64 - std::mem::take(&mut self.reports);
        drop(self.encoder.finish());
        self.done.written += rows;
        self.done.batches += 1;
    }
    fn outcomes(&mut self, _wait: Wait) -> Outcome {
        std::mem::take(&mut self.done)
    }
    fn close(&mut self) -> Outcome {
        std::mem::take(&mut self.done)
    }
}

/// Tests: a null sink whose `commit` panics.
#[cfg(test)]
pub(crate) struct Panicking;

#[cfg(test)]
impl Sink for Panicking {
    fn append(&mut self, _row: &Row<'_>) {}
    fn append_report(&mut self, _row: &Row<'_>) {}
    fn pending_rows(&self) -> usize {
        0
    }
    fn pending_bytes(&self) -> usize {
        0
    }
    fn commit(&mut self) {}
    fn outcomes(&mut self, _wait: Wait) -> Outcome {
        panic!("a sink that panics, for tests")
    }
    fn close(&mut self) -> Outcome {
        Outcome::default()
    }
}
