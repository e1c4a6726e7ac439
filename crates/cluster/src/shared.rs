//! The process-wide shared cluster ([`TempCluster::shared`], torn down at
//! exit) and the databases handed out for tests and benchmarks:
//! [`fresh_database`] and [`durable_database`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::admin::{create_database_at, simple_query, with_database};
use super::cluster::{ClusterOptions, TempCluster};
use super::error::{ClusterError, Result};
use super::pg_ctl::StopMode;

/// The process-wide cluster behind [`TempCluster::shared`]. A failed start
/// is kept, so every later caller gets it without retrying.
static SHARED: OnceLock<std::result::Result<TempCluster, Arc<ClusterError>>> = OnceLock::new();

/// Statics are never dropped, so the shared cluster is torn down from C
/// `atexit` instead: immediate stop (nobody needs its data), then delete.
extern "C" fn cleanup_shared_at_exit() {
    // A panic must not unwind into C. There is nobody to report it to at
    // exit, and the watchdog remains as the backstop.
    let _ = std::panic::catch_unwind(|| {
        if let Some(Ok(cluster)) = SHARED.get() {
            cluster.teardown(StopMode::Immediate);
        }
    });
}

impl TempCluster {
    /// The process-wide cluster, started with `fsync=off` on the first call
    /// (later calls wait for that start and return the same cluster). It is
    /// stopped and removed when the process exits.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Shared`] when it could not be started; its source is
    /// the failure of the start (any error of [`TempCluster::start`]). The
    /// failure is remembered: later calls fail at once with the same cause
    /// instead of retrying a slow start in every test.
    pub fn shared() -> Result<&'static TempCluster> {
        let slot = SHARED.get_or_init(|| {
            let options = ClusterOptions {
                fsync: false,
                settings: Vec::new(),
            };
            let cluster = TempCluster::start_with(&options).map_err(Arc::new)?;
            // SAFETY: `cleanup_shared_at_exit` is a plain `extern "C" fn()`
            // that lives for the whole program and never unwinds. It runs
            // only at exit, long after this closure has stored the cluster
            // in SHARED. If the registration fails (non-zero), the watchdog
            // still cleans up after the process is gone.
            let _ = unsafe { libc::atexit(cleanup_shared_at_exit) };
            Ok(cluster)
        });
        slot.as_ref()
            .map_err(|cause| ClusterError::Shared(Arc::clone(cause)))
    }
}

/// A database for a benchmark, and the cluster it lives on when ringtrail
/// started one (drop the cluster last).
///
/// When `DATABASE_URL` is set, a [`fresh_database`] on that server and
/// `None`. Otherwise a new [`TempCluster`] of its own, with PostgreSQL's
/// default durable settings (`fsync` on, unlike the tests' shared cluster),
/// and a database `name` on it: what a benchmark of durable writes needs.
///
/// The new cluster's WAL is warmed first: about 1 GB is written and
/// checkpointed, so that WAL segment files exist and are recycled as on a
/// server that has run a while. Without it, whatever a benchmark times
/// first pays for creating them and whatever comes later does not (the
/// ingest bench's first variant ran up to 17 % slower than on its own).
pub fn durable_database(name: &str) -> Result<(Option<TempCluster>, String)> {
    if std::env::var_os("DATABASE_URL").is_some() {
        return Ok((None, fresh_database()?));
    }
    let cluster = TempCluster::start()?;
    let url = cluster.create_database(name)?;
    simple_query(
        &url,
        "CREATE TABLE ringtrail_warm_wal AS
             SELECT g, repeat('x', 1000) AS filler FROM generate_series(1, 1000000) g;
         DROP TABLE ringtrail_warm_wal;
         CHECKPOINT",
    )?;
    Ok((Some(cluster), url))
}

/// A brand-new, empty database for one test, as a URL.
///
/// When `DATABASE_URL` is set (a `postgres://`/`postgresql://` URL or a
/// `key=value` connection string), the database is created on that server,
/// whose role needs `CREATEDB`; the returned URL is `DATABASE_URL` with the
/// database name replaced (query parameters are kept). Otherwise it is
/// created on [`TempCluster::shared`]. Names look like
/// `rt_{pid}_{process start time}_{counter}`: unique per process and call, and
/// across runs against the same external server. Databases on an external
/// server are not dropped afterwards.
///
/// # Errors
///
/// [`ClusterError::BadUrl`] when `DATABASE_URL` cannot be parsed,
/// [`ClusterError::Postgres`] when `CREATE DATABASE` fails,
/// [`ClusterError::Timeout`] when the server does not answer within a minute,
/// and whatever [`TempCluster::shared`] returns.
pub fn fresh_database() -> Result<String> {
    let name = next_database_name();
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            // Build the URL first: a malformed DATABASE_URL should fail
            // before anything is created.
            let fresh_url = with_database(&url, &name)?;
            create_database_at(&url, &name)?;
            Ok(fresh_url)
        }
        _ => TempCluster::shared()?.create_database(&name),
    }
}

fn next_database_name() -> String {
    static DATABASES: AtomicU64 = AtomicU64::new(0);
    static PROCESS_TOKEN: OnceLock<u64> = OnceLock::new();
    // The pid alone repeats across runs; against an external DATABASE_URL a
    // leftover `rt_{pid}_0` from an earlier run would make CREATE fail.
    let token = *PROCESS_TOKEN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let n = DATABASES.fetch_add(1, Ordering::Relaxed);
    format!("rt_{}_{token}_{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::scalar;

    #[test]
    fn fresh_databases_are_distinct_and_empty() {
        let a = fresh_database().unwrap();
        let b = fresh_database().unwrap();
        assert_ne!(a, b);
        simple_query(&a, "CREATE TABLE only_in_a (x int)").unwrap();
        let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'";
        assert_eq!(scalar(&a, tables).unwrap().as_deref(), Some("1"));
        assert_eq!(scalar(&b, tables).unwrap().as_deref(), Some("0"));
        if std::env::var_os("DATABASE_URL").is_none() {
            let shared = TempCluster::shared().unwrap();
            assert!(std::ptr::eq(shared, TempCluster::shared().unwrap()));
            assert!(a.starts_with(&format!(
                "postgres://postgres@127.0.0.1:{}/rt_",
                shared.port()
            )));
        }
    }

    #[test]
    fn works_inside_an_async_runtime() {
        // Blocking on a second runtime from inside this one would panic;
        // the helper thread in `simple_query` must prevent that.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = runtime.block_on(async { fresh_database() }).unwrap();
        let one = runtime
            .block_on(async { scalar(&url, "SELECT 1") })
            .unwrap();
        assert_eq!(one.as_deref(), Some("1"));
    }
}
