//! [`Connection`]: the shipper's session with PostgreSQL. It owns the
//! private tokio runtime, the pool and the connection held across batches,
//! and runs every piece of I/O through one [`run`](Connection::run) that
//! applies a timeout and the shutdown [`Cutoff`], and never hands a
//! connection in an unknown state back to the pool.
//!
//! Inside, every round trip is a [`step`]: one that gets no answer for the
//! stall timeout fails with [`Error::Stalled`], so a server that hangs
//! (frozen, or behind a path that drops packets) is noticed in seconds,
//! not at the end of the commit timeout. TCP keepalives (idle 10 s, every
//! 2 s, 3 probes) and, on Linux, a TCP user timeout notice a dead peer
//! below that.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::{select, Either};
use futures_util::SinkExt;
use tokio_postgres::config::Host;

use crate::encode::copy::{
    copy_statement_with_batch, tuple_width, WithColumn, LOG_COLUMNS, OLDEST_TUPLE_WIDTH,
};
use crate::error::PoolError;
use crate::schema::{partitions, retention};
use crate::sink::batch::{CheckpointRow, HeadCheckpoint, Removed, SealedBatch};
use crate::sink::{Cutoff, Partitions, PostgresConfig};
use crate::text::uuid_text;
use crate::tls::{ConnectOptions, Connector};
use crate::{schema, Error, Result};

/// How much COPY data goes out in one message: large enough that framing
/// costs nothing, small enough that the copy made to add each row's
/// `batch_id` stays a fraction of a batch.
const COPY_PIECE_BYTES: usize = 256 * 1024;

/// The runtime, the pool, and the state of the session on it.
pub(super) struct Connection {
    runtime: tokio::runtime::Runtime,
    session: Session,
    commit_timeout: Duration,
    cutoff: Arc<Cutoff>,
}

/// What the futures that [`Connection::run`] drives may touch.
pub(super) struct Session {
    pool: Pool,
    /// The settings, for probes on a connection of their own.
    config: tokio_postgres::Config,
    /// The URL's TLS (`sslmode`, `sslrootcert`, …), for every connection.
    connector: Connector,
    /// `host:port` (or the socket directory), for error messages.
    target: String,
    /// The connection held between batches.
    client: Option<Object>,
    statement: String,
    /// The COPY data on its way out, with each tuple's `batch_id`
    /// ([`WithColumn`]); reused from batch to batch.
    copy_buf: BytesMut,
    migrated: bool,
    /// The longest one round trip may go unanswered.
    stall: Duration,
}

/// `dropped_by` in `ringtrail.retention_log` for partitions the writer's
/// retention dropped.
const DROPPED_BY: &str = "ringtrail writer";

/// The primary key of `ringtrail.batches`: a unique violation on it means
/// an earlier attempt of the batch committed (its COMMIT was still running
/// when the client gave up on it).
const LEDGER_KEY: &str = "batches_pkey";

/// Awaits one round trip, failing with [`Error::Stalled`] when nothing
/// comes back for `stall`.
async fn step<T, E: Into<Error>>(
    stall: Duration,
    what: &'static str,
    round_trip: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(stall, round_trip).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(Error::Stalled { what, after: stall }),
    }
}

