//! Several shards at once: every row goes to one of `n` sinks, each with
//! batches, lanes, spool and hash chain of its own, and all rows of one
//! trace go to the same one ([`shard_of`]). So each shard's chain is whole
//! on its own, and a trace can be read and checked on its shard alone.
//!
//! Rows without a `trace_id` have no shard to keep: they go to one shard
//! per batch, the next one at every commit, which spreads them evenly.
//! Drop reports go to shard 0.
//!
//! The writer sees one sink: a batch ends (size, age, an ERROR, a flush)
//! for every shard at once, and the size that ends it is the fullest
//! shard's, so no shard's batch outgrows the limit.

use super::{Outcome, Sink, Wait};
use crate::row::Row;
use crate::transport::shard_of;

/// `n` sinks, one per shard.
pub(crate) struct Sharded {
    shards: Vec<Box<dyn Sink>>,
    /// Where rows without a trace go in the batch in progress.
    untraced: usize,
}

impl Sharded {
    pub(crate) fn new(shards: Vec<Box<dyn Sink>>) -> Sharded {
        assert!(!shards.is_empty(), "at least one shard");
        Sharded {
            shards,
            untraced: 0,
        }
    }

    fn shard(&self, row: &Row<'_>) -> usize {
        match row.context[0] {
            Some(trace) => shard_of(trace, self.shards.len() as u32) as usize,
            None => self.untraced,
        }
    }

    fn each(&mut self, mut f: impl FnMut(&mut dyn Sink) -> Outcome) -> Outcome {
        let mut out = Outcome::default();
        for shard in &mut self.shards {
            out.add(f(shard.as_mut()));
        }
        out
    }
}

impl Sink for Sharded {
    fn append(&mut self, row: &Row<'_>) {
        let shard = self.shard(row);
        self.shards[shard].append(row);
    }

    fn append_report(&mut self, row: &Row<'_>) {
        self.shards[0].append_report(row);
    }

    fn pending_rows(&self) -> usize {
        self.shards.iter().map(|s| s.pending_rows()).sum()
    }

    fn pending_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.pending_bytes())
            .max()
            .unwrap_or(0)
    }

    fn commit(&mut self) {
        for shard in &mut self.shards {
            shard.commit();
        }
        self.untraced = (self.untraced + 1) % self.shards.len();
    }

    fn outcomes(&mut self, wait: Wait) -> Outcome {
        self.each(|s| s.outcomes(wait))
    }

    fn take_checkpoint_notes(&mut self) -> Vec<String> {
        self.shards
            .iter_mut()
            .flat_map(|s| s.take_checkpoint_notes())
            .collect()
    }

    fn close(&mut self) -> Outcome {
        self.each(|s| s.close())
    }
}
