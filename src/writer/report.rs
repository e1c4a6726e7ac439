//! In-band drop reports: after a period with drops, the writer adds one
//! `ringtrail::dropped` row per reason to the batch, so the table itself
//! shows its gaps. The report is appended by the writer straight into the
//! sink's batch, never through the ring, so it cannot be dropped itself.

use crate::clock::unix_nanos_now;
use crate::ring::{DropReason, Ring};
use crate::row::{Field, Row, Value, LEVEL_WARN};
use crate::sink::Sink;
use crate::text::rfc3339;
use crate::uuid7::Uuid7;

/// The target of the in-band rows that report dropped events
/// (`fields`: `count`, `reason`, `from`, `to`).
pub const DROPPED_TARGET: &str = "ringtrail::dropped";

/// What has been reported so far.
pub(crate) struct DropReporter {
    reported: [u64; 3],
    since_nanos: i64,
}

impl DropReporter {
    pub(crate) fn new() -> DropReporter {
        DropReporter {
            reported: [0; 3],
            since_nanos: unix_nanos_now(),
        }
    }

    /// Whether drops happened since the last report.
    pub(crate) fn pending(&self, ring: &Ring) -> bool {
        DropReason::ALL
            .iter()
            .any(|&r| ring.dropped(r) > self.reported[r as usize])
    }

    /// Appends one row per reason with new drops; returns how many rows.
    pub(crate) fn append(&mut self, ring: &Ring, sink: &mut dyn Sink, ids: &mut Uuid7) -> u64 {
        let now = unix_nanos_now();
        let (from, to) = (rfc3339(self.since_nanos), rfc3339(now));
        let mut rows = 0;
        for reason in DropReason::ALL {
            let total = ring.dropped(reason);
            let count = total - self.reported[reason as usize];
            if count == 0 {
                continue;
            }
            self.reported[reason as usize] = total;
            let message = format!("{count} events dropped ({})", reason.as_str());
            let fields = [
                Field {
                    name: "count",
                    value: Value::U64(count),
                },
                Field {
                    name: "reason",
                    value: Value::Str(reason.as_str()),
                },
                Field {
                    name: "from",
                    value: Value::Str(&from),
                },
                Field {
                    name: "to",
                    value: Value::Str(&to),
                },
            ];
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
