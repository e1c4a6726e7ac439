//! A database that hangs instead of refusing: every PostgreSQL process of a
//! throwaway cluster is frozen with SIGSTOP mid-stream, so the TCP
//! connections stay open and nothing answers. Alone in its test binary, so
//! that "no ringtrail thread is left" can be checked on the whole process.

use ringtrail_testkit as common;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use ringtrail::{Error, Spool};
use ringtrail_cluster::{ClusterOptions, TempCluster};
use tracing::dispatcher;

/// Every process of the cluster: the postmaster (first line of
/// `postmaster.pid`) and its children.
fn cluster_pids(data_dir: &Path) -> Vec<u32> {
    let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

fn signal(pids: &[u32], sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pids:?}");
}

/// Names of this process's threads that belong to a ringtrail pipeline
/// (`comm` is cut to 15 bytes: `ringtrail-write`, `ringtrail-shipp`).
fn pipeline_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("ringtrail-"))
        .collect()
}

#[test]
fn a_hung_database_loses_nothing_and_shutdown_keeps_its_deadline() {
    let pg = TempCluster::start_with(&ClusterOptions {
        fsync: false,
        settings: Vec::new(),
    })
    .unwrap();
    // The stall is noticed first, and the rest spools while the freeze
    // lasts; then a shutdown that comes before any stall is noticed.
    hang_and_recover(&pg, "noticed", Duration::from_secs(1));
    hang_and_recover(&pg, "at_shutdown", Duration::from_secs(30));
}

/// Freezes the cluster mid-stream, shuts the pipeline down within its
/// deadline, thaws, and checks that a new pipeline replays the spool so
/// that every enqueued event is in the table exactly once.
fn hang_and_recover(pg: &TempCluster, name: &str, stall: Duration) {
    let url = pg.create_database(name).unwrap();
    let spool = std::env::temp_dir().join(format!("ringtrail-hang-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    let deadline = Duration::from_secs(4);
    // WARN waits when the ring is full instead of dropping (for up to two
    // minutes: common::no_drops), so a drop is impossible unless the writer
    // hangs: this test asserts zero drops, so drops must be impossible,
    // not merely unlikely. The writer never waits on the disk (spills go
    // to the `ringtrail-disk` lane, and the lanes spool the frozen
    // server's batches), so on a quiet machine the ring does not even
    // fill; the block covers only a descheduled writer.
    let builder = || {
        common::builder(&url)
            .overflow_at_or_above(tracing::Level::WARN, common::no_drops())
            .synchronous_commit(true)
            .spool(Spool::dir(&spool))
            .shutdown_timeout(deadline)
            .stall_timeout(stall)
    };
    let (dispatch, guard) = common::start(builder());
    dispatcher::with_default(&dispatch, || {
        for i in 0..5_000u64 {
            tracing::warn!(i, "before the freeze");
        }
    });
    guard.flush().unwrap();

    let frozen = cluster_pids(pg.data_dir());
    signal(&frozen, "STOP");
    dispatcher::with_default(&dispatch, || {
        for i in 5_000..65_000u64 {
            tracing::warn!(i, "during the freeze");
        }
    });
    let started = Instant::now();
    let outcome = guard.shutdown(deadline);
    let took = started.elapsed();
    // Against a frozen server an unbounded shutdown would never return:
    // any bound shows the deadline holds. The slack is for the scheduler
    // of a busy 2-core machine (a CPU hog beside the tests), not for the
    // code, which gives up at the deadline.
    assert!(
        took <= deadline + Duration::from_secs(2),
        "shutdown took {took:?}"
    );
    let stats = match outcome {
        Ok(stats) => stats,
        Err(Error::Shutdown { stats, .. }) => *stats,
        Err(e) => panic!("{}", e.chain()),
    };
    assert_eq!(stats.enqueued + stats.dropped, 65_000, "{stats:?}");
    assert_eq!(stats.dropped, 0, "the spool had room: {stats:?}");
    assert_eq!(stats.queued, 0, "nothing left in the ring: {stats:?}");
    assert_eq!(stats.lost, 0, "{stats:?}");
    common::assert_counts_add_up(&stats);
    assert!(
        stats.spooled >= 60_000,
        "the freeze's events are spooled: {stats:?}"
    );
    assert!(common::segments(&spool) > 0);
    assert_eq!(
        pipeline_threads(),
        Vec::<String>::new(),
        "no thread of the pipeline outlives shutdown()"
    );

    signal(&frozen, "CONT");
    // A new pipeline on the same spool replays it, through the ledger.
    let (_dispatch, guard) = common::start(builder());
    let started = Instant::now();
    while common::segments(&spool) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            guard.stats()
        );
        thread::sleep(Duration::from_millis(100));
    }
    guard.flush().unwrap();
    let recovered = guard.stats();
    assert_eq!(recovered.inherited_lost, 0, "{recovered:?}");
    drop(guard);

    let row = common::client(&url)
        .query_one(
            "SELECT count(*), count(DISTINCT (fields->>'i')::bigint) FROM ringtrail.logs
             WHERE target <> $1",
            &[&ringtrail::DROPPED_TARGET],
        )
        .unwrap();
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(
        rows as u64, stats.enqueued,
        "every enqueued event is in the table"
    );
    assert_eq!(distinct, rows, "exactly once");
    let _ = std::fs::remove_dir_all(&spool);
}
