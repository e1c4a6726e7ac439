//! The wire names ringtrail writes into the log itself: targets and field
//! names that tools downstream (queries, SIEM rules, the CLI) match on.
//! Each is spelled here once; the audit trace's own contract is
//! [`audit::contract`](crate::audit::contract).
//!
//! ```
//! use ringtrail::contract::{report_fields, DROPPED_TARGET};
//! assert_eq!(DROPPED_TARGET, "ringtrail::dropped");
//! let fields = report_fields(3, "ring_full", "2026-12-07T00:00:00Z", "2026-12-07T00:00:01Z");
//! assert_eq!(fields.map(|f| f.name), ["count", "reason", "from", "to"]);
//! ```

use crate::row::{Field, Value};

/// The target of the in-band rows that report dropped events
/// (`fields`: `count`, `reason`, `from`, `to`).
pub const DROPPED_TARGET: &str = "ringtrail::dropped";

/// The target of the JSON line that carries a signed checkpoint.
pub const CHECKPOINT_TARGET: &str = "ringtrail::checkpoint";

/// The `reason` of the in-band line that reports events the JSON-lines
/// sink missed.
pub const MISSED_REASON: &str = "jsonl_missed";

/// The suffix of the field that records a cut text's original length, e.g.
/// `message.truncated_from`.
pub const TRUNCATED_FROM: &str = ".truncated_from";

/// The field that keeps a clamped event's original time, as RFC 3339 UTC
/// with microseconds (see [`Builder::clamp_window`](crate::Builder::clamp_window)).
pub const TS_ORIGINAL: &str = "ts.original";

/// The fields of an in-band [`DROPPED_TARGET`] row: `count` events lost
/// for `reason` between `from` and `to` (RFC 3339). The writer's reports
/// and the JSON-lines sink's [`MISSED_REASON`] lines share them.
pub fn report_fields<'a>(
    count: u64,
    reason: &'a str,
    from: &'a str,
    to: &'a str,
) -> [Field<'a>; 4] {
    [
        Field {
            name: "count",
            value: Value::U64(count),
        },
        Field {
            name: "reason",
            value: Value::Str(reason),
        },
        Field {
            name: "from",
            value: Value::Str(from),
        },
        Field {
            name: "to",
            value: Value::Str(to),
        },
    ]
}