impl Connection {
    /// Builds the runtime and the pool. Connects nothing yet.
    pub(super) fn new(config: &PostgresConfig, cutoff: Arc<Cutoff>) -> Result<Connection> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (mut pg, connector) = ConnectOptions::parse(&config.url)?.into_parts();
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
        pg.keepalives_idle(Duration::from_secs(10));
        pg.keepalives_interval(Duration::from_secs(2));
        pg.keepalives_retries(3);
        #[cfg(target_os = "linux")]
        pg.tcp_user_timeout(config.stall_timeout.max(Duration::from_secs(1)));
        let target = describe_target(&pg);
        let probe_config = pg.clone();
        // `Verified` runs a cheap query before reusing a connection, so a
        // connection killed by a network drop or server restart is replaced
        // instead of failing the next batch.
        let manager = Manager::from_config(
            pg,
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let timeout = Some(config.commit_timeout);
        let pool = Pool::builder(manager)
            .max_size(2)
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("connection pool: {e}")))?;
        Ok(Connection {
            runtime,
            session: Session {
                pool,
                config: probe_config,
                connector,
                target,
                client: None,
                statement: copy_statement_with_batch(LOG_COLUMNS.len()),
                copy_buf: BytesMut::new(),
                migrated: !config.migrate,
                stall: config.stall_timeout,
            },
            commit_timeout: config.commit_timeout,
            cutoff,
        })
    }

    /// The longest one batch's round trips may take.
    pub(super) fn commit_timeout(&self) -> Duration {
        self.commit_timeout
    }

    /// Runs `work` on the session, giving up after `timeout` with
    /// `Error::Timeout(what)`, or when the shutdown cutoff passes. On any
    /// error the held connection is closed, never returned to the pool: it
    /// may be mid-COPY or in an aborted transaction.
    pub(super) fn run<T>(
        &mut self,
        what: &'static str,
        timeout: Duration,
        work: impl AsyncFnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let Connection {
            runtime,
            session,
            cutoff,
            ..
        } = self;
        let result = runtime.block_on(async {
            let work = pin!(tokio::time::timeout(timeout, work(session)));
            match select(work, pin!(cutoff.reached())).await {
                Either::Left((done, _)) => done.unwrap_or(Err(Error::Timeout(what))),
                Either::Right(_) => Err(Error::Timeout("the shutdown deadline")),
            }
        });
        if result.is_err() {
            if let Some(client) = session.client.take() {
                drop(Object::take(client));
            }
        }
        result
    }

    /// Partition upkeep on a connection of its own (never the batches'),
    /// within the commit timeout: the partitions ahead, then retention when
    /// configured. An error inside is returned as the inner result, so the
    /// held batch connection is kept.
    pub(super) fn maintain_partitions(
        &mut self,
        config: &Partitions,
    ) -> Result<Result<(usize, usize)>> {
        let timeout = self.commit_timeout;
        self.run("maintaining partitions", timeout, async |s| {
            Ok(s.maintain_partitions(config).await)
        })
    }

    /// Checks out a connection, and applies the migrations when asked for
    /// and not yet done.
    pub(super) fn open(&mut self) -> Result<()> {
        let timeout = self.commit_timeout;
        self.run("applying migrations", timeout, async |s| {
            s.client().await?;
            s.migrate_once().await
        })
    }
}

impl Session {
    /// The held connection, checking one out (verified) when there is none.
    async fn client(&mut self) -> Result<&mut Object> {
        if self.client.is_none() {
            let target = &self.target;
            let checkout = async {
                (self.pool.get().await).map_err(|e| Error::Pool(PoolError::new(target.clone(), e)))
            };
            let client = step(self.stall, "connecting", checkout).await?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("just checked out"))
    }

    /// Closes the held connection without returning it to the pool.
    fn discard_client(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }

    /// A cheap query on a connection of its own (never the pool's, never a
    /// live batch), within the stall timeout: does the server answer?
    pub(super) async fn probe(&mut self) -> Result<()> {
        let stall = self.stall;
        let (client, connection) = step(
            stall,
            "probing",
            self.config.connect(self.connector.clone()),
        )
        .await?;
        let connection = tokio::spawn(connection);
        let answered = step(stall, "probing", client.simple_query("SELECT 1")).await;
        drop(client);
        connection.abort();
        answered.map(drop)
    }

    /// See [`Connection::maintain_partitions`]: how many partitions were
    /// created and dropped.
    async fn maintain_partitions(&mut self, config: &Partitions) -> Result<(usize, usize)> {
        let (mut client, connection) = self.config.connect(self.connector.clone()).await?;
        let connection = tokio::spawn(connection);
        let done = async {
            let now = std::time::SystemTime::now();
            let created = partitions::ensure(&mut client, config.width, config.ahead, now).await?;
            let dropped = match config.retention {
                Some(keep) => retention::apply(&mut client, keep, now, false, DROPPED_BY).await?,
                None => Vec::new(),
            };
            Ok((created.len(), dropped.len()))
        }
        .await;
        drop(client);
        connection.abort();
        done
    }

    async fn migrate_once(&mut self) -> Result<()> {
        if !self.migrated {
            schema::apply(self.client().await?).await?;
            self.migrated = true;
        }
        Ok(())
    }

