//! Helpers shared by the integration tests: a fresh real PostgreSQL
//! database per test, a pipeline on it, and a synchronous client.

#![allow(dead_code)]

pub mod cutter;

use std::time::Duration;

use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// A brand-new database on the throwaway cluster (or on DATABASE_URL's
/// server), already migrated.
pub fn database() -> String {
    ringtrail::embedded::fresh_database().expect("a test database")
}

/// A brand-new database with ringtrail's schema applied, for tests that
/// change the schema before the pipeline starts.
pub fn migrated_database() -> String {
    let url = database();
    let (_layer, guard) = builder(&url).build().expect("migrations apply");
    drop(guard);
    url
}

/// A synchronous client for assertions.
pub fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

/// A pipeline into `url` with test-friendly settings.
pub fn builder(url: &str) -> ringtrail::Builder {
    ringtrail::Builder::new()
        .postgres(url)
        .synchronous_commit(false)
        .flush_interval(Duration::from_millis(50))
}

/// A dispatcher with only the ringtrail layer, for `dispatcher::with_default`
/// (tests run in parallel, so none of them sets the global default).
pub fn dispatch(layer: ringtrail::Layer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// Rows in ringtrail.logs.
pub fn count(url: &str) -> i64 {
    client(url)
        .query_one("SELECT count(*) FROM ringtrail.logs", &[])
        .unwrap()
        .get(0)
}

/// Builds the pipeline and a dispatcher for its layer.
pub fn start(builder: ringtrail::Builder) -> (Dispatch, ringtrail::Guard) {
    let (layer, guard) = builder.build().expect("the pipeline starts");
    (dispatch(layer), guard)
}

/// A tokio-postgres client whose connection runs on the current runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// Loads one encoded batch with `COPY ringtrail.logs … (FORMAT binary)` in
/// a transaction of its own; returns the rows loaded.
pub async fn copy_in(
    client: &mut tokio_postgres::Client,
    batch: bytes::Bytes,
) -> Result<u64, tokio_postgres::Error> {
    use futures_util::SinkExt;
    let statement = ringtrail::encode::copy::copy_statement();
    let tx = client.transaction().await?;
    let sink = tx.copy_in::<_, bytes::Bytes>(&statement).await?;
    futures_util::pin_mut!(sink);
    sink.send(batch).await?;
    let n = sink.finish().await?;
    tx.commit().await?;
    Ok(n)
}
