//! ringtrail's own threads never log into the pipeline. An application
//! that installs the layer as the global default with `init()` also
//! bridges `log` records into `tracing`; the database driver logs at
//! TRACE while the shipper sends each batch, and those records must not
//! come back as rows (a loop that would never settle). This file is its
//! own test binary because it sets the process-wide default subscriber.

use ringtrail_testkit as common;

use std::time::Duration;

use tracing_subscriber::prelude::*;

#[test]
fn the_driver_logs_of_ringtrail_threads_never_become_rows() {
    let url = common::database();
    let (layer, guard) = common::builder(&url).build().unwrap();
    tracing_subscriber::registry().with(layer).init();
    // The bridge is on: a `log` record from this thread is captured.
    log::info!(target: "bridged", "through the log crate");
    for i in 0..2_000u64 {
        tracing::info!(i, "event");
        if i % 500 == 0 {
            guard.flush().unwrap();
        }
    }
    guard.flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.enqueued, stats.written), (2_001, 2_001), "{stats:?}");
    let mut db = common::client(&url);
    let rows: Vec<(String, i64)> = db
        .query(
            "SELECT target, count(*) FROM ringtrail.logs GROUP BY 1 ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [("log".to_owned(), 1), ("own_threads".to_owned(), 2_000)]
    );
    guard.shutdown(Duration::from_secs(5)).unwrap();
}
