//! In-band drop reports: after a period with drops, the writer adds one
//! `ringtrail::dropped` row per reason to the batch, so the table itself
//! shows its gaps. The report is appended by the writer straight into the
//! sink's batch, never through the ring, so it cannot be dropped itself.
//!
//! The reasons are the ring's drop reasons (`ring_full`, `evicted_oldest`,
//! `block_timeout`, `after_shutdown`), plus `lost` (rows of this process
//! that could be neither committed nor spooled), `inherited_lost` (rows
//! of an earlier process's spool that could not be replayed or re-spooled)
//! and `spool_refused` (spool segments not trusted, never replayed: its
//! `count` is of segments, since an untrusted header's row count means
//! nothing).

use crate::contract::{report_fields, DROPPED_TARGET};
use crate::ids::Uuid7;
use crate::ring::{DropReason, Ring};
use crate::row::{Row, LEVEL_WARN};
use crate::sink::Sink;
use crate::time::clock::unix_nanos_now;
use crate::time::rfc3339;
use crate::writer::control::Counters;

/// How many reasons are reported: the ring's, `lost`, `inherited_lost` and
/// `spool_refused`.
const REASONS: usize = DropReason::ALL.len() + 3;

/// The reason of the report of refused spool segments.
const SPOOL_REFUSED: &str = "spool_refused";

/// What has been reported so far.
pub(crate) struct DropReporter {
    reported: [u64; REASONS],
    since_nanos: i64,
}

/// Every reason with its running total.
fn totals(ring: &Ring, counters: &Counters) -> [(&'static str, u64); REASONS] {
    let mut totals = [("", 0); REASONS];
    for (slot, reason) in totals.iter_mut().zip(DropReason::ALL) {
        *slot = (reason.as_str(), ring.dropped(reason));
    }
    totals[REASONS - 3] = ("lost", counters.lost_total());
    totals[REASONS - 2] = ("inherited_lost", counters.inherited_lost());
    totals[REASONS - 1] = (SPOOL_REFUSED, counters.spool_refused());
    totals
}

impl DropReporter {
    pub(crate) fn new() -> DropReporter {
        DropReporter {
            reported: [0; REASONS],
            since_nanos: unix_nanos_now(),
        }
    }

    /// Whether drops happened since the last report.
    pub(crate) fn pending(&self, ring: &Ring, counters: &Counters) -> bool {
        totals(ring, counters)
            .iter()
            .zip(&self.reported)
            .any(|((_, total), reported)| total > reported)
    }

    /// Appends one row per reason with new drops; returns how many rows.
    pub(crate) fn append(
        &mut self,
        ring: &Ring,
        counters: &Counters,
        sink: &mut dyn Sink,
        ids: &mut Uuid7,
    ) -> u64 {
        if !self.pending(ring, counters) {
            return 0;
        }
        let now = unix_nanos_now();
        let (from, to) = (rfc3339(self.since_nanos), rfc3339(now));
        let mut rows = 0;
        for ((reason, total), reported) in
            totals(ring, counters).into_iter().zip(&mut self.reported)
        {
            let count = total.saturating_sub(*reported);
            if count == 0 {
                continue;
            }
            *reported = total;
            let message = match reason {
                SPOOL_REFUSED => format!("{count} spool segments refused ({reason})"),
                _ => format!("{count} events dropped ({reason})"),
            };
            let fields = report_fields(count, reason, &from, &to);
            sink.append_report(&Row {
                ts_unix_nanos: now,
                id: ids.next(now),
                level: LEVEL_WARN,
                target: DROPPED_TARGET,
                message: &message,
                fields: &fields,
                ..Row::default()
            });
            rows += 1;
        }
        self.since_nanos = now;
        rows
    }
}
