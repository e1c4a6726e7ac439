//! The read side: rows, audit traces and their completeness, table
//! statistics and tamper evidence, read back from `ringtrail.logs` and the
//! batch ledger. Nothing in the write path uses it (`tests/tidy.rs` checks
//! that): the table's upkeep (partitions, retention) is
//! [`schema`](crate::schema)'s.
//!
//! - [`trace()`](crate::read::trace()): one trace's rows (its audit points and the
//!   plain logs that carry its `trace_id`) in timeline order, and its
//!   [`Finding`](crate::audit::Finding)s, as a
//!   [`TraceReport`].
//! - [`gaps()`](crate::read::gaps()): every incomplete trace with audit points in a
//!   time window, in one planned query over the partial index
//!   `logs_audit_trace`, as [`Gap`]s.
//! - [`export()`](crate::read::export()): every row of a window (or of a
//!   trace, or at a level and above) as [`Row`](crate::Row)s, ordered by
//!   `ts` then `id`, streamed to a callback in constant memory, for
//!   `ringtrail export`.
//! - [`filter`]: [`ExportFilter`], the one row filter of the read side
//!   (time window, level, target prefix, trace, user, session, message
//!   substring, `fields` key=value), as parameterized SQL, and which
//!   filters an index serves.
//! - [`query()`](crate::read::query()) / [`last()`](crate::read::last()):
//!   the first rows a filter keeps, or the newest `n`, for `ringtrail
//!   query` and `ringtrail tail`.
//! - [`follow`]: a [`Follower`] that shows every row of every batch
//!   committed after its [`Cursor`], exactly once, for `ringtrail tail
//!   -f`.
//! - [`stats()`](crate::read::stats()): rows per level and per day,
//!   sizes, the ledger's last hour, dead letters, as [`TableStats`].
//! - [`usage()`](crate::read::usage()): the tokens and cost of AI calls in
//!   a time window, per model, user, agent or day, priced exactly from a
//!   price file ([`Prices`]) where no result gives the cost, as
//!   [`Group`]s.
//! - [`verify()`](crate::read::verify()): the tamper evidence checked:
//!   every batch's rows against its digest, the chain's links, the
//!   signed checkpoints, as [`Finding`](crate::chain::finding::Finding)s
//!   and a [`VerifySummary`].
//!
//! - [`cluster`]: the same reads over several databases ("shards", each
//!   with the whole schema, every trace on one of them): rows merged by
//!   time in constant memory (a k-way [`Merge`](cluster::Merge) holding
//!   one pending row per shard), traces and gaps found on their shard,
//!   statistics and usage summed, each shard's chains verified.
//!
//! All are async functions over a `&tokio_postgres::Client` (the
//! cluster's over a slice of them), which
//! [`connect`] makes from a URL read by
//! [`ConnectOptions::parse`](crate::tls::ConnectOptions::parse) (its
//! `sslmode`, `sslrootcert`, `sslcert` and `sslkey` honoured); the
//! `ringtrail trace`, `audit-gaps`, `export`, `query`, `tail` and `stats`
//! commands are thin renderers of them. Times are [`SystemTime`](std::time::SystemTime)s (PostgreSQL's
//! `timestamptz`), row times microseconds since the Unix epoch, shown
//! with [`rfc3339_micros`](crate::time::rfc3339_micros).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, SystemTime};
//! use ringtrail::read;
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let options = ringtrail::tls::ConnectOptions::parse(&url)?;
//!     let mut client = read::connect(&options).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     // A trace that ran a tool nobody allowed (rows as the writer stores them).
//!     client.batch_execute(r#"
//!         INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, user_id, truncated, kind)
//!         SELECT now() - interval '1 hour' + n * interval '1 ms', gen_random_uuid(), 9,
//!                'ringtrail::audit', '', f::jsonb, 't-1', 'u-1', false, k
//!         FROM (VALUES (1, 1, '{"audit.point": "identity"}'),
//!                      (2, 2, '{"audit.point": "agent", "agent.id": "planner"}'),
//!                      (3, 4, '{"audit.point": "tool", "gen_ai.tool.name": "rm"}'),
//!                      (4, 5, '{"audit.point": "result", "outcome": "success"}')) AS p(n, k, f);
//!         INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, trace_id, truncated)
//!         VALUES (now() - interval '1 hour', gen_random_uuid(), 5, 'my_app', 'cache miss', '{}', 't-1', false);
//!     "#).await?;
//!
//!     let now = SystemTime::now();
//!     let report = read::trace(&client, "t-1", now, read::DEFAULT_GRACE).await?.expect("t-1 exists");
//!     assert_eq!(report.rows.len(), 5);
//!     assert_eq!(report.points(), 4);
//!     assert!(!report.complete());
//!     assert_eq!(report.findings[0].code.as_str(), "missing_permission");
//!
//!     let day_ago = now - Duration::from_secs(86_400);
//!     let gaps = read::gaps(&client, day_ago, now, read::DEFAULT_GRACE, now).await?;
//!     assert_eq!(gaps.len(), 1);
//!     assert_eq!((gaps[0].trace_id.as_str(), gaps[0].points), ("t-1", 4));
//!     assert!(read::trace(&client, "nope", now, read::DEFAULT_GRACE).await?.is_none());
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

