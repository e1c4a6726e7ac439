//! Reading a sharded cluster: the rows of ringtrail may live in several
//! databases ("shards"), each with the whole schema (`ringtrail.logs`,
//! the ledger, the chain, the checkpoints), every row of one trace on one
//! shard. The functions here answer for the whole cluster, each by
//! running the single-database read on every shard and combining the
//! answers:
//!
//! | function | on each shard | combined |
//! |---|---|---|
//! | [`query()`] | [`read::query`](super::query()) | merged by `ts`, then `id`; `limit` rows overall |
//! | [`export()`] | [`read::export`](super::export()) | merged by `ts`, then `id` |
//! | [`page()`] | [`read::page`](super::page()) | merged by `ts`, then `id`, newest first; `n` rows overall |
//! | [`trace()`] | the trace's timeline | merged by `ts`, `seq`, `id`, then checked once |
//! | [`each_gap`] / [`gaps()`] | [`read::each_gap`](super::each_gap) | merged by trace id |
//! | [`stats()`] | [`read::stats`](super::stats()) | summed ([`TableStats::merge`]) |
//! | [`usage()`] | [`USAGE_SQL`](super::usage::USAGE_SQL) | one tally: groups merged, each cost rounded once |
//! | [`verify()`] | [`read::verify`](super::verify()) | findings by shard, summaries summed ([`VerifySummary::merge`]) |
//!
//! A shard is a `&Client` (see [`connect`](super::connect)); shard `i` is
//! the `i`-th of the slice, and a failure names it ([`ShardError`]).
//!
//! # Constant memory
//!
//! Rows are never collected: each shard's statement is started, and a
//! k-way [`Merge`] pulls its rows one at a time (`query_raw`), holding at
//! most one pending row per shard, and hands on the least. A shard's
//! connection is not read further than its pending row, so the server
//! waits on TCP, as for one database ([`export`](fn@super::export) explains
//! it). `query`'s limit is sent to every shard (none needs more) and
//! the merge stops after `limit` rows overall. The incomplete traces
//! merge the same way, one pending [`Gap`] per shard.
//!
//! # Exact
//!
//! Each merge compares in the order each shard's statement sorts by, so
//! the merged stream is what one database holding every shard's rows
//! would return: rows by (`ts`, `id`), as [`read::query`](super::query())
//! and [`read::export`](super::export()) sort them (ties broken by shard
//! order); a trace's rows by (`ts`, `seq`, `id`); gaps by trace id in
//! byte order (with several shards the statement sorts its trace ids
//! `COLLATE "C"`, which on a database whose collation is `C` or
//! `C.UTF-8`, the local store's, is the single database's order). A trace
//! lives on one shard, so its findings and its cost are what one database
//! would give; usage's priced tokens are summed across shards in
//! pico-USD and rounded once per group, so the cost is exact too.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::ops::ControlFlow;
//! use ringtrail::read::{self, cluster, ExportFilter};
//!
//! let urls = [ringtrail_cluster::fresh_database()?, ringtrail_cluster::fresh_database()?];
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let mut clients = Vec::new();
//!     for (shard, url) in urls.iter().enumerate() {
//!         let mut client = read::connect(&url.parse()?).await?;
//!         ringtrail::schema::apply(&mut client).await?;
//!         // Shard 0 holds the even milliseconds, shard 1 the odd ones.
//!         client.execute(
//!             "INSERT INTO ringtrail.logs (ts, id, level, target, message, fields, truncated)
//!              SELECT '2026-12-01T10:00:00Z'::timestamptz + n * interval '1 ms', gen_random_uuid(),
//!                     9, 'my_app', 'row ' || n, '{}', false
//!              FROM generate_series($1::int, 9, 2) AS n",
//!             &[&(shard as i32)],
//!         ).await?;
//!         clients.push(client);
//!     }
//!     let shards: Vec<&tokio_postgres::Client> = clients.iter().collect();
//!
//!     // Merged by time, and the limit counts rows of the whole cluster.
//!     let mut seen = Vec::new();
//!     let done = cluster::query(&shards, &ExportFilter::default(), Some(4), |row| {
//!         seen.push(row.message.to_owned());
//!         ControlFlow::Continue(())
//!     }).await?;
//!     assert_eq!(seen, ["row 0", "row 1", "row 2", "row 3"]);
//!     assert_eq!(done.rows, 4);
//!
//!     // Statistics are summed.
//!     let stats = cluster::stats(&shards).await?;
//!     assert_eq!((stats.rows, stats.by_level["INFO"]), (10, 10));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio_postgres::{Client, RowStream};

