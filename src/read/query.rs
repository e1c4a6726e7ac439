//! Rows for `ringtrail query` and `ringtrail tail` (without `-f`):
//! [`query()`] streams the first rows an [`ExportFilter`] keeps, oldest
//! first, up to a limit; [`last()`] hands over the newest `n`, oldest
//! first, like `tail`. Both read the same columns as
//! [`export()`](crate::read::export()) and hand each row over as a
//! [`Row`]; which filters an index serves is in the
//! [filter's docs](crate::read::filter).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::ops::ControlFlow;
//! use ringtrail::read::{self, ExportFilter};
//!
//! let url = ringtrail_cluster::fresh_database()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let config: ringtrail::tls::ConnectOptions = url.parse()?;
//!     let mut client = read::connect(&config).await?;
//!     ringtrail::schema::apply(&mut client).await?;
//!     client.batch_execute(r#"
//!         INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
//!         SELECT now() + n * interval '1 ms', gen_random_uuid(), 9, 'my_app::db',
//!                'query ' || n, jsonb_build_object('n', n), false
//!         FROM generate_series(1, 5) AS n;
//!     "#).await?;
//!
//!     let filter = ExportFilter { target: Some("my_app::".into()), ..ExportFilter::default() };
//!     let mut seen = Vec::new();
//!     read::query(&client, &filter, Some(2), |row| {
//!         seen.push(row.message.to_owned());
//!         ControlFlow::Continue(())
//!     }).await?;
//!     assert_eq!(seen, ["query 1", "query 2"]);
//!
//!     seen.clear();
//!     read::last(&client, &filter, 2, |row| {
//!         seen.push(row.message.to_owned());
//!         ControlFlow::Continue(())
//!     }).await?;
//!     assert_eq!(seen, ["query 4", "query 5"]);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::ops::ControlFlow;

use tokio_postgres::GenericClient;

use super::export::{columns, select, stream, Exported};
use super::filter::{ExportFilter, Param};
use crate::row::Row;

/// Streams the rows `filter` keeps, ordered by `ts` then `id`, at most
/// `limit` of them (`None`: all), to `on_row`, in constant memory. A
/// limit past `i64::MAX` (what PostgreSQL's `LIMIT` takes) reads as
/// `i64::MAX`: no table holds more rows.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails.
pub async fn query(
    client: &impl GenericClient,
    filter: &ExportFilter,
    limit: Option<u64>,
    on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> crate::Result<Exported> {
    let (sql, params) = query_statement(client, filter, limit).await?;
    stream(client, &sql, &params, on_row).await
}

/// The statement [`query()`] runs on `client` for `filter` and `limit`,
/// and its parameters: its rows ordered by `ts`, then `id` (what
/// [`cluster::query`](super::cluster::query) merges by).
pub(crate) async fn query_statement(
    client: &impl GenericClient,
    filter: &ExportFilter,
    limit: Option<u64>,
) -> crate::Result<(String, Vec<Param>)> {
    let (mut sql, params) = select(columns(client).await?, filter, 1);
    sql.push_str(" ORDER BY ts, id");
    if let Some(limit) = limit {
        // A number this process formatted, not user text.
        sql.push_str(&format!(" LIMIT {}", sql_limit(limit)));
    }
    Ok((sql, params))
}

/// `n` as PostgreSQL's `LIMIT` takes it: at most `i64::MAX`, which no
/// table reaches, so the rows read are the same.
fn sql_limit(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Hands the newest `n` rows `filter` keeps to `on_row`, oldest first
/// (by `ts`, then `id`), like `tail -n`, in constant memory here.
///
/// The newest `n` are picked and put back in order by the server
/// (`ORDER BY ts DESC, id DESC LIMIT n` in a subquery, sorted again
/// outside it), and streamed: this process holds one row at a time,
/// whatever `n` is. The server's top-`n` sort keeps `n` rows in
/// `work_mem` and spills to disk past it. A limit past `i64::MAX` reads
/// as `i64::MAX`.
///
/// As [`page()`] does, the rows are looked for in a window first (the
/// hour before now, then windows 16 times wider, then the whole table):
/// a count that stops at `n` tells whether the window holds `n` rows, and
/// if it does, they are the newest `n`. So on a table written in time
/// order, `tail -n` reads the last hour's BRIN ranges, not the table.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails.
pub async fn last(
    client: &impl GenericClient,
    filter: &ExportFilter,
    n: u64,
    on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> crate::Result<Exported> {
    let columns = columns(client).await?;
    let bounded = newest_window(client, filter, None, n).await?;
    let (sql, params) = select(columns, &bounded, 1);
    // `SELECT *` of the subquery keeps its column list, and names: the
    // columns `stream` reads by position.
    let sql = format!(
        "SELECT * FROM ({sql} ORDER BY ts DESC, id DESC LIMIT {}) newest ORDER BY ts, id",
        sql_limit(n)
    );
    stream(client, &sql, &params, on_row).await
}

/// `select(columns, filter)`, and with `before` the rows strictly
/// before that key: the statement [`page()`] and its window probe run.
fn select_before(
    columns: &str,
    filter: &ExportFilter,
    before: Option<PageKey>,
) -> (String, Vec<Param>) {
    let (mut sql, mut params) = select(columns, filter, 1);
    if let Some(key) = before {
        let k = params.len() + 1;
        sql.push_str(if sql.contains(" WHERE ") {
            " AND "
        } else {
            " WHERE "
        });
        // `ts <= key` first, so the planner uses the ts index; then the
        // exact (ts, id) order.
        sql.push_str(&format!(
            "ts <= ${k} AND (ts, id) < (${k}, ${}::text::uuid)",
            k + 1
        ));
        params.push(Box::new(crate::time::from_micros(key.ts_micros)));
        params.push(Box::new(key.id.hyphenated().to_string()));
    }
    (sql, params)
}

/// `filter` narrowed to the shortest window back from `before` (or now)
/// that holds at least `n` of its rows (an hour, then 16 times wider
/// each time), or `filter` itself when none does: the newest `n` rows
/// are in it. Each probe is a count that stops at `n`.
async fn newest_window(
    client: &impl GenericClient,
    filter: &ExportFilter,
    before: Option<PageKey>,
    n: u64,
) -> crate::Result<ExportFilter> {
    let upper = before.map_or_else(
        || crate::time::micros(std::time::SystemTime::now()),
        |k| k.ts_micros,
    );
    let since = filter.since.map(crate::time::micros);
    let mut window = PAGE_WINDOW_MICROS;
    while window <= PAGE_WINDOW_MAX_MICROS {
        let lower = upper.saturating_sub(window);
        if since.is_some_and(|s| lower <= s) {
            break;
        }
        let mut bounded = filter.clone();
        bounded.since = Some(crate::time::from_micros(lower));
        let (sql, params) = select_before("1", &bounded, before);
        let count: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM ({sql} LIMIT {}) w", sql_limit(n)),
                &params
                    .iter()
                    .map(|p| &**p as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect::<Vec<_>>(),
            )
            .await?
            .get(0);
        if count as u64 >= n {
            return Ok(bounded);
        }
        window = window.saturating_mul(PAGE_WIDEN);
    }
    Ok(filter.clone())
}

/// Where a page of [`page()`] stops: the `(ts, id)` of its oldest row.
/// The next (older) page is the rows strictly before it. Prints as
/// `<unix microseconds>.<uuid>` for a URL, and parses back.
///
/// ```
/// use ringtrail::read::PageKey;
/// let key: PageKey = "1733570000000123.0190f5a2-0000-7000-8000-000000000001".parse().unwrap();
/// assert_eq!(key.ts_micros, 1_733_570_000_000_123);
/// assert_eq!(key.to_string(), "1733570000000123.0190f5a2-0000-7000-8000-000000000001");
/// assert!("yesterday".parse::<PageKey>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKey {
    /// The row's `ts`, in Unix microseconds (the column's precision).
    pub ts_micros: i64,
    /// The row's id.
    pub id: uuid::Uuid,
}

impl PageKey {
    /// The key of `row`.
    pub fn of(row: &Row<'_>) -> PageKey {
        PageKey {
            ts_micros: row.ts_unix_nanos.div_euclid(1_000),
            id: uuid::Uuid::from_bytes(row.id),
        }
    }
}

impl std::fmt::Display for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.ts_micros, self.id.hyphenated())
    }
}

