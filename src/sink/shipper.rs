//! The shipper: the PostgreSQL client side of the sink, on its own thread
//! (`ringtrail-shipper`), so the writer encodes the next batch while this
//! one is in flight. It owns a `deadpool-postgres` pool, a private
//! current-thread tokio runtime (callers need no runtime of their own), the
//! spool, and the delivery rules:
//!
//! 1. Each batch is `BEGIN; COPY …; INSERT INTO ringtrail.batches …;
//!    COMMIT`. The ledger row makes the batch's commit observable.
//! 2. A connection-class failure is retried with backoff and jitter. Every
//!    retry first asks the ledger whether the batch already committed (the
//!    connection may have died after the server committed), and skips it
//!    if so.
//! 3. A data-class failure names a row (`COPY logs, line N`): that row
//!    goes to `ringtrail.dead_letters` and the rest is retried. With no
//!    line, the batch is bisected until the bad row is alone.
//! 4. When retries are exhausted, or PostgreSQL has been unreachable for
//!    `spool_after`, batches go to the spool on disk, and are replayed
//!    (through the ledger, so exactly once) when PostgreSQL answers again.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::SinkExt;
use tokio_postgres::NoTls;

use super::batch::{is_report, SealedBatch};
use super::retry::{classify, is_transient, Backoff, Failure};
use super::spool::{Segment, Spool};
use super::Outcome;
use crate::encode::copy::copy_statement;
use crate::uuid7::Uuid7;
use crate::{migrate, Error, Result};

/// Where and how much to spool.
#[derive(Debug, Clone)]
pub(crate) struct SpoolConfig {
    pub(crate) dir: PathBuf,
    pub(crate) max_bytes: u64,
    /// Spool once PostgreSQL has been failing this long.
    pub(crate) after: Duration,
}

/// Settings of the PostgreSQL sink, filled in by the builder.
#[derive(Debug, Clone)]
pub(crate) struct PostgresConfig {
    pub(crate) url: String,
    pub(crate) synchronous_commit: bool,
    pub(crate) migrate: bool,
    pub(crate) commit_timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) spool: Option<SpoolConfig>,
}

/// How often a sink that found PostgreSQL unreachable tries again.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Where a batch being delivered came from; decides what its rows count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Live,
    Spool { inherited: bool },
}

/// A batch that could not be delivered for now, and why.
struct GaveUp {
    remaining: Vec<SealedBatch>,
    /// The batch came back exactly as it went in (nothing was split off).
    untouched: bool,
    error: Error,
}

impl GaveUp {
    /// What `deliver` returns when it stops trying.
    fn with(
        delivered: Outcome,
        remaining: Vec<SealedBatch>,
        untouched: bool,
        error: Error,
    ) -> (Outcome, Option<GaveUp>) {
        (
            delivered,
            Some(GaveUp {
                remaining,
                untouched,
                error,
            }),
        )
    }
}

/// Ships sealed batches to PostgreSQL through binary COPY.
pub(crate) struct Shipper {
    runtime: tokio::runtime::Runtime,
    pool: Pool,
    /// The connection the writer holds between batches.
    client: Option<deadpool_postgres::Object>,
    statement: String,
    /// Ids for the halves of a bisected batch.
    ids: Uuid7,
    config: PostgresConfig,
    migrated: bool,
    spool: Option<Spool>,
    /// PostgreSQL has been unreachable since then: live batches go straight
    /// to the spool until a probe at `next_probe` succeeds.
    down_since: Option<Instant>,
    next_probe: Instant,
    backoff: Backoff,
}

