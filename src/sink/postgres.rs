//! The PostgreSQL sink: binary COPY into `ringtrail.logs`, one transaction
//! per batch.
//!
//! The wire codec lives in [`crate::encode::copy`]; this file is only the
//! client side: a `deadpool-postgres` pool, a private current-thread tokio
//! runtime (callers need no runtime of their own), and the transaction.

use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::SinkExt;
use tokio_postgres::NoTls;

use super::Sink;
use crate::encode::copy::{copy_statement, CopyEncoder};
use crate::{migrate, Error, Result, Row};

/// Settings of the PostgreSQL sink, filled in by the builder.
#[derive(Debug, Clone)]
pub(crate) struct PostgresConfig {
    pub(crate) url: String,
    pub(crate) synchronous_commit: bool,
    pub(crate) migrate: bool,
    pub(crate) commit_timeout: Duration,
}

/// Ships batches to PostgreSQL through binary COPY.
pub(crate) struct PostgresSink {
    runtime: tokio::runtime::Runtime,
    pool: Pool,
    statement: String,
    encoder: CopyEncoder,
    /// A finished batch whose commit failed; kept for the retry.
    sealed: Option<(Bytes, usize)>,
    commit_timeout: Duration,
}

impl PostgresSink {
    /// Builds the pool, checks the connection and applies migrations when
    /// asked. Runs on the writer thread, which owns the runtime.
    pub(crate) fn connect(config: &PostgresConfig) -> Result<PostgresSink> {
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
        runtime.block_on(async {
            let mut client = pool.get().await.map_err(pool_error)?;
            if config.migrate {
                migrate::apply(&mut client).await?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(PostgresSink {
            runtime,
            pool,
            statement: copy_statement(),
            encoder: CopyEncoder::new(),
            sealed: None,
            commit_timeout: config.commit_timeout,
        })
    }

    async fn ship(pool: &Pool, statement: &str, batch: Bytes) -> Result<()> {
        // The pooled object must outlive `finish()`: the COPY sink does not
        // borrow it, and dropping it early would return the connection to
        // the pool mid-COPY.
        let mut client = pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await?;
        let copy = tx.copy_in::<_, Bytes>(statement).await?;
        futures_util::pin_mut!(copy);
        copy.send(batch).await?;
        copy.finish().await?;
        tx.commit().await?;
        drop(client);
        Ok(())
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => Error::Postgres(e),
        other => Error::Pool(other.to_string()),
    }
}

impl Sink for PostgresSink {
    fn append(&mut self, row: &Row<'_>) {
        self.encoder.push_row(row);
    }

    fn pending_rows(&self) -> usize {
        self.encoder.rows() + self.sealed.as_ref().map_or(0, |s| s.1)
    }

    fn pending_bytes(&self) -> usize {
        self.encoder.bytes_len() + self.sealed.as_ref().map_or(0, |s| s.0.len())
    }

    fn commit(&mut self) -> Result<()> {
        let (batch, _rows) = match &self.sealed {
            Some(sealed) => sealed.clone(),
            None => {
                let rows = self.encoder.rows();
                if rows == 0 {
                    return Ok(());
                }
                let sealed = (self.encoder.finish(), rows);
                self.sealed = Some(sealed.clone());
                sealed
            }
        };
        let result = self.runtime.block_on(async {
            // `statement_timeout` does not cover a COPY waiting on the
            // client, so the deadline is enforced here.
            tokio::time::timeout(
                self.commit_timeout,
                Self::ship(&self.pool, &self.statement, batch),
            )
            .await
            .unwrap_or(Err(Error::Timeout("committing a batch")))
        });
        if result.is_ok() {
            self.sealed = None;
        }
        result
    }

    fn discard(&mut self) -> usize {
        let rows = self.pending_rows();
        self.sealed = None;
        self.encoder.clear();
        rows
    }
}