use super::export::{export_statement, open_rows, with_row, ExportFilter, Exported};
use super::gaps::{Gap, GapReader, Scan, Window, GAPS_SQL, GAPS_SQL_BYTE_ORDER};
use super::query::{page_statement, query_statement, PageKey};
use super::stats::TableStats;
use super::trace::{merge as merge_timelines, report, timeline, TraceReport, MAX_TRACE_ROWS};
use super::usage::{Group, Prices, Tally, UsageQuery};
use super::verify::{Progress, VerifyOptions, VerifySummary};
use crate::chain::finding::Finding;
use crate::encode::copy::{col, WireMicros, WireUuid};
use crate::row::Row;

/// A failure on one shard: which (its index in the slice of shards) and
/// why. Displays as `shard N`, the cause as its
/// [`source`](std::error::Error::source), so
/// [`error::chain`](crate::error::chain) prints `shard 1: …`.
#[derive(Debug)]
pub struct ShardError {
    /// The shard's index, 0-based, in the order the shards were given.
    pub shard: usize,
    /// What failed there.
    pub error: crate::Error,
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.shard)
    }
}

impl std::error::Error for ShardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Wraps an error of shard `shard`.
fn on(shard: usize) -> impl Fn(crate::Error) -> ShardError {
    move |error| ShardError { shard, error }
}

/// A source a [`Merge`] pulls from: one shard's items, in the merge's
/// order, one at a time.
pub trait Pull {
    /// What it yields.
    type Item;

    /// The next item; `None` after the last one (and not called again
    /// then).
    fn pull(&mut self) -> impl Future<Output = crate::Result<Option<Self::Item>>> + Send;
}

/// A k-way merge of sorted [`Pull`] sources: [`next`](Merge::next) hands
/// on the least pending item of all sources (by `order`; on a tie, the
/// lower source's), so sources sorted by `order` merge into one sorted
/// stream.
///
/// It holds at most one pending item per source, whatever they yield:
/// each source is pulled once at the start, then only the source whose
/// item was handed on, and only when the next item is asked for.
///
/// ```
/// use std::collections::VecDeque;
/// use ringtrail::read::cluster::{Merge, Pull};
///
/// struct Sorted(VecDeque<u32>);
/// impl Pull for Sorted {
///     type Item = u32;
///     fn pull(&mut self) -> impl std::future::Future<Output = ringtrail::Result<Option<u32>>> + Send {
///         std::future::ready(Ok(self.0.pop_front()))
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let sources = vec![Sorted(VecDeque::from([1, 4, 9])), Sorted(VecDeque::from([2, 3, 10]))];
///     let mut merge = Merge::new(sources, |a: &u32, b: &u32| a.cmp(b));
///     let mut out = Vec::new();
///     while let Some((shard, n)) = merge.next().await.unwrap() {
///         assert!(merge.held() <= 2);
///         out.push((shard, n));
///     }
///     assert_eq!(out, [(0, 1), (1, 2), (1, 3), (0, 4), (0, 9), (1, 10)]);
/// });
/// ```
pub struct Merge<P: Pull> {
    sources: Vec<P>,
    /// Each source's pending item: `None` before the first pull, after
    /// its last item, and for the source whose item was handed on last.
    heads: Vec<Option<P::Item>>,
    /// Whether every source has been pulled once.
    primed: bool,
    /// The source whose item was handed on last: pulled on the next call.
    refill: Option<usize>,
    order: fn(&P::Item, &P::Item) -> Ordering,
}

impl<P: Pull> Merge<P> {
    /// A merge of `sources` (source `i` is shard `i`), each sorted by
    /// `order`. Nothing is pulled until [`next`](Merge::next).
    pub fn new(sources: Vec<P>, order: fn(&P::Item, &P::Item) -> Ordering) -> Merge<P> {
        let heads = sources.iter().map(|_| None).collect();
        Merge {
            sources,
            heads,
            primed: false,
            refill: None,
            order,
        }
    }