impl std::str::FromStr for PageKey {
    type Err = String;
    fn from_str(s: &str) -> Result<PageKey, String> {
        let bad = || format!("{s:?}: not a page key (expected <unix micros>.<uuid>)");
        let (ts, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(PageKey {
            ts_micros: ts.parse().map_err(|_| bad())?,
            id: uuid::Uuid::try_parse(id).map_err(|_| bad())?,
        })
    }
}

/// The first window [`page()`] looks back over, before widening it.
const PAGE_WINDOW_MICROS: i64 = 3_600_000_000;
/// How much wider each next window is.
const PAGE_WIDEN: i64 = 16;
/// Past this the window is dropped: the whole table (or the filter's
/// `since`) is read.
const PAGE_WINDOW_MAX_MICROS: i64 = 3_650 * 86_400_000_000;

/// Hands one page of the rows `filter` keeps to `on_row`, **newest
/// first** (by `ts`, then `id`, descending): the `n` newest, or with
/// `before` the `n` newest strictly older than that key ([`PageKey::of`]
/// the last row of the page before). Keyset paging: a row committed
/// meanwhile never shifts a page.
///
/// `ts` has a BRIN index, not a B-tree (so ingest pays nothing for it),
/// and "the newest `n`" over a whole table would read all of it. So the
/// page is looked for in a window first: the hour before `before` (or
/// before now), then a window 16 times wider, and so on, and last the
/// whole table. A window that holds `n` rows holds the `n` newest, so
/// the answer is exact; on a table written in time order the first
/// window is a short BRIN range scan, however large the table. A count
/// that stops at `n` picks the window; the rows then stream, one held
/// at a time.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails.
pub async fn page(
    client: &impl GenericClient,
    filter: &ExportFilter,
    before: Option<PageKey>,
    n: u64,
    on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> crate::Result<Exported> {
    let (sql, params) = page_statement(client, filter, before, n).await?;
    stream(client, &sql, &params, on_row).await
}

/// The statement [`page()`] runs on `client` (its window probed first),
/// and its parameters: its rows ordered by `ts`, then `id`, descending
/// (what [`cluster::page`](super::cluster::page) merges by).
pub(crate) async fn page_statement(
    client: &impl GenericClient,
    filter: &ExportFilter,
    before: Option<PageKey>,
    n: u64,
) -> crate::Result<(String, Vec<Param>)> {
    let columns = columns(client).await?;
    let bounded = newest_window(client, filter, before, n).await?;
    let (mut sql, params) = select_before(columns, &bounded, before);
    sql.push_str(&format!(
        " ORDER BY ts DESC, id DESC LIMIT {}",
        sql_limit(n)
    ));
    Ok((sql, params))
}

#[cfg(test)]
mod tests {
    use super::sql_limit;

    #[test]
    fn limits_past_i64_max_read_as_i64_max() {
        assert_eq!(sql_limit(0), 0);
        assert_eq!(sql_limit(i64::MAX as u64), i64::MAX);
        assert_eq!(sql_limit(u64::MAX), i64::MAX);
    }
}
