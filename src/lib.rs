//! # ringtrail
//!
//! A `tracing` layer for services that cannot afford the logging tax.
//! Each event becomes a fixed-size record in a pre-allocated ring, with no
//! allocation, lock, await or system call on the calling thread. A
//! dedicated writer thread drains the ring and bulk-loads batches into
//! PostgreSQL through binary `COPY`.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A throwaway PostgreSQL cluster (or the server at DATABASE_URL);
//! // in production this is your own database URL.
//! let url = ringtrail_cluster::fresh_database()?;
//!
//! let (layer, guard) = ringtrail::Builder::new()
//!     .postgres(url.as_str())   // sink: PostgreSQL through binary COPY
//!     .capacity(16_384)         // records in the ring
//!     .build()?;
//! let subscriber = tracing_subscriber::registry().with(layer);
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("request", user_id = "u-42", trace_id = "4bf92f35");
//!     let _entered = span.enter();
//!     tracing::info!(items = 3, total = 9.5, "order placed for {}", "ada");
//! });
//!
//! guard.flush()?;               // every event so far is committed
//! assert_eq!(guard.stats().written, 1);
//!
//! // Read it back.
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let row = rt.block_on(async {
//!     let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
//!     tokio::spawn(conn);
//!     client
//!         .query_one("SELECT message, user_id, fields->>'items' FROM ringtrail.logs", &[])
//!         .await
//! })?;
//! assert_eq!(row.get::<_, &str>(0), "order placed for ada");
//! assert_eq!(row.get::<_, Option<&str>>(1), Some("u-42"));
//! assert_eq!(row.get::<_, Option<&str>>(2), Some("3"));
//! # Ok(()) }
//! ```
//!
//! ## The pipeline, stage by stage
//!
//! | stage | module | runs on |
//! |---|---|---|
//! | capture: `Layer::on_event` writes a record into a slot | `capture` | the caller's thread |
//! | ring: sharded slot pool and index queues, overflow policies | `ring` | shared |
//! | writer: drains, batches, ids, context ids, audit kind, flush triggers, drop reports | `writer` | `ringtrail-writer` |
//! | redact: secrets out of every row before any sink | [`redact`] | `ringtrail-writer` |
//! | encode: rows → binary COPY / JSON bytes | [`encode`] | `ringtrail-writer` |
//! | sink: seals batches and ships each in one transaction, exactly once, with retries, dead letters and a disk spool | `sink` | `ringtrail-writer`, `ringtrail-shipper`, `ringtrail-disk` |
//! | or beside it (or alone): every row as an ECS, OCSF, OTLP or native JSON line, to a rotated file or stdout ([`Builder::jsonl`]) | `sink` | `ringtrail-writer`, `ringtrail-jsonl` |
//!
//! No database at all:
//!
//! ```no_run
//! let (layer, guard) = ringtrail::Builder::new()
//!     .jsonl(ringtrail::Jsonl::stdout(ringtrail::Format::Ecs)) // ECS JSON lines on stdout
//!     .build()?;
//! # Ok::<(), ringtrail::Error>(())
//! ```
//!
//! Beside the pipeline: [`audit`], the five-point AI audit trace (wire
//! contract, typed API, completeness rules); [`render`], rows as ECS, OCSF,
//! OTLP or native JSON lines; [`chain`], the tamper-evident hash chain over
//! committed batches and its signed checkpoints (linked on the writer
//! thread, see [`Builder::checkpoints`]); and [`read`], the read side:
//! traces and their findings, export, query, the exact `tail -f`
//! follower, statistics, partitions, retention and `verify`.
//!
//! Tables: `ringtrail.logs`, `ringtrail.batches` (the batch ledger) and
//! `ringtrail.dead_letters`, created by [`schema::apply`]. See `ARCHITECTURE.md`
//! for the invariants and `docs/delivery.md` for the delivery guarantees.

#![warn(missing_docs)]

pub mod audit;
mod builder;
mod capture;
pub mod chain;
pub mod contract;
mod counters;
pub mod encode;
pub mod error;
mod files;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
mod guard;
pub mod ids;
pub mod level;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod read;
pub mod redact;
pub mod render;
mod ring;
pub mod row;
pub mod schema;
mod sink;
mod stats;
mod text;
mod thread;
pub mod time;
pub mod tls;
#[cfg(feature = "nats")]
pub mod transport;
#[cfg(feature = "nats")]
pub mod worker;
mod writer;

pub use builder::Builder;
pub use capture::{Ingest, Layer, Record, Refused, MAX_JSON_DEPTH};
pub use contract::DROPPED_TARGET;
pub use error::{Error, Fate, Result};
pub use guard::Guard;
pub use render::Format;
pub use ring::OverflowPolicy;
pub use row::{Field, Row, Value};
pub use sink::{Checkpoints, Jsonl, Partitions, Spool};
pub use stats::{JsonlStats, Stats};
