//! Helpers shared by the integration tests: a fresh real PostgreSQL
//! database per test, a pipeline on it, and a synchronous client.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringtrail::Stats;

use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// A brand-new database on the throwaway cluster (or on DATABASE_URL's
/// server), already migrated.
pub fn database() -> String {
    ringtrail_cluster::fresh_database().expect("a test database")
}

/// A brand-new database with ringtrail's schema applied, for tests that
/// change the schema before the pipeline starts.
pub fn migrated_database() -> String {
    let url = database();
    let (_layer, guard) = builder(&url).build().expect("migrations apply");
    drop(guard);
    url
}

/// Applies ringtrail's schema to `url` with [`ringtrail::schema::apply`]
/// (no pipeline started), and with `partitions` of that width from
/// `first` to `ahead` days after it when given.
pub fn apply_schema(url: &str, partitions: Option<(Duration, u32, std::time::SystemTime)>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let mut client = connect(url).await;
        ringtrail::schema::apply(&mut client)
            .await
            .expect("migrations apply");
        if let Some((width, ahead, first)) = partitions {
            ringtrail::schema::partitions::ensure(&mut client, width, ahead, first)
                .await
                .expect("partitions");
        }
    });
}

/// A synchronous client for assertions.
pub fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

/// A pipeline into `url` with test-friendly settings.
pub fn builder(url: &str) -> ringtrail::Builder {
    ringtrail::Builder::new()
        .postgres(url)
        .synchronous_commit(false)
        .flush_interval(Duration::from_millis(50))
}

/// The overflow policy of a test that asserts zero drops: a full ring
/// makes the caller wait, for two minutes, so a drop is impossible unless
/// the writer hangs (which is then the failure). A test that asserts no
/// drop must make drops impossible, never merely unlikely on a fast
/// machine: this, or a ring with room for every event.
pub fn no_drops() -> ringtrail::OverflowPolicy {
    ringtrail::OverflowPolicy::Block {
        timeout: Duration::from_secs(120),
    }
}

/// A dispatcher with only the ringtrail layer, for `dispatcher::with_default`
/// (tests run in parallel, so none of them sets the global default).
pub fn dispatch(layer: ringtrail::Layer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// Rows in ringtrail.logs.
pub fn count(url: &str) -> i64 {
    client(url)
        .query_one("SELECT count(*) FROM ringtrail.logs", &[])
        .unwrap()
        .get(0)
}

/// Builds the pipeline and a dispatcher for its layer.
pub fn start(builder: ringtrail::Builder) -> (Dispatch, ringtrail::Guard) {
    let (layer, guard) = builder.build().expect("the pipeline starts");
    (dispatch(layer), guard)
}

/// A tokio-postgres client whose connection runs on the current runtime,
/// connected as ringtrail connects (`sslmode`, `sslrootcert` and the rest
/// honoured: [`ringtrail::tls::ConnectOptions`]).
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let options = ringtrail::tls::ConnectOptions::parse(url).expect("a valid URL");
    ringtrail::read::connect(&options).await.expect("connect")
}

/// Loads one encoded batch with `COPY ringtrail.logs … (FORMAT binary)` in
/// a transaction of its own; returns the rows loaded.
pub async fn copy_in(
    client: &mut tokio_postgres::Client,
    batch: bytes::Bytes,
) -> Result<u64, tokio_postgres::Error> {
    use futures_util::SinkExt;
    let statement = ringtrail::encode::copy::copy_statement();
    let tx = client.transaction().await?;
    let sink = tx.copy_in::<_, bytes::Bytes>(&statement).await?;
    futures_util::pin_mut!(sink);
    sink.send(batch).await?;
    let n = sink.finish().await?;
    tx.commit().await?;
    Ok(n)
}

/// A fresh, empty spool directory path for this process and `name`.
pub fn spool_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ringtrail-spool-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Spool segments in `dir`.
pub fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pgcopy"))
            })
            .count()
        })
        .unwrap_or(0)
}

