//! The console's database connections: a small pool of read-only
//! sessions. Each connection is set up once with
//! `default_transaction_read_only = on` and a `statement_timeout`, so
//! every query the console runs (each its own transaction, or the
//! follower's `REPEATABLE READ` snapshot) is a read-only transaction that
//! cannot run away; a role that can only `SELECT` (`ringtrail_reader`) is
//! enough.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringtrail::tls::ConnectOptions;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

/// How long one console query may run.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// A pool of read-only connections.
pub struct Db {
    options: ConnectOptions,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    statement_timeout: Duration,
}

/// A connection lent by [`Db::get`]; back to the pool when dropped.
pub struct Conn {
    client: Option<Client>,
    db: Arc<Db>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("a lent connection")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("a lent connection")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                if let Ok(mut idle) = self.db.idle.lock() {
                    idle.push(client);
                }
            }
        }
    }
}

impl Db {
    /// A pool of at most `size` connections to `options`.
    pub fn new(options: ConnectOptions, size: usize, statement_timeout: Duration) -> Arc<Db> {
        Arc::new(Db {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
            statement_timeout,
        })
    }

    /// A connection: an idle one, or a new one set up read-only.
    pub async fn get(self: &Arc<Db>) -> ringtrail::Result<Conn> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ringtrail::Error::Config("the console is shutting down".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => {
                let client = ringtrail::read::connect(&self.options).await?;
                client
                    .batch_execute(&format!(
                        "SET default_transaction_read_only = on; \
                         SET statement_timeout = {}; \
                         SET idle_in_transaction_session_timeout = 60000; \
                         SET application_name = 'ringtrail console'",
                        self.statement_timeout.as_millis()
                    ))
                    .await?;
                client
            }
        };
        Ok(Conn {
            client: Some(client),
            db: Arc::clone(self),
            _permit: permit,
        })
    }

    /// A connection of its own, not from the pool, set up the same way,
    /// with `LISTEN` wake-ups: for a live tail, which holds it for as
    /// long as the page is open.
    pub async fn listening(
        &self,
    ) -> ringtrail::Result<(Client, Arc<ringtrail::read::follow::Wake>)> {
        let (client, wake) = ringtrail::read::follow::connect_listening(&self.options).await?;
        client
            .batch_execute(&format!(
                "SET default_transaction_read_only = on; SET statement_timeout = {}; \
                 SET application_name = 'ringtrail console tail'",
                self.statement_timeout.as_millis()
            ))
            .await?;
        Ok((client, wake))
    }
}