    /// Whether the batch's ledger row exists: it committed already.
    async fn is_committed(&mut self, batch: &SealedBatch) -> Result<bool> {
        let id = batch.id_text();
        let stall = self.stall;
        let client = self.client().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
        let query = client.query_opt(
            "SELECT rows::int8, bytes::int8, hash FROM ringtrail.batches \
             WHERE batch_id = $1::text::uuid",
            &params,
        );
        let Some(row) = step(stall, "checking the ledger", query).await? else {
            return Ok(false);
        };
        let (rows, bytes, hash): (i64, i64, Option<Vec<u8>>) = (row.get(0), row.get(1), row.get(2));
        // The ledger row of an earlier attempt is this batch's own: its
        // rows, its bytes, its link. Any other row under this id was not
        // written by this batch (an INSERT-only role can write ledger
        // rows): the batch must commit under an id of its own.
        let ours = rows == i64::from(batch.rows)
            && bytes == batch.bytes.len() as i64
            && hash.as_deref() == batch.chain.as_ref().map(|c| &c.hash[..]);
        if ours {
            Ok(true)
        } else {
            Err(Error::LedgerKeyTaken { batch_id: id })
        }
    }

    /// Which of `ids` the ledger holds (batches whose outcome was unknown).
    pub(super) async fn committed_among(&mut self, ids: &[[u8; 16]]) -> Result<Vec<[u8; 16]>> {
        let texts: Vec<String> = ids.iter().map(crate::text::uuid_text).collect();
        let stall = self.stall;
        let client = self.client().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&texts];
        let query = client.query(
            "SELECT batch_id::text FROM ringtrail.batches WHERE batch_id = ANY($1::text[]::uuid[])",
            &params,
        );
        let found: Vec<String> = step(stall, "checking the ledger", query)
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        Ok(ids
            .iter()
            .zip(&texts)
            .filter(|(_, text)| found.contains(text))
            .map(|(id, _)| *id)
            .collect())
    }

    /// Stores the shutdown checkpoint `cp` on its own, if the ledger holds
    /// its head (see [`HeadCheckpoint`]).
    pub(super) async fn store_checkpoint(&mut self, cp: &HeadCheckpoint) -> Result<bool> {
        self.migrate_once().await?;
        let params = CheckpointParams::new(cp.chain_id, cp.seq, &cp.head, &cp.row, true);
        let stall = self.stall;
        let client = self.client().await?;
        let insert = async {
            let statement = client.prepare_cached(CHECKPOINT_INSERT).await?;
            client.execute(&statement, &params.bind()).await
        };
        if step(stall, "storing the shutdown checkpoint", insert).await? == 1 {
            return Ok(true);
        }
        // Nothing inserted: stored before (a repeat), or its head's batch
        // is not in the ledger (yet).
        let bind: [Param<'_>; 2] = [&params.chain_id, &params.seq];
        let stored = client.query_opt(
            "SELECT 1 FROM ringtrail.checkpoints WHERE chain_id = $1::text::uuid AND seq = $2::int8",
            &bind,
        );
        Ok(step(stall, "storing the shutdown checkpoint", stored)
            .await?
            .is_some())
    }

    /// Ships `batch` unless `check_ledger` finds it committed already:
    /// `BEGIN; COPY …; INSERT ledger; COMMIT` in three round trips (BEGIN
    /// is pipelined with the start of the COPY; the ledger row, and the
    /// checkpoint the batch carries, are prepared INSERTs whose values are
    /// bound parameters, pipelined with the COMMIT). Migrations come first,
    /// on a shipper that could not apply them at start.
    pub(super) async fn ship(&mut self, batch: &SealedBatch, check_ledger: bool) -> Result<()> {
        self.migrate_once().await?;
        if check_ledger && self.is_committed(batch).await? {
            return Ok(());
        }
        let stall = self.stall;
        // A segment spooled by an older version carries fewer columns: a
        // prefix of today's (see `copy_statement_for`).
        let statement = match tuple_width(&batch.bytes) {
            Some(width) if (OLDEST_TUPLE_WIDTH..LOG_COLUMNS.len()).contains(&width) => {
                copy_statement_with_batch(width)
            }
            _ => self.statement.clone(),
        };
        let mut buf = std::mem::take(&mut self.copy_buf);
        let client = self.client().await?;
        // Cached on the connection: a round trip (the three pipelined) only
        // on its first batch.
        let prepare = futures_util::future::try_join3(
            client.prepare_cached(&statement),
            client.prepare_cached(LEDGER_INSERT),
            client.prepare_cached(CHECKPOINT_INSERT),
        );
        let (copy_statement, ledger_insert, checkpoint_insert) =
            step(stall, "preparing COPY", prepare).await?;
        let start = futures_util::future::try_join(
            client.batch_execute("BEGIN"),
            client.copy_in::<_, Bytes>(&copy_statement),
        );
        let (_, copy) = step(stall, "starting COPY", start).await?;
        let mut copy = pin!(copy);
        // Every row names the batch it is committed in (a bisected piece's
        // rows name the piece): the id goes out as one more column of each
        // tuple, in pieces, so the server never evaluates a default per row.
        let mut with_id = WithColumn::new(&batch.bytes, &batch.id);
        buf.clear();
        while with_id.fill(&mut buf, COPY_PIECE_BYTES) {
            let piece = buf.split().freeze();
            step(stall, "sending COPY data", copy.send(piece)).await?;
        }
        step(stall, "finishing COPY", copy.as_mut().finish()).await?;
        // The ledger row, the checkpoint and the COMMIT go out together
        // (requests polled at once are pipelined, in order): one round
        // trip. Should an INSERT fail, the COMMIT finds the transaction
        // aborted and rolls it back.
        let ledger = LedgerParams::new(batch);
        let checkpoint = match (&batch.chain, &batch.checkpoint) {
            (Some(c), Some(cp)) => {
                Some(CheckpointParams::new(c.chain_id, c.seq, &c.hash, cp, false))
            }
            _ => None,
        };
        let ledger = ledger.bind();
        let commit = futures_util::future::try_join3(
            client.execute(&ledger_insert, &ledger),
            async {
                match &checkpoint {
                    Some(cp) => client
                        .execute(&checkpoint_insert, &cp.bind())
                        .await
                        .map(drop),
                    None => Ok(()),
                }
            },
            client.batch_execute("COMMIT"),
        );
        let committed = step(stall, "committing", commit).await.map(drop);
        self.copy_buf = buf;
        match committed {
            Err(Error::Postgres(e)) if is_ledger_clash(&e) => {
                // The batch's id is in the ledger already: an earlier
                // attempt's COMMIT got through after all (this transaction
                // rolled back, the batch is in once), or a row someone else
                // wrote took the id. The connection is in an aborted
                // transaction; close it, and ask the ledger which.
                self.discard_client();
                match self.is_committed(batch).await? {
                    true => Ok(()),
                    false => Err(Error::Postgres(e)),
                }
            }
            other => other,
        }
    }

    /// Stores refused rows of `batch` in `ringtrail.dead_letters`, in one
    /// statement: one row when the server named it, or every row of a
    /// batch whose error hits them all.
    pub(super) async fn dead_letter(
        &mut self,
        batch: &SealedBatch,
        rows: &[(Option<usize>, Removed)],
        error: &Error,
    ) -> Result<()> {
        let (sqlstate, message) = match error.postgres().and_then(|e| e.as_db_error()) {
            Some(db) => (db.code().code().to_owned(), db.message().to_owned()),
            None => (String::new(), error.chain()),
        };
        let id = batch.id_text();
        // The batch as sealed, which a bisected piece's id is not.
        let sealed = batch.chain.as_ref().map(|c| uuid_text(&c.sealed_id));
        let lines: Vec<Option<i32>> = rows.iter().map(|(l, _)| l.map(|l| l as i32)).collect();
        let tuples: Vec<&[u8]> = rows.iter().map(|(_, r)| &r.tuple[..]).collect();
        let stall = self.stall;
        let client = self.client().await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&id, &sqlstate, &message, &lines, &tuples, &sealed];
        let insert = client.execute(
            "INSERT INTO ringtrail.dead_letters (batch_id, line, sqlstate, message, tuple, sealed_id)
             SELECT $1::text::uuid, line, $2, $3, tuple, $6::text::uuid
             FROM unnest($4::int4[], $5::bytea[]) AS u(line, tuple)",
            &params,
        );
        step(stall, "writing dead letters", insert).await?;
        Ok(())
    }
}