/// Asserts `enqueued == written + spooled + dead_lettered + lost`.
pub fn assert_counts_add_up(s: &Stats) {
    assert_eq!(
        s.enqueued,
        s.written + s.spooled + s.dead_lettered + s.lost,
        "counters do not add up: {s:?}"
    );
}

/// Flushes until the spool is empty, tolerating flushes that report
/// spooled batches while PostgreSQL comes back.
pub fn settle(guard: &ringtrail::Guard, within: Duration) -> Stats {
    let start = Instant::now();
    loop {
        let flushed = guard.flush();
        let stats = guard.stats();
        if flushed.is_ok() && stats.spooled == 0 && stats.queued == 0 {
            return stats;
        }
        assert!(
            start.elapsed() < within,
            "did not settle: {stats:?} {flushed:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Event rows (not drop reports), and distinct ids among them.
pub fn event_rows(url: &str) -> (i64, i64) {
    let r = client(url)
        .query_one(
            "SELECT count(*), count(DISTINCT id) FROM ringtrail.logs WHERE target <> $1",
            &[&ringtrail::DROPPED_TARGET],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

/// Events the in-band `ringtrail::dropped` rows report for `reason`.
pub fn reported_drops(url: &str, reason: &str) -> i64 {
    client(url)
        .query_one(
            "SELECT coalesce(sum((fields->>'count')::bigint), 0)::bigint FROM ringtrail.logs
             WHERE target = $1 AND fields->>'reason' = $2",
            &[&ringtrail::DROPPED_TARGET, &reason],
        )
        .unwrap()
        .get(0)
}

/// A fresh migrated database whose rows a test writes by hand, one
/// `INSERT` each, with increasing ids (`0190f5a2-0000-7000-8000-<n>`):
/// for the read side's tests, which need exact times, kinds and text.
pub struct HandRows {
    /// The database's URL.
    pub url: String,
    client: postgres::Client,
    ids: u64,
}

/// One row for [`HandRows::insert`]; unset columns are NULL (`kind`,
/// `trace_id`, `user_id`) or an INFO level and empty fields.
#[derive(Debug, Clone)]
pub struct HandRow<'a> {
    /// `trace_id`.
    pub trace_id: Option<&'a str>,
    /// `ts`.
    pub ts: std::time::SystemTime,
    /// `kind` (an audit point's, or NULL).
    pub kind: Option<i16>,
    /// `level`.
    pub level: i16,
    /// `target`.
    pub target: &'a str,
    /// `message`.
    pub message: &'a str,
    /// `fields`.
    pub fields: serde_json::Value,
    /// `user_id`.
    pub user_id: Option<&'a str>,
}

impl HandRows {
    /// A new database with the schema applied.
    pub fn new() -> HandRows {
        let url = database();
        apply_schema(&url, None);
        HandRows::on(url)
    }

    /// An existing database with the schema applied (`url`).
    pub fn on(url: String) -> HandRows {
        let client = client(&url);
        HandRows {
            url,
            client,
            ids: 0,
        }
    }

    /// Inserts `row`; returns its id.
    pub fn insert(&mut self, row: HandRow<'_>) -> String {
        self.ids += 1;
        let id = format!("0190f5a2-0000-7000-8000-{:012x}", self.ids);
        self.client
            .execute(
                "INSERT INTO ringtrail.logs
                     (ts, id, level, target, message, fields, trace_id, user_id, truncated, kind)
                 VALUES ($1, $2::text::uuid, $3, $4, $5, $6, $7, $8, false, $9)",
                &[
                    &row.ts,
                    &id,
                    &row.level,
                    &row.target,
                    &row.message,
                    &row.fields,
                    &row.trace_id,
                    &row.user_id,
                    &row.kind,
                ],
            )
            .expect("insert");
        id
    }

    /// The real binary with `args` and `--database-url` this database.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend(["--database-url", &self.url]);
        crate::cli::run(&all)
    }
}

impl Default for HandRows {
    fn default() -> Self {
        HandRows::new()
    }
}
