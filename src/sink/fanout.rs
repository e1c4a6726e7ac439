//! Two sinks at once: PostgreSQL (or the null sink) and JSON lines. Every
//! row goes to both; neither waits for the other.
//!
//! The first sink's outcomes are the pipeline's (`Stats::written`,
//! `lost`…, and what a flush reports); the JSON-lines sink keeps its own
//! counters (`Stats::jsonl`) and reports its misses in its own stream. So
//! a PostgreSQL outage never fails a write to the file, and a stalled file
//! never fails a flush: at worst a flush waits the stall timeout once.

use super::jsonl::JsonlSink;
use super::{Outcome, Sink, Wait};
use crate::Row;

/// A sink and a JSON-lines sink beside it.
pub(crate) struct Fanout {
    first: Box<dyn Sink>,
    lines: JsonlSink,
}

impl Fanout {
    pub(crate) fn new(first: Box<dyn Sink>, lines: JsonlSink) -> Fanout {
        Fanout { first, lines }
    }
}

impl Sink for Fanout {
    fn append(&mut self, row: &Row<'_>) {
        self.first.append(row);
        self.lines.append(row);
    }

    fn append_report(&mut self, row: &Row<'_>) {
        self.first.append_report(row);
        self.lines.append_report(row);
    }

    fn pending_rows(&self) -> usize {
        self.first.pending_rows()
    }

    fn pending_bytes(&self) -> usize {
        // The batch limit is the database's; the lines ride along.
        self.first.pending_bytes()
    }

    fn commit(&mut self) {
        self.first.commit();
        // A checkpoint the first sink just signed rides in this batch of
        // lines: the SIEM keeps a copy the database's administrator
        // cannot reach.
        for note in self.first.take_checkpoint_notes() {
            self.lines.append_checkpoint(&note);
        }
        self.lines.commit();
    }

    fn outcomes(&mut self, wait: Wait) -> Outcome {
        // The lines' own outcome lives in their counters.
        let _ = self.lines.outcomes(wait);
        self.first.outcomes(wait)
    }

    fn close(&mut self) -> Outcome {
        // Both wind down at once: the file's thread writes its queue while
        // the first sink finishes its batches in flight.
        let outcome = self.first.close();
        for note in self.first.take_checkpoint_notes() {
            self.lines.append_checkpoint(&note);
        }
        self.lines.commit();
        self.lines.begin_close();
        let _ = self.lines.finish_close();
        outcome
    }
}
