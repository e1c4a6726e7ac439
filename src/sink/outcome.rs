//! The vocabulary of the [`Sink`](super::Sink) trait: where a commit's rows
//! went ([`Outcome`]), their running totals ([`OutcomeTotals`]), why rows
//! were not committed ([`BatchFailure`]), and whether to wait for batches
//! in flight ([`Wait`]).
//!
//! The counts are declared once, in the list below: a new one is one line
//! here, one field of [`Stats`](crate::Stats) and one series in the
//! metrics table.

use std::sync::Arc;

use crate::counters::counters;
use crate::{Error, Fate};

counters! {
    /// Where the events of one `commit`, or of background work such as a
    /// spool replay, ended up (drop reports are not counted).
    #[derive(Debug, Default, Clone)]
    pub(crate) struct Outcome {
        /// Rows of live batches committed.
        written,
        /// Transactions committed.
        batches,
        /// Rows written to the spool.
        spooled,
        /// Rows of this process's spool replayed and committed.
        unspooled,
        /// Rows from an earlier process's spool replayed and committed.
        recovered,
        /// Rows moved to `ringtrail.dead_letters`.
        dead_lettered,
        /// Rows that could be neither written nor spooled.
        lost,
        /// Rows counted lost earlier whose batch turned out committed (it
        /// is counted in `written` too).
        resolved,
        /// Rows from an earlier process's spool that could be neither
        /// committed nor spooled again.
        inherited_lost,
        /// Spool segments set aside as `.refused`, never replayed: not
        /// authenticated with the spool's key, not a regular file of this
        /// user's, or larger than the spool (segments, not rows).
        spool_refused,
        /// Checkpoints that could not be appended to the checkpoint file
        /// (checkpoints, not rows).
        checkpoint_file_errors,
    }
    + {
        /// Why rows were not committed, when they were not.
        failure: Option<BatchFailure>,
    }
    /// The running totals of every [`Outcome`], written by the writer
    /// thread only.
    pub(crate) struct OutcomeTotals;
}

impl Outcome {
    /// Adds `other`'s counts; its failure, if any, replaces this one's.
    pub(crate) fn add(&mut self, other: Outcome) {
        self.add_counts(&other);
        if other.failure.is_some() {
            self.failure = other.failure;
        }
    }

    /// Nothing happened.
    pub(crate) fn is_empty(&self) -> bool {
        self.counts_are_zero() && self.failure.is_none()
    }
}

/// Why the rows of a batch were not committed, and where they went.
#[derive(Debug, Clone)]
pub(crate) struct BatchFailure {
    pub(crate) fate: Fate,
    pub(crate) cause: Arc<Error>,
}

impl BatchFailure {
    pub(crate) fn new(fate: Fate, cause: Error) -> BatchFailure {
        BatchFailure {
            fate,
            cause: Arc::new(cause),
        }
    }

    /// The error a flush that covered this batch returns.
    pub(crate) fn to_error(&self) -> Error {
        Error::Write {
            fate: self.fate,
            source: self.cause.clone(),
        }
    }
}

/// Whether [`Sink::outcomes`](super::Sink::outcomes) waits for the batches
/// in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Report what is finished now.
    No,
    /// Until every batch handed over is finished.
    All,
}