impl Shipper {
    /// Builds the pool, opens the spool, checks the connection and applies
    /// migrations when asked. With a spool configured, an unreachable server
    /// is not an error: the shipper starts spooling and connects later.
    pub(crate) fn connect(config: &PostgresConfig) -> Result<Shipper> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|e| Error::Config(format!("bad PostgreSQL URL: {e}")))?;
        if pg.get_application_name().is_none() {
            pg.application_name("ringtrail");
        }
        if !config.synchronous_commit {
            // Applies to the whole session, so to every batch on it.
            let options = match pg.get_options() {
                Some(existing) => format!("{existing} -c synchronous_commit=off"),
                None => "-c synchronous_commit=off".to_owned(),
            };
            pg.options(&options);
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        pg.keepalives(true);
        // `Verified` runs a cheap query before reusing a connection, so a
        // connection killed by a network drop or server restart is replaced
        // instead of failing the next batch.
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(2)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.commit_timeout))
            .create_timeout(Some(config.commit_timeout))
            .recycle_timeout(Some(config.commit_timeout))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        let spool = match &config.spool {
            Some(s) => Some(Spool::open(&s.dir, s.max_bytes)?),
            None => None,
        };
        let mut sink = Shipper {
            runtime,
            pool,
            client: None,
            statement: copy_statement(),
            ids: Uuid7::new(),
            config: config.clone(),
            migrated: !config.migrate,
            spool,
            down_since: None,
            next_probe: Instant::now(),
            backoff: Backoff::new(now_nanos() as u64, Duration::from_secs(5)),
        };
        let (pool, migrate) = (&sink.pool, config.migrate);
        let first = sink.runtime.block_on(async {
            let mut client = pool.get().await.map_err(pool_error)?;
            if migrate {
                migrate::apply(&mut client).await?;
            }
            Ok::<_, Error>(())
        });
        match first {
            Ok(()) => sink.migrated = true,
            Err(e) if sink.spool.is_some() && is_transient(&e) => {
                eprintln!(
                    "ringtrail: PostgreSQL unreachable at start ({e}); spooling until it answers"
                );
                sink.mark_down();
            }
            Err(e) => return Err(e),
        }
        Ok(sink)
    }

    fn mark_down(&mut self) {
        let now = Instant::now();
        if self.down_since.is_none() {
            let fate = if self.spool.is_some() {
                "spooling to disk"
            } else {
                "no spool configured"
            };
            eprintln!("ringtrail: PostgreSQL unreachable; {fate} until it answers");
            self.down_since = Some(now);
        }
        self.next_probe = now + PROBE_INTERVAL;
    }

    fn mark_up(&mut self) {
        if self.down_since.take().is_some() {
            eprintln!("ringtrail: PostgreSQL answers again");
        }
    }

    /// One attempt: the ledger check (on retries), then
    /// `BEGIN; COPY …; INSERT ledger; COMMIT` in three round trips: BEGIN
    /// is pipelined with the start of the COPY, and the ledger row travels
    /// with the COMMIT in one simple query.
    fn ship(
        &mut self,
        batch: &SealedBatch,
        check_ledger: bool,
        deadline: Option<Instant>,
    ) -> Result<()> {
        let mut timeout = self.config.commit_timeout;
        if let Some(deadline) = deadline {
            timeout = timeout.min(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            );
        }
        let Shipper {
            runtime,
            pool,
            statement,
            client: held,
            migrated,
            ..
        } = self;
        let result = runtime.block_on(async {
            tokio::time::timeout(timeout, async {
                // The writer keeps one connection checked out across
                // batches, so `Verified` recycling costs a round trip per
                // reconnect rather than per batch. It is dropped on any
                // error, and the next attempt checks out a verified one.
                let client = match held {
                    Some(client) => client,
                    None => held.insert(pool.get().await.map_err(pool_error)?),
                };
                if !*migrated {
                    migrate::apply(client).await?;
                    *migrated = true;
                }
                let id = batch.id_text();
                if check_ledger {
                    let done: bool = client
                        .query_one(
                            "SELECT EXISTS (SELECT 1 FROM ringtrail.batches WHERE batch_id = $1::text::uuid)",
                            &[&id],
                        )
                        .await?
                        .get(0);
                    if done {
                        return Ok(());
                    }
                }
                let copy_statement = client.prepare_cached(statement).await?;
                let (_, copy) = futures_util::future::try_join(
                    client.batch_execute("BEGIN"),
                    client.copy_in::<_, Bytes>(&copy_statement),
                )
                .await?;
                futures_util::pin_mut!(copy);
                copy.send(batch.bytes.clone()).await?;
                copy.finish().await?;
                // Only values this process formatted itself go into the
                // text: a UUID and integers.
                let micros = |nanos: i64| nanos.div_euclid(1_000);
                client
                    .batch_execute(&format!(
                        "INSERT INTO ringtrail.batches (batch_id, rows, bytes, first_ts, last_ts) VALUES \
                         ('{id}', {}, {}, 'epoch'::timestamptz + {} * interval '1 microsecond', \
                         'epoch'::timestamptz + {} * interval '1 microsecond'); COMMIT",
                        batch.rows,
                        batch.bytes.len(),
                        micros(batch.first_ts),
                        micros(batch.last_ts),
                    ))
                    .await?;
                Ok(())
            })
            .await
            .unwrap_or(Err(Error::Timeout("committing a batch")))
        });
        if result.is_err() {
            // Never hand a connection in an unknown state (mid-COPY, in an
            // aborted transaction) back to the pool: detach and close it.
            if let Some(client) = self.client.take() {
                drop(deadpool_postgres::Object::take(client));
            }
        }
        result
    }

    /// Stores one refused row in `ringtrail.dead_letters`.
    fn dead_letter(
        &mut self,
        batch: &SealedBatch,
        line: Option<usize>,
        tuple: &[u8],
        error: &Error,
    ) -> Result<()> {
        let (sqlstate, message) = match error {
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => (db.code().code().to_owned(), db.message().to_owned()),
                None => (String::new(), e.to_string()),
            },
            other => (String::new(), other.to_string()),
        };
        let id = batch.id_text();
        let line = line.map(|l| l as i32);
        let pool = &self.pool;
        let timeout = self.config.commit_timeout;
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, async {
                let client = pool.get().await.map_err(pool_error)?;
                client
                    .execute(
                        "INSERT INTO ringtrail.dead_letters (batch_id, line, sqlstate, message, tuple)
                         VALUES ($1::text::uuid, $2, $3, $4, $5)",
                        &[&id, &line, &sqlstate, &message, &tuple],
                    )
                    .await?;
                Ok(())
            })
            .await
            .unwrap_or(Err(Error::Timeout("writing a dead letter")))
        })
    }

    /// Delivers `batch` and what it splits into. Returns what was
    /// delivered, and what could not be (with why) when it gave up.
    fn deliver(
        &mut self,
        batch: SealedBatch,
        deadline: Option<Instant>,
        origin: Origin,
    ) -> (Outcome, Option<GaveUp>) {
        let mut out = Outcome::default();
        let mut work = vec![batch];
        let mut untouched = true;
        let mut attempt = 0u32;
        let mut first_failure: Option<Instant> = None;
        // A replayed batch may have committed before its segment was
        // deleted (a crash in between): always ask the ledger.
        let mut check_ledger = origin != Origin::Live;
        while let Some(mut b) = work.pop() {
            loop {
                let failure = match self.ship(&b, check_ledger, deadline) {
                    Ok(()) => {
                        self.mark_up();
                        out.batches += 1;
                        tally_committed(&mut out, origin, b.events());
                        break;
                    }
                    Err(e) => classify(e),
                };
                match failure {
                    Failure::Data { line, error } => {
                        untouched = false;
                        // The server refused the batch: it rolled back for
                        // sure, so its id is still unused.
                        check_ledger = false;
                        let tuples = b.rows as usize;
                        let bad = match line {
                            Some(n) if n >= 1 && n <= tuples => Some(n - 1),
                            _ if tuples <= 1 => Some(0),
                            _ => None,
                        };
                        let Some(index) = bad else {
                            // No row named: bisect.
                            let [first, second] =
                                b.halves([self.ids.next(now_nanos()), self.ids.next(now_nanos())]);
                            work.push(second);
                            work.push(first);
                            break;
                        };
                        let (tuple, rest) = b.without(index);
                        match self.dead_letter(&b, line, &tuple, &error) {
                            Ok(()) => {
                                let event = !is_report(&tuple) as u64;
                                if origin != (Origin::Spool { inherited: true }) {
                                    out.dead_lettered += event;
                                }
                                if origin == (Origin::Spool { inherited: false }) {
                                    out.unspooled += event;
                                }
                            }
                            Err(error) => {
                                // Could not even store the dead letter: keep
                                // the whole batch for later.
                                work.push(b);
                                return GaveUp::with(out, work, untouched, error);
                            }
                        }
                        if rest.rows == 0 {
                            break;
                        }
                        b = rest;
                    }
                    Failure::Retry(error) | Failure::Fatal(error) => {
                        let fatal = !is_transient(&error);
                        attempt += 1;
                        check_ledger = true; // the outcome may be unknown
                        let since = *first_failure.get_or_insert_with(Instant::now);
                        let retry_at = Instant::now() + self.backoff.delay(attempt);
                        let spool_after = self.config.spool.as_ref().map(|s| s.after);
                        let give_up = fatal
                            || self.down_since.is_some()
                            || attempt > self.config.max_retries
                            || spool_after.is_some_and(|after| since.elapsed() >= after)
                            || deadline.is_some_and(|d| retry_at >= d);
                        if give_up {
                            self.mark_down();
                            work.push(b);
                            return GaveUp::with(out, work, untouched, error);
                        }
                        std::thread::sleep(retry_at.saturating_duration_since(Instant::now()));
                    }
                }
            }
        }
        (out, None)
    }

    /// Writes batches that could not be delivered to the spool. Rows that
    /// do not fit (no spool, cap reached, disk error) are lost and counted.
    fn spool_all(&mut self, batches: &[SealedBatch], inherited: bool, out: &mut Outcome) {
        for batch in batches {
            let rows = batch.events();
            let written = match self.spool.as_mut() {
                Some(spool) => spool.write(batch, inherited).unwrap_or_else(|e| {
                    eprintln!("ringtrail: spool write failed: {e}");
                    false
                }),
                None => false,
            };
            match (written, inherited) {
                (true, false) => out.spooled += rows,
                (true, true) => {}
                (false, false) => out.lost += rows,
                // Rows of an earlier process that cannot be re-spooled
                // were never counted by this one.
                (false, true) => {}
            }
        }
    }
}

