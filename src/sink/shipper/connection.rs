//! [`Connection`]: the shipper's session with PostgreSQL. It owns the
//! private tokio runtime, the pool and the connection held across batches,
//! and runs every piece of I/O through one [`run`](Connection::run) that
//! applies a timeout and never hands a connection in an unknown state back
//! to the pool.

use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::SinkExt;
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use crate::encode::copy::copy_statement;
use crate::error::PoolError;
use crate::sink::batch::SealedBatch;
use crate::sink::PostgresConfig;
use crate::{migrate, Error, Result};

/// The runtime, the pool, and the state of the session on it.
pub(super) struct Connection {
    runtime: tokio::runtime::Runtime,
    session: Session,
    commit_timeout: Duration,
}

/// What the futures that [`Connection::run`] drives may touch.
pub(super) struct Session {
    pool: Pool,
    /// `host:port` (or the socket directory), for error messages.
    target: String,
    /// The connection held between batches.
    client: Option<Object>,
    statement: String,
    migrated: bool,
}

impl Connection {
    /// Builds the runtime and the pool. Connects nothing yet.
    pub(super) fn new(config: &PostgresConfig) -> Result<Connection> {
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
        let target = describe_target(&pg);
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
                target,
                client: None,
                statement: copy_statement(),
                migrated: !config.migrate,
            },
            commit_timeout: config.commit_timeout,
        })
    }

    /// The longest one batch's round trips may take.
    pub(super) fn commit_timeout(&self) -> Duration {
        self.commit_timeout
    }

    /// Runs `work` on the session, giving up after `timeout` with
    /// `Error::Timeout(what)`. On any error the held connection is closed,
    /// never returned to the pool: it may be mid-COPY or in an aborted
    /// transaction.
    pub(super) fn run<T>(
        &mut self,
        what: &'static str,
        timeout: Duration,
        work: impl AsyncFnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let Connection {
            runtime, session, ..
        } = self;
        let result = runtime.block_on(async {
            tokio::time::timeout(timeout, work(session))
                .await
                .unwrap_or(Err(Error::Timeout(what)))
        });
        if result.is_err() {
            if let Some(client) = session.client.take() {
                drop(Object::take(client));
            }
        }
        result
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
            let client = self
                .pool
                .get()
                .await
                .map_err(|e| Error::Pool(PoolError::new(self.target.clone(), e)))?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("just checked out"))
    }

    async fn migrate_once(&mut self) -> Result<()> {
        if !self.migrated {
            migrate::apply(self.client().await?).await?;
            self.migrated = true;
        }
        Ok(())
    }

    /// Whether the batch's ledger row exists: it committed already.
    async fn is_committed(&mut self, batch: &SealedBatch) -> Result<bool> {
        let id = batch.id_text();
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM ringtrail.batches WHERE batch_id = $1::text::uuid)",
                &[&id],
            )
            .await?;
        Ok(row.get(0))
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
        let statement = self.statement.clone();
        let client = self.client().await?;
        let copy_statement = client.prepare_cached(&statement).await?;
        let (_, copy) = futures_util::future::try_join(
            client.batch_execute("BEGIN"),
            client.copy_in::<_, Bytes>(&copy_statement),
        )
        .await?;
        futures_util::pin_mut!(copy);
        copy.send(batch.bytes.clone()).await?;
        copy.finish().await?;
        // Only values this process formatted itself go into the text: a
        // UUID and integers.
        let micros = |nanos: i64| nanos.div_euclid(1_000);
        client
            .batch_execute(&format!(
                "INSERT INTO ringtrail.batches (batch_id, rows, bytes, first_ts, last_ts) VALUES \
                 ('{}', {}, {}, 'epoch'::timestamptz + {} * interval '1 microsecond', \
                 'epoch'::timestamptz + {} * interval '1 microsecond'); COMMIT",
                batch.id_text(),
                batch.rows,
                batch.bytes.len(),
                micros(batch.first_ts),
                micros(batch.last_ts),
            ))
            .await?;
        Ok(())
    }

    /// Stores one refused row in `ringtrail.dead_letters`.
    pub(super) async fn dead_letter(
        &mut self,
        batch: &SealedBatch,
        line: Option<usize>,
        tuple: &[u8],
        error: &Error,
    ) -> Result<()> {
        let (sqlstate, message) = match error.postgres().and_then(|e| e.as_db_error()) {
            Some(db) => (db.code().code().to_owned(), db.message().to_owned()),
            None => (String::new(), error.chain()),
        };
        let id = batch.id_text();
        let line = line.map(|l| l as i32);
        self.client()
            .await?
            .execute(
                "INSERT INTO ringtrail.dead_letters (batch_id, line, sqlstate, message, tuple)
                 VALUES ($1::text::uuid, $2, $3, $4, $5)",
                &[&id, &line, &sqlstate, &message, &tuple],
            )
            .await?;
        Ok(())
    }
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
