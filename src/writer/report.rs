//! In-band drop reports: after a period with drops, the writer adds one
//! `ringtrail::dropped` row per reason to the batch, so the table itself
//! shows its gaps. The report is appended by the writer straight into the
//! sink's batch, never through the ring, so it cannot be dropped itself.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::ring::{DropReason, Ring};
use crate::row::{Field, Row, Value, LEVEL_WARN};
use crate::sink::Sink;
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
            since_nanos: now_nanos(),
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
        let now = now_nanos();
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

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Formats Unix nanoseconds as RFC 3339 UTC with microseconds, e.g.
/// `2026-11-30T01:37:27.123456Z`.
pub(crate) fn rfc3339(unix_nanos: i64) -> String {
    let micros = unix_nanos.div_euclid(1_000);
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        micros.rem_euclid(1_000_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            rfc3339(1_764_466_647_123_456_789),
            "2025-11-30T01:37:27.123456Z"
        );
        assert_eq!(rfc3339(-1_000), "1969-12-31T23:59:59.999999Z");
    }
}
