//! [`Stats`] through the [`metrics`](https://docs.rs/metrics) facade, behind
//! the `metrics` feature: every counter as a `ringtrail_*` counter or
//! gauge, so whichever exporter the application installs (Prometheus,
//! StatsD, OpenTelemetry) picks them up.
//!
//! The writer thread publishes them about once a second, and after every
//! completed flush; nothing runs on the caller's thread. Counters are set
//! to the pipeline's running totals (`Counter::absolute`), so a scrape
//! always equals [`Guard::stats`](crate::Guard::stats) as of the last
//! publish. Every series carries the label `pipeline`, the
//! [`Builder::service_name`](crate::Builder::service_name) (`ringtrail`
//! without one), so two pipelines in one process stay apart.
//!
//! | series | kind | from |
//! |---|---|---|
//! | `ringtrail_events_enqueued_total` | counter | `enqueued` |
//! | `ringtrail_events_dropped_total{reason}` | counter | `dropped_ring_full` (`ring_full`), `dropped_evicted` (`evicted_oldest`), `dropped_block_timeout` (`block_timeout`), `dropped_after_shutdown` (`after_shutdown`), `audit_dropped` (`audit_block_timeout`) |
//! | `ringtrail_rows_written_total` | counter | `written` |
//! | `ringtrail_batches_total` | counter | `batches` |
//! | `ringtrail_rows_dead_lettered_total` | counter | `dead_lettered` |
//! | `ringtrail_rows_lost_total` | counter | `lost` |
//! | `ringtrail_rows_recovered_total` | counter | `recovered` |
//! | `ringtrail_rows_inherited_lost_total` | counter | `inherited_lost` |
//! | `ringtrail_spool_segments_refused_total` | counter | `spool_refused` |
//! | `ringtrail_checkpoint_file_errors_total` | counter | `checkpoint_file_errors` |
//! | `ringtrail_drop_reports_total` | counter | `drop_reports` |
//! | `ringtrail_redactions_total` | counter | `redacted` |
//! | `ringtrail_ring_queued` | gauge | `queued` |
//! | `ringtrail_spooled_rows` | gauge | `spooled` |
//! | `ringtrail_jsonl_lines_written_total` | counter | `jsonl.written` |
//! | `ringtrail_jsonl_lines_missed_total` | counter | `jsonl.missed` |
//! | `ringtrail_jsonl_bytes_total` | counter | `jsonl.bytes` |
//! | `ringtrail_jsonl_rotations_total` | counter | `jsonl.rotations` |
//! | `ringtrail_jsonl_write_errors_total` | counter | `jsonl.write_errors` |

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

use crate::ring::DropReason;
use crate::Stats;

/// The label value of a pipeline without a service name.
pub(crate) const DEFAULT_PIPELINE: &str = "ringtrail";

/// Whether a series is a running total or a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// Reads one counter of a [`Stats`].
type StatsField = fn(&Stats) -> u64;

/// One series: its name, kind, unit, help text and where its value comes
/// from. [`SERIES`] is the one list; `describe` and `publish` both walk it.
struct Series {
    name: &'static str,
    kind: Kind,
    unit: Unit,
    help: &'static str,
    value: StatsField,
}

/// `ringtrail_events_dropped_total`, labelled by reason: its reasons and
/// the `Stats` field behind each.
const DROPPED: &str = "ringtrail_events_dropped_total";
const DROPPED_BY_REASON: [(DropReason, StatsField); 5] = [
    (DropReason::RingFull, |s| s.dropped_ring_full),
    (DropReason::Evicted, |s| s.dropped_evicted),
    (DropReason::BlockTimeout, |s| s.dropped_block_timeout),
    (DropReason::AfterShutdown, |s| s.dropped_after_shutdown),
    (DropReason::AuditTimeout, |s| s.audit_dropped),
];