    /// The least pending item and its source's index; `None` when every
    /// source is done.
    ///
    /// # Errors
    ///
    /// A [`ShardError`] naming the source whose pull failed.
    pub async fn next(&mut self) -> Result<Option<(usize, P::Item)>, ShardError> {
        if !self.primed {
            self.primed = true;
            for (i, source) in self.sources.iter_mut().enumerate() {
                self.heads[i] = source.pull().await.map_err(on(i))?;
            }
        } else if let Some(i) = self.refill.take() {
            self.heads[i] = self.sources[i].pull().await.map_err(on(i))?;
        }
        let mut least: Option<(usize, &P::Item)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            let Some(item) = head else { continue };
            match least {
                Some((_, best)) if (self.order)(best, item) != Ordering::Greater => {}
                _ => least = Some((i, item)),
            }
        }
        let Some((i, _)) = least else {
            return Ok(None);
        };
        self.refill = Some(i);
        Ok(self.heads[i].take().map(|item| (i, item)))
    }

    /// How many pending items the merge holds: at most one per source.
    pub fn held(&self) -> usize {
        self.heads.iter().filter(|h| h.is_some()).count()
    }

    /// The sources, back (to read what they counted).
    pub fn into_sources(self) -> Vec<P> {
        self.sources
    }
}

/// One shard's rows of a statement selecting
/// [`SELECT_COLUMNS`](crate::encode::copy::SELECT_COLUMNS), pulled one at
/// a time.
struct Rows {
    stream: Pin<Box<RowStream>>,
    ended: bool,
}

impl Pull for Rows {
    type Item = tokio_postgres::Row;

    async fn pull(&mut self) -> crate::Result<Option<tokio_postgres::Row>> {
        if self.ended {
            return Ok(None);
        }
        match self.stream.next().await {
            Some(row) => Ok(Some(row?)),
            None => {
                self.ended = true;
                Ok(None)
            }
        }
    }
}

impl Pull for GapReader {
    type Item = Gap;

    fn pull(&mut self) -> impl Future<Output = crate::Result<Option<Gap>>> + Send {
        self.next_gap()
    }
}

/// The order `ORDER BY ts, id` gives: microseconds, then the UUID's
/// bytes (PostgreSQL compares `uuid`s bytewise).
fn by_ts_then_id(a: &tokio_postgres::Row, b: &tokio_postgres::Row) -> Ordering {
    let key = |r: &tokio_postgres::Row| {
        (
            r.get::<_, WireMicros>(col::TS).0,
            r.get::<_, WireUuid>(col::ID).0,
        )
    };
    key(a).cmp(&key(b))
}

/// Gaps by trace id, in byte order.
fn by_trace_id(a: &Gap, b: &Gap) -> Ordering {
    a.trace_id.as_bytes().cmp(b.trace_id.as_bytes())
}