fn is_ledger_clash(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| db.code().code() == "23505" && db.constraint() == Some(LEDGER_KEY))
}

/// `host:port` of the first host (or its socket directory), for messages.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match (config.get_hosts().first(), config.get_hostaddrs().first()) {
        (_, Some(addr)) => format!("{addr}:{port}"),
        (Some(Host::Tcp(host)), None) => format!("{host}:{port}"),
        #[cfg(unix)]
        (Some(Host::Unix(dir)), None) => format!("{}/.s.PGSQL.{port}", dir.display()),
        (None, None) => format!("localhost:{port}"),
    }
}

/// The ledger row of a batch, with its place on the chain (NULL without
/// one). Every value is a bound parameter: nothing of a batch, a segment
/// or a checkpoint is ever spliced into SQL text, so it holds whatever the
/// session's `standard_conforming_strings`.
const LEDGER_INSERT: &str = "INSERT INTO ringtrail.batches \
     (batch_id, rows, bytes, first_ts, last_ts, \
      chain_id, seq, sealed_id, sealed_rows, digest, prev_hash, hash) \
     VALUES ($1::text::uuid, $2::int8, $3::int8, \
      timestamptz 'epoch' + $4::int8 * interval '1 microsecond', \
      timestamptz 'epoch' + $5::int8 * interval '1 microsecond', \
      $6::text::uuid, $7::int8, $8::text::uuid, $9::int8, $10::bytea, $11::bytea, $12::bytea)";