fn tally_committed(out: &mut Outcome, origin: Origin, rows: u64) {
    match origin {
        Origin::Live => out.written += rows,
        Origin::Spool { inherited: false } => {
            out.written += rows;
            out.unspooled += rows;
        }
        Origin::Spool { inherited: true } => out.recovered += rows,
    }
}

pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => Error::Postgres(e),
        other => Error::Pool(other.to_string()),
    }
}

impl Shipper {
    /// Delivers one live batch: committed, or else spooled (or lost).
    pub(crate) fn commit(&mut self, batch: SealedBatch, deadline: Option<Instant>) -> Outcome {
        // Known down and no probe due: go straight to disk instead of
        // waiting on the network while the ring fills.
        if self.spool.is_some() && self.down_since.is_some() && Instant::now() < self.next_probe {
            let mut out = Outcome::default();
            self.spool_all(std::slice::from_ref(&batch), false, &mut out);
            out.error = Some("PostgreSQL unreachable: batch spooled".into());
            return out;
        }
        let (mut out, gave_up) = self.deliver(batch, deadline, Origin::Live);
        if let Some(g) = gave_up {
            self.spool_all(&g.remaining, false, &mut out);
            let fate = if self.spool.is_some() {
                "spooled"
            } else {
                "lost"
            };
            out.error = Some(format!("batch {fate}: {}", g.error));
        }
        out
    }

