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
//! | `ringtrail_drop_reports_total` | counter | `drop_reports` |
//! | `ringtrail_redactions_total` | counter | `redacted` |
//! | `ringtrail_ring_queued` | gauge | `queued` |
//! | `ringtrail_spooled_rows` | gauge | `spooled` |
//! | `ringtrail_jsonl_lines_written_total` | counter | `jsonl.written` |
//! | `ringtrail_jsonl_lines_missed_total` | counter | `jsonl.missed` |
//! | `ringtrail_jsonl_bytes_total` | counter | `jsonl.bytes` |
//! | `ringtrail_jsonl_rotations_total` | counter | `jsonl.rotations` |
//! | `ringtrail_jsonl_write_errors_total` | counter | `jsonl.write_errors` |

use metrics::{counter, gauge, Unit};

use crate::ring::DropReason;
use crate::Stats;

/// The label value of a pipeline without a service name.
pub(crate) const DEFAULT_PIPELINE: &str = "ringtrail";

/// Describes every series once (units and help text for exporters).
pub(crate) fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        "ringtrail_events_enqueued_total",
        Unit::Count,
        "Events that got a slot in the ring"
    );
    describe_counter!(
        "ringtrail_events_dropped_total",
        Unit::Count,
        "Events lost before or while queued, by reason"
    );
    describe_counter!(
        "ringtrail_rows_written_total",
        Unit::Count,
        "Events committed to the sink"
    );
    describe_counter!(
        "ringtrail_batches_total",
        Unit::Count,
        "Transactions committed"
    );
    describe_counter!(
        "ringtrail_rows_dead_lettered_total",
        Unit::Count,
        "Rows moved to ringtrail.dead_letters"
    );
    describe_counter!(
        "ringtrail_rows_lost_total",
        Unit::Count,
        "Rows neither committed nor spooled"
    );
    describe_counter!(
        "ringtrail_rows_recovered_total",
        Unit::Count,
        "Rows of an earlier process's spool replayed"
    );
    describe_counter!(
        "ringtrail_rows_inherited_lost_total",
        Unit::Count,
        "Rows of an earlier process's spool that could not be replayed"
    );
    describe_counter!(
        "ringtrail_drop_reports_total",
        Unit::Count,
        "In-band ringtrail::dropped rows"
    );
    describe_counter!(
        "ringtrail_redactions_total",
        Unit::Count,
        "Values or spans of text redaction replaced"
    );
    describe_gauge!(
        "ringtrail_ring_queued",
        Unit::Count,
        "Records waiting in the ring"
    );
    describe_gauge!(
        "ringtrail_spooled_rows",
        Unit::Count,
        "Rows waiting in the spool"
    );
    describe_counter!(
        "ringtrail_jsonl_lines_written_total",
        Unit::Count,
        "Events written as JSON lines"
    );
    describe_counter!(
        "ringtrail_jsonl_lines_missed_total",
        Unit::Count,
        "Events the JSON-lines sink missed"
    );
    describe_counter!(
        "ringtrail_jsonl_bytes_total",
        Unit::Bytes,
        "Bytes of JSON lines written"
    );
    describe_counter!(
        "ringtrail_jsonl_rotations_total",
        Unit::Count,
        "JSON-lines files rotated"
    );
    describe_counter!(
        "ringtrail_jsonl_write_errors_total",
        Unit::Count,
        "JSON-lines writes that failed"
    );
}

/// Sets every series to `stats`, labelled with `pipeline`.
pub(crate) fn publish(stats: &Stats, pipeline: &str) {
    let p = pipeline.to_owned();
    let total = |name: &'static str, value: u64| {
        counter!(name, "pipeline" => p.clone()).absolute(value);
    };
    total("ringtrail_events_enqueued_total", stats.enqueued);
    for (reason, value) in [
        (DropReason::RingFull, stats.dropped_ring_full),
        (DropReason::Evicted, stats.dropped_evicted),
        (DropReason::BlockTimeout, stats.dropped_block_timeout),
        (DropReason::AfterShutdown, stats.dropped_after_shutdown),
        (DropReason::AuditTimeout, stats.audit_dropped),
    ] {
        let reason = reason.as_str();
        counter!("ringtrail_events_dropped_total", "pipeline" => p.clone(), "reason" => reason)
            .absolute(value);
    }
    total("ringtrail_rows_written_total", stats.written);
    total("ringtrail_batches_total", stats.batches);
    total("ringtrail_rows_dead_lettered_total", stats.dead_lettered);
    total("ringtrail_rows_lost_total", stats.lost);
    total("ringtrail_rows_recovered_total", stats.recovered);
    total("ringtrail_rows_inherited_lost_total", stats.inherited_lost);
    total("ringtrail_drop_reports_total", stats.drop_reports);
    total("ringtrail_redactions_total", stats.redacted);
    gauge!("ringtrail_ring_queued", "pipeline" => p.clone()).set(stats.queued as f64);
    gauge!("ringtrail_spooled_rows", "pipeline" => p.clone()).set(stats.spooled as f64);
    total("ringtrail_jsonl_lines_written_total", stats.jsonl.written);
    total("ringtrail_jsonl_lines_missed_total", stats.jsonl.missed);
    total("ringtrail_jsonl_bytes_total", stats.jsonl.bytes);
    total("ringtrail_jsonl_rotations_total", stats.jsonl.rotations);
    total(
        "ringtrail_jsonl_write_errors_total",
        stats.jsonl.write_errors,
    );
}
