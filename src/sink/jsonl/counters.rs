//! What the JSON-lines sink has done: [`JsonlStats`] (public, in
//! [`Stats::jsonl`](crate::Stats::jsonl)) and its atomic running totals,
//! from one field list.

use crate::counters::counters;

counters! {
    /// What the JSON-lines sink has done, in [`Stats::jsonl`](crate::Stats::jsonl).
    ///
    /// Once the producers are quiet and a flush has returned,
    /// `written + missed` equals the events that reached the sink (with
    /// PostgreSQL beside it, `enqueued`). Drop-report lines are not events.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct JsonlStats {
        /// Events written to the file or standard output.
        written,
        /// Events the sink missed: its queue was full (a stalled reader, a
        /// slow disk), a write failed, or shutdown came first. Reported in
        /// band by a `ringtrail::dropped` line with reason `jsonl_missed`.
        missed,
        /// Batches written (one `write` each, or one per file when rotating).
        batches,
        /// Bytes written.
        bytes,
        /// Files rotated.
        rotations,
        /// Writes that failed (their events are in `missed`).
        write_errors,
    }
    /// The sink's counters, shared by the writer, the output thread and
    /// [`Guard::stats`](crate::Guard::stats).
    pub(crate) struct JsonlCounters;
}
