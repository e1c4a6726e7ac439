//! The null sink: encodes every batch exactly as the PostgreSQL sink would,
//! then throws the bytes away. For benchmarks of everything but the
//! database, and for dry runs.

use super::Sink;
use crate::encode::CopyEncoder;
use crate::{Result, Row};

/// Encodes rows into binary COPY and discards each finished batch.
#[derive(Default)]
pub(crate) struct NullSink {
    encoder: CopyEncoder,
}

impl Sink for NullSink {
    fn append(&mut self, row: &Row<'_>) {
        self.encoder.push_row(row);
    }
    fn pending_rows(&self) -> usize {
        self.encoder.rows()
    }
    fn pending_bytes(&self) -> usize {
        self.encoder.bytes_len()
    }
    fn commit(&mut self) -> Result<()> {
        drop(self.encoder.finish());
        Ok(())
    }
    fn discard(&mut self) -> usize {
        let rows = self.encoder.rows();
        self.encoder.clear();
        rows
    }
}
