//! The `metrics` feature: `Stats` as `ringtrail_*` series, scraped through
//! a real Prometheus exporter (metrics-exporter-prometheus, recorder only,
//! no HTTP listener). This file installs the process-wide recorder, so it
//! is its own test binary.

use ringtrail_testkit as common;

use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::dispatcher;

/// The value of the series whose line starts with `series` (name and
/// labels exactly as Prometheus prints them).
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn stats_are_scraped_as_ringtrail_series() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this process");
    let url = common::database();
    let (layer, guard) = common::builder(&url)
        .service_name("checkout")
        .capacity(1_024)
        .build()
        .unwrap();
    let dispatch = common::dispatch(layer);
    dispatcher::with_default(&dispatch, || {
        for i in 0..500u64 {
            tracing::info!(i, password = "hunter2", "event {i}");
        }
    });
    guard.flush().unwrap();
    let stats = guard.stats();
    let scrape = handle.render();
    let series = |name: &str| format!("{name}{{pipeline=\"checkout\"}}");
    assert_eq!(
        value(&scrape, &series("ringtrail_rows_written_total")),
        Some(stats.written as f64),
        "{scrape}"
    );
    assert_eq!(stats.written, 500);
    assert_eq!(
        value(&scrape, &series("ringtrail_events_enqueued_total")),
        Some(500.0)
    );
    assert_eq!(
        value(&scrape, &series("ringtrail_batches_total")),
        Some(stats.batches as f64)
    );
    assert_eq!(
        value(&scrape, &series("ringtrail_redactions_total")),
        Some(500.0),
        "one password per event"
    );
    assert_eq!(value(&scrape, &series("ringtrail_ring_queued")), Some(0.0));
    assert!(scrape.contains("# HELP ringtrail_rows_written_total Events committed to the sink"));
    // Drops by reason: a full ring with DropNewest, published within about
    // a second by the writer, with no flush.
    dispatcher::with_default(&dispatch, || {
        for i in 0..200_000u64 {
            tracing::debug!(i, "flood");
        }
    });
    let dropped = guard.stats().dropped_ring_full;
    assert!(dropped > 0, "the flood overruns a 1,024-record ring");
    let series = "ringtrail_events_dropped_total{pipeline=\"checkout\",reason=\"ring_full\"}";
    let start = Instant::now();
    loop {
        let seen = value(&handle.render(), series).unwrap_or(0.0);
        if seen >= dropped as f64 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{series} stays at {seen} < {dropped}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
