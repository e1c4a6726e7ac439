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
        let query = client.query_one(
            "SELECT EXISTS (SELECT 1 FROM ringtrail.batches WHERE batch_id = $1::text::uuid)",
            &params,
        );
        Ok(step(stall, "checking the ledger", query).await?.get(0))
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
    pub(super) async fn store_checkpoint(&mut self, cp: &HeadCheckpoint) -> Result<()> {
        self.migrate_once().await?;
        let mut sql = String::with_capacity(512);
        checkpoint_sql(&mut sql, cp.chain_id, cp.seq, &cp.head, &cp.row, true);
        let stall = self.stall;
        let client = self.client().await?;
        step(
            stall,
            "storing the shutdown checkpoint",
            client.execute(&sql, &[]),
        )
        .await?;
        Ok(())
    }

    /// Ships `batch` unless `check_ledger` finds it committed already:
    /// `BEGIN; COPY …; INSERT ledger; COMMIT` in three round trips (BEGIN
    /// is pipelined with the start of the COPY, and the ledger row travels
    /// with the COMMIT in one simple query). Migrations come first, on a
    /// shipper that could not apply them at start.
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
        let copy_statement =
            step(stall, "preparing COPY", client.prepare_cached(&statement)).await?;
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
        // Only values this process formatted itself go into the text: a
        // UUID and integers.
        let ledger = ledger_sql(batch);
        let committed = step(stall, "committing", client.batch_execute(&ledger)).await;
        self.copy_buf = buf;
        match committed {
            Err(Error::Postgres(e)) if is_ledger_clash(&e) => {
                // An earlier attempt's COMMIT got through after all: this
                // transaction rolled back, the batch is in once. The
                // connection is in an aborted transaction; close it.
                self.discard_client();
                Ok(())
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

/// The ledger row of `batch` (with its place on the chain, and the
/// checkpoint it carries) and the COMMIT, as one simple query. Only values
/// this process formatted itself go into the text: UUIDs, integers, hex,
/// and a checkpoint note whose quotes are doubled.
fn ledger_sql(batch: &SealedBatch) -> String {
    use std::fmt::Write as _;
    let micros = |nanos: i64| nanos.div_euclid(1_000);
    let ts = |nanos: i64| {
        format!(
            "'epoch'::timestamptz + {} * interval '1 microsecond'",
            micros(nanos)
        )
    };
    let hex = |bytes: &[u8]| {
        let mut s = String::with_capacity(4 + 2 * bytes.len());
        s.push_str("'\\x");
        for b in bytes {
            let _ = write!(s, "{b:02x}");
        }
        s.push('\'');
        s
    };
    let mut sql = String::with_capacity(512);
    let _ = write!(
        sql,
        "INSERT INTO ringtrail.batches (batch_id, rows, bytes, first_ts, last_ts"
    );
    if batch.chain.is_some() {
        sql.push_str(", chain_id, seq, sealed_id, sealed_rows, digest, prev_hash, hash");
    }
    let _ = write!(
        sql,
        ") VALUES ('{}', {}, {}, {}, {}",
        batch.id_text(),
        batch.rows,
        batch.bytes.len(),
        ts(batch.first_ts),
        ts(batch.last_ts)
    );
    if let Some(c) = &batch.chain {
        let _ = write!(
            sql,
            ", '{}', {}, '{}', {}, {}, {}, {}",
            uuid_text(&c.chain_id),
            c.seq,
            uuid_text(&c.sealed_id),
            c.sealed_rows,
            hex(&c.digest),
            hex(&c.prev_hash),
            hex(&c.hash)
        );
    }
    sql.push_str("); ");
    if let (Some(c), Some(cp)) = (&batch.chain, &batch.checkpoint) {
        checkpoint_sql(&mut sql, c.chain_id, c.seq, &c.hash, cp, false);
        sql.push_str("; ");
    }
    sql.push_str("COMMIT");
    sql
}

/// Appends the `INSERT` of a checkpoint row at (`chain_id`, `seq`) with
/// head `head`; `if_committed`: only when the ledger holds that seq with
/// that hash (a checkpoint stored apart from its batch never names a head
/// the table lacks).
fn checkpoint_sql(
    sql: &mut String,
    chain_id: [u8; 16],
    seq: u64,
    head: &[u8; 32],
    cp: &CheckpointRow,
    if_committed: bool,
) {
    use std::fmt::Write as _;
    let quoted = |text: &str| text.replace('\0', "").replace('\'', "''");
    let head: String = head.iter().map(|b| format!("{b:02x}")).collect();
    let chain = uuid_text(&chain_id);
    let _ = write!(
        sql,
        "INSERT INTO ringtrail.checkpoints (chain_id, seq, head, note, public_key, signed_at) \
         SELECT '{chain}', {seq}, '\\x{head}', '{}', '{}', \
         'epoch'::timestamptz + {} * interval '1 microsecond'",
        quoted(&cp.note),
        quoted(&cp.public_key),
        cp.signed_at.div_euclid(1_000)
    );
    if if_committed {
        let _ = write!(
            sql,
            " WHERE EXISTS (SELECT 1 FROM ringtrail.batches \
             WHERE chain_id = '{chain}' AND seq = {seq} AND hash = '\\x{head}')"
        );
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
}