/// A checkpoint row at (`chain_id`, `seq`) with head `head`; when `$7`
/// (if committed) is true, only if the ledger holds that seq with that
/// hash (a checkpoint stored apart from its batch never names a head the
/// table lacks). Bound parameters only, as [`LEDGER_INSERT`].
const CHECKPOINT_INSERT: &str = "INSERT INTO ringtrail.checkpoints \
     (chain_id, seq, head, note, public_key, signed_at) \
     SELECT $1::text::uuid, $2::int8, $3::bytea, $4::text, $5::text, \
      timestamptz 'epoch' + $6::int8 * interval '1 microsecond' \
     WHERE NOT $7::bool OR EXISTS (SELECT 1 FROM ringtrail.batches \
      WHERE chain_id = $1::text::uuid AND seq = $2::int8 AND hash = $3::bytea) \
     ON CONFLICT DO NOTHING";

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// Unix nanoseconds as the microseconds PostgreSQL stores.
fn micros(nanos: i64) -> i64 {
    nanos.div_euclid(1_000)
}

/// The parameters of [`LEDGER_INSERT`] for one batch.
struct LedgerParams<'a> {
    batch_id: String,
    rows: i64,
    bytes: i64,
    first_ts: i64,
    last_ts: i64,
    chain_id: Option<String>,
    seq: Option<i64>,
    sealed_id: Option<String>,
    sealed_rows: Option<i64>,
    digest: Option<&'a [u8]>,
    prev_hash: Option<&'a [u8]>,
    hash: Option<&'a [u8]>,
}

impl<'a> LedgerParams<'a> {
    fn new(batch: &'a SealedBatch) -> LedgerParams<'a> {
        let chain = batch.chain.as_ref();
        LedgerParams {
            batch_id: batch.id_text(),
            rows: i64::from(batch.rows),
            bytes: batch.bytes.len() as i64,
            first_ts: micros(batch.first_ts),
            last_ts: micros(batch.last_ts),
            chain_id: chain.map(|c| uuid_text(&c.chain_id)),
            seq: chain.map(|c| c.seq as i64),
            sealed_id: chain.map(|c| uuid_text(&c.sealed_id)),
            sealed_rows: chain.map(|c| i64::from(c.sealed_rows)),
            digest: chain.map(|c| &c.digest[..]),
            prev_hash: chain.map(|c| &c.prev_hash[..]),
            hash: chain.map(|c| &c.hash[..]),
        }
    }

    fn bind(&self) -> [Param<'_>; 12] {
        [
            &self.batch_id,
            &self.rows,
            &self.bytes,
            &self.first_ts,
            &self.last_ts,
            &self.chain_id,
            &self.seq,
            &self.sealed_id,
            &self.sealed_rows,
            &self.digest,
            &self.prev_hash,
            &self.hash,
        ]
    }
}

/// The parameters of [`CHECKPOINT_INSERT`].
struct CheckpointParams<'a> {
    chain_id: String,
    seq: i64,
    head: &'a [u8],
    note: String,
    public_key: String,
    signed_at: i64,
    if_committed: bool,
}

impl<'a> CheckpointParams<'a> {
    fn new(
        chain_id: [u8; 16],
        seq: u64,
        head: &'a [u8; 32],
        cp: &CheckpointRow,
        if_committed: bool,
    ) -> CheckpointParams<'a> {
        // `text` holds no NUL; a note never has one.
        let text = |t: &str| t.replace('\0', "");
        CheckpointParams {
            chain_id: uuid_text(&chain_id),
            seq: seq as i64,
            head: &head[..],
            note: text(&cp.note),
            public_key: text(&cp.public_key),
            signed_at: micros(cp.signed_at),
            if_committed,
        }
    }

    fn bind(&self) -> [Param<'_>; 7] {
        [
            &self.chain_id,
            &self.seq,
            &self.head,
            &self.note,
            &self.public_key,
            &self.signed_at,
            &self.if_committed,
        ]
    }
}
