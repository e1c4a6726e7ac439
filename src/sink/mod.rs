//! Sinks: where batches go. The writer decides *when* a batch ends; a sink
//! decides *how* rows are encoded and shipped, and what happens when
//! shipping fails.
//!
//! A sink is driven from the writer thread only. `append` encodes one
//! [`Row`] into the batch in progress (no I/O). `commit` hands the batch
//! over for shipping, and `outcomes` reports where its rows went: every row
//! ends committed, spooled to disk, dead-lettered or counted lost, never
//! silently dropped.
//!
//! This boundary is where future stages plug in without touching the
//! writer: a JSON-lines sink beside PostgreSQL is a second sink; redaction
//! and the batch hash chain see every `Row` on its way to `append`.
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | [`PostgresConfig`] and its option values [`Spool`] and [`Partitions`]: what the builder fills in |
//! | `postgres.rs` | the writer side: double-buffered encoders, hand-over to the lanes (`Courier`: a shipper, or a bus publisher) |
//! | `shipper/` | the `ringtrail-shipper` thread: connection, health, delivery rules |
//! | `disk.rs` | the `ringtrail-disk` thread: overload spills and the checkpoint file, off the writer |
//! | `batch.rs` | [`SealedBatch`](batch::SealedBatch): a finished COPY stream and its ledger identity |
//! | `retry.rs` | which failures are retried, and the backoff |
//! | `spool/` | the disk spool (`mod.rs`) and its segment format (`segment.rs`) |
//! | `jsonl/` | the JSON-lines sink: rendered lines, its queue, the `ringtrail-jsonl` thread, rotation |
//! | `fanout.rs` | PostgreSQL and JSON lines at once, each on its own |
//! | `bus.rs` | scale-out: a lane that publishes batches to the bus (NATS JetStream) |
//! | `envelope.rs` | a sealed batch as a bus message, and the pieces of a large one |
//! | `sharded.rs` | several shards at once: a trace's rows to one shard |
//! | `null.rs` | the null sink for benchmarks and dry runs |

mod batch;
#[cfg(feature = "nats")]
mod bus;
mod chained;
mod config;
mod cutoff;
mod disk;
#[cfg(feature = "nats")]
mod envelope;
mod fanout;
pub(crate) mod jsonl;
mod null;
mod outcome;
mod postgres;
mod retry;
#[cfg(feature = "nats")]
mod sharded;
mod shipper;
pub(crate) mod spool;

pub(crate) use crate::stats::JsonlCounters;
pub(crate) use chained::ChainConfig;
pub use chained::Checkpoints;
pub(crate) use config::PostgresConfig;
pub use config::{Partitions, Spool};
pub(crate) use cutoff::Cutoff;
#[cfg(feature = "nats")]
pub(crate) use envelope::{decode as envelope_decode, Message};
pub use jsonl::Jsonl;
pub(crate) use jsonl::JsonlConfig;
pub(crate) use null::NullSink;
pub(crate) use outcome::{BatchFailure, Outcome, OutcomeTotals, Wait};
pub(crate) use postgres::PostgresSink;
#[cfg(feature = "nats")]
pub(crate) use shipper::{Shared, Shipper};

use std::sync::Arc;

#[cfg(feature = "nats")]
use crate::transport::NatsTarget;
use crate::Row;
#[cfg(feature = "nats")]
use bus::BusLane;
use fanout::Fanout;
use jsonl::JsonlSink;
#[cfg(feature = "nats")]
use postgres::LaneSink;
#[cfg(feature = "nats")]
use sharded::Sharded;

/// Scale-out: batches published to a bus, into `shards` shards, with the
/// PostgreSQL sink's lanes, batch queue, spool and chain (its `url` and
/// migrations unused: the sink workers load the shards).
#[cfg(feature = "nats")]
#[derive(Debug, Clone)]
pub(crate) struct BusConfig {
    pub(crate) lanes: PostgresConfig,
    pub(crate) target: NatsTarget,
    pub(crate) shards: u32,
}