/// Starts the statement `statement` makes for each shard and merges the
/// rows in `order`.
async fn merged_rows<'s, F, Fut>(
    shards: &'s [&'s Client],
    order: fn(&tokio_postgres::Row, &tokio_postgres::Row) -> Ordering,
    statement: F,
) -> Result<Merge<Rows>, ShardError>
where
    F: Fn(&'s Client) -> Fut,
    Fut: Future<Output = crate::Result<(String, Vec<super::filter::Param>)>>,
{
    let mut sources = Vec::with_capacity(shards.len());
    for (i, client) in shards.iter().enumerate() {
        let (sql, params) = statement(client).await.map_err(on(i))?;
        let stream = open_rows(*client, &sql, &params).await.map_err(on(i))?;
        sources.push(Rows {
            stream: Box::pin(stream),
            ended: false,
        });
    }
    Ok(Merge::new(sources, order))
}

/// Hands the merged rows to `on_row` as [`Row`]s, at most `limit`.
async fn drain(
    mut merge: Merge<Rows>,
    limit: Option<u64>,
    mut on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> Result<Exported, ShardError> {
    let mut done = Exported::default();
    while limit.is_none_or(|n| done.rows < n) {
        let Some((_, row)) = merge.next().await? else {
            break;
        };
        if with_row(&row, &mut on_row).is_break() {
            done.stopped = true;
            break;
        }
        done.rows += 1;
    }
    Ok(done)
}

/// [`read::query`](super::query()) over the cluster: the rows `filter`
/// keeps on every shard, merged by `ts`, then `id`, at most `limit` of
/// them overall (`None`: all), to `on_row`, in constant memory (one
/// pending row per shard).
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed (rows already
/// handed on stay handed on).
pub async fn query(
    shards: &[&Client],
    filter: &ExportFilter,
    limit: Option<u64>,
    on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> Result<Exported, ShardError> {
    let merge = merged_rows(shards, by_ts_then_id, |c| query_statement(c, filter, limit)).await?;
    drain(merge, limit, on_row).await
}

/// [`read::export`](super::export()) over the cluster: every row
/// `filter` keeps on every shard, merged by `ts`, then `id`, to
/// `on_row`, in constant memory (one pending row per shard).
/// [`ControlFlow::Break`] stops it.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed (rows already
/// handed on stay handed on).
pub async fn export(
    shards: &[&Client],
    filter: &ExportFilter,
    on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> Result<Exported, ShardError> {
    let merge = merged_rows(shards, by_ts_then_id, |c| export_statement(c, filter)).await?;
    drain(merge, None, on_row).await
}

/// [`read::page`](super::page()) over the cluster: the `n` newest rows
/// `filter` keeps on any shard (strictly before `before`, with it), newest
/// first, to `on_row`. Each shard's page (at most `n` rows, its own
/// window probed) is merged by `ts`, then `id`, descending, and the merge
/// stops after `n`: one pending row per shard, whatever `n` is.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed.
pub async fn page(
    shards: &[&Client],
    filter: &ExportFilter,
    before: Option<PageKey>,
    n: u64,
    on_row: impl FnMut(&Row<'_>) -> ControlFlow<()>,
) -> Result<Exported, ShardError> {
    let newest_first = |a: &tokio_postgres::Row, b: &tokio_postgres::Row| by_ts_then_id(b, a);
    let merge = merged_rows(shards, newest_first, |c| {
        page_statement(c, filter, before, n)
    })
    .await?;
    drain(merge, Some(n), on_row).await
}

/// [`read::trace`](super::trace()) over the cluster: the trace's
/// timeline read on every shard (a trace lives on one, so the others
/// find nothing), merged by `ts`, `seq`, `id`, and checked once. `None`
/// when no shard has a row of it. At most
/// [`MAX_TRACE_ROWS`] rows are kept.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed.
pub async fn trace(
    shards: &[&Client],
    trace_id: &str,
    now: SystemTime,
    grace: Duration,
) -> Result<Option<TraceReport>, ShardError> {
    trace_limited(shards, trace_id, now, grace, MAX_TRACE_ROWS).await
}

/// [`trace()`], keeping at most `max_rows` rows, as
/// [`read::trace_limited`](super::trace_limited) does.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed.
pub async fn trace_limited(
    shards: &[&Client],
    trace_id: &str,
    now: SystemTime,
    grace: Duration,
    max_rows: usize,
) -> Result<Option<TraceReport>, ShardError> {
    let mut rows = Vec::new();
    for (i, client) in shards.iter().enumerate() {
        let found = timeline(client, trace_id, max_rows).await.map_err(on(i))?;
        rows = if rows.is_empty() {
            found
        } else {
            merge_timelines(rows, found)
        };
    }
    Ok(report(trace_id, rows, now, grace, max_rows))
}

/// [`read::gaps`](super::gaps()) over the cluster: every incomplete
/// trace with an audit point in `[since, until)` on any shard, by trace
/// id (see [`each_gap`]).
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed.
pub async fn gaps(
    shards: &[&Client],
    since: SystemTime,
    until: SystemTime,
    grace: Duration,
    now: SystemTime,
) -> Result<Vec<Gap>, ShardError> {
    let mut out = Vec::new();
    each_gap(shards, since, until, grace, now, |gap| out.push(gap)).await?;
    Ok(out)
}

/// [`read::each_gap`](super::each_gap) over the cluster: each shard's
/// incomplete traces, merged by trace id (in byte order: see the
/// [module docs](self)), to `on_gap` as each is found, holding one
/// pending gap per shard; what was read, summed over the shards.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed.
pub async fn each_gap(
    shards: &[&Client],
    since: SystemTime,
    until: SystemTime,
    grace: Duration,
    now: SystemTime,
    on_gap: impl FnMut(Gap),
) -> Result<Scan, ShardError> {
    each_gap_limited(shards, since, until, grace, now, MAX_TRACE_ROWS, on_gap).await
}

/// [`each_gap`], checking at most `max_points` audit points of a trace,
/// as [`read::each_gap_limited`](super::each_gap_limited) does.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed.
pub async fn each_gap_limited(
    shards: &[&Client],
    since: SystemTime,
    until: SystemTime,
    grace: Duration,
    now: SystemTime,
    max_points: usize,
    mut on_gap: impl FnMut(Gap),
) -> Result<Scan, ShardError> {
    let window = Window {
        since,
        until,
        grace,
        now,
        max_points,
    };
    // One database keeps its own order (its collation's); several sort
    // their trace ids bytewise, the order the merge compares in.
    let sql = if shards.len() == 1 {
        GAPS_SQL
    } else {
        GAPS_SQL_BYTE_ORDER.as_str()
    };
    let mut readers = Vec::with_capacity(shards.len());
    for (i, client) in shards.iter().enumerate() {
        readers.push(GapReader::open(client, &window, sql).await.map_err(on(i))?);
    }
    let mut merge = Merge::new(readers, by_trace_id);
    while let Some((_, gap)) = merge.next().await? {
        on_gap(gap);
    }
    let mut scan = Scan::default();
    for reader in merge.into_sources() {
        scan.traces += reader.scan.traces;
        scan.points += reader.scan.points;
        scan.gaps += reader.scan.gaps;
    }
    Ok(scan)
}

/// [`read::stats`](super::stats()) over the cluster: every shard's
/// figures summed ([`TableStats::merge`]).
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed.
pub async fn stats(shards: &[&Client]) -> Result<TableStats, ShardError> {
    let mut total: Option<TableStats> = None;
    for (i, client) in shards.iter().enumerate() {
        let stats = super::stats(client).await.map_err(on(i))?;
        match &mut total {
            Some(total) => total.merge(stats),
            None => total = Some(stats),
        }
    }
    Ok(total.unwrap_or_default())
}

/// [`read::usage`](super::usage()) over the cluster: every shard's
/// groups added up in one tally, so a group found on several shards is
/// one group, its priced tokens rounded once: the figures one database
/// holding every shard's rows would give.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose query failed (or, for an
/// overflow of a group's cost, the last shard).
pub async fn usage(
    shards: &[&Client],
    query: &UsageQuery,
    prices: &Prices,
) -> Result<Vec<Group>, ShardError> {
    let mut tally = Tally::default();
    for (i, client) in shards.iter().enumerate() {
        tally.add(*client, query, prices).await.map_err(on(i))?;
    }
    tally
        .finish(query.by)
        .map_err(on(shards.len().saturating_sub(1)))
}

/// [`read::verify`](super::verify()) over the cluster: each shard's
/// chains checked in turn, shard `i` with `options[i]` (its own
/// checkpoint file, say), each finding handed to `on_finding` with its
/// shard's index; the summaries summed ([`VerifySummary::merge`]).
/// `on_progress` sees the progress of the shards so far, added up.
///
/// # Errors
///
/// A [`ShardError`] naming the shard whose check failed (findings
/// already handed on stay handed on), or the first shard `options` has
/// no entry for ([`Error::Config`](crate::Error::Config)).
pub async fn verify(
    shards: &mut [&mut Client],
    options: &[VerifyOptions],
    mut on_finding: impl FnMut(usize, &Finding),
    mut on_progress: impl FnMut(&Progress),
) -> Result<VerifySummary, ShardError> {
    let mut summary = VerifySummary::default();
    let mut before = Progress::default();
    for (i, client) in shards.iter_mut().enumerate() {
        let Some(options) = options.get(i) else {
            return Err(ShardError {
                shard: i,
                error: crate::Error::Config(format!("no verify options for shard {i}")),
            });
        };
        let mut last = Progress::default();
        let found = super::verify(
            client,
            options,
            |f| on_finding(i, f),
            |p| {
                last = *p;
                on_progress(&Progress {
                    ledger_rows: before.ledger_rows + p.ledger_rows,
                    ledger_done: before.ledger_done + p.ledger_done,
                    rows: before.rows + p.rows,
                });
            },
        )
        .await
        .map_err(on(i))?;
        before.ledger_rows += last.ledger_rows;
        before.ledger_done += last.ledger_done;
        before.rows += last.rows;
        summary.merge(&found);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    use std::sync::Arc;

    /// A sorted source that counts how many items were pulled from it.
    struct Counted {
        items: VecDeque<(u32, u32)>,
        pulled: Arc<AtomicUsize>,
    }

    impl Pull for Counted {
        type Item = (u32, u32);
        fn pull(&mut self) -> impl Future<Output = crate::Result<Option<(u32, u32)>>> + Send {
            let next = self.items.pop_front();
            if next.is_some() {
                self.pulled.fetch_add(1, AtomicOrdering::Relaxed);
            }
            std::future::ready(Ok(next))
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Three shards of 10,000 items each, interleaved: the merge is
    /// sorted and complete, and at every step it holds at most one item
    /// per shard and has pulled at most one item more per shard than it
    /// handed on. So memory does not grow with the rows, whatever their
    /// number.
    #[test]
    fn the_merge_holds_one_pending_item_per_shard() {
        const SHARDS: u32 = 3;
        const EACH: u32 = 10_000;
        let pulled = Arc::new(AtomicUsize::new(0));
        let sources = (0..SHARDS)
            .map(|s| Counted {
                // Timestamps interleaved across the shards, with ties.
                items: (0..EACH).map(|n| (n * SHARDS + s / 2, s)).collect(),
                pulled: Arc::clone(&pulled),
            })
            .collect();
        let mut merge = Merge::new(sources, |a: &(u32, u32), b: &(u32, u32)| a.0.cmp(&b.0));
        let mut out = Vec::new();
        block_on(async {
            while let Some((shard, item)) = merge.next().await.unwrap() {
                assert_eq!(item.1 as usize, shard);
                out.push(item);
                let handed = out.len();
                assert!(
                    merge.held() < SHARDS as usize,
                    "one handed on, the others pending"
                );
                assert!(
                    pulled.load(AtomicOrdering::Relaxed) < handed + SHARDS as usize,
                    "pulled ahead of the output"
                );
            }
        });
        assert_eq!(out.len(), (SHARDS * EACH) as usize);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "sorted");
        // Ties go to the lower shard first.
        assert_eq!(&out[..3], [(0, 0), (0, 1), (1, 2)]);
        assert_eq!(merge.held(), 0);
    }

    #[test]
    fn a_limit_stops_pulling() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let sources: Vec<Counted> = (0..2)
            .map(|s| Counted {
                items: (0..1_000).map(|n| (n * 2 + s, s)).collect(),
                pulled: Arc::clone(&pulled),
            })
            .collect();
        let mut merge = Merge::new(sources, |a: &(u32, u32), b: &(u32, u32)| a.cmp(b));
        block_on(async {
            for want in 0..5 {
                assert_eq!(merge.next().await.unwrap().unwrap().1 .0, want);
            }
        });
        // Five handed on: the first of each shard, then one pull per
        // item handed on after the first, none for the next call.
        assert_eq!(pulled.load(AtomicOrdering::Relaxed), 6);
    }

    #[test]
    fn a_failing_shard_is_named() {
        struct Failing;
        impl Pull for Failing {
            type Item = u32;
            fn pull(&mut self) -> impl Future<Output = crate::Result<Option<u32>>> + Send {
                std::future::ready(Err(crate::Error::Config("gone".into())))
            }
        }
        struct Empty;
        impl Pull for Empty {
            type Item = u32;
            fn pull(&mut self) -> impl Future<Output = crate::Result<Option<u32>>> + Send {
                std::future::ready(Ok(None))
            }
        }
        let mut merge = Merge::new(vec![Failing], |a: &u32, b: &u32| a.cmp(b));
        let e = block_on(merge.next()).unwrap_err();
        assert_eq!(e.shard, 0);
        assert_eq!(
            crate::error::chain(&e),
            "shard 0: invalid configuration: gone"
        );
        let mut empty = Merge::new(vec![Empty, Empty], |a: &u32, b: &u32| a.cmp(b));
        assert!(block_on(empty.next()).unwrap().is_none());
    }
}