pub mod cluster;
pub mod export;
pub mod filter;
pub mod follow;
pub mod gaps;
pub mod query;
pub mod stats;
pub mod trace;
pub mod usage;
pub mod verify;

use std::time::Duration;

pub use export::{export, ExportFilter, Exported};
pub use follow::{Backlog, Cursor, CursorError, Follower, Polled};
pub use gaps::{each_gap, each_gap_limited, gaps, Gap, Scan};
pub use query::{last, page, query, PageKey};
pub use stats::{stats, TableStats};
pub use trace::{trace, trace_limited, TraceReport, TraceRow, MAX_TRACE_ROWS};
pub use usage::{usage, By, Group, Price, Prices, UsageQuery};
pub use verify::{verify, VerifyOptions, VerifySummary};

/// The default grace period: a trace without a result whose last point is
/// younger than this is still in flight, not `missing_result`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(300);

/// How long [`connect`] waits for the server when the configuration sets
/// no `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to PostgreSQL for reading, with the TLS its
/// [`ConnectOptions`](crate::tls::ConnectOptions) ask for, and drives the
/// connection on a task of the current tokio runtime. Without a
/// `connect_timeout` in the settings, [`CONNECT_TIMEOUT`] applies.
///
/// A `tokio_postgres::Config` made in code connects through
/// `ConnectOptions::from(&config)`: its own `sslmode` (`disable`,
/// `prefer` or `require`), the server's certificate unchecked.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let url = ringtrail_cluster::fresh_database()?;
/// // In production: "postgres://app@db.internal/app?sslmode=verify-full&sslrootcert=/etc/ringtrail/ca.pem"
/// let options = ringtrail::tls::ConnectOptions::parse(&url)?;
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// rt.block_on(async {
///     let client = ringtrail::read::connect(&options).await?;
///     client.simple_query("SELECT 1").await?;
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the server cannot be
/// reached, the TLS handshake fails (no TLS on the server under
/// `sslmode=require`, a certificate that fails its check) or the server
/// refuses the login.
pub async fn connect(
    options: &crate::tls::ConnectOptions,
) -> crate::Result<tokio_postgres::Client> {
    let mut options = options.clone();
    if options.config().get_connect_timeout().is_none() {
        options.config_mut().connect_timeout(CONNECT_TIMEOUT);
    }
    let (client, connection) = options.connect().await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `EXPLAIN` (with `analyze`: `ANALYZE, BUFFERS`) of `sql` with `params`,
/// costs off, as text: what the benches print and the plan tests read.
pub(crate) async fn explain_sql(
    client: &impl tokio_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    analyze: bool,
) -> crate::Result<String> {
    let options = if analyze {
        "(ANALYZE, BUFFERS, COSTS OFF)"
    } else {
        "(COSTS OFF)"
    };
    let rows = client
        .query(&format!("EXPLAIN {options} {sql}"), params)
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, &str>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}