#[cfg(feature = "nats")]
impl BusConfig {
    /// Shard `shard`'s lanes: with several shards, each spools into a
    /// directory of its own (`shard-<i>` in the spool's), since a spooled
    /// batch must be replayed to its own shard.
    fn shard(&self, shard: u32) -> PostgresConfig {
        let mut config = self.lanes.clone();
        if self.shards > 1 {
            if let Some(spool) = &mut config.spool {
                spool.dir = spool.dir.join(format!("shard-{shard}"));
            }
        }
        config
    }

    fn connect(&self, cutoff: &Arc<Cutoff>) -> crate::Result<Box<dyn Sink>> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::with_capacity(self.shards as usize);
        for shard in 0..self.shards {
            let config = self.shard(shard);
            let sink = LaneSink::connect_with(&config, cutoff.clone(), "NATS", |shared| {
                BusLane::connect(&self.target, shard, &config, shared)
            })?;
            sinks.push(Box::new(sink));
        }
        Ok(match sinks.len() {
            1 => sinks.pop().expect("one shard"),
            _ => Box::new(Sharded::new(sinks)),
        })
    }
}

/// Where batches go, as the builder chose.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    Postgres(PostgresConfig),
    /// Scale-out through a bus (NATS JetStream).
    #[cfg(feature = "nats")]
    Bus(Box<BusConfig>),
    Null,
    /// JSON lines alone: a service with no database.
    Jsonl(JsonlConfig),
    /// A sink and JSON lines beside it; the first one's deliveries are the
    /// pipeline's `Stats`.
    Fanout(Box<Destination>, JsonlConfig),
    /// Tests: a sink whose `commit` panics, to see the writer die.
    #[cfg(test)]
    Panicking,
}

impl Destination {
    /// Connects the sink (and starts its threads: PostgreSQL's shippers,
    /// the JSON-lines output, which obey the shutdown `cutoff`). Runs on
    /// the writer thread, which then owns the sink.
    pub(crate) fn connect(
        &self,
        cutoff: &Arc<Cutoff>,
        counters: &Arc<JsonlCounters>,
    ) -> crate::Result<Box<dyn Sink>> {
        let jsonl = |config| JsonlSink::open(config, counters.clone(), cutoff.clone());
        Ok(match self {
            Destination::Postgres(config) => {
                Box::new(PostgresSink::connect(config, cutoff.clone())?)
            }
            #[cfg(feature = "nats")]
            Destination::Bus(config) => config.connect(cutoff)?,
            Destination::Null => Box::<NullSink>::default(),
            Destination::Jsonl(config) => Box::new(jsonl(config)?),
            Destination::Fanout(first, config) => {
                // The file first: it fails fast on a bad path, before a
                // connection is made.
                let lines = jsonl(config)?;
                Box::new(Fanout::new(first.connect(cutoff, counters)?, lines))
            }
            #[cfg(test)]
            Destination::Panicking => Box::new(null::Panicking),
        })
    }
}

/// A destination for batches of rows.
pub(crate) trait Sink: Send {
    /// Encodes `row` into the batch in progress. Never fails: encoders map
    /// every value to something the destination accepts.
    fn append(&mut self, row: &Row<'_>);
    /// Encodes an in-band drop report. It is a row like any other, but not
    /// an event: the outcome's counts leave it out. Reports are appended
    /// after the batch's events, so they are always its last rows.
    fn append_report(&mut self, row: &Row<'_>);
    /// Rows in the batch in progress.
    fn pending_rows(&self) -> usize;
    /// Encoded bytes in the batch in progress.
    fn pending_bytes(&self) -> usize;
    /// Seals the batch in progress and ships it. May return before the
    /// batch is shipped; its outcome then comes from a later
    /// [`outcomes`](Sink::outcomes).
    fn commit(&mut self);
    /// Where the rows of finished batches (and of background work such as
    /// spool replay) went, since the last call, after waiting as `wait`
    /// says for the batches in flight.
    fn outcomes(&mut self, wait: Wait) -> Outcome;
    /// Checkpoints of the hash chain signed since the last call, for a
    /// JSON-lines sink beside this one to carry (none by default).
    fn take_checkpoint_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// At shutdown, after the last commit: finishes every batch handed
    /// over (committed, or past the shutdown cutoff spooled), stops the
    /// sink's threads, and reports where the rows went.
    fn close(&mut self) -> Outcome;
}
