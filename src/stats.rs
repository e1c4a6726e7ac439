//! [`Stats`]: what the pipeline has done so far.

use crate::counters::counters;

/// Counters of one ringtrail pipeline, from [`Guard::stats`](crate::Guard::stats).
///
/// Once the producers are quiet and [`Guard::flush`](crate::Guard::flush)
/// has returned, they add up:
///
/// * `events emitted == enqueued + dropped`
/// * `enqueued == written + spooled + dead_lettered + lost`
///
/// After [`Guard::shutdown`](crate::Guard::shutdown), even one that missed
/// its deadline, they add up with `queued == 0`: every event that got a
/// slot was committed, spooled or counted lost, and later ones are in
/// `dropped_after_shutdown`.
///
/// These count events. The in-band `ringtrail::dropped` rows the writer
/// adds are counted apart, in `drop_reports`, so the table holds
/// `written + drop_reports` rows. While events are in flight, `enqueued` is read
/// from two places at slightly different moments and may be off by the
/// events in motion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The JSON-lines sink's own counters ([`Builder::jsonl`](crate::Builder::jsonl));
    /// all zero without one. With PostgreSQL as well, the fields below
    /// count PostgreSQL's deliveries; with the JSON-lines sink alone they
    /// count the file's (`written` the events written, `lost` the events
    /// it missed).
    pub jsonl: JsonlStats,
    /// Events that got a slot in the ring (and were not evicted from it).
    pub enqueued: u64,
    /// Events lost before they were enqueued or while queued: the sum of
    /// `dropped_ring_full`, `dropped_evicted`, `dropped_block_timeout`,
    /// `dropped_after_shutdown` and `audit_dropped`.
    pub dropped: u64,
    /// Audit points (target `ringtrail::audit`) lost because the standard
    /// slots and the audit reserve stayed full for the whole audit wait
    /// ([`Builder::audit_timeout`](crate::Builder::audit_timeout)). Reported
    /// in band with reason `audit_block_timeout`. Plain-log load alone
    /// never causes these: the reserve is theirs.
    pub audit_dropped: u64,
    /// Dropped by `OverflowPolicy::DropNewest` (or `DropOldest` when nothing
    /// could be evicted).
    pub dropped_ring_full: u64,
    /// Evicted from the ring by `OverflowPolicy::DropOldest`.
    pub dropped_evicted: u64,
    /// `OverflowPolicy::Block` waited its whole timeout.
    pub dropped_block_timeout: u64,
    /// Emitted after the pipeline shut down, when nothing drains the ring
    /// any more (whatever the policy, these return at once).
    pub dropped_after_shutdown: u64,
    /// Events committed to the sink (this process's, live or replayed from
    /// its spool).
    pub written: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Records waiting in the ring right now.
    pub queued: u64,
    /// Rows of this process waiting in the spool on disk right now.
    pub spooled: u64,
    /// Rows moved to `ringtrail.dead_letters` because PostgreSQL refused them.
    pub dead_lettered: u64,
    /// Rows that could be neither committed nor spooled (no spool
    /// configured, spool full, or a disk error).
    pub lost: u64,
    /// Rows from an earlier process's spool, replayed and committed.
    pub recovered: u64,
    /// Rows from an earlier process's spool that could be neither replayed
    /// nor spooled again (a corrupt segment, a full disk). Not part of this
    /// process's `enqueued`; reported in band as `inherited_lost`.
    pub inherited_lost: u64,
    /// Spool segments set aside as `.refused` and never replayed: not
    /// authenticated with the spool's key (planted, or copied from another
    /// spool), a link or not a regular file of this user's, or larger than
    /// the spool's `max_bytes`. Counts segments, not rows, and is not part
    /// of `inherited_lost` (an untrusted header's row count means
    /// nothing); a refused segment of this process's own is in `lost`
    /// too. Reported in band with reason `spool_refused`.
    pub spool_refused: u64,
    /// Signed checkpoints that could not be appended to the checkpoint
    /// file ([`Checkpoints::file`](crate::Checkpoints::file)): it is gone,
    /// not writable, a link, or another user's. Each is also one line on
    /// stderr; the checkpoint itself still goes to the table and the
    /// JSON-lines sink.
    pub checkpoint_file_errors: u64,
    /// In-band `ringtrail::dropped` rows added to the log.
    pub drop_reports: u64,
    /// Values or spans of text that redaction replaced before storage, over
    /// every row (the sum of the rows' `redacted` column).
    pub redacted: u64,
}

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