    /// Replays the oldest spool segment if PostgreSQL may be back. Returns
    /// what it did and when it wants to run again (`None`: spool empty).
    pub(crate) fn maintain(&mut self, deadline: Option<Instant>) -> (Outcome, Option<Duration>) {
        let mut out = Outcome::default();
        let Some(segment) = self.spool.as_ref().and_then(Spool::oldest).cloned() else {
            return (out, None);
        };
        let now = Instant::now();
        if self.down_since.is_some() && now < self.next_probe {
            return (out, Some(self.next_probe - now));
        }
        let Segment { inherited, .. } = segment;
        let batch = match Spool::load(&segment) {
            Ok(batch) => batch,
            Err(e) => {
                eprintln!("ringtrail: {e}; renamed to .corrupt");
                if let Some(spool) = self.spool.as_mut() {
                    let _ = spool.pop_oldest(true);
                }
                return (out, Some(Duration::ZERO));
            }
        };
        let (delivered, gave_up) = self.deliver(batch, deadline, Origin::Spool { inherited });
        out.add(delivered);
        let Some(g) = gave_up else {
            if let Some(spool) = self.spool.as_mut() {
                if let Err(e) = spool.pop_oldest(false) {
                    eprintln!("ringtrail: could not delete a replayed spool segment: {e}");
                }
            }
            return (out, Some(Duration::ZERO));
        };
        if !g.untouched {
            // Part of the segment is now committed under other batch ids:
            // store what is left as new segments, then drop the original,
            // so a later replay cannot load the committed part twice.
            let (spooled_before, lost_before) = (out.spooled, out.lost);
            self.spool_all(&g.remaining, inherited, &mut out);
            if !inherited {
                // Rows moved between segments stay spooled; rows that could
                // not be re-spooled left the spool, lost.
                out.spooled = spooled_before;
                out.unspooled += out.lost - lost_before;
            }
            if let Some(spool) = self.spool.as_mut() {
                let _ = spool.pop_oldest(false);
            }
        }
        out.error = Some(format!("spool replay postponed: {}", g.error));
        (
            out,
            Some(self.next_probe.saturating_duration_since(Instant::now())),
        )
    }
}
