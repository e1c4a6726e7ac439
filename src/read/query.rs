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

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::GenericClient;

use super::export::{select, stream, with_row, Exported};
use super::filter::{as_refs, ExportFilter};
use crate::row::Row;

/// Streams the rows `filter` keeps, ordered by `ts` then `id`, at most
/// `limit` of them (`None`: all), to `on_row`, in constant memory.
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
    let (mut sql, params) = select(filter, 1);
    sql.push_str(" ORDER BY ts, id");
    if let Some(limit) = limit {
        // A number this process formatted, not user text.
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    stream(client, &sql, &params, on_row).await
}

/// Hands the newest `n` rows `filter` keeps to `on_row`, oldest first
/// (by `ts`, then `id`), like `tail -n`.
///
/// # Errors
///
/// [`Error::Postgres`](crate::Error::Postgres) when the query fails.
pub async fn last(
    client: &impl GenericClient,
    filter: &ExportFilter,
    n: u64,
    mut on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> crate::Result<Exported> {
    let (mut sql, params) = select(filter, 1);
    sql.push_str(&format!(" ORDER BY ts DESC, id DESC LIMIT {n}"));
    let stream = client.query_raw(&sql, as_refs(&params)).await?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        rows.push(row?);
    }
    let mut done = Exported::default();
    for row in rows.iter().rev() {
        if with_row(row, &mut on_row).is_break() {
            done.stopped = true;
            break;
        }
        done.rows += 1;
    }
    Ok(done)
}