/// Every unlabelled series (besides the pipeline label), in the order of
/// the table in the module docs.
const SERIES: &[Series] = &[
    Series {
        name: "ringtrail_events_enqueued_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Events that got a slot in the ring",
        value: |s| s.enqueued,
    },
    Series {
        name: "ringtrail_rows_written_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Events committed to the sink",
        value: |s| s.written,
    },
    Series {
        name: "ringtrail_batches_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Transactions committed",
        value: |s| s.batches,
    },
    Series {
        name: "ringtrail_rows_dead_lettered_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Rows moved to ringtrail.dead_letters",
        value: |s| s.dead_lettered,
    },
    Series {
        name: "ringtrail_rows_lost_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Rows neither committed nor spooled",
        value: |s| s.lost,
    },
    Series {
        name: "ringtrail_rows_recovered_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Rows of an earlier process's spool replayed",
        value: |s| s.recovered,
    },
    Series {
        name: "ringtrail_rows_inherited_lost_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Rows of an earlier process's spool that could not be replayed",
        value: |s| s.inherited_lost,
    },
    Series {
        name: "ringtrail_spool_segments_refused_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Spool segments not trusted (no valid MAC, not a regular file of ours, too large), set aside and never replayed",
        value: |s| s.spool_refused,
    },
    Series {
        name: "ringtrail_checkpoint_file_errors_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Signed checkpoints that could not be appended to the checkpoint file",
        value: |s| s.checkpoint_file_errors,
    },
    Series {
        name: "ringtrail_drop_reports_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "In-band ringtrail::dropped rows",
        value: |s| s.drop_reports,
    },
    Series {
        name: "ringtrail_redactions_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Values or spans of text redaction replaced",
        value: |s| s.redacted,
    },
    Series {
        name: "ringtrail_ring_queued",
        kind: Kind::Gauge,
        unit: Unit::Count,
        help: "Records waiting in the ring",
        value: |s| s.queued,
    },
    Series {
        name: "ringtrail_spooled_rows",
        kind: Kind::Gauge,
        unit: Unit::Count,
        help: "Rows waiting in the spool",
        value: |s| s.spooled,
    },
    Series {
        name: "ringtrail_jsonl_lines_written_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Events written as JSON lines",
        value: |s| s.jsonl.written,
    },
    Series {
        name: "ringtrail_jsonl_lines_missed_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "Events the JSON-lines sink missed",
        value: |s| s.jsonl.missed,
    },
    Series {
        name: "ringtrail_jsonl_bytes_total",
        kind: Kind::Counter,
        unit: Unit::Bytes,
        help: "Bytes of JSON lines written",
        value: |s| s.jsonl.bytes,
    },
    Series {
        name: "ringtrail_jsonl_rotations_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "JSON-lines files rotated",
        value: |s| s.jsonl.rotations,
    },
    Series {
        name: "ringtrail_jsonl_write_errors_total",
        kind: Kind::Counter,
        unit: Unit::Count,
        help: "JSON-lines writes that failed",
        value: |s| s.jsonl.write_errors,
    },
];

/// Describes every series once (units and help text for exporters).
pub(crate) fn describe() {
    describe_counter!(
        DROPPED,
        Unit::Count,
        "Events lost before or while queued, by reason"
    );
    for series in SERIES {
        match series.kind {
            Kind::Counter => describe_counter!(series.name, series.unit, series.help),
            Kind::Gauge => describe_gauge!(series.name, series.unit, series.help),
        }
    }
}

/// Sets every series to `stats`, labelled with `pipeline`.
pub(crate) fn publish(stats: &Stats, pipeline: &str) {
    let p = pipeline.to_owned();
    for (reason, value) in DROPPED_BY_REASON {
        let reason = reason.as_str();
        counter!(DROPPED, "pipeline" => p.clone(), "reason" => reason).absolute(value(stats));
    }
    for series in SERIES {
        let value = (series.value)(stats);
        match series.kind {
            Kind::Counter => counter!(series.name, "pipeline" => p.clone()).absolute(value),
            Kind::Gauge => gauge!(series.name, "pipeline" => p.clone()).set(value as f64),
        }
    }
}

/// A sink worker's progress (`crate::worker`), as `ringtrail_sink_*`
/// series labelled with its shard.
#[cfg(feature = "nats")]
pub(crate) fn publish_worker(progress: &crate::worker::Progress) {
    let shard = progress.shard.to_string();
    let counters = [
        ("ringtrail_sink_batches", progress.batches),
        ("ringtrail_sink_rows", progress.rows),
        ("ringtrail_sink_dead_lettered", progress.dead_lettered),
        ("ringtrail_sink_redelivered", progress.redelivered),
        ("ringtrail_sink_released", progress.released),
        ("ringtrail_sink_rejected", progress.rejected),
        ("ringtrail_sink_checkpoints", progress.checkpoints),
    ];
    for (name, value) in counters {
        counter!(name, "shard" => shard.clone()).absolute(value);
    }
    if let Some(lag) = progress.lag {
        gauge!("ringtrail_sink_lag", "shard" => shard).set(lag as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_table_lists_every_series() {
        let docs = include_str!("metrics.rs");
        for name in SERIES.iter().map(|s| s.name).chain([DROPPED]) {
            assert!(
                docs.contains(&format!("//! | `{name}")),
                "{name} in the module docs"
            );
        }
        let mut names: Vec<_> = SERIES.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SERIES.len(), "each series once");
    }
}
